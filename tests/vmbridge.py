"""Run MicroPython code in the real VM (tests/vm/mprun.mjs under node) from CPython tests."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPRUN = os.path.join(ROOT, "tests", "vm", "mprun.mjs")
DEFAULT_PATHS = ("firmware", "boards", "tests/dual")


class VMError(AssertionError):
    pass


def run_vm(script_path, arg="", paths=DEFAULT_PATHS, heap_kb=1024, timeout_s=600, check=True):
    """Run a .py file in the VM; return its stdout. Raise VMError on a Python exception."""
    cmd = ["node", MPRUN, "--heap", str(heap_kb)]
    for p in paths:
        cmd += ["--path", p]
    if arg:
        cmd += ["--arg", arg]
    cmd.append(script_path)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    if check and proc.returncode != 0:
        raise VMError("MicroPython VM failed (rc=%d):\n%s\n%s" % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    return proc.stdout


def run_vm_code(code, arg="", **kw):
    import tempfile
    fd, p = tempfile.mkstemp(suffix=".py")
    with os.fdopen(fd, "w") as f:
        f.write(code)
    try:
        return run_vm(p, arg=arg, **kw)
    finally:
        os.unlink(p)
