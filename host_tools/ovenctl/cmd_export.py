"""`ovenctl export LOG --csv OUT.csv | --json OUT.json`: a run log as a spreadsheet-ready CSV (one row
per 1 Hz sample, units in the column names) or as one JSON document (header, samples, events,
weighings, verdict). `-` writes to stdout. A damaged but readable log is exported with a warning."""
import csv
import hashlib
import json
import os
import sys

from ovenctl import verify
from ovenctl.logfile import LogError

EXPORT_FORMAT = "ovenctl-export/1"


def add_parser(sub):
    p = sub.add_parser("export", help="export a run log as CSV (1 Hz samples) or JSON (everything)",
                       description="CSV: one row per 1 Hz sample, plain comma-separated with a header row and "
                                   "'.' decimals: t_s, phase, phase_name, temp_c, lc_temp_c, pressure_kpa, "
                                   "heater_duty_pct, flags, and per cell N cellN_raw_counts (HX711 counts, empty "
                                   "when missing) and cellN_mass_g (raw counts minus the tare weighing's mean, "
                                   "divided by the header's counts_per_g; not drift- or buoyancy-corrected). "
                                   "JSON: the header, samples (the log's integer fields), events, weighings "
                                   "(with mean, sd and mass), the verdict record and the reader's problems. "
                                   "'-' writes to stdout.")
    p.add_argument("log", metavar="LOG", help="run log file")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--csv", metavar="OUT", help="write CSV to OUT ('-' = stdout)")
    g.add_argument("--json", metavar="OUT", help="write JSON to OUT ('-' = stdout)")
    p.set_defaults(func=run)


def load(path, command):
    """read_log for export/report: LogError -> UserError (exit 2); damage -> warning on stderr."""
    from ovenctl.cli import UserError
    try:
        log = verify.read_log_file(path)
    except LogError as e:
        raise UserError("%s: %s" % (path, e), code=2)
    warn_damage(log, path, command)
    return log


def warn_damage(log, path, command):
    issues = list(log.problems)
    if not log.complete:
        issues.append("no END record (the log is incomplete)")
    if issues:
        print("ovenctl %s: warning: %s is damaged or incomplete (%d problem%s); first: %s"
              % (command, path, len(issues), "" if len(issues) == 1 else "s", issues[0]), file=sys.stderr)
    return issues


def tare_means(log):
    """Per cell: the mean of the tare weighing's raw samples (float counts) or None."""
    wm = verify.weighing_map(log)
    out = []
    for c in range(log.n_cells):
        ws = wm.get((1, c))
        m = verify.weigh_mean(ws[0]) if ws else None
        out.append(float(m) if m is not None else None)
    return out


def csv_columns(n_cells):
    cols = ["t_s", "phase", "phase_name", "temp_c", "lc_temp_c", "pressure_kpa", "heater_duty_pct", "flags"]
    for i in range(n_cells):
        cols += ["cell%d_raw_counts" % (i + 1), "cell%d_mass_g" % (i + 1)]
    return cols


def csv_rows(log):
    cpg = verify.counts_per_g(log.header)
    tares = tare_means(log)
    for s in log.samples:
        row = [s["t_s"], s["phase"], verify.phase_name(s["phase"]), "%.2f" % (s["temp_c_x100"] / 100),
               "%.2f" % (s["lc_temp_c_x100"] / 100), "%.3f" % (s["pressure_pa"] / 1000),
               "%.1f" % (s["duty_permille"] / 10), s["flags"]]
        for i in range(log.n_cells):
            x = s["raw"][i] if i < len(s["raw"]) else None
            row.append("" if x is None else x)
            row.append("" if (x is None or cpg is None or tares[i] is None) else "%.5f" % ((x - tares[i]) / cpg))
        yield row


def mass_warnings(log, command):
    cpg = verify.counts_per_g(log.header)
    if cpg is None:
        print("ovenctl %s: warning: the header has no valid calibration.counts_per_g: no masses in g" % command,
              file=sys.stderr)
    for i, t in enumerate(tare_means(log)):
        if t is None:
            print("ovenctl %s: warning: no tare weighing for cell %d: no masses in g for it" % (command, i + 1),
                  file=sys.stderr)


def json_doc(log, path, data_sha256=None):
    cpg = verify.counts_per_g(log.header)
    tares = tare_means(log)
    weighings = []
    for w in log.weighings:
        m = verify.weigh_mean(w)
        sd = verify.weigh_sd(w)
        t = tares[w["cell"]] if 0 <= w["cell"] < len(tares) else None
        d = {k: w[k] for k in ("seq", "offset", "cell", "kind", "kind_name", "t_ms", "lc_temp_c_x100", "rejected", "n")}
        d["mean_counts"] = float(m) if m is not None else None
        d["sd_counts"] = sd
        d["mass_g"] = (float(m) - t) / cpg if (m is not None and t is not None and cpg) else None
        d["samples"] = w["samples"]
        weighings.append(d)
    events = [dict(e, name=verify.event_name(e["code"]),
                   phase_name=verify.phase_name(e["a"]) if e["code"] == verify.E_PHASE else None) for e in log.events]
    samples = [{"t_s": s["t_s"], "phase": s["phase"], "flags": s["flags"], "temp_c_x100": s["temp_c_x100"],
                "lc_temp_c_x100": s["lc_temp_c_x100"], "pressure_pa": s["pressure_pa"],
                "duty_permille": s["duty_permille"], "raw_counts": s["raw"]} for s in log.samples]
    return {"format": EXPORT_FORMAT,
            "source": {"file": os.path.basename(path), "size_bytes": log.size, "sha256": data_sha256,
                       "complete": log.complete, "problems": log.problems,
                       "records": len(log.records)},
            "header": log.header,
            "units": {"t_s": "s since run start", "temp_c_x100": "0.01 degC", "lc_temp_c_x100": "0.01 degC",
                      "pressure_pa": "Pa (absolute)", "duty_permille": "0.1 % heater duty",
                      "raw_counts": "HX711 counts per cell, null = missing", "t_ms": "ms since run start",
                      "mass_g": "g, (mean - tare mean) / counts_per_g"},
            "phase_names": list(verify.PHASE_NAMES),
            "samples": samples, "events": events, "weighings": weighings,
            "verdict": log.verdict, "end": log.end}


def _open_out(path):
    from ovenctl.cli import UserError
    if path == "-":
        return sys.stdout, False
    if os.path.isdir(path):
        raise UserError("%s is a directory" % path, code=2)
    try:
        return open(path + ".part", "w", encoding="utf-8", newline=""), True
    except OSError as e:
        raise UserError("cannot write %s: %s" % (path, e.strerror or e), code=2)


def _sha256(path):
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def run(args):
    from ovenctl.cli import UserError
    log = load(args.log, "export")
    out_path = args.csv if args.csv is not None else args.json
    f, is_file = _open_out(out_path)
    try:
        if args.csv is not None:
            mass_warnings(log, "export")
            w = csv.writer(f, lineterminator="\n")
            w.writerow(csv_columns(log.n_cells))
            w.writerows(csv_rows(log))
        else:
            json.dump(json_doc(log, args.log, _sha256(args.log)), f, indent=None, separators=(",", ":"))
            f.write("\n")
        f.flush()
    except BrokenPipeError:
        # a reader such as `head` closed stdout: stop quietly
        verify.quiet_broken_pipe()
        return 1
    except OSError as e:
        if is_file:
            f.close()
            os.unlink(out_path + ".part")
        raise UserError("cannot write %s: %s" % (out_path, e.strerror or e), code=2)
    if is_file:
        f.close()
        os.replace(out_path + ".part", out_path)
    return 0
