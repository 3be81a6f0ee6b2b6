# board_select for the ESP32 (WROOM-32) bench controller: the module firmware/main.py imports first
# (contract: docs/PROTOCOL.md §9; deployed as /lib/board_select.mpy by `ovenctl deploy --board esp32`,
# next to this board's board.py and pins.py and the shared mcu_board.py, flat in /lib).
#
# outputs_off() runs before any other import: it uses nothing but `machine` and the pin numbers
# below, so a missing or broken firmware file cannot leave the heater or the pump on (GPIO levels
# survive a soft reset). The rest of the contract (autostart, link_rx, link_tx, after_run,
# HOST_DRIVEN) is the same on both real boards: boards/mcu/mcu_board.py, imported by __getattr__
# below on the first use of one of those names (after outputs_off()).
from machine import Pin

# heater SSR, heater contactor, vacuum pump, vent valve, buzzer (boards/esp32/pins.py: ssr, contactor,
# pump, vent, buzzer). All active high, so 0 is the safe level: off, and the vent valve closed.
# tests/host/test_deploy.py checks these numbers against pins.py.
SAFE_LOW = (13, 27, 32, 33, 2)
host_session = None       # main.py sets it only when HOST_DRIVEN (the virtual device); declared for pyright


def outputs_off():
    for g in SAFE_LOW:
        Pin(g, Pin.OUT, value=0)


def __getattr__(name):
    import mcu_board
    return getattr(mcu_board, name)
