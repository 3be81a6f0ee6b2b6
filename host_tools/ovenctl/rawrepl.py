"""The idle device's raw REPL (Ctrl-A, as mpremote uses it) and a fast file reader on it.

Contract: `RawRepl(port).enter()` / `exit()` bracket a session; `exec(code)` returns the command's
stdout or raises LinkError (DeviceError NOENT for a missing file) with the device's last traceback
line. The reader (`read`) streams up to a whole file with one exec in RAW_CHUNK chunks, each an ASCII
header "offset length crc32" plus the raw bytes with two bytes escaped (0x10 -> 10 10,
0x04 -> 10 05; docs/PROTOCOL.md section 7), and hands each CRC-checked chunk to
on_chunk(offset, data) in order; `sha256` hashes a whole file on the device.
"""
import re
import time

from ovenctl.transport import DeviceError, LinkError, crc32

RUNS_DIR = "/runs"          # the device's run-log folder
RAW_CHUNK = 4096            # reader: bytes per chunk
REPL_BANNER = b'Type "help()" for more information.'    # the friendly REPL's greeting

# Defined once per session on the device (MicroPython): read, hash and list files there. Named
# _ovenctl_* so that they cannot clash with anything a user left in the REPL's globals.
_DEVICE_HELPERS = b"""import os,sys,binascii,hashlib
def _ovenctl_read(path,off,n,chunk):
 w=getattr(sys.stdout,'buffer',sys.stdout).write
 f=open(path,'rb')
 try:
  f.seek(off)
  while n>0:
   b=f.read(chunk if chunk<n else n)
   if not b:break
   k=len(b)
   w(b'%d %d %x\\n'%(off,k,binascii.crc32(b)&0xffffffff))
   w(b.replace(b'\\x10',b'\\x10\\x10').replace(b'\\x04',b'\\x10\\x05'))
   off+=k;n-=k
  w(b'. %d\\n'%off)
 finally:
  f.close()
def _ovenctl_sha256(path):
 h=hashlib.sha256();f=open(path,'rb')
 try:
  while 1:
   b=f.read(4096)
   if not b:break
   h.update(b)
 finally:
  f.close()
 print(binascii.hexlify(h.digest()).decode(),os.stat(path)[6])
def _ovenctl_list_runs(d):
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
            self.exec(_DEVICE_HELPERS)
            self._setup = True

    def list_runs(self, runs_dir=RUNS_DIR):
        self.setup()
        out = self.exec("_ovenctl_list_runs(%r)" % runs_dir)
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
        out = self.exec("_ovenctl_sha256(%r)" % path, timeout_s=max(self.timeout_s, 60)).decode().split()
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
        self._start("_ovenctl_read(%r,%d,%d,%d)" % (path, offset, length, chunk))
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

