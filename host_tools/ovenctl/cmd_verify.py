"""`ovenctl verify LOG`: recompute every cell's loss, U and verdict from the raw records of a run log,
independently of the firmware, check the run's consistency and compare with the device's VERDICT
record field by field. Exit 0 consistent, 1 damaged or inconsistent, 2 unreadable (see verify.py)."""
import json
import sys

from ovenctl import keyfile, sealcheck, verify
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
    p.add_argument("--key", metavar="FILE",
                   help="the device key file (from `ovenctl deploy --key`): also check the log's seal, i.e. "
                        "that no record was changed, removed, inserted or reordered (exit 1 naming the "
                        "first bad record)")
    p.set_defaults(func=run)


def run(args):
    from ovenctl.cli import UserError
    key = keyfile.load_key(args.key) if args.key else None
    try:
        log = verify.read_log_file(args.log)
        res = verify.verify_log(log, path=args.log)
        sealres = None
        if key is not None:
            with open(args.log, "rb") as f:
                sealres = sealcheck.check(f.read(), log, key)
    except LogError as e:
        if args.json:
            print(json.dumps({"file": args.log, "status": "unreadable", "error": str(e), "exit_code": 2}))
        raise UserError("%s: %s" % (args.log, e), code=2)
    except OSError as e:
        raise UserError("%s: %s" % (args.log, e.strerror or e), code=2)
    if sealres is not None:
        res["seal"] = sealres
        if sealres["status"] != "ok" and res["exit_code"] == 0:
            res["exit_code"] = 1
    try:
        if args.json:
            print(json.dumps(res, indent=1))
        else:
            text = verify.format_report(res).split("\n")
            last = text.pop() if text and text[-1].startswith("RESULT:") else None
            text.append(sealcheck.format_result(sealres) if sealres is not None else _seal_hint(log))
            if sealres is not None and sealres["status"] != "ok" and res.get("status") == "consistent":
                last = ("RESULT: SEAL %s - the records cannot be proved to be the device's, unaltered (exit 1)"
                        % ("BROKEN" if sealres["status"] == "bad" else "MISSING"))
            if last:
                text.append(last)
            print("\n".join(x for x in text if x))
        sys.stdout.flush()
    except BrokenPipeError:
        verify.quiet_broken_pipe()
    return res["exit_code"]


def _seal_hint(log):
    lg = log.header.get("log") if isinstance(log.header, dict) else None
    if isinstance(lg, dict) and lg.get("seal") == sealcheck.ALG:
        return "seal: not checked (sealed by device key %s: add --key FILE to check it)" % lg.get("key_id")
    return "seal: none (a log written without a device key cannot be proved unaltered)"
