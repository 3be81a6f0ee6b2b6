# Heater SSR (time-proportioned, from a timer callback), heater safety contactor, vacuum pump and
# vent relays, buzzer: the board's output side (docs/BOARD_API.md), on injected Pins.
#
# Relay: on/off with polarity (active_low for low-side-driven relay boards); safe() = off.
# HeaterSSR: duty_ppm is written by the control loop, tick(now_ms) runs in the board's fast timer
# callback (1..10 ms) and drives the pin with ssr.TimeProportion.level(). Only an int attribute is
# shared with the callback (atomic), and tick() allocates nothing, so the callback may be a hard
# IRQ. off() drives the pin low at once instead of waiting for the next tick.
# Outputs: the board methods outputs_safe / heater_set_duty_ppm / heater_enable / pump_set /
# vent_set / buzzer_set over those objects. outputs_safe(): SSR off, contactor open, pump off,
# vent closed, in that order; callable at any time (also before the timer runs), idempotent.
# The contactor is an independent second path: a welded SSR cannot heat once it is open.
from micropython import const
from oven.drivers.ssr import TimeProportion

_PPM_MAX = const(1_000_000)


class Relay:
    def __init__(self, pin, active_low=False):
        self.pin = pin
        self._inv = 1 if active_low else 0
        self.on = 0
        pin.value(self._inv)

    def set(self, on):
        on = 1 if on else 0
        self.on = on
        self.pin.value(on ^ self._inv)

    def safe(self):
        self.set(0)


class HeaterSSR:
    def __init__(self, pin, window_ms=2000, min_switch_ms=10, active_low=False):
        self.pin = pin
        self.tp = TimeProportion(window_ms, min_switch_ms)
        self._inv = 1 if active_low else 0
        self.duty_ppm = 0
        self.level = 0
        pin.value(self._inv)

    def set_duty_ppm(self, d):
        self.duty_ppm = 0 if d <= 0 else (_PPM_MAX if d > _PPM_MAX else d)

    def tick(self, now_ms):
        lv = self.tp.level(self.duty_ppm, now_ms)
        if lv != self.level:
            self.level = lv
            self.pin.value(lv ^ self._inv)

    def off(self):
        self.duty_ppm = 0
        self.level = 0
        self.pin.value(self._inv)


class Outputs:
    def __init__(self, ssr, contactor, pump, vent, buzzer):
        self.ssr = ssr
        self.contactor = contactor
        self.pump = pump
        self.vent = vent
        self.buzzer = buzzer

    def outputs_safe(self):
        self.ssr.off()
        self.contactor.safe()
        self.pump.safe()
        self.vent.safe()

    def heater_set_duty_ppm(self, d):
        self.ssr.set_duty_ppm(d)

    def heater_enable(self, on):
        self.contactor.set(on)

    def pump_set(self, on):
        self.pump.set(on)

    def vent_set(self, op):
        self.vent.set(op)

    def buzzer_set(self, on):
        self.buzzer.set(on)
