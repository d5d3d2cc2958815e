"""The JSON schemas in oci-schemas/ and the messages pyrunc.spec.schema.validate() makes of them.

Everything read here lives in the repository (tests/unit/configs/ holds copies of
real engine configs), so the tests need neither root nor anything outside the tree.
"""

from __future__ import annotations

import copy
import json
import pathlib

import jsonschema
import pytest

from pyrunc.spec.schema import STATE_SCHEMA, schema_dir, validate

CONFIGS = pathlib.Path(__file__).parent / "configs"
GOOD = CONFIGS / "good"
SCHEMAS = pathlib.Path(schema_dir())
REQUIRED_SCHEMAS = {"config-schema.json", "config-linux.json", "defs.json", "defs-linux.json", "state-schema.json"}
# The loader registers every *.json in the directory, so every one is checked.
SCHEMA_FILES = sorted(p.name for p in SCHEMAS.glob("*.json"))

# Engines' own configs, copied from a recorded run (podman 4.3, docker 20.10,
# containerd 1.6 ctr and CRI), plus `runc spec` and a hand-written maximal one.
EXPECTED_GOOD = {
    "podman-config.json",
    "podman-config-tty.json",
    "podman-log-0015-user-config.json",
    "podman-log-0046-tty-config.json",
    "podman-log-0056-hostnet-config.json",
    "docker-config.json",
    "docker-config-tty.json",
    "containerd-ctr-config.json",
    "containerd-cri-container-config.json",
    "containerd-cri-sandbox-config.json",
    "runc-spec.json",
    "maximal.json",
}

VERSION_MESSAGE = "must be a runtime-spec version from 1.0.0 to 1.3.x, such as 1.0.2-dev"


def _load(path: pathlib.Path):
    return json.loads(path.read_text())


def _schema(name: str) -> dict:
    return _load(SCHEMAS / name)


@pytest.fixture
def base() -> dict:
    """`runc spec`'s config: the doc every bad case below mutates."""
    return _load(GOOD / "runc-spec.json")


# --- helpers to describe a mutation as data -------------------------------------------


def _walk(doc, path: str):
    """'linux.namespaces.0' → (the namespaces list, 0)."""
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node, int(last) if isinstance(node, list) else last


def put(path: str, value):
    def mutate(doc):
        node, key = _walk(doc, path)
        node[key] = copy.deepcopy(value)

    return mutate


def drop(path: str):
    def mutate(doc):
        node, key = _walk(doc, path)
        del node[key]

    return mutate


def append(path: str, value):
    def mutate(doc):
        node, key = _walk(doc, path)
        node[key].append(copy.deepcopy(value))

    return mutate


def _mutated(doc: dict, *mutations) -> dict:
    doc = copy.deepcopy(doc)
    for mutate in mutations:
        mutate(doc)
    return doc


# --- the schema files themselves ------------------------------------------------------


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schema_file_check_schema_passes(name):
    schema = _schema(name)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)


def test_schema_dir_has_config_and_state_schemas():
    assert REQUIRED_SCHEMAS <= set(SCHEMA_FILES)


def _nodes(node):
    """Every object inside a schema document."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schema_file_never_closes_objects_accepts_unknown(name):
    # The spec: runtimes MUST ignore unknown properties.
    for node in _nodes(_schema(name)):
        assert node.get("additionalProperties", True) is not False
        assert node.get("unevaluatedProperties", True) is not False


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schema_file_ids_absent_loader_names_files(name):
    for node in _nodes(_schema(name)):
        assert "$id" not in node


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schema_file_every_ref_resolves(name):
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    registry = Registry().with_resources(
        (file, Resource.from_contents(_schema(file), default_specification=DRAFT7)) for file in SCHEMA_FILES
    )
    resolver = registry.resolver(base_uri=name)
    refs = [node["$ref"] for node in _nodes(_schema(name)) if isinstance(node.get("$ref"), str)]
    for ref in refs:
        assert resolver.lookup(ref).contents is not None, ref


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schema_file_ref_has_no_ignored_siblings(name):
    # Draft-07 ignores every keyword beside $ref; only notes may sit there.
    for node in _nodes(_schema(name)):
        if "$ref" in node:
            assert set(node) <= {"$ref", "description", "title", "$comment"}, node


# --- good configs ---------------------------------------------------------------------


def test_good_configs_directory_has_every_engine_sample():
    assert {p.name for p in GOOD.glob("*.json")} == EXPECTED_GOOD


@pytest.mark.parametrize("path", sorted(GOOD.glob("*.json")), ids=lambda p: p.name)
def test_good_config_validates_no_problems(path):
    assert validate(_load(path)) == []


# Fields that exist only for Windows; a Linux config has no use for them.
_NOT_FOR_LINUX = {"process.commandLine", "process.user.username"}


def _resolve(file: str, ref: str):
    target, _, pointer = ref.partition("#")
    target = target or file
    node = _schema(target)
    for part in filter(None, pointer.split("/")):
        node = node[part]
    return target, node


def _shape(file: str, schema: dict):
    """(properties, items, values) a schema node allows, following $ref and allOf;
    each sub-schema comes with the file it lives in."""
    while "$ref" in schema:
        file, schema = _resolve(file, schema["$ref"])
    properties = {name: (file, sub) for name, sub in schema.get("properties", {}).items()}
    items = (file, schema["items"]) if isinstance(schema.get("items"), dict) else None
    values = (file, schema["additionalProperties"]) if isinstance(schema.get("additionalProperties"), dict) else None
    for part in schema.get("allOf", []):
        more, more_items, more_values = _shape(file, part)
        properties.update(more)
        items, values = items or more_items, values or more_values
    return properties, items, values


def _elements(doc, items, values):
    if items and isinstance(doc, list):
        return doc, items, "[]"
    if values and isinstance(doc, dict):
        return list(doc.values()), values, ".*"
    return None, None, None


def _uncovered(file: str, schema: dict, doc, path: str = "") -> set:
    """Schema properties under `path` that `doc` never uses. Array items and map
    values count as covered when any one element uses the property."""
    properties, items, values = _shape(file, schema)
    missing = set()
    for name, (sub_file, sub) in properties.items():
        where = f"{path}.{name}" if path else name
        if isinstance(doc, dict) and name in doc:
            missing |= _uncovered(sub_file, sub, doc[name], where)
        else:
            missing.add(where)
    elements, sub, suffix = _elements(doc, items, values)
    if elements == []:
        missing |= _uncovered(*sub, None, path + suffix)  # an empty list covers no member
    elif elements:
        missing |= set.intersection(*(_uncovered(*sub, element, path + suffix) for element in elements))
    return missing


def _unknown(file: str, schema: dict, doc, path: str = "") -> set:
    """Members of `doc` the schema does not describe (which it would accept silently)."""
    properties, items, values = _shape(file, schema)
    unknown = set()
    if isinstance(doc, dict) and properties:
        for name, value in doc.items():
            where = f"{path}.{name}" if path else name
            if name in properties:
                unknown |= _unknown(*properties[name], value, where)
            elif not values:
                unknown.add(where)
    elements, sub, suffix = _elements(doc, items, values)
    for element in elements or ():
        unknown |= _unknown(*sub, element, path + suffix)
    return unknown


def test_maximal_config_uses_every_schema_field():
    doc = _load(GOOD / "maximal.json")
    assert _uncovered("config-schema.json", _schema("config-schema.json"), doc) == _NOT_FOR_LINUX


def test_maximal_config_only_fields_schema_knows():
    # A typo in maximal.json would otherwise pass as an ignored unknown property.
    doc = _load(GOOD / "maximal.json")
    assert _unknown("config-schema.json", _schema("config-schema.json"), doc) == set()


def test_maximal_config_sensible_namespaces_match_fields():
    doc = _load(GOOD / "maximal.json")
    namespaces = {ns["type"] for ns in doc["linux"]["namespaces"]}
    # hostname/domainname need uts, mappings need user, offsets need time,
    # netDevices and net.* sysctls need network, rootfsPropagation needs mount.
    assert {"uts", "user", "time", "network", "mount", "cgroup", "ipc"} <= namespaces
    # Only the network namespace is joined (made beforehand, as podman does);
    # the ones whose settings the config carries are new.
    joined = {ns["type"] for ns in doc["linux"]["namespaces"] if "path" in ns}
    assert joined == {"network"}
    mapping = doc["linux"]["uidMappings"][0]
    assert mapping["containerID"] <= doc["process"]["user"]["uid"] < mapping["containerID"] + mapping["size"]


# --- ociVersion -----------------------------------------------------------------------

ACCEPTED_VERSIONS = [
    "1.0.0",
    "1.0.1",
    "1.0.2",
    "1.0.2-dev",
    "1.1.0-rc.1",
    "1.1.0",
    "1.2.0",
    "1.2.1",
    "1.2.12",
    "1.3.0",
    "1.0.0-rc5",
    "1.0.0+build.1",
    "1.1.0-rc.3+git.1a2b-3",
]

REJECTED_VERSIONS = [
    "2.0.0",
    "1.4.0",
    "0.9.0",
    "1.0",
    "1",
    "v1.0.0",
    "1.0.0-",
    "01.0.0",
    "1.02.0",
    "",
    "abc",
    "1.0.00",
    "1.0.0+",
    "1.0.0-rc..1",
    "1.0.0-01",
    " 1.0.0",
]


@pytest.mark.parametrize("version", ACCEPTED_VERSIONS)
def test_oci_version_supported_accepted(base, version):
    assert validate(_mutated(base, put("ociVersion", version))) == []


@pytest.mark.parametrize("version", REJECTED_VERSIONS)
def test_oci_version_malformed_or_out_of_range_rejected(base, version):
    assert validate(_mutated(base, put("ociVersion", version))) == [
        ("ociVersion", f"{VERSION_MESSAGE}, not {json.dumps(version)}")
    ]


# --- bad configs: the first problem, exactly ------------------------------------------

SECCOMP = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
ARG = {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}
NS_ENUM = '"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"'
ACTIONS = (
    '"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", '
    '"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"'
)
OPERATORS = '"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"'
ABSOLUTE = "must be an absolute path (starting with /)"

BAD = [
    # top level
    ("ociVersion-missing", [drop("ociVersion")], ("ociVersion", "is required")),
    ("ociVersion-number", [put("ociVersion", 1.0)], ("ociVersion", "must be a string, not a number")),
    ("root-missing", [drop("root")], ("root", "is required")),
    ("root-path-missing", [drop("root.path")], ("root.path", "is required")),
    ("root-readonly-string", [put("root.readonly", "true")], ("root.readonly", "must be a boolean (true or false), not a string")),
    ("hostname-number", [put("hostname", 42)], ("hostname", "must be a string, not an integer")),
    ("annotations-value-number", [put("annotations", {"owner": 7})], ("annotations.owner", "must be a string, not an integer")),
    ("annotations-array", [put("annotations", ["a=b"])], ("annotations", "must be an object, not an array")),
    # process
    ("process-array", [put("process", ["sh"])], ("process", "must be an object, not an array")),
    ("args-empty", [put("process.args", [])], ("process.args", "must not be empty")),
    ("args-string", [put("process.args", "sh -c true")], ("process.args", "must be an array, not a string")),
    ("args-missing", [drop("process.args")], ("process.args", "is required")),
    ("args-item-number", [put("process.args", ["sleep", 10])], ("process.args[1]", "must be a string, not an integer")),
    ("cwd-missing", [drop("process.cwd")], ("process.cwd", "is required")),
    ("cwd-relative", [put("process.cwd", "tmp")], ("process.cwd", f'{ABSOLUTE}, not "tmp"')),
    ("env-no-equals", [append("process.env", "DEBUG")], ("process.env[2]", 'must have the form NAME=value, not "DEBUG"')),
    ("env-empty-name", [append("process.env", "=x")], ("process.env[2]", 'must have the form NAME=value, not "=x"')),
    ("env-string", [put("process.env", "A=b")], ("process.env", "must be an array, not a string")),
    ("terminal-string", [put("process.terminal", "yes")], ("process.terminal", "must be a boolean (true or false), not a string")),
    ("consoleSize-width-missing", [put("process.consoleSize", {"height": 25})], ("process.consoleSize.width", "is required")),
    ("consoleSize-huge", [put("process.consoleSize", {"height": 25, "width": 70000})], ("process.consoleSize.width", "must be at most 65535, not 70000")),
    ("uid-negative", [put("process.user.uid", -1)], ("process.user.uid", "must be at least 0, not -1")),
    ("uid-over-uint32", [put("process.user.uid", 4294967296)], ("process.user.uid", "must be at most 4294967295, not 4294967296")),
    ("uid-string", [put("process.user.uid", "root")], ("process.user.uid", "must be an integer, not a string")),
    ("gid-missing", [drop("process.user.gid")], ("process.user.gid", "is required")),
    ("user-missing-uid", [put("process.user", {"gid": 0})], ("process.user.uid", "is required")),
    ("umask-negative", [put("process.user.umask", -18)], ("process.user.umask", "must be at least 0, not -18")),
    ("additionalGids-string", [put("process.user.additionalGids", [5, "wheel"])], ("process.user.additionalGids[1]", "must be an integer, not a string")),
    ("rlimit-hard-string", [put("process.rlimits.0.hard", "1024")], ("process.rlimits[0].hard", "must be an integer, not a string")),
    ("rlimit-soft-negative", [put("process.rlimits.0.soft", -1)], ("process.rlimits[0].soft", "must be at least 0, not -1")),
    ("rlimit-type-missing", [drop("process.rlimits.0.type")], ("process.rlimits[0].type", "is required")),
    ("rlimit-over-uint64", [put("process.rlimits.0.hard", 2**64)], ("process.rlimits[0].hard", f"must be at most {2**64 - 1}, not {2**64}")),
    ("capabilities-set-string", [put("process.capabilities.bounding", "CAP_KILL")], ("process.capabilities.bounding", "must be an array, not a string")),
    ("noNewPrivileges-number", [put("process.noNewPrivileges", 1)], ("process.noNewPrivileges", "must be a boolean (true or false), not an integer")),
    ("oomScoreAdj-too-high", [put("process.oomScoreAdj", 5000)], ("process.oomScoreAdj", "must be at most 1000, not 5000")),
    ("oomScoreAdj-too-low", [put("process.oomScoreAdj", -1001)], ("process.oomScoreAdj", "must be at least -1000, not -1001")),
    (
        "scheduler-policy-unknown",
        [put("process.scheduler", {"policy": "SCHED_FAST"})],
        (
            "process.scheduler.policy",
            'must be one of "SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", '
            '"SCHED_IDLE", "SCHED_DEADLINE"; got "SCHED_FAST"',
        ),
    ),
    ("scheduler-policy-missing", [put("process.scheduler", {"nice": 5})], ("process.scheduler.policy", "is required")),
    ("ioPriority-level-8", [put("process.ioPriority", {"class": "IOPRIO_CLASS_BE", "priority": 8})], ("process.ioPriority.priority", "must be at most 7, not 8")),
    (
        "execCPUAffinity-bad-list",
        [put("process.execCPUAffinity", {"final": "0-3;7"})],
        ("process.execCPUAffinity.final", 'must be a list of numbers and ranges such as "0-3,7", not "0-3;7"'),
    ),
    # mounts
    ("mount-destination-missing", [drop("mounts.0.destination")], ("mounts[0].destination", "is required")),
    ("mount-options-string", [put("mounts.1.options", "nosuid,noexec")], ("mounts[1].options", "must be an array, not a string")),
    ("mounts-object", [put("mounts", {"destination": "/proc"})], ("mounts", "must be an array, not an object")),
    (
        "mount-uidMappings-without-gidMappings",
        [put("mounts.0.uidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}])],
        ("mounts[0].gidMappings", "is required"),
    ),
    # hooks
    ("hook-path-missing", [put("hooks", {"prestart": [{"args": ["setup"]}]})], ("hooks.prestart[0].path", "is required")),
    ("hook-path-relative", [put("hooks", {"poststop": [{"path": "bin/cleanup"}]})], ("hooks.poststop[0].path", f'{ABSOLUTE}, not "bin/cleanup"')),
    ("hook-timeout-zero", [put("hooks", {"poststart": [{"path": "/bin/true", "timeout": 0}]})], ("hooks.poststart[0].timeout", "must be greater than 0, not 0")),
    ("hook-kind-object", [put("hooks", {"createRuntime": {"path": "/bin/true"}})], ("hooks.createRuntime", "must be an array, not an object")),
    ("hooks-array", [put("hooks", [])], ("hooks", "must be an object, not an array")),
    # linux: namespaces, mappings, devices
    ("linux-array", [put("linux", [])], ("linux", "must be an object, not an array")),
    ("namespace-type-unknown", [put("linux.namespaces.0.type", "pidns")], ("linux.namespaces[0].type", f'must be one of {NS_ENUM}; got "pidns"')),
    ("namespace-type-number", [put("linux.namespaces.1.type", 5)], ("linux.namespaces[1].type", f"must be one of {NS_ENUM}; got 5")),
    ("namespace-type-missing", [put("linux.namespaces.0", {"path": "/proc/1/ns/pid"})], ("linux.namespaces[0].type", "is required")),
    ("namespace-path-relative", [put("linux.namespaces.1.path", "run/netns/a")], ("linux.namespaces[1].path", f'{ABSOLUTE}, not "run/netns/a"')),
    ("uidMapping-size-missing", [put("linux.uidMappings", [{"containerID": 0, "hostID": 1000}])], ("linux.uidMappings[0].size", "is required")),
    ("gidMapping-hostID-negative", [put("linux.gidMappings", [{"containerID": 0, "hostID": -1, "size": 1}])], ("linux.gidMappings[0].hostID", "must be at least 0, not -1")),
    ("device-type-unknown", [put("linux.devices", [{"type": "x", "path": "/dev/x", "major": 1, "minor": 3}])], ("linux.devices[0].type", 'must be one of "c", "b", "u", "p"; got "x"')),
    ("device-char-without-major", [put("linux.devices", [{"type": "c", "path": "/dev/x", "minor": 3}])], ("linux.devices[0].major", "is required")),
    ("device-path-missing", [put("linux.devices", [{"type": "p"}])], ("linux.devices[0].path", "is required")),
    ("device-fileMode-string", [put("linux.devices", [{"type": "p", "path": "/run/fifo", "fileMode": "0644"}])], ("linux.devices[0].fileMode", "must be an integer, not a string")),
    (
        "timeOffsets-unknown-clock",
        [put("linux.timeOffsets", {"realtime": {"secs": 10}})],
        ("linux.timeOffsets", 'keys must be "monotonic" or "boottime", not "realtime"'),
    ),
    # linux: resources
    ("cgroup-device-allow-missing", [drop("linux.resources.devices.0.allow")], ("linux.resources.devices[0].allow", "is required")),
    ("cgroup-device-access-bad", [put("linux.resources.devices.0.access", "rwx")], ("linux.resources.devices[0].access", 'must be made of the letters r, w and m, such as "rwm", not "rwx"')),
    ("cgroup-device-type-bad", [put("linux.resources.devices.0.type", "p")], ("linux.resources.devices[0].type", 'must be one of "a", "c", "b"; got "p"')),
    ("memory-limit-string", [put("linux.resources.memory", {"limit": "64M"})], ("linux.resources.memory.limit", "must be an integer, not a string")),
    ("memory-swappiness-150", [put("linux.resources.memory", {"swappiness": 150})], ("linux.resources.memory.swappiness", "must be from 0 to 100, not 150")),
    ("cpu-cpus-bad", [put("linux.resources.cpu", {"cpus": "0,,1"})], ("linux.resources.cpu.cpus", 'must be a list of numbers and ranges such as "0-3,7", not "0,,1"')),
    ("cpu-shares-negative", [put("linux.resources.cpu", {"shares": -2})], ("linux.resources.cpu.shares", "must be at least 0, not -2")),
    ("pids-limit-missing", [put("linux.resources.pids", {})], ("linux.resources.pids.limit", "is required")),
    ("blockIO-weight-too-big", [put("linux.resources.blockIO", {"weight": 70000})], ("linux.resources.blockIO.weight", "must be at most 65535, not 70000")),
    ("throttle-rate-missing", [put("linux.resources.blockIO", {"throttleReadBpsDevice": [{"major": 8, "minor": 0}]})], ("linux.resources.blockIO.throttleReadBpsDevice[0].rate", "is required")),
    ("hugepage-size-bad", [put("linux.resources.hugepageLimits", [{"pageSize": "2M", "limit": 0}])], ("linux.resources.hugepageLimits[0].pageSize", 'must be a page size such as "2MB" or "1GB", not "2M"')),
    ("network-priority-name-missing", [put("linux.resources.network", {"priorities": [{"priority": 1}]})], ("linux.resources.network.priorities[0].name", "is required")),
    ("unified-value-number", [put("linux.resources.unified", {"pids": 5})], ("linux.resources.unified.pids", "must be a string, not an integer")),
    # linux: seccomp
    ("seccomp-defaultAction-missing", [put("linux.seccomp", {"syscalls": []})], ("linux.seccomp.defaultAction", "is required")),
    ("seccomp-defaultAction-unknown", [put("linux.seccomp", {"defaultAction": "SCMP_ACT_DENY"})], ("linux.seccomp.defaultAction", f'must be one of {ACTIONS}; got "SCMP_ACT_DENY"')),
    ("seccomp-action-unknown", [put("linux.seccomp", SECCOMP), put("linux.seccomp.syscalls.0.action", "ALLOW")], ("linux.seccomp.syscalls[0].action", f'must be one of {ACTIONS}; got "ALLOW"')),
    ("seccomp-names-empty", [put("linux.seccomp", SECCOMP), put("linux.seccomp.syscalls.0.names", [])], ("linux.seccomp.syscalls[0].names", "must not be empty")),
    ("seccomp-names-missing", [put("linux.seccomp", SECCOMP), drop("linux.seccomp.syscalls.0.names")], ("linux.seccomp.syscalls[0].names", "is required")),
    ("seccomp-arg-op-unknown", [put("linux.seccomp", SECCOMP), put("linux.seccomp.syscalls.0.args", [dict(ARG, op="EQ")])], ("linux.seccomp.syscalls[0].args[0].op", f'must be one of {OPERATORS}; got "EQ"')),
    ("seccomp-arg-index-6", [put("linux.seccomp", SECCOMP), put("linux.seccomp.syscalls.0.args", [dict(ARG, index=6)])], ("linux.seccomp.syscalls[0].args[0].index", "must be at most 5, not 6")),
    ("seccomp-arg-value-missing", [put("linux.seccomp", SECCOMP), put("linux.seccomp.syscalls.0.args", [{"index": 0, "op": "SCMP_CMP_EQ"}])], ("linux.seccomp.syscalls[0].args[0].value", "is required")),
    ("seccomp-errnoRet-negative", [put("linux.seccomp", SECCOMP), put("linux.seccomp.syscalls.0.errnoRet", -1)], ("linux.seccomp.syscalls[0].errnoRet", "must be at least 0, not -1")),
    ("seccomp-arch-lowercase", [put("linux.seccomp", dict(SECCOMP, architectures=["SCMP_ARCH_X86_64", "x86_64"]))], ("linux.seccomp.architectures[1]", 'must be one of "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB"; got "x86_64"')),
    ("seccomp-flag-unknown", [put("linux.seccomp", dict(SECCOMP, flags=["TSYNC"]))], ("linux.seccomp.flags[0]", 'must be one of "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"; got "TSYNC"')),
    # linux: the rest
    (
        "rootfsPropagation-unknown",
        [put("linux.rootfsPropagation", "bogus")],
        ("linux.rootfsPropagation", 'must be one of "private", "shared", "slave", "unbindable", "rprivate", "rshared", "rslave", "runbindable"; got "bogus"'),
    ),
    ("maskedPaths-relative", [append("linux.maskedPaths", "proc/kcore")], ("linux.maskedPaths[10]", f'{ABSOLUTE}, not "proc/kcore"')),
    ("readonlyPaths-string", [put("linux.readonlyPaths", "/proc/sys")], ("linux.readonlyPaths", "must be an array, not a string")),
    ("personality-domain-unknown", [put("linux.personality", {"domain": "LINUX64"})], ("linux.personality.domain", 'must be one of "LINUX", "LINUX32"; got "LINUX64"')),
    (
        "memoryPolicy-mode-unknown",
        [put("linux.memoryPolicy", {"mode": "MPOL_FAST"})],
        ("linux.memoryPolicy.mode", 'must be one of "MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL"; got "MPOL_FAST"'),
    ),
    ("intelRdt-memBwSchema-bad", [put("linux.intelRdt", {"memBwSchema": "L3:0=ff"})], ("linux.intelRdt.memBwSchema", 'must be one line starting with "MB:", not "L3:0=ff"')),
    ("netDevice-name-number", [put("linux.netDevices", {"eth1": {"name": 0}})], ("linux.netDevices.eth1.name", "must be a string, not an integer")),
]


@pytest.mark.parametrize(("mutations", "expected"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_config_mutation_invalid_reports_field_first(base, mutations, expected):
    problems = validate(_mutated(base, *mutations))
    assert problems, "expected a problem"
    assert problems[0] == expected


def test_bad_cases_table_large_enough():
    assert len(BAD) >= 25
    assert len({case[0] for case in BAD}) == len(BAD)


def test_config_several_problems_all_reported(base):
    doc = _mutated(base, drop("ociVersion"), put("process.args", []), put("linux.namespaces.0.type", "pidns"))
    assert set(validate(doc)) == {
        ("ociVersion", "is required"),
        ("process.args", "must not be empty"),
        ("linux.namespaces[0].type", f'must be one of {NS_ENUM}; got "pidns"'),
    }


def test_config_not_an_object_rejected():
    assert validate([]) == [("", "must be an object, not an array")]


# --- unknown properties and annotations -----------------------------------------------

UNKNOWN = [
    ("top-level", put("vendorExtension", {"anything": [1, 2]})),
    ("other-platforms", put("windows", {"layerFolders": ["C:\\layers"]})),
    ("root", put("root.compression", "zstd")),
    ("process", put("process.futureField", True)),
    ("user", put("process.user.sid", "S-1-5-18")),
    ("capabilities", put("process.capabilities.extra", ["CAP_FUTURE"])),
    ("rlimit", put("process.rlimits.0.comment", "files")),
    ("mount", put("mounts.0.recursiveReadOnly", "enabled")),
    ("hooks-unknown-kind", put("hooks", {"onReboot": [{"whatever": 1}]})),
    ("hook", put("hooks", {"poststop": [{"path": "/bin/true", "retries": 3}]})),
    ("linux", put("linux.landlock", {"ruleset": {}})),
    ("namespace", put("linux.namespaces.0.flags", ["CLONE_FUTURE"])),
    ("resources", put("linux.resources.misc", {"sev": 1})),
    ("cgroup-device-rule", put("linux.resources.devices.0.note", "deny all")),
    ("memory", put("linux.resources.memory", {"limit": 1, "newKnob": "x"})),
    ("seccomp", put("linux.seccomp", dict(SECCOMP, defaultErrno="EPERM", comment="x"))),
]


@pytest.mark.parametrize("mutation", [case[1] for case in UNKNOWN], ids=[case[0] for case in UNKNOWN])
def test_config_unknown_property_accepted(base, mutation):
    assert validate(_mutated(base, mutation)) == []


def test_config_unknown_annotations_accepted(base):
    doc = _mutated(
        base,
        put(
            "annotations",
            {
                "com.example.gpu-cores": "2",
                "org.opencontainers.image.stopSignal": "SIGTERM",
                "io.kubernetes.cri.sandbox-id": "31d02c24442f",
                "empty": "",
                "no dots at all": "fine",
            },
        ),
    )
    assert validate(doc) == []


def test_config_windows_only_fields_ignored_on_linux(base):
    doc = _mutated(base, put("process.commandLine", "cmd /c dir"), put("process.user.username", "ContainerUser"))
    assert validate(doc) == []


def test_config_runc_accepts_recursive_rootfs_propagation(base):
    # containerd's CRI plugin writes rslave/rshared for host-path mount propagation.
    for value in ("rslave", "rshared", "rprivate", "runbindable", "private", "shared", "slave", "unbindable"):
        assert validate(_mutated(base, put("linux.rootfsPropagation", value))) == []


def test_config_swappiness_unset_as_uint64_accepted(base):
    # -1 (unset) cast to uint64, as Go engines have sent it; runc treats it as unset.
    doc = _mutated(base, put("linux.resources.memory", {"swappiness": 2**64 - 1}))
    assert validate(doc) == []


def test_config_fifo_device_without_numbers_accepted(base):
    doc = _mutated(base, put("linux.devices", [{"type": "p", "path": "/run/app.fifo"}]))
    assert validate(doc) == []


# --- state ----------------------------------------------------------------------------

RUNC_STATE = {
    "ociVersion": "1.0.2-dev",
    "id": "c1",
    "pid": 3347,
    "status": "created",
    "bundle": "/tmp/b",
    "rootfs": "/tmp/b/rootfs",
    "created": "2026-11-27T20:50:09.887890977Z",
    "owner": "",
}


def _state(**changes) -> dict:
    doc = dict(RUNC_STATE, **changes)
    return {key: value for key, value in doc.items() if value is not None}


def test_state_runc_created_valid():
    assert validate(RUNC_STATE, schema=STATE_SCHEMA) == []


def test_state_stopped_pid_zero_valid():
    assert validate(_state(status="stopped", pid=0), schema=STATE_SCHEMA) == []


@pytest.mark.parametrize("status", ["creating", "created", "running", "stopped", "paused"])
def test_state_every_status_valid(status):
    assert validate(_state(status=status), schema=STATE_SCHEMA) == []


def test_state_stopped_without_pid_valid():
    assert validate(_state(status="stopped", pid=None), schema=STATE_SCHEMA) == []


def test_state_annotations_and_unknown_fields_valid():
    doc = _state(annotations={"com.example.key": "value"}, runtimeSpecific={"anything": True})
    assert validate(doc, schema=STATE_SCHEMA) == []


BAD_STATES = [
    ("status-bogus", _state(status="bogus"), ("status", 'must be one of "creating", "created", "running", "stopped", "paused"; got "bogus"')),
    ("created-without-pid", _state(pid=None), ("pid", "is required")),
    ("running-without-pid", _state(status="running", pid=None), ("pid", "is required")),
    ("running-pid-zero", _state(status="running", pid=0), ("pid", "must be at least 1, not 0")),
    ("pid-negative", _state(status="stopped", pid=-1), ("pid", "must be at least 0, not -1")),
    ("bundle-relative", _state(bundle="tmp/b"), ("bundle", f'{ABSOLUTE}, not "tmp/b"')),
    ("bundle-missing", _state(bundle=None), ("bundle", "is required")),
    ("id-missing", _state(id=None), ("id", "is required")),
    ("id-empty", _state(id=""), ("id", "must not be empty")),
    ("status-missing", _state(status=None), ("status", "is required")),
    ("ociVersion-missing", _state(ociVersion=None), ("ociVersion", "is required")),
    ("annotation-number", _state(annotations={"a": 1}), ("annotations.a", "must be a string, not an integer")),
]


@pytest.mark.parametrize(("doc", "expected"), [case[1:] for case in BAD_STATES], ids=[case[0] for case in BAD_STATES])
def test_state_invalid_reports_field(doc, expected):
    assert validate(doc, schema=STATE_SCHEMA)[0] == expected
