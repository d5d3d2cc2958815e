#!/bin/bash
# VM job: rootless containers on the systemd cgroup driver, through the
# user's own systemd (user@UID.service), as a user logged in would run them.
# As root: a test user with subordinate ids, lingering (so its user manager
# and session bus start), the busybox rootfs in its home. Then, as the user,
# in a unit of its manager (systemd-run --user: a cgroup the user owns, as
# Podman arranges for its own processes), this script again with --as-user:
#   pyrunc --systemd-cgroup: a detached container with a memory limit is a
#   scope of the user manager's user.slice (its cgroup seen from outside and
#   from inside), memory.max and MemoryMax hold the limit, exec joins the
#   scope, update changes it through the user manager, delete removes it;
#   the bus found without $DBUS_SESSION_BUS_ADDRESS and $XDG_RUNTIME_DIR;
#   an unreachable manager is one line and leaves nothing.
#   Rootless Podman on its systemd cgroup manager with pyrunc as runtime:
#   run --rm echo (also on slirp4netns), run -d with --memory 64m (the
#   limit in the scope of the user's delegated cgroup), ps, exec, stop, rm,
#   the scope gone.
# Then the user, its linger, manager and processes are removed.
# The guest has no network: Podman runs with --network none, but for one
# run on its default rootless network, slirp4netns (its tap device seen).
set -u
U=pyrunc-rls
SCOPE_LIMIT=67108864

if [ "${1:-}" = --as-user ]; then
    # ---------------------------------------------------------------- as the user
    uid=$(id -u)
    passed=0 failed=0
    check() {  # check DESCRIPTION COMMAND...
        local what=$1; shift
        local run=(timeout 180)
        declare -F "$1" >/dev/null && run=()
        if out=$("${run[@]}" "$@" 2>&1); then
            passed=$((passed + 1)); echo "ok   $what"
        else
            failed=$((failed + 1)); echo "FAIL $what"; echo "$out" | tail -5 | sed 's/^/     /'
        fi
    }
    MGR=/user.slice/user-$uid.slice/user@$uid.service
    # in_user_scope PID UNIT: PID's cgroup is UNIT under the user manager's
    # user.slice, whose memory.max and MemoryMax are the limit, delegated.
    in_user_scope() {
        local pid=$1 unit=$2 line props
        line=$(cat "/proc/$pid/cgroup") || return 1
        echo "cgroup ${line#0::}"
        [ "$line" = "0::$MGR/user.slice/$unit" ] || { echo "want $MGR/user.slice/$unit"; return 1; }
        [ "$(cat "/sys/fs/cgroup$MGR/user.slice/$unit/memory.max")" = "$SCOPE_LIMIT" ] || { echo "memory.max"; return 1; }
        props=$(systemctl --user show "$unit" -p MemoryMax -p Delegate)
        echo "$props"
        grep -qx "MemoryMax=$SCOPE_LIMIT" <<< "$props" && grep -qx "Delegate=yes" <<< "$props"
    }
    R=(--root "$HOME/pyrunc-state")
    P=("$PYRUNC" "${R[@]}" --systemd-cgroup)
    B=$HOME/bundle
    edit_config() {  # edit_config PYTHON-STATEMENTS (c: the config)
        "$PY" -c "import json,sys; p='$B/config.json'; c=json.load(open(p)); $1; json.dump(c, open(p, 'w'))"
    }
    check "pyrunc spec --rootless" bash -c "cd '$B' && '$PYRUNC' spec --rootless"
    # No cgroup namespace: the container's /proc/self/cgroup shows the host's path.
    edit_config "c['process']['terminal']=False; c['process']['args']=['sleep','300'];
c['linux']['namespaces']=[n for n in c['linux']['namespaces'] if n['type']!='cgroup'];
c['linux'].setdefault('resources',{})['memory']={'limit':$SCOPE_LIMIT}; c['linux']['cgroupsPath']=''"

    # Its stdio to a file: a pipe it held would keep the check waiting.
    check "pyrunc --systemd-cgroup run -d (memory limit, default cgroupsPath)" bash -c \
        '"$@" run -d --bundle "'"$B"'" rl1 </dev/null >"$HOME/rl1.out" 2>&1 || { cat "$HOME/rl1.out"; exit 1; }' \
        _ "${P[@]}"
    pid=$("$PYRUNC" "${R[@]}" state rl1 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
    check "its init is in pyrunc-rl1.scope of the user manager's user.slice, memory.max the limit" \
        in_user_scope "$pid" pyrunc-rl1.scope
    check "the container's /proc/self/cgroup names that scope" bash -c \
        '[ "$("$@" exec rl1 cat /proc/self/cgroup)" = "0::'"$MGR"'/user.slice/pyrunc-rl1.scope" ]' _ "${P[@]}"
    check "the scope's cgroup is the user's (delegated)" \
        test "$(stat -c %u "/sys/fs/cgroup$MGR/user.slice/pyrunc-rl1.scope/cgroup.procs")" = "$uid"
    check "ps lists the init" bash -c '"$@" ps rl1 | grep -qw sleep' _ "${P[@]}"
    check "update --memory 96m: through the user manager and the file" bash -c '"$@" update --memory 100663296 rl1 &&
        [ "$(systemctl --user show pyrunc-rl1.scope -p MemoryMax --value)" = 100663296 ] &&
        [ "$(cat /sys/fs/cgroup'"$MGR"'/user.slice/pyrunc-rl1.scope/memory.max)" = 100663296 ]' _ "${P[@]}"
    check "kill, delete: the scope is gone" bash -c '"$@" kill rl1 KILL; sleep 1; "$@" delete rl1 &&
        ! systemctl --user list-units --all --plain --no-legend pyrunc-rl1.scope | grep -q . &&
        [ ! -d /sys/fs/cgroup'"$MGR"'/user.slice/pyrunc-rl1.scope ]' _ "${P[@]}"

    edit_config "c['process']['args']=['cat','/proc/self/cgroup']; c['linux']['cgroupsPath']='user.slice:rl:two'"
    # Neither variable: /run/user/UID/bus, from the uid (the uid_map's in Podman's namespace).
    check "run without \$DBUS_SESSION_BUS_ADDRESS and \$XDG_RUNTIME_DIR: the scope rl-two.scope" bash -c \
        '[ "$(env -u DBUS_SESSION_BUS_ADDRESS -u XDG_RUNTIME_DIR "$@" run --bundle "'"$B"'" rl2)" = "0::'"$MGR"'/user.slice/rl-two.scope" ]' \
        _ "${P[@]}"
    unreachable() {
        local out rc
        out=$(env DBUS_SESSION_BUS_ADDRESS= XDG_RUNTIME_DIR=/nonexistent "${P[@]}" run --bundle "$B" rl3 2>&1)
        rc=$?
        echo "rc $rc: $out"
        [ "$rc" = 1 ] && [ "$(wc -l <<< "$out")" = 1 ] && grep -q "cannot reach the systemd user manager of uid $uid" <<< "$out" \
            && [ -z "$(ls "$HOME/pyrunc-state")" ]
    }
    check "a user manager not reachable: one line, exit 1, no state left" unreachable

    # ---- rootless Podman, its systemd cgroup manager, pyrunc its runtime
    D=(podman --runtime "$PYRUNC" --cgroup-manager systemd)
    check "podman: the rootless default cgroup manager here is systemd" \
        bash -c '[ "$(podman info --format "{{.Host.CgroupManager}}")" = systemd ]'
    check "podman: import the busybox image" podman import "$HOME/busybox.tar" localhost/busybox
    check "podman: run --rm busybox echo hi there" bash -c \
        '[ "$("$@" run --rm --network none localhost/busybox echo hi there)" = "hi there" ]' _ "${D[@]}"
    check "podman: run --rm on the default rootless network (slirp4netns)" bash -c \
        '[ "$("$@" run --rm localhost/busybox sh -c "ip -o link | grep -c tap0")" = 1 ]' _ "${D[@]}"
    check "podman: run -d --memory 64m" "${D[@]}" run -d --name limited --network none --memory 64m \
        localhost/busybox sleep 600
    check "podman: ps --all lists it running" bash -c '"$@" ps --all --format "{{.Names}} {{.Status}}" | grep -q "^limited Up"' \
        _ "${D[@]}"
    check "podman: exec" bash -c '[ "$("$@" exec limited echo inside)" = inside ]' _ "${D[@]}"
    cid=$("${D[@]}" inspect --format '{{.Id}}' limited 2>/dev/null)
    pid=$("${D[@]}" inspect --format '{{.State.Pid}}' limited 2>/dev/null)
    check "podman: the limit in libpod-ID.scope of the user's delegated cgroup" in_user_scope "$pid" "libpod-$cid.scope"
    check "podman: stop" "${D[@]}" stop -t 2 limited
    check "podman: rm, the scope gone" bash -c '"$@" rm limited &&
        ! systemctl --user list-units --all --plain --no-legend "libpod-*.scope" | grep -q .' _ "${D[@]}"
    "${D[@]}" rm -f limited >/dev/null 2>&1
    echo "counts passed=$passed failed=$failed"
    exit 0
fi

# ---------------------------------------------------------------- as root
passed=0 failed=0
check() {
    local what=$1; shift
    local run=(timeout 120)
    declare -F "$1" >/dev/null && run=()
    if out=$("${run[@]}" "$@" 2>&1); then
        passed=$((passed + 1)); echo "ok   $what"
    else
        failed=$((failed + 1)); echo "FAIL $what"; echo "$out" | tail -5 | sed 's/^/     /'
    fi
}
finish() {
    echo "passed=$passed failed=$failed skipped=0" > "$VM_RESULT"
    [ "$failed" = 0 ]
    exit
}
H=/home/$U
check "create user $U with subordinate ids" bash -c "useradd --create-home --home-dir $H --shell /bin/bash $U &&
    usermod --add-subuids 200000-265535 --add-subgids 200000-265535 $U"
uid=$(id -u "$U") || finish
"$PY" -c "from tests.busybox import make_rootfs; make_rootfs('$H/bundle/rootfs')" && tar -C "$H/bundle/rootfs" -cf "$H/busybox.tar" .
chown -R "$U:$U" "$H"
user_manager_up() {
    loginctl enable-linger "$U" || return 1
    for _ in $(seq 120); do
        [ -S "/run/user/$uid/bus" ] && [ "$(systemctl is-active "user@$uid.service")" = active ] && return 0
        sleep 0.5
    done
    systemctl status "user@$uid.service" --no-pager | tail -5
    return 1
}
check "enable-linger starts user@$uid.service and its session bus" user_manager_up
# As the user, in a unit of its own manager (its processes' cgroups are the
# user's, as a login session's are to Podman), the same script again.
AS_USER=(setpriv "--reuid=$uid" "--regid=$(id -g "$U")" --init-groups
         env -i "HOME=$H" "USER=$U" "LOGNAME=$U" PATH=/usr/local/bin:/usr/bin:/bin
         "XDG_RUNTIME_DIR=/run/user/$uid" "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/$uid/bus")
log=$(mktemp)
timeout -k 10 900 "${AS_USER[@]}" systemd-run --user --wait --pipe --quiet --collect --working-directory="$H" \
    -E "PY=$PY" -E "PYRUNC=$PYRUNC" -E "HOME=$H" bash "$SRC/tests/vm/jobs/rootless-systemd.sh" --as-user \
    </dev/null 2>&1 | tee "$log"
counts=$(sed -n 's/^counts //p' "$log")
if [ -n "$counts" ]; then
    eval "u_${counts// / u_}"
    passed=$((passed + u_passed)) failed=$((failed + u_failed))
else
    failed=$((failed + 1)); echo "FAIL the user's part did not finish"
fi
rm -f "$log"

# ---- clean-up: linger off, the manager and every process of the user gone, the user removed
cleanup() {
    loginctl disable-linger "$U"
    systemctl stop "user@$uid.service"
    loginctl terminate-user "$U" 2>/dev/null
    for _ in $(seq 60); do
        ps -u "$uid" -o pid= | grep -q . || [ -e "/run/user/$uid" ] || break
        sleep 0.5
    done
    if ps -u "$uid" -o pid,cmd | grep -v PID; then echo "processes of $U left"; return 1; fi
    userdel --remove --force "$U" 2>&1 | grep -v 'mail spool' >&2
    ! id "$U" >/dev/null 2>&1 && ! grep -q "^$U:" /etc/subuid /etc/subgid && [ ! -e "/run/user/$uid" ]
}
check "clean-up: linger off, user@$uid.service stopped, no process of the user left, user removed" cleanup
finish
