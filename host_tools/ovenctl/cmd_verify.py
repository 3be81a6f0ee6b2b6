"""`ovenctl verify LOG`: recompute every cell's loss, U and verdict from the raw records of a run log,
independently of the firmware, check the run's consistency and compare with the device's VERDICT
record field by field. Exit 0 consistent, 1 damaged or inconsistent, 2 unreadable (see verify.py)."""
import json
import sys

from ovenctl import verify
from ovenctl.logfile import LogError


def add_parser(sub):
    p = sub.add_parser("verify", help="recompute a run log's verdict independently and check the log",
                       description="Recomputes every cell's loss, expanded uncertainty U and verdict from the "
                                   "log's raw WEIGH records (exact rational arithmetic, independent of the "
                                   "firmware code), checks the run's consistency (soak time from the samples, "
                                   "faults, leak answers, phases) and compares with the device's VERDICT record "
                                   "field by field. Exit status: 0 consistent; 1 damaged (CRC mismatch, lost or "
                                   "missing records, torn tail, no END) or inconsistent; 2 unreadable.")
    p.add_argument("log", metavar="LOG", help="run log file")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    p.set_defaults(func=run)


def run(args):
    from ovenctl.cli import UserError
    try:
        res = verify.verify_path(args.log)
    except LogError as e:
        if args.json:
            print(json.dumps({"file": args.log, "status": "unreadable", "error": str(e), "exit_code": 2}))
        raise UserError("%s: %s" % (args.log, e), code=2)
    try:
        if args.json:
            print(json.dumps(res, indent=1))
        else:
            print(verify.format_report(res))
        sys.stdout.flush()
    except BrokenPipeError:
        verify.quiet_broken_pipe()
    return res["exit_code"]
