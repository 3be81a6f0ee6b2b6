# Exact integer helpers for the verdict path. Arguments may be long integers: these run once
# per weighing or verdict, never per sample.


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
