"""`ovenctl sim`: the firmware application on the simulated bench, inside the MicroPython VM,
in accelerated time (the model's clock advances; nothing sleeps)."""
import binascii
import json
import os
import sys
import time

from ovenctl import vmrun
from ovenctl.scenario import ScenarioError, load_scenario

SIM_MAIN = os.path.join(vmrun.VM_SCRIPTS, "sim_main.py")
PHASE_LABEL = {"PRECHECK": "checking sensors", "TARE": "taring empty pans", "LOAD": "waiting for cells",
               "INITIAL_WEIGH": "weighing m0",
               "PREHEAT": "heating in air", "PUMPDOWN": "pumping down / leak check",
               "HEATUP": "heating", "SOAK": "soak", "COOLDOWN": "cooling", "VENT": "venting",
               "FINAL_WEIGH": "weighing m1", "LEAK_CHECK": "leak question", "VERDICT": "verdict",
               "DONE": "done", "ABORTED": "ABORTED"}


def add_parser(sub):
    p = sub.add_parser("sim", help="run a whole test on the simulated bench (firmware in the MicroPython VM)",
                       description="Runs the firmware application with the simulated bench inside the "
                                   "MicroPython VM in accelerated time: a blank (empty-pan) run for the "
                                   "load-cell drift, then the test, ending in a verdict. The scenario file "
                                   "is documented in docs/SCENARIO.md.")
    p.add_argument("--scenario", required=True, metavar="FILE", help="scenario JSON file")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of the summary")
    p.add_argument("--log", metavar="PATH", help="write the device's run log to PATH")
    p.add_argument("--progress", type=int, default=None, metavar="SIM_S",
                   help="progress line every SIM_S simulated seconds (default: 1800 on a terminal, off with --json)")
    p.add_argument("--screens", metavar="DIR",
                   help="save the controller's display as PNGs in DIR (created if missing): one per screen "
                        "change (NN-PHASE.png) and the verdict (99-verdict.png)")
    p.add_argument("--key", metavar="FILE",
                   help="seal the run log with this device key file (docs/LOGFORMAT.md §10); created if missing")
    p.set_defaults(func=run)


def simulate(scn, progress_s=0, want_log=False, on_progress=None, screens=False, key=None):
    """Run a normalized scenario; return the result dict (with wall_s and sim_speedup; with
    screens=True also "screens": [{"name", "fb_hex"}], the display's framebuffers) and the log
    bytes (or None)."""
    arg = dict(scn)
    arg["_opts"] = {"progress_s": progress_s, "log": bool(want_log), "screens": bool(screens)}
    if key is not None:
        arg["_opts"]["key_hex"] = bytes(key).hex()
    result = {}
    log_hex = []
    t0 = time.monotonic()

    def on_line(line):
        if line.startswith("@@RESULT "):
            result.update(json.loads(line[9:]))
        elif line.startswith("@@LOG "):
            log_hex.append(line[6:])
        elif line.startswith("@@P "):
            if on_progress:
                on_progress(parse_progress(line))
        elif line:
            sys.stderr.write(line + "\n")

    rc, err = vmrun.stream(SIM_MAIN, on_line, arg=json.dumps(arg), paths=("firmware", "boards"), heap_kb=8192)
    wall = time.monotonic() - t0
    if rc != 0 or not result:
        raise RuntimeError("the firmware stopped with an error in the VM: %s" % err.strip()[-2000:])
    result["wall_s"] = round(wall, 3)
    result["sim_speedup"] = round(result["sim_s"] / wall, 1) if wall > 0 else None
    log = binascii.unhexlify("".join(log_hex)) if log_hex else None
    return result, log


def parse_progress(line):
    parts = line.split(" ")
    return {"mode": "blank" if parts[1] == "1" else "test", "t_s": int(parts[2]), "phase": parts[3],
            "temp_c": int(parts[4]) / 100, "pressure_kpa": int(parts[5]) / 1000,
            "duty_pct": int(parts[6]) / 10000, "soak_s": int(parts[7]),
            "live_loss_pct": [int(x) / 10000 for x in parts[8].split(",") if x]}


def format_progress(p):
    h, m = divmod(p["t_s"] // 60, 60)
    live = " ".join("%.3f%%" % x for x in p["live_loss_pct"]) if p["phase"] in ("SOAK", "COOLDOWN") else "-"
    return "%-5s %3d:%02d  %-26s T %6.2f °C  p %7.2f kPa  heater %5.1f%%  soak %5.2f h  live loss %s" % (
        p["mode"], h, m, PHASE_LABEL.get(p["phase"], p["phase"]), p["temp_c"], p["pressure_kpa"],
        p["duty_pct"], p["soak_s"] / 3600, live)


def screen_box(lines, cols=21):
    """The controller's 128x64 display as text: the first line (the verdict) is drawn big."""
    out = ["  +" + "-" * (cols + 2) + "+"]
    for k, ln in enumerate(lines):
        if k == 0:
            big = " ".join(ln)
            out.append("  | " + big.center(cols) + " |")
            out.append("  | " + ("=" * len(big)).center(cols) + " |")
        else:
            out.append("  | " + ln.ljust(cols) + " |")
    out.append("  +" + "-" * (cols + 2) + "+")
    return out


def summary(res, path):
    out = []
    out.append("scenario %s — method %s, %d cell(s)" % (path, res["method"], len(res["cells"])))
    bl = res.get("blank")
    if bl:
        if bl.get("k_counts_per_c"):
            out.append("blank run: %d s simulated; load-cell zero drift %s counts/°C" % (
                bl["sim_s"], ", ".join("%.2f" % k for k in bl["k_counts_per_c"])))
        else:
            out.append("blank run: %d s simulated; no drift calibration (%s)" % (bl["sim_s"], bl.get("error") or
                                                                                  "faulted"))
    else:
        out.append("blank run: skipped (no drift correction)")
    out.append("phases: " + ", ".join("%s %d–%d s" % (p["name"], p["start_s"], p["end_s"]) for p in res["phases"]))
    out.append("soak: %d s in spec of %d s; max |T − setpoint| after the first 10 min %.2f °C; heat-up %d s, "
               "overshoot %s" % (res["soak_in_spec_s"], res["soak_total_s"], res["soak_temp_max_dev_c"],
                                 res["heatup_s"], "%.2f °C" % res["heatup_overshoot_c"]
                                 if res["heatup_overshoot_c"] is not None else "-"))
    if res["faults"]:
        out.append("faults: " + ", ".join("%s at %d s" % (f["name"], f["t_s"]) for f in res["faults"]))
    else:
        out.append("faults: none")
    for i, c in enumerate(res["cells"]):
        if c["loss_ppm"] is None:
            out.append("cell %d: %s (no result)   true loss %.0f ppm" % (i + 1, c["verdict"], c["true_loss_ppm"]))
        else:
            out.append("cell %d: %-12s loss %.2f %% (%d ppm)  U %d ppm  leak %s   true loss %.0f ppm" % (
                i + 1, c["verdict"], c["loss_pct_x100"] / 100, c["loss_ppm"], c["u_ppm"],
                "yes" if c["leak_visible"] else "no", c["true_loss_ppm"]))
    out.append("VERDICT: %s" % res["verdict"])
    if res.get("screen"):
        out.append("")
        out.append("controller display:")
        out.extend(screen_box(res["screen"]))
    out.append("simulated %.0f s in %.1f s wall (%.0f×)" % (res["sim_s"], res["wall_s"], res["sim_speedup"] or 0))
    return "\n".join(out)


def run(args):
    from ovenctl.cli import UserError
    try:
        scn = load_scenario(args.scenario)
    except ScenarioError as e:
        raise UserError("%s: %s" % (args.scenario, e))
    progress = args.progress
    if progress is None:
        progress = 0 if args.json else 1800
    if progress < 0:
        raise UserError("--progress must be >= 0")
    if args.log:
        d = os.path.dirname(os.path.abspath(args.log))
        if not os.path.isdir(d):
            raise UserError("--log: directory %s does not exist" % d)
    if args.screens:
        try:
            os.makedirs(args.screens, exist_ok=True)
        except OSError as e:
            raise UserError("--screens: cannot create %s: %s" % (args.screens, e))
    key = None
    if args.key:
        from ovenctl import keyfile
        key, created = keyfile.load_or_create(args.key)
        if created:
            print("new device key %s written to %s" % (keyfile.key_id(key), args.key), file=sys.stderr)
    tty = sys.stderr.isatty()

    def on_progress(p):
        sys.stderr.write(("\r" if tty else "") + format_progress(p) + ("" if tty else "\n"))
        sys.stderr.flush()

    try:
        res, log = simulate(scn, progress_s=progress, want_log=bool(args.log), on_progress=on_progress,
                            screens=bool(args.screens), key=key)
    except vmrun.VMUnavailable as e:
        raise UserError(str(e))
    except RuntimeError as e:
        raise UserError(str(e), code=1)
    if tty and progress:
        sys.stderr.write("\n")
    if args.log and log is not None:
        tmp = args.log + ".part"
        with open(tmp, "wb") as f:
            f.write(log)
        os.replace(tmp, args.log)
    saved = []
    if args.screens:
        from ovenctl import screens
        saved = screens.save_screens(res.get("screens", []), args.screens)
    if args.json:
        print(json.dumps(res))
    else:
        print(summary(res, args.scenario))
        if args.screens:
            print("display: %d screens saved in %s" % (len(saved), args.screens))
        if args.log and log is not None:
            if key is not None:
                from ovenctl import keyfile
                print("run log: %s (%d bytes, sealed by device key %s; check it with `ovenctl verify --key %s %s`)"
                      % (args.log, len(log), keyfile.key_id(key), args.key, args.log))
            else:
                print("run log: %s (%d bytes, not sealed: no --key)" % (args.log, len(log)))
    return 0
