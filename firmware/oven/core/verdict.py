# Loss, expanded uncertainty and the decision: integer-only, exact.
#
# A reading is the mean of a stable weighing window in counts, with the variance of that mean,
# both exact rationals: (mean_num, mean_den, var_num, var_den). Runs once per verdict; long
# integers are fine here (never on the per-sample path).
#
# loss ratio    L = (m0 - m1) / m0 = (a - b) / (a - z)      a, b: m0 and m1 readings, z: zero
#               (the span cancels, see calib.py)
# uncertainty   the full budget (budget.py, docs/UNCERTAINTY.md) gives U; without it (old logs):
#               dL/da = (b - z)/D^2, dL/db = -1/D, dL/dz = (a - b)/D^2 with D = a - z, so
#               u^2(L) = [(b - z)^2 u^2(a) + D^2 u^2(b) + (a - b)^2 u^2(z)] / D^4
#               u^2(ppm) = 1e12 u^2(L) + u_sys_ppm^2;   U = k u with k = 2, rounded UP to 1 ppm
# decision      guarded acceptance (ILAC-G8): PASS if L + U within the limit, FAIL if L - U beyond
#               it, else INCONCLUSIVE; simple acceptance compares L alone. The comparisons use the
#               exact (unrounded) L, as GB/T 8170 "full-value comparison" requires.
# rounding      loss_ppm and the displayed % (0.01 %) round half to even (GB/T 8170); U rounds up.
from micropython import const
from oven.core.fixedpt import div_half_even, div_ceil, isqrt_ceil

V_NONE = const(0)
V_PASS = const(1)
V_FAIL = const(2)
V_INCONCLUSIVE = const(3)
V_INVALID = const(4)
V_ABORTED = const(5)
VERDICT_NAMES = ("NONE", "PASS", "FAIL", "INCONCLUSIVE", "INVALID", "ABORTED")

# Result flags
FL_GAIN = const(1)               # m1 > m0: reported as a negative loss
FL_GAIN_SIGNIFICANT = const(2)   # gain larger than U: physically implausible, never PASS
FL_LEAK = const(4)               # operator saw visible leakage: FAIL by the standard


class VerdictError(ValueError):
    pass


def reading(n, sum_counts, m2n):
    """Reading from a weighing window result (weigh.Window.result()): mean = sum/n, sample
    variance s^2 = M2/(n-1) with M2 = m2n/n, variance of the mean = s^2/n = m2n/(n^2 (n-1))."""
    if n < 2:
        raise VerdictError("a weighing needs at least 2 samples")
    if m2n < 0:
        raise VerdictError("negative sum of squares")
    return (sum_counts, n, m2n, n * n * (n - 1))


def corrected(r, corr_num, corr_den, corr_var_num=0, corr_var_den=1):
    """Subtract a correction (e.g. load-cell zero drift) from a reading's mean and add its variance."""
    mn, md, vn, vd = r
    return (mn * corr_den - corr_num * md, md * corr_den,
            vn * corr_var_den + corr_var_num * vd, vd * corr_var_den)


class Result:
    def __init__(self):
        self.verdict = V_NONE
        self.loss_num = 0        # exact loss in ppm = loss_num / loss_den
        self.loss_den = 1
        self.loss_ppm = 0        # rounded half to even
        self.loss_pct_x100 = 0   # in 0.01 %, rounded half to even
        self.u_ppm = 0           # expanded uncertainty (k = 2), rounded up
        self.u_pct_x100 = 0      # rounded up
        self.flags = 0
        self.limit_ppm = 0
        self.comparator = "le"
        self.decision = "guarded"
        self.budget = None  # type: dict | None  # budget.compute() when the full budget gave U

    def as_dict(self):
        return {"verdict": VERDICT_NAMES[self.verdict], "loss_ppm": self.loss_ppm,
                "loss_pct_x100": self.loss_pct_x100, "u_ppm": self.u_ppm,
                "u_pct_x100": self.u_pct_x100, "flags": self.flags, "limit_ppm": self.limit_ppm,
                "comparator": self.comparator, "decision": self.decision}


def _within(num, den, limit, comparator):
    # num/den (den > 0) compared with the limit: <= for "le", < for "lt"
    if comparator == "le":
        return num <= limit * den
    return num < limit * den


def evaluate(zero, r0, r1, method, leak_visible, u_ppm=None):
    """Verdict for one cell. zero, r0, r1: readings (see reading()); method: methods.validate()
    dict; leak_visible: 0 (no) or 1 (yes), the operator's answer. u_ppm: the expanded uncertainty
    from the full budget (budget.compute()["U_ppm"]); None = the windows' statistics and the
    readings' variances plus method u_sys_ppm alone (the format of logs before the budget)."""
    if leak_visible not in (0, 1):
        raise VerdictError("leak answer must be 0 (no) or 1 (yes)")
    zn, zd, zvn, zvd = zero
    an, ad, avn, avd = r0
    bn, bd, bvn, bvd = r1
    if zd <= 0 or ad <= 0 or bd <= 0 or zvd <= 0 or avd <= 0 or bvd <= 0:
        raise VerdictError("reading denominators must be positive")
    if zvn < 0 or avn < 0 or bvn < 0:
        raise VerdictError("negative variance")
    dn = an * zd - zn * ad        # D = a - z = dn / dd
    dd = ad * zd
    if dn <= 0:
        raise VerdictError("m0 reading is not above the zero: no cell on the pan, or a wrong tare")
    nn = an * bd - bn * ad        # N = a - b
    nd = ad * bd
    gn = bn * zd - zn * bd        # B = b - z
    gd = bd * zd

    res = Result()
    res.limit_ppm = method["limit_ppm"]
    res.comparator = method["comparator"]
    res.decision = method["decision"]

    # exact loss in ppm: 1e6 * N / D
    ln = 1000000 * nn * dd
    ld = nd * dn
    res.loss_num = ln
    res.loss_den = ld
    res.loss_ppm = div_half_even(ln, ld)
    res.loss_pct_x100 = div_half_even(ln, ld * 100)

    # u^2(L) = [B^2 va + D^2 vb + N^2 vz] / D^4
    t1n = gn * gn * avn
    t1d = gd * gd * avd
    t2n = dn * dn * bvn
    t2d = dd * dd * bvd
    t3n = nn * nn * zvn
    t3d = nd * nd * zvd
    sn = t1n * t2d * t3d + t2n * t1d * t3d + t3n * t1d * t2d
    sd = t1d * t2d * t3d
    d2 = dd * dd
    dn2 = dn * dn
    # u^2 in ppm^2 = 1e12 * sn/sd * dd^4/dn^4 + u_sys^2
    usys = method["u_sys_ppm"]
    vn = 1000000000000 * sn * d2 * d2 + usys * usys * sd * dn2 * dn2
    vd = sd * dn2 * dn2
    u = isqrt_ceil(div_ceil(4 * vn, vd))
    if u_ppm is not None:
        if u_ppm < 0:
            raise VerdictError("negative uncertainty")
        u = u_ppm
    res.u_ppm = u
    res.u_pct_x100 = div_ceil(u, 100)

    lim = method["limit_ppm"]
    cmp = method["comparator"]
    if nn < 0:
        res.flags |= FL_GAIN
        if ln + u * ld < 0:
            res.flags |= FL_GAIN_SIGNIFICANT

    if leak_visible:
        res.flags |= FL_LEAK
        res.verdict = V_FAIL
    elif method["decision"] == "simple":
        res.verdict = V_PASS if _within(ln, ld, lim, cmp) else V_FAIL
    elif _within(ln + u * ld, ld, lim, cmp):
        res.verdict = V_PASS
    elif not _within(ln - u * ld, ld, lim, cmp):
        res.verdict = V_FAIL
    else:
        res.verdict = V_INCONCLUSIVE
    if res.verdict == V_PASS and res.flags & FL_GAIN_SIGNIFICANT:
        res.verdict = V_INCONCLUSIVE
    return res


_SEVERITY = (0, 1, 3, 2, 4, 5)  # NONE < PASS < INCONCLUSIVE < FAIL < INVALID < ABORTED


def overall(verdicts):
    """Run verdict from the cells' verdicts: the most severe one wins."""
    worst = V_NONE
    for v in verdicts:
        if _SEVERITY[v] > _SEVERITY[worst]:
            worst = v
    return worst
