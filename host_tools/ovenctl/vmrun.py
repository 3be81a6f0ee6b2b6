"""Run firmware inside the real MicroPython VM (the WebAssembly port under node).

The firmware tree (firmware/, boards/) and node_modules/ come from the repository checkout that
ovenctl is installed from (`make setup` installs it in editable mode)."""
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MPRUN = os.path.join(ROOT, "host_tools", "ovenctl", "vm", "mprun.mjs")
VM_SCRIPTS = os.path.join(ROOT, "host_tools", "ovenctl", "vm")
DEFAULT_PATHS = ("firmware", "boards")


class VMUnavailable(RuntimeError):
    pass


class VMError(RuntimeError):
    pass


def check_vm():
    if shutil.which("node") is None:
        raise VMUnavailable("node is not installed: the MicroPython VM runs under Node.js (install node, then `make setup`)")
    pkg = os.path.join(ROOT, "node_modules", "@micropython", "micropython-webassembly-pyscript")
    if not os.path.isdir(pkg):
        raise VMUnavailable("the MicroPython VM package is missing: run `make setup` (npm ci) in %s" % ROOT)


def command(script, arg="", paths=DEFAULT_PATHS, heap_kb=1024):
    cmd = ["node", MPRUN, "--heap", str(heap_kb)]
    for p in paths:
        cmd += ["--path", p]
    if arg:
        cmd += ["--arg", arg]
    cmd.append(script)
    return cmd


def run(script, arg="", paths=DEFAULT_PATHS, heap_kb=1024, timeout_s=900, check=True):
    """Run a .py file in the VM and return its stdout; VMError on a Python exception."""
    check_vm()
    proc = subprocess.run(command(script, arg, paths, heap_kb), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout_s)
    if check and proc.returncode != 0:
        raise VMError("MicroPython VM failed (rc=%d):\n%s\n%s" % (proc.returncode, proc.stdout[-4000:],
                                                                 proc.stderr[-4000:]))
    return proc.stdout


def stream(script, on_line, arg="", paths=DEFAULT_PATHS, heap_kb=1024):
    """Run a .py file in the VM, calling on_line(text) for each stdout line as it arrives.
    Returns the exit code; the VM's stderr is returned with it as (rc, stderr)."""
    check_vm()
    proc = subprocess.Popen(command(script, arg, paths, heap_kb), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    try:
        for line in proc.stdout:
            on_line(line.rstrip("\n"))
        err = proc.stderr.read()
        rc = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return rc, err
