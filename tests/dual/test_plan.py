# firmware/oven/run/plan.py (a real board's board_select.autostart()) with a fake board, under CPython and
# in the MicroPython VM: /config.json handling, the idle START wait (NO cycles the methods, the
# watchdog is fed, the loop sleeps, Ctrl-C leaves it), the watchdog armed only at START, the blank
# fit stored after a blank run, the plan's controllers and log header.
import json
import os

import fsutil

from oven.run import app
from oven.store import audit
from oven.core import codes as C
from oven.run import plan
from oven.run import start


def _dir(name):
    return fsutil.fresh_dir("pl", name)


def _write(path, obj):
    f = open(path, "w")
    f.write(obj if isinstance(obj, str) else json.dumps(obj))
    f.close()


class Op:
    """Operator buttons: a script of events, one per poll (EV_NONE when exhausted); a None entry
    raises KeyboardInterrupt (Ctrl-C while idle)."""

    def __init__(self, events):
        self.events = list(events)
        self.polls = 0

    def poll(self):
        self.polls += 1
        if not self.events:
            return C.EV_NONE
        ev = self.events.pop(0)
        if ev is None:
            raise KeyboardInterrupt
        return ev


class FakeBoard:
    name = "fake"

    def __init__(self, config, events):
        self.config = config
        self.n_cells = 2
        self.operator = Op(events)
        self.display = None
        self.t_ms = 0
        self.sleeps = 0
        self.feeds = 0
        self.wdt_ms = None
        self.deinits = 0

    def ticks_ms(self):
        return self.t_ms

    def ticks_diff(self, a, b):
        return a - b

    def wait_until_ms(self, t):
        self.sleeps += 1
        self.t_ms = t

    def wdt_feed(self):
        self.feeds += 1

    def wdt_start(self, ms):
        self.wdt_ms = ms

    def deinit(self):
        self.deinits += 1


class BoardMod:
    DEFAULTS = {"wdt_ms": 8000}

    def __init__(self, events):
        self.events = events
        self.made = None

    def make_board(self, config=None):
        self.made = FakeBoard(config, self.events)
        return self.made


def _autostart(name, cfg, events, fresh=True):
    d = _dir(name) if fresh else "/tmp/pl%d_%s" % (os.getpid() if hasattr(os, "getpid") else 0, name)
    if cfg is not None:
        _write(d + "/config.json", cfg)
    said = []
    shown = []
    mod = BoardMod(events)
    p = start.autostart(mod, config_path=d + "/config.json", blank_path=d + "/calib/blank.json",
                       say=said.append, show=lambda b, m: shown.append(m["name"]))
    return p, mod.made, said, shown, d


def test_default_config_waits_for_start_then_arms_the_watchdog():
    p, b, said, shown, d = _autostart("def", None, [C.EV_NONE, C.EV_STOP, C.EV_NONE, C.EV_START])
    assert p is not None and p.board is b
    assert p.method["name"] == "gb-2026" and p.method["limit_ppm"] == 5000
    assert shown == ["gb-2026"]
    # the board was built without its watchdog; armed (default 8000 ms) only after START
    assert b.config["wdt_ms"] == 0 and b.wdt_ms == 8000
    # every idle loop fed the watchdog and slept IDLE_SLEEP_MS (never a busy loop)
    assert b.operator.polls == 4 and b.feeds == 3 and b.sleeps == 3 and b.t_ms == 3 * start.IDLE_SLEEP_MS
    assert p.blank_run and p.blank is None and p.n_cells == 2 and p.check_space
    assert p.cells == ["cell-1", "cell-2"] and p.counts_per_g == plan.DEFAULT_COUNTS_PER_G


def test_no_cycles_the_methods_and_config_sets_board_and_method():
    cfg = {"method": {"base": "gb-2026", "name": "lab-1", "soak_s": 3600}, "board": {"tc": "max31856", "wdt_ms": 5000},
           "blank_run": False, "counts_per_g": 4194, "cells": ["A1", "B2"]}
    p, b, said, shown, d = _autostart("cfg", cfg, [C.EV_NO, C.EV_NO, C.EV_NO, C.EV_START])
    assert shown == ["lab-1", "gb-2026", "tcsae-434-2025", "lab-1"]
    assert p.method["name"] == "lab-1" and p.method["soak_s"] == 3600
    assert b.config == {"tc": "max31856", "wdt_ms": 0} and b.wdt_ms == 5000
    assert not p.blank_run and p.counts_per_g == 4194 and p.cells == ["A1", "B2"]
    p, b, said, shown, d = _autostart("cfg2", {"method": "tcsae-434-2025"}, [C.EV_NO, C.EV_START])
    assert p.method["name"] == "gb-2026" and shown == ["tcsae-434-2025", "gb-2026"]


def test_ctrl_c_while_idle_returns_none_and_leaves_the_board_off():
    p, b, said, shown, d = _autostart("intr", None, [C.EV_NONE, None])
    assert p is None and b.deinits == 1 and b.wdt_ms is None
    assert "interrupted" in said[-1]


def test_a_bad_config_stays_idle_naming_the_problem():
    for cfg, what in (("{nope", "not valid JSON"), ({"methd": "gb-2026"}, "'methd'"),
                      ({"method": "gb-2027"}, "gb-2027"), ({"method": {"base": "gb-2026", "soak_s": 5}}, "soak_s"),
                      ({"counts_per_g": 0}, "counts_per_g"), ({"board": 3}, "board"), ([1], "object")):
        p, b, said, shown, d = _autostart("bad", cfg, [C.EV_START])
        assert p is None and b is None, cfg            # no board built, nothing switched on
        assert what in said[-1] and "idle" in said[-1], (cfg, said)


def test_blank_fit_is_stored_after_a_blank_run_and_used_next_time():
    p, b, said, shown, d = _autostart("blank", None, [C.EV_START])
    path = d + "/calib/blank.json"
    fit = [{"k_num": 3, "k_den": 7, "var_k_num": 0, "var_k_den": 1, "t_ref_num": 0, "t_ref_den": 1,
            "vac_offset_num": 0, "vac_offset_den": 1, "ref_counts": 0}] * 2
    assert plan.load_blank(2, path) is None
    m = p.method
    p.board = _SimLikeBoard()               # enough of a board for app.Controller
    c = p.new_controller(app.MODE_BLANK, None, None)
    assert c.mode == app.MODE_BLANK and c.blank is None
    c = p.new_controller(app.MODE_TEST, fit, None)      # the blank run's fit: stored
    assert c.mode == app.MODE_TEST and c.blank == fit and c.m is m
    assert plan.load_blank(2, path) == fit and plan.load_blank(3, path) is None
    assert "blank.json.tmp" not in os.listdir(d + "/calib")
    p2, b2, said, shown, d2 = _autostart("blank", None, [C.EV_START], fresh=False)   # next boot
    assert p2.blank == fit
    h = p.header("fake-0001", fit)
    assert h["run_id"] == "fake-0001" and h["board"] == "fake" and h["method"] is m
    used1 = [dict(ch, runs_used=1) for ch in fit]
    assert h["calibration"] == {"counts_per_g": plan.DEFAULT_COUNTS_PER_G, "span": "config", "blank": used1}
    # the stored fit counts the tests that used it (for the method's blank_max_runs), without an
    # audit entry (a use is not a change of the fit)
    assert plan.load_blank(2, path) == used1
    n_trail = len(open(d + "/calib/audit.jsonl").read().splitlines())
    h = p.header("fake-0002", used1)
    assert [ch["runs_used"] for ch in h["calibration"]["blank"]] == [2, 2]
    assert [ch["runs_used"] for ch in plan.load_blank(2, path)] == [2, 2]
    assert len(open(d + "/calib/audit.jsonl").read().splitlines()) == n_trail
    assert h["cal"]["source"] == "default" and h["cal"]["channels"][0]["counts_per_g"] == plan.DEFAULT_COUNTS_PER_G
    r = h["records"]
    assert r["operator"] == "" and r["operator_source"] == "none" and r["cells"] == ["cell-1", "cell-2"]
    assert r["clock"] == {"source": "none", "start_s": None} and r["ambient"] is None
    assert r["lab"]["vacuum_pa"] == m["vacuum_pa"] and r["lab"]["tolerance_c_x100"] == m["tol_c_x100"]
    assert "chamber-timed" in r["lab"]["soak_start"]


class _Sensor:
    temp_c_x100 = 2300
    cj_c_x100 = 2300
    pa = 101325
    raw = 0

    def read(self):
        return 0

    def ready(self):
        return True


class _SimLikeBoard(FakeBoard):
    """Enough of the board API for app.Controller's constructor."""

    def __init__(self):
        FakeBoard.__init__(self, {}, [])
        self.tc = _Sensor()
        self.lc_temp = _Sensor()
        self.pressure = _Sensor()
        self.loadcells = [_Sensor(), _Sensor()]


class _Panel:
    """An SSD1306 driver stand-in: a 128x64 framebuffer with the driver's write_cmd/write_data."""

    def __init__(self):
        from oven.ui import display
        self.fb = display.MemDisplay()
        self.width = 128
        self.pages = 8
        self.buffer = self.fb.buffer
        self.cmds = 0
        self.data = 0
        self.shows = 0

    def __getattr__(self, name):            # drawing goes to the framebuffer
        return getattr(self.fb, name)

    def write_cmd(self, c):
        self.cmds += 1

    def write_data(self, b):
        self.data += len(b)

    def show(self):
        self.shows += 1


def test_idle_screen_and_the_display_during_a_run():
    d = _dir("disp")
    b = _SimLikeBoard()
    b.display = _Panel()
    said = []
    start.show_idle(b, start.choices({})[0], say=said.append)
    assert b.display.shows == 1 and "Press START" in said[0] and "gb-2026" in said[0]
    assert any(b.display.buffer)              # the idle screen was drawn
    p = plan.Plan(b, {}, start.choices({})[0], None, d + "/blank.json")
    c = p.new_controller(app.MODE_TEST, None, None)
    assert c.live_tick is not None
    c.live_tick(c)                            # one control tick: a redraw and pages sent
    assert b.display.data > 0 and p._ref is not None
    b.display.write_data = None               # a broken display: switched off, the test goes on
    for _ in range(3):
        c.live_tick(c)
    assert p._ref is None


def test_hold_verdict_feeds_the_watchdog_until_a_button():
    from oven.run import plan
    from oven.core import codes as C

    class _Op:
        def __init__(self):
            self.k = 0

        def poll(self):
            self.k += 1
            return C.EV_START if self.k == 50 else C.EV_NONE

    class _B:
        def __init__(self):
            self.operator = _Op()
            self.t = 0
            self.feeds = 0

        def wdt_feed(self):
            self.feeds += 1

        def ticks_ms(self):
            return self.t

        def wait_until_ms(self, t):
            self.t = t

    b = _B()
    assert start.hold_verdict(b, sleep_ms=10) == C.EV_START
    assert b.feeds == 49 and b.t == 490


# ---------------------------------------------------------------- audit trail, method and calibration fixed at START
FIT = [{"k_num": 0, "k_den": 1, "var_k_num": 0, "var_k_den": 1, "t_ref_num": 2300, "t_ref_den": 1,
        "vac_offset_num": 0, "vac_offset_den": 1, "ref_counts": 0, "points": 30}] * 2


def _trail_lines(d):
    f = open(d + "/calib/audit.jsonl")
    out = [json.loads(x) for x in f.read().split("\n") if x]
    f.close()
    return out


def test_changes_between_starts_are_recorded_and_go_into_the_run_header():
    cfg = {"method": "gb-2026", "counts_per_g": 20972, "board": {"tc": "max31855"}}
    p, b, said, shown, d = _autostart("aud", cfg, [C.EV_START])
    L = _trail_lines(d)
    assert [e["what"] for e in L] == ["audit.start"]
    assert L[0]["new"] == {"config.method": "gb-2026", "config.counts_per_g": 20972, "config.blank_run": True,
                           "config.board.tc": "max31855"}
    h = p.header("fake-0001", None)
    assert [e["what"] for e in h["audit"]["entries"]] == ["audit.start"] and h["audit"]["since_line"] == 1
    # behind the firmware's back while idle: new span, another thermocouple, a custom method, a fit
    _write(d + "/config.json", {"method": {"base": "gb-2026", "soak_s": 3600}, "counts_per_g": 21000,
                                "board": {"tc": "max31856"}, "blank_run": True})
    plan.save_blank(FIT, d + "/calib/blank.json")
    p, b, said, shown, d = _autostart("aud", None, [C.EV_START], fresh=False)
    assert p.counts_per_g == 21000 and p.method["soak_s"] == 3600 and p.blank == FIT
    new = [(e["what"], e["old"], e["new"], e["by"], e["run"]) for e in _trail_lines(d)[1:]]
    assert new == [("calib.blank", None, audit.blank_summary(FIT), "external", None),
                   ("config.board.tc", "max31855", "max31856", "external", None),
                   ("config.counts_per_g", 20972, 21000, "external", None),
                   ("config.method", "gb-2026", None, "external", None),
                   ("config.method.base", None, "gb-2026", "external", None),
                   ("config.method.soak_s", None, 3600, "external", None)]
    h = p.header("fake-0002", FIT)
    a = h["audit"]
    assert a["prev_run"] == "fake-0001" and a["since_line"] == 2 and a["lines"] == 7 and a["omitted"] == 0
    assert [e["line"] for e in a["entries"]] == [1, 2, 3, 4, 5, 6, 7]
    assert [e["what"] for e in a["entries"] if e["line"] >= a["since_line"]] == [x[0] for x in new]
    json.dumps(h)                                   # the header is JSON (the run log's HEADER record)
    # a third START without changes: nothing new
    p, b, said, shown, d = _autostart("aud", None, [C.EV_START], fresh=False)
    h = p.header("fake-0003", FIT)
    assert h["audit"]["since_line"] == 8 and h["audit"]["lines"] == 7
    # forget_blank(): deleted, recorded as the device's change
    assert plan.forget_blank(d + "/calib/blank.json", 77)
    e = _trail_lines(d)[-1]
    assert (e["what"], e["old"], e["new"], e["by"], e["when"]) == ("calib.blank", audit.blank_summary(FIT), None,
                                                                    "device", 77)
    assert plan.load_blank(2, d + "/calib/blank.json") is None and not plan.forget_blank(d + "/calib/blank.json")


def test_an_unwritable_trail_never_stops_a_test():
    d = _dir("audro")
    b = _SimLikeBoard()
    said = []
    p = plan.Plan(b, {}, start.choices({})[0], None, d + "/calib/blank.json", d + "/config.json", said.append)
    os.mkdir(d + "/calib")
    os.mkdir(d + "/calib/audit.jsonl")             # a directory where the trail should be
    assert p.audit_check({}, None) == [] and "audit trail" in said[-1]
    h = p.header("fake-0001", None)
    assert h["run_id"] == "fake-0001" and h["calibration"]["counts_per_g"] == plan.DEFAULT_COUNTS_PER_G
    assert isinstance(h["audit"], dict) and ("error" in h["audit"] or h["audit"]["lines"] == 0)
    os.rmdir(d + "/calib/audit.jsonl")


class _SimPlan(plan.Plan):
    """plan.Plan (the real boards' plan: audit, blank storage, header) on the simulated bench, with
    the bench preparation and operator of boards/sim/vdev.py's SimPlan."""

    def __init__(self, bench, board, cfg, method, blank, d, said):
        plan.Plan.__init__(self, board, cfg, method, blank, d + "/calib/blank.json", d + "/config.json", said.append)
        self.bench = bench

    def new_controller(self, mode, blank_fit, log):
        from sim.runner import _Tracker
        self.bench.load_cells(0)
        c = plan.Plan.new_controller(self, mode, blank_fit, log)
        c.live_tick = _Tracker(self.bench, self.board, [], 0, None)
        return c


def _sim(name, cfg, blank=None, rtc=False):
    from sim.model import Bench
    from sim.board import SimBoard
    d = _dir(name)
    try:
        os.mkdir(d + "/calib")
    except OSError:
        pass
    scn = {"seed": 5, "blank_run": True, "ambient_c": 23.0, "ambient_end_c": 23.0, "faults": [], "method": {}}
    bench = Bench(scn)
    board = SimBoard(bench, rtc=rtc)
    cfg = dict(cfg)
    cfg["counts_per_g"] = board.counts_per_g
    _write(d + "/config.json", cfg)
    if blank is not None:
        plan.save_blank(blank[:board.n_cells], d + "/calib/blank.json")
    said = []
    p = _SimPlan(bench, board, plan.load_config(d + "/config.json"), start.choices(cfg)[0],
                 plan.load_blank(board.n_cells, d + "/calib/blank.json"), d, said)
    p.audit_check(cfg, p.blank)                     # what autostart() does at START
    return p, d, said


def _tx(b):
    return len(b)


def _log_header(path):
    from oven.run import recovery as R
    size = os.stat(path)[6]
    f = open(path, "rb")
    try:
        return R.scan(f, size).header
    finally:
        f.close()


M1 = {"base": "gb-2026", "soak_s": 300, "soak_max_total_s": 900, "blank_soak_s": 900}


def test_config_and_blank_written_during_a_run_change_nothing_of_it():
    from oven import link
    import main
    p, d, said = _sim("midrun", {"method": M1, "blank_run": True})
    cpg = p.counts_per_g
    m = p.method
    s = main.Session(p, link.RxRing(16), _tx, runs_dir=d + "/runs", check_space=False)
    assert s.stage == 0                             # the blank run first (no stored fit)
    for _ in range(300):
        s.advance(1)
    # during the blank run: another method and span, and a planted fit
    F = FIT[:p.n_cells]
    _write(d + "/config.json", {"method": "tcsae-434-2025", "counts_per_g": cpg + 1000, "blank_run": False})
    plan.save_blank(F, d + "/calib/blank.json")
    while s.stage == 0:
        assert s.advance(50) >= 0, s.error
    fit = s.blank_fit
    assert fit is not None and fit != F
    c = s.ctrl
    assert c.m is m and m["name"] == "custom" and m["soak_s"] == 300 and c.blank is fit and p.counts_per_g == cpg
    h = _log_header(s.path)
    assert h["method"]["soak_s"] == 300 and h["method"]["limit_ppm"] == 5000
    assert h["calibration"]["counts_per_g"] == cpg and h["calibration"]["blank"] == fit
    # the changes made during the blank run are in the trail and in this run's header, with its id
    got = [(e["what"], e["old"], e["new"], e["by"]) for e in h["audit"]["entries"] if e.get("run") == s.run_id]
    assert got == [("calib.blank", None, audit.blank_summary(F), "external"),
                   ("config.blank_run", True, False, "external"),
                   ("config.counts_per_g", cpg, cpg + 1000, "external"),
                   ("config.method", None, "tcsae-434-2025", "external"),
                   ("config.method.base", "gb-2026", None, "external"),
                   ("config.method.blank_soak_s", 900, None, "external"),
                   ("config.method.soak_max_total_s", 900, None, "external"),
                   ("config.method.soak_s", 300, None, "external"),
                   ("calib.blank", audit.blank_summary(F), audit.blank_summary(fit), "device")]
    assert plan.load_blank(p.n_cells, d + "/calib/blank.json") == fit      # the blank run's fit is stored
    # during the test: the files change again; the running test does not
    # the weighing limits come from the span at START (the tare rule: 2 g in counts)
    stable = [c._weigh_limits(i, -1) for i in range(c.n)]
    _write(d + "/config.json", {"method": {"base": "gb-2026", "soak_s": 60}, "counts_per_g": 1})
    plan.forget_blank(d + "/calib/blank.json")
    for _ in range(40):
        assert s.advance(50) >= 0
    assert s.ctrl is c and c.m is m and m["soak_s"] == 300 and c.blank is fit and s.blank_fit is fit
    assert p.method is m and p.counts_per_g == cpg and p.blank is fit
    assert [c._weigh_limits(i, -1) for i in range(c.n)] == stable
    assert [ch["counts_per_g"] for ch in c.cal["channels"]] == [cpg] * c.n
    assert _log_header(s.path) == h
    s.close()


def test_a_resumed_run_takes_method_and_calibration_from_its_header():
    from oven import link
    import main
    from sim.board import SimBoard
    p, d, said = _sim("resume", {"method": M1, "blank_run": False}, FIT, rtc=True)
    cpg = p.counts_per_g
    F = [dict(ch, runs_used=1) for ch in FIT[:p.n_cells]]     # this test is the fit's first use
    s = main.Session(p, link.RxRing(16), _tx, runs_dir=d + "/runs", check_space=False)
    assert s.stage == 1 and s.blank_fit == F
    # a minute into SOAK (heat_in "air": the soak time already holds the pump-down's credit)
    while s.ctrl.phase != 7 or s.ctrl._phase_ms() < 60000:
        assert s.advance(1) == 1
    # the power goes; meanwhile someone edits the files
    p.board.power_on_state()
    _write(d + "/config.json", {"method": "tcsae-434-2025", "counts_per_g": cpg * 2, "board": {"wdt_ms": 0}})
    fit2 = [dict(FIT[0], k_num=5)] * p.n_cells
    plan.save_blank(fit2, d + "/calib/blank.json")
    p.bench.advance(5000)
    bench = p.bench

    class BoardMod:
        DEFAULTS = {"wdt_ms": 8000}
        made = []

        def make_board(self, cfg):
            self.made.append(cfg)
            return SimBoard(bench, rtc=True)

    bm = BoardMod()

    class BS:
        def resume_plan(self, header):
            return start.resume_plan(bm, header, d + "/config.json", d + "/calib/blank.json", said.append)

    s2 = main.recover(BS(), d + "/runs", lambda: link.RxRing(16), lambda: _tx)
    assert s2 is not None and s2.run_id == s.run_id and bm.made == [{"wdt_ms": 0}]
    p2 = s2.plan
    assert p2.method == p.method and p2.method["name"] == "custom" and p2.method["soak_s"] == 300
    assert p2.counts_per_g == cpg and p2.blank == F and s2.blank_fit == F and s2.ctrl.blank == F
    assert s2.ctrl.m is p2.method and not p2.blank_run and p2.run_id == s.run_id
    for _ in range(20):
        assert s2.advance(10) >= 0
    assert s2.ctrl.m["soak_s"] == 300 and plan.load_blank(p.n_cells, d + "/calib/blank.json") == fit2
    # the edits are in the trail (they apply from the next START), with the resumed run's id
    got = [(e["what"], e["new"]) for e in _trail_lines(d) if e["run"] == s.run_id]
    assert ("config.counts_per_g", cpg * 2) in got and ("config.method", "tcsae-434-2025") in got
    assert ("calib.blank", audit.blank_summary(fit2)) in got
    s2.close()
    # a header without a usable method or span: no resume plan
    assert start.resume_plan(bm, {"method": "nope"}, d + "/config.json", d + "/calib/blank.json", said.append) is None
    assert start.resume_plan(bm, {"method": "gb-2026", "calibration": {}}, d + "/config.json",
                            d + "/calib/blank.json", said.append) is None


class _Tech:
    """A technician at the bench: reads each prompt (the plan's say()), puts what it asks for on
    the pan (off by `extra_g` on channel `bad_ch`) and presses START; `script`: button events to
    press first (at the idle screen)."""

    def __init__(self, bench, script, extra_g=0.0, bad_ch=-1):
        self.bench = bench
        self.events = list(script)
        self.extra_g = extra_g
        self.bad_ch = bad_ch
        self.said = []

    def poll(self):
        ev = self.events.pop(0) if self.events else C.EV_NONE
        if ev is None:
            raise KeyboardInterrupt     # Ctrl-C at the idle screen
        return ev

    def say(self, msg):
        self.said.append(msg)
        if not msg.startswith("CALIBRATION / "):
            if msg.startswith("RESULT / "):
                self.events.append(C.EV_STOP)       # any button: back to the menu
                self.events.append(C.EV_STOP)       # leave the menu
                self.events.append(None)            # then Ctrl-C at the idle screen
            return
        prompt = msg.split(" / ")[1]
        ch = int(prompt.split(":")[0].split(" ")[-1]) - 1
        if "empty the pan" in prompt:
            self.bench.remove_mass(ch)
        else:
            g = float(prompt.split("(")[1].split(" g")[0]) if "(" in prompt else float(prompt.split("put ")[1].split(" g")[0])
            self.bench.place_mass(ch, g + (self.extra_g if ch == self.bad_ch else 0.0))
        self.events.append(C.EV_START)


def _start_sim(name, cfg, script, extra_g=0.0, bad_ch=-1, setup=None, prep=None):
    from oven.store import calstore
    from sim.model import Bench
    from sim.board import SimBoard
    d = _dir(name)
    bench = Bench({"seed": 7, "blank_run": True, "cells": [{}, {}]})
    if prep is not None:
        prep(bench)
    tech = _Tech(bench, script, extra_g, bad_ch)

    class Mod:
        DEFAULTS = {"wdt_ms": 8000}
        board = None

        def make_board(self, bcfg):
            b = SimBoard(bench)
            b.operator = tech
            b.deinit = lambda: None
            Mod.board = b
            return b
    cfg = dict(cfg)
    cfg["counts_per_g"] = int(bench.lc_counts_per_g + 0.5)
    _write(d + "/config.json", cfg)
    if setup is not None:
        setup(d + "/calib", calstore)
    p = start.autostart(Mod(), config_path=d + "/config.json", blank_path=d + "/calib/blank.json",
                       say=tech.say, show=lambda b, m: None)
    return p, Mod.board, tech, d


def _cw(dcal, CS):
    CS.set_check_weight(50000000, 20000, "CW-01", d=dcal)


def test_check_weight_at_start_passes_and_goes_into_the_records():
    p, b, tech, d = _start_sim("cwok", {"operator": "cfg-op"}, [C.EV_START], setup=_cw)
    assert p is not None and p.check_result["ok"] is True and len(p.check_result["results"]) == 2
    from oven.store import calstore
    h = calstore.history(d + "/calib")
    assert [e["ok"] for e in h] == [True, True]
    r = p.records()
    assert r["check_weight"]["ok"] is True and r["operator"] == "cfg-op" and r["operator_source"] == "config"


def test_check_weight_out_of_tolerance_does_not_start_the_run():
    from oven.store import calstore
    p, b, tech, d = _start_sim("cwbad", {}, [C.EV_START], extra_g=0.05, bad_ch=1, setup=_cw)
    assert p is None
    assert [e["ok"] for e in calstore.history(d + "/calib")] == [True, False]
    assert "NOT STARTED" in tech.said[-1] and "ch 2: check weight off by +4" in tech.said[-1] and "tolerance 20.0 mg" in tech.said[-1]
    assert b.bench.heater_duty_ppm == 0 and b.bench.pump_on == 0
    tr = [json.loads(x) for x in open(d + "/calib/audit.jsonl").read().splitlines()]
    assert tr[-1]["what"] == "calib.check.last" and tr[-1]["new"]["ok"] is False


def test_no_check_weight_stored_is_recorded_as_skipped():
    p, b, tech, d = _start_sim("cwnone", {}, [C.EV_START])
    assert p is not None and p.check_result["ok"] is None and "no check weight" in p.check_result["skipped"]


def test_span_calibration_from_the_idle_menu():
    from oven.store import calstore
    # YES: menu; NO: "span ch 1"; START: run it (the technician follows the prompts); then STOP
    p, b, tech, d = _start_sim("menu", {"span_refs_mg": [100000, 50000], "check_weight": False},
                               [C.EV_YES, C.EV_NO, C.EV_START])
    # the menu closed (STOP) and the idle screen was back (left with Ctrl-C: no plan)
    assert p is None and tech.said[-1].startswith("interrupted")
    sp = calstore.load(2, 1, d + "/calib")["channels"][0]
    assert abs(sp["counts_per_g"] - 20968) <= 5 and sp["cal_id"] == "buttons" and sp["lin_ref_ug"] == 50000000
    assert any("counts/g stored" in m for m in tech.said)


def test_ice_point_offsets_from_the_idle_menu():
    from oven.store import calstore
    # YES: menu; NO x3: "ice pt chamber" (after the check weight and two spans); START: run; START: read
    # (the chamber thermocouple in an ice bath reads +0.30 degC: offset -0.30 degC stored)
    def ice(bench):
        bench.preset(chamber_c=0.3)
        bench.amb_c = bench._amb0_c = 0.3     # the bath holds it there
    p, b, tech, d = _start_sim("icept", {"check_weight": False}, [C.EV_YES, C.EV_NO, C.EV_NO, C.EV_NO,
                                                                   C.EV_START, C.EV_START], prep=ice)
    assert p is None
    off = calstore.load(2, 1, d + "/calib")["tc_offset_c_x100"]
    assert -45 <= off["chamber"] <= -15 and off["probe"] == 0, off
    assert any("chamber offset -0." in m for m in tech.said)
    # at room temperature the same procedure is refused (23 degC is no ice point): nothing stored
    p, b, tech, d = _start_sim("icebad", {"check_weight": False}, [C.EV_YES, C.EV_NO, C.EV_NO, C.EV_NO,
                                                                    C.EV_START, C.EV_START])
    assert calstore.load(2, 1, d + "/calib")["tc_offset_c_x100"] == {"chamber": 0, "probe": 0}
    assert any("nothing was stored" in m for m in tech.said)


def test_autotune_from_the_idle_menu():
    from oven.store import calstore
    # YES: menu; NO x5 (check weight, 2 spans, 2 ice points): "autotune"; START: the relay autotune at
    # the method's setpoint on the oven, gains stored for the next START
    p, b, tech, d = _start_sim("atmenu", {"check_weight": False}, [C.EV_YES] + [C.EV_NO] * 5 + [C.EV_START])
    assert p is None
    pid = calstore.load(2, 1, d + "/calib")["pid"]
    assert pid is not None and pid["kp"] > 0 and pid["ki"] > 0, pid
    assert any("PID kp" in m and "stored" in m for m in tech.said)
    assert b.bench.heater_duty_ppm == 0           # the heater is off again afterwards


def test_start_data_from_the_host_sets_operator_cells_and_time():
    def setup(dcal, CS):
        pass
    from oven.store import calstore  # noqa: F401
    d = _dir("startj")
    _write(d + "/start.json", {"operator": "op-7", "cells": ["SN-A", "SN-B"], "host_time_s": 1700000000,
                               "ticks_ms": 0})
    st = start.load_start(d + "/start.json", 5000, lambda a, b: a - b)
    assert st == {"operator": "op-7", "cells": ["SN-A", "SN-B"], "host_time_s": 1700000005, "age_s": 5}
    # written at a later tick than now: the board was reset since, the time is not trusted
    assert "host_time_s" not in start.load_start(d + "/start.json", -10, lambda a, b: a - b)
    assert start.load_start(d + "/nothing.json", 0, lambda a, b: a - b) == {}


def test_host_start_data_goes_into_the_records_at_start():
    from oven.store import calstore  # noqa: F401
    from sim.model import Bench
    from sim.board import SimBoard
    d = _dir("hostrec")
    bench = Bench({"seed": 7, "blank_run": True, "cells": [{}, {}]})
    bench.advance(10000)
    # written by `ovenctl prepare` 4 s before START (the board's ticks then: 6000 ms)
    _write(d + "/start.json", {"operator": "op-7", "cells": ["SN-A", "SN-B"], "host_time_s": 1764806400,
                               "ticks_ms": 6000})
    _write(d + "/config.json", {"operator": "cfg-op", "check_weight": False, "lab": {"sample_prep": "as received"}})

    class Mod:
        DEFAULTS = {"wdt_ms": 0}

        def make_board(self, bcfg):
            b = SimBoard(bench)
            b.operator = Op([C.EV_START])
            return b
    p = start.autostart(Mod(), config_path=d + "/config.json", blank_path=d + "/calib/blank.json",
                       say=lambda m: None, show=lambda b, m: None)
    assert p is not None and "start.json" not in os.listdir(d)        # consumed at START
    bench.advance(3600000)                                              # a blank run later
    r = p.records()
    assert r["operator"] == "op-7" and r["operator_source"] == "host"
    assert r["cells"] == ["SN-A", "SN-B"] and r["cells_source"] == "host" and p.cells == ["SN-A", "SN-B"]
    assert r["clock"]["source"] == "host" and r["clock"]["start_s"] == 1764806404
    assert r["clock"]["test_s"] == 1764806404 + 3600 and r["clock"]["set_age_s"] == 4
    assert r["check_weight"] == {"ok": None, "skipped": "config check_weight: false"}
    assert r["lab"]["statements"] == {"sample_prep": "as received"}
    h = p.header("sim-0001", None)
    assert h["records"]["operator"] == "op-7" and h["cells"] == ["SN-A", "SN-B"]
