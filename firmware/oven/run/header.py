# The test's log header and the audit trail at START (functions of a plan.Plan `p`): what changed
# since the last START recorded, a blank run's fit stored and counted, the header dict with its
# "records" (ISO/IEC 17025 §7.8) and "audit". Loaded for START and for the test's header, released
# while a stage runs (session.PHASE_MODULES): none of it is needed then (docs/FIT.md).
from oven.core import codes as C
from oven.run.plan import (ConfigError, audit, audit_state, calstore, load_blank, load_config,
                           save_blank)


def audit_check(p, cfg=None, blank=None, run=None):
    """Record what changed since the snapshot: of cfg and blank when given (what START
    loaded), else of the files as they are now (never used for the running test). Returns
    the appended entries ([] also when the trail cannot be written: that is reported)."""
    try:
        if cfg is None:
            cur = state_now(p)
        else:
            cur = audit_state(cfg, blank, p.n_cells, p.cal_dir)
        return p.trail.check(cur, audit.rtc_s(p.board), run)
    except (OSError, ValueError) as e:
        p.say("audit trail: %r" % (e,))
        return []


def state_now(p):
    blank = load_blank(p.n_cells, p.blank_path)
    try:
        return audit_state(load_config(p.config_path), blank, p.n_cells, p.cal_dir)
    except ConfigError as e:
        # an unreadable config is not a change of any field: keep the known config fields
        p.say("audit: %s" % e)
        cur = audit_state({}, blank, p.n_cells, p.cal_dir)
        for k in list(cur):
            if k.startswith("config."):
                del cur[k]
        prev = p.trail.state() or {}
        for k in prev:
            if k.startswith("config."):
                cur[k] = prev[k]
        return cur


def keep_blank(p, blank_fit, run_id, checked=False):
    """A blank run just produced this fit: store it for the next tests (audited). checked:
    the audit trail was brought up to date just before."""
    if blank_fit is None or p.blank is not None:
        return
    if not checked:
        audit_check(p, run=run_id)    # a file changed during the blank run: recorded first
    old = load_blank(p.n_cells, p.blank_path)
    try:
        save_blank(blank_fit, p.blank_path)
    except OSError as e:
        p.say("could not store the blank fit: %r" % e)
        return
    p.blank = blank_fit
    try:
        p.trail.record("calib.blank", audit.blank_summary(old), audit.blank_summary(blank_fit),
                       audit.rtc_s(p.board), run_id)
    except (OSError, ValueError) as e:
        p.say("audit trail: %r" % (e,))


def audit_header(p, run_id):
    """The log header's "audit": the trail's last entries (audit.Trail.for_header)."""
    try:
        return p.trail.for_header(run_id)
    except (OSError, ValueError) as e:
        p.say("audit trail: %r" % (e,))
        return {"trail": p.trail.path, "error": repr(e)}


def header(p, run_id, blank_fit):
    """The test's log header (written when the test stage starts, after a blank run). Also
    the moment the audit trail is taken into the run's record: changes since START are
    recorded first, then a blank run's new fit is stored."""
    return build_header(p, run_id, prepare_header(p, run_id, blank_fit))


def prepare_header(p, run_id, blank_fit):
    """header()'s first half: the audit trail's changes since START recorded, a blank run's new
    fit stored, and this run counted in the fit's "runs_used"; returns the fit the test uses."""
    for _ in prepare_steps(p, run_id, blank_fit):
        pass
    return p.header_fit


def prepare_steps(p, run_id, blank_fit):
    """prepare_header() as a generator of steps (the session's, between two of which the
    garbage of each can be collected); the fit the test uses is then in header_fit."""
    # the modules session.release() dropped after boot come back one a step: an import of
    # calstore or audit is the longest piece of work here (docs/FIT.md section 3)
    audit.module()
    yield
    calstore.module()
    yield
    audit_check(p, run=run_id)
    yield
    keep_blank(p, blank_fit, run_id, checked=True)
    yield
    p.header_fit = use_blank(p, blank_fit)


def build_header(p, run_id, blank_fit):
    """header()'s second half: the header dict for the fit prepare_header() returned."""
    from oven.run import app
    return {"run_id": run_id, "fw_version": app.FW_VERSION, "board": p.board.name, "mode": "test",
            "method": p.method, "cells": p.cells,
            "calibration": {"counts_per_g": p.counts_per_g,
                            "span": "calib" if p.cal.get("source") == "measured" else "config",
                            "blank": blank_fit},
            "cal": p.cal, "records": records(p), "audit": audit_header(p, run_id),
            "probe": getattr(p.board, "probe", None) is not None}


def use_blank(p, fit):
    """This test uses the blank fit once more: its "runs_used" (in every channel's dict) goes
    up by one, in the stored file too when it is the stored fit (not in the audit trail:
    audit.blank_summary leaves it out). The method's blank_max_runs bounds it (verdict)."""
    if not isinstance(fit, list):
        return fit
    out = []
    for ch in fit:
        ch = dict(ch)
        n = ch.get("runs_used", 0)
        ch["runs_used"] = (n if isinstance(n, int) else 0) + 1
        out.append(ch)
    if p.blank is not None and audit.same(load_blank(p.n_cells, p.blank_path), fit):
        try:
            save_blank(out, p.blank_path)
        except OSError as e:
            p.say("could not count the blank fit's use: %r" % (e,))
    if p.blank is not None:
        p.blank = out
    return out


def records(p):
    """The log header's "records" (ISO/IEC 17025 §7.8): operator, cell serial numbers,
    equipment with calibration dates, the date and time and where they came from, ambient
    conditions when a sensor is fitted, the check-weight result and the lab's stated choices."""
    b = p.board
    rtc = audit.rtc_s(b)
    if rtc is not None:
        clock = {"source": "rtc", "start_s": rtc}
    elif "host_time_s" in p.start:
        # the host's clock when /start.json was written plus the board's ticks until START
        # (load_start); test_s: the same clock now, when the test's header is written
        el = b.ticks_diff(b.ticks_ms(), p.t_start_ms) // 1000 if hasattr(b, "ticks_ms") else 0
        clock = {"source": "host", "start_s": p.start["host_time_s"], "test_s": p.start["host_time_s"] + el,
                 "set_age_s": p.start.get("age_s")}
    else:
        clock = {"source": "none", "start_s": None}
    eq = calstore.equipment(p.cal_dir) or {}
    equipment = {}
    equipment["controller"] = {"board": b.name, "id": eq.get("controller", "")}
    for k in eq:
        if k != "controller":
            equipment[k] = eq[k]
    chans = []
    for ch in p.cal.get("channels", []):
        chans.append({"cal_id": ch.get("cal_id", ""), "when": ch.get("when")})
    equipment["span_calibration"] = chans
    amb = ambient(getattr(b, "ambient", None))
    m = p.method
    probe = getattr(b, "probe", None) is not None
    lab = {"setpoint_c_x100": m["setpoint_c_x100"], "tolerance_c_x100": m["tol_c_x100"],
           "vacuum_pa": m["vacuum_pa"], "soak_s": m["soak_s"],
           "soak_start": ("cell reference probe and chamber in tolerance, vacuum reached" if probe
                          else "chamber in tolerance and vacuum reached (chamber-timed: no reference probe)"),
           "decision": m["decision"], "limit_ppm": m["limit_ppm"], "comparator": m["comparator"],
           "statements": p.lab}
    return {"operator": p.operator, "operator_source": p.operator_source,
            "cells": p.cells, "cells_source": "host" if "cells" in p.start else "config",
            "equipment": equipment, "clock": clock, "ambient": amb, "check_weight": p.check_result or None,
            "lab": lab}


def ambient(sensor):
    """Ambient conditions from the board's optional sensor (board.ambient): a callable returning a
    dict, or a driver whose read() returns codes.OK and sets temp_c_x100 (and, when it has them,
    rh_permille, pressure_pa). None when no sensor is fitted."""
    if sensor is None:
        return None
    try:
        if callable(sensor) and not hasattr(sensor, "read"):
            return sensor()
        st = sensor.read()
        if st != C.OK:
            return {"error": "sensor status %r" % (st,)}
        out = {}
        for k in ("temp_c_x100", "rh_permille", "pressure_pa"):
            v = getattr(sensor, k, None)
            if v is not None:
                out[k] = v
        return out
    except Exception as e:      # noqa: BLE001  a failing ambient sensor is recorded, never stops a test
        return {"error": repr(e)}
