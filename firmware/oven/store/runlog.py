# Run log writer: binary, append-only, framed records. Byte format: docs/LOGFORMAT.md.
#
# Runs on the device (MicroPython) and under CPython (tests, host simulation).
# Hot paths sample(), event() and poll() allocate nothing: records are built in preallocated
# bytearrays, the CRC of hot-path records uses an allocation-free table CRC-32 (bit-identical to
# binascii.crc32, which returns a long int above 2^30 on the device and so would allocate), and the
# file gets `write(buf, 0, n)` (MicroPython streams) instead of a memoryview slice.
# The file is written only at sync points: poll() when the sync period has elapsed, open(),
# weigh(), verdict() and close(). A power cut loses at most what was not yet synced.
from micropython import const
from array import array
import binascii
import json
import os
from oven.core import codes

FORMAT_VERSION = const(2)

MISSING = codes.MISSING_RAW     # raw_counts of a cell with no valid sample this second

# Record types (u8). Part of the format: never renumber, only append.
T_HEADER = const(0x01)
T_BLOCK = const(0x02)
T_EVENT = const(0x03)
T_WEIGH = const(0x04)
T_VERDICT = const(0x05)
T_END = const(0x06)
T_SEAL = const(0x07)

# WEIGH kind codes. Part of the format: never renumber, only append.
W_TARE = const(1)
W_M0 = const(2)
W_M1 = const(3)
W_BLANK = const(4)
W_SPAN = const(5)
W_CHECK = const(6)
W_INOVEN = const(7)

# Sample change-mask bits
M_DT = const(0x01)
M_PHASE = const(0x02)
M_FLAGS = const(0x04)
M_TEMP = const(0x08)
M_LCTEMP = const(0x10)
M_PRESS = const(0x20)
M_DUTY = const(0x40)
M_CELLS = const(0x80)

_SYNC0 = const(0xA5)
_SYNC1 = const(0x5A)
_MAX_BODY = const(65535)
_SAMPLE_MAX = const(30)   # mask 1 + dt 5 + phase 1 + flags 3 + 4 x 5 (svarints)
_CELL_MAX = const(5)
_REC_OVH = const(32)      # frame (sync 2, type 1, len 2, seq <= 5, crc 4) + block header (<= 17)
_EVENT_MAX = const(32)    # frame 14 + t_ms 5 + code 3 + a 5 + b 5
_SEAL_EVERY_SYNCS = const(6)   # one SEAL a minute: ~5 kB/h for 8-byte tags (docs/LOGFORMAT.md §10)

# Worst-case bytes per second of run, per field, for the documented value ranges
# (docs/LOGFORMAT.md "Flash space"): mask 1, phase 1, flags 3, temp 3, lc temp 3, pressure 3,
# duty 2; per cell 4 (signed 24-bit delta).
_WC_FIXED = const(16)
_WC_CELL = const(4)
_WC_BLOCK = const(24)     # frame + block header per block (one block per sync period)
_WC_EVENT_ALLOW = const(32)   # bytes per event, budget of one event per 10 s
_WC_CONST = const(16384)  # header + verdict + END allowance
_WC_WEIGH_CELL = const(16384)  # weighing records per cell
_WC_FS_SLACK = const(8192)    # littlefs metadata / partial blocks
_TYP_FIXED = const(8)     # bytes_planned(): twice the measured ~4 B/s fixed and ~1 B/s a cell
_TYP_CELL = const(2)
# What a budgeted log keeps free for its end: the last block, an ABORTED verdict, END, the last SEAL
# and the filesystem's own blocks (a verdict of 4 cells with its chain is under 4 kB)
RESERVE_BYTES = const(24576)


# ---- allocation-free CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320), as two 16-bit halves ----
_TH = array("H", [0] * 256)
_TL = array("H", [0] * 256)


def _crc_table():
    for n in range(256):
        hi = 0
        lo = n
        for _k in range(8):
            if lo & 1:
                lo = ((lo >> 1) | ((hi & 1) << 15)) ^ 0x8320
                hi = (hi >> 1) ^ 0xEDB8
            else:
                lo = (lo >> 1) | ((hi & 1) << 15)
                hi >>= 1
        _TH[n] = hi
        _TL[n] = lo


_crc_table()


def _crc_into(b, s, e):
    # CRC-32 of b[s:e], stored little-endian at b[e:e+4]. No allocation.
    th = _TH
    tl = _TL
    hi = 0xFFFF
    lo = 0xFFFF
    for i in range(s, e):
        x = (lo ^ b[i]) & 0xFF
        lo = ((lo >> 8) | ((hi & 0xFF) << 8)) ^ tl[x]
        hi = (hi >> 8) ^ th[x]
    lo ^= 0xFFFF
    hi ^= 0xFFFF
    b[e] = lo & 0xFF
    b[e + 1] = lo >> 8
    b[e + 2] = hi & 0xFF
    b[e + 3] = hi >> 8


# ---- varints (LEB128). Writers take (buf, pos, value) and return the new pos. ----
def _wuv(b, p, v):
    # unsigned LEB128; v >= 0
    while v > 0x7F:
        b[p] = (v & 0x7F) | 0x80
        p += 1
        v >>= 7
    b[p] = v
    return p + 1


def _wsplit(b, p, q, s):
    # unsigned LEB128 of 2*q + s (q >= 0, s in {0, 1}) without forming 2*q (stays within +-2^30)
    x = ((q & 0x3F) << 1) | s
    q >>= 6
    while q:
        b[p] = x | 0x80
        p += 1
        x = q & 0x7F
        q >>= 7
    b[p] = x
    return p + 1


def _wsv(b, p, v):
    # zigzag + LEB128: 0,-1,1,-2,2 -> 0,1,2,3,4
    if v < 0:
        return _wsplit(b, p, ~v, 1)
    return _wsplit(b, p, v, 0)


def _begin(o, p, typ, seq):
    o[p] = _SYNC0
    o[p + 1] = _SYNC1
    o[p + 2] = typ
    return _wuv(o, p + 5, seq)


def _finish(o, s, p):
    # s: record start, p: end of body. Fills the length and the CRC; returns the record end.
    n = p - s - 5
    o[s + 3] = n & 0xFF
    o[s + 4] = n >> 8
    _crc_into(o, s + 2, p)
    return p + 4


_HDR_DEPTH = const(3)       # the header's JSON is written in pieces down to this nesting level


def _json_pieces(obj, depth):
    # json.dumps(obj) in pieces, the same text (", " and ": " separators): dicts with string keys
    # and lists are split into their items down to `depth` levels, anything else dumped whole
    # (a nested generator only for a container: each is a heap object)
    if depth > 0 and isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                yield json.dumps(obj)
                return
        sep = "{"
        for key in obj:
            v = obj[key]
            if depth > 1 and isinstance(v, (dict, list, tuple)):
                yield sep + json.dumps(key) + ": "
                yield from _json_pieces(v, depth - 1)
            else:
                yield sep + json.dumps(key) + ": " + json.dumps(v)
            sep = ", "
        yield "}" if sep == ", " else "{}"
    elif depth > 0 and isinstance(obj, (list, tuple)):
        sep = "["
        for v in obj:
            if depth > 1 and isinstance(v, (dict, list, tuple)):
                yield sep
                yield from _json_pieces(v, depth - 1)
            else:
                yield sep + json.dumps(v)
            sep = ", "
        yield "]" if sep == ", " else "[]"
    else:
        yield json.dumps(obj)


def _bytes(run_s, n_cells, sync_every_s, per_s, events):
    if sync_every_s < 1:
        sync_every_s = 1
    blocks = run_s // sync_every_s + 2
    n = (run_s + 1) * per_s + blocks * _WC_BLOCK + events * _WC_EVENT_ALLOW
    n += _WC_CONST + _WC_WEIGH_CELL * n_cells
    # a sealed log: one 8-byte tag per record, one SEAL (16 bytes of frame) a minute
    n += (blocks + events + run_s // 60 + 2) * 8 + (run_s // 60 + 2) * 16
    return n + n // 16 + _WC_FS_SLACK


def bytes_needed(run_s, n_cells, sync_every_s=10):
    """Worst-case flash bytes for a run of run_s seconds (1 Hz samples) with n_cells cells: every
    field changing every second by the most its range allows, an event every 10 s."""
    return _bytes(run_s, n_cells, sync_every_s, _WC_FIXED + _WC_CELL * n_cells, run_s // 10 + 64)


def bytes_planned(run_s, n_cells, sync_every_s=10):
    """Flash bytes a run is planned with (the start check): twice the rate measured on the
    simulated bench with a real load cell's noise, an event a minute. A run that outgrows it is
    ended by the log budget (RunLog.budget_bytes), its log complete: docs/LOGFORMAT.md §8."""
    return _bytes(run_s, n_cells, sync_every_s, _TYP_FIXED + _TYP_CELL * n_cells, run_s // 60 + 64)


def free_bytes(path_dir, statvfs=os.statvfs):
    """Free bytes of the filesystem holding path_dir, or None when it cannot be read."""
    try:
        st = statvfs(path_dir)
    except OSError:
        return None
    unit = st[1] if st[1] else st[0]
    return unit * st[4]


def space_ok(path_dir, run_s, n_cells, statvfs=os.statvfs, sync_every_s=10):
    """True when the filesystem holding path_dir has room for a planned run's log."""
    free = free_bytes(path_dir, statvfs)
    return free is not None and free >= bytes_planned(run_s, n_cells, sync_every_s)


class RunLog:
    """key: the device key (32 bytes) or None. With a key every record is chained
    (seal.py, docs/LOGFORMAT.md §10): call seal() between control ticks."""

    def __init__(self, n_cells, sync_every_s=10, keyframe_every=6, key=None):
        if n_cells < 0 or n_cells > 255:
            raise ValueError("n_cells")
        self.n_cells = n_cells
        self.sync_every_s = sync_every_s if sync_every_s > 0 else 1
        self.keyframe_every = keyframe_every if keyframe_every > 0 else 1
        w = _SAMPLE_MAX + _CELL_MAX * n_cells
        cap = (self.sync_every_s + 4) * w
        if cap + _REC_OVH > _MAX_BODY:
            raise ValueError("block too large")
        self._blk = bytearray(cap)
        self._blim = cap - w              # room for one more worst-case sample while _block_len <= _blim
        ocap = 2 * (cap + _REC_OVH) + 32 * _EVENT_MAX
        self._out = bytearray(ocap)
        self._omv = memoryview(self._out)
        self._blkroom = ocap - (cap + _REC_OVH)   # events never use the room kept for one block
        # predictor state: t_prev, phase, flags, temp, lc temp, pressure, duty
        self._st = array("i", [0] * 7)
        self._ref = array("i", [0] * n_cells)      # last valid raw count per cell
        self._cur = array("i", [MISSING] * n_cells)  # previous sample's value per cell
        self._tmp = bytearray(16)
        self._f = None
        self._wmode = 0
        self._key = key
        self._chain = None
        if key is not None:
            from oven.store import seal
            seal.check_key(key)
            # frames written on the tick path wait here (copied, not hashed: digest() allocates)
            # until seal(); a sync writes the pending buffer at most twice (full block buffer)
            self._stage = bytearray(2 * ocap)
        self._reset()

    def _reset(self):
        self._seq = 0
        self._block_len = 0
        self._block_samples = 0
        self._block_no = 0
        self._block_keyframe = 0
        self._t0 = 0
        self._no = 0
        self._tlast = 0
        self._has_t = False
        self._based = False
        self._tsync = 0
        self._force_kf = 0
        self.n_samples = 0
        self.dropped_samples = 0
        self.dropped_events = 0
        self.bytes_written = 0
        self.budget_bytes = 0       # > 0: bytes_written past it sets F_FLASH, the reserve still free
        self.full = False
        self.syncs = 0
        self.status = codes.OK
        self._nst = 0
        self._tags = bytearray()
        self._tag_first = 0
        self._tag_n = 0
        self._seal_sync = 0
        self.unsealed_bytes = 0     # staged frames lost (seal() not called in time): chain broken
        if self._key is not None:
            from oven.store import seal
            self._chain = seal.Chain(self._key)

    # ---- open / non-hot records ----
    def open(self, path, header_dict, opener=open):
        for _ in self.open_steps(path, header_dict, opener):
            pass

    def open_steps(self, path, header_dict, opener=open, step_bytes=1024):
        """open() as a generator: a step (None) after about step_bytes of the header record, so
        that neither its JSON text nor its frame is ever whole in RAM (the header's length, which
        the frame needs first, is counted in a first pass over the same pieces)."""
        if self._f is not None:
            self.close()
        h = {}
        if header_dict:
            for k in header_dict:
                h[k] = header_dict[k]
        h["log"] = {"format": FORMAT_VERSION, "n_cells": self.n_cells,
                    "sync_every_s": self.sync_every_s, "keyframe_every": self.keyframe_every}
        if self._key is not None:
            from oven.store import seal
            h["log"]["seal"] = "hmac-sha256"
            h["log"]["key_id"] = seal.key_id(self._key)
        t = self._tmp
        q = _wuv(t, 5, 0)           # the header is record 0
        n = 0
        for x in self._json_len(h, step_bytes):
            if x < 0:
                yield
            else:
                n = x
        if q - 5 + n > _MAX_BODY:
            raise ValueError("record too large")
        f = opener(path, "wb")
        self._reset()
        self._f = f
        # MicroPython streams take write(buf, off, n): no memoryview slice allocation per sync
        try:
            f.write(self._out, 0, 0)
            self._wmode = 1
        except TypeError:
            self._wmode = 2
        yield from self._json_record(T_HEADER, h, n, step_bytes)
        self._flush()

    def _json_len(self, obj, step_bytes):
        # the length of json.dumps(obj) in bytes, counted over its pieces: yields -1 every
        # step_bytes, then the length
        n = 0
        k = 0
        for piece in _json_pieces(obj, _HDR_DEPTH):
            x = len(piece.encode())
            n += x
            k += x
            if k >= step_bytes:
                k = 0
                yield -1
        yield n

    def _json_record(self, typ, obj, n, step_bytes):
        # record typ with json.dumps(obj) (n bytes) as its payload, written and chained in pieces
        # (never the whole text or frame in RAM); yields every step_bytes
        f = self._f
        if f is None:
            return
        t = self._tmp
        seq = self._seq
        q = self._prefix(typ, n)
        pre = bytes(t[0:q])
        crc = binascii.crc32(pre[2:])
        hm = None
        if self._chain is not None and not self.unsealed_bytes:
            self._chain_staged()
            hm = self._chain.begin()
            hm.update(pre)
        self._seq = seq + 1
        try:
            f.write(pre)
            k = 0
            for piece in _json_pieces(obj, _HDR_DEPTH):
                b = piece.encode()
                f.write(b)
                crc = binascii.crc32(b, crc)
                if hm is not None:
                    hm.update(b)
                k += len(b)
                if k >= step_bytes:
                    k = 0
                    yield
            crc &= 0xFFFFFFFF
            b = bytes((crc & 0xFF, (crc >> 8) & 0xFF, (crc >> 16) & 0xFF, (crc >> 24) & 0xFF))
            f.write(b)
        except OSError:
            self.status = codes.F_FLASH
            return
        self.bytes_written += q + n + 4
        if hm is not None:
            hm.update(b)
            self._chain_tag(self._chain.end(hm), seq)

    def reopen(self, path, next_seq, next_block, n_samples, last_t_s, size, opener=open,
               chain=None, tags_first=0, tags=b""):
        """Continue a run log after a power cut or reset (recovery.py, docs/APP.md "Power cuts"):
        append after its last valid record (the caller has cut a torn tail first). The record
        sequence and the block numbers continue; the next block is a keyframe whatever its number
        (the predictor state was lost with the RAM). n_samples counts the samples already in the
        file, so that END stays equal to what a reader decodes; samples must be later than
        last_t_s. A sealed log also needs chain, the chain value of its last record, and the
        tags of the records after the last SEAL (tags_first: the first one's seq); without chain
        the rest of the log stays unsealed (verify reports it)."""
        if self._f is not None:
            self.close()
        f = opener(path, "ab")
        self._reset()
        if self._chain is not None:
            if chain is None:
                self._chain = None
            else:
                self._chain.c = bytes(chain)
                if tags:
                    self._tags.extend(tags)
                    self._tag_first = tags_first
                    self._tag_n = len(tags) // 8
        self._f = f
        try:
            f.write(self._out, 0, 0)
            self._wmode = 1
        except TypeError:
            self._wmode = 2
        self._seq = next_seq
        self._block_no = next_block
        self._force_kf = 1
        self.n_samples = n_samples
        if n_samples:
            self._tlast = last_t_s
            self._has_t = True
        self.bytes_written = size

    def _prefix(self, typ, n):
        # the frame's sync, type, length and seq for an n-byte payload into _tmp; returns its length
        t = self._tmp
        q = _wuv(t, 5, self._seq)
        body = q - 5 + n
        if body > _MAX_BODY:
            raise ValueError("record too large")
        t[0] = _SYNC0
        t[1] = _SYNC1
        t[2] = typ
        t[3] = body & 0xFF
        t[4] = body >> 8
        return q

    def _frame(self, typ, payload):
        n = len(payload)
        t = self._tmp
        q = self._prefix(typ, n)
        e = q + n
        rec = bytearray(e + 4)      # one buffer: no copies of the payload but this one
        rec[0:q] = t[0:q]
        rec[q:e] = payload
        crc = binascii.crc32(memoryview(rec)[2:e]) & 0xFFFFFFFF
        rec[e] = crc & 0xFF
        rec[e + 1] = (crc >> 8) & 0xFF
        rec[e + 2] = (crc >> 16) & 0xFF
        rec[e + 3] = crc >> 24
        self._seq += 1
        return rec

    def _write_bytes(self, rec):
        # not on the tick path: the record is chained at once
        f = self._f
        if f is None:
            return
        try:
            f.write(rec)
            self.bytes_written += len(rec)
        except OSError:
            self.status = codes.F_FLASH
            return
        if self._chain is not None:
            self._chain_staged()
            self._chain_frame(rec)

    def _write_out(self):
        n = self._no
        f = self._f
        if n == 0 or f is None:
            return
        self._no = 0
        try:
            if self._wmode == 1:
                f.write(self._out, 0, n)
            else:
                f.write(self._omv[:n])
            self.bytes_written += n
        except OSError:
            self.status = codes.F_FLASH
            return
        if self.budget_bytes and self.bytes_written > self.budget_bytes and not self.full:
            # the run outgrew its plan: end it while the reserve still holds its verdict and END
            self.full = True
            self.status = codes.F_FLASH
        if self._chain is not None:
            st = self._stage
            q = self._nst
            if q + n > len(st):
                self.unsealed_bytes += n
                return
            o = self._out
            for i in range(n):
                st[q + i] = o[i]
            self._nst = q + n

    # ---- sealing (seal.py): between ticks, allocates ----
    def _chain_frame(self, frame):
        if self.unsealed_bytes:
            return                  # a frame was lost to the chain: nothing after it can be sealed
        c = self._chain.record(frame)
        q = 5
        v = 0
        sh = 0
        while True:
            x = frame[q]
            v |= (x & 0x7F) << sh
            q += 1
            sh += 7
            if not x & 0x80:
                break
        self._chain_tag(c, v)

    def _chain_tag(self, c, seq):
        # c: the chain value after record seq; its tag goes into the next SEAL
        if self._tag_n == 0:
            self._tag_first = seq
        self._tags.extend(c[0:8])
        self._tag_n += 1

    def _chain_staged(self):
        n = self._nst
        if n == 0:
            return
        st = self._stage
        mv = memoryview(st)
        p = 0
        while p + 9 <= n:
            e = p + 9 + (st[p + 3] | (st[p + 4] << 8))
            self._chain_frame(mv[p:e])
            p = e
        self._nst = 0

    def chain_hex(self):
        """The chain value of the last record written (hex), None when the log is not sealed."""
        if self._chain is None or self.unsealed_bytes:
            return None
        self._chain_staged()
        return "".join("%02x" % x for x in self._chain.c)

    def seal(self, force=False):
        """Chain the records written since the last call; every _SEAL_EVERY_SYNCS syncs (or with
        force) queue a SEAL record with their tags (written at the next sync). Call between
        control ticks: it allocates (hashlib)."""
        if self._chain is None or self._f is None:
            return False
        self._chain_staged()
        k = self._tag_n
        if k == 0 or (not force and self.syncs - self._seal_sync < _SEAL_EVERY_SYNCS):
            return False
        pl = bytearray(10)
        q = _wuv(pl, 0, self._tag_first)
        q = _wuv(pl, q, k)
        payload = pl[0:q] + self._tags
        p = self._no
        if p + len(payload) + 16 > self._blkroom:
            return False            # no room now: the tags wait for the next call
        rec = self._frame(T_SEAL, payload)
        o = self._out
        o[p:p + len(rec)] = rec
        self._no = p + len(rec)
        self._tags = bytearray()
        self._tag_n = 0
        self._seal_sync = self.syncs
        return True

    def _flush(self):
        f = self._f
        if f is None:
            return
        try:
            f.flush()
            self.syncs += 1
        except OSError:
            self.status = codes.F_FLASH

    def _close_pending_block(self):
        if self._block_samples and not self._close_block():
            self._write_out()
            self._close_block()

    def _sync(self):
        self._close_pending_block()
        self._write_out()
        self._flush()

    def _sync_record(self, typ, payload):
        # close the open block first so that the file stays in sequence order
        self._close_pending_block()
        rec = self._frame(typ, payload)
        self._write_out()
        self._write_bytes(rec)
        self._flush()

    def weigh(self, cell, kind, t_ms, lc_temp_c_x100, samples, n=-1, rejected=0):
        """One weighing's raw data: accepted raw samples samples[0:n], rejected-glitch count. Written synced."""
        if self._f is None:
            return False
        if n < 0:
            n = len(samples)
        buf = bytearray(32 + 5 * n)
        buf[0] = cell & 0xFF
        p = _wuv(buf, 1, kind & 0xFFFF)
        p = _wsv(buf, p, t_ms)
        p = _wsv(buf, p, lc_temp_c_x100)
        p = _wuv(buf, p, rejected if rejected > 0 else 0)
        p = _wuv(buf, p, n)
        prev = 0
        for i in range(n):
            v = samples[i]
            p = _wsv(buf, p, v - prev)
            prev = v
        self._sync_record(T_WEIGH, buf[0:p])
        return True

    def verdict(self, obj):
        """The verdict (a JSON-serialisable dict). Written synced. In a sealed log it carries
        chain_hmac: the chain value (HMAC-SHA256) of every record before it."""
        if self._f is None:
            return False
        if self._chain is not None:
            self._close_pending_block()
            self._write_out()
            d = {}
            for k in obj:
                d[k] = obj[k]
            d["chain_hmac"] = self.chain_hex()
            obj = d
        # streamed like the header: the verdict's JSON text is never whole in RAM
        self._close_pending_block()
        self._write_out()
        n = 0
        for n in self._json_len(obj, 1 << 30):
            pass
        for _ in self._json_record(T_VERDICT, obj, n, 1 << 30):
            pass
        self._flush()
        return True

    def close(self, end=True):
        """Write END (samples written, samples dropped, events dropped), then in a sealed log a
        last SEAL covering every record up to END; sync, close the file. end=False: only the
        SEAL (a reopened log that has its END already)."""
        if self._f is None:
            return
        if end:
            b = bytearray(16)
            p = _wuv(b, 0, self.n_samples)
            p = _wuv(b, p, self.dropped_samples)
            p = _wuv(b, p, self.dropped_events)
            self._sync_record(T_END, b[0:p])
        if self._chain is not None and self.seal(True):
            self._write_out()
            self._flush()
        try:
            self._f.close()
        except OSError:
            self.status = codes.F_FLASH
        self._f = None

    # ---- hot paths: allocate nothing ----
    def poll(self, now_s):
        """Call every tick. Syncs (closes the sample block, writes, flush()) every sync_every_s.
        Returns True when it synced."""
        if self._f is None:
            return False
        if not self._based:
            self._based = True
            self._tsync = now_s
            return False
        if now_s - self._tsync < self.sync_every_s:
            return False
        self._tsync = now_s
        self._sync()
        return True

    def event(self, t_ms, code, a, b):
        if self._f is None:
            return False
        o = self._out
        p = self._no
        if p + _EVENT_MAX > self._blkroom:
            self.dropped_events += 1
            return False
        s = p
        p = _begin(o, p, T_EVENT, self._seq)
        p = _wsv(o, p, t_ms)
        p = _wuv(o, p, code & 0xFFFF)
        p = _wsv(o, p, a)
        p = _wsv(o, p, b)
        self._no = _finish(o, s, p)
        self._seq += 1
        return True

    def _close_block(self):
        # frame the open sample block into the pending buffer; False if it does not fit
        ns = self._block_samples
        if ns == 0:
            return True
        nb = self._block_len
        o = self._out
        s = self._no
        if s + nb + _REC_OVH > len(o):
            return False
        p = _begin(o, s, T_BLOCK, self._seq)
        kf = self._block_keyframe
        o[p] = kf
        p = _wuv(o, p + 1, self._block_no)
        if kf:
            o[p] = self.n_cells
            p = _wsv(o, p + 1, self._t0)
        p = _wuv(o, p, ns)
        b = self._blk
        for i in range(nb):
            o[p + i] = b[i]
        self._no = _finish(o, s, p + nb)
        self._seq += 1
        self._block_no += 1
        self._block_len = 0
        self._block_samples = 0
        return True

    def sample(self, t_s, phase, flags, temp_c_x100, lc_temp_c_x100, pressure_pa, duty_permille, raw_counts):
        """One 1 Hz sample. raw_counts: array('i') of n_cells signed 24-bit counts or MISSING.
        t_s must increase; a sample with t_s <= the previous one is dropped (counted)."""
        if self._f is None:
            return False
        if self._has_t and t_s <= self._tlast:
            self.dropped_samples += 1
            return False
        if self._block_len > self._blim and not self._close_block():
            self.dropped_samples += 1
            return False
        st = self._st
        ref = self._ref
        cur = self._cur
        n = self.n_cells
        if self._block_samples == 0:
            self._t0 = t_s
            if self._force_kf or self._block_no % self.keyframe_every == 0:
                self._block_keyframe = 1
                self._force_kf = 0
                st[0] = t_s - 1
                for i in range(1, 7):
                    st[i] = 0
                for c in range(n):
                    ref[c] = 0
                    cur[c] = MISSING
            else:
                self._block_keyframe = 0
        b = self._blk
        p0 = self._block_len
        p = p0 + 1
        m = 0
        d = t_s - st[0]
        if d != 1:
            m = M_DT
            p = _wsv(b, p, d)
        st[0] = t_s
        phase &= 0xFF
        if phase != st[1]:
            m |= M_PHASE
            b[p] = phase
            p += 1
            st[1] = phase
        flags &= 0xFFFF
        if flags != st[2]:
            m |= M_FLAGS
            p = _wuv(b, p, flags)
            st[2] = flags
        if temp_c_x100 != st[3]:
            m |= M_TEMP
            p = _wsv(b, p, temp_c_x100 - st[3])
            st[3] = temp_c_x100
        if lc_temp_c_x100 != st[4]:
            m |= M_LCTEMP
            p = _wsv(b, p, lc_temp_c_x100 - st[4])
            st[4] = lc_temp_c_x100
        if pressure_pa != st[5]:
            m |= M_PRESS
            p = _wsv(b, p, pressure_pa - st[5])
            st[5] = pressure_pa
        if duty_permille != st[6]:
            m |= M_DUTY
            p = _wsv(b, p, duty_permille - st[6])
            st[6] = duty_permille
        ch = False
        for c in range(n):
            if raw_counts[c] != cur[c]:
                ch = True
                break
        if ch:
            m |= M_CELLS
            for c in range(n):
                v = raw_counts[c]
                if v == MISSING:
                    b[p] = 0
                    p += 1
                else:
                    d = v - ref[c]
                    # code = zigzag(d) + 1  (0 means MISSING)
                    if d >= 0:
                        p = _wsplit(b, p, d, 1)
                    else:
                        p = _wsplit(b, p, -d, 0)
                    ref[c] = v
                cur[c] = v
        b[p0] = m
        self._block_len = p
        self._block_samples += 1
        self.n_samples += 1
        self._tlast = t_s
        self._has_t = True
        return True
