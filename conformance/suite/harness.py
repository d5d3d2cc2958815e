"""The conformance harness: a tiny test runner, the runtime driver, bundles, and
the "nothing left behind" checks.

Black-box by design: the runtime is only ever driven through the OCI lifecycle
commands with runc's command line (`[--root DIR] create --bundle B [--pid-file F]
ID`, `start ID`, `state ID`, `kill ID SIG`, `delete [--force] ID`), and this
package imports nothing from pyrunc. Everything a test expects is derived from
the config.json it wrote, following the runtime-spec text (runtime.md,
runtime-linux.md, config.md, config-linux.md).

House rules (the suite runs as root on a real host):
- one private `--root` per run;
- every container gets a cgroupsPath of its own under /pyrunc-conformance-<pid>/;
  the suite removes those parents at the end and touches no other cgroup;
- processes are only ever signalled by the runtime (`kill`), never by name;
- every container a test created is force-deleted when the test ends, pass or fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SUITE_PID = os.getpid()
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_PARENT = f"pyrunc-conformance-{SUITE_PID}"
OCI_VERSION = "1.0.2"  # the bundles' ociVersion: hook semantics below follow this version


class Failure(AssertionError):
    """A spec requirement the runtime did not meet."""


class Skip(Exception):
    """The host cannot run this test (missing kernel feature or controller)."""


# --------------------------------------------------------------------------- registry

@dataclass
class TestCase:
    area: str
    name: str
    func: Callable
    spec: str
    doc: str


REGISTRY: list[TestCase] = []
AREAS = ["lifecycle", "state", "errors", "namespaces", "mounts", "paths", "devices", "sysctl", "rlimits",
         "capabilities", "process", "hostname", "cgroups", "hooks"]


def test(area: str, spec: str):
    """Register a test: `spec` names the section of the runtime-spec it checks."""
    assert area in AREAS, area

    def register(func):
        doc = (func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else func.__name__
        REGISTRY.append(TestCase(area, func.__name__, func, spec, doc))
        return func

    return register


# --------------------------------------------------------------------------- runtime driver

@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def __str__(self) -> str:
        err = self.stderr.strip().replace("\n", " | ")[:300]
        return f"`{' '.join(self.argv[1:])}` exited {self.returncode}" + (f" ({err})" if err else "")


class Runtime:
    """The runtime binary under test, with the run's private state root."""

    def __init__(self, binary: str, root: str):
        self.binary = binary
        self.root = root

    def __call__(self, *args: str, timeout: float = 60, stdout_path: str | None = None,
                 cgroup: CgroupParent | None = None, cwd: str | None = None) -> Result:
        """Run one command. Output goes to files, never pipes: a container inherits
        create's stdio and would hold a pipe open until it exits."""
        argv = [self.binary, "--root", self.root, *args]
        preexec = cgroup.enter if cgroup else None
        with tempfile.TemporaryFile("w+") as err, \
                (open(stdout_path, "a") if stdout_path else tempfile.TemporaryFile("w+")) as out:
            started = time.monotonic()
            try:
                proc = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                      timeout=timeout, preexec_fn=preexec, cwd=cwd)
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = -1000
            seconds = time.monotonic() - started
            err.seek(0)
            stdout = ""
            if not stdout_path:
                out.seek(0)
                stdout = out.read()
            result = Result(argv, rc, stdout, err.read(), seconds)
        if rc == -1000:
            result.stderr += f"\n(timed out after {timeout}s)"
        return result

    def state(self, cid: str) -> dict:
        result = self("state", cid)
        if result.returncode != 0:
            raise Failure(f"state {cid}: {result}")
        try:
            return json.loads(result.stdout)
        except ValueError:
            raise Failure(f"state {cid}: output is not JSON: {result.stdout[:200]!r}") from None

    def wait_status(self, cid: str, want: str, timeout: float = 10) -> dict:
        """Poll `state` until status is `want` (10 s, as the spec gives no bound)."""
        deadline = time.monotonic() + timeout
        state = {}
        while time.monotonic() < deadline:
            state = self.state(cid)
            if state.get("status") == want:
                return state
            time.sleep(0.05)
        raise Failure(f"{cid}: status stayed {state.get('status')!r}, expected {want!r} within {timeout:.0f}s")


# --------------------------------------------------------------------------- cgroups

def cgroup_hierarchies() -> dict[str, str]:
    """Mounted hierarchies under /sys/fs/cgroup: {name: mountpoint}. A cgroup2
    mount at /sys/fs/cgroup itself is returned as {"": "/sys/fs/cgroup"}."""
    found = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, mountpoint = fields[sep + 1], fields[4]
            if fstype in ("cgroup", "cgroup2") and (mountpoint == CGROUP_ROOT or
                                                   os.path.dirname(mountpoint) == CGROUP_ROOT):
                found[os.path.relpath(mountpoint, CGROUP_ROOT).replace(".", "")] = mountpoint
    return found


def controller_dir(controller: str) -> str | None:
    """The mountpoint of a v1 controller (e.g. "memory"), or None."""
    for name, mountpoint in cgroup_hierarchies().items():
        if controller in name.split(","):
            return mountpoint
    return None


def is_cgroup2() -> bool:
    return "" in cgroup_hierarchies()


def read_file(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


class CgroupParent:
    """A cgroup the suite itself creates in every hierarchy (and removes at the end)."""

    def __init__(self, relpath: str):
        self.relpath = relpath.strip("/")
        self.created: list[str] = []

    def create(self) -> CgroupParent:
        for mountpoint in cgroup_hierarchies().values():
            path = mountpoint
            for part in self.relpath.split("/"):
                parent, path = path, os.path.join(path, part)
                if not os.path.isdir(path):
                    os.mkdir(path)
                    self.created.append(path)
                    # cpuset: a new v1 cgroup starts with empty cpus/mems, and no task may join it.
                    for name in ("cpuset.cpus", "cpuset.mems"):
                        value = read_file(os.path.join(parent, name))
                        if value is not None and read_file(os.path.join(path, name)) in ("", "\n"):
                            with open(os.path.join(path, name), "w") as f:
                                f.write(value.strip() or "\n")
        return self

    def enter(self) -> None:
        """preexec_fn: move the calling (forked) process into this cgroup everywhere."""
        for mountpoint in cgroup_hierarchies().values():
            with open(os.path.join(mountpoint, self.relpath, "cgroup.procs"), "w") as f:
                f.write("0")


def container_cgroup_dirs(cgroups_path: str) -> list[str]:
    """Where an absolute cgroupsPath lands: one dir per mounted hierarchy."""
    return [os.path.join(m, cgroups_path.lstrip("/")) for m in cgroup_hierarchies().values()]


def remove_cgroup_tree(top_relpath: str) -> list[str]:
    """rmdir, bottom-up, everything under /<top_relpath> in every hierarchy; only
    the suite's own parent is ever passed here. Returns what could not be removed."""
    left = []
    for mountpoint in cgroup_hierarchies().values():
        top = os.path.join(mountpoint, top_relpath)
        if not os.path.isdir(top):
            continue
        for dirpath, dirnames, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(dirpath)
            except OSError:
                left.append(dirpath)
    return left


# --------------------------------------------------------------------------- bundles

TEMPLATE_ROOTFS: str | None = None
CHECKER = os.path.join(HERE, "checker.sh")


def make_template_rootfs(base: str) -> str:
    """One busybox rootfs (tools/busybox-rootfs) that every bundle copies."""
    global TEMPLATE_ROOTFS
    path = os.path.join(base, "rootfs-template")
    subprocess.run([os.path.join(REPO, "tools", "busybox-rootfs"), path], check=True)
    os.makedirs(os.path.join(path, ".conformance"))
    shutil.copy(CHECKER, os.path.join(path, ".conformance", "lib.sh"))
    with open(os.path.join(path, ".conformance", "hook.sh"), "w") as f:
        f.write(HOOK_SCRIPT)
    os.chmod(os.path.join(path, ".conformance", "hook.sh"), 0o755)
    TEMPLATE_ROOTFS = path
    return path


# A hook that records what it sees: its stdin (the state), the namespaces it runs
# in, whether "/" is already the container's root, and (from the pid on stdin)
# whether the container's root is pivoted and what it runs. Arguments: NAME LOGDIR
# [EXIT]. Its order of execution goes to LOGDIR/order, one line per event.
HOOK_SCRIPT = r"""#!/bin/sh
name=$1; dir=$2; code=${3:-0}
cat > "$dir/$name.stdin"
pid=$(tr -d ' \n\t' < "$dir/$name.stdin" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
{
  for n in mnt net pid uts ipc; do echo "ns.$n $(readlink /proc/self/ns/$n)"; done
  if [ -e /.conformance/lib.sh ]; then echo "root container"; else echo "root host"; fi
  echo "pid ${pid:-none}"
  if [ -n "$pid" ] && [ -e "/proc/$pid/root/.conformance/lib.sh" ]; then echo "pivoted yes"; else echo "pivoted no"; fi
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then echo "cmdline $(tr '\0' ' ' < /proc/$pid/cmdline)"; fi
  echo "env.HOOK_VAR ${HOOK_VAR:-unset}"
  echo "args $*"
  [ -n "$4" ] && { if [ -e "$4" ]; then echo "exists $4"; else echo "absent $4"; fi; }
} > "$dir/$name.info"
echo "$name" >> "$dir/order"
[ "$code" = sleep ] && exec sleep 60
exit "$code"
"""


def base_config(cid: str, args: list[str], cgroups_path: str) -> dict:
    """A config.json with runc's `spec` defaults (terminal off), written here from
    config.md/config-linux.md rather than asked of the runtime."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin:/sbin:/usr/bin:/usr/sbin", f"CONFORMANCE_MARK={SUITE_PID}-{cid}"],
            "cwd": "/",
            "capabilities": {"bounding": list(caps), "effective": list(caps), "permitted": list(caps),
                             "inheritable": [], "ambient": []},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "conformance",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                            "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


class Bundle:
    """A bundle directory for one container: `config` is written by `write()`."""

    def __init__(self, path: str, cid: str, config: dict):
        self.path = path
        self.id = cid
        self.rootfs = os.path.join(path, "rootfs")
        self.config = config
        self.out = os.path.join(path, "stdout")
        self.pid_file = os.path.join(path, "pid")
        self.cgroup_preexisting = False  # a cgroup the suite made: it must stay after delete

    def write(self) -> Bundle:
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=2)
        return self

    def output(self) -> str:
        return read_file(self.out) or ""

    def probes(self) -> dict[str, str]:
        return parse_probes(self.output())

    @property
    def cgroups_path(self) -> str:
        return self.config["linux"]["cgroupsPath"]


def parse_probes(text: str) -> dict[str, str]:
    """The checker's output: "@@@ NAME" lines, each followed by its text."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("@@@ "):
            current = line[4:]
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {k: "\n".join(v) for k, v in sections.items()}


# --------------------------------------------------------------------------- per-test context

class Context:
    """What a test function gets: bundles, the runtime, checks, and cleanup."""

    def __init__(self, runtime: Runtime, workdir: str, number: int):
        self.rt = runtime
        self.tmp = os.path.join(workdir, f"t{number}")
        os.makedirs(self.tmp)
        self.number = number
        self.failures: list[str] = []
        self.ids: list[str] = []
        self.bundles: list[Bundle] = []
        self.known_pids: list[tuple[int, str]] = []  # (pid, start time) the runtime reported
        self.finalizers: list[Callable[[], None]] = []
        self._n = 0

    # ids and bundles
    def new_id(self) -> str:
        self._n += 1
        cid = f"conf{SUITE_PID}-{self.number}-{self._n}"
        self.ids.append(cid)
        return cid

    def bundle(self, args: list[str] | str = "true", cgroups_path: str | None = None,
               cid: str | None = None) -> Bundle:
        """A fresh bundle (own rootfs copy, own id and cgroup). `args` as a string
        is a script for the container's busybox sh, with the checker loaded."""
        cid = cid or self.new_id()
        path = os.path.join(self.tmp, f"{cid}-b{len(self.bundles) + 1}")
        os.makedirs(path)
        shutil.copytree(TEMPLATE_ROOTFS, os.path.join(path, "rootfs"), symlinks=True)
        if isinstance(args, str):
            args = ["/bin/sh", "-c", ". /.conformance/lib.sh; " + args]
        b = Bundle(path, cid, base_config(cid, args, cgroups_path or f"/{CGROUP_PARENT}/{cid}"))
        self.bundles.append(b)
        return b

    # checks
    def check(self, ok: bool, message: str) -> bool:
        if not ok:
            self.failures.append(message)
        return ok

    def equal(self, got, want, what: str) -> bool:
        return self.check(got == want, f"{what}: got {got!r}, want {want!r}")

    def ok(self, result: Result, what: str = "") -> Result:
        """The command must succeed; a failure ends the test."""
        if result.returncode != 0:
            raise Failure(f"{what + ': ' if what else ''}{result}")
        return result

    def error(self, result: Result, what: str) -> bool:
        """The spec requires an error here."""
        return self.check(result.returncode != 0, f"{what}: must generate an error, but {result}")

    # lifecycle shortcuts
    def create(self, b: Bundle, pid_file: bool = True, cgroup: CgroupParent | None = None) -> Result:
        b.write()
        args = ["create", "--bundle", b.path]
        if pid_file:
            args += ["--pid-file", b.pid_file]
        result = self.rt(*args, b.id, stdout_path=b.out, cgroup=cgroup)
        if result.returncode == 0:
            self.remember_pid(b.id)
        return result

    def remember_pid(self, cid: str) -> None:
        try:
            pid = self.rt.state(cid).get("pid") or 0
        except Failure:
            return
        if pid > 0:
            self.known_pids.append((pid, start_time(pid)))

    def run(self, b: Bundle, timeout: float = 10) -> dict[str, str]:
        """create, start, wait for stopped, delete; the checker's sections."""
        self.ok(self.create(b), "create")
        self.ok(self.rt("start", b.id), "start")
        self.rt.wait_status(b.id, "stopped", timeout)
        self.ok(self.rt("delete", b.id), "delete")
        self.check_nothing_left(b)
        return b.probes()

    # nothing left behind
    def leftovers(self, b: Bundle, cgroups_dirs: list[str] | None = None) -> list[str]:
        """What a deleted (or never created) container left behind: its state dir,
        its cgroup dirs, its processes, mounts naming its bundle."""
        left = []
        if os.path.exists(os.path.join(self.rt.root, b.id)):
            left.append(f"state dir {os.path.join(self.rt.root, b.id)}")
        if cgroups_dirs is None:
            absolute = b.cgroups_path.startswith("/") and not b.cgroup_preexisting
            cgroups_dirs = container_cgroup_dirs(b.cgroups_path) if absolute else []
        left += [f"cgroup {d}" for d in cgroups_dirs if os.path.isdir(d)]
        left += [f"process {p}" for p in marked_processes(f"CONFORMANCE_MARK={SUITE_PID}-{b.id}")]
        for pid, started in self.known_pids:
            if started and start_time(pid) == started and not is_zombie(pid):
                left.append(f"process {pid} (the container's pid)")
        with open("/proc/self/mountinfo") as f:
            left += [f"mount {line.split()[4]}" for line in f if b.path in line]
        return sorted(set(left))

    def check_nothing_left(self, b: Bundle, what: str = "after delete", cgroups_dirs: list[str] | None = None):
        left = self.leftovers(b, cgroups_dirs)
        self.check(not left, f"{what}: left behind: {', '.join(left)}")

    def cleanup(self) -> None:
        """Force-delete every container the test made; report what stays."""
        for b in self.bundles:
            if os.path.exists(os.path.join(self.rt.root, b.id)):
                self.rt("delete", "--force", b.id)
        for b in self.bundles:
            deadline = time.monotonic() + 5
            while self.leftovers(b) and time.monotonic() < deadline:
                time.sleep(0.1)
            left = self.leftovers(b)
            if left:
                self.failures.append(f"{b.id}: left behind after `delete --force`: {', '.join(left)}")
        for finalize in reversed(self.finalizers):
            finalize()

    def spawn(self, argv: list[str]) -> subprocess.Popen:
        """A helper process of the test's own (a namespace holder); it is killed,
        by its pid, when the test ends."""
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

        def stop():
            proc.kill()
            proc.wait()

        self.finalizers.append(stop)
        return proc


def start_time(pid: int) -> str:
    stat = read_file(f"/proc/{pid}/stat")
    return stat.rsplit(")", 1)[1].split()[19] if stat else ""


def is_zombie(pid: int) -> bool:
    stat = read_file(f"/proc/{pid}/stat")
    return not stat or stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def marked_processes(marker: str) -> list[int]:
    """Live processes whose initial environment carries the container's marker."""
    found = []
    needle = marker.encode() + b"\0"
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read() + b"\0" and not is_zombie(int(entry)):
                    found.append(int(entry))
        except OSError:
            pass
    return found


# --------------------------------------------------------------------------- parsing helpers

def parse_mountinfo(text: str) -> list[dict]:
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10:
            continue
        sep = fields.index("-")
        mounts.append({
            "id": fields[0], "parent": fields[1], "root": fields[3], "target": unescape(fields[4]),
            "options": set(fields[5].split(",")), "optional": fields[6:sep], "fstype": fields[sep + 1],
            "source": fields[sep + 2], "super": set(fields[sep + 3].split(",")),
        })
    return mounts


def unescape(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def top_mount(mounts: list[dict], target: str) -> dict | None:
    """The mount visible at `target` (the last one mounted there)."""
    found = [m for m in mounts if m["target"] == target]
    return found[-1] if found else None


def status_fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


# --------------------------------------------------------------------------- the runner

@dataclass
class Outcome:
    case: TestCase
    status: str  # pass, fail, skip, deviation (a failure the caller declared known)
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_suite(binary: str, only: list[str] | None = None, names: list[str] | None = None,
              verbose: bool = False, deviations: list[str] | None = None) -> int:
    import jsonschema  # noqa: F401  (fail early, before any container, if the venv lacks it)

    cases = [c for c in REGISTRY if (not only or c.area in only) and (not names or c.name in names)]
    base = tempfile.mkdtemp(prefix=f"pyrunc-conformance-{SUITE_PID}-")
    os.chmod(base, 0o755)  # bundles must be reachable from a user namespace too
    root = os.path.join(base, "state")
    os.makedirs(root)
    runtime = Runtime(binary, root)
    outcomes: list[Outcome] = []
    print(f"conformance: {binary} ({len(cases)} tests, --root {root}, cgroups under /{CGROUP_PARENT})", flush=True)
    try:
        make_template_rootfs(base)
        CgroupParent(CGROUP_PARENT).create()
        for number, case in enumerate(cases, 1):
            ctx = Context(runtime, base, number)
            started = time.monotonic()
            status, messages = "pass", []
            try:
                case.func(ctx)
            except Skip as e:
                status, messages = "skip", [str(e)]
            except Failure as e:
                messages = [str(e)]
            except Exception:  # noqa: BLE001  (a bug in the test itself: report it, keep going)
                messages = ["test error: " + traceback.format_exc().strip().splitlines()[-1]]
                if verbose:
                    traceback.print_exc()
            finally:
                try:
                    ctx.cleanup()
                except Exception:  # noqa: BLE001  (cleanup must reach every test)
                    ctx.failures.append("cleanup error: " + traceback.format_exc().strip().splitlines()[-1])
            messages = ctx.failures + messages if status != "skip" else messages + ctx.failures
            if status == "pass" and messages:
                status = "fail"
            if status == "skip" and ctx.failures:
                status = "fail"
            if status == "fail" and case.name in (deviations or ()):
                status = "deviation"
            outcome = Outcome(case, status, messages, time.monotonic() - started)
            outcomes.append(outcome)
            mark = {"pass": "ok  ", "fail": "FAIL", "skip": "skip", "deviation": "DEV "}[status]
            print(f"{mark} {case.area:<12} {case.name}  ({outcome.seconds:.1f}s)", flush=True)
            if status != "pass" or verbose:
                for m in messages:
                    print(f"       - {m}", flush=True)
    finally:
        # Containers are gone by now (each test force-deletes its own); remove the parents.
        time.sleep(0.2)
        left = remove_cgroup_tree(CGROUP_PARENT)
        if left:
            print(f"warning: could not remove cgroups: {' '.join(left)}")
        for dirpath, _, _ in os.walk(base):
            if os.path.ismount(dirpath):
                subprocess.run(["umount", "-l", dirpath], check=False)
        shutil.rmtree(base, ignore_errors=True)
    return report(binary, outcomes)


def report(binary: str, outcomes: list[Outcome]) -> int:
    print()
    print(f"{'area':<14}{'passed':>8}{'failed':>8}{'skipped':>9}  failed tests (spec section)")
    print("-" * 78)
    totals = {"pass": 0, "fail": 0, "skip": 0}
    known = [o for o in outcomes if o.status == "deviation"]
    for area in AREAS:
        rows = [o for o in outcomes if o.case.area == area]
        if not rows:
            continue
        counts = {s: sum(1 for o in rows if o.status == s) for s in totals}
        for s in totals:
            totals[s] += counts[s]
        failed = [f"{o.case.name} ({o.case.spec})" for o in rows if o.status == "fail"]
        print(f"{area:<14}{counts['pass']:>8}{counts['fail']:>8}{counts['skip']:>9}  {failed[0] if failed else ''}")
        for name in failed[1:]:
            print(f"{'':<39}  {name}")
    print("-" * 78)
    print(f"{'total':<14}{totals['pass']:>8}{totals['fail']:>8}{totals['skip']:>9}")
    for o in known:
        print(f"known deviation from the spec: {o.case.area} {o.case.name} ({o.case.spec})")
    extra = f", {len(known)} known deviation{'s' if len(known) != 1 else ''}" if known else ""
    print(f"conformance: {totals['pass']} passed, {totals['fail']} failed, {totals['skip']} skipped{extra}")
    return 1 if totals["fail"] else 0

