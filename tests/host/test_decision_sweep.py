"""Issue 10: the verdict against what the method itself would give (Bench.method_loss_ppm), for
cells near each limit: coin cells to pouch cells, fast and slow volatiles, with and without the
reference probe and the blank run. `make bench` runs every mass class (build/bench.json:
wrong_pass, wrong_fail, inconclusive_share); here four of them (96 cells)."""
import pytest

from ovenctl import sweep

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MASSES = tuple(m for m in sweep.DECISION_MASSES if m[0] in (2.0, 45.0, 250.0, 2000.0))


@pytest.fixture(scope="module")
def decisions():
    return sweep.decision_sweep(sweep.decision_scenarios(masses=MASSES))


def test_the_sweep_straddles_each_limit(decisions):
    rows, summary = decisions
    assert summary["decision_cells"] >= 96
    for meth in sweep.DECISION_METHODS:
        mine = [r for r in rows if r["method"] == meth]
        lim = {"gb-2026": 5000, "tcsae-434-2025": 10000}[meth]
        assert any(r["method_loss_ppm"] > lim * 1.05 for r in mine)
        assert any(r["method_loss_ppm"] < lim * 0.95 for r in mine)
    assert {r["mass_g"] for r in rows} == {m[0] for m in MASSES}


def test_no_pass_beyond_the_limit_and_no_fail_below_it(decisions):
    rows, summary = decisions
    assert summary["wrong_pass"] == 0, [r for r in rows if r["wrong_pass"]]
    assert summary["wrong_fail"] == 0, [r for r in rows if r["wrong_fail"]]


def test_no_pass_without_the_probe_or_the_blank_run(decisions):
    rows, _ = decisions
    for r in rows:
        if not r["probe"] or not r["blank_run"]:
            assert r["verdict"] != "PASS", r
            if r["verdict"] == "INCONCLUSIVE":
                assert r["no_pass"], r


def test_a_cell_well_inside_the_limit_can_pass(decisions):
    rows, _ = decisions
    ok = [r for r in rows if r["probe"] and r["blank_run"] and r["mass_g"] >= 20 and r["method_loss_ppm"] < 0.92 * {
        "gb-2026": 5000, "tcsae-434-2025": 10000}[r["method"]]]
    assert ok and any(r["verdict"] == "PASS" for r in ok), ok


def test_every_sweep_log_verifies(decisions):
    _, summary = decisions
    assert summary["decision_verify_disagreements"] == 0
