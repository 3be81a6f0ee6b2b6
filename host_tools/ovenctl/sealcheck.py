"""Check a run log's seal with the device key (docs/LOGFORMAT.md §10), independently of the
firmware's seal.py: the standard library's hmac recomputes the chain

    c[-1] = 32 zero bytes,  c[n] = HMAC-SHA256(key, c[n-1] + frame[n])

over the records in file order. Record n (0-based, in file order) must carry seq n and its tag
c[n][:8] must be the one a SEAL record gives for seq n; the VERDICT's chain_hmac must be the c of
the record before it. Any changed, removed, inserted or reordered record breaks this at the
first such record, which is named; without the key nobody can compute matching tags."""
import hashlib
import hmac
import json

from ovenctl import keyfile
from ovenctl.logfile import T_END, T_SEAL, T_VERDICT

ALG = "hmac-sha256"


def _name(idx, r):
    return "record #%d (%s, seq %d, offset %d)" % (idx, r.name, r.seq, r.offset)


def check(data, log, key):
    """Returns {"status": "ok" | "bad" | "unsealed", "first_bad": {...} or None, "problems": [...],
    "records": n, "sealed": n, "key_id", "log_key_id"}."""
    hdr = log.header if isinstance(log.header, dict) else {}
    lg = hdr.get("log") if isinstance(hdr.get("log"), dict) else {}
    res = {"status": "bad", "first_bad": None, "problems": [], "records": len(log.records), "sealed": 0,
           "key_id": keyfile.key_id(key), "log_key_id": lg.get("key_id")}
    probs = res["problems"]
    if lg.get("seal") != ALG:
        res["status"] = "unsealed"
        probs.append("the log is not sealed (written without a device key): it cannot be proved unaltered")
        return res
    tags = {}
    for s in log.seals:
        for i in range(s["count"]):
            q = s["first"] + i
            t = s["tags"][8 * i:8 * i + 8]
            if q in tags and tags[q] != t:
                probs.append("SEAL at offset %d gives a second, different tag for seq %d" % (s["offset"], q))
            tags[q] = t

    def bad(idx, r, why):
        if res["first_bad"] is None:
            res["first_bad"] = {"index": idx, "seq": r.seq, "type": r.name, "offset": r.offset, "why": why}
            probs.append("first bad record: %s: %s" % (_name(idx, r), why))

    seal_at = {x["offset"]: x for x in log.seals}
    next_first = 0          # SEALs cover consecutive runs of records, in order, each before itself
    c = bytes(32)
    unsealed = []
    for idx, r in enumerate(log.records):
        prev = c
        c = hmac.new(key, prev + data[r.offset:r.offset + r.length], hashlib.sha256).digest()
        if r.seq != idx:
            bad(idx, r, "sequence number %d where %d was expected: records were removed, inserted or "
                        "reordered here" % (r.seq, idx))
            break
        if r.type == T_SEAL:
            sl = seal_at.get(r.offset)
            if sl is None or sl["first"] != next_first or sl["first"] + sl["count"] > idx:
                bad(idx, r, "a SEAL out of place (covers seq %s, the next SEAL must start at seq %d and cover "
                            "only records before it): SEAL records were removed, inserted or reordered"
                    % ("%d-%d" % (sl["first"], sl["first"] + sl["count"] - 1) if sl else "?", next_first))
                break
            next_first = sl["first"] + sl["count"]
        t = tags.get(idx)
        if t is None:
            # the last SEAL is covered by none; a SEAL is in the chain all the same, so a forged,
            # moved or duplicated one breaks the sequence or the chain after it
            if r.type != T_SEAL:
                unsealed.append(idx)
        elif not hmac.compare_digest(t, c[:8]):
            bad(idx, r, "does not match its seal: the record was changed, or records before it were "
                        "removed, inserted or reordered")
            break
        else:
            res["sealed"] += 1
        if r.type == T_VERDICT:
            got = _verdict_at(data, r)
            if not isinstance(got, dict) or got.get("chain_hmac") != prev.hex():
                bad(idx, r, "its chain_hmac is not the HMAC-SHA256 of the records before it")
                break
    if res["first_bad"] is None and unsealed:
        r = log.records[unsealed[0]]
        bad(unsealed[0], r, "%d record(s) from here on are covered by no SEAL (the log was cut before they "
                            "were sealed, or records were appended)" % len(unsealed))
    if res["first_bad"] is None and not any(r.type == T_END for r in log.records):
        probs.append("the log has no END: the run is not finished or the log was cut")
        res["status"] = "bad"
    elif res["first_bad"] is None and not probs:
        res["status"] = "ok"
    if res["first_bad"] is not None and res["first_bad"]["index"] == 0 and res["log_key_id"] != res["key_id"]:
        probs.append("this log names device key %s, the key file is %s: wrong key file?"
                     % (res["log_key_id"], res["key_id"]))
    return res


def _verdict_at(data, r):
    # the VERDICT's JSON object straight from its frame: body = seq varint + JSON
    i = r.offset + 5
    while data[i] & 0x80:
        i += 1
    try:
        return json.loads(data[i + 1:r.offset + r.length - 4].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def format_result(res):
    if res["status"] == "ok":
        return "seal: OK — all %d records sealed by device key %s; none changed, removed, inserted or reordered" % (
            res["records"], res["key_id"])
    head = "seal: NOT VERIFIED" if res["status"] == "unsealed" else "seal: BROKEN (device key %s)" % res["key_id"]
    return "\n".join([head] + ["  " + p for p in res["problems"]])

