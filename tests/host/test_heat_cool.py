"""heat_in / cool_in (docs/APP.md "Heating and cooling") on the simulated bench: heating in air to the
probe's pre-heat band before the pump-down and cooling vented after the soak removes the over-bake of
slowly releasing cells that heating and cooling under vacuum gives; `ovenctl verify` checks the order."""
import copy

import pytest

from ovenctl import sweep, verify
from ovenctl.logfile import read_log

pytestmark = pytest.mark.e2e

_E = 2.718281828459045


def _scn(mass_g, tau_min, heat_in, cool_in, base="gb-2026", seed=3):
    lim = 5000 if base == "gb-2026" else 10000
    # volatiles such that the method's own loss lands about 8 % above the limit
    vol = mass_g * lim * 1.08e-6 / (1 - _E ** (-21600 / (tau_min * 60)))
    cap, noise = {2.0: (100.0, 20.0), 45.0: (200.0, 20.0), 250.0: (1000.0, 60.0), 2000.0: (5000.0, 40.0)}[mass_g]
    return {"seed": seed, "cells": [{"mass_g": mass_g, "volume_cm3": mass_g / 2.5, "volatile_g": round(vol, 4),
                                     "evap_tau_min": tau_min}],
            "method": {"base": base, "heat_in": heat_in, "cool_in": cool_in},
            "load_cell": {"capacity_g": cap, "noise_counts_rms": noise}}


def _cell(scn):
    res, _ = sweep.run(scn)
    return res, res["cells"][0]


@pytest.mark.parametrize("mass_g", [2.0, 45.0, 250.0, 2000.0])
@pytest.mark.parametrize("tau_min", [1000.0, 200.0])
def test_heat_and_cool_in_air_measure_the_method_loss(mass_g, tau_min):
    """The device's loss lies within U of method_loss_ppm (the loss held at 120 degC and the vacuum for
    exactly soak_s): never below it by more than U (an under-bake: the wrong-PASS direction), and above it
    by at most U (measured: +0..+90 ppm, the pump-down above the vacuum level, the pre-heat in air and the
    vented cool-down). Heating and cooling under vacuum over-bakes the same cell by far more than U."""
    res, c = _cell(_scn(mass_g, tau_min, "air", "air"))
    u, d = c["u_ppm"], c["loss_ppm"] - c["method_loss_ppm"]
    print("\n%6.0f g tau %4.0f min air/air: loss %d true %.0f method %.0f U %d (d %+.0f)"
          % (mass_g, tau_min, c["loss_ppm"], c["true_loss_ppm"], c["method_loss_ppm"], u, d))
    assert -u <= d <= u
    assert res["soak_in_spec_s"] == 21600
    names = [p["name"] for p in res["phases"]]
    assert names[names.index("INITIAL_WEIGH"):names.index("SOAK") + 1] == [
        "INITIAL_WEIGH", "PREHEAT", "PUMPDOWN", "HEATUP", "SOAK"]
    if tau_min == 1000.0 and mass_g in (45.0, 2000.0):
        res_v, cv = _cell(_scn(mass_g, tau_min, "vacuum", "vacuum"))
        dv = cv["loss_ppm"] - cv["method_loss_ppm"]
        print("%6.0f g tau %4.0f min vacuum/vacuum: loss %d method %.0f (d %+.0f)"
              % (mass_g, tau_min, cv["loss_ppm"], cv["method_loss_ppm"], dv))
        assert dv > 5 * cv["u_ppm"]                     # 45 g: +672 ppm, 2 kg: +1924 ppm (U about 61)
        assert "PREHEAT" not in [p["name"] for p in res_v["phases"]]


@pytest.mark.parametrize("mass_g", [45.0, 2000.0])
def test_tcsae_slow_cell_over_bake_stays_below_two_u(mass_g):
    """The 1 % method's slow cells (losses near 10000 ppm): the residual over-bake (measured +80 ppm at
    45 g, +95 ppm at 2 kg: about 0.9 % of the loss) exceeds U (61) but not 2 U, so a cell whose method
    loss is below the limit minus U cannot be given FAIL (FAIL needs loss - U > limit), and it stays
    within the issue's 100 ppm of method_loss_ppm for a >= 20 g cell."""
    _, c = _cell(_scn(mass_g, 1000.0, "air", "air", base="tcsae-434-2025"))
    d = c["loss_ppm"] - c["method_loss_ppm"]
    print("\ntcsae %.0f g tau 1000: loss %d method %.0f U %d (d %+.0f)" % (mass_g, c["loss_ppm"],
                                                                          c["method_loss_ppm"], c["u_ppm"], d))
    assert -c["u_ppm"] <= d < 2 * c["u_ppm"] and d <= 100


@pytest.fixture(scope="module")
def air_log():
    res, data = sweep.run({"seed": 1, "cells": [{"mass_g": 45.0, "volatile_g": 0.8268, "evap_tau_min": 1000.0}]},
                          want_log=True)
    return res, data


def _msgs(log):
    res = verify.verify_log(log)
    return res, " | ".join(f["message"] for f in res["findings"] if f["level"] != "warning")


def test_the_air_log_verifies_and_shows_the_order(air_log):
    res, data = air_log
    log = read_log(data)
    m = log.header["method"]
    assert m["heat_in"] == "air" and m["cool_in"] == "air" and m["preheat_band_c_x100"] == 50
    r, msgs = _msgs(log)
    assert msgs == "" and r["exit_code"] == 0
    done = [e for e in log.events if e["code"] == verify.E_PREHEAT_DONE]
    assert len(done) == 1 and abs(done[0]["a"] - m["setpoint_c_x100"]) <= 50
    # the soak credit: IN_SPEC samples in PUMPDOWN/HEATUP, counted in the soak time
    credit = [s for s in log.samples if s["phase"] in (verify.PH_PUMPDOWN, verify.PH_HEATUP)
              and s["flags"] & verify.SF_IN_SPEC]
    assert 60 <= len(credit) < 600 and r["soak"]["in_spec_s_samples"] == 21600
    # cool_in air: vented with the pump off from the soak's end
    cool = [s for s in log.samples if s["phase"] == verify.PH_COOLDOWN]
    assert cool and all(s["flags"] & verify.SF_VENT and not s["flags"] & verify.SF_PUMP for s in cool)
    assert cool[0]["t_s"] == [e for e in log.events if e["code"] == verify.E_SOAK_DONE][0]["t_ms"] // 1000


def test_tampered_air_logs_are_caught(air_log):
    _, data = air_log
    # a soak claimed without pre-heat completion: the PREHEAT_DONE event removed
    log = read_log(data)
    log.events = [e for e in log.events if e["code"] != verify.E_PREHEAT_DONE]
    _, msgs = _msgs(log)
    assert "without a PREHEAT_DONE event" in msgs and "SOAK at" in msgs
    # the probe outside the band at the pump-down's start
    log = read_log(data)
    e = [e for e in log.events if e["code"] == verify.E_PREHEAT_DONE][0]
    e["a"] = log.header["method"]["setpoint_c_x100"] - 120
    _, msgs = _msgs(log)
    assert "outside the pre-heat band" in msgs
    # the pre-heat cut short: the chamber out of tolerance in the last minute of PREHEAT
    log = read_log(data)
    t = e["t_ms"] // 1000
    s = [s for s in log.samples if s["t_s"] == t - 10][0]
    s["temp_c_x100"] -= 400
    _, msgs = _msgs(log)
    assert "are not all PREHEAT samples with the chamber and the probe in tolerance" in msgs
    # a soak credit claimed before the vacuum was reached
    log = read_log(data)
    s = [s for s in log.samples if s["phase"] == verify.PH_PUMPDOWN and not s["flags"] & verify.SF_IN_SPEC][0]
    s["flags"] |= verify.SF_IN_SPEC
    _, msgs = _msgs(log)
    assert "soak credit" in msgs
    # a log that says heat_in vacuum but pre-heated
    log = read_log(data)
    log.header["method"]["heat_in"] = "vacuum"
    _, msgs = _msgs(log)
    assert "PREHEAT at" in msgs and "but the method heats in vacuum" in msgs
    # cool_in air, but the chamber stayed closed in COOLDOWN
    log = read_log(data)
    for s in log.samples:
        if s["phase"] == verify.PH_COOLDOWN:
            s["flags"] &= ~verify.SF_VENT
    _, msgs = _msgs(log)
    assert "COOLDOWN samples not vented" in msgs


def test_vacuum_log_and_old_logs_verify():
    res, data = sweep.run({"seed": 2, "method": {"base": "gb-2026", "heat_in": "vacuum", "cool_in": "vacuum"}},
                          want_log=True)
    log = read_log(data)
    r, msgs = _msgs(log)
    assert msgs == ""
    assert not [s for s in log.samples if s["phase"] != verify.PH_SOAK and s["flags"] & verify.SF_IN_SPEC]
    # a log older than the choices (no heat_in / cool_in / preheat band in its method) reads as vacuum
    old = copy.deepcopy(log.header["method"])
    for k in ("heat_in", "cool_in", "preheat_band_c_x100"):
        del log.header["method"][k]
    _, msgs = _msgs(log)
    assert msgs == ""
    log.header["method"] = old
    log.header["method"]["cool_in"] = "air"
    _, msgs = _msgs(log)
    assert "COOLDOWN samples not vented" in msgs
