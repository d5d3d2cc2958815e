"""Idmapped bind mounts (runtime-spec 1.1 mounts[].uidMappings/gidMappings,
options idmap/ridmap; issue 18 item 5): what the container sees and writes
through them, recursive and not, and a clean failure where the kernel
cannot idmap.

The volume is a tmpfs each test mounts itself (with a tmpfs submount at
sub/), so the result does not depend on the filesystem the tests run from;
on a kernel that cannot idmap tmpfs (before 6.3), tmp_path's own filesystem
with a bind mount at sub/. Files in it belong to uid/gid 1000. The container's user namespace maps
0-65535 to host 100000-165535; the mount's mappings are the same (what
Kubernetes' hostUsers: false and Podman's --userns=auto give), so a file
the disk says is 1000's is the container's 1000, not nobody (65534).
"""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from pyrunc.errors import KernelError
from pyrunc.linux import idmapped
from pyrunc.spec.model import IDMapping
from tests.integration.test_failures import assert_clean_failure
from tests.integration.test_run import sh

HOST_BASE = 100000
MAPPING = [{"containerID": 0, "hostID": HOST_BASE, "size": 65536}]
OWNER = 1000


def _userns(bundle) -> None:
    """The container in a user namespace: 0 → HOST_BASE, its rootfs theirs."""
    path = bundle.path
    while path != "/":
        os.chmod(path, os.stat(path).st_mode | 0o111)
        path = os.path.dirname(path)
    for directory, dirs, files in os.walk(bundle.rootfs):
        for name in dirs + files:
            os.lchown(os.path.join(directory, name), HOST_BASE, HOST_BASE)
    os.lchown(bundle.rootfs, HOST_BASE, HOST_BASE)
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = MAPPING
    bundle.config["linux"]["gidMappings"] = MAPPING


def _can_idmap(path) -> bool:
    """Whether this kernel idmaps the filesystem at `path` (tmpfs: Linux 6.3+)."""
    maps = [IDMapping(m) for m in MAPPING]
    userns_fd = idmapped.user_namespace_fd(maps, maps)
    try:
        os.close(idmapped.detached_tree(str(path), False, False, userns_fd))
        return True
    except KernelError as err:
        if err.errno in (errno.EINVAL, errno.ENOSYS):
            return False
        raise
    finally:
        os.close(userns_fd)


@pytest.fixture
def volume(runtime, tmp_path):
    """tmp_path/vol: f (1000:1000), and at sub/ another mount with g
    (1000:1000), the directory sub/ under it left empty. A tmpfs of its own
    with a tmpfs in it where the kernel idmaps tmpfs (6.3+), or else tmp_path's
    own filesystem with a bind mount at sub/. Unmounted before `runtime`
    checks that no mount is left."""
    vol, sub_source = tmp_path / "vol", tmp_path / "sub-source"
    vol.mkdir()
    sub_source.mkdir()
    mounted = []
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0777", "idmap-test", str(vol)], check=True)
        mounted.append(vol)
        on_tmpfs = _can_idmap(vol)
        if not on_tmpfs:
            subprocess.run(["umount", str(vol)], check=True)
            mounted.pop()
            if not _can_idmap(tmp_path):
                pytest.skip(f"this kernel ({os.uname().release}) idmaps neither tmpfs nor the filesystem of {tmp_path}")
        (vol / "sub").mkdir()
        if on_tmpfs:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0777", "idmap-test-sub", str(vol / "sub")], check=True)
        else:
            subprocess.run(["mount", "--bind", str(sub_source), str(vol / "sub")], check=True)
        mounted.append(vol / "sub")
        for path in (vol / "f", vol / "sub" / "g"):
            path.write_text("x")
            os.chown(path, OWNER, OWNER)
        yield vol
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], check=False)


def _mount(source, options, mappings=True) -> dict:
    entry = {"destination": "/data", "type": "bind", "source": str(source), "options": options}
    if mappings:
        entry["uidMappings"] = MAPPING
        entry["gidMappings"] = MAPPING
    return entry


def _owners(runtime, bundle, script: str) -> list[str]:
    sh(bundle, script)
    return runtime.ok("run", "--bundle", bundle.path, bundle.id).stdout.split()


def test_mappings_alone_idmap_the_top_mount_only(runtime, bundle, volume):
    """uidMappings/gidMappings without an option: idmap, as runc 1.2. A
    plain bind takes no submount: sub/ is the empty directory under it."""
    _userns(bundle)
    bundle.config["mounts"].append(_mount(volume, ["bind"]))
    out = _owners(runtime, bundle, "stat -c %u:%g /data/f; ls -A /data/sub | wc -l; stat -c %u:%g /tmp")
    assert out[0] == f"{OWNER}:{OWNER}"  # without the idmap: 65534:65534
    assert out[1] == "0"  # g is on the submount, which a non-recursive bind leaves out


def test_writes_land_with_the_mapped_owner(runtime, bundle, volume):
    _userns(bundle)
    for kind in ("bounding", "effective", "permitted"):
        bundle.config["process"]["capabilities"][kind].append("CAP_CHOWN")
    bundle.config["mounts"].append(_mount(volume, ["bind", "idmap"]))
    _owners(runtime, bundle, "touch /data/by-root && touch /data/given && chown 1234:1235 /data/given")
    # The container's root (host 100000) writes through the mount as the disk's 0.
    st = os.stat(volume / "by-root")
    assert (st.st_uid, st.st_gid) == (0, 0)
    st = os.stat(volume / "given")
    assert (st.st_uid, st.st_gid) == (1234, 1235)


def test_rbind_with_idmap_leaves_submounts_unmapped(runtime, bundle, volume):
    """rbind + idmap: the submount comes along, but only the top is idmapped."""
    _userns(bundle)
    bundle.config["mounts"].append(_mount(volume, ["rbind", "idmap"]))
    out = _owners(runtime, bundle, "stat -c %u:%g /data/f /data/sub/g")
    assert out == [f"{OWNER}:{OWNER}", "65534:65534"]


def test_ridmap_idmaps_the_submounts_too(runtime, bundle, volume):
    _userns(bundle)
    bundle.config["mounts"].append(_mount(volume, ["rbind", "ridmap"]))
    out = _owners(runtime, bundle, "stat -c %u:%g /data/f /data/sub/g; touch /data/sub/new")
    assert out == [f"{OWNER}:{OWNER}", f"{OWNER}:{OWNER}"]
    st = os.stat(volume / "sub" / "new")
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_idmap_option_alone_takes_the_containers_mappings(runtime, bundle, volume):
    _userns(bundle)
    bundle.config["mounts"].append(_mount(volume, ["bind", "idmap"], mappings=False))
    assert _owners(runtime, bundle, "stat -c %u:%g /data/f") == [f"{OWNER}:{OWNER}"]


def test_idmapped_mount_keeps_its_other_options(runtime, bundle, volume):
    _userns(bundle)
    bundle.config["mounts"].append(_mount(volume, ["bind", "ro", "idmap"]))
    out = _owners(runtime, bundle, "stat -c %u:%g /data/f; touch /data/no 2>/dev/null || echo refused")
    assert out == [f"{OWNER}:{OWNER}", "refused"]
    assert not (volume / "no").exists()


def test_idmapped_mount_without_a_user_namespace(runtime, bundle, volume):
    """runc 1.2 idmaps a bind mount for a container without a user
    namespace too: the disk's 1000 shows as the host's 2000."""
    bundle.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(volume),
                                    "options": ["bind"],
                                    "uidMappings": [{"containerID": OWNER, "hostID": 2000, "size": 1}],
                                    "gidMappings": [{"containerID": OWNER, "hostID": 3000, "size": 1}]})
    assert _owners(runtime, bundle, "stat -c %u:%g /data/f") == ["2000:3000"]


def test_unidmappable_filesystem_fails_cleanly(runtime, bundle):
    """procfs cannot be idmapped (no FS_ALLOW_IDMAP): one line naming the
    mount and why, exit 1, no state dir, cgroup, mount or process left."""
    _userns(bundle)
    bundle.config["mounts"].append(_mount("/proc/sys", ["bind"]))
    bundle.write()
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert_clean_failure(result, runtime, bundle,
                         'mount "/proc/sys" on "/data" with idmap: mount_setattr(MOUNT_ATTR_IDMAP): invalid argument '
                         "(the filesystem of the source cannot be idmapped on this kernel)")


def test_missing_idmapped_source_fails_cleanly(runtime, bundle, tmp_path):
    _userns(bundle)
    bundle.config["mounts"].append(_mount(tmp_path / "missing", ["bind", "idmap"]))
    bundle.write()
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert_clean_failure(result, runtime, bundle,
                         f'mount "{tmp_path}/missing" on "/data" with idmap: open_tree: no such file or directory')


def test_idmap_option_takes_a_joined_user_namespace(runtime, bundle, volume):
    """idmap alone with a user namespace joined by path: that namespace
    idmaps the mount (runc 1.2 opens its path)."""
    import time

    holder = subprocess.Popen(["unshare", "--user", "sleep", "60"])
    try:
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{holder.pid}/ns/user") == os.readlink("/proc/self/ns/user"):
            assert time.monotonic() < deadline, "unshare --user did not start"
            time.sleep(0.01)
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{holder.pid}/{name}", "w") as f:
                f.write(f"0 {HOST_BASE} 65536\n")
        _userns(bundle)
        bundle.config["linux"]["namespaces"][-1] = {"type": "user", "path": f"/proc/{holder.pid}/ns/user"}
        del bundle.config["linux"]["uidMappings"], bundle.config["linux"]["gidMappings"]
        bundle.config["mounts"].append(_mount(volume, ["rbind", "ridmap"], mappings=False))
        assert _owners(runtime, bundle, "stat -c %u:%g /data/f /data/sub/g") == [f"{OWNER}:{OWNER}"] * 2
    finally:
        holder.kill()
        holder.wait()



def test_kernel_without_the_new_mount_api_fails_cleanly(runtime, bundle, volume):
    """open_tree answered ENOSYS (a kernel before 5.2, or a seccomp profile
    that does not know it): one line saying so, nothing left behind."""
    import sys

    _userns(bundle)
    bundle.config["mounts"].append(_mount(volume, ["bind", "idmap"]))
    bundle.write()
    refuse = ("import errno, os, sys, pyseccomp as s; f = s.SyscallFilter(s.ALLOW); "
              "f.add_rule(s.ERRNO(errno.ENOSYS), 'open_tree'); f.load(); os.execv(sys.argv[1], sys.argv[1:])")
    result = runtime("create", "--bundle", bundle.path, bundle.id, wrapper=[sys.executable, "-c", refuse])
    assert_clean_failure(result, runtime, bundle,
                         f'mount "{volume}" on "/data" with idmap: open_tree: function not implemented '
                         "(this kernel lacks the new mount API; idmapped mounts need Linux 5.12 or later)")


def test_idmapped_file_bind_mount(runtime, bundle, volume):
    """A single file as the source: its mount point is made as a file."""
    _userns(bundle)
    bundle.config["mounts"].append({**_mount(volume / "f", ["bind", "idmap"]), "destination": "/etc/f"})
    assert _owners(runtime, bundle, "stat -c %u:%g:%F /etc/f") == [f"{OWNER}:{OWNER}:regular", "file"]
