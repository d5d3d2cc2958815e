"""Hostile input at full size (tests/unit/test_fuzz.py runs a few seconds'
worth in `make test`): config.json through `check` and the model, command
lines and container ids through the real command line, process.json and
exec flags against a running container, and a sample of fuzzed configs
through a real `create`.

The property: no traceback, no "internal error", exit code 0 or 1 (exec:
or the process's own), one line on failure, nothing left behind. An input
that breaks it is saved to tests/unit/fuzz_corpus/ (replayed by the unit
tests from then on) and the test fails naming it.
"""

from __future__ import annotations

import copy
import json
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import fuzzgen
from tests.stress import harness
from tests.stress.harness import scaled

SEED = int(os.environ.get("PYRUNC_FUZZ_SEED", "9"))
SEEDS = fuzzgen.seed_configs()


class Findings:
    """Inputs that broke the property, saved to the corpus as they come."""

    def __init__(self):
        self.items: list[str] = []
        self.tried = 0
        self._lock = threading.Lock()

    def add(self, kind: str, data: bytes, ext: str, why) -> None:
        with self._lock:
            name = fuzzgen.save_to_corpus(kind, data, ext)
            self.items.append(f"{name}: {why}")

    def check(self) -> None:
        print(f"\n{self.tried} inputs tried, {len(self.items)} broke the property")
        assert self.items == [], "saved to tests/unit/fuzz_corpus/:\n" + "\n".join(self.items[:20])


def test_fuzz_configs_through_check(tmp_path):
    findings = Findings()
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    for i in range(scaled(20000)):
        data = fuzzgen.config_document(random.Random(SEED * 1_000_000 + i), SEEDS)
        findings.tried += 1
        found = fuzzgen.config_problems(data, str(bundle))
        if found:
            findings.add("config", data, "json", found)
    findings.check()


def test_fuzz_command_lines(tmp_path):
    """The real command line (argv as bytes, every verb, run and exec too),
    four at a time, each with a scratch --root and working directory."""
    findings = Findings()

    def one(i):
        args = fuzzgen.argv(random.Random(SEED * 2_000_000 + i))
        cwd = tmp_path / f"w{i}"
        cwd.mkdir()
        rt = harness.Pyrunc(str(cwd / "root"))
        result = rt(*args, cwd=str(cwd), timeout=60)
        found = result.problems()
        left = rt.ids()
        if left:
            rt.force_delete_all()
            found.append(f"left containers {left}")
        return args, result, found

    with ThreadPoolExecutor(4) as pool:
        for args, result, found in pool.map(one, range(scaled(3000))):
            findings.tried += 1
            if found:
                findings.add("argv", json.dumps(args).encode(), "json", (found, result.err[-300:]))
    findings.check()


def test_fuzz_container_ids(rt, bundles):
    """Every byte class as an id, through every verb that takes one; the
    valid ones through a real create, state and delete."""
    findings = Findings()
    ids = fuzzgen.container_ids(random.Random(SEED), scaled(600, minimum=60))
    bundle = bundles.get("ids", bundles.config("ids"))
    verbs = [["state"], ["kill"], ["start"], ["delete"], ["exec"], ["pause"], ["ps"], ["events", "--stats"],
             ["update", "--memory", "1m"], ["create", "--bundle", bundle]]
    for container_id in ids:
        for verb in verbs:
            args = [*verb, container_id] + (["true"] if verb == ["exec"] else [])
            try:
                result = rt(*args)
            except ValueError:  # a NUL byte: argv cannot hold it
                continue
            findings.tried += 1
            found = result.problems()
            if verb[0] == "create" and result.rc == 0:
                state = rt("state", container_id)
                if state.rc != 0 or json.loads(state.out)["status"] != "created":
                    found.append(f"state after create: {state}")
                deleted = rt("delete", "--force", container_id)
                if deleted.rc != 0:
                    found.append(f"delete: {deleted}")
            left = harness.leftovers(rt, [bundles.base])
            if left:
                found.append(f"left {left}")
                harness.scrub(rt)
            if found:
                findings.add("argv", json.dumps(args).encode(), "json", found)
    findings.check()


def rich_config(bundles, container_id: str, data_dir: str) -> dict:
    """A busybox config using most of what a container can have: the seed
    the create sample mutates."""
    config = bundles.config(container_id)
    process = config["process"]
    process["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 1000], "umask": 18}
    process["cwd"] = "/tmp/work"
    process["env"].append("FUZZ=1")
    process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
                          {"type": "RLIMIT_NPROC", "soft": 200, "hard": 200}]
    process["oomScoreAdj"] = 100
    process["capabilities"]["bounding"].append("CAP_CHOWN")
    config["hostname"] = "fuzz"
    config["domainname"] = "example.test"
    config["mounts"] += [
        {"destination": "/data", "type": "bind", "source": data_dir, "options": ["rbind", "ro"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1777"]},
    ]
    linux = config["linux"]
    linux["resources"].update({"memory": {"limit": 256 << 20}, "pids": {"limit": 200}, "cpu": {"shares": 512}})
    linux["devices"] = [{"path": "/dev/fuzz0", "type": "c", "major": 1, "minor": 3, "fileMode": 438}]
    linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": ["kexec_load", "mount"], "action": "SCMP_ACT_ERRNO"}]}
    linux["rootfsPropagation"] = "rprivate"
    config["annotations"] = {"fuzz": "yes"}
    return config


NEW_NAMESPACES = ["pid", "mount", "network", "ipc", "uts"]


def contain(doc, bundles, container_id: str, data_dir: str):
    """What a fuzzed config may not change, so that it cannot reach past its
    own container: the root, the cgroup, no hooks or sysctls, no joined
    namespaces, private pid/mount/network/ipc/uts namespaces, bind sources
    inside the scratch dir."""
    if not isinstance(doc, dict):
        return doc
    doc.pop("hooks", None)
    doc["root"] = {"path": bundles.rootfs, "readonly": bool((doc.get("root") or {}).get("readonly", True))
                   if isinstance(doc.get("root"), dict) else True}
    linux = doc.get("linux") if isinstance(doc.get("linux"), dict) else {}
    doc["linux"] = linux
    linux["cgroupsPath"] = f"/{harness.CGROUP_PARENT}/{container_id}"
    linux.pop("sysctl", None)
    if linux.get("rootfsPropagation") not in ("private", "rprivate", "slave", "rslave", None):
        linux["rootfsPropagation"] = "rprivate"
    namespaces = linux.get("namespaces") if isinstance(linux.get("namespaces"), list) else []
    namespaces = [n for n in namespaces if isinstance(n, dict) and "path" not in n]
    have = {n.get("type") for n in namespaces if isinstance(n.get("type"), str)}
    linux["namespaces"] = namespaces + [{"type": t} for t in NEW_NAMESPACES if t not in have]
    for mount in doc.get("mounts") if isinstance(doc.get("mounts"), list) else ():
        if isinstance(mount, dict):
            source = mount.get("source")
            if not isinstance(source, str) or source.startswith("/") and not source.startswith(bundles.base):
                if mount.get("type") == "bind" or "bind" in str(mount.get("options")):
                    mount["source"] = data_dir
    return doc


def test_fuzz_create_sample(rt, bundles, tmp_path):
    """Fuzzed configs through a real create; a container that is created
    must say so, start or fail cleanly, and delete --force must leave
    nothing."""
    findings = Findings()
    data_dir = str(tmp_path / "data")
    os.mkdir(data_dir)
    base = rich_config(bundles, "seed", data_dir)
    seeds = [base, bundles.config("seed")]
    created = 0
    for i in range(scaled(1000, minimum=20)):
        rng = random.Random(SEED * 3_000_000 + i)
        container_id = f"f{i}"
        doc = contain(fuzzgen.mutate(rng, copy.deepcopy(rng.choice(seeds)), rounds=rng.choice([0, 1, 1, 2, 3])),
                      bundles, container_id, data_dir)
        data = json.dumps(doc).encode("utf-8", "surrogatepass") if rng.random() < 0.85 else fuzzgen.serialize(rng, doc)
        bundle = tmp_path / f"b{i % 4}"
        bundle.mkdir(exist_ok=True)
        (bundle / "config.json").write_bytes(data)
        findings.tried += 1
        result = rt("create", "--bundle", str(bundle), container_id)
        found = result.problems()
        if result.rc == 0:
            created += 1
            state = rt("state", container_id)
            if state.rc != 0 or json.loads(state.out)["status"] != "created":
                found.append(f"state after create: {state}")
            if rng.random() < 0.5:
                found += [f"start: {p}" for p in rt("start", container_id).problems()]
            deleted = rt("delete", "--force", container_id)
            if deleted.rc != 0 or deleted.problems():
                found.append(f"delete --force: {deleted}")
        left = harness.wait_clean(rt, [bundles.base, str(tmp_path)], timeout=5)
        if left:
            found.append(f"left {left}")
            harness.scrub(rt)
        if found:
            findings.add("config", data, "json", (found, result.err[-300:]))
    print(f"\n{created} of {findings.tried} fuzzed configs created a container")
    findings.check()


@pytest.fixture
def running(rt, bundles):
    """A running container to exec into."""
    bundle = bundles.get("exec-target", bundles.config("exec-target"))
    assert rt("run", "--detach", "--bundle", bundle, "exec-target").rc == 0
    yield "exec-target"
    rt("delete", "--force", "exec-target")


EXEC_FLAGS = ["--cwd", "--env", "-e", "--tty", "-t", "--user", "-u", "--additional-gids", "-g", "--detach", "-d",
              "--pid-file", "--process-label", "--apparmor", "--no-new-privs", "--cap", "-c", "--preserve-fds",
              "--cgroup", "--ignore-paused", "--console-socket", "--nosuch"]


def exec_argv(rng: random.Random, container_id: str) -> list[str]:
    args = ["exec"]
    for _ in range(rng.randint(0, 4)):
        flag = rng.choice(EXEC_FLAGS)
        value = rng.choice(["0", "1000", "1000:1000", "x:y", "-1", "/", "/tmp", "relative", "A=b", "=", "",
                            "CAP_KILL", "CAP_NOPE", "3", "99999", "memory:/sub", "/sub", "pidf", "é",
                            fuzzgen.random_string(rng, allow_surrogates=False).replace("/", "_")[:100]])
        if flag in ("--tty", "-t", "--detach", "-d", "--no-new-privs", "--ignore-paused"):
            args.append(flag)
        else:
            args += [flag, value] if rng.random() < 0.7 else [f"{flag}={value}"]
    command = rng.choice([["true"], ["sh", "-c", "exit 3"], ["no-such"], ["/etc/passwd"], ["sleep", "0.01"],
                          ["sh", "-c", "echo $0 >&2", fuzzgen.random_string(rng, allow_surrogates=False)[:50]]])
    return args + [container_id] + command


def test_fuzz_exec(rt, running, tmp_path):
    """process.json documents and exec flags against a running container;
    the container survives them all."""
    findings = Findings()
    n = scaled(1500, minimum=40)
    for i in range(n):
        rng = random.Random(SEED * 4_000_000 + i)
        if i % 2:
            data = fuzzgen.process_document(rng, SEEDS)
            path = tmp_path / "process.json"
            path.write_bytes(data)
            args = ["exec"] + (["--detach"] if rng.random() < 0.3 else []) + ["--process", str(path), running]
        else:
            args = exec_argv(rng, running)
            data = json.dumps(args).encode()
        findings.tried += 1
        result = rt(*args, timeout=60, cwd=str(tmp_path))
        found = result.problems(allowed=range(256), process_code=True)
        if result.rc == "timeout":
            found.append("timeout")
        if i % 25 == 0 or found:
            state = rt("state", running)
            if state.rc != 0 or json.loads(state.out)["status"] != "running":
                found.append(f"container after exec: {state}")
        if found:
            findings.add("process" if i % 2 else "argv", data, "json", (found, result.err[-300:]))
            if "container after exec" in str(found):
                break
    findings.check()
