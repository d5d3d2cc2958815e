#!/bin/bash
# VM job: the pytest integration suite (real containers) against the
# installed pyrunc. Environment: see tests/vm/guest/job.sh.
"$PY" -m pytest tests/integration -p no:cacheprovider -q -ra --junitxml="$VM_OUT/junit.xml"
rc=$?
"$PY" tests/vm/guest/counts.py junit "$VM_OUT/junit.xml" > "$VM_RESULT"
exit $rc
