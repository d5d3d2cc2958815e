"""Every failure: one clear line, exit 1, and nothing left behind.

The `runtime` fixture checks after each test that no state dir, cgroup or
mount remains; these tests also check that no container process survives.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.integration.test_run import sh


def processes_in_bundle(bundle) -> list[int]:
    """Pids whose root or cwd is inside the bundle (a leaked init would be)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        for link in ("root", "cwd"):
            try:
                if os.readlink(f"/proc/{name}/{link}").startswith(bundle.path):
                    found.append(int(name))
                    break
            except OSError:
                pass
    return found


def assert_clean_failure(result, runtime, bundle, message: str) -> None:
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0], lines[0]
    assert runtime.ids() == []
    assert processes_in_bundle(bundle) == []


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["process"].__setitem__("args", []), "config.json: process.args: must not be empty"),
    (lambda c: c["process"].__setitem__("cwd", "relative"), "config.json: process.cwd: must be an absolute path"),
    (lambda c: c.__setitem__("ociVersion", "2.0.0"), "config.json: ociVersion: must be a runtime-spec version"),
    (lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_FOO", "soft": 1, "hard": 1}),
     'unknown rlimit type "RLIMIT_FOO"'),
    (lambda c: c["linux"]["namespaces"].append({"type": "pid"}), 'duplicate namespace type "pid"'),
    (lambda c: c["linux"].__setitem__("namespaces", [n for n in c["linux"]["namespaces"] if n["type"] != "uts"]),
     "config.json: hostname: requires a private UTS namespace"),
])
def test_invalid_config_creates_nothing(runtime, bundle, mutate, message):
    mutate(bundle.config)
    bundle.write()
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert_clean_failure(result, runtime, bundle, message)


def test_malformed_json_names_line_and_column(runtime, bundle):
    with open(os.path.join(bundle.path, "config.json"), "w") as f:
        f.write('{\n  "ociVersion": "1.0.2",\n  "process": {\n')
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert_clean_failure(result, runtime, bundle, "config.json: line 4 column 1:")


def test_missing_bundle_and_config_name_the_path(runtime, bundle, tmp_path):
    missing = str(tmp_path / "nope")
    result = runtime("create", "--bundle", missing, bundle.id)
    assert_clean_failure(result, runtime, bundle, f"bundle {missing}: no such directory")
    os.unlink(os.path.join(bundle.path, "config.json"))
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert_clean_failure(result, runtime, bundle, f"{bundle.path}/config.json: no such file")


def test_program_not_found_is_a_create_error(runtime, bundle):
    bundle.config["process"]["args"] = ["no-such-program"]
    bundle.write()
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert_clean_failure(result, runtime, bundle, 'exec: "no-such-program": executable file not found in $PATH')


def test_program_not_executable_is_a_create_error(runtime, bundle):
    bundle.config["process"]["args"] = ["/etc/passwd"]
    bundle.write()
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    assert_clean_failure(result, runtime, bundle, 'exec: "/etc/passwd": permission denied')


def test_failing_mount_undoes_everything(runtime, bundle, tmp_path):
    bundle.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(tmp_path / "missing"),
                                    "options": ["rbind"]})
    bundle.write()
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert_clean_failure(result, runtime, bundle, 'mount "')


def test_kernel_refusal_names_the_mount(runtime, bundle):
    bundle.config["mounts"].append({"destination": "/bad", "type": "no-such-fs", "source": "x"})
    bundle.write()
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert_clean_failure(result, runtime, bundle, 'mount "x" on "/bad": no such device')


def test_unsettable_rlimit_names_the_field(runtime, bundle):
    # Raising the hard RLIMIT_NOFILE past the system maximum fails even for root.
    limit = int(open("/proc/sys/fs/nr_open").read()) + 1
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": limit, "hard": limit}]
    bundle.write()
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert_clean_failure(result, runtime, bundle, "process.rlimits[0]: setrlimit RLIMIT_NOFILE:")


def test_missing_cwd_parent_is_created(runtime, bundle):
    bundle.config["process"]["cwd"] = "/a/b/c"
    sh(bundle, "pwd")
    assert runtime.ok("run", "--bundle", bundle.path, bundle.id).stdout == "/a/b/c\n"


def test_terminal_without_console_socket_is_refused_before_anything(runtime, bundle):
    bundle.config["process"]["terminal"] = True
    bundle.write()
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert_clean_failure(result, runtime, bundle, "--console-socket is required")


def test_failed_create_writes_one_json_error_line(runtime, bundle, tmp_path):
    from datetime import datetime

    bundle.config["process"]["args"] = ["no-such-program"]
    bundle.write()
    log = tmp_path / "log.json"
    result = runtime("create", "--bundle", bundle.path, bundle.id,
                     global_args=("--log", str(log), "--log-format", "json"))
    assert result.returncode == 1
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 1
    assert records[0]["level"] == "error"
    assert "executable file not found" in records[0]["msg"]
    datetime.fromisoformat(records[0]["time"].replace("Z", "+00:00"))
    assert runtime.ids() == []


def test_invalid_container_ids_are_refused(runtime, bundle):
    for bad in ("a/b", "..", ".", "x" * 1025, "sp ace"):
        result = runtime("create", "--bundle", bundle.path, bad)
        assert result.returncode == 1, bad
        assert "invalid container id" in result.stderr
    assert runtime.ids() == []


@pytest.mark.parametrize("cgroups_path", ["/", "/.."])
def test_cgroups_path_at_hierarchy_root_is_refused(runtime, bundle, cgroups_path):
    bundle.config["linux"]["cgroupsPath"] = cgroups_path
    bundle.write()
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert_clean_failure(result, runtime, bundle, "linux.cgroupsPath: resolves to the root")
