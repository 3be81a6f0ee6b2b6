# Weighing window: per-sample statistics of raw load-cell counts, glitch rejection and the
# stability test (sd of the window mean and drift a minute apart, as a balance decides it).
# add()/missing() run per ADC sample: allocation-free, small ints only; result() once per weighing.
# The stability criterion and the integer bounds: docs/MODULES.md "oven.core.weigh".
from micropython import const
from array import array

_N_MAX = const(64)
_D_LIM = const(2047)           # |x - ref| bound; 64 * 2047**2 < 2**28
_SDM_MAX = const(500)          # sd of the mean limit: 500**2 * 64 * 63 < 2**30
_DRIFT_N_MAX = const(640)      # drift time base, samples (64 s at 10 SPS)
_DRIFT_MAX = const(16000)      # counts/min: 16000 * 64 * 640 < 2**30
_RAIL_HI = const(0x7FFFFF)     # HX711 saturation codes (also read when DOUT floats)
_RAIL_LO = const(-0x800000)

# Window states (add() / missing() return value and .state)
W_FILLING = const(0)           # fewer than n samples accepted so far
W_SETTLING = const(1)          # window full; sd or drift above its limit, no drift time base yet, or not yet for `hold` samples
W_STABLE = const(2)            # sd and drift within the limits for `hold` consecutive samples: result() valid
W_ERR_TIMEOUT = const(3)       # not stable within timeout_samples sample slots
W_ERR_SATURATED = const(4)     # max_rail consecutive rail codes: overload or broken wiring
W_ERR_NO_DATA = const(5)       # max_missing consecutive sample slots without a conversion

STATE_NAMES = ("FILLING", "SETTLING", "STABLE", "ERR_TIMEOUT", "ERR_SATURATED", "ERR_NO_DATA")


class Window:
    """Sliding window of n raw counts with an exact stability test.

    stable when, for `hold` consecutive accepted samples, the sd of the mean of the last n accepted
    samples is <= sd_mean_counts and (drift_n > 0) the mean moved by at most drift_counts_per_min
    (pro rata) against the mean drift_n samples earlier. Legacy: stable_sd_counts instead of
    sd_mean_counts tests the sample standard deviation, with no drift test (drift_n = 0).
    Isolated spikes (a sample more than spike_counts away from both the last accepted sample and the
    next one) are dropped with one sample of latency; rail codes are dropped and counted. Errors are
    terminal until reset().
    """

    def __init__(self, n=64, stable_sd_counts=None, hold=10, timeout_samples=3000,
                 spike_counts=500, max_rail=20, max_missing=20, sd_mean_counts=None,
                 drift_counts_per_min=None, drift_n=0, sps=10):
        if not 4 <= n <= _N_MAX:
            raise ValueError("window n must be 4..%d" % _N_MAX)
        if drift_n and not n <= drift_n <= _DRIFT_N_MAX:
            raise ValueError("drift_n must be 0 (no drift test) or n..%d" % _DRIFT_N_MAX)
        if not 1 <= sps <= 1000:
            raise ValueError("sps must be 1..1000")
        if not 1 <= hold <= 10000 or timeout_samples < n + drift_n + hold:
            raise ValueError("hold must be 1..10000 and timeout_samples >= n + drift_n + hold")
        if not 1 <= spike_counts <= _D_LIM or max_rail < 1 or max_missing < 1:
            raise ValueError("spike_counts must be 1..%d, max_rail and max_missing >= 1" % _D_LIM)
        self.n = n
        self.drift_n = drift_n
        self.sps = sps
        self.hold = hold
        self.timeout_samples = timeout_samples
        self.spike_counts = spike_counts
        self.max_rail = max_rail
        self.max_missing = max_missing
        self._r = n + drift_n
        self._ring = array("h", bytes(2 * self._r))
        self._dlim = 0
        self.state = W_FILLING
        self._stable_run = 0
        if sd_mean_counts is None:
            if drift_n:
                raise ValueError("a drift test needs sd_mean_counts and drift_counts_per_min")
            if stable_sd_counts is None:
                stable_sd_counts = 50
            if not 1 <= stable_sd_counts <= 2000:
                raise ValueError("stable_sd_counts must be 1..2000")
            self._lim2 = stable_sd_counts * stable_sd_counts * (n - 1)
        else:
            if stable_sd_counts is not None:
                raise ValueError("give stable_sd_counts or sd_mean_counts, not both")
            self.set_limits(sd_mean_counts, 0 if drift_counts_per_min is None else drift_counts_per_min)
        self.reset()

    def set_limits(self, sd_mean_counts, drift_counts_per_min):
        """Stability limits (counts; counts per minute): the sd of the window mean and the drift
        rate. Allocation-free (valid arguments); the stability run starts over."""
        if not 1 <= sd_mean_counts <= _SDM_MAX:
            raise ValueError("sd_mean_counts must be 1..%d" % _SDM_MAX)
        n = self.n
        # var(mean) = M2 / (n (n-1)) <= L^2  <=>  M2 <= L^2 n (n-1)
        self._lim2 = sd_mean_counts * sd_mean_counts * n * (n - 1)
        L = self.drift_n
        if L:
            if not 1 <= drift_counts_per_min <= _DRIFT_MAX:
                raise ValueError("drift_counts_per_min must be 1..%d" % _DRIFT_MAX)
            # |sum_now - sum_then| / n <= D * L / (60 sps)  <=>  |dsum| <= floor(D n L / (60 sps))
            self._dlim = drift_counts_per_min * n * L // (60 * self.sps)
        self._stable_run = 0
        if self.state == W_STABLE:
            self.state = W_SETTLING

    def reset(self):
        self.state = W_FILLING
        self.count = 0          # accepted samples in the window (<= n)
        self._tot = 0           # accepted samples since the last (re)start, up to n + drift_n
        self._head = 0
        self.ref = 0
        self._sum = 0           # sum of (x - ref) over the window
        self._sumsq = 0         # sum of (x - ref)**2 over the window
        self._lsum = 0          # sum of (x - ref) over the window drift_n samples earlier
        self._stable_run = 0
        self._has_pending = False
        self._pending = 0
        self._has_last = False
        self._last = 0
        self.slots = 0          # sample slots seen (accepted, rejected or missing)
        self.rejected = 0       # spikes and rail codes dropped
        self.restarts = 0       # window restarts after a step beyond _D_LIM
        self.sd_ok = 0          # last evaluation of the sd test (window full)
        self.drift_ok = 0       # last evaluation of the drift test (1 when there is none)
        self.drift_dsum = 0     # sum_now - sum_then at the last drift evaluation, counts
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
        if self._tot == 0:
            self.ref = x
        d = x - self.ref
        if d > _D_LIM or d < -_D_LIM:
            # A step larger than any stable spread: start over around the new level.
            self.restarts += 1
            self.count = 0
            self._tot = 0
            self._head = 0
            self._sum = 0
            self._sumsq = 0
            self._lsum = 0
            self._stable_run = 0
            self.ref = x
            d = 0
        ring = self._ring
        n = self.n
        r = self._r
        h = self._head
        tot = self._tot
        if tot >= n:
            j = h - n
            if j < 0:
                j += r
            old = ring[j]
            self._sum -= old
            self._sumsq -= old * old
        lag = self.drift_n
        if lag:
            # the earlier window: sample k - lag enters, sample k - lag - n (= k - r, at h) leaves
            if tot >= lag:
                j = h - lag
                if j < 0:
                    j += r
                self._lsum += ring[j]
            if tot >= r:
                self._lsum -= ring[h]
        ring[h] = d
        self._sum += d
        self._sumsq += d * d
        h += 1
        self._head = 0 if h == r else h
        if tot < r:
            tot += 1
            self._tot = tot
        self.count = tot if tot < n else n
        if tot < n:
            self.state = W_FILLING
            return
        ok = self._spread_ok()
        self.sd_ok = 1 if ok else 0
        if lag:
            if tot < r:
                self.drift_ok = 0
                ok = False
            else:
                ds = self._sum - self._lsum
                self.drift_dsum = ds
                lim = self._dlim
                if -lim <= ds <= lim:
                    self.drift_ok = 1
                else:
                    self.drift_ok = 0
                    ok = False
        else:
            self.drift_ok = 1
        if ok:
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
        r = self._r
        start = self._head - n
        if start < 0:
            start += r
        for i in range(n):
            j = start + i
            if j >= r:
                j -= r
            out[i] = self.ref + self._ring[j]
        return n

    def drift_window_counts(self):
        """(sum_now - sum_then, n, drift_n, sps): the drift rate is (sum_now - sum_then) / n counts
        over drift_n / sps seconds (nominal). Once per weighing (reports, tests)."""
        return self.drift_dsum, self.n, self.drift_n, self.sps
