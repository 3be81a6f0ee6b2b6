"""The report's "Calibration and configuration changes" table from the log header's "audit"
(written by firmware/oven/run/plan.py from firmware/oven/store/audit.py's trail): rows, the new-since-previous-run
mark, corrupt lines, "no changes recorded" and "not recorded by this firmware" (older logs);
the JSON export carries the header's audit as it is."""
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from test_verify import frames, rebuild, sim_logs  # noqa: E402
from ovenctl import cli, cmd_report  # noqa: E402
from ovenctl.logfile import read_log  # noqa: E402

from oven.store import audit  # noqa: E402  (firmware/, on sys.path through tests/conftest.py)

pytestmark = pytest.mark.e2e


def _with_header(data, change):
    """The log bytes with its HEADER's JSON changed by change(dict) (valid CRC, same records)."""
    fr = frames(data)
    r, payload = fr[0]
    h = json.loads(payload)
    change(h)
    fr[0] = (r, json.dumps(h).encode())
    return rebuild(fr)


def _trail_audit(tmp_path):
    """A real trail made by the firmware's code: baseline, two runs, changes between them, a
    corrupt line and the device's blank-fit entry; returns the second run's header "audit"."""
    t = audit.Trail(str(tmp_path / "audit.jsonl"), str(tmp_path / "audit_state.json"))
    s0 = {"config.method": "gb-2026", "config.blank_run": True, "config.counts_per_g": 20972}
    t.check(s0, None)
    t.for_header("sim-0002")
    s1 = dict(s0, **{"config.counts_per_g": 21000, "config.board.tc": "max31856"})
    t.check(s1, 1700000000)
    with open(t.path, "ab") as f:
        f.write(b"#### damaged\n")
    fit = [{"k_num": 3, "k_den": 7, "points": 40}, {"k_num": -3, "k_den": 200000, "points": 38}]
    t.record("calib.blank", None, audit.blank_summary(fit), None, "sim-0003")
    return t.for_header("sim-0003")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return sim_logs()["fail_leak"][1]


def _report(tmp_path, data, name, capsys):
    p = tmp_path / (name + ".log")
    p.write_bytes(data)
    out = tmp_path / (name + ".html")
    rc = cli.main(["report", str(p), "--out", str(out)])
    capsys.readouterr()
    assert rc == 0
    return str(p), out.read_text(encoding="utf-8")


def _section(h):
    i = h.index("<h2>Calibration and configuration changes</h2>")
    return h[i:h.index("</body>", i)]


@pytest.mark.slow
def test_report_table_from_the_header_audit(base, tmp_path, capsys):
    a = _trail_audit(tmp_path)
    data = _with_header(base, lambda h: h.__setitem__("audit", a))
    path, h = _report(tmp_path, data, "aud", capsys)
    sec = _section(h)
    assert "<th>when</th><th>what</th><th>old</th><th>new</th><th>run</th>" in sec
    assert "audit trail started (baseline)" in sec
    assert "<td>config.counts_per_g</td><td>20972</td><td>21000</td>" in sec
    assert "<td>config.board.tc</td><td>-</td><td>max31856</td>" in sec
    assert "RTC 1700000000 s" in sec and "no clock" in sec
    # the blank fit: k per channel in counts/degC and its CRC
    crc = a["entries"][-1]["new"]["crc32"]
    assert "drift fit ch0 k 42.857 counts/°C, ch1 k -0.001 counts/°C (CRC-32 %s)" % crc in sec
    assert "<td class=nw>sim-0003</td><td>device</td>" in sec
    # the corrupt line is shown (kept on the device) and counted
    assert "(corrupt line in the trail)" in sec and "#### damaged" in sec and "1 corrupt line(s) in the trail (lines 4)" in sec
    # lines since the previous run are marked
    assert ">2*</td>" in sec and ">1</td>" in sec and "added since the previous run sim-0002" in sec
    assert "audit" not in h[h.index("<h2>Run identity</h2>"):h.index("<h2>Method</h2>")]
    rep = cmd_report.build(read_log(data), path)
    L = "\n".join(cmd_report.summary_lines(rep))
    assert "calibration and configuration changes:" in L and "config.counts_per_g: 20972 -> 21000" in L
    # ovenctl export --json carries the header's audit unchanged
    rc = cli.main(["export", path, "--json", "-"])
    out, _ = capsys.readouterr()
    assert rc == 0 and json.loads(out)["header"]["audit"] == a


@pytest.mark.slow
def test_no_changes_and_older_logs(base, tmp_path, capsys):
    empty = {"trail": "/calib/audit.jsonl", "lines": 0, "since_line": 1, "prev_run": None, "entries": [],
             "omitted": 0, "corrupt": 0, "corrupt_lines": []}
    _, h = _report(tmp_path, _with_header(base, lambda h: h.__setitem__("audit", empty)), "empty", capsys)
    assert "no changes recorded" in _section(h) and "<th>what</th>" not in _section(h)
    _, h = _report(tmp_path, base, "old", capsys)            # a header without "audit"
    assert "not recorded by this firmware" in _section(h)
    err = {"trail": "/calib/audit.jsonl", "error": "OSError(28)"}
    _, h = _report(tmp_path, _with_header(base, lambda h: h.__setitem__("audit", err)), "err", capsys)
    assert "could not read its audit trail: OSError(28)" in _section(h)
    assert cmd_report.audit_rows({})["note"] == "not recorded by this firmware"
    assert cmd_report.audit_rows({"audit": "junk"})["status"] == "error"
