"""The command line: runc's global flags and verbs, flag for flag.

A small table-driven parser instead of argparse (which costs ~7 ms to import,
a third of a container start). Both `--flag=value` and `--flag value` work,
options may come before or after the container id, and `--` ends them.

This is the only module that writes to stdout or decides the exit code:
every PyruncError becomes one log line and exit 1. Imports flow one way:
cli → ops.* (imported per verb, so each verb loads only what it needs).
"""

from __future__ import annotations

import sys

from pyrunc import log
from pyrunc.errors import PyruncError, UnknownCommand, UsageError


class Option:
    __slots__ = ("names", "dest", "kind", "default", "help", "metavar", "hidden")

    def __init__(self, names: str, kind: str = "bool", default=None, help: str = "", metavar: str = "",
                 hidden: bool = False):
        self.names = tuple(n.strip() for n in names.split(","))
        self.dest = self.names[0].lstrip("-").replace("-", "_")
        self.kind = kind  # bool | str | int | list
        self.default = default if default is not None else ([] if kind == "list" else (False if kind == "bool" else None))
        self.help = help
        self.metavar = metavar or ("value" if kind != "bool" else "")
        self.hidden = hidden


class Command:
    __slots__ = ("name", "summary", "args", "options", "usage", "rest")

    def __init__(self, name: str, summary: str, args: str = "", options: tuple = (), usage: str = "",
                 rest: int = -1):
        self.name = name
        self.summary = summary
        self.args = args
        self.options = options
        self.usage = usage
        # Positional index from which everything is passed through untouched
        # (the command of `exec`); -1 means options are parsed everywhere.
        self.rest = rest


GLOBAL_OPTIONS = (
    Option("--debug", help="enable debug logging"),
    Option("--log", "str", help="set the log file to write pyrunc logs to (default is stderr)", metavar="FILE"),
    Option("--log-format", "str", default="text", help="set the log format ('text' (default), or 'json')"),
    Option("--root", "str", help="root directory for storage of container state (this should be located in tmpfs); default /run/pyrunc, or $XDG_RUNTIME_DIR/pyrunc for a user other than root", metavar="DIR"),
    Option("--systemd-cgroup", help="enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\" for e.g. \"system.slice:runc:434234\""),
    Option("--rootless", "str", default="auto", help="ignore cgroup permission errors ('true', 'false', or 'auto')", hidden=True),
    Option("--criu", "str", help="path to the criu binary for checkpoint and restore (default: criu on PATH)", metavar="PATH"),
    Option("--help, -h", help="show help"),
    Option("--version, -v", help="print the version"),
)

_BUNDLE = Option("--bundle, -b", "str", help="path to the root of the bundle directory, defaults to the current directory", metavar="DIR")
_CONSOLE_SOCKET = Option("--console-socket", "str", help="path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal", metavar="PATH")
_PID_FILE = Option("--pid-file", "str", help="specify the file to write the process id to", metavar="PATH")
_NO_PIVOT = Option("--no-pivot", help="do not use pivot root to jail process inside rootfs; needed when the rootfs is on ramdisk")
_NO_NEW_KEYRING = Option("--no-new-keyring", help="do not create a new session keyring for the container")
_PRESERVE_FDS = Option("--preserve-fds", "int", default=0, help="pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)", metavar="N")
# checkpoint's and restore's shared flags (runc's)
_WORK_PATH = Option("--work-path", "str", help="path for saving work files and logs (default: the image path)", metavar="DIR")
_TCP_ESTABLISHED = Option("--tcp-established", help="allow open tcp connections")
_EXT_UNIX_SK = Option("--ext-unix-sk", help="allow external unix sockets")
_SHELL_JOB = Option("--shell-job", help="allow shell jobs")
_FILE_LOCKS = Option("--file-locks", help="handle file locks, for safety")
_MANAGE_CGROUPS = Option("--manage-cgroups-mode", "str", help="cgroups mode: soft|full|strict|ignore (default: CRIU's, soft)")
_EMPTY_NS = Option("--empty-ns", "list", help="create a namespace, but don't restore its properties (network only)")
_AUTO_DEDUP = Option("--auto-dedup", help="enable auto deduplication of memory images")
_LAZY_PAGES = Option("--lazy-pages", help="use userfaultfd to lazily restore memory pages (unsupported: refused)")

# Each verb's Command is built when first asked for (_command): the whole
# table is ~100 Option objects, which a `state` or a `run` would otherwise
# build on every call for the one verb it runs.
_COMMAND_TABLE = {
    "create": lambda: Command(
        "create", "create a container", "<container-id>",
        (_BUNDLE, _CONSOLE_SOCKET, _PID_FILE, _NO_PIVOT, _NO_NEW_KEYRING, _PRESERVE_FDS),
        usage="Creates the container from the bundle's config.json and leaves its init waiting\n"
              "for `pyrunc start`. Everything in the config is applied except running process.args.",
    ),
    "start": lambda: Command("start", "executes the user defined process in a created container", "<container-id>"),
    "state": lambda: Command("state", "output the state of a container", "<container-id>"),
    "kill": lambda: Command(
        "kill", "kill sends the specified signal (default: SIGTERM) to the container's init process",
        "<container-id> [signal]",
        (Option("--all, -a", help="send the specified signal to all processes inside the container"),),
        usage="The signal is a number (9), a name (KILL) or a name with SIG (SIGKILL).",
    ),
    "delete": lambda: Command(
        "delete", "delete any resources held by the container", "<container-id>",
        (Option("--force, -f", help="forcibly deletes the container if it is still running (uses SIGKILL)"),),
    ),
    "run": lambda: Command(
        "run", "create and run a container", "<container-id>",
        (_BUNDLE, _CONSOLE_SOCKET,
         Option("--detach, -d", help="detach from the container's process"),
         Option("--keep", help="do not delete the container after it exits"),
         _PID_FILE,
         Option("--no-subreaper", help="disable the use of the subreaper used to reap reparented processes"),
         _NO_PIVOT, _NO_NEW_KEYRING, _PRESERVE_FDS),
        usage="In the foreground, waits for the container and exits with its exit code\n"
              "(128+N when it was killed by signal N).",
    ),
    "exec": lambda: Command(
        "exec", "execute new process inside the container", "<container-id> <command> [command options]",
        (_CONSOLE_SOCKET,
         Option("--cwd", "str", help="current working directory in the container", metavar="DIR"),
         Option("--env, -e", "list", help="set environment variables (repeatable)", metavar="KEY=VALUE"),
         Option("--tty, -t", help="allocate a pseudo-TTY"),
         Option("--user, -u", "str", help="UID (format: <uid>[:<gid>])", metavar="UID[:GID]"),
         Option("--additional-gids, -g", "list", help="additional gids (repeatable)", metavar="GID"),
         Option("--process, -p", "str", help="path to the process.json", metavar="FILE"),
         Option("--detach, -d", help="detach from the container's process"),
         _PID_FILE,
         Option("--process-label", "str", help="set the asm process label for the process commonly used with selinux"),
         Option("--apparmor", "str", help="set the apparmor profile for the process"),
         Option("--no-new-privs", help="set the no new privileges value for the process"),
         Option("--cap, -c", "list", help="add a capability to the bounding set for the process (repeatable)"),
         _PRESERVE_FDS,
         Option("--cgroup", "list", help="run the process in an (existing) sub-cgroup(s): [controller:]path"),
         Option("--ignore-paused", help="allow exec in a paused container")),
        usage="In the foreground, waits and exits with the process's exit code; 255 when it cannot start\n"
              "(runc's words: \"executable file not found in $PATH\", \"permission denied\"). Everything\n"
              "after the command is passed to it.",
        rest=0,
    ),
    "list": lambda: Command(
        "list", "lists containers started by pyrunc with the given root", "",
        (Option("--format, -f", "str", default="table", help="select one of: table or json"),
         Option("--quiet, -q", help="display only container IDs")),
    ),
    "ps": lambda: Command(
        "ps", "ps displays the processes running inside a container", "<container-id> [ps options]",
        (Option("--format, -f", "str", default="table", help="select one of: table or json"),),
        usage="With --format table, runs the host's ps (default: ps -ef) and keeps the container's rows;\n"
              "with json, prints the container's pids.",
        rest=0,
    ),
    "pause": lambda: Command("pause", "pause suspends all processes inside the container", "<container-id>"),
    "resume": lambda: Command("resume", "resumes all processes that have been previously paused", "<container-id>"),
    "update": lambda: Command(
        "update", "update container resource constraints", "<container-id>",
        (Option("--resources, -r", "str", help="path to a file with linux.resources JSON, or - for stdin",
                metavar="FILE"),
         Option("--blkio-weight", "str", help="specifies per cgroup weight, range is from 10 to 1000"),
         Option("--cpu-period", "str", help="CPU CFS period to be used for hardcapping (in usecs); 0 to use system default"),
         Option("--cpu-quota", "str", help="CPU CFS hardcap limit (in usecs); allowed cpu time in a given period"),
         Option("--cpu-share", "str", help="CPU shares (relative weight vs. other containers)"),
         Option("--cpu-rt-period", "str", help="CPU realtime period to be used for hardcapping (in usecs)"),
         Option("--cpu-rt-runtime", "str", help="CPU realtime hardcap limit (in usecs)"),
         Option("--cpu-burst", "str", help="CPU CFS burst limit (in usecs)"),
         Option("--cpu-idle", "str", help="set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE"),
         Option("--cpuset-cpus", "str", help="CPU(s) to use"),
         Option("--cpuset-mems", "str", help="memory node(s) to use"),
         Option("--memory", "str", help="memory limit (in bytes, or with a unit: 512m, 1g; -1: unlimited)"),
         Option("--memory-reservation", "str", help="memory reservation or soft_limit (in bytes)"),
         Option("--memory-swap", "str", help="total memory usage (memory + swap); set -1 to enable unlimited swap"),
         Option("--pids-limit", "str", help="maximum number of pids allowed in the container"),
         Option("--kernel-memory", "str", help="(obsolete; ignored)", hidden=True),
         Option("--kernel-memory-tcp", "str", help="(obsolete; ignored)", hidden=True),
         Option("--l3-cache-schema", "str", help="the string of Intel RDT/CAT L3 cache schema (unsupported)"),
         Option("--mem-bw-schema", "str", help="the string of Intel RDT/MBA memory bandwidth schema (unsupported)")),
    ),
    "events": lambda: Command(
        "events", "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
        "<container-id>",
        (Option("--interval", "str", default="5s", help="set the stats collection interval"),
         Option("--stats", help="display the container's stats then exit")),
    ),
    "checkpoint": lambda: Command(
        "checkpoint", "checkpoint a running container", "<container-id>",
        (Option("--image-path", "str", help="path for saving criu image files (default: ./checkpoint)", metavar="DIR"),
         _WORK_PATH,
         Option("--parent-path", "str", help="path for previous criu image files in pre-dump", metavar="DIR"),
         Option("--leave-running", help="leave the process running after checkpointing"),
         _TCP_ESTABLISHED,
         _EXT_UNIX_SK,
         _SHELL_JOB,
         _LAZY_PAGES,
         _FILE_LOCKS,
         Option("--pre-dump", help="dump container's memory information only, leave the container running after this"),
         _MANAGE_CGROUPS,
         _EMPTY_NS,
         _AUTO_DEDUP),
        usage="Dumps the container's processes with CRIU (over its RPC interface) into the image path;\n"
              "unless --leave-running or --pre-dump, the container is then stopped and deleted.\n"
              "Needs criu on PATH (or --criu) and a kernel `criu check` accepts.",
    ),
    "restore": lambda: Command(
        "restore", "restore a container from a previous checkpoint", "<container-id>",
        (_CONSOLE_SOCKET,
         Option("--image-path", "str", help="path to criu image files for restoring (default: ./checkpoint)", metavar="DIR"),
         _WORK_PATH,
         _TCP_ESTABLISHED,
         _EXT_UNIX_SK,
         _SHELL_JOB,
         _FILE_LOCKS,
         _MANAGE_CGROUPS,
         _BUNDLE,
         Option("--detach, -d", help="detach from the container's process"),
         _PID_FILE,
         Option("--no-subreaper", help="disable the use of the subreaper used to reap reparented processes"),
         _NO_PIVOT,
         _EMPTY_NS,
         _AUTO_DEDUP,
         _LAZY_PAGES),
        usage="Creates the container from the bundle's config.json and has CRIU restore its processes\n"
              "from the image path into it (its cgroups and limits made first). In the foreground, waits\n"
              "and exits with the container's exit code, as `run`.",
    ),
    "spec": lambda: Command(
        "spec", "create a new specification file", "",
        (_BUNDLE, Option("--rootless", help="generate a configuration for a rootless container")),
        usage="Writes config.json (runc's defaults: /bin/sh in ./rootfs) into the bundle directory.",
    ),
    "features": lambda: Command(
        "features", "show the enabled features", "",
        usage="Prints the runtime-spec features JSON: the OCI versions, hooks, mount options,\n"
              "namespaces, capabilities, cgroup, seccomp and idmapped-mount support of this pyrunc, and\n"
              "(annotation org.opencontainers.pyrunc.checkpoint) the criu checkpoint and restore would use.",
    ),
    "check": lambda: Command(
        "check", "validate a bundle without creating anything (pyrunc only)", "",
        (_BUNDLE, Option("--format, -f", "str", default="text", help="select one of: text or json")),
        usage="Lists every problem in one run, each with its JSON path, and exits 1 if there is any:\n"
              "the schema's, the rules a schema cannot express, and what create would refuse on this\n"
              "host (root filesystem, bind-mount sources, namespace paths, hook executables,\n"
              "cgroupsPath, AppArmor/SELinux labels). --format json prints them as a JSON object\n"
              "(valid, problems[] with kind, path and message, warnings[]) on stdout.",
    ),
}

_built_commands: dict = {}


def _command(verb: str) -> Command | None:
    command = _built_commands.get(verb)
    if command is None and verb in _COMMAND_TABLE:
        command = _built_commands[verb] = _COMMAND_TABLE[verb]()
    return command


def _all_commands() -> dict:
    return {verb: _command(verb) for verb in _COMMAND_TABLE}


def __getattr__(name: str):
    # COMMANDS, every verb's Command by name (the help, the docs' tests).
    if name == "COMMANDS":
        return _all_commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Which module implements each verb: imported on demand.
_HANDLERS = {
    "create": ("pyrunc.ops.create", "cmd_create"),
    "start": ("pyrunc.ops.lifecycle", "cmd_start"),
    "state": ("pyrunc.ops.lifecycle", "cmd_state"),
    "kill": ("pyrunc.ops.lifecycle", "cmd_kill"),
    "delete": ("pyrunc.ops.lifecycle", "cmd_delete"),
    "run": ("pyrunc.ops.run", "cmd_run"),
    "exec": ("pyrunc.ops.exec", "cmd_exec"),
    "list": ("pyrunc.ops.listing", "cmd_list"),
    "ps": ("pyrunc.ops.resources", "cmd_ps"),
    "pause": ("pyrunc.ops.resources", "cmd_pause"),
    "resume": ("pyrunc.ops.resources", "cmd_resume"),
    "update": ("pyrunc.ops.resources", "cmd_update"),
    "events": ("pyrunc.ops.resources", "cmd_events"),
    "checkpoint": ("pyrunc.ops.checkpoint", "cmd_checkpoint"),
    "restore": ("pyrunc.ops.checkpoint", "cmd_restore"),
    "spec": ("pyrunc.spec.defaults", "cmd_spec"),
    "check": ("pyrunc.ops.check", "cmd_check"),
    "features": ("pyrunc.ops.features", "cmd_features"),
}


class Parsed:
    """The parsed command line: `globals` and `options` are dicts by dest."""

    __slots__ = ("globals", "command", "options", "args")

    def __init__(self, globals_: dict, command: Command | None, options: dict, args: list[str]):
        self.globals = globals_
        self.command = command
        self.options = options
        self.args = args


def _lookup(options: tuple, name: str) -> Option | None:
    for option in options:
        if name in option.names:
            return option
    return None


def _take_option(option: Option, name: str, inline: str | None, argv: list[str], i: int, into: dict) -> int:
    """Store the option's value in `into`; return the index of the next argument."""
    if option.kind == "bool":
        if inline is None:
            into[option.dest] = True
        elif inline.lower() in ("true", "1", "t"):
            into[option.dest] = True
        elif inline.lower() in ("false", "0", "f"):
            into[option.dest] = False
        else:
            raise UsageError(f"invalid boolean value {inline!r} for {name}")
        return i
    if inline is None:
        if i >= len(argv):
            raise UsageError(f"flag needs an argument: {name}")
        inline = argv[i]
        i += 1
    if option.kind == "int":
        try:
            value = int(inline)
        except ValueError:
            raise UsageError(f"invalid value {inline!r} for {name}: must be an integer") from None
        if value < 0:
            raise UsageError(f"invalid value {inline!r} for {name}: must not be negative")
        into[option.dest] = value
    elif option.kind == "list":
        into.setdefault(option.dest, []).append(inline)
    else:
        into[option.dest] = inline
    return i


def parse(argv: list[str]) -> Parsed:
    """Parse `argv` (without the program name); raise UsageError when it is wrong."""
    globals_ = {o.dest: o.default for o in GLOBAL_OPTIONS}
    i = 0
    # Global options come before the verb, as with runc.
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        name, sep, inline = argv[i].partition("=")
        option = _lookup(GLOBAL_OPTIONS, name)
        if option is None:
            raise UsageError(f"flag provided but not defined: {name}")
        i = _take_option(option, name, inline if sep else None, argv, i + 1, globals_)
    # A global -h/--help or -v/--version wins whatever follows, as runc's.
    if i >= len(argv) or globals_["help"] or globals_["version"]:
        return Parsed(globals_, None, {}, [])
    verb = argv[i]
    if verb == "help":
        target = None
        if i + 1 < len(argv) and argv[i + 1] != "help":  # `help help`: the global help, as runc
            target = _command(argv[i + 1])
            if target is None:  # runc's words and exit code (3) for an unknown topic
                raise UnknownCommand(f"no help topic for {argv[i + 1]!r}; run `pyrunc --help` to see the commands")
        globals_["help"] = True
        return Parsed(globals_, target, {"help": True}, [])
    command = _command(verb)
    if command is None:
        raise UnknownCommand(f"no such command: {verb!r}; run `pyrunc --help` to see the commands")
    help_option = Option("--help, -h", help="show help")
    options = {o.dest: o.default for o in command.options}
    options["help"] = False
    args: list[str] = []
    i += 1
    while i < len(argv):
        arg = argv[i]
        if command.rest >= 0 and len(args) > command.rest:
            args.extend(argv[i:])
            break
        if arg == "--":
            args.extend(argv[i + 1 :])
            break
        if arg.startswith("-") and arg != "-" and not _is_negative_number(arg):
            name, sep, inline = arg.partition("=")
            option = _lookup(command.options, name) or _lookup((help_option,), name)
            if option is None:
                raise UsageError(f"{command.name}: flag provided but not defined: {name}")
            i = _take_option(option, name, inline if sep else None, argv, i + 1, options)
            continue
        args.append(arg)
        i += 1
    return Parsed(globals_, command, options, args)


def _is_negative_number(arg: str) -> bool:
    return arg[1:].isdigit()


def format_help(command: Command | None) -> str:
    if command is None:
        lines = [
            "pyrunc: an OCI container runtime in Python, with runc's command line",
            "",
            "usage: pyrunc [global options] command [command options] [arguments...]",
            "",
            "commands:",
        ]
        commands = _all_commands()
        width = max(len(n) for n in commands)
        lines += [f"   {name.ljust(width)}   {c.summary}" for name, c in commands.items()]
        lines += ["", "global options:"]
        lines += _format_options(GLOBAL_OPTIONS)
        return "\n".join(lines) + "\n"
    lines = [f"pyrunc {command.name} - {command.summary}", "",
             f"usage: pyrunc {command.name} [command options] {command.args}".rstrip()]
    if command.usage:
        lines += ["", command.usage]
    if command.options:
        lines += ["", "options:"]
        lines += _format_options(command.options)
    return "\n".join(lines) + "\n"


def _format_options(options: tuple) -> list[str]:
    rows = []
    for o in options:
        if o.hidden:
            continue
        names = ", ".join(o.names)
        if o.kind != "bool":
            names += f" {o.metavar}"
        default = f" (default: {o.default})" if o.kind in ("str", "int") and o.default not in (None, 0) else ""
        rows.append((names, o.help + default))
    width = max(len(r[0]) for r in rows)
    return [f"   {n.ljust(width)}   {h}" for n, h in rows]


# Exit code for output into a closed pipe: what a shell shows for a process
# SIGPIPE killed (runc, being Go, dies of that signal).
BROKEN_PIPE = 141
_closed_std_fds: list[int] = []


def _reserve_std_fds() -> None:
    """fds 0-2 the caller left closed get /dev/null, before pyrunc opens
    anything: otherwise the first file pyrunc opens (a log, a socket, the
    exec fifo) would become "stdout", be written to as such, and be handed
    to the container as its fd 1."""
    from pyrunc import oslite as os

    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free fd: this one (the lower ones are open)
            os.set_inheritable(fd, True)
            _closed_std_fds.append(fd)


def _out(text: str) -> int:
    """Write a command's output; the exit code (0, or why it could not)."""
    if 1 in _closed_std_fds or sys.stdout is None:
        log.error("cannot write the output: stdout is closed")
        return 1
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        return BROKEN_PIPE
    except OSError as err:
        log.error(f"cannot write the output: {(err.strerror or str(err)).lower()}")
        return 1
    return 0


def _configure_log_early(argv: list[str]) -> None:
    """Honour --log/--log-format even when the rest of the line is wrong, so
    an engine reading the log file sees usage errors too."""
    path, fmt = None, "text"
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, sep, value = argv[i].partition("=")
        if not sep and name in ("--log", "--log-format", "--root") and i + 1 < len(argv):
            value = argv[i + 1]
            i += 1
        if name == "--log":
            path = value
        elif name == "--log-format" and value in ("text", "json"):
            fmt = value
        i += 1
    log.configure(path, fmt)


def main(argv: list[str] | None = None) -> int:
    """Run one pyrunc command; return its exit code (never raises)."""
    log.start_clock()
    _reserve_std_fds()
    if argv is None:
        argv = sys.argv[1:]
    _configure_log_early(argv)
    try:
        parsed = parse(argv)
    except UsageError as err:
        log.error(str(err))
        return err.exit_code
    g = parsed.globals
    if g["log_format"] not in ("text", "json"):
        log.error(f"invalid log format {g['log_format']!r}: must be text or json")
        return 1
    log.configure(g["log"], g["log_format"], g["debug"])
    if g["version"] and not g["help"] and parsed.command is None:  # runc: --help --version is the help
        from pyrunc.ops.features import version_text

        return _out(version_text())
    if parsed.command is None or g["help"] or parsed.options.get("help"):
        code = _out(format_help(parsed.command))
        return code or (0 if (g["help"] or parsed.options.get("help")) else 1)
    module_name, func_name = _HANDLERS[parsed.command.name]
    try:
        module = __import__(module_name, fromlist=[func_name])
        result = getattr(module, func_name)(parsed)
    except PyruncError as err:
        log.error(str(err))
        # runc exits 255 when exec fails before the process runs (an unknown
        # id among them); engines tell that from the process's own codes.
        return 255 if parsed.command.name == "exec" and not isinstance(err, UsageError) else 1
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except BrokenPipeError:
        return BROKEN_PIPE
    except Exception as err:  # a bug: one line, traceback only under --debug
        if g["debug"]:
            import traceback

            log.debug(traceback.format_exc())
        log.error(f"internal error: {type(err).__name__}: {err}")
        return 1
    if isinstance(result, str):
        return _out(result)
    if isinstance(result, tuple):  # (output, exit code): a report that is also a verdict (check --format json)
        return _out(result[0]) or result[1]
    return int(result or 0)


def run_and_exit():
    """A whole pyrunc process: main(), then exit without the interpreter's
    teardown, which only frees what the kernel frees anyway and costs about
    2 ms after a `create`. Safe because nothing is left buffered: logs go
    straight to their fds, stdout is flushed here, and pyrunc registers no
    atexit work.

    The cyclic garbage collector is off: a command lives for milliseconds,
    and the collector would only walk the freshly imported modules again and
    again (and, in the forked init, copy the pages it touches): 1-3 ms a
    `run`. Commands that go on for long turn it back on
    (ops.common.long_wait_ahead)."""
    import gc
    from pyrunc import oslite as os

    gc.disable()
    code = main()
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError):
        code = code or 1
    os._exit(code)


if __name__ == "__main__":
    run_and_exit()
