"""Sealed run logs from the command line: `ovenctl sim --key` (the firmware in the VM seals its
log), `ovenctl verify --key` on untouched, altered and unsealed logs, key-file errors, and the key
never shown. The tamper matrix itself is the reliability campaign (tests/reliability/tamper.py)."""
import json
import os
import shutil
import stat
import subprocess
import sys
import zlib

import pytest

from ovenctl import keyfile, sweep
from ovenctl.logfile import read_log

pytestmark = [pytest.mark.vm, pytest.mark.e2e, pytest.mark.slow]

OVENCTL = [sys.executable, "-m", "ovenctl"]
KEY = bytes(range(7, 39))
QUICK = {"seed": 5, "blank_run": False, "method": {"soak_s": 600, "soak_max_total_s": 1200, "blank_soak_s": 0}}


def run(*args):
    return subprocess.run(OVENCTL + [str(a) for a in args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    d = tmp_path_factory.mktemp("seal")
    kp = d / "dev.key"
    kp.write_text(KEY.hex() + "\n")
    os.chmod(kp, 0o600)
    _, sealed = sweep.run(QUICK, want_log=True, key=KEY)
    _, plain = sweep.run(QUICK, want_log=True)
    (d / "sealed.log").write_bytes(sealed)
    (d / "plain.log").write_bytes(plain)
    return d


def _fix_crc(data, rec):
    b = bytearray(data)
    s = rec.offset
    e = rec.offset + rec.length
    b[e - 4:e] = (zlib.crc32(bytes(b[s + 2:e - 4])) & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(b)


def test_untouched_sealed_log_verifies_with_the_key(logs):
    p = run("verify", "--key", logs / "dev.key", logs / "sealed.log")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "seal: OK" in p.stdout and keyfile.key_id(KEY) in p.stdout
    p = run("verify", "--json", "--key", logs / "dev.key", logs / "sealed.log")
    res = json.loads(p.stdout)
    assert res["exit_code"] == 0 and res["seal"]["status"] == "ok" and res["seal"]["sealed"] > 50
    # without --key: consistent, and told how to check the seal
    p = run("verify", logs / "sealed.log")
    assert p.returncode == 0 and "add --key FILE" in p.stdout


def _changed_block(data):
    log = read_log(data)
    blocks = [(i, r) for i, r in enumerate(log.records) if r.name == "BLOCK"]
    i, r = blocks[len(blocks) // 2]
    b = bytearray(data)
    b[r.offset + r.length - 6] ^= 0x01            # a sample byte near the end of the block
    return _fix_crc(bytes(b), r), i, r


def test_a_changed_sample_with_a_valid_crc_is_named(logs):
    bad, i, r = _changed_block((logs / "sealed.log").read_bytes())
    assert read_log(bad).problems == []           # CRC and sequence intact: only the seal can tell
    path = logs / "changed.log"
    path.write_bytes(bad)
    p = run("verify", "--key", logs / "dev.key", path)
    assert p.returncode == 1
    assert "first bad record: record #%d (BLOCK, seq %d, offset %d)" % (i, r.seq, r.offset) in p.stdout


def test_a_rewritten_verdict_is_named(logs):
    data = (logs / "sealed.log").read_bytes()
    log = read_log(data)
    i, r = [(i, r) for i, r in enumerate(log.records) if r.name == "VERDICT"][-1]
    body = data[r.offset + 5:r.offset + r.length - 4]
    j = body.index(b"{")
    v = json.loads(body[j:])
    v["cells"][0]["loss_ppm"] -= 1000
    new_body = body[:j] + json.dumps(v).encode()
    head = bytes((0x05, len(new_body) & 0xFF, len(new_body) >> 8)) + new_body
    frame = b"\xa5\x5a" + head + (zlib.crc32(head) & 0xFFFFFFFF).to_bytes(4, "little")
    path = logs / "verdict.log"
    path.write_bytes(data[:r.offset] + frame + data[r.offset + r.length:])
    p = run("verify", "--key", logs / "dev.key", path)
    assert p.returncode == 1 and "record #%d (VERDICT" % i in p.stdout


def test_the_wrong_key_and_an_unsealed_log_fail(logs, tmp_path):
    other = tmp_path / "other.key"
    other.write_text(bytes(32).hex() + "\n")
    p = run("verify", "--key", other, logs / "sealed.log")
    assert p.returncode == 1 and "record #0 (HEADER" in p.stdout and "wrong key file?" in p.stdout
    p = run("verify", "--key", logs / "dev.key", logs / "plain.log")
    assert p.returncode == 1 and "not sealed" in p.stdout and "RESULT: SEAL MISSING" in p.stdout


def test_key_file_errors_are_clear_and_never_show_the_key(logs, tmp_path):
    p = run("verify", "--key", tmp_path / "none.key", logs / "sealed.log")
    assert p.returncode == 2 and "does not exist" in p.stderr and "Traceback" not in p.stderr
    short = tmp_path / "short.key"
    short.write_text(KEY.hex()[:40] + "\n")
    p = run("verify", "--key", short, logs / "sealed.log")
    assert p.returncode == 2 and "not a device key file" in p.stderr and KEY.hex()[:40] not in p.stderr
    garbage = tmp_path / "bin.key"
    garbage.write_bytes(b"\xff\x00" * 40)
    p = run("verify", "--key", garbage, logs / "sealed.log")
    assert p.returncode == 2 and "not a device key file" in p.stderr
    for args in (("verify", "--key", logs / "dev.key", logs / "sealed.log"),
                 ("verify", "--json", "--key", logs / "dev.key", logs / "sealed.log")):
        p = run(*args)
        assert KEY.hex() not in p.stdout + p.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="node is needed for the MicroPython VM")
def test_sim_in_the_vm_seals_its_log_with_a_new_key(tmp_path):
    scn = tmp_path / "quick.json"
    scn.write_text(json.dumps(QUICK))
    kp = tmp_path / "keys" / "bench.key"
    kp.parent.mkdir()
    p = run("sim", "--scenario", scn, "--json", "--progress", "0", "--log", tmp_path / "run.log", "--key", kp)
    assert p.returncode == 0, p.stderr
    assert stat.S_IMODE(os.stat(kp).st_mode) == 0o600
    key = keyfile.load_key(str(kp))
    assert "new device key %s written to" % keyfile.key_id(key) in p.stderr
    assert key.hex() not in p.stdout + p.stderr
    data = (tmp_path / "run.log").read_bytes()
    log = read_log(data)
    assert log.header["log"]["key_id"] == keyfile.key_id(key) and log.seals
    v = run("verify", "--key", kp, tmp_path / "run.log")
    assert v.returncode == 0 and "seal: OK" in v.stdout, v.stdout
    # the VM's log and the CPython simulation of the same scenario and key: same records, so the
    # same chain (the header's JSON key order aside, which the chain covers byte for byte)
    _, cpy = sweep.run(QUICK, want_log=True, key=key)
    assert [r.name for r in read_log(cpy).records] == [r.name for r in log.records]


def test_report_shows_the_seal(logs, tmp_path):
    out = tmp_path / "r.html"
    p = run("report", logs / "sealed.log", "--out", out, "--key", logs / "dev.key")
    assert p.returncode == 0, p.stderr
    html = out.read_text()
    assert "Seal (tamper evidence)" in html and "intact: all" in html and keyfile.key_id(KEY) in html
    p = run("report", logs / "sealed.log", "--out", out)
    assert p.returncode == 0 and "not checked" in out.read_text()
    p = run("report", logs / "plain.log", "--out", out, "--key", logs / "dev.key")
    assert p.returncode == 0 and "seal is missing" in p.stderr
    assert "cannot be proved unaltered" in out.read_text()
    (tmp_path / "changed.log").write_bytes(_changed_block((logs / "sealed.log").read_bytes())[0])
    p = run("report", tmp_path / "changed.log", "--out", out, "--key", logs / "dev.key")
    assert p.returncode == 0 and "seal is broken" in p.stderr and "BROKEN" in out.read_text()


def test_a_key_file_others_can_read_is_named(logs, tmp_path):
    kp = tmp_path / "open.key"
    kp.write_text(KEY.hex() + "\n")
    os.chmod(kp, 0o644)
    p = run("verify", "--key", kp, logs / "sealed.log")
    assert p.returncode == 0 and "can be read by other users: chmod 600" in p.stderr
    p = run("verify", "--key", logs / "dev.key", logs / "sealed.log")
    assert "other users" not in p.stderr
