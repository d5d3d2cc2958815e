"""`run`: create, start, and in the foreground wait and clean up.

In the foreground pyrunc is a subreaper (unless --no-subreaper), so the init
is its child once the intermediate process exits; signals it receives are
forwarded to the init, and it exits with the container's exit code.
Imports: errors, log, store, ops.{common, create, lifecycle}, linux._libc.
"""

from __future__ import annotations

import os

from pyrunc import log
from pyrunc.errors import PyruncError
from pyrunc.ops.common import one_id, store_for
from pyrunc.ops.create import CreateOptions, create_container
from pyrunc.ops.lifecycle import delete_container, start_container
from pyrunc.store import Store


def cmd_run(parsed) -> int:
    container_id = one_id(parsed)
    opts = parsed.options
    detach = bool(opts.get("detach"))
    st = store_for(parsed)
    subreaper = not detach and not opts.get("no_subreaper")
    if subreaper:
        from pyrunc.linux import _libc

        # The init is forked by an intermediate process; as subreaper we
        # adopt it when that exits, and can wait for it.
        _libc.prctl(_libc.PR_SET_CHILD_SUBREAPER, 1)
    create_opts = CreateOptions(opts, wait_for_init=not detach and not subreaper)
    launched = create_container(st, container_id, create_opts)
    if detach:
        try:
            start_container(st, container_id)
        except BaseException:
            _delete_quietly(st, container_id)
            raise
        return 0
    forwarder = _SignalForwarder(launched.pidfd)
    try:
        start_container(st, container_id)
        code = _wait_for_exit(launched, waited_pid=launched.stage1_pid if create_opts.wait_for_init else launched.init_pid)
    except BaseException:
        forwarder.restore()
        _delete_quietly(st, container_id)
        raise
    forwarder.restore()
    if not opts.get("keep"):
        _delete_quietly(st, container_id)
    return code


def _delete_quietly(st: Store, container_id: str) -> None:
    try:
        delete_container(st, container_id, force=True)
    except PyruncError as err:
        log.warning(f"{container_id}: cleanup after run: {err}")


class _SignalForwarder:
    """While `run` waits in the foreground, signals it receives go to the
    container's init (as runc does); SIGCHLD just wakes the wait."""

    _FORWARDED = (1, 2, 3, 10, 12, 14, 15, 28)  # HUP INT QUIT USR1 USR2 ALRM TERM WINCH

    def __init__(self, pidfd: int):
        import _signal

        self.pidfd = pidfd
        self.saved = {n: _signal.signal(n, self._forward) for n in self._FORWARDED}

    def _forward(self, number, frame) -> None:
        import _signal

        try:
            _signal.pidfd_send_signal(self.pidfd, number)
        except OSError:
            pass

    def restore(self) -> None:
        import _signal

        for number, handler in self.saved.items():
            _signal.signal(number, handler)


def _wait_for_exit(launched, waited_pid: int) -> int:
    """Reap children until `waited_pid` exits; its exit code, 128+N for signal N."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if pid == waited_pid:
            if os.WIFSIGNALED(status):
                return 128 + os.WTERMSIG(status)
            return os.WEXITSTATUS(status)
