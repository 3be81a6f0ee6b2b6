# Operator buttons (START / STOP / YES / NO -> codes.EV_*) and the door switch, debounced by
# polling with an injected clock: the board's operator object (docs/BOARD_API.md).
#
# Debounced: a level input (active_low for a switch to GND with a pull-up). The input must read
# the same for stable_ms before the debounced state follows it; update(now_ms) returns 1 on a
# debounced press (inactive -> active). Bounces shorter than stable_ms never reach the state.
# Operator.scan(now_ms) samples every input and queues press events in a small ring; the board
# calls it from its fast timer (allocation-free, single producer) or, with scan_in_poll=True,
# poll() scans itself (then poll must run at least every stable_ms / 2 for clean debouncing).
# poll() -> the oldest queued EV_* or EV_NONE. prompt(code, cell) records the question asked
# (for the display) and drops queued presses, so a press made before the question is asked
# never answers it. door_closed() -> 1/0 (1 when no door switch is fitted).
from micropython import const
from oven.core.codes import EV_NONE

_RING = const(8)


class Debounced:
    def __init__(self, pin, active_low=True, stable_ms=30):
        self.pin = pin
        self._inv = 1 if active_low else 0
        self.stable_ms = stable_ms
        v = pin.value() ^ self._inv
        self.state = v
        self._raw = v
        self._t = 0

    def update(self, now_ms, ticks_diff):
        v = self.pin.value() ^ self._inv
        if v != self._raw:
            self._raw = v
            self._t = now_ms
            return 0
        if v != self.state and ticks_diff(now_ms, self._t) >= self.stable_ms:
            self.state = v
            return v
        return 0


class Operator:
    def __init__(self, buttons, door=None, stable_ms=30, ticks_ms=None, ticks_diff=None,
                 scan_in_poll=True):
        """buttons: sequence of (Pin, EV_* code); door: a Pin (active low = closed) or None."""
        if ticks_ms is None or ticks_diff is None:
            import time
            ticks_ms = ticks_ms or time.ticks_ms
            ticks_diff = ticks_diff or time.ticks_diff
        self._tms = ticks_ms
        self._tdiff = ticks_diff
        self.buttons = [Debounced(p, True, stable_ms) for p, _ in buttons]
        self._events = bytes([ev for _, ev in buttons])
        self.door = Debounced(door, True, stable_ms) if door is not None else None
        self.scan_in_poll = scan_in_poll
        self._ring = bytearray(_RING)
        self._head = 0
        self._tail = 0
        self.prompt_code = 0
        self.prompt_cell = 0

    def scan(self, now_ms=None):
        if now_ms is None:
            now_ms = self._tms()
        td = self._tdiff
        bs = self.buttons
        i = 0
        n = len(bs)
        while i < n:
            if bs[i].update(now_ms, td):
                h = self._head
                nh = (h + 1) % _RING
                if nh != self._tail:
                    self._ring[h] = self._events[i]
                    self._head = nh
            i += 1
        if self.door is not None:
            self.door.update(now_ms, td)

    def poll(self):
        if self.scan_in_poll:
            self.scan()
        t = self._tail
        if t == self._head:
            return EV_NONE
        ev = self._ring[t]
        self._tail = (t + 1) % _RING
        return ev

    def prompt(self, code, cell):
        self.prompt_code = code
        self.prompt_cell = cell
        self._tail = self._head

    def door_closed(self):
        return 1 if self.door is None else self.door.state
