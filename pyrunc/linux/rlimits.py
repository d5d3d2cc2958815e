"""Resource limits: the name table (OCI `process.rlimits[].type` → Linux number).

Numbers follow include/uapi/asm-generic/resource.h, which x86, arm, arm64,
riscv, powerpc and s390 use (alpha, mips and sparc number some limits
differently). Stdlib only, and deliberately without the `resource` module:
the table must not depend on the Python build, and importing it stays free.
"""

from __future__ import annotations

RLIMITS: dict[str, int] = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}
