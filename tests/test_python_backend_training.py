"""The pure-Python backend trains: XOR and two moons, full batch, with edugrad.nn and
edugrad.optim exactly as on "cpu". No NumPy runs under the model (the data is made with NumPy
on the host, then loaded with FROM_HOST); every op is one of the 26 required primitives.
"""

from __future__ import annotations

import math

import numpy as np

import edugrad
from edugrad import nn, optim

DEVICE = "python"


def train(x: np.ndarray, y: np.ndarray, hidden: int, steps: int, lr: float,
          device: str = DEVICE):
    """A 2-hidden-2 MLP (weights made on cpu, seeded, then moved) trained with Adam on (x, y),
    full batch; returns (model, inputs, losses)."""
    edugrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 2)).to(device)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    inputs = edugrad.tensor(x.astype(np.float32), device=device)
    labels = edugrad.tensor(y.astype(np.int64), device=device)
    losses = []
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, inputs, losses


def accuracy(model, inputs, y: np.ndarray) -> float:
    with edugrad.no_grad():
        predicted = model(inputs).argmax(1).numpy()
    return float((predicted == y).mean())


XOR = (np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32), np.array([0, 1, 1, 0]))


def two_moons(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles, n points each (as sklearn's make_moons)."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, math.pi, n)
    upper = np.stack([np.cos(angle), np.sin(angle)], 1)
    lower = np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], 1)
    x = np.concatenate([upper, lower]) + rng.normal(0, noise, (2 * n, 2))
    y = np.concatenate([np.zeros(n), np.ones(n)]).astype(np.int64)
    return (x - x.mean(0)) / x.std(0), y


def test_the_model_really_runs_on_the_python_backend():
    model = nn.Linear(2, 2).to(DEVICE)
    from edugrad.backends.python_backend import Buffer

    assert all(isinstance(p._data.buffer, Buffer) for p in model.parameters())
    assert edugrad.get_backend(DEVICE).accelerated == frozenset()  # only required primitives


def test_xor_is_learned_exactly():
    x, y = XOR
    model, inputs, losses = train(x, y, hidden=8, steps=150, lr=0.05)
    assert accuracy(model, inputs, y) == 1.0
    assert losses[-1] < 0.05 < losses[0]


def test_two_moons_are_separated():
    x, y = two_moons(30, noise=0.1, seed=0)
    model, inputs, losses = train(x, y, hidden=8, steps=150, lr=0.05)
    assert accuracy(model, inputs, y) > 0.95
    assert losses[-1] < losses[0] / 4


def test_python_and_cpu_follow_the_same_training_curve():
    x, y = XOR
    curves = [train(x, y, hidden=8, steps=20, lr=0.05, device=device)[2]
              for device in ("cpu", DEVICE)]
    np.testing.assert_allclose(curves[1], curves[0], rtol=1e-4)
