"""Campaign 1: power cuts.

In-process (the bulk): the device's real entry code (firmware/main.py: Session, recover()) runs
under CPython on the simulated bench with a MemFS flash (littlefs semantics: a cut keeps exactly
what was synced). A cut happens between two control ticks, or inside a file write or sync (then
optionally torn: a random prefix of the unsynced bytes survives). At the cut every output drops
to its power-on state; the physical bench keeps running through the outage (heater and pump off);
then the device boots again: main.recover() closes the run INTERRUPTED or resumes its soak, and a
resumed run goes on to its end (sometimes cut again). Cut instants are spread over every phase of
the blank run and of the test (stratified: each phase gets its share, the soak a larger one).

Virtual device (a smaller subset that validates the model): `ovenctl vdev` runs the scenario in
the MicroPython VM at full speed; it is killed (SIGKILL: only what its flash mirror holds
survives) at a random wall time, then powered on again without a scenario so that main.py's
recovery closes the run. The surviving log must equal the in-process model's log cut at the same
sync point (records after the header byte-identical, JSON records equal as objects), and the
records the recovery appends must be the ones the in-process recovery appends for that state.
"""
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from common import (DEVICE_KEY, seal_problems, BoardSelect, C, LogError, Plan, RUNS, app, flash, incomplete_reasons, main,
                    measured_verdicts, read_log, records_lost, run_to_end, scenario, session, verify)
from memfs import MemFS, PowerCut

LOG = RUNS + "/sim-0001.log"

# Scenario variants: methods, cells, verdicts and the blank run differ.
VARIANTS = {
    "gb6h": {"seed": 7},
    "gb1h-2cells": {"seed": 11, "method": {"soak_s": 3600, "soak_max_total_s": 7200},
                    "cells": [{"mass_g": 45.0}, {"mass_g": 20.0, "volume_cm3": 8.0, "volatile_g": 0.05}]},
    "tcsae-fail": {"seed": 21, "method": "tcsae-434-2025", "blank_run": False,
                   "cells": [{"volatile_g": 0.9, "evap_tau_min": 60.0}]},
    "gb1h-earlystop": {"seed": 33, "blank_run": False,
                       "method": {"soak_s": 3600, "soak_max_total_s": 5400, "early_fail": "stop"},
                       "cells": [{"volatile_g": 2.0, "evap_tau_min": 20.0}]},
}
QUICK_VARIANTS = {"quick": {"seed": 5, "blank_run": False,
                            "method": {"soak_s": 600, "soak_max_total_s": 1200, "blank_soak_s": 0}}}


# ---------------------------------------------------------------- reference runs
def reference(name, obj):
    """The undisturbed run: its tick-by-tick phase segments, file-operation counts, log and verdict."""
    scn = scenario(obj)
    fs = MemFS()
    segs = []
    with flash(fs):
        plan = Plan(scn)
        s = session(plan)
        tick = 0
        cur = None
        while True:
            key = ("blank" if s.stage == 0 else "test", app.PHASE_NAMES[s.ctrl.phase])
            if key != cur:
                segs.append([key[0], key[1], tick, tick])
                cur = key
            r = s.advance(1)
            if r < 0:
                break
            tick += 1
            segs[-1][3] = tick
        data = fs.read(LOG)
    return {"name": name, "scn": scn, "ticks": tick, "segments": [x for x in segs if x[3] > x[2]],
            "writes": fs.writes, "flushes": fs.flushes, "log": data, "verdict": s.result}


def plan_cuts(refs, n, seed):
    """n cut specs spread over the variants and, within each, over every phase."""
    rng = random.Random(seed)
    specs = []
    names = sorted(refs)
    for i in range(n):
        ref = refs[names[i % len(names)]]
        segs = ref["segments"]
        soak = [x for x in segs if x[0] == "test" and x[1] == "SOAK"]
        if soak and rng.random() < 0.3:
            seg = rng.choice(soak)              # the soak: where a resume can happen
        else:
            seg = segs[(i // len(names)) % len(segs)]
        u = rng.random()
        if u < 0.45:
            outage_ms = rng.randrange(0, 40000)
        elif u < 0.75:
            outage_ms = rng.randrange(40000, 300000)
        else:
            outage_ms = rng.randrange(300000, 3600000)
        spec = {"id": i, "variant": ref["name"], "seed": rng.randrange(1 << 30), "outage_ms": outage_ms,
                "seg": seg[:2], "torn": False, "cut_after": rng.random() < 0.5, "second": None}
        if rng.random() < 0.2:
            # inside a file operation: the k-th write or sync of the run
            what = "write" if rng.random() < 0.5 else "flush"
            spec["kind"] = what
            spec["at"] = rng.randrange(1, ref["writes" if what == "write" else "flushes"] + 1)
            spec["torn"] = rng.random() < 0.5
        else:
            spec["kind"] = "tick"
            spec["at"] = rng.randrange(seg[2], seg[3])
        if rng.random() < 0.25:
            spec["second"] = {"after_ticks": rng.randrange(1, 4000), "outage_ms": rng.randrange(0, 40000),
                              "torn": rng.random() < 0.3}
        if rng.random() < 0.15:
            # a second cut while the recovery itself writes (cutting the torn tail, closing the log)
            spec["recovery_cut"] = {"what": "write" if rng.random() < 0.5 else "flush", "at": rng.randrange(1, 5),
                                    "cut_after": rng.random() < 0.5, "torn": rng.random() < 0.5}
        specs.append(spec)
    return specs


# ---------------------------------------------------------------- one cut
def _advance_to(s, ticks, target):
    while ticks < target:
        r = s.advance(min(1000, target - ticks))
        if r < 0:
            return ticks, True
        ticks += r
    return ticks, False


def _where(s):
    if s is None or s.ctrl is None:
        return ("-", "-")
    return ("blank" if s.stage == 0 else "test", app.PHASE_NAMES[s.ctrl.phase])


def _decision(before, after):
    """What the recovery did to a log, from the records it appended."""
    if not before:
        return "none"
    try:
        b = read_log(before)
        a = read_log(after)
    except LogError:
        return "unreadable"
    n0 = len(b.events)
    new = a.events[n0:]
    for e in new:
        if e["code"] == C.E_RESUMED:
            return "resumed"
    for e in new:
        if e["code"] == C.E_INTERRUPTED:
            from oven.run import recovery
            return "closed:" + recovery.REASON_NAMES[e["b"]] if 0 <= e["b"] < len(recovery.REASON_NAMES) else "closed:?"
    if a.complete and not b.complete:
        return "closed:ENDED"
    return "none:log already complete"


def run_cut(spec, refs):
    ref = refs[spec["variant"]]
    rng = random.Random(spec["seed"])
    fs = MemFS()
    out = {"id": spec["id"], "variant": spec["variant"], "kind": spec["kind"], "torn": spec["torn"],
           "cuts": [], "errors": []}
    t0 = time.time()
    with flash(fs):
        plan = Plan(ref["scn"])
        board = plan.board
        s = session(plan)
        ended = False
        if spec["kind"] == "tick":
            _, ended = _advance_to(s, 0, spec["at"])
        else:
            if spec["kind"] == "write":
                fs.cut_at_write = spec["at"]
            else:
                fs.cut_at_flush = spec["at"]
            fs.cut_after = spec["cut_after"]
            try:
                run_to_end(s)
                ended = True
            except PowerCut:
                pass
        cut = {"where": _where(s), "outage_ms": spec["outage_ms"], "torn": spec["torn"], "ended_before": ended}
        second = spec["second"]
        rcut = spec.get("recovery_cut")
        outage_ms = spec["outage_ms"]
        torn = spec["torn"]
        while True:
            pre = fs.synced_image()
            fs.power_cut(torn=torn, rng=rng)
            board.power_on_state()
            plan.bench.advance(outage_ms)
            cut["pre"] = {p: len(d) for p, d in pre.items()}
            cut["_pre"] = pre
            out["cuts"].append(cut)
            bs = BoardSelect(plan.bench)
            if rcut is not None:
                if rcut["what"] == "write":
                    fs.cut_at_write = fs.writes + rcut["at"]
                else:
                    fs.cut_at_flush = fs.flushes + rcut["at"]
                fs.cut_after = rcut["cut_after"]
            try:
                s2 = main.recover(bs, RUNS, bs.link_rx, bs.link_tx, DEVICE_KEY)
            except PowerCut:
                # cut again during the recovery's own writes: boot once more
                cut = {"where": ("recovery", rcut["what"]), "outage_ms": 2000, "torn": rcut["torn"],
                       "ended_before": False}
                outage_ms, torn = 2000, rcut["torn"]
                rcut = None
                continue
            except Exception as e:             # noqa: BLE001  counted: recovery must never fail
                out["errors"].append("recover: %r" % (e,))
                s2 = None
            fs.cut_at_write = fs.cut_at_flush = None
            rcut = None
            if s2 is None:
                break
            board = bs.plans[-1].board
            if second is not None:
                _, ended = _advance_to(s2, 0, second["after_ticks"])
                if not ended:
                    cut = {"where": _where(s2), "outage_ms": second["outage_ms"], "torn": second["torn"],
                           "ended_before": False}
                    outage_ms, torn = second["outage_ms"], second["torn"]
                    second = None
                    continue
            run_to_end(s2)
            break
        final = {p: fs.read(p) for p in fs.files}
    # ---- checks
    lost = 0
    for c in out["cuts"]:
        pre = c.pop("_pre")
        c["lost"] = sum(records_lost(d, final.get(p, b"")) for p, d in pre.items() if p.endswith(".log"))
        c["decision"] = _decision(pre.get(LOG, b""), final.get(LOG, b""))
        lost += c["lost"]
    out["synced_records_lost"] = lost
    logs = {p: d for p, d in final.items() if p.endswith(".log")}
    out["logs"] = len(logs)
    out["readable"] = out["empty"] = out["closed"] = out["clean"] = 0
    out["incomplete_verdicts"] = []
    out["policy_violations"] = []
    out["verdict"] = None
    for p, d in logs.items():
        if not d:
            out["empty"] += 1
            continue
        try:
            log = read_log(d)
        except LogError as e:
            out["errors"].append("unreadable %s: %s" % (p, e))
            continue
        out["readable"] += 1
        out["closed"] += 1 if log.complete else 0
        out["clean"] += 1 if not log.problems else 0
        if log.problems:
            out["errors"].append("%s: %s" % (p, log.problems[:2]))
        if not log.complete:
            out["errors"].append("%s: not closed after the recovery" % p)
        why = incomplete_reasons(log)
        if why:
            out["incomplete_verdicts"].append(why[:3])
        sp = seal_problems(d, log)
        out["seal_checked"] = out.get("seal_checked", 0) + 1
        out["seal_broken"] = out.get("seal_broken", 0) + (1 if sp else 0)
        if sp:
            out["errors"].append("%s: seal: %s" % (p, sp))
        out["policy_violations"] += policy_violations(log)
        out["verdict"] = (log.verdict or {}).get("verdict")
        out["measured"] = bool(measured_verdicts(log))
    out["ref_verdict"] = ref["verdict"]
    out["wall_s"] = round(time.time() - t0, 2)
    return out


def policy_violations(log):
    """The recovery policy checked from the log alone (independent of recovery.py): a resume only
    after an in-spec SOAK sample, with a known outage within resume_grace_s, at most resume_max
    times; a run closed after a cut has an INVALID (or ABORTED) verdict, never a measured one."""
    bad = []
    m = log.header.get("method") if isinstance(log.header, dict) else {}
    m = m if isinstance(m, dict) else {}
    grace = m.get("resume_grace_s", 120)
    resumes = [e for e in log.events if e["code"] == C.E_RESUMED]
    if len(resumes) > m.get("resume_max", 3):
        bad.append("%d resumes" % len(resumes))
    for e in resumes:
        t = e["t_ms"] // 1000
        before = [x for x in log.samples if x["t_s"] < t]
        if not before:
            bad.append("resume without samples")
            continue
        last = before[-1]
        if last["phase"] != 7 or not last["flags"] & 1:
            bad.append("resumed after a %s sample (flags %d)" % (verify.phase_name(last["phase"]), last["flags"]))
        if not 0 <= e["a"] <= grace:
            bad.append("resumed after an outage of %d s (grace %d s)" % (e["a"], grace))
        if "rtc_start_s" not in log.header:
            bad.append("resumed without a clock")
    if any(e["code"] == C.E_INTERRUPTED for e in log.events):
        v = log.verdict or {}
        if v.get("verdict") not in ("INVALID", "ABORTED") or measured_verdicts(log):
            bad.append("interrupted run with verdict %r" % v.get("verdict"))
        if v.get("verdict") == "INVALID" and not v.get("invalid"):
            bad.append("interrupted INVALID without a reason")
    return bad


# ---------------------------------------------------------------- the campaign
_REFS = None


def _init(refs):
    global _REFS
    _REFS = refs


def _job(spec):
    try:
        return run_cut(spec, _REFS)
    except Exception as e:                      # noqa: BLE001
        import traceback
        return {"id": spec["id"], "variant": spec["variant"], "crash": traceback.format_exc()[-2000:],
                "errors": ["campaign crash: %r" % (e,)], "cuts": [], "synced_records_lost": 0}


def in_process(n_cuts, workers=2, seed=1, variants=None):
    variants = variants or VARIANTS
    t0 = time.time()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(min(workers, len(variants))) as pool:
        refs = dict(zip(sorted(variants), pool.starmap(reference, sorted(variants.items()))))
    specs = plan_cuts(refs, n_cuts, seed)
    # the longest jobs first
    with ctx.Pool(workers, initializer=_init, initargs=(refs,)) as pool:
        results = list(pool.imap_unordered(_job, specs, chunksize=1))
    results.sort(key=lambda r: r["id"])
    return summarize(results, refs, time.time() - t0)


def summarize(results, refs, wall_s):
    cuts = [c for r in results for c in r.get("cuts", [])]
    decisions = {}
    for c in cuts:
        decisions[c["decision"]] = decisions.get(c["decision"], 0) + 1
    phases = {}
    for c in cuts:
        k = "%s/%s" % tuple(c["where"])
        phases[k] = phases.get(k, 0) + 1
    resumed_runs = [r for r in results if any(c["decision"] == "resumed" for c in r.get("cuts", []))]
    # runs whose last cut was resumed ran to their end: compare with the undisturbed run
    finished = [r for r in resumed_runs if r["cuts"][-1]["decision"] == "resumed"]
    agree = sum(1 for r in finished if r.get("verdict") == r.get("ref_verdict"))
    s = {
        "power_cuts": len(cuts),
        "power_cut_runs": len(results),
        "torn_cuts": sum(1 for c in cuts if c["torn"]),
        "cuts_inside_file_ops": sum(1 for r in results if r.get("kind") in ("write", "flush")),
        "cut_phases": dict(sorted(phases.items())),
        "synced_records_lost": sum(r.get("synced_records_lost", 0) for r in results),
        "logs": sum(r.get("logs", 0) for r in results),
        "logs_readable": sum(r.get("readable", 0) for r in results),
        "logs_empty_cut_in_header": sum(r.get("empty", 0) for r in results),
        "logs_closed_after_recovery": sum(r.get("closed", 0) for r in results),
        "logs_without_reader_problems": sum(r.get("clean", 0) for r in results),
        "sealed_logs_checked": sum(r.get("seal_checked", 0) for r in results),
        "seal_broken": sum(r.get("seal_broken", 0) for r in results),
        "decisions": dict(sorted(decisions.items())),
        "runs_resumed": len(resumed_runs),
        "resumed_runs_finished": len(finished),
        "resumed_runs_finished_same_verdict_as_undisturbed": agree,
        "verdicts_from_incomplete_data": sum(len(r.get("incomplete_verdicts", [])) for r in results),
        "policy_violations": sum(len(r.get("policy_violations", [])) for r in results),
        "errors": sum(len(r.get("errors", [])) for r in results),
        "variants": {k: {"ticks": v["ticks"], "verdict": v["verdict"], "log_bytes": len(v["log"])}
                     for k, v in refs.items()},
        "wall_s": round(wall_s, 1),
    }
    s["examples"] = {
        "errors": [e for r in results for e in r.get("errors", [])][:10],
        "incomplete": [x for r in results for x in r.get("incomplete_verdicts", [])][:5],
        "policy": [x for r in results for x in r.get("policy_violations", [])][:5],
        "crash": [r["crash"] for r in results if "crash" in r][:2],
        "resumed_other_verdict": [{"id": r["id"], "variant": r["variant"], "verdict": r.get("verdict"),
                                   "undisturbed": r.get("ref_verdict"),
                                   "cuts": [(c["where"], c["outage_ms"], c["decision"]) for c in r["cuts"]]}
                                  for r in finished if r.get("verdict") != r.get("ref_verdict")][:5],
    }
    return s


# ---------------------------------------------------------------- the virtual device
def _vdev_cmd(fs_dir, scn=None):
    from ovenctl import vdev as V
    cmd = ["node", V.VDEV_MJS, "--fs", fs_dir, "--speed", "0", "--heap", "8192"]
    if scn is not None:
        cmd += ["--scenario", json.dumps(scn)]
    return cmd


def _spawn(cmd):
    from ovenctl import vmrun
    return subprocess.Popen(cmd, cwd=vmrun.ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def _kill(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    p.wait(10)


_MODEL_LOCK = threading.Lock()       # flash() patches the firmware's main module: one at a time


def model_cut(scn, synced_log):
    """The in-process model cut where the vdev's surviving log ends: run the same scenario until
    its log's durable length reaches len(synced_log), cut, boot the same recovery the vdev runs
    (a board_select without resume_plan). Returns (durable log at the cut, log after recovery)."""
    with _MODEL_LOCK:
        return _model_cut(scn, synced_log)


def _model_cut(scn, synced_log):
    fs = MemFS()
    with flash(fs):
        plan = Plan(scn, rtc=False)
        s = session(plan)
        target = len(synced_log)
        while True:
            node = fs.files.get(LOG)
            if node is not None and node.synced >= target:
                break
            if s.advance(1) < 0:
                break
        pre = fs.synced_image().get(LOG, b"")
        fs.power_cut()
        bs = BoardSelect(plan.bench, can_resume=False, rtc=False)
        main.recover(bs, RUNS, bs.link_rx, bs.link_tx, DEVICE_KEY)
        return pre, fs.read(LOG) if LOG in fs.files else b""


def _records(data):
    """(type, payload) of every record after the HEADER; JSON payloads parsed (key order differs
    between MicroPython and CPython)."""
    log = read_log(data)
    out = []
    verdicts = iter(log.verdicts)
    seals = iter(log.seals)
    for r in log.records[1:]:
        if r.name == "VERDICT":
            v = dict(next(verdicts, None) or {})
            v.pop("chain_hmac", None)       # over the HEADER's bytes, whose key order differs
            out.append((r.name, v))
        elif r.name == "SEAL":
            sl = next(seals, None) or {}
            out.append((r.name, sl.get("first"), sl.get("count")))   # tags: as chain_hmac
        else:
            out.append((r.name, data[r.offset:r.offset + r.length]))
    return out


def vdev_kills(n, seed=2, scn_obj=None, workers=2, run_wall_s=None):
    """n kills of a virtual device at random wall times; returns the summary."""
    from ovenctl import vmrun
    vmrun.check_vm()
    scn = scenario(scn_obj or {"seed": 7, "blank_run": False})
    rng = random.Random(seed)
    t0 = time.time()
    if run_wall_s is None:
        run_wall_s = _vdev_run_time(scn)
    kills = [rng.uniform(0.3, run_wall_s) for _ in range(n)]
    import concurrent.futures as cf
    with cf.ThreadPoolExecutor(workers) as ex:
        res = list(ex.map(lambda a: _vdev_kill(scn, a), kills))
    out = {"vdev_kills": len(res), "vdev_run_wall_s": round(run_wall_s, 1),
           "vdev_kill_times_s": [r["kill_after_s"] for r in res],
           "vdev_synced_records_lost": sum(r["lost"] for r in res),
           "vdev_logs_readable": sum(1 for r in res if r["readable"]),
           "vdev_logs_closed_interrupted": sum(1 for r in res if r["closed"] == "interrupted"),
           "vdev_logs_complete_before_kill": sum(1 for r in res if r["closed"] == "already complete"),
           "vdev_no_log_yet": sum(1 for r in res if r["closed"] == "no log"),
           "vdev_model_agrees": sum(1 for r in res if r["model_agrees"]),
           "vdev_model_compared": sum(1 for r in res if r["model_agrees"] is not None),
           "vdev_seal_checked": sum(1 for r in res if "seal_ok" in r),
           "vdev_seal_broken": sum(1 for r in res if r.get("seal_ok") is False),
           "vdev_errors": [e for r in res for e in r["errors"]][:10],
           "vdev_wall_s": round(time.time() - t0, 1)}
    return out


def _vdev_run_time(scn):
    """Wall time of one whole undisturbed vdev run (the window the kills are drawn from)."""
    d = tempfile.mkdtemp(prefix="reliab-vdev-")
    try:
        path = os.path.join(d, "runs", "sim-0001.log")
        t0 = time.time()
        p = _spawn(_vdev_cmd(d, scn))
        try:
            while time.time() - t0 < 300:
                if os.path.exists(path):
                    try:
                        with open(path, "rb") as f:
                            if read_log(f.read()).complete:
                                break
                    except LogError:
                        pass
                time.sleep(0.2)
        finally:
            _kill(p)
        return time.time() - t0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _vdev_kill(scn, after_s, at_log_bytes=None):
    """Kill a vdev running scn after_s wall seconds after its start, or (at_log_bytes) as soon as
    its run log has that many bytes on the flash: a cut in the run whatever the machine's load."""
    d = tempfile.mkdtemp(prefix="reliab-vdev-")
    r = {"kill_after_s": round(after_s, 2), "lost": 0, "readable": False, "closed": None, "model_agrees": None,
         "errors": []}
    try:
        fs_dir = os.path.join(d, "flash")
        os.makedirs(fs_dir)
        with open(os.path.join(fs_dir, "devkey.bin"), "wb") as f:
            f.write(DEVICE_KEY)            # as `ovenctl deploy --key` provisions it: the model has it too
        path = os.path.join(fs_dir, "runs", "sim-0001.log")
        p = _spawn(_vdev_cmd(fs_dir, scn))
        if at_log_bytes is None:
            time.sleep(after_s)
        else:
            t_end = time.time() + 300
            while time.time() < t_end and p.poll() is None:
                if os.path.exists(path) and os.path.getsize(path) >= at_log_bytes:
                    break
                time.sleep(0.05)
        _kill(p)                                   # power cut
        if not os.path.exists(path):
            r["closed"] = "no log"
            return r
        with open(path, "rb") as f:
            survived = f.read()
        try:
            slog = read_log(survived)
            r["readable"] = True
        except LogError as e:
            r["errors"].append("surviving log unreadable: %s" % e)
            return r
        if slog.complete:
            r["closed"] = "already complete"
        # power on again, no scenario: main.py's recovery runs, then the device is idle
        p = _spawn(_vdev_cmd(fs_dir))
        try:
            t_end = time.time() + 120
            while time.time() < t_end:
                with open(path, "rb") as f:
                    after = f.read()
                try:
                    if read_log(after).complete and after != survived or slog.complete:
                        break
                except LogError:
                    pass
                time.sleep(0.2)
        finally:
            _kill(p)
        with open(path, "rb") as f:
            after = f.read()
        r["lost"] = records_lost(survived[:slog.records[-1].offset + slog.records[-1].length], after)
        alog = read_log(after)
        if not alog.complete:
            r["errors"].append("not closed after the reboot (kill at %.1f s)" % after_s)
            return r
        if not slog.complete:
            r["closed"] = "interrupted"
            if alog.verdict.get("verdict") not in ("INVALID", "ABORTED"):
                r["errors"].append("closed with verdict %r" % alog.verdict.get("verdict"))
        # the in-process model of the same cut
        intact = survived[:slog.records[-1].offset + slog.records[-1].length]
        pre, model_after = model_cut(scn, intact)
        r["model_agrees"] = (_records(pre) == _records(intact) and _records(model_after) == _records(after))
        if not r["model_agrees"]:
            r["errors"].append("model differs from the vdev (kill at %.1f s, %d bytes)" % (after_s, len(intact)))
        sp = seal_problems(after, alog)
        r["seal_ok"] = not sp
        if sp:
            r["errors"].append("the vdev's log after the reboot: seal: %s" % sp)
        return r
    except Exception as e:                         # noqa: BLE001
        r["errors"].append("vdev kill: %r" % (e,))
        return r
    finally:
        shutil.rmtree(d, ignore_errors=True)
