"""config-linux.md, Devices and Default Devices; runtime-linux.md, Dev symbolic links."""

from __future__ import annotations

import os

from .harness import test

FILE_TYPE = {"c": "character special file", "u": "character special file", "b": "block special file", "p": "fifo"}
DEFAULT_DEVICES = {"/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7), "/dev/random": (1, 8),
                   "/dev/urandom": (1, 9), "/dev/tty": (5, 0)}


def parse_stat(text: str | None) -> dict | None:
    """checker's probe_stat: type|major hex|minor hex|mode octal|uid|gid"""
    parts = (text or "").strip().split("|")
    if len(parts) != 6:
        return None
    return {"type": parts[0], "major": int(parts[1], 16), "minor": int(parts[2], 16), "mode": int(parts[3], 8),
            "uid": int(parts[4]), "gid": int(parts[5])}


@test("devices", "config-linux.md#default-devices")
def default_devices_are_supplied(t):
    """/dev/null, zero, full, random, urandom, tty are the right devices and can be opened; /dev/ptmx exists"""
    paths = list(DEFAULT_DEVICES)
    b = t.bundle(f"probe_stat {' '.join(paths)} /dev/ptmx /dev/pts/ptmx; probe_link /dev/ptmx;"
                 f" probe_open {' '.join(p for p in paths if p != '/dev/tty')}")
    probes = t.run(b)
    for path, (major, minor) in DEFAULT_DEVICES.items():
        st = parse_stat(probes.get(f"stat {path}"))
        if t.check(st is not None, f"{path} is missing"):
            t.equal((st["type"], st["major"], st["minor"]), ("character special file", major, minor), path)
    for path in paths:
        if path == "/dev/tty":
            continue
        text = probes.get(f"open {path}", "")
        t.check("not permitted" not in text and text.count("records in") >= 1,
                f"{path} cannot be opened: {text!r}")
    ptmx = probes.get("link /dev/ptmx", "").strip()
    st = parse_stat(probes.get("stat /dev/ptmx"))
    t.check(ptmx in ("pts/ptmx", "/dev/pts/ptmx") or (st is not None and (st["major"], st["minor"]) == (5, 2)),
            f"/dev/ptmx must be a symlink to or bind mount of /dev/pts/ptmx (readlink {ptmx!r}, stat {st})")


@test("devices", "runtime-linux.md#dev-symbolic-links")
def dev_symbolic_links(t):
    """/dev/fd, /dev/stdin, /dev/stdout, /dev/stderr link to /proc/self/fd"""
    links = {"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0", "/dev/stdout": "/proc/self/fd/1",
             "/dev/stderr": "/proc/self/fd/2"}
    b = t.bundle(f"probe_link {' '.join(links)}")
    probes = t.run(b)
    for path, target in links.items():
        t.equal(probes.get(f"link {path}", "").strip(), target, f"readlink {path}")


@test("devices", "config-linux.md#devices")
def configured_devices_are_created(t):
    """linux.devices: type, major, minor, fileMode, uid, gid, also outside /dev"""
    devices = [
        {"path": "/dev/conf-char", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0},
        {"path": "/dev/conf-block", "type": "b", "major": 7, "minor": 200, "fileMode": 0o660, "uid": 1000, "gid": 1001},
        {"path": "/dev/conf-unbuf", "type": "u", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 2, "gid": 3},
        {"path": "/dev/conf-fifo", "type": "p", "fileMode": 0o600, "uid": 0, "gid": 0},
        {"path": "/outside/dev/conf-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 0, "gid": 0},
    ]
    b = t.bundle(f"probe_stat {' '.join(d['path'] for d in devices)}")
    b.config["linux"]["devices"] = devices
    probes = t.run(b)
    for d in devices:
        st = parse_stat(probes.get(f"stat {d['path']}"))
        if not t.check(st is not None, f"{d['path']}: missing"):
            continue
        t.equal(st["type"], FILE_TYPE[d["type"]], f"{d['path']}: type")
        if d["type"] != "p":
            t.equal((st["major"], st["minor"]), (d["major"], d["minor"]), f"{d['path']}: major, minor")
        t.equal(oct(st["mode"] & 0o7777), oct(d["fileMode"]), f"{d['path']}: fileMode")
        t.equal((st["uid"], st["gid"]), (d["uid"], d["gid"]), f"{d['path']}: uid, gid")


@test("devices", "config-linux.md#devices")
def device_over_a_different_file_is_an_error(t):
    """a file already at a device path that does not match MUST generate an error"""
    b = t.bundle("echo the-process-ran")
    with open(os.path.join(b.rootfs, "conflict"), "w") as f:
        f.write("a regular file\n")
    b.config["linux"]["devices"] = [{"path": "/conflict", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}]
    result = t.create(b)
    if t.error(result, "create with a device path that holds a regular file"):
        t.check_nothing_left(b, "after the failed create")
