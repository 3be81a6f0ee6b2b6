# Load-cell calibration: tare (zero) and span from a reference mass, optional linearity check.
#
# Why the loss ratio needs only the zero: with a linear load cell, mass = s * (counts - zero) for a
# span factor s (ug per count). The weight-loss rate (m0 - m1) / m0 = s*(c0 - c1) / (s*(c0 - zero))
# = (c0 - c1) / (c0 - zero): s cancels exactly. A span error therefore changes the displayed masses
# but never the loss or the verdict; a zero error does bias the loss, which is why the zero is
# re-measured (tare) and corrected for load-cell temperature drift, and the span only needs to be
# good enough for reporting m0 (energy density) and for converting mass limits to counts.
#
# Weighing results are exact rationals: a mean of n samples is (sum_counts, n). Everything here
# runs once per weighing and may use long integers.
from oven.core.fixedpt import div_half_even


class CalibError(ValueError):
    pass


class Calibration:
    """zero_num/zero_den: tare mean in counts. span: ref_mass_ug over (ref_counts - zero) counts."""

    def __init__(self, zero_num, zero_den, ref_mass_ug=0, ref_num=0, ref_den=1):
        if zero_den <= 0 or ref_den <= 0:
            raise CalibError("calibration means need a positive sample count")
        self.zero_num = zero_num
        self.zero_den = zero_den
        self.ref_mass_ug = ref_mass_ug
        self.ref_num = ref_num
        self.ref_den = ref_den
        if ref_mass_ug:
            if not 1000 <= ref_mass_ug <= 5000000000:
                raise CalibError("reference mass must be 1 mg .. 5 kg (1000..5000000000 ug)")
            # span counts = ref mean - zero mean, as the rational span_num / span_den
            span_num = ref_num * zero_den - zero_num * ref_den
            if span_num <= 0:
                raise CalibError("reference reading is not above the zero: check the load cell wiring and the reference mass")
        self.has_span = ref_mass_ug > 0

    def net_counts(self, num, den):
        """(mean - zero) as an exact rational (num, den)."""
        return num * self.zero_den - self.zero_num * den, den * self.zero_den

    def mass_ug(self, num, den):
        """Mass of a mean reading num/den in ug, rounded half-to-even:
        m = (c - z) * M_ref / (c_ref - z), all exact rationals."""
        if not self.has_span:
            raise CalibError("no span calibration: weigh a reference mass first")
        n_num, n_den = self.net_counts(num, den)
        s_num = self.ref_num * self.zero_den - self.zero_num * self.ref_den
        s_den = self.ref_den * self.zero_den
        return div_half_even(n_num * s_den * self.ref_mass_ug, n_den * s_num)

    def counts_per_ug(self):
        """Span as the rational counts per ug (num, den)."""
        s_num = self.ref_num * self.zero_den - self.zero_num * self.ref_den
        return s_num, self.ref_den * self.zero_den * self.ref_mass_ug

    def ug_to_counts(self, ug):
        """Convert a mass (ug) to counts with the span, rounding half-to-even (for limits)."""
        if not self.has_span:
            raise CalibError("no span calibration: weigh a reference mass first")
        c_num, c_den = self.counts_per_ug()
        return div_half_even(ug * c_num, c_den)

    def linearity(self, mass_ug, num, den, max_dev_ug):
        """Check a third reference mass: returns (deviation_ug, ok). deviation = measured - nominal."""
        dev = self.mass_ug(num, den) - mass_ug
        return dev, -max_dev_ug <= dev <= max_dev_ug
