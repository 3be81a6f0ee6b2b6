"""Test bed: every module in tests/dual runs twice, under CPython (normal pytest collection)
and inside the real MicroPython VM, where each test_* function becomes a pytest item
named `vm::<module>::<test>` (marked `vm`) so that a VM failure fails `make test`.
Hypothesis runs without its per-example deadline: a wall-clock limit fails on a loaded machine."""
import ast
import os
import sys

import pytest
from hypothesis import settings

settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in ("firmware", "boards", "tests/dual", "tests", "tests/shim", "host_tools"):
    _full = os.path.join(ROOT, _p)
    if _full not in sys.path:
        sys.path.insert(0, _full)

from vmbridge import run_vm  # noqa: E402

_DUAL = os.path.join(ROOT, "tests", "dual")
_results = {}


def _vm_results(modname):
    if modname not in _results:
        out = run_vm(os.path.join(ROOT, "tests", "vm", "vmharness.py"), arg=modname, check=False, heap_kb=2048)
        res = {}
        done = False
        for line in out.splitlines():
            if line.startswith("@@T "):
                parts = line.split(" ", 4)
                res[parts[2]] = (parts[3], parts[4] if len(parts) > 4 else "")
            elif line.startswith("@@DONE"):
                done = True
        if not done:
            res["<harness>"] = ("FAIL", "VM run did not finish:\n" + out[-4000:])
        _results[modname] = res
    return _results[modname]


class VMItem(pytest.Item):
    def __init__(self, *, modname, testname, **kw):
        super().__init__(**kw)
        self.modname = modname
        self.testname = testname
        self.add_marker("vm")

    def runtest(self):
        res = _vm_results(self.modname)
        for key in ("<harness>", "<import>"):
            if key in res:
                raise AssertionError("VM: %s" % res[key][1])
        if self.testname not in res:
            raise AssertionError("VM: test %s did not run" % self.testname)
        status, msg = res[self.testname]
        if status != "OK":
            raise AssertionError("VM: %s" % ast.literal_eval(msg) if msg else "VM failure")

    def repr_failure(self, excinfo):
        return str(excinfo.value)

    def reportinfo(self):
        return self.path, 0, "vm::%s::%s" % (self.modname, self.testname)


class VMModule(pytest.File):
    def collect(self):
        modname = self.path.stem
        tree = ast.parse(self.path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                yield VMItem.from_parent(self, name="vm::" + node.name, modname=modname, testname=node.name)


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".py" and file_path.name.startswith("test_") and str(file_path.parent) == _DUAL:
        return VMModule.from_parent(parent, path=file_path, name=file_path.name + "[vm]")
