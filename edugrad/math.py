"""Tensor math: operators, elementwise functions, reductions, matmul, softmax.

Layer: Tensor (top). A mixin of Tensor; imports edugrad.function and edugrad.dtypes, never NumPy.

Two rules make every gradient here right by construction:
- Broadcasting is explicit: before a binary Function runs, both inputs are EXPANDed to one
  shape (and CAST to one dtype). Expand's backward sums the gradient back, so no Function has
  to know about broadcasting.
- Whatever can be a composition is one: `a - b` has its own primitive, but `mean` is
  `sum / n`, `softmax` is `exp(x - max) / sum`, `minimum(a, b)` is `-maximum(-a, -b)`.
"""

from __future__ import annotations

import math
import numbers
from collections import namedtuple

from edugrad import dtypes
from edugrad.data import TensorData
from edugrad.function import Erf, Erfc, Erfinv
from edugrad.function import (
    Add, Atan, Atan2, Cast, Ceil, Cos, Div, Exp, Expand, Expm1, Floor, FloorDivide, Fmod, Log, Log1p, LogSoftmax,
    LogSumExp,
    Matmul, Max, Maximum, Mul, Neg, Pow, PowTensor, Relu, Remainder, Reshape, Round, Sigmoid, Sin,
    Softmax, Sqrt, Sub, Sum, Tanh, Trunc, TruncDivide, Where, Xlogy,
)

MaxResult = namedtuple("MaxResult", ["values", "indices"])  # torch.return_types.max
MinMaxResult = namedtuple("MinMaxResult", ["min", "max"])  # torch.return_types.aminmax


def broadcast_shape(a: tuple, b: tuple, op: str) -> tuple:
    """NumPy/PyTorch broadcasting: align on the right; sizes equal or one of them 1."""
    result = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x != y and x != 1 and y != 1:
            raise RuntimeError(
                f"{op}: shapes {tuple(a)} and {tuple(b)} cannot be broadcast together "
                f"(dim {-i}: {x} vs {y})"
            )
        result.append(y if x == 1 else x)
    return tuple(reversed(result))


class MathMixin:
    __slots__ = ()

    # ---- turning operands into tensors of one dtype, one device, one shape -----------------------
    def _constant(self, value, dtype, shape=()):
        """A Python number as a tensor of `shape` (a broadcast view: no memory per element)."""
        return self._result_class._make(TensorData.constant(value, shape, dtype, self._data.backend), None)

    def _operands(self, other, op: str, reverse: bool = False, dtype=None):
        """(x, y): same dtype (PyTorch's promotion, or `dtype`) and same shape. Devices are
        checked where every op passes, in Function.apply."""
        if not isinstance(other, MathMixin):
            if not isinstance(other, (int, float, bool)):
                other = self._from_value(other, op)
                return self._operands(other, op, reverse, dtype)
            return self._scalar_operands(other, reverse, dtype)
        if dtype is None:
            dtype = self.dtype if other.dtype is self.dtype else dtypes.result_type(
                (self.dtype, self.ndim), (other.dtype, other.ndim))
        x, y = self, other
        if x.dtype is not dtype:
            x = Cast.apply(x, dtype=dtype)
        if y.dtype is not dtype:
            y = Cast.apply(y, dtype=dtype)
        if x._data.shape != y._data.shape:
            shape = broadcast_shape(x._data.shape, y._data.shape, op)
            x, y = x._broadcast_to(shape), y._broadcast_to(shape)
        return (y, x) if reverse else (x, y)

    def _scalar_operands(self, value, reverse: bool, dtype):
        """_operands with a Python number: it becomes a constant of this tensor's shape and of
        the common dtype, so only this tensor may need a CAST, and nothing is left to broadcast."""
        if dtype is None:
            dtype = self._data.dtype
            # a number never promotes a float tensor (x * 2 stays float16), so the promotion
            # table is read only for int and bool tensors (int64 tensor * 0.5 is float32)
            if not dtype.is_floating_point:
                dtype = dtypes.result_type((dtype, self.ndim), value)
        x = self if self._data.dtype is dtype else Cast.apply(self, dtype=dtype)
        y = self._constant(value, dtype, self._data.shape)  # the stored tuple: hot path
        return (y, x) if reverse else (x, y)

    def _from_value(self, value, op: str):
        try:
            return self._from_data(value, device=self.device)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{op}: unsupported operand {value!r:.40}: {error}") from None

    def _broadcast_to(self, shape: tuple):
        if self._data.shape == shape:
            return self
        x = self
        if x.ndim < len(shape):
            x = Reshape.apply(x, shape=(1,) * (len(shape) - x.ndim) + x._data.shape)
        return Expand.apply(x, shape=shape)

    def _binary(self, function, other, op: str, reverse: bool = False):
        if isinstance(other, MathMixin):  # the common case, checked without any conversion
            mine, theirs = self._data, other._data
            if (mine.shape == theirs.shape and mine.dtype is theirs.dtype
                    and mine.backend is theirs.backend):
                return function.apply(other, self) if reverse else function.apply(self, other)
        elif getattr(other, "is_sparse", False):  # dense + sparse: the sparse tensor's __radd__
            return NotImplemented  # (edugrad/sparse.py; tested by name, not imported: a cycle)
        return function.apply(*self._operands(other, op, reverse))

    # ---- arithmetic operators ---------------------------------------------------------------------
    def __add__(self, other):
        return self._binary(Add, other, "add")

    def __radd__(self, other):
        return self._binary(Add, other, "add", reverse=True)

    def __sub__(self, other):
        return self._binary(Sub, other, "sub")

    def __rsub__(self, other):
        return self._binary(Sub, other, "sub", reverse=True)

    def __mul__(self, other):
        return self._binary(Mul, other, "mul")

    def __rmul__(self, other):
        return self._binary(Mul, other, "mul", reverse=True)

    def __truediv__(self, other):
        return self._divide(other, reverse=False)

    def __rtruediv__(self, other):
        return self._divide(other, reverse=True)

    def _divide(self, other, reverse: bool):
        if self.dtype.is_floating_point and (not isinstance(other, MathMixin)
                                             or other.dtype.is_floating_point):
            return self._binary(Div, other, "div", reverse)
        # true division of integers computes in the default float dtype, as PyTorch does
        x, y = self._operands(other, "div", reverse)
        if not x.dtype.is_floating_point:
            x, y = x.to(dtypes.DEFAULT_FLOAT), y.to(dtypes.DEFAULT_FLOAT)
        return Div.apply(x, y)

    def __neg__(self):
        return Neg.apply(self)

    def __pos__(self):
        return self

    def __pow__(self, exponent):
        return self.pow(exponent)

    def __rpow__(self, base):
        if not isinstance(base, (int, float)):
            return self._from_value(base, "pow").pow(self)
        dtype = dtypes.result_type((self.dtype, self.ndim), base)
        return self._constant(base, dtype, self.shape).pow(self)  # a constant tensor ** self

    def __floordiv__(self, other):
        return self.floor_divide(other)

    def __rfloordiv__(self, other):
        return self._division(FloorDivide, other, "floor_divide", reverse=True)

    def __mod__(self, other):
        return self.remainder(other)

    def __rmod__(self, other):
        return self._division(Remainder, other, "remainder", reverse=True)

    def __matmul__(self, other):
        return self.matmul(other)

    def __rmatmul__(self, other):
        return self._from_value(other, "matmul").matmul(self)

    def add(self, other, alpha=1):
        """self + alpha * other (torch.add)."""
        return self + (other if _is_one(alpha) else self._scaled(other, alpha, "add"))

    def sub(self, other, alpha=1):
        """self - alpha * other (torch.sub)."""
        return self - (other if _is_one(alpha) else self._scaled(other, alpha, "sub"))

    def mul(self, other):
        return self * other

    def div(self, other, *, rounding_mode=None):
        """self / other; rounding_mode "trunc" rounds the quotient toward 0, "floor" toward
        -inf, and both keep integer tensors integer (true division of integers is float)."""
        if rounding_mode is None:
            return self._divide(other, reverse=False)
        if rounding_mode == "floor":
            return self._division(FloorDivide, other, "div")
        if rounding_mode != "trunc":
            raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', "
                             f"got {rounding_mode!r}")
        x, y = self._operands(other, "div")
        if x.dtype.is_floating_point:
            return TruncDivide.apply(x, y)  # as PyTorch: trunc of the rounded quotient
        remainder = x._division(Fmod, y, "div")  # refuses bool and integer division by zero
        return FloorDivide.apply(x - remainder, y)  # x - fmod(x, y) is a multiple of y: exact

    multiply = mul
    subtract = sub
    divide = div

    def true_divide(self, other):
        return self / other

    def _scaled(self, other, alpha, op: str):
        """alpha * other for add/sub, refusing the alphas PyTorch refuses: a float alpha
        would silently turn an integer sum into a float one."""
        tensor = isinstance(other, MathMixin)
        if tensor and other.dtype is self.dtype:
            result = self.dtype  # nothing to promote (the common case, an optimizer's add_)
        else:
            theirs = (other.dtype, other.ndim) if tensor else other
            result = dtypes.result_type((self.dtype, self.ndim), theirs)
        if isinstance(alpha, bool) and result is not dtypes.bool_:
            raise RuntimeError(f"{op}: a bool alpha is only supported for bool results, "
                               f"not {result.name}")
        if isinstance(alpha, float) and not result.is_floating_point:
            raise RuntimeError(f"{op}: for {result.name} tensors alpha must not be a float "
                               f"(got alpha={alpha})")
        if tensor and other.dtype is not result:
            other = other.to(result)  # int32 + 2 * bool is int32: the scaling must not promote
        return other * (bool(alpha) if result is dtypes.bool_ else alpha)  # bool stays bool

    def pow(self, exponent):
        """self ** exponent, exact for whole exponents (see function.Pow and PowTensor)."""
        if not isinstance(exponent, (int, float)):
            x, y = self._operands(exponent, "pow")
            if x.dtype is dtypes.bool_:
                raise NotImplementedError("pow: not implemented for bool tensors (convert with "
                                          ".long() or .float() first)")
            return PowTensor.apply(x, y)
        dtype = dtypes.result_type((self.dtype, self.ndim), exponent)
        if not dtype.is_floating_point and exponent < 0:
            raise RuntimeError(f"pow: integers to negative integer powers are not allowed "
                               f"({self.dtype.name} tensor ** {exponent}); use a float tensor")
        return Pow.apply(self if self.dtype is dtype else Cast.apply(self, dtype=dtype),
                         exponent=exponent)

    # ---- division with remainder: PyTorch's sign rules -------------------------------------------
    def floor_divide(self, other):
        """self // other, rounded toward -inf (Python's and PyTorch's rule)."""
        return self._division(FloorDivide, other, "floor_divide")

    def remainder(self, other):
        """self % other, with the sign of other: self - other * floor(self / other)."""
        return self._division(Remainder, other, "remainder")

    def fmod(self, other):
        """C's fmod: the remainder with the sign of self, self - other * trunc(self / other)."""
        return self._division(Fmod, other, "fmod")

    def _division(self, function, other, op: str, reverse: bool = False):
        x, y = self._operands(other, op, reverse)
        if x.dtype is dtypes.bool_:
            raise NotImplementedError(f"{op}: not implemented for bool tensors")
        if not x.dtype.is_floating_point and (y == 0).any():  # reads one bool from the device
            raise RuntimeError(f"{op}: ZeroDivisionError (integer division by zero)")
        return function.apply(x, y)

    # ---- rounding: steps, gradient 0 -------------------------------------------------------------
    def floor(self):
        return Floor.apply(self) if self.dtype.is_floating_point else self._integer_copy("floor")

    def ceil(self):
        return Ceil.apply(self) if self.dtype.is_floating_point else self._integer_copy("ceil")

    def trunc(self):
        return Trunc.apply(self) if self.dtype.is_floating_point else self._integer_copy("trunc")

    def round(self, decimals: int = 0):
        """Round half to even, as PyTorch; `decimals` scales by 10**decimals around it."""
        if not self.dtype.is_floating_point:
            if decimals:
                raise NotImplementedError(f"round: decimals are not implemented for "
                                          f"{self.dtype.name} tensors")
            return self._integer_copy("round")
        if decimals > 0:
            return Round.apply(self * 10**decimals) / 10**decimals
        if decimals < 0:
            return Round.apply(self / 10**-decimals) * 10**-decimals
        return Round.apply(self)

    def _integer_copy(self, op: str):
        if self.dtype is dtypes.bool_:
            raise NotImplementedError(f"{op}: not implemented for bool tensors")
        return Reshape.apply(self, shape=self.shape)  # whole numbers already: a copy, as PyTorch

    # ---- comparisons: bool results, no gradient -----------------------------------------------------
    def _compare(self, other, method: str, op: str, reverse: bool = False):
        x, y = self._operands(other, op, reverse)
        return self._result_class._make(getattr(x._data, method)(y._data), None)

    def __lt__(self, other):
        return self._compare(other, "cmplt", "lt")

    def __gt__(self, other):  # x > y is y < x
        return self._compare(other, "cmplt", "gt", reverse=True)

    def __eq__(self, other):
        if other is None or other is Ellipsis:  # `t == None` is False, as in PyTorch
            return False
        return self._compare(other, "cmpeq", "eq")

    def __le__(self, other):  # not ~(x > y): every comparison with NaN is False, this one too
        x, y = self._operands(other, "le")
        return self._result_class._make(_or_data(x._data.cmplt(y._data), x._data.cmpeq(y._data)),
                                        None)

    def __ge__(self, other):
        x, y = self._operands(other, "ge")
        return self._result_class._make(_or_data(y._data.cmplt(x._data), x._data.cmpeq(y._data)),
                                        None)

    def __ne__(self, other):
        return ~(self == other)

    def __invert__(self):
        if self.dtype is not dtypes.bool_:
            raise TypeError(f"invert: ~ is defined for bool tensors, not {self.dtype.name}")
        return self._result_class._make(self._data.cmpeq(self._data.full_like(False)), None)

    def __and__(self, other):
        x, y = self._bool_operands(other, "and")
        return self._result_class._make(x._data.where(y._data, y._data.full_like(False)), None)

    def __or__(self, other):
        x, y = self._bool_operands(other, "or")
        return self._result_class._make(x._data.maximum(y._data), None)

    __rand__, __ror__ = __and__, __or__  # both commute

    def _bool_operands(self, other, op: str):
        """& and | of bools only: on integers PyTorch's are bitwise, which where/max are not
        (-2 | False is -2, not max(-2, 0) = 0), so they are refused rather than wrong."""
        x, y = self._operands(other, op)
        if x.dtype is not dtypes.bool_:
            theirs = other.dtype.name if isinstance(other, MathMixin) else type(other).__name__
            raise TypeError(f"{op}: & and | are implemented for bool operands only, got "
                            f"{self.dtype.name} and {theirs} (bitwise {op} is not)")
        return x, y

    lt, gt, le, ge, eq, ne = __lt__, __gt__, __le__, __ge__, __eq__, __ne__

    def logical_not(self):
        """True where self is zero (False for bools), for any dtype, as PyTorch."""
        return ~self if self.dtype is dtypes.bool_ else self == 0

    def isnan(self):
        return self != self

    # ---- elementwise functions ----------------------------------------------------------------------
    def _float(self):
        return self if self.dtype.is_floating_point else self.to(dtypes.DEFAULT_FLOAT)

    def exp(self):
        return Exp.apply(self._float())

    def log(self):
        return Log.apply(self._float())

    def sqrt(self):
        return Sqrt.apply(self._float())

    def rsqrt(self):
        return 1 / self.sqrt()

    def sin(self):
        return Sin.apply(self._float())

    def cos(self):
        return Cos.apply(self._float())

    def tanh(self):
        return Tanh.apply(self._float())

    def sigmoid(self):
        return Sigmoid.apply(self._float())

    def relu(self):
        return Relu.apply(self)

    def neg(self):
        return -self

    def reciprocal(self):
        return 1 / self

    negative = neg

    def positive(self):
        """+self: self itself, as PyTorch (which refuses bool tensors here)."""
        if self.dtype is dtypes.bool_:
            raise RuntimeError("positive: the + operator on a bool tensor is not supported")
        return self

    def square(self):
        if self.dtype is dtypes.bool_:  # PyTorch squares bools as pow(x, 2): an int64 result
            return self.long() * self.long()
        return self * self

    def abs(self):
        # ties at 0 split the gradient: +1/2 - 1/2 = 0. max(0.0, -0.0) may be either zero;
        # adding 0 makes it +0.0, as abs always is (-0.0 + 0 == +0.0 in IEEE arithmetic)
        return self.maximum(-self) + 0

    def sign(self):
        if self.dtype is dtypes.bool_:  # True is positive, False is zero: sign is the identity
            return self.clone()
        return (self > 0).to(self.dtype) - (self < 0).to(self.dtype)

    def maximum(self, other):
        return self._binary(Maximum, other, "maximum")

    def minimum(self, other):
        if self.dtype is dtypes.bool_ or getattr(other, "dtype", None) is dtypes.bool_:
            x, y = self._operands(other, "minimum")  # no minus for bools: min is and
            if x.dtype is dtypes.bool_:
                return x & y
            return -((-x).maximum(-y))
        return -((-self).maximum(-other))  # min(a, b) = -max(-a, -b)

    def clamp(self, min=None, max=None):
        """Gradient 1 where min <= x <= max (inclusive, as PyTorch), else 0; NaN stays NaN
        (written as 'replace where below min', since NaN < min is false)."""
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        out = self
        if min is not None:
            out = _clamp_side(out, min, out < min)
        if max is not None:
            out = _clamp_side(out, max, out > max)
        return out

    clip = clamp

    def where(self, condition, other):
        """where(condition, self, other): PyTorch's Tensor.where."""
        return where(condition, self, other)

    # ---- more elementwise functions (issue 10): compositions, and Functions where one is wrong ----
    def log1p(self):
        return Log1p.apply(self._float())  # log(1 + x) would lose tiny x: see function.Log1p

    def expm1(self):
        return Expm1.apply(self._float())

    def log2(self):
        return self.log() * (1 / math.log(2))

    def log10(self):
        return self.log() * (1 / math.log(10))

    # ---- the error function family -----------------------------------------------------
    def erf(self):
        return Erf.apply(self._float())  # one primitive, ERF (composed where a backend lacks it)

    def erfc(self):
        return Erfc.apply(self._float())  # 1 - erf(x) would be 0 where erfc is 1e-30: Erfc

    def erfinv(self):
        return Erfinv.apply(self._float())

    def tan(self):
        x = self._float()
        return x.sin() / x.cos()

    def atan(self):
        return Atan.apply(self._float())  # no primitive: a rational function, see function.Atan

    arctan = atan

    def atan2(self, other):
        """The angle of the point (other, self): torch.atan2(input=y, other=x)."""
        y, x = self._operands(other, "atan2")
        if not y.dtype.is_floating_point:
            y, x = y.to(dtypes.DEFAULT_FLOAT), x.to(dtypes.DEFAULT_FLOAT)
        return Atan2.apply(y, x)

    arctan2 = atan2

    def sinh(self):
        """(e^x - e^-x) / 2: with expm1 for |x| < 1 (no cancellation for tiny x); beyond, with
        w = e^(|x|/2) as w/2 * w, which stays finite where e^x alone would overflow."""
        x = self._float()
        small = (x.expm1() - (-x).expm1()) * 0.5
        w = (x.abs() * 0.5).exp()
        large = (w * 0.5) * w - (0.5 / w) / w
        return where(x.abs() < 1, small, where(x < 0, -large, large))

    def cosh(self):
        x = self._float()
        w = (x.abs() * 0.5).exp()  # as sinh: e^|x| / 2 as w/2 * w, finite up to torch's limit
        return (w * 0.5) * w + (0.5 / w) / w

    def lerp(self, end, weight):
        """self + weight * (end - self), written as torch does for weight >= 0.5
        (end - (end - self) * (1 - weight)), so that weight 1 gives end exactly."""
        difference = end - self
        low = self + weight * difference
        high = end - difference * (1 - weight)
        if isinstance(weight, (int, float)):
            return low if abs(weight) < 0.5 else high
        return where(weight.abs() < 0.5, low, high)

    # ---- floating-point classes: bool results ---------------------------------------------------
    def isinf(self):
        if not self.dtype.is_floating_point:
            return self != self  # an integer is never infinite: all False, same shape
        return self.abs() == math.inf

    def isposinf(self):
        return self == math.inf if self.dtype.is_floating_point else self != self

    def isneginf(self):
        return self == -math.inf if self.dtype.is_floating_point else self != self

    def isfinite(self):
        if not self.dtype.is_floating_point:
            return self == self
        return (self - self) == 0  # inf - inf and nan - nan are nan; a finite x - x is 0

    def nan_to_num(self, nan: float = 0.0, posinf=None, neginf=None):
        """NaN -> nan, +inf -> posinf, -inf -> neginf (default: the dtype's largest and
        smallest finite values). The gradient passes where x was finite, as in PyTorch."""
        if not self.dtype.is_floating_point:
            return self.clone()  # no NaN or inf to replace; the dtype stays (bool too)
        largest = _LARGEST[self.dtype.name]
        out = where(self.isnan(), float(nan), self)
        out = where(self == math.inf, largest if posinf is None else float(posinf), out)
        return where(self == -math.inf, -largest if neginf is None else float(neginf), out)

    # ---- closeness ------------------------------------------------------------------------------
    def isclose(self, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
        """|self - other| <= atol + rtol * |other|, elementwise; equal infinities are close."""
        x, y = self._operands(other, "isclose")
        if x.dtype is dtypes.bool_:
            return x == y
        x, y = x.detach(), y.detach()
        close = x == y
        if x.dtype.is_floating_point or rtol or atol:
            x, y = (x, y) if x.dtype.is_floating_point else (x.double(), y.double())
            finite = x.isfinite() & y.isfinite()
            close = close | (finite & ((x - y).abs() <= atol + rtol * y.abs()))
        if equal_nan:
            close = close | (x.isnan() & y.isnan())
        return close

    def allclose(self, other, rtol: float = 1e-05, atol: float = 1e-08,
                 equal_nan: bool = False) -> bool:
        return bool(self.isclose(other, rtol, atol, equal_nan).all())

    def equal(self, other) -> bool:
        """True when both have the same shape and the same elements (torch.equal)."""
        if not isinstance(other, MathMixin):
            raise TypeError(f"equal: expected a tensor, got {type(other).__name__}")
        return tuple(self.shape) == tuple(other.shape) and bool((self == other).all())

    # ---- reductions -----------------------------------------------------------------------------------
    def _axes(self, dim, op: str) -> tuple:
        if dim is None:
            return tuple(range(self.ndim))
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        axes = tuple(sorted({self._dim(d, op) for d in dims}))
        return axes if self.ndim else ()  # a 0-d tensor takes dim 0 or -1, and has none to reduce

    def _dim(self, dim: int, op: str = "dim", extra: int = 0) -> int:
        ndim = self.ndim + extra
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise TypeError(f"{op}: dim must be an int, got {dim!r}")
        if not -max(ndim, 1) <= dim < max(ndim, 1):
            raise IndexError(
                f"{op}: dim {dim} is out of range for a tensor of {self.ndim} dims "
                f"(shape {self.shape})"
            )
        return dim % ndim if ndim else 0

    def sum(self, dim=None, keepdim: bool = False, dtype=None):
        x = self if dtype is None else self.to(dtype)
        if x.dtype is dtypes.bool_ or x.dtype is dtypes.int32:
            x = x.to(dtypes.int64)  # PyTorch sums bools and ints in int64
        axes = x._axes(dim, "sum")
        if not axes:
            return x + 0 if x.ndim else Reshape.apply(x, shape=())
        return Sum.apply(x, axes=axes, keepdim=keepdim)

    def mean(self, dim=None, keepdim: bool = False):
        if not self.dtype.is_floating_point:
            raise RuntimeError(f"mean: input dtype must be floating point, got {self.dtype.name}")
        axes = self._axes(dim, "mean")
        count = 1
        for axis in axes:
            count *= self.shape[axis]
        return self.sum(axes, keepdim) / count if count else self.sum(axes, keepdim) * math.nan

    def amax(self, dim=None, keepdim: bool = False):
        axes = self._axes(dim, "amax")
        for axis in axes:
            if self.shape[axis] == 0:
                raise RuntimeError(f"amax: cannot reduce over dim {axis} of size 0 "
                                   f"(shape {self.shape})")
        if not axes:
            return self.clone()  # a copy of the same dtype (self + 0 would make bools int64)
        return Max.apply(self, axes=axes, keepdim=keepdim)

    def amin(self, dim=None, keepdim: bool = False):
        if self.dtype is dtypes.bool_:  # no negative bools: min is not max of not
            return ~((~self).amax(dim, keepdim))
        return -((-self).amax(dim, keepdim))

    def max(self, dim=None, keepdim: bool = False):
        """max() is the largest element; max(dim) is (values, indices) as in PyTorch."""
        if isinstance(dim, MathMixin):
            return self.maximum(dim)
        if dim is None:
            return self.amax()
        if self.ndim == 0:  # one element: it is the maximum, at index 0
            self._dim(dim, "max")
            return MaxResult(Reshape.apply(self, shape=()), self.argmax(dim))
        indices = self.argmax(dim, keepdim=True)
        values = self.gather(dim, indices)  # the gradient goes to that one index, as PyTorch
        if not keepdim:
            values, indices = values.squeeze(dim), indices.squeeze(dim)
        return MaxResult(values, indices)

    def min(self, dim=None, keepdim: bool = False):
        if isinstance(dim, MathMixin):
            return self.minimum(dim)
        if dim is None:
            return self.amin()
        if self.dtype is dtypes.bool_:  # no negative bools: the min is the max of not
            values, indices = (~self).max(dim, keepdim)
            return MaxResult(~values, indices)
        values, indices = (-self).max(dim, keepdim)
        return MaxResult(-values, indices)

    def argmax(self, dim=None, keepdim: bool = False):
        """Index of the first maximum (NaN counts as the maximum, as in PyTorch)."""
        if dim is None:
            return self.reshape(-1).argmax(0)
        dim = self._dim(dim, "argmax")
        if self.ndim == 0:
            return self.new_zeros((), dtype=dtypes.int64)
        x = self.detach()
        size = x.shape[dim]
        hit = (x == x.amax(dim, keepdim=True)) | x.isnan()
        positions = self._result_class._make(
            TensorData.arange(size, dtypes.int64, x._data.backend), None
        ).reshape(*[size if d == dim else 1 for d in range(x.ndim)])
        candidates = positions.where(hit, size)  # not a maximum: an index past the end
        return candidates.amin(dim, keepdim)

    def argmin(self, dim=None, keepdim: bool = False):
        return (-self).argmax(dim, keepdim)

    def var(self, dim=None, unbiased: bool = True, keepdim: bool = False, correction=None):
        correction = (1 if unbiased else 0) if correction is None else correction
        axes = self._axes(dim, "var")
        count = 1
        for axis in axes:
            count *= self.shape[axis]
        centred = self - self.mean(axes, keepdim=True)
        return (centred * centred).sum(axes, keepdim) / max(count - correction, 0)

    def std(self, dim=None, unbiased: bool = True, keepdim: bool = False, correction=None):
        variance = self.var(dim, unbiased, keepdim, correction)
        # d sqrt(v)/dv is infinite at v = 0 (constant data); PyTorch gives gradient 0 there.
        # Only 0 is replaced: a nan variance (one element, unbiased) stays nan, as PyTorch's
        nonzero = variance != 0
        return variance.where(nonzero, 1).sqrt().where(nonzero, 0)

    def all(self, dim=None, keepdim: bool = False):
        return ~((~self.bool()).any(dim, keepdim))

    def any(self, dim=None, keepdim: bool = False):
        return self.bool().to(dtypes.int64).sum(dim, keepdim) > 0

    def prod(self, dim=None, keepdim: bool = False, dtype=None):
        """The product over `dim` (all elements when None), by pairwise multiplication: halves
        multiplied together log2(n) times. Built from MUL, its gradient is the product of the
        other elements even where some are zero, as PyTorch's."""
        x = self if dtype is None else self.to(dtype)
        if x.dtype is dtypes.bool_ or x.dtype is dtypes.int32:
            x = x.to(dtypes.int64)  # as PyTorch
        if dim is not None and not isinstance(dim, int):
            raise TypeError(f"prod: dim must be an int or None, got {dim!r}")
        axes = x._axes(dim, "prod")
        if not axes:
            return x + 0 if x.ndim else Reshape.apply(x, shape=())
        rest = [d for d in range(x.ndim) if d not in axes]
        count = 1
        for axis in axes:
            count *= x.shape[axis]
        flat = x.permute(*rest, *axes).reshape(*[x.shape[d] for d in rest], count)
        while flat.shape[-1] != 1:
            size = flat.shape[-1]
            if size % 2 or size == 0:  # pad with the neutral element 1 (an empty row: prod 1)
                flat = flat.pad(((0, 0),) * (flat.ndim - 1) + ((0, 1),), value=1)
                if size == 0:
                    continue
                size += 1
            half = size // 2
            flat = flat.narrow(-1, 0, half) * flat.narrow(-1, half, half)
        out = flat.squeeze(-1)
        if keepdim:
            out = out.reshape(tuple(1 if d in axes else s for d, s in enumerate(x.shape)))
        return out

    def logsumexp(self, dim, keepdim: bool = False):
        x = self._float()
        axes = x._axes(dim, "logsumexp")
        if any(x.shape[axis] == 0 for axis in axes):  # log of an empty sum: -inf, as PyTorch
            return x.exp().sum(axes, keepdim).log()
        return LogSumExp.apply(x, axes=axes, keepdim=keepdim)

    def softmax(self, dim: int):
        x = self._float()
        axis = x._dim(dim, "softmax")
        if x.numel() == 0:  # nothing to normalise (and no maximum to subtract)
            return x * 1
        return Softmax.apply(x, axis=axis) if x.ndim else x * 0 + 1

    def log_softmax(self, dim: int):
        x = self._float()
        axis = x._dim(dim, "log_softmax")
        if x.numel() == 0:  # nothing to normalise (and no maximum to subtract)
            return x * 1
        return LogSoftmax.apply(x, axis=axis) if x.ndim else x * 0

    # ---- matrix product -------------------------------------------------------------------------------
    def matmul(self, other):
        """1-D, 2-D and batched operands with broadcast batch dims, as torch.matmul."""
        if getattr(other, "is_sparse", False):  # dense @ sparse (edugrad/sparse.py)
            return other.__rmatmul__(self)
        if not isinstance(other, MathMixin):
            other = self._from_value(other, "matmul")
        if self.ndim == 0 or other.ndim == 0:
            raise RuntimeError(
                f"matmul: both arguments need at least 1 dim, got shapes {self.shape} and "
                f"{other.shape}"
            )
        x, y = self, other
        if x.shape[-1] != y.shape[-2 if y.ndim > 1 else 0]:
            raise RuntimeError(
                f"matmul: shapes {self.shape} and {other.shape} cannot be multiplied "
                f"({x.shape[-1]} != {y.shape[-2 if y.ndim > 1 else 0]})"
            )
        if x.dtype is not y.dtype:
            dtype = dtypes.result_type((x.dtype, x.ndim), (y.dtype, y.ndim))
            x, y = x.to(dtype), y.to(dtype)
        vector_left, vector_right = x.ndim == 1, y.ndim == 1
        if vector_left:
            x = x.unsqueeze(0)
        if vector_right:
            y = y.unsqueeze(-1)
        batch = broadcast_shape(x.shape[:-2], y.shape[:-2], "matmul")
        x = x._broadcast_to(batch + x.shape[-2:])
        y = y._broadcast_to(batch + y.shape[-2:])
        out = Matmul.apply(x, y)
        if vector_left:
            out = out.squeeze(-2)
        if vector_right:
            out = out.squeeze(-1)
        return out

    def dot(self, other):
        """The inner product of two 1-D tensors of one dtype (torch.dot is no matmul)."""
        if not isinstance(other, MathMixin):
            other = self._from_value(other, "dot")
        if self.ndim != 1 or other.ndim != 1:
            raise RuntimeError(f"dot: 1D tensors expected, but got shapes {self.shape} and "
                               f"{other.shape}")
        if self.dtype is not other.dtype:
            raise RuntimeError(f"dot: expected both vectors to have the same dtype, but found "
                               f"{self.dtype.name} and {other.dtype.name}")
        if not self.dtype.is_floating_point:  # MATMUL is for floats; sum keeps int64, so cast
            return (self * other).sum().to(self.dtype)
        return self.matmul(other)

    # ---- statistics that skip NaN, pairs of reductions, differences ----------------------
    def nansum(self, dim=None, keepdim: bool = False, dtype=None):
        """sum with NaN counted as 0 (gradient 0 there, 1 elsewhere)."""
        if not self.dtype.is_floating_point:
            return self.sum(dim, keepdim, dtype)
        return where(self.isnan(), 0.0, self).sum(dim, keepdim, dtype)

    def nanmean(self, dim=None, keepdim: bool = False, dtype=None):
        """mean of the elements that are not NaN (NaN where there are none)."""
        x = self if dtype is None else self.to(dtype)
        if not x.dtype.is_floating_point:
            raise RuntimeError(f"nanmean: input dtype must be floating point, got {x.dtype.name}")
        count = (~x.isnan()).sum(dim, keepdim)
        return x.nansum(dim, keepdim) / count

    def aminmax(self, *, dim=None, keepdim: bool = False):
        """(min, max) in one call (torch.aminmax); ties share the gradient, as amin/amax."""
        if dim is None and self.numel() == 0:  # with a dim, amax checks that dim's size
            raise RuntimeError(f"aminmax: cannot compute aminmax over an empty dimension "
                               f"(shape {self.shape})")
        return MinMaxResult(self.amin(dim, keepdim), self.amax(dim, keepdim))

    # ---- elementwise functions PyTorch has under their own names -------------------------
    def _float_pair(self, other, op: str):
        """(x, y) promoted and broadcast, refusing integers where PyTorch has no kernel."""
        x, y = self._operands(other, op)
        if not x.dtype.is_floating_point:
            raise NotImplementedError(f"{op}: not implemented for {x.dtype.name} tensors "
                                      f"(convert with .float() first)")
        return x, y

    def logaddexp(self, other):
        """log(e^x + e^y) = max + log1p(e^-|x - y|): no overflow; equal infinities give
        themselves (their difference, NaN, is replaced by 0, as is any tie's)."""
        x, y = self._float_pair(other, "logaddexp")
        return x.maximum(y) + (-_gap(x, y)).exp().log1p()

    def logaddexp2(self, other):
        """log2(2^x + 2^y), as logaddexp in base 2."""
        x, y = self._float_pair(other, "logaddexp2")
        return x.maximum(y) + (-_gap(x, y) * math.log(2)).exp().log1p() * (1 / math.log(2))

    def hypot(self, other):
        """sqrt(x^2 + y^2) without overflow: m sqrt((x/m)^2 + (y/m)^2), m = max(|x|, |y|).
        The result does not depend on m, so neither does the gradient, x / hypot."""
        x, y = self._float_pair(other, "hypot")
        scale = x.abs().maximum(y.abs()).detach()
        scale = where((scale == 0) | scale.isinf(), 1.0, scale)
        ratio_x, ratio_y = x / scale, y / scale
        out = (ratio_x * ratio_x + ratio_y * ratio_y).sqrt() * scale
        return where(x.isinf() | y.isinf(), math.inf, out)  # hypot(inf, nan) = inf, as C's

    def exp2(self):
        return 2.0 ** self._float()  # POW with a whole exponent is exact: exp2(3) = 8

    def xlogy(self, other):
        """x log(y), 0 where x = 0 (unless y is NaN), with PyTorch's gradients (see Xlogy)."""
        x, y = self._operands(other, "xlogy")
        if not x.dtype.is_floating_point:
            x, y = x.to(dtypes.DEFAULT_FLOAT), y.to(dtypes.DEFAULT_FLOAT)
        return Xlogy.apply(x, y)  # _operands broadcast them to one shape

    def logit(self, eps=None):
        """log(p / (1 - p)); with eps, p is clamped to [eps, 1 - eps] first (gradient 0
        outside)."""
        p = self._float()
        if eps is not None:
            p = p.clamp(eps, 1 - eps)
        return (p / (1 - p)).log()


_LARGEST = {"float16": 65504.0, "bfloat16": 3.3895313892515355e38,  # finfo.max
            "float32": 3.4028234663852886e38, "float64": 1.7976931348623157e308}


def number_first_operands(input, other, op: str):
    """(input, other) for the function spellings torch.add(2, x) and torch.special.xlogy(2, y):
    a Python number first becomes a constant of other's shape and of the dtype the two promote
    to, as PyTorch's; a tensor first is left as it is."""
    if isinstance(input, MathMixin):
        return input, other
    if not isinstance(other, MathMixin):
        raise TypeError(f"{op}: expected a tensor among the operands, got "
                        f"{type(input).__name__} and {type(other).__name__}")
    if not isinstance(input, numbers.Real):  # (float is float32 in edugrad's namespace)
        return other._from_value(input, op), other
    return other._scalar_operands(input, reverse=True, dtype=None)


def _clamp_side(out, bound, outside):
    """where(outside, bound, out), and the bound wherever it is NaN: PyTorch's clamp returns NaN
    for a NaN bound (a comparison with NaN is False, so `outside` alone would ignore it)."""
    nan_bound = bound != bound  # a Python bool for a number, a bool tensor for a tensor
    if nan_bound is not False:
        outside = outside | nan_bound
    return where(outside, bound, out)


def _gap(x, y):
    """|x - y|, 0 where x = y: also for equal infinities, whose difference would be NaN (both
    are replaced by 0 before the subtraction, which then raises no floating-point warning)."""
    tie = x == y
    return (where(tie, 0.0, x) - where(tie, 0.0, y)).abs()


def _is_one(alpha) -> bool:
    """alpha is the int 1: add needs no product (a float or bool 1 is still checked)."""
    return type(alpha) is int and alpha == 1


def _or_data(a: TensorData, b: TensorData) -> TensorData:
    return a.maximum(b)  # MAXIMUM of bools is logical or


def where(condition, x, y):
    """Elements of x where condition is true, else of y; broadcasts all three."""
    if not isinstance(x, MathMixin):
        if not isinstance(y, MathMixin):  # where(mask, 1.0, 0.0): two numbers, as PyTorch allows
            if not isinstance(condition, MathMixin):
                raise TypeError("where: condition, x or y must be a tensor")
            y = condition._constant(y, dtypes.result_type(x, y))
        x = y._constant(x, dtypes.result_type((y.dtype, y.ndim), x))
    x, y = x._operands(y, "where")
    if not isinstance(condition, MathMixin):
        condition = x._from_value(condition, "where")
    if condition.dtype is not dtypes.bool_:
        raise TypeError(f"where: condition must be bool, got {condition.dtype.name}")
    if condition.shape != x.shape:
        shape = broadcast_shape(condition.shape, x.shape, "where")
        condition = condition.detach()._broadcast_to(shape)
        x, y = x._broadcast_to(shape), y._broadcast_to(shape)
    return Where.apply(condition, x, y)


# ---- torch.var_mean, torch.std_mean ----------------------------------------------------
def _statistics_arguments(dim, unbiased, correction):
    """torch.var_mean(x, True) means unbiased=True, not dim=1 (PyTorch's overloads)."""
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return dim, unbiased


def var_mean(input, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None):
    """(var, mean) over dim, as torch.var_mean; correction as var's."""
    dim, unbiased = _statistics_arguments(dim, unbiased, correction)
    return (input.var(dim, unbiased, keepdim, correction),
            input.mean(input._axes(dim, "var_mean"), keepdim))


def std_mean(input, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None):
    """(std, mean) over dim, as torch.std_mean."""
    dim, unbiased = _statistics_arguments(dim, unbiased, correction)
    return (input.std(dim, unbiased, keepdim, correction),
            input.mean(input._axes(dim, "std_mean"), keepdim))
