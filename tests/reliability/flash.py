"""Campaign 5: a full flash and filesystem errors in the middle of a run (in-process device on a
MemFS whose capacity runs out, or whose k-th write or sync fails once or from then on).

Expected of the firmware: the run stops within the control tick of the first error with the
F_FLASH fault (heater and pump off, verdict ABORTED: never a measured verdict); nothing that
was synced before the error is lost; the durable log stays readable; a reboot's recovery never
crashes the boot (it closes the log when the flash lets it, else leaves it as it is).
"""
import errno
import multiprocessing
import random
import time

from common import (DEVICE_KEY, BoardSelect, C, LogError, Plan, RUNS, flash, main, measured_verdicts, read_log,
                    records_lost, run_to_end, scenario, session)
from memfs import MemFS, PowerCut  # noqa: F401

SCN = {"seed": 7, "blank_run": False, "method": {"soak_s": 3600, "soak_max_total_s": 7200}}
QUICK_SCN = {"seed": 5, "blank_run": False, "method": {"soak_s": 600, "soak_max_total_s": 1200, "blank_soak_s": 0}}
LOG = RUNS + "/sim-0001.log"
KINDS = ("full", "full_partial", "eio_write_once", "eio_write_always", "eio_sync_once", "eio_sync_always")


def reference(scn_obj):
    fs = MemFS()
    with flash(fs):
        plan = Plan(scenario(scn_obj))
        s = session(plan)
        run_to_end(s)
        return {"writes": fs.writes, "flushes": fs.flushes, "size": len(fs.read(LOG))}


def one(kind, at, scn_obj):
    fs = MemFS(capacity=16 << 20, partial_writes=(kind == "full_partial"))
    r = {"kind": kind, "at": at, "errors": []}
    seen = {}
    with flash(fs):
        plan = Plan(scenario(scn_obj))

        def on_error():
            # the model time and the durable image at the first failure
            if not seen:
                seen["ms"] = plan.bench.t_ms
                seen["image"] = fs.synced_image()
        fs.on_error = on_error
        if kind.startswith("full"):
            fs.capacity = at
        elif kind.startswith("eio_write"):
            fs.fail_write_at = at
            fs.fail_permanent = kind.endswith("always")
        else:
            fs.fail_flush_at = at
            fs.fail_permanent = kind.endswith("always")
        # a full flash: the run was started (its space check passed on a larger estimate or before
        # another file grew), then the writes run out of room
        s = main.Session(plan, __import__("oven.link", None, None, ("RxRing",)).RxRing(64), lambda b: len(b), runs_dir=RUNS,
                         check_space=not kind.startswith("full"), key=DEVICE_KEY)
        try:
            run_to_end(s)
        except Exception as e:                  # noqa: BLE001
            r["errors"].append("session raised %r" % (e,))
            return r
        c = s.ctrl
        r["fault"] = c.fault if c is not None else None
        r["verdict"] = s.result
        r["session_error"] = s.error
        bench = plan.bench
        r["heater_on_after"] = int(bench.heater_duty_ppm > 0 and bench.heater_contactor > 0)
        r["pump_on_after"] = int(bench.pump_on)
        err_ms = seen.get("ms")
        r["errored"] = err_ms is not None
        if err_ms is not None and c is not None and c.faults:
            t_fault_ms = c.t0_ms + c.faults[0][1] * 1000
            r["ticks_to_fault"] = max(0, (t_fault_ms - err_ms + 999) // 1000)
        at_error = seen.get("image") or {}
        # the device is switched off and on again
        fs.power_cut()
        fs.capacity = at if kind.startswith("full") else fs.capacity
        durable = fs.read(LOG) if LOG in fs.files else b""
        r["lost"] = records_lost(at_error.get(LOG, b""), durable)
        try:
            log = read_log(durable) if durable else None
            r["readable"] = True if log is not None else None     # None: no header was ever synced
        except LogError as e:
            r["readable"] = False
            r["errors"].append("durable log unreadable: %s" % e)
            log = None
        r["measured_after_error"] = 0
        if log is not None and measured_verdicts(log):
            r["measured_after_error"] = 1
            r["errors"].append("measured verdict %r after a flash error" % log.verdict)
        bs = BoardSelect(bench)
        try:
            main.recover(bs, RUNS, bs.link_rx, bs.link_tx, DEVICE_KEY)
            r["recovery"] = "ok"
        except OSError as e:
            # main.main() catches this and boots on (the flash is still full)
            r["recovery"] = "OSError %s" % errno.errorcode.get(e.errno, e.errno)
        except Exception as e:                  # noqa: BLE001
            r["errors"].append("recovery crashed: %r" % (e,))
        after = fs.read(LOG) if LOG in fs.files else b""
        r["lost"] += records_lost(durable, after)
    return r


def _job(a):
    try:
        return one(*a)
    except Exception as e:                      # noqa: BLE001
        import traceback
        return {"kind": a[0], "at": a[1], "errors": ["crash: %r %s" % (e, traceback.format_exc()[-800:])]}


def campaign(n=48, workers=2, seed=6, quick=False):
    t0 = time.time()
    scn_obj = QUICK_SCN if quick else SCN
    ref = reference(scn_obj)
    rng = random.Random(seed)
    jobs = []
    for i in range(3 if quick else n):
        kind = KINDS[i % len(KINDS)]
        if kind.startswith("full"):
            at = rng.randrange(2000, ref["size"])
        elif kind.startswith("eio_write"):
            at = rng.randrange(1, ref["writes"] + 1)
        else:
            at = rng.randrange(1, ref["flushes"] + 1)
        jobs.append((kind, at, scn_obj))
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        rows = list(pool.imap_unordered(_job, jobs, chunksize=1))
    errored = [r for r in rows if r.get("errored")]
    stopped = [r for r in errored if r.get("fault") == C.F_FLASH or r.get("session_error")]
    ticks = [r["ticks_to_fault"] for r in errored if "ticks_to_fault" in r]
    return {
        "flash_cases": len(rows),
        "flash_cases_with_error_mid_run": len(errored),
        "flash_stopped_with_F_FLASH": len(stopped),
        "flash_not_stopped": len(errored) - len(stopped),
        "flash_max_ticks_to_fault": max(ticks) if ticks else None,
        "flash_heater_or_pump_on_after": sum(r.get("heater_on_after", 0) + r.get("pump_on_after", 0) for r in rows),
        "flash_synced_records_lost": sum(r.get("lost", 0) for r in rows),
        "flash_measured_verdicts_after_error": sum(r.get("measured_after_error", 0) for r in rows),
        "flash_logs_unreadable": sum(1 for r in errored if r.get("readable") is False),
        "flash_logs_never_started": sum(1 for r in errored if r.get("readable") is None),
        "flash_verdicts": _count(r.get("verdict") for r in rows),
        "flash_recovery": _count(r.get("recovery") for r in rows),
        "flash_errors": [e for r in rows for e in r.get("errors", [])][:5],
        "flash_wall_s": round(time.time() - t0, 1),
    }


def _count(xs):
    d = {}
    for x in xs:
        d[str(x)] = d.get(str(x), 0) + 1
    return dict(sorted(d.items()))
