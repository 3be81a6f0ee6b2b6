"""`ovenctl sim`: the firmware application on the simulated bench inside the MicroPython VM."""
import json
import math
import subprocess
import sys

import pytest

from ovenctl import cmd_sim, sweep
from ovenctl.logfile import read_log
from ovenctl.scenario import normalize
from vmbridge import ROOT

pytestmark = [pytest.mark.vm, pytest.mark.e2e, pytest.mark.slow]

OVENCTL = [sys.executable, "-m", "ovenctl"]


@pytest.fixture(scope="module")
def default_run():
    scn = normalize({"seed": 1})
    res, log = cmd_sim.simulate(scn, want_log=True)
    return scn, res, log


def full_power_min_s(scn, t0_c, target_c):
    ov = scn["oven"]
    t_inf = scn["ambient_c"] + ov["heater_w"] / ov["loss_w_per_c"]
    tau = ov["heat_capacity_j_per_c"] / ov["loss_w_per_c"]
    return tau * math.log((t_inf - t0_c) / (t_inf - target_c))


def test_default_scenario_passes_with_full_soak(default_run):
    scn, res, log = default_run
    # span calibrated, check-weight history, probe-timed, drift-corrected: nothing bars the PASS
    assert res["verdict"] == "PASS"
    assert read_log(log).verdict["cells"][0]["no_pass"] == []
    c0 = res["cells"][0]
    assert c0["loss_ppm"] + c0["u_ppm"] <= 5000
    assert res["soak_in_spec_s"] == 21600
    assert [p["name"] for p in res["phases"]] == [
        "PRECHECK", "TARE", "LOAD", "INITIAL_WEIGH", "PREHEAT", "PUMPDOWN", "HEATUP", "SOAK", "COOLDOWN", "VENT",
        "FINAL_WEIGH", "LEAK_CHECK", "VERDICT", "DONE"]
    c = res["cells"][0]
    assert abs(c["loss_ppm"] - c["true_loss_ppm"]) <= 100
    # the blank fit's k: the zero drift (20 counts/degC) plus the span TC on the 20 g pan
    # (20 g x 20972 counts/g x 12 ppm/degC = 5.0 counts/degC)
    assert res["blank"]["k_counts_per_c"] and abs(res["blank"]["k_counts_per_c"][0] - 25.0) < 1.0


def test_control_targets(default_run):
    scn, res, log = default_run
    assert res["soak_temp_max_dev_c"] <= 1.0
    assert res["heatup_overshoot_c"] <= 1.5
    sp_c = 120.0
    # heat_in "air" (the default): the oven heats up in PREHEAT, heatup_s is measured there
    t0 = res["phase_start_chamber_c"]["PREHEAT"]
    t_min = full_power_min_s(scn, t0, sp_c - 2.0)
    assert res["heatup_s"] <= 1.2 * t_min, (res["heatup_s"], t_min)


def test_vm_and_cpython_agree(default_run):
    scn, res, log = default_run
    cp, _ = sweep.run({"seed": 1})
    assert cp["verdict"] == res["verdict"]
    assert [p["name"] for p in cp["phases"]] == [p["name"] for p in res["phases"]]
    assert abs(cp["cells"][0]["loss_ppm"] - res["cells"][0]["loss_ppm"]) <= 2
    assert cp["cells"][0]["u_ppm"] == pytest.approx(res["cells"][0]["u_ppm"], abs=2)


def test_run_log_from_the_vm(default_run):
    scn, res, log = default_run
    lg = read_log(log)
    assert lg.complete and not lg.problems
    assert lg.verdict["verdict"] == "PASS" and lg.verdict["cells"][0]["no_pass"] == []
    assert lg.verdict["cells"][0]["loss_ppm"] == res["cells"][0]["loss_ppm"]
    assert len(lg.weighings) == 3
    assert len(lg.samples) >= 30000
    assert len(log) <= 300 * 1024
    from ovenctl.verify import verify_log
    assert verify_log(lg)["exit_code"] == 0


def test_cli_json_and_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"seed": 1, "cells": [{"mass_g": 9000}]}')
    p = subprocess.run(OVENCTL + ["sim", "--scenario", str(bad)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "cells[0].mass_g" in p.stderr and "Traceback" not in p.stderr
    bad.write_text('{"seed": 1, "ovens": {}}')
    p = subprocess.run(OVENCTL + ["sim", "--scenario", str(bad)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "ovens" in p.stderr
    bad.write_text('{"seed": 1,')
    p = subprocess.run(OVENCTL + ["sim", "--scenario", str(bad)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    good = tmp_path / "s.json"
    good.write_text(json.dumps({"seed": 5, "cells": [{"mass_g": 30.0, "volatile_g": 0.4}],
                                "faults": [{"kind": "thermocouple_open", "phase": "HEATUP", "at_s": 100,
                                            "duration_s": 30}]}))
    logp = tmp_path / "run.log"
    p = subprocess.run(OVENCTL + ["sim", "--scenario", str(good), "--json", "--log", str(logp)],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    for k in ("verdict", "cells", "soak_in_spec_s", "soak_temp_max_dev_c", "faults", "phases", "sim_s", "wall_s"):
        assert k in out
    assert out["verdict"] == "ABORTED" and out["faults"][0]["name"] == "TC_OPEN"
    assert read_log(str(logp)).verdict["verdict"] == "ABORTED"
