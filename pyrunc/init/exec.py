"""The processes of `pyrunc exec`: a new process inside a running container.

    pyrunc exec ──fork──▶ joiner ──fork──▶ process
         │  ◀── pid ───────┘ (exits)          │ console, rlimits, caps, seccomp …
         │  ◀── ready ────────────────────────┘ execs at once

The joiner enters the container's cgroup, then its namespaces (through
/proc/<init>/ns, pinned by a pidfd), and forks, so that the process is in
the container's pid namespace too. Like the container init, the process is
non-dumpable until exec and goes through the exec stub (CVE-2019-5736).
Imports: sync, init.{context, process}, linux.*.
"""

from __future__ import annotations

import os

from pyrunc import sync
from pyrunc.errors import KernelError
from pyrunc.init import process as process_steps
from pyrunc.init.context import error_message
from pyrunc.linux import _libc, console, namespaces


class ExecContext:
    __slots__ = ("sock", "ns_fds", "cgroups", "process", "seccomp_program", "preserve_fds", "console_fd",
                 "no_new_keyring", "container_id", "become_root", "join_v2")

    def __init__(self, sock, ns_fds, cgroups, process, seccomp_program=None, preserve_fds=0, console_fd=-1,
                 container_id="", become_root=False):
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


def run_joiner(ctx: ExecContext) -> None:
    """Never returns: join, fork the process, report its pid, exit. Nothing
    here ever unwinds into the `pyrunc exec` code this was forked from."""
    try:
        _run_joiner(ctx)
    finally:
        os._exit(1)


def _run_joiner(ctx: ExecContext) -> None:
    try:
        if ctx.cgroups is not None:
            ctx.cgroups.join_self(v2=ctx.join_v2)
        namespaces.join_namespaces(ctx.ns_fds)
        if ctx.become_root:
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        pid = os.fork()
    except BaseException as err:
        _report(ctx, err)
        os._exit(1)
    if pid == 0:
        _run_process(ctx)
        os._exit(1)
    try:
        sync.send(ctx.sock, "pid", pid=pid)
    except OSError:
        pass
    os._exit(0)


def _run_process(ctx: ExecContext) -> None:
    try:
        os.setsid()
        _libc.prctl(_libc.PR_SET_DUMPABLE, 0)
        if ctx.process.terminal:
            master, slave, _ = console.open_pty()
            try:
                if ctx.process.console_size:
                    console.set_window_size(slave, *ctx.process.console_size)
                console.send_fd(ctx.console_fd, master, "/dev/ptmx")
            finally:
                os.close(master)
                os.close(ctx.console_fd)
            console.become_controlling_terminal(slave)
            os.close(slave)
        path = process_steps.finalize(
            ctx.process, seccomp_program=ctx.seccomp_program, preserve_fds=ctx.preserve_fds,
            send_listener=lambda fd: sync.send_fds(ctx.sock, "seccomp-listener", [fd]),
        )
        sync.send(ctx.sock, "ready")
        ctx.sock.close()
    except BaseException as err:
        _report(ctx, err)
        os._exit(1)
    process_steps.exec_process(path, ctx.process)


def _report(ctx: ExecContext, err: BaseException) -> None:
    try:
        sync.send(ctx.sock, "error", **error_message(err))
    except OSError:
        pass


def open_container_namespaces(init_pid: int, kinds: list[str]) -> list[tuple[str, int]]:
    """fds of the init's namespaces that differ from ours, in join order."""
    opened = []
    try:
        for kind in namespaces.JOIN_ORDER:
            if kind not in kinds:
                continue
            name = namespaces.PROC_NAMES[kind]
            path = f"/proc/{init_pid}/ns/{name}"
            try:
                if os.stat(path).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                    continue  # already ours (a namespace shared with the host)
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as err:
                raise KernelError("open namespace", f"{kind} of the container's init", err.errno) from None
            opened.append((kind, fd))
    except BaseException:
        for _, fd in opened:
            os.close(fd)
        raise
    return opened
