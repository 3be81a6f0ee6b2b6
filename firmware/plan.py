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
# used instead of a new blank run until deleted.
#
# No `machine` here: the board comes in through board_mod, so tests run this with a fake board
# (tests/dual/test_plan.py) under CPython and in the VM.
import json
import os

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


def save_blank(fit, path=BLANK_PATH):
    """Write the fit atomically (a new file renamed over the old one)."""
    d = path[:path.rfind("/")]
    if d:
        try:
            os.mkdir(d)
        except OSError:
            pass
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
    """The run plan main.Session runs (docs/PROTOCOL.md §9)."""

    check_space = True
    run_id = None

    def __init__(self, board, cfg, method, blank, blank_path=BLANK_PATH):
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
        self._ref = None

    def new_controller(self, mode, blank_fit, log):
        import app
        if mode == app.MODE_TEST and blank_fit is not None and self.blank is None:
            # a blank run just produced this fit: keep it for the next tests
            try:
                save_blank(blank_fit, self.blank_path)
                self.blank = blank_fit
            except OSError as e:
                _say("could not store the blank fit: %r" % e)
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
        import app
        return {"run_id": run_id, "fw_version": app.FW_VERSION, "board": self.board.name, "mode": "test",
                "method": self.method, "cells": self.cells,
                "calibration": {"counts_per_g": self.counts_per_g, "span": "config", "blank": blank_fit}}


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
    return Plan(board, cfg, m, load_blank(board.n_cells, blank_path), blank_path)
