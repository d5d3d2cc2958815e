#!/bin/bash
# VM job: the guest is the host this lane promises (a regression in the
# image would otherwise make every other job test the wrong thing): systemd
# as PID 1 and running, pure cgroup v2 with the controllers pyrunc's tests
# use, AppArmor enabled, and the engines and tools later jobs need.
passed=0 failed=0
check() {  # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@" >/dev/null 2>&1; then
        passed=$((passed + 1)); echo "ok   $what"
    else
        failed=$((failed + 1)); echo "FAIL $what"
    fi
}
check "systemd is PID 1"                        grep -qx systemd /proc/1/comm
check "systemd reports the system running"      test "$(systemctl is-system-running)" = running
check "/sys/fs/cgroup is cgroup2 (pure v2)"     test "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs
check "no cgroup v1 hierarchy is mounted"       bash -c '! grep -q " cgroup " /proc/self/mounts'
for c in cpuset cpu io memory hugetlb pids; do
    check "the $c controller is available"       grep -qw "$c" /sys/fs/cgroup/cgroup.controllers
done
check "the job runs in a systemd unit's cgroup" grep -q '^0::/system.slice/vm-job.service$' /proc/self/cgroup
check "AppArmor is enabled"                     test "$(cat /sys/module/apparmor/parameters/enabled)" = Y
check "AppArmor is an active LSM"               grep -qw apparmor /sys/kernel/security/lsm
check "the guest has 2 or more CPUs"           test "$(nproc)" -ge 2
for tool in runc crun criu podman containerd dockerd busybox unshare; do
    check "$tool is installed"                   command -v "$tool"
done
echo "passed=$passed failed=$failed skipped=0" > "$VM_RESULT"
[ "$failed" = 0 ]
