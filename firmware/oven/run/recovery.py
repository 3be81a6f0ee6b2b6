# Power-cut recovery: what main.py does at boot with a run log that has no END record (the run
# was cut by a power loss or a reset). Policy and rationale: docs/APP.md "Power cuts".
#
#   has_end(f, size)      quick check of a log's last bytes: does it end with END (and its SEAL)?
#   header(f, size)       the HEADER's JSON object
#   scan(f, size)         reads a log record by record (a few hundred bytes of RAM at a time) and
#                         returns a LogState: where its valid records end, the writer's counters,
#                         the run's state at the last synced sample, its weighings and events
#   decide(st, ...)       RESUME or the reason why not (R_*), and the outage in seconds
#   verdict_record(st)    the VERDICT record that closes a run that is not resumed
#
# Pure logic: the caller opens the files and reads the sensors and the clock; `f` is any object
# with seek(pos) and read(n). Nothing here is on the control tick's path (it allocates).
from micropython import const
import binascii
import json

from oven.core import codes as C
from oven.store import runlog
from oven.store import seal
from oven.core import verdict as V
from oven.core.codes import PHASE_NAMES

# decide(): RESUME, or why the run is closed INTERRUPTED instead (logged as the E_INTERRUPTED b)
RESUME = const(0)
R_NO_CLOCK = const(1)       # no trustworthy clock: no RTC, no rtc_start_s in the header, or it went back
R_NOT_SOAK = const(2)       # the last synced sample is not an in-spec SOAK sample
R_OUTAGE = const(3)         # the outage was longer than the method's resume_grace_s
R_OUT_OF_SPEC = const(4)    # at power-on the oven reads out of spec (temperature or pressure) or a sensor is bad
R_ENDED = const(5)          # the run had ended: VERDICT, fault or INVALID event already in the log
R_NO_PLAN = const(6)        # this board cannot resume a run (board_select.resume_plan absent or None)
R_MAX_RESUMES = const(7)    # the run was resumed resume_max times already
R_DAMAGED = const(8)        # the log is damaged in the middle (or not a log): never resumed
R_NOT_LATEST = const(9)     # an older unfinished log (only the newest run may resume)
REASON_NAMES = ("RESUME", "NO_CLOCK", "NOT_SOAK", "OUTAGE", "OUT_OF_SPEC", "ENDED", "NO_PLAN",
                "MAX_RESUMES", "DAMAGED", "NOT_LATEST")

DEFAULT_GRACE_S = const(120)
DEFAULT_RESUME_MAX = const(3)

_MAX_BODY_DECODE = const(16384)   # longer records are CRC-checked in pieces, never decoded
_PIECE = const(1024)
_MISSING = runlog.MISSING


class LogState:
    def __init__(self):
        self.size = 0
        self.header = None          # type: dict | None  # the HEADER's JSON object (None: not a run log)
        self.n_cells = 0
        self.valid_end = 0          # end of the last valid record
        self.torn = 0               # bytes after valid_end that hold no valid record (a torn tail)
        self.damaged = 0            # damage in the middle, undecodable samples or a malformed record
        self.next_seq = 0
        self.next_block = 0
        self.n_samples = 0
        self.last_t = 0             # the last sample's fields (t_s, phase, flags, temp, lc temp, p, duty)
        self.last_phase = 0
        self.last_flags = 0
        self.last_temp = 0
        self.last_lc_temp = 0
        self.last_pressure = 0
        self.last_duty = 0
        self.last_raw = []          # per cell: the last valid raw count (runlog.MISSING if none)
        self.soak_n = 0             # SOAK samples, and those with IN_SPEC
        self.soak_in = 0
        self.weigh = {}             # (kind, cell) -> (n, sum, m2n, lc_temp_c_x100, t_ms), first of each
        self.phases = []            # [name, start_s, end_s] from the PHASE events
        self.phase_ev = 0           # phase entered by the last PHASE event
        self.fault = 0
        self.invalid = 0
        self.early = []
        self.leak = []
        self.resumes = 0
        self.interrupted = 0        # an INTERRUPTED event: the run was being closed
        self.vac_exc = 0
        self.no_pass = []           # (reason, cell) of the NO_PASS events: a resumed run keeps them
        self.verdict_seen = 0
        self.end_seen = 0
        self.last_t_ms = 0          # latest t_ms of an event or weighing
        self.chain = None           # type: seal.Chain | None  # after the last valid record (scan with a key)
        self.tag_first = 0          # seq of the first record not yet covered by a SEAL
        self.tags = b""             # their tags
        self.seal_bad = -1          # seq of a SEAL that does not match the records (tampered)
        # sample predictor (docs/LOGFORMAT.md section 4)
        self._st = None
        self._ref = None
        self._cur = None
        self._ok = 0
        self._block_no = -1


def _uv(b, i, e):
    v = 0
    sh = 0
    while True:
        if i >= e or sh > 63:
            raise ValueError("varint")
        x = b[i]
        i += 1
        v |= (x & 0x7F) << sh
        if not x & 0x80:
            return v, i
        sh += 7


def _sv(b, i, e):
    z, i = _uv(b, i, e)
    return (z >> 1) ^ -(z & 1), i


def _read_at(f, pos, n):
    f.seek(pos)
    return f.read(n)


def _frame_ok(f, pos, size):
    """(type, body bytes or None, end) of a valid frame at pos, or None. Bodies longer than
    _MAX_BODY_DECODE are CRC-checked in pieces and returned as None."""
    if pos + 9 > size:
        return None
    h = _read_at(f, pos, 5)
    if len(h) < 5 or h[0] != 0xA5 or h[1] != 0x5A:
        return None
    blen = h[3] | (h[4] << 8)
    end = pos + 9 + blen
    if blen < 1 or end > size:
        return None
    crc = binascii.crc32(h[2:5])
    body = None
    if blen <= _MAX_BODY_DECODE:
        body = f.read(blen)
        if len(body) != blen:
            return None
        crc = binascii.crc32(body, crc)
    else:
        left = blen
        while left > 0:
            k = _PIECE if left > _PIECE else left
            piece = f.read(k)
            if len(piece) != k:
                return None
            crc = binascii.crc32(piece, crc)
            left -= k
    t = f.read(4)
    if len(t) != 4:
        return None
    if (crc & 0xFFFFFFFF) != (t[0] | (t[1] << 8) | (t[2] << 16) | (t[3] << 24)):
        return None
    return h[2], body, end


def _resync(f, pos, size):
    """Offset of the next valid frame after pos, or -1."""
    p = pos + 1
    while p < size:
        chunk = _read_at(f, p, 4096)
        if not chunk:
            return -1
        j = 0
        while True:
            j = chunk.find(b"\xa5", j)
            if j < 0:
                break
            q = p + j
            if _frame_ok(f, q, size) is not None:
                return q
            j += 1
        p += len(chunk)
    return -1


def _frame_ending_at(tail, k):
    """(start, type) of a valid frame in tail that ends at tail offset k, or None."""
    for j in range(k - 9, -1, -1):
        if tail[j] == 0xA5 and tail[j + 1] == 0x5A:
            blen = tail[j + 3] | (tail[j + 4] << 8)
            if j + 9 + blen == k:
                crc = binascii.crc32(tail[j + 2:k - 4]) & 0xFFFFFFFF
                if crc == tail[k - 4] | (tail[k - 3] << 8) | (tail[k - 2] << 16) | (tail[k - 1] << 24):
                    return j, tail[j + 2]
    return None


def has_end(f, size):
    """A closed log: 2 when it ends with END and the SEAL after it, 1 when it ends with END
    (unsealed, or cut between END and its SEAL), 0 when it is not closed. Reads 1 kB of the
    tail, up to 16 kB when the last SEAL is longer (many events in its last minute)."""
    if size < 16:
        return 0
    k = 0
    for want in (1024, 16384):
        if k >= size:
            break
        k = want if size >= want else size
        tail = _read_at(f, size - k, k)
        fr = _frame_ending_at(tail, k)
        if fr is None:
            continue
        if fr[1] == runlog.T_END:
            return 1
        if fr[1] != runlog.T_SEAL:
            return 0
        if fr[1] == runlog.T_SEAL:
            fr = _frame_ending_at(tail, fr[0])
            if fr is not None and fr[1] == runlog.T_END:
                return 2
    return 0


def header(f, size):
    """The HEADER's JSON object, or None."""
    fr = _frame_ok(f, 0, size)
    if fr is None or fr[0] != runlog.T_HEADER or fr[1] is None:
        return None
    try:
        _seq, i = _uv(fr[1], 0, len(fr[1]))
        h = json.loads(bytes(fr[1][i:]).decode())
    except (ValueError, IndexError):
        return None
    return h if isinstance(h, dict) else None


def _chain_frame(st, f, pos, end, typ, body):
    # advance the seal chain over the frame at [pos, end); check a SEAL against the tags computed
    ch = st.chain
    if typ == runlog.T_SEAL and body is not None:
        seq, i = _uv(body, 0, len(body))
        first, i = _uv(body, i, len(body))
        cnt, i = _uv(body, i, len(body))
        tags = st.tags
        if (first != st.tag_first or cnt * 8 > len(tags) or len(body) - i != cnt * 8
                or bytes(body[i:]) != bytes(tags[0:cnt * 8])):
            st.seal_bad = seq          # altered while the device was off: never sealed again
            st.chain = None
            return
        st.tags = tags[cnt * 8:]
        st.tag_first = first + cnt
    h = ch.begin()
    p = pos
    while p < end:
        k = end - p if end - p < _PIECE else _PIECE
        piece = _read_at(f, p, k)
        if len(piece) != k:
            st.chain = None
            return
        h.update(piece)
        p += k
    c = ch.end(h)
    if not st.tags:
        st.tag_first = st.next_seq - 1
    st.tags += c[0:8]


def scan(f, size, key=None):
    """Read a run log (file object f of size bytes); returns its LogState. With the device key
    and a sealed log it also recomputes the seal chain (st.chain: the Chain at the last valid
    record, or None when it cannot be continued; st.tag_first, st.tags: the records after the
    last SEAL) and checks every SEAL (st.seal_bad: the seq of one that does not match)."""
    st = LogState()
    st.size = size
    fr = _frame_ok(f, 0, size)
    if fr is None or fr[0] != runlog.T_HEADER or fr[1] is None:
        st.damaged = 1
        return st
    try:
        seq, i = _uv(fr[1], 0, len(fr[1]))
        h = json.loads(bytes(fr[1][i:]).decode())
        n = h["log"]["n_cells"]
        if seq != 0 or not isinstance(h, dict) or n < 0 or n > 255:
            raise ValueError("header")
    except (ValueError, KeyError, TypeError, IndexError):
        st.damaged = 1
        return st
    st.header = h
    st.n_cells = n
    st.early = [0] * n
    st.leak = [None] * n
    st.last_raw = [_MISSING] * n
    st.next_seq = 1
    lg = h["log"]
    if key is not None and isinstance(lg, dict) and lg.get("seal") == "hmac-sha256":
        if lg.get("key_id") == seal.key_id(key):
            st.chain = seal.Chain(key)
            _chain_frame(st, f, 0, fr[2], runlog.T_HEADER, None)
    pos = fr[2]
    st.valid_end = pos
    while pos < size:
        fr = _frame_ok(f, pos, size)
        if fr is None:
            q = _resync(f, pos, size)
            if q < 0:
                st.torn = size - pos
                break
            st.damaged = 1
            st.chain = None
            pos = q
            continue
        typ, body, end = fr
        try:
            _record(st, typ, body)
            if st.chain is not None:
                _chain_frame(st, f, pos, end, typ, body)
        except (ValueError, IndexError, KeyError, TypeError):
            st.damaged = 1
            st.chain = None
            if typ == runlog.T_BLOCK:
                st._ok = 0
        pos = end
        st.valid_end = end
    return st


def _record(st, typ, body):
    if body is None:
        raise ValueError("record too long")
    e = len(body)
    seq, i = _uv(body, 0, e)
    if seq != st.next_seq:
        st.damaged = 1
    st.next_seq = seq + 1
    if typ == runlog.T_BLOCK:
        _block(st, body, i, e)
    elif typ == runlog.T_EVENT:
        t_ms, i = _sv(body, i, e)
        code, i = _uv(body, i, e)
        a, i = _sv(body, i, e)
        b, i = _sv(body, i, e)
        _event(st, t_ms, code, a, b)
    elif typ == runlog.T_WEIGH:
        cell = body[i]
        kind, i = _uv(body, i + 1, e)
        t_ms, i = _sv(body, i, e)
        lct, i = _sv(body, i, e)
        _rej, i = _uv(body, i, e)
        n, i = _uv(body, i, e)
        x = 0
        tot = 0
        sq = 0
        for _k in range(n):
            d, i = _sv(body, i, e)
            x += d
            tot += x
            sq += x * x
        if (kind, cell) not in st.weigh:
            st.weigh[(kind, cell)] = (n, tot, n * sq - tot * tot, lct, t_ms)
        if t_ms > st.last_t_ms:
            st.last_t_ms = t_ms
    elif typ == runlog.T_VERDICT:
        st.verdict_seen = 1
    elif typ == runlog.T_END:
        st.end_seen = 1


def _event(st, t_ms, code, a, b):
    if t_ms > st.last_t_ms:
        st.last_t_ms = t_ms
    n = st.n_cells
    if code == C.E_PHASE:
        t = t_ms // 1000
        if st.phases:
            st.phases[-1][2] = t
        st.phases.append([PHASE_NAMES[a] if 0 <= a < len(PHASE_NAMES) else str(a), t, t])
        st.phase_ev = a
    elif C.F_TEMP_MAX <= code < C.E_PHASE:
        if not st.fault:
            st.fault = code
    elif code == C.E_INVALID:
        if not st.invalid:
            st.invalid = a
    elif code == C.E_EARLY_FAIL:
        if 0 <= a < n:
            st.early[a] = 1
    elif code == C.E_LEAK_ANSWER:
        if 0 <= a < n:
            st.leak[a] = b
    elif code == C.E_RESUMED:
        st.resumes += 1
    elif code == C.E_INTERRUPTED:
        st.interrupted = 1
    elif code == C.E_VAC_EXCURSION:
        st.vac_exc = 1 if a else 0
    elif code == C.E_NO_PASS:
        st.no_pass.append((a, b))


def _block(st, b, i, e):
    kf = b[i] & 1
    bno, i = _uv(b, i + 1, e)
    if kf:
        nc = b[i]
        t0, i = _sv(b, i + 1, e)
    count, i = _uv(b, i, e)
    if kf:
        if nc != st.n_cells:
            raise ValueError("cells")
        s = [t0 - 1, 0, 0, 0, 0, 0, 0]
        ref = [0] * nc
        cur = [_MISSING] * nc
    else:
        if not st._ok or bno != st._block_no + 1:
            st._ok = 0
            st.damaged = 1
            st.next_block = bno + 1
            return
        nc = st.n_cells
        s = st._st
        ref = st._ref
        cur = st._cur
    last = st.last_raw
    for _k in range(count):
        m = b[i]
        i += 1
        if m & runlog.M_DT:
            d, i = _sv(b, i, e)
            s[0] += d
        else:
            s[0] += 1
        if m & runlog.M_PHASE:
            s[1] = b[i]
            i += 1
        if m & runlog.M_FLAGS:
            s[2], i = _uv(b, i, e)
        if m & runlog.M_TEMP:
            d, i = _sv(b, i, e)
            s[3] += d
        if m & runlog.M_LCTEMP:
            d, i = _sv(b, i, e)
            s[4] += d
        if m & runlog.M_PRESS:
            d, i = _sv(b, i, e)
            s[5] += d
        if m & runlog.M_DUTY:
            d, i = _sv(b, i, e)
            s[6] += d
        if m & runlog.M_CELLS:
            for c in range(nc):
                code, i = _uv(b, i, e)
                if code == 0:
                    cur[c] = _MISSING
                else:
                    z = code - 1
                    ref[c] += (z >> 1) ^ -(z & 1)
                    cur[c] = ref[c]
        for c in range(nc):
            if cur[c] != _MISSING:
                last[c] = cur[c]
        st.n_samples += 1
        if s[1] == C.PH_SOAK:
            st.soak_n += 1
            if s[2] & C.SF_IN_SPEC:
                st.soak_in += 1
        elif (s[1] == C.PH_PUMPDOWN or s[1] == C.PH_HEATUP) and s[2] & C.SF_IN_SPEC:
            # heat_in "air": the pump-down's and HEATUP's seconds at the method's conditions are
            # soak time (app._credit), in-spec and total alike
            st.soak_n += 1
            st.soak_in += 1
    if i != e:
        raise ValueError("block length")
    st._st = s
    st._ref = ref
    st._cur = cur
    st._ok = 1
    st._block_no = bno
    st.next_block = bno + 1
    if count:
        st.last_t = s[0]
        st.last_phase = s[1]
        st.last_flags = s[2]
        st.last_temp = s[3]
        st.last_lc_temp = s[4]
        st.last_pressure = s[5]
        st.last_duty = s[6]


def method_of(st):
    """The run's method from the header (validated), or None."""
    if st.header is None:
        return None
    try:
        from oven.core import methods
        return methods.validate(st.header.get("method"))
    except (ValueError, TypeError, AttributeError):
        return None


def outage_s(st, rtc_now_s):
    """Seconds between the last synced sample and now, by the battery-backed clock; -1 when
    unknown (no clock, no rtc_start_s in the header, or the clock went backwards)."""
    if rtc_now_s is None or st.header is None:
        return -1
    r0 = st.header.get("rtc_start_s")
    if not isinstance(r0, int) or isinstance(r0, bool):
        return -1
    d = rtc_now_s - (r0 + st.last_t)
    return d if d >= 0 else -1


def candidate(st, method, latest=True):
    """RESUME when the log alone allows a resume (the board, its clock and its readings still
    have to agree: decide()), else the reason why not."""
    if st.verdict_seen or st.fault or st.invalid or st.interrupted:
        return R_ENDED              # (interrupted: a closing that a second cut stopped half-way)
    if st.damaged or method is None or st.header is None:
        return R_DAMAGED
    if not latest:
        return R_NOT_LATEST
    if st.n_samples == 0 or st.last_phase != C.PH_SOAK or not (st.last_flags & C.SF_IN_SPEC):
        return R_NOT_SOAK
    for i in range(st.n_cells):
        if (1, i) not in st.weigh or (2, i) not in st.weigh:
            return R_DAMAGED            # in SOAK the tare and m0 weighings must be on record
    return RESUME


def decide(st, method, can_resume, rtc_now_s, tc_ok, temp_c_x100, p_ok, pressure_pa, latest=True):
    """(RESUME or R_*, outage s or -1). method: method_of(st); can_resume: the board has a resume
    plan; the readings are the board's first at power-on (tc_ok/p_ok: driver status OK). The
    conditions, in this order: the run had not ended, the log is intact, it is the newest run,
    its last synced sample is an in-spec SOAK sample, the board can resume, a trustworthy clock
    gives the outage, fewer than resume_max resumes so far, the outage is at most resume_grace_s,
    and the oven still reads in spec (so it stayed in spec: with the heater and the pump off, the
    temperature falls and the pressure rises monotonically)."""
    out = outage_s(st, rtc_now_s)
    r = candidate(st, method, latest)
    if r != RESUME:
        return r, out
    if not can_resume:
        return R_NO_PLAN, out
    if out < 0:
        return R_NO_CLOCK, out
    if st.resumes >= method.get("resume_max", DEFAULT_RESUME_MAX):
        return R_MAX_RESUMES, out
    if out > method.get("resume_grace_s", DEFAULT_GRACE_S):
        return R_OUTAGE, out
    dev = temp_c_x100 - method["setpoint_c_x100"]
    if (not tc_ok or not p_ok or dev > method["tol_c_x100"] or -dev > method["tol_c_x100"]
            or pressure_pa > method["vacuum_pa"]):
        return R_OUT_OF_SPEC, out
    return RESUME, out


def verdict_record(st, method):
    """The VERDICT record of a run closed without resuming (same fields as app's
    Controller.verdict_record): ABORTED when a fault was recorded, else INVALID with the
    invalid reason already logged or F_INTERRUPTED. Never PASS: no m1 was weighed."""
    v = V.V_ABORTED if st.fault else V.V_INVALID
    name = V.VERDICT_NAMES[v]
    cells = []
    for i in range(st.n_cells):
        cells.append({"verdict": name, "cell": i, "leak_visible": st.leak[i], "early_fail": st.early[i]})
    mname = method["name"] if method is not None else None
    if mname is None and st.header is not None and isinstance(st.header.get("method"), dict):
        mname = st.header["method"].get("name")
    return {"verdict": name, "cells": cells, "method": mname, "fault": st.fault,
            "invalid": st.invalid if st.invalid else C.F_INTERRUPTED,
            "soak_in_spec_s": st.soak_in, "soak_total_s": st.soak_n}


def event_t_ms(st):
    """Time stamp for the records that close the log: its latest known time."""
    t = st.last_t * 1000
    return t if t > st.last_t_ms else st.last_t_ms
