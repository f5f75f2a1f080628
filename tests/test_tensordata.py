"""TensorData canonicalises and checks the arguments of every primitive, as its docstring says.

A backend method gets dull arguments (sorted non-negative axes, equal shapes and dtypes, one
device), and a custom Function that calls TensorData wrongly gets a clear error naming the
primitive and the shapes, dtypes or devices, not a crash inside NumPy or a silent broadcast.
Each check runs on every backend of conftest.py (cpu, the pure-Python one, ...).
"""

from __future__ import annotations

import numpy as np
import pytest

import edugrad
from edugrad import dtypes
from edugrad.backend import get_backend
from edugrad.data import TensorData
from edugrad.function import Function


def data(values, backend_name: str = "cpu", dtype=np.float32) -> TensorData:
    return TensorData.from_host(np.asarray(values, dtype=dtype), get_backend(backend_name))


def values(tensor_data: TensorData) -> list:
    return tensor_data.to_host().tolist()


# ---- reductions: ints, negative dims, any order --------------------------------------------------
@pytest.mark.parametrize("axes,expected", [
    ((1,), [3.0, 12.0]),
    ((-1,), [3.0, 12.0]),
    (-1, [3.0, 12.0]),
    (0, [3.0, 5.0, 7.0]),
    ((-1, 0), 15.0),
    ((1, 0, -1), 15.0),
    ([0, 1], 15.0),
])
def test_sum_takes_any_spelling_of_its_axes(axes, expected, backend_name):
    x = data([[0, 1, 2], [3, 4, 5]], backend_name)
    assert values(x.sum(axes, keepdim=False)) == expected


def test_max_takes_negative_axes_and_keeps_dims(backend_name):
    x = data([[0, 7, 2], [3, 4, 5]], backend_name)
    out = x.max(-1)
    assert out.shape == (2, 1) and values(out) == [[7.0], [5.0]]


def test_a_zero_dim_buffer_reduces_over_dim_0_or_minus_1_to_itself(backend_name):
    x = data(3.0, backend_name)
    for axes in (0, -1, (0,)):
        assert x.sum(axes, keepdim=False).shape == ()
        assert values(x.sum(axes, keepdim=False)) == 3.0


@pytest.mark.parametrize("axes", [(2,), (-3,), 5, ("0",), (0.5,)])
def test_bad_axes_name_the_primitive_and_the_shape(axes):
    with pytest.raises(ValueError, match=r"sum: dim"):
        data([[0, 1], [2, 3]]).sum(axes)


def test_flip_takes_negative_axes(backend_name):
    x = data([[0, 1, 2], [3, 4, 5]], backend_name)
    assert values(x.flip(-1)) == [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]


# ---- binary and ternary: equal shapes, dtypes and devices ---------------------------------------
BINARY = ["add", "sub", "mul", "div", "maximum", "cmplt", "cmpeq"]


@pytest.mark.parametrize("primitive", BINARY)
def test_binary_primitives_refuse_unequal_shapes_instead_of_broadcasting(primitive, backend_name):
    x, y = data([[1, 2, 3], [4, 5, 6]], backend_name), data([1, 2, 3], backend_name)
    with pytest.raises(ValueError, match=rf"{primitive}: expected equal shapes, got \(2, 3\) "
                                         r"and \(3,\).*EXPAND"):
        getattr(x, primitive)(y)


@pytest.mark.parametrize("primitive", BINARY)
def test_binary_primitives_refuse_unequal_dtypes(primitive):
    x, y = data([1, 2]), data([1, 2], dtype=np.float64)
    with pytest.raises(ValueError, match=rf"{primitive}: expected equal dtypes, got float32 and "
                                         r"float64.*CAST"):
        getattr(x, primitive)(y)


@pytest.mark.parametrize("primitive", BINARY)
def test_binary_primitives_refuse_two_devices(primitive):
    x, y = data([1, 2], "cpu"), data([1, 2], "python")
    with pytest.raises(RuntimeError, match=rf"{primitive}: expected all tensors on the same "
                                           r"device, got cpu and python"):
        getattr(x, primitive)(y)


@pytest.mark.parametrize("primitive", ["exp", "log", "sin", "sqrt"])
def test_float_only_primitives_refuse_integers(primitive):
    with pytest.raises(ValueError, match=rf"{primitive}: expected a float dtype, got int64"):
        getattr(data([1, 2], dtype=np.int64), primitive)()


def test_div_refuses_integers():
    x = data([1, 2], dtype=np.int64)
    with pytest.raises(ValueError, match="div: expected a float dtype, got int64"):
        x.div(x)


def test_where_checks_its_condition_and_both_values(backend_name):
    condition = data([True, False], backend_name, dtype=np.bool_)
    x, y = data([1, 2], backend_name), data([3, 4], backend_name)
    assert values(condition.where(x, y)) == [1.0, 4.0]
    with pytest.raises(ValueError, match="where: expected a bool condition, got float32"):
        x.where(x, y)
    with pytest.raises(ValueError, match=r"where: .*\(3,\) float32"):
        condition.where(x, data([3, 4, 5], backend_name))
    with pytest.raises(ValueError, match="where: .*float32.*float64"):
        condition.where(x, data([3, 4], backend_name, dtype=np.float64))


def test_where_refuses_a_condition_on_another_device():
    condition = data([True, False], "python", dtype=np.bool_)
    with pytest.raises(RuntimeError, match="where: expected all tensors on the same device"):
        condition.where(data([1, 2]), data([3, 4]))


def test_matmul_checks_shapes_and_dtypes(backend_name):
    x, y = data(np.ones((2, 3)), backend_name), data(np.ones((3, 4)), backend_name)
    assert x.matmul(y).shape == (2, 4)
    with pytest.raises(ValueError, match=r"matmul: expected \(\*b, n, k\) and \(\*b, k, m\)"):
        x.matmul(x)
    with pytest.raises(ValueError, match="matmul: expected equal dtypes"):
        x.matmul(data(np.ones((3, 4)), backend_name, dtype=np.float64))


def test_take_wants_an_int64_index_on_its_device():
    x = data([1, 2, 3])
    assert values(x.take(0, data([2, 0], dtype=np.int64))) == [3.0, 1.0]
    with pytest.raises(ValueError, match="take: expected an int64 index, got int32"):
        x.take(0, data([2, 0], dtype=np.int32))
    with pytest.raises(RuntimeError, match="take: expected all tensors on the same device"):
        x.take(0, data([2, 0], "python", dtype=np.int64))


# ---- what a custom Function sees -----------------------------------------------------------------
class RowSums(Function):
    """Sums the last dim, spelled as a learner might: a negative axis, keepdim=False."""

    def forward(self, x):
        self.shape = x.shape
        return x.sum((-1,), keepdim=False)

    def backward(self, grad_output):
        return grad_output.unsqueeze(-1).expand(*self.shape)


class AddsRowToMatrix(Function):
    """Forgets that TensorData does not broadcast."""

    def forward(self, x, row):
        return x.add(row)


def test_a_custom_function_may_use_negative_axes(backend_name):
    x = edugrad.tensor([[1.0, 2.0], [3.0, 4.0]], device=backend_name, requires_grad=True)
    out = RowSums.apply(x)
    assert out.tolist() == [3.0, 7.0]
    out.sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_a_custom_function_that_relies_on_broadcasting_gets_a_clear_error(backend_name):
    x, row = edugrad.ones(2, 3, device=backend_name), edugrad.ones(3, device=backend_name)
    with pytest.raises(ValueError, match=r"add: expected equal shapes, got \(2, 3\) and \(3,\)"):
        AddsRowToMatrix.apply(x, row)


def test_a_function_given_two_devices_names_itself_and_both_devices():
    with pytest.raises(RuntimeError, match=r"^adds_row_to_matrix: expected all tensors on the "
                                           r"same device, got cpu and python \(move one"):
        AddsRowToMatrix.apply(edugrad.ones(3), edugrad.ones(3, device="python"))


# ---- the constant cache --------------------------------------------------------------------------
def test_the_constant_cache_keeps_minus_zero_apart_from_zero(backend_name):
    backend = get_backend(backend_name)
    zero = TensorData.constant(0.0, (2,), dtypes.float32, backend)
    minus_zero = TensorData.constant(-0.0, (2,), dtypes.float32, backend)
    assert [np.signbit(v) for v in values(zero)] == [False, False]
    assert [np.signbit(v) for v in values(minus_zero)] == [True, True]
