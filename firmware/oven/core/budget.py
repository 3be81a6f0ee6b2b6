# Uncertainty budget of one cell's loss (docs/UNCERTAINTY.md): every contribution as a standard
# uncertainty in ug, combined, expanded with k = 2 and turned into ppm of the cell's m0.
#
# Integer-only and exact up to the stated roundings; runs once per verdict, so long integers are
# fine (never on the per-sample path). Rationals are (num, den) pairs with den > 0.
#
# Model    L = (a - b) / (a - z)   a, b, z: m0, m1 and tare readings in counts (drift-corrected);
#          the span (counts per g) cancels in the ratio.
# Terms    stat, drift: exact in L (the windows' variances of the mean, and the blank fit's var(k)
#          with the correlation of the three corrections); the others in ug from the cal dict,
#          the check-weight history and the log (see _terms). Each term's ug figure is rounded UP to
#          1 ug; stat and drift enter U exactly, the other terms as their rounded-up ug.
# Combined u^2 [ppm^2] = 1e12 (u_stat(L)^2 + u_drift(L)^2) + 1e12 sum(t_i^2) / m0_ug^2 + u_sys^2
# Expanded U = ceil(2 sqrt(u^2)) ppm (k = 2).
from micropython import const
from oven.core.fixedpt import div_half_even, div_ceil, isqrt_ceil

_K2 = const(4)                      # k^2 with k = 2
REP_BOUND_COUNTS = const(20)        # no check-weight history: u_rep per weighing <= 20 counts (see doc)
LIN_BOUND_PPM = const(1000)         # one-point calibration: slope deviation <= 0.1 % over the loss
TERMS = ("stat", "drift", "rep", "res", "span_tc", "creep", "zero_return", "cal")
INPUTS = ("counts_per_g", "u_span_ppm", "lin_dev_ug", "lin_ref_ug", "span_tc_ppm_per_c", "creep_ppm",
          "creep_tau_s", "u_rep_ug", "check_n", "dT_lc_c_x100", "settle_s", "zero_return_counts",
          "u_sys_ppm", "limit_ppm")


class BudgetError(ValueError):
    pass


def _add(x, y):
    return (x[0] * y[1] + y[0] * x[1], x[1] * y[1])


def _ceil_sqrt(num, den):
    # smallest integer u >= 0 with u^2 >= num/den (u^2 is an integer, so u^2 >= ceil(num/den))
    if num <= 0:
        return 0
    return isqrt_ceil(div_ceil(num, den))


def _int_field(d, k, lo):
    v = d.get(k)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise BudgetError("budget input %s must be an integer >= %d, not %r" % (k, lo, v))
    return v


def inputs(ch, check, dT_lc_c_x100, settle_s, zero_return_counts, u_sys_ppm, limit_ppm):
    """The budget's integer inputs from a cal channel dict, the cal's check dict (or None), the log
    figures and the method. BudgetError names a bad field."""
    inp = {}
    for k, lo in (("counts_per_g", 1), ("u_span_ppm", 0), ("lin_dev_ug", -(1 << 62)), ("lin_ref_ug", 0),
                  ("span_tc_ppm_per_c", 0), ("creep_ppm", 0), ("creep_tau_s", 0)):
        inp[k] = _int_field(ch, k, lo)
    if check is None:
        inp["u_rep_ug"] = -1            # unknown: the stated bound applies and the cell cannot PASS
        inp["check_n"] = 0
    else:
        inp["u_rep_ug"] = _int_field(check, "u_rep_ug", 0)
        inp["check_n"] = _int_field(check, "n", 0)
    inp["dT_lc_c_x100"] = dT_lc_c_x100
    inp["settle_s"] = settle_s if settle_s > 0 else 0
    inp["zero_return_counts"] = zero_return_counts
    inp["u_sys_ppm"] = u_sys_ppm
    inp["limit_ppm"] = limit_ppm
    return inp


def rep_known(inp):
    """True when the repeatability comes from a check-weight history (at least 2 weighings)."""
    return inp["u_rep_ug"] >= 0 and inp["check_n"] >= 2


def compute(z, a, b, tz, ta, tb, var_k, inp):
    """Budget of one cell. z, a, b: corrected readings (mean_num, mean_den, var_num, var_den) in
    counts, whose variances are the windows' alone; tz, ta, tb: the weighings' load-cell
    temperatures (c_x100, ints); var_k: the blank fit's (var_k_num, var_k_den) in counts^2 per
    (0.01 degC)^2, or None without a fit; inp: inputs(). Returns a JSON-ready dict."""
    zn, zd, zvn, zvd = z
    an, ad, avn, avd = a
    bn, bd, bvn, bvd = b
    dn = an * zd - zn * ad          # D = a - z
    dd = ad * zd
    if dn <= 0 or dd <= 0:
        raise BudgetError("m0 reading is not above the zero")
    nn = an * bd - bn * ad          # N = a - b
    nd = ad * bd
    gn = bn * zd - zn * bd          # B = b - z
    gd = bd * zd
    cpg = inp["counts_per_g"]

    # u_stat(L)^2 = [B^2 va + D^2 vb + N^2 vz] / D^4
    t1 = (gn * gn * avn, gd * gd * avd)
    t2 = (dn * dn * bvn, dd * dd * bvd)
    t3 = (nn * nn * zvn, nd * nd * zvd)
    s = _add(_add(t1, t2), t3)
    d4n = dn * dn * dn * dn
    d4d = dd * dd * dd * dd
    stat2 = (s[0] * d4d, s[1] * d4n)
    # u_drift(L)^2 = var_k (B Ta - D Tb + N Tz)^2 / D^4 (one k corrects all three readings: the
    # errors are fully correlated, and T_ref cancels because B - D + N = 0)
    if var_k is None:
        drift2 = (0, 1)
    else:
        cn = gn * dd * nd * ta - dn * gd * nd * tb + nn * gd * dd * tz
        cd = gd * dd * nd
        drift2 = (var_k[0] * cn * cn * d4d, var_k[1] * cd * cd * d4n)

    # m0 and the loss in ug (the span converts counts to mass: its own uncertainty enters only here)
    m0_ug = div_half_even(dn * 1000000, dd * cpg)
    if m0_ug <= 0:
        raise BudgetError("m0 is below 1 ug")
    loss_ug = div_half_even(nn * 1000000, nd * cpg)

    t = {}
    t["stat"] = _ceil_sqrt(stat2[0] * m0_ug * m0_ug, stat2[1])
    t["drift"] = _ceil_sqrt(drift2[0] * m0_ug * m0_ug, drift2[1])
    # repeatability between weighings: two weighings (m0, m1), each with u_rep
    if rep_known(inp):
        u_rep = inp["u_rep_ug"]
        t["rep"] = _ceil_sqrt(2 * u_rep * u_rep, 1)
    else:
        u_rep = div_ceil(REP_BOUND_COUNTS * 1000000, cpg)
        t["rep"] = _ceil_sqrt(2 * u_rep * u_rep, 1)
    # resolution: 1 count, rectangular (q^2/12), per reading, two readings
    t["res"] = _ceil_sqrt(2 * 1000000000000, 12 * cpg * cpg)
    # span temperature coefficient x the load-cell temperature difference, rectangular on the load
    tc = inp["span_tc_ppm_per_c"]
    dT = inp["dT_lc_c_x100"]
    t["span_tc"] = _ceil_sqrt(m0_ug * m0_ug * tc * tc * dT * dT, 3 * 10 ** 16)
    # creep still to come at m0: creep_ppm x m0 x exp(-settle/tau) <= ... / (1 + x + x^2/2), rectangular
    cr = inp["creep_ppm"]
    tau = inp["creep_tau_s"]
    st = inp["settle_s"]
    if tau > 0:
        f_num = 2 * tau * tau
        f_den = 2 * tau * tau + 2 * st * tau + st * st
        t["creep"] = _ceil_sqrt((m0_ug * cr * f_num) ** 2, 3 * (1000000 * f_den) ** 2)
    else:
        t["creep"] = 0
    # zero return of the blank run (end minus start, corrected), rectangular
    zr = inp["zero_return_counts"]
    t["zero_return"] = _ceil_sqrt(zr * zr * 1000000000000, 3 * cpg * cpg)
    # calibration: the span cancels in L; the linearity deviation scaled to the loss interval
    # (the larger of the measured and the allowed loss), rectangular
    interval = loss_ug if loss_ug >= 0 else -loss_ug
    allowed = div_ceil(inp["limit_ppm"] * m0_ug, 1000000)
    if allowed > interval:
        interval = allowed
    if inp["lin_ref_ug"] > 0:
        lnum = interval * inp["lin_dev_ug"]
        lden = inp["lin_ref_ug"]
    else:
        lnum = interval * LIN_BOUND_PPM
        lden = 1000000
    t["cal"] = _ceil_sqrt(lnum * lnum, 3 * lden * lden)

    # combined, in ppm^2: 1e12 (stat2 + drift2) + 1e12 sum(t_ug^2)/m0^2 + u_sys^2
    sq = 0
    for k in TERMS[2:]:
        sq += t[k] * t[k]
    us = inp["u_sys_ppm"]
    ratio = _add(stat2, drift2)
    m02 = m0_ug * m0_ug
    v = (1000000000000 * (ratio[0] * m02 + sq * ratio[1]) + us * us * m02 * ratio[1], m02 * ratio[1])
    u_ppm = _ceil_sqrt(_K2 * v[0], v[1])
    # the same in ug (for the table): u_ug^2 = u^2 [ppm^2] m0^2 / 1e12
    uc_ug = _ceil_sqrt(v[0] * m02, v[1] * 1000000000000)
    U_ug = _ceil_sqrt(_K2 * v[0] * m02, v[1] * 1000000000000)
    return {"inputs": inp, "terms_ug": t, "uc_ug": uc_ug, "U_ug": U_ug, "U_ppm": u_ppm, "m0_ug": m0_ug,
            "loss_ug": loss_ug, "k": 2}
