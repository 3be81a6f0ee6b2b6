# Time-proportioned output for the heater SSR.
#
# A zero-cross SSR can only switch at mains zero crossings, so the output is a slow PWM: in each
# window of window_ms the pin is on for the first duty * window_ms, off for the rest. The board
# calls level() from a fast timer (1..10 ms) and drives the pin with the result.
#
# level() is pure (a function of duty and time only): no state to corrupt from an interrupt,
# and a duty change takes effect within the current window without a stray extra pulse
# bigger than the change itself.
#
# Minimum on/off time: a pulse shorter than min_switch_ms (default 10 ms = one 50 Hz half-cycle)
# would be swallowed or stretched to a whole half-cycle at random by the zero-cross SSR, so such
# duties snap to 0 (on time < min) or to full on (off time < min). The duty error from that is at
# most min_switch_ms / window_ms (0.5 % at the defaults), at the ends of the range only.
# Resolution: 1 ms of window_ms (0.05 % at 2000 ms).
# ticks_ms wraps at 2**30, which is not a multiple of the window: one window every 12.4 days is
# short; harmless for a heater.
from micropython import const

_PPM_MAX = const(1_000_000)


class TimeProportion:
    def __init__(self, window_ms=2000, min_switch_ms=10):
        if not (10 <= window_ms <= 1_000_000) or not (0 <= min_switch_ms * 2 <= window_ms):
            raise ValueError("window")
        self.window_ms = window_ms
        self.min_switch_ms = min_switch_ms

    def on_ms(self, duty_ppm):
        """On time per window for duty_ppm, after the minimum-switch rule."""
        w = self.window_ms
        if duty_ppm <= 0:
            return 0
        if duty_ppm >= _PPM_MAX:
            return w
        # duty * w / 1e6 split in thousandths so that no product exceeds 1e9 (< 2**30)
        q = duty_ppm // 1000
        r = duty_ppm - q * 1000
        on = (q * w + (r * w + 500) // 1000 + 500) // 1000
        if on < self.min_switch_ms:
            return 0
        if w - on < self.min_switch_ms:
            return w
        return on

    def level(self, duty_ppm, now_ms):
        """0 or 1: the SSR input level at now_ms (ticks_ms) for duty_ppm."""
        return 1 if now_ms % self.window_ms < self.on_ms(duty_ppm) else 0
