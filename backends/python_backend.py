"""The pure-Python backend: device "python". Every required primitive of edugrad/ops.py, written
out with nothing underneath but Python lists: the readable, runnable definition of each one.

Layer: backends. Imports edugrad.backend, edugrad.dtypes and the standard library; never NumPy
(a test checks).

The memory model NumPy hides
----------------------------
A buffer is a flat Python list, `storage`, seen through a `shape`, a `strides` tuple and an
`offset`. The element at index (i0, i1, ..., ik) lives at

    storage[offset + i0 * strides[0] + i1 * strides[1] + ... + ik * strides[k]]

Strides here count elements (NumPy's count bytes). A freshly made buffer is row-major (C
order): the last index moves fastest, so shape (2, 3) gets strides (3, 1).

Worked example: x = from_host([[0, 1, 2], [3, 4, 5]]) is

    storage [0, 1, 2, 3, 4, 5]    shape (2, 3)    strides (3, 1)    offset 0

and these movement ops make new *views* of that same storage, copying nothing:

    permute(x, (1, 0))           shape (3, 2)  strides (1, 3)   offset 0  [[0, 3], [1, 4], [2, 5]]
    flip(x, (1,))                shape (2, 3)  strides (3, -1)  offset 2  [[2, 1, 0], [5, 4, 3]]
    shrink(x, ((0, 2), (1, 3)))  shape (2, 2)  strides (3, 1)   offset 1  [[1, 2], [4, 5]]
    expand(shrink(x, ((0, 1), (0, 3))), (4, 3))
                                 shape (4, 3)  strides (0, 1)   offset 0  four rows of [0, 1, 2]

Check one: element (1, 0) of the flip is storage[2 + 1*3 + 0*(-1)] = storage[5] = 5. A stride
of 0 reads the same element for every index of its dim, which is all broadcasting is. FULL
uses the same trick: one stored element, every stride 0.

RESHAPE can be a view only when the elements already lie in storage in row-major order, one
after the other (the buffer is "contiguous"). The permute above is not: in row-major order its
elements are 0, 3, 1, 4, 2, 5, and no single stride walks storage in that order. So reshape
first copies the values out in row-major order (`values`) and then views the copy.

Elementwise ops and reductions read their inputs through the strides and always write a new
contiguous buffer; PAD writes one too. A buffer never changes after it is made, which is what
makes it safe for views to share storage.

Dtypes: bool is a Python bool; int32 and int64 are Python ints (without the wrap-around at
2**31 or 2**63); float64 is a Python float. float32 is a Python float too, so it is computed in
double precision, but every float32 result is rounded to the nearest float32 (a `struct` pack
and unpack with format 'f') as it is made. So float32 results agree with NumPy's: to the last
bit for + - * / and sqrt, to a unit or two in the last place for exp, log and sin.
"""

from __future__ import annotations

import math
import operator
import random
import struct

from edugrad import dtypes
from edugrad.backend import Backend
from edugrad.dtypes import DType


class Buffer:
    """A view of a flat list: element (i0, ..., ik) is storage[offset + sum of i_d * strides[d]]."""

    __slots__ = ("storage", "shape", "strides", "offset", "dtype")

    def __init__(self, storage: list, shape: tuple, strides: tuple, offset: int, dtype: DType):
        self.storage = storage
        self.shape = tuple(shape)
        self.strides = tuple(strides)
        self.offset = offset
        self.dtype = dtype

    @staticmethod
    def contiguous(values: list, shape: tuple, dtype: DType) -> "Buffer":
        """A new row-major buffer that owns `values` (given in row-major order)."""
        return Buffer(values, shape, row_major_strides(shape), 0, dtype)

    def view(self, shape: tuple, strides: tuple, offset: int) -> "Buffer":
        """Another way of looking at the same storage: nothing is copied."""
        return Buffer(self.storage, shape, strides, offset, self.dtype)

    def __repr__(self) -> str:
        return (f"Buffer(shape={self.shape}, strides={self.strides}, offset={self.offset}, "
                f"dtype={self.dtype.name})")


# ---- walking a buffer ----------------------------------------------------------------------------

def numel(shape) -> int:
    return math.prod(shape)


def row_major_strides(shape: tuple) -> tuple:
    """(2, 3, 4) -> (12, 4, 1): the stride of a dim is the product of the sizes after it."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def positions(x: Buffer) -> list:
    """Where each element of x sits in x.storage, for x's indices in row-major order.

    This is [offset + i0*s0 + i1*s1 + ... for every index (i0, i1, ...) of x.shape], built one
    dim at a time so that each position costs one addition: for shape (2, 3), strides (1, 2),
    offset 0 the list grows [0] -> [0, 1] -> [0, 2, 4, 1, 3, 5].
    """
    result = [x.offset]
    for size, stride in zip(x.shape, x.strides):
        result = [start + i * stride for start in result for i in range(size)]
    return result


def is_contiguous(x: Buffer) -> bool:
    """True when x's elements lie in storage in row-major order, one after the other. A size-1
    dim is only ever indexed with 0, so its stride does not matter."""
    expected = row_major_strides(x.shape)
    return all(size == 1 or s == e for size, s, e in zip(x.shape, x.strides, expected))


def values(x: Buffer) -> list:
    """x's elements in row-major order, as a new list (a plain slice when x is contiguous)."""
    if is_contiguous(x):
        return x.storage[x.offset:x.offset + numel(x.shape)]
    storage = x.storage
    return [storage[p] for p in positions(x)]


def elementwise(fn, inputs: tuple, dtype: DType) -> Buffer:
    """A new buffer of `fn` applied position by position to the inputs' elements (one input
    for unary primitives, two for binary, three for WHERE)."""
    out = list(map(fn, *(values(x) for x in inputs)))
    return Buffer.contiguous(finish(out, dtype), inputs[0].shape, dtype)


# ---- dtypes --------------------------------------------------------------------------------------

def finish(vals: list, dtype: DType) -> list:
    """Round float32 (float16) results to float32 (float16); other dtypes are already exact
    Python values."""
    if dtype is dtypes.float32:
        return to_float32(vals)
    return to_float16(vals) if dtype is dtypes.float16 else vals


def held(dtype: DType) -> None:
    """bfloat16 is refused here (the cpu backend emulates it: see edugrad/dtypes.py)."""
    if dtype is dtypes.bfloat16:
        raise TypeError("bfloat16: the python backend does not hold bfloat16 (the cpu backend "
                        "emulates it); use float16 for half precision, or float32")


def to_float16(vals: list) -> list:
    """Each value rounded to the nearest IEEE half float (struct's format 'e')."""
    out = []
    for value in vals:
        try:
            out.append(struct.unpack("e", struct.pack("e", value))[0])
        except OverflowError:  # beyond float16's largest, 65504
            out.append(math.copysign(math.inf, value))
    return out


def to_float32(vals: list) -> list:
    """Each value rounded to the nearest float32 (then held as a Python float): C's `(float)x`."""
    fmt = f"{len(vals)}f"
    try:
        return list(struct.unpack(fmt, struct.pack(fmt, *vals)))
    except OverflowError:  # some Python versions refuse to pack a value beyond float32's range
        return [_one_to_float32(v) for v in vals]


def _one_to_float32(value) -> float:
    try:
        return struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def cast_value(value, dtype: DType):
    """One Python number converted to `dtype` (float32 is rounded later, by `finish`)."""
    if dtype is dtypes.bool_:
        return value != 0  # nan != 0, so nan becomes True, as in NumPy
    if dtype.is_floating_point:
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return 0  # nan and inf have no integer value; the spec leaves this case open
    return int(value)  # int() truncates toward zero: int(-2.7) == -2


# ---- the scalar functions, IEEE results where Python's math module would raise -------------------

def _exp(v: float) -> float:
    try:
        return math.exp(v)
    except OverflowError:  # e**v is beyond the largest float
        return math.inf


def _log(v: float) -> float:
    if v > 0 or v != v:  # positive (inf included) or nan
        return math.log(v)
    return -math.inf if v == 0 else math.nan


def _sin(v: float) -> float:
    return math.sin(v) if math.isfinite(v) else math.nan


def _sqrt(v: float) -> float:
    return math.sqrt(v) if v >= 0 else math.nan  # nan >= 0 is False, so nan gives nan


def _div(x: float, y: float) -> float:
    try:
        return x / y
    except ZeroDivisionError:  # IEEE: the sign of x times the sign of the zero; 0/0 is nan
        if x == 0 or x != x:
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)


def _maximum(x, y):
    """The larger of x and y, nan if either is nan (every comparison with nan is False)."""
    return x if x >= y or x != x else y


def _max_of(run: list):
    """MAXIMUM's rule over a whole run: Python's max() would keep or skip a nan by position."""
    return math.nan if any(v != v for v in run) else max(run)


class PythonBackend(Backend):
    """Device "python": the 26 required primitives on Buffers; the layer above composes the rest."""

    name = "python"

    def __init__(self, device: str | None = None) -> None:
        super().__init__(device)
        self.generator = random.Random()

    def seed(self, seed: int) -> None:
        self.generator = random.Random(seed)

    # ---- load --------------------------------------------------------------------------------
    def full(self, shape, value, dtype):
        held(dtype)
        # one stored element and every stride 0: each index reads that element
        stored = finish([cast_value(value, dtype)], dtype)
        return Buffer(stored, shape, (0,) * len(shape), 0, dtype)

    def rand(self, shape, dtype):
        held(dtype)
        count, generator = numel(shape), self.generator
        if dtype is dtypes.float16:  # as for float32 below: k / 2**11 stays below 1
            drawn = [generator.getrandbits(11) / 2**11 for _ in range(count)]
        elif dtype is dtypes.float32:
            # random() is k / 2**53, which rounds up to 1.0 as a float32 when k is close to
            # 2**53; k / 2**24 with k < 2**24 is a float32 and always below 1
            drawn = [generator.getrandbits(24) / 2**24 for _ in range(count)]
        else:
            drawn = [generator.random() for _ in range(count)]
        return Buffer.contiguous(drawn, shape, dtype)

    def from_host(self, array):
        dtype = dtypes.from_name(array.dtype.name)
        return Buffer.contiguous(array.ravel().tolist(), tuple(array.shape), dtype)

    def to_host(self, x):
        return values(x)

    # ---- unary -------------------------------------------------------------------------------
    def neg(self, x):
        return elementwise(operator.neg, (x,), x.dtype)

    def exp(self, x):
        return elementwise(_exp, (x,), x.dtype)

    def log(self, x):
        return elementwise(_log, (x,), x.dtype)

    def sin(self, x):
        return elementwise(_sin, (x,), x.dtype)

    def sqrt(self, x):
        return elementwise(_sqrt, (x,), x.dtype)

    def cast(self, x, dtype):
        held(dtype)
        return elementwise(lambda v: cast_value(v, dtype), (x,), dtype)

    # ---- binary and ternary: equal shapes and dtypes -----------------------------------------
    def add(self, x, y):
        return elementwise(operator.add, (x, y), x.dtype)

    def sub(self, x, y):
        return elementwise(operator.sub, (x, y), x.dtype)

    def mul(self, x, y):
        return elementwise(operator.mul, (x, y), x.dtype)

    def div(self, x, y):
        return elementwise(_div, (x, y), x.dtype)

    def maximum(self, x, y):
        return elementwise(_maximum, (x, y), x.dtype)

    def cmplt(self, x, y):
        return elementwise(operator.lt, (x, y), dtypes.bool_)

    def cmpeq(self, x, y):
        return elementwise(operator.eq, (x, y), dtypes.bool_)

    def where(self, cond, x, y):
        return elementwise(lambda c, a, b: a if c else b, (cond, x, y), x.dtype)

    # ---- reduce ------------------------------------------------------------------------------
    def sum(self, x, axes):
        zero = 0.0 if x.dtype.is_floating_point else 0  # the sum over an empty dim
        return self._reduce(x, axes, lambda run: sum(run, zero))

    def max(self, x, axes):
        return self._reduce(x, axes, _max_of)

    def _reduce(self, x, axes, combine):
        """Permute the reduced axes to the end (a view); then, in row-major order, the elements
        that make one output lie in one run of `run` consecutive values. Combine each run."""
        kept = tuple(d for d in range(len(x.shape)) if d not in axes)
        run = numel(x.shape[d] for d in axes)
        vals = values(self.permute(x, kept + tuple(axes)))
        out = [combine(vals[i * run:(i + 1) * run]) for i in range(numel(x.shape[d] for d in kept))]
        shape = tuple(1 if d in axes else size for d, size in enumerate(x.shape))
        return Buffer.contiguous(finish(out, x.dtype), shape, x.dtype)

    # ---- movement: views where strides can express the result, else a copy -------------------
    def reshape(self, x, shape):
        if not is_contiguous(x):
            x = Buffer.contiguous(values(x), x.shape, x.dtype)  # copy into row-major order
        return x.view(shape, row_major_strides(shape), x.offset)

    def permute(self, x, order):
        shape = tuple(x.shape[d] for d in order)
        return x.view(shape, tuple(x.strides[d] for d in order), x.offset)

    def expand(self, x, shape):
        # a grown dim gets stride 0: every index along it reads the one element there is
        strides = tuple(0 if old == 1 and new != 1 else stride
                        for old, new, stride in zip(x.shape, shape, x.strides))
        return x.view(shape, strides, x.offset)

    def pad(self, x, padding, value):
        # a new buffer full of `value`; then write x through a SHRINK view of its interior
        shape = tuple(before + size + after for size, (before, after) in zip(x.shape, padding))
        out = Buffer.contiguous(finish([cast_value(value, x.dtype)], x.dtype) * numel(shape),
                                shape, x.dtype)
        interior = self.shrink(out, tuple((before, before + size)
                                          for size, (before, _) in zip(x.shape, padding)))
        for position, element in zip(positions(interior), values(x)):
            out.storage[position] = element
        return out

    def shrink(self, x, bounds):
        offset = x.offset + sum(start * stride for (start, _), stride in zip(bounds, x.strides))
        return x.view(tuple(end - start for start, end in bounds), x.strides, offset)

    def flip(self, x, axes):
        # start at the last element of each flipped dim and walk backwards: a negative stride
        strides, offset = list(x.strides), x.offset
        for axis in axes:
            offset += max(x.shape[axis] - 1, 0) * strides[axis]
            strides[axis] = -strides[axis]
        return x.view(x.shape, tuple(strides), offset)
