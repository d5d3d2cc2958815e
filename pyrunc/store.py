"""The state store: one directory per container under the runtime root.

    <root>/<id>/             mode 0711, created by mkdir (EEXIST: id taken)
    <root>/<id>/state.json   written to a temp file, then renamed
    <root>/<id>/exec.fifo    exists while the container is created, not started

The root holds container directories and nothing else. A state.json is
pyrunc's if it says so ("runtime": "pyrunc"); one holding keys pyrunc never
writes is another runtime's (runc's /run/runc, youki's), as is a directory
with files pyrunc never makes (crun's): refused, never read as stopped
containers nor deleted. Anything else that is not what pyrunc writes is
"corrupt": a one-line error naming the field (`delete --force` still
removes the container, from what is left of it). Every verb reads and
writes a state.json as a record.ContainerRecord (load_record, save_record),
which keeps the file's keys and their order.

Status is derived, never trusted: a dead pid, or a live pid whose start time
differs from the recorded one (pid reuse), means stopped; the fifo means
created. Mutating commands take an flock on the container directory, so
concurrent commands on one container are serialised.
Paused is the freezer's answer (linux.cgroups.paused).
Imports: errors, files, jsonlite, record, status, linux.proc, linux.cgroups (paused).
"""

from __future__ import annotations

import errno
import fcntl
import time

from pyrunc import oslite as os
from pyrunc import jsonlite
from pyrunc.errors import ContainerExists, ContainerNotFound, InvalidID, PyruncError
from pyrunc.files import read_regular
from pyrunc.linux import proc
from pyrunc.record import ContainerRecord
# The statuses (the verbs import them from here too).
from pyrunc.status import CREATED, CREATING, PAUSED, RUNNING, STOPPED  # noqa: F401

DEFAULT_ROOT = "/run/pyrunc"
STATE_FILE = "state.json"
FIFO_FILE = "exec.fifo"
# The init holds its end until it execs the program: `start` waits for that.
START_STATUS_FILE = "start.fifo"
# The container's compiled seccomp filter, for `exec`.
SECCOMP_FILE = "seccomp.bpf"
# What delete --force needs to find a container whose state.json is corrupt:
# the init (pid, start time) and the cgroups, written beside it.
INIT_FILE = "init.json"
# What only pyrunc's state.json says (other runtimes' say other things).
MARKER_KEY, MARKER = "runtime", "pyrunc"
MAX_ID_LENGTH = 1024


_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def validate_id(container_id: str) -> None:
    """runc's rule: letters, digits, `_ + - .`, not `.` or `..`, sane length."""
    if not container_id:
        raise InvalidID(container_id, "must not be empty")
    if container_id in (".", ".."):
        raise InvalidID(container_id, "must not be . or ..")
    if len(container_id) > MAX_ID_LENGTH:
        raise InvalidID(container_id[:40] + "...", f"longer than {MAX_ID_LENGTH} characters")
    if not _ID_CHARS.issuperset(container_id):
        raise InvalidID(container_id, "may contain only letters, digits, '_', '+', '-' and '.'")


def _is_valid_id(name: str) -> bool:
    try:
        validate_id(name)
        return True
    except InvalidID:
        return False


class CorruptState(PyruncError):
    def __init__(self, container_id: str, problem: str):
        self.container_id = container_id
        super().__init__(f"{container_id}: corrupt {STATE_FILE}: {problem} "
                         f"(`pyrunc delete --force {container_id}` removes what is left of it)")


class ForeignState(PyruncError):
    def __init__(self, directory: str):
        super().__init__(f"{directory}: not a pyrunc container (another runtime's state, or not a container); "
                         "refusing to touch it")


# state.json fields and their types; every one optional but "id".
_FIELD_TYPES = {
    "ociVersion": str, "bundle": str, "rootfs": str, "created": str, "freezerState": str,
    "annotations": dict, "hooks": dict, "process": dict, "resources": dict, "cgroups": dict,
    "creating": bool, "sharedPidNamespace": bool, "seccomp": (dict, type(None)),
}


_KNOWN_KEYS = frozenset(_FIELD_TYPES) | {"id", "pid", "startTime"}


def state_problem(container_id: str, state: dict) -> str:
    """What is wrong with a state.json pyrunc wrote (its shape), or ""."""
    if state.get("id") != container_id:
        return f"id is {state.get('id')!r}, not {container_id!r}"
    unknown = sorted(set(state) - _KNOWN_KEYS)
    if unknown:  # a field no ContainerRecord has (a newer pyrunc's, or damage)
        return f"unknown field {unknown[0]!r}"
    for key in ("pid", "startTime"):
        value = state.get(key, 0)
        if type(value) is not int or value < (0 if key == "pid" else -1):
            return f"{key} is not a number: {value!r}"
    for key, kind in _FIELD_TYPES.items():
        if key in state and not isinstance(state[key], kind):
            return f"{key} has the wrong type ({type(state[key]).__name__})"
    cgroups = state.get("cgroups") or {}
    paths, created = cgroups.get("paths", {}), cgroups.get("created", [])
    if not (isinstance(paths, dict) and all(isinstance(k, str) and isinstance(v, str) and v.startswith("/")
                                            for k, v in paths.items())):
        return "cgroups.paths is not a map of absolute paths"
    if not (isinstance(created, list) and all(isinstance(d, str) and d.startswith("/") for d in created)):
        return "cgroups.created is not a list of absolute paths"
    for key in ("driver", "unit", "slice"):
        if not isinstance(cgroups.get(key, ""), str):
            return f"cgroups.{key} is not a string"
    # What create always writes (its partial state: id, pid 0 and cgroups).
    if not state.get("creating"):
        for key in ("pid", "cgroups", "startTime") if state.get("pid") else ("pid", "cgroups"):
            if key not in state:
                return f"{key} is missing"
    return ""


def rfc3339_nano(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC, trailing zeros of the fraction trimmed."""
    seconds, frac = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if frac:
        stamp += "." + f"{frac:09d}".rstrip("0")
    return stamp + "Z"


def default_root() -> str:
    """runc's rule: a user other than root keeps its state under
    $XDG_RUNTIME_DIR when that is set (it could not write /run); so does
    root in a user namespace (rootless Podman) unless $USER says root."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and (os.geteuid() != 0 or (proc.in_user_namespace() and os.environ.get("USER", "") != "root")):
        return os.path.join(xdg, "pyrunc")
    return DEFAULT_ROOT


def make_private_root(root: str) -> None:
    """The user's own state root: 0700 (nobody else may look in) and
    sticky, as runc makes it, so a runtime dir cleaner keeps it."""
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        os.chmod(root, 0o1700)
    except OSError as err:
        raise PyruncError(f"cannot create state root {root}: {err.strerror.lower()}") from None


class Store:
    def __init__(self, root: str = DEFAULT_ROOT):
        self.root = os.path.abspath(root)

    def path(self, container_id: str, *names: str) -> str:
        return os.path.join(self.root, container_id, *names)

    # ---- creation and removal

    def create(self, container_id: str) -> "Lock":
        """Claim `container_id`: mkdir its directory and lock it.

        Raises ContainerExists if the id is taken. The caller owns the
        directory from here on and must remove it if create fails.
        """
        validate_id(container_id)
        try:
            os.makedirs(self.root, mode=0o711, exist_ok=True)
        except OSError as err:
            raise PyruncError(f"cannot create state root {self.root}: {err.strerror.lower()}") from None
        directory = self.path(container_id)
        for _ in range(3):
            try:
                os.mkdir(directory, 0o711)
            except FileExistsError:
                raise ContainerExists(container_id) from None
            except OSError as err:
                raise PyruncError(f"cannot create state directory {directory}: {err.strerror.lower()}") from None
            # The directory is ours: whoever holds its lock now holds it for
            # a moment (`state` probing it, or a `delete` taking it for what
            # a killed create left), so wait, then make sure it is still there.
            try:
                lock = Lock(directory, container_id, blocking=True, timeout=10.0)
            except FileNotFoundError:
                continue
            try:
                if os.stat(directory).st_ino == os.fstat(lock.fd).st_ino:
                    return lock
            except FileNotFoundError:
                pass
            lock.close()  # removed by that `delete`: the id is free again
        raise PyruncError(f"cannot create state directory {directory}: removed again and again as it was made")

    def remove(self, container_id: str) -> None:
        """Remove the container's directory and everything in it."""
        remove_tree(self.path(container_id))

    # ---- reading

    def exists(self, container_id: str) -> bool:
        """Whether the container's directory exists. A root this user may
        not read (not root, as runc says too) is an error, not "no"; so is a
        --root that is not a directory."""
        import stat

        try:
            return stat.S_ISDIR(os.stat(self.path(container_id)).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            self.check_root()
            return False
        except OSError as err:
            if err.errno == errno.ENAMETOOLONG:  # a valid id too long to be a directory name: none can exist
                return False
            raise PyruncError(f"{container_id}: cannot read {self.root}: {(err.strerror or str(err)).lower()}") from None

    def load_record(self, container_id: str) -> ContainerRecord:
        """The saved state of `container_id`, typed; ContainerNotFound if there is none.

        A directory without state.json whose creator still holds the lock is
        a container being created: its record has only the id and
        `creating`. So does the partial state create saves before it makes
        anything (cgroup paths, "creating": true), while its creator holds
        the lock; once the creator is gone it loads as a stopped container.
        """
        validate_id(container_id)
        state = self._read(container_id)
        if state.get("creating") and not self.is_locked(container_id):
            # Its create has ended since it saved this partial state: it
            # finished (state.json is complete by now) or was killed half-way,
            # which leaves a stopped container for `delete` to clean up.
            state = self._read(container_id)
            if state.get("creating") and not self.is_locked(container_id):
                state["creating"] = False
                state["pid"] = 0
        return ContainerRecord.from_state(state)

    def _read(self, container_id: str) -> dict:
        state = self.read_raw(container_id)
        problem = state_problem(container_id, state)
        if problem:
            raise CorruptState(container_id, problem)
        return state

    def read_raw(self, container_id: str) -> dict:
        """state.json parsed and recognised as pyrunc's, its fields not yet
        checked (what `delete --force` salvages from a corrupt one)."""
        try:
            data = read_regular(self.path(container_id, STATE_FILE), f"{container_id}: {STATE_FILE}")
        except IsADirectoryError:
            raise CorruptState(container_id, "a directory, not a file") from None
        except CorruptState:
            raise
        except PyruncError as err:  # not a regular file, or too large
            raise CorruptState(container_id, str(err).rpartition(": ")[2]) from None
        except (FileNotFoundError, NotADirectoryError):
            self.check_root()
            if not self.is_own_leftover(container_id):
                raise ForeignState(self.path(container_id)) from None
            if self.is_locked(container_id):
                return {"id": container_id, "creating": True}
            raise ContainerNotFound(container_id) from None
        except OSError as err:
            if err.errno == errno.ENAMETOOLONG:  # a valid id too long to be a directory name: none can exist
                raise ContainerNotFound(container_id) from None
            raise PyruncError(f"{container_id}: cannot read {STATE_FILE}: {(err.strerror or str(err)).lower()}") from None
        try:
            state = jsonlite.loads(data)
        except ValueError as err:
            raise CorruptState(container_id, str(err)) from None
        if not isinstance(state, dict):
            raise CorruptState(container_id, "not an object")
        if state.pop(MARKER_KEY, None) != MARKER:
            # runc's, youki's ... hold keys pyrunc never writes; the rest is
            # a state of ours that lost its mark.
            if not _KNOWN_KEYS.issuperset(state):
                raise ForeignState(self.path(container_id))
            raise CorruptState(container_id, f'it lacks pyrunc\'s mark ("{MARKER_KEY}": "{MARKER}")')
        return state

    def is_own_leftover(self, container_id: str) -> bool:
        """A directory without state.json is what a create killed before its
        first save leaves: empty, or only files pyrunc makes there."""
        try:
            names = os.listdir(self.path(container_id))
        except OSError:
            return True
        # STATE_FILE: its create saved it since our read found none.
        return all(n in (STATE_FILE, FIFO_FILE, START_STATUS_FILE, SECCOMP_FILE, INIT_FILE) or n.startswith(".")
                   and n.endswith(".tmp") for n in names)

    def check_root(self) -> None:
        """Refuse a --root that exists but is not a directory, in one line."""
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise PyruncError(f"--root {self.root}: not a directory")

    def list_ids(self) -> list[str]:
        try:
            entries = os.scandir(self.root)
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            raise PyruncError(f"--root {self.root}: not a directory") from None
        except OSError as err:  # not root (runc: "open /run/runc: permission denied")
            raise PyruncError(f"cannot list {self.root}: {(err.strerror or str(err)).lower()}") from None
        with entries:
            return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False) and _is_valid_id(e.name))

    def is_locked(self, container_id: str) -> bool:
        try:
            fd = os.open(self.path(container_id), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    # ---- writing

    def save_record(self, record: ContainerRecord) -> None:
        """state.json, replaced whole (readers see the old or the new)."""
        try:
            write_atomic(self.path(record.id, STATE_FILE),
                         jsonlite.dumps({MARKER_KEY: MARKER, **record.to_state()}).encode())
        except OSError as err:  # a full or read-only state root
            raise PyruncError(f"{record.id}: cannot save {STATE_FILE} in {self.root}: "
                              f"{(err.strerror or str(err)).lower()}") from None

    def save_init(self, container_id: str, pid: int, start_time: int, cgroups: dict) -> None:
        """INIT_FILE: the init and the cgroups, for delete --force of a
        container whose state.json is lost."""
        # Written once, never replaced: no temporary file and rename needed.
        data = jsonlite.dumps({"pid": pid, "startTime": start_time, "cgroups": cgroups}).encode()
        try:
            fd = os.open(self.path(container_id, INIT_FILE),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as err:
            raise PyruncError(f"{container_id}: cannot save {INIT_FILE} in {self.root}: "
                              f"{(err.strerror or str(err)).lower()}") from None

    def read_init(self, container_id: str) -> dict:
        """INIT_FILE as it is ({} when it is missing or unreadable)."""
        try:
            data = jsonlite.loads(read_regular(self.path(container_id, INIT_FILE), INIT_FILE, 1 << 20))
        except (OSError, ValueError, PyruncError):
            return {}
        return data if isinstance(data, dict) else {}

    def lock(self, container_id: str, timeout: float = 30.0) -> "Lock":
        validate_id(container_id)
        directory = self.path(container_id)
        if not self.exists(container_id):
            raise ContainerNotFound(container_id)
        try:
            return Lock(directory, container_id, blocking=True, timeout=timeout)
        except FileNotFoundError:  # removed in between, by a concurrent delete
            raise ContainerNotFound(container_id) from None
        except PermissionError:  # another user's container (its state root open to us, its directory not)
            raise PyruncError(f"{container_id}: cannot lock the container's directory in {self.root}: "
                              "permission denied") from None

    # ---- status

    def status(self, record: ContainerRecord) -> str:
        """The container's current status, derived from the kernel's view."""
        if record.creating:
            return CREATING
        if not proc.is_alive(record.pid, record.start_time):
            return STOPPED
        if _paused(record):
            return PAUSED
        if fifo_has_reader(self.path(record.id, FIFO_FILE)):
            return CREATED
        return RUNNING


def fifo_has_reader(path: str) -> bool:
    """The exec fifo exists and the init still holds it (it closes it when it
    execs the program): a fifo left by an interrupted `start` says nothing."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # ENXIO: no reader; ENOENT: removed by start
        return False
    os.close(fd)
    return True


def _paused(record: ContainerRecord) -> bool:
    """Frozen by its own cgroup (linux.cgroups knows which file says so)."""
    from pyrunc.linux.cgroups import paused

    return paused((record.cgroups or {}).get("paths") or {})


class Lock:
    """An flock held on a container directory (released by close or exit).

    The fd is close-on-exec and must be closed in forked children, or a
    waiting container init would keep the lock for its whole life.
    """

    def __init__(self, directory: str, container_id: str, blocking: bool, timeout: float = 30.0):
        self.fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not blocking:
                os.close(self.fd)
                raise ContainerExists(container_id) from None
            self._wait(container_id, timeout)

    def _wait(self, container_id: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            time.sleep(delay)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise PyruncError(f"{container_id}: container is busy: another pyrunc command holds its lock") from None
                delay = min(delay * 2, 0.05)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_atomic(path: str, data: bytes, mode: int = 0o600) -> None:
    """Write `path` so readers see the old content or the new, never a part.

    The temporary name is unpredictable and created with O_EXCL|O_NOFOLLOW,
    so a symlink planted beside `path` (a pid file in a shared directory)
    cannot redirect the write. No fsync: state lives on tmpfs (/run) and
    means nothing after a reboot; the rename alone is what makes concurrent
    readers safe.
    """
    directory, name = os.path.split(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        tmp = os.path.join(directory, f".{name}.{os.urandom(6).hex()}.tmp")
        try:
            fd = os.open(tmp, flags, mode)
            break
        except FileExistsError:
            continue
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    try:
        os.rename(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def write_file(path: str, data: bytes, mode: int, what: str) -> None:
    """write_atomic, a failure (a missing directory, a full or read-only
    filesystem) being one clear line that names `what`."""
    try:
        write_atomic(path, data, mode)
    except OSError as err:
        raise PyruncError(f"{what}: cannot write {path}: {(err.strerror or str(err)).lower()}") from None


def _unlink_quietly(path: str, dir_fd: int | None = None) -> None:
    try:
        os.unlink(path, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def remove_tree(path: str) -> None:
    """rm -r without ever following a symlink (not even `path` itself);
    missing is fine. Walks by directory fd, so nothing can be swapped for a
    symlink between the check and the removal."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except (NotADirectoryError, OSError) as err:
        if isinstance(err, NotADirectoryError) or err.errno == errno.ELOOP:
            _unlink_quietly(path)
            return
        raise
    try:
        _remove_contents(fd)
    finally:
        os.close(fd)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def _remove_contents(dir_fd: int) -> None:
    for entry in list(os.scandir(dir_fd)):
        try:
            child = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            continue
        except OSError as err:
            if isinstance(err, NotADirectoryError) or err.errno == errno.ELOOP:
                _unlink_quietly(entry.name, dir_fd)
                continue
            raise
        try:
            _remove_contents(child)
        finally:
            os.close(child)
        try:
            os.rmdir(entry.name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
