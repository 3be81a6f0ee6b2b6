"""Shared pieces of the reliability campaign: paths, the in-process device (main.Session on the
simulated bench, the firmware under CPython, its flash a MemFS), and checks of run logs."""
import contextlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for _p in ("host_tools", "firmware", "boards", os.path.join("tests", "shim"), os.path.join("tests", "reliability")):
    _full = os.path.join(ROOT, _p)
    if _full not in sys.path:
        sys.path.insert(0, _full)

from oven.run import app  # noqa: E402
from oven.core import codes as C  # noqa: E402
from oven import link  # noqa: E402
import main  # noqa: E402
from oven.run import session as fw_session  # noqa: E402  (the firmware's session.py)
from oven.run import powercut as fw_powercut  # noqa: E402  (its power-cut recovery at boot)
from oven.core import methods  # noqa: E402
from ovenctl import verify  # noqa: E402
from ovenctl.logfile import LogError, read_log  # noqa: E402
from ovenctl.scenario import normalize  # noqa: E402
from sim.board import SimBoard  # noqa: E402
from sim.vdev import SimPlan  # noqa: E402

RUNS = "/runs"
MEASURED = ("PASS", "FAIL", "INCONCLUSIVE")
FIRMWARE_MESSAGES = []      # what main.py printed (its console), the last 200 lines


def _console(*a, **kw):
    FIRMWARE_MESSAGES.append(" ".join(str(x) for x in a))
    del FIRMWARE_MESSAGES[:-200]


fw_session.print = _console  # session.py's console output is kept here instead of flooding stdout
fw_powercut.print = _console


# ---------------------------------------------------------------- the in-process device
class Plan(SimPlan):
    """The virtual device's plan (boards/sim/vdev.py: same bench preparation and controllers),
    with a battery-backed clock and optionally the hardware watchdog armed on its board."""

    def __init__(self, scn, rtc=True, wdt_ms=0):
        SimPlan.__init__(self, scn)
        self.board = SimBoard(self.bench, rtc=rtc, wdt_ms=wdt_ms)


class ResumePlan:
    """What a board_select.resume_plan(header) returns: the same physical bench (it kept running
    through the outage), a fresh board object (the firmware's RAM is gone)."""

    check_space = True
    run_id = None
    blank_run = False
    blank = None

    def __init__(self, header, bench, rtc=True, wdt_ms=0):
        self.bench = bench
        self.board = SimBoard(bench, rtc=rtc, wdt_ms=wdt_ms)
        self.method = methods.validate(header["method"])
        self.n_cells = bench.n_cells
        # as start.resume_plan does: the calibration the run started with, from its log header
        self.cal = header.get("cal")

    def new_controller(self, mode, blank_fit, log):
        return app.Controller(self.board, self.method, mode=app.MODE_TEST, blank=blank_fit, log=log,
                              counts_per_g=self.board.counts_per_g, cal=self.cal)


class BoardSelect:
    """board_select after a reboot: resume_plan() only when the board can resume (rtc + plan)."""

    def __init__(self, bench, can_resume=True, rtc=True, wdt_ms=0):
        self.bench = bench
        self.rtc = rtc
        self.wdt_ms = wdt_ms
        self.plans = []
        if can_resume:
            self.resume_plan = self._resume_plan

    def _resume_plan(self, header):
        p = ResumePlan(header, self.bench, self.rtc, self.wdt_ms)
        self.plans.append(p)
        return p

    @staticmethod
    def link_rx():
        return link.RxRing(4096)

    @staticmethod
    def link_tx():
        return _null_tx


def _null_tx(b):
    return len(b)


@contextlib.contextmanager
def flash(fs):
    """Install a MemFS as the firmware's filesystem: the os and open of the modules that do file
    I/O at run time and at boot (session.py, powercut.py)."""
    saved = []
    for mod in (fw_session, fw_powercut):
        saved.append((mod, mod.os, "open" in mod.__dict__, mod.__dict__.get("open")))
        mod.os = fs.os
        mod.open = fs.open
    try:
        yield fs
    finally:
        for mod, old_os, had_open, old_open in saved:
            mod.os = old_os
            if had_open:
                mod.open = old_open
            else:
                del mod.open


# every in-process device has a device key: its logs are sealed, and each log the campaign ends
# with is checked with the key (ovenctl/sealcheck.py, what `ovenctl verify --key` runs)
DEVICE_KEY = bytes(range(100, 132))


def session(plan, rx=None, tx=None):
    return main.Session(plan, rx if rx is not None else link.RxRing(4096), tx or _null_tx, runs_dir=RUNS,
                        key=DEVICE_KEY)


def seal_problems(data, log):
    """[] when the log's seal checks with the device key, else what is wrong."""
    from ovenctl import sealcheck
    r = sealcheck.check(data, log, DEVICE_KEY)
    return [] if r["status"] == "ok" else r["problems"][:2] or [r["status"]]


def run_to_end(s, max_ticks=10 ** 7):
    n = 0
    while n < max_ticks:
        r = s.advance(1000)
        if r < 0:
            return n
        n += r
    raise RuntimeError("session did not end")


def scenario(obj):
    return normalize(obj)


# ---------------------------------------------------------------- log checks
def records_lost(before, after):
    """Records of `before` (a durable log image) that `after` does not hold byte-identical at the
    same offset. 0 also when `before` holds no complete record."""
    if not before:
        return 0
    if after[:len(before)] == before:
        return 0
    try:
        recs = read_log(before).records
    except LogError:
        return 0 if after.startswith(before[:0]) else 1
    lost = 0
    for r in recs:
        if after[r.offset:r.offset + r.length] != before[r.offset:r.offset + r.length]:
            lost += 1
    return lost


def measured_verdicts(log):
    """Verdict names of the log's VERDICT record (overall and per cell) that are measurements."""
    v = log.verdict if isinstance(log.verdict, dict) else {}
    out = []
    if v.get("verdict") in MEASURED:
        out.append(v["verdict"])
    for c in v.get("cells") or []:
        if isinstance(c, dict) and c.get("verdict") in MEASURED:
            out.append(c["verdict"])
    return out


def incomplete_reasons(log, method_soak_s=None):
    """Why a measured verdict in this log would rest on incomplete data ([] = it does not):
    verify's recomputation disagrees or finds damage, the samples show less in-spec soak than
    the method's soak_s, a tare/m0/m1 weighing or the SOAK_DONE event is missing, a fault or an
    INVALID event, or the run was interrupted."""
    if not measured_verdicts(log):
        return []
    why = []
    res = verify.verify_log(log)
    for f in res["findings"]:
        if f["level"] != "warning":
            why.append("verify: " + f["message"])
    m = res["method"]
    soak_s = method_soak_s if method_soak_s is not None else (m["soak_s"] if m else None)
    early_stop = (m is not None and m["early_fail"] == "stop"
                  and any(e["code"] == verify.E_EARLY_FAIL for e in log.events))
    if "PASS" in measured_verdicts(log) or not early_stop:
        # only an early FAIL (method early_fail "stop") may end the soak early, and never with a PASS
        if soak_s is not None and res["soak"]["in_spec_s_samples"] < soak_s:
            why.append("in-spec soak %d s < %d s" % (res["soak"]["in_spec_s_samples"], soak_s))
        if not res["soak"]["done_event"]:
            why.append("no SOAK_DONE")
    kinds = {(w["kind"], w["cell"]) for w in log.weighings if w["n"] >= 2}
    for c in range(log.n_cells):
        for k in (1, 2, 3):
            if (k, c) not in kinds:
                why.append("no %s weighing of cell %d" % (verify.KIND_NAMES[k], c))
    codes = {e["code"] for e in log.events}
    if codes & set(verify.FAULT_NAMES):
        why.append("fault event")
    if verify.E_INVALID in codes:
        why.append("INVALID event")
    if C.E_INTERRUPTED in codes:
        why.append("interrupted")
    return why
