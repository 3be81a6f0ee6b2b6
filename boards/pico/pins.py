# Raspberry Pi Pico (RP2040) pin map of the bench controller; wiring notes in boards/README.md,
# checked by boards/pins_check.py (tests/host/test_pins.py).
# Outputs are active high: the RP2040 resets every GPIO to an input with its pull-down, so the
# SSR, contactor, pump, vent and buzzer are off from reset until board.py drives them low.
# Every GPIO on the Pico's header is taken: the reference probe's chip select (GP27) replaced the door
# switch input, which the firmware never used (board.door_closed() reads 1 without a switch).
PORT = "rp2"
N_CELLS = 4
SPI_ID = 0
I2C_ID = 0

# (name, GPIO, use). use: out; in (driven input, no pull); in_pu (switch to GND, internal pull-up);
# adc; sck / mosi / miso (SPI SPI_ID); sda / scl (I2C I2C_ID)
PINS = (
    ("i2c_sda", 0, "sda"),          # SSD1306 OLED (and an optional NAU7802)
    ("i2c_scl", 1, "scl"),
    ("lc0_dout", 2, "in"),          # HX711 channel 0
    ("lc0_sck", 3, "out"),
    ("lc1_dout", 4, "in"),
    ("lc1_sck", 5, "out"),
    ("lc2_dout", 6, "in"),
    ("lc2_sck", 7, "out"),
    ("lc3_dout", 8, "in"),
    ("lc3_sck", 9, "out"),
    ("ssr", 10, "out"),             # heater SSR input (zero-cross, time-proportioned)
    ("contactor", 11, "out"),       # heater safety contactor coil driver
    ("pump", 12, "out"),            # vacuum pump relay
    ("vent", 13, "out"),            # vent valve relay (energised = open)
    ("buzzer", 14, "out"),
    ("btn_start", 15, "in_pu"),
    ("spi_miso", 16, "miso"),       # oven thermocouple converter (MAX31855 or MAX31856)
    ("tc_cs", 17, "out"),
    ("spi_sck", 18, "sck"),
    ("spi_mosi", 19, "mosi"),       # MAX31856 only (the MAX31855 is read-only)
    ("btn_stop", 20, "in_pu"),
    ("btn_yes", 21, "in_pu"),
    ("btn_no", 22, "in_pu"),
    ("pressure_adc", 26, "adc"),    # ADC0: vacuum transducer through a divider to <= 3.3 V
    ("probe_cs", 27, "out"),        # reference probe's converter (in a dummy cell), same SPI bus
    ("lct_cs", 28, "out"),          # second converter next to the load cells
)
