"""`checkpoint` and `restore`: the container's processes to CRIU images and
back, through CRIU's RPC interface (linux.criu), with runc's flags.

checkpoint: CRIU dumps the container's process tree (the init is the root of
its pid namespace) into --image-path, freezing it through its cgroup; the
mounts CRIU cannot see whole (bind mounts, masked files, a network namespace
joined by path) are described to it as external, as runc does. Unless
--leave-running or --pre-dump, the container is gone afterwards.
restore: a new container from --bundle's config.json and the images: its
cgroups (either driver) are made and limited first and CRIU's restorer put
in them, so the restored tree is born there; CRIU rebuilds the namespaces in
a bind of the root filesystem. State and --pid-file are written when CRIU
reports the restored pid; a failed restore leaves nothing behind.
Imports: errors, log, store, ops.{common, create, lifecycle}, linux.{criu, cgroups, _libc}.
"""

from __future__ import annotations

import stat

from pyrunc import oslite as os
from pyrunc import jsonlite, log, status, store as store_mod
from pyrunc.errors import PyruncError, UsageError
from pyrunc.ops.common import load_config, one_id, rootless_cgroups, store_for

DESCRIPTORS_FILE = "descriptors.json"  # the init's stdio at dump time, as runc names it
CRIU_ROOT = "criu-root"
EXT_NET_NS = "extRootNetNS"


def criu_flags(opts: dict) -> dict:
    """The criu_opts fields both verbs take from runc's flags."""
    if opts.get("lazy_pages"):
        raise UsageError("--lazy-pages: not supported by pyrunc (it needs CRIU's page server and lazy-pages daemon)")
    from pyrunc.linux import criu

    fields = {"tcp_established": opts.get("tcp_established"), "ext_unix_sk": opts.get("ext_unix_sk"),
              "shell_job": opts.get("shell_job"), "file_locks": opts.get("file_locks"),
              "auto_dedup": opts.get("auto_dedup")}
    fields = {k: True for k, v in fields.items() if v}
    mode = opts.get("manage_cgroups_mode")
    if mode:
        if mode not in criu.CG_MODES:
            raise UsageError(f"--manage-cgroups-mode: invalid value {mode!r}: "
                             f"must be one of {', '.join(sorted(criu.CG_MODES))}")
        fields["manage_cgroups_mode"] = criu.CG_MODES[mode]
    empty = 0
    for ns in opts.get("empty_ns") or ():
        if ns != "network":
            raise UsageError(f"--empty-ns: {ns!r}: only the network namespace can be left empty")
        empty |= criu.CLONE_NEWNET
    if empty:
        fields["empty_ns"] = empty
    return fields


def external_mounts(cfg, restore: bool, is_file=lambda path: False) -> list[dict]:
    """ext_mnt entries (runc's): each bind mount by its destination (on
    restore: mapped to its source), each device node by its path (runc
    names them all; with them given, CRIU also resolves an fd the init
    inherited from the host, its /dev/null stdio among them), and each
    masked file, a bind of /dev/null (`is_file(path)` says which masked
    paths are files)."""
    from pyrunc.linux.rootfs import DEFAULT_DEVICES

    entries = []
    for m in cfg.mounts:
        if m.is_bind:
            entries.append({"key": m.destination, "val": _source(cfg, m) if restore else m.destination})
    devices = [f"/dev/{d[0]}" for d in DEFAULT_DEVICES] + [d.path for d in cfg.linux.devices]
    for path in dict.fromkeys(devices):
        entries.append({"key": path, "val": path})
    for path in cfg.linux.masked_paths:
        if is_file(path):
            entries.append({"key": path, "val": "/dev/null"})
    return entries


def _images_dir(path: str | None) -> str:
    return os.path.abspath(path or os.path.join(os.getcwd(), "checkpoint"))


def _open_dir(path: str, what: str, create: bool) -> tuple[int, bool]:
    """A directory fd CRIU inherits (images_dir_fd, work_dir_fd: CRIU reads
    and writes through it, so not O_PATH); whether this call made it."""
    made = False
    if create and not os.path.isdir(path):
        try:
            os.makedirs(path, 0o700)
            made = True
        except OSError as err:
            raise PyruncError(f"{what} {path}: {err.strerror.lower()}") from None
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY), made
    except OSError as err:
        raise PyruncError(f"{what} {path}: {err.strerror.lower()}") from None


def _ready_criu(parsed) -> str:
    from pyrunc.linux import criu

    path = criu.find_criu(parsed.globals.get("criu"))
    criu.check(path)
    return path


# ---- checkpoint

def _verb_args(parsed) -> tuple:
    """What checkpoint and restore take first: the id, the options, the
    store and CRIU's flags (checked before anything is looked at)."""
    return one_id(parsed), parsed.options, store_for(parsed), criu_flags(parsed.options)


def cmd_checkpoint(parsed) -> int:
    container_id, opts, st, flags = _verb_args(parsed)
    with st.lock(container_id):
        record = st.load_record(container_id)
        status.require("checkpoint", container_id, st.status(record))
        cfg = load_config(record.bundle)
        criu_path = _ready_criu(parsed)
        pre_dump = bool(opts.get("pre_dump"))
        leave_running = bool(opts.get("leave_running")) or pre_dump
        _checkpoint(criu_path, record, cfg, opts, flags, pre_dump, leave_running)
        if not leave_running:
            from pyrunc.ops.lifecycle import destroy_container

            destroy_container(st, record)
    return 0


def _checkpoint(criu_path: str, record, cfg, opts: dict, flags: dict, pre_dump: bool,
                leave_running: bool) -> None:
    from pyrunc.linux import criu
    from pyrunc.linux.cgroups import manager as cgroup_manager

    pid = record.pid
    images = _images_dir(opts.get("image_path"))
    images_fd, made_images = _open_dir(images, "--image-path", create=True)
    work_fd = images_fd
    log_path = os.path.join(os.path.abspath(opts.get("work_path") or images), "pre-dump.log" if pre_dump else "dump.log")
    ok = False
    try:
        if opts.get("work_path"):
            work_fd = _open_dir(os.path.abspath(opts["work_path"]), "--work-path", create=True)[0]
        request = {**flags, "images_dir_fd": images_fd, "work_dir_fd": work_fd, "pid": pid, "log_level": 4,
                   "log_file": os.path.basename(log_path), "root": record.rootfs, "manage_cgroups": True,
                   "notify_scripts": True, "leave_running": leave_running or None,
                   "orphan_pts_master": bool(cfg.process and cfg.process.terminal) or None,
                   "ext_mnt": external_mounts(cfg, restore=False,
                                              is_file=lambda p: _is_file(f"/proc/{pid}/root{p}"))}
        cgroups = cgroup_manager.from_state(record.cgroups)
        freezer = cgroups.paths.get("freezer") or cgroups.v2_path
        if freezer:
            request["freeze_cgroup"] = freezer
        net = cfg.linux.namespace("network")
        if net is not None and net.path:
            request["external"] = [f"net[{os.stat(net.path).st_ino}]:{EXT_NET_NS}"]
        if opts.get("parent_path"):
            request["parent_img"] = opts["parent_path"]
        if pre_dump or opts.get("parent_path"):
            request["track_mem"] = True
        if not pre_dump:
            request["external"] = request.get("external", []) + _write_descriptors(images, pid)
        session = criu.Session(criu_path, pass_fds=tuple({images_fd, work_fd}))
        try:
            resp = session.call({"type": criu.PRE_DUMP if pre_dump else criu.DUMP, "opts": request})
        finally:
            session.close()
        if not resp.get("success"):
            raise PyruncError(criu.failure_message("pre-dump" if pre_dump else "dump", resp, log_path))
        ok = True
    finally:
        os.close(images_fd)
        if work_fd != images_fd:
            os.close(work_fd)
        if not ok and made_images and (opts.get("work_path") or not os.path.exists(log_path)):
            # The images directory this command made goes again, unless it
            # holds CRIU's log, which the message names.
            store_mod.remove_tree(images)


def _is_file(path: str) -> bool:
    try:
        return not stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False


def _write_descriptors(images: str, pid: int) -> list[str]:
    """The init's fds 0-2 as CRIU will name them, saved for restore (runc's
    descriptors.json); returns the `external` entries they need. A pipe is
    pipe:[N]; a file on a mount outside the container (the /dev/null or log
    file `run -d` was given) is external, file[MNT_ID:INODE] in hex: CRIU
    cannot reopen it by path, so restore hands it the restorer's own fd."""
    visible = _mount_ids(pid)
    names, external = [], []
    for fd in range(3):
        try:
            name = os.readlink(f"/proc/{pid}/fd/{fd}")
            mnt_id = _fdinfo_mnt_id(pid, fd)
            if name.startswith("/") and mnt_id is not None and mnt_id not in visible:
                name = f"file[{mnt_id:x}:{os.stat(f'/proc/{pid}/fd/{fd}').st_ino:x}]"
                external.append(name)
        except OSError:
            name = ""
        names.append(name)
    store_mod.write_file(os.path.join(images, DESCRIPTORS_FILE), jsonlite.dumps(names).encode(), 0o600,
                         "--image-path")
    return external


def _mount_ids(pid: int) -> set[int]:
    with open(f"/proc/{pid}/mountinfo") as f:
        return {int(line.split(None, 1)[0]) for line in f if line.strip()}


def _fdinfo_mnt_id(pid: int, fd: int) -> int | None:
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    return None


# ---- restore

def cmd_restore(parsed) -> int:
    container_id, opts, st, flags = _verb_args(parsed)
    store_mod.validate_id(container_id)
    if st.exists(container_id):
        from pyrunc.errors import ContainerExists

        raise ContainerExists(container_id)
    cfg = load_config(opts.get("bundle"))
    images = _images_dir(opts.get("image_path"))
    if not os.path.isfile(os.path.join(images, "inventory.img")):
        raise PyruncError(f"--image-path {images}: no checkpoint there (no inventory.img)")
    if cfg.process and cfg.process.terminal and not opts.get("console_socket"):
        raise PyruncError("process.terminal is true, so --console-socket is required to restore it")
    criu_path = _ready_criu(parsed)
    pid = _restore(st, container_id, cfg, criu_path, images, opts, flags,
                   systemd=bool(parsed.globals.get("systemd_cgroup")), rootless=rootless_cgroups(parsed))
    if opts.get("detach"):
        return 0
    return _wait_in_foreground(st, container_id, pid)


def _restore(st, container_id: str, cfg, criu_path: str, images: str, opts: dict, flags: dict,
             systemd: bool, rootless: bool = False) -> int:
    from pyrunc.linux import _libc, criu
    from pyrunc.linux.cgroups import devices, manager as cgroup_manager
    from pyrunc.ops.create import UndoStack, _compile_seccomp, claim_container, new_record

    # CRIU restores the init's filter; `exec` needs the compiled one beside
    # the state, as after create (a bad profile fails here, before anything).
    seccomp_program = _compile_seccomp(cfg)
    manager = cgroup_manager.new_manager(cfg.linux.cgroups_path, container_id, systemd=systemd,
                                         annotations=cfg.annotations, rootless=rootless)
    restored = {}
    with UndoStack() as undo:
        console_fd = -1
        if opts.get("console_socket"):
            from pyrunc.linux import console

            console_fd = console.connect_console_socket(opts["console_socket"])
            undo.callback(os.close, console_fd)
        lock = claim_container(st, undo, container_id, cfg, manager)
        for warning in manager.prepare():
            log.warning(warning)
        _make_mountpoints(cfg)
        # CRIU rebuilds the mount namespace under this bind of the rootfs.
        root = st.path(container_id, CRIU_ROOT)
        os.mkdir(root, 0o700)
        _libc.mount(cfg.root_path, root, None, 0x1000 | 0x4000)  # MS_BIND | MS_REC
        undo.callback(_unmount, root)
        images_fd, _ = _open_dir(images, "--image-path", create=False)
        undo.callback(os.close, images_fd)
        work = os.path.abspath(opts.get("work_path") or images)
        work_fd, _ = _open_dir(work, "--work-path", create=bool(opts.get("work_path")))
        if work_fd != images_fd:
            undo.callback(os.close, work_fd)
        pass_fds = [images_fd, work_fd]
        request = {**flags, "images_dir_fd": images_fd, "work_dir_fd": work_fd, "log_level": 4,
                   "log_file": "restore.log", "root": root, "manage_cgroups": True, "notify_scripts": True,
                   "rst_sibling": True, "evasive_devices": True,
                   "orphan_pts_master": bool(console_fd >= 0) or None,
                   "ext_mnt": external_mounts(cfg, restore=True,
                                              is_file=lambda p: _is_file(os.path.join(cfg.root_path, p.lstrip("/")))),
                   "inherit_fd": _inherited_stdio(images)}
        net = cfg.linux.namespace("network")
        if net is not None and net.path:
            net_fd = os.open(net.path, os.O_RDONLY | os.O_CLOEXEC)
            undo.callback(os.close, net_fd)
            pass_fds.append(net_fd)
            request["inherit_fd"].append({"key": EXT_NET_NS, "fd": net_fd})
        session = criu.Session(criu_path, pass_fds=tuple(set(pass_fds)))
        undo.callback(_end_session, session)
        # The restorer joins the container's cgroups (made and limited
        # first), so the tree CRIU forks is born in them.
        rules = devices.container_device_rules(cfg.linux.resources.get("devices"), [d.path for d in cfg.linux.devices])
        for warning in manager.apply(session.pid, cfg.linux.resources, rules):
            log.warning(warning)
        manager.add_process(session.pid)
        request["cg_root"] = _cgroup_roots(session.pid)

        def on_notify(script: str, resp: dict, fds: list[int]) -> None:
            if script == "orphan-pts-master" and fds and console_fd >= 0:
                from pyrunc.linux import console

                console.send_fd(console_fd, fds[0], "/dev/ptmx")
            elif script == "post-restore":
                restored["pid"] = resp["notify"]["pid"]

        resp = session.call({"type": criu.RESTORE, "opts": request}, on_notify)
        if not resp.get("success") or "pid" not in restored:
            raise PyruncError(criu.failure_message("restore", resp, os.path.join(work, "restore.log")))
        pid = resp.get("restore", {}).get("pid") or restored["pid"]
        undo.callback(_kill_restored, pid)
        start_time = _start_time(pid)
        record = new_record(cfg, container_id, pid, start_time, manager, seccomp_program)
        if seccomp_program is not None:
            store_mod.write_file(st.path(container_id, store_mod.SECCOMP_FILE), seccomp_program.bpf, 0o600,
                                 container_id)
        st.save_init(container_id, pid, start_time, record.cgroups)
        st.save_record(record)
        if opts.get("pid_file"):
            store_mod.write_file(os.path.abspath(opts["pid_file"]), str(pid).encode(), 0o644, "--pid-file")
        undo.pop_all()
    session.close()
    _unmount(root)
    os.close(images_fd)
    if work_fd != images_fd:
        os.close(work_fd)
    if console_fd >= 0:
        os.close(console_fd)
    lock.close()
    return pid


def _source(cfg, mount) -> str:
    """A bind mount's source; a relative one is the bundle's, as for create."""
    return mount.source if os.path.isabs(mount.source) else os.path.join(cfg.bundle, mount.source)


def _make_mountpoints(cfg) -> None:
    """The bind mounts' mount points in the root filesystem, as create
    makes them (runc's restore too): a checkpoint restored on a fresh
    rootfs (Podman's --import) has none. Those under a tmpfs are left to
    CRIU, which restores the tmpfs with its contents."""
    from pyrunc.linux import mounts

    tmpfs = [m.destination.rstrip("/") + "/" for m in cfg.mounts if m.type == "tmpfs"]
    root_fd = os.open(cfg.root_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for m in cfg.mounts:
            if not m.is_bind or any(m.destination.startswith(prefix) for prefix in tmpfs):
                continue
            try:
                os.close(mounts.make_mountpoint(root_fd, m.destination, not mounts.is_directory_source(_source(cfg, m))))
            except OSError as err:
                raise PyruncError(f"mounts: {m.destination}: cannot make the mount point in the root filesystem: "
                                  f"{(err.strerror or str(err)).lower()}") from None
    finally:
        os.close(root_fd)


def _inherited_stdio(images: str) -> list[dict]:
    """runc's rule: the dumped init's stdio pipes, and files from outside
    the container (see _write_descriptors), become our fds 0-2: CRIU has
    no way to reopen them itself."""
    try:
        with open(os.path.join(images, DESCRIPTORS_FILE)) as f:
            names = jsonlite.loads(f.read())
    except (OSError, ValueError):
        return []
    return [{"key": name, "fd": fd} for fd, name in enumerate(names[:3])
            if isinstance(name, str) and name.startswith(("pipe:", "file["))]


def _cgroup_roots(pid: int) -> list[dict]:
    """Where the restorer is, per controller: CRIU puts the restored
    cgroups there (v2: one entry for the unified hierarchy)."""
    roots = []
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if not controllers:
                roots.append({"path": path})
            else:
                for ctrl in controllers.split(","):
                    if ctrl:
                        roots.append({"ctrl": ctrl.removeprefix("name="), "path": path})
    return roots


def _kill_restored(pid: int) -> None:
    """A restore that fails after CRIU made the tree: end it (its cgroup
    may not be one this restore made, so destroying that would not)."""
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # rst_sibling: the restored init is our child
    except (ProcessLookupError, ChildProcessError):
        pass


def _start_time(pid: int) -> int:
    from pyrunc.linux import proc

    value = proc.read_start_time(pid)
    if value is None:
        raise PyruncError(f"restored process {pid} exited at once")
    return value


def _end_session(session) -> None:
    try:
        session.close()
    except OSError:
        pass


def _unmount(root: str) -> None:
    from pyrunc.linux import _libc

    try:
        _libc.umount2(root, 2)  # MNT_DETACH
    except OSError:
        pass
    try:
        os.rmdir(root)
    except OSError:
        pass


def _wait_in_foreground(st, container_id: str, pid: int) -> int:
    """As `run`: the restored init is our child (rst_sibling); forward
    signals, return its exit code and delete the container."""
    from pyrunc.linux.proc import exit_code
    from pyrunc.ops.common import SignalForwarder, long_wait_ahead
    from pyrunc.ops.lifecycle import delete_container

    long_wait_ahead()
    forwarder = SignalForwarder(os.pidfd_open(pid))
    try:
        try:
            code = exit_code(os.waitpid(pid, 0)[1])
        except ChildProcessError:
            code = 255
    finally:
        forwarder.restore()
        try:
            delete_container(st, container_id, force=True)
        except PyruncError as err:
            log.warning(f"{container_id}: cleanup after restore: {err}")
    return code
