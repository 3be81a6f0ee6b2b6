"""Deploy the firmware to a board (`ovenctl deploy`, `make flash`).

Device layout (docs/PROTOCOL.md §9): the firmware package in /lib/oven (compiled .mpy, or .py with
--no-compile), the board's files flat in /lib (pico/esp32: board, pins,
board_select and the shared boards/mcu/mcu_board; sim: the `sim` package in /lib/sim and boards/sim/vdev.py as board_select),
/main.py as source (MicroPython runs main.py only from source), the mip dependencies
(firmware/package.json "deps": the SSD1306 driver) in /lib, /config.json only with --config, and
/deploy.json: what was deployed (board, firmware version, every file's sha256).

The .mpy files are plain bytecode (no native/viper code in the firmware), so the same mpy-cross
output runs on every port with .mpy v6 (MicroPython >= 1.19); -march (armv6m for the RP2040,
xtensawin for the ESP32) would only matter for native code.

With --romfs (boards whose MicroPython >= 1.25 was built with MICROPY_VFS_ROM and a ROMFS
partition; the standard Pico/ESP32 downloads have none): the compiled modules go into a ROMFS
image (mpremote's romfs builder) written to the partition with `mpremote romfs deploy`; the board
mounts it at /rom with /rom and /rom/lib on sys.path, and imports the bytecode in place (no copy
in the heap). main.py, /lib/board_select, /config.json and /deploy.json stay on the filesystem;
/lib copies of the modules now in ROM are removed (whichever comes first on sys.path, nothing old
shadows them). A deploy without --romfs empties a ROMFS that holds firmware modules, for the same
reason.

Steps: stage (compile every module with mpy-cross into a new build/deploy-<board>-* directory; the
ROMFS image) -> probe the port (refuse while a test runs: the run protocol answers PING) -> device
checks over the raw REPL (sys.platform against the board, .mpy version, free space, the free heap
after a soft reset against HEAP_NEED_KB; the ROMFS partition with `mpremote romfs query`) ->
`mpremote mip install` of the
dependencies -> remove stale files (the other variant .py/.mpy of each module, which would shadow
it; files of the previous deploy that are gone) -> `mpremote fs cp` (identical files are skipped)
-> `mpremote romfs deploy` -> sha256 of every file computed on the device (the ROM's after a soft
reset), compared with the local bytes -> soft reset, and main.py's first output checked for a traceback.
"""
import ast
import contextlib
import glob
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from ovenctl import serial_link as SL
from ovenctl.vmrun import ROOT

FIRMWARE = os.path.join(ROOT, "firmware")
PACKAGE_JSON = os.path.join(FIRMWARE, "package.json")
DEPLOY_JSON = "/deploy.json"
ROMFS_IMAGE = "firmware.romfs"
ROMFS_KEEP = ("/lib/board_select",)       # on the filesystem even with --romfs: the board's boot hook
ROM_HEADER = b"\xd2\xcd\x31"

# The heap (KB) the firmware needs free after boot, per board: the heap gate's figure (`make test`
# runs each board's device configuration in a fixed 32-bit heap of this size: tests/heap/README.md;
# measured minimum in build/bench.json min_heap_kb_<board>). Updated together with docs/FIT.md.
# The sim board runs its bench in the same VM heap: no figure, not checked.
HEAP_NEED_KB = {"pico": 192, "esp32": 192}
BOOT_WAIT_S = 15.0
READY_MARK = b"Press START"

# board -> device platform (sys.platform), files (repo path, device path without extension),
# whether it needs the mip dependencies
BOARDS = {
    "pico": {"platform": "rp2", "deps": True, "files": [
        ("boards/pico/board.py", "/lib/board"), ("boards/pico/pins.py", "/lib/pins"),
        ("boards/pico/board_select.py", "/lib/board_select"), ("boards/mcu/mcu_board.py", "/lib/mcu_board")]},
    "esp32": {"platform": "esp32", "deps": True, "files": [
        ("boards/esp32/board.py", "/lib/board"), ("boards/esp32/pins.py", "/lib/pins"),
        ("boards/esp32/board_select.py", "/lib/board_select"), ("boards/mcu/mcu_board.py", "/lib/mcu_board")]},
    # the virtual device (`ovenctl vdev`): its bench draws into a RAM framebuffer, no mip dependency
    "sim": {"platform": "webassembly", "deps": False, "files": [
        ("boards/sim/vdev.py", "/lib/board_select"), ("boards/sim/__init__.py", "/lib/sim/__init__"),
        ("boards/sim/model.py", "/lib/sim/model"), ("boards/sim/board.py", "/lib/sim/board"),
        ("boards/sim/runner.py", "/lib/sim/runner")]},
}


class DeployError(Exception):
    """Deploy failed or was refused: one clear message."""


def tool(name):
    """A console script of this Python environment (the .venv's mpy-cross / mpremote), else PATH."""
    p = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(p):
        return p
    p = shutil.which(name)
    if p is None:
        raise DeployError("%s not found: run `make setup` (it is in requirements.txt)" % name)
    return p


def firmware_modules():
    """The firmware package's files, relative to firmware/ ("oven/__init__.py", "oven/core/codes.py", ...)."""
    return sorted(os.path.relpath(p, FIRMWARE).replace(os.sep, "/")
                  for p in glob.glob(os.path.join(FIRMWARE, "oven", "**", "*.py"), recursive=True))


def legacy_flat():
    """Device paths of the firmware modules as deploys before the `oven` package put them, flat in
    /lib (/lib/app.mpy, /lib/ui.py, ...): removed at every deploy, so that no old copy stays
    importable next to the package."""
    names = {os.path.basename(m)[:-3] for m in firmware_modules()} - {"__init__", "texts"} | {"ui"}
    return {"/lib/%s%s" % (n, ext) for n in names for ext in (".py", ".mpy")}


def package_deps(path=PACKAGE_JSON):
    """[(name, version)] from the mip package.json's "deps"."""
    with open(path) as f:
        pkg = json.load(f)
    return [(d[0], d[1] if len(d) > 1 else "latest") for d in pkg.get("deps", [])]


def fw_version():
    with open(os.path.join(FIRMWARE, "oven", "run", "app.py")) as f:
        for line in f:
            if line.startswith("FW_VERSION"):
                return line.split("=", 1)[1].strip().strip("\"'")
    return "?"


def sources(board):
    """[(repo-relative source, device path without extension)] of the board's deploy (no main.py)."""
    if board not in BOARDS:
        raise DeployError("unknown board %r (boards: %s)" % (board, ", ".join(sorted(BOARDS))))
    out = [("firmware/" + m, "/lib/" + m[:-3]) for m in firmware_modules()]
    return out + list(BOARDS[board]["files"])


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def stage(board, compile_mpy=True, config=None, out_dir=None, romfs=False):
    """Build the deploy locally. Returns a dict: dir, files [{"src", "dest", "sha256", "size"}]
    (dest = device path; includes /main.py, /config.json if given, and /deploy.json last), and
    with romfs=True "romfs" (build_romfs()): the modules in the image are not in files."""
    if romfs and not compile_mpy:
        raise DeployError("--romfs holds compiled modules (.mpy, run in place from the ROM): it cannot be used "
                          "with --no-compile")
    if out_dir is None:
        # a new directory per deploy: two boards can be flashed at the same time
        os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
        out_dir = tempfile.mkdtemp(prefix="deploy-%s-" % board, dir=os.path.join(ROOT, "build"))
    elif os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    mpy_cross = tool("mpy-cross") if compile_mpy else None
    files = []

    def put(src, dest, data):
        local = os.path.join(out_dir, dest.lstrip("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with open(local, "wb") as f:
            f.write(data)
        files.append({"src": src, "dest": dest, "local": local, "sha256": _sha(data), "size": len(data)})

    for src, dest in sources(board):
        path = os.path.join(ROOT, src)
        if compile_mpy:
            local = os.path.join(out_dir, dest.lstrip("/") + ".mpy")
            os.makedirs(os.path.dirname(local), exist_ok=True)
            # -s: the name tracebacks show on the device (not this machine's path)
            p = subprocess.run([mpy_cross, "-s", src[len("firmware/"):] if src.startswith("firmware/")
                                else os.path.basename(src), "-o", local, path],
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise DeployError("mpy-cross cannot compile %s: %s" % (src, (p.stderr or p.stdout).strip()))
            with open(local, "rb") as f:
                data = f.read()
            files.append({"src": src, "dest": dest + ".mpy", "local": local, "sha256": _sha(data),
                          "size": len(data)})
        else:
            with open(path, "rb") as f:
                put(src, dest + ".py", f.read())
    main_py = os.path.join(FIRMWARE, "main.py")
    with open(main_py, "rb") as f:
        main_src = f.read()
    if compile_mpy:     # main.py stays source on the device, but it must compile
        check = os.path.join(out_dir, "main.check.mpy")
        p = subprocess.run([mpy_cross, "-o", check, main_py], capture_output=True, text=True)
        if p.returncode != 0:
            raise DeployError("mpy-cross cannot compile firmware/main.py: %s" % p.stderr.strip())
        os.unlink(check)
    put("firmware/main.py", "/main.py", main_src)
    rom = None
    if romfs:
        in_rom = [f for f in files if f["dest"].startswith("/lib/") and f["dest"][:-4] not in ROMFS_KEEP]
        files = [f for f in files if f not in in_rom]
        rom = build_romfs(in_rom, out_dir)
    if config is not None:
        put(config["path"], "/config.json", (json.dumps(config["data"], indent=1) + "\n").encode())
    manifest = {"board": board, "fw_version": fw_version(), "compiled": bool(compile_mpy),
                "deployed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "deps": [d[0] for d in package_deps()] if BOARDS[board]["deps"] else [],
                "files": {f["dest"]: f["sha256"] for f in files}}
    if rom is not None:
        manifest["romfs"] = {"size": rom["size"], "sha256": rom["sha256"],
                             "files": {f["dest"]: f["sha256"] for f in rom["files"]}}
    put("(generated)", DEPLOY_JSON, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    return {"dir": out_dir, "files": files, "manifest": manifest, "romfs": rom}


def build_romfs(mpy_files, out_dir):
    """The ROMFS image of staged .mpy files (dest /lib/x.mpy -> /rom/lib/x.mpy), built by mpremote's
    romfs builder (the pinned mpremote's make_romfs: the same as `mpremote romfs build`) from a
    directory laid out like the ROM. Returns {"image", "size", "sha256", "files" [{"src", "dest",
    "sha256", "size"}]}."""
    from mpremote.romfs import make_romfs
    src = os.path.join(out_dir, "romfs-src")
    if os.path.isdir(src):
        shutil.rmtree(src)
    out = []
    for f in mpy_files:
        local = os.path.join(src, f["dest"].lstrip("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        shutil.copyfile(f["local"], local)
        out.append({"src": f["src"], "dest": "/rom" + f["dest"], "local": local, "sha256": f["sha256"],
                    "size": f["size"]})
    tree = io.StringIO()
    try:
        with contextlib.redirect_stdout(tree):      # its file tree: not on our stdout (--json)
            image = make_romfs(src, mpy_cross=False)
    except SystemExit:
        raise DeployError("mpremote's romfs builder failed: %s" % tree.getvalue().strip()[-300:])
    path = os.path.join(out_dir, ROMFS_IMAGE)
    with open(path, "wb") as fh:
        fh.write(image)
    return {"image": path, "size": len(image), "sha256": _sha(image), "files": out}


def check_config(path):
    """Load and check a /config.json for the device with the firmware's own code (firmware/oven/run/plan.py
    and methods.py under CPython). Returns {"path", "data"}; DeployError names the problem."""
    for p in (FIRMWARE, os.path.join(ROOT, "tests", "shim")):     # micropython.const shim
        if p not in sys.path:
            sys.path.append(p)
    from oven.run import plan
    from oven.run import start
    try:
        data = plan.load_config(path)
        start.choices(data)
    except ValueError as e:
        raise DeployError("--config: %s" % e)
    if not data and not os.path.exists(path):
        raise DeployError("--config: %s: no such file" % path)
    return {"path": path, "data": data}


# ------------------------------------------------------------------------------------------ device
_INFO = ("import sys,os\n"
         "s=os.statvfs('/')\n"
         "print(repr((sys.platform,getattr(sys.implementation,'_mpy',0),s[0]*s[4],"
         "tuple(sys.implementation.version))))\n")

_HASHES = """import hashlib,binascii
def _dh(p):
 try:
  f=open(p,'rb')
 except OSError:
  print(p,'-');return
 h=hashlib.sha256()
 while 1:
  b=f.read(1024)
  if not b:break
  h.update(b)
 f.close()
 print(p,binascii.hexlify(h.digest()).decode())
"""

_CLEAN = """import os
def _rm(p):
 try:
  os.remove(p);print('removed',p)
 except OSError:
  pass
def _md(p):
 try:
  os.mkdir(p)
 except OSError:
  pass
def _rd(p):
 try:
  os.rmdir(p)
 except OSError:
  pass
"""


def _raw(port_path, fn):
    with SL.Port(port_path) as port:
        raw = SL.RawRepl(port, timeout_s=20.0)
        raw.enter()
        try:
            return fn(raw)
        finally:
            raw.exit()


KEY_PATH = "/devkey.bin"        # firmware/main.py KEY_PATH

_KEY_ID = """import hashlib,binascii
def _kid():
 try:
  f=open(%r,'rb')
 except OSError:
  print('KEY none');return
 k=f.read(64);f.close()
 if len(k)!=32:
  print('KEY bad');return
 print('KEY',binascii.hexlify(hashlib.sha256(b'oven-key-id:'+k).digest()[:8]).decode())
_kid()
""" % KEY_PATH


def device_key_id(port_path):
    """The device key's id (16 hex digits), "none" or "bad". The key itself never leaves it."""
    def fn(raw):
        out = raw.exec(_KEY_ID).decode()
        for ln in out.splitlines():
            if ln.startswith("KEY "):
                return ln[4:].strip()
        raise DeployError("the device did not report its key id: %s" % out.strip()[-200:])
    return _raw(port_path, fn)


def provision_key(port_path, key, replace=False, log=print):
    """Put the device key on the device (written to a temporary file, then renamed over
    /devkey.bin), checked by its key id. The key is never printed: only its id. Refuses to
    replace a different key unless replace=True."""
    from ovenctl import keyfile
    want = keyfile.key_id(key)
    have = device_key_id(port_path)
    if have == want:
        log("device key: %s (already provisioned)" % want)
        return want
    if have not in ("none", "bad") and not replace:
        raise DeployError("the device has device key %s, the key file is %s: a different key. Use --replace-key "
                          "to replace it (keep the old key file: older logs verify only with it)" % (have, want))

    def fn(raw):
        raw.exec("f=open(%r,'wb')\nf.write(%r)\nf.close()\nimport os\nos.rename(%r,%r)\n"
                 % (KEY_PATH + ".tmp", bytes(key), KEY_PATH + ".tmp", KEY_PATH))
    _raw(port_path, fn)
    got = device_key_id(port_path)
    if got != want:
        raise DeployError("the device key could not be written (device reports %s)" % got)
    log("device key: %s provisioned%s" % (want, " (replaced %s)" % have if have not in ("none", "bad") else ""))
    return want


def refuse_if_running(port_path):
    """DeployError while a test runs (the device answers the run protocol); else None."""
    with SL.Port(port_path) as port:
        mode, info = SL.probe(port)
        if mode != "run":
            return
        try:
            st = SL.RunLink(port).status()
            what = "run %s, %s stage, phase %s" % (st.get("run"), st.get("stage"), st.get("phase"))
        except SL.LinkError:
            what = "run %s" % (info or {}).get("run")
    raise DeployError("a test is running on %s (%s): deploy refused, nothing was changed. Wait for it "
                      "to end (`ovenctl status --port %s`) or abort it first" % (port_path, what, port_path))


_ROM_LIST = ("import os\ntry:\n print(repr(os.listdir('/rom/lib')))\nexcept OSError:\n print('[]')\n")

_HEAP = "import gc\ngc.collect()\nprint(repr((gc.mem_free(),gc.mem_alloc())))\n"


def _raw_soft_reset(raw):
    """Ctrl-D at the raw REPL: the board restarts (boot.py runs, main.py does not, the ROMFS is
    mounted again) and stays in the raw REPL."""
    p = raw.port
    p.write(b"\x04")
    deadline = time.monotonic() + BOOT_WAIT_S
    if p.read_until(b"soft reboot", deadline) is None or \
            p.read_until(b"raw REPL; CTRL-B to exit\r\n>", deadline) is None:
        raise DeployError("the device did not restart after a soft reset (Ctrl-D in the raw REPL)")


def device_heap(port_path):
    """The GC heap after boot: {"free_bytes", "total_bytes"}: gc.mem_free() and gc.mem_free() +
    gc.mem_alloc() after a soft reset (nothing of a previous firmware imported) and gc.collect()."""
    def fn(raw):
        _raw_soft_reset(raw)
        try:
            free, alloc = ast.literal_eval(raw.exec(_HEAP).decode().strip())
        except (ValueError, SyntaxError):
            raise DeployError("unexpected answer from the device to gc.mem_free(): is it a MicroPython board?")
        return {"free_bytes": free, "total_bytes": free + alloc}
    return _raw(port_path, fn)


def check_heap(board, heap, force):
    """DeployError when the board's free heap after boot is below HEAP_NEED_KB (a warning with
    force). Returns the warnings."""
    need_kb = HEAP_NEED_KB.get(board)
    if need_kb is None:
        return []
    free_kb = heap["free_bytes"] / 1024
    if free_kb >= need_kb:
        return []
    msg = ("the device has %.1f KB of heap free after boot (GC heap %.1f KB), the %s firmware needs %d KB (the heap "
           "gate's figure, docs/FIT.md)" % (free_kb, heap["total_bytes"] / 1024, board, need_kb))
    if force:
        return [msg + ": deploying anyway (--force); expect MemoryError during a test"]
    hint = (" An ESP32 needs PSRAM (a WROVER with the SPIRAM build of MicroPython, or an ESP32-S3 with a "
            "SPIRAM build) and a pin map for that module: docs/FIT.md, ESP32." if board == "esp32" else "")
    raise DeployError(msg + ": deploy refused, nothing was changed." + hint + " --force deploys anyway")


def device_info(port_path):
    def fn(raw):
        try:
            plat, mpy, free, ver = ast.literal_eval(raw.exec(_INFO).decode().strip())
        except (ValueError, SyntaxError):
            raise DeployError("unexpected answer from the device: is it a MicroPython board?")
        try:
            old = json.loads(raw.exec("print(open(%r).read())" % DEPLOY_JSON).decode())
        except (SL.LinkError, ValueError):
            old = None
        try:
            rom_lib = ast.literal_eval(raw.exec(_ROM_LIST).decode().strip())
        except (SL.LinkError, ValueError, SyntaxError):
            rom_lib = []
        return {"platform": plat, "mpy": mpy, "free_bytes": free, "version": ".".join(str(x) for x in ver[:3]),
                "previous": old, "rom_lib": rom_lib}
    return _raw(port_path, fn)


def check_device(board, info, staged, compile_mpy, force):
    want = BOARDS[board]["platform"]
    if info["platform"] != want and not force:
        other = [b for b, d in BOARDS.items() if d["platform"] == info["platform"]]
        raise DeployError("the device reports sys.platform %r%s, not %r (%s): use the right --board, or --force "
                          "to deploy anyway" % (info["platform"], (" (the %s board)" % other[0]) if other else "",
                                                want, board))
    if compile_mpy and (info["mpy"] & 0xFF) != 6:
        raise DeployError("the device's MicroPython %s loads .mpy v%d; mpy-cross emits v6 (MicroPython >= 1.19): "
                          "update the board's MicroPython, or use --no-compile" % (info["version"], info["mpy"] & 0xFF))
    need = sum(f["size"] for f in staged["files"])
    if info["free_bytes"] < need:
        # files of an earlier deploy are replaced, so this may still fit: mpremote reports ENOSPC
        return ["only %d bytes free on the device for %d bytes of firmware (run logs need room too: "
                "`ovenctl pull --delete-after`)" % (info["free_bytes"], need)]
    return []


def _run(cmd, timeout):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeployError("%s timed out after %d s" % (" ".join(cmd[:4]), timeout))


def _last_error(p):
    """mpremote's error: the last line on stderr ("mpremote: ..."), else the last on stdout."""
    for text in (p.stderr, p.stdout):
        lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
        if lines:
            return lines[-1]
    return "exit code %d" % p.returncode


def install_deps(port_path, deps, index=None, log=print):
    """`mpremote mip install` of each dependency into /lib (before anything else is changed, so a
    dependency that cannot be fetched leaves the device's firmware as it was)."""
    done = []
    for name, version in deps:
        spec = name if version in (None, "", "latest") else "%s@%s" % (name, version)
        cmd = [tool("mpremote"), "connect", port_path, "mip", "install", "--target", "/lib"]
        if index:
            cmd += ["--index", index]
        p = _run(cmd + [spec], 300)
        if p.returncode != 0:
            src = index or "micropython-lib (https://micropython.org/pi/v2)"
            raise DeployError(
                "cannot install the mip dependency %r from %s: %s. The device's firmware was not changed. "
                "Connect this computer to the network, or point --index at a local copy of the index, or "
                "deploy with --no-deps (then install it later: mpremote mip install %s)"
                % (name, src, _last_error(p), name))
        log("mip: %s installed in /lib" % spec)
        done.append(name)
    return done


NO_ROMFS = ("the device's MicroPython has no ROMFS partition (%s): --romfs needs MicroPython >= 1.25 built with "
            "MICROPY_VFS_ROM and a ROMFS partition (the standard Pico and ESP32 downloads from micropython.org have "
            "none). Nothing was changed; deploy without --romfs")


def romfs_query(port_path):
    """`mpremote romfs query`: {"partition_bytes", "image_bytes" (the valid image in it, or 0)}.
    DeployError (NO_ROMFS) when the device has no ROMFS partition."""
    p = _run([tool("mpremote"), "connect", port_path, "romfs", "query"], 60)
    out = p.stdout or ""
    if "ROMFS is not enabled" in out or "No ROMFS partitions" in out or "partition not found" in (p.stderr or ""):
        raise DeployError(NO_ROMFS % (out.strip() or _last_error(p)))
    if p.returncode != 0:
        raise DeployError("mpremote romfs query failed: %s" % _last_error(p))
    m = re.search(r"ROMFS0 partition has size (\d+) bytes", out)
    if not m:
        raise DeployError("unexpected answer of mpremote romfs query: %s" % out.strip()[-300:])
    img = re.search(r"ROMFS image size: (\d+)", out)
    return {"partition_bytes": int(m.group(1)), "image_bytes": int(img.group(1)) if img else 0}


def check_romfs_fits(rom, query):
    if rom["size"] > query["partition_bytes"]:
        raise DeployError("the ROMFS image (%d bytes, %d modules) does not fit the device's ROMFS partition "
                          "(%d bytes): "
                          "nothing was changed. Deploy without --romfs, or use a firmware build with a larger "
                          "partition" % (rom["size"], len(rom["files"]), query["partition_bytes"]))


def romfs_deploy(port_path, image_path):
    """`mpremote romfs deploy IMAGE` into partition 0 (it is mounted at the next soft reset)."""
    p = _run([tool("mpremote"), "connect", port_path, "romfs", "deploy", image_path], 900)
    if p.returncode != 0 or "ROMFS image deployed" not in (p.stdout or ""):
        raise DeployError("mpremote romfs deploy failed: %s (the filesystem is already updated: deploy again)"
                          % _last_error(p))


def empty_romfs(out_dir):
    """An image with no file: written over a ROMFS whose firmware modules would shadow /lib."""
    from mpremote.romfs import VfsRomWriter
    path = os.path.join(out_dir, "empty.romfs")
    with open(path, "wb") as f:
        f.write(VfsRomWriter().finalise())
    return path


def clean(port_path, staged, previous):
    """Create the directories; remove files that would shadow the new ones (x.py next to x.mpy
    is imported first; with a ROMFS, /lib copies of the modules in it), the flat modules of the
    layout before the `oven` package, and files of the previous deploy that this one does not have."""
    new = {f["dest"] for f in staged["files"]}
    rm = set()
    for f in (staged.get("romfs") or {}).get("files", ()):
        lib = f["dest"][len("/rom"):-len(".mpy")]
        rm |= {lib + ".py", lib + ".mpy"}
    for d in new:
        if d.endswith(".mpy"):
            rm.add(d[:-4] + ".py")
        elif d.endswith(".py") and d.startswith("/lib/"):
            rm.add(d[:-3] + ".mpy")
    rm |= legacy_flat()
    if previous and isinstance(previous.get("files"), dict):
        rm |= {p for p in previous["files"] if p not in new and p not in ("/main.py", "/config.json")}
    rm -= new
    dirs = sorted({d.rsplit("/", 1)[0] for d in new if d.count("/") > 1}, key=len)
    gone = sorted({p.rsplit("/", 1)[0] for p in rm if p.count("/") > 1} - set(dirs) - {"/lib"}, key=len, reverse=True)

    def fn(raw):
        code = _CLEAN + "".join("_md(%r)\n" % d for d in dirs) + "".join("_rm(%r)\n" % p for p in sorted(rm))
        code += "".join("_rd(%r)\n" % d for d in gone)      # directories left empty (a board's package)
        out = raw.exec(code).decode()
        return [ln.split(" ", 1)[1] for ln in out.splitlines() if ln.startswith("removed ")]
    return _raw(port_path, fn)


def copy(port_path, staged):
    """One mpremote run: `fs cp` per destination directory (files at / one by one), chained with
    `+`. Returns the number of files mpremote found already identical on the device."""
    groups = {}
    for f in staged["files"]:
        groups.setdefault(f["dest"].rsplit("/", 1)[0] + "/", []).append(f)
    cmd = [tool("mpremote"), "connect", port_path]
    for d, fs in sorted(groups.items()):
        parts = [["fs", "cp", f["local"], ":" + f["dest"]] for f in fs] if d == "/" else \
            [["fs", "cp"] + [f["local"] for f in fs] + [":" + d]]
        for part in parts:
            if len(cmd) > 3:
                cmd.append("+")
            cmd += part
    p = _run(cmd, 900)
    if p.returncode != 0:
        raise DeployError("mpremote fs cp failed: %s (run deploy again: identical files are skipped)" % _last_error(p))
    return sum(1 for ln in p.stdout.splitlines() if ln.startswith("Up to date:"))


def verify(port_path, staged, extra=()):
    """sha256 of every deployed file computed on the device, compared with the local bytes; with
    a ROMFS, its files too, after a soft reset (the board mounts the new image at boot).
    extra: device paths that must exist (the mip dependencies). Returns (n_ok, problems)."""
    files = staged["files"] + list((staged.get("romfs") or {}).get("files", ()))
    paths = [f["dest"] for f in files]

    def fn(raw):
        got = {}
        if staged.get("romfs"):
            _raw_soft_reset(raw)
        raw.exec(_HASHES)
        for i in range(0, len(paths), 16):
            out = raw.exec("".join("_dh(%r)\n" % p for p in paths[i:i + 16]), timeout_s=60).decode()
            for ln in out.splitlines():
                parts = ln.split()
                if len(parts) == 2:
                    got[parts[0]] = parts[1]
        present = raw.exec("import os\nfor p in %r:\n try:\n  os.stat(p);print(p)\n except OSError:\n  pass\n"
                           % ([p for e in extra for p in e],)).decode().split()
        return got, present
    got, present = _raw(port_path, fn)
    problems = []
    ok = 0
    for f in files:
        h = got.get(f["dest"])
        if h == f["sha256"]:
            ok += 1
        elif h in (None, "-"):
            problems.append("%s: missing on the device" % f["dest"])
        else:
            problems.append("%s: sha256 on the device %s..., local %s..." % (f["dest"], h[:12], f["sha256"][:12]))
    for alts in extra:
        if not any(p in present for p in alts):
            problems.append("%s: the mip dependency is not on the device" % " or ".join(alts))
    return ok, problems


def soft_reset(port_path, wait_s=BOOT_WAIT_S):
    """Ctrl-D at the friendly REPL: main.py starts the new firmware. Returns what it printed up
    to the idle prompt ("Press START") or the REPL banner; DeployError on a traceback."""
    with SL.Port(port_path) as port:
        port.write(b"\r\x03\x03\x02")
        port.drain(0.1, 2.0)
        port.write(b"\x04")
        deadline = time.monotonic() + wait_s
        out = b""
        while time.monotonic() < deadline:
            port._fill(0.2)
            i = port.buf.find(b"soft reboot")
            if i < 0:
                continue
            out = bytes(port.buf[i:])
            if READY_MARK in out or SL.REPL_BANNER in out or b"\n>>> " in out:
                break
    text = out.decode("utf-8", "replace").replace("\r", "")
    if "Traceback" in text:
        raise DeployError("the new firmware fails at boot (main.py):\n" + text.strip()[-1500:])
    if not out:
        raise DeployError("no soft reboot after Ctrl-D: is the device at the MicroPython REPL?")
    return text.strip()


def deploy(board, port_path, compile_mpy=True, deps=True, index=None, config=None, reset=True, force=False,
           log=print, key=None, replace_key=False, romfs=False):
    """The whole deploy; returns a JSON-ready summary. DeployError on any failure. key: the
    device key to provision (bytes) or None (the device keeps the key it has). romfs: the
    modules as a ROMFS image (module header)."""
    t0 = time.monotonic()
    staged = stage(board, compile_mpy, config, romfs=romfs)
    try:
        return _deploy(staged, board, port_path, compile_mpy, deps, index, reset, force, log, t0, key, replace_key)
    finally:
        shutil.rmtree(staged["dir"], ignore_errors=True)


def _deploy(staged, board, port_path, compile_mpy, deps, index, reset, force, log, t0, key=None, replace_key=False):
    n_bytes = sum(f["size"] for f in staged["files"])
    rom = staged.get("romfs")
    log("deploy: %s firmware %s, %d files, %.1f kB (%s)%s -> %s" % (
        board, staged["manifest"]["fw_version"], len(staged["files"]), n_bytes / 1000,
        "bytecode .mpy" if compile_mpy else "sources",
        ", ROMFS image of %d modules, %d bytes" % (len(rom["files"]), rom["size"]) if rom else "", port_path))
    try:
        refuse_if_running(port_path)
        info = device_info(port_path)
        heap = device_heap(port_path)
    except SL.LinkError as e:
        raise DeployError(str(e))
    log("device: MicroPython %s on %s (.mpy v%d), %.0f kB free, idle" % (
        info["version"], info["platform"], info["mpy"] & 0xFF, info["free_bytes"] / 1000))
    log("heap: %.1f KB free after boot (GC heap %.1f KB)%s" % (
        heap["free_bytes"] / 1024, heap["total_bytes"] / 1024,
        ", the %s firmware needs %d KB" % (board, HEAP_NEED_KB[board]) if board in HEAP_NEED_KB else ""))
    warnings = check_device(board, info, staged, compile_mpy, force) + check_heap(board, heap, force)
    # a ROMFS that holds firmware modules (an earlier --romfs deploy) would shadow the new /lib ones
    ours = {os.path.basename(f["dest"]) for f in staged["files"]} | \
        {os.path.basename(d) + ext for _, d in sources(board) for ext in (".mpy", ".py")} | \
        {d.split("/")[2] for _, d in sources(board) if d.count("/") > 2}     # the firmware package's folder
    stale_rom = not rom and bool(ours & set(info.get("rom_lib") or ()))
    rom_q = None
    if rom or stale_rom:
        rom_q = romfs_query(port_path)
        if rom:
            check_romfs_fits(rom, rom_q)
            log("romfs: the image (%d bytes) fits the ROMFS partition (%d bytes, %.0f %% used)" % (
                rom["size"], rom_q["partition_bytes"], 100.0 * rom["size"] / rom_q["partition_bytes"]))
    for w in warnings:
        log("warning: " + w)
    want = [d[0] for d in package_deps()] if BOARDS[board]["deps"] else []
    installed = []
    if want and deps:
        installed = install_deps(port_path, package_deps(), index, log)
    elif want:
        log("mip: skipped (--no-deps): %s must already be on the device, or the display stays off"
            % ", ".join(want))
    else:
        log("mip: the %s board needs no dependency" % board)
    try:
        removed = clean(port_path, staged, info["previous"])
        if removed:
            log("removed: %s" % ", ".join(removed))
        same = copy(port_path, staged)
        log("copied: %d files (%d already identical)" % (len(staged["files"]) - same, same))
        if rom:
            romfs_deploy(port_path, rom["image"])
            log("romfs: %d modules written to the ROMFS partition (%d bytes)" % (len(rom["files"]), rom["size"]))
        elif stale_rom:
            romfs_deploy(port_path, empty_romfs(staged["dir"]))
            log("romfs: emptied (it held firmware modules of an earlier --romfs deploy, which would shadow /lib)")
        ok, problems = verify(port_path, staged, [("/lib/%s.mpy" % n, "/lib/%s.py" % n) for n in installed])
    except SL.LinkError as e:
        raise DeployError(str(e))
    if problems:
        raise DeployError("verification failed (deploy again):\n  " + "\n  ".join(problems))
    log("verified: sha256 of %d files on the device match%s" % (ok, " (%d in the ROMFS)" % len(rom["files"])
                                                                 if rom else ""))
    try:
        if key is not None:
            kid = provision_key(port_path, key, replace_key, log)
        else:
            kid = device_key_id(port_path)
            if kid in ("none", "bad"):
                log("warning: the device has no device key: its run logs will not be sealed (provision one "
                    "with --key FILE)")
            else:
                log("device key: %s (kept)" % kid)
    except SL.LinkError as e:
        raise DeployError(str(e))
    boot = None
    if reset:
        try:
            boot = soft_reset(port_path)
        except SL.LinkError as e:
            raise DeployError("deployed and verified, but the soft reset failed: %s" % e)
        lines = [ln for ln in boot.splitlines() if ln.strip() and "soft reboot" not in ln]
        ready = [ln for ln in lines if READY_MARK.decode() in ln]
        log("reset: main.py started%s" % ((": " + (ready or lines)[0]) if lines else ""))
    return {"board": board, "port": port_path, "fw_version": staged["manifest"]["fw_version"],
            "compiled": bool(compile_mpy), "files": [{"path": f["dest"], "sha256": f["sha256"], "size": f["size"]}
                                                     for f in staged["files"]],
            "verified": ok, "removed": removed, "up_to_date": same, "deps": installed, "key_id": kid, "device": {
                k: info[k] for k in ("platform", "version", "mpy", "free_bytes")},
            "heap": heap,
            "romfs": {"size": rom["size"], "sha256": rom["sha256"], "partition_bytes": rom_q["partition_bytes"],
                      "files": [f["dest"] for f in rom["files"]]} if rom else None,
            "boot": boot, "wall_s": round(time.monotonic() - t0, 2)}
