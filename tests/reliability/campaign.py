"""`make reliability`: the reliability campaign (issue 6). Writes build/reliability.json and prints
a table; exit status 1 when a target is missed.

    .venv/bin/python tests/reliability/campaign.py [--out build/reliability.json] [--quick]
        [--cuts 200] [--vdev-kills 20] [--fuzz 100000] [--tamper-cases 1200] [--workers 2] [--no-vdev]

Campaigns (each module's docstring says what it does and why):
  power.py     power cuts: in-process device on a littlefs-like flash, and real vdev kills
  faults.py    every fault kind x every phase, PASS rules, heater-off latency
  watchdog.py  stalled loops and the boot order (outputs off before any firmware import)
  fuzz.py      run-log readers, the run protocol, methods / scenarios / config.json
  flash.py     flash full and filesystem errors mid-run
  tamper.py    sealed logs altered without the key: changed, removed, inserted, reordered records
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import common  # noqa: E402,F401  (paths)

TARGETS = (
    # key, target text, check
    ("power_cuts", ">= 200", lambda v: v is not None and v >= 200),
    ("synced_records_lost", "0", lambda v: v == 0),
    ("verdicts_from_incomplete_data", "0", lambda v: v == 0),
    ("fault_cases", ">= 77", lambda v: v is not None and v >= 77),
    ("max_heater_off_ticks", "<= 1", lambda v: v is not None and v <= 1),
    ("pass_after_fault", "0", lambda v: v == 0),
    ("fuzz_cases", ">= 100000", lambda v: v is not None and v >= 100000),
    ("reader_crashes", "0", lambda v: v == 0),
    ("protocol_fuzz_runs_disturbed", "0", lambda v: v == 0),
    ("tamper_cases", ">= 1000", lambda v: v is not None and v >= 1000),
    ("tamper_undetected", "0", lambda v: v == 0),
)
QUICK_TARGETS = {"power_cuts", "fault_cases", "fuzz_cases", "tamper_cases"}   # sizes: not checked in --quick runs
EXTRA = (
    ("logs_unreadable", "0"), ("policy_violations", "0"), ("recovery_errors", "0"),
    ("watchdog_outputs_on_after_reset", "0"), ("watchdog_max_reset_after_last_feed_ms", "<= 8000"),
    ("watchdog_false_resets_full_runs", "0"), ("boot_order_failures", "0"),
    ("flash_not_stopped", "0"), ("flash_max_ticks_to_fault", "<= 1"), ("flash_heater_or_pump_on_after", "0"),
    ("config_not_rejected", "0"), ("config_field_not_named", "0"), ("config_crashes", "0"),
    ("protocol_fuzz_crashes", "0"), ("vdev_model_mismatches", "0"),
    ("tamper_misnamed", "0"), ("tamper_cli_wrong", "0"), ("tamper_untouched_rejected", "0"),
    ("power_cut_logs_seal_broken", "0"),
)


def _extra_ok(k, v):
    if v is None:
        return k.startswith("vdev") or k.startswith("watchdog_max") or k.startswith("flash_max")
    if k == "watchdog_max_reset_after_last_feed_ms":
        return v <= 8000
    if k == "flash_max_ticks_to_fault":
        return v <= 1
    return v == 0


def run(args):
    import faults
    import flash
    import fuzz
    import power
    import tamper
    import watchdog
    t_all = time.time()
    out = {"campaign": "reliability (issue 6)", "quick": bool(args.quick), "workers": args.workers,
           "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    sections = {}

    def section(name, fn):
        t0 = time.time()
        print("reliability: %s ..." % name, file=sys.stderr, flush=True)
        res = fn()
        res["section_wall_s"] = round(time.time() - t0, 1)
        sections[name] = res
        print("reliability: %s done in %.0f s" % (name, res["section_wall_s"]), file=sys.stderr, flush=True)
        return res

    q = args.quick
    pw = section("power_cuts", lambda: power.in_process(args.cuts, args.workers, seed=args.seed,
                                                         variants=power.QUICK_VARIANTS if q else None))
    vd = {}
    if not args.no_vdev and args.vdev_kills:
        vd = section("vdev_kills", lambda: power.vdev_kills(args.vdev_kills, seed=args.seed + 1,
                                                            workers=args.workers))
    fa = section("faults", lambda: faults.campaign(args.workers, quick=q))
    wd = section("watchdog", lambda: watchdog.campaign(3 if q else args.stalls, args.workers, quick=q))
    fl = section("flash", lambda: flash.campaign(args.flash_cases, args.workers, quick=q))
    fz = section("reader_fuzz", lambda: fuzz.reader_fuzz(args.fuzz, args.workers, seed=args.seed + 10,
                                                         plots=args.plots, cli=args.cli_cases, with_sim=True))
    pr = section("protocol_fuzz", lambda: fuzz.protocol_fuzz(2 if q else args.protocol_runs, args.workers,
                                                             scn_obj=power.QUICK_VARIANTS["quick"] if q else None))
    cf = section("config_fuzz", lambda: fuzz.config_fuzz(2000 if q else args.config_cases))
    tp = section("tamper", lambda: tamper.campaign(120 if q else args.tamper_cases, cli_cases=12 if q else 36,
                                                   seed=args.seed + 20))

    out.update({
        "power_cuts": pw["power_cuts"] + vd.get("vdev_kills", 0),
        "synced_records_lost": (pw["synced_records_lost"] + vd.get("vdev_synced_records_lost", 0)
                                + wd["watchdog_synced_records_lost"] + fl["flash_synced_records_lost"]),
        "verdicts_from_incomplete_data": (pw["verdicts_from_incomplete_data"]
                                          + wd["watchdog_verdicts_from_incomplete_data"]
                                          + fl["flash_measured_verdicts_after_error"]),
        "fault_cases": fa["fault_cases"],
        "max_heater_off_ticks": fa["max_heater_off_ticks"],
        "pass_after_fault": fa["pass_after_fault"],
        "fuzz_cases": fz["fuzz_cases"],
        "reader_crashes": fz["reader_crashes"],
        "protocol_fuzz_runs_disturbed": pr["protocol_fuzz_runs_disturbed"],
        # every log the power cuts leave, after the recovery, checked with the device key
        "power_cut_logs_seal_checked": pw["sealed_logs_checked"] + vd.get("vdev_seal_checked", 0),
        "power_cut_logs_seal_broken": pw["seal_broken"] + vd.get("vdev_seal_broken", 0),
        "tamper_cases": tp["tamper_cases"],
        "tamper_undetected": tp["tamper_undetected"],
        "tamper_misnamed": tp["tamper_misnamed"],
        "tamper_cli_wrong": tp["tamper_cli_wrong"],
        "tamper_untouched_rejected": (0 if tp["tamper_untouched_ok"] and tp["tamper_untouched_cli_exit"] == 0
                                      else 1),
        # further invariants
        "logs_unreadable": pw["logs"] - pw["logs_readable"] - pw["logs_empty_cut_in_header"],
        "policy_violations": pw["policy_violations"],
        "recovery_errors": pw["errors"] + len(vd.get("vdev_errors", [])) + len(wd["watchdog_errors"]),
        "runs_resumed": pw["runs_resumed"] + wd["watchdog_runs_resumed"],
        "runs_closed_interrupted": sum(v for k, v in pw["decisions"].items() if k.startswith("closed:")),
        "watchdog_outputs_on_after_reset": wd["watchdog_outputs_on_after_reset"],
        "watchdog_max_reset_after_last_feed_ms": wd["watchdog_max_reset_after_last_feed_ms"],
        "watchdog_false_resets_full_runs": wd["watchdog_false_resets_full_runs"],
        "boot_order_failures": wd["boot_order_failures"],
        "flash_not_stopped": fl["flash_not_stopped"],
        "flash_max_ticks_to_fault": fl["flash_max_ticks_to_fault"],
        "flash_heater_or_pump_on_after": fl["flash_heater_or_pump_on_after"],
        "config_cases": cf["config_cases"],
        "config_not_rejected": cf["config_not_rejected"],
        "config_field_not_named": cf["config_field_not_named"],
        "config_crashes": cf["config_crashes"],
        "protocol_fuzz_crashes": pr["protocol_fuzz_crashes"],
        "vdev_model_mismatches": (vd["vdev_model_compared"] - vd["vdev_model_agrees"]) if vd else None,
    })
    failed = []
    for k, txt, ok in TARGETS:
        if q and k in QUICK_TARGETS:
            continue
        if not ok(out[k]):
            failed.append(k)
    for k, txt in EXTRA:
        if not _extra_ok(k, out.get(k)):
            failed.append(k)
    out["targets_missed"] = failed
    out["ok"] = not failed
    out["wall_s"] = round(time.time() - t_all, 1)
    out["sections"] = sections
    return out


def table(out):
    rows = [("key", "value", "target", "")]
    for k, txt, ok in TARGETS:
        v = out.get(k)
        mark = "ok" if k not in out["targets_missed"] else "MISSED"
        if out["quick"] and k in QUICK_TARGETS:
            mark = "(quick run: size not checked)"
        rows.append((k, _fmt(v), txt, mark))
    for k, txt in EXTRA:
        v = out.get(k)
        rows.append((k, _fmt(v), txt, "ok" if k not in out["targets_missed"] else "MISSED"))
    s = out["sections"]
    info = [("runs_resumed", out["runs_resumed"]), ("runs_closed_interrupted", out["runs_closed_interrupted"]),
            ("power-cut logs whose seal was checked with the device key", out["power_cut_logs_seal_checked"]),
            ("resumed runs that ran to their end: same verdict as undisturbed", "%d/%d" % (
                s["power_cuts"]["resumed_runs_finished_same_verdict_as_undisturbed"],
                s["power_cuts"]["resumed_runs_finished"])),
            ("power_cut decisions", s["power_cuts"]["decisions"]),
            ("vdev kills (model agrees/compared)", "%s (%s/%s)" % (
                s.get("vdev_kills", {}).get("vdev_kills", 0), s.get("vdev_kills", {}).get("vdev_model_agrees"),
                s.get("vdev_kills", {}).get("vdev_model_compared"))),
            ("watchdog stalls/resets", "%d/%d" % (s["watchdog"]["watchdog_stalls"], s["watchdog"]["watchdog_resets"])),
            ("flash cases (error mid-run)", "%d (%d)" % (s["flash"]["flash_cases"],
                                                         s["flash"]["flash_cases_with_error_mid_run"])),
            ("protocol fuzz runs / bytes / requests", "%d / %d / %d" % (
                s["protocol_fuzz"]["protocol_fuzz_runs"], s["protocol_fuzz"]["protocol_fuzz_bytes"],
                s["protocol_fuzz"]["protocol_fuzz_requests"])),
            ("config cases", out["config_cases"]),
            ("tamper cases by kind (undetected/misnamed)", ", ".join(
                "%s %d (%d/%d)" % (k, v["cases"], v["undetected"], v["misnamed"])
                for k, v in s["tamper"]["tamper_by_kind"].items())),
            ("tamper CLI cases (ovenctl verify --key)", "%d, wrong %d" % (s["tamper"]["tamper_cli_cases"],
                                                                          s["tamper"]["tamper_cli_wrong"])),
            ("fuzz plots / CLI cases", "%s / %s" % (s["reader_fuzz"]["fuzz_plot_cases"],
                                                   s["reader_fuzz"]["fuzz_cli_cases"])),
            ("wall time", "%.0f s (%s)" % (out["wall_s"], ", ".join("%s %.0f" % (k, v["section_wall_s"])
                                                                 for k, v in s.items())))]
    w = max(len(r[0]) for r in rows)
    v = max(len(r[1]) for r in rows)
    t = max(len(r[2]) for r in rows)
    lines = ["%-*s  %-*s  %-*s  %s" % (w, r[0], v, r[1], t, r[2], r[3]) for r in rows]
    lines.insert(1, "-" * (w + v + t + 10))
    lines.append("")
    for k, val in info:
        lines.append("%s: %s" % (k, val))
    lines.append("RESULT: %s" % ("all targets met" if out["ok"] else "MISSED: " + ", ".join(out["targets_missed"])))
    return "\n".join(lines)


def _fmt(v):
    return "null" if v is None else str(v)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(common.ROOT, "build", "reliability.json"))
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run of the machinery)")
    ap.add_argument("--cuts", type=int, default=200)
    ap.add_argument("--vdev-kills", type=int, default=20)
    ap.add_argument("--no-vdev", action="store_true")
    ap.add_argument("--stalls", type=int, default=40)
    ap.add_argument("--flash-cases", type=int, default=48)
    ap.add_argument("--fuzz", type=int, default=100000)
    ap.add_argument("--plots", type=int, default=150)
    ap.add_argument("--cli-cases", type=int, default=2000)
    ap.add_argument("--protocol-runs", type=int, default=10)
    ap.add_argument("--config-cases", type=int, default=20000)
    ap.add_argument("--tamper-cases", type=int, default=1200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    out = run(args)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".part"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1, sort_keys=False, default=str)
        f.write("\n")
    os.replace(tmp, args.out)
    print(table(out))
    print("written: %s" % args.out)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
