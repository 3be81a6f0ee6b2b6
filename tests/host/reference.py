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
    ok = (lambda x: x <= limit_ppm) if comparator == "le" else (lambda x: x < limit_ppm)
    flags = 0
    if a - b < 0:
        flags |= 1
        if loss_ppm < -u:
            flags |= 2
    if leak:
        flags |= 4
        v = "FAIL"
    elif decision == "simple":
        v = "PASS" if ok(loss_ppm) else "FAIL"
    elif ok(loss_ppm + u):
        v = "PASS"
    elif not ok(loss_ppm - u):
        v = "FAIL"
    else:
        v = "INCONCLUSIVE"
    if v == "PASS" and flags & 2:
        v = "INCONCLUSIVE"
    return {"verdict": v, "loss_ppm": round(loss_ppm), "loss_pct_x100": round(loss_ppm / 100),
            "u_ppm": u, "u_pct_x100": -((-u) // 100), "flags": flags, "limit_ppm": limit_ppm,
            "comparator": comparator, "decision": decision}
