# firmware/oven/store/calstore.py on the simulated bench, under CPython and in the MicroPython VM: span
# calibration from reference masses, the check-weight test, thermocouple offsets, the autotune;
# a refused calibration changes no stored byte; every change is in the audit trail.
import json
import os

import fsutil

from oven.store import audit
from oven.store import calstore as CS
from sim.model import Bench
from sim.board import SimBoard

_G = 1000000    # ug per g


def _dir(name):
    d = fsutil.fresh_dir("cs", name)
    return d + "/calib"


def _bench(**kw):
    scn = {"seed": 3, "blank_run": True, "cells": [{}, {}]}
    for k in kw:
        scn[k] = kw[k]
    b = Bench(scn)
    return b, SimBoard(b)


def _files(d):
    out = {}
    try:
        names = os.listdir(d)
    except OSError:
        return out
    for n in names:
        f = open(d + "/" + n, "rb")
        out[n] = f.read()
        f.close()
    return out


def _run_span(bench, board, proc, ch, factor=None):
    # the operator: factor {step: x} puts x times the stated mass on the pan at that step
    k = 0
    while not proc.done():
        m = proc.mass_ug()
        f = factor.get(k, 1.0) if factor else 1.0
        if m:
            bench.place_mass(ch, m * f / _G)
        else:
            bench.remove_mass(ch)
        proc.step(board)
        k += 1
    bench.remove_mass(ch)
    return proc.span


def _trail(d):
    out = []
    for _o, raw, ok in audit.lines(d + "/audit.jsonl"):
        out.append(audit.parse(raw, ok))
    return out


def test_two_point_span_is_stored_and_audited():
    d = _dir("span2")
    b, bd = _bench()
    p = CS.SpanProcedure(2, 1, 100 * _G, 50 * _G, nominal_cpg=bd.counts_per_g, d=d, cal_id="R100+R50", when=1234)
    assert p.prompt().startswith("ch 2: empty the pan")
    sp = _run_span(b, bd, p, 1)
    # the sim's span, less the steel's buoyancy (conventional mass: about 150 ppm)
    true_cpg = b.lc_counts_per_g * (1.0 - b.air_density_mg_cm3() * 1e-3 / 7.95)
    assert abs(sp["counts_per_g"] - true_cpg) <= 3
    assert 50 <= sp["u_span_ppm"] < 100
    assert sp["lin_ref_ug"] == 50 * _G and abs(sp["lin_dev_ug"]) < 2000
    # the raw weighings are kept with the span: zero, reference 1, reference 2 (n, sum, m2n)
    w = sp["weighings"]
    assert len(w) == 3 and [x[0] for x in w] == [32, 32, 32]
    net1 = w[1][1] / 32 - w[0][1] / 32
    assert abs(net1 / 100 - sp["counts_per_g"]) < 1
    cal = CS.load(2, 20000, d)
    assert cal["source"] == "default"       # channel 1 has no measured span yet
    assert cal["channels"][1]["counts_per_g"] == sp["counts_per_g"]
    assert cal["channels"][1]["cal_id"] == "R100+R50" and cal["channels"][1]["when"] == 1234
    assert cal["channels"][0]["counts_per_g"] == 20000
    p0 = CS.SpanProcedure(2, 0, 20 * _G, nominal_cpg=bd.counts_per_g, d=d)
    _run_span(b, bd, p0, 0)
    cal = CS.load(2, 20000, d)
    assert cal["source"] == "measured" and cal["channels"][0]["lin_ref_ug"] == 0
    tr = _trail(d)
    assert [e["what"] for e in tr] == ["calib.span.1", "calib.span.0"]
    assert tr[0]["new"]["counts_per_g"] == sp["counts_per_g"] and tr[0]["old"] is None
    # what plan.py compares at START: the trail's snapshot agrees with the files
    st = CS.trail(d).state()
    assert audit.diff(st, {k: v for k, v in CS.audit_fields(2, d).items() if v is not None}) == []


def test_disagreeing_reference_mass_is_refused_and_changes_nothing():
    d = _dir("bad2")
    b, bd = _bench()
    _run_span(b, bd, CS.SpanProcedure(2, 0, 100 * _G, nominal_cpg=bd.counts_per_g, d=d), 0)
    before = _files(d)
    # reference mass 2 stated as 50 g, 50.5 g on the pan (1 %: far beyond the 500 ppm limit)
    p = CS.SpanProcedure(2, 0, 100 * _G, 50 * _G, nominal_cpg=bd.counts_per_g, d=d)
    try:
        _run_span(b, bd, p, 0, {2: 1.01})
        raise AssertionError("not refused")
    except CS.CalError as e:
        msg = str(e)
    assert "reference mass 2" in msg and "disagree" in msg and "nothing was stored" in msg
    assert _files(d) == before
    # reference mass 1 is 200 g, stated as 100 g: implausible for the nominal span
    p = CS.SpanProcedure(2, 0, 100 * _G, nominal_cpg=bd.counts_per_g, d=d)
    try:
        _run_span(b, bd, p, 0, {1: 2.0})
        raise AssertionError("not refused")
    except CS.CalError as e:
        msg = str(e)
    assert "not the stated mass" in msg and "reads as 1999" in msg
    assert _files(d) == before
    # nothing on the pan at the reference step
    p = CS.SpanProcedure(2, 0, 100 * _G, nominal_cpg=bd.counts_per_g, d=d)
    try:
        _run_span(b, bd, p, 0, {1: 0.0})
        raise AssertionError("not refused")
    except CS.CalError as e:
        assert "nothing was stored" in str(e)
    assert _files(d) == before


def test_unstable_weighing_is_refused():
    d = _dir("unst")
    b, bd = _bench(load_cell={"noise_counts_rms": 3000.0})
    p = CS.SpanProcedure(2, 0, 100 * _G, d=d)
    try:
        p.step(bd)
        raise AssertionError("not refused")
    except CS.CalError as e:
        assert "did not become stable" in str(e)
    assert _files(d) == {}


def test_bad_input_is_named():
    for args, word in (((2, 2, 100 * _G), "channel 3"), ((2, 0, 10), "reference mass 1"),
                       ((2, 0, 100 * _G, 100 * _G), "must differ"), ((2, 0, 100 * _G, 7), "reference mass 2")):
        try:
            CS.SpanProcedure(*args)
            raise AssertionError("accepted %r" % (args,))
        except CS.CalError as e:
            assert word in str(e), str(e)


def test_check_weight_pass_fail_history_and_repeatability():
    d = _dir("check")
    b, bd = _bench()
    try:
        CS.CheckProcedure(2, CS.load(2, 1, d), d)
        raise AssertionError("no check weight: not refused")
    except CS.CalError as e:
        assert "no check weight" in str(e)
    for ch in (0, 1):
        _run_span(b, bd, CS.SpanProcedure(2, ch, 100 * _G, nominal_cpg=bd.counts_per_g, d=d), ch)
    CS.set_check_weight(50 * _G, 5000, "CW-50g-01", d=d)
    for _ in range(3):
        cal = CS.load(2, bd.counts_per_g, d)
        c = CS.CheckProcedure(2, cal, d, when=99, run="r1")
        while not c.done():
            m = c.mass_ug()
            if m:
                b.place_mass(c.ch, m / _G)
            else:
                b.remove_mass(c.ch)
            c.step(bd)
        b.remove_mass(0)
        b.remove_mass(1)
        assert c.failed() == [] and "OK" in c.message()
    h = CS.history(d)
    assert len(h) == 6 and h[-1]["run"] == "r1"
    cal = CS.load(2, bd.counts_per_g, d)
    u, n = cal["check"]["u_rep_ug"], cal["check"]["n"]
    assert n == 6 and 0 < u < 5000
    before = _files(d)
    # out of tolerance: a 50.02 g object instead of the check weight on pan 2
    c = CS.CheckProcedure(2, cal, d)
    while not c.done():
        m = c.mass_ug()
        if m:
            b.place_mass(c.ch, m / _G + (0.02 if c.ch == 1 else 0.0))
        else:
            b.remove_mass(c.ch)
        c.step(bd)
    assert [r[0] for r in c.failed()] == [1]
    assert "ch 2: check weight off by +" in c.message() and "(tolerance 5.0 mg)" in c.message() and "run not started" in c.message()
    after = _files(d)
    # only the history and the trail changed: the calibration and its repeatability did not
    for name in before:
        if name not in ("checks.json", "audit.jsonl", "audit_state.json"):
            assert after[name] == before[name], name
    cal2 = CS.load(2, bd.counts_per_g, d)
    for k in cal:
        if k != "check":
            assert cal2[k] == cal[k], k
    # channel 1's pass counts for the repeatability, channel 2's failure does not
    assert cal2["check"]["n"] == 7
    h = CS.history(d)
    assert h[-1]["ok"] is False and h[-1]["ch"] == 1 and 19000 < h[-1]["dev_ug"] < 21000
    assert _trail(d)[-1]["what"] == "calib.check.last" and _trail(d)[-1]["new"]["ok"] is False


def test_fmt_mg():
    assert CS.fmt_mg(-19950, True) == "-20.0 mg" and CS.fmt_mg(19949, True) == "+19.9 mg"
    assert CS.fmt_mg(5000) == "5.0 mg" and CS.fmt_mg(0, True) == "+0.0 mg" and CS.fmt_mg(-40) == "-0.0 mg"


def test_check_stats_exact():
    # pooled within-channel standard deviation, rounded up
    hist = [{"ch": 0, "dev_ug": x, "ok": True} for x in (10, 20, 30)]
    hist += [{"ch": 1, "dev_ug": x, "ok": True} for x in (100, 104)]
    hist += [{"ch": 1, "dev_ug": 99999, "ok": False}]
    # ss = 200 + 8 = 208 over 3 dof: u^2 = 69.33 -> ceil(sqrt) = 9
    assert CS.check_stats(hist) == (9, 5)
    assert CS.check_stats([{"ch": 0, "dev_ug": 5, "ok": True}]) == (0, 1)
    assert CS.check_stats([]) == (0, 0)
    for xs in ((1, 1, 1), (0, 3), (-7, 7, 0, 2)):
        u, n = CS.check_stats([{"ch": 0, "dev_ug": x, "ok": True} for x in xs])
        k = len(xs)
        m2k = k * sum([x * x for x in xs]) - sum(xs) ** 2     # k * ss
        assert (u - 1) ** 2 * k * (k - 1) < m2k or u == 0
        assert u * u * k * (k - 1) >= m2k


def test_tc_offset_ice_point_and_refusal():
    d = _dir("tc")
    new = CS.set_tc_offset("chamber", 0, 35, d=d, when=5, source="ice point")
    assert new["chamber"] == -35 and new["probe"] == 0
    CS.set_tc_offset("probe", 12000, 11980, d=d)
    cal = CS.load(1, 1000, d)
    assert cal["tc_offset_c_x100"] == {"chamber": -35, "probe": 20}
    before = _files(d)
    for args in (("chamber", 0, 700), ("oven", 0, 0), ("probe", 0, "x")):
        try:
            CS.set_tc_offset(*args, d=d)
            raise AssertionError("accepted %r" % (args,))
        except CS.CalError as e:
            assert "thermocouple" in str(e) or "temperature" in str(e)
    assert _files(d) == before
    assert [e["what"] for e in _trail(d)] == ["calib.tc_offset", "calib.tc_offset"]


def test_autotune_on_the_sim_oven_and_refusal():
    d = _dir("at")
    b, bd = _bench()
    kp, ki, kd, ku, tu = CS.autotune(bd, 12000)
    assert kp > 0 and ki > 0 and tu > 0
    assert b.heater_duty_ppm == 0 and b.heater_contactor == 0       # outputs safe at the end
    CS.store_pid(kp, ki, kd, ku, tu, 12000, d=d)
    assert CS.load(1, 1, d)["pid"] == {"kp": kp, "ki": ki, "kd": kd}
    before = _files(d)
    # no oscillation within the half-period limit: not converged
    b, bd = _bench()
    try:
        CS.autotune(bd, 12000, max_half_period_ms=60000)
        raise AssertionError("not refused")
    except CS.CalError as e:
        assert "did not converge" in str(e)
    assert b.heater_duty_ppm == 0 and b.heater_contactor == 0
    # a dead heater: the safety check stops it
    b, bd = _bench()
    b.add_fault("heater_dead", 0)
    try:
        CS.autotune(bd, 12000)
        raise AssertionError("not refused")
    except CS.CalError as e:
        assert "safety" in str(e)
    assert _files(d) == before
    try:
        CS.store_pid(0, 1, 1, d=d)
        raise AssertionError("kp 0 accepted")
    except CS.CalError as e:
        assert "kp" in str(e)
    assert _files(d) == before


def test_default_cal_shape():
    cal = CS.default_cal(2, 4194)
    assert cal["source"] == "default" and len(cal["channels"]) == 2
    assert cal["channels"][0]["counts_per_g"] == 4194 and cal["check"] is None
    assert CS.load(2, 4194, _dir("empty")) == cal
    assert json.loads(json.dumps(cal)) == cal
    from oven.run import app
    assert app._default_cal(2, 4194) == cal      # the controller's fallback is the same calibration
