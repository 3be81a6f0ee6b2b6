# Relay autotune (Astrom-Hagglund), in the spirit of Klipper's pid_calibrate.
#
# The heater is switched between bias + d and bias - d (d = relay_amplitude_ppm) whenever the
# reading leaves the band setpoint +- hysteresis. The loop then oscillates at the frequency
# where the plant's phase lag is ~180 deg; from the oscillation's half peak-to-peak amplitude a
# and period Tu the describing function gives the ultimate gain Ku = 4 d / (pi a).
# (The hysteresis adds phase lag, so this Ku is slightly conservative; the Tyreus-Luyben rule
# below is conservative too, which is what an oven that must not overshoot wants.)
#
# Gain rules (result in Pid units, see pid.py):
#   RULE_TYREUS_LUYBEN (default): Kp = Ku / 2.2, Ti = 2.2 Tu, Td = Tu / 6.3
#   RULE_ZN_NO_OVERSHOOT:         Kp = 0.2 Ku,   Ti = 0.5 Tu, Td = Tu / 3
#
# update() is the per-tick path: small ints only, no allocation. Long integers appear only in
# gains(), which runs once after the measurement.
from micropython import const

from oven.core.fixedpt import ticks_diff

_PPM_MAX = const(1_000_000)
_TICKS_HALF = const(0x20000000)
_SKIP_CYCLES = const(1)        # >= 1: the first cycle starts from an arbitrary state, not periodic yet

RULE_TYREUS_LUYBEN = const(0)
RULE_ZN_NO_OVERSHOOT = const(1)


class RelayAutotune:
    def __init__(self, setpoint_c_x100, relay_amplitude_ppm, hysteresis_c_x100, cycles,
                 bias_ppm=None, timeout_ms=10_800_000, max_half_period_ms=2_700_000):
        # bias defaults to d: the relay then swings 0 .. 2d, the usual heater-only relay.
        if bias_ppm is None:
            bias_ppm = relay_amplitude_ppm
        if not (0 < relay_amplitude_ppm <= _PPM_MAX and 0 <= bias_ppm <= _PPM_MAX):
            raise ValueError("relay")
        if hysteresis_c_x100 < 0 or not (1 <= cycles <= 100):
            raise ValueError("hysteresis/cycles")
        if not (0 < max_half_period_ms <= timeout_ms < _TICKS_HALF):
            raise ValueError("timeouts")
        self.setpoint_c_x100 = setpoint_c_x100
        self.relay_amplitude_ppm = relay_amplitude_ppm
        self.hysteresis_c_x100 = hysteresis_c_x100
        self.cycles = cycles
        self.timeout_ms = timeout_ms
        self.max_half_period_ms = max_half_period_ms
        self._on_ppm = min(_PPM_MAX, bias_ppm + relay_amplitude_ppm)
        self._off_ppm = max(0, bias_ppm - relay_amplitude_ppm)
        self.done = False
        self.failed = False
        self._started = 0
        self._t0 = 0
        self._t_switch = 0      # last relay switch (either direction)
        self._t_on = 0          # last off->on switch: cycle boundary
        self._n_on = 0          # off->on switches seen
        self._heating = 0
        self._hi = 0            # max reading since the last on->off switch
        self._lo = 0            # min reading since the last off->on switch
        self._last_lo = 0       # min of the previous heating phase
        self._sum_period_ms = 0
        self._sum_p2p_c_x100 = 0
        self.n_cycles = 0
        self.duty_ppm = 0

    def update(self, temp_c_x100, now_ms):
        """One tick: returns the relay duty_ppm (0 once done or failed)."""
        if self.done or self.failed:
            self.duty_ppm = 0
            return 0
        if not self._started:
            self._started = 1
            self._t0 = now_ms
            self._t_switch = now_ms
            self._heating = 1 if temp_c_x100 < self.setpoint_c_x100 else 0
            self._hi = self._lo = temp_c_x100
        if temp_c_x100 > self._hi:
            self._hi = temp_c_x100
        if temp_c_x100 < self._lo:
            self._lo = temp_c_x100
        if self._heating:
            if temp_c_x100 > self.setpoint_c_x100 + self.hysteresis_c_x100:
                self._heating = 0
                self._t_switch = now_ms
                self._last_lo = self._lo
                self._hi = temp_c_x100
        elif temp_c_x100 < self.setpoint_c_x100 - self.hysteresis_c_x100:
            self._heating = 1
            if self._n_on > _SKIP_CYCLES:
                # a full cycle ended: previous heating-phase min .. this cooling-phase max
                self._sum_period_ms += ticks_diff(now_ms, self._t_on)
                self._sum_p2p_c_x100 += self._hi - self._last_lo
                self.n_cycles += 1
            self._n_on += 1
            self._t_on = now_ms
            self._t_switch = now_ms
            self._lo = temp_c_x100
            if self.n_cycles >= self.cycles:
                self.done = True
                self.duty_ppm = 0
                return 0
        if (ticks_diff(now_ms, self._t_switch) > self.max_half_period_ms
                or ticks_diff(now_ms, self._t0) > self.timeout_ms):
            self.failed = True
            self.duty_ppm = 0
            return 0
        self.duty_ppm = self._on_ppm if self._heating else self._off_ppm
        return self.duty_ppm

    def ultimate(self):
        """(Ku_ppm_per_c, Tu_ms, a_c_x100) from the measured cycles; None if not done."""
        if not self.done or self.n_cycles == 0:
            return None
        a2_c_x100 = self._sum_p2p_c_x100  # sum of peak-to-peak = 2 * a * n
        if a2_c_x100 <= 0:
            return None
        n = self.n_cycles
        tu_ms = self._sum_period_ms // n
        # Ku = 4 d / (pi a), a in degC = a2 / (2 n * 100); pi ~ 355/113
        ku = (4 * self.relay_amplitude_ppm * 2 * n * 100 * 113) // (355 * a2_c_x100)
        return ku, tu_ms, a2_c_x100 // (2 * n)

    def gains(self, rule=RULE_TYREUS_LUYBEN):
        """(kp_ppm_per_c, ki_ppm_per_c_s, kd_ppm_s_per_c) for Pid.set_gains(); None if the
        autotune did not complete."""
        u = self.ultimate()
        if u is None:
            return None
        ku, tu_ms, _a = u
        if tu_ms <= 0:
            return None
        if rule == RULE_ZN_NO_OVERSHOOT:
            kp = ku * 2 // 10
            ti_ms = tu_ms // 2
            td_ms = tu_ms // 3
        else:
            kp = ku * 10 // 22
            ti_ms = tu_ms * 22 // 10
            td_ms = tu_ms * 10 // 63
        ki = kp * 1000 // max(1, ti_ms)
        kd = kp * td_ms // 1000
        return kp, ki, kd
