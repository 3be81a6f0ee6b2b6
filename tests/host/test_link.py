"""Host side of the serial link (host_tools/ovenctl: transport, protocol, rawrepl, pull; through the
serial_link re-exports) without a device: framing against the firmware's own implementation, the
raw-REPL stream decoder, resume bookkeeping, and the host client talking to the real firmware Link
through an in-process loopback port."""
import binascii
import hashlib
import json
import os
import random

import pytest

from oven import link as fw_link                   # firmware/oven/link.py (CPython side of the dual code)
from ovenctl import pull as PL
from ovenctl import serial_link as SL


# ------------------------------------------------------------------------------------------ framing
def test_request_and_response_framing_agree_with_the_firmware():
    host = SL.request_line("h12", "READ", "sim-0001", 0, 768)
    dev = fw_link.request_line(b"h12", b"READ", b"sim-0001", b"0", b"768")
    assert host == dev.replace(b"\n", b"\r\n")
    # a response the firmware builds, parsed by the host
    out = []
    lk = fw_link.Link(fw_link.RxRing(256), out.append, _Ctx(), runs_dir="/nonexistent")
    lk._send(b"h12", b"OK", b'{"a": 1}')
    line = bytes(out[0]).rstrip(b"\n")
    assert SL.parse_response(line) == ("h12", "OK", [b'{"a":', b"1}"])
    assert SL.parse_response(b"noise before " + line) == ("h12", "OK", [b'{"a":', b"1}"])
    for i in range(1, len(line) - 9):
        bad = bytearray(line)
        bad[i] ^= 0x01
        assert SL.parse_response(bytes(bad)) is None, i
    assert SL.parse_response(b">>> ") is None


def test_run_id_validation():
    for ok in ("sim-0001", "a", "run_7.x", "A-b.c_d"):
        assert SL.valid_run_id(ok) and fw_link.valid_run_id(ok)
    for bad in ("", ".hidden", "../x", "a/b", "x" * 41, "sp ace", "semi;colon"):
        assert not SL.valid_run_id(bad) and not fw_link.valid_run_id(bad)


def _stuff(b):
    return b.replace(b"\x10", b"\x10\x10").replace(b"\x04", b"\x10\x05")


def test_unstuff_inverts_the_device_escaping_at_every_split():
    rnd = random.Random(5)
    data = bytes(rnd.choice(b"\x04\x10\x05\x00A") for _ in range(3000))
    enc = _stuff(data)
    assert b"\x04" not in enc
    assert SL.unstuff(bytearray(enc), 0, len(data)) == (data, len(enc))
    # incomplete input: None, never a wrong answer
    for cut in range(0, len(enc), 37):
        r = SL.unstuff(bytearray(enc[:cut]), 0, len(data))
        assert r is None
    # followed by more data: stops exactly at the end of this chunk
    r = SL.unstuff(bytearray(b"xx" + enc + b"7 9 ff\n"), 2, len(data))
    assert r == (data, 2 + len(enc))
    with pytest.raises(SL.LinkError):
        SL.unstuff(bytearray(b"\x10\x07abc"), 0, 3)


# ------------------------------------------------------------------------------------------ fake ports
class _Ctx:
    def __init__(self, run_id="sim-0001", active=True):
        self.run_id = run_id
        self._active = active
        self.aborted = 0

    def active(self):
        return self._active

    def status(self):
        return {"state": "run", "run": self.run_id, "phase": "SOAK", "t_s": 5000, "temp_c_x100": 12003,
                "pressure_pa": 1500, "duty_ppm": 250000, "soak_s": 21600, "soak_in_spec_s": 3000,
                "soak_left_s": 18600, "live_ppm": [2100], "early_fail": [0], "stage": "test",
                "method": "gb-2026", "fault": 0, "verdict": None}

    def info(self):
        return {"fw": "t", "board": "fake"}

    def abort(self):
        self.aborted += 1
        self._active = False


class LoopPort(SL.Port):
    """A Port whose other end is the firmware Link, polled as if once per control tick."""

    def __init__(self, lk, rx):
        self.path = "loop"
        self.buf = bytearray()
        self.rx_bytes = self.tx_bytes = 0
        self.lk = lk
        self.rx = rx
        self.polls = 0
        self.corrupt_at = None

    def write(self, data):
        self.tx_bytes += len(data)
        assert self.rx.put(data) == len(data)

    def _fill(self, timeout):
        self.polls += 1
        out = []
        self.lk.tx = out.append
        self.lk.poll()
        data = b"".join(bytes(x) for x in out)
        if self.corrupt_at is not None and data.startswith(b"@") and b" D " in data:
            self.corrupt_at -= 1
            if self.corrupt_at == 0:
                data = data[:30] + bytes([data[30] ^ 0x20]) + data[31:]
        self.buf += data
        self.rx_bytes += len(data)
        return len(data)

    def close(self):
        pass


def _loop(tmp_path, files, active=True):
    d = tmp_path / "runs"
    d.mkdir()
    for name, data in files.items():
        (d / name).write_bytes(data)
    rx = fw_link.RxRing(4096)
    ctx = _Ctx(active=active)
    lk = fw_link.Link(rx, None, ctx, runs_dir=str(d))
    return LoopPort(lk, rx), ctx


def test_host_client_against_the_firmware_link(tmp_path):
    data = os.urandom(50000)
    port, ctx = _loop(tmp_path, {"sim-0001.log": data, "sim-0000.log": b"old"})
    link = SL.RunLink(port, timeout_s=30.0)      # the loopback answers at once; no test waits for it
    assert link.ping()["run"] == "sim-0001"
    assert link.status()["phase"] == "SOAK"
    assert link.list_runs() == [{"run": "sim-0000", "size": 3, "active": False},
                                {"run": "sim-0001", "size": 50000, "active": True}]
    got = bytearray()
    end = link.read("sim-0001", 1000, 0, lambda off, b: got.extend(b))
    assert end == (50000, 50000) and bytes(got) == data[1000:]
    assert link.hash("sim-0001", 40000) == hashlib.sha256(data[:40000]).hexdigest()
    with pytest.raises(SL.DeviceError) as e:
        link.read("nope", 0, 0, lambda off, b: None)
    assert e.value.name == "NOENT"
    # a corrupted data line is detected (CRC) and the transfer is stopped
    port.corrupt_at = 3
    with pytest.raises(SL.LinkError):
        link.read("sim-0001", 0, 0, lambda off, b: None)
    # abort with confirmation
    tok, rid, valid_s = link.abort_request()
    assert rid == "sim-0001" and valid_s == 60 and ctx.aborted == 0
    with pytest.raises(SL.DeviceError) as e:
        link.abort_confirm("00000000" if tok != "00000000" else "11111111")
    assert e.value.name == "BADTOKEN" and ctx.aborted == 0
    tok, rid, _ = link.abort_request()
    assert link.abort_confirm(tok) == {"aborted": "sim-0001"} and ctx.aborted == 1


def test_run_mode_pull_resumes_and_verifies(tmp_path, monkeypatch):
    data = os.urandom(70000)
    port, ctx = _loop(tmp_path, {"sim-0001.log": data})
    monkeypatch.setattr(PL, "probe", lambda p, timeout_s=0: ("run", {}))
    out = tmp_path / "out"
    out.mkdir()
    # first attempt: interrupted after 20 kB (the host dies between chunks)
    calls = {"n": 0}
    orig = SL._Sink.__call__

    def dying(self, off, b):
        calls["n"] += 1
        if self.off > 20000:
            self.checkpoint()
            raise KeyboardInterrupt
        orig(self, off, b)

    monkeypatch.setattr(SL._Sink, "__call__", dying)
    with pytest.raises(KeyboardInterrupt):
        SL._pull_one(port, "sim-0001", str(out), "/runs", False, SL.Progress(False), lambda m: None, None)
    monkeypatch.setattr(SL._Sink, "__call__", orig)
    side = json.loads((out / "sim-0001.log.part.json").read_text())
    assert 20000 < side["offset"] < 21000
    # unverified garbage beyond the verified offset is cut off on resume
    with open(out / "sim-0001.log.part", "ab") as f:
        f.write(b"garbage")
    msgs = []
    res = SL._pull_one(port, "sim-0001", str(out), "/runs", False, SL.Progress(False), msgs.append, None)
    assert res["state"] == "partial" and res["resumed_from"] == side["offset"]       # run still active
    assert (out / "sim-0001.log.part").read_bytes() == data
    assert any("resuming at offset" in m for m in msgs)
    ctx._active = False                     # the test ended: the log is complete
    res = SL._pull_one(port, "sim-0001", str(out), "/runs", False, SL.Progress(False), msgs.append, None)
    assert res["state"] == "complete" and res["sha256"] == hashlib.sha256(data).hexdigest()
    assert (out / "sim-0001.log").read_bytes() == data
    assert not (out / "sim-0001.log.part").exists() and not (out / "sim-0001.log.part.json").exists()
    # again: the device's HASH of the closed log equals the copy -> nothing is copied
    polls = port.polls
    res = SL._pull_one(port, "sim-0001", str(out), "/runs", False, SL.Progress(False), msgs.append, None)
    assert res["state"] == "up to date" and res["mode"] == "run"
    assert port.polls - polls < 70000 // 768        # fewer ticks than reading it again


def test_partial_bookkeeping(tmp_path):
    part = str(tmp_path / "r.log.part")
    assert SL._load_partial(part, "r") == 0
    with open(part, "wb") as f:
        f.write(b"x" * 100)
    SL._save_sidecar(part, "r", 60, 1000, "p")
    assert SL._load_partial(part, "other") == 0
    assert SL._load_partial(part, "r") == 60 and os.path.getsize(part) == 60
    SL._save_sidecar(part, "r", 80, 1000, "p")       # sidecar beyond the data: not trusted
    assert SL._load_partial(part, "r") == 0


class StreamPort(SL.Port):
    """A Port preloaded with what a device would send."""

    def __init__(self, data):
        self.path = "stream"
        self.buf = bytearray(data)
        self.rx_bytes = self.tx_bytes = 0
        self.sent = bytearray()

    def write(self, data):
        self.sent += data

    def _fill(self, timeout):
        return 0


def test_raw_repl_stream_decoder():
    data = bytes(random.Random(2).choice(b"\x04\x10abc\n") for _ in range(9000))
    body = bytearray()
    for off in range(0, len(data), 4096):
        c = data[off:off + 4096]
        body += b"%d %d %x\n" % (off, len(c), binascii.crc32(c)) + _stuff(c)
    body += b". %d\n" % len(data)
    stream = b"OK" + bytes(body) + b"\x04\x04>"
    raw = SL.RawRepl(StreamPort(stream), timeout_s=0.5)
    raw._setup = True
    got = bytearray()
    assert raw.read("/runs/x.log", 0, len(data), lambda off, b: got.extend(b)) == len(data)
    assert bytes(got) == data and raw.port.sent.startswith(b"_ovenctl_read('/runs/x.log',0,9000,4096)")
    # a flipped byte fails the chunk CRC
    bad = bytearray(stream)
    bad[40] ^= 0x01 if bad[40] not in (0x10, 0x11, 0x04, 0x05) else 0x40
    raw = SL.RawRepl(StreamPort(bytes(bad)), timeout_s=0.5)
    raw._setup = True
    with pytest.raises(SL.LinkError):
        raw.read("/runs/x.log", 0, len(data), lambda off, b: None)
    # a device-side exception ends the stream with a traceback
    err = b"OK\x04Traceback (most recent call last):\r\nOSError: 2\r\n\x04>"
    raw = SL.RawRepl(StreamPort(err), timeout_s=0.5)
    raw._setup = True
    with pytest.raises(SL.DeviceError):
        raw.read("/runs/x.log", 0, 10, lambda off, b: None)
