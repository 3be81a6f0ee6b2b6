# The run-time serial link (docs/PROTOCOL.md): checksummed request/response lines on the USB
# console while a test runs. Link.poll() runs once per control tick and does bounded work (at most
# one command and one chunk or hash step); idle, it allocates nothing. rx: any()/read_byte(); tx(buf).
# Framing and I/O objects: docs/MODULES.md "oven.link".
from micropython import const
import binascii
import json
import os

from oven.core.fixedpt import ticks_diff

PROTO_VERSION = const(1)
CHUNK = const(768)            # data bytes per D line (1024 base64 characters)
HASH_STEP = const(2048)       # bytes hashed per poll by HASH
_MAXLINE = const(200)         # longest accepted request body
_RX_PER_POLL = const(256)     # input bytes consumed per poll at most
_LIST_PER_POLL = const(4)     # L lines per poll
_TOKEN_MS = const(60000)      # an abort confirmation token is valid this long
READ_MAX = const(1048576)     # most bytes one READ request streams

# Error codes (ERR lines). Part of the protocol: never renumber, only append.
E_CRC = const(1)          # request line CRC mismatch
E_TOOLONG = const(2)      # request line longer than the limit
E_UNKNOWN = const(3)      # unknown command
E_ARG = const(4)          # missing or malformed argument
E_NOENT = const(5)        # no such run log
E_RANGE = const(6)        # offset or length beyond the end of the log
E_NOTRUN = const(7)       # ABORT while no test is running
E_TOKEN = const(8)        # ABORT confirmation token wrong, expired or for another run
E_IO = const(9)           # filesystem error on the device
ERR_NAMES = {E_CRC: b"BADCRC", E_TOOLONG: b"TOOLONG", E_UNKNOWN: b"UNKNOWN", E_ARG: b"BADARG",
             E_NOENT: b"NOENT", E_RANGE: b"RANGE", E_NOTRUN: b"NOTRUN", E_TOKEN: b"BADTOKEN", E_IO: b"IO"}

_J_NONE = const(0)
_J_READ = const(1)
_J_HASH = const(2)
_J_LIST = const(3)

_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64_into(src, n, out, j):
    """Standard base64 (RFC 4648, '=' padding) of src[0:n] written into out[j:]; returns the end
    index. Pure Python: identical on every port (the WebAssembly port's binascii.b2a_base64 is a
    slow Python fallback) and allocation-free; the 64-byte alphabet, not a table in RAM."""
    t = _B64
    i = 0
    m = n - n % 3
    while i < m:
        v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2]
        out[j] = t[v >> 18]
        out[j + 1] = t[(v >> 12) & 63]
        out[j + 2] = t[(v >> 6) & 63]
        out[j + 3] = t[v & 63]
        i += 3
        j += 4
    r = n - m
    if r:
        v = src[i] << 16
        if r == 2:
            v |= src[i + 1] << 8
        out[j] = _B64[v >> 18]
        out[j + 1] = _B64[(v >> 12) & 63]
        out[j + 2] = _B64[(v >> 6) & 63] if r == 2 else 61
        out[j + 3] = 61
        j += 4
    return j


def crc32(buf):
    return binascii.crc32(buf) & 0xFFFFFFFF


def _is_tag(w):
    # request tags: 1..8 ASCII letters or digits
    if not 1 <= len(w) <= 8:
        return False
    for c in w:
        if not ((48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122)):
            return False
    return True


def valid_run_id(s):
    """Run IDs are file names without '.log': 1..40 of [A-Za-z0-9_.-], not starting with '.'."""
    if not s or len(s) > 40 or s[0] == ".":
        return False
    for ch in s:
        if not (("a" <= ch <= "z") or ("A" <= ch <= "Z") or ("0" <= ch <= "9") or ch in "_.-"):
            return False
    return True


class RxRing:
    """Receive FIFO (a UART/USB RX buffer): put() from the producer, any()/read_byte() from the
    link. any() and read_byte() allocate nothing."""

    def __init__(self, size=4096):
        self._b = bytearray(size)
        self._size = size
        self._r = 0
        self._n = 0

    def any(self):
        return self._n

    def room(self):
        return self._size - self._n

    def put(self, data):
        """Copy as many bytes of data as fit; returns the number taken."""
        k = len(data)
        if k > self._size - self._n:
            k = self._size - self._n
        w = (self._r + self._n) % self._size
        b = self._b
        for i in range(k):
            b[w] = data[i]
            w += 1
            if w == self._size:
                w = 0
        self._n += k
        return k

    def read_byte(self):
        if self._n == 0:
            return -1
        c = self._b[self._r]
        self._r += 1
        if self._r == self._size:
            self._r = 0
        self._n -= 1
        return c


class StdinIO:
    """Byte source of a real board: the USB serial console (sys.stdin.buffer), polled without
    blocking through select.poll().ipoll(0), which allocates nothing."""

    def __init__(self):
        import sys
        import select
        self._s = sys.stdin.buffer
        self._p = select.poll()
        self._p.register(sys.stdin, select.POLLIN)
        self._b1 = bytearray(1)

    def any(self):
        for _ in self._p.ipoll(0):
            return 1
        return 0

    def read_byte(self):
        if not self.any():
            return -1
        if self._s.readinto(self._b1) != 1:
            return -1
        return self._b1[0]


def stdout_tx():
    """The board's console output as a bytes writer (binary: sys.stdout.buffer where it exists)."""
    import sys
    out = getattr(sys.stdout, "buffer", sys.stdout)
    return out.write


def _default_clock():
    import time
    if hasattr(time, "ticks_ms"):
        return time.ticks_ms
    mono = getattr(time, "monotonic")     # CPython only (tests); a board has ticks_ms
    return lambda: int(mono() * 1000)


class Link:
    """The run-time protocol handler. ctx is the session: ctx.run_id (the active run's ID or
    None), ctx.active() -> bool, ctx.status() -> dict, ctx.abort(), ctx.info() -> dict."""

    def __init__(self, rx, tx, ctx, runs_dir="/runs", clock_ms=None, chunk=CHUNK, hash_step=HASH_STEP,
                 rng=None):
        self.rx = rx
        self.tx = tx
        self.ctx = ctx
        self.runs_dir = runs_dir
        self.clock_ms = clock_ms if clock_ms is not None else _default_clock()
        if chunk < 3 or chunk > 3072:
            raise ValueError("chunk")
        self.chunk = chunk - chunk % 3      # whole base64 groups: every D line but the last has no padding
        self.hash_step = hash_step
        self._rng = rng
        self._in = bytearray(_MAXLINE)
        self._n = 0
        self._st = 0                        # 0 outside a request, 1 saw '#', 2 in a request, 3 overflow
        self._buf = bytearray(max(self.chunk, hash_step))
        self._mv = memoryview(self._buf)
        self._line = bytearray(64 + (self.chunk // 3) * 4 + 8)
        self._job = _J_NONE
        self._jtag = b""
        self._f = None
        self._off = 0
        self._end = 0
        self._size = 0
        self._sha = None
        self._names = None
        self._tok = None
        self._tok_ms = 0
        self._tok_run = None
        # counters (diagnostics)
        self.requests = 0
        self.errors = 0
        self.bytes_served = 0

    # ---------------------------------------------------------------- the per-tick entry point
    def poll(self):
        if self._job:
            self._job_step()
        if self.rx.any():
            self._read_input()

    def close(self):
        self._cancel()

    # ---------------------------------------------------------------- input
    def _read_input(self):
        rx = self.rx
        b = self._in
        k = 0
        while k < _RX_PER_POLL:
            c = rx.read_byte()
            if c < 0:
                return
            k += 1
            st = self._st
            if st == 0:
                if c == 0x23:               # '#'
                    self._st = 1
            elif st == 1:
                if c == 0x40:               # '@'
                    self._st = 2
                    self._n = 0
                elif c != 0x23:
                    self._st = 0
            elif st == 2:
                if c == 0x0A:
                    self._st = 0
                    self._request(self._n)
                    return                  # at most one command per poll
                if c == 0x0D:
                    continue
                if self._n >= _MAXLINE:
                    self._st = 3
                    continue
                b[self._n] = c
                self._n += 1
            else:
                if c == 0x0A:
                    self._st = 0
                    self._err(b"-", E_TOOLONG)
                    return

    def _request(self, n):
        self.requests += 1
        text = bytes(self._in[0:n])
        star = text.rfind(b"*")
        words = text[0:star if star >= 0 else n].split()
        tag = words[0] if words and _is_tag(words[0]) else b"-"
        try:
            ok = star >= 0 and n - star == 9 and crc32(text[0:star]) == int(text[star + 1:n].decode(), 16)
        except (ValueError, UnicodeError):
            ok = False
        if not ok:
            self._err(tag, E_CRC)
            return
        if len(words) < 2 or tag == b"-":
            self._err(tag, E_ARG)
            return
        # a new command ends any transfer still running
        self._cancel()
        try:
            self._dispatch(tag, words[1], words[2:])
        except OSError:
            self._cancel()
            self._err(tag, E_IO)

    def _dispatch(self, tag, cmd, args):
        if cmd == b"PING":
            info = {"proto": PROTO_VERSION, "state": "run" if self.ctx.active() else "done",
                    "run": self.ctx.run_id, "chunk": self.chunk}
            extra = self.ctx.info()
            for k in extra:
                info[k] = extra[k]
            self._send(tag, b"OK", json.dumps(info).encode())
        elif cmd == b"STATUS":
            self._send(tag, b"OK", json.dumps(self.ctx.status()).encode())
        elif cmd == b"LIST":
            self._start_list(tag)
        elif cmd == b"READ":
            self._start_read(tag, args)
        elif cmd == b"HASH":
            self._start_hash(tag, args)
        elif cmd == b"ABORT":
            self._abort(tag, args)
        elif cmd == b"STOP":
            self._send(tag, b"OK", b"stopped")
        else:
            self._err(tag, E_UNKNOWN)

    # ---------------------------------------------------------------- output
    def _send(self, tag, kind, payload=None):
        out = bytearray(b"@")
        out.extend(tag)
        out.extend(b" ")
        out.extend(kind)
        if payload:
            out.extend(b" ")
            out.extend(payload)
        c = crc32(memoryview(out)[1:])
        out.extend(b"*%08x\n" % c)
        self.tx(out)

    def _err(self, tag, code):
        self.errors += 1
        self._send(tag, b"ERR", b"%d %s" % (code, ERR_NAMES[code]))

    # ---------------------------------------------------------------- commands
    def _path(self, run_id):
        return self.runs_dir + "/" + run_id + ".log"

    def _run_arg(self, tag, args, i):
        if len(args) <= i:
            self._err(tag, E_ARG)
            return None
        try:
            rid = args[i].decode()
        except UnicodeError:
            rid = ""
        if not valid_run_id(rid):
            self._err(tag, E_ARG)
            return None
        return rid

    def _int_arg(self, tag, args, i):
        if len(args) <= i or len(args[i]) > 9:
            self._err(tag, E_ARG)
            return -1
        for c in args[i]:
            if not 48 <= c <= 57:
                self._err(tag, E_ARG)
                return -1
        return int(args[i].decode())

    def _size_of(self, path):
        try:
            return os.stat(path)[6]
        except OSError:
            return -1

    def _start_list(self, tag):
        names = []
        try:
            ents = os.listdir(self.runs_dir)
        except OSError:
            ents = []
        ents.sort()
        for name in ents:
            if name.endswith(".log") and valid_run_id(name[:-4]):
                sz = self._size_of(self.runs_dir + "/" + name)
                if sz >= 0:
                    names.append((name[:-4], sz))
        self._names = names
        self._off = 0
        self._jtag = tag
        self._job = _J_LIST

    def _run_file(self, tag, args, pos):
        # (path, size, pos) of the run named by args[0] with a position args[1] <= size, or None
        # (the error answered). Only /runs/<run id>.log can be named: never the device key.
        rid = self._run_arg(tag, args, 0)
        if rid is None:
            return None
        if pos:
            pos = self._int_arg(tag, args, 1)
            if pos < 0:
                return None
        path = self._path(rid)
        size = self._size_of(path)
        if size < 0:
            self._err(tag, E_NOENT)
            return None
        if pos > size:
            self._err(tag, E_RANGE)
            return None
        return path, size, pos

    def _start_read(self, tag, args):
        n = self._int_arg(tag, args, 2) if len(args) > 2 else 0
        if n < 0:
            return
        r = self._run_file(tag, args, 1)
        if r is None:
            return
        path, size, off = r
        if n == 0 or n > READ_MAX:
            n = READ_MAX
        end = off + n
        if end > size:
            end = size
        self._size = size
        self._off = off
        self._end = end
        self._jtag = tag
        if off == end:
            self._finish_read()
            return
        self._f = open(path, "rb")
        self._f.seek(off)
        self._job = _J_READ

    def _start_hash(self, tag, args):
        r = self._run_file(tag, args, 1)
        if r is None:
            return
        path, size, n = r
        import hashlib
        self._sha = hashlib.sha256()
        self._off = 0
        self._end = n
        self._jtag = tag
        self._f = open(path, "rb")
        self._job = _J_HASH

    def _abort(self, tag, args):
        ctx = self.ctx
        if not ctx.active():
            self._tok = None
            self._err(tag, E_NOTRUN)
            return
        now = self.clock_ms()
        if not args:
            # step 1: hand out a one-time token; nothing happens to the run yet
            r = self._rng() if self._rng is not None else _random30()
            self._tok = b"%08x" % r
            self._tok_ms = now
            self._tok_run = ctx.run_id
            self._send(tag, b"CONFIRM", self._tok + b" " + str(ctx.run_id).encode() + b" %d" % (_TOKEN_MS // 1000))
            return
        tok = self._tok
        self._tok = None                    # one attempt per token
        if (tok is None or args[0] != tok or ticks_diff(now, self._tok_ms) > _TOKEN_MS
                or self._tok_run != ctx.run_id):
            self._err(tag, E_TOKEN)
            return
        ctx.abort()
        self._send(tag, b"OK", json.dumps({"aborted": ctx.run_id}).encode())

    # ---------------------------------------------------------------- transfers (one step per poll)
    def _cancel(self):
        if self._f is not None:
            try:
                self._f.close()
            except OSError:
                pass
            self._f = None
        self._job = _J_NONE
        self._sha = None
        self._names = None

    def _job_step(self):
        try:
            if self._job == _J_READ:
                self._read_step()
            elif self._job == _J_HASH:
                self._hash_step()
            else:
                self._list_step()
        except OSError:
            tag = self._jtag
            self._cancel()
            self._err(tag, E_IO)

    def _list_step(self):
        names = self._names
        if names is None:
            return
        i = self._off
        k = 0
        while i < len(names) and k < _LIST_PER_POLL:
            rid, sz = names[i]
            flag = b"A" if (rid == self.ctx.run_id and self.ctx.active()) else b"C"
            self._send(self._jtag, b"L", rid.encode() + b" %d " % sz + flag)
            i += 1
            k += 1
        self._off = i
        if i >= len(names):
            tag = self._jtag
            self._cancel()
            self._send(tag, b"OK", b"%d" % len(names))

    def _read_step(self):
        f = self._f
        if f is None:
            return
        want = self._end - self._off
        if want > self.chunk:
            want = self.chunk
        k = f.readinto(self._mv[0:want])
        if not k:
            # the file is shorter than it was (cannot happen to an append-only log)
            tag = self._jtag
            self._cancel()
            self._err(tag, E_IO)
            return
        line = self._line
        # "@TAG D OFFSET " + base64 + "*CRC\n"
        j = 0
        line[j] = 0x40
        j += 1
        for c in self._jtag:
            line[j] = c
            j += 1
        hdr = b" D %d " % self._off
        for c in hdr:
            line[j] = c
            j += 1
        j = b64_into(self._buf, k, line, j)
        crc = crc32(memoryview(line)[1:j])
        tail = b"*%08x\n" % crc
        for c in tail:
            line[j] = c
            j += 1
        self.tx(memoryview(line)[0:j])
        self._off += k
        self.bytes_served += k
        if self._off >= self._end:
            self._finish_read()

    def _finish_read(self):
        tag = self._jtag
        end = self._off if self._job == _J_READ else self._end
        size = self._size
        self._cancel()
        self._send(tag, b"E", b"%d %d" % (end, size))

    def _hash_step(self):
        f = self._f
        sha = self._sha
        if f is None or sha is None:
            return
        want = self._end - self._off
        if want > self.hash_step:
            want = self.hash_step
        if want > 0:
            k = f.readinto(self._mv[0:want])
            if not k:
                tag = self._jtag
                self._cancel()
                self._err(tag, E_IO)
                return
            sha.update(self._mv[0:k])
            self._off += k
        if self._off >= self._end:
            tag = self._jtag
            digest = binascii.hexlify(sha.digest())
            n = self._end
            self._cancel()
            self._send(tag, b"H", b"%d " % n + digest)


def _random30():
    import random
    return random.getrandbits(30)


def request_line(tag, cmd, *args):
    """A request line as the host sends it (used by tests; the host has its own copy)."""
    body = b" ".join([tag, cmd] + list(args))
    return b"#@" + body + b"*%08x\n" % crc32(body)


def parse_response(line):
    """(tag, kind, fields) of a response line, or None when it is not a valid response."""
    line = line.rstrip(b"\r\n")
    if len(line) < 12 or line[0:1] != b"@" or line[-9:-8] != b"*":
        return None
    body = line[1:-9]
    try:
        want = int(line[-8:], 16)
    except ValueError:
        return None
    if crc32(body) != want:
        return None
    words = body.split(b" ")
    if len(words) < 2:
        return None
    return words[0], words[1], words[2:]
