# Power-cut recovery at boot, the file side (session.recover() calls it, then the session releases
# it with recovery.py): every run log without END is resumed (the newest, when recovery.decide
# allows it) or closed INTERRUPTED; a torn tail is cut first. Policy: docs/APP.md "Power cuts".
import os

from oven import link
from oven.core import codes as C
from oven.run import recovery as R
from oven.run import session as S
from oven.store import runlog


def _finish_tmp(runs_dir, names):
    # a copy left by _cut_tail (RUN.log.tmp): if RUN.log is still there the rename did not happen
    # and the copy is dropped; if not, the copy is complete (RUN.log is removed only after it)
    for name in names:
        if name.endswith(".log.tmp"):
            tmp = runs_dir + "/" + name
            if name[:-4] in names:
                os.remove(tmp)
            else:
                os.rename(tmp, tmp[:-4])


def _cut_tail(path, valid_end):
    """Drop a torn tail (bytes after the last valid record) so that the records appended next
    follow the last valid one: copy the valid records into RUN.log.tmp, sync it, rename it over
    the log (atomic on littlefs: the log is whole before and after)."""
    tmp = path + ".tmp"
    src = open(path, "rb")
    try:
        dst = open(tmp, "wb")
        try:
            left = valid_end
            while left > 0:
                b = src.read(1024 if left > 1024 else left)
                if not b:
                    raise OSError(5)
                dst.write(b)
                left -= len(b)
            dst.flush()
        finally:
            dst.close()
    finally:
        src.close()
    try:
        os.rename(tmp, path)
    except OSError:
        os.remove(path)             # a filesystem whose rename does not replace (not littlefs)
        os.rename(tmp, path)


def _close_interrupted(path, st, method, reason, outage_s, key=None):
    """Append the records that end a run which is not resumed: an INTERRUPTED event, the
    INVALID event (F_INTERRUPTED) unless a fault or an invalid reason is already recorded, a
    VERDICT (INVALID, or ABORTED after a fault: never PASS) and END. A log whose VERDICT was
    already written only gets its END."""
    lg = st.header.get("log")
    lg = lg if isinstance(lg, dict) else {}
    log = runlog.RunLog(st.n_cells, lg.get("sync_every_s", 10), lg.get("keyframe_every", 6),
                        key=key if S._sealed(st.header) else None)
    log.reopen(path, st.next_seq, st.next_block, st.n_samples, st.last_t, st.valid_end, opener=open,
               chain=st.chain.c if st.chain is not None else None, tags_first=st.tag_first, tags=st.tags)
    if st.end_seen:
        # cut between END and its SEAL: only the SEAL is missing
        log.close(end=False)
        return
    if not st.verdict_seen:
        t = R.event_t_ms(st)
        log.event(t, C.E_INTERRUPTED, outage_s, reason)
        if not st.fault and not st.invalid:
            log.event(t, C.E_INVALID, C.F_INTERRUPTED, 0)
        log.verdict(R.verdict_record(st, method))
    log.close()
    if log.status:
        raise OSError(5, "the run log could not be closed")


def recover(bs, runs_dir, link_rx=None, link_tx=None, key=None):
    """At boot, before a new test: every run log without END was cut by a power loss or a reset.
    The newest may resume its soak (recovery.decide: docs/APP.md "Power cuts"), given a board
    with a resume plan (bs.resume_plan(header) -> plan, optional) and a battery-backed clock;
    every other one is closed INTERRUPTED. Returns the resumed Session, or None. A log without a
    valid header (a cut inside its very first write) is left as it is."""
    try:
        names = os.listdir(runs_dir)
    except OSError:
        return None
    _finish_tmp(runs_dir, names)
    names = [n for n in os.listdir(runs_dir) if n.endswith(".log")]
    names.sort()
    todo = []
    for name in names:
        path = runs_dir + "/" + name
        size = os.stat(path)[6]
        f = open(path, "rb")
        try:
            done = R.has_end(f, size)
            if done == 1 and key is not None:
                # closed, but a sealed log lacks the SEAL after END (cut between the two writes)
                if S._sealed(R.header(f, size)):
                    done = 0
        finally:
            f.close()
        if not done:
            todo.append((name, size))
    session = None
    for name, size in todo:
        path = runs_dir + "/" + name
        f = open(path, "rb")
        try:
            st = R.scan(f, size, key)
        finally:
            f.close()
        if st.header is None:
            print("main.py: %s has no valid header: left as it is" % name)
            continue
        if st.torn:
            _cut_tail(path, st.valid_end)
        m = R.method_of(st)
        latest = name == names[-1]
        plan = None
        rtc = None
        tc_ok = p_ok = False
        temp = p = 0
        rp = getattr(bs, "resume_plan", None) if bs is not None else None
        if rp is not None and R.candidate(st, m, latest) == R.RESUME:
            plan = rp(st.header)
            if plan is not None:
                b = plan.board
                rtc = S.rtc_s(b)
                tc_ok = b.tc.read() == C.OK
                temp = b.tc.temp_c_x100
                p_ok = b.pressure.read() == C.OK
                p = b.pressure.pa
        action, out = R.decide(st, m, plan is not None, rtc, tc_ok, temp, p_ok, p, latest)
        if action == R.RESUME:
            try:
                session = S.Session(plan, link_rx() if link_rx else link.RxRing(16), link_tx() if link_tx else None,
                                  runs_dir, resume=(name[:-4], st, out), key=key)
                print("main.py: test %s resumed after a power cut of %d s" % (name[:-4], out))
                continue
            except Exception as e:      # noqa: BLE001  then it is closed like any other
                print("main.py: resuming %s failed (%r)" % (name, e))
                session = None
                action = R.R_NO_PLAN
        _close_interrupted(path, st, m, action, out, key)
        print("main.py: run %s was cut by a power loss or reset: closed (%s)" % (name[:-4], R.REASON_NAMES[action]))
    return session
