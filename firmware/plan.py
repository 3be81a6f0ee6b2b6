# The run plan of a real board: what board_select.autostart() returns on the Pico and the ESP32
# (boards/<board>/board_select.py; the contract is in docs/PROTOCOL.md §9).
#
#   autostart(board_mod)  reads /config.json, builds the board (board_mod.make_board) WITHOUT its
#                         watchdog, shows the idle screen (display and console), waits for START
#                         (NO: next method), then arms the watchdog and returns a Plan; None (stay
#                         idle at the REPL) on a config error or a Ctrl-C while waiting.
#
# Why the watchdog waits for START: machine.WDT cannot be stopped on either port, so a board that
# armed it at boot would reset a few seconds after mpremote's Ctrl-C took it to the REPL (deploy,
# pull, fs cp would all break). Idle, every output is off, so a stalled idle loop is harmless.
#
# /config.json (every key optional):
#   "method"        preset name ("gb-2026", the default) or a method object (methods.validate)
#   "board"         make_board() config overrides (boards/<board>/board.py DEFAULTS), e.g. {"tc": "max31856"}
#   "blank_run"     true (default): a blank (empty-pan) drift run first when no fit is stored
#   "counts_per_g"  load-cell span, raw counts per gram (default app's 20972)
#   "cells"         cell IDs for the log header (default "cell-1" ...)
# /calib/blank.json: the drift fit of the last successful blank run (written here, atomically),
# used instead of a new blank run until deleted (plan.forget_blank() at the REPL deletes it and
# records that in the audit trail; an `mpremote fs rm` is found at the next START).
#
# Fixed at START: the Plan keeps its own copies of the method, counts_per_g, cells and the blank
# fit it loaded; /config.json and /calib/blank.json are never read again for the running test
# (changing them during a run changes nothing of it; the next START picks them up). A run resumed
# after a power cut (resume_plan) takes method and calibration from its log header, never from
# the files (only the board wiring, "board", comes from /config.json).
#
# Audit trail (firmware/audit.py, docs/APP.md "Audit trail"): /calib/audit.jsonl, one line per
# change {"when", "run", "what", "old", "new", "by"}, and the snapshot /calib/audit_state.json.
# At START the effective config (method, blank_run, counts_per_g with their defaults; cells and
# board overrides as written; nested keys flattened: "config.board.tc", "config.method.soak_s")
# and the stored blank fit ("calib.blank": CRC-32, k per channel, points) are compared with the
# snapshot: one "external" entry per changed field. Again when the test's log header is written
# (changes made during the blank run: recorded with that run's id; they do not apply to it).
# Storing a blank run's fit and forget_blank() add "device" entries. The log header's "audit"
# holds the trail's last HEADER_ENTRIES (50) entries: every change since the previous run unless
# more than 50 accumulated ("omitted" counts the earlier lines; the file keeps them all).
#
# No `machine` here: the board comes in through board_mod, so tests run this with a fake board
# (tests/dual/test_plan.py) under CPython and in the VM.
import json
import os

import audit
import codes as C
import methods

CONFIG_PATH = "/config.json"
BLANK_PATH = "/calib/blank.json"
DEFAULT_METHOD = "gb-2026"
DEFAULT_COUNTS_PER_G = 20972
IDLE_SLEEP_MS = 10
_KEYS = ("method", "board", "blank_run", "counts_per_g", "cells")


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
    return cfg


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


def audit_state(cfg, blank):
    """The audited fields (flat: audit.flatten) of a config dict and a blank fit. The method,
    blank_run and counts_per_g are the effective values (defaults filled in); cells and the board
    overrides as written (absent: the default)."""
    s = {}
    audit.flatten(cfg.get("method", DEFAULT_METHOD), "config.method", s)
    s["config.blank_run"] = cfg.get("blank_run", True)
    s["config.counts_per_g"] = cfg.get("counts_per_g", DEFAULT_COUNTS_PER_G)
    if cfg.get("cells") is not None:
        s["config.cells"] = cfg["cells"]
    audit.flatten(cfg.get("board", {}), "config.board", s)
    if blank is not None:
        s["calib.blank"] = audit.blank_summary(blank)
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


def wait_start(board, meths, show=show_idle, sleep_ms=IDLE_SLEEP_MS):
    """Idle loop: poll the debounced buttons, feed the watchdog (if one is armed), sleep
    sleep_ms. START returns the shown method; NO shows the next one. A Ctrl-C (KeyboardInterrupt,
    raised inside the sleep) propagates: kbd_intr is left enabled while idle."""
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
        board.wdt_feed()
        board.wait_until_ms(board.ticks_ms() + sleep_ms)


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

    def __init__(self, board, cfg, method, blank, blank_path=BLANK_PATH, config_path=CONFIG_PATH, say=_say):
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
        self.blank_path = blank_path
        self.config_path = config_path
        self.trail = trail_for(blank_path)
        self.say = say
        self.wdt_ms = 0             # armed by the first new_controller() (resume_plan's plans)
        self._ref = None

    # ------------------------------------------------------------ audit trail
    def audit_check(self, cfg=None, blank=None, run=None):
        """Record what changed since the snapshot: of cfg and blank when given (what START
        loaded), else of the files as they are now (never used for the running test). Returns
        the appended entries ([] also when the trail cannot be written: that is reported)."""
        try:
            if cfg is None:
                cur = self._state_now()
            else:
                cur = audit_state(cfg, blank)
            return self.trail.check(cur, audit.rtc_s(self.board), run)
        except (OSError, ValueError) as e:
            self.say("audit trail: %r" % (e,))
            return []

    def _state_now(self):
        blank = load_blank(self.n_cells, self.blank_path)
        try:
            return audit_state(load_config(self.config_path), blank)
        except ConfigError as e:
            # an unreadable config is not a change of any field: keep the known config fields
            self.say("audit: %s" % e)
            cur = audit_state({}, blank)
            for k in list(cur):
                if k.startswith("config."):
                    del cur[k]
            prev = self.trail.state() or {}
            for k in prev:
                if k.startswith("config."):
                    cur[k] = prev[k]
            return cur

    def _keep_blank(self, blank_fit, run_id):
        """A blank run just produced this fit: store it for the next tests (audited)."""
        if blank_fit is None or self.blank is not None:
            return
        self.audit_check(run=run_id)        # a file changed during the blank run: recorded first
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
                           counts_per_g=self.counts_per_g)
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
        import app
        self.audit_check(run=run_id)
        self._keep_blank(blank_fit, run_id)
        return {"run_id": run_id, "fw_version": app.FW_VERSION, "board": self.board.name, "mode": "test",
                "method": self.method, "cells": self.cells,
                "calibration": {"counts_per_g": self.counts_per_g, "span": "config", "blank": blank_fit},
                "audit": self.audit_header(run_id),
                "probe": getattr(self.board, "probe", None) is not None}


def _refresher(board):
    d = getattr(board, "display", None)
    if d is None:
        return None
    try:
        import display
        return display.Refresher(display.Screen(d), display.SSD1306Pages(d))
    except Exception:               # noqa: BLE001
        return None


def autostart(board_mod, config_path=CONFIG_PATH, blank_path=BLANK_PATH, say=_say, show=show_idle):
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
        m = wait_start(board, meths, show)
    except KeyboardInterrupt:
        board.deinit()
        say("interrupted: idle (REPL)")
        return None
    if wdt_ms:
        board.wdt_start(wdt_ms)
    say("START: test with method %s" % m["name"])
    p = Plan(board, cfg, m, load_blank(board.n_cells, blank_path), blank_path, config_path, say)
    p.audit_check(cfg, p.blank)     # what changed since the last START (mpremote, deploy --config)
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
    p = Plan(board, {"blank_run": False, "counts_per_g": cpg, "cells": header.get("cells")}, m,
             cal.get("blank"), blank_path, config_path, say)
    p.run_id = header.get("run_id")
    p.wdt_ms = wdt_ms
    p.audit_check(run=p.run_id)
    return p
