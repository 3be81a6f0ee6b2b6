"""Campaign 4: bad input.

A. Run-log readers: seeded mutations of real and synthetic run logs (byte and bit flips,
   truncations, insertions, deletions, record duplication, reordering and removal, splices,
   random bytes, empty input, and mutations behind a recomputed CRC: garbage varints in a valid
   frame, the HEADER's and VERDICT's JSON with values of every type) go through every ovenctl
   reader: logfile.read_log, verify.verify_log + its text report, export (CSV rows, the JSON
   document), report's data preparation (build, loss curves, marks, verdict rows, HTML and PDF
   summary text); a share also through the commands' run() entry points on a file (exit codes),
   and a few hundred through the plots. A crash is any exception other than the documented
   ones (logfile.LogError from read_log; UserError, i.e. exit code 2, from the commands).
B. The run protocol: random and malformed bytes and requests fed to the device's serial link
   (in-process main.Session, link.RxRing) throughout accelerated runs; every record after the
   log's header must equal the undisturbed run's (so verdict, loss and phases are unchanged).
C. Configuration: invalid methods (methods.validate), scenarios (ovenctl.scenario.normalize)
   and /config.json files (plan.load_config + start.choices), each with one known defect: it must
   be rejected with an error that names the field; valid ones must be accepted.
"""
import contextlib
import io
import json
import math
import multiprocessing
import os
import random
import struct
import tempfile
import time
import zlib
from argparse import Namespace
from array import array

from common import DEVICE_KEY, Plan, RUNS, app, link, main, methods, read_log, run_to_end, scenario  # noqa: F401
from ovenctl import cmd_export, cmd_report, cmd_verify, sealcheck, verify
from ovenctl.errors import UserError
from ovenctl.logfile import LogError

from oven.store import runlog

# the seed logs from simulated runs are sealed with the campaign's device key (common.session):
# mutated, they go through the seal check with that key too
FUZZ_KEY = DEVICE_KEY

# ---------------------------------------------------------------- seeds
SEED_SCN = {"seed": 5, "blank_run": False, "method": {"soak_s": 600, "soak_max_total_s": 1200, "blank_soak_s": 0}}


def _frame(typ, seq, payload):
    body = bytearray()
    v = seq
    while v > 0x7F:
        body.append((v & 0x7F) | 0x80)
        v >>= 7
    body.append(v)
    body += payload
    head = bytes([0xA5, 0x5A, typ]) + struct.pack("<H", len(body) & 0xFFFF)
    crc = zlib.crc32(head[2:] + bytes(body)) & 0xFFFFFFFF
    return head + bytes(body) + struct.pack("<I", crc)


class _Sink:
    def __init__(self):
        self.data = bytearray()

    def write(self, b, off=0, n=-1):
        if n < 0:
            n = len(b) - off
        self.data += bytes(memoryview(b)[off:off + n])
        return n

    def flush(self):
        pass

    def close(self):
        pass


def synthetic_log(rng, n_cells, n_soak, complete=True, verdict="PASS", empty_m1=False):
    """A small, plausible run log written by the firmware's RunLog (not a simulation)."""
    f = _Sink()
    log = runlog.RunLog(n_cells)
    m = methods.validate({"soak_s": 60, "soak_max_total_s": 120})
    blank = None
    if rng.random() < 0.5:
        blank = [{"k_num": rng.randrange(-500, 500), "k_den": 100, "var_k_num": 4, "var_k_den": 10000,
                  "t_ref_c_x100": 2300, "vac_offset_num": rng.randrange(-50, 50), "vac_offset_den": 1}
                 for _ in range(n_cells)]
    hdr = {"run_id": "syn-%d" % rng.randrange(1000), "fw_version": app.FW_VERSION, "board": "sim", "mode": "test",
           "method": m, "cells": ["c%d" % i for i in range(n_cells)],
           "calibration": {"counts_per_g": 20972, "span": "nominal", "blank": blank}}
    log.open("x", hdr, opener=lambda p, mode: f)
    raw = array("i", [500000 + 1000 * i for i in range(n_cells)])
    t = 0
    ph = 0

    def phase(new):
        nonlocal ph
        log.event(t * 1000, 100, new, ph)
        ph = new

    def samples(k, phase_no, flags, temp, p):
        nonlocal t
        for _ in range(k):
            t += 1
            for c in range(n_cells):
                raw[c] = runlog.MISSING if rng.random() < 0.02 else raw[c] + rng.randrange(-40, 41)
            log.sample(t, phase_no, flags, temp + rng.randrange(-20, 21), 2300, p, 400 if flags & 2 else 0, raw)
            log.poll(t)

    def weigh(kind, base):
        for c in range(n_cells):
            xs = [base + 1000 * c + rng.randrange(-30, 31) for _ in range(rng.randrange(4, 24))]
            if empty_m1 and kind == 3 and c == 0:
                xs = []
            log.weigh(c, kind, t * 1000, 2300, xs, -1, rng.randrange(0, 3))

    phase(1)
    samples(3, 1, 8, 2300, 101000)
    phase(2)
    samples(6, 2, 0, 2300, 101000)
    weigh(1, 100000)
    phase(3)
    samples(5, 3, 0, 2300, 101000)
    phase(4)
    samples(6, 4, 0, 2300, 101000)
    weigh(2, 600000)
    phase(5)
    samples(20, 5, 4, 2300, 20000)
    phase(6)
    samples(20, 6, 6, 11000, 900)
    phase(7)
    samples(n_soak, 7, 7, 12000, 900)
    log.event(t * 1000, 109, n_soak, n_soak)
    phase(8)
    samples(15, 8, 4, 5000, 900)
    phase(9)
    samples(8, 9, 8, 3000, 100000)
    phase(10)
    samples(6, 10, 0, 2500, 101000)
    weigh(3, 599000)
    phase(11)
    samples(3, 11, 0, 2400, 101000)
    for c in range(n_cells):
        log.event(t * 1000, 103, c, 0)
    phase(12)
    phase(13)
    if complete:
        log.verdict({"verdict": verdict, "cells": [{"verdict": verdict, "cell": c, "loss_ppm": 1600, "u_ppm": 90,
                                                    "leak_visible": 0, "early_fail": 0} for c in range(n_cells)],
                     "method": m["name"], "fault": 0, "invalid": 0, "soak_in_spec_s": n_soak,
                     "soak_total_s": n_soak})
        log.close()
    return bytes(f.data)


def sim_log(obj):
    """A real run log from the in-process device (small method, full run)."""
    from common import flash
    from memfs import MemFS
    fs = MemFS()
    with flash(fs):
        plan = Plan(scenario(obj))
        s = main.Session(plan, link.RxRing(16), lambda b: len(b), runs_dir=RUNS)
        run_to_end(s)
        return fs.read(RUNS + "/sim-0001.log")


SMALL_SIMS = [
    {"seed": 5, "blank_run": False, "oven": {"heat_capacity_j_per_c": 400.0},
     "method": {"setpoint_c_x100": 6000, "soak_s": 120, "soak_max_total_s": 600}},
    {"seed": 6, "blank_run": False, "oven": {"heat_capacity_j_per_c": 600.0},
     "cells": [{}, {"mass_g": 20.0, "volume_cm3": 8.0}],
     "method": {"setpoint_c_x100": 5000, "soak_s": 120, "soak_max_total_s": 600, "vent_below_c_x100": 3500}},
    {"seed": 7, "blank_run": False, "oven": {"heat_capacity_j_per_c": 400.0},
     "method": {"setpoint_c_x100": 6000, "soak_s": 120, "soak_max_total_s": 600},
     "faults": [{"kind": "thermocouple_open", "phase": "SOAK", "at_s": 60.0}]},
]


def cut_log(obj, outage_ms):
    """A small run cut in its soak and recovered: resumed (short outage) or closed INTERRUPTED."""
    from common import BoardSelect, flash
    from memfs import MemFS
    fs = MemFS()
    with flash(fs):
        plan = Plan(scenario(obj))
        s = main.Session(plan, link.RxRing(16), lambda b: len(b), runs_dir=RUNS)
        while s.ctrl.phase != app.PH_SOAK or s.ctrl.soak_total_ms < 40000:
            s.advance(1)
        fs.power_cut()
        plan.board.power_on_state()
        plan.bench.advance(outage_ms)
        bs = BoardSelect(plan.bench)
        s2 = main.recover(bs, RUNS, bs.link_rx, bs.link_tx)
        if s2 is not None:
            run_to_end(s2)
        return fs.read(RUNS + "/sim-0001.log")


def corpus(seed=1, with_sim=True):
    """(synthetic logs, small simulated logs, big simulated logs)."""
    rng = random.Random(seed)
    synth = [synthetic_log(rng, n, rng.randrange(5, 40), complete=rng.random() < 0.8,
                           verdict=rng.choice(["PASS", "FAIL", "INCONCLUSIVE", "ABORTED"]))
             for n in (1, 1, 1, 2, 2, 3, 4)]
    small = []
    big = []
    if with_sim:
        small = [sim_log(x) for x in SMALL_SIMS]
        small.append(cut_log(SMALL_SIMS[0], 3000))        # resumed
        small.append(cut_log(SMALL_SIMS[0], 900000))      # closed INTERRUPTED
        big.append(sim_log(SEED_SCN))
    return synth, small, big


def _records(data):
    try:
        return [(r.offset, r.length) for r in read_log(data).records]
    except LogError:
        return []


# ---------------------------------------------------------------- mutations
def _rand_json_value(rng, depth=0):
    r = rng.random()
    if r < 0.12:
        return None
    if r < 0.22:
        return rng.choice([True, False])
    if r < 0.42:
        return rng.choice([0, -1, 1, 2 ** 31, -2 ** 63, 10 ** 30, rng.randrange(-10 ** 6, 10 ** 6)])
    if r < 0.55:
        return rng.choice([0.5, -1e308, 1e308, float("nan"), float("inf"), 1e-300, 12000.0])
    if r < 0.72:
        return rng.choice(["", "PASS", "FAIL", "x" * 300, "gb-2026", "le", "\u00e9\u4e2d", "ABORTED", "1e9"])
    if depth > 3:
        return 0
    if r < 0.86:
        return [_rand_json_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {rng.choice(["a", "verdict", "cells", "method", "k_num", "log", "n_cells"]): _rand_json_value(rng, depth + 1)
            for _ in range(rng.randrange(0, 4))}


def _mutate_json(rng, obj):
    """Replace, delete or add one value somewhere in a JSON object tree."""
    path = [obj]
    cur = obj
    for _ in range(rng.randrange(1, 5)):
        if isinstance(cur, dict) and cur:
            k = rng.choice(list(cur))
            if isinstance(cur[k], (dict, list)) and cur[k] and rng.random() < 0.6:
                cur = cur[k]
                path.append(cur)
                continue
            break
        if isinstance(cur, list) and cur:
            i = rng.randrange(len(cur))
            if isinstance(cur[i], (dict, list)) and cur[i] and rng.random() < 0.6:
                cur = cur[i]
                path.append(cur)
                continue
            break
        break
    op = rng.random()
    if isinstance(cur, dict):
        if cur and op < 0.6:
            cur[rng.choice(list(cur))] = _rand_json_value(rng)
        elif cur and op < 0.8:
            del cur[rng.choice(list(cur))]
        else:
            cur[rng.choice(["zz", "verdict", "n_cells", "format", "blank", "rtc_start_s"])] = _rand_json_value(rng)
    elif isinstance(cur, list) and cur:
        if op < 0.7:
            cur[rng.randrange(len(cur))] = _rand_json_value(rng)
        else:
            del cur[rng.randrange(len(cur))]
    return obj


def _body(data, off, length):
    """(typ, seq, payload) of the valid frame at off."""
    typ = data[off + 2]
    b = data[off + 5:off + length - 4]
    seq = 0
    sh = 0
    i = 0
    while i < len(b):
        x = b[i]
        i += 1
        seq |= (x & 0x7F) << sh
        sh += 7
        if not x & 0x80:
            break
    return typ, seq, bytes(b[i:])


def mutate(rng, data, recs, other):
    d = bytearray(data)
    ops = rng.randrange(1, 4)
    for _ in range(ops):
        op = rng.randrange(17)
        n = len(d)
        if op == 0 and n:                                  # byte flips
            for _ in range(rng.randrange(1, 9)):
                d[rng.randrange(n)] = rng.randrange(256)
        elif op == 1 and n:                                # bit flips
            for _ in range(rng.randrange(1, 5)):
                d[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 2:                                      # truncation
            d = d[:rng.randrange(n + 1)]
        elif op == 3:                                      # insertion
            i = rng.randrange(n + 1)
            d[i:i] = rng.randbytes(rng.randrange(1, 64))
        elif op == 4 and n:                                # deletion
            i = rng.randrange(n)
            del d[i:i + rng.randrange(1, 200)]
        elif op in (5, 6, 7, 8) and recs:
            r = rng.choice(recs[1:] or recs)
            chunk = bytes(data[r[0]:r[0] + r[1]])
            j = rng.choice(recs)[0]
            if op == 5:                                    # duplicate a record
                d[j:j] = chunk
            elif op == 6 and len(recs) > 2:                # swap two records
                a, b = sorted(rng.sample(recs[1:], 2))
                if a[0] + a[1] <= b[0] and b[0] + b[1] <= len(d):
                    d = d[:a[0]] + d[b[0]:b[0] + b[1]] + d[a[0] + a[1]:b[0]] + d[a[0]:a[0] + a[1]] + d[b[0] + b[1]:]
            elif op == 7 and r[0] + r[1] <= len(d):        # drop a record
                del d[r[0]:r[0] + r[1]]
            else:                                          # a record's body changed, CRC recomputed
                typ, seq, pl = _body(data, r[0], r[1])
                pl = bytearray(pl)
                for _ in range(rng.randrange(1, 5)):
                    if pl and rng.random() < 0.7:
                        pl[rng.randrange(len(pl))] = rng.choice([0, 0x7F, 0x80, 0xFF, rng.randrange(256)])
                    else:
                        i = rng.randrange(len(pl) + 1)
                        pl[i:i] = bytes([0xFF] * rng.randrange(1, 12) + [0x7F])
                if rng.random() < 0.2:
                    typ = rng.randrange(256)
                if rng.random() < 0.2:
                    seq = rng.choice([0, seq + 1, seq - 1 if seq else 5, 10 ** 6])
                if r[0] + r[1] <= len(d):
                    d[r[0]:r[0] + r[1]] = _frame(typ, seq, bytes(pl)[:65000])
        elif op in (9, 10) and recs:                       # HEADER / VERDICT JSON, valid frame
            js = [r for r in recs if data[r[0] + 2] in (1, 5)]
            if js:
                r = rng.choice(js)
                typ, seq, pl = _body(data, r[0], r[1])
                try:
                    obj = json.loads(pl.decode())
                    obj = _mutate_json(rng, obj)
                    pl = json.dumps(obj).encode()
                except ValueError:
                    pl = b"{" + pl
                if r[0] + r[1] <= len(d):
                    d[r[0]:r[0] + r[1]] = _frame(typ, seq, pl[:65000])
        elif op == 11:                                     # random bytes
            d = bytearray(rng.randbytes(rng.randrange(0, 2000)))
            if rng.random() < 0.5 and recs:
                d[0:0] = data[:recs[0][1]]
        elif op == 12:                                     # empty
            d = bytearray()
        elif op == 13:                                     # splice two logs
            d = d[:rng.randrange(n + 1)] + other[rng.randrange(len(other) + 1):]
        elif op == 14 and recs:                            # a garbage but valid frame
            j = rng.choice(recs)[0]
            if j <= len(d):
                d[j:j] = _frame(rng.choice([1, 2, 3, 4, 5, 6, 7, 200]), rng.randrange(0, 1000),
                                rng.randbytes(rng.randrange(0, 80)))
        elif op == 15 and recs:                            # a record cut in the middle
            r = rng.choice(recs)
            if r[0] + r[1] <= len(d):
                del d[r[0] + rng.randrange(1, r[1]):r[0] + r[1]]
        elif op == 16:                                     # a new HEADER object entirely
            hdr = _rand_json_value(rng)
            if not isinstance(hdr, dict) or rng.random() < 0.5:
                hdr = {"log": {"format": rng.choice([1, 2, "1", None]), "n_cells": rng.choice([0, 1, 2, 255, -1, 3.5, None]),
                               "sync_every_s": 10}, "method": _rand_json_value(rng), "cells": _rand_json_value(rng),
                       "calibration": _rand_json_value(rng)}
            hf = _frame(1, 0, json.dumps(hdr).encode())
            cut = recs[0][1] if recs else 0
            d = bytearray(hf) + d[cut:]
    return bytes(d)


# ---------------------------------------------------------------- the readers
@contextlib.contextmanager
def _quiet():
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def readers(data, path=None, plots=False, cli=False, tmpdir=None, status=None):
    """Every reader on one input. Returns None, or (reader, repr of the exception) for a crash.
    status (a dict), if given, gets "readable": whether read_log accepted the input."""
    stage = "read_log"
    try:
        try:
            log = read_log(data)
        except LogError:
            log = None
        if status is not None:
            status["readable"] = log is not None
        if log is not None:
            stage = "verify"
            res = verify.verify_log(log, path="fuzz.log")
            verify.format_report(res)
            json.dumps(res)
            stage = "seal_check"
            sealcheck.format_result(sealcheck.check(data, log, FUZZ_KEY))
            stage = "export_csv"
            cmd_export.csv_columns(log.n_cells)
            for _row in cmd_export.csv_rows(log):
                pass
            stage = "export_json"
            json.dumps(cmd_export.json_doc(log, "fuzz.log", None))
            stage = "report_data"
            rep = cmd_report.build(log, "/nonexistent/fuzz.log", None)
            cmd_report.loss_curves(log, rep)
            cmd_report._marks(log)
            verify.phase_spans(log)
            cmd_report.verdict_rows(rep)
            cmd_report.summary_lines(rep)
            cmd_report.render_html(rep, [])
            if plots:
                stage = "report_plots"
                figs = cmd_report.figures(log, rep)
                for f in figs:
                    cmd_report.png_b64(f[2])
                cmd_report.render_html(rep, figs)
        if cli:
            p = os.path.join(tmpdir, "in.log")
            with open(p, "wb") as f:
                f.write(data)
            kp = os.path.join(tmpdir, "dev.key")
            if not os.path.exists(kp):
                with open(kp, "w") as f:
                    f.write(FUZZ_KEY.hex() + "\n")
                os.chmod(kp, 0o600)
            for stage, func, args in (
                    ("cli_verify", cmd_verify.run, Namespace(log=p, json=True, key=None)),
                    ("cli_verify_text", cmd_verify.run, Namespace(log=p, json=False, key=None)),
                    ("cli_verify_key", cmd_verify.run, Namespace(log=p, json=False, key=kp)),
                    ("cli_export_csv", cmd_export.run, Namespace(log=p, csv=os.path.join(tmpdir, "o.csv"), json=None)),
                    ("cli_export_json", cmd_export.run, Namespace(log=p, csv=None, json=os.path.join(tmpdir, "o.json")))):
                try:
                    with _quiet():
                        rc = func(args)
                except UserError as e:
                    rc = e.code
                if rc not in (0, 1, 2):
                    return stage, "exit code %r" % (rc,)
            if plots:
                stage = "cli_report"
                try:
                    with _quiet():
                        rc = cmd_report.run(Namespace(log=p, out=os.path.join(tmpdir, "r.html"), pdf=None,
                                                      rated_wh="12.5"))
                except UserError as e:
                    rc = e.code
                if rc not in (0, 2):
                    return stage, "exit code %r" % (rc,)
        return None
    except Exception as e:                      # noqa: BLE001  the point: anything else is a crash
        import traceback
        return stage, "%r at %s" % (e, traceback.format_exc().strip().splitlines()[-3][:200])


_SEEDS = None


def _init(seeds):
    global _SEEDS
    _SEEDS = seeds
    import ovenctl.cli  # noqa: F401  (the commands import UserError from it on error paths)


def _reader_batch(a):
    first, n, seed, plots_every, cli_every = a
    synth, small, big = _SEEDS
    rng = random.Random(seed)
    recs = {id(s): _records(s) for s in synth + small + big}
    crashes = []
    kinds = {"read_ok": 0, "read_error": 0}
    tmpdir = tempfile.mkdtemp(prefix="reliab-fuzz-")
    try:
        for k in range(first, first + n):
            u = rng.random()
            pool = big if (big and u < 0.002) else small if (small and u < 0.05) else synth
            base = rng.choice(pool)
            other = rng.choice(synth)
            data = mutate(rng, base, recs[id(base)], other) if k % 50 else base
            plots = bool(plots_every) and k % plots_every == 0
            cli = bool(cli_every) and k % cli_every == 0
            if plots:
                # plots on a readable input (most mutations leave one)
                for _ in range(20):
                    try:
                        read_log(data)
                        break
                    except LogError:
                        data = mutate(rng, base, recs[id(base)], other)
            st = {}
            c = readers(data, plots=plots, cli=cli, tmpdir=tmpdir, status=st)
            kinds["read_ok" if st.get("readable") else "read_error"] += 1
            if c is not None:
                crashes.append({"case": k, "reader": c[0], "error": c[1], "len": len(data),
                                "input_hex": data.hex() if len(crashes) < 3 else data[:256].hex()})
    finally:
        import shutil
        shutil.rmtree(tmpdir, ignore_errors=True)
    return n, crashes, kinds


def reader_fuzz(n_cases, workers=2, seed=11, plots=200, cli=2000, with_sim=True):
    t0 = time.time()
    seeds = corpus(seed, with_sim)
    batch = 500
    jobs = []
    k = 0
    plots_every = max(1, n_cases // plots) if plots else 0
    cli_every = max(1, n_cases // cli) if cli else 0
    while k < n_cases:
        m = min(batch, n_cases - k)
        jobs.append((k, m, seed * 1000003 + k, plots_every, cli_every))
        k += m
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers, initializer=_init, initargs=(seeds,)) as pool:
        res = pool.map(_reader_batch, jobs, chunksize=1)
    crashes = [c for r in res for c in r[1]]
    ok = sum(r[2]["read_ok"] for r in res)
    return {"fuzz_cases": sum(r[0] for r in res), "reader_crashes": len(crashes),
            "fuzz_readable_cases": ok, "fuzz_unreadable_cases": sum(r[2]["read_error"] for r in res),
            "fuzz_plot_cases": (n_cases // plots_every) if plots_every else 0,
            "fuzz_cli_cases": (n_cases // cli_every) if cli_every else 0,
            "fuzz_seed_logs": {"synthetic": len(seeds[0]), "simulated": len(seeds[1]) + len(seeds[2]),
                               "bytes": [len(x) for x in seeds[0] + seeds[1] + seeds[2]]},
            "reader_crash_examples": crashes[:5], "fuzz_wall_s": round(time.time() - t0, 1)}


# ---------------------------------------------------------------- B. run protocol
PROTO_SCN = {"seed": 9, "blank_run": False, "method": {"soak_s": 1800, "soak_max_total_s": 3600}}


def _req(rng, good_crc=True, cmd=None, args=None):
    tag = rng.choice([b"h1", b"abc", b"T%d" % rng.randrange(1000), b"-", b"toolongtag9", b""])
    cmd = cmd if cmd is not None else rng.choice([b"PING", b"STATUS", b"LIST", b"READ", b"HASH", b"ABORT",
                                                  b"STOP", b"NOPE", b"ping", b"", b"READ\x00"])
    if args is None:
        args = []
        for _ in range(rng.randrange(0, 4)):
            args.append(rng.choice([b"sim-0001", b"../etc", b"0", b"-1", b"999999999", b"1234567890",
                                    b"%d" % rng.randrange(300000), b"deadbeef", b".x", b"a" * 50, b"\xff\xfe"]))
    body = b" ".join([tag, cmd] + args)
    crc = zlib.crc32(body) & 0xFFFFFFFF
    if not good_crc:
        crc ^= 1 << rng.randrange(32)
    tail = rng.choice([b"*%08x\n" % crc, b"*%08X\n" % crc, b"*%x\r\n" % crc, b"\n", b"*0x%06x\n" % (crc & 0xFFFFFF),
                       b"*%08x" % crc]) if rng.random() < 0.3 else b"*%08x\n" % crc
    return b"#@" + body + tail


def chunk(rng, style):
    if style == "bytes":
        return rng.randbytes(rng.randrange(1, 300))
    if style == "bad_crc":
        return _req(rng, good_crc=False)
    if style == "valid":
        if rng.random() < 0.15:
            return _req(rng, cmd=b"ABORT", args=[b"%08x" % rng.randrange(1 << 32)])
        return _req(rng)
    if style == "long":
        return rng.choice([b"#@" + b"A" * rng.randrange(150, 600) + b"\n", b"#@#@#@" * 50, b"#" * 300,
                           b"#@h1 PING" + b"\r" * 250 + b"\n", b"\n" * 200, b"#@" + bytes(range(256))])
    return chunk(rng, rng.choice(["bytes", "bad_crc", "valid", "long"]))


def _log_after_header(data):
    log = read_log(data)
    return data[log.records[1].offset:], log


def protocol_run(style, seed, scn_obj=None, quick=False):
    scn_obj = scn_obj or PROTO_SCN
    rng = random.Random(seed)
    d = tempfile.mkdtemp(prefix="reliab-proto-")
    try:
        ring = link.RxRing(4096)
        out = bytearray()

        def tx(b):
            out.extend(b)
            return len(b)
        plan = Plan(scenario(scn_obj), rtc=False)
        s = main.Session(plan, ring, tx, runs_dir=d)
        fed = 0
        while True:
            if rng.random() < 0.4:
                c = chunk(rng, style)
                fed += ring.put(c)
            if s.advance(1) < 0:
                break
        data = open(os.path.join(d, "sim-0001.log"), "rb").read()
        return {"style": style, "bytes_fed": fed, "requests": s.link.requests, "errors": s.link.errors,
                "responses": out.count(b"\n"), "log": data, "result": s.result}
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)


def _proto_job(a):
    try:
        return protocol_run(*a)
    except Exception as e:                      # noqa: BLE001
        import traceback
        return {"style": a[0], "crash": traceback.format_exc()[-1500:], "error": repr(e)}


def protocol_fuzz(runs=8, workers=2, seed=3, scn_obj=None):
    t0 = time.time()
    scn_obj = scn_obj or PROTO_SCN
    styles = ["bytes", "bad_crc", "valid", "long", "mixed"]
    jobs = [(styles[i % len(styles)], seed * 7919 + i, scn_obj) for i in range(runs)]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        ref = pool.apply_async(_reference_run, (scn_obj,))
        rows = pool.map(_proto_job, jobs, chunksize=1)
        refrow = ref.get()
    # the undisturbed reference: the same scenario without a byte of input
    ref_tail, ref_log = _log_after_header(refrow["log"])
    disturbed = []
    crashes = []
    for r in rows:
        if "crash" in r:
            crashes.append(r)
            continue
        tail, log = _log_after_header(r["log"])
        same = (tail == ref_tail and r["result"] == refrow["result"]
                and (log.verdict or {}).get("cells") == (ref_log.verdict or {}).get("cells"))
        if not same:
            disturbed.append({"style": r["style"], "verdict": r["result"], "ref": refrow["result"]})
    return {"protocol_fuzz_runs": len(rows), "protocol_fuzz_runs_disturbed": len(disturbed),
            "protocol_fuzz_crashes": len(crashes),
            "protocol_fuzz_bytes": sum(r.get("bytes_fed", 0) for r in rows),
            "protocol_fuzz_requests": sum(r.get("requests", 0) for r in rows),
            "protocol_fuzz_error_replies": sum(r.get("errors", 0) for r in rows),
            "protocol_fuzz_replies": sum(r.get("responses", 0) for r in rows),
            "protocol_reference": {"verdict": refrow["result"], "loss_ppm": [c.get("loss_ppm") for c in
                                                                            (ref_log.verdict or {}).get("cells", [])],
                                   "phases": [verify.phase_name(e["a"]) for e in ref_log.events if e["code"] == 100]},
            "protocol_examples": (disturbed + crashes)[:3], "protocol_wall_s": round(time.time() - t0, 1)}


def _reference_run(scn_obj):
    d = tempfile.mkdtemp(prefix="reliab-proto-ref-")
    try:
        plan = Plan(scenario(scn_obj), rtc=False)
        s = main.Session(plan, link.RxRing(16), lambda b: len(b), runs_dir=d)
        run_to_end(s)
        return {"log": open(os.path.join(d, "sim-0001.log"), "rb").read(), "result": s.result}
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- C. configuration
_INT = {f[0]: (f[2], f[3]) for f in methods.describe_fields()}
_CHOICES = {"comparator": ("le", "lt"), "decision": ("guarded", "simple"), "early_fail": ("continue", "stop")}


def _valid_method(rng):
    m = {}
    if rng.random() < 0.5:
        m["base"] = rng.choice(["gb-2026", "tcsae-434-2025"])
    for k, (lo, hi) in _INT.items():
        if rng.random() < 0.3 and k not in ("setpoint_c_x100", "tol_c_x100", "soak_s", "soak_max_total_s"):
            m[k] = rng.randint(lo, hi)
    s = rng.randint(60, 30000)
    m["soak_s"] = s
    m["soak_max_total_s"] = rng.randint(s, min(345600, s * 3))
    m["setpoint_c_x100"] = rng.randint(3000, 12800)
    m["tol_c_x100"] = rng.randint(10, min(1000, 13000 - m["setpoint_c_x100"]))
    for k, ch in _CHOICES.items():
        if rng.random() < 0.3:
            m[k] = rng.choice(ch)
    if rng.random() < 0.3:
        m["name"] = "m%d" % rng.randrange(1000)
    return m


def _bad_method(rng):
    """(method object, the field the error must name)."""
    m = _valid_method(rng)
    op = rng.randrange(9)
    if op == 0:
        k = rng.choice(["bogus", "soak", "Limit_ppm", "limit-ppm", "", "1"])
        m[k] = 1
        return m, k
    if op == 1:
        k = rng.choice(list(_INT))
        m[k] = rng.choice(["10", 1.5, None, True, [], {}, float("nan")])
        return m, k
    if op == 2:
        k = rng.choice(list(_INT))
        lo, hi = _INT[k]
        m[k] = rng.choice([lo - 1, hi + 1, -10 ** 9, 10 ** 12])
        return m, k
    if op == 3:
        k = rng.choice(list(_CHOICES))
        m[k] = rng.choice(["LE", "", None, 1, "guarded " + k])
        return m, k
    if op == 4:
        m["soak_max_total_s"] = m["soak_s"] - rng.randint(1, m["soak_s"] - 60) if m["soak_s"] > 60 else 30
        return m, "soak_max_total_s"
    if op == 5:
        m["setpoint_c_x100"] = rng.randint(12010, 13000)
        m["tol_c_x100"] = rng.randint(13001 - m["setpoint_c_x100"], 1000)
        return m, "tol_c_x100"
    if op == 6:
        m["name"] = rng.choice(["", "x" * 33, 5, None, ["a"]])
        return m, "name"
    if op == 7:
        m["base"] = rng.choice(["gb", 7, None, "tcsae", ""])
        return m, "base"
    return rng.choice([[], 5, None, 1.5, True]), ""


_SCN_PATHS = [("seed", [-1, 2 ** 32, "7", 1.5, None]), ("ambient_c", [-1, 46, "23", None]),
              ("ambient_end_c", [100, True]), ("cells", [[], [{}] * 5, "x", {}]),
              ("cells[0].mass_g", [0, 2001, "45", None]), ("cells[0].volume_cm3", [0.001, 2001, []]),
              ("cells[0].volatile_g", [-1, "x"]), ("cells[0].evap_tau_min", [0, 2e6]),
              ("cells[0].leak_visible", [1, "no", None]), ("load_cell.capacity_g", [0, 1e5]),
              ("load_cell.noise_counts_rms", [-1]), ("oven.heater_w", [0, 1e5, float("nan")]),
              ("oven.loss_w_per_c", [0]), ("vacuum.leak_kpa_per_min", [101, -0.1]), ("blank_run", [0, "yes"]),
              ("faults", ["x", [1] * 65]), ("faults[0].kind", ["fire", 1, None]), ("faults[0].at_s", [-1, 2e6]),
              ("faults[0].duration_s", [0, "1"]), ("faults[0].phase", ["BAKE", 3]),
              ("faults[0].channel", [5, -1, 1.5]), ("method", ["gb", 5]), ("load_cell", [[], "x"]),
              ("load_cell.gain", [1]), ("oven.fan", [1]), ("cells[0].colour", ["red"]), ("zzz", [1])]


def _set_path(obj, path, value):
    parts = path.replace("]", "").replace("[", ".").split(".")
    cur = obj
    for i, p in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        key = int(p) if p.isdigit() else p
        if isinstance(cur, list):
            while len(cur) <= key:
                cur.append({})
            cur = cur[key]
        else:
            if key not in cur or not isinstance(cur[key], (dict, list)):
                cur[key] = [] if nxt.isdigit() else {}
            cur = cur[key]
    last = parts[-1]
    if isinstance(cur, list):
        while len(cur) <= int(last):
            cur.append({})
        cur[int(last)] = value
    else:
        cur[last] = value


def _bad_scenario(rng):
    path, vals = rng.choice(_SCN_PATHS)
    obj = {"seed": rng.randrange(1000)}
    if path.startswith("faults[0]") and not path.endswith(".kind"):
        obj["faults"] = [{"kind": "loadcell_glitches" if path.endswith("channel") else "vacuum_leak"}]
    v = rng.choice(vals)
    _set_path(obj, path, v)
    if path == "seed" and rng.random() < 0.2:
        del obj["seed"]
    head = path.split("[")[0] if path in ("cells", "faults") else path
    return obj, head


def _bad_config(rng):
    op = rng.randrange(5)
    if op == 0:
        k = rng.choice(["methods", "Method", "blank", "wdt_ms", ""])
        return {k: 1}, k
    if op == 1:
        return {"board": rng.choice([[], "pico", 5, None])}, "board"
    if op == 2:
        return {"counts_per_g": rng.choice([0, -5, "20972", 1.5, None])}, "counts_per_g"
    m, field = _bad_method(rng)
    return {"method": m}, ("method." + field) if field else "method"


def config_fuzz(n=20000, seed=13):
    from oven.run import plan as P
    from oven.run import start as S
    from ovenctl.scenario import ScenarioError, normalize
    rng = random.Random(seed)
    stats = {"config_cases": 0, "config_not_rejected": 0, "config_field_not_named": 0, "config_crashes": 0,
             "config_valid_rejected": 0, "config_valid_cases": 0}
    bad = []
    d = tempfile.mkdtemp(prefix="reliab-cfg-")
    path = os.path.join(d, "config.json")
    try:
        for i in range(n):
            kind = i % 4
            try:
                if kind == 0:
                    m, field = _bad_method(rng)
                    try:
                        methods.validate(m)
                        err = None
                    except methods.MethodError as e:
                        err = e
                    named = err is not None and err.field == field and ("method.%s:" % field) in str(err)
                elif kind == 1:
                    obj, field = _bad_scenario(rng)
                    try:
                        normalize(obj)
                        err = None
                    except ScenarioError as e:
                        err = e
                    named = err is not None and str(err).startswith(field)
                elif kind == 2:
                    cfg, field = _bad_config(rng)
                    with open(path, "w") as f:
                        json.dump(cfg, f)
                    try:
                        S.choices(P.load_config(path))
                        err = None
                    except ValueError as e:          # plan.ConfigError, methods.MethodError
                        err = e
                    named = err is not None and field.split(".")[-1] in str(err) and (
                        not field.startswith("method.") or "method." + field.split(".", 1)[1] in str(err)) \
                        if field else err is not None
                else:
                    stats["config_valid_cases"] += 1
                    mv = _valid_method(rng)
                    try:
                        methods.validate(mv)
                    except methods.MethodError as e:
                        stats["config_valid_rejected"] += 1
                        bad.append({"valid": mv, "error": str(e)})
                    continue
                stats["config_cases"] += 1
                if err is None:
                    stats["config_not_rejected"] += 1
                    bad.append({"kind": kind, "field": field, "accepted": True})
                elif not named:
                    stats["config_field_not_named"] += 1
                    bad.append({"kind": kind, "field": field, "error": str(err)[:160]})
            except Exception as e:              # noqa: BLE001
                stats["config_crashes"] += 1
                bad.append({"kind": kind, "crash": repr(e)[:200]})
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)
    stats["config_examples"] = bad[:5]
    return stats


def _finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)
