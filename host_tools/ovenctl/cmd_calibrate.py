"""`ovenctl calibrate`: the calibration store of the device (/calib) or of the simulated bench:
span from reference masses, check weight (set it, or run the test), thermocouple offsets, the load
cells' datasheet figures, equipment IDs, and show. Every change is made by the firmware's own code
(firmware/oven/store/calstore.py) and goes to the device's audit trail; a refused calibration stores nothing."""
import json
import sys
import time

from ovenctl.errors import UserError

EPILOG = ("exit status: 0 done, 1 refused by the procedure (nothing stored), a failed check weight, or a "
          "device error, 2 bad input")


def _common(p):
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--port", metavar="PORT", help="the idle device on this serial port (see `ovenctl ports`)")
    g.add_argument("--sim", metavar="SCENARIO", help="the simulated bench of this scenario file (docs/SCENARIO.md; "
                                                     "its \"calibration\" block says what really goes on the pan)")
    p.add_argument("--cal-dir", default="build/sim-calib", metavar="DIR",
                   help="with --sim: the directory standing for the device's /calib (default build/sim-calib)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--yes", action="store_true",
                   help="with --port: do not wait for Enter before each weighing (the masses are already placed)")
    p.epilog = EPILOG


def add_parser(sub):
    p = sub.add_parser("calibrate", help="calibrate: span, check weight, thermocouple offsets, datasheet, equipment; show",
                       description="Runs the firmware's calibration procedures (firmware/oven/store/calstore.py) on the device "
                                   "on PORT (idle, at the REPL) or on the simulated bench (--sim). What the device's "
                                   "buttons reach: the check-weight test and the span calibration with the reference "
                                   "masses of /config.json (YES at the idle screen); everything else is set from here.")
    s = p.add_subparsers(dest="what", metavar="WHAT")
    s.required = True
    sp = s.add_parser("span", help="span of one channel from one or two reference masses (empty pan first)")
    _common(sp)
    sp.add_argument("--channel", type=int, default=1, metavar="N", help="load-cell channel, 1-based (default 1)")
    sp.add_argument("--ref", type=float, required=True, metavar="G", help="reference mass 1 in g (the span)")
    sp.add_argument("--ref2", type=float, metavar="G", help="reference mass 2 in g (the 2-point linearity check)")
    sp.add_argument("--id", default="", metavar="TEXT", help="reference mass IDs / certificate, for the record")
    ck = s.add_parser("check", help="run the check-weight test (each pan), or set the check weight with --set")
    _common(ck)
    ck.add_argument("--set", type=float, metavar="G", help="store this check weight (g) instead of running the test")
    ck.add_argument("--tol", type=float, metavar="MG", help="with --set: its tolerance in mg")
    ck.add_argument("--id", default="", metavar="TEXT", help="with --set: the check weight's ID")
    tc = s.add_parser("tc-offset", help="thermocouple offset from an ice point or a reference thermometer")
    _common(tc)
    tc.add_argument("--sensor", choices=("chamber", "probe"), required=True, help="which thermocouple")
    tc.add_argument("--reading", type=float, required=True, metavar="DEGC",
                    help="what the controller reads (raw, without an offset)")
    g = tc.add_mutually_exclusive_group(required=True)
    g.add_argument("--ice-point", action="store_true", help="the thermocouple is in an ice bath (0 °C)")
    g.add_argument("--ref", type=float, metavar="DEGC", help="the reference thermometer's reading")
    ds = s.add_parser("datasheet", help="the load cells' datasheet figures (span TC, creep)")
    _common(ds)
    ds.add_argument("--span-tc", type=int, required=True, metavar="PPM_PER_C", help="span temperature coefficient")
    ds.add_argument("--creep", type=int, required=True, metavar="PPM", help="creep, ppm of load (e.g. 245 = C3 30 min)")
    ds.add_argument("--creep-tau", type=int, required=True, metavar="S", help="creep time constant, s")
    ds.add_argument("--model", default="", metavar="TEXT", help="load-cell model / datasheet reference")
    eq = s.add_parser("equipment", help="equipment IDs and calibration dates from a JSON file")
    _common(eq)
    eq.add_argument("file", metavar="FILE", help='JSON object, e.g. {"controller": "OC-7", "loadcells": '
                                                 '[{"id": "LC-1", "cal_date": "2026-11-02"}], "thermocouples": [...]}')
    sh = s.add_parser("show", help="show the stored calibration (the cal dict the next run uses) and the check history")
    _common(sh)
    p.set_defaults(func=run)


def _ug(g, what):
    if g is None or not (g > 0) or g > 5000:
        raise UserError("%s: must be a mass above 0 and at most 5000 g, got %r" % (what, g))
    return int(round(g * 1e6))


def _c_x100(c, what):
    if c is None or not (-50 <= c <= 300):
        raise UserError("%s: must be -50 .. 300 °C, got %r" % (what, c))
    return int(round(c * 100))


def _asker(args):
    def ask(prompt):
        if args.yes or args.sim:
            print(prompt, file=sys.stderr)
            return True
        try:
            input(prompt + " — then press Enter ")
        except EOFError:
            raise UserError("no answer on stdin (use --yes when the masses are placed beforehand)", code=1)
        return True
    return ask


def run(args):
    from ovenctl import caltarget as T
    when = int(time.time())
    # input checks first: bad input never touches the device
    if args.what == "span":
        if args.channel < 1:
            raise UserError("--channel: must be 1 or more, got %d" % args.channel)
        ref1 = _ug(args.ref, "--ref")
        ref2 = _ug(args.ref2, "--ref2") if args.ref2 is not None else 0
        if ref2 and ref2 == ref1:
            raise UserError("--ref2: must differ from --ref (a linearity check needs two masses)")
    elif args.what == "check" and args.set is not None:
        mass = _ug(args.set, "--set")
        if args.tol is None or not (0 < args.tol <= args.set * 100):
            raise UserError("--tol: the check weight's tolerance in mg, above 0 and at most 10 %% of the mass, got %r"
                            % (args.tol,))
    elif args.what == "check" and args.tol is not None:
        raise UserError("--tol goes with --set")
    elif args.what == "tc-offset":
        reading = _c_x100(args.reading, "--reading")
        ref = 0 if args.ice_point else _c_x100(args.ref, "--ref")
    elif args.what == "datasheet":
        for name, v, hi in (("--span-tc", args.span_tc, 1000), ("--creep", args.creep, 10000),
                            ("--creep-tau", args.creep_tau, 36000)):
            if not 0 <= v <= hi:
                raise UserError("%s: must be 0 .. %d, got %d" % (name, hi, v))
    elif args.what == "equipment":
        try:
            with open(args.file) as f:
                eq = json.load(f)
        except OSError as e:
            raise UserError("%s: %s" % (args.file, e.strerror or e))
        except ValueError as e:
            raise UserError("%s: not valid JSON (%s)" % (args.file, e))
        if not isinstance(eq, dict):
            raise UserError("%s: must be a JSON object" % args.file)
    t = T.target(args)
    out = {"target": t.where, "what": args.what}
    try:
        if args.what == "span":
            n = t.show()["cal"]["channels"]
            if args.channel > len(n):
                raise UserError("--channel: %d, but the board has %d load-cell channel(s)" % (args.channel, len(n)))
            sp = t.span(args.channel - 1, ref1, ref2, _asker(args), args.id, when)
            out["span"] = sp
            text = ("channel %d: span %d counts/g stored (u %d ppm%s)"
                    % (args.channel, sp["counts_per_g"], sp["u_span_ppm"],
                       ", linearity %+.1f mg at %g g" % (sp["lin_dev_ug"] / 1000, sp["lin_ref_ug"] / 1e6)
                       if sp["lin_ref_ug"] else ""))
        elif args.what == "check" and args.set is not None:
            out["check"] = t.store("set_check_weight", mass, int(round(args.tol * 1000)), args.id, when=when)
            text = "check weight %g g ± %g mg stored" % (args.set, args.tol)
        elif args.what == "check":
            r = t.check(_asker(args), when)
            out["check"] = r
            if r.get("ok") is None:
                raise T.Refused(r.get("skipped", "no check weight"))
            text = r["message"]
            if not r["ok"]:
                _emit(args, out, "check weight FAILED: " + text + " (recorded in the history and the audit trail; "
                      "the calibration is unchanged)", sys.stderr)
                return 1
        elif args.what == "tc-offset":
            r = t.store("set_tc_offset", args.sensor, ref, reading, when=when,
                        source="ice point" if args.ice_point else "reference thermometer")
            out["tc_offset"] = r
            text = "%s thermocouple offset %+.2f °C stored" % (args.sensor, r[args.sensor] / 100)
        elif args.what == "datasheet":
            r = t.store("set_loadcell", args.span_tc, args.creep, args.creep_tau, when=when, model=args.model)
            out["loadcell"] = r
            text = "load-cell datasheet stored: span TC %d ppm/°C, creep %d ppm, tau %d s" % (
                args.span_tc, args.creep, args.creep_tau)
        elif args.what == "equipment":
            out["equipment"] = t.store("set_equipment", eq, when=when)
            text = "equipment stored (%s)" % ", ".join(sorted(eq))
        else:
            out.update(t.show())
            text = format_show(out)
    except T.Refused as e:
        out["refused"] = str(e)
        _emit(args, out, "refused: %s" % e, sys.stderr)
        return 1
    _emit(args, out, text, sys.stdout)
    return 0


def _emit(args, out, text, stream):
    if args.json:
        print(json.dumps(out))
    else:
        print(text, file=stream)


def format_show(s):
    cal = s["cal"]
    lines = ["calibration on the %s: source %s" % (s["target"], cal["source"])]
    for i, ch in enumerate(cal["channels"]):
        lines.append("  channel %d: %d counts/g  u %d ppm  linearity %s  span TC %d ppm/°C  creep %d ppm (tau %d s)  %s"
                     % (i + 1, ch["counts_per_g"], ch["u_span_ppm"],
                        "%+.1f mg at %g g" % (ch["lin_dev_ug"] / 1000, ch["lin_ref_ug"] / 1e6) if ch["lin_ref_ug"] else "-",
                        ch["span_tc_ppm_per_c"], ch["creep_ppm"], ch["creep_tau_s"],
                        "measured (%s)" % (ch["cal_id"] or "no id") if ch["when"] is not None else "not measured"))
    c = cal["check"]
    lines.append("  check weight: " + ("%g g ± %g mg, repeatability u %d ug from %d results"
                                       % (c["mass_ug"] / 1e6, c["tol_ug"] / 1000, c["u_rep_ug"], c["n"])
                                       if c else "none stored"))
    h = s.get("history") or []
    if h:
        lines.append("  last checks: " + ", ".join("ch %d %+.1f mg %s" % (e["ch"] + 1, e["dev_ug"] / 1000,
                                                                          "ok" if e["ok"] else "FAILED") for e in h[-5:]))
    tc = cal["tc_offset_c_x100"]
    lines.append("  thermocouple offsets: chamber %+.2f °C, probe %+.2f °C" % (tc["chamber"] / 100, tc["probe"] / 100))
    pid = cal["pid"]
    lines.append("  heater PID: " + ("kp %d ki %d kd %d (autotune)" % (pid["kp"], pid["ki"], pid["kd"]) if pid
                                     else "compiled-in defaults"))
    if s.get("equipment"):
        lines.append("  equipment: " + json.dumps(s["equipment"]))
    return "\n".join(lines)
