"""The command line in odd conditions, with real containers (issue 13,
items 8-9): a log that cannot be written, stdio the caller closed, files
that are not files."""

from __future__ import annotations

import os
import subprocess

from tests.integration.test_run import sh


def test_a_warning_the_log_cannot_take_does_not_fail_create(runtime, bundle):
    # As runc: the container is created; the warning and the log's failure go to stderr.
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["no_such_syscall_2099", "mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    sh(bundle, "sleep 60")
    result = runtime("--log", "/dev/full", "create", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 0, result
    assert "cannot write log file /dev/full" in result.stderr and "Traceback" not in result.stderr
    assert runtime.state(bundle.id)["status"] == "created"


def test_stdio_the_caller_closed_is_dev_null_in_the_container(runtime, bundle):
    """With fds 1 and 2 closed, the first files pyrunc opened took their
    numbers and the container got them as its stdout and stderr."""
    bundle.config["root"]["readonly"] = False
    # The shell's own fds 1 and 2 (its commands' are redirected to the file).
    sh(bundle, 'echo "$(readlink /proc/$$/fd/1) $(readlink /proc/$$/fd/2)" > /tmp/fds')
    cmd = [*runtime.cmd[:3], "--log", os.path.join(bundle.path, "log"), *runtime.cmd[3:],
           "run", "--bundle", bundle.path, bundle.id]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=None, stderr=None, timeout=60,
                          preexec_fn=lambda: (os.close(1), os.close(2)))
    assert proc.returncode == 0
    with open(os.path.join(bundle.rootfs, "tmp", "fds")) as f:
        assert f.read().split() == ["/dev/null", "/dev/null"]
    assert runtime.ids() == []


def test_process_json_and_resources_that_are_not_files_are_one_line(runtime, bundle):
    sh(bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    for args in (("exec", "--process", "/dev/zero", bundle.id), ("update", "--resources", "/dev/zero", bundle.id)):
        result = runtime(*args, timeout=30)
        assert result.returncode == (255 if args[0] == "exec" else 1), result
        assert result.stderr.count("\n") == 1 and "not a regular file (a character device)" in result.stderr, result
    big = os.path.join(bundle.path, "big.json")
    with open(big, "wb") as f:
        f.truncate(17 << 20)
    result = runtime("update", "--resources", big, bundle.id)
    assert result.returncode == 1 and "larger than 16 MiB" in result.stderr, result
    assert runtime.state(bundle.id)["status"] == "running"
