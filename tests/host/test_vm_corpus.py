"""The MicroPython VM and CPython give identical results on >= 10,000 generated cases, and both
agree with the Fraction reference on every verdict case."""
import json
import os
import random
import shutil

import pytest

import corpus_eval
import reference
from oven.core import verdict
from vmbridge import ROOT, run_vm

pytestmark = [pytest.mark.vm, pytest.mark.slow]

N_VERDICT = 10000
N_WINDOW = 300
N_ROUND = 2000
N_BUDGET = 2000


def _window_result(rng, n, lo, hi):
    return [n, rng.randint(lo * n, hi * n), rng.randint(0, n * n * 2047 * 2047)]


def _zero_m0(rng):
    """A zero window, an m0 window at least 1000 counts above it, and the m1 window's n."""
    z = _window_result(rng, rng.randint(2, 64), -(2 ** 22), 2 ** 22)
    zmean = z[1] // z[0]
    n0 = rng.randint(2, 64)
    a_mean = rng.randint(zmean + 1000, 2 ** 23 - 1)
    r0 = [n0, a_mean * n0 + rng.randint(0, n0 - 1), rng.randint(0, n0 * n0 * 2047 * 2047)]
    return z, zmean, a_mean, r0, rng.randint(2, 64)


def generate(seed=2026):
    rng = random.Random(seed)
    cases = []
    for i in range(N_VERDICT):
        z, zmean, a_mean, r0, n1 = _zero_m0(rng)
        span = a_mean - zmean
        target = rng.choice([0, 3000, 5000, 5000, 10000, 10000, 20000])
        b_mean = a_mean - span * target // 10 ** 6 + rng.randint(-span // 200 - 1, span // 200 + 1)
        r1 = [n1, b_mean * n1 + rng.randint(0, n1 - 1), rng.randint(0, n1 * n1 * rng.choice([4, 400, 2047 * 2047]))]
        cases.append(["v", z, r0, r1, rng.choice(["gb-2026", "tcsae-434-2025"]),
                      rng.choice(["guarded", "guarded", "simple"]), rng.choice([0, 10, 30, 100, 1000]),
                      int(rng.random() < 0.05)])
    for i in range(N_WINDOW):
        n = rng.randint(4, 64)
        base = rng.randint(-(2 ** 23) + 5000, 2 ** 23 - 5000)
        amp = rng.choice([5, 30, 100, 600])
        xs = []
        for k in range(rng.randint(10, 400)):
            r = rng.random()
            if r < 0.01:
                xs.append(rng.choice([0x7FFFFF, -0x800000]))
            elif r < 0.02:
                xs.append(base + rng.choice([-1, 1]) * rng.randint(3000, 2 ** 20))
            elif r < 0.025:
                base += rng.randint(-4000, 4000)
                xs.append(base)
            else:
                xs.append(base + int(rng.gauss(0, amp)))
        xs = [max(-0x800000, min(0x7FFFFF, x)) for x in xs]
        cases.append(["w", n, rng.randint(1, 200), rng.randint(1, 10), rng.randint(100, 2047), xs])
    for i in range(N_ROUND):
        den = rng.choice([1, 2, 3, 7, 10, 100, rng.randint(1, 10 ** 12), -rng.randint(1, 10 ** 6)])
        num = rng.randint(-(10 ** 30), 10 ** 30) if i % 2 else den * rng.randint(-1000, 1000) + rng.choice([0, den // 2])
        cases.append(["r", str(num), str(den)])
    for i in range(N_BUDGET):
        z, zmean, a_mean, r0, n1 = _zero_m0(rng)
        b_mean = a_mean - (a_mean - zmean) * rng.choice([0, 5000, 10000]) // 10 ** 6 + rng.randint(-500, 500)
        r1 = [n1, b_mean * n1, rng.randint(0, n1 * n1 * 400)]
        k = None if rng.random() < 0.2 else [rng.randint(-10 ** 12, 10 ** 12), rng.randint(1, 10 ** 12)]
        vk = None if k is None else [str(rng.randint(0, 10 ** 32)), str(rng.randint(1, 10 ** 39))]
        temps = [rng.randint(1500, 4500) for _ in range(3)]
        lin_ref = rng.choice([0, rng.randint(1, 10 ** 9)])
        ch = {"counts_per_g": rng.randint(500, 200000), "u_span_ppm": rng.randint(0, 500),
              "lin_dev_ug": rng.randint(-5000, 5000) if lin_ref else 0, "lin_ref_ug": lin_ref,
              "span_tc_ppm_per_c": rng.randint(0, 100), "creep_ppm": rng.randint(0, 2000),
              "creep_tau_s": rng.randint(0, 3600)}
        chk = None if rng.random() < 0.3 else {"mass_ug": 1, "tol_ug": 1, "u_rep_ug": rng.randint(0, 50000),
                                              "n": rng.randint(0, 30)}
        misc = [rng.randint(-3000, 3000), rng.randint(-10, 7200), rng.randint(-5000, 5000), rng.randint(0, 200),
                rng.choice([5000, 10000])]
        cases.append(["b", z, r0, r1, k, vk, temps, ch, chk, misc])
    return cases


@pytest.fixture(scope="module")
def corpus():
    cases = generate()
    # a folder of its own per process, removed afterwards: under pytest-xdist each worker that runs a
    # test of this module builds the fixture, and the VM copies the whole folder it is given (a
    # shared one was read half-written by the other worker, and collected every old run's cases)
    rel = "build/vmcorpus/%d" % os.getpid()
    d = os.path.join(ROOT, rel)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    try:
        with open(os.path.join(d, "cases.json"), "w") as f:
            json.dump(cases, f)
        out = run_vm(os.path.join(ROOT, "tests", "vm", "corpus_main.py"), arg="/%s/cases.json" % rel,
                     paths=("firmware", "tests/dual", rel), heap_kb=65536)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    line = [ln for ln in out.splitlines() if ln.startswith("@@JSON")][0]
    vm = json.loads(line[6:])
    cp = json.loads(json.dumps(corpus_eval.run_cases(json.loads(json.dumps(cases)))))
    return cases, vm, cp


def test_corpus_size(corpus):
    cases, vm, cp = corpus
    assert len(cases) >= 10000 + N_WINDOW + N_BUDGET
    assert len(vm) == len(cases) == len(cp)


def test_vm_equals_cpython_bit_for_bit(corpus):
    cases, vm, cp = corpus
    diffs = [i for i in range(len(cases)) if vm[i] != cp[i]]
    assert not diffs, "first differing case %d: vm=%r cpython=%r" % (diffs[0], vm[diffs[0]], cp[diffs[0]])


def test_verdict_cases_match_fraction_reference(corpus):
    cases, vm, cp = corpus
    checked = 0
    outcomes = set()
    for c, r in zip(cases, vm):
        if c[0] != "v":
            continue
        _, z, r0, r1, preset, decision, u_sys, leak = c
        lim, cmp_ = (5000, "le") if preset == "gb-2026" else (10000, "lt")
        want = reference.evaluate(tuple(z), tuple(r0), tuple(r1), lim, cmp_, decision, u_sys, leak)
        got = {"verdict": verdict.VERDICT_NAMES[r[0]], "loss_ppm": r[1], "loss_pct_x100": r[2], "u_ppm": r[3],
               "u_pct_x100": r[4], "flags": r[5], "limit_ppm": lim, "comparator": cmp_, "decision": decision}
        assert got == want, c
        outcomes.add(got["verdict"])
        checked += 1
    assert checked == N_VERDICT
    assert outcomes == {"PASS", "FAIL", "INCONCLUSIVE"}


def test_budget_cases_match_fraction_reference(corpus):
    """The VM's budgets (bit-identical to CPython's, above) are the exact definitions'."""
    from fractions import Fraction as F
    from oven.core import budget
    cases, vm, cp = corpus
    checked = 0
    for c, r in zip(cases, vm):
        if c[0] != "b":
            continue
        _, z, r0, r1, k, vk, temps, ch, chk, misc = c
        ex = []
        for j, x in enumerate((z, r0, r1)):
            mean, var = reference.mean_and_var(x[0], int(x[1]), int(x[2]))
            if k is not None:
                mean -= F(int(k[0]), int(k[1])) * temps[j]
            ex.append((mean, var))
        inp = budget.inputs(ch, chk, *misc)
        if round((ex[1][0] - ex[0][0]) * 10 ** 6 / ch["counts_per_g"]) <= 0:
            assert r == "error"
            continue
        t, U, m0, loss, uc, Ug = reference.budget(ex[0], ex[1], ex[2], temps[0], temps[1], temps[2],
                                                  None if vk is None else F(int(vk[0]), int(vk[1])), inp)
        assert r == [[t[x] for x in budget.TERMS], U, m0, loss, uc, Ug], c
        checked += 1
    assert checked > N_BUDGET // 2
