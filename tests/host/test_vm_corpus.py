"""The MicroPython VM and CPython give identical results on >= 10,000 generated cases, and both
agree with the Fraction reference on every verdict case."""
import json
import os
import random

import pytest

import corpus_eval
import reference
import verdict
from vmbridge import ROOT, run_vm

N_VERDICT = 10000
N_WINDOW = 300
N_ROUND = 2000


def _window_result(rng, n, lo, hi):
    return [n, rng.randint(lo * n, hi * n), rng.randint(0, n * n * 2047 * 2047)]


def generate(seed=2026):
    rng = random.Random(seed)
    cases = []
    for i in range(N_VERDICT):
        z = _window_result(rng, rng.randint(2, 64), -(2 ** 22), 2 ** 22)
        zmean = z[1] // z[0]
        n0 = rng.randint(2, 64)
        a_mean = rng.randint(zmean + 1000, 2 ** 23 - 1)
        r0 = [n0, a_mean * n0 + rng.randint(0, n0 - 1), rng.randint(0, n0 * n0 * 2047 * 2047)]
        n1 = rng.randint(2, 64)
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
    return cases


@pytest.fixture(scope="module")
def corpus():
    cases = generate()
    d = os.path.join(ROOT, "build", "vmcorpus")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "cases.json")
    with open(path, "w") as f:
        json.dump(cases, f)
    out = run_vm(os.path.join(ROOT, "tests", "vm", "corpus_main.py"), arg="/build/vmcorpus/cases.json",
                 paths=("firmware", "tests/dual", "build/vmcorpus"), heap_kb=65536)
    line = [ln for ln in out.splitlines() if ln.startswith("@@JSON")][0]
    vm = json.loads(line[6:])
    cp = json.loads(json.dumps(corpus_eval.run_cases(json.loads(json.dumps(cases)))))
    return cases, vm, cp


def test_corpus_size(corpus):
    cases, vm, cp = corpus
    assert len(cases) >= 10000 + N_WINDOW
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
