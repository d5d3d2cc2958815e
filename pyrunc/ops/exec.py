"""`exec`: run a new process inside a created or running container.

The process comes from --process (a process.json, as engines send) or from
the container's own process (saved at create) with the command line and
flags applied, as runc does. It joins every namespace of the container and
its cgroup, and gets the process's capabilities, rlimits, no_new_privs,
LSM label, user and cwd plus the container's seccomp filter (compiled at
create). In the foreground pyrunc relays nothing but waits and exits with the
process's exit code; with --detach it writes --pid-file and leaves the
process to the caller's subreaper.
Imports: errors, log, store, ops.{common, lifecycle, run}, spec.*, init.exec, linux.*.
"""

from __future__ import annotations

from pyrunc import oslite as os
from pyrunc import log, status as status_rules
from pyrunc.errors import ConfigError, InitError, ProgramError, PyruncError, UsageError
from pyrunc.ops.common import check_preserved_fds, store_for, validate_config
from pyrunc.record import ContainerRecord
from pyrunc.store import CREATED


def cmd_exec(parsed) -> int:
    check_preserved_fds(int(parsed.options.get("preserve_fds") or 0))
    if not parsed.args:
        raise UsageError("exec: requires a container id; see `pyrunc exec --help`")
    container_id, command = parsed.args[0], parsed.args[1:]
    opts = parsed.options
    st = store_for(parsed)
    record = _load_for_exec(st, container_id, bool(opts.get("ignore_paused")))
    process = _load_process(record, opts, command)
    return _run_process(st, record, process, detach=bool(opts.get("detach")),
                        console_socket=opts.get("console_socket"), cgroup=opts.get("cgroup"),
                        preserve_fds=int(opts.get("preserve_fds") or 0), pid_file=opts.get("pid_file"))


def exec_process(st, container_id: str, process: dict | list, detach: bool = False, console_socket: str | None = None,
                 cgroup: list[str] | None = None, preserve_fds: int = 0, pid_file: str | None = None,
                 ignore_paused: bool = False) -> int:
    """Run `process` (an OCI process object, or a command line run with the
    container's own process settings) in the container: its exit code in
    the foreground (128+N for signal N), 0 with `detach`."""
    check_preserved_fds(preserve_fds)
    record = _load_for_exec(st, container_id, ignore_paused)
    if isinstance(process, list):
        process = _process_for_command(record, process, terminal=False)
    spec = _checked_process(record, dict(process), "process")
    return _run_process(st, record, spec, detach=detach, console_socket=console_socket,
                        cgroup=cgroup, preserve_fds=preserve_fds, pid_file=pid_file)


def _load_for_exec(st, container_id: str, ignore_paused: bool) -> ContainerRecord:
    record = st.load_record(container_id)
    status_rules.require("exec --ignore-paused" if ignore_paused else "exec", container_id, st.status(record))
    return record


def _process_for_command(record: ContainerRecord, command: list, terminal: bool) -> dict:
    """The container's own process (saved at create) running `command`."""
    process = dict(record.process)
    process["args"] = list(command)
    process["terminal"] = terminal
    process.pop("consoleSize", None)
    return process


def _run_process(st, record: ContainerRecord, process, **how) -> int:
    try:
        return _exec(st, record, process, **how)
    except InitError as err:
        if err.kind == "exec":
            # The program cannot run: exit 255 as runc, with the words engines
            # match to report 127 or 126 themselves ("executable file not
            # found", "permission denied"); its errno (and exit_code) for the API.
            raise ProgramError(f"exec failed: {err}", err.errno) from None
        raise


def _load_process(record: ContainerRecord, opts: dict, command: list[str]):
    """The process spec: process.json, or the container's with the flags."""
    from pyrunc.files import read_regular
    from pyrunc.spec import load, model

    if opts.get("process"):
        path = opts["process"]
        try:
            data = read_regular(path, f"--process {path}")
        except OSError as err:
            raise PyruncError(f"--process {path}: {err.strerror.lower()}") from None
        process = load.parse_config(data, path)
        if command:
            raise PyruncError("exec: give either --process or a command, not both")
        if opts.get("tty"):
            process.setdefault("terminal", True)
    else:
        if not command:
            raise PyruncError("exec: process args cannot be empty: give a command or --process FILE")
        process = _process_for_command(record, command, terminal=bool(opts.get("tty")))
        _apply_flags(process, opts)
    return _checked_process(record, process, "process.json" if opts.get("process") else "exec")


def _checked_process(record: ContainerRecord, process: dict, where: str):
    """Validate a process object (errors name `where`) and model it."""
    from pyrunc.spec import model

    _validate(record, process, where)
    if process.get("apparmorProfile") or process.get("selinuxLabel"):
        from pyrunc.linux import lsm

        log.debug(lsm.describe_host())
        problems = lsm.unavailable_labels(process.get("apparmorProfile", ""), process.get("selinuxLabel", ""), "")
        if problems:
            raise ConfigError(problems, file=where)
    return model.Process(process)


def _apply_flags(process: dict, opts: dict) -> None:
    if opts.get("cwd"):
        process["cwd"] = opts["cwd"]
    if opts.get("env"):
        process["env"] = list(process.get("env") or ()) + list(opts["env"])
    user = dict(process.get("user") or {"uid": 0, "gid": 0})
    if opts.get("user"):
        uid, _, gid = opts["user"].partition(":")
        try:
            user["uid"] = int(uid)
            if gid:
                user["gid"] = int(gid)
        except ValueError:
            raise PyruncError(f"exec: --user {opts['user']!r}: must be uid[:gid] as numbers") from None
    if opts.get("additional_gids"):
        try:
            user["additionalGids"] = [int(g) for g in opts["additional_gids"]]
        except ValueError:
            raise PyruncError("exec: --additional-gids: must be numbers") from None
    process["user"] = user
    if opts.get("cap"):
        caps = {k: list(v) for k, v in (process.get("capabilities") or {}).items()}
        for cap in opts["cap"]:
            for kind in ("bounding", "effective", "permitted"):
                caps.setdefault(kind, []).append(cap)
            # Ambient needs inheritable; add it only where the spec has some (runc).
            if caps.get("inheritable"):
                caps.setdefault("ambient", []).append(cap)
        process["capabilities"] = caps
    if opts.get("no_new_privs"):
        process["noNewPrivileges"] = True
    if opts.get("apparmor"):
        process["apparmorProfile"] = opts["apparmor"]
    if opts.get("process_label"):
        process["selinuxLabel"] = opts["process_label"]


def _validate(record: ContainerRecord, process: dict, where: str) -> None:
    """The schema and semantic checks of a config, run on the process alone."""
    doc = {"ociVersion": record.oci_version or "1.0.2", "root": {"path": "rootfs"}, "process": process}
    problems = [p for p in validate_config(doc) if p[0] == "process" or p[0].startswith(("process.", "process["))]
    if problems:
        raise ConfigError(problems, file=where)
    from pyrunc.linux.capabilities import read_cap_last_cap
    from pyrunc.spec.check import warn_capabilities

    for path, message in warn_capabilities(doc, read_cap_last_cap()):
        log.warning(f"{where}: {path}: {message}")


def _exec(st, record: ContainerRecord, process, detach: bool, console_socket: str | None,
          cgroup: list[str] | None, preserve_fds: int, pid_file: str | None) -> int:
    from pyrunc import launcher
    from pyrunc.linux import _libc  # loaded for the exec'd process anyway
    from pyrunc.linux.cgroups import manager as cgroup_manager

    container_id = record.id
    console_fd, relay_end = -1, -1
    try:
        if process.terminal:
            if console_socket:
                from pyrunc.linux import console

                console_fd = console.connect_console_socket(console_socket)
            elif detach:
                raise PyruncError("exec: a terminal (--tty or process.terminal) with --detach needs --console-socket")
            else:
                import _socket

                relay_sock, init_sock = _socket.socketpair(_socket.AF_UNIX,
                                                           _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC, 0)
                relay_end, console_fd = relay_sock.detach(), init_sock.detach()
        elif console_socket:
            raise PyruncError("exec: --console-socket given, but the process has no terminal")
        cgroups = cgroup_manager.from_state(record.cgroups)
        if cgroup:
            cgroups = cgroups.sub_cgroup(cgroup_manager.parse_sub_cgroup_args(cgroup))
        if not detach:
            # The process is forked by an intermediate one; as subreaper we
            # adopt it when that exits, and can wait for its exit status.
            _libc.prctl(_libc.PR_SET_CHILD_SUBREAPER, 1)
        pid = launcher.launch_exec(
            container_id, record.pid, record.start_time, process,
            cgroups=cgroups if cgroups.paths else None,
            seccomp_program=_container_seccomp(st, record),
            preserve_fds=preserve_fds, console_fd=console_fd,
            on_listener=lambda fd, exec_pid: _send_listener(record, fd, exec_pid),
        )
    finally:
        if console_fd >= 0:
            os.close(console_fd)
    if pid_file:
        # In the foreground too, as runc: callers wait on it to signal the
        # process. A pid file that cannot be written ends the process.
        from pyrunc.store import write_file

        try:
            write_file(os.path.abspath(pid_file), str(pid).encode(), 0o644, "--pid-file")
        except PyruncError:
            _kill_and_reap(pid, reap=not detach)
            raise
    if detach:
        return 0
    relay = None
    if relay_end >= 0:
        from pyrunc.linux import console
        from pyrunc.ops.run import TerminalRelay

        try:
            relay = TerminalRelay(console.receive_fd(relay_end))
        finally:
            os.close(relay_end)
    from pyrunc.ops.common import SignalForwarder

    pidfd = os.pidfd_open(pid)
    # Signals go to the process; with a relayed terminal, SIGWINCH resizes it.
    forwarder = SignalForwarder(pidfd, relay)
    try:
        if relay is not None:
            relay.run(pidfd)
        while True:
            waited, status = os.waitpid(-1, 0)
            if waited == pid:
                from pyrunc.linux.proc import exit_code

                return exit_code(status)
    except ChildProcessError:
        return 255
    finally:
        forwarder.restore()
        if relay is not None:
            relay.close()
        os.close(pidfd)


def _kill_and_reap(pid: int, reap: bool) -> None:
    import _signal

    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        _signal.pidfd_send_signal(pidfd, 9)
        if reap:  # our child: we are its subreaper (the stub that forked it exited)
            os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    finally:
        os.close(pidfd)


def run_start_container_hooks(st, record: ContainerRecord, hooks_list: list) -> None:
    """runtime.md step 7: the startContainer hooks, as `start` runs them:
    each one a process of the container (its namespaces, cgroup, user,
    capabilities and seccomp filter, as runc's run after its init has set
    these), through exec's machinery, so never as a Python process in the
    container's pid namespace (CVE-2019-5736 class). Its path resolves in
    the container. The first failure raises HookError."""
    from pyrunc import hooks, launcher
    from pyrunc.linux import _libc, proc
    from pyrunc.linux.cgroups import manager as cgroup_manager
    from pyrunc.spec import model

    container_id, init_pid = record.id, record.pid
    data = hooks.state_json(hooks.state_document(record.oci_version, container_id, CREATED,
                                                 proc.read_ns_pid(init_pid) or init_pid, record.bundle,
                                                 record.annotations))
    cgroups = cgroup_manager.from_state(record.cgroups)
    seccomp_program = _container_seccomp(st, record)
    # The stub that forks the hook exits at once: as subreaper we adopt the
    # hook, to wait for it within its timeout.
    _libc.prctl(_libc.PR_SET_CHILD_SUBREAPER, 1)
    for i, hook in enumerate(hooks_list):
        spec = dict(record.process)
        # Without `env`, the process's own (runc runs it from its init).
        spec.update(args=list(hook.args) or [hook.path], terminal=False)
        if hook.env is not None:
            spec["env"] = list(hook.env)
        spec.pop("consoleSize", None)
        in_read, in_write = os.pipe()
        out_read, out_write = os.pipe()
        where = f"hooks.startContainer[{i}]"
        try:
            pid = launcher.launch_exec(container_id, init_pid, record.start_time, model.Process(spec),
                                       cgroups=cgroups if cgroups.paths else None, seccomp_program=seccomp_program,
                                       stdio=(in_read, out_write, out_write), program_path=hook.path)
        except InitError as err:
            for fd in (in_read, in_write, out_read, out_write):
                os.close(fd)
            raise hooks.HookError(f'{where}: run "{hook.path}": {err}') from None
        os.close(in_read)
        os.close(out_write)
        hooks.collect(hook, pid, in_write, out_read, data, where)


def _container_seccomp(st, record: ContainerRecord):
    info = record.seccomp
    if not info:
        return None
    from pyrunc.files import read_regular
    from pyrunc.linux.seccomp import Program
    from pyrunc.store import SECCOMP_FILE

    try:
        bpf = read_regular(st.path(record.id, SECCOMP_FILE), f"{record.id}: {SECCOMP_FILE}")
    except OSError as err:
        raise PyruncError(f"{record.id}: cannot read the container's seccomp filter: {err.strerror.lower()}") from None
    return Program(bpf, info["flags"], info.get("notify", False), [])


def _send_listener(record: ContainerRecord, fd: int, pid: int) -> None:
    from pyrunc import hooks
    from pyrunc.linux import seccomp

    info = record.seccomp or {}
    seccomp.send_to_listener(info.get("listenerPath", ""), info.get("listenerMetadata", ""), pid, fd,
                             hooks.state_document(record.oci_version, record.id, "running", record.pid,
                                                  record.bundle, record.annotations))
