# A whole simulated test: blank (empty-pan) run for the load-cell drift, then the test itself,
# with the scenario's faults injected. Runs in the MicroPython VM (`ovenctl sim`) and in CPython
# (the wide test sweeps); the firmware code is the same in both.
#
# Calibration (firmware/oven/store/calstore.py, the same procedures as the device's buttons and ovenctl):
# each simulated run starts with an empty calibration store (a scratch /calib of its own); the
# simulated technician calibrates the span of every channel once (scenario "calibration": the
# reference masses, and what is really put on the pan), stores the check weight, and runs the
# check-weight test before the blank run and before the test. A refused span calibration leaves
# the default span; a check weight out of tolerance: the run does not start ("NOT_STARTED").
import os

from oven.run import app
from oven.store import calstore
from oven.run import plan as P
from oven.run import start as S
from oven.core import methods
from oven.ui import texts as ui
from oven.store import runlog
from oven.core import codes as C
from oven.core import verdict as V
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


def _ug(g):
    return int(g * 1000000 + 0.5)


def cal_dir_for(scn):
    pid = os.getpid() if hasattr(os, "getpid") else 0
    d = scn.get("_cal_dir") or "/tmp/ovsim%d_cal%d" % (pid, scn["seed"])
    for p in ("/tmp", d):
        try:
            os.mkdir(p)
        except OSError:
            pass
    for name in os.listdir(d):      # every simulated run starts with nothing stored
        os.remove(d + "/" + name)
    return d


def _cal_opts(scn, bench):
    cs = dict(scn.get("calibration") or {})
    cap = bench.lc_capacity_g
    refs = cs.get("ref_g") or [cap / 2, cap / 4]
    return {"span": cs.get("span", True), "ref_g": refs, "ref_actual_g": cs.get("ref_actual_g") or refs,
            "check_weight_g": cs.get("check_weight_g") or cap / 4,
            "check_actual_g": cs.get("check_actual_g"), "check_tol_mg": cs.get("check_tol_mg") or _tol_mg(bench),
            "check": cs.get("check", True), "check_history": cs.get("check_history", 5)}


def _tol_mg(bench):
    # the default check-weight tolerance: 20 mg, or 5 standard uncertainties of a check weighing
    # (two 32-sample means of the load cell's noise) on a coarse load cell, whichever is larger
    u_mg = bench.lc_noise_counts / 32 ** 0.5 * 2 ** 0.5 / bench.lc_counts_per_g * 1000.0
    return max(20.0, 5.0 * u_mg)


def _placer(bench, actual_g):
    # the simulated technician: puts on the pan what the procedure asks for (actual_g[k]: what
    # really goes on at step k instead of the stated mass)
    def place(proc):
        m = proc.mass_ug()
        if m == 0:
            bench.remove_mass(proc.ch)
            return
        k = len(proc.results) if isinstance(proc, calstore.SpanProcedure) else 1
        g = actual_g[k] if actual_g is not None and actual_g[k] is not None else m / 1000000
        bench.place_mass(proc.ch, g)
    return place


def calibrate(scn, bench, board, d, say=None):
    """The span of every channel (once: nothing is stored at the start of a simulated run) and
    the check weight. Returns what happened (for the result JSON)."""
    o = _cal_opts(scn, bench)
    bench.load_cells(0)
    n = bench.n_cells
    info = {"span": [], "span_error": None}
    if o["span"]:
        refs = o["ref_g"]
        act = list(o["ref_actual_g"]) + list(refs[len(o["ref_actual_g"]):])
        for ch in range(n):
            proc = calstore.SpanProcedure(n, ch, _ug(refs[0]), _ug(refs[1]) if len(refs) > 1 else 0,
                                          nominal_cpg=board.counts_per_g, d=d, cal_id="sim-ref",
                                          when=bench.t_ms // 1000)
            try:
                S.run_procedure(board, proc, None, say or _quiet, _placer(bench, [None] + list(act)))
            except calstore.CalError as e:
                info["span_error"] = str(e)
                break
            finally:
                bench.remove_mass(ch)
            info["span"].append(proc.span["counts_per_g"])
    if o["check"] and o["check_weight_g"]:
        calstore.set_check_weight(_ug(o["check_weight_g"]), int(o["check_tol_mg"] * 1000 + 0.5), "sim-check", d=d)
        # the lab's history of earlier check weighings (each a real weighing on this bench, at ambient)
        cal = calstore.load(n, board.counts_per_g, d)
        for k in range(o["check_history"]):
            check(scn, bench, board, cal, d, "history-%d" % (k + 1))
    return info


def _quiet(msg):
    pass


def check(scn, bench, board, cal, d, run):
    o = _cal_opts(scn, bench)
    if not o["check"]:
        return {"ok": None, "skipped": "scenario calibration.check: false"}
    act = o["check_actual_g"]
    r = S.check_weight(board, cal, d, _quiet, place=_placer(bench, [None, act]), run=run)
    for ch in range(bench.n_cells):
        bench.remove_mass(ch)
    return r


def cool_down(bench, band_c=0.2, max_s=36000):
    """Between the blank run and the test the oven and its load cells cool back to the lab's
    ambient (a lab runs the blank run on another day): the check weight and m0 are then weighed
    at the load-cell temperature a day's first test has, not straight after a hot run. Returns
    the seconds waited."""
    t0 = bench.t_ms
    while abs(bench.lc_c - bench.amb_c) > band_c and bench.t_ms - t0 < max_s * 1000:
        bench.advance(60000)
    return (bench.t_ms - t0) // 1000


def run_blank(scn, method, bench, board, progress_s=0, emit=None, cal=None):
    bench.load_cells(0)
    cpg = cal["channels"][0]["counts_per_g"] if cal is not None else board.counts_per_g
    cb = app.Controller(board, method, mode=app.MODE_BLANK, counts_per_g=cpg, cal=cal)
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
    d = cal_dir_for(scn)
    out["calibration"] = calibrate(scn, bench, board, d)
    cal = calstore.load(bench.n_cells, board.counts_per_g, d)
    cpg = cal["channels"][0]["counts_per_g"]
    run_id = "sim-%d" % scn["seed"]
    if blank_fit is None and scn.get("blank_run", True):
        chk = check(scn, bench, board, cal, d, run_id + "-blank")
        out["calibration"]["check_blank"] = chk
        if chk.get("ok") is False:
            return _not_started(out, bench, chk), None
        blank_fit, out["blank"] = run_blank(scn, method, bench, board, progress_s, emit, cal)
        out["blank"]["cooled_s"] = cool_down(bench)
    elif blank_fit is not None:
        out["blank"] = {"reused": True}
    chk = check(scn, bench, board, cal, d, run_id)
    out["calibration"]["check_test"] = chk
    cal = calstore.load(bench.n_cells, board.counts_per_g, d)    # with this check in the repeatability
    out["calibration"]["cal"] = cal
    if chk.get("ok") is False:
        return _not_started(out, bench, chk), None
    if isinstance(blank_fit, list):
        # the plan counts each test that uses a blank fit (plan.Plan._use_blank)
        blank_fit = [dict(ch, runs_used=ch.get("runs_used", 0) + 1) for ch in blank_fit]
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
        header = {"run_id": run_id, "fw_version": app.FW_VERSION, "board": "sim",
                  "mode": "test", "method": method, "cells": ["cell-%d" % (i + 1) for i in range(bench.n_cells)],
                  "calibration": {"counts_per_g": cpg,
                                  "span": "calib" if cal["source"] == "measured" else "nominal", "blank": blank_fit},
                  "cal": cal, "records": _records(scn, board, method, d, chk),
                  "scenario_seed": scn["seed"], "probe": board.probe is not None}
        log.open("run.log", header, opener=lambda p, m: mem)
    c = app.Controller(board, method, mode=app.MODE_TEST, blank=blank_fit, log=log, counts_per_g=cpg, cal=cal)
    if cal.get("pid"):
        c.pid.set_gains(cal["pid"]["kp"], cal["pid"]["ki"], cal["pid"]["kd"])
    tracker = _Tracker(bench, board, faults, progress_s, emit)
    c.live_tick = tracker
    if screens:
        from oven.ui import display          # framebuf: built into MicroPython; tests/shim in CPython
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
                      "no_pass": [C.NO_PASS_NAMES[x] for x in c.no_pass[i]],
                      "u_budget_ug": r.budget["terms_ug"] if r is not None and r.budget is not None else None,
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


def _records(scn, board, method, d, chk):
    """The log header's records, as plan.Plan.records() makes them on a device."""
    p = P.Plan(board, {"operator": scn.get("operator", "sim-operator"),
                       "cells": ["cell-%d" % (i + 1) for i in range(board.n_cells)]},
               method, None, blank_path=d + "/blank.json", say=_quiet)
    p.check_result = chk
    r = p.records()
    r["clock"] = {"source": "sim", "start_s": board.bench.t_ms // 1000}
    return r


def _not_started(out, bench, chk):
    """The check weight failed: no run (the device shows the message and stays idle)."""
    out.update({"verdict": "NOT_STARTED", "not_started": chk.get("message"), "cells": [], "soak_in_spec_s": 0,
                "soak_total_s": 0, "soak_temp_max_dev_c": 0.0, "heatup_overshoot_c": None, "heatup_s": 0,
                "faults": [], "events": [], "phases": [], "injected": [], "phase_start_chamber_c": {},
                "test_sim_s": 0, "sim_s": bench.t_ms / 1000, "safe_calls_s": [], "operator_answers": [],
                "screen": ["NOT STARTED", "check weight"]})
    return out
