"""Arithmetic at the edges, checked against PyTorch element by element.

Every op here runs on a vector of awkward values (signed zeros, infinities, nan, negative bases,
halves) or on the grid of all pairs of them, in edugrad and in torch, and the results must be
identical: the same shape and dtype, nan in the same places, zeros and infinities of the same
sign, and the same values (bit for bit where the result is exact, to a few units in the last
place where both libraries round, as for fractional powers). Gradients too: the sum's gradient
with respect to every input. Then integer dtypes, result dtypes, reductions of 0-d tensors, the
cases the issue reported, and NumPy's floating-point warnings, which must never reach the user.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import edugrad

torch = pytest.importorskip("torch", reason="the edge tables are checked against PyTorch")

VALUES = [-math.inf, -3.5, -3.0, -2.5, -2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.0, 2.5, 3.0,
          math.inf, math.nan]
ROUNDING = {"float32": 1e-6, "float64": 1e-13}  # relative, where a result is rounded, not exact


def host(tensor) -> np.ndarray:
    return tensor.detach().numpy()


def assert_identical(ours, theirs, what: str, rtol: float = 0.0) -> None:
    """Same shape and dtype; then, element by element: nan where torch has nan, and otherwise
    equal values (within rtol if given) with the same sign, so -0.0 is not 0.0."""
    assert tuple(ours.shape) == tuple(theirs.shape), f"{what}: shape {ours.shape}"
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1], (
        f"{what}: dtype {ours.dtype}, torch {theirs.dtype}")
    a, b = host(ours), host(theirs)
    if a.dtype.kind != "f":
        np.testing.assert_array_equal(a, b, err_msg=what)
        return
    nan = np.isnan(b)
    wrong = np.isnan(a) != nan
    wrong |= ~nan & (np.signbit(a) != np.signbit(b))
    close = (a == b) | np.isclose(a, b, rtol=rtol, atol=0)
    wrong |= ~nan & ~close
    assert not wrong.any(), (f"{what}: at {np.argwhere(wrong).tolist()[:6]}: edugrad "
                             f"{a[wrong][:6].tolist()}, torch {b[wrong][:6].tolist()}")


def run_both(fn, arrays, grad: bool = True):
    """fn on edugrad and on torch tensors made from the same arrays; the outputs, and the
    gradients of their sums (None where an input gets none)."""
    results = []
    for lib in (edugrad, torch):
        inputs = [lib.tensor(a.copy(), requires_grad=grad and a.dtype.kind == "f")
                  for a in arrays]
        out = fn(lib, *inputs)
        if grad and out.requires_grad:
            out.sum().backward()
        results.append((out, [t.grad for t in inputs]))
    return results


def check_table_row(name: str, fn, arrays, exact: bool, dtype: str, grad: bool = True) -> None:
    (ours, our_grads), (theirs, their_grads) = run_both(fn, arrays, grad)
    rtol = 0.0 if exact else ROUNDING[dtype]
    assert_identical(ours, theirs, f"{name} ({dtype})", rtol)
    assert ours.requires_grad == theirs.requires_grad, f"{name}: requires_grad"
    for i, (g, h) in enumerate(zip(our_grads, their_grads)):
        assert (g is None) == (h is None), f"{name}: gradient {i} present in one library only"
        if h is not None:
            assert_identical(g, h, f"{name} ({dtype}) gradient {i}", ROUNDING[dtype])


# ---- one input: the vector of awkward values -----------------------------------------------------
def power(p):
    return lambda lib, x: x ** p


def rpower(base):
    return lambda lib, x: base ** x


UNARY = [  # name, fn(lib, x), exact (else: both libraries round), compare gradients
    *[(f"x ** {p}", power(p), True, True) for p in (0, 1, 2, 3, -1, 2.0)],
    *[(f"x ** {p}", power(p), False, True) for p in (4, 5, -2, -3, 0.5, -0.5, 1.5, -1.5, 1 / 3)],
    *[(f"{b} ** x", rpower(b), False, True) for b in (2, 0.5, 0, -2, 1, 3.0)],
    ("floor", lambda lib, x: x.floor(), True, True),
    ("ceil", lambda lib, x: x.ceil(), True, True),
    ("trunc", lambda lib, x: x.trunc(), True, True),
    ("round", lambda lib, x: x.round(), True, True),
    ("round(decimals=1)", lambda lib, x: (x / 3).round(decimals=1), True, True),
    ("x // 2", lambda lib, x: x // 2, True, False),  # torch: no derivative for floor_divide
    ("x // -0.5", lambda lib, x: x // -0.5, True, False),
    ("x % 2", lambda lib, x: x % 2, True, True),
    ("x % -2", lambda lib, x: x % -2, True, True),
    ("fmod(x, 2)", lambda lib, x: lib.fmod(x, 2), True, True),
    ("fmod(x, -1.5)", lambda lib, x: lib.fmod(x, -1.5), True, True),
    ("3 // x", lambda lib, x: 3 // x, True, False),
    ("3 % x", lambda lib, x: 3 % x, True, False),  # torch: no derivative for a number % tensor
    ("1 / (x * 0.0)", lambda lib, x: 1 / (x * 0.0), True, True),
    ("1 / (x * -0.0)", lambda lib, x: 1 / (x * -0.0), True, True),
    ("x >= 0, x <= 0", lambda lib, x: (x >= 0).double() * 2 + (x <= 0).double(), True, False),
]


# Summing inf and -inf, and gradients like 0 * inf at the edges, make NumPy's unguarded ADD,
# MUL and SUM warn (see backends/numpy_backend.py); the values are what the tables check.
# The quiet primitives are checked at the end, with every warning an error.
EDGE_ARITHMETIC_WARNS = pytest.mark.filterwarnings("ignore:invalid value encountered")


@EDGE_ARITHMETIC_WARNS
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,fn,exact,grad", UNARY, ids=[row[0] for row in UNARY])
def test_one_input_edge_values_match_torch(name, fn, exact, grad, dtype):
    check_table_row(name, fn, [np.array(VALUES, dtype=dtype)], exact, dtype, grad)


# ---- two inputs: every pair of awkward values ----------------------------------------------------
BINARY = [
    ("x ** y", lambda lib, x, y: x ** y, False, True),
    ("remainder", lambda lib, x, y: x % y, True, True),
    ("fmod", lambda lib, x, y: lib.fmod(x, y), True, True),
    ("floor_divide", lambda lib, x, y: lib.floor_divide(x, y), True, False),
    ("div(rounding_mode=floor) vs //", lambda lib, x, y: (
        x // y if lib is edugrad else torch.div(x, y, rounding_mode="floor")), True, True),
]


@EDGE_ARITHMETIC_WARNS
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,fn,exact,grad", BINARY, ids=[row[0] for row in BINARY])
def test_every_pair_of_edge_values_matches_torch(name, fn, exact, grad, dtype):
    x, y = np.meshgrid(np.array(VALUES, dtype=dtype), np.array(VALUES, dtype=dtype),
                       indexing="ij")
    check_table_row(name, fn, [x, y], exact, dtype, grad)


def test_whole_exponent_tensors_are_exact_in_float64():
    """Square and multiply, not exp(y log x): a power that float64 holds exactly comes out
    exactly, (-3.) ** 3. is -27 to the last bit, as with C's pow."""
    x = np.array([-3.0, 7.0, -0.5, 10.0, -2.0], dtype=np.float64)
    y = np.array([3.0, 11.0, -9.0, 15.0, 63.0])
    ours = edugrad.tensor(x) ** edugrad.tensor(y)
    assert ours.tolist() == (torch.tensor(x) ** torch.tensor(y)).tolist()
    assert ours.tolist() == [-27.0, 7.0**11, -512.0, 1e15, -(2.0**63)]


# ---- integers ------------------------------------------------------------------------------------
INTEGERS = [-7, -3, -2, -1, 0, 1, 2, 3, 7, 2**40, -(2**40)]


@pytest.mark.parametrize("dtype", ["int64", "int32"])
@pytest.mark.parametrize("op", ["//", "%", "fmod"])
def test_integer_division_with_remainder_matches_torch(op, dtype):
    values = np.array([v for v in INTEGERS if dtype == "int64" or abs(v) < 2**31], dtype=dtype)
    x, y = np.meshgrid(values, values, indexing="ij")
    keep = y != 0
    fn = {"//": lambda a, b: a // b, "%": lambda a, b: a % b, "fmod": lambda a, b: a.fmod(b)}[op]
    assert_identical(fn(edugrad.tensor(x[keep]), edugrad.tensor(y[keep])),
                     fn(torch.tensor(x[keep]), torch.tensor(y[keep])), f"{dtype} {op}")


@pytest.mark.parametrize("dtype", ["int64", "int32"])
def test_integer_powers_match_torch(dtype):
    """Wrapping like C's integers; negative exponents: 1 ** -n is 1, (-1) ** -n is +-1, else 0."""
    bases = np.array([-7, -3, -2, -1, 0, 1, 2, 3, 7], dtype=dtype)
    x, y = np.meshgrid(bases, np.array([0, 1, 2, 3, 5, 13, -1, -2], dtype=dtype), indexing="ij")
    assert_identical(edugrad.tensor(x) ** edugrad.tensor(y), torch.tensor(x) ** torch.tensor(y),
                     f"{dtype} tensor ** tensor")
    for p in (0, 1, 2, 3, 5, 2.0, 0.5, -1.0):
        assert_identical(edugrad.tensor(bases) ** p, torch.tensor(bases) ** p, f"{dtype} ** {p}",
                         rtol=1e-6)
    exponents = np.array([0, 1, 2, 3, 5], dtype=dtype)
    for base in (2, -2, 0, 1, 2.5):
        assert_identical(base ** edugrad.tensor(exponents), base ** torch.tensor(exponents),
                         f"{base} ** {dtype}", rtol=1e-6)


DTYPE_CASES = [  # the result dtype of mixed operands, and the values
    ("int64 ** 2", lambda lib: lib.tensor([2, 3]) ** 2),
    ("int64 ** 2.0", lambda lib: lib.tensor([2, 3]) ** 2.0),
    ("int64 ** 0.5", lambda lib: lib.tensor([4, 9]) ** 0.5),
    ("int32 ** 3", lambda lib: lib.tensor([2, -3], dtype=lib.int32) ** 3),
    ("bool ** 2", lambda lib: lib.tensor([True, False]) ** 2),
    ("float32 ** int64 tensor", lambda lib: lib.tensor([2.0, -2.0]) ** lib.tensor([3, 2])),
    ("int64 ** float32 tensor", lambda lib: lib.tensor([2, 3]) ** lib.tensor([3.0, 0.5])),
    ("float64 ** 0-d int64", lambda lib: lib.tensor([2.0, -2.0], dtype=lib.float64)
     ** lib.tensor(3)),
    ("2 ** int64", lambda lib: 2 ** lib.tensor([3, 0, -1])),
    ("2.5 ** int64", lambda lib: 2.5 ** lib.tensor([2, 1])),
    ("int64 // 2.5", lambda lib: lib.tensor([7, -7]) // 2.5),
    ("int64 % 2.5", lambda lib: lib.tensor([7, -7]) % 2.5),
    ("7 // int64", lambda lib: 7 // lib.tensor([2, -2])),
    ("7.5 // int64", lambda lib: 7.5 // lib.tensor([2, -2])),
    ("7 % float32", lambda lib: 7 % lib.tensor([-3.0, 3.0])),
    ("int32 fmod 2", lambda lib: lib.fmod(lib.tensor([7, -7], dtype=lib.int32), 2)),
    ("int32 // int64", lambda lib: lib.tensor([7, -7], dtype=lib.int32) // lib.tensor([2, 2])),
    ("floor of int64", lambda lib: lib.tensor([3, -3]).floor()),
    ("round of int32", lambda lib: lib.tensor([3, -3], dtype=lib.int32).round()),
    ("pow(2, tensor)", lambda lib: lib.pow(2, lib.tensor([1.0, 3.0]))),
    ("remainder(int, tensor)", lambda lib: lib.remainder(7, lib.tensor([-3, 3]))),
]


@pytest.mark.parametrize("name,fn", DTYPE_CASES, ids=[row[0] for row in DTYPE_CASES])
def test_result_dtypes_and_values_match_torch(name, fn):
    assert_identical(fn(edugrad), fn(torch), name, rtol=1e-6)


# ---- reductions of a 0-d tensor: dim 0 and -1 are allowed, as in torch ---------------------------
ZERO_DIM = [
    ("sum(0)", lambda x: x.sum(dim=0)),
    ("sum(-1)", lambda x: x.sum(-1)),
    ("sum((0,))", lambda x: x.sum(dim=(0,))),
    ("sum(0, keepdim)", lambda x: x.sum(0, keepdim=True)),
    ("mean(0)", lambda x: x.mean(0)),
    ("amax(0)", lambda x: x.amax(0)),
    ("amin(-1)", lambda x: x.amin(-1)),
    ("max(0).values", lambda x: x.max(0).values),
    ("max(0).indices", lambda x: x.max(0).indices),
    ("min(0, keepdim).values", lambda x: x.min(dim=0, keepdim=True).values),
    ("argmax(0)", lambda x: x.argmax(0)),
    ("argmin(-1)", lambda x: x.argmin(-1)),
    ("logsumexp(0)", lambda x: x.logsumexp(0)),
    ("softmax(0)", lambda x: x.softmax(0)),
    ("std(0, unbiased=False)", lambda x: x.std(0, unbiased=False)),
    ("std(0): one element, unbiased: nan", lambda x: x.std(0)),  # it was 0, silently
    ("var(): one element, unbiased: nan", lambda x: x.var()),
    ("any(0)", lambda x: (x > 0).any(0)),
    ("all(-1)", lambda x: (x > 0).all(-1)),
]


@pytest.mark.parametrize("name,fn", ZERO_DIM, ids=[row[0] for row in ZERO_DIM])
def test_reductions_of_a_zero_dim_tensor_match_torch(name, fn):
    check_table_row(name, lambda lib, x: fn(x), [np.array(3.0, dtype=np.float32)], True,
                    "float32")


def test_a_zero_dim_tensor_refuses_dim_1():
    with pytest.raises(IndexError, match="sum: dim 1 is out of range"):
        edugrad.tensor(3.0).sum(dim=1)


# ---- the cases the issue reported ----------------------------------------------------------------
def test_the_polynomial_tutorial_powers_are_exact():
    """pytorch's polynomial tutorial: x.unsqueeze(-1).pow(p) with p = tensor([1, 2, 3])."""
    x = edugrad.tensor([-2.0, -0.5, 3.0], requires_grad=True)
    powers = x.unsqueeze(-1).pow(edugrad.tensor([1, 2, 3]))
    assert powers.tolist() == [[-2.0, 4.0, -8.0], [-0.5, 0.25, -0.125], [3.0, 9.0, 27.0]]
    powers.sum().backward()
    assert x.grad.tolist() == [1 - 4 + 12, 1 - 1 + 0.75, 1 + 6 + 27]  # 1 + 2x + 3x^2


def test_zero_to_the_zero_is_one_and_odd_powers_keep_their_sign():
    assert (edugrad.tensor(0.0) ** 0).item() == 1.0
    assert (edugrad.tensor(-3.0) ** 3).item() == -27.0  # float32, exactly
    assert (edugrad.tensor(-2.0) ** 0.5).isnan().item()
    assert (edugrad.tensor([-8.0]) ** (1 / 3)).isnan().all().item()


def test_x_times_minus_zero_keeps_the_sign_for_division():
    """The constant cache once gave -0.0 and 0.0 one key: after x * 0.0, x * -0.0 was +0."""
    x = edugrad.tensor([2.0, 3.0])
    assert (1 / (x * 0.0)).tolist() == [math.inf, math.inf]
    assert (1 / (x * -0.0)).tolist() == [-math.inf, -math.inf]
    assert (1 / (x * 0.0)).tolist() == [math.inf, math.inf]


def test_logsumexp_of_near_tied_maxima_at_1e4_has_torchs_gradient():
    values = np.array([[1e4, 9999.999, 0.0], [1e4, 1e4, -1e4]], dtype=np.float32)
    check_table_row("logsumexp", lambda lib, x: x.logsumexp(1), [values], False, "float32")
    x = edugrad.tensor(values, requires_grad=True)
    x.logsumexp(1).sum().backward()
    assert abs(x.grad.tolist()[1][0] - 0.49989) < 1e-5  # the rounded 1e4 + log 2, as torch


def test_integer_to_a_negative_power_raises_as_in_torch():
    with pytest.raises(RuntimeError, match="pow: integers to negative integer powers"):
        edugrad.tensor([2, 3]) ** -1
    assert (edugrad.tensor([2, 4]) ** -1.0).tolist() == [0.5, 0.25]  # a float power is fine


def test_integer_division_by_zero_raises_as_in_torch():
    for fn in (lambda x: x // 0, lambda x: x % edugrad.tensor([1, 0]), lambda x: x.fmod(0)):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            fn(edugrad.tensor([5, 6]))
    assert (edugrad.tensor([5.0, -5.0, 0.0]) // 0).tolist()[:2] == [math.inf, -math.inf]


def test_bool_tensors_have_no_floor_division_or_tensor_power():
    with pytest.raises(NotImplementedError, match="floor_divide"):
        edugrad.tensor([True]) // edugrad.tensor([True])
    with pytest.raises(NotImplementedError, match="pow"):
        edugrad.tensor([True]) ** edugrad.tensor([True])


def test_floor_divide_has_a_zero_gradient():
    """PyTorch raises in floor_divide's backward (no derivative); its div(rounding_mode="floor")
    gives zero, and so does edugrad's //."""
    x = edugrad.tensor([5.0, -5.0], requires_grad=True)
    y = edugrad.tensor([3.0, 2.0], requires_grad=True)
    (x // y).sum().backward()
    assert (x.grad.tolist(), y.grad.tolist()) == ([0.0, 0.0], [0.0, 0.0])


# ---- silent differences tests/test_differential.py found: one row each, against torch --------
NAN = float("nan")
FOUND = [
    ("abs(+0.0) is +0.0", lambda lib: lib.tensor([0.0, -0.0, -2.0]).abs()),
    ("clamp(max=nan) is nan", lambda lib: lib.tensor([-1.0, 0.5]).clamp(max=NAN)),
    ("clamp(min=tensor with nan)",
     lambda lib: lib.tensor([-1.0, 0.5]).clamp(min=lib.tensor([NAN, 0.0]))),
    ("nan_to_num of float16", lambda lib: lib.tensor([NAN, -math.inf, 1.0],
                                                      dtype=lib.float16).nan_to_num()),
    ("nan_to_num of bool stays bool", lambda lib: lib.tensor([True, False]).nan_to_num()),
    ("int32.add(bool, alpha=2) stays int32",
     lambda lib: lib.tensor([-3], dtype=lib.int32).add(lib.tensor([True]), alpha=2)),
    ("True & bool tensor", lambda lib: True & lib.tensor([True, False])),
    ("minimum(int32, bool)",
     lambda lib: lib.tensor([1, -2], dtype=lib.int32).minimum(lib.tensor(False))),
    ("square of bool is int64", lambda lib: lib.tensor([True, False]).square()),
    ("sign of bool", lambda lib: lib.tensor([True, False]).sign()),
    ("logical_not of floats", lambda lib: lib.tensor([0.0, -0.0, 2.0, NAN]).logical_not()),
    ("amax of a 0-d bool stays bool", lambda lib: lib.tensor(True).amax()),
    ("amin of a 0-d bool", lambda lib: lib.tensor(True).amin(keepdim=True)),
    ("min(dim) of bools", lambda lib: lib.tensor([True, False]).min(dim=0).values),
    ("sort of a 0-d bool", lambda lib: lib.tensor(True).sort().values),
    ("logsumexp over an empty dim is -inf", lambda lib: lib.zeros(2, 0).logsumexp(1)),
    ("softmax of an empty tensor", lambda lib: lib.zeros(0).softmax(0)),
    ("log_softmax of an empty tensor", lambda lib: lib.zeros(3, 0).log_softmax(-1)),
    ("erf of float16 beyond 3 is +-1, not NaN", lambda lib: lib.tensor(
        [7.0, -7.0, 4.0, 0.5, math.inf], dtype=lib.float16).erf()),
    ("gelu of float16 at +-7 and inf", lambda lib: lib.nn.functional.gelu(lib.tensor(
        [7.0, -7.0, 4.0, 0.5, math.inf], dtype=lib.float16))),
    ("aminmax over a non-empty dim of an empty tensor",
     lambda lib: lib.zeros(1, 2, 0, dtype=lib.int32).aminmax(dim=1).max),
]


@pytest.mark.parametrize("name,fn", FOUND, ids=[row[0] for row in FOUND])
def test_differential_finds_match_torch(name, fn):
    assert_identical(fn(edugrad), fn(torch), name)


def test_trunc_division_has_a_zero_gradient_even_at_zero_divisors():
    """It was trunc(x / y): trunc's 0 times d(x / y)/dy = -x / y^2 sent nan back at y = 0."""
    y = edugrad.tensor([0.0, -2.0], requires_grad=True)
    edugrad.tensor([1.0, 3.0]).div(y, rounding_mode="trunc").sum().backward()
    assert y.grad.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("fn", [
    lambda lib, x, y: lib.xlogy(x, y),  # d/dx at x = 0 is log y (it was 0); 0 where y <= 0
    lambda lib, x, y: lib.atan2(x, y),  # at the origin torch gives 0 (it was 0/0 = nan)
], ids=["xlogy", "atan2"])
def test_gradients_at_zero_match_torch(fn):
    grads = []
    for lib in (edugrad, torch):
        x = lib.tensor([0.0, 0.0, 0.0, 2.0, -1.0], requires_grad=True)
        y = lib.tensor([3.0, 0.0, -1.0, 0.0, 2.0], requires_grad=True)
        fn(lib, x, y).sum().backward()
        grads.append([x.grad.tolist(), y.grad.tolist()])
    np.testing.assert_array_equal(np.array(grads[0]), np.array(grads[1]))


def test_bitwise_and_or_of_integers_raise_rather_than_answer_wrong():
    """-2 | False is -2 in torch (bitwise); a max of the operands gave 0."""
    for fn in (lambda x: x | False, lambda x: x & x, lambda x: True | x):
        with pytest.raises(TypeError, match="bool operands only"):
            fn(edugrad.tensor([-2, 3]))


@pytest.mark.parametrize("write", [
    lambda b: b.__setitem__(0, NAN), lambda b: b.fill_(math.inf),
    lambda b: b.masked_fill_(b > 1, -math.inf), lambda b: b.fill_(3e9)])
def test_integer_tensors_refuse_nan_inf_and_overflowing_floats(write):
    """torch raises 'value cannot be converted ... without overflow'; the cast wrote INT_MIN."""
    for lib in (edugrad, torch):
        b = lib.tensor([1, 2], dtype=lib.int32)
        with pytest.raises(RuntimeError, match="cannot be converted"):
            write(b)
        assert b.tolist() == [1, 2]
    b = edugrad.tensor([1, 2])
    b[0] = 2.7  # a finite float is truncated, as torch
    assert b.tolist() == [2, 2]


# ---- NumPy's floating-point warnings never reach the user ---------------------------------------
QUIET = [
    ("log(0)", lambda: edugrad.tensor([0.0, -1.0]).log()),
    ("sqrt(-1)", lambda: edugrad.tensor(-1.0).sqrt()),
    ("0 / 0", lambda: edugrad.tensor([0.0, 1.0]) / edugrad.tensor(0.0)),
    ("exp(1000)", lambda: edugrad.tensor(1000.0).exp()),
    ("nan to int64", lambda: edugrad.tensor([math.nan, math.inf]).long()),
    ("float64 to float32 overflow", lambda: edugrad.tensor([1e300], dtype=edugrad.float64).float()),
    ("x ** 3 at 0", lambda: edugrad.tensor([0.0, 2.0]) ** 3),
    ("x ** 1.5 at 0", lambda: edugrad.tensor([0.0, -0.0, -2.0]) ** 1.5),
    ("edge powers", lambda: edugrad.tensor(VALUES) ** edugrad.tensor(VALUES[::-1])),
    ("edge rounding", lambda: [getattr(edugrad.tensor(VALUES), name)()
                               for name in ("floor", "ceil", "trunc", "round")]),
    ("edge remainders", lambda: [fn(edugrad.tensor(VALUES), edugrad.tensor(VALUES[::-1]))
                                 for fn in (edugrad.remainder, edugrad.fmod,
                                            edugrad.floor_divide)]),
    ("log of a probability", lambda: edugrad.tensor([[0.0, 1.0]]).log().sum()),
]


@pytest.mark.parametrize("name,fn", QUIET, ids=[row[0] for row in QUIET])
def test_floating_point_edge_cases_warn_nothing(name, fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        fn()
