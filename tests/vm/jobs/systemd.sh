#!/bin/bash
# VM job: the systemd cgroup driver. The integration modules that exercise
# cgroups and the verbs that use them, with every pyrunc command given
# --systemd-cgroup and every container a scope in the session's slice
# (PYRUNC_TEST_CGROUP_DRIVER=systemd, see tests/integration/conftest.py):
# the same assertions as with cgroupfs, on the files of the scope; and
# test_systemd.py, the driver's own tests. Then `create --systemd-cgroup`
# timed beside runc's (tests/vm/guest/create_timing.py, in the job's output).
PYRUNC_TEST_CGROUP_DRIVER=systemd "$PY" -m pytest -p no:cacheprovider -q -ra --junitxml="$VM_OUT/junit.xml" \
    tests/integration/test_cgroups.py tests/integration/test_cgroup_devices_ebpf.py \
    tests/integration/test_lifecycle.py tests/integration/test_exec.py tests/integration/test_run.py \
    tests/integration/test_systemd.py
rc=$?
"$PY" tests/vm/guest/counts.py junit "$VM_OUT/junit.xml" > "$VM_RESULT"
"$PY" tests/vm/guest/create_timing.py "$PYRUNC" "$(command -v runc)"
exit $rc
