"""TensorData: a backend buffer with its dtype, and the primitives as methods. No autograd here.

Layer: primitives. Imports edugrad.backend, edugrad.dtypes, edugrad.ops; NumPy only to convert
host input and output (`from_host`, `to_host`).

TensorData canonicalises and checks arguments before it calls the backend, so every backend
method has a dull contract and a custom Function's forward gets a clear error, not one from
deep inside NumPy:
- reductions and FLIP take an int or a tuple of dims, negative ones counted from the end; the
  backend gets them sorted, distinct and non-negative (and keepdim=False is a RESHAPE after);
- binary ops and WHERE need equal shapes, equal dtypes and one device: the backend never
  broadcasts or promotes (the Tensor layer does that with EXPAND and CAST, visibly);
- EXP, LOG, SIN, SQRT, DIV and the activations ERF, TANH, SIGMOID, GELU and GELU_GRAD need a
  float dtype (GELU_GRAD's two buffers also equal shapes, dtypes and devices, as a binary op).
A violation raises ValueError (RuntimeError for mixed devices) naming the primitive and the
shapes, dtypes or devices. The checks are a tuple comparison and identity tests, so the hot
path stays cheap. TensorData also holds the fallbacks: when a backend lacks an accelerated
primitive (matmul, unfold, fold, take, index_add, erf, tanh, sigmoid, gelu, gelu_grad), the
method here composes it from required primitives, so a minimal backend runs everything.

    >>> a = TensorData.from_host(numpy.ones((2, 3), numpy.float32), get_backend("cpu"))
    >>> a.sum(-1, keepdim=False).shape
    (2,)
    >>> a.add(a.sum((1,)))
    ValueError: add: expected equal shapes, got (2, 3) and (2, 1) (TensorData does not
    broadcast: EXPAND first)
"""

from __future__ import annotations

import math

import numpy as np

from edugrad import dtypes
from edugrad.backend import Backend, get_backend
from edugrad.dtypes import DType
from edugrad.ops import ERF_FLOAT32, ERF_FLOAT64, Op


_WIDENED = (Op.ERF, Op.GELU, Op.GELU_GRAD)  # computed in float32 for float16


def _check_fits(value: float, dtype: DType) -> None:
    """A float stored in an integer tensor (fill_, x[i] = v, full) is truncated; NaN, +-inf and
    floats out of the dtype's range have no integer to become, so PyTorch refuses them (a cast
    would silently write the smallest integer instead). Arithmetic never gets here with a
    float: int tensor + 0.5 is a float tensor."""
    bits = 8 * dtype.itemsize
    if not (math.isfinite(value) and -2.0 ** (bits - 1) <= value < 2.0 ** (bits - 1)):
        raise RuntimeError(f"value {value} cannot be converted to type {dtype.name} without "
                           f"overflow")


class TensorData:
    """A buffer of one backend, its dtype, and one method per primitive."""

    __slots__ = ("buffer", "dtype", "backend", "shape")

    def __init__(self, buffer, dtype: DType, backend: Backend) -> None:
        self.buffer = buffer
        self.dtype = dtype
        self.backend = backend
        self.shape = buffer.shape  # read once: every check and every Tensor.shape reads it

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def device(self) -> str:
        return self.backend.device

    def numel(self) -> int:
        n = 1
        for size in self.shape:
            n *= size
        return n

    def _new(self, buffer, dtype: DType | None = None) -> "TensorData":
        return TensorData(buffer, dtype or self.dtype, self.backend)

    def __repr__(self) -> str:
        return f"TensorData(shape={self.shape}, dtype={self.dtype.name}, device={str(self.device)!r})"

    # ---- load ------------------------------------------------------------------------------
    @staticmethod
    def full(shape: tuple, value, dtype: DType, backend: Backend) -> "TensorData":
        if dtype.category == dtypes.INT and isinstance(value, float):
            _check_fits(value, dtype)
        return TensorData(backend.full(tuple(shape), value, dtype), dtype, backend)

    @staticmethod
    def constant(value, shape: tuple, dtype: DType, backend: Backend) -> "TensorData":
        """One number broadcast to `shape` (FULL of a scalar, then EXPAND), cached: buffers
        are never written, so `x * 2` can share one constant with every other `* 2`."""
        key = (value, shape, dtype, backend)
        if value == 0 and math.copysign(1, value) < 0:  # -0.0 == 0.0 with one hash: its own key
            key = ("-0.0", shape, dtype, backend)
        data = _constants.get(key)
        if data is None:
            if len(_constants) > 256:  # bounded: optimizers make new numbers every step
                _constants.clear()
            data = TensorData.full((), value, dtype, backend)
            data = _constants[key] = data.expand(shape) if shape else data
        return data

    @staticmethod
    def rand(shape: tuple, dtype: DType, backend: Backend) -> "TensorData":
        return TensorData(backend.rand(tuple(shape), dtype), dtype, backend)

    @staticmethod
    def from_host(array, backend: Backend) -> "TensorData":
        """From a NumPy array (of any layout; made C-contiguous here)."""
        array = np.asarray(array, order="C")  # not ascontiguousarray: it makes 0-d arrays 1-d
        return TensorData(backend.from_host(array), dtypes.from_name(array.dtype.name), backend)

    @staticmethod
    def arange(n: int, dtype: DType, backend: Backend) -> "TensorData":
        return TensorData.from_host(np.arange(n, dtype=dtypes.from_name(dtype).name), backend)

    def to_host(self) -> np.ndarray:
        values = self.backend.to_host(self.buffer)
        return np.asarray(values, dtype=dtypes.HOST_NAME.get(self.dtype.name, self.dtype.name)
                          ).reshape(self.shape)

    def to(self, device: str) -> "TensorData":
        """Copy to another device, through the host (the one place data crosses devices)."""
        return TensorData.from_host(self.to_host(), get_backend(device))

    # ---- unary -----------------------------------------------------------------------------
    def neg(self) -> "TensorData":
        return self._new(self.backend.neg(self.buffer))

    def exp(self) -> "TensorData":
        if not self.dtype.is_floating_point:
            raise ValueError(_float_only("exp", self))
        return self._new(self.backend.exp(self.buffer))

    def log(self) -> "TensorData":
        if not self.dtype.is_floating_point:
            raise ValueError(_float_only("log", self))
        return self._new(self.backend.log(self.buffer))

    def sin(self) -> "TensorData":
        if not self.dtype.is_floating_point:
            raise ValueError(_float_only("sin", self))
        return self._new(self.backend.sin(self.buffer))

    def sqrt(self) -> "TensorData":
        if not self.dtype.is_floating_point:
            raise ValueError(_float_only("sqrt", self))
        return self._new(self.backend.sqrt(self.buffer))

    def _accelerated_float(self, op: Op, composed, *others: "TensorData") -> "TensorData":
        """A float-only accelerated primitive: the backend's method when it offers it, else
        composed(*others), made of required primitives. `others` are more buffers of the
        primitive (GELU_GRAD's gradient), checked as a binary primitive's: x's shape, dtype
        and device."""
        for other in others:
            if not self._matches(other):
                _mismatch(op.method, self, other)
        if not self.dtype.is_floating_point:
            raise ValueError(_float_only(op.method, self))
        if self.dtype is dtypes.float16 and op in _WIDENED:
            # float16's range is too small for ERF's polynomials (P(8) overflows: erf(7) and
            # gelu(7) were NaN); float32 holds every half value, and the result is rounded once.
            # (bfloat16 has float32's range, and its values are computed in float32 already.)
            wide = [data.cast(dtypes.float32) for data in (self,) + others]
            return getattr(wide[0], op.method)(*wide[1:]).cast(self.dtype)
        if op not in self.backend.accelerated:
            return composed(*others)
        method = getattr(self.backend, op.method)
        if others:
            return self._new(method(self.buffer, *[other.buffer for other in others]))
        return self._new(method(self.buffer))  # the unary ones: no list to build

    def erf(self) -> "TensorData":
        """The error function: the backend's ERF, else the rational functions of ops.py."""
        return self._accelerated_float(Op.ERF, self.erf_composed)

    def erf_composed(self) -> "TensorData":
        constant = self.constant_like

        def polynomial(x, coefficients):  # c0 x^n + ... + cn by Horner's rule
            result = constant(coefficients[0])
            for c in coefficients[1:]:
                result = result.mul(x).add(constant(c))
            return result

        x = self
        if x.dtype is dtypes.float32:
            low = constant(-4.0)
            clamped = x.maximum(low).neg().maximum(low).neg()  # -max(-max(x, -4), -4)
            square = clamped.mul(clamped)
            return clamped.mul(polynomial(square, ERF_FLOAT32["P"])).div(
                polynomial(square, ERF_FLOAT32["Q"]))
        one, magnitude = constant(1.0), x.maximum(x.neg())
        square = x.mul(x)
        near = x.mul(polynomial(square, ERF_FLOAT64["T"])).div(polynomial(square, ERF_FLOAT64["U"]))
        # |x| capped at 8 (erfc(8) < 1e-28, so erf is +-1 in any float) keeps P and Q finite
        z = magnitude.neg().maximum(constant(-8.0)).neg()
        erfc = z.mul(z).neg().exp().mul(polynomial(z, ERF_FLOAT64["P"])).div(
            polynomial(z, ERF_FLOAT64["Q"]))
        far = one.sub(erfc)
        far = x.cmplt(constant(0.0)).where(far.neg(), far)  # erf is odd
        return magnitude.cmplt(one).where(near, far)

    def tanh(self) -> "TensorData":
        """The hyperbolic tangent: the backend's TANH, else thirteen required primitive calls."""
        return self._accelerated_float(Op.TANH, self.tanh_composed)

    def tanh_composed(self) -> "TensorData":
        # tanh x = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|), which never overflows
        x = self
        e = x.maximum(x.neg()).mul(x.full_like(-2)).exp()
        one = x.full_like(1)
        magnitude = one.sub(e).div(one.add(e))
        return x.cmplt(x.full_like(0)).where(magnitude.neg(), magnitude)

    def sigmoid(self) -> "TensorData":
        """The logistic function: the backend's SIGMOID, else twelve required primitive calls."""
        return self._accelerated_float(Op.SIGMOID, self.sigmoid_composed)

    def sigmoid_composed(self) -> "TensorData":
        # stable for |x| of 1e4: e = exp(-|x|) never overflows, and e / (1 + e) keeps the
        # digits of a tiny result where 1 - 1 / (1 + e) would lose them
        x = self
        e = x.maximum(x.neg()).neg().exp()
        one = x.full_like(1)
        return x.cmplt(x.full_like(0)).where(e.div(one.add(e)), one.div(one.add(e)))

    def gelu(self) -> "TensorData":
        """x Phi(x), Phi the standard normal CDF: the backend's GELU, else five calls (ERF's)."""
        return self._accelerated_float(Op.GELU, self.gelu_composed)

    def gelu_composed(self) -> "TensorData":
        return self.mul(self._normal_cdf())

    def _normal_cdf(self) -> "TensorData":
        """Phi(x) = erf(x / sqrt 2) * 0.5 + 0.5, in the order Op.GELU's spec gives (the NumPy
        backend's GELU and GELU_GRAD do the same operations in the same order)."""
        half = self.constant_like(0.5)
        return self.mul(self.constant_like(1 / math.sqrt(2))).erf().mul(half).add(half)

    def gelu_grad(self, grad: "TensorData") -> "TensorData":
        """self is x: grad * (Phi(x) + x phi(x)), GELU's backward in one call: the backend's
        GELU_GRAD, else eleven calls (ERF's, EXP, MUL and ADD)."""
        return self._accelerated_float(Op.GELU_GRAD, self.gelu_grad_composed, grad)

    def gelu_grad_composed(self, grad: "TensorData") -> "TensorData":
        x, constant = self, self.constant_like
        density = x.mul(x).mul(constant(-0.5)).exp().mul(constant(1 / math.sqrt(2 * math.pi)))
        return grad.mul(x._normal_cdf().add(x.mul(density)))

    def cast(self, dtype: DType) -> "TensorData":
        if dtype is self.dtype:
            return self
        return self._new(self.backend.cast(self.buffer, dtype), dtype)

    # ---- binary and ternary: equal shapes, dtypes and devices (the Tensor layer broadcasts) ---
    def add(self, other: "TensorData") -> "TensorData":
        if (self.shape != other.shape or self.dtype is not other.dtype
                or self.backend is not other.backend):  # _matches, inlined: the hot path
            _mismatch("add", self, other)
        return self._new(self.backend.add(self.buffer, other.buffer))

    def sub(self, other: "TensorData") -> "TensorData":
        if (self.shape != other.shape or self.dtype is not other.dtype
                or self.backend is not other.backend):  # _matches, inlined: the hot path
            _mismatch("sub", self, other)
        return self._new(self.backend.sub(self.buffer, other.buffer))

    def mul(self, other: "TensorData") -> "TensorData":
        if (self.shape != other.shape or self.dtype is not other.dtype
                or self.backend is not other.backend):  # _matches, inlined: the hot path
            _mismatch("mul", self, other)
        return self._new(self.backend.mul(self.buffer, other.buffer))

    def div(self, other: "TensorData") -> "TensorData":
        if not self._matches(other) or not self.dtype.is_floating_point:
            _mismatch("div", self, other, float_only=True)
        return self._new(self.backend.div(self.buffer, other.buffer))

    def maximum(self, other: "TensorData") -> "TensorData":
        if (self.shape != other.shape or self.dtype is not other.dtype
                or self.backend is not other.backend):  # _matches, inlined: the hot path
            _mismatch("maximum", self, other)
        return self._new(self.backend.maximum(self.buffer, other.buffer))

    def cmplt(self, other: "TensorData") -> "TensorData":
        if (self.shape != other.shape or self.dtype is not other.dtype
                or self.backend is not other.backend):  # _matches, inlined: the hot path
            _mismatch("cmplt", self, other)
        return self._new(self.backend.cmplt(self.buffer, other.buffer), dtypes.bool_)

    def cmpeq(self, other: "TensorData") -> "TensorData":
        if (self.shape != other.shape or self.dtype is not other.dtype
                or self.backend is not other.backend):  # _matches, inlined: the hot path
            _mismatch("cmpeq", self, other)
        return self._new(self.backend.cmpeq(self.buffer, other.buffer), dtypes.bool_)

    def where(self, x: "TensorData", y: "TensorData") -> "TensorData":
        """self is the bool condition."""
        if not (x._matches(y) and self.dtype is dtypes.bool_
                and self.shape == x.shape and self.backend is x.backend):
            _where_mismatch(self, x, y)
        return x._new(self.backend.where(self.buffer, x.buffer, y.buffer))

    def _matches(self, other: "TensorData") -> bool:
        """The whole check of a binary primitive: one tuple comparison, two identity tests."""
        return (self.shape == other.shape and self.dtype is other.dtype
                and self.backend is other.backend)

    def constant_like(self, value) -> "TensorData":
        """`value` broadcast to this buffer's shape, dtype and device: the cached constant."""
        return TensorData.constant(value, self.shape, self.dtype, self.backend)

    def full_like(self, value) -> "TensorData":
        return TensorData.full(self.shape, value, self.dtype, self.backend)

    # ---- reduce ------------------------------------------------------------------------------
    def sum(self, axes, keepdim: bool = True) -> "TensorData":
        """Sum over `axes` (an int or a tuple; negative dims count from the end)."""
        return self._reduce(self.backend.sum, self._axes(axes, "sum"), keepdim)

    def max(self, axes, keepdim: bool = True) -> "TensorData":
        return self._reduce(self.backend.max, self._axes(axes, "max"), keepdim)

    def _reduce(self, method, axes: tuple, keepdim: bool) -> "TensorData":
        if not axes:
            return self
        out = self._new(method(self.buffer, axes))
        if keepdim:
            return out
        return out.reshape(tuple(s for i, s in enumerate(self.shape) if i not in axes))

    def _axes(self, axes, primitive: str) -> tuple:
        """`axes` sorted, distinct and non-negative, as every backend expects. The answer is
        cached per (axes, ndim): after the first call this is one dictionary lookup."""
        key = (axes, len(self.shape))
        try:
            canonical = _canonical_axes.get(key)
        except TypeError:  # a list of dims: not hashable, so not cached
            return _resolve_axes(axes, len(self.shape), primitive, self.shape)
        if canonical is None:
            canonical = _resolve_axes(axes, len(self.shape), primitive, self.shape)
            if len(_canonical_axes) > 1024:
                _canonical_axes.clear()
            _canonical_axes[key] = canonical
        return canonical

    # ---- movement ------------------------------------------------------------------------------
    def reshape(self, shape: tuple) -> "TensorData":
        if shape == self.shape:
            return self
        return self._new(self.backend.reshape(self.buffer, shape))

    def permute(self, order: tuple) -> "TensorData":
        return self._new(self.backend.permute(self.buffer, order))

    def expand(self, shape: tuple) -> "TensorData":
        """Broadcast to `shape`; leading dims are added with a RESHAPE first."""
        if shape == self.shape:
            return self
        data = self
        if len(shape) > self.ndim:
            data = self.reshape((1,) * (len(shape) - self.ndim) + self.shape)
        return data._new(self.backend.expand(data.buffer, tuple(shape)))

    def pad(self, padding: tuple, value=0) -> "TensorData":
        if not any(before or after for before, after in padding):
            return self
        return self._new(self.backend.pad(self.buffer, tuple(padding), value))

    def shrink(self, bounds: tuple) -> "TensorData":
        if all(start == 0 and end == size for (start, end), size in zip(bounds, self.shape)):
            return self
        return self._new(self.backend.shrink(self.buffer, tuple(bounds)))

    def flip(self, axes) -> "TensorData":
        return self._new(self.backend.flip(self.buffer, self._axes(axes, "flip")))

    def strided(self, axis: int, start: int, count: int, step: int) -> "TensorData":
        """Elements start, start+step, ... (count of them) along `axis`, from PAD, RESHAPE and
        SHRINK: take the run of count*step elements, fold it into (count, step), keep column 0."""
        if step == 1:
            bounds = [(0, s) for s in self.shape]
            bounds[axis] = (start, start + count)
            return self.shrink(tuple(bounds))
        size = self.shape[axis]
        end = min(size, start + count * step)
        bounds = [(0, s) for s in self.shape]
        bounds[axis] = (start, end)
        padding = [(0, 0)] * self.ndim
        padding[axis] = (0, count * step - (end - start))
        run = self.shrink(tuple(bounds)).pad(tuple(padding))
        folded = run.reshape(self.shape[:axis] + (count, step) + self.shape[axis + 1:])
        bounds = [(0, s) for s in folded.shape]
        bounds[axis + 1] = (0, 1)
        return folded.shrink(tuple(bounds)).reshape(
            self.shape[:axis] + (count,) + self.shape[axis + 1:]
        )

    def unstrided(self, axis: int, start: int, step: int, size: int) -> "TensorData":
        """The adjoint of `strided`: place element i at start + i*step of a zero dim of `size`."""
        count = self.shape[axis]
        data = self
        if step > 1:
            spread = self.reshape(self.shape[:axis + 1] + (1,) + self.shape[axis + 1:])
            padding = [(0, 0)] * spread.ndim
            padding[axis + 1] = (0, step - 1)
            data = spread.pad(tuple(padding)).reshape(
                self.shape[:axis] + (count * step,) + self.shape[axis + 1:]
            )
            bounds = [(0, s) for s in data.shape]
            bounds[axis] = (0, max(0, min(count * step, size - start)))
            data = data.shrink(tuple(bounds))
        padding = [(0, 0)] * self.ndim
        padding[axis] = (start, size - start - data.shape[axis])
        return data.pad(tuple(padding))

    # ---- accelerated primitives, each with its composition of required ones -----------------------
    def matmul(self, other: "TensorData") -> "TensorData":
        """(*b, n, k) @ (*b, k, m) with equal batch dims, at least one."""
        mine, theirs = self.shape, other.shape
        if (len(mine) < 2 or mine[:-2] != theirs[:-2] or mine[-1:] != theirs[-2:-1]
                or len(mine) != len(theirs) or self.dtype is not other.dtype
                or self.backend is not other.backend or not self.dtype.is_floating_point):
            _mismatch("matmul", self, other, float_only=True,
                      shapes="(*b, n, k) and (*b, k, m) with equal batch dims *b")
        if Op.MATMUL in self.backend.accelerated:
            return self._new(self.backend.matmul(self.buffer, other.buffer))
        return self.matmul_composed(other)

    def matmul_composed(self, other: "TensorData") -> "TensorData":
        *batch, n, k = self.shape
        m = other.shape[-1]
        batch = tuple(batch)
        left = self.reshape(batch + (n, k, 1)).expand(batch + (n, k, m))
        right = other.reshape(batch + (1, k, m)).expand(batch + (n, k, m))
        return left.mul(right).sum((len(batch) + 1,), keepdim=False)

    def unfold(self, kernel: tuple, stride: tuple) -> "TensorData":
        """(N, C, H, W) -> (N, C, OH, OW, KH, KW) windows; see Op.UNFOLD."""
        if Op.UNFOLD in self.backend.accelerated:
            return self._new(self.backend.unfold(self.buffer, tuple(kernel), tuple(stride)))
        n, c, h, w = self.shape
        (kh, kw), (sh, sw) = kernel, stride
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        windows = None
        for a in range(kh):
            for b in range(kw):
                window = self.strided(2, a, oh, sh).strided(3, b, ow, sw).reshape((n, c, oh, ow, 1))
                slot = a * kw + b  # place this window at its slot of the last dim, then add up
                window = window.pad(((0, 0),) * 4 + ((slot, kh * kw - slot - 1),))
                windows = window if windows is None else windows.add(window)
        return windows.reshape((n, c, oh, ow, kh, kw))

    def fold(self, shape: tuple, stride: tuple) -> "TensorData":
        """The adjoint of unfold: (N, C, OH, OW, KH, KW) -> `shape` (N, C, H, W)."""
        if Op.FOLD in self.backend.accelerated:
            return self._new(self.backend.fold(self.buffer, tuple(shape), tuple(stride)))
        n, c, oh, ow, kh, kw = self.shape
        sh, sw = stride
        total = None
        for a in range(kh):
            for b in range(kw):
                bounds = ((0, n), (0, c), (0, oh), (0, ow), (a, a + 1), (b, b + 1))
                window = self.shrink(bounds).reshape((n, c, oh, ow))
                placed = window.unstrided(2, a, sh, shape[2]).unstrided(3, b, sw, shape[3])
                total = placed if total is None else total.add(placed)
        return total

    def take(self, axis: int, index: "TensorData") -> "TensorData":
        """Pick along `axis` with an int64 index of any shape; see Op.TAKE."""
        _check_index("take", self, index)
        if Op.TAKE in self.backend.accelerated:
            return self._new(self.backend.take(self.buffer, axis, index.buffer))
        # one-hot: hot[i, s] = (index[i] == s); out[r, i] = sum_s (x[r, s] if hot[i, s] else 0)
        size = self.shape[axis]
        rest = self.shape[:axis] + self.shape[axis + 1:]
        order = tuple(d for d in range(self.ndim) if d != axis) + (axis,)
        rows = self.permute(order).reshape((_prod(rest), 1, size))
        hot = index._one_hot(size)  # (I, size) bool
        count = hot.shape[0]
        picked = rows.expand((rows.shape[0], count, size))
        picked = hot.reshape((1, count, size)).expand(picked.shape).where(
            picked, picked.full_like(0))  # WHERE, not MUL: inf * 0 would be nan
        picked = picked.sum((2,), keepdim=False).reshape(rest + index.shape)
        # index dims sit last; move them to where `axis` was
        lead, nidx = axis, index.ndim
        tail = len(rest) - lead
        order = tuple(range(lead)) + tuple(range(len(rest), len(rest) + nidx))
        order += tuple(range(lead, lead + tail))
        return picked.permute(order)

    def index_add(self, shape: tuple, axis: int, index: "TensorData") -> "TensorData":
        """self is `src`; zeros of `shape` with src added at `index` along `axis`."""
        _check_index("index_add", self, index)
        if Op.INDEX_ADD in self.backend.accelerated:
            return self._new(self.backend.index_add(tuple(shape), axis, index.buffer, self.buffer))
        size, nidx = shape[axis], index.ndim
        rest = tuple(shape[:axis]) + tuple(shape[axis + 1:])
        order = tuple(d for d in range(self.ndim) if not axis <= d < axis + nidx)
        order += tuple(range(axis, axis + nidx))
        count = index.numel()
        src = self.permute(order).reshape((_prod(rest), count, 1)).expand((_prod(rest), count, size))
        hot = index._one_hot(size).reshape((1, count, size)).expand(src.shape)
        out = hot.where(src, src.full_like(0)).sum((1,), keepdim=False).reshape(rest + (size,))
        back = tuple(range(axis)) + (len(rest),) + tuple(range(axis, len(rest)))
        return out.permute(back)

    def _one_hot(self, size: int) -> "TensorData":
        """(numel,) int index -> (numel, size) bool matrix, by CMPEQ with a range."""
        count = self.numel()
        column = self.reshape((count, 1)).expand((count, size))
        row = TensorData.arange(size, self.dtype, self.backend).reshape((1, size))
        return column.cmpeq(row.expand((count, size)))


_constants: dict = {}
_canonical_axes: dict = {}


# ---- the checks' messages: built only when a check fails ---------------------------------------
def _describe(data: TensorData) -> str:
    return f"{tuple(data.shape)} {data.dtype.name} on {data.device}"


def _mismatch(primitive: str, x: TensorData, y: TensorData, float_only: bool = False,
              shapes: str = "equal shapes") -> None:
    if x.backend is not y.backend:
        raise RuntimeError(f"{primitive}: expected all tensors on the same device, got "
                           f"{x.device} and {y.device} (move one with .to(device))")
    if x.dtype is not y.dtype:
        raise ValueError(f"{primitive}: expected equal dtypes, got {x.dtype.name} and "
                         f"{y.dtype.name} (TensorData does not promote: CAST first)")
    if float_only and not x.dtype.is_floating_point:
        raise ValueError(_float_only(primitive, x))
    raise ValueError(f"{primitive}: expected {shapes}, got {tuple(x.shape)} and "
                     f"{tuple(y.shape)} (TensorData does not broadcast: EXPAND first)")


def _where_mismatch(condition: TensorData, x: TensorData, y: TensorData) -> None:
    for data in (x, y):
        if data.backend is not condition.backend:
            _mismatch("where", condition, data)
    if condition.dtype is not dtypes.bool_:
        raise ValueError(f"where: expected a bool condition, got {condition.dtype.name}")
    parts = ", ".join(_describe(d) for d in (condition, x, y))
    raise ValueError(f"where: expected a condition and two values of equal shapes, and values "
                     f"of equal dtypes, got {parts}")


def _float_only(primitive: str, data: TensorData) -> str:
    return (f"{primitive}: expected a float dtype, got {data.dtype.name} "
            f"(shape {tuple(data.shape)}; CAST first)")


def _check_index(primitive: str, data: TensorData, index: TensorData) -> None:
    if index.backend is not data.backend:
        _mismatch(primitive, data, index)
    if index.dtype is not dtypes.int64:
        raise ValueError(f"{primitive}: expected an int64 index, got {index.dtype.name}")


def _resolve_axes(axes, ndim: int, primitive: str, shape: tuple) -> tuple:
    """An int or a sequence of dims -> sorted, distinct, non-negative; a 0-d buffer takes
    dim 0 or -1 (as PyTorch) and has nothing to reduce."""
    dims = (axes,) if isinstance(axes, int) else tuple(axes)
    resolved = set()
    for dim in dims:
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise ValueError(f"{primitive}: dims must be ints, got {axes!r}")
        if not -max(ndim, 1) <= dim < max(ndim, 1):
            raise ValueError(f"{primitive}: dim {dim} is out of range for shape {tuple(shape)}")
        resolved.add(dim % ndim if ndim else 0)
    return tuple(sorted(resolved)) if ndim else ()


def clear_constant_cache() -> None:
    """Forget the constants TensorData.constant has cached. The lock-step diff calls it so
    that the two runs it compares start alike and make the same primitive calls (a cached
    constant skips its FULL and EXPAND)."""
    _constants.clear()


def _prod(shape) -> int:
    n = 1
    for size in shape:
        n *= size
    return n
