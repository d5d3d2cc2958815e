#!/bin/bash
# tests/vm/wheelhouse.sh PYTHON
#
# Makes sure a wheelhouse for the guest's Python (Debian 12: CPython 3.11,
# x86_64) exists in the cache and prints its directory. The guest has no
# network: it installs pyrunc's dependencies from here with
# `pip install --no-index --find-links`.
#
# The requirements are the exact versions installed in the project's venv
# (PYTHON is its interpreter: `pip freeze`), so the guest runs the versions
# the host tests. Binary wheels come from PyPI for the guest's platform;
# python-prctl has no binary wheel and is built here with PYTHON, which must
# be Debian 12's Python 3.11 (the guest's ABI; needs gcc, libcap-dev,
# python3-dev). pip itself (the venv's version: the guest runs it from its
# wheel, which spares the guest's venv its own pip install, ~50 s under
# emulation), setuptools and wheel (for a source install) are added.
#
# Cache: $PYRUNC_VM_CACHE (default /var/tmp/pyrunc-vm)/wheelhouse-<key>/, key
# = hash of this script and the requirement list; older ones are removed.
set -euo pipefail

PYTHON=${1:?usage: wheelhouse.sh PYTHON}
SELF=$(readlink -f "$0")
CACHE=${PYRUNC_VM_CACHE:-/var/tmp/pyrunc-vm}
GUEST_PY=3.11
log() { echo "[vm-wheelhouse] $*" >&2; }

version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$version" = "$GUEST_PY" ] || { log "$PYTHON is Python $version; the guest has $GUEST_PY"; exit 1; }

# Everything in the venv but pyrunc itself (installed editable there).
REQS=$("$PYTHON" -m pip freeze --disable-pip-version-check --exclude-editable --all \
       | grep -v -i -e '^pyrunc' -e '^pip==' -e '^setuptools==' -e '^wheel==' | sort)
PIP_VERSION=$("$PYTHON" -m pip --version | cut -d' ' -f2)
KEY=$( { cat "$SELF"; echo "$REQS"; echo "pip==$PIP_VERSION"; } | sha256sum | cut -c1-16)
OUT=$CACHE/wheelhouse-$KEY
if [ -f "$OUT/complete" ]; then
    echo "$OUT"
    exit 0
fi

mkdir -p "$CACHE"
BUILD=$(mktemp -d "$CACHE/wheelhouse-build.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT
PRCTL=$(echo "$REQS" | grep -i '^python-prctl==' || true)
echo "$REQS" | grep -v -i '^python-prctl==' > "$BUILD/requirements.txt"
echo "pip==$PIP_VERSION" >> "$BUILD/requirements.txt"
echo "setuptools" >> "$BUILD/requirements.txt"
echo "wheel" >> "$BUILD/requirements.txt"
log "pip download for cp311 manylinux2014_x86_64: $(tr '\n' ' ' < "$BUILD/requirements.txt")"
"$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux2014_x86_64 --python-version "$GUEST_PY" --implementation cp --abi cp311 \
    -d "$BUILD/wheels" -r "$BUILD/requirements.txt"
if [ -n "$PRCTL" ]; then
    log "building $PRCTL (no binary wheel on PyPI) with $PYTHON"
    "$PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps --use-pep517 \
        -w "$BUILD/wheels" "$PRCTL"
fi
echo "$REQS" > "$BUILD/wheels/requirements.txt"
touch "$BUILD/wheels/complete"
for old in "$CACHE"/wheelhouse-*; do
    case $old in *-build.*) continue ;; esac
    [ -e "$old" ] && [ "$old" != "$OUT" ] && rm -rf "$old"
done
mv "$BUILD/wheels" "$OUT"
log "$(ls "$OUT" | grep -c '\.whl$') wheels in $OUT"
echo "$OUT"
