"""Linux capabilities: the name table (config.json spelling → kernel number).

The table below mirrors include/uapi/linux/capability.h. Functions that apply
capabilities to a process are further down; they use linux._libc's prctl
(bounding set, keep-caps, ambient set) and capset (the other three sets).
"""

from __future__ import annotations

# --- name table -------------------------------------------------------------
# Every capability the kernel defines, in kernel order, spelled as OCI configs
# spell them ("CAP_" + upper case). A name missing here is unknown to pyrunc;
# a name here may still be missing from an older running kernel: compare its
# number with read_cap_last_cap().
CAPABILITIES: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

# The highest number in CAPABILITIES; what read_cap_last_cap() assumes when
# /proc does not say.
CAP_LAST_KNOWN = 40


def read_cap_last_cap(proc_root: str = "/proc") -> int:
    """The running kernel's highest capability number, from
    /proc/sys/kernel/cap_last_cap; CAP_LAST_KNOWN when that cannot be read."""
    try:
        with open(f"{proc_root}/sys/kernel/cap_last_cap", "rb") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return CAP_LAST_KNOWN


# --- applying capabilities ---------------------------------------------------
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_KEEPCAPS = 8
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4


def numbers(names: list[str], last_cap: int) -> set[int]:
    """Kernel numbers of `names`, skipping ones the running kernel lacks
    (the config check has already warned about those)."""
    result = set()
    for name in names:
        number = CAPABILITIES.get(name)
        if number is not None and number <= last_cap:
            result.add(number)
    return result


def drop_bounding(keep: set[int], last_cap: int) -> None:
    """Drop every capability not in `keep` from the bounding set.

    Needs CAP_SETPCAP, so it runs before the user switch."""
    from pyrunc.linux import _libc

    for cap in range(last_cap + 1):
        if cap not in keep and _libc.prctl(PR_CAPBSET_READ, cap):
            _libc.prctl(PR_CAPBSET_DROP, cap)


def _mask(caps: set[int], last_cap: int) -> int:
    return sum(1 << cap for cap in caps if 0 <= cap <= last_cap)


def set_process_caps(effective: set[int], permitted: set[int], inheritable: set[int], ambient: set[int],
                     last_cap: int) -> None:
    """Set the effective, permitted and inheritable sets exactly, then raise
    the ambient ones. The kernel only lets a capability into the ambient set
    when it is both permitted and inheritable; others are skipped, as runc
    skips them (its default spec lists ambient caps without inheritable ones)."""
    from pyrunc.linux import _libc

    # One capset with the exact masks (python-prctl's set_caps did the same
    # through libcap, whose load cost every create ~0.2 ms of CPU).
    _libc.capset(_mask(effective, last_cap), _mask(permitted, last_cap), _mask(inheritable, last_cap))
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in sorted(ambient & permitted & inheritable):
        _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)
