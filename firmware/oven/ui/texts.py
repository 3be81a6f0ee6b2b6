# What the operator reads: the texts and number formats of the 128x64 display (8x8 font: 16
# characters a line), and the plain-text verdict lines the host prints. Pure: no framebuffer, no
# I/O; firmware/oven/ui/display.py draws these strings. Runs at redraw time only (it builds strings, so
# it allocates; never call it from the control tick).
from oven.core import codes as C
from oven.core import verdict as V

COLS = 21        # verdict_lines(): the host's text rendering of the verdict screen
LINE = 16        # characters in one 8x8 line of the 128-pixel display

# Phase labels on the display (app.PHASE_NAMES order; at most 11 characters so that a clock
# fits on the same title line)
PHASE_LABELS = ("READY", "CHECKING", "TARE", "LOAD CELLS", "WEIGH m0", "PUMP DOWN", "HEAT UP", "SOAK",
                "COOL DOWN", "VENT", "WEIGH m1", "LEAK CHECK", "VERDICT", "DONE", "ABORTED", "PRE-HEAT")

# Fault code -> (name, at most 8 characters: drawn at double size; what to do, at most 3 lines
# of 16 characters once wrapped). Every F_* code of codes.py has an entry (tests/dual/test_display.py).
FAULTS = {
    C.F_TEMP_MAX: ("OVERTEMP", "oven above the cutoff: check SSR and sensor"),
    C.F_TEMP_MIN: ("TEMP LOW", "reading too low: check thermocouple"),
    C.F_TC_OPEN: ("TC OPEN", "check thermocouple wiring"),
    C.F_TC_SHORT: ("TC SHORT", "check thermocouple insulation"),
    C.F_TC_STALE: ("TC STALE", "no reading: check converter and SPI wiring"),
    C.F_HEAT_GAIN: ("NO HEAT", "no temperature rise: check heater, SSR"),
    C.F_RUNAWAY: ("RUNAWAY", "temperature out of control: check the SSR"),
    C.F_VACUUM_LOST: ("VAC LOST", "vacuum lost: check pump, hoses, door seal"),
    C.F_LEAK_RATE: ("VAC LEAK", "chamber leaks: check door seal and vent valve"),
    C.F_PUMPDOWN_TIMEOUT: ("PUMPDOWN", "vacuum not reached: check pump and seal"),
    C.F_LOADCELL: ("LOADCELL", "check load cell cable and the cells on pans"),
    C.F_WEIGH_TIMEOUT: ("UNSTABLE", "never stable: check drafts, vibration, pans"),
    C.F_FLASH: ("STORAGE", "log storage error: export logs, free space"),
    C.F_WATCHDOG: ("WATCHDOG", "controller was reset: restart the test"),
    C.F_OPERATOR_ABORT: ("STOPPED", "test stopped by the operator"),
    C.F_SOAK_MAX_TIME: ("SOAK MAX", "soak not kept in spec: check oven and vacuum"),
    C.F_P_SENSOR: ("P SENSOR", "vacuum gauge fault: check its wiring"),
    C.F_HEATUP_TIMEOUT: ("HEAT TMO", "setpoint not reached: check heater and door"),
    C.F_COOLDOWN_TIMEOUT: ("COOL TMO", "oven too slow to cool: check the oven"),
    C.F_INTERRUPTED: ("POWERCUT", "power lost or reset mid-run: restart the test"),
    C.F_PROBE: ("PROBE", "check the probe in the dummy cell"),
}


def fault_info(code):
    """(name, what to do) for a fault code; unknown codes still say where to look."""
    if code in FAULTS:
        return FAULTS[code]
    return ("FAULT %d" % code, "see the run log (ovenctl report)")


def wrap(text, width=LINE):
    """Split text into lines of at most width characters at spaces (a longer word is cut)."""
    lines = []
    cur = ""
    for w in text.split(" "):
        while len(w) > width:
            if cur:
                lines.append(cur)
                cur = ""
            lines.append(w[:width])
            w = w[width:]
        if not cur:
            cur = w
        elif len(cur) + 1 + len(w) <= width:
            cur = cur + " " + w
        else:
            lines.append(cur)
            cur = w
    if cur:
        lines.append(cur)
    return lines


# ---------------------------------------------------------------- number formats (integers in)
def _pct(x100):
    s = "-" if x100 < 0 else ""
    x100 = -x100 if x100 < 0 else x100
    return "%s%d.%02d%%" % (s, x100 // 100, x100 % 100)


pct = _pct


def ppm_pct(ppm):
    """ppm of m0 as a percentage with 2 decimals (rounded half away from zero: display only)."""
    if ppm < 0:
        return _pct(-((-ppm + 50) // 100))
    return _pct((ppm + 50) // 100)


def temp(c_x100):
    """0.01 degC -> '120.0C' (0.1 degC, half away from zero). The 8x8 font has no degree sign."""
    s = ""
    if c_x100 < 0:
        s = "-"
        c_x100 = -c_x100
    d = (c_x100 + 5) // 10
    return "%s%d.%dC" % (s, d // 10, d % 10)


def kpa(pa):
    """Absolute pressure: '2.15kPa' below 10 kPa, '101.3kPa' above."""
    if pa < 0:
        pa = 0
    if pa < 9995:
        v = (pa + 5) // 10
        return "%d.%02dkPa" % (v // 100, v % 100)
    v = (pa + 50) // 100
    return "%d.%dkPa" % (v // 10, v % 10)


def hms(s):
    if s < 0:
        s = 0
    return "%d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60)


def hm(s):
    if s < 0:
        s = 0
    return "%d:%02d" % (s // 3600, s // 60 % 60)


def limit(m):
    """'<=0.50%' or '<1.00%' for a method."""
    return ("<=" if m["comparator"] == "le" else "<") + _pct(m["limit_ppm"] // 100)


def method_lines(m):
    """What the idle screen says about a method (besides its name)."""
    t = m["setpoint_c_x100"]
    tol = m["tol_c_x100"]
    soak = m["soak_s"]
    soak_s = ("%dh" % (soak // 3600)) if soak % 3600 == 0 else hm(soak)
    sp = ("%dC" % (t // 100)) if t % 100 == 0 else temp(t)
    return ["loss " + limit(m),
            "%s +-%d.%dC %s" % (sp, tol // 100, tol % 100 // 10, soak_s),
            "vac <=" + kpa(m["vacuum_pa"])]


# ---------------------------------------------------------------- verdict as text (host summary)
def verdict_lines(c):
    """Verdict screen of a finished Controller c as text: the overall verdict first and biggest,
    then one line per cell (loss and U), the method and limit."""
    fv = c.final_verdict()
    lines = [V.VERDICT_NAMES[fv]]
    m = c.m
    lim = m["limit_ppm"]
    lines.append("%s %s%s" % (m["name"][:11], "<=" if m["comparator"] == "le" else "<", _pct(lim // 100)))
    for i in range(c.n):
        r = c.results[i]
        if r is None:
            lines.append("C%d  no result" % (i + 1))
            continue
        tag = V.VERDICT_NAMES[r.verdict][:4]
        lines.append("C%d %-4s %s U%s" % (i + 1, tag, _pct(r.loss_pct_x100), _pct(r.u_pct_x100)))
        if r.flags & V.FL_LEAK:
            lines.append("   leak seen")
    if c.fault:
        lines.append("fault %s" % fault_info(c.fault)[0])
    elif c.invalid:
        lines.append("invalid: %s" % fault_info(c.invalid)[0])
    return [ln[:COLS] for ln in lines[:8]]
