# MAX31856 thermocouple-to-digital converter, type K, SPI (bus injected). read() -> status; on OK
# .temp_c_x100 and .cj_c_x100, else the last good values. One-shot mode never blocks in a 1 s loop;
# a read-back mismatch is ST_NO_DEVICE. Allocation-free. Registers: docs/MODULES.md "oven.drivers.max31856".
from micropython import const
from oven.core.codes import OK, ST_TC_OPEN, ST_TC_SHORT_VCC, ST_TC_RANGE, ST_NO_DEVICE, ST_TIMEOUT

_WRITE = const(0x80)
_CMODE = const(0x80)
_ONESHOT = const(0x40)
_CR0_CFG = const(0xBD)      # CR0 bits that must read back as written (all but 1SHOT, FAULTCLR)
_F50HZ = const(0x01)
_TC_K = const(0x03)
_OPEN = const(0x01)
_OVUV = const(0x02)
_RANGE_BITS = const(0xFC)
_AVG = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4}


def _div_pow2_half_even(n, sh):
    q = n >> sh
    r = n - (q << sh)
    h = 1 << (sh - 1)
    if r > h or (r == h and q & 1):
        q += 1
    return q


def tc_c_x100(h, m, l):
    """Linearized TC temperature in c_x100 from LTCBH/M/L (0.0078125 degC = 25/32 c_x100)."""
    v = (h << 11) | (m << 3) | (l >> 5)
    if v & 0x40000:
        v -= 0x80000
    return _div_pow2_half_even(v * 25, 5)


def cj_c_x100(h, l):
    """Cold-junction temperature in c_x100 from CJTH/CJTL (0.015625 degC = 25/16 c_x100)."""
    v = (h << 6) | (l >> 2)
    if v & 0x2000:
        v -= 0x4000
    return _div_pow2_half_even(v * 25, 4)


def status_sr(sr):
    """Read status (codes.OK / ST_*) of a fault status register value."""
    if sr & _OPEN:
        return ST_TC_OPEN
    if sr & _OVUV:
        return ST_TC_SHORT_VCC
    if sr & _RANGE_BITS:
        return ST_TC_RANGE
    return OK


class MAX31856:
    def __init__(self, spi, cs, drdy=None, oneshot=True, filter_hz=50, avg=1, ocfault=1,
                 timeout_ms=None, ticks_ms=None, ticks_diff=None):
        if ticks_ms is None or ticks_diff is None:
            import time
            ticks_ms = ticks_ms or time.ticks_ms
            ticks_diff = ticks_diff or time.ticks_diff
        if filter_hz not in (50, 60) or avg not in _AVG or not (0 <= ocfault <= 3):
            raise ValueError("filter/avg/ocfault")
        self.spi = spi
        self.cs = cs
        self.drdy = drdy
        self.oneshot = oneshot
        self._tms = ticks_ms
        self._tdiff = ticks_diff
        self._cr0 = (ocfault << 4) | (_F50HZ if filter_hz == 50 else 0) | (0 if oneshot else _CMODE)
        self._cr1 = (_AVG[avg] << 4) | _TC_K
        # datasheet maxima: 185 / 155 ms first conversion, + 40 / 33.3 ms per averaged sample,
        # + open-circuit detection; half as much again as margin
        conv_ms = (185 if filter_hz == 50 else 155) + (avg - 1) * (40 if filter_hz == 50 else 34)
        if ocfault:
            conv_ms += 45
        self.timeout_ms = timeout_ms or conv_ms * 3 // 2
        self._tx = bytearray(17)
        self._rx = bytearray(17)
        self._tx2 = memoryview(self._tx)[0:2]
        self._rx2 = memoryview(self._rx)[0:2]
        self._w = bytearray(3)
        self._w2 = memoryview(self._w)[0:2]
        self.temp_c_x100 = 0
        self.cj_c_x100 = 0
        self.sr = 0
        self.status = ST_NO_DEVICE
        self._pending = 0
        self._t0 = 0
        cs.value(1)
        self.configure()

    def _xfer(self, tx, rx):
        self.cs.value(0)
        try:
            self.spi.write_readinto(tx, rx)
        except OSError:
            rx[1] = 0xFF
        finally:
            self.cs.value(1)

    def _write(self, buf):
        self.cs.value(0)
        try:
            self.spi.write(buf)
        except OSError:
            pass
        finally:
            self.cs.value(1)

    def configure(self):
        """Stop, write CR1 and CR0 (conversions start now in auto mode)."""
        w = self._w
        w[0] = _WRITE
        w[1] = 0
        self._write(self._w2)
        w[1] = self._cr0
        w[2] = self._cr1
        self._write(w)
        self._pending = 0
        self._t0 = self._tms()

    def _trigger(self):
        w = self._w
        w[0] = _WRITE
        w[1] = self._cr0 | _ONESHOT
        self._write(self._w2)
        self._pending = 1
        self._t0 = self._tms()

    def _wait(self):
        tms = self._tms
        drdy = self.drdy
        rx2 = self._rx2
        while True:
            if drdy is not None:
                if drdy.value() == 0:
                    return OK
            elif not self.oneshot:
                return OK
            else:
                self._xfer(self._tx2, rx2)
                c = rx2[1]
                if (c & _CR0_CFG) != self._cr0:
                    return ST_NO_DEVICE
                if not (c & _ONESHOT):
                    return OK
            if self._tdiff(tms(), self._t0) > self.timeout_ms:
                return ST_TIMEOUT

    def read(self):
        if self.oneshot and not self._pending:
            self._trigger()
        st = self._wait()
        if st == OK:
            r = self._rx
            self._xfer(self._tx, r)
            if r[2] != self._cr1 or (r[1] & _CR0_CFG) != self._cr0:
                st = ST_NO_DEVICE
            else:
                self.sr = r[16]
                st = status_sr(r[16])
                if st == OK:
                    self.temp_c_x100 = tc_c_x100(r[13], r[14], r[15])
                    self.cj_c_x100 = cj_c_x100(r[11], r[12])
        if st == ST_NO_DEVICE:
            self.configure()
        elif self.oneshot:
            self._trigger()
        else:
            self._t0 = self._tms()
        self.status = st
        return st
