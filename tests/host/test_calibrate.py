"""`ovenctl calibrate` / `ovenctl autotune` / `ovenctl prepare`, and the calibration steps of the
simulated bench (boards/sim/runner.py): against the simulated bench (--sim) and against a device
whose raw REPL runs the generated code in-process on a simulated board (the same code strings
the real device gets). A refused calibration exits 1 and changes no byte of the store; bad input
exits 2 with one line, never a traceback."""
import contextlib
import io
import json
import os
import sys

import pytest

from ovenctl import cli
from ovenctl import caltarget as T
from ovenctl.scenario import normalize

pytestmark = pytest.mark.e2e

ROOT = T.ROOT
SCENARIO = os.path.join(ROOT, "boards", "sim", "scenarios", "default.json")
T._fw_path()


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


def _files(d):
    out = {}
    for n in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        with open(os.path.join(d, n), "rb") as f:
            out[n] = f.read()
    return out


def _scn(tmp_path, name, **cal):
    p = tmp_path / (name + ".json")
    p.write_text(json.dumps({"seed": 5, "calibration": cal}))
    return str(p)


def test_sim_span_check_tc_autotune_and_show(tmp_path):
    d = str(tmp_path / "cal")
    sim = ["--sim", SCENARIO, "--cal-dir", d]
    rc, out, err = _run(["calibrate", "span"] + sim + ["--ref", "100", "--ref2", "50", "--id", "R-100/R-50", "--json"])
    assert rc == 0, err
    sp = json.loads(out)["span"]
    assert abs(sp["counts_per_g"] - 20968) <= 3 and sp["lin_ref_ug"] == 50000000 and sp["cal_id"] == "R-100/R-50"
    rc, out, err = _run(["calibrate", "check"] + sim)
    assert rc == 1 and "no check weight stored" in err
    assert _run(["calibrate", "check"] + sim + ["--set", "50", "--tol", "20", "--id", "CW-7"])[0] == 0
    rc, out, err = _run(["calibrate", "check"] + sim)
    assert rc == 0 and "check weight OK" in out
    rc, out, err = _run(["calibrate", "tc-offset"] + sim + ["--sensor", "probe", "--ice-point", "--reading", "-0.4"])
    assert rc == 0 and "+0.40" in out
    rc, out, err = _run(["autotune"] + sim + ["--json"])
    assert rc == 0, err
    pid = json.loads(out)["pid"]
    assert pid["kp"] > 0 and pid["tu_ms"] > 0
    rc, out, err = _run(["calibrate", "show"] + sim + ["--json"])
    s = json.loads(out)
    cal = s["cal"]
    assert cal["source"] == "measured" and cal["channels"][0]["counts_per_g"] == sp["counts_per_g"]
    assert cal["check"]["mass_ug"] == 50000000 and cal["check"]["n"] == 1
    assert cal["tc_offset_c_x100"] == {"chamber": 0, "probe": 40}
    assert cal["pid"] == {"kp": pid["kp"], "ki": pid["ki"], "kd": pid["kd"]}
    # every change is in the audit trail
    whats = [json.loads(x)["what"] for x in open(os.path.join(d, "audit.jsonl")).read().splitlines()]
    assert whats == ["calib.span.0", "calib.check", "calib.check.last", "calib.tc_offset", "calib.pid"]
    rc, out, err = _run(["calibrate", "show"] + sim)
    assert rc == 0 and "source measured" in out and "probe +0.40" in out and "kp %d" % pid["kp"] in out


def test_sim_refusals_change_nothing(tmp_path):
    d = str(tmp_path / "cal")
    good = ["--sim", SCENARIO, "--cal-dir", d]
    assert _run(["calibrate", "span"] + good + ["--ref", "100"])[0] == 0
    assert _run(["calibrate", "check"] + good + ["--set", "50", "--tol", "20"])[0] == 0
    assert _run(["autotune"] + good)[0] == 0
    before = _files(d)
    # reference mass 2 disagrees (50.5 g on the pan, stated 50 g)
    bad = ["--sim", _scn(tmp_path, "badref", ref_actual_g=[100, 50.5]), "--cal-dir", d]
    rc, out, err = _run(["calibrate", "span"] + bad + ["--ref", "100", "--ref2", "50"])
    assert rc == 1 and "refused:" in err and "disagree" in err and "Traceback" not in err
    assert _files(d) == before
    # a reading implausible for the stated mass (200 g on the pan, stated 100 g)
    bad = ["--sim", _scn(tmp_path, "badref1", ref_actual_g=[200]), "--cal-dir", d]
    rc, out, err = _run(["calibrate", "span"] + bad + ["--ref", "100"])
    assert rc == 1 and "not the stated mass" in err
    assert _files(d) == before
    # an offset beyond 5 degC
    rc, out, err = _run(["calibrate", "tc-offset"] + good + ["--sensor", "chamber", "--ref", "120", "--reading", "110"])
    assert rc == 1 and "beyond" in err
    assert _files(d) == before
    # an oven too slow to oscillate within the autotune's limits: refused, gains unchanged
    p = tmp_path / "slow.json"
    p.write_text(json.dumps({"seed": 5, "oven": {"heater_w": 60.0, "heat_capacity_j_per_c": 4000.0}}))
    rc, out, err = _run(["autotune", "--sim", str(p), "--cal-dir", d, "--json"])
    assert rc == 1 and json.loads(out)["refused"]
    assert _files(d) == before
    # the check weight out of tolerance: exit 1, the calibration unchanged, the result in the history
    bad = ["--sim", _scn(tmp_path, "badcw", check_actual_g=50.05), "--cal-dir", d]
    rc, out, err = _run(["calibrate", "check"] + bad)
    assert rc == 1 and "check weight FAILED" in err and "off by +49." in err
    after = _files(d)
    for name in before:
        if name not in ("checks.json", "audit.jsonl", "audit_state.json"):
            assert after[name] == before[name], name
    hist = json.loads(after["checks.json"])["history"]
    assert hist[-1]["ok"] is False


@pytest.mark.parametrize("argv, word", [
    (["calibrate", "span", "--ref", "-3"], "--ref"),
    (["calibrate", "span", "--ref", "100", "--ref2", "100"], "--ref2"),
    (["calibrate", "span", "--ref", "100", "--channel", "0"], "--channel"),
    (["calibrate", "span", "--ref", "100", "--channel", "2"], "2, but the board has 1"),
    (["calibrate", "check", "--set", "50"], "--tol"),
    (["calibrate", "check", "--tol", "3"], "--tol goes with --set"),
    (["calibrate", "tc-offset", "--sensor", "probe", "--ref", "900", "--reading", "1"], "--ref"),
    (["calibrate", "datasheet", "--span-tc", "-1", "--creep", "1", "--creep-tau", "1"], "--span-tc"),
    (["calibrate", "equipment", "/nonexistent.json"], "/nonexistent.json"),
    (["autotune", "--setpoint", "200"], "--setpoint"),
])
def test_bad_input_exits_2_with_a_message(tmp_path, argv, word):
    rc, out, err = _run(argv + ["--sim", SCENARIO, "--cal-dir", str(tmp_path / "c")])
    assert rc == 2 and word in err and "Traceback" not in err
    assert _files(str(tmp_path / "c")) == {}


def test_bad_scenario_exits_2(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"seed": 1, "calibration": {"ref_g": [0]}}))
    rc, out, err = _run(["calibrate", "show", "--sim", str(p)])
    assert rc == 2 and "calibration.ref_g[0]" in err


# ------------------------------------------------------------------ the device path, in-process
class _FakeDevice(T.DeviceTarget):
    """DeviceTarget whose raw REPL executes the generated code here, on a simulated board (what
    the device's MicroPython does with the same text)."""

    def __init__(self, bench, d):
        T.DeviceTarget.__init__(self, "/dev/fake")
        self.bench = bench
        self.d = d
        self.execs = 0

    def _raw_exec(self, code, timeout_s):
        from oven.run import plan
        from oven.run import start
        from sim.board import SimBoard
        bench = self.bench

        def repl_board(board_mod=None, config_path=None):
            b = SimBoard(bench)
            b.deinit = lambda: None
            return b, {}
        self.execs += 1
        saved = start.repl_board, plan.load_config
        start.repl_board = repl_board
        plan.load_config = lambda path=None: {"counts_per_g": 20972}
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                exec(compile(code, "<device>", "exec"), {})
        finally:
            start.repl_board, plan.load_config = saved
        return buf.getvalue()


def _tech(bench, extra_g=0.0):
    def ask(prompt):
        if "empty the pan" in prompt:
            bench.remove_mass(0)
        else:
            g = float(prompt.split(" g")[0].split(" ")[-1].lstrip("("))
            bench.place_mass(0, g + extra_g)
        return True
    return ask


def test_device_path_runs_the_firmware_code(tmp_path):
    from sim.model import Bench
    d = str(tmp_path / "devcal")
    bench = Bench({"seed": 9, "blank_run": True})
    t = _FakeDevice(bench, d)
    sp = t.span(0, 100000000, 50000000, _tech(bench), "R1", 1700000000)
    assert abs(sp["counts_per_g"] - 20968) <= 3 and sp["when"] == 1700000000
    bench.remove_mass(0)
    before = _files(d)
    with pytest.raises(T.Refused) as e:
        t.span(0, 100000000, 50000000, _tech(bench, extra_g=0.4), "R1", 1)
    assert "disagree" in str(e.value) or "not the stated mass" in str(e.value)
    bench.remove_mass(0)
    assert _files(d) == before
    assert t.check(_tech(bench), 5)["skipped"].startswith("no check weight")
    t.store("set_check_weight", 50000000, 20000, "CW", when=5)
    r = t.check(_tech(bench), 6)
    assert r["ok"] is True and len(r["results"]) == 1
    bench.remove_mass(0)
    r = t.check(_tech(bench, extra_g=0.1), 7)
    assert r["ok"] is False and "off by" in r["message"]
    bench.remove_mass(0)
    s = t.show()
    assert s["cal"]["source"] == "measured" and [h["ok"] for h in s["history"]] == [True, False]
    t.store("set_tc_offset", "chamber", 0, 20, when=8, source="ice point")
    assert t.show()["cal"]["tc_offset_c_x100"]["chamber"] == -20
    with pytest.raises(T.Refused):
        t.store("set_tc_offset", "chamber", 0, 2000, when=8)


def test_prepare_start_data():
    from ovenctl import cmd_prepare
    d = cmd_prepare.start_data("op-1", "SN1, SN2", 1700000000.7)
    assert d == {"operator": "op-1", "host_time_s": 1700000000, "cells": ["SN1", "SN2"]}
    for op, cells in (("", None), ("x" * 65, None), ("a", "SN1,,SN2")):
        with pytest.raises(cli.UserError):
            cmd_prepare.start_data(op, cells, 0)
    # the device code is valid Python that writes /start.json atomically
    code = cmd_prepare._WRITE % json.dumps(d)
    compile(code, "<device>", "exec")
    assert "os.rename('/start.json.tmp','/start.json')" in code


# ------------------------------------------------------------------ the simulated bench's runs
def test_sim_run_calibrates_checks_and_records():
    from sim import runner
    scn = normalize({"seed": 4, "blank_run": False})
    res, log = runner.run_scenario(scn, want_log=True)
    cal = res["calibration"]
    assert cal["span_error"] is None and abs(cal["span"][0] - 20968) <= 3
    assert cal["check_test"]["ok"] is True and cal["cal"]["source"] == "measured"
    # the lab's history (scenario calibration.check_history, 5 earlier weighings) and this run's check
    assert cal["cal"]["check"]["n"] == scn["calibration"]["check_history"] + 1 == 6
    from ovenctl.logfile import read_log
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".log", delete=False) as f:
        f.write(log)
    hdr = read_log(f.name).header
    os.unlink(f.name)
    assert hdr["cal"] == cal["cal"]
    rec = hdr["records"]
    assert rec["operator"] == "sim-operator" and rec["check_weight"]["ok"] is True
    assert rec["clock"]["source"] == "sim" and rec["lab"]["vacuum_pa"] == 10000


def test_sim_run_refused_span_and_failed_check():
    from sim import runner
    scn = normalize({"seed": 4, "blank_run": False, "calibration": {"ref_g": [100, 50], "ref_actual_g": [100, 50.5]}})
    res, _ = runner.run_scenario(scn)
    assert "disagree" in res["calibration"]["span_error"]
    assert res["calibration"]["cal"]["source"] == "default" and res["verdict"] != "NOT_STARTED"
    scn = normalize({"seed": 4, "calibration": {"check_actual_g": 50.1}})
    res, _ = runner.run_scenario(scn)
    assert res["verdict"] == "NOT_STARTED" and "check weight off by" in res["not_started"]
    assert res["blank"] is None and res["calibration"]["check_blank"]["ok"] is False


def test_report_shows_the_records(tmp_path):
    from sim import runner
    from ovenctl import cmd_report
    res, log = runner.run_scenario(normalize({"seed": 4, "blank_run": False}), want_log=True)
    p = tmp_path / "r.log"
    p.write_bytes(log)
    rc, out, err = _run(["report", str(p), "--out", str(tmp_path / "r.html")])
    assert rc == 0, err
    html = (tmp_path / "r.html").read_text()
    i = html.index("Records (ISO/IEC 17025")
    sec = html[i:html.index("<h2>", i + 10)]
    for word in ("sim-operator", "cell-1", "simulated bench time", "check weight before the run", "passed",
                 "measured (calibration store)", "≤ 10.0 kPa absolute", "cell reference probe", "guarded acceptance"):
        assert word in sec, word
    # a header without records (older firmware) says so, and a failed check and host time read right
    assert cmd_report.records_rows({"run_id": "x"}) is None
    rows = dict(cmd_report.records_rows({"records": {
        "operator": "op-9", "operator_source": "host", "cells": ["A", "B"], "cells_source": "host",
        "clock": {"source": "host", "start_s": 1764806400, "set_age_s": 30},
        "ambient": {"temp_c_x100": 2312, "rh_permille": 455},
        "check_weight": {"ok": False, "results": [[1, -25000, False]], "mass_ug": 50000000, "tol_ug": 20000}}}))
    assert rows["operator"] == "op-9 (entered on the host (ovenctl prepare))"
    assert rows["date and time of START"].startswith("2025-12-04 00:00:00 UTC (set from the host's clock")
    assert rows["ambient conditions"] == "23.12 °C, 45.5 % RH"
    assert rows["check weight before the run"] == "FAILED: ch 2 -25.0 mg OUT (50 g ± 20 mg)"
