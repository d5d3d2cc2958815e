#!/bin/bash
# The guest side of the VM lane (run by vm-job.service as /vmshare/job.sh, as
# root, cwd /vmshare = the 9p share). It installs pyrunc the way a user would,
# on the guest's own disk, then runs the jobs named in /vmshare/jobs.
#
# From the host, in /vmshare: src.tar (the work tree), dist/pyrunc-*.whl,
# wheelhouse/ (the dependencies), jobs (one group a line, run in turn: a job
# name, or names joined by "+" to run those jobs at the same time).
# A job is tests/vm/jobs/NAME.sh in the source copy, run with cwd = the
# source copy and this environment:
#   PY         the venv's python (pyrunc and its test dependencies installed)
#   PYRUNC     the venv's pyrunc command
#   SRC        the source copy (/var/tmp/pyrunc-src: tests/, conformance/ ...)
#   VM_OUT     a directory for its reports (copied to /vmshare/results/NAME/)
#   VM_RESULT  the file where it writes its counts: "passed=N failed=N skipped=N"
#              (tests/vm/guest/counts.py makes that line from pytest's junit
#              XML or the conformance report)
# Its exit status is its verdict. For each job, /vmshare/results/NAME.result
# gets "rc=.. seconds=.. passed=.. failed=.. skipped=..". Exit status: the
# number of jobs that failed (or 100 when the set-up failed).
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
SHARE=/vmshare
SRC=/var/tmp/pyrunc-src
VENV=/var/tmp/pyrunc-venv
RESULTS=$SHARE/results
mkdir -p "$RESULTS"
say() { echo "[vm-guest] $*"; }
fail_setup() { say "set-up failed: $*"; echo "rc=1 seconds=0 passed=0 failed=1 skipped=0" > "$RESULTS/setup.result"; exit 100; }

t0=$SECONDS
say "host: $(uname -r), cgroup fs $(stat -fc %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)," \
    "lsm: $(cat /sys/kernel/security/lsm), clock source: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)," \
    "system: $(systemctl is-system-running), pid 1: $(cat /proc/1/comm)"
say "our cgroup: $(cut -d: -f3 /proc/self/cgroup)"

rm -rf "$SRC" "$VENV"
mkdir -p "$SRC"
tar -xf "$SHARE/src.tar" -C "$SRC" || fail_setup "cannot unpack src.tar"
# A venv without pip: pip runs from its wheel instead (installing it into
# the venv first costs ~50 s under emulation).
python3 -m venv --without-pip "$VENV" || fail_setup "python3 -m venv"
pip_wheel=$(ls "$SHARE"/wheelhouse/pip-*.whl 2>/dev/null | head -1)
[ -n "$pip_wheel" ] || fail_setup "no pip wheel in the wheelhouse"
wheel=$(ls "$SHARE"/dist/pyrunc-*.whl 2>/dev/null | head -1)
[ -n "$wheel" ] || fail_setup "no pyrunc wheel in $SHARE/dist"
# One pip run (each costs seconds under emulation); bytecode is written at
# first import instead of for every module of every package now.
PIP=("$VENV/bin/python" "$pip_wheel/pip" install -q --disable-pip-version-check --no-compile --no-index
     --find-links "$SHARE/wheelhouse")
"${PIP[@]}" -r "$SHARE/wheelhouse/requirements.txt" "$wheel" || fail_setup "pip install $wheel"
say "installed $(basename "$wheel") and its dependencies ($((SECONDS - t0)) s)"
# Does the installed wheel carry everything pyrunc reads at run time?
if missing=$("$VENV/bin/python" -c 'from pyrunc.spec import schema; schema.schema_dir()' 2>&1); then
    # The tests must import the installed pyrunc, not the copy's.
    rm -rf "$SRC/pyrunc" "$SRC/oci-schemas"
else
    # TODO(issue 14): the wheel lacks files pyrunc needs at run time (its
    # packaging is being fixed); until then install the source copy as
    # `make setup` does (editable), over the wheel.
    say "WARNING: the wheel is incomplete (${missing##*$'\n'}); installing the source copy instead (editable)"
    "${PIP[@]}" wheel setuptools || fail_setup "pip install wheel setuptools"
    "${PIP[@]}" --no-deps --no-build-isolation -e "$SRC" --config-settings editable_mode=compat \
        || fail_setup "pip install -e $SRC"
    "$VENV/bin/python" -c 'from pyrunc.spec import schema; schema.schema_dir()' || fail_setup "pyrunc from source"
fi
"$VENV/bin/pyrunc" --version | sed 's/^/[vm-guest] /'
say "set-up took $((SECONDS - t0)) s"
echo "rc=0 seconds=$((SECONDS - t0)) passed=0 failed=0 skipped=0" > "$RESULTS/setup.result"

# run_job NAME: one job, its output to stdout; records NAME.result.
run_job() {
    local name=$1 script=$SRC/tests/vm/jobs/$1.sh out=/var/tmp/pyrunc-vm-out/$1 started=$SECONDS rc counts
    rm -rf "$out"; mkdir -p "$out"
    if [ -f "$script" ]; then
        (cd "$SRC" && PY=$VENV/bin/python PYRUNC=$VENV/bin/pyrunc SRC=$SRC VM_OUT=$out \
            VM_RESULT=$out/counts bash "$script" </dev/null)
        rc=$?
    else
        say "no such job: $script"
        rc=127
    fi
    counts=$(cat "$out/counts" 2>/dev/null)
    [ -n "$counts" ] || counts="passed=0 failed=1 skipped=0"
    echo "rc=$rc seconds=$((SECONDS - started)) $counts" > "$RESULTS/$name.result"
    mkdir -p "$RESULTS/$name" && cp -r "$out/." "$RESULTS/$name/"
    say "=== job $name: rc=$rc, $((SECONDS - started)) s, $counts"
}

# One group a line: a group's jobs ("a+b") run at the same time, each with
# its output in a file shown when it ends; the groups run one after another.
# Those files are on the share (live/NAME.log), so that the host can show
# where a job stood when the VM's time ran out.
mkdir -p "$SHARE/live"
for group in $(cat "$SHARE/jobs"); do
    names=${group//+/ }
    echo
    if [ "$names" = "$group" ]; then
        say "=== job $group"
        run_job "$group"
        continue
    fi
    say "=== jobs $names, at the same time"
    pids=()
    for name in $names; do
        run_job "$name" > "$SHARE/live/$name.log" 2>&1 &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}"
    done
    for name in $names; do
        echo
        say "=== output of job $name"
        cat "$SHARE/live/$name.log"
    done
done
failed_jobs=0
for result in "$RESULTS"/*.result; do
    grep -q '^rc=0 ' "$result" || failed_jobs=$((failed_jobs + 1))
done
exit "$failed_jobs"
