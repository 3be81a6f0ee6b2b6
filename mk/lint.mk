# Type check of the device code against each MicroPython port's own stubs, and the pin maps.
# Included from the Makefile (uses its PY, PIP and setup): `make lint`.
#   lint-rp2    pyright on firmware/ + boards/pico  with micropython-rp2-stubs   (tools/pyright-rp2.json)
#   lint-esp32  pyright on firmware/ + boards/esp32 with micropython-esp32-stubs (tools/pyright-esp32.json)
#   lint-pins   boards/pins_check.py on both pin maps (GPIO conflicts, pins the port lacks)
# The two stub packages both provide `machine` and cannot share one environment: each is installed
# with pip --target into its own build/stubs/<port>/ (typeshed + stub path of its config). pyright
# itself is the npm package pinned in package.json (node_modules/.bin/pyright, `npm ci`).
MP_STUBS_VERSION     := 1.29.0.post1
MP_STDLIB_STUBS_VERSION := 1.29.0.post2
PYRIGHT := node_modules/.bin/pyright

.PHONY: lint lint-rp2 lint-esp32 lint-pins lint-stubs

lint: lint-rp2 lint-esp32 lint-pins

lint-stubs: build/stubs/rp2/.stamp build/stubs/esp32/.stamp

build/stubs/%/.stamp: mk/lint.mk
	rm -rf build/stubs/$*
	$(PIP) install --disable-pip-version-check -q --no-deps --target build/stubs/$* \
		micropython-$*-stubs==$(MP_STUBS_VERSION) micropython-stdlib-stubs==$(MP_STDLIB_STUBS_VERSION)
	touch $@

lint-rp2: setup build/stubs/rp2/.stamp
	$(PYRIGHT) -p tools/pyright-rp2.json

lint-esp32: setup build/stubs/esp32/.stamp
	$(PYRIGHT) -p tools/pyright-esp32.json

lint-pins: setup
	$(PY) boards/pins_check.py
