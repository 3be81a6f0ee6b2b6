"""`ovenctl report LOG --out FILE.html [--pdf FILE.pdf] [--rated-wh X]`: a self-contained test report
(HTML with embedded PNG plots; optionally the same content as a PDF): run identity, method,
calibration, temperature / pressure / mass-loss plots with phases, excursions and faults, the verdict
block with the `ovenctl verify` result, and with --rated-wh the energy density rated Wh / m0."""
import base64
import datetime
import hashlib
import html
import io
import json
import math
import os
import sys

from ovenctl import __version__, keyfile, sealcheck, verify
from ovenctl.cmd_export import load, tare_means

HYBRID_WH_PER_KG = 400      # reported thresholds (SPEC section 1): hybrid solid-liquid >= 400 Wh/kg
ALL_SOLID_WH_PER_KG = 500   # all-solid-state >= 500 Wh/kg

VERDICT_COLORS = {"PASS": "#1b7a2e", "FAIL": "#b3261e", "INCONCLUSIVE": "#b26a00", "INVALID": "#6a3d9a",
                  "ABORTED": "#5f6368", None: "#5f6368"}
PHASE_COLORS = {"PRECHECK": "#dddddd", "TARE": "#c6dbef", "LOAD": "#e5e5e5", "INITIAL_WEIGH": "#9ecae1",
                "PREHEAT": "#fee6ce", "PUMPDOWN": "#d9d2e9", "HEATUP": "#fdd0a2", "SOAK": "#fff2b3", "COOLDOWN": "#c7e9c0",
                "VENT": "#e0e0e0", "FINAL_WEIGH": "#9ecae1", "LEAK_CHECK": "#f2d7e6", "VERDICT": "#eeeeee",
                "DONE": "#eeeeee", "ABORTED": "#f4b6b6"}


def add_parser(sub):
    p = sub.add_parser("report", help="write a self-contained HTML (and optionally PDF) test report",
                       description="Writes a self-contained HTML report of a run log (plots embedded as PNG, no "
                                   "external resources): run identity, method and calibration, temperature, "
                                   "pressure and mass-loss plots with the phases shaded and excursions/faults "
                                   "marked, the verdict block (loss, U, decision rule, limit, leak answers, "
                                   "verdict per cell and overall) and the `ovenctl verify` result.")
    p.add_argument("log", metavar="LOG", help="run log file")
    p.add_argument("--out", required=True, metavar="FILE.html", help="HTML file to write")
    p.add_argument("--pdf", metavar="FILE.pdf", help="also write the report as a PDF")
    p.add_argument("--rated-wh", metavar="X", help="rated energy of the cell in Wh (one value for every cell, or "
                   "comma-separated per cell): adds the energy density rated Wh / m0 against the 400 Wh/kg "
                   "(hybrid) and 500 Wh/kg (all-solid-state) thresholds")
    p.add_argument("--key", metavar="FILE", help="the device key file: check the log's seal (docs/LOGFORMAT.md "
                   "§10) and show the result; without it a sealed log is shown as sealed, not checked")
    p.set_defaults(func=run)


# ---------------------------------------------------------------- data
def parse_rated(text, n_cells):
    from ovenctl.cli import UserError
    if text is None:
        return None
    parts = [x.strip() for x in str(text).split(",")]
    vals = []
    for x in parts:
        try:
            v = float(x)
        except ValueError:
            raise UserError("--rated-wh: %r is not a number" % x, code=2)
        if not math.isfinite(v) or v <= 0:
            raise UserError("--rated-wh: %r must be a positive number of Wh" % x, code=2)
        vals.append(v)
    if len(vals) == 1:
        return vals * n_cells
    if len(vals) != n_cells:
        raise UserError("--rated-wh: %d values given, the log has %d cells (give one value or one per cell)"
                        % (len(vals), n_cells), code=2)
    return vals


def energy_class(wh_per_kg):
    if wh_per_kg >= ALL_SOLID_WH_PER_KG:
        return "meets the all-solid-state threshold (≥ %d Wh/kg)" % ALL_SOLID_WH_PER_KG
    if wh_per_kg >= HYBRID_WH_PER_KG:
        return ("meets the hybrid solid-liquid threshold (≥ %d Wh/kg), below the all-solid-state %d Wh/kg"
                % (HYBRID_WH_PER_KG, ALL_SOLID_WH_PER_KG))
    return "below both thresholds (hybrid ≥ %d, all-solid-state ≥ %d Wh/kg)" % (HYBRID_WH_PER_KG, ALL_SOLID_WH_PER_KG)


def masses_g(log):
    """Per cell {"m0_g", "m1_g"}: weighing mean minus the tare mean, / counts_per_g (None if unknown)."""
    cpg = verify.counts_per_g(log.header)
    tares = tare_means(log)
    wm = verify.weighing_map(log)
    out = []
    for c in range(log.n_cells):
        d = {}
        for kind, key in ((2, "m0_g"), (3, "m1_g")):
            ws = wm.get((kind, c))
            m = verify.weigh_mean(ws[0]) if ws else None
            d[key] = (float(m) - tares[c]) / cpg if (m is not None and tares[c] is not None and cpg) else None
        out.append(d)
    return out


def energy_rows(log, rated):
    if rated is None:
        return None
    rows = []
    for c, m in enumerate(masses_g(log)):
        m0 = m["m0_g"]
        if m0 is None or m0 <= 0:
            rows.append({"cell": c, "rated_wh": rated[c], "m0_g": m0, "wh_per_kg": None,
                         "class": "m0 not available from the log"})
            continue
        whkg = rated[c] / (m0 / 1000.0)
        rows.append({"cell": c, "rated_wh": rated[c], "m0_g": m0, "wh_per_kg": whkg, "class": energy_class(whkg)})
    return rows


def _num(d, key):
    """A finite number from a dict, else None (header values are not trusted to be numbers)."""
    v = d.get(key) if isinstance(d, dict) else None
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return v
    return None


def _code(v, zero):
    """A fault/invalid code from the VERDICT record as text."""
    if not v:
        return zero if v in (0, None) else str(v)
    if isinstance(v, int) and v in verify.FAULT_NAMES:
        return "%s (%d)" % (verify.FAULT_NAMES[v], v)
    return str(v)


def _opt(v):
    return "-" if v is None else v


def _vname(v):
    """A verdict name from the record, as text (None stays None)."""
    return None if v is None else str(v)


def _pct(ppm):
    return "%.2f %%" % (ppm / 10000.0)


def rule_text(m):
    if not m:
        return "-"
    lim = _pct(m["limit_ppm"])
    le = m["comparator"] == "le"
    within, beyond = ("≤", ">") if le else ("<", "≥")
    if m["decision"] == "simple":
        return "simple acceptance: PASS if loss %s %s, else FAIL (unrounded loss)" % (within, lim)
    return ("guarded acceptance (ILAC-G8, k = 2): PASS if loss + U %s %s; FAIL if loss − U %s %s; otherwise "
            "INCONCLUSIVE (unrounded loss)" % (within, lim, beyond, lim))


def seal_info(log, data, key):
    """What the report says of the seal: sealed or not, key id, and with the key (and the log's
    bytes) the check."""
    lg = log.header.get("log") if isinstance(log.header.get("log"), dict) else {}
    out = {"sealed": lg.get("seal") == sealcheck.ALG, "key_id": lg.get("key_id"), "check": None}
    if key is not None and data is not None:
        out["check"] = sealcheck.check(data, log, key)
    return out


def seal_text(si):
    if si["check"] is not None:
        c = si["check"]
        if c["status"] == "ok":
            return True, "intact: all %d records sealed by device key %s, checked with its key file" % (
                c["records"], c["key_id"])
        return False, "BROKEN: " + "; ".join(c["problems"][:2])
    if si["sealed"]:
        return None, "sealed by device key %s (not checked: ovenctl report --key FILE or ovenctl verify --key FILE)" % (
            si["key_id"])
    return False, "none: the log was written without a device key and cannot be proved unaltered"


def build(log, path, rated=None, key=None):
    """Everything the HTML and PDF show, as plain data (figures excluded)."""
    hdr = log.header
    ver = verify.verify_log(log, path=path)
    m = ver["method"]          # validated by verify (None when the header's method is unusable)
    cal = hdr.get("calibration") if isinstance(hdr.get("calibration"), dict) else {}
    dev = log.verdict if isinstance(log.verdict, dict) else None
    try:
        with open(path, "rb") as f:
            data = f.read()
        sha = hashlib.sha256(data).hexdigest()
    except OSError:
        data = sha = None
    masses = masses_g(log)
    cells = []
    for c in range(log.n_cells):
        d = verify.dev_cell(dev, c) or {}
        vc = ver["cells"][c]
        rec = {k: (row["recomputed"]) for k, row in vc["fields"].items()}
        # the uncertainty budget: the device's (verify recomputed it term by term), else verify's
        bud = d.get("budget") if isinstance(d.get("budget"), dict) else vc.get("budget")
        no_pass = vc.get("no_pass")
        if no_pass is None and isinstance(d.get("no_pass"), list):
            no_pass = d["no_pass"]
        cells.append({"cell": c, "id": vc["id"], "device": d, "recomputed": rec, "masses": masses[c],
                      "match": all(r["match"] for r in vc["fields"].values()) if vc["fields"] else False,
                      "exact": vc["exact"], "error": vc["error"], "budget": bud, "no_pass": no_pass or []})
    drift = []
    blank = cal.get("blank")
    for i in range(log.n_cells):
        ch = blank[i] if isinstance(blank, list) and i < len(blank) and isinstance(blank[i], dict) else None
        dv = ver["drift"][i] if i < len(ver["drift"]) else None
        drift.append({"channel": i, "fit": ch, "k": dv})
    return {"path": path, "file": os.path.basename(path), "sha256": sha, "header": hdr, "method": m,
            "method_raw": hdr.get("method"),
            "calibration": cal, "drift": drift, "verify": ver, "device": dev, "cells": cells,
            "energy": energy_rows(log, rated), "problems": list(log.problems), "complete": log.complete,
            "audit": audit_rows(hdr), "records": records_rows(hdr), "seal": seal_info(log, data, key),
            "generated": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %z"),
            "overall": _vname(dev.get("verdict")) if dev else None}


# ---------------------------------------------------------------- records (header "records" and "cal", firmware/oven/run/plan.py)
RECORDS_NOT_RECORDED = "not recorded by this firmware (a log from before the records)"


def _when_text(t):
    if isinstance(t, int) and not isinstance(t, bool) and t > 946684800:     # after 2000-01-01: a date
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(t, int) and not isinstance(t, bool):
        return "%d s (board clock, no date)" % t
    return "-"


def _txt(v):
    if v is None or v == "":
        return "-"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def records_rows(hdr):
    """The ISO/IEC 17025 §7.8 records of the log header as [(label, text)] (None for a log
    without them): operator, cell serial numbers, date and time with its source, equipment with
    calibration dates, ambient conditions, the check-weight result, the calibration used and the
    lab's stated choices."""
    r = hdr.get("records") if isinstance(hdr, dict) else None
    cal = hdr.get("cal") if isinstance(hdr, dict) else None
    if not isinstance(r, dict):
        return None
    rows = []
    src = {"host": "entered on the host (ovenctl prepare)", "config": "from /config.json",
           "none": "not entered", "buttons": "confirmed on the device"}
    rows.append(("operator", "%s (%s)" % (_txt(r.get("operator")), src.get(r.get("operator_source"), _txt(r.get("operator_source"))))))
    cells = r.get("cells") if isinstance(r.get("cells"), list) else []
    rows.append(("cell serial numbers", "%s (%s)" % (", ".join(str(c) for c in cells) or "-",
                                                    src.get(r.get("cells_source"), _txt(r.get("cells_source"))))))
    clk = r.get("clock") if isinstance(r.get("clock"), dict) else {}
    csrc = {"rtc": "the board's battery-backed clock", "host": "set from the host's clock at START",
            "sim": "simulated bench time", "none": "no clock: date not known"}
    rows.append(("date and time of START", "%s (%s%s)" % (
        _when_text(clk.get("start_s")), csrc.get(clk.get("source"), _txt(clk.get("source"))),
        ", written %s s before START" % clk["set_age_s"] if isinstance(clk.get("set_age_s"), int) else "")))
    eq = r.get("equipment") if isinstance(r.get("equipment"), dict) else {}
    for k in sorted(eq, key=str):
        rows.append(("equipment: %s" % k, _txt(eq[k])))
    amb = r.get("ambient")
    if isinstance(amb, dict) and "temp_c_x100" in amb:
        parts = ["%.2f °C" % (amb["temp_c_x100"] / 100)]
        if isinstance(amb.get("rh_permille"), int):
            parts.append("%.1f %% RH" % (amb["rh_permille"] / 10))
        if isinstance(amb.get("pressure_pa"), int):
            parts.append("%.1f hPa" % (amb["pressure_pa"] / 100))
        rows.append(("ambient conditions", ", ".join(parts)))
    else:
        rows.append(("ambient conditions", "no sensor fitted" if amb is None else _txt(amb)))
    ck = r.get("check_weight")
    if isinstance(ck, dict):
        if ck.get("ok") is None:
            rows.append(("check weight before the run", "not run: %s" % _txt(ck.get("skipped"))))
        else:
            res = "; ".join("ch %d %+.1f mg %s" % (x[0] + 1, x[1] / 1000, "ok" if x[2] else "OUT")
                            for x in ck.get("results") or [] if isinstance(x, list) and len(x) == 3)
            rows.append(("check weight before the run", "%s: %s (%s ± %s mg)" % (
                "passed" if ck.get("ok") else "FAILED", res or "-",
                "%g g" % (ck["mass_ug"] / 1e6) if isinstance(ck.get("mass_ug"), int) else "-",
                "%g" % (ck["tol_ug"] / 1000) if isinstance(ck.get("tol_ug"), int) else "-")))
    else:
        rows.append(("check weight before the run", "not recorded"))
    if isinstance(cal, dict):
        rows.append(("calibration used", "%s" % ("measured (calibration store)" if cal.get("source") == "measured"
                                                 else "DEFAULT: span not measured on every channel")))
        for i, ch in enumerate(cal.get("channels") or []):
            if isinstance(ch, dict):
                rows.append(("span channel %d" % (i + 1), "%s counts/g, u %s ppm, linearity %s, %s, calibrated %s" % (
                    _txt(ch.get("counts_per_g")), _txt(ch.get("u_span_ppm")),
                    "%+.1f mg at %g g" % (ch["lin_dev_ug"] / 1000, ch["lin_ref_ug"] / 1e6)
                    if isinstance(ch.get("lin_ref_ug"), int) and ch["lin_ref_ug"] else "-",
                    "references %s" % ch["cal_id"] if ch.get("cal_id") else "no reference IDs",
                    _when_text(ch.get("when")))))
        c = cal.get("check")
        if isinstance(c, dict):
            rows.append(("check-weight repeatability", "u %s ug from %s passed results" % (_txt(c.get("u_rep_ug")),
                                                                                         _txt(c.get("n")))))
        tc = cal.get("tc_offset_c_x100")
        if isinstance(tc, dict):
            rows.append(("thermocouple offsets", ", ".join("%s %+.2f °C" % (k, v / 100) for k, v in sorted(tc.items())
                                                           if isinstance(v, int))))
        pid = cal.get("pid")
        rows.append(("heater PID", "autotuned: kp %s ki %s kd %s" % (pid.get("kp"), pid.get("ki"), pid.get("kd"))
                     if isinstance(pid, dict) else "compiled-in defaults"))
    lab = r.get("lab") if isinstance(r.get("lab"), dict) else {}
    if lab:
        rows.append(("lab choice: temperature", "%s °C ± %s °C" % (
            "%.2f" % (lab["setpoint_c_x100"] / 100) if isinstance(lab.get("setpoint_c_x100"), int) else "-",
            "%.2f" % (lab["tolerance_c_x100"] / 100) if isinstance(lab.get("tolerance_c_x100"), int) else "-")))
        rows.append(("lab choice: vacuum level", "≤ %.1f kPa absolute" % (lab["vacuum_pa"] / 1000)
                     if isinstance(lab.get("vacuum_pa"), int) else "-"))
        rows.append(("lab choice: when the soak starts", _txt(lab.get("soak_start"))))
        rows.append(("lab choice: decision rule", "%s acceptance, limit %s %s ppm" % (
            _txt(lab.get("decision")), "≤" if lab.get("comparator") == "le" else "<", _txt(lab.get("limit_ppm")))))
        st = lab.get("statements")
        if isinstance(st, dict):
            for k in sorted(st, key=str):
                rows.append(("lab statement: %s" % k, _txt(st[k])))
    return rows


# ---------------------------------------------------------------- audit trail (header "audit", firmware/oven/store/audit.py)
AUDIT_NOT_RECORDED = "not recorded by this firmware"
AUDIT_NONE = "no changes recorded"


def _audit_value(what, v):
    """An audit value as text: a blank-fit summary as its k per channel and CRC, dicts as k=v."""
    if v is None:
        return "-"
    if what == "calib.blank" and isinstance(v, dict) and "crc32" in v:
        ks = v.get("k_mcounts_per_c") if isinstance(v.get("k_mcounts_per_c"), list) else []
        parts = ["ch%d k %s counts/°C" % (i, "%.3f" % (k / 1000.0) if isinstance(k, int) else "?")
                 for i, k in enumerate(ks)]
        return "drift fit %s (CRC-32 %s)" % (", ".join(parts) or "-", v.get("crc32"))
    if isinstance(v, dict):
        return "; ".join("%s=%s" % (k, _audit_value(None, v[k])) for k in sorted(v, key=str))
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def audit_rows(hdr):
    """The header's audit trail as {"status", "rows", "note"}: status "absent" (a log from firmware
    without the trail), "error", "empty" or "ok"; rows (when, what, old, new, run, by, line, new
    since the previous run, corrupt) for the HTML table and the PDF."""
    a = hdr.get("audit") if isinstance(hdr, dict) else None
    if a is None:
        return {"status": "absent", "rows": [], "note": AUDIT_NOT_RECORDED}
    if isinstance(a, list):
        a = {"entries": a}
    if not isinstance(a, dict):
        return {"status": "error", "rows": [], "note": "the header's audit record is not readable"}
    if a.get("error"):
        return {"status": "error", "rows": [], "note": "the device could not read its audit trail: %s" % a["error"]}
    ents = a.get("entries") if isinstance(a.get("entries"), list) else []
    since = a.get("since_line") if isinstance(a.get("since_line"), int) else None
    rows = []
    for e in ents:
        if not isinstance(e, dict):
            continue
        line = e.get("line") if isinstance(e.get("line"), int) else None
        new = since is not None and line is not None and line >= since
        if "corrupt" in e:
            rows.append({"when": "-", "what": "(corrupt line in the trail)", "old": "-", "new": str(e["corrupt"]),
                         "run": "-", "by": "-", "line": line, "new_since_prev": new, "corrupt": True})
            continue
        what = str(e.get("what"))
        when = e.get("when")
        if isinstance(when, (int, float)) and not isinstance(when, bool):
            when = "RTC %d s" % when
        else:
            when = "no clock"
        if what == "audit.start":
            what = "audit trail started (baseline)"
        elif what == "audit.trail":
            what = "audit trail file truncated or replaced (bytes)"
        rows.append({"when": when, "what": what, "old": _audit_value(e.get("what"), e.get("old")),
                     "new": _audit_value(e.get("what"), e.get("new")), "run": _opt(e.get("run")),
                     "by": _opt(e.get("by")), "line": line, "new_since_prev": new, "corrupt": False})
    notes = []
    if a.get("omitted"):
        notes.append("%s earlier line(s) of the trail are not in this log (they stay in %s on the device)"
                     % (a["omitted"], a.get("trail", "the trail file")))
    if a.get("corrupt"):
        notes.append("%s corrupt line(s) in the trail (lines %s), kept as they are"
                     % (a["corrupt"], ", ".join(str(x) for x in (a.get("corrupt_lines") or []))))
    if a.get("prev_run"):
        notes.append("rows marked * were added since the previous run %s" % a["prev_run"])
    if not rows:
        return {"status": "empty", "rows": [], "note": AUDIT_NONE}
    return {"status": "ok", "rows": rows, "note": "; ".join(notes)}


# ---------------------------------------------------------------- figures (matplotlib, Agg, no pyplot)
def _mpl():
    import matplotlib
    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    return Figure, FigureCanvasAgg


def _marks(log):
    """Excursion spans, faults and other marks, times in h."""
    exc = []
    start = None
    for e in log.events:
        t = e["t_ms"] / 3.6e6
        if e["code"] == verify.E_EXC_START:
            start = t
        elif e["code"] == verify.E_EXC_END and start is not None:
            exc.append((start, t))
            start = None
    if start is not None and log.samples:
        exc.append((start, log.samples[-1]["t_s"] / 3600.0))
    faults = [(e["t_ms"] / 3.6e6, verify.FAULT_NAMES[e["code"]]) for e in log.events if e["code"] in verify.FAULT_NAMES]
    invalid = [(e["t_ms"] / 3.6e6, "INVALID (%s)" % verify.FAULT_NAMES.get(e["a"], e["a"]))
               for e in log.events if e["code"] == verify.E_INVALID]
    return exc, faults, invalid


def _decorate(ax, log, spans, marks, label_phases):
    exc, faults, invalid = marks
    ymin, ymax = ax.get_ylim()
    xr = (spans[-1][2] - spans[0][1]) / 3600.0 if spans else 1.0
    for ph, t0, t1 in spans:
        name = verify.phase_name(ph)
        a, b = (t0 - 0.5) / 3600.0, (t1 + 0.5) / 3600.0
        ax.axvspan(a, b, color=PHASE_COLORS.get(name, "#eeeeee"), alpha=0.55, lw=0, zorder=0)
        if label_phases and (b - a) > 0.05 * xr:
            ax.text((a + b) / 2, 0.985, name.replace("_", " ").lower(), transform=ax.get_xaxis_transform(),
                    ha="center", va="top", fontsize=7, color="#444444", zorder=5)
    for i, (a, b) in enumerate(exc):
        ax.axvspan(a, max(b, a + 0.002), facecolor="#e31a1c", alpha=0.18, hatch="///", edgecolor="#e31a1c",
                   lw=0, zorder=1, label="soak excursion" if i == 0 else None)
    for i, (t, name) in enumerate(faults):
        ax.axvline(t, color="#d62728", lw=1.5, zorder=6, label="fault" if i == 0 else None)
        ax.text(t, 0.03, " " + name, transform=ax.get_xaxis_transform(), color="#d62728", fontsize=8,
                rotation=90, va="bottom", ha="right", zorder=6)
    for i, (t, name) in enumerate(invalid):
        ax.axvline(t, color="#6a3d9a", lw=1.2, ls="--", zorder=6, label="run invalid" if i == 0 else None)
        ax.text(t, 0.03, " " + name, transform=ax.get_xaxis_transform(), color="#6a3d9a", fontsize=8,
                rotation=90, va="bottom", ha="right", zorder=6)
    ax.set_ylim(ymin, ymax)
    ax.set_xlabel("time since run start (h)")
    ax.grid(True, lw=0.3, alpha=0.6)


def _phase_key(fig, spans):
    from matplotlib.patches import Patch
    seen = []
    for ph, _, _ in spans:
        name = verify.phase_name(ph)
        if name not in seen:
            seen.append(name)
    handles = [Patch(facecolor=PHASE_COLORS.get(nm, "#eeeeee"), alpha=0.8, label=nm.replace("_", " ").lower())
               for nm in seen]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 7), fontsize=7.5, frameon=False,
                   title="phases", title_fontsize=7.5)


def figures(log, rep):
    """[(key, title, Figure, caption)] for the temperature, pressure and mass-loss plots."""
    Figure, FigureCanvasAgg = _mpl()
    S = log.samples
    m = rep["method"] or {}
    spans = verify.phase_spans(log)
    marks = _marks(log)
    t = [s["t_s"] / 3600.0 for s in S]
    out = []

    # temperature
    fig = Figure(figsize=(10, 4.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    ax.plot(t, [s["temp_c_x100"] / 100 for s in S], lw=0.9, color="#d62728", label="oven (thermocouple)")
    ax.plot(t, [s["lc_temp_c_x100"] / 100 for s in S], lw=0.9, color="#1f77b4", label="load cell")
    if _num(m, "setpoint_c_x100"):
        sp, tol = _num(m, "setpoint_c_x100") / 100, (_num(m, "tol_c_x100") or 0) / 100
        ax.axhline(sp, color="#555555", lw=0.6, ls=":", label="setpoint %.1f ± %.1f °C" % (sp, tol))
        ax.axhspan(sp - tol, sp + tol, color="#555555", alpha=0.08, lw=0)
    ax.set_ylabel("temperature (°C)")
    ax.set_title("Temperature")
    _decorate(ax, log, spans, marks, True)
    ax.legend(loc="center right", fontsize=8, framealpha=0.85)
    _phase_key(fig, spans)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    out.append(("temperature", "Temperature", fig, "Oven thermocouple and load-cell temperature at 1 Hz; phases "
                "shaded, soak excursions hatched red, faults as red lines."))

    # pressure
    fig = Figure(figsize=(10, 3.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    ax.plot(t, [max(s["pressure_pa"], 1) / 1000 for s in S], lw=0.9, color="#2c7fb8", label="chamber (absolute)")
    if _num(m, "vacuum_pa"):
        ax.axhline(_num(m, "vacuum_pa") / 1000, color="#555555", lw=0.8, ls="--",
                   label="vacuum limit %.1f kPa" % (_num(m, "vacuum_pa") / 1000))
    ax.set_yscale("log")
    ax.set_ylabel("pressure (kPa, log scale)")
    ax.set_title("Pressure")
    _decorate(ax, log, spans, marks, True)
    ax.legend(loc="center right", fontsize=8, framealpha=0.85)
    fig.tight_layout()
    out.append(("pressure", "Pressure", fig, "Chamber pressure (absolute, log scale) at 1 Hz with the method's "
                "vacuum limit."))

    # mass loss per cell
    fig = Figure(figsize=(10, 4.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    colors = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a")
    any_curve = False
    for c, (tt, yy, final) in enumerate(loss_curves(log, rep)):
        col = colors[c % len(colors)]
        if tt:
            ax.plot(tt, yy, lw=0.8, color=col, alpha=0.9, label="%s in-oven trend" % rep["cells"][c]["id"])
            any_curve = True
        if final is not None:
            ft, fl, fu = final
            ax.errorbar([ft], [fl], yerr=[fu] if fu is not None else None, fmt="o", color=col, ms=6, capsize=4,
                        zorder=7, label="%s m1 weighing: %.2f %%%s" % (rep["cells"][c]["id"], fl,
                                                                     " ± %.2f %%" % fu if fu is not None else ""))
            any_curve = True
    for e in log.events:
        if e["code"] == verify.E_EARLY_FAIL and 0 <= e["a"] < log.n_cells:
            ax.axvline(e["t_ms"] / 3.6e6, color=colors[e["a"] % 4], lw=1, ls=":", zorder=6)
            ax.text(e["t_ms"] / 3.6e6, 0.04, " early fail (%s)" % rep["cells"][e["a"]]["id"], rotation=90,
                    transform=ax.get_xaxis_transform(), fontsize=7, va="bottom", ha="right", color=colors[e["a"] % 4])
    if m.get("limit_ppm"):
        ax.axhline(m["limit_ppm"] / 10000, color="#b3261e", lw=1, ls="--",
                   label="limit %s %.2f %%" % ("≤" if m.get("comparator") == "le" else "<", m["limit_ppm"] / 10000))
    if not any_curve:
        ax.text(0.5, 0.5, "no load-cell data after the m0 weighing", transform=ax.transAxes, ha="center")
    ax.set_ylabel("mass loss (% of m0)")
    ax.set_title("Mass loss")
    _decorate(ax, log, spans, marks, True)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
    fig.tight_layout()
    out.append(("mass_loss", "Mass loss", fig, "Loss (m0 − m)/m0 per cell. Line: in-oven 1 Hz readings corrected "
                "for load-cell zero drift (blank-run k and vacuum offset); they are biased by the cell's own "
                "buoyancy and convection and never decide the verdict. Dot: the vented m1 weighing with its "
                "expanded uncertainty U (k = 2), the value the verdict uses."))
    return out


def loss_curves(log, rep):
    """Per cell (times h, loss %, final (t h, loss %, U %) or None) from the m0 weighing on."""
    hdr = log.header
    cal = hdr.get("calibration") if isinstance(hdr.get("calibration"), dict) else {}
    blank = cal.get("blank") if isinstance(cal.get("blank"), list) else None
    wm = verify.weighing_map(log)
    out = []
    for c in range(log.n_cells):
        tare = wm.get((1, c))
        m0 = wm.get((2, c))
        if not tare or not m0 or len(tare[0]["samples"]) < 2 or len(m0[0]["samples"]) < 2:
            out.append(([], [], None))
            continue
        k = vac = None
        t_ref = 0.0
        if blank and c < len(blank):
            try:
                kk, _, tr = verify.drift_terms(blank[c], c)
                k, t_ref = float(kk), float(tr)
                ch = blank[c]
                vac = ch["vac_offset_num"] / ch["vac_offset_den"] if ch.get("vac_offset_den") else 0.0
            except (verify.CannotRecompute, KeyError, TypeError, ZeroDivisionError):
                k = None

        def corr(x, temp, pressure):
            if k is None:
                return x
            v = x - k * (temp - t_ref)
            if pressure is not None and pressure < 50000 and vac:
                v -= vac
            return v
        z = corr(float(verify.weigh_mean(tare[0])), tare[0]["lc_temp_c_x100"], None)
        a = corr(float(verify.weigh_mean(m0[0])), m0[0]["lc_temp_c_x100"], None)
        d = a - z
        if d <= 0:
            out.append(([], [], None))
            continue
        t_start = m0[0]["t_ms"] / 1000.0
        tt, yy = [], []
        for s in log.samples:
            x = s["raw"][c] if c < len(s["raw"]) else None
            if x is None or s["t_s"] <= t_start:
                continue
            tt.append(s["t_s"] / 3600.0)
            yy.append(100.0 * (a - corr(x, s["lc_temp_c_x100"], s["pressure_pa"])) / d)
        final = None
        dc = rep["cells"][c]["device"]
        m1 = wm.get((3, c))
        if m1 and isinstance(dc.get("loss_ppm"), int):
            u = dc.get("u_ppm")
            final = (m1[0]["t_ms"] / 3.6e6, dc["loss_ppm"] / 10000.0, u / 10000.0 if isinstance(u, int) else None)
        elif m1 and verify.weigh_mean(m1[0]) is not None:      # (an m1 record without samples: no dot)
            b = corr(float(verify.weigh_mean(m1[0])), m1[0]["lc_temp_c_x100"], None)
            final = (m1[0]["t_ms"] / 3.6e6, 100.0 * (a - b) / d, None)
        out.append((tt, yy, final))
    return out


def png_b64(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


# ---------------------------------------------------------------- HTML
CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:24px auto;max-width:1080px;
color:#202124;line-height:1.4;padding:0 16px}
h1{font-size:1.5em;margin-bottom:0}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:28px}
.sub{color:#5f6368;margin-top:2px}
table{border-collapse:collapse;margin:8px 0;font-size:0.92em}
td,th{border:1px solid #d0d0d0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:bold}
.banner{font-size:1.6em;padding:10px 16px;border-radius:6px;color:#fff;margin:14px 0;font-weight:bold}
.ok{color:#1b7a2e;font-weight:bold}.bad{color:#b3261e;font-weight:bold}.warn{color:#b26a00}
figure{margin:14px 0}figure img{max-width:100%;border:1px solid #e0e0e0}
figcaption{color:#5f6368;font-size:0.9em}
.kv td:first-child{color:#5f6368;white-space:nowrap}.nw{white-space:nowrap}
code{font-size:0.92em}.small{font-size:0.85em;color:#5f6368}
"""


def _e(x):
    return html.escape("-" if x is None else str(x), quote=True)


def _badge(v):
    return '<span class="badge" style="background:%s">%s</span>' % (VERDICT_COLORS.get(v, "#5f6368"), _e(v or "none"))


def _kv(rows):
    return '<table class="kv">' + "".join("<tr><td>%s</td><td>%s</td></tr>" % (_e(k), v) for k, v in rows) + "</table>"


def verdict_rows(rep):
    """Per-cell rows (plain strings) of the verdict block, shared by HTML and PDF."""
    m = rep["method"] or {}
    rows = []
    for c in rep["cells"]:
        d = c["device"]
        star = ""
        if rep["device"] is None:
            d = {k: v for k, v in c["recomputed"].items() if k != "verdict"}
            star = "*"
        lim = "%s %s" % ("≤" if m.get("comparator") == "le" else "<", _pct(m["limit_ppm"])) if m.get("limit_ppm") else "-"
        leak = d.get("leak_visible")
        rows.append({
            "cell": "%d (%s)" % (c["cell"] + 1, c["id"]),
            "m0": "%.4f g" % c["masses"]["m0_g"] if c["masses"]["m0_g"] is not None else "-",
            "m1": "%.4f g" % c["masses"]["m1_g"] if c["masses"]["m1_g"] is not None else "-",
            "loss": _scaled(d, "loss_pct_x100", 100, "%.2f %%") + (
                " (%s ppm)%s" % (d["loss_ppm"], star) if _num(d, "loss_ppm") is not None else ""),
            "U": _scaled(d, "u_pct_x100", 100, "%.2f %%") + (
                " (%s ppm)%s" % (d["u_ppm"], star) if _num(d, "u_ppm") is not None else ""),
            "limit": lim,
            "leak": "-" if leak is None else ("yes" if leak else "no"),
            "early": "yes" if d.get("early_fail") else "no",
            "flags": _flag_text(d.get("flags")),
            "verdict": _vname(d.get("verdict")),
            "recomputed": c["recomputed"].get("verdict"),
            "match": c["match"],
        })
    return rows


def budget_rows(b):
    """One cell's uncertainty table: (contribution, source, distribution, u in mg, ppm of m0) rows,
    then the combined and the expanded uncertainty (docs/UNCERTAINTY.md)."""
    m0 = b.get("m0_ug") or 0
    rows = []
    terms = b.get("terms_ug") if isinstance(b.get("terms_ug"), dict) else {}
    for k in verify.BUDGET_TERMS:
        name, src, dist = verify.BUDGET_TERM_TEXT[k]
        u = terms.get(k)
        rows.append((name, src, dist, "%.3f" % (u / 1000) if isinstance(u, int) else "-",
                     "%.1f" % (u * 1e6 / m0) if isinstance(u, int) and m0 else "-"))
    inp = b.get("inputs") if isinstance(b.get("inputs"), dict) else {}
    us = inp.get("u_sys_ppm")
    if isinstance(us, int) and us:
        rows.append(("lab-stated extra", "method u_sys_ppm", "-", "%.3f" % (us * m0 / 1e9), "%d" % us))
    uc, Ug, Up = b.get("uc_ug"), b.get("U_ug"), b.get("U_ppm")
    rows.append(("combined standard uncertainty u_c", "root sum of squares", "",
                 "%.3f" % (uc / 1000) if isinstance(uc, int) else "-",
                 "%.1f" % (uc * 1e6 / m0) if isinstance(uc, int) and m0 else "-"))
    rows.append(("expanded uncertainty U", "k = %s; ppm rounded up" % b.get("k", 2), "",
                 "%.3f" % (Ug / 1000) if isinstance(Ug, int) else "-", "%s" % Up))
    return rows


def budget_inputs_text(b):
    inp = b.get("inputs") if isinstance(b.get("inputs"), dict) else {}
    parts = []
    rep = inp.get("u_rep_ug")
    if isinstance(rep, int):
        parts.append("check-weight repeatability %s" % ("%d µg (n = %s)" % (rep, inp.get("check_n"))
                                                        if rep >= 0 and (inp.get("check_n") or 0) >= 2
                                                        else "unknown (no history: 20-count bound, no PASS)"))
    for k, fmt in (("counts_per_g", "span %s counts/g"), ("dT_lc_c_x100", "load-cell ΔT m1−m0 %s (0.01 °C)"),
                   ("settle_s", "settling before m0 %s s"), ("creep_ppm", "creep %s ppm"),
                   ("creep_tau_s", "τ %s s"), ("span_tc_ppm_per_c", "span TC %s ppm/°C"),
                   ("zero_return_counts", "blank zero return %s counts")):
        if k in inp:
            parts.append(fmt % inp[k])
    if isinstance(inp.get("lin_ref_ug"), int) and inp["lin_ref_ug"] > 0:
        parts.append("linearity deviation %s µg at %s µg" % (inp.get("lin_dev_ug"), inp["lin_ref_ug"]))
    elif "lin_ref_ug" in inp:
        parts.append("one-point calibration (linearity bound 0.1 %)")
    return "; ".join(parts)


def no_pass_text(names):
    return "; ".join("%s (%s)" % (n, verify.NO_PASS_TEXT.get(n, "?")) for n in names)


def heat_cool_text(m):
    """The method's heat_in / cool_in (docs/APP.md "Heating and cooling"); older logs: both vacuum."""
    hi, ci = m.get("heat_in", "vacuum"), m.get("cool_in", "vacuum")
    t = ("heated in air to %s °C of the setpoint (the cell's probe) before the pump-down; the soak counts from "
         "the vacuum level" % _scaled(m, "preheat_band_c_x100", 100, "%.2f")) if hi == "air" else \
        "heated under vacuum (the soak counts from SOAK)"
    return t + ("; cooled vented from the soak's end" if ci == "air" else "; cooled under vacuum")


def _flag_text(f):
    if not isinstance(f, int) or not f:
        return "-"
    names = [n for b, n in ((1, "mass gain"), (2, "significant gain"), (4, "visible leakage")) if f & b]
    return ", ".join(names)


def render_html(rep, figs):
    h = rep["header"]
    m = rep["method"] or {}
    ver = rep["verify"]
    ov = rep["overall"]
    P = []
    P.append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">")
    P.append("<title>Vacuum mass-loss test report %s</title><style>%s</style></head><body>" % (_e(h.get("run_id")), CSS))
    P.append("<h1>Vacuum mass-loss test report</h1>")
    P.append('<div class="sub">run <b>%s</b> · method <b>%s</b> · %d cell(s) · generated %s by ovenctl %s</div>'
             % (_e(h.get("run_id")), _e(m.get("name")), len(rep["cells"]), _e(rep["generated"]), _e(__version__)))
    P.append('<div class="banner" style="background:%s">Overall verdict: %s</div>'
             % (VERDICT_COLORS.get(ov, "#5f6368"), _e(ov or "no verdict record")))
    vstat = ver["status"]
    P.append("<p>Independent verification (<code>ovenctl verify</code>): <span class=\"%s\">%s</span> (exit %d)%s</p>"
             % ("ok" if ver["exit_code"] == 0 else "bad", _e(vstat.upper()), ver["exit_code"],
                "" if ver["exit_code"] == 0 else " — see the findings below"))
    sok, stext = seal_text(rep["seal"])
    P.append("<p>Seal (tamper evidence): <span class=\"%s\">%s</span></p>"
             % ("ok" if sok else ("warn" if sok is None else "bad"), _e(stext)))
    if rep["problems"] or not rep["complete"]:
        P.append('<p class="warn">The log is damaged or incomplete: %s</p>'
                 % _e("; ".join(rep["problems"][:5] + ([] if rep["complete"] else ["no END record"]))))

    # verdict block
    P.append("<h2>Verdict</h2>")
    P.append("<p>Decision rule: %s. Displayed values are rounded half to even to 0.01 %% (GB/T 8170), U is "
             "rounded up; the decision compares unrounded values.</p>" % _e(rule_text(m)))
    P.append("<table><tr><th>cell</th><th>m0</th><th>m1</th><th>loss</th><th>U (k = 2)</th><th>limit</th>"
             "<th>visible leakage</th><th>early fail</th><th>flags</th><th>verdict</th><th>verify</th></tr>")
    for r in verdict_rows(rep):
        P.append("<tr><td class=nw>%s</td><td class=num>%s</td><td class=num>%s</td><td class=num>%s</td>"
                 "<td class=num>%s</td><td class=nw>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>"
                 % (_e(r["cell"]), _e(r["m0"]), _e(r["m1"]), _e(r["loss"]), _e(r["U"]), _e(r["limit"]),
                    _e(r["leak"]), _e(r["early"]), _e(r["flags"]), _badge(r["verdict"]),
                    ('<span class="ok">agrees</span>' if r["match"] else
                     '<span class="bad">recomputed %s</span>' % _e(r["recomputed"]))))
    P.append("<tr><td colspan=9><b>overall</b> (most severe of the cells and run-level outcome)</td><td>%s</td><td>%s</td></tr>"
             % (_badge(ov), '<span class="ok">agrees</span>' if ver["overall"]["match"] else
                '<span class="bad">recomputed %s</span>' % _e(ver["overall"]["recomputed"])))
    P.append("</table>")
    dv = rep["device"] or {}
    P.append(_kv([("fault", _e(_code(dv.get("fault"), "none"))),
                  ("invalid", _e(_code(dv.get("invalid"), "no"))),
                  ("in-spec soak", _e("%s s of %s s required (total soak %s s)" % (
                      _opt(dv.get("soak_in_spec_s")), _opt(m.get("soak_s")), _opt(dv.get("soak_total_s"))))),
                  ("heating / cooling", _e(heat_cool_text(m)))]))
    if rep["device"] is None:
        P.append('<p class="bad">The log has no VERDICT record: loss, U and leak answers above are recomputed from '
                 'the raw records by verify (marked *), not the device\'s.</p>')
    P.append("<p class=small>m0 and m1 are (weighing mean − tare mean) / counts_per_g (%s scale), without the drift "
             "correction that the loss uses.</p>" % _e(rep["calibration"].get("span")))

    # uncertainty budget (docs/UNCERTAINTY.md)
    P.append("<h2>Uncertainty budget</h2>")
    P.append("<p>Model: loss = (m0 − m1) / m0 = (a − b) / (a − z) with a, b, z the drift-corrected m0, m1 and tare "
             "readings; the span cancels. Each contribution is a standard uncertainty in mg; combined as the root sum "
             "of squares, expanded with k = 2 and stated in ppm of the cell's m0 (rounded up). Decision rule: %s.</p>"
             % _e(rule_text(m)))
    for c in rep["cells"]:
        b = c.get("budget")
        P.append("<h3>cell %d (%s)</h3>" % (c["cell"] + 1, _e(c["id"])))
        if not b:
            P.append("<p class=small>No budget in this log (firmware before the uncertainty budget: U from the "
                     "weighing statistics and the method's u_sys_ppm %s ppm).</p>" % _e(m.get("u_sys_ppm")))
        else:
            P.append("<table><tr><th>contribution</th><th>source</th><th>distribution</th><th>u (mg)</th>"
                     "<th>ppm of m0</th></tr>")
            for r in budget_rows(b):
                P.append("<tr><td>%s</td><td>%s</td><td>%s</td><td class=num>%s</td><td class=num>%s</td></tr>"
                         % tuple(_e(x) for x in r))
            P.append("</table>")
            P.append("<p class=small>Inputs: %s.</p>" % _e(budget_inputs_text(b)))
        if c["no_pass"]:
            P.append('<p class="warn">This cell cannot PASS: %s.</p>' % _e(no_pass_text(c["no_pass"])))

    # verify
    P.append("<h2>Verification</h2>")
    if ver["findings"]:
        P.append("<table><tr><th>level</th><th>record</th><th>finding</th></tr>")
        for f in ver["findings"]:
            where = ", ".join(x for x in ("seq %d" % f["seq"] if f["seq"] is not None else "",
                                          "offset %d" % f["offset"] if f["offset"] is not None else "",
                                          f["record"] or "") if x)
            P.append("<tr><td class=%s>%s</td><td>%s</td><td>%s</td></tr>"
                     % ("warn" if f["level"] == "warning" else "bad", _e(f["level"]), _e(where), _e(f["message"])))
        P.append("</table>")
    else:
        P.append("<p class=ok>No findings: the log is complete and undamaged; every cell's loss, U and verdict "
                 "recomputed from the raw WEIGH records agree with the device's VERDICT record.</p>")
    P.append("<table><tr><th>cell</th><th>exact loss (ppm)</th><th>U before rounding (ppm)</th><th>readings (counts, "
             "drift-corrected mean ± sd of the mean)</th></tr>")
    for c in ver["cells"]:
        ex = c["exact"] or {}
        rd = "; ".join("%s %.2f ± %.2f @ %.2f °C" % (k, r["corrected_mean_counts"], r["corrected_sd_mean_counts"],
                                                      r["lc_temp_c_x100"] / 100) for k, r in c["readings"].items())
        P.append("<tr><td>%d</td><td class=num>%s</td><td class=num>%s</td><td>%s</td></tr>"
                 % (c["cell"] + 1, _e("%.3f" % ex["loss_ppm"] if "loss_ppm" in ex else c["error"] or "-"),
                    _e("%.3f" % ex["u_k2_ppm"] if "u_k2_ppm" in ex else "-"), _e(rd or "-")))
    P.append("</table>")

    # energy density
    if rep["energy"] is not None:
        P.append("<h2>Energy density</h2>")
        P.append("<p>Energy density = rated energy / m0, with m0 from the initial weighing. Reported thresholds: "
                 "hybrid solid-liquid ≥ %d Wh/kg, all-solid-state ≥ %d Wh/kg.</p>" % (HYBRID_WH_PER_KG, ALL_SOLID_WH_PER_KG))
        P.append("<table><tr><th>cell</th><th>rated energy</th><th>m0</th><th>energy density</th><th>against the thresholds</th></tr>")
        for r in rep["energy"]:
            P.append("<tr><td>%d (%s)</td><td class=num>%s Wh</td><td class=num>%s</td><td class=num>%s</td><td>%s</td></tr>"
                     % (r["cell"] + 1, _e(rep["cells"][r["cell"]]["id"]), _e("%g" % r["rated_wh"]),
                        _e("%.4f g" % r["m0_g"] if r["m0_g"] is not None else "-"),
                        _e("%.1f Wh/kg" % r["wh_per_kg"] if r["wh_per_kg"] is not None else "-"), _e(r["class"])))
        P.append("</table>")

    # plots
    P.append("<h2>Run</h2>")
    for key, title, fig, caption in figs:
        P.append('<figure id="fig-%s"><img alt="%s" src="data:image/png;base64,%s"><figcaption>%s</figcaption></figure>'
                 % (_e(key), _e(title), png_b64(fig), _e(caption)))

    # identity
    P.append("<h2>Run identity</h2>")
    P.append(_kv([("run id", _e(h.get("run_id"))), ("firmware", _e(h.get("fw_version"))), ("board", _e(h.get("board"))),
                  ("mode", _e(h.get("mode"))), ("cells", _e(", ".join(c["id"] for c in rep["cells"]))),
                  ("log file", _e("%s (%d bytes, %d records, %s)" % (rep["file"], ver["size_bytes"], ver["records"],
                                                                     "complete" if rep["complete"] else "incomplete"))),
                  ("SHA-256", "<code>%s</code>" % _e(rep["sha256"]))]
                 + [(k, _e(v)) for k, v in sorted(h.items())
                    if k not in ("run_id", "fw_version", "board", "mode", "cells", "method", "calibration", "log",
                                  "audit", "records", "cal")]))
    P.append("<h2>Records (ISO/IEC 17025 §7.8)</h2>")
    rr = rep.get("records")
    P.append(_kv([(k, _e(v)) for k, v in rr]) if rr else "<p class=small>%s</p>" % _e(RECORDS_NOT_RECORDED))
    P.append("<h2>Method</h2>")
    mr = rep["method_raw"]
    P.append(_kv([(k, _e(v)) for k, v in sorted(mr.items(), key=lambda kv: str(kv[0]))]) if isinstance(mr, dict)
             else "<p>%s</p>" % _e(mr))
    if not m:
        P.append('<p class="bad">The header\'s method is not usable for the verdict (see the findings).</p>')
    P.append("<h2>Calibration</h2>")
    cal = rep["calibration"]
    P.append(_kv([("counts_per_g", _e(cal.get("counts_per_g"))), ("span", _e(cal.get("span")))]))
    P.append("<table><tr><th>channel</th><th>drift k</th><th>u(k)</th><th>vacuum offset</th><th>fit points (vented)</th>"
             "<th>load-cell T range</th></tr>")
    for d in rep["drift"]:
        f, k = d["fit"], d["k"]
        if f is None or k is None:
            P.append("<tr><td>%d</td><td colspan=5>no blank-run drift fit: readings not drift-corrected</td></tr>" % d["channel"])
            continue
        vn, vd = _num(f, "vac_offset_num"), _num(f, "vac_offset_den")
        vac = vn / vd if (vn is not None and vd) else None
        P.append("<tr><td>%d</td><td class=num>%.3f counts/°C</td><td class=num>%.3f counts/°C</td><td class=num>%s</td>"
                 "<td class=num>%s (%s)</td><td>%s</td></tr>"
                 % (d["channel"], k["k_counts_per_c"], k["u_k_counts_per_c"],
                    _e("%.1f counts" % vac if vac is not None else "-"), _e(f.get("points")), _e(f.get("points_vented")),
                    _e("%.2f … %.2f °C" % (f["t_min_c_x100"] / 100, f["t_max_c_x100"] / 100)
                       if isinstance(f.get("t_min_c_x100"), int) and isinstance(f.get("t_max_c_x100"), int) else "-")))
    P.append("</table>")
    P.append("<h2>Calibration and configuration changes</h2>")
    au = rep["audit"]
    if au["status"] != "ok":
        P.append('<p class="%s">%s</p>' % ("bad" if au["status"] == "error" else "small", _e(au["note"])))
    else:
        P.append("<p class=small>The device's audit trail (method and calibration are fixed at START: a change "
                 "recorded with this run's id was made during it and does not apply to it).</p>")
        P.append("<table><tr><th>line</th><th>when</th><th>what</th><th>old</th><th>new</th><th>run</th><th>by</th></tr>")
        for r in au["rows"]:
            P.append("<tr%s><td class=num>%s%s</td><td class=nw>%s</td><td>%s</td><td>%s</td><td>%s</td><td class=nw>%s</td>"
                     "<td>%s</td></tr>" % (' class="bad"' if r["corrupt"] else "", _e(r["line"]),
                                           "*" if r["new_since_prev"] else "", _e(r["when"]), _e(r["what"]),
                                           _e(r["old"]), _e(r["new"]), _e(r["run"]), _e(r["by"])))
        P.append("</table>")
        if au["note"]:
            P.append("<p class=small>%s</p>" % _e(au["note"]))
    P.append("</body></html>")
    return "\n".join(P)


# ---------------------------------------------------------------- PDF
def summary_lines(rep):
    h = rep["header"]
    m = rep["method"] or {}
    ver = rep["verify"]
    L = ["Vacuum mass-loss test report", "",
         "run %s   firmware %s   board %s   mode %s" % (h.get("run_id"), h.get("fw_version"), h.get("board"), h.get("mode")),
         "log %s  (%d bytes, %s)  SHA-256 %s" % (rep["file"], ver["size_bytes"], "complete" if rep["complete"] else
                                                "incomplete", (rep["sha256"] or "-")[:16] + "…"),
         "method %s: limit %s %s, %s acceptance, u_sys %s ppm, soak %s s at %s °C ± %s °C, vacuum ≤ %s kPa" % (
             m.get("name"), "≤" if m.get("comparator") == "le" else "<",
             _pct(m["limit_ppm"]) if m.get("limit_ppm") else "-", m.get("decision"), m.get("u_sys_ppm"),
             m.get("soak_s"), _scaled(m, "setpoint_c_x100", 100, "%.2f"), _scaled(m, "tol_c_x100", 100, "%.2f"),
             _scaled(m, "vacuum_pa", 1000, "%.1f")),
         heat_cool_text(m),
         "calibration: %s counts/g (%s); drift: %s" % (rep["calibration"].get("counts_per_g"), rep["calibration"].get("span"),
                                                        ", ".join("ch%d k %.3f counts/°C" % (d["channel"], d["k"]["k_counts_per_c"])
                                                                  if d["k"] else "ch%d none" % d["channel"] for d in rep["drift"])),
         ] + ["records: " + RECORDS_NOT_RECORDED] * (not rep.get("records")) + [
             "%s: %s" % (k, v) for k, v in (rep.get("records") or [])] + [
         "", "OVERALL VERDICT: %s" % (rep["overall"] or "no verdict record"),
         "decision rule: " + rule_text(m), ""]
    for r in verdict_rows(rep):
        L.append("cell %s: %s   loss %s   U %s   limit %s   leak %s   early fail %s   flags %s   m0 %s   m1 %s"
                 % (r["cell"], r["verdict"], r["loss"], r["U"], r["limit"], r["leak"], r["early"], r["flags"],
                    r["m0"], r["m1"]))
    for c in rep["cells"]:
        b = c.get("budget")
        if b:
            L.append("cell %d uncertainty budget (m0 %.4f g):" % (c["cell"] + 1, (b.get("m0_ug") or 0) / 1e6))
            for r in budget_rows(b):
                L.append("    %-34s %-52s %-12s %9s mg %8s ppm" % r)
            L.append("    inputs: " + budget_inputs_text(b))
        if c["no_pass"]:
            L.append("cell %d cannot PASS: %s" % (c["cell"] + 1, no_pass_text(c["no_pass"])))
    dv = rep["device"] or {}
    L.append("fault %s   invalid %s   in-spec soak %s s (total %s s)" % (
        _code(dv.get("fault"), "none"),
        _code(dv.get("invalid"), "no"), _opt(dv.get("soak_in_spec_s")), _opt(dv.get("soak_total_s"))))
    if rep["device"] is None:
        L.append("NO VERDICT RECORD in the log: loss and U marked * are recomputed by verify")
    L.append("")
    L.append("verify: %s (exit %d)" % (ver["status"].upper(), ver["exit_code"]))
    L.append("seal: %s" % seal_text(rep["seal"])[1])
    for f in ver["findings"][:12]:
        L.append("  [%s] %s%s" % (f["level"], "offset %d: " % f["offset"] if f["offset"] is not None else "", f["message"]))
    if len(ver["findings"]) > 12:
        L.append("  … %d more findings (see the HTML report or `ovenctl verify`)" % (len(ver["findings"]) - 12))
    L.append("")
    au = rep["audit"]
    L.append("calibration and configuration changes: %s" % ("" if au["status"] == "ok" else au["note"]))
    for r in au["rows"]:
        L.append("  %s%s  %s  %s: %s -> %s  (run %s, by %s)" % (_opt(r["line"]), "*" if r["new_since_prev"] else "",
                                                              r["when"], r["what"], r["old"], r["new"], r["run"], r["by"]))
    if au["status"] == "ok" and au["note"]:
        L.append("  " + au["note"])
    if rep["energy"] is not None:
        L.append("")
        L.append("energy density (rated Wh / m0; hybrid ≥ %d, all-solid-state ≥ %d Wh/kg):" % (HYBRID_WH_PER_KG, ALL_SOLID_WH_PER_KG))
        for r in rep["energy"]:
            L.append("  cell %d: %g Wh / %s = %s — %s" % (r["cell"] + 1, r["rated_wh"],
                                                        "%.4f g" % r["m0_g"] if r["m0_g"] is not None else "-",
                                                        "%.1f Wh/kg" % r["wh_per_kg"] if r["wh_per_kg"] is not None else "-",
                                                        r["class"]))
    return L


def _scaled(m, key, div, fmt):
    v = _num(m, key)
    return "-" if v is None else fmt % (v / div)


def summary_pages(rep):
    """The summary text as A4 portrait Figures."""
    Figure, FigureCanvasAgg = _mpl()
    import textwrap
    lines = []
    for ln in summary_lines(rep):
        lines.extend(textwrap.wrap(ln, 124, subsequent_indent="    ") or [""])
    per_page = 60
    pages = []
    for p in range(0, max(len(lines), 1), per_page):
        fig = Figure(figsize=(8.27, 11.69))
        FigureCanvasAgg(fig)
        for i, ln in enumerate(lines[p:p + per_page]):
            bold = p == 0 and i == 0
            fig.text(0.06, 0.96 - i * 0.0152, ln, fontsize=12 if bold else 7.2, family="DejaVu Sans",
                     weight="bold" if bold else "normal", va="top")
        if p == 0:
            ov = rep["overall"]
            fig.text(0.94, 0.96, ov or "no verdict", fontsize=14, weight="bold", ha="right", va="top",
                     color=VERDICT_COLORS.get(ov, "#5f6368"))
        pages.append(fig)
    return pages


def render_pdf(rep, figs, path):
    from matplotlib.backends.backend_pdf import PdfPages
    with PdfPages(path, metadata={"Title": "Vacuum mass-loss test report %s" % rep["header"].get("run_id"),
                                  "Creator": "ovenctl %s" % __version__}) as pdf:
        for fig in summary_pages(rep):
            pdf.savefig(fig)
        for key, title, fig, caption in figs:
            pdf.savefig(fig)


# ---------------------------------------------------------------- command
def _write_text(path, text):
    from ovenctl.cli import UserError
    if os.path.isdir(path):
        raise UserError("%s is a directory" % path, code=2)
    try:
        with open(path + ".part", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".part", path)
    except OSError as e:
        raise UserError("cannot write %s: %s" % (path, e.strerror or e), code=2)


def run(args):
    from ovenctl.cli import UserError
    for p in (args.out, args.pdf):
        if p is not None:
            d = os.path.dirname(os.path.abspath(p))
            if not os.path.isdir(d):
                raise UserError("cannot write %s: directory %s does not exist" % (p, d), code=2)
            if os.path.isdir(p):
                raise UserError("%s is a directory" % p, code=2)
    key = keyfile.load_key(args.key) if getattr(args, "key", None) else None
    log = load(args.log, "report")
    rated = parse_rated(args.rated_wh, log.n_cells)
    rep = build(log, args.log, rated, key)
    if rep["verify"]["exit_code"] != 0:
        print("ovenctl report: warning: verify found the log %s; the report shows the findings"
              % rep["verify"]["status"], file=sys.stderr)
    if rep["seal"]["check"] is not None and rep["seal"]["check"]["status"] != "ok":
        print("ovenctl report: warning: the log's seal is %s; the report says so"
              % ("missing" if rep["seal"]["check"]["status"] == "unsealed" else "broken"), file=sys.stderr)
    figs = figures(log, rep)
    _write_text(args.out, render_html(rep, figs))
    if args.pdf:
        try:
            render_pdf(rep, figs, args.pdf + ".part")
            os.replace(args.pdf + ".part", args.pdf)
        except OSError as e:
            raise UserError("cannot write %s: %s" % (args.pdf, e.strerror or e), code=2)
    return 0
