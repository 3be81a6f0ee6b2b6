# The application's control tick allocates nothing (proof under micropython.heap_lock() in the VM)
# and reacts to faults within the tick. Integer-only fake board: the simulated bench uses floats,
# which allocate on MicroPython, so it cannot serve here.
from array import array

from oven.run import app
from oven.core import codes as C
from oven.core import methods
from oven.store import runlog


class _Spi:
    def __init__(self):
        self.frame = bytearray(4)

    def set_c(self, temp_c_x100, fault_bits=0):
        t = (temp_c_x100 // 25) & 0x3FFF
        cj = (2300 * 16 // 100) & 0xFFF
        v = (t << 18) | (cj << 4) | fault_bits | ((1 << 16) if fault_bits else 0)
        self.frame[0] = (v >> 24) & 0xFF
        self.frame[1] = (v >> 16) & 0xFF
        self.frame[2] = (v >> 8) & 0xFF
        self.frame[3] = v & 0xFF

    def readinto(self, buf, write=0):
        f = self.frame
        buf[0] = f[0]
        buf[1] = f[1]
        buf[2] = f[2]
        buf[3] = f[3]


class _Pin:
    def value(self, v=None):
        return 1


class _Adc:
    def __init__(self):
        self.u16 = 6554 + 52428 * 3000 // 110000

    def read_u16(self):
        return self.u16


class _Val:
    def __init__(self, v):
        self.temp_c_x100 = v

    def read(self):
        return C.OK


class _Lc:
    def __init__(self):
        self.xs = array("i", [950000 + (i * 37) % 61 - 30 for i in range(64)])
        self.k = 0
        self.raw = 0

    def ready(self):
        return True

    def read(self):
        self.k = (self.k + 1) & 63
        self.raw = self.xs[self.k]
        return C.OK


class _Op:
    def prompt(self, code, cell):
        pass

    def poll(self):
        return C.EV_NONE


class _File:
    def __init__(self):
        self.n = 0
        self.flushes = 0

    def write(self, buf, off=0, n=-1):
        if n < 0:
            n = len(buf) - off
        self.n += n
        return n

    def flush(self):
        self.flushes += 1

    def close(self):
        pass


class FakeBoard:
    name = "fake"
    n_cells = 2

    def __init__(self, probe=False):
        from oven.drivers.max31855 import MAX31855
        from oven.drivers.pressure import PressureTransducer
        self.spi = _Spi()
        self.spi.set_c(11975)
        self.tc = MAX31855(self.spi, _Pin())
        if probe:
            # the reference probe in a dummy cell: a second MAX31855 (its own chip select)
            self.pspi = _Spi()
            self.pspi.set_c(11950)
            self.probe = MAX31855(self.pspi, _Pin())
        self.adc = _Adc()
        self.pressure = PressureTransducer(self.adc, 6554, 6554 + 52428, span_pa=110000)
        self.lc_temp = _Val(3000)
        self.loadcells = [_Lc(), _Lc()]
        self.operator = _Op()
        self.now = 0
        self.duty = 0
        self.safe = 0
        self.feeds = 0

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b

    def wait_until_ms(self, t):
        self.now = t

    def outputs_safe(self):
        self.duty = 0
        self.safe += 1

    def heater_enable(self, on):
        pass

    def heater_set_duty_ppm(self, d):
        self.duty = d

    def pump_set(self, on):
        pass

    def vent_set(self, op):
        pass

    def buzzer_set(self, on):
        pass

    def wdt_feed(self):
        self.feeds += 1


def _blank():
    ch = {"k_num": 20, "k_den": 100, "var_k_num": 1, "var_k_den": 10000, "t_ref_num": 0, "t_ref_den": 1,
          "vac_offset_num": 170, "vac_offset_den": 1}
    return [ch, ch]


def _soaking_controller(key=None, f=None, probe=False, method="gb-2026", cal=None):
    b = FakeBoard(probe)
    m = methods.validate(method)
    f = _File() if f is None else f
    log = runlog.RunLog(2, key=key)
    log.open("x", {"run": "t"}, opener=lambda p, mode: f)
    c = app.Controller(b, m, blank=_blank(), log=log, counts_per_g=20972, cal=cal)
    c.start()
    for i in range(2):
        c._ref_zero[i] = 50000
        c._c0[i] = 900000
        c._d_div[i] = 900
    c.phase = app.PH_SOAK
    c.setpoint_c_x100 = 12000
    c.in_spec = 1
    for _ in range(30):        # warm-up: first readings, PID state
        c.step()
    return b, c, f


def test_control_tick_allocates_nothing():
    import micropython
    b, c, f = _soaking_controller()
    n_ev = len(c.events)
    ok = 0
    micropython.heap_lock()
    try:
        for _ in range(2000):
            c.step()
        ok = 1
    finally:
        micropython.heap_unlock()
    assert ok
    assert c.phase == app.PH_SOAK and len(c.events) == n_ev
    assert c.soak_in_spec_ms >= 2000000
    assert b.feeds >= 2000
    assert f.flushes >= 200          # synced every 10 s
    assert 0 < b.duty <= 1000000


def test_open_thermocouple_turns_heater_off_in_the_same_tick():
    b, c, f = _soaking_controller()
    assert b.duty > 0
    safe0 = b.safe
    b.spi.set_c(0, fault_bits=1)     # OC
    c.step()
    assert b.safe > safe0 and b.duty == 0
    assert c.phase == app.PH_ABORTED and c.fault == C.F_TC_OPEN
    assert c.final_verdict() == 5    # ABORTED


def test_overtemperature_cutoff():
    b, c, f = _soaking_controller()
    b.spi.set_c(13600)
    c.step()
    assert b.duty == 0 and c.fault == C.F_TEMP_MAX


def test_excursion_extends_the_soak():
    b, c, f = _soaking_controller()
    t0 = c.soak_in_spec_ms
    b.adc.u16 = 6554 + 52428 * 30000 // 110000      # 30 kPa: above the vacuum level
    for _ in range(100):
        c.step()
    assert c.soak_in_spec_ms == t0
    b.adc.u16 = 6554 + 52428 * 3000 // 110000
    for _ in range(100):
        c.step()
    assert c.soak_in_spec_ms == t0 + 100000 - 1000 or c.soak_in_spec_ms == t0 + 100000
    codes = [e[1] for e in c.events]
    assert C.E_EXCURSION_START in codes and C.E_EXCURSION_END in codes


class _StartOp:
    # presses START as soon as asked to load the cells
    def __init__(self):
        self.ev = C.EV_NONE

    def prompt(self, code, cell):
        if code == app.PR_LOAD:
            self.ev = C.EV_START

    def poll(self):
        ev = self.ev
        self.ev = C.EV_NONE
        return ev


def _locked_steps(c, ticks):
    import micropython
    ok = 0
    micropython.heap_lock()
    try:
        for _ in range(ticks):
            c.step()
        ok = 1
    finally:
        micropython.heap_unlock()
    return ok


def test_weighing_per_sample_path_allocates_nothing():
    # TARE and m0 windows fed at 10 SPS under heap_lock (100 ms sub-ticks and the control tick's
    # poll); only the first tick of a weighing (its limits) and the phase changes may allocate
    b = FakeBoard()
    b.adc.u16 = 6554 + 52428 * 100000 // 110000        # vented: 100 kPa
    b.spi.set_c(2300)
    b.lc_temp = _Val(2300)
    b.operator = _StartOp()
    m = methods.validate({"base": "gb-2026", "settle_s": 30})
    c = app.Controller(b, m, counts_per_g=20972)
    c.start()
    for _ in range(3):
        c.step()
    assert c.phase == app.PH_TARE and c._weighing and c._lim_set[0] == 1
    assert _locked_steps(c, 60)                 # 600 samples per channel: not yet stable (664 + hold)
    assert c.phase == app.PH_TARE and c.windows[0].count == 64
    for _ in range(200):
        if c.phase != app.PH_TARE:
            break
        c.step()
    assert c.phase == app.PH_LOAD
    for _ in range(5):
        c.step()
    assert c.phase == app.PH_INITIAL_WEIGH and not c._weighing          # settling (creep): 30 s
    assert _locked_steps(c, 20)                 # the per-tick path while settling
    for _ in range(15):
        c.step()
    assert c._weighing and c.settle_s_actual == 30
    c.step()
    assert _locked_steps(c, 50)                 # 500 samples: the window needs 684 to be stable
    assert c.phase == app.PH_INITIAL_WEIGH and c.windows[0].count == 64
    codes = [e[1] for e in c.events]
    assert C.E_SETTLE in codes and C.E_WEIGH_RETRY not in codes


def test_stop_during_settling_aborts():
    b = FakeBoard()
    b.adc.u16 = 6554 + 52428 * 100000 // 110000
    b.spi.set_c(2300)
    b.lc_temp = _Val(2300)
    b.operator = _StartOp()
    c = app.Controller(b, methods.validate("gb-2026"), counts_per_g=20972)
    c.start()
    for _ in range(200):
        c.step()
        if c.phase == app.PH_INITIAL_WEIGH:
            break
    for _ in range(100):
        c.step()
    assert c.phase == app.PH_INITIAL_WEIGH and not c._weighing        # 900 s of settling
    b.operator.ev = C.EV_STOP
    c.step()
    assert c.phase == app.PH_ABORTED and c.fault == C.F_OPERATOR_ABORT


class _KeepFile:
    # keeps what is written, in a preallocated buffer (writes run under heap_lock)
    def __init__(self, cap=65536):
        self.data = bytearray(cap)
        self.n = 0
        self.flushes = 0

    def write(self, buf, off=0, n=-1):
        if n < 0:
            n = len(buf) - off
        d = self.data
        p = self.n
        for i in range(n):
            d[p + i] = buf[off + i]
        self.n = p + n
        return n

    def flush(self):
        self.flushes += 1

    def close(self):
        pass


_KEY = bytes(range(32))


def _sealed_run(ticks, housekeep=True):
    import micropython
    b, c, f = _soaking_controller(_KEY, _KeepFile())
    log = c.log
    ok = 0
    for _ in range(ticks):
        ok = 0
        micropython.heap_lock()
        try:
            c.step()
            ok = 1
        finally:
            micropython.heap_unlock()
        if not ok:
            break
        if housekeep:
            c.housekeep()
    return c, log, f, ok


def test_sealed_log_tick_allocates_nothing_and_every_record_is_sealed():
    import io
    from oven.run import recovery as R
    c, log, f, ok = _sealed_run(1200)
    assert ok                                   # each control tick ran under heap_lock
    assert log.unsealed_bytes == 0
    c.abort()
    c.finish()                                  # VERDICT (with chain_hmac), END, the last SEAL
    data = bytes(f.data[0:f.n])
    st = R.scan(io.BytesIO(data), len(data), _KEY)
    assert st.end_seen and st.verdict_seen and st.seal_bad == -1
    assert st.chain is not None
    # every record but the last SEAL is covered by a SEAL: one tag is left, the last SEAL's
    assert len(st.tags) == 8 and st.tag_first == st.next_seq - 1
    n_seal = data.count(b"\xa5\x5a\x07")
    assert 1200 // 60 <= n_seal <= 1200 // 60 + 4     # one SEAL a minute (6 syncs), plus the last


def test_sealed_log_detects_a_changed_record_at_recovery():
    import io
    from oven.run import recovery as R
    c, log, f, ok = _sealed_run(300)
    assert ok
    c.abort()
    c.finish()
    data = bytearray(f.data[0:f.n])
    # change one sample byte inside the 5th BLOCK record and fix its CRC: only the seal can tell
    pos = -1
    for _ in range(5):
        pos = bytes(data).find(b"\xa5\x5a\x02", pos + 1)
    blen = data[pos + 3] | (data[pos + 4] << 8)
    data[pos + 5 + blen - 1] ^= 0x01
    crc = runlog.binascii.crc32(bytes(data[pos + 2:pos + 5 + blen])) & 0xFFFFFFFF
    for k in range(4):
        data[pos + 5 + blen + k] = (crc >> (8 * k)) & 0xFF
    st = R.scan(io.BytesIO(bytes(data)), len(data), _KEY)
    assert not st.damaged                       # CRCs and sequence all valid
    assert st.seal_bad > 0 and st.chain is None


def test_no_housekeeping_leaves_the_log_unsealed_but_the_run_unharmed():
    c, log, f, ok = _sealed_run(3000, housekeep=False)
    assert ok and c.running() and log.status == 0
    assert log.unsealed_bytes > 0               # chain broken: verify reports unsealed records
    assert log.chain_hex() is None


def test_chain_matches_hmac_sha256():
    from oven.store import seal
    ch = seal.Chain(_KEY)
    c1 = ch.record(b"abc" * 50)
    c2 = ch.record(b"\xa5\x5a")
    # reference values: CPython's hmac.new(key, c_prev + frame, hashlib.sha256)
    h1 = "".join("%02x" % x for x in c1)
    h2 = "".join("%02x" % x for x in c2)
    assert h1 == "ad8621dd165cdd588f4ee42a7fef75f161dbccfec1e692c63712b129175f4991"
    assert h2 == "8f45d7ab5298fae56fbe72f4ce032d45b948b1c45ad344a1acecd4323beac910"
    assert seal.key_id(_KEY) == "c8b4e4ecbf17aa14"
    try:
        import hmac
        import hashlib
    except ImportError:
        return                                  # MicroPython: no hmac module
    assert hmac.new(_KEY, bytes(32) + b"abc" * 50, hashlib.sha256).hexdigest() == h1


# ---- the reference probe (a thermocouple in a dummy cell): the soak is timed on the cell


def test_probe_tick_allocates_nothing():
    import micropython
    b, c, f = _soaking_controller(_KEY, _KeepFile(), probe=True)
    assert c.chamber_timed == 0 and c.probe_out == 0 and c.probe_c_x100 == 11950
    n_ev = len(c.events)
    seq0 = c.log._seq
    ok = 0
    micropython.heap_lock()
    try:
        for _ in range(600):
            c.step()
        ok = 1
    finally:
        micropython.heap_unlock()
    assert ok
    assert c.phase == app.PH_SOAK and c.in_spec == 1 and len(c.events) == n_ev
    assert c.soak_in_spec_ms >= 600000
    # E_PROBE_TEMP once a minute went straight into the log (records beyond the sample blocks)
    assert c.b.ticks_diff(c.now_ms, c._probe_ev_ms) < 60000
    assert c.log._seq - seq0 >= 600 // 60 + 600 // 10


def _heating_controller(probe=True, method="gb-2026", cal=None, chamber=12000, probe_c=11000):
    b = FakeBoard(probe)
    b.spi.set_c(chamber)
    if probe:
        b.pspi.set_c(probe_c)
    b.adc.u16 = 6554 + 52428 * 3000 // 110000
    c = app.Controller(b, methods.validate(method), blank=_blank(), counts_per_g=20972, cal=cal)
    c.start()
    for i in range(2):
        c._ref_zero[i] = 50000
        c._c0[i] = 900000
        c._d_div[i] = 900
    c._enter(app.PH_HEATUP)
    c.setpoint_c_x100 = 12000
    return b, c


def _flags_seen(c, n):
    out = []
    for _ in range(n):
        c.step()
        out.append(c._flags())
    return out


def test_probe_lagging_the_chamber_delays_the_soak_clock():
    b, c = _heating_controller(probe_c=11000)
    fl = _flags_seen(c, 300)                        # chamber in band, the cell 10 degC below
    assert c.phase == app.PH_HEATUP
    assert all(x & C.SF_PROBE_OUT and not x & C.SF_CHAMBER_TIMED for x in fl)
    b.pspi.set_c(11850)                             # the cell reaches the band: 60 s hold, then SOAK
    _flags_seen(c, 59)
    assert c.phase == app.PH_HEATUP
    fl = _flags_seen(c, 3)
    assert c.phase == app.PH_SOAK and not fl[-1] & C.SF_PROBE_OUT
    assert c.no_pass == [[], []]                    # timed on the cell: nothing bars a PASS
    t_in = c.soak_in_spec_ms
    # the probe's deviation alone is an excursion: no soak time while it lasts
    b.pspi.set_c(11775)
    fl = _flags_seen(c, 30)
    assert c.in_spec == 0 and c.soak_in_spec_ms == t_in + 0
    assert all(x & C.SF_PROBE_OUT and not x & C.SF_IN_SPEC for x in fl)
    b.pspi.set_c(11900)
    _flags_seen(c, 10)
    assert c.in_spec == 1 and c.soak_in_spec_ms == t_in + 10000
    codes = [e[1] for e in c.events]
    assert C.E_EXCURSION_START in codes and C.E_EXCURSION_END in codes
    # every change of the probe's tolerance state is an E_PROBE_TEMP event with its reading
    pt = [e for e in c.events if e[1] == C.E_PROBE_TEMP]
    assert [e[2] for e in pt] == [11850, 11775, 11900] and pt[-1][3] == C.OK
    # an unread probe counts as out of tolerance, with -32768 in its event
    b.pspi.set_c(0, fault_bits=1)
    fl = _flags_seen(c, 5)
    assert c.probe_status == C.ST_TC_OPEN and c.in_spec == 0 and fl[-1] & C.SF_PROBE_OUT
    e = [e for e in c.events if e[1] == C.E_PROBE_TEMP][-1]
    assert e[2] == -32768 and e[3] == C.ST_TC_OPEN
    assert c.phase == app.PH_SOAK                   # not a fault by itself: the soak waits


def test_run_without_a_probe_is_chamber_timed():
    for method, barred in (("gb-2026", True), ({"base": "gb-2026", "chamber_timed_pass": "yes"}, False)):
        b, c = _heating_controller(probe=False, method=method)
        assert c.chamber_timed == 1
        fl = _flags_seen(c, 62)
        assert c.phase == app.PH_SOAK
        assert all(x & C.SF_CHAMBER_TIMED and not x & C.SF_PROBE_OUT for x in fl)
        if barred:
            assert c.no_pass == [[C.NP_CHAMBER_TIMED], [C.NP_CHAMBER_TIMED]]
            assert [e[2:] for e in c.events if e[1] == C.E_NO_PASS] == [[C.NP_CHAMBER_TIMED, -1]]
        else:
            assert c.no_pass == [[], []]
        assert not [e for e in c.events if e[1] == C.E_PROBE_TEMP]


def test_probe_overtemperature_is_a_fault():
    b, c = _heating_controller(probe_c=11900)
    _flags_seen(c, 5)
    b.pspi.set_c(13600)
    c.step()
    assert c.phase == app.PH_ABORTED and c.fault == C.F_TEMP_MAX and b.duty == 0


def test_heatup_timeout_for_the_chamber_then_probe_wait_for_the_cell():
    m = {"base": "gb-2026", "heatup_timeout_s": 300, "probe_wait_s": 600}
    # 116 degC: outside the tolerance, inside the guard's hysteresis (no heating-gain check)
    b, c = _heating_controller(method=m, chamber=11600, probe_c=5000)
    _flags_seen(c, 290)
    b.spi.set_c(12000)                              # the oven reaches the band at 290 s
    _flags_seen(c, 600)
    assert c.phase == app.PH_HEATUP                 # 890 s: the cell has its own 600 s
    _flags_seen(c, 5)
    assert c.phase == app.PH_ABORTED and c.fault == C.F_HEATUP_TIMEOUT
    assert c.events[-2][2] == 5000                  # the fault's value: the probe's reading
    b, c = _heating_controller(method=m, chamber=11600, probe_c=11900)
    _flags_seen(c, 299)
    assert c.phase == app.PH_HEATUP
    _flags_seen(c, 3)
    assert c.phase == app.PH_ABORTED and c.fault == C.F_HEATUP_TIMEOUT


def test_thermocouple_offsets_are_added_to_the_readings():
    cal = app._default_cal(2, 20972)
    cal["tc_offset_c_x100"] = {"chamber": -150, "probe": 75}
    b, c = _heating_controller(cal=cal, chamber=12000, probe_c=11800)
    c.step()
    assert c.temp_c_x100 == 11850 and c.probe_c_x100 == 11875
    # the PID and the guards see the corrected chamber: 134.00 raw + 1.50 is over the cutoff
    cal["tc_offset_c_x100"] = {"chamber": 150, "probe": 0}
    b, c = _heating_controller(cal=cal, chamber=13400, probe_c=11800)
    c.step()
    assert c.fault == C.F_TEMP_MAX


# ---- heat_in / cool_in (docs/APP.md "Heating and cooling")
def _preheating_controller(method="gb-2026", probe=True, chamber=11975, probe_c=11000):
    # after the m0 weighing: vented at 100 kPa, the oven warm, the cell (probe) lagging
    b = FakeBoard(probe)
    b.spi.set_c(chamber)
    if probe:
        b.pspi.set_c(probe_c)
    b.adc.u16 = 6554 + 52428 * 100000 // 110000
    pumps = []
    b.pump_set = pumps.append
    c = app.Controller(b, methods.validate(method), blank=_blank(), counts_per_g=20972)
    c.start()
    for i in range(2):
        c._ref_zero[i] = 50000
        c._c0[i] = 900000
        c._d_div[i] = 900
    c._heat_start()
    return b, c, pumps


def test_preheat_tick_allocates_nothing_and_waits_for_the_cell_band():
    b, c, pumps = _preheating_controller(probe_c=11850)     # in the tolerance, 1.5 degC below: not in the band
    assert c.phase == app.PH_PREHEAT and c.heat_air == 1 and c.setpoint_c_x100 == 12000
    for _ in range(5):
        c.step()
    n_ev = len(c.events)
    assert _locked_steps(c, 300)
    assert c.phase == app.PH_PREHEAT and len(c.events) == n_ev
    # heating in air: chamber closed, pump off, the heater working, nothing counted as soak
    assert c.pump == 0 and c.vent == 0 and pumps == [] and b.duty > 0
    assert c.soak_in_spec_ms == 0 and c.in_spec == 0
    b.pspi.set_c(11975)                                     # the cell within 0.5 degC: 60 s hold
    _flags_seen(c, 60)
    assert c.phase == app.PH_PREHEAT
    _flags_seen(c, 2)
    assert c.phase == app.PH_PUMPDOWN and c.pump == 1 and pumps == [1]
    e = [e for e in c.events if e[1] == C.E_PREHEAT_DONE]
    assert len(e) == 1 and e[0][2] == 11975 and e[0][3] == 11975
    assert c.setpoint_c_x100 == 12000 and b.duty > 0        # the PID holds the setpoint in the pump-down


def test_preheat_needs_the_chamber_in_tolerance_too_and_times_out():
    m = {"base": "gb-2026", "heatup_timeout_s": 300, "probe_wait_s": 600}
    b, c, _ = _preheating_controller(method=m, chamber=11600, probe_c=12000)
    _flags_seen(c, 299)
    assert c.phase == app.PH_PREHEAT                        # the cell in band, the chamber 4 degC low
    _flags_seen(c, 3)
    assert c.phase == app.PH_ABORTED and c.fault == C.F_HEATUP_TIMEOUT
    # the chamber in tolerance at 100 s, the cell never in the band: probe_wait_s from then
    b, c, _ = _preheating_controller(method=m, chamber=11600, probe_c=11500)
    _flags_seen(c, 100)
    b.spi.set_c(12000)
    _flags_seen(c, 600)
    assert c.phase == app.PH_PREHEAT
    _flags_seen(c, 3)
    assert c.phase == app.PH_ABORTED and c.fault == C.F_HEATUP_TIMEOUT and c.events[-2][2] == 11500


def test_preheat_without_a_probe_uses_the_chamber_band():
    m = {"base": "gb-2026", "preheat_band_c_x100": 20}
    b, c, _ = _preheating_controller(method=m, probe=False, chamber=11950)   # in tolerance, 0.5 degC off
    _flags_seen(c, 200)
    assert c.phase == app.PH_PREHEAT
    b.spi.set_c(12000)
    _flags_seen(c, 62)
    assert c.phase == app.PH_PUMPDOWN
    assert [e[2] for e in c.events if e[1] == C.E_PREHEAT_DONE] == [12000]


def test_heat_in_vacuum_pumps_down_first():
    b, c, pumps = _preheating_controller(method={"base": "gb-2026", "heat_in": "vacuum"})
    assert c.heat_air == 0 and c.phase == app.PH_PUMPDOWN and c.setpoint_c_x100 == 0 and pumps == [1]


def test_pumpdown_seconds_at_the_method_conditions_are_soak_time():
    # heat_in air: once the vacuum is reached with the cell at temperature the soak clock runs
    # (IN_SPEC), through the leak check and HEATUP; heat_in vacuum counts only from SOAK
    for heat_in, credit in (("air", True), ("vacuum", False)):
        b, c, _ = _preheating_controller(method={"base": "gb-2026", "heat_in": heat_in}, probe_c=11975)
        c._enter(app.PH_PUMPDOWN)
        c._leak_stage = 0
        c.setpoint_c_x100 = 12000
        fl = _flags_seen(c, 10)                              # 100 kPa: not yet
        assert not any(x & C.SF_IN_SPEC for x in fl) and c.soak_in_spec_ms == 0
        b.adc.u16 = 6554 + 52428 * 4000 // 110000           # 4 kPa: the leak check starts
        fl = _flags_seen(c, 100)
        assert c.phase == app.PH_HEATUP
        assert all(x & C.SF_IN_SPEC for x in fl) == credit
        assert c.soak_in_spec_ms == (100000 if credit else 0) and c.soak_total_ms == c.soak_in_spec_ms
        fl = _flags_seen(c, 70)
        assert c.phase == app.PH_SOAK
        n = sum(1 for x in fl if x & C.SF_IN_SPEC)
        # the tick entering SOAK is logged IN_SPEC but not counted (as before): the samples count
        # one more than the device, as verify expects
        assert c.soak_in_spec_ms // 1000 == (100 if credit else 0) + n - 1


def test_cool_in_air_vents_at_the_soak_end():
    for cool_in, vented in (("air", 1), ("vacuum", 0)):
        b, c, f = _soaking_controller(method={"base": "gb-2026", "cool_in": cool_in, "soak_s": 60,
                                              "soak_max_total_s": 600})
        vents = []
        b.vent_set = vents.append
        for _ in range(100):
            c.step()
            if c.phase != app.PH_SOAK:
                break
        assert c.phase == app.PH_COOLDOWN and c.setpoint_c_x100 == 0 and b.duty == 0
        assert c.vent == vented and vents == ([1] if vented else [])
        assert c._flags() & C.SF_VENT == (C.SF_VENT if vented else 0)
        b.spi.set_c(8000)                                    # cooling
        _flags_seen(c, 30)
        assert c.vent == vented and (c.pump == 0 if vented else True)
        assert _locked_steps(c, 30)                          # the cooldown tick allocates nothing


def test_a_pumpdown_fault_tick_is_not_soak_time():
    # the leak check fails in the soak credit: the fault tick is neither logged nor counted
    b, c, _ = _preheating_controller(probe_c=11975)
    c._enter(app.PH_PUMPDOWN)
    c._leak_stage = 0
    c.setpoint_c_x100 = 12000
    b.adc.u16 = 6554 + 52428 * 4000 // 110000           # 4 kPa: the leak check starts, in spec
    logged = 0
    for _ in range(70):
        c.step()
        if c.phase == app.PH_ABORTED:
            break
        logged += 1 if c._flags() & C.SF_IN_SPEC else 0
        b.adc.u16 = 6554 + 52428 * 9000 // 110000       # rising to 9 kPa: 5 kPa/min > 500 Pa/min
    assert c.phase == app.PH_ABORTED and c.fault == C.F_LEAK_RATE
    assert logged == 60 and c.soak_in_spec_ms == logged * 1000 == c.soak_total_ms
