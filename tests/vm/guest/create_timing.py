"""`create --systemd-cgroup` timed, pyrunc beside runc, in the VM (the
systemd job prints it for the lane's report): three creates each of the
same busybox bundle in a scope of system.slice, wall time per create, and
pyrunc's --debug phases of the last one. Everything made is deleted.
usage: create_timing.py PYRUNC [RUNC]"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.getcwd())
from tests.busybox import Bundle, base_config, make_rootfs  # noqa: E402


def main() -> int:
    runtimes = [("pyrunc", sys.argv[1])] + ([("runc", sys.argv[2])] if len(sys.argv) > 2 else [])
    work = tempfile.mkdtemp(prefix="pyrunc-timing-")
    try:
        make_rootfs(os.path.join(work, "rootfs"))
        for name, binary in runtimes:
            root = os.path.join(work, f"root-{name}")
            times, debug = [], ""
            for n in range(3):
                cid = f"timing-{name}-{n}"
                Bundle(work, base_config(["true"], f"system.slice:{name}:{cid}")).write()
                cmd = [binary, "--root", root, "--systemd-cgroup"]
                started = time.perf_counter()
                # Files, not pipes: the container's init keeps the stdio it
                # is given until it starts (a pipe would never end).
                with open(os.path.join(work, "stderr"), "w+") as err:
                    result = subprocess.run([*cmd, "--debug", "create", "--bundle", work, cid], stdout=err,
                                            stderr=err, stdin=subprocess.DEVNULL, text=True, timeout=60)
                    times.append((time.perf_counter() - started) * 1000)
                    err.seek(0)
                    debug = result.stderr = err.read()
                subprocess.run([*cmd, "delete", "--force", cid], capture_output=True)
                if result.returncode:
                    print(f"{name}: create failed: {result.stderr.strip()}")
                    break
            print(f"{name} --systemd-cgroup create: " + ", ".join(f"{t:.0f} ms" for t in times))
            if name == "pyrunc":
                for line in debug.splitlines():
                    if "ms" in line:
                        print(f"  {line.strip()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
