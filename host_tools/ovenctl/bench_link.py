"""Benchmark of the serial link: `ovenctl pull` against `mpremote fs cp` for a finished run log,
both on the same virtual device (ovenctl vdev) in one session.

    from ovenctl.bench_link import bench_pull
    bench_pull()  # {"pull_speedup": ..., "wire_bytes_per_log_byte": ..., ...}

pull_speedup = wall time of `mpremote connect PORT resume fs cp :runs/<id>.log DEST` divided by the
wall time of `ovenctl pull --port PORT --run <id> --out DIR` (both as subprocesses, the same file);
`resume` spares mpremote its soft reset, so the ratio is conservative.
wire_bytes_per_log_byte = bytes that crossed the PTY in both directions during the ovenctl pull,
divided by the log's size.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from ovenctl.vdev import VDev

DEFAULT_SCENARIO = {"seed": 7, "blank_run": False}     # a full default test: 6 h soak, ~210 kB log


def _tool(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def make_finished_run(fs_dir, scenario=None, timeout_s=300):
    """Run a whole simulated test on a vdev at full speed; returns the run ID in fs_dir/runs."""
    from ovenctl.scenario import normalize
    scn = normalize(dict(scenario or DEFAULT_SCENARIO))
    dev = VDev(fs_dir, scenario=scn, speed=0, advertise=False, stderr=subprocess.PIPE)
    dev.start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = dev.proc.stderr.readline()
            if not line:
                raise RuntimeError("the virtual device stopped before the test ended")
            if b"test ended" in line:
                break
        else:
            raise RuntimeError("the simulated test did not end within %d s" % timeout_s)
    finally:
        dev.stop()
    runs = sorted(n[:-4] for n in os.listdir(os.path.join(fs_dir, "runs")) if n.endswith(".log"))
    return runs[-1]


def bench_pull(fs_dir=None, run_id=None, scenario=None, timeout_s=300):
    """Measure on one idle vdev whose flash (fs_dir) holds a finished run log (made with the
    default scenario when fs_dir is None)."""
    tmp = tempfile.mkdtemp(prefix="ovenctl-bench-link-")
    try:
        if fs_dir is None:
            fs_dir = os.path.join(tmp, "flash")
            run_id = make_finished_run(fs_dir, scenario, timeout_s)
        elif run_id is None:
            run_id = sorted(n[:-4] for n in os.listdir(os.path.join(fs_dir, "runs")) if n.endswith(".log"))[-1]
        with open(os.path.join(fs_dir, "runs", run_id + ".log"), "rb") as f:
            device_bytes = f.read()
        size = len(device_bytes)
        dev = VDev(fs_dir, advertise=False, stderr=subprocess.DEVNULL)
        dev.start()
        try:
            time.sleep(0.3)                 # boot (banner)
            # mpremote, as a user would copy the file
            mp_dest = os.path.join(tmp, "mpremote.log")
            t0 = time.monotonic()
            p = subprocess.run([_tool("mpremote"), "connect", dev.port, "resume", "fs", "cp",
                                ":runs/%s.log" % run_id, mp_dest], capture_output=True, timeout=timeout_s)
            t_mp = time.monotonic() - t0
            if p.returncode != 0:
                raise RuntimeError("mpremote failed: %s" % p.stderr.decode()[-500:])
            with open(mp_dest, "rb") as f:
                if f.read() != device_bytes:
                    raise RuntimeError("mpremote's copy differs from the device file")
            # ovenctl pull
            out_dir = os.path.join(tmp, "pulled")
            rx0, tx0 = dev.counters()
            t0 = time.monotonic()
            p = subprocess.run([sys.executable, "-m", "ovenctl", "pull", "--port", dev.port, "--run", run_id,
                                "--out", out_dir, "--no-progress", "--json"], capture_output=True,
                               timeout=timeout_s)
            t_pull = time.monotonic() - t0
            rx1, tx1 = dev.counters()
            if p.returncode != 0:
                raise RuntimeError("ovenctl pull failed: %s" % p.stderr.decode()[-500:])
            res = json.loads(p.stdout)[0]
            with open(os.path.join(out_dir, run_id + ".log"), "rb") as f:
                if f.read() != device_bytes:
                    raise RuntimeError("ovenctl pull's copy differs from the device file")
        finally:
            dev.stop()
        wire = (rx1 - rx0) + (tx1 - tx0)
        return {"pull_speedup": round(t_mp / t_pull, 2),
                "wire_bytes_per_log_byte": round(wire / size, 4),
                "log_bytes": size, "mpremote_s": round(t_mp, 3), "ovenctl_pull_s": round(t_pull, 3),
                "wire_bytes": wire, "wire_host_to_device": rx1 - rx0, "wire_device_to_host": tx1 - tx0,
                "sha256": res["sha256"], "run": run_id}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(bench_pull(), indent=1))
