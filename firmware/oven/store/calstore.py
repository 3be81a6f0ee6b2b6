# The calibration store (/calib/*.json, each written atomically) and its procedures: span per
# load-cell channel, check weight and its history, thermocouple offsets, PID gains. A refused
# calibration raises CalError and writes nothing; every change is a "device" audit entry.
# Not on a control-tick path (may allocate). Files and fields: docs/MODULES.md "oven.store.calstore".
import json

from oven.store import audit
from oven.core import calib
from oven.core.fixedpt import isqrt_ceil
from oven.core.weigh import Window, W_STABLE, W_ERR_TIMEOUT, STATE_NAMES

CALIB_DIR = "/calib"
HISTORY_N = 20              # check-weight results kept (the repeatability uses the passed ones)
LIN_MAX_PPM = 500           # 2-point linearity: |deviation| at the 2nd reference, ppm of that mass ...
LIN_K = 4                   # ... or LIN_K x its standard uncertainty from the weighings, the larger
PLAUSIBLE_PCT = 30          # a span this far (%) from the nominal one: the stated mass is wrong
TC_OFFSET_MAX_C_X100 = 500  # thermocouple offset beyond 5 degC: a wrong reading, not a calibration
U_REF_PPM = 50              # default standard uncertainty of a reference mass (OIML F2/M1 class), ppm
SD_COUNTS = 200             # stability limit of a calibration weighing, counts (HX711 noise ~30-60)
DEFAULT_LOADCELL = {"span_tc_ppm_per_c": 15, "creep_ppm": 250, "creep_tau_s": 300}


class CalError(ValueError):
    pass


# ---------------------------------------------------------------- files
def _path(d, name):
    return d + "/" + name


def _read(d, name):
    try:
        with open(_path(d, name)) as f:
            v = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return v if isinstance(v, dict) else None


def _write(d, name, obj):
    audit.write_atomic(_path(d, name), audit.canon(obj))


def trail(d=CALIB_DIR):
    return audit.Trail(d + "/audit.jsonl", d + "/audit_state.json")


def _record(d, what, old, new, when, run, say):
    try:
        trail(d).record(what, old, new, when, run)
    except (OSError, ValueError) as e:
        if say is not None:
            say("audit trail: %r" % (e,))


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------- the cal dict
def default_cal(n, counts_per_g):
    """Calibration used when none is stored: the configured span on every channel, datasheet
    defaults, nothing measured (source "default")."""
    ch = []
    for _ in range(n):
        ch.append(_channel(None, counts_per_g, DEFAULT_LOADCELL))
    return {"source": "default", "channels": ch, "check": None,
            "tc_offset_c_x100": {"chamber": 0, "probe": 0}, "pid": None}


def _channel(span, counts_per_g, lc):
    # counts_per_kg: the same span with 1000x the resolution (a 5 kg load cell has ~839 counts/g:
    # an integer counts_per_g is only good to +-600 ppm, too coarse for a check weight in mg)
    c = {"counts_per_g": counts_per_g, "u_span_ppm": 0, "lin_dev_ug": 0, "lin_ref_ug": 0,
         "span_tc_ppm_per_c": lc["span_tc_ppm_per_c"], "creep_ppm": lc["creep_ppm"],
         "creep_tau_s": lc["creep_tau_s"], "cal_id": "", "when": None, "counts_per_kg": counts_per_g * 1000}
    if span is not None:
        for k in ("counts_per_g", "u_span_ppm", "lin_dev_ug", "lin_ref_ug", "cal_id", "when"):
            c[k] = span[k]
        cpk = span.get("counts_per_kg")
        c["counts_per_kg"] = cpk if _is_int(cpk) and cpk > 0 else span["counts_per_g"] * 1000
    return c


def _spans(n, d):
    s = _read(d, "span.json")
    chs = s.get("channels") if s is not None else None
    out = []
    for i in range(n):
        sp = chs[i] if isinstance(chs, list) and i < len(chs) else None
        if not isinstance(sp, dict) or not _is_int(sp.get("counts_per_g")) or sp["counts_per_g"] < 1:
            sp = None
        out.append(sp)
    return out


def loadcell(d=CALIB_DIR):
    lc = dict(DEFAULT_LOADCELL)
    s = _read(d, "loadcell.json")
    if s is not None:
        for k in DEFAULT_LOADCELL:
            if _is_int(s.get(k)) and s[k] >= 0:
                lc[k] = s[k]
    return lc


def check_stats(hist):
    """(u_rep_ug, n) of the passed check-weight results: the pooled standard deviation of the
    deviations within each channel (ceil), over n results; (0, 0) with fewer than 2 per channel."""
    by = {}
    for h in hist:
        if isinstance(h, dict) and h.get("ok") and _is_int(h.get("dev_ug")):
            by.setdefault(h.get("ch", 0), []).append(h["dev_ug"])
    n = 0
    dof = 0
    ss_num = 0      # sum of squared deviations about each channel's mean, times prod of counts
    # exact: sum over channels of (k*sum(x^2) - (sum x)^2) / k, over a common denominator
    parts = []
    for ch in by:
        xs = by[ch]
        k = len(xs)
        n += k
        if k < 2:
            continue
        dof += k - 1
        s = 0
        s2 = 0
        for x in xs:
            s += x
            s2 += x * x
        parts.append((k * s2 - s * s, k))
    if dof < 1:
        return 0, n
    den = 1
    for _num, k in parts:
        den *= k
    for num, k in parts:
        ss_num += num * (den // k)
    # u^2 = ss / dof = ss_num / (den * dof)
    return isqrt_ceil(-(-ss_num // (den * dof))), n


def load(n, counts_per_g, d=CALIB_DIR):
    """The cal dict (DESIGN.md) from the store; channels without a stored span get counts_per_g
    (source "default" unless every channel has a measured span)."""
    spans = _spans(n, d)
    lc = loadcell(d)
    chans = [_channel(spans[i], counts_per_g, lc) for i in range(n)]
    measured = True
    for sp in spans:
        if sp is None:
            measured = False
    cw = _read(d, "check.json")
    check = None
    if cw is not None and _is_int(cw.get("mass_ug")) and _is_int(cw.get("tol_ug")):
        u, k = check_stats(history(d))
        check = {"mass_ug": cw["mass_ug"], "tol_ug": cw["tol_ug"], "u_rep_ug": u, "n": k}
    tc = _read(d, "tc.json") or {}
    off = {"chamber": 0, "probe": 0}
    for k in off:
        if _is_int(tc.get(k)):
            off[k] = tc[k]
    pid = _read(d, "pid.json")
    if pid is not None:
        if not (_is_int(pid.get("kp")) and _is_int(pid.get("ki")) and _is_int(pid.get("kd"))):
            pid = None
        else:
            pid = {"kp": pid["kp"], "ki": pid["ki"], "kd": pid["kd"]}
    return {"source": "measured" if measured else "default", "channels": chans, "check": check,
            "tc_offset_c_x100": off, "pid": pid}


def history(d=CALIB_DIR):
    h = _read(d, "checks.json")
    h = h.get("history") if h is not None else None
    return h if isinstance(h, list) else []


def equipment(d=CALIB_DIR):
    return _read(d, "equipment.json")


def audit_fields(n, d=CALIB_DIR):
    """The audited calibration fields as they are in the files (None: absent)."""
    out = {}
    spans = _spans(n, d)
    for i in range(n):
        out["calib.span.%d" % i] = spans[i]
    out["calib.loadcell"] = _read(d, "loadcell.json")
    out["calib.check"] = _read(d, "check.json")
    h = history(d)
    out["calib.check.last"] = h[-1] if h else None
    out["calib.tc_offset"] = _read(d, "tc.json")
    out["calib.pid"] = _read(d, "pid.json")
    out["calib.equipment"] = _read(d, "equipment.json")
    return out


# ---------------------------------------------------------------- weighing on the board
def weigh(board, ch, sd_counts=SD_COUNTS, n=32, hold=10, timeout_s=120):
    """One stable weighing of channel ch on the board's load cell (a board loop: samples at the
    ADC's rate, the watchdog fed). Returns (n, sum_counts, m2n) (weigh.Window.result()).
    CalError when the reading does not become stable within timeout_s."""
    if not 0 <= ch < board.n_cells:
        raise CalError("channel %d: the board has %d load-cell channels" % (ch + 1, board.n_cells))
    w = Window(n=n, stable_sd_counts=sd_counts, hold=hold, timeout_samples=timeout_s * 10,
               spike_counts=500)
    lc = board.loadcells[ch]
    t0 = board.ticks_ms()
    while True:
        if lc.ready():
            lc.read()
            st = w.add(lc.raw)
            if st == W_STABLE:
                return w.result()
            if st >= W_ERR_TIMEOUT:
                raise CalError("channel %d: the reading did not become stable (%s): check that nothing "
                               "touches the pan and the oven is closed; nothing was stored"
                               % (ch + 1, STATE_NAMES[st]))
        if board.ticks_diff(board.ticks_ms(), t0) > timeout_s * 1000 + 5000:
            raise CalError("channel %d: no readings from the load cell; nothing was stored" % (ch + 1))
        board.wdt_feed()
        board.wait_until_ms(board.ticks_ms() + 20)


def _u_mean2_num_den(r):
    # squared standard uncertainty of the mean of a window result, counts^2: M2 / (n (n-1))
    k, _s, m2n = r
    return m2n, k * k * (k - 1)


# ---------------------------------------------------------------- span
def span_from(ch, zero, ref1, ref1_ug, ref2=None, ref2_ug=0, nominal_cpg=None, u_ref_ppm=U_REF_PPM,
              cal_id="", when=None):
    """The span dict of channel ch from window results (n, sum, m2n) of the empty pan, reference
    mass 1 (span) and optionally reference mass 2 (linearity check). CalError (the operator's
    message) when the reading is implausible for the stated mass (more than PLAUSIBLE_PCT from
    nominal_cpg), or the 2nd reference disagrees beyond max(LIN_MAX_PPM, LIN_K u)."""
    try:
        c = calib.Calibration(zero[1], zero[0], ref1_ug, ref1[1], ref1[0])
    except calib.CalibError as e:
        raise CalError("channel %d: %s; nothing was stored" % (ch + 1, e))
    c_num, c_den = c.counts_per_ug()
    cpg = (2 * c_num * 1000000 + c_den) // (2 * c_den)
    cpk = (2 * c_num * 1000000000 + c_den) // (2 * c_den)
    if cpg < 1:
        raise CalError("channel %d: span below 1 count per gram: check the load cell wiring; nothing was stored" % (ch + 1))
    if nominal_cpg:
        lo = nominal_cpg * (100 - PLAUSIBLE_PCT)
        hi = nominal_cpg * (100 + PLAUSIBLE_PCT)
        if not lo <= cpg * 100 <= hi:
            raise CalError("channel %d: reference mass 1 (%d mg) reads as %d mg with the nominal span: not "
                           "the stated mass (or not on the pan); nothing was stored"
                           % (ch + 1, ref1_ug // 1000, ref1_ug // 1000 * cpg // nominal_cpg))
    # standard uncertainty of the net reading, relative: (u0^2 + u1^2) / net^2
    a_num, a_den = _u_mean2_num_den(zero)
    b_num, b_den = _u_mean2_num_den(ref1)
    net_num, net_den = c.net_counts(ref1[1], ref1[0])      # net counts as a rational
    # u_rel^2 (ppm^2) = (a + b) * 1e12 / net^2
    u_stat2 = (a_num * b_den + b_num * a_den) * net_den * net_den * 10 ** 12 // (a_den * b_den * net_num * net_num)
    lin_dev = 0
    lin_ref = 0
    u_lin2 = 0
    if ref2 is not None:
        if not ref2_ug:
            raise CalError("channel %d: reference mass 2 needs its mass; nothing was stored" % (ch + 1))
        try:
            m2 = c.mass_ug(ref2[1], ref2[0])
        except calib.CalibError as e:
            raise CalError("channel %d: %s; nothing was stored" % (ch + 1, e))
        lin_dev = m2 - ref2_ug
        lin_ref = ref2_ug
        # uncertainty of the 2nd reading, ug: (u0^2 + u2^2) / span^2, plus the span's own
        c2_num, c2_den = _u_mean2_num_den(ref2)
        u2_counts2 = (a_num * c2_den + c2_num * a_den) // (a_den * c2_den) + 1
        u2_ug = isqrt_ceil(u2_counts2 * c_den * c_den // (c_num * c_num) + 1)
        u2_ug += isqrt_ceil(u_stat2) * ref2_ug // 1000000 + u_ref_ppm * ref2_ug // 1000000 * 2
        lim = ref2_ug * LIN_MAX_PPM // 1000000
        if LIN_K * u2_ug > lim:
            lim = LIN_K * u2_ug
        if not -lim <= lin_dev <= lim:
            raise CalError("channel %d: reference mass 2 (%d mg) weighs %d mg with the span of reference mass 1: "
                           "they disagree by %d mg (limit %d mg): a wrong mass, a mass not on the pan or a load "
                           "cell out of its linear range; nothing was stored"
                           % (ch + 1, ref2_ug // 1000, m2 // 1000, lin_dev // 1000, lim // 1000))
        # a rectangular distribution of the linearity deviation over the range: dev^2 / 3
        u_lin2 = lin_dev * lin_dev * 10 ** 12 // (3 * ref2_ug * ref2_ug)
    u = isqrt_ceil(u_ref_ppm * u_ref_ppm + u_stat2 + u_lin2)
    return {"counts_per_g": cpg, "counts_per_kg": cpk, "u_span_ppm": u, "lin_dev_ug": lin_dev, "lin_ref_ug": lin_ref,
            "cal_id": cal_id, "when": when, "ref_ug": [ref1_ug, ref2_ug] if ref2 is not None else [ref1_ug],
            "zero_counts": (2 * zero[1] + zero[0]) // (2 * zero[0]),
            # the weighings themselves (n, sum of counts, n x sum of squared deviations): the
            # calibration's raw record, in the store and the audit trail
            "weighings": [list(zero), list(ref1)] + ([list(ref2)] if ref2 is not None else [])}


def store_span(n, ch, sp, d=CALIB_DIR, when=None, run=None, say=None):
    """Store channel ch's span (a span_from() dict), audited."""
    s = _read(d, "span.json")
    chs = s.get("channels") if s is not None else None
    chs = list(chs) if isinstance(chs, list) else []
    while len(chs) < n:
        chs.append(None)
    old = chs[ch]
    chs[ch] = sp
    _write(d, "span.json", {"v": 1, "channels": chs})
    _record(d, "calib.span.%d" % ch, old, sp, when, run, say)


class SpanProcedure:
    """Span calibration of one channel, step by step, for the buttons, the REPL and the simulated
    bench: prompt() tells the operator what to put on the pan, step(board) weighs it. After the
    last step the span is stored (audited); a refusal (CalError) stores nothing."""

    def __init__(self, n, ch, ref1_ug, ref2_ug=0, nominal_cpg=None, d=CALIB_DIR, cal_id="", when=None,
                 u_ref_ppm=U_REF_PPM, sd_counts=SD_COUNTS):
        if not 0 <= ch < n:
            raise CalError("channel %d: the board has %d load-cell channels" % (ch + 1, n))
        for name, v in (("reference mass 1", ref1_ug), ("reference mass 2", ref2_ug)):
            if not _is_int(v) or (v or name.endswith("1")) and not 1000 <= v <= 5000000000:
                raise CalError("%s: must be 1 mg .. 5 kg (in ug), got %r" % (name, v))
        if ref2_ug and ref2_ug == ref1_ug:
            raise CalError("reference mass 2 must differ from reference mass 1 for a linearity check")
        self.n = n
        self.ch = ch
        self.refs = [0, ref1_ug] + ([ref2_ug] if ref2_ug else [])
        self.nominal_cpg = nominal_cpg
        self.d = d
        self.cal_id = cal_id
        self.when = when
        self.u_ref_ppm = u_ref_ppm
        self.sd_counts = sd_counts
        self.results = []
        self.span = None

    def done(self):
        return self.span is not None

    def mass_ug(self):
        """What must be on the pan for the next step (0 = empty pan)."""
        return self.refs[len(self.results)]

    def prompt(self):
        m = self.mass_ug()
        if m == 0:
            return "ch %d: empty the pan, close the oven" % (self.ch + 1)
        return "ch %d: put %s on the pan" % (self.ch + 1, fmt_mass(m))

    def step(self, board, say=None, run=None):
        r = weigh(board, self.ch, self.sd_counts)
        self.results.append(r)
        if len(self.results) < len(self.refs):
            return None
        rs = self.results
        sp = span_from(self.ch, rs[0], rs[1], self.refs[1], rs[2] if len(rs) > 2 else None,
                       self.refs[2] if len(rs) > 2 else 0, self.nominal_cpg, self.u_ref_ppm, self.cal_id,
                       self.when)
        store_span(self.n, self.ch, sp, self.d, self.when, run, say)
        self.span = sp
        return sp


def fmt_mg(ug, sign=False):
    """ug as mg with one decimal, rounded half away from zero: fmt_mg(-19950, True) = "-20.0 mg"."""
    a = -ug if ug < 0 else ug
    t = (a + 50) // 100
    return "%s%d.%d mg" % ("-" if ug < 0 else ("+" if sign else ""), t // 10, t % 10)


def fmt_mass(ug):
    if ug >= 1000000 and ug % 1000 == 0:
        return "%d.%03d g" % (ug // 1000000, ug // 1000 % 1000)
    return "%d mg" % (ug // 1000) if ug % 1000 == 0 else "%d ug" % ug


# ---------------------------------------------------------------- datasheet, check weight, offsets
def set_loadcell(span_tc_ppm_per_c, creep_ppm, creep_tau_s, d=CALIB_DIR, when=None, say=None, **ids):
    for name, v, hi in (("span_tc_ppm_per_c", span_tc_ppm_per_c, 1000), ("creep_ppm", creep_ppm, 10000),
                        ("creep_tau_s", creep_tau_s, 36000)):
        if not _is_int(v) or not 0 <= v <= hi:
            raise CalError("%s: must be an integer 0..%d, got %r" % (name, hi, v))
    new = {"span_tc_ppm_per_c": span_tc_ppm_per_c, "creep_ppm": creep_ppm, "creep_tau_s": creep_tau_s}
    for k in ids:
        new[k] = str(ids[k])
    old = _read(d, "loadcell.json")
    _write(d, "loadcell.json", new)
    _record(d, "calib.loadcell", old, new, when, None, say)
    return new


def set_check_weight(mass_ug, tol_ug, ident="", d=CALIB_DIR, when=None, say=None):
    if not _is_int(mass_ug) or not 1000 <= mass_ug <= 5000000000:
        raise CalError("check weight mass: must be 1 mg .. 5 kg (in ug), got %r" % (mass_ug,))
    if not _is_int(tol_ug) or not 1 <= tol_ug <= mass_ug // 10:
        raise CalError("check weight tolerance: must be 1 ug .. 10 %% of the mass, got %r" % (tol_ug,))
    new = {"mass_ug": mass_ug, "tol_ug": tol_ug, "id": str(ident)}
    old = _read(d, "check.json")
    _write(d, "check.json", new)
    _record(d, "calib.check", old, new, when, None, say)
    return new


def check_eval(ch, zero, loaded, counts_per_kg, mass_ug, tol_ug):
    """(deviation_ug, ok) of a check weighing: (loaded - zero) counts / span - mass."""
    net_num = loaded[1] * zero[0] - zero[1] * loaded[0]
    net_den = loaded[0] * zero[0]
    num = net_num * 1000000000
    den = net_den * counts_per_kg
    m = (2 * num + den) // (2 * den)
    dev = m - mass_ug
    return dev, -tol_ug <= dev <= tol_ug


def record_check(ch, dev_ug, ok, d=CALIB_DIR, when=None, run=None, say=None):
    """Append a check result to the history (the last HISTORY_N kept) and the audit trail."""
    h = history(d)
    e = {"ch": ch, "dev_ug": dev_ug, "ok": bool(ok), "when": when, "run": run}
    old = h[-1] if h else None
    h.append(e)
    while len(h) > HISTORY_N:
        h.pop(0)
    _write(d, "checks.json", {"v": 1, "history": h})
    _record(d, "calib.check.last", old, e, when, run, say)
    return e


class CheckProcedure:
    """The check-weight test of every channel before a run: empty pan, then the check weight, per
    channel. Each result goes to the history and the audit trail; failed() lists the channels out
    of tolerance (the run must not start)."""

    def __init__(self, n, cal, d=CALIB_DIR, when=None, run=None, sd_counts=SD_COUNTS):
        cw = _read(d, "check.json")
        if cw is None or not _is_int(cw.get("mass_ug")) or not _is_int(cw.get("tol_ug")):
            raise CalError("no check weight stored: set one first (ovenctl calibrate check --set G "
                           "--tol MG, or calstore.set_check_weight at the REPL)")
        self.n = n
        self.cal = cal
        self.weight_ug = cw["mass_ug"]
        self.tol_ug = cw["tol_ug"]
        self.d = d
        self.when = when
        self.run = run
        self.sd_counts = sd_counts
        self._zero = None
        self.ch = 0
        self.results = []       # (ch, dev_ug, ok)

    def done(self):
        return self.ch >= self.n

    def mass_ug(self):
        """What must be on the pan for the next step (0 = empty pan)."""
        return 0 if self._zero is None else self.weight_ug

    def prompt(self):
        if self._zero is None:
            return "check ch %d: empty the pan" % (self.ch + 1)
        return "check ch %d: put the check weight (%s) on the pan" % (self.ch + 1, fmt_mass(self.weight_ug))

    def step(self, board, say=None):
        r = weigh(board, self.ch, self.sd_counts)
        if self._zero is None:
            self._zero = r
            return None
        chan = self.cal["channels"][self.ch]
        cpk = chan.get("counts_per_kg") or chan["counts_per_g"] * 1000
        dev, ok = check_eval(self.ch, self._zero, r, cpk, self.weight_ug, self.tol_ug)
        record_check(self.ch, dev, ok, self.d, self.when, self.run, say)
        res = (self.ch, dev, ok)
        self.results.append(res)
        self._zero = None
        self.ch += 1
        return res

    def failed(self):
        return [r for r in self.results if not r[2]]

    def message(self):
        bad = self.failed()
        if not bad:
            return "check weight OK on %d channel(s)" % len(self.results)
        return "; ".join(["ch %d: check weight off by %s (tolerance %s)" % (c + 1, fmt_mg(dv, True), fmt_mg(self.tol_ug))
                          for c, dv, _ok in bad]) + ": run not started (recalibrate the span or check the pan)"


def set_tc_offset(which, ref_c_x100, reading_c_x100, d=CALIB_DIR, when=None, say=None, source="reference"):
    """Offset of the chamber or probe thermocouple from a reference (ice point: ref 0, or a
    reference thermometer): offset = reference - raw reading, added to the raw readings."""
    if which not in ("chamber", "probe"):
        raise CalError("thermocouple: must be chamber or probe, got %r" % (which,))
    for name, v in (("reference", ref_c_x100), ("reading", reading_c_x100)):
        if not _is_int(v) or not -5000 <= v <= 30000:
            raise CalError("%s temperature: must be -50.00 .. 300.00 degC (x100), got %r" % (name, v))
    off = ref_c_x100 - reading_c_x100
    if not -TC_OFFSET_MAX_C_X100 <= off <= TC_OFFSET_MAX_C_X100:
        raise CalError("%s thermocouple: offset %d.%02d degC is beyond %d degC: check the reference and the "
                       "thermocouple; nothing was stored"
                       % (which, off // 100 if off >= 0 else -(-off // 100), abs(off) % 100,
                          TC_OFFSET_MAX_C_X100 // 100))
    old = _read(d, "tc.json")
    new = {"chamber": 0, "probe": 0, "source": {}}
    if old is not None:
        for k in ("chamber", "probe"):
            if _is_int(old.get(k)):
                new[k] = old[k]
        if isinstance(old.get("source"), dict):
            new["source"] = dict(old["source"])
    new[which] = off
    new["source"][which] = {"how": source, "ref_c_x100": ref_c_x100, "reading_c_x100": reading_c_x100,
                            "when": when}
    _write(d, "tc.json", new)
    _record(d, "calib.tc_offset", old, new, when, None, say)
    return new


def set_equipment(eq, d=CALIB_DIR, when=None, say=None):
    """Equipment IDs and calibration dates (controller, load cells, thermocouples): a dict of
    strings or lists of strings / small dicts, as the lab writes them."""
    if not isinstance(eq, dict):
        raise CalError("equipment: must be an object")
    old = _read(d, "equipment.json")
    _write(d, "equipment.json", eq)
    _record(d, "calib.equipment", old, eq, when, None, say)
    return eq


# ---------------------------------------------------------------- PID autotune
def autotune(board, setpoint_c_x100=12000, amplitude_ppm=500000, hysteresis_c_x100=50, cycles=4,
             tc_offset_c_x100=0, tick_ms=1000, timeout_ms=10800000, max_half_period_ms=2700000):
    """Relay autotune of the heater on the board (autotune.RelayAutotune) with the heater safety
    checks active (safety.HeaterGuard: a fault turns the heater off and refuses). Returns
    (kp, ki, kd, ku, tu_ms). CalError (nothing stored) when it does not converge or faults."""
    from oven.control.autotune import RelayAutotune
    from oven.control.safety import HeaterGuard
    from oven.core import codes as C
    if not _is_int(setpoint_c_x100) or not 3000 <= setpoint_c_x100 <= 13000:
        raise CalError("autotune setpoint: must be 30.00 .. 130.00 degC, got %r" % (setpoint_c_x100,))
    try:
        at = RelayAutotune(setpoint_c_x100, amplitude_ppm, hysteresis_c_x100, cycles,
                           timeout_ms=timeout_ms, max_half_period_ms=max_half_period_ms)
    except ValueError as e:
        raise CalError("autotune settings: %s" % e)
    guard = HeaterGuard(max_temp_c_x100=13500)
    tc = board.tc
    t0 = board.ticks_ms()
    fault = 0
    try:
        board.heater_enable(1)
        while True:
            now = board.ticks_ms()
            st = tc.read()
            temp = tc.temp_c_x100 + tc_offset_c_x100
            duty = at.update(temp, board.ticks_diff(now, t0)) if st == C.OK else at.duty_ppm
            fault = guard.check(now, st, temp, setpoint_c_x100, 1 if duty else 0)
            if fault:
                break
            board.heater_set_duty_ppm(duty)
            if at.done or at.failed:
                break
            board.wdt_feed()
            board.wait_until_ms(now + tick_ms)
    finally:
        board.outputs_safe()
    if fault:
        raise CalError("autotune stopped by the heater safety check (fault %d): heater off; nothing was stored" % fault)
    g = at.gains() if at.done else None
    u = at.ultimate()
    if g is None or u is None:
        raise CalError("autotune did not converge (no steady oscillation around %d.%02d degC within the time "
                       "limits): gains unchanged; nothing was stored"
                       % (setpoint_c_x100 // 100, setpoint_c_x100 % 100))
    return g[0], g[1], g[2], u[0], u[1]


def store_pid(kp, ki, kd, ku=0, tu_ms=0, setpoint_c_x100=0, d=CALIB_DIR, when=None, say=None):
    for name, v in (("kp", kp), ("ki", ki), ("kd", kd)):
        if not _is_int(v) or not 0 <= v <= 100000000:
            raise CalError("%s: must be an integer 0 .. 100000000, got %r" % (name, v))
    if kp == 0:
        raise CalError("kp: must be above 0")
    new = {"kp": kp, "ki": ki, "kd": kd, "ku": ku, "tu_ms": tu_ms, "setpoint_c_x100": setpoint_c_x100,
           "when": when}
    old = _read(d, "pid.json")
    _write(d, "pid.json", new)
    _record(d, "calib.pid", old, new, when, None, say)
    return new
