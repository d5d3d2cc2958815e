"""Typed, read-only views of a validated config.json, built once in `create`.

Plain classes with __slots__ (dataclasses cost ~10 ms to import). Below the
operations layer nothing reads the config dict directly, except the two
subsystems whose input *is* an OCI structure: cgroup resources and the seccomp
profile, kept as the dicts the spec defines. Stdlib only.
"""

from __future__ import annotations

from pyrunc import oslite as os

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class User:
    __slots__ = ("uid", "gid", "umask", "additional_gids")

    def __init__(self, d: dict):
        self.uid: int = d.get("uid", 0)
        self.gid: int = d.get("gid", 0)
        self.umask: int | None = d.get("umask")
        self.additional_gids: list[int] = list(d.get("additionalGids") or ())


class Rlimit:
    __slots__ = ("type", "soft", "hard")

    def __init__(self, d: dict):
        self.type: str = d["type"]
        self.soft: int = d["soft"]
        self.hard: int = d["hard"]


class Process:
    __slots__ = ("terminal", "console_size", "cwd", "env", "args", "rlimits", "capabilities",
                 "no_new_privileges", "oom_score_adj", "apparmor_profile", "selinux_label",
                 "user", "scheduler", "io_priority")

    def __init__(self, d: dict):
        self.terminal: bool = bool(d.get("terminal", False))
        size = d.get("consoleSize")
        self.console_size: tuple[int, int] | None = (size["height"], size["width"]) if size else None
        self.cwd: str = d.get("cwd", "/")
        self.env: list[str] = list(d.get("env") or ())
        self.args: list[str] = list(d.get("args") or ())
        self.rlimits: list[Rlimit] = [Rlimit(r) for r in d.get("rlimits") or ()]
        caps = d.get("capabilities")
        # None means "not given" (keep what the runtime has), unlike an empty set.
        self.capabilities: dict[str, list[str]] | None = (
            {k: list(caps.get(k) or ()) for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}
            if caps is not None else None
        )
        self.no_new_privileges: bool = bool(d.get("noNewPrivileges", False))
        self.oom_score_adj: int | None = d.get("oomScoreAdj")
        self.apparmor_profile: str = d.get("apparmorProfile", "")
        self.selinux_label: str = d.get("selinuxLabel", "")
        self.user = User(d.get("user") or {})
        self.scheduler: dict | None = d.get("scheduler")
        self.io_priority: dict | None = d.get("ioPriority")

    def env_value(self, name: str, default: str | None = None) -> str | None:
        prefix = name + "="
        for entry in reversed(self.env):
            if entry.startswith(prefix):
                return entry[len(prefix):]
        return default


class Mount:
    __slots__ = ("destination", "type", "source", "options", "uid_mappings", "gid_mappings")

    def __init__(self, d: dict):
        destination = d["destination"]
        # Relative destinations are deprecated but allowed: relative to "/".
        self.destination: str = destination if destination.startswith("/") else "/" + destination
        self.type: str = d.get("type") or ""
        self.source: str = d.get("source") or ""
        self.options: list[str] = list(d.get("options") or ())
        # None when absent: idmap/ridmap then take the container's user namespace's.
        self.uid_mappings: list[IDMapping] | None = (
            [IDMapping(m) for m in d["uidMappings"]] if d.get("uidMappings") is not None else None)
        self.gid_mappings: list[IDMapping] | None = (
            [IDMapping(m) for m in d["gidMappings"]] if d.get("gidMappings") is not None else None)

    @property
    def is_bind(self) -> bool:
        return self.type == "bind" or "bind" in self.options or "rbind" in self.options

    @property
    def idmapped(self) -> bool:
        """Mappings, or idmap/ridmap: runc 1.2 idmaps the mount either way."""
        return self.uid_mappings is not None or self.gid_mappings is not None or \
            any(o in ("idmap", "ridmap") for o in self.options)

    @property
    def idmap_recursive(self) -> bool:
        """ridmap: the submounts of an rbind are idmapped too (the last of
        idmap/ridmap counts, as in runc); plain mappings mean idmap."""
        chosen = [o for o in self.options if o in ("idmap", "ridmap")]
        return bool(chosen) and chosen[-1] == "ridmap"


class Namespace:
    __slots__ = ("type", "path")

    def __init__(self, d: dict):
        self.type: str = d["type"]
        self.path: str = d.get("path") or ""


class IDMapping:
    __slots__ = ("container_id", "host_id", "size")

    def __init__(self, d: dict):
        self.container_id: int = d["containerID"]
        self.host_id: int = d["hostID"]
        self.size: int = d["size"]


class Device:
    __slots__ = ("path", "type", "major", "minor", "file_mode", "uid", "gid")

    def __init__(self, d: dict):
        self.path: str = d["path"]
        self.type: str = d["type"]
        self.major: int = d.get("major", 0)
        self.minor: int = d.get("minor", 0)
        self.file_mode: int | None = d.get("fileMode")
        self.uid: int | None = d.get("uid")
        self.gid: int | None = d.get("gid")


class Hook:
    __slots__ = ("path", "args", "env", "timeout")

    def __init__(self, d: dict):
        self.path: str = d["path"]
        self.args: list[str] = list(d.get("args") or ())
        # None when absent: the hook inherits an environment (hooks.py);
        # [] is an empty one.
        self.env: list[str] | None = list(d["env"]) if d.get("env") is not None else None
        self.timeout: int | None = d.get("timeout")

    def to_dict(self) -> dict:
        d = {"path": self.path}
        if self.args:
            d["args"] = self.args
        if self.env is not None:
            d["env"] = self.env
        if self.timeout is not None:
            d["timeout"] = self.timeout
        return d


HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


class Linux:
    __slots__ = ("namespaces", "uid_mappings", "gid_mappings", "time_offsets", "devices", "cgroups_path",
                 "resources", "sysctl", "seccomp", "rootfs_propagation", "masked_paths", "readonly_paths",
                 "mount_label", "personality")

    def __init__(self, d: dict):
        self.namespaces: list[Namespace] = [Namespace(n) for n in d.get("namespaces") or ()]
        self.uid_mappings: list[IDMapping] = [IDMapping(m) for m in d.get("uidMappings") or ()]
        self.gid_mappings: list[IDMapping] = [IDMapping(m) for m in d.get("gidMappings") or ()]
        self.time_offsets: dict = dict(d.get("timeOffsets") or {})
        self.devices: list[Device] = [Device(x) for x in d.get("devices") or ()]
        self.cgroups_path: str = d.get("cgroupsPath") or ""
        self.resources: dict = d.get("resources") or {}
        self.sysctl: dict[str, str] = dict(d.get("sysctl") or {})
        self.seccomp: dict | None = d.get("seccomp")
        self.rootfs_propagation: str = d.get("rootfsPropagation") or ""
        self.masked_paths: list[str] = list(d.get("maskedPaths") or ())
        self.readonly_paths: list[str] = list(d.get("readonlyPaths") or ())
        self.mount_label: str = d.get("mountLabel") or ""
        self.personality: dict | None = d.get("personality")

    def namespace(self, kind: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == kind:
                return ns
        return None


class Config:
    """A validated config.json; paths already resolved against the bundle."""

    __slots__ = ("oci_version", "bundle", "root_path", "root_readonly", "mounts", "process", "hostname",
                 "domainname", "hooks", "annotations", "linux", "process_dict")

    def __init__(self, d: dict, bundle: str):
        self.oci_version: str = d["ociVersion"]
        self.bundle = bundle
        root = d.get("root") or {}
        self.root_path: str = os.path.normpath(os.path.join(bundle, root.get("path", "rootfs")))
        self.root_readonly: bool = bool(root.get("readonly", False))
        self.mounts: list[Mount] = [Mount(m) for m in d.get("mounts") or ()]
        self.process: Process | None = Process(d["process"]) if d.get("process") else None
        # Kept as written: `exec` starts from it when given no --process.
        self.process_dict: dict = d.get("process") or {}
        self.hostname: str | None = d.get("hostname")
        self.domainname: str | None = d.get("domainname")
        hooks = d.get("hooks") or {}
        self.hooks: dict[str, list[Hook]] = {k: [Hook(h) for h in hooks.get(k) or ()] for k in HOOK_KINDS}
        self.annotations: dict[str, str] = dict(d.get("annotations") or {})
        self.linux = Linux(d.get("linux") or {})
