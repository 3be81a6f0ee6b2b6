# The run-time serial link protocol (firmware/oven/link.py, docs/PROTOCOL.md) under CPython and in the
# MicroPython VM: framing and CRCs, every command, bounded work per poll, abort confirmation,
# and the allocation-free idle poll (heap_lock proof, also inside a running Controller).
import binascii
import hashlib
import json
import os

from oven import link
from oven.link import RxRing, Link, request_line, parse_response, b64_into


class Ctx:
    def __init__(self, run_id="sim-0001", active=True):
        self.run_id = run_id
        self._active = active
        self.aborted = 0

    def active(self):
        return self._active

    def status(self):
        return {"state": "run", "run": self.run_id, "phase": "SOAK", "live_ppm": [1234, -5]}

    def info(self):
        return {"fw": "test", "board": "fake"}

    def abort(self):
        self.aborted += 1


class Tx:
    def __init__(self):
        self.data = bytearray()

    def __call__(self, b):
        self.data.extend(b)

    def lines(self):
        out = []
        for ln in bytes(self.data).split(b"\n"):
            if ln:
                out.append(ln)
        self.data = bytearray()
        return out


class Clock:
    def __init__(self):
        self.ms = 1000

    def __call__(self):
        return self.ms


def _dir(name):
    pid = os.getpid() if hasattr(os, "getpid") else 0
    d = "/tmp/lp%d_%s" % (pid, name)
    try:
        for f in os.listdir(d):
            os.remove(d + "/" + f)
    except OSError:
        os.mkdir(d)
    return d


def _setup(name, files=None, active=True, rng=None):
    d = _dir(name)
    for fname in files or {}:
        f = open(d + "/" + fname, "wb")
        f.write(files[fname])
        f.close()
    rx = RxRing(1024)
    tx = Tx()
    ctx = Ctx(active=active)
    clock = Clock()
    lk = Link(rx, tx, ctx, runs_dir=d, clock_ms=clock, rng=rng)
    return d, rx, tx, ctx, clock, lk


def _req(rx, tag, cmd, *args):
    rx.put(request_line(tag, cmd, *args))


def _pattern(n):
    b = bytearray(n)
    x = 12345
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        b[i] = (x >> 16) & 0xFF
    return bytes(b)


def _run(lk, tx, max_polls=10000):
    """Poll until nothing more is produced; returns (parsed responses, polls used)."""
    out = []
    polls = 0
    idle = 0
    while polls < max_polls and idle < 20:      # HASH works silently for a few polls
        lk.poll()
        polls += 1
        got = tx.lines()
        if got:
            idle = 0
            for ln in got:
                r = parse_response(ln)
                assert r is not None, ln
                out.append(r)
        else:
            idle += 1
    return out, polls


def test_base64_matches_binascii():
    data = _pattern(800)
    out = bytearray(1200)
    for n in (0, 1, 2, 3, 4, 5, 6, 7, 64, 767, 768, 769, 800):
        j = b64_into(data, n, out, 3)
        ref = binascii.b2a_base64(data[0:n])
        if ref.endswith(b"\n"):
            ref = ref[:-1]
        assert bytes(out[3:j]) == ref, n


def test_rx_ring_wraps_and_limits():
    r = RxRing(8)
    assert r.any() == 0 and r.read_byte() == -1
    assert r.put(b"abcdef") == 6
    assert r.read_byte() == 97 and r.read_byte() == 98
    assert r.put(b"ghijklmn") == 4          # only room for 4
    got = []
    while r.any():
        got.append(r.read_byte())
    assert bytes(got) == b"cdefghij"
    assert r.room() == 8


def test_ping_status_and_tags():
    d, rx, tx, ctx, clock, lk = _setup("ping")
    _req(rx, b"a1", b"PING")
    res, _ = _run(lk, tx)
    assert len(res) == 1
    tag, kind, fields = res[0]
    assert tag == b"a1" and kind == b"OK"
    info = json.loads(b" ".join(fields))
    assert info["proto"] == 1 and info["run"] == "sim-0001" and info["state"] == "run" and info["fw"] == "test"
    _req(rx, b"Zz9", b"STATUS")
    res, _ = _run(lk, tx)
    st = json.loads(b" ".join(res[0][2]))
    assert res[0][0] == b"Zz9" and st["phase"] == "SOAK" and st["live_ppm"] == [1234, -5]


def test_garbage_is_ignored_and_errors_are_coded():
    d, rx, tx, ctx, clock, lk = _setup("errs")
    # what mpremote sends to a running device: Ctrl-C, Ctrl-A; a lone '#'; a REPL comment
    rx.put(b"\r\x03\r\x01#x\n# comment\n")
    res, _ = _run(lk, tx)
    assert res == []
    good = request_line(b"t1", b"PING")
    bad = good[:-4] + (b"0000" if good[-4:-1] != b"000" else b"1111")[0:3] + b"\n"
    rx.put(bad)
    res, _ = _run(lk, tx)
    assert res[0][0] == b"t1" and res[0][1] == b"ERR" and res[0][2][0] == b"1"
    _req(rx, b"t2", b"FROB")
    res, _ = _run(lk, tx)
    assert res[0][1] == b"ERR" and res[0][2][0:2] == [b"3", b"UNKNOWN"]
    rx.put(b"#@" + b"x" * 300 + b"\n")
    res, _ = _run(lk, tx)
    assert res[0][0] == b"-" and res[0][2][0] == b"2"
    _req(rx, b"t3", b"READ", b"../etc", b"0")
    _req(rx, b"t4", b"READ", b"nope", b"0")
    _req(rx, b"t5", b"READ", b"nope")
    _req(rx, b"t6", b"HASH", b"nope", b"x1")
    res, _ = _run(lk, tx)
    codes = [(r[0], r[2][0]) for r in res]
    assert codes == [(b"t3", b"4"), (b"t4", b"5"), (b"t5", b"4"), (b"t6", b"4")], codes
    assert lk.errors >= 6


def test_read_streams_one_chunk_per_poll_and_hash_verifies():
    data = _pattern(5000)
    d, rx, tx, ctx, clock, lk = _setup("read", {"sim-0001.log": data})
    _req(rx, b"r1", b"READ", b"sim-0001", b"100", b"0")
    lk.poll()                               # the request: no data line yet
    first = tx.lines()
    assert first == []
    got = bytearray()
    pos = 100
    polls = 0
    end = None
    while end is None and polls < 100:
        lk.poll()
        polls += 1
        lines = tx.lines()
        # bounded: one data line per poll (the short end line follows the last one at once)
        assert 1 <= len(lines) <= 2 and len(lines[0]) <= 1100
        for ln in lines:
            tag, kind, f = parse_response(ln)
            assert tag == b"r1"
            if kind == b"D":
                assert int(f[0]) == pos and ln is lines[0]
                chunk = binascii.a2b_base64(f[1])
                assert len(chunk) <= link.CHUNK
                got.extend(chunk)
                pos += len(chunk)
            else:
                assert kind == b"E"
                end = (int(f[0]), int(f[1]))
    assert end == (5000, 5000)
    assert bytes(got) == data[100:]
    assert polls == (4900 + 767) // 768
    # a bounded range, and an empty range at the end
    _req(rx, b"r2", b"READ", b"sim-0001", b"0", b"10")
    res, _ = _run(lk, tx)
    assert [r[1] for r in res] == [b"D", b"E"] and binascii.a2b_base64(res[0][2][1]) == data[0:10]
    _req(rx, b"r3", b"READ", b"sim-0001", b"5000")
    res, _ = _run(lk, tx)
    assert res == [(b"r3", b"E", [b"5000", b"5000"])]
    _req(rx, b"r4", b"READ", b"sim-0001", b"5001")
    res, _ = _run(lk, tx)
    assert res[0][1] == b"ERR" and res[0][2][0] == b"6"
    # HASH of a prefix, a bounded number of bytes per poll
    _req(rx, b"h1", b"HASH", b"sim-0001", b"4097")
    res, polls = _run(lk, tx)
    assert res[0][1] == b"H" and res[0][2][0] == b"4097"
    assert res[0][2][1] == binascii.hexlify(hashlib.sha256(data[0:4097]).digest())
    assert polls >= 3                      # 2048 bytes per poll
    _req(rx, b"h2", b"HASH", b"sim-0001", b"5001")
    res, _ = _run(lk, tx)
    assert res[0][2][0] == b"6"


def test_new_command_cancels_a_transfer_and_one_command_per_poll():
    data = _pattern(20000)
    d, rx, tx, ctx, clock, lk = _setup("cancel", {"sim-0001.log": data})
    _req(rx, b"a", b"READ", b"sim-0001", b"0")
    lk.poll()
    lk.poll()
    lk.poll()
    lines = tx.lines()
    assert len(lines) == 2 and parse_response(lines[0])[1] == b"D"
    _req(rx, b"b", b"STOP")
    _req(rx, b"c", b"PING")
    lk.poll()                               # one D line of 'a' (the transfer's step), then STOP only
    lines = [parse_response(x) for x in tx.lines()]
    assert [(r[0], r[1]) for r in lines] == [(b"a", b"D"), (b"b", b"OK")], lines
    lk.poll()
    lines = [parse_response(x) for x in tx.lines()]
    assert [(r[0], r[1]) for r in lines] == [(b"c", b"OK")]
    res, _ = _run(lk, tx)
    assert res == []                        # 'a' was cancelled


def test_list_marks_the_active_run():
    files = {"sim-0001.log": b"x" * 10, "sim-0002.log": b"y" * 7, "notes.txt": b"z",
             "sim-0003.log": b"", "a-1.log": b"q", "b-1.log": b"", "c-1.log": b""}
    d, rx, tx, ctx, clock, lk = _setup("list", files)
    ctx.run_id = "sim-0002"
    _req(rx, b"l", b"LIST")
    lk.poll()
    lk.poll()
    first = tx.lines()
    assert len(first) == 4                  # at most 4 L lines per poll
    res, _ = _run(lk, tx)
    allr = [parse_response(x) for x in first] + res
    ls = [(r[2][0], int(r[2][1]), r[2][2]) for r in allr if r[1] == b"L"]
    assert ls == [(b"a-1", 1, b"C"), (b"b-1", 0, b"C"), (b"c-1", 0, b"C"), (b"sim-0001", 10, b"C"),
                  (b"sim-0002", 7, b"A"), (b"sim-0003", 0, b"C")], ls
    assert allr[-1][1] == b"OK" and allr[-1][2] == [b"6"]


def test_abort_needs_the_token():
    seq = [0x1234567, 0x7654321, 0x0ABCDEF]

    def rng():
        return seq.pop(0)

    d, rx, tx, ctx, clock, lk = _setup("abort", rng=rng)
    _req(rx, b"x1", b"ABORT", b"deadbeef")          # a guess without a request
    res, _ = _run(lk, tx)
    assert res[0][2][0] == b"8" and ctx.aborted == 0
    _req(rx, b"x2", b"ABORT")
    res, _ = _run(lk, tx)
    assert res[0][1] == b"CONFIRM" and res[0][2] == [b"01234567", b"sim-0001", b"60"]
    assert ctx.aborted == 0
    _req(rx, b"x3", b"ABORT", b"01234568")          # wrong: the token is spent
    _req(rx, b"x4", b"ABORT", b"01234567")
    res, _ = _run(lk, tx)
    assert [r[2][0] for r in res] == [b"8", b"8"] and ctx.aborted == 0
    _req(rx, b"x5", b"ABORT")
    res, _ = _run(lk, tx)
    tok = res[0][2][0]
    clock.ms += 61000                               # expired
    _req(rx, b"x6", b"ABORT", tok)
    res, _ = _run(lk, tx)
    assert res[0][2][0] == b"8" and ctx.aborted == 0
    _req(rx, b"x7", b"ABORT")
    res, _ = _run(lk, tx)
    tok = res[0][2][0]
    clock.ms += 5000
    _req(rx, b"x8", b"ABORT", tok)
    res, _ = _run(lk, tx)
    assert res[0][1] == b"OK" and json.loads(b" ".join(res[0][2])) == {"aborted": "sim-0001"}
    assert ctx.aborted == 1
    ctx._active = False
    _req(rx, b"x9", b"ABORT")
    res, _ = _run(lk, tx)
    assert res[0][2][0] == b"7"


def test_idle_poll_allocates_nothing():
    import micropython
    d, rx, tx, ctx, clock, lk = _setup("heap")
    _req(rx, b"w", b"PING")
    lk.poll()                               # warm: first command handled (allocates)
    tx.lines()
    i = 0
    micropython.heap_lock()
    try:
        while i < 5000:
            lk.poll()
            i += 1
    finally:
        micropython.heap_unlock()
    assert i == 5000 and len(tx.data) == 0


def test_controller_tick_with_link_allocates_nothing():
    # the control tick of a soaking controller (tests/dual/test_app_tick.py) with the link
    # hooked in: polled every tick, nothing waiting -> still no allocation
    import micropython
    from oven.run import app
    from test_app_tick import _soaking_controller
    b, c, f = _soaking_controller()
    d, rx, tx, ctx, clock, lk = _setup("ctl")
    polls = [0]

    def counted():
        polls[0] += 1
        lk.poll()

    c.link_poll = counted
    for _ in range(5):
        c.step()
    c.link_poll = lk.poll
    ok = 0
    micropython.heap_lock()
    try:
        for _ in range(2000):
            c.step()
        ok = 1
    finally:
        micropython.heap_unlock()
    assert ok and c.phase == app.PH_SOAK and polls[0] == 5
    # and the link does answer from inside the control loop
    _req(rx, b"k", b"STATUS")
    c.step()
    res = [parse_response(x) for x in tx.lines()]
    assert res[0][0] == b"k" and res[0][1] == b"OK"
