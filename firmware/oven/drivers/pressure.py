# Analog absolute-pressure transducer on an ADC input (machine.ADC.read_u16(): 0..65535).
#
# Two-point linear calibration: counts_at_0pa and counts_at_span (reading at span_pa), e.g. a
# 0.5..4.5 V / 0..100 kPa sensor behind a divider. The scale is folded into a fixed-point
# multiplier once, so read() is an integer multiply and shift: pa = (counts - c0) * m >> s,
# with m chosen as large as |counts - c0| * m < 2**29 allows: >= 13 bits for a full 16-bit
# range, i.e. a scale error <= 1e-4 of the reading, far below any transducer's accuracy.
#
# Out of range: the transducer's output never legitimately leaves its span by more than its
# offset/gain tolerance. Below min_counts means a broken wire or shorted output, above
# max_counts a lost ground or an overpressure: read() returns ST_P_RANGE and leaves .pa alone.
# Defaults: 5 % of the calibrated span beyond each end. Inside the limits a slightly negative
# result (offset drift at hard vacuum) reads 0 Pa: an absolute pressure cannot be negative.
from micropython import const
from oven.core.codes import OK, ST_P_RANGE

_PRODUCT_MAX = const(0x1FFFFFFF)  # product + rounding term stays below 2**30


class PressureTransducer:
    def __init__(self, adc, counts_at_0pa, counts_at_span, span_pa=100_000,
                 min_counts=None, max_counts=None, samples=4):
        d = counts_at_span - counts_at_0pa
        if d <= 0 or not (0 < span_pa <= 1_000_000) or not (1 <= samples <= 256):
            raise ValueError("calibration")
        margin = d // 20
        if min_counts is None:
            min_counts = max(0, counts_at_0pa - margin)
        if max_counts is None:
            max_counts = min(65535, counts_at_span + margin)
        if not (0 <= min_counts < max_counts <= 65535):
            raise ValueError("count limits")
        self.adc = adc
        self.counts_at_0pa = counts_at_0pa
        self.counts_at_span = counts_at_span
        self.span_pa = span_pa
        self.min_counts = min_counts
        self.max_counts = max_counts
        self.samples = samples
        # largest |counts - c0| that read() can see, then the largest shift whose multiplier
        # keeps the product within small-int range; the result itself (<= ~1e6 Pa) is small
        reach = max(counts_at_0pa - min_counts, max_counts - counts_at_0pa, 1)
        s = 0
        while s < 30 and reach * ((span_pa << (s + 1)) // d + 1) <= _PRODUCT_MAX:
            s += 1
        self._shift = s
        self._mul = ((span_pa << s) + d // 2) // d
        self._round = (1 << s) >> 1
        self.counts = 0
        self.pa = 0
        self.status = OK

    def counts_to_pa(self, counts):
        """Pressure in Pa for an averaged ADC reading (no range check, may be negative)."""
        return ((counts - self.counts_at_0pa) * self._mul + self._round) >> self._shift

    def read(self):
        """Average `samples` ADC conversions; on OK update .pa (Pa absolute) and .counts."""
        n = self.samples
        acc = 0
        i = 0
        adc = self.adc
        while i < n:
            acc += adc.read_u16()
            i += 1
        c = (acc + (n >> 1)) // n
        self.counts = c
        if c < self.min_counts or c > self.max_counts:
            self.status = ST_P_RANGE
            return ST_P_RANGE
        pa = self.counts_to_pa(c)
        self.pa = pa if pa > 0 else 0
        self.status = OK
        return OK
