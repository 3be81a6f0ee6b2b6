"""Host side of the device's serial link (docs/PROTOCOL.md).

- `Port`: a serial port opened with pyserial (exclusive), with deadline-bounded reads.
- `probe(port)`: is the device running a test (it answers the run protocol) or idle (REPL)?
- `RunLink`: the run protocol: PING, STATUS, LIST, READ (base64 lines, CRC-32 each), HASH
  (sha256 of a prefix, computed on the device), ABORT with confirmation, STOP.
- `RawRepl`: the idle device's raw REPL with a fast file reader: one exec streams up to 64 KB in
  4 KB chunks, each chunk an ASCII header "offset length crc32" plus the raw bytes with two bytes
  escaped (0x10 -> 10 10, 0x04 -> 10 05), so about 1.01 wire bytes per file byte; sha256 of the
  whole file is computed on the device.
- `pull(...)`: copies run logs, resumable (<name>.log.part + <name>.log.part.json with the
  verified offset), verified per chunk and by whole-file sha256, deleting on the device only
  when asked and only after a verified copy.
"""
import hashlib
import json
import os
import re
import select
import sys
import time
import zlib

RUNS_DIR = "/runs"
RAW_CHUNK = 4096            # raw REPL reader: bytes per chunk
RAW_PER_EXEC = 65536        # raw REPL reader: bytes per exec (bounds what a killed pull leaves queued)
RUN_READ = 65536            # run protocol: bytes per READ request
LINE_TIMEOUT_S = 5.0        # run protocol: a live device answers within one control tick (1 s)
PROBE_TIMEOUT_S = 3.0
SIDE_EVERY = 65536          # sidecar (verified offset) written at least every this many bytes

ERR_NAMES = {1: "BADCRC", 2: "TOOLONG", 3: "UNKNOWN", 4: "BADARG", 5: "NOENT", 6: "RANGE", 7: "NOTRUN",
             8: "BADTOKEN", 9: "IO"}


REPL_BANNER = b'Type "help()" for more information.'


class LinkError(Exception):
    """The device did not answer as expected (transport or protocol failure)."""


class DeviceError(LinkError):
    """The device answered with an error."""

    def __init__(self, code, name, msg=""):
        super().__init__(msg or "device error %d %s" % (code, name))
        self.code = code
        self.name = name


def valid_run_id(s):
    return bool(re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,39}", s or ""))


def crc32(b):
    return zlib.crc32(b) & 0xFFFFFFFF


# ------------------------------------------------------------------------------------------ port
class Port:
    """A serial port with bounded reads. Counts the bytes it moves (rx: from the device)."""

    def __init__(self, path, baudrate=115200):
        import serial
        self.path = path
        try:
            self.s = serial.Serial(path, baudrate=baudrate, timeout=0, write_timeout=10, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as e:
            raise LinkError("cannot open %s: %s" % (path, e))
        self.buf = bytearray()
        self.rx_bytes = 0
        self.tx_bytes = 0

    def close(self):
        try:
            self.s.close()
        except Exception:       # noqa: BLE001
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def write(self, data):
        self.s.write(data)
        self.s.flush()
        self.tx_bytes += len(data)

    def _fill(self, timeout):
        """Read whatever arrives within timeout (seconds) into buf; returns the count."""
        try:
            fd = self.s.fileno()
        except Exception:       # noqa: BLE001
            fd = None
        if fd is not None:
            r, _, _ = select.select([fd], [], [], max(0.0, timeout))
            if not r:
                return 0
        data = self.s.read(65536)
        if not data and fd is None:
            time.sleep(min(timeout, 0.005))
        if data:
            self.buf += data
            self.rx_bytes += len(data)
        return len(data)

    def drain(self, quiet_s=0.05, max_s=2.0):
        """Discard input until the line has been quiet for quiet_s."""
        end = time.monotonic() + max_s
        self.buf.clear()
        while time.monotonic() < end:
            if not self._fill(quiet_s):
                break
            self.buf.clear()
        self.buf.clear()

    def read_line(self, deadline):
        """One line (without the trailing newline), or None at the deadline."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 1]
                return line
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._fill(min(left, 0.5))

    def read_until(self, marker, deadline):
        """Bytes up to and including marker, or None at the deadline (buf is kept)."""
        start = 0
        while True:
            i = self.buf.find(marker, start)
            if i >= 0:
                out = bytes(self.buf[:i + len(marker)])
                del self.buf[:i + len(marker)]
                return out
            start = max(0, len(self.buf) - len(marker) + 1)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._fill(min(left, 0.5))

    def read_exact(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._fill(min(left, 0.5))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


# ------------------------------------------------------------------------------------------ run protocol
def request_line(tag, cmd, *args):
    body = " ".join([tag, cmd] + [str(a) for a in args]).encode()
    return b"#@" + body + b"*%08x\r\n" % crc32(body)


def parse_response(line):
    """(tag, kind, [fields]) of a valid response line, else None."""
    line = line.rstrip(b"\r")
    i = line.find(b"@")
    if i < 0:
        return None
    line = line[i:]
    if len(line) < 12 or line[-9:-8] != b"*":
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
    return words[0].decode("ascii", "replace"), words[1].decode("ascii", "replace"), words[2:]


class RunLink:
    """Client of the run protocol on an open Port."""

    TERMINAL = ("OK", "ERR", "E", "H", "CONFIRM")

    def __init__(self, port, timeout_s=LINE_TIMEOUT_S):
        self.port = port
        self.timeout_s = timeout_s
        self._n = 0
        self.bad_lines = 0

    def _tag(self):
        self._n += 1
        return "h%d" % (self._n % 10000000)

    def send(self, cmd, *args):
        tag = self._tag()
        self.port.write(request_line(tag, cmd, *args))
        return tag

    def responses(self, tag, timeout_s=None):
        """Response lines for tag until a terminal kind; each (kind, fields)."""
        t = self.timeout_s if timeout_s is None else timeout_s
        while True:
            line = self.port.read_line(time.monotonic() + t)
            if line is None:
                raise LinkError("no answer from the device within %.1f s" % t)
            r = parse_response(line)
            if r is None:
                if REPL_BANNER in line:
                    raise LinkError("the test ended: the device is back at the REPL")
                if line.strip().startswith(b"@" + tag.encode() + b" "):
                    self.bad_lines += 1
                    raise LinkError("corrupted response line (CRC mismatch)")
                continue                    # console noise, or an old tag's line
            rtag, kind, fields = r
            if rtag != tag:
                continue
            if kind == "ERR":
                code = int(fields[0]) if fields and fields[0].isdigit() else 0
                raise DeviceError(code, ERR_NAMES.get(code, "?"), "device: %s" % b" ".join(fields).decode("ascii", "replace"))
            yield kind, fields
            if kind in self.TERMINAL:
                return

    def call(self, cmd, *args, timeout_s=None):
        tag = self.send(cmd, *args)
        last = None
        for kind, fields in self.responses(tag, timeout_s):
            last = (kind, fields)
        return last

    def ping(self):
        kind, fields = self.call("PING")
        return json.loads(b" ".join(fields))

    def status(self):
        kind, fields = self.call("STATUS")
        return json.loads(b" ".join(fields))

    def list_runs(self):
        """[{"run": id, "size": n, "active": bool}]"""
        tag = self.send("LIST")
        out = []
        for kind, fields in self.responses(tag):
            if kind == "L" and len(fields) >= 3:
                out.append({"run": fields[0].decode(), "size": int(fields[1]), "active": fields[2] == b"A"})
        return out

    def read(self, run_id, offset, length, on_chunk):
        """Stream [offset, offset+length) (length 0: to the current end); on_chunk(off, data)
        for each verified chunk, in order. Returns (end_offset, size_when_started)."""
        import binascii
        tag = self.send("READ", run_id, offset, length)
        pos = offset
        try:
            for kind, fields in self.responses(tag):
                if kind == "D":
                    off = int(fields[0])
                    if off != pos:
                        raise LinkError("chunk at offset %d, expected %d" % (off, pos))
                    data = binascii.a2b_base64(fields[1])
                    on_chunk(off, data)
                    pos += len(data)
                elif kind == "E":
                    end, size = int(fields[0]), int(fields[1])
                    if end != pos:
                        raise LinkError("transfer ended at %d, received up to %d" % (end, pos))
                    return end, size
        except (LinkError, ValueError, binascii.Error):
            self.stop()
            raise
        raise LinkError("transfer ended without an end line")

    def hash(self, run_id, length):
        # the device hashes 2 KB per control tick (1 s on a board)
        kind, fields = self.call("HASH", run_id, length, timeout_s=self.timeout_s + length / 2048.0 * 1.2)
        if kind != "H" or int(fields[0]) != length:
            raise LinkError("unexpected HASH answer")
        return fields[1].decode()

    def abort_request(self):
        """Step 1: returns (token, run_id, valid_s); nothing happens to the run yet."""
        kind, fields = self.call("ABORT")
        return fields[0].decode(), fields[1].decode(), int(fields[2])

    def abort_confirm(self, token):
        kind, fields = self.call("ABORT", token)
        return json.loads(b" ".join(fields))

    def stop(self):
        """End any transfer in progress; drain its lines."""
        try:
            self.call("STOP")
        except LinkError:
            pass


# ------------------------------------------------------------------------------------------ raw REPL
_RAW_SETUP = b"""import os,sys,binascii,hashlib
def _oR(p,o,n,c):
 w=getattr(sys.stdout,'buffer',sys.stdout).write
 f=open(p,'rb')
 try:
  f.seek(o)
  while n>0:
   b=f.read(c if c<n else n)
   if not b:break
   k=len(b)
   w(b'%d %d %x\\n'%(o,k,binascii.crc32(b)&0xffffffff))
   w(b.replace(b'\\x10',b'\\x10\\x10').replace(b'\\x04',b'\\x10\\x05'))
   o+=k;n-=k
  w(b'. %d\\n'%o)
 finally:
  f.close()
def _oH(p):
 h=hashlib.sha256();f=open(p,'rb')
 try:
  while 1:
   b=f.read(4096)
   if not b:break
   h.update(b)
 finally:
  f.close()
 print(binascii.hexlify(h.digest()).decode(),os.stat(p)[6])
def _oL(d):
 try:
  l=os.listdir(d)
 except OSError:
  l=[]
 for x in l:
  if x.endswith('.log'):print(x[:-4],os.stat(d+'/'+x)[6])
"""


def unstuff(buf, start, need):
    """Decode `need` bytes of the escaped stream buf[start:]: (data, end) or None if incomplete."""
    out = bytearray()
    i = start
    n = len(buf)
    while len(out) < need:
        j = buf.find(b"\x10", i, min(n, i + (need - len(out))))
        if j < 0:
            take = min(need - len(out), n - i)
            out += buf[i:i + take]
            i += take
            if len(out) < need:
                return None
            break
        out += buf[i:j]
        if j + 1 >= n:
            return None
        c = buf[j + 1]
        if c == 0x10:
            out.append(0x10)
        elif c == 0x05:
            out.append(0x04)
        else:
            raise LinkError("bad escape 10 %02x in the transfer" % c)
        i = j + 2
    return bytes(out), i


class RawRepl:
    """The idle device's raw REPL (Ctrl-A), as mpremote uses it, plus the fast reader."""

    def __init__(self, port, timeout_s=10.0):
        self.port = port
        self.timeout_s = timeout_s
        self.ready = False
        self._setup = False

    def enter(self):
        p = self.port
        p.write(b"\r\x03\x03")
        p.drain(0.05, 1.0)
        p.write(b"\r\x01")
        if p.read_until(b"raw REPL; CTRL-B to exit\r\n>", time.monotonic() + self.timeout_s) is None:
            raise LinkError("could not enter the raw REPL")
        self.ready = True

    def exit(self):
        if self.ready:
            try:
                self.port.write(b"\r\x02")
            finally:
                self.ready = False

    def _start(self, code):
        p = self.port
        if not isinstance(code, bytes):
            code = code.encode()
        p.write(code + b"\x04")
        ok = p.read_exact(2, time.monotonic() + self.timeout_s)
        if ok != b"OK":
            raise LinkError("raw REPL did not accept the command (%r)" % ok)

    def _finish(self, deadline):
        """After the stdout part: read stderr and the prompt; raise on an exception."""
        err = self.port.read_until(b"\x04", deadline)
        prompt = self.port.read_exact(1, deadline)
        if err is None or prompt != b">":
            raise LinkError("raw REPL: no end of command")
        err = err[:-1]
        if err.strip():
            text = err.decode("utf-8", "replace").strip()
            m = re.search(r"OSError: \[?(?:Errno )?(\d+)", text)
            if m and int(m.group(1)) == 2:
                raise DeviceError(5, "NOENT", "no such file on the device")
            raise LinkError("device: " + text.splitlines()[-1])

    def exec(self, code, timeout_s=None):
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        self._start(code)
        out = self.port.read_until(b"\x04", deadline)
        if out is None:
            raise LinkError("raw REPL: command timed out")
        self._finish(deadline)
        return out[:-1]

    def setup(self):
        if not self._setup:
            self.exec(_RAW_SETUP)
            self._setup = True

    def list_runs(self, runs_dir=RUNS_DIR):
        self.setup()
        out = self.exec("_oL(%r)" % runs_dir)
        runs = []
        for line in out.decode("utf-8", "replace").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                runs.append({"run": parts[0], "size": int(parts[1]), "active": False})
        runs.sort(key=lambda r: r["run"])
        return runs

    def sha256(self, path):
        """(hex digest, size) of the whole file, computed on the device."""
        self.setup()
        out = self.exec("_oH(%r)" % path, timeout_s=max(self.timeout_s, 60)).decode().split()
        if len(out) != 2:
            raise LinkError("unexpected sha256 answer %r" % out)
        return out[0], int(out[1])

    def remove(self, path):
        self.exec("import os\nos.remove(%r)" % path)

    def read(self, path, offset, length, on_chunk, chunk=RAW_CHUNK):
        """Stream [offset, offset+length) with one exec; on_chunk(off, data) per verified chunk.
        Returns the end offset."""
        self.setup()
        p = self.port
        deadline_s = max(self.timeout_s, 10 + length / 20000.0)
        deadline = time.monotonic() + deadline_s
        self._start("_oR(%r,%d,%d,%d)" % (path, offset, length, chunk))
        pos = offset
        buf = p.buf
        while True:
            # header line "off len crc" or ". end"
            while True:
                i = buf.find(b"\n")
                j = buf.find(b"\x04", 0, i if i >= 0 else len(buf))
                if j >= 0:
                    # stdout ended before the transfer did: the command failed, a traceback follows
                    p.read_until(b"\x04", deadline)
                    self._finish(deadline)
                    raise LinkError("raw REPL read ended early")
                if i >= 0:
                    break
                if time.monotonic() > deadline:
                    raise LinkError("raw REPL read timed out")
                p._fill(0.5)
            hdr = bytes(buf[:i]).split()
            if hdr and hdr[0] == b".":
                del buf[:i + 1]
                end = int(hdr[1])
                tail = p.read_until(b"\x04", deadline)
                if tail is None:
                    raise LinkError("raw REPL: no end of output")
                self._finish(deadline)
                if end != pos:
                    raise LinkError("transfer ended at %d, received up to %d" % (end, pos))
                return end
            if len(hdr) != 3:
                raise LinkError("bad chunk header %r" % bytes(buf[:i])[:80])
            off, n, crc = int(hdr[0]), int(hdr[1]), int(hdr[2], 16)
            if off != pos:
                raise LinkError("chunk at offset %d, expected %d" % (off, pos))
            while True:
                r = unstuff(buf, i + 1, n)
                if r is not None:
                    break
                if time.monotonic() > deadline:
                    raise LinkError("raw REPL read timed out")
                p._fill(min(1.0, max(0.0, deadline - time.monotonic())))
            data, end = r
            if crc32(data) != crc:
                raise LinkError("chunk CRC mismatch at offset %d" % off)
            del buf[:end]
            on_chunk(off, data)
            pos += n


# ------------------------------------------------------------------------------------------ probe
def probe(port, timeout_s=PROBE_TIMEOUT_S):
    """("run", ping_dict) when the device answers the run protocol, ("idle", None) when it is at
    the REPL. The probe is a request line starting with '#': a comment to a friendly REPL, which
    echoes it (that is how idle is recognised without waiting)."""
    # Ctrl-B first: a device left in the raw REPL (e.g. by a killed tool) returns to the friendly
    # REPL; a friendly REPL reprints its banner; a running test's link ignores the byte.
    port.write(b"\x02")
    port.drain(0.08, 2.0)
    link = RunLink(port)
    tag = link.send("PING")
    echo = ("#@%s PING" % tag).encode()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = port.read_line(deadline)
        if line is None:
            break
        if echo in line:
            port.drain(0.05, 0.5)
            return "idle", None
        r = parse_response(line)
        if r and r[0] == tag and r[1] == "OK":
            try:
                info = json.loads(b" ".join(r[2]))
            except ValueError:
                info = {}
            return "run", info
    # no echo and no answer: a device left in raw REPL mode, or a busy/unknown one
    raw = RawRepl(port, timeout_s=timeout_s)
    try:
        raw.enter()
    except LinkError:
        raise LinkError("no answer from the device on %s (not running the firmware, or not a MicroPython board)"
                        % port.path)
    raw.exit()
    return "idle", None


# ------------------------------------------------------------------------------------------ pull
class Progress:
    def __init__(self, enabled, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.name = ""
        self.total = 0
        self.t0 = time.monotonic()
        self.start_off = 0

    def begin(self, name, done, total):
        self.name, self.total, self.start_off, self.t0 = name, total, done, time.monotonic()
        self.update(done)

    def update(self, done):
        if not self.enabled:
            return
        total = max(self.total, done, 1)
        frac = done / total
        width = 30
        fill = int(frac * width)
        dt = time.monotonic() - self.t0
        rate = (done - self.start_off) / dt if dt > 0 else 0
        self.stream.write("\r%-16s [%s%s] %5.1f%% %8.1f / %.1f kB %7.1f kB/s" % (
            self.name[:16], "#" * fill, "." * (width - fill), 100 * frac, done / 1000, total / 1000, rate / 1000))
        self.stream.flush()

    def end(self):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


class PullResult(dict):
    pass


def _sidecar(path):
    return path + ".json"


def _load_partial(part, run_id):
    """Verified offset of a partial copy (truncating the file to it), 0 without one."""
    side = _sidecar(part)
    if not (os.path.exists(part) and os.path.exists(side)):
        return 0
    try:
        with open(side) as f:
            st = json.load(f)
        off = int(st.get("offset", 0))
        if st.get("run") != run_id or off < 0:
            return 0
    except (OSError, ValueError, TypeError):
        return 0
    size = os.path.getsize(part)
    if size < off:
        return 0
    with open(part, "r+b") as f:
        f.truncate(off)
    return off


def _save_sidecar(part, run_id, offset, device_size, port):
    side = _sidecar(part)
    tmp = side + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"run": run_id, "offset": offset, "device_size": device_size, "port": port,
                   "updated": time.time()}, f)
    os.replace(tmp, side)


class _Sink:
    """The local partial file: appends verified chunks, fsyncs and records the verified offset."""

    def __init__(self, part, run_id, offset, port_path, progress):
        self.part = part
        self.run_id = run_id
        self.off = offset
        self.port_path = port_path
        self.progress = progress
        self.device_size = 0
        self.f = open(part, "r+b" if os.path.exists(part) else "w+b")
        self.f.seek(offset)
        self.f.truncate(offset)
        self._synced = offset

    def __call__(self, off, data):
        if off != self.off:
            raise LinkError("out-of-order chunk at %d (have %d)" % (off, self.off))
        self.f.write(data)
        self.off += len(data)
        if self.off - self._synced >= SIDE_EVERY:
            self.checkpoint()
        self.progress.update(self.off)

    def checkpoint(self):
        self.f.flush()
        os.fsync(self.f.fileno())
        self._synced = self.off
        _save_sidecar(self.part, self.run_id, self.off, self.device_size, self.port_path)

    def sha256(self):
        self.f.flush()
        h = hashlib.sha256()
        self.f.seek(0)
        while True:
            b = self.f.read(1 << 20)
            if not b:
                break
            h.update(b)
        self.f.seek(self.off)
        return h.hexdigest()

    def restart(self):
        self.f.seek(0)
        self.f.truncate(0)
        self.off = 0
        self._synced = 0
        _save_sidecar(self.part, self.run_id, 0, self.device_size, self.port_path)

    def close(self):
        self.f.close()


def _file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def pull(port_path, out_dir, run=None, all_runs=False, delete_after=False, follow=False, progress=None,
         log=None, runs_dir=RUNS_DIR, follow_poll_s=1.0, max_wait_s=None):
    """Copy run logs from the device to out_dir. Returns a list of PullResult dicts:
    run, path, size, sha256, state ("complete" | "partial" | "up to date"), mode ("run" | "idle" |
    "mixed"), resumed_from, deleted."""
    log = log or (lambda msg: None)
    progress = progress or Progress(False)
    os.makedirs(out_dir, exist_ok=True)
    results = []
    t_end = time.monotonic() + max_wait_s if max_wait_s else None
    with Port(port_path) as port:
        mode, info = probe(port)
        runs = _list(port, mode, runs_dir)
        if run is not None:
            sel = [r for r in runs if r["run"] == run]
            if not sel:
                raise DeviceError(5, "NOENT", "no run %r on the device (runs: %s)" % (
                    run, ", ".join(r["run"] for r in runs) or "none"))
        elif all_runs:
            sel = runs
        else:
            sel = runs[-1:]
            if not sel:
                raise DeviceError(5, "NOENT", "no run logs on the device")
        for r in sel:
            res = _pull_one(port, r["run"], out_dir, runs_dir, follow, progress, log, t_end, follow_poll_s)
            if delete_after and res["state"] in ("complete", "up to date"):
                res["deleted"] = _delete(port, r["run"], runs_dir, res["sha256"], log)
            results.append(res)
    return results


def _list(port, mode, runs_dir):
    if mode == "run":
        return RunLink(port).list_runs()
    raw = RawRepl(port)
    raw.enter()
    try:
        return raw.list_runs(runs_dir)
    finally:
        raw.exit()


def _delete(port, run_id, runs_dir, sha, log):
    mode, _ = probe(port)
    if mode != "idle":
        log("%s: not deleted on the device: a test is running (pull --delete-after again when idle)" % run_id)
        return False
    raw = RawRepl(port)
    raw.enter()
    try:
        path = "%s/%s.log" % (runs_dir, run_id)
        dev_sha, _ = raw.sha256(path)
        if dev_sha != sha:
            log("%s: not deleted: the device file changed since the copy" % run_id)
            return False
        raw.remove(path)
        log("%s: deleted on the device after a verified copy" % run_id)
        return True
    finally:
        raw.exit()


def _pull_one(port, run_id, out_dir, runs_dir, follow, progress, log, t_end, follow_poll_s=1.0):
    final = os.path.join(out_dir, run_id + ".log")
    part = final + ".part"
    dev_path = "%s/%s.log" % (runs_dir, run_id)
    offset = _load_partial(part, run_id)
    resumed_from = offset
    if offset:
        log("%s: resuming at offset %d (verified partial copy)" % (run_id, offset))
    if not offset and os.path.exists(final):
        # already pulled? compare with the device before copying again
        mode, _ = probe(port)
        local_size = os.path.getsize(final)
        dev_sha = None
        if mode == "idle":
            raw = RawRepl(port)
            raw.enter()
            try:
                dev_sha, dev_size = raw.sha256(dev_path)
            finally:
                raw.exit()
        else:
            link = RunLink(port)
            entry = [r for r in link.list_runs() if r["run"] == run_id]
            if entry and not entry[0]["active"] and entry[0]["size"] == local_size:
                dev_sha, dev_size = link.hash(run_id, local_size), local_size
        if dev_sha is not None and dev_sha == _file_sha256(final):
            log("%s: up to date (%d bytes, sha256 %s)" % (run_id, dev_size, dev_sha[:16]))
            return PullResult(run=run_id, path=final, size=dev_size, sha256=dev_sha, state="up to date",
                              mode=mode, resumed_from=0, deleted=False)
    sink = _Sink(part, run_id, offset, port.path, progress)
    modes = set()
    restarted = False
    failures = 0
    try:
        while True:
            mode, _ = probe(port)
            modes.add(mode)
            try:
                if mode == "run":
                    # while following a growing log, chunk CRCs verify each pass; the whole copy is
                    # checked at the end (HASH here, or the idle whole-file sha256)
                    state = _pull_run_mode(port, run_id, sink, progress, verify=not follow)
                else:
                    state = _pull_idle(port, run_id, dev_path, sink, progress)
            except _Mismatch:
                if restarted:
                    raise LinkError("%s: the copy does not match the device twice in a row" % run_id)
                restarted = True
                log("%s: whole-file sha256 mismatch: copying again from the start" % run_id)
                sink.restart()
                continue
            except LinkError as e:
                failures += 1
                if mode == "run" and not isinstance(e, DeviceError) and failures <= 5:
                    # the test may have just ended (the device dropped to the REPL): look again
                    sink.checkpoint()
                    log("%s: %s; probing the device again" % (run_id, e))
                    continue
                raise
            failures = 0
            if state == "complete":
                break
            # the run is still writing this log
            if not follow or (t_end is not None and time.monotonic() > t_end):
                sink.checkpoint()
                progress.end()
                log("%s: test in progress: %d bytes copied and verified so far (partial copy kept in %s; "
                    "pull again to continue, or use --follow)" % (run_id, sink.off, part))
                return PullResult(run=run_id, path=part, size=sink.off, sha256=sink.sha256(), state="partial",
                                  mode="run", resumed_from=resumed_from, deleted=False)
            time.sleep(follow_poll_s)
        sha = sink.sha256()
        size = sink.off
        sink.f.flush()
        os.fsync(sink.f.fileno())
    finally:
        sink.close()
    progress.end()
    os.replace(part, final)
    try:
        os.unlink(_sidecar(part))
    except OSError:
        pass
    return PullResult(run=run_id, path=final, size=size, sha256=sha, state="complete",
                      mode=modes.pop() if len(modes) == 1 else "mixed", resumed_from=resumed_from, deleted=False)


class _Mismatch(LinkError):
    pass


def _pull_run_mode(port, run_id, sink, progress, verify=True):
    """Copy what the device has of run_id through the run protocol; verify the copied prefix by
    sha256 (always for a closed log, for the running test's log when `verify`).
    Returns "complete" (a closed log) or "partial" (the running test's log)."""
    link = RunLink(port)
    entry = [r for r in link.list_runs() if r["run"] == run_id]
    if not entry:
        raise DeviceError(5, "NOENT", "run %s is no longer on the device" % run_id)
    size = entry[0]["size"]
    active = entry[0]["active"]
    sink.device_size = size
    progress.begin(run_id, sink.off, size)
    if sink.off > size:
        raise _Mismatch("local copy longer than the device file")
    while sink.off < size:
        n = min(RUN_READ, size - sink.off)
        link.read(run_id, sink.off, n, sink)
    sink.checkpoint()
    if verify or not active:
        dev = link.hash(run_id, sink.off)
        if dev != sink.sha256():
            raise _Mismatch("sha256 mismatch")
    return "partial" if active else "complete"


def _pull_idle(port, run_id, dev_path, sink, progress):
    raw = RawRepl(port)
    raw.enter()
    try:
        dev_sha, size = raw.sha256(dev_path)
        sink.device_size = size
        progress.begin(run_id, sink.off, size)
        if sink.off > size:
            raise _Mismatch("local copy longer than the device file")
        while sink.off < size:
            n = min(RAW_PER_EXEC, size - sink.off)
            raw.read(dev_path, sink.off, n, sink)
        sink.checkpoint()
        if sink.sha256() != dev_sha:
            raise _Mismatch("sha256 mismatch")
    finally:
        raw.exit()
    return "complete"
