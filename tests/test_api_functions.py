"""The PyTorch functions learners call by name: torch.add(x, y, alpha=2), torch.hstack, torch.erf...

Each group is checked the three ways of tests/test_ops.py, from tables of the same kind:
  CASES       OpCase rows (tests/helpers.py): gradcheck in float64 at the example shapes, and
              the PyTorch oracle (forward values and gradients) on shapes hypothesis draws, in
              float32 and float64, contiguous or not;
  HAND        one hand-computed case per family: values and the gradient of their sum;
  FORWARD     dtype rules and integer/bool results against torch (no gradients);
  ERRORS      bad input: the error names the op and the offending shapes or values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
torch = pytest.importorskip("torch", reason="PyTorch is the oracle here: pip install -e \".[dev]\"")
from hypothesis import given, settings, strategies as st

import edugrad
from helpers import (
    OpCase, as_list, assert_same, broadcastable, check_drawn_case_against_torch,
    check_gradgrad_against_torch, check_hand_computed, combined, sample_inputs, shape, sizes,
)


# ---- 1. arithmetic as functions ------------------------------------------------------------------
ARITHMETIC = [
    OpCase("add_fn_alpha", lambda lib, x, y: lib.add(x, y, alpha=2.5), broadcastable(2),
           ((2, 3), (3,))),
    OpCase("sub_fn_alpha", lambda lib, x, y: lib.sub(x, y, alpha=-0.5), broadcastable(2),
           ((2, 1), (1, 3))),
    OpCase("add_method_alpha", lambda lib, x, y: x.add(y, alpha=3), broadcastable(2),
           ((3,), (2, 3))),
    OpCase("sub_method_alpha", lambda lib, x, y: x.sub(y, alpha=2), broadcastable(2),
           ((2, 3), ())),
    OpCase("add_number_first", lambda lib, x: lib.add(1.5, x, alpha=2), shape(), ((2, 3),)),
    OpCase("sub_number_first", lambda lib, x: lib.sub(2, x), shape(), ((2, 3),)),
    OpCase("mul_fn", lambda lib, x, y: lib.mul(x, y), broadcastable(2), ((2, 3), (3,))),
    OpCase("multiply", lambda lib, x, y: lib.multiply(x, y) + x.multiply(y), broadcastable(2),
           ((2, 1), (3,))),
    OpCase("subtract", lambda lib, x, y: lib.subtract(x, y, alpha=2) + x.subtract(y),
           broadcastable(2), ((2, 3), (3,))),
    OpCase("div_fn", lambda lib, x, y: lib.div(x, y), broadcastable(2), ((2, 3), (3,))),
    OpCase("divide", lambda lib, x, y: lib.divide(x, y) + x.divide(y), broadcastable(2),
           ((2, 3), (2, 1))),
    OpCase("true_divide", lambda lib, x, y: lib.true_divide(x, y) - x.true_divide(y * 2),
           broadcastable(2), ((3,), (2, 3))),
    OpCase("div_number_first", lambda lib, x: lib.div(2, x), shape(), ((2, 3),)),
    # rounded quotients: gradient 0 in PyTorch; the "+ x" keeps a gradient to compare
    OpCase("div_trunc", lambda lib, x, y: lib.div(x * 3, y, rounding_mode="trunc") + x,
           broadcastable(2), ((2, 3), (3,))),
    OpCase("div_floor", lambda lib, x, y: x.div(y * 0.7, rounding_mode="floor") * x,
           broadcastable(2), ((2, 3), (2, 1))),
    OpCase("div_trunc_scalar", lambda lib, x: x.div(-0.3, rounding_mode="trunc") - x, shape(),
           ((2, 3),)),
]


def in_place_div(lib, x, y, mode):
    z = x * 1
    z.div_(y, rounding_mode=mode)
    return z


def in_place_add(lib, x, y):
    z = x * 1
    z.add_(y, alpha=-2).sub_(y, alpha=0.5)
    return z


ARITHMETIC += [
    OpCase("div_in_place", lambda lib, x, y: in_place_div(lib, x, y, None),
           combined(lambda n, m: ((n, m), (m,)), (0, 3), (0, 3)), ((2, 3), (3,))),
    OpCase("div_in_place_floor", lambda lib, x, y: in_place_div(lib, x, y, "floor") + x,
           sizes((0, 3), (1, 3)).map(lambda s: s * 2), ((2, 3), (2, 3))),
    OpCase("add_sub_in_place_alpha", in_place_add,
           sizes((0, 3), (1, 3)).map(lambda s: s * 2), ((2, 3), (2, 3))),
]


# ---- 2. Tensor methods as functions, and shape helpers -------------------------------------------
def vectors(low=0, high=4):
    return combined(lambda n: ((n,), (n,)), (low, high))


EXPORTS = [
    OpCase("clone_fn", lambda lib, x: lib.clone(x) * 2, shape(), ((2, 3),)),
    OpCase("rsqrt_fn", lambda lib, x: lib.rsqrt(x), shape(), ((2, 3),), "positive"),
    OpCase("reciprocal_fn", lambda lib, x: lib.reciprocal(x), shape(), ((2, 3),)),
    OpCase("swapaxes_fn", lambda lib, x: lib.swapaxes(x, 0, -1), shape(min_dims=1), ((2, 3, 4),)),
    OpCase("swapdims", lambda lib, x: lib.swapdims(x, 0, 1) * x.swapdims(1, 0).sum(),
           shape(min_dims=2), ((2, 3),)),
    OpCase("moveaxis_fn", lambda lib, x: lib.moveaxis(x, 0, -1), shape(min_dims=1), ((2, 3, 4),)),
    OpCase("unflatten_fn", lambda lib, x: lib.unflatten(x, -1, (2, x.shape[-1] // 2)),
           combined(lambda a, b: ((a, 2 * b),), (0, 3), (0, 3)), ((3, 4),)),
    OpCase("dot_fn", lambda lib, x, y: lib.dot(x, y) + x.dot(x), vectors(), ((3,), (3,))),
    OpCase("t_fn", lambda lib, x: lib.t(x), shape(max_dims=2), ((2, 3),)),
    OpCase("ravel", lambda lib, x: lib.ravel(x) * 2 + x.ravel(), shape(), ((2, 3),)),
    OpCase("broadcast_to", lambda lib, x: lib.broadcast_to(x, (2,) + tuple(x.shape)), shape(),
           ((2, 1),)),
    OpCase("broadcast_to_method", lambda lib, x: x.broadcast_to(-1, 3) * 1,
           sizes((0, 3), (1, 1)), ((2, 1),)),
    OpCase("broadcast_tensors", lambda lib, x, y: lib.broadcast_tensors(x, y * 2),
           broadcastable(2), ((2, 1), (3,))),
    OpCase("broadcast_tensors_three", lambda lib, x, y, z: lib.broadcast_tensors(x, y, z),
           broadcastable(3), ((2, 1), (3,), ())),
    OpCase("atleast_1d", lambda lib, x: lib.atleast_1d(x) * 1, shape(), ((),)),
    OpCase("atleast_2d", lambda lib, x: lib.atleast_2d(x) * 1, shape(), ((3,),)),
    OpCase("atleast_3d", lambda lib, x: lib.atleast_3d(x) * 1, shape(), ((2, 3),)),
    OpCase("atleast_3d_many", lambda lib, x, y: lib.atleast_3d(x, y), broadcastable(2),
           ((3,), ())),
    OpCase("atleast_2d_list", lambda lib, x, y: lib.atleast_2d([x, y * 3]), broadcastable(2),
           ((), (2, 3))),
    OpCase("positive_negative", lambda lib, x: lib.positive(x) * lib.negative(x) + x.negative(),
           shape(), ((2, 3),)),
]


# ---- 3. the error function family ---------------------------------------------------------------
ERF = [
    OpCase("erf", lambda lib, x: lib.erf(x * 2) + x.erf(), shape(), ((2, 3),), gradgrad=True),
    OpCase("erfc", lambda lib, x: lib.erfc(x * 3) * x.erfc(), shape(), ((2, 3),), gradgrad=True),
    OpCase("special_erf_erfc", lambda lib, x: lib.special.erf(x) - lib.special.erfc(x * 2),
           shape(), ((2, 3),)),
    OpCase("erfinv", lambda lib, x: lib.erfinv(x * 0.49), shape(), ((2, 3),), gradgrad=True),
    OpCase("erfinv_near_one", lambda lib, x: (x * 1.2).tanh().erfinv(), shape(), ((2, 3),)),
    OpCase("special_erfinv_of_erf", lambda lib, x: lib.special.erfinv(lib.special.erf(x)),
           shape(), ((2, 3),)),
    OpCase("special_ndtr_expit", lambda lib, x: lib.special.ndtr(x * 3) + lib.special.expit(x),
           shape(), ((2, 3),)),
    OpCase("erf_broadcast", lambda lib, x, y: lib.erf(x * y) * lib.erfc(y), broadcastable(2),
           ((2, 3), (3,))),
]


# ---- 4. stacking, splitting, turning, windows, picking ------------------------------------------
def windows_overlap(lib, x):
    return x.unfold(-1, 2, 1) * lib.arange(2, dtype=x.dtype)  # each element in up to 2 windows


def sorted_by_take_along_dim(lib, x):
    return lib.take_along_dim(x, x.detach().argsort(dim=-1), dim=-1)


def write_through_unfold(lib, x, v):
    y = x * 1
    y.unfold(0, 2, 3).mul_(v)  # windows rows 0-1, 3-4: a view, written back into y
    return y


STACKING = [
    OpCase("hstack", lambda lib, x, y: lib.hstack([x, y * 2, x]),
           combined(lambda a, b, c: ((a, b), (a, c)), (0, 3), (0, 3), (0, 3)), ((2, 1), (2, 3))),
    OpCase("hstack_vectors", lambda lib, x, y: lib.hstack((x, y)),
           combined(lambda a, b: ((a,), (b,)), (0, 3), (0, 3)), ((2,), (3,))),
    OpCase("vstack", lambda lib, x, y: lib.vstack([x, y]),
           combined(lambda a, b: ((b,), (a, b)), (0, 3), (0, 3)), ((3,), (2, 3))),
    OpCase("row_stack", lambda lib, x, y: lib.row_stack([y, x]),
           combined(lambda a, b: ((a, b), (a, b)), (0, 3), (0, 3)), ((2, 3), (2, 3))),
    OpCase("dstack", lambda lib, x, y: lib.dstack([x, y]),
           combined(lambda a, b, c: ((a, b), (a, b, c)), (1, 3), (0, 3), (0, 3)),
           ((2, 3), (2, 3, 2))),
    OpCase("dstack_vectors", lambda lib, x, y: lib.dstack([x, y]),
           combined(lambda a: ((a,), (a,)), (0, 3)), ((3,), (3,))),
    OpCase("column_stack", lambda lib, x, y: lib.column_stack([x, y, x]),
           combined(lambda a, b: ((a,), (a, b)), (0, 3), (0, 3)), ((3,), (3, 2))),
    OpCase("tensor_split_sections", lambda lib, x: lib.tensor_split(x, 3, dim=0),
           sizes((0, 7), (0, 3)), ((7, 2),)),
    OpCase("tensor_split_indices", lambda lib, x: x.tensor_split([1, 3], dim=-1),
           sizes((0, 3), (0, 5)), ((2, 5),)),
    OpCase("hsplit", lambda lib, x: lib.hsplit(x, 2),
           combined(lambda a, b: ((a, 2 * b),), (0, 3), (0, 3)), ((3, 4),)),
    OpCase("hsplit_vector", lambda lib, x: x.hsplit([1, 2]), sizes((0, 4)), ((4,),)),
    OpCase("vsplit", lambda lib, x: lib.vsplit(x, [1]), sizes((0, 4), (0, 3)), ((3, 2),)),
    OpCase("dsplit", lambda lib, x: lib.dsplit(x, 2),
           combined(lambda a, b, c: ((a, b, 2 * c),), (0, 2), (0, 2), (0, 2)), ((2, 1, 4),)),
    OpCase("rot90", lambda lib, x: lib.rot90(x), shape(min_dims=2), ((2, 3),)),
    OpCase("rot90_k2", lambda lib, x: x.rot90(2, (0, -1)), shape(min_dims=2), ((2, 3, 2),)),
    OpCase("rot90_k3_dims", lambda lib, x: lib.rot90(x, 3, [-1, 0]), shape(min_dims=2),
           ((2, 3),)),
    OpCase("rot90_negative", lambda lib, x: lib.rot90(x, -1, (1, 0)), shape(min_dims=2),
           ((2, 3),)),
    OpCase("rot90_k0", lambda lib, x: lib.rot90(x, 4), shape(min_dims=2), ((2, 3),)),
    OpCase("fliplr", lambda lib, x: lib.fliplr(x), shape(min_dims=2), ((2, 3),)),
    OpCase("flipud", lambda lib, x: x.flipud(), shape(min_dims=1), ((3, 2),)),
    OpCase("unfold", lambda lib, x: x.unfold(1, 2, 2) * 1, sizes((0, 3), (2, 6), (0, 2)),
           ((2, 5, 2),)),
    OpCase("unfold_overlap", windows_overlap, sizes((0, 3), (2, 5)), ((2, 4),)),
    OpCase("unfold_gaps", lambda lib, x: x.unfold(0, 1, 3).exp(), sizes((1, 7)), ((7,),)),
    OpCase("unfold_empty_windows", lambda lib, x: x.unfold(0, 0, 1) * 1, sizes((0, 3), (1, 2)),
           ((2, 2),)),
    OpCase("unfold_write_back", write_through_unfold,
           combined(lambda n, m: ((n, m), (m, 1)), (5, 7), (0, 3)), ((5, 3), (3, 1))),
    OpCase("take_along_dim", sorted_by_take_along_dim, shape(min_dims=1), ((3, 4),)),
    OpCase("take_along_dim_broadcast",
           lambda lib, x: lib.take_along_dim(x, lib.tensor([[2, 0, 1, 0]]), dim=0),
           sizes((3, 4), (4, 4)), ((3, 4),)),
    # contiguous(): torch's dim=None path calls view(-1), which refuses a transposed input
    OpCase("take_along_dim_flat",
           lambda lib, x: x.contiguous().take_along_dim(lib.tensor([0, 3, 3])),
           sizes((2, 3), (2, 3)), ((2, 3),)),
    OpCase("masked_select", lambda lib, x, y: lib.masked_select(x, y > 0), broadcastable(2),
           ((2, 3), (3,))),
    OpCase("masked_select_method", lambda lib, x: x.masked_select(x < 0.5) * 2, shape(),
           ((2, 3),)),
]


# ---- 5. reductions and statistics ---------------------------------------------------------------
NAN = math.nan


def with_nans(lib, x):
    """x with NaN where it is above 1.2: rows with none, some, and (size-1 rows) only NaN."""
    return lib.where(x > 1.2, NAN, x)


def with_nans_but_last(lib, x):
    """with_nans, but the last element of each row is kept: on an all-NaN row PyTorch's
    nanmedian index is whatever its nth_element leaves (edugrad gives the first NaN)."""
    if x.ndim == 0:
        return x
    kept = lib.arange(x.shape[-1]) == x.shape[-1] - 1
    return lib.where((x > 1.2) & ~kept, NAN, x)


def levels(lib, x, *qs):
    return lib.tensor(list(qs), dtype=x.dtype)


STATISTICS = [
    OpCase("median", lambda lib, x: lib.median(x), shape(min_side=1), ((2, 3),)),
    OpCase("median_ties", lambda lib, x: (x.round() * 0.5).median() * x.sum(), shape(min_side=1),
           ((3, 3),)),
    OpCase("median_dim", lambda lib, x: x.median(dim=1), shape(min_dims=2, min_side=1),
           ((3, 4),)),
    OpCase("median_dim_keepdim", lambda lib, x: lib.median(x, -1, keepdim=True),
           shape(min_dims=1, min_side=1), ((2, 5),)),
    OpCase("median_nan", lambda lib, x: with_nans(lib, x).median(dim=0),
           shape(min_dims=1, min_side=1), ((4, 3),)),
    OpCase("nanmedian", lambda lib, x: lib.nanmedian(with_nans_but_last(lib, x), dim=-1),
           shape(min_dims=1, min_side=1), ((3, 4),)),
    OpCase("nanmedian_all", lambda lib, x: with_nans(lib, x).nanmedian(), shape(min_side=1),
           ((3, 4),)),
    OpCase("quantile", lambda lib, x: lib.quantile(x, 0.3), shape(min_side=1), ((2, 3),)),
    OpCase("quantile_levels_dim", lambda lib, x: x.quantile(levels(lib, x, 0.0, 0.25, 0.9, 1.0),
                                                             dim=1, keepdim=True),
           shape(min_dims=2, min_side=1), ((3, 4),)),
    OpCase("quantile_all_keepdim", lambda lib, x: lib.quantile(x, levels(lib, x, 0.5, 0.7),
                                                               keepdim=True),
           shape(min_side=1), ((2, 3),)),
    OpCase("quantile_lower", lambda lib, x: x.quantile(0.4, dim=0, interpolation="lower"),
           shape(min_dims=1, min_side=1), ((5, 2),)),
    OpCase("quantile_higher", lambda lib, x: x.quantile(0.4, -1, interpolation="higher"),
           shape(min_dims=1, min_side=1), ((2, 5),)),
    OpCase("quantile_midpoint", lambda lib, x: x.quantile(levels(lib, x, 0.1, 0.5), 0,
                                                          interpolation="midpoint"),
           shape(min_dims=1, min_side=1), ((4, 2),)),
    OpCase("quantile_nearest", lambda lib, x: x.quantile(levels(lib, x, 0.1, 0.5, 0.75), 0,
                                                         interpolation="nearest"),
           shape(min_dims=1, min_side=1), ((5,),)),
    OpCase("quantile_nan", lambda lib, x: with_nans(lib, x).quantile(0.5, dim=-1),
           shape(min_dims=1, min_side=1), ((3, 4),)),
    OpCase("nanquantile",
           lambda lib, x: lib.nanquantile(with_nans(lib, x), levels(lib, x, 0.2, 1.0), dim=0),
           shape(min_dims=1, min_side=1), ((4, 3),)),
    OpCase("nansum", lambda lib, x: lib.nansum(with_nans(lib, x)), shape(), ((3, 4),)),
    OpCase("nansum_dim", lambda lib, x: with_nans(lib, x).nansum(dim=0, keepdim=True),
           shape(min_dims=1), ((3, 4),)),
    OpCase("nanmean", lambda lib, x: lib.nanmean(with_nans(lib, x), dim=-1),
           shape(min_dims=1), ((3, 4),)),
    OpCase("nanmean_all", lambda lib, x: with_nans(lib, x).nanmean(), shape(), ((3, 4),)),
    OpCase("var_mean", lambda lib, x: lib.var_mean(x), shape(min_dims=1, min_side=2), ((2, 3),)),
    OpCase("var_mean_dim", lambda lib, x: lib.var_mean(x, 0, keepdim=True, correction=0),
           shape(min_dims=1, min_side=1), ((3, 2),)),
    OpCase("std_mean", lambda lib, x: lib.std_mean(x, dim=(0, -1), unbiased=False),
           shape(min_dims=2, min_side=1), ((2, 3, 2),)),
    OpCase("std_mean_bool_unbiased", lambda lib, x: lib.std_mean(x, True),
           shape(min_dims=1, min_side=2), ((2, 3),)),
    OpCase("aminmax", lambda lib, x: lib.aminmax(x), shape(min_side=1), ((2, 3),)),
    OpCase("aminmax_dim", lambda lib, x: x.aminmax(dim=1, keepdim=True),
           shape(min_dims=2, min_side=1), ((2, 3),)),
    OpCase("diff", lambda lib, x: lib.diff(x), shape(min_dims=1), ((2, 4),)),
    OpCase("diff_twice_dim0", lambda lib, x: x.diff(2, dim=0), shape(min_dims=1), ((4, 2),)),
    OpCase("diff_prepend_append", lambda lib, x, y: lib.diff(x, dim=1, prepend=y, append=y * 2),
           combined(lambda a, b, c: ((a, b), (a, c)), (0, 3), (0, 3), (0, 2)),
           ((2, 3), (2, 1))),
    OpCase("logaddexp", lambda lib, x, y: lib.logaddexp(x * 3, y), broadcastable(2),
           ((2, 3), (3,)), gradgrad=True),
    OpCase("logaddexp_far", lambda lib, x, y: x.logaddexp(y * 300), broadcastable(2),
           ((2, 3), (3,))),
    OpCase("logaddexp2", lambda lib, x, y: lib.logaddexp2(x, y * 2), broadcastable(2),
           ((2, 1), (3,))),
    OpCase("hypot", lambda lib, x, y: lib.hypot(x, y), broadcastable(2), ((2, 3), (3,)),
           gradgrad=True),
    OpCase("hypot_scaled", lambda lib, x, y: x.hypot(y * 1e30) * 1e-30, broadcastable(2),
           ((2, 3), (2, 1))),
    OpCase("exp2", lambda lib, x: lib.exp2(x * 3), shape(), ((2, 3),), gradgrad=True),
    OpCase("xlogy", lambda lib, x, y: lib.xlogy(x, y), broadcastable(2), ((2, 3), (3,)),
           ("real", "positive"), gradgrad=True),
    OpCase("xlogy_zeros", lambda lib, x, y: lib.xlogy(x.relu(), y.abs()), broadcastable(2),
           ((2, 3), (3,))),
    OpCase("xlogy_number", lambda lib, x: lib.special.xlogy(2.0, x) + x.xlogy(3), shape(),
           ((2, 3),), "positive"),
    OpCase("logit", lambda lib, x: lib.logit(x.sigmoid()), shape(), ((2, 3),), gradgrad=True),
    OpCase("logit_eps", lambda lib, x: lib.special.logit(x * 0.4 + 0.5, eps=0.2), shape(),
           ((2, 3),)),
]


# ---- 6. products --------------------------------------------------------------------------------
def pairs(build, *ranges):
    return combined(build, *ranges)


PRODUCTS = [
    OpCase("tensordot", lambda lib, x, y: lib.tensordot(x, y),
           pairs(lambda a, b, c, d: ((a, b, c), (b, c, d)), (0, 3), (0, 3), (1, 3), (0, 3)),
           ((2, 3, 2), (3, 2, 2)), gradgrad=True),
    OpCase("tensordot_lists", lambda lib, x, y: lib.tensordot(x, y, dims=([0, 2], [2, 0])),
           pairs(lambda a, b, c, d: ((a, b, c), (c, d, a)), (1, 3), (0, 3), (1, 3), (0, 3)),
           ((2, 3, 2), (2, 3, 2))),
    OpCase("tensordot_outer", lambda lib, x, y: lib.tensordot(x, y, 0),
           broadcastable(2, max_dims=2), ((2, 3), (3,))),
    OpCase("tensordot_one", lambda lib, x, y: lib.tensordot(x, y, dims=1),
           pairs(lambda a, k, b: ((a, k), (k, b)), (0, 3), (0, 3), (0, 3)), ((2, 3), (3, 2))),
    # contiguous(): torch.kron calls view(), which refuses transposed inputs
    OpCase("kron", lambda lib, x, y: lib.kron(x.contiguous(), y.contiguous()),
           pairs(lambda a, b, c, d: ((a, b), (c, d)), (0, 3), (0, 3), (0, 3), (0, 3)),
           ((2, 3), (2, 2)), gradgrad=True),
    OpCase("kron_ranks", lambda lib, x, y: x.contiguous().kron(y.contiguous()),
           pairs(lambda a, b, c: ((a,), (b, c)), (0, 3), (0, 3), (0, 3)), ((3,), (2, 2))),
    OpCase("cross", lambda lib, x, y: lib.cross(x, y, dim=-1),
           pairs(lambda a: ((a, 3), (1, 3)), (0, 3)), ((2, 3), (1, 3)), gradgrad=True),
    OpCase("cross_dim0", lambda lib, x, y: x.cross(y, dim=0),
           pairs(lambda a, b: ((3, a, b), (3, 1, b)), (0, 3), (0, 3)), ((3, 2), (3, 2))),
    OpCase("linalg_cross", lambda lib, x, y: lib.linalg.cross(x, y),
           pairs(lambda a: ((a, 1, 3), (1, 2, 3)), (0, 3)), ((2, 1, 3), (1, 2, 3))),
    OpCase("inner", lambda lib, x, y: lib.inner(x, y),
           pairs(lambda a, b, k: ((a, k), (b, 2, k)), (0, 3), (0, 3), (0, 3)), ((2, 3), (2, 2, 3))),
    OpCase("inner_scalar", lambda lib, x, y: x.sum().inner(y), broadcastable(2, max_dims=2).map(
        lambda s: ((), s[1])), ((), (2, 3))),
    OpCase("mv", lambda lib, x, y: lib.mv(x, y), pairs(lambda n, m: ((n, m), (m,)), (0, 3), (0, 3)),
           ((2, 3), (3,)), gradgrad=True),
    OpCase("vdot", lambda lib, x, y: lib.vdot(x, y) * x.vdot(x), vectors(), ((3,), (3,))),
    OpCase("cdist", lambda lib, x, y: lib.cdist(x, y),
           pairs(lambda p, r, m: ((p, m), (r, m)), (0, 4), (0, 4), (0, 3)), ((3, 2), (2, 2))),
    OpCase("cdist_self", lambda lib, x: lib.cdist(x, x * 1), sizes((1, 4), (1, 3)), ((3, 2),)),
    OpCase("cdist_batched", lambda lib, x, y: lib.cdist(x, y),
           pairs(lambda b, p, r, m: ((b, p, m), (r, m)), (1, 2), (1, 3), (1, 3), (1, 3)),
           ((2, 3, 2), (2, 2))),
    OpCase("cdist_p1", lambda lib, x, y: lib.cdist(x, y, p=1),
           pairs(lambda p, r, m: ((p, m), (r, m)), (1, 3), (1, 3), (1, 3)), ((3, 2), (2, 2))),
    OpCase("cdist_p3", lambda lib, x, y: lib.cdist(x, y, p=3.0),
           pairs(lambda p, r, m: ((p, m), (r, m)), (1, 3), (1, 3), (1, 3)), ((3, 2), (2, 2))),
    OpCase("cdist_inf", lambda lib, x, y: lib.cdist(x, y, p=math.inf),
           pairs(lambda p, r, m: ((p, m), (r, m)), (1, 3), (1, 3), (1, 3)), ((3, 2), (2, 2))),
]


# ---- 7. indices ---------------------------------------------------------------------------------
INDICES = [
    OpCase("cartesian_prod", lambda lib, x, y: lib.cartesian_prod(x, y * 2),
           pairs(lambda a, b: ((a,), (b,)), (0, 3), (0, 3)), ((2,), (3,))),
    OpCase("cartesian_prod_three", lambda lib, x, y, z: lib.cartesian_prod(x, y, z),
           pairs(lambda a, b, c: ((a,), (b,), (c,)), (1, 3), (0, 3), (1, 2)), ((2,), (3,), (2,))),
    OpCase("cartesian_prod_one", lambda lib, x: lib.cartesian_prod(x) * 1, sizes((0, 4)), ((3,),)),
]

CASES = ARITHMETIC + EXPORTS + ERF + STACKING + STATISTICS + PRODUCTS + INDICES


def test_table_has_unique_names():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


# rows whose outputs are NaN on purpose: finite differences of NaN are NaN, so only the torch
# oracle checks their gradients (0 for the NaN rows, as PyTorch's)
NAN_OUTPUTS = {"median_nan", "quantile_nan"}


@pytest.mark.parametrize("case", [c for c in CASES if c.name not in NAN_OUTPUTS], ids=repr)
def test_gradcheck(case):
    arrays = sample_inputs(0, case.example, case.domain)
    inputs = [edugrad.tensor(a, requires_grad=True) for a in arrays]
    assert edugrad.autograd.gradcheck(lambda *xs: case.fn(edugrad, *xs), inputs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=repr)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_matches_torch(case, dtype, data):
    check_drawn_case_against_torch(case, dtype, data)


# ---- hand-computed cases -------------------------------------------------------------------------
HAND = [
    # family, fn, inputs, expected output, expected gradients of output.sum()
    ("add alpha", lambda x, y: edugrad.add(x, y, alpha=2), [[1.0, 2.0], [3.0, 4.0]], [7.0, 10.0],
     [[1.0, 1.0], [2.0, 2.0]]),
    ("sub alpha", lambda x, y: x.sub(y, alpha=0.5), [[1.0], [4.0]], [-1.0], [[1.0], [-0.5]]),
    ("div trunc", lambda x, y: edugrad.div(x, y, rounding_mode="trunc"),
     [[7.0, -7.0], [2.0, 2.0]], [3.0, -3.0], [[0.0, 0.0], [0.0, 0.0]]),
    ("div floor", lambda x, y: edugrad.div(x, y, rounding_mode="floor"),
     [[7.0, -7.0], [2.0, 2.0]], [3.0, -4.0], [[0.0, 0.0], [0.0, 0.0]]),
    ("true divide", lambda x, y: edugrad.true_divide(x, y), [[1.0], [4.0]], [0.25],
     [[0.25], [-1 / 16]]),
]

HAND += [
    ("rsqrt", lambda x: edugrad.rsqrt(x), [[4.0]], [0.5], [[-1 / 16]]),  # -x^-1.5 / 2
    ("dot", lambda x, y: edugrad.dot(x, y), [[1.0, 2.0], [3.0, 4.0]], 11.0,
     [[3.0, 4.0], [1.0, 2.0]]),
    ("broadcast_tensors sums back", lambda x, y: math.prod(edugrad.broadcast_tensors(x, y)),
     [[[1.0], [2.0]], [5.0, 6.0, 7.0]], [[5.0, 6.0, 7.0], [10.0, 12.0, 14.0]],
     [[[18.0], [18.0]], [3.0, 3.0, 3.0]]),
    ("atleast_3d of a vector", lambda x: edugrad.atleast_3d(x) * 2, [[1.0, 2.0]],
     [[[2.0], [4.0]]], [[2.0, 2.0]]),
    ("negative", lambda x: edugrad.negative(x), [[1.5]], [-1.5], [[-1.0]]),
]


SQRT_PI = math.sqrt(math.pi)
HAND += [
    ("erf", lambda x: edugrad.erf(x), [[0.0, 1.0]], [0.0, math.erf(1.0)],
     [[2 / SQRT_PI, 2 / SQRT_PI / math.e]]),
    ("erfc", lambda x: x.erfc(), [[0.0, 5.0]], [1.0, math.erfc(5.0)],
     [[-2 / SQRT_PI, -2 / SQRT_PI * math.exp(-25)]]),
    ("erfinv", lambda x: edugrad.special.erfinv(x), [[0.0, math.erf(0.5)]], [0.0, 0.5],
     [[SQRT_PI / 2, SQRT_PI / 2 * math.exp(0.25)]]),
]


HAND += [
    ("rot90", lambda x: edugrad.rot90(x) * edugrad.tensor([[1.0, 2.0], [3.0, 4.0]]),
     [[[1.0, 2.0], [3.0, 4.0]]], [[2.0, 8.0], [3.0, 12.0]], [[[3.0, 1.0], [4.0, 2.0]]]),
    ("unfold overlapping windows", lambda x: x.unfold(0, 2, 1), [[1.0, 2.0, 3.0, 4.0]],
     [[1.0, 2.0], [2.0, 3.0], [3.0, 4.0]], [[1.0, 2.0, 2.0, 1.0]]),
    ("column_stack", lambda x, y: edugrad.column_stack([x, y]), [[1.0, 2.0], [3.0, 4.0]],
     [[1.0, 3.0], [2.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]]),
    ("masked_select", lambda x: edugrad.masked_select(x, x > 1.5), [[1.0, 2.0, 3.0]],
     [2.0, 3.0], [[0.0, 1.0, 1.0]]),
    ("take_along_dim", lambda x: edugrad.take_along_dim(x, edugrad.tensor([[1, 1]]), 1),
     [[[1.0, 2.0]]], [[2.0, 2.0]], [[[0.0, 2.0]]]),
]


HAND += [
    ("median shares ties", lambda x: edugrad.median(x), [[3.0, 2.0, 1.0, 2.0]], 2.0,
     [[0.0, 0.5, 0.0, 0.5]]),
    ("median(dim) picks one", lambda x: x.median(0).values, [[3.0, 2.0, 1.0, 2.0]], 2.0,
     [[0.0, 1.0, 0.0, 0.0]]),
    ("quantile", lambda x: edugrad.quantile(x, 0.5), [[4.0, 1.0, 3.0, 2.0]], 2.5,
     [[0.0, 0.0, 0.5, 0.5]]),
    ("nanmean", lambda x: edugrad.nanmean(x), [[1.0, math.nan, 3.0]], 2.0, [[0.5, 0.0, 0.5]]),
    ("logaddexp tie", lambda x, y: edugrad.logaddexp(x, y), [[1.0], [1.0]], [1 + math.log(2)],
     [[0.5], [0.5]]),
    ("hypot", lambda x, y: edugrad.hypot(x, y), [[3.0], [4.0]], [5.0], [[0.6], [0.8]]),
    # torch's derivatives: d/dx = log y, but 0 where x = 0 and y <= 0; d/dy = x / y (0/0 at
    # the origin is NaN there too)
    ("xlogy at 0", lambda x, y: edugrad.xlogy(x, y), [[0.0, 0.0, 2.0], [0.0, 3.0, 4.0]],
     [0.0, 0.0, 2 * math.log(4)], [[0.0, math.log(3), math.log(4)], [math.nan, 0.0, 0.5]]),
    ("logit", lambda x: edugrad.logit(x), [[0.5, 0.8]], [0.0, math.log(4)], [[4.0, 6.25]]),
    ("diff", lambda x: edugrad.diff(x), [[1.0, 4.0, 9.0]], [3.0, 5.0], [[-1.0, 0.0, 1.0]]),
]


HAND += [
    # sum(x cross y) = 1 . (x cross y) = x . (y cross 1) = y . (1 cross x), 1 = (1, 1, 1)
    ("cross", lambda x, y: edugrad.cross(x, y, dim=0), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
     [0.0, 0.0, 1.0], [[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]]),
    ("kron", lambda x, y: edugrad.kron(x, y), [[1.0, 2.0], [3.0, 4.0]], [3.0, 4.0, 6.0, 8.0],
     [[7.0, 7.0], [3.0, 3.0]]),
    ("cdist", lambda x, y: edugrad.cdist(x, y), [[[0.0, 0.0]], [[3.0, 4.0]]], [[5.0]],
     [[[-0.6, -0.8]], [[0.6, 0.8]]]),
    ("cdist at distance 0", lambda x: edugrad.cdist(x, x), [[[1.0, 2.0]]], [[0.0]],
     [[[0.0, 0.0]]]),
    ("tensordot", lambda x, y: edugrad.tensordot(x, y, 1), [[1.0, 2.0], [[3.0], [4.0]]], [11.0],
     [[3.0, 4.0], [[1.0], [2.0]]]),
]


HAND += [
    ("cartesian_prod", lambda x, y: edugrad.cartesian_prod(x, y), [[1.0, 2.0], [3.0, 4.0, 5.0]],
     [[1.0, 3.0], [1.0, 4.0], [1.0, 5.0], [2.0, 3.0], [2.0, 4.0], [2.0, 5.0]],
     [[3.0, 3.0], [2.0, 2.0, 2.0]]),
]



@pytest.mark.parametrize("family,fn,inputs,expected,grads", HAND, ids=[h[0] for h in HAND])
def test_hand_computed(family, fn, inputs, expected, grads):
    check_hand_computed(fn, inputs, expected, grads)


# ---- dtypes and integer results against torch ---------------------------------------------------
def ints(lib):
    return lib.tensor([7, -7, 5, -5, 0, 6])


def int32s(lib):
    return lib.tensor([3, -3, 4, -8, 1, 2], dtype=lib.int32)


def floats(lib):
    return lib.tensor([7.5, -7.5, 0.25, -2.0, 0.0, 6.0])


def bools(lib):
    return lib.tensor([True, False, True, True, False, False])


FORWARD = [
    ("div_int_true", lambda lib: lib.div(ints(lib), 2)),
    ("div_int_tensor_true", lambda lib: lib.div(ints(lib), int32s(lib))),
    ("div_int_trunc", lambda lib: lib.div(ints(lib), -2, rounding_mode="trunc")),
    ("div_int_floor", lambda lib: lib.div(ints(lib), -2, rounding_mode="floor")),
    ("div_int32_trunc", lambda lib: int32s(lib).div(3, rounding_mode="trunc")),
    ("div_int_tensors_trunc", lambda lib: ints(lib).div(int32s(lib), rounding_mode="trunc")),
    ("div_int_tensors_floor", lambda lib: ints(lib).div(int32s(lib), rounding_mode="floor")),
    ("div_int_by_float_trunc", lambda lib: lib.div(ints(lib), 2.5, rounding_mode="trunc")),
    ("div_int_by_float_floor", lambda lib: lib.div(ints(lib), -2.5, rounding_mode="floor")),
    ("div_float_trunc_by_zero", lambda lib: lib.div(floats(lib), 0.0, rounding_mode="trunc")),
    ("div_float_floor_by_zero", lambda lib: lib.div(floats(lib), 0.0, rounding_mode="floor")),
    ("div_number_first_trunc", lambda lib: lib.div(7, int32s(lib), rounding_mode="trunc")),
    ("div_in_place_int_floor", lambda lib: ints(lib).div_(3, rounding_mode="floor")),
    ("div_in_place_int_trunc", lambda lib: ints(lib).div_(-3, rounding_mode="trunc")),
    ("true_divide_ints", lambda lib: lib.true_divide(ints(lib), int32s(lib))),
    ("add_int_alpha", lambda lib: lib.add(ints(lib), int32s(lib), alpha=3)),
    ("add_int32_number", lambda lib: lib.add(int32s(lib), 2, alpha=2)),
    ("add_number_first_int32", lambda lib: lib.add(2, int32s(lib))),
    ("add_number_first_float_to_int", lambda lib: lib.add(2.5, int32s(lib))),
    ("sub_int_alpha", lambda lib: int32s(lib).sub(ints(lib), alpha=-2)),
    ("add_bools_alpha", lambda lib: lib.add(bools(lib), bools(lib), alpha=2)),
    ("add_bools_bool_alpha", lambda lib: bools(lib).add(bools(lib).logical_not(), alpha=True)),
    ("add_float_int_alpha_float", lambda lib: lib.add(floats(lib), ints(lib), alpha=0.5)),
    ("mul_number_first", lambda lib: lib.mul(3, int32s(lib))),
    ("multiply_bool_int", lambda lib: lib.multiply(bools(lib), int32s(lib))),
    ("add_in_place_int_alpha", lambda lib: ints(lib).add_(int32s(lib), alpha=2)),
]

FORWARD += [
    ("numel", lambda lib: lib.tensor(lib.numel(lib.ones(2, 3, 0)) + lib.numel(ints(lib)))),
    ("clone_int", lambda lib: lib.clone(int32s(lib))),
    ("rsqrt_int", lambda lib: lib.rsqrt(lib.tensor([1, 4, 0]))),
    ("reciprocal_int", lambda lib: lib.reciprocal(int32s(lib))),
    ("negative_int32", lambda lib: lib.negative(int32s(lib))),
    ("positive_int", lambda lib: lib.positive(ints(lib))),
    ("dot_int", lambda lib: lib.dot(ints(lib), ints(lib))),
    ("broadcast_tensors_dtypes", lambda lib: lib.broadcast_tensors(bools(lib)[:1], int32s(lib))[0]),
    ("atleast_1d_bool", lambda lib: lib.atleast_1d(lib.tensor(True))),
    ("ravel_view_of_transpose", lambda lib: lib.ravel(ints(lib).reshape(2, 3).t())),
    ("broadcast_shapes", lambda lib: lib.tensor(lib.broadcast_shapes((2, 1), (3,), 1))),
]

EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1e-30, 8.0, -8.0, 30.0, -30.0, math.inf, -math.inf,
         math.nan]
FORWARD += [
    ("erf_int", lambda lib: lib.erf(ints(lib))),
    ("erfc_int32", lambda lib: lib.erfc(int32s(lib))),
    ("erfinv_bool", lambda lib: lib.erfinv(bools(lib))),
    ("erf_float64_edges", lambda lib: lib.erf(lib.tensor(EDGES, dtype=lib.float64))),
    ("erfc_edges", lambda lib: lib.erfc(lib.tensor(EDGES))),
    ("erfinv_edges", lambda lib: lib.erfinv(lib.tensor([0.0, -0.0, 1.0, -1.0, 1.5, -2.0,
                                                        math.inf, math.nan, 1e-30]))),
    ("erfc_float16", lambda lib: lib.erfc(lib.tensor([0.5, 2.0, -3.0], dtype=lib.float16))),
    ("erfinv_float16", lambda lib: lib.erfinv(lib.tensor([0.5, 0.99, -0.3], dtype=lib.float16))),
]

FORWARD += [
    ("count_nonzero", lambda lib: lib.count_nonzero(ints(lib))),
    ("count_nonzero_dim", lambda lib: ints(lib).reshape(2, 3).count_nonzero(dim=0)),
    ("count_nonzero_dims", lambda lib: lib.count_nonzero(floats(lib).reshape(3, 2, 1), (0, 2))),
    ("count_nonzero_bool", lambda lib: lib.count_nonzero(bools(lib).reshape(3, 2), dim=-1)),
    ("hstack_promotes", lambda lib: lib.hstack([ints(lib), floats(lib), bools(lib)])),
    ("vstack_int32_bool", lambda lib: lib.vstack([int32s(lib), bools(lib)])),
    ("column_stack_scalars", lambda lib: lib.column_stack([lib.tensor(1), lib.tensor(2.5)])),
    ("dstack_scalars", lambda lib: lib.dstack([lib.tensor(1), lib.tensor(2)])),
    ("masked_select_int", lambda lib: lib.masked_select(ints(lib), bools(lib))),
    ("take_along_dim_int", lambda lib: lib.take_along_dim(int32s(lib), lib.tensor([5, 0]), 0)),
    ("unfold_int", lambda lib: ints(lib).unfold(0, 3, 2)),
    ("unfold_0d", lambda lib: lib.tensor(5).unfold(0, 1, 1)),
    ("tensor_split_tensor_indices",
     lambda lib: lib.tensor_split(ints(lib), lib.tensor([1, 4]))[1]),
    ("tensor_split_more_sections_than_elements",
     lambda lib: lib.stack([t.sum() for t in lib.tensor_split(ints(lib)[:2], 4)])),
    ("rot90_bool", lambda lib: lib.rot90(bools(lib).reshape(2, 3), 1, (1, 0))),
]

FORWARD += [
    ("median_int", lambda lib: lib.median(ints(lib))),
    ("median_int_dim", lambda lib: int32s(lib).reshape(2, 3).median(1)[0]),
    ("median_int_dim_indices", lambda lib: int32s(lib).reshape(3, 2).median(0).indices),
    ("median_0d", lambda lib: lib.tensor(3.0).median(0)[0]),
    ("median_empty", lambda lib: lib.median(lib.ones(0))),
    ("nanmedian_all_nan", lambda lib: lib.nanmedian(lib.tensor([[NAN, NAN], [1.0, NAN]]), 1)[0]),
    ("nanmedian_all_nan_indices",
     lambda lib: lib.nanmedian(lib.tensor([[NAN, NAN], [1.0, NAN]]), 1)[1]),
    ("quantile_float64_levels", lambda lib: lib.quantile(
        lib.arange(7, dtype=lib.float64) ** 2, lib.tensor([0.0, 0.1, 0.5, 0.99, 1.0],
                                                          dtype=lib.float64))),
    ("quantile_nearest_halves", lambda lib: lib.quantile(lib.arange(5.0), lib.tensor(
        [0.125, 0.375, 0.625, 0.875]), interpolation="nearest")),
    ("nansum_int", lambda lib: lib.nansum(int32s(lib))),
    ("nansum_bool", lambda lib: lib.nansum(bools(lib))),
    ("aminmax_int", lambda lib: lib.aminmax(ints(lib)).max),
    ("aminmax_bool_dim", lambda lib: bools(lib).reshape(2, 3).aminmax(dim=0).min),
    ("diff_bool", lambda lib: lib.diff(bools(lib))),
    ("diff_int32", lambda lib: lib.diff(int32s(lib), n=3)),
    ("diff_more_than_length", lambda lib: lib.diff(ints(lib), n=8)),
    ("exp2_int", lambda lib: lib.exp2(ints(lib))),
    ("xlogy_ints", lambda lib: lib.xlogy(ints(lib), int32s(lib).abs())),
    ("xlogy_nan", lambda lib: lib.xlogy(lib.zeros(3), lib.tensor([NAN, 0.0, math.inf]))),
    ("logit_int", lambda lib: lib.logit(bools(lib))),
    ("logit_outside", lambda lib: lib.logit(lib.tensor([-0.5, 0.0, 1.0, 2.0]))),
    ("logaddexp_infinities", lambda lib: lib.logaddexp(
        lib.tensor([-math.inf, math.inf, -math.inf, 5.0, NAN]),
        lib.tensor([-math.inf, math.inf, 2.0, math.inf, 1.0]))),
    ("logaddexp_float64", lambda lib: lib.logaddexp(lib.tensor([1e300, -1e300], dtype=lib.float64),
                                                    lib.tensor(1e300, dtype=lib.float64))),
    ("hypot_edges", lambda lib: lib.hypot(lib.tensor([0.0, math.inf, NAN, 3e30, -0.0]),
                                          lib.tensor([0.0, NAN, 1.0, 4e30, 0.0]))),
    ("hypot_float16", lambda lib: lib.hypot(lib.tensor([3.0, 300.0], dtype=lib.float16),
                                            lib.tensor([4.0, 400.0], dtype=lib.float16))),
]

FORWARD += [
    ("tensordot_int", lambda lib: lib.tensordot(ints(lib).reshape(2, 3), ints(lib).reshape(3, 2),
                                                1)),
    ("tensordot_int32", lambda lib: lib.tensordot(int32s(lib), int32s(lib), 1)),
    ("tensordot_empty", lambda lib: lib.tensordot(lib.ones(2, 0), lib.ones(0, 3), 1)),
    ("kron_int_bool", lambda lib: lib.kron(ints(lib)[:2], bools(lib)[:3])),
    ("cross_int", lambda lib: lib.cross(ints(lib).reshape(2, 3), ints(lib).reshape(2, 3) * 2,
                                        dim=1)),
    ("inner_int", lambda lib: lib.inner(ints(lib).reshape(2, 3), ints(lib).reshape(2, 3))),
    ("mv_int", lambda lib: lib.mv(ints(lib).reshape(2, 3), ints(lib)[:3])),
    ("vdot_float64", lambda lib: lib.vdot(floats(lib).double(), floats(lib).double())),
    ("cdist_p0", lambda lib: lib.cdist(floats(lib).reshape(3, 2), floats(lib).reshape(2, 3).t(),
                                       p=0)),
    ("cdist_float64", lambda lib: lib.cdist(floats(lib).double().reshape(2, 3),
                                            floats(lib).double().reshape(2, 3) + 1e-9)),
]

def counts(lib):
    return lib.tensor([1, 3, 1, 0, 6, 3])


def steps(lib):
    return lib.tensor([-1.0, 0.0, 0.0, 2.5, 7.0])


FORWARD += [
    ("bincount", lambda lib: lib.bincount(counts(lib))),
    ("bincount_int32_minlength", lambda lib: counts(lib).int().bincount(minlength=9)),
    ("bincount_short_minlength", lambda lib: lib.bincount(counts(lib), minlength=2)),
    ("bincount_weights", lambda lib: lib.bincount(counts(lib), floats(lib))),
    ("bincount_float64_weights",
     lambda lib: lib.bincount(counts(lib), weights=floats(lib).double())),
    ("bincount_int_weights", lambda lib: lib.bincount(counts(lib), ints(lib))),
    ("bincount_empty", lambda lib: lib.bincount(lib.tensor([], dtype=lib.int64), minlength=3)),
    ("searchsorted", lambda lib: lib.searchsorted(steps(lib), floats(lib).reshape(2, 3))),
    ("searchsorted_right", lambda lib: lib.searchsorted(steps(lib), floats(lib), right=True)),
    ("searchsorted_side", lambda lib: lib.searchsorted(steps(lib), floats(lib), side="right")),
    ("searchsorted_int32", lambda lib: lib.searchsorted(steps(lib), floats(lib), out_int32=True)),
    ("searchsorted_number", lambda lib: lib.searchsorted(steps(lib), 0.0)),
    ("searchsorted_nan", lambda lib: lib.searchsorted(steps(lib), lib.tensor([NAN, -math.inf]))),
    ("searchsorted_rows", lambda lib: lib.searchsorted(lib.tensor([[1, 3, 5], [0, 0, 2]]),
                                                       lib.tensor([[3, 6], [0, 1]]), right=True)),
    ("searchsorted_sorter", lambda lib: lib.searchsorted(lib.tensor([5.0, 1.0, 3.0]),
                                                         lib.tensor([2.0, 5.0]),
                                                         sorter=lib.tensor([1, 2, 0]))),
    ("searchsorted_int_values", lambda lib: lib.searchsorted(lib.tensor([1, 3, 5]), ints(lib))),
    ("bucketize", lambda lib: lib.bucketize(floats(lib), steps(lib))),
    ("bucketize_right_int32", lambda lib: lib.bucketize(floats(lib), steps(lib), right=True,
                                                        out_int32=True)),
    ("tril_indices", lambda lib: lib.tril_indices(3, 4)),
    ("tril_indices_offset", lambda lib: lib.tril_indices(4, 3, -1)),
    ("tril_indices_offset_past", lambda lib: lib.tril_indices(2, 3, 5)),
    ("triu_indices", lambda lib: lib.triu_indices(3, 4, 1)),
    ("triu_indices_int32", lambda lib: lib.triu_indices(4, 2, -2, dtype=lib.int32)),
    ("triu_indices_empty", lambda lib: lib.triu_indices(0, 3)),
    ("cartesian_prod_int", lambda lib: lib.cartesian_prod(ints(lib)[:2], ints(lib)[2:5])),
]


@pytest.mark.parametrize("name,fn", FORWARD, ids=[f[0] for f in FORWARD])
def test_forward_matches_torch(name, fn):
    assert_same(fn(edugrad), fn(torch), name)


# ---- bad input -----------------------------------------------------------------------------------
ERRORS = [
    ("add int with float alpha", lambda: edugrad.add(ints(edugrad), 1, alpha=0.5), RuntimeError,
     "add: for int64 tensors alpha must not be a float"),
    ("sub int with bool alpha", lambda: ints(edugrad).sub(ints(edugrad), alpha=True),
     RuntimeError, "sub: a bool alpha"),
    ("add shapes", lambda: edugrad.add(edugrad.ones(2, 3), edugrad.ones(4), alpha=2),
     RuntimeError, "(2, 3) and (4,)"),
    ("div rounding mode", lambda: edugrad.div(ints(edugrad), 2, rounding_mode="round"),
     ValueError, "div: rounding_mode must be None, 'trunc' or 'floor', got 'round'"),
    ("div trunc by integer zero", lambda: edugrad.div(ints(edugrad), 0, rounding_mode="trunc"),
     RuntimeError, "div: ZeroDivisionError"),
    ("div floor by integer zero", lambda: ints(edugrad).div(ints(edugrad) * 0,
                                                            rounding_mode="floor"),
     RuntimeError, "div: ZeroDivisionError"),
    ("div trunc of bools", lambda: edugrad.div(bools(edugrad), bools(edugrad),
                                               rounding_mode="trunc"),
     NotImplementedError, "div: not implemented for bool"),
    ("div_ of ints to a float", lambda: ints(edugrad).div_(2), RuntimeError,
     "can't be cast to the desired output type int64"),
    ("add without a tensor", lambda: edugrad.add(1, 2), TypeError,
     "add: expected a tensor among the operands, got int and int"),
]

ERRORS += [
    ("dot of matrices", lambda: edugrad.dot(edugrad.ones(2, 2), edugrad.ones(2, 2)), RuntimeError,
     "dot: 1D tensors expected, but got shapes (2, 2) and (2, 2)"),
    ("dot of lengths", lambda: edugrad.dot(edugrad.ones(3), edugrad.ones(4)), RuntimeError,
     "(3,) and (4,)"),
    ("dot of dtypes", lambda: edugrad.ones(3).dot(ints(edugrad)[:3]), RuntimeError,
     "dot: expected both vectors to have the same dtype, but found float32 and int64"),
    ("broadcast_to", lambda: edugrad.broadcast_to(edugrad.ones(3), (2, 4)), RuntimeError,
     "broadcast_to: shape (3,) cannot be broadcast to (2, 4)"),
    ("broadcast_tensors", lambda: edugrad.broadcast_tensors(edugrad.ones(3), edugrad.ones(2)),
     RuntimeError, "broadcast_tensors: shapes (3,) and (2,) cannot be broadcast"),
    ("positive of bools", lambda: edugrad.positive(bools(edugrad)), RuntimeError,
     "positive: the + operator on a bool tensor"),
    ("t of 3 dims", lambda: edugrad.t(edugrad.ones(2, 2, 2)), RuntimeError,
     "t: expects a tensor with <= 2 dims"),
    ("atleast of a number", lambda: edugrad.atleast_2d(1.0), TypeError,
     "atleast_2d: expected tensors, got float"),
]

ERRORS += [
    ("hstack of nothing", lambda: edugrad.hstack([]), RuntimeError,
     "hstack: expected a non-empty list"),
    ("vstack of widths", lambda: edugrad.vstack([edugrad.ones(3), edugrad.ones(2)]), RuntimeError,
     "cat: sizes of tensors must match except in dim 0"),
    ("tensor_split into 0", lambda: edugrad.tensor_split(edugrad.ones(3), 0), RuntimeError,
     "tensor_split: number of sections must be larger than 0"),
    ("hsplit unevenly", lambda: edugrad.hsplit(edugrad.ones(2, 5), 2), RuntimeError,
     "hsplit: cannot split dim 1 of size 5 into 2 equal parts"),
    ("vsplit a vector", lambda: edugrad.vsplit(edugrad.ones(4), 2), RuntimeError,
     "vsplit: requires a tensor with at least 2 dims, got shape (4,)"),
    ("rot90 one dim", lambda: edugrad.rot90(edugrad.ones(2, 2), 1, (1, 1)), RuntimeError,
     "rot90: the two dims must differ"),
    ("fliplr of a vector", lambda: edugrad.fliplr(edugrad.ones(3)), RuntimeError,
     "fliplr: requires a tensor with at least 2 dims, got shape (3,)"),
    ("unfold too wide", lambda: edugrad.ones(2, 3).unfold(1, 4, 1), RuntimeError,
     "unfold: the size of a window (4) must be between 0 and the size of dim 1 (3"),
    ("unfold step 0", lambda: edugrad.ones(3).unfold(0, 2, 0), RuntimeError,
     "unfold: step is 0 but must be > 0"),
    ("write through overlapping windows", lambda: edugrad.ones(4).unfold(0, 2, 1).add_(1),
     RuntimeError, "unfold: cannot write through windows that overlap (size 2, step 1)"),
    ("take_along_dim float indices",
     lambda: edugrad.take_along_dim(edugrad.ones(3), edugrad.ones(2), 0), RuntimeError,
     "take_along_dim: expected int64 indices, got float32"),
    ("take_along_dim ranks",
     lambda: edugrad.take_along_dim(edugrad.ones(2, 3), edugrad.tensor([0]), 1), RuntimeError,
     "same number of dims, got shapes (2, 3) and (1,)"),
    ("take_along_dim shapes",
     lambda: edugrad.take_along_dim(edugrad.ones(2, 3), edugrad.zeros(3, 1).long(), 1),
     RuntimeError, "take_along_dim: shapes (2, 1) and (3, 1) cannot be broadcast"),
    ("masked_select float mask", lambda: edugrad.masked_select(edugrad.ones(3), edugrad.ones(3)),
     RuntimeError, "masked_select: expected a bool mask, got float32"),
    ("masked_select shapes",
     lambda: edugrad.masked_select(edugrad.ones(3), edugrad.ones(2) > 0), RuntimeError,
     "masked_select: shapes (3,) and (2,) cannot be broadcast"),
]

ERRORS += [
    ("quantile of ints", lambda: edugrad.quantile(ints(edugrad), 0.5), RuntimeError,
     "quantile: input tensor must be either float or double dtype, got int64"),
    ("quantile level", lambda: edugrad.quantile(floats(edugrad), 1.5), RuntimeError,
     "quantile: q values must be in the range [0, 1], got 1.5"),
    ("quantile level dtype",
     lambda: floats(edugrad).quantile(edugrad.tensor([0.5], dtype=edugrad.float64)),
     RuntimeError, "quantile: q must be a 0-d or 1-D tensor of the input's dtype float32"),
    ("quantile interpolation", lambda: floats(edugrad).nanquantile(0.5, interpolation="cubic"),
     ValueError, "nanquantile: interpolation must be one of linear, lower"),
    ("quantile of nothing", lambda: edugrad.quantile(edugrad.ones(0), 0.5), RuntimeError,
     "quantile: input tensor must be non-empty"),
    ("median over an empty dim", lambda: edugrad.ones(2, 0).median(1), IndexError,
     "median: cannot compute the median over dim 1 of size 0 (shape (2, 0))"),
    ("nanmean of ints", lambda: edugrad.nanmean(ints(edugrad)), RuntimeError,
     "nanmean: input dtype must be floating point, got int64"),
    ("aminmax of nothing", lambda: edugrad.aminmax(edugrad.ones(0)), RuntimeError,
     "aminmax: cannot compute aminmax over an empty dimension"),
    ("diff of a scalar", lambda: edugrad.diff(edugrad.tensor(1.0)), RuntimeError,
     "diff: expects input to be at least one-dimensional"),
    ("diff prepend dims", lambda: edugrad.diff(floats(edugrad), prepend=edugrad.tensor(0.0)),
     RuntimeError, "diff: prepend and append must have the dims of the input, shape (6,)"),
    ("logaddexp of ints", lambda: edugrad.logaddexp(ints(edugrad), ints(edugrad)),
     NotImplementedError, "logaddexp: not implemented for int64 tensors"),
    ("hypot shapes", lambda: edugrad.hypot(edugrad.ones(2), edugrad.ones(3)), RuntimeError,
     "hypot: shapes (2,) and (3,) cannot be broadcast"),
]

ERRORS += [
    ("tensordot sizes", lambda: edugrad.tensordot(edugrad.ones(2, 3), edugrad.ones(4, 2), 1),
     RuntimeError, "tensordot: contracted dims must match, but dim 1 of (2, 3) has size 3 and "
                   "dim 0 of (4, 2) has size 4"),
    ("tensordot too many dims", lambda: edugrad.tensordot(edugrad.ones(2), edugrad.ones(2), 2),
     RuntimeError, "tensordot: dims must be between 0 and 1"),
    ("tensordot dim lists", lambda: edugrad.tensordot(edugrad.ones(2), edugrad.ones(2),
                                                      ([0], [0, 1])),
     RuntimeError, "tensordot: both dim lists must have the same length, got [0] and [0, 1]"),
    ("tensordot dtypes", lambda: edugrad.tensordot(edugrad.ones(2), ints(edugrad)[:2], 1),
     RuntimeError, "tensordot: both inputs should have the same dtype, got float32 and int64"),
    ("cross dtypes", lambda: edugrad.cross(edugrad.ones(3), ints(edugrad)[:3], dim=0),
     RuntimeError, "cross: both inputs should have the same dtype, got float32 and int64"),
    ("cross without a 3", lambda: edugrad.cross(edugrad.ones(2, 2), edugrad.ones(2, 2)),
     RuntimeError, "cross: no dim of size 3 in shape (2, 2)"),
    ("cross ranks", lambda: edugrad.cross(edugrad.ones(2, 3), edugrad.ones(3), dim=-1),
     RuntimeError, "cross: inputs must have the same number of dims, got shapes (2, 3) and (3,)"),
    ("cross dim size", lambda: edugrad.cross(edugrad.ones(3, 2), edugrad.ones(3, 2), dim=1),
     RuntimeError, "cross: dim 1 must have size 3, got shape (3, 2)"),
    ("inner sizes", lambda: edugrad.inner(edugrad.ones(2, 3), edugrad.ones(4)), RuntimeError,
     "inner: the last dims must match, got shapes (2, 3) and (4,)"),
    ("mv dims", lambda: edugrad.mv(edugrad.ones(3), edugrad.ones(3)), RuntimeError,
     "mv: expected 2-D tensors, got shapes (3,) and (3,)"),
    ("mv sizes", lambda: edugrad.mv(edugrad.ones(2, 3), edugrad.ones(2)), RuntimeError,
     "mv: shapes (2, 3) and (2,) cannot be multiplied (3 != 2)"),
    ("cdist of vectors", lambda: edugrad.cdist(edugrad.ones(3), edugrad.ones(2, 3)), RuntimeError,
     "cdist: only supports at least 2D tensors, x1 has shape (3,)"),
    ("cdist columns", lambda: edugrad.cdist(edugrad.ones(2, 3), edugrad.ones(2, 4)), RuntimeError,
     "cdist: x1 and x2 must have the same number of columns, got shapes (2, 3) and (2, 4)"),
    ("cdist of ints", lambda: edugrad.cdist(ints(edugrad).reshape(2, 3), edugrad.ones(2, 3)),
     RuntimeError, "cdist: only supports floating-point dtypes, x1 is int64"),
    ("cdist p", lambda: edugrad.cdist(edugrad.ones(2, 3), edugrad.ones(2, 3), p=-1),
     RuntimeError, "cdist: only supports non-negative p values, got -1"),
]

ERRORS += [
    ("bincount of negatives", lambda: edugrad.bincount(edugrad.tensor([1, -1])), RuntimeError,
     "bincount: only supports 1-d non-negative integral inputs, got shape (2,) of int64"),
    ("bincount of floats", lambda: edugrad.bincount(floats(edugrad)), RuntimeError,
     "got shape (6,) of float32"),
    ("bincount of a matrix", lambda: edugrad.bincount(counts(edugrad).reshape(2, 3)),
     RuntimeError, "got shape (2, 3) of int64"),
    ("bincount weights", lambda: edugrad.bincount(counts(edugrad), edugrad.ones(2)),
     RuntimeError, "bincount: weights should have the input's shape (6,), got (2,)"),
    ("searchsorted leading dims", lambda: edugrad.searchsorted(edugrad.ones(2, 3),
                                                               edugrad.ones(3, 1)),
     RuntimeError, "searchsorted: the leading dims of sorted_sequence (2, 3) and values (3, 1)"),
    ("searchsorted side", lambda: edugrad.searchsorted(steps(edugrad), floats(edugrad), right=True,
                                                       side="left"),
     RuntimeError, "searchsorted: side must be 'left' or 'right' and agree with right=True"),
    ("bucketize boundaries", lambda: edugrad.bucketize(floats(edugrad), edugrad.ones(2, 2)),
     RuntimeError, "bucketize: boundaries must be a 1-D tensor, got (2, 2)"),
    ("tril_indices negative", lambda: edugrad.tril_indices(-1, 3), RuntimeError,
     "tril_indices: row and col must be non-negative, got -1 and 3"),
    ("cartesian_prod of a matrix", lambda: edugrad.cartesian_prod(edugrad.ones(2, 2)),
     RuntimeError, "cartesian_prod: expects 1-D tensors, got (2, 2)"),
    ("cartesian_prod dtypes", lambda: edugrad.cartesian_prod(edugrad.ones(2), ints(edugrad)),
     RuntimeError,
     "cartesian_prod: expects all tensors to have the same dtype, got float32, int64"),
]


@pytest.mark.parametrize("name,fn,error,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_name_the_op(name, fn, error, message):
    with pytest.raises(error) as raised:
        fn()
    assert message in str(raised.value)


def test_is_tensor():
    assert edugrad.is_tensor(edugrad.ones(2))
    assert edugrad.is_tensor(edugrad.nn.Parameter(edugrad.ones(2)))
    assert not edugrad.is_tensor([1.0]) and not edugrad.is_tensor(np.ones(2))
    assert not edugrad.is_tensor(torch.ones(2))


def test_views_stay_views():
    """broadcast_to, broadcast_tensors, ravel of a contiguous tensor, swapdims: aliases."""
    base = edugrad.zeros(2, 3)
    aliases = [base.ravel(), edugrad.swapdims(base, 0, 1), edugrad.broadcast_to(base, (4, 2, 3)),
               edugrad.broadcast_tensors(base, edugrad.ones(5, 1, 1))[0]]
    base.add_(1)
    for alias in aliases:
        assert bool((alias == 1).all())


@pytest.mark.parametrize("case", [c for c in CASES if c.gradgrad], ids=repr)
def test_gradgrad_matches_torch(case):
    check_gradgrad_against_torch(case, seed=1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_erfc_and_erfinv_are_accurate_to_the_dtype(dtype):
    """Against torch in float64 on a dense grid: erfc into its tail (1e-300), where 1 - erf(x)
    is 0, and erfinv up to the last representable number below 1."""
    eps = float(np.finfo(dtype).eps)
    x = np.concatenate([np.linspace(-27, 27, 5401), [9.2, 10.0, 26.5]]).astype(dtype)
    truth = torch.special.erfc(torch.tensor(x, dtype=torch.float64)).numpy()
    ours = edugrad.erfc(edugrad.tensor(x)).numpy()
    assert ours.dtype == x.dtype
    normal = truth > float(np.finfo(dtype).tiny)
    # float64: exp(-x^2) carries x^2's rounding, up to ~600 ulps by x = 26
    rtol = (2 if dtype == "float32" else 600) * eps
    np.testing.assert_allclose(ours[normal], truth[normal], rtol=rtol)
    assert (ours[~normal] <= float(np.finfo(dtype).tiny)).all()
    near_one = 1 - np.logspace(np.log10(eps / 2), -1, 60)
    y = np.concatenate([np.linspace(-0.999, 0.999, 2001), near_one, -near_one]).astype(dtype)
    truth = torch.special.erfinv(torch.tensor(y, dtype=torch.float64)).numpy()
    ours = edugrad.special.erfinv(edugrad.tensor(y)).numpy()
    np.testing.assert_allclose(ours, truth, rtol=4 * eps, atol=1e-300)


def _on(device, case, arrays):
    """Outputs and input gradients of a row on `device`, as host arrays."""
    inputs = [edugrad.tensor(a, device=device, requires_grad=True) for a in arrays]
    outs = as_list(case.fn(edugrad, *inputs))
    edugrad.autograd.backward(outs, [edugrad.ones_like(o) for o in outs])
    return [o.detach().numpy() for o in outs] + [x.grad.numpy() for x in inputs]


@pytest.mark.parametrize("case", ERF, ids=repr)
def test_erf_family_on_every_backend(case, backend_name):
    """Erfc and Erfinv are compositions of primitives: every backend gives cpu's values."""
    if backend_name == "cpu":
        pytest.skip("the reference itself")
    try:
        device = edugrad.get_backend(backend_name).device
    except (ValueError, ImportError) as error:
        pytest.skip(f"backend {backend_name!r} is not available here: {error}")
    arrays = sample_inputs(4, case.example, case.domain)
    for ours, reference in zip(_on(device, case, arrays), _on("cpu", case, arrays)):
        np.testing.assert_allclose(ours, reference, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("lib_name", ["edugrad", "torch"])
def test_unfold_is_a_view(lib_name):
    """Windows alias their base: a write to the base shows in them, a write through windows
    that do not overlap shows in the base; strides as PyTorch's."""
    lib = edugrad if lib_name == "edugrad" else torch
    base = lib.arange(12.0).reshape(3, 4)
    windows = base.unfold(1, 2, 2)
    assert tuple(windows.stride()) == (4, 2, 1) and windows._is_view()
    base.add_(100)
    assert windows[2, 1].tolist() == [110.0, 111.0]
    windows[0].zero_()
    assert base[0].tolist() == [0.0, 0.0, 0.0, 0.0] and base[1, 0].item() == 104.0
    assert tuple(base.unfold(0, 2, 1).stride()) == (4, 1, 4)


@settings(max_examples=40, deadline=None)
@given(sequence=st.lists(st.integers(-3, 3), max_size=6), probes=st.lists(
    st.integers(-4, 4), min_size=1, max_size=5), right=st.booleans())
def test_searchsorted_and_bucketize_match_torch(sequence, probes, right):
    """Duplicates, probes equal to elements, below and above all of them, empty sequences."""
    for lib in (edugrad, torch):
        if lib is torch:
            theirs = (torch.searchsorted(torch.tensor(sorted(sequence), dtype=torch.float32),
                                         torch.tensor(probes, dtype=torch.float32), right=right),
                      torch.bucketize(torch.tensor(probes), torch.tensor(sorted(sequence),
                                                                         dtype=torch.int64),
                                      right=right))
        else:
            ours = (edugrad.searchsorted(edugrad.tensor(sorted(sequence), dtype=edugrad.float32),
                                         edugrad.tensor(probes, dtype=edugrad.float32),
                                         right=right),
                    edugrad.bucketize(edugrad.tensor(probes), edugrad.tensor(sorted(sequence),
                                                                             dtype=edugrad.int64),
                                      right=right))
    for a, b in zip(ours, theirs):
        assert_same(a, b, "searchsorted")
