#!/bin/bash
# VM job: the reliability runs at `make stress-ci`'s size (a twentieth of
# the full one), against the installed pyrunc.
PYRUNC_STRESS=1 PYRUNC_STRESS_SCALE=${PYRUNC_STRESS_SCALE:-0.05} \
    "$PY" -m pytest tests/stress -s -p no:cacheprovider -q -ra --junitxml="$VM_OUT/junit.xml"
rc=$?
"$PY" tests/vm/guest/counts.py junit "$VM_OUT/junit.xml" > "$VM_RESULT"
exit $rc
