"""`ovenctl verify` on real run logs from the simulated bench (firmware under CPython):
agreement on untouched logs, exit 1 for every flipped byte / removed record / changed verdict,
exit 2 for unreadable input, and the exact arithmetic against tests/host/reference.py.

The three logs are simulated once per session, in parallel (sim_logs(); test_export_report.py uses
the same cache)."""
import json
import os
import sys
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import reference  # noqa: E402
from ovenctl import cli, verify  # noqa: E402
from ovenctl import sweep  # noqa: E402
from ovenctl.logfile import LogError, read_log  # noqa: E402
from ovenctl.scenario import normalize  # noqa: E402

pytestmark = [pytest.mark.e2e]

SCENARIOS = {
    "pass": {"seed": 1},
    "fail_leak": {"seed": 3, "cells": [{"mass_g": 30, "volatile_g": 0.5},
                                       {"mass_g": 60, "volatile_g": 0.05, "leak_visible": True}]},
    # a thermocouple opens 2 min into the soak: ABORTED. Short (a 2 kW heater, no blank/drift run, no
    # reference probe: the soak is timed on the chamber) so that the simulation and the dense tamper
    # test are fast; covers the no-drift-correction and chamber-timed paths too
    "aborted": {"seed": 5, "blank_run": False, "probe": False, "oven": {"heater_w": 2000},
                "faults": [{"phase": "SOAK", "at_s": 120, "kind": "thermocouple_open", "duration_s": 30}]},
}
_lock = threading.Lock()
_cache = {}


def sim_logs():
    """{name: (sim result dict, log bytes)}; simulated once per process with the firmware under
    CPython (the same code; test_sim_vm.py verifies a log made inside the MicroPython VM)."""
    with _lock:
        if not _cache:
            for k, v in SCENARIOS.items():
                # the sim bench weighs the lab's check-weight history before the run (scenario
                # calibration.check_history): the repeatability the budget needs
                _cache[k] = sweep.run(v, want_log=True)
    return _cache


@pytest.fixture(scope="session")
def logs(tmp_path_factory):
    d = tmp_path_factory.mktemp("verify_logs")
    out = {}
    for k, (res, data) in sim_logs().items():
        p = d / (k + ".log")
        p.write_bytes(data)
        out[k] = {"res": res, "data": data, "path": str(p)}
    return out


# ---------------------------------------------------------------- frame helpers (tampering)
def _uv(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _frame(typ, body):
    x = bytes([typ]) + len(body).to_bytes(2, "little") + body
    return b"\xa5\x5a" + x + (zlib.crc32(x) & 0xFFFFFFFF).to_bytes(4, "little")


def frames(data):
    """[(record, payload after seq)] of every record, from the reader's record list."""
    out = []
    for r in read_log(data).records:
        body = data[r.offset + 5:r.offset + r.length - 4]
        i = 0
        while body[i] & 0x80:
            i += 1
        out.append((r, body[i + 1:]))
    return out


def rebuild(fr, renumber=True):
    """Frames back to bytes with valid CRCs; renumber=True makes seq consecutive again."""
    return b"".join(_frame(r.type, _uv(k if renumber else r.seq) + payload) for k, (r, payload) in enumerate(fr))


def exit_code(data):
    try:
        return verify.verify_log(read_log(data))["exit_code"]
    except LogError:
        return 2


def run_cli(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------- untouched logs
def test_untouched_logs_are_consistent(logs, capsys):
    for name, lg in logs.items():
        res = verify.verify_log(read_log(lg["data"]), lg["path"])
        assert res["exit_code"] == 0, (name, res["findings"])
        assert res["status"] == "consistent" and res["findings"] == []
        assert res["overall"]["recomputed"] == lg["res"]["verdict"] == res["overall"]["device"]
        if name == "aborted":
            rc, out, err = run_cli(["verify", lg["path"]], capsys)
            assert rc == 0 and "RESULT: CONSISTENT" in out and err == ""
            rc, out, err = run_cli(["verify", "--json", lg["path"]], capsys)
            assert rc == 0 and json.loads(out)["status"] == "consistent"


def test_recomputed_values(logs):
    p = verify.verify_path(logs["pass"]["path"])
    c = p["cells"][0]
    assert c["fields"]["verdict"]["recomputed"] == "PASS"
    sim = logs["pass"]["res"]["cells"][0]
    for k in ("loss_ppm", "u_ppm", "loss_pct_x100", "flags"):
        assert c["fields"][k]["recomputed"] == sim[k]
    assert abs(c["exact"]["loss_ppm"] - sim["true_loss_ppm"]) < 200      # the bench's true loss
    assert p["soak"]["in_spec_s_samples"] == 21600 == p["soak"]["required_s"]

    f = verify.verify_path(logs["fail_leak"]["path"])
    v = [c["fields"] for c in f["cells"]]
    assert [x["verdict"]["recomputed"] for x in v] == ["FAIL", "FAIL"]
    assert v[0]["loss_ppm"]["recomputed"] > 5000 + v[0]["u_ppm"]["recomputed"]     # FAIL by the loss
    assert v[1]["loss_ppm"]["recomputed"] < 5000 and v[1]["leak_visible"]["recomputed"] == 1   # FAIL by the leak
    assert v[1]["flags"]["recomputed"] & verify.FL_LEAK
    assert f["events"]["leak_answers"] == [0, 1]

    a = verify.verify_path(logs["aborted"]["path"])
    assert a["overall"]["recomputed"] == "ABORTED" and a["events"]["fault_name"] == "TC_OPEN"
    assert a["soak"]["in_spec_s_samples"] - a["device_run"]["soak_in_spec_s"] == 1   # the entry tick (see _compare)


# ---------------------------------------------------------------- arithmetic against the Fraction reference
_samples = st.lists(st.integers(-8388607, 8388607), min_size=2, max_size=12)


def _window(xs):
    n, s = len(xs), sum(xs)
    return n, s, n * sum(x * x for x in xs) - s * s      # (n, total, m2n) as weigh.Window.result()


@settings(max_examples=150, deadline=None)
@given(z=_samples, a=_samples, b=_samples, limit=st.integers(1, 100000), cmp_=st.sampled_from(["le", "lt"]),
       dec=st.sampled_from(["guarded", "simple"]), usys=st.integers(0, 5000), leak=st.integers(0, 1))
def test_evaluate_matches_reference(z, a, b, limit, cmp_, dec, usys, leak):
    zr, ar, br = verify.reading(z), verify.reading(a), verify.reading(b)
    if ar[0] <= zr[0]:
        return
    m = {"limit_ppm": limit, "comparator": cmp_, "decision": dec, "u_sys_ppm": usys}
    got, _ = verify.evaluate(zr, ar, br, m, leak)
    assert got == reference.evaluate(_window(z), _window(a), _window(b), limit, cmp_, dec, usys, leak)


def test_evaluate_boundaries():
    # a reading exactly on the limit: "le" passes under simple acceptance, "lt" fails
    z = (0, 0)
    a = (1000000, 0)
    b = (995000, 0)                            # loss exactly 5000 ppm, no variance
    for cmp_, want in (("le", "PASS"), ("lt", "FAIL")):
        m = {"limit_ppm": 5000, "comparator": cmp_, "decision": "simple", "u_sys_ppm": 0}
        assert verify.evaluate(z, a, b, m, 0)[0]["verdict"] == want
    m = {"limit_ppm": 5000, "comparator": "le", "decision": "guarded", "u_sys_ppm": 1}
    r = verify.evaluate(z, a, b, m, 0)[0]
    assert r["u_ppm"] == 2 and r["verdict"] == "INCONCLUSIVE"
    # half to even: 2500.5 ppm -> 2500 (ppm), 25.005 % x100 rounds to 25
    r = verify.evaluate((0, 0), (2000000, 0), (1994999, 0), m, 0)[0]
    assert r["loss_ppm"] == 2500 and r["loss_pct_x100"] == 25
    # significant gain is never PASS
    r = verify.evaluate((0, 0), (1000000, 0), (1001000, 0), m, 0)[0]
    assert r["flags"] == verify.FL_GAIN | verify.FL_GAIN_SIGNIFICANT and r["verdict"] == "INCONCLUSIVE"
    # no cell on the pan: the device's default INVALID record
    assert verify.evaluate((5, 0), (5, 0), (5, 0), m, 0)[0]["verdict"] == "INVALID"


# ---------------------------------------------------------------- damage: flipped bytes
def _positions(data):
    """Every byte of every record that is not a BLOCK, every byte of the first three and last two
    BLOCKs, and an even stride over the rest: >= 2000 positions covering every record type."""
    recs = read_log(data).records
    blocks = [r for r in recs if r.name == "BLOCK"]
    full = [r for r in recs if r.name != "BLOCK"] + blocks[:3] + blocks[-2:]
    pos = set()
    for r in full:
        pos.update(range(r.offset, r.offset + r.length))
    rest = [p for p in range(len(data)) if p not in pos]
    need = max(0, 2000 - len(pos))
    pos.update(rest[::max(1, len(rest) // max(need, 1))])
    return sorted(pos), recs


@pytest.mark.slow
def test_every_flipped_byte_is_detected(logs):
    data = logs["aborted"]["data"]
    positions, recs = _positions(data)
    assert len(positions) >= 2000
    starts = [r.offset for r in recs]
    header_end = recs[0].length
    covered = set()
    masks = (0xFF, 0x01, 0x80, 0x10)
    bad = []
    for i, p in enumerate(positions):
        b = bytearray(data)
        b[p] ^= masks[i % 4]
        rec = recs[max(k for k in range(len(starts)) if starts[k] <= p)] if p >= header_end else recs[0]
        covered.add(rec.name)
        try:
            res = verify.verify_log(read_log(bytes(b)))
        except LogError:
            if p >= header_end:
                bad.append((p, "LogError outside the header"))
            continue
        if p < header_end:
            bad.append((p, "header flip not unreadable"))
        elif res["exit_code"] != 1:
            bad.append((p, res["exit_code"]))
        elif not any(f["level"] == "damage" and f["offset"] == rec.offset for f in res["findings"]):
            bad.append((p, "damage not located at offset %d" % rec.offset))
    assert not bad, bad[:20]
    assert covered == {"HEADER", "BLOCK", "EVENT", "WEIGH", "VERDICT", "END"}


def test_flips_in_full_runs(logs):
    for name in ("fail_leak",):
        data = logs[name]["data"]
        recs = read_log(data).records
        vr = [r for r in recs if r.name == "VERDICT"][0]
        end = [r for r in recs if r.name == "END"][0]
        w = [r for r in recs if r.name == "WEIGH"][-1]
        blk = [r for r in recs if r.name == "BLOCK"][len(recs) // 3]
        ev = [r for r in recs if r.name == "EVENT"][-3]
        for p in (vr.offset + 3, vr.offset + vr.length // 2, end.offset + 6, w.offset + 12, blk.offset + 9,
                  ev.offset + 5):
            b = bytearray(data)
            b[p] ^= 0x04
            assert exit_code(bytes(b)) == 1, (name, p)
        b = bytearray(data)
        b[30] ^= 0x04
        assert exit_code(bytes(b)) == 2          # inside the HEADER: unreadable


# ---------------------------------------------------------------- removed records, torn tails
def test_removed_records(logs):
    data = logs["aborted"]["data"]
    recs = read_log(data).records
    names = set()
    for k, r in enumerate(recs):
        if r.name == "BLOCK" and k % 50:
            continue
        names.add(r.name)
        cut = data[:r.offset] + data[r.offset + r.length:]
        assert exit_code(cut) == (2 if r.name == "HEADER" else 1), r
    assert names == {"HEADER", "BLOCK", "EVENT", "WEIGH", "VERDICT", "END"}
    # a removal hidden by renumbering the sequence and recomputing every CRC is still caught for every
    # record that is not a BLOCK (and for BLOCKs through the block numbers)
    fr = frames(logs["aborted"]["data"])
    info = {e["offset"] for e in read_log(logs["aborted"]["data"]).events if e["code"] in verify.INFO_EVENTS}
    for k, (r, _) in enumerate(fr):
        if k == 0 or (r.name == "BLOCK" and k % 97) or r.offset in info:
            continue
        assert exit_code(rebuild(fr[:k] + fr[k + 1:])) == 1, r
    fr = frames(logs["fail_leak"]["data"])
    recs = [r for r, _ in fr]
    log = read_log(logs["fail_leak"]["data"])
    picks = [e["offset"] for e in log.events if e["code"] in (verify.E_LEAK, verify.E_EARLY_FAIL, verify.E_SOAK_DONE)]
    assert len(picks) == 4
    for off in picks:
        k = [i for i, r in enumerate(recs) if r.offset == off][0]
        assert exit_code(rebuild(fr[:k] + fr[k + 1:])) == 1, recs[k]
    assert rebuild(fr) == logs["fail_leak"]["data"]


def test_torn_and_truncated(logs, capsys, tmp_path):
    data = logs["aborted"]["data"]
    recs = read_log(data).records
    vr = [r for r in recs if r.name == "VERDICT"][0]
    end = [r for r in recs if r.name == "END"][0]
    cases = {"mid_end": data[:end.offset + 5], "no_end": data[:end.offset], "mid_verdict": data[:vr.offset + 20],
             "junk_after_end": data + b"\xa5\x5a\x05\x10", "zeros_after_end": data + bytes(64)}
    for k, d in cases.items():
        p = tmp_path / (k + ".log")
        p.write_bytes(d)
        rc, out, err = run_cli(["verify", str(p)], capsys)
        assert rc == 1, k
        assert "[damage]" in out and "RESULT: DAMAGED" in out, k
    rc, out, _ = run_cli(["verify", "--json", str(tmp_path / "mid_end.log")], capsys)
    j = json.loads(out)
    assert rc == 1 and j["damaged"] and any("torn tail" in f["message"] and f["offset"] == end.offset
                                            for f in j["findings"])
    for n in (1, 3, 5, recs[0].length - 1):
        assert exit_code(data[:n]) == 2


# ---------------------------------------------------------------- changed VERDICT record
def _with_verdict(data, change):
    fr = frames(data)
    k = [i for i, (r, _) in enumerate(fr) if r.name == "VERDICT"][0]
    v = json.loads(fr[k][1])
    change(v)
    fr[k] = (fr[k][0], json.dumps(v).encode())
    return rebuild(fr)


@pytest.mark.slow
def test_changed_verdict_record(logs, capsys, tmp_path):
    data = logs["fail_leak"]["data"]
    log = read_log(data)
    vr = [r for r in log.records if r.name == "VERDICT"][0]
    orig = log.verdict

    def variants():
        for c in (0, 1):
            for k, v in orig["cells"][c].items():
                if isinstance(v, bool) or k == "cell":
                    continue
                if isinstance(v, int):
                    yield "cells[%d].%s+1" % (c, k), lambda d, c=c, k=k: d["cells"][c].__setitem__(k, d["cells"][c][k] + 1)
                elif isinstance(v, str):
                    alt = {"FAIL": "PASS", "le": "lt", "guarded": "simple"}.get(v, "PASS")
                    yield "cells[%d].%s" % (c, k), lambda d, c=c, k=k, alt=alt: d["cells"][c].__setitem__(k, alt)
            yield "cells[%d] extra" % c, lambda d, c=c: d["cells"][c].__setitem__("note", 1)
            yield "cells[%d] drop loss" % c, lambda d, c=c: d["cells"][c].pop("loss_ppm")
            yield "cells[%d].loss_ppm float" % c, lambda d, c=c: d["cells"][c].__setitem__("loss_ppm", float(d["cells"][c]["loss_ppm"]))
        yield "verdict", lambda d: d.__setitem__("verdict", "PASS")
        yield "verdict INCONCLUSIVE", lambda d: d.__setitem__("verdict", "INCONCLUSIVE")
        yield "fault", lambda d: d.__setitem__("fault", 12)
        yield "invalid", lambda d: d.__setitem__("invalid", 25)
        yield "soak_in_spec_s", lambda d: d.__setitem__("soak_in_spec_s", d["soak_in_spec_s"] - 1)
        yield "soak_total_s", lambda d: d.__setitem__("soak_total_s", d["soak_total_s"] + 1)
        yield "method", lambda d: d.__setitem__("method", "tcsae-434-2025")
        yield "extra", lambda d: d.__setitem__("operator", "x")
        yield "cells dropped", lambda d: d["cells"].pop()
        yield "cells swapped", lambda d: d["cells"].reverse()

    n = 0
    for label, change in variants():
        v = json.loads(json.dumps(orig))
        change(v)
        assert json.dumps(v) != json.dumps(orig), label
        log.verdict = v
        log.verdicts = [v]
        res = verify.verify_log(log)
        assert res["exit_code"] == 1, label
        assert not res["damaged"] and res["inconsistent"], label
        assert any(f["offset"] == vr.offset and f["seq"] == vr.seq for f in res["findings"]), label
        n += 1
    assert n >= 30
    # end to end: the tampered record keeps a valid CRC and sequence number
    p = tmp_path / "tampered.log"
    p.write_bytes(_with_verdict(data, lambda d: d["cells"][0].__setitem__("verdict", "PASS")))
    rc, out, err = run_cli(["verify", str(p)], capsys)
    assert rc == 1 and "RESULT: INCONSISTENT" in out
    assert "seq %d, offset %d, VERDICT" % (vr.seq, vr.offset) in out
    assert "cell 0 verdict: device 'PASS', recomputed 'FAIL'" in out
    # PASS over an aborted run: every rule that forbids it is named
    d = _with_verdict(logs["aborted"]["data"], lambda d: (d.__setitem__("verdict", "PASS"),
                                                          d["cells"][0].__setitem__("verdict", "PASS")))
    msgs = " | ".join(f["message"] for f in verify.verify_log(read_log(d))["findings"])
    for s in ("fault event FAULT_TC_OPEN", "missing weighings", "in-spec soak", "SOAK_DONE"):
        assert s in msgs


def _zz(v):
    return 2 * v if v >= 0 else -2 * v - 1


def weigh_payload(w, samples=None, lc_temp=None):
    """A WEIGH record's payload (docs/LOGFORMAT.md section 5) from a reader weighing dict."""
    samples = w["samples"] if samples is None else samples
    out = bytes([w["cell"]]) + _uv(w["kind"]) + _uv(_zz(w["t_ms"])) + _uv(
        _zz(w["lc_temp_c_x100"] if lc_temp is None else lc_temp)) + _uv(w["rejected"]) + _uv(len(samples))
    prev = 0
    for x in samples:
        out += _uv(_zz(x - prev))
        prev = x
    return out


def test_changed_weighing(logs):
    """A WEIGH record changed with a valid CRC and sequence number: the recomputation or the
    cross-check of its load-cell temperature against the 1 Hz samples disagrees."""
    data = logs["pass"]["data"]
    fr = frames(data)
    m1 = [w for w in read_log(data).weighings if w["kind"] == 3][0]
    k = [i for i, (r, _) in enumerate(fr) if r.offset == m1["offset"]][0]
    assert weigh_payload(m1) == fr[k][1]
    # one m1 sample 2000 counts lower moves the mean by ~31 counts: ~33 ppm of a ~940000-count cell
    fr2 = list(fr)
    fr2[k] = (fr[k][0], weigh_payload(m1, samples=[m1["samples"][0] - 2000] + m1["samples"][1:]))
    res = verify.verify_log(read_log(rebuild(fr2)))
    assert res["exit_code"] == 1 and not res["damaged"]
    assert any("loss_ppm: device" in f["message"] for f in res["findings"]), res["findings"]
    # 0.01 degC more at the m1 weighing changes the drift correction by ~0.2 counts: invisible in the
    # rounded loss, but the weighing temperature no longer matches the samples of that weighing
    fr2[k] = (fr[k][0], weigh_payload(m1, lc_temp=m1["lc_temp_c_x100"] + 1))
    res = verify.verify_log(read_log(rebuild(fr2)))
    assert res["exit_code"] == 1
    assert any("load-cell temperature" in f["message"] and f["offset"] == m1["offset"] for f in res["findings"])


def test_samples_and_rules(logs):
    """Object-level changes of a readable log: flags that contradict the temperature and pressure, and
    the run-level early-fail rule."""
    log = read_log(logs["pass"]["data"])
    soak = [s for s in log.samples if s["phase"] == verify.PH_SOAK]
    soak[5000]["flags"] &= ~verify.SF_IN_SPEC          # the device claims an excursion that did not happen
    msgs = " | ".join(f["message"] for f in verify.verify_log(log)["findings"])
    assert "IN_SPEC flag that their temperature and pressure contradict" in msgs
    assert "without an EXCURSION_START event" in msgs
    # early_fail "stop" (issue 10 item 7): an early FAIL no longer cuts the soak of the other cells;
    # this soak ran to SOAK_DONE, so the PASS stands
    log = read_log(logs["pass"]["data"])
    log.header["method"]["early_fail"] = "stop"
    log.events.append({"t_ms": 5000000, "code": verify.E_EARLY_FAIL, "a": 0, "b": 9000, "seq": None, "offset": None})
    res = verify.verify_log(log)
    assert res["cells"][0]["fields"]["verdict"] == {"device": "PASS", "recomputed": "PASS", "match": True}
    # a soak cut short (no SOAK_DONE): the cell cannot PASS (SOAK_CUT), and the log lacks that reason
    log = read_log(logs["pass"]["data"])
    log.events = [e for e in log.events if e["code"] != verify.E_SOAK_DONE]
    res = verify.verify_log(log)
    assert res["cells"][0]["fields"]["verdict"] == {"device": "PASS", "recomputed": "INCONCLUSIVE", "match": False}
    msgs = " | ".join(f["message"] for f in res["findings"])
    assert "cell 0 cannot PASS (SOAK_CUT" in msgs


def _msgs(log):
    res = verify.verify_log(log)
    return res, " | ".join(f["message"] for f in res["findings"])


def test_weighing_conditions_settle_and_load_cell_band(logs):
    """m0 after the method's settle_s (SETTLE event at START), m1 within lc_temp_band_c_x100 of m0's
    load-cell temperature unless NO_PASS LC_TEMP was logged; older logs without the fields verify."""
    data = logs["pass"]["data"]
    log = read_log(data)
    settle = [e for e in log.events if e["code"] == verify.E_SETTLE]
    m0 = [w for w in log.weighings if w["kind"] == 2][0]
    start = [e for e in log.events if e["code"] == verify.E_PHASE and e["a"] == verify.PH_INITIAL_WEIGH][0]
    assert len(settle) == 1 and settle[0]["a"] == log.header["method"]["settle_s"] == 900
    assert settle[0]["t_ms"] == start["t_ms"] and m0["t_ms"] - start["t_ms"] >= 900000
    wc = verify.verify_log(log)["weigh_conditions"]
    m1 = [w for w in log.weighings if w["kind"] == 3][0]
    assert wc == {"settle_s": 900, "cells": [{"lc_temp_m0_c_x100": m0["lc_temp_c_x100"], "lc_temp_m1_c_x100":
                  m1["lc_temp_c_x100"], "dT_lc_c_x100": m1["lc_temp_c_x100"] - m0["lc_temp_c_x100"]}]}
    # a method asking for more settling than the log shows
    log.header["method"]["settle_s"] = 5000
    res, msgs = _msgs(log)
    assert res["exit_code"] == 1
    assert "SETTLE event: 900 s, the method's settle_s is 5000 s" in msgs
    assert "m0 of cell 0 weighed" in msgs and "before the method's settle_s 5000 s" in msgs
    # m1 weighed outside the band around m0's load-cell temperature
    log = read_log(data)
    m0 = [w for w in log.weighings if w["kind"] == 2][0]
    m1 = [w for w in log.weighings if w["kind"] == 3][0]
    band = log.header["method"]["lc_temp_band_c_x100"]
    assert abs(m1["lc_temp_c_x100"] - m0["lc_temp_c_x100"]) <= band
    m1["lc_temp_c_x100"] = m0["lc_temp_c_x100"] + band + 1
    res, msgs = _msgs(log)
    assert "m1 of cell 0 weighed with the load cell at" in msgs and "no NO_PASS LC_TEMP event" in msgs
    # ... which the device may do only when it logged that the cell cannot PASS
    log.events.append({"t_ms": m1["t_ms"], "code": verify.E_NO_PASS, "a": verify.NP_LC_TEMP, "b": -1,
                       "seq": None, "offset": None})
    res, msgs = _msgs(log)
    assert "no NO_PASS LC_TEMP event" not in msgs
    # a log of firmware 0.4 (no method fields, no SETTLE event, m0 right after START) still verifies
    log = read_log(data)
    for k in ("settle_s", "lc_temp_band_c_x100"):
        del log.header["method"][k]
    log.events = [e for e in log.events if e["code"] != verify.E_SETTLE]
    _, msgs = _msgs(log)
    # (the VERDICT's budget still carries this firmware's settle_s: verify names that difference,
    # but no weighing-condition check fires)
    assert "SETTLE event" not in msgs and "m1 of cell" not in msgs and "before the method's settle_s" not in msgs
    assert "without a SETTLE event" not in msgs


# ---------------------------------------------------------------- unreadable input
def test_unreadable_inputs(tmp_path, capsys):
    cases = {"missing": str(tmp_path / "nope.log"), "directory": str(tmp_path)}
    for k, b in (("empty", b""), ("text", b"hello, this is not a log\n"), ("binary", os.urandom(300)),
                 ("sync_only", b"\xa5\x5a"), ("bad_header", b"\xa5\x5a\x01\x03\x00\x00{}" + bytes(4))):
        p = tmp_path / (k + ".bin")
        p.write_bytes(b)
        cases[k] = str(p)
    for k, p in cases.items():
        rc, out, err = run_cli(["verify", p], capsys)
        assert rc == 2, k
        assert err.count("\n") == 1 and err.startswith("ovenctl verify: error: ") and "Traceback" not in err, (k, err)
        rc, out, err = run_cli(["verify", "--json", p], capsys)
        assert rc == 2 and json.loads(out)["status"] == "unreadable"


# ---------------------------------------------------------------- the uncertainty budget (issue 10)
@pytest.mark.slow
def test_budget_recomputed_and_tampering_found(logs):
    log = read_log(logs["pass"]["data"])
    res = verify.verify_log(log)
    assert res["budget_format"] and res["exit_code"] == 0
    c = res["cells"][0]
    b = c["budget"]
    dev = log.verdict["cells"][0]["budget"]
    assert b == dev and set(b["terms_ug"]) == set(verify.BUDGET_TERMS)
    assert c["fields"]["u_ppm"]["recomputed"] == b["U_ppm"]
    # every term is recomputed: a changed term in the record is named
    for term in verify.BUDGET_TERMS:
        log = read_log(logs["pass"]["data"])
        log.verdict["cells"][0]["budget"]["terms_ug"][term] += 1
        res = verify.verify_log(log)
        assert res["exit_code"] == 1
        assert any("budget terms_ug.%s: device" % term in f["message"] for f in res["findings"]), term
    # an input that the log fixes (the load-cell temperatures of the weighings, the blank's zero return)
    log = read_log(logs["pass"]["data"])
    log.header["calibration"]["blank"][0]["zero_return_counts"] += 7
    res = verify.verify_log(log)
    assert any("budget inputs.zero_return_counts" in f["message"] for f in res["findings"])
    assert any("budget terms_ug.zero_return" in f["message"] for f in res["findings"])


def test_no_pass_without_valid_blank_or_with_a_reason(logs):
    # the header without a blank fit: this PASS had no drift correction
    log = read_log(logs["pass"]["data"])
    log.header["calibration"]["blank"] = None
    res = verify.verify_log(log)
    assert res["exit_code"] == 1
    msgs = " | ".join(f["message"] for f in res["findings"])
    assert "PASS of cell 0 without a valid blank (drift) fit: NO_BLANK" in msgs
    assert res["cells"][0]["fields"]["verdict"]["recomputed"] == "INCONCLUSIVE"
    # a fit used by more runs than the method allows
    log = read_log(logs["pass"]["data"])
    log.header["calibration"]["blank"][0]["runs_used"] = log.header["method"]["blank_max_runs"]
    res = verify.verify_log(log)
    assert "BLANK_OLD" in " | ".join(f["message"] for f in res["findings"])
    # a zero return beyond zero_return_max_permille of the allowed loss (45 g: 22.5 mg = 472 counts)
    log = read_log(logs["pass"]["data"])
    log.header["calibration"]["blank"][0]["zero_return_counts"] = 500
    res = verify.verify_log(log)
    assert "cell 0 cannot PASS (ZERO_RETURN" in " | ".join(f["message"] for f in res["findings"])
    # a NO_PASS event in the log and still a PASS
    log = read_log(logs["pass"]["data"])
    log.events.append({"t_ms": 1000, "code": verify.E_NO_PASS, "a": 6, "b": 0, "seq": None, "offset": None})
    res = verify.verify_log(log)
    msgs = " | ".join(f["message"] for f in res["findings"])
    assert "PASS of cell 0 although the log gives reason(s) it cannot PASS: LC_TEMP" in msgs


def test_old_logs_keep_the_old_formula(logs):
    """A log of the firmware before the budget (no "no_pass"/"budget" in its VERDICT cells): U from the
    windows, the drift variance and the header's u_sys_ppm."""
    log = read_log(logs["pass"]["data"])
    log.header["method"]["u_sys_ppm"] = 30
    dc = log.verdict["cells"][0]
    del dc["budget"], dc["no_pass"]
    rd = {}
    for w in log.weighings:
        d = verify.drift_terms(log.header["calibration"]["blank"][0], 0)
        rd[w["kind"]] = verify.corrected(verify.reading(w["samples"]), d, w["lc_temp_c_x100"])
    fields, _ = verify.evaluate(rd[1], rd[2], rd[3], log.header["method"], 0)
    assert fields["u_ppm"] >= 60          # 2 x u_sys at least
    dc["u_ppm"], dc["u_pct_x100"], dc["verdict"] = fields["u_ppm"], fields["u_pct_x100"], fields["verdict"]
    res = verify.verify_log(log)
    assert not res["budget_format"]
    assert res["cells"][0]["fields"]["u_ppm"] == {"device": fields["u_ppm"], "recomputed": fields["u_ppm"], "match": True}
    assert not [f for f in res["findings"] if "budget" in f["message"] or "no_pass" in f["message"]]
