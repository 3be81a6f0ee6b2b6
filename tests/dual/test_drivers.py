# Hardware drivers against fake buses that behave as the datasheets say: HX711 (pulse timing,
# power-down, gain by pulse count, sign extension, timeout), MAX31856 and NAU7802 register maps,
# button debouncing, SSR time proportioning and safe outputs; heap-lock proofs of the per-sample
# read paths. Runs under CPython and in the MicroPython VM (docs/CONVENTIONS.md rules).
# Time is a fake clock: every pin call, bus transfer and ticks call costs simulated microseconds,
# so deadlines and pulse widths are measured exactly and nothing sleeps.
from oven.core.codes import (OK, ST_NOT_READY, ST_TIMEOUT, ST_LC_RAIL, ST_NO_DEVICE, ST_TC_OPEN,
                   ST_TC_SHORT_VCC, ST_TC_RANGE, EV_NONE, EV_START, EV_STOP, EV_YES, EV_NO)
from oven.drivers.hx711 import HX711
from oven.drivers.nau7802 import NAU7802
from oven.drivers.max31856 import MAX31856, tc_c_x100, cj_c_x100, status_sr
from oven.drivers.outputs import Relay, HeaterSSR, Outputs
from oven.drivers.inputs import Operator, Debounced

MASK = 0x3FFFFFFF
HALF = 0x20000000


def tdiff(a, b):
    d = (a - b) & MASK
    if d >= HALF:
        d = d - HALF - HALF
    return d


class Clock:
    """Simulated time: t_us (wraps at 2**30 like ticks_us) and ms (wraps like ticks_ms).
    Each ticks call costs step_us. With irq_every > 0, every irq_every-th clock event while
    interrupts are enabled adds irq_us (an interrupt handler running)."""

    def __init__(self, t_us=0, step_us=1):
        self.t = t_us & MASK
        self.ms = 0
        self._frac = 0
        self.step = step_us
        self.irq_on = 1
        self.irq_every = 0
        self.irq_us = 0
        self._n = 0
        self.irqs = 0

    def advance(self, us):
        if self.irq_every and self.irq_on:
            self._n += 1
            if self._n >= self.irq_every:
                self._n = 0
                self.irqs += 1
                us += self.irq_us
        self.t = (self.t + us) & MASK
        f = self._frac + us
        self.ms = (self.ms + f // 1000) & MASK
        self._frac = f % 1000

    def ticks_us(self):
        self.advance(self.step)
        return self.t

    def ticks_ms(self):
        self.advance(self.step)
        return self.ms

    def disable_irq(self):
        s = self.irq_on
        self.irq_on = 0
        return s

    def enable_irq(self, s):
        self.irq_on = s


class Pin:
    def __init__(self, v=0, clock=None, cost_us=0):
        self.v = v
        self.clock = clock
        self.cost = cost_us
        self.writes = 0

    def value(self, v=None):
        if self.clock is not None:
            self.clock.advance(self.cost)
        if v is None:
            return self.v
        self.v = v
        self.writes += 1


# ---------------------------------------------------------------------------------------------
# HX711


class FakeHX711:
    """Datasheet HX711: DOUT low when a conversion is ready; bit k valid after the k-th rising
    PD_SCK edge; the 25th edge pulls DOUT high; 25/26/27 pulses select A/128, B/32, A/64 for the
    conversions after the read; PD_SCK high >= 60 us powers down, low again resets (A/128).
    The first 4 conversions after a reset or gain change are unsettled (value + 77777).
    Records protocol violations in .errors (a count) and .last_error (a code):
    1 high time > 50 us during a read, 2 power-down during a read, 3 pulse while not ready,
    4 wrong pulse count."""

    def __init__(self, clock, period_us=12_500, pin_us=3):
        self.clock = clock
        self.period_us = period_us
        self.pin_us = pin_us
        self.vals = {25: 0, 26: 0, 27: 0}
        self.stall = False
        self.powered = 1
        self.sck = 0
        self.t_rise = 0
        self.max_high_us = 0
        self.errors = 0
        self.last_error = 0
        self.pulses = 0
        self.shifting = 0
        self.ready = 0
        self.data = 0
        self.conv_gain = 25
        self.unsettled = 4
        self.t_next = (clock.t + period_us) & MASK
        self.reads = 0
        self.last_pulses = 0
        self.power_downs = 0
        self.dout = _HXDout(self)
        self.pd_sck = _HXSck(self)

    def _err(self, code):
        self.errors += 1
        self.last_error = code

    def _update(self):
        if not self.powered or self.stall or self.sck:
            return
        if tdiff(self.clock.t, self.t_next) >= 0:
            if self.shifting:
                self._finish()
            v = self.vals[self.conv_gain]
            if self.unsettled:
                self.unsettled -= 1
                v += 77777
            self.data = v & 0xFFFFFF
            self.ready = 1
            self.t_next = (self.t_next + self.period_us) & MASK
            if tdiff(self.clock.t, self.t_next) >= 0:
                self.t_next = (self.clock.t + self.period_us) & MASK

    def _finish(self):
        n = self.pulses
        self.shifting = 0
        self.last_pulses = n
        self.reads += 1
        if n < 25 or n > 27:
            self._err(4)
        elif n != self.conv_gain:
            self.conv_gain = n
            self.unsettled = 4

    def finish(self):
        """End the current read now (tests inspect last_pulses)."""
        if self.shifting:
            self._finish()

    def dout_value(self):
        self.clock.advance(self.pin_us)
        self._update()
        if not self.powered or self.held_down():
            return 1
        if self.shifting:
            n = self.pulses
            if 1 <= n <= 24:
                return (self.data >> (24 - n)) & 1
            return 1
        return 0 if self.ready else 1

    def sck_value(self, v):
        self.clock.advance(self.pin_us)
        if v and not self.sck:
            self.sck = 1
            self.t_rise = self.clock.t
            if not self.powered:
                return
            if self.ready and not self.shifting:
                self.shifting = 1
                self.ready = 0
                self.pulses = 0
            if self.shifting:
                self.pulses += 1
        elif not v and self.sck:
            self.sck = 0
            high = tdiff(self.clock.t, self.t_rise)
            if high > self.max_high_us and self.powered:
                self.max_high_us = high
            if high >= 60:
                if self.shifting:
                    if self.pulses > 25:
                        # a power-down pulse after a complete read: the read ended before it
                        self.pulses -= 1
                        self._finish()
                    else:
                        self._err(2)
                if self.powered:
                    self.power_downs += 1
                # power down, then PD_SCK low: reset and restart at A/128
                self.shifting = 0
                self.ready = 0
                self.powered = 1
                self.conv_gain = 25
                self.unsettled = 4
                self.t_next = (self.clock.t + self.period_us) & MASK
            elif not self.shifting:
                self._err(3)
            elif high > 50:
                self._err(1)
            self._update()

    def held_down(self):
        return self.sck and tdiff(self.clock.t, self.t_rise) >= 60


class _HXDout:
    def __init__(self, chip):
        self.chip = chip

    def value(self, v=None):
        return self.chip.dout_value()


class _HXSck:
    def __init__(self, chip):
        self.chip = chip

    def value(self, v=None):
        if v is None:
            return self.chip.sck
        self.chip.sck_value(v)


def _hx(gain=128, irq=True, t0=0, **kw):
    # RATE pin high: 80 SPS; a Pin call costs 3 us, a ticks_us call 2 us
    c = Clock(t0, 2)
    f = FakeHX711(c)
    kw.setdefault("timeout_us", 20_000)
    if irq:
        d = HX711(f.dout, f.pd_sck, gain=gain, ticks_us=c.ticks_us, ticks_diff=tdiff,
                  disable_irq=c.disable_irq, enable_irq=c.enable_irq, **kw)
    else:
        d = HX711(f.dout, f.pd_sck, gain=gain, ticks_us=c.ticks_us, ticks_diff=tdiff, **kw)
    return c, f, d


def _hx_settled(d, n=5):
    sts = []
    for _ in range(n):
        sts.append(d.read())
    return sts


def test_hx711_reads_after_settling_with_short_pulses():
    c, f, d = _hx()
    f.vals[25] = 123456
    sts = _hx_settled(d, 5)
    assert sts == [ST_NOT_READY] * 5, sts
    assert d.read() == OK and d.raw == 123456
    assert f.errors == 0 and f.max_high_us < 50 and f.power_downs == 0
    f.finish()
    assert f.last_pulses == 25


def test_hx711_waits_for_dout_low():
    c, f, d = _hx()
    _hx_settled(d)
    assert not d.ready()
    t0 = c.t
    left = tdiff(f.t_next, c.t)
    assert 0 < left <= f.period_us
    assert d.read() == OK
    waited = tdiff(c.t, t0)
    assert left <= waited <= left + 500, (left, waited)   # the wait, then 25 pulses
    # data ready: ready() is true and read() does not wait
    c.advance(f.period_us)
    assert d.ready()
    t0 = c.t
    assert d.read() == OK
    assert tdiff(c.t, t0) < 1000      # 25 pulses, no wait


def test_hx711_sign_extension_and_rails():
    c, f, d = _hx()
    _hx_settled(d)
    for v in (0, 1, -1, 0x7FFFFE, -0x7FFFFF, -2, 0x400000, -0x400000, -123456):
        f.vals[25] = v
        assert d.read() == OK and d.raw == v, (v, d.raw)
    f.vals[25] = 0x7FFFFF
    assert d.read() == ST_LC_RAIL and d.raw == 0x7FFFFF
    f.vals[25] = -0x800000
    assert d.read() == ST_LC_RAIL and d.raw == -0x800000
    assert f.errors == 0


def test_hx711_gain_by_pulse_count():
    for gain, pulses in ((128, 25), (32, 26), (64, 27)):
        c, f, d = _hx(gain)
        f.vals[25] = 1000
        f.vals[26] = 2000
        f.vals[27] = 3000
        sts = _hx_settled(d, 6)
        assert sts[-1] == OK, (gain, sts)
        f.finish()
        assert f.last_pulses == pulses and f.conv_gain == pulses, (gain, f.last_pulses)
        assert d.raw == {25: 1000, 26: 2000, 27: 3000}[pulses]
        assert f.errors == 0


def test_hx711_gain_change_drops_settling_reads():
    c, f, d = _hx(128)
    f.vals[25] = 500
    f.vals[26] = -700
    _hx_settled(d)
    assert d.read() == OK and d.raw == 500
    d.set_gain(32)
    sts = _hx_settled(d, 5)
    assert sts == [ST_NOT_READY] * 5, sts
    assert d.read() == OK and d.raw == -700
    f.finish()
    assert f.last_pulses == 26 and f.errors == 0
    try:
        d.set_gain(16)
        assert False
    except ValueError:
        pass


def test_hx711_timeout():
    c, f, d = _hx(timeout_us=30_000)
    _hx_settled(d)
    f.stall = True
    t0 = c.t
    assert d.read() == ST_TIMEOUT and d.status == ST_TIMEOUT
    waited = tdiff(c.t, t0)
    assert 30_000 <= waited <= 30_010, waited
    assert f.errors == 0


def test_hx711_deadline_across_ticks_wrap():
    c, f, d = _hx(t0=MASK - 20_000)
    f.vals[25] = 42
    sts = _hx_settled(d, 6)
    assert sts[-1] == OK and d.raw == 42
    assert c.t < 0x100000
    f.stall = True
    assert d.read() == ST_TIMEOUT


def test_hx711_power_down_and_up():
    c, f, d = _hx()
    f.vals[25] = 9
    _hx_settled(d)
    assert d.read() == OK
    d.power_down()
    assert f.held_down()
    assert not d.ready() and d.read() == ST_NOT_READY
    d.power_up()
    assert f.power_downs == 1 and f.errors == 0
    sts = _hx_settled(d, 5)
    assert sts == [ST_NOT_READY] * 5
    assert d.read() == OK and d.raw == 9


def test_hx711_critical_sections_keep_pulses_short_under_interrupts():
    # an interrupt of 100 us every 5 clock events: only possible between pulses
    c, f, d = _hx()
    c.irq_every = 5
    c.irq_us = 100
    f.vals[25] = -5555
    sts = _hx_settled(d, 8)
    assert sts[-1] == OK and d.raw == -5555
    assert c.irqs > 50 and f.errors == 0 and f.max_high_us < 50 and f.power_downs == 0


def test_hx711_stretched_pulse_detected_without_irq_control():
    # no disable_irq: interrupts land inside pulses, the chip powers down mid-read (the fake
    # records it) and the driver drops the sample instead of returning a corrupt value
    c, f, d = _hx(irq=False)
    c.irq_every = 5
    c.irq_us = 100
    f.vals[25] = 777
    ok = 0
    bad = 0
    for _ in range(20):
        st = d.read()
        if st == OK:
            ok += 1
            if d.raw != 777:
                bad += 1
    assert f.errors > 0 and f.power_downs > 0
    assert bad == 0


def test_hx711_dout_stuck_low_is_no_device():
    c = Clock()
    dout = Pin(0, c, 2)
    sck = Pin(0, c, 2)
    d = HX711(dout, sck, ticks_us=c.ticks_us, ticks_diff=tdiff)
    assert d.ready()
    assert d.read() == ST_NO_DEVICE


def test_heap_lock_hx711_read():
    import micropython
    c, f, d = _hx()
    f.vals[25] = -300000
    _hx_settled(d, 6)
    sts = [0, 0, 0, 0, 0, 0]
    raws = [0, 0, 0, 0, 0, 0]
    i = 0
    micropython.heap_lock()
    try:
        while i < 6:
            sts[i] = d.read()
            raws[i] = d.raw
            i += 1
    finally:
        micropython.heap_unlock()
    assert sts == [OK] * 6 and raws == [-300000] * 6 and f.errors == 0


# ---------------------------------------------------------------------------------------------
# MAX31856


class FakeMAX31856:
    """Register map of a MAX31856 on a mode-1/3 SPI bus: address byte (bit 7 = write), then data
    with auto-increment; writing CR0 with 1SHOT starts a conversion when CS goes high, 1SHOT
    self-clears conv_us later; auto mode (CMODE) converts every 100 ms; DRDY low while fresh
    results are unread. World state: temp_x128 (1/128 degC), cj_x64, open (needs OCFAULT),
    sr_force (fault bits), hang (conversions never finish)."""

    DEFAULTS = (0x00, 0x03, 0xFF, 0x7F, 0xC0, 0x7F, 0xFF, 0x80, 0x00, 0x00, 0, 0, 0, 0, 0, 0)

    def __init__(self, clock, conv_us=200_000, xfer_us=40):
        self.clock = clock
        self.conv_us = conv_us
        self.xfer_us = xfer_us
        self.regs = bytearray(self.DEFAULTS)
        self.temp_x128 = 0
        self.cj_x64 = 0
        self.open = False
        self.sr_force = 0
        self.hang = False
        self.dead = 0          # 0: alive; 1: MISO stuck low; 2: MISO stuck high
        self.selected = 0
        self.shot_req = 0
        self.busy = 0
        self.t_done = 0
        self.fresh = 0
        self.t_auto = 0
        self.conversions = 0
        self.errors = 0
        self.cs = _CsPin(self)
        self.drdy = _DrdyPin(self)

    def _latch(self):
        r = self.regs
        sr = self.sr_force
        if self.open and (r[0] & 0x30):
            sr |= 0x01
        w = (self.temp_x128 & 0x7FFFF) << 5
        r[12] = (w >> 16) & 0xFF
        r[13] = (w >> 8) & 0xFF
        r[14] = w & 0xFF
        cj = (self.cj_x64 & 0x3FFF) << 2
        r[10] = cj >> 8
        r[11] = cj & 0xFF
        r[15] = sr
        self.fresh = 1
        self.conversions += 1

    def _update(self):
        now = self.clock.t
        if self.busy and not self.hang and tdiff(now, self.t_done) >= 0:
            self.busy = 0
            self.regs[0] &= 0xBF
            self._latch()
        if (self.regs[0] & 0x80) and not self.hang and tdiff(now, self.t_auto) >= 0:
            self._latch()
            self.t_auto = (self.t_auto + 100_000) & MASK

    def cs_value(self, v):
        self.clock.advance(2)
        if v == 0:
            self.selected = 1
            return
        if self.selected and self.shot_req:
            self.shot_req = 0
            if not (self.regs[0] & 0x80):
                self.busy = 1
                self.t_done = (self.clock.t + self.conv_us) & MASK
        self.selected = 0

    def write(self, buf):
        self.write_readinto(buf, None)

    def write_readinto(self, tx, rx):
        if not self.selected:
            self.errors += 1
        n = len(tx)
        self.clock.advance(self.xfer_us + 8 * n)
        self._update()
        a = tx[0]
        reg = a & 0x7F
        if a & 0x80:
            i = 1
            while i < n:
                k = (reg + i - 1) & 0x0F
                if k == 0:
                    was = self.regs[0]
                    v = tx[i] & 0xFD
                    if v & 0x40:
                        self.shot_req = 1
                    if (v & 0x80) and not (was & 0x80):
                        self.t_auto = (self.clock.t + self.conv_us) & MASK
                    self.regs[0] = v
                elif k < 0x0C:
                    self.regs[k] = tx[i]
                i += 1
        if rx is not None:
            i = 0
            while i < n:
                if self.dead == 1:
                    rx[i] = 0
                elif self.dead == 2 or i == 0:
                    rx[i] = 0xFF
                else:
                    k = (reg + i - 1) & 0x0F
                    rx[i] = self.regs[k]
                    if k == 0x0E:
                        self.fresh = 0
                i += 1


class _CsPin:
    def __init__(self, chip):
        self.chip = chip
        self.v = 1

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
        self.chip.cs_value(v)


class _DrdyPin:
    def __init__(self, chip):
        self.chip = chip

    def value(self, v=None):
        self.chip.clock.advance(2)
        self.chip._update()
        return 0 if self.chip.fresh else 1


def _tc(**kw):
    c = Clock(0, 10)
    f = FakeMAX31856(c)
    d = MAX31856(f, f.cs, ticks_ms=c.ticks_ms, ticks_diff=tdiff, **kw)
    return c, f, d


def test_max31856_configuration_written():
    c, f, d = _tc()
    assert f.regs[0] == 0x11 and f.regs[1] == 0x03, (f.regs[0], f.regs[1])
    c, f, d = _tc(filter_hz=60, avg=4, ocfault=2)
    assert f.regs[0] == 0x20 and f.regs[1] == 0x23
    c, f, d = _tc(oneshot=False)
    assert f.regs[0] == 0x91
    for bad in ({"avg": 3}, {"filter_hz": 55}, {"ocfault": 4}):
        try:
            _tc(**bad)
            assert False, bad
        except ValueError:
            pass
    assert f.errors == 0


def test_max31856_one_shot_read_temperature_and_cold_junction():
    c, f, d = _tc()
    f.temp_x128 = 120 * 128 + 32       # 120.25 degC
    f.cj_x64 = 25 * 64 + 8             # 25.125 degC
    t0 = c.ms
    assert d.read() == OK
    took = tdiff(c.ms, t0)
    assert 200 <= took <= 205, took
    assert d.temp_c_x100 == 12025 and d.cj_c_x100 == 2512   # 2512.5 -> even
    assert f.busy == 1                  # the next conversion runs between reads
    c.advance(1_000_000)
    f.temp_x128 = -(10 * 128 + 1)       # -10.0078125 degC -> -1000.78 -> -1001
    f.cj_x64 = -64
    t0 = c.ms
    assert d.read() == OK
    assert tdiff(c.ms, t0) <= 2
    assert d.temp_c_x100 == -1001 and d.cj_c_x100 == -100
    assert f.errors == 0 and f.conversions == 2


def test_max31856_rounding_half_to_even():
    cases = ((16, 12), (48, 38), (-16, -12), (-48, -38), (1, 1), (-1, -1), (15360, 12000),
             (0x3FFFF, 204799), (-0x40000, -204800))
    for v, want in cases:
        w = (v & 0x7FFFF) << 5
        got = tc_c_x100(w >> 16, (w >> 8) & 0xFF, w & 0xFF)
        assert got == want, (v, got, want)
    v = -3000
    while v <= 3000:
        w = (v & 0x7FFFF) << 5
        q = tc_c_x100(w >> 16, (w >> 8) & 0xFF, w & 0xFF)
        e = v * 25 - 32 * q
        assert -16 <= e <= 16 and (abs(e) != 16 or q % 2 == 0), (v, q)
        cj = (v & 0x3FFF) << 2
        q = cj_c_x100(cj >> 8, cj & 0xFF)
        e = v * 25 - 16 * q
        assert -8 <= e <= 8 and (abs(e) != 8 or q % 2 == 0), (v, q)
        v += 1


def test_max31856_fault_bits():
    expect = ((0x01, ST_TC_OPEN), (0x02, ST_TC_SHORT_VCC), (0x04, ST_TC_RANGE),
              (0x08, ST_TC_RANGE), (0x10, ST_TC_RANGE), (0x20, ST_TC_RANGE),
              (0x40, ST_TC_RANGE), (0x80, ST_TC_RANGE), (0x03, ST_TC_OPEN), (0xC2, ST_TC_SHORT_VCC))
    for bits, st in expect:
        assert status_sr(bits) == st
        c, f, d = _tc()
        f.temp_x128 = 100 * 128
        assert d.read() == OK and d.temp_c_x100 == 10000
        f.sr_force = bits
        f.temp_x128 = 300 * 128
        c.advance(1_000_000)
        assert d.read() == st and d.sr == bits, (bits, d.sr)
        assert d.temp_c_x100 == 10000   # last good value kept
        f.sr_force = 0
        c.advance(1_000_000)
        assert d.read() == OK and d.temp_c_x100 == 30000 and d.sr == 0
    assert status_sr(0) == OK


def test_max31856_open_circuit_needs_open_detection_enabled():
    c, f, d = _tc()
    f.open = True
    assert d.read() == ST_TC_OPEN
    c, f, d = _tc(ocfault=0)
    f.open = True
    assert d.read() == OK          # the chip cannot see it: why the default enables it


def test_max31856_conversion_timeout():
    c, f, d = _tc()
    f.hang = True
    t0 = c.ms
    assert d.read() == ST_TIMEOUT
    took = tdiff(c.ms, t0)
    assert d.timeout_ms <= took <= d.timeout_ms + 2, (took, d.timeout_ms)
    assert 300 <= d.timeout_ms <= 400
    f.hang = False
    c.advance(1_000_000)
    assert d.read() == OK


def test_max31856_bus_faults_are_no_device_and_reconfigure():
    c, f, d = _tc(avg=2)
    assert d.read() == OK
    for dead in (1, 2):
        f.dead = dead
        c.advance(1_000_000)
        t0 = c.ms
        assert d.read() == ST_NO_DEVICE
        assert tdiff(c.ms, t0) < 5
    f.dead = 0
    c.advance(1_000_000)
    assert d.read() == OK
    f.regs[1] = 0x03        # chip reset (brown-out): power-on defaults, averaging lost
    c.advance(1_000_000)
    assert d.read() == ST_NO_DEVICE
    assert f.regs[1] == 0x13 and (f.regs[0] & 0xBD) == 0x11
    assert d.read() == OK


def test_max31856_auto_mode_with_drdy():
    c = Clock(0, 10)
    f = FakeMAX31856(c)
    d = MAX31856(f, f.cs, drdy=f.drdy, oneshot=False, ticks_ms=c.ticks_ms, ticks_diff=tdiff)
    f.temp_x128 = 50 * 128
    t0 = c.ms
    assert d.read() == OK and d.temp_c_x100 == 5000
    assert 200 <= tdiff(c.ms, t0) <= 205
    t0 = c.ms
    assert d.read() == OK
    assert 95 <= tdiff(c.ms, t0) <= 101
    f.hang = True
    t0 = c.ms
    assert d.read() == ST_TIMEOUT
    assert d.timeout_ms <= tdiff(c.ms, t0) <= d.timeout_ms + 2


def test_heap_lock_max31856_read():
    import micropython
    c, f, d = _tc()
    f.temp_x128 = 119 * 128 + 77
    f.cj_x64 = 30 * 64
    d.read()
    sts = [0, 0, 0, 0]
    i = 0
    micropython.heap_lock()
    try:
        while i < 4:
            c.advance(1_000_000)
            sts[i] = d.read()
            i += 1
        f.hang = True
        c.advance(1_000_000)
        d.read()
        st_hang = d.read()
    finally:
        micropython.heap_unlock()
    assert sts == [OK] * 4 and st_hang == ST_TIMEOUT
    assert d.temp_c_x100 == 11960 and d.cj_c_x100 == 3000   # 119.6015625 -> 11960


# ---------------------------------------------------------------------------------------------
# NAU7802


class FakeNAU7802:
    """NAU7802 register map on an I2C bus: RR resets the registers; PUR follows PUD after
    pur_us; conversions run while PUD, PUA, CS and PUR are set, at the CRS rate, setting CR and
    ADCO; reading ADCO clears CR; CALS clears cal_us after it is written, with CAL_ERR if
    cal_err; cal_hang keeps CALS set. Reading ADCO without CR counts in .errors."""

    def __init__(self, clock, addr=0x2A):
        self.clock = clock
        self.addr = addr
        self.regs = bytearray(32)
        self.rev = 0x0F
        self.regs[0x1F] = self.rev
        self.value = 0
        self.cal_err = False
        self.cal_hang = False
        self.cal_us = 60_000
        self.pur_us = 200
        self.t_pur = 0
        self.cal = 0
        self.t_cal = 0
        self.t_next = 0
        self.running = 0
        self.errors = 0
        self.cals = 0
        self.conversions = 0

    PERIODS_US = (100_000, 50_000, 25_000, 12_500, 0, 0, 0, 3_125)   # by CRS

    def _period_us(self):
        return self.PERIODS_US[(self.regs[2] >> 4) & 7]

    def _update(self):
        r = self.regs
        now = self.clock.t
        if (r[0] & 0x03) == 0x02 and not (r[0] & 0x08) and tdiff(now, self.t_pur) >= 0:
            r[0] |= 0x08
        if self.cal and not self.cal_hang and tdiff(now, self.t_cal) >= 0:
            self.cal = 0
            r[2] &= 0xFB
            if self.cal_err:
                r[2] |= 0x08
            self.t_next = (now + self._period_us()) & MASK
        run = (r[0] & 0x1E) == 0x1E and not self.cal
        if run and not self.running:
            self.t_next = (now + self._period_us()) & MASK
        self.running = run
        if run and tdiff(now, self.t_next) >= 0:
            v = self.value & 0xFFFFFF
            r[0x12] = v >> 16
            r[0x13] = (v >> 8) & 0xFF
            r[0x14] = v & 0xFF
            r[0] |= 0x20
            self.conversions += 1
            p = self._period_us()
            self.t_next = (self.t_next + p) & MASK
            if tdiff(now, self.t_next) >= 0:
                self.t_next = (now + p) & MASK

    def readfrom_mem_into(self, addr, reg, buf):
        if addr != self.addr:
            raise OSError(19)
        n = len(buf)
        self.clock.advance(100 + 25 * n)
        self._update()
        i = 0
        while i < n:
            k = reg + i
            if k == 0x12 and not (self.regs[0] & 0x20):
                self.errors += 1
            buf[i] = self.regs[k]
            if k == 0x14:
                self.regs[0] &= 0xDF
            i += 1

    def writeto_mem(self, addr, reg, buf):
        if addr != self.addr:
            raise OSError(19)
        self.clock.advance(100 + 25 * len(buf))
        self._update()
        v = buf[0]
        r = self.regs
        if reg == 0:
            if v & 0x01:
                r[:] = bytearray(32)
                r[0x1F] = self.rev
                r[0] = 0x01
                return
            if (v & 0x02) and not (r[0] & 0x02):
                self.t_pur = (self.clock.t + self.pur_us) & MASK
            r[0] = (v & 0xD7) | (r[0] & 0x28 if v & 0x02 else 0)
        elif reg == 2:
            r[2] = (v & 0xF7) | (r[2] & 0x08 if not (v & 0x04) else 0)
            if v & 0x04:
                self.cal = 1
                self.cals += 1
                self.t_cal = (self.clock.t + self.cal_us) & MASK
                r[0] &= 0xDF
        elif reg < 0x12 or reg > 0x14:
            r[reg] = v
        self._update()


def _nau(**kw):
    c = Clock(0, 5)
    f = FakeNAU7802(c)
    d = NAU7802(f, ticks_ms=c.ticks_ms, ticks_diff=tdiff, **kw)
    return c, f, d


def test_nau7802_power_up_configuration_and_calibration():
    c, f, d = _nau(gain=128, rate_sps=80, ldo_mv=3300)
    assert d.begin() == OK and d.status == OK
    r = f.regs
    assert (r[0] & 0xDF) == 0x9E, hex(r[0])          # AVDDS CS PUR PUA PUD
    assert r[1] == (4 << 3) | 7, hex(r[1])          # VLDO 3.3 V, gain 128
    assert (r[2] >> 4) & 7 == 3 and not (r[2] & 0x80)   # 80 SPS, channel 1
    assert r[0x15] == 0x30 and r[0x1C] & 0x80
    assert f.cals == 1 and not (r[2] & 0x0C)


def test_nau7802_options():
    c, f, d = _nau(gain=1, rate_sps=320, ldo_mv=None, channel=2)
    assert d.begin() == OK
    r = f.regs
    assert not (r[0] & 0x80) and r[1] == 0 and (r[2] >> 4) & 7 == 7 and r[2] & 0x80
    assert not (r[0x1C] & 0x80)
    c, f, d = _nau(ldo_mv=2400)
    assert d.begin() == OK and (f.regs[1] >> 3) & 7 == 7
    for bad in ({"gain": 3}, {"rate_sps": 30}, {"ldo_mv": 3400}, {"channel": 3}):
        try:
            _nau(**bad)
            assert False, bad
        except ValueError:
            pass


def test_nau7802_cal_error_and_timeout():
    c, f, d = _nau()
    f.cal_err = True
    assert d.begin() == ST_NO_DEVICE
    c, f, d = _nau()
    f.cal_hang = True
    t0 = c.ms
    assert d.begin() == ST_TIMEOUT
    took = tdiff(c.ms, t0)
    assert d.cal_timeout_ms <= took <= d.cal_timeout_ms + 5, (took, d.cal_timeout_ms)
    f.cal_hang = False
    f.cal_err = False
    assert d.calibrate() == OK


def test_nau7802_absent_or_wrong_device():
    c = Clock(0, 5)
    f = FakeNAU7802(c, addr=0x2B)
    d = NAU7802(f, ticks_ms=c.ticks_ms, ticks_diff=tdiff)
    assert d.begin() == ST_NO_DEVICE
    assert not d.ready() and d.read() == ST_NO_DEVICE
    c, f, d = _nau()
    f.pur_us = 10_000_000
    assert d.begin() == ST_TIMEOUT
    c, f, d = _nau()
    f.rev = 0x00
    assert d.begin() == ST_NO_DEVICE


def test_nau7802_data_ready_and_negative_values():
    c, f, d = _nau(rate_sps=80)
    assert d.begin() == OK
    f.value = -1234567
    sts = [d.read() for _ in range(4)]
    assert sts == [ST_NOT_READY] * 4, sts
    assert d.read() == OK and d.raw == -1234567
    assert not d.ready()
    c.advance(13_000)
    assert d.ready()
    assert d.read() == OK and d.raw == -1234567     # latched before the change below
    for v in (0, 1, -1, 0x7FFFFE, -0x7FFFFF):
        f.value = v
        assert d.read() == OK and d.raw == v, (v, d.raw)
    f.value = 0x7FFFFF
    assert d.read() == ST_LC_RAIL
    f.value = -0x800000
    assert d.read() == ST_LC_RAIL and d.raw == -0x800000
    assert f.errors == 0


def test_nau7802_read_waits_then_times_out():
    c, f, d = _nau(rate_sps=10)
    assert d.begin() == OK
    t0 = c.t
    d.read()
    assert 50_000 < tdiff(c.t, t0) <= 101_000
    f.regs[0] &= 0xEF        # CS cleared behind the driver's back: no more conversions
    t0 = c.ms
    assert d.read() == ST_TIMEOUT
    assert d.timeout_ms <= tdiff(c.ms, t0) <= d.timeout_ms + 2
    f.regs[0] = 0x00         # power lost: PUR gone
    assert d.read() == ST_NO_DEVICE


def test_heap_lock_nau7802_read():
    import micropython
    c, f, d = _nau(rate_sps=320)
    assert d.begin() == OK
    f.value = -4000000
    for _ in range(5):
        d.read()
    sts = [0, 0, 0, 0, 0, 0]
    i = 0
    micropython.heap_lock()
    try:
        while i < 6:
            sts[i] = d.read()
            i += 1
        rdy = d.ready()
    finally:
        micropython.heap_unlock()
    assert sts == [OK] * 6 and d.raw == -4000000 and rdy is False


# ---------------------------------------------------------------------------------------------
# Buttons, door, outputs


class MsClock:
    def __init__(self, t=0):
        self.t = t

    def ticks_ms(self):
        return self.t


def _operator(stable_ms=30, scan_in_poll=True):
    k = MsClock()
    pins = [Pin(1), Pin(1), Pin(1), Pin(1)]
    door = Pin(1)
    op = Operator(((pins[0], EV_START), (pins[1], EV_STOP), (pins[2], EV_YES), (pins[3], EV_NO)),
                  door=door, stable_ms=stable_ms, ticks_ms=k.ticks_ms, ticks_diff=tdiff,
                  scan_in_poll=scan_in_poll)
    return k, pins, door, op


def _run(k, op, pin, levels, step_ms=1):
    evs = []
    for lv in levels:
        if lv is not None:
            pin.v = lv
        k.t = (k.t + step_ms) & MASK
        ev = op.poll()
        if ev != EV_NONE:
            evs.append(ev)
    return evs


def test_debounce_bouncing_press_gives_one_event():
    k, pins, door, op = _operator()
    bounce = [0, 1, 0, 1, 0, 0, 1, 0, 1, 0]
    evs = _run(k, op, pins[0], bounce + [0] * 40)
    assert evs == [EV_START], evs
    # release with bounces, then press again
    evs = _run(k, op, pins[0], [1, 0, 1, 1, 0, 1] + [1] * 40 + [0] * 40)
    assert evs == [EV_START]
    assert op.buttons[0].state == 1


def test_debounce_rejects_glitches_shorter_than_stable_time():
    k, pins, door, op = _operator()
    evs = _run(k, op, pins[1], [0] * 25 + [1] * 50)
    assert evs == []
    evs = _run(k, op, pins[1], [0] * 31 + [1] * 10)
    assert evs == [EV_STOP]


def test_debounce_each_button_its_event_and_queue():
    k, pins, door, op = _operator(scan_in_poll=False)
    for p in pins:
        p.v = 0
    k.t = 0
    op.scan()
    k.t = 40
    op.scan()
    assert [op.poll() for _ in range(5)] == [EV_START, EV_STOP, EV_YES, EV_NO, EV_NONE]
    # ring of 8 holds 7 events, the rest are dropped
    for n in range(10):
        for p in pins:
            p.v = 1
        k.t += 40
        op.scan(k.t)
        k.t += 40
        op.scan(k.t)
        pins[2].v = 0
        k.t += 40
        op.scan(k.t)
        k.t += 40
        op.scan(k.t)
    evs = []
    while True:
        ev = op.poll()
        if ev == EV_NONE:
            break
        evs.append(ev)
    assert evs == [EV_YES] * 7


def test_prompt_drops_presses_made_before_the_question():
    k, pins, door, op = _operator(scan_in_poll=False)
    pins[2].v = 0
    op.scan(0)
    op.scan(50)
    op.prompt(2, 1)
    assert op.prompt_code == 2 and op.prompt_cell == 1
    assert op.poll() == EV_NONE
    pins[2].v = 1
    op.scan(100)
    op.scan(150)
    pins[3].v = 0
    op.scan(200)
    op.scan(250)
    assert op.poll() == EV_NO


def test_door_switch_debounced():
    k, pins, door, op = _operator()
    assert op.door_closed() == 0
    door.v = 0
    _run(k, op, door, [0] * 10)
    assert op.door_closed() == 0
    _run(k, op, door, [0] * 30)
    assert op.door_closed() == 1
    _run(k, op, door, [1, 0, 1, 0] + [0] * 40)
    assert op.door_closed() == 1
    k2, p2, d2, op2 = _operator()
    op2.door = None
    assert op2.door_closed() == 1
    db = Debounced(Pin(1), active_low=False, stable_ms=5)
    assert db.state == 1


def test_heap_lock_operator_scan():
    import micropython
    k, pins, door, op = _operator(scan_in_poll=False)
    i = 0
    n = 0
    micropython.heap_lock()
    try:
        while i < 400:
            pins[i % 4].v = (i >> 3) & 1
            op.scan(i * 5)
            if op.poll() != EV_NONE:
                n += 1
            i += 1
    finally:
        micropython.heap_unlock()
    assert n > 0


class LogPin:
    def __init__(self, name, log, clock=None):
        self.name = name
        self.log = log
        self.clock = clock
        self.v = -1

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
        self.log.append((self.name, v, self.clock.t if self.clock else 0))


def test_ssr_time_proportioning_from_timer_ticks():
    log = []
    k = MsClock(0)
    pin = LogPin("ssr", log, k)
    h = HeaterSSR(pin, window_ms=2000)
    assert pin.v == 0
    h.set_duty_ppm(250_000)
    on = [0, 0, 0]
    for t in range(0, 6000, 10):
        k.t = t
        h.tick(t)
        if pin.v:
            on[t // 2000] += 10
    assert on == [500, 500, 500], on
    # pin writes only on changes: one on and one off edge per window
    assert len(log) == 1 + 6
    # duty changes take effect within the window; clamped to 0..1e6
    h.set_duty_ppm(2_000_000)
    assert h.duty_ppm == 1_000_000
    h.set_duty_ppm(-5)
    assert h.duty_ppm == 0
    h.set_duty_ppm(750_000)
    on = 0
    for t in range(6000, 8000, 10):
        h.tick(t)
        on += 10 if pin.v else 0
    assert on == 1500
    # tiny duties snap to 0 (zero-cross SSR minimum switch time)
    h.set_duty_ppm(2000)
    for t in range(8000, 10000, 10):
        h.tick(t)
        assert pin.v == 0
    h.set_duty_ppm(500_000)
    h.tick(10000)
    assert pin.v == 1
    h.off()
    assert pin.v == 0 and h.duty_ppm == 0
    h.tick(10010)
    assert pin.v == 0


def test_ssr_active_low_and_relays():
    log = []
    p = LogPin("ssr", log)
    h = HeaterSSR(p, active_low=True)
    assert p.v == 1
    h.set_duty_ppm(1_000_000)
    h.tick(5)
    assert p.v == 0
    h.off()
    assert p.v == 1
    r = Relay(LogPin("pump", log), active_low=True)
    assert r.pin.v == 1 and r.on == 0
    r.set(5)
    assert r.pin.v == 0 and r.on == 1
    r.safe()
    assert r.pin.v == 1 and r.on == 0


def test_outputs_safe_order_and_idempotent():
    log = []
    o = Outputs(HeaterSSR(LogPin("ssr", log)), Relay(LogPin("contactor", log)),
                Relay(LogPin("pump", log)), Relay(LogPin("vent", log)), Relay(LogPin("buzzer", log)))
    o.heater_enable(1)
    o.heater_set_duty_ppm(600_000)
    o.ssr.tick(1)
    o.pump_set(1)
    o.vent_set(1)
    o.buzzer_set(1)
    del log[:]
    o.outputs_safe()
    assert [(n, v) for n, v, _ in log] == [("ssr", 0), ("contactor", 0), ("pump", 0), ("vent", 0)], log
    assert o.ssr.duty_ppm == 0 and o.buzzer.on == 1
    del log[:]
    o.outputs_safe()
    assert [(n, v) for n, v, _ in log] == [("ssr", 0), ("contactor", 0), ("pump", 0), ("vent", 0)]
    o.ssr.tick(2)
    assert o.ssr.pin.v == 0


def test_heap_lock_ssr_tick():
    import micropython
    p = Pin(0)
    h = HeaterSSR(p)
    h.set_duty_ppm(333_333)
    t = 0
    on = 0
    micropython.heap_lock()
    try:
        while t < 20000:
            h.tick(t)
            on += p.v
            t += 10
    finally:
        micropython.heap_unlock()
    assert on == 10 * 67      # 667 ms per 2 s window, sampled every 10 ms
