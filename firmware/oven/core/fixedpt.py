# Exact integer helpers. div_*/isqrt*: the verdict path; arguments may be long integers (once per
# weighing or verdict, never per sample). ticks_diff: the control tick's clock, small ints only.
from micropython import const

_TICKS_MAX = const(0x3FFFFFFF)
_TICKS_HALF = const(0x20000000)


def ticks_diff(a, b):
    """time.ticks_diff(a, b) for ticks_ms values that wrap at 2**30, within small-int range."""
    d = (a - b) & _TICKS_MAX
    if d >= _TICKS_HALF:
        d = d - _TICKS_HALF - _TICKS_HALF
    return d


def div_half_even(num, den):
    # GB/T 8170 rounding (round half to even) of num/den, exact for any integers, den != 0.
    if den < 0:
        num = -num
        den = -den
    q, r = divmod(num, den)  # floor division: 0 <= r < den
    r2 = 2 * r
    if r2 > den or (r2 == den and q & 1):
        q += 1
    return q


def div_ceil(num, den):
    if den < 0:
        num = -num
        den = -den
    return -((-num) // den)


def isqrt(n):
    # floor(sqrt(n)) for n >= 0 (MicroPython has no math.isqrt).
    if n < 0:
        raise ValueError("isqrt of negative")
    if n < 2:
        return n
    x = _start(n)
    while True:
        y = (x + n // x) >> 1
        if y >= x:
            return x
        x = y


def _start(n):
    # Initial guess >= sqrt(n); MicroPython ints have no bit_length().
    b = 0
    m = n
    while m:
        m >>= 1
        b += 1
    return 1 << ((b + 1) >> 1)


def isqrt_ceil(n):
    r = isqrt(n)
    return r if r * r == n else r + 1
