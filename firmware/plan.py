# The run plan of a real board: autostart(board_mod) reads /config.json, builds the board without
# its watchdog, shows the idle screen, waits for START, then arms the watchdog and returns a Plan
# (None: stay idle at the REPL). Also the START-time audit check and the stored blank fit.
# Config keys, files and why the watchdog waits for START: docs/MODULES.md "plan".
import json
import os

import codes as C


class _Lazy:
    """A module imported at its first use, and again after session.release() has forgotten it:
    the calibration store, the audit trail and the method table are needed at START and when the
    test's header is written, not during the run (docs/FIT.md)."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        return getattr(__import__(self._name), attr)


audit = _Lazy("audit")
calstore = _Lazy("calstore")
methods = _Lazy("methods")

CONFIG_PATH = "/config.json"
BLANK_PATH = "/calib/blank.json"
DEFAULT_METHOD = "gb-2026"
DEFAULT_COUNTS_PER_G = C.DEFAULT_COUNTS_PER_G
IDLE_SLEEP_MS = 10
START_PATH = "/start.json"
START_MAX_AGE_S = 86400     # a /start.json older than this (by the board's ticks) is stale
_KEYS = ("method", "board", "blank_run", "counts_per_g", "cells", "operator", "lab", "check_weight",
         "span_refs_mg")


class ConfigError(ValueError):
    pass


def load_config(path=CONFIG_PATH):
    """The config dict ({} without a file). ConfigError names what is wrong."""
    try:
        f = open(path)
    except OSError:
        return {}
    try:
        try:
            cfg = json.load(f)
        except ValueError:
            raise ConfigError("%s: not valid JSON" % path)
    finally:
        f.close()
    if not isinstance(cfg, dict):
        raise ConfigError("%s: must be a JSON object" % path)
    for k in cfg:
        if k not in _KEYS:
            raise ConfigError("%s: unknown key %r (keys: %s)" % (path, k, ", ".join(_KEYS)))
    if not isinstance(cfg.get("board", {}), dict):
        raise ConfigError("%s: board: must be an object of make_board() settings" % path)
    cpg = cfg.get("counts_per_g", DEFAULT_COUNTS_PER_G)
    if not isinstance(cpg, int) or cpg < 1:
        raise ConfigError("%s: counts_per_g: must be a positive integer" % path)
    if not isinstance(cfg.get("operator", ""), str) or len(cfg.get("operator", "")) > 64:
        raise ConfigError("%s: operator: must be a string of at most 64 characters" % path)
    if not isinstance(cfg.get("lab", {}), dict):
        raise ConfigError("%s: lab: must be an object of the lab's stated choices (text per item)" % path)
    if not isinstance(cfg.get("check_weight", True), bool):
        raise ConfigError("%s: check_weight: must be true or false" % path)
    refs = cfg.get("span_refs_mg", [100000, 50000])
    if (not isinstance(refs, list) or not 1 <= len(refs) <= 2
            or [r for r in refs if not isinstance(r, int) or isinstance(r, bool) or not 1 <= r <= 5000000]):
        raise ConfigError("%s: span_refs_mg: must be [ref1] or [ref1, ref2], each 1 .. 5000000 mg" % path)
    return cfg


def calib_dir(blank_path=BLANK_PATH):
    """The calibration store's directory: the blank fit's (/calib)."""
    return blank_path[:blank_path.rfind("/")]


def load_start(path=START_PATH, now_ms=None, ticks_diff=None):
    """The host's START data (/start.json from `ovenctl start`), or {} (none, unreadable, or
    stale: written more than START_MAX_AGE_S before now by the board's ticks, or at a later tick:
    the board was reset since). "host_time_s" becomes the host's time now, "age_s" how long ago
    it was written."""
    try:
        with open(path) as f:
            st = json.load(f)
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


def load_blank(n_cells, path=BLANK_PATH):
    """The stored drift fit (one entry per load-cell channel) or None."""
    try:
        with open(path) as f:
            fit = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(fit, list) or len(fit) != n_cells:
        return None
    for ch in fit:
        if not isinstance(ch, dict) or "k_num" not in ch or "k_den" not in ch:
            return None
    return fit


def trail_for(blank_path=BLANK_PATH):
    """The audit trail next to the blank fit (/calib/audit.jsonl, /calib/audit_state.json)."""
    d = blank_path[:blank_path.rfind("/") + 1]
    return audit.Trail(d + "audit.jsonl", d + "audit_state.json")


def audit_state(cfg, blank, n_cells=None, cal_dir=None):
    """The audited fields (flat: audit.flatten) of a config dict and a blank fit. The method,
    blank_run and counts_per_g are the effective values (defaults filled in); cells and the board
    overrides as written (absent: the default). With n_cells and cal_dir: the calibration store's
    fields too (calstore.audit_fields)."""
    s = {}
    audit.flatten(cfg.get("method", DEFAULT_METHOD), "config.method", s)
    s["config.blank_run"] = cfg.get("blank_run", True)
    s["config.counts_per_g"] = cfg.get("counts_per_g", DEFAULT_COUNTS_PER_G)
    if cfg.get("cells") is not None:
        s["config.cells"] = cfg["cells"]
    audit.flatten(cfg.get("board", {}), "config.board", s)
    for k in ("operator", "lab", "check_weight", "span_refs_mg"):
        if cfg.get(k) is not None:
            audit.flatten(cfg[k], "config." + k, s)
    if blank is not None:
        s["calib.blank"] = audit.blank_summary(blank)
    if n_cells is not None and cal_dir is not None:
        f = calstore.audit_fields(n_cells, cal_dir)
        for k in f:
            if f[k] is not None:
                s[k] = f[k]
    return s


def forget_blank(path=BLANK_PATH, when=None, say=None):
    """Delete the stored blank fit (the next test starts with a blank run when blank_run is on)
    and record it in the audit trail. For the REPL: `import plan; plan.forget_blank()`.
    Returns True when a fit was deleted."""
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        old = None
    try:
        os.remove(path)
    except OSError:
        return False
    try:
        trail_for(path).record("calib.blank", audit.blank_summary(old), None, when)
    except (OSError, ValueError) as e:
        (say or _say)("audit trail: %r" % (e,))
    return True


def save_blank(fit, path=BLANK_PATH):
    """Write the fit atomically (a new file renamed over the old one)."""
    audit.mkdir_parent(path)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(fit, f)
    os.rename(tmp, path)


def _say(msg):
    print("board_select: " + msg)


def show_idle(board, m, say=_say):
    say("%s ready, method %s (limit %d ppm). Press START to begin, NO for the next method; "
        "Ctrl-C: REPL" % (board.name, m["name"], m["limit_ppm"]))
    d = getattr(board, "display", None)
    if d is not None:
        try:
            import display
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
        import display
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


class Plan:
    """The run plan main.Session runs (docs/PROTOCOL.md §9). Method, counts_per_g, cells and the
    blank fit are this object's own copies, fixed when it is made (at START)."""

    check_space = True
    run_id = None
    header_fit = None

    def __init__(self, board, cfg, method, blank, blank_path=BLANK_PATH, config_path=CONFIG_PATH, say=_say,
                 cal=None, start=None):
        self.board = board
        self.method = method
        self.n_cells = board.n_cells
        self.blank_run = bool(cfg.get("blank_run", True))
        self.blank = blank
        self.counts_per_g = cfg.get("counts_per_g", DEFAULT_COUNTS_PER_G)
        cells = cfg.get("cells")
        if not isinstance(cells, list) or len(cells) != board.n_cells:
            cells = ["cell-%d" % (i + 1) for i in range(board.n_cells)]
        self.cells = [str(x) for x in cells]
        self.cal_dir = calib_dir(blank_path)
        # the calibration, fixed at START (a resumed run passes its header's)
        self.cal = cal if cal is not None else calstore.load(board.n_cells, self.counts_per_g, self.cal_dir)
        self.start = start or {}    # load_start(): operator, cells, host time
        if isinstance(self.start.get("cells"), list) and len(self.start["cells"]) == board.n_cells:
            self.cells = list(self.start["cells"])
        self.operator = self.start.get("operator", cfg.get("operator", ""))
        self.operator_source = "host" if "operator" in self.start else ("config" if cfg.get("operator") else "none")
        self.lab = cfg.get("lab", {})
        self.check_result = {}      # the check-weight test at START: {"ok", "results"} or a reason it was skipped
        self.t_start_ms = board.ticks_ms() if hasattr(board, "ticks_ms") else 0
        self.blank_path = blank_path
        self.config_path = config_path
        self.say = say
        self.wdt_ms = 0             # armed by the first new_controller() (resume_plan's plans)
        self._ref = None

    @property
    def trail(self):
        # made on each use: an audit.Trail held here would keep the audit module in RAM
        return trail_for(self.blank_path)

    # ------------------------------------------------------------ audit trail
    def audit_check(self, cfg=None, blank=None, run=None):
        """Record what changed since the snapshot: of cfg and blank when given (what START
        loaded), else of the files as they are now (never used for the running test). Returns
        the appended entries ([] also when the trail cannot be written: that is reported)."""
        try:
            if cfg is None:
                cur = self._state_now()
            else:
                cur = audit_state(cfg, blank, self.n_cells, self.cal_dir)
            return self.trail.check(cur, audit.rtc_s(self.board), run)
        except (OSError, ValueError) as e:
            self.say("audit trail: %r" % (e,))
            return []

    def _state_now(self):
        blank = load_blank(self.n_cells, self.blank_path)
        try:
            return audit_state(load_config(self.config_path), blank, self.n_cells, self.cal_dir)
        except ConfigError as e:
            # an unreadable config is not a change of any field: keep the known config fields
            self.say("audit: %s" % e)
            cur = audit_state({}, blank, self.n_cells, self.cal_dir)
            for k in list(cur):
                if k.startswith("config."):
                    del cur[k]
            prev = self.trail.state() or {}
            for k in prev:
                if k.startswith("config."):
                    cur[k] = prev[k]
            return cur

    def _keep_blank(self, blank_fit, run_id, checked=False):
        """A blank run just produced this fit: store it for the next tests (audited). checked:
        the audit trail was brought up to date just before."""
        if blank_fit is None or self.blank is not None:
            return
        if not checked:
            self.audit_check(run=run_id)    # a file changed during the blank run: recorded first
        old = load_blank(self.n_cells, self.blank_path)
        try:
            save_blank(blank_fit, self.blank_path)
        except OSError as e:
            self.say("could not store the blank fit: %r" % e)
            return
        self.blank = blank_fit
        try:
            self.trail.record("calib.blank", audit.blank_summary(old), audit.blank_summary(blank_fit),
                              audit.rtc_s(self.board), run_id)
        except (OSError, ValueError) as e:
            self.say("audit trail: %r" % (e,))

    def audit_header(self, run_id):
        """The log header's "audit": the trail's last entries (audit.Trail.for_header)."""
        try:
            return self.trail.for_header(run_id)
        except (OSError, ValueError) as e:
            self.say("audit trail: %r" % (e,))
            return {"trail": self.trail.path, "error": repr(e)}

    # ------------------------------------------------------------ the run
    def new_controller(self, mode, blank_fit, log):
        import app
        if mode == app.MODE_TEST:
            self._keep_blank(blank_fit, self.run_id)    # (header() normally did it already)
        if self.wdt_ms:
            self.board.wdt_start(self.wdt_ms)
            self.wdt_ms = 0
        c = app.Controller(self.board, self.method, mode=mode,
                           blank=blank_fit if mode == app.MODE_TEST else None, log=log,
                           counts_per_g=self.counts_per_g, cal=self.cal)
        pid = self.cal.get("pid")
        if pid:
            c.pid.set_gains(pid["kp"], pid["ki"], pid["kd"])
        self._ref = _refresher(self.board)
        if self._ref is not None:
            setattr(c, "live_tick", self._display_tick)     # (app.py declares it None)
        return c

    def _display_tick(self, c):
        ref = self._ref
        if ref is None:
            return
        try:
            ref.tick(c)
            ref.idle(self.board.ticks_ms, self.board.ticks_diff)
        except Exception:           # noqa: BLE001  a display fault never stops a test
            self._ref = None

    def header(self, run_id, blank_fit):
        """The test's log header (written when the test stage starts, after a blank run). Also
        the moment the audit trail is taken into the run's record: changes since START are
        recorded first, then a blank run's new fit is stored."""
        return self.build_header(run_id, self.prepare_header(run_id, blank_fit))

    def prepare_header(self, run_id, blank_fit):
        """header()'s first half: the audit trail's changes since START recorded, a blank run's new
        fit stored, and this run counted in the fit's "runs_used"; returns the fit the test uses."""
        for _ in self.prepare_steps(run_id, blank_fit):
            pass
        return self.header_fit

    def prepare_steps(self, run_id, blank_fit):
        """prepare_header() as a generator of steps (the session's, between two of which the
        garbage of each can be collected); the fit the test uses is then in header_fit."""
        self.audit_check(run=run_id)
        yield
        self._keep_blank(blank_fit, run_id, checked=True)
        yield
        self.header_fit = self._use_blank(blank_fit)

    def build_header(self, run_id, blank_fit):
        """header()'s second half: the header dict for the fit prepare_header() returned."""
        import app
        return {"run_id": run_id, "fw_version": app.FW_VERSION, "board": self.board.name, "mode": "test",
                "method": self.method, "cells": self.cells,
                "calibration": {"counts_per_g": self.counts_per_g,
                                "span": "calib" if self.cal.get("source") == "measured" else "config",
                                "blank": blank_fit},
                "cal": self.cal, "records": self.records(), "audit": self.audit_header(run_id),
                "probe": getattr(self.board, "probe", None) is not None}

    def _use_blank(self, fit):
        """This test uses the blank fit once more: its "runs_used" (in every channel's dict) goes
        up by one, in the stored file too when it is the stored fit (not in the audit trail:
        audit.blank_summary leaves it out). The method's blank_max_runs bounds it (verdict)."""
        if not isinstance(fit, list):
            return fit
        out = []
        for ch in fit:
            ch = dict(ch)
            n = ch.get("runs_used", 0)
            ch["runs_used"] = (n if isinstance(n, int) else 0) + 1
            out.append(ch)
        if self.blank is not None and audit.same(load_blank(self.n_cells, self.blank_path), fit):
            try:
                save_blank(out, self.blank_path)
            except OSError as e:
                self.say("could not count the blank fit's use: %r" % (e,))
        if self.blank is not None:
            self.blank = out
        return out

    def records(self):
        """The log header's "records" (ISO/IEC 17025 §7.8): operator, cell serial numbers,
        equipment with calibration dates, the date and time and where they came from, ambient
        conditions when a sensor is fitted, the check-weight result and the lab's stated choices."""
        b = self.board
        rtc = audit.rtc_s(b)
        if rtc is not None:
            clock = {"source": "rtc", "start_s": rtc}
        elif "host_time_s" in self.start:
            # the host's clock when /start.json was written plus the board's ticks until START
            # (load_start); test_s: the same clock now, when the test's header is written
            el = b.ticks_diff(b.ticks_ms(), self.t_start_ms) // 1000 if hasattr(b, "ticks_ms") else 0
            clock = {"source": "host", "start_s": self.start["host_time_s"], "test_s": self.start["host_time_s"] + el,
                     "set_age_s": self.start.get("age_s")}
        else:
            clock = {"source": "none", "start_s": None}
        eq = calstore.equipment(self.cal_dir) or {}
        equipment = {}
        equipment["controller"] = {"board": b.name, "id": eq.get("controller", "")}
        for k in eq:
            if k != "controller":
                equipment[k] = eq[k]
        chans = []
        for ch in self.cal.get("channels", []):
            chans.append({"cal_id": ch.get("cal_id", ""), "when": ch.get("when")})
        equipment["span_calibration"] = chans
        amb = _ambient(getattr(b, "ambient", None))
        m = self.method
        probe = getattr(b, "probe", None) is not None
        lab = {"setpoint_c_x100": m["setpoint_c_x100"], "tolerance_c_x100": m["tol_c_x100"],
               "vacuum_pa": m["vacuum_pa"], "soak_s": m["soak_s"],
               "soak_start": ("cell reference probe and chamber in tolerance, vacuum reached" if probe
                              else "chamber in tolerance and vacuum reached (chamber-timed: no reference probe)"),
               "decision": m["decision"], "limit_ppm": m["limit_ppm"], "comparator": m["comparator"],
               "statements": self.lab}
        return {"operator": self.operator, "operator_source": self.operator_source,
                "cells": self.cells, "cells_source": "host" if "cells" in self.start else "config",
                "equipment": equipment, "clock": clock, "ambient": amb, "check_weight": self.check_result or None,
                "lab": lab}


def _ambient(sensor):
    """Ambient conditions from the board's optional sensor (board.ambient): a callable returning a
    dict, or a driver whose read() returns codes.OK and sets temp_c_x100 (and, when it has them,
    rh_permille, pressure_pa). None when no sensor is fitted."""
    if sensor is None:
        return None
    try:
        if callable(sensor) and not hasattr(sensor, "read"):
            return sensor()
        st = sensor.read()
        if st != C.OK:
            return {"error": "sensor status %r" % (st,)}
        out = {}
        for k in ("temp_c_x100", "rh_permille", "pressure_pa"):
            v = getattr(sensor, k, None)
            if v is not None:
                out[k] = v
        return out
    except Exception as e:      # noqa: BLE001  a failing ambient sensor is recorded, never stops a test
        return {"error": repr(e)}


def _refresher(board):
    d = getattr(board, "display", None)
    if d is None:
        return None
    try:
        import display
        return display.Refresher(display.Screen(d), display.SSD1306Pages(d))
    except Exception:               # noqa: BLE001
        return None


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
