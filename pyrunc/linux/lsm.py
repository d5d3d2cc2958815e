"""Which Linux security modules the host has enabled (AppArmor, SELinux).

Labels a config asks for are applied only where the module is on; elsewhere
they are skipped, as runc skips them, and `--debug` says so.
Imports: stdlib only.
"""

from __future__ import annotations

import os


def apparmor_enabled() -> bool:
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def selinux_enabled() -> bool:
    return os.path.exists("/sys/fs/selinux/enforce")


def format_mount_label(data: list[str], label: str) -> list[str]:
    """linux.mountLabel as the mount option SELinux takes; quoted, since a
    label with categories (s0:c1,c2) holds commas."""
    return [*data, f'context="{label}"']


def skipped_labels(apparmor_profile: str, selinux_label: str, mount_label: str) -> list[str]:
    """The configured labels this host cannot apply, worded for --debug."""
    skipped = []
    if apparmor_profile and not apparmor_enabled():
        skipped.append(f'process.apparmorProfile "{apparmor_profile}": AppArmor is not enabled on this host; skipped')
    if not selinux_enabled():
        if selinux_label:
            skipped.append(f'process.selinuxLabel "{selinux_label}": SELinux is not enabled on this host; skipped')
        if mount_label:
            skipped.append(f'linux.mountLabel "{mount_label}": SELinux is not enabled on this host; skipped')
    return skipped
