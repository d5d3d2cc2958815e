#!/bin/bash
# run-all.sh RUNTIME_BINARY [ENGINE...] - run e2e-<engine>.sh for each ENGINE
# (default: podman containerd docker) one after the other with the same
# runtime, streaming their PASS/FAIL lines, then print the combined
# "N passed, M failed" line; exit non-zero if anything failed.
# Env is passed through (LOG_CONTRACT is suffixed with the engine name:
# LOG_CONTRACT=/tmp/c -> /tmp/c/podman ...). `make e2e` runs all three,
# `make e2e-ci` only podman and containerd (ctr + CRI).
set -u
dir=$(cd "$(dirname "$0")" && pwd)
rt=${1:?usage: run-all.sh RUNTIME_BINARY [podman|containerd|docker ...]}
shift
engines=("$@")
[ ${#engines[@]} -gt 0 ] || engines=(podman containerd docker)
tp=0; tf=0
tmp=$(mktemp /tmp/pyrunc-e2e-run-all.XXXXXX)
trap 'rm -f "$tmp"' EXIT
for e in "${engines[@]}"; do
    if [ ! -x "$dir/e2e-$e.sh" ]; then
        echo "FAIL: $e: no such engine script $dir/e2e-$e.sh"; tf=$((tf+1)); continue
    fi
    start=$(date +%s)
    if [ -n "${LOG_CONTRACT:-}" ]; then
        LOG_CONTRACT="$LOG_CONTRACT/$e" "$dir/e2e-$e.sh" "$rt" 2>&1 | tee "$tmp"
    else
        "$dir/e2e-$e.sh" "$rt" 2>&1 | tee "$tmp"
    fi
    echo "[$e] took $(( $(date +%s) - start )) s"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp" | tail -1)
    if [ -z "$line" ]; then tf=$((tf+1)); echo "FAIL: $e: script produced no summary"; continue; fi
    p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
    tp=$((tp+p)); tf=$((tf+f))
done
echo "=============================================================="
echo "$tp passed, $tf failed"
[ "$tf" = 0 ]
