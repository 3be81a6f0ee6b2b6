# The reliability campaign (issue 6): power cuts (in-process device on a littlefs-like flash, and
# real kills of the virtual device), every fault kind in every phase, watchdog stalls and the
# boot order, >= 100000 fuzzed run logs through every ovenctl reader, the run protocol under
# garbage, invalid methods/scenarios/config, flash full and filesystem errors. Writes
# build/reliability.json and prints a table; fails when a target is missed. About 15-25 min on
# 2 cores, so it is not part of `make test` (tests/host/test_reliability_smoke.py is).
# Included from the Makefile (uses its PY and setup): `make reliability`.
RELIABILITY_ARGS ?=

.PHONY: reliability

reliability: setup
	mkdir -p build
	$(PY) tests/reliability/campaign.py --out build/reliability.json $(RELIABILITY_ARGS)
