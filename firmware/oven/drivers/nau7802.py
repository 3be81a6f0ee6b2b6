# NAU7802 24-bit load-cell ADC on I2C (address 0x2A), injected machine.I2C-like bus.
#
# Registers (datasheet): PU_CTRL 0x00 = RR(0) PUD(1) PUA(2) PUR(3, ro) CS(4) CR(5, ro) OSCS(6)
# AVDDS(7); CTRL1 0x01 = GAINS(2:0) VLDO(5:3); CTRL2 0x02 = CALMOD(1:0) CALS(2) CAL_ERR(3)
# CRS(6:4) CHS(7); ADCO_B2..B0 0x12..0x14 (24-bit two's complement, reading them clears CR);
# ADC 0x15 (REG_CHPS bits 5:4 = 11 per the power-on sequence); PWR_CTRL 0x1C (PGA_CAP_EN, bit 7,
# the channel-2 decoupling capacitor when only channel 1 is used); DEVICE_REV 0x1F (low nibble 0xF).
#
# begin(): reset (RR), power up digital and analog (PUD, PUA, AVDDS for the internal LDO), wait
# for PUR, LDO / gain / rate / channel, start conversions (CS), internal offset calibration
# (CALMOD 00 + CALS, wait for CALS to clear, CAL_ERR checked). Every wait has a deadline from the
# injected ticks_ms / ticks_diff. Returns OK, ST_NO_DEVICE (bus error, wrong revision,
# CAL_ERR) or ST_TIMEOUT (PUR or CALS never came).
# read() -> status; on OK (and ST_LC_RAIL) .raw holds the signed 24-bit counts. It waits for CR
# until timeout_ms, allocates nothing and drops the first `settle` conversions after begin().
from micropython import const
from oven.core.codes import OK, ST_NOT_READY, ST_TIMEOUT, ST_LC_RAIL, ST_NO_DEVICE

ADDR = const(0x2A)
_PU_CTRL = const(0x00)
_CTRL1 = const(0x01)
_CTRL2 = const(0x02)
_ADCO_B2 = const(0x12)
_ADC = const(0x15)
_PWR_CTRL = const(0x1C)
_REV = const(0x1F)
_RR = const(0x01)
_PUD = const(0x02)
_PUA = const(0x04)
_PUR = const(0x08)
_CS = const(0x10)
_CR = const(0x20)
_AVDDS = const(0x80)
_CALS = const(0x04)
_CAL_ERR = const(0x08)
_CHS = const(0x80)
_REG_CHPS_OFF = const(0x30)
_PGA_CAP_EN = const(0x80)
_PUR_TIMEOUT_MS = const(50)
_SIGN = const(0x800000)
_WRAP = const(0x1000000)
_RAIL_HI = const(0x7FFFFF)
_RAIL_LO = const(-0x800000)
_GAINS = (1, 2, 4, 8, 16, 32, 64, 128)
_RATES = {10: 0, 20: 1, 40: 2, 80: 3, 320: 7}


class NAU7802:
    def __init__(self, i2c, gain=128, rate_sps=10, ldo_mv=3300, channel=1, addr=ADDR,
                 timeout_ms=None, cal_timeout_ms=None, settle=4, ticks_ms=None, ticks_diff=None):
        if ticks_ms is None or ticks_diff is None:
            import time
            ticks_ms = ticks_ms or time.ticks_ms
            ticks_diff = ticks_diff or time.ticks_diff
        if gain not in _GAINS or rate_sps not in _RATES or channel not in (1, 2):
            raise ValueError("gain/rate/channel")
        # ldo_mv None: AVDD from an external supply (AVDDS = 0)
        if ldo_mv is not None and not (2400 <= ldo_mv <= 4500 and ldo_mv % 300 == 0):
            raise ValueError("ldo_mv")
        period_ms = 1000 // rate_sps
        self._i2c = i2c
        self.addr = addr
        self._tms = ticks_ms
        self._tdiff = ticks_diff
        self.gain = gain
        self.rate_sps = rate_sps
        self.ldo_mv = ldo_mv
        self.channel = channel
        self.timeout_ms = timeout_ms or 2 * period_ms + 10
        self.cal_timeout_ms = cal_timeout_ms or 20 * period_ms + 500
        self.settle = settle
        self._b = bytearray(3)
        self._b1 = memoryview(self._b)[0:1]
        self.raw = 0
        self.status = ST_NO_DEVICE
        self._skip = settle
        self._ctrl2 = (_RATES[rate_sps] << 4) | (_CHS if channel == 2 else 0)

    def _rd(self, reg):
        self._i2c.readfrom_mem_into(self.addr, reg, self._b1)
        return self._b[0]

    def _wr(self, reg, v):
        self._b[0] = v
        self._i2c.writeto_mem(self.addr, reg, self._b1)

    def _wait_bit(self, reg, mask, want, timeout_ms):
        t0 = self._tms()
        while (self._rd(reg) & mask) != want:
            if self._tdiff(self._tms(), t0) > timeout_ms:
                return False
        return True

    def begin(self):
        try:
            st = self._begin()
        except OSError:
            st = ST_NO_DEVICE
        self.status = st
        return st

    def _begin(self):
        self._wr(_PU_CTRL, _RR)
        self._wr(_PU_CTRL, _PUD)
        if not self._wait_bit(_PU_CTRL, _PUR, _PUR, _PUR_TIMEOUT_MS):
            return ST_TIMEOUT
        if (self._rd(_REV) & 0x0F) != 0x0F:
            return ST_NO_DEVICE
        pu = _PUD | _PUA
        ctrl1 = _GAINS.index(self.gain)
        if self.ldo_mv is not None:
            pu |= _AVDDS
            ctrl1 |= ((4500 - self.ldo_mv) // 300) << 3
        self._wr(_PU_CTRL, pu)
        self._wr(_CTRL1, ctrl1)
        self._wr(_CTRL2, self._ctrl2)
        self._wr(_ADC, _REG_CHPS_OFF)
        if self.channel == 1:
            self._wr(_PWR_CTRL, self._rd(_PWR_CTRL) | _PGA_CAP_EN)
        self._wr(_PU_CTRL, pu | _CS)
        return self.calibrate()

    def calibrate(self):
        """Internal offset calibration: OK, ST_TIMEOUT (CALS stuck) or ST_NO_DEVICE (CAL_ERR)."""
        self._wr(_CTRL2, self._ctrl2 | _CALS)
        if not self._wait_bit(_CTRL2, _CALS, 0, self.cal_timeout_ms):
            return ST_TIMEOUT
        self._skip = self.settle
        return ST_NO_DEVICE if self._rd(_CTRL2) & _CAL_ERR else OK

    def ready(self):
        try:
            return (self._rd(_PU_CTRL) & _CR) != 0
        except OSError:
            return False

    def read(self):
        tms = self._tms
        t0 = tms()
        i2c = self._i2c
        b = self._b
        b1 = self._b1
        try:
            while True:
                i2c.readfrom_mem_into(self.addr, _PU_CTRL, b1)
                pu = b[0]
                if pu & _CR:
                    break
                if not (pu & _PUR):
                    # reset or brown-out: the configuration is gone, begin() again
                    self.status = ST_NO_DEVICE
                    return ST_NO_DEVICE
                if self._tdiff(tms(), t0) > self.timeout_ms:
                    self.status = ST_TIMEOUT
                    return ST_TIMEOUT
            i2c.readfrom_mem_into(self.addr, _ADCO_B2, b)
        except OSError:
            self.status = ST_NO_DEVICE
            return ST_NO_DEVICE
        v = (b[0] << 16) | (b[1] << 8) | b[2]
        if v & _SIGN:
            v -= _WRAP
        if self._skip:
            self._skip -= 1
            st = ST_NOT_READY
        else:
            self.raw = v
            st = ST_LC_RAIL if v == _RAIL_HI or v == _RAIL_LO else OK
        self.status = st
        return st
