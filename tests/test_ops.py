"""Every differentiable op of the Tensor API, checked four ways from one table.

Each row of CASES is an OpCase (tests/helpers.py): `fn(lib, *inputs)` written once, run with
lib = edugrad and lib = torch. The table drives
  1. gradcheck in float64 at the row's example shapes (edugrad.autograd.gradcheck);
  2. the PyTorch oracle on shapes hypothesis draws (size-1 dims, broadcasting across ranks, 0-d
     tensors, empty dims where the op allows them), in float32 and float64: forward values and
     the gradients a random upstream gradient sends back;
  3. grad-of-grad against PyTorch, for the rows marked gradgrad (elementwise ops, matmul,
     reductions, softmax);
  4. the backends: every row gives the same values and gradients on "cpu", on a NumPy backend
     without its accelerated primitives (the fallbacks), and on every backend of conftest.py
     (the pure-Python one, and any given with `pytest --backend NAME`).
Then one hand-computed case per family, and numerical stability at magnitude 1e4.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
torch = pytest.importorskip("torch", reason="PyTorch is the oracle here: pip install -e \".[dev]\"")
from hypothesis import given, settings, strategies as st

import edugrad
from edugrad.checking import check
from edugrad.function import Fold, Unfold
from helpers import (
    NOACCEL, TOLERANCE, OpCase, as_list, assert_same, broadcastable,
    check_drawn_case_against_torch, check_gradgrad_against_torch, check_hand_computed, combined,
    sample_inputs, shape, sizes,
)


# ---- functions too long for a lambda -------------------------------------------------------------
def set_row(lib, x, v):
    y = x.clone()
    y[1] = v
    return y


def set_rows_by_tensor(lib, x, v):
    y = x * 1
    y[lib.tensor([0, 2])] = v
    return y


def set_columns_broadcast(lib, x, v):
    y = x.clone()
    y[:, 1:3] = v
    return y


def set_mask_scalar(lib, x):
    y = x.clone()
    y[y > 0] = 0.5
    return y


def set_strided(lib, x, v):
    y = x.clone()
    y[::2] = v * 2
    return y


def set_int_and_tensor(lib, x, v):
    y = x.clone()
    y[0, lib.tensor([1, 3])] = v
    return y


def sliced(lib, x, *keys):
    """x[keys] for slices with negative steps. PyTorch has no negative steps, so torch gets the
    same elements as index lists along each dim: the same values and the same gradients."""
    if lib is not torch:
        return x[keys]
    for dim, key in enumerate(keys):
        if key.step is not None and key.step < 0:
            rows = list(range(x.shape[dim]))[key]
            x = x.index_select(dim, torch.tensor(rows, dtype=torch.int64))
        else:
            x = x[(slice(None),) * dim + (key,)]
    return x


def square_matrices(b, n, k, m):
    return ((b, n, k), (b, k, m))


def conditioned(lib, x):
    """0.05 x + diag(1, 2, ..., k): singular values within 0.4 of 1, 2, ... (Weyl; entries of x
    are below 2, sides at most 4), so distinct and nonzero, as the SVD's gradient needs."""
    m, n = x.shape[-2:]
    return x * 0.05 + lib.eye(m, n, dtype=x.dtype) * lib.arange(1, n + 1, dtype=x.dtype)


def symmetric(lib, x):
    """A symmetric conditioned matrix: eigenvalues within 0.4 of 1, 2, ..., n."""
    return conditioned(lib, x + x.mT)


def signs_fixed(U, Vh):
    """Singular (or eigen-) vectors with the sign that makes each one's diagonal entry positive:
    the decomposition leaves it free (u_i, v_i -> -u_i, -v_i), and LAPACK and Jacobi differ.
    (For conditioned matrices those entries are near 1.)"""
    return (U * U.diagonal(0, -2, -1).sign().unsqueeze(-2),
            Vh * Vh.diagonal(0, -2, -1).sign().unsqueeze(-1))


def svd_fixed(lib, x, full_matrices):
    """linalg.svd of a conditioned matrix, signs fixed; with full_matrices the columns that
    complete U and Vh are any basis of what the others miss, so only the first k compare."""
    U, S, Vh = lib.linalg.svd(conditioned(lib, x), full_matrices=full_matrices)
    k = S.shape[-1]
    U, Vh = signs_fixed(U[..., :k], Vh[..., :k, :])
    return U, S, Vh


def torch_style_svd(lib, x):
    U, S, V = conditioned(lib, x).svd()
    U, Vt = signs_fixed(U, V.mT)
    return U, S, Vt.mT


def eigh_fixed(lib, x, UPLO="L"):
    """(Symmetric input: the gradient, PyTorch's formula, is not the derivative of a function of
    one triangle; test_ops_extra.py checks that only UPLO's triangle is read.)"""
    eigenvalues, eigenvectors = lib.linalg.eigh(symmetric(lib, x), UPLO=UPLO)
    return eigenvalues, signs_fixed(eigenvectors, eigenvectors.mT)[0]


def square(*sides):
    return combined(lambda *drawn: (drawn[:-1] + (drawn[-1], drawn[-1]),), *sides)


# ---- the table -----------------------------------------------------------------------------------
ELEMENTWISE = [
    OpCase("add", lambda lib, x, y: x + y, broadcastable(2), ((2, 3), (3,)), gradgrad=True),
    OpCase("sub", lambda lib, x, y: x - y, broadcastable(2), ((2, 1), (1, 3)), gradgrad=True),
    OpCase("mul", lambda lib, x, y: x * y, broadcastable(2), ((3,), (2, 3)), gradgrad=True),
    OpCase("div", lambda lib, x, y: x / y, broadcastable(2), ((2, 3), ()), gradgrad=True),
    OpCase("add_scalar", lambda lib, x: x + 2.5, shape(), ((2, 3),), gradgrad=True),
    OpCase("rsub_scalar", lambda lib, x: 2.5 - x, shape(), ((2, 3),), gradgrad=True),
    OpCase("mul_scalar", lambda lib, x: x * -3, shape(), ((2, 3),), gradgrad=True),
    OpCase("rmul_scalar", lambda lib, x: 0.5 * x, shape(), ((4,),), gradgrad=True),
    OpCase("div_scalar", lambda lib, x: x / 4, shape(), ((2, 3),), gradgrad=True),
    OpCase("rdiv_scalar", lambda lib, x: 2 / x, shape(), ((2, 3),), gradgrad=True),
    OpCase("pow_2", lambda lib, x: x ** 2, shape(), ((2, 3),), gradgrad=True),
    OpCase("pow_3", lambda lib, x: x ** 3, shape(), ((2, 3),), gradgrad=True),
    OpCase("pow_half", lambda lib, x: x ** 0.5, shape(), ((2, 3),), "positive", gradgrad=True),
    OpCase("pow_neg_frac", lambda lib, x: x ** -1.5, shape(), ((3,),), "positive", gradgrad=True),
    OpCase("pow_neg_2", lambda lib, x: x ** -2, shape(), ((2, 3),), gradgrad=True),
    OpCase("pow_fn", lambda lib, x: lib.pow(x, 3.0), shape(), ((2, 2),), gradgrad=True),
    OpCase("pow_tensor", lambda lib, x, y: x ** y, broadcastable(2), ((2, 3), (3,)),
           ("positive", "real"), gradgrad=True),
    OpCase("rpow_scalar", lambda lib, x: 2 ** x, shape(), ((2, 3),), gradgrad=True),
    # whole exponents in a tensor: square and multiply, exact, negative bases included
    OpCase("pow_int_tensor", lambda lib, x: x ** (lib.arange(x.shape[-1]) - 1),
           shape(min_dims=1), ((2, 4),), gradgrad=True),
    OpCase("pow_whole_tensor", lambda lib, x, y: x ** (y * 3).round(), broadcastable(2),
           ((2, 3), (3,)), gradgrad=True),
    OpCase("pow_fn_tensor", lambda lib, x, y: lib.pow(x.abs() + 0.5, y), broadcastable(2),
           ((3,), (2, 3)), gradgrad=True),
    OpCase("floor", lambda lib, x: x.floor() + x, shape(), ((2, 3),)),
    OpCase("ceil", lambda lib, x: x.ceil() * x, shape(), ((2, 3),)),
    OpCase("trunc", lambda lib, x: x.trunc() - x, shape(), ((2, 3),)),
    OpCase("round", lambda lib, x: (x * 2).round() * x, shape(), ((2, 3),)),
    OpCase("round_decimals", lambda lib, x: x.round(decimals=1) + x, shape(), ((2, 3),)),
    # torch's floor_divide has no derivative; its div(rounding_mode="floor") gives the zero //
    # gives here
    OpCase("floor_divide", lambda lib, x, y: (
        x // y if lib is edugrad else lib.div(x, y, rounding_mode="floor")) + x,
        broadcastable(2), ((2, 3), (3,))),
    OpCase("remainder", lambda lib, x, y: x % y, broadcastable(2), ((2, 3), (3,))),
    OpCase("remainder_scalar", lambda lib, x: x % 0.7, shape(), ((2, 3),)),
    OpCase("remainder_fn", lambda lib, x, y: lib.remainder(x, y * 0.3), broadcastable(2),
           ((2, 1), (3,))),
    OpCase("fmod", lambda lib, x, y: lib.fmod(x, y), broadcastable(2), ((2, 3), (2, 1))),
    OpCase("fmod_scalar", lambda lib, x: x.fmod(-0.6), shape(), ((2, 3),)),
    OpCase("neg", lambda lib, x: -x, shape(), ((2, 3),), gradgrad=True),
    OpCase("exp", lambda lib, x: x.exp(), shape(), ((2, 3),), gradgrad=True),
    OpCase("log", lambda lib, x: x.log(), shape(), ((2, 3),), "positive", gradgrad=True),
    OpCase("sqrt", lambda lib, x: x.sqrt(), shape(), ((2, 3),), "positive", gradgrad=True),
    OpCase("sin", lambda lib, x: x.sin(), shape(), ((2, 3),), gradgrad=True),
    OpCase("cos", lambda lib, x: x.cos(), shape(), ((2, 3),), gradgrad=True),
    OpCase("tanh", lambda lib, x: x.tanh(), shape(), ((2, 3),), gradgrad=True),
    OpCase("sigmoid", lambda lib, x: x.sigmoid(), shape(), ((2, 3),), gradgrad=True),
    OpCase("gelu", lambda lib, x: lib.nn.functional.gelu(x), shape(), ((2, 3),), gradgrad=True),
    OpCase("gelu_wide", lambda lib, x: lib.nn.functional.gelu(x * 4), shape(), ((3, 4),),
           gradgrad=True),  # x * 4 in (-8, 8): ERF's other branch, phi's tails
    OpCase("relu", lambda lib, x: x.relu(), shape(), ((2, 3),), gradgrad=True),
    OpCase("abs", lambda lib, x: x.abs(), shape(), ((2, 3),), gradgrad=True),
    OpCase("clamp", lambda lib, x: x.clamp(-0.5, 0.5), shape(), ((2, 4),), gradgrad=True),
    OpCase("clamp_min", lambda lib, x: x.clamp(min=0.2), shape(), ((2, 4),), gradgrad=True),
    OpCase("clamp_max", lambda lib, x: x.clamp(max=-0.2), shape(), ((2, 4),), gradgrad=True),
    OpCase("exp_fn", lambda lib, x: lib.exp(x) * lib.tanh(x), shape(), ((3,),), gradgrad=True),
    OpCase("maximum", lambda lib, x, y: lib.maximum(x, y), broadcastable(2), ((2, 3), (3,)),
           gradgrad=True),
    OpCase("minimum", lambda lib, x, y: lib.minimum(x, y), broadcastable(2), ((2, 1), (3,)),
           gradgrad=True),
    OpCase("where", lambda lib, x, y: lib.where(x > 0, x, y), broadcastable(2), ((2, 3), (3,)),
           gradgrad=True),
    OpCase("where_3", lambda lib, c, x, y: lib.where(c > 0, x * 2, y), broadcastable(3),
           ((3, 1), (1, 2), ()), gradgrad=True),
    OpCase("where_scalar", lambda lib, x: lib.where(x < 0, x, 0.0), shape(), ((2, 3),),
           gradgrad=True),
    OpCase("chain", lambda lib, x, y: ((x * y).sigmoid() + x.exp() / 3).log() - y ** 2,
           broadcastable(2), ((2, 3), (2, 1)), gradgrad=True),
]

REDUCTIONS = [
    OpCase("sum", lambda lib, x: x.sum(), shape(), ((2, 3),), gradgrad=True),
    OpCase("sum_dim", lambda lib, x: x.sum(dim=1), shape(min_dims=2), ((2, 3),), gradgrad=True),
    OpCase("sum_keepdim", lambda lib, x: x.sum(dim=-1, keepdim=True), shape(min_dims=1),
           ((2, 3),), gradgrad=True),
    OpCase("sum_dims", lambda lib, x: x.sum(dim=(0, 2)), shape(min_dims=3), ((2, 2, 3),),
           gradgrad=True),
    OpCase("mean", lambda lib, x: x.mean(), shape(), ((2, 3),), gradgrad=True),
    OpCase("mean_dims", lambda lib, x: x.mean(dim=(0, -1), keepdim=True),
           shape(min_dims=2, min_side=1), ((2, 2, 3),), gradgrad=True),
    OpCase("max", lambda lib, x: x.max(), shape(min_side=1), ((2, 3),), gradgrad=True),
    OpCase("min", lambda lib, x: x.min(), shape(min_side=1), ((2, 3),), gradgrad=True),
    OpCase("amax_dim", lambda lib, x: x.amax(dim=1), shape(min_dims=2, min_side=1), ((3, 4),),
           gradgrad=True),
    OpCase("amax_dims", lambda lib, x: x.amax(dim=(0, 1), keepdim=True),
           shape(min_dims=2, min_side=1), ((2, 3, 2),), gradgrad=True),
    OpCase("amin_dim", lambda lib, x: x.amin(dim=-1), shape(min_dims=1, min_side=1), ((3, 4),),
           gradgrad=True),
    OpCase("amin_dims", lambda lib, x: x.amin(dim=(-1, 0)), shape(min_dims=2, min_side=1),
           ((2, 3, 2),), gradgrad=True),
    OpCase("max_dim", lambda lib, x: x.max(dim=1).values, shape(min_dims=2, min_side=1),
           ((3, 4),), gradgrad=True),
    OpCase("max_dim_keepdim", lambda lib, x: x.max(dim=0, keepdim=True).values,
           shape(min_dims=1, min_side=1), ((3, 4),), gradgrad=True),
    OpCase("min_dim", lambda lib, x: x.min(dim=-1).values, shape(min_dims=1, min_side=1),
           ((3, 4),), gradgrad=True),
    OpCase("var", lambda lib, x: x.var(), shape(min_dims=1, min_side=2), ((2, 3),), gradgrad=True),
    OpCase("var_dim", lambda lib, x: x.var(dim=1), sizes((0, 3), (2, 4)), ((2, 3),),
           gradgrad=True),
    OpCase("var_biased", lambda lib, x: x.var(dim=1, unbiased=False),
           shape(min_dims=2, min_side=1), ((2, 3),), gradgrad=True),
    OpCase("std", lambda lib, x: x.std(), shape(min_dims=1, min_side=2), ((2, 3),), gradgrad=True),
    OpCase("std_biased", lambda lib, x: x.std(dim=0, keepdim=True, unbiased=False),
           shape(min_dims=1, min_side=1), ((3, 2),), gradgrad=True),
    OpCase("std_dims", lambda lib, x: x.std(dim=(0, 1)), shape(min_dims=2, min_side=2),
           ((2, 3, 2),), gradgrad=True),
    OpCase("logsumexp", lambda lib, x: x.logsumexp(dim=1), shape(min_dims=2, min_side=1),
           ((2, 3),), gradgrad=True),
    OpCase("logsumexp_dims", lambda lib, x: x.logsumexp(dim=(0, -1), keepdim=True),
           shape(min_dims=2, min_side=1), ((2, 3),), gradgrad=True),
    OpCase("softmax", lambda lib, x: x.softmax(-1), shape(min_dims=1, min_side=1), ((2, 3),),
           gradgrad=True),
    OpCase("softmax_dim0", lambda lib, x: x.softmax(0), shape(min_dims=1, min_side=1), ((3, 2),),
           gradgrad=True),
    OpCase("log_softmax", lambda lib, x: x.log_softmax(1), shape(min_dims=2, min_side=1),
           ((2, 3),), gradgrad=True),
    OpCase("log_softmax_last", lambda lib, x: lib.log_softmax(x, -1),
           shape(min_dims=1, min_side=1), ((4,),), gradgrad=True),
    OpCase("softmax_0d", lambda lib, x: x.softmax(0) + x.log_softmax(-1), shape(max_dims=0), ((),),
           gradgrad=True),
    OpCase("softmax_chain", lambda lib, x, y: (x.softmax(1) * y).log_softmax(0),
           broadcastable(2, min_dims=2, min_side=1), ((2, 3), (3,)), gradgrad=True),
]

SHAPE_OPS = [
    OpCase("reshape_flat", lambda lib, x: x.reshape(-1), shape(), ((2, 3),)),
    OpCase("reshape", lambda lib, x: x.reshape(x.shape[0], -1) * 1, shape(min_dims=1, min_side=1),
           ((2, 3, 2),)),
    # contiguous(): torch refuses view() of a permuted tensor; edugrad's view is reshape
    OpCase("view", lambda lib, x: x.contiguous().view(x.shape[-1], -1),
           shape(min_dims=1, min_side=1), ((2, 3),)),
    OpCase("flatten", lambda lib, x: x.flatten(), shape(), ((2, 3),)),
    OpCase("flatten_1", lambda lib, x: x.flatten(1), shape(min_dims=2), ((2, 3, 2),)),
    OpCase("permute", lambda lib, x: x.permute(2, 0, 1), shape(min_dims=3, max_dims=3),
           ((2, 3, 4),)),
    OpCase("transpose", lambda lib, x: x.transpose(0, -1), shape(min_dims=1), ((2, 3, 4),)),
    OpCase("T", lambda lib, x: x.T, shape(min_dims=2, max_dims=2), ((2, 3),)),
    OpCase("unsqueeze", lambda lib, x: x.unsqueeze(1), shape(min_dims=1), ((2, 3),)),
    OpCase("unsqueeze_last", lambda lib, x: x.unsqueeze(-1), shape(), ((2,),)),
    OpCase("squeeze", lambda lib, x: x.squeeze(), shape(max_side=2), ((1, 3, 1),)),
    OpCase("squeeze_dim", lambda lib, x: x.squeeze(1), sizes((0, 3), (1, 2), (1, 3)),
           ((2, 1, 3),)),
    OpCase("expand", lambda lib, x: x.expand(3, *x.shape), shape(), ((2, 1),)),
    OpCase("expand_ones", lambda lib, x: x.expand(-1, 4), sizes((0, 3), (1, 1)), ((3, 1),)),
    OpCase("repeat", lambda lib, x: x.repeat(2, 1, 3), shape(min_dims=2, max_dims=3), ((2, 3),)),
    OpCase("repeat_1d", lambda lib, x: x.repeat(2), shape(min_dims=1, max_dims=1), ((3,),)),
    OpCase("flip", lambda lib, x: x.flip(0), shape(min_dims=1), ((3, 2),)),
    OpCase("flip_dims", lambda lib, x: x.flip(0, -1), shape(min_dims=2), ((3, 2),)),
    OpCase("cat", lambda lib, x, y: lib.cat([x, y], dim=1),
           combined(lambda a, b, c, d: ((a, b, d), (a, c, d)), (0, 3), (0, 3), (0, 3), (1, 2)),
           ((2, 1, 2), (2, 3, 2))),
    OpCase("cat_three", lambda lib, x, y: lib.cat([x, y * 2, x], dim=0),
           combined(lambda a, b, c: ((a, c), (b, c)), (0, 3), (0, 3), (0, 3)), ((1, 3), (2, 3))),
    OpCase("stack", lambda lib, x, y: lib.stack([x, y], dim=0),
           combined(lambda a, b: ((a, b), (a, b)), (0, 3), (0, 3)), ((2, 3), (2, 3))),
    OpCase("stack_last", lambda lib, x, y: lib.stack([x, y, x], dim=-1),
           combined(lambda a: ((a,), (a,)), (0, 4)), ((3,), (3,))),
    OpCase("split", lambda lib, x: x.split(2, dim=0), sizes((1, 5), (0, 3)), ((5, 2),)),
    OpCase("split_sections", lambda lib, x: x.split([1, 2], dim=1), sizes((0, 3), (3, 3)),
           ((2, 3),)),
    OpCase("chunk", lambda lib, x: x.chunk(2, dim=-1), sizes((0, 3), (2, 5)), ((2, 5),)),
    OpCase("chunk_3", lambda lib, x: x.chunk(3), sizes((3, 7)), ((7,),)),
]

MATMUL = [
    OpCase("matmul_1d_1d", lambda lib, x, y: x @ y, combined(lambda k: ((k,), (k,)), (0, 4)),
           ((3,), (3,)), gradgrad=True),
    OpCase("matmul_2d_1d", lambda lib, x, y: x @ y,
           combined(lambda n, k: ((n, k), (k,)), (0, 3), (0, 3)), ((2, 3), (3,)), gradgrad=True),
    OpCase("matmul_1d_2d", lambda lib, x, y: x.matmul(y),
           combined(lambda k, m: ((k,), (k, m)), (0, 3), (0, 3)), ((3,), (3, 2)), gradgrad=True),
    OpCase("matmul_2d", lambda lib, x, y: x @ y,
           combined(lambda n, k, m: ((n, k), (k, m)), (0, 3), (0, 3), (0, 3)), ((2, 3), (3, 2)),
           gradgrad=True),
    OpCase("matmul_batched", lambda lib, x, y: x @ y, combined(square_matrices, (1, 3), (1, 3),
           (1, 3), (1, 3)), ((2, 2, 3), (2, 3, 2)), gradgrad=True),
    OpCase("matmul_broadcast", lambda lib, x, y: x @ y,
           combined(lambda b, c, n, k, m: ((b, 1, n, k), (c, k, m)), (1, 3), (1, 3), (1, 3),
                    (1, 3), (1, 3)), ((2, 1, 2, 3), (2, 3, 2)), gradgrad=True),
    OpCase("matmul_2d_batched", lambda lib, x, y: lib.matmul(x, y),
           combined(lambda b, n, k, m: ((n, k), (b, k, m)), (1, 3), (1, 3), (1, 3), (1, 3)),
           ((2, 3), (2, 3, 2)), gradgrad=True),
    OpCase("matmul_batched_1d", lambda lib, x, y: x @ y,
           combined(lambda b, n, k: ((b, n, k), (k,)), (1, 3), (1, 3), (1, 3)),
           ((2, 2, 3), (3,)), gradgrad=True),
]


def index(lib, *values):
    """An index tensor made inside fn, so that it is lib's own."""
    return lib.tensor(list(values))


INDEXING = [
    OpCase("index_int", lambda lib, x: x[1], sizes((2, 4), (0, 3)), ((3, 2),)),
    OpCase("index_negative_int", lambda lib, x: x[-1], shape(min_dims=1, min_side=1), ((3, 2),)),
    OpCase("index_slice", lambda lib, x: x[1:3], sizes((0, 5), (0, 3)), ((4, 2),)),
    OpCase("index_step", lambda lib, x: x[::2], sizes((0, 6), (1, 2)), ((5, 2),)),
    OpCase("index_steps", lambda lib, x: sliced(lib, x, slice(1, None, 2), slice(None, None, -1)),
           sizes((0, 6), (0, 4)), ((5, 3),)),
    OpCase("index_negative_step", lambda lib, x: sliced(lib, x, slice(None, None, -2)),
           sizes((0, 6)), ((5,),)),
    OpCase("index_negative_bounds", lambda lib, x: sliced(lib, x, slice(-3, -1), slice(3, 0, -2)),
           sizes((0, 5), (0, 5)), ((4, 5),)),
    OpCase("index_step_past_end", lambda lib, x: x[1:10:3], sizes((0, 8)), ((7,),)),
    OpCase("index_none_ellipsis", lambda lib, x: x[None, ..., 0], sizes((0, 3), (1, 3)),
           ((2, 3),)),
    OpCase("index_ellipsis_none", lambda lib, x: x[..., None], shape(), ((2, 3),)),
    OpCase("index_none_slice", lambda lib, x: x[:, None, 1:], sizes((0, 3), (0, 4)), ((2, 3),)),
    OpCase("index_repeated", lambda lib, x: x[index(lib, 0, 2, 0)], sizes((3, 4), (0, 3)),
           ((3, 2),)),
    OpCase("index_tensor_dim1", lambda lib, x: x[:, index(lib, 1, 1, 0)], sizes((0, 3), (2, 4)),
           ((2, 3),)),
    OpCase("index_tensor_2d", lambda lib, x: x[lib.tensor([[0, 1], [1, 0]])],
           sizes((2, 4), (0, 3)), ((2, 3),)),
    OpCase("index_tensor_negative", lambda lib, x: x[index(lib, -1, 0)], sizes((1, 4), (0, 2)),
           ((3, 2),)),
    OpCase("index_list", lambda lib, x: x[[0, 2]], sizes((3, 4), (0, 2)), ((3, 2),)),
    OpCase("index_mask", lambda lib, x: x[x > 0], shape(), ((3, 4),)),
    OpCase("index_mask_dim1", lambda lib, x: x[:, index(lib, True, False, True)],
           sizes((0, 3), (3, 3), (0, 2)), ((2, 3, 2),)),
    OpCase("index_mask_2d",
           lambda lib, x: x[lib.tensor([[True, False, True], [False, True, True]])],
           sizes((2, 2), (3, 3), (0, 3)), ((2, 3, 2),)),
    OpCase("index_two_adjacent", lambda lib, x: x[index(lib, 0, 1, 1), index(lib, 2, 0, 2)],
           sizes((2, 3), (3, 4), (0, 2)), ((2, 3, 2),)),
    OpCase("index_two_adjacent_inner", lambda lib, x: x[:, index(lib, 0, 1), index(lib, 1, 1)],
           sizes((0, 3), (2, 3), (2, 3)), ((2, 2, 3),)),
    OpCase("index_two_separated", lambda lib, x: x[index(lib, 0, 1), :, index(lib, 1, 0)],
           sizes((2, 3), (0, 3), (2, 3)), ((2, 3, 2),)),
    OpCase("index_two_broadcast", lambda lib, x: x[lib.tensor([[0], [1]]), index(lib, 0, 2, 1)],
           sizes((2, 3), (3, 4)), ((2, 3),)),
    OpCase("index_int_and_tensor", lambda lib, x: x[0, :, index(lib, 0, 1)],
           sizes((1, 3), (0, 3), (2, 3)), ((2, 3, 2),)),
    OpCase("index_tensor_slice_tensor", lambda lib, x: x[index(lib, 0, 1), 1:, index(lib, 1, 0)],
           sizes((2, 3), (0, 4), (2, 3)), ((2, 3, 2),)),
    OpCase("index_ellipsis_tensor", lambda lib, x: x[..., index(lib, 1, 0, 1)],
           shape(min_dims=1, min_side=2), ((2, 3),)),
    OpCase("index_none_tensor", lambda lib, x: x[None, index(lib, 0, 1)], sizes((2, 3), (0, 3)),
           ((2, 3),)),
    OpCase("gather", lambda lib, x: x.gather(1, lib.tensor([[0, 1, 1], [2, 0, 0]])),
           sizes((2, 2), (3, 5)), ((2, 3),)),
    OpCase("gather_dim0", lambda lib, x: x.gather(0, lib.tensor([[1, 0], [0, 0]])),
           sizes((2, 4), (2, 3)), ((2, 2),)),
    OpCase("setitem_int", set_row, combined(lambda n, m: ((n, m), (m,)), (2, 4), (0, 3)),
           ((3, 4), (4,))),
    OpCase("setitem_tensor", set_rows_by_tensor,
           combined(lambda n, m: ((n, m), (2, m)), (3, 4), (0, 3)), ((3, 2), (2, 2))),
    OpCase("setitem_broadcast", set_columns_broadcast,
           combined(lambda n, m, k: ((n, m), (k,)), (0, 3), (3, 4), (1, 2)), ((2, 4), (2,))),
    OpCase("setitem_mask_scalar", set_mask_scalar, shape(), ((2, 3),)),
    OpCase("setitem_strided", set_strided,
           combined(lambda n, m: ((n, m), ((n + 1) // 2, m)), (1, 5), (0, 2)), ((5, 2), (3, 2))),
    OpCase("setitem_int_and_tensor", set_int_and_tensor,
           combined(lambda n, m: ((n, m), (2,)), (1, 3), (4, 5)), ((2, 4), (2,))),
]

def einsum_case(equation):
    return lambda lib, *xs: lib.einsum(equation, *xs)


# issue 10's ops: compositions (and Log1p, Expm1, Atan, Atan2), each through the same four checks
ISSUE10 = [
    OpCase("log1p", lambda lib, x: x.log1p(), shape(), ((2, 3),), "positive", gradgrad=True),
    OpCase("expm1", lambda lib, x: lib.expm1(x), shape(), ((2, 3),), gradgrad=True),
    OpCase("log2", lambda lib, x: x.log2(), shape(), ((2, 3),), "positive", gradgrad=True),
    OpCase("log10", lambda lib, x: lib.log10(x), shape(), ((2, 3),), "positive", gradgrad=True),
    OpCase("tan", lambda lib, x: (x * 0.7).tan(), shape(), ((2, 3),), gradgrad=True),
    OpCase("atan", lambda lib, x: (x * 3).atan(), shape(), ((2, 3),), gradgrad=True),
    OpCase("atan2", lambda lib, y, x: lib.atan2(y, x), broadcastable(2), ((2, 3), (3,)),
           gradgrad=True),
    OpCase("sinh", lambda lib, x: x.sinh(), shape(), ((2, 3),), gradgrad=True),
    OpCase("cosh", lambda lib, x: lib.cosh(x), shape(), ((2, 3),), gradgrad=True),
    OpCase("lerp", lambda lib, x, y: lib.lerp(x, y, 0.3), broadcastable(2), ((2, 3), (3,)),
           gradgrad=True),
    OpCase("lerp_tensor", lambda lib, x, y, w: x.lerp(y, w), broadcastable(3),
           ((2, 3), (3,), (2, 1)), gradgrad=True),
    OpCase("nan_to_num", lambda lib, x: x.log().nan_to_num(nan=0.5) * x, shape(), ((2, 3),)),
    OpCase("masked_fill", lambda lib, x: x.masked_fill(x > 0, 0.5) * x, shape(), ((2, 3),)),
    OpCase("masked_fill_tensor", lambda lib, x, v: x.masked_fill(x < 0, v.sum()),
           combined(lambda a, b: ((a, b), ()), (0, 3), (0, 3)), ((2, 3), ())),
    OpCase("tril", lambda lib, x: x.tril(), shape(min_dims=2), ((3, 4),)),
    OpCase("triu_1", lambda lib, x: lib.triu(x, 1), shape(min_dims=2), ((2, 3, 4),)),
    OpCase("tril_negative", lambda lib, x: x.tril(diagonal=-1), shape(min_dims=2), ((4, 3),)),
    OpCase("roll", lambda lib, x: x.roll(1, -1), shape(min_dims=1), ((2, 3),)),
    OpCase("roll_dims", lambda lib, x: lib.roll(x, (2, -1), (0, 1)), shape(min_dims=2),
           ((3, 4),)),
    OpCase("roll_flat", lambda lib, x: x.roll(3), shape(), ((2, 3),)),
    OpCase("mm", lambda lib, x, y: lib.mm(x, y),
           combined(lambda n, k, m: ((n, k), (k, m)), (0, 3), (0, 3), (0, 3)), ((2, 3), (3, 2)),
           gradgrad=True),
    OpCase("bmm", lambda lib, x, y: x.bmm(y), combined(square_matrices, (0, 3), (0, 3), (0, 3),
           (0, 3)), ((2, 2, 3), (2, 3, 2)), gradgrad=True),
    OpCase("addmm", lambda lib, i, x, y: lib.addmm(i, x, y, beta=0.5, alpha=2),
           combined(lambda n, k, m: ((m,), (n, k), (k, m)), (0, 3), (0, 3), (0, 3)),
           ((2,), (3, 4), (4, 2)), gradgrad=True),
    OpCase("baddbmm", lambda lib, i, x, y: i.baddbmm(x, y, alpha=-1),
           combined(lambda b, n, k, m: ((b, n, m), (b, n, k), (b, k, m)), (0, 3), (0, 3),
                    (0, 3), (0, 3)), ((2, 2, 2), (2, 2, 3), (2, 3, 2)), gradgrad=True),
    OpCase("outer", lambda lib, x, y: lib.outer(x, y),
           combined(lambda n, m: ((n,), (m,)), (0, 4), (0, 4)), ((3,), (2,)), gradgrad=True),
    OpCase("einsum_matmul", einsum_case("ij,jk->ik"),
           combined(lambda n, k, m: ((n, k), (k, m)), (0, 3), (0, 3), (0, 3)), ((2, 3), (3, 2)),
           gradgrad=True),
    OpCase("einsum_batched_transposed", einsum_case("bij,bkj->bik"),
           combined(lambda b, n, k, m: ((b, n, k), (b, m, k)), (0, 3), (0, 3), (0, 3), (0, 3)),
           ((2, 2, 3), (2, 4, 3)), gradgrad=True),
    OpCase("einsum_diagonal", einsum_case("ii->i"), combined(lambda n: ((n, n),), (0, 4)),
           ((3, 3),), gradgrad=True),
    OpCase("einsum_trace_implicit", einsum_case("ii"), combined(lambda n: ((n, n),), (0, 4)),
           ((3, 3),), gradgrad=True),
    OpCase("einsum_ellipsis", einsum_case("...ij->...ji"), shape(min_dims=2), ((2, 3, 4),)),
    OpCase("einsum_ellipsis_broadcast", einsum_case("...ij,...jk"),
           combined(lambda b, n, k, m: ((b, 1, n, k), (2, k, m)), (1, 3), (1, 3), (1, 3), (1, 3)),
           ((2, 1, 2, 3), (2, 3, 2)), gradgrad=True),
    OpCase("einsum_three", einsum_case("i,ij,jk->ik"),
           combined(lambda n, k, m: ((n,), (n, k), (k, m)), (0, 3), (0, 3), (0, 3)),
           ((2,), (2, 3), (3, 2)), gradgrad=True),
    OpCase("einsum_outer_sum", einsum_case("i,j->"), combined(lambda n, m: ((n,), (m,)), (0, 3),
           (0, 3)), ((2,), (3,)), gradgrad=True),
    OpCase("scatter_add",
           lambda lib, x, y: x.scatter_add(0, lib.tensor([[0, 1, 2, 0], [2, 0, 1, 1]]), y),
           combined(lambda a: ((3, 4 + a), (2, 4)), (0, 2)), ((3, 4), (2, 4))),
    OpCase("scatter", lambda lib, x, y: lib.scatter(x, 1, lib.tensor([[2, 0], [1, 3]]), y),
           combined(lambda a: ((2 + a, 4), (2, 2)), (0, 2)), ((2, 4), (2, 2))),
    OpCase("scatter_value", lambda lib, x: x.scatter(0, lib.tensor([[1, 0, 2]]), 1.5),
           sizes((3, 4), (3, 4)), ((3, 3),)),
    # scatter_reduce: every reduction, with and without self; index repeats positions (src as
    # large as index: torch's backward refuses a larger src)
    *[OpCase(f"scatter_reduce_{reduce}" + ("" if include_self else "_no_self"),
             lambda lib, x, y, reduce=reduce, include_self=include_self: x.scatter_reduce(
                 0, lib.tensor([[0, 1, 2, 0], [2, 0, 0, 1], [2, 1, 0, 0]]), y, reduce,
                 include_self=include_self),
             combined(lambda a, b: ((3 + a, 4 + b), (3, 4)), (0, 2), (0, 2)),
             ((3, 5), (3, 4)))
      for reduce in ("sum", "prod", "mean", "amax", "amin") for include_self in (True, False)],
    OpCase("scatter_reduce_dim1_smaller_index",
           lambda lib, x, y: lib.scatter_reduce(x, 1, lib.tensor([[1, 1], [0, 1]]), y, "amax"),
           combined(lambda a: ((3 + a, 3), (2, 2)), (0, 2)), ((4, 3), (2, 2))),
    OpCase("scatter_multiply",
           lambda lib, x, y: lib.scatter_reduce(x, 1, lib.tensor([[2, 0, 2]]), y, "prod")
           if lib is torch else x.scatter(1, lib.tensor([[2, 0, 2]]), y, reduce="multiply"),
           combined(lambda a: ((1 + a, 3), (1, 3)), (0, 2)), ((2, 3), (1, 3))),
    OpCase("index_select", lambda lib, x: x.index_select(1, lib.tensor([2, 0, 2])),
           sizes((0, 3), (3, 5)), ((2, 3),)),
    OpCase("index_select_dim0", lambda lib, x: lib.index_select(x, 0, lib.tensor([1])),
           sizes((2, 4), (0, 3)), ((2, 3),)),
    OpCase("index_add", lambda lib, x, y: x.index_add(0, lib.tensor([0, 2, 0]), y, alpha=2),
           combined(lambda m: ((3, m), (3, m)), (0, 3)), ((3, 2), (3, 2))),
    OpCase("index_fill", lambda lib, x: x.index_fill(1, lib.tensor([0, 2]), -1.0),
           sizes((0, 3), (3, 4)), ((2, 3),)),
    OpCase("cumprod", lambda lib, x: x.cumprod(dim=-1), shape(min_dims=1), ((2, 5),),
           gradgrad=True),
    OpCase("cumprod_dim0", lambda lib, x: lib.cumprod(x, 0), shape(min_dims=1), ((3, 2),)),
    OpCase("prod", lambda lib, x: x.prod(), shape(max_side=3), ((2, 3),), gradgrad=True),
    OpCase("prod_dim", lambda lib, x: lib.prod(x, 1), shape(min_dims=2), ((2, 5),),
           gradgrad=True),
    OpCase("prod_keepdim", lambda lib, x: x.prod(dim=-1, keepdim=True), shape(min_dims=1),
           ((3, 2),)),
    OpCase("norm", lambda lib, x: x.norm(), shape(), ((2, 3),), gradgrad=True),
    OpCase("norm_dim", lambda lib, x: lib.norm(x, dim=1), shape(min_dims=2), ((2, 3),)),
    OpCase("norm_p3", lambda lib, x: x.norm(p=3, dim=-1, keepdim=True), shape(min_dims=1),
           ((2, 3),)),
    OpCase("vector_norm_inf", lambda lib, x: lib.linalg.vector_norm(x, ord=math.inf, dim=-1),
           shape(min_dims=1, min_side=1), ((2, 3),)),
    OpCase("vector_norm_1", lambda lib, x: lib.linalg.vector_norm(x, 1), shape(), ((2, 3),)),
    OpCase("linalg_norm", lambda lib, x: lib.linalg.norm(x), shape(), ((2, 3),)),
    OpCase("linalg_norm_ord1", lambda lib, x: lib.linalg.norm(x, ord=1),
           shape(min_dims=2, max_dims=2, min_side=1), ((3, 2),)),
    OpCase("matrix_norm_inf", lambda lib, x: lib.linalg.matrix_norm(x, ord=-math.inf),
           shape(min_dims=2, min_side=1), ((2, 3, 2),)),
    # singular values by one-sided Jacobi: random matrices have distinct ones
    OpCase("svdvals", lambda lib, x: lib.linalg.svdvals(x), shape(min_dims=2, min_side=1),
           ((3, 2),)),
    OpCase("matrix_norm_2", lambda lib, x: lib.linalg.matrix_norm(x, ord=2),
           shape(min_dims=2, min_side=1), ((2, 3, 3),)),
    OpCase("matrix_norm_neg2_dims_keepdim",
           lambda lib, x: lib.linalg.matrix_norm(x, -2, dim=(0, -1), keepdim=True),
           shape(min_dims=3, min_side=1), ((3, 2, 4),)),
    OpCase("matrix_norm_nuc", lambda lib, x: lib.linalg.matrix_norm(x, "nuc"),
           shape(min_dims=2, min_side=1), ((2, 4, 3),)),
    OpCase("norm_nuc", lambda lib, x: x.norm(p="nuc"), shape(min_dims=2, max_dims=2, min_side=1),
           ((2, 3),)),
    OpCase("linalg_norm_2_dims", lambda lib, x: lib.linalg.norm(x, 2, dim=(1, 0)),
           shape(min_dims=2, max_dims=2, min_side=1), ((3, 3),)),
    OpCase("repeat_interleave", lambda lib, x: x.repeat_interleave(2, dim=0),
           shape(min_dims=1), ((2, 3),)),
    OpCase("repeat_interleave_flat", lambda lib, x: lib.repeat_interleave(x, 3), shape(),
           ((2, 2),)),
    OpCase("repeat_interleave_tensor",
           lambda lib, x: x.repeat_interleave(lib.tensor([1, 0, 2]), dim=0),
           sizes((3, 3), (0, 3)), ((3, 2),)),
    OpCase("tile", lambda lib, x: x.tile((2, 1)), shape(), ((2, 3),)),
    OpCase("meshgrid_ij", lambda lib, x, y: lib.meshgrid(x, y, indexing="ij"),
           combined(lambda n, m: ((n,), (m,)), (0, 3), (0, 3)), ((2,), (3,))),
    OpCase("meshgrid_xy", lambda lib, x, y, z: lib.meshgrid(x, y, z, indexing="xy"),
           combined(lambda n, m, k: ((n,), (m,), (k,)), (0, 3), (0, 3), (0, 2)),
           ((2,), (3,), (2,))),
    OpCase("diag_vector", lambda lib, x: lib.diag(x, -1), shape(min_dims=1, max_dims=1),
           ((3,),)),
    OpCase("diag_matrix", lambda lib, x: x.diag(1), shape(min_dims=2, max_dims=2), ((3, 4),)),
    OpCase("diagonal", lambda lib, x: x.diagonal(), shape(min_dims=2), ((3, 4),)),
    OpCase("diagonal_dims", lambda lib, x: lib.diagonal(x, -1, 0, 2) * 2, shape(min_dims=3),
           ((3, 2, 4),)),
    OpCase("trace", lambda lib, x: x.trace(), shape(min_dims=2, max_dims=2), ((3, 3),)),
    OpCase("index_range", lambda lib, x: x[range(2)], sizes((2, 4), (0, 3)), ((3, 2),)),
    OpCase("index_bool_list", lambda lib, x: x[[True, False, True]], sizes((3, 3), (0, 3)),
           ((3, 2),)),
]

# decompositions by Jacobi rotations, with PyTorch's gradient formulas: on conditioned matrices
# (distinct, nonzero singular values), singular vectors with their signs fixed
DECOMPOSITIONS = [
    OpCase("svd", lambda lib, x: svd_fixed(lib, x, False), shape(min_dims=2, min_side=1),
           ((4, 3),), gradgrad=True),
    OpCase("svd_full_tall", lambda lib, x: svd_fixed(lib, x, True), shape(min_dims=2, min_side=1),
           ((3, 2),)),
    OpCase("svd_full_wide_batched", lambda lib, x: svd_fixed(lib, x, True),
           shape(min_dims=3, min_side=1), ((2, 2, 4),)),
    OpCase("svd_reconstructs", lambda lib, x: (lambda U, S, Vh: (U * S.unsqueeze(-2)) @ Vh)(
        *lib.linalg.svd(conditioned(lib, x), full_matrices=False)) * x,
           shape(min_dims=2, min_side=1), ((2, 3),)),
    OpCase("svd_polar_factor", lambda lib, x: (lambda U, S, Vh: U @ Vh)(
        *lib.linalg.svd(conditioned(lib, x), full_matrices=False)),
           shape(min_dims=2, min_side=1), ((3, 3),), gradgrad=True),
    OpCase("torch_svd", torch_style_svd, shape(min_dims=2, min_side=1), ((2, 4),)),
    OpCase("eigh", lambda lib, x: eigh_fixed(lib, x), square((1, 4)), ((3, 3),), gradgrad=True),
    OpCase("eigh_upper_batched", lambda lib, x: eigh_fixed(lib, x, "U"), square((1, 2), (1, 4)),
           ((2, 3, 3),)),
    # the eigenvalues' gradient V diag(gL) V^T needs no distinct eigenvalues: any matrix
    OpCase("eigvalsh", lambda lib, x: lib.linalg.eigvalsh(x + x.mT), square((0, 2), (1, 4)),
           ((2, 2, 2),)),
    OpCase("pinv", lambda lib, x: lib.linalg.pinv(conditioned(lib, x)),
           shape(min_dims=2, min_side=1), ((4, 2),), gradgrad=True),
    OpCase("pinv_wide_rtol", lambda lib, x: lib.linalg.pinv(conditioned(lib, x), rtol=0.01),
           shape(min_dims=2, min_side=1), ((2, 3),)),
    OpCase("pinv_hermitian", lambda lib, x: lib.linalg.pinv(symmetric(lib, x), hermitian=True),
           square((1, 4)), ((3, 3),)),
    OpCase("pinverse", lambda lib, x: conditioned(lib, x).pinverse(), shape(min_dims=2,
           min_side=1), ((3, 2),)),
]

CASES = ELEMENTWISE + REDUCTIONS + SHAPE_OPS + MATMUL + INDEXING + ISSUE10 + DECOMPOSITIONS
GRADGRAD_CASES = [case for case in CASES if case.gradgrad]


def test_table_has_unique_names():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


# ---- 1. gradcheck --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=repr)
def test_gradcheck(case):
    arrays = sample_inputs(0, case.example, case.domain)
    inputs = [edugrad.tensor(a, requires_grad=True) for a in arrays]
    assert edugrad.autograd.gradcheck(lambda *xs: case.fn(edugrad, *xs), inputs)


# ---- 2. the PyTorch oracle on drawn shapes -------------------------------------------------------
@pytest.mark.filterwarnings("ignore:.*degrees of freedom")  # torch warns on var of (0, n)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=repr)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_matches_torch(case, dtype, data):
    check_drawn_case_against_torch(case, dtype, data)


# ---- 3. grad-of-grad -----------------------------------------------------------------------------
@pytest.mark.parametrize("case", GRADGRAD_CASES, ids=repr)
def test_gradgrad_matches_torch(case):
    check_gradgrad_against_torch(case, seed=1)


@pytest.mark.parametrize("case", [c for c in GRADGRAD_CASES if c.name in
                                  ("mul", "div", "sigmoid", "matmul_2d", "softmax", "var_dim")],
                         ids=repr)
def test_gradgradcheck(case):
    arrays = sample_inputs(2, case.example, case.domain)
    inputs = [edugrad.tensor(a, requires_grad=True) for a in arrays]
    assert edugrad.autograd.gradgradcheck(lambda *xs: case.fn(edugrad, *xs), inputs)


# ---- 4. the backends: the same values and gradients everywhere -----------------------------------
def _run(case, arrays, device):
    """Outputs and input gradients on `device`, brought to the host. The index tensors that
    fn makes with lib.tensor land on the default device, so it is set to `device` meanwhile."""
    previous = edugrad.default_device()
    edugrad.set_default_device(device)
    try:
        inputs = [edugrad.tensor(a, requires_grad=True) for a in arrays]
        outs = as_list(case.fn(edugrad, *inputs))
        rng = np.random.default_rng(3)
        edugrad.autograd.backward(outs, [edugrad.tensor(rng.standard_normal(tuple(o.shape)))
                                         for o in outs])
    finally:
        edugrad.set_default_device(previous)
    grads = [None if x.grad is None else x.grad.numpy() for x in inputs]
    return [o.detach().numpy() for o in outs] + grads


def _device(backend_name: str) -> str:
    """A device name for one of conftest's backend names: a device, or MODULE:Class (which is
    registered here under that name)."""
    try:
        return edugrad.get_backend(backend_name).device
    except ValueError:  # not a device name: a class
        edugrad.register_backend(backend_name, type(check.load_backend(backend_name)))
        return backend_name
    except ImportError as error:  # e.g. "cuda" without CuPy
        pytest.skip(f"backend {backend_name!r} is not available: {error}")


def _assert_results_equal(case, got, expected, rtol, atol):
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(got, expected)):
        if a is None or b is None:
            assert a is None and b is None, f"{case.name} result {i}: a gradient is missing"
            continue
        assert a.shape == b.shape and a.dtype == b.dtype, f"{case.name} result {i}"
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{case.name} result {i}")


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_fallbacks_agree_with_fast_paths(case):
    """Without matmul, take, index_add: the compositions of required primitives."""
    arrays = sample_inputs(4, case.example, case.domain)
    _assert_results_equal(case, _run(case, arrays, NOACCEL), _run(case, arrays, "cpu"),
                          rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_backends_agree(case, backend_name):
    """Every backend of conftest.py (cpu, python, and `pytest --backend NAME`) against cpu."""
    if backend_name == "cpu":
        pytest.skip("the reference itself")
    arrays = sample_inputs(4, case.example, case.domain)
    _assert_results_equal(case, _run(case, arrays, _device(backend_name)),
                          _run(case, arrays, "cpu"), **TOLERANCE["float64"])


@pytest.mark.parametrize("kernel,stride,size", [((2, 2), (1, 1), (4, 5)), ((3, 2), (2, 3), (7, 8)),
                                                 ((1, 1), (2, 2), (3, 3)),
                                                 # windows that don't overlap (pooling): fold
                                                 # copies instead of adding
                                                 ((2, 2), (2, 2), (4, 6)),   # tiles exactly
                                                 ((2, 2), (2, 2), (5, 7)),   # a strip left over
                                                 ((2, 3), (3, 3), (8, 9)),   # gaps between
                                                 ((3, 2), (2, 2), (7, 6))])  # overlap in H only
def test_unfold_fold_fast_path_matches_fallback(kernel, stride, size):
    """Unfold (windows for convolution) and its adjoint Fold, on both paths, against torch."""
    rng = np.random.default_rng(5)
    x_host = rng.standard_normal((2, 3) + size)
    out_size = [(s - k) // st + 1 for s, k, st in zip(size, kernel, stride)]
    weight_host = rng.standard_normal((2, 3, *out_size, *kernel))
    results = {}
    for device in ("cpu", NOACCEL):
        x = edugrad.tensor(x_host, device=device, requires_grad=True)
        cols = Unfold.apply(x, kernel=kernel, stride=stride)
        back = Fold.apply(cols * edugrad.tensor(weight_host, device=device), shape=x.shape,
                          stride=stride)
        (back * back).sum().backward()
        results[device] = (cols.detach().numpy(), back.detach().numpy(), x.grad.numpy())
    for fast, slow in zip(results["cpu"], results[NOACCEL]):
        assert fast.shape == slow.shape
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)
    windows = torch.nn.functional.unfold(torch.tensor(x_host), kernel, stride=stride)
    cols = results["cpu"][0]  # (N, C, OH, OW, KH, KW) -> torch's (N, C*KH*KW, OH*OW)
    n, c, oh, ow, kh, kw = cols.shape
    ours = cols.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, oh * ow)
    np.testing.assert_allclose(ours, windows.numpy(), rtol=1e-12)


# ---- forward-only ops: indices and comparisons ---------------------------------------------------
FORWARD_ONLY = [
    ("argmax", lambda lib, x: x.argmax(), shape(min_side=1)),
    ("argmax_dim", lambda lib, x: x.argmax(dim=1), shape(min_dims=2, min_side=1)),
    ("argmin_keepdim", lambda lib, x: x.argmin(dim=-1, keepdim=True),
     shape(min_dims=1, min_side=1)),
    ("max_dim_indices", lambda lib, x: x.max(dim=0).indices, shape(min_dims=1, min_side=1)),
    ("min_dim_indices", lambda lib, x: x.min(dim=-1, keepdim=True)[1],
     shape(min_dims=1, min_side=1)),
    ("lt", lambda lib, x: x < 0.5, shape()),
    ("le_tensor", lambda lib, x: x <= x.flip(-1) if x.ndim else x <= x, shape()),
    ("gt", lambda lib, x: 0.5 > x, shape()),
    ("ge", lambda lib, x: x >= -0.5, shape()),
    ("eq", lambda lib, x: x == x.abs(), shape()),
    ("ne", lambda lib, x: x != x.abs(), shape()),
    ("logical", lambda lib, x: ((x > 0) & (x < 1)) | ~(x > -1), shape()),
    ("sign", lambda lib, x: lib.sign(x), shape()),
    ("floor_divide", lambda lib, x: (x * 3) // lib.tensor(0.7), shape()),
    ("rfloordiv", lambda lib, x: 2 // x, shape()),
    ("rremainder", lambda lib, x: 2 % x, shape()),  # torch: no derivative for number % tensor
    ("int_floor_divide", lambda lib, x: (x * 5).long() // 3, shape()),
    ("int_remainder", lambda lib, x: (x * 5).long() % -3, shape()),
    ("int_fmod", lambda lib, x: lib.fmod((x * 5).long(), 3), shape()),
    ("int_pow", lambda lib, x: (x * 3).long() ** 3, shape()),
    ("int_pow_tensor", lambda lib, x: (x * 3).long() ** lib.tensor(2), shape()),
    ("matrix_rank", lambda lib, x: lib.linalg.matrix_rank(x), shape(min_dims=2)),
    ("matrix_rank_hermitian_atol",
     lambda lib, x: lib.linalg.matrix_rank(x @ x.mT, atol=0.5, hermitian=True), shape(min_dims=2)),
]


@pytest.mark.parametrize("name,fn,shapes", FORWARD_ONLY, ids=[f[0] for f in FORWARD_ONLY])
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_forward_only_matches_torch(name, fn, shapes, data):
    (drawn,) = data.draw(shapes, label="shape")
    values = sample_inputs(data.draw(st.integers(0, 2**31), label="seed"), [drawn])[0]
    assert_same(fn(edugrad, edugrad.tensor(values)), fn(torch, torch.tensor(values)), name)


# ---- one hand-computed case per family -----------------------------------------------------------
HAND = [
    # family, fn, inputs, expected output, expected gradients of output.sum()
    ("power", lambda x: x ** 2, [[3.0]], [9.0], [[6.0]]),
    ("odd power of a negative base", lambda x: x ** 3, [[-2.0, 0.0]], [-8.0, 0.0],
     [[12.0, 0.0]]),
    ("zero to the zero", lambda x: x ** 0, [[0.0, -2.0]], [1.0, 1.0], [[0.0, 0.0]]),
    ("tensor power", lambda x, y: x ** y, [[-2.0, 3.0], [3.0, 2.0]], [-8.0, 9.0],
     [[12.0, 6.0], [math.nan, 9 * math.log(3)]]),  # d/dy: x^y log x, nan for x < 0
    ("power of a number", lambda y: 2 ** y, [[3.0, -1.0]], [8.0, 0.5],
     [[8 * math.log(2), 0.5 * math.log(2)]]),
    ("floor", lambda x: x.floor(), [[-1.5, 1.5]], [-2.0, 1.0], [[0.0, 0.0]]),
    ("ceil", lambda x: x.ceil(), [[-1.5, 1.5]], [-1.0, 2.0], [[0.0, 0.0]]),
    ("trunc", lambda x: x.trunc(), [[-1.5, 1.5]], [-1.0, 1.0], [[0.0, 0.0]]),
    ("round half to even", lambda x: x.round(), [[0.5, 1.5, 2.5]], [0.0, 2.0, 2.0],
     [[0.0, 0.0, 0.0]]),
    ("remainder", lambda x, y: x % y, [[5.0, -5.0], [3.0, 3.0]], [2.0, 1.0],
     [[1.0, 1.0], [-1.0, 2.0]]),  # d/dy: -floor(x / y)
    ("fmod", lambda x, y: edugrad.fmod(x, y), [[5.0, -5.0], [3.0, 3.0]], [2.0, -2.0],
     [[1.0, 1.0], [-1.0, 1.0]]),  # d/dy: -trunc(x / y)
    ("floor_divide", lambda x, y: x // y, [[5.0, -5.0], [3.0, 3.0]], [1.0, -2.0],
     [[0.0, 0.0], [0.0, 0.0]]),
    ("product", lambda x, y: x * y, [[2.0], [5.0]], [10.0], [[5.0], [2.0]]),
    ("quotient", lambda x, y: x / y, [[1.0], [2.0]], [0.5], [[0.5], [-0.25]]),
    ("exp", lambda x: x.exp(), [[0.0]], [1.0], [[1.0]]),
    ("log", lambda x: x.log(), [[2.0]], [math.log(2)], [[0.5]]),
    ("sqrt", lambda x: x.sqrt(), [[4.0]], [2.0], [[0.25]]),
    ("sigmoid", lambda x: x.sigmoid(), [[0.0]], [0.5], [[0.25]]),
    ("tanh", lambda x: x.tanh(), [[0.0]], [0.0], [[1.0]]),
    ("sin", lambda x: x.sin(), [[0.0]], [0.0], [[1.0]]),
    ("cos", lambda x: x.cos(), [[0.0]], [1.0], [[0.0]]),
    ("relu", lambda x: x.relu(), [[-1.0, 2.0]], [0.0, 2.0], [[0.0, 1.0]]),
    ("abs", lambda x: x.abs(), [[-3.0, 2.0]], [3.0, 2.0], [[-1.0, 1.0]]),
    ("clamp", lambda x: x.clamp(0, 1), [[-1.0, 0.5, 2.0]], [0.0, 0.5, 1.0], [[0.0, 1.0, 0.0]]),
    ("maximum tie", lambda x, y: edugrad.maximum(x, y), [[1.0], [1.0]], [1.0], [[0.5], [0.5]]),
    ("sum", lambda x: x.sum(), [[1.0, 2.0, 3.0]], 6.0, [[1.0, 1.0, 1.0]]),
    ("mean", lambda x: x.mean(), [[1.0, 2.0, 3.0]], 2.0, [[1 / 3, 1 / 3, 1 / 3]]),
    ("amax tie", lambda x: x.amax(), [[1.0, 3.0, 3.0]], 3.0, [[0.0, 0.5, 0.5]]),
    # [[3, 0], [4, 5]]: A^T A has eigenvalues 45 and 5 (vectors (1, 1), (1, -1)), so the
    # singular values are 3 sqrt 5 and sqrt 5, and d sigma_i / dA = u_i v_i^T
    ("spectral norm", lambda x: edugrad.linalg.matrix_norm(x, 2), [[[3.0, 0.0], [4.0, 5.0]]],
     3 * math.sqrt(5), [[[1 / (2 * math.sqrt(5)), 1 / (2 * math.sqrt(5))],
                         [3 / (2 * math.sqrt(5)), 3 / (2 * math.sqrt(5))]]]),
    # diag(2, 4): the inverse diag(1/2, 1/4); d(A^-1) = -A^-1 dA A^-1, so the gradient of the
    # inverse's sum is -A^-T 1 1^T A^-T = -(1/2, 1/4)^T (1/2, 1/4)
    ("pseudo-inverse", lambda x: edugrad.linalg.pinv(x), [[[2.0, 0.0], [0.0, 4.0]]],
     [[0.5, 0.0], [0.0, 0.25]], [[[-0.25, -0.125], [-0.125, -0.0625]]]),
    # [[2, 1], [1, 2]]: eigenvalues 1, 3; the largest's gradient is v v^T, v = (1, 1)/sqrt 2
    ("largest eigenvalue", lambda x: edugrad.linalg.eigvalsh(x)[-1], [[[2.0, 1.0], [1.0, 2.0]]],
     3.0, [[[0.5, 0.5], [0.5, 0.5]]]),
    ("nuclear norm", lambda x: x.norm(p="nuc"), [[[3.0, 0.0], [4.0, 5.0]]], 4 * math.sqrt(5),
     [[[2 / math.sqrt(5), -1 / math.sqrt(5)], [1 / math.sqrt(5), 2 / math.sqrt(5)]]]),
    ("max(dim) picks one", lambda x: x.max(dim=1).values, [[[1.0, 3.0, 2.0]]], [3.0],
     [[[0.0, 1.0, 0.0]]]),
    ("var", lambda x: x.var(), [[1.0, 2.0, 3.0, 4.0]], 5 / 3, [[-1.0, -1 / 3, 1 / 3, 1.0]]),
    ("softmax", lambda x: x.softmax(0), [[0.0, math.log(3)]], [0.25, 0.75], [[0.0, 0.0]]),
    ("logsumexp", lambda x: x.logsumexp(0), [[0.0, math.log(3)]], math.log(4), [[0.25, 0.75]]),
    ("matmul", lambda a, b: a @ b, [[[1.0, 2.0], [3.0, 4.0]], [[5.0], [6.0]]], [[17.0], [39.0]],
     [[[5.0, 6.0], [5.0, 6.0]], [[4.0], [6.0]]]),
    ("cat", lambda a, b: edugrad.cat([a, b * 2]), [[1.0], [2.0, 3.0]], [1.0, 4.0, 6.0],
     [[1.0], [2.0, 2.0]]),
    ("repeated index", lambda x: x[edugrad.tensor([0, 0, 2])], [[1.0, 2.0, 3.0]], [1.0, 1.0, 3.0],
     [[2.0, 0.0, 1.0]]),
    ("setitem", lambda x, v: set_row(edugrad, x, v), [[1.0, 2.0, 3.0], 7.0], [1.0, 7.0, 3.0],
     [[1.0, 0.0, 1.0], 1.0]),
    ("transpose", lambda x: x.T * edugrad.tensor([[1.0, 2.0]]), [[[1.0], [1.0]]],
     [[1.0, 2.0]], [[[1.0], [2.0]]]),
]


@pytest.mark.parametrize("family,fn,inputs,expected,grads", HAND, ids=[h[0] for h in HAND])
def test_hand_computed(family, fn, inputs, expected, grads):
    check_hand_computed(fn, inputs, expected, grads)


# ---- numerical stability at magnitude 1e4 --------------------------------------------------------
STABLE = [
    ("log_softmax", lambda lib, x: x.log_softmax(-1)),
    ("softmax", lambda lib, x: x.softmax(-1)),
    ("logsumexp", lambda lib, x: x.logsumexp(-1)),
    ("sigmoid", lambda lib, x: x.sigmoid()),
    ("tanh", lambda lib, x: x.tanh()),
    ("cross_entropy_by_hand", lambda lib, x: -x.log_softmax(-1)[:, 0].mean()),
]


@pytest.mark.parametrize("device", ["cpu", NOACCEL])
@pytest.mark.parametrize("name,fn", STABLE, ids=[s[0] for s in STABLE])
def test_stable_for_large_logits(name, fn, device):
    """float32 logits of magnitude 1e4, against torch in float32, to float32 precision, with
    the backend's TANH and SIGMOID and with their compositions. (torch's float32 gradient of
    logsumexp is exp(x - result) from the rounded result, 1e4 + log 2, so two tied maxima get
    0.49989 each, not 0.5: edugrad computes the same.)"""
    values = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4], [5e3, 1e4, 1e4],
                       [1e4, 9999.999, 0.0]], dtype=np.float32)
    ours = edugrad.tensor(values, requires_grad=True, device=device)
    theirs = torch.tensor(values, requires_grad=True)
    out_ours, out_theirs = fn(edugrad, ours), fn(torch, theirs)
    assert np.all(np.isfinite(out_ours.detach().numpy())), f"{name}: {out_ours}"
    assert_same(out_ours, out_theirs, name, rtol=1e-6, atol=1e-6)
    out_ours.sum().backward()
    out_theirs.sum().backward()
    assert np.all(np.isfinite(ours.grad.numpy()))
    assert_same(ours.grad, theirs.grad, f"{name} gradient", rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("device", ["cpu", NOACCEL, "python"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_activations_saturate_quietly(name, dtype, device):
    """Past exp's overflow, at inf and at nan: torch's values and gradients, and no warning,
    whether the backend offers TANH and SIGMOID (cpu) or edugrad composes them."""
    values = np.array([-1e4, -800.0, -100.0, -20.0, -1e-8, -0.0, 0.0, 1e-8, 3.0, 20.0, 100.0,
                       800.0, 1e4, np.inf, -np.inf, np.nan], dtype=dtype)
    ours = edugrad.tensor(values, requires_grad=True, device=device)
    theirs = torch.tensor(values, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = getattr(ours, name)()
        out.sum().backward()
    expected = getattr(theirs, name)()
    expected.sum().backward()
    atol = 1e-7 if dtype == "float32" else 1e-15  # the compositions lose the digits of tanh(1e-8)
    assert out.dtype is getattr(edugrad, dtype) and out.shape == expected.shape
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-6,
                               atol=atol, equal_nan=True)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6, atol=atol,
                               equal_nan=True)


GELU_VALUES = [-1e4, -800.0, -40.0, -15.0, -5.7, -1.4, -1e-8, -0.0, 0.0, 1e-8, 0.5, 3.0, 11.4,
               40.0, 800.0, 1e4, np.nan]


@pytest.mark.parametrize("device", ["cpu", NOACCEL, "python"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gelu_saturates_quietly(dtype, device):
    """Where Phi is 0 or 1, where phi underflows, and nan: torch's values and gradients, and no
    warning, whether the backend offers GELU and GELU_GRAD (cpu) or edugrad composes them."""
    values = np.array(GELU_VALUES, dtype=dtype)
    ours = edugrad.tensor(values, requires_grad=True, device=device)
    theirs = torch.tensor(values, requires_grad=True)
    upstream = np.linspace(-2.0, 2.0, len(values)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = edugrad.nn.functional.gelu(ours)
        out.backward(edugrad.tensor(upstream, device=device))
    expected = torch.nn.functional.gelu(theirs)
    expected.backward(torch.tensor(upstream))
    assert out.dtype is getattr(edugrad, dtype) and out.shape == expected.shape
    atol = 1e-7 if dtype == "float32" else 1e-15
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-6,
                               atol=atol, equal_nan=True)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6, atol=atol,
                               equal_nan=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gelu_at_infinity_is_pytorchs_float64_gelu(dtype):
    """gelu(inf) = inf, gelu(-inf) = nan (-inf * 0), and nan gradients at both, quietly.
    (torch's float32 kernel gives nan for gelu(inf) too; its float64 one is the formula's.)"""
    x = edugrad.tensor([np.inf, -np.inf], dtype=getattr(edugrad, dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = edugrad.nn.functional.gelu(x)
        out.sum().backward()
    theirs = torch.tensor([np.inf, -np.inf], dtype=torch.float64, requires_grad=True)
    expected = torch.nn.functional.gelu(theirs)
    expected.sum().backward()
    np.testing.assert_array_equal(out.detach().numpy(), expected.detach().numpy())
    np.testing.assert_array_equal(x.grad.numpy(), theirs.grad.numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gelu_primitives_give_the_composition_bit_for_bit(dtype):
    """The NumPy backend's GELU and GELU_GRAD do TensorData's composed operations in the same
    order, so the values (forward, and the gradient through autograd) are the same bits, on an
    input of several cache blocks whose size is not a multiple of one."""
    rng = np.random.default_rng(7)
    values = (rng.standard_normal((3, 70001)) * 4).astype(dtype)
    values[0, :6] = [0.0, -0.0, 1e-8, -40.0, 1e4, -1e4]
    upstream = rng.standard_normal(values.shape).astype(dtype)
    results = {}
    for device in ("cpu", NOACCEL):
        x = edugrad.tensor(values, requires_grad=True, device=device)
        out = edugrad.nn.functional.gelu(x)
        out.backward(edugrad.tensor(upstream, device=device))
        results[device] = (out.detach().numpy(), x.grad.numpy())
    for fast, slow in zip(results["cpu"], results[NOACCEL]):
        assert fast.dtype == slow.dtype == np.dtype(dtype) and fast.shape == slow.shape
        assert fast.tobytes() == slow.tobytes()


def test_gelu_backward_takes_a_gradient_of_another_dtype_as_other_ops_do():
    """A float64 gradient for a float32 output promotes, as exp's backward does (GELU_GRAD
    wants equal dtypes, so this goes the Tensor-op way)."""
    x = edugrad.tensor([0.5, -1.0], requires_grad=True)
    edugrad.nn.functional.gelu(x).backward(edugrad.tensor([1.0, 2.0], dtype=edugrad.float64))
    y = edugrad.tensor([0.5, -1.0], requires_grad=True)
    y.exp().backward(edugrad.tensor([1.0, 2.0], dtype=edugrad.float64))
    assert x.grad.dtype is y.grad.dtype
    phi = np.exp(-0.5 * np.array([0.25, 1.0])) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + np.array([math.erf(0.5 / math.sqrt(2)), math.erf(-1 / math.sqrt(2))]))
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 2.0] * (cdf + [0.5, -1.0] * phi), rtol=1e-6)


def test_clamp_keeps_nan_as_pytorch_does():
    x = edugrad.tensor([float("nan"), 3.0, -3.0, 0.5], requires_grad=True)
    y = x.clamp(-1.0, 1.0)
    assert y.detach().numpy()[0] != y.detach().numpy()[0]  # NaN
    assert y.tolist()[1:] == [1.0, -1.0, 0.5]
    y.sum().backward()
    assert x.grad.tolist()[1:] == [0.0, 0.0, 1.0]
