#!/bin/bash
# VM job: the engines on a systemd host on their default cgroup manager,
# systemd, with pyrunc as their runtime: Podman (cgroup_manager = "systemd",
# Debian's default) and Docker (native.cgroupdriver=systemd, through
# containerd's runc shim as containerd with SystemdCgroup = true runs it).
# Each: `run --rm busybox echo hi there`, a detached container with memory
# and pids limits (seen in its systemd scope's cgroup files and properties),
# ps, exec, stop. Then containerd's CRI plugin with SystemdCgroup = true
# (tests/e2e/cri-e2e.py: a pod, a container, exec, update, stop), as the
# kubelet drives it. The image is imported from a busybox rootfs (no network).
# Kept small: the lane's time counts.
set -u
passed=0 failed=0
W=$(mktemp -d /var/tmp/engines-XXXXXX)
check() {  # check DESCRIPTION COMMAND...
    local what=$1; shift
    local run=(timeout 180)  # an engine that hangs fails its check, not the lane
    declare -F "$1" >/dev/null && run=()
    if out=$("${run[@]}" "$@" 2>&1); then
        passed=$((passed + 1)); echo "ok   $what"
    else
        failed=$((failed + 1)); echo "FAIL $what"; echo "$out" | tail -5 | sed 's/^/     /'
    fi
}
# scope_has PID [PIDS_MAX]: the container's init is in a systemd scope whose
# memory.max (and pids.max, unless "") are the limits given, and systemd
# knows the memory limit.
scope_has() {
    local pid=$1 pids=${2-50} line path unit
    line=$(cat "/proc/$pid/cgroup") || return 1
    path=${line#0::}; unit=${path##*/}
    echo "cgroup $path"
    case $unit in *.scope) ;; *) echo "not a scope: $unit"; return 1 ;; esac
    [ "$(cat "/sys/fs/cgroup$path/memory.max")" = 67108864 ] || { echo "memory.max"; return 1; }
    [ -z "$pids" ] || [ "$(cat "/sys/fs/cgroup$path/pids.max")" = "$pids" ] || { echo "pids.max"; return 1; }
    props=$(systemctl show "$unit" -p MemoryMax -p Delegate)
    echo "$props"
    for want in MemoryMax=67108864 Delegate=yes; do
        grep -qx "$want" <<< "$props" || return 1
    done
}
"$PY" -c "from tests.busybox import make_rootfs; make_rootfs('$W/rootfs')" || exit 1
tar -C "$W/rootfs" -cf "$W/busybox.tar" .

# ---- Podman, rootful, its stock containers.conf (cgroup_manager = "systemd")
P=(podman --runtime "$PYRUNC")
check "podman: its cgroup manager is systemd" bash -c '[ "$(podman info --format "{{.Host.CgroupManager}}")" = systemd ]'
check "podman: import the busybox image" podman import "$W/busybox.tar" localhost/busybox
check "podman: run --rm busybox echo hi there" bash -c \
    '[ "$("$@" run --rm --network none localhost/busybox echo hi there)" = "hi there" ]' _ "${P[@]}"
check "podman: run -d with --memory 64m --pids-limit 50" \
    "${P[@]}" run -d --name limited --network none --memory 64m --pids-limit 50 localhost/busybox sleep 600
check "podman: ps lists it" bash -c '"$@" ps --format "{{.Names}}" | grep -qx limited' _ "${P[@]}"
check "podman: exec" bash -c '[ "$("$@" exec limited echo inside)" = inside ]' _ "${P[@]}"
pid=$("${P[@]}" inspect --format '{{.State.Pid}}' limited 2>/dev/null)
check "podman: limits in the container's systemd scope" scope_has "$pid"
check "podman: stop" "${P[@]}" stop -t 2 limited
check "podman: rm, the scope gone" bash -c '"$@" rm limited && ! systemctl list-units --all --plain --no-legend "libpod-*.scope" | grep -q .' _ "${P[@]}"
podman rm -f limited >/dev/null 2>&1
podman rmi -f localhost/busybox >/dev/null 2>&1

# ---- Docker, native.cgroupdriver=systemd, pyrunc the default runtime
mkdir -p /etc/docker
cat > /etc/docker/daemon.json <<JSON
{"exec-opts": ["native.cgroupdriver=systemd"], "runtimes": {"pyrunc": {"path": "$PYRUNC"}},
 "default-runtime": "pyrunc", "iptables": false, "bridge": "none"}
JSON
check "docker: dockerd starts (systemd cgroup driver)" systemctl start docker.service
check "docker: its cgroup driver is systemd" bash -c '[ "$(docker info --format "{{.CgroupDriver}}")" = systemd ]'
check "docker: import the busybox image" docker import "$W/busybox.tar" busybox:local
check "docker: run --rm busybox echo hi there" bash -c \
    '[ "$(docker run --rm --network none busybox:local echo hi there)" = "hi there" ]'
check "docker: run -d with --memory 64m --pids-limit 50" \
    docker run -d --name limited --network none --memory 64m --pids-limit 50 busybox:local sleep 600
check "docker: ps lists it" bash -c 'docker ps --format "{{.Names}}" | grep -qx limited'
check "docker: exec" bash -c '[ "$(docker exec limited echo inside)" = inside ]'
pid=$(docker inspect --format '{{.State.Pid}}' limited 2>/dev/null)
check "docker: limits in the container's systemd scope" scope_has "$pid"
check "docker: stop" docker stop -t 2 limited
check "docker: rm, the scope gone" bash -c 'docker rm limited && ! systemctl list-units --all --plain --no-legend "docker-*.scope" | grep -q .'
docker rm -f limited >/dev/null 2>&1

# ---- containerd through ctr (the daemon Docker started), --runc-systemd-cgroup
C=(ctr -n pyrunc-e2e)
R=(--runc-binary "$PYRUNC" --runc-systemd-cgroup)
IMG=docker.io/library/busybox:local
check "ctr: import the image (docker save)" bash -c 'docker save busybox:local | "$@" images import -' _ "${C[@]}"
ctr_echo() { [ "$("${C[@]}" run --rm "${R[@]}" --cgroup system.slice:ctr:hi "$IMG" hi echo hi there)" = "hi there" ]; }
ctr_exec() { [ "$("${C[@]}" task exec --exec-id e1 limited echo inside)" = inside ]; }
ctr_gone() {
    "${C[@]}" task kill -s KILL limited; sleep 1
    "${C[@]}" task delete limited && "${C[@]}" container delete limited \
        && ! systemctl list-units --all --plain --no-legend "ctr-*.scope" | grep -q .
}
check "ctr: run --rm busybox echo hi there" timeout 120 bash -c "$(declare -f ctr_echo); $(declare -p C R IMG); ctr_echo"
check "ctr: run -d with --memory-limit 64m" "${C[@]}" run -d "${R[@]}" --cgroup system.slice:ctr:limited \
    --memory-limit 67108864 "$IMG" limited sleep 600
check "ctr: exec" timeout 120 bash -c "$(declare -f ctr_exec); $(declare -p C); ctr_exec"
pid=$("${C[@]}" task ls 2>/dev/null | awk '$1 == "limited" {print $2}')
check "ctr: the memory limit in the container's systemd scope" scope_has "$pid" ""  # ctr sets no pids limit: systemd's DefaultTasksMax applies
check "ctr: kill, delete, the scope gone" timeout 120 bash -c "$(declare -f ctr_gone); $(declare -p C); ctr_gone"
"${C[@]}" task delete -f limited >/dev/null 2>&1
"${C[@]}" container delete limited >/dev/null 2>&1
# Images for the CRI part below, while dockerd runs: busybox and a sandbox
# ("pause") image that only sleeps.
docker import --change 'CMD ["/bin/sleep", "2147483647"]' "$W/busybox.tar" e2e-pause:local >/dev/null 2>&1
docker save -o "$W/cri-images.tar" busybox:local e2e-pause:local 2>/dev/null
systemctl stop docker.service docker.socket containerd.service >/dev/null 2>&1

# ---- containerd's CRI plugin (the kubelet's path), SystemdCgroup = true:
# the README's snippet as written but for the binary, its root and the
# cgroup driver, on a containerd of its own (own socket, root and state).
CD=$W/cri
mkdir -p "$CD/pod-logs"
{
    cat <<EOF
version = 2
root = "$CD/root"
state = "$CD/state"
[grpc]
  address = "$CD/containerd.sock"
[ttrpc]
  address = "$CD/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/library/e2e-pause:local"
EOF
    "$PY" tests/e2e/readme-snippet.py containerd-cri "/usr/local/bin/pyrunc=$PYRUNC" \
        "/run/containerd/pyrunc=$CD/pyrunc" | sed 's/SystemdCgroup = false/SystemdCgroup = true/'
} > "$CD/config.toml"
check "cri: the snippet's runtime table with SystemdCgroup = true" grep -qx "      SystemdCgroup = true" "$CD/config.toml"
containerd --config "$CD/config.toml" > "$CD/containerd.log" 2>&1 &
cd_pid=$!
for _ in $(seq 100); do [ -S "$CD/containerd.sock" ] && break; sleep 0.2; done
K8S=(ctr -a "$CD/containerd.sock" -n k8s.io)
check "cri: containerd with the README's snippet, SystemdCgroup = true, loads the CRI plugin" \
    bash -c '"$@" plugins ls | grep -qE "^io\.containerd\.grpc\.v1 +cri .* ok *$"' _ "${K8S[@]}"
check "cri: import the images" "${K8S[@]}" images import "$W/cri-images.tar"
while IFS= read -r line; do
    case $line in
        "PASS: "*) passed=$((passed + 1)); echo "ok   cri: ${line#PASS: }" ;;
        "FAIL: "*) failed=$((failed + 1)); echo "FAIL cri: ${line#FAIL: }" ;;
        *) echo "     $line" ;;
    esac
done < <(timeout -k 5 300 python3 tests/e2e/cri-e2e.py --sock "$CD/containerd.sock" --handler pyrunc \
            --image docker.io/library/busybox:local --state-dir "$CD/state" --runtime "$PYRUNC" \
            --runtime-root "$CD/pyrunc" --cgroup-parent system.slice --systemd --log-dir "$CD/pod-logs" 2>&1)
check "cri: no cri-containerd scope left" \
    bash -c '! systemctl list-units --all --plain --no-legend "cri-containerd-*.scope" | grep -q .'
[ "$failed" = 0 ] || tail -20 "$CD/containerd.log" | sed 's/^/     containerd: /'
kill "$cd_pid" 2>/dev/null; wait "$cd_pid" 2>/dev/null
rm -rf "$W"
echo "passed=$passed failed=$failed skipped=0" > "$VM_RESULT"
[ "$failed" = 0 ]
