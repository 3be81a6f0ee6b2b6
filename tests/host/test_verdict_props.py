"""Property tests of the integer verdict core against the Fraction reference (CPython)."""
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st, assume

from oven.core import fixedpt
from oven.core import methods
from oven.core import verdict
from oven.core import weigh
import reference

COUNTS = st.integers(-(2 ** 23), 2 ** 23 - 1)
N = st.integers(2, 64)


@given(st.integers(-(10 ** 40), 10 ** 40), st.integers(-(10 ** 20), 10 ** 20).filter(lambda d: d != 0))
def test_div_half_even_matches_fraction_round(num, den):
    assert fixedpt.div_half_even(num, den) == round(Fraction(num, den))


@given(st.integers(-(10 ** 40), 10 ** 40), st.integers(-(10 ** 20), 10 ** 20).filter(lambda d: d != 0))
def test_div_ceil(num, den):
    assert fixedpt.div_ceil(num, den) == math.ceil(Fraction(num, den))


@given(st.integers(0, 10 ** 60))
def test_isqrt(n):
    assert fixedpt.isqrt(n) == math.isqrt(n)
    c = fixedpt.isqrt_ceil(n)
    assert c * c >= n and (c == 0 or (c - 1) ** 2 < n)


@st.composite
def window_result(draw, mean_lo=-(2 ** 23), mean_hi=2 ** 23 - 1):
    n = draw(N)
    mean_num = draw(st.integers(mean_lo * n, mean_hi * n))
    m2n = draw(st.integers(0, n * n * 2047 * 2047))
    return (n, mean_num, m2n)


@st.composite
def case(draw):
    zero = draw(window_result(-(2 ** 22), 2 ** 22))
    z = Fraction(zero[1], zero[0])
    # m0 reading at least 1000 counts above the zero (a cell on the pan), up to the rail
    n0 = draw(N)
    a_num = draw(st.integers(math.ceil((z + 1000) * n0), (2 ** 23 - 1) * n0))
    r0 = (n0, a_num, draw(st.integers(0, n0 * n0 * 2047 * 2047)))
    a = Fraction(a_num, n0)
    n1 = draw(N)
    # m1 anywhere from a 20 % loss to a 1 % gain, biased towards the limits
    span = a - z
    style = draw(st.sampled_from(["any", "near5000", "near10000"]))
    if style == "any":
        lo, hi = a - span / 5, a + span / 100
        b_num = draw(st.integers(math.ceil(lo * n1), math.floor(hi * n1)))
    else:
        target = 5000 if style == "near5000" else 10000
        b_exact = a - span * target / 10 ** 6
        b_num = math.floor(b_exact * n1) + draw(st.integers(-50, 50))
    r1 = (n1, b_num, draw(st.integers(0, n1 * n1 * 2047 * 2047)))
    return zero, r0, r1


def _method(preset, decision, u_sys):
    return methods.validate({"base": preset, "decision": decision, "u_sys_ppm": u_sys})


@settings(max_examples=3000, deadline=None)
@given(case(), st.sampled_from(["gb-2026", "tcsae-434-2025"]), st.sampled_from(["guarded", "simple"]),
       st.integers(0, 5000), st.integers(0, 1))
@pytest.mark.slow
def test_evaluate_matches_reference(c, preset, decision, u_sys, leak):
    zero, r0, r1 = c
    m = _method(preset, decision, u_sys)
    got = verdict.evaluate(verdict.reading(*zero), verdict.reading(*r0), verdict.reading(*r1), m, leak).as_dict()
    got["verdict"] = got["verdict"]
    want = reference.evaluate(zero, r0, r1, m["limit_ppm"], m["comparator"], decision, u_sys, leak)
    assert got == want


@settings(max_examples=2000, deadline=None)
@given(st.integers(1, 2000), st.integers(0, 2000), st.sampled_from([-1, 0, 1]),
       st.sampled_from(["gb-2026", "tcsae-434-2025"]), st.sampled_from([1, -1]))
def test_exactly_at_limit_plus_minus_u(k, u_sys, delta, preset, side):
    """Zero spread, U = 2 u_sys exactly; loss = limit + side*U + delta ppm exactly."""
    m = _method(preset, "guarded", u_sys)
    lim = m["limit_ppm"]
    u = 2 * u_sys
    loss = lim + side * u + delta
    assume(0 <= loss < 10 ** 6)
    z = (64, 0, 0)
    r0 = (64, 64 * 10 ** 6 * k, 0)   # a - z = 1e6 k counts: 1 ppm = k counts
    r1 = (64, 64 * (10 ** 6 - loss) * k, 0)
    res = verdict.evaluate(verdict.reading(*z), verdict.reading(*r0), verdict.reading(*r1), m, 0)
    assert res.u_ppm == u and res.loss_ppm == loss
    want = reference.evaluate(z, r0, r1, lim, m["comparator"], "guarded", u_sys, 0)["verdict"]
    assert verdict.VERDICT_NAMES[res.verdict] == want
    le = m["comparator"] == "le"
    if side == -1:   # loss + U = lim + delta
        assert (res.verdict == verdict.V_PASS) == ((delta <= 0) if le else (delta < 0))
    else:            # loss - U = lim + delta
        assert (res.verdict == verdict.V_FAIL) == ((delta > 0) if le else (delta >= 0))


def test_le_versus_lt_at_exact_limits():
    z = (64, 0, 0)
    for preset, lim in (("gb-2026", 5000), ("tcsae-434-2025", 10000)):
        m = _method(preset, "simple", 0)
        r0 = (64, 64 * 10 ** 6, 0)
        r1 = (64, 64 * (10 ** 6 - lim), 0)
        res = verdict.evaluate(verdict.reading(*z), verdict.reading(*r0), verdict.reading(*r1), m, 0)
        assert res.loss_ppm == lim
        assert res.verdict == (verdict.V_PASS if preset == "gb-2026" else verdict.V_FAIL)


@settings(max_examples=500, deadline=None)
@given(st.integers(1, 10 ** 6), st.integers(-(10 ** 6), 10 ** 6))
def test_half_ppm_and_half_hundredth_rounding(k2, n_half):
    """Loss exactly on a .5 ppm or .005 % boundary rounds to even."""
    z = (2, 0, 0)
    a = 2 * 10 ** 6 * k2                 # D = 2e6 k2: loss ppm = N / (2 k2)
    r0 = (2, 2 * a, 0)
    r1 = (2, 2 * (a - n_half * k2), 0)   # loss = n_half / 2 ppm
    m = _method("gb-2026", "guarded", 0)
    res = verdict.evaluate(verdict.reading(*z), verdict.reading(*r0), verdict.reading(*r1), m, 0)
    assert res.loss_ppm == round(Fraction(n_half, 2))
    assert res.loss_pct_x100 == round(Fraction(n_half, 200))


def _ref_window_states(xs, n, lim, hold):
    """Reference stability decisions: accepted = input delayed by one sample (no spikes/rails in
    the generated data); stable when the Fraction sample variance <= lim^2 for `hold` samples."""
    states = []
    acc = []
    run = 0
    for k, x in enumerate(xs):
        if k > 0:
            acc.append(xs[k - 1])
            if len(acc) >= n:
                win = acc[-n:]
                mean = Fraction(sum(win), n)
                var = sum((Fraction(v) - mean) ** 2 for v in win) / (n - 1)
                run = run + 1 if var <= lim * lim else 0
                states.append("STABLE" if run >= hold else "SETTLING")
            else:
                states.append("FILLING")
        else:
            states.append("FILLING")
        if states[-1] == "STABLE":
            break
    return states


@settings(max_examples=400, deadline=None)
@given(st.integers(4, 64), st.integers(1, 300), st.integers(1, 5), st.integers(-(2 ** 22), 2 ** 22),
       st.lists(st.integers(-1000, 1000), min_size=4, max_size=200))
def test_window_stability_matches_exact_variance(n, lim, hold, base, ds):
    w = weigh.Window(n=n, stable_sd_counts=lim, hold=hold, timeout_samples=10 ** 6, spike_counts=2047)
    xs = [base + d for d in ds]
    want = _ref_window_states(xs, n, lim, hold)
    got = []
    for x in xs[:len(want)]:
        got.append(weigh.STATE_NAMES[w.add(x)])
    assert got == want
    if want[-1] == "STABLE":
        cnt, total, m2n = w.result()
        win = xs[len(want) - 1 - n:len(want) - 1]
        assert cnt == n and total == sum(win)
        assert Fraction(m2n, n) == sum((Fraction(v) - Fraction(sum(win), n)) ** 2 for v in win)


def _ref_balance_states(xs, n, lag, sps, sdm, drift, hold):
    """Exact reference of the balance criterion (Fraction): after each accepted sample (every
    sample but the newest is accepted: no spikes here), sd of the mean of the last n <= sdm and
    |mean(last n) - mean(the n ending lag samples earlier)| per lag/sps/60 min <= drift."""
    states = []
    run = 0
    for k in range(len(xs)):
        acc = xs[:k]                # x_k is pending; x_0..x_{k-1} accepted
        if len(acc) < n:
            states.append("FILLING")
            continue
        win = acc[-n:]
        mean = Fraction(sum(win), n)
        m2 = sum((Fraction(v) - mean) ** 2 for v in win)
        ok = m2 / (n * (n - 1)) <= sdm * sdm
        if len(acc) < n + lag:
            ok = False
        else:
            then = acc[len(acc) - lag - n:len(acc) - lag]
            rate = abs(mean - Fraction(sum(then), n)) / Fraction(lag, 60 * sps)   # counts / min
            ok = ok and rate <= drift
        run = run + 1 if ok else 0
        states.append("STABLE" if run >= hold else "SETTLING")
        if run >= hold:
            break
    return states


@settings(max_examples=300, deadline=None)
@given(st.integers(4, 16), st.integers(0, 48), st.sampled_from([10, 80]), st.integers(1, 60), st.integers(1, 400),
       st.integers(1, 4), st.integers(-(2 ** 22), 2 ** 22), st.integers(-30, 30), st.sampled_from([2, 30, 300]),
       st.lists(st.integers(-300, 300), min_size=4, max_size=200))
def test_window_balance_criterion_matches_fraction(n, lag_extra, sps, sdm, drift, hold, base, slope, amp, ds):
    lag = n + lag_extra
    w = weigh.Window(n=n, hold=hold, timeout_samples=10 ** 6, spike_counts=2047, sd_mean_counts=sdm,
                     drift_counts_per_min=drift, drift_n=lag, sps=sps)
    # noise on a ramp of `slope` counts per 8 samples: both tests get exercised
    xs = [base + d * amp // 300 + slope * i // 8 for i, d in enumerate(ds)]
    want = _ref_balance_states(xs, n, lag, sps, sdm, drift, hold)
    got = [weigh.STATE_NAMES[w.add(x)] for x in xs[:len(want)]]
    assert got == want
    if want[-1] == "STABLE":
        cnt, total, m2n = w.result()
        win = xs[len(want) - 1 - n:len(want) - 1]
        assert cnt == n and total == sum(win)
        buf = [0] * n
        import array
        a = array.array("i", buf)
        assert w.samples_into(a) == n and list(a) == win


@settings(max_examples=200, deadline=None)
@given(st.integers(4, 64), st.integers(1, weigh._SDM_MAX), st.integers(1, weigh._DRIFT_MAX),
       st.integers(0, weigh._DRIFT_N_MAX), st.sampled_from([10, 80]))
def test_window_limits_stay_small_ints(n, sdm, drift, lag, sps):
    # every precomputed threshold and intermediate of the per-sample path is within +-2**30
    lag = 0 if lag < n else lag
    w = weigh.Window(n=n, hold=1, timeout_samples=10 ** 6, sd_mean_counts=sdm, drift_counts_per_min=drift,
                     drift_n=lag, sps=sps) if lag else None
    if w is None:
        return
    assert w._lim2 < 2 ** 30 and w._dlim < 2 ** 30
    assert w._dlim == (drift * n * lag) // (60 * sps)
    # _spread_ok's a = M2 - lim2 lies in [-lim2, sumsq]
    assert n * weigh._D_LIM ** 2 < 2 ** 30
    assert 2 * n * weigh._D_LIM < 2 ** 30


# ---------------------------------------------------------------- the full budget (budget.py)
from oven.core import budget  # noqa: E402


@st.composite
def budget_inputs(draw):
    cpg = draw(st.integers(500, 200000))
    lin_ref = draw(st.sampled_from([0, 0, draw(st.integers(1, 10 ** 9))]))
    check = draw(st.sampled_from([None, "hist"]))
    ch = {"counts_per_g": cpg, "u_span_ppm": draw(st.integers(0, 500)),
          "lin_dev_ug": draw(st.integers(-5000, 5000)) if lin_ref else 0, "lin_ref_ug": lin_ref,
          "span_tc_ppm_per_c": draw(st.integers(0, 100)), "creep_ppm": draw(st.integers(0, 2000)),
          "creep_tau_s": draw(st.integers(0, 3600))}
    chk = None if check is None else {"mass_ug": 1, "tol_ug": 1, "u_rep_ug": draw(st.integers(0, 50000)),
                                      "n": draw(st.integers(0, 50))}
    return budget.inputs(ch, chk, draw(st.integers(-3000, 3000)), draw(st.integers(-10, 7200)),
                         draw(st.integers(-5000, 5000)), draw(st.integers(0, 200)),
                         draw(st.sampled_from([5000, 10000, 1, 100000])))


def _corr(r, k, t):
    """reading r drift-corrected by k (Fraction counts per 0.01 degC) at t (int), mean only."""
    return verdict.corrected(r, k.numerator * t, k.denominator)


@settings(max_examples=1500, deadline=None)
@given(case(), budget_inputs(), st.one_of(st.none(), st.fractions(-50, 50, max_denominator=10 ** 9)),
       st.fractions(0, 10, max_denominator=10 ** 12), st.integers(1500, 4500), st.integers(1500, 4500),
       st.integers(1500, 4500))
@pytest.mark.slow
def test_budget_matches_reference(c, inp, k, var_k, tz, ta, tb):
    zero, r0, r1 = c
    rz, ra, rb = verdict.reading(*zero), verdict.reading(*r0), verdict.reading(*r1)
    if k is not None:
        rz, ra, rb = _corr(rz, k, tz), _corr(ra, k, ta), _corr(rb, k, tb)
    exact = [(Fraction(r[0], r[1]), Fraction(r[2], r[3])) for r in (rz, ra, rb)]
    # the cell must be at least 1 ug (m0_ug > 0) for a budget
    assume(round((exact[1][0] - exact[0][0]) * 10 ** 6 / inp["counts_per_g"]) > 0)
    vk = None if k is None else (var_k.numerator, var_k.denominator)
    got = budget.compute(rz, ra, rb, tz, ta, tb, vk, inp)
    t, U, m0, loss, uc, Ug = reference.budget(exact[0], exact[1], exact[2], tz, ta, tb,
                                              None if k is None else var_k, inp)
    assert got["terms_ug"] == t
    assert (got["U_ppm"], got["m0_ug"], got["loss_ug"], got["uc_ug"], got["U_ug"]) == (U, m0, loss, uc, Ug)
    assert sorted(got["terms_ug"]) == sorted(budget.TERMS) and got["inputs"] == inp


@settings(max_examples=1500, deadline=None)
@given(case(), budget_inputs(), st.sampled_from(["gb-2026", "tcsae-434-2025"]),
       st.sampled_from(["guarded", "simple"]), st.integers(0, 1), st.booleans())
@pytest.mark.slow
def test_decision_with_budget_matches_reference(c, inp, preset, decision, leak, no_pass):
    zero, r0, r1 = c
    m = _method(preset, decision, 0)
    inp["limit_ppm"] = m["limit_ppm"]
    rz, ra, rb = verdict.reading(*zero), verdict.reading(*r0), verdict.reading(*r1)
    try:
        bud = budget.compute(rz, ra, rb, 2500, 2500, 2500, None, inp)
    except budget.BudgetError:
        assume(False)
    res = verdict.evaluate(rz, ra, rb, m, leak, bud["U_ppm"])
    assert res.u_ppm == bud["U_ppm"]
    z, a, b = (Fraction(x[1], x[0]) for x in (zero, r0, r1))
    loss = (a - b) / (a - z) * 10 ** 6
    gain_sig = a < b and loss < -bud["U_ppm"]
    want = reference.decide(loss, bud["U_ppm"], m["limit_ppm"], m["comparator"], decision, leak, gain_sig, no_pass)
    got = verdict.VERDICT_NAMES[res.verdict]
    if no_pass and got == "PASS":      # the controller's rule (oven.run.decide.compute_verdict)
        got = "INCONCLUSIVE"
    assert got == want


@settings(max_examples=1000, deadline=None)
@given(st.integers(1, 2000), st.integers(0, 3000), st.sampled_from([-1, 0, 1]),
       st.sampled_from(["gb-2026", "tcsae-434-2025"]), st.sampled_from([1, -1]))
def test_budget_u_exactly_at_limit_plus_minus_u(k, u, delta, preset, side):
    """loss = limit + side*U + delta exactly, U from a budget: <= versus < at both edges."""
    m = _method(preset, "guarded", 0)
    lim = m["limit_ppm"]
    loss = lim + side * u + delta
    assume(0 <= loss < 10 ** 6)
    z = (64, 0, 0)
    r0 = (64, 64 * 10 ** 6 * k, 0)
    r1 = (64, 64 * (10 ** 6 - loss) * k, 0)
    res = verdict.evaluate(verdict.reading(*z), verdict.reading(*r0), verdict.reading(*r1), m, 0, u)
    le = m["comparator"] == "le"
    if side == -1:
        assert (res.verdict == verdict.V_PASS) == ((delta <= 0) if le else (delta < 0))
    else:
        assert (res.verdict == verdict.V_FAIL) == ((delta > 0) if le else (delta >= 0))


def test_budget_45g_example_numbers():
    """The worked example of docs/UNCERTAINTY.md (45 g cell): each term by hand."""
    cpg = 20972
    ch = {"counts_per_g": cpg, "u_span_ppm": 50, "lin_dev_ug": 400, "lin_ref_ug": 100000000,
          "span_tc_ppm_per_c": 15, "creep_ppm": 250, "creep_tau_s": 300}
    inp = budget.inputs(ch, {"mass_ug": 50000000, "tol_ug": 5000, "u_rep_ug": 300, "n": 10}, 100, 900, -50, 0, 5000)
    a = 45 * cpg + 100000
    z = 100000
    b = a - 45 * cpg * 4800 // 10 ** 6
    r = lambda x: (64 * x, 64, 0, 1)    # noqa: E731  (no spread: stat = 0)
    got = budget.compute(r(z), r(a), r(b), 2300, 2300, 2400, None, inp)
    t = got["terms_ug"]
    assert got["m0_ug"] == 45000000
    assert t["stat"] == 0 and t["drift"] == 0
    assert t["rep"] == 425                   # sqrt(2) x 300
    assert t["res"] == 20                    # 47.68 ug / sqrt(6)
    assert t["span_tc"] == 390               # 45 g x 15 ppm/degC x 1 degC / sqrt(3)
    assert t["creep"] == 765                 # 45 g x 250 ppm / (1 + 3 + 4.5) / sqrt(3)
    assert t["zero_return"] == 1377          # 50 counts = 2384 ug / sqrt(3)
    assert t["cal"] == 1                     # 225 mg (the allowed loss) x 400 ug/100 g / sqrt(3) = 0.52 ug
    assert got["U_ppm"] == 75 and got["U_ug"] == 3356
