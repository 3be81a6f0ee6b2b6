# The application's control tick allocates nothing (proof under micropython.heap_lock() in the VM)
# and reacts to faults within the tick. Integer-only fake board: the simulated bench uses floats,
# which allocate on MicroPython, so it cannot serve here.
from array import array

import app
import codes as C
import methods
import runlog


class _Spi:
    def __init__(self):
        self.frame = bytearray(4)

    def set_c(self, temp_c_x100, fault_bits=0):
        t = (temp_c_x100 // 25) & 0x3FFF
        cj = (2300 * 16 // 100) & 0xFFF
        v = (t << 18) | (cj << 4) | fault_bits | ((1 << 16) if fault_bits else 0)
        self.frame[0] = (v >> 24) & 0xFF
        self.frame[1] = (v >> 16) & 0xFF
        self.frame[2] = (v >> 8) & 0xFF
        self.frame[3] = v & 0xFF

    def readinto(self, buf, write=0):
        f = self.frame
        buf[0] = f[0]
        buf[1] = f[1]
        buf[2] = f[2]
        buf[3] = f[3]


class _Pin:
    def value(self, v=None):
        return 1


class _Adc:
    def __init__(self):
        self.u16 = 6554 + 52428 * 3000 // 110000

    def read_u16(self):
        return self.u16


class _Val:
    def __init__(self, v):
        self.temp_c_x100 = v

    def read(self):
        return C.OK


class _Lc:
    def __init__(self):
        self.xs = array("i", [950000 + (i * 37) % 61 - 30 for i in range(64)])
        self.k = 0
        self.raw = 0

    def ready(self):
        return True

    def read(self):
        self.k = (self.k + 1) & 63
        self.raw = self.xs[self.k]
        return C.OK


class _Op:
    def prompt(self, code, cell):
        pass

    def poll(self):
        return C.EV_NONE


class _File:
    def __init__(self):
        self.n = 0
        self.flushes = 0

    def write(self, buf, off=0, n=-1):
        if n < 0:
            n = len(buf) - off
        self.n += n
        return n

    def flush(self):
        self.flushes += 1

    def close(self):
        pass


class FakeBoard:
    name = "fake"
    n_cells = 2

    def __init__(self):
        from max31855 import MAX31855
        from pressure import PressureTransducer
        self.spi = _Spi()
        self.spi.set_c(11975)
        self.tc = MAX31855(self.spi, _Pin())
        self.adc = _Adc()
        self.pressure = PressureTransducer(self.adc, 6554, 6554 + 52428, span_pa=110000)
        self.lc_temp = _Val(3000)
        self.loadcells = [_Lc(), _Lc()]
        self.operator = _Op()
        self.now = 0
        self.duty = 0
        self.safe = 0
        self.feeds = 0

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b

    def wait_until_ms(self, t):
        self.now = t

    def outputs_safe(self):
        self.duty = 0
        self.safe += 1

    def heater_enable(self, on):
        pass

    def heater_set_duty_ppm(self, d):
        self.duty = d

    def pump_set(self, on):
        pass

    def vent_set(self, op):
        pass

    def buzzer_set(self, on):
        pass

    def wdt_feed(self):
        self.feeds += 1


def _blank():
    ch = {"k_num": 20, "k_den": 100, "var_k_num": 1, "var_k_den": 10000, "t_ref_num": 0, "t_ref_den": 1,
          "vac_offset_num": 170, "vac_offset_den": 1}
    return [ch, ch]


def _soaking_controller():
    b = FakeBoard()
    m = methods.validate("gb-2026")
    f = _File()
    log = runlog.RunLog(2)
    log.open("x", {"run": "t"}, opener=lambda p, mode: f)
    c = app.Controller(b, m, blank=_blank(), log=log, counts_per_g=20972)
    c.start()
    for i in range(2):
        c._ref_zero[i] = 50000
        c._c0[i] = 900000
        c._d_div[i] = 900
    c.phase = app.PH_SOAK
    c.setpoint_c_x100 = 12000
    c.in_spec = 1
    for _ in range(30):        # warm-up: first readings, PID state
        c.step()
    return b, c, f


def test_control_tick_allocates_nothing():
    import micropython
    b, c, f = _soaking_controller()
    n_ev = len(c.events)
    ok = 0
    micropython.heap_lock()
    try:
        for _ in range(2000):
            c.step()
        ok = 1
    finally:
        micropython.heap_unlock()
    assert ok
    assert c.phase == app.PH_SOAK and len(c.events) == n_ev
    assert c.soak_in_spec_ms >= 2000000
    assert b.feeds >= 2000
    assert f.flushes >= 200          # synced every 10 s
    assert 0 < b.duty <= 1000000


def test_open_thermocouple_turns_heater_off_in_the_same_tick():
    b, c, f = _soaking_controller()
    assert b.duty > 0
    safe0 = b.safe
    b.spi.set_c(0, fault_bits=1)     # OC
    c.step()
    assert b.safe > safe0 and b.duty == 0
    assert c.phase == app.PH_ABORTED and c.fault == C.F_TC_OPEN
    assert c.final_verdict() == 5    # ABORTED


def test_overtemperature_cutoff():
    b, c, f = _soaking_controller()
    b.spi.set_c(13600)
    c.step()
    assert b.duty == 0 and c.fault == C.F_TEMP_MAX


def test_excursion_extends_the_soak():
    b, c, f = _soaking_controller()
    t0 = c.soak_in_spec_ms
    b.adc.u16 = 6554 + 52428 * 30000 // 110000      # 30 kPa: above the vacuum level
    for _ in range(100):
        c.step()
    assert c.soak_in_spec_ms == t0
    b.adc.u16 = 6554 + 52428 * 3000 // 110000
    for _ in range(100):
        c.step()
    assert c.soak_in_spec_ms == t0 + 100000 - 1000 or c.soak_in_spec_ms == t0 + 100000
    codes = [e[1] for e in c.events]
    assert C.E_EXCURSION_START in codes and C.E_EXCURSION_END in codes
