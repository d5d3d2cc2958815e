"""`check` (pyrunc only): validate a bundle, list every problem, create nothing.
Imports: errors, log, ops.common, spec.*, linux.{capabilities, lsm}.
"""

from __future__ import annotations

import os

from pyrunc import log
from pyrunc.errors import UsageError
from pyrunc.ops.common import validate_config


def cmd_check(parsed) -> int:
    """`pyrunc check`: every problem in the bundle, one line each."""
    from pyrunc.errors import format_problem
    from pyrunc.linux.capabilities import read_cap_last_cap
    from pyrunc.spec import check, load

    if parsed.args:
        raise UsageError("check: takes no arguments; use --bundle DIR")
    bundle_dir = load.resolve_bundle(parsed.options.get("bundle"))
    doc = load.read_config(bundle_dir)
    problems = validate_config(doc)
    if not problems:
        root = os.path.join(bundle_dir, (doc.get("root") or {}).get("path", "rootfs"))
        if not os.path.isdir(root):
            problems.append(("root.path", f'"{root}" is not a directory'))
        problems += _host_problems(doc)
    for path, message in problems:
        log.error(format_problem("config.json", path, message))
    if problems:
        return 1
    for path, message in check.warnings(doc, read_cap_last_cap()):
        log.warning(format_problem("config.json", path, message))
    return 0


def _host_problems(doc: dict) -> list[tuple[str, str]]:
    """What `create` would refuse on this host though the config is valid."""
    from pyrunc.linux import lsm

    process = doc.get("process") or {}
    return lsm.unavailable_labels(process.get("apparmorProfile", ""), process.get("selinuxLabel", ""),
                                  (doc.get("linux") or {}).get("mountLabel", ""))
