"""Semantic checks of config.json: the rules a JSON schema cannot express.

Runs after schema validation, so every present field has the right type;
optional fields may be absent. `check()` returns every problem as
(json_path, message) in config order (the field order of the Go-generated
config.json that engines write); `warnings()` returns what deserves a warning
but must not stop the container. Each check is a small function in CHECKS whose docstring names
the spec rule it enforces.

This runs on the container start path: stdlib only, and no `re`, `json`,
`typing`, `enum` or `dataclasses` (each costs milliseconds to import).
"""

from __future__ import annotations

from pyrunc.linux.capabilities import CAPABILITIES
from pyrunc.linux.rlimits import RLIMITS

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only; never imported at run time
    from collections.abc import Iterator

    Problems = Iterator[tuple[str, str]]

CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")




# --- helpers ------------------------------------------------------------------


def quote(value: str) -> str:
    """`value` as a JSON string literal: tmp → "tmp", a"b → "a\\"b"."""
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    if not out.isprintable():
        out = "".join(c if c.isprintable() else _escape(c) for c in out)
    return f'"{out}"'


def _escape(char: str) -> str:
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}.get(char)
    if named:
        return named
    code = ord(char)
    if code > 0xFFFF:  # JSON spells astral characters as a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def _not_absolute(value: str) -> str:
    return f"must be an absolute path, not {quote(value)}"


def _add_namespace(kind: str) -> str:
    return f'add {{"type": "{kind}"}} to linux.namespaces'


def namespaces(config: dict) -> dict[str, tuple[int, str]]:
    """type → (index in linux.namespaces, path or "") for the first entry of
    each type. An empty `path` means a new namespace, as in runc."""
    found: dict[str, tuple[int, str]] = {}
    for i, ns in enumerate((config.get("linux") or {}).get("namespaces") or ()):
        kind = ns.get("type")
        if kind not in found:
            found[kind] = (i, ns.get("path") or "")
    return found


def is_bind_mount(mount: dict) -> bool:
    """config.md: a mount is a bind mount if its options hold bind or rbind;
    runc and crun also take type "bind" to mean one."""
    if mount.get("type") == "bind":
        return True
    options = mount.get("options") or ()
    return "bind" in options or "rbind" in options


# --- checks -------------------------------------------------------------------


def check_process_present(config: dict) -> Problems:
    """config.md Process: REQUIRED at start; pyrunc creates no container without one."""
    if config.get("process") is None:
        yield "process", "is required (pyrunc cannot create a container without a process)"


def check_process_args(config: dict) -> Problems:
    """config.md Process: args needs at least one entry on POSIX platforms."""
    process = config.get("process")
    if process is None:
        return
    if "args" not in process:
        yield "process.args", "is required"
    elif not process["args"]:
        yield "process.args", "must not be empty"


def check_process_env(config: dict) -> Problems:
    """config.md Process: env has environ(7) semantics, every entry KEY=value."""
    process = config.get("process") or {}
    for i, entry in enumerate(process.get("env") or ()):
        if "\x00" in entry:
            yield f"process.env[{i}]", f"must not contain a NUL character, not {quote(entry)}"
        elif entry.find("=") < 1:
            yield f"process.env[{i}]", f"must be KEY=value, not {quote(entry)}"


def check_process_cwd(config: dict) -> Problems:
    """config.md Process: cwd MUST be an absolute path."""
    process = config.get("process") or {}
    cwd = process.get("cwd")
    if cwd is not None and not cwd.startswith("/"):
        yield "process.cwd", _not_absolute(cwd)


def check_rlimits(config: dict) -> Problems:
    """config.md POSIX process: rlimit types map to the kernel, no duplicates, soft <= hard."""
    seen = set()
    for i, rlimit in enumerate((config.get("process") or {}).get("rlimits") or ()):
        kind = rlimit.get("type")
        if kind is not None:
            if kind not in RLIMITS:
                yield f"process.rlimits[{i}].type", f"unknown rlimit type {quote(kind)}"
            elif kind in seen:
                yield f"process.rlimits[{i}].type", f"duplicate rlimit type {quote(kind)}"
            seen.add(kind)
        soft, hard = rlimit.get("soft"), rlimit.get("hard")
        if soft is not None and hard is not None and soft > hard:
            yield f"process.rlimits[{i}].soft", f"must be at most the hard limit {hard}, not {soft}"


def check_root(config: dict) -> Problems:
    """config.md Root: REQUIRED on Linux, with a non-empty path."""
    root = config.get("root")
    if root is None:
        yield "root", "is required on Linux"
    elif not root.get("path"):
        yield "root.path", "must not be empty"


def check_hostname(config: dict) -> Problems:
    """config.md Hostname/Domainname: set in the container's UTS namespace, which must exist (runc)."""
    has_uts = "uts" in namespaces(config)
    for field in ("hostname", "domainname"):
        if config.get(field) and not has_uts:
            yield field, f"requires a private UTS namespace; {_add_namespace('uts')}"


def check_mounts(config: dict) -> Problems:
    """config.md Mounts: destination REQUIRED; a bind mount needs a source."""
    for i, mount in enumerate(config.get("mounts") or ()):
        if not mount.get("destination"):
            yield f"mounts[{i}].destination", "must not be empty"
        if not mount.get("source") and is_bind_mount(mount):
            yield f"mounts[{i}].source", "is required for a bind mount"


def check_hooks(config: dict) -> Problems:
    """config.md POSIX-platform Hooks: path MUST be absolute; timeout MUST be greater than zero."""
    for kind, hooks in (config.get("hooks") or {}).items():
        if kind not in HOOK_KINDS:
            continue
        for i, hook in enumerate(hooks or ()):
            path = hook.get("path")
            if path is not None and not path.startswith("/"):
                yield f"hooks.{kind}[{i}].path", _not_absolute(path)
            timeout = hook.get("timeout")
            if timeout is not None and timeout <= 0:
                yield f"hooks.{kind}[{i}].timeout", f"must be greater than 0, not {timeout}"


def check_annotations(config: dict) -> Problems:
    """config.md Annotations: keys MUST be non-empty strings."""
    if "" in (config.get("annotations") or {}):
        yield "annotations", "must not have an empty key"


def check_id_mappings(config: dict) -> Problems:
    """config-linux.md User namespace mappings: they need a user namespace; a new one needs both (runc)."""
    linux = config.get("linux") or {}
    user = namespaces(config).get("user")
    for field in ("uidMappings", "gidMappings"):
        if user is None:
            if linux.get(field):
                yield f"linux.{field}", f"requires a user namespace; {_add_namespace('user')}"
        elif not user[1] and not linux.get(field):
            yield f"linux.{field}", f"is required for a new user namespace (linux.namespaces[{user[0]}] has no path)"


def check_idmapped_mounts(config: dict) -> Problems:
    """config.md Mounts (1.1+): idmapped mounts follow runc 1.2's rules."""
    # Bind mounts only; uidMappings/gidMappings, when given, both and not
    # empty; idmap/ridmap without them take the container's user namespace's
    # maps, so it needs one; and a new mount namespace, where the init
    # attaches them (linux.idmapped).
    user = namespaces(config).get("user")
    mnt = namespaces(config).get("mount")
    for i, mount in enumerate(config.get("mounts") or ()):
        if not isinstance(mount, dict):
            continue
        options = mount.get("options") or ()
        given = [f for f in ("uidMappings", "gidMappings") if f in mount]
        asked = given + [o for o in options if o in ("idmap", "ridmap")]
        if not asked:
            continue
        what = ", ".join(dict.fromkeys(asked))
        if not (mount.get("type") == "bind" or "bind" in options or "rbind" in options):
            yield f"mounts[{i}]", f'{what}: idmapped mounts are bind mounts only; add "bind" or "rbind" to options'
        elif mnt is None or mnt[1]:
            yield f"mounts[{i}]", f"{what}: an idmapped mount needs a new mount namespace; {_add_namespace('mount')}"
        elif given:
            for field in ("uidMappings", "gidMappings"):
                if not mount.get(field):
                    yield f"mounts[{i}].{field}", "must not be empty: an idmapped mount needs both uid and gid mappings"
        elif user is None:
            yield f"mounts[{i}]", (f"{what} without uidMappings and gidMappings takes the container's user "
                                   f"namespace's mappings, and there is none; give the mappings or "
                                   f"{_add_namespace('user')}")


def check_sysctl(config: dict) -> Problems:
    """config-linux.md Sysctl: only sysctls of the container's own namespaces may be set (runc)."""
    sysctls = (config.get("linux") or {}).get("sysctl") or {}
    if not sysctls:
        return
    from pyrunc.linux import sysctl

    have = namespaces(config)
    for key in sysctls:
        path = f"linux.sysctl[{quote(key)}]"
        try:
            kind = sysctl.parse(key).namespace
        except ValueError as err:
            yield path, str(err)
            continue
        if not kind:
            yield path, 'is not allowed; set the "hostname" field instead'
        elif kind not in have:
            what = {"ipc": "a private IPC namespace", "network": "a private network namespace",
                    "uts": "a private UTS namespace", "user": "a user namespace"}[kind]
            yield path, f"requires {what}; {_add_namespace(kind)}"


def check_namespaces(config: dict) -> Problems:
    """config-linux.md Namespaces: no duplicate types; path MUST be absolute."""
    seen = set()
    for i, ns in enumerate((config.get("linux") or {}).get("namespaces") or ()):
        kind = ns.get("type")
        if kind in seen:
            yield f"linux.namespaces[{i}].type", f"duplicate namespace type {quote(kind)}"
        seen.add(kind)
        path = ns.get("path")
        if path and not path.startswith("/"):
            yield f"linux.namespaces[{i}].path", _not_absolute(path)


# The kernel's dev_t: 12 bits of major, 20 of minor; mknod(2) silently cuts
# larger numbers down to another device.
DEVICE_NUMBER_LIMITS = {"major": (1 << 12) - 1, "minor": (1 << 20) - 1}


def check_devices(config: dict) -> Problems:
    """config-linux.md Devices: full path; major, minor REQUIRED unless type p, within the kernel's dev_t."""
    for i, device in enumerate((config.get("linux") or {}).get("devices") or ()):
        path = device.get("path")
        if path is not None and not path.startswith("/"):
            yield f"linux.devices[{i}].path", _not_absolute(path)
        kind = device.get("type")
        for field, limit in DEVICE_NUMBER_LIMITS.items():
            value = device.get(field)
            if value is None:
                if kind in ("c", "b", "u"):
                    yield f"linux.devices[{i}].{field}", f"is required for a device of type {quote(kind)}"
            elif not 0 <= value <= limit:
                yield f"linux.devices[{i}].{field}", f"must be between 0 and {limit}, not {value}"


def check_masked_readonly_paths(config: dict) -> Problems:
    """config-linux.md Masked/Readonly Paths: values MUST be absolute paths."""
    linux = config.get("linux") or {}
    for field in ("maskedPaths", "readonlyPaths"):
        for i, path in enumerate(linux.get(field) or ()):
            if not path.startswith("/"):
                yield f"linux.{field}[{i}]", _not_absolute(path)


def check_time_offsets(config: dict) -> Problems:
    """config-linux.md Offset for Time Namespace: offsets apply only to a new time namespace (runc)."""
    if (config.get("linux") or {}).get("timeOffsets") is None:
        return
    time = namespaces(config).get("time")
    if time is None:
        yield "linux.timeOffsets", f"requires a time namespace; {_add_namespace('time')}"
    elif time[1]:
        yield "linux.timeOffsets", (
            f"cannot be set for a time namespace joined by path (linux.namespaces[{time[0]}].path); "
            "remove the path to create a new one, or remove the offsets"
        )


CHECKS = [
    check_process_present,
    check_process_args,
    check_process_env,
    check_process_cwd,
    check_rlimits,
    check_root,
    check_hostname,
    check_mounts,
    check_hooks,
    check_annotations,
    check_id_mappings,
    check_idmapped_mounts,
    check_sysctl,
    check_namespaces,
    check_devices,
    check_masked_readonly_paths,
    check_time_offsets,
]


def check(config: dict) -> list[tuple[str, str]]:
    """Every semantic problem in a schema-valid config.json, as (json_path, message)."""
    problems = []
    for rule in CHECKS:
        problems.extend(rule(config))
    return problems


# --- warnings -----------------------------------------------------------------


def warn_console_size(config: dict, cap_last_cap: int) -> Problems:
    """config.md Process: runtimes MUST ignore consoleSize unless terminal is true."""
    process = config.get("process") or {}
    if "consoleSize" in process and process.get("terminal") is not True:
        yield "process.consoleSize", "ignored because process.terminal is not true"


def warn_capabilities(config: dict, cap_last_cap: int) -> Problems:
    """config.md Linux Process: unknown capabilities, or ones the kernel lacks, are logged as warnings, not fatal."""
    # runtime-spec 1.1+: MUST warn, SHOULD NOT fail (engines send CAP_BPF to
    # old kernels); runc and crun ignore them too.
    caps = (config.get("process") or {}).get("capabilities") or {}
    for kind, names in caps.items():
        if kind not in CAPABILITY_SETS:
            continue
        for i, name in enumerate(names or ()):
            number = CAPABILITIES.get(name)
            if number is None:
                yield f"process.capabilities.{kind}[{i}]", f"unknown capability {quote(name)}; ignored"
            elif number > cap_last_cap:
                yield (
                    f"process.capabilities.{kind}[{i}]",
                    f"capability {quote(name)} is not supported by this kernel (cap_last_cap {cap_last_cap}); ignored",
                )


def warn_shared_uts(config: dict, cap_last_cap: int) -> Problems:
    """config.md Hostname: with a UTS namespace joined by path, the name changes for all its members."""
    uts = namespaces(config).get("uts")
    if uts is None or not uts[1]:
        return
    for field in ("hostname", "domainname"):
        if config.get(field):
            shared = quote(uts[1])
            yield field, f"sets the {field} of the shared UTS namespace {shared}, not one private to the container"


def warn_joined_user_mappings(config: dict, cap_last_cap: int) -> Problems:
    """config-linux.md Namespaces: a joined user namespace keeps its own mappings."""
    user = namespaces(config).get("user")
    if user is None or not user[1]:
        return
    linux = config.get("linux") or {}
    for field in ("uidMappings", "gidMappings"):
        if linux.get(field):
            yield (
                f"linux.{field}",
                f"not applied: the user namespace is joined by path {quote(user[1])} and keeps its own mappings",
            )


WARNINGS = [
    warn_console_size,
    warn_capabilities,
    warn_shared_uts,
    warn_joined_user_mappings,
]


def warnings(config: dict, cap_last_cap: int) -> list[tuple[str, str]]:
    """What to warn about and then ignore, as (json_path, message); `cap_last_cap`
    is the running kernel's (pyrunc.linux.capabilities.read_cap_last_cap())."""
    found = []
    for rule in WARNINGS:
        found.extend(rule(config, cap_last_cap))
    return found
