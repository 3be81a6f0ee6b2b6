# Device entry point (MicroPython runs /main.py after boot.py on a power-on or a friendly-REPL
# soft reset). Board-agnostic: everything board-specific comes from the module `board_select`
# (docs/PROTOCOL.md, "Device entry point"), which the deployment puts next to the firmware:
#
#   board_select.outputs_off()   heater, pump off and vent closed, with nothing but `machine`
#   board_select.autostart()     a run plan (start a test now) or None (stay idle at the REPL)
#   board_select.link_rx()       the serial link's byte source (link.StdinIO on a board)
#   board_select.link_tx()       the serial link's bytes writer (link.stdout_tx() on a board)
#   board_select.HOST_DRIVEN     True on the virtual device: the host calls Session.advance()
#
# Order matters: the outputs go safe FIRST, before any import that could fail (a missing or
# broken firmware module must not leave a heater on: GPIO levels survive a soft reset).
try:
    import board_select
except ImportError:
    board_select = None
if board_select is not None:
    try:
        board_select.outputs_off()
    except Exception as _e:          # noqa: BLE001  keep going: the REPL must stay reachable
        print("main.py: outputs_off failed:", _e)

import os

import app
import codes as C
import link
import runlog
import verdict as V

RUNS_DIR = "/runs"
_STAGE_BLANK = 0
_STAGE_TEST = 1


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

    def __init__(self, plan, rx, tx=None, runs_dir=RUNS_DIR, check_space=True):
        self.plan = plan
        self.b = plan.board
        self.runs_dir = runs_dir
        _mkdirs(runs_dir)
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
        _kbd_intr(-1)
        try:
            if plan.blank_run and self.blank_fit is None:
                self._start_stage(_STAGE_BLANK)
            else:
                self._start_stage(_STAGE_TEST)
        except BaseException:
            self._emergency()
            raise

    # ---------------------------------------------------------------- stages
    def _start_stage(self, stage):
        self.stage = stage
        if stage == _STAGE_BLANK:
            c = self.plan.new_controller(app.MODE_BLANK, None, None)
        else:
            m = self.plan.method
            run_s = m["soak_max_total_s"] + m["heatup_timeout_s"] + m["cooldown_timeout_s"] + 7200
            if self._check_space and not runlog.space_ok(self.runs_dir, run_s, self.plan.n_cells):
                self.error = "not enough flash for the run log"
                print("main.py: %s: test not started" % self.error)
                self._end(None)
                return
            log = runlog.RunLog(self.plan.n_cells)
            log.open(self.path, self.plan.header(self.run_id, self.blank_fit))
            self.log = log
            c = self.plan.new_controller(app.MODE_TEST, self.blank_fit, log)
        c.link_poll = self.link.poll
        self.ctrl = c
        c.start()

    def _stage_over(self):
        c = self.ctrl
        self.b.outputs_safe()
        c.finish()                  # test: VERDICT + END records, log closed
        if self.stage == _STAGE_BLANK:
            if self.host_aborted:
                self._end(None)
                return
            self.blank_fit = c.blank_fit
            self._start_stage(_STAGE_TEST)
        else:
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
                if not self.ctrl.step():
                    self._stage_over()
                    if self.done:
                        return -1
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


def main():
    if board_select is None:
        print("main.py: no board_select module on this device: idle (REPL)")
        return None
    plan = board_select.autostart()
    if plan is None:
        return None
    s = Session(plan, board_select.link_rx(), board_select.link_tx(),
                check_space=getattr(plan, "check_space", True))
    print("main.py: test %s started; serial link protocol active (docs/PROTOCOL.md)" % s.run_id)
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
    return s


if __name__ == "__main__":
    main()
