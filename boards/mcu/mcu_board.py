# The part of the real boards' code that is the same on the Pico and the ESP32 (boards/README.md):
#  - Board: the board object of docs/BOARD_API.md, built from `machine` and the firmware's drivers.
#    boards/<board>/board.py subclasses it with its name, pin map (pins.py) and port differences
#    (TIMER_ID, WDT_MAX_MS, adc()).
#  - the board_select contract after outputs_off() (docs/PROTOCOL.md §9): autostart, link_rx,
#    link_tx, after_run, HOST_DRIVEN. boards/<board>/board_select.py keeps SAFE_LOW and
#    outputs_off() (nothing but `machine`) and forwards every other name here (its __getattr__).
# Deployed flat as /lib/mcu_board.mpy next to the board's board.py, pins.py and board_select.py
# (host_tools/ovenctl/deploy.py BOARDS, firmware/manifest.py); linted with both ports' stubs
# (tools/pyright-rp2.json, tools/pyright-esp32.json).
#
# Board(pins, defaults, config) drives every output off before anything else (GPIO levels survive
# a soft reset), then builds the sensors, starts the fast timer (SSR time proportioning and button /
# door scanning every tick_ms) and last the hardware watchdog (the app must feed it through
# wdt_feed() at least every wdt_ms).
# Config keys (defaults()): tc "max31855" | "max31856" (the converter by the load cells, CS lct_cs,
# is the same type, or lc_temp "none"); probe "same" | "max31855" | "max31856" (the reference probe in a
# dummy cell, CS probe_cs, on the same SPI bus: the same converter type as tc, since the bus has one SPI
# mode) or None / "none" (no probe: the soak is timed on the chamber, docs/APP.md); loadcell "hx711" (N channels) | "nau7802" (one channel
# on the I2C bus); calibration of the pressure transducer in ADC counts.
#
# Top-level imports: `machine`, `time` and `codes` only (main.py imports codes before it asks
# board_select for anything). The drivers are imported when a board is built: main.py's power-cut
# recovery asks board_select (so this module) for link_rx / link_tx / resume_plan before any board
# exists, and must still run when a driver file is missing or broken.
import time
from micropython import const
from machine import Pin, SPI, I2C, ADC, WDT, Timer, disable_irq, enable_irq
from oven.core import codes as C

_SLEEP_MAX_MS = const(100)      # wait_until_ms() sleeps in slices of at most this


def defaults(n_cells):
    """make_board()'s config defaults (a board's DEFAULTS) for a board with n_cells HX711 channels."""
    return {
        "n_cells": n_cells,
        "loadcell": "hx711",
        "hx711_gain": 128,
        "tc": "max31855",
        "lc_temp": "same",
        "probe": "same",
        "pressure_counts_at_0pa": 6554,     # 0.5 V of a 0.5..4.5 V transducer behind a 3.3/5 divider
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


class Board:
    """A real board. Subclasses set name, TIMER_ID (the machine.Timer of the fast tick) and
    WDT_MAX_MS (the port's watchdog ceiling), and override adc(pin) where the port's ADC needs
    options."""
    name = ""
    TIMER_ID = -1
    WDT_MAX_MS = 0          # every subclass sets name, TIMER_ID and WDT_MAX_MS

    def __init__(self, pins, defaults, config=None):
        from oven.drivers.outputs import Relay, HeaterSSR, Outputs
        from oven.drivers.inputs import Operator
        from oven.drivers.pressure import PressureTransducer
        self._pins = pins
        self._g = {n: g for n, g, _ in pins.PINS}
        cfg = dict(defaults)
        if config:
            cfg.update(config)
        self.config = cfg
        self.out = Outputs(HeaterSSR(self._out("ssr"), cfg["ssr_window_ms"]), Relay(self._out("contactor")),
                           Relay(self._out("pump")), Relay(self._out("vent")), Relay(self._out("buzzer")))
        self.out.outputs_safe()
        self._wdt = None
        self._timer = None

        self.operator = Operator(((self._in("btn_start"), C.EV_START), (self._in("btn_stop"), C.EV_STOP),
                                  (self._in("btn_yes"), C.EV_YES), (self._in("btn_no"), C.EV_NO)),
                                 door=self._in("door") if "door" in self._g else None, ticks_ms=time.ticks_ms, ticks_diff=time.ticks_diff,
                                 scan_in_poll=False)

        g = self._g
        self.i2c = I2C(pins.I2C_ID, sda=Pin(g["i2c_sda"]), scl=Pin(g["i2c_scl"]), freq=cfg["i2c_freq"])
        # only the configured drivers are imported: each costs heap (docs/FIT.md)
        if cfg["loadcell"] == "nau7802":
            from oven.drivers.nau7802 import NAU7802
            lc = NAU7802(self.i2c, ticks_ms=time.ticks_ms, ticks_diff=time.ticks_diff)
            lc.begin()
            self.loadcells = [lc]
        else:
            from oven.drivers.hx711 import HX711
            self.loadcells = [HX711(self._in("lc%d_dout" % i), self._out("lc%d_sck" % i), gain=cfg["hx711_gain"],
                                    ticks_us=time.ticks_us, ticks_diff=time.ticks_diff,
                                    disable_irq=disable_irq, enable_irq=enable_irq)
                              for i in range(cfg["n_cells"])]
        self.n_cells = len(self.loadcells)

        tc = cfg["tc"]
        self.spi = SPI(pins.SPI_ID, baudrate=cfg["spi_baud"], polarity=0, phase=1 if tc == "max31856" else 0,
                       sck=Pin(g["spi_sck"]), mosi=Pin(g["spi_mosi"]), miso=Pin(g["spi_miso"]))
        self.tc = self._tc(tc, "tc_cs")
        self.lc_temp = NoSensor() if cfg["lc_temp"] == "none" else self._tc(tc, "lct_cs")
        pr = cfg["probe"]
        if pr is None or pr == "none":
            self.probe = None
        elif pr == "same" or pr == tc:
            self.probe = self._tc(tc, "probe_cs")
        else:
            raise ValueError("board config probe: %r, expected \"same\", \"%s\" (the tc's type: one SPI mode on "
                             "the shared bus) or null" % (pr, tc))

        self.pressure = PressureTransducer(self.adc(Pin(g["pressure_adc"])), cfg["pressure_counts_at_0pa"],
                                           cfg["pressure_counts_at_span"], span_pa=cfg["pressure_span_pa"])
        self.display = None
        try:
            import ssd1306  # pyright: ignore[reportMissingImports]  (micropython-lib, `mip install ssd1306`)
            self.display = ssd1306.SSD1306_I2C(128, 64, self.i2c)
        except (ImportError, OSError):
            pass

        self._tick_cb = self._tick
        self._timer = Timer(self.TIMER_ID, mode=Timer.PERIODIC, period=cfg["tick_ms"], callback=self._tick_cb)
        if cfg["wdt_ms"]:
            self._wdt = WDT(timeout=min(cfg["wdt_ms"], self.WDT_MAX_MS))

    # ---- construction (pin map names of pins.py)
    def _out(self, name):
        return Pin(self._g[name], Pin.OUT, value=0)

    def _in(self, name):
        if [u for n, _, u in self._pins.PINS if n == name][0] == "in_pu":
            return Pin(self._g[name], Pin.IN, Pin.PULL_UP)
        return Pin(self._g[name], Pin.IN)

    def adc(self, pin):
        return ADC(pin)

    def _tc(self, kind, cs_name):
        cs = self._out(cs_name)
        cs.value(1)
        if kind == "max31856":
            from oven.drivers.max31856 import MAX31856
            return MAX31856(self.spi, cs, ticks_ms=time.ticks_ms, ticks_diff=time.ticks_diff)
        from oven.drivers.max31855 import MAX31855
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
            time.sleep_ms(d if d < _SLEEP_MAX_MS else _SLEEP_MAX_MS)

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
        firmware/oven/run/plan.py builds the board with wdt_ms 0 and arms it when a test starts, so that an
        idle board at the REPL does not reset under mpremote). It cannot be stopped afterwards."""
        if self._wdt is None and wdt_ms:
            self._wdt = WDT(timeout=min(wdt_ms, self.WDT_MAX_MS))

    def deinit(self):
        """Stop the timer and leave every output safe (the watchdog cannot be stopped)."""
        if self._timer is not None:
            self._timer.deinit()
        self.out.outputs_safe()


# ---------------------------------------------------------------- board_select (after outputs_off)
HOST_DRIVEN = False       # Session.run() loops on the board


def autostart():
    # firmware/oven/run/start.py: idle screen, wait for START, the plan (boards/README.md)
    import board
    from oven.run import start
    return start.autostart(board)


def link_rx():
    from oven import link
    return link.StdinIO()


def link_tx():
    from oven import link
    return link.stdout_tx()


def after_run(session):
    # the armed watchdog cannot be stopped: keep the verdict on the display and feed it until
    # the operator presses a button; the reset that follows brings the board back to idle
    from oven.run import start
    return start.hold_verdict(session.b)
