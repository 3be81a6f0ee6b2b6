# The audit trail of calibration and configuration changes: /calib/audit.jsonl (append-only, one
# JSON line per change, "device" or "external") and its snapshot /calib/audit_state.json.
# Never loses a line; reads in 256-byte chunks. No machine, no time (the caller passes `when`).
# Record fields and repair rules: docs/MODULES.md "oven.store.audit", docs/APP.md "Audit trail".
import binascii
import json
import os

TRAIL_PATH = "/calib/audit.jsonl"
STATE_PATH = "/calib/audit_state.json"
HEADER_ENTRIES = 50         # entries a run header carries (the last ones of the trail)
MAX_LINE = 4096             # bytes kept of one line (a longer one is corrupt)
MAX_CORRUPT_LISTED = 10     # corrupt line numbers a run header lists (the count is complete)
BY_DEVICE = "device"
BY_EXTERNAL = "external"
_CHUNK = 256


# ---------------------------------------------------------------- values
def canon(v):
    """A deterministic JSON text of v (dict keys sorted): equal values give equal texts under
    CPython and MicroPython, and 1, 1.0 and true stay different."""
    if isinstance(v, dict):
        ks = sorted(v)
        return "{" + ",".join([json.dumps(k) + ":" + canon(v[k]) for k in ks]) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join([canon(x) for x in v]) + "]"
    return json.dumps(v)


def same(a, b):
    """canon(a) == canon(b), without building the two texts (their garbage): the same JSON types
    and values (1, 1.0 and true differ; a list equals a tuple), dict keys in any order."""
    if isinstance(a, dict):
        if not isinstance(b, dict) or len(a) != len(b):
            return False
        for k in a:
            if k not in b or not same(a[k], b[k]):
                return False
        return True
    if isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            return False
        for i in range(len(a)):
            if not same(a[i], b[i]):
                return False
        return True
    if type(a) is not type(b) or isinstance(b, (dict, list, tuple)):
        return False
    if isinstance(a, float):
        return json.dumps(a) == json.dumps(b)       # as canon compares them (NaN, precision)
    return a == b


def flatten(obj, prefix, out):
    """Nested dicts as dotted keys: flatten({"tc": "x", "spi": {"baud": 1}}, "config.board", d)
    sets d["config.board.tc"] and d["config.board.spi.baud"]. Other values are kept whole."""
    if isinstance(obj, dict):
        for k in obj:
            flatten(obj[k], prefix + "." + str(k), out)
    else:
        out[prefix] = obj
    return out


def blank_summary(fit):
    """What the trail keeps of a blank-run drift fit: its CRC-32 (of canon(fit): it tells fits
    apart; the run header holds the whole fit), the drift k per channel in milli-counts per degC
    and the fit points. None for no fit."""
    if fit is None:
        return None
    if isinstance(fit, list):
        # "runs_used" counts the tests that used the fit (plan.py): a use is not a change of it
        fit = [_without(ch, "runs_used") for ch in fit]
    crc = binascii.crc32(canon(fit).encode()) & 0xFFFFFFFF
    k = []
    pts = []
    if isinstance(fit, list):
        for ch in fit:
            kn = ch.get("k_num") if isinstance(ch, dict) else None
            kd = ch.get("k_den") if isinstance(ch, dict) else None
            if isinstance(kn, int) and isinstance(kd, int) and kd > 0:
                # k is in counts per 0.01 degC: x 100 000 = milli-counts per degC, rounded
                k.append((kn * 100000 * 2 + kd) // (2 * kd))
            else:
                k.append(None)
            pts.append(ch.get("points") if isinstance(ch, dict) else None)
    return {"crc32": "%08x" % crc, "k_mcounts_per_c": k, "points": pts}


def _without(d, key):
    if not isinstance(d, dict) or key not in d:
        return d
    d = dict(d)
    del d[key]
    return d


def entry_line(when, run, what, old, new, by):
    """One trail line (fixed key order, so the file reads the same from either Python)."""
    return ('{"when": %s, "run": %s, "what": %s, "old": %s, "new": %s, "by": %s}\n'
            % (json.dumps(when), json.dumps(run), json.dumps(what), json.dumps(old), json.dumps(new),
               json.dumps(by)))


def diff(old, new):
    """[(field, old value, new value)] of the fields that differ (sorted by field; a missing
    field is None)."""
    out = []
    keys = {}
    for k in old:
        keys[k] = 1
    for k in new:
        keys[k] = 1
    for k in sorted(keys):
        a = old.get(k)
        b = new.get(k)
        if not same(a, b):
            out.append((k, a, b))
    return out


# ---------------------------------------------------------------- reading, line by line
def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return 0


def lines(path, start=0):
    """Yield (offset, raw bytes, ok) per line of the file from byte `start`: ok is False for a
    line longer than MAX_LINE (cut to MAX_LINE bytes) or a last line without its newline (a torn
    write). Reads _CHUNK bytes at a time."""
    try:
        f = open(path, "rb")
    except OSError:
        return
    try:
        if start:
            f.seek(start)
        pos = start
        cur = b""
        over = False
        begin = pos
        while True:
            b = f.read(_CHUNK)
            if not b:
                if cur or over:
                    yield begin, cur, False
                return
            n = len(b)
            j = 0
            while j < n:
                i = b.find(b"\n", j)
                end = n if i < 0 else i
                if not over:
                    room = MAX_LINE - len(cur)
                    if end - j > room:
                        cur += b[j:j + room]
                        over = True
                    else:
                        cur += b[j:end]
                pos += end - j
                if i < 0:
                    break
                pos += 1
                yield begin, cur, not over
                cur = b""
                over = False
                begin = pos
                j = i + 1
    finally:
        f.close()


def parse(raw, ok=True):
    """The entry dict of one line, or None when it is corrupt."""
    if not ok:
        return None
    try:
        e = json.loads(raw.decode())
    except (ValueError, TypeError):         # UnicodeError is a ValueError
        return None
    if not isinstance(e, dict) or not isinstance(e.get("what"), str):
        return None
    return e


def printable(raw, n=80):
    """The start of a corrupt line as printable ASCII (anything else as '?')."""
    return "".join([chr(c) if 32 <= c < 127 else "?" for c in raw[:n]])


def replay(state, path, start=0):
    """Apply the trail's entries from byte `start` to `state` (a flat dict, changed in place):
    "audit.start" replaces it, a field entry sets the field (None removes it); corrupt lines and
    other "audit." entries are skipped. Returns state."""
    for _off, raw, ok in lines(path, start):
        e = parse(raw, ok)
        if e is None:
            continue
        w = e["what"]
        if w == "audit.start":
            nv = e.get("new")
            state.clear()
            if isinstance(nv, dict):
                for k in nv:
                    state[k] = nv[k]
        elif w.startswith("audit."):
            continue
        elif e.get("new") is None:
            if w in state:
                del state[w]
        else:
            state[w] = e.get("new")
    return state


def rtc_s(board):
    """The board's battery-backed clock in seconds, or None (no RTC, or not trustworthy)."""
    f = getattr(board, "rtc_s", None)
    if f is None:
        return None
    try:
        return f()
    except Exception:           # noqa: BLE001  a clock that fails is no clock
        return None


# ---------------------------------------------------------------- writing
def mkdir_parent(path):
    d = path[:path.rfind("/")]
    if d:
        try:
            os.mkdir(d)
        except OSError:
            pass


def append(text, path=TRAIL_PATH):
    """Append lines (text ending in a newline) in one write, flushed and closed. A last line
    left without its newline (a torn write) stays as it is: the new text starts on a line of its
    own. Returns the trail's size afterwards. OSError propagates."""
    mkdir_parent(path)
    size = _size(path)
    if size:
        f = open(path, "rb")
        try:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                text = "\n" + text
        finally:
            f.close()
    data = text.encode()
    f = open(path, "ab")
    try:
        f.write(data)
        f.flush()
    finally:
        f.close()
    return size + len(data)


def load_state(path=STATE_PATH):
    """The snapshot dict, or None (missing or unreadable)."""
    try:
        with open(path) as f:
            st = json.loads(f.read())
    except (OSError, ValueError):
        return None
    if not isinstance(st, dict) or not isinstance(st.get("state"), dict) or not isinstance(st.get("size"), int):
        return None
    return st


def write_atomic(path, text):
    """Write a file atomically (a new file renamed over the old one; its folder made if missing)."""
    mkdir_parent(path)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    try:
        os.rename(tmp, path)
    except OSError:
        try:
            os.remove(path)         # a filesystem whose rename does not replace (not littlefs)
        except OSError:
            pass
        os.rename(tmp, path)


def save_state(st, path=STATE_PATH):
    """Write the snapshot atomically."""
    write_atomic(path, json.dumps(st))


class Trail:
    """The trail file and its snapshot. Every method may raise OSError (flash full, a
    filesystem error): callers report it and carry on."""

    def __init__(self, path=TRAIL_PATH, state_path=STATE_PATH):
        self.path = path
        self.state_path = state_path

    def _current(self):
        """(snapshot, trail size, entries to append first): the snapshot brought up to date
        with the trail (a cut between an append and save_state), rebuilt from the trail when it
        is lost, or None when neither exists."""
        st = load_state(self.state_path)
        size = _size(self.path)
        pre = []
        if st is None:
            if size == 0:
                return None, 0, pre
            st = {"v": 1, "state": replay({}, self.path), "size": size, "mark": 0, "mark_line": 0, "run": None}
        elif size > st["size"]:
            replay(st["state"], self.path, st["size"])
            st["size"] = size
        elif size < st["size"]:
            pre.append(("audit.trail", st["size"], size))
            st["size"] = size
            if st.get("mark", 0) > size:
                st["mark"] = 0
                st["mark_line"] = 0
        return st, size, pre

    def check(self, current, when=None, run=None):
        """Compare `current` (a flat dict: field -> value) with the snapshot; append one
        "external" entry per changed field (the first time: one "audit.start" entry with the
        whole state) and update the snapshot. Returns the appended entries as dicts."""
        st, size, pre = self._current()
        out = []
        text = ""
        if st is None:
            st = {"v": 1, "state": {}, "size": 0, "mark": 0, "mark_line": 0, "run": None}
            cs = {}
            for k in current:
                if current[k] is not None:
                    cs[k] = current[k]
            out.append({"when": when, "run": run, "what": "audit.start", "old": None, "new": cs,
                        "by": BY_DEVICE})
        else:
            for w, a, b in pre:
                out.append({"when": when, "run": run, "what": w, "old": a, "new": b, "by": BY_EXTERNAL})
            for w, a, b in diff(st["state"], current):
                out.append({"when": when, "run": run, "what": w, "old": a, "new": b, "by": BY_EXTERNAL})
        if not out:
            return out
        for e in out:
            text += entry_line(e["when"], e["run"], e["what"], e["old"], e["new"], e["by"])
        st["size"] = append(text, self.path)
        s = {}
        for k in current:
            if current[k] is not None:
                s[k] = current[k]
        st["state"] = s
        save_state(st, self.state_path)
        return out

    def record(self, what, old, new, when=None, run=None, by=BY_DEVICE):
        """The firmware's own change of one field: append its entry, update the snapshot.
        Returns the entry."""
        st, size, pre = self._current()
        if st is None:
            st = {"v": 1, "state": {}, "size": 0, "mark": 0, "mark_line": 0, "run": None}
        text = ""
        for w, a, b in pre:
            text += entry_line(when, run, w, a, b, BY_EXTERNAL)
        text += entry_line(when, run, what, old, new, by)
        st["size"] = append(text, self.path)
        if new is None:
            if what in st["state"]:
                del st["state"][what]
        else:
            st["state"][what] = new
        save_state(st, self.state_path)
        return {"when": when, "run": run, "what": what, "old": old, "new": new, "by": by}

    def state(self):
        """The last-known state (flat dict), or None before the first check."""
        st, size, pre = self._current()
        return None if st is None else st["state"]

    def for_header(self, run_id, n=HEADER_ENTRIES, mark=True):
        """The trail for a run's log header: the last n entries (each with its 1-based "line";
        a corrupt line as {"line", "corrupt": its start}), "lines" in the trail, "since_line"
        (the first line added since the previous run's header took the trail), "prev_run",
        "omitted" (earlier lines not included: they stay in the trail file) and the corrupt
        lines of the whole trail. With mark, the snapshot remembers this run as the previous
        one. Reads the trail line by line, keeping at most n entries."""
        st, size, pre = self._current()
        if pre:
            text = ""
            for w, a, b in pre:
                text += entry_line(None, run_id, w, a, b, BY_EXTERNAL)
            size = st["size"] = append(text, self.path)
            if not mark:
                save_state(st, self.state_path)
        ring = []
        nl = 0
        corrupt = []
        n_corrupt = 0
        for _off, raw, ok in lines(self.path):
            nl += 1
            e = parse(raw, ok)
            if e is None:
                n_corrupt += 1
                if len(corrupt) < MAX_CORRUPT_LISTED:
                    corrupt.append(nl)
                e = {"line": nl, "corrupt": printable(raw)}
            else:
                e["line"] = nl
            ring.append(e)
            if len(ring) > n:
                ring.pop(0)
        since = 1
        prev = None
        if st is not None:
            since = st.get("mark_line", 0) + 1
            prev = st.get("run")
        out = {"trail": self.path, "lines": nl, "since_line": since, "prev_run": prev,
               "entries": ring, "omitted": nl - len(ring), "corrupt": n_corrupt, "corrupt_lines": corrupt}
        if mark and st is not None:
            st["mark"] = size
            st["mark_line"] = nl
            st["run"] = run_id
            save_state(st, self.state_path)
        return out
