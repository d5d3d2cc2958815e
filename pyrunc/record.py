"""The container record: state.json typed, one attribute per key.

The file's format does not change with it (engines and `delete --force`
read it): from_state() and to_state() round-trip a document exactly, its
keys in their order; a key the document lacks is the attribute's default
and is written only once it is set to something else; a new record
writes what a finished create writes. A leaf module.
"""

from __future__ import annotations

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
# What create saves before it makes anything (its partial state).
PARTIAL_KEYS = ("ociVersion", "id", "pid", "bundle", "rootfs", "created", "annotations", "cgroups", "creating")


class ContainerRecord:
    """One container's state.json. A plain class, not a dataclass: the
    dataclasses module costs create ~10 ms to import."""

    __slots__ = (*(attribute for _, attribute in KEYS), "keys")

    # attribute → its value when the document lacks the key (a factory for the mutable ones)
    DEFAULTS = {
        "oci_version": "",
        "pid": 0,  # the init's pid on the host (0: none yet, or gone)
        "bundle": "",
        "rootfs": "",
        "created": "",  # RFC 3339, set once the init exists
        "annotations": dict,
        "start_time": -1,  # the init's start time (/proc/PID/stat), against pid reuse
        "cgroups": dict,  # the cgroup manager's state (manager.from_state)
        "resources": dict,  # linux.resources as last applied
        "shared_pid_namespace": True,  # no pid namespace of its own: delete kills what is left
        "hooks": dict,  # the hooks start and delete run
        "process": dict,  # config.json's process, for exec
        "seccomp": None,  # the compiled filter's flags and listener (seccomp.bpf beside)
        "freezer_state": "",
        "creating": False,  # a partial state: its create has not finished
    }

    def __init__(self, id: str, keys: tuple = CREATE_KEYS, **values):
        unknown = set(values) - set(self.DEFAULTS)
        if unknown:
            raise TypeError(f"ContainerRecord: unknown fields {sorted(unknown)}")
        self.id = id
        # The document's keys in their order (what to_state writes back).
        self.keys = keys
        for attribute, default in self.DEFAULTS.items():
            setattr(self, attribute, values[attribute] if attribute in values else
                    default() if default is dict else default)

    @classmethod
    def from_state(cls, doc: dict) -> "ContainerRecord":
        """A record of a state.json document the store has checked
        (store.state_problem): every key is one of KEYS."""
        values = {_ATTRIBUTE[key]: value for key, value in doc.items() if key != "id"}
        return cls(doc["id"], keys=tuple(doc), **values)

    def to_state(self) -> dict:
        """The state.json document: the keys it was loaded with, then any
        other whose value is no longer the default."""
        doc = {key: getattr(self, _ATTRIBUTE[key]) for key in self.keys}
        for key, attribute in KEYS:
            if key not in doc and key != "id":
                default = self.DEFAULTS[attribute]
                value = getattr(self, attribute)
                if value != (default() if default is dict else default):
                    doc[key] = value
        return doc

    def __eq__(self, other) -> bool:
        if not isinstance(other, ContainerRecord):
            return NotImplemented
        return all(getattr(self, attribute) == getattr(other, attribute) for _, attribute in KEYS)

    def __repr__(self) -> str:
        return f"ContainerRecord(id={self.id!r}, pid={self.pid}, creating={self.creating})"
