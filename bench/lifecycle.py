"""Lifecycle benchmark: pyrunc beside runc (and crun), same bundle, one run.

    python bench/lifecycle.py [--rounds 3] [--reps 15] [--runtimes pyrunc,runc,crun]

Times `run` of /bin/true, and create / start / state / kill / delete of a
sleeping container, alternating the runtimes within every round so machine
noise hits them alike. Prints per-operation medians (ms) and each runtime's
ratio to runc. crun refuses this host's hybrid cgroups, so it runs inside a
private mount namespace without /sys/fs/cgroup/unified (the wrapper's own cost
is measured and subtracted for crun only). A benchmark, not a test: it asserts
nothing about time. Needs root; cleans up everything it creates.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT_DIR = os.path.dirname(HERE)
WRAPPER = ["unshare", "-m", "sh", "-c", 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"', "sh"]
OPS = ("run", "create", "start", "state", "kill", "delete")


def spawn_wait(argv: list[str]) -> tuple[float, int]:
    """Wall time (ms) and exit code of argv, stdio on /dev/null."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                                           (os.POSIX_SPAWN_DUP2, devnull, 2)])
        _, status = os.waitpid(pid, 0)
        elapsed = (time.perf_counter() - t0) * 1000
    finally:
        os.close(devnull)
    return elapsed, os.waitstatus_to_exitcode(status)


class Runtime:
    def __init__(self, name: str, argv: list[str], work: str):
        self.name = name
        self.argv = argv
        self.root = os.path.join(work, "state-" + name)
        self.times: dict[str, list[float]] = {op: [] for op in OPS}
        self.rss: list[int] = []
        self.failures = 0

    def cmd(self, *args: str) -> list[str]:
        return [*self.argv, "--root", self.root, *args]

    def timed(self, op: str, *args: str) -> int:
        elapsed, code = spawn_wait(self.cmd(*args))
        if code != 0:
            self.failures += 1
        elif op:
            self.times[op].append(elapsed)
        return code

    def state(self, container_id: str) -> dict:
        out = subprocess.run(self.cmd("state", container_id), capture_output=True, text=True)
        return json.loads(out.stdout) if out.returncode == 0 else {}

    def cleanup(self) -> None:
        if not os.path.isdir(self.root):
            return
        for container_id in os.listdir(self.root):
            subprocess.run(self.cmd("delete", "--force", container_id), capture_output=True)


def make_bundles(work: str, cg_parent: str) -> tuple[str, dict]:
    """A busybox rootfs and runc's default config (from `runc spec`)."""
    rootfs = os.path.join(work, "rootfs")
    subprocess.run([os.path.join(ROOT_DIR, "tools", "busybox-rootfs"), rootfs], check=True)
    spec_dir = os.path.join(work, "spec")
    os.makedirs(spec_dir)
    subprocess.run(["runc", "spec"], cwd=spec_dir, check=True)
    with open(os.path.join(spec_dir, "config.json")) as f:
        config = json.load(f)
    config["root"] = {"path": rootfs, "readonly": True}
    config["process"]["terminal"] = False
    return cg_parent, config


def write_bundle(work: str, template: dict, cg_parent: str, container_id: str, args: list[str]) -> str:
    path = os.path.join(work, "bundles", container_id)
    os.makedirs(path, exist_ok=True)
    config = json.loads(json.dumps(template))
    config["process"]["args"] = args
    config["linux"]["cgroupsPath"] = f"{cg_parent}/{container_id}"
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    return path


def wait_stopped(rt: Runtime, container_id: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if rt.state(container_id).get("status") == "stopped":
            return
        time.sleep(0.01)


def init_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def one_round(rt: Runtime, work: str, template: dict, cg_parent: str, reps: int, tag: str) -> None:
    for i in range(reps):
        cid = f"b{tag}{rt.name[0]}{i}"
        bundle = write_bundle(work, template, cg_parent, cid, ["/bin/true"])
        rt.timed("run", "run", "--bundle", bundle, cid)
        cid = f"s{tag}{rt.name[0]}{i}"
        bundle = write_bundle(work, template, cg_parent, cid, ["/bin/sleep", "3600"])
        pid_file = os.path.join(bundle, "pid")
        if rt.timed("create", "create", "--bundle", bundle, "--pid-file", pid_file, cid) != 0:
            continue
        try:
            rt.rss.append(init_rss_kib(int(open(pid_file).read())))
        except (OSError, ValueError):
            pass
        rt.timed("start", "start", cid)
        rt.timed("state", "state", cid)
        rt.timed("kill", "kill", cid, "KILL")
        wait_stopped(rt, cid)
        rt.timed("delete", "delete", cid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--runtimes", default="pyrunc,runc,crun")
    parser.add_argument("--pyrunc", default=shutil.which("pyrunc") or os.path.join(ROOT_DIR, ".venv", "bin", "pyrunc"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: must run as root", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="pyrunc-bench.")
    cg_parent = f"/pyrunc-bench-{os.getpid()}"
    runtimes: list[Runtime] = []
    try:
        _, template = make_bundles(work, cg_parent)
        wrapper_ms = []
        for name in args.runtimes.split(","):
            if name == "pyrunc":
                runtimes.append(Runtime("pyrunc", [args.pyrunc], work))
            elif name == "runc" and shutil.which("runc"):
                runtimes.append(Runtime("runc", [shutil.which("runc")], work))
            elif name == "crun" and shutil.which("crun"):
                runtimes.append(Runtime("crun", [shutil.which("unshare"), *WRAPPER[1:], shutil.which("crun")], work))
        print(f"# {len(runtimes)} runtimes, {args.rounds} rounds x {args.reps} reps, busybox bundle from `runc spec`,"
              f" cgroupsPath {cg_parent}/<id>, kernel {os.uname().release}")
        for r in range(args.rounds):
            order = runtimes[r % len(runtimes):] + runtimes[: r % len(runtimes)]
            for rt in order:
                print(f"  .. round {r + 1}: {rt.name}", file=sys.stderr)
                one_round(rt, work, template, cg_parent, args.reps, f"{r}")
            for _ in range(args.reps):
                wrapper_ms.append(spawn_wait([shutil.which("unshare"), *WRAPPER[1:], "/bin/true"])[0])
        report(runtimes, statistics.median(wrapper_ms))
    finally:
        for rt in runtimes:
            rt.cleanup()
        for hierarchy in os.listdir("/sys/fs/cgroup"):
            parent = os.path.join("/sys/fs/cgroup", hierarchy, cg_parent.lstrip("/"))
            if os.path.isdir(parent):
                for child in os.listdir(parent):
                    if os.path.isdir(os.path.join(parent, child)):
                        os.rmdir(os.path.join(parent, child))
                os.rmdir(parent)
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(runtimes: list[Runtime], wrapper_ms: float) -> None:
    names = [rt.name for rt in runtimes]
    base = next((rt for rt in runtimes if rt.name == "runc"), None)
    print(f"\n{'operation (median ms)':<24}" + "".join(f"{n:>10}" for n in names)
          + "".join(f"{n + '/runc':>14}" for n in names if base and n != "runc"))
    for op in OPS:
        meds = {}
        for rt in runtimes:
            values = rt.times[op]
            med = statistics.median(values) if values else float("nan")
            if rt.name == "crun":
                med -= wrapper_ms
            meds[rt.name] = med
        line = f"{op:<24}" + "".join(f"{meds[n]:>10.2f}" for n in names)
        if base:
            line += "".join(f"{meds[n] / meds['runc']:>14.2f}" for n in names if n != "runc")
        print(line)
    rss = {rt.name: statistics.median(rt.rss) if rt.rss else 0 for rt in runtimes}
    line = f"{'waiting init RSS (KiB)':<24}" + "".join(f"{rss[n]:>10.0f}" for n in names)
    if base and rss.get("runc"):
        line += "".join(f"{rss[n] / rss['runc']:>14.2f}" for n in names if n != "runc")
    print(line)
    print(f"\n(crun figures are net of its mount-namespace wrapper, {wrapper_ms:.2f} ms; "
          f"failures: " + ", ".join(f"{rt.name} {rt.failures}" for rt in runtimes) + ")")


if __name__ == "__main__":
    raise SystemExit(main())
