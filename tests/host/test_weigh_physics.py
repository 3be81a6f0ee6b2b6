# Creep and the span's temperature coefficient on the simulated bench, and what the weighing makes
# of them (issue 10, item 4). Default cell: 45 g, 0.10 g volatile, on a 200 g load cell; the blank fit
# comes from a separate blank run (as on a real bench, another day), so m0 is weighed with the load
# cell at ambient and m1 after the run's cool-down.
#
# Measured with firmware 0.4 (m0 ~25 s after loading, m1 as soon as vented and cooled, stability by
# a fixed sd), seed 1: loss error -225 ppm from creep, -92 ppm from the span TC (m1 7.6 degC warmer),
# -317 ppm with both (+5 ppm with neither). The method's settle_s = 0 and a 10 degC band bring
# that behaviour back; the default method (settle 900 s, band 1 degC) removes the bias.
import pytest

from ovenctl import sweep
from ovenctl.scenario import normalize
from sim import runner

pytestmark = pytest.mark.e2e

_OFF = {"creep_ppm": 0.0, "span_tc_ppm_per_c": 0.0}
_OLD = {"base": "gb-2026", "settle_s": 0, "lc_temp_band_c_x100": 1000}   # weigh at once, any lc temperature


@pytest.fixture(scope="module")
def blank_cache():
    return sweep.BlankCache()


def _run(blank_cache, lc, seed=1, method=None):
    scn = {"seed": seed, "load_cell": lc}
    if method is not None:
        scn["method"] = method
    res, _ = sweep.run(scn, blank_cache)
    c = res["cells"][0]
    return c["loss_ppm"] - c["true_loss_ppm"], res


@pytest.mark.slow
def test_weighing_without_settling_or_temperature_band_is_biased(blank_cache):
    e_off, _ = _run(blank_cache, _OFF, method=_OLD)
    e_creep, _ = _run(blank_cache, {"span_tc_ppm_per_c": 0.0}, method=_OLD)
    e_span, _ = _run(blank_cache, {"creep_ppm": 0.0}, method=_OLD)
    e_both, res = _run(blank_cache, {}, method=_OLD)
    assert abs(e_off) < 15
    # m0 soon after loading reads low by the creep still to come: 11 mg x e^-(t/300), t = 25 s with
    # 0.4 (-225 ppm); here the window ends ~90 s after loading (the drift time base): -182 ppm
    assert -200 < e_creep - e_off < -165
    # m1 with the load cell ~7.6 degC warmer: 45 g x 12 ppm/degC x 7.6 degC = 4.1 mg high
    assert -105 < e_span - e_off < -75
    assert -300 < e_both < -230           # about the sum of the two
    assert res["verdict"] == "PASS"          # and nothing says so: a wrong loss with a PASS


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_settling_and_the_temperature_band_remove_the_bias(blank_cache, seed):
    e_off, _ = _run(blank_cache, _OFF, seed=seed)
    e_both, res = _run(blank_cache, {}, seed=seed)
    # what remains: creep after 920 s (11 mg x e^-(920/300) = 0.51 mg, -11 ppm) and the span TC over
    # at most the 2 degC band (<= 1.08 mg, -24 ppm); both are terms of the uncertainty budget
    assert abs(e_off) < 15
    assert -50 < e_both < 0, e_both
    assert abs(e_both) < res["cells"][0]["u_ppm"]
    ev = {e[1]: e for e in res["events"]}
    assert ev[117][2] == 900                       # E_SETTLE: a = settle_s
    assert 116 in ev and 114 not in ev             # waited for the load cell; no NO_PASS
    assert res["verdict"] == "PASS"


def _scn(seed, mass_g, volume_cm3, volatile_g, capacity_g, noise):
    scn = normalize({"seed": seed, "load_cell": {"capacity_g": capacity_g, "noise_counts_rms": noise}})
    scn["cells"][0].update({"mass_g": mass_g, "volume_cm3": volume_cm3, "volatile_g": volatile_g})
    return scn


@pytest.mark.parametrize("mass_g,volume_cm3,volatile_g,capacity_g,noise", [
    (250.0, 100.0, 0.5, 1000.0, 60.0),       # the case: aborted UNSTABLE in TARE with 0.4
    (2.0, 0.8, 0.004, 100.0, 30.0),          # a coin cell on a 100 g load cell
    (500.0, 200.0, 1.0, 1000.0, 60.0),
    (2000.0, 800.0, 4.0, 5000.0, 60.0),      # a vehicle pouch cell on a 5 kg load cell
])
def test_cells_from_grams_to_kilograms_weigh(blank_cache, mass_g, volume_cm3, volatile_g, capacity_g, noise):
    scn = _scn(5, mass_g, volume_cm3, volatile_g, capacity_g, noise)
    res, _ = runner.run_scenario(scn, blank_fit=blank_cache.get(scn))
    c = res["cells"][0]
    assert res["faults"] == [] and res["verdict"] == "PASS", (res["faults"], res["verdict"])
    assert abs(c["loss_ppm"] - c["true_loss_ppm"]) <= c["u_ppm"]


def test_firmware_0_4_limit_would_not_weigh_the_250g_cell():
    # the old fixed limit: stable_sd_ug 3000 on a 1000 g load cell (4194 counts/g) is 12 counts of
    # per-sample sd against 60 counts rms of noise; the scaled limit of the tare rule is 40 mg
    # (168 counts) for the sd of the mean, which is 60 / 8 = 7.5 counts
    from oven.run import app
    from oven.core import methods
    cpg = 4194
    assert methods.validate("gb-2026")["stable_sd_ug"] * cpg // 1000000 == 12
    c = app.Controller.__new__(app.Controller)
    c.m = methods.validate("gb-2026")
    c.cal = app._default_cal(1, cpg)
    sd, dr, allow = c._weigh_limits(0, -1)
    assert (sd, dr, allow) == (167, 83, 8388)
    sd, dr, allow = c._weigh_limits(0, 250 * cpg)     # the cell: 1.25 g allowed, 25 mg sd, 12.5 mg/min
    assert allow == 5242 and sd == 104 and dr == 52


def test_a_load_cell_too_coarse_for_the_cell_times_out(blank_cache):
    # 20 g on a 5 kg load cell with 60 counts rms: 100 mg allowed, sd of the mean limit 2 mg = 1 count
    # against 7.5 counts of noise: no stable m0, a WEIGH_TIMEOUT fault instead of a number
    scn = _scn(5, 20.0, 8.0, 0.05, 5000.0, 60.0)
    res, _ = runner.run_scenario(scn, blank_fit=blank_cache.get(scn))
    assert res["verdict"] == "ABORTED" and [f["name"] for f in res["faults"]] == ["WEIGH_TIMEOUT"]
    assert res["phases"][-2]["name"] == "INITIAL_WEIGH"


def test_load_cell_never_back_in_the_band_gives_no_pass(blank_cache):
    # a 0.1 degC band and 10 min of waiting: the load cell is still ~0.9 degC warm, m1 is weighed
    # anyway and the run logs NO_PASS LC_TEMP for every cell; verify accepts the log (band waived)
    from ovenctl import verify
    from ovenctl.logfile import read_log
    scn = normalize({"seed": 1, "method": {"base": "gb-2026", "lc_temp_band_c_x100": 10, "lc_temp_wait_s": 600}})
    res, log = runner.run_scenario(scn, want_log=True, blank_fit=blank_cache.get(scn))
    ev = [e for e in res["events"] if e[1] in (114, 116)]
    assert [e[1] for e in ev] == [116, 114] and ev[1][2:] == [6, -1]        # LC_TEMP_WAIT, NO_PASS LC_TEMP -1
    assert ev[1][0] - ev[0][0] == 600
    lg = read_log(log)
    m0 = [w for w in lg.weighings if w["kind"] == 2][0]
    m1 = [w for w in lg.weighings if w["kind"] == 3][0]
    assert abs(m1["lc_temp_c_x100"] - m0["lc_temp_c_x100"]) > 10
    out = verify.verify_log(lg)
    msgs = " | ".join(f["message"] for f in out["findings"])
    assert "m1 of cell" not in msgs and "SETTLE" not in msgs, msgs
