"""Scenario sweeps on the simulated bench, with the firmware running under CPython (the same code
that runs in the MicroPython VM and on the board; tests compare the two on sample scenarios).

Used by the test suite (accuracy and safety sweeps) and by `make bench`."""
import copy
import os
import statistics
import sys

from ovenctl.vmrun import ROOT

for _p in ("firmware", "boards", os.path.join("tests", "shim")):
    _full = os.path.join(ROOT, _p)
    if _full not in sys.path:
        sys.path.insert(0, _full)

from ovenctl.scenario import normalize  # noqa: E402
from sim import runner  # noqa: E402

FAULT_KINDS = ("thermocouple_open", "thermocouple_short", "heater_stuck_on", "heater_dead", "vacuum_leak",
               "loadcell_disconnect", "loadcell_glitches")
PHASES = ("PRECHECK", "TARE", "LOAD", "INITIAL_WEIGH", "PREHEAT", "PUMPDOWN", "HEATUP", "SOAK", "COOLDOWN", "VENT",
          "FINAL_WEIGH", "LEAK_CHECK")
# How long each injected fault lasts (None: until the end). Heater faults are permanent: a dead
# heater matters only once heat is needed, a stuck SSR only while the contactor is closed.
FAULT_DURATION_S = {"thermocouple_open": 30, "thermocouple_short": 30, "heater_stuck_on": None,
                    "heater_dead": None, "vacuum_leak": 600, "loadcell_disconnect": 60,
                    "loadcell_glitches": 600}
_ATMOSPHERIC = ("PRECHECK", "TARE", "LOAD", "INITIAL_WEIGH", "VENT", "FINAL_WEIGH", "LEAK_CHECK")


def observable(kind, phase, method=None):
    """Whether a fault of this kind injected in this phase has any physical effect the controller
    could see. Not observable: a dead heater after the soak (no heat is needed any more), and a
    temporary vacuum leak while the chamber is at atmospheric pressure anyway: vented, or in PREHEAT
    (heat_in "air": closed, not pumped) and in COOLDOWN under cool_in "air" (vented). `method`: the
    scenario's method (a dict or preset name); None = the methods' defaults (heat and cool in air)."""
    if kind == "heater_dead":
        return phase not in ("COOLDOWN", "VENT", "FINAL_WEIGH", "LEAK_CHECK")
    if kind == "vacuum_leak":
        cool_air = not (isinstance(method, dict) and method.get("cool_in", "air") != "air")
        return phase not in _ATMOSPHERIC and phase != "PREHEAT" and not (phase == "COOLDOWN" and cool_air)
    return True


class BlankCache:
    """Blank-run fits are a property of the bench (seed, load cell, oven): compute once, reuse."""

    def __init__(self):
        self._fits = {}

    def get(self, scn):
        key = (scn["seed"], repr(scn["load_cell"]), repr(scn["oven"]), len(scn["cells"]), repr(scn["vacuum"]))
        if key not in self._fits:
            from oven.core import methods
            from sim.model import Bench
            from sim.board import SimBoard
            s = copy.deepcopy(scn)
            bench = Bench(s)
            board = SimBoard(bench)
            fit, info = runner.run_blank(s, methods.validate(s["method"]), bench, board)
            self._fits[key] = fit
        return self._fits[key]


def run(scn_obj, blank_cache=None, want_log=False, key=None):
    scn = normalize(scn_obj)
    fit = blank_cache.get(scn) if (blank_cache is not None and scn["blank_run"]) else None
    res, log = runner.run_scenario(scn, want_log=want_log, blank_fit=fit, key=key)
    return res, log


def accuracy_scenarios(seeds=(11, 12)):
    """Seeds × masses × volatile contents × ambient change (±3 °C) × load-cell drift."""
    out = []
    masses = (20.0, 45.0, 120.0)
    volatiles = (0.005, 0.10, 0.60, 2.0)
    k = 0
    for seed in seeds:
        for mass in masses:
            for vol in volatiles:
                k += 1
                amb_end = (23.0 + 3.0, 23.0 - 3.0, 23.0)[k % 3]
                drift = (20.0, 60.0, -40.0, 0.0)[k % 4]
                out.append({"seed": seed * 100 + k, "ambient_c": 23.0, "ambient_end_c": amb_end,
                            "cells": [{"mass_g": mass, "volume_cm3": mass / 2.7, "volatile_g": vol,
                                       "evap_tau_min": (40.0, 90.0, 20.0)[k % 3]}],
                            "load_cell": {"zero_drift_counts_per_c": drift}})
    return out


def accuracy_sweep(blank_cache=None, seeds=(11, 12), verify=True):
    """Each case's run log also goes through `ovenctl verify` (independent Fraction arithmetic):
    `verify_exit` is its exit code (0 = agrees with the device)."""
    from ovenctl.logfile import read_log
    from ovenctl.verify import verify_log
    blank_cache = blank_cache or BlankCache()
    rows = []
    for s in accuracy_scenarios(seeds):
        res, log = run(s, blank_cache, want_log=verify)
        vexit = verify_log(read_log(log))["exit_code"] if verify else None
        c = res["cells"][0]
        rows.append({"seed": s["seed"], "mass_g": s["cells"][0]["mass_g"], "volatile_g": s["cells"][0]["volatile_g"],
                     "ambient_end_c": s["ambient_end_c"], "drift": s["load_cell"]["zero_drift_counts_per_c"],
                     "verdict": res["verdict"], "cell_verdict": c["verdict"], "loss_ppm": c["loss_ppm"],
                     "u_ppm": c["u_ppm"], "true_loss_ppm": c["true_loss_ppm"], "no_pass": c.get("no_pass", []),
                     "method_loss_ppm": c.get("method_loss_ppm"),
                     "err_ppm": None if c["loss_ppm"] is None else c["loss_ppm"] - c["true_loss_ppm"],
                     "verify_exit": vexit})
    errs = [r["err_ppm"] for r in rows if r["err_ppm"] is not None]
    summary = {"accuracy_cases": len(rows),
               "verify_disagreements": sum(1 for r in rows if r["verify_exit"] not in (0, None)), "accuracy_worst_ppm": round(max(abs(e) for e in errs), 1),
               "accuracy_sd_ppm": round(statistics.pstdev(errs), 1), "accuracy_mean_ppm": round(statistics.mean(errs), 1)}
    return rows, summary


# Fault sweeps use a 1-hour soak: every phase and transition is the same as in the 6-hour method,
# the run is 2.5x shorter. (The accuracy sweep and the VM tests use the real 6-hour method.)
SWEEP_METHOD = {"base": "gb-2026", "soak_s": 3600, "soak_max_total_s": 7200}
SWEEP_SOAK_S = 3600


def fault_case(kind, phase, seed=7):
    f = {"kind": kind, "phase": phase, "at_s": 2.0 if phase not in ("SOAK", "HEATUP", "COOLDOWN") else 300.0,
         "duration_s": FAULT_DURATION_S[kind]}
    if kind.startswith("loadcell"):
        f["channel"] = 0
    return {"seed": seed, "method": SWEEP_METHOD, "faults": [f]}


def detected(kind, res, vacuum_pa=10000):
    codes = set(runner.DETECTION_CODES[kind])
    seen = set(f["code"] for f in res["faults"]) | set(e[1] for e in res["events"])
    if kind == "vacuum_leak":
        # a soak excursion counts when it was a pressure excursion
        if any(e[1] == runner.C.E_EXCURSION_START and e[3] > vacuum_pa for e in res["events"]):
            return True
    return bool(seen & codes)


# ---------------------------------------------------------------- the decision sweep (issue 10)
# Cells near each method's limit, judged against what the method itself would give: the loss the
# cell would have held at the method's conditions for the method's time (Bench.method_loss_ppm).
# wrong_pass: a PASS where that loss is beyond the limit; wrong_fail: a FAIL where it is below the
# limit minus the device's own U. Runs hold 4 cells of one mass class on one load cell; the
# variants (reference probe fitted or not, blank run or not) rotate over the runs.
DECISION_METHODS = ("gb-2026", "tcsae-434-2025")
# (cell mass g, load-cell capacity g, noise counts rms): coin cells to vehicle pouch cells
DECISION_MASSES = ((2.0, 100.0, 30.0), (5.0, 100.0, 30.0), (20.0, 200.0, 30.0), (45.0, 200.0, 30.0),
                   (120.0, 500.0, 30.0), (250.0, 1000.0, 60.0), (400.0, 1000.0, 40.0), (1000.0, 2000.0, 40.0),
                   (2000.0, 5000.0, 40.0))
DECISION_TARGETS = (0.90, 0.96, 0.99, 1.01, 1.04, 1.10)      # method loss / limit
DECISION_TAUS_MIN = (20.0, 1000.0)                         # fast and slow volatiles
DECISION_VARIANTS = ((True, True), (False, True), (True, False), (False, False))   # (probe, blank_run)


def _cell_density_g_cm3(mass_g):
    return 2.4 if mass_g < 100 else 2.2


def decision_scenarios(methods_=DECISION_METHODS, masses=DECISION_MASSES, seed0=500):
    """One scenario per run, each with its cells' intended method loss (ppm) for the report."""
    from oven.core import methods as M
    from sim.model import Bench
    out = []
    k = 0
    cells_all = [(t, tau) for tau in DECISION_TAUS_MIN for t in DECISION_TARGETS]
    for meth in methods_:
        m = M.validate(meth)
        for mass, cap, noise in masses:
            for j in range(0, len(cells_all), 4):
                probe, blank = DECISION_VARIANTS[k % len(DECISION_VARIANTS)]
                k += 1
                cells = []
                for target, tau in cells_all[j:j + 4]:
                    c = {"mass_g": mass, "volume_cm3": round(mass / _cell_density_g_cm3(mass), 3),
                         "volatile_g": 1.0, "evap_tau_min": tau}
                    # the method loss is proportional to the volatile content (first-order release)
                    per_g = Bench(normalize({"seed": 1, "cells": [c], "load_cell": {"capacity_g": cap}})
                                  ).method_loss_ppm(0, m)
                    c["volatile_g"] = round(target * m["limit_ppm"] / per_g, 6)
                    cells.append(c)
                out.append({"seed": seed0 + k, "method": meth, "probe": probe, "blank_run": blank,
                            "description": "decision sweep %s %.0f g" % (meth, mass),
                            "load_cell": {"capacity_g": cap, "noise_counts_rms": noise},
                            "cells": cells})
    return out


def decision_sweep(scenarios=None, verify=True):
    """Run the decision sweep; returns (rows, summary). Each run's log also goes through
    `ovenctl verify` (verify_disagreements counts the logs it did not accept)."""
    from ovenctl.logfile import read_log
    from ovenctl.verify import verify_log
    from oven.core import methods as M
    rows = []
    vdis = 0
    for s in scenarios if scenarios is not None else decision_scenarios():
        m = M.validate(s["method"])
        res, log = run(s, None, want_log=verify)
        if verify and verify_log(read_log(log))["exit_code"] != 0:
            vdis += 1
        for i, c in enumerate(res["cells"]):
            ml = c["method_loss_ppm"]
            lim = m["limit_ppm"]
            beyond = ml > lim if m["comparator"] == "le" else ml >= lim
            u = c.get("u_ppm") or 0
            rows.append({"seed": s["seed"], "method": m["name"], "mass_g": s["cells"][i]["mass_g"],
                         "tau_min": s["cells"][i]["evap_tau_min"], "probe": s["probe"], "blank_run": s["blank_run"],
                         "verdict": c["verdict"], "loss_ppm": c.get("loss_ppm"), "u_ppm": u,
                         "method_loss_ppm": round(ml, 1), "true_loss_ppm": round(c["true_loss_ppm"], 1),
                         "wrong_pass": c["verdict"] == "PASS" and beyond,
                         "wrong_fail": c["verdict"] == "FAIL" and ml < lim - u,
                         "no_pass": c.get("no_pass", [])})
    n = len(rows)
    summary = {"decision_cells": n,
               "wrong_pass": sum(1 for r in rows if r["wrong_pass"]),
               "wrong_fail": sum(1 for r in rows if r["wrong_fail"]),
               "inconclusive_share": round(sum(1 for r in rows if r["verdict"] == "INCONCLUSIVE") / n, 3) if n else None,
               "decision_verify_disagreements": vdis}
    return rows, summary
