# One test on the device (Session: blank run, test, run log, serial link) and the boot sequence
# (boot(): power-cut recovery, the run plan, the session). firmware/main.py is the thin entry that
# drives the outputs safe first and then runs main() here; this module is deployed precompiled.
# The board-specific parts come from the module `board_select` (docs/PROTOCOL.md, "Device entry
# point"): outputs_off(), autostart(), link_rx(), link_tx(), HOST_DRIVEN, optional resume_plan().
try:
    import board_select
except ImportError:
    board_select = None
import os

from oven.run import app
from oven.core import codes as C
from oven import link
from oven.store import runlog
from oven.core import verdict as V

RUNS_DIR = "/runs"
# The device key (32 bytes, written by `ovenctl deploy --key`): seals every run log
# (seal.py, docs/LOGFORMAT.md §10). Never printed, never logged, never served by the link.
KEY_PATH = "/devkey.bin"
_STAGE_BLANK = 0
_STAGE_TEST = 1


def rtc_s(board):
    """The board's battery-backed clock in seconds, or None (audit.rtc_s, without importing audit)."""
    f = getattr(board, "rtc_s", None)
    if f is None:
        return None
    try:
        return f()
    except Exception:           # noqa: BLE001  a clock that fails is no clock
        return None


def _kbd_intr(ch):
    # Ctrl-C must not interrupt a run: the console belongs to the link while it lasts
    try:
        import micropython
        micropython.kbd_intr(ch)
    except (ImportError, AttributeError):
        pass


def _mkdirs(path):
    cur = ""
    for part in path.split("/"):
        if not part:
            continue
        cur += "/" + part
        try:
            os.mkdir(cur)
        except OSError:
            pass


def load_key(path=KEY_PATH):
    """The device key, or None (no key: logs are written unsealed)."""
    try:
        with open(path, "rb") as f:
            k = f.read(64)
    except OSError:
        return None
    if len(k) != 32:
        print("main.py: %s is not a 32-byte key: run logs will not be sealed" % path)
        return None
    return k


def next_run_id(runs_dir, prefix):
    """prefix-NNNN, one more than the highest number already in runs_dir."""
    hi = 0
    try:
        names = os.listdir(runs_dir)
    except OSError:
        names = []
    for name in names:
        if name.startswith(prefix + "-") and name.endswith(".log"):
            num = name[len(prefix) + 1:-4]
            if num.isdigit() and int(num) > hi:
                hi = int(num)
    return "%s-%04d" % (prefix, hi + 1)


class Session:
    """One test on the device: an optional blank (empty-pan) run, then the test with its run log
    in /runs/<run_id>.log. The caller advances it tick by tick (advance()); the serial link is
    polled once per control tick through Controller.link_poll.

    The plan (board_select.autostart()) provides: board, method (validated), n_cells, blank_run,
    blank (a stored drift fit or None), new_controller(mode, blank_fit, log) -> app.Controller,
    header(run_id, blank_fit) -> dict for the log header, and optionally run_id."""

    def __init__(self, plan, rx, tx=None, runs_dir=RUNS_DIR, check_space=True, resume=None, key=None):
        self.plan = plan
        self.key = key
        self.b = plan.board
        self.runs_dir = runs_dir
        _mkdirs(runs_dir)
        if resume is not None:
            # (run_id, recovery.LogState, outage_s): continue that run's soak (recover() below)
            self.run_id = resume[0]
        else:
            self.run_id = getattr(plan, "run_id", None) or next_run_id(runs_dir, self.b.name)
        self.path = runs_dir + "/" + self.run_id + ".log"
        self.link = link.Link(rx, tx if tx is not None else link.stdout_tx(), self, runs_dir)
        self.blank_fit = getattr(plan, "blank", None)
        self.log = None
        self.ctrl = None
        self.done = False
        self.host_aborted = False
        self.result = None
        self.error = None
        self._check_space = check_space
        self._next = None
        _kbd_intr(-1)
        try:
            if resume is not None:
                self._resume_stage(resume[1], resume[2])
            elif plan.blank_run and self.blank_fit is None:
                self._start_stage(_STAGE_BLANK)
            else:
                self._start_stage(_STAGE_TEST)
        except BaseException:
            self._emergency()
            raise

    # ---------------------------------------------------------------- stages
    def _start_stage(self, stage):
        for _ in self._stage_steps(stage):
            pass

    def _stage_steps(self, stage):
        """Start a stage, as a generator of steps: after a blank run advance() takes one step per
        tick, so that no single step holds the whole of the header's garbage or time (the heap gate,
        the watchdog: docs/FIT.md)."""
        self.stage = stage
        if stage == _STAGE_BLANK:
            c = self.plan.new_controller(app.MODE_BLANK, None, None)
        else:
            m = self.plan.method
            # planned: the soak, the heat-up's time-out and two hours for the cool-down and the
            # weighings; a longer run is ended by the log budget below, never left unrecorded
            run_s = m["soak_s"] + m["heatup_timeout_s"] + 7200
            free = runlog.free_bytes(self.runs_dir, statvfs=os.statvfs) if self._check_space else 0
            need = runlog.bytes_planned(run_s, self.plan.n_cells)
            if self._check_space and (free is None or free < need):
                self.error = ("not enough flash for the run log: %d kB free, %d kB needed"
                              % (-1 if free is None else free // 1024, need // 1024))
                print("main.py: %s: test not started" % self.error)
                self._end(None)
                return
            if self.host_aborted:
                self._end(None)
                return
            plan = self.plan
            prep = getattr(plan, "prepare_steps", None)
            if prep is not None:
                # audit trail checked, a blank run's fit stored and counted; then the header
                for _ in prep(self.run_id, self.blank_fit):
                    yield
                yield
                hdr = plan.build_header(self.run_id, plan.header_fit)
            else:
                hdr = plan.header(self.run_id, self.blank_fit)
            release(*PHASE_MODULES)     # the header is made: the log is written without them
            yield
            cal = hdr.get("calibration")
            if isinstance(cal, dict) and "blank" in cal:
                self.blank_fit = cal["blank"]       # with this run counted in its "runs_used"
            rtc = rtc_s(self.b)
            if rtc is not None:
                # a battery-backed clock: the outage of a power cut can be measured (recover())
                hdr["rtc_start_s"] = rtc
            log = runlog.RunLog(self.plan.n_cells, key=self.key)
            try:
                for _ in log.open_steps(self.path, hdr, opener=open):
                    yield
            except OSError as e:
                self.error = "cannot create the run log (%r)" % (e,)
                print("main.py: %s: test not started" % self.error)
                self._end(None)
                return
            hdr = None
            self._budget(log)
            self.log = log
            yield
            c = self.plan.new_controller(app.MODE_TEST, self.blank_fit, log)
        c.link_poll = self.link.poll
        self.ctrl = c
        c.start()
        if self.host_aborted:
            c.abort(C.F_OPERATOR_ABORT)     # asked while the stage was starting

    def _blank_over(self, c):
        # the blank run's drift fit (a channel a step), then the test stage's steps
        for _ in c.fit_steps():
            yield
        c.finish()
        # the recorder is gone with the fit: its module is not needed again before the test's
        # verdict, and the test's header is the run's fullest step (docs/FIT.md)
        release("oven.core.drift")
        if self.host_aborted:
            self._end(None)
            return
        self.blank_fit = c.blank_fit
        yield
        yield from self._stage_steps(_STAGE_TEST)

    def _resume_stage(self, st, outage_s):
        self.stage = _STAGE_TEST
        hdr = st.header
        lg = hdr["log"]
        if st.n_cells != self.plan.n_cells:
            raise ValueError("the resume plan has %d cells, the log %d" % (self.plan.n_cells, st.n_cells))
        rtc = rtc_s(self.b)
        r0 = hdr.get("rtc_start_s")
        if rtc is None or not isinstance(r0, int) or rtc < r0 + st.last_t:
            raise ValueError("no trustworthy clock to resume with")
        log = runlog.RunLog(st.n_cells, lg.get("sync_every_s", 10), lg.get("keyframe_every", 6),
                            key=self.key if _sealed(hdr) else None)
        log.reopen(self.path, st.next_seq, st.next_block, st.n_samples, st.last_t, st.valid_end, opener=open,
                   chain=st.chain.c if st.chain is not None else None, tags_first=st.tag_first, tags=st.tags)
        self._budget(log)
        self.log = log
        cal = hdr.get("calibration")
        self.blank_fit = cal.get("blank") if isinstance(cal, dict) else None
        c = self.plan.new_controller(app.MODE_TEST, self.blank_fit, log)
        c.link_poll = self.link.poll
        self.ctrl = c
        c.resume(st, (rtc - r0) * 1000, outage_s)

    def _budget(self, log):
        # what is free now, less the reserve for the run's end, is what the log may still use
        if self._check_space:
            free = runlog.free_bytes(self.runs_dir, statvfs=os.statvfs)
            if free is not None:
                log.budget_bytes = log.bytes_written + max(1, free - runlog.RESERVE_BYTES)

    def _stage_over(self):
        c = self.ctrl
        self.b.outputs_safe()
        # advance() takes what follows a step per tick (the heap gate, the watchdog)
        self._next = self._blank_over(c) if self.stage == _STAGE_BLANK else self._test_over(c)

    def _test_over(self, c):
        yield
        c.finish()                  # VERDICT + END records, log closed
        self.log = None
        self._end(V.VERDICT_NAMES[c.final_verdict()])

    def _end(self, verdict):
        self.result = verdict
        self.done = True
        self.link.close()
        self.b.outputs_safe()
        _kbd_intr(3)

    def _emergency(self):
        try:
            self.b.outputs_safe()
        finally:
            self.done = True
            self.link.close()
            _kbd_intr(3)

    # ---------------------------------------------------------------- driving
    def advance(self, max_ticks):
        """Run up to max_ticks control ticks. Returns the number run, or -1 once the session is
        over (the caller then returns to the REPL). Outputs are safe on every exit, also on an
        exception (which propagates)."""
        if self.done:
            return -1
        n = 0
        try:
            while n < max_ticks:
                nx = self._next
                if nx is not None:
                    # the test stage starting (_stage_steps): outputs are off, the watchdog fed
                    self.b.wdt_feed()
                    try:
                        next(nx)
                    except StopIteration:
                        self._next = None
                    if self.done:
                        return -1
                elif not self.ctrl.step():
                    self._stage_over()
                    if self.done:
                        return -1
                else:
                    self.ctrl.housekeep()
                n += 1
        except BaseException:
            self._emergency()
            raise
        return n

    def run(self):
        """Blocking run for a board whose clock sleeps (board.wait_until_ms)."""
        while self.advance(1000) >= 0:
            pass
        return self.result

    # ---------------------------------------------------------------- what the link asks
    def active(self):
        return not self.done

    def info(self):
        return {"fw": app.FW_VERSION, "board": self.b.name, "n_cells": self.plan.n_cells}

    def abort(self):
        """Host abort (after confirmation): heater and pump off at once, verdict ABORTED."""
        if self.done:
            return
        self.host_aborted = True
        self.ctrl.abort(C.F_OPERATOR_ABORT)

    def status(self):
        c = self.ctrl
        m = self.plan.method
        blank = self.stage == _STAGE_BLANK
        soak_s = m["blank_soak_s"] if blank else m["soak_s"]
        in_spec = c.soak_in_spec_ms // 1000
        ph = c.phase
        if ph < app.PH_SOAK:
            left = soak_s
        elif ph == app.PH_SOAK:
            left = soak_s - in_spec if soak_s > in_spec else 0
        else:
            left = 0
        live = []
        early = []
        for i in range(c.n):
            live.append(c.live_ppm[i])
            early.append(c.early_fail[i])
        return {"state": "done" if self.done else "run", "run": self.run_id,
                "stage": "blank" if blank else "test", "method": m["name"],
                "phase": app.PHASE_NAMES[ph], "t_s": c.t_s(),
                "temp_c_x100": c.temp_c_x100, "pressure_pa": c.pressure_pa, "duty_ppm": c.duty_ppm,
                "soak_s": soak_s, "soak_in_spec_s": in_spec, "soak_left_s": left,
                "live_ppm": live, "early_fail": early, "n_cells": c.n,
                "fault": c.fault, "invalid": c.invalid,
                "verdict": V.VERDICT_NAMES[c.final_verdict()] if not c.running() else None,
                "log_bytes": self.log.bytes_written if self.log is not None else 0,
                "link": {"requests": self.link.requests, "errors": self.link.errors,
                         "bytes_served": self.link.bytes_served}}

    def close(self):
        if not self.done:
            self._emergency()


# ---------------------------------------------------------------- power-cut recovery at boot
def _sealed(hdr):
    lg = hdr.get("log") if isinstance(hdr, dict) else None
    return isinstance(lg, dict) and lg.get("seal") == "hmac-sha256"


def recover(bs, runs_dir=RUNS_DIR, link_rx=None, link_tx=None, key=None):
    """At boot, before a new test: every run log without END was cut by a power loss or a reset.
    The newest may resume its soak (recovery.decide: docs/APP.md "Power cuts"), given a board
    with a resume plan (bs.resume_plan(header) -> plan, optional) and a battery-backed clock;
    every other one is closed INTERRUPTED. Returns the resumed Session, or None. A log without a
    valid header (a cut inside its very first write) is left as it is. The work is in powercut.py,
    released after boot."""
    from oven.run import powercut
    return powercut.recover(bs, runs_dir, link_rx, link_tx, key)


def boot():
    """The boot sequence as a generator, one phase per step (None), then the Session (or None when
    the device stays idle): power-cut recovery (its module released after it), the run plan
    (board_select.autostart()), the session. main() runs it through; the heap gate collects the
    garbage between its steps (tests/heap/README.md)."""
    if board_select is None:
        print("main.py: no board_select module on this device: idle (REPL)")
        yield None
        return
    s = None
    key = load_key()
    if key is None:
        print("main.py: no device key (%s): run logs are not sealed; provision one with "
              "`ovenctl deploy --key FILE`" % KEY_PATH)
    try:
        s = recover(board_select, RUNS_DIR, board_select.link_rx, board_select.link_tx, key)
    except Exception as e:          # noqa: BLE001  recovery never keeps the device from booting
        print("main.py: power-cut recovery failed: %r" % (e,))
    release("oven.run.powercut", "oven.run.recovery")
    if s is None:
        yield None
        plan = board_select.autostart()
        if plan is None:
            yield None
            return
        yield None
        s = Session(plan, board_select.link_rx(), board_select.link_tx(),
                    check_space=getattr(plan, "check_space", True), key=key)
        print("main.py: test %s started; serial link protocol active (docs/PROTOCOL.md)" % s.run_id)
        yield None
        release(*PHASE_MODULES)
    yield s


# loaded for START (the run plan, the calibration store, the audit trail, the method table) and
# again when the test's header is written; not needed while a stage runs
PHASE_MODULES = ("oven.run.start", "oven.run.header", "oven.store.calstore", "oven.core.calib", "oven.store.audit",
                 "oven.core.methods", "oven.control.autotune")


def release(*names):
    """Forget modules loaded for one phase (recovery at boot, the calibration store and the audit
    trail once a stage has started): their code is freed as soon as nothing refers to it, and a
    later `import` loads them again."""
    import sys
    if sys.implementation.name != "micropython":
        return                      # CPython (tests, host simulation): nothing to gain
    for n in names:
        if n in sys.modules:
            del sys.modules[n]
            # the package holds the submodule as an attribute too: drop it, or nothing is freed
            pkg, _, leaf = n.rpartition(".")
            p = sys.modules.get(pkg)
            if p is not None and leaf in p.__dict__:
                delattr(p, leaf)


def main():
    s = None
    for s in boot():
        pass
    if s is None:
        return None
    if getattr(board_select, "HOST_DRIVEN", False):
        # the virtual device: its host (node) calls s.advance() and services the serial port
        # between calls
        board_select.host_session = s
        return s
    try:
        s.run()
    finally:
        s.close()
    print("main.py: test %s ended: %s" % (s.run_id, s.result))
    hold = getattr(board_select, "after_run", None)
    if hold is not None:
        hold(s)         # real boards: the verdict stays on screen until a button is pressed
    return s


if __name__ == "__main__":
    main()
