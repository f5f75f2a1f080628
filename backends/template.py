"""Your own backend: the exercise. Every required primitive is here as a stub; fill them in.

Layer: backends. Imports edugrad.backend and edugrad.dtypes; use whatever array library you
like underneath, or none (python_backend.py is one finished answer that uses plain lists).

How to work:

1. Copy this file somewhere, say `my_backend.py`, and run the checker on it:

       python -m edugrad.checking.check my_backend.py:MyBackend

   It prints one line per primitive: PASS, WRONG (with the first failing case, expected vs
   got) or NOT IMPLEMENTED, and exits non-zero until everything passes.
2. Implement the methods in the order they appear below: the checker builds its inputs with
   FROM_HOST and reads results with TO_HOST, so those come first; then elementwise ops, then
   reductions, then movement ops. The spec of each primitive is in edugrad/ops.py (`Op.ADD`).
3. When every line says PASS, use it: `edugrad.register_backend("mine", MyBackend)` and
   `edugrad.ones(3, device="mine")`. Everything in edugrad, autograd and nn included, runs on
   these 26 methods, because the layer above composes matmul, convolution windows,
   indexing and the activations (erf, tanh, sigmoid, gelu and its gradient) from them.

A buffer is whatever you like, as long as it has a `.shape` tuple. The simplest start: a class
holding a flat list of values in row-major order, the shape and the dtype. (The pure-Python
backend, python_backend.py, adds strides and an offset so that PERMUTE, EXPAND, SHRINK and FLIP
need not copy.)

You never have to check arguments: TensorData hands every method canonical ones (equal shapes
and dtypes for binary ops, sorted non-negative axes, ...). `dtype` arguments are edugrad DTypes:
compare with `dtype is dtypes.float32`, or use `dtype.is_floating_point` and `dtype.name`.
"""

from __future__ import annotations

from edugrad import dtypes  # noqa: F401  (you will want it: dtypes.float32, dtypes.bool_, ...)
from edugrad.backend import Backend


class MyBackend(Backend):
    name = "mybackend"

    # ---- 1. creation and host transfer: the checker needs these to test anything else ----------
    def from_host(self, array):
        """Spec: edugrad/ops.py, Op.FROM_HOST. `array` is a C-contiguous NumPy array; without
        NumPy, read `array.shape`, `array.dtype.name` and `array.ravel().tolist()`."""
        raise NotImplementedError(
            "not implemented yet: FROM_HOST (load, shape of the host array) "
            "- see edugrad/ops.py, Op.FROM_HOST")

    def to_host(self, x):
        """Spec: edugrad/ops.py, Op.TO_HOST. Return x's values as a flat list, row-major."""
        raise NotImplementedError(
            "not implemented yet: TO_HOST (load, flat row-major values) "
            "- see edugrad/ops.py, Op.TO_HOST")

    def full(self, shape, value, dtype):
        """Spec: edugrad/ops.py, Op.FULL. Convert `value` to dtype first (as CAST would), then
        repeat it; shape () holds one element and (0, 3) holds none."""
        raise NotImplementedError(
            "not implemented yet: FULL (load, given shape) - see edugrad/ops.py, Op.FULL")

    def seed(self, seed):
        """Reset the random generator behind RAND (random.Random(seed) is enough)."""
        raise NotImplementedError(
            "not implemented yet: seed (load, part of RAND) - see edugrad/ops.py, Op.RAND")

    def rand(self, shape, dtype):
        """Spec: edugrad/ops.py, Op.RAND. Values in [0, 1): for float32, beware of rounding a
        double just below 1 up to 1.0."""
        raise NotImplementedError(
            "not implemented yet: RAND (load, given shape) - see edugrad/ops.py, Op.RAND")

    # ---- 2. elementwise: one output element from the elements at the same index ----------------
    def neg(self, x):
        """Spec: edugrad/ops.py, Op.NEG. Start here: the simplest loop over every element."""
        raise NotImplementedError(
            "not implemented yet: NEG (unary, same shape) - see edugrad/ops.py, Op.NEG")

    def exp(self, x):
        """Spec: edugrad/ops.py, Op.EXP. math.exp raises OverflowError where the spec says inf."""
        raise NotImplementedError(
            "not implemented yet: EXP (unary, same shape) - see edugrad/ops.py, Op.EXP")

    def log(self, x):
        """Spec: edugrad/ops.py, Op.LOG. math.log raises ValueError for 0 and negatives."""
        raise NotImplementedError(
            "not implemented yet: LOG (unary, same shape) - see edugrad/ops.py, Op.LOG")

    def sin(self, x):
        """Spec: edugrad/ops.py, Op.SIN. sin(inf) is nan."""
        raise NotImplementedError(
            "not implemented yet: SIN (unary, same shape) - see edugrad/ops.py, Op.SIN")

    def sqrt(self, x):
        """Spec: edugrad/ops.py, Op.SQRT. sqrt(negative) is nan."""
        raise NotImplementedError(
            "not implemented yet: SQRT (unary, same shape) - see edugrad/ops.py, Op.SQRT")

    def cast(self, x, dtype):
        """Spec: edugrad/ops.py, Op.CAST. int() truncates toward zero; bool is `x != 0`."""
        raise NotImplementedError(
            "not implemented yet: CAST (unary, same shape) - see edugrad/ops.py, Op.CAST")

    def add(self, x, y):
        """Spec: edugrad/ops.py, Op.ADD. Shapes are equal: pair the elements up, no broadcasting."""
        raise NotImplementedError(
            "not implemented yet: ADD (binary, equal shapes) - see edugrad/ops.py, Op.ADD")

    def sub(self, x, y):
        """Spec: edugrad/ops.py, Op.SUB."""
        raise NotImplementedError(
            "not implemented yet: SUB (binary, equal shapes) - see edugrad/ops.py, Op.SUB")

    def mul(self, x, y):
        """Spec: edugrad/ops.py, Op.MUL."""
        raise NotImplementedError(
            "not implemented yet: MUL (binary, equal shapes) - see edugrad/ops.py, Op.MUL")

    def div(self, x, y):
        """Spec: edugrad/ops.py, Op.DIV. Python raises ZeroDivisionError where IEEE gives
        +-inf (nan for 0/0); the sign of a zero divisor counts: 1 / -0.0 is -inf."""
        raise NotImplementedError(
            "not implemented yet: DIV (binary, equal shapes) - see edugrad/ops.py, Op.DIV")

    def maximum(self, x, y):
        """Spec: edugrad/ops.py, Op.MAXIMUM. Python's max(a, b) does not always return nan."""
        raise NotImplementedError(
            "not implemented yet: MAXIMUM (binary, equal shapes) - see edugrad/ops.py, Op.MAXIMUM")

    def cmplt(self, x, y):
        """Spec: edugrad/ops.py, Op.CMPLT. The result is a bool buffer, whatever x's dtype."""
        raise NotImplementedError(
            "not implemented yet: CMPLT (binary, equal shapes) - see edugrad/ops.py, Op.CMPLT")

    def cmpeq(self, x, y):
        """Spec: edugrad/ops.py, Op.CMPEQ. nan == nan is False."""
        raise NotImplementedError(
            "not implemented yet: CMPEQ (binary, equal shapes) - see edugrad/ops.py, Op.CMPEQ")

    def where(self, cond, x, y):
        """Spec: edugrad/ops.py, Op.WHERE. The result has x's dtype, not cond's."""
        raise NotImplementedError(
            "not implemented yet: WHERE (ternary, equal shapes) - see edugrad/ops.py, Op.WHERE")

    # ---- 3. reductions: axes stay in the result with size 1 --------------------------------------
    def sum(self, x, axes):
        """Spec: edugrad/ops.py, Op.SUM. Shape (2, 3, 4) over axes (0, 2) gives (1, 3, 1); work
        out, for each input index, which output index it adds into."""
        raise NotImplementedError(
            "not implemented yet: SUM (reduce, axes kept as size 1) - see edugrad/ops.py, Op.SUM")

    def max(self, x, axes):
        """Spec: edugrad/ops.py, Op.MAX. The same walk as SUM with another way to combine."""
        raise NotImplementedError(
            "not implemented yet: MAX (reduce, axes kept as size 1) - see edugrad/ops.py, Op.MAX")

    # ---- 4. movement: the same values, rearranged ------------------------------------------------
    def reshape(self, x, shape):
        """Spec: edugrad/ops.py, Op.RESHAPE. With a flat row-major list this is nearly free."""
        raise NotImplementedError(
            "not implemented yet: RESHAPE (movement, same numel) - see edugrad/ops.py, Op.RESHAPE")

    def permute(self, x, order):
        """Spec: edugrad/ops.py, Op.PERMUTE. Result index j is x index i with i[order[d]] = j[d]."""
        raise NotImplementedError(
            "not implemented yet: PERMUTE (movement, dims reordered) "
            "- see edugrad/ops.py, Op.PERMUTE")

    def expand(self, x, shape):
        """Spec: edugrad/ops.py, Op.EXPAND. A grown dim always reads x at index 0."""
        raise NotImplementedError(
            "not implemented yet: EXPAND (movement, size-1 dims grown) "
            "- see edugrad/ops.py, Op.EXPAND")

    def pad(self, x, padding, value):
        """Spec: edugrad/ops.py, Op.PAD. Result index j reads x at j - before, where that is
        inside x, else it is `value`."""
        raise NotImplementedError(
            "not implemented yet: PAD (movement, dims grow) - see edugrad/ops.py, Op.PAD")

    def shrink(self, x, bounds):
        """Spec: edugrad/ops.py, Op.SHRINK. Result index j reads x at j + start."""
        raise NotImplementedError(
            "not implemented yet: SHRINK (movement, dims cut) - see edugrad/ops.py, Op.SHRINK")

    def flip(self, x, axes):
        """Spec: edugrad/ops.py, Op.FLIP. Along a flipped dim of size n, j reads n - 1 - j."""
        raise NotImplementedError(
            "not implemented yet: FLIP (movement, same shape) - see edugrad/ops.py, Op.FLIP")
