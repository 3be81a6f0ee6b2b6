"""`ovenctl pull`: copy run logs from the device, verified and resumable."""
import sys

from ovenctl.protocol import valid_run_id
from ovenctl.pull import Progress, pull
from ovenctl.transport import DeviceError, LinkError


def add_parser(sub):
    p = sub.add_parser("pull", help="copy run logs from the device (verified, resumable)",
                       description="Copies run logs (/runs/<run>.log) from the device on PORT into DIR. During "
                                   "a test it uses the run protocol (the device serves one chunk per control "
                                   "tick: the test is never delayed); when the device is idle it uses a fast "
                                   "raw-REPL transfer. Every chunk carries a CRC-32 and the whole file is "
                                   "checked against a sha256 computed on the device. An interrupted pull "
                                   "leaves DIR/<run>.log.part with a sidecar .part.json holding the verified "
                                   "offset; pulling again resumes there. Nothing is deleted on the device "
                                   "unless --delete-after is given (and then only after a verified copy, "
                                   "and only when the device is idle).")
    p.add_argument("--port", required=True, metavar="PORT", help="serial port (see `ovenctl ports`)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--run", metavar="ID", help="run ID to copy (default: the latest run)")
    g.add_argument("--all", action="store_true", help="copy every run log on the device")
    p.add_argument("--out", required=True, metavar="DIR", help="destination directory (created if missing)")
    p.add_argument("--follow", action="store_true",
                   help="for the running test's log: keep copying until the test ends and the log is complete")
    p.add_argument("--delete-after", action="store_true",
                   help="delete each log on the device after its copy was verified (idle device only)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)")
    p.add_argument("--json", action="store_true", help="print one JSON array of results")
    p.epilog = ("exit status: 0 every log copied and verified, 1 error (partial copies are kept), "
                "2 usage, 3 a copy is partial because its test is still running")
    p.set_defaults(func=run)


def run(args):
    import json
    from ovenctl.cli import UserError
    prog = Progress(sys.stderr.isatty() and not args.no_progress and not args.json)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    if args.run is not None and not valid_run_id(args.run):
        raise UserError("--run: %r is not a run ID (letters, digits, '_', '.', '-')" % args.run)
    try:
        results = pull(args.port, args.out, run=args.run, all_runs=args.all, delete_after=args.delete_after,
                       follow=args.follow, progress=prog, log=log)
    except DeviceError as e:
        raise UserError(str(e), code=1)
    except LinkError as e:
        raise UserError("%s (a partial copy, if any, is kept: pull again to resume)" % e, code=1)
    except OSError as e:
        raise UserError("cannot write to %s: %s" % (args.out, e), code=1)
    rc = 0 if all(r["state"] != "partial" for r in results) else 3
    if args.json:
        print(json.dumps(results))
        return rc
    for r in results:
        extra = []
        if r["resumed_from"]:
            extra.append("resumed at %d" % r["resumed_from"])
        if r.get("deleted"):
            extra.append("deleted on the device")
        print("%-16s %-10s %9d bytes  sha256 %s  %s%s" % (r["run"], r["state"], r["size"], r["sha256"], r["path"],
                                                          ("  (" + ", ".join(extra) + ")") if extra else ""))
    return rc
