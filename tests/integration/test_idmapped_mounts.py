"""Idmapped bind mounts (runtime-spec 1.1 mounts[].uidMappings/gidMappings,
options idmap/ridmap; issue 18 item 5): what the container sees and writes
through them, recursive and not, and a clean failure where the kernel
cannot idmap.

The volume is a tmpfs each test mounts itself (with a tmpfs submount at
sub/), so the result does not depend on the filesystem the tests run from.
Files in it belong to uid/gid 1000. The container's user namespace maps
0-65535 to host 100000-165535; the mount's mappings are the same (what
Kubernetes' hostUsers: false and Podman's --userns=auto give), so a file
the disk says is 1000's is the container's 1000, not nobody (65534).
"""

from __future__ import annotations

import os
import subprocess

import pytest

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


@pytest.fixture
def volume(runtime, tmp_path):
    """tmp_path/vol: a tmpfs with f (1000:1000), a tmpfs at sub/ with g
    (1000:1000) and the directory sub/ of the top tmpfs left empty under it.
    Unmounted before `runtime` checks that no mount is left."""
    vol = tmp_path / "vol"
    vol.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0777", "idmap-test", str(vol)], check=True)
    try:
        (vol / "sub").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0777", "idmap-test-sub", str(vol / "sub")], check=True)
        for path in (vol / "f", vol / "sub" / "g"):
            path.write_text("x")
            os.chown(path, OWNER, OWNER)
        yield vol
    finally:
        subprocess.run(["umount", "-R", "-l", str(vol)], check=False)


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
