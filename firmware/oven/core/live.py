# The in-oven live loss estimate and the early FAIL it can raise (docs/APP.md "Live estimate").
# It only ever makes a FAIL early, never a PASS: buoyancy under vacuum makes a cell look heavier,
# so the estimate errs low. update() runs once per SOAK tick: allocation-free, small ints only.
from micropython import const
from array import array


_EARLY_FAIL_HOLD_S = const(60)    # over the limit this many consecutive ticks: early FAIL
_LIVE_U_PPM = const(1000)         # margin of the estimate (buoyancy, convection, drift)
_DTC_MAX = const(16000)           # load-cell temperature step clamp, c_x100 (k_q16 * dtc < 2**30)
_D_MAX = const(500000)            # loss clamp, counts (<< 4 stays a small int)


class LiveEstimate:
    """Per cell: an EMA of the zero-drift-corrected loss in counts, as ppm of the m0 net reading.

    zero, c0, div: the controller's arrays (tare mean; m0 net mean; m0 net // 1000), filled by its
    weighings and read here by reference. k_q16, vac_counts: the blank run's zero drift per c_x100
    (Q16) and vacuum offset in counts, set by set_blank()."""

    def __init__(self, n, limit_ppm, zero, c0, div):
        if not 1 <= n <= 29:
            raise ValueError("live estimate: 1..29 cells (a bit each in a small int)")
        self.n = n
        self.limit_ppm = limit_ppm + _LIVE_U_PPM
        self.zero = zero
        self.c0 = c0
        self.div = div
        self.k_q16 = array("i", bytes(4 * n))
        self.vac_counts = array("i", bytes(4 * n))
        self.ppm = array("i", bytes(4 * n))
        self.early_fail = bytearray(n)
        self._ema = array("i", bytes(4 * n))      # loss in counts << 4
        self._over_s = array("i", bytes(4 * n))   # consecutive ticks over the limit

    def set_blank(self, blank):
        from oven.core import drift     # not at import: the session releases drift after the blank run
        for i in range(self.n):
            self.k_q16[i] = drift.k_q16(blank[i])
            self.vac_counts[i] = blank[i]["vac_offset_num"] // blank[i]["vac_offset_den"]

    def update(self, raw, valid, dtc_c_x100, under_vacuum):
        """One tick: raw counts and their validity per cell, the load-cell temperature minus its
        value at the tare, and whether the chamber is below codes.VAC_PA. Returns a bit mask of
        the cells that failed early on this tick (their ppm in self.ppm)."""
        if dtc_c_x100 > _DTC_MAX:
            dtc_c_x100 = _DTC_MAX
        elif dtc_c_x100 < -_DTC_MAX:
            dtc_c_x100 = -_DTC_MAX
        lim = self.limit_ppm
        failed = 0
        for i in range(self.n):
            if not valid[i]:
                continue
            corr = (self.k_q16[i] * dtc_c_x100) >> 16
            if under_vacuum:
                corr += self.vac_counts[i]
            d = self.c0[i] - (raw[i] - self.zero[i] - corr)   # loss in counts (positive = lighter)
            if d > _D_MAX:
                d = _D_MAX
            elif d < -_D_MAX:
                d = -_D_MAX
            e = self._ema[i]
            e += ((d << 4) - e) >> 5
            self._ema[i] = e
            ppm = ((e >> 4) * 1000) // self.div[i]
            self.ppm[i] = ppm
            if ppm > lim:
                self._over_s[i] += 1
                if self._over_s[i] == _EARLY_FAIL_HOLD_S and not self.early_fail[i]:
                    self.early_fail[i] = 1
                    failed |= 1 << i
            else:
                self._over_s[i] = 0
        return failed

    def all_failed(self):
        for i in range(self.n):
            if not self.early_fail[i]:
                return 0
        return 1
