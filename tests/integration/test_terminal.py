"""Terminals: --console-socket hand-over, and `run` relaying its own."""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import threading
import time

from tests.integration.test_lifecycle import wait_for_status
from tests.integration.test_run import sh


class ConsoleReceiver:
    """Listens on a console socket like conmon or containerd's shim do."""

    def __init__(self, path: str):
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.master = None
        self.payload = b""
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        conn, _ = self.server.accept()
        self.payload, ancillary, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(4))
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                self.master = struct.unpack("i", data[:4])[0]
        conn.close()

    def read_until(self, needle: bytes, timeout: float = 10) -> bytes:
        data = b""
        deadline = time.monotonic() + timeout
        while needle not in data and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
        return data

    def close(self):
        self.server.close()
        if self.master is not None:
            os.close(self.master)


def test_console_socket_gets_pty_master_before_create_returns(runtime, bundle, tmp_path):
    receiver = ConsoleReceiver(str(tmp_path / "console.sock"))
    try:
        bundle.config["process"]["terminal"] = True
        bundle.config["process"]["consoleSize"] = {"height": 33, "width": 111}
        sh(bundle, "tty; stty size; ls -l /dev/console | cut -c1; read line; echo got:$line")
        runtime.ok("create", "--bundle", bundle.path, "--console-socket", receiver.path, bundle.id)
        receiver.thread.join(1)
        assert receiver.master is not None, "no pty master received by the time create returned"
        assert receiver.payload == b"/dev/ptmx"
        runtime.ok("start", bundle.id)
        out = receiver.read_until(b"c")
        assert b"/dev/pts/0" in out and b"33 111" in out, out
        os.write(receiver.master, b"hello\n")
        assert b"got:hello" in receiver.read_until(b"got:hello"), "input did not reach the container"
        wait_for_status(runtime, bundle.id, "stopped")
    finally:
        receiver.close()


def test_terminal_without_console_socket_refused_for_create_and_detached_run(runtime, bundle):
    bundle.config["process"]["terminal"] = True
    sh(bundle, "true")
    for args in (("create",), ("run", "--detach")):
        result = runtime(*args, "--bundle", bundle.path, bundle.id)
        assert result.returncode == 1 and "--console-socket is required" in result.stderr
    assert runtime.ids() == []


def test_console_socket_that_does_not_exist_is_a_clean_error(runtime, bundle, tmp_path):
    bundle.config["process"]["terminal"] = True
    sh(bundle, "true")
    result = runtime("create", "--bundle", bundle.path, "--console-socket", str(tmp_path / "nope"), bundle.id)
    assert result.returncode == 1 and "--console-socket: connect to" in result.stderr
    assert runtime.ids() == []


def test_run_relays_an_interactive_terminal(runtime, bundle):
    """A person typing `pyrunc run` with a shell: interactive, resizable, and
    the shell's exit code comes back."""
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["args"] = ["sh"]
    bundle.write()
    master, slave = os.openpty()
    import fcntl
    import termios

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(runtime.cmd + ["run", "--bundle", bundle.path, bundle.id], stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)
    os.close(slave)
    received = b""

    def read_for(needle: bytes, timeout: float = 10) -> bytes:
        nonlocal received
        deadline = time.monotonic() + timeout
        while needle not in received and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    received += os.read(master, 4096)
                except OSError:
                    break
        return received

    try:
        time.sleep(0.5)
        os.write(master, b"stty size; tty\n")
        assert b"24 80" in read_for(b"/dev/pts/0"), received
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
        proc.send_signal(28)  # SIGWINCH, as the terminal emulator would
        time.sleep(0.3)
        os.write(master, b"stty size\n")
        assert b"50 132" in read_for(b"50 132"), received
        os.write(master, b"exit 7\n")
        assert proc.wait(timeout=15) == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_exec_tty_follows_window_resizes(runtime, bundle):
    """`pyrunc exec -t` relays its terminal like `run`, resizes included."""
    import fcntl
    import termios

    sh(bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(runtime.cmd + ["exec", "-t", bundle.id, "sh"], stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)
    os.close(slave)
    received = b""

    def read_for(needle: bytes, timeout: float = 10) -> bytes:
        nonlocal received
        deadline = time.monotonic() + timeout
        while needle not in received and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    received += os.read(master, 4096)
                except OSError:
                    break
        return received

    try:
        time.sleep(0.5)
        os.write(master, b"stty size\n")
        assert b"24 80" in read_for(b"24 80"), received
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 41, 99, 0, 0))
        proc.send_signal(28)  # SIGWINCH, as the terminal emulator would
        time.sleep(0.3)
        os.write(master, b"stty size\n")
        assert b"41 99" in read_for(b"41 99"), received
        os.write(master, b"exit 5\n")
        assert proc.wait(timeout=15) == 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
