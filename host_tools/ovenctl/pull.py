"""Resumable, verified copies of run logs from the device (`ovenctl pull`), through the run
protocol while a test runs and through the raw REPL when the device is idle.

Contract: `pull()` copies into out_dir/<run>.log by way of <run>.log.part and its sidecar
<run>.log.part.json (the verified offset, fsynced at least every SIDE_EVERY bytes): an interrupted
pull resumes there and never trusts bytes beyond it. A copy is complete only when every chunk's CRC
and the whole file's sha256 (computed on the device) agree; a file is deleted on the device only
when asked, only when idle, and only while its sha256 still equals the verified copy's.
"""
import hashlib
import json
import os
import sys
import time

from ovenctl.protocol import RunLink, probe
from ovenctl.rawrepl import RUNS_DIR, RawRepl
from ovenctl.transport import DeviceError, LinkError, Port

RUN_READ = 65536            # run protocol: bytes per READ request
RAW_PER_EXEC = 65536        # raw REPL: bytes per exec (bounds what a killed pull leaves queued)
SIDE_EVERY = 65536          # sidecar (verified offset) written at least every this many bytes


class Progress:
    """A one-line progress bar (bytes, percent, rate since begin()) on stderr; silent unless enabled."""

    def __init__(self, enabled, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.name = ""
        self.total = 0
        self.t0 = time.monotonic()
        self.start_off = 0

    def begin(self, name, done, total):
        self.name, self.total, self.start_off, self.t0 = name, total, done, time.monotonic()
        self.update(done)

    def update(self, done):
        if not self.enabled:
            return
        total = max(self.total, done, 1)
        frac = done / total
        width = 30
        fill = int(frac * width)
        dt = time.monotonic() - self.t0
        rate = (done - self.start_off) / dt if dt > 0 else 0
        self.stream.write("\r%-16s [%s%s] %5.1f%% %8.1f / %.1f kB %7.1f kB/s" % (
            self.name[:16], "#" * fill, "." * (width - fill), 100 * frac, done / 1000, total / 1000, rate / 1000))
        self.stream.flush()

    def end(self):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


class PullResult(dict):
    """One copied run: run, path, size, sha256, state, mode, resumed_from, deleted (see pull())."""


def _sidecar(path):
    return path + ".json"


def _load_partial(part, run_id):
    """Verified offset of a partial copy (truncating the file to it), 0 without one."""
    side = _sidecar(part)
    if not (os.path.exists(part) and os.path.exists(side)):
        return 0
    try:
        with open(side) as f:
            st = json.load(f)
        off = int(st.get("offset", 0))
        if st.get("run") != run_id or off < 0:
            return 0
    except (OSError, ValueError, TypeError):
        return 0
    size = os.path.getsize(part)
    if size < off:
        return 0
    with open(part, "r+b") as f:
        f.truncate(off)
    return off


def _save_sidecar(part, run_id, offset, device_size, port):
    side = _sidecar(part)
    tmp = side + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"run": run_id, "offset": offset, "device_size": device_size, "port": port,
                   "updated": time.time()}, f)
    os.replace(tmp, side)


class _Sink:
    """The local partial file: appends verified chunks, fsyncs and records the verified offset."""

    def __init__(self, part, run_id, offset, port_path, progress):
        self.part = part
        self.run_id = run_id
        self.off = offset
        self.port_path = port_path
        self.progress = progress
        self.device_size = 0
        self.f = open(part, "r+b" if os.path.exists(part) else "w+b")
        self.f.seek(offset)
        self.f.truncate(offset)
        self._synced_offset = offset

    def __call__(self, off, data):
        if off != self.off:
            raise LinkError("out-of-order chunk at %d (have %d)" % (off, self.off))
        self.f.write(data)
        self.off += len(data)
        if self.off - self._synced_offset >= SIDE_EVERY:
            self.checkpoint()
        self.progress.update(self.off)

    def checkpoint(self):
        self.f.flush()
        os.fsync(self.f.fileno())
        self._synced_offset = self.off
        _save_sidecar(self.part, self.run_id, self.off, self.device_size, self.port_path)

    def sha256(self):
        self.f.flush()
        h = hashlib.sha256()
        self.f.seek(0)
        while True:
            b = self.f.read(1 << 20)
            if not b:
                break
            h.update(b)
        self.f.seek(self.off)
        return h.hexdigest()

    def restart(self):
        self.f.seek(0)
        self.f.truncate(0)
        self.off = 0
        self._synced_offset = 0
        _save_sidecar(self.part, self.run_id, 0, self.device_size, self.port_path)

    def close(self):
        self.f.close()


def _file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def pull(port_path, out_dir, run=None, all_runs=False, delete_after=False, follow=False, progress=None,
         log=None, runs_dir=RUNS_DIR, follow_poll_s=1.0, max_wait_s=None):
    """Copy run logs from the device to out_dir. Returns a list of PullResult dicts:
    run, path, size, sha256, state ("complete" | "partial" | "up to date"), mode ("run" | "idle" |
    "mixed"), resumed_from, deleted."""
    log = log or (lambda msg: None)
    progress = progress or Progress(False)
    os.makedirs(out_dir, exist_ok=True)
    results = []
    t_end = time.monotonic() + max_wait_s if max_wait_s else None
    with Port(port_path) as port:
        mode, info = probe(port)
        runs = _list(port, mode, runs_dir)
        if run is not None:
            sel = [r for r in runs if r["run"] == run]
            if not sel:
                raise DeviceError(5, "NOENT", "no run %r on the device (runs: %s)" % (
                    run, ", ".join(r["run"] for r in runs) or "none"))
        elif all_runs:
            sel = runs
        else:
            sel = runs[-1:]
            if not sel:
                raise DeviceError(5, "NOENT", "no run logs on the device")
        for r in sel:
            res = _pull_one(port, r["run"], out_dir, runs_dir, follow, progress, log, t_end, follow_poll_s)
            if delete_after and res["state"] in ("complete", "up to date"):
                res["deleted"] = _delete(port, r["run"], runs_dir, res["sha256"], log)
            results.append(res)
    return results


def _list(port, mode, runs_dir):
    if mode == "run":
        return RunLink(port).list_runs()
    raw = RawRepl(port)
    raw.enter()
    try:
        return raw.list_runs(runs_dir)
    finally:
        raw.exit()


def _delete(port, run_id, runs_dir, sha, log):
    mode, _ = probe(port)
    if mode != "idle":
        log("%s: not deleted on the device: a test is running (pull --delete-after again when idle)" % run_id)
        return False
    raw = RawRepl(port)
    raw.enter()
    try:
        path = "%s/%s.log" % (runs_dir, run_id)
        dev_sha, _ = raw.sha256(path)
        if dev_sha != sha:
            log("%s: not deleted: the device file changed since the copy" % run_id)
            return False
        raw.remove(path)
        log("%s: deleted on the device after a verified copy" % run_id)
        return True
    finally:
        raw.exit()


def _pull_one(port, run_id, out_dir, runs_dir, follow, progress, log, t_end, follow_poll_s=1.0):
    final = os.path.join(out_dir, run_id + ".log")
    part = final + ".part"
    dev_path = "%s/%s.log" % (runs_dir, run_id)
    offset = _load_partial(part, run_id)
    resumed_from = offset
    if offset:
        log("%s: resuming at offset %d (verified partial copy)" % (run_id, offset))
    if not offset and os.path.exists(final):
        # already pulled? compare with the device before copying again
        mode, _ = probe(port)
        local_size = os.path.getsize(final)
        dev_sha = None
        if mode == "idle":
            raw = RawRepl(port)
            raw.enter()
            try:
                dev_sha, dev_size = raw.sha256(dev_path)
            finally:
                raw.exit()
        else:
            link = RunLink(port)
            entry = [r for r in link.list_runs() if r["run"] == run_id]
            if entry and not entry[0]["active"] and entry[0]["size"] == local_size:
                dev_sha, dev_size = link.hash(run_id, local_size), local_size
        if dev_sha is not None and dev_sha == _file_sha256(final):
            log("%s: up to date (%d bytes, sha256 %s)" % (run_id, dev_size, dev_sha[:16]))
            return PullResult(run=run_id, path=final, size=dev_size, sha256=dev_sha, state="up to date",
                              mode=mode, resumed_from=0, deleted=False)
    sink = _Sink(part, run_id, offset, port.path, progress)
    modes = set()
    restarted = False
    failures = 0
    try:
        while True:
            mode, _ = probe(port)
            modes.add(mode)
            try:
                if mode == "run":
                    # while following a growing log, chunk CRCs verify each pass; the whole copy is
                    # checked at the end (HASH here, or the idle whole-file sha256)
                    state = _pull_run_mode(port, run_id, sink, progress, verify=not follow)
                else:
                    state = _pull_idle(port, run_id, dev_path, sink, progress)
            except _Mismatch:
                if restarted:
                    raise LinkError("%s: the copy does not match the device twice in a row" % run_id)
                restarted = True
                log("%s: whole-file sha256 mismatch: copying again from the start" % run_id)
                sink.restart()
                continue
            except LinkError as e:
                failures += 1
                if mode == "run" and not isinstance(e, DeviceError) and failures <= 5:
                    # the test may have just ended (the device dropped to the REPL): look again
                    sink.checkpoint()
                    log("%s: %s; probing the device again" % (run_id, e))
                    continue
                raise
            failures = 0
            if state == "complete":
                break
            # the run is still writing this log
            if not follow or (t_end is not None and time.monotonic() > t_end):
                sink.checkpoint()
                progress.end()
                log("%s: test in progress: %d bytes copied and verified so far (partial copy kept in %s; "
                    "pull again to continue, or use --follow)" % (run_id, sink.off, part))
                return PullResult(run=run_id, path=part, size=sink.off, sha256=sink.sha256(), state="partial",
                                  mode="run", resumed_from=resumed_from, deleted=False)
            time.sleep(follow_poll_s)
        sha = sink.sha256()
        size = sink.off
        sink.f.flush()
        os.fsync(sink.f.fileno())
    finally:
        sink.close()
    progress.end()
    os.replace(part, final)
    try:
        os.unlink(_sidecar(part))
    except OSError:
        pass
    return PullResult(run=run_id, path=final, size=size, sha256=sha, state="complete",
                      mode=modes.pop() if len(modes) == 1 else "mixed", resumed_from=resumed_from, deleted=False)


class _Mismatch(LinkError):
    pass


def _pull_run_mode(port, run_id, sink, progress, verify=True):
    """Copy what the device has of run_id through the run protocol; verify the copied prefix by
    sha256 (always for a closed log, for the running test's log when `verify`).
    Returns "complete" (a closed log) or "partial" (the running test's log)."""
    link = RunLink(port)
    entry = [r for r in link.list_runs() if r["run"] == run_id]
    if not entry:
        raise DeviceError(5, "NOENT", "run %s is no longer on the device" % run_id)
    size = entry[0]["size"]
    active = entry[0]["active"]
    sink.device_size = size
    progress.begin(run_id, sink.off, size)
    if sink.off > size:
        raise _Mismatch("local copy longer than the device file")
    while sink.off < size:
        n = min(RUN_READ, size - sink.off)
        link.read(run_id, sink.off, n, sink)
    sink.checkpoint()
    if verify or not active:
        dev = link.hash(run_id, sink.off)
        if dev != sink.sha256():
            raise _Mismatch("sha256 mismatch")
    return "partial" if active else "complete"


def _pull_idle(port, run_id, dev_path, sink, progress):
    raw = RawRepl(port)
    raw.enter()
    try:
        dev_sha, size = raw.sha256(dev_path)
        sink.device_size = size
        progress.begin(run_id, sink.off, size)
        if sink.off > size:
            raise _Mismatch("local copy longer than the device file")
        while sink.off < size:
            n = min(RAW_PER_EXEC, size - sink.off)
            raw.read(dev_path, sink.off, n, sink)
        sink.checkpoint()
        if sink.sha256() != dev_sha:
            raise _Mismatch("sha256 mismatch")
    finally:
        raw.exit()
    return "complete"
