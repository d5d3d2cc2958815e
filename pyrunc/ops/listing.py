"""`list`: every container under the root, as runc prints them.
Imports: errors, log, store, ops.{common, lifecycle}.
"""

from __future__ import annotations

from pyrunc import oslite as os
from pyrunc import log
from pyrunc.errors import ContainerNotFound, PyruncError
from pyrunc.ops.common import no_arguments, output_format, store_for
from pyrunc.ops.lifecycle import public_state
from pyrunc.store import Store


def cmd_list(parsed):
    from pyrunc import jsonlite

    fmt = output_format(parsed, ("table", "json"))
    no_arguments(parsed)
    entries = list_containers(store_for(parsed))
    if parsed.options.get("quiet"):
        return "".join(e["id"] + "\n" for e in entries)
    if fmt == "json":
        return (jsonlite.dumps(entries) if entries else "null") + "\n"
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    rows += [(e["id"], str(e["pid"]), e["status"], e["bundle"], e["created"], e["owner"]) for e in entries]
    return _tabulate(rows)


def list_containers(st: Store) -> list[dict]:
    """The state of every container under the store's root (creates still
    under way and unreadable states left out, the latter with a warning)."""
    entries = []
    for container_id in st.list_ids():
        try:
            record = st.load_record(container_id)
        except ContainerNotFound:
            continue  # deleted since it was listed, or its create is only just starting
        except PyruncError as err:  # another runtime's state, or a corrupt one: the others are still listed
            log.warning(f"list: {err}; skipped")
            continue
        if record.creating:
            continue
        entries.append(public_state(st, record, owner=_owner(st.path(container_id))))
    return entries


def _tabulate(rows: list[tuple]) -> str:
    # Go's tabwriter(minwidth 12, padding 3), as runc's list uses.
    widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + row[-1])
    return "\n".join(lines) + "\n"


def _owner(path: str) -> str:
    try:
        uid = os.stat(path).st_uid
    except OSError:
        return ""
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return f"#{uid}"
