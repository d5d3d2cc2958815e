"""Lifecycle benchmark: pyrunc beside runc (and crun), same bundle, one run.

    python bench/lifecycle.py [--rounds 3] [--reps 15] [--runtimes pyrunc,runc,crun] [--quick]
                              [--systemd-cgroup]

Alternates the runtimes within every round so machine noise hits them
alike, and prints medians (ms), each runtime's ratio to runc, and the
targets of the project (issues 8 and 20) with whether pyrunc meets them:

    run /bin/true                 ≤ 1.0 × runc      create               ≤ 1.0 × runc
    start, state, kill, delete    within 2 ms of the interpreter floor (python -I -S -c pass)
    100 sequential runs           ≤ 0.9 × runc      list, 50 containers  ≤ 1.0 × runc
    delete --force of a created   ≤ 0.2 × runc      waiting init RSS     ≤ 1.0 × runc
    run with Docker's seccomp     ≤ 1.0 × runc      CPU (user+sys) a run ≤ 1.0 × runc
    2 and 4 parallel streams      throughput ≥ 1.1 × runc

CPU time is what wait4() reports for the command: its own user+sys and that
of every descendant it waited for (for `run`, the container's processes too).

The bundle is a busybox rootfs with `runc spec`'s config. crun refuses a
hybrid host's cgroups, so there it runs in a private mount namespace without
/sys/fs/cgroup/unified; that wrapper's cost is measured and subtracted for
crun only. With --systemd-cgroup every runtime gets that flag and every
container the cgroupsPath `system.slice:pyrunc-bench:<id>` (a scope of
system.slice, made through systemd: needs systemd as PID 1; the VM lane's
bench-systemd job). A benchmark, not a test: it asserts nothing. Needs root;
removes everything it creates (containers, cgroups, state, bundles).
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
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT_DIR = os.path.dirname(HERE)
WRAPPER_ARGS = ["-m", "sh", "-c", 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"', "sh"]
SINGLE_OPS = ("run", "run (seccomp)", "create", "start", "exec", "state", "kill", "delete", "delete -f created")


def spawn_wait(argv: list[str]) -> tuple[float, int, float]:
    """Wall time (ms), exit code and CPU time (ms, user+sys of argv and the
    descendants it reaped) of argv, stdio on /dev/null."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                                           (os.POSIX_SPAWN_DUP2, devnull, 2)])
        _, status, usage = os.wait4(pid, 0)
        elapsed = (time.perf_counter() - t0) * 1000
    finally:
        os.close(devnull)
    return elapsed, os.waitstatus_to_exitcode(status), (usage.ru_utime + usage.ru_stime) * 1000


class Runtime:
    def __init__(self, name: str, argv: list[str], work: str, wrapped: bool = False, systemd: bool = False):
        self.name = name
        self.argv = argv
        self.global_args = ["--systemd-cgroup"] if systemd else []
        self.wrapped = wrapped
        self.root = os.path.join(work, "state-" + name)
        self.times: dict[str, list[float]] = {op: [] for op in SINGLE_OPS}
        self.cpu: dict[str, list[float]] = {op: [] for op in SINGLE_OPS}
        self.totals: dict[str, list[float]] = {"100 runs": [], "list 50": [], "2 streams": [], "4 streams": []}
        self.rss: list[int] = []
        self.failures = 0

    def cmd(self, *args: str) -> list[str]:
        return [*self.argv, "--root", self.root, *self.global_args, *args]

    def timed(self, op: str | None, *args: str) -> int:
        elapsed, code, cpu = spawn_wait(self.cmd(*args))
        if code != 0:
            self.failures += 1
        elif op:
            self.times[op].append(elapsed)
            self.cpu[op].append(cpu)
        return code

    def state(self, container_id: str) -> dict:
        out = subprocess.run(self.cmd("state", container_id), capture_output=True, text=True)
        return json.loads(out.stdout) if out.returncode == 0 else {}

    def cleanup(self) -> None:
        if not os.path.isdir(self.root):
            return
        for container_id in os.listdir(self.root):
            if ":" not in container_id:
                subprocess.run(self.cmd("delete", "--force", container_id), capture_output=True)


class Bundles:
    """One config.json per container id; the busybox rootfs is shared."""

    def __init__(self, work: str, cg_parent: str, systemd: bool = False):
        self.work = work
        self.cg_parent = cg_parent
        self.systemd = systemd
        rootfs = os.path.join(work, "rootfs")
        subprocess.run([os.path.join(ROOT_DIR, "tools", "busybox-rootfs"), rootfs], check=True)
        spec_dir = os.path.join(work, "spec")
        os.makedirs(spec_dir)
        subprocess.run(["runc", "spec"], cwd=spec_dir, check=True)
        with open(os.path.join(spec_dir, "config.json")) as f:
            self.template = json.load(f)
        self.template["root"] = {"path": rootfs, "readonly": True}
        self.template["process"]["terminal"] = False
        with open(os.path.join(ROOT_DIR, "tests", "unit", "configs", "good", "docker-config.json")) as f:
            self.docker_seccomp = json.load(f)["linux"]["seccomp"]

    def make(self, container_id: str, args: list[str], seccomp: bool = False) -> str:
        path = os.path.join(self.work, "bundles", container_id)
        os.makedirs(path, exist_ok=True)
        config = json.loads(json.dumps(self.template))
        config["process"]["args"] = args
        config["linux"]["cgroupsPath"] = (f"system.slice:pyrunc-bench:{container_id}" if self.systemd
                                          else f"{self.cg_parent}/{container_id}")
        if seccomp:
            config["linux"]["seccomp"] = self.docker_seccomp
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


def one_round(rt: Runtime, bundles: Bundles, reps: int, tag: str, heavy: bool) -> None:
    for i in range(reps):
        cid = f"r{tag}{rt.name[0]}{i}"
        rt.timed("run", "run", "--bundle", bundles.make(cid, ["/bin/true"]), cid)
        cid = f"p{tag}{rt.name[0]}{i}"
        rt.timed("run (seccomp)", "run", "--bundle", bundles.make(cid, ["/bin/true"], seccomp=True), cid)
        cid = f"s{tag}{rt.name[0]}{i}"
        bundle = bundles.make(cid, ["/bin/sleep", "3600"])
        pid_file = os.path.join(bundle, "pid")
        if rt.timed("create", "create", "--bundle", bundle, "--pid-file", pid_file, cid) != 0:
            continue
        try:
            rt.rss.append(init_rss_kib(int(open(pid_file).read())))
        except (OSError, ValueError):
            pass
        rt.timed("start", "start", cid)
        rt.timed("exec", "exec", cid, "/bin/true")
        rt.timed("state", "state", cid)
        rt.timed("kill", "kill", cid, "KILL")
        wait_stopped(rt, cid)
        rt.timed("delete", "delete", cid)
        cid = f"f{tag}{rt.name[0]}{i}"
        if rt.timed(None, "create", "--bundle", bundles.make(cid, ["/bin/sleep", "3600"]), cid) == 0:
            rt.timed("delete -f created", "delete", "--force", cid)
    if not heavy:
        return
    # 100 sequential runs
    ids = [f"q{tag}{rt.name[0]}{i}" for i in range(100)]
    paths = [bundles.make(cid, ["/bin/true"]) for cid in ids]
    t0 = time.perf_counter()
    for cid, path in zip(ids, paths):
        rt.timed(None, "run", "--bundle", path, cid)
    rt.totals["100 runs"].append((time.perf_counter() - t0) * 1000)
    # list with 50 created containers
    ids = [f"l{tag}{rt.name[0]}{i}" for i in range(50)]
    for cid in ids:
        rt.timed(None, "create", "--bundle", bundles.make(cid, ["/bin/sleep", "3600"]), cid)
    listing = [spawn_wait(rt.cmd("list"))[0] for _ in range(5)]
    rt.totals["list 50"].append(statistics.median(listing))
    for cid in ids:
        rt.timed(None, "delete", "--force", cid)
    # 100 runs in two parallel streams, then in four (on this 2-CPU machine)
    for n_streams in (2, 4):
        streams = [[(f"x{n_streams}{tag}{rt.name[0]}{s}-{i}",
                     bundles.make(f"x{n_streams}{tag}{rt.name[0]}{s}-{i}", ["/bin/true"]))
                    for i in range(100 // n_streams)] for s in range(n_streams)]
        t0 = time.perf_counter()
        threads = [threading.Thread(target=lambda jobs: [rt.timed(None, "run", "--bundle", p, c) for c, p in jobs],
                                    args=(jobs,)) for jobs in streams]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rt.totals[f"{n_streams} streams"].append((time.perf_counter() - t0) * 1000)


def floor_ms(argv: list[str], reps: int) -> tuple[float, float]:
    """Median wall and CPU time (ms) of argv."""
    runs = [spawn_wait(argv) for _ in range(reps)]
    return statistics.median(r[0] for r in runs), statistics.median(r[2] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--runtimes", default="pyrunc,runc,crun")
    parser.add_argument("--quick", action="store_true", help="skip the 100-run, list and parallel passes")
    parser.add_argument("--pyrunc", default=os.path.join(ROOT_DIR, ".venv", "bin", "pyrunc"))
    parser.add_argument("--systemd-cgroup", action="store_true",
                        help="every runtime with --systemd-cgroup, containers in scopes of system.slice")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: must run as root", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="pyrunc-bench.")
    cg_parent = f"/pyrunc-bench-{os.getpid()}"
    runtimes: list[Runtime] = []
    try:
        systemd = args.systemd_cgroup
        bundles = Bundles(work, cg_parent, systemd)
        unshare = shutil.which("unshare")
        # Only a hybrid host needs crun's wrapper (pure v2 has no unified mount).
        hybrid = os.path.ismount("/sys/fs/cgroup/unified")
        for name in args.runtimes.split(","):
            if name == "pyrunc":
                runtimes.append(Runtime("pyrunc", [args.pyrunc], work, systemd=systemd))
            elif name == "runc" and shutil.which("runc"):
                runtimes.append(Runtime("runc", [shutil.which("runc")], work, systemd=systemd))
            elif name == "crun" and shutil.which("crun"):
                crun = shutil.which("crun")
                runtimes.append(Runtime("crun", [unshare, *WRAPPER_ARGS, crun] if hybrid else [crun], work,
                                        wrapped=hybrid, systemd=systemd))
        python = os.path.realpath(sys.executable)
        venv_python = os.path.join(ROOT_DIR, ".venv", "bin", "python")
        if not os.path.exists(venv_python):  # an installed pyrunc (the VM lane): the interpreter running this
            venv_python = sys.executable
        where = "system.slice:pyrunc-bench:<id> (--systemd-cgroup)" if systemd else f"{cg_parent}/<id>"
        print(f"# {', '.join(r.name for r in runtimes)}; {args.rounds} rounds x {args.reps} reps; busybox bundle "
              f"from `runc spec`; cgroupsPath {where}; kernel {os.uname().release}; {os.cpu_count()} cpu")
        wrapper, floors, venv_floors = [], [], []
        for r in range(args.rounds):
            order = runtimes[r % len(runtimes):] + runtimes[: r % len(runtimes)]
            for rt in order:
                print(f"  .. round {r + 1}: {rt.name}", file=sys.stderr)
                one_round(rt, bundles, args.reps, str(r), heavy=not args.quick)
            wrapper.append(floor_ms([unshare, *WRAPPER_ARGS, "/bin/true"], args.reps))
            floors.append(floor_ms([python, "-I", "-S", "-c", "pass"], args.reps))
            venv_floors.append(floor_ms([venv_python, "-c", "pass"], args.reps))
        report(runtimes, tuple(statistics.median(w[k] for w in wrapper) for k in (0, 1)),
               statistics.median(f[0] for f in floors), statistics.median(f[0] for f in venv_floors))
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


TARGETS = {  # op: (kind, bound)
    "run": ("ratio", 1.0), "run (seccomp)": ("ratio", 1.0), "create": ("ratio", 1.0),
    "start": ("floor", 2.0), "state": ("floor", 2.0), "kill": ("floor", 2.0), "delete": ("floor", 2.0),
    "delete -f created": ("ratio", 0.2), "100 runs": ("ratio", 0.9), "list 50": ("ratio", 1.0),
    "cpu: run": ("ratio", 1.0),
}


def report(runtimes: list[Runtime], wrapper: tuple[float, float], floor: float, venv_floor: float) -> None:
    """wrapper: crun's mount-namespace wrapper, (wall ms, CPU ms) a call."""
    wrapper_ms, wrapper_cpu = wrapper
    names = [rt.name for rt in runtimes]
    by_name = {rt.name: rt for rt in runtimes}
    has_runc = "runc" in by_name
    print(f"\ninterpreter floor: python -I -S -c pass {floor:.2f} ms, venv python -c pass {venv_floor:.2f} ms\n")
    header = f"{'(median ms)':<22}" + "".join(f"{n:>10}" for n in names)
    if has_runc:
        header += "".join(f"{n + '/runc':>13}" for n in names if n != "runc")
    print(header + f"{'target':>22}{'':>6}")

    def net(rt: Runtime, value: float, per_call: int = 1) -> float:
        return value - wrapper_ms * per_call if rt.wrapped else value

    def line(label: str, values: dict[str, float]) -> None:
        text = f"{label:<22}" + "".join(f"{values.get(n, float('nan')):>10.2f}" for n in names)
        ratio = None
        if has_runc:
            for n in names:
                if n != "runc":
                    r = values.get(n, float("nan")) / values["runc"] if values.get("runc") else float("nan")
                    text += f"{r:>13.2f}"
                    if n == "pyrunc":
                        ratio = r
        kind, bound = TARGETS.get(label, (None, None))
        if kind == "ratio" and ratio is not None:
            text += f"{'pyrunc/runc <= ' + str(bound):>22}{'met' if ratio <= bound else 'MISSED':>8}"
        elif kind == "floor" and "pyrunc" in values:
            over = values["pyrunc"] - floor
            text += f"{f'floor + {over:.1f} <= +{bound:.0f}':>22}{'met' if over <= bound else 'MISSED':>8}"
        print(text)

    for op in SINGLE_OPS:
        line(op, {rt.name: net(rt, statistics.median(rt.times[op])) for rt in runtimes if rt.times[op]})
    print(f"\n{'CPU, user+sys (ms)':<22}")
    for op in SINGLE_OPS:
        line(f"cpu: {op}", {rt.name: statistics.median(rt.cpu[op]) - (wrapper_cpu if rt.wrapped else 0)
                            for rt in runtimes if rt.cpu[op]})
    print()
    for key, calls in (("100 runs", 100), ("list 50", 1)):
        values = {rt.name: net(rt, statistics.median(rt.totals[key]), calls) for rt in runtimes if rt.totals[key]}
        if values:
            line(key, values)
    seq = {rt.name: statistics.median(rt.totals["100 runs"]) for rt in runtimes if rt.totals["100 runs"]}
    for key in ("2 streams", "4 streams"):
        par = {rt.name: statistics.median(rt.totals[key]) for rt in runtimes if rt.totals[key]}
        if not (par and has_runc and "pyrunc" in par):
            continue
        throughput = {n: 100 / (par[n] / 1000) for n in par}
        text = f"{key + ' (runs/s)':<22}" + "".join(f"{throughput.get(n, float('nan')):>10.1f}" for n in names)
        ratio = throughput["pyrunc"] / throughput["runc"]
        text += "".join(f"{throughput[n] / throughput['runc']:>13.2f}" for n in names if n != "runc")
        print(text + f"{'pyrunc/runc >= 1.1':>22}{'met' if ratio >= 1.1 else 'MISSED':>8}")
        print("  speed-up over sequential: " + ", ".join(f"{n} x{seq[n] / par[n]:.2f}" for n in par if n in seq))
    rss = {rt.name: statistics.median(rt.rss) for rt in runtimes if rt.rss}
    text = f"{'waiting init RSS KiB':<22}" + "".join(f"{rss.get(n, 0):>10.0f}" for n in names)
    if has_runc and rss.get("runc"):
        text += "".join(f"{rss.get(n, 0) / rss['runc']:>13.2f}" for n in names if n != "runc")
        text += f"{'pyrunc/runc <= 1.0':>22}{'met' if rss.get('pyrunc', 1e9) <= rss['runc'] else 'MISSED':>8}"
    print(text)
    net_of = (f"crun figures are net of its mount-namespace wrapper, {wrapper_ms:.2f} ms a call; "
              if any(rt.wrapped for rt in runtimes) else "")
    print(f"\n({net_of}failures: " + ", ".join(f"{rt.name} {rt.failures}" for rt in runtimes) + ")")


if __name__ == "__main__":
    raise SystemExit(main())
