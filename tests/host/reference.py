"""Independent exact reference for the verdict core, written with fractions.Fraction.

It shares no code with firmware/: the property tests and the VM corpus compare the firmware's
integer core against these definitions (SPEC §2)."""
import math
from fractions import Fraction as F


def mean_and_var(n, total, m2n):
    mean = F(total, n)
    var_mean = F(m2n, n * n * (n - 1))    # s^2 / n with s^2 = (m2n / n) / (n - 1)
    return mean, var_mean


def u_ceil(var_ppm2):
    """Smallest integer U >= 0 with U >= 2 * sqrt(var_ppm2)."""
    target = 4 * var_ppm2
    u = math.isqrt(math.floor(target))
    while u * u < target:
        u += 1
    return u


def evaluate(zero, r0, r1, limit_ppm, comparator, decision, u_sys_ppm, leak):
    """zero, r0, r1: (n, total, m2n) window results. Returns a dict like verdict.Result.as_dict()."""
    z, vz = mean_and_var(*zero)
    a, va = mean_and_var(*r0)
    b, vb = mean_and_var(*r1)
    d = a - z
    assert d > 0
    loss = (a - b) / d                               # ratio
    loss_ppm = loss * 10 ** 6
    var_l = ((b - z) ** 2 * va + d ** 2 * vb + (a - b) ** 2 * vz) / d ** 4
    u = u_ceil(var_l * 10 ** 12 + u_sys_ppm ** 2)
    flags = 0
    if a - b < 0:
        flags |= 1
        if loss_ppm < -u:
            flags |= 2
    if leak:
        flags |= 4
    v = decide(loss_ppm, u, limit_ppm, comparator, decision, leak, flags & 2, False)
    return {"verdict": v, "loss_ppm": round(loss_ppm), "loss_pct_x100": round(loss_ppm / 100),
            "u_ppm": u, "u_pct_x100": -((-u) // 100), "flags": flags, "limit_ppm": limit_ppm,
            "comparator": comparator, "decision": decision}


# ---------------------------------------------------------------- the full budget (docs/UNCERTAINTY.md)
REP_BOUND_COUNTS = 20          # no check-weight history: u_rep <= 20 counts per weighing
LIN_BOUND = F(1, 1000)         # one-point calibration: slope deviation <= 0.1 %


def ceil_sqrt(x):
    """Smallest integer u >= 0 with u*u >= x (x a non-negative Fraction)."""
    x = F(x)
    if x <= 0:
        return 0
    u = math.isqrt(x.numerator // x.denominator)
    while u * u < x:
        u += 1
    return u


def budget(z, a, b, tz, ta, tb, var_k, inp):
    """z, a, b: (mean, var_mean) Fractions of the drift-corrected readings (window variance only);
    tz, ta, tb: load-cell temperatures (c_x100); var_k: Fraction or None; inp: the integer inputs.
    Returns (terms_ug, U_ppm, m0_ug, loss_ug, uc_ug, U_ug) by the definitions, exactly."""
    (zm, vz), (am, va), (bm, vb) = z, a, b
    d = am - zm
    nl = am - bm
    bz = bm - zm
    cpg = inp["counts_per_g"]
    stat2 = (bz ** 2 * va + d ** 2 * vb + nl ** 2 * vz) / d ** 4
    # dL = (dL/da) da + (dL/db) db + (dL/dz) dz with da = -dk (Ta - Tr) etc.
    drift2 = F(0) if var_k is None else var_k * ((bz * ta - d * tb + nl * tz) / d ** 2) ** 2
    m0_ug = round(d * 10 ** 6 / cpg)
    loss_ug = round(nl * 10 ** 6 / cpg)
    t = {"stat": ceil_sqrt(stat2 * m0_ug ** 2), "drift": ceil_sqrt(drift2 * m0_ug ** 2)}
    if inp["u_rep_ug"] >= 0 and inp["check_n"] >= 2:
        u_rep = F(inp["u_rep_ug"])
    else:
        u_rep = F(math.ceil(F(REP_BOUND_COUNTS * 10 ** 6, cpg)))
    t["rep"] = ceil_sqrt(2 * u_rep ** 2)
    q = F(10 ** 6, cpg)
    t["res"] = ceil_sqrt(2 * q ** 2 / 12)
    t["span_tc"] = ceil_sqrt((m0_ug * F(inp["span_tc_ppm_per_c"], 10 ** 6) * F(inp["dT_lc_c_x100"], 100)) ** 2 / 3)
    tau, s = inp["creep_tau_s"], inp["settle_s"]
    if tau > 0:
        x = F(s, tau)
        t["creep"] = ceil_sqrt((m0_ug * F(inp["creep_ppm"], 10 ** 6) / (1 + x + x * x / 2)) ** 2 / 3)
    else:
        t["creep"] = 0
    t["zero_return"] = ceil_sqrt((inp["zero_return_counts"] * q) ** 2 / 3)
    interval = max(abs(loss_ug), math.ceil(F(inp["limit_ppm"] * m0_ug, 10 ** 6)))
    slope = F(inp["lin_dev_ug"], inp["lin_ref_ug"]) if inp["lin_ref_ug"] > 0 else LIN_BOUND
    t["cal"] = ceil_sqrt((interval * slope) ** 2 / 3)
    others = sum(F(t[k]) ** 2 for k in ("rep", "res", "span_tc", "creep", "zero_return", "cal"))
    v_ppm2 = 10 ** 12 * (stat2 + drift2) + 10 ** 12 * others / m0_ug ** 2 + inp["u_sys_ppm"] ** 2
    U = ceil_sqrt(4 * v_ppm2)
    uc_ug = ceil_sqrt(v_ppm2 * m0_ug ** 2 / 10 ** 12)
    U_ug = ceil_sqrt(4 * v_ppm2 * m0_ug ** 2 / 10 ** 12)
    return t, U, m0_ug, loss_ug, uc_ug, U_ug


def decide(loss_ppm, u, limit_ppm, comparator, decision, leak, gain_significant, no_pass):
    """The decision rule on an exact loss (Fraction, ppm) and U; no_pass: any reason bars a PASS."""
    ok = (lambda x: x <= limit_ppm) if comparator == "le" else (lambda x: x < limit_ppm)
    if leak:
        v = "FAIL"
    elif decision == "simple":
        v = "PASS" if ok(loss_ppm) else "FAIL"
    elif ok(loss_ppm + u):
        v = "PASS"
    elif not ok(loss_ppm - u):
        v = "FAIL"
    else:
        v = "INCONCLUSIVE"
    if v == "PASS" and (gain_significant or no_pass):
        v = "INCONCLUSIVE"
    return v
