# Integer PID for the oven heater (style: Klipper's ControlPID): c_x100 in, duty ppm out, every
# product on the per-tick path within |x| < 2**30, conditional-integration anti-windup, derivative
# on a filtered measurement. Gain units and why each bound holds: docs/MODULES.md "oven.control.pid".
from micropython import const

_E_MAX = const(32767)          # 327.67 degC: larger errors only occur with a broken sensor
_DT_MAX_MS = const(16384)      # a longer gap is a stall (the guard faults on it); cap the step
_DM_MAX = const(32767)         # per-tick measurement jump cap before the rate division
_RATE_RAW_MAX_Q = const(1048576)  # 1310 degC/s in c_x100/s << 3: keeps the filter product small
_RATE_Q_PER_C_S = const(800)   # rate_q units per degC/s (c_x100 * 8)
_RATE_NUM = const(8000)        # c_x100/ms -> c_x100/s << 3
_ALPHA_SHIFT = const(8)
_ALPHA_ROUND = const(128)

# Default gains for the 120 degC vacuum oven (4000 J/degC, 2 W/degC loss, 400 W heater,
# thermocouple tau ~5 s, 1 s tick): kp 50 %/degC, Ti = 125 s, Td = 2 s. No heat-up helper is
# needed: conditional integration keeps the integral at 0 while the heater is at full power,
# so the approach is P-limited and the integral only fills the last ~1 degC.
# Measured on the simulated plant (tests/dual/test_control.py), 23 -> 120 degC: see the tests.
DEFAULT_KP_PPM_PER_C = const(500_000)
DEFAULT_KI_PPM_PER_C_S = const(4_000)
DEFAULT_KD_PPM_S_PER_C = const(1_000_000)
DEFAULT_D_FILTER_MS = const(4000)
DEFAULT_GAINS = (DEFAULT_KP_PPM_PER_C, DEFAULT_KI_PPM_PER_C_S, DEFAULT_KD_PPM_S_PER_C)


class Pid:
    def __init__(self, kp_ppm_per_c=DEFAULT_KP_PPM_PER_C, ki_ppm_per_c_s=DEFAULT_KI_PPM_PER_C_S,
                 kd_ppm_s_per_c=DEFAULT_KD_PPM_S_PER_C, d_filter_ms=DEFAULT_D_FILTER_MS,
                 out_min_ppm=0, out_max_ppm=1_000_000):
        # a heater only adds heat: the range stays inside 0..1e6, which the bounds above rely on
        if not (0 <= out_min_ppm < out_max_ppm <= 1_000_000):
            raise ValueError("output range")
        if not (0 <= d_filter_ms <= 600_000):
            raise ValueError("d_filter_ms")
        self.out_min_ppm = out_min_ppm
        self.out_max_ppm = out_max_ppm
        self.d_filter_ms = d_filter_ms
        self.kp_ppm_per_c = 0
        self.ki_ppm_per_c_s = 0
        self.kd_ppm_s_per_c = 0
        self.reset()
        self.set_gains(kp_ppm_per_c, ki_ppm_per_c_s, kd_ppm_s_per_c)

    def reset(self):
        """Forget all history: next update() starts with no integral and no derivative."""
        self._integ = 0          # c_x100 * s
        self._frac = 0           # c_x100 * ms not yet carried into _integ, 0..999
        self._rate_q = 0         # filtered d(temp)/dt, c_x100/s << 3
        self._prev_temp = 0
        self._primed = 0
        self._last_e = 0
        self.p_ppm = 0
        self.i_ppm = 0
        self.d_ppm = 0
        self.out_ppm = 0

    def set_gains(self, kp_ppm_per_c, ki_ppm_per_c_s, kd_ppm_s_per_c):
        """Change gains without a step in the output (bumpless): the integral absorbs the
        difference between the old output and the new P + D."""
        if not (0 <= kp_ppm_per_c <= 100_000_000 and 0 <= ki_ppm_per_c_s <= 100_000_000
                and 0 <= kd_ppm_s_per_c <= 800_000_000):
            raise ValueError("gain out of range")
        span = self.out_max_ppm - self.out_min_ppm
        old_i = self.i_ppm
        old_out = self.out_ppm
        saturated = old_out <= self.out_min_ppm or old_out >= self.out_max_ppm
        self.kp_ppm_per_c = kp_ppm_per_c
        self.ki_ppm_per_c_s = ki_ppm_per_c_s
        self.kd_ppm_s_per_c = kd_ppm_s_per_c
        self._e_lim_p = _E_MAX if kp_ppm_per_c == 0 else min(_E_MAX, 3 * span * 100 // kp_ppm_per_c + 1)
        if ki_ppm_per_c_s:
            self._i_lo = -((-self.out_min_ppm * 100) // ki_ppm_per_c_s)  # ceil: I never below out_min
            self._i_hi = self.out_max_ppm * 100 // ki_ppm_per_c_s
        else:
            self._i_lo = self._i_hi = 0
        self._rate_lim_q = 0 if kd_ppm_s_per_c == 0 else span * _RATE_Q_PER_C_S // kd_ppm_s_per_c
        if not self._primed:
            return
        if saturated:
            target_i = old_i
        else:
            target_i = old_out - self._p(self._last_e) - self._d()
        self.preload_ppm(target_i)
        self.p_ppm = self._p(self._last_e)
        self.d_ppm = self._d()
        out = self.p_ppm + self.i_ppm + self.d_ppm
        self.out_ppm = self._clamp_out(out)

    def preload_ppm(self, i_ppm):
        """Set the integral term to i_ppm (clamped to the output range): bumpless hand-over
        from manual / relay output, or a feed-forward estimate of the holding duty."""
        if i_ppm < self.out_min_ppm:
            i_ppm = self.out_min_ppm
        elif i_ppm > self.out_max_ppm:
            i_ppm = self.out_max_ppm
        ki = self.ki_ppm_per_c_s
        self._frac = 0
        if ki:
            self._integ = i_ppm * 100 // ki
            self.i_ppm = ki * self._integ // 100
        else:
            self._integ = 0
            self.i_ppm = 0

    def _p(self, e):
        lim = self._e_lim_p
        if e > lim:
            e = lim
        elif e < -lim:
            e = -lim
        return self.kp_ppm_per_c * e // 100

    def _d(self):
        r = self._rate_q
        lim = self._rate_lim_q
        if r > lim:
            r = lim
        elif r < -lim:
            r = -lim
        return -(self.kd_ppm_s_per_c * r // _RATE_Q_PER_C_S)

    def _clamp_out(self, out):
        if out > self.out_max_ppm:
            return self.out_max_ppm
        if out < self.out_min_ppm:
            return self.out_min_ppm
        return out

    def update(self, setpoint_c_x100, temp_c_x100, dt_ms):
        """One control tick: returns duty_ppm. Allocation-free; dt_ms is the time since the
        previous update (the first call after reset() only primes the derivative)."""
        if dt_ms < 0:
            dt_ms = 0
        elif dt_ms > _DT_MAX_MS:
            dt_ms = _DT_MAX_MS
        e = setpoint_c_x100 - temp_c_x100
        if e > _E_MAX:
            e = _E_MAX
        elif e < -_E_MAX:
            e = -_E_MAX
        self._last_e = e

        if self._primed:
            if dt_ms > 0:
                dm = temp_c_x100 - self._prev_temp
                if dm > _DM_MAX:
                    dm = _DM_MAX
                elif dm < -_DM_MAX:
                    dm = -_DM_MAX
                raw_q = dm * _RATE_NUM // dt_ms
                if raw_q > _RATE_RAW_MAX_Q:
                    raw_q = _RATE_RAW_MAX_Q
                elif raw_q < -_RATE_RAW_MAX_Q:
                    raw_q = -_RATE_RAW_MAX_Q
                alpha = (dt_ms << _ALPHA_SHIFT) // (self.d_filter_ms + dt_ms)
                self._rate_q += ((raw_q - self._rate_q) * alpha + _ALPHA_ROUND) >> _ALPHA_SHIFT
        else:
            self._primed = 1
            self._rate_q = 0
        self._prev_temp = temp_c_x100

        p = self._p(e)
        d = self._d()
        ki = self.ki_ppm_per_c_s
        i_old = self.i_ppm
        out = p + i_old + d
        if ki:
            t = e * dt_ms + self._frac
            q = t // 1000
            integ = self._integ + q
            if integ > self._i_hi:
                integ = self._i_hi
            elif integ < self._i_lo:
                integ = self._i_lo
            i_new = ki * integ // 100
            out_new = p + i_new + d
            # Conditional integration: refuse an integral step that only digs deeper into
            # saturation; accept it when it moves the output back toward the range.
            if not ((out_new > self.out_max_ppm and q > 0) or (out_new < self.out_min_ppm and q < 0)):
                self._integ = integ
                self._frac = t - q * 1000
                self.i_ppm = i_new
                out = out_new
        self.p_ppm = p
        self.d_ppm = d
        out = self._clamp_out(out)
        self.out_ppm = out
        return out
