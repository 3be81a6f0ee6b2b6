# START on a real board: autostart(board_mod) reads /config.json, builds the board without its
# watchdog, shows the idle screen and its menus, waits for START, then arms the watchdog and returns
# a plan.Plan (None: stay idle at the REPL); resume_plan, repl_board, hold_verdict. Imported for
# START and released after it (session.PHASE_MODULES). Notes: docs/MODULES.md "oven.run.plan".
import json
import os

from oven.core import codes as C
from oven.run.plan import (BLANK_PATH, CONFIG_PATH, DEFAULT_COUNTS_PER_G, DEFAULT_METHOD, ConfigError, Plan, _say, audit,
                  calib_dir, calstore, load_blank, load_config, methods)

IDLE_SLEEP_MS = 10
START_PATH = "/start.json"
START_MAX_AGE_S = 86400     # a /start.json older than this (by the board's ticks) is stale


def load_start(path=START_PATH, now_ms=None, ticks_diff=None):
    """The host's START data (/start.json from `ovenctl start`), or {} (none, unreadable, or
    stale: written more than START_MAX_AGE_S before now by the board's ticks, or at a later tick:
    the board was reset since). "host_time_s" becomes the host's time now, "age_s" how long ago
    it was written."""
    try:
        with open(path) as f:
            st = json.loads(f.read())
    except (OSError, ValueError):
        return {}
    if not isinstance(st, dict):
        return {}
    out = {}
    op = st.get("operator")
    if isinstance(op, str) and len(op) <= 64:
        out["operator"] = op
    cells = st.get("cells")
    if isinstance(cells, list) and not [c for c in cells if not isinstance(c, str)]:
        out["cells"] = cells
    t = st.get("host_time_s")
    tk = st.get("ticks_ms")
    if (isinstance(t, int) and isinstance(tk, int) and now_ms is not None and ticks_diff is not None):
        age_ms = ticks_diff(now_ms, tk)
        if 0 <= age_ms <= START_MAX_AGE_S * 1000:
            out["host_time_s"] = t + age_ms // 1000
            out["age_s"] = age_ms // 1000
    return out


def consume_start(path=START_PATH):
    try:
        os.remove(path)
    except OSError:
        pass


def choices(cfg):
    """Methods the operator can pick at the idle screen: the configured one first, then the
    other presets. Raises methods.MethodError (a ValueError naming the field)."""
    first = methods.validate(cfg.get("method", DEFAULT_METHOD))
    out = [first]
    for name in sorted(methods.PRESETS):
        if name != first["name"]:
            out.append(methods.preset(name))
    return out


def show_idle(board, m, say=_say):
    say("%s ready, method %s (limit %d ppm). Press START to begin, NO for the next method; "
        "Ctrl-C: REPL" % (board.name, m["name"], m["limit_ppm"]))
    d = getattr(board, "display", None)
    if d is not None:
        try:
            from oven.ui import display
            display.Screen(d).draw_idle(m)
            d.show()
        except Exception as e:      # noqa: BLE001  the display never keeps a test from starting
            say("display: %r" % e)


def wait_start(board, meths, show=show_idle, sleep_ms=IDLE_SLEEP_MS, menu=None):
    """Idle loop: poll the debounced buttons, feed the watchdog (if one is armed), sleep
    sleep_ms. START returns the shown method; NO shows the next one; YES opens the calibration
    menu (menu(board), when given; the idle screen is shown again after it). A Ctrl-C
    (KeyboardInterrupt, raised inside the sleep) propagates: kbd_intr is left enabled while idle."""
    i = 0
    show(board, meths[0])
    op = board.operator
    while True:
        ev = op.poll()
        if ev == C.EV_START:
            return meths[i]
        if ev == C.EV_NO and len(meths) > 1:
            i = (i + 1) % len(meths)
            show(board, meths[i])
        if ev == C.EV_YES and menu is not None:
            menu(board)
            show(board, meths[i])
        board.wdt_feed()
        board.wait_until_ms(board.ticks_ms() + sleep_ms)


# ---------------------------------------------------------------- calibration from the buttons


def show_text(board, lines, say=None):
    """A prompt on the console and, when fitted, the display (a title and up to 6 lines)."""
    if say is not None:
        say(" / ".join(lines))
    d = getattr(board, "display", None)
    if d is None:
        return
    try:
        from oven.ui import display
        scr = display.Screen(d)
        d.fill(0)
        scr.title(lines[0][:16])
        y = 12
        for ln in lines[1:]:
            while ln and y < 64:
                scr.text(ln[:16], 0, y)
                ln = ln[16:]
                y += 9
        d.show()
    except Exception as e:          # noqa: BLE001  the display never blocks a calibration
        if say is not None:
            say("display: %r" % (e,))


def wait_answer(board, sleep_ms=IDLE_SLEEP_MS):
    """START or YES: True; NO or STOP: False. Feeds the watchdog while waiting."""
    op = board.operator
    while True:
        ev = op.poll()
        if ev == C.EV_START or ev == C.EV_YES:
            return True
        if ev == C.EV_NO or ev == C.EV_STOP:
            return False
        board.wdt_feed()
        board.wait_until_ms(board.ticks_ms() + sleep_ms)


def run_procedure(board, proc, ask, say, place=None):
    """Drive a calstore procedure (SpanProcedure, CheckProcedure) step by step: show its prompt,
    wait for the operator (ask(board, prompt) -> True to weigh, False to cancel), weigh. place
    (the simulated bench's operator) puts the mass itself: place(proc). Returns True when done,
    False when cancelled. CalError propagates (the procedure stored nothing)."""
    while not proc.done():
        if place is not None:
            place(proc)
        elif not ask(board, proc.prompt()):
            return False
        say("weighing: " + proc.prompt())
        proc.step(board, say)
    return True


def _ask_buttons(say):
    def ask(board, prompt):
        show_text(board, ["CALIBRATION", prompt, "START=weigh NO=cancel"], say)
        return wait_answer(board)
    return ask


def check_weight(board, cal, cal_dir, say, ask=None, place=None, run=None):
    """The check-weight test before a run (calstore.CheckProcedure). Returns the record for the
    log header: {"ok": bool, "results": [[ch, dev_ug, ok]...]} or {"ok": None, "skipped": why}.
    A failed test is in the history and the audit trail; the caller does not start the run."""
    try:
        proc = calstore.CheckProcedure(board.n_cells, cal, cal_dir, when=audit.rtc_s(board), run=run)
    except calstore.CalError as e:
        return {"ok": None, "skipped": str(e)}
    try:
        if not run_procedure(board, proc, ask or _ask_buttons(say), say, place):
            return {"ok": False, "results": [list(r) for r in proc.results], "message": "cancelled by the operator"}
    except calstore.CalError as e:
        return {"ok": False, "results": [list(r) for r in proc.results], "message": str(e)}
    return {"ok": not proc.failed(), "results": [list(r) for r in proc.results], "message": proc.message(),
            "mass_ug": proc.weight_ug, "tol_ug": proc.tol_ug}


def calib_menu(cfg, blank_path=BLANK_PATH, say=None):
    """The idle screen's calibration menu (YES at the idle screen): NO cycles the entries, START
    runs one: the check-weight test, the span calibration of one channel with the reference
    masses of /config.json "span_refs_mg", an ice-point offset of the chamber or probe
    thermocouple, or the heater PID autotune at the configured method's setpoint. Reference masses,
    the check weight and its tolerance, offsets from a reference thermometer and equipment are set
    from the host (ovenctl calibrate) or the REPL (calstore.*)."""
    say = say or _say
    d = calib_dir(blank_path)

    def menu(board):
        n = board.n_cells
        items = ["check weight"] + ["span ch %d" % (i + 1) for i in range(n)] + ["ice pt chamber"]
        if getattr(board, "probe", None) is not None:
            items.append("ice pt probe")
        items += ["autotune", "exit"]
        k = 0
        while True:
            show_text(board, ["CAL MENU", items[k], "START=run NO=next", "STOP=exit"], say)
            op = board.operator
            ev = C.EV_NONE
            while ev == C.EV_NONE:
                board.wdt_feed()
                board.wait_until_ms(board.ticks_ms() + IDLE_SLEEP_MS)
                ev = op.poll()
            if ev == C.EV_NO:
                k = (k + 1) % len(items)
                continue
            if ev == C.EV_STOP or items[k] == "exit":
                return
            if ev != C.EV_START:
                continue
            cpg = cfg.get("counts_per_g", DEFAULT_COUNTS_PER_G)
            cal = calstore.load(n, cpg, d)
            try:
                if k == 0:
                    r = check_weight(board, cal, d, say)
                    msg = r.get("message") or r.get("skipped") or ""
                elif items[k].startswith("ice pt"):
                    msg = _ice_point(board, items[k][7:], d, say)
                elif items[k] == "autotune":
                    m = methods.validate(cfg.get("method", DEFAULT_METHOD))
                    g = calstore.autotune(board, m["setpoint_c_x100"],
                                          tc_offset_c_x100=cal["tc_offset_c_x100"]["chamber"])
                    calstore.store_pid(g[0], g[1], g[2], g[3], g[4], m["setpoint_c_x100"], d=d,
                                       when=audit.rtc_s(board), say=say)
                    msg = "PID kp %d ki %d kd %d stored" % (g[0], g[1], g[2])
                else:
                    refs = cfg.get("span_refs_mg", [100000, 50000])
                    ch = k - 1
                    proc = calstore.SpanProcedure(n, ch, refs[0] * 1000, refs[1] * 1000 if len(refs) > 1 else 0,
                                                  nominal_cpg=cal["channels"][ch]["counts_per_g"], d=d,
                                                  cal_id="buttons", when=audit.rtc_s(board))
                    if run_procedure(board, proc, _ask_buttons(say), say) and proc.span is not None:
                        msg = "span ch %d: %d counts/g stored" % (ch + 1, proc.span["counts_per_g"])
                    else:
                        msg = "cancelled: nothing stored"
            except calstore.CalError as e:
                msg = str(e)
            show_text(board, ["RESULT", msg, "any button"], say)
            while op.poll() == C.EV_NONE:
                board.wdt_feed()
                board.wait_until_ms(board.ticks_ms() + IDLE_SLEEP_MS)
    return menu


def _ice_point(board, which, d, say):
    """Thermocouple offset from an ice point (buttons): the technician puts the chamber or the
    probe thermocouple in an ice-water bath, waits for it to settle and presses START; the mean of
    10 readings 1 s apart is taken as 0.00 degC (calstore.set_tc_offset refuses > 5 degC)."""
    show_text(board, ["ICE POINT", which + " TC in ice", "START=read", "STOP=cancel"], say)
    op = board.operator
    ev = C.EV_NONE
    while ev not in (C.EV_START, C.EV_STOP):
        board.wdt_feed()
        board.wait_until_ms(board.ticks_ms() + IDLE_SLEEP_MS)
        ev = op.poll()
    if ev == C.EV_STOP:
        return "cancelled: nothing stored"
    tc = board.tc if which == "chamber" else board.probe
    acc = 0
    for _ in range(10):
        board.wdt_feed()
        board.wait_until_ms(board.ticks_ms() + 1000)
        if tc.read() != C.OK:
            return "%s thermocouple not read: nothing stored" % which
        acc += tc.temp_c_x100
    reading = (acc + 5) // 10
    calstore.set_tc_offset(which, 0, reading, d=d, when=audit.rtc_s(board), say=say, source="ice point (buttons)")
    off = -reading
    return "%s offset %s%d.%02d degC stored" % (which, "-" if off < 0 else "+", abs(off) // 100, abs(off) % 100)


def hold_verdict(board, sleep_ms=IDLE_SLEEP_MS):
    """After a run on a real board: the verdict stays on the display while the (unstoppable)
    watchdog is fed, until the operator presses any button; returns that event. main.py then
    returns to the REPL and the watchdog resets the board into its idle screen."""
    op = board.operator
    while True:
        ev = op.poll()
        if ev != C.EV_NONE:
            return ev
        board.wdt_feed()
        board.wait_until_ms(board.ticks_ms() + sleep_ms)


def autostart(board_mod, config_path=CONFIG_PATH, blank_path=BLANK_PATH, say=_say, show=show_idle,
              start_path=None):
    try:
        cfg = load_config(config_path)
        meths = choices(cfg)
    except ValueError as e:         # ConfigError, methods.MethodError
        say("%s; staying idle (fix /config.json, then reset)" % e)
        return None
    bcfg = dict(cfg.get("board", {}))
    wdt_ms = bcfg.get("wdt_ms", board_mod.DEFAULTS["wdt_ms"])
    bcfg["wdt_ms"] = 0              # armed when START is pressed (see the top of this file)
    board = board_mod.make_board(bcfg)
    try:
        m = wait_start(board, meths, show, menu=calib_menu(cfg, blank_path, say))
    except KeyboardInterrupt:
        board.deinit()
        say("interrupted: idle (REPL)")
        return None
    if start_path is None:
        start_path = config_path[:config_path.rfind("/")] + "/start.json"
    start = load_start(start_path, board.ticks_ms(), board.ticks_diff)
    consume_start(start_path)
    say("START: test with method %s" % m["name"])
    p = Plan(board, cfg, m, load_blank(board.n_cells, blank_path), blank_path, config_path, say, start=start)
    p.audit_check(cfg, p.blank)     # what changed since the last START (mpremote, deploy --config)
    if cfg.get("check_weight", True):
        r = check_weight(board, p.cal, p.cal_dir, say)
        p.check_result = r
        if r.get("ok") is False:
            show_text(board, ["NOT STARTED", r.get("message", "check weight failed")], say)
            board.outputs_safe()
            board.deinit()
            return None
        if r.get("ok"):
            # this result now counts in the repeatability (u_rep_ug) the run's budget uses
            p.cal = calstore.load(board.n_cells, p.counts_per_g, p.cal_dir)
    else:
        p.check_result = {"ok": None, "skipped": "config check_weight: false"}
    if wdt_ms:
        board.wdt_start(wdt_ms)
    return p


def resume_plan(board_mod, header, config_path=CONFIG_PATH, blank_path=BLANK_PATH, say=_say):
    """A plan that continues the run whose log header is given (board_select.resume_plan,
    docs/PROTOCOL.md §9; only boards with a battery-backed clock, board.rtc_s(), resume).
    Method, counts_per_g, cells and the blank fit come from the header, never from /config.json
    or /calib/blank.json (they may have changed since the run started: such changes are recorded
    in the audit trail and apply from the next START). /config.json gives only the board wiring.
    The watchdog is armed when the controller is made. None when the header is unusable."""
    try:
        m = methods.validate(header.get("method"))
    except (ValueError, TypeError, AttributeError) as e:
        say("resume: the log header's method is not usable (%s)" % (e,))
        return None
    cal = header.get("calibration")
    cal = cal if isinstance(cal, dict) else {}
    cpg = cal.get("counts_per_g")
    if not isinstance(cpg, int) or isinstance(cpg, bool) or cpg < 1:
        say("resume: the log header has no usable calibration.counts_per_g")
        return None
    try:
        cfg = load_config(config_path)
    except ConfigError as e:
        say("resume: %s; board defaults" % e)
        cfg = {}
    bcfg = dict(cfg.get("board", {}))
    wdt_ms = bcfg.get("wdt_ms", board_mod.DEFAULTS["wdt_ms"])
    bcfg["wdt_ms"] = 0
    board = board_mod.make_board(bcfg)
    hcal = header.get("cal")
    if not isinstance(hcal, dict) or not isinstance(hcal.get("channels"), list) or len(hcal["channels"]) != board.n_cells:
        hcal = calstore.default_cal(board.n_cells, cpg)     # a log from before the calibration store
    p = Plan(board, {"blank_run": False, "counts_per_g": cpg, "cells": header.get("cells")}, m,
             cal.get("blank"), blank_path, config_path, say, cal=hcal)
    rec = header.get("records")
    if isinstance(rec, dict):
        p.operator = rec.get("operator", "")
        p.check_result = rec.get("check_weight") or {}
    p.run_id = header.get("run_id")
    p.wdt_ms = wdt_ms
    p.audit_check(run=p.run_id)
    return p


def repl_board(board_mod=None, config_path=CONFIG_PATH):
    """The board for a calibration from the REPL or the host (ovenctl calibrate/autotune --port):
    built from /config.json's "board" settings without its watchdog. The caller calls
    outputs_safe() and deinit() when done."""
    if board_mod is None:
        try:
            import board as board_mod     # the board's board.py, next to board_select on the device
        except ImportError:
            raise calstore.CalError("this device has no board module to calibrate (the virtual device runs "
                                    "scenarios only: use --sim SCENARIO)")
    try:
        cfg = load_config(config_path)
    except ConfigError:
        cfg = {}
    bcfg = dict(cfg.get("board", {}))
    bcfg["wdt_ms"] = 0
    return board_mod.make_board(bcfg), cfg
