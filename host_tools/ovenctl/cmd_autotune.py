"""`ovenctl autotune`: relay autotune of the heater PID on the real oven (or the simulated one),
with the heater safety checks active; the gains are stored in /calib/pid.json and used from the
next START. One that does not converge is refused and changes nothing."""
import json
import sys
import time

from ovenctl.errors import UserError


def add_parser(sub):
    p = sub.add_parser("autotune", help="autotune the heater PID on the oven (relay method), store the gains",
                       description="Runs firmware/oven/control/autotune.py's relay autotune (Astrom-Hagglund, Tyreus-Luyben "
                                   "gains) on the device on PORT (idle; the oven empty and closed: it heats to the "
                                   "setpoint and oscillates around it, up to 3 h) or on the simulated oven (--sim). "
                                   "The heater safety checks (over-temperature, runaway, heating gain, sensor "
                                   "faults) stay active; the heater is off at the end. Stored gains are used by "
                                   "every run from the next START and recorded in the audit trail and the log header.")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--port", metavar="PORT", help="the idle device on this serial port")
    g.add_argument("--sim", metavar="SCENARIO", help="the simulated oven of this scenario file")
    p.add_argument("--cal-dir", default="build/sim-calib", metavar="DIR",
                   help="with --sim: the directory standing for the device's /calib (default build/sim-calib)")
    p.add_argument("--setpoint", type=float, default=120.0, metavar="DEGC", help="setpoint, °C (default 120)")
    p.add_argument("--cycles", type=int, default=4, metavar="N", help="oscillation cycles to measure (default 4)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.epilog = "exit status: 0 gains stored, 1 refused (did not converge, a safety fault, device error), 2 bad input"
    p.set_defaults(func=run)


def run(args):
    from ovenctl import caltarget as T
    if not 30.0 <= args.setpoint <= 130.0:
        raise UserError("--setpoint: must be 30 .. 130 °C, got %g" % args.setpoint)
    if not 1 <= args.cycles <= 100:
        raise UserError("--cycles: must be 1 .. 100, got %d" % args.cycles)
    t = T.target(args)
    out = {"target": t.where}
    try:
        out["pid"] = t.autotune(int(round(args.setpoint * 100)), args.cycles, int(time.time()))
    except T.Refused as e:
        out["refused"] = str(e)
        print(json.dumps(out) if args.json else "refused: %s" % e, file=sys.stdout if args.json else sys.stderr)
        return 1
    pid = out["pid"]
    print(json.dumps(out) if args.json else
          "autotune on the %s: Ku %d ppm/°C, Tu %.0f s -> kp %d, ki %d, kd %d stored (used from the next START)"
          % (t.where, pid["ku"], pid["tu_ms"] / 1000, pid["kp"], pid["ki"], pid["kd"]))
    return 0
