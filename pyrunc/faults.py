"""Fault injection for tests: `point(name)` kills the process there when the
environment variable PYRUNC_FAULT equals `name`.

It stands for a crash at the worst moment (power cut, OOM kill, `kill -9`
by an impatient engine): the process dies by SIGKILL and runs no cleanup,
so what it made (state dir, cgroups, a forked init) stays as it was. The
tests then check that `state` still tells the truth and `delete --force`
removes everything (tests/integration/test_faults.py).

Costs one os.environ.get per point when PYRUNC_FAULT is unset. A leaf
module: importable from every layer.

The points, in the order a command passes them:

  create (the `pyrunc create` / `run` process)
    create:after-state-dir      state dir made and locked, partial state saved
    create:after-cgroups        the other cgroup directories made (after the fork
                                with systemd, which puts the forked process in its unit)
    create:after-resources      linux.resources written into them
    create:after-fork           the init (or stage1) cloned by the launcher
    create:after-pid            the init's host pid known (cloned, or from stage1)
    create:before-hooks         prestart/createRuntime hooks about to run
    create:after-hooks          ... and done
    create:after-ready          the init reported ready (waits on exec.fifo)
    create:after-launch         back in ops.create with the init waiting
    create:before-state-save    state.json about to be written
    create:after-state-save     state.json written
    create:before-pid-file      --pid-file about to be written

  init (the forked stage1 and container init; kills that process, not the CLI)
    init:after-cgroup-join      stage1 (or the cloned init) joined the container's cgroups
    init:after-namespaces       stage1 (or the init cloned into its namespaces) has them all
    init:after-mounts           the init mounted the mounts[] entries and /dev
    init:before-pivot           about to pivot_root (or move the root)
    init:after-pivot            the root is the container's
    init:after-user-caps        user, capabilities, rlimits, cwd set
    init:before-ready           about to become the stub (which reports ready)

  start
    start:before-fifo-write     exec.fifo opened and unlinked, byte not written
    start:after-fifo-write      byte written (the container runs)

  exec (launcher.launch_exec)
    exec:after-namespaces-open  the init's namespaces opened
    exec:after-fork             the joiner forked
    exec:after-pid              the process's host pid received
    exec:after-ready            the process is about to exec

  delete
    delete:before-kill          state loaded, the init not yet killed
    delete:after-kill           the init is dead
    delete:after-cgroup-removal the cgroup directories removed
    delete:before-state-removal the state dir about to be removed

The container init is pid 1 of its pid namespace, which ignores a SIGKILL
it sends itself; there `point` falls back to os._exit(137), which is as
abrupt (no cleanup, no message).
"""

from __future__ import annotations

from pyrunc import oslite as os

ENV = "PYRUNC_FAULT"


def point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), 9)
        os._exit(137)  # pid 1 of a namespace survives its own SIGKILL
