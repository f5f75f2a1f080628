"""Custom Functions written the PyTorch way: `class F(edugrad.autograd.Function)` with
`@staticmethod forward(ctx, ...)` on Tensors (the adapter at the end of edugrad/function.py).

Each Function below is written once, as a function of the library (`lib.autograd.Function`),
and built twice: with lib = edugrad and lib = torch. The first three are the examples of
PyTorch's docs ("Extending torch.autograd"); the tests compare forward values and gradients
with torch's, check them against finite differences (gradcheck, gradgradcheck in float64), and
check the errors PyTorch raises too.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edugrad
from edugrad.autograd import gradcheck, gradgradcheck
from helpers import assert_same


def torch_lib():
    return pytest.importorskip("torch", reason="PyTorch is the oracle here: pip install torch")


# ---- the Functions, each written once for either library ---------------------------------------
def exp_function(lib):
    class Exp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, i):
            result = i.exp()
            ctx.save_for_backward(result)  # the output: its backward is written with it
            return result

        @staticmethod
        def backward(ctx, grad_output):
            (result,) = ctx.saved_tensors
            return grad_output * result

    return Exp


def linear_function(lib):
    class LinearFunction(lib.autograd.Function):
        @staticmethod
        def forward(ctx, input, weight, bias=None):  # the docs' example, with @ for .mm
            ctx.save_for_backward(input, weight, bias)
            output = input @ weight.t()
            if bias is not None:
                output += bias.unsqueeze(0).expand_as(output)
            return output

        @staticmethod
        def backward(ctx, grad_output):
            input, weight, bias = ctx.saved_tensors
            grad_input = grad_weight = grad_bias = None
            if ctx.needs_input_grad[0]:
                grad_input = grad_output @ weight
            if ctx.needs_input_grad[1]:
                grad_weight = grad_output.t() @ input
            if bias is not None and ctx.needs_input_grad[2]:
                grad_bias = grad_output.sum(0)
            return grad_input, grad_weight, grad_bias

    return LinearFunction


def mul_constant(lib):
    class MulConstant(lib.autograd.Function):
        @staticmethod
        def forward(ctx, tensor, constant):
            ctx.constant = constant  # a non-Tensor argument: kept on ctx, its gradient is None
            return tensor * constant

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output * ctx.constant, None

    return MulConstant


def split_sum_product(lib):
    """Two outputs, both differentiable, and an integer third marked non-differentiable."""

    class SumProduct(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            index = (x > y).to(lib.int64)
            ctx.mark_non_differentiable(index)
            return x + y, x * y, index

        @staticmethod
        def backward(ctx, grad_sum, grad_product, grad_index):
            x, y = ctx.saved_tensors
            return grad_sum + grad_product * y, grad_sum + grad_product * x

    return SumProduct


def cube_split_style(lib):
    """PyTorch 2's split: forward without ctx, and setup_context."""

    class Cube(lib.autograd.Function):
        @staticmethod
        def forward(x):
            return x * x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return grad_output * 3 * x * x

    return Cube


def run_both(build, arrays, extra=(), dtype="float64", upstream_seed=0):
    """Apply the Function built for each library to the same values; return outputs and grads."""
    torch = torch_lib()
    results = {}
    for lib in (edugrad, torch):
        inputs = [lib.tensor(a, dtype=getattr(lib, dtype), requires_grad=True) for a in arrays]
        out = build(lib).apply(*inputs, *extra)
        rng = np.random.default_rng(upstream_seed)
        upstream = lib.tensor(rng.standard_normal(tuple(out.shape)), dtype=getattr(lib, dtype))
        (out * upstream).sum().backward()
        results[lib.__name__] = (out, [t.grad for t in inputs])
    return results["edugrad"], results["torch"]


# ---- against torch -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exp_matches_torch(dtype):
    (out, grads), (t_out, t_grads) = run_both(exp_function, [np.linspace(-2, 2, 6)], dtype=dtype)
    assert_same(out, t_out)
    assert_same(grads[0], t_grads[0], "grad")


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(0, 4), features=st.integers(1, 4), outputs=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_linear_function_matches_torch(batch, features, outputs, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((batch, features)), rng.standard_normal((outputs, features)),
              rng.standard_normal(outputs)]
    (out, grads), (t_out, t_grads) = run_both(linear_function, arrays, upstream_seed=seed)
    assert_same(out, t_out)
    for ours, theirs in zip(grads, t_grads):
        assert_same(ours, theirs, "grad")


def test_mul_constant_matches_torch():
    (out, grads), (t_out, t_grads) = run_both(mul_constant, [[1.0, -2.0, 3.0]], extra=(2.5,))
    assert_same(out, t_out)
    assert_same(grads[0], t_grads[0], "grad")


def test_multiple_outputs_match_torch():
    torch = torch_lib()
    found = {}
    for lib in (edugrad, torch):
        x = lib.tensor([1.0, 5.0, -2.0], dtype=lib.float64, requires_grad=True)
        y = lib.tensor([2.0, 3.0, 4.0], dtype=lib.float64, requires_grad=True)
        total, product, index = split_sum_product(lib).apply(x, y)
        assert total.requires_grad and product.requires_grad and not index.requires_grad
        (total * 2 + product * 3).sum().backward()
        found[lib.__name__] = (index, x.grad, y.grad)
    for ours, theirs in zip(found["edugrad"], found["torch"]):
        assert_same(ours, theirs)


def test_only_one_output_used_gets_zeros_for_the_other():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    y = edugrad.tensor([3.0, 4.0], requires_grad=True)
    _, product, _ = split_sum_product(edugrad).apply(x, y)
    product.sum().backward()  # grad_sum reaches backward as zeros, as in PyTorch
    assert x.grad.tolist() == [3.0, 4.0] and y.grad.tolist() == [1.0, 2.0]


def test_setup_context_style_matches_torch():
    (out, grads), (t_out, t_grads) = run_both(cube_split_style, [[0.5, -1.0, 2.0]])
    assert_same(out, t_out)
    assert_same(grads[0], t_grads[0], "grad")


# ---- finite differences, and grad of grad --------------------------------------------------------
@pytest.mark.parametrize("build, shapes", [
    (exp_function, [(3,)]), (linear_function, [(2, 3), (4, 3), (4,)]),
    (cube_split_style, [(2, 2)]),
])
def test_gradcheck_and_gradgradcheck(build, shapes):
    rng = np.random.default_rng(1)
    inputs = [edugrad.tensor(rng.standard_normal(s), dtype=edugrad.float64, requires_grad=True)
              for s in shapes]
    assert gradcheck(build(edugrad).apply, inputs)
    assert gradgradcheck(build(edugrad).apply, inputs)


def test_gradcheck_with_a_non_tensor_argument():
    x = edugrad.tensor([0.3, -1.2], dtype=edugrad.float64, requires_grad=True)
    MulConstant = mul_constant(edugrad)
    assert gradcheck(lambda t: MulConstant.apply(t, 4.0), [x])


def test_hand_computed_exp():
    x = edugrad.tensor([0.0, 1.0], dtype=edugrad.float64, requires_grad=True)
    y = exp_function(edugrad).apply(x)
    (g,) = edugrad.autograd.grad(y.sum(), x, create_graph=True)
    (gg,) = edugrad.autograd.grad(g.sum(), x)  # d2/dx2 e^x = e^x, through the saved output
    assert np.allclose(g.tolist(), [1.0, np.e]) and np.allclose(gg.tolist(), [1.0, np.e])


# ---- ctx ----------------------------------------------------------------------------------------
def test_needs_input_grad_is_per_argument():
    seen = []

    class Probe(edugrad.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale, y):
            seen.append(ctx.needs_input_grad)
            return x * y * scale

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output, None, None

    x = edugrad.ones(2, requires_grad=True)
    Probe.apply(x, 2.0, edugrad.ones(2)).sum().backward()
    assert seen == [(True, False, False)]


def test_forward_runs_without_recording_and_the_output_links_once():
    class Square(edugrad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            inner = x * x
            assert not inner.requires_grad  # forward runs under no_grad, as in PyTorch
            ctx.save_for_backward(x)
            return inner

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return 2 * x * grad_output

    x = edugrad.tensor([3.0], requires_grad=True)
    y = Square.apply(x)
    assert y.grad_fn.name == "SquareBackward" and y.requires_grad
    with edugrad.no_grad():
        assert not Square.apply(x).requires_grad
    y.backward()
    assert x.grad.tolist() == [6.0]


def test_materialize_grads_off_passes_none():
    received = []

    class Two(edugrad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 1, x * 2

        @staticmethod
        def backward(ctx, grad_a, grad_b):
            received.append((grad_a is None, grad_b is None))
            return grad_a * 1 if grad_a is not None else grad_b * 2

    x = edugrad.ones(2, requires_grad=True)
    a, b = Two.apply(x)
    b.sum().backward()
    assert received == [(True, False)] and x.grad.tolist() == [2.0, 2.0]


def test_returning_an_input_gives_a_new_tensor():
    class Identity(edugrad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output * 2

    x = edugrad.ones(2, requires_grad=True)
    y = Identity.apply(x)
    assert y is not x and x.grad_fn is None
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_returning_an_outside_leaf_leaves_it_a_leaf():
    weight = edugrad.ones(2, requires_grad=True)

    class Constant(edugrad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return weight  # a leaf from outside, returned as is

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output

    x = edugrad.zeros(2, requires_grad=True)
    y = Constant.apply(x)
    assert y is not weight and weight.grad_fn is None and weight.is_leaf
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0] and weight.grad is None


def test_library_style_still_works_under_the_autograd_name():
    class Cube(edugrad.autograd.Function):
        def forward(self, x):  # TensorData, edugrad's own style
            return x.mul(x).mul(x)

        def backward(self, grad_output):
            (x,) = self.inputs
            return grad_output * 3 * x * x

    x = edugrad.tensor([2.0], requires_grad=True)
    Cube.apply(x).backward()
    assert x.grad.tolist() == [12.0]
    assert edugrad.autograd.Function is edugrad.Function


def test_once_differentiable_runs_and_refuses_a_second_derivative():
    torch = torch_lib()
    for lib in (edugrad, torch):
        class Square(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            @lib.autograd.function.once_differentiable
            def backward(ctx, grad_output):
                (x,) = ctx.saved_tensors
                return 2 * x * grad_output

        x = lib.tensor([3.0], dtype=lib.float64, requires_grad=True)
        v = lib.tensor([1.0], dtype=lib.float64, requires_grad=True)  # a gradient with a graph
        (g,) = lib.autograd.grad(Square.apply(x), x, grad_outputs=v, create_graph=True)
        assert g.tolist() == [6.0] and g.requires_grad
        with pytest.raises(RuntimeError, match="once_differentiable"):
            g.sum().backward()


# ---- errors, as PyTorch raises them ------------------------------------------------------------
def test_saved_tensor_changed_in_place_raises():
    torch = torch_lib()
    for lib in (edugrad, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = exp_function(lib).apply(x)
        with lib.no_grad():
            y.mul_(2)  # backward needs y's old value
        with pytest.raises(RuntimeError, match="modified by an inplace|modified by an in-place"):
            y.sum().backward()


def test_wrong_number_of_gradients_raises():
    class Bad(edugrad.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output

    x = edugrad.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="BadBackward: backward returned 1 gradients, "
                                           "expected 2"):
        Bad.apply(x, x).sum().backward()


def test_gradient_for_a_non_tensor_argument_raises():
    class Bad(edugrad.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output, grad_output

    x = edugrad.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="argument 1, which is not a Tensor"):
        Bad.apply(x, 2.0).sum().backward()


def test_wrong_gradient_shape_raises():
    class Bad(edugrad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output  # should be expanded to x's shape

    x = edugrad.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"BadBackward returned a gradient of shape \(\)"):
        Bad.apply(x).backward()


def test_second_backward_without_retain_graph_raises():
    x = edugrad.ones(2, requires_grad=True)
    y = exp_function(edugrad).apply(x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
