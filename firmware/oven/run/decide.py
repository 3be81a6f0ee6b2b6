# The decision at the end of a test (Controller's last phases): each cell's drift-corrected
# readings, its uncertainty budget and verdict, the no-PASS reasons found at the verdict, and the
# verdict record. Functions of the Controller `c`. Imported at the first verdict, not at boot: the
# heap's peak is the blank run's drift recorder, when none of this is needed (docs/FIT.md).
from oven.core import budget
from oven.core import codes as C
from oven.core import drift
from oven.core import verdict as V



def corrected(c, kind, i):
    # the drift correction of the mean only: the fit's uncertainty is the budget's drift term,
    # where the three corrections (one k) are correlated (budget.compute)
    r, acc, cnt = c.readings[(kind, i)]
    if c.blank is None:
        return r
    cn, cd, vn, vd = drift.correction(c.blank[i], acc, cnt)
    return V.corrected(r, cn, cd)


def budget_inputs(c, i):
    ch = c.cal["channels"][i]
    zr = 0
    if c.blank is not None:
        zr = c.blank[i].get("zero_return_counts", 0)
    # settle_s_actual: from the cells being loaded (START) to the start of the m0 window; without
    # a settling wait the m0 window starts when START is pressed
    settle = getattr(c, "settle_s_actual", 0)
    return budget.inputs(ch, c.cal.get("check"), c._lct(3, i) - c._lct(2, i), settle, zr,
                         c.m["u_sys_ppm"], c.m["limit_ppm"])


def no_pass_at_verdict(c, bud):
    """The reasons found at the verdict why cells cannot PASS (docs/UNCERTAINTY.md): drift
    correction (a valid blank fit), repeatability (a check-weight history), the full soak."""
    m = c.m
    if c.blank is None:
        c._no_pass(C.NP_NO_BLANK, -1)
    else:
        for i in range(c.n):
            ch = c.blank[i]
            if ch.get("failed") or ch.get("error"):
                c._no_pass(C.NP_BLANK_FAILED, i)
            # runs_used: test runs that used this fit before this one (plan.py counts them)
            if ch.get("runs_used", 0) >= m["blank_max_runs"]:
                c._no_pass(C.NP_BLANK_OLD, i)
            zr = ch.get("zero_return_counts")
            b = bud[i]
            if zr is None:
                c._no_pass(C.NP_ZERO_RETURN, i)      # a fit without the figure: not checkable
            elif b is not None:
                # |zr| / cpg (g) > permille/1000 * limit/1e6 * m0 (g), in integers
                if zr < 0:
                    zr = -zr
                cpg = b["inputs"]["counts_per_g"]
                if zr * 1000000000000000 > m["zero_return_max_permille"] * m["limit_ppm"] * b["m0_ug"] * cpg:
                    c._no_pass(C.NP_ZERO_RETURN, i)
    for i in range(c.n):
        if bud[i] is not None and not budget.rep_known(bud[i]["inputs"]):
            c._no_pass(C.NP_NO_CHECK, i)
    if c.soak_in_spec_ms < m["soak_s"] * 1000 and not c.invalid:
        # the soak ended early (early_fail "stop" once every cell had failed early)
        c._no_pass(C.NP_SOAK_CUT, -1)


def cell_verdict(c, i):
    # one cell's budget and verdict, as soon as its leak answer is in: each cell's big-integer
    # garbage in its own tick (docs/FIT.md), the same result as all of them at the end
    z = corrected(c, 1, i)
    a = corrected(c, 2, i)
    bb = corrected(c, 3, i)
    bud = None
    try:
        vk = None
        if c.blank is not None:
            vk = (c.blank[i]["var_k_num"], c.blank[i]["var_k_den"])
        bud = budget.compute(z, a, bb, c._lct(1, i), c._lct(2, i), c._lct(3, i), vk,
                             budget_inputs(c, i))
        res = V.evaluate(z, a, bb, c.m, c.leak[i], bud["U_ppm"])
        res.budget = bud
    except (V.VerdictError, budget.BudgetError):
        bud = None
        res = V.Result()
        res.verdict = V.V_INVALID
    c._cres[i] = res
    c._cbud[i] = bud


def compute_verdict(c):
    verdicts = []
    for i in range(c.n):
        if c._cres[i] is None:
            cell_verdict(c, i)
    buds = c._cbud
    res_l = c._cres
    no_pass_at_verdict(c, buds)
    for i in range(c.n):
        res = res_l[i]
        if c.invalid:
            res.verdict = V.V_INVALID
        elif c.no_pass[i] and res.verdict == V.V_PASS:
            res.verdict = V.V_INCONCLUSIVE
        c.results[i] = res
        verdicts.append(res.verdict)
    c.verdict = V.overall(verdicts)


def verdict_record(c):
    cells = []
    for i in range(c.n):
        r = c.results[i]
        d = r.as_dict() if r is not None else {"verdict": V.VERDICT_NAMES[c.final_verdict()], "cell": i}
        d["cell"] = i
        d["leak_visible"] = c.leak[i]
        d["early_fail"] = c.early_fail[i]
        if r is not None and r.budget is not None:
            d["budget"] = r.budget
        d["no_pass"] = [C.NO_PASS_NAMES[x] for x in c.no_pass[i]]
        cells.append(d)
    return {"verdict": V.VERDICT_NAMES[c.final_verdict()], "cells": cells, "method": c.m["name"],
            "fault": c.fault, "invalid": c.invalid,
            "soak_in_spec_s": c.soak_in_spec_ms // 1000, "soak_total_s": c.soak_total_ms // 1000}
