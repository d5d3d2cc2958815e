#!/bin/bash
# VM job: the OCI conformance suite against the installed pyrunc, with the
# known deviation `make conformance` allows (conformance/README.md).
"$PY" conformance/run "$PYRUNC" --known-deviation delete_created 2>&1 | tee "$VM_OUT/conformance.out"
rc=${PIPESTATUS[0]}
"$PY" tests/vm/guest/counts.py conformance "$VM_OUT/conformance.out" > "$VM_RESULT"
exit $rc
