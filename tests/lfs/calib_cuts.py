"""Power cuts at the flash (issue 11, item 4) for the calibration store and the audit trail: the
firmware's own functions (calstore.py: spans, check weight and its history, thermocouple
offsets, PID gains, load-cell data, equipment; plan.save_blank / forget_blank; audit.py: START's
check, the firmware's entries, the run header's slice) on real littlefs -- `vfs.VfsLfs2` of the
MicroPython unix port -- over the modelled Pico flash (tests/lfs/nor_flash.py), driven by
tests/lfs/lfs_calib.py (which has the sequence and the checks).

Two series, like the run log's (power_cuts.py): a cut at every flash write of a short sequence
(a few rounds of every calibration change), and at random writes of a longer one (its trail
spans many blocks). After each cut: the flash mounts; every calibration file is whole, its
content before the interrupted change or after it, never missing once it existed
(lfs_cal_files_torn); a write that had returned kept its content (lfs_cal_completed_writes_lost);
every audit line appended before the cut is there byte for byte and parses
(lfs_audit_lines_lost); a last line without its newline is flagged by the firmware's reader
(lfs_audit_torn_unreported); the firmware writes again (START's audit check, the interrupted
change once more, the rest of its round) and then the trail accounts for every file
(lfs_audit_state_mismatch: its replay, the snapshot and the files agree).

    python tests/lfs/calib_cuts.py [--every-rounds 3] [--random-rounds 20] [--random 400] [--json] [--out F]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from power_cuts import HarnessError, micropython  # noqa: E402

DEVICE = os.path.join(HERE, "lfs_calib.py")
FIRMWARE = os.path.join(ROOT, "firmware")
BATCH = 100                    # trials per micropython process


def device(mode, rounds, ks=None, faults=None, timeout=3600):
    """Rows of lfs_calib.py; faults (a comma list, see lfs_calib.py) test the checks themselves."""
    cmd = [micropython(), "-X", "heapsize=16M", DEVICE, FIRMWARE, mode, str(rounds)]
    with tempfile.TemporaryDirectory(prefix="lfscal-") as work:
        if ks is not None:
            kfile = os.path.join(work, "ks.txt")
            with open(kfile, "w") as f:
                f.write(",".join(str(k) for k in ks))
            cmd.append(kfile)
            if faults:
                cmd.append(faults)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    rows = [json.loads(line[4:]) for line in p.stdout.splitlines() if line.startswith("@@C ")]
    if p.returncode != 0:
        raise HarnessError("lfs_calib.py %s failed (rc %d): %s" % (mode, p.returncode,
                                                                  (p.stderr or p.stdout)[-1500:]))
    return rows


COUNTS = ("files_torn", "files_missing", "writes_lost", "files_changing", "files_new", "tmp_left",
          "lines_synced", "lines_lost", "torn_line", "torn_unreported", "reader_lines_missed",
          "complete_lines_corrupt", "external", "trail_short", "overwrites")


def series(rounds, ks):
    out = {"cuts": 0, "not_cut": 0, "mount_failures": 0, "not_writable": 0, "state_mismatch": 0,
           "trail_foreign": 0, "final_differs": 0, "header_corrupt_wrong": 0, "problems": [], "by_step": {}}
    for k in COUNTS:
        out[k] = 0
    for i in range(0, len(ks), BATCH):
        for row in device("cuts", rounds, ks[i:i + BATCH]):
            if not row["cut"]:
                out["not_cut"] += 1
                out["problems"].extend("cut %d (none): %s" % (row["k"], p) for p in row["problems"])
                continue
            out["cuts"] += 1
            where = "cut %d (%s)" % (row["k"], row.get("name"))
            out["problems"].extend("%s: %s" % (where, p) for p in row["problems"])
            out["by_step"][row["name"]] = out["by_step"].get(row["name"], 0) + 1
            if not row.get("mounted"):
                out["mount_failures"] += 1
                continue
            for k in COUNTS:
                out[k] += row.get(k, 0)
            if not row.get("writable"):
                out["not_writable"] += 1
            if not row.get("state_ok"):
                out["state_mismatch"] += 1
            if row.get("trail_foreign"):
                out["trail_foreign"] += 1
            if row.get("final_differs"):
                out["final_differs"] += 1
            if row.get("header_corrupt") != row.get("torn_line"):
                out["header_corrupt_wrong"] += 1
                out["problems"].append("%s: the run header counts %s corrupt lines, %d torn"
                                       % (where, row.get("header_corrupt"), row.get("torn_line", 0)))
    out["problems"] = out["problems"][:10]
    return out


def torn_check():
    """A torn last line on littlefs: flagged by the line reader and the run header's slice,
    kept, and the next entry on a line of its own (lfs_calib.py MODE torn)."""
    r = device("torn", 1)[0]
    n = r["lines"]
    ok = (r["flagged"] == [n] and r["header_corrupt_lines"] == [n] and len(r["after"]) == n + 1
          and r["after"][n - 1] is None and r["after"][n] == "calib.tc_offset" and r["state_ok"])
    return ok, r


def campaign(every_rounds=3, random_rounds=20, n_random=400, seed=13, every=1):
    t0 = time.time()
    res = {}
    for name, rounds, n in (("every", every_rounds, None), ("random", random_rounds, n_random)):
        if rounds <= 0 or (n is not None and n <= 0):
            continue
        ref = device("ref", rounds)[0]
        if n is None:
            ks = list(range(1, ref["ops"] + 1, every))
        else:
            ks = sorted(random.Random(seed).sample(range(1, ref["ops"] + 1), min(n, ref["ops"])))
        s = series(rounds, ks)
        s["rounds"] = rounds
        s["flash_writes"] = ref["ops"]
        s["trail_bytes"] = ref["trail_bytes"]
        s["trail_lines"] = ref["trail_lines"]
        s["steps"] = ref["steps"]
        res[name] = s
    torn_ok, torn = torn_check()

    def tot(k):
        return sum(s[k] for s in res.values())

    allp = [p for s in res.values() for p in s["problems"]]
    out = {
        "lfs_cal_power_cuts": tot("cuts"),
        "lfs_cal_power_cuts_every_write": res["every"]["cuts"] if "every" in res else 0,
        "lfs_cal_power_cuts_random": res["random"]["cuts"] if "random" in res else 0,
        "lfs_cal_steps_per_round": len(next(iter(res.values()))["steps"]) if res else 0,
        "lfs_cal_rounds_every_write": every_rounds,
        "lfs_cal_flash_writes_every_write": res["every"]["flash_writes"] if "every" in res else 0,
        "lfs_cal_rounds_random": random_rounds if "random" in res else 0,
        "lfs_cal_flash_writes_random": res["random"]["flash_writes"] if "random" in res else 0,
        "lfs_cal_trail_bytes_random": res["random"]["trail_bytes"] if "random" in res else 0,
        "lfs_cal_files_torn": tot("files_torn"),
        "lfs_cal_files_missing": tot("files_missing"),
        "lfs_cal_completed_writes_lost": tot("writes_lost"),
        # files the interrupted step was changing, and how many of them came back new (the rest old)
        "lfs_cal_files_in_flight": tot("files_changing"),
        "lfs_cal_files_in_flight_new": tot("files_new"),
        "lfs_cal_tmp_files_left": tot("tmp_left"),
        "lfs_cal_mount_failures": tot("mount_failures"),
        "lfs_cal_not_writable_after_cut": tot("not_writable"),
        "lfs_cal_differs_after_recovery": tot("final_differs"),
        "lfs_cal_program_of_unerased_bytes": tot("overwrites"),
        "lfs_audit_lines_synced_checked": tot("lines_synced"),
        "lfs_audit_lines_lost": tot("lines_lost"),
        "lfs_audit_trail_foreign_bytes": tot("trail_foreign"),
        "lfs_audit_complete_lines_corrupt": tot("complete_lines_corrupt"),
        "lfs_audit_torn_lines": tot("torn_line"),
        "lfs_audit_torn_unreported": tot("torn_unreported"),
        "lfs_audit_reader_lines_missed": tot("reader_lines_missed"),
        "lfs_audit_header_corrupt_wrong": tot("header_corrupt_wrong"),
        "lfs_audit_trail_short": tot("trail_short"),
        "lfs_audit_state_mismatch": tot("state_mismatch"),
        # a cut after a calibration file was renamed into place and before its audit line was
        # appended: START's check finds the change and records it, as "external"
        "lfs_audit_changes_recorded_external": tot("external"),
        "lfs_audit_torn_line_reported": torn_ok,
        "lfs_cal_problems": allp[:10] + ([] if torn_ok else ["torn line check: %r" % (torn,)]),
        "lfs_cal_cut_wall_s": round(time.time() - t0, 1),
    }
    return out


BAD = ("lfs_cal_files_torn", "lfs_cal_completed_writes_lost", "lfs_cal_mount_failures",
       "lfs_cal_not_writable_after_cut", "lfs_cal_differs_after_recovery", "lfs_audit_lines_lost",
       "lfs_audit_trail_foreign_bytes", "lfs_audit_complete_lines_corrupt", "lfs_audit_torn_unreported",
       "lfs_audit_reader_lines_missed", "lfs_audit_header_corrupt_wrong", "lfs_audit_trail_short",
       "lfs_audit_state_mismatch", "lfs_cal_program_of_unerased_bytes")


def failed(res):
    """The keys that must be 0 and are not (and the torn-line check)."""
    bad = [k for k in BAD if res[k]]
    if not res["lfs_audit_torn_line_reported"]:
        bad.append("lfs_audit_torn_line_reported")
    return bad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--every-rounds", type=int, default=3, help="rounds of the sequence cut at every write")
    ap.add_argument("--random-rounds", type=int, default=20, help="rounds of the sequence cut at random writes")
    ap.add_argument("--random", type=int, default=400, help="number of random cuts")
    ap.add_argument("--every", type=int, default=1, help="cut every Nth write of the short sequence")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", help="also merge the keys into this JSON file (build/bench.json)")
    a = ap.parse_args(argv)
    res = campaign(a.every_rounds, a.random_rounds, a.random, every=a.every)
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
    return 1 if failed(res) else 0


if __name__ == "__main__":
    sys.exit(main())
