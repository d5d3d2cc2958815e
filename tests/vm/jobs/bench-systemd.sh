#!/bin/bash
# VM job (not in the default list: a benchmark asserts nothing): issue 20's
# lifecycle table with the systemd cgroup driver, pyrunc beside runc and crun
# (bench/lifecycle.py --systemd-cgroup: every container a scope of
# system.slice). Under TCG (the interpreter floor is ~110 ms there) only the
# ratios mean something; one round of 5 reps took 464 s. `make bench-vm` runs it.
"$PY" bench/lifecycle.py --pyrunc "$PYRUNC" --systemd-cgroup --rounds 1 --reps 5 | tee "$VM_OUT/bench.txt"
rc=${PIPESTATUS[0]}
echo "passed=0 failed=$((rc != 0)) skipped=0" > "$VM_RESULT"
exit $rc
