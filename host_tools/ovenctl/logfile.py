"""Reader for the controller's binary run log (format: docs/LOGFORMAT.md). Standard library only.

    log = read_log("run.log")          # or read_log(bytes)
    log.header, log.samples, log.events, log.weighings, log.verdict, log.records, log.problems, log.complete

Unreadable input (empty, not a run log, truncated or damaged header) raises LogError. Everything after a
valid header is read best-effort: damaged records are skipped up to the next valid sync marker and each
skip is reported in `log.problems` with its byte offset. No other exception escapes read_log.
"""
import json
import os
import zlib
from collections import namedtuple

SYNC = b"\xa5\x5a"
FRAME_HDR = 5          # sync 2, type 1, body length 2
CRC_LEN = 4
FORMAT_VERSION = 2
FORMATS_READ = (1, 2)   # 2 = 1 + the SEAL record and the seal fields (docs/LOGFORMAT.md §10)
MISSING = None         # how a missing load-cell sample appears in sample["raw"]

T_HEADER = 0x01
T_BLOCK = 0x02
T_EVENT = 0x03
T_WEIGH = 0x04
T_VERDICT = 0x05
T_END = 0x06
T_SEAL = 0x07
TYPE_NAMES = {T_HEADER: "HEADER", T_BLOCK: "BLOCK", T_EVENT: "EVENT", T_WEIGH: "WEIGH",
              T_VERDICT: "VERDICT", T_END: "END", T_SEAL: "SEAL"}

WEIGH_KINDS = {1: "tare", 2: "m0", 3: "m1", 4: "blank", 5: "span", 6: "check", 7: "inoven"}

M_DT, M_PHASE, M_FLAGS, M_TEMP, M_LCTEMP, M_PRESS, M_DUTY, M_CELLS = 1, 2, 4, 8, 16, 32, 64, 128

SAMPLE_FIELDS = ("t_s", "phase", "flags", "temp_c_x100", "lc_temp_c_x100", "pressure_pa", "duty_permille")

_MAX_VARINT = 10

Record = namedtuple("Record", "seq type name offset length")


class LogError(Exception):
    """The input is not a readable run log."""


class _Malformed(ValueError):
    pass


class _Buf:
    """Cursor over a record body; every read raises _Malformed past the end."""

    __slots__ = ("b", "i", "n")

    def __init__(self, b, i=0, n=None):
        self.b = b
        self.i = i
        self.n = len(b) if n is None else n

    def left(self):
        return self.n - self.i

    def u8(self):
        if self.i >= self.n:
            raise _Malformed("unexpected end of record")
        v = self.b[self.i]
        self.i += 1
        return v

    def uv(self):
        v = 0
        shift = 0
        for _ in range(_MAX_VARINT):
            if self.i >= self.n:
                raise _Malformed("varint runs past the end of the record")
            x = self.b[self.i]
            self.i += 1
            v |= (x & 0x7F) << shift
            if not x & 0x80:
                return v
            shift += 7
        raise _Malformed("varint longer than %d bytes" % _MAX_VARINT)

    def sv(self):
        z = self.uv()
        return (z >> 1) ^ -(z & 1)


def _unzigzag(z):
    return (z >> 1) ^ -(z & 1)


class Log:
    def __init__(self):
        self.header = None
        self.n_cells = 0
        self.samples = []      # dicts: SAMPLE_FIELDS + "raw" (list, None = missing)
        self.events = []       # dicts: t_ms, code, a, b, seq, offset
        self.weighings = []    # dicts: cell, kind, kind_name, t_ms, lc_temp_c_x100, rejected, n, samples, seq, offset
        self.verdict = None    # the last VERDICT record's object
        self.verdicts = []
        self.end = None        # dict: n_samples, dropped_samples, dropped_events
        self.records = []      # Record(seq, type, name, offset, length) of every valid frame
        self.seals = []        # SEAL records: seq, offset, first, count, tags (8 bytes each)
        self.problems = []     # human-readable strings, each naming a byte offset
        self.complete = False  # END seen
        self.size = 0

    def column(self, name):
        """Samples as one column: a SAMPLE_FIELDS name, or "raw<i>" for cell i."""
        if name.startswith("raw"):
            i = int(name[3:])
            return [s["raw"][i] for s in self.samples]
        return [s[name] for s in self.samples]


def _frame_at(data, pos):
    """Parse the frame at pos. Returns (type, seq, body_start_after_seq, body_end, record_end)
    or raises _Malformed with the reason."""
    n = len(data)
    if data[pos:pos + 2] != SYNC:
        raise _Malformed("no sync marker at offset %d" % pos)
    if pos + FRAME_HDR > n:
        raise _Malformed("record at offset %d cut inside its frame header" % pos)
    typ = data[pos + 2]
    blen = data[pos + 3] | (data[pos + 4] << 8)
    end = pos + FRAME_HDR + blen + CRC_LEN
    if end > n:
        raise _Malformed("record at offset %d (type 0x%02x, body %d bytes) runs past the end of the file"
                         % (pos, typ, blen))
    crc = int.from_bytes(data[end - 4:end], "little")
    if zlib.crc32(data[pos + 2:end - 4]) & 0xFFFFFFFF != crc:
        raise _Malformed("CRC mismatch in record at offset %d (type 0x%02x, body %d bytes)" % (pos, typ, blen))
    if blen < 1:
        raise _Malformed("record at offset %d has an empty body (no sequence number)" % pos)
    cur = _Buf(data, pos + FRAME_HDR, end - 4)
    seq = cur.uv()
    return typ, seq, cur.i, end - 4, end


def _next_frame(data, pos):
    """Offset of the next valid frame after pos, or None."""
    i = pos
    while True:
        i = data.find(SYNC, i + 1)
        if i < 0:
            return None
        try:
            _frame_at(data, i)
            return i
        except _Malformed:
            continue


def _json_object(data, start, end, what):
    try:
        obj = json.loads(bytes(data[start:end]).decode("utf-8"))
    except (ValueError, RecursionError) as e:   # JSONDecodeError, UnicodeDecodeError are ValueErrors
        raise _Malformed("%s payload is not valid UTF-8 JSON (%s)" % (what, str(e)[:80]))
    if not isinstance(obj, dict):
        raise _Malformed("%s payload is not a JSON object" % what)
    return obj


class _Decoder:
    def __init__(self, data):
        self.data = data
        self.log = Log()
        self.log.size = len(data)
        self.state_ok = False
        self.last_bno = -1
        self.st = None         # [t_prev, phase, flags, temp, lctemp, pressure, duty]
        self.ref = None
        self.cur = None
        self.blk_cells = 0
        self.next_seq = 0
        self.after_end = False
        self.end_offset = 0

    def problem(self, msg):
        self.log.problems.append(msg)

    def run(self):
        data = self.data
        log = self.log
        if len(data) == 0:
            raise LogError("empty file")
        if data[0:2] != SYNC[:len(data[0:2])] or (len(data) >= 3 and data[2] != T_HEADER):
            raise LogError("not a run log: no HEADER record at offset 0")
        if len(data) < FRAME_HDR:
            raise LogError("truncated inside the header: %d bytes" % len(data))
        try:
            typ, seq, bs, be, end = _frame_at(data, 0)
        except _Malformed as e:
            if "past the end" in str(e) or "cut inside" in str(e):
                raise LogError("truncated inside the header: %s" % e)
            raise LogError("not a run log (invalid header record): %s" % e)
        try:
            hdr = _json_object(data, bs, be, "HEADER")
        except _Malformed as e:
            raise LogError("not a run log: %s" % e)
        linfo = hdr.get("log")
        if not isinstance(linfo, dict):
            raise LogError("not a run log: header has no \"log\" object")
        fmt = linfo.get("format")
        if fmt not in FORMATS_READ:
            self.problem("offset 0: header declares log format %r, this reader knows %s"
                         % (fmt, ", ".join(str(x) for x in FORMATS_READ)))
        nc = linfo.get("n_cells")
        if isinstance(nc, int) and not isinstance(nc, bool) and 0 <= nc <= 255:
            log.n_cells = nc
        else:
            self.problem("offset 0: header has no valid log.n_cells")
        self.blk_cells = log.n_cells
        log.header = hdr
        log.records.append(Record(seq, typ, "HEADER", 0, end))
        if seq != 0:
            self.problem("offset 0: header sequence number is %d, expected 0" % seq)
        self.next_seq = seq + 1
        pos = end
        n = len(data)
        while pos < n:
            try:
                typ, seq, bs, be, end = _frame_at(data, pos)
            except _Malformed as e:
                nxt = _next_frame(data, pos)
                if nxt is None:
                    self.problem("torn tail: %d bytes at offset %d skipped (%s)" % (n - pos, pos, e))
                    break
                self.problem("damaged data at offset %d: %s; %d bytes skipped, resynchronised at offset %d"
                             % (pos, e, nxt - pos, nxt))
                pos = nxt
                continue
            self.record(typ, seq, pos, bs, be, end)
            pos = end
        if self.log.end is not None and self.log.end.get("n_samples") != len(log.samples) and not log.problems:
            self.problem("END at offset %d says %d samples were written, %d decoded"
                         % (self.end_offset, self.log.end.get("n_samples"), len(log.samples)))
        return log

    def record(self, typ, seq, pos, bs, be, end):
        log = self.log
        name = TYPE_NAMES.get(typ, "0x%02x" % typ)
        log.records.append(Record(seq, typ, name, pos, end - pos))
        if seq != self.next_seq:
            if seq > self.next_seq:
                self.problem("sequence gap at offset %d: expected seq %d, found %d (%d records lost)"
                             % (pos, self.next_seq, seq, seq - self.next_seq))
            else:
                self.problem("sequence out of order at offset %d: expected seq %d, found %d"
                             % (pos, self.next_seq, seq))
        self.next_seq = seq + 1
        if self.after_end and typ != T_SEAL:
            self.problem("record %s at offset %d follows END" % (name, pos))
        try:
            if typ == T_BLOCK:
                self.block(pos, bs, be)
            elif typ == T_EVENT:
                self.event(seq, pos, bs, be)
            elif typ == T_WEIGH:
                self.weigh(seq, pos, bs, be)
            elif typ == T_VERDICT:
                v = _json_object(self.data, bs, be, "VERDICT")
                log.verdicts.append(v)
                log.verdict = v
            elif typ == T_END:
                self.end(pos, bs, be)
            elif typ == T_SEAL:
                self.seal(seq, pos, bs, be)
            elif typ == T_HEADER:
                self.problem("unexpected second HEADER record at offset %d ignored" % pos)
            else:
                self.problem("unknown record type 0x%02x at offset %d (%d bytes) skipped" % (typ, pos, end - pos))
        except _Malformed as e:
            self.problem("malformed %s record at offset %d: %s" % (name, pos, e))
            if typ == T_BLOCK:
                self.state_ok = False

    def seal(self, seq, pos, bs, be):
        c = _Buf(self.data, bs, be)
        first = c.uv()
        count = c.uv()
        if c.left() != 8 * count:
            raise _Malformed("%d tags need %d bytes, the record has %d" % (count, 8 * count, c.left()))
        tags = bytes(self.data[c.i:be])
        self.log.seals.append({"seq": seq, "offset": pos, "first": first, "count": count, "tags": tags})

    def event(self, seq, pos, bs, be):
        c = _Buf(self.data, bs, be)
        ev = {"t_ms": c.sv(), "code": c.uv(), "a": c.sv(), "b": c.sv(), "seq": seq, "offset": pos}
        if c.left():
            self.problem("EVENT at offset %d: %d unexpected trailing bytes" % (pos, c.left()))
        self.log.events.append(ev)

    def weigh(self, seq, pos, bs, be):
        c = _Buf(self.data, bs, be)
        w = {"cell": c.u8(), "kind": c.uv()}
        w["kind_name"] = WEIGH_KINDS.get(w["kind"], str(w["kind"]))
        w["t_ms"] = c.sv()
        w["lc_temp_c_x100"] = c.sv()
        w["rejected"] = c.uv()
        n = c.uv()
        if n > c.left():
            raise _Malformed("claims %d samples in %d bytes" % (n, c.left()))
        vals = []
        prev = 0
        for _ in range(n):
            prev += c.sv()
            vals.append(prev)
        if c.left():
            self.problem("WEIGH at offset %d: %d unexpected trailing bytes" % (pos, c.left()))
        w["n"] = n
        w["samples"] = vals
        w["seq"] = seq
        w["offset"] = pos
        self.log.weighings.append(w)

    def end(self, pos, bs, be):
        c = _Buf(self.data, bs, be)
        e = {"n_samples": c.uv(), "dropped_samples": c.uv(), "dropped_events": c.uv()}
        self.log.end = e
        self.log.complete = True
        self.after_end = True
        self.end_offset = pos
        if e["dropped_samples"] or e["dropped_events"]:
            self.problem("END at offset %d: the writer dropped %d samples and %d events (buffer full)"
                         % (pos, e["dropped_samples"], e["dropped_events"]))

    def block(self, pos, bs, be):
        c = _Buf(self.data, bs, be)
        flags = c.u8()
        kf = flags & 1
        bno = c.uv()
        if kf:
            nc = c.u8()
            t0 = c.sv()
        count = c.uv()
        if count > c.left():
            raise _Malformed("claims %d samples in %d bytes" % (count, c.left()))
        if kf:
            if nc != self.log.n_cells:
                self.problem("BLOCK at offset %d has %d cells, header says %d" % (pos, nc, self.log.n_cells))
            st = [t0 - 1, 0, 0, 0, 0, 0, 0]
            ref = [0] * nc
            cur = [None] * nc
        else:
            if not self.state_ok or bno != self.last_bno + 1:
                if self.state_ok and bno <= self.last_bno:
                    why = "duplicate or out-of-order block (last decoded block %d)" % self.last_bno
                else:
                    why = "its predecessor block %d was lost" % (bno - 1)
                self.problem("BLOCK %d at offset %d (%d samples) not decodable: %s; samples resume at the "
                             "next keyframe" % (bno, pos, count, why))
                self.state_ok = False
                return
            nc = self.blk_cells
            st = list(self.st)
            ref = list(self.ref)
            cur = list(self.cur)
        rows = []
        for _ in range(count):
            m = c.u8()
            st[0] += c.sv() if m & M_DT else 1
            if m & M_PHASE:
                st[1] = c.u8()
            if m & M_FLAGS:
                st[2] = c.uv()
            if m & M_TEMP:
                st[3] += c.sv()
            if m & M_LCTEMP:
                st[4] += c.sv()
            if m & M_PRESS:
                st[5] += c.sv()
            if m & M_DUTY:
                st[6] += c.sv()
            if m & M_CELLS:
                for i in range(nc):
                    code = c.uv()
                    if code == 0:
                        cur[i] = None
                    else:
                        ref[i] += _unzigzag(code - 1)
                        cur[i] = ref[i]
            row = dict(zip(SAMPLE_FIELDS, st))
            row["raw"] = list(cur)
            rows.append(row)
        if c.left():
            raise _Malformed("%d unexpected bytes after %d samples" % (c.left(), count))
        self.log.samples.extend(rows)
        self.st, self.ref, self.cur = st, ref, cur
        self.blk_cells = nc
        self.last_bno = bno
        self.state_ok = True


def read_log(path_or_bytes):
    """Read a run log from a path or from bytes. Raises LogError only."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
    else:
        try:
            with open(os.fspath(path_or_bytes), "rb") as f:
                data = f.read()
        except (OSError, TypeError, ValueError) as e:
            raise LogError("cannot read %r: %s" % (path_or_bytes, e))
    return _Decoder(data).run()
