"""The processes of `pyrunc exec`: a new process inside a running container.

    pyrunc exec ──fork──▶ joiner ══execve══▶ stub ──fork──▶ stub ══execve══▶ process
         │  ◀── pid ──────────────────────────┘ (exits)       │
         │  ◀── ready ────────────────────────────────────────┘

The joiner enters the container's cgroup and namespaces (through
/proc/<init>/ns, pinned by a pidfd): its user, mounts, network ... are the
container's, but of the pid namespace only the one for its children, so
it is never in the container's: nothing there can see it, while it is
the host's Python, whose /proc/N/exe a container process holding
CAP_SYS_PTRACE could keep and later reopen for writing (CVE-2019-5736).
It sets the process up (terminal, rlimits, user, capabilities, cwd, the
program's lookup) and becomes the stub, which forks: its child is the
first thing in the container's pid namespace, is the stub, not Python, and
execs the program once it has the terminal and the seccomp filter.
Imports: sync, init.{context, process}, linux.*.
"""

from __future__ import annotations

from pyrunc import oslite as os
from pyrunc import sync
from pyrunc.init import process as process_steps
from pyrunc.init.context import error_message
from pyrunc.linux import console, mounts, namespaces, trampoline


class ExecContext:
    __slots__ = ("sock", "ns_fds", "cgroups", "process", "seccomp_program", "preserve_fds", "console_fd",
                 "no_new_keyring", "container_id", "become_root", "join_v2", "stdio", "program_path")

    def __init__(self, sock, ns_fds, cgroups, process, seccomp_program=None, preserve_fds=0, console_fd=-1,
                 container_id="", become_root=False, stdio=(), program_path=""):
        self.sock = sock
        # [(namespace type, fd of /proc/<init>/ns/<type>)], in join order
        self.ns_fds = ns_fds
        self.cgroups = cgroups
        self.process = process
        self.seccomp_program = seccomp_program
        self.preserve_fds = preserve_fds
        self.console_fd = console_fd
        self.container_id = container_id
        # The container has a user namespace: become its root before the
        # user switch (as stage1 does for the init).
        self.become_root = become_root
        # False when the joiner was born in the v2 cgroup (launcher.fork_into).
        self.join_v2 = True
        # fds for the process's 0, 1, 2 instead of pyrunc's own (a hook's pipes).
        self.stdio = stdio
        # Run this path (checked, not looked up in $PATH): a startContainer hook.
        self.program_path = program_path


def run_joiner(ctx: ExecContext) -> None:
    """Never returns: join, set up, become the stub. Nothing here ever
    unwinds into the `pyrunc exec` code this was forked from."""
    try:
        _run_joiner(ctx)
    finally:
        os._exit(1)


def _run_joiner(ctx: ExecContext) -> None:
    try:
        proc_fd = mounts.open_own_proc()  # before the mount namespace: pyrunc's /proc, where this is "self"
        mounts.use_proc_dir(proc_fd)
        if ctx.cgroups is not None:
            ctx.cgroups.join_self(v2=ctx.join_v2)
        namespaces.join_namespaces(ctx.ns_fds)
        if ctx.become_root:
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        tty = -1
        if ctx.process.terminal:
            master, tty, _ = console.open_pty()
            try:
                if ctx.process.console_size:
                    console.set_window_size(tty, *ctx.process.console_size)
                console.send_fd(ctx.console_fd, master, "/dev/ptmx")
            finally:
                os.close(master)
                os.close(ctx.console_fd)
        for target, fd in enumerate(ctx.stdio):
            os.dup2(fd, target)
        path = process_steps.finalize(
            ctx.process, seccomp_program=ctx.seccomp_program, preserve_fds=ctx.preserve_fds,
            send_listener=lambda fd: sync.send_fds(ctx.sock, "seccomp-listener", [fd]),
            program_path=ctx.program_path, tty_fd=tty,
        )
        program = ctx.seccomp_program if ctx.process.no_new_privileges else None
        bpf = trampoline.seccomp_fd(program.bpf, program.flags) if program is not None else -1
        trampoline.run(path, ctx.process.args, ctx.process.env, flags=trampoline.FORK | trampoline.SETSID,
                       sync=ctx.sock.fileno(), tty=tty, bpf=bpf, proc_fd=proc_fd)
    except BaseException as err:
        _report(ctx, err)
        os._exit(1)


def _report(ctx: ExecContext, err: BaseException) -> None:
    try:
        sync.send(ctx.sock, "error", **error_message(err))
    except OSError:
        pass


def open_container_namespaces(init_pid: int, kinds: list[str]) -> list[tuple[str, int]]:
    """fds of the init's namespaces that differ from ours, in join order."""
    paths = {kind: f"/proc/{init_pid}/ns/{namespaces.PROC_NAMES[kind]}" for kind in kinds
             if kind in namespaces.PROC_NAMES}
    return namespaces.open_in_join_order(paths, "{kind} of the container's init", skip_ours=True)
