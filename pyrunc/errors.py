"""The exception tree. Every failure pyrunc reports is one of these.

A leaf module: stdlib only, importable from anywhere. `str(error)` is the one
line the user sees (no trailing period, no traceback).
"""

from __future__ import annotations


class PyruncError(Exception):
    """Base of every error pyrunc reports as a one-line message and exit 1."""


class UsageError(PyruncError):
    """Bad command line: unknown flag, missing argument, bad value."""

    exit_code = 1


class UnknownCommand(UsageError):
    """A verb pyrunc does not have: exit 3, as runc (its CLI library's code)."""

    exit_code = 3


class ConfigError(PyruncError):
    """An invalid bundle or config.json.

    `problems` holds every (json_path, message) found; str() shows the first,
    as `config.json: process.args: must not be empty`.
    """

    def __init__(self, problems: list[tuple[str, str]], file: str = "config.json"):
        self.problems = problems
        self.file = file
        super().__init__(self.lines()[0])

    def lines(self) -> list[str]:
        return [format_problem(self.file, path, msg) for path, msg in self.problems]


def format_problem(file: str, path: str, msg: str) -> str:
    return f"{file}: {path}: {msg}" if path else f"{file}: {msg}"


class ContainerError(PyruncError):
    """A lifecycle error about one container, worded as runc words it where
    engines match on the text ("container does not exist", "container not running")."""

    def __init__(self, container_id: str, msg: str):
        self.container_id = container_id
        super().__init__(f"{container_id}: {msg}" if container_id else msg)


class ContainerNotFound(ContainerError):
    def __init__(self, container_id: str):
        super().__init__(container_id, "container does not exist")


class ContainerExists(ContainerError):
    def __init__(self, container_id: str):
        super().__init__(container_id, "container with given ID already exists")


class InvalidID(ContainerError):
    def __init__(self, container_id: str, why: str):
        super().__init__("", f"invalid container id {container_id!r}: {why}")


class InvalidStatus(ContainerError):
    """An operation not allowed in the container's current status."""


class KernelError(PyruncError):
    """A system call failed: `mount "proc" on "/proc": operation not permitted`."""

    def __init__(self, op: str, target: str, errno: int, detail: str = ""):
        from pyrunc import oslite as os

        self.op = op
        self.target = target
        self.errno = errno
        what = f"{op} {target}" if target else op
        msg = f"{what}: {os.strerror(errno).lower()}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class InitError(PyruncError):
    """An error the container's processes reported over the sync socket (an
    error frame, see sync): `kind` "exec" when it is about the program
    itself (its lookup or its file), "setup" for every step before; `errno`
    the system error behind it, 0 when there is none."""

    def __init__(self, msg: str, kind: str = "setup", errno: int = 0):
        self.kind = kind
        self.errno = errno
        super().__init__(msg)

    @property
    def exit_code(self) -> int:
        return program_exit_code(self.kind, self.errno)


class SetupError(PyruncError):
    """A step of the container's set-up failed with a system error: the
    message is the step's own, `errno` is kept for the sync error frame."""

    def __init__(self, msg: str, errno: int):
        self.errno = errno
        super().__init__(msg)


class ProgramError(PyruncError):
    """process.args[0] cannot be run: not found (ENOENT) or not executable
    (EACCES, ENOTDIR ...); `errno` says which."""

    kind = "exec"

    def __init__(self, msg: str, errno: int):
        self.errno = errno
        super().__init__(msg)

    @property
    def exit_code(self) -> int:
        return program_exit_code(self.kind, self.errno)


def program_exit_code(kind: str, errno: int) -> int:
    """A shell's code for a program that cannot run: 127 not found (only an
    ENOENT of the program itself), 126 found but not executable; 0 for a
    failure of the set-up, whatever its errno (a missing cwd or cgroup is no
    "command not found"). The stub exits with the same codes when its final
    execve fails."""
    if kind != "exec":
        return 0
    return 127 if errno == 2 else 126


class ThreadsRunning(PyruncError):
    """The Python API was asked to fork (create, start, run, exec) from a
    process with other threads, where a fork is unsafe."""

    def __init__(self, verb: str, count: int):
        self.count = count
        super().__init__(f"{verb}: refusing to fork with {count} threads running (a forked child can deadlock "
                         "on a lock another thread held); call it before starting threads, or from a "
                         "single-threaded process")
