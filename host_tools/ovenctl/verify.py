"""`ovenctl verify`: an independent check of a run log. Every cell's loss, U and verdict recomputed
from the raw records with exact arithmetic (nothing imported from firmware/), the run checked for
consistency, the device's VERDICT record compared field by field. What and why: docs/VERIFY.md.

Contract: verify_log(log) runs CHECKS in order on one _Verification and returns a JSON-ready dict
whose findings name their record (seq, byte offset, type); exit_code 0 consistent, 1 damaged (a
reader problem other than an unknown record type or samples the writer dropped, or no END) or
inconsistent. Exit 2 (read_log raised LogError: unreadable) is the caller's (cmd_verify).
"""
import math
import re
from fractions import Fraction as F

from ovenctl.logfile import LogError, read_log  # noqa: F401  (LogError re-exported for callers)

# ---------------------------------------------------------------- facts of the record format
# (copied from the firmware's published constants; values are part of the log format)
PHASE_NAMES = ("IDLE", "PRECHECK", "TARE", "LOAD", "INITIAL_WEIGH", "PUMPDOWN", "HEATUP", "SOAK",
               "COOLDOWN", "VENT", "FINAL_WEIGH", "LEAK_CHECK", "VERDICT", "DONE", "ABORTED", "PREHEAT")
PH_TARE, PH_INITIAL_WEIGH, PH_SOAK, PH_COOLDOWN = 2, 4, 7, 8
PH_FINAL_WEIGH, PH_DONE, PH_ABORTED = 10, 13, 14
WEIGH_PHASE = {1: PH_TARE, 2: PH_INITIAL_WEIGH, 3: PH_FINAL_WEIGH}
KIND_NAMES = {1: "tare", 2: "m0", 3: "m1"}

FAULT_NAMES = {10: "TEMP_MAX", 11: "TEMP_MIN", 12: "TC_OPEN", 13: "TC_SHORT", 14: "TC_STALE",
               15: "HEAT_GAIN", 16: "RUNAWAY", 17: "VACUUM_LOST", 18: "LEAK_RATE", 19: "PUMPDOWN_TIMEOUT",
               20: "LOADCELL", 21: "WEIGH_TIMEOUT", 22: "FLASH", 23: "WATCHDOG", 24: "OPERATOR_ABORT",
               25: "SOAK_MAX_TIME", 26: "P_SENSOR", 27: "HEATUP_TIMEOUT", 28: "COOLDOWN_TIMEOUT",
               29: "INTERRUPTED"}
# F_INTERRUPTED is never raised as a fault: it is the INVALID reason of a run closed at boot after a
# power cut (docs/LOGFORMAT.md section 9). It is in the table so that it is named wherever a code is.
F_INTERRUPTED = 29
E_PHASE, E_EXC_START, E_EXC_END, E_LEAK, E_EARLY_FAIL = 100, 101, 102, 103, 104
E_LC_FAULT, E_WEIGH_RETRY, E_LC_GLITCH, E_INVALID, E_SOAK_DONE = 105, 106, 107, 108, 109
E_VAC_EXCURSION, E_RESUMED, E_INTERRUPTED = 110, 111, 112
E_NO_PASS, E_LC_TEMP_WAIT, E_SETTLE = 114, 116, 117
NP_LC_TEMP = 6
EVENT_NAMES = {E_PHASE: "PHASE", E_EXC_START: "EXCURSION_START", E_EXC_END: "EXCURSION_END",
               E_LEAK: "LEAK_ANSWER", E_EARLY_FAIL: "EARLY_FAIL", E_LC_FAULT: "LC_FAULT",
               E_WEIGH_RETRY: "WEIGH_RETRY", E_LC_GLITCH: "LC_GLITCH", E_INVALID: "INVALID",
               E_SOAK_DONE: "SOAK_DONE", E_VAC_EXCURSION: "VAC_EXCURSION", E_RESUMED: "RESUMED",
               E_INTERRUPTED: "INTERRUPTED", E_NO_PASS: "NO_PASS", E_LC_TEMP_WAIT: "LC_TEMP_WAIT",
               E_SETTLE: "SETTLE"}
# reasons a cell cannot PASS (E_NO_PASS a; the VERDICT record's "no_pass" names)
NO_PASS_NAMES = ("", "CHAMBER_TIMED", "NO_BLANK", "BLANK_FAILED", "BLANK_OLD", "ZERO_RETURN", "LC_TEMP",
                 "SOAK_CUT", "NO_CHECK")
# the reasons this verifier derives from the log itself (the others it takes from the events)
NO_PASS_TEXT = {"CHAMBER_TIMED": "soak timed on the chamber thermocouple", "NO_BLANK": "no blank-run drift fit",
                "BLANK_FAILED": "the blank run failed", "BLANK_OLD": "the blank fit is older than blank_max_runs runs",
                "ZERO_RETURN": "the blank run's zero return is beyond the method's bound (or unknown)",
                "LC_TEMP": "m1 weighed outside the load-cell temperature band", "SOAK_CUT": "the soak was cut short",
                "NO_CHECK": "no check-weight history (repeatability unknown)"}
DERIVED_NO_PASS = ("NO_BLANK", "BLANK_FAILED", "BLANK_OLD", "ZERO_RETURN", "SOAK_CUT", "NO_CHECK")
# power-cut recovery (firmware/oven/run/recovery.py): the INTERRUPTED event's b, and the method's defaults
REASON_NAMES = ("RESUME", "NO_CLOCK", "NOT_SOAK", "OUTAGE", "OUT_OF_SPEC", "ENDED", "NO_PLAN",
                "MAX_RESUMES", "DAMAGED", "NOT_LATEST")
R_NO_CLOCK, R_NOT_SOAK, R_OUTAGE, R_OUT_OF_SPEC, R_ENDED, R_NO_PLAN, R_MAX_RESUMES = 1, 2, 3, 4, 5, 6, 7
REASON_TEXT = {1: "no trustworthy clock (no RTC or no rtc_start_s): the outage cannot be measured",
               2: "the last synced sample was not an in-spec SOAK sample",
               3: "the outage was longer than the method's resume_grace_s",
               4: "the oven read out of spec (or a sensor was bad) at power-on",
               5: "the run had already ended (fault or INVALID event)",
               6: "the board cannot resume a run (no resume plan)",
               7: "the run had been resumed resume_max times already",
               8: "the log was damaged (or the method / the tare and m0 weighings unusable)",
               9: "an older unfinished run (only the newest one may resume)"}
DEFAULT_GRACE_S, DEFAULT_RESUME_MAX = 120, 3
# informational events: nothing else in the log refers to them, only the sequence numbers protect them
E_PROBE_TEMP = 113             # the reference probe's reading (a c_x100 or -32768, b status)
EVENT_NAMES[E_PROBE_TEMP] = "PROBE_TEMP"
E_NO_PASS = 114                # a reason a cell cannot PASS: a = NP_* reason, b = cell (-1 every cell)
NP_CHAMBER_TIMED = 1
EVENT_NAMES[E_NO_PASS] = "NO_PASS"
INFO_EVENTS = (E_LC_FAULT, E_WEIGH_RETRY, E_LC_GLITCH, E_VAC_EXCURSION, E_PROBE_TEMP)
SF_IN_SPEC = 1
SF_TC_BAD = 16
SF_PROBE_OUT = 256             # the reference probe fitted and out of tolerance (or unread) that second
SF_CHAMBER_TIMED = 512         # no reference probe: the soak was timed on the chamber
# heat_in / cool_in (docs/APP.md "Heating and cooling"): PREHEAT heats in air before the pump-down, its
# end is the PREHEAT_DONE event (a = probe (chamber without one) c_x100, b = chamber c_x100)
PH_PUMPDOWN, PH_HEATUP, PH_PREHEAT = 5, 6, 15
E_PREHEAT_DONE = 118
EVENT_NAMES[E_PREHEAT_DONE] = "PREHEAT_DONE"
SF_PUMP, SF_VENT = 4, 8
PREHEAT_HOLD_S = 60            # app._PREHEAT_HOLD_MS: chamber and probe in their bands this long
SF_NAMES = ((1, "IN_SPEC"), (2, "HEATER"), (4, "PUMP"), (8, "VENT"), (16, "TC_BAD"), (32, "P_BAD"),
            (64, "FAULT"), (128, "EXCURSION"), (256, "PROBE_OUT"), (512, "CHAMBER_TIMED"))

SEVERITY = {"PASS": 1, "INCONCLUSIVE": 2, "FAIL": 3, "INVALID": 4, "ABORTED": 5}
CELL_FIELDS = ("verdict", "loss_ppm", "loss_pct_x100", "u_ppm", "u_pct_x100", "flags", "limit_ppm",
               "comparator", "decision")
RUN_FIELDS = ("verdict", "cells", "method", "fault", "invalid", "soak_in_spec_s", "soak_total_s")
SEAL_FIELDS = ("chain_hmac",)   # sealed logs (checked by sealcheck.py with the key)
FL_GAIN, FL_GAIN_SIGNIFICANT, FL_LEAK = 1, 2, 4


def event_name(code):
    if code in FAULT_NAMES:
        return "FAULT_" + FAULT_NAMES[code]
    return EVENT_NAMES.get(code, "CODE_%d" % code)


def phase_name(p):
    return PHASE_NAMES[p] if isinstance(p, int) and 0 <= p < len(PHASE_NAMES) else "PHASE_%s" % p


def flag_names(f):
    return "|".join(n for b, n in SF_NAMES if f & b) or "-"


class CannotRecompute(ValueError):
    pass


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------- exact arithmetic
def reading(samples):
    """(mean, variance of the mean) of a weighing's accepted raw samples, exact."""
    n = len(samples)
    if n < 2:
        raise CannotRecompute("a weighing needs at least 2 samples, this one has %d" % n)
    mean = F(sum(samples), n)
    m2 = sum((x - mean) ** 2 for x in samples)
    return mean, m2 / (n * (n - 1))


def _frac(ch, num, den, what):
    a, b = ch.get(num), ch.get(den)
    if not _is_int(a) or not _is_int(b) or b == 0:
        raise CannotRecompute("calibration.blank[%s].%s/%s is not a rational (%r/%r)" % (what, num, den, a, b))
    return F(a, b)


def drift_terms(ch, idx):
    """(k, var_k, t_ref) of one channel's blank-run fit, counts per 0.01 degC."""
    if not isinstance(ch, dict):
        raise CannotRecompute("calibration.blank[%d] is not an object" % idx)
    k = _frac(ch, "k_num", "k_den", idx)
    var_k = _frac(ch, "var_k_num", "var_k_den", idx)
    t_ref = _frac(ch, "t_ref_num", "t_ref_den", idx)
    if var_k < 0:
        raise CannotRecompute("calibration.blank[%d]: negative var_k" % idx)
    return k, var_k, t_ref


def corrected(rd, drift, temp_c_x100):
    mean, var = rd
    if drift is None:
        return mean, var
    k, var_k, t_ref = drift
    dt = F(temp_c_x100) - t_ref
    return mean - k * dt, var + var_k * dt * dt


def ceil_sqrt(x):
    """Smallest integer u >= 0 with u*u >= x (x a non-negative Fraction)."""
    u = math.isqrt(x.numerator // x.denominator)
    while u * u < x:
        u += 1
    return u


def _within(x, limit, comparator):
    return x <= limit if comparator == "le" else x < limit


def evaluate(z, a, b, method, leak, u_ppm=None):
    """One cell's result from corrected readings (mean, var). Returns (fields, exact) where fields
    mirrors the device's cell record and exact holds unrounded values. u_ppm: U from the full budget
    (budget()); None = the old formula (window statistics, drift variance, method u_sys_ppm)."""
    zm, zv = F(z[0]), F(z[1])
    am, av = F(a[0]), F(a[1])
    bm, bv = F(b[0]), F(b[1])
    d = am - zm
    if d <= 0:
        # the device cannot evaluate this cell: it records a default (all-zero) INVALID result
        return ({"verdict": "INVALID", "loss_ppm": 0, "loss_pct_x100": 0, "u_ppm": 0, "u_pct_x100": 0,
                 "flags": 0, "limit_ppm": 0, "comparator": "le", "decision": "guarded"},
                {"error": "m0 reading is not above the tare reading"})
    nl = am - bm
    loss = 10 ** 6 * nl / d                                   # ppm, exact
    u2 = 10 ** 12 * ((bm - zm) ** 2 * av + d ** 2 * bv + nl ** 2 * zv) / d ** 4 + method["u_sys_ppm"] ** 2
    u = ceil_sqrt(4 * u2)
    if u_ppm is not None:
        u = u_ppm
        u2 = F(u_ppm, 2) ** 2
    lim, cmp_ = method["limit_ppm"], method["comparator"]
    flags = 0
    if nl < 0:
        flags |= FL_GAIN
        if loss < -u:
            flags |= FL_GAIN_SIGNIFICANT
    if leak:
        flags |= FL_LEAK
        v = "FAIL"
    elif method["decision"] == "simple":
        v = "PASS" if _within(loss, lim, cmp_) else "FAIL"
    elif _within(loss + u, lim, cmp_):
        v = "PASS"
    elif not _within(loss - u, lim, cmp_):
        v = "FAIL"
    else:
        v = "INCONCLUSIVE"
    if v == "PASS" and flags & FL_GAIN_SIGNIFICANT:
        v = "INCONCLUSIVE"
    fields = {"verdict": v, "loss_ppm": round(loss), "loss_pct_x100": round(loss / 100), "u_ppm": u,
              "u_pct_x100": -(-u // 100), "flags": flags, "limit_ppm": lim, "comparator": cmp_,
              "decision": method["decision"]}
    exact = {"loss_ppm": float(loss), "u_k2_ppm": 2 * math.sqrt(float(u2)), "u_std_ppm": math.sqrt(float(u2)),
             "loss_num": str(loss.numerator), "loss_den": str(loss.denominator)}
    return fields, exact


# ---------------------------------------------------------------- the uncertainty budget (docs/UNCERTAINTY.md)
BUDGET_TERMS = ("stat", "drift", "rep", "res", "span_tc", "creep", "zero_return", "cal")
BUDGET_TERM_TEXT = {
    "stat": ("weighing statistics", "tare, m0, m1 windows: variance of the mean", "normal"),
    "drift": ("drift correction", "blank-run fit: var(k) x the weighings' temperatures", "normal"),
    "rep": ("repeatability", "check-weight history (or 20-count bound), x sqrt 2", "normal"),
    "res": ("resolution", "1 count per reading, m0 and m1", "rectangular"),
    "span_tc": ("span temperature coefficient", "datasheet ppm/degC x load-cell dT m1-m0", "rectangular"),
    "creep": ("creep still to come at m0", "creep_ppm x m0 x exp(-settle/tau) bound", "rectangular"),
    "zero_return": ("zero return", "blank run: corrected zero, end minus start", "rectangular"),
    "cal": ("calibration (linearity)", "2-point deviation (or 0.1 %) over the loss interval", "rectangular"),
}
REP_BOUND_COUNTS = 20
LIN_BOUND = F(1, 1000)
BUDGET_INPUTS = ("counts_per_g", "u_span_ppm", "lin_dev_ug", "lin_ref_ug", "span_tc_ppm_per_c", "creep_ppm",
                 "creep_tau_s", "u_rep_ug", "check_n", "dT_lc_c_x100", "settle_s", "zero_return_counts",
                 "u_sys_ppm", "limit_ppm")


def rep_known(inp):
    return inp["u_rep_ug"] >= 0 and inp["check_n"] >= 2


def budget(z, a, b, tz, ta, tb, var_k, inp, exact_out=None):
    """The budget by its definitions, exact: z, a, b = (mean, var of the mean) of the drift-corrected
    readings (window variance only), tz/ta/tb the weighings' load-cell temperatures, var_k the blank
    fit's Fraction or None. Same layout as the device's VERDICT "budget"."""
    (zm, vz), (am, va), (bm, vb) = z, a, b
    d, nl, bz = am - zm, am - bm, bm - zm
    if d <= 0:
        raise CannotRecompute("m0 reading is not above the tare reading")
    cpg = inp["counts_per_g"]
    stat2 = (bz ** 2 * va + d ** 2 * vb + nl ** 2 * vz) / d ** 4
    # one k corrects all three readings: the errors are correlated (T_ref cancels)
    drift2 = F(0) if var_k is None else var_k * ((bz * ta - d * tb + nl * tz) / d ** 2) ** 2
    m0_ug = round(d * 10 ** 6 / cpg)
    if m0_ug <= 0:
        raise CannotRecompute("m0 is below 1 ug")
    loss_ug = round(nl * 10 ** 6 / cpg)
    t = {"stat": ceil_sqrt(stat2 * m0_ug ** 2), "drift": ceil_sqrt(drift2 * m0_ug ** 2)}
    u_rep = F(inp["u_rep_ug"]) if rep_known(inp) else F(-(-REP_BOUND_COUNTS * 10 ** 6 // cpg))
    t["rep"] = ceil_sqrt(2 * u_rep ** 2)
    q = F(10 ** 6, cpg)
    t["res"] = ceil_sqrt(2 * q ** 2 / 12)
    t["span_tc"] = ceil_sqrt((m0_ug * F(inp["span_tc_ppm_per_c"], 10 ** 6) * F(inp["dT_lc_c_x100"], 100)) ** 2 / 3)
    tau, st = inp["creep_tau_s"], inp["settle_s"]
    x = F(st, tau) if tau > 0 else None
    t["creep"] = ceil_sqrt((m0_ug * F(inp["creep_ppm"], 10 ** 6) / (1 + x + x * x / 2)) ** 2 / 3) if tau > 0 else 0
    t["zero_return"] = ceil_sqrt((inp["zero_return_counts"] * q) ** 2 / 3)
    interval = max(abs(loss_ug), -(-inp["limit_ppm"] * m0_ug // 10 ** 6))
    slope = F(inp["lin_dev_ug"], inp["lin_ref_ug"]) if inp["lin_ref_ug"] > 0 else LIN_BOUND
    t["cal"] = ceil_sqrt((interval * slope) ** 2 / 3)
    others = sum(F(t[k]) ** 2 for k in BUDGET_TERMS[2:])
    v = 10 ** 12 * (stat2 + drift2) + 10 ** 12 * others / m0_ug ** 2 + inp["u_sys_ppm"] ** 2
    if exact_out is not None:
        exact_out["u2_ppm2"] = v
    return {"inputs": dict(inp), "terms_ug": t, "uc_ug": ceil_sqrt(v * m0_ug ** 2 / 10 ** 12),
            "U_ug": ceil_sqrt(4 * v * m0_ug ** 2 / 10 ** 12), "U_ppm": ceil_sqrt(4 * v), "m0_ug": m0_ug,
            "loss_ug": loss_ug, "k": 2}


def budget_inputs(ctx, hdr, c, weigh, settle_s, zero_return, method, dev_inputs):
    """The budget's inputs from the log: the header's "cal" (per channel, check-weight history), the
    WEIGH records' load-cell temperatures, the SETTLE event, the blank fit, the method. Without a
    header "cal" (the device used its default calibration, not logged) the calibration inputs are
    taken from the VERDICT record, with a warning."""
    inp = {}
    cal = hdr.get("cal")
    keys = ("counts_per_g", "u_span_ppm", "lin_dev_ug", "lin_ref_ug", "span_tc_ppm_per_c", "creep_ppm", "creep_tau_s")
    chs = cal.get("channels") if isinstance(cal, dict) else None
    if isinstance(chs, list) and c < len(chs) and isinstance(chs[c], dict):
        for k in keys:
            v = chs[c].get(k)
            if not _is_int(v):
                raise CannotRecompute("header cal.channels[%d].%s is not an integer (%r)" % (c, k, v))
            inp[k] = v
        chk = cal.get("check")
        if chk is None:
            inp["u_rep_ug"], inp["check_n"] = -1, 0
        elif isinstance(chk, dict) and _is_int(chk.get("u_rep_ug")) and _is_int(chk.get("n")):
            inp["u_rep_ug"], inp["check_n"] = chk["u_rep_ug"], chk["n"]
        else:
            raise CannotRecompute("header cal.check is not a check-weight history (u_rep_ug, n)")
    else:
        if not isinstance(dev_inputs, dict):
            raise CannotRecompute("no calibration for the budget: neither a header cal nor the record's inputs")
        taken = []
        for k in keys + ("u_rep_ug", "check_n"):
            v = dev_inputs.get(k)
            if not _is_int(v):
                raise CannotRecompute("budget input %s missing in the VERDICT record" % k)
            inp[k] = v
            taken.append(k)
        cpg = counts_per_g(hdr)
        if cpg is not None and cpg != inp["counts_per_g"]:
            ctx.verdict_issue("cell %d budget: counts_per_g %r differs from the header calibration's %r"
                              % (c, inp["counts_per_g"], cpg))
        ctx.notes.append("cell %d budget: the header has no cal (a default calibration); %s taken from the "
                         "VERDICT record" % (c, ", ".join(taken)))
    inp["dT_lc_c_x100"] = weigh[(3, c)]["lc_temp_c_x100"] - weigh[(2, c)]["lc_temp_c_x100"]
    inp["settle_s"] = settle_s
    inp["zero_return_counts"] = zero_return
    inp["u_sys_ppm"] = method["u_sys_ppm"]
    inp["limit_ppm"] = method["limit_ppm"]
    return {k: inp[k] for k in BUDGET_INPUTS}


def blank_reasons(blank, c, method, bud):
    """The no-PASS reasons the header's blank fit gives cell c (docs/UNCERTAINTY.md section 4)."""
    if not isinstance(blank, list) or c >= len(blank) or not isinstance(blank[c], dict):
        return ["NO_BLANK"]
    ch = blank[c]
    out = []
    if ch.get("failed") or ch.get("error"):
        out.append("BLANK_FAILED")
    ru = ch.get("runs_used", 0)
    if not _is_int(ru) or ru >= method.get("blank_max_runs", 20):
        out.append("BLANK_OLD")
    zr = ch.get("zero_return_counts")
    if not _is_int(zr):
        out.append("ZERO_RETURN")
    elif bud is not None:
        # |zr| / cpg > permille/1000 x limit/1e6 x m0 (grams)
        if F(abs(zr), bud["inputs"]["counts_per_g"]) > F(method.get("zero_return_max_permille", 100) *
                                                          method["limit_ppm"] * bud["m0_ug"], 10 ** 15):
            out.append("ZERO_RETURN")
    return out


def check_method(m):
    """The method fields the verdict needs; CannotRecompute names the first bad one."""
    if not isinstance(m, dict):
        raise CannotRecompute("header.method is not an object")
    for k in ("limit_ppm", "u_sys_ppm", "soak_s"):
        if not _is_int(m.get(k)) or m.get(k) < 0:
            raise CannotRecompute("header.method.%s is not a non-negative integer (%r)" % (k, m.get(k)))
    for k, choices in (("comparator", ("le", "lt")), ("decision", ("guarded", "simple")),
                       ("early_fail", ("continue", "stop"))):
        if m.get(k) not in choices:
            raise CannotRecompute("header.method.%s is %r, not one of %s" % (k, m.get(k), ", ".join(choices)))
    if m.get("chamber_timed_pass", "no") not in ("no", "yes"):
        raise CannotRecompute("header.method.chamber_timed_pass is %r, not one of no, yes" % (m.get("chamber_timed_pass"),))
    for k in ("heat_in", "cool_in"):
        if m.get(k, "vacuum") not in ("air", "vacuum"):
            raise CannotRecompute("header.method.%s is %r, not one of air, vacuum" % (k, m.get(k)))
    if not isinstance(m.get("name"), str):
        raise CannotRecompute("header.method.name is not a string")
    return m


# ---------------------------------------------------------------- log facts shared with export/report
def weighing_map(log):
    """{(kind, cell): [weighing, ...]} in file order."""
    out = {}
    for w in log.weighings:
        out.setdefault((w["kind"], w["cell"]), []).append(w)
    return out


def counts_per_g(header):
    cal = header.get("calibration") if isinstance(header, dict) else None
    c = cal.get("counts_per_g") if isinstance(cal, dict) else None
    if isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) and c > 0:
        return c
    return None


def weigh_mean(w):
    s = w["samples"]
    return F(sum(s), len(s)) if s else None


def weigh_sd(w):
    s = w["samples"]
    if len(s) < 2:
        return None
    m = F(sum(s), len(s))
    return math.sqrt(float(sum((x - m) ** 2 for x in s) / (len(s) - 1)))


def cell_ids(log):
    ids = log.header.get("cells") if isinstance(log.header, dict) else None
    out = []
    for i in range(log.n_cells):
        out.append(str(ids[i]) if isinstance(ids, list) and i < len(ids) else "cell %d" % i)
    return out


def phase_spans(log):
    """Contiguous runs of the samples' phase: [(phase, t_start_s, t_end_s)]."""
    spans = []
    for s in log.samples:
        if spans and spans[-1][0] == s["phase"] and s["t_s"] - spans[-1][2] <= 60:
            spans[-1][2] = s["t_s"]
        else:
            spans.append([s["phase"], s["t_s"], s["t_s"]])
    return [tuple(x) for x in spans]


# ---------------------------------------------------------------- the verifier
_PROBLEM_WARNINGS = ("unknown record type",)
_OFFSET_RE = re.compile(r"offset (\d+)")


class _Verification:
    """One verification in progress: the log, the findings and notes, the result dict being built
    (`out`) and the facts the checks derive for the checks after them. Each fact is set by the check
    named above it (CHECKS order) and read only by later ones."""

    def __init__(self, log, path):
        self.log = log
        self.findings = []
        self.notes = []         # facts the reader should know that are not findings
        self.by_offset = {r.offset: r for r in log.records}
        vr = [r for r in log.records if r.name == "VERDICT"]
        self.vrec = vr[-1] if vr else None
        self.hdr = log.header if isinstance(log.header, dict) else {}
        self.n = log.n_cells
        self.out = {"file": path, "run_id": self.hdr.get("run_id"), "fw_version": self.hdr.get("fw_version"),
                    "board": self.hdr.get("board"), "n_cells": self.n, "cell_ids": cell_ids(log),
                    "size_bytes": log.size, "records": len(log.records), "complete": log.complete,
                    "n_samples": len(log.samples)}
        # check_reader_damage
        self.samples_intact = True      # False: the sample-level cross-checks are skipped
        # check_header
        self.method = None              # check_method()'s header method, None when unusable
        self.header_method = None       # the header's "method" as written (any type)
        self.cal = None                 # the header's "calibration" as written
        self.blank = None               # its "blank" fits, None when absent or not one per cell
        self.drifts = []                # per cell: drift_terms() (k, var_k, t_ref) or None
        # check_events
        self.fault_ev = self.inv_ev = self.phase_ev = ()
        self.fault = self.invalid = 0   # first fault code, first INVALID reason (0: none)
        self.final_phase = 0            # the phase the last PHASE event entered
        self.aborted = False            # the run ended ABORTED (a fault, or the phase)
        self.leak_answers = []          # per cell: 0/1, None without an answer
        self.early_fail = []            # per cell: 1 after an EARLY_FAIL event
        # check_recovery
        self.power_cuts = None          # _check_power_cuts()'s summary
        self.interrupted = None         # its "interrupted" (the run closed at boot) or None
        # check_samples
        self.sample_at_s = {}           # t_s -> the 1 Hz sample
        # count_soak_time
        self.soak_in_spec_s = 0         # in-spec soak seconds from the samples (with heat_in air credit)
        self.soak_done_ev = []          # the SOAK_DONE events
        # check_weighings
        self.weigh = {}                 # (kind, cell) -> the first WEIGH record of that kind and cell
        # collect_no_pass
        self.budget_format = False      # the VERDICT cells list "no_pass": the budget-era rules apply
        self.no_pass_events = {}        # cell -> NO_PASS reason names logged for it, in order
        self.settle_s = 0               # the last SETTLE event's settle_s (0 without one)
        self.zero_returns = []          # per cell: the blank fit's zero return (counts, 0 unknown)
        # recompute_cells
        self.exp_cells = []             # per cell: the recomputed VERDICT cell, None when not computable
        self.cells_out = []             # per cell: the report's cell dict (readings, exact, error)
        # recompute_overall
        self.overall = None             # the recomputed run verdict, None when not computable
        self.exp_run = None             # the recomputed VERDICT run fields

    def add(self, level, msg, rec=None, offset=None, seq=None):
        if rec is not None:
            offset, seq = rec.offset, rec.seq
        elif offset is not None and seq is None and offset in self.by_offset:
            seq = self.by_offset[offset].seq
        name = None
        if offset is not None and offset in self.by_offset:
            name = self.by_offset[offset].name
        self.findings.append({"level": level, "message": msg, "offset": offset, "seq": seq, "record": name})

    def inconsistent(self, msg, rec=None, offset=None, seq=None):
        self.add("inconsistent", msg, rec, offset, seq)

    def verdict_issue(self, msg):
        self.add("inconsistent", msg, self.vrec)


def check_reader_damage(v):
    """The reader's problems (damage; an unknown record type and samples dropped by the writer are
    warnings), a missing END, events dropped by the writer."""
    log = v.log
    for p in log.problems:
        m = _OFFSET_RE.search(p)
        off = int(m.group(1)) if m else None
        if any(w in p for w in _PROBLEM_WARNINGS):
            v.add("warning", p, offset=off)
        elif "the writer dropped" in p:
            v.add("warning", p, offset=off)
            v.samples_intact = False
        else:
            v.add("damage", p, offset=off)
            v.samples_intact = False
    if not log.complete:
        last = log.records[-1]
        v.add("damage", "no END record: the log is incomplete (run cut or records lost after offset %d)"
              % (last.offset + last.length), offset=last.offset + last.length)
        v.samples_intact = False
    elif log.end and log.end.get("dropped_events"):
        v.add("damage", "the writer dropped %d events (END record): faults or answers may be missing"
              % log.end["dropped_events"], rec=[r for r in log.records if r.name == "END"][-1])


def check_header(v):
    """A usable method (integers where the firmware has them), a calibration with counts_per_g, the
    blank-run drift fits, one id per cell."""
    hdr, n = v.hdr, v.n
    try:
        v.method = check_method(hdr.get("method"))
    except CannotRecompute as e:
        v.inconsistent("cannot recompute: %s" % e, offset=0, seq=0)
    v.out["method"] = v.method
    hm = v.header_method = hdr.get("method")
    if isinstance(hm, dict):
        for k, x in sorted(hm.items(), key=lambda kv: str(kv[0])):
            if k in ("name", "comparator", "decision", "early_fail", "base", "chamber_timed_pass", "heat_in",
                     "cool_in"):
                continue
            if not _is_int(x) or x < 0:
                v.inconsistent("header method.%s is %r: the firmware's methods hold non-negative integers there"
                               % (k, x), offset=0, seq=0)
    drifts = [None] * n
    cal = v.cal = hdr.get("calibration")
    blank = cal.get("blank") if isinstance(cal, dict) else None
    if not isinstance(cal, dict):
        v.inconsistent("header has no calibration object", offset=0, seq=0)
    elif counts_per_g(hdr) is None:
        v.inconsistent("header calibration.counts_per_g is %r, not a positive number"
                       % (cal.get("counts_per_g"),), offset=0, seq=0)
    if isinstance(cal, dict) and blank is not None:
        if not isinstance(blank, list) or len(blank) != n:
            v.inconsistent("header calibration.blank is not a list of %d channel fits" % n, offset=0, seq=0)
            blank = None
        else:
            for i, ch in enumerate(blank):
                try:
                    drifts[i] = drift_terms(ch, i)
                except CannotRecompute as e:
                    v.inconsistent("cannot recompute: %s" % e, offset=0, seq=0)
                    continue
                odd = sorted(str(k) for k, x in ch.items() if not _is_int(x))
                if odd:
                    v.inconsistent("header calibration.blank[%d]: %s not integer(s) as the drift fit writes them"
                                   % (i, ", ".join(odd)), offset=0, seq=0)
    v.blank = blank
    v.drifts = drifts
    v.out["drift"] = [None if d is None else {"k_counts_per_c": float(d[0]) * 100,
                                              "u_k_counts_per_c": math.sqrt(float(d[1])) * 100,
                                              "t_ref_c": float(d[2]) / 100} for d in drifts]
    ids = hdr.get("cells")
    if not isinstance(ids, list) or len(ids) != n:
        v.inconsistent("header cells (%r) do not list %d cell ids" % (ids, n), offset=0, seq=0)


def check_events(v):
    """Known event codes, the phase chain (each PHASE event's "previous" is the last phase entered), a
    fault implies ABORTED, one leak answer per cell, early-fail cells."""
    ev, n = v.log.events, v.n
    v.fault_ev = [e for e in ev if e["code"] in FAULT_NAMES]
    v.inv_ev = [e for e in ev if e["code"] == E_INVALID]
    v.phase_ev = [e for e in ev if e["code"] == E_PHASE]
    for e in ev:
        if e["code"] not in FAULT_NAMES and e["code"] not in EVENT_NAMES:
            v.add("warning", "unknown event code %d (a newer firmware?) ignored" % e["code"],
                  offset=e["offset"], seq=e["seq"])
    v.fault = v.fault_ev[0]["code"] if v.fault_ev else 0
    v.invalid = v.inv_ev[0]["a"] if v.inv_ev else 0
    prev = 0
    for e in v.phase_ev:
        if e["b"] != prev:
            v.inconsistent("phase event to %s says the previous phase was %s, the previous phase event "
                           "entered %s (a phase event is missing)" % (phase_name(e["a"]), phase_name(e["b"]),
                                                                    phase_name(prev)),
                           offset=e["offset"], seq=e["seq"])
        prev = e["a"]
    v.final_phase = prev
    v.aborted = v.final_phase == PH_ABORTED or v.fault != 0
    if v.fault and v.final_phase != PH_ABORTED:
        v.inconsistent("fault %s recorded but the run did not enter ABORTED" % event_name(v.fault),
                       offset=v.fault_ev[0]["offset"], seq=v.fault_ev[0]["seq"])
    leak = [None] * n
    early = [0] * n
    for e in ev:
        if e["code"] == E_LEAK:
            c = e["a"]
            if not (0 <= c < n) or e["b"] not in (0, 1):
                v.inconsistent("leak answer event for cell %d with answer %d" % (c, e["b"]),
                               offset=e["offset"], seq=e["seq"])
            elif leak[c] is not None:
                v.inconsistent("second leak answer for cell %d" % c, offset=e["offset"], seq=e["seq"])
            else:
                leak[c] = e["b"]
        elif e["code"] == E_EARLY_FAIL:
            c = e["a"]
            if not (0 <= c < n):
                v.inconsistent("early-fail event for cell %d" % c, offset=e["offset"], seq=e["seq"])
            else:
                early[c] = 1
    v.leak_answers, v.early_fail = leak, early
    v.out["events"] = {"fault": v.fault, "fault_name": FAULT_NAMES.get(v.fault), "invalid": v.invalid,
                       "invalid_name": FAULT_NAMES.get(v.invalid), "final_phase": phase_name(v.final_phase),
                       "leak_answers": leak, "early_fail": early}


def check_recovery(v):
    """Power cuts: resumes and the closing of an interrupted run (docs/LOGFORMAT.md section 9)."""
    v.power_cuts = _check_power_cuts(v, v.log, v.hdr, v.samples_intact)
    v.out["power_cuts"] = v.power_cuts
    v.interrupted = v.power_cuts["interrupted"]
    if v.interrupted is not None and not v.fault:
        v.aborted = False       # only a fault makes a closed run ABORTED (recovery.verdict_record)


def check_samples(v):
    """The 1 Hz samples against the events (phases, excursions; intact logs only), the IN_SPEC flag
    against the method, the heating and cooling medium."""
    for s in v.log.samples:
        v.sample_at_s[s["t_s"]] = s
    if v.samples_intact:
        _check_samples_vs_events(v, v.log, v.sample_at_s, v.phase_ev)
    if v.method:
        _check_in_spec(v, v.log, v.header_method, v.hdr.get("probe"))
    if v.method:
        _check_heat_cool(v, v.log, v.header_method, v.phase_ev)


def count_soak_time(v):
    """The soak seconds from the samples and the SOAK_DONE event (no findings: the verdict checks use them)."""
    samples = v.log.samples
    # heat_in "air": the pump-down's and HEATUP's seconds at the method's conditions (IN_SPEC) are soak
    # time too (app._credit); they count in both the in-spec and the total soak time
    credit = sum(1 for s in samples if s["phase"] in (PH_PUMPDOWN, PH_HEATUP) and s["flags"] & SF_IN_SPEC)
    v.soak_in_spec_s = credit + sum(1 for s in samples if s["phase"] == PH_SOAK and s["flags"] & SF_IN_SPEC)
    soak_total_s = credit + sum(1 for s in samples if s["phase"] == PH_SOAK)
    done_ev = v.soak_done_ev = [e for e in v.log.events if e["code"] == E_SOAK_DONE]
    v.out["soak"] = {"in_spec_s_samples": v.soak_in_spec_s, "total_s_samples": soak_total_s,
                     "required_s": v.method["soak_s"] if v.method else None,
                     "done_event": {"in_spec_s": done_ev[0]["a"], "total_s": done_ev[0]["b"],
                                    "t_s": done_ev[0]["t_ms"] // 1000} if done_ev else None,
                     "samples_intact": v.samples_intact}


def check_weighings(v):
    """One tare, m0, m1 per cell; each WEIGH's load-cell temperature against the samples; m0 and m1
    under the same conditions; every weighing phase left normally has its WEIGH records."""
    n, ev = v.n, v.log.events
    wmap = weighing_map(v.log)
    for (kind, cell), ws in sorted(wmap.items()):
        if kind not in KIND_NAMES or not (0 <= cell < n):
            v.inconsistent("unexpected weighing kind %d for cell %d" % (kind, cell),
                           offset=ws[0]["offset"], seq=ws[0]["seq"])
        for w in ws[1:]:
            v.inconsistent("second %s weighing for cell %d" % (KIND_NAMES.get(kind, kind), cell),
                           offset=w["offset"], seq=w["seq"])
    weigh = v.weigh
    for kind in (1, 2, 3):
        for c in range(n):
            ws = wmap.get((kind, c))
            if ws:
                weigh[(kind, c)] = ws[0]
    settle_ev = [e for e in ev if e["code"] == E_SETTLE]
    if v.samples_intact:
        _check_weigh_temps(v, weigh, v.sample_at_s, v.phase_ev, settle_ev)
    _check_weigh_conditions(v, weigh, ev, v.phase_ev, settle_ev, v.header_method, n)
    v.out["weigh_conditions"] = weigh_conditions(weigh, settle_ev, n)
    # a weighing phase left for anything but ABORTED ended with a stable reading of every cell
    for e in v.phase_ev:
        kind = {p: k for k, p in WEIGH_PHASE.items()}.get(e["b"])
        if kind is not None and e["a"] != PH_ABORTED:
            for c in range(n):
                if (kind, c) not in weigh:
                    v.inconsistent("the %s phase ended at %d s without a %s WEIGH record for cell %d"
                                   % (phase_name(e["b"]), e["t_ms"] // 1000, KIND_NAMES[kind], c),
                                   offset=e["offset"], seq=e["seq"])


def check_soak_done(v):
    """The device signals SOAK_DONE once, exactly when the in-spec soak reaches the method's soak_s,
    in the second of the change SOAK -> COOLDOWN."""
    done_ev = v.soak_done_ev
    if v.method and done_ev and done_ev[0]["a"] != v.method["soak_s"]:
        v.inconsistent("SOAK_DONE reports %d s in spec, the method's soak_s is %d s"
                       % (done_ev[0]["a"], v.method["soak_s"]), offset=done_ev[0]["offset"], seq=done_ev[0]["seq"])
    if len(done_ev) > 1:
        v.inconsistent("%d SOAK_DONE events" % len(done_ev), offset=done_ev[1]["offset"], seq=done_ev[1]["seq"])
    if done_ev:
        t = done_ev[0]["t_ms"]
        if not any(e["t_ms"] == t and e["a"] == PH_COOLDOWN and e["b"] == PH_SOAK for e in v.phase_ev):
            v.inconsistent("SOAK_DONE at %d s is not followed by the change SOAK -> COOLDOWN in the same second"
                           % (t // 1000), offset=done_ev[0]["offset"], seq=done_ev[0]["seq"])


def check_weighing_order(v):
    """Per cell: tare < m0 < end of the soak <= m1."""
    weigh, done_ev = v.weigh, v.soak_done_ev
    for c in range(v.n):
        ts = [weigh[(k, c)]["t_ms"] for k in (1, 2, 3) if (k, c) in weigh]
        if ts != sorted(ts):
            w = weigh[(3, c)] if (3, c) in weigh else weigh[(2, c)]
            v.inconsistent("cell %d: weighings are not in the order tare, m0, m1" % c,
                           offset=w["offset"], seq=w["seq"])
        if (3, c) in weigh and done_ev and weigh[(3, c)]["t_ms"] < done_ev[0]["t_ms"]:
            w = weigh[(3, c)]
            v.inconsistent("cell %d: m1 weighed at %d s, before the soak ended at %d s"
                           % (c, w["t_ms"] // 1000, done_ev[0]["t_ms"] // 1000), offset=w["offset"], seq=w["seq"])


def collect_no_pass(v):
    """The budget-era facts (logs of firmware with the uncertainty budget list "no_pass" per cell,
    docs/UNCERTAINTY.md; older logs keep the old formula and early-fail rule): the NO_PASS events per
    cell, settle_s, the blank fits' zero returns; an early_fail "stop" soak cut before every cell failed."""
    n, ev, method = v.n, v.log.events, v.method
    v.budget_format = any("no_pass" in (dev_cell(v.log.verdict, c) or {}) for c in range(n))
    v.out["budget_format"] = v.budget_format
    for e in ev:
        if e["code"] == E_NO_PASS:
            name = NO_PASS_NAMES[e["a"]] if _is_int(e["a"]) and 0 < e["a"] < len(NO_PASS_NAMES) else None
            if name is None:
                v.inconsistent("NO_PASS event with an unknown reason %r" % (e["a"],), offset=e["offset"], seq=e["seq"])
                continue
            for c in range(n):
                if (e["b"] == -1 or e["b"] == c) and name not in v.no_pass_events.setdefault(c, []):
                    v.no_pass_events[c].append(name)
    settle_ev = [e for e in ev if e["code"] == E_SETTLE]
    v.settle_s = max(0, settle_ev[-1]["a"]) if settle_ev and _is_int(settle_ev[-1]["a"]) else 0
    v.zero_returns = [0] * n
    if isinstance(v.blank, list):
        for c in range(min(n, len(v.blank))):
            zr = v.blank[c].get("zero_return_counts") if isinstance(v.blank[c], dict) else None
            v.zero_returns[c] = zr if _is_int(zr) else 0
    early = v.early_fail
    if v.budget_format and method and method["early_fail"] == "stop" and not v.soak_done_ev and not v.invalid \
            and not v.aborted and any(e["a"] == PH_COOLDOWN and e["b"] == PH_SOAK for e in v.phase_ev) \
            and not all(early):
        v.inconsistent("the soak ended early (early_fail stop, no SOAK_DONE) although cell(s) %s had not failed "
                       "early: one cell's early FAIL must not cut the others' soak"
                       % ", ".join(str(c) for c in range(n) if not early[c]))


def recompute_cells(v):
    """Every cell's VERDICT fields recomputed from the raw records (v.exp_cells, None where they
    cannot be) and the report's view of each cell (v.cells_out)."""
    for c in range(v.n):
        v.exp_cells.append(_recompute_cell(v, c))


def _recompute_cell(v, c):
    co = {"cell": c, "id": v.out["cell_ids"][c], "readings": {}, "exact": None, "error": None}
    v.cells_out.append(co)
    leak, early = v.leak_answers[c], v.early_fail[c]
    if v.aborted or v.interrupted is not None:
        # a run closed INTERRUPTED at boot: INVALID, or ABORTED after a fault, never a measured verdict
        fields = {"verdict": "ABORTED" if v.aborted else "INVALID", "cell": c, "leak_visible": leak,
                  "early_fail": early}
        if v.budget_format:
            fields["no_pass"] = list(v.no_pass_events.get(c, []))
        if v.interrupted is not None and not v.aborted:
            co["error"] = "run interrupted by a power cut/reset and closed at boot: no final weighing"
        return fields
    if v.final_phase != PH_DONE:
        co["error"] = "the run did not finish (last phase %s)" % phase_name(v.final_phase)
        return None
    try:
        fields, bud = _measured_cell(v, c, co)
    except CannotRecompute as e:
        co["error"] = str(e)
        v.inconsistent("cannot recompute cell %d: %s" % (c, e), rec=v.vrec)
        return None
    if v.budget_format:
        _check_cell_no_pass(v, c, co, fields, bud)
    if v.invalid:
        fields["verdict"] = "INVALID"
    elif v.budget_format:
        if co["no_pass"] and fields["verdict"] == "PASS":
            fields["verdict"] = "INCONCLUSIVE"
    elif any(v.early_fail) and v.method["early_fail"] == "stop" and fields["verdict"] != "FAIL":
        # the soak was cut short for every cell on the oven, not only for the one that early-failed
        fields["verdict"] = "INCONCLUSIVE"
    fields["cell"] = c
    fields["leak_visible"] = leak
    fields["early_fail"] = early
    return fields


def _measured_cell(v, c, co):
    """(fields, budget or None) of a finished run's cell from its drift-corrected readings;
    CannotRecompute when the log lacks what they need."""
    method, drift, weigh = v.method, v.drifts[c], v.weigh
    if method is None:
        raise CannotRecompute("no usable method in the header")
    rd = {}
    for kind in (1, 2, 3):
        w = weigh.get((kind, c))
        if w is None:
            raise CannotRecompute("no %s weighing for cell %d" % (KIND_NAMES[kind], c))
        r = reading(w["samples"])
        rc = corrected(r, drift, w["lc_temp_c_x100"])
        if v.budget_format and drift is not None:
            # the budget carries the drift fit's uncertainty (correlated), not the readings
            rc = (rc[0], r[1])
        rd[kind] = rc
        co["readings"][KIND_NAMES[kind]] = {
            "n": len(w["samples"]), "mean_counts": float(r[0]), "sd_mean_counts": math.sqrt(float(r[1])),
            "lc_temp_c_x100": w["lc_temp_c_x100"], "corrected_mean_counts": float(rc[0]),
            "corrected_sd_mean_counts": math.sqrt(float(rc[1])), "seq": w["seq"], "offset": w["offset"]}
    if v.leak_answers[c] is None:
        raise CannotRecompute("no leak answer for cell %d" % c)
    bud = None
    if v.budget_format:
        dc = dev_cell(v.log.verdict, c) or {}
        dbud = dc.get("budget") if isinstance(dc.get("budget"), dict) else {}
        inp = budget_inputs(v, v.hdr, c, weigh, v.settle_s, v.zero_returns[c], method, dbud.get("inputs"))
        var_k = drift[1] if drift is not None else None
        exact_budget = {}
        bud = budget(rd[1], rd[2], rd[3], weigh[(1, c)]["lc_temp_c_x100"], weigh[(2, c)]["lc_temp_c_x100"],
                     weigh[(3, c)]["lc_temp_c_x100"], var_k, inp, exact_budget)
        co["budget"] = bud
    fields, exact = evaluate(rd[1], rd[2], rd[3], method, v.leak_answers[c], bud["U_ppm"] if bud else None)
    if bud:
        exact["u_std_ppm"] = math.sqrt(float(exact_budget["u2_ppm2"]))
        exact["u_k2_ppm"] = 2 * exact["u_std_ppm"]
    co["exact"] = exact
    return fields, bud


def _check_cell_no_pass(v, c, co, fields, bud):
    """No-PASS reasons: the record lists the NO_PASS events' reasons for this cell in order; those the
    log itself shows (blank fit, check weights, a cut soak) must be among them."""
    derived = blank_reasons(v.blank if isinstance(v.cal, dict) else None, c, v.method, bud)
    if bud is not None and not rep_known(bud["inputs"]):
        derived.append("NO_CHECK")
    if not v.soak_done_ev and not v.invalid:
        derived.append("SOAK_CUT")
    logged = v.no_pass_events.get(c, [])
    for r in derived:
        if r not in logged:
            v.verdict_issue("cell %d cannot PASS (%s: %s) but the log has no NO_PASS event for it"
                            % (c, r, NO_PASS_TEXT[r]))
    for r in logged:
        if r in DERIVED_NO_PASS and r not in derived:
            v.verdict_issue("cell %d: NO_PASS %s although the log does not show it" % (c, r))
    fields["budget"] = bud
    fields["no_pass"] = list(logged)
    co["no_pass"] = sorted(set(logged) | set(derived), key=NO_PASS_NAMES.index)


def recompute_overall(v):
    """The run's verdict: ABORTED > INVALID (an interrupted or invalid run) > the most severe cell."""
    exp_cells = v.exp_cells
    if v.aborted:
        overall = "ABORTED"
    elif v.interrupted is not None:
        overall = "INVALID"
    elif v.final_phase != PH_DONE:
        overall = None
    elif v.invalid:
        overall = "INVALID"
    elif any(x is None for x in exp_cells):
        overall = None
    else:
        overall = max((x["verdict"] for x in exp_cells), key=lambda x: SEVERITY[x]) if exp_cells else None
    v.overall = overall
    v.exp_run = {"verdict": overall, "method": v.method["name"] if v.method else None, "fault": v.fault,
                 "invalid": v.invalid if v.invalid or v.interrupted is None else F_INTERRUPTED}


def check_verdict_record(v):
    """One VERDICT record, where the run ended, equal to the recomputation field by field."""
    dev, final_phase = v.log.verdict, v.final_phase
    if len(v.log.verdicts) > 1:
        v.inconsistent("%d VERDICT records (a run writes one)" % len(v.log.verdicts), rec=v.vrec)
    if dev is None:
        if v.interrupted is not None:
            v.inconsistent("the run was closed INTERRUPTED at boot but there is no VERDICT record")
        elif final_phase in (PH_DONE, PH_ABORTED):
            v.inconsistent("the run ended (%s) but there is no VERDICT record" % phase_name(final_phase))
        else:
            v.inconsistent("no VERDICT record: the run did not finish (last phase %s)" % phase_name(final_phase))
    else:
        _compare(v, dev, v.exp_run, v.exp_cells, v.out["soak"], v.aborted, v.n, v.method, v.power_cuts)
        if final_phase not in (PH_DONE, PH_ABORTED) and v.interrupted is None:
            v.verdict_issue("VERDICT record although the run never reached DONE or ABORTED (last phase %s)"
                            % phase_name(final_phase))


def check_pass_requirements(v):
    """A PASS (of the run or of a cell) needs a whole, fault-free run: no fault or INVALID event, all
    weighings, soak_s of in-spec samples, SOAK_DONE, a valid blank fit, no NO_PASS reason; a run
    closed at boot after a power cut has no measured verdict at all."""
    dev, n, method, interrupted = v.log.verdict, v.n, v.method, v.interrupted
    dev_pass = False
    if isinstance(dev, dict):
        dev_pass = dev.get("verdict") == "PASS" or any(dev_cell(dev, c) is not None and
                                                       dev_cell(dev, c).get("verdict") == "PASS" for c in range(n))
    if interrupted is not None and isinstance(dev, dict):
        measured = sorted({x for x in [dev.get("verdict")] + [(dev_cell(dev, c) or {}).get("verdict") for c in range(n)]
                           if x in ("PASS", "FAIL", "INCONCLUSIVE")}, key=lambda x: SEVERITY[x])
        if measured:
            v.verdict_issue("%s verdict on a run that was interrupted by a power cut/reset and closed at boot "
                            "(INTERRUPTED event at %d s, reason %s): such a run is INVALID or ABORTED, never measured"
                            % ("/".join(measured), interrupted["t_s"], interrupted["reason_name"]))
    if not dev_pass:
        return
    if v.fault_ev:
        v.verdict_issue("PASS although the log has fault event %s at %d s"
                        % (event_name(v.fault_ev[0]["code"]), v.fault_ev[0]["t_ms"] // 1000))
    if v.inv_ev:
        v.verdict_issue("PASS although the run was declared invalid (%s)" % FAULT_NAMES.get(v.invalid, v.invalid))
    missing = ["%s of cell %d" % (KIND_NAMES[k], c) for c in range(n) for k in (1, 2, 3) if (k, c) not in v.weigh]
    if missing:
        v.verdict_issue("PASS with missing weighings: %s" % ", ".join(missing))
    if method and v.soak_in_spec_s < method["soak_s"]:
        v.verdict_issue("PASS but the samples show only %d s of in-spec soak (IN_SPEC samples), "
                        "the method needs %d s" % (v.soak_in_spec_s, method["soak_s"]))
    if not v.soak_done_ev:
        v.verdict_issue("PASS without a SOAK_DONE event")
    # no PASS on data that was not drift-corrected (docs/UNCERTAINTY.md section 4)
    blank = v.blank
    pass_cells = [c for c in range(n) if (dev_cell(dev, c) or {}).get("verdict") == "PASS"] or list(range(n))
    for c in pass_cells:
        br = [r for r in blank_reasons(blank if isinstance(v.cal, dict) else None, c, method or {"limit_ppm": 0}, None)
              if r != "ZERO_RETURN" or not isinstance(blank, list)]
        if br:
            v.verdict_issue("PASS of cell %d without a valid blank (drift) fit: %s"
                            % (c, ", ".join("%s (%s)" % (r, NO_PASS_TEXT[r]) for r in br)))
        if v.no_pass_events.get(c):
            v.verdict_issue("PASS of cell %d although the log gives reason(s) it cannot PASS: %s"
                            % (c, ", ".join(v.no_pass_events[c])))


# run in this order: each reads the facts the ones before it set on the _Verification
CHECKS = (check_reader_damage, check_header, check_events, check_recovery, check_samples, count_soak_time,
          check_weighings, check_soak_done, check_weighing_order, collect_no_pass, recompute_cells,
          recompute_overall, check_verdict_record, check_pass_requirements)


def verify_log(log, path=None):
    """Verify a Log from logfile.read_log(). Returns a JSON-ready dict; "exit_code" is 0 or 1."""
    v = _Verification(log, path)
    for check in CHECKS:
        check(v)
    return _result(v)


def _result(v):
    """The JSON-ready result: the field-by-field comparison per cell, the overall verdicts, the
    findings and the status / exit code they give."""
    out, dev = v.out, v.log.verdict
    out["cells"] = []
    for c in range(v.n):
        d = dev_cell(dev, c)
        e = v.exp_cells[c] if c < len(v.exp_cells) else None
        keys = [k for k in CELL_FIELDS + ("leak_visible", "early_fail", "no_pass", "budget")
                if (d and k in d) or (e and k in e)]
        rows = {}
        for k in keys:
            dv = d.get(k, "<absent>") if d is not None else "<absent>"
            rv = e.get(k, "<absent>") if e is not None else None
            rows[k] = {"device": dv, "recomputed": rv, "match": e is not None and dv == rv}
        co = v.cells_out[c]
        co["fields"] = rows
        out["cells"].append(co)
    out["overall"] = {"device": dev.get("verdict") if isinstance(dev, dict) else None, "recomputed": v.overall,
                      "match": isinstance(dev, dict) and v.overall is not None and dev.get("verdict") == v.overall}
    out["device_run"] = {k: dev.get(k) for k in ("fault", "invalid", "soak_in_spec_s", "soak_total_s", "method")} \
        if isinstance(dev, dict) else None
    out["verdict_record"] = {"seq": v.vrec.seq, "offset": v.vrec.offset} if v.vrec else None
    out["findings"] = v.findings
    out["notes"] = v.notes
    damaged = any(f["level"] == "damage" for f in v.findings)
    incons = any(f["level"] == "inconsistent" for f in v.findings)
    out["damaged"] = damaged
    out["inconsistent"] = incons
    out["status"] = ("damaged and inconsistent" if damaged and incons else "damaged" if damaged
                     else "inconsistent" if incons else "consistent")
    out["exit_code"] = 1 if (damaged or incons) else 0
    return out


def dev_cell(dev, c):
    if not isinstance(dev, dict) or not isinstance(dev.get("cells"), list):
        return None
    cs = dev["cells"]
    return cs[c] if c < len(cs) and isinstance(cs[c], dict) else None


def _compare(ctx, dev, exp_run, exp_cells, soak, aborted, n, method, pc=None):
    for k in dev:
        if k not in RUN_FIELDS and k not in SEAL_FIELDS:
            ctx.verdict_issue("VERDICT record has an unknown field %r" % k)
    for k in RUN_FIELDS:
        if k not in dev:
            ctx.verdict_issue("VERDICT record lacks the field %r" % k)
    for k in ("verdict", "method", "fault", "invalid"):
        if k in dev and exp_run[k] is not None and dev[k] != exp_run[k]:
            why = {"verdict": "overall verdict", "method": "method name (header)",
                   "fault": "fault code (fault events)", "invalid": "invalid reason (INVALID events)"}[k]
            ctx.verdict_issue("%s: device %r, recomputed %r" % (why, dev[k], exp_run[k]))
    # soak time: the device counts soak ticks in its soak logic. The tick that enters SOAK is logged
    # under SOAK (IN_SPEC set) but not counted; the tick that ends a soak is counted but logged under
    # COOLDOWN; a fault tick is neither logged nor counted. Hence samples - device is 0 or 1, and 0
    # for a soak that ended with SOAK_DONE.
    # A run closed INTERRUPTED at boot: the recovery counts the SOAK samples in the log (exact).
    closed = pc is not None and pc["interrupted"] is not None
    outage = pc["outage_s_total"] if pc is not None else 0
    done = soak["done_event"]
    dis = dev.get("soak_in_spec_s")
    if done is None and method and _is_int(dis) and dis >= method["soak_s"] and not closed:
        ctx.verdict_issue("soak_in_spec_s %d s reaches the method's %d s but there is no SOAK_DONE event"
                          % (dis, method["soak_s"]))
    for key, dkey in (("in_spec_s_samples", "soak_in_spec_s"), ("total_s_samples", "soak_total_s")):
        dv = dev.get(dkey)
        if not _is_int(dv):
            if dkey in dev:
                ctx.verdict_issue("%s is not an integer (%r)" % (dkey, dv))
            continue
        sv = soak[key]
        if not soak["samples_intact"]:
            continue
        exact = done is not None or (dkey == "soak_total_s" and not aborted) or closed
        ok = sv == dv if exact else 0 <= sv - dv <= 1
        if not ok:
            hint = ""
            if outage and dv > sv and abs(dv - sv - outage) <= 1:
                hint = "; the difference is the power-cut outage (%d s), which is not soak time" % outage
            ctx.verdict_issue("%s: device %d s, the samples show %d s%s%s"
                              % (dkey, dv, sv, "" if exact else " (+0/+1 allowed)", hint))
    if done is not None:
        if dev.get("soak_in_spec_s") != done["in_spec_s"] or dev.get("soak_total_s") != done["total_s"]:
            ctx.verdict_issue("soak times %r/%r s differ from the SOAK_DONE event's %d/%d s"
                              % (dev.get("soak_in_spec_s"), dev.get("soak_total_s"), done["in_spec_s"], done["total_s"]))
    cells = dev.get("cells")
    if not isinstance(cells, list):
        ctx.verdict_issue("VERDICT record has no cells list")
        return
    if len(cells) != n:
        ctx.verdict_issue("VERDICT record lists %d cells, the log has %d" % (len(cells), n))
    for c, dc in enumerate(cells[:n]):
        ec = exp_cells[c]
        if not isinstance(dc, dict):
            ctx.verdict_issue("cell %d: VERDICT entry is not an object" % c)
            continue
        if ec is None:
            continue
        for k in sorted(set(dc) | set(ec)):
            if k not in ec:
                ctx.verdict_issue("cell %d: unexpected field %r = %r in the VERDICT record" % (c, k, dc[k]))
            elif k not in dc:
                ctx.verdict_issue("cell %d: field %r missing in the VERDICT record (recomputed %r)" % (c, k, ec[k]))
            elif k == "budget" and isinstance(dc[k], dict) and isinstance(ec[k], dict):
                _compare_budget(ctx, c, dc[k], ec[k])
            elif dc[k] != ec[k] or type(dc[k]) is not type(ec[k]):
                ctx.verdict_issue("cell %d %s: device %r, recomputed %r" % (c, k, dc[k], ec[k]))


def _compare_budget(ctx, c, d, e):
    """The device's budget against the recomputation, entry by entry (inputs, terms, totals)."""
    for k in sorted(set(d) | set(e)):
        dv, ev = d.get(k, "<absent>"), e.get(k, "<absent>")
        if isinstance(dv, dict) and isinstance(ev, dict):
            for j in sorted(set(dv) | set(ev)):
                a, b = dv.get(j, "<absent>"), ev.get(j, "<absent>")
                if a != b or type(a) is not type(b):
                    ctx.verdict_issue("cell %d budget %s.%s: device %r, recomputed %r" % (c, k, j, a, b))
        elif dv != ev or type(dv) is not type(ev):
            ctx.verdict_issue("cell %d budget %s: device %r, recomputed %r" % (c, k, dv, ev))


def _check_samples_vs_events(ctx, log, by_t, phase_ev):
    """Phase changes and soak excursions in the 1 Hz samples must match the events, both ways."""
    # phase events grouped per second: the sample of that second shows the last phase entered
    last_at = {}
    for e in phase_ev:
        last_at[e["t_ms"] // 1000] = e
    for t, e in last_at.items():
        s = by_t.get(t)
        if s is not None and s["phase"] != e["a"]:
            ctx.inconsistent("phase event at %d s enters %s, the sample of that second shows %s"
                             % (t, phase_name(e["a"]), phase_name(s["phase"])), offset=e["offset"], seq=e["seq"])
    exc = {}
    for e in log.events:
        if e["code"] in (E_EXC_START, E_EXC_END):
            exc[(e["t_ms"] // 1000, e["code"])] = e
    seen = set()
    prev = None
    for s in log.samples:
        t = s["t_s"]
        if prev is not None and prev["t_s"] == t - 1:
            if prev["phase"] != s["phase"] and t not in last_at:
                ctx.inconsistent("samples change phase %s -> %s at %d s without a phase event"
                                 % (phase_name(prev["phase"]), phase_name(s["phase"]), t))
            if prev["phase"] == PH_SOAK and s["phase"] == PH_SOAK:
                a, b = prev["flags"] & SF_IN_SPEC, s["flags"] & SF_IN_SPEC
                if a != b:
                    code = E_EXC_START if a else E_EXC_END
                    if (t, code) in exc:
                        seen.add((t, code))
                    else:
                        ctx.inconsistent("samples leave/enter the soak spec at %d s without an %s event"
                                         % (t, EVENT_NAMES[code]))
        prev = s
    for key, e in exc.items():
        if key not in seen and key[0] in by_t and key[0] - 1 in by_t:
            ctx.inconsistent("%s event at %d s but the samples show no such change"
                             % (EVENT_NAMES[key[1]], key[0]), offset=e["offset"], seq=e["seq"])


def _method_int(hm, key, default):
    v = hm.get(key) if isinstance(hm, dict) else None
    return v if _is_int(v) and v >= 0 else default


def _reason_name(r):
    return REASON_NAMES[r] if _is_int(r) and 1 <= r < len(REASON_NAMES) else "REASON_%s" % r


class _PowerCutFacts:
    """What the power-cut checks read: the method's recovery limits, the clock, the samples' times and
    the indexes (in log.events) of the events that end, close or resume a run."""

    def __init__(self, log, hdr):
        ev = log.events
        hm = hdr.get("method")
        self.grace_s = _method_int(hm, "resume_grace_s", DEFAULT_GRACE_S)
        self.resume_max = _method_int(hm, "resume_max", DEFAULT_RESUME_MAX)
        self.has_clock = _is_int(hdr.get("rtc_start_s"))
        self.sample_ts = [s["t_s"] for s in log.samples]
        self.end_idx = [i for i, e in enumerate(ev) if e["code"] in FAULT_NAMES or e["code"] == E_INVALID]
        self.interrupted_idx = [i for i, e in enumerate(ev) if e["code"] == E_INTERRUPTED]
        self.resumed_idx = [i for i, e in enumerate(ev) if e["code"] == E_RESUMED]
        self.samples_dropped = bool(log.end and log.end.get("dropped_samples"))


def _where(e):
    return {"offset": e["offset"], "seq": e["seq"]}


def _check_power_cuts(ctx, log, hdr, samples_intact):
    """Resumes and the closing of an interrupted run (docs/LOGFORMAT.md section 9) against the method,
    the header's clock and the samples. Returns the JSON-ready summary out["power_cuts"]."""
    facts = _PowerCutFacts(log, hdr)
    out = {"resume_grace_s": facts.grace_s, "resume_max": facts.resume_max, "rtc_start_s": hdr.get("rtc_start_s"),
           "resumes": [], "outage_s_total": 0, "interrupted": None}
    _check_resumes(ctx, log, facts, samples_intact, out)
    _check_closed_at_boot(ctx, log, facts, samples_intact, out)
    return out


def _check_resumes(ctx, log, facts, samples_intact, out):
    """Each RESUMED event: its count, resume_max, a measured outage within resume_grace_s, a run that
    had not ended, the samples stopping and going on around it; no sample gap without one."""
    ev, samples, where = log.events, log.samples, _where
    grace, rmax, has_clock, ts = facts.grace_s, facts.resume_max, facts.has_clock, facts.sample_ts
    ends, ints, res_idx, dropped = facts.end_idx, facts.interrupted_idx, facts.resumed_idx, facts.samples_dropped
    res_times = sorted(ev[i]["t_ms"] // 1000 for i in res_idx)
    for k, i in enumerate(res_idx, 1):
        e = ev[i]
        t, a, b = e["t_ms"] // 1000, e["a"], e["b"]
        r = {"t_s": t, "outage_s": a, "count": b, "seq": e["seq"], "offset": e["offset"],
             "last_sample_t_s": None, "next_sample_t_s": None}
        out["resumes"].append(r)
        if a > 0:
            out["outage_s_total"] += a
        if b != k:
            ctx.inconsistent("RESUMED event at %d s says %d resume(s) so far, it is resume %d in the log "
                             "(the count goes 1, 2, 3, ...)" % (t, b, k), **where(e))
        if k > rmax:
            ctx.inconsistent("resume %d at %d s: the method allows at most resume_max = %d resumes; the run should "
                             "have been closed INTERRUPTED (MAX_RESUMES)" % (k, t, rmax), **where(e))
        if a < 0:
            ctx.inconsistent("resumed at %d s with an unknown outage (%d s): a run resumes only when the clock "
                             "measures the outage" % (t, a), **where(e))
        elif a > grace:
            ctx.inconsistent("resumed at %d s after an outage of %d s, longer than the method's resume_grace_s "
                             "%d s: the run should have been closed INTERRUPTED (OUTAGE)" % (t, a, grace), **where(e))
        if not has_clock:
            ctx.inconsistent("resumed at %d s but the header has no rtc_start_s: without it the outage is not "
                             "measurable and a run is never resumed" % t, **where(e))
        before = [j for j in ends if j < i]
        if before:
            x = ev[before[0]]
            ctx.inconsistent("resumed at %d s a run that had already ended (%s at %d s)"
                             % (t, event_name(x["code"]) if x["code"] != E_INVALID else
                                "INVALID %s" % event_name(x["a"]), x["t_ms"] // 1000), **where(e))
        if any(j < i for j in ints):
            ctx.inconsistent("RESUMED event at %d s after the run was closed INTERRUPTED" % t, **where(e))
        if not samples_intact:
            continue
        n_before = sum(1 for x in ts if x <= t)
        if n_before == 0:
            ctx.inconsistent("resumed at %d s but no sample precedes the resume" % t, **where(e))
            continue
        last = samples[n_before - 1]
        r["last_sample_t_s"] = last["t_s"]
        if last["phase"] != PH_SOAK or not last["flags"] & SF_IN_SPEC:
            ctx.inconsistent("resumed at %d s after a %s sample with flags %s at %d s: only a run whose last "
                             "synced sample is an in-spec SOAK sample resumes"
                             % (t, phase_name(last["phase"]), flag_names(last["flags"]), last["t_s"]), **where(e))
        if a >= 0 and last["t_s"] + a != t:
            ctx.inconsistent("RESUMED event at %d s says the outage was %d s, but the last sample before it is at "
                             "%d s (%d s earlier): the outage is measured from the last synced sample"
                             % (t, a, last["t_s"], t - last["t_s"]), **where(e))
        if n_before < len(samples):
            nxt = samples[n_before]
            r["next_sample_t_s"] = nxt["t_s"]
            if not any(t < x < nxt["t_s"] for x in res_times):      # the last resume before these samples
                if nxt["t_s"] != t + 1:
                    ctx.inconsistent("after the resume at %d s (outage %d s) the samples go on at %d s, not %d s: "
                                     "their t_s gap (%d s without samples after %d s) does not match the outage"
                                     % (t, a, nxt["t_s"], t + 1, nxt["t_s"] - last["t_s"] - 1, last["t_s"]),
                                     **where(e))
                if nxt["phase"] != PH_SOAK and not any(x["code"] == E_PHASE and x["b"] == PH_SOAK
                                                       and x["t_ms"] // 1000 == nxt["t_s"] for x in ev):
                    ctx.inconsistent("the first sample after the resume at %d s is a %s sample: a run resumes "
                                     "its soak" % (t, phase_name(nxt["phase"])), **where(e))
    if samples_intact and not dropped:
        for j in range(1, len(ts)):
            if ts[j] - ts[j - 1] > 1 and not any(ts[j - 1] <= x < ts[j] for x in res_times):
                ctx.inconsistent("the samples jump from %d s to %d s (%d s without samples) without a RESUMED event"
                                 % (ts[j - 1], ts[j], ts[j] - ts[j - 1] - 1))


def _check_closed_at_boot(ctx, log, facts, samples_intact, out):
    """A run closed INTERRUPTED at boot: nothing of the run after it, the INVALID (INTERRUPTED) event
    exactly when the run had not ended, each closing's reason against what the log shows."""
    ev, samples, where = log.events, log.samples, _where
    grace, rmax, has_clock = facts.grace_s, facts.resume_max, facts.has_clock
    ends, ints, res_idx = facts.end_idx, facts.interrupted_idx, facts.resumed_idx
    if not ints:
        for e in ev:
            if e["code"] == E_INVALID and e["a"] == F_INTERRUPTED:
                ctx.inconsistent("INVALID event with reason INTERRUPTED at %d s but no INTERRUPTED event: only the "
                                 "boot-time recovery closes a run that way" % (e["t_ms"] // 1000), **where(e))
        return
    last = samples[-1] if samples else None
    last_ok = last is not None and last["phase"] == PH_SOAK and bool(last["flags"] & SF_IN_SPEC)
    i = ints[0]
    e = ev[i]
    ended0 = [j for j in ends if j < i]
    # nothing of the run after the first INTERRUPTED event: the recovery appends INVALID (INTERRUPTED),
    # VERDICT and END. A closing cut by another power cut is closed again at the next boot: a further
    # INTERRUPTED event (then reason ENDED when the INVALID event of the first closing was synced).
    if e["offset"] is not None:
        for rec in log.records:
            if rec.offset > e["offset"] and rec.name in ("BLOCK", "WEIGH"):
                ctx.inconsistent("%s record after the INTERRUPTED event: the run went on after it was closed"
                                 % rec.name, rec=rec)
                break
    for x in ev[i + 1:]:
        if not (x["code"] == E_INVALID and x["a"] == F_INTERRUPTED) and x["code"] != E_INTERRUPTED:
            ctx.inconsistent("%s event after the INTERRUPTED event: the run went on after it was closed"
                             % event_name(x["code"]), **where(x))
    inv29 = [x for x in ev[i + 1:] if x["code"] == E_INVALID and x["a"] == F_INTERRUPTED]
    if ended0:
        x = ev[ended0[0]]
        for y in inv29:
            ctx.inconsistent("INVALID event with reason INTERRUPTED although the run had already ended (%s at %d s)"
                             % (event_name(x["code"]) if x["code"] != E_INVALID else "INVALID", x["t_ms"] // 1000),
                             **where(y))
    elif not inv29:
        ctx.inconsistent("run closed INTERRUPTED without the INVALID event (reason INTERRUPTED)", **where(e))
    elif len(inv29) > 1:
        ctx.inconsistent("%d INVALID events with reason INTERRUPTED" % len(inv29), **where(inv29[1]))
    closings = []
    for i in ints:
        e = ev[i]
        t, a, reason = e["t_ms"] // 1000, e["a"], e["b"]
        ended = [j for j in ends if j < i]
        n_res = sum(1 for j in res_idx if j < i)
        closings.append({"t_s": t, "t_ms": e["t_ms"], "outage_s": a, "reason": reason,
                         "reason_name": _reason_name(reason), "reason_text": REASON_TEXT.get(reason),
                         "seq": e["seq"], "offset": e["offset"], "ended_before": bool(ended),
                         "resumes_before": n_res, "last_sample_t_s": last["t_s"] if last else None})
        if not (_is_int(reason) and 1 <= reason < len(REASON_NAMES)):
            ctx.inconsistent("INTERRUPTED event with an unknown reason %r" % (reason,), **where(e))
        if not _is_int(a) or a < -1:
            ctx.inconsistent("INTERRUPTED event with outage %r s (-1 = unknown)" % (a,), **where(e))
        elif a >= 0 and not has_clock:
            ctx.inconsistent("INTERRUPTED event with a measured outage of %d s but the header has no rtc_start_s"
                             % a, **where(e))
        latest = max([x["t_ms"] for x in ev[:i]] + [w["t_ms"] for w in log.weighings] +
                     [last["t_s"] * 1000 if last else 0])
        if e["t_ms"] < latest:
            ctx.inconsistent("INTERRUPTED event at %.3f s precedes the run's last record (%.3f s): it is time "
                             "stamped at the end of what the log holds" % (e["t_ms"] / 1000, latest / 1000),
                             **where(e))
        # the reason against the log (recovery.decide's order: ENDED, DAMAGED, NOT_LATEST, NOT_SOAK, NO_PLAN,
        # NO_CLOCK, MAX_RESUMES, OUTAGE, OUT_OF_SPEC: a reason implies that the earlier tests passed)
        rn = _reason_name(reason)
        why = []
        if bool(ended) != (reason == R_ENDED):
            why.append("the run had already ended (%s at %d s), so the reason is ENDED"
                       % (event_name(ev[ended[0]]["code"]), ev[ended[0]]["t_ms"] // 1000)
                       if ended else "the log has no fault or INVALID event before it")
        if samples_intact:
            if reason == R_NOT_SOAK and last_ok:
                why.append("the last sample (%d s) is an in-spec SOAK sample" % last["t_s"])
            if reason in (R_NO_PLAN, R_NO_CLOCK, R_MAX_RESUMES, R_OUTAGE, R_OUT_OF_SPEC) and not last_ok:
                why.append("the last sample is not an in-spec SOAK sample (%s), so the reason is NOT_SOAK"
                           % ("there is none" if last is None else "%s, flags %s at %d s" % (
                               phase_name(last["phase"]), flag_names(last["flags"]), last["t_s"])))
        if reason == R_NO_CLOCK and a != -1:
            why.append("the outage was measured (%s s)" % a)
        if reason in (R_MAX_RESUMES, R_OUTAGE, R_OUT_OF_SPEC) and _is_int(a) and a < 0:
            why.append("the outage is unknown, so the reason is NO_CLOCK")
        if reason == R_MAX_RESUMES and n_res < rmax:
            why.append("the run was resumed %d time(s), resume_max is %d" % (n_res, rmax))
        if reason in (R_OUTAGE, R_OUT_OF_SPEC) and n_res >= rmax:
            why.append("the run had been resumed resume_max = %d times, so the reason is MAX_RESUMES" % rmax)
        if reason == R_OUTAGE and _is_int(a) and 0 <= a <= grace:
            why.append("the outage of %d s is within resume_grace_s %d s" % (a, grace))
        if reason == R_OUT_OF_SPEC and _is_int(a) and a > grace:
            why.append("the outage of %d s is longer than resume_grace_s %d s, so the reason is OUTAGE" % (a, grace))
        for w in why:
            ctx.inconsistent("run closed INTERRUPTED with reason %s, but %s" % (rn, w), **where(e))
    out["interrupted"] = dict(closings[0], closings=closings)


def _check_in_spec(ctx, log, m, probe=None):
    """The IN_SPEC flag of every SOAK sample recomputed from that sample: thermocouple good, |T - setpoint|
    within the method's tolerance, the pressure at or below its vacuum level and the reference probe (the
    cell's temperature) not out of tolerance. The header's "probe" (absent in logs older than the probe)
    must agree with the samples: false = every sample CHAMBER_TIMED, true = none."""
    if probe is not None:
        if not isinstance(probe, bool):
            ctx.inconsistent("header probe is %r, not true or false" % (probe,))
        else:
            want = 0 if probe else SF_CHAMBER_TIMED
            wrong = [s for s in log.samples if s["flags"] & SF_CHAMBER_TIMED != want]
            if wrong:
                ctx.inconsistent("header says probe %s, but %d samples %s the CHAMBER_TIMED flag (first at %d s)"
                                 % ("true" if probe else "false", len(wrong), "carry" if probe else "lack",
                                    wrong[0]["t_s"]))
        if probe is False:
            out = [s for s in log.samples if s["flags"] & SF_PROBE_OUT]
            if out:
                ctx.inconsistent("header says no probe, but %d samples carry PROBE_OUT (first at %d s)"
                                 % (len(out), out[0]["t_s"]))
        # a chamber-timed test soak bars every cell's PASS (NO_PASS CHAMBER_TIMED at the soak's start)
        # unless the method allows it; a run with a probe has no such reason
        ct = [e for e in log.events if e["code"] == E_NO_PASS and e["a"] == NP_CHAMBER_TIMED]
        soaked = any(s["phase"] == PH_SOAK for s in log.samples)
        want = (probe is False and soaked and log.header.get("mode", "test") == "test"
                and m.get("chamber_timed_pass", "no") != "yes")
        if want and not any(e["b"] == -1 for e in ct):
            ctx.inconsistent("chamber-timed soak (header probe false) without a NO_PASS CHAMBER_TIMED event "
                             "for every cell")
        elif ct and not want:
            e = ct[0]
            ctx.inconsistent("NO_PASS CHAMBER_TIMED event, but the run %s" % (
                "had a reference probe" if probe else "allowed a chamber-timed PASS or never soaked"),
                offset=e["offset"], seq=e["seq"])
    sp, tol, vac = m.get("setpoint_c_x100"), m.get("tol_c_x100"), m.get("vacuum_pa")
    if not (_is_int(sp) and _is_int(tol) and _is_int(vac)):
        return
    bad = [s for s in log.samples if s["phase"] == PH_SOAK and
           bool(s["flags"] & SF_IN_SPEC) != (not s["flags"] & SF_TC_BAD and abs(s["temp_c_x100"] - sp) <= tol
                                             and s["pressure_pa"] <= vac and not s["flags"] & SF_PROBE_OUT)]
    if bad:
        s = bad[0]
        ctx.inconsistent("%d SOAK samples carry an IN_SPEC flag that their temperature and pressure contradict "
                         "(method: %d +/- %d (0.01 degC), <= %d Pa); first at %d s: %.2f degC, %d Pa, flags %s"
                         % (len(bad), sp, tol, vac, s["t_s"], s["temp_c_x100"] / 100, s["pressure_pa"],
                            flag_names(s["flags"])))


def _check_heat_cool(ctx, log, m, phase_ev):
    """The method's heat_in / cool_in (absent in older logs: "vacuum", the order before them).
    heat_in "air": PREHEAT follows the m0 weighing (the tare in a blank run) and PUMPDOWN follows PREHEAT
    only with a PREHEAT_DONE event in that second whose probe reading is within preheat_band_c_x100 of the
    setpoint, after PREHEAT_HOLD_S samples with the chamber in tolerance and the probe not out of it; the
    IN_SPEC flag of PUMPDOWN/HEATUP samples after it is the soak credit, recomputed from each sample.
    heat_in "vacuum": no PREHEAT, no IN_SPEC before the soak. cool_in "air": every COOLDOWN sample vented
    with the pump off (the vent opens at the soak's end); "vacuum": no COOLDOWN sample vented."""
    if not isinstance(m, dict):
        return
    heat_air = m.get("heat_in", "vacuum") == "air"
    cool_air = m.get("cool_in", "vacuum") == "air"
    sp, tol, vac = m.get("setpoint_c_x100"), m.get("tol_c_x100"), m.get("vacuum_pa")
    band = m.get("preheat_band_c_x100")
    if not (_is_int(sp) and _is_int(tol) and _is_int(vac)):
        return
    done = {e["t_ms"] // 1000: e for e in log.events if e["code"] == E_PREHEAT_DONE}
    blank = log.header.get("mode") == "blank"
    credit_from = None          # t_s of the PREHEAT_DONE that allows a soak credit
    for e in phase_ev:
        t = e["t_ms"] // 1000
        where = {"offset": e["offset"], "seq": e["seq"]}
        if e["a"] == PH_PREHEAT:
            if not heat_air:
                ctx.inconsistent("PREHEAT at %d s, but the method heats in vacuum (heat_in %r)"
                                 % (t, m.get("heat_in", "vacuum")), **where)
            elif e["b"] != (PH_TARE if blank else PH_INITIAL_WEIGH):
                ctx.inconsistent("PREHEAT at %d s entered from %s, not after the %s weighing"
                                 % (t, phase_name(e["b"]), "tare" if blank else "m0"), **where)
        elif e["a"] == PH_PUMPDOWN:
            want = PH_PREHEAT if heat_air else (PH_TARE if blank else PH_INITIAL_WEIGH)
            if e["b"] != want:
                ctx.inconsistent("PUMPDOWN at %d s entered from %s; heat_in %s wants it after %s"
                                 % (t, phase_name(e["b"]), "air" if heat_air else "vacuum", phase_name(want)), **where)
                continue
            if not heat_air:
                continue
            d = done.get(t)
            if d is None:
                ctx.inconsistent("PUMPDOWN at %d s without a PREHEAT_DONE event: the pre-heat did not complete" % t,
                                 **where)
                continue
            if not (_is_int(band) and abs(d["a"] - sp) <= band):
                ctx.inconsistent("PREHEAT_DONE at %d s with the probe at %.2f degC, outside the pre-heat band "
                                 "%s (0.01 degC) of %.2f degC" % (t, d["a"] / 100, band, sp / 100),
                                 offset=d["offset"], seq=d["seq"])
                continue
            before = [s for s in log.samples if t - PREHEAT_HOLD_S <= s["t_s"] < t]
            if len(before) < PREHEAT_HOLD_S or any(
                    s["phase"] != PH_PREHEAT or s["flags"] & (SF_TC_BAD | SF_PROBE_OUT)
                    or abs(s["temp_c_x100"] - sp) > tol for s in before):
                ctx.inconsistent("PUMPDOWN at %d s: the %d s before it are not all PREHEAT samples with the chamber "
                                 "and the probe in tolerance" % (t, PREHEAT_HOLD_S), **where)
                continue
            credit_from = t
        elif e["a"] == PH_SOAK and heat_air and credit_from is None:
            ctx.inconsistent("SOAK at %d s without a completed pre-heat (heat_in air)" % t, **where)
    for t, d in sorted(done.items()):
        if not any(e["t_ms"] // 1000 == t and e["a"] == PH_PUMPDOWN for e in phase_ev):
            ctx.inconsistent("PREHEAT_DONE at %d s is not followed by PUMPDOWN in the same second" % t,
                             offset=d["offset"], seq=d["seq"])
    bad = []
    for s in log.samples:
        if s["phase"] not in (PH_PUMPDOWN, PH_HEATUP):
            continue
        f = s["flags"]
        if credit_from is None or s["t_s"] < credit_from:
            want = False
        else:
            want = (not f & SF_TC_BAD and abs(s["temp_c_x100"] - sp) <= tol and s["pressure_pa"] <= vac
                    and not f & SF_PROBE_OUT)
        if bool(f & SF_IN_SPEC) != want:
            bad.append(s)
    if bad:
        s = bad[0]
        ctx.inconsistent("%d PUMPDOWN/HEATUP samples carry an IN_SPEC flag (soak credit) that the method and the "
                         "sample contradict; first at %d s: %.2f degC, %d Pa, flags %s"
                         % (len(bad), s["t_s"], s["temp_c_x100"] / 100, s["pressure_pa"], flag_names(s["flags"])))
    cool = [s for s in log.samples if s["phase"] == PH_COOLDOWN]
    if cool_air:
        wrong = [s for s in cool if not s["flags"] & SF_VENT or s["flags"] & SF_PUMP]
        what = "not vented with the pump off (cool_in air: the vent opens at the soak's end)"
    else:
        wrong = [s for s in cool if s["flags"] & SF_VENT]
        what = "vented (cool_in vacuum: the chamber stays closed until VENT)"
    if wrong:
        ctx.inconsistent("%d COOLDOWN samples %s; first at %d s, flags %s"
                         % (len(wrong), what, wrong[0]["t_s"], flag_names(wrong[0]["flags"])))


def _half_even(num, den):
    return round(F(num, den))


def _weigh_starts(phase_ev, settle_ev):
    """{phase: [t_s the weighing window of that phase started]}: the phase's start, except that m0
    starts after the SETTLE event's settle_s (the device waits for creep before the window)."""
    starts = {}
    for e in phase_ev:
        t = e["t_ms"] // 1000
        if e["a"] == PH_INITIAL_WEIGH:
            for s in settle_ev:
                if s["t_ms"] // 1000 == t:
                    t += s["a"]
                    break
        starts.setdefault(e["a"], []).append(t)
    return starts


def _check_weigh_temps(ctx, weigh, by_t, phase_ev, settle_ev=()):
    """The WEIGH record's load-cell temperature is the device's half-even mean of the per-second
    load-cell temperature from the tick after the weighing window started (the phase's start; for
    m0 the end of the settling) to the tick it ended."""
    starts = _weigh_starts(phase_ev, settle_ev)
    for (kind, c), w in weigh.items():
        ph = WEIGH_PHASE.get(kind)
        t_end = w["t_ms"] // 1000
        cand = [t for t in starts.get(ph, []) if t < t_end]
        if not cand:
            ctx.inconsistent("%s weighing of cell %d at %d s without a preceding %s phase"
                             % (KIND_NAMES[kind], c, t_end, phase_name(ph)), offset=w["offset"], seq=w["seq"])
            continue
        t0 = max(cand)
        vals = [by_t[t]["lc_temp_c_x100"] for t in range(t0 + 1, t_end + 1) if t in by_t]
        if len(vals) != t_end - t0:
            continue
        exp = _half_even(sum(vals), len(vals))
        if exp != w["lc_temp_c_x100"]:
            ctx.inconsistent("%s weighing of cell %d: load-cell temperature %d (0.01 degC), the samples "
                             "%d..%d s average %d" % (KIND_NAMES[kind], c, w["lc_temp_c_x100"], t0 + 1, t_end, exp),
                             offset=w["offset"], seq=w["seq"])


def weigh_conditions(weigh, settle_ev, n):
    """What the uncertainty budget takes from the weighings: settle_s (START to the m0 window, from
    the SETTLE event; None for older logs: m0 right after START) and per cell the load-cell
    temperature of m0 and m1 and their difference (0.01 degC; None when a weighing is missing)."""
    cells = []
    for c in range(n):
        a, b = weigh.get((2, c)), weigh.get((3, c))
        t0 = a["lc_temp_c_x100"] if a else None
        t1 = b["lc_temp_c_x100"] if b else None
        cells.append({"lc_temp_m0_c_x100": t0, "lc_temp_m1_c_x100": t1,
                      "dT_lc_c_x100": t1 - t0 if a and b else None})
    return {"settle_s": settle_ev[0]["a"] if settle_ev else None, "cells": cells}


def _check_weigh_conditions(ctx, weigh, ev, phase_ev, settle_ev, hm, n):
    """m0 and m1 weighed under the same conditions (docs/APP.md "Weighing"), for logs whose method
    has the fields (older logs have neither the fields nor the events: nothing to check):
    - settle: the INITIAL_WEIGH phase (START) logs SETTLE with the method's settle_s, and no m0
      window ends before START + settle_s;
    - the m1 record's load-cell temperature is within lc_temp_band_c_x100 of the m0 record's, unless
      the device logged NO_PASS LC_TEMP (then no cell may PASS: checked with the verdict)."""
    hm = hm if isinstance(hm, dict) else {}
    settle_s = hm.get("settle_s")
    if _is_int(settle_s) and settle_s >= 0:
        for e in phase_ev:
            if e["a"] != PH_INITIAL_WEIGH:
                continue
            t = e["t_ms"] // 1000
            se = [s for s in settle_ev if s["t_ms"] // 1000 == t]
            if not se:
                ctx.inconsistent("INITIAL_WEIGH started at %d s without a SETTLE event (method settle_s %d s)"
                                 % (t, settle_s), offset=e["offset"], seq=e["seq"])
                continue
            if se[0]["a"] != settle_s:
                ctx.inconsistent("SETTLE event: %d s, the method's settle_s is %d s" % (se[0]["a"], settle_s),
                                 offset=se[0]["offset"], seq=se[0]["seq"])
            for c in range(n):
                w = weigh.get((2, c))
                if w is not None and w["t_ms"] >= e["t_ms"] and (w["t_ms"] - e["t_ms"]) // 1000 < settle_s:
                    ctx.inconsistent("m0 of cell %d weighed %d s after START, before the method's settle_s %d s"
                                     % (c, (w["t_ms"] - e["t_ms"]) // 1000, settle_s), offset=w["offset"], seq=w["seq"])
    band = hm.get("lc_temp_band_c_x100")
    if _is_int(band):
        waived = any(e["code"] == E_NO_PASS and e["a"] == NP_LC_TEMP for e in ev)
        for c in range(n):
            a, b = weigh.get((2, c)), weigh.get((3, c))
            if a is None or b is None or waived:
                continue
            d = b["lc_temp_c_x100"] - a["lc_temp_c_x100"]
            if abs(d) > band:
                ctx.inconsistent("m1 of cell %d weighed with the load cell at %.2f degC, %.2f degC from m0's %.2f "
                                 "(band +/- %.2f) and no NO_PASS LC_TEMP event"
                                 % (c, b["lc_temp_c_x100"] / 100, d / 100, a["lc_temp_c_x100"] / 100, band / 100),
                                 offset=b["offset"], seq=b["seq"])


def read_log_file(path):
    """read_log(path) with short messages for the usual mistakes; raises LogError only."""
    import os
    if not os.path.exists(path):
        raise LogError("no such file")
    if os.path.isdir(path):
        raise LogError("is a directory, not a run log file")
    if not os.path.isfile(path):
        raise LogError("not a regular file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise LogError("cannot read: %s" % (e.strerror or e))
    return read_log(data)


def quiet_broken_pipe():
    """stdout's reader went away (`ovenctl verify LOG | head`): point stdout at /dev/null so that
    the interpreter's final flush does not fail."""
    import os
    import sys
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def verify_path(path):
    """read_log_file + verify_log; LogError propagates (unreadable -> exit 2)."""
    return verify_log(read_log_file(path), path=path)


# ---------------------------------------------------------------- text report
def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return repr(v)


def budget_lines(b):
    """The uncertainty table of one cell (verify's and the report's text)."""
    m0 = b["m0_ug"]
    L = ["uncertainty budget (m0 %.3f g, standard uncertainties):" % (m0 / 1e6),
         "%-30s %-52s %-12s %10s %10s" % ("contribution", "source", "distribution", "u (mg)", "ppm of m0")]
    for k in BUDGET_TERMS:
        name, src, dist = BUDGET_TERM_TEXT[k]
        u = b["terms_ug"].get(k, 0)
        L.append("%-30s %-52s %-12s %10.3f %10.1f" % (name, src, dist, u / 1000, u * 1e6 / m0))
    us = b["inputs"].get("u_sys_ppm", 0)
    if us:
        L.append("%-30s %-52s %-12s %10.3f %10.1f" % ("lab-stated extra (u_sys)", "method u_sys_ppm", "-",
                                                      us * m0 / 1e9, us))
    L.append("%-30s %-52s %-12s %10.3f %10.1f" % ("combined standard uncertainty", "root sum of squares", "",
                                                  b["uc_ug"] / 1000, b["uc_ug"] * 1e6 / m0))
    L.append("%-30s %-52s %-12s %10.3f %10d" % ("expanded uncertainty U", "k = %d, ppm rounded up" % b.get("k", 2),
                                                "", b["U_ug"] / 1000, b["U_ppm"]))
    return L


def power_cut_lines(res):
    """The report's lines about power cuts: each resume, and the closing of an interrupted run."""
    pc = res.get("power_cuts") or {}
    L = []
    for r in pc.get("resumes", []):
        gap = ""
        if r["last_sample_t_s"] is not None:
            gap = "; samples stop at %d s" % r["last_sample_t_s"]
            if r["next_sample_t_s"] is not None:
                gap += " and go on at %d s (%d s without samples)" % (
                    r["next_sample_t_s"], r["next_sample_t_s"] - r["last_sample_t_s"] - 1)
        L.append("power cut: run resumed at t=%d s after an outage of %s s (resume %s of at most %d, "
                 "resume_grace_s %d s)%s" % (r["t_s"], r["outage_s"], r["count"], pc["resume_max"],
                                              pc["resume_grace_s"], gap))
    if pc.get("resumes"):
        L.append("power cut: soak time counted from the samples only: %s (%d s) %s not soak time"
                 % ("the outages" if len(pc["resumes"]) > 1 else "the outage", pc["outage_s_total"],
                    "are" if len(pc["resumes"]) > 1 else "is"))
    it = pc.get("interrupted")
    if it:
        o = res.get("overall") or {}
        out = "unknown" if it["outage_s"] == -1 else "%s s" % it["outage_s"]
        L.append("power cut: run interrupted by a power cut/reset at t=%d s, outage %s, reason %s%s; closed %s "
                 "at boot" % (it["t_s"], out, it["reason_name"], " (%s)" % it["reason_text"] if it["reason_text"]
                              else "", _fmt(o.get("device")) if o.get("device") else "without a VERDICT"))
        for c in it.get("closings", [])[1:]:
            L.append("power cut: that closing was itself cut short; closed again at the next boot (outage %s, "
                     "reason %s)" % ("unknown" if c["outage_s"] == -1 else "%s s" % c["outage_s"], c["reason_name"]))
    return L


def format_report(res):
    L = []
    L.append("ovenctl verify: %s" % res.get("file"))
    m = res.get("method")
    meth = "-"
    if m:
        meth = "%s (limit %s %d ppm, %s acceptance, u_sys %d ppm, soak %d s, early_fail %s)" % (
            m["name"], "<=" if m["comparator"] == "le" else "<", m["limit_ppm"], m["decision"], m["u_sys_ppm"],
            m["soak_s"], m["early_fail"])
    L.append("run %s  firmware %s  board %s  cells %d" % (res.get("run_id"), res.get("fw_version"),
                                                        res.get("board"), res.get("n_cells")))
    L.append("method %s" % meth)
    dr = res.get("drift") or []
    if any(dr):
        L.append("drift correction: " + ", ".join(
            "ch%d k = %.3f counts/degC (u %.3f)" % (i, d["k_counts_per_c"], d["u_k_counts_per_c"]) if d else "ch%d none" % i
            for i, d in enumerate(dr)))
    else:
        L.append("drift correction: none (no blank-run fit in the header)")
    L.append("log: %d bytes, %d records, %d samples, %s" % (res["size_bytes"], res["records"], res["n_samples"],
                                                             "complete (END)" if res["complete"] else "INCOMPLETE (no END)"))
    s = res["soak"]
    dv = res.get("device_run") or {}
    L.append("soak: in spec %d s from the samples (device %s s, SOAK_DONE %s, required %s s); total %d s "
             "(device %s s)%s" % (s["in_spec_s_samples"], _fmt(dv.get("soak_in_spec_s")),
                                  "%d s" % s["done_event"]["in_spec_s"] if s["done_event"] else "-",
                                  _fmt(s["required_s"]), s["total_s_samples"], _fmt(dv.get("soak_total_s")),
                                  "" if s["samples_intact"] else "  [samples incomplete: not compared]"))
    L.extend(power_cut_lines(res))
    e = res["events"]
    L.append("events: fault %s, invalid %s, last phase %s, leak answers %s, early fail %s" % (
        e["fault_name"] or "none", e["invalid_name"] or ("none" if not e["invalid"] else e["invalid"]),
        e["final_phase"], ",".join("-" if x is None else ("yes" if x else "no") for x in e["leak_answers"]),
        ",".join(str(x) for x in e["early_fail"])))
    for c in res["cells"]:
        L.append("")
        L.append("cell %d (%s)%s" % (c["cell"], c["id"], "   [%s]" % c["error"] if c["error"] else ""))
        for kind, r in c["readings"].items():
            L.append("  %-4s n=%d mean %.3f counts (sd of mean %.3f) at %.2f degC -> corrected %.3f (sd %.3f)  "
                     "[WEIGH seq %d @ %d]" % (kind, r["n"], r["mean_counts"], r["sd_mean_counts"],
                                              r["lc_temp_c_x100"] / 100, r["corrected_mean_counts"],
                                              r["corrected_sd_mean_counts"], r["seq"], r["offset"]))
        if c["exact"] and "loss_ppm" in c["exact"]:
            L.append("  exact loss %.4f ppm, U (k=2) %.4f ppm before rounding up" % (c["exact"]["loss_ppm"],
                                                                                 c["exact"]["u_k2_ppm"]))
        b = c.get("budget")
        if b:
            L.extend("  " + x for x in budget_lines(b))
        if c.get("no_pass"):
            L.append("  cannot PASS: " + "; ".join("%s (%s)" % (r, NO_PASS_TEXT.get(r, "?")) for r in c["no_pass"]))
        L.append("  %-14s %-14s %-14s" % ("field", "device", "recomputed"))
        for k, row in c["fields"].items():
            if k == "budget":
                L.append("  %-14s %-29s %s" % (k, "(the table above)", "ok" if row["match"] else "MISMATCH"))
                continue
            L.append("  %-14s %-14s %-14s %s" % (k, _fmt(row["device"]), _fmt(row["recomputed"]),
                                                 "ok" if row["match"] else "MISMATCH"))
    o = res["overall"]
    L.append("")
    L.append("overall verdict: device %s, recomputed %s %s" % (_fmt(o["device"]), _fmt(o["recomputed"]),
                                                                "ok" if o["match"] else "MISMATCH"))
    for x in res.get("notes") or []:
        L.append("note: " + x)
    if res["findings"]:
        L.append("")
        L.append("findings:")
        for f in res["findings"]:
            where = []
            if f["seq"] is not None:
                where.append("seq %d" % f["seq"])
            if f["offset"] is not None:
                where.append("offset %d" % f["offset"])
            if f["record"]:
                where.append(f["record"])
            L.append("  [%s] %s%s" % (f["level"], "(%s) " % ", ".join(where) if where else "", f["message"]))
    L.append("")
    if res["exit_code"] == 0:
        L.append("RESULT: CONSISTENT - the device's VERDICT record agrees with the recomputation from the raw "
                 "records (exit 0)")
    else:
        L.append("RESULT: %s (exit 1)" % res["status"].upper())
    return "\n".join(L)
