# Freeze the controller firmware into your own MicroPython build (a MicroPython manifest:
# https://docs.micropython.org/en/latest/reference/manifest.html). Not a firmware module: it is
# executed by the MicroPython build (tools/manifestfile.py), never on the device.
#
# In your board's manifest (e.g. my-manifest.py):
#     include("$(PORT_DIR)/boards/manifest.py")                    # the port's usual modules
#     include("/path/to/this/repo/firmware/manifest.py", board="pico")   # or board="esp32"
# then build the port with it, e.g.
#     make -C ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/my-manifest.py
#     make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/my-manifest.py
#
# Frozen: the firmware package `oven` (as `ovenctl deploy` puts it in /lib/oven),
# the board's board.py, pins.py and board_select.py with the shared boards/mcu/mcu_board.py, and
# micropython-lib's SSD1306 driver
# (require("ssd1306"), the dependency firmware/package.json declares for `mip`).
# Not frozen: main.py. Copy it to the filesystem (`mpremote fs cp firmware/main.py :main.py`):
# a frozen main.py would run instead of the filesystem's and could not be replaced without
# reflashing. Frozen modules come before /lib in sys.path ('', '.frozen', '/lib'): do not also
# deploy the modules to /lib, they would be ignored.
#
# pyright: reportUndefinedVariable=false
# (options, module, package, require are provided by the manifest interpreter)

options.defaults(board="pico")

_BOARD_DIRS = {"pico": "../boards/pico", "esp32": "../boards/esp32"}
if options.board not in _BOARD_DIRS:
    raise ValueError("firmware/manifest.py: board=%r: use one of %s" % (options.board, sorted(_BOARD_DIRS)))

# the firmware package (the manifest runs in its own directory, see include())
package("oven")

for _f in ("board.py", "pins.py", "board_select.py"):
    module(_f, base_path=_BOARD_DIRS[options.board])
module("mcu_board.py", base_path="../boards/mcu")      # the part of board.py / board_select.py both share

require("ssd1306")
