"""The run log's flash budget (docs/LOGFORMAT.md §8): a test starts only with room for its planned
log; a run that outgrows the room it found ends with F_FLASH while the reserve still holds its
ABORTED verdict, END and last SEAL, so the log is complete and its seal checks."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REL = os.path.join(ROOT, "tests", "reliability")
if REL not in sys.path:
    sys.path.insert(0, REL)

import common  # noqa: E402
import flash as flash_campaign  # noqa: E402
import memfs  # noqa: E402
from oven.store import runlog  # noqa: E402

pytestmark = pytest.mark.e2e

SCN = flash_campaign.QUICK_SCN
LOG = common.RUNS + "/sim-0001.log"


def _planned(plan):
    m = plan.method
    return runlog.bytes_planned(m["soak_s"] + m["heatup_timeout_s"] + 7200, plan.n_cells)


def test_start_refused_without_room_for_the_planned_log():
    fs = memfs.MemFS()
    with common.flash(fs):
        plan = common.Plan(common.scenario(SCN))
        fs.capacity = _planned(plan) - 8192       # nothing written yet: this is what statvfs reports
        s = common.session(plan)
        common.run_to_end(s)
    assert s.ctrl is None and s.result is None, (s.result, s.error)
    assert "not enough flash for the run log" in s.error and "kB needed" in s.error, s.error
    assert plan.bench.heater_duty_ppm == 0 and not plan.bench.pump_on
    assert LOG not in fs.files


def test_start_allowed_with_room_for_the_planned_log():
    fs = memfs.MemFS()
    with common.flash(fs):
        plan = common.Plan(common.scenario(SCN))
        fs.capacity = _planned(plan) + 65536
        s = common.session(plan)
        assert s.log is not None and 0 < s.log.budget_bytes
        assert s.log.budget_bytes <= fs.capacity - runlog.RESERVE_BYTES
        common.run_to_end(s)
    assert s.result in common.MEASURED and s.ctrl.fault == 0, (s.result, s.error)


def test_a_run_that_outgrows_its_budget_ends_with_a_complete_log():
    fs = memfs.MemFS()
    with common.flash(fs):
        plan = common.Plan(common.scenario(SCN))
        s = common.session(plan)
        log = s.log
        start = log.bytes_written
        log.budget_bytes = start + 6000      # the flash found at the start holds ~10 minutes of samples
        common.run_to_end(s)
    c = s.ctrl
    assert s.result == "ABORTED" and c.fault == common.C.F_FLASH, (s.result, c.fault)
    assert log.full and log.bytes_written - log.budget_bytes <= runlog.RESERVE_BYTES
    assert plan.bench.heater_duty_ppm == 0 and not plan.bench.pump_on
    data = fs.read(LOG)
    rl = common.read_log(data)
    assert rl.complete and rl.verdict["verdict"] == "ABORTED" and rl.problems == [], rl.problems
    faults = [e for e in rl.events if e["code"] == common.C.F_FLASH]
    assert len(faults) == 1 and faults[0]["a"] == 0           # a = 0: the budget, not an I/O error
    assert common.seal_problems(data, rl) == []
    # nothing in the log after the budget but the end of the run: the last block, the fault,
    # the verdict, END and SEAL
    assert len(data) - start <= 6000 + runlog.RESERVE_BYTES
