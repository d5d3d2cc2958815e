"""`features`: the runtime-spec features document (features.md), saying
exactly what this pyrunc supports, so engines (containerd, CRI-O) can decide
what to ask of it, e.g. user namespaces or idmapped mounts.
Imports: linux.{capabilities, mounts, seccomp}, jsonlite.
"""

from __future__ import annotations

from pyrunc import oslite as os

OCI_VERSION_MIN = "1.0.0"
OCI_VERSION_MAX = "1.2.1"


def features() -> dict:
    from pyrunc import __version__
    from pyrunc.linux import capabilities, mounts, seccomp
    from pyrunc.spec.model import HOOK_KINDS

    namespaces = ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"]
    if os.path.exists("/proc/self/ns/time"):
        namespaces.append("time")
    supported_options = sorted(mounts.KNOWN_OPTIONS)
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": list(HOOK_KINDS),
        "mountOptions": supported_options,
        "linux": {
            "namespaces": namespaces,
            "capabilities": list(capabilities.CAPABILITIES),
            "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": True, "rdma": True},
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
            # idmapped bind mounts (linux.idmapped), as runc 1.2 says: the kernel decides at create.
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": {
            "io.github.seccomp.libseccomp.version": seccomp.libseccomp_version(),
            "org.opencontainers.pyrunc.version": __version__,
            # checkpoint/restore go through CRIU (not a runtime-spec feature).
            "org.opencontainers.pyrunc.checkpoint": _checkpoint_support(),
        },
        "potentiallyUnsafeConfigAnnotations": [],
    }


def _checkpoint_support() -> str:
    """Whether `checkpoint`/`restore` can run here: CRIU's path, or why not
    (whether this kernel suits CRIU only `criu check` knows; they run it)."""
    import shutil

    path = shutil.which("criu")
    return f"criu ({path})" if path else "unavailable: criu not found on PATH"


def cmd_features(parsed) -> str:
    from pyrunc import jsonlite
    from pyrunc.errors import UsageError

    if parsed.args:
        raise UsageError("features: takes no arguments")
    return jsonlite.dumps(features(), indent=4) + "\n"


def version_text() -> str:
    """`pyrunc --version`, in runc's line format (dockerd parses
    "NAME version X", "commit: ...", "spec: ..."). Like runc built without
    a commit, the commit line is left out when it is not known: an installed
    wheel records none (setuptools has no declarative build step for it)."""
    import sys

    from pyrunc import OCI_VERSION, __version__
    from pyrunc.linux.seccomp import libseccomp_version

    lines = [f"pyrunc version {__version__}"]
    commit = checkout_commit()
    if commit:
        lines.append(f"commit: {commit}")
    lines += [f"spec: {OCI_VERSION}", f"python: {sys.version.split()[0]}"]
    seccomp = libseccomp_version()
    if seccomp:
        lines.append(f"libseccomp: {seccomp}")
    return "\n".join(lines) + "\n"


def checkout_commit(source_root: str | None = None) -> str | None:
    """The commit checked out where pyrunc runs from source (an editable
    install of a git checkout or worktree), read from .git without running
    git; None for an installed package or anything unexpected."""
    from pyrunc import oslite as os

    if source_root is None:
        source_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    git = os.path.join(source_root, ".git")
    try:
        if os.path.isfile(git):  # a worktree: "gitdir: <its dir in the main repository>"
            with open(git) as f:
                git = os.path.join(source_root, f.read().strip().removeprefix("gitdir: "))
        with open(os.path.join(git, "HEAD")) as f:
            head = f.read().strip()
        if not head.startswith("ref: "):
            return head if _is_sha(head) else None
        ref = head[5:]
        common = git
        if os.path.isfile(os.path.join(git, "commondir")):
            with open(os.path.join(git, "commondir")) as f:
                common = os.path.join(git, f.read().strip())
        for directory in (git, common):
            try:
                with open(os.path.join(directory, ref)) as f:
                    sha = f.read().strip()
                return sha if _is_sha(sha) else None
            except FileNotFoundError:
                pass
        with open(os.path.join(common, "packed-refs")) as f:
            for line in f:
                sha, _, name = line.strip().partition(" ")
                if name == ref and _is_sha(sha):
                    return sha
    except (OSError, UnicodeDecodeError):
        pass
    return None


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)
