"""The conformance cases: one table of inputs per primitive, and the code that runs a case on a
backend and compares it with the NumPy backend. The checker (`python -m edugrad.checking.check`)
and the tests (tests/test_conformance.py) both use this one table.

Layer: checking tools (on top). Imports edugrad.ops, edugrad.dtypes, edugrad.data (TensorData,
to build inputs and read results the way the rest of edugrad does) and NumPy (inputs are made
on the host, and the NumPy backend is the reference).

A case is data: host arrays for the inputs, the primitive's other arguments, and a note. An
input may be a `View`: a host array seen through movement primitives (a PERMUTE, a FLIP, ...)
before the primitive under test gets it, so that every primitive also meets non-contiguous,
strided and broadcast inputs. Running a case goes through stages, each charged to the primitive
it uses (FROM_HOST builds the inputs, the View's movement ops reshape them, the primitive runs,
TO_HOST reads the result), so a failure is reported against the primitive that failed.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from edugrad import dtypes
from edugrad.data import TensorData
from edugrad.ops import Op

F32, F64, I32, I64, BOOL = "float32", "float64", "int32", "int64", "bool"
FLOATS, INTS = (F32, F64), (I32, I64)
NUMBERS = FLOATS + INTS
ALL_DTYPES = NUMBERS + (BOOL,)
nan, inf = math.nan, math.inf

# how close a float result must be to the reference's: |got - expected| <= atol + rtol*|expected|
TOLERANCE = {F32: (1e-5, 1e-6), F64: (1e-10, 1e-12)}  # (rtol, atol)

# the names of each primitive's arguments after its buffers, to describe a call
ARG_NAMES = {
    Op.FULL: ("shape", "value", "dtype"), Op.RAND: ("shape", "dtype"), Op.CAST: ("dtype",),
    Op.SUM: ("axes",), Op.MAX: ("axes",), Op.RESHAPE: ("shape",), Op.PERMUTE: ("order",),
    Op.EXPAND: ("shape",), Op.PAD: ("padding", "value"), Op.SHRINK: ("bounds",),
    Op.FLIP: ("axes",), Op.UNFOLD: ("kernel", "stride"), Op.FOLD: ("shape", "stride"),
    Op.TAKE: ("axis",), Op.INDEX_ADD: ("shape", "axis"),
}


@dataclass(frozen=True)
class View:
    """A host array seen through movement primitives, e.g. (("permute", (1, 0)),)."""

    array: np.ndarray
    steps: tuple


@dataclass(frozen=True)
class Case:
    inputs: tuple = ()  # host arrays or Views, made into buffers with FROM_HOST
    args: tuple = ()  # the primitive's other arguments, in order, after the buffers
    note: str = ""
    check: str = "reference"  # "reference": compare with NumPy; RAND uses "uniform", "seed"


def after(array: np.ndarray, *steps) -> View:
    """after(x, "permute", (1, 0), "flip", (0,)): x permuted, then flipped."""
    return View(array, tuple(zip(steps[::2], steps[1::2])))


# ---- making inputs ------------------------------------------------------------------------------

def grid(shape: tuple, dtype: str = F32, shift: int = 0, positive: bool = False) -> np.ndarray:
    """Deterministic, varied values: negatives, quarters for floats, a few repeats; bools mix.
    Different `shift`s give different values at the same index."""
    k = (np.arange(math.prod(shape)) + shift) * 7 % 11  # 0, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, ...
    if dtype == BOOL:
        return (k % 2 == 0).reshape(shape)
    values = k + 1 if positive else k - 5
    if dtype in FLOATS:
        values = values / 4
    return values.astype(dtype).reshape(shape)


def array(values, dtype: str) -> np.ndarray:
    return np.array(values, dtype=dtype)


def half_equal(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """y with every other element replaced by x's, so comparisons meet equal pairs."""
    out = y.copy().reshape(-1)
    out[::2] = x.reshape(-1)[::2]
    return out.reshape(y.shape)


SHAPES = [(), (1,), (5,), (2, 3), (1, 3, 1), (2, 3, 4), (0,), (2, 0, 3)]


# ---- the table ----------------------------------------------------------------------------------

def _load_cases() -> dict:
    full = [Case(args=args) for args in [
        ((), 1.5, dtypes.float32), ((2, 3), -2.25, dtypes.float64), ((1, 4, 1), 7, dtypes.int64),
        ((3,), -3, dtypes.int32), ((2, 2), True, dtypes.bool_), ((0, 3), 1.0, dtypes.float32),
        ((2,), nan, dtypes.float32), ((2, 1), -inf, dtypes.float64), ((3,), 0, dtypes.bool_),
        ((2,), 0.5, dtypes.bool_), ((5,), 1 / 3, dtypes.float32)]]
    full += [Case(args=((2, 2), 2.75, dtypes.int64), note="a float value truncates, as CAST"),
             Case(args=((3,), -2.75, dtypes.int32), note="a float value truncates, as CAST"),
             Case(args=((2,), 3, dtypes.float64), note="an int value into a float buffer")]
    rand = [Case(args=(shape, dtype), check="uniform") for shape, dtype in [
        ((1000,), dtypes.float32), ((2, 1, 300), dtypes.float64), ((), dtypes.float32),
        ((3, 0), dtypes.float64), ((10000,), dtypes.float32)]]
    rand += [Case(args=((100,), dtype), check="seed", note="seed(7) twice repeats; seed(8) differs")
             for dtype in (dtypes.float32, dtypes.float64)]
    from_host = [Case(inputs=(grid(shape, dtype),)) for dtype in ALL_DTYPES for shape in SHAPES]
    from_host += [Case(inputs=(array([nan, inf, -inf, -0.0, 1e-30, 3e38], d),), note="specials")
                  for d in FLOATS]
    from_host += [Case(inputs=(grid((3, 4), F64).T,), note="a transposed host array")]
    to_host = [Case(inputs=(grid(shape, dtype),)) for dtype in ALL_DTYPES for shape in SHAPES[:6]]
    views = [("permute", (2, 0, 1)), ("flip", (0, 2)), ("shrink", ((1, 2), (0, 2), (1, 4)))]
    to_host += [Case(inputs=(after(grid((2, 3, 4), d), *view),)) for d in (F32, I64, BOOL)
                for view in views]
    to_host += [Case(inputs=(after(grid((1, 3, 1), d), "expand", (4, 3, 2)),))
                for d in (F32, I64, BOOL)]
    return {Op.FULL: full, Op.RAND: rand, Op.FROM_HOST: from_host, Op.TO_HOST: to_host}


def _unary_cases(dtype_list, specials, positive=False) -> list:
    cases = [Case(inputs=(grid(shape, dtype, positive=positive),))
             for dtype in dtype_list for shape in SHAPES]
    cases += [Case(inputs=(array(specials, dtype),), note="nan, inf and edge values")
              for dtype in dtype_list if dtype in FLOATS]
    cases += [Case(inputs=(after(grid((3, 4), dtype, positive=positive), "permute", (1, 0)),))
              for dtype in dtype_list]
    cases += [Case(inputs=(after(grid((1, 4), dtype, positive=positive), "expand", (3, 4)),))
              for dtype in dtype_list[:1]]
    return cases


def _cast_cases() -> list:
    fractions = [-2.75, -0.5, -0.0, 0.0, 0.5, 1.0, 2.75, 3.0, -3.0, 100.25]
    source = {F32: fractions, F64: fractions, I32: [-7, -1, 0, 1, 3, 255],
              I64: [-7, -1, 0, 1, 3, 1000], BOOL: [True, False, True]}
    cases = [Case(inputs=(array(source[a], a),), args=(dtypes.from_name(b),))
             for a in ALL_DTYPES for b in ALL_DTYPES if a != b]
    cases += [
        Case(inputs=(array([nan, inf, -inf, 0.0, -0.0, 1e-30], d),), args=(dtypes.bool_,),
             note="nan and inf are true") for d in FLOATS]
    cases += [
        Case(inputs=(array([1 / 3, 1e-50, 1e39, -1e39, nan, inf], F64),), args=(dtypes.float32,),
             note="rounds, underflows to 0, overflows to inf"),
        Case(inputs=(array([16777217, -16777217, 2**40 + 1], I64),), args=(dtypes.float32,),
             note="int -> float32 rounds"),
        Case(inputs=(grid((), F32),), args=(dtypes.int64,)),
        Case(inputs=(grid((2, 0), F64),), args=(dtypes.int32,)),
        Case(inputs=(grid((1, 3, 1), I32),), args=(dtypes.float64,)),
        Case(inputs=(after(grid((3, 4), F32), "permute", (1, 0)),), args=(dtypes.int32,)),
        Case(inputs=(after(grid((3, 4), BOOL), "flip", (1,)),), args=(dtypes.float32,)),
    ]
    return cases


def _binary_cases(dtype_list, specials=None, equal_pairs=False) -> list:
    """Pairs of equal shape and dtype; `specials` is a (x values, y values) pair for floats."""
    def pair(shape, dtype):
        x, y = grid(shape, dtype), grid(shape, dtype, shift=3)
        return (x, half_equal(x, y) if equal_pairs else y)

    cases = [Case(inputs=pair(shape, dtype)) for dtype in dtype_list for shape in SHAPES]
    if specials:
        cases += [Case(inputs=(array(specials[0], d), array(specials[1], d)),
                       note="nan, inf and signed zeros") for d in dtype_list if d in FLOATS]
    for dtype in (dtype_list[0], dtype_list[-1]):
        x, y = pair((3, 4), dtype)
        cases += [
            Case(inputs=(after(x.T.copy(), "permute", (1, 0)), after(y, "flip", (0, 1)))),
            Case(inputs=(after(x[:1], "expand", (3, 4)), after(y[:, :1], "expand", (3, 4)))),
            Case(inputs=(after(x, "shrink", ((1, 3), (1, 3))),
                         after(y, "shrink", ((0, 2), (2, 4))))),
        ]
    return cases


def _where_cases() -> list:
    cases = []
    for dtype in ALL_DTYPES:
        for shape in SHAPES:
            cond = grid(shape, BOOL, shift=1)
            cases.append(Case(inputs=(cond, grid(shape, dtype), grid(shape, dtype, shift=5))))
    cond = array([True, False, True, False], BOOL)
    cases += [Case(inputs=(cond, array([nan, nan, -inf, 1.0], d), array([1.0, -inf, nan, nan], d)),
                   note="nan and inf pass through untouched") for d in FLOATS]
    cases += [Case(inputs=(after(grid((1, 4), BOOL), "expand", (3, 4)),
                           after(grid((4, 3), F32), "permute", (1, 0)),
                           after(grid((3, 4), F32, shift=2), "flip", (0,))),
                   note="broadcast condition")]
    return cases


def _reduce_cases(op: Op) -> list:
    shapes_axes = [((5,), (0,)), ((2, 3), (0,)), ((2, 3), (1,)), ((2, 3), (0, 1)),
                   ((1, 3, 1), (0, 2)), ((1, 3, 1), (1,)), ((4, 1, 1, 2), (1, 2)),
                   ((2, 3, 4), (0,)), ((2, 3, 4), (1,)), ((2, 3, 4), (2,)), ((2, 3, 4), (0, 1)),
                   ((2, 3, 4), (0, 2)), ((2, 3, 4), (1, 2)), ((2, 3, 4), (0, 1, 2))]
    dtype_list = NUMBERS + ((BOOL,) if op is Op.MAX else ())
    cases = [Case(inputs=(grid(shape, dtype),), args=(axes,))
             for dtype in dtype_list for shape, axes in shapes_axes]
    specials = [[nan, 1.0, 2.0], [-inf, -inf, -inf], [inf, -inf, 1.0], [inf, 1.0, nan]]
    cases += [Case(inputs=(array(specials, d),), args=(axes,), note="nan and inf")
              for d in FLOATS for axes in [(0,), (1,)]]
    cases += [Case(inputs=(array([[-5, -3, -9], [-2, -8, -1]], d),), args=((1,),),
                   note="all negative") for d in NUMBERS]
    empty = [((0, 3), (1,)), ((2, 0, 3), (2,))]  # an empty tensor, a non-empty reduced dim
    if op is Op.SUM:  # the sum over an empty dim is 0; MAX never reduces one
        empty += [((0, 3), (0,)), ((2, 0), (1,)), ((2, 0, 3), (0, 1))]
    cases += [Case(inputs=(grid(shape, d),), args=(axes,)) for d in (F32, F64, I64)
              for shape, axes in empty]
    for d in (F32, I32):
        cases += [
            Case(inputs=(after(grid((2, 3, 4), d), "permute", (2, 0, 1)),), args=((0, 2),)),
            Case(inputs=(after(grid((3, 4), d), "flip", (1,)),), args=((1,),)),
            Case(inputs=(after(grid((1, 3), d), "expand", (4, 3)),), args=((0,),)),
            Case(inputs=(after(grid((4, 5), d), "shrink", ((1, 3), (1, 4))),), args=((0, 1),)),
        ]
    cases += [Case(inputs=(grid((1000,), F32, positive=True),), args=((0,),), note="1000 values")]
    return cases


def on_every_dtype(rows) -> list:
    """A case per dtype per row (shape, *args): a grid of that shape, then the args."""
    return [Case(inputs=(grid(shape, dtype),), args=tuple(args))
            for dtype in ALL_DTYPES for shape, *args in rows]


def on_views(rows) -> list:
    """A case per row (array, (movement op, its arg), *args): the array seen through the op."""
    return [Case(inputs=(after(source, *step),), args=tuple(args)) for source, step, *args in rows]


def _movement_cases() -> dict:
    x23, x234, x45 = grid((2, 3), F32), grid((2, 3, 4), I64), grid((4, 5), F64)
    row, column = grid((1, 3), F32), grid((3, 1), I64)
    reshape = on_every_dtype([
        ((2, 3), (3, 2)), ((6,), (1, 6, 1)), ((), (1, 1)), ((1,), ()), ((0, 3), (3, 0)),
        ((2, 3, 4), (4, 6)), ((2, 3, 4), (24,))])
    reshape += on_views([
        (x23, ("permute", (1, 0)), (6,)), (x234, ("permute", (2, 0, 1)), (4, 6)),
        (x234, ("permute", (1, 0, 2)), (3, 2, 2, 2)), (x23, ("flip", (1,)), (3, 2)),
        (grid((1, 3), BOOL), ("expand", (2, 3)), (6,)), (x45, ("shrink", ((1, 3), (1, 4))), (6,))])
    permute = on_every_dtype([
        ((2, 3), (1, 0)), ((2, 3, 4), (2, 0, 1)), ((2, 3, 4), (1, 2, 0)), ((2, 3, 4), (0, 2, 1)),
        ((), ()), ((1, 3, 1), (2, 0, 1)), ((0, 2), (1, 0))])
    permute += on_views([
        (x234, ("permute", (2, 0, 1)), (2, 0, 1)), (x234, ("flip", (1,)), (1, 0, 2)),
        (x234, ("shrink", ((0, 2), (1, 3), (1, 3))), (2, 1, 0)),
        (row, ("expand", (2, 3)), (1, 0))])
    expand = on_every_dtype([
        ((1, 3), (4, 3)), ((3, 1), (3, 4)), ((1, 1), (2, 5)), ((1,), (5,)), ((1,), (0,)),
        ((2, 1, 3), (2, 4, 3)), ((0, 1), (0, 3))])
    expand += on_views([
        (grid((1, 1), F32), ("expand", (1, 4)), (3, 4)), (column, ("permute", (1, 0)), (2, 3)),
        (x23, ("shrink", ((1, 2), (0, 3))), (4, 3)), (row, ("flip", (1,)), (2, 3))])
    pad = [Case(inputs=(grid(shape, dtype),), args=(padding, value))
           for shape, padding, value, dtype in [
               ((2, 3), ((1, 0), (0, 2)), 0.0, F32), ((2, 3), ((1, 1), (2, 1)), -1.5, F64),
               ((3,), ((2, 3),), 7, I64), ((2, 2), ((0, 1), (1, 0)), -4, I32),
               ((2, 2), ((1, 1), (0, 0)), True, BOOL), ((2, 2), ((0, 0), (0, 1)), False, BOOL),
               ((0, 3), ((1, 1), (0, 0)), 5.0, F32),
               ((1, 3, 1), ((0, 1), (0, 0), (2, 0)), 0.5, F64),
               ((2,), ((1, 1),), nan, F32), ((2,), ((0, 2),), -inf, F64),
               ((2, 0), ((0, 0), (1, 2)), 3, I64),
               ((0, 2), ((1, 1), (0, 0)), 0, F64)]]  # the last: an int value into a float buffer
    pad += on_views([
        (x23, ("permute", (1, 0)), ((1, 0), (0, 1)), 2.5),
        (x23, ("flip", (0, 1)), ((0, 1), (2, 0)), 2.5),
        (row, ("expand", (2, 3)), ((1, 1), (1, 1)), 2.5),
        (x45, ("shrink", ((1, 3), (1, 4))), ((0, 2), (1, 0)), 2.5)])
    shrink = on_every_dtype([
        ((4, 5), ((1, 3), (0, 5))), ((4, 5), ((0, 0), (2, 4))), ((4, 5), ((3, 4), (4, 5))),
        ((2, 3, 4), ((0, 2), (1, 2), (1, 3))), ((5,), ((2, 5),)),
        ((1, 3, 1), ((0, 1), (1, 3), (0, 1)))])
    shrink += on_views([
        (x234, ("permute", (2, 0, 1)), ((1, 3), (0, 2), (1, 2))),
        (x234, ("flip", (2,)), ((0, 1), (0, 3), (1, 4))),
        (x45, ("shrink", ((1, 4), (1, 5))), ((1, 3), (0, 2))),
        (row, ("expand", (4, 3)), ((1, 3), (0, 2)))])
    flip = on_every_dtype([
        ((2, 3), (0,)), ((2, 3), (1,)), ((2, 3), (0, 1)), ((2, 3, 4), (0, 2)), ((5,), (0,)),
        ((1, 3, 1), (0, 2)), ((0, 3), (0,)), ((2, 0), (1,))])
    flip += on_views([
        (x234, ("permute", (2, 0, 1)), (0, 1)), (x234, ("flip", (0, 2)), (0, 1, 2)),
        (x45, ("shrink", ((1, 3), (1, 4))), (1,)), (row, ("expand", (2, 3)), (0, 1))])
    return {Op.RESHAPE: reshape, Op.PERMUTE: permute, Op.EXPAND: expand, Op.PAD: pad,
            Op.SHRINK: shrink, Op.FLIP: flip}


def _accelerated_cases() -> dict:
    matmul = [Case(inputs=(grid(a, d), grid(b, d, shift=2))) for d, a, b in [
        (F32, (2, 3), (3, 4)), (F32, (1, 1), (1, 1)), (F64, (2, 2, 3), (2, 3, 5)),
        (F32, (2, 1, 4, 3), (2, 1, 3, 2)), (F64, (2, 0), (0, 3)), (F32, (0, 3), (3, 2))]]
    matmul += [Case(inputs=(after(grid((3, 2), F32), "permute", (1, 0)), grid((3, 4), F32)))]
    unfold = [Case(inputs=(grid(shape, d),), args=(kernel, step)) for d, shape, kernel, step in [
        (F32, (1, 1, 4, 4), (2, 2), (1, 1)), (F64, (2, 3, 5, 6), (3, 2), (2, 1)),
        (F32, (1, 2, 5, 5), (1, 1), (2, 2)), (F32, (1, 1, 3, 3), (3, 3), (1, 1)),
        (I64, (1, 1, 7, 5), (2, 3), (3, 2))]]
    fold = [Case(inputs=(grid(cols, d),), args=(shape, stride)) for d, cols, shape, stride in [
        (F32, (1, 1, 3, 3, 2, 2), (1, 1, 4, 4), (1, 1)),
        (F64, (2, 3, 2, 5, 3, 2), (2, 3, 5, 6), (2, 1)),
        (F32, (1, 1, 2, 2, 2, 3), (1, 1, 7, 5), (3, 2)),
        (I64, (1, 2, 3, 3, 1, 1), (1, 2, 5, 5), (2, 2))]]
    index = functools.partial(np.array, dtype=I64)
    take = [Case(inputs=(x, index(i)), args=(axis,)) for x, i, axis in [
        (grid((4, 3), F32), [2, 0, 2], 0), (grid((4, 3), F64), [[0, 2], [1, 1]], 1),
        (grid((2, 3, 4), I64), [2], 1), (grid((2, 3, 4), F32), 3, 2),
        (grid((4, 3), F32), np.zeros(0, I64), 0)]]
    take += [Case(inputs=(array([[1.0, -inf, 3.0], [nan, 5.0, inf]], F32), index([2, 0])),
                  args=(1,), note="inf and nan in x")]
    index_add = [Case(inputs=(src, index(i)), args=(shape, axis)) for src, i, shape, axis in [
        (grid((3, 3), F32), [2, 0, 2], (4, 3), 0),
        (grid((2, 2, 2), F64), [[0, 4], [4, 4]], (2, 5), 1),
        (grid((2, 3), I64), [1, 1, 0], (2, 2), 1),
        (grid((0, 3), F32), np.zeros(0, I64), (4, 3), 0)]]
    index_add += [Case(inputs=(array([[1.0, -inf]], F32), index([2, 0])), args=((1, 3), 1),
                       note="inf in src")]
    edges = [0.0, -0.0, 1e-8, -1e-8, 0.5, -0.999, 1.0, -1.0, 3.9, 4.5, -8.5, 30.0, inf, -inf, nan]
    erf = [Case(inputs=(grid(shape, d),)) for d, shape in [
        (F32, (2, 3)), (F64, (2, 3, 4)), (F32, ()), (F64, (0, 2))]]
    erf += [Case(inputs=(array(edges, d),), note="zeros, tiny, near 1, past the clamp, inf, nan")
            for d in (F32, F64)]
    return {Op.MATMUL: matmul, Op.UNFOLD: unfold, Op.FOLD: fold, Op.TAKE: take,
            Op.INDEX_ADD: index_add, Op.ERF: erf,
            Op.TANH: _activation_cases([0.0, -0.0, 1e-8, -1e-8, 0.5, -3.0, 9.0, -20.0, 45.0,
                                        1e4, -1e4, inf, -inf, nan]),
            Op.SIGMOID: _activation_cases([0.0, -0.0, 1e-8, 5.0, -5.0, 20.0, -20.0, 88.0, -88.0,
                                           -100.0, -750.0, 1e4, -1e4, inf, -inf, nan]),
            Op.GELU: _activation_cases(GELU_EDGES) + _wide(),
            Op.GELU_GRAD: _gelu_grad_cases()}


# GELU's edge values: tiny, both sides of ERF's branches (|x / sqrt 2| at 1, 4 and 8), where
# Phi or phi underflows, x * x overflowing float32 (1e20), inf and nan
GELU_EDGES = [0.0, -0.0, 1e-8, -1e-8, 0.5, -1.4, 1.5, -3.0, 5.6, -5.7, 11.4, -11.4, -15.0,
              -40.0, 1e4, -1e4, 1e20, -1e20, inf, -inf, nan]


def _wide(second: bool = False) -> list:
    """x from -8 to 8 in steps of 1/4 in both floats (and, with second, a gradient for each)."""
    x = np.linspace(-8.0, 8.0, 65)
    return [Case(inputs=(array(x, d),) + ((array(np.cos(x) * 2, d),) if second else ()),
                 note="x from -8 to 8") for d in FLOATS]


def _gelu_grad_cases() -> list:
    """GELU_GRAD(x, g): grids, a scalar, an empty buffer, strided and broadcast views of either,
    the edge values of x (g of both signs), and inf and nan in g."""
    cases = [Case(inputs=(grid(shape, d), grid(shape, d, shift=3))) for d, shape in [
        (F32, (2, 3)), (F64, (2, 3, 4)), (F32, ()), (F64, (0, 2))]]
    for d in FLOATS:
        x, g = grid((3, 4), d), grid((4, 3), d, shift=2)
        cases += [Case(inputs=(after(x, "permute", (1, 0)), after(g, "flip", (0,)))),
                  Case(inputs=(after(x[:1], "expand", (3, 4)), g.T.copy())),
                  Case(inputs=(g.T.copy(), after(x[:, :1], "expand", (3, 4))))]
    gradients = [(-1.0) ** i * (1 + i / 4) for i in range(len(GELU_EDGES))]
    cases += [Case(inputs=(array(GELU_EDGES, d), array(gradients, d)),
                   note="x tiny, past ERF's branches, where phi underflows, x * x overflowing, "
                        "inf, nan") for d in FLOATS]
    cases += [Case(inputs=(array([0.5, -0.5, 2.0, 0.0, -3.0, 1.0], d),
                           array([inf, -inf, nan, 0.0, inf, -0.0], d)),
                   note="inf, nan and signed zeros in g") for d in FLOATS]
    return cases + _wide(second=True)


def _activation_cases(edges: list) -> list:
    """An elementwise float activation: grids, a scalar, an empty buffer, strided views, and
    the edge values (tiny, saturated, past exp's overflow, inf and nan) in both floats."""
    cases = [Case(inputs=(grid(shape, d),)) for d, shape in [
        (F32, (2, 3)), (F64, (2, 3, 4)), (F32, ()), (F64, (0, 2))]]
    cases += [Case(inputs=(after(grid((3, 4), d), "permute", (1, 0)),)) for d in FLOATS]
    cases += [Case(inputs=(after(grid((1, 4), F32), "expand", (3, 4)),))]
    cases += [Case(inputs=(array(edges, d),), note="tiny, saturated, past exp's overflow, inf, nan")
              for d in FLOATS]
    return cases


@functools.lru_cache(maxsize=None)
def cases() -> dict:
    """Op -> its list of cases, every primitive (required and accelerated) in ops.py's order."""
    special_unary = {
        Op.NEG: [nan, inf, -inf, 0.0, -0.0, 3e38],
        Op.EXP: [-inf, inf, nan, 0.0, -0.0, 1.0, 88.0, 89.0, 100.0, 1000.0, -1000.0, -100.0],
        Op.LOG: [0.0, -0.0, -1.0, -inf, inf, nan, 1e-30, 0.5, 2.0, 1e30],
        Op.SIN: [-inf, inf, nan, 0.0, -0.0, 3.14159, -10.0, 1e3],
        Op.SQRT: [0.0, -0.0, 4.0, 2.0, -1.0, -inf, inf, nan, 1e-30],
    }
    table = _load_cases()
    table[Op.NEG] = _unary_cases(NUMBERS, special_unary[Op.NEG])
    for op in (Op.EXP, Op.LOG, Op.SIN, Op.SQRT):
        table[op] = _unary_cases(FLOATS, special_unary[op], positive=op in (Op.LOG, Op.SQRT))
    table[Op.CAST] = _cast_cases()
    table[Op.ADD] = _binary_cases(NUMBERS, ([inf, -inf, inf, nan, 3e38, -0.0, 0.5],
                                            [-inf, -inf, 1.0, 1.0, 3e38, 0.0, -0.5]))
    table[Op.SUB] = _binary_cases(NUMBERS, ([inf, -inf, inf, nan, -3e38, -0.0, 0.5],
                                            [inf, inf, 1.0, 1.0, 3e38, 0.0, 0.5]))
    table[Op.MUL] = _binary_cases(NUMBERS, ([inf, -inf, 0.0, nan, 1e20, -0.0, 0.5],
                                            [0.0, -1.0, -inf, 1.0, 1e20, 1.0, -0.5]))
    table[Op.DIV] = _binary_cases(FLOATS, ([1.0, -1.0, 0.0, nan, inf, 1.0, -1.0, 6.0, -7.5, 1.0],
                                           [0.0, 0.0, 0.0, 0.0, inf, -0.0, -0.0, 3.0, 2.5, inf]))
    table[Op.MAXIMUM] = _binary_cases(ALL_DTYPES, ([nan, 1.0, nan, -inf, inf, -0.0, 2.0],
                                                   [1.0, nan, nan, -inf, 3.0, 0.0, -2.0]))
    table[Op.CMPLT] = _binary_cases(ALL_DTYPES, ([nan, 1.0, nan, -inf, inf, 1.0, 2.0, -0.0],
                                                 [1.0, nan, nan, inf, inf, 1.0, -2.0, 0.0]),
                                    equal_pairs=True)
    table[Op.CMPEQ] = _binary_cases(ALL_DTYPES, ([nan, 1.0, nan, inf, -inf, -0.0, 2.5],
                                                 [nan, nan, 1.0, inf, inf, 0.0, 2.5]),
                                    equal_pairs=True)
    table[Op.WHERE] = _where_cases()
    table[Op.SUM] = _reduce_cases(Op.SUM)
    table[Op.MAX] = _reduce_cases(Op.MAX)
    table.update(_movement_cases())
    table.update(_accelerated_cases())
    return {op: table[op] for op in Op}


# ---- running a case -----------------------------------------------------------------------------

class StageError(Exception):
    """A primitive raised while a case ran: `op` is the primitive, `error` what it raised."""

    def __init__(self, op: Op, error: BaseException, reading: bool = False) -> None:
        super().__init__(f"{op.name}: {type(error).__name__}: {error}")
        self.op = op
        self.error = error
        self.reading = reading  # TO_HOST failed on a result: its fault, or the result's


def stage(op: Op, fn, *args):
    """Call fn(*args), charging any exception to primitive `op`."""
    try:
        return fn(*args)
    except Exception as error:  # a backend bug of any kind: report it, never crash the checker
        raise StageError(op, error) from error


def make_input(value, backend) -> TensorData:
    if not isinstance(value, View):
        return stage(Op.FROM_HOST, TensorData.from_host, value, backend)
    data = stage(Op.FROM_HOST, TensorData.from_host, value.array, backend)
    for name, arg in value.steps:
        data = stage(Op[name.upper()], getattr(data, name), arg)
    return data


def call(op: Op, inputs: list, args: tuple) -> TensorData:
    """The primitive through TensorData: first input's method, other inputs, then the args."""
    first, *rest = inputs
    if op is Op.TAKE:  # take(axis, index): the axis comes before the index
        return first.take(args[0], rest[0])
    if op is Op.INDEX_ADD:  # src.index_add(shape, axis, index)
        return first.index_add(args[0], args[1], rest[0])
    return getattr(first, op.method)(*rest, *args)


def run(op: Op, case: Case, backend):
    """One case on one backend: (the result's TensorData, the raw values TO_HOST gave)."""
    with np.errstate(all="ignore"):  # NumPy warns on inf and nan; the cases want them
        if op is Op.FULL:
            result = stage(op, TensorData.full, *case.args, backend)
        elif op is Op.RAND:
            result = stage(op, TensorData.rand, *case.args, backend)
        elif op is Op.FROM_HOST:
            result = stage(op, TensorData.from_host, case.inputs[0], backend)
        else:
            inputs = [make_input(value, backend) for value in case.inputs]
            result = inputs[0] if op is Op.TO_HOST else stage(op, call, op, inputs, case.args)
        try:
            raw = backend.to_host(result.buffer)
        except Exception as error:
            raise StageError(Op.TO_HOST, error, reading=True) from error
    return result, raw


# ---- comparing -----------------------------------------------------------------------------------

def host_values(result: TensorData, raw) -> np.ndarray:
    """What TensorData.to_host makes of the raw values: typed and shaped."""
    with np.errstate(all="ignore"):
        return np.asarray(raw, dtype=result.dtype.name).reshape(result.shape)


def problem_with(result: TensorData, raw, expected: np.ndarray) -> str | None:
    """None when the result matches `expected` in shape, dtype and values; else what is wrong."""
    wrong = layout_problem(result, raw, expected.shape, expected.dtype.name)
    if wrong:
        return wrong
    got = host_values(result, raw)
    index = first_difference(expected, got)
    if index is None:
        return None
    return (f"expected {show(expected)}\ngot      {show(got)}\n"
            f"first difference at {index}: expected {expected[index].item()!r}, "
            f"got {got[index].item()!r}")


def layout_problem(result: TensorData, raw, shape: tuple, dtype_name: str) -> str | None:
    """The buffer's shape, the number of values TO_HOST gives and their kind of number."""
    got_shape = getattr(result.buffer, "shape", None)
    if got_shape is None or tuple(got_shape) != tuple(shape):
        return f"shape: expected {tuple(shape)}, got {got_shape}"
    try:
        loose = np.asarray(raw)
    except Exception as error:
        return f"TO_HOST returned something numpy.asarray cannot read ({error})"
    if loose.size != math.prod(shape):
        return f"TO_HOST returned {loose.size} value(s) for shape {tuple(shape)}"
    if hasattr(raw, "dtype"):  # an array must have the exact dtype
        got = raw.dtype.name
        return None if got == dtype_name else f"dtype: expected {dtype_name}, buffer holds {got}"
    if loose.size == 0:  # a list of Python values must hold the right kind of number
        return None
    kind = {"b": BOOL, "i": "int", "u": "int", "f": "float"}.get(loose.dtype.kind, loose.dtype.name)
    want = BOOL if dtype_name == BOOL else "int" if dtype_name in INTS else "float"
    return None if kind == want else f"dtype: expected {dtype_name}, TO_HOST gave {kind} values"


def first_difference(expected: np.ndarray, got: np.ndarray, tolerance: dict = TOLERANCE):
    """The first index where got differs from expected (None if none): exact for bool and int;
    for floats nan matches nan, inf matches an inf of the same sign, the rest within
    `tolerance` (dtype name -> (rtol, atol); the lock-step diff passes a looser one)."""
    if expected.dtype.kind == "f":
        rtol, atol = tolerance[expected.dtype.name]
        with np.errstate(all="ignore"):
            close = np.abs(got - expected) <= atol + rtol * np.abs(expected)
        same = (got == expected) | (np.isnan(got) & np.isnan(expected)) | close
    else:
        same = got == expected
    bad = np.argwhere(~np.asarray(same))
    return tuple(int(i) for i in bad[0]) if len(bad) else None


def show(values: np.ndarray) -> str:
    """A one-line picture of an array: its dtype, shape and (some of) its values."""
    text = np.array2string(values, separator=", ", threshold=16, edgeitems=2, precision=6,
                           max_line_width=10**6)
    return f"{values.dtype.name} {values.shape} {' '.join(text.split())}"


# ---- RAND: properties instead of a reference -----------------------------------------------------

def rand_problem(case: Case, backend) -> str | None:
    """RAND has no reference values, so check its properties: shape, dtype, every value in
    [0, 1), not constant, mean near 1/2; for check="seed", that seed() repeats a sequence and
    another seed gives another one."""
    shape, dtype = case.args
    if case.check == "seed":
        draws = []
        for seed in (7, 7, 8):
            stage(Op.RAND, backend.seed, seed)
            draws.append(host_values(*run(Op.RAND, case, backend)))
        if not np.array_equal(draws[0], draws[1]):
            return f"seed(7) twice gave different values: {show(draws[0])} and {show(draws[1])}"
        if np.array_equal(draws[0], draws[2]):
            return f"seed(7) and seed(8) gave the same values: {show(draws[0])}"
        return None
    result, raw = run(Op.RAND, case, backend)
    wrong = layout_problem(result, raw, shape, dtype.name)
    if wrong:
        return wrong
    got = host_values(result, raw)
    if not ((got >= 0) & (got < 1)).all():
        return f"values outside [0, 1): {show(got[(got < 0) | (got >= 1)])}"
    distinct = len(np.unique(got))
    if got.size >= 100 and distinct < got.size // 2:
        return f"{got.size} draws hold only {distinct} distinct values"
    if got.size >= 1000 and abs(got.mean() - 0.5) > 0.05:
        return f"the mean of {got.size} draws is {got.mean():.3f}, expected about 0.5"
    return None
