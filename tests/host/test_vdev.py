"""The virtual device (`ovenctl vdev`) with the real `mpremote` from PyPI and the ovenctl serial
commands (ports, status, pull): idle REPL use, a pull during an accelerated test that leaves the
control loop undisturbed, resumable pulls, the pull's bytes on the wire, a power cut, an abort
with confirmation (the pull's speed against mpremote is `make bench`, section pull). Every child
process runs in its own session and is killed in a finally block."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from ovenctl import serial_link as SL
from ovenctl.logfile import read_log

BIN = os.path.dirname(sys.executable)
OVENCTL = [sys.executable, "-m", "ovenctl"]
MPREMOTE = os.path.join(BIN, "mpremote")
SCENARIO = {"seed": 7, "blank_run": False}       # the default test: 6 h soak, ~210 kB run log

pytestmark = [pytest.mark.skipif(shutil.which("node") is None, reason="node is needed for the MicroPython VM"),
              pytest.mark.vm, pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = dict(os.environ)
    e["OVENCTL_RUNTIME_DIR"] = str(tmp_path_factory.mktemp("runtime"))
    return e


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("scn") / "s.json"
    p.write_text(json.dumps(SCENARIO))
    return str(p)


class Vdev:
    """`ovenctl vdev` as a child process group (ovenctl + node)."""

    def __init__(self, env, fs, scenario=None, speed=None):
        cmd = OVENCTL + ["vdev", "--fs", str(fs)]
        if scenario:
            cmd += ["--scenario", scenario]
        if speed is not None:
            cmd += ["--speed", str(speed)]
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                  start_new_session=True)
        self.err = []
        self.ended = threading.Event()
        threading.Thread(target=self._read_err, daemon=True).start()
        line = []
        t = threading.Thread(target=lambda: line.append(self.p.stdout.readline()), daemon=True)
        t.start()
        t.join(120)                 # node starts the VM and mounts the flash: slow on a loaded machine
        if not line or not line[0].startswith(b"/dev/"):
            self.kill()
            raise AssertionError("ovenctl vdev did not print its port: %r %r" % (line, self.err))
        self.port = line[0].decode().strip()

    def _read_err(self):
        for ln in self.p.stderr:
            self.err.append(ln.decode(errors="replace"))
            if "test ended" in self.err[-1]:
                self.ended.set()

    def kill(self):
        """Power cut: SIGKILL to ovenctl and node at once."""
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait(10)

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
                self.p.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.kill()


def cli(env, *args, timeout=60, check=True):
    p = subprocess.run(OVENCTL + [str(a) for a in args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("ovenctl %s: rc %d\n%s\n%s" % (" ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
    return p


def mpremote(port, *args, timeout=60):
    p = subprocess.run([MPREMOTE, "connect", port] + list(args), capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.stdout


def _records_after_header(data):
    log = read_log(data)
    return data[log.records[1].offset:], log


def _wait(pred, timeout, what):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env, scenario_file):
    """The same scenario through `ovenctl sim` (no serial link at all), started in the background."""
    d = tmp_path_factory.mktemp("ref")
    p = subprocess.Popen(OVENCTL + ["sim", "--scenario", scenario_file, "--json", "--progress", "0", "--log",
                                    str(d / "ref.log")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         start_new_session=True)

    def result():
        try:
            out, err = p.communicate(timeout=300)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        assert p.returncode == 0, err
        return json.loads(out), (d / "ref.log").read_bytes()

    cache = []

    def get():
        if not cache:
            cache.append(result())
        return cache[0]

    yield get
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)


@pytest.fixture(scope="module")
def live(tmp_path_factory, env, scenario_file, reference):
    """One accelerated test on a vdev with status calls, stray console bytes and pulls while it runs."""
    reference  # noqa: B018  (start the reference run now, in parallel)
    tmp = tmp_path_factory.mktemp("live")
    fs, out = tmp / "flash", tmp / "pulled"
    v = Vdev(env, fs, scenario=scenario_file, speed=0)
    d = {"fs": fs, "out": out, "port": v.port}
    try:
        d["ports"] = json.loads(cli(env, "ports", "--json").stdout)
        st1 = json.loads(cli(env, "status", "--port", v.port, "--json").stdout)
        d["status_text"] = cli(env, "status", "--port", v.port).stdout
        # what mpremote or a terminal would send: Ctrl-C, Ctrl-A, Ctrl-D. Ctrl-C is disabled in a run.
        import serial
        with serial.Serial(v.port, 115200, timeout=0) as s:
            s.write(b"\r\x03\x03\r\x01\x04\x03")
        time.sleep(0.3)
        st2 = json.loads(cli(env, "status", "--port", v.port, "--json").stdout)
        d["status"] = (st1, st2)
        p = cli(env, "pull", "--port", v.port, "--out", out, "--json", check=False)
        d["partial"] = (p.returncode, json.loads(p.stdout) if p.stdout.strip() else p.stderr)
        t0 = time.monotonic()
        p = cli(env, "pull", "--port", v.port, "--out", out, "--follow", "--json", timeout=300)
        d["follow"] = (json.loads(p.stdout), p.stderr, time.monotonic() - t0)
        assert v.ended.wait(120), v.err
        d["idle_status"] = json.loads(cli(env, "status", "--port", v.port, "--json").stdout)
        d["vdev_err"] = list(v.err)
    finally:
        v.stop()
    return d


# ------------------------------------------------------------------------------------------ idle device
def test_mpremote_and_ovenctl_against_the_idle_vdev(tmp_path, env):
    fs = tmp_path / "flash"
    v = Vdev(env, fs)
    try:
        assert mpremote(v.port, "exec", "print(7)").strip() == "7"
        blob = bytes(range(256)) * 37 + b"\x04\x10\r\n\x03"
        (tmp_path / "up.bin").write_bytes(blob)
        mpremote(v.port, "fs", "cp", str(tmp_path / "up.bin"), ":up.bin")
        assert "up.bin" in mpremote(v.port, "fs", "ls")
        mpremote(v.port, "fs", "cp", ":up.bin", str(tmp_path / "down.bin"))
        assert (tmp_path / "down.bin").read_bytes() == blob
        assert (fs / "up.bin").read_bytes() == blob            # the flash is the host directory
        mpremote(v.port, "soft-reset")
        assert mpremote(v.port, "exec", "import os; print(os.stat('up.bin')[6])").strip() == str(len(blob))
        # errno translation: mpremote reports a missing file as such
        p = subprocess.run([MPREMOTE, "connect", v.port, "fs", "ls", ":nope"], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode != 0 and "No such file" in p.stderr
        # ovenctl on the idle device
        ports = json.loads(cli(env, "ports", "--json").stdout)
        assert [p["port"] for p in ports if p["kind"] == "virtual device"] == [v.port]
        assert v.port in cli(env, "ports").stdout
        st = json.loads(cli(env, "status", "--port", v.port, "--json").stdout)
        assert st == {"state": "idle", "runs": []}
        assert "idle" in cli(env, "status", "--port", v.port).stdout
        p = cli(env, "pull", "--port", v.port, "--out", tmp_path / "o", check=False)
        assert p.returncode == 1 and "no run logs" in p.stderr
        # mpremote still works after ovenctl used the port
        assert mpremote(v.port, "exec", "print(6*7)").strip() == "42"
    finally:
        v.stop()
    assert json.loads(cli(env, "ports", "--json").stdout) == []     # the vdev's state file is gone


def test_flash_survives_a_kill_up_to_the_last_sync(tmp_path, env):
    fs = tmp_path / "flash"
    v = Vdev(env, fs)
    try:
        mpremote(v.port, "exec", "import os; os.mkdir('d')\nwith open('d/old.txt', 'w') as f: f.write('old')")
        assert (fs / "d" / "old.txt").read_text() == "old"
        # files left open on the device (resume: no soft reset): only what was synced is on flash
        mpremote(v.port, "resume", "exec", "import os\nf = open('d/u.txt', 'w'); f.write('unsynced')\n"
                 "g = open('d/s.txt', 'w'); g.write('synced'); g.flush(); g.write(' tail')\n"
                 "os.rename('d/old.txt', 'd/new.txt')")
        assert (fs / "d" / "u.txt").read_text() == "" and (fs / "d" / "s.txt").read_text() == "synced"
        assert (fs / "d" / "new.txt").read_text() == "old" and not (fs / "d" / "old.txt").exists()
    finally:
        v.kill()                                    # power cut
    assert (fs / "d" / "s.txt").read_text() == "synced" and (fs / "d" / "u.txt").read_text() == ""
    v = Vdev(env, fs)
    try:
        out = mpremote(v.port, "exec", "print(repr(open('d/s.txt').read()), repr(open('d/u.txt').read()))")
        assert out.strip() == "'synced' ''"
    finally:
        v.stop()


def test_every_command_has_help(env):
    for c in ("vdev", "ports", "status", "pull"):
        p = cli(env, c, "--help")
        assert "usage: ovenctl " + c in p.stdout
    p = cli(env, "status", "--port", "/dev/nonexistent-port", check=False)
    assert p.returncode == 1 and "cannot open" in p.stderr
    p = cli(env, "pull", "--port", "/dev/null", "--run", "../x", "--out", "/tmp", check=False)
    assert p.returncode == 2 and "run ID" in p.stderr


# ------------------------------------------------------------------------------------------ during a test
def test_status_during_the_run(live):
    st1, st2 = live["status"]
    assert st1["state"] == "run" and st1["run"] == "sim-0001" and st1["stage"] == "test"
    for k in ("phase", "temp_c_x100", "pressure_pa", "soak_left_s", "live_ppm", "t_s"):
        assert k in st1
    assert len(st1["live_ppm"]) == 1 and st1["soak_s"] == 21600
    assert "RUNNING test sim-0001" in live["status_text"] and "live loss" in live["status_text"]
    # Ctrl-C and the raw-REPL bytes did nothing: the test kept running
    assert st2["state"] == "run" and st2["t_s"] >= st1["t_s"] and st2["fault"] == 0
    assert [p["port"] for p in live["ports"] if p["kind"] == "virtual device"] == [live["port"]]
    assert live["idle_status"]["state"] == "idle" and live["idle_status"]["runs"][0]["run"] == "sim-0001"


def test_pull_during_the_run_is_verified_and_resumes(live):
    rc, res = live["partial"]
    assert rc == 3 and res[0]["state"] == "partial" and res[0]["mode"] == "run", res
    (res_f,), err, _ = live["follow"]
    assert res_f["state"] == "complete" and res_f["resumed_from"] >= res[0]["size"] > 0
    assert "resuming at offset" in err
    device = (live["fs"] / "runs" / "sim-0001.log").read_bytes()      # the device's flash after the run
    pulled = (live["out"] / "sim-0001.log").read_bytes()
    import hashlib
    assert pulled == device and res_f["sha256"] == hashlib.sha256(device).hexdigest()
    log = read_log(pulled)
    # this quick run has no blank run: INCONCLUSIVE for that reason only (NO_BLANK)
    assert log.complete and log.problems == [] and log.verdict["verdict"] == "INCONCLUSIVE"
    assert [c["no_pass"] for c in log.verdict["cells"]] == [["NO_BLANK"]] * len(log.verdict["cells"])


def test_the_link_did_not_disturb_the_control_loop(live, reference):
    ref_res, ref_log = reference()
    pulled = (live["out"] / "sim-0001.log").read_bytes()
    mine, log = _records_after_header(pulled)
    theirs, rlog = _records_after_header(ref_log)
    # every record after the header (1 Hz samples, events, weighings, verdict, END) is
    # byte-identical to the same scenario run without any serial link
    assert mine == theirs
    assert log.verdict["verdict"] == ref_res["verdict"] == "INCONCLUSIVE"     # NO_BLANK, NO_CHECK
    assert [e["code"] for e in log.events] == [e["code"] for e in rlog.events]
    assert log.header["run_id"] == "sim-0001" and rlog.header["run_id"] == "sim-7"


def test_interrupted_idle_pull_resumes(live, tmp_path, env, monkeypatch):
    fs = tmp_path / "flash"
    shutil.copytree(live["fs"], fs)
    out = tmp_path / "out"
    v = Vdev(env, fs)
    try:
        orig = SL._Sink.__call__

        def dying(self, off, b):
            if self.off >= 100000:
                self.checkpoint()
                raise KeyboardInterrupt       # Ctrl-C in the middle of a raw-REPL stream
            orig(self, off, b)

        monkeypatch.setattr(SL._Sink, "__call__", dying)
        with pytest.raises(KeyboardInterrupt):
            SL.pull(v.port, str(out), run="sim-0001")
        monkeypatch.setattr(SL._Sink, "__call__", orig)
        died_at = json.loads((out / "sim-0001.log.part.json").read_text())["offset"]
        assert 100000 <= died_at < 110000
        # the device is left in the raw REPL with output queued: the next pull copes
        p = cli(env, "pull", "--port", v.port, "--run", "sim-0001", "--out", out, "--json")
        res = json.loads(p.stdout)[0]
        assert res["state"] == "complete" and res["resumed_from"] == died_at and res["mode"] == "idle"
        assert (out / "sim-0001.log").read_bytes() == (fs / "runs" / "sim-0001.log").read_bytes()
        # pulling again: up to date; then --delete-after removes it on the device, after verifying
        res = json.loads(cli(env, "pull", "--port", v.port, "--out", out, "--json").stdout)[0]
        assert res["state"] == "up to date"
        res = json.loads(cli(env, "pull", "--port", v.port, "--all", "--out", out, "--delete-after",
                             "--json").stdout)[0]
        assert res["deleted"] is True and not (fs / "runs" / "sim-0001.log").exists()
        assert (out / "sim-0001.log").exists()
        assert json.loads(cli(env, "status", "--port", v.port, "--json").stdout)["runs"] == []
    finally:
        v.stop()


def test_idle_pull_is_exact_and_lean_on_the_wire(live, tmp_path, env):
    # what the pull benchmark (make bench, section pull: the speed against mpremote) relies on,
    # without its timing: a whole idle pull is byte-exact and sends few bytes beyond the log's
    from ovenctl.vdev import VDev
    fs = tmp_path / "flash"
    shutil.copytree(live["fs"], fs)
    device = (fs / "runs" / "sim-0001.log").read_bytes()
    dev = VDev(str(fs), advertise=False, stderr=subprocess.DEVNULL)
    dev.start()
    try:
        rx0, tx0 = dev.counters()
        res = json.loads(cli(env, "pull", "--port", dev.port, "--run", "sim-0001", "--out", tmp_path / "out",
                             "--no-progress", "--json", timeout=300).stdout)[0]
        rx1, tx1 = dev.counters()
    finally:
        dev.stop()
    assert res["state"] == "complete" and res["mode"] == "idle" and res["resumed_from"] == 0, res
    assert (tmp_path / "out" / "sim-0001.log").read_bytes() == device
    wire = (rx1 - rx0) + (tx1 - tx0)
    assert len(device) <= wire <= 1.5 * len(device), (wire, len(device))


# ------------------------------------------------------------------------------------------ power cut, abort
def test_power_cut_keeps_the_synced_log(tmp_path, env, scenario_file, reference):
    fs = tmp_path / "flash"
    v = Vdev(env, fs, scenario=scenario_file, speed=0)
    path = fs / "runs" / "sim-0001.log"
    try:
        _wait(lambda: path.exists() and path.stat().st_size >= 60000, 120, "60 kB of run log")
    finally:
        v.kill()                                       # heater on, mid-soak: power cut
    synced = path.read_bytes()
    log = read_log(synced)
    assert not log.complete and len(log.samples) > 1000
    assert all("torn tail" in p for p in log.problems), log.problems
    # what survived, up to the last intact record, is exactly the beginning of the undisturbed
    # reference run
    last = log.records[-1]
    intact = synced[log.records[1].offset:last.offset + last.length]
    theirs, _ = _records_after_header(reference()[1])
    assert len(intact) > 50000 and theirs.startswith(intact)
    # power on again with the same flash: main.py's recovery closed the cut run (the virtual device
    # has no battery-backed clock, so it cannot resume: docs/APP.md "Power cuts"); every synced
    # record is still there, byte for byte, followed by INTERRUPTED, INVALID, VERDICT and END
    v = Vdev(env, fs)
    try:
        st = json.loads(cli(env, "status", "--port", v.port, "--json").stdout)
        assert [(r["run"], r["active"]) for r in st["runs"]] == [("sim-0001", False)]
        res = json.loads(cli(env, "pull", "--port", v.port, "--out", tmp_path / "out", "--json").stdout)[0]
        assert res["state"] == "complete"
        pulled = (tmp_path / "out" / "sim-0001.log").read_bytes()
        assert pulled.startswith(synced[:last.offset + last.length]) and st["runs"][0]["size"] == len(pulled)
        closed = read_log(pulled)
        assert closed.complete and closed.problems == []
        assert closed.verdict["verdict"] == "INVALID" and closed.verdict["invalid"] == 29
        assert [e["code"] for e in closed.events[-2:]] == [112, 108]     # E_INTERRUPTED, E_INVALID
    finally:
        v.stop()


def test_abort_with_confirmation_and_speed(tmp_path, env, scenario_file):
    fs = tmp_path / "flash"
    speed = 60                      # far below the VM's own pace (~1000-2000 sim s per s): pacing shows
    spawned = time.monotonic()
    v = Vdev(env, fs, scenario=scenario_file, speed=speed)
    try:
        with SL.Port(v.port) as port:
            mode, info = SL.probe(port)
            assert mode == "run" and info["run"] == "sim-0001"
            link = SL.RunLink(port)
            s1 = link.status()
            s2 = s1
            deadline = time.monotonic() + 120
            while (s2["t_s"] <= s1["t_s"] or time.monotonic() - spawned < 3) and time.monotonic() < deadline:
                time.sleep(0.2)
                s2 = link.status()
            assert s2["t_s"] > s1["t_s"], (s1, s2)          # the test runs on
            # paced at --speed, never faster: the device's pacer never runs ahead of speed x the wall
            # time since its start (it may fall behind on a loaded machine, so no lower bound), and its
            # start came after `spawned`. One tick of slack for the tick in progress.
            assert s2["t_s"] <= speed * (time.monotonic() - spawned) + 1, s2
            tok, rid, valid_s = link.abort_request()
            assert rid == "sim-0001" and valid_s == 60
            assert link.status()["state"] == "run"       # nothing happens before the confirmation
            assert link.abort_confirm(tok) == {"aborted": "sim-0001"}
        assert v.ended.wait(120), v.err
        res = json.loads(cli(env, "pull", "--port", v.port, "--out", tmp_path / "out", "--json").stdout)[0]
        log = read_log((tmp_path / "out" / "sim-0001.log").read_bytes())
        assert log.complete and log.verdict["verdict"] == "ABORTED" and log.verdict["fault"] == 24
        assert res["state"] == "complete"
    finally:
        v.stop()
