# board_select for the Raspberry Pi Pico (RP2040) bench controller: the module firmware/main.py imports first
# (contract: docs/PROTOCOL.md §9; deployed as /lib/board_select.mpy by `ovenctl deploy --board pico`,
# next to this board's board.py and pins.py, flat in /lib).
#
# outputs_off() runs before any other import: it uses nothing but `machine` and the pin numbers
# below, so a missing or broken firmware file cannot leave the heater or the pump on (GPIO levels
# survive a soft reset). autostart() is firmware/plan.py: idle screen, wait for START, the plan.
from machine import Pin

# heater SSR, heater contactor, vacuum pump, vent valve, buzzer (boards/pico/pins.py: ssr, contactor,
# pump, vent, buzzer). All active high, so 0 is the safe level: off, and the vent valve closed.
# tests/host/test_deploy.py checks these numbers against pins.py.
SAFE_LOW = (10, 11, 12, 13, 14)
HOST_DRIVEN = False
host_session = None       # set by main.py only when HOST_DRIVEN (the virtual device)


def outputs_off():
    for g in SAFE_LOW:
        Pin(g, Pin.OUT, value=0)


def autostart():
    import board
    import plan
    return plan.autostart(board)


def link_rx():
    import link
    return link.StdinIO()


def link_tx():
    import link
    return link.stdout_tx()


def after_run(session):
    # the armed watchdog cannot be stopped: keep the verdict on the display and feed it until
    # the operator presses a button; the reset that follows brings the board back to idle
    import plan
    return plan.hold_verdict(session.b)
