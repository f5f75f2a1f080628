"""cumsum, sort, argsort, topk and multinomial (edugrad/ordering.py): against torch on
hypothesis shapes (values, indices and gradients), gradcheck in float64, hand-computed cases,
and sampling statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import edugrad


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is the oracle (pip install torch==2.13.0)")


def arrays(min_dims=1, dtype=np.float64):
    # few distinct values, so that ties are common; and NaN sometimes
    values = st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    return hnp.arrays(dtype, hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1,
                                              max_side=5), elements=values)


def _both(torch, array, fn):
    results = []
    for lib in (torch, edugrad):
        x = lib.tensor(array, requires_grad=True)
        out = fn(lib, x)
        values = out[0] if isinstance(out, tuple) else out
        weights = np.cos(np.arange(values.numel())).reshape(tuple(values.shape))
        (values * lib.tensor(weights)).sum().backward()
        results.append((out, x.grad))
    return results


@settings(max_examples=80, deadline=None)
@given(arrays(), st.data())
def test_cumsum_matches_torch(array, data):
    torch = _torch()
    dim = data.draw(st.integers(-array.ndim, array.ndim - 1))
    (theirs, their_grad), (ours, our_grad) = _both(torch, array, lambda lib, x: x.cumsum(dim))
    assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype is edugrad.float64
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(our_grad.numpy(), their_grad.numpy(), atol=1e-12)


@settings(max_examples=80, deadline=None)
@given(arrays(), st.data())
def test_sort_matches_torch_with_ties_and_stability(array, data):
    torch = _torch()
    dim = data.draw(st.integers(-array.ndim, array.ndim - 1))
    descending = data.draw(st.booleans())
    (theirs, their_grad), (ours, our_grad) = _both(
        torch, array, lambda lib, x: tuple(x.sort(dim=dim, descending=descending, stable=True)))
    np.testing.assert_array_equal(ours[0].detach().numpy(), theirs[0].detach().numpy())
    np.testing.assert_array_equal(ours[1].numpy(), theirs[1].numpy())  # stable: ties in order
    assert ours[1].dtype is edugrad.int64
    np.testing.assert_allclose(our_grad.numpy(), their_grad.numpy(), atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(arrays(), st.data())
def test_topk_values_and_gradients_match_torch(array, data):
    torch = _torch()
    dim = data.draw(st.integers(-array.ndim, array.ndim - 1))
    k = data.draw(st.integers(0, array.shape[dim]))
    largest = data.draw(st.booleans())
    (theirs, their_grad), (ours, our_grad) = _both(
        torch, array, lambda lib, x: tuple(x.topk(k, dim, largest=largest)))
    np.testing.assert_array_equal(ours[0].detach().numpy(), theirs[0].detach().numpy())
    # torch breaks ties in topk in no documented order: the indices must point at the values
    picked = np.take_along_axis(array, ours[1].numpy(), axis=dim)
    np.testing.assert_array_equal(picked, ours[0].detach().numpy())
    # each picked value sends its weight back to the element it came from
    expected = np.zeros_like(array)
    weights = np.cos(np.arange(ours[0].numel())).reshape(tuple(ours[0].shape))
    np.put_along_axis(expected, ours[1].numpy(), weights, axis=dim)
    np.testing.assert_allclose(our_grad.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(our_grad.numpy().sum(), their_grad.numpy().sum(), atol=1e-12)


def test_nan_sorts_last_ascending_and_first_descending():
    x = edugrad.tensor([1.0, float("nan"), -1.0, 0.5])
    assert x.sort().indices.tolist() == [2, 3, 0, 1]
    assert x.sort(descending=True).indices.tolist() == [1, 0, 3, 2]
    assert edugrad.argsort(x).tolist() == [2, 3, 0, 1]


def test_hand_computed():
    x = edugrad.tensor([3.0, 1.0, 2.0], requires_grad=True)
    assert x.cumsum(0).tolist() == [3.0, 4.0, 6.0]
    values, indices = x.sort()
    assert values.tolist() == [1.0, 2.0, 3.0] and indices.tolist() == [1, 2, 0]
    (values * edugrad.tensor([10.0, 20.0, 30.0])).sum().backward()
    assert x.grad.tolist() == [30.0, 10.0, 20.0]  # each weight goes back to where its value was
    top = edugrad.tensor([[1, 5, 3], [9, 2, 7]]).topk(2)
    assert top.values.tolist() == [[5, 3], [9, 7]] and top.indices.tolist() == [[1, 2], [0, 2]]
    assert edugrad.tensor([True, False, True]).cumsum(0).tolist() == [1, 1, 2]


def test_gradcheck():
    rng = np.random.default_rng(0)
    x = edugrad.tensor(rng.standard_normal((3, 5)), requires_grad=True)
    assert edugrad.autograd.gradcheck(lambda x: x.cumsum(1), [x])
    assert edugrad.autograd.gradcheck(lambda x: x.sort(0).values, [x])
    assert edugrad.autograd.gradcheck(lambda x: x.topk(2, dim=1).values, [x])
    assert edugrad.autograd.gradgradcheck(lambda x: x.cumsum(0) * x, [x])


def test_multinomial_frequencies_and_rules():
    edugrad.manual_seed(0)
    probs = edugrad.tensor([0.1, 0.0, 0.6, 0.3])
    rows = probs.unsqueeze(0).expand(20000, 4)
    for replacement in (True, False):
        draws = edugrad.multinomial(rows, 1, replacement=replacement).numpy().ravel()
        frequencies = np.bincount(draws, minlength=4) / len(draws)
        np.testing.assert_allclose(frequencies, [0.1, 0.0, 0.6, 0.3], atol=0.015)
    without = edugrad.multinomial(probs, 3)
    assert sorted(without.tolist()) == [0, 2, 3]  # all three categories of positive weight
    assert edugrad.multinomial(probs * 5, 2, replacement=True).shape == (2,)
    with pytest.raises(RuntimeError, match="without replacement"):
        edugrad.multinomial(probs, 5)
    with pytest.raises(RuntimeError, match="non-negative"):
        edugrad.multinomial(edugrad.tensor([0.5, -0.1]), 1)
    with pytest.raises(RuntimeError, match="out of range"):
        probs.topk(5)
