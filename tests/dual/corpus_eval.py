# Evaluates a corpus of generated cases with the firmware core; the same function runs in CPython
# and in the MicroPython VM, and tests/host/test_vm_corpus.py compares the two outputs bit for bit.
from array import array

from oven.core import fixedpt
from oven.core import methods
from oven.core import verdict
from oven.core import weigh
from oven.core import budget


def run_cases(cases):
    out = []
    mcache = {}
    for c in cases:
        kind = c[0]
        if kind == "v":
            _, zero, r0, r1, preset, decision, u_sys, leak = c
            key = (preset, decision, u_sys)
            m = mcache.get(key)
            if m is None:
                m = methods.validate({"base": preset, "decision": decision, "u_sys_ppm": u_sys})
                mcache[key] = m
            r = verdict.evaluate(verdict.reading(zero[0], zero[1], zero[2]), verdict.reading(r0[0], r0[1], r0[2]),
                                 verdict.reading(r1[0], r1[1], r1[2]), m, leak)
            out.append([r.verdict, r.loss_ppm, r.loss_pct_x100, r.u_ppm, r.u_pct_x100, r.flags,
                        str(r.loss_num), str(r.loss_den)])
        elif kind == "w":
            _, n, lim, hold, spike, xs = c
            w = weigh.Window(n=n, stable_sd_counts=lim, hold=hold, timeout_samples=100000, spike_counts=spike)
            states = []
            for x in xs:
                st = w.add(x)
                states.append(st)
                if st == weigh.W_STABLE:
                    break
            res = w.result() if w.state == weigh.W_STABLE else (0, 0, 0)
            buf = array("i", [0] * n)
            k = w.samples_into(buf)
            out.append([states, [res[0], str(res[1]), str(res[2])], w.rejected, w.restarts, list(buf[:k])])
        elif kind == "b":
            # budget: readings (n, total, m2n), drift k (num, den) and var_k, temperatures, inputs
            _, zero, r0, r1, k, vk, temps, ch, chk, misc = c
            rs = []
            for j, r in enumerate((zero, r0, r1)):
                rd = verdict.reading(r[0], int(r[1]), int(r[2]))
                if k is not None:
                    rd = verdict.corrected(rd, int(k[0]) * temps[j], int(k[1]))
                rs.append(rd)
            inp = budget.inputs(ch, chk, misc[0], misc[1], misc[2], misc[3], misc[4])
            try:
                b = budget.compute(rs[0], rs[1], rs[2], temps[0], temps[1], temps[2],
                                   None if vk is None else (int(vk[0]), int(vk[1])), inp)
                t = b["terms_ug"]
                out.append([[t[x] for x in budget.TERMS], b["U_ppm"], b["m0_ug"], b["loss_ug"], b["uc_ug"], b["U_ug"]])
            except budget.BudgetError:
                out.append("error")
        elif kind == "r":
            _, num, den = c
            num = int(num)
            den = int(den)
            out.append([str(fixedpt.div_half_even(num, den)), str(fixedpt.div_ceil(num, den)),
                        str(fixedpt.isqrt(abs(num)))])
    return out
