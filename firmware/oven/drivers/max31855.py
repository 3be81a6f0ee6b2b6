# MAX31855 thermocouple-to-digital converter (read-only SPI, 32-bit frame handled as two 16-bit
# words: a 32-bit int would be a heap long). read() -> status, .temp_c_x100; stuck or
# inconsistent frames are ST_NO_DEVICE. decode(frame32) for tools. Frame: docs/MODULES.md "oven.drivers.max31855".
from micropython import const
from oven.core.codes import OK, ST_TC_OPEN, ST_TC_SHORT_GND, ST_TC_SHORT_VCC, ST_NO_DEVICE

_FAULT_BIT_HI = const(0x0001)   # D16 in the high word
_RESERVED_HI = const(0x0002)    # D17
_RESERVED_LO = const(0x0008)    # D3
_OC = const(0x0001)
_SCG = const(0x0002)
_SCV = const(0x0004)
_FAULT_BITS = const(0x0007)


def tc_c_x100(hi16):
    """Thermocouple temperature in c_x100 from the high word (0.25 degC = 25)."""
    raw = hi16 >> 2
    if raw & 0x2000:
        raw -= 0x4000
    return raw * 25


def cj_c_x100(lo16):
    """Cold-junction temperature in c_x100 from the low word, rounded (0.0625 degC = 6.25)."""
    raw = lo16 >> 4
    if raw & 0x800:
        raw -= 0x1000
    return (raw * 25 + 2) >> 2


def status_words(hi16, lo16, mask_scg=False):
    """Read status (codes.OK / ST_*) of a frame given as its two 16-bit words."""
    if (hi16 == 0 and lo16 == 0) or (hi16 == 0xFFFF and lo16 == 0xFFFF):
        return ST_NO_DEVICE
    if hi16 & _RESERVED_HI or lo16 & _RESERVED_LO:
        return ST_NO_DEVICE
    bits = lo16 & _FAULT_BITS
    if (hi16 & _FAULT_BIT_HI) != (1 if bits else 0):
        return ST_NO_DEVICE
    if bits & _OC:
        return ST_TC_OPEN
    if bits & _SCV:
        return ST_TC_SHORT_VCC
    if bits & _SCG and not mask_scg:
        return ST_TC_SHORT_GND
    return OK


def decode(frame32, mask_scg=False):
    """(status, temp_c_x100, cj_c_x100) of a 32-bit frame (host/test helper; allocates)."""
    hi = (frame32 >> 16) & 0xFFFF
    lo = frame32 & 0xFFFF
    return status_words(hi, lo, mask_scg), tc_c_x100(hi), cj_c_x100(lo)


class MAX31855:
    """read() -> status; on OK updates .temp_c_x100 and .cj_c_x100 (else they keep the last
    good values). mask_scg=True for breakout boards with T- tied to GND, which set SCG
    permanently while still converting correctly."""

    def __init__(self, spi, cs, mask_scg=False):
        self.spi = spi
        self.cs = cs
        self.mask_scg = mask_scg
        self._buf = bytearray(4)
        self.temp_c_x100 = 0
        self.cj_c_x100 = 0
        self.status = ST_NO_DEVICE
        cs.value(1)

    def read(self):
        b = self._buf
        self.cs.value(0)
        try:
            self.spi.readinto(b)
        except OSError:
            b[0] = b[1] = b[2] = b[3] = 0
        finally:
            self.cs.value(1)
        hi = (b[0] << 8) | b[1]
        lo = (b[2] << 8) | b[3]
        st = status_words(hi, lo, self.mask_scg)
        if st == OK:
            self.temp_c_x100 = tc_c_x100(hi)
            self.cj_c_x100 = cj_c_x100(lo)
        self.status = st
        return st
