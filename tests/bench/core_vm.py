# Benchmark of the per-sample weighing update inside the MicroPython VM.
# Prints @@BENCH key value lines. Allocation is measured two ways: gc.mem_alloc() growth over the
# run with the collector disabled, and a heap-locked run (any allocation raises MemoryError).
import gc
import time
import micropython
from array import array

from oven.core import weigh

N_SAMPLES = 200000


def make_inputs():
    xs = array("i", [0] * 1024)
    s = 12345
    for i in range(1024):
        s = (s * 1103515245 + 12345) & 0x7FFFFFFF
        xs[i] = 900000 + (s >> 16) % 121 - 60
    xs[100] = 0x7FFFFF
    xs[500] = 900000 + 40000
    return xs


def run(w, xs, n):
    k = 0
    for _ in range(n // 1024):
        for i in range(1024):
            w.add(xs[i])
        k += 1024
    return k


def main():
    xs = make_inputs()
    w = weigh.Window(n=64, stable_sd_counts=60, hold=10, timeout_samples=1 << 29)
    run(w, xs, 4096)   # warm up
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    t0 = time.ticks_ms()
    done = run(w, xs, N_SAMPLES)
    dt = time.ticks_diff(time.ticks_ms(), t0)
    a1 = gc.mem_alloc()
    gc.enable()
    locked_ok = 0
    micropython.heap_lock()
    try:
        run(w, xs, 20480)
        locked_ok = 1
    except MemoryError:
        locked_ok = 0
    finally:
        micropython.heap_unlock()
    print("@@BENCH core_samples", done)
    print("@@BENCH core_ms", dt)
    print("@@BENCH core_alloc_bytes", a1 - a0)
    print("@@BENCH core_heap_locked_ok", locked_ok)


main()
