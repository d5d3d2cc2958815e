"""config-linux.md, Masked Paths and Readonly Paths; config.md, Root (readonly)."""

from __future__ import annotations

import os

from .harness import parse_mountinfo, test, top_mount


def last_rc(text: str | None) -> str:
    lines = (text or "").splitlines()
    return lines[-1] if lines else "(no output)"


def plant(b, relpath: str, content: str = "secret") -> None:
    path = os.path.join(b.rootfs, relpath.lstrip("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(content + "\n")


@test("paths", "config-linux.md#masked-paths")
def masked_paths_cannot_be_read(t):
    """masked files read as empty, masked directories list as empty"""
    b = t.bundle("probe_read /proc/kcore /masked-file; probe_ls /masked-dir /proc/acpi /visible-dir")
    plant(b, "/masked-file")
    plant(b, "/masked-dir/inside")
    plant(b, "/visible-dir/inside")
    b.config["linux"]["maskedPaths"] += ["/masked-file", "/masked-dir"]
    probes = t.run(b)
    for path in ("/proc/kcore", "/masked-file"):
        text = probes.get(f"read {path}", "")
        content, _, rc = text.rpartition("rc=")
        t.check(rc != "" and (content == "" or rc != "0" and "secret" not in content),
                f"masked {path} could be read: {text[:80]!r}")
    t.equal(probes.get("ls /masked-dir"), "rc=0", "listing of masked /masked-dir")
    t.check(probes.get("ls /proc/acpi") in ("rc=0", None) or "No such file" in probes.get("ls /proc/acpi", ""),
            f"listing of masked /proc/acpi: {probes.get('ls /proc/acpi')!r}")
    t.equal(probes.get("ls /visible-dir"), "inside\nrc=0", "listing of a directory that is not masked")


@test("paths", "config-linux.md#readonly-paths")
def readonly_paths_cannot_be_written(t):
    """readonly paths are read-only mounts; the rest of the root stays writable"""
    b = t.bundle("probe_mountinfo; probe_write /ro-dir/new /rw-dir/new /proc/sys/kernel/hostname /ro-file")
    plant(b, "/ro-dir/inside")
    plant(b, "/rw-dir/inside")
    plant(b, "/ro-file")
    b.config["linux"]["readonlyPaths"] += ["/ro-dir", "/ro-file"]
    probes = t.run(b)
    for path in ("/ro-dir/new", "/proc/sys/kernel/hostname", "/ro-file"):
        t.check(last_rc(probes.get(f"write {path}")) != "rc=0", f"{path} could be written in a readonly path")
    t.equal(last_rc(probes.get("write /rw-dir/new")), "rc=0", "write outside the readonly paths")
    mounts = parse_mountinfo(probes.get("mountinfo", ""))
    for path in ("/ro-dir", "/ro-file", "/proc/sys"):
        m = top_mount(mounts, path)
        t.check(m is not None and "ro" in m["options"], f"{path}: not a read-only mount ({m and sorted(m['options'])})")


@test("paths", "config.md#root")
def root_readonly_true(t):
    """root.readonly true: the root filesystem is read-only inside the container"""
    b = t.bundle("probe_mountinfo; probe_write /new-file /tmp/new-file /dev/shm/new-file")
    b.config["root"]["readonly"] = True
    probes = t.run(b)
    root = top_mount(parse_mountinfo(probes.get("mountinfo", "")), "/")
    t.check(root is not None and "ro" in root["options"], f"/ is not read-only ({root and sorted(root['options'])})")
    t.check(last_rc(probes.get("write /new-file")) != "rc=0", "wrote /new-file on a read-only root")
    t.check(last_rc(probes.get("write /tmp/new-file")) != "rc=0", "wrote /tmp/new-file on a read-only root")
    t.equal(last_rc(probes.get("write /dev/shm/new-file")), "rc=0", "write to /dev/shm (its own mount)")


@test("paths", "config.md#root")
def root_readonly_false(t):
    """root.readonly false: the root filesystem is writable"""
    b = t.bundle("probe_mountinfo; probe_write /new-file")
    b.config["root"]["readonly"] = False
    probes = t.run(b)
    root = top_mount(parse_mountinfo(probes.get("mountinfo", "")), "/")
    t.check(root is not None and "rw" in root["options"], f"/ is not read-write ({root and sorted(root['options'])})")
    t.equal(last_rc(probes.get("write /new-file")), "rc=0", "write to the root")
    t.check(os.path.exists(os.path.join(b.rootfs, "new-file")), "the file is not in the bundle's rootfs")
