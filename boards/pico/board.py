# Raspberry Pi Pico (RP2040) bench controller: the board object of docs/BOARD_API.md. What both
# real boards share (build order, drivers, config keys, the BOARD_API methods) is
# boards/mcu/mcu_board.py; here: the pin map (pins.py; wiring: boards/README.md) and the RP2040's
# differences: the fast tick on a virtual timer (id -1), a watchdog ceiling of 8300 ms (the RP2040's
# maximum is 8388 ms), the ADC without options.
import mcu_board
try:
    from . import pins as P
except ImportError:
    import pins as P

DEFAULTS = mcu_board.defaults(P.N_CELLS)


class PicoBoard(mcu_board.Board):
    name = "pico"
    TIMER_ID = -1
    WDT_MAX_MS = 8300


def make_board(config=None):
    return PicoBoard(P, DEFAULTS, config)
