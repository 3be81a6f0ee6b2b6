# Benchmark of the display inside the MicroPython VM (`make bench`, section redraw):
# one full redraw of the status screen (2 cells, soak) and of the verdict screen, and the tick +
# idle slot when nothing changed. Host wall time in the VM, so a figure for `make bench` only; the
# redraw budget on a board is REDRAW_MS (docs/TARGET_TIME.md measures the tick on an RP2040).
# Prints @@BENCH key value lines.
import time
from oven.ui import display
import test_display as T

c = T.controller(2, 7)
md = display.MemDisplay()
s = display.Screen(md)
s.draw_status(c)
n = 50
t0 = time.ticks_us()
for _ in range(n):
    s.draw_status(c)
print("@@BENCH redraw_status_us_vm", time.ticks_diff(time.ticks_us(), t0) // n)
v = T.finished((T.result(1, 22, 1), T.result(3, 49, 2)))
t0 = time.ticks_us()
for _ in range(n):
    s.draw_verdict(v)
print("@@BENCH redraw_verdict_us_vm", time.ticks_diff(time.ticks_us(), t0) // n)
r = display.Refresher(s, md, every=1000000)
clk = T.Clock()
tm = clk.ticks_ms
td = clk.ticks_diff
r.tick(c)
r.idle(tm, td)
m = 10000
redraws = r.redraws
t0 = time.ticks_us()
for _ in range(m):
    r.tick(c)
    r.idle(tm, td)
print("@@BENCH redraw_idle_tick_ns_vm", time.ticks_diff(time.ticks_us(), t0) * 1000 // m)
print("@@BENCH redraw_idle_redraws", r.redraws - redraws)
print("@@BENCH redraw_budget_ms", display.REDRAW_MS)
