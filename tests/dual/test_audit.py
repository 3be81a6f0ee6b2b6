# firmware/oven/store/audit.py, the audit trail of calibration and configuration changes, under CPython and
# in the MicroPython VM: detection against the snapshot, the firmware's own entries, corrupt and
# torn lines kept and reported, a lost or stale snapshot repaired from the trail, a truncated
# trail reported, the run header's slice (last N, line numbers, since the previous run), the
# bounded line reader.
import json
import os

import fsutil

from oven.store import audit


def _dir(name):
    return fsutil.fresh_dir("au", name)


def _trail(name):
    d = _dir(name)
    return audit.Trail(d + "/audit.jsonl", d + "/audit_state.json"), d


def _read(path):
    f = open(path, "rb")
    b = f.read()
    f.close()
    return b


def _lines(path):
    return [json.loads(x) for x in _read(path).decode().split("\n") if x]


S0 = {"config.method": "gb-2026", "config.blank_run": True, "config.counts_per_g": 20972}


def test_values_compare_by_canonical_text():
    assert audit.canon({"b": 1, "a": [1, {"y": 2, "x": None}]}) == audit.canon({"a": [1, {"x": None, "y": 2}], "b": 1})
    assert audit.canon(1) != audit.canon(True) and audit.canon(1) != audit.canon("1")
    d = audit.flatten({"tc": "max31856", "spi": {"baud": 5000000, "id": 1}}, "config.board", {})
    assert d == {"config.board.tc": "max31856", "config.board.spi.baud": 5000000, "config.board.spi.id": 1}
    assert audit.diff({"a": 1, "b": True, "c": [1, 2]}, {"a": 1, "b": 1, "d": "x", "c": [1, 2]}) == \
        [("b", True, 1), ("d", None, "x")]


def test_blank_summary():
    fit = [{"k_num": 3, "k_den": 7, "points": 40, "ref_counts": 5}, {"k_num": -3, "k_den": 200000, "points": 38}]
    s = audit.blank_summary(fit)
    # k = 3/7 counts per 0.01 degC = 42.857 counts/degC = 42857 milli-counts/degC (rounded)
    assert s["k_mcounts_per_c"] == [42857, -1] and s["points"] == [40, 38]
    same = [{"ref_counts": 5, "points": 40, "k_den": 7, "k_num": 3}, {"points": 38, "k_den": 200000, "k_num": -3}]
    assert audit.blank_summary(same)["crc32"] == s["crc32"] and len(s["crc32"]) == 8
    fit[0]["ref_counts"] = 6
    assert audit.blank_summary(fit)["crc32"] != s["crc32"]
    assert audit.blank_summary(None) is None


def test_first_check_is_a_baseline_then_one_entry_per_changed_field():
    t, d = _trail("basic")
    out = t.check(S0, 1000, None)
    assert [e["what"] for e in out] == ["audit.start"] and out[0]["new"] == S0 and out[0]["by"] == "device"
    assert t.check(S0, 1001) == []                  # nothing changed: nothing appended
    s1 = dict(S0)
    s1["config.counts_per_g"] = 21000
    s1["config.board.tc"] = "max31856"
    del s1["config.blank_run"]
    out = t.check(s1, 1002, None)
    assert [(e["what"], e["old"], e["new"], e["by"], e["when"]) for e in out] == [
        ("config.blank_run", True, None, "external", 1002),
        ("config.board.tc", None, "max31856", "external", 1002),
        ("config.counts_per_g", 20972, 21000, "external", 1002)]
    L = _lines(t.path)
    assert len(L) == 4 and L[1:] == out
    assert _read(t.path).decode().split("\n")[1] == \
        '{"when": 1002, "run": null, "what": "config.blank_run", "old": true, "new": null, "by": "external"}'
    assert t.state() == s1 and t.check(s1) == []
    # the firmware's own change
    e = t.record("calib.blank", None, {"crc32": "0000abcd"}, None, "pico-0003")
    assert e["by"] == "device" and _lines(t.path)[-1] == e
    assert t.state()["calib.blank"] == {"crc32": "0000abcd"}
    s1["calib.blank"] = {"crc32": "0000abcd"}
    assert t.check(s1) == []


def test_corrupt_and_torn_lines_are_kept_and_reported():
    t, d = _trail("corrupt")
    t.check(S0)
    f = open(t.path, "ab")
    f.write(b"garbage \xff not json\n")
    f.write(b'{"when": null, "run": null, "what": "config.counts_')        # a torn write: no newline
    f.close()
    s1 = dict(S0)
    s1["config.counts_per_g"] = 4194
    out = t.check(s1)
    assert [e["what"] for e in out] == ["config.counts_per_g"] and out[0]["old"] == 20972
    raw = _read(t.path)
    assert b"garbage \xff not json\n" in raw and b'"config.counts_\n{"when"' in raw       # kept, new line after it
    h = t.for_header("r-1")
    assert h["lines"] == 4 and h["corrupt"] == 2 and h["corrupt_lines"] == [2, 3]
    assert h["entries"][1] == {"line": 2, "corrupt": "garbage ? not json"}
    assert h["entries"][2]["line"] == 3 and h["entries"][2]["corrupt"].startswith('{"when": null')
    assert h["entries"][3]["what"] == "config.counts_per_g" and h["entries"][3]["line"] == 4
    # a lost snapshot is rebuilt from the trail, skipping the corrupt lines: nothing recorded twice
    os.remove(t.state_path)
    assert t.state() == s1 and t.check(s1) == []


def test_a_cut_between_append_and_snapshot_records_nothing_twice():
    t, d = _trail("cut")
    t.check(S0)
    old_snapshot = _read(t.state_path)
    s1 = dict(S0)
    s1["config.method"] = "tcsae-434-2025"
    assert len(t.check(s1)) == 1
    f = open(t.state_path, "wb")            # the snapshot as it was before: the rename never happened
    f.write(old_snapshot)
    f.close()
    assert t.check(s1) == [] and len(_lines(t.path)) == 2
    s1["config.method"] = "gb-2026"
    out = t.check(s1)
    assert [(e["old"], e["new"]) for e in out] == [("tcsae-434-2025", "gb-2026")]


def test_a_truncated_trail_is_reported():
    t, d = _trail("trunc")
    t.check(S0)
    s1 = dict(S0)
    s1["config.counts_per_g"] = 1
    t.check(s1)
    n = len(_read(t.path))
    f = open(t.path, "wb")                  # replaced behind the firmware's back
    f.write(b"")
    f.close()
    out = t.check(s1, 5)
    assert [(e["what"], e["old"], e["new"], e["by"]) for e in out] == [("audit.trail", n, 0, "external")]
    assert t.check(s1) == []


def test_header_slice_last_n_and_since_the_previous_run():
    t, d = _trail("hdr")
    t.check(S0)
    h = t.for_header("r-0001", n=5)
    assert h["lines"] == 1 and h["since_line"] == 1 and h["prev_run"] is None and h["omitted"] == 0
    s = dict(S0)
    for i in range(12):
        s["config.counts_per_g"] = 1000 + i
        t.check(s)
    h = t.for_header("r-0002", n=5)
    assert h["lines"] == 13 and h["since_line"] == 2 and h["prev_run"] == "r-0001"
    assert h["omitted"] == 8 and [e["line"] for e in h["entries"]] == [9, 10, 11, 12, 13]
    assert [e["new"] for e in h["entries"]] == [1007, 1008, 1009, 1010, 1011]
    assert h["corrupt"] == 0 and h["trail"] == t.path
    h = t.for_header("r-0003", n=5)
    assert h["since_line"] == 14 and h["prev_run"] == "r-0002" and len(h["entries"]) == 5
    h2 = t.for_header("r-0004", mark=False)
    assert h2["prev_run"] == "r-0003" and t.for_header("r-0004")["prev_run"] == "r-0003"
    # no trail at all
    t2, d2 = _trail("hdr_none")
    h = t2.for_header("x")
    assert h["lines"] == 0 and h["entries"] == [] and not _exists(t2.state_path)


def _exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False


def test_line_reader_is_bounded():
    t, d = _trail("long")
    f = open(t.path, "wb")
    f.write(b"a\n" + b"x" * (audit.MAX_LINE + 700) + b"\n\nlast")
    f.close()
    got = list(audit.lines(t.path))
    assert [(o, len(r), ok) for o, r, ok in got] == [(0, 1, True), (2, audit.MAX_LINE, False),
                                                    (audit.MAX_LINE + 703, 0, True), (audit.MAX_LINE + 704, 4, False)]
    assert list(audit.lines(t.path, audit.MAX_LINE + 703)) == got[2:]
    assert list(audit.lines(d + "/missing")) == []
