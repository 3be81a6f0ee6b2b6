# In-oven weighing controller: firmware, simulated bench, host tools.
# `make test` / `make demo` / `make bench` each run `setup` first, so a fresh clone needs nothing else.
PY      := .venv/bin/python
PIP     := .venv/bin/pip
PYTEST  := .venv/bin/pytest
OVENCTL := .venv/bin/ovenctl
STAMP   := .venv/.setup-stamp

.PHONY: setup test demo bench clean

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
	$(PYTEST) -q -n 2 tests

demo: setup
	$(OVENCTL) sim --scenario boards/sim/scenarios/default.json --progress 1800 --screens build/screens --log build/demo-run.log --key build/demo.key

bench: setup
	mkdir -p build
	$(PY) tests/bench/bench.py --out build/bench.json

clean:
	rm -rf build .venv node_modules
