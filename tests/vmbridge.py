"""Run MicroPython code in the real VM from CPython tests (thin layer over ovenctl.vmrun)."""
import os
import tempfile

from ovenctl import vmrun
from ovenctl.vmrun import ROOT, VMError  # noqa: F401

DEFAULT_PATHS = ("firmware", "boards", "tests/dual")


def run_vm(script_path, arg="", paths=DEFAULT_PATHS, heap_kb=1024, timeout_s=600, check=True):
    """Run a .py file in the VM; return its stdout. Raise VMError on a Python exception."""
    return vmrun.run(script_path, arg=arg, paths=paths, heap_kb=heap_kb, timeout_s=timeout_s, check=check)


def run_vm_code(code, arg="", **kw):
    fd, p = tempfile.mkstemp(suffix=".py")
    with os.fdopen(fd, "w") as f:
        f.write(code)
    try:
        return run_vm(p, arg=arg, **kw)
    finally:
        os.unlink(p)
