#!/bin/bash
# tests/vm/lane.sh PYTHON [JOB...]   (make test-vm)
#
# The VM lane: pyrunc's suites on a real systemd host with pure cgroup v2 and
# AppArmor (Debian 12 in qemu), where this machine is cgroup v1 hybrid with
# neither. PYTHON is the project venv's interpreter (its package versions go
# to the guest). Steps:
#   1. the image (tests/vm/image.sh) and the wheelhouse (tests/vm/wheelhouse.sh),
#      each built once and cached under $PYRUNC_VM_CACHE (/var/tmp/pyrunc-vm);
#   2. the work tree's files (git ls-files: tracked and new, not ignored) as
#      src.tar, and pyrunc's wheel built from them (`pip wheel --no-deps`);
#   3. one boot (tests/vm/run-in-vm.sh, qemu -snapshot: the image is never
#      written), in which tests/vm/guest/job.sh installs the wheel in a venv
#      and runs the jobs, tests/vm/jobs/JOB.sh, on the guest's own disk;
#   4. one line per job, then the summary line: checks passed, failed and
#      skipped in the VM, and the time split (boot, set-up, jobs, shutdown).
# Exit status: 0 when every job passed; else 1.
#
# Jobs (tests/vm/jobs/NAME.sh): the arguments, else $VM_JOBS, else the default
# set below; "a+b" runs a and b at the same time. Reports of
# the last run (console log, job output, junit XML) stay in $CACHE/run/.
# Env: VM_JOBS, VM_TIMEOUT (seconds for the whole boot, default 4200),
# VM_MEM, VM_SMP, VM_ACCEL (see run-in-vm.sh), PYRUNC_VM_CACHE.
set -uo pipefail

# Groups run in turn; "a+b" runs a and b at the same time (the guest has two
# vCPUs, and one suite keeps about one busy). stress-ci runs alone: it
# measures machine-wide counts (mounts, file handles).
DEFAULT_JOBS="testbed integration+conformance stress-ci systemd engines-systemd rootless-systemd criu"
PYTHON=${1:?usage: lane.sh PYTHON [JOB...]}
shift
JOBS=${*:-${VM_JOBS:-$DEFAULT_JOBS}}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${PYRUNC_VM_CACHE:-/var/tmp/pyrunc-vm}
SHARE=$CACHE/run
log() { echo "[test-vm] $*"; }
die() { echo "test-vm: FAILED: $*"; exit 1; }

if [ "$(id -u)" != 0 ]; then
    echo "test-vm: needs root (image build, qemu): skipped"
    exit 0
fi
T0=$(date +%s)

image=$("$HERE/image.sh") || die "cannot build the VM image"
wheelhouse=$("$HERE/wheelhouse.sh" "$PYTHON") || die "cannot make the wheelhouse"
T1=$(date +%s)

rm -rf "$SHARE"
mkdir -p "$SHARE/dist" "$SHARE/build-src"
( cd "$REPO" && git ls-files -z -co --exclude-standard | xargs -0 tar -cf "$SHARE/src.tar" --no-recursion ) \
    || die "cannot archive the work tree (git ls-files in $REPO)"
tar -xf "$SHARE/src.tar" -C "$SHARE/build-src"
"$PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps -w "$SHARE/dist" "$SHARE/build-src" \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2) || die "pip wheel of the work tree"
rm -rf "$SHARE/build-src"
cp -r "$wheelhouse" "$SHARE/wheelhouse"
cp "$HERE/guest/job.sh" "$SHARE/job.sh"
printf '%s\n' $JOBS > "$SHARE/jobs"
T2=$(date +%s)
log "image $image, jobs: $JOBS; preparation $((T2 - T0)) s (image and wheelhouse $((T1 - T0)) s)"

# The runner in the background, so that a TERM to this script reaches it (its
# trap stops the qemu it started).
VM_FOLLOW=1 VM_TIMEOUT=${VM_TIMEOUT:-4200} "$HERE/run-in-vm.sh" "$image" "$SHARE" &
runner=$!
trap 'kill -TERM "$runner" 2>/dev/null; wait "$runner"; exit 143' TERM HUP
trap 'kill -INT "$runner" 2>/dev/null; wait "$runner"; exit 130' INT
wait "$runner"
vm_rc=$?
trap - TERM HUP INT
T3=$(date +%s)

# ---- the report
if [ "$vm_rc" = 124 ]; then
    # Out of time: where each job running at the same time as another stood
    # (a job run alone streamed its output above).
    for live in "$SHARE"/live/*.log; do
        [ -f "$live" ] || continue
        name=$(basename "$live" .log)
        [ -f "$SHARE/results/$name.result" ] && continue
        echo
        log "job $name did not finish; the last 60 lines of its output:"
        tail -n 60 "$live"
    done
fi
vm_time() { sed -n "s/^$1=//p" "$SHARE/vm-times" 2>/dev/null | grep . || echo n/a; }
boot_s=$(vm_time boot_s) job_s=$(vm_time job_s) shutdown_s=$(vm_time shutdown_s)
echo
passed=0 failed=0 skipped=0 bad_jobs=""
setup_s=$(sed -n 's/.*seconds=\([0-9]*\).*/\1/p' "$SHARE/results/setup.result" 2>/dev/null)
for name in ${JOBS//+/ }; do
    result=$SHARE/results/$name.result
    if [ ! -f "$result" ]; then
        echo "test-vm: job $name: did not run"
        bad_jobs="$bad_jobs $name"
        continue
    fi
    rc=0 seconds=0 p=0 f=0 s=0
    read -r rc seconds p f s < <(sed 's/[a-z_]*=//g' "$result")
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    echo "test-vm: job $name: $p passed, $f failed, $s skipped in ${seconds} s (rc $rc)"
    [ "$rc" = 0 ] || bad_jobs="$bad_jobs $name"
done
[ -f "$SHARE/results/setup.result" ] && ! grep -q '^rc=0 ' "$SHARE/results/setup.result" && bad_jobs="$bad_jobs set-up"
# The jobs' wall time: the guest's job less its set-up (jobs may overlap).
jobs_s=$(awk -v j="$job_s" -v s="${setup_s:-0}" 'BEGIN{ if (j == "n/a") print "n/a"; else printf "%.0f", j - s }')
status=passed
if [ "$vm_rc" != 0 ] || [ -n "$bad_jobs" ]; then
    status="FAILED (vm rc $vm_rc${bad_jobs:+; failed:$bad_jobs}; logs in $SHARE)"
fi
echo "test-vm: $((passed + failed + skipped)) checks ran in the VM: $passed passed, $failed failed, $skipped skipped;" \
     "$status; $((T3 - T0)) s: preparation $((T2 - T0)) s, boot ${boot_s} s, set-up ${setup_s:-n/a} s," \
     "tests ${jobs_s} s, shutdown ${shutdown_s} s"
[ "$status" = passed ]
