"""OCI hooks: run one program with the container's state on its stdin.

Where each kind runs (runtime-spec config.md, "POSIX-platform Hooks"):
    prestart, createRuntime   by `create`, in the runtime's namespaces, once
                              the container's namespaces and mounts exist
    createContainer           by the container init, in the container's
                              namespaces, before pivot_root
    startContainer            by the container init, after `start`, just
                              before the program is executed
    poststart                 by `start`, after the program was started
    poststop                  by `delete`, after the container is gone
A failing prestart/createRuntime/createContainer/startContainer hook fails
the operation; poststart and poststop failures are warnings (spec 1.2).
The state's status is what runtime.md says for that point: "created" for
prestart, createRuntime, createContainer (lifecycle steps 3-5 come after the
environment is created, step 2) and startContainer, "running" for
poststart, "stopped" for poststop.

Each hook gets `args` as its argv (its `path` when empty), the state JSON on
stdin; its output is captured and quoted in the error when it fails.
`timeout` kills it. Its environment is exactly its `env` when it has one;
without, what runc's hooks inherit: the runtime's environment (the
caller's), and for createContainer and startContainer, which runc runs
from its init, the container process's. Its working directory is runc's
too: the bundle for the hooks of the runtime's namespaces (runc's create
and run enter it), the root filesystem for createContainer (before
pivot_root, so `mount --bind x ./lib/x` lands in the container), the
process's cwd for startContainer.
Imports: errors, jsonlite.
"""

from __future__ import annotations

import select
import time

from pyrunc import oslite as os
from pyrunc import jsonlite
from pyrunc.errors import PyruncError


class HookError(PyruncError):
    pass


def state_document(oci_version: str, container_id: str, status: str, pid: int, bundle: str,
                   annotations: dict | None) -> dict:
    """The state hooks (and a seccomp listener) get: the runtime-spec's
    state, with the pid as the hook's kind needs it."""
    return {"ociVersion": oci_version, "id": container_id, "status": status, "pid": pid, "bundle": bundle,
            "annotations": annotations or {}}


def state_json(state: dict) -> bytes:
    return jsonlite.dumps(state).encode()


def run_hooks(kind: str, hooks, state: dict, cwd: str = "", inherited_env=None) -> None:
    """Run every hook of `kind` in order, in `cwd` (when it can be
    entered), those without `env` with `inherited_env` (a list of NAME=value;
    None: the runtime's own). The first failure raises HookError."""
    if not hooks:
        return
    data = state_json(state)
    for i, hook in enumerate(hooks):
        run_hook(hook, data, f"hooks.{kind}[{i}]", cwd, inherited_env)


def run_hooks_warning_only(kind: str, hooks, state: dict, warn, cwd: str = "") -> None:
    """Run every hook of `kind`; failures go to `warn(message)` and the rest run."""
    if not hooks:
        return
    data = state_json(state)
    for i, hook in enumerate(hooks):
        try:
            run_hook(hook, data, f"hooks.{kind}[{i}]", cwd)
        except HookError as err:
            warn(str(err))


def env_dict(entries) -> dict[str, str]:
    env = {}
    for entry in entries:
        key, _, value = entry.partition("=")
        env[key] = value
    return env


def run_hook(hook, stdin: bytes, where: str, cwd: str = "", inherited_env=None) -> None:
    argv = list(hook.args) or [hook.path]
    if hook.env is not None:
        env = env_dict(hook.env)
    else:
        env = os.environ if inherited_env is None else env_dict(inherited_env)
    in_read, in_write = os.pipe()
    out_read, out_write = os.pipe()
    # posix_spawn has no working directory of its own: this process's, for
    # the instant of the call (it is single-threaded).
    back = _enter(cwd)
    try:
        pid = os.posix_spawn(hook.path, argv, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, in_read, 0),
            (os.POSIX_SPAWN_DUP2, out_write, 1),
            (os.POSIX_SPAWN_DUP2, out_write, 2),
        ])
    except OSError as err:
        for fd in (in_read, in_write, out_read, out_write):
            os.close(fd)
        raise HookError(f'{where}: run "{hook.path}": {err.strerror.lower()}') from None
    finally:
        if back >= 0:
            os.fchdir(back)
            os.close(back)
    os.close(in_read)
    os.close(out_write)
    collect(hook, pid, in_write, out_read, stdin, where)


def _enter(cwd: str) -> int:
    """chdir to `cwd`; an fd of where this process was, or -1 when it did
    not move (no `cwd`, or one gone, as a bundle may be by poststop)."""
    if not cwd:
        return -1
    back = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(cwd)
    except OSError:
        os.close(back)
        return -1
    return back


def collect(hook, pid: int, in_fd: int, out_fd: int, stdin: bytes, where: str) -> None:
    """The rest of a hook that runs as `pid` (our child), its stdin the pipe
    `in_fd`, its output the pipe `out_fd` (both closed here): feed it, wait
    for it within its timeout, raise HookError if it failed."""
    output, status = _feed_and_collect(pid, in_fd, out_fd, stdin, hook.timeout)
    if status is None:
        raise HookError(f'{where}: "{hook.path}" ran past its timeout of {hook.timeout}s and was killed')
    if status != 0:
        if os.WIFSIGNALED(status):
            how = f"was killed by signal {os.WTERMSIG(status)}"
        else:
            how = f"exited with status {os.WEXITSTATUS(status)}"
        text = output.decode("utf-8", "replace").strip().replace("\n", " | ")
        raise HookError(f'{where}: "{hook.path}" {how}' + (f"; output: {text[:500]}" if text else ""))


MAX_OUTPUT = 65536


def _feed_and_collect(pid: int, in_fd: int, out_fd: int, data: bytes, timeout: int | None) -> tuple[bytes, int | None]:
    """Write the state to the hook's stdin and collect its output while the
    hook *process* runs: it is done when it exits (a pidfd says so), not
    when its output pipe closes (a child it left behind may hold the pipe open,
    or it may close its end and go on running). Kill it at the timeout.
    Returns (output, wait status), the status None when it timed out."""
    deadline = time.monotonic() + timeout if timeout else None
    chunks: list[bytes] = []
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(out_fd, select.POLLIN)
    os.set_blocking(in_fd, False)
    os.set_blocking(out_fd, False)
    poller.register(in_fd, select.POLLOUT)
    pending = memoryview(data)
    writing, reading = True, True
    try:
        while True:
            wait_ms = None
            if deadline is not None:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
            events = dict(poller.poll(wait_ms))
            if not events:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return b"".join(chunks), None
            if writing and in_fd in events:
                try:
                    if pending:
                        pending = pending[os.write(in_fd, pending):]
                except (BrokenPipeError, BlockingIOError):
                    pending = memoryview(b"")
                if not pending or events[in_fd] & (select.POLLERR | select.POLLHUP):
                    poller.unregister(in_fd)
                    os.close(in_fd)
                    writing = False
            if reading and out_fd in events:
                reading = _read_some(out_fd, chunks, 1)
                if not reading:
                    poller.unregister(out_fd)
            if pidfd in events:
                _, status = os.waitpid(pid, 0)
                if reading:
                    # What it wrote before exiting; never wait for more.
                    _read_some(out_fd, chunks, MAX_OUTPUT // 4096)
                return b"".join(chunks), status
    finally:
        if writing:
            os.close(in_fd)
        os.close(out_fd)
        os.close(pidfd)


def _read_some(fd: int, chunks: list[bytes], reads: int) -> bool:
    """At most `reads` reads of what the pipe holds now; False at EOF."""
    for _ in range(reads):
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        if sum(len(c) for c in chunks) < MAX_OUTPUT:
            chunks.append(chunk)
    return True
