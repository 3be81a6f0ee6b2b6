"""`ovenctl prepare`: the records of the next test, entered from the host before START: operator
ID, cell serial numbers and the host's date and time (for a board without a clock). Written to the
idle device as /start.json, which the firmware reads and removes at the next START
(firmware/oven/run/plan.py load_start); the log header's "records" say where each came from."""
import json
import time

from ovenctl.errors import UserError

_WRITE = ("import json,os,time\n"
          "d=json.loads(%r)\n"
          "d['ticks_ms']=time.ticks_ms()\n"
          "f=open('/start.json.tmp','w');f.write(json.dumps(d));f.close()\n"
          "try:\n os.remove('/start.json')\nexcept OSError:\n pass\n"
          "os.rename('/start.json.tmp','/start.json')\n"
          "print('@@OK',d['ticks_ms'])\n")


def add_parser(sub):
    p = sub.add_parser("prepare", help="enter the operator, cell serial numbers and the date/time for the next START",
                       description="Writes /start.json on the idle device: the operator ID, the cell serial numbers "
                                   "(one per load-cell channel, in channel order) and this computer's clock (with "
                                   "the device's tick count, so the device knows the time at START without a clock "
                                   "of its own). The next START on the device uses and removes it; then the "
                                   "device is soft-reset back to its idle screen. Without it the operator comes "
                                   "from /config.json and the cells are cell-1..N (the header records the source).")
    p.add_argument("--port", required=True, metavar="PORT", help="the idle device's serial port")
    p.add_argument("--operator", required=True, metavar="ID", help="operator ID (1..64 characters)")
    p.add_argument("--cells", metavar="SN,SN,...", help="cell serial numbers, comma separated, in channel order")
    p.add_argument("--no-reset", action="store_true", help="leave the device at the REPL")
    p.epilog = "exit status: 0 written, 1 device error or a test is running, 2 bad input"
    p.set_defaults(func=run)


def start_data(operator, cells, now_s):
    if not operator or len(operator) > 64:
        raise UserError("--operator: must be 1..64 characters")
    d = {"operator": operator, "host_time_s": int(now_s)}
    if cells is not None:
        sns = [c.strip() for c in cells.split(",")]
        if [c for c in sns if not c or len(c) > 64]:
            raise UserError("--cells: each serial number must be 1..64 characters (comma separated), got %r" % cells)
        d["cells"] = sns
    return d


def run(args):
    from ovenctl import deploy as D
    from ovenctl.rawrepl import RawRepl
    from ovenctl.transport import LinkError, Port
    d = start_data(args.operator, args.cells, time.time())
    try:
        D.refuse_if_running(args.port)
        with Port(args.port) as port:
            raw = RawRepl(port)
            raw.enter()
            try:
                d["host_time_s"] = int(time.time())
                out = raw.exec(_WRITE % json.dumps(d)).decode("utf-8", "replace")
            finally:
                raw.exit()
        if "@@OK" not in out:
            raise UserError("%s: the device did not confirm /start.json: %s" % (args.port, out.strip()[-200:]), code=1)
        if not args.no_reset:
            D.soft_reset(args.port)
    except D.DeployError as e:
        raise UserError(str(e).replace("deploy refused", "prepare refused"), code=1)
    except (LinkError, OSError) as e:
        raise UserError("%s: %s" % (args.port, e), code=1)
    print("next START on %s: operator %s%s, host time %s" % (
        args.port, d["operator"], ", cells " + ", ".join(d["cells"]) if "cells" in d else "",
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(d["host_time_s"]))))
    return 0
