"""What the forked init processes need, gathered by the launcher before fork."""

from __future__ import annotations


class InitContext:
    __slots__ = ("container_id", "config", "sock", "stage1_sock", "fifo_fd", "cgroups", "cgroup_layout", "no_pivot",
                 "no_new_keyring", "preserve_fds", "wait_for_init", "seccomp_program", "console_fd",
                 "start_status_fd", "proc_fd", "pid_ns_fd", "joins_pid_ns", "tty_fd", "send_timings",
                 "mount_source_fds")

    def __init__(self, container_id, config, sock, fifo_fd, cgroups, cgroup_layout, no_pivot=False,
                 no_new_keyring=False, preserve_fds=0, wait_for_init=False, seccomp_program=None, console_fd=-1,
                 start_status_fd=-1):
        self.container_id = container_id
        self.config = config
        # The init's channel to the parent (sync), and stage1's, the same
        # socket where stage1 forks no init (launcher module docstring).
        self.sock = sock
        self.stage1_sock = sock
        self.fifo_fd = fifo_fd
        self.cgroups = cgroups
        self.cgroup_layout = cgroup_layout
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        # stage1 stays the init's parent and relays its exit status
        # (`run --no-subreaper` in the foreground).
        self.wait_for_init = wait_for_init
        # linux.seccomp compiled to BPF by the parent (linux.seccomp.Program).
        self.seccomp_program = seccomp_program
        # Connected --console-socket (or run's own socketpair end), when
        # process.terminal is true; -1 otherwise.
        self.console_fd = console_fd
        # start.fifo, O_RDWR|O_CLOEXEC, when there are poststart hooks: the
        # init holds it until the program's execve closes it, and `start`
        # waits for that before it runs them.
        self.start_status_fd = start_status_fd
        # /proc of pyrunc's own mount namespace, where this process is "self"
        # (linux.mounts.open_own_proc): fd paths go through it (-1: none).
        self.proc_fd = -1
        # The pid namespace joined by path (linux.namespaces[].path): this
        # process stays out of it, sets the container up, and joins it for
        # its children only at the end (joins_pid_ns), for the stub's fork.
        self.pid_ns_fd = -1
        self.joins_pid_ns = False
        # The pty slave for the stub (process.terminal), -1 otherwise.
        self.tty_fd = -1
        # --debug: the init reports how long its steps took.
        self.send_timings = False
        # {index in mounts[]: O_PATH fd} of bind-mount sources opened with
        # the runtime's rights (stage1, with a user namespace), and of
        # idmapped mounts, their detached trees (linux.idmapped).
        self.mount_source_fds: dict[int, int] = {}


def error_message(err: BaseException) -> dict:
    """The sync error frame's fields for `err` (sync.error_frame): "exec"
    when the program cannot run (errors.ProgramError), "setup" otherwise;
    the errno of a system error, 0 for a refused configuration."""
    from pyrunc import sync
    from pyrunc.errors import ProgramError

    number = getattr(err, "errno", 0)
    return sync.error_frame("exec" if isinstance(err, ProgramError) else "setup",
                            number if isinstance(number, int) else 0, describe_error(err))


def describe_error(err: BaseException) -> str:
    """One line for an exception raised while setting up the container."""
    from pyrunc.errors import PyruncError

    if isinstance(err, PyruncError):
        return str(err)
    if isinstance(err, OSError):
        where = f" {err.filename}" if err.filename else ""
        return f"{(err.strerror or str(err)).lower()}{where}"
    return f"internal error: {type(err).__name__}: {err}"
