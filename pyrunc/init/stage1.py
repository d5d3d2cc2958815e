"""stage1: the first process `pyrunc create` forks.

Usually it is the container's init itself: the parent clones it straight
into the new namespaces (launcher.namespaces_to_clone_into), it does steps
1-2 and 5 (the cgroup namespace) and goes on as stage2 (run_as_init). A
user namespace, a namespace joined by path or a time namespace need the
two-process path (run), as does a kernel without clone3. There, in this
order, each step needing the one before:
  1. once the parent says they are ready (made, limits set), join the
     container's cgroups (born in the v2 one where the kernel could, see
     launcher.fork_into), so everything it forks is inside the limits from
     the start; before any user namespace, in which the cgroup files would
     not be writable;
  2. set oom_score_adj (lowering it needs privileges in the host namespace);
  3. join the namespaces given by path (the user one first);
  4. create the user namespace and have the parent write its id maps, then
     become root in it;
  5. create the other namespaces: owned by that user namespace;
  6. fork the container init, which is pid 1 when the pid namespace is new
     (unshare(CLONE_NEWPID) only applies to children).
It reports the init's host pid on its own channel (ctx.stage1_sock; the
init's is ctx.sock, see launcher) and exits, so the init is reparented to
the caller's subreaper. A pid namespace joined by path is not joined in step 3:
what is already in it (a pod's other containers) must never see a Python
process. This process builds the container itself (stage2), outside that
pid namespace, joins it for its children last, and becomes the stub, which
forks the init into it and reports its pid.
Imports: sync, init.{context, process, stage2}, linux.namespaces.
"""

from __future__ import annotations

from pyrunc import oslite as os
from pyrunc import faults, sync
from pyrunc.init import process as process_steps, stage2
from pyrunc.init.context import InitContext, error_message
from pyrunc.linux import mounts, namespaces, proc


def run(ctx: InitContext, join_v2: bool = True) -> None:
    """Never returns: whatever happens, this forked process ends here and
    never unwinds into the code of the `pyrunc create` it was forked from."""
    try:
        _open_own_proc(ctx)
        _run(ctx, join_v2)
    finally:
        os._exit(1)


def run_as_init(ctx: InitContext, join_v2: bool, cloned_with: int) -> None:
    """The one-process path: the parent cloned this process straight into
    the new namespaces `cloned_with` (launcher.namespaces_to_clone_into), so
    it is the container's init itself: the steps below, then stage2. Never
    returns."""
    try:
        try:
            _open_own_proc(ctx)
            _enter(ctx, join_v2, cloned_with)
        except BaseException as err:  # report, never unwind into the CLI's code
            _send_error(ctx, err)
            os._exit(1)
        stage2.run(ctx)
    finally:
        os._exit(1)


def _open_own_proc(ctx: InitContext) -> None:
    """First thing, still in pyrunc's mount namespace: its /proc, for the
    stub's exec if a filter forbids execveat, and for fd paths where the
    container's /proc will not show this process (joins_pid_ns, _enter)."""
    ctx.proc_fd = mounts.open_own_proc()


def _run(ctx: InitContext, join_v2: bool) -> None:
    try:
        _enter(ctx, join_v2)
        init_pid = 0 if ctx.joins_pid_ns else os.fork()
    except BaseException as err:  # report, never unwind into the CLI's code
        _send_error(ctx, err)
        os._exit(1)
    if ctx.joins_pid_ns or init_pid == 0:
        if ctx.stage1_sock is not ctx.sock:
            ctx.stage1_sock.close()  # stage1's channel, not the init's
            ctx.stage1_sock = ctx.sock
        stage2.run(ctx)  # never returns
        os._exit(1)
    # The init's channel is the init's alone: its EOF is the init's end.
    ctx.sock.close()
    try:
        sync.send(ctx.stage1_sock, "pid", pid=init_pid)
    except OSError:
        os._exit(1)
    if not ctx.wait_for_init:
        os._exit(0)
    ctx.stage1_sock.close()
    _, status = os.waitpid(init_pid, 0)
    os._exit(proc.exit_code(status))


def _enter(ctx: InitContext, join_v2: bool, cloned_with: int = 0) -> None:
    """Steps 1-5 (module docstring); the namespaces in `cloned_with` exist
    already."""
    cfg = ctx.config
    # The parent makes the cgroups and sets their limits while this process
    # loaded its code; nothing runs in them before that is done.
    sync.expect(ctx.stage1_sock, "cgroups-ready", "pyrunc create exited before the container's cgroups were ready")
    ctx.cgroups.join_self(v2=join_v2)
    faults.point("init:after-cgroup-join")
    if cfg.process.oom_score_adj is not None:
        process_steps.write_oom_score_adj(cfg.process.oom_score_adj)
    opener = _start_source_opener(cfg) if _needs_source_opener(cfg) else None
    opened = namespaces.open_namespace_paths(cfg.linux.namespaces)
    for kind, fd in opened:
        if kind == "pid":  # joined last, for the stub's child only (module docstring)
            ctx.pid_ns_fd, ctx.joins_pid_ns = fd, True
            # This process will never be "self" in the container's /proc.
            mounts.use_proc_dir(ctx.proc_fd)
    namespaces.join_namespaces([(kind, fd) for kind, fd in opened if kind != "pid"])
    user_ns = cfg.linux.namespace("user")
    if user_ns is not None:
        if not user_ns.path:
            namespaces.unshare(namespaces.CLONE_FLAGS["user"])
            sync.send(ctx.stage1_sock, "idmap-request")
            sync.expect(ctx.stage1_sock, "idmap-done", "pyrunc create exited while writing the id maps")
        _become_root()
    # The cgroup namespace always here, never in the clone: its root is the
    # cgroup the process is in when it is made, so only after joining.
    namespaces.unshare(namespaces.new_namespace_flags(cfg.linux.namespaces) & ~cloned_with)
    time_ns = cfg.linux.namespace("time")
    if time_ns is not None and not time_ns.path and cfg.linux.time_offsets:
        # Offsets can only be written before the first process enters the namespace.
        namespaces.write_time_offsets(cfg.linux.time_offsets)
    if opener is not None:
        ctx.mount_source_fds = _collect_sources(cfg, *opener)
    faults.point("init:after-namespaces")


def _bind_sources(cfg) -> dict[int, str]:
    """{index in mounts[]: host path} of the bind mounts."""
    sources = {}
    for i, entry in enumerate(cfg.mounts):
        if entry.type == "bind" or mounts.parse_mount_options(entry.options).is_bind:
            sources[i] = entry.source if os.path.isabs(entry.source) else os.path.join(cfg.bundle, entry.source)
    return sources


def _needs_source_opener(cfg) -> bool:
    """A user namespace and a new mount namespace: the container's root may
    not reach a bind mount's source (under a directory only the host's root
    can search), which the runtime can (runc: send_mountsources). Not for
    an unprivileged runtime: it could not enter that mount namespace, and
    the container's root has no less access than its user anyway. Idmapped
    mounts (root only) are always made there, user namespace or not."""
    mount_ns = cfg.linux.namespace("mount")
    if os.geteuid() != 0 or mount_ns is None or mount_ns.path:
        return False
    return any(m.idmapped for m in cfg.mounts) or (cfg.linux.namespace("user") is not None
                                                   and bool(_bind_sources(cfg)))


def _start_source_opener(cfg) -> tuple[int, object]:
    """Fork, while this process still has the runtime's rights, the helper
    that opens the bind-mount sources (O_PATH) for it once its mount
    namespace exists: in that namespace (a mount(2) source must be in the
    caller's), with the host's root's rights, as runc opens them before
    the user namespace applies. First, still in the runtime's mount
    namespace, it makes the idmapped mounts' detached trees. It never
    enters any other namespace."""
    mine, its = sync.socketpair()
    paths = _bind_sources(cfg)
    pid = os.fork()
    if pid == 0:
        try:
            mine.close()
            message = sync.receive(its)
            if message is None or message["type"] != "open-sources" or not message.get("fds"):
                os._exit(1)
            from pyrunc.linux import _libc

            # In the runtime's mount namespace still: linux.idmapped says why.
            if not _send_idmapped_trees(its, cfg, paths):
                os._exit(0)
            _libc.setns(message["fds"][0], _libc.CLONE_NEWNS)
            for index, path in paths.items():
                if cfg.mounts[index].idmapped:
                    continue
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError as err:
                    sync.send(its, "source", index=index, errno=err.errno)
                    continue
                sync.send_fds(its, "source", [fd], index=index)
                os.close(fd)
            sync.send(its, "sources-done")
        except BaseException:
            pass
        finally:
            os._exit(0)
    its.close()
    return pid, mine


def _send_idmapped_trees(sock, cfg, paths: dict[int, str]) -> bool:
    """Send the detached idmapped copy (linux.idmapped) of each idmapped
    mount's source; False once one failed, its error sent instead. One user
    namespace per distinct mapping, closed at the end."""
    from pyrunc.errors import PyruncError
    from pyrunc.linux import idmapped

    userns_fds: dict[str, int] = {}
    try:
        for index, path in paths.items():
            entry = cfg.mounts[index]
            if not entry.idmapped:
                continue
            try:
                userns_fd = _mount_user_namespace(cfg, entry, userns_fds)
                plan = mounts.parse_mount_options(entry.options)
                fd = idmapped.detached_tree(path, plan.is_recursive_bind, entry.idmap_recursive, userns_fd)
            except PyruncError as err:
                sync.send(sock, "source", index=index, error=str(err))
                return False
            sync.send_fds(sock, "source", [fd], index=index)
            os.close(fd)
        return True
    finally:
        for fd in userns_fds.values():
            os.close(fd)


def _mount_user_namespace(cfg, entry, made: dict[str, int]) -> int:
    """The user namespace whose maps an idmapped mount gets: its own
    mappings, or, given only idmap/ridmap, the container's (runc 1.2): the
    one it joins by path, or one with linux.uidMappings/gidMappings.
    `made` keeps them by mapping, for the next mount."""
    from pyrunc.errors import KernelError
    from pyrunc.linux import idmap, idmapped

    user_ns = cfg.linux.namespace("user")
    if entry.uid_mappings is None and user_ns is not None and user_ns.path:
        if user_ns.path not in made:
            try:
                made[user_ns.path] = os.open(user_ns.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as err:
                raise KernelError("open the user namespace", f'"{user_ns.path}"', err.errno) from None
        return made[user_ns.path]
    if entry.uid_mappings is not None:
        maps = (entry.uid_mappings, entry.gid_mappings or [])
    else:
        maps = (cfg.linux.uid_mappings, cfg.linux.gid_mappings)
    key = idmap.format_id_map(maps[0]) + "/" + idmap.format_id_map(maps[1])
    if key not in made:
        made[key] = idmapped.user_namespace_fd(*maps)
    return made[key]


def _collect_sources(cfg, pid: int, sock) -> dict[int, int]:
    """Hand the helper this process's new mount namespace; collect the
    source fds it opened there ({index in mounts[]: fd}). A source it could
    not open is left out: the mount then reports it by its path. An
    idmapped mount it could not make fails the container here."""
    from pyrunc.errors import PyruncError

    fds: dict[int, int] = {}
    try:
        own_ns = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            sync.send_fds(sock, "open-sources", [own_ns])
        finally:
            os.close(own_ns)
        while True:
            message = sync.expect_any(sock, ("source", "sources-done"),
                                      "the helper opening the bind-mount sources exited")
            if message["type"] == "sources-done":
                return fds
            if message.get("error"):
                for fd in fds.values():
                    os.close(fd)
                entry = cfg.mounts[int(message["index"])]
                raise PyruncError(f'mount "{entry.source}" on "{entry.destination}" with idmap: {message["error"]}')
            for fd in message.get("fds", ()):
                fds[int(message["index"])] = fd
    finally:
        sock.close()
        os.waitpid(pid, 0)


def _become_root() -> None:
    """uid and gid 0 of the new user namespace, so files the init creates
    (mount points, devices) belong to the container's root."""
    from pyrunc.errors import PyruncError

    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError as err:
        raise PyruncError(f"linux.uidMappings: cannot become root in the user namespace "
                          f"(is container id 0 mapped?): {err.strerror.lower()}") from None
    try:
        os.setgroups([])
    except OSError:
        pass  # setgroups is denied in this namespace; nothing to drop then


def _send_error(ctx: InitContext, err: BaseException) -> None:
    try:
        sync.send(ctx.stage1_sock, "error", **error_message(err))
    except OSError:
        pass

