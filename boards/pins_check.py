"""Pin map checker for the real boards (CPython, no hardware): `python boards/pins_check.py`.

A pin map (boards/<board>/pins.py) gives PORT, SPI_ID, I2C_ID and PINS, a tuple of
(name, gpio, use) with use one of USES. check() returns (errors, warnings), lists of strings:

- any port: the same GPIO or name twice, an unknown use;
- rp2 (RP2040): only GP0..GP28 (GP29 is the Pico's VSYS/3 sense); GP23..GP25 are not on the
  Pico header (SMPS mode, VBUS sense, LED; the Pico W's radio) - warning; ADC only on GP26..28;
  SPI/I2C signals must sit on a pin that has that function for SPI_ID / I2C_ID;
- esp32: no such GPIO (20, 24, 28..31, > 39); flash pins 6..11 and UART0 1/3 (USB serial,
  mpremote) forbidden; 34..39 are input-only (no outputs, no internal pull-ups); ADC only on ADC1
  (32..39) or ADC2 (0, 2, 4, 12..15, 25..27), ADC2 is unusable while Wi-Fi runs - warning, an
  error with wifi=True; strapping pins 0, 2, 5, 12, 15 and the WROVER PSRAM pins 16/17 - warning.
"""
import importlib.util
import os
import sys

USES = ("out", "in", "in_pu", "adc", "sck", "mosi", "miso", "sda", "scl")
_OUTPUTS = ("out", "sck", "mosi", "sda", "scl")

# RP2040 function select: SPI F1 by gpio % 4 (RX, CSn, SCK, TX), instance 0 for GP0-7 / 16-23;
# I2C F3: even = SDA, odd = SCL, instance (gpio // 2) % 2.
_RP2_SPI_ROLE = {0: "miso", 2: "sck", 3: "mosi"}

_ESP32_GPIOS = set(range(0, 20)) | {21, 22, 23, 25, 26, 27} | set(range(32, 40))
_ESP32_FLASH = set(range(6, 12))
_ESP32_UART0 = {1: "TX", 3: "RX"}
_ESP32_INPUT_ONLY = set(range(34, 40))
_ESP32_ADC1 = set(range(32, 40))
_ESP32_ADC2 = {0, 2, 4, 12, 13, 14, 15, 25, 26, 27}
_ESP32_STRAP = {
    0: "strapping pin (BOOT: low at reset = download mode)",
    2: "strapping pin (must be low or floating at reset for download mode)",
    5: "strapping pin (SDIO timing, pulled up at reset)",
    12: "strapping pin MTDI (high at reset selects 1.8 V flash: the module does not boot)",
    15: "strapping pin MTDO (pulled up at reset; low silences the boot log)",
}
_ESP32_PSRAM = {16, 17}


def _rp2_spi_ok(gpio, use, bus):
    inst = 0 if (gpio % 16) < 8 else 1
    return inst == bus and _RP2_SPI_ROLE.get(gpio % 4) == use


def _rp2_i2c_ok(gpio, use, bus):
    return (gpio // 2) % 2 == bus and ("sda" if gpio % 2 == 0 else "scl") == use


def check(port, pins, spi_id=0, i2c_id=0, wifi=False):
    errors = []
    warnings = []
    seen = {}
    names = set()
    for name, gpio, use in pins:
        where = "%s (GPIO%d)" % (name, gpio)
        if name in names:
            errors.append("%s: name used twice" % name)
        names.add(name)
        if gpio in seen:
            errors.append("%s: GPIO%d already used by %s" % (name, gpio, seen[gpio]))
        else:
            seen[gpio] = name
        if use not in USES:
            errors.append("%s: unknown use %r" % (where, use))
            continue
        if port == "rp2":
            _check_rp2(where, gpio, use, spi_id, i2c_id, errors, warnings)
        elif port == "esp32":
            _check_esp32(where, gpio, use, wifi, errors, warnings)
        else:
            errors.append("unknown port %r" % port)
            break
    return errors, warnings


def _check_rp2(where, gpio, use, spi_id, i2c_id, errors, warnings):
    if not (0 <= gpio <= 28):
        errors.append("%s: the RP2040 has no usable GP%d (GP0..GP28)" % (where, gpio))
        return
    if 23 <= gpio <= 25:
        warnings.append("%s: not on the Pico header (SMPS mode / VBUS sense / LED; Pico W radio)" % where)
    if use == "adc" and not (26 <= gpio <= 28):
        errors.append("%s: ADC only on GP26..GP28" % where)
    if use in ("sck", "mosi", "miso") and not _rp2_spi_ok(gpio, use, spi_id):
        errors.append("%s: not a %s pin of SPI%d" % (where, use.upper(), spi_id))
    if use in ("sda", "scl") and not _rp2_i2c_ok(gpio, use, i2c_id):
        errors.append("%s: not a %s pin of I2C%d" % (where, use.upper(), i2c_id))


def _check_esp32(where, gpio, use, wifi, errors, warnings):
    if gpio not in _ESP32_GPIOS:
        errors.append("%s: the ESP32 has no GPIO%d" % (where, gpio))
        return
    if gpio in _ESP32_FLASH:
        errors.append("%s: GPIO6..11 are wired to the SPI flash" % where)
        return
    if gpio in _ESP32_UART0:
        errors.append("%s: UART0 %s carries the USB serial console (REPL, mpremote)" % (where, _ESP32_UART0[gpio]))
    if gpio in _ESP32_INPUT_ONLY:
        if use in _OUTPUTS:
            errors.append("%s: GPIO34..39 are input-only, cannot be %s" % (where, use))
        elif use == "in_pu":
            errors.append("%s: GPIO34..39 have no internal pull-up (use 'in' and an external resistor)" % where)
    if use == "adc":
        if gpio in _ESP32_ADC2:
            msg = "%s: ADC2 channel, unusable while Wi-Fi is active" % where
            (errors if wifi else warnings).append(msg)
        elif gpio not in _ESP32_ADC1:
            errors.append("%s: no ADC on this pin" % where)
    if gpio in _ESP32_STRAP:
        warnings.append("%s: %s" % (where, _ESP32_STRAP[gpio]))
    if gpio in _ESP32_PSRAM:
        warnings.append("%s: wired to PSRAM on WROVER modules (free on WROOM)" % where)


def load(path):
    """The pin map module at path (a plain data file: no machine import)."""
    spec = importlib.util.spec_from_file_location("pins_" + os.path.basename(os.path.dirname(path)), path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check_module(mod, wifi=False):
    errs, warns = check(mod.PORT, mod.PINS, getattr(mod, "SPI_ID", 0), getattr(mod, "I2C_ID", 0), wifi)
    names = [p[0] for p in mod.PINS]
    for i in range(mod.N_CELLS):
        for sig in ("dout", "sck"):
            if "lc%d_%s" % (i, sig) not in names:
                errs.append("N_CELLS = %d but lc%d_%s is missing" % (mod.N_CELLS, i, sig))
    return errs, warns


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    paths = argv or [os.path.join(here, b, "pins.py") for b in ("pico", "esp32")]
    bad = 0
    for p in paths:
        errs, warns = check_module(load(p))
        for w in warns:
            print("%s: warning: %s" % (p, w))
        for e in errs:
            print("%s: error: %s" % (p, e))
        bad += len(errs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
