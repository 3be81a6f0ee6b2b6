"""`ovenctl status`: what the device is doing (run protocol during a test; idle otherwise)."""
import json

from ovenctl.protocol import RunLink, probe
from ovenctl.rawrepl import RawRepl
from ovenctl.transport import LinkError, Port


def add_parser(sub):
    p = sub.add_parser("status", help="show the device's test status (phase, temperature, pressure, time left, live loss)",
                       description="Asks the device on PORT for its status. During a test the device answers "
                                   "the run protocol (docs/PROTOCOL.md): phase, oven temperature, pressure, soak "
                                   "time left and the live in-oven loss estimate per cell. An idle device "
                                   "(MicroPython REPL) is reported as idle, with the run logs it holds.")
    p.add_argument("--port", required=True, metavar="PORT", help="serial port (see `ovenctl ports`)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _hms(s):
    s = int(s)
    return "%d:%02d:%02d" % (s // 3600, s % 3600 // 60, s % 60)


def get_status(port_path):
    with Port(port_path) as port:
        mode, info = probe(port)
        if mode == "run":
            st = RunLink(port).status()
            st["device"] = info
            return st
        raw = RawRepl(port)
        raw.enter()
        try:
            runs = raw.list_runs()
        finally:
            raw.exit()
        return {"state": "idle", "runs": runs}


def format_status(port_path, st):
    if st.get("state") == "idle":
        runs = st.get("runs", [])
        lines = ["%s: idle (MicroPython REPL, no test running)" % port_path,
                 "run logs on the device: %d%s" % (len(runs), (" (latest %s, %d bytes)" % (runs[-1]["run"], runs[-1]["size"]))
                                                   if runs else "")]
        return "\n".join(lines)
    dev = st.get("device", {})
    head = "%s: %s test %s (%s%s, method %s)" % (
        port_path, "RUNNING" if st.get("state") == "run" else "FINISHED", st.get("run"), st.get("stage"),
        " run" if st.get("stage") == "blank" else "", st.get("method"))
    lines = [head]
    if dev.get("fw"):
        lines[0] += " — firmware %s on %s" % (dev.get("fw"), dev.get("board"))
    lines.append("phase        %s (test time %s)" % (st.get("phase"), _hms(st.get("t_s", 0))))
    lines.append("temperature  %.2f °C   heater %.1f %%" % (st.get("temp_c_x100", 0) / 100, st.get("duty_ppm", 0) / 10000))
    lines.append("pressure     %.2f kPa" % (st.get("pressure_pa", 0) / 1000))
    lines.append("soak         %s in spec of %s; time left %s" % (_hms(st.get("soak_in_spec_s", 0)),
                                                                   _hms(st.get("soak_s", 0)), _hms(st.get("soak_left_s", 0))))
    if st.get("stage") == "test":
        live = st.get("live_ppm", [])
        ef = st.get("early_fail", [])
        cells = "   ".join("cell %d: %.3f %%%s" % (i + 1, v / 10000, " (early FAIL)" if i < len(ef) and ef[i] else "")
                           for i, v in enumerate(live))
        lines.append("live loss    %s%s" % (cells, "" if st.get("phase") in ("SOAK", "COOLDOWN") else
                                            "   (estimate valid during the soak)"))
    if st.get("fault"):
        lines.append("FAULT        code %d" % st["fault"])
    if st.get("verdict"):
        lines.append("verdict      %s" % st["verdict"])
    return "\n".join(lines)


def run(args):
    from ovenctl.cli import UserError
    try:
        st = get_status(args.port)
    except LinkError as e:
        raise UserError(str(e), code=1)
    if args.json:
        print(json.dumps(st))
    else:
        print(format_status(args.port, st))
    return 0
