# Physical model of the simulated bench: oven chamber, thermocouple, cells, vacuum, load cells.
#
# Runs unchanged under CPython and MicroPython (the sim board inside the VM).  It is not firmware:
# floats are used for the physics.  Every random number comes from an integer-only generator
# (two multiply-with-carry generators whose state stays below 2^30, so MicroPython never allocates
# a long int for them) and Gaussian noise is Irwin-Hall (sum of 12 integer uniforms), so a seed
# gives bit-identical noise sequences on both platforms.  Each noise source has its own stream, so
# reading one sensor more often does not change the noise seen by another.
#
# Time: `advance(dt_ms)` steps the model (internally in steps of at most 1 s).  First-order nodes
# are integrated exactly (exponential step; inputs that change during the step are treated as a
# linear ramp), so a 1 s step is as accurate as a fine one.
#
# Units: seconds and milliseconds (`_s`, `_ms`), degC (`_c`), Pa, g, cm3, W, J/degC, counts.
from math import exp, log

# ---- physical constants -------------------------------------------------------------------------
P_ATM_PA = 101325.0
_AIR_M_OVER_R = 0.0289647 / 8.314462     # kg/mol / (J/(mol K)): rho[kg/m3] = p[Pa] * this / T[K]
_LN2_PER_10C = 0.06931471805599453       # ln(2)/10: evaporation rate doubles per +10 degC
_LN2_PER_20C = 0.034657359027997264      # ln(2)/20 (applied to the sum of two temperatures)

# ---- pressure transducer (0.5-4.5 V ratiometric absolute, on a 16-bit ADC reading) ---------------
# u16 = PRESSURE_ADC_ZERO + PRESSURE_ADC_SPAN * p_pa / PRESSURE_FS_PA  (+ noise, clipped 0..65535)
# i.e. 0 Pa -> 0.1 x full scale (0.5 V of 5 V), 110 kPa -> 0.9 x full scale (4.5 V).
# Firmware conversion: p_pa = (u16 - PRESSURE_ADC_ZERO) * PRESSURE_FS_PA / PRESSURE_ADC_SPAN
# (integer-friendly within 2^30: ((u16 - 6554) * 4297) >> 11, error < 0.001 %).
PRESSURE_ADC_FULL = 65535
PRESSURE_ADC_ZERO = 6554          # counts at 0 Pa   (0.1 * 65535, rounded)
PRESSURE_ADC_SPAN = 52428         # counts from 0 Pa to PRESSURE_FS_PA (0.8 * 65535, rounded)
PRESSURE_FS_PA = 110000           # absolute pressure at 0.9 x full scale
PRESSURE_NOISE_COUNTS = 3.0       # rms noise of the ADC reading (~6 Pa)

# ---- MAX31855 frame layout -----------------------------------------------------------------------
TC_FAULT_BIT = 1 << 16
TC_SCV_BIT = 4
TC_SCG_BIT = 2
TC_OC_BIT = 1

# ---- model parameters that the scenario does not set --------------------------------------------
TC_TAU_S = 5.0                    # thermocouple lag behind the chamber
TC_NOISE_C = 0.1                  # thermocouple noise before 0.25 degC quantisation
LC_TAU_S = 1500.0                 # load-cell body temperature lag behind the chamber (25 min)
LC_TEMP_NOISE_C = 0.05            # noise of the sensor next to the load cell
LC_DRIFT_REF_C = 23.0             # load-cell zero drift and span are referred to this temperature
LC_PERIOD_MS = 100                # HX711 at 10 SPS
LC_RAIL_HI = 0x7FFFFF
LC_RAIL_LO = -0x800000
LC_GLITCH_PPM = 20000             # fraction of conversions that glitch while the fault is active
PAN_MASS_G = 20.0                 # weighing pan (always on the load cell)
PAN_VOLUME_CM3 = 7.4              # aluminium pan: 20 g / 2.7 g/cm3
STEEL_G_PER_CM3 = 7.95            # reference / check masses (OIML R111 stainless steel)
CELL_CP_J_PER_G_C = 1.0           # specific heat of a cell
H_RAD_W_PER_M2C = 6.0             # radiative + conductive cell-to-chamber coupling (vacuum)
H_AIR_W_PER_M2C = 25.0            # extra convective coupling at 1 atm (oven fan), scales with p
EVAP_AIR_FACTOR = 0.05            # evaporation rate at 1 atm relative to full vacuum
EVAP_REF_C = 120.0                # evap_tau_min applies at this temperature and full vacuum
PUMP_TAU_S = 100.0                # pump-down time constant: 101.3 kPa -> 10 kPa in ~236 s
PUMP_ULT_PA = 500.0               # ultimate pressure of the pump
VENT_TAU_S = 2.0                  # venting time constant
FAULT_LEAK_KPA_PER_MIN = 30.0     # extra leak while a vacuum_leak fault is active
METHOD_P_FRACTION = 0.35          # method_loss_ppm: the controller holds 20 % .. 50 % of vacuum_pa

FAULT_KINDS = ("thermocouple_open", "thermocouple_short", "heater_stuck_on", "heater_dead",
               "vacuum_leak", "loadcell_disconnect", "loadcell_glitches", "probe_open")

# Defaults of a scenario (host_tools/ovenctl/scenario.py normalizes files to this shape; the model
# fills missing keys with these so that a partial dict works too, e.g. in tests).
DEFAULT_CELL = {"mass_g": 45.0, "volume_cm3": 16.5, "volatile_g": 0.10, "evap_tau_min": 40.0,
                "leak_visible": False}
DEFAULT_LOAD_CELL = {"capacity_g": 200.0, "noise_counts_rms": 30.0, "zero_drift_counts_per_c": 20.0,
                     "creep_ppm": 245.0, "creep_tau_s": 300.0, "span_tc_ppm_per_c": 12.0}
DEFAULT_OVEN = {"heater_w": 400.0, "heat_capacity_j_per_c": 4000.0, "loss_w_per_c": 2.0}
DEFAULT_VACUUM = {"leak_kpa_per_min": 0.05}

# ---- integer random numbers ----------------------------------------------------------------------
# Multiply-with-carry, base 2^16: z <- A*(z & 0xFFFF) + (z >> 16).  With A < 2^14 the state stays
# below 2^30 (a MicroPython small int).  A*2^16-1 and (A*2^16-2)/2 are both prime for these two
# multipliers, so each generator has period (A*2^16-2)/2 ~ 2^29 and the pair ~ 2^58.
_A1 = 16380
_A2 = 16365
_NEVER_MS = 0x3FFFFFFF              # "no pending fault change" (a small int on MicroPython)
_STREAM_SETUP = 0
_STREAM_TC = 1
_STREAM_P = 2
_STREAM_LCT = 3
_STREAM_LC0 = 4
_STREAM_PROBE = 16                  # after the load-cell streams (at most 4 channels)


class Rng:
    """Deterministic integer PRNG (same sequence on CPython and MicroPython)."""

    def __init__(self, seed, stream=0):
        seed = int(seed) & 0xFFFFFFFF
        lo = seed & 0xFFFF
        hi = (seed >> 16) & 0xFFFF
        sx = (stream * 40503 + 0x5A5A) & 0xFFFF
        sy = (stream * 52711 + 0x3C3C) & 0xFFFF
        # injective in the seed for a given stream; never 0 nor A*2^16-1 (the MWC fixed points)
        self.z = 1 + ((lo ^ sx) << 13) + (hi & 0x1FFF)
        self.w = 1 + ((hi ^ sy) << 13) + (lo & 0x1FFF)
        for _ in range(12):
            self.u30()

    def u30(self):
        """Uniform integer in 0 .. 2^30 - 1."""
        z = _A1 * (self.z & 0xFFFF) + (self.z >> 16)
        w = _A2 * (self.w & 0xFFFF) + (self.w >> 16)
        self.z = z
        self.w = w
        return ((z & 0x7FFF) << 15) | (w & 0x7FFF)

    def below(self, n):
        """Uniform integer in 0 .. n - 1 (n <= 2^30; negligible bias for small n)."""
        return self.u30() % n

    def gauss(self):
        """Standard normal, approximately (Irwin-Hall: sum of 6 uniforms of 15 bits, tails cut at
        4.2 sigma): cheap, since the simulated bench draws about 10 of these per simulated second."""
        z = self.z
        w = self.w
        s = 0
        for _ in range(3):
            z = _A1 * (z & 0xFFFF) + (z >> 16)
            w = _A2 * (w & 0xFFFF) + (w >> 16)
            s += (z & 0x7FFF) + (w & 0x7FFF)
        self.z = z
        self.w = w
        # 6 uniforms on 0..32767: mean 6*16383.5 = 98301, sd 32768*sqrt(1/2) (to 1e-9)
        return (s - 98301) * 4.315837287515549e-05


def _round_int(x):
    """Round half up to an int, identically on both platforms (no banker's rounding)."""
    x = x + 0.5
    i = int(x)
    if i > x:
        i -= 1
    return i


def _frame_into(f, buf):
    buf[0] = (f >> 24) & 0xFF
    buf[1] = (f >> 16) & 0xFF
    buf[2] = (f >> 8) & 0xFF
    buf[3] = f & 0xFF


def _merged(defaults, given):
    out = {}
    for k in defaults:
        out[k] = defaults[k]
    if given:
        for k in given:
            out[k] = given[k]
    return out


class Bench:
    """The simulated bench.  Inputs (set by the sim board): `heater_duty_ppm` (0..1_000_000),
    `pump_on`, `vent_open` (0/1).  State for reports: `t_ms`, `amb_c`, `chamber_c`, `tc_c`
    (thermocouple junction), `lc_c` (load-cell body), `pressure_pa`, `cells_loaded`."""

    def __init__(self, scn):
        self.seed = int(scn["seed"]) & 0xFFFFFFFF
        amb = float(scn.get("ambient_c", 23.0))
        oven = _merged(DEFAULT_OVEN, scn.get("oven"))
        lcp = _merged(DEFAULT_LOAD_CELL, scn.get("load_cell"))
        vac = _merged(DEFAULT_VACUUM, scn.get("vacuum"))
        cells = scn.get("cells")
        if not cells:
            cells = [{}]
        cells = [_merged(DEFAULT_CELL, c) for c in cells]
        n = len(cells)
        self.n_cells = n

        # time, ambient
        self.t_ms = 0
        self.amb_c = amb
        self._amb0_c = amb
        self._ramp = None               # (t0_ms, t1_ms, c0, c1)

        # oven
        self.heater_w = float(oven["heater_w"])
        self.oven_c_j = float(oven["heat_capacity_j_per_c"])
        self.oven_k_w = float(oven["loss_w_per_c"])
        self.heater_duty_ppm = 0
        self.pump_on = 0
        self.vent_open = 0
        self.chamber_c = amb
        self.tc_c = amb
        self.lc_c = amb

        # vacuum
        self.pressure_pa = P_ATM_PA
        self.leak_pa_s = float(vac["leak_kpa_per_min"]) * 1000.0 / 60.0

        # cells
        self._m0_g = [float(c["mass_g"]) for c in cells]
        self._vol_cm3 = [float(c["volume_cm3"]) for c in cells]
        self._volatile0_g = [float(c["volatile_g"]) for c in cells]
        self._vol_left_g = list(self._volatile0_g)
        self._leak_visible = [bool(c["leak_visible"]) for c in cells]
        self._cell_c = [amb] * n
        inv_tau = []
        k_rad = []
        k_air = []
        for i in range(n):
            inv_tau.append(1.0 / (float(cells[i]["evap_tau_min"]) * 60.0))
            heat_cap = CELL_CP_J_PER_G_C * self._m0_g[i]
            # surface of a cube of the same volume, m2
            area_m2 = 6.0 * exp(log(self._vol_cm3[i]) * (2.0 / 3.0)) * 1e-4
            k_rad.append(area_m2 * H_RAD_W_PER_M2C / heat_cap)              # 1/s
            k_air.append(area_m2 * H_AIR_W_PER_M2C / heat_cap / P_ATM_PA)   # 1/(s Pa)
        # 1/tau * 2^(-120/10): k = fp * _evap_k * exp((c0 + c1) * ln2/20)
        self._evap_k = [x * exp(-EVAP_REF_C * _LN2_PER_10C) for x in inv_tau]
        self._k_rad = k_rad
        self._k_air = k_air
        self._cell_cache = [None] * n     # per cell: [dt_ms, p_pa, e, q]
        for i in range(n):
            self._cell_cache[i] = [0, -1e9, 1.0, 1.0]

        # reference probe: a thermocouple in a dummy cell (no volatiles) that sits in the oven in
        # every run, blank runs included; it lags the chamber exactly as a cell of its size does
        pc = scn.get("probe_cell")
        if not pc:
            pc = {"mass_g": cells[0]["mass_g"], "volume_cm3": cells[0]["volume_cm3"]}
        self.probe_fitted = bool(scn.get("probe", True))
        self.probe_mass_g = float(pc["mass_g"])
        self.probe_volume_cm3 = float(pc["volume_cm3"])
        area_m2 = 6.0 * exp(log(self.probe_volume_cm3) * (2.0 / 3.0)) * 1e-4
        heat_cap = CELL_CP_J_PER_G_C * self.probe_mass_g
        self._pk_rad = area_m2 * H_RAD_W_PER_M2C / heat_cap
        self._pk_air = area_m2 * H_AIR_W_PER_M2C / heat_cap / P_ATM_PA
        self._probe_cache = [0, -1e9, 1.0, 1.0]
        self.probe_c = amb
        self._rng_probe = Rng(self.seed, _STREAM_PROBE)
        self.f_probe_open = 0
        self.cells_loaded = 0 if scn.get("blank_run", False) else 1

        # load cells
        self.lc_capacity_g = float(lcp["capacity_g"])
        self.lc_counts_per_g = 4194304.0 / self.lc_capacity_g
        self.lc_noise_counts = float(lcp["noise_counts_rms"])
        self.lc_drift_counts_per_c = float(lcp["zero_drift_counts_per_c"])
        # creep: the reading approaches load x creep_ppm (extra) with creep_tau_s after a load
        # change and recovers the same way (a linear first-order node per channel, see _creep_g);
        # span: counts per gram change by span_tc_ppm_per_c per degC of the load-cell body
        self.lc_creep = float(lcp["creep_ppm"]) * 1e-6
        self.lc_creep_tau_s = float(lcp["creep_tau_s"])
        self.lc_span_tc = float(lcp["span_tc_ppm_per_c"]) * 1e-6
        self._creep_x_g = [None] * n            # creep state (g of extra reading); None: settled
        self._creep_t_ms = [0] * n
        setup = Rng(self.seed, _STREAM_SETUP)
        self.lc_zero_offset_counts = [40000 + setup.below(160000) for _ in range(n)]
        self._lc_phase_ms = [setup.below(LC_PERIOD_MS) for _ in range(n)]
        self._lc_rng = [Rng(self.seed, _STREAM_LC0 + i) for i in range(n)]
        self._lc_read_idx = [-(1 << 29)] * n     # conversion index consumed by the last read
        self._lc_val_idx = [-(1 << 29)] * n      # conversion index of the cached value
        self._lc_val = [0] * n
        self._placed_g = [0.0] * n               # reference / check mass on each pan, g
        self._rng_tc = Rng(self.seed, _STREAM_TC)
        self._rng_p = Rng(self.seed, _STREAM_P)
        self._rng_lct = Rng(self.seed, _STREAM_LCT)

        # constants of the fixed-tau nodes for the current step length; pressure target
        self._c_dt_ms = -1
        self._c = None
        self._p_key = -1
        self._p_inf = P_ATM_PA
        self._leak_now_pa_s = self.leak_pa_s
        self._heater_override = None      # None: power from the duty; else W (fault)
        # Safety contactor in series with the SSR, opened by the controller's outputs_safe():
        # the only way to stop a stuck-on SSR.
        self.heater_contactor = 1

        # faults
        self._faults = []                 # [kind, start_ms, end_ms or None, channel or None]
        self._fault_next_ms = _NEVER_MS
        self.f_heater_stuck = 0
        self.f_heater_dead = 0
        self.f_tc_open = 0
        self.f_tc_short = 0
        self.f_leak = 0
        self._lc_disc = [0] * n
        self._lc_glitch = [0] * n

    # ---- configuration ---------------------------------------------------------------------------
    def set_ambient_ramp(self, t0_s, t1_s, c0, c1):
        """Ambient = c0 before t0_s, c1 after t1_s, linear in between (model time, s)."""
        t0 = int(t0_s * 1000)
        t1 = int(t1_s * 1000)
        if t1 <= t0:
            t1 = t0 + 1
        self._ramp = (t0, t1, float(c0), float(c1))
        self.amb_c = self._ambient_at(self.t_ms)

    def _ambient_at(self, t_ms):
        r = self._ramp
        if r is None:
            return self._amb0_c
        if t_ms <= r[0]:
            return r[2]
        if t_ms >= r[1]:
            return r[3]
        return r[2] + (r[3] - r[2]) * (t_ms - r[0]) / (r[1] - r[0])

    def add_fault(self, kind, start_s, duration_s=None, channel=None):
        """Fault `kind` active from start_s (model time, s) for duration_s (None: for ever).
        `channel` limits a load-cell fault to one channel (None: all channels)."""
        if kind not in FAULT_KINDS:
            raise ValueError("unknown fault kind: %r" % (kind,))
        if channel is not None and not (0 <= channel < self.n_cells):
            raise ValueError("fault %s: channel %r out of range" % (kind, channel))
        start_ms = int(start_s * 1000)
        end_ms = None if duration_s is None else start_ms + int(duration_s * 1000)
        self._faults.append((kind, start_ms, end_ms, channel))
        self._update_faults()

    def _update_faults(self):
        t = self.t_ms
        nxt = _NEVER_MS
        stuck = dead = tco = tcs = leak = pro = 0
        n = self.n_cells
        disc = self._lc_disc
        gl = self._lc_glitch
        for i in range(n):
            disc[i] = 0
            gl[i] = 0
        for f in self._faults:
            kind, s, e, ch = f
            if t < s:
                if s < nxt:
                    nxt = s
                continue
            if e is not None and t >= e:
                continue
            if e is not None and e < nxt:
                nxt = e
            if kind == "heater_stuck_on":
                stuck = 1
            elif kind == "heater_dead":
                dead = 1
            elif kind == "thermocouple_open":
                tco = 1
            elif kind == "thermocouple_short":
                tcs = 1
            elif kind == "vacuum_leak":
                leak = 1
            elif kind == "probe_open":
                pro = 1
            else:
                arr = disc if kind == "loadcell_disconnect" else gl
                for i in range(n):
                    if ch is None or ch == i:
                        arr[i] = 1
        self.f_heater_stuck = stuck
        self.f_heater_dead = dead
        self.f_tc_open = tco
        self.f_tc_short = tcs
        self.f_leak = leak
        self.f_probe_open = pro
        self._fault_next_ms = nxt
        if dead:
            self._heater_override = 0.0
        elif stuck:
            self._heater_override = self.heater_w
        else:
            self._heater_override = None
        self._leak_now_pa_s = self.leak_pa_s + (FAULT_LEAK_KPA_PER_MIN * 1000.0 / 60.0 if leak else 0.0)
        self._p_key = -1

    def fault_active(self, kind, channel=0):
        """True while a fault of this kind is active (load-cell kinds: on `channel`)."""
        if kind == "heater_stuck_on":
            return bool(self.f_heater_stuck)
        if kind == "heater_dead":
            return bool(self.f_heater_dead)
        if kind == "thermocouple_open":
            return bool(self.f_tc_open)
        if kind == "thermocouple_short":
            return bool(self.f_tc_short)
        if kind == "vacuum_leak":
            return bool(self.f_leak)
        if kind == "probe_open":
            return bool(self.f_probe_open)
        if kind == "loadcell_disconnect":
            return bool(self._lc_disc[channel])
        if kind == "loadcell_glitches":
            return bool(self._lc_glitch[channel])
        raise ValueError("unknown fault kind: %r" % (kind,))

    def load_cells(self, on):
        """Put the cells on their pans (on=1) or take them off (blank run, weighing outside)."""
        on = 1 if on else 0
        if on and not self.cells_loaded:
            amb = self.amb_c
            for i in range(self.n_cells):
                self._cell_c[i] = amb
            # the dummy cell goes in with the cells, from the same bench: it starts where they do
            # (otherwise a probe still warm from a blank run would start the soak too early)
            self.probe_c = amb
        self.cells_loaded = on

    def place_mass(self, i, mass_g):
        """Put a steel reference or check mass on pan i, in addition to whatever is there
        (replaces a mass placed earlier on that pan)."""
        if not (0 <= i < self.n_cells):
            raise ValueError("place_mass: channel %r out of range" % (i,))
        mass_g = float(mass_g)
        if mass_g < 0.0:
            raise ValueError("place_mass: negative mass %r" % (mass_g,))
        self._placed_g[i] = mass_g

    def remove_mass(self, i):
        """Take the reference / check mass off pan i."""
        if not (0 <= i < self.n_cells):
            raise ValueError("remove_mass: channel %r out of range" % (i,))
        self._placed_g[i] = 0.0

    def placed_mass_g(self, i):
        return self._placed_g[i]

    def preset(self, chamber_c=None, pressure_pa=None, lc_c=None, cell_c=None):
        """Force state (tests, starting mid-way): chamber_c also sets the thermocouple junction;
        cell_c (default: chamber_c) sets every cell and the probe's dummy cell; lc_c sets the
        load-cell body."""
        if chamber_c is not None:
            self.chamber_c = float(chamber_c)
            self.tc_c = float(chamber_c)
            if cell_c is None:
                cell_c = chamber_c
        if cell_c is not None:
            for i in range(self.n_cells):
                self._cell_c[i] = float(cell_c)
            self.probe_c = float(cell_c)
        if lc_c is not None:
            self.lc_c = float(lc_c)
        if pressure_pa is not None:
            self.pressure_pa = float(pressure_pa)

    # ---- time ------------------------------------------------------------------------------------
    def advance(self, dt_ms):
        """Advance the model by dt_ms milliseconds (integer), in steps of at most 1 s."""
        while dt_ms > 0:
            step_ms = 1000 if dt_ms > 1000 else dt_ms
            dt_ms -= step_ms
            if step_ms != self._c_dt_ms:
                self._set_consts(step_ms)
            dt, e_ch, e_tc, q_tc, e_lc, q_lc, e_p = self._c
            t0 = self.t_ms
            t1 = t0 + step_ms
            if self._ramp is None:
                amb = amb1 = self._amb0_c
            else:
                amb = self._ambient_at(t0 + (step_ms >> 1))
                amb1 = self._ambient_at(t1)

            # oven chamber: C dT/dt = P - k (T - Tamb), exact for constant inputs over the step
            pw = self._heater_override
            if not self.heater_contactor:
                pw = 0.0
            elif pw is None:
                d = self.heater_duty_ppm
                if d <= 0:
                    pw = 0.0
                elif d >= 1000000:
                    pw = self.heater_w
                else:
                    pw = self.heater_w * d / 1000000.0
            ch0 = self.chamber_c
            t_inf = amb + pw / self.oven_k_w
            ch1 = t_inf + (ch0 - t_inf) * e_ch
            self.chamber_c = ch1
            dch = ch1 - ch0
            # first-order lags of the chamber temperature (input ramps ch0 -> ch1 over the step)
            self.tc_c = ch1 + (self.tc_c - ch0) * e_tc - dch * q_tc
            self.lc_c = ch1 + (self.lc_c - ch0) * e_lc - dch * q_lc

            # vacuum: dp/dt = -kp (p - p_ult) - kv (p - p_atm) + leak   (p <= 1 atm)
            key = (1 if self.pump_on else 0) + (2 if self.vent_open else 0)
            p0 = p = self.pressure_pa
            if key:
                if key != self._p_key:
                    self._set_p_inf(key)
                p_inf = self._p_inf
                p = p_inf + (p - p_inf) * e_p[key]
            else:
                p += self._leak_now_pa_s * dt
            if p > P_ATM_PA:
                p = P_ATM_PA
            self.pressure_pa = p
            p = 0.5 * (p0 + p)                 # mid-step pressure for the cells

            # the probe's dummy cell: always in the oven, same lag law as the cells
            cache = self._probe_cache
            dp = cache[1] - p
            if dp > 20.0 or dp < -20.0 or cache[0] != step_ms:
                x = (self._pk_rad + self._pk_air * p) * dt
                e = exp(-x)
                cache[0] = step_ms
                cache[1] = p
                cache[2] = e
                cache[3] = (1.0 - e) / x
            self.probe_c = ch1 + (self.probe_c - ch0) * cache[2] - dch * cache[3]

            # cells
            cc = self._cell_c
            if self.cells_loaded:
                left = self._vol_left_g
                k_rad = self._k_rad
                k_air = self._k_air
                ccache = self._cell_cache
                k_ev = self._evap_k
                ex = exp
                # dm/dt = -k m with k = fp / tau * 2^((T - 120)/10), T at mid-step (c0 + c1)/2;
                # fp: evaporation slows towards 1 atm (1 at 0 Pa, EVAP_AIR_FACTOR at P_ATM_PA)
                nfp_dt = ((1.0 - EVAP_AIR_FACTOR) * p / P_ATM_PA - 1.0) * dt
                for i in range(self.n_cells):
                    cache = ccache[i]
                    # the coupling depends on pressure: recompute only when p moved by > 20 Pa
                    dp = cache[1] - p
                    if dp > 20.0 or dp < -20.0 or cache[0] != step_ms:
                        x = (k_rad[i] + k_air[i] * p) * dt
                        e = exp(-x)
                        cache[0] = step_ms
                        cache[1] = p
                        cache[2] = e
                        cache[3] = (1.0 - e) / x
                    c0 = cc[i]
                    c1 = ch1 + (c0 - ch0) * cache[2] - dch * cache[3]
                    cc[i] = c1
                    m = left[i]
                    if m > 0.0:
                        left[i] = m * ex(nfp_dt * k_ev[i] * ex((c0 + c1) * _LN2_PER_20C))
            else:
                for i in range(self.n_cells):
                    cc[i] = amb1

            self.t_ms = t1
            self.amb_c = amb1
            if t1 >= self._fault_next_ms:
                self._update_faults()

    def _set_consts(self, dt_ms):
        dt = dt_ms / 1000.0
        e_ch = exp(-dt * self.oven_k_w / self.oven_c_j)
        e_tc = exp(-dt / TC_TAU_S)
        q_tc = (1.0 - e_tc) * TC_TAU_S / dt
        e_lc = exp(-dt / LC_TAU_S)
        q_lc = (1.0 - e_lc) * LC_TAU_S / dt
        kp = 1.0 / PUMP_TAU_S
        kv = 1.0 / VENT_TAU_S
        self._c = (dt, e_ch, e_tc, q_tc, e_lc, q_lc,
                   (1.0, exp(-dt * kp), exp(-dt * kv), exp(-dt * (kp + kv))))
        self._c_dt_ms = dt_ms

    def _set_p_inf(self, key):
        kp = (1.0 / PUMP_TAU_S) if key & 1 else 0.0
        kv = (1.0 / VENT_TAU_S) if key & 2 else 0.0
        self._p_inf = (kp * PUMP_ULT_PA + kv * P_ATM_PA + self._leak_now_pa_s) / (kp + kv)
        self._p_key = key

    # ---- sensors ---------------------------------------------------------------------------------
    def tc_frame(self):
        """MAX31855 32-bit frame (unsigned int): bits 31..18 thermocouple temp (14-bit two's
        complement, 0.25 degC), bit 16 fault, bits 15..4 cold junction (12-bit two's complement,
        0.0625 degC, = ambient), bit 2 SCV, bit 1 SCG, bit 0 OC.  On a fault the temp field is 0."""
        if self.f_tc_open:
            return self._frame(0.0, None, TC_OC_BIT)
        if self.f_tc_short:
            return self._frame(0.0, None, TC_SCG_BIT)
        return self._frame(self.tc_c, self._rng_tc, 0)

    def probe_frame(self):
        """The reference probe's MAX31855 frame (same layout and noise as tc_frame), reading the
        dummy cell's temperature; its junction is embedded in the dummy cell, so the cell's lag is
        its lag."""
        if self.f_probe_open:
            return self._frame(0.0, None, TC_OC_BIT)
        return self._frame(self.probe_c, self._rng_probe, 0)

    def _frame(self, temp_c, rng, fault_bits):
        cj = _round_int(self.amb_c * 16.0)
        if cj > 2047:
            cj = 2047
        elif cj < -2048:
            cj = -2048
        frame = (cj & 0xFFF) << 4
        if fault_bits:
            return frame | TC_FAULT_BIT | fault_bits
        code = _round_int((temp_c + TC_NOISE_C * rng.gauss()) * 4.0)
        if code > 8191:
            code = 8191
        elif code < -8192:
            code = -8192
        return ((code & 0x3FFF) << 18) | frame

    def tc_frame_into(self, buf):
        """Write the MAX31855 frame big-endian into buf[0:4] (what an SPI read returns)."""
        _frame_into(self.tc_frame(), buf)

    def probe_frame_into(self, buf):
        _frame_into(self.probe_frame(), buf)

    def pressure_adc_u16(self):
        """Vacuum transducer on a 16-bit ADC (see the PRESSURE_* constants)."""
        v = PRESSURE_ADC_ZERO + PRESSURE_ADC_SPAN * self.pressure_pa / PRESSURE_FS_PA
        v = _round_int(v + PRESSURE_NOISE_COUNTS * self._rng_p.gauss())
        if v < 0:
            return 0
        if v > PRESSURE_ADC_FULL:
            return PRESSURE_ADC_FULL
        return v

    def lc_temp_c(self):
        """Temperature sensor next to the load cells, degC (float, with noise)."""
        return self.lc_c + LC_TEMP_NOISE_C * self._rng_lct.gauss()

    def air_density_mg_cm3(self):
        """Air density in the chamber (ideal gas, chamber temperature); 1 kg/m3 = 1 mg/cm3."""
        return self.pressure_pa * _AIR_M_OVER_R / (self.chamber_c + 273.15)

    def _lc_conv_idx(self, i, t_ms):
        return (t_ms - self._lc_phase_ms[i]) // LC_PERIOD_MS

    def loadcell_ready(self, i, t_ms=None):
        """True when channel i has a conversion not yet read (10 SPS; never while disconnected)."""
        if self._lc_disc[i]:
            return False
        if t_ms is None:
            t_ms = self.t_ms
        return self._lc_conv_idx(i, t_ms) > self._lc_read_idx[i]

    def loadcell_load_g(self, i):
        """Net force on channel i now, as grams: pan and cell less the air they displace."""
        rho = self.air_density_mg_cm3() * 0.001          # g/cm3
        m = PAN_MASS_G - rho * PAN_VOLUME_CM3
        if self.cells_loaded:
            m += self.true_mass_g(i) - rho * self._vol_cm3[i]
        m += self._placed_g[i] * (1.0 - rho / STEEL_G_PER_CM3)
        return m

    def _creep_g(self, i, load_g):
        # dx/dt = (creep * load - x) / tau, evaluated when the channel is read: the load is taken as
        # constant since the previous evaluation (the controller reads every channel at least once
        # a second, against a time constant of minutes). Settled at the first evaluation.
        target = self.lc_creep * load_g
        x = self._creep_x_g[i]
        t = self.t_ms
        if x is None:
            x = target
        else:
            dt_s = (t - self._creep_t_ms[i]) / 1000.0
            if dt_s > 0.0:
                x = target + (x - target) * exp(-dt_s / self.lc_creep_tau_s)
        self._creep_x_g[i] = x
        self._creep_t_ms[i] = t
        return x

    def loadcell_expected_counts(self, i):
        """Noise-free reading of channel i now (float counts): for tests and reports. Advances the
        channel's creep node to the model time."""
        m = self.loadcell_load_g(i)
        dt_c = self.lc_c - LC_DRIFT_REF_C
        span = self.lc_counts_per_g * (1.0 + self.lc_span_tc * dt_c)
        return (self.lc_zero_offset_counts[i] + span * (m + self._creep_g(i, m))
                + self.lc_drift_counts_per_c * dt_c)

    def loadcell_raw(self, i):
        """Latest conversion of channel i: signed 24-bit counts.  Reading the same conversion
        twice returns the same value; a disconnected channel reads LC_RAIL_HI."""
        if self._lc_disc[i]:
            return LC_RAIL_HI
        idx = self._lc_conv_idx(i, self.t_ms)
        self._lc_read_idx[i] = idx
        if idx == self._lc_val_idx[i]:
            return self._lc_val[i]
        rng = self._lc_rng[i]
        v = _round_int(self.loadcell_expected_counts(i) + self.lc_noise_counts * rng.gauss())
        if self._lc_glitch[i] and rng.below(1000000) < LC_GLITCH_PPM:
            r = rng.u30()
            if r & 1:
                v = LC_RAIL_HI if r & 2 else LC_RAIL_LO
            else:
                mag = 65536 + (r >> 2) % (1048576 - 65536 + 1)
                v = v + mag if r & 2 else v - mag
        if v > LC_RAIL_HI:
            v = LC_RAIL_HI
        elif v < LC_RAIL_LO:
            v = LC_RAIL_LO
        self._lc_val_idx[i] = idx
        self._lc_val[i] = v
        return v

    # ---- cells, operator, reporting --------------------------------------------------------------
    def leak_visible(self, i):
        return self._leak_visible[i]

    def cell_c(self, i):
        return self._cell_c[i]

    def initial_mass_g(self, i):
        return self._m0_g[i]

    def true_mass_g(self, i):
        return self._m0_g[i] - (self._volatile0_g[i] - self._vol_left_g[i])

    def volatile_left_g(self, i):
        return self._vol_left_g[i]

    def true_loss_ppm(self, i):
        """(m0 - m1) / m0 * 1e6 of the cell's own mass (float)."""
        return (self._volatile0_g[i] - self._vol_left_g[i]) / self._m0_g[i] * 1e6

    def method_loss_ppm(self, i, method):
        """What cell i would lose (ppm of m0) held at the method's conditions from the start with
        all its volatiles: cell at setpoint_c_x100, pressure at METHOD_P_FRACTION of vacuum_pa
        (the middle of the controller's pump hysteresis band, 20 % .. 50 % of the limit), for
        soak_s.  Exact for the model's evaporation law: m(t) = m0 exp(-k t)."""
        t_c = method["setpoint_c_x100"] / 100.0
        p = METHOD_P_FRACTION * method["vacuum_pa"]
        fp = 1.0 - (1.0 - EVAP_AIR_FACTOR) * p / P_ATM_PA
        k = fp * self._evap_k[i] * exp(t_c * _LN2_PER_10C)
        v0 = self._volatile0_g[i]
        return v0 * (1.0 - exp(-k * method["soak_s"])) / self._m0_g[i] * 1e6
