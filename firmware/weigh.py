# Weighing window: per-sample statistics of raw load-cell counts, glitch rejection and stability.
#
# Timing and allocation: add() and missing() run once per ADC sample (10 or 80 SPS per channel).
# They allocate nothing and every intermediate stays within +-2**30 (MicroPython small ints):
# samples are stored as offsets from a reference count, bounded by _D_LIM, in a preallocated
# array('h'), so that sum(d) and sum(d*d) over at most _N_MAX samples fit in a small int.
# result() and samples_into() run once per weighing and may use long integers.
from micropython import const
from array import array

_N_MAX = const(64)
_D_LIM = const(2047)           # |x - ref| bound; 64 * 2047**2 < 2**28
_RAIL_HI = const(0x7FFFFF)     # HX711 saturation codes (also read when DOUT floats)
_RAIL_LO = const(-0x800000)

# Window states (add() / missing() return value and .state)
W_FILLING = const(0)           # fewer than n samples accepted so far
W_SETTLING = const(1)          # window full, spread above the limit (or not yet for `hold` samples)
W_STABLE = const(2)            # spread within the limit for `hold` consecutive samples: result() valid
W_ERR_TIMEOUT = const(3)       # not stable within timeout_samples sample slots
W_ERR_SATURATED = const(4)     # max_rail consecutive rail codes: overload or broken wiring
W_ERR_NO_DATA = const(5)       # max_missing consecutive sample slots without a conversion

STATE_NAMES = ("FILLING", "SETTLING", "STABLE", "ERR_TIMEOUT", "ERR_SATURATED", "ERR_NO_DATA")


class Window:
    """Sliding window of n raw counts with an exact stability test.

    stable when the sample standard deviation of the last n accepted samples is <= stable_sd_counts
    for `hold` consecutive accepted samples. Isolated spikes (a sample more than spike_counts away
    from both the last accepted sample and the next one) are dropped with one sample of latency;
    rail codes are dropped and counted. Errors are terminal until reset().
    """

    def __init__(self, n=64, stable_sd_counts=50, hold=10, timeout_samples=3000,
                 spike_counts=500, max_rail=20, max_missing=20):
        if not 4 <= n <= _N_MAX:
            raise ValueError("window n must be 4..%d" % _N_MAX)
        if not 1 <= stable_sd_counts <= 2000:
            raise ValueError("stable_sd_counts must be 1..2000")
        if not 1 <= hold <= 10000 or timeout_samples < n + hold:
            raise ValueError("hold must be 1..10000 and timeout_samples >= n + hold")
        if not 1 <= spike_counts <= _D_LIM or max_rail < 1 or max_missing < 1:
            raise ValueError("spike_counts must be 1..%d, max_rail and max_missing >= 1" % _D_LIM)
        self.n = n
        self.hold = hold
        self.timeout_samples = timeout_samples
        self.spike_counts = spike_counts
        self.max_rail = max_rail
        self.max_missing = max_missing
        self._lim2 = stable_sd_counts * stable_sd_counts * (n - 1)
        self._ring = array("h", bytes(2 * n))
        self.reset()

    def reset(self):
        self.state = W_FILLING
        self.count = 0          # accepted samples in the ring (<= n)
        self._head = 0
        self.ref = 0
        self._sum = 0           # sum of (x - ref) over the ring
        self._sumsq = 0         # sum of (x - ref)**2 over the ring
        self._stable_run = 0
        self._has_pending = False
        self._pending = 0
        self._has_last = False
        self._last = 0
        self.slots = 0          # sample slots seen (accepted, rejected or missing)
        self.rejected = 0       # spikes and rail codes dropped
        self.restarts = 0       # window restarts after a step beyond _D_LIM
        self._rails = 0
        self._missing = 0

    def missing(self):
        # The ADC delivered nothing in this sample slot (ready-wait timed out).
        if self.state >= W_ERR_TIMEOUT:
            return self.state
        self.slots += 1
        self._missing += 1
        if self._missing >= self.max_missing:
            self.state = W_ERR_NO_DATA
        elif self.slots >= self.timeout_samples and self.state != W_STABLE:
            self.state = W_ERR_TIMEOUT
        return self.state

    def add(self, x):
        if self.state >= W_ERR_TIMEOUT:
            return self.state
        self.slots += 1
        self._missing = 0
        if x >= _RAIL_HI or x <= _RAIL_LO:
            self.rejected += 1
            self._rails += 1
            if self._rails >= self.max_rail:
                self.state = W_ERR_SATURATED
                return self.state
            return self._check_timeout()
        self._rails = 0
        if not self._has_pending:
            self._pending = x
            self._has_pending = True
            return self._check_timeout()
        p = self._pending
        self._pending = x
        lim = self.spike_counts
        if self._has_last:
            a = self._last
            if (p - a > lim or a - p > lim) and -lim <= x - a <= lim:
                self.rejected += 1
                return self._check_timeout()
        elif p - x > lim or x - p > lim:
            # No accepted history yet: a first sample that disagrees with its successor is dropped.
            self.rejected += 1
            return self._check_timeout()
        self._accept(p)
        return self._check_timeout()

    def _check_timeout(self):
        if self.state != W_STABLE and self.slots >= self.timeout_samples:
            self.state = W_ERR_TIMEOUT
        return self.state

    def _accept(self, x):
        self._last = x
        self._has_last = True
        if self.count == 0:
            self.ref = x
        d = x - self.ref
        if d > _D_LIM or d < -_D_LIM:
            # A step larger than any stable spread: start over around the new level.
            self.restarts += 1
            self.count = 0
            self._head = 0
            self._sum = 0
            self._sumsq = 0
            self._stable_run = 0
            self.ref = x
            d = 0
        ring = self._ring
        n = self.n
        h = self._head
        if self.count == n:
            old = ring[h]
            self._sum -= old
            self._sumsq -= old * old
        else:
            self.count += 1
        ring[h] = d
        self._sum += d
        self._sumsq += d * d
        h += 1
        self._head = 0 if h == n else h
        if self.count < n:
            self.state = W_FILLING
            return
        if self._spread_ok():
            self._stable_run += 1
        else:
            self._stable_run = 0
        self.state = W_STABLE if self._stable_run >= self.hold else W_SETTLING

    def _spread_ok(self):
        # Exact test of M2 <= L^2 (n-1), M2 = sumsq - sum^2/n, without forming sum^2 (> 2**30):
        # with sum = q*n + r (0 <= r < n), M2 = sumsq - q*q*n - 2*q*r - r*r/n.
        n = self.n
        s = self._sum
        q = s // n
        r = s - q * n
        a = self._sumsq - q * q * n - 2 * q * r - self._lim2
        if a <= 0:
            return True
        if a >= n:
            return False
        return a * n <= r * r

    # ---- once per weighing (may allocate / use long ints) ----

    def result(self):
        """(n, sum_counts, m2n): mean = sum_counts / n and sum of squared deviations about the
        mean = m2n / n (exact). Valid when state == W_STABLE."""
        n = self.count
        s = self._sum
        total = self.ref * n + s
        m2n = n * self._sumsq - s * s
        return n, total, m2n

    def samples_into(self, out):
        """Copy the window's raw counts, oldest first, into array `out`; return how many."""
        n = self.count
        start = self._head if n == self.n else 0
        for i in range(n):
            j = start + i
            if j >= self.n:
                j -= self.n
            out[i] = self.ref + self._ring[j]
        return n
