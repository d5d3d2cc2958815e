"""`features`: the runtime-spec features document (features.md), saying
exactly what this pyrunc supports, so engines (containerd, CRI-O) can decide
what to ask of it, e.g. user namespaces or idmapped mounts.
Imports: linux.{capabilities, mounts, seccomp}, jsonlite.
"""

from __future__ import annotations

import os

OCI_VERSION_MIN = "1.0.0"
OCI_VERSION_MAX = "1.2.1"


def features() -> dict:
    from pyrunc import __version__
    from pyrunc.linux import capabilities, mounts, seccomp
    from pyrunc.spec.model import HOOK_KINDS

    namespaces = ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"]
    if os.path.exists("/proc/self/ns/time"):
        namespaces.append("time")
    supported_options = sorted(o for o in mounts.KNOWN_OPTIONS if o not in ("idmap", "ridmap"))
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": list(HOOK_KINDS),
        "mountOptions": supported_options,
        "linux": {
            "namespaces": namespaces,
            "capabilities": list(capabilities.CAPABILITIES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": True},
            "seccomp": {
                "enabled": True,
                "actions": sorted(seccomp.ACTIONS),
                "operators": sorted(seccomp.OPERATORS),
                "archs": sorted(seccomp.ARCHES),
                "knownFlags": sorted(seccomp.FLAGS),
                "supportedFlags": sorted(seccomp.FLAGS),
            },
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {
            "io.github.seccomp.libseccomp.version": seccomp.libseccomp_version(),
            "org.opencontainers.pyrunc.version": __version__,
        },
        "potentiallyUnsafeConfigAnnotations": [],
    }


def cmd_features(parsed) -> str:
    from pyrunc import jsonlite
    from pyrunc.errors import UsageError

    if parsed.args:
        raise UsageError("features: takes no arguments")
    return jsonlite.dumps(features(), indent=4) + "\n"


def version_text() -> str:
    """`pyrunc --version`, in runc's line format (dockerd parses
    "NAME version X", "commit: ...", "spec: ...")."""
    import sys

    from pyrunc import OCI_VERSION, __version__
    from pyrunc.linux.seccomp import libseccomp_version

    lines = [f"pyrunc version {__version__}", f"commit: v{__version__}", f"spec: {OCI_VERSION}",
             f"python: {sys.version.split()[0]}"]
    seccomp = libseccomp_version()
    if seccomp:
        lines.append(f"libseccomp: {seccomp}")
    return "\n".join(lines) + "\n"
