"""The container record: state.json typed, one attribute per key.

The file's format does not change with it (engines and `delete --force`
read it): from_state() and to_state() round-trip a document exactly, its
keys in their order; a key the document lacks is the attribute's default
and is written only once it is set to something else; a new record
writes what a finished create writes. A leaf module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# state.json key → attribute, in the order create writes them.
KEYS = (
    ("ociVersion", "oci_version"), ("id", "id"), ("pid", "pid"), ("bundle", "bundle"), ("rootfs", "rootfs"),
    ("created", "created"), ("annotations", "annotations"), ("startTime", "start_time"), ("cgroups", "cgroups"),
    ("resources", "resources"), ("sharedPidNamespace", "shared_pid_namespace"), ("hooks", "hooks"),
    ("process", "process"), ("seccomp", "seccomp"), ("freezerState", "freezer_state"), ("creating", "creating"),
)
_ATTRIBUTE = dict(KEYS)
# What a finished create writes (seccomp too when null).
CREATE_KEYS = tuple(key for key, _ in KEYS if key not in ("freezerState", "creating"))


@dataclass
class ContainerRecord:
    id: str
    oci_version: str = ""
    pid: int = 0  # the init's pid on the host (0: none yet, or gone)
    bundle: str = ""
    rootfs: str = ""
    created: str = ""  # RFC 3339, set once the init exists
    annotations: dict = field(default_factory=dict)
    start_time: int = -1  # the init's start time (/proc/PID/stat), against pid reuse
    cgroups: dict = field(default_factory=dict)  # the cgroup manager's state (manager.from_state)
    resources: dict = field(default_factory=dict)  # linux.resources as last applied
    shared_pid_namespace: bool = True  # no pid namespace of its own: delete kills what is left
    hooks: dict = field(default_factory=dict)  # the hooks start and delete run
    process: dict = field(default_factory=dict)  # config.json's process, for exec
    seccomp: dict | None = None  # the compiled filter's flags and listener (seccomp.bpf beside)
    freezer_state: str = ""
    creating: bool = False  # a partial state: its create has not finished
    # The document's keys in their order (what to_state writes back).
    keys: tuple = field(default=CREATE_KEYS, compare=False, repr=False)

    @classmethod
    def from_state(cls, doc: dict) -> "ContainerRecord":
        """A record of a state.json document the store has checked
        (store.state_problem): every key is one of KEYS."""
        record = cls(**{_ATTRIBUTE[key]: value for key, value in doc.items()})
        record.keys = tuple(doc)
        return record

    def to_state(self) -> dict:
        """The state.json document: the keys it was loaded with, then any
        other whose value is no longer the default."""
        defaults = _DEFAULTS
        doc = {key: getattr(self, _ATTRIBUTE[key]) for key in self.keys}
        for key, attribute in KEYS:
            if key not in doc and getattr(self, attribute) != defaults[attribute]:
                doc[key] = getattr(self, attribute)
        return doc


_DEFAULTS = {attribute: getattr(ContainerRecord(id=""), attribute) for _, attribute in KEYS if attribute != "id"}
_DEFAULTS["id"] = None  # always written
