# In-oven weighing controller: firmware, simulated bench, host tools.
# `make test` / `make demo` / `make bench` each run `setup` first, so a fresh clone needs nothing else.
# Test tiers (README "Tests"; markers vm, e2e, slow in pyproject.toml):
#   test-fast  the pure core, the drivers and the host readers, in CPython and in the MicroPython VM
#              (-m "not slow and not e2e"): under a minute on 2 cores (about 62 s of CPU)
#   test       lint, then every test (about 4 min on 2 cores); not the reliability campaign
#              (make reliability, mk/reliability.mk) and no benchmark (make bench)
# test-fast runs each module's tests on one worker (--dist loadscope): a tests/dual module's VM run
# (one per module and worker, tests/conftest.py) then happens once.
PY      := .venv/bin/python
PIP     := .venv/bin/pip
PYTEST  := .venv/bin/pytest
OVENCTL := .venv/bin/ovenctl
STAMP   := .venv/.setup-stamp

.PHONY: setup test test-fast demo bench clean

include mk/lint.mk
include mk/reliability.mk
include mk/flash.mk
include mk/fit.mk

setup: $(STAMP) node_modules/.package-lock.json

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install --disable-pip-version-check -q -r requirements.txt
	$(PIP) install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: setup lint
	$(PYTEST) -q -n 2 --dist loadscope tests

test-fast: setup
	$(PYTEST) -q -n 2 --dist loadscope -m "not slow and not e2e" tests

demo: setup
	$(OVENCTL) sim --scenario boards/sim/scenarios/default.json --progress 1800 --screens build/screens --log build/demo-run.log --key build/demo.key

bench: setup
	mkdir -p build
	$(PY) tests/bench/bench.py --out build/bench.json

clean:
	rm -rf build .venv node_modules
