"""The display in CPython vs the MicroPython VM (byte-identical framebuffers), PNG rendering of
framebuffer bytes, and `ovenctl sim --screens`. The redraw's cost in the VM is a `make bench` figure
(section redraw, tests/bench/redraw_vm.py)."""
import json
import os
import subprocess
import sys

import framebuf
import pytest
from PIL import Image

import test_display as T
from ovenctl import screens
from vmbridge import ROOT, run_vm_code

pytestmark = pytest.mark.vm

OVENCTL = [sys.executable, "-m", "ovenctl"]


def _vm_dump(expr):
    code = ("import binascii\nimport test_display as T\n"
            "for name, data in %s:\n"
            "    print('@@S', name, binascii.hexlify(data).decode())\n" % expr)
    out = run_vm_code(code, heap_kb=4096)
    res = []
    for line in out.splitlines():
        if line.startswith("@@S "):
            _, name, hx = line.split(" ")
            res.append((name, bytes.fromhex(hx)))
    return res


def test_framebuf_primitives_identical_to_micropython():
    vm = _vm_dump("[('step%d' % i, b) for i, b in enumerate(T.primitives())]")
    cp = [("step%d" % i, b) for i, b in enumerate(T.primitives())]
    assert len(vm) == len(cp) == 8
    for (n1, b1), (n2, b2) in zip(vm, cp):
        assert b1 == b2, n1


def test_font_is_micropythons():
    vm = _vm_dump("[(str(ch), T.glyph_bytes(ch)) for ch in range(0, 256)]")
    assert len(vm) == 256
    for name, data in vm:
        ch = int(name)
        assert data == T.glyph_bytes(ch), ch
        if ch == 0:
            want = bytes(8)                 # a NUL ends the string
        elif 32 <= ch <= 127:
            want = framebuf.FONT_PETME128_8X8[(ch - 32) * 8:(ch - 31) * 8]
        else:
            want = framebuf.FONT_PETME128_8X8[95 * 8:]      # glyph 127 (first byte of UTF-8)
        assert data == want, ch


def test_every_screen_identical_to_micropython():
    vm = _vm_dump("T.render_all()")
    cp = T.render_all()
    assert [n for n, _ in vm] == [n for n, _ in cp]
    assert len(cp) >= 80
    diff = [n for (n, b1), (_, b2) in zip(vm, cp) if b1 != b2]
    assert not diff, diff


def _fb_from_png(path, scale=4):
    img = Image.open(path).convert("L")
    assert img.size == (128 * scale, 64 * scale)
    buf = bytearray(1024)
    fb = framebuf.FrameBuffer(buf, 128, 64, framebuf.MONO_VLSB)
    px = img.load()
    for y in range(64):
        for x in range(128):
            block = {px[x * scale + dx, y * scale + dy] for dx in range(scale) for dy in range(scale)}
            assert len(block) == 1
            v = block.pop()
            assert v in (0, 255)
            if v:
                fb.pixel(x, y, 1)
    return buf, fb


def test_png_from_framebuffer_bytes(tmp_path):
    buf, fb = T.new_fb()
    s = T.display.Screen(fb)
    s.draw_verdict(T.finished((T.result(1, 22, 1),)))
    img = screens.to_image(bytes(buf), scale=4)
    assert img.size == (512, 256) and img.mode == "L"
    assert img.getpixel((0, 0)) == 0                           # black background
    rows = screens.pixels(bytes(buf))
    for y in range(0, 64, 3):
        for x in range(0, 128, 5):
            assert img.getpixel((4 * x + 2, 4 * y + 1)) == (255 if fb.pixel(x, y) else 0)
    shots = [{"name": "99-verdict", "fb_hex": bytes(buf).hex()}, {"name": "11-LEAK_CHECK/../x y", "fb_hex": "00" * 1024}]
    paths = screens.save_screens(shots, str(tmp_path / "out"))
    assert [os.path.basename(p) for p in paths] == ["99-verdict.png", "11-LEAK_CHECK_.._x_y.png"]
    buf2, fb2 = _fb_from_png(paths[0])
    assert buf2 == buf and sum(map(sum, rows)) > 0
    assert T.decode(fb2, 16, 0, 3, 3, 4) == "PASS"
    with pytest.raises(ValueError):
        screens.pixels(b"\x00" * 100)


@pytest.mark.e2e
@pytest.mark.slow
def test_runner_captures_each_screen_in_cpython():
    from ovenctl import sweep
    from ovenctl.scenario import normalize
    from sim import runner
    scn = normalize({"seed": 1})
    res, _ = runner.run_scenario(scn, blank_fit=sweep.BlankCache().get(scn), screens=True)
    names = [s["name"] for s in res["screens"]]
    assert names[0] == "00-IDLE" and names[-1] == "99-verdict"
    for want in ("02-TARE", "03-LOAD", "04-INITIAL_WEIGH", "15-PREHEAT", "05-PUMPDOWN", "06-HEATUP", "07-SOAK", "08-COOLDOWN",
                 "09-VENT", "10-FINAL_WEIGH", "11-LEAK_CHECK-cell1", "13-DONE"):
        assert want in names
    last = bytes.fromhex(res["screens"][-1]["fb_hex"])
    fb = framebuf.FrameBuffer(bytearray(last), 128, 64, framebuf.MONO_VLSB)
    assert T.decode(fb, 16, 0, 3, 3, 4) == res["verdict"] == "PASS"
    soak = bytes.fromhex(res["screens"][names.index("07-SOAK")]["fb_hex"])
    fb = framebuf.FrameBuffer(bytearray(soak), 128, 64, framebuf.MONO_VLSB)
    # heat_in "air" (the default): the pump-down's and HEATUP's seconds at the method's conditions are
    # soak time already when SOAK starts (a few minutes: docs/APP.md "Heating and cooling")
    left = T.decode(fb, 0, 39, 1, 1, 12)
    assert left.startswith("left 5:5") and "left 5:50:00" < left < "left 6:00:00"
    pre = bytes.fromhex(res["screens"][names.index("15-PREHEAT")]["fb_hex"])
    fb = framebuf.FrameBuffer(bytearray(pre), 128, 64, framebuf.MONO_VLSB)
    assert T.decode(fb, 0, 39, 1, 1, 5) == "cell "          # the cell's (probe's) temperature while heating in air
    # without screens=True nothing changes in the result
    res2, _ = runner.run_scenario(scn, blank_fit=sweep.BlankCache().get(scn))
    assert "screens" not in res2
    # without a check-weight history the cell cannot PASS: INCONCLUSIVE, and the screen says why
    scn3 = dict(scn, calibration=dict(scn["calibration"], check_history=0))   # no earlier check weighings
    res3, _ = runner.run_scenario(scn3, blank_fit=sweep.BlankCache().get(scn), screens=True)
    assert res3["verdict"] == "INCONCLUSIVE"
    from oven.ui import display
    sx, sy = display.Screen.fit("INCONCLUSIVE", 128, 3)
    fb = framebuf.FrameBuffer(bytearray(bytes.fromhex(res3["screens"][-1]["fb_hex"])), 128, 64, framebuf.MONO_VLSB)
    assert T.decode(fb, 0, 8 * sy + 3 + 18, 1, 1, 13) == "why: NO_CHECK"


@pytest.mark.e2e
@pytest.mark.slow
def test_ovenctl_sim_screens(tmp_path):
    out = tmp_path / "shots"
    p = subprocess.run(OVENCTL + ["sim", "--scenario", os.path.join(ROOT, "boards/sim/scenarios/thermocouple-fault.json"),
                                  "--progress", "0", "--screens", str(out), "--json"],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["verdict"] == "ABORTED"
    files = sorted(os.listdir(out))
    assert files == sorted(s["name"] + ".png" for s in res["screens"])
    assert "03-LOAD.png" in files and "07-SOAK.png" in files and "14-ABORTED.png" in files
    assert files[-1] == "99-verdict.png"
    buf, fb = _fb_from_png(str(out / "14-ABORTED.png"))
    assert buf == bytes.fromhex(res["screens"][[s["name"] for s in res["screens"]].index("14-ABORTED")]["fb_hex"])
    assert T.decode(fb, 8, 11, 2, 2, 7) == "TC OPEN"
    buf, fb = _fb_from_png(str(out / "99-verdict.png"))
    assert T.decode(fb, 8, 0, 2, 3, 7) == "ABORTED"
