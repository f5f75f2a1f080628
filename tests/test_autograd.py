"""The backward traversal: deep graphs, freeing, grad modes, grad(), hooks, in-place safety, memory.

Where PyTorch defines the behaviour, a scenario runs with lib = edugrad and lib = torch and the
two must agree: the same gradients, or both refusing with a RuntimeError.
"""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest
torch = pytest.importorskip("torch", reason="PyTorch is the oracle here: pip install -e \".[dev]\"")

import edugrad
from edugrad.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from edugrad.function import Function
from helpers import assert_same


@pytest.fixture(autouse=True)
def grad_mode_is_restored():
    """Every test starts and ends with grad recording on: a leak would poison the next test."""
    assert is_grad_enabled()
    yield
    assert is_grad_enabled()


# ---- deep graphs ---------------------------------------------------------------------------------
def test_deep_chain_backward_does_not_recurse():
    depth = 20_000
    assert depth > sys.getrecursionlimit()
    x = edugrad.tensor(2.0, requires_grad=True)
    y = x
    for _ in range(depth):
        y = y * 1.0 + 0.0
    y.backward()
    assert x.grad.shape == () and x.grad.item() == 1.0


def test_deep_chain_can_be_dropped_without_backward():
    x = edugrad.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y + 1.0
    alive = weakref.ref(y)
    del y  # a recursive teardown would overflow the C stack here
    assert alive() is None


def test_deep_chain_grad_of_grad():
    x = edugrad.tensor(1.5, requires_grad=True)
    y = x
    for _ in range(2_000):
        y = y * 1.0
    (first,) = edugrad.autograd.grad(y * y, x, create_graph=True)
    (second,) = edugrad.autograd.grad(first, x)
    assert first.item() == pytest.approx(3.0) and second.item() == pytest.approx(2.0)


# ---- the graph is freed --------------------------------------------------------------------------
def _graph(x):
    hidden = x * 2
    activated = hidden.exp()
    loss = activated.sum()
    return loss, [weakref.ref(hidden), weakref.ref(activated), weakref.ref(loss.grad_fn)]


def test_graph_freed_after_backward():
    x = edugrad.randn(3, requires_grad=True)
    loss, refs = _graph(x)
    assert all(ref() is not None for ref in refs[:2]), "the graph holds its intermediates"
    loss.backward()
    assert [ref() for ref in refs[:2]] == [None, None], "no cycle: freed without gc.collect()"


def test_graph_without_backward_freed_without_cycle_collector():
    x = edugrad.randn(3, requires_grad=True)
    gc.disable()
    try:
        loss, refs = _graph(x)
        del loss
        assert [ref() for ref in refs] == [None, None, None]
    finally:
        gc.enable()


def test_second_backward_raises_and_names_retain_graph():
    x = edugrad.randn(3, requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()


def test_retain_graph_allows_a_second_backward_and_grads_accumulate():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    assert x.grad.tolist() == [4.0, 8.0]  # 2 * (2x)


# ---- grad modes ----------------------------------------------------------------------------------
def test_no_grad_records_nothing_and_restores():
    x = edugrad.ones(2, requires_grad=True)
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2
        with enable_grad():
            assert is_grad_enabled()
            z = x * 2
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert z.requires_grad and z.grad_fn is not None


def test_grad_mode_restored_on_exception():
    with pytest.raises(ValueError):
        with no_grad():
            raise ValueError("boom")
    assert is_grad_enabled()
    with no_grad():
        with pytest.raises(KeyError):
            with enable_grad():
                raise KeyError("boom")
        assert not is_grad_enabled()


def test_set_grad_enabled_as_call_and_as_context():
    x = edugrad.ones(2, requires_grad=True)
    set_grad_enabled(False)
    try:
        assert not is_grad_enabled()
        assert not (x * 2).requires_grad
    finally:
        set_grad_enabled(True)
    with set_grad_enabled(False):
        assert not is_grad_enabled()
    assert is_grad_enabled()
    with no_grad(), set_grad_enabled(True):
        assert (x * 2).requires_grad


def test_no_grad_as_decorator_with_and_without_call():
    x = edugrad.ones(2, requires_grad=True)

    @no_grad()
    def called(t):
        """Doubles."""
        return t * 2

    @edugrad.no_grad
    def bare(t):
        return t * 2

    @no_grad()
    def failing():
        raise ValueError("boom")

    assert not called(x).requires_grad and not bare(x).requires_grad
    assert called.__name__ == "called" and called.__doc__ == "Doubles."
    with pytest.raises(ValueError):
        failing()
    assert is_grad_enabled()
    with no_grad():
        assert enable_grad()(lambda t: t * 2)(x).requires_grad


# ---- autograd.grad, create_graph, backward's arguments -------------------------------------------
def test_grad_with_create_graph_gives_higher_derivatives():
    x = edugrad.tensor(2.0, requires_grad=True)
    y = x ** 3
    (first,) = edugrad.autograd.grad(y, x, create_graph=True)
    assert first.item() == pytest.approx(12.0) and first.requires_grad  # 3x^2
    (second,) = edugrad.autograd.grad(first, x, create_graph=True)
    assert second.item() == pytest.approx(12.0)  # 6x
    (third,) = edugrad.autograd.grad(second, x)
    assert third.item() == pytest.approx(6.0)
    assert x.grad is None, "grad() leaves .grad alone"


def test_grad_of_several_inputs_and_grad_outputs():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    w = edugrad.tensor([3.0, 4.0], requires_grad=True)
    unused = edugrad.tensor(1.0, requires_grad=True)
    gx, gw, gu = edugrad.autograd.grad(x * w, [x, w, unused],
                                       grad_outputs=edugrad.tensor([1.0, 10.0]),
                                       allow_unused=True)
    assert gx.tolist() == [3.0, 40.0] and gw.tolist() == [1.0, 20.0] and gu is None
    with pytest.raises(RuntimeError, match="allow_unused"):
        edugrad.autograd.grad((x * w).sum(), [x, unused])


def test_backward_with_create_graph_makes_grad_differentiable():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    grad = x.grad
    assert grad.requires_grad
    x.grad = None
    grad.sum().backward()
    assert x.grad.tolist() == pytest.approx([6.0, 12.0])  # d/dx 3x^2


def test_backward_on_non_scalar_needs_gradient():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).backward(edugrad.tensor([1.0, -1.0]))
    assert x.grad.tolist() == [3.0, -3.0]
    with pytest.raises(RuntimeError, match=r"\(2,\)"):
        (x * 3).backward(edugrad.tensor([1.0, 2.0, 3.0]))


def test_backward_through_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        edugrad.ones(2).sum().backward()


# ---- hooks, retain_grad, accumulation, detach ----------------------------------------------------
def test_hook_modifies_the_gradient_flowing_on():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    hidden = x * 2
    hidden.register_hook(lambda grad: grad * 10)
    hidden.sum().backward()
    assert x.grad.tolist() == [20.0, 20.0]


def test_hook_sees_the_summed_gradient_once_and_can_be_removed():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    hidden = x * 1
    handle = hidden.register_hook(lambda grad: seen.append(grad.tolist()))
    (hidden * hidden).sum().backward()
    assert seen == [[2.0, 4.0]]  # both uses summed before the hook runs; None keeps the grad
    assert x.grad.tolist() == [2.0, 4.0]
    handle.remove()
    again = x * 1
    again.sum().backward()
    assert len(seen) == 1


def test_hook_on_leaf_changes_what_accumulates():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda grad: grad * 2)
    (x * 3).sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]
    with pytest.raises(RuntimeError, match="doesn't require"):
        edugrad.ones(2).register_hook(lambda grad: grad)


def test_retain_grad_keeps_a_non_leaf_gradient():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    hidden = x * 3
    other = x * 4
    hidden.retain_grad()
    (hidden * hidden + other).sum().backward()
    assert hidden.grad.tolist() == [6.0, 12.0]  # 2 * hidden
    assert other.grad is None
    assert x.grad.tolist() == [22.0, 40.0]


def test_gradients_accumulate_into_grad():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * x).sum().backward()
    assert x.grad.tolist() == [4.0, 6.0]
    (x + x).sum().backward()  # one leaf reached twice in one graph
    assert x.grad.tolist() == [6.0, 8.0]
    assert not x.grad.requires_grad and x.grad.grad_fn is None
    x.grad = None
    (x * 1).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_detach_cuts_the_graph_and_shares_values():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert d.tolist() == x.tolist()
    (d * x).sum().backward()
    assert x.grad.tolist() == [1.0, 2.0]  # only through the second factor
    assert (x * 2).detach().grad_fn is None


@pytest.mark.parametrize("alias", [lambda x: x.detach(), lambda x: x.data,
                                   lambda x: x.detach().detach()], ids=["detach", "data", "twice"])
def test_in_place_on_an_alias_changes_the_original(alias):
    x = edugrad.tensor([1.0, 2.0])
    alias(x).zero_()
    assert x.tolist() == [0.0, 0.0]


def test_parameter_update_through_data_as_old_pytorch_code_does():
    w = edugrad.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    w.data.sub_(0.5 * w.grad)          # no no_grad needed: .data is outside the graph
    assert w.tolist() == [0.0, 0.0] and w.requires_grad and w.is_leaf


def test_in_place_on_a_view_changes_the_original():
    x = edugrad.tensor([1.0, 2.0])
    x[0].zero_()
    assert x.tolist() == [0.0, 2.0]


def test_requires_grad_only_for_floats():
    with pytest.raises(RuntimeError, match="int64"):
        edugrad.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="bool"):
        edugrad.tensor([True], requires_grad=True)
    x = edugrad.tensor([1.0]).requires_grad_()
    assert x.requires_grad and x.is_leaf
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2).requires_grad_(False)


# ---- in-place operations and the version counter -------------------------------------------------
def exp_output_modified(lib, x, w):
    y = x.exp()
    y.add_(1)  # exp's backward uses its output
    return y.sum()


def operand_modified_under_no_grad(lib, x, w):
    a = x * w
    with lib.no_grad():
        w.mul_(2)  # mul's backward needs w for x's gradient
    return a.sum()


def non_leaf_operand_modified(lib, x, w):
    y = x * 2
    z = y * w
    y.mul_(3)
    return z.sum()


def sigmoid_output_modified_by_setitem(lib, x, w):
    s = x.sigmoid()
    s[0] = 0.0
    return s.sum()


def iadd_on_non_leaf(lib, x, w):
    y = x * w
    y += 1
    y *= x
    return y.sum()


def setitem_with_grads(lib, x, w):
    y = x * 1
    y[1] = w[0] * 3
    y[lib.tensor([0, 2])] = w[1:] ** 2
    return (y * y).sum()


def zero_and_mul_in_place(lib, x, w):
    y = x * w
    z = y.clone()
    z.zero_()
    z.add_(y)
    z.mul_(w)
    return z.sum()


def used_then_modified(lib, x, w):
    y = x * w
    z = y + 1  # add saves nothing: modifying y afterwards is allowed
    y.mul_(3)
    return (z * 2).sum() + y.sum()


def used_twice_then_modified(lib, x, w):
    y = x * w
    z = y + y  # one tensor passed twice: both uses reach the node y had then
    y.mul_(x)
    return (z * 3).sum() + (y * y).sum()


def squared_then_modified(lib, x, w):
    y = x * w
    z = y * y  # mul saves y, passed twice: modifying it afterwards is refused
    y.add_(1)
    return z.sum()


def constant_modified_with_grad(lib, x, w):
    c = lib.ones(3, dtype=x.dtype)
    z = c + x  # c is used at version 0; the update below must not reroute z's gradient
    c.add_(w)
    return z.sum() + (c * c).sum()


def leaf_param_updated_under_no_grad(lib, x, w):
    a = x + w  # add saves nothing: an optimizer step before backward is allowed
    with lib.no_grad():
        w.sub_(0.1 * w)
    return (a * 2).sum()


IN_PLACE = [
    (exp_output_modified, True),
    (operand_modified_under_no_grad, True),
    (non_leaf_operand_modified, True),
    (sigmoid_output_modified_by_setitem, True),
    (iadd_on_non_leaf, False),
    (setitem_with_grads, False),
    (zero_and_mul_in_place, False),
    (used_then_modified, False),
    (used_twice_then_modified, False),
    (squared_then_modified, True),
    (constant_modified_with_grad, False),
    (leaf_param_updated_under_no_grad, False),
]


@pytest.mark.parametrize("scenario,rejected", IN_PLACE, ids=[s.__name__ for s, _ in IN_PLACE])
def test_in_place_agrees_with_torch(scenario, rejected):
    """PyTorch refuses (at backward) exactly when backward needs a value that was modified."""
    values = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.25, -0.75])
    results = {}
    for lib in (edugrad, torch):
        x, w = (lib.tensor(v, requires_grad=True) for v in values)
        loss = scenario(lib, x, w)
        if rejected:
            with pytest.raises(RuntimeError, match="in-place|inplace") as error:
                loss.backward()
            results[lib] = str(error.value)
        else:
            loss.backward()
            results[lib] = (loss, x.grad, w.grad)
    if rejected:
        assert "modified by an in-place operation" in results[edugrad]
        assert "shape (3,)" in results[edugrad]
    else:
        for ours, theirs in zip(results[edugrad], results[torch]):
            assert_same(ours, theirs)


def test_in_place_on_leaf_requiring_grad_raises_before_changing_it():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    for update in (lambda: x.add_(1), lambda: x.mul_(2), lambda: x.zero_(),
                   lambda: x.__setitem__(0, 5.0)):
        with pytest.raises(RuntimeError, match="leaf"):
            update()
    assert x.tolist() == [1.0, 2.0] and x._version == 0
    with no_grad():
        x.sub_(edugrad.tensor([0.5, 0.5]))
    assert x.tolist() == [0.5, 1.5] and x.requires_grad and x.is_leaf and x.grad_fn is None


def test_in_place_bumps_the_version():
    x = edugrad.zeros(3)
    versions = [x._version]
    x += 1
    versions.append(x._version)
    x[0] = 2.0
    versions.append(x._version)
    x.mul_(3).zero_()
    versions.append(x._version)
    assert versions == [0, 1, 2, 4]
    assert x.tolist() == [0.0, 0.0, 0.0]


# ---- gradcheck itself ----------------------------------------------------------------------------
class Cube(Function):
    def forward(self, x):
        return x.mul(x).mul(x)

    def backward(self, grad_output):
        (x,) = self.inputs
        return grad_output * 3 * x * x  # d/dx x^3 = 3x^2


class WrongCube(Cube):
    def backward(self, grad_output):
        (x,) = self.inputs
        return grad_output * 2 * x * x


def test_custom_function_passes_gradcheck_and_gradgradcheck():
    x = edugrad.tensor([0.5, -1.5, 2.0], dtype=edugrad.float64, requires_grad=True)
    assert edugrad.autograd.gradcheck(Cube.apply, [x])
    assert edugrad.autograd.gradgradcheck(Cube.apply, [x])
    assert Cube.apply(x).grad_fn.name == "CubeBackward"


def test_gradcheck_catches_a_wrong_backward():
    x = edugrad.tensor([0.5, -1.5], dtype=edugrad.float64, requires_grad=True)
    with pytest.raises(AssertionError, match="input 0"):
        edugrad.autograd.gradcheck(WrongCube.apply, [x])
    assert edugrad.autograd.gradcheck(WrongCube.apply, [x], raise_exception=False) is False
    with pytest.raises(ValueError, match="float64"):
        edugrad.autograd.gradcheck(Cube.apply, [x.detach().float().requires_grad_()])


# ---- memory stays flat over many training steps --------------------------------------------------
def _live_tensors() -> int:
    gc.collect()
    return sum(issubclass(type(o), edugrad.Tensor) for o in gc.get_objects())


def test_memory_flat_over_training_steps():
    rng = np.random.default_rng(0)
    inputs = edugrad.tensor(rng.standard_normal((16, 4)), dtype=edugrad.float32)
    targets = edugrad.tensor(rng.integers(0, 3, 16))
    rows = edugrad.arange(16)
    w1 = edugrad.tensor(rng.standard_normal((4, 8)) * 0.5, dtype=edugrad.float32,
                        requires_grad=True)
    w2 = edugrad.tensor(rng.standard_normal((8, 3)) * 0.5, dtype=edugrad.float32,
                        requires_grad=True)
    params = [w1, w2]
    losses, counts = [], []
    for step in range(2_000):
        logits = (inputs @ w1).relu() @ w2
        loss = -logits.log_softmax(-1)[rows, targets].mean()
        loss.backward()
        with no_grad():
            for p in params:
                p -= 0.1 * p.grad
                p.grad = None
        losses.append(loss.item())
        if step in (10, 1_999):
            counts.append(_live_tensors())
    assert counts[1] <= counts[0], f"live tensors grew from {counts[0]} to {counts[1]}"
    assert losses[-1] < losses[0]


def test_a_forward_that_reads_the_graph_bookkeeping_with_grad_off_is_told_why():
    from edugrad.function import Function

    class Peeking(Function):
        def forward(self, x):
            self.needs_input_grad  # not given to forward: the graph is backward's
            return x

    x = edugrad.ones(2, requires_grad=True)
    with edugrad.no_grad():
        with pytest.raises(AttributeError, match=r"Peeking.forward read self.needs_input_grad.*"
                                                 r"with grad off"):
            Peeking.apply(x)
