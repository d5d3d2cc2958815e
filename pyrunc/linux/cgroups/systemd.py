"""The systemd cgroup driver (`--systemd-cgroup`), with runc's semantics.

cgroupsPath is "slice:prefix:name" (empty: "system.slice:pyrunc:<id>"; an
empty slice is "system.slice"). The container gets a transient unit,
`<prefix>-<name>.scope` (or `<name>` when that ends in ".slice", for a pod's
slice), in that slice, started over D-Bus (linux.sdbus) with Delegate=yes
and the init as its only process (PIDs), so systemd owns the cgroup and
leaves what is inside it to pyrunc. Resources go both ways, as runc does:
as unit properties systemd keeps (MemoryMax, CPUWeight, CPUQuotaPerSecUSec,
TasksMax, AllowedCPUs, IOWeight, ... and the `unified` keys systemd knows),
and into the cgroup files, which also take what systemd cannot express
(hugetlb, rdma, swap on v1, device rules: pyrunc's own eBPF filter or
devices lists). Annotations "org.systemd.property.NAME" add unit properties
(a GVariant text value; NAMESec becomes NAMEUSec). `update` sets the
properties again (SetUnitProperties) and writes the files; `delete` stops
the unit and resets it if it failed. Everything else (freeze, stats, pids,
kill, exec joining) works on the unit's directories like the cgroupfs
driver. On a v1 host systemd places the unit in the hierarchies it manages
(name=systemd, cpu, memory, pids, ...); pyrunc makes and joins the same
path in the others (cpuset, freezer, ...), as runc does.

Rootless (a user, or root in a user namespace mapped to a user: rootless
Podman), the unit is the user's own systemd's (user@UID.service, reached on
the session bus or its private socket: sdbus.connect_user), in "user.slice"
by default, under that manager's cgroup; cgroup v2 only, as with runc.

Pure conversions (parse_cgroups_path, expand_slice, unit_name, user_manager_uid,
resource_properties, unified_properties, annotation_properties,
range_to_bits, parse_gvariant) are unit-tested; SystemdManager is tested on
a real systemd host (the VM lane).
Imports: errors, linux.{proc, sdbus}, linux.cgroups.{fs, manager, resources}.
"""

from __future__ import annotations

import time

from pyrunc import oslite as os
from pyrunc.errors import PyruncError
from pyrunc.linux.cgroups.fs import CgroupDirs, subtree
from pyrunc.linux.cgroups.manager import V2_KEY, CgroupManager, FsV1Manager, FsV2Manager

DEFAULT_SLICE = "system.slice"
DEFAULT_USER_SLICE = "user.slice"  # rootless: a slice of the user's manager, as runc
DEFAULT_PREFIX = "pyrunc"
WHERE = "linux.cgroupsPath"
UNIT_NAME_MAX = 255
_UNIT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@")
USEC_INFINITY = (1 << 64) - 1
_DEFAULT_PERIOD = 100000


# ---------------------------------------------------------------- names and paths


def parse_cgroups_path(value: str, container_id: str, default_slice: str = DEFAULT_SLICE) -> tuple[str, str, str]:
    """cgroupsPath under --systemd-cgroup → (slice, prefix, name), as runc:
    "" is the default unit for this container; else exactly three fields.
    An empty slice is `default_slice` (DEFAULT_USER_SLICE rootless)."""
    if not value:
        return default_slice, DEFAULT_PREFIX, container_id
    parts = value.split(":")
    if len(parts) != 3:
        raise PyruncError(f'config.json: {WHERE}: with --systemd-cgroup it must be "slice:prefix:name" '
                          f'(e.g. "system.slice:pyrunc:web"), not "{value}"')
    slice_name, prefix, name = parts
    if not name:
        raise PyruncError(f'config.json: {WHERE}: "{value}": the name (the third field) is empty')
    slice_name = slice_name or default_slice
    expand_slice(slice_name)
    return slice_name, prefix, name


def expand_slice(slice_name: str) -> str:
    """A slice's cgroup path: "a-b-c.slice" → "/a.slice/a-b.slice/a-b-c.slice",
    "-.slice" → "/". Anything that is not a slice's name is refused (a
    service, a path, an empty part: "a--b.slice")."""
    bad = PyruncError(f'config.json: {WHERE}: "{slice_name}" is not a systemd slice (a name like '
                      '"system.slice" or "machine-pods.slice")')
    if not slice_name.endswith(".slice") or len(slice_name) <= len(".slice") or "/" in slice_name:
        raise bad
    base = slice_name[:-len(".slice")]
    if base == "-":
        return "/"
    if not set(slice_name) <= _UNIT_CHARS:
        raise bad
    path, prefix = "", ""
    for part in base.split("-"):
        if not part:
            raise bad
        path += f"/{prefix}{part}.slice"
        prefix += part + "-"
    return path


def unit_name(prefix: str, name: str) -> str:
    """The unit runc makes: a scope "<prefix>-<name>.scope", or the slice
    `name` itself when it names one."""
    unit = name if name.endswith(".slice") else (f"{prefix}-{name}.scope" if prefix else f"{name}.scope")
    if len(unit) > UNIT_NAME_MAX or not set(unit) <= _UNIT_CHARS or unit.startswith("."):
        raise PyruncError(f'config.json: {WHERE}: "{unit}" is not a valid systemd unit name (letters, digits '
                          'and ":-_.\\@" only, at most 255 characters)')
    if name.endswith(".slice"):
        expand_slice(name)
    return unit


def unit_paths(layout, slice_name: str, unit: str, roots: dict[str, str]) -> dict[str, str]:
    """The unit's directory in every hierarchy of `layout`: the mount, the
    root systemd manages there (`roots`, by hierarchy key: pid 1's cgroup
    less "init.scope", not "/" when systemd itself runs in a container),
    the slice's path, the unit."""
    from pyrunc.linux import cgroups

    relative = expand_slice(slice_name).rstrip("/") + "/" + unit
    paths = {}
    for key, mount_point in layout.mounts.items():
        root = roots.get(key, "/")
        paths[key] = mount_point.rstrip("/") + cgroups.clean_path(root.rstrip("/") + relative)
    return paths


def user_manager_uid(rootless: bool, host_uid: int) -> int | None:
    """Whose systemd holds a container: None for the system manager, else
    the uid whose user manager does (user@UID.service). Rootless (runc's
    rootless cgroup manager: a user other than root, or root in a user
    namespace) means the user manager, unless the caller is root outside
    its namespace too (`host_uid`, linux.proc.host_uid: a namespace whose
    uid 0 is the host's root has the system's manager). runc asks busctl
    for the session bus owner's uid; the uid_map says the same for rootless
    Podman. A system container with its own systemd as pid 1, whose root is
    mapped to some other uid, gives --rootless=false."""
    if not rootless or host_uid == 0:
        return None
    return host_uid


def under_mount_root(path: str, mount_root: str) -> str:
    """A cgroup path as systemd names it (from its namespace's root), made
    relative to a cgroup2 mount that shows only `mount_root` of it."""
    from pyrunc.linux import cgroups

    path = cgroups.clean_path(path)
    mount_root = cgroups.clean_path(mount_root or "/")
    if mount_root != "/" and (path == mount_root or path.startswith(mount_root + "/")):
        path = "/" + path[len(mount_root):].lstrip("/")
    return path


def systemd_roots(layout) -> dict[str, str]:
    """Where systemd (pid 1) keeps its tree in each hierarchy, relative to
    that hierarchy's mount (runc's getSubsystemPath)."""
    from pyrunc.linux import cgroups, proc

    try:
        init = proc.read_cgroup(1)
    except OSError:
        return {}
    roots = {}
    for key in layout.mounts:
        path = cgroups.clean_path(init.get(key.split(",")[0], init.get(key, "/")))
        if path.endswith("/init.scope"):
            path = path[:-len("/init.scope")] or "/"
        roots[key] = under_mount_root(path, layout.roots.get(key, "/"))
    return roots


# ---------------------------------------------------------------- properties

Property = tuple  # (name, D-Bus signature, value)


def base_properties(slice_name: str, unit: str, name: str, pid: int, v2: bool) -> list[Property]:
    """What every unit gets (runc's Apply): a description, its slice (a
    scope) or the slice it wants (a slice), delegation, the init's pid,
    accounting on (the kernel dislikes enabling memory accounting later),
    and no default dependencies (the unit must not wait for anything)."""
    props: list[Property] = [("Description", "s", f"pyrunc container {name}")]
    if unit.endswith(".slice"):
        props.append(("Wants", "as", [slice_name]))
    else:
        props.append(("Slice", "s", slice_name))
        props.append(("Delegate", "b", True))
    if pid > 0:
        props.append(("PIDs", "au", [pid]))
    props += [("MemoryAccounting", "b", True), ("CPUAccounting", "b", True),
              ("IOAccounting" if v2 else "BlockIOAccounting", "b", True), ("TasksAccounting", "b", True),
              ("DefaultDependencies", "b", False)]
    return props


def resource_properties(resources: dict, v2: bool, systemd_version=lambda: 999) -> list[Property]:
    """linux.resources as unit properties (runc's genV2ResourcesProperties /
    genV1ResourcesProperties); 0 means unset, as in the files. Device rules
    are not sent: pyrunc's own filter enforces them (systemd's would be a
    second one, and systemd cannot express deny lists)."""
    from pyrunc.linux.cgroups import resources as conv

    resources = resources or {}
    memory = resources.get("memory") or {}
    cpu = resources.get("cpu") or {}
    props: list[Property] = []
    limit = _int(memory.get("limit"))
    if v2:
        if limit:
            props.append(("MemoryMax", "t", _uint64(limit)))
        reservation = _int(memory.get("reservation"))
        if reservation:
            props.append(("MemoryLow", "t", _uint64(reservation)))
        swap = conv.convert_memory_swap_to_v2(_int(memory.get("swap")), limit)
        if swap:
            props.append(("MemorySwapMax", "t", _uint64(swap)))
        weight = conv.convert_cpu_shares_to_weight(_int(cpu.get("shares")))
        if weight:
            props.append(("CPUWeight", "t", weight))
        io_weight = _int((resources.get("blockIO") or {}).get("weight"))
        if io_weight:
            props.append(("IOWeight", "t", conv.convert_blkio_weight_to_io_weight(io_weight)))
    else:
        if limit:
            props.append(("MemoryLimit", "t", _uint64(limit)))
        shares = _int(cpu.get("shares"))
        if shares:
            props.append(("CPUShares", "t", shares))
        blkio_weight = _int((resources.get("blockIO") or {}).get("weight"))
        if blkio_weight:
            props.append(("BlockIOWeight", "t", blkio_weight))
    props += cpu_quota_properties(_int(cpu.get("quota")), _int(cpu.get("period")), systemd_version)
    pids = (resources.get("pids") or {}).get("limit")
    if pids is not None and (_int(pids) > 0 or _int(pids) == -1):
        props.append(("TasksMax", "t", _uint64(_int(pids))))
    props += cpuset_properties(cpu.get("cpus") or "", cpu.get("mems") or "", systemd_version)
    if v2 and resources.get("unified"):
        props += unified_properties(resources["unified"], systemd_version)
    return props


def cpu_quota_properties(quota: int, period: int, systemd_version=lambda: 999) -> list[Property]:
    """CPUQuotaPerSecUSec (and CPUQuotaPeriodUSec, systemd 242+): systemd
    keeps a quota per second in whole percents, so a fraction is rounded up
    to the next 10 ms, as runc does (the cgroup file gets the exact value)."""
    props: list[Property] = []
    if period and systemd_version() >= 242:
        props.append(("CPUQuotaPeriodUSec", "t", period))
    if quota or period:
        per_sec = USEC_INFINITY
        if quota > 0:
            per_sec = quota * 1_000_000 // (period or _DEFAULT_PERIOD)
            if per_sec % 10000:
                per_sec = (per_sec // 10000 + 1) * 10000
        props.append(("CPUQuotaPerSecUSec", "t", per_sec))
    return props


def cpuset_properties(cpus: str, mems: str, systemd_version=lambda: 999) -> list[Property]:
    """AllowedCPUs / AllowedMemoryNodes (systemd 244+; older ones get the
    cgroup files only)."""
    props: list[Property] = []
    if not (cpus or mems) or systemd_version() < 244:
        return props
    if cpus:
        props.append(("AllowedCPUs", "ay", range_to_bits(cpus, "linux.resources.cpu.cpus")))
    if mems:
        props.append(("AllowedMemoryNodes", "ay", range_to_bits(mems, "linux.resources.cpu.mems")))
    return props


def unified_properties(unified: dict, systemd_version=lambda: 999) -> list[Property]:
    """The `unified` keys systemd has a property for (runc's
    unifiedResToSystemdProps); the others go to the files only."""
    from pyrunc.linux.cgroups import resources as conv

    props: list[Property] = []
    names = {"memory.high": "MemoryHigh", "memory.low": "MemoryLow", "memory.min": "MemoryMin",
             "memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax", "pids.max": "TasksMax"}
    for key, raw in unified.items():
        conv.describe_unified_key(key)
        where = f'linux.resources.unified["{key}"]'
        value = str(raw).strip()
        if key == "cpu.max":
            fields = value.split()
            if not 1 <= len(fields) <= 2:
                raise PyruncError(f'{where}: invalid value "{value}" (want "QUOTA [PERIOD]")')
            quota = 0 if fields[0] == "max" else _parse_int(fields[0], where)
            period = _parse_int(fields[1], where) if len(fields) == 2 else _DEFAULT_PERIOD
            props += cpu_quota_properties(quota, period, systemd_version)
        elif key == "cpu.weight":
            props.append(("CPUWeight", "t", _parse_int(value, where)))
        elif key in ("cpuset.cpus", "cpuset.mems"):
            if systemd_version() >= 244:
                name = "AllowedCPUs" if key == "cpuset.cpus" else "AllowedMemoryNodes"
                props.append((name, "ay", range_to_bits(value, where)))
        elif key in names:
            props.append((names[key], "t", USEC_INFINITY if value == "max" else _parse_int(value, where)))
    return props


def range_to_bits(text: str, where: str) -> bytes:
    """A cpuset list ("0-3,7") as the bit mask systemd's AllowedCPUs takes:
    bytes in little-endian order, bit N for CPU N."""
    mask = 0
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            start, end = int(low), int(high if dash else low)
        except ValueError:
            raise PyruncError(f'{where}: invalid CPU list "{text}"') from None
        if start < 0 or start > end:
            raise PyruncError(f'{where}: invalid range "{part}" in "{text}"')
        for bit in range(start, end + 1):
            mask |= 1 << bit
    if not mask:
        raise PyruncError(f'{where}: empty CPU list "{text}"')
    return mask.to_bytes((mask.bit_length() + 7) // 8, "little")


def annotation_properties(annotations: dict) -> list[Property]:
    """annotations "org.systemd.property.NAME": "GVARIANT" → unit
    properties (runc's initSystemdProps)."""
    prefix = "org.systemd.property."
    props: list[Property] = []
    for key in sorted(annotations or {}):
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        where = f'annotations["{key}"]'
        if len(name) < 3 or not name.isascii() or not name.isalpha():
            raise PyruncError(f"{where}: invalid systemd property name {name!r} (letters only, 3 or more)")
        signature, value = parse_gvariant(str(annotations[key]), where)
        if name.endswith("Sec") and name[-4].islower():
            if signature not in ("y", "n", "q", "i", "u", "x", "t", "d"):
                raise PyruncError(f"{where}: {name} must be a number of seconds")
            name, signature, value = name[:-3] + "USec", "t", int(value * 1_000_000)
        props.append((name, signature, value))
    return props


_GVARIANT_TYPES = {"boolean": "b", "byte": "y", "int16": "n", "uint16": "q", "int32": "i", "uint32": "u",
                   "int64": "x", "uint64": "t", "double": "d", "string": "s", "objectpath": "o",
                   "signature": "g"}


def parse_gvariant(text: str, where: str = "value") -> tuple[str, object]:
    """A value in GVariant's text form, as godbus's ParseVariant reads the
    common cases: true/false, 'string' or "string", numbers (an integer is
    int32, with a dot a double), a type before a number ("uint64 1000"),
    and arrays of one basic type ([1, 2], ['a'], "@as []"). → (signature, value)."""
    text = text.strip()
    annotation = ""
    if text.startswith("@"):
        annotation, _, text = text[1:].partition(" ")
        text = text.strip()
    else:
        word, _, rest = text.partition(" ")
        if word in _GVARIANT_TYPES and rest.strip():
            annotation, text = _GVARIANT_TYPES[word], rest.strip()
    if text.startswith("["):
        if not text.endswith("]"):
            raise PyruncError(f"{where}: unterminated array {text!r}")
        inner = text[1:-1].strip()
        items = _split_items(inner, where) if inner else []
        declared = annotation[1:] if annotation.startswith("a") else ""
        element = declared
        values = []
        for item in items:
            signature, value = parse_gvariant(f"@{declared} {item}" if declared else item, where)
            if element and signature != element:
                raise PyruncError(f"{where}: array of mixed types")
            element = element or signature
            values.append(value)
        if not element:
            raise PyruncError(f"{where}: an empty array needs a type, like \"@as []\"")
        return "a" + element, values
    signature, value = _parse_scalar(text, where)
    if annotation and annotation != signature:
        if annotation in "ynqiuxt" and signature in "ynqiuxt":
            signature = annotation
        elif annotation == "d" and signature in "ynqiuxt":
            signature, value = "d", float(value)
        else:
            raise PyruncError(f"{where}: {text!r} is not of type {annotation!r}")
    if signature in "ynqiuxt":
        _check_range(signature, value, where)
    return signature, value


def _parse_scalar(text: str, where: str) -> tuple[str, object]:
    if text in ("true", "false"):
        return "b", text == "true"
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        body, out, i = text[1:-1], [], 0
        while i < len(body):
            if body[i] == "\\" and i + 1 < len(body):
                out.append({"n": "\n", "t": "\t"}.get(body[i + 1], body[i + 1]))
                i += 2
            else:
                out.append(body[i])
                i += 1
        return "s", "".join(out)
    try:
        return "i", int(text, 0)
    except ValueError:
        pass
    try:
        return "d", float(text)
    except ValueError:
        raise PyruncError(f"{where}: cannot parse {text!r} as a GVariant value") from None


def _split_items(inner: str, where: str) -> list[str]:
    items, current, quote = [], "", ""
    for char in inner:
        if quote:
            current += char
            if char == quote and not current.endswith("\\" + quote):
                quote = ""
        elif char in "'\"":
            quote = char
            current += char
        elif char == ",":
            items.append(current.strip())
            current = ""
        else:
            current += char
    if quote:
        raise PyruncError(f"{where}: unterminated string")
    items.append(current.strip())
    return items


_RANGES = {"y": (0, 255), "n": (-(1 << 15), (1 << 15) - 1), "q": (0, (1 << 16) - 1), "i": (-(1 << 31), (1 << 31) - 1),
           "u": (0, (1 << 32) - 1), "x": (-(1 << 63), (1 << 63) - 1), "t": (0, (1 << 64) - 1)}


def _check_range(signature: str, value: int, where: str) -> None:
    low, high = _RANGES[signature]
    if not low <= value <= high:
        raise PyruncError(f"{where}: {value} is out of range for type {signature!r}")


def _int(value) -> int:
    return 0 if value is None else int(value)


def _uint64(value: int) -> int:
    """-1 ("unlimited") is uint64's maximum, systemd's infinity."""
    return USEC_INFINITY if value < 0 else value


def _parse_int(text: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise PyruncError(f'{where}: "{text}" is not a number') from None
    if value < 0:
        raise PyruncError(f'{where}: "{text}" must not be negative')
    return value


# ---------------------------------------------------------------- the manager


class SystemdManager(CgroupManager):
    """A container whose cgroup is a transient systemd unit (see the module
    docstring). The directories are used as the cgroupfs driver uses them
    (`fs`, the v1 or v2 manager over the same directories)."""

    driver = "systemd"

    def __init__(self, dirs: CgroupDirs, unit: str, slice_name: str, v2_mount: str = "",
                 extra_properties: list | None = None, description: str = "", user_uid: int | None = None):
        super().__init__(dirs, v2_mount)
        self.unit = unit
        self.slice = slice_name
        # Rootless: the uid whose user manager holds the unit (None: the system's).
        self.user_uid = user_uid
        self.description = description or unit
        self.fs = _fs_for(dirs, v2_mount)
        self.extra_properties = extra_properties or []
        self._bus = None
        # Set by create: systemd puts the init in the unit (no joining v2),
        # and there is nothing to clone it into before that.
        self.placing = False
        self.started = False
        self._version = None

    @classmethod
    def for_new_container(cls, layout, cgroups_path: str, container_id: str, annotations: dict,
                          user_uid: int | None = None) -> "SystemdManager":
        """`create`: the unit for cgroupsPath, connected to systemd (the user
        manager of `user_uid` when given: user_manager_uid). Raises a
        one-line PyruncError for a bad cgroupsPath, or when systemd cannot
        be reached (naming the sockets tried)."""
        default_slice = DEFAULT_SLICE if user_uid is None else DEFAULT_USER_SLICE
        slice_name, prefix, name = parse_cgroups_path(cgroups_path, container_id, default_slice)
        unit = unit_name(prefix, name)
        extra = annotation_properties(annotations)
        if layout.mode == "none":
            raise PyruncError("--systemd-cgroup: no cgroup hierarchy is mounted on this host")
        if user_uid is not None and layout.mode != "unified":
            # runc refuses the same: a user manager delegates cgroup v2 only.
            raise PyruncError(f"--systemd-cgroup: a rootless container needs a pure cgroup v2 host (this one is "
                              f'cgroup v1 "{layout.mode}"); run it without --systemd-cgroup')
        manager = cls(CgroupDirs({}), unit, slice_name, layout.mounts.get(V2_KEY, ""), extra, name, user_uid)
        manager.placing = True
        bus = manager.bus()
        if user_uid is None:
            roots = systemd_roots(layout)
        else:
            roots = {V2_KEY: under_mount_root(manager._user_manager_cgroup(bus), layout.roots.get(V2_KEY, "/"))}
        paths = unit_paths(layout, slice_name, unit, roots)
        manager.dirs = CgroupDirs(paths)
        manager.fs = _fs_for(manager.dirs, manager.v2_mount)
        return manager

    @classmethod
    def from_record(cls, record: dict, dirs: CgroupDirs) -> "SystemdManager":
        user_uid = record.get("userManagerUid")
        return cls(dirs, str(record.get("unit") or ""), str(record.get("slice") or ""),
                   user_uid=int(user_uid) if isinstance(user_uid, int) else None)

    def _user_manager_cgroup(self, bus) -> str:
        """The user manager's own cgroup (its ControlGroup property:
        /user.slice/user-UID.slice/user@UID.service), which its slices are
        under, as runc reads it."""
        from pyrunc.linux import sdbus

        try:
            control_group = bus.manager_property("ControlGroup")
        except sdbus.BusError as err:
            self.close()
            raise PyruncError(f"--systemd-cgroup: the systemd user manager of uid {self.user_uid} did not answer "
                              f"on {bus.socket_path}: {err.message or err.name}") from None
        if not control_group.startswith("/"):
            self.close()
            raise PyruncError(f"--systemd-cgroup: the systemd user manager of uid {self.user_uid} has no cgroup "
                              f"of its own (ControlGroup {control_group!r})")
        return control_group

    # ---- the D-Bus connection, made once

    def bus(self):
        if self._bus is None:
            from pyrunc.linux import sdbus

            started = time.perf_counter()
            self._bus = sdbus.connect() if self.user_uid is None else sdbus.connect_user(self.user_uid)
            self._time("connect to systemd (" + self._bus.socket_path + ")", started)
        return self._bus

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()
            self._bus = None

    def private_fds(self) -> tuple[int, ...]:
        return (self._bus.fileno(),) if self._bus is not None else ()

    def systemd_version(self) -> int:
        """systemd's version (asked once, only when a property needs it)."""
        if self._version is None:
            text = self.bus().manager_property("Version")
            digits = ""
            for char in text.lstrip("v"):
                if not char.isdigit():
                    break
                digits += char
            self._version = int(digits) if digits else 0
        return self._version

    # ---- record

    @property
    def clone_into(self) -> str | None:
        return None if self.placing else self.dirs.v2_path

    def to_state(self) -> dict:
        return {**super().to_state(), **self._unit_record()}

    def partial_state(self) -> dict:
        return {**super().partial_state(), **self._unit_record()}

    def _unit_record(self) -> dict:
        record = {"unit": self.unit, "slice": self.slice}
        if self.user_uid is not None:
            record["userManagerUid"] = self.user_uid
        return record

    # ---- create

    def prepare(self) -> list[str]:
        return self._not_empty_warning()

    def apply(self, pid: int, resources: dict, device_rules: list | None) -> list[str]:
        """Start the unit holding `pid` (its resources as properties), then
        make what systemd does not (v1 hierarchies it does not manage) and
        write every limit into the files, as runc does after starting it."""
        v2 = isinstance(self.fs, FsV2Manager)
        props = base_properties(self.slice, self.unit, self.description, pid, v2)
        if self.systemd_version() >= 243:
            # systemd's default for a scope is OOMPolicy=stop: one process
            # the kernel's OOM killer ends would stop the whole container
            # (runc 1.2 sets "continue" too; the engines report the OOM).
            props.append(("OOMPolicy", "s", "continue"))
        props += resource_properties(resources, v2, self.systemd_version)
        props += self.extra_properties
        self._start_unit(props)
        started = time.perf_counter()
        self.dirs.create()
        self._refuse_frozen()
        if v2:
            from pyrunc.linux.cgroups import apply

            # Controllers systemd does not manage (hugetlb, rdma, misc) are
            # handed down by pyrunc, as runc's fs2 does for its units.
            apply.enable_v2_controllers(self.v2_mount or "/sys/fs/cgroup", self.paths[V2_KEY])
        warnings = self.fs._write_resources(resources, device_rules)
        self._time("cgroup files", started)
        return warnings

    def join_self(self, v2: bool = True) -> None:
        # At create systemd put the process in the unit; exec joins itself.
        self.dirs.join_self(v2=v2 and not self.placing)

    def _start_unit(self, props: list) -> None:
        from pyrunc.linux import sdbus

        bus = self.bus()
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                job = bus.start_transient_unit(self.unit, props)
                break
            except sdbus.BusError as err:
                if err.name == "org.freedesktop.systemd1.UnitExists" and attempt == 1:
                    # A unit of that name that failed (an OOM kill) stays
                    # loaded until reset; a live one is another container's.
                    self._reset_failed(bus)
                    continue
                if err.name == "org.freedesktop.systemd1.UnitExists":
                    raise PyruncError(f'{WHERE}: the systemd unit "{self.unit}" already exists '
                                      "(another container's?)") from None
                raise PyruncError(f'--systemd-cgroup: systemd refused to start unit "{self.unit}": '
                                  f"{err.message or err.name}") from None
        self._time("StartTransientUnit call", started)
        self.started = True
        started = time.perf_counter()
        result = bus.wait_for_job(job)
        self._time("unit's start job", started)
        if result != "done":
            self._reset_failed(bus)
            raise PyruncError(f'--systemd-cgroup: systemd could not start unit "{self.unit}": job {result}')

    # ---- every verb after

    def update(self, resources: dict) -> list[str]:
        """SetUnitProperties with the limits systemd knows, then every limit
        into the files (runc's Set)."""
        v2 = isinstance(self.fs, FsV2Manager)
        props = resource_properties({k: v for k, v in resources.items() if k != "devices"}, v2,
                                    self.systemd_version)
        if props:
            from pyrunc.linux import sdbus

            try:
                self.bus().set_unit_properties(self.unit, props)
            except sdbus.BusError as err:
                raise PyruncError(f'--systemd-cgroup: systemd refused to change unit "{self.unit}": '
                                  f"{err.message or err.name}") from None
        return self.fs.update(resources)

    def destroy(self, kill: bool = False) -> list[str]:
        """Stop the unit (systemd removes its cgroup), reset it if it failed,
        remove what is left (sub-cgroups systemd leaves, the v1
        directories pyrunc made). The unit is the container's own: what is
        still in it is killed first."""
        from pyrunc.linux import sdbus

        if self.placing and not self.started:
            # A create that failed before its unit started: a unit of that
            # name (if any) is not this container's.
            return self.dirs.destroy()
        warnings = []
        if self.pids():
            self.fs.kill_all()
        try:
            bus = self.bus()
        except PyruncError as err:
            bus = None
            warnings.append(f"stop systemd unit {self.unit}: {err}")
        if bus is not None and self.unit:
            try:
                job = bus.stop_unit(self.unit)
                result = bus.wait_for_job(job)
                if result != "done":
                    warnings.append(f"stop systemd unit {self.unit}: job {result}")
            except sdbus.BusError as err:
                if err.name != "org.freedesktop.systemd1.NoSuchUnit":
                    warnings.append(f"stop systemd unit {self.unit}: {err.message or err.name}")
            self._reset_failed(bus)
        for path in self.paths.values():
            _remove_tree(path)
        return warnings + self.dirs.destroy()

    def _reset_failed(self, bus) -> None:
        from pyrunc.linux import sdbus

        try:
            bus.reset_failed_unit(self.unit)
        except sdbus.BusError:
            pass  # not loaded, or not failed: nothing to reset

    # ---- what v1 and v2 do differently: as the cgroupfs driver

    def _write_resources(self, resources: dict, device_rules: list | None) -> list[str]:
        return self.fs._write_resources(resources, device_rules)

    def _oom_file(self) -> str:
        return self.fs._oom_file()

    def _answers_to(self, key: str, controller: str) -> bool:
        return self.fs._answers_to(key, controller)

    def _leaf_to_check(self) -> str:
        return self.fs._leaf_to_check()

    def _time(self, step: str, started: float) -> None:
        self.timings.append((step, (time.perf_counter() - started) * 1000))


def _fs_for(dirs: CgroupDirs, v2_mount: str):
    """The cgroupfs manager over the unit's directories."""
    return (FsV2Manager if dirs.paths and all(k == V2_KEY for k in dirs.paths) else FsV1Manager)(dirs, v2_mount)


def _remove_tree(path: str) -> None:
    """rmdir a cgroup directory and its sub-cgroups (deepest first); what
    is busy or gone is left to the caller's report."""
    if not os.path.isdir(path):
        return
    for directory in reversed(subtree(path)):
        try:
            os.rmdir(directory)
        except OSError:
            pass
