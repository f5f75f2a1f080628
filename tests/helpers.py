"""Shared helpers for edugrad's tests: the PyTorch oracle, shape strategies, test backends.

An op case is a function `fn(lib, *inputs)` written once and run twice, with lib = edugrad and
lib = torch, on the same values:

    OpCase("mul", lambda lib, x, y: x * y, broadcastable(2), example=((2, 3), (3,)))

`check_against_torch` compares the two runs the same way everywhere: shape first, then dtype,
then values (`np.allclose` alone broadcasts and would hide a shape bug), for the forward
results and for the gradients that a random upstream gradient sends back. Other test modules
import these helpers (`from helpers import assert_same`).

PyTorch is imported only inside the helpers that need it (`_torch()`), never at module level: the
tests that import this module but not torch still run where torch is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import edugrad
from edugrad.backends.numpy_backend import NumpyBackend

TOLERANCE = {
    "float32": dict(rtol=1e-4, atol=1e-5),
    "float64": dict(rtol=1e-7, atol=1e-9),
}


# ---- comparing an edugrad result with a torch result ---------------------------------------------
def _torch():
    """PyTorch, or a skip of the calling test saying why."""
    return pytest.importorskip("torch", reason="PyTorch is the oracle here: pip install -e "
                                               "\".[dev]\"")


def dtype_name(tensor) -> str:
    """"float32" for edugrad.float32 and torch.float32 alike."""
    return str(tensor.dtype).replace("torch.", "").replace("edugrad.", "")


def host(tensor) -> np.ndarray:
    if not isinstance(tensor, edugrad.Tensor):  # a torch.Tensor
        return tensor.detach().cpu().numpy(force=True)  # force: torch's lazy ZeroTensor too
    return tensor.detach().numpy()


def assert_same(ours, theirs, what: str = "result", rtol: float | None = None,
                atol: float | None = None) -> None:
    """ours (edugrad) equals theirs (torch): same shape, then same dtype, then close values."""
    assert isinstance(ours, edugrad.Tensor), f"{what}: expected a Tensor, got {type(ours).__name__}"
    assert tuple(ours.shape) == tuple(theirs.shape), (
        f"{what}: shape {tuple(ours.shape)}, torch gives {tuple(theirs.shape)}")
    assert dtype_name(ours) == dtype_name(theirs), (
        f"{what}: dtype {dtype_name(ours)}, torch gives {dtype_name(theirs)}")
    tolerance = dict(TOLERANCE.get(dtype_name(theirs), dict(rtol=0, atol=0)))
    tolerance.update({k: v for k, v in (("rtol", rtol), ("atol", atol)) if v is not None})
    np.testing.assert_allclose(host(ours), host(theirs), equal_nan=True, err_msg=what,
                               **tolerance)


def as_list(result) -> list:
    return list(result) if isinstance(result, (tuple, list)) else [result]


# ---- input values --------------------------------------------------------------------------------
def sample(rng: np.random.Generator, shape: tuple, domain: str = "real") -> np.ndarray:
    """float64 values for an op's input.

    real      random sign, magnitude in [0.1, 2): away from the kinks of relu, abs, clamp and
              from ties, so finite differences and max's subgradient are well defined
    positive  in [0.5, 2): for log, sqrt and fractional powers
    """
    magnitude = rng.uniform(0.5 if domain == "positive" else 0.1, 2.0, size=shape)
    if domain == "positive":
        return magnitude
    return magnitude * rng.choice([-1.0, 1.0], size=shape)


def sample_inputs(seed: int, shapes, domain="real") -> list:
    rng = np.random.default_rng(seed)
    domains = (domain,) * len(shapes) if isinstance(domain, str) else domain
    return [sample(rng, tuple(shape), d) for shape, d in zip(shapes, domains)]


# ---- the op table's row --------------------------------------------------------------------------
@dataclass(frozen=True)
class OpCase:
    """One differentiable op: fn(lib, *inputs) with lib = edugrad or torch.

    shapes    a hypothesis strategy drawing one shape per input (the oracle tests)
    example   fixed small shapes, one per input (gradcheck, grad-of-grad, the backends)
    domain    "real" or "positive", for all inputs or one per input
    gradgrad  also check second derivatives against PyTorch
    """

    name: str
    fn: Callable
    shapes: object
    example: tuple
    domain: object = "real"
    gradgrad: bool = False

    def __repr__(self) -> str:
        return self.name


def check_against_torch(case: OpCase, shapes, dtype: str, seed: int, device: str = "cpu",
                        transposed: bool = False) -> None:
    """Forward values, then gradients for a random upstream gradient, edugrad vs torch.

    transposed: each input of 2+ dims is a permuted view of a leaf of the reversed shape, so
    the op reads a non-contiguous buffer (the gradients are compared on the leaves)."""
    torch = _torch()
    arrays = [a.astype(dtype) for a in sample_inputs(seed, shapes, case.domain)]
    if transposed:
        arrays = [np.ascontiguousarray(a.T) for a in arrays]
    ours = [edugrad.tensor(a, device=device, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    view = _reversed_dims if transposed else (lambda t: t)
    out_ours = as_list(case.fn(edugrad, *[view(t) for t in ours]))
    out_theirs = as_list(case.fn(torch, *[view(t) for t in theirs]))
    assert len(out_ours) == len(out_theirs), f"{case.name}: {len(out_ours)} outputs"
    for i, (a, b) in enumerate(zip(out_ours, out_theirs)):
        assert_same(a, b, f"{case.name} output {i}")
        assert a.requires_grad == b.requires_grad, f"{case.name} output {i}: requires_grad"
    pairs = [(a, b) for a, b in zip(out_ours, out_theirs) if b.requires_grad]
    if not pairs:
        return
    rng = np.random.default_rng(seed + 1)
    upstream = [rng.standard_normal(tuple(b.shape)).astype(dtype) for _, b in pairs]
    edugrad.autograd.backward([a for a, _ in pairs],
                              [edugrad.tensor(g, device=device) for g in upstream])
    torch.autograd.backward([b for _, b in pairs], [torch.tensor(g) for g in upstream])
    for i, (x, t) in enumerate(zip(ours, theirs)):
        if t.grad is None:
            assert x.grad is None, f"{case.name}: input {i} got a gradient, torch gives none"
        else:
            assert x.grad is not None, f"{case.name}: input {i} got no gradient"
            assert_same(x.grad, t.grad, f"{case.name} gradient of input {i}")


def check_drawn_case_against_torch(case: OpCase, dtype: str, data) -> None:
    """check_against_torch on shapes, a seed and a layout drawn by hypothesis (`data` is
    hypothesis's st.data()): the body of every table's oracle test."""
    shapes = data.draw(case.shapes, label="shapes")
    seed = data.draw(st.integers(0, 2**31), label="seed")
    transposed = data.draw(st.booleans(), label="non-contiguous inputs")
    check_against_torch(case, shapes, dtype, seed, transposed=transposed)


def _reversed_dims(tensor):
    return tensor.permute(*reversed(range(tensor.ndim))) if tensor.ndim > 1 else tensor


def _second_derivatives(lib, case: OpCase, arrays, upstream, weights):
    """d/d(inputs, upstream) of sum(w * d(sum(out * upstream))/d(inputs)); None -> zeros."""
    inputs = [lib.tensor(a, requires_grad=True) for a in arrays]
    outs = as_list(case.fn(lib, *inputs))
    vs = [lib.tensor(v, requires_grad=True) for v in upstream]
    firsts = lib.autograd.grad(outs, inputs, grad_outputs=vs, create_graph=True,
                               allow_unused=True)
    total = None
    for g, w in zip(firsts, weights):
        if g is not None and g.requires_grad:
            term = (g * lib.tensor(w)).sum()
            total = term if total is None else total + term
    if total is None:  # first derivatives that depend on nothing: second ones are zero
        return [np.zeros_like(a) for a in list(arrays) + list(upstream)], firsts
    seconds = lib.autograd.grad(total, inputs + vs, allow_unused=True)
    every = list(arrays) + list(upstream)
    return [np.zeros_like(a) if s is None else s for s, a in zip(seconds, every)], firsts


def check_gradgrad_against_torch(case: OpCase, seed: int) -> None:
    """Grad-of-grad in float64: autograd.grad(create_graph=True), then differentiate again."""
    torch = _torch()
    arrays = sample_inputs(seed, case.example, case.domain)
    with torch.no_grad():
        outs = as_list(case.fn(torch, *[torch.tensor(a) for a in arrays]))
    rng = np.random.default_rng(seed + 1)
    upstream = [rng.standard_normal(tuple(o.shape)) for o in outs]
    weights = [rng.standard_normal(a.shape) for a in arrays]
    ours, first_ours = _second_derivatives(edugrad, case, arrays, upstream, weights)
    theirs, first_theirs = _second_derivatives(torch, case, arrays, upstream, weights)
    for i, (a, b) in enumerate(zip(first_ours, first_theirs)):
        assert (a is None) == (b is None), f"{case.name}: first derivative {i} missing"
        if a is not None:
            assert_same(a, b, f"{case.name} first derivative {i}")
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            continue
        a = edugrad.tensor(a) if isinstance(a, np.ndarray) else a
        b = torch.tensor(b) if isinstance(b, np.ndarray) else b
        assert_same(a, b, f"{case.name} second derivative {i}")


# ---- shape strategies: each draws a tuple with one shape per input -------------------------------
def check_hand_computed(fn, inputs, expected, grads) -> None:
    """fn on float32 leaf tensors made from `inputs`: its value is `expected` and the gradient
    of its sum with respect to each input is the matching entry of `grads` (worked out by
    hand in the table that calls this)."""
    tensors = [edugrad.tensor(v, requires_grad=True) for v in inputs]
    out = fn(*tensors)
    assert out.shape == np.shape(expected)
    assert out.dtype is edugrad.float32
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-6, atol=1e-7)
    out.sum().backward()
    for tensor, grad in zip(tensors, grads):
        assert tensor.grad.shape == np.shape(grad)
        np.testing.assert_allclose(tensor.grad.numpy(), grad, rtol=1e-6, atol=1e-7,
                                   equal_nan=True)


def shape(min_dims: int = 0, max_dims: int = 3, min_side: int = 0, max_side: int = 4):
    """One input of any shape in the bounds: 0-d, size-1 and (min_side=0) empty dims."""
    return array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                        max_side=max_side).map(lambda s: (s,))


def broadcastable(n: int = 2, min_dims: int = 0, max_dims: int = 3, min_side: int = 0,
                  max_side: int = 4):
    """n inputs whose shapes broadcast together: different ranks, size-1 dims, 0-d."""
    return mutually_broadcastable_shapes(
        num_shapes=n, min_dims=min_dims, max_dims=max_dims, min_side=min_side,
        max_side=max_side,
    ).map(lambda drawn: drawn.input_shapes)


def sizes(*ranges):
    """One input whose dim i has a size in ranges[i] (a (low, high) pair, inclusive)."""
    return st.tuples(*[st.integers(low, high) for low, high in ranges]).map(lambda s: (s,))


def combined(build, *ranges):
    """Several inputs from shared sizes: build(*drawn_sizes) -> tuple of shapes."""
    return st.tuples(*[st.integers(low, high) for low, high in ranges]).map(
        lambda drawn: build(*drawn))


# ---- backends for the tests ----------------------------------------------------------------------
class NoAccelBackend(NumpyBackend):
    """NumPy without its fast paths: TensorData composes matmul, take, index_add, unfold and fold
    from the required primitives."""

    def __init__(self, device: str | None = None) -> None:
        super().__init__(device)
        self.accelerated = frozenset()


NOACCEL = "cpu_noaccel"
edugrad.register_backend(NOACCEL, NoAccelBackend)
