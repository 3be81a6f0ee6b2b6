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
PHASES = ("PRECHECK", "TARE", "LOAD", "INITIAL_WEIGH", "PUMPDOWN", "HEATUP", "SOAK", "COOLDOWN", "VENT",
          "FINAL_WEIGH", "LEAK_CHECK")
# How long each injected fault lasts (None: until the end). Heater faults are permanent: a dead
# heater matters only once heat is needed, a stuck SSR only while the contactor is closed.
FAULT_DURATION_S = {"thermocouple_open": 30, "thermocouple_short": 30, "heater_stuck_on": None,
                    "heater_dead": None, "vacuum_leak": 600, "loadcell_disconnect": 60,
                    "loadcell_glitches": 600}
_ATMOSPHERIC = ("PRECHECK", "TARE", "LOAD", "INITIAL_WEIGH", "VENT", "FINAL_WEIGH", "LEAK_CHECK")


def observable(kind, phase):
    """Whether a fault of this kind injected in this phase has any physical effect the controller
    could see. Not observable: a dead heater after the soak (no heat is needed any more), and a
    temporary vacuum leak while the chamber is vented (it is at atmospheric pressure anyway)."""
    if kind == "heater_dead":
        return phase not in ("COOLDOWN", "VENT", "FINAL_WEIGH", "LEAK_CHECK")
    if kind == "vacuum_leak":
        return phase not in _ATMOSPHERIC
    return True


class BlankCache:
    """Blank-run fits are a property of the bench (seed, load cell, oven): compute once, reuse."""

    def __init__(self):
        self._fits = {}

    def get(self, scn):
        key = (scn["seed"], repr(scn["load_cell"]), repr(scn["oven"]), len(scn["cells"]), repr(scn["vacuum"]))
        if key not in self._fits:
            import methods
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
                     "u_ppm": c["u_ppm"], "true_loss_ppm": c["true_loss_ppm"],
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
