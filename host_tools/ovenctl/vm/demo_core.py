# Verdict-core demo inside the MicroPython VM: a generated weighing sequence (tare, m0, m1 of a
# 45 g cell losing 0.32 %) goes through the same Window and verdict code as on the device.
from array import array

from oven.core import methods
from oven.core import verdict
from oven.core import weigh

_COUNTS_PER_G = 20972      # 200 g load cell on an HX711, 2**22 counts full scale
_ZERO = 52000              # empty pan
_NOISE = 30


class Lcg:
    def __init__(self, seed):
        self.s = seed

    def gauss(self, amp):
        t = 0
        for _ in range(6):
            self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
            t += self.s >> 15
        # sum of 6 uniforms on 0..65535: sd = 65536*sqrt(6/12) = 46341
        return (t - 6 * 32768) * amp // 46341


def weigh_window(lcg, level, method, name):
    w = weigh.Window(n=method["window_n"], stable_sd_counts=3 * _NOISE // 2 + 10, hold=method["stable_hold"],
                     timeout_samples=method["weigh_timeout_s"] * 10)
    k = 0
    while True:
        k += 1
        x = level + lcg.gauss(_NOISE)
        if k == 37:
            x = 0x7FFFFF          # an HX711 glitch: rejected
        st = w.add(x)
        if st == weigh.W_STABLE:
            break
        if st >= weigh.W_ERR_TIMEOUT:
            raise RuntimeError("%s weighing failed: %s" % (name, weigh.STATE_NAMES[st]))
    n, total, m2n = w.result()
    print("%-5s %3d samples (%d rejected) mean %.1f counts" % (name, n, w.rejected, total / n))
    return verdict.reading(n, total, m2n)


def main():
    method = methods.validate("gb-2026")
    lcg = Lcg(2026)
    m0_counts = 45 * _COUNTS_PER_G
    m1_counts = m0_counts - m0_counts * 32 // 10000   # 0.32 % loss
    z = weigh_window(lcg, _ZERO, method, "tare")
    r0 = weigh_window(lcg, _ZERO + m0_counts, method, "m0")
    r1 = weigh_window(lcg, _ZERO + m1_counts, method, "m1")
    res = verdict.evaluate(z, r0, r1, method, 0)
    v = verdict.VERDICT_NAMES[res.verdict]
    print("")
    print("+----------------+")
    print("| %-14s |" % method["name"])
    print("| %-14s |" % ("*** %s ***" % v))
    print("| loss %d.%02d %%    |" % (res.loss_pct_x100 // 100, res.loss_pct_x100 % 100))
    print("| U    %d.%02d %%    |" % (res.u_pct_x100 // 100, res.u_pct_x100 % 100))
    print("| limit <= %d.%02d%% |" % (method["limit_ppm"] // 10000, method["limit_ppm"] // 100 % 100))
    print("+----------------+")
    print("@@VERDICT " + v + " " + str(res.loss_ppm) + " " + str(res.u_ppm))


main()
