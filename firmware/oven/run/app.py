# The test application: phases of the vacuum mass-loss test, heater and vacuum control, safety,
# weighing and the verdict. Pure logic: hardware and time come only through the board object
# (docs/BOARD_API.md), so the same code runs on a Pico, an ESP32 and the simulated bench.
#
# Timing: one control tick per second (_TICK_MS). During weighings the loop also runs 100 ms
# sub-ticks that feed the load-cell windows at the HX711's 10 SPS. Allocation: the normal
# control tick (_tick) allocates nothing; phase changes, events and the verdict may.
from micropython import const
from array import array

from oven.core import codes as C
from oven.core import verdict as V
from oven.core.fixedpt import div_half_even
from oven.core.weigh import Window, W_STABLE, W_ERR_TIMEOUT, STATE_NAMES
from oven.control.pid import Pid
from oven.core.live import LiveEstimate
from oven.control.safety import HeaterGuard, VacuumGuard, LoadcellWatchdog

FW_VERSION = "0.4.0"

_TICK_MS = const(1000)
_SUB_MS = const(100)

# Phases, modes and prompts live in codes (part of the log format); re-exported for the callers
from oven.core.codes import (PH_IDLE, PH_PRECHECK, PH_TARE, PH_LOAD, PH_INITIAL_WEIGH, PH_PUMPDOWN, PH_HEATUP,
                   PH_SOAK, PH_COOLDOWN, PH_VENT, PH_FINAL_WEIGH, PH_LEAK_CHECK, PH_VERDICT, PH_DONE,
                   PH_ABORTED, PH_PREHEAT, PHASE_NAMES, MODE_TEST, MODE_BLANK, PR_LOAD, PR_LEAK)

_P_ATM_MIN_PA = const(90000)      # "vented": at least this pressure
_LEAK_TEST_MS = const(60000)      # pump isolated for this long during the leak-rate check
_PUMPDOWN_SLOW_MS = const(600000)  # a healthy chamber reaches the vacuum level well within this
_VENT_SETTLE_MS = const(600000)   # after venting: cells re-equilibrate in air before weighing
_SOAK_DEV_SKIP_MS = const(600000)  # soak_temp_max_dev ignores the first 10 minutes
_SOAK_ENTRY_HOLD_MS = const(60000)  # in tolerance and at vacuum this long before the soak clock starts
_VAC_LOST_GRACE_MS = const(1800000)  # a vacuum loss this long ends the run; shorter is an excursion
_LC_TIMEOUT_MS = const(5000)
_SPIKE_COUNTS = const(500)
_PROBE_MAX_C_X100 = const(13500)  # the dummy cell above this: a fault like the chamber's cutoff
_PROBE_EVENT_MS = const(60000)    # E_PROBE_TEMP once a minute in HEATUP, SOAK and COOLDOWN
_PROBE_UNREAD = const(-32768)     # E_PROBE_TEMP a when the probe gave no good reading
# Weighing stability (docs/APP.md "Weighing"): drift time base of the windows, in samples at 10 SPS
# (one minute: two window means a minute apart), and the empty-pan reference mass of the tare rule
_DRIFT_N = const(600)
_SPS = const(10)
_TARE_REF_MG = const(2000)        # the smallest cell the controller weighs (2 g)
_NO_CELL_COUNTS = const(1000)     # a pan less than this above its tare holds no cell
_LC_BAND_HOLD_S = const(60)       # load-cell temperature in the m0 band this long before m1 (noise)
_PREHEAT_HOLD_MS = const(60000)   # PREHEAT: chamber in tolerance and probe in the pre-heat band this long


def _default_cal(n, counts_per_g):
    """Calibration for a caller that passes none (the boards' plans always pass calstore.load()'s):
    the configured span on every channel, nothing measured (source "default"). The same dict as
    calstore.default_cal (test_calstore checks it); built here so that the core does not import
    the calibration store's file I/O."""
    ch = []
    for _ in range(n):
        ch.append({"counts_per_g": counts_per_g, "u_span_ppm": 0, "lin_dev_ug": 0, "lin_ref_ug": 0,
                   "span_tc_ppm_per_c": 15, "creep_ppm": 250, "creep_tau_s": 300, "cal_id": "", "when": None,
                   "counts_per_kg": counts_per_g * 1000})
    return {"source": "default", "channels": ch, "check": None,
            "tc_offset_c_x100": {"chamber": 0, "probe": 0}, "pid": None}


class Controller:
    def __init__(self, board, method, mode=MODE_TEST, blank=None, log=None, counts_per_g=C.DEFAULT_COUNTS_PER_G, cal=None):
        self.b = board
        # calibration (calstore.py / docs/APP.md): per-channel span, check-weight repeatability,
        # thermocouple offsets; None = defaults from counts_per_g, recorded as such
        self.cal = cal if cal is not None else _default_cal(board.n_cells, counts_per_g)
        # thermocouple offsets (ice point / reference thermometer), added to the raw readings
        off = self.cal.get("tc_offset_c_x100") or {}
        self._tc_off_c_x100 = int(off.get("chamber", 0))
        self._probe_off_c_x100 = int(off.get("probe", 0))
        # reference probe in a dummy cell (board.probe, optional): the soak is timed on it; without
        # it the run is "chamber-timed" (SF_CHAMBER_TIMED on every sample, NP_CHAMBER_TIMED)
        self._probe = getattr(board, "probe", None)
        self.chamber_timed = 1 if self._probe is None else 0
        self.probe_c_x100 = 0
        self.probe_status = C.ST_NO_DEVICE
        self.probe_out = 1          # fitted and outside the tolerance (or not read) this tick
        self._probe_ev_ms = 0
        self._chamber_band_ms = 0   # when the chamber first reached the band in HEATUP (0: not yet)
        self._oven_ok = 0           # HEATUP: chamber and vacuum in spec since the last tick
        self._pre_ok_ms = 0         # PREHEAT: when chamber and probe entered their bands (0: not now)
        # method choices resolved once (string compares stay off the tick): heat in air before the
        # pump-down, cool vented after the soak (docs/APP.md "Heating and cooling")
        self.heat_air = 1 if method.get("heat_in", "vacuum") == "air" else 0
        self.cool_air = 1 if method.get("cool_in", "vacuum") == "air" else 0
        self.m = method
        self.mode = mode
        self.blank = blank          # drift fit per channel (drift.DriftRecorder.fit()) or None
        self.log = log
        n = board.n_cells
        self.n = n
        self.pid = Pid()
        self.hguard = HeaterGuard(max_temp_c_x100=13500)
        self.vguard = VacuumGuard(limit_pa=method["vacuum_pa"], grace_ms=_VAC_LOST_GRACE_MS)
        self.lcdog = LoadcellWatchdog(n, timeout_ms=_LC_TIMEOUT_MS)
        # stable = sd of the window mean AND drift rate within limits scaled to the decision
        # (limit x m0), set per weighing and channel by _weigh_limits; the window needs the drift
        # time base before it can be stable, so the timeout is at least that long (plus margin)
        hold = method["stable_hold"]
        wn = method["window_n"]
        need = wn + _DRIFT_N + hold
        tmo = method["weigh_timeout_s"] * _SPS
        if tmo < 2 * need:
            tmo = 2 * need
        self._weigh_tmo_ms = tmo * _SUB_MS
        self.windows = [Window(n=wn, hold=hold, timeout_samples=tmo, spike_counts=_SPIKE_COUNTS,
                               sd_mean_counts=1, drift_counts_per_min=1, drift_n=_DRIFT_N, sps=_SPS)
                        for _ in range(n)]
        self._lim_set = bytearray(n)                # limits of this weighing set (per channel)
        self.weigh_limits = [[0, 0, 0] for _ in range(n)]   # per channel: sd, drift/min, basis counts
        self._weigh_kind = 0
        self._settle_t0_ms = 0
        self.settle_s_actual = 0    # seconds from START (cells loaded) to the start of the m0 window
        self._lcw = 0               # waiting for the load-cell temperature band before m1
        self._lcw_t0_ms = 0
        self._lc_band_s = 0         # consecutive ticks with the load-cell temperature in the band
        self.raw = array("i", bytes(4 * n))         # latest accepted raw per channel
        self._lograw = array("i", bytes(4 * n))     # as logged (runlog.MISSING when not fresh)
        self.valid = bytearray(n)
        self._glitches = array("i", bytes(4 * n))
        self.drift = None
        if mode == MODE_BLANK:
            # imported for the blank run only: the session releases it after the fit (docs/FIT.md)
            from oven.core import drift
            self.drift = drift.DriftRecorder(n)
        else:
            # the decision's code, loaded when a test starts rather than at its end, when the heap
            # is at its most fragmented (the heap gate, docs/FIT.md)
            from oven.run import decide  # noqa: F401
        self._fit_todo = 0
        self._cres = [None] * n         # per-cell results and budgets (_cell_verdict)
        self._cbud = [None] * n
        self._t_ref_c_x100 = 0
        self._ref_zero = array("i", bytes(4 * n))   # tare mean, counts
        self._c0 = array("i", bytes(4 * n))         # m0 net mean, counts
        self._d_div = array("i", bytes(4 * n))      # m0 net / 1000 (live ppm divisor)
        self.live = LiveEstimate(n, method["limit_ppm"], self._ref_zero, self._c0, self._d_div)
        self.live_ppm = self.live.ppm               # the display's and the status reply's view
        self.early_fail = self.live.early_fail
        self._spike_pending = bytearray(n)
        self._have_raw = 0
        self._retries = 0
        self._glitch_t_ms = 0
        self._entry_ok_ms = 0
        self._vac_exc = 0
        self.blank_error = None
        if blank is not None:
            self.live.set_blank(blank)
        # state
        self.phase = PH_IDLE
        self.t0_ms = 0
        self.now_ms = 0
        self.phase_t0_ms = 0
        self.temp_c_x100 = 0
        self.cj_c_x100 = 0
        self.lc_temp_c_x100 = 0
        self.pressure_pa = 101325
        self.tc_status = C.OK
        self.p_status = C.OK
        self.setpoint_c_x100 = 0
        self.duty_ppm = 0
        self.pump = 0
        self.vent = 0
        self.fault = C.F_NONE
        self.invalid = C.F_NONE
        self.soak_in_spec_ms = 0
        self.soak_total_ms = 0
        self.soak_dev_max_c_x100 = 0
        self.in_spec = 0
        self._exc_t0_ms = 0
        self._sub = 0
        self._weighing = 0
        self._weigh_t0_ms = 0
        self._lct_acc = 0
        self._lct_cnt = 0
        self._leak_p0 = 0
        self._leak_t0 = 0
        self._leak_stage = 0
        self._vent_t0 = 0
        self._leak_cell = 0
        self._prompted = 0
        self.overshoot_c_x100 = -100000
        self.heatup_s = 0
        # results (allocated at phase changes only)
        self.phases = []            # [name, start_s, end_s]
        self.faults = []            # [code, t_s]
        self.events = []            # [t_s, code, a, b]
        self.readings = {}          # (kind, cell) -> (reading, lc_temp_num, lc_temp_den)
        self.weigh_lc_temp = {}
        self.leak = [None] * n
        self.results = [None] * n
        self.no_pass = [[] for _ in range(n)]   # per cell: codes.NP_* reasons that bar a PASS
        self.verdict = V.V_NONE
        self.blank_fit = None
        self.live_tick = None       # optional callback(controller) once per control tick
        self.link_poll = None       # optional callable() once per control tick: the serial link
        #                             (link.Link.poll: bounded work, allocation-free when idle)

    # ---------------------------------------------------------------- time and events
    def t_s(self):
        return self.b.ticks_diff(self.now_ms, self.t0_ms) // 1000

    def _event(self, code, a, b):
        self.events.append([self.t_s(), code, a, b])
        if self.log is not None:
            self.log.event(self.b.ticks_diff(self.now_ms, self.t0_ms), code, a, b)

    def _enter(self, ph):
        old = self.phase
        t = self.t_s()
        if self.phases:
            self.phases[-1][2] = t
        self.phases.append([PHASE_NAMES[ph], t, t])
        self.phase = ph
        self.phase_t0_ms = self.now_ms
        self._event(C.E_PHASE, ph, old)

    def _phase_ms(self):
        return self.b.ticks_diff(self.now_ms, self.phase_t0_ms)

    def _raise_fault(self, code, value):
        # Heater, pump off at once (same tick), vent closed; the verdict can never be PASS.
        self.b.outputs_safe()
        self.duty_ppm = 0
        self.pump = 0
        self.vent = 0
        self.b.buzzer_set(1)
        if not self.fault:
            self.fault = code
        self.faults.append([code, self.t_s()])
        self._event(code, value, self.phase)
        self._enter(PH_ABORTED)

    def _no_pass(self, reason, cell):
        """Bar a PASS (it becomes INCONCLUSIVE) for `cell`, or every cell when cell < 0; logged once
        per reason and cell (E_NO_PASS). Not on the tick's allocation-free path: call at phase changes."""
        for i in range(self.n):
            if (cell < 0 or cell == i) and reason not in self.no_pass[i]:
                self.no_pass[i].append(reason)
        self._event(C.E_NO_PASS, reason, cell)

    def _set_invalid(self, reason):
        if not self.invalid:
            self.invalid = reason
            self.faults.append([reason, self.t_s()])
            self._event(C.E_INVALID, reason, 0)

    # ---------------------------------------------------------------- sensors and safety
    def _read_sensors(self):
        b = self.b
        st = b.tc.read()
        self.tc_status = st
        if st == C.OK:
            self.temp_c_x100 = b.tc.temp_c_x100 + self._tc_off_c_x100
            self.cj_c_x100 = b.tc.cj_c_x100
        pr = self._probe
        if pr is not None:
            st = pr.read()
            self.probe_status = st
            if st == C.OK:
                self.probe_c_x100 = pr.temp_c_x100 + self._probe_off_c_x100
            self._probe_check()
        self.p_status = b.pressure.read()
        if self.p_status == C.OK:
            self.pressure_pa = b.pressure.pa
        if b.lc_temp.read() == C.OK:
            self.lc_temp_c_x100 = b.lc_temp.temp_c_x100

    def _probe_check(self):
        # the probe's tolerance state (against the method's setpoint) and its E_PROBE_TEMP events:
        # at every change (rare; may allocate like the excursion events) and once a minute in
        # HEATUP, SOAK and COOLDOWN straight into the log (allocation-free; not kept in .events)
        m = self.m
        out = 1
        if self.probe_status == C.OK:
            d = self.probe_c_x100 - m["setpoint_c_x100"]
            if -m["tol_c_x100"] <= d <= m["tol_c_x100"]:
                out = 0
        t = self.probe_c_x100 if self.probe_status == C.OK else _PROBE_UNREAD
        if out != self.probe_out:
            self.probe_out = out
            self._probe_ev_ms = self.now_ms
            self._event(C.E_PROBE_TEMP, t, self.probe_status)
            return
        ph = self.phase
        if ((ph == PH_HEATUP or ph == PH_SOAK or ph == PH_COOLDOWN or ph == PH_PREHEAT)
                and self.b.ticks_diff(self.now_ms, self._probe_ev_ms) >= _PROBE_EVENT_MS):
            self._probe_ev_ms = self.now_ms
            if self.log is not None:
                self.log.event(self.b.ticks_diff(self.now_ms, self.t0_ms), C.E_PROBE_TEMP, t, self.probe_status)

    def _read_loadcells_tick(self):
        # Outside weighings: one sample per channel per tick for the trend, drift and watchdog.
        b = self.b
        for i in range(self.n):
            lc = b.loadcells[i]
            self.valid[i] = 0
            if lc.ready():
                st = lc.read()
                x = lc.raw
                if st == C.OK and -0x800000 < x < 0x7FFFFF:
                    self.lcdog.sample(i, self.now_ms, C.OK)
                    prev = self.raw[i]
                    # isolated spikes do not reach the trend; a real step persists and is taken
                    if self._have_raw and (x - prev > 50000 or prev - x > 50000) and self._spike_pending[i] == 0:
                        self._spike_pending[i] = 1
                        self._glitches[i] += 1
                        continue
                    self._spike_pending[i] = 0
                    self.raw[i] = x
                    self.valid[i] = 1
                else:
                    self._glitches[i] += 1
        self._have_raw = 1

    def _safety(self):
        if self._probe is not None and self.probe_status == C.OK and self.probe_c_x100 > _PROBE_MAX_C_X100:
            return C.F_TEMP_MAX
        sp = self.setpoint_c_x100
        f = self.hguard.check(self.now_ms, self.tc_status, self.temp_c_x100, sp, 1 if self.duty_ppm > 0 else 0)
        if f:
            return f
        vac_req = 1 if self.phase == PH_SOAK or self.phase == PH_HEATUP else 0
        return self.vguard.check(self.now_ms, self.p_status, self.pressure_pa, vac_req)

    # ---------------------------------------------------------------- actuators
    def _set_pump(self, on):
        if on != self.pump:
            self.pump = on
            self.b.pump_set(on)

    def _set_vent(self, op):
        if op != self.vent:
            self.vent = op
            self.b.vent_set(op)

    def _vacuum_hysteresis(self):
        lim = self.m["vacuum_pa"]
        p = self.pressure_pa
        if self.phase != PH_SOAK:
            # outside the soak a vacuum loss is not an in-spec excursion, but it is recorded
            if p > lim and not self._vac_exc:
                self._vac_exc = 1
                self._event(C.E_VAC_EXCURSION, 1, p)
            elif p <= lim and self._vac_exc:
                self._vac_exc = 0
                self._event(C.E_VAC_EXCURSION, 0, p)
        if p > lim // 2:
            self._set_pump(1)
        elif p < lim // 5:
            self._set_pump(0)

    def _heater(self, dt_ms):
        sp = self.setpoint_c_x100
        if sp <= 0 or self.tc_status != C.OK:
            d = 0
        else:
            d = self.pid.update(sp, self.temp_c_x100, dt_ms)
        if d != self.duty_ppm:
            self.duty_ppm = d
            self.b.heater_set_duty_ppm(d)

    def _heater_off(self):
        self.setpoint_c_x100 = 0
        self.hguard.reset()
        self.pid.reset()
        if self.duty_ppm:
            self.duty_ppm = 0
            self.b.heater_set_duty_ppm(0)

    # ---------------------------------------------------------------- weighing
    def _weigh_start(self, kind):
        self._weigh_kind = kind
        for i in range(self.n):
            self.windows[i].reset()
            self.valid[i] = 0       # the per-tick trend pauses while the windows take the samples
            self._lim_set[i] = 0
            if kind != 2:
                # the tare (and the blank run's empty pans) by the tare rule; m1 from the m0 reading
                self._set_weigh_limits(i, -1 if (kind == 1 or self.mode == MODE_BLANK) else self._c0[i])
        self._weighing = 1
        self._weigh_t0_ms = self.now_ms
        self._lct_acc = 0
        self._lct_cnt = 0
        self._retries = 0

    def _weigh_sub(self):
        # 100 ms sub-tick: one HX711 conversion per channel into its window.
        b = self.b
        for i in range(self.n):
            w = self.windows[i]
            if w.state == W_STABLE:
                continue
            lc = b.loadcells[i]
            if lc.ready():
                st = lc.read()
                if st == C.OK:
                    x = lc.raw
                    if -0x800000 < x < 0x7FFFFF:
                        self.lcdog.sample(i, self.now_ms, C.OK)
                    w.add(x)
                else:
                    w.add(0x7FFFFF)      # a railed/garbled read counts as a rejected sample
            else:
                w.missing()

    def _weigh_limits(self, i, net_counts):
        """(sd of the mean, drift per minute) limits in counts for channel i, scaled to what the
        decision needs: allowance = limit_ppm x m0 (net_counts: the cell's net reading);
        sd <= stable_sd_permille and drift <= stable_drift_permille per minute of it. The tare
        (net_counts < 0, or no cell) uses the allowance of _TARE_REF_MG itself: the tare's error
        enters the loss only as loss x error / m0, and its variance is carried into U anyway."""
        m = self.m
        if net_counts < _NO_CELL_COUNTS:
            allow = _TARE_REF_MG * self.cal["channels"][i]["counts_per_g"] // 1000
        else:
            allow = net_counts * m["limit_ppm"] // 1000000
        sd = allow * m["stable_sd_permille"] // 1000
        dr = allow * m["stable_drift_permille"] // 1000
        # the window's ranges: 1..500 counts (sd of the mean), 1..16000 counts/min
        sd = 1 if sd < 1 else (500 if sd > 500 else sd)
        dr = 1 if dr < 1 else (16000 if dr > 16000 else dr)
        return sd, dr, allow

    def _set_weigh_limits(self, i, net_counts):
        sd, dr, allow = self._weigh_limits(i, net_counts)
        self.windows[i].set_limits(sd, dr)
        lim = self.weigh_limits[i]
        lim[0] = sd
        lim[1] = dr
        lim[2] = allow
        self._lim_set[i] = 1

    def _weigh_poll(self, kind):
        """Once per control tick during a weighing. Returns 1 when every window is stable, 0 while
        waiting, -1 when the weighing failed (timeout)."""
        self._lct_acc += self.lc_temp_c_x100
        self._lct_cnt += 1
        all_ok = 1
        for i in range(self.n):
            w = self.windows[i]
            if not self._lim_set[i] and w.count > 0:
                # m0 is not known before it is weighed: a rough m0 from the first samples on the
                # pan sets the limits (long before the window can be stable: it needs the drift
                # time base first, and set_limits restarts the stable run anyway)
                self._set_weigh_limits(i, w.ref - self._ref_zero[i])
            st = w.state
            if st == W_STABLE:
                continue
            all_ok = 0
            if st >= W_ERR_TIMEOUT:
                # no data, saturated or not settling: record, and wait for good data again
                self._event(C.E_WEIGH_RETRY, i, st)
                w.reset()
        if all_ok:
            self._weigh_finish(kind)
            return 1
        if self.b.ticks_diff(self.now_ms, self._weigh_t0_ms) > self._weigh_tmo_ms:
            self._weighing = 0
            return -1
        return 0

    def _weigh_finish(self, kind):
        self._weighing = 0
        # the weighing's load-cell temperature: the logged integer is what the verdict uses, so
        # that `ovenctl verify` can recompute the verdict from the log alone
        lct = div_half_even(self._lct_acc, self._lct_cnt) if self._lct_cnt else self.lc_temp_c_x100
        for i in range(self.n):
            w = self.windows[i]
            n, total, m2n = w.result()
            self.readings[(kind, i)] = (V.reading(n, total, m2n), lct, 1)
            if w.rejected:
                self._event(C.E_LC_GLITCH, i, w.rejected)
            if self.log is not None:
                buf = array("i", bytes(4 * n))
                w.samples_into(buf)
                self.log.weigh(i, kind, self.b.ticks_diff(self.now_ms, self.t0_ms), lct, buf, n, w.rejected)

    def _lc_temp_ready(self):
        """m1 only once the load-cell temperature is back within the method's band around its
        value at m0 (span and zero temperature effects), or after lc_temp_wait_s of waiting: then
        it is weighed anyway and no cell can PASS (NP_LC_TEMP). Blank runs have no m0: no wait."""
        if self.mode == MODE_BLANK or (2, 0) not in self.readings:
            return 1
        m = self.m
        ref = self.readings[(2, 0)][1]
        d = self.lc_temp_c_x100 - ref
        if -m["lc_temp_band_c_x100"] <= d <= m["lc_temp_band_c_x100"]:
            # in the band for a minute: one noisy reading does not start m1
            self._lc_band_s += 1
            if self._lc_band_s >= _LC_BAND_HOLD_S:
                return 1
        else:
            self._lc_band_s = 0
            if not self._lcw:
                self._lcw = 1
                self._lcw_t0_ms = self.now_ms
                self._event(C.E_LC_TEMP_WAIT, self.lc_temp_c_x100, ref)
                return 0
        if self._lcw and self.b.ticks_diff(self.now_ms, self._lcw_t0_ms) >= m["lc_temp_wait_s"] * 1000:
            self._no_pass(C.NP_LC_TEMP, -1)
            return 1
        return 0

    def _ref_counts(self, kind, i):
        r = self.readings[(kind, i)][0]
        return r[0] // r[1]

    # ---------------------------------------------------------------- the run
    def run(self):
        """Run the whole test; returns the verdict code. Outputs are safe on every exit."""
        self.start()
        try:
            while self.step():
                self.housekeep()
        finally:
            self.b.outputs_safe()
        self.finish()
        return self.verdict

    def start(self):
        b = self.b
        b.outputs_safe()
        self.now_ms = b.ticks_ms()
        self.t0_ms = self.now_ms
        self._next_ms = self.now_ms
        self._last_tick_ms = self.now_ms
        self._enter(PH_PRECHECK)

    def resume(self, st, elapsed_ms, outage_s):
        """Continue a test's soak after a power cut instead of start() (main.py, recovery.py;
        docs/APP.md "Power cuts"). st: recovery.LogState of the run's log, whose last synced
        sample is an in-spec SOAK sample; elapsed_ms: run time now (by the battery-backed clock),
        so that t_s continues where the clock says. Restored from the log: weighings (tare, m0),
        phases, soak counters (only the in-spec seconds the log shows count), early-fail flags,
        the last readings. Not restored: PID and guard history, the live-estimate filter (it
        restarts from 0). The outage itself is not soak time."""
        b = self.b
        b.outputs_safe()
        self.now_ms = b.ticks_ms()
        self.t0_ms = self.now_ms - elapsed_ms
        self._next_ms = self.now_ms
        self._last_tick_ms = self.now_ms
        for key in st.weigh:
            n, total, m2n, lct, _t = st.weigh[key]
            self.readings[key] = (V.reading(n, total, m2n), lct, 1)
        if (1, 0) in st.weigh:
            self._t_ref_c_x100 = st.weigh[(1, 0)][3]
        for i in range(self.n):
            z = self._ref_counts(1, i)
            c0 = self._ref_counts(2, i)
            self._ref_zero[i] = z
            self._d_div[i] = (c0 - z + 500) // 1000
            self._c0[i] = c0 - z
            self.early_fail[i] = st.early[i]
            if st.last_raw[i] != C.MISSING_RAW:
                self.raw[i] = st.last_raw[i]
        self._have_raw = 1
        # m0's window started settle_s after START (whole control ticks from START: exact); the
        # uncertainty budget's creep term needs it after a resume too
        self.settle_s_actual = self.m["settle_s"]
        for p in st.phases:
            self.phases.append([p[0], p[1], p[2]])
        self.temp_c_x100 = st.last_temp
        self.lc_temp_c_x100 = st.last_lc_temp
        self.pressure_pa = st.last_pressure
        self._vac_exc = st.vac_exc
        # reasons logged before the power cut still bar a PASS (not logged again)
        for reason, cell in st.no_pass:
            for i in range(self.n):
                if (cell < 0 or cell == i) and reason not in self.no_pass[i]:
                    self.no_pass[i].append(reason)
        # device counting (see _soak): the entry tick is logged under SOAK but not counted
        self.soak_in_spec_ms = (st.soak_in - 1) * 1000 if st.soak_in > 0 else 0
        self.soak_total_ms = (st.soak_n - 1) * 1000 if st.soak_n > 0 else 0
        self.in_spec = 1 if st.last_flags & C.SF_IN_SPEC else 0
        self.phase = PH_SOAK
        self.phase_t0_ms = self.now_ms
        b.heater_enable(1)
        self.setpoint_c_x100 = self.m["setpoint_c_x100"]
        self._event(C.E_RESUMED, outage_s, st.resumes + 1)

    def running(self):
        return self.phase != PH_DONE and self.phase != PH_ABORTED

    def step(self):
        """Advance to the next control tick (waiting through the 100 ms weighing sub-ticks before
        it). Returns False once the run has ended. Callers that must service other work (a serial
        link, a display) call step() in their own loop instead of run()."""
        if not self.running():
            return False
        b = self.b
        if self._weighing:
            while True:
                self._next_ms += _SUB_MS
                b.wait_until_ms(self._next_ms)
                self.now_ms = self._next_ms
                self._weigh_sub()
                if b.ticks_diff(self._next_ms, self._last_tick_ms) >= _TICK_MS:
                    break
        else:
            self._next_ms += _TICK_MS
            b.wait_until_ms(self._next_ms)
            self.now_ms = self._next_ms
        self._last_tick_ms = self._next_ms
        self._tick()
        if self.live_tick is not None:
            self.live_tick(self)
        if self.link_poll is not None:
            self.link_poll()
        return self.running()

    def housekeep(self):
        """Work that may allocate, between control ticks (never inside step()): sealing the run
        log's new records (runlog.RunLog.seal)."""
        if self.log is not None:
            self.log.seal()

    def abort(self, code=C.F_OPERATOR_ABORT):
        """Operator or host abort: outputs safe at once, verdict ABORTED."""
        if self.running():
            self._raise_fault(code, 0)

    def finish(self):
        self.b.outputs_safe()
        for _ in self.fit_steps():
            pass
        if self.phases:
            self.phases[-1][2] = self.t_s()
        if self.log is not None:
            # every run ends with a verdict record, also an aborted one (it can then never be PASS)
            self.log.verdict(self.verdict_record())
            self.log.close()

    def _tick(self):
        """One control tick: sensors, safety, phase logic, heater, vacuum, log, watchdog."""
        self._read_sensors()
        if not self._weighing:
            self._read_loadcells_tick()
        f = self._safety()
        if f:
            self._raise_fault(f, self.temp_c_x100)
            return
        f = self.lcdog.check(self.now_ms)
        if f:
            # a missing load cell outside a weighing costs only the trend: record, keep going
            self._event(C.E_LC_FAULT, self.lcdog.channel, 0)
            self.lcdog.reset()
        # one handler per phase, the long phases first (a method call allocates nothing)
        ph = self.phase
        if ph == PH_SOAK:
            self._soak()
        elif ph == PH_HEATUP:
            self._heatup()
        elif ph == PH_COOLDOWN:
            self._cooldown()
        elif ph == PH_PREHEAT:
            self._preheat()
        elif ph == PH_PUMPDOWN:
            self._pumpdown()
        elif ph == PH_VENT:
            self._vent_phase()
        elif ph == PH_PRECHECK:
            self._precheck()
        elif ph == PH_TARE:
            self._tare()
        elif ph == PH_LOAD:
            self._load()
        elif ph == PH_INITIAL_WEIGH:
            self._initial_weigh()
        elif ph == PH_FINAL_WEIGH:
            self._final_weigh()
        elif ph == PH_LEAK_CHECK:
            self._leak_check()
        if self.phase == PH_ABORTED:
            return
        self._heater(_TICK_MS)
        if self.drift is not None:
            self.drift.add(self.lc_temp_c_x100, self.pressure_pa, self.raw, self.valid)
        if self.b.ticks_diff(self.now_ms, self._glitch_t_ms) >= 60000:
            self._glitch_t_ms = self.now_ms
            for i in range(self.n):
                if self._glitches[i]:
                    self._event(C.E_LC_GLITCH, i, self._glitches[i])
                    self._glitches[i] = 0
        if self.log is not None:
            self._log_sample()
            if self.log.status:
                # the run log cannot be written (flash full, filesystem error): a test without its
                # record is worthless and must not go on heating unrecorded
                # a = 0: the log's budget is spent (its reserve still holds the end), else the error
                self._raise_fault(C.F_FLASH, 0 if self.log.full else self.log.status)
                return
        self.b.wdt_feed()

    def _flags(self):
        f = 0
        if self.in_spec:
            f |= C.SF_IN_SPEC
        if self.duty_ppm:
            f |= C.SF_HEATER
        if self.pump:
            f |= C.SF_PUMP
        if self.vent:
            f |= C.SF_VENT
        if self.tc_status:
            f |= C.SF_TC_BAD
        if self.p_status:
            f |= C.SF_P_BAD
        if self.chamber_timed:
            f |= C.SF_CHAMBER_TIMED
        elif self.probe_out:
            f |= C.SF_PROBE_OUT
        return f

    def _log_sample(self):
        log = self.log
        if log is None:
            return
        lr = self._lograw
        for i in range(self.n):
            lr[i] = self.raw[i] if self.valid[i] else C.MISSING_RAW
        log.sample(self.t_s(), self.phase, self._flags(), self.temp_c_x100, self.lc_temp_c_x100,
                   self.pressure_pa, self.duty_ppm // 1000, lr)
        log.poll(self.t_s())

    # ---------------------------------------------------------------- phases
    def _precheck(self):
        if self.tc_status != C.OK or self.p_status != C.OK:
            return   # the guards fault after their stale/timeout limits
        if self.pressure_pa < _P_ATM_MIN_PA:
            self._set_vent(1)   # start vented: m0 is weighed in air
            return
        self._set_vent(0)
        self.b.heater_enable(1)
        self._enter(PH_TARE)
        self._weigh_start(1)

    def _tare(self):
        r = self._weigh_poll(1)
        if r < 0:
            self._raise_fault(C.F_WEIGH_TIMEOUT, 1)
        elif r > 0:
            self._t_ref_c_x100 = self.lc_temp_c_x100
            for i in range(self.n):
                self._ref_zero[i] = self._ref_counts(1, i)
            if self.mode == MODE_BLANK:
                self._heat_start()
            else:
                self._enter(PH_LOAD)
                self._prompted = 0

    def _load(self):
        m = self.m
        if not self._prompted:
            self.b.operator.prompt(PR_LOAD, 0)
            self._prompted = 1
        ev = self.b.operator.poll()
        if ev == C.EV_START:
            # the cells are on the pans: creep first (the method's settle_s), then m0
            self._enter(PH_INITIAL_WEIGH)
            self._settle_t0_ms = self.now_ms
            self._event(C.E_SETTLE, m["settle_s"], 0)
            if m["settle_s"] <= 0:
                self.settle_s_actual = 0
                self._weigh_start(2)
        elif ev == C.EV_STOP:
            self._raise_fault(C.F_OPERATOR_ABORT, 0)

    def _initial_weigh(self):
        m = self.m
        if not self._weighing:
            if self.b.operator.poll() == C.EV_STOP:     # 15 min of settling: STOP still works
                self._raise_fault(C.F_OPERATOR_ABORT, 0)
                return
            sm = self.b.ticks_diff(self.now_ms, self._settle_t0_ms)
            if sm >= m["settle_s"] * 1000:
                self.settle_s_actual = sm // 1000
                self._weigh_start(2)
            return
        r = self._weigh_poll(2)
        if r < 0:
            self._raise_fault(C.F_WEIGH_TIMEOUT, 2)
        elif r > 0:
            for i in range(self.n):
                c0 = self._ref_counts(2, i)
                z = self._ref_counts(1, i)
                if c0 - z < _NO_CELL_COUNTS:
                    self._raise_fault(C.F_LOADCELL, i)   # no cell on pan i
                    return
                self._d_div[i] = (c0 - z + 500) // 1000
                self._c0[i] = c0 - self._ref_zero[i]
            self._heat_start()

    def _vent_phase(self):
        self._set_pump(0)
        self._set_vent(1)
        if self.pressure_pa >= _P_ATM_MIN_PA:
            if not self._vent_t0:
                self._vent_t0 = self.now_ms
            elif (self.b.ticks_diff(self.now_ms, self._vent_t0) >= _VENT_SETTLE_MS
                  and self._lc_temp_ready()):
                self._enter(PH_FINAL_WEIGH)
                self._weigh_start(3)

    def _final_weigh(self):
        m = self.m
        r = self._weigh_poll(3)
        if r < 0:
            self._raise_fault(C.F_WEIGH_TIMEOUT, 3)
        elif r > 0:
            if self.mode == MODE_BLANK:
                self._finish_blank()
            else:
                # what counts is the load-cell temperature the m1 record carries (its mean)
                d = self.readings[(3, 0)][1] - self.readings[(2, 0)][1]
                if (d > m["lc_temp_band_c_x100"] or -d > m["lc_temp_band_c_x100"]) \
                        and C.NP_LC_TEMP not in self.no_pass[0]:
                    self._no_pass(C.NP_LC_TEMP, -1)
                self._enter(PH_LEAK_CHECK)
                self._leak_cell = 0
                self._prompted = 0

    def _leak_check(self):
        i = self._leak_cell
        if not self._prompted:
            self.b.operator.prompt(PR_LEAK, i)
            self._prompted = 1
        ev = self.b.operator.poll()
        if ev == C.EV_YES or ev == C.EV_NO:
            self.leak[i] = 1 if ev == C.EV_YES else 0
            self._event(C.E_LEAK_ANSWER, i, self.leak[i])
            self._cell_verdict(i)
            self._leak_cell = i + 1
            self._prompted = 0
            if self._leak_cell >= self.n:
                self._enter(PH_VERDICT)
                self._compute_verdict()
                self._enter(PH_DONE)

    def _heat_start(self):
        """After the (tare and) m0 weighing: heat_in "air" pre-heats with the chamber closed at
        atmospheric pressure (the cells follow the chamber by convection, in minutes rather than
        hours), "vacuum" pumps down first and heats under vacuum (radiation only)."""
        if self.heat_air:
            self._set_vent(0)
            self._set_pump(0)
            self._enter(PH_PREHEAT)
            self._pre_ok_ms = 0
            self._chamber_band_ms = 0
            self.hguard.reset()
            self.pid.reset()
            self.setpoint_c_x100 = self.m["setpoint_c_x100"]
        else:
            self._enter(PH_PUMPDOWN)
            self._leak_stage = 0
            self._set_pump(1)

    def _preheat(self):
        m = self.m
        if self._heat_timed_out():      # same bounds as HEATUP
            return
        sp = self.setpoint_c_x100
        dev = self.temp_c_x100 - sp
        tol = m["tol_c_x100"]
        if not self._chamber_band_ms and -tol <= dev <= tol:
            self._chamber_band_ms = self.now_ms
            self.heatup_s = self._phase_ms() // 1000    # the oven's own heat-up, here in air
        if self._chamber_band_ms and dev > self.overshoot_c_x100:
            self.overshoot_c_x100 = dev
        # the cell (the probe in its dummy cell; without one the chamber) within the tight pre-heat
        # band: the soak under vacuum then starts with the cell at the setpoint, not 2 degC below it
        band = m["preheat_band_c_x100"]
        if self.chamber_timed:
            pd = dev
            ok = self.tc_status == C.OK
        else:
            pd = self.probe_c_x100 - sp
            ok = self.probe_status == C.OK and self.tc_status == C.OK
        if not (ok and -tol <= dev <= tol and -band <= pd <= band):
            self._pre_ok_ms = 0
            return
        if not self._pre_ok_ms:
            self._pre_ok_ms = self.now_ms
            return
        if self.b.ticks_diff(self.now_ms, self._pre_ok_ms) >= _PREHEAT_HOLD_MS:
            self._event(C.E_PREHEAT_DONE, self.temp_c_x100 if self.chamber_timed else self.probe_c_x100,
                        self.temp_c_x100)
            # the PID keeps holding the setpoint through the pump-down
            self._enter(PH_PUMPDOWN)
            self._leak_stage = 0
            self._set_pump(1)

    def _credit(self):
        """heat_in "air": a second of the pump-down and of HEATUP, after the pre-heat, at the
        method's conditions (chamber and cell in tolerance, at the vacuum level) is soak time: the
        cell is already at the setpoint, so the method's time under vacuum starts when the vacuum
        is reached (docs/APP.md "Heating and cooling"). Flagged IN_SPEC in the log, so `ovenctl
        verify` and the power-cut recovery count it from the samples like SOAK's seconds."""
        m = self.m
        dev = self.temp_c_x100 - self.setpoint_c_x100
        tol = m["tol_c_x100"]
        if (self.tc_status == C.OK and -tol <= dev <= tol and self.pressure_pa <= m["vacuum_pa"]
                and (self.chamber_timed or not self.probe_out)):
            self.in_spec = 1
            self.soak_in_spec_ms += _TICK_MS
            self.soak_total_ms += _TICK_MS
        else:
            self.in_spec = 0

    def _pumpdown(self):
        self._pumpdown_step()
        # after the step: a fault tick (timeout, leak rate) is neither logged nor counted
        if self.heat_air and self.phase != PH_ABORTED:
            self._credit()

    def _pumpdown_step(self):
        m = self.m
        p = self.pressure_pa
        if self._phase_ms() > m["pumpdown_timeout_s"] * 1000:
            self._raise_fault(C.F_PUMPDOWN_TIMEOUT, p)
            return
        if self._leak_stage == 0:
            self._set_vent(0)
            self._set_pump(1)
            if not self._vac_exc and self._phase_ms() >= _PUMPDOWN_SLOW_MS:
                self._vac_exc = 1         # slow pump-down: a leak or a weak pump, recorded
                self._event(C.E_VAC_EXCURSION, 2, p)
            if p <= m["vacuum_pa"] // 2:
                # isolate the chamber and watch the rise: the leak-rate check
                self._set_pump(0)
                self._leak_stage = 1
                self._leak_p0 = p
                self._leak_t0 = self.now_ms
        else:
            dt = self.b.ticks_diff(self.now_ms, self._leak_t0)
            if dt >= _LEAK_TEST_MS:
                rate = (p - self._leak_p0) * 60000 // dt
                if rate > m["leak_rate_pa_per_min"]:
                    self._raise_fault(C.F_LEAK_RATE, rate)
                    return
                self._set_pump(1)
                self._enter(PH_HEATUP)
                self._chamber_band_ms = 0
                if not self.heat_air:
                    self.hguard.reset()
                    self.pid.reset()
                    self.setpoint_c_x100 = m["setpoint_c_x100"]

    def _heat_timed_out(self):
        # heatup_timeout_s bounds the oven reaching the band (a weak or dead heater); probe_wait_s
        # then the cell (the probe) following it: a cell lags by an hour or more under vacuum, a
        # 2 kg cell by several. Raises the fault and returns 1 when either is exceeded.
        m = self.m
        if self._chamber_band_ms:
            if self.b.ticks_diff(self.now_ms, self._chamber_band_ms) > m["probe_wait_s"] * 1000:
                self._raise_fault(C.F_HEATUP_TIMEOUT, self.probe_c_x100)
                return 1
        elif self._phase_ms() > m["heatup_timeout_s"] * 1000:
            self._raise_fault(C.F_HEATUP_TIMEOUT, self.temp_c_x100)
            return 1
        return 0

    def _heatup(self):
        m = self.m
        self._vacuum_hysteresis()
        if self._heat_timed_out():
            return
        dev = self.temp_c_x100 - self.setpoint_c_x100
        tol = m["tol_c_x100"]
        if not self._chamber_band_ms and -tol <= dev <= tol:
            self._chamber_band_ms = self.now_ms
        if self._chamber_band_ms and dev > self.overshoot_c_x100:
            self.overshoot_c_x100 = dev     # the oven's overshoot: from reaching the band on
        if not (-tol <= dev <= tol and self.pressure_pa <= m["vacuum_pa"]):
            self._entry_ok_ms = 0
            self._oven_ok = 0
            if self.heat_air:
                self._credit()
            return
        if not self._oven_ok:
            # heatup_s: the oven's own heat-up (chamber and vacuum in spec), whatever the cell does
            # (heat_in "air": measured in PREHEAT)
            self._oven_ok = 1
            if not self.heat_air:
                self.heatup_s = self._phase_ms() // 1000
        # the cell's temperature (the probe in its dummy cell) in tolerance too
        if not (self.chamber_timed or not self.probe_out):
            self._entry_ok_ms = 0
            if self.heat_air:
                self._credit()
            return
        if not self._entry_ok_ms:
            self._entry_ok_ms = self.now_ms
        # the soak clock starts once the oven has stayed in spec for a minute: no start-up
        # flicker at the edge of the band is counted as soak or reported as an excursion
        # (heat_in "air": those seconds, and the pump-down's at the vacuum level, are soak time
        # already, _credit)
        if self.b.ticks_diff(self.now_ms, self._entry_ok_ms) >= _SOAK_ENTRY_HOLD_MS:
            self._enter(PH_SOAK)
            if not self.heat_air:
                self.soak_in_spec_ms = 0
                self.soak_total_ms = 0
            self.in_spec = 1
            if self.chamber_timed and self.mode == MODE_TEST and m["chamber_timed_pass"] != "yes":
                self._no_pass(C.NP_CHAMBER_TIMED, -1)
        elif self.heat_air:
            self._credit()

    def _soak(self):
        m = self.m
        self._vacuum_hysteresis()
        sp = self.setpoint_c_x100
        dev = self.temp_c_x100 - sp
        if dev < 0:
            dev = -dev
        if self.soak_total_ms <= _SOAK_DEV_SKIP_MS:
            if self.temp_c_x100 - sp > self.overshoot_c_x100:
                self.overshoot_c_x100 = self.temp_c_x100 - sp
        elif dev > self.soak_dev_max_c_x100:
            self.soak_dev_max_c_x100 = dev
        ok = 1 if (self.tc_status == C.OK and dev <= m["tol_c_x100"] and self.pressure_pa <= m["vacuum_pa"]
                   and (self.chamber_timed or not self.probe_out)) else 0
        self.soak_total_ms += _TICK_MS
        if ok:
            self.soak_in_spec_ms += _TICK_MS
            if not self.in_spec:
                self._event(C.E_EXCURSION_END, self.b.ticks_diff(self.now_ms, self._exc_t0_ms) // 1000,
                            self.soak_in_spec_ms // 1000)
        elif self.in_spec:
            self._exc_t0_ms = self.now_ms
            self._event(C.E_EXCURSION_START, dev, self.pressure_pa)
        self.in_spec = ok
        if self.mode == MODE_TEST:
            self._live_estimate()
        need_ms = (m["blank_soak_s"] if self.mode == MODE_BLANK else m["soak_s"]) * 1000
        if self.soak_in_spec_ms >= need_ms:
            self._event(C.E_SOAK_DONE, self.soak_in_spec_ms // 1000, self.soak_total_ms // 1000)
            self._start_cooldown()
        elif self.soak_total_ms > m["soak_max_total_s"] * 1000:
            self._set_invalid(C.F_SOAK_MAX_TIME)
            self._start_cooldown()
        elif self.m["early_fail"] == "stop" and self.live.all_failed():
            # one cell's early FAIL does not cut the others' soak: the soak ends early only when
            # every cell has failed early (the cells then get NP_SOAK_CUT at the verdict)
            self._start_cooldown()

    def _start_cooldown(self):
        self.in_spec = 0
        self._heater_off()
        if self.cool_air:
            # cool_in "air": the vacuum ends with the soak; vented, the cells cool by convection
            # and stop losing mass at the vacuum's rate (the method's time is the soak's)
            self._set_pump(0)
            self._set_vent(1)
        self._enter(PH_COOLDOWN)

    def _cooldown(self):
        m = self.m
        if self.cool_air:
            self._set_pump(0)
            self._set_vent(1)
        else:
            self._vacuum_hysteresis()
        if self._phase_ms() > m["cooldown_timeout_s"] * 1000:
            self._set_invalid(C.F_COOLDOWN_TIMEOUT)
            self._enter(PH_VENT)
            self._vent_t0 = 0
            return
        if (self.tc_status == C.OK and self.temp_c_x100 <= m["vent_below_c_x100"]
                and self.temp_c_x100 - self.cj_c_x100 <= m["final_weigh_max_above_ambient_c_x100"]):
            self._enter(PH_VENT)
            self._vent_t0 = 0

    def _live_estimate(self):
        failed = self.live.update(self.raw, self.valid, self.lc_temp_c_x100 - self._t_ref_c_x100,
                                  self.pressure_pa < C.VAC_PA)
        if failed:
            for i in range(self.n):
                if failed & (1 << i):
                    self._event(C.E_EARLY_FAIL, i, self.live_ppm[i])

    # ---------------------------------------------------------------- results
    def _finish_blank(self):
        # the drift fit is computed after the run's last tick (fit_steps(): the session's steps,
        # or finish()), a channel at a time
        self._fit_todo = 1
        self._enter(PH_DONE)

    def fit_steps(self):
        """The blank run's drift fit into blank_fit (blank_error and INVALID when it fails), as a
        generator of steps, one per channel; the recorder's buffers are released after it."""
        if not self._fit_todo:
            return
        self._fit_todo = 0
        rec = self.drift
        try:
            if rec is None:
                raise ValueError("not a blank run")
            fit = []
            for ch in rec.fit_steps():
                fit.append(ch)
                yield
            self.blank_fit = fit
        except ValueError as e:
            self._event(C.E_INVALID, C.F_LOADCELL, 0)
            self.blank_error = str(e)
            self._set_invalid(C.F_LOADCELL)
        self.drift = None

    def _lct(self, kind, i):
        _r, acc, cnt = self.readings[(kind, i)]
        return div_half_even(acc, cnt)

    # the decision (oven.run.decide): loaded at the first verdict
    def _cell_verdict(self, i):
        from oven.run import decide
        decide.cell_verdict(self, i)

    def _compute_verdict(self):
        from oven.run import decide
        decide.compute_verdict(self)

    def verdict_record(self):
        from oven.run import decide
        return decide.verdict_record(self)

    def final_verdict(self):
        if self.phase == PH_ABORTED or self.fault:
            return V.V_ABORTED
        if self.invalid:
            return V.V_INVALID
        return self.verdict
