"""`ovenctl verify` on logs after a power cut (docs/LOGFORMAT.md section 9): runs the boot-time recovery
closed INTERRUPTED, and runs whose soak was resumed. Every log is made by the real firmware code paths
under CPython (main.Session on the simulated bench, a littlefs-like MemFS flash, the power cut, then
main.recover() at the next boot: tests/reliability/common.py); the tampered variants rewrite records
with valid CRCs and sequence numbers (test_verify.frames / rebuild)."""
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REL = os.path.join(os.path.dirname(HERE), "reliability")
for _p in (HERE, REL):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import common  # noqa: E402  (paths: firmware/, boards/, tests/shim)
from common import RUNS, BoardSelect, Plan, flash, main, run_to_end, scenario, session  # noqa: E402
from memfs import MemFS  # noqa: E402
from ovenctl import cli, sweep, verify  # noqa: E402
from ovenctl.logfile import read_log  # noqa: E402
from test_verify import SCENARIOS, _uv, _zz, frames, rebuild  # noqa: E402

pytestmark = pytest.mark.e2e

LOG = RUNS + "/sim-0001.log"
# chamber-timed (no reference probe), so that the soak starts at a known tick soon after the heat-up
QUICK = {"seed": 5, "blank_run": False, "probe": False,
         "method": {"soak_s": 600, "soak_max_total_s": 1200, "blank_soak_s": 0}}
SOAK_AT = 3000          # ticks: the quick run is in its soak from tick 2785 to 3385 (m0 after 900 s of settling)


def _scn(**method):
    s = json.loads(json.dumps(QUICK))
    s["method"].update(method)
    return s


def make(cuts, scn=QUICK, rtc=True):
    """The log of a run cut len(cuts) times: (ticks run before the cut, outage ms). After each cut the
    outputs drop, the bench goes on for the outage, and main.recover() resumes or closes the run; a
    resumed run goes on (to its end after the last cut)."""
    fs = MemFS()
    with flash(fs):
        plan = Plan(scenario(scn), rtc=rtc)
        s = session(plan)
        board = plan.board
        for at, outage_ms in cuts:
            n = 0
            while n < at:
                r = s.advance(min(1000, at - n))
                assert r >= 0, "the run ended before the cut"
                n += r
            fs.power_cut()
            board.power_on_state()
            plan.bench.advance(outage_ms)
            bs = BoardSelect(plan.bench, rtc=rtc)
            s = main.recover(bs, RUNS, bs.link_rx, bs.link_tx)
            if s is None:
                break
            board = bs.plans[-1].board
        if s is not None:
            run_to_end(s)
        return fs.read(LOG)


def recover_prefix(data):
    """A log cut after its first `len(data)` bytes (what the flash held), closed by main.recover() on a
    board without a resume plan or clock."""
    fs = MemFS()
    with flash(fs):
        fs.mkdir(RUNS)
        f = fs.open(LOG, "wb")
        f.write(data)
        f.flush()
        f.close()
        assert main.recover(None, RUNS) is None
        return fs.read(LOG)


@pytest.fixture(scope="module")
def logs():
    out = {
        "resumed": make([(SOAK_AT, 5000), (50, 2000)]),                  # resumed twice, runs to its verdict
        "outage": make([(SOAK_AT, 600000)]),                             # closed: OUTAGE
        "no_clock": make([(SOAK_AT, 1000)], rtc=False),                  # closed: NO_CLOCK
        "heatup": make([(2000, 1000)]),                                  # closed: NOT_SOAK
        "resumed_closed": make([(SOAK_AT, 3000), (50, 600000)]),         # resumed, then closed: OUTAGE
        "max_resumes": make([(SOAK_AT, 3000), (50, 2000)], scn=_scn(resume_max=1)),   # closed: MAX_RESUMES
    }
    # a fault (thermocouple open in the soak) whose VERDICT did not reach the flash: closed ABORTED (ENDED)
    data = sweep.run(SCENARIOS["aborted"], want_log=True)[1]
    vr = [r for r in read_log(data).records if r.name == "VERDICT"][0]
    out["fault"] = recover_prefix(data[:vr.offset])
    return out


def res_of(data):
    return verify.verify_log(read_log(data))


def problems(res):
    return [f["message"] for f in res["findings"] if f["level"] != "warning"]


def msgs(res):
    return " | ".join(f["message"] for f in res["findings"])


def events(data, code):
    return [e for e in read_log(data).events if e["code"] == code]


# ---------------------------------------------------------------- real logs: consistent
CLOSED = {"outage": ("OUTAGE", "INVALID"), "no_clock": ("NO_CLOCK", "INVALID"), "heatup": ("NOT_SOAK", "INVALID"),
          "resumed_closed": ("OUTAGE", "INVALID"), "max_resumes": ("MAX_RESUMES", "INVALID"),
          "fault": ("ENDED", "ABORTED")}


def test_closed_runs_are_consistent(logs, tmp_path, capsys):
    for name, (reason, verdict) in CLOSED.items():
        data = logs[name]
        log = read_log(data)
        assert log.complete and not log.problems, name
        res = verify.verify_log(log)
        assert res["exit_code"] == 0 and res["findings"] == [], (name, res["findings"])
        it = res["power_cuts"]["interrupted"]
        assert it["reason_name"] == reason, name
        assert res["overall"] == {"device": verdict, "recomputed": verdict, "match": True}, name
        assert all(c["fields"]["verdict"]["recomputed"] == verdict for c in res["cells"])
        # the soak times of a closed run are the SOAK samples in the log, exactly
        assert res["device_run"]["soak_in_spec_s"] == res["soak"]["in_spec_s_samples"]
        assert res["device_run"]["soak_total_s"] == res["soak"]["total_s_samples"]
        ev = events(data, verify.E_INTERRUPTED)[0]
        assert it["t_s"] == ev["t_ms"] // 1000 and it["outage_s"] == ev["a"]
        if name == "fault":
            assert res["events"]["fault_name"] == "TC_OPEN" and res["device_run"]["invalid"] == verify.F_INTERRUPTED
            assert not [e for e in log.events if e["code"] == verify.E_INVALID]     # a fault: no INVALID event
        else:
            assert res["events"]["invalid"] == verify.F_INTERRUPTED
            assert res["events"]["invalid_name"] == "INTERRUPTED"
        p = tmp_path / (name + ".log")
        p.write_bytes(data)
        rc, out, err = cli.main(["verify", str(p)]), *capsys.readouterr()
        assert rc == 0 and err == "" and "RESULT: CONSISTENT" in out, (name, out)
        line = [x for x in out.splitlines() if x.startswith("power cut: run interrupted")][0]
        outage = "unknown" if ev["a"] == -1 else "%d s" % ev["a"]
        assert line.startswith("power cut: run interrupted by a power cut/reset at t=%d s, outage %s, reason %s ("
                               % (ev["t_ms"] // 1000, outage, reason)), line
        assert line.endswith("closed %s at boot" % verdict), line
    # what each reason rests on
    assert res_of(logs["outage"])["power_cuts"]["interrupted"]["outage_s"] > 120
    assert res_of(logs["no_clock"])["power_cuts"]["interrupted"]["outage_s"] == -1
    assert "rtc_start_s" not in read_log(logs["no_clock"]).header
    mr = res_of(logs["max_resumes"])["power_cuts"]
    assert mr["resume_max"] == 1 and len(mr["resumes"]) == 1 and mr["interrupted"]["resumes_before"] == 1
    assert len(res_of(logs["resumed_closed"])["power_cuts"]["resumes"]) == 1
    rc = cli.main(["verify", "--json", str(tmp_path / "outage.log")])
    out = capsys.readouterr().out
    assert rc == 0 and json.loads(out)["power_cuts"]["interrupted"]["reason_name"] == "OUTAGE"


def test_resumed_run_is_consistent(logs, tmp_path, capsys):
    data = logs["resumed"]
    log = read_log(data)
    res = verify.verify_log(log)
    assert res["exit_code"] == 0 and res["findings"] == [], res["findings"]     # no "unknown event" warning
    # a quick chamber-timed run without a blank run (no drift correction) cannot PASS
    # (docs/UNCERTAINTY.md section 4): INCONCLUSIVE for those reasons only. The CHAMBER_TIMED reason was
    # logged before the power cuts: the resumed run kept it (and the calibration of its header)
    assert res["overall"]["recomputed"] == res["overall"]["device"] == "INCONCLUSIVE"
    assert log.verdict["cells"][0]["no_pass"] == ["CHAMBER_TIMED", "NO_BLANK"]
    t_cut = [e["t_ms"] for e in log.events if e["code"] == verify.E_RESUMED][0]
    assert [e["t_ms"] < t_cut for e in log.events if e["code"] == verify.E_NO_PASS][0]
    c = log.verdict["cells"][0]
    assert c["loss_ppm"] + c["u_ppm"] <= c["limit_ppm"]        # the guarded rule alone would PASS it
    pc = res["power_cuts"]
    assert pc["interrupted"] is None and [r["count"] for r in pc["resumes"]] == [1, 2]
    ts = [s["t_s"] for s in log.samples]
    for r in pc["resumes"]:
        # the t_s gap after the last sample before the resume is the outage
        assert r["t_s"] == r["last_sample_t_s"] + r["outage_s"] and r["next_sample_t_s"] == r["t_s"] + 1
        assert r["last_sample_t_s"] in ts and r["next_sample_t_s"] in ts
        assert 0 < r["outage_s"] <= 120
    gaps = sum(b - a - 1 for a, b in zip(ts, ts[1:]))
    assert gaps == pc["outage_s_total"] == sum(r["outage_s"] for r in pc["resumes"]) > 5
    # the soak time is counted from the samples: the outage is not in it, and agrees with the device
    assert res["soak"]["in_spec_s_samples"] == res["device_run"]["soak_in_spec_s"] == 600
    p = tmp_path / "resumed.log"
    p.write_bytes(data)
    rc, out, err = cli.main(["verify", str(p)]), *capsys.readouterr()
    assert rc == 0 and "RESULT: CONSISTENT" in out
    r1 = pc["resumes"][0]
    assert ("power cut: run resumed at t=%d s after an outage of %d s (resume 1 of at most 3, resume_grace_s 120 s); "
            "samples stop at %d s and go on at %d s (%d s without samples)"
            % (r1["t_s"], r1["outage_s"], r1["last_sample_t_s"], r1["next_sample_t_s"], r1["outage_s"])) in out
    assert "the outages (%d s) are not soak time" % pc["outage_s_total"] in out


def test_names_of_the_new_codes():
    assert verify.FAULT_NAMES[verify.F_INTERRUPTED] == "INTERRUPTED"
    assert verify.event_name(verify.E_RESUMED) == "RESUMED"
    assert verify.event_name(verify.E_INTERRUPTED) == "INTERRUPTED"


# ---------------------------------------------------------------- tampering helpers
def _event_payload(e, **kw):
    e = dict(e, **kw)
    return _uv(_zz(e["t_ms"])) + _uv(e["code"]) + _uv(_zz(e["a"])) + _uv(_zz(e["b"]))


def with_event(data, pick, **kw):
    """The log with the event that pick(event) selects changed (valid CRC and seq)."""
    fr = frames(data)
    e = [x for x in read_log(data).events if pick(x)][0]
    k = [i for i, (r, _) in enumerate(fr) if r.offset == e["offset"]][0]
    fr[k] = (fr[k][0], _event_payload(e, **kw))
    return rebuild(fr)


def without(data, pick):
    fr = frames(data)
    offs = {e["offset"] for e in read_log(data).events if pick(e)}
    assert offs
    return rebuild([x for x in fr if x[0].offset not in offs])


def with_json(data, name, change):
    fr = frames(data)
    k = [i for i, (r, _) in enumerate(fr) if r.name == name][0]
    v = json.loads(fr[k][1])
    change(v)
    fr[k] = (fr[k][0], json.dumps(v).encode())
    return rebuild(fr)


def _is(code, **kw):
    return lambda e: e["code"] == code and all(e[k] == v for k, v in kw.items())


def expect_inconsistent(data, *needles):
    res = res_of(data)
    assert res["exit_code"] == 1 and not res["damaged"] and res["inconsistent"], res["findings"]
    m = msgs(res)
    for s in needles:
        assert s in m, (s, m)
    return res


# ---------------------------------------------------------------- closed runs: tampered
def _set_verdict(v, name):
    v["verdict"] = name
    for c in v["cells"]:
        c["verdict"] = name


def test_closed_run_with_a_measured_verdict(logs, tmp_path, capsys):
    data = logs["outage"]
    vr = [r for r in read_log(data).records if r.name == "VERDICT"][0]
    for name in ("PASS", "FAIL", "INCONCLUSIVE"):
        d = with_json(data, "VERDICT", lambda v: _set_verdict(v, name))
        res = expect_inconsistent(d, "%s verdict on a run that was interrupted by a power cut/reset and closed at "
                                     "boot (INTERRUPTED event at" % name, "reason OUTAGE")
        assert any(f["offset"] == vr.offset and f["seq"] == vr.seq for f in res["findings"])
    # only the overall verdict changed: still named
    expect_inconsistent(with_json(data, "VERDICT", lambda v: v.__setitem__("verdict", "PASS")),
                        "PASS verdict on a run that was interrupted", "overall verdict: device 'PASS', recomputed 'INVALID'")
    # end to end through the CLI
    p = tmp_path / "pass.log"
    p.write_bytes(with_json(data, "VERDICT", lambda v: _set_verdict(v, "PASS")))
    rc, out, err = cli.main(["verify", str(p)]), *capsys.readouterr()
    assert rc == 1 and "RESULT: INCONSISTENT" in out and "Traceback" not in out + err
    assert "PASS although the run was declared invalid (INTERRUPTED)" in out


def test_closed_run_other_verdict_fields(logs):
    data = logs["outage"]
    for change, needle in (
            (lambda v: _set_verdict(v, "ABORTED"), "overall verdict: device 'ABORTED', recomputed 'INVALID'"),
            (lambda v: v.__setitem__("invalid", 0), "invalid reason (INVALID events): device 0, recomputed 29"),
            (lambda v: v.__setitem__("soak_in_spec_s", v["soak_in_spec_s"] - 1), "soak_in_spec_s: device"),
            (lambda v: v.__setitem__("soak_total_s", v["soak_total_s"] + 1), "soak_total_s: device")):
        expect_inconsistent(with_json(data, "VERDICT", change), needle)
    # the fault case: ABORTED is the policy, INVALID is not
    expect_inconsistent(with_json(logs["fault"], "VERDICT", lambda v: _set_verdict(v, "INVALID")),
                        "overall verdict: device 'INVALID', recomputed 'ABORTED'")


def test_closed_run_events_tampered(logs):
    data = logs["outage"]
    it = _is(verify.E_INTERRUPTED)
    ev = events(data, verify.E_INTERRUPTED)[0]
    grace = 120
    # the reason against the log
    expect_inconsistent(with_event(data, it, b=verify.R_OUT_OF_SPEC),
                        "reason OUT_OF_SPEC, but the outage of %d s is longer than resume_grace_s" % ev["a"])
    expect_inconsistent(with_event(data, it, b=verify.R_NO_CLOCK), "reason NO_CLOCK, but the outage was measured")
    expect_inconsistent(with_event(data, it, b=verify.R_NOT_SOAK),
                        "reason NOT_SOAK, but the last sample (%d s) is an in-spec SOAK sample" % (ev["t_ms"] // 1000))
    expect_inconsistent(with_event(data, it, b=verify.R_ENDED), "reason ENDED, but the log has no fault or INVALID")
    expect_inconsistent(with_event(data, it, b=verify.R_MAX_RESUMES), "reason MAX_RESUMES, but the run was resumed 0")
    expect_inconsistent(with_event(data, it, a=grace), "reason OUTAGE, but the outage of 120 s is within resume_grace_s")
    expect_inconsistent(with_event(data, it, b=42), "unknown reason 42")
    expect_inconsistent(with_event(data, it, a=-5), "outage -5 s")
    expect_inconsistent(with_event(data, it, t_ms=ev["t_ms"] - 5000), "precedes the run's last record")
    expect_inconsistent(with_event(logs["heatup"], it, b=verify.R_OUTAGE),
                        "reason OUTAGE, but the last sample is not an in-spec SOAK sample")
    # a fault was logged: the reason is ENDED and there is no INVALID (INTERRUPTED) event
    expect_inconsistent(with_event(logs["fault"], it, b=verify.R_NO_CLOCK), "so the reason is ENDED")
    # removed records (sequence renumbered, CRCs recomputed)
    expect_inconsistent(without(data, _is(verify.E_INVALID, a=verify.F_INTERRUPTED)),
                        "without the INVALID event (reason INTERRUPTED)")
    expect_inconsistent(without(data, it), "INVALID event with reason INTERRUPTED at", "but no INTERRUPTED event")
    # the run went on after it was closed: the INTERRUPTED event moved before the last BLOCK
    fr = frames(data)
    k = [i for i, (r, _) in enumerate(fr) if r.offset == ev["offset"]][0]
    assert fr[k - 1][0].name == "BLOCK"
    fr[k - 1], fr[k] = fr[k], fr[k - 1]
    expect_inconsistent(rebuild(fr), "BLOCK record after the INTERRUPTED event")


def test_resume_without_a_closing_verdict(logs):
    # a resumed log cut again and never closed: damaged (no END), and its resumes are still checked
    data = logs["resumed"]
    end = [r for r in read_log(data).records if r.name == "END"][0]
    res = res_of(data[:end.offset])
    assert res["exit_code"] == 1 and res["damaged"]
    assert [r["count"] for r in res["power_cuts"]["resumes"]] == [1, 2]


# ---------------------------------------------------------------- resumed runs: tampered
@pytest.mark.slow
def test_resumed_run_tampered(logs):
    data = logs["resumed"]
    res0 = res_of(data)
    r1, r2 = res0["power_cuts"]["resumes"]
    first = _is(verify.E_RESUMED, b=1)
    second = _is(verify.E_RESUMED, b=2)
    # the method allowed a shorter outage than the one the run was resumed after
    short = r1["outage_s"] - 1
    expect_inconsistent(with_json(data, "HEADER", lambda h: h["method"].__setitem__("resume_grace_s", short)),
                        "resumed at %d s after an outage of %d s, longer than the method's resume_grace_s %d s"
                        % (r1["t_s"], r1["outage_s"], short), "should have been closed INTERRUPTED (OUTAGE)")
    expect_inconsistent(with_json(data, "HEADER", lambda h: h["method"].__setitem__("resume_max", 1)),
                        "resume 2 at %d s: the method allows at most resume_max = 1" % r2["t_s"])
    expect_inconsistent(with_json(data, "HEADER", lambda h: h.pop("rtc_start_s")), "header has no rtc_start_s")
    # the outage in the event does not match the samples' t_s gap
    expect_inconsistent(with_event(data, first, a=r1["outage_s"] + 3),
                        "says the outage was %d s, but the last sample before it is at %d s"
                        % (r1["outage_s"] + 3, r1["last_sample_t_s"]))
    expect_inconsistent(with_event(data, first, a=500), "longer than the method's resume_grace_s 120 s")
    expect_inconsistent(with_event(data, first, a=-1), "with an unknown outage")
    # a resume event moved in time: the samples go on at a time the outage does not explain
    expect_inconsistent(with_event(data, first, t_ms=(r1["t_s"] - 3) * 1000, a=r1["outage_s"] - 3),
                        "the samples go on at %d s, not %d s" % (r1["next_sample_t_s"], r1["t_s"] - 2))
    # the resume count
    expect_inconsistent(with_event(data, second, b=3), "says 3 resume(s) so far, it is resume 2")
    expect_inconsistent(with_event(data, first, b=2), "says 2 resume(s) so far, it is resume 1")
    # a removed RESUMED event: the gap in the samples is unexplained
    expect_inconsistent(without(data, second), "the samples jump from %d s to %d s (%d s without samples) without a "
                        "RESUMED event" % (r2["last_sample_t_s"], r2["next_sample_t_s"], r2["outage_s"]))
    expect_inconsistent(without(data, first), "says 2 resume(s) so far, it is resume 1")
    # a resume after a sample that was not in spec
    log = read_log(data)
    s = [x for x in log.samples if x["t_s"] == r1["last_sample_t_s"]][0]
    s["flags"] &= ~verify.SF_IN_SPEC
    assert "only a run whose last synced sample is an in-spec SOAK sample resumes" in msgs(verify.verify_log(log))


def test_resumed_run_soak_time_excludes_the_outage(logs):
    data = logs["resumed"]
    res0 = res_of(data)
    out = res0["power_cuts"]["outage_s_total"]

    def add(v):
        v["soak_in_spec_s"] += out
        v["soak_total_s"] += out
    expect_inconsistent(with_json(data, "VERDICT", add), "soak_in_spec_s: device %d s, the samples show 600 s; the "
                        "difference is the power-cut outage (%d s), which is not soak time" % (600 + out, out))


def test_resumed_run_that_had_ended(logs):
    # a fault event before the resume: the run had ended and must not have been resumed
    data = logs["resumed"]
    r1 = res_of(data)["power_cuts"]["resumes"][0]
    fr = frames(data)
    ev = events(data, verify.E_RESUMED)[0]
    k = [i for i, (r, _) in enumerate(fr) if r.offset == ev["offset"]][0]
    fault = dict(ev, code=12, t_ms=(r1["last_sample_t_s"]) * 1000, a=12000, b=7)
    fr.insert(k, (fr[k][0], _event_payload(fault)))
    expect_inconsistent(rebuild(fr), "resumed at %d s a run that had already ended (FAULT_TC_OPEN at %d s)"
                        % (r1["t_s"], r1["last_sample_t_s"]))
    # an INTERRUPTED closing followed by a resume
    ints = events(logs["resumed_closed"], verify.E_INTERRUPTED)[0]
    fr = frames(logs["resumed_closed"])
    k = [i for i, (r, _) in enumerate(fr) if r.offset == ints["offset"]][0]
    fr.insert(k + 1, (fr[k][0], _event_payload(dict(ints, code=verify.E_RESUMED, a=5, b=2))))
    expect_inconsistent(rebuild(fr), "RESUMED event at %d s after the run was closed INTERRUPTED" % (ints["t_ms"] // 1000))
