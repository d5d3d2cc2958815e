# pyrunc: `make demo` sets everything up and runs a container; `make test` runs every test.
# Both install what is missing first (Debian packages, then a venv in .venv/).

PYTHON_BASE ?= /usr/bin/python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYRUNC := $(VENV)/bin/pyrunc
DEMO_BUNDLE ?= demo-bundle
PYTEST_ARGS ?=
# The Python versions `make test` runs beside the venv's own (setup.cfg claims these).
PYTHON_VERSIONS ?= 3.12 3.13

.PHONY: all setup deps compile demo dist test test-pythons test-unit test-root test-vm conformance bench bench-vm e2e e2e-ci stress stress-ci clean

all: setup

deps:
	tools/install-deps

# The venv is made from the system's real interpreter (not a shell shim);
# the editable install in "compat" mode is a plain path entry, which keeps
# interpreter start-up cheap (share/pyrunc/main.py reads it without site.py).
# setuptools' editable wheels leave out data_files (editable_wheel asks the
# distribution for has_data, which does not exist): the command, bin/pyrunc,
# and the main.py it runs are data files (setup.cfg says why), so they are
# copied in here as a wheel install would place them. Only for this
# development venv: `pip install .` and the wheel need no step after pip.
$(VENV)/.installed: setup.cfg setup.py pyrunc/linux/_sys.c pyproject.toml bin/pyrunc share/pyrunc/main.py | deps
	rm -rf $(VENV)
	$(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]' setuptools --config-settings editable_mode=compat
	install -m 755 bin/pyrunc $(VENV)/bin/pyrunc
	install -D -m 644 share/pyrunc/main.py $(VENV)/share/pyrunc/main.py
	touch $@

# Bytecode ahead of time: with PYTHONDONTWRITEBYTECODE set, Python would
# otherwise recompile every module on every call.
compile:
	$(PY) -m compileall -q pyrunc

setup: deps $(VENV)/.installed compile

demo: setup
	@tools/demo $(PYRUNC) $(PY) $(DEMO_BUNDLE)

# What a user installs: an sdist, and a wheel pip builds from it, in dist/.
dist: setup
	rm -rf dist
	$(PY) -c 'from setuptools import build_meta; build_meta.build_sdist("dist")'
	$(PY) -m pip wheel -q --disable-pip-version-check --no-deps -w dist dist/pyrunc-*.tar.gz

# Every test: unit and integration (pytest), our OCI conformance suite, the
# Podman and containerd engine scenarios, the short reliability runs, and the
# VM lane (the same suites again on a systemd + cgroup v2 + AppArmor host). The
# parts that create containers need root; without it they are skipped, saying so.
# Not here (longer, or needing more of the machine): make e2e (adds Docker),
# make stress (full size), make bench.
test: setup
	tools/install-deps zsh runc  # zsh: the completion test drives one; runc: the side-by-side compatibility tests
	$(PY) -m pytest tests $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-pythons
	@if [ "$$(id -u)" = 0 ]; then \
		$(MAKE) --no-print-directory conformance e2e-ci stress-ci test-vm; \
	else \
		echo "make test: conformance, e2e-ci, stress-ci and test-vm need root: skipped"; \
	fi

# The unit tests and tests/integration/test_install.py (sdist, wheel, a fresh
# venv, a container lifecycle and a hostile environment through the installed
# command) with each other Python of PYTHON_VERSIONS, in .venv-X.Y made like
# .venv. A version this machine lacks is skipped, saying so (tools/find-python
# says where it looks, and which variable names one).
test-pythons: deps
	@for v in $(PYTHON_VERSIONS); do \
		py=$$(tools/find-python $$v) || { echo "make test: Python $$v skipped"; continue; }; \
		echo "make test: Python $$v ($$py)"; \
		$(MAKE) --no-print-directory VENV=.venv-$$v PYTHON_BASE=$$py .venv-$$v/.installed && \
		.venv-$$v/bin/python -m pytest tests/unit tests/integration/test_install.py $(PYTEST_ARGS) || exit 1; \
	done

test-unit: setup
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-root: setup
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

# The VM lane (tests/vm/README.md): a Debian 12 guest with systemd as PID 1,
# pure cgroup v2 and AppArmor, under qemu; the integration, conformance and
# stress-ci suites run in it against pyrunc installed from its wheel. The
# image and the guest's wheels are built once and cached in /var/tmp/pyrunc-vm.
# VM_JOBS="testbed integration" picks jobs (tests/vm/jobs/).
test-vm: setup
	tools/install-deps qemu-system-x86 qemu-utils mmdebstrap e2fsprogs
	tests/vm/lane.sh $(PY) $(VM_JOBS)

# delete of a created container without --force succeeds, as with runc and
# crun: containerd's shim deletes created tasks that way (conformance/README.md).
conformance: setup
	$(PY) conformance/run $(abspath $(PYRUNC)) --known-deviation delete_created

bench: setup
	tools/install-deps runc crun
	$(PY) bench/lifecycle.py --pyrunc $(PYRUNC) $(BENCH_ARGS)

# The same table with --systemd-cgroup, in the VM lane's guest (systemd,
# pure cgroup v2) beside runc and crun: tests/vm/jobs/bench-systemd.sh.
# Under emulation: compare its ratios, not its times.
bench-vm: setup
	tools/install-deps qemu-system-x86 qemu-utils mmdebstrap e2fsprogs
	tests/vm/lane.sh $(PY) bench-systemd

# Podman, containerd (ctr + CRI) and Docker driving pyrunc in runc's place
# (tests/e2e/README.md). The set-up installs the engines (Debian packages) and
# builds the test images once; both are skipped when already there.
e2e: setup
	tests/e2e/setup-engines.sh
	tests/e2e/run-all.sh $(abspath $(PYRUNC))

e2e-ci: setup
	tests/e2e/setup-engines.sh
	tests/e2e/run-all.sh $(abspath $(PYRUNC)) podman containerd

# Reliability under faults, concurrency and hostile input (tests/stress/):
# full sizes (2 x 500 concurrent lifecycles, 1000 in a row, 20000 configs ...),
# and a twentieth of them for CI (a few minutes).
stress: setup
	PYRUNC_STRESS=1 PYRUNC_STRESS_SCALE=$${PYRUNC_STRESS_SCALE:-1.0} $(PY) -m pytest tests/stress -s $(PYTEST_ARGS)

stress-ci: setup
	PYRUNC_STRESS=1 PYRUNC_STRESS_SCALE=0.05 $(PY) -m pytest tests/stress -s $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .venv-3.* $(DEMO_BUNDLE) .pytest_cache build dist
