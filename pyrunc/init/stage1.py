"""stage1: the first fork of `pyrunc create`.

It joins the container's cgroup (so everything it forks is inside the limits
from the start), joins the namespaces given by path, creates the new ones,
and forks the container init, which is pid 1 when the pid namespace is new
(unshare(CLONE_NEWPID) only applies to children). It reports the init's host
pid and exits, so the init is reparented to the caller's subreaper.
Imports: sync, init.{context, stage2}, linux.namespaces.
"""

from __future__ import annotations

import os

from pyrunc import sync
from pyrunc.init.context import InitContext, describe_error
from pyrunc.linux import namespaces


def run(ctx: InitContext) -> None:
    """Never returns: the process ends with os._exit."""
    try:
        init_pid = _setup_and_fork(ctx)
    except BaseException as err:  # report, never unwind into the CLI's code
        _send_error(ctx, err)
        os._exit(1)
    if init_pid == 0:
        from pyrunc.init import stage2

        stage2.run(ctx)  # never returns
        os._exit(1)
    try:
        sync.send(ctx.sock, "pid", pid=init_pid)
    except OSError:
        os._exit(1)
    if not ctx.wait_for_init:
        os._exit(0)
    ctx.sock.close()
    _, status = os.waitpid(init_pid, 0)
    os._exit(_exit_code(status))


def _setup_and_fork(ctx: InitContext) -> int:
    cfg = ctx.config
    ctx.cgroups.add(os.getpid())
    opened = namespaces.open_namespace_paths(cfg.linux.namespaces)
    namespaces.join_namespaces(opened)
    namespaces.unshare(namespaces.new_namespace_flags(cfg.linux.namespaces))
    time_ns = cfg.linux.namespace("time")
    if time_ns is not None and not time_ns.path and cfg.linux.time_offsets:
        # Offsets can only be written before the first process enters the namespace.
        namespaces.write_time_offsets(cfg.linux.time_offsets)
    return os.fork()


def _send_error(ctx: InitContext, err: BaseException) -> None:
    try:
        sync.send(ctx.sock, "error", msg=describe_error(err))
    except OSError:
        pass


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
