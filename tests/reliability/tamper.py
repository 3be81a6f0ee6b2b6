"""Tamper campaign: sealed run logs (firmware/oven/store/seal.py, docs/LOGFORMAT.md §10) altered the way
someone without the device key could alter them, each checked with the key by
ovenctl/sealcheck.py (what `ovenctl verify --key` runs), a sample also through the real
`ovenctl verify --key` command line.

Mutations (each keeps every frame's CRC valid unless it says otherwise, so that only the seal can
tell): a changed byte in any record (CRC fixed), a changed byte with the CRC left wrong, the
VERDICT rewritten (verdict PASS<->FAIL, a loss changed), a record removed (with and without
renumbering the ones after it), a record duplicated or forged and inserted, two records swapped,
the log truncated at a record boundary, a record appended, a changed record whose tag in the SEAL
is replaced by a guess, and the whole log re-sealed with another key.

Counts: tamper_cases, tamper_undetected (the check said "ok": must be 0), tamper_misnamed (the
first bad record named is not the one altered, where that is defined)."""
import hashlib
import hmac
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zlib

import common  # noqa: F401  (paths)
from ovenctl import sealcheck, sweep
from ovenctl.logfile import read_log

KEY = hashlib.sha256(b"tamper-campaign-device-key").digest()
OTHER = hashlib.sha256(b"an attacker's key").digest()
SCN = {"seed": 21, "blank_run": False, "method": {"soak_s": 1800, "soak_max_total_s": 3600}}
KINDS = ("flip_fixcrc", "flip_raw", "verdict_edit", "remove", "remove_renumber", "insert_dup", "insert_forged",
         "swap", "truncate", "append", "guess_tag", "reseal_other_key")


def _uv(v):
    out = bytearray()
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _split(body):
    i = 0
    while body[i] & 0x80:
        i += 1
    seq = 0
    for k in range(i, -1, -1):
        seq = (seq << 7) | (body[k] & 0x7F)
    return seq, body[i + 1:]


def frames(data):
    """[(type, seq, payload)] of a log's valid frames, in file order."""
    log = read_log(data)
    out = []
    for r in log.records:
        b = data[r.offset:r.offset + r.length]
        seq, payload = _split(b[5:-4])
        out.append([b[2], seq, payload])
    return out


def frame(typ, seq, payload):
    body = _uv(seq) + payload
    head = bytes((typ, len(body) & 0xFF, len(body) >> 8)) + body
    return b"\xa5\x5a" + head + (zlib.crc32(head) & 0xFFFFFFFF).to_bytes(4, "little")


def build(fr):
    return b"".join(frame(t, s, p) for t, s, p in fr)


def renumber(fr):
    for i, f in enumerate(fr):
        f[1] = i
    return fr


def reseal(fr, key):
    """What someone with a key would write: every SEAL and the VERDICT's chain_hmac recomputed."""
    c = bytes(32)
    tags = {}
    out = []
    for i, (t, s, p) in enumerate(fr):
        if t == 0x07:
            first, _ = _uvd(p, 0)
            cnt, j = _uvd(p, _uvd(p, 0)[1])
            p = p[:j] + b"".join(tags.get(first + k, bytes(8)) for k in range(cnt))
        elif t == 0x05:
            v = json.loads(p)
            v["chain_hmac"] = c.hex()
            p = json.dumps(v).encode()
        f = frame(t, s, p)
        c = hmac.new(key, c + f, hashlib.sha256).digest()
        tags[s] = c[:8]
        out.append([t, s, p])
    return out


def _uvd(b, i):
    v = 0
    sh = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << sh
        sh += 7
        if not x & 0x80:
            return v, i


def mutate(kind, fr, rng):
    """(new log bytes, index of the first altered record or None when not defined)."""
    fr = [list(f) for f in fr]
    n = len(fr)
    if kind == "flip_fixcrc":
        k = rng.randrange(n)
        p = bytearray(fr[k][2])
        if not p:
            return None, None
        p[rng.randrange(len(p))] ^= 1 << rng.randrange(8)
        fr[k][2] = bytes(p)
        return build(fr), (k if fr[k][0] != 0x07 else None)
    if kind == "flip_raw":
        # a changed byte, CRC left as it was: the reader drops the record (a sequence gap)
        k = rng.randrange(1, n)
        data = bytearray(build(fr))
        off = sum(len(frame(*f)) for f in fr[:k])
        flen = len(frame(*fr[k]))
        data[rng.randrange(off + 5, off + flen - 4)] ^= 1 << rng.randrange(8)
        return bytes(data), (k if fr[k][0] != 0x07 else None)
    if kind == "verdict_edit":
        ks = [i for i, f in enumerate(fr) if f[0] == 0x05]
        k = ks[-1]
        v = json.loads(fr[k][2])
        v["verdict"] = "FAIL" if v.get("verdict") == "PASS" else "PASS"
        for c in v.get("cells", []):
            if isinstance(c, dict) and isinstance(c.get("loss_ppm"), int):
                c["loss_ppm"] = c["loss_ppm"] // 2
                c["verdict"] = v["verdict"]
        fr[k][2] = json.dumps(v).encode()
        return build(fr), k
    if kind in ("remove", "remove_renumber"):
        k = rng.randrange(1, n)
        del fr[k]
        if kind == "remove_renumber":
            renumber(fr)
        if k == n - 1:                 # the last SEAL removed: the records it covered are unsealed
            return build(fr), None
        return build(fr), k
    if kind in ("insert_dup", "insert_forged"):
        k = rng.randrange(1, n)
        if kind == "insert_dup":
            new = list(fr[rng.randrange(1, n)])
        else:
            # a forged operator answer "no leak" for cell 0, a minute after the start
            new = [0x03, 0, _zz(60000) + _uv(70) + _zz(0) + _zz(0)]
        fr.insert(k, new)
        renumber(fr)
        return build(fr), k
    if kind == "swap":
        k = rng.randrange(1, n - 1)
        fr[k], fr[k + 1] = fr[k + 1], fr[k]
        renumber(fr)
        return build(fr), k
    if kind == "truncate":
        k = rng.randrange(1, n)
        return build(fr[:k]), None
    if kind == "append":
        new = list(fr[rng.randrange(1, n - 1)])
        fr.append(new)
        renumber(fr)
        return build(fr), n
    if kind == "guess_tag":
        # change a covered record and put a guessed tag for it into the SEAL that covers it
        seals = [i for i, f in enumerate(fr) if f[0] == 0x07]
        si = rng.choice(seals[:-1] or seals)
        first, j = _uvd(fr[si][2], 0)
        cnt, j = _uvd(fr[si][2], j)
        q = rng.randrange(cnt)
        k = first + q
        if fr[k][0] == 0x07 or not fr[k][2]:
            return None, None
        p = bytearray(fr[k][2])
        p[-1] ^= 0x10
        fr[k][2] = bytes(p)
        sp = bytearray(fr[si][2])
        sp[j + 8 * q:j + 8 * q + 8] = bytes(rng.randrange(256) for _ in range(8))
        fr[si][2] = bytes(sp)
        return build(fr), k
    if kind == "reseal_other_key":
        k = rng.randrange(1, n)
        if fr[k][2]:
            p = bytearray(fr[k][2])
            p[rng.randrange(len(p))] ^= 0x04
            fr[k][2] = bytes(p)
        return build(reseal(fr, OTHER)), 0
    raise ValueError(kind)


def _zz(v):
    return _uv(2 * v if v >= 0 else -2 * v - 1)


def _check(data, key):
    try:
        log = read_log(data)
    except Exception as e:      # noqa: BLE001  an unreadable log is detected (verify exit 2)
        return {"status": "unreadable", "first_bad": None, "error": str(e)}
    return sealcheck.check(data, log, key)


def campaign(n_cases=2400, cli_cases=36, seed=3, quick=False):
    t0 = time.time()
    res, log = sweep.run(SCN, want_log=True, key=KEY)
    base = _check(log, KEY)
    fr = frames(log)
    rng = random.Random(seed)
    out = {"tamper_log_bytes": len(log), "tamper_log_records": len(fr), "tamper_log_verdict": res["verdict"],
           "tamper_untouched_ok": base["status"] == "ok", "tamper_by_kind": {}, "tamper_misnamed_examples": [],
           "tamper_undetected_examples": []}
    cases = undetected = misnamed = 0
    per = max(1, n_cases // len(KINDS))
    cli = []
    for kind in KINDS:
        got = {"cases": 0, "undetected": 0, "misnamed": 0}
        for _ in range(per):
            data, k = mutate(kind, fr, rng)
            if data is None:
                continue
            r = _check(data, KEY)
            cases += 1
            got["cases"] += 1
            if r["status"] == "ok":
                undetected += 1
                got["undetected"] += 1
                out["tamper_undetected_examples"].append(kind)
            elif k is not None and r["status"] != "unreadable" and (
                    r["first_bad"] is None or r["first_bad"]["index"] != k):
                misnamed += 1
                got["misnamed"] += 1
                out["tamper_misnamed_examples"].append([kind, k, r["first_bad"]])
            if len(cli) < cli_cases and got["cases"] <= max(1, cli_cases // len(KINDS)):
                cli.append((kind, data, k))
        out["tamper_by_kind"][kind] = got
    # the real command line on a sample
    cli_bad = 0
    keyfile = None
    with tempfile.TemporaryDirectory() as d:
        keyfile = os.path.join(d, "dev.key")
        with open(keyfile, "w") as f:
            f.write(KEY.hex() + "\n")
        os.chmod(keyfile, 0o600)
        for i, (kind, data, k) in enumerate(cli):
            path = os.path.join(d, "t%d.log" % i)
            with open(path, "wb") as f:
                f.write(data)
            p = subprocess.run([sys.executable, "-m", "ovenctl", "verify", "--key", keyfile, path],
                               capture_output=True, text=True, timeout=120)
            named = k is None or ("record #%d " % k) in p.stdout
            if p.returncode not in (1, 2) or not named or "Traceback" in p.stderr:
                cli_bad += 1
        path = os.path.join(d, "orig.log")
        with open(path, "wb") as f:
            f.write(log)
        p = subprocess.run([sys.executable, "-m", "ovenctl", "verify", "--key", keyfile, path],
                           capture_output=True, text=True, timeout=120)
        out["tamper_untouched_cli_exit"] = p.returncode
    out["tamper_examples_cut"] = True
    out["tamper_undetected_examples"] = out["tamper_undetected_examples"][:5]
    out["tamper_misnamed_examples"] = out["tamper_misnamed_examples"][:5]
    out.update({"tamper_cases": cases, "tamper_undetected": undetected, "tamper_misnamed": misnamed,
                "tamper_cli_cases": len(cli), "tamper_cli_wrong": cli_bad,
                "tamper_wall_s": round(time.time() - t0, 1)})
    return out


if __name__ == "__main__":
    r = campaign(int(sys.argv[1]) if len(sys.argv) > 1 else 240, cli_cases=12)
    print(json.dumps(r, indent=1))
