"""`ovenctl export` and `ovenctl report` on real run logs (the session's simulated logs from
test_verify.sim_logs()), and bad input for every log command (verify, export, report)."""
import base64
import csv
import io
import json
import os
import re
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from test_verify import sim_logs  # noqa: E402  (the simulations run once per session)
from ovenctl import cli, cmd_report, verify  # noqa: E402
from ovenctl.logfile import read_log  # noqa: E402

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="session")
def logs(tmp_path_factory):
    d = tmp_path_factory.mktemp("export_logs")
    out = {}
    for k, (res, data) in sim_logs().items():
        p = d / (k + ".log")
        p.write_bytes(data)
        out[k] = {"res": res, "data": data, "path": str(p)}
    return out


@pytest.fixture(scope="session")
def damaged(logs, tmp_path_factory):
    """The aborted log with one byte flipped in a BLOCK in the middle: damaged but readable."""
    data = bytearray(logs["aborted"]["data"])
    blk = [r for r in read_log(bytes(data)).records if r.name == "BLOCK"][40]
    data[blk.offset + 10] ^= 0xFF
    p = tmp_path_factory.mktemp("damaged") / "damaged.log"
    p.write_bytes(bytes(data))
    return str(p)


def run_cli(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------- export
def test_csv_parses_back(logs, tmp_path, capsys):
    lg = logs["fail_leak"]
    out = tmp_path / "run.csv"
    rc, _, err = run_cli(["export", lg["path"], "--csv", str(out)], capsys)
    assert rc == 0 and err == ""
    log = read_log(lg["data"])
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    assert head == ["t_s", "phase", "phase_name", "temp_c", "lc_temp_c", "pressure_kpa", "heater_duty_pct", "flags",
                    "cell1_raw_counts", "cell1_mass_g", "cell2_raw_counts", "cell2_mass_g"]
    assert len(rows) - 1 == len(log.samples)
    with open(out, newline="", encoding="utf-8") as f:
        recs = list(csv.DictReader(f))
    cpg = log.header["calibration"]["counts_per_g"]
    tare = [sum(w["samples"]) / w["n"] for w in log.weighings if w["kind"] == 1]
    for r, s in zip(recs[::997], log.samples[::997]):
        assert int(r["t_s"]) == s["t_s"] and int(r["phase"]) == s["phase"] and int(r["flags"]) == s["flags"]
        assert r["phase_name"] == verify.PHASE_NAMES[s["phase"]]
        assert float(r["temp_c"]) == pytest.approx(s["temp_c_x100"] / 100)
        assert float(r["lc_temp_c"]) == pytest.approx(s["lc_temp_c_x100"] / 100)
        assert float(r["pressure_kpa"]) == pytest.approx(s["pressure_pa"] / 1000)
        assert float(r["heater_duty_pct"]) == pytest.approx(s["duty_permille"] / 10)
        for i in range(2):
            raw = s["raw"][i]
            if raw is None:
                assert r["cell%d_raw_counts" % (i + 1)] == "" == r["cell%d_mass_g" % (i + 1)]
            else:
                assert int(r["cell%d_raw_counts" % (i + 1)]) == raw
                assert float(r["cell%d_mass_g" % (i + 1)]) == pytest.approx((raw - tare[i]) / cpg, abs=1e-5)
    # numbers are plain '.'-decimal, no thousands separators, no exponents
    for r in recs[:50] + recs[-50:]:
        for k in ("temp_c", "pressure_kpa", "cell1_mass_g"):
            assert r[k] == "" or re.fullmatch(r"-?\d+(\.\d+)?", r[k]), (k, r[k])
    # the masses: ~30 g and ~60 g once on the pans, vented, at the end of the run
    last = recs[-1]
    assert 29.0 < float(last["cell1_mass_g"]) < 30.0 and 59.5 < float(last["cell2_mass_g"]) < 60.5


def test_csv_and_json_to_stdout(logs, capsys):
    lg = logs["aborted"]
    rc, out, err = run_cli(["export", lg["path"], "--csv", "-"], capsys)
    assert rc == 0 and err == ""
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:3] == ["t_s", "phase", "phase_name"] and len(rows) == 1 + len(read_log(lg["data"]).samples)
    rc, out, err = run_cli(["export", lg["path"], "--json", "-"], capsys)
    assert rc == 0
    doc = json.loads(out)
    log = read_log(lg["data"])
    assert doc["format"] == "ovenctl-export/1"
    assert doc["header"]["run_id"] == log.header["run_id"]
    assert len(doc["samples"]) == len(log.samples) and doc["samples"][5]["raw_counts"] == log.samples[5]["raw"]
    assert [e["code"] for e in doc["events"]] == [e["code"] for e in log.events]
    assert any(e["name"] == "FAULT_TC_OPEN" for e in doc["events"])
    assert {w["kind_name"] for w in doc["weighings"]} == {"tare", "m0"}
    m0 = [w for w in doc["weighings"] if w["kind_name"] == "m0"][0]
    assert 44.9 < m0["mass_g"] < 45.1 and m0["samples"] and m0["sd_counts"] > 0
    assert doc["verdict"]["verdict"] == "ABORTED" and doc["source"]["complete"] is True


def test_json_file(logs, tmp_path, capsys):
    out = tmp_path / "x.json"
    rc, _, _ = run_cli(["export", logs["pass"]["path"], "--json", str(out)], capsys)
    doc = json.loads(out.read_text())
    assert rc == 0 and doc["verdict"]["verdict"] == "PASS" and doc["end"]["n_samples"] == len(doc["samples"])
    assert not os.path.exists(str(out) + ".part")


def test_export_damaged_log_warns(damaged, tmp_path, capsys):
    out = tmp_path / "d.csv"
    rc, _, err = run_cli(["export", damaged, "--csv", str(out)], capsys)
    assert rc == 0 and "warning" in err and "damaged" in err
    assert len(out.read_text().splitlines()) > 100


# ---------------------------------------------------------------- report
def _images(html_text):
    return re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html_text)


def test_report_html_and_pdf(logs, tmp_path, capsys):
    lg = logs["fail_leak"]
    out, pdf = tmp_path / "r.html", tmp_path / "r.pdf"
    rc, _, err = run_cli(["report", lg["path"], "--out", str(out), "--pdf", str(pdf), "--rated-wh", "12,20"], capsys)
    assert rc == 0 and err == ""
    h = out.read_text(encoding="utf-8")
    assert h.startswith("<!DOCTYPE html>") and h.rstrip().endswith("</html>")
    imgs = _images(h)
    assert len(imgs) == 3
    for b in imgs:
        assert base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n"
    # self-contained: no external resource of any kind
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:", h)
    assert not re.search(r"(?i)(https?:|//[a-z]|<script|<link|@import|url\()", text)
    assert all(s.startswith("data:") for s in re.findall(r'src="([^"]*)"', h))
    # identity, method, calibration, verdict block
    for s in ("sim-3", "gb-2026", read_log(lg["data"]).header["fw_version"], "counts/°C", "Overall verdict: FAIL", "CONSISTENT",
              "guarded acceptance", "≤ 0.50 %", "1.66 %", "0.08 %",
              "heated in air to 0.50 °C of the setpoint", "cooled vented from the soak", "visible leakage", "cell-1", "cell-2"):
        assert s in h, s
    dev = read_log(lg["data"]).verdict
    for c in dev["cells"]:
        assert "%.2f %% (%d ppm)" % (c["loss_pct_x100"] / 100, c["loss_ppm"]) in h
        assert "(%d ppm)" % c["u_ppm"] in h
    assert h.count(">agrees<") == 3          # both cells and the overall verdict agree with verify
    # energy density: 12 Wh / m0(cell 1), 20 Wh / m0(cell 2)
    m = cmd_report.masses_g(read_log(lg["data"]))
    e1, e2 = 12 / (m[0]["m0_g"] / 1000), 20 / (m[1]["m0_g"] / 1000)
    assert 29.9 < m[0]["m0_g"] < 30.1 and 59.9 < m[1]["m0_g"] < 60.1
    assert "%.1f Wh/kg" % e1 in h and "%.1f Wh/kg" % e2 in h
    assert 400 <= e1 < 500 and e2 < 400
    assert "meets the hybrid solid-liquid threshold" in h and "below both thresholds" in h
    p = pdf.read_bytes()
    assert p.startswith(b"%PDF") and p.count(b"/Type /Page\n") + p.count(b"/Type /Page ") >= 4


def test_energy_density_classes(logs):
    log = read_log(logs["pass"]["data"])
    m0 = cmd_report.masses_g(log)[0]["m0_g"]
    assert 44.9 < m0 < 45.1
    for wh, want in ((25.0, "all-solid-state threshold"), (20.0, "hybrid solid-liquid threshold"),
                     (10.0, "below both")):
        r = cmd_report.energy_rows(log, [wh])[0]
        assert r["wh_per_kg"] == pytest.approx(wh / (m0 / 1000)) and want in r["class"]
    assert cmd_report.energy_class(500.0).startswith("meets the all-solid-state")
    assert cmd_report.energy_class(499.99).startswith("meets the hybrid")
    assert cmd_report.energy_class(399.99).startswith("below both")


def test_report_aborted_and_damaged(logs, damaged, tmp_path, capsys):
    out = tmp_path / "a.html"
    rc, _, err = run_cli(["report", logs["aborted"]["path"], "--out", str(out)], capsys)
    h = out.read_text(encoding="utf-8")
    assert rc == 0 and err == ""
    assert "Overall verdict: ABORTED" in h and "TC_OPEN" in h and len(_images(h)) == 3
    assert "no blank-run drift fit" in h
    out = tmp_path / "d.html"
    rc, _, err = run_cli(["report", damaged, "--out", str(out)], capsys)
    h = out.read_text(encoding="utf-8")
    assert rc == 0 and "warning" in err
    assert "DAMAGED" in h and "damaged data at offset" in h and len(_images(h)) == 3


# ---------------------------------------------------------------- bad input, every command
def _bad_inputs(tmp_path, logs):
    cases = {"nonexistent": str(tmp_path / "missing.log"), "directory": str(tmp_path)}
    for k, b in (("empty", b""), ("text", b"t_s,phase\n1,2\n"), ("binary", bytes(range(256)) * 3),
                 ("truncated_header", logs["pass"]["data"][:200]),
                 ("corrupt_header", logs["pass"]["data"][:40] + b"X" + logs["pass"]["data"][41:])):
        p = tmp_path / ("bad_" + k)
        p.write_bytes(b)
        cases[k] = str(p)
    return cases


def test_bad_input_every_command(logs, tmp_path, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for k, path in _bad_inputs(tmp_path, logs).items():
        for cmd, extra in (("verify", []), ("export", ["--csv", str(out_dir / "x.csv")]),
                           ("export", ["--json", "-"]), ("report", ["--out", str(out_dir / "x.html")])):
            rc, out, err = run_cli([cmd, path] + extra, capsys)
            assert rc == 2, (cmd, k)
            assert err.startswith("ovenctl %s: error: " % cmd) and err.count("\n") == 1, (cmd, k, err)
            assert "Traceback" not in err and out == "", (cmd, k)
    assert os.listdir(out_dir) == []
    good = logs["aborted"]["path"]
    for argv in (["report", good, "--out", str(tmp_path / "r.html"), "--rated-wh", "0"],
                 ["report", good, "--out", str(tmp_path / "r.html"), "--rated-wh", "abc"],
                 ["report", good, "--out", str(tmp_path / "r.html"), "--rated-wh", "1,2,3"],
                 ["report", good, "--out", str(tmp_path / "nodir" / "r.html")],
                 ["report", good, "--out", str(tmp_path)],
                 ["export", good, "--csv", str(tmp_path / "nodir" / "x.csv")],
                 ["export", good, "--json", str(tmp_path)]):
        rc, out, err = run_cli(argv, capsys)
        assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    # usage errors are argparse's: exit 2 as well
    with pytest.raises(SystemExit) as e:
        cli.main(["export", good])
    assert e.value.code == 2
    capsys.readouterr()


def test_report_uncertainty_table_and_no_pass(logs, tmp_path, capsys):
    """The report's uncertainty table per cell (every contribution in mg and ppm of m0, combined and
    expanded U as in the device's budget) and the no-PASS reasons of a cell."""
    lg = logs["pass"]
    log = read_log(lg["data"])
    b = log.verdict["cells"][0]["budget"]
    rep = cmd_report.build(log, lg["path"])
    rows = cmd_report.budget_rows(rep["cells"][0]["budget"])
    assert [r[0] for r in rows[:8]] == [verify.BUDGET_TERM_TEXT[k][0] for k in verify.BUDGET_TERMS]
    for r, k in zip(rows, verify.BUDGET_TERMS):
        assert r[3] == "%.3f" % (b["terms_ug"][k] / 1000)
        assert r[4] == "%.1f" % (b["terms_ug"][k] * 1e6 / b["m0_ug"])
    assert rows[-1][3:] == ("%.3f" % (b["U_ug"] / 1000), "%d" % b["U_ppm"]) and b["U_ppm"] == log.verdict["cells"][0]["u_ppm"]
    out = tmp_path / "r.html"
    rc, _, _ = run_cli(["report", lg["path"], "--out", str(out)], capsys)
    h = out.read_text(encoding="utf-8")
    assert rc == 0 and "Uncertainty budget" in h and "creep still to come at m0" in h and "guarded acceptance" in h
    assert "cannot PASS" not in h
    text = "\n".join(cmd_report.summary_lines(rep))
    assert "cell 1 uncertainty budget" in text and "expanded uncertainty U" in text
    # a NO_PASS reason in the log: shown with its meaning
    log.events.append({"t_ms": 1000, "code": verify.E_NO_PASS, "a": 2, "b": -1, "seq": None, "offset": None})
    rep = cmd_report.build(log, lg["path"])
    assert rep["cells"][0]["no_pass"][0] == "NO_BLANK"
    assert "cell 1 cannot PASS: NO_BLANK (no blank-run drift fit)" in "\n".join(cmd_report.summary_lines(rep))
