# ESP32 (WROOM-32 DevKitC) pin map of the bench controller; wiring notes in boards/README.md,
# checked by boards/pins_check.py (tests/host/test_pins.py).
# The ESP32 has fewer free GPIOs than the Pico: 2 load-cell channels, and five pins that the
# checker warns about, each used in the one role its boot strapping tolerates:
#   GPIO0 / GPIO2 / GPIO5 / GPIO15 strapping pins, GPIO16 and GPIO17 (PSRAM on WROVER modules:
#   WROOM only).
# Never used: 1/3 (UART0: USB serial, mpremote), 6..11 (SPI flash), 12 (flash voltage strap).
# Relay and SSR lines need 10 kOhm pull-downs: ESP32 GPIOs float during reset and boot.
PORT = "esp32"
N_CELLS = 2
SPI_ID = 2
I2C_ID = 0

# (name, GPIO, use): see boards/pico/pins.py
PINS = (
    ("lc0_dout", 34, "in"),         # HX711 channel 0 (DOUT is push-pull: input-only pin is fine)
    ("lc0_sck", 25, "out"),
    ("lc1_dout", 35, "in"),
    ("lc1_sck", 26, "out"),
    ("pressure_adc", 36, "adc"),    # ADC1_CH0 (usable with Wi-Fi on), 11 dB attenuation
    ("btn_start", 39, "in"),        # input-only, no internal pull-up: external 10 kOhm to 3V3
    ("spi_sck", 18, "sck"),         # VSPI (SPI 2)
    ("spi_miso", 19, "miso"),
    ("spi_mosi", 23, "mosi"),
    ("tc_cs", 5, "out"),            # strapping pin, pulled up at boot = CS idle: compatible
    ("lct_cs", 15, "out"),          # strapping pin, pulled up at boot = CS idle: compatible
    ("i2c_sda", 21, "sda"),
    ("i2c_scl", 22, "scl"),
    ("ssr", 13, "out"),
    ("contactor", 27, "out"),
    ("pump", 32, "out"),
    ("vent", 33, "out"),
    ("buzzer", 2, "out"),           # strapping pin, must be low at boot: pulled down = silent
    ("btn_stop", 14, "in_pu"),
    ("btn_yes", 4, "in_pu"),
    ("btn_no", 0, "in_pu"),         # strapping pin (BOOT): held at reset = download mode
    ("door", 16, "in_pu"),          # WROOM only (PSRAM on WROVER)
    ("probe_cs", 17, "out"),        # reference probe's converter, same SPI bus; WROOM only (PSRAM on WROVER)
)
