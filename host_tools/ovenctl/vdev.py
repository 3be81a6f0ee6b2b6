"""The virtual device: the firmware in the MicroPython VM (node, vm/vdev.mjs) behind a
pseudo-terminal, so that serial tools (`mpremote`, `ovenctl status/pull`) talk to it like to a
board on /dev/ttyACM0.

    v = VDev(fs_dir, scenario=None, speed=600)
    v.start()            # v.port is "/dev/pts/N"
    ...
    v.stop()             # orderly: node syncs its files and exits
    v.kill()             # power cut: SIGKILL, unsynced data is lost

A bridge thread copies bytes between the PTY master and node's stdin/stdout (both directions
non-blocking, buffered) and counts them (`rx_bytes`: host -> device, `tx_bytes`: device -> host).
While running, a state file in runtime_dir() advertises the port for `ovenctl ports`.
"""
import json
import os
import selectors
import signal
import subprocess
import threading
import time
import tty

from ovenctl import vmrun

VDEV_MJS = os.path.join(vmrun.VM_SCRIPTS, "vdev.mjs")
STATE_PREFIX = "vdev-"
TX_BUFFER_MAX = 4 << 20     # device output kept for a port nobody reads


def runtime_dir():
    """Where running virtual devices advertise themselves: $OVENCTL_RUNTIME_DIR, else
    $XDG_RUNTIME_DIR/ovenctl, else /tmp/ovenctl-<uid>."""
    d = os.environ.get("OVENCTL_RUNTIME_DIR")
    if not d:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        d = os.path.join(xdg, "ovenctl") if xdg else "/tmp/ovenctl-%d" % os.getuid()
    return d


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def advertised():
    """Running virtual devices: list of state dicts (port, pid, fs, scenario, speed, started)."""
    d = runtime_dir()
    out = []
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return out
    for name in names:
        if not (name.startswith(STATE_PREFIX) and name.endswith(".json")):
            continue
        try:
            with open(os.path.join(d, name)) as f:
                st = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(st, dict) and _alive(int(st.get("pid", 0) or 0)) and os.path.exists(st.get("port", "")):
            out.append(st)
    return out


class VDevError(RuntimeError):
    pass


class VDev:
    def __init__(self, fs_dir, scenario=None, speed=600.0, heap_kb=8192, advertise=True, stderr=None):
        self.fs_dir = os.path.abspath(fs_dir)
        self.scenario = scenario
        self.speed = speed
        self.heap_kb = heap_kb
        self.advertise = advertise
        self.stderr = stderr
        self.port = None
        self.proc = None
        self.rx_bytes = 0
        self.tx_bytes = 0
        self._master = None
        self._slave = None
        self._thread = None
        self._stop = threading.Event()
        self._state_path = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------ lifecycle
    def start(self):
        vmrun.check_vm()
        os.makedirs(self.fs_dir, exist_ok=True)
        master, slave = os.openpty()
        tty.setraw(slave)            # no echo, no line editing: a byte pipe, like a USB CDC port
        self._master, self._slave = master, slave
        self.port = os.ttyname(slave)
        os.set_blocking(master, False)
        cmd = ["node", VDEV_MJS, "--fs", self.fs_dir, "--speed", repr(float(self.speed)),
               "--heap", str(self.heap_kb)]
        if self.scenario is not None:
            cmd += ["--scenario", json.dumps(self.scenario)]
        self.proc = subprocess.Popen(cmd, cwd=vmrun.ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, bufsize=0)
        os.set_blocking(self.proc.stdin.fileno(), False)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._thread = threading.Thread(target=self._bridge, name="vdev-bridge", daemon=True)
        self._thread.start()
        if self.advertise:
            self._write_state()
        return self

    def _write_state(self):
        d = runtime_dir()
        os.makedirs(d, mode=0o700, exist_ok=True)
        self._state_path = os.path.join(d, "%s%d.json" % (STATE_PREFIX, os.getpid()))
        st = {"port": self.port, "pid": os.getpid(), "node_pid": self.proc.pid, "fs": self.fs_dir,
              "scenario": (self.scenario or {}).get("seed") if self.scenario else None,
              "speed": self.speed, "started": time.time(), "kind": "ovenctl vdev"}
        tmp = self._state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(st, f)
        os.replace(tmp, self._state_path)

    def _remove_state(self):
        if self._state_path:
            try:
                os.unlink(self._state_path)
            except OSError:
                pass
            self._state_path = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout=None):
        return self.proc.wait(timeout)

    def stop(self, timeout=10):
        """Orderly stop: node syncs open files and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._shutdown()

    def kill(self):
        """Power cut: SIGKILL, nothing more reaches the flash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self._shutdown()

    def _shutdown(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None
        for f in (self.proc.stdin, self.proc.stdout) if self.proc else ():
            try:
                f.close()
            except OSError:
                pass
        self._remove_state()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------------------ the bridge
    def _bridge(self):
        master = self._master
        nin = self.proc.stdin.fileno()
        nout = self.proc.stdout.fileno()
        to_node = bytearray()       # host -> device bytes node has not accepted yet
        to_host = bytearray()       # device -> host bytes the PTY has not accepted yet
        sel = selectors.DefaultSelector()
        sel.register(nout, selectors.EVENT_READ, "nout")
        sel.register(master, selectors.EVENT_READ, "master")
        node_w = False
        master_w = False
        try:
            while not self._stop.is_set():
                for key, ev in sel.select(0.1):
                    if key.data == "nout":
                        try:
                            data = os.read(nout, 65536)
                        except BlockingIOError:
                            continue
                        if not data:            # node exited
                            return
                        with self._lock:
                            self.tx_bytes += len(data)
                        to_host += data
                        if len(to_host) > TX_BUFFER_MAX:
                            # nobody reads the port: like a USB host that stopped polling, the
                            # oldest output is lost
                            del to_host[:len(to_host) - TX_BUFFER_MAX]
                    elif key.data == "master":
                        if ev & selectors.EVENT_READ:
                            try:
                                data = os.read(master, 65536)
                            except BlockingIOError:
                                data = None
                            except OSError:
                                data = None     # EIO: no reader on the slave side
                            if data:
                                with self._lock:
                                    self.rx_bytes += len(data)
                                to_node += data
                if to_host:
                    try:
                        n = os.write(master, to_host)
                        del to_host[:n]
                    except BlockingIOError:
                        pass
                if to_node:
                    try:
                        n = os.write(nin, to_node)
                        del to_node[:n]
                    except BlockingIOError:
                        pass
                    except BrokenPipeError:
                        return
                want_mw = bool(to_host)
                if want_mw != master_w:
                    sel.modify(master, selectors.EVENT_READ | (selectors.EVENT_WRITE if want_mw else 0), "master")
                    master_w = want_mw
                want_nw = bool(to_node)
                if want_nw != node_w:
                    if want_nw:
                        sel.register(nin, selectors.EVENT_WRITE, "nin")
                    else:
                        sel.unregister(nin)
                    node_w = want_nw
        finally:
            sel.close()

    def counters(self):
        with self._lock:
            return self.rx_bytes, self.tx_bytes
