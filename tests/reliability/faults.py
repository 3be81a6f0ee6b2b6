"""Campaign 2: every fault kind in every phase (ovenctl.sweep, the firmware under CPython on the
simulated bench), plus cases aimed at the PASS rules (a soak that cannot complete, weighings
starved of data, sensor glitches, several faults at once).

Measured per run:
- heater-off latency, in control ticks: from the detection of a thermocouple or heater fault to
  the board's outputs_safe() (heater duty 0 and the contactor in series with the SSR open), and
  for thermocouple faults from the fault's onset (the first tick that reads the faulty
  converter must switch the heater off);
- any PASS (overall or of a cell) after a thermocouple or heater fault (a thermocouple fault lasting
  at least a tick before the run ended; a permanent heater fault where sweep.observable() says the
  controller can see it; any fault event in the log), with a soak shorter than
  the method's, with a fault or INVALID event, or with a weighing that lacks data (tare/m0/m1
  missing, fewer accepted samples than the method's stable_hold), or that `ovenctl verify` does
  not find consistent.
"""
import math
import multiprocessing
import random
import time

from common import incomplete_reasons, read_log  # noqa: F401  (sets sys.path)
from ovenctl import sweep

HEATER_KINDS = ("thermocouple_open", "thermocouple_short", "heater_stuck_on", "heater_dead")
LONG_METHOD = getattr(sweep, "SWEEP_METHOD", None)


def matrix_cases():
    return [("%s@%s" % (k, p), sweep.fault_case(k, p), k, p) for k in sweep.FAULT_KINDS for p in sweep.PHASES]


def extra_cases(n_random=24, seed=5):
    m = {"base": "gb-2026", "soak_s": 3600, "soak_max_total_s": 4200}
    out = [
        ("soak-cannot-complete", {"seed": 7, "method": m, "faults": [
            {"kind": "vacuum_leak", "phase": "SOAK", "at_s": 300.0, "duration_s": 1500.0}]}, "vacuum_leak", "SOAK"),
        ("m1-loadcell-gone", {"seed": 7, "method": m, "faults": [
            {"kind": "loadcell_disconnect", "phase": "FINAL_WEIGH", "at_s": 1.0, "duration_s": None,
             "channel": 0}]}, "loadcell_disconnect", "FINAL_WEIGH"),
        ("m0-loadcell-100s", {"seed": 7, "method": m, "faults": [
            {"kind": "loadcell_disconnect", "phase": "INITIAL_WEIGH", "at_s": 1.0, "duration_s": 100.0,
             "channel": 0}]}, "loadcell_disconnect", "INITIAL_WEIGH"),
        ("tare-loadcell-gone-2cells", {"seed": 8, "method": m, "cells": [{}, {"mass_g": 30.0}], "faults": [
            {"kind": "loadcell_disconnect", "phase": "TARE", "at_s": 1.0, "duration_s": None, "channel": 1}]},
         "loadcell_disconnect", "TARE"),
        ("tc-open-0.5s-soak", {"seed": 7, "method": m, "faults": [
            {"kind": "thermocouple_open", "phase": "SOAK", "at_s": 1000.0, "duration_s": 0.5}]},
         "thermocouple_open", "SOAK"),
        ("tc-short-heatup", {"seed": 9, "method": m, "faults": [
            {"kind": "thermocouple_short", "phase": "HEATUP", "at_s": 60.0, "duration_s": 2.0}]},
         "thermocouple_short", "HEATUP"),
        ("stuck-on-cooldown-early-stop", {"seed": 33, "blank_run": False, "method": {
            "soak_s": 3600, "soak_max_total_s": 5400, "early_fail": "stop"},
            "cells": [{"volatile_g": 2.0, "evap_tau_min": 20.0}],
            "faults": [{"kind": "heater_stuck_on", "phase": "COOLDOWN", "at_s": 30.0}]},
         "heater_stuck_on", "COOLDOWN"),
    ]
    rng = random.Random(seed)
    kinds = sweep.FAULT_KINDS
    for i in range(n_random):
        faults = []
        for _ in range(rng.randint(1, 3)):
            k = rng.choice(kinds)
            ph = rng.choice(sweep.PHASES)
            f = {"kind": k, "phase": ph, "at_s": float(rng.randrange(0, 900 if ph in ("SOAK", "COOLDOWN") else 30)),
                 "duration_s": rng.choice([None, 1.0, 5.0, 60.0, 600.0])}
            if k.startswith("loadcell"):
                f["channel"] = 0
            faults.append(f)
        out.append(("random-%d" % i, {"seed": 100 + i, "method": m, "faults": faults}, faults[0]["kind"],
                    faults[0]["phase"]))
    return out


_CACHE = None


def _run(case):
    global _CACHE
    if _CACHE is None:
        _CACHE = sweep.BlankCache()
    name, scn, kind, phase = case
    t0 = time.time()
    try:
        res, data = sweep.run(scn, _CACHE, want_log=True)
    except Exception as e:                      # noqa: BLE001
        return {"name": name, "crash": repr(e)}
    log = read_log(data)
    out = {"name": name, "kind": kind, "phase": phase, "verdict": res["verdict"],
           "faults": [f["name"] for f in res["faults"]], "wall_s": round(time.time() - t0, 2)}
    # heater-off latency (ticks)
    lat = None
    inj = [i for i in res["injected"] if i[0] in HEATER_KINDS]
    fault_t = res["faults"][0]["t_s"] if res["faults"] else None
    heater_fault = any(f["code"] in (10, 11, 12, 13, 14, 15, 16) for f in res["faults"])
    if heater_fault:
        offs = [t for t in res["safe_calls_s"] if t >= fault_t - 1e-9]
        lat = math.ceil(min(offs) - fault_t) if offs else 10 ** 6
        for i in inj:
            if i[0].startswith("thermocouple") and i[1] <= fault_t:
                # from the onset: the first tick that reads the open/shorted thermocouple
                lat = max(lat, math.ceil(min(offs) - i[1]) if offs else 10 ** 6)
    out["heater_off_ticks"] = lat
    # PASS after a fault / with incomplete data
    passes = res["verdict"] == "PASS" or any(c["verdict"] == "PASS" for c in res["cells"])
    why = []
    if passes:
        end_s = res["test_sim_s"]
        for i in inj:
            kind, start, dur, ph = i
            if start > end_s:
                continue                        # after the run had ended: never happened to it
            if kind.startswith("thermocouple") and (dur is None or dur >= 1.0):
                # the converter is read every tick: a fault lasting a tick must have been seen
                why.append("PASS after a %s at %.0f s" % (kind, start))
            elif kind.startswith("heater") and dur is None and start <= end_s - 60 and sweep.observable(kind, ph):
                why.append("PASS after a permanent %s from %.0f s (%s)" % (kind, start, ph))
        why += [w for w in incomplete_reasons(log)]
        m = log.header.get("method") or {}
        hold = m.get("stable_hold", 2) if isinstance(m, dict) else 2
        for w in log.weighings:
            if w["kind"] in (1, 2, 3) and w["n"] < max(2, hold):
                why.append("PASS with a %s weighing of %d samples" % (w["kind_name"], w["n"]))
    out["pass_violations"] = why
    out["soak_in_spec_s"] = res["soak_in_spec_s"]
    return out


def campaign(workers=2, n_random=24, quick=False):
    t0 = time.time()
    cases = matrix_cases() + extra_cases(n_random)
    if quick:
        cases = [c for c in cases if c[2] in ("thermocouple_open", "heater_stuck_on") and c[3] in ("SOAK", "TARE")][:3]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        rows = list(pool.imap_unordered(_run, cases, chunksize=1))
    lats = [r["heater_off_ticks"] for r in rows if r.get("heater_off_ticks") is not None]
    viol = [(r["name"], v) for r in rows for v in r.get("pass_violations", [])]
    return {
        "fault_cases": len(rows),
        "fault_cases_heater_or_tc_detected": len(lats),
        "max_heater_off_ticks": max(lats) if lats else None,
        "pass_after_fault": len(viol),
        "fault_case_crashes": sum(1 for r in rows if "crash" in r),
        "fault_verdicts": _count(r.get("verdict") for r in rows),
        "fault_examples": {"violations": viol[:5], "crashes": [r for r in rows if "crash" in r][:3]},
        "fault_wall_s": round(time.time() - t0, 1),
    }


def _count(xs):
    d = {}
    for x in xs:
        d[str(x)] = d.get(str(x), 0) + 1
    return dict(sorted(d.items()))
