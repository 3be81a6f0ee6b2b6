"""ovenctl's log reader and verifier keep their own copies of the log format's codes on purpose (an
independent checker must not import the firmware it checks). This test holds the copies to the one
home of each code: firmware/oven/core/codes.py (phases, faults, events, flags, reasons), runlog.py (record
types, sample mask bits, weighing kinds), verdict.py (cell flags) and recovery.py (resume reasons)."""
import os
import re

from oven.core import codes
from oven.run import recovery
from oven.store import runlog
from oven.core import verdict

from ovenctl import logfile, verify

FW = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "firmware")


def _consts(mod, prefix):
    return {k: v for k, v in vars(mod).items() if k.startswith(prefix) and isinstance(v, int)}


def test_phase_names_and_codes():
    assert verify.PHASE_NAMES == codes.PHASE_NAMES
    phases = _consts(codes, "PH_")
    assert sorted(phases.values()) == list(range(len(codes.PHASE_NAMES)))
    for k, v in phases.items():
        assert codes.PHASE_NAMES[v] == k[3:], k
    for k, v in _consts(verify, "PH_").items():
        assert phases[k] == v, k


def test_fault_names():
    faults = {v: k[2:] for k, v in _consts(codes, "F_").items() if v}
    # F_PROBE is reserved (never raised, never written): the verifier need not name it
    del faults[codes.F_PROBE]
    assert verify.FAULT_NAMES == faults
    assert verify.F_INTERRUPTED == codes.F_INTERRUPTED


def test_event_names():
    events = {v: k[2:] for k, v in _consts(codes, "E_").items()}
    aliases = {"EXCURSION_START": "EXC_START", "EXCURSION_END": "EXC_END", "LEAK_ANSWER": "LEAK"}
    for code, name in events.items():
        if code in verify.EVENT_NAMES:
            assert verify.EVENT_NAMES[code] == name, code
    # the events the verifier reasons about are all named; the others are read as "EVENT <code>"
    for k, v in _consts(verify, "E_").items():
        name = next((n for n, a in aliases.items() if a == k[2:]), k[2:])
        assert events[v] == name, k


def test_flags_reasons_and_no_pass():
    sf = _consts(codes, "SF_")
    assert verify.SF_NAMES == tuple(sorted((v, k[3:]) for k, v in sf.items()))
    for k, v in _consts(verify, "SF_").items():
        assert sf[k] == v, k
    assert verify.NO_PASS_NAMES == codes.NO_PASS_NAMES
    for k, v in _consts(verify, "NP_").items():
        assert getattr(codes, k) == v, k
    assert verify.REASON_NAMES == recovery.REASON_NAMES
    for k, v in _consts(verify, "R_").items():
        assert getattr(recovery, k) == v, k
    assert (verify.DEFAULT_GRACE_S, verify.DEFAULT_RESUME_MAX) == (recovery.DEFAULT_GRACE_S, recovery.DEFAULT_RESUME_MAX)
    for k in ("FL_GAIN", "FL_GAIN_SIGNIFICANT", "FL_LEAK"):
        assert getattr(verify, k) == getattr(verdict, k), k


def test_record_format():
    assert logfile.FORMAT_VERSION == runlog.FORMAT_VERSION
    assert logfile.TYPE_NAMES == {v: k[2:] for k, v in _consts(runlog, "T_").items()}
    for k in ("M_DT", "M_PHASE", "M_FLAGS", "M_TEMP", "M_LCTEMP", "M_PRESS", "M_DUTY", "M_CELLS"):
        assert getattr(logfile, k) == getattr(runlog, k), k
    kinds = _consts(runlog, "W_")
    assert logfile.WEIGH_KINDS == {v: k[2:].lower() for k, v in kinds.items()}


def test_one_home_in_the_firmware():
    """No firmware module but codes.py defines a phase, mode or prompt code, or spells out the
    MISSING sentinel or the default span."""
    pat = re.compile(r"^_?(PH|PR|MODE)_[A-Z_]+ = const\(|-0x20000000|\b20972\b", re.M)
    for name in sorted(os.listdir(FW)):
        if name.endswith(".py") and name != "codes.py":
            with open(os.path.join(FW, name)) as f:
                hits = [m.group(0) for m in pat.finditer(f.read())]
            assert not hits, (name, hits)
