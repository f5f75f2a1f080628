"""Tests for edugrad.viz.GradientMonitor: what it records, and that each flag fires on the case
it is for and stays quiet on a healthy network.

The vanishing and exploding cases are built from plain tensors (a dict name -> Tensor is
watched like a Module), so they run without edugrad.nn; dead ReLUs need nn.ReLU modules.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import numpy as np
import pytest

import edugrad
import edugrad.nn as nn
from edugrad.viz import GradientMonitor

HAS_NN = all(hasattr(nn, name) for name in ("Linear", "ReLU", "Sequential"))
needs_nn = pytest.mark.skipif(not HAS_NN, reason="edugrad.nn is not built yet")


def sigmoid_stack(depth: int, scale: float = 1.0, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {f"layer{i}": edugrad.tensor(rng.uniform(-1, 1, (8, 8)) / math.sqrt(8) * scale,
                                        requires_grad=True) for i in range(depth)}


def train(weights: dict, monitor: GradientMonitor, steps: int = 3, lr: float = 0.1,
          activation: str = "sigmoid") -> None:
    rng = np.random.default_rng(1)
    for step in range(steps):
        x = edugrad.tensor(rng.standard_normal((16, 8)))
        for w in weights.values():
            w.grad = None
            x = getattr(x @ w, activation)()
        (x * x).mean().backward()
        monitor.record(step)
        with monitor.record_update(), edugrad.no_grad():
            for w in weights.values():
                w -= lr * w.grad


def kinds(monitor) -> set:
    return {(flag.kind, flag.name) for flag in monitor.flags()}


def test_a_deep_sigmoid_stack_is_flagged_as_vanishing_at_its_first_layers():
    weights = sigmoid_stack(depth=15)
    monitor = GradientMonitor(weights)
    train(weights, monitor)
    flagged = {name for kind, name in kinds(monitor) if kind == "vanishing"}
    assert "layer0" in flagged and "layer14" not in flagged
    norms = monitor.history["grad_norm"]
    assert norms["layer0"][-1] < 1e-6 < norms["layer14"][-1]
    assert "vanishing gradient: layer0" in monitor.report()


def test_a_shallow_stack_is_not_flagged():
    weights = sigmoid_stack(depth=2)
    monitor = GradientMonitor(weights)
    train(weights, monitor)
    assert monitor.flags() == []
    assert monitor.report().endswith("no problems found")


def test_vanishing_needs_patience_steps_in_a_row():
    weights = sigmoid_stack(depth=15)
    monitor = GradientMonitor(weights, patience=4)
    train(weights, monitor, steps=3)
    assert not any(kind == "vanishing" for kind, _ in kinds(monitor))


def test_huge_initial_weights_are_flagged_as_exploding():
    weights = sigmoid_stack(depth=4, scale=1e3)  # with relu, not sigmoid: nothing saturates
    monitor = GradientMonitor(weights)
    train(weights, monitor, steps=1, activation="relu")
    assert ("exploding", "layer3") in kinds(monitor)
    assert monitor.history["grad_norm"]["layer3"][0] > 1e3
    assert "exploding gradient: layer3" in monitor.report()
    weights_small = sigmoid_stack(depth=4)
    quiet = GradientMonitor(weights_small)
    train(weights_small, quiet, steps=1, activation="relu")
    assert not any(kind == "exploding" for kind, _ in kinds(quiet))


def test_a_nan_gradient_is_flagged_as_exploding():
    w = edugrad.tensor([1.0, 2.0], requires_grad=True)
    monitor = GradientMonitor({"w": w})
    w.grad = edugrad.tensor([float("nan"), 0.0])
    monitor.record()
    (flag,) = monitor.flags()
    assert flag.kind == "exploding" and flag.step == 0 and "nan" in flag.message


def test_history_records_norms_and_update_ratios_as_plain_data():
    weights = sigmoid_stack(depth=2)
    initial = weights["layer1"].detach().numpy()
    monitor = GradientMonitor(weights)
    train(weights, monitor, steps=3, lr=0.1)
    history = json.loads(json.dumps(monitor.history))  # plain lists, dicts, floats
    assert history["step"] == [0, 1, 2]
    assert set(history["grad_norm"]) == {"layer0", "layer1"}
    assert history["weight_norm"]["layer1"][0] == pytest.approx(np.linalg.norm(initial), rel=1e-12)
    # SGD: ||w_after - w_before|| / ||w_before|| = lr ||g|| / ||w_before||
    grad_norms, weight_norms = history["grad_norm"]["layer1"], history["weight_norm"]["layer1"]
    for step in range(3):
        expected = 0.1 * grad_norms[step] / weight_norms[step]
        assert history["update_ratio"]["layer1"][step] == pytest.approx(expected, rel=1e-9)


def test_an_update_recorded_before_record_goes_to_the_next_step():
    w = edugrad.tensor([3.0, 4.0], requires_grad=True)
    monitor = GradientMonitor({"w": w})
    with monitor.record_update(), edugrad.no_grad():
        w -= edugrad.tensor([0.3, 0.4])
    w.grad = edugrad.tensor([1.0, 0.0])
    monitor.record(7)
    assert monitor.history["update_ratio"]["w"] == [pytest.approx(0.1)]
    assert monitor.history["grad_norm"]["w"] == [1.0] and monitor.history["step"] == [7]


def test_parameters_without_grad_are_recorded_as_none():
    w = edugrad.tensor([1.0], requires_grad=True)
    monitor = GradientMonitor({"w": w})
    monitor.record()
    assert monitor.history["grad_norm"]["w"] == [None] and monitor.flags() == []


def test_plot_writes_a_png_or_says_how_to_get_matplotlib(tmp_path, monkeypatch):
    weights = sigmoid_stack(depth=3)
    monitor = GradientMonitor(weights)
    train(weights, monitor, steps=3)
    if importlib.util.find_spec("matplotlib") is None:
        with pytest.raises(ImportError, match="pip install matplotlib"):
            monitor.plot(tmp_path / "norms.png")
        return
    path = monitor.plot(tmp_path / "norms.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    with pytest.raises(ImportError, match="pip install matplotlib"):
        monitor.plot(tmp_path / "again.png")


def test_bad_arguments_are_clear_errors():
    with pytest.raises(TypeError, match="Module or a dict"):
        GradientMonitor([1, 2])
    with pytest.raises(ValueError, match="no parameters"):
        GradientMonitor({})


# ---- with edugrad.nn ---------------------------------------------------------------------------
def relu_net(bias: float | None = None):
    edugrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    if bias is not None:
        with edugrad.no_grad():
            model[0].bias.fill_(bias)
    return model


def fit(model, monitor, steps: int = 3) -> None:
    edugrad.manual_seed(1)
    for step in range(steps):
        model.zero_grad()
        x = edugrad.randn(32, 4)
        (model(x) ** 2).mean().backward()
        monitor.record(step)
        with monitor.record_update(), edugrad.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= 0.01 * p.grad


@needs_nn
def test_a_relu_with_bias_minus_100_is_flagged_dead():
    model = relu_net(bias=-100.0)
    monitor = GradientMonitor(model)
    fit(model, monitor)
    assert monitor.history["dead_relu"]["1"] == [1.0, 1.0, 1.0]
    assert ("dead_relu", "1") in kinds(monitor)
    assert "dead ReLU: in ReLU '1'" in monitor.report()
    monitor.remove()


@needs_nn
def test_a_healthy_relu_net_is_not_flagged_and_names_come_from_the_module():
    model = relu_net()
    monitor = GradientMonitor(model)
    fit(model, monitor)
    assert set(monitor.history["grad_norm"]) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert all(f < 0.5 for f in monitor.history["dead_relu"]["1"])
    assert monitor.flags() == []


@needs_nn
def test_remove_takes_the_relu_hooks_off():
    model = relu_net(bias=-100.0)
    monitor = GradientMonitor(model)
    monitor.remove()
    model(edugrad.randn(2, 4))
    monitor.record()
    assert monitor.history["dead_relu"]["1"] == [None]
