# ESP32 (WROOM-32) bench controller: the board object of docs/BOARD_API.md, built from `machine`
# (imported here and nowhere else). Pin map: pins.py; wiring: boards/README.md.
# Same structure as boards/pico/board.py; the port differences: hardware timer 0, ADC attenuation
# 11 dB (0..~3.1 V), VSPI, no 8.3 s watchdog ceiling (the default stays 8 s).
# On the device this package must not be called `esp32` (the port's built-in module of that name
# wins the import): copy board.py and pins.py flat (the `import pins` fallback below) or rename.
#
# make_board(config) drives every output off before anything else (GPIO levels survive a soft
# reset), then builds the sensors, starts the fast timer (SSR time proportioning and button /
# door scanning every tick_ms) and last the hardware watchdog (the app must feed it through
# wdt_feed() at least every wdt_ms).
# Config keys (DEFAULTS): tc "max31855" | "max31856" (the converter by the load cells, CS lct_cs,
# is the same type, or lc_temp "none"); loadcell "hx711" (N channels) | "nau7802" (one channel
# on the I2C bus); calibration of the pressure transducer in ADC counts.
import time
from machine import Pin, SPI, I2C, ADC, WDT, Timer, disable_irq, enable_irq
import codes as C
from outputs import Relay, HeaterSSR, Outputs
from inputs import Operator
from hx711 import HX711
from nau7802 import NAU7802
from max31855 import MAX31855
from max31856 import MAX31856
from pressure import PressureTransducer
try:
    from . import pins as P
except ImportError:
    import pins as P

_WDT_MAX_MS = 60_000
_G = {n: g for n, g, _ in P.PINS}

DEFAULTS = {
    "n_cells": P.N_CELLS,
    "loadcell": "hx711",
    "hx711_gain": 128,
    "tc": "max31855",
    "lc_temp": "same",
    "pressure_counts_at_0pa": 6554,     # recalibrate: the ESP32 ADC is not linear near its ends
    "pressure_counts_at_span": 58982,
    "pressure_span_pa": 110_000,
    "ssr_window_ms": 2000,
    "tick_ms": 10,
    "wdt_ms": 8000,                     # 0: no watchdog (bench debugging only)
    "spi_baud": 1_000_000,
    "i2c_freq": 400_000,
}


class NoSensor:
    temp_c_x100 = 0
    cj_c_x100 = 0

    def read(self):
        return C.ST_NO_DEVICE


def _out(name):
    return Pin(_G[name], Pin.OUT, value=0)


def _in(name):
    if [u for n, _, u in P.PINS if n == name][0] == "in_pu":
        return Pin(_G[name], Pin.IN, Pin.PULL_UP)
    return Pin(_G[name], Pin.IN)


class Esp32Board:
    name = "esp32"

    def __init__(self, config=None):
        cfg = dict(DEFAULTS)
        if config:
            cfg.update(config)
        self.config = cfg
        self.out = Outputs(HeaterSSR(_out("ssr"), cfg["ssr_window_ms"]), Relay(_out("contactor")),
                           Relay(_out("pump")), Relay(_out("vent")), Relay(_out("buzzer")))
        self.out.outputs_safe()
        self._wdt = None
        self._timer = None

        self.operator = Operator(((_in("btn_start"), C.EV_START), (_in("btn_stop"), C.EV_STOP),
                                  (_in("btn_yes"), C.EV_YES), (_in("btn_no"), C.EV_NO)),
                                 door=_in("door"), ticks_ms=time.ticks_ms, ticks_diff=time.ticks_diff,
                                 scan_in_poll=False)

        self.i2c = I2C(P.I2C_ID, sda=Pin(_G["i2c_sda"]), scl=Pin(_G["i2c_scl"]), freq=cfg["i2c_freq"])
        if cfg["loadcell"] == "nau7802":
            lc = NAU7802(self.i2c, ticks_ms=time.ticks_ms, ticks_diff=time.ticks_diff)
            lc.begin()
            self.loadcells = [lc]
        else:
            self.loadcells = [HX711(_in("lc%d_dout" % i), _out("lc%d_sck" % i), gain=cfg["hx711_gain"],
                                    ticks_us=time.ticks_us, ticks_diff=time.ticks_diff,
                                    disable_irq=disable_irq, enable_irq=enable_irq)
                              for i in range(cfg["n_cells"])]
        self.n_cells = len(self.loadcells)

        tc = cfg["tc"]
        self.spi = SPI(P.SPI_ID, baudrate=cfg["spi_baud"], polarity=0, phase=1 if tc == "max31856" else 0,
                       sck=Pin(_G["spi_sck"]), mosi=Pin(_G["spi_mosi"]), miso=Pin(_G["spi_miso"]))
        self.tc = self._tc(tc, "tc_cs")
        self.lc_temp = NoSensor() if cfg["lc_temp"] == "none" else self._tc(tc, "lct_cs")

        self.pressure = PressureTransducer(ADC(Pin(_G["pressure_adc"]), atten=ADC.ATTN_11DB),
                                           cfg["pressure_counts_at_0pa"],
                                           cfg["pressure_counts_at_span"], span_pa=cfg["pressure_span_pa"])
        self.display = None
        try:
            import ssd1306  # pyright: ignore[reportMissingImports]  (micropython-lib, `mip install ssd1306`)
            self.display = ssd1306.SSD1306_I2C(128, 64, self.i2c)
        except (ImportError, OSError):
            pass

        self._tick_cb = self._tick
        self._timer = Timer(0, mode=Timer.PERIODIC, period=cfg["tick_ms"], callback=self._tick_cb)
        if cfg["wdt_ms"]:
            self._wdt = WDT(timeout=min(cfg["wdt_ms"], _WDT_MAX_MS))

    def _tc(self, kind, cs_name):
        cs = _out(cs_name)
        cs.value(1)
        if kind == "max31856":
            return MAX31856(self.spi, cs, ticks_ms=time.ticks_ms, ticks_diff=time.ticks_diff)
        return MAX31855(self.spi, cs)

    def _tick(self, t):
        now = time.ticks_ms()
        self.out.ssr.tick(now)
        self.operator.scan(now)

    # ---- time
    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def wait_until_ms(self, t_ms):
        while True:
            d = time.ticks_diff(t_ms, time.ticks_ms())
            if d <= 0:
                return
            time.sleep_ms(d if d < 100 else 100)

    # ---- outputs
    def outputs_safe(self):
        self.out.outputs_safe()

    def heater_set_duty_ppm(self, d):
        self.out.heater_set_duty_ppm(d)

    def heater_enable(self, on):
        self.out.heater_enable(on)

    def pump_set(self, on):
        self.out.pump_set(on)

    def vent_set(self, op):
        self.out.vent_set(op)

    def buzzer_set(self, on):
        self.out.buzzer_set(on)

    # ---- inputs, watchdog
    def door_closed(self):
        return self.operator.door_closed()

    def wdt_feed(self):
        if self._wdt is not None:
            self._wdt.feed()

    def wdt_start(self, wdt_ms):
        """Arm the hardware watchdog now (make_board arms it when config wdt_ms is not 0;
        firmware/plan.py builds the board with wdt_ms 0 and arms it when a test starts, so that an
        idle board at the REPL does not reset under mpremote). It cannot be stopped afterwards."""
        if self._wdt is None and wdt_ms:
            self._wdt = WDT(timeout=min(wdt_ms, _WDT_MAX_MS))

    def deinit(self):
        """Stop the timer and leave every output safe (the watchdog cannot be stopped)."""
        if self._timer is not None:
            self._timer.deinit()
        self.out.outputs_safe()


def make_board(config=None):
    return Esp32Board(config)
