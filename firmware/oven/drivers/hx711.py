# HX711 24-bit load-cell ADC, bit-banged on injected DOUT/PD_SCK pins. read() -> status, .raw
# (signed 24-bit counts); waits for DOUT until timeout_us, drops settling conversions and any read
# whose pulse overran 50 us. Allocation-free, integers < 2**25. Protocol: docs/MODULES.md "oven.drivers.hx711".
from micropython import const
from oven.core.codes import OK, ST_NOT_READY, ST_TIMEOUT, ST_LC_RAIL, ST_NO_DEVICE

_T_HIGH_MAX_US = const(50)
_T_POWER_DOWN_US = const(80)
_SETTLE = const(4)
_SIGN = const(0x800000)
_WRAP = const(0x1000000)
_RAIL_HI = const(0x7FFFFF)
_RAIL_LO = const(-0x800000)
_PULSES = {128: 25, 32: 26, 64: 27}


def _irq_off():
    return 0


def _irq_on(state):
    pass


class HX711:
    def __init__(self, dout, pd_sck, gain=128, timeout_us=150_000, ticks_us=None, ticks_diff=None,
                 disable_irq=None, enable_irq=None, settle=_SETTLE):
        if ticks_us is None or ticks_diff is None:
            import time
            ticks_us = ticks_us or time.ticks_us
            ticks_diff = ticks_diff or time.ticks_diff
        if not (0 < timeout_us < 0x20000000) or not (0 <= settle <= 100):
            raise ValueError("timeout/settle")
        self._dout = dout
        self._sck = pd_sck
        self._tus = ticks_us
        self._tdiff = ticks_diff
        self._di = disable_irq or _irq_off
        self._ei = enable_irq or _irq_on
        self.timeout_us = timeout_us
        self.settle = settle
        self.raw = 0
        self.status = ST_NOT_READY
        self.gain = 128
        self._pulses = 25
        self.set_gain(gain)
        self.power_up()

    def set_gain(self, gain):
        """128 / 64 (input A) or 32 (input B); the first reads after a change are dropped."""
        n = _PULSES.get(gain)
        if n is None:
            raise ValueError("gain")
        if n != self._pulses:
            self._pulses = n
            self.gain = gain
            self._skip = self.settle + 1

    def power_down(self):
        """PD_SCK high for >= 60 us: the HX711 stops converting."""
        sck = self._sck
        sck.value(0)
        sck.value(1)
        tus = self._tus
        t0 = tus()
        while self._tdiff(tus(), t0) < _T_POWER_DOWN_US:
            pass
        self.powered = 0

    def power_up(self):
        """PD_SCK low: reset to A/128 and restart; drops the settling conversions."""
        self._sck.value(0)
        self.powered = 1
        self._skip = self.settle + 1

    def ready(self):
        return self.powered == 1 and self._dout.value() == 0

    def read(self):
        if not self.powered:
            self.status = ST_NOT_READY
            return ST_NOT_READY
        dout = self._dout
        tus = self._tus
        tdiff = self._tdiff
        t0 = tus()
        while dout.value():
            if tdiff(tus(), t0) > self.timeout_us:
                self.status = ST_TIMEOUT
                return ST_TIMEOUT
        sck = self._sck
        di = self._di
        ei = self._ei
        n = self._pulses
        v = 0
        slow = 0
        i = 0
        while i < n:
            s = di()
            t = tus()
            sck.value(1)
            b = dout.value()
            sck.value(0)
            t = tdiff(tus(), t)
            ei(s)
            if t > _T_HIGH_MAX_US:
                slow = 1
            if i < 24:
                v = (v << 1) | b
            i += 1
        if dout.value() == 0:
            st = ST_NO_DEVICE
        elif slow:
            self._skip = self.settle + 1
            st = ST_NOT_READY
        elif self._skip:
            self._skip -= 1
            st = ST_NOT_READY
        else:
            if v & _SIGN:
                v -= _WRAP
            self.raw = v
            st = ST_LC_RAIL if v == _RAIL_HI or v == _RAIL_LO else OK
        self.status = st
        return st
