"""`check` (pyrunc only): validate a bundle, list every problem, create nothing.
Imports: errors, log, jsonlite, ops.common, spec.*, linux.{capabilities, cgroups, lsm, namespaces}.

Every problem in one run: the schema's, then the semantic checks (run on a
schema-invalid document too; a rule that meets a field of the wrong type is
skipped, since the schema already names that field), then what `create`
would refuse on this host: the root filesystem, bind-mount sources,
namespace paths, hook executables, cgroupsPath, LSM labels. Each with its
JSON path. Exit 1 if there is any; `--format json` prints them for tools.
"""

from __future__ import annotations

import stat

from pyrunc import oslite as os
from pyrunc import log
from pyrunc.errors import PyruncError

# Exceptions a semantic or host rule raises on a field of the wrong type.
_MALFORMED = (TypeError, AttributeError, KeyError, IndexError, ValueError)


def cmd_check(parsed):
    """`pyrunc check`: every problem in the bundle, one line each (or JSON)."""
    from pyrunc.errors import format_problem
    from pyrunc.linux.capabilities import read_cap_last_cap
    from pyrunc.ops.common import no_arguments, output_format
    from pyrunc.spec import check, load

    fmt = output_format(parsed, ("text", "json"))
    no_arguments(parsed, "use --bundle DIR")
    try:
        bundle_dir = load.resolve_bundle(parsed.options.get("bundle"))
        doc = load.read_config(bundle_dir)
    except PyruncError as err:
        if fmt == "text":
            raise
        return _json_report([("file", "", str(err))], []), 1
    problems = find_problems(doc, bundle_dir, systemd_cgroup=bool(parsed.globals.get("systemd_cgroup")))
    warnings = []
    if not any(kind == "schema" for kind, _, _ in problems):
        warnings = check.warnings(doc, read_cap_last_cap())
    if fmt == "json":
        return _json_report(problems, warnings), 1 if problems else 0
    for _, path, message in problems:
        log.error(format_problem("config.json", path, message))
    if problems:
        return 1
    for path, message in warnings:
        log.warning(format_problem("config.json", path, message))
    return 0


def _json_report(problems, warnings) -> str:
    from pyrunc import jsonlite

    report = {
        "valid": not problems,
        "problems": [{"kind": kind, "path": path, "message": message} for kind, path, message in problems],
        "warnings": [{"path": path, "message": message} for path, message in warnings],
    }
    return jsonlite.dumps(report, indent=2) + "\n"


def find_problems(doc: dict, bundle_dir: str, systemd_cgroup: bool = False) -> list[tuple[str, str, str]]:
    """Every problem as (kind, json path, message); kind is schema, config or host."""
    from pyrunc.spec import _validator, check

    problems = []
    if not _validator.is_valid_config(doc):
        from pyrunc.spec import schema

        problems += [("schema", path, message) for path, message in schema.validate(doc)]
    reported = [path for _, path, _ in problems]
    for kind, rules in (("config", check.CHECKS), ("host", HOST_CHECKS)):
        for rule in rules:
            for path, message in _run_rule(rule, doc, bundle_dir, systemd_cgroup):
                if not any(_within(path, outer) for outer in reported):
                    problems.append((kind, path, message))
    return problems


def _run_rule(rule, doc, bundle_dir, systemd_cgroup) -> list[tuple[str, str]]:
    found = []
    try:
        if rule in HOST_CHECKS:
            found.extend(rule(doc, bundle_dir, systemd_cgroup))
        else:
            found.extend(rule(doc))
    except _MALFORMED:
        pass  # a field of the wrong type: the schema's problem names it
    return found


def _within(path: str, outer: str) -> bool:
    """Whether `path` is `outer` or inside it (a schema problem covers its subtree)."""
    if not outer:
        return False
    return path == outer or path.startswith(outer) and path[len(outer)] in ".["


# --- host checks: what create would refuse on this host --------------------


def _describe(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "a special file"


def host_rootfs(doc: dict, bundle_dir: str, systemd_cgroup: bool):
    """root.path: the root filesystem must be a directory (relative to the bundle)."""
    path = (doc.get("root") or {}).get("path")
    if not isinstance(path, str) or not path:
        return
    full = os.path.join(bundle_dir, path)
    try:
        mode = os.stat(full).st_mode
    except OSError as err:
        yield "root.path", f'"{full}": {(err.strerror or str(err)).lower()}'
        return
    if not stat.S_ISDIR(mode):
        yield "root.path", f'"{full}" is not a directory but {_describe(mode)}'


def host_bind_sources(doc: dict, bundle_dir: str, systemd_cgroup: bool):
    """mounts[].source: a bind mount's source must exist (relative to the bundle, as create reads it)."""
    from pyrunc.spec.check import is_bind_mount

    for i, mount in enumerate(doc.get("mounts") or ()):
        source = mount.get("source")
        if not source or not is_bind_mount(mount):
            continue
        full = source if os.path.isabs(source) else os.path.join(bundle_dir, source)
        if not os.path.lexists(full):
            yield f"mounts[{i}].source", f'"{source}" does not exist (bind mount on "{mount.get("destination")}")'


def host_namespace_paths(doc: dict, bundle_dir: str, systemd_cgroup: bool):
    """linux.namespaces[].path: must be a namespace file of that type (an nsfs file, e.g. /proc/PID/ns/net)."""
    from pyrunc.linux.namespaces import PROC_NAMES

    for i, ns in enumerate((doc.get("linux") or {}).get("namespaces") or ()):
        path, kind = ns.get("path"), ns.get("type")
        if not path or not path.startswith("/") or kind not in PROC_NAMES:
            continue
        where = f"linux.namespaces[{i}].path"
        try:
            # A namespace file is a regular file (of nsfs): anything else is
            # refused before it is opened (opening a device or a fifo can do things).
            if not stat.S_ISREG(os.stat(path).st_mode):
                yield where, f'"{path}" is not a namespace file'
                continue
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as err:
            yield where, f'"{path}": {(err.strerror or str(err)).lower()}'
            continue
        try:
            # An nsfs file reads back as "net:[4026531840]" through /proc/self/fd.
            link = os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        name, _, rest = link.partition(":[")
        if not rest.endswith("]") or "/" in name:
            yield where, f'"{path}" is not a namespace file'
        elif name not in (PROC_NAMES[kind], PROC_NAMES[kind] + "_for_children"):
            yield where, f'"{path}" is a {name} namespace, not a {PROC_NAMES[kind]} namespace (type "{kind}")'


def host_hook_paths(doc: dict, bundle_dir: str, systemd_cgroup: bool):
    """hooks.*[].path: must be an executable file in the runtime's namespace."""
    from pyrunc.spec.check import HOOK_KINDS

    for kind, hooks in (doc.get("hooks") or {}).items():
        if kind not in HOOK_KINDS:
            continue
        for i, hook in enumerate(hooks or ()):
            path = hook.get("path")
            if not path or not path.startswith("/"):
                continue
            where = f"hooks.{kind}[{i}].path"
            try:
                mode = os.stat(path).st_mode
            except OSError as err:
                yield where, f'"{path}": {(err.strerror or str(err)).lower()}'
                continue
            if not stat.S_ISREG(mode):
                yield where, f'"{path}" is not a file but {_describe(mode)}'
            elif not os.access(path, os.X_OK):
                yield where, f'"{path}" is not executable'


def host_cgroups_path(doc: dict, bundle_dir: str, systemd_cgroup: bool):
    """linux.cgroupsPath: "slice:prefix:name" with --systemd-cgroup; never a
    hierarchy's root nor pyrunc's own cgroup (create refuses both)."""
    from pyrunc.linux import cgroups

    path = (doc.get("linux") or {}).get("cgroupsPath")
    if path is None:
        return
    if systemd_cgroup:
        if path and len(path.split(":")) != 3:
            yield "linux.cgroupsPath", (f'with --systemd-cgroup it must be "slice:prefix:name" '
                                        f'(e.g. "system.slice:pyrunc:web"), not "{path}"')
        return
    if "\0" in path:
        return  # the schema-level checks name it
    try:
        layout = cgroups.detect_layout()
        paths = cgroups.resolve_paths(layout, path, "check")
        cgroups.refuse_shared_cgroup(layout, paths)
    except PyruncError as err:
        yield "linux.cgroupsPath", str(err).removeprefix("linux.cgroupsPath: ")


def host_lsm(doc: dict, bundle_dir: str, systemd_cgroup: bool):
    """process.apparmorProfile, process.selinuxLabel, linux.mountLabel: the host must have that LSM."""
    from pyrunc.linux import lsm

    process = doc.get("process") or {}
    yield from lsm.unavailable_labels(process.get("apparmorProfile", ""), process.get("selinuxLabel", ""),
                                      (doc.get("linux") or {}).get("mountLabel", ""))


HOST_CHECKS = [host_rootfs, host_bind_sources, host_namespace_paths, host_hook_paths, host_cgroups_path, host_lsm]
