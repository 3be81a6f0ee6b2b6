"""Scenario files for the simulated bench: load, validate, fill in defaults.

`load_scenario(path)` reads a JSON file and returns `normalize(obj)`: a new dict with every key
present (defaults filled in at every nesting level).  Any problem raises `ScenarioError` whose
message names the key path, e.g. ``cells[0].mass_g: 9000.0 is out of range 0.1..2000``.
The schema, units and ranges are documented in docs/SCENARIO.md.
"""
import copy
import json
import math

METHODS = ("gb-2026", "tcsae-434-2025")
FAULT_KINDS = ("thermocouple_open", "thermocouple_short", "heater_stuck_on", "heater_dead",
               "vacuum_leak", "loadcell_disconnect", "loadcell_glitches", "probe_open")
LOADCELL_FAULT_KINDS = ("loadcell_disconnect", "loadcell_glitches")
MAX_CELLS = 4
MAX_FAULTS = 64
SEED_MAX = 2 ** 32 - 1
DENSITY_RANGE_G_CM3 = (0.5, 10.0)   # mass_g / volume_cm3 of a cell
PAN_MASS_G = 20.0                   # the sim's weighing pan (boards/sim/model.py), always on the load cell


class ScenarioError(ValueError):
    """Invalid scenario; the message starts with the key path of the offending value."""


# ---- field validators ---------------------------------------------------------------------------
def _fmt(x):
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _type_name(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _wrong_type(path, want, v):
    return ScenarioError("%s: expected %s, got %s %r" % (path, want, _type_name(v), v))


def _number(lo, hi):
    def check(path, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _wrong_type(path, "a number", v)
        if math.isnan(v) or not (lo <= v <= hi):
            raise ScenarioError("%s: %r is out of range %s..%s" % (path, v, _fmt(lo), _fmt(hi)))
        return float(v)
    return check


def _integer(lo, hi):
    def check(path, v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise _wrong_type(path, "an integer", v)
        if not (lo <= v <= hi):
            raise ScenarioError("%s: %d is out of range %d..%d" % (path, v, lo, hi))
        return v
    return check


def _boolean(path, v):
    if not isinstance(v, bool):
        raise _wrong_type(path, "true or false", v)
    return v


def _string(path, v):
    if not isinstance(v, str):
        raise _wrong_type(path, "a string", v)
    return v


def _nullable(check):
    def nullable(path, v):
        return None if v is None else check(path, v)
    return nullable


def _method(path, v):
    if isinstance(v, dict):
        return copy.deepcopy(v)          # custom method: the firmware validates it
    if not isinstance(v, str):
        raise _wrong_type(path, "a method name or a method object", v)
    if v not in METHODS:
        raise ScenarioError("%s: unknown method %r (known: %s, or a method object)"
                            % (path, v, ", ".join(METHODS)))
    return v


def _fault_kind(path, v):
    if not isinstance(v, str):
        raise _wrong_type(path, "a fault kind string", v)
    if v not in FAULT_KINDS:
        raise ScenarioError("%s: unknown fault kind %r (known: %s)" % (path, v, ", ".join(FAULT_KINDS)))
    return v


PHASES = ("PRECHECK", "TARE", "LOAD", "INITIAL_WEIGH", "PREHEAT", "PUMPDOWN", "HEATUP", "SOAK", "COOLDOWN", "VENT",
          "FINAL_WEIGH", "LEAK_CHECK")


def _phase_name(path, v):
    if not isinstance(v, str):
        raise _wrong_type(path, "a phase name", v)
    if v not in PHASES:
        raise ScenarioError("%s: unknown phase %r (known: %s)" % (path, v, ", ".join(PHASES)))
    return v


_REQUIRED = object()

# key -> (validator, default); a default of _REQUIRED makes the key mandatory.  Defaults go through
# their validator too, so a nested default such as {} comes out complete.
CELL_FIELDS = {
    "mass_g": (_number(0.1, 2000.0), 45.0),
    "volume_cm3": (_number(0.01, 2000.0), 16.5),
    "volatile_g": (_number(0.0, 2000.0), 0.10),
    "evap_tau_min": (_number(0.1, 1e6), 40.0),
    "leak_visible": (_boolean, False),
}
LOAD_CELL_FIELDS = {
    "capacity_g": (_number(1.0, 10000.0), 200.0),
    "noise_counts_rms": (_number(0.0, 100000.0), 30.0),
    "zero_drift_counts_per_c": (_number(-10000.0, 10000.0), 20.0),
    "creep_ppm": (_number(0.0, 5000.0), 245.0),
    "creep_tau_s": (_number(1.0, 100000.0), 300.0),
    "span_tc_ppm_per_c": (_number(-1000.0, 1000.0), 12.0),
}
OVEN_FIELDS = {
    "heater_w": (_number(1.0, 10000.0), 400.0),
    "heat_capacity_j_per_c": (_number(10.0, 1e6), 4000.0),
    "loss_w_per_c": (_number(0.01, 1000.0), 2.0),
}
VACUUM_FIELDS = {
    "leak_kpa_per_min": (_number(0.0, 100.0), 0.05),
}
# the reference probe's dummy cell; null (the default) means "like cells[0]"
PROBE_CELL_FIELDS = {
    "mass_g": (_number(0.1, 2000.0), _REQUIRED),
    "volume_cm3": (_number(0.01, 2000.0), _REQUIRED),
}
FAULT_FIELDS = {
    "kind": (_fault_kind, _REQUIRED),
    "at_s": (_number(0.0, 1e6), 0.0),
    "duration_s": (_nullable(_number(0.001, 1e6)), None),
    "channel": (_nullable(_integer(0, MAX_CELLS - 1)), None),
    "phase": (_nullable(_phase_name), None),
}


def _object(fields):
    def check(path, v):
        if not isinstance(v, dict):
            raise _wrong_type(path, "an object", v)
        for k in v:
            if k not in fields:
                raise ScenarioError("%s: unknown key (allowed: %s)"
                                    % (_join(path, k), ", ".join(fields)))
        out = {}
        for k, (check_field, default) in fields.items():
            if k in v:
                out[k] = check_field(_join(path, k), v[k])
            elif default is _REQUIRED:
                raise ScenarioError("%s: required key is missing" % _join(path, k))
            else:
                out[k] = check_field(_join(path, k), copy.deepcopy(default))
        return out
    return check


def _array(item, lo, hi):
    def check(path, v):
        if not isinstance(v, (list, tuple)):
            raise _wrong_type(path, "an array", v)
        if not (lo <= len(v) <= hi):
            raise ScenarioError("%s: %d entries, expected %d..%d" % (path, len(v), lo, hi))
        return [item("%s[%d]" % (path, i), x) for i, x in enumerate(v)]
    return check


def _join(path, key):
    return key if not path else path + "." + key


# ---- calibration on the simulated bench (H4: boards/sim/runner.py, firmware/oven/store/calstore.py) --------
# The simulated technician calibrates the span of each channel with reference masses (once per
# run: every simulated run starts with an empty calibration store) and runs the check-weight test
# before the blank run and before the test. *_actual_g: what really goes on the pan instead of the
# stated mass (a wrong reference or check weight: the calibration is refused / the run does not start).
_MASS_G = _number(0.001, 5000.0)
CALIBRATION_FIELDS = {
    "span": (_boolean, True),                                   # span calibration before the runs
    "ref_g": (_nullable(_array(_MASS_G, 1, 2)), None),          # stated masses; null: capacity/2, /4
    "ref_actual_g": (_nullable(_array(_MASS_G, 1, 2)), None),   # on the pan; null: as stated
    "check": (_boolean, True),                                  # check-weight test before each run
    "check_weight_g": (_nullable(_MASS_G), None),               # null: capacity/4
    "check_actual_g": (_nullable(_MASS_G), None),               # on the pan; null: as stated
    "check_tol_mg": (_nullable(_number(0.001, 100000.0)), None),  # null: max(20 mg, 5 u of a check weighing)
    # the lab's earlier check weighings on this bench (previous days), run at the start of the simulated
    # run at ambient: the repeatability history the budget needs (fewer than 2: no PASS, NO_CHECK)
    "check_history": (_integer(0, 50), 5),
}
# -------------------------------------------------------------------------------------------------
_TEMP = _number(0.0, 45.0)
TOP_FIELDS = {
    "seed": (_integer(0, SEED_MAX), _REQUIRED),
    "description": (_string, ""),
    "method": (_method, "gb-2026"),
    "ambient_c": (_TEMP, 23.0),
    "ambient_end_c": (_TEMP, 23.0),
    "cells": (_array(_object(CELL_FIELDS), 1, MAX_CELLS), [{}]),
    "load_cell": (_object(LOAD_CELL_FIELDS), {}),
    "oven": (_object(OVEN_FIELDS), {}),
    "vacuum": (_object(VACUUM_FIELDS), {}),
    "blank_run": (_boolean, True),
    "probe": (_boolean, True),
    "probe_cell": (_nullable(_object(PROBE_CELL_FIELDS)), None),
    "faults": (_array(_object(FAULT_FIELDS), 0, MAX_FAULTS), []),
    "calibration": (_object(CALIBRATION_FIELDS), {}),   # H4: reference masses and check weight
}


def normalize(obj):
    """Validate a scenario object and return a new dict with every default filled in."""
    if not isinstance(obj, dict):
        raise ScenarioError("scenario: expected an object, got %s" % _type_name(obj))
    out = _object(TOP_FIELDS)("", obj)
    # cross-field checks
    lo, hi = DENSITY_RANGE_G_CM3
    for i, c in enumerate(out["cells"]):
        if c["volatile_g"] > c["mass_g"]:
            raise ScenarioError("cells[%d].volatile_g: %r exceeds mass_g %r"
                                % (i, c["volatile_g"], c["mass_g"]))
        density = c["mass_g"] / c["volume_cm3"]
        if not (lo <= density <= hi):
            raise ScenarioError("cells[%d].volume_cm3: %s cm3 for %s g is a density of %.3g g/cm3, "
                                "outside %s..%s" % (i, _fmt(c["volume_cm3"]), _fmt(c["mass_g"]),
                                                    density, _fmt(lo), _fmt(hi)))
    cap = out["load_cell"]["capacity_g"]
    for i, c in enumerate(out["cells"]):
        # the cell and the pan within the load cell's rated capacity (the HX711's 24-bit range
        # spans about twice that, so nothing rails below it)
        if c["mass_g"] + PAN_MASS_G > cap:
            raise ScenarioError("cells[%d].mass_g: %s g with the %s g pan exceeds load_cell.capacity_g %s g"
                                % (i, _fmt(c["mass_g"]), _fmt(PAN_MASS_G), _fmt(cap)))
    pc = out["probe_cell"]
    if pc is None:
        # the dummy cell defaults to the first cell's size: it then lags as that cell does
        out["probe_cell"] = {"mass_g": out["cells"][0]["mass_g"], "volume_cm3": out["cells"][0]["volume_cm3"]}
    else:
        density = pc["mass_g"] / pc["volume_cm3"]
        if not (lo <= density <= hi):
            raise ScenarioError("probe_cell.volume_cm3: %s cm3 for %s g is a density of %.3g g/cm3, "
                                "outside %s..%s" % (_fmt(pc["volume_cm3"]), _fmt(pc["mass_g"]),
                                                    density, _fmt(lo), _fmt(hi)))
    n = len(out["cells"])
    for i, f in enumerate(out["faults"]):
        ch = f["channel"]
        if ch is None:
            continue
        if f["kind"] not in LOADCELL_FAULT_KINDS:
            raise ScenarioError("faults[%d].channel: only load-cell faults (%s) take a channel"
                                % (i, ", ".join(LOADCELL_FAULT_KINDS)))
        if ch >= n:
            raise ScenarioError("faults[%d].channel: %d is out of range 0..%d (%d cell%s)"
                                % (i, ch, n - 1, n, "" if n == 1 else "s"))
    return out


def _no_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate key %r" % k)
        d[k] = v
    return d


def load_scenario(path):
    """Read, parse and normalize a scenario JSON file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ScenarioError("%s: cannot read scenario file: %s" % (path, e.strerror or e)) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ScenarioError("%s: not UTF-8 text (byte %d)" % (path, e.start)) from None
    try:
        obj = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise ScenarioError("%s: invalid JSON at line %d column %d: %s"
                            % (path, e.lineno, e.colno, e.msg)) from None
    except ValueError as e:
        raise ScenarioError("%s: invalid JSON: %s" % (path, e)) from None
    return normalize(obj)
