# Heater, vacuum and load-cell supervision (style: Klipper klippy/extras/verify_heater.py).
#
# Every guard is pure logic: the application feeds it the driver status and value each tick and
# acts on the returned fault code (codes.F_*): any fault -> board.outputs_safe(). Faults latch:
# once a guard has returned a fault it keeps returning it until reset(), so a fault that clears
# by itself (an open thermocouple that reconnects) still ends the run.
# check() is allocation-free and keeps every integer within +-2**30.
from micropython import const
from oven.core.fixedpt import ticks_diff
from oven.core.codes import (OK, ST_TC_OPEN, ST_TC_SHORT_GND, ST_TC_SHORT_VCC, ST_TC_RANGE,
                   F_NONE, F_TEMP_MAX, F_TEMP_MIN, F_TC_OPEN, F_TC_SHORT, F_TC_STALE,
                   F_HEAT_GAIN, F_RUNAWAY, F_VACUUM_LOST, F_P_SENSOR, F_LOADCELL)

_TICKS_HALF = const(0x20000000)
_DT_MAX_MS = const(16384)      # caps one integration step: error * dt stays below 2**29
_EXCESS_MAX = const(32767)     # c_x100, same reason
_TEMP_NONE = const(0x3FFFFFFF)  # no reading yet in an off window
_ERR_LIMIT_MAX = const(500_000)  # c_x100*s: limit * 1000 + one step must stay below 2**30


class HeaterGuard:
    """Thermocouple plausibility, staleness, over-temperature cutoff, heating-gain and runaway
    checks for one heater.

    check(now_ms, tc_status, temp_c_x100, setpoint_c_x100, heater_on) -> F_* code:
      tc_status     the thermocouple driver's read() status (codes.ST_* / OK)
      temp_c_x100   its value (ignored unless tc_status == OK)
      setpoint_c_x100  the controller's target; <= 0 means heater disabled (only the absolute
                    checks run, as in Klipper for target 0)
      heater_on     1 while the controller commands a non-zero duty

    Immediate faults (heater off within the same tick): reading above max_temp (F_TEMP_MAX) or
    below min_temp (F_TEMP_MIN), open thermocouple (F_TC_OPEN), short (F_TC_SHORT).
    ST_NOT_READY / ST_NO_DEVICE / ST_TIMEOUT are tolerated until no OK reading for stale_ms
    (F_TC_STALE): one garbled SPI frame must not abort a 6 h run, a dead bus must.
    Runaway / gain (Klipper verify_heater, with the stuck-on case added):
      approaching (below setpoint - hysteresis since the setpoint was set, heater on): the
        reading must gain heating_gain within check_gain_time_ms, else F_HEAT_GAIN (heater dead,
        thermocouple out of the oven);
      settled (has been within the band) and then below the band: the integral of
        (setpoint - hysteresis - temp) over time beyond max_error -> F_RUNAWAY (heater can no
        longer hold the setpoint);
      above setpoint + hysteresis: the integral of the rise beyond heating_gain over the lowest
        reading seen up there beyond max_error -> F_RUNAWAY (heater stuck on). A falling or flat
        temperature above the band (setpoint lowered, natural overshoot) accumulates nothing.
      Inside the band the integral resets.
    Stuck SSR while disabled (setpoint <= 0): a reading that rises more than off_rise_c_x100 above
      the lowest of the current and the previous off_window_ms window -> F_RUNAWAY (ambient drifts
      are 1000x slower); two windows, so detection does not depend on where a boundary falls.
    """

    def __init__(self, max_temp_c_x100=13500, min_temp_c_x100=-1000, stale_ms=3000,
                 hysteresis_c_x100=500, max_error_c_x100_s=12000, check_gain_time_ms=60000,
                 heating_gain_c_x100=200, off_rise_c_x100=100, off_window_ms=30000):
        if not (min_temp_c_x100 < max_temp_c_x100 <= 180000 and min_temp_c_x100 >= -30000):
            raise ValueError("temperature limits")
        if not (0 < max_error_c_x100_s <= _ERR_LIMIT_MAX):
            raise ValueError("max_error_c_x100_s")
        if not (0 < stale_ms < _TICKS_HALF and 0 < check_gain_time_ms < _TICKS_HALF):
            raise ValueError("times")
        if hysteresis_c_x100 < 0 or heating_gain_c_x100 <= 0:
            raise ValueError("hysteresis/gain")
        if not (0 < off_rise_c_x100 <= _EXCESS_MAX and 0 < off_window_ms < _TICKS_HALF):
            raise ValueError("off_rise_c_x100/off_window_ms")
        self.max_temp_c_x100 = max_temp_c_x100
        self.min_temp_c_x100 = min_temp_c_x100
        self.stale_ms = stale_ms
        self.hysteresis_c_x100 = hysteresis_c_x100
        self.max_error_c_x100_s = max_error_c_x100_s
        self.check_gain_time_ms = check_gain_time_ms
        self.heating_gain_c_x100 = heating_gain_c_x100
        self._err_lim = max_error_c_x100_s * 1000   # error integral kept in c_x100 * ms
        self.off_rise_c_x100 = off_rise_c_x100
        self.off_window_ms = off_window_ms
        self._off_ref_ms = 0        # window boundaries run on from construction, not from reset()
        self.reset()

    def reset(self):
        self.fault = F_NONE
        self._started = 0
        self._t_fresh = 0
        self._t_prev = 0
        self._have_prev = 0
        self._sp = 0
        self._settled = 0
        self._above = 0
        self._low = 0
        self.error_c_x100_ms = 0
        self._goal = 0
        self._t_goal = 0
        self._starting = 0
        self._off_min_c_x100 = _TEMP_NONE
        self._off_prev_c_x100 = _TEMP_NONE

    def _arm_gain(self, now_ms, temp_c_x100):
        self._goal = temp_c_x100 + self.heating_gain_c_x100
        self._t_goal = now_ms

    def check(self, now_ms, tc_status, temp_c_x100, setpoint_c_x100, heater_on):
        if self.fault:
            return self.fault
        f = self._check(now_ms, tc_status, temp_c_x100, setpoint_c_x100, heater_on)
        if f:
            self.fault = f
        return f

    def _check(self, now_ms, st, temp, sp, heater_on):
        if not self._started:
            self._started = 1
            self._t_fresh = now_ms
        if st != OK:
            if st == ST_TC_OPEN:
                return F_TC_OPEN
            if st == ST_TC_SHORT_GND or st == ST_TC_SHORT_VCC:
                return F_TC_SHORT
            if st == ST_TC_RANGE:
                return F_TEMP_MAX if temp > self.max_temp_c_x100 else F_TEMP_MIN
            if ticks_diff(now_ms, self._t_fresh) > self.stale_ms:
                return F_TC_STALE
            return F_NONE
        if temp > self.max_temp_c_x100:
            return F_TEMP_MAX
        if temp < self.min_temp_c_x100:
            return F_TEMP_MIN
        self._t_fresh = now_ms

        if self._have_prev:
            dt = ticks_diff(now_ms, self._t_prev)
            if dt < 0:
                dt = 0
            elif dt > _DT_MAX_MS:
                dt = _DT_MAX_MS
        else:
            self._have_prev = 1
            dt = 0
        self._t_prev = now_ms

        if sp <= 0:
            # heater disabled: forget the run-away state so that re-enabling starts afresh
            self._sp = 0
            return self._check_off(now_ms, temp)
        if sp != self._sp:
            # new target: Klipper's "approaching new target"
            self._sp = sp
            self._settled = 0
            self._above = 0
            self.error_c_x100_ms = 0
            self._starting = 1
            self._arm_gain(now_ms, temp)

        hyst = self.hysteresis_c_x100
        if temp > sp + hyst:
            if not self._above:
                self._above = 1
                self._low = temp
                self.error_c_x100_ms = 0
            if temp < self._low:
                self._low = temp
            self._settled = 1
            self._arm_gain(now_ms, temp)
            excess = temp - self._low - self.heating_gain_c_x100
            if excess > 0:
                return self._integrate(excess, dt)
            return F_NONE
        self._above = 0
        if temp >= sp - hyst:
            self._settled = 1
            self.error_c_x100_ms = 0
            self._arm_gain(now_ms, temp)
            return F_NONE
        # below the band
        if self._settled:
            return self._integrate(sp - hyst - temp, dt)
        if not heater_on:
            # no gain can be expected while the controller holds the heater off
            self._arm_gain(now_ms, temp)
            return F_NONE
        if temp >= self._goal:
            self._starting = 0
            self._arm_gain(now_ms, temp)
        elif ticks_diff(now_ms, self._t_goal) >= self.check_gain_time_ms:
            return F_HEAT_GAIN
        elif self._starting and temp + self.heating_gain_c_x100 < self._goal:
            # an initial dip (cold load, door) moves the goal down, not the deadline
            self._goal = temp + self.heating_gain_c_x100
        return F_NONE

    def _check_off(self, now_ms, temp):
        if temp < self._off_min_c_x100:
            self._off_min_c_x100 = temp
        lo = self._off_min_c_x100
        if self._off_prev_c_x100 < lo:
            lo = self._off_prev_c_x100
        if temp - lo > self.off_rise_c_x100:
            return F_RUNAWAY
        if ticks_diff(now_ms, self._off_ref_ms) >= self.off_window_ms:
            self._off_ref_ms = now_ms
            self._off_prev_c_x100 = self._off_min_c_x100
            self._off_min_c_x100 = temp
        return F_NONE

    def _integrate(self, excess, dt):
        if excess > _EXCESS_MAX:
            excess = _EXCESS_MAX
        e = self.error_c_x100_ms + excess * dt
        if e >= self._err_lim:
            self.error_c_x100_ms = self._err_lim
            return F_RUNAWAY
        self.error_c_x100_ms = e
        return F_NONE


class VacuumGuard:
    """Vacuum supervision.

    check(now_ms, p_status, pressure_pa, vacuum_required) -> F_* code:
      F_VACUUM_LOST  vacuum_required and pressure above limit_pa for longer than grace_ms
                     (a brief spike, e.g. outgassing at the start of the soak, is tolerated);
      F_P_SENSOR     no plausible reading (status OK and min_pa <= pressure <= max_pa) for
                     longer than sensor_timeout_ms: an out-of-range transducer (ST_P_RANGE,
                     broken wire) faults after that time, a single ADC glitch does not.
    While the sensor is bad the over-limit timer keeps running from the last good reading.
    """

    def __init__(self, limit_pa=10_000, grace_ms=60_000, min_pa=0, max_pa=130_000,
                 sensor_timeout_ms=2000):
        if not (min_pa <= limit_pa <= max_pa):
            raise ValueError("pressure limits")
        if not (0 <= grace_ms < _TICKS_HALF and 0 <= sensor_timeout_ms < _TICKS_HALF):
            raise ValueError("times")
        self.limit_pa = limit_pa
        self.grace_ms = grace_ms
        self.min_pa = min_pa
        self.max_pa = max_pa
        self.sensor_timeout_ms = sensor_timeout_ms
        self.reset()

    def reset(self):
        self.fault = F_NONE
        self._started = 0
        self._t_good = 0
        self._over = 0
        self._t_over = 0

    def check(self, now_ms, p_status, pressure_pa, vacuum_required):
        if self.fault:
            return self.fault
        if not self._started:
            self._started = 1
            self._t_good = now_ms
        if p_status == OK and self.min_pa <= pressure_pa <= self.max_pa:
            self._t_good = now_ms
            if pressure_pa <= self.limit_pa:
                self._over = 0
            elif not self._over:
                self._over = 1
                self._t_over = now_ms
        elif ticks_diff(now_ms, self._t_good) > self.sensor_timeout_ms:
            self.fault = F_P_SENSOR
            return F_P_SENSOR
        if not vacuum_required:
            self._over = 0
            return F_NONE
        if self._over and ticks_diff(now_ms, self._t_over) > self.grace_ms:
            self.fault = F_VACUUM_LOST
            return F_VACUUM_LOST
        return F_NONE


class LoadcellWatchdog:
    """No valid (status OK) sample on a load-cell channel within timeout_ms -> F_LOADCELL.

    sample(channel, now_ms, status) after every read attempt; check(now_ms) once per tick.
    A railed (ST_LC_RAIL), missing or timed-out channel simply stops refreshing its timer.
    .channel is the first channel found stale (-1 while none). The timers start at the first
    sample() or check() call.
    """

    def __init__(self, n_channels, timeout_ms=2000):
        if not (1 <= n_channels <= 64 and 0 < timeout_ms < _TICKS_HALF):
            raise ValueError("loadcell watchdog")
        self.n_channels = n_channels
        self.timeout_ms = timeout_ms
        self._t = [0] * n_channels
        self.reset()

    def reset(self):
        self.fault = F_NONE
        self.channel = -1
        self._started = 0

    def _start(self, now_ms):
        self._started = 1
        t = self._t
        for i in range(self.n_channels):
            t[i] = now_ms

    def sample(self, channel, now_ms, status):
        if not self._started:
            self._start(now_ms)
        if status == OK:
            self._t[channel] = now_ms

    def check(self, now_ms):
        if self.fault:
            return self.fault
        if not self._started:
            self._start(now_ms)
        t = self._t
        for i in range(self.n_channels):
            if ticks_diff(now_ms, t[i]) > self.timeout_ms:
                self.channel = i
                self.fault = F_LOADCELL
                return F_LOADCELL
        return F_NONE
