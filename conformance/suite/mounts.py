"""config.md, Mounts (order, types, Linux mount options, bind sources) and
config-linux.md, Rootfs Mount Propagation; runtime-linux.md, Dev symbolic links
is in devices.py."""

from __future__ import annotations

import os
import subprocess

from .harness import Skip, parse_mountinfo, read_file, test, top_mount

# Per-mount flags as /proc/<pid>/mountinfo shows them (field 6).
PER_MOUNT = {"ro": "ro", "rw": "rw", "nosuid": "nosuid", "nodev": "nodev", "noexec": "noexec",
             "noatime": "noatime", "nodiratime": "nodiratime", "relatime": "relatime"}
# Superblock flags (shown among the super options).
SUPER_FLAGS = {"sync": "sync", "dirsync": "dirsync", "lazytime": "lazytime"}
# Options whose opposite must then be absent.
NEGATIVE = {"suid": "nosuid", "dev": "nodev", "exec": "noexec", "atime": "noatime", "diratime": "nodiratime",
            "strictatime": "relatime", "norelatime": "relatime", "nostrictatime": None}


def normalize(option: str) -> str:
    """The form the kernel shows: mode=0755 as mode=755, size=1m as size=1024k."""
    key, sep, value = option.partition("=")
    if sep and key in ("mode", "ptmxmode") and value.isdigit():
        return f"{key}={int(value, 8):o}"
    if sep and key == "size" and value[:-1].isdigit() and value[-1].lower() in "kmg":
        return f"size={int(value[:-1]) * 1024 ** 'kmg'.index(value[-1].lower())}k"
    return option


def data_in_effect(option: str, m: dict) -> bool:
    """A filesystem-specific option shows among the super options; tmpfs leaves
    out mode=1777, its default."""
    shown = {normalize(o) for o in m["super"]}
    if normalize(option) in shown:
        return True
    return m["fstype"] == "tmpfs" and normalize(option) == "mode=1777" and not any(o.startswith("mode=") for o in shown)


def check_mount(t, mounts: list[dict], entry: dict) -> None:
    """The mount at entry.destination carries the entry's type and options."""
    dest = "/" + entry["destination"].lstrip("/")
    m = top_mount(mounts, dest)
    if not t.check(m is not None, f"{dest}: not mounted"):
        return
    options = entry.get("options", [])
    bind = "bind" in options or "rbind" in options
    if not bind and entry.get("type"):
        t.equal(m["fstype"], entry["type"], f"{dest}: filesystem type")
    for option in options:
        if option in PER_MOUNT:
            t.check(PER_MOUNT[option] in m["options"], f"{dest}: option {option!r} not in effect ({sorted(m['options'])})")
        elif option in SUPER_FLAGS:
            t.check(option in m["super"], f"{dest}: option {option!r} not in effect ({sorted(m['super'])})")
        elif NEGATIVE.get(option):
            t.check(NEGATIVE[option] not in m["options"], f"{dest}: option {option!r} not in effect "
                                                          f"({sorted(m['options'])})")
        elif "=" in option and not bind and not option.startswith("newinstance"):
            t.check(data_in_effect(option, m), f"{dest}: data {option!r} not in effect ({sorted(m['super'])})")
    if "ro" not in options and not bind:
        t.check("rw" in m["options"], f"{dest}: should be read-write ({sorted(m['options'])})")


@test("mounts", "config.md#mounts")
def configured_mounts_with_their_options(t):
    """every mounts[] entry is mounted with its type and options"""
    b = t.bundle("probe_mountinfo")
    b.config["mounts"] += [
        {"destination": "/m/flags", "type": "tmpfs", "source": "tmpfs",
         "options": ["ro", "nosuid", "nodev", "noexec", "noatime", "mode=700", "size=1m"]},
        {"destination": "/m/opposite", "type": "tmpfs", "source": "tmpfs",
         "options": ["rw", "suid", "dev", "exec", "strictatime", "mode=1777", "nr_inodes=1000"]},
        {"destination": "/m/relatime", "type": "tmpfs", "source": "tmpfs", "options": ["relatime", "nodiratime"]},
        {"destination": "/m/sync", "type": "tmpfs", "source": "tmpfs", "options": ["sync", "dirsync"]},
    ]
    mounts = parse_mountinfo(t.run(b).get("mountinfo", ""))
    for entry in b.config["mounts"]:
        check_mount(t, mounts, entry)


@test("mounts", "config.md#mounts")
def mounts_in_listed_order(t):
    """entries are mounted in the listed order (later ones on top, nested inside earlier ones)"""
    b = t.bundle("probe_mountinfo")
    b.config["mounts"] += [
        {"destination": "/ordered", "type": "tmpfs", "source": "first", "options": ["size=1m"]},
        {"destination": "/ordered", "type": "tmpfs", "source": "second", "options": ["size=2m"]},
        {"destination": "/ordered/inner", "type": "tmpfs", "source": "inner", "options": ["size=3m"]},
    ]
    mounts = parse_mountinfo(t.run(b).get("mountinfo", ""))
    at = [m for m in mounts if m["target"] == "/ordered"]
    t.equal([m["source"] for m in at], ["first", "second"], "mounts at /ordered, bottom to top")
    inner = top_mount(mounts, "/ordered/inner")
    if t.check(inner is not None and at, "/ordered/inner: not mounted"):
        t.equal(inner["parent"], at[-1]["id"], "/ordered/inner sits on the second /ordered")


@test("mounts", "config.md#mounts")
def relative_destination_is_relative_to_root(t):
    """a relative destination is interpreted as relative to /"""
    b = t.bundle("probe_mountinfo")
    b.config["mounts"].append({"destination": "relative/dest", "type": "tmpfs", "source": "tmpfs"})
    mounts = parse_mountinfo(t.run(b).get("mountinfo", ""))
    t.check(top_mount(mounts, "/relative/dest") is not None, "/relative/dest is not mounted")


def host_dir(t, name: str, content: str = "from-the-host") -> str:
    path = os.path.join(t.tmp, name)
    os.makedirs(path)
    with open(os.path.join(path, "file"), "w") as f:
        f.write(content + "\n")
    return path


@test("mounts", "config.md#mounts")
def bind_mount_from_the_host(t):
    """bind mounts: contents, ro, nosuid/nodev/noexec, source relative to the bundle"""
    src = host_dir(t, "bindsrc")
    b = t.bundle("probe_mountinfo; probe_read /bind/rw/file /bind/ro/file /bind/rel/file;"
                 " probe_write /bind/rw/new /bind/ro/new")
    rel_src = os.path.join(b.path, "relsrc")
    os.makedirs(rel_src)
    with open(os.path.join(rel_src, "file"), "w") as f:
        f.write("relative-source\n")
    b.config["mounts"] += [
        {"destination": "/bind/rw", "type": "bind", "source": src, "options": ["bind", "nosuid", "nodev", "noexec"]},
        {"destination": "/bind/ro", "type": "bind", "source": src, "options": ["rbind", "ro"]},
        {"destination": "/bind/rel", "type": "none", "source": "relsrc", "options": ["bind"]},
    ]
    probes = t.run(b)
    mounts = parse_mountinfo(probes.get("mountinfo", ""))
    for entry in b.config["mounts"]:
        check_mount(t, mounts, entry)
    t.equal(probes.get("read /bind/rw/file"), "from-the-host\nrc=0", "file read through the bind mount")
    t.equal(probes.get("read /bind/rel/file"), "relative-source\nrc=0", "file through a bundle-relative source")
    t.equal(probes.get("write /bind/rw/new", "").splitlines()[-1:], ["rc=0"], "write to the rw bind mount")
    t.check(probes.get("write /bind/ro/new", "").splitlines()[-1:] != ["rc=0"], "write to the ro bind mount succeeded")
    t.check(os.path.exists(os.path.join(src, "new")), "the file written in the container is not on the host")


@test("mounts", "config.md#linux-mount-options")
def rbind_is_recursive_bind_is_not(t):
    """rbind carries the submounts of its source; bind does not"""
    src = host_dir(t, "recursive")
    sub = os.path.join(src, "sub")
    os.makedirs(sub)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "conformance-sub", sub], check=False).returncode != 0:
        raise Skip("cannot mount a tmpfs on the host")
    t.finalizers.append(lambda: subprocess.run(["umount", "-l", sub], check=False))
    with open(os.path.join(sub, "marker"), "w") as f:
        f.write("submount\n")
    b = t.bundle("probe_read /r/sub/marker /b/sub/marker")
    b.config["mounts"] += [
        {"destination": "/r", "type": "bind", "source": src, "options": ["rbind"]},
        {"destination": "/b", "type": "bind", "source": src, "options": ["bind"]},
    ]
    probes = t.run(b)
    t.equal(probes.get("read /r/sub/marker"), "submount\nrc=0", "submount through rbind")
    t.check(probes.get("read /b/sub/marker", "").splitlines()[-1:] != ["rc=0"], "bind (not rbind) carried a submount")


def propagation_of(m: dict | None) -> str:
    if m is None:
        return "missing"
    fields = " ".join(m["optional"])
    if "unbindable" in fields:
        return "unbindable"
    if "shared:" in fields:
        return "shared"
    if "master:" in fields:
        return "slave"
    return "private"


@test("mounts", "config.md#linux-mount-options")
def bind_mount_propagation_options(t):
    """propagation options on bind mounts: rshared, rprivate, runbindable, shared, private, unbindable"""
    src = host_dir(t, "prop")
    b = t.bundle("probe_mountinfo")
    want = {"rshared": "shared", "rprivate": "private", "runbindable": "unbindable",
            "shared": "shared", "private": "private", "unbindable": "unbindable"}
    for option in want:
        b.config["mounts"].append({"destination": f"/prop/{option}", "type": "bind", "source": src,
                                   "options": ["rbind", option]})
    mounts = parse_mountinfo(t.run(b).get("mountinfo", ""))
    for option, expected in want.items():
        t.equal(propagation_of(top_mount(mounts, f"/prop/{option}")), expected, f"propagation of /prop/{option}")


def host_propagation(path: str) -> str:
    """The propagation of the host mount that holds `path`."""
    mounts = parse_mountinfo(read_file("/proc/self/mountinfo") or "")
    best = None
    for m in mounts:
        holds = path == m["target"] or path.startswith(m["target"].rstrip("/") + "/")
        if holds and (best is None or len(m["target"]) >= len(best["target"])):
            best = m
    return propagation_of(best)


def rootfs_propagation(t, value: str, expected: str) -> None:
    b = t.bundle("probe_mountinfo")
    b.config["linux"]["rootfsPropagation"] = value
    mounts = parse_mountinfo(t.run(b).get("mountinfo", ""))
    t.equal(propagation_of(top_mount(mounts, "/")), expected, f"propagation of / with rootfsPropagation {value!r}")


@test("mounts", "config-linux.md#rootfs-mount-propagation")
def rootfs_propagation_shared(t):
    """rootfsPropagation shared: the rootfs mount is in a peer group"""
    rootfs_propagation(t, "shared", "shared")


@test("mounts", "config-linux.md#rootfs-mount-propagation")
def rootfs_propagation_slave(t):
    """rootfsPropagation slave: the rootfs receives events from the host"""
    if host_propagation(t.tmp) != "shared":
        raise Skip("the host mount holding the bundle is not shared, so a slave has no master")
    rootfs_propagation(t, "slave", "slave")


@test("mounts", "config-linux.md#rootfs-mount-propagation")
def rootfs_propagation_private(t):
    """rootfsPropagation private: the rootfs mount is private"""
    rootfs_propagation(t, "private", "private")


@test("mounts", "config-linux.md#rootfs-mount-propagation")
def rootfs_propagation_unbindable(t):
    """rootfsPropagation unbindable: the rootfs mount is unbindable"""
    rootfs_propagation(t, "unbindable", "unbindable")
