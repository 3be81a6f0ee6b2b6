# Test methods: the standards' presets and validation of custom methods.
# Every time, level, tolerance and limit of a run comes from its method. Units are in the names.

# Field: (default for custom methods, min, max, unit/help). Strings have their own check below.
_INT_FIELDS = (
    ("limit_ppm", 5000, 1, 100000, "loss limit, ppm of m0 (5000 = 0.5 %)"),
    ("setpoint_c_x100", 12000, 3000, 13000, "oven setpoint, 0.01 degC"),
    ("tol_c_x100", 200, 10, 1000, "temperature tolerance, 0.01 degC"),
    ("soak_s", 21600, 60, 172800, "required in-spec soak time, s"),
    ("soak_max_total_s", 28800, 60, 345600, "maximum soak time including excursions, s"),
    ("vacuum_pa", 10000, 100, 50000, "vacuum level (absolute), Pa"),
    ("leak_rate_pa_per_min", 500, 10, 20000, "pump-down leak-rate limit, Pa/min"),
    ("pumpdown_timeout_s", 1800, 60, 7200, "time allowed to reach the vacuum level, s"),
    ("heatup_timeout_s", 7200, 300, 28800, "time allowed to reach the setpoint band, s"),
    ("cooldown_timeout_s", 21600, 600, 86400, "time allowed to cool for the final weighing, s"),
    ("vent_below_c_x100", 4000, 2500, 10000, "vent only below this oven temperature, 0.01 degC"),
    ("final_weigh_max_above_ambient_c_x100", 300, 50, 1000, "final weighing only within this of the m0 temperature, 0.01 degC"),
    ("u_sys_ppm", 0, 0, 5000, "optional lab-stated extra standard uncertainty of the loss, ppm (docs/UNCERTAINTY.md)"),
    ("window_n", 64, 16, 64, "samples in a weighing window"),
    ("stable_sd_ug", 3000, 100, 100000, "stability limit: window standard deviation, ug"),
    ("stable_hold", 20, 1, 1000, "samples the spread must stay within the limit"),
    ("weigh_timeout_s", 300, 10, 3600, "time allowed for a stable reading, s"),
    ("blank_soak_s", 1800, 0, 86400, "soak time of the blank (empty-pan) calibration run, s"),
    ("resume_grace_s", 120, 0, 3600, "longest power cut after which a soak may resume (recovery.py), s; 0 = never"),
    ("resume_max", 3, 0, 100, "most power-cut resumes per run"),
    ("settle_s", 900, 0, 7200, "load-cell settling (creep) after the cells are loaded, before m0, s"),
    ("lc_temp_band_c_x100", 200, 10, 1000, "m1 only once the load-cell temperature is within this of its value at m0, 0.01 degC"),
    ("lc_temp_wait_s", 14400, 600, 86400, "longest wait for that band; then m1 is weighed and the cell cannot PASS, s"),
    ("stable_sd_permille", 20, 1, 500, "stable: standard deviation of the window mean <= this share of the allowed loss (limit x m0), 0.1 %"),
    ("stable_drift_permille", 10, 1, 1000, "stable: drift <= this share of the allowed loss per minute, 0.1 %/min"),
    ("blank_max_runs", 20, 1, 1000, "a blank (drift) fit is valid for this many test runs"),
    ("zero_return_max_permille", 100, 1, 1000, "blank run zero-return bound, share of the allowed loss, 0.1 %"),
    ("probe_wait_s", 28800, 600, 86400, "longest wait, once the chamber is in the band, for the reference probe (the cell) to reach it, s"),
    ("preheat_band_c_x100", 50, 10, 500, "heat_in air: the probe (the cell; without a probe the chamber) within this of the setpoint for a minute before pump-down, 0.01 degC"),
)

_CHOICES = (
    ("comparator", "le", ("le", "lt")),
    ("decision", "guarded", ("guarded", "simple")),
    ("early_fail", "continue", ("continue", "stop")),
    ("chamber_timed_pass", "no", ("no", "yes")),
    # heat the cells in air (convection) to the setpoint before the pump-down, and cool them vented
    # after the soak: the vacuum time is then the method's soak (docs/APP.md "Heating and cooling")
    ("heat_in", "air", ("air", "vacuum")),
    ("cool_in", "air", ("air", "vacuum")),
)


class MethodError(ValueError):
    def __init__(self, field, msg):
        super().__init__("method." + field + ": " + msg)
        self.field = field


def _base(name, limit_ppm, comparator):
    m = {}
    for f in _INT_FIELDS:
        m[f[0]] = f[1]
    for c in _CHOICES:
        m[c[0]] = c[1]
    m["name"] = name
    m["limit_ppm"] = limit_ppm
    m["comparator"] = comparator
    return m


# GB/T "Solid-state batteries for EVs Part 1" (2026): loss <= 0.5 %.
# T/CSAE 434-2025: loss < 1 % (strict inequality).
PRESETS = {
    "gb-2026": _base("gb-2026", 5000, "le"),
    "tcsae-434-2025": _base("tcsae-434-2025", 10000, "lt"),
}


def preset(name):
    if name not in PRESETS:
        raise MethodError("name", "unknown method %r (presets: %s)" % (name, ", ".join(sorted(PRESETS))))
    return dict(PRESETS[name])


def validate(obj):
    """Return a complete, checked method dict. `obj` is a preset name or a dict: a dict may name a
    `base` preset and override any field; unknown fields are an error naming the field."""
    if isinstance(obj, str):
        return preset(obj)
    if not isinstance(obj, dict):
        raise MethodError("", "a method is a preset name or an object")
    base = obj.get("base", "gb-2026")
    if not isinstance(base, str) or base not in PRESETS:
        raise MethodError("base", "must be a preset name (%s)" % ", ".join(sorted(PRESETS)))
    m = preset(base)
    m["name"] = "custom"
    known = {"base": 1, "name": 1}
    for f in _INT_FIELDS:
        known[f[0]] = 1
    for c in _CHOICES:
        known[c[0]] = 1
    for k in obj:
        if k not in known:
            raise MethodError(str(k), "unknown field")
    for f in _INT_FIELDS:
        k = f[0]
        if k in obj:
            v = obj[k]
            if isinstance(v, bool) or not isinstance(v, int):
                raise MethodError(k, "must be an integer (%s)" % f[4])
            if not f[2] <= v <= f[3]:
                raise MethodError(k, "%d is out of range %d..%d (%s)" % (v, f[2], f[3], f[4]))
            m[k] = v
    for c in _CHOICES:
        k = c[0]
        if k in obj:
            if obj[k] not in c[2]:
                raise MethodError(k, "%r is not one of %s" % (obj[k], ", ".join(c[2])))
            m[k] = obj[k]
    if "name" in obj:
        n = obj["name"]
        if not isinstance(n, str) or not 1 <= len(n) <= 32:
            raise MethodError("name", "must be a string of 1..32 characters")
        m["name"] = n
    if m["soak_max_total_s"] < m["soak_s"]:
        raise MethodError("soak_max_total_s", "%d is below soak_s %d" % (m["soak_max_total_s"], m["soak_s"]))
    if m["setpoint_c_x100"] + m["tol_c_x100"] > 13000:
        raise MethodError("tol_c_x100", "setpoint + tolerance exceeds 130.00 degC (the heater cutoff is 135 degC)")
    return m


def describe_fields():
    """(name, default, min, max, help) rows for documentation and `ovenctl` help."""
    return _INT_FIELDS
