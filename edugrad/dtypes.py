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
float16 = DType("float16", 2, FLOAT, 0)
bfloat16 = DType("bfloat16", 2, FLOAT, 0)  # same rank as float16: the two promote to float32
float32 = DType("float32", 4, FLOAT, 1)
float64 = DType("float64", 8, FLOAT, 2)

# Half precision: what a backend really computes in.
#   float16   NumPy ("cpu") and CuPy ("cuda") hold IEEE half floats and compute each primitive
#             in float16 (NumPy computes some ufuncs, exp and log among them, in float32
#             internally and rounds the result to float16; sums accumulate in float16 as
#             well, unlike PyTorch, which accumulates half sums in float32). The pure-Python
#             backend computes in double and rounds every result to float16.
#   bfloat16  (8 exponent bits like float32, 7 stored mantissa bits.) NumPy has no bfloat16
#             type, so the NumPy backend ("cpu") emulates it: float32 buffers whose values are
#             always bfloat16 numbers, each primitive computed in float32 and its result
#             rounded to bfloat16 (to nearest, ties to even). That is what PyTorch does on the
#             CPU op by op (a sum or matmul accumulates in float32, rounded once at the end),
#             so results match its bfloat16 ones where an edugrad op is one primitive; ops
#             composed of several primitives (mean = sum, then divide) round after each, and
#             may differ from PyTorch's in the last bit (1/256 relative). It costs float32's
#             memory and time plus a rounding pass. Host arrays (.numpy(), .tolist()) hold the
#             values as float32, exactly (PyTorch's .numpy() refuses bfloat16). CuPy ("cuda")
#             and the pure-Python backend refuse bfloat16 with a TypeError that says so.
ALL = (bool_, int32, int64, float16, bfloat16, float32, float64)
HOST_NAME = {"bfloat16": "float32"}  # the NumPy dtype of host arrays where NumPy lacks one
BY_NAME = {dtype.name: dtype for dtype in ALL}
BY_NAME.update({"float": float32, "double": float64, "long": int64, "int": int32,
                "half": float16})

DEFAULT_FLOAT = float32  # what a Python float becomes: set_default_dtype changes it
DEFAULT_INT = int64  # what a Python int becomes


def get_default_dtype() -> DType:
    """The dtype of Python floats and of float factories given no dtype (float32 at start)."""
    return DEFAULT_FLOAT


def set_default_dtype(dtype) -> None:
    """Make Python floats and float factories use `dtype` (float16, float32 or float64), as
    torch.set_default_dtype. Process-wide, like PyTorch's; read wherever a float needs a dtype."""
    global DEFAULT_FLOAT
    dtype = from_name(dtype)
    if not dtype.is_floating_point or dtype is bfloat16:
        raise TypeError(f"set_default_dtype: only float16, float32 and float64 can be the "
                        f"default, got {dtype.name}")
    DEFAULT_FLOAT = dtype


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
    if a.rank == b.rank and a.category == b.category and a is not b:
        return float32  # float16 with bfloat16: neither holds the other, float32 holds both
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
