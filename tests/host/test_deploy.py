"""`ovenctl deploy` / `make flash` against the virtual device with the real mpremote: deploy
--board sim to a fresh device and verify it, a re-deploy that copies only what changed, a refused
deploy while a test runs, a mip dependency that cannot be fetched (named, device unchanged), the
pico layout with a local mip index, and a whole accelerated test run by the DEPLOYED firmware
whose verdict matches `ovenctl sim`. The real boards' board_select + firmware/oven/run/plan.py on a fake
`machine` in the VM. Plus the static checks: board_select pins, package.json, manifest.py.
On a fake board (tests/romfs/fakeboard.py: the unix port with a fixed heap and a ROMFS partition):
the heap check (refused below HEAP_NEED_KB with the numbers, --force, accepted above) and
--romfs (the image's contents read by MicroPython's VfsRom, deployed with mpremote, imported from
/rom/lib; no partition or too small: refused, nothing changed).
Every child process runs in its own session and is killed in a finally block."""
import ast
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from ovenctl import deploy as D
from ovenctl.logfile import read_log
from test_vdev import MPREMOTE, OVENCTL, Vdev, cli, mpremote

ROOT = D.ROOT
SCENARIO = os.path.join(ROOT, "boards", "sim", "scenarios", "default.json")
UNREACHABLE = "http://127.0.0.1:9"          # nothing listens on the discard port

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is needed for the MicroPython VM")
pytestmark = [pytest.mark.vm, pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = dict(os.environ)
    e["OVENCTL_RUNTIME_DIR"] = str(tmp_path_factory.mktemp("runtime"))
    return e


def _flash(fs):
    """{path: bytes} of every file in the device's flash directory."""
    out = {}
    for dirpath, _, names in os.walk(fs):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                out["/" + os.path.relpath(p, fs)] = f.read()
    return out


def _fake_index(d):
    """A mip index directory with a stand-in `ssd1306` package (what micropython-lib serves:
    package/6/<name>/latest.json listing files by short sha256, file/<xx>/<hash>)."""
    src = d / "ssd1306.py"
    src.write_text("class SSD1306_I2C:\n    def __init__(self, w, h, i2c):\n        pass\n")
    mpy = d / "ssd1306.mpy"
    subprocess.run([D.tool("mpy-cross"), "-o", str(mpy), str(src)], check=True)
    data = mpy.read_bytes()
    h = hashlib.sha256(data).hexdigest()[:8]
    (d / "file" / h[:2]).mkdir(parents=True)
    (d / "file" / h[:2] / h).write_bytes(data)
    (d / "package" / "6" / "ssd1306").mkdir(parents=True)
    (d / "package" / "6" / "ssd1306" / "latest.json").write_text(json.dumps(
        {"hashes": [["ssd1306.mpy", h]], "version": "0.0-test"}))
    return str(d), data


@pytest.fixture(scope="module")
def reference(env):
    """`ovenctl sim` on the default scenario, started at once in the background."""
    p = subprocess.Popen(OVENCTL + ["sim", "--scenario", SCENARIO, "--json", "--progress", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    cache = []

    def get():
        if not cache:
            try:
                out, err = p.communicate(timeout=300)
            finally:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
            assert p.returncode == 0, err
            cache.append(json.loads(out))
        return cache[0]
    yield get
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, env, reference):
    """A fresh idle virtual device: deploy --board sim, look at it with mpremote, deploy again,
    then a pico deploy whose mip dependency cannot be fetched."""
    reference  # noqa: B018  (start the reference run now, in parallel)
    fs = tmp_path_factory.mktemp("dep") / "flash"
    v = Vdev(env, fs)
    d = {"fs": fs, "port": v.port}
    try:
        p = cli(env, "deploy", "--board", "sim", "--port", v.port, "--json", timeout=120)
        d["first"], d["first_log"] = json.loads(p.stdout), p.stderr
        d["flash_1"] = _flash(fs)
        d["ls"] = mpremote(v.port, "fs", "ls", ":/lib")
        # the second deploy also provisions a new device key (created on the host)
        d["keyfile"] = str(fs.parent / "dev.key")
        p = cli(env, "deploy", "--board", "sim", "--port", v.port, "--json", "--key", d["keyfile"], timeout=120)
        d["again"], d["again_log"] = json.loads(p.stdout), p.stderr
        d["flash_2"] = _flash(fs)
        # a different key file is refused: the device keeps its key
        d["other_key"] = cli(env, "deploy", "--board", "sim", "--port", v.port, "--no-reset", "--key",
                             str(fs.parent / "other.key"), check=False, timeout=120)
        d["flash_2b"] = _flash(fs)
        d["mip_fail"] = cli(env, "deploy", "--board", "pico", "--port", v.port, "--force", "--index", UNREACHABLE,
                            check=False, timeout=120)
        d["flash_3"] = _flash(fs)
        d["wrong_board"] = cli(env, "deploy", "--board", "esp32", "--port", v.port, check=False, timeout=60)
        # the device still answers after all that
        d["alive"] = mpremote(v.port, "exec", "print(6*7)").strip()
    finally:
        v.stop()
    return d


@pytest.fixture(scope="module")
def run_on_deployed(deployed, env):
    """Power the deployed device on with the default scenario (the vdev's autostart) and let the
    deployed main.py / board_select / firmware run the whole test at full speed."""
    fs = deployed["fs"]
    v = Vdev(env, fs, scenario=SCENARIO, speed=0)
    d = {}
    try:
        assert v.ended.wait(150), v.err
        d["modules"] = mpremote(v.port, "resume", "exec",
                                "import sys\nfor k in sorted(sys.modules):\n"
                                " print(k, getattr(sys.modules[k], '__file__', '-'))")
    finally:
        v.stop()
    d["log_path"] = str(fs / "runs" / "sim-0001.log")
    d["log"] = read_log((fs / "runs" / "sim-0001.log").read_bytes())
    d["verify_key"] = cli(env, "verify", "--key", deployed["keyfile"], d["log_path"], check=False, timeout=120)
    return d


# ------------------------------------------------------------------------------------------ deploy
@needs_node
def test_deploy_sim_to_a_fresh_device_is_verified(deployed):
    res = deployed["first"]
    files = {f["path"]: f for f in res["files"]}
    mods = [m[:-3] for m in D.firmware_modules()]
    assert set(files) == ({"/lib/%s.mpy" % m for m in mods} | {"/main.py", "/deploy.json", "/lib/board_select.mpy"}
                          | {"/lib/sim/%s.mpy" % m for m in ("__init__", "model", "board", "runner")})
    assert res["verified"] == len(files) and res["deps"] == [] and res["up_to_date"] == 0
    assert res["device"]["platform"] == "webassembly" and res["device"]["mpy"] & 0xFF == 6
    # independently of the tool: the device's flash holds exactly these bytes
    flash = deployed["flash_1"]
    for path, f in files.items():
        assert hashlib.sha256(flash[path]).hexdigest() == f["sha256"], path
    assert flash["/main.py"] == open(os.path.join(ROOT, "firmware", "main.py"), "rb").read()
    assert all(flash[p][:1] == b"M" for p in files if p.endswith(".mpy"))       # .mpy header
    man = json.loads(flash["/deploy.json"])
    assert man["board"] == "sim" and man["compiled"] is True and man["fw_version"] == res["fw_version"]
    assert man["files"] == {p: f["sha256"] for p, f in files.items() if p != "/deploy.json"}
    assert "oven" in deployed["ls"] and "board_select.mpy" in deployed["ls"]
    # the soft reset ran the new main.py to the REPL without a traceback
    assert "soft reboot" in res["boot"] and "Traceback" not in res["boot"]
    for step in ("device: MicroPython", "mip: the sim board needs no dependency",
                 "verified: sha256 of %d" % len(files)):
        assert step in deployed["first_log"]
    assert deployed["alive"] == "42"


@needs_node
def test_deploy_again_copies_only_what_changed(deployed):
    res = deployed["again"]
    # only /deploy.json (its timestamp) differs; everything else is skipped by mpremote's hash check
    assert res["up_to_date"] == len(res["files"]) - 1 and res["verified"] == len(res["files"])
    assert res["removed"] == []
    a, b = deployed["flash_1"], deployed["flash_2"]
    assert set(a) | {"/devkey.bin"} == set(b) and all(a[p] == b[p] for p in a if p != "/deploy.json")


@needs_node
def test_deploy_provisions_the_device_key_and_never_shows_it(deployed):
    from ovenctl import keyfile
    key = keyfile.load_key(deployed["keyfile"])
    assert oct(os.stat(deployed["keyfile"]).st_mode & 0o777) == "0o600"
    assert deployed["flash_2"]["/devkey.bin"] == key
    kid = keyfile.key_id(key)
    assert deployed["again"]["key_id"] == kid
    assert "new device key %s written to" % kid in deployed["again_log"]
    assert "device key: %s provisioned" % kid in deployed["again_log"]
    # the first deploy had no key to keep: it said so
    assert "the device has no device key" in deployed["first_log"]
    # a different key is refused, the device's key is unchanged
    p = deployed["other_key"]
    assert p.returncode == 1 and "--replace-key" in p.stderr and kid in p.stderr, p.stderr
    assert deployed["flash_2b"]["/devkey.bin"] == key
    # never printed, never in deploy.json
    for text in (deployed["first_log"], deployed["again_log"], json.dumps(deployed["again"]), p.stdout, p.stderr,
                 deployed["flash_2"]["/deploy.json"].decode()):
        assert key.hex() not in text and repr(key) not in text
    assert "/devkey.bin" not in json.loads(deployed["flash_2"]["/deploy.json"])["files"]


@needs_node
def test_a_dependency_that_cannot_be_fetched_is_named_and_changes_nothing(deployed):
    p = deployed["mip_fail"]
    assert p.returncode == 1, (p.stdout, p.stderr)
    err = p.stderr
    assert "ovenctl deploy: error: cannot install the mip dependency 'ssd1306'" in err, err
    assert UNREACHABLE in err and "refused" in err.lower() and "--no-deps" in err
    assert "was not changed" in err
    # the sim deployment on the device is exactly as it was
    assert deployed["flash_3"] == deployed["flash_2b"]


@needs_node
def test_the_wrong_board_is_refused(deployed):
    p = deployed["wrong_board"]
    assert p.returncode == 1 and "sys.platform 'webassembly' (the sim board), not 'esp32'" in p.stderr


@needs_node
def test_deploy_is_refused_while_a_test_runs(tmp_path, env):
    fs = tmp_path / "flash"
    v = Vdev(env, fs, scenario=SCENARIO, speed=600)
    try:
        p = cli(env, "deploy", "--board", "sim", "--port", v.port, check=False, timeout=60)
        st = json.loads(cli(env, "status", "--port", v.port, "--json").stdout)
    finally:
        v.kill()
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "a test is running on %s (run sim-0001" % v.port in p.stderr and "deploy refused" in p.stderr
    assert st["state"] == "run"                                 # the test went on
    flash = _flash(fs)                                          # nothing was copied
    assert not [f for f in flash if f.startswith("/lib") or f in ("/main.py", "/deploy.json")], sorted(flash)


@needs_node
def test_pico_layout_with_a_local_mip_index(tmp_path, env):
    """--board pico on the virtual device (--force: it is not an RP2040; --no-reset: its main.py
    needs `machine`): the board's files flat in /lib, the dependency from a local index."""
    index, ssd = _fake_index(tmp_path)
    fs = tmp_path / "flash"
    v = Vdev(env, fs)
    try:
        # a module of the flat layout before /lib/oven, left by an older deploy without /deploy.json
        mpremote(v.port, "exec", "import os\nos.mkdir('/lib')\nf=open('/lib/app.py','w');f.write('X=1');f.close()")
        p = cli(env, "deploy", "--board", "pico", "--port", v.port, "--force", "--no-reset", "--index", index,
                "--json", timeout=120)
        res = json.loads(p.stdout)
        out = mpremote(v.port, "exec", "import ssd1306, pins\nprint(ssd1306.SSD1306_I2C.__name__, pins.PORT, "
                                       "ssd1306.__file__)")
    finally:
        v.stop()
    flash = _flash(fs)
    assert res["deps"] == ["ssd1306"] and res["boot"] is None and "mip: ssd1306 installed" in p.stderr
    assert res["removed"] == ["/lib/app.py"] and "/lib/app.py" not in flash
    for name in ("board", "pins", "board_select", "mcu_board", "oven/__init__", "oven/run/plan", "oven/run/app"):
        assert "/lib/%s.mpy" % name in flash
    assert flash["/lib/ssd1306.mpy"] == ssd
    assert out.split() == ["SSD1306_I2C", "rp2", "/lib/ssd1306.mpy"]
    assert json.loads(flash["/deploy.json"])["deps"] == ["ssd1306"]


@needs_node
def test_the_deployed_firmware_runs_the_test_like_ovenctl_sim(run_on_deployed, reference):
    mods = dict(ln.split(" ", 1) for ln in run_on_deployed["modules"].splitlines() if " " in ln)
    # the run used the deployed bytecode in /lib, not the virtual device's built-in copy in /rom
    for m in ("oven.run.app", "board_select", "oven.link", "oven.store.runlog", "oven.core.verdict", "oven.core.weigh",
              "sim.model", "sim.runner"):
        assert mods[m] == "/lib/%s.mpy" % m.replace(".", "/"), (m, mods.get(m))
    log = run_on_deployed["log"]
    ref = reference()
    assert log.complete and log.problems == []
    assert log.header["board"] == "sim" and log.header["run_id"] == "sim-0001"
    # calibrated, checked (the sim's check-weight history), probe-timed, drift-corrected: PASS
    assert log.verdict["verdict"] == ref["verdict"] == "PASS"
    assert all(c["no_pass"] == [] for c in log.verdict["cells"])
    assert [c["loss_ppm"] for c in log.verdict["cells"]] == [c["loss_ppm"] for c in ref["cells"]]
    assert [c["verdict"] for c in log.verdict["cells"]] == [c["verdict"] for c in ref["cells"]]
    assert [c["u_ppm"] for c in log.verdict["cells"]] == [c["u_ppm"] for c in ref["cells"]]


@needs_node
def test_the_deployed_device_seals_its_log_with_the_provisioned_key(run_on_deployed, deployed):
    from ovenctl import keyfile
    key = keyfile.load_key(deployed["keyfile"])
    log = run_on_deployed["log"]
    assert log.header["log"]["seal"] == "hmac-sha256" and log.header["log"]["key_id"] == keyfile.key_id(key)
    assert len(log.seals) >= 100 and len(log.verdict["chain_hmac"]) == 64
    p = run_on_deployed["verify_key"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert "seal: OK" in p.stdout
    with open(run_on_deployed["log_path"], "rb") as f:
        data = f.read()
    assert key not in data and key.hex().encode() not in data


# ------------------------------------------------------------------------------------------ static
def _safe_low(board):
    tree = ast.parse(open(os.path.join(ROOT, "boards", board, "board_select.py")).read())
    top_imports = []
    safe = None
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_imports += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            top_imports.append(node.module)
        elif isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SAFE_LOW":
            safe = ast.literal_eval(node.value)
    return safe, top_imports


@pytest.mark.parametrize("board", ["pico", "esp32"])
def test_board_select_drives_the_right_pins_and_imports_only_machine(board):
    safe, imports = _safe_low(board)
    assert imports == ["machine"]
    ns = {}
    exec(open(os.path.join(ROOT, "boards", board, "pins.py")).read(), ns)
    gpio = {name: g for name, g, _ in ns["PINS"]}
    assert safe == tuple(gpio[n] for n in ("ssr", "contactor", "pump", "vent", "buzzer"))
    src = open(os.path.join(ROOT, "boards", board, "board_select.py")).read()
    assert "def outputs_off" in src and "def __getattr__" in src
    # the rest of the contract is common to both boards: boards/mcu/mcu_board.py
    src = open(os.path.join(ROOT, "boards", "mcu", "mcu_board.py")).read()
    for name in ("def autostart", "def link_rx", "def link_tx", "def after_run", "HOST_DRIVEN = False"):
        assert name in src


def test_package_json_is_a_mip_package_of_the_firmware():
    pkg = json.load(open(D.PACKAGE_JSON))
    assert sorted(u[0] for u in pkg["urls"]) == D.firmware_modules()
    assert all(u[0] == u[1] for u in pkg["urls"])           # relative URLs: next to package.json
    assert pkg["deps"] == [["ssd1306", "latest"]] and D.package_deps() == [("ssd1306", "latest")]
    # no "version": the firmware's is app.FW_VERSION (recorded in /deploy.json), not a second copy
    assert set(pkg) == {"urls", "deps"}


def _manifest(**kwargs):
    """Run firmware/manifest.py the way MicroPython's tools/manifestfile.py does (cwd = its
    directory, options from include()'s kwargs) with recording stand-ins."""
    got = {"modules": [], "require": []}

    class Options:
        def __init__(self, kw):
            self._kw, self._d = kw, {}

        def defaults(self, **kw):
            self._d = kw

        def __getattr__(self, n):
            return self._kw.get(n, self._d.get(n))

    def module(path, base_path=".", opt=None):
        full = os.path.abspath(os.path.join(base_path, path))
        assert os.path.isfile(full), full
        got["modules"].append(os.path.relpath(full, ROOT))

    def package(path, files=None, base_path=".", opt=None):
        # as MicroPython's manifestfile.py: every .py file under base_path/path, recursively
        assert files is None
        top = os.path.abspath(os.path.join(base_path, path))
        assert os.path.isfile(os.path.join(top, "__init__.py")), top
        for d, _dirs, fs in os.walk(top):
            got["modules"] += [os.path.relpath(os.path.join(d, f), ROOT) for f in fs if f.endswith(".py")]

    g = {"options": Options(kwargs), "module": module, "package": package,
         "require": lambda n, **k: got["require"].append(n)}
    cwd = os.getcwd()
    os.chdir(D.FIRMWARE)
    try:
        exec(open("manifest.py").read(), g)
    finally:
        os.chdir(cwd)
    return got


@pytest.mark.parametrize("board", ["pico", "esp32"])
def test_manifest_freezes_what_deploy_copies(board):
    got = _manifest(board=board) if board != "pico" else _manifest()        # pico is the default
    assert sorted(got["modules"]) == sorted(src for src, _ in D.sources(board))
    assert got["require"] == ["ssd1306"]
    assert "firmware/main.py" not in got["modules"]
    with pytest.raises(ValueError):
        _manifest(board="sim")


def test_stage_without_compiling_and_a_module_that_does_not_compile(tmp_path, monkeypatch):
    st = D.stage("esp32", compile_mpy=False, out_dir=str(tmp_path / "s"))
    dests = {f["dest"] for f in st["files"]}
    assert "/lib/oven/run/app.py" in dests and "/lib/board.py" in dests and not any(d.endswith(".mpy") for d in dests)
    assert st["manifest"]["compiled"] is False and st["manifest"]["deps"] == ["ssd1306"]
    bad = tmp_path / "broken.py"
    bad.write_text("def f(:\n")
    monkeypatch.setattr(D, "sources", lambda board: [(str(bad), "/lib/broken")])
    with pytest.raises(D.DeployError, match="mpy-cross cannot compile .*broken.py"):
        D.stage("sim", out_dir=str(tmp_path / "s2"))


def test_config_is_checked_before_the_device_is_touched(tmp_path, env):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"method": {"base": "gb-2026", "soak_s": 5}}))
    p = cli(env, "deploy", "--board", "sim", "--port", "/dev/nonexistent-port", "--config", bad, check=False)
    assert p.returncode == 2 and "--config" in p.stderr and "soak_s" in p.stderr
    good = tmp_path / "g.json"
    good.write_text(json.dumps({"method": "tcsae-434-2025", "board": {"tc": "max31856"}, "counts_per_g": 4194}))
    st = D.stage("pico", config=D.check_config(str(good)), out_dir=str(tmp_path / "s"))
    cfg = [f for f in st["files"] if f["dest"] == "/config.json"][0]
    assert json.load(open(cfg["local"]))["method"] == "tcsae-434-2025"
    p = cli(env, "deploy", "--board", "sim", "--port", "/dev/nonexistent-port", check=False)
    assert p.returncode == 1 and "cannot open /dev/nonexistent-port" in p.stderr


def test_help_and_make_flash(env):
    p = cli(env, "deploy", "--help")
    assert "usage: ovenctl deploy" in p.stdout and "--no-compile" in p.stdout
    p = cli(env, "deploy", "--board", "nope", "--port", "x", check=False)
    assert p.returncode == 2
    p = subprocess.run(["make", "-s", "flash"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode != 0 and "usage: make flash BOARD=" in p.stderr
    p = subprocess.run(["make", "-n", "flash", "BOARD=pico", "PORT=/dev/ttyACM0"], cwd=ROOT, capture_output=True,
                       text=True)
    assert "ovenctl deploy --board pico --port /dev/ttyACM0" in p.stdout
    assert os.path.exists(MPREMOTE) and sys.executable


# ------------------------------------------------------------------------------------------ real boards' board_select
_BOARD_SELECT = r'''
sys.path.insert(0, "/boards/%(board)s")     # flat, as `ovenctl deploy` lays the board's files out in /lib
import board_select
board_select.outputs_off()
out = {"off": [e[1:] for e in LOG]}
from oven.run import plan
from oven.run import start
import board as B


class Mod:
    DEFAULTS = B.DEFAULTS

    def __init__(self, intr):
        self.intr = intr

    def make_board(self, cfg):
        b = B.make_board(cfg)
        b.operator.scan_in_poll = True      # no real timer here: poll() scans the buttons itself
        if self.intr:
            def poll():
                raise KeyboardInterrupt     # Ctrl-C from mpremote while idle
            b.operator.poll = poll
        return b


def show(b, m):
    out["shown"] = m["name"]
    out["wdt_while_idle"] = [e for e in LOG if e[0] == "wdt"]
    Pin.ALL[b._g["btn_start"]].v = 0         # the operator presses START


del LOG[:]
p = start.autostart(Mod(False), config_path="/none.json", blank_path="/none/blank.json", show=show)
out["plan"] = [p.method["name"], p.n_cells, p.board.name, p.blank, p.blank_run]
out["wdt"] = [e for e in LOG if e[0] == "wdt"]
h = p.header("%(board)s-0001", None)
out["header"] = [h["board"], h["run_id"], h["calibration"]["counts_per_g"]]
p.board.deinit()
del LOG[:]
said = []
out["intr"] = start.autostart(Mod(True), config_path="/none.json", show=show, say=said.append)
out["intr_log"] = [e[0] for e in LOG if e[0] in ("wdt", "timer_deinit")]
out["said"] = said
out["api"] = [callable(board_select.link_rx), callable(board_select.link_tx), board_select.HOST_DRIVEN]
print("@@J" + json.dumps(out))
'''


@pytest.mark.parametrize("board", ["pico", "esp32"])
def test_board_select_on_a_fake_machine_in_the_vm(board):
    """The real boards' board_select + firmware/oven/run/plan.py + board.py in the MicroPython VM on the
    fake `machine` of tests/host/test_pins.py: outputs off first, idle without a watchdog, START
    arms it, Ctrl-C leaves the board idle and deinitialised."""
    from test_pins import _FAKE_MACHINE
    from vmbridge import run_vm_code
    out = run_vm_code(_FAKE_MACHINE + _BOARD_SELECT % {"board": board}, paths=("firmware", "boards", "boards/mcu"))
    r = json.loads([x for x in out.splitlines() if x.startswith("@@J")][0][3:])
    safe, _ = _safe_low(board)
    assert r["off"] == [[g, 1, -1, 0] for g in safe]           # Pin(g, Pin.OUT, value=0), nothing else
    assert r["shown"] == "gb-2026" and r["wdt_while_idle"] == []
    assert r["plan"] == ["gb-2026", 4 if board == "pico" else 2, board, None, True]
    assert r["wdt"] == [["wdt", 8000]]                          # armed at START, default 8 s
    assert r["header"] == [board, board + "-0001", 20972]
    assert r["intr"] is None and r["intr_log"] == ["timer_deinit"] and "interrupted" in r["said"][-1]
    assert r["api"] == [True, True, False]


# ------------------------------------------------------------------------------------------ heap, ROMFS (fake board)
# tests/romfs/fakeboard.py: the board's raw REPL run by the real MicroPython unix port with a
# fixed heap, sys.platform "rp2" and, optionally, a ROMFS partition (vfs.rom_ioctl) in a file.
sys.path.insert(0, os.path.join(ROOT, "tests", "romfs"))
from fakeboard import FakeBoard, micropython  # noqa: E402

needs_unix_port = pytest.mark.skipif(micropython() is None, reason="the MicroPython unix port is needed: make setup")
NEED_KB = D.HEAP_NEED_KB["pico"]
LOCAL_FLASH = {"/lib/board_select.mpy", "/main.py", "/deploy.json"}       # on the filesystem with --romfs


def _fake_heap(port):
    """(free, total) bytes of the fake board's heap, asked with mpremote (it soft-resets first)."""
    out = mpremote(port, "exec", "import gc\ngc.collect()\nprint(gc.mem_free(), gc.mem_free()+gc.mem_alloc())")
    free, total = out.split()
    return int(free), int(total)


@needs_unix_port
def test_deploy_refuses_a_board_with_too_little_heap_and_force_overrides(tmp_path, env):
    heap_kb = NEED_KB - 32
    fs = tmp_path / "flash"
    with FakeBoard(fs, heap_kb=heap_kb) as b:
        free, total = _fake_heap(b.port)
        p = cli(env, "deploy", "--board", "pico", "--port", b.port, "--no-deps", "--no-reset", check=False, timeout=120)
        flash_after_refusal = _flash(fs)
        forced = cli(env, "deploy", "--board", "pico", "--port", b.port, "--no-deps", "--no-reset", "--force",
                     "--json", check=False, timeout=180)
    assert p.returncode == 1 and "Traceback" not in p.stdout + p.stderr, (p.stdout, p.stderr)
    # the numbers: the device's GC heap (exact) and free heap after boot (what a command sees), and the need
    m = re.search(r"error: the device has ([\d.]+) KB of heap free after boot \(GC heap ([\d.]+) KB\), the pico "
                  r"firmware needs (\d+) KB .*: deploy refused, nothing was changed\. --force deploys anyway", p.stderr)
    assert m, p.stderr
    assert float(m.group(2)) == round(total / 1024, 1) and int(m.group(3)) == NEED_KB
    assert abs(float(m.group(1)) - free / 1024) < 2.0 and float(m.group(1)) < NEED_KB
    assert flash_after_refusal == {} and "copied" not in p.stdout
    # --force deploys, with the same figures as a warning
    assert forced.returncode == 0, forced.stderr
    assert "warning: the device has %s KB of heap free after boot" % m.group(1) in forced.stderr
    assert "deploying anyway (--force)" in forced.stderr
    res = json.loads(forced.stdout)
    assert res["heap"]["total_bytes"] == total and res["verified"] == len(res["files"])
    assert "/lib/oven/run/app.mpy" in _flash(fs)


@needs_unix_port
def test_deploy_accepts_a_board_with_enough_heap(tmp_path, env):
    fs = tmp_path / "flash"
    with FakeBoard(fs, heap_kb=NEED_KB + 64) as b:
        free, total = _fake_heap(b.port)
        p = cli(env, "deploy", "--board", "pico", "--port", b.port, "--no-deps", "--no-reset", "--json", timeout=180)
    res = json.loads(p.stdout)
    assert res["heap"]["total_bytes"] == total and NEED_KB * 1024 <= res["heap"]["free_bytes"] <= total
    assert "heap: %.1f KB free after boot (GC heap %.1f KB), the pico firmware needs %d KB" % (
        res["heap"]["free_bytes"] / 1024, total / 1024, NEED_KB) in p.stderr
    assert "of heap free after boot (GC heap" not in p.stderr.split("heap: ", 1)[1] and res["romfs"] is None
    flash = _flash(fs)
    assert {f["path"] for f in res["files"]} == set(flash) and "/lib/oven/run/app.mpy" in flash


def test_the_heap_need_is_one_table_for_the_real_boards():
    assert set(D.HEAP_NEED_KB) == {"pico", "esp32"} and all(isinstance(v, int) and v > 0
                                                            for v in D.HEAP_NEED_KB.values())
    heap = {"free_bytes": 100 * 1024, "total_bytes": 110 * 1024}
    with pytest.raises(D.DeployError, match=r"100\.0 KB of heap free .* esp32 firmware needs %d KB.*PSRAM"
                                            % D.HEAP_NEED_KB["esp32"]):
        D.check_heap("esp32", heap, force=False)
    assert D.check_heap("sim", heap, force=False) == []          # the sim's bench shares the VM's heap
    assert "--force" in D.check_heap("pico", heap, force=True)[0]


def _romfs_files(image):
    """{path: bytes} of every file in a ROMFS image, read by MicroPython's own VfsRom (unix port)."""
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "i.romfs")
        with open(img, "wb") as f:
            f.write(image)
        code = ("import vfs,os,binascii\nf=open(%r,'rb');vfs.mount(vfs.VfsRom(f.read()),'/rom')\n"
                "def walk(p):\n for n,t,*_ in os.ilistdir(p):\n  q=p+'/'+n\n  if t==0x4000:\n   walk(q)\n"
                "  else:\n   g=open(q,'rb');print(q,binascii.hexlify(g.read()).decode());g.close()\n"
                "walk('/rom')\n" % img)
        script = os.path.join(d, "ls.py")
        with open(script, "w") as f:
            f.write(code)
        p = subprocess.run([micropython(), script], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return {ln.split()[0]: bytes.fromhex(ln.split()[1]) if len(ln.split()) > 1 else b""
            for ln in p.stdout.splitlines()}


@needs_unix_port
def test_romfs_image_holds_the_compiled_modules(tmp_path):
    st = D.stage("pico", out_dir=str(tmp_path / "s"), romfs=True)
    plain = D.stage("pico", out_dir=str(tmp_path / "p"))
    rom = st["romfs"]
    with open(rom["image"], "rb") as f:
        image = f.read()
    assert image[:3] == D.ROM_HEADER and len(image) == rom["size"] and D._sha(image) == rom["sha256"]
    got = _romfs_files(image)
    # the modules sources() stages, as the same .mpy bytes a plain deploy copies to /lib, at /rom/lib
    by_dest = {f["dest"]: f for f in plain["files"]}
    want = {"/rom" + d + ".mpy" for _, d in D.sources("pico") if d not in D.ROMFS_KEEP}
    assert set(got) == want == {f["dest"] for f in rom["files"]}
    for path, data in got.items():
        assert data == open(by_dest[path[len("/rom"):]]["local"], "rb").read(), path
    # the filesystem keeps main.py, board_select and deploy.json; deploy.json lists the image
    assert {f["dest"] for f in st["files"]} == LOCAL_FLASH
    man = st["manifest"]["romfs"]
    assert man["sha256"] == rom["sha256"] and man["files"] == {p: D._sha(d) for p, d in got.items()}
    with pytest.raises(D.DeployError, match="--no-compile"):
        D.stage("pico", compile_mpy=False, out_dir=str(tmp_path / "n"), romfs=True)


@needs_unix_port
def test_deploy_romfs_to_a_board_with_a_romfs_partition(tmp_path, env):
    fs = tmp_path / "flash"
    with FakeBoard(fs, heap_kb=1024, rom_kb=256) as b:
        # an older deploy's module in /lib would shadow (or be shadowed by) the ROM's
        mpremote(b.port, "exec", "import os\nos.mkdir('/lib')\nf=open('/lib/app.mpy','wb');f.write(b'M');f.close()")
        p = cli(env, "deploy", "--board", "pico", "--port", b.port, "--no-deps", "--no-reset", "--romfs", "--json",
                timeout=240)
        rom_image = b.rom_image()
        flash_rom = _flash(fs)
        used = mpremote(b.port, "exec", "from oven.run import app, plan\nfrom oven.store import runlog\nimport pins\n"
                                        "for m in (app, plan, runlog, pins):\n"
                                        " print(m.__file__)")
        # a deploy without --romfs empties the ROMFS (its modules would shadow the new /lib ones)
        again = cli(env, "deploy", "--board", "pico", "--port", b.port, "--no-deps", "--no-reset", "--json",
                    timeout=240)
        rom_after = b.rom_image()
        used_after = mpremote(b.port, "exec", "from oven.run import app\nimport os\n"
                                              "print(app.__file__, os.listdir('/rom'))")
    res = json.loads(p.stdout)
    rom = res["romfs"]
    assert rom["partition_bytes"] == 256 * 1024 and 0 < rom["size"] <= rom["partition_bytes"]
    assert D._sha(rom_image[:rom["size"]]) == rom["sha256"] and rom_image[rom["size"]:].count(0) > 0
    assert "romfs: the image (%d bytes) fits the ROMFS partition (262144 bytes" % rom["size"] in p.stderr
    assert res["verified"] == len(res["files"]) + len(rom["files"])
    assert set(flash_rom) == LOCAL_FLASH and "/lib/app.py" not in flash_rom
    assert "/lib/app.mpy" in res["removed"]
    assert used.split() == ["/rom/lib/oven/run/app.mpy", "/rom/lib/oven/run/plan.mpy", "/rom/lib/oven/store/runlog.mpy",
                            "/rom/lib/pins.mpy"]
    assert json.loads(flash_rom["/deploy.json"])["romfs"]["sha256"] == rom["sha256"]
    res2 = json.loads(again.stdout)
    assert res2["romfs"] is None and "romfs: emptied" in again.stderr
    assert rom_after[:3] == D.ROM_HEADER and rom_after[:rom["size"]] != rom_image[:rom["size"]]
    assert used_after.split() == ["/lib/oven/run/app.mpy", "[]"]


@needs_unix_port
@pytest.mark.parametrize("rom_kb", [0, 64])
def test_deploy_romfs_refused_without_a_partition_or_when_too_big(tmp_path, env, rom_kb):
    fs = tmp_path / "flash"
    with FakeBoard(fs, heap_kb=1024, rom_kb=rom_kb) as b:
        p = cli(env, "deploy", "--board", "pico", "--port", b.port, "--no-deps", "--no-reset", "--romfs",
                check=False, timeout=120)
        rom_image = b.rom_image() if rom_kb else None
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    if rom_kb == 0:
        assert "has no ROMFS partition (ROMFS is not enabled on this device)" in p.stderr
        assert "MICROPY_VFS_ROM" in p.stderr and "standard Pico and ESP32 downloads" in p.stderr
    else:
        size = D.stage("pico", out_dir=str(tmp_path / "s"), romfs=True)["romfs"]["size"]
        assert "the ROMFS image (%d bytes, " % size in p.stderr and "partition (65536 bytes)" in p.stderr
        assert rom_image == b"\xff" * 65536
    assert "nothing was changed" in p.stderr.lower() and _flash(fs) == {}


def test_romfs_needs_compiled_modules(env):
    p = cli(env, "deploy", "--board", "pico", "--port", "/dev/nonexistent-port", "--romfs", "--no-compile", check=False)
    assert p.returncode == 2 and "--romfs" in p.stderr and "--no-compile" in p.stderr
    p = cli(env, "deploy", "--help")
    assert "--romfs" in p.stdout and "standard Pico and ESP32" in " ".join(p.stdout.split())
