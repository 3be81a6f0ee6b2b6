"""The soak timed on the cell's temperature (a reference probe in a dummy cell) on the simulated bench:
the issue's slow-releasing cell, the chamber-timed run without a probe, the log and `ovenctl verify`."""
import copy
import subprocess
import sys

import pytest

from ovenctl import sweep, verify
from ovenctl.logfile import read_log
from ovenctl.scenario import ScenarioError, normalize
from vmbridge import ROOT

pytestmark = pytest.mark.e2e

# issue 10: "a slowly releasing cell (45 g, volatile_g 0.8268, evap_tau_min 1000) gives PASS at 4920 ppm,
# while the same cell held at 120 degC for 6 h loses about 5400 ppm"
# heat_in/cool_in "vacuum": the order the issue was measured with (heated under vacuum, the cell lagging
# the chamber for hours); the default "air" order is tested in test_heat_cool.py
SLOW = {"seed": 1, "cells": [{"mass_g": 45.0, "volatile_g": 0.8268, "evap_tau_min": 1000.0}],
        "method": {"base": "gb-2026", "heat_in": "vacuum", "cool_in": "vacuum"}}
TOL = 200


@pytest.fixture(scope="module")
def runs():
    out = {}
    for name, probe in (("probe", True), ("chamber", False)):
        scn = dict(SLOW, probe=probe)
        res, data = sweep.run(scn, want_log=True)
        out[name] = (res, data)
    return out


def _phase(res, name):
    return [p for p in res["phases"] if p["name"] == name][0]


def test_slow_cell_method_loss_exceeds_the_limit_and_the_probe_run_does_not_pass(runs):
    res, _ = runs["probe"]
    cell = res["cells"][0]
    assert cell["method_loss_ppm"] > 5000
    assert cell["verdict"] != "PASS"
    assert cell["loss_ppm"] - cell["u_ppm"] > 5000             # FAIL by the loss: the cell was baked
    assert abs(cell["loss_ppm"] - cell["true_loss_ppm"]) < 100
    # the chamber-timed run under-bakes the cell (the loss the issue reported) and is barred from PASS
    ct, _ = runs["chamber"]
    c2 = ct["cells"][0]
    assert c2["method_loss_ppm"] == cell["method_loss_ppm"]
    assert c2["loss_ppm"] < 5000 < c2["method_loss_ppm"]
    # (the default calibration's missing check-weight history adds NO_CHECK at the verdict)
    assert [e[2:] for e in ct["events"] if e[1] == verify.E_NO_PASS and e[2] == verify.NP_CHAMBER_TIMED] == \
        [[verify.NP_CHAMBER_TIMED, -1]]
    assert not [e for e in res["events"] if e[1] == verify.E_NO_PASS and e[2] == verify.NP_CHAMBER_TIMED]
    # the probe's lag: the soak starts over an hour later than on the chamber alone
    assert _phase(res, "SOAK")["start_s"] - _phase(ct, "SOAK")["start_s"] > 3600
    print("\nslow cell: chamber-timed loss %d ppm (%s), probe-timed loss %d ppm (%s), method_loss %.0f ppm; "
          "soak starts %d s / %d s" % (c2["loss_ppm"], c2["verdict"], cell["loss_ppm"], cell["verdict"],
                                       cell["method_loss_ppm"], _phase(ct, "SOAK")["start_s"],
                                       _phase(res, "SOAK")["start_s"]))


def test_soak_starts_only_with_the_probe_in_tolerance(runs):
    _, data = runs["probe"]
    log = read_log(data)
    m = log.header["method"]
    assert log.header["probe"] is True
    soak = [s for s in log.samples if s["phase"] == verify.PH_SOAK]
    t0 = soak[0]["t_s"]
    before = [s for s in log.samples if t0 - 60 <= s["t_s"] < t0]
    assert len(before) == 60 and all(not s["flags"] & verify.SF_PROBE_OUT for s in before)
    assert log.samples[log.samples.index(before[0]) - 1]["flags"] & verify.SF_PROBE_OUT
    # the chamber was in band long before: only the probe held the soak back
    early = [s for s in log.samples if s["phase"] == 6 and abs(s["temp_c_x100"] - m["setpoint_c_x100"]) <= m["tol_c_x100"]
             and s["flags"] & verify.SF_PROBE_OUT]
    assert len(early) > 3600
    # E_PROBE_TEMP: the reading once a minute in HEATUP / SOAK / COOLDOWN, and at each change of state
    pt = [e for e in log.events if e["code"] == verify.E_PROBE_TEMP]
    last_change = [e for e in pt if e["t_ms"] // 1000 < t0][-1]
    assert abs(last_change["a"] - m["setpoint_c_x100"]) <= m["tol_c_x100"] and last_change["b"] == 0
    soak_ev = [e for e in pt if t0 * 1000 <= e["t_ms"] < (t0 + 21600) * 1000]
    assert 21600 // 60 - 2 <= len(soak_ev) <= 21600 // 60 + 10
    assert all(abs(e["a"] - m["setpoint_c_x100"]) <= m["tol_c_x100"] for e in soak_ev)


def test_chamber_timed_log_flags(runs):
    _, data = runs["chamber"]
    log = read_log(data)
    assert log.header["probe"] is False
    assert all(s["flags"] & verify.SF_CHAMBER_TIMED and not s["flags"] & verify.SF_PROBE_OUT for s in log.samples)
    assert not [e for e in log.events if e["code"] == verify.E_PROBE_TEMP]


def _findings(log):
    res = verify.verify_log(log)
    return res["exit_code"], " | ".join(f["message"] for f in res["findings"])


def test_verify_checks_the_probe(runs):
    for name in ("probe", "chamber"):
        rc, msgs = _findings(read_log(runs[name][1]))
        assert rc == 0 and msgs == "", (name, msgs)
    data = runs["probe"][1]
    # an in-spec SOAK sample that says the probe was out
    log = read_log(data)
    s = [s for s in log.samples if s["phase"] == verify.PH_SOAK][100]
    s["flags"] |= verify.SF_PROBE_OUT
    rc, msgs = _findings(log)
    assert rc == 1 and "IN_SPEC flag" in msgs
    # the header's probe against the samples' CHAMBER_TIMED
    log = read_log(data)
    log.header["probe"] = False
    rc, msgs = _findings(log)
    assert rc == 1 and "lack the CHAMBER_TIMED flag" in msgs and "carry PROBE_OUT" in msgs
    log = read_log(runs["chamber"][1])
    log.header["probe"] = True
    rc, msgs = _findings(log)
    assert rc == 1 and "carry the CHAMBER_TIMED flag" in msgs and "had a reference probe" in msgs
    # a chamber-timed run whose NO_PASS event went missing
    log = read_log(runs["chamber"][1])
    log.events = [e for e in log.events if e["code"] != verify.E_NO_PASS]
    rc, msgs = _findings(log)
    assert rc == 1 and "without a NO_PASS CHAMBER_TIMED event" in msgs
    # logs from before the probe (no header key, no probe flags or events) still verify
    log = read_log(data)
    del log.header["probe"]
    assert _findings(log) == (0, "")


def test_verify_old_log_without_probe_key():
    # a log as written before the probe: no "probe" in the header, no probe flags; built by stripping
    # a chamber-timed log of what the probe added
    res, data = sweep.run({"seed": 4, "blank_run": False, "probe": False, "oven": {"heater_w": 2000},
                           "method": {"base": "gb-2026", "chamber_timed_pass": "yes", "soak_s": 600,
                                      "soak_max_total_s": 1200}}, want_log=True)
    log = read_log(data)
    # the method allows a chamber-timed PASS: no CHAMBER_TIMED reason (the run has others: no blank run,
    # no check-weight history)
    assert not [e for e in log.events if e["code"] == verify.E_NO_PASS and e["a"] == verify.NP_CHAMBER_TIMED]
    del log.header["probe"]
    for s in log.samples:
        s["flags"] &= ~verify.SF_CHAMBER_TIMED
    assert _findings(log) == (0, "")


@pytest.mark.parametrize("obj,msg", [
    ({"probe": "yes"}, "probe: expected true or false"),
    ({"probe_cell": {"mass_g": 45.0}}, "probe_cell.volume_cm3: required key is missing"),
    ({"probe_cell": {"mass_g": 0.0, "volume_cm3": 1.0}}, "probe_cell.mass_g: 0.0 is out of range 0.1..2000"),
    ({"probe_cell": {"mass_g": 45.0, "volume_cm3": 1.0}}, "probe_cell.volume_cm3: 1 cm3 for 45 g is a density"),
    ({"probe_cell": {"mass_g": 45.0, "volume_cm3": 16.5, "t": 1}}, "probe_cell.t: unknown key"),
    ({"probe_cell": 3}, "probe_cell: expected an object"),
    ({"cells": [{"mass_g": 2500.0, "volume_cm3": 1000.0}]}, "cells[0].mass_g: 2500.0 is out of range 0.1..2000"),
    ({"cells": [{"mass_g": 190.0, "volume_cm3": 70.0}]}, "cells[0].mass_g: 190 g with the 20 g pan exceeds "
                                                         "load_cell.capacity_g 200 g"),
    ({"faults": [{"kind": "probe_open", "channel": 0}]}, "faults[0].channel: only load-cell faults"),
])
def test_scenario_probe_keys_rejected(obj, msg):
    with pytest.raises(ScenarioError) as ei:
        normalize(dict(obj, seed=1))
    assert str(ei.value).startswith(msg), str(ei.value)


def test_scenario_probe_keys_and_big_cells_accepted():
    n = normalize({"seed": 1, "cells": [{"mass_g": 2000.0, "volume_cm3": 800.0, "volatile_g": 40.0}],
                   "load_cell": {"capacity_g": 5000.0}, "probe": False})
    assert n["probe"] is False and n["probe_cell"] == {"mass_g": 2000.0, "volume_cm3": 800.0}
    n = normalize({"seed": 1, "cells": [{"mass_g": 2.0, "volume_cm3": 1.0}], "load_cell": {"capacity_g": 100.0},
                   "probe_cell": {"mass_g": 10, "volume_cm3": 4}})
    assert n["probe"] is True and n["probe_cell"] == {"mass_g": 10.0, "volume_cm3": 4.0}
    assert normalize(copy.deepcopy(n)) == n


def test_cli_exit_2_names_the_probe_key(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"seed": 1, "probe_cell": {"mass_g": 45, "volume_cm3": -1}}')
    p = subprocess.run([sys.executable, "-m", "ovenctl", "sim", "--scenario", str(bad)], capture_output=True,
                       text=True, cwd=ROOT)
    assert p.returncode == 2 and "probe_cell.volume_cm3" in p.stderr and "Traceback" not in p.stderr
