# The run plan of a real board: the Plan that start.autostart() returns at START (controllers, the
# display), /config.json and the stored blank fit. Resident during the run; what only START needs
# is in start.py, the log header and the audit check in header.py. Config keys and files:
# docs/MODULES.md "oven.run.plan".
import json
import os

from oven.core import codes as C


class _Lazy:
    """A module imported at its first use, and again after session.release() has forgotten it:
    the calibration store, the audit trail and the method table are needed at START and when the
    test's header is written, not during the run (docs/FIT.md)."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        return getattr(self.module(), attr)

    def module(self):
        import sys
        __import__(self._name)
        return sys.modules[self._name]


audit = _Lazy("oven.store.audit")
calstore = _Lazy("oven.store.calstore")
methods = _Lazy("oven.core.methods")

CONFIG_PATH = "/config.json"
BLANK_PATH = "/calib/blank.json"
DEFAULT_METHOD = "gb-2026"
DEFAULT_COUNTS_PER_G = C.DEFAULT_COUNTS_PER_G
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
            cfg = json.loads(f.read())
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


def load_blank(n_cells, path=BLANK_PATH):
    """The stored drift fit (one entry per load-cell channel) or None."""
    try:
        with open(path) as f:
            fit = json.loads(f.read())
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
    and record it in the audit trail. For the REPL: `from oven.run import plan; plan.forget_blank()`.
    Returns True when a fit was deleted."""
    try:
        with open(path) as f:
            old = json.loads(f.read())
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
        f.write(json.dumps(fit))
    os.rename(tmp, path)


def _say(msg):
    print("board_select: " + msg)


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

    # ------------------------------------------------------------ audit trail and log header
    # (oven.run.header: loaded for START and the test's header, released while a stage runs)
    def audit_check(self, cfg=None, blank=None, run=None):
        from oven.run import header
        return header.audit_check(self, cfg, blank, run)

    def _keep_blank(self, blank_fit, run_id, checked=False):
        if blank_fit is None or self.blank is not None:
            return                  # nothing to store: no need to load the header's code
        from oven.run import header
        header.keep_blank(self, blank_fit, run_id, checked)

    def audit_header(self, run_id):
        from oven.run import header
        return header.audit_header(self, run_id)

    # ------------------------------------------------------------ the run
    def new_controller(self, mode, blank_fit, log):
        from oven.run import app
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
        from oven.run import header
        return header.header(self, run_id, blank_fit)

    def prepare_header(self, run_id, blank_fit):
        from oven.run import header
        return header.prepare_header(self, run_id, blank_fit)

    def prepare_steps(self, run_id, blank_fit):
        from oven.run import header
        return header.prepare_steps(self, run_id, blank_fit)

    def build_header(self, run_id, blank_fit):
        from oven.run import header
        return header.build_header(self, run_id, blank_fit)

    def _use_blank(self, fit):
        from oven.run import header
        return header.use_blank(self, fit)

    def records(self):
        from oven.run import header
        return header.records(self)


def _refresher(board):
    d = getattr(board, "display", None)
    if d is None:
        return None
    try:
        from oven.ui import display
        return display.Refresher(display.Screen(d), display.SSD1306Pages(d))
    except Exception:               # noqa: BLE001
        return None


