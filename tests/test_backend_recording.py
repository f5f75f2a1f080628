"""All computation goes through the backend.

A recording backend wraps the NumPy one: every primitive records its name, and every buffer it
hands out is an opaque Box that only the backend opens. A full training step (two hand-built
Linear layers, relu, log_softmax, the NLL loss by indexing, backward, an SGD update under
no_grad) then runs on it. If any code above the backend line touched a buffer with NumPy it
would fail on a Box; the step's results equal the same step on "cpu", so nothing was skipped.
The same backend without its accelerated primitives checks the fallbacks.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

import edugrad
from edugrad import ops
from edugrad.backends.numpy_backend import NumpyBackend
from edugrad.ops import ACCELERATED, REQUIRED, REQUIRED_COUNT, Op


class Box:
    """A buffer nothing above the backend can look into: it has a shape and nothing else."""

    __slots__ = ("array",)

    def __init__(self, array) -> None:
        self.array = array

    @property
    def shape(self) -> tuple:
        return self.array.shape


class RecordingBackend(NumpyBackend):
    """The NumPy backend, counting every primitive call and boxing every buffer."""

    def __init__(self, device: str | None = None) -> None:
        super().__init__(device)
        self.calls = Counter()


def _recording(op: Op):
    numpy_method = getattr(NumpyBackend, op.method)

    def method(self, *args):
        self.calls[op.method] += 1
        result = numpy_method(self, *[a.array if isinstance(a, Box) else a for a in args])
        return result if op is Op.TO_HOST else Box(result)

    method.__name__ = op.method
    return method


for _op in Op:
    setattr(RecordingBackend, _op.method, _recording(_op))


class RecordingNoAccelBackend(RecordingBackend):
    def __init__(self, device: str | None = None) -> None:
        super().__init__(device)
        self.accelerated = frozenset()


edugrad.register_backend("recording", RecordingBackend)
edugrad.register_backend("recording_noaccel", RecordingNoAccelBackend)


def training_step(device: str):
    """One step of a two-layer classifier, written with Tensors only."""
    rng = np.random.default_rng(0)
    x = edugrad.tensor(rng.standard_normal((8, 4)), dtype=edugrad.float32, device=device)
    labels = edugrad.tensor(rng.integers(0, 3, 8), device=device)
    params = [
        edugrad.tensor(rng.standard_normal(shape) * 0.5, dtype=edugrad.float32, device=device,
                       requires_grad=True)
        for shape in [(4, 5), (5,), (5, 3), (3,)]
    ]
    w1, b1, w2, b2 = params
    hidden = (x @ w1 + b1).relu()
    log_probs = (hidden @ w2 + b2).log_softmax(dim=1)
    loss = -log_probs[edugrad.arange(8, device=device), labels].mean()
    loss.backward()
    grads = [p.grad for p in params]
    with edugrad.no_grad():
        for p in params:
            p -= 0.1 * p.grad
    return [loss] + grads + params


@pytest.mark.parametrize("device", ["recording", "recording_noaccel"])
def test_training_step_runs_entirely_on_the_backend(device):
    backend = edugrad.get_backend(device)
    backend.calls.clear()
    results = training_step(device)
    called = Counter(backend.calls)  # before comparing, which copies the results to the host
    expected = training_step("cpu")
    for got, want in zip(results, expected):
        assert isinstance(got._data.buffer, Box), "a result not made by the backend"
        assert got.device == device and got.shape == want.shape and got.dtype is want.dtype
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-6,
                                   atol=1e-7)
    needed = {"from_host", "add", "sub", "mul", "maximum", "exp", "log", "sum", "max",
              "expand", "reshape"}
    assert needed <= set(called), f"never called: {sorted(needed - set(called))}"
    accelerated = {op.method for op in ACCELERATED}
    if device == "recording":  # the fast paths are taken when present
        assert {"matmul", "take", "index_add"} <= set(called)
    else:  # and composed from required primitives when not
        offered_not = set(called) & accelerated
        assert not offered_not, f"called though not offered: {offered_not}"
        assert {"cmpeq", "where"} <= set(called)
    # the only copies to the host: the bounds check of the two index tensors (skipped on a GPU)
    assert called["to_host"] <= 2
    before = backend.calls["to_host"]
    results[0].item()
    assert backend.calls["to_host"] == before + 1


@pytest.mark.parametrize("device", ["recording", "recording_noaccel"])
def test_gelu_is_one_backend_call_forward_and_one_backward(device):
    """nn.GELU: one GELU forward and one GELU_GRAD backward where the backend offers them (no
    ERF, no EXP), none where it does not; the values are the same either way."""
    backend = edugrad.get_backend(device)
    values = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    results = []
    for where in (device, "cpu"):
        x = edugrad.tensor(values, device=where, requires_grad=True)
        backend.calls.clear()
        out = edugrad.nn.GELU()(x)
        out.backward(out.detach())
        called = Counter(backend.calls)
        results.append((out.detach().numpy(), x.grad.numpy()))
        if where == device:
            calls_on_the_backend = called
    if device == "recording":
        assert calls_on_the_backend["gelu"] == 1 and calls_on_the_backend["gelu_grad"] == 1
        assert not {"erf", "exp"} & set(calls_on_the_backend), calls_on_the_backend
    else:
        assert not {"gelu", "gelu_grad", "erf"} & set(calls_on_the_backend)
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_gelu_grad_has_two_buffer_arguments():
    """x and g: what edugrad.jit's recording and the lock-step diff read as buffers."""
    assert ops.buffer_positions(Op.GELU_GRAD) == (0, 1)
    assert ops.buffer_positions(Op.GELU) == (0,)


def test_a_jitted_gelu_step_replays_the_gradient_it_is_given():
    """edugrad.jit replays GELU_GRAD with each step's own upstream gradient (both of its
    arguments are buffers), bit for bit as the eager steps."""
    def run(jit: bool) -> list:
        edugrad.manual_seed(0)
        model = edugrad.nn.Sequential(edugrad.nn.Linear(6, 8), edugrad.nn.GELU(),
                                      edugrad.nn.Linear(8, 2))
        optimizer = edugrad.optim.SGD(model.parameters(), lr=0.1)

        def step(x):
            optimizer.zero_grad()
            loss = (model(x) ** 2).mean()
            loss.backward()
            optimizer.step()
            return loss

        runner = edugrad.jit(step) if jit else step
        rng = np.random.default_rng(2)
        losses = [runner(edugrad.tensor(rng.standard_normal((5, 6)).astype(np.float32))).item()
                  for _ in range(6)]
        if jit:
            assert runner.replays == 3
        return losses + [p.detach().numpy().tobytes() for p in model.parameters()]

    assert run(jit=True) == run(jit=False)


def test_every_buffer_above_the_backend_is_opaque():
    """Printing, conversion and indexing with a mask reach the values only through to_host."""
    x = edugrad.tensor([[1.0, -2.0], [3.0, 4.0]], device="recording")
    assert repr(x) == "tensor([[ 1., -2.],\n        [ 3.,  4.]], device='recording')"
    assert x[x > 0].tolist() == [1.0, 3.0, 4.0]
    assert x.sum().item() == 6.0 and x.numpy().shape == (2, 2)


# ---- the backend contract ------------------------------------------------------------------------
def test_required_primitive_count_is_stated_once_and_true():
    assert len(REQUIRED) == REQUIRED_COUNT
    assert f"There are {REQUIRED_COUNT} required primitives" in ops.__doc__
    assert len(ACCELERATED) == len(Op) - REQUIRED_COUNT
    assert f"and {len(ACCELERATED)} accelerated ones" in ops.__doc__
    for op in Op:  # one row of the docstring's table each
        assert re.search(rf"^    {op.name} +", ops.__doc__, re.MULTILINE), op.name
    for op in Op:
        assert op.spec.strip(), f"{op.name} has no spec"
        assert op.method == op.name.lower()


def test_numpy_backend_implements_every_primitive():
    for op in Op:
        assert getattr(NumpyBackend, op.method) is not getattr(edugrad.Backend, op.method), op.name
    assert edugrad.get_backend("cpu").accelerated == frozenset(ACCELERATED)


def test_missing_primitive_says_what_and_where():
    class Empty(edugrad.Backend):
        name = "empty"

    with pytest.raises(NotImplementedError, match=r"ADD .*edugrad/ops.py"):
        Empty().add(None, None)
    assert Empty().accelerated == frozenset()
