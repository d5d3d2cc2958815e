#!/bin/bash
# tests/vm/run-in-vm.sh IMAGE_DIR SHARE_DIR
#
# Boots the image made by image.sh with SHARE_DIR exported over virtio-9p
# (tag "work", mounted at /vmshare in the guest). The guest runs SHARE_DIR/job.sh
# as root, writes SHARE_DIR/job.out and SHARE_DIR/job.rc, and powers off.
# qemu runs with -snapshot: the guest's writes go to a throw-away overlay, so
# nothing is left in the image between runs.
#
# Exit status: the job's; 124 on timeout; 125 when the VM ended without
# job.rc (boot failure, panic: see the console log).
# Prints to stderr "run-in-vm: ..." lines with the time split measured on the
# host: boot (qemu start to job start), job, shutdown; and writes the same as
# shell assignments to SHARE_DIR/vm-times (boot_s= job_s= shutdown_s= total_s=).
# With VM_FOLLOW=1 the job's output is copied to stdout while it runs.
#
# Env:
#   VM_TIMEOUT  seconds before qemu is killed          (default 3600)
#   VM_MEM      MiB of guest memory                    (default 4096)
#   VM_SMP      guest vCPUs                            (default 2)
#   VM_LOG      serial console log                     (default SHARE_DIR/vm-console.log)
#   VM_ACCEL    kvm | tcg | auto (default auto: kvm only when a hardware-VT KVM
#               module, kvm_intel or kvm_amd, is loaded; a kvm_pvm /dev/kvm
#               cannot boot a stock kernel, so auto picks tcg there)
#   VM_APPEND   extra kernel command line arguments
#   VM_FOLLOW   1 = stream SHARE_DIR/job.out to stdout while the job runs
# No network device is attached.
set -uo pipefail

IMG=${1:?usage: run-in-vm.sh IMAGE_DIR SHARE_DIR}
SHARE=${2:?usage: run-in-vm.sh IMAGE_DIR SHARE_DIR}
IMG=$(cd "$IMG" && pwd) || exit 2
SHARE=$(cd "$SHARE" && pwd) || exit 2
TIMEOUT=${VM_TIMEOUT:-3600}
LOG=${VM_LOG:-$SHARE/vm-console.log}
QEMU=${QEMU:-qemu-system-x86_64}

for f in rootfs.img vmlinuz initrd.img cmdline; do
    [ -f "$IMG/$f" ] || { echo "run-in-vm: missing $IMG/$f" >&2; exit 2; }
done
command -v "$QEMU" >/dev/null || { echo "run-in-vm: no $QEMU (tools/install-deps qemu-system-x86)" >&2; exit 2; }
ACCEL=${VM_ACCEL:-auto}
if [ "$ACCEL" = auto ]; then
    if [ -e /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
        ACCEL=kvm
    else
        ACCEL=tcg
    fi
fi
if [ "$ACCEL" = kvm ]; then
    ACCEL_ARGS=(-enable-kvm -cpu host)
else
    # multi-threaded TCG with a big translation cache; -cpu max: every feature TCG emulates
    ACCEL_ARGS=(-accel "tcg,thread=multi,tb-size=1024" -cpu max)
fi

rm -f "$SHARE/job.out" "$SHARE/job.rc" "$SHARE/job.rc.tmp" "$SHARE/vm-job.started" \
      "$SHARE/vm-systemd-analyze.txt" "$SHARE/vm-times" "$LOG"

args=("${ACCEL_ARGS[@]}" -machine q35 -m "${VM_MEM:-4096}" -smp "${VM_SMP:-2}"
      -nographic -serial "file:$LOG" -monitor none -no-reboot
      -kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" -append "$(cat "$IMG/cmdline") ${VM_APPEND:-}"
      -drive "file=$IMG/rootfs.img,format=raw,if=virtio,cache=unsafe,discard=unmap"
      -snapshot
      -virtfs "local,path=$SHARE,mount_tag=work,security_model=none,id=work"
      -device virtio-rng-pci -nic none)

now() { date +%s.%N; }
QPID="" FPID=""
# Whatever happens to this script, the qemu it started (that pid only) and
# the follower go with it.
stop_children() {
    [ -n "$FPID" ] && kill "$FPID" 2>/dev/null
    if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
        kill "$QPID" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$QPID" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$QPID" 2>/dev/null
        wait "$QPID" 2>/dev/null
    fi
    QPID="" FPID=""
}
trap stop_children EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

T0=$(now)
"$QEMU" "${args[@]}" </dev/null >"$SHARE/qemu.out" 2>&1 &
QPID=$!

# Watch the share from the host: when the job starts and ends.
TSTART="" TEND="" TIMED_OUT=0
while kill -0 "$QPID" 2>/dev/null; do
    if [ -z "$TSTART" ] && [ -f "$SHARE/vm-job.started" ]; then
        TSTART=$(now)
        if [ "${VM_FOLLOW:-0}" = 1 ]; then
            tail -n +1 -F "$SHARE/job.out" 2>/dev/null &
            FPID=$!
        fi
    fi
    [ -z "$TEND" ] && [ -f "$SHARE/job.rc" ] && TEND=$(now)
    if awk -v a="$T0" -v b="$(now)" -v t="$TIMEOUT" 'BEGIN{exit !(b-a > t)}'; then
        TIMED_OUT=1
        break
    fi
    sleep 0.2
done
if [ "$TIMED_OUT" = 1 ]; then
    stop_children
    QRC=124
else
    wait "$QPID"; QRC=$?
    QPID=""
    if [ -n "$FPID" ]; then sleep 0.5; kill "$FPID" 2>/dev/null; wait "$FPID" 2>/dev/null; FPID=""; fi
fi
T3=$(now)

span() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="" || b=="") print "n/a"; else printf "%.1f", b-a }'; }
{
    echo "boot_s=$(span "$T0" "$TSTART")"
    echo "job_s=$(span "$TSTART" "$TEND")"
    echo "shutdown_s=$(span "$TEND" "$T3")"
    echo "total_s=$(span "$T0" "$T3")"
    echo "accel=$ACCEL"
} > "$SHARE/vm-times"
{
    echo "run-in-vm: accel=$ACCEL qemu rc=$QRC; boot $(span "$T0" "$TSTART") s, job $(span "$TSTART" "$TEND") s," \
         "shutdown $(span "$TEND" "$T3") s, whole run $(span "$T0" "$T3") s"
    [ -f "$SHARE/vm-job.started" ] && sed 's/^/run-in-vm: guest /' "$SHARE/vm-job.started"
} >&2

if [ "$TIMED_OUT" = 1 ]; then
    echo "run-in-vm: TIMEOUT after ${TIMEOUT} s; console log $LOG" >&2
    exit 124
fi
if [ -f "$SHARE/job.rc" ]; then
    exit "$(cat "$SHARE/job.rc")"
fi
echo "run-in-vm: the VM ended without job.rc (qemu rc $QRC); tail of $LOG:" >&2
tail -30 "$LOG" >&2
exit 125
