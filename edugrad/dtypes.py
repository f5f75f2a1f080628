"""Data types and PyTorch's type-promotion rules.

Layer: primitives (bottom). Imports nothing from edugrad.

A DType is a name and a category. Backends map each DType to their own element type
(`numpy.float32`, a Python float, ...); above the backend line only DTypes are used.
"""

from __future__ import annotations


class DType:
    """An element type: `edugrad.float32`, `edugrad.int64`, ..."""

    __slots__ = ("name", "itemsize", "category", "rank", "is_floating_point")

    # category orders the kinds of number for promotion: bool < integer < floating
    def __init__(self, name: str, itemsize: int, category: int, rank: int) -> None:
        self.name = name
        self.itemsize = itemsize
        self.category = category
        self.rank = rank  # order inside a category: float32 < float64
        # a plain attribute, not a property: it is read on the hot path of many ops
        self.is_floating_point = category == FLOAT

    def __repr__(self) -> str:
        return f"edugrad.{self.name}"

    def __reduce__(self):  # pickle and copy by name, so identity comparisons keep working
        return self.name


BOOL, INT, FLOAT = 0, 1, 2

bool_ = DType("bool", 1, BOOL, 0)
int32 = DType("int32", 4, INT, 0)
int64 = DType("int64", 8, INT, 1)
float32 = DType("float32", 4, FLOAT, 0)
float64 = DType("float64", 8, FLOAT, 1)

ALL = (bool_, int32, int64, float32, float64)
BY_NAME = {dtype.name: dtype for dtype in ALL}
BY_NAME.update({"float": float32, "double": float64, "long": int64, "int": int32})

DEFAULT_FLOAT = float32  # what a Python float becomes
DEFAULT_INT = int64  # what a Python int becomes


def from_name(name) -> DType:
    """A DType from itself, its name ("float32"), or anything whose str() is such a name."""
    if isinstance(name, DType):
        return name
    key = str(name).replace("torch.", "").replace("edugrad.", "")
    if key not in BY_NAME:
        raise TypeError(f"unknown dtype {name!r}; edugrad has {', '.join(d.name for d in ALL)}")
    return BY_NAME[key]


def of_python_scalar(value) -> DType:
    """The dtype PyTorch gives a Python scalar: bool, int64 or float32."""
    if isinstance(value, bool):
        return bool_
    if isinstance(value, int):
        return DEFAULT_INT
    return DEFAULT_FLOAT


def _higher(a: DType, b: DType) -> DType:
    return a if (a.category, a.rank) >= (b.category, b.rank) else b


def result_type(*operands) -> DType:
    """PyTorch's promotion: the dtype a binary op between these operands computes in.

    An operand is a (dtype, ndim) pair or a Python scalar. Tensors with dims decide; a 0-dim
    tensor or a Python scalar only matters when it is of a higher category (int + float):
    `int64 tensor + 1.5` is float32, `float32 tensor + float64 0-dim tensor` stays float32.
    """
    dims, zero_dims, scalars = None, None, None
    for operand in operands:
        if isinstance(operand, tuple):
            dtype, ndim = operand
            if ndim > 0:
                dims = dtype if dims is None else _higher(dims, dtype)
            else:
                zero_dims = dtype if zero_dims is None else _higher(zero_dims, dtype)
        else:
            dtype = of_python_scalar(operand)
            scalars = dtype if scalars is None else _higher(scalars, dtype)
    result = None
    for group in (dims, zero_dims, scalars):
        if group is None:
            continue
        if result is None:
            result = group
        elif group.category > result.category:  # a 0-dim or scalar float over int tensors
            result = group
    return result
