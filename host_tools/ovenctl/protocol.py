"""Client of the run protocol (docs/PROTOCOL.md), which a device speaks while a test runs, and the
probe that tells a running device from an idle one (at its REPL).

Contract: `RunLink(port)` sends CRC-framed request lines with its own tags and returns only the
answers to its own tag (console noise and old tags' lines are skipped); an ERR answer raises
DeviceError, silence past the timeout or a corrupted answer LinkError. `probe(port)` returns
("run", ping dict) or ("idle", None), or raises LinkError when nothing on the port answers.
"""
import json
import re
import time

from ovenctl.rawrepl import REPL_BANNER, RawRepl
from ovenctl.transport import DeviceError, LinkError, crc32

LINE_TIMEOUT_S = 5.0        # a live device answers within one control tick (1 s)
PROBE_TIMEOUT_S = 3.0
ERR_NAMES = {1: "BADCRC", 2: "TOOLONG", 3: "UNKNOWN", 4: "BADARG", 5: "NOENT", 6: "RANGE", 7: "NOTRUN",
             8: "BADTOKEN", 9: "IO"}


def valid_run_id(s):
    return bool(re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,39}", s or ""))


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
        self._tags_sent = 0
        self.bad_lines = 0

    def _tag(self):
        self._tags_sent += 1
        return "h%d" % (self._tags_sent % 10000000)

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

