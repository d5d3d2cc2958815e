"""CRIU over its RPC interface, as runc talks to it.

`criu swrk FD` serves one client on a SOCK_SEQPACKET socket (one message a
packet): pyrunc sends a criu_req, answers every notification CRIU sends
while it works (notify_scripts) and reads the final criu_resp. The messages
are the subset of CRIU's images/rpc.proto pyrunc uses, encoded by
linux.protowire. Never CRIU's command-line output.
Imports: errors, linux.protowire.
"""

from __future__ import annotations

import array
import shutil
import socket
import subprocess

from pyrunc import oslite as os
from pyrunc.errors import PyruncError
from pyrunc.linux.protowire import WireError, decode, encode

# criu_req_type
DUMP, RESTORE, PRE_DUMP, NOTIFY = 1, 2, 4, 6
# criu_cg_mode, by runc's --manage-cgroups-mode names
CG_MODES = {"ignore": 0, "none": 1, "props": 2, "soft": 3, "full": 4, "strict": 5}
# CRIU's version bitmask of namespaces (--empty-ns takes the CLONE_NEW* values)
CLONE_NEWNET = 0x40000000

_EXT_MOUNT = {"key": (1, "string"), "val": (2, "string")}
_INHERIT_FD = {"key": (1, "string"), "fd": (2, "int")}
_CGROUP_ROOT = {"ctrl": (1, "string"), "path": (2, "string")}
OPTS = {
    "images_dir_fd": (1, "int"), "pid": (2, "int"), "leave_running": (3, "bool"), "ext_unix_sk": (4, "bool"),
    "tcp_established": (5, "bool"), "evasive_devices": (6, "bool"), "shell_job": (7, "bool"),
    "file_locks": (8, "bool"), "log_level": (9, "int"), "log_file": (10, "string"),
    "notify_scripts": (12, "bool"), "root": (13, "string"), "parent_img": (14, "string"),
    "track_mem": (15, "bool"), "auto_dedup": (16, "bool"), "work_dir_fd": (17, "int"),
    "ext_mnt": (23, [_EXT_MOUNT]), "manage_cgroups": (24, "bool"), "cg_root": (25, [_CGROUP_ROOT]),
    "rst_sibling": (26, "bool"), "inherit_fd": (27, [_INHERIT_FD]), "manage_cgroups_mode": (34, "int"),
    "external": (37, ["string"]), "empty_ns": (38, "int"), "freeze_cgroup": (44, "string"),
    "lazy_pages": (48, "bool"), "orphan_pts_master": (50, "bool"),
}
REQ = {"type": (1, "int"), "opts": (2, OPTS), "notify_success": (3, "bool")}
_VERSION = {"major_number": (1, "int"), "minor_number": (2, "int"), "sublevel": (4, "int")}
RESP = {
    "type": (1, "int"), "success": (2, "bool"), "restore": (4, {"pid": (1, "int")}),
    "notify": (5, {"script": (1, "string"), "pid": (2, "int")}), "cr_errno": (7, "int"),
    "cr_errmsg": (9, "string"), "version": (10, _VERSION),
}
_MAX_MESSAGE = 1 << 20


class CriuError(PyruncError):
    pass


def find_criu(path: str | None = None) -> str:
    """The criu binary (runc's --criu, else `criu` on PATH)."""
    found = shutil.which(path or "criu")
    if not found:
        raise CriuError(f"criu not found ({path or 'criu'!r} is not on PATH or not executable): "
                        "checkpoint and restore need CRIU installed")
    return found


class Session:
    """One `criu swrk` process and its socket. `pass_fds` are fds CRIU
    inherits under the same numbers (inherit_fd entries name them); criu's
    stdio is ours. A socket error (criu gone) is a CriuError."""

    def __init__(self, criu: str, pass_fds: tuple = ()):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = ours
        try:
            self.proc = subprocess.Popen([criu, "swrk", str(theirs.fileno())], pass_fds=(theirs.fileno(), *pass_fds))
        except OSError as err:
            ours.close()
            raise CriuError(f"cannot run {criu}: {err.strerror.lower()}") from None
        finally:
            theirs.close()
        self.pid = self.proc.pid

    def send(self, message: dict) -> None:
        try:
            self.sock.send(encode(REQ, message))
        except OSError as err:  # EPIPE among them: not the CLI's quiet "stdout closed"
            raise CriuError(f"criu (pid {self.pid}): cannot send the request: "
                            f"{(err.strerror or str(err)).lower()}") from None

    def receive(self) -> tuple[dict, list[int]]:
        """The next criu_resp and any fds that came with it (SCM_RIGHTS: the
        orphan pts master)."""
        fds = array.array("i")
        try:
            data, ancdata, _, _ = self.sock.recvmsg(_MAX_MESSAGE, socket.CMSG_SPACE(4 * fds.itemsize))
        except OSError as err:
            raise CriuError(f"criu (pid {self.pid}): cannot read its answer: "
                            f"{(err.strerror or str(err)).lower()}") from None
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
        if not data:
            raise CriuError(f"criu (pid {self.pid}) closed its RPC socket without an answer")
        try:
            return decode(RESP, data), list(fds)
        except WireError as err:
            raise CriuError(f"criu sent a message pyrunc cannot read: {err}") from None

    def call(self, message: dict, on_notify=None) -> dict:
        """Send one request; answer each notification (on_notify(script,
        resp, fds) runs first; an exception it raises fails the request
        and is raised after CRIU was told); return the final response."""
        self.send(message)
        while True:
            resp, fds = self.receive()
            if resp.get("type") != NOTIFY:
                return resp
            script = resp.get("notify", {}).get("script", "")
            failure = None
            try:
                if on_notify is not None:
                    on_notify(script, resp, fds)
            except Exception as err:  # CRIU must hear of it, then the caller
                failure = err
            finally:
                for fd in fds:
                    os.close(fd)
            self.send({"type": NOTIFY, "notify_success": failure is None})
            if failure is not None:
                self.close()
                raise failure

    def close(self) -> int:
        """Close the socket (criu swrk then exits) and reap it."""
        self.sock.close()
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # our own child, by its pid
            return self.proc.wait()


def check(criu: str) -> None:
    """`criu check`: raise a one-line CriuError when CRIU cannot work on
    this kernel (nothing is made). Its exit status is the verdict (the
    RPC CHECK request answers differently under swrk), its output unread."""
    try:
        status = subprocess.run([criu, "check"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, timeout=60).returncode
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CriuError(f"criu check: {err}") from None
    if status != 0:
        raise CriuError(f"criu check failed: CRIU cannot checkpoint or restore on this kernel "
                        f"({os.uname().release}); run `criu check` for details")


def failure_message(what: str, resp: dict, log_path: str) -> str:
    """One line for a failed dump or restore, pointing at CRIU's log."""
    detail = resp.get("cr_errmsg") or (os.strerror(resp["cr_errno"]) if resp.get("cr_errno") else "")
    return f"criu {what} failed{': ' + detail.strip() if detail else ''} (see {log_path})"
