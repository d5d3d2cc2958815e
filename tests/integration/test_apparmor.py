"""AppArmor on a host that has it (the VM lane's): process.apparmorProfile
and `exec --apparmor` put the container's processes under the profile, the
profile's rules hold inside, and a profile the kernel does not know is a
clear error that leaves nothing behind. (A host without AppArmor refuses
the setting: test_security.py.)

The tests load a profile of their own, named after this session, and
unload it at the end; no other profile is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.integration.test_run import sh

PROFILE = f"pyrunc-test-{os.getpid()}"
SECRET = "/denied-by-profile"
# Everything a busybox container does, but reading one file.
PROFILE_TEXT = f"""
profile {PROFILE} flags=(attach_disconnected,mediate_deleted) {{
  file,
  capability,
  network,
  unix,
  signal,
  ptrace,
  mount,
  umount,
  pivot_root,
  deny {SECRET} r,
}}
"""


def _apparmor_skip_reason() -> str | None:
    try:
        if open("/sys/module/apparmor/parameters/enabled").read().strip() != "Y":
            return "AppArmor is not enabled on this host"
    except OSError:
        return "AppArmor is not enabled on this host"
    if not os.path.exists("/sys/kernel/security/apparmor/profiles"):
        return "no AppArmor interface at /sys/kernel/security/apparmor"
    if not shutil.which("apparmor_parser"):
        return "needs apparmor_parser (apt-get install apparmor)"
    return None


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    reason = _apparmor_skip_reason()
    if reason:
        pytest.skip(reason)
    path = tmp_path_factory.mktemp("apparmor") / PROFILE
    path.write_text(PROFILE_TEXT)
    subprocess.run(["apparmor_parser", "--replace", str(path)], check=True, capture_output=True)
    try:
        yield PROFILE
    finally:
        subprocess.run(["apparmor_parser", "--remove", str(path)], check=False, capture_output=True)


def _with_secret(bundle):
    with open(os.path.join(bundle.rootfs, SECRET.lstrip("/")), "w") as f:
        f.write("secret-content\n")


def test_container_runs_under_its_apparmor_profile(runtime, bundle, profile):
    _with_secret(bundle)
    sh(bundle, f"cat /proc/self/attr/current; echo; cat {SECRET} 2>/dev/null || echo read-denied",
       apparmorProfile=profile)
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout.split("\n")[0] == f"{profile} (enforce)", result
    assert "read-denied" in result.stdout and "secret-content" not in result.stdout, result


def test_container_without_a_profile_is_unconfined(runtime, bundle, profile):
    # The control for the test above: the same file is readable unconfined.
    _with_secret(bundle)
    sh(bundle, f"cat /proc/self/attr/current; echo; cat {SECRET}")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout.split("\n")[0] == "unconfined", result
    assert "secret-content" in result.stdout, result


def test_exec_apparmor_flag_confines_the_new_process(runtime, bundle, profile):
    _with_secret(bundle)
    sh(bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    result = runtime.ok("exec", "--apparmor", profile, bundle.id, "sh", "-c",
                        f"cat /proc/self/attr/current; echo; cat {SECRET} 2>/dev/null || echo read-denied")
    assert result.stdout.split("\n")[0] == f"{profile} (enforce)", result
    assert "read-denied" in result.stdout, result
    # An exec without the flag runs as the container's init does: unconfined here.
    plain = runtime.ok("exec", bundle.id, "cat", "/proc/self/attr/current")
    assert plain.stdout.strip() == "unconfined", plain


def test_exec_inherits_the_containers_profile(runtime, bundle, profile):
    sh(bundle, "sleep 60", apparmorProfile=profile)
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    result = runtime.ok("exec", bundle.id, "cat", "/proc/self/attr/current")
    assert result.stdout.strip() == f"{profile} (enforce)", result


def test_unknown_apparmor_profile_is_a_clear_error(runtime, bundle, profile):
    sh(bundle, "echo ran", apparmorProfile=f"{profile}-not-loaded")
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 1 and result.stdout == "", result
    assert "process.apparmorProfile" in result.stderr and result.stderr.count("\n") == 1, result
    assert runtime.ids() == []
