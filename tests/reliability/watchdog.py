"""Campaign 3: the hardware watchdog.

Stalls (in-process, the simulated board's watchdog armed at 8 s like the boards' default
wdt_ms): at a random tick of a run, a driver call never returns (it keeps polling its bus with a
short sleep, so the model clock runs on). The board must reset at most wdt_ms after the last
feed, with every output in its power-on state (heater off, contactor open, pump off, vent
closed) from that instant; the flash keeps what was synced; main.py boots again and its
recovery closes or resumes the run (docs/APP.md "Power cuts"). Full runs with the watchdog armed
must never reset (no false resets: the loop feeds it in every phase, weighings included).

Boot order (in a fresh CPython interpreter per board, with a fake `machine` module that records
every pin write and an import hook that records every firmware import): importing main.py with
the Pico's and the ESP32's board_select drives the heater SSR, contactor, pump, vent and buzzer
pins low before any other firmware module is imported, also when a firmware module is broken
(its import raises).
"""
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time

from common import (DEVICE_KEY, BoardSelect, Plan, RUNS, ROOT, app, flash, incomplete_reasons, main, read_log, records_lost,
                    run_to_end, scenario, session)
from memfs import MemFS
from sim.board import WatchdogReset

WDT_MS = 8000
SCN = {"seed": 7, "blank_run": False, "method": {"soak_s": 3600, "soak_max_total_s": 7200}}
QUICK_SCN = {"seed": 5, "blank_run": False, "method": {"soak_s": 600, "soak_max_total_s": 1200, "blank_soak_s": 0}}


def _stall(board, log):
    """Wrap the thermocouple driver: from now on read() never returns."""
    tc = board.tc
    orig = tc.read

    def stuck():
        log["stall_ms"] = board.bench.t_ms
        log["duty_at_stall"] = board.bench.heater_duty_ppm
        log["contactor_at_stall"] = board.bench.heater_contactor
        while True:
            board.wait_until_ms(board.ticks_ms() + 50)
    tc.read = stuck
    return orig


def one_stall(scn_obj, tick, seed):
    scn = scenario(scn_obj)
    rng = random.Random(seed)
    fs = MemFS()
    r = {"tick": tick, "errors": []}
    with flash(fs):
        plan = Plan(scn, rtc=True, wdt_ms=WDT_MS)
        board = plan.board
        s = session(plan)
        n = 0
        while n < tick:
            k = s.advance(min(1000, tick - n))
            if k < 0:
                r["errors"].append("run ended before the stall")
                return r
            n += k
        r["phase"] = app.PHASE_NAMES[s.ctrl.phase]
        fed = board._wdt_fed_ms
        info = {}
        _stall(board, info)
        reset = board._wdt_reset

        def recorded_reset():
            reset()
            b = board.bench
            # the outputs right at the reset, before any firmware code (an exception handler) runs
            info["after_reset"] = (b.heater_duty_ppm, b.heater_contactor, b.pump_on, b.vent_open)
        board._wdt_reset = recorded_reset
        try:
            s.advance(10)
            r["errors"].append("no watchdog reset")
            return r
        except WatchdogReset:
            pass
        bench = plan.bench
        r["reset_after_stall_ms"] = board.reset_at_ms - info["stall_ms"]
        r["reset_after_feed_ms"] = board.reset_at_ms - fed
        # at the reset: every output in its power-on state (what the board left behind)
        r["outputs_on_after_reset"] = int(any(info["after_reset"]))
        r["heater_was_on_at_stall"] = int(info["duty_at_stall"] > 0 and info["contactor_at_stall"] > 0)
        # the reset loses the RAM: the flash keeps what was synced; the device boots again
        pre = fs.synced_image()
        fs.power_cut()
        bench.advance(rng.randrange(300, 3000))        # reset and boot time
        bs = BoardSelect(bench, wdt_ms=WDT_MS)
        s2 = main.recover(bs, RUNS, bs.link_rx, bs.link_tx, DEVICE_KEY)
        r["resumed"] = s2 is not None
        if s2 is not None:
            run_to_end(s2)
        final = fs.read(RUNS + "/sim-0001.log")
        r["lost"] = sum(records_lost(d, fs.read(p)) for p, d in pre.items() if p.endswith(".log"))
        log = read_log(final)
        r["incomplete_verdicts"] = 1 if incomplete_reasons(log) else 0
        r["closed"] = log.complete
        r["verdict"] = (log.verdict or {}).get("verdict")
        r["false_resets_after"] = sum(p.board.wdt_resets for p in bs.plans)
    return r


def full_run_resets(scn_obj):
    """A whole run with the watchdog armed: how many times did it fire? (must be 0)"""
    fs = MemFS()
    with flash(fs):
        plan = Plan(scenario(scn_obj), rtc=True, wdt_ms=WDT_MS)
        s = session(plan)
        try:
            run_to_end(s)
        except WatchdogReset:
            pass
        return plan.board.wdt_resets, plan.board.wdt_feeds, s.result


def _ticks(scn_obj):
    fs = MemFS()
    with flash(fs):
        plan = Plan(scenario(scn_obj))
        s = session(plan)
        segs = []
        n = 0
        cur = None
        while True:
            ph = s.ctrl.phase
            if ph != cur:
                segs.append([ph, n, n])
                cur = ph
            if s.advance(1) < 0:
                break
            n += 1
            segs[-1][2] = n
        return [x for x in segs if x[2] > x[1]]


def _job(a):
    try:
        return one_stall(*a)
    except Exception as e:                      # noqa: BLE001
        return {"tick": a[1], "errors": ["crash: %r" % (e,)]}


def stalls(n, seed=4, workers=2, scn_obj=None):
    scn_obj = scn_obj or SCN
    segs = _ticks(scn_obj)
    rng = random.Random(seed)
    jobs = []
    for i in range(n):
        seg = segs[i % len(segs)]
        jobs.append((scn_obj, rng.randrange(seg[1], seg[2]), rng.randrange(1 << 30)))
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        rows = list(pool.imap_unordered(_job, jobs, chunksize=1))
        full = pool.map(full_run_resets, [scn_obj, dict(scn_obj, seed=scn_obj["seed"] + 1)])
    ok = [r for r in rows if not r["errors"]]
    return {
        "watchdog_stalls": len(rows),
        "watchdog_resets": len(ok),
        "watchdog_max_reset_after_stall_ms": max((r["reset_after_stall_ms"] for r in ok), default=None),
        "watchdog_max_reset_after_last_feed_ms": max((r["reset_after_feed_ms"] for r in ok), default=None),
        "watchdog_outputs_on_after_reset": sum(r["outputs_on_after_reset"] for r in ok),
        "watchdog_stalls_with_heater_on": sum(r["heater_was_on_at_stall"] for r in ok),
        "watchdog_synced_records_lost": sum(r["lost"] for r in ok),
        "watchdog_verdicts_from_incomplete_data": sum(r["incomplete_verdicts"] for r in ok),
        "watchdog_runs_resumed": sum(1 for r in ok if r["resumed"]),
        "watchdog_logs_closed": sum(1 for r in ok if r["closed"]),
        "watchdog_phases": sorted(set(r.get("phase") for r in ok)),
        "watchdog_false_resets_full_runs": sum(f[0] for f in full) + sum(r.get("false_resets_after", 0) for r in ok),
        "watchdog_full_runs": len(full),
        "watchdog_errors": [e for r in rows for e in r["errors"]][:5],
    }


# ---------------------------------------------------------------- boot order
_PROBE = r'''
import importlib.abc, importlib.machinery, json, os, sys, types
ROOT, BOARD, BROKEN = sys.argv[1], sys.argv[2], sys.argv[3]
events = []
FW = [os.path.join(ROOT, "firmware"), os.path.join(ROOT, "boards", BOARD)]
sys.path[:0] = FW + [os.path.join(ROOT, "tests", "shim")]


class Recorder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.origin and any(spec.origin.startswith(d) for d in FW):
            events.append(["import", name])
            if BROKEN and (name == BROKEN or name.endswith("." + BROKEN)):
                raise SyntaxError("%s.py: broken module (injected)" % name)
        return spec


sys.meta_path.insert(0, Recorder())
machine = types.ModuleType("machine")


class Pin:
    OUT, IN, PULL_UP, PULL_DOWN, OPEN_DRAIN = 1, 0, 1, 2, 3

    def __init__(self, n, mode=-1, pull=-1, value=None, **kw):
        self.n = n
        events.append(["pin", n, mode, value])

    def value(self, v=None):
        if v is not None:
            events.append(["write", self.n, v])
        return 0

    def on(self):
        events.append(["write", self.n, 1])

    def off(self):
        events.append(["write", self.n, 0])

    def init(self, mode=-1, pull=-1, value=None, **kw):
        events.append(["pin", self.n, mode, value])

    __call__ = value


class _Any:
    def __init__(self, *a, **k):
        events.append(["hw", type(self).__name__])

    def __getattr__(self, k):
        return lambda *a, **kw: 0


for _n in ("SPI", "I2C", "ADC", "WDT", "Timer", "PWM", "UART", "SoftSPI", "SoftI2C"):
    setattr(machine, _n, type(_n, (_Any,), {}))
machine.Pin = Pin
machine.disable_irq = lambda: 0
machine.enable_irq = lambda s: None
machine.reset_cause = lambda: 3
machine.WDT_RESET = 3
sys.modules["machine"] = machine
try:
    import main  # noqa: F401   (not __main__: main() does not run)
    err = None
except BaseException as e:   # noqa: BLE001
    err = repr(e)
print(json.dumps({"events": events, "error": err}))
'''


def boot_order(board, broken=""):
    """Run the probe; returns (ok, details)."""
    p = subprocess.run([sys.executable, "-c", _PROBE, ROOT, board, broken], capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        return False, {"stderr": p.stderr[-2000:]}
    res = json.loads(p.stdout.strip().splitlines()[-1])
    ev = res["events"]
    sys.path.insert(0, os.path.join(ROOT, "boards", board))
    try:
        src = open(os.path.join(ROOT, "boards", board, "board_select.py")).read()
    finally:
        sys.path.pop(0)
    ns = {}
    safe = None
    for line in src.splitlines():
        if line.startswith("SAFE_LOW"):
            exec(line, ns)
            safe = set(ns["SAFE_LOW"])
    first_other = next((i for i, e in enumerate(ev) if e[0] == "import" and e[1] not in ("board_select", "main")),
                       len(ev))
    low_before = set()
    for e in ev[:first_other]:
        if e[0] == "pin" and e[3] == 0 and e[2] == 1:
            low_before.add(e[1])
        if e[0] == "write" and e[2] == 0:
            low_before.add(e[1])
    high_before = [e for e in ev[:first_other] if (e[0] == "pin" and e[3] == 1) or (e[0] == "write" and e[2] == 1)]
    ok = safe is not None and safe <= low_before and not high_before and first_other > 0
    if broken:
        ok = ok and res["error"] is not None and broken in res["error"]
    return ok, {"safe_pins": sorted(safe or []), "low_before_other_imports": sorted(low_before),
                "first_other_import": ev[first_other] if first_other < len(ev) else None,
                "error": res["error"], "events": ev[:12]}


def boot_orders():
    rows = []
    for board in ("pico", "esp32"):
        for broken in ("", "app", "runlog", "link"):
            ok, det = boot_order(board, broken)
            rows.append({"board": board, "broken": broken or None, "ok": ok, "first_other_import": det.get(
                "first_other_import"), "error": det.get("error") or det.get("stderr")})
    return {"boot_order_cases": len(rows), "boot_order_failures": sum(1 for r in rows if not r["ok"]),
            "boot_order_examples": [r for r in rows if not r["ok"]][:3] or rows[:1]}


def campaign(n_stalls=40, workers=2, quick=False):
    t0 = time.time()
    out = stalls(3 if quick else n_stalls, workers=workers, scn_obj=QUICK_SCN if quick else SCN)
    out.update(boot_orders())
    out["watchdog_wall_s"] = round(time.time() - t0, 1)
    return out
