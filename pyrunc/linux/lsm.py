"""Which Linux security modules the host has enabled (AppArmor, SELinux).

A label the config asks for is applied where its module is on; where it is
not, the container is refused (config.md: a property the runtime cannot
apply MUST be an error), as runc 1.1 refuses it.
Imports: stdlib only.
"""

from __future__ import annotations

from pyrunc import oslite as os


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


def unavailable_labels(apparmor_profile: str, selinux_label: str, mount_label: str) -> list[tuple[str, str]]:
    """(json path, problem) for each configured label this host cannot apply."""
    problems = []
    if apparmor_profile and not apparmor_enabled():
        problems.append(("process.apparmorProfile",
                         f'"{apparmor_profile}": AppArmor is not enabled on this host'))
    if (selinux_label or mount_label) and not selinux_enabled():
        if selinux_label:
            problems.append(("process.selinuxLabel", f'"{selinux_label}": SELinux is not enabled on this host'))
        if mount_label:
            problems.append(("linux.mountLabel", f'"{mount_label}": SELinux is not enabled on this host'))
    return problems


def describe_host() -> str:
    """One line for --debug: which of the two modules this host has."""
    def state(on: bool) -> str:
        return "enabled" if on else "not enabled"

    return f"LSMs: AppArmor {state(apparmor_enabled())}, SELinux {state(selinux_enabled())}"
