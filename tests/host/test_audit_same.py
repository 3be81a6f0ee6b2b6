"""audit.same(a, b) (the audit trail's and the blank fit's comparison without building JSON texts)
agrees with its definition, canon(a) == canon(b), on generated JSON-like values (1, 1.0 and true
differ; lists equal tuples; dict keys in any order; NaN and float precision as canon has them)."""
import os
import sys

from hypothesis import given, settings, strategies as st

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _p in ("firmware", os.path.join("tests", "shim")):
    sys.path.insert(0, os.path.join(ROOT, _p))

from oven.store import audit  # noqa: E402

_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 30, 10 ** 30), st.floats(allow_nan=True),
                  st.text(max_size=3))
_VAL = st.recursive(_LEAF, lambda c: st.one_of(st.lists(c, max_size=3), st.tuples(c, c),
                                               st.dictionaries(st.text(max_size=2), c, max_size=3)), max_leaves=10)


@settings(max_examples=1500, deadline=None)
@given(_VAL, _VAL)
def test_same_is_canon_equality(a, b):
    assert audit.same(a, b) == (audit.canon(a) == audit.canon(b))


@settings(max_examples=500, deadline=None)
@given(_VAL)
def test_same_on_a_copy_and_on_a_change(a):
    import copy
    assert audit.same(a, copy.deepcopy(a)) == (audit.canon(a) == audit.canon(copy.deepcopy(a)))
    assert not audit.same({"k": a}, {"k": a, "x": 1})
    assert audit.same([1, {"a": 2, "b": [True]}], ({"b": (True,), "a": 2}, 1)[::-1])
    assert not audit.same(1, 1.0) and not audit.same(1, True) and not audit.same(0, None)
