"""Host reader (host_tools/ovenctl/logfile.py) against the firmware writer (firmware/oven/store/runlog.py) run in
CPython: full round trip, torn tails, damage in the middle, size of a 9.5 h run, fuzzing."""
import io
import math
import os
import random
import sys
import zlib
from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _p in ("firmware", "tests/shim", "host_tools"):
    _full = os.path.join(ROOT, _p)
    if _full not in sys.path:
        sys.path.insert(0, _full)

from oven.store import runlog  # noqa: E402
from ovenctl.logfile import LogError, read_log  # noqa: E402

MISSING = runlog.MISSING
FIELDS = ("t_s", "phase", "flags", "temp_c_x100", "lc_temp_c_x100", "pressure_pa", "duty_permille")


class MemFile(io.BytesIO):
    """BytesIO that survives close() so that the test can read what was written."""

    def __init__(self):
        super().__init__()
        self.flushes = 0

    def flush(self):
        self.flushes += 1

    def close(self):
        pass


def _opener(f):
    return lambda path, mode: f


def write_log(n_samples=300, n_cells=2, seed=0, close=True, sync_every_s=10, keyframe_every=6):
    """Write a log with the firmware writer; return (bytes, expected dict)."""
    rnd = random.Random(seed)
    f = MemFile()
    log = runlog.RunLog(n_cells, sync_every_s=sync_every_s, keyframe_every=keyframe_every)
    header = {"run_id": "R-%d" % seed, "firmware": "0.1.0", "board": "sim", "method": "GB/T 0.5 %",
              "calibration": {"span_ug_per_count": [12.5] * n_cells}, "cells": ["cell-%d" % i for i in range(n_cells)]}
    log.open("run.log", header, opener=_opener(f))
    raw = array("i", [0] * n_cells)
    exp = {"header": header, "samples": [], "events": [], "weighings": [], "verdict": None}
    t = 0
    base = [rnd.randint(-8000000, 8000000) for _ in range(n_cells)]
    for i in range(n_samples):
        t += 1 if rnd.random() > 0.03 else rnd.randint(2, 400)
        phase = min(255, i // 50)
        flags = 0 if rnd.random() < 0.9 else rnd.randint(0, 0xFFFF)
        temp = 2500 + i * 3 + 25 * rnd.randint(-1, 1)
        lct = 2400 + rnd.randint(-5, 5)
        pres = max(0, 101325 - i * 500) + rnd.randint(-20, 20)
        duty = rnd.randint(0, 1000) if rnd.random() < 0.5 else 1000
        cells = []
        for c in range(n_cells):
            if rnd.random() < 0.05:
                raw[c] = MISSING
                cells.append(None)
            else:
                v = max(-8388608, min(8388607, base[c] + int(rnd.gauss(0, 30))))
                raw[c] = v
                cells.append(v)
        assert log.sample(t, phase, flags, temp, lct, pres, duty, raw)
        exp["samples"].append(dict(zip(FIELDS, (t, phase, flags, temp, lct, pres, duty)), raw=cells))
        if rnd.random() < 0.05:
            ev = {"t_ms": t * 1000 + rnd.randint(0, 999), "code": rnd.randint(0, 0xFFFF),
                  "a": rnd.randint(-(1 << 29), 1 << 29), "b": rnd.randint(-5, 5)}
            assert log.event(ev["t_ms"], ev["code"], ev["a"], ev["b"])
            exp["events"].append(ev)
        if i == n_samples // 2:
            vals = [base[0] + rnd.randint(-50, 50) for _ in range(40)]
            log.weigh(0, runlog.W_M0, t * 1000, 2455, array("i", vals), rejected=3)
            exp["weighings"].append({"cell": 0, "kind": runlog.W_M0, "kind_name": "m0", "t_ms": t * 1000,
                                     "lc_temp_c_x100": 2455, "rejected": 3, "n": 40, "samples": vals})
        log.poll(t)
    if close:
        v = {"result": "PASS", "loss_ppm": 1234, "u_ppm": 210, "method": "GB", "cells": [{"id": "cell-0"}]}
        log.verdict(v)
        exp["verdict"] = v
        log.close()
    exp["n_written"] = len(exp["samples"])
    return f.getvalue(), exp


def check_equal(got, exp, samples=True):
    hdr = dict(got.header)
    assert hdr.pop("log")["n_cells"] == len(exp["samples"][0]["raw"])
    assert hdr == exp["header"]
    if samples:
        assert got.samples == exp["samples"]
    assert [{k: e[k] for k in ("t_ms", "code", "a", "b")} for e in got.events] == exp["events"]
    assert [{k: w[k] for k in exp["weighings"][0]} for w in got.weighings] == exp["weighings"]
    assert got.verdict == exp["verdict"]


def test_round_trip_every_field(tmp_path):
    data, exp = write_log(n_samples=500, n_cells=3, seed=1)
    log = read_log(data)
    assert log.problems == []
    assert log.complete and log.end == {"n_samples": 500, "dropped_samples": 0, "dropped_events": 0}
    check_equal(log, exp)
    # records tile the file exactly, seq 0, 1, 2, ...
    pos = 0
    for k, r in enumerate(log.records):
        assert r.seq == k and r.offset == pos
        pos += r.length
    assert pos == len(data)
    assert log.records[0].name == "HEADER" and log.records[-1].name == "END"
    assert {r.name for r in log.records} == {"HEADER", "BLOCK", "EVENT", "WEIGH", "VERDICT", "END"}
    # same through a real file written with the builtin open() (CPython write(memoryview) path)
    p = tmp_path / "run.log"
    rl = runlog.RunLog(3)
    rl.open(str(p), exp["header"], opener=open)
    raw = array("i", [1, 2, MISSING])
    for t in range(25):
        rl.sample(t, 1, 0, 100, 200, 300, 400, raw)
        rl.poll(t)
    rl.close()
    log2 = read_log(str(p))
    assert log2.complete and len(log2.samples) == 25 and log2.samples[-1]["raw"] == [1, 2, None]
    assert read_log(p).samples == log2.samples


def test_unreadable_inputs_raise_logerror(tmp_path):
    data, _ = write_log(n_samples=20)
    hdr_len = read_log(data).records[0].length
    with pytest.raises(LogError, match="empty"):
        read_log(b"")
    with pytest.raises(LogError, match="not a run log"):
        read_log(b"hello world, this is not a log")
    with pytest.raises(LogError, match="not a run log"):
        read_log(data[hdr_len:])                       # starts with a BLOCK, not a HEADER
    for cut in range(1, hdr_len):
        with pytest.raises(LogError, match="truncated inside the header|not a run log"):
            read_log(data[:cut])
    with pytest.raises(LogError, match="truncated inside the header"):
        read_log(data[:hdr_len - 1])
    bad = bytearray(data)
    bad[20] ^= 0x01
    with pytest.raises(LogError, match="CRC"):
        read_log(bytes(bad))
    with pytest.raises(LogError):
        read_log(tmp_path / "does-not-exist.log")
    assert read_log(data[:hdr_len]).samples == []      # header only: readable, incomplete
    assert not read_log(data[:hdr_len]).complete


@pytest.mark.parametrize("close", [True, False])
def test_torn_tail_every_byte_of_last_record(close):
    data, exp = write_log(n_samples=200, n_cells=2, seed=2, close=close)
    full = read_log(data)
    last = full.records[-1]
    assert last.name == ("END" if close else "BLOCK")
    start = last.offset
    clean = read_log(data[:start])
    assert clean.problems == [] and not clean.complete
    for cut in range(start + 1, len(data)):
        log = read_log(data[:cut])
        assert log.records == full.records[:-1]
        assert len(log.problems) == 1, log.problems
        assert log.problems[0].startswith("torn tail: %d bytes at offset %d" % (cut - start, start))
        assert not log.complete
        assert log.samples == clean.samples
        assert log.events == clean.events and log.weighings == clean.weighings
        assert log.verdict == clean.verdict
    if not close:
        # the torn BLOCK held the last samples: everything before it is intact
        assert clean.samples == exp["samples"][:len(clean.samples)]
        assert len(clean.samples) < len(full.samples) <= len(exp["samples"])


def _block_info(data):
    """(record, block_no, keyframe, n_samples, first sample index) of every BLOCK."""
    out = []
    idx = 0
    for r in read_log(data).records:
        if r.name != "BLOCK":
            continue
        body = data[r.offset + 5:r.offset + r.length - 4]
        i = 0
        while body[i] & 0x80:
            i += 1
        i += 1                      # seq
        kf = body[i] & 1
        i += 1
        bno = 0
        s = 0
        while True:
            bno |= (body[i] & 0x7F) << s
            s += 7
            i += 1
            if not body[i - 1] & 0x80:
                break
        if kf:
            i += 1
            while body[i] & 0x80:
                i += 1
            i += 1
        cnt = 0
        s = 0
        while True:
            cnt |= (body[i] & 0x7F) << s
            s += 7
            i += 1
            if not body[i - 1] & 0x80:
                break
        out.append((r, bno, kf, cnt, idx))
        idx += cnt
    return out


@pytest.mark.parametrize("which", ["keyframe", "non-keyframe"])
def test_flipped_byte_in_middle_block(which):
    data, exp = write_log(n_samples=400, n_cells=2, seed=3)
    blocks = _block_info(data)
    cands = [b for b in blocks[8:-8] if b[2] == (which == "keyframe")]
    r, bno, kf, cnt, first = cands[0]
    # samples lost: this block and the following non-keyframe blocks up to the next keyframe
    lost = set()
    for b in blocks:
        if b[1] >= bno and (b[1] == bno or not b[2]) and all(not x[2] for x in blocks if bno < x[1] <= b[1]):
            lost.update(range(b[4], b[4] + b[3]))
    expected = [s for k, s in enumerate(exp["samples"]) if k not in lost]
    assert 0 < len(lost) <= 6 * 10 + 5
    for pos in range(r.offset, r.offset + r.length):
        bad = bytearray(data)
        bad[pos] ^= 0x5A if pos % 2 else 0x01
        log = read_log(bytes(bad))
        assert log.samples == expected, pos
        assert any(("offset %d" % r.offset) in p for p in log.problems), (pos, log.problems)
        assert any(p.startswith("damaged data at offset %d" % r.offset) for p in log.problems)
        assert log.events == read_log(data).events
        assert log.complete and log.verdict == exp["verdict"]
        assert [x for x in log.records if x.offset != r.offset] == [x for x in read_log(data).records
                                                                     if x.offset != r.offset]


def test_flipped_byte_in_event_loses_only_that_event():
    data, exp = write_log(n_samples=400, n_cells=1, seed=4)
    full = read_log(data)
    evr = [r for r in full.records if r.name == "EVENT"]
    r = evr[len(evr) // 2]
    bad = bytearray(data)
    bad[r.offset + r.length - 6] ^= 0xFF
    log = read_log(bytes(bad))
    assert log.samples == exp["samples"]
    assert len(log.events) == len(full.events) - 1
    assert [e for e in full.events if e["offset"] != r.offset] == log.events
    assert any(p.startswith("damaged data at offset %d" % r.offset) for p in log.problems)
    assert any("sequence gap" in p for p in log.problems)


def test_garbage_inserted_in_middle_is_skipped():
    data, exp = write_log(n_samples=300, n_cells=1, seed=5)
    full = read_log(data)
    r = full.records[len(full.records) // 2]
    junk = bytes(random.Random(9).randrange(256) for _ in range(77)) + b"\xa5\x5a\x02\xff\xff"
    log = read_log(data[:r.offset] + junk + data[r.offset:])
    assert log.samples == exp["samples"]
    assert [(e["seq"], e["t_ms"], e["code"]) for e in log.events] == [(e["seq"], e["t_ms"], e["code"]) for e in full.events]
    assert len(log.problems) == 1 and log.problems[0].startswith("damaged data at offset %d" % r.offset)
    assert "%d bytes skipped, resynchronised at offset %d" % (len(junk), r.offset + len(junk)) in log.problems[0]


def test_unknown_record_type_is_reported_and_skipped():
    data, exp = write_log(n_samples=50, n_cells=1, seed=6, close=False)
    seq = read_log(data).records[-1].seq + 1
    body = bytes([seq]) + b"future payload"
    fr = bytes([0x42, len(body) & 0xFF, len(body) >> 8]) + body
    fr = b"\xa5\x5a" + fr + (zlib.crc32(fr) & 0xFFFFFFFF).to_bytes(4, "little")
    log = read_log(data + fr)
    assert log.samples == read_log(data).samples
    assert log.records[-1].type == 0x42
    assert log.problems == ["unknown record type 0x42 at offset %d (%d bytes) skipped" % (len(data), len(fr))]


# ---- size of a full default run ----
def simulate_run(n_cells=1, seed=1, total_s=34200):
    """9.5 h at 1 Hz: weigh m0, pump-down, heat-up, 6 h soak, cool-down, vent. Realistic sensor noise:
    oven temperature noise 0.1 degC quantized to 0.25 degC (MAX31855), load-cell 30 counts rms, pressure
    20 Pa, load-cell temperature 0.05 degC; PID duty reacting to the noisy temperature."""
    rnd = random.Random(seed)
    f = MemFile()
    log = runlog.RunLog(n_cells)
    log.open("run.log", {"run_id": "SIZE", "firmware": "0.1.0", "board": "sim", "method": "GB",
                         "cells": ["c%d" % i for i in range(n_cells)]}, opener=_opener(f))
    raw = array("i", [0] * n_cells)
    p = 101325.0
    phase_prev = -1
    for t in range(total_s):
        m = t / 60
        phase = 1 if m < 10 else 2 if m < 20 else 3 if m < 110 else 4 if m < 470 else 5
        if phase != phase_prev:
            log.event(t * 1000, 100 + phase, phase_prev, phase)
            phase_prev = phase
        if phase == 1:
            temp, p = 25.0, 101325.0
        elif phase == 2:
            temp, p = 25.0, 101325 * math.exp(-(t - 600) / 60.0) + 800
        elif phase == 3:
            temp, p = 25 + 95 * (1 - math.exp(-(t - 1200) / 1500.0)), 800 + 2 * (t % 500)
        elif phase == 4:
            temp, p = 120 + 0.3 * math.sin(t / 300.0), 800 + 2 * (t % 500)
        else:
            temp = 30 + 90 * math.exp(-(t - 28200) / 1500.0)
            p = 800 + 2 * (t % 500) if m < 560 else 101325.0
        meas = round((temp + rnd.gauss(0, 0.1)) / 0.25) * 0.25
        if phase == 3:
            duty = 1000 if meas < 115 else 400
        elif phase == 4:
            duty = max(0, min(1000, int(round(350 + 60 * (120 - meas)))))
        else:
            duty = 0
        lct = 25 + 35 * (1 - math.exp(-t / 8000.0))
        for c in range(n_cells):
            raw[c] = int(500000 + 20000 * c - t * 0.2 + 40 * (lct - 25) + rnd.gauss(0, 30))
        log.sample(t, phase, 0, int(round(meas * 100)), int(round((lct + rnd.gauss(0, 0.05)) * 100)),
                   int(round(p + rnd.gauss(0, 20))), duty, raw)
        log.poll(t)
    log.verdict({"result": "PASS", "loss_ppm": 1200})
    log.close()
    return f.getvalue()


def test_size_of_full_default_run():
    data = simulate_run(n_cells=1)
    hours = 34200 / 3600
    per_h = len(data) / hours
    print("\nrun log, 9.5 h, 1 cell: %d bytes (%.0f bytes per hour per cell); bytes_needed %d"
          % (len(data), per_h, runlog.bytes_needed(34200, 1)))
    assert len(data) <= 300_000
    assert len(data) <= runlog.bytes_needed(34200, 1)
    log = read_log(data)
    assert log.problems == [] and log.complete and len(log.samples) == 34200
    data2 = simulate_run(n_cells=2)
    print("run log, 9.5 h, 2 cells: %d bytes (+%.0f bytes per hour for the 2nd cell)"
          % (len(data2), (len(data2) - len(data)) / hours))
    assert len(data2) <= runlog.bytes_needed(34200, 2)


# ---- fuzzing: the reader raises LogError or returns, nothing else ----
_BASE, _ = write_log(n_samples=150, n_cells=2, seed=7)
_BASE_OPEN, _ = write_log(n_samples=90, n_cells=1, seed=8, close=False, keyframe_every=2)
_HDR_LEN = read_log(_BASE).records[0].length


def _read_ok_or_logerror(data):
    try:
        log = read_log(data)
    except LogError:
        return None
    assert isinstance(log.problems, list) and all(isinstance(p, str) for p in log.problems)
    assert isinstance(log.samples, list)
    return log


def _frame(typ, body):
    fr = bytes([typ, len(body) & 0xFF, len(body) >> 8]) + body
    return b"\xa5\x5a" + fr + (zlib.crc32(fr) & 0xFFFFFFFF).to_bytes(4, "little")


_FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))


@_FUZZ
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data):
    _read_ok_or_logerror(data)
    _read_ok_or_logerror(_BASE[:_HDR_LEN] + data)      # valid header, then garbage


@_FUZZ
@given(st.sampled_from([_BASE, _BASE_OPEN]), st.integers(0, 10**6),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), max_size=8),
       st.lists(st.tuples(st.integers(0, 10**6), st.binary(min_size=1, max_size=12)), max_size=3))
def test_fuzz_truncated_and_bitflipped_logs(base, cut, flips, inserts):
    b = bytearray(base)
    for pos, data in inserts:
        pos %= len(b) + 1
        b[pos:pos] = data
    for pos, bit in flips:
        b[pos % len(b)] ^= 1 << bit
    b = bytes(b[:cut % (len(b) + 1)])
    log = _read_ok_or_logerror(b)
    if log is not None and not flips and not inserts:
        assert log.problems == [] or log.problems[0].startswith("torn tail")


@pytest.mark.slow
@_FUZZ
@given(st.lists(st.tuples(st.integers(0, 9), st.binary(max_size=40), st.booleans()), max_size=6))
def test_fuzz_valid_frames_with_random_payloads(recs):
    # frames with correct CRCs around random bodies reach every payload decoder
    out = bytearray(_BASE[:_HDR_LEN])
    for k, (typ, payload, good_seq) in enumerate(recs):
        seq = bytes([k + 1]) if good_seq else b"\xff\x01"
        out += _frame(typ, seq + payload)
    _read_ok_or_logerror(bytes(out))
    hdr_payloads = [b"[]", b"{}", b"{\"log\": 3}", b"{\"log\": {\"n_cells\": 300}}", b"\xff\xfe", b"[" * 5000,
                    b"{\"log\": {\"n_cells\": true, \"format\": 9}}", b"1e999999", b"9" * 5000]
    for hp in hdr_payloads:
        _read_ok_or_logerror(_frame(1, b"\x00" + hp) + bytes(out[_HDR_LEN:]))


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 4), st.integers(1, 20), st.integers(1, 8),
       st.lists(st.tuples(st.integers(1, 3), st.integers(0, 255), st.integers(0, 0xFFFF),
                          st.integers(-30000, 150000), st.integers(-5000, 10000), st.integers(0, 200000),
                          st.integers(0, 1000), st.lists(st.one_of(st.none(), st.integers(-8388608, 8388607)),
                                                         min_size=4, max_size=4)),
                max_size=120))
def test_property_round_trip(n_cells, sync_every_s, keyframe_every, rows):
    f = MemFile()
    log = runlog.RunLog(n_cells, sync_every_s=sync_every_s, keyframe_every=keyframe_every)
    log.open("x", {"run_id": "p"}, opener=_opener(f))
    raw = array("i", [0] * n_cells)
    t = 0
    exp = []
    for dt, phase, flags, temp, lct, pres, duty, cells in rows:
        t += dt
        for c in range(n_cells):
            raw[c] = MISSING if cells[c] is None else cells[c]
        assert log.sample(t, phase, flags, temp, lct, pres, duty, raw)
        exp.append(dict(zip(FIELDS, (t, phase, flags, temp, lct, pres, duty)), raw=cells[:n_cells]))
        log.poll(t)
    log.close()
    got = read_log(f.getvalue())
    assert got.problems == [] and got.complete
    assert got.samples == exp
