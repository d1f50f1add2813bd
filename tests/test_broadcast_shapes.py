"""Broadcasting rules through the binary ops: NumPy's shape tables (numpy/lib/tests/
test_stride_tricks.py, REFERENCES.md C1), symmetry, and NumPy's error message."""

from __future__ import annotations

import re
from functools import reduce

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra import numpy as hnp

import pykernels as pk
import strategies as S
from pykernels.reference import BINARY_OPS

# Same rank, some dims 1 (NumPy's "compatible by ones" table).
BY_ONES = [
    ((1,), (3,), (3,)), ((1, 3), (3, 3), (3, 3)), ((3, 1), (3, 3), (3, 3)), ((1, 3), (3, 1), (3, 3)),
    ((1, 1), (3, 3), (3, 3)), ((1, 1), (1, 3), (1, 3)), ((1, 1), (3, 1), (3, 1)),
    ((1, 0), (0, 0), (0, 0)), ((0, 1), (0, 0), (0, 0)), ((1, 0), (0, 1), (0, 0)),
    ((1, 1), (0, 0), (0, 0)), ((1, 1), (1, 0), (1, 0)), ((1, 1), (0, 1), (0, 1)),
]
# Different ranks (NumPy's "compatible by prepending ones" table).
BY_PREPENDING = [
    ((), (3,), (3,)), ((3,), (3, 3), (3, 3)), ((3,), (3, 1), (3, 3)), ((1,), (3, 3), (3, 3)),
    ((), (3, 3), (3, 3)), ((1, 1), (3,), (1, 3)), ((1,), (3, 1), (3, 1)), ((1,), (1, 3), (1, 3)),
    ((), (1, 3), (1, 3)), ((), (3, 1), (3, 1)), ((), (0,), (0,)), ((0,), (0, 0), (0, 0)),
    ((0,), (0, 1), (0, 0)), ((1,), (0, 0), (0, 0)), ((), (0, 0), (0, 0)), ((1, 1), (0,), (1, 0)),
    ((1,), (0, 1), (0, 1)), ((1,), (1, 0), (1, 0)), ((), (1, 0), (1, 0)), ((), (0, 1), (0, 1)),
]
# Several shapes at once (NumPy's broadcast_shapes table); checked by chaining the binary op.
MULTI = [
    ([(7,)], (7,)), ([(1, 2), (2,)], (1, 2)), ([(1, 1), (3, 4)], (3, 4)),
    ([(6, 7), (5, 6, 1), (7,), (5, 1, 7)], (5, 6, 7)), ([(1, 3), (3, 1)], (3, 3)),
    ([(1, 2)] * 32, (1, 2)), ([(2,)] * 32, (2,)), ([(2,)] * 32 + [()], (2,)),
]
INCOMPATIBLE = [
    ((3,), (4,)), ((2, 3), (2,)), ((1, 3, 4), (2, 3, 3)), ((3, 4), (5,)), ((0,), (2,)), ((2, 0), (3, 1)),
]


@pytest.mark.parametrize(("s1", "s2", "expected"), BY_ONES + BY_PREPENDING)
@pytest.mark.parametrize("op", BINARY_OPS, ids=str)
def test_numpy_shape_tables(op, s1, s2, expected):
    assert np.broadcast_shapes(s1, s2) == expected  # the table itself
    for a, b in ((s1, s2), (s2, s1)):  # broadcasting must be symmetric
        r = np.asarray(op.pk_fn(np.ones(a), np.ones(b, np.float32)))
        assert r.shape == expected


@pytest.mark.parametrize(("shapes", "expected"), MULTI)
def test_multi_shape_table(shapes, expected):
    assert np.broadcast_shapes(*shapes) == expected
    r = reduce(pk.add, [np.ones(s) for s in shapes])
    assert np.shape(r) == expected
    r = reduce(pk.add, [np.ones(s) for s in reversed(shapes)])
    assert np.shape(r) == expected


@given(S.shape_pairs)
def test_generated_shapes_symmetric(bs):
    s1, s2 = bs.input_shapes
    assert np.shape(pk.add(np.zeros(s1), np.zeros(s2, np.float32))) == bs.result_shape
    assert np.shape(pk.add(np.zeros(s2, np.float32), np.zeros(s1))) == bs.result_shape


def _numpy_message(s1, s2) -> str:
    with pytest.raises(ValueError) as e:
        np.add(np.ones(s1), np.ones(s2))
    return str(e.value).strip()


@pytest.mark.parametrize(("s1", "s2"), INCOMPATIBLE)
@pytest.mark.parametrize("op", BINARY_OPS, ids=str)
def test_incompatible_shapes_message(op, s1, s2):
    for a, b in ((s1, s2), (s2, s1)):
        msg = _numpy_message(a, b)
        with pytest.raises(ValueError, match="^" + re.escape(msg) + r"\s*$"):
            op.pk_fn(np.ones(a), np.ones(b))


def test_message_text_exactly():
    with pytest.raises(ValueError, match=r"^operands could not be broadcast together with shapes \(3,4\) \(5,\)$"):
        pk.add(np.ones((3, 4)), np.ones(5))
    with pytest.raises(ValueError, match=r"with shapes \(5,\) \(3,4\)$"):
        pk.maximum(np.ones(5, np.float32), np.ones((3, 4), np.float32))


@given(hnp.mutually_broadcastable_shapes(num_shapes=2, min_side=0, max_side=4, max_dims=4))
def test_incompatible_generated(bs):
    """Bump one dim of a compatible pair to make it incompatible; pk and NumPy agree on raising."""
    s1, s2 = bs.input_shapes
    if not s1:
        return
    bad = (s1[0] + 2,) + tuple(s1[1:]) if s1[0] > 1 else s1
    try:
        np.broadcast_shapes(bad, s2)
    except ValueError:
        with pytest.raises(ValueError, match="^" + re.escape(_numpy_message(bad, s2)) + r"\s*$"):
            pk.add(np.ones(bad), np.ones(s2))
    else:
        assert np.shape(pk.add(np.ones(bad), np.ones(s2))) == np.broadcast_shapes(bad, s2)
