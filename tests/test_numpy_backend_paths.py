"""The NumPy backend's own fast paths give what the plain NumPy call gives.

Some primitives take a faster road on the shapes a training step meets most (a float SUM over
the trailing or the leading dims as a matrix-vector product). These tests hold each road to
the plain NumPy expression, on the awkward cases too: size-1 and empty dims, non-contiguous
views, every run of axes, float64 and ints.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edugrad.backends.numpy_backend import NumpyBackend

backend = NumpyBackend()


def _all_axes(ndim: int):
    for count in range(ndim + 1):
        yield from itertools.combinations(range(ndim), count)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(0, 5), min_size=0, max_size=4), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([np.float32, np.float64, np.int64]), transposed=st.booleans())
def test_sum_equals_numpy_over_every_axes_tuple(shape, seed, dtype, transposed):
    x = (np.random.default_rng(seed).standard_normal(shape) * 10).astype(dtype)
    if transposed:
        x = x.T  # non-contiguous: the plain reduction
    for axes in _all_axes(x.ndim):
        ours = backend.sum(x, axes)
        expected = x.sum(axis=axes, keepdims=True, dtype=x.dtype)
        assert ours.shape == expected.shape and ours.dtype == expected.dtype
        np.testing.assert_allclose(ours, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("shape, axes", [((32, 64, 128), (2,)), ((2048, 512), (0,)),
                                         ((32, 4, 64, 64), (3,)), ((32, 64, 128), (0, 1))])
def test_sum_of_training_shapes_is_as_accurate_as_numpy(shape, axes):
    """Another order of additions, not a worse one: both within float32 rounding of float64."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    exact = x.astype(np.float64).sum(axis=axes, keepdims=True)
    ours = backend.sum(x, axes)
    plain = x.sum(axis=axes, keepdims=True)
    assert ours.dtype == np.float32 and ours.shape == exact.shape
    scale = np.abs(x).astype(np.float64).sum(axis=axes, keepdims=True)
    assert np.max(np.abs(ours - exact) / scale) < 1e-6
    assert np.max(np.abs(plain - exact) / scale) < 1e-6


@pytest.mark.filterwarnings("ignore")  # inf - inf warns, in np.sum as in a product
def test_sum_keeps_inf_and_nan():
    x = np.array([[1.0, np.inf], [np.nan, 2.0], [np.inf, -np.inf]], dtype=np.float32)
    np.testing.assert_array_equal(backend.sum(x, (1,)), [[np.inf], [np.nan], [np.nan]])
    np.testing.assert_array_equal(backend.sum(x, (0,)), [[np.nan, np.nan]])
