# Power-cut recovery (firmware/oven/run/recovery.py): scanning a run log cut at any point, the resume
# decision and the record that closes an interrupted run; RunLog.reopen continuing a log.
# Runs under CPython and inside the MicroPython VM (docs/CONVENTIONS.md rules).
import io
import sys
from array import array

from oven.core import codes as C
from oven.core import methods
from oven.run import recovery as R
from oven.store import runlog
from oven.store.runlog import RunLog, MISSING

SP = 12000
IS_MP = sys.implementation.name == "micropython"


class Sink:
    """A file that keeps everything written (flush is a no-op)."""

    def __init__(self, data=b""):
        self.data = bytearray(data)

    def write(self, b, off=0, n=-1):
        if n < 0:
            n = len(b) - off
        self.data.extend(bytes(b[off:off + n]))
        return n

    def flush(self):
        pass

    def close(self):
        pass


def _method():
    return methods.validate({"soak_s": 600, "soak_max_total_s": 1200})


def _write_log(n_soak=100, rtc=1000, last_in_spec=True, close=False, n_cells=1):
    """A test log: 30 s of PRECHECK..PUMPDOWN-like samples, tare and m0 weighings, then SOAK
    samples (the last one in spec or not). Returns (bytes, RunLog, samples written, t of last)."""
    f = Sink()
    log = RunLog(n_cells)
    hdr = {"run_id": "t-0001", "method": _method(), "cells": ["c1"] * n_cells,
           "calibration": {"counts_per_g": 20972, "blank": None}}
    if rtc is not None:
        hdr["rtc_start_s"] = rtc
    log.open("x", hdr, opener=lambda p, m: f)
    raw = array("i", [500000] * n_cells)
    t = 0
    log.event(0, C.E_PHASE, 1, 0)
    for _ in range(20):
        t += 1
        log.sample(t, 2, 0, 2300, 2300, 101000, 0, raw)
        log.poll(t)
    for c in range(n_cells):
        log.weigh(c, runlog.W_TARE, t * 1000, 2300, [100000, 100010, 99990, 100004])
    for _ in range(10):
        t += 1
        raw[0] = MISSING if t == 25 else 600000 + t
        log.sample(t, 4, 0, 2300, 2300, 101000, 0, raw)
        log.poll(t)
    for c in range(n_cells):
        log.weigh(c, runlog.W_M0, t * 1000, 2310, [600000, 600012, 599994])
    log.event(t * 1000, C.E_PHASE, 7, 6)
    for k in range(n_soak):
        t += 1
        ok = 1 if (k < n_soak - 1 or last_in_spec) else 0
        raw[0] = 600000 - k
        log.sample(t, 7, C.SF_IN_SPEC if ok else 0, SP + (0 if ok else 500), 2400, 900, 480, raw)
        log.poll(t)
    log.poll(t + 1000)          # a sync: the file now holds every sample
    n = log.n_samples
    if close:
        log.verdict({"verdict": "PASS"})
        log.close()
    return bytes(f.data), log, n, t


def _scan(data):
    return R.scan(io.BytesIO(data), len(data))


def test_scan_reads_the_run_state():
    data, log, n, t = _write_log()
    st = _scan(data)
    assert st.header is not None and st.header["rtc_start_s"] == 1000
    assert st.damaged == 0 and st.torn == 0 and st.valid_end == len(data)
    assert st.n_samples == n and st.last_t == t and st.next_seq == log._seq
    assert st.last_phase == 7 and st.last_flags & C.SF_IN_SPEC
    assert st.soak_n == st.soak_in and st.soak_n > 50
    n0, tot, m2n, lct, t_ms = st.weigh[(1, 0)]
    xs = [100000, 100010, 99990, 100004]
    assert (n0, tot, lct) == (4, sum(xs), 2300)
    assert m2n == 4 * sum([x * x for x in xs]) - sum(xs) * sum(xs)
    assert st.weigh[(2, 0)][0] == 3 and st.weigh[(2, 0)][3] == 2310
    assert [p[0] for p in st.phases] == ["PRECHECK", "SOAK"]
    assert st.last_raw[0] == 600000 - (st.soak_n - 1)
    assert not R.has_end(io.BytesIO(data), len(data))


def test_has_end_and_closed_logs():
    data, log, n, t = _write_log(close=True)
    assert R.has_end(io.BytesIO(data), len(data))
    st = _scan(data)
    assert st.end_seen and st.verdict_seen and st.n_samples == n
    m = R.method_of(st)
    assert R.decide(st, m, True, 5000, True, SP, True, 900)[0] == R.R_ENDED
    assert not R.has_end(io.BytesIO(data[:-1]), len(data) - 1)
    assert not R.has_end(io.BytesIO(b""), 0)


def test_decide_resume_and_every_reason():
    data, log, n, t = _write_log()
    st = _scan(data)
    m = R.method_of(st)
    assert m is not None and m["resume_grace_s"] == 120 and m["resume_max"] == 3
    now = 1000 + st.last_t + 30
    assert R.decide(st, m, True, now, True, SP, True, 900) == (R.RESUME, 30)
    assert R.decide(st, m, True, now, True, SP + 250, True, 900)[0] == R.R_OUT_OF_SPEC
    assert R.decide(st, m, True, now, False, SP, True, 900)[0] == R.R_OUT_OF_SPEC
    assert R.decide(st, m, True, now, True, SP, True, 10001)[0] == R.R_OUT_OF_SPEC
    assert R.decide(st, m, True, 1000 + st.last_t + 121, True, SP, True, 900) == (R.R_OUTAGE, 121)
    assert R.decide(st, m, True, None, True, SP, True, 900) == (R.R_NO_CLOCK, -1)
    assert R.decide(st, m, True, 1000 + st.last_t - 1, True, SP, True, 900)[0] == R.R_NO_CLOCK
    assert R.decide(st, m, False, now, True, SP, True, 900)[0] == R.R_NO_PLAN
    assert R.decide(st, m, True, now, True, SP, True, 900, latest=False)[0] == R.R_NOT_LATEST
    st.resumes = 3
    assert R.decide(st, m, True, now, True, SP, True, 900)[0] == R.R_MAX_RESUMES
    st.resumes = 0
    st.fault = C.F_TC_OPEN
    assert R.decide(st, m, True, now, True, SP, True, 900)[0] == R.R_ENDED
    st.fault = 0
    st.invalid = C.F_SOAK_MAX_TIME
    assert R.decide(st, m, True, now, True, SP, True, 900)[0] == R.R_ENDED
    st.invalid = 0
    # without rtc_start_s in the header the outage is unknown
    d2, _, _, _ = _write_log(rtc=None)
    st2 = _scan(d2)
    assert R.decide(st2, R.method_of(st2), True, now, True, SP, True, 900)[0] == R.R_NO_CLOCK
    # the last synced sample out of spec
    d3, _, _, _ = _write_log(n_soak=101, last_in_spec=False)
    st3 = _scan(d3)
    assert R.decide(st3, R.method_of(st3), True, now, True, SP, True, 900)[0] == R.R_NOT_SOAK
    # method resume_grace_s 0: never
    m0 = dict(m)
    m0["resume_grace_s"] = 0
    assert R.decide(st, m0, True, 1000 + st.last_t + 1, True, SP, True, 900)[0] == R.R_OUTAGE


def test_not_in_soak():
    data, log, n, t = _write_log(n_soak=0)
    st = _scan(data)
    assert st.last_phase == 4
    m = R.method_of(st)
    assert R.decide(st, m, True, 99999, True, SP, True, 900)[0] == R.R_NOT_SOAK
    assert R.candidate(st, m) == R.R_NOT_SOAK


def test_a_sealed_log_with_a_long_last_seal_is_closed():
    # 30 events in each of the last syncs: the last SEAL holds ~160 tags (> 1 kB)
    f = Sink()
    log = RunLog(1, key=bytes(range(32)))
    log.open("x", {"run_id": "t"}, opener=lambda p, m: f)
    raw = array("i", [500000])
    t = 0
    for _ in range(5):                  # fewer than 6 syncs: no SEAL before the last one
        for _k in range(10):
            t += 1
            log.sample(t, 7, 1, 12000, 2400, 900, 480, raw)
        for k in range(30):
            log.event(t * 1000, C.E_LC_GLITCH, 0, k)
        log.poll(t + 100)
        log.seal()
    log.verdict({"verdict": "INVALID"})
    log.close()
    data = bytes(f.data)
    last = data.rfind(b"\xa5\x5a\x07")
    assert len(data) - last > 1024
    assert R.has_end(io.BytesIO(data), len(data)) == 2
    assert R.has_end(io.BytesIO(data[:last]), last) == 1        # cut before the last SEAL
    st = R.scan(io.BytesIO(data), len(data), bytes(range(32)))
    assert st.end_seen and st.seal_bad == -1 and len(st.tags) == 8


def test_a_half_done_closing_is_never_resumed():
    # a second cut stopped the closing after its INTERRUPTED event: the run has ended
    data, log, n, t = _write_log()
    assert R.candidate(_scan(data), R.method_of(_scan(data))) == R.RESUME
    log.event(t * 1000, C.E_INTERRUPTED, 500, R.R_OUTAGE)
    log.poll(t + 2000)
    data = bytes(log._f.data)
    st = _scan(data)
    assert st.interrupted == 1
    assert R.candidate(st, R.method_of(st)) == R.R_ENDED


def test_torn_tail_and_damage():
    data, log, n, t = _write_log()
    st0 = _scan(data)
    for cut in (1, 5, 9, 17):
        torn = data + data[st0.valid_end - 200:st0.valid_end - 200 + cut]
        st = _scan(torn)
        assert st.torn == cut and st.valid_end == len(data) and st.damaged == 0
        assert st.n_samples == st0.n_samples
    st = _scan(data + b"\xa5\x5a\x02\xff\xff" + bytes(40))
    assert st.torn == 45 and st.damaged == 0
    # a flipped byte in the middle: damaged (never resumed), later records still read
    bad = bytearray(data)
    bad[st0.valid_end - 400] ^= 0x40
    st = _scan(bytes(bad))
    assert st.damaged == 1 and st.torn == 0 and st.valid_end == len(data)
    assert R.decide(st, R.method_of(st), True, 99999, True, SP, True, 900)[0] == R.R_DAMAGED
    # no header: not a run log
    st = _scan(data[:10])
    assert st.header is None
    st = _scan(b"")
    assert st.header is None


def test_verdict_record_never_measured():
    data, log, n, t = _write_log()
    st = _scan(data)
    m = R.method_of(st)
    v = R.verdict_record(st, m)
    assert v["verdict"] == "INVALID" and v["invalid"] == C.F_INTERRUPTED and v["fault"] == 0
    assert v["cells"] == [{"verdict": "INVALID", "cell": 0, "leak_visible": None, "early_fail": 0}]
    assert v["soak_in_spec_s"] == st.soak_in and v["soak_total_s"] == st.soak_n and v["method"] == "custom"
    st.fault = C.F_RUNAWAY
    v = R.verdict_record(st, m)
    assert v["verdict"] == "ABORTED" and v["fault"] == C.F_RUNAWAY and v["invalid"] == C.F_INTERRUPTED
    st.fault = 0
    st.invalid = C.F_SOAK_MAX_TIME
    assert R.verdict_record(st, m)["invalid"] == C.F_SOAK_MAX_TIME
    assert R.event_t_ms(st) == st.last_t * 1000


def test_reopen_continues_the_log():
    data, log, n, t = _write_log()
    st = _scan(data)
    f = Sink(data)
    lg = RunLog(1)
    lg.reopen("x", st.next_seq, st.next_block, st.n_samples, st.last_t, st.valid_end, opener=lambda p, m: f)
    assert lg.bytes_written == len(data)
    # a sample not later than the last one on file is refused
    raw = array("i", [590000])
    assert not lg.sample(st.last_t, 7, 1, SP, 2400, 900, 480, raw)
    t2 = st.last_t + 40
    lg.event(t2 * 1000, C.E_RESUMED, 39, 1)
    for k in range(25):
        lg.sample(t2 + k, 7, 1, SP, 2400, 900, 480, raw)
        lg.poll(t2 + k)
    lg.verdict({"verdict": "INVALID"})
    lg.close()
    out = bytes(f.data)
    st2 = _scan(out)
    assert st2.damaged == 0 and st2.torn == 0 and st2.end_seen and st2.resumes == 1
    assert st2.n_samples == st.n_samples + 25 and st2.last_t == t2 + 24
    # the first block after the reopen is a keyframe (its block number is not a multiple of 6
    # here), and its record follows the last one on file without a sequence gap
    assert st.next_block % 6 != 0
    assert out[len(data)] == 0xA5 and out[:len(data)] == data
    assert R.has_end(io.BytesIO(out), len(out))


class _ResumePlan:
    def __init__(self, header, bench):
        from sim.board import SimBoard
        self.board = SimBoard(bench, rtc=True)
        self.method = methods.validate(header["method"])
        self.n_cells = bench.n_cells

    def new_controller(self, mode, blank_fit, log):
        from oven.run import app
        return app.Controller(self.board, self.method, mode=app.MODE_TEST, blank=blank_fit, log=log,
                              counts_per_g=self.board.counts_per_g)


class _BoardSelect:
    def __init__(self, bench):
        self.bench = bench

    def resume_plan(self, header):
        return _ResumePlan(header, self.bench)


def _tx(b):
    return len(b)


def _runs_dir():
    import os
    if IS_MP:
        d = "/rectest"
    else:
        import tempfile
        d = tempfile.mkdtemp()
    try:
        os.mkdir(d)
    except OSError:
        pass
    return d


def test_power_cut_in_soak_then_resume_to_the_end():
    # main.py's whole path on the simulated bench: a test cut in its soak (the session is dropped
    # between two ticks: the file holds exactly what was synced), the outputs off, a 5 s outage,
    # main.recover() resumes the soak and the run ends with a verdict from a complete log
    import os
    from oven import link
    import main
    from sim.board import SimBoard
    from sim.vdev import SimPlan
    scn = {"seed": 5, "blank_run": False, "ambient_c": 23.0, "ambient_end_c": 23.0, "faults": [],
           "method": {"soak_s": 300, "soak_max_total_s": 900}}
    d = _runs_dir()
    plan = SimPlan(scn)
    plan.board = SimBoard(plan.bench, rtc=True)
    s = main.Session(plan, link.RxRing(16), _tx, runs_dir=d, check_space=False)
    # a minute into SOAK (heat_in "air": the soak time already holds the pump-down's credit)
    while s.ctrl.phase != 7 or s.ctrl._phase_ms() < 60000:
        assert s.advance(1) == 1
    cut_t = s.ctrl.t_s()
    plan.board.power_on_state()
    plan.bench.advance(5000)
    path = d + "/sim-0001.log"
    size = os.stat(path)[6]
    f = open(path, "rb")
    before = f.read()
    f.close()
    s2 = main.recover(_BoardSelect(plan.bench), d, lambda: link.RxRing(16), lambda: _tx)
    assert s2 is not None and s2.run_id == "sim-0001"
    while s2.advance(500) >= 0:
        pass
    assert s2.result in ("PASS", "INCONCLUSIVE", "FAIL"), s2.result
    f = open(path, "rb")
    after = f.read()
    f.close()
    assert after[:size] == before
    st = _scan(after)
    assert st.end_seen and st.verdict_seen and st.damaged == 0 and st.torn == 0 and st.resumes == 1
    c = s2.ctrl
    assert c.soak_in_spec_ms >= 300000 and c.t_s() > cut_t
    os.remove(path)


def test_scan_keeps_the_no_pass_reasons():
    # reasons logged before a power cut (E_NO_PASS: a = reason, b = cell or -1) survive the scan, so a
    # resumed run still cannot PASS (app.Controller.resume)
    f = Sink()
    log = RunLog(2)
    log.open("x", {"run_id": "t-0002", "method": _method(), "cells": ["c1", "c2"]}, opener=lambda p, m: f)
    log.event(1000, C.E_NO_PASS, C.NP_CHAMBER_TIMED, -1)
    log.event(2000, C.E_NO_PASS, C.NP_LC_TEMP, 1)
    for t in range(1, 31):
        log.sample(t, 7, C.SF_IN_SPEC, SP, 2400, 900, 480, array("i", [1, 2]))
        log.poll(t)
    log.poll(1030)
    st = _scan(bytes(f.data))
    assert st.no_pass == [(C.NP_CHAMBER_TIMED, -1), (C.NP_LC_TEMP, 1)]


def _write_heat_air_log(n_pre=10, n_pump=0, n_credit=0, n_soak=0):
    """heat_in "air": m0, then PREHEAT (15) samples, PUMPDOWN samples without and with IN_SPEC (the soak
    credit at the vacuum level), then SOAK samples."""
    f = Sink()
    log = RunLog(1)
    log.open("x", {"run_id": "t-0002", "method": _method(), "cells": ["c1"],
                   "calibration": {"counts_per_g": 20972, "blank": None}, "rtc_start_s": 1000},
             opener=lambda p, m: f)
    raw = array("i", [500000])
    t = 0
    log.event(0, C.E_PHASE, 1, 0)
    for _ in range(5):
        t += 1
        log.sample(t, 2, 0, 2300, 2300, 101000, 0, raw)
    log.weigh(0, runlog.W_TARE, t * 1000, 2300, [100000, 100010, 99990, 100004])
    log.weigh(0, runlog.W_M0, t * 1000, 2310, [600000, 600012, 599994])
    log.event(t * 1000, C.E_PHASE, 15, 4)
    for _ in range(n_pre):
        t += 1
        log.sample(t, 15, C.SF_HEATER, SP - 300, 2400, 101000, 480, raw)
        log.poll(t)
    if n_pump or n_credit:
        log.event(t * 1000, C.E_PREHEAT_DONE, SP, SP)
        log.event(t * 1000, C.E_PHASE, 5, 15)
    for k in range(n_pump + n_credit):
        t += 1
        log.sample(t, 5, C.SF_PUMP | (C.SF_IN_SPEC if k >= n_pump else 0), SP, 2400,
                   20000 if k < n_pump else 4000, 480, raw)
        log.poll(t)
    if n_soak:
        log.event(t * 1000, C.E_PHASE, 7, 5)
    for _ in range(n_soak):
        t += 1
        log.sample(t, 7, C.SF_IN_SPEC, SP, 2400, 900, 480, raw)
        log.poll(t)
    log.poll(t + 1000)
    return bytes(f.data)


def test_a_cut_in_preheat_is_not_soak_and_closes_interrupted():
    st = _scan(_write_heat_air_log(n_pre=50))
    assert st.last_phase == 15 and st.phases[-1][0] == "PREHEAT"
    m = R.method_of(st)
    assert R.decide(st, m, True, 1000 + st.last_t + 5, True, SP, True, 900)[0] == R.R_NOT_SOAK
    v = R.verdict_record(st, m)
    assert v["verdict"] == "INVALID" and v["invalid"] == C.F_INTERRUPTED
    assert v["soak_in_spec_s"] == 0 and v["soak_total_s"] == 0


def test_the_soak_credit_counts_in_the_recovered_soak_time():
    # 30 pump-down seconds above the vacuum level (not soak), 40 at it (IN_SPEC: soak), 25 SOAK seconds
    st = _scan(_write_heat_air_log(n_pre=20, n_pump=30, n_credit=40, n_soak=25))
    assert st.last_phase == 7
    assert st.soak_in == 65 and st.soak_n == 65
    v = R.verdict_record(st, R.method_of(st))
    assert v["soak_in_spec_s"] == 65 and v["soak_total_s"] == 65
