# `ovenctl sim` inside the MicroPython VM: the firmware application drives the simulated bench.
# hostargs.arg is the normalized scenario (JSON). Output: "@@P ..." progress lines, one
# "@@RESULT {json}" line, and with a log requested "@@LOG <hex>" chunks of the run log.
import binascii
import json
import hostargs

import app
import methods
import runlog
import verdict as V
import codes as C
from sim.model import Bench
from sim.board import SimBoard

scn = json.loads(hostargs.arg)
opts = scn.pop("_opts", {})
PROGRESS_S = opts.get("progress_s", 0)

_FAULT_NAMES = {}
for _k in dir(C):
    if _k.startswith("F_"):
        _FAULT_NAMES[getattr(C, _k)] = _k[2:]


def _progress(c):
    t = c.t_s()
    if PROGRESS_S and t % PROGRESS_S == 0:
        live = ",".join([str(c.live_ppm[i]) for i in range(c.n)])
        print("@@P %d %d %s %d %d %d %d %s" % (c.mode, t, app.PHASE_NAMES[c.phase], c.temp_c_x100,
                                              c.pressure_pa, c.duty_ppm, c.soak_in_spec_ms // 1000, live))


def _phases(c):
    return [{"name": p[0], "start_s": p[1], "end_s": p[2]} for p in c.phases]


def _faults(c, t_off):
    return [{"code": f[0], "name": _FAULT_NAMES.get(f[0], str(f[0])), "t_s": f[1] + t_off} for f in c.faults]


class MemFile:
    # The device's log file, kept in memory and handed to the host at the end of the run.
    def __init__(self):
        self.data = bytearray()

    def write(self, buf, off=0, n=-1):
        if n < 0:
            n = len(buf) - off
        self.data.extend(memoryview(buf)[off:off + n])
        return n

    def flush(self):
        pass

    def close(self):
        pass


def main():
    method = methods.validate(scn["method"])
    bench = Bench(scn)
    board = SimBoard(bench)
    out = {"method": method["name"], "blank": None}
    blank_fit = None
    if scn.get("blank_run", True):
        bench.load_cells(0)
        cb = app.Controller(board, method, mode=app.MODE_BLANK, counts_per_g=board.counts_per_g)
        cb.live_tick = _progress
        cb.run()
        blank_fit = cb.blank_fit
        out["blank"] = {"phases": _phases(cb), "faults": _faults(cb, 0), "error": cb.blank_error,
                        "sim_s": cb.t_s(),
                        "k_counts_per_c": [round(ch["k_num"] * 100 / ch["k_den"], 3) for ch in blank_fit] if blank_fit else None}
    bench.load_cells(0)
    t_start_s = bench.t_ms // 1000
    # ambient drifts from ambient_c to ambient_end_c over the test's expected duration
    bench.set_ambient_ramp(t_start_s, t_start_s + 30000, scn["ambient_c"], scn["ambient_end_c"])
    for f in scn.get("faults", []):
        bench.add_fault(f["kind"], t_start_s + f["at_s"], f.get("duration_s"), f.get("channel"))
    log = None
    mem = None
    if opts.get("log"):
        mem = MemFile()
        log = runlog.RunLog(bench.n_cells)
        header = {"run_id": "sim-%d" % scn["seed"], "fw_version": app.FW_VERSION, "board": "sim",
                  "mode": "test", "method": method, "cells": ["cell-%d" % (i + 1) for i in range(bench.n_cells)],
                  "calibration": {"counts_per_g": board.counts_per_g, "span": "nominal", "blank": blank_fit},
                  "scenario_seed": scn["seed"]}
        log.open("run.log", header, opener=lambda p, m: mem)
    c = app.Controller(board, method, mode=app.MODE_TEST, blank=blank_fit, log=log, counts_per_g=board.counts_per_g)
    c.live_tick = _progress
    c.run()
    fv = c.final_verdict()
    cells = []
    for i in range(c.n):
        r = c.results[i]
        cells.append({"verdict": V.VERDICT_NAMES[r.verdict] if r is not None else V.VERDICT_NAMES[fv],
                      "loss_ppm": r.loss_ppm if r is not None else None,
                      "u_ppm": r.u_ppm if r is not None else None,
                      "loss_pct_x100": r.loss_pct_x100 if r is not None else None,
                      "flags": r.flags if r is not None else 0,
                      "true_loss_ppm": bench.true_loss_ppm(i),
                      "leak_visible": c.leak[i], "early_fail": c.early_fail[i],
                      "m0_g": bench.initial_mass_g(i)})
    out.update({
        "verdict": V.VERDICT_NAMES[fv],
        "cells": cells,
        "soak_in_spec_s": c.soak_in_spec_ms // 1000,
        "soak_total_s": c.soak_total_ms // 1000,
        "soak_temp_max_dev_c": c.soak_dev_max_c_x100 / 100,
        "heatup_overshoot_c": c.overshoot_c_x100 / 100 if c.overshoot_c_x100 > -100000 else None,
        "heatup_s": c.heatup_s,
        "faults": _faults(c, 0),
        "events": c.events,
        "phases": _phases(c),
        "test_sim_s": c.t_s(),
        "sim_s": bench.t_ms / 1000,
        "safe_calls_s": [(t // 1000) - t_start_s for t in board.safe_calls],
        "operator_answers": board.operator.answers,
    })
    print("@@RESULT " + json.dumps(out))
    if mem is not None:
        data = mem.data
        for k in range(0, len(data), 4096):
            print("@@LOG " + binascii.hexlify(data[k:k + 4096]).decode())


main()
