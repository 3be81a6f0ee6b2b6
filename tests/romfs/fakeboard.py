"""A fake MicroPython board on a pseudo-terminal for `ovenctl deploy` and the real `mpremote`:
the REPL protocol (friendly REPL with echo, raw REPL, raw-paste refused, soft reset) is played
here, and every command the host sends to the raw REPL runs in the real MicroPython unix port
(tests/romfs/fakeboard_dev.py) with a FIXED heap (`-X heapsize`), the board's sys.platform, the
flash in a host directory and, optionally, a ROMFS partition (vfs.rom_ioctl) in a host file.

    b = FakeBoard(flash_dir, platform="rp2", heap_kb=256, rom_kb=128).start()
    ... b.port is "/dev/pts/N" ...
    b.stop()

Unlike the virtual device (`ovenctl vdev`, the WebAssembly port), it has a heap of the size a
board has and a ROMFS partition; it runs no firmware (main.py is not run at a soft reset).
"""
import os
import select
import shutil
import subprocess
import sys
import threading
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
DEV = os.path.join(HERE, "fakeboard_dev.py")
END = b"\x00\xffEND\xff\x00"
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
BANNER = b'MicroPython v1.29.0 on 2026-01-01; fake board (unix port)\r\nType "help()" for more information.\r\n'


def micropython():
    p = os.path.join(os.path.dirname(sys.executable), "micropython")
    return p if os.path.exists(p) else shutil.which("micropython")


class FakeBoard:
    def __init__(self, flash_dir, platform="rp2", heap_kb=256, rom_kb=0):
        self.flash_dir = os.path.abspath(str(flash_dir))
        self.platform = platform
        self.heap_kb = heap_kb
        self.rom_file = None
        os.makedirs(self.flash_dir, exist_ok=True)
        if rom_kb:
            # outside the flash directory: the partition is not part of the filesystem
            self.rom_file = self.flash_dir.rstrip("/") + ".rompart"
            with open(self.rom_file, "wb") as f:
                f.write(b"\xff" * (rom_kb * 1024))
        self.proc = None
        self.port = None
        self.execs = 0                  # raw REPL commands run (what the host did on the board)
        self.errors = []
        self._stop = threading.Event()

    # ------------------------------------------------------------------------------ lifecycle
    def start(self):
        master, slave = os.openpty()
        tty.setraw(slave)
        self._master, self._slave = master, slave
        self.port = os.ttyname(slave)
        self._boot()
        self._thread = threading.Thread(target=self._loop, name="fakeboard", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if getattr(self, "_thread", None):
            self._thread.join(5)
        self._kill()
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def rom_image(self):
        with open(self.rom_file, "rb") as f:
            return f.read()

    # ------------------------------------------------------------------------------ the MicroPython side
    def _boot(self):
        self._kill()
        self.proc = subprocess.Popen([micropython(), "-X", "heapsize=%dK" % self.heap_kb, DEV, self.flash_dir,
                                      self.rom_file or "-", self.platform],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = self._until_end()
        if out is None:
            raise RuntimeError("fake board did not start: %s" % self.proc.stderr.read().decode()[-1000:])

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def _until_end(self):
        """The driver's output up to END (None if it died)."""
        data = b""
        while not data.endswith(END):
            b = self.proc.stdout.read1(65536)
            if not b:
                return None
            data += b
        return data[:-len(END)]

    def _run(self, code):
        self.execs += 1
        self.proc.stdin.write(b"%d\n" % len(code) + code)
        self.proc.stdin.flush()
        out = self._until_end()
        if out is None:         # the interpreter died (e.g. a fatal error): a board would reset
            err = self.proc.stderr.read().decode(errors="replace")
            self.errors.append(err)
            self._boot()
            return b"\x04fake board: the interpreter stopped: %s\x04>" % err[-300:].encode()
        return out

    # ------------------------------------------------------------------------------ the REPL
    def _send(self, data):
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._master, view)
                view = view[n:]
            except BlockingIOError:
                select.select([], [self._master], [], 0.1)

    def _loop(self):
        raw = False
        line = bytearray()
        while not self._stop.is_set():
            r, _, _ = select.select([self._master], [], [], 0.1)
            if not r:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                return
            for c in data:
                if raw:
                    raw, line = self._raw_char(c, line)
                else:
                    raw, line = self._friendly_char(c, line)

    def _friendly_char(self, c, line):
        if c == 1:
            self._send(b"\r\n" + RAW_BANNER + b">")
            return True, bytearray()
        if c == 2:
            self._send(b"\r\n" + BANNER + b">>> ")
        elif c == 3:
            self._send(b"\r\n>>> ")
            line = bytearray()
        elif c == 4 and not line:
            self._boot()
            self._send(b"MPY: soft reboot\r\n" + BANNER + b">>> ")
        elif c in (10, 13):
            # a friendly line is only echoed (the serial tools send comments here)
            self._send(b"\r\n>>> ")
            line = bytearray()
        else:
            self._send(bytes([c]))
            line.append(c)
        return False, line

    def _raw_char(self, c, line):
        if c == 1:
            self._send(b"\r\n" + RAW_BANNER + b">")
            return True, bytearray()
        if c == 2:
            self._send(b"\r\n" + BANNER + b">>> ")
            return False, bytearray()
        if c == 3:
            return True, bytearray()
        if c == 4:
            if not line:
                self._send(b"OK\r\nMPY: soft reboot\r\n")
                self._boot()
                self._send(RAW_BANNER + b">")
            else:
                self._send(b"OK")
                self._send(self._run(bytes(line)))
            return True, bytearray()
        line.append(c)
        if line == b"\x05A\x01":          # raw-paste mode: refused, as a board without it
            self._send(b"R\x00")
            return True, bytearray()
        return True, line
