"""`run`: create, start, and in the foreground wait and clean up.

In the foreground pyrunc is a subreaper (unless --no-subreaper), so the init
is its child even when stage1 forked it (usually it is cloned directly by
pyrunc itself); signals it receives are
forwarded to the init, and it exits with the container's exit code. With
process.terminal and no --console-socket it receives the pty itself and
relays it to its own stdin/stdout (raw mode, window size followed), so
`pyrunc run` of a shell is an interactive shell.
Imports: errors, log, store, ops.{common, create, lifecycle}, linux.{_libc, console}.
"""

from __future__ import annotations

from pyrunc import oslite as os
from pyrunc import log
from pyrunc.errors import PyruncError
from pyrunc.ops.common import SignalForwarder, one_id, rootless_cgroups, store_for
from pyrunc.ops.create import CreateOptions, check_caller_fds, create_container, listen_fds_from_env
from pyrunc.ops.lifecycle import delete_container, start_container
from pyrunc.store import Store


def cmd_run(parsed) -> int:
    opts = parsed.options
    check_caller_fds(int(opts.get("preserve_fds") or 0), listen_fds_from_env())
    container_id = one_id(parsed)
    create_opts = CreateOptions.from_flags(opts, bool(parsed.globals.get("systemd_cgroup")),
                                           rootless=rootless_cgroups(parsed))
    return run_container(store_for(parsed), container_id, create_opts, detach=bool(opts.get("detach")),
                         keep=bool(opts.get("keep")), subreaper=not opts.get("no_subreaper"))


def run_container(st: Store, container_id: str, create_opts: CreateOptions, detach: bool = False,
                  keep: bool = False, subreaper: bool = True) -> int:
    """Create and start; in the foreground (not `detach`) wait for the init,
    relaying a terminal to our stdio, and return its exit code (128+N for
    signal N), deleting the container unless `keep`. Detached: 0."""
    subreaper = subreaper and not detach
    if subreaper:
        from pyrunc.linux import _libc  # loaded for the init anyway

        # Where stage1 forks the init (user namespaces, namespace paths), as
        # subreaper we adopt it when stage1 exits, and can wait for it.
        _libc.prctl(_libc.PR_SET_CHILD_SUBREAPER, 1)
    relay_end = -1
    console_fd = -1
    if not detach and not create_opts.console_socket:
        # Our own console socket, used only if the config asks for a terminal.
        import _socket

        relay_sock, init_sock = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC, 0)
        relay_end, console_fd = relay_sock.detach(), init_sock.detach()
    create_opts.wait_for_init = not detach and not subreaper
    create_opts.console_fd = console_fd
    try:
        launched = create_container(st, container_id, create_opts)
    except BaseException:
        if relay_end >= 0:
            os.close(relay_end)  # a library caller lives on after a failed run
        raise
    finally:
        if console_fd >= 0:
            os.close(console_fd)
    try:
        return _start_and_wait(st, container_id, launched, relay_end, detach, keep,
                               launched.stage1_pid if create_opts.wait_for_init else launched.init_pid)
    finally:
        os.close(launched.pidfd)  # a library caller lives on: no fd of the container's left open


def _start_and_wait(st: Store, container_id: str, launched, relay_end: int, detach: bool, keep: bool,
                    waited_pid: int) -> int:
    if detach:
        try:
            start_container(st, container_id)
        except BaseException:
            _delete_quietly(st, container_id)
            raise
        return 0
    relay = None
    try:
        if launched.terminal:
            from pyrunc.linux import console

            relay = TerminalRelay(console.receive_fd(relay_end))
        forwarder = SignalForwarder(launched.pidfd, relay)
    except BaseException:
        _delete_quietly(st, container_id)
        raise
    finally:
        if relay_end >= 0:
            os.close(relay_end)
    try:
        start_container(st, container_id)
        log.phase("started")
        if relay is not None:
            relay.run(launched.pidfd)
        code = _wait_for_exit(launched, waited_pid)
        log.phase("container exited")
    except BaseException:
        forwarder.restore()
        if relay is not None:
            relay.close()
        _delete_quietly(st, container_id)
        raise
    forwarder.restore()
    if relay is not None:
        relay.close()
    if not keep:
        _delete_quietly(st, container_id)
        log.phase("deleted")
    return code


def _delete_quietly(st: Store, container_id: str) -> None:
    try:
        delete_container(st, container_id, force=True)
    except PyruncError as err:
        log.warning(f"{container_id}: cleanup after run: {err}")


def _wait_for_exit(launched, waited_pid: int) -> int:
    """Reap children until `waited_pid` exits; its exit code, 128+N for signal N."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if pid == waited_pid:
            from pyrunc.linux.proc import exit_code

            return exit_code(status)


class TerminalRelay:
    """Copies our stdin to the container's pty master and the master to our
    stdout, with our terminal (if stdin is one) in raw mode meanwhile."""

    def __init__(self, master: int):
        self.master = master
        self.saved_mode = None
        if os.isatty(0):
            import termios

            self.saved_mode = termios.tcgetattr(0)
            raw = termios.tcgetattr(0)
            # cfmakeraw: no echo, no line editing, no signals from keys (the
            # container's own terminal handles ^C), 8-bit bytes.
            raw[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
                        | termios.IGNCR | termios.ICRNL | termios.IXON)
            raw[1] &= ~termios.OPOST
            raw[2] &= ~(termios.CSIZE | termios.PARENB)
            raw[2] |= termios.CS8
            raw[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
            raw[6][termios.VMIN] = 1
            raw[6][termios.VTIME] = 0
            termios.tcsetattr(0, termios.TCSANOW, raw)
            self.copy_window_size()

    def copy_window_size(self) -> None:
        from pyrunc.linux import console

        size = console.get_window_size(0)
        if size:
            try:
                console.set_window_size(self.master, *size)
            except OSError:
                pass

    def run(self, pidfd: int) -> None:
        """Relay until the container's init exits, then drain its output."""
        import select

        from pyrunc.ops.common import long_wait_ahead

        long_wait_ahead()

        poller = select.poll()
        poller.register(self.master, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        stdin_open = True
        poller.register(0, select.POLLIN)
        while True:
            for fd, event in poller.poll():
                if fd == pidfd:
                    self._drain()
                    return
                if fd == self.master:
                    if not self._copy(self.master, 1):
                        poller.unregister(self.master)
                elif fd == 0 and stdin_open:
                    if not self._copy(0, self.master):
                        stdin_open = False
                        poller.unregister(0)

    @staticmethod
    def _copy(source: int, target: int) -> bool:
        try:
            data = os.read(source, 65536)
        except OSError:  # EIO: every slave fd is closed
            return False
        if not data:
            return False
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(target, view):]
            except OSError:
                return False
        return True

    def _drain(self) -> None:
        import select

        poller = select.poll()
        poller.register(self.master, select.POLLIN)
        while poller.poll(50):
            if not self._copy(self.master, 1):
                return

    def close(self) -> None:
        if self.saved_mode is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, self.saved_mode)
            self.saved_mode = None
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
