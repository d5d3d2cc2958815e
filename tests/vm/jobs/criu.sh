#!/bin/bash
# VM job: checkpoint and restore with CRIU (it works on the guest's kernel 6.1,
# not on the development machine's). A counter whose count lives only in the
# shell's memory (it writes it to /tmp/n in its rootfs, which the checks read
# from the host side): dumped and restored with its count going on from where
# it was, --leave-running, a pre-dump then a dump on top of it restored into a
# new container id with a memory limit, the systemd cgroup driver, and a
# failed restore leaving nothing behind; then Podman's container checkpoint
# and restore (--export/--import too) with pyrunc as its runtime. Kept
# short: the lane's time counts.
set -u
passed=0 failed=0
W=$(mktemp -d /var/tmp/criu-XXXXXX)
export W
R=(timeout 120 "$PYRUNC")
check() {  # check DESCRIPTION COMMAND...
    local what=$1; shift
    if out=$("$@" 2>&1); then
        passed=$((passed + 1)); echo "ok   $what"
    else
        failed=$((failed + 1)); echo "FAIL $what"; echo "$out" | tail -8 | sed 's/^/     /'
    fi
}
count() { cat "$W/rootfs/tmp/n" 2>/dev/null || echo 0; }
# wait_count N: until the counter reaches N (10 s at most)
wait_count() { for _ in $(seq 50); do [ "$(count)" -ge "$1" ] && return 0; sleep 0.2; done; echo "count $(count) < $1"; return 1; }
# bundle DIR CGROUPS_PATH [MEMORY_LIMIT]: the counter, on the shared rootfs,
# under a seccomp profile that refuses mkdir
bundle() {
    mkdir -p "$1"
    jq --arg root "$W/rootfs" --arg cg "$2" --argjson mem "${3:-0}" '
        .root = {path: $root, readonly: false} | .process.terminal = false
        | .process.args = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.2; done"]
        | .linux.cgroupsPath = $cg
        | .linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW",
                            syscalls: [{names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1}]}
        | if $mem > 0 then .linux.resources.memory = {limit: $mem} else . end' "$W/spec.json" > "$1/config.json"
}
state_of() { "$PYRUNC" state "$1" | jq -r "$2"; }
# restored ID CGROUP: a new process (not $oldpid), running, in that cgroup,
# its count going on from $before (it was reset to 0 after the dump: a
# counter started afresh would be small)
restored() {
    local pid; pid=$(state_of "$1" .pid)
    [ -n "$pid" ] && [ "$pid" != "$oldpid" ] || { echo "pid $pid: not restored (was $oldpid)"; return 1; }
    [ "$(state_of "$1" .status)" = running ] || { echo "status $(state_of "$1" .status)"; return 1; }
    grep -qx "0::$2" "/proc/$pid/cgroup" || { echo "cgroup: $(cat "/proc/$pid/cgroup")"; return 1; }
    wait_count $((before + 1))
}
cleanup() { "$PYRUNC" delete -f "$1" >/dev/null 2>&1; }

"$PY" -c "from tests.busybox import make_rootfs; make_rootfs('$W/rootfs')" || exit 1
(cd "$W" && "$PYRUNC" spec && mv config.json spec.json) || exit 1
check "criu check says the kernel will do" criu check

# ---- dump and restore, cgroupfs driver
bundle "$W/b1" /pyrunc-criu/c1
check "run -d the counter" bash -c '"$1" run -d --bundle "$2" c1 </dev/null >/dev/null 2>&1' _ "$PYRUNC" "$W/b1"
check "it counts" wait_count 10
oldpid=$(state_of c1 .pid)
check "checkpoint: the container is gone" bash -c \
    '"$1" checkpoint --image-path "$2/img1" c1 || { grep -E "Error|Warn" "$2/img1/dump.log" | tail -8; exit 1; }
     ! "$1" list -q | grep -qx c1 && [ -s "$2/img1/inventory.img" ]' \
    _ "$PYRUNC" "$W"
before=$(count); sleep 0.6
check "checkpoint: the counter stopped" test "$(count)" = "$before"
echo 0 > "$W/rootfs/tmp/n"
check "restore -d --pid-file" bash -c '"$1" restore -d --bundle "$2/b1" --image-path "$2/img1" --pid-file "$2/pid1" c1 \
    </dev/null >/dev/null 2>&1 || { grep -E "Error|Warn" "$2/img1/restore.log" | tail -8; exit 1; }
    [ "$(cat "$2/pid1")" = "$("$1" state c1 | jq .pid)" ]' _ "$PYRUNC" "$W"
check "restore: running in its cgroup, counting on from $before" restored c1 /pyrunc-criu/c1
check "  exec in it has the container's seccomp filter (mkdir refused)" bash -c \
    '"$1" exec c1 true && ! "$1" exec c1 mkdir /tmp/seccomp-probe' _ "$PYRUNC"

# ---- --leave-running
before=$(count)
check "checkpoint --leave-running: still running, still counting" bash -c \
    '"$1" checkpoint --leave-running --image-path "$2/img2" c1 && [ "$("$1" state c1 | jq -r .status)" = running ]' \
    _ "$PYRUNC" "$W"
check "  and counting" wait_count $((before + 3))

# ---- a pre-dump, a dump on top of it, restored as another container
check "checkpoint --pre-dump: still running" bash -c \
    '"$1" checkpoint --pre-dump --image-path "$2/pre" c1 && [ "$("$1" state c1 | jq -r .status)" = running ]' \
    _ "$PYRUNC" "$W"
oldpid=$(state_of c1 .pid)
check "checkpoint --parent-path ../pre" "${R[@]}" checkpoint --parent-path ../pre --image-path "$W/dump" c1
check "  the dump names its parent" test -L "$W/dump/parent"
before=$(count); echo 0 > "$W/rootfs/tmp/n"
bundle "$W/b2" /pyrunc-criu/c2 67108864
check "restore into a new id (c2) with a 64 MiB limit" bash -c \
    '"$1" restore -d --bundle "$2/b2" --image-path "$2/dump" c2 </dev/null >/dev/null 2>&1 || { tail -5 "$2/dump/restore.log"; exit 1; }' \
    _ "$PYRUNC" "$W"
check "  c2 runs in its cgroup, counting on from $before" restored c2 /pyrunc-criu/c2
check "  memory.max is the limit" test "$(cat /sys/fs/cgroup/pyrunc-criu/c2/memory.max)" = 67108864
cleanup c2

# ---- the systemd cgroup driver
bundle "$W/b3" system.slice:pyrunc:criu3
S=("$PYRUNC" --systemd-cgroup)
check "systemd: run -d" bash -c '"$@" run -d --bundle "$W/b3" c3 </dev/null >/dev/null 2>&1' _ "${S[@]}"
oldpid=$(state_of c3 .pid); sleep 1
check "systemd: checkpoint, the scope gone" bash -c \
    '"$@" checkpoint --image-path "$W/img3" c3 && ! systemctl is-active -q pyrunc-criu3.scope' _ "${S[@]}"
before=$(count); echo 0 > "$W/rootfs/tmp/n"
check "systemd: restore -d" bash -c '"$@" restore -d --bundle "$W/b3" --image-path "$W/img3" c3 </dev/null >/dev/null 2>&1 ||
    { tail -5 "$W/img3/restore.log"; exit 1; }' _ "${S[@]}"
in_scope() { restored c3 /system.slice/pyrunc-criu3.scope && systemctl is-active pyrunc-criu3.scope; }
check "systemd: in its scope, active, counting on" in_scope
"${S[@]}" delete -f c3 >/dev/null 2>&1

# ---- a failed restore leaves nothing behind
cp -a "$W/img1" "$W/broken" && rm -f "$W/broken"/core-*.img
check "restore of a broken image: exit 1, one line" bash -c \
    'out=$("$1" restore -d --bundle "$2/b1" --image-path "$2/broken" bad 2>&1 </dev/null); rc=$?; echo "$out"
     [ $rc = 1 ] && [ "$(echo "$out" | wc -l)" = 1 ] && grep -q "criu restore failed" <<< "$out"' _ "$PYRUNC" "$W"
check "  no state, cgroup or criu-root mount left" bash -c \
    '! "$1" list -q | grep -qx bad && [ ! -e /sys/fs/cgroup/pyrunc-criu/bad ] && [ ! -e /run/pyrunc/bad ] &&
     ! grep -q criu-root /proc/self/mountinfo' _ "$PYRUNC"
check "restore from a directory without images: exit 1, nothing made" bash -c \
    'out=$("$1" restore -d --bundle "$2/b1" --image-path "$2/none" bad 2>&1); [ $? = 1 ] && echo "$out" &&
     grep -q "no checkpoint there" <<< "$out" && ! "$1" list -q | grep -qx bad' _ "$PYRUNC" "$W"

cleanup c1
rmdir /sys/fs/cgroup/pyrunc-criu/* /sys/fs/cgroup/pyrunc-criu 2>/dev/null

# ---- a container with a terminal: its pty master goes to a console socket;
# on restore CRIU hands pyrunc a new master (orphan-pts-master), which goes
# to the new --console-socket. The counter prints to its terminal.
cat > "$W/recvtty.py" <<'PY'
import array, os, socket, sys
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sys.argv[1]); server.listen(1)
conn, _ = server.accept()
fds = array.array("i")
_, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
fds.frombytes(anc[0][2][:fds.itemsize])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        try:
            data = os.read(fds[0], 4096)
        except OSError:
            break
        if not data:
            break
        out.write(data)
PY
last_printed() { tr -d '\r' < "$1" 2>/dev/null | grep -E '^[0-9]+$' | tail -1; }
# printed_above FILE N: the terminal's output goes above N (10 s at most)
printed_above() { for _ in $(seq 50); do [ "$(last_printed "$1")" -gt "$2" ] 2>/dev/null && return 0; sleep 0.2; done
                  echo "printed $(last_printed "$1") <= $2"; return 1; }
mkdir -p "$W/b4"
jq --arg root "$W/rootfs" '.root = {path: $root, readonly: false} | .process.terminal = true
    | .process.args = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done"]
    | .linux.cgroupsPath = "/pyrunc-criu/c4"' "$W/spec.json" > "$W/b4/config.json"
"$PY" "$W/recvtty.py" "$W/tty1.sock" "$W/tty1.out" & recv1=$!
sleep 1
check "terminal: run -d --console-socket" "$PYRUNC" run -d --console-socket "$W/tty1.sock" --bundle "$W/b4" c4
check "  it prints to its terminal" printed_above "$W/tty1.out" 10
oldpid=$(state_of c4 .pid)
check "terminal: checkpoint" bash -c '"$1" checkpoint --image-path "$2/img4" c4 ||
    { grep -E "Error|Warn" "$2/img4/dump.log" | tail -8; exit 1; }' _ "$PYRUNC" "$W"
sleep 0.5; kill "$recv1" 2>/dev/null; wait "$recv1" 2>/dev/null
seen=$(last_printed "$W/tty1.out")
"$PY" "$W/recvtty.py" "$W/tty2.sock" "$W/tty2.out" & recv2=$!
sleep 1
check "terminal: restore -d --console-socket" bash -c '"$1" restore -d --console-socket "$2/tty2.sock" --bundle "$2/b4" \
    --image-path "$2/img4" c4 || { grep -E "Error|Warn" "$2/img4/restore.log" | tail -8; exit 1; }' _ "$PYRUNC" "$W"
check "  the new console socket's terminal prints on from $seen" printed_above "$W/tty2.out" "$seen"
cleanup c4
kill "$recv2" 2>/dev/null; wait "$recv2" 2>/dev/null
rmdir /sys/fs/cgroup/pyrunc-criu/* /sys/fs/cgroup/pyrunc-criu 2>/dev/null

# ---- Podman with pyrunc as its runtime: container checkpoint/restore, and
# --export/--import into a new container. The count is read with exec; a
# counter started afresh would be below the count seen before the dump.
P=(timeout 180 podman --runtime "$PYRUNC")
pcount() { "${P[@]}" exec "$1" cat /tmp/n; }
# pcount_above NAME N: the count in NAME goes above N (10 s at most)
pcount_above() { for _ in $(seq 20); do [ "$(pcount "$1")" -gt "$2" ] 2>/dev/null && return 0; sleep 0.5; done
                 echo "count $(pcount "$1") <= $2"; return 1; }
tar -C "$W/rootfs" -cf "$W/busybox.tar" . && podman import -q "$W/busybox.tar" localhost/busybox >/dev/null
check "podman: run -d the counter" "${P[@]}" run -d --name pc --network none localhost/busybox \
    sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.2; done'
sleep 3; seen=$(pcount pc)
check "podman: container checkpoint" bash -c '"$@" container checkpoint pc &&
    [ "$("$@" inspect --format "{{.State.Status}}" pc)" = exited ]' _ "${P[@]}"
check "podman: container restore, counting on from $seen" bash -c '"$@" container restore pc' _ "${P[@]}"
check "  the count goes on" pcount_above pc "$seen"
seen=$(pcount pc)
check "podman: checkpoint --export" "${P[@]}" container checkpoint --export "$W/pc.tar.gz" pc
"${P[@]}" rm -f pc >/dev/null 2>&1
check "podman: restore --import as a new container" "${P[@]}" container restore --import "$W/pc.tar.gz" --name pc2
check "  the count goes on" pcount_above pc2 "$seen"
check "podman: rm -f the restored container" "${P[@]}" rm -f pc2
check "  no container and no libpod scope left" bash -c 'left=$(podman ps -aq; systemctl list-units --no-legend "libpod-*")
    [ -z "$left" ] || { echo "left: $left"; systemd-cgls --no-pager -u "$(systemctl list-units --no-legend "libpod-*" | awk "{print \$1}" | head -1)" 2>&1 | head; exit 1; }'
"${P[@]}" rm -f pc pc2 >/dev/null 2>&1
echo "passed=$passed failed=$failed skipped=0" > "$VM_RESULT"
[ "$failed" = 0 ]
