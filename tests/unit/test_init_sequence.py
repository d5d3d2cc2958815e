"""The container init's set-up (init.stage2.setup) against a recording fake
kernel (linux.syscalls.Kernel): the order of the steps, and what a failure
at each step reports to `pyrunc create` and leaves behind. No root needed,
nothing reaches the real kernel's mounts or credentials: every call the
steps make goes to FakeKernel, and the real Kernel class is booby-trapped
for the duration (a step that forgot to pass the kernel down fails here,
instead of mounting on the host). The same code runs against the real
kernel in tests/integration (test_run, test_failures, test_escapes, ...).

FakeKernel models just enough of a filesystem: every path exists as a
directory unless listed in `files` (regular files) or `missing`; fds are
numbers from 1000 up, each remembered with the container path it names,
so the tests can say which fds are still open at the end.
"""

from __future__ import annotations

import copy
import errno
import os
import pathlib
import stat
import struct
import types

import pytest

from pyrunc import jsonlite, sync
from pyrunc.init import stage2
from pyrunc.init.context import InitContext, error_message
from pyrunc.linux import _libc, console, syscalls
from pyrunc.spec import load
from pyrunc.spec.model import Config

CONFIGS = pathlib.Path(__file__).parent / "configs" / "good"
BUNDLE = "/var/lib/bundles/seam"
ROOTFS = BUNDLE + "/rootfs"

S_DIR = stat.S_IFDIR | 0o755
S_FILE = stat.S_IFREG | 0o644
PROC_SUPER_MAGIC = 0x9FA0


class FakeKernel:
    """Records every call as a tuple (name, *args with fds and paths named
    as container paths); `fail_when(predicate, errno)` makes the first
    matching call raise OSError(errno) instead."""

    def __init__(self, rootfs: str = ROOTFS):
        self.rootfs = rootfs
        self.entered = False  # pivot_root, move_root or chroot done: "/" is the container's
        self.calls: list[tuple] = []
        self.fds: dict[int, str] = {}
        self.next_fd = 1000
        self.cwd = "host:/"
        self.mask = 0o022
        self.files = {"/dev/null", "/etc/passwd", "/bin/sh", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                      "/proc/timer_list", "/proc/sched_debug", "/proc/sysrq-trigger", "host:/proc/self/mountinfo"}
        self.missing: set[str] = {"/proc/timer_stats", "/proc/scsi", "/dev/console"}
        self.reads: dict[str, bytes] = {
            "/etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
            "/proc/self/setgroups": b"allow\n",
            "host:/proc/self/mountinfo": (b"22 1 0:21 / /proc rw - proc proc rw\n"
                                          b"23 1 0:22 / /sys rw - sysfs sysfs rw\n"),
        }
        self.offsets: dict[int, int] = {}
        self._failure = None

    # ---- test controls
    def fail_when(self, predicate, number: int = errno.EPERM) -> None:
        self._failure = (predicate, number)

    def adopt(self, what: str) -> int:
        """An fd the init was handed (console socket, mount sources)."""
        return self._new_fd(what)

    def open_fds(self) -> dict[int, str]:
        return dict(self.fds)

    # ---- bookkeeping
    def _new_fd(self, path: str) -> int:
        fd = self.next_fd
        self.next_fd += 1
        self.fds[fd] = path
        return fd

    def _path(self, path, dir_fd=None) -> str:
        """A path as the container sees it ("host:..." outside the rootfs
        before the root is entered); /proc/self/fd/N names fd N's path."""
        if path is None:
            return None
        if isinstance(path, bytes):
            path = path.decode()
        for prefix in ("/proc/self/fd/", "self/fd/"):
            if path.startswith(prefix) and path[len(prefix):].isdigit():
                return self.fds[int(path[len(prefix):])]
        if not path.startswith("/"):
            base = self.fds[dir_fd] if dir_fd is not None else self.cwd
            where, _, base = base.rpartition(":")
            joined = os.path.normpath(base.rstrip("/") + "/" + path)
            return f"{where}:{joined}" if where else joined
        if self.entered:
            return os.path.normpath(path)
        if path == self.rootfs or path.startswith(self.rootfs + "/"):
            return path[len(self.rootfs):] or "/"
        return "host:" + path

    def _record(self, *call) -> None:
        self.calls.append(call)
        if self._failure is not None and self._failure[0](call):
            number = self._failure[1]
            self._failure = None
            raise OSError(number, os.strerror(number))

    def _stat(self, path: str):
        if path in self.missing:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        if path == "/dev/null":
            return types.SimpleNamespace(st_mode=stat.S_IFCHR | 0o666, st_rdev=os.makedev(1, 3), st_uid=0)
        return types.SimpleNamespace(st_mode=S_FILE if path in self.files else S_DIR, st_rdev=0, st_uid=0)

    # ---- process and session
    def setsid(self):
        self._record("setsid")

    def prctl(self, option, *args):
        self._record("prctl", option, *args)

    def join_session_keyring(self, name):
        self._record("join_session_keyring", name)

    def sethostname(self, name):
        self._record("sethostname", name)

    def setdomainname(self, name):
        self._record("setdomainname", name)

    def in_user_namespace(self):
        return False

    def umask(self, mask):
        self._record("umask", oct(mask))
        old, self.mask = self.mask, mask
        return old

    def prlimit(self, pid, resource, limits):
        self._record("prlimit", resource, limits)

    def signal(self, number, handler):
        self._record("signal", number)

    # ---- files and directories
    def open(self, path, flags, mode=0o777, *, dir_fd=None):
        name = self._path(path, dir_fd)
        self._record("open", name)
        if name in self.missing and not flags & os.O_CREAT:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        self.missing.discard(name)
        return self._new_fd(name)

    def openat2(self, dir_fd, path, flags, resolve):
        name = self._path(path, dir_fd)
        self._record("openat2", name)
        self._stat(name)
        return self._new_fd(name)

    def close(self, fd):
        self._record("close", self.fds.get(fd, fd))
        if fd not in self.fds:
            raise OSError(errno.EBADF, "closed twice or never opened", fd)
        del self.fds[fd]

    def dup(self, fd):
        return self._new_fd(self.fds[fd])

    def read(self, fd, size):
        data = self.reads.get(self.fds[fd], b"")
        offset = self.offsets.get(fd, 0)
        self.offsets[fd] = offset + size
        return data[offset:offset + size]

    def write(self, fd, data):
        self._record("write", self.fds[fd], data)
        return len(data)

    def stat(self, path, *, dir_fd=None, follow_symlinks=True):
        return self._stat(self._path(path, dir_fd))

    def lstat(self, path, *, dir_fd=None):
        return self._stat(self._path(path, dir_fd))

    def fstat(self, fd):
        if fd in (0, 1, 2) and fd not in self.fds:  # the caller's stdio: pipes
            return types.SimpleNamespace(st_mode=stat.S_IFIFO | 0o600, st_rdev=0, st_uid=0)
        return self._stat(self.fds[fd])

    def fstatvfs(self, fd):
        return types.SimpleNamespace(f_flag=0)

    def fstatfs_type(self, fd):
        return PROC_SUPER_MAGIC if self.fds[fd].startswith("/proc") else 0x01021994

    def isdir(self, path):
        return stat.S_ISDIR(self._stat(self._path(path)).st_mode)

    def exists(self, path):
        return self._path(path) not in self.missing

    lexists = exists

    def isfile(self, path):
        return self._path(path) in self.files

    def access(self, path, mode):
        return self._path(path) in self.files

    def mkdir(self, path, mode=0o777, *, dir_fd=None):
        name = self._path(path, dir_fd)
        self._record("mkdir", name)
        self.missing.discard(name)

    def mknod(self, path, mode, device, *, dir_fd=None):
        self._record("mknod", self._path(path, dir_fd), os.major(device), os.minor(device))

    def chown(self, path, uid, gid, *, dir_fd=None, follow_symlinks=True):
        self._record("chown", self._path(path, dir_fd), uid, gid)

    def fchown(self, fd, uid, gid):
        self._record("fchown", self.fds.get(fd, fd), uid)

    def fchmod(self, fd, mode):
        self._record("fchmod", self.fds[fd], oct(mode))

    def symlink(self, target, path, *, dir_fd=None):
        self._record("symlink", self._path(path, dir_fd), target)

    def unlink(self, path, *, dir_fd=None):
        name = self._path(path, dir_fd)
        self._record("unlink", name)
        if name not in self.files:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)

    def readlink(self, path, *, dir_fd=None):
        raise OSError(errno.EINVAL, "not a symlink", path)

    def ioctl(self, fd, request, arg):
        self._record("ioctl", self.fds[fd], request)
        if request == console.TIOCGPTN:
            return struct.pack("I", 0)
        if request == console.TIOCGPTPEER:
            return self._new_fd("/dev/pts/0")
        return arg

    def send_fd(self, sock_fd, payload, fd):
        self._record("send_fd", self.fds[sock_fd], self.fds[fd])

    # ---- root and working directory
    def chdir(self, path):
        self._record("chdir", self._path(path))
        self.cwd = self._path(path)

    def fchdir(self, fd):
        self._record("fchdir", self.fds[fd])
        self.cwd = self.fds[fd]

    def getcwd(self):
        self._record("getcwd")
        return self.cwd

    def chroot(self, path):
        self._record("chroot", self._path(path))
        self.entered = True
        self.cwd = "/"

    def pivot_root(self, new_root, put_old):
        self._record("pivot_root", self._path(new_root), self._path(put_old))
        self.entered = True
        # The host's root is stacked under the new "/" now, until detached.
        self.fds = {fd: path.replace("host:", "old-root:", 1) for fd, path in self.fds.items()}
        self.cwd = self.cwd.replace("host:", "old-root:", 1)

    # ---- mounts
    def mount(self, source, target, fstype, flags, data):
        self._record("mount", self._path(source) if source and "/" in source else source, self._path(target),
                     fstype, flags, data)
        if flags & _libc.MS_MOVE:
            self.entered = True

    def umount2(self, target, flags):
        self._record("umount2", self._path(target))

    def mount_setattr(self, fd, path, flags, attr_set, attr_clr):
        self._record("mount_setattr", self.fds[fd], attr_set, attr_clr)

    def move_mount(self, from_fd, from_path, to_fd, to_path, flags):
        self._record("move_mount", self.fds[from_fd], self.fds[to_fd])

    # ---- credentials, capabilities, seccomp, fds for the program
    def setgroups(self, groups):
        self._record("setgroups", list(groups))

    def setresgid(self, r, e, s):
        self._record("setresgid", r)

    def setresuid(self, r, e, s):
        self._record("setresuid", r)

    def drop_bounding(self, keep, last_cap):
        self._record("drop_bounding", sorted(keep))

    def set_process_caps(self, effective, permitted, inheritable, ambient, last_cap):
        self._record("set_process_caps", sorted(effective))

    def load_seccomp(self, program):
        self._record("load_seccomp")

    def sealed_stub_fd(self):
        self._record("sealed_stub_fd")
        return self._new_fd("memfd:stub (kept for the stub's execve)")

    def make_inheritable(self, first, count):
        self._record("make_inheritable", first, count)

    def mark_cloexec_from(self, first):
        self._record("mark_cloexec_from", first)


class FakeSyncSocket:
    """ctx.sock: what the init sends goes into the same call record; it
    answers "hooks" with "hooks-done" as `pyrunc create` does."""

    def __init__(self, kernel: FakeKernel):
        self.kernel = kernel
        self.replies: list[bytes] = []

    def send(self, data: bytes) -> int:
        message = jsonlite.loads(data)
        self.kernel._record("sync", message["type"])
        if message["type"] == "hooks":
            self.replies.append(jsonlite.dumps({"type": "hooks-done"}).encode())
        return len(data)

    def recvmsg(self, size, ancillary_size):
        return (self.replies.pop(0) if self.replies else b""), [], 0, None

    def fileno(self):
        return -1


@pytest.fixture(autouse=True)
def real_kernel_forbidden(monkeypatch):
    """Every call of the real Kernel fails the test: a step that does not
    pass the fake down would otherwise act on this machine."""
    def tripwire(name):
        def refuse(*args, **kwargs):
            raise AssertionError(f"the real kernel was called: {name}{args}")
        return staticmethod(refuse)

    for name, value in list(vars(syscalls.Kernel).items()):
        if isinstance(value, staticmethod):
            monkeypatch.setattr(syscalls.Kernel, name, tripwire(name))


def test_fake_kernel_has_every_call_of_the_real_one():
    names = {n for n, v in vars(syscalls.Kernel).items() if isinstance(v, staticmethod)}
    assert names - set(dir(FakeKernel)) == set()


# ---------------------------------------------------------------- configs

def runc_spec(**changes) -> dict:
    """`runc spec`'s config (tests/unit/configs/good/runc-spec.json), with a
    sysctl, a prestart hook and rprivate propagation so every step runs."""
    doc = load.parse_config((CONFIGS / "runc-spec.json").read_bytes(), "runc-spec.json")
    doc["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    doc["linux"]["rootfsPropagation"] = "rprivate"
    doc["hooks"] = {"prestart": [{"path": "/bin/true"}]}
    for key, value in changes.items():
        target = doc
        *parents, last = key.split(".")
        for part in parents:
            target = target[part]
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value
    return doc


# cgroup v1 with a v2 tree beside it (this machine's "hybrid" layout): the
# `cgroup` mount binds the container's directory of each hierarchy.
CGROUP_LAYOUT = types.SimpleNamespace(mode="hybrid", mounts={
    "cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory", "": "/sys/fs/cgroup/unified"})
CGROUPS = types.SimpleNamespace(paths={key: f"{point}/pyrunc/seam" for key, point in CGROUP_LAYOUT.mounts.items()})


def make_ctx(kernel: FakeKernel, doc: dict, **options) -> InitContext:
    cfg = Config(copy.deepcopy(doc), BUNDLE)
    console_fd = kernel.adopt("console socket") if cfg.process.terminal else -1
    return InitContext("seam", cfg, FakeSyncSocket(kernel), -1, CGROUPS, CGROUP_LAYOUT, console_fd=console_fd,
                       **options)


def run_setup(kernel: FakeKernel, ctx: InitContext):
    """stage2.setup, and what stage2._run would send on an error."""
    try:
        path = stage2.setup(ctx, {}, kernel=kernel)
    except BaseException as err:  # noqa: B902 (what _run catches)
        return None, error_message(err)
    return path, None


# ---------------------------------------------------------------- the order

def step(call: tuple, cfg: Config) -> str | None:
    """The step a call belongs to; None for lookups and closes."""
    name = call[0]
    if name in ("mount", "symlink") and call[2 if name == "mount" else 1].startswith("/sys/fs/cgroup"):
        return "mount /sys/fs/cgroup"
    if name == "mount":
        _, source, target, fstype, flags, _ = call
        if flags & _libc.MS_REMOUNT:
            return "readonly root" if target == "/" else "readonly paths" if target in cfg.linux.readonly_paths \
                else f"remount {target}"
        if flags & _libc.MS_MOVE:
            return "move root"
        if target.startswith(("old-root:", "host:/proc", "host:/sys")):
            return "detach old root"
        if source is None:
            return f"propagation {target}"
        if target == "/" and source == "/":
            return "bind rootfs"
        if source == "/dev/null" or target in cfg.linux.masked_paths:
            return "mask"
        if target in cfg.linux.readonly_paths:
            return "readonly paths"
        if target == "/dev/console":
            return "console"
        return f"mount {target}"
    if name == "umount2":
        return "detach old root"
    if name == "prctl":
        return {_libc.PR_SET_DUMPABLE: "non-dumpable", _libc.PR_SET_NO_NEW_PRIVS: "no_new_privs"}.get(call[1])
    if name == "write" and call[1].startswith("/proc/sys/"):
        return "sysctl"
    if name == "open" and call[1] == "/dev/ptmx" or name == "ioctl":
        return "terminal"
    if name == "mkdir" and call[1] == cfg.process.cwd:
        return "mkdir cwd"
    return {
        "setsid": "session", "join_session_keyring": "keyring", "sethostname": "hostname",
        "setdomainname": "domainname", "sync": f"sync {call[-1]}", "mknod": "devices", "symlink": "dev symlinks",
        "pivot_root": "pivot_root", "chroot": "chroot", "send_fd": "console socket", "sealed_stub_fd": "stub memfd",
        "prlimit": "rlimits", "signal": "signals", "getcwd": "cwd", "drop_bounding": "bounding set",
        "setgroups": "groups", "setresgid": "gid", "setresuid": "uid", "set_process_caps": "capabilities",
        "load_seccomp": "seccomp", "make_inheritable": "fd sweep", "mark_cloexec_from": "fd sweep",
    }.get(name)


def steps(kernel: FakeKernel, cfg: Config) -> list[str]:
    out: list[str] = []
    for call in kernel.calls:
        label = step(call, cfg)
        if label and (not out or out[-1] != label):
            out.append(label)
    return out


RUNC_SPEC_ORDER = [
    "session", "non-dumpable", "keyring", "hostname",
    # "/" is still the host's root (seen from the new mount namespace): made
    # rslave before anything is mounted, so nothing propagates back.
    "propagation host:/", "bind rootfs",
    "mount /proc", "mount /dev", "mount /dev/pts", "mount /dev/shm", "mount /dev/mqueue", "mount /sys",
    "mount /sys/fs/cgroup",
    "devices", "dev symlinks",
    "sync hooks",
    "pivot_root", "detach old root",
    "terminal", "console", "console socket",
    "sysctl",
    "mask", "readonly paths", "readonly root",
    "propagation /",
    "stub memfd", "rlimits", "signals", "cwd",
    "bounding set", "groups", "gid", "uid", "capabilities",
    "no_new_privs", "fd sweep",
]


def test_runc_spec_steps_in_order():
    kernel = FakeKernel()
    ctx = make_ctx(kernel, runc_spec())
    path, error = run_setup(kernel, ctx)
    assert error is None
    assert path == "/bin/sh"
    assert steps(kernel, ctx.config) == RUNC_SPEC_ORDER
    # The fds left: the pty slave the stub makes fds 0-2, and the stub's memfd.
    assert sorted(kernel.open_fds().values()) == ["/dev/pts/0", "memfd:stub (kept for the stub's execve)"]
    assert kernel.fds[ctx.tty_fd] == "/dev/pts/0"
    assert ctx.console_fd == -1
    assert kernel.mask == 0o022


def test_every_mask_and_readonly_path_is_done_after_the_sysctls():
    kernel = FakeKernel()
    ctx = make_ctx(kernel, runc_spec())
    run_setup(kernel, ctx)
    cfg = ctx.config
    sysctl_at = max(i for i, c in enumerate(kernel.calls) if step(c, cfg) == "sysctl")
    masked = {c[2] for c in kernel.calls[sysctl_at:] if step(c, cfg) == "mask"}
    # Missing paths are skipped (runc does the same).
    assert masked == set(cfg.linux.masked_paths) - kernel.missing - {"/proc/timer_stats", "/proc/scsi"}
    readonly = {c[2] for c in kernel.calls[sysctl_at:] if c[0] == "mount" and c[4] & _libc.MS_REMOUNT}
    assert readonly == set(cfg.linux.readonly_paths) | {"/"}


def test_devices_made_with_umask_zero_and_the_umask_restored():
    kernel = FakeKernel()
    ctx = make_ctx(kernel, runc_spec())
    run_setup(kernel, ctx)
    nodes = [c[1:] for c in kernel.calls if c[0] == "mknod"]
    assert nodes == [("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8),
                     ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0)]
    umasks = [c[1] for c in kernel.calls if c[0] == "umask"]
    assert umasks[:2] == ["0o0", "0o22"]


def test_in_a_user_namespace_devices_are_bound_from_the_host():
    doc = runc_spec()
    doc["linux"]["namespaces"].append({"type": "user"})
    kernel = FakeKernel()
    ctx = make_ctx(kernel, doc)
    path, error = run_setup(kernel, ctx)
    assert error is None
    assert not [c for c in kernel.calls if c[0] == "mknod"]
    binds = [(c[1], c[2]) for c in kernel.calls if c[0] == "mount" and c[2] in
             ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")]
    assert binds == [(f"host:{d}", d) for d in
                     ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")]


def test_no_new_mount_namespace_chroots_after_the_hooks():
    doc = runc_spec()
    doc["linux"]["namespaces"] = [ns for ns in doc["linux"]["namespaces"] if ns["type"] != "mount"]
    kernel = FakeKernel()
    ctx = make_ctx(kernel, doc)
    path, error = run_setup(kernel, ctx)
    assert error is None
    assert steps(kernel, ctx.config) == [
        "session", "non-dumpable", "keyring", "hostname", "sync hooks", "chroot",
        "terminal", "console", "console socket", "sysctl",
        "stub memfd", "rlimits", "signals", "cwd", "bounding set", "groups", "gid", "uid", "capabilities",
        "no_new_privs", "fd sweep",
    ]
    # The only mount: the pty onto /dev/console, in the runtime's mount namespace.
    assert [c[2] for c in kernel.calls if c[0] in ("mount", "pivot_root", "umount2")] == ["/dev/console"]


def test_no_pivot_moves_the_root_after_detaching_the_hosts_proc_and_sysfs():
    kernel = FakeKernel()
    ctx = make_ctx(kernel, runc_spec(), no_pivot=True)
    path, error = run_setup(kernel, ctx)
    assert error is None
    order = steps(kernel, ctx.config)
    assert "pivot_root" not in order
    at = order.index("sync hooks")
    assert order[at:at + 4] == ["sync hooks", "detach old root", "move root", "chroot"]
    detached = [c[1] for c in kernel.calls if c[0] == "umount2"]
    assert detached == ["host:/proc", "host:/sys"]
    assert sorted(kernel.open_fds().values()) == ["/dev/pts/0", "memfd:stub (kept for the stub's execve)"]


def test_writable_root_is_not_remounted():
    kernel = FakeKernel()
    ctx = make_ctx(kernel, runc_spec(**{"root.readonly": None}))
    run_setup(kernel, ctx)
    order = steps(kernel, ctx.config)
    assert "readonly root" not in order
    assert order[order.index("readonly paths") + 1] == "propagation /"


def test_without_a_terminal_no_pty_and_stdio_given_to_the_user():
    doc = runc_spec()
    doc["process"]["terminal"] = False
    doc["process"]["user"] = {"uid": 1000, "gid": 1000}
    kernel = FakeKernel()
    ctx = make_ctx(kernel, doc)
    path, error = run_setup(kernel, ctx)
    assert error is None
    order = steps(kernel, ctx.config)
    assert "terminal" not in order and "console" not in order
    assert ctx.tty_fd == -1
    # fds 0-2 are the caller's here: only fstat'd and, if not character devices, chowned.
    assert [c for c in kernel.calls if c[0] in ("setresgid", "setresuid")] == [("setresgid", 1000),
                                                                              ("setresuid", 1000)]
    assert list(kernel.open_fds().values()) == ["memfd:stub (kept for the stub's execve)"]


def test_a_missing_cwd_is_made_after_pivot_root():
    kernel = FakeKernel()
    kernel.missing.add("/work")
    ctx = make_ctx(kernel, runc_spec(**{"process.cwd": "/work"}))
    path, error = run_setup(kernel, ctx)
    assert error is None
    order = steps(kernel, ctx.config)
    assert order.index("pivot_root") < order.index("mkdir cwd") < order.index("terminal")


# ---------------------------------------------------------------- failures

def _mount_to(target):
    return lambda c: c[0] == "mount" and c[2] == target


# (step, the call that fails, the message `pyrunc create` reports); the
# call fails with EPERM, or the errno in ERRNO where EPERM has a fallback.
ERRNO = {"mount /sys": errno.ENODEV, "readonly path": errno.EINVAL, "readonly root": errno.EINVAL}
FAILURES = [
    # Not wrapped in a KernelError: the bare strerror (they do not fail in practice).
    ("session", lambda c: c[0] == "setsid", "operation not permitted"),
    ("non-dumpable", lambda c: c[0] == "prctl" and c[1] == _libc.PR_SET_DUMPABLE, "operation not permitted"),
    ("hostname", lambda c: c[0] == "sethostname", 'sethostname "runc": operation not permitted'),
    ("keyring", lambda c: c[0] == "join_session_keyring", "join session keyring: operation not permitted"),
    ("root propagation", lambda c: c[0] == "mount" and c[1] is None and c[2] == "host:/",
     'mount propagation of "/": operation not permitted'),
    ("bind rootfs", lambda c: c[0] == "mount" and c[2] == "/" and c[1] == "/",
     f'mount rootfs "{ROOTFS}": operation not permitted'),
    ("mount /proc", _mount_to("/proc"), 'mount "proc" on "/proc": operation not permitted'),
    ("mount /dev/pts", _mount_to("/dev/pts"), 'mount "devpts" on "/dev/pts": operation not permitted'),
    # EPERM would make it bind the host's /sys instead (test_sysfs_refused_...).
    ("mount /sys", _mount_to("/sys"), 'mount "sysfs" on "/sys": no such device'),
    ("cgroup bind", _mount_to("/sys/fs/cgroup/memory"),
     'mount "/sys/fs/cgroup/memory/pyrunc/seam" on "/sys/fs/cgroup/memory": operation not permitted'),
    ("mknod", lambda c: c[0] == "mknod" and c[1] == "/dev/full", 'mknod "/dev/full": operation not permitted'),
    ("dev symlinks", lambda c: c[0] == "symlink" and c[1] == "/dev/ptmx", "operation not permitted"),
    ("pivot_root", lambda c: c[0] == "pivot_root", f'pivot_root "{ROOTFS}": operation not permitted'),
    ("detach old root", lambda c: c[0] == "umount2", "unmount old root: operation not permitted"),
    ("open ptmx", lambda c: c[0] == "open" and c[1] == "/dev/ptmx",
     "open /dev/ptmx (process.terminal needs a devpts in the container): operation not permitted"),
    ("allocate pty", lambda c: c[0] == "ioctl" and c[2] == console.TIOCGPTPEER, "allocate pty: operation not permitted"),
    ("bind console", _mount_to("/dev/console"), 'mount "/dev/pts/0" on "/dev/console": operation not permitted'),
    ("send pty", lambda c: c[0] == "send_fd", "send the pty master to --console-socket: operation not permitted"),
    ("sysctl", lambda c: c[0] == "write" and c[1].startswith("/proc/sys/"),
     "write linux.sysctl net.ipv4.ip_forward: operation not permitted"),
    ("mask dir", _mount_to("/proc/acpi"), 'mount mask "/proc/acpi": operation not permitted'),
    ("mask file", _mount_to("/proc/kcore"), 'mount mask "/proc/kcore": operation not permitted'),
    ("readonly path", lambda c: c[0] == "mount" and c[2] == "/proc/sys" and c[4] & _libc.MS_REMOUNT,
     'remount readonly "/proc/sys": invalid argument'),
    ("readonly root", lambda c: c[0] == "mount" and c[2] == "/" and c[4] & _libc.MS_REMOUNT,
     'remount readonly root "/": invalid argument'),
    ("propagation last", lambda c: c[0] == "mount" and c[2] == "/" and c[4] == _libc.MS_PRIVATE | _libc.MS_REC,
     'mount propagation of "/": operation not permitted'),
    # A refused config value: its field named, errno 0 (ERRNO).
    ("rlimits", lambda c: c[0] == "prlimit", "process.rlimits[0]: setrlimit RLIMIT_NOFILE: operation not permitted"),
    ("setgroups", lambda c: c[0] == "setgroups", "setgroups []: operation not permitted"),
    ("setresuid", lambda c: c[0] == "setresuid", "set user 0:0: operation not permitted"),
    ("capabilities", lambda c: c[0] == "set_process_caps", "set capabilities: operation not permitted"),
    ("no_new_privs", lambda c: c[0] == "prctl" and c[1] == _libc.PR_SET_NO_NEW_PRIVS, "operation not permitted"),
]


@pytest.mark.parametrize("where, fails, message", FAILURES, ids=[f[0] for f in FAILURES])
def test_a_failing_step_is_reported_and_nothing_after_it_runs(where, fails, message):
    kernel = FakeKernel()
    source_fd = kernel.adopt("bind source opened by stage1")
    doc = runc_spec()
    doc["mounts"].append({"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind"]})
    ctx = make_ctx(kernel, doc)
    ctx.mount_source_fds = {len(doc["mounts"]) - 1: source_fd}
    number = ERRNO.get(where, errno.EPERM)
    kernel.fail_when(fails, number)

    path, error = run_setup(kernel, ctx)

    # The frame stage2._run sends: a setup failure, its errno, one line.
    assert error == sync.error_frame("setup", 0 if where == "rlimits" else number, message)
    assert path is None
    # Nothing after the failed call but closing what was open.
    failed_at = next(i for i, c in enumerate(kernel.calls) if fails(c))
    after = [c[0] for c in kernel.calls[failed_at + 1:]]
    assert set(after) <= {"close", "umask", "fchdir"}, after
    # Undone: the umask of the device step, and every fd the steps opened,
    # the mount sources handed in, the pty pair and the console socket.
    # Left: only what ctx still holds for a stub that will never run (the
    # process exits), and the memfd made for it.
    assert kernel.mask == 0o022
    held = {ctx.tty_fd, ctx.console_fd, *ctx.mount_source_fds.values()} - {-1}
    leftover = {fd: p for fd, p in kernel.open_fds().items() if fd not in held and not p.startswith("memfd:")}
    assert leftover == {}
    if where in ("session", "non-dumpable", "hostname", "keyring", "root propagation", "bind rootfs"):
        # Before the rootfs step's own cleanup is armed: stage1's fds are still
        # listed in ctx (the exiting init drops them).
        assert set(ctx.mount_source_fds.values()) == {source_fd}
    elif where not in ("open ptmx", "allocate pty", "bind console", "send pty"):
        assert ctx.mount_source_fds == {} and source_fd not in kernel.fds


@pytest.mark.parametrize("where", ["open ptmx", "allocate pty", "bind console", "send pty"])
def test_a_failing_terminal_closes_the_pty_and_the_console_socket(where):
    fails, message = {f[0]: (f[1], f[2]) for f in FAILURES}[where]
    kernel = FakeKernel()
    ctx = make_ctx(kernel, runc_spec())
    console_fd = ctx.console_fd
    kernel.fail_when(fails, errno.EIO)
    _, error = run_setup(kernel, ctx)
    assert error["errno"] == errno.EIO and error["msg"] == message.replace("operation not permitted",
                                                                           "input/output error")
    assert ctx.console_fd == -1 and console_fd not in kernel.fds
    assert ctx.tty_fd == -1
    assert not [p for p in kernel.open_fds().values() if p.startswith(("/dev/pts", "/dev/ptmx"))]


def test_the_cgroup_mount_binds_each_hierarchy_read_only():
    kernel = FakeKernel()
    ctx = make_ctx(kernel, runc_spec())
    run_setup(kernel, ctx)
    calls = [c for c in kernel.calls if step(c, ctx.config) == "mount /sys/fs/cgroup"]
    binds = [(c[1], c[2]) for c in calls if c[0] == "mount" and c[4] & _libc.MS_BIND and not c[4] & _libc.MS_REMOUNT]
    assert binds == [("host:/sys/fs/cgroup/cpu,cpuacct/pyrunc/seam", "/sys/fs/cgroup/cpu,cpuacct"),
                     ("host:/sys/fs/cgroup/memory/pyrunc/seam", "/sys/fs/cgroup/memory"),
                     ("host:/sys/fs/cgroup/unified/pyrunc/seam", "/sys/fs/cgroup/unified")]
    assert [c[1:] for c in calls if c[0] == "symlink"] == [("/sys/fs/cgroup/cpu", "cpu,cpuacct"),
                                                         ("/sys/fs/cgroup/cpuacct", "cpu,cpuacct")]
    # Read-only last: the tmpfs holding the binds.
    assert calls[-1][2] == "/sys/fs/cgroup" and calls[-1][4] & (_libc.MS_REMOUNT | _libc.MS_RDONLY)


def test_sysfs_refused_with_eperm_binds_the_hosts_sys_read_only():
    kernel = FakeKernel()
    ctx = make_ctx(kernel, runc_spec())
    kernel.fail_when(_mount_to("/sys"), errno.EPERM)
    _, error = run_setup(kernel, ctx)
    assert error is None
    calls = [c for c in kernel.calls if c[0] == "mount" and c[2] == "/sys"]
    assert [(c[1], c[3]) for c in calls] == [("sysfs", "sysfs"), ("host:/sys", None), (None, None)]
    assert calls[1][4] == _libc.MS_BIND | _libc.MS_REC
    # A bind ignores MS_RDONLY: the remount after it makes it read-only.
    assert calls[2][4] & (_libc.MS_REMOUNT | _libc.MS_RDONLY) == _libc.MS_REMOUNT | _libc.MS_RDONLY


def test_a_remount_refused_with_eperm_is_retried_with_the_locked_flags():
    kernel = FakeKernel()
    ctx = make_ctx(kernel, runc_spec())
    kernel.fail_when(lambda c: c[0] == "mount" and c[2] == "/" and c[4] & _libc.MS_REMOUNT, errno.EPERM)
    kernel.fstatvfs = lambda fd: types.SimpleNamespace(f_flag=os.ST_NOSUID | os.ST_NODEV)
    _, error = run_setup(kernel, ctx)
    assert error is None
    remounts = [c[4] for c in kernel.calls if c[0] == "mount" and c[2] == "/" and c[4] & _libc.MS_REMOUNT]
    assert len(remounts) == 2
    assert remounts[1] == remounts[0] | _libc.MS_NOSUID | _libc.MS_NODEV


def test_an_unreachable_root_is_a_refused_config_not_a_kernel_error():
    kernel = FakeKernel()
    kernel.missing.add("/")  # the rootfs, before it is entered
    ctx = make_ctx(kernel, runc_spec())
    _, error = run_setup(kernel, ctx)
    assert error == sync.error_frame("setup", 0, f'root.path: "{ROOTFS}": no such file or directory')
    assert step(kernel.calls[-1], ctx.config) == "hostname"


def test_sysctl_without_procfs_names_the_field():
    kernel = FakeKernel()
    doc = runc_spec()
    doc["mounts"] = [m for m in doc["mounts"] if m["type"] != "proc"]
    kernel.missing.add("/proc")
    ctx = make_ctx(kernel, doc)
    _, error = run_setup(kernel, ctx)
    assert error["kind"] == "setup" and error["errno"] == 0
    assert error["msg"].startswith("linux.sysctl: needs the container's procfs at /proc")
    assert "mask" not in steps(kernel, ctx.config)
    assert {fd: p for fd, p in kernel.open_fds().items() if fd != ctx.tty_fd} == {}


def test_program_not_found_is_an_exec_error_after_the_user_switch():
    kernel = FakeKernel()
    ctx = make_ctx(kernel, runc_spec(**{"process.args": ["nonesuch"]}))
    _, error = run_setup(kernel, ctx)
    assert error == sync.error_frame("exec", errno.ENOENT, 'exec: "nonesuch": executable file not found in $PATH')
    order = steps(kernel, ctx.config)
    assert order[-1] == "capabilities"
    assert "no_new_privs" not in order


def _fd_makers(doc: dict, **options) -> int:
    kernel = FakeKernel()
    run_setup(kernel, make_ctx(kernel, doc, **options))
    return sum(1 for c in kernel.calls if c[0] in ("open", "openat2"))


@pytest.mark.parametrize("options", [{}, {"no_pivot": True}], ids=["pivot_root", "no_pivot"])
def test_no_fd_leaks_whichever_open_fails(options):
    """EMFILE at each open of the whole set-up in turn: every fd opened
    before it is closed again (found: pivot_root kept the old root's fd
    when the new root's open failed)."""
    doc = runc_spec()
    total = _fd_makers(doc, **options)
    assert total > 50
    for n in range(1, total + 1):
        seen = []

        def nth_open(call):
            if call[0] in ("open", "openat2"):
                seen.append(call)
            return len(seen) == n

        kernel = FakeKernel()
        ctx = make_ctx(kernel, doc, **options)
        kernel.fail_when(nth_open, errno.EMFILE)
        path, error = run_setup(kernel, ctx)
        failed = seen[-1]
        if error is None:
            continue  # an optional lookup (a missing masked path, /etc/passwd for HOME)
        assert error["kind"] == "setup", (failed, error)
        held = {ctx.tty_fd, ctx.console_fd} - {-1}
        leftover = {fd: p for fd, p in kernel.open_fds().items() if fd not in held and not p.startswith("memfd:")}
        assert leftover == {}, (failed, error)
