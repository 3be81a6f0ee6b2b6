# `make flash BOARD=pico|esp32|sim PORT=/dev/ttyACM0 [FLASH_ARGS="--config my-config.json ..."]`:
# put the firmware on a board that already runs MicroPython (`ovenctl deploy`, README "Flashing a
# real board"): compile every module with mpy-cross, copy them with mpremote into /lib plus
# /main.py and the board's files, install the mip dependencies (SSD1306 driver), verify every
# file's sha256 on the device, soft-reset. Refused while a test is running. BOARD=sim with the PORT
# of `ovenctl vdev` deploys to the virtual device. Included from the Makefile (OVENCTL, setup).
BOARD ?=
PORT ?=
FLASH_ARGS ?=

.PHONY: flash flash-args

flash: flash-args setup
	$(OVENCTL) deploy --board $(BOARD) --port $(PORT) $(FLASH_ARGS)

flash-args:
	@if [ -z "$(BOARD)" ] || [ -z "$(PORT)" ]; then \
		echo "usage: make flash BOARD=pico|esp32|sim PORT=/dev/ttyACM0 [FLASH_ARGS=\"--no-compile --config FILE ...\"]" >&2; \
		exit 2; fi
