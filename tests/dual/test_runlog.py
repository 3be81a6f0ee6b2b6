# Run log writer (firmware/oven/store/runlog.py): framing, CRC, varints, round trip through a tiny decoder,
# allocation-freedom of sample()/event()/poll() under heap_lock, sync cadence, flash-space check.
# Runs under CPython and inside the MicroPython VM (docs/CONVENTIONS.md rules).
import sys
import binascii
import json
from array import array
from oven.store import runlog
from oven.store.runlog import RunLog, MISSING

IS_MP = sys.implementation.name == "micropython"


class FakeFile:
    """Preallocated in-memory file: write() and flush() allocate nothing (usable under heap_lock).
    Records the file size at every flush()."""

    def __init__(self, cap=65536):
        self.buf = bytearray(cap)
        self.n = 0
        self.flushes = 0
        self.flush_at = array("i", [0] * 4096)
        self.writes = 0
        self.closed = False

    def write(self, b, off=0, n=-1):
        if n < 0:
            n = len(b) - off
        k = self.n
        buf = self.buf
        for i in range(n):
            buf[k + i] = b[off + i]
        self.n = k + n
        self.writes += 1
        return n

    def flush(self):
        if self.flushes < 4096:
            self.flush_at[self.flushes] = self.n
        self.flushes += 1

    def close(self):
        self.closed = True

    def data(self):
        return bytes(self.buf[0:self.n])


class PlainFile:
    """A file object whose write() takes only the buffer (like CPython's): the writer must fall back."""

    def __init__(self):
        self.chunks = []
        self.flushes = 0

    def write(self, b):
        self.chunks.append(bytes(b))
        return len(b)

    def flush(self):
        self.flushes += 1

    def close(self):
        pass

    def data(self):
        return b"".join(self.chunks)


def _opener(f):
    def op(path, mode):
        assert mode == "wb"
        return f
    return op


# ---- tiny independent decoder (docs/LOGFORMAT.md) ----
def _uv(b, i):
    v = 0
    s = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << s
        if not x & 0x80:
            return v, i
        s += 7


def _sv(b, i):
    z, i = _uv(b, i)
    return (z >> 1) ^ -(z & 1), i


def frames(data):
    """List of (type, seq, payload bytes, offset); asserts framing and CRC of every record."""
    out = []
    i = 0
    while i < len(data):
        assert data[i] == 0xA5 and data[i + 1] == 0x5A, "sync at %d" % i
        typ = data[i + 2]
        n = data[i + 3] | (data[i + 4] << 8)
        end = i + 5 + n
        crc = data[end] | (data[end + 1] << 8) | (data[end + 2] << 16) | (data[end + 3] << 24)
        assert binascii.crc32(data[i + 2:end]) & 0xFFFFFFFF == crc, "crc at %d" % i
        seq, j = _uv(data, i + 5)
        out.append((typ, seq, data[j:end], i))
        i = end + 4
    return out


def decode_samples(recs, n_cells):
    rows = []
    st = None
    last = -1
    for typ, seq, p, off in recs:
        if typ != runlog.T_BLOCK:
            continue
        kf = p[0] & 1
        bno, i = _uv(p, 1)
        if kf:
            assert p[i] == n_cells
            t0, i = _sv(p, i + 1)
            st = [t0 - 1, 0, 0, 0, 0, 0, 0]
            ref = [0] * n_cells
            cur = [None] * n_cells
        else:
            assert bno == last + 1
        last = bno
        cnt, i = _uv(p, i)
        for _k in range(cnt):
            m = p[i]
            i += 1
            if m & 1:
                d, i = _sv(p, i)
                st[0] += d
            else:
                st[0] += 1
            if m & 2:
                st[1] = p[i]
                i += 1
            if m & 4:
                st[2], i = _uv(p, i)
            for bit, k in ((8, 3), (16, 4), (32, 5), (64, 6)):
                if m & bit:
                    d, i = _sv(p, i)
                    st[k] += d
            if m & 128:
                for c in range(n_cells):
                    code, i = _uv(p, i)
                    if code == 0:
                        cur[c] = None
                    else:
                        z = code - 1
                        ref[c] += (z >> 1) ^ -(z & 1)
                        cur[c] = ref[c]
            rows.append((st[0], st[1], st[2], st[3], st[4], st[5], st[6], tuple(cur)))
        assert i == len(p)
    return rows


def test_crc_matches_binascii():
    b = bytearray(300)
    for i in range(296):
        b[i] = (i * 73 + 11) & 0xFF
    for e in (0, 1, 9, 100, 296):
        runlog._crc_into(b, 0, e)
        c = binascii.crc32(b[0:e]) & 0xFFFFFFFF
        got = b[e] | (b[e + 1] << 8) | (b[e + 2] << 16) | (b[e + 3] << 24)
        assert got == c
    t = bytearray(b"123456789\x00\x00\x00\x00")
    runlog._crc_into(t, 0, 9)
    assert bytes(t[9:]) == b"\x26\x39\xf4\xcb"   # 0xCBF43926


def test_varint_bytes():
    b = bytearray(16)
    for v, exp in ((0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02")):
        n = runlog._wuv(b, 0, v)
        assert bytes(b[0:n]) == exp
    for v, z in ((0, 0), (-1, 1), (1, 2), (-2, 3), (63, 126), (-64, 127), (64, 128), (12000, 24000)):
        n = runlog._wsv(b, 0, v)
        got, j = _uv(b, 0)
        assert j == n and got == z
    for v in (1 << 29, -(1 << 29), (1 << 30) - 1, -(1 << 30), 8388607, -8388608):
        n = runlog._wsv(b, 0, v)
        got, j = _sv(b, 0)
        assert j == n and got == v


def test_worked_example_bytes():
    # docs/LOGFORMAT.md section 4 example
    f = FakeFile()
    log = RunLog(1)
    log.open("r.log", {"run_id": "X"}, opener=_opener(f))
    raw = array("i", [500000])
    log.sample(600, 2, 0, 12000, 2500, 1000, 300, raw)
    raw[0] = 500010
    log.sample(601, 2, 0, 12000, 2500, 1000, 300, raw)
    log.close()
    recs = frames(f.data())
    typ, seq, p, off = recs[1]
    assert typ == runlog.T_BLOCK and seq == 1
    exp = (b"\x01\x00\x01" + b"\xb0\x09" + b"\x02"                     # keyframe, block 0, 1 cell, t0 600, count 2
           + b"\xfa\x02\xc0\xbb\x01\x88\x27\xd0\x0f\xd8\x04\xc1\x84\x3d"  # first sample, absolute
           + b"\x80\x15")                                             # second: only the cell, +10
    assert bytes(p) == exp
    assert recs[2][0] == runlog.T_END and recs[2][1] == 2


def _make_inputs(i, n_cells, raw):
    # deterministic sample stream with gaps, missing cells, phase and flag changes
    t = i + (5 if i >= 40 else 0) + (100 if i >= 90 else 0)
    phase = 1 if i < 30 else (3 if i < 100 else 4)
    flags = 0 if i < 50 else (0x8001 if i < 60 else 0x0002)
    temp = 2500 + i * 25 + ((i * 7) % 5) * 25
    lct = 2400 + (i % 3)
    p = 101325 - i * 900 if i < 100 else 1000 + (i % 4)
    duty = 1000 if i < 70 else (i * 13) % 1001
    for c in range(n_cells):
        if (i + c) % 17 == 3 or (i > 110 and i < 114 and c == 0):
            raw[c] = MISSING
        else:
            raw[c] = -8388608 + c * 7 + i * 3 if c == 1 else 8388607 - ((i * 37) % 61) - c
    return t, phase, flags, temp, lct, p, duty


def test_round_trip_tiny_decoder():
    n_cells = 3
    f = FakeFile()
    log = RunLog(n_cells, sync_every_s=10, keyframe_every=3)
    log.open("r.log", {"run_id": "R-1", "cells": ["a", "b", "c"]}, opener=_opener(f))
    raw = array("i", [0] * n_cells)
    exp = []
    evs = []
    for i in range(150):
        t, phase, flags, temp, lct, p, duty = _make_inputs(i, n_cells, raw)
        assert log.sample(t, phase, flags, temp, lct, p, duty, raw)
        exp.append((t, phase, flags, temp, lct, p, duty,
                     tuple(None if raw[c] == MISSING else raw[c] for c in range(n_cells))))
        if i % 11 == 0:
            ev = (t * 1000 + 5, 17 + i % 3, -(i * 1000003), i - 5)
            log.event(ev[0], ev[1], ev[2], ev[3])
            evs.append(ev)
        log.poll(t)
    w = array("i", [123456, 123470, 123401, -5])
    log.weigh(0, runlog.W_M0, 30000, 2510, w, n=3, rejected=2)
    log.verdict({"result": "PASS", "loss_ppm": 1234})
    log.close()
    assert f.closed
    recs = frames(f.data())
    for k in range(len(recs)):
        assert recs[k][1] == k                       # seq 0, 1, 2, ... in file order
    assert recs[0][0] == runlog.T_HEADER
    hdr = json.loads(bytes(recs[0][2]).decode())
    assert hdr["run_id"] == "R-1" and hdr["log"]["n_cells"] == 3 and hdr["log"]["format"] == 2
    assert decode_samples(recs, n_cells) == exp
    got_ev = []
    for typ, seq, p, off in recs:
        if typ == runlog.T_EVENT:
            a, i = _sv(p, 0)
            b, i = _uv(p, i)
            c, i = _sv(p, i)
            d, i = _sv(p, i)
            assert i == len(p)
            got_ev.append((a, b, c, d))
    assert got_ev == evs
    wr = [r for r in recs if r[0] == runlog.T_WEIGH]
    assert len(wr) == 1
    p = wr[0][2]
    assert p[0] == 0
    vals = []
    i = 1
    for _k in range(5):
        v, i = _uv(p, i) if _k in (0, 3, 4) else _sv(p, i)
        vals.append(v)
    assert vals == [runlog.W_M0, 30000, 2510, 2, 3]
    prev = 0
    ws = []
    for _k in range(3):
        d, i = _sv(p, i)
        prev += d
        ws.append(prev)
    assert ws == [123456, 123470, 123401] and i == len(p)
    vr = [r for r in recs if r[0] == runlog.T_VERDICT]
    assert json.loads(bytes(vr[0][2]).decode()) == {"result": "PASS", "loss_ppm": 1234}
    typ, seq, p, off = recs[-1]
    assert typ == runlog.T_END
    assert bytes(p) == bytes([150, 1, 0, 0])   # n_samples 150 (uvarint 96 01), no drops


def test_plain_write_fallback():
    pf = PlainFile()
    ff = FakeFile()
    raw = array("i", [0, 0])
    for f in (pf, ff):
        log = RunLog(2)
        log.open("r.log", {"run_id": "Z"}, opener=_opener(f))
        for i in range(35):
            raw[0] = i * 5
            raw[1] = MISSING if i % 4 == 0 else -i
            log.sample(i, 1, 0, 100, 200, 300, 400, raw)
            log.event(i * 1000, 3, i, -i)
            log.poll(i)
        log.close()
    assert pf.data() == ff.data()
    assert len(decode_samples(frames(pf.data()), 2)) == 35


def test_sample_event_poll_allocate_nothing():
    import micropython
    n = 10000
    f = FakeFile(cap=200000)
    log = RunLog(2, sync_every_s=10, keyframe_every=6)
    log.open("r.log", {"run_id": "heap"}, opener=_opener(f))
    raw = array("i", [100000, -200000])
    log.sample(0, 1, 0, 2500, 2500, 101325, 0, raw)
    log.poll(0)
    err = 0
    micropython.heap_lock()
    try:
        for i in range(1, n + 1):
            raw[0] = 100000 + ((i * 37) % 61) - 30
            raw[1] = MISSING if i % 50 == 7 else -200000 + ((i * 11) % 23)
            if not log.sample(i, 2 + i // 3000, i // 1000, 12000 + ((i * 7) % 5) * 25, 2500 + (i % 3),
                              1000 + ((i * 13) % 41), 300 + (i % 17), raw):
                err += 1
            if i % 97 == 0:
                log.event(i * 1000, 17, i, -i)
            log.poll(i)
    finally:
        micropython.heap_unlock()
    assert err == 0
    assert log.dropped_samples == 0 and log.dropped_events == 0
    log.close()
    recs = frames(f.data())
    rows = decode_samples(recs, 2)
    assert len(rows) == n + 1
    assert rows[-1][0] == n and rows[-1][7] == (100000 + ((n * 37) % 61) - 30, -200000 + ((n * 11) % 23))
    assert len([r for r in recs if r[0] == runlog.T_EVENT]) == n // 97


def test_sync_cadence_and_writes_only_at_sync():
    f = FakeFile()
    log = RunLog(1, sync_every_s=10)
    log.open("r.log", {"run_id": "c"}, opener=_opener(f))
    assert f.flushes == 1                    # header written synced
    hdr_len = f.n
    assert frames(f.data())[0][0] == runlog.T_HEADER
    raw = array("i", [7])
    syncs = []
    for t in range(0, 61):
        raw[0] = 7 + t
        log.sample(t, 1, 0, 0, 0, 0, 0, raw)
        log.event(t * 1000, 5, t, 0)
        before = f.n
        if log.poll(t):
            syncs.append(t)
            assert f.n > before              # a sync writes the block and the events
        else:
            assert f.n == before             # nothing reaches the file between syncs
    assert syncs == [10, 20, 30, 40, 50, 60]
    assert f.flushes == 1 + len(syncs)
    # every flush leaves the file at a record boundary, each sync adds exactly one BLOCK
    recs = frames(f.data())
    ends = [off for typ, seq, p, off in recs] + [f.n]
    for k in range(f.flushes):
        assert f.flush_at[k] in ends
    blocks = [r for r in recs if r[0] == runlog.T_BLOCK]
    assert len(blocks) == len(syncs)
    assert f.flush_at[0] == hdr_len
    rows = decode_samples(recs, 1)
    assert [r[0] for r in rows] == list(range(0, 61))
    n1 = f.n
    for t in range(61, 66):
        log.sample(t, 1, 0, 0, 0, 0, 0, raw)
        assert not log.poll(t)
    assert f.n == n1                         # samples 61..65 pending: a power cut now loses only them
    log.close()
    assert f.flushes == 2 + len(syncs)
    rows = decode_samples(frames(f.data()), 1)
    assert [r[0] for r in rows] == list(range(0, 66))


def test_keyframe_cadence():
    f = FakeFile()
    log = RunLog(1, sync_every_s=10, keyframe_every=6)
    log.open("r.log", {}, opener=_opener(f))
    raw = array("i", [0])
    for t in range(200):
        log.sample(t, 0, 0, 0, 0, 0, 0, raw)
        log.poll(t)
    log.close()
    kfs = [p[0] & 1 for typ, seq, p, off in frames(f.data()) if typ == runlog.T_BLOCK]
    assert kfs[0:13] == [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]


def test_drops_without_poll_and_nonincreasing_time():
    f = FakeFile()
    log = RunLog(1, sync_every_s=10)
    log.open("r.log", {}, opener=_opener(f))
    raw = array("i", [1 << 22])
    assert log.sample(5, 0, 0, 0, 0, 0, 0, raw)
    assert not log.sample(5, 0, 0, 0, 0, 0, 0, raw)      # t_s not increasing
    assert not log.sample(4, 0, 0, 0, 0, 0, 0, raw)
    assert log.dropped_samples == 2
    n0 = f.n
    ok = 0
    for t in range(6, 3000):                              # poll() never called
        raw[0] = -raw[0]
        if log.sample(t, t & 0xFF, t, t * 1000, -t * 1000, t * 3000, t % 1001, raw):
            ok += 1
    assert f.n == n0                                      # nothing written without poll()
    assert 0 < ok < 2994 and log.dropped_samples == 2 + 2994 - ok
    assert log.poll(0) is False                           # first poll sets the sync base
    assert log.poll(100)
    log.close()
    recs = frames(f.data())
    rows = decode_samples(recs, 1)
    assert len(rows) == 1 + ok
    assert recs[-1][0] == runlog.T_END


def test_space_check():
    n1 = runlog.bytes_needed(34200, 1)
    n4 = runlog.bytes_needed(34200, 4)
    assert 300000 < n1 < n4
    assert runlog.bytes_needed(3600, 1) < n1
    # planned: twice the measured rate (221 644 bytes for 9.5 h of 1 cell, LOGFORMAT.md §8),
    # below the worst case
    p1 = runlog.bytes_planned(34200, 1)
    assert 2 * 221644 < p1 < n1 and runlog.bytes_planned(34200, 4) < n4

    def statvfs_free(free_blocks):
        def sv(path):
            assert path == "/data"
            return (4096, 4096, 352, free_blocks, free_blocks, 0, 0, 0, 0, 255)
        return sv

    need_blocks = p1 // 4096 + 1
    assert runlog.free_bytes("/data", statvfs=statvfs_free(7)) == 7 * 4096
    assert runlog.space_ok("/data", 34200, 1, statvfs=statvfs_free(need_blocks))
    assert not runlog.space_ok("/data", 34200, 1, statvfs=statvfs_free(need_blocks - 2))

    def broken(path):
        raise OSError(5)

    assert runlog.free_bytes("/data", statvfs=broken) is None
    assert not runlog.space_ok("/data", 34200, 1, statvfs=broken)


def _whole_header_record(h, seq=0):
    # the header record as open() wrote it before it was streamed: json.dumps of the whole dict
    payload = json.dumps(h).encode()
    pre = bytearray(b"\xa5\x5a\x01\x00\x00")
    v = seq
    while v > 0x7F:
        pre.append((v & 0x7F) | 0x80)
        v >>= 7
    pre.append(v)
    body = len(pre) - 5 + len(payload)
    pre[3] = body & 0xFF
    pre[4] = body >> 8
    rec = pre + payload
    crc = binascii.crc32(bytes(rec[2:])) & 0xFFFFFFFF
    return bytes(rec) + bytes((crc & 0xFF, (crc >> 8) & 0xFF, (crc >> 16) & 0xFF, (crc >> 24) & 0xFF))


def test_streamed_header_is_the_whole_json():
    # open() writes the header in pieces (open_steps: never the whole JSON in RAM); the bytes are
    # those of json.dumps of the whole header, for nested, empty, non-ASCII and int-keyed values
    big = [{"t": i, "what": "calib.span.%d" % i, "old": None, "new": [i, i * 0.5, "x"]} for i in range(60)]
    hdr = {"run_id": "r-0001", "empty_d": {}, "empty_l": [], "nested": {"a": {"b": {"c": [1, {"d": []}]}}},
           "text": "µg ±0.5 °C \"q\" \\ /", "ints": {"1": 2}, "ik": {3: "int key"}, "tup": (1, 2),
           "f": 1.25, "neg": -7, "none": None, "yes": True, "audit": {"entries": big, "omitted": 3}}
    f = FakeFile()
    log = RunLog(2)
    steps = 0
    for _ in log.open_steps("x", hdr, opener=lambda p, m: f, step_bytes=512):
        steps += 1
    h = dict(hdr)
    h["log"] = {"format": runlog.FORMAT_VERSION, "n_cells": 2, "sync_every_s": 10, "keyframe_every": 6}
    want = _whole_header_record(h)
    assert f.data() == want
    assert log.bytes_written == len(want)
    assert steps >= 2 * (len(want) // 512) - 2       # both passes yield about every 512 bytes
    # the next record continues the sequence
    log.event(1000, 101, 1, 2)
    log.close()
    assert f.data()[len(want) + 5] == 1
