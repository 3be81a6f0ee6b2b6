"""Power cuts at the flash on real littlefs (tests/lfs/power_cuts.py; the full campaign of >= 1000
cuts is `make lfs-cuts`): a small series here."""
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
