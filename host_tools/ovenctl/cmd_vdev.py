"""`ovenctl vdev`: the firmware with the simulated bench in the MicroPython VM, behind a
pseudo-terminal: a virtual device for mpremote and the ovenctl serial commands."""
import os
import signal
import sys
import tempfile

from ovenctl import vmrun
from ovenctl.scenario import ScenarioError, load_scenario


def add_parser(sub):
    p = sub.add_parser("vdev", help="start a virtual device (firmware + simulated bench) on a pseudo-terminal",
                       description="Starts the firmware with the simulated bench in the MicroPython VM behind a "
                                   "pseudo-terminal and prints the terminal's path on the first line of stdout. "
                                   "Idle, the device is a normal MicroPython board (mpremote exec, fs ls/cp, "
                                   "soft-reset). With --scenario the simulated test (blank run, then the test, "
                                   "run log in /runs/<run_id>.log) starts at once and the device answers the "
                                   "run protocol (docs/PROTOCOL.md) until it ends. The device's flash is the "
                                   "--fs directory: what the firmware synced survives a kill. Runs until "
                                   "interrupted (Ctrl-C / SIGTERM).")
    p.add_argument("--scenario", metavar="FILE", help="scenario JSON file (docs/SCENARIO.md): start this test at power-on")
    p.add_argument("--speed", type=float, default=600.0, metavar="N",
                   help="simulated seconds per wall-clock second during a test (default 600; 0 = as fast as possible)")
    p.add_argument("--fs", metavar="DIR", help="host directory holding the device's flash (created if missing; "
                                               "default: a new temporary directory, kept after exit)")
    p.add_argument("--heap", type=int, default=8192, metavar="KB", help="MicroPython heap size (default 8192)")
    p.set_defaults(func=run)


def run(args):
    from ovenctl.cli import UserError
    from ovenctl.vdev import VDev
    scn = None
    if args.scenario:
        try:
            scn = load_scenario(args.scenario)
        except ScenarioError as e:
            raise UserError("%s: %s" % (args.scenario, e))
    if args.speed < 0:
        raise UserError("--speed must be >= 0")
    if args.heap < 256:
        raise UserError("--heap must be at least 256 KB")
    fs_dir = args.fs or tempfile.mkdtemp(prefix="ovenctl-vdev-fs-")
    if os.path.exists(fs_dir) and not os.path.isdir(fs_dir):
        raise UserError("--fs: %s is not a directory" % fs_dir)
    dev = VDev(fs_dir, scenario=scn, speed=args.speed, heap_kb=args.heap)
    try:
        dev.start()
    except vmrun.VMUnavailable as e:
        raise UserError(str(e))
    print(dev.port, flush=True)
    what = ("test of %s at %s sim s per s" % (args.scenario, ("%g" % args.speed) if args.speed else "max")
            if scn else "idle (REPL)")
    print("ovenctl vdev: virtual device on %s, flash %s, %s; Ctrl-C to stop" % (dev.port, fs_dir, what),
          file=sys.stderr, flush=True)
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_signal)
    try:
        while dev.running():
            try:
                dev.wait(0.5)
            except Exception:       # noqa: BLE001  subprocess.TimeoutExpired
                pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, old)
        rc = dev.proc.poll()
        dev.stop()
    if rc not in (None, 0):
        raise UserError("the virtual device stopped (node exit code %d)" % rc, code=1)
    return 0
