"""pyrunc as a Python library: `Runtime` and the bundle checks.

    import pyrunc

    rt = pyrunc.Runtime(root="/run/pyrunc")
    rt.create("web", "/srv/bundles/web")
    rt.start("web")
    print(rt.state("web").status)        # "running"
    rt.kill("web", "KILL")
    rt.delete("web", force=True)

The methods are the CLI's verbs, over the same functions (the CLI is a thin
adapter on them), so they behave as `pyrunc VERB` does: the same checks,
the same state under `root`, interchangeable with the command line. Errors
are the exceptions of pyrunc.errors (re-exported here): ContainerNotFound,
ContainerExists, InvalidStatus (the operation is not allowed in the
container's status), ConfigError (`.problems`: every (json path, message)),
KernelError (`.errno`), all PyruncError.

Forking: create, start, run and exec fork (and clone) the container's
processes from the calling process, which is only safe while it has one
thread: with other threads running they raise ThreadsRunning instead (call
them before starting threads, or from a single-threaded worker process).
Foreground run and exec make the caller a child subreaper while they
wait (restored afterwards), forward the usual signals to the container
and reap children with waitpid(-1) until the container's exits. As with
the command, the container's process inherits the caller's stdin, stdout
and stderr (after create and a detached run too, so a container that
outlives the call holds them open). Run as root, or as another user with
a rootless config (a user namespace mapping that user; see the README's
Rootless section): `Runtime()` then keeps state under $XDG_RUNTIME_DIR.

Imports: errors, store, ops.*, spec.*, linux.signals (the ops layer's
callers, beside the CLI; the CLI does not import this module).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyrunc import oslite as os
from pyrunc.errors import (ConfigError, ContainerError, ContainerExists, ContainerNotFound, InvalidStatus,
                           KernelError, PyruncError, ThreadsRunning)
from pyrunc import store as _store
from pyrunc.store import Store

__all__ = ["Runtime", "ContainerState", "Problem", "validate", "check", "default_spec", "PyruncError",
           "ContainerError", "ContainerNotFound", "ContainerExists", "InvalidStatus", "ConfigError", "KernelError",
           "ThreadsRunning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config: its JSON path ("" for the whole
    document), what is wrong, and which check found it: "schema" (the
    runtime-spec's JSON schema), "config" (a rule the schema cannot
    express) or "host" (what create would refuse on this machine)."""

    path: str
    message: str
    kind: str = "config"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True)
class ContainerState:
    """A container's state, as `pyrunc state` prints it (`to_dict()`)."""

    id: str
    status: str  # creating, created, running, paused or stopped
    pid: int  # the init's pid on the host; 0 once stopped
    bundle: str
    rootfs: str = ""
    created: str = ""  # RFC 3339, nanoseconds
    oci_version: str = ""
    owner: str = ""
    annotations: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: dict) -> "ContainerState":
        return cls(id=doc["id"], status=doc["status"], pid=doc.get("pid", 0), bundle=doc.get("bundle", ""),
                   rootfs=doc.get("rootfs", ""), created=doc.get("created", ""),
                   oci_version=doc.get("ociVersion", ""), owner=doc.get("owner", ""),
                   annotations=dict(doc.get("annotations") or {}))

    def to_dict(self) -> dict:
        """The state JSON object (OCI fields plus rootfs, created, owner)."""
        doc = {"ociVersion": self.oci_version, "id": self.id, "pid": self.pid, "status": self.status,
               "bundle": self.bundle, "rootfs": self.rootfs, "created": self.created}
        if self.annotations:
            doc["annotations"] = dict(self.annotations)
        doc["owner"] = self.owner
        return doc


class Runtime:
    """The containers under one state directory (`root`, runc's --root).

    Every method takes the container id; none keeps state in the object,
    so several Runtime objects (and the `pyrunc` command) may share a root.
    """

    def __init__(self, root: str | None = None, systemd_cgroup: bool = False):
        if root is None:
            # The command's default: /run/pyrunc, or $XDG_RUNTIME_DIR/pyrunc
            # for a user other than root (made private to the user).
            root = _store.default_root()
            if root != _store.DEFAULT_ROOT:
                _store.make_private_root(root)
        self.root = os.path.abspath(root)
        # The cgroup driver for create and run (--systemd-cgroup).
        self.systemd_cgroup = systemd_cgroup
        self._store = Store(self.root)

    def __repr__(self) -> str:
        return f"Runtime(root={self.root!r})"

    # ------------------------------------------------------------ lifecycle

    def create(self, container_id: str, bundle: str, *, pid_file: str | None = None,
               console_socket: str | None = None, no_pivot: bool = False, no_new_keyring: bool = False,
               preserve_fds: int = 0) -> ContainerState:
        """Create the container from `bundle` (a directory with config.json)
        and leave its init waiting for start(); returns its state
        ("created"). ContainerExists if the id is taken, ConfigError for an
        invalid config; on any failure nothing is left behind."""
        from pyrunc.ops.create import check_caller_fds, create_container

        _refuse_threads("create")
        check_caller_fds(preserve_fds)
        opts = self._create_options(bundle, pid_file, console_socket, no_pivot, no_new_keyring, preserve_fds)
        with _kernel_errors("create", container_id):
            launched = create_container(self._store, container_id, opts)
        os.close(launched.pidfd)
        return self.state(container_id)

    def start(self, container_id: str) -> None:
        """Run the user process of a created container (InvalidStatus otherwise)."""
        from pyrunc.ops.lifecycle import start_container

        _refuse_threads("start")
        with _kernel_errors("start", container_id), _subreaper_kept():
            start_container(self._store, container_id)

    def run(self, container_id: str, bundle: str, *, detach: bool = False, keep: bool = False,
            pid_file: str | None = None, console_socket: str | None = None, no_pivot: bool = False,
            no_new_keyring: bool = False, preserve_fds: int = 0) -> int:
        """Create and start. In the foreground, wait for the container to
        exit and return its exit code (128+N when killed by signal N),
        deleting it unless `keep`; the container's stdio is the caller's
        (and a process.terminal is relayed to it). With `detach`, return 0
        once it runs."""
        from pyrunc.ops.create import check_caller_fds
        from pyrunc.ops.run import run_container

        _refuse_threads("run")
        check_caller_fds(preserve_fds)
        opts = self._create_options(bundle, pid_file, console_socket, no_pivot, no_new_keyring, preserve_fds)
        with _kernel_errors("run", container_id), _subreaper_kept():
            return run_container(self._store, container_id, opts, detach=detach, keep=keep)

    def state(self, container_id: str) -> ContainerState:
        """The container's state; its status is read from the kernel now."""
        from pyrunc.ops.lifecycle import container_state

        return ContainerState.from_dict(container_state(self._store, container_id))

    def kill(self, container_id: str, signal: int | str = "SIGTERM", all: bool = False) -> None:
        """Send `signal` (a number, "KILL" or "SIGKILL") to the container's
        init; with `all`, to every process in its cgroup."""
        from pyrunc.errors import UsageError
        from pyrunc.linux.signals import parse_signal
        from pyrunc.ops.lifecycle import kill_container

        try:
            number = parse_signal(str(signal))
        except ValueError as err:
            raise UsageError(str(err)) from None
        with _kernel_errors("kill", container_id):
            kill_container(self._store, container_id, number, all_processes=all)

    def delete(self, container_id: str, force: bool = False) -> None:
        """Remove a stopped (or created) container; `force` kills a running
        one first, and is no error for an id that does not exist."""
        from pyrunc.ops.lifecycle import delete_container

        child = self._child_pidfd(container_id)
        try:
            with _kernel_errors("delete", container_id):
                delete_container(self._store, container_id, force=force)
        finally:
            if child >= 0:
                _reap(child)

    def list(self) -> list[ContainerState]:
        """Every container under the root (as `pyrunc list`)."""
        from pyrunc.ops.listing import list_containers

        return [ContainerState.from_dict(doc) for doc in list_containers(self._store)]

    # ------------------------------------------------------------ processes

    def exec(self, container_id: str, process: dict | list[str], *, detach: bool = False,
             pid_file: str | None = None, console_socket: str | None = None, cgroup: list[str] | None = None,
             preserve_fds: int = 0, ignore_paused: bool = False) -> int:
        """Run a process in the container: `process` is an OCI process
        object (as `exec --process` reads), or a command line (a list of
        strings) run with the container's own process settings; anything
        else is a ConfigError naming `process`. Returns its exit code in
        the foreground (runc's 255 when it cannot be run), 0 with `detach`."""
        from pyrunc.ops.exec import exec_process

        _refuse_threads("exec")
        if isinstance(process, tuple):
            process = list(process)
        if not (isinstance(process, dict) or isinstance(process, list) and all(isinstance(a, str) for a in process)):
            raise ConfigError([("process", "must be an OCI process object (a dict) or a command line (a list of "
                                           f"strings), not {_describe(process)}")], file="exec")
        with _kernel_errors("exec", container_id), _subreaper_kept():
            return exec_process(self._store, container_id, process, detach=detach, console_socket=console_socket,
                                cgroup=cgroup, preserve_fds=preserve_fds, pid_file=pid_file,
                                ignore_paused=ignore_paused)

    # ------------------------------------------------------------ cgroups

    def pause(self, container_id: str) -> None:
        """Freeze every process of the container."""
        from pyrunc.ops.resources import pause_container

        with _kernel_errors("pause", container_id):
            pause_container(self._store, container_id)

    def resume(self, container_id: str) -> None:
        """Thaw a paused container."""
        from pyrunc.ops.resources import resume_container

        with _kernel_errors("resume", container_id):
            resume_container(self._store, container_id)

    def update(self, container_id: str, resources: dict) -> None:
        """Apply a linux.resources object (only the fields it sets), e.g.
        {"pids": {"limit": 64}}; ConfigError names any invalid field."""
        from pyrunc.ops.resources import update_container

        if not isinstance(resources, dict):
            raise ConfigError([("", "resources must be a JSON object (a dict)")], file="update")
        with _kernel_errors("update", container_id):
            update_container(self._store, container_id, resources)

    def stats(self, container_id: str) -> dict:
        """The container's cgroup statistics (the `data` of `events --stats`)."""
        from pyrunc.ops.resources import container_stats

        with _kernel_errors("stats", container_id):
            return container_stats(self._store, container_id)

    def events(self, container_id: str, interval: float = 5.0):
        """An iterator over the container's events as `pyrunc events` prints
        them, until it stops: {"type": "stats", "id", "data"} every
        `interval` seconds and {"type": "oom", "id"} whenever the kernel
        OOM-kills in it. A missing or stopped container is refused here, at
        the call (ContainerNotFound, InvalidStatus), not at the first item."""
        from pyrunc.ops.resources import event_stream

        if not interval > 0:
            raise ValueError(f"events: interval must be a positive number of seconds, not {interval!r}")
        with _kernel_errors("events", container_id):
            records = event_stream(self._store, container_id, interval)
        return self._kernel_errors_of(records, container_id)

    @staticmethod
    def _kernel_errors_of(records, container_id: str):
        with _kernel_errors("events", container_id):
            yield from records

    # ------------------------------------------------------------ helpers

    def _child_pidfd(self, container_id: str) -> int:
        """A pidfd of the container's init if it is this process's child
        (create cloned it): delete reaps it then, or it stays a zombie of
        the caller's. -1 otherwise."""
        try:
            record = self._store.load_record(container_id)
            pid = record.pid
            if pid <= 0:
                return -1
            pidfd = os.pidfd_open(pid)
        except (PyruncError, OSError):
            return -1
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            # The pidfd pins the pid: if it is still our child of that start time, it is the init.
            if int(fields[1]) == os.getpid() and int(fields[19]) == record.start_time:
                return pidfd
        except (OSError, ValueError, IndexError):
            pass
        os.close(pidfd)
        return -1

    def _create_options(self, bundle, pid_file, console_socket, no_pivot, no_new_keyring, preserve_fds):
        from pyrunc.ops.common import rootless_setting
        from pyrunc.ops.create import CreateOptions

        return CreateOptions(bundle=os.fspath(bundle), pid_file=pid_file, console_socket=console_socket,
                             no_pivot=no_pivot, no_new_keyring=no_new_keyring, preserve_fds=preserve_fds,
                             systemd_cgroup=self.systemd_cgroup, rootless=rootless_setting("auto"))


def validate(config: dict) -> list[Problem]:
    """Every problem of a config.json document (a dict): the schema's, or,
    for a schema-valid one, the rules the schema cannot express. Nothing on
    the host is looked at; an empty list means valid."""
    from pyrunc.ops.common import validate_config

    if not isinstance(config, dict):
        return [Problem("", "the config must be a JSON object (a dict)", "schema")]
    from pyrunc.spec import _validator

    kind = "config" if _validator.is_valid_config(config) else "schema"
    return [Problem(path, message, kind) for path, message in validate_config(config)]


def check(bundle: str) -> list[Problem]:
    """Every problem of a bundle, as `pyrunc check`: validate()'s and what
    create would refuse on this host (root filesystem, bind-mount sources,
    namespace paths, hook executables, cgroupsPath, LSM labels). A bundle
    without a readable config.json is one problem of kind "file"."""
    from pyrunc.ops.check import find_problems
    from pyrunc.spec import load

    try:
        bundle_dir = load.resolve_bundle(os.fspath(bundle))
        doc = load.read_config(bundle_dir)
    except PyruncError as err:
        return [Problem("", str(err), "file")]
    return [Problem(path, message, kind) for kind, path, message in find_problems(doc, bundle_dir)]


def default_spec(rootless: bool = False) -> dict:
    """The config.json `pyrunc spec` writes (runc's defaults: `sh` in
    ./rootfs, with a terminal), as a dict to change and save."""
    from pyrunc.spec.defaults import default_config

    return default_config(rootless=rootless)


def _describe(value) -> str:
    """A wrong argument's type, for the error: "str", "a list holding int"."""
    if isinstance(value, list):
        return "a list holding " + next(type(item).__name__ for item in value if not isinstance(item, str))
    return type(value).__name__


def _reap(pidfd: int) -> None:
    try:
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
    except ChildProcessError:
        pass  # reaped already
    finally:
        os.close(pidfd)


def _refuse_threads(verb: str) -> None:
    """Forking a process with other threads is unsafe (a lock another
    thread held stays locked in the child): refuse rather than risk it.
    /proc/self/task counts every thread, also those C extensions start."""
    count = len(os.listdir("/proc/self/task"))
    if count > 1:
        raise ThreadsRunning(verb, count)


class _subreaper_kept:
    """Foreground run and exec (and start's startContainer hooks) make this
    process a child subreaper, to wait for what a stub forks: undone
    afterwards, or the caller would adopt every orphan of its descendants
    (the inits of containers `pyrunc` commands it runs later create) and
    keep them as zombies, and their cgroups with them."""

    def __enter__(self):
        import prctl  # python-prctl: PR_GET_CHILD_SUBREAPER answers through a pointer

        self.was = prctl.get_child_subreaper()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        import prctl

        prctl.set_child_subreaper(self.was)
        return False


class _kernel_errors:
    """An OSError from a system call becomes a KernelError (its errno kept)."""

    def __init__(self, verb: str, container_id: str):
        self.verb = verb
        self.container_id = container_id

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, OSError) and exc.errno:
            raise KernelError(self.verb, self.container_id, exc.errno, exc.filename or "") from exc
        return False
