"""Scenario file validator (host_tools/ovenctl/scenario.py)."""
import copy
import json

import pytest
from hypothesis import given, settings, strategies as st

from ovenctl.scenario import FAULT_KINDS, ScenarioError, load_scenario, normalize
from sim import model

DEFAULTS = {
    "seed": 7,
    "description": "",
    "method": "gb-2026",
    "ambient_c": 23.0,
    "ambient_end_c": 23.0,
    "cells": [{"mass_g": 45.0, "volume_cm3": 16.5, "volatile_g": 0.10, "evap_tau_min": 40.0,
               "leak_visible": False}],
    "load_cell": {"capacity_g": 200.0, "noise_counts_rms": 30.0, "zero_drift_counts_per_c": 20.0,
                  "creep_ppm": 245.0, "creep_tau_s": 300.0, "span_tc_ppm_per_c": 12.0},
    "oven": {"heater_w": 400.0, "heat_capacity_j_per_c": 4000.0, "loss_w_per_c": 2.0},
    "vacuum": {"leak_kpa_per_min": 0.05},
    "blank_run": True,
    "probe": True,
    "probe_cell": {"mass_g": 45.0, "volume_cm3": 16.5},
    "faults": [],
    "calibration": {"span": True, "ref_g": None, "ref_actual_g": None, "check": True, "check_weight_g": None,
                    "check_actual_g": None, "check_tol_mg": None, "check_history": 5},
}


def test_defaults():
    assert normalize({"seed": 7}) == DEFAULTS


def test_defaults_match_the_model():
    n = normalize({"seed": 1})
    assert n["cells"][0] == model.DEFAULT_CELL
    assert n["load_cell"] == model.DEFAULT_LOAD_CELL
    assert n["oven"] == model.DEFAULT_OVEN
    assert n["vacuum"] == model.DEFAULT_VACUUM
    assert FAULT_KINDS == model.FAULT_KINDS


def test_partial_nested_objects():
    n = normalize({"seed": 1, "cells": [{"mass_g": 30}, {"volatile_g": 2.5, "leak_visible": True}],
                   "load_cell": {"noise_counts_rms": 5}, "oven": {"heater_w": 800.0},
                   "faults": [{"kind": "vacuum_leak", "at_s": 3600}]})
    assert n["cells"][0] == dict(DEFAULTS["cells"][0], mass_g=30.0)
    assert n["cells"][1] == dict(DEFAULTS["cells"][0], volatile_g=2.5, leak_visible=True)
    assert n["load_cell"] == dict(DEFAULTS["load_cell"], noise_counts_rms=5.0)
    assert n["oven"] == dict(DEFAULTS["oven"], heater_w=800.0)
    assert n["vacuum"] == DEFAULTS["vacuum"]
    assert n["faults"] == [{"kind": "vacuum_leak", "at_s": 3600.0, "duration_s": None, "channel": None, "phase": None}]
    assert isinstance(n["cells"][0]["mass_g"], float)


def test_input_not_mutated_and_output_independent():
    obj = {"seed": 1, "cells": [{"mass_g": 30}], "method": {"name": "x", "limit_ppm": 5000}}
    before = copy.deepcopy(obj)
    n = normalize(obj)
    assert obj == before
    n["cells"][0]["mass_g"] = 1.0
    n["method"]["limit_ppm"] = 1
    assert obj == before
    assert normalize({"seed": 1})["cells"] is not normalize({"seed": 1})["cells"]


def test_methods():
    assert normalize({"seed": 1, "method": "tcsae-434-2025"})["method"] == "tcsae-434-2025"
    custom = {"id": "lab-1", "limit_ppm": 3000, "anything": [1, {"x": None}]}
    assert normalize({"seed": 1, "method": custom})["method"] == custom


def test_faults_with_channel_and_model_accepts_them():
    n = normalize({"seed": 1, "cells": [{}, {}],
                   "faults": [{"kind": k, "at_s": 10 * i, "duration_s": 5} for i, k in enumerate(FAULT_KINDS)]
                   + [{"kind": "loadcell_glitches", "channel": 1}]})
    b = model.Bench(n)
    for f in n["faults"]:
        b.add_fault(f["kind"], f["at_s"], f["duration_s"], f["channel"])
    assert b.n_cells == 2 and b.cells_loaded == 0      # blank_run: pans start empty


@pytest.mark.parametrize("obj, msg", [
    ({}, "seed: required key is missing"),
    ({"seed": -1}, "seed: -1 is out of range 0..4294967295"),
    ({"seed": 2 ** 32}, "seed: 4294967296 is out of range"),
    ({"seed": 1.0}, "seed: expected an integer, got number 1.0"),
    ({"seed": "1"}, "seed: expected an integer, got string '1'"),
    ({"seed": True}, "seed: expected an integer, got boolean True"),
    ({"seed": 1, "colour": "red"}, "colour: unknown key"),
    ({"seed": 1, "cells": [{"mass_g": 9000.0}]}, "cells[0].mass_g: 9000.0 is out of range 0.1..2000"),
    ({"seed": 1, "cells": [{}, {"weight": 1}]}, "cells[1].weight: unknown key (allowed: mass_g,"),
    ({"seed": 1, "cells": [{}, {"leak_visible": 1}]}, "cells[1].leak_visible: expected true or false"),
    ({"seed": 1, "cells": [{}, {"volatile_g": 50.0}]}, "cells[1].volatile_g: 50.0 exceeds mass_g 45.0"),
    ({"seed": 1, "cells": [{"volume_cm3": 1.0}]}, "cells[0].volume_cm3: 1 cm3 for 45 g"),
    ({"seed": 1, "cells": [{"evap_tau_min": 0}]}, "cells[0].evap_tau_min: 0 is out of range"),
    ({"seed": 1, "cells": []}, "cells: 0 entries, expected 1..4"),
    ({"seed": 1, "cells": [{}] * 5}, "cells: 5 entries, expected 1..4"),
    ({"seed": 1, "cells": {"mass_g": 1}}, "cells: expected an array, got object"),
    ({"seed": 1, "cells": [45.0]}, "cells[0]: expected an object, got number 45.0"),
    ({"seed": 1, "load_cell": {"capacity_g": "big"}}, "load_cell.capacity_g: expected a number, got string"),
    ({"seed": 1, "load_cell": {"capacity_g": 0}}, "load_cell.capacity_g: 0 is out of range 1..10000"),
    ({"seed": 1, "load_cell": {"noise_counts_rms": -1}}, "load_cell.noise_counts_rms: -1 is out of range"),
    ({"seed": 1, "load_cell": {"gain": 128}}, "load_cell.gain: unknown key"),
    ({"seed": 1, "load_cell": 5}, "load_cell: expected an object, got number 5"),
    ({"seed": 1, "load_cell": {"creep_ppm": -1}}, "load_cell.creep_ppm: -1 is out of range 0..5000"),
    ({"seed": 1, "load_cell": {"creep_ppm": "c3"}}, "load_cell.creep_ppm: expected a number, got string"),
    ({"seed": 1, "load_cell": {"creep_tau_s": 0}}, "load_cell.creep_tau_s: 0 is out of range 1..100000"),
    ({"seed": 1, "load_cell": {"span_tc_ppm_per_c": 2000}},
     "load_cell.span_tc_ppm_per_c: 2000 is out of range -1000..1000"),
    ({"seed": 1, "load_cell": {"span_tc_ppm_per_c": None}}, "load_cell.span_tc_ppm_per_c: expected a number, got null"),
    ({"seed": 1, "oven": {"heater_w": float("nan")}}, "oven.heater_w: nan is out of range"),
    ({"seed": 1, "oven": {"loss_w_per_c": 0}}, "oven.loss_w_per_c: 0 is out of range"),
    ({"seed": 1, "oven": {"heater_w": None}}, "oven.heater_w: expected a number, got null"),
    ({"seed": 1, "vacuum": {"leak_kpa_per_min": 500}}, "vacuum.leak_kpa_per_min: 500 is out of range 0..100"),
    ({"seed": 1, "vacuum": {"pump": 1}}, "vacuum.pump: unknown key"),
    ({"seed": 1, "ambient_c": 80}, "ambient_c: 80 is out of range 0..45"),
    ({"seed": 1, "ambient_end_c": "warm"}, "ambient_end_c: expected a number"),
    ({"seed": 1, "blank_run": "yes"}, "blank_run: expected true or false, got string 'yes'"),
    ({"seed": 1, "method": "iso-9999"}, "method: unknown method 'iso-9999'"),
    ({"seed": 1, "method": 3}, "method: expected a method name or a method object"),
    ({"seed": 1, "description": 3}, "description: expected a string"),
    ({"seed": 1, "faults": {}}, "faults: expected an array"),
    ({"seed": 1, "faults": [{"at_s": 5}]}, "faults[0].kind: required key is missing"),
    ({"seed": 1, "faults": [{"kind": "fire"}]}, "faults[0].kind: unknown fault kind 'fire'"),
    ({"seed": 1, "faults": [{"kind": "heater_dead", "at_s": -5}]}, "faults[0].at_s: -5 is out of range"),
    ({"seed": 1, "faults": [{"kind": "heater_dead", "duration_s": 0}]}, "faults[0].duration_s: 0 is out of range"),
    ({"seed": 1, "faults": [{"kind": "heater_dead", "when": 0}]}, "faults[0].when: unknown key"),
    ({"seed": 1, "faults": [{"kind": "heater_dead", "channel": 0}]}, "faults[0].channel: only load-cell faults"),
    ({"seed": 1, "faults": [{"kind": "loadcell_disconnect", "channel": 1}]},
     "faults[0].channel: 1 is out of range 0..0 (1 cell)"),
    ({"seed": 1, "faults": [{"kind": "loadcell_disconnect", "channel": 1.0}]},
     "faults[0].channel: expected an integer"),
    ([], "scenario: expected an object, got array"),
])
def test_errors_name_the_key(obj, msg):
    with pytest.raises(ScenarioError) as ei:
        normalize(obj)
    assert str(ei.value).startswith(msg), str(ei.value)


def test_load_scenario_file(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"seed": 3, "cells": [{"mass_g": 70}], "ambient_end_c": 26}))
    n = load_scenario(p)
    assert n["seed"] == 3 and n["cells"][0]["mass_g"] == 70.0 and n["ambient_end_c"] == 26.0
    assert load_scenario(str(p)) == n


@pytest.mark.parametrize("text, msg", [
    ('{"seed": 1,\n  "cells": [}', "invalid JSON at line 2 column 13"),
    ('{"seed": 1, "ambient_c": NaN}', "invalid JSON: NaN is not valid JSON"),
    ('{"seed": 1, "seed": 2}', "invalid JSON: duplicate key 'seed'"),
    ('', "invalid JSON at line 1 column 1"),
    ('[1]', "scenario: expected an object"),
    ('{"seed": 1, "oven": {"heater_w": 400, "fan": true}}', "oven.fan: unknown key"),
])
def test_load_scenario_errors(tmp_path, text, msg):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p)
    assert msg in str(ei.value), str(ei.value)


def test_load_scenario_unreadable(tmp_path):
    with pytest.raises(ScenarioError) as ei:
        load_scenario(tmp_path / "missing.json")
    assert "missing.json: cannot read scenario file" in str(ei.value)
    p = tmp_path / "bin.json"
    p.write_bytes(b'{"seed": 1, "description": "\xff"}')
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p)
    assert "not UTF-8" in str(ei.value)
    with pytest.raises(ScenarioError):
        load_scenario(tmp_path)          # a directory


_cell_rest = {"volatile_g": st.floats(0.0, 5.0), "evap_tau_min": st.floats(0.1, 1e6),
              "leak_visible": st.booleans()}
_cell = st.one_of(
    st.fixed_dictionaries({}, optional=dict(_cell_rest, mass_g=st.floats(10.0, 160.0))),
    st.builds(lambda v, d, rest: dict(rest, volume_cm3=v, mass_g=v * d),
              st.floats(10.0, 36.0), st.floats(1.0, 4.9), st.fixed_dictionaries({}, optional=_cell_rest)),
)
_scenario = st.fixed_dictionaries({"seed": st.integers(0, 2 ** 32 - 1)}, optional={
    "ambient_c": st.floats(0.0, 45.0),
    "cells": st.lists(_cell, min_size=1, max_size=4),
    "load_cell": st.fixed_dictionaries({}, optional={"capacity_g": st.floats(200.0, 10000.0),
                                                     "noise_counts_rms": st.integers(0, 1000)}),
    "oven": st.fixed_dictionaries({}, optional={"heater_w": st.floats(1.0, 10000.0)}),
    "blank_run": st.booleans(),
    "faults": st.lists(st.fixed_dictionaries({"kind": st.sampled_from(FAULT_KINDS)},
                                             optional={"at_s": st.floats(0, 1e6),
                                                       "duration_s": st.none() | st.floats(1, 1e5)}),
                       max_size=5),
})


@settings(max_examples=200, deadline=None)
@given(_scenario)
def test_normalize_is_idempotent_and_complete(obj):
    n = normalize(obj)
    assert normalize(n) == n
    assert normalize(json.loads(json.dumps(n))) == n
    assert set(n) == set(DEFAULTS)
    for c in n["cells"]:
        assert set(c) == set(DEFAULTS["cells"][0])
    for k in ("load_cell", "oven", "vacuum"):
        assert set(n[k]) == set(DEFAULTS[k])
