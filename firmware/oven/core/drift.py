# Load-cell zero drift against the load cell's own temperature, learnt from a blank run.
#
# TGA practice: run the same temperature/vacuum profile with empty pans and record each load
# cell's zero against the temperature of the sensor next to it. The firmware never learns drift any
# other way. Per channel, over whole-minute points that were entirely vented or entirely under
# vacuum, a least-squares fit of
#   zero(T, vac) = a + k * T + vac_offset * [under vacuum]
# The vacuum term absorbs the pan's air buoyancy (and any vacuum-induced shift), so the many
# points of the hot soak and cool-down determine k. The final weighings happen vented, so only k
# corrects the verdict; vac_offset serves the live in-oven estimate.
#
# Timing and allocation: add() runs once per control tick per channel, allocates nothing and keeps
# integers small (offsets from the first reading, sums over one minute). fit() runs once.
from micropython import const
from array import array
from oven.core.codes import VAC_PA
from oven.core.fixedpt import div_half_even

_POINT_S = const(60)        # one fitted point per minute of samples
_MAX_POINTS = const(1440)   # 24 h of blank run
_D_MAX = const(32767)       # |raw - ref| beyond this is a glitch (drift is a few 1000 counts): int16 points


class DriftRecorder:
    def __init__(self, n_channels):
        self.n = n_channels
        # int16 points: 24 h of 4 channels in 14 KB of heap, not 29 (docs/FIT.md)
        self._t = array("h", bytes(2 * _MAX_POINTS))          # mean temperature, c_x100
        self._vac = bytearray(_MAX_POINTS)
        self._z = array("h", bytes(2 * _MAX_POINTS * n_channels))  # mean zero - ref, counts
        self._ref = array("i", bytes(4 * n_channels))
        self._acc = array("i", bytes(4 * n_channels))
        self._cnt = array("i", bytes(4 * n_channels))
        self.reset()

    def reset(self):
        self.points = 0
        self._has_ref = False
        self._t_acc = 0
        self._t_cnt = 0
        self._vac_cnt = 0
        self._secs = 0
        for i in range(self.n):
            self._acc[i] = 0
            self._cnt[i] = 0

    def add(self, lc_temp_c_x100, pressure_pa, raws, valid):
        """One control tick: raws[i] is channel i's latest raw count, valid[i] nonzero when it is a
        fresh, accepted sample."""
        n = self.n
        if not self._has_ref:
            for i in range(n):
                if not valid[i]:
                    return
            for i in range(n):
                self._ref[i] = raws[i]
            self._has_ref = True
        for i in range(n):
            if valid[i]:
                d = raws[i] - self._ref[i]
                if -_D_MAX <= d <= _D_MAX:
                    self._acc[i] += d
                    self._cnt[i] += 1
        self._t_acc += lc_temp_c_x100
        self._t_cnt += 1
        if pressure_pa < VAC_PA:
            self._vac_cnt += 1
        self._secs += 1
        if self._secs < _POINT_S:
            return
        k = self.points
        ok = k < _MAX_POINTS and self._t_cnt > 0 and -32768 <= self._t_acc // self._t_cnt <= 32767
        for i in range(n):
            if self._cnt[i] < _POINT_S // 2:
                ok = False
        if ok:
            self._t[k] = self._t_acc // self._t_cnt
            # a point is "vacuum" or "vented" only if the whole minute was
            self._vac[k] = 1 if self._vac_cnt == self._secs else (0 if self._vac_cnt == 0 else 2)
            for i in range(n):
                self._z[k * n + i] = self._acc[i] // self._cnt[i]
            self.points = k + 1
        self._secs = 0
        self._t_acc = 0
        self._t_cnt = 0
        self._vac_cnt = 0
        for i in range(n):
            self._acc[i] = 0
            self._cnt[i] = 0

    def fit(self, min_span_c_x100=500):
        """Least-squares fit per channel of z = a + k*T + b*[vacuum] over all whole-minute points
        (vented and under vacuum), exact in integers (Cramer's rule on the normal equations).
        Returns a list of dicts (JSON-ready); ValueError when there are too few points or the
        temperature span is below min_span_c_x100."""
        return list(self.fit_steps(min_span_c_x100))

    def fit_steps(self, min_span_c_x100=500):
        """fit() as a generator of its channels' dicts, one at a time: the caller may collect the
        big-integer garbage of one channel before the next (the session's steps, docs/FIT.md).
        ValueError at the first next() when the points do not make a fit."""
        n = self.n
        idx = [k for k in range(self.points) if self._vac[k] != 2]
        vent = [k for k in idx if self._vac[k] == 0]
        if len(vent) < 2 or len(idx) < 10:
            raise ValueError("blank run: %d usable points, %d vented (need 10 and 2)" % (len(idx), len(vent)))
        ts = [self._t[k] for k in idx]
        vs = [self._vac[k] for k in idx]
        span = max(ts) - min(ts)
        if span < min_span_c_x100:
            raise ValueError("blank run: load-cell temperature spanned only %d.%02d degC (need %d.%02d)" % (
                span // 100, span % 100, min_span_c_x100 // 100, min_span_c_x100 % 100))
        m = len(idx)
        st = sum(ts)
        sv = sum(vs)
        stt = 0
        stv = 0
        for j in range(m):
            stt += ts[j] * ts[j]
            stv += ts[j] * vs[j]
        # normal matrix [[m, st, sv], [st, stt, stv], [sv, stv, sv]] (v*v == v)
        det = m * (stt * sv - stv * stv) - st * (st * sv - stv * sv) + sv * (st * stv - stt * sv)
        if det <= 0:
            raise ValueError("blank run: points do not determine the drift (need vented and vacuum points)")
        cof_kk = m * sv - sv * sv
        for i in range(n):
            zs = [self._z[k * n + i] for k in idx]
            sz = sum(zs)
            stz = 0
            svz = 0
            for j in range(m):
                stz += ts[j] * zs[j]
                svz += vs[j] * zs[j]
            a_num = sz * (stt * sv - stv * stv) - st * (stz * sv - stv * svz) + sv * (stz * stv - stt * svz)
            k_num = m * (stz * sv - stv * svz) - sz * (st * sv - stv * sv) + sv * (st * svz - stz * sv)
            b_num = m * (stt * svz - stz * stv) - st * (st * svz - stz * sv) + sz * (st * stv - stt * sv)
            # the sum of the squared residuals (each times det), from the sums: the same integer
            # as summing (z*det - a - k*T - b*v)^2 point by point (v*v == v), without a big
            # integer per point
            szz = 0
            for j in range(m):
                szz += zs[j] * zs[j]
            ssr = (det * det * szz + m * a_num * a_num + k_num * k_num * stt + b_num * b_num * sv
                   - 2 * det * (a_num * sz + k_num * stz + b_num * svz)
                   + 2 * (a_num * k_num * st + a_num * b_num * sv + k_num * b_num * stv))
            # zero return: the corrected zero (z - k T, the fitted temperature effect removed) at the
            # last vented point minus at the first, in counts, half to even (docs/UNCERTAINTY.md)
            j0 = vs.index(0)
            j1 = m - 1
            while vs[j1] != 0:
                j1 -= 1
            zr = div_half_even((zs[j1] - zs[j0]) * det - k_num * (ts[j1] - ts[j0]), det)
            # var(k) = s^2 * cof_kk / det, s^2 = SSR / (m - 3), SSR = ssr / det^2
            yield {"ref_counts": self._ref[i], "k_num": k_num, "k_den": det,
                   "var_k_num": ssr * cof_kk, "var_k_den": (m - 3) * det * det * det,
                   "t_ref_num": 0, "t_ref_den": 1, "a_num": a_num, "a_den": det,
                   "vac_offset_num": b_num, "vac_offset_den": det, "points": m,
                   "points_vented": len(vent), "t_min_c_x100": min(ts), "t_max_c_x100": max(ts),
                   "zero_return_counts": zr}


def k_q16(ch):
    """Drift coefficient as a small fixed-point int: counts per 0.01 degC * 65536 (for the per-tick
    live estimate; the verdict uses the exact rational)."""
    return (ch["k_num"] * 65536) // ch["k_den"]


def correction(ch, temp_num, temp_den):
    """Exact zero drift of channel `ch` between T_ref and the temperature temp_num/temp_den
    (c_x100) as (num, den, var_num, var_den) in counts, for verdict.corrected()."""
    # k * (T - T_ref) = k_num/k_den * (temp_num/temp_den - t_ref_num/t_ref_den)
    dt_num = temp_num * ch["t_ref_den"] - ch["t_ref_num"] * temp_den
    dt_den = temp_den * ch["t_ref_den"]
    num = ch["k_num"] * dt_num
    den = ch["k_den"] * dt_den
    if den < 0:
        num, den = -num, -den
    var_num = ch["var_k_num"] * dt_num * dt_num
    var_den = ch["var_k_den"] * dt_den * dt_den
    return num, den, var_num, var_den
