"""Power cuts at the flash on real littlefs, small series of the campaigns in `make lfs-cuts`: the
run log (tests/lfs/power_cuts.py, >= 1000 cuts in full) and the calibration store with the audit
trail (tests/lfs/calib_cuts.py), and the calibration checks' own test against faulty writers."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lfs"))
sys.path.insert(0, os.path.join(ROOT, "host_tools"))

import power_cuts as P  # noqa: E402

pytestmark = pytest.mark.vm


def test_cuts_lose_no_synced_record_and_the_flash_mounts():
    r = P.campaign(n_cells=2, short_s=120, long_s=600, n_random=40, wear_s=600, every=3)
    assert r["lfs_power_cuts"] >= 60, r
    assert r["lfs_power_cuts_every_write"] > 0 and r["lfs_power_cuts_random"] > 0
    assert r["lfs_synced_records_lost"] == 0, r["lfs_problems"]
    assert r["lfs_mount_failures"] == 0, r["lfs_problems"]
    assert r["lfs_not_writable_after_cut"] == 0, r["lfs_problems"]
    assert r["lfs_logs_unreadable"] == 0, r["lfs_problems"]
    assert r["lfs_program_of_unerased_bytes"] == 0
    assert r["lfs_erases_per_run"] > 0 and r["lfs_flash_life_runs"] > 0


def test_a_lost_record_is_counted(tmp_path):
    # the check itself: a synced record missing or altered in the read-back log is counted
    rows = P.device(str(tmp_path), "ref", 120, 2)
    data = (tmp_path / "ref.bin").read_bytes()
    from ovenctl.logfile import read_log
    recs = read_log(data).records
    synced = rows[0]["synced"]
    assert P.records_lost(recs, data, data, synced) == 0
    last = recs[-1]
    assert P.records_lost(recs, data, data[:last.offset], synced) == 1
    bad = bytearray(data)
    bad[recs[1].offset + 3] ^= 0xFF
    assert P.records_lost(recs, data, bytes(bad), synced) == 1
    assert P.records_lost(recs, data, None, synced) == len(recs)


# ---------------------------------------------------------------- calibration store, audit trail
# (tests/lfs/calib_cuts.py; the full series is in `make lfs-cuts`)
import calib_cuts as C  # noqa: E402


def test_calibration_and_audit_trail_survive_every_cut():
    r = C.campaign(every_rounds=1, random_rounds=3, n_random=12, every=3)
    assert r["lfs_cal_power_cuts_every_write"] >= 50 and r["lfs_cal_power_cuts_random"] == 12, r
    assert r["lfs_cal_steps_per_round"] >= 10
    assert C.failed(r) == [], r["lfs_cal_problems"]
    assert r["lfs_cal_files_torn"] == 0 and r["lfs_audit_lines_lost"] == 0
    # the checks saw something: files changing at the cut (some came back new, some old) and
    # trail lines that had to survive
    assert 0 < r["lfs_cal_files_in_flight_new"] < r["lfs_cal_files_in_flight"]
    assert r["lfs_audit_lines_synced_checked"] > 100
    assert r["lfs_audit_torn_line_reported"] is True


def _faulty(fault, ks):
    # (a fault changes the number of flash writes of the sequence: the last K may cut nothing)
    rows = [x for x in C.device("cuts", 1, ks=ks, faults=fault) if x["cut"]]
    assert len(rows) >= 25
    return rows


def test_the_checks_find_a_torn_file_a_torn_line_and_a_lost_line():
    ks = list(range(1, 179, 4))
    # calibration files written in place: a cut right after a file is created leaves it empty
    rows = _faulty("naive_write", ks)
    assert sum(x["files_torn"] for x in rows) > 0
    # a trail line written in two synced halves: a cut between them tears it; the firmware's
    # reader and the run header flag it, and after the recovery it is still there, reported
    rows = _faulty("split_append", ks)
    torn = [x for x in rows if x["torn_line"]]
    assert torn and all(x["torn_unreported"] == 0 and x["header_corrupt"] == 1 and x["corrupt_after"] == 1
                        for x in torn)
    assert sum(x["lines_lost"] for x in rows) == 0
    # an append that returns before its line is synced: the cut loses lines counted as synced
    rows = _faulty("lazy_append", ks)
    assert sum(x["lines_lost"] for x in rows) > 0
