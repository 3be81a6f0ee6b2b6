# A whole simulated test: blank (empty-pan) run for the load-cell drift, then the test itself,
# with the scenario's faults injected. Runs in the MicroPython VM (`ovenctl sim`) and in CPython
# (the wide test sweeps); the firmware code is the same in both.
import app
import methods
import ui
import runlog
import codes as C
import verdict as V
from sim.model import Bench
from sim.board import SimBoard

FAULT_NAMES = {}
for _k in dir(C):
    if _k.startswith("F_"):
        FAULT_NAMES[getattr(C, _k)] = _k[2:]

# what each fault kind's detection looks like in the run's record
DETECTION_CODES = {
    "thermocouple_open": (C.F_TC_OPEN,),
    "thermocouple_short": (C.F_TC_SHORT,),
    "heater_stuck_on": (C.F_RUNAWAY, C.F_TEMP_MAX),
    "heater_dead": (C.F_HEAT_GAIN, C.F_RUNAWAY),
    "vacuum_leak": (C.E_VAC_EXCURSION, C.F_LEAK_RATE, C.F_VACUUM_LOST, C.F_PUMPDOWN_TIMEOUT),
    "loadcell_disconnect": (C.E_LC_FAULT, C.E_WEIGH_RETRY, C.F_WEIGH_TIMEOUT, C.F_LOADCELL),
    "loadcell_glitches": (C.E_LC_GLITCH, C.E_WEIGH_RETRY),
}


class MemFile:
    # The device's log file, kept in memory and handed to the host at the end of the run.
    def __init__(self):
        self.data = bytearray()
        self.synced = 0

    def write(self, buf, off=0, n=-1):
        if n < 0:
            n = len(buf) - off
        self.data.extend(memoryview(buf)[off:off + n])
        return n

    def flush(self):
        self.synced = len(self.data)

    def close(self):
        self.synced = len(self.data)


class _Tracker:
    """live_tick hook: progress lines, phase-triggered faults, and the heater-off evidence."""

    def __init__(self, bench, board, faults, progress_s, emit):
        self.bench = bench
        self.board = board
        self.pending = [f for f in faults if f.get("phase")]
        self.progress_s = progress_s
        self.emit = emit
        self.seen_phases = 0
        self.injected = []        # [kind, start_s (test time), duration_s, phase]
        self.phase_start_c = {}   # phase name -> true chamber temperature at its start
        self.capture = None       # display.Capture: screenshots at each screen change

    def __call__(self, c):
        t = c.t_s()
        while self.seen_phases < len(c.phases):
            name, start_s, _ = c.phases[self.seen_phases]
            self.seen_phases += 1
            if name not in self.phase_start_c:
                self.phase_start_c[name] = self.bench.chamber_c
            keep = []
            for f in self.pending:
                if f["phase"] == name:
                    # relative to the phase's start (which may be a tick or two before this call)
                    start = self.bench.t_ms / 1000 - (t - start_s) + f["at_s"]
                    self.bench.add_fault(f["kind"], start, f.get("duration_s"), f.get("channel"))
                    self.injected.append([f["kind"], start_s + f["at_s"], f.get("duration_s"), name])
                else:
                    keep.append(f)
            self.pending = keep
        if self.progress_s and t % self.progress_s == 0 and self.emit:
            live = ",".join([str(c.live_ppm[i]) for i in range(c.n)])
            self.emit("@@P %d %d %s %d %d %d %d %s" % (c.mode, t, app.PHASE_NAMES[c.phase], c.temp_c_x100,
                                                      c.pressure_pa, c.duty_ppm, c.soak_in_spec_ms // 1000, live))
        if self.capture is not None:
            self.capture.check(c)


def _phases(c):
    return [{"name": p[0], "start_s": p[1], "end_s": p[2]} for p in c.phases]


def _faults(c):
    return [{"code": f[0], "name": FAULT_NAMES.get(f[0], str(f[0])), "t_s": f[1]} for f in c.faults]


def run_blank(scn, method, bench, board, progress_s=0, emit=None):
    bench.load_cells(0)
    cb = app.Controller(board, method, mode=app.MODE_BLANK, counts_per_g=board.counts_per_g)
    cb.live_tick = _Tracker(bench, board, [], progress_s, emit)
    cb.run()
    info = {"phases": _phases(cb), "faults": _faults(cb), "error": cb.blank_error, "sim_s": cb.t_s(),
            "k_counts_per_c": [ch["k_num"] * 100 / ch["k_den"] for ch in cb.blank_fit] if cb.blank_fit else None}
    return cb.blank_fit, info


def run_scenario(scn, progress_s=0, want_log=False, emit=None, blank_fit=None, screens=False, key=None):
    """Run a normalized scenario. Returns (result dict, log bytes or None). A precomputed blank
    fit (same seed and load cell) may be passed to skip the blank run (test sweeps). screens=True
    adds result["screens"]: the display's framebuffer (hex) at each screen change and the verdict."""
    method = methods.validate(scn["method"])
    bench = Bench(scn)
    board = SimBoard(bench)
    out = {"method": method["name"], "blank": None}
    if blank_fit is None and scn.get("blank_run", True):
        blank_fit, out["blank"] = run_blank(scn, method, bench, board, progress_s, emit)
    elif blank_fit is not None:
        out["blank"] = {"reused": True}
    bench.load_cells(0)
    t_start_s = bench.t_ms // 1000
    # ambient drifts from ambient_c to ambient_end_c over the test's expected duration
    bench.set_ambient_ramp(t_start_s, t_start_s + 30000, scn["ambient_c"], scn["ambient_end_c"])
    faults = scn.get("faults", [])
    injected = []
    for f in faults:
        if not f.get("phase"):
            bench.add_fault(f["kind"], t_start_s + f["at_s"], f.get("duration_s"), f.get("channel"))
            injected.append([f["kind"], f["at_s"], f.get("duration_s"), None])
    log = None
    mem = None
    if want_log:
        mem = MemFile()
        log = runlog.RunLog(bench.n_cells, key=key)     # key: the device key (seals the log) or None
        header = {"run_id": "sim-%d" % scn["seed"], "fw_version": app.FW_VERSION, "board": "sim",
                  "mode": "test", "method": method, "cells": ["cell-%d" % (i + 1) for i in range(bench.n_cells)],
                  "calibration": {"counts_per_g": board.counts_per_g, "span": "nominal", "blank": blank_fit},
                  "scenario_seed": scn["seed"], "probe": board.probe is not None}
        log.open("run.log", header, opener=lambda p, m: mem)
    c = app.Controller(board, method, mode=app.MODE_TEST, blank=blank_fit, log=log, counts_per_g=board.counts_per_g)
    tracker = _Tracker(bench, board, faults, progress_s, emit)
    c.live_tick = tracker
    if screens:
        import display          # framebuf: built into MicroPython; tests/shim in CPython
        board.display = display.MemDisplay()
        tracker.capture = display.Capture(board.display, method)
    board.safe_calls = []
    c.run()
    if screens:
        tracker.capture.final(c)
        out["screens"] = tracker.capture.shots
    fv = c.final_verdict()
    cells = []
    for i in range(c.n):
        r = c.results[i]
        cells.append({"verdict": V.VERDICT_NAMES[r.verdict] if r is not None else V.VERDICT_NAMES[fv],
                      "loss_ppm": r.loss_ppm if r is not None else None,
                      "u_ppm": r.u_ppm if r is not None else None,
                      "loss_pct_x100": r.loss_pct_x100 if r is not None else None,
                      "flags": r.flags if r is not None else 0,
                      "true_loss_ppm": bench.true_loss_ppm(i),
                      "method_loss_ppm": bench.method_loss_ppm(i, method),
                      "leak_visible": c.leak[i], "early_fail": c.early_fail[i],
                      "m0_g": bench.initial_mass_g(i)})
    out.update({
        "verdict": V.VERDICT_NAMES[fv],
        "cells": cells,
        "soak_in_spec_s": c.soak_in_spec_ms // 1000,
        "soak_total_s": c.soak_total_ms // 1000,
        "soak_temp_max_dev_c": c.soak_dev_max_c_x100 / 100,
        "heatup_overshoot_c": c.overshoot_c_x100 / 100 if c.overshoot_c_x100 > -100000 else None,
        "heatup_s": c.heatup_s,
        "faults": _faults(c),
        "events": c.events,
        "phases": _phases(c),
        "injected": injected + tracker.injected,
        "phase_start_chamber_c": tracker.phase_start_c,
        "test_sim_s": c.t_s(),
        "sim_s": bench.t_ms / 1000,
        "safe_calls_s": [(t - t_start_s * 1000) / 1000 for t in board.safe_calls],
        "operator_answers": board.operator.answers,
        "screen": ui.verdict_lines(c),
    })
    return out, (bytes(mem.data) if mem is not None else None)
