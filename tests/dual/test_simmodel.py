# Physical model of the simulated bench (boards/sim/model.py): runs in CPython and in the VM.
from math import exp, log

from sim.model import (Bench, Rng, P_ATM_PA, PAN_MASS_G, PAN_VOLUME_CM3, LC_RAIL_HI, LC_RAIL_LO,
                       PRESSURE_ADC_ZERO, PRESSURE_ADC_SPAN, PRESSURE_FS_PA, PUMP_ULT_PA,
                       TC_FAULT_BIT, TC_OC_BIT, TC_SCG_BIT, TC_SCV_BIT, FAULT_KINDS)


def _bench(**kw):
    scn = {"seed": 1}
    for k in kw:
        scn[k] = kw[k]
    return Bench(scn)


def _decode_tc(f):
    t = (f >> 18) & 0x3FFF
    if t & 0x2000:
        t -= 0x4000
    cj = (f >> 4) & 0xFFF
    if cj & 0x800:
        cj -= 0x1000
    return t * 0.25, cj * 0.0625, f & TC_FAULT_BIT, f & 7


def _rms(xs):
    n = len(xs)
    m = sum(xs) / n
    return (sum((x - m) * (x - m) for x in xs) / n) ** 0.5


def _read_lc(b, i, n, dt_ms=100):
    out = []
    for _ in range(n):
        b.advance(dt_ms)
        out.append(b.loadcell_raw(i))
    return out


def test_rng_golden_values_identical_on_both_platforms():
    r = Rng(12345, 0)
    assert [r.u30() for _ in range(4)] == [326707503, 181459867, 161160638, 474505670]
    assert [r.gauss() for _ in range(3)] == [-0.9843993269094216, -0.006948498032900034, 0.8670517110618738]
    r = Rng(0xFFFFFFFF, 7)
    assert [r.u30() for _ in range(2)] == [666202349, 827125235]


def test_rng_gauss_statistics():
    r = Rng(3, 1)
    n = 4000
    xs = [r.gauss() for _ in range(n)]
    m = sum(xs) / n
    assert abs(m) < 0.06
    assert 0.93 < _rms(xs) < 1.07


def _script(seed):
    b = Bench({"seed": seed, "cells": [{}, {"mass_g": 30.0}]})
    b.heater_duty_ppm = 700000
    b.pump_on = 1
    out = []
    for k in range(60):
        b.advance(100)
        out.append(b.tc_frame())
        out.append(b.pressure_adc_u16())
        out.append(b.loadcell_raw(0))
        out.append(b.loadcell_raw(1))
        out.append(b.lc_temp_c())
    b.advance(600000)
    out.append(b.chamber_c)
    out.append(b.true_loss_ppm(0))
    return out


def test_determinism_for_a_seed():
    a = _script(42)
    assert a == _script(42)
    assert a != _script(43)


def test_heatup_full_power_matches_first_order_solution():
    b = _bench(ambient_c=23.0)
    b.heater_duty_ppm = 1000000
    tau = 4000.0 / 2.0
    t_inf = 23.0 + 400.0 / 2.0
    for k in range(1, 61):
        b.advance(60000)
        t = 60.0 * k
        want = t_inf + (23.0 - t_inf) * exp(-t / tau)
        assert abs(b.chamber_c - want) < 0.5, (t, b.chamber_c, want)
        assert abs(b.chamber_c - want) < 1e-6
    # the thermocouple lags by ~tau_tc * slope (< 1 degC) and is quantised to 0.25 degC
    temp, cj, fault, bits = _decode_tc(b.tc_frame())
    assert fault == 0 and bits == 0
    assert abs(temp - b.chamber_c) < 1.0
    assert abs(cj - 23.0) <= 0.0625


def test_small_steps_agree_with_1s_steps():
    a = _bench()
    b = _bench()
    a.heater_duty_ppm = b.heater_duty_ppm = 600000
    a.pump_on = b.pump_on = 1
    for _ in range(300):
        a.advance(1000)
        for _ in range(10):
            b.advance(100)
    assert abs(a.chamber_c - b.chamber_c) < 1e-6
    assert abs(a.tc_c - b.tc_c) < 1e-4
    assert abs(a.pressure_pa - b.pressure_pa) < 1e-3
    assert abs(a.cell_c(0) - b.cell_c(0)) < 1e-3
    assert a.t_ms == b.t_ms == 300000


def test_heater_faults():
    b = _bench()
    b.add_fault("heater_stuck_on", 0, 600)
    b.heater_duty_ppm = 0
    b.advance(600000)
    assert b.chamber_c > 23.0 + 20.0
    hot = b.chamber_c
    b.advance(600000)                 # fault over: heater follows the duty (0) again
    assert b.chamber_c < hot
    d = _bench()
    d.add_fault("heater_dead", 0, None)
    d.heater_duty_ppm = 1000000
    d.advance(600000)
    assert abs(d.chamber_c - 23.0) < 1e-9


def _hold(b, temp_c):
    # duty that holds the chamber at temp_c in steady state
    b.heater_duty_ppm = int(2.0 * (temp_c - b.amb_c) / 400.0 * 1000000 + 0.5)


def test_evaporation_exponential_at_120c_under_vacuum():
    b = _bench(cells=[{"volatile_g": 1.0, "evap_tau_min": 40.0}])
    b.pump_on = 1
    p_inf = PUMP_ULT_PA + (0.05 * 1000.0 / 60.0) * 100.0
    b.preset(chamber_c=120.0, pressure_pa=p_inf)
    b.heater_duty_ppm = 485000
    b.advance(3600000)
    assert abs(b.chamber_c - 120.0) < 1e-6
    assert abs(b.pressure_pa - p_inf) < 1e-6
    fp = 1.0 - 0.95 * p_inf / P_ATM_PA
    want = exp(-3600.0 * fp / (40.0 * 60.0))
    left = b.volatile_left_g(0)
    assert abs(left / want - 1.0) < 0.005, (left, want)
    assert abs(b.true_loss_ppm(0) - (1.0 - left) / 45.0 * 1e6) < 1e-6
    assert abs(b.true_mass_g(0) - (45.0 - (1.0 - left))) < 1e-9
    assert b.initial_mass_g(0) == 45.0


def test_evaporation_doubles_per_10c():
    def rate(temp_c):
        b = _bench(cells=[{"volatile_g": 1.0, "evap_tau_min": 40.0}])
        b.preset(chamber_c=temp_c, pressure_pa=0.0)
        _hold(b, temp_c)
        b.advance(600000)
        return -log(b.volatile_left_g(0)) / 600.0
    r120 = rate(120.0)
    r130 = rate(130.0)
    assert abs(r120 * 2400.0 - 1.0) < 0.01       # tau = 40 min at 120 degC, full vacuum
    assert abs(r130 / r120 - 2.0) < 0.02


def test_evaporation_negligible_at_ambient_and_in_air():
    b = _bench()
    b.advance(6 * 3600 * 1000)
    assert b.true_loss_ppm(0) < 5.0
    # 120 degC but at 1 atm: ~20x slower than under vacuum
    a = _bench(cells=[{"volatile_g": 1.0}])
    a.preset(chamber_c=120.0)
    _hold(a, 120.0)
    a.advance(600000)
    r_air = -log(a.volatile_left_g(0)) / 600.0
    assert abs(r_air * 2400.0 - 0.05) < 0.002


def test_pumpdown_vent_and_leaks():
    b = _bench()
    b.pump_on = 1
    t_s = 0
    while b.pressure_pa >= 10000.0:
        b.advance(1000)
        t_s += 1
        assert t_s < 1000
    assert 180 <= t_s <= 300, t_s
    b.advance(1800000)
    assert 500.0 < b.pressure_pa < 700.0
    # pump off, vent closed: only the base leak (0.05 kPa/min)
    b.pump_on = 0
    p0 = b.pressure_pa
    b.advance(600000)
    assert abs(b.pressure_pa - p0 - 500.0) < 1.0
    # vent: back to atmosphere in a few seconds
    b.vent_open = 1
    b.advance(15000)
    assert b.pressure_pa > P_ATM_PA - 100.0
    # a vacuum_leak fault overwhelms the pump
    c = _bench()
    c.pump_on = 1
    c.advance(1200000)
    assert c.pressure_pa < 1000.0
    c.add_fault("vacuum_leak", 1200, 600)
    c.advance(600000)
    assert c.pressure_pa > 10000.0
    c.advance(600000)                  # leak fixed: the pump recovers
    assert c.pressure_pa < 1000.0


def test_pressure_transducer_map():
    b = _bench()
    xs = [b.pressure_adc_u16() for _ in range(200)]
    mean = sum(xs) / len(xs)
    want = PRESSURE_ADC_ZERO + PRESSURE_ADC_SPAN * P_ATM_PA / PRESSURE_FS_PA
    assert abs(mean - want) < 2.0
    assert 1.0 < _rms(xs) < 6.0
    b.preset(pressure_pa=0.0)
    assert abs(b.pressure_adc_u16() - PRESSURE_ADC_ZERO) < 20
    b.preset(pressure_pa=5000.0)
    u = b.pressure_adc_u16()
    pa = (u - PRESSURE_ADC_ZERO) * PRESSURE_FS_PA // PRESSURE_ADC_SPAN
    assert abs(pa - 5000) < 40
    pa2 = ((u - 6554) * 4297) >> 11         # the documented integer conversion
    assert abs(pa2 - pa) <= 2


def test_buoyancy_in_air_and_under_vacuum():
    scn = {"ambient_c": 20.0, "load_cell": {"noise_counts_rms": 0.0, "zero_drift_counts_per_c": 0.0,
                                            "span_tc_ppm_per_c": 0.0, "creep_ppm": 0.0}}
    b = _bench(**scn)
    assert abs(b.air_density_mg_cm3() - 1.204) < 0.005
    cpg = 4194304.0 / 200.0
    assert b.lc_counts_per_g == cpg
    b.load_cells(0)
    empty = _read_lc(b, 0, 1)[0]
    b.load_cells(1)
    full = _read_lc(b, 0, 1)[0]
    # reading difference = cell mass - air displaced by the cell
    rho = (45.0 - (full - empty) / cpg) / 16.5 * 1000.0       # mg/cm3
    assert 1.15 < rho < 1.25, rho
    # the empty pan also reads its mass less its buoyancy
    pan = (empty - b.lc_zero_offset_counts[0]) / cpg
    assert abs(pan - (PAN_MASS_G - 1.204e-3 * PAN_VOLUME_CM3)) < 0.001
    v = _bench(**scn)
    v.preset(pressure_pa=PUMP_ULT_PA)
    assert v.air_density_mg_cm3() < 0.01
    v.load_cells(0)
    empty = _read_lc(v, 0, 1)[0]
    v.load_cells(1)
    full = _read_lc(v, 0, 1)[0]
    rho = (45.0 - (full - empty) / cpg) / 16.5 * 1000.0
    assert abs(rho) < 0.01, rho


def test_loadcell_rate_and_noise_rms():
    b = _bench()
    b.advance(100)
    assert b.loadcell_ready(0, b.t_ms)
    v = b.loadcell_raw(0)
    assert not b.loadcell_ready(0, b.t_ms)
    assert b.loadcell_raw(0) == v            # same conversion read twice
    assert b.loadcell_ready(0, b.t_ms + 100)
    xs = _read_lc(b, 0, 2000)
    assert abs(_rms(xs) / 30.0 - 1.0) < 0.10
    c = _bench(load_cell={"noise_counts_rms": 200.0})
    xs = _read_lc(c, 0, 2000)
    assert abs(_rms(xs) / 200.0 - 1.0) < 0.10
    mean = sum(xs) / len(xs)
    assert abs(mean - c.loadcell_expected_counts(0)) < 20.0


def test_loadcell_thermal_drift_and_lc_temperature():
    b = _bench(load_cell={"noise_counts_rms": 0.0, "span_tc_ppm_per_c": 0.0, "creep_ppm": 0.0})
    e0 = b.loadcell_expected_counts(0)
    b.preset(chamber_c=120.0)
    _hold(b, 120.0)
    b.advance(1500000)
    want_lc = 120.0 - 97.0 * exp(-1.0)
    assert abs(b.lc_c - want_lc) < 0.5
    ts = [b.lc_temp_c() for _ in range(500)]
    assert abs(sum(ts) / 500 - b.lc_c) < 0.01
    assert 0.04 < _rms(ts) < 0.06
    # drift 20 counts/degC; the cell itself barely loses mass in air
    drift = b.loadcell_expected_counts(0) - e0
    air = b.air_density_mg_cm3() - _bench().air_density_mg_cm3()
    buoy = -air * 1e-3 * (16.5 + PAN_VOLUME_CM3) * b.lc_counts_per_g
    loss = b.true_loss_ppm(0) * 45e-6 * b.lc_counts_per_g
    assert abs(drift - (20.0 * (b.lc_c - 23.0) + buoy - loss)) < 1.0


def test_cells_heat_slower_under_vacuum():
    air = _bench()
    vac = _bench()
    vac.preset(pressure_pa=PUMP_ULT_PA)
    vac.pump_on = 1
    for b in (air, vac):
        b.preset(chamber_c=120.0, cell_c=23.0)
        _hold(b, 120.0)
        b.advance(1200000)
    assert air.cell_c(0) > 110.0
    assert 50.0 < vac.cell_c(0) < 90.0


def test_loadcell_glitches():
    b = _bench()
    b.add_fault("loadcell_glitches", 0, 1000)
    base = b.loadcell_expected_counts(0)
    xs = _read_lc(b, 0, 5000)
    rails = 0
    spikes = 0
    for x in xs:
        if x == LC_RAIL_HI or x == LC_RAIL_LO:
            rails += 1
        elif abs(x - base) > 30000:
            spikes += 1
            assert 65536 - 200 < abs(x - base) < 1048576 + 200
    assert 60 <= rails + spikes <= 140, (rails, spikes)
    assert rails > 10 and spikes > 10
    # after the fault: clean
    b.advance(600000)
    xs = _read_lc(b, 0, 500)
    assert max(abs(x - base) for x in xs) < 300


def test_loadcell_disconnect_and_channel_faults():
    b = _bench(cells=[{}, {}])
    b.add_fault("loadcell_disconnect", 10, 20, 1)
    b.advance(10000)
    seen = 0
    for _ in range(400):
        b.advance(100)
        if b.t_ms < 30000:
            assert not b.loadcell_ready(1, b.t_ms)
        elif b.t_ms > 30000:
            assert b.loadcell_ready(1, b.t_ms)
            b.loadcell_raw(1)
            seen += 1
        assert b.loadcell_ready(0, b.t_ms)       # the other channel keeps converting
        b.loadcell_raw(0)
    assert seen > 50
    a = _bench(cells=[{}, {}])
    a.add_fault("loadcell_disconnect", 0, 5)
    a.advance(1000)
    assert not a.loadcell_ready(0) and not a.loadcell_ready(1)
    assert a.fault_active("loadcell_disconnect", 1)
    a.advance(5000)
    assert a.loadcell_ready(0) and a.loadcell_ready(1)
    assert not a.fault_active("loadcell_disconnect", 1)


def test_max31855_frames():
    b = _bench(ambient_c=-5.0)
    b.preset(chamber_c=-20.5)
    temps = []
    for _ in range(50):
        f = b.tc_frame()
        temp, cj, fault, bits = _decode_tc(f)
        assert fault == 0 and bits == 0
        assert f & (1 << 31)                        # sign bit of a negative temperature
        assert cj == -5.0
        temps.append(temp)
        assert temp * 4 == int(temp * 4)
    assert abs(sum(temps) / len(temps) + 20.5) < 0.1
    buf = bytearray(4)
    b.tc_frame_into(buf)
    f = (buf[0] << 24) | (buf[1] << 16) | (buf[2] << 8) | buf[3]
    assert abs(_decode_tc(f)[0] + 20.5) < 1.0
    o = _bench()
    o.add_fault("thermocouple_open", 5, 5)
    o.advance(5000)
    temp, cj, fault, bits = _decode_tc(o.tc_frame())
    assert fault and bits == TC_OC_BIT and temp == 0.0 and cj == 23.0
    o.advance(5000)
    temp, cj, fault, bits = _decode_tc(o.tc_frame())
    assert not fault and bits == 0 and abs(temp - 23.0) < 1.0
    s = _bench()
    s.add_fault("thermocouple_short", 0, None)
    f = s.tc_frame()
    assert f & TC_FAULT_BIT and (f & 7) == TC_SCG_BIT and not (f & TC_SCV_BIT)


def test_unknown_fault_kind_and_all_kinds_accepted():
    b = _bench()
    try:
        b.add_fault("heater_on_fire", 0, 10)
        raise AssertionError("no error")
    except ValueError as e:
        assert "heater_on_fire" in str(e)
    for k in FAULT_KINDS:
        b.add_fault(k, 100, 10)
    assert len(FAULT_KINDS) == 8


def test_ambient_ramp():
    b = _bench(ambient_c=23.0)
    b.set_ambient_ramp(0, 3600, 23.0, 30.0)
    b.advance(1800000)
    assert abs(b.amb_c - 26.5) < 1e-9
    b.advance(3600000)
    assert b.amb_c == 30.0
    # heater off: the chamber follows ambient with the oven's time constant
    assert 26.5 < b.chamber_c < 30.0
    cj = _decode_tc(b.tc_frame())[1]
    assert cj == 30.0


def test_blank_run_operator_and_loading():
    b = _bench(blank_run=True, cells=[{"leak_visible": True}, {"mass_g": 10.0}],
               load_cell={"noise_counts_rms": 0.0})
    assert b.n_cells == 2
    assert b.cells_loaded == 0
    assert b.leak_visible(0) and not b.leak_visible(1)
    e = b.loadcell_expected_counts(1)
    b.load_cells(1)
    buoy_g = b.air_density_mg_cm3() * 1e-3 * 16.5
    assert abs(b.loadcell_expected_counts(1) - e - (10.0 - buoy_g) * b.lc_counts_per_g) < 0.01
    assert _bench().cells_loaded == 1
    # cells outside the oven stay at ambient and lose nothing
    b.load_cells(0)
    b.preset(chamber_c=120.0)
    _hold(b, 120.0)
    b.advance(600000)
    assert b.cell_c(0) == 23.0 and b.true_loss_ppm(0) == 0.0


def test_place_and_remove_reference_mass():
    # a steel reference mass adds to whatever is on the pan, less its own (small) buoyancy
    b = _bench(blank_run=True, cells=[{}, {"mass_g": 10.0}],
               load_cell={"noise_counts_rms": 0.0, "creep_ppm": 0.0, "span_tc_ppm_per_c": 0.0})
    from sim.model import STEEL_G_PER_CM3
    cpg = b.lc_counts_per_g
    e0 = b.loadcell_expected_counts(0)
    e1 = b.loadcell_expected_counts(1)
    b.place_mass(0, 100.0)
    rho = b.air_density_mg_cm3() * 1e-3
    assert abs(b.loadcell_expected_counts(0) - e0 - (100.0 - rho * 100.0 / STEEL_G_PER_CM3) * cpg) < 0.01
    assert b.loadcell_expected_counts(1) == e1           # the other pan is untouched
    assert b.placed_mass_g(0) == 100.0
    # on top of a loaded cell too; load_cells still works with a mass placed
    b.load_cells(1)
    full = b.loadcell_expected_counts(0)
    b.remove_mass(0)
    assert abs(full - b.loadcell_expected_counts(0) - (100.0 - rho * 100.0 / STEEL_G_PER_CM3) * cpg) < 0.01
    b.load_cells(0)
    assert abs(b.loadcell_expected_counts(0) - e0) < 1e-6
    # the raw reading (noise 0) follows
    b.place_mass(1, 50.0)
    b.advance(200)
    assert abs(b.loadcell_raw(1) - b.loadcell_expected_counts(1)) <= 0.5
    for bad in ((2, 1.0), (-1, 1.0), (0, -1.0)):
        try:
            b.place_mass(*bad)
        except ValueError:
            pass
        else:
            assert False, bad


def test_probe_lags_like_a_cell_of_its_size_in_every_run():
    # the dummy cell defaults to the first cell: same lag; it heats in a blank run too
    for blank in (False, True):
        b = _bench(blank_run=blank, cells=[{"volatile_g": 0.5}])
        b.preset(pressure_pa=PUMP_ULT_PA, chamber_c=120.0, cell_c=23.0)
        b.pump_on = 1
        _hold(b, 120.0)
        b.advance(1200000)
        assert 50.0 < b.probe_c < 90.0
        if not blank:
            assert abs(b.probe_c - b.cell_c(0)) < 1e-9
        else:
            assert b.cell_c(0) == 23.0       # the cells are outside; the probe is not
    # a bigger dummy cell lags more; a small one less
    temps = []
    for pc in ({"mass_g": 10.0, "volume_cm3": 4.0}, {"mass_g": 45.0, "volume_cm3": 16.5},
               {"mass_g": 400.0, "volume_cm3": 160.0}):
        b = _bench(probe_cell=pc)
        b.preset(pressure_pa=PUMP_ULT_PA, chamber_c=120.0, cell_c=23.0)
        b.pump_on = 1
        _hold(b, 120.0)
        b.advance(1200000)
        temps.append(b.probe_c)
    assert temps[0] > temps[1] > temps[2]


def test_probe_frame_noise_quantisation_and_open_fault():
    b = _bench()
    assert b.probe_fitted
    b.preset(chamber_c=100.0)
    xs = []
    for _ in range(400):
        b.advance(1000)
        t, cj, fault, bits = _decode_tc(b.probe_frame())
        assert fault == 0 and bits == 0 and cj == 23.0
        assert t * 4.0 == int(t * 4.0)          # 0.25 degC steps
        xs.append(t - b.probe_c)
    mean = sum(xs) / len(xs)
    assert abs(mean) < 0.05
    assert 0.08 < _rms(xs) < 0.2                  # 0.1 degC noise + quantisation (0.072)
    # its own noise stream: reading the probe does not change the chamber thermocouple's noise
    a = _bench()
    c = _bench()
    for _ in range(10):
        c.probe_frame()
    assert [a.tc_frame() for _ in range(20)] == [c.tc_frame() for _ in range(20)]
    b.add_fault("probe_open", b.t_ms / 1000, 5)
    t, cj, fault, bits = _decode_tc(b.probe_frame())
    assert fault and bits == TC_OC_BIT and t == 0.0
    assert b.fault_active("probe_open")
    assert _decode_tc(b.tc_frame())[2] == 0       # the chamber thermocouple is not affected
    b.advance(6000)
    assert _decode_tc(b.probe_frame())[2] == 0
    assert not _bench(probe=False).probe_fitted


def _gb():
    return {"setpoint_c_x100": 12000, "vacuum_pa": 10000, "soak_s": 21600}


def test_method_loss_ppm_against_numeric_integration():
    # independent: integrate dv/dt = -v * f(p) * 2^((T - 120)/10) / tau with RK4, from the
    # documented law (docs/SCENARIO.md), at T = setpoint and p = 35 % of the vacuum limit
    cases = [({"mass_g": 45.0, "volatile_g": 0.8268, "evap_tau_min": 1000.0}, _gb()),
             ({"mass_g": 2.0, "volume_cm3": 1.0, "volatile_g": 0.05, "evap_tau_min": 5.0}, _gb()),
             ({"mass_g": 2000.0, "volume_cm3": 800.0, "volatile_g": 30.0, "evap_tau_min": 20000.0},
              {"setpoint_c_x100": 11000, "vacuum_pa": 50000, "soak_s": 7200})]
    for cell, m in cases:
        b = _bench(cells=[cell])
        t_c = m["setpoint_c_x100"] / 100.0
        p = 0.35 * m["vacuum_pa"]
        k = (1.0 - 0.95 * p / 101325.0) * 2.0 ** ((t_c - 120.0) / 10.0) / (cell["evap_tau_min"] * 60.0)
        v = cell["volatile_g"]
        h = 10.0
        for _ in range(int(m["soak_s"] / h)):
            k1 = -k * v
            k2 = -k * (v + 0.5 * h * k1)
            k3 = -k * (v + 0.5 * h * k2)
            k4 = -k * (v + h * k3)
            v += h * (k1 + 2 * k2 + 2 * k3 + k4) / 6.0
        want = (cell["volatile_g"] - v) / cell["mass_g"] * 1e6
        got = b.method_loss_ppm(0, m)
        assert abs(got - want) < 1e-6 * want + 1e-9, (got, want)
    # the example: a slow cell the chamber-timed soak under-bakes exceeds the limit
    b = _bench(cells=[{"mass_g": 45.0, "volatile_g": 0.8268, "evap_tau_min": 1000.0}])
    assert b.method_loss_ppm(0, _gb()) > 5000
    # agrees with the model itself held at those conditions
    b.preset(chamber_c=120.0, pressure_pa=3500.0)
    b.leak_pa_s = 0.0
    b._leak_now_pa_s = 0.0
    _hold(b, 120.0)
    b.advance(21600 * 1000)
    assert abs(b.true_loss_ppm(0) - b.method_loss_ppm(0, _gb())) < 0.5


def test_cell_masses_and_load_cell_capacities_give_sane_counts():
    # 2 kg on a 5 kg load cell and 2 g on a 100 g one: in the 24-bit range, resolving the cell
    for cap, cell in ((5000.0, {"mass_g": 2000.0, "volume_cm3": 800.0}),
                      (100.0, {"mass_g": 2.0, "volume_cm3": 1.0}),
                      (200.0, {"mass_g": 45.0})):
        b = _bench(blank_run=True, cells=[cell], load_cell={"capacity_g": cap, "noise_counts_rms": 30.0})
        empty = sum(_read_lc(b, 0, 50)) / 50.0
        b.load_cells(1)
        full = _read_lc(b, 0, 50)
        assert max(full) < LC_RAIL_HI and min(full) > 0
        net_g = (sum(full) / 50.0 - empty) / b.lc_counts_per_g
        assert abs(net_g - cell["mass_g"]) < 0.002 * cell["mass_g"] + 0.001
        # 30 counts rms is 0.7 mg on 100 g, 36 mg on 5 kg: a 64-sample window mean (/8) is within
        # 1 % of what a 0.5 % limit allows the cell
        assert 30.0 / b.lc_counts_per_g / 8.0 < 0.01 * 0.005 * cell["mass_g"]


def test_probe_goes_in_with_the_cells():
    # warm from a blank run, the dummy cell restarts at ambient when the cells are loaded (it goes in
    # with them): it must not lead them into the soak
    b = _bench(blank_run=True)
    b.preset(chamber_c=60.0)
    b.advance(1000)                       # the cells are outside (ambient), the probe in the oven
    assert b.probe_c > 59.0 and b.cell_c(0) == 23.0
    b.load_cells(1)
    assert b.probe_c == 23.0 == b.cell_c(0)
    b.load_cells(1)                       # already loaded: nothing restarts
    b.preset(cell_c=50.0)
    b.load_cells(1)
    assert b.probe_c == 50.0


def _lc_quiet(**lc):
    d = {"noise_counts_rms": 0.0, "zero_drift_counts_per_c": 0.0}
    for k in lc:
        d[k] = lc[k]
    return _bench(blank_run=True, cells=[{"volatile_g": 0.0}], load_cell=d)


def test_loadcell_creep_after_loading_and_recovery():
    b = _lc_quiet(creep_ppm=250.0, creep_tau_s=300.0, span_tc_ppm_per_c=0.0)
    cpg = b.lc_counts_per_g
    e0 = b.loadcell_expected_counts(0)              # settled with the empty pan
    b.load_cells(1)
    dl = b.loadcell_load_g(0) - (e0 - b.lc_zero_offset_counts[0]) / cpg / (1 + 250e-6)
    full = b.loadcell_expected_counts(0)
    # at the instant of loading: the elastic step only (load x (1 + creep) for the pan alone)
    assert abs((full - e0) / cpg - dl) < 1e-6
    got = []
    for k in range(1, 1801):        # read once a second, as the controller does
        b.advance(1000)
        x = b.loadcell_expected_counts(0)
        if k in (25, 300, 900, 1800):
            got.append((x - full) / cpg)
    creep_g = 250e-6 * dl
    for t_s, g in zip((25, 300, 900, 1800), got):
        want = creep_g * (1.0 - exp(-t_s / 300.0))
        assert abs(g - want) < 1e-3 * creep_g, (t_s, g, want)
    # 45 g read 25 s after loading: 10.4 mg of creep still to come
    assert abs((creep_g - got[0]) * 1000 - 10.34) < 0.05
    # unloading: the reading first drops by the elastic part, then recovers the creep
    b.load_cells(0)
    u0 = b.loadcell_expected_counts(0)
    b.advance(1500000)
    u1 = b.loadcell_expected_counts(0)
    assert abs((u0 - u1) / cpg - creep_g * (1.0 - exp(-5.0)) * (1.0 - exp(-1800.0 / 300.0))) < 1e-3 * creep_g


def test_loadcell_creep_only_on_demand_of_the_time_not_the_reads():
    # reading at 10 SPS or once a second gives the same creep (exact exponential steps)
    a = _lc_quiet(creep_ppm=245.0)
    c = _lc_quiet(creep_ppm=245.0)
    for b in (a, c):
        b.loadcell_expected_counts(0)
        b.load_cells(1)
    for _ in range(120):
        a.advance(1000)
        a.loadcell_expected_counts(0)
        for _ in range(10):
            c.advance(100)
            c.loadcell_expected_counts(0)
    assert abs(a.loadcell_expected_counts(0) - c.loadcell_expected_counts(0)) < 1e-6


def test_loadcell_span_temperature_coefficient():
    b = _lc_quiet(creep_ppm=0.0, span_tc_ppm_per_c=12.0)
    b.load_cells(1)
    cpg = b.lc_counts_per_g
    z = b.lc_zero_offset_counts[0]
    e23 = b.loadcell_expected_counts(0)
    b.preset(lc_c=23.0 + 8.7)
    e31 = b.loadcell_expected_counts(0)
    load = b.loadcell_load_g(0)
    assert abs((e31 - z) / (e23 - z) - (1.0 + 12e-6 * 8.7)) < 1e-12
    # the 45 g cell alone: 4.7 mg more at +8.7 degC (the pan's share is in the tare)
    assert abs((e31 - e23) / cpg - load * 12e-6 * 8.7) < 1e-9
    assert 4.6 < 45.0 * 12e-6 * 8.7 * 1000 < 4.8
