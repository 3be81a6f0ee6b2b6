# firmware/plan.py (a real board's board_select.autostart()) with a fake board, under CPython and
# in the MicroPython VM: /config.json handling, the idle START wait (NO cycles the methods, the
# watchdog is fed, the loop sleeps, Ctrl-C leaves it), the watchdog armed only at START, the blank
# fit stored after a blank run, the plan's controllers and log header.
import json
import os

import app
import codes as C
import plan


def _dir(name):
    pid = os.getpid() if hasattr(os, "getpid") else 0
    d = "/tmp/pl%d_%s" % (pid, name)
    try:
        os.mkdir("/tmp")
    except OSError:
        pass
    try:
        names = os.listdir(d)
    except OSError:
        os.mkdir(d)
        return d
    for f in names:
        try:
            os.remove(d + "/" + f)
        except OSError:             # a directory (calib/)
            for g in os.listdir(d + "/" + f):
                os.remove(d + "/" + f + "/" + g)
            os.rmdir(d + "/" + f)
    return d


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
    p = plan.autostart(mod, config_path=d + "/config.json", blank_path=d + "/calib/blank.json",
                       say=said.append, show=lambda b, m: shown.append(m["name"]))
    return p, mod.made, said, shown, d


def test_default_config_waits_for_start_then_arms_the_watchdog():
    p, b, said, shown, d = _autostart("def", None, [C.EV_NONE, C.EV_YES, C.EV_NONE, C.EV_START])
    assert p is not None and p.board is b
    assert p.method["name"] == "gb-2026" and p.method["limit_ppm"] == 5000
    assert shown == ["gb-2026"]
    # the board was built without its watchdog; armed (default 8000 ms) only after START
    assert b.config["wdt_ms"] == 0 and b.wdt_ms == 8000
    # every idle loop fed the watchdog and slept IDLE_SLEEP_MS (never a busy loop)
    assert b.operator.polls == 4 and b.feeds == 3 and b.sleeps == 3 and b.t_ms == 3 * plan.IDLE_SLEEP_MS
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
    assert h["calibration"] == {"counts_per_g": plan.DEFAULT_COUNTS_PER_G, "span": "config", "blank": fit}


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
        import display
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
    plan.show_idle(b, plan.choices({})[0], say=said.append)
    assert b.display.shows == 1 and "Press START" in said[0] and "gb-2026" in said[0]
    assert any(b.display.buffer)              # the idle screen was drawn
    p = plan.Plan(b, {}, plan.choices({})[0], None, d + "/blank.json")
    c = p.new_controller(app.MODE_TEST, None, None)
    assert c.live_tick is not None
    c.live_tick(c)                            # one control tick: a redraw and pages sent
    assert b.display.data > 0 and p._ref is not None
    b.display.write_data = None               # a broken display: switched off, the test goes on
    for _ in range(3):
        c.live_tick(c)
    assert p._ref is None


def test_hold_verdict_feeds_the_watchdog_until_a_button():
    import plan
    import codes as C

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
    assert plan.hold_verdict(b, sleep_ms=10) == C.EV_START
    assert b.feeds == 49 and b.t == 490
