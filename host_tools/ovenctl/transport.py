"""The serial port under the device link, and the errors every layer of the link raises.

Contract: `Port(path)` opens the port exclusively (LinkError if it cannot); every read takes a
monotonic deadline and returns None when it passes, never blocking longer; bytes read but not yet
consumed stay in `Port.buf` (the layers above parse from it); rx_bytes / tx_bytes count the traffic.
Tests subclass Port and override write() and _fill() to put a fake device on the other end.
"""
import select
import time
import zlib


class LinkError(Exception):
    """The device did not answer as expected (transport or protocol failure)."""


class DeviceError(LinkError):
    """The device answered with an error (code and name: docs/PROTOCOL.md)."""

    def __init__(self, code, name, msg=""):
        super().__init__(msg or "device error %d %s" % (code, name))
        self.code = code
        self.name = name


def crc32(b):
    """CRC-32 as both framings carry it (the run protocol's lines, the raw REPL's chunks)."""
    return zlib.crc32(b) & 0xFFFFFFFF


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
