# ESP32 (WROOM-32) bench controller: the board object of docs/BOARD_API.md. What both real boards
# share (build order, drivers, config keys, the BOARD_API methods) is boards/mcu/mcu_board.py;
# here: the pin map (pins.py; wiring: boards/README.md) and the ESP32's differences: the fast tick
# on hardware timer 0, no 8.3 s watchdog ceiling (the default stays 8 s), ADC attenuation 11 dB
# (0..~3.1 V).
# On the device this package must not be called `esp32` (the port's built-in module of that name
# wins the import): copy board.py and pins.py flat (the `import pins` fallback below) or rename.
from machine import ADC
import mcu_board
try:
    from . import pins as P
except ImportError:
    import pins as P

# the pressure calibration defaults are the Pico's: recalibrate, the ESP32 ADC is not linear near
# its ends
DEFAULTS = mcu_board.defaults(P.N_CELLS)


class Esp32Board(mcu_board.Board):
    name = "esp32"
    TIMER_ID = 0
    WDT_MAX_MS = 60_000

    def adc(self, pin):
        return ADC(pin, atten=ADC.ATTN_11DB)


def make_board(config=None):
    return Esp32Board(P, DEFAULTS, config)
