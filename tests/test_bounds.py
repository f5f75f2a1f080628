"""Tests for edugrad.viz.estimate_bounds.

Interval bounds are sound: for random small networks and random eps, every sampled point of the
box (corners included) maps inside them. First-order bounds are exact for a linear function
and close to the true range for a tiny eps. Unsupported layers are clear errors.
"""

from __future__ import annotations

import numpy as np
import pytest

import edugrad
import edugrad.nn as nn
from edugrad.viz import estimate_bounds

HAS_NN = all(hasattr(nn, name) for name in ("Linear", "Conv2d", "ReLU", "Flatten", "Sequential"))
needs_nn = pytest.mark.skipif(not HAS_NN, reason="edugrad.nn (Linear, Conv2d, ReLU, Flatten, "
                              "Sequential) is not built yet")
ROUNDING = 1e-5  # float32 rounding in the network and in the bounds differ a little


def box_samples(x: np.ndarray, eps: np.ndarray, count: int, rng) -> np.ndarray:
    """Random points of [x - eps, x + eps], half of them corners (where extremes often are)."""
    shape = (count,) + x.shape
    inside = rng.uniform(-1, 1, shape)
    corners = rng.choice([-1.0, 1.0], shape)
    mix = np.where(np.arange(count).reshape((-1,) + (1,) * x.ndim) % 2 == 0, inside, corners)
    return (x + mix * eps).astype(np.float32)


def assert_inside(outputs: np.ndarray, bounds) -> None:
    lower, upper = bounds.lower.numpy(), bounds.upper.numpy()
    assert lower.shape == upper.shape == outputs.shape[1:]
    assert np.all(lower <= upper)
    scale = 1 + np.abs(outputs).max()
    assert np.all(outputs >= lower - ROUNDING * scale), (outputs.min(0), lower)
    assert np.all(outputs <= upper + ROUNDING * scale), (outputs.max(0), upper)


def run(net, points: np.ndarray) -> np.ndarray:
    with edugrad.no_grad():
        return net(edugrad.tensor(points)).numpy()


# ---- interval bounds -----------------------------------------------------------------------------
@needs_nn
@pytest.mark.parametrize("seed", range(5))
def test_interval_bounds_hold_every_sampled_point_of_an_mlp(seed):
    rng = np.random.default_rng(seed)
    edugrad.manual_seed(seed)
    width = int(rng.integers(3, 9))
    net = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                        nn.Linear(width, 3))
    x = rng.standard_normal((1, 4)).astype(np.float32)
    eps = float(rng.uniform(0.01, 0.5))
    bounds = estimate_bounds(net, edugrad.tensor(x), eps, method="interval")
    samples = box_samples(x[0], np.full(4, eps, np.float32), 400, rng)
    assert_inside(run(net, samples), type(bounds)(bounds.lower[0], bounds.upper[0]))


@needs_nn
@pytest.mark.parametrize("seed", range(3))
def test_interval_bounds_hold_for_a_conv_net_with_a_radius_per_pixel(seed):
    rng = np.random.default_rng(10 + seed)
    edugrad.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 3, stride=2),
                        nn.ReLU(), nn.Flatten(), nn.Linear(2 * 2 * 2, 2))
    x = rng.standard_normal((1, 1, 6, 6)).astype(np.float32)
    eps = rng.uniform(0.0, 0.2, (1, 1, 6, 6)).astype(np.float32)
    bounds = estimate_bounds(net, edugrad.tensor(x), edugrad.tensor(eps), method="interval")
    samples = box_samples(x[0], eps[0], 200, rng)
    assert_inside(run(net, samples), type(bounds)(bounds.lower[0], bounds.upper[0]))


@needs_nn
def test_interval_bounds_of_one_linear_layer_are_exact():
    edugrad.manual_seed(0)
    layer = nn.Linear(3, 2)
    x = edugrad.tensor([[0.5, -1.0, 2.0]])
    low, high = estimate_bounds(nn.Sequential(layer), x, 0.1, method="interval")
    w = layer.weight.detach().numpy()
    centre = x.numpy() @ w.T + layer.bias.detach().numpy()
    spread = 0.1 * np.abs(w).sum(1)
    np.testing.assert_allclose(low.numpy(), centre - spread, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(high.numpy(), centre + spread, rtol=1e-5, atol=1e-6)


@needs_nn
def test_zero_eps_gives_the_output_itself():
    edugrad.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = edugrad.randn(2, 3)
    low, high = estimate_bounds(net, x, 0.0, method="interval")
    with edugrad.no_grad():
        out = net(x).numpy()
    np.testing.assert_allclose(low.numpy(), out, rtol=1e-6)
    np.testing.assert_allclose(high.numpy(), out, rtol=1e-6)


@needs_nn
def test_unsupported_layers_are_named_in_interval_mode():
    net = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid() if hasattr(nn, "Sigmoid") else nn.Module())
    with pytest.raises(TypeError, match=r"layer '1' \((Sigmoid|Module)\) is not supported.*"
                                        r"first_order"):
        estimate_bounds(net, edugrad.randn(1, 2), 0.1, method="interval")
    with pytest.raises(TypeError, match="must be a network"):
        estimate_bounds(lambda t: t * 2, edugrad.randn(1, 2), 0.1, method="interval")


# ---- first-order estimates: any f ----------------------------------------------------------------
def test_first_order_is_exact_for_a_linear_function():
    rng = np.random.default_rng(0)
    w = edugrad.tensor(rng.standard_normal((3, 2)))
    b = edugrad.tensor(rng.standard_normal(2))
    x = edugrad.tensor(rng.standard_normal(3))
    low, high = estimate_bounds(lambda t: t @ w + b, x, 0.25)
    assert low.shape == high.shape == (2,)
    centre = x.numpy() @ w.numpy() + b.numpy()
    spread = 0.25 * np.abs(w.numpy()).sum(0)
    np.testing.assert_allclose(low.numpy(), centre - spread, rtol=1e-12)
    np.testing.assert_allclose(high.numpy(), centre + spread, rtol=1e-12)


def test_first_order_is_close_to_the_true_range_for_a_tiny_eps():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(3)
    eps = 1e-3

    def f(t):
        return edugrad.stack([(t.sin() * t).sum(), (t.exp() * t[0]).sum()])

    low, high = estimate_bounds(f, edugrad.tensor(x), eps)
    corners = x + eps * np.array(np.meshgrid(*[[-1, 1]] * 3)).reshape(3, -1).T
    points = np.concatenate([corners, box_samples(x, np.full(3, eps), 500, rng)])
    with edugrad.no_grad():
        outputs = np.stack([f(edugrad.tensor(p)).numpy() for p in points])
    true_low, true_high = outputs.min(0), outputs.max(0)
    width = true_high - true_low
    np.testing.assert_allclose(low.numpy(), true_low, atol=0.01 * width.max())
    np.testing.assert_allclose(high.numpy(), true_high, atol=0.01 * width.max())


def test_first_order_accepts_a_radius_per_element_and_leaves_x_alone():
    x = edugrad.tensor([1.0, 2.0], dtype=edugrad.float64, requires_grad=True)
    eps = edugrad.tensor([0.1, 0.0], dtype=edugrad.float64)
    low, high = estimate_bounds(lambda t: (t * t).sum(), x, eps)
    assert low.item() == pytest.approx(5.0 - 0.2) and high.item() == pytest.approx(5.0 + 0.2)
    assert x.grad is None


@needs_nn
def test_first_order_is_inside_the_interval_bounds_of_a_network():
    edugrad.manual_seed(3)
    net = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 2))
    x = edugrad.randn(1, 3)
    # eps small enough that the box stays in one linear piece of the ReLU net, where the
    # first-order range is the true range
    estimate = estimate_bounds(net, x, 1e-3)
    sound = estimate_bounds(net, x, 1e-3, method="interval")
    assert np.all(sound.lower.numpy() <= estimate.lower.numpy() + 1e-6)
    assert np.all(estimate.upper.numpy() <= sound.upper.numpy() + 1e-6)


def test_bad_arguments_are_clear_errors():
    x = edugrad.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="eps must be >= 0"):
        estimate_bounds(lambda t: t, x, -0.1)
    with pytest.raises(ValueError, match="method must be"):
        estimate_bounds(lambda t: t, x, 0.1, method="exact")
    with pytest.raises(ValueError, match="does not broadcast"):
        estimate_bounds(lambda t: t, x, edugrad.tensor([[0.1], [0.2], [0.3]]))
    with pytest.raises(TypeError, match="floating point"):
        estimate_bounds(lambda t: t, edugrad.tensor([1, 2]), 0.1)
