# The in-oven live estimate (firmware/oven/core/live.py): its filter, the corrections, the early FAIL rule,
# and its tick allocating nothing. Runs under CPython and in the MicroPython VM.
from array import array

from oven.core.live import LiveEstimate


def _est(n=2, limit_ppm=5000, zero=100000, m0_net=2000000):
    z = array("i", [zero] * n)
    c0 = array("i", [m0_net] * n)
    div = array("i", [(m0_net + 500) // 1000] * n)
    return LiveEstimate(n, limit_ppm, z, c0, div), z, c0


def _raw(n, counts):
    return array("i", [counts] * n)


def test_constant_loss_converges_and_is_ppm_of_m0():
    e, z, c0 = _est()
    # 0.3 % of a 2,000,000-count m0 lighter: 6000 counts
    raw = _raw(2, z[0] + c0[0] - 6000)
    valid = bytearray([1, 1])
    prev = 0
    for _ in range(400):
        assert e.update(raw, valid, 0, 0) == 0
        assert prev <= e.ppm[0] <= 3000       # rises monotonically, never overshoots
        prev = e.ppm[0]
    assert 2990 <= e.ppm[0] <= 3000, e.ppm[0]
    assert e.ppm[1] == e.ppm[0]


def test_invalid_cells_are_skipped_and_keep_their_value():
    e, z, c0 = _est()
    raw = _raw(2, z[0] + c0[0] - 6000)
    for _ in range(100):
        e.update(raw, bytearray([1, 0]), 0, 0)
    assert e.ppm[0] > 2000 and e.ppm[1] == 0


def test_blank_corrections_remove_the_zero_drift():
    e, z, c0 = _est(n=1)
    # the blank says: +2 counts per 0.01 degC of load-cell warming, +300 counts under vacuum
    e.k_q16[0] = 2 << 16
    e.vac_counts[0] = 300
    dtc = 500                                   # 5 degC warmer than at the tare
    raw = _raw(1, z[0] + c0[0] + 2 * dtc + 300)  # no loss, only drift
    for _ in range(300):
        e.update(raw, bytearray([1]), dtc, 1)
    assert e.ppm[0] == 0
    # the same reading outside the vacuum: the 300-count offset is not applied, the cell
    # reads 300 counts heavier, a gain of 150 ppm
    e2, z2, c02 = _est(n=1)
    e2.k_q16[0] = 2 << 16
    e2.vac_counts[0] = 300
    for _ in range(300):
        e2.update(raw, bytearray([1]), dtc, 0)
    assert -150 <= e2.ppm[0] <= -145, e2.ppm[0]


def test_early_fail_after_60_ticks_over_limit_plus_margin():
    e, z, c0 = _est(limit_ppm=5000)
    valid = bytearray([1, 1])
    over = _raw(2, z[0] + c0[0] - 14000)          # 7000 ppm: over 5000 + 1000
    raw = array("i", [over[0], z[0] + c0[0]])      # cell 1 loses nothing
    ticks = 0
    first = -1
    while ticks < 1000:
        ticks += 1
        m = e.update(raw, valid, 0, 0)
        if m:
            assert m == 1 and first < 0
            first = ticks
    assert first > 60 and e.early_fail[0] == 1 and e.early_fail[1] == 0
    assert not e.all_failed()
    # the first tick over the limit + 59 more
    e2, _, _ = _est(limit_ppm=5000)
    crossed = 0
    for t in range(1, 1000):
        if e2.update(raw, valid, 0, 0):
            assert t - crossed + 1 == 60, (t, crossed)
            break
        if not crossed and e2.ppm[0] > 6000:
            crossed = t


def test_dip_under_the_limit_restarts_the_hold():
    e, z, c0 = _est(n=1, limit_ppm=5000)
    hi = _raw(1, z[0] + c0[0] - 20000)        # 10,000 ppm
    valid = bytearray([1])
    for _ in range(200):                       # converges on 10,000 ppm, then 60 ticks held
        if e.update(hi, valid, 0, 0):
            break
    assert e.early_fail[0] == 1 and e.all_failed()
    # a fresh estimate that drops below the limit every 50 ticks never fails
    e, z, c0 = _est(n=1, limit_ppm=5000)
    lo = _raw(1, z[0] + c0[0])
    for k in range(20):
        for _ in range(49):
            assert e.update(hi, valid, 0, 0) == 0
        for _ in range(40):
            e.update(lo, valid, 0, 0)
    assert e.early_fail[0] == 0


def test_rejects_too_many_cells():
    try:
        LiveEstimate(30, 5000, array("i", [0] * 30), array("i", [1] * 30), array("i", [1] * 30))
    except ValueError:
        return
    assert False


def test_update_allocates_nothing():
    try:
        import micropython
        micropython.heap_lock
    except (ImportError, AttributeError):
        return                                # CPython: the VM run of this file is the proof
    e, z, c0 = _est(n=4, limit_ppm=5000)
    raw = _raw(4, z[0] + c0[0] - 20000)
    valid = bytearray([1, 1, 0, 1])
    masks = array("i", [0] * 200)
    micropython.heap_lock()
    try:
        for t in range(200):
            masks[t] = e.update(raw, valid, 1234, 1)
    finally:
        micropython.heap_unlock()
    total = 0
    for m in masks:
        total |= m
    assert total == 0b1011 and e.all_failed() == 0
