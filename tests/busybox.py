"""Test bundles built from the host's static busybox (Debian busybox-static)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess

from pyrunc.spec.defaults import default_config

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
_APPLETS: list[str] = []


def container_skip_reason() -> str | None:
    """Why real containers cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root"
    if subprocess.run(["unshare", "-m", "-p", "-f", "true"], capture_output=True).returncode != 0:
        return "needs namespaces (unshare failed)"
    if not shutil.which("busybox"):
        return "needs busybox (apt-get install busybox-static)"
    return None


def applets() -> list[str]:
    if not _APPLETS:
        out = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout
        _APPLETS.extend(a for a in out.split() if a != "busybox")
    return _APPLETS


def make_rootfs(rootfs: str) -> None:
    """A minimal root: busybox, its applet links, passwd/group, empty dirs."""
    for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "root"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    for applet in applets():
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)


def base_config(args: list[str], cgroups_path: str) -> dict:
    """pyrunc's default spec for a busybox bundle, no terminal, own cgroup."""
    config = default_config()
    config["process"]["args"] = list(args)
    config["process"]["terminal"] = False
    config["linux"]["cgroupsPath"] = cgroups_path
    return config


class Bundle:
    """A bundle directory: `config` is written to config.json by `write()`."""

    def __init__(self, path: str, config: dict):
        self.path = path
        self.rootfs = os.path.join(path, "rootfs")
        self.config = config

    def write(self) -> "Bundle":
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=2)
        return self

    def copy_config(self) -> dict:
        return copy.deepcopy(self.config)
