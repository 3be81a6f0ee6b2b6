"""Pin maps of the real boards (boards/pins_check.py) and a smoke test of each board module in the
MicroPython VM against a fake `machine` module: outputs driven off first, watchdog limit, timer,
every BOARD_API attribute present and working."""
import json
import os

import pytest

import pins_check
from vmbridge import ROOT, run_vm_code

PICO = os.path.join(ROOT, "boards", "pico", "pins.py")
ESP32 = os.path.join(ROOT, "boards", "esp32", "pins.py")

pytestmark = pytest.mark.vm


def _gpios(msgs):
    return sorted({int(m.split("(GPIO")[1].split(")")[0]) for m in msgs})


def test_pico_pin_map_is_clean():
    mod = pins_check.load(PICO)
    errs, warns = pins_check.check_module(mod)
    assert errs == [] and warns == []
    assert mod.PORT == "rp2" and mod.N_CELLS == 4


def test_esp32_pin_map_has_only_the_documented_warnings():
    mod = pins_check.load(ESP32)
    errs, warns = pins_check.check_module(mod)
    assert errs == []
    assert _gpios(warns) == [0, 2, 5, 15, 16, 17], warns
    errs, _ = pins_check.check_module(mod, wifi=True)
    assert errs == []          # the pressure ADC is on ADC1


def test_main_exit_code(capsys):
    assert pins_check.main([]) == 0
    out = capsys.readouterr().out
    assert "error" not in out and out.count("warning") == 6


def test_conflicts_and_names():
    errs, _ = pins_check.check("rp2", [("a", 3, "out"), ("b", 3, "in")])
    assert errs == ["b: GPIO3 already used by a"]
    errs, _ = pins_check.check("esp32", [("a", 4, "out"), ("a", 13, "out")])
    assert errs == ["a: name used twice"]
    errs, _ = pins_check.check("rp2", [("a", 3, "pwm")])
    assert "unknown use" in errs[0]
    errs, _ = pins_check.check("stm32", [("a", 3, "out")])
    assert "unknown port" in errs[0]


@pytest.mark.parametrize("gpio,ok", [(0, True), (22, True), (28, True), (29, False), (30, False), (-1, False)])
def test_rp2_gpio_range(gpio, ok):
    errs, _ = pins_check.check("rp2", [("x", gpio, "out")])
    assert (errs == []) == ok, errs


def test_rp2_warnings_and_adc():
    errs, warns = pins_check.check("rp2", [("a", 23, "out"), ("b", 24, "in"), ("c", 25, "out")])
    assert errs == [] and _gpios(warns) == [23, 24, 25]
    for g in (26, 27, 28):
        assert pins_check.check("rp2", [("p", g, "adc")]) == ([], [])
    errs, _ = pins_check.check("rp2", [("p", 22, "adc")])
    assert errs and "ADC only on GP26" in errs[0]


def test_rp2_bus_functions():
    good = [("sck", 18, "sck"), ("mosi", 19, "mosi"), ("miso", 16, "miso"), ("sda", 0, "sda"), ("scl", 1, "scl")]
    assert pins_check.check("rp2", good, spi_id=0, i2c_id=0) == ([], [])
    assert pins_check.check("rp2", [("sck", 10, "sck"), ("mosi", 11, "mosi"), ("miso", 12, "miso"),
                                    ("sda", 26, "sda"), ("scl", 27, "scl")], spi_id=1, i2c_id=1) == ([], [])
    errs, _ = pins_check.check("rp2", [("sck", 18, "sck")], spi_id=1)
    assert errs == ["sck (GPIO18): not a SCK pin of SPI1"]
    errs, _ = pins_check.check("rp2", [("mosi", 18, "mosi")], spi_id=0)
    assert errs == ["mosi (GPIO18): not a MOSI pin of SPI0"]
    errs, _ = pins_check.check("rp2", [("sda", 1, "sda"), ("scl", 2, "scl")], i2c_id=0)
    assert len(errs) == 2


def test_esp32_forbidden_and_input_only():
    for g in range(6, 12):
        errs, _ = pins_check.check("esp32", [("f", g, "in")])
        assert errs and "SPI flash" in errs[0]
    for g in (20, 24, 28, 31, 40):
        errs, _ = pins_check.check("esp32", [("n", g, "in")])
        assert errs and "no GPIO" in errs[0], g
    for g in (1, 3):
        errs, _ = pins_check.check("esp32", [("u", g, "out")])
        assert errs and "UART0" in errs[0]
    for g in (34, 35, 36, 39):
        for use in ("out", "sck", "mosi", "sda", "scl"):
            errs, _ = pins_check.check("esp32", [("o", g, use)])
            assert errs and "input-only" in errs[0], (g, use)
        errs, _ = pins_check.check("esp32", [("b", g, "in_pu")])
        assert errs and "no internal pull-up" in errs[0]
        assert pins_check.check("esp32", [("i", g, "in")]) == ([], [])
        assert pins_check.check("esp32", [("m", g, "miso")]) == ([], [])


def test_esp32_adc_and_strapping():
    for g in (32, 33, 34, 35, 36, 39):
        assert pins_check.check("esp32", [("a", g, "adc")], wifi=True) == ([], [])
    for g in (4, 13, 14, 25, 26, 27):
        errs, warns = pins_check.check("esp32", [("a", g, "adc")])
        assert errs == [] and "Wi-Fi" in warns[0]
        errs, _ = pins_check.check("esp32", [("a", g, "adc")], wifi=True)
        assert errs and "Wi-Fi" in errs[0]
    for g in (16, 17, 18, 19, 21, 22, 23):
        errs, _ = pins_check.check("esp32", [("a", g, "adc")])
        assert errs and "no ADC" in errs[0]
    for g in (0, 2, 5, 12, 15):
        errs, warns = pins_check.check("esp32", [("s", g, "out")])
        assert errs == [] and "strapping" in warns[0]
    errs, warns = pins_check.check("esp32", [("p", 17, "out")])
    assert errs == [] and "PSRAM" in warns[0]


def test_missing_load_cell_pins():
    class M:
        PORT = "rp2"
        N_CELLS = 2
        PINS = (("lc0_dout", 2, "in"), ("lc0_sck", 3, "out"), ("lc1_dout", 4, "in"))
    errs, _ = pins_check.check_module(M)
    assert errs == ["N_CELLS = 2 but lc1_sck is missing"]


# ---------------------------------------------------------------------------------------------
# The board modules in the VM, on a fake `machine`

_FAKE_MACHINE = r'''
import sys, json
LOG = []
STATE = {}

class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2
    ALL = {}
    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.v = 1 if value is None else value
        LOG.append(["pin", id, mode, pull, value])
        Pin.ALL[id] = self
    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v

class SPI:
    def __init__(self, id, baudrate=0, polarity=0, phase=0, sck=None, mosi=None, miso=None):
        LOG.append(["spi", id, polarity, phase, sck.id, mosi.id, miso.id])
    def readinto(self, buf, write=0):
        buf[0] = 0x07; buf[1] = 0x84; buf[2] = 0x19; buf[3] = 0x00   # 120.25 degC, CJ 25 degC
    def write(self, buf):
        pass
    def write_readinto(self, tx, rx):
        for i in range(len(rx)):
            rx[i] = 0

class I2C:
    def __init__(self, id, scl=None, sda=None, freq=0):
        LOG.append(["i2c", id, sda.id, scl.id, freq])
    def readfrom_mem_into(self, addr, reg, buf):
        raise OSError(19)
    def writeto_mem(self, addr, reg, buf):
        raise OSError(19)

class ADC:
    ATTN_11DB = 3
    def __init__(self, pin, atten=None):
        LOG.append(["adc", pin.id, atten])
    def read_u16(self):
        return 6554 + 4766

class WDT:
    def __init__(self, id=0, timeout=5000):
        LOG.append(["wdt", timeout])
        STATE["feeds"] = 0
    def feed(self):
        STATE["feeds"] += 1

class Timer:
    PERIODIC = 1
    def __init__(self, id, mode=1, period=0, callback=None):
        LOG.append(["timer", id, period])
        STATE["timer"] = self
        self.cb = callback
    def deinit(self):
        LOG.append(["timer_deinit"])

class machine:
    Pin = Pin
    SPI = SPI
    I2C = I2C
    ADC = ADC
    WDT = WDT
    Timer = Timer
    @staticmethod
    def disable_irq():
        return 0
    @staticmethod
    def enable_irq(s):
        pass

sys.modules["machine"] = machine
'''

_SMOKE = r'''
from oven.core import codes as C
import %(pkg)s.board as B
cfg = %(cfg)s
b = B.make_board(cfg)
out = {}
out["name"] = b.name
out["n_cells"] = b.n_cells
out["log"] = LOG
out["first_pins"] = [e[1:] for e in LOG[:5]]
ssr = Pin.ALL[b._g["ssr"]]
b.heater_enable(1)
b.heater_set_duty_ppm(1000000)
STATE["timer"].cb(STATE["timer"])
out["ssr_on"] = ssr.v
b.pump_set(1)
b.vent_set(1)
b.buzzer_set(1)
b.outputs_safe()
out["after_safe"] = [Pin.ALL[b._g[n]].v for n in ("ssr", "contactor", "pump", "vent", "buzzer")]
out["tc"] = [b.tc.read(), b.tc.temp_c_x100, b.tc.cj_c_x100]
out["lc_temp"] = b.lc_temp.read()
out["probe"] = None if b.probe is None else [b.probe.read(), b.probe.temp_c_x100]
out["p"] = [b.pressure.read(), b.pressure.pa]
out["ready"] = [lc.ready() for lc in b.loadcells]
out["poll"] = b.operator.poll()
Pin.ALL[b._g["btn_yes"]].v = 0
STATE["timer"].cb(STATE["timer"])
t0 = b.ticks_ms()
b.wait_until_ms(t0 + 40)
STATE["timer"].cb(STATE["timer"])
out["poll2"] = b.operator.poll()
out["waited"] = b.ticks_diff(b.ticks_ms(), t0) >= 40
out["door"] = b.door_closed()
b.wdt_feed()
out["feeds"] = STATE.get("feeds", -1)
out["display"] = b.display is None
b.deinit()
print("@@J" + json.dumps(out))
'''


def _smoke(pkg, cfg=None):
    code = _FAKE_MACHINE + _SMOKE % {"pkg": pkg, "cfg": repr(cfg)}
    out = run_vm_code(code, paths=("firmware", "boards", "boards/mcu"))
    line = [x for x in out.splitlines() if x.startswith("@@J")][0]
    return json.loads(line[3:])


@pytest.mark.parametrize("pkg", ["pico", "esp32"])
def test_board_on_fake_machine(pkg):
    mod = pins_check.load(PICO if pkg == "pico" else ESP32)
    g = {n: p for n, p, _ in mod.PINS}
    r = _smoke(pkg)
    assert r["name"] == pkg and r["n_cells"] == mod.N_CELLS
    # outputs first, as outputs driven low, before any other pin or bus exists
    assert r["first_pins"] == [[g[n], 1, -1, 0] for n in ("ssr", "contactor", "pump", "vent", "buzzer")]
    assert r["ssr_on"] == 1 and r["after_safe"] == [0, 0, 0, 0, 1]
    assert r["tc"] == [0, 12025, 2500] and r["lc_temp"] == 0
    assert r["p"][0] == 0 and abs(r["p"][1] - 10000) < 10
    assert r["ready"] == [False] * mod.N_CELLS
    # no door switch on the Pico (its GPIO is the probe's chip select): door_closed() reads 1
    assert r["poll"] == 0 and r["poll2"] == 3 and r["waited"] and r["door"] == (0 if "door" in g else 1)
    # the reference probe: a converter of the tc's type on the same bus, its own chip select
    assert r["probe"] == [0, 12025] and "probe_cs" in g
    assert r["feeds"] == 1 and r["display"] is True
    log = r["log"]
    # the watchdog starts last, after every slow initialisation
    assert [e for e in log if e[0] == "wdt"] == [["wdt", 8000]]
    assert [e[0] for e in log[-3:]] == ["timer", "wdt", "timer_deinit"]
    timer = [e for e in log if e[0] == "timer"][0]
    assert timer == ["timer", -1 if pkg == "pico" else 0, 10]
    spi = [e for e in log if e[0] == "spi"][0]
    assert spi == ["spi", mod.SPI_ID, 0, 0, g["spi_sck"], g["spi_mosi"], g["spi_miso"]]
    i2c = [e for e in log if e[0] == "i2c"][0]
    assert i2c[1:4] == [mod.I2C_ID, g["i2c_sda"], g["i2c_scl"]]
    adc = [e for e in log if e[0] == "adc"][0]
    assert adc == ["adc", g["pressure_adc"], 3 if pkg == "esp32" else None]
    pulls = {e[1]: e[3] for e in log if e[0] == "pin" and e[2] == 0}
    for n, p, use in mod.PINS:
        if use == "in_pu":
            assert pulls[p] == 1, n
        elif use == "in":
            assert pulls[p] == -1, n


def test_board_options_on_fake_machine():
    r = _smoke("pico", {"wdt_ms": 20000, "tc": "max31856", "lc_temp": "none", "loadcell": "nau7802"})
    assert ["wdt", 8300] in r["log"]
    spi = [e for e in r["log"] if e[0] == "spi"][0]
    assert spi[3] == 1                      # MAX31856: SPI mode 1
    assert r["n_cells"] == 1 and r["ready"] == [False]
    assert r["tc"][0] == 8 and r["lc_temp"] == 8   # fake bus reads zeros: ST_NO_DEVICE
    assert r["probe"] == [8, 0]              # a MAX31856 too, like the tc
    r = _smoke("pico", {"probe": None})
    assert r["probe"] is None
    r = _smoke("esp32", {"probe": "none", "tc": "max31856", "wdt_ms": 0})
    assert r["probe"] is None
    with pytest.raises(Exception) as ei:
        _smoke("pico", {"tc": "max31856", "probe": "max31855"})
    assert "board config probe" in str(ei.value)
    r = _smoke("esp32", {"wdt_ms": 0, "n_cells": 1})
    assert not [e for e in r["log"] if e[0] == "wdt"] and r["feeds"] == -1 and r["n_cells"] == 1
