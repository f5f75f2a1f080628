"""Linear algebra: mm, bmm, addmm, baddbmm, outer, einsum, diag/diagonal/trace, norms, svd; and
the `edugrad.linalg` namespace (vector_norm, matrix_norm, norm, svd, svdvals, eigh, eigvalsh,
pinv, matrix_rank), as torch.linalg.

Layer: Tensor (top). A mixin of Tensor (LinalgMixin) plus module-level functions; imports
edugrad.function, edugrad.views, edugrad.shape and edugrad.dtypes, never NumPy.

Everything here is a composition: products are `matmul` (MATMUL when the backend has it, else
its composition), einsum is permute/reshape/matmul/sum, a diagonal is a strided read of the
flattened matrix, a norm is sums, powers and maxima. So every gradient is right by
construction, except the decompositions': svd, eigh and pinv are Jacobi rotations, composed from
Tensor ops too, but their gradients are PyTorch's formulas (edugrad/function.py, SVD, Eigh and
PInv), not autograd through the rotations.

einsum, by example: "bij,bjk->bik" has labels b (in both operands and the output: a batch dim),
i (first only), k (second only) and j (both, not in the output: contracted). The operands are
permuted to (b, i, j) and (b, j, k), reshaped to (B, I, J) and (B, J, K), multiplied with matmul,
and the result (b, i, k) permuted to the output's order. A label repeated in one operand ("ii")
takes the diagonal first; a label in one operand only and not in the output is summed away
first; more than two operands are multiplied left to right.
"""

from __future__ import annotations

import math
from collections import namedtuple

from edugrad import dtypes, views
from edugrad.data import TensorData
from edugrad.function import (
    SVD, Eigh, Pad, Permute, PInv, Reshape, Shrink, Strided, Unstrided, Where,
)
from edugrad.math import broadcast_shape
from edugrad.shape import stack
from edugrad.views import ViewStep


class LinalgMixin:
    __slots__ = ()

    # ---- products ---------------------------------------------------------------------------------
    def mm(self, mat2):
        """(n, k) @ (k, m), 2-D only (torch.mm does not broadcast)."""
        _check_dims("mm", (self, 2), (mat2, 2))
        return self.matmul(mat2)

    def bmm(self, mat2):
        """(b, n, k) @ (b, k, m), one batch dim, equal sizes (no broadcasting)."""
        _check_dims("bmm", (self, 3), (mat2, 3))
        if self.shape[0] != mat2.shape[0]:
            raise RuntimeError(f"bmm: batch sizes differ: shapes {tuple(self.shape)} and "
                               f"{tuple(mat2.shape)}")
        return self.matmul(mat2)

    def addmm(self, mat1, mat2, *, beta=1, alpha=1):
        """beta * self + alpha * (mat1 @ mat2); self broadcasts to the product's shape."""
        return _scaled_sum(self, mat1.mm(mat2), beta, alpha, "addmm")

    def baddbmm(self, batch1, batch2, *, beta=1, alpha=1):
        """beta * self + alpha * (batch1 @ batch2), batched."""
        return _scaled_sum(self, batch1.bmm(batch2), beta, alpha, "baddbmm")

    def outer(self, vec2):
        """out[i, j] = self[i] * vec2[j]."""
        _check_dims("outer", (self, 1), (vec2, 1))
        return self.unsqueeze(1) * vec2.unsqueeze(0)

    ger = outer

    # ---- diagonals --------------------------------------------------------------------------------
    def diagonal(self, offset: int = 0, dim1: int = 0, dim2: int = 1):
        """The diagonal of the matrices in dims (dim1, dim2), as a last dim: a view, as in
        PyTorch (writes through it reach self). offset > 0 is above the main diagonal."""
        if self.ndim < 2:
            raise RuntimeError(f"diagonal: expects at least 2 dims, got shape {tuple(self.shape)}")
        first, second = self._dim(dim1, "diagonal"), self._dim(dim2, "diagonal")
        if first == second:
            raise RuntimeError(f"diagonal: dim1 and dim2 cannot be the same dim ({dim1}, {dim2})")
        step = DiagonalStep(first, second, offset)
        strides, start = views.layout(self)
        return views.make_view(self, step, step.layout(self.shape, strides, start))

    def diag(self, diagonal: int = 0):
        """1-D: a square matrix with self on the `diagonal`-th diagonal; 2-D: that diagonal,
        copied."""
        if self.ndim == 1:
            n = self.shape[0] + abs(diagonal)
            start = diagonal if diagonal >= 0 else -diagonal * n
            flat = Unstrided.apply(self, axis=0, start=start, step=n + 1, size=n * n)
            return Reshape.apply(flat, shape=(n, n))
        if self.ndim == 2:
            return self.diagonal(diagonal).clone()
        raise RuntimeError(f"diag: expects a 1-D or 2-D tensor, got shape {tuple(self.shape)}")

    def diag_embed(self, offset: int = 0):
        """Each last-dim vector on the diagonal of a matrix (the last two dims of the result)."""
        n = self.shape[-1] + abs(offset)
        start = offset if offset >= 0 else -offset * n
        flat = Unstrided.apply(self, axis=self.ndim - 1, start=start, step=n + 1, size=n * n)
        return Reshape.apply(flat, shape=self.shape[:-1] + (n, n))

    def trace(self):
        if self.ndim != 2:
            raise RuntimeError(f"trace: expects a 2-D matrix, got shape {tuple(self.shape)}")
        return self.diagonal().sum()

    # ---- norms --------------------------------------------------------------------------------------
    def norm(self, p="fro", dim=None, keepdim: bool = False, dtype=None):
        """torch.norm: 'fro' (the 2-norm of the elements) or a number p, over dim (all dims
        when None); 'nuc' (the sum of the singular values) of a matrix, or over 2 dims."""
        if p == "fro" or p is None:
            p = 2
        if p == "nuc":
            dims = tuple(range(self.ndim)) if dim is None else tuple(dim)
            if len(dims) != 2:
                raise RuntimeError(f"norm: p='nuc' needs a 2-D input or 2 dims, got shape "
                                   f"{tuple(self.shape)} and dim={dim!r}")
            return matrix_norm(self, "nuc", dims, keepdim, dtype=dtype)
        if isinstance(p, str):
            raise RuntimeError(f"norm: p={p!r} is not supported (use 'fro', 'nuc' or a number)")
        return vector_norm(self, p, dim, keepdim, dtype=dtype)

    # ---- decompositions (the torch.svd spelling; edugrad.linalg has the rest) ---------------
    def svd(self, some: bool = True, compute_uv: bool = True):
        """torch.svd: (U, S, V) with V, not linalg.svd's Vh = V^T; some=False gives the full U
        and V. compute_uv=False: S, with U and V zeros of (m, m) and (n, n), as torch's."""
        if not compute_uv:
            m, n, batch = self.shape[-2], self.shape[-1], tuple(self.shape[:-2])
            return SvdResult(self.new_zeros(batch + (m, m)), svdvals(self),
                             self.new_zeros(batch + (n, n)))
        U, S, Vh = svd(self, full_matrices=not some)
        return SvdResult(U, S, Vh.mT)

    def pinverse(self, rcond: float = 1e-15):
        """torch.pinverse: linalg.pinv with singular values below rcond * s_max dropped."""
        return pinv(self, rtol=rcond)

    # ---- more products --------------------------------------------------------------------
    def tensordot(self, other, dims=2):
        """Contract the last `dims` dims of self with the first `dims` of other, or the dims
        listed in a pair ([self's], [other's]): permute, reshape to matrices, one matmul."""
        _same_dtype("tensordot", self, other)
        mine, theirs = _contracted_dims(self, other, dims)
        for a, b in zip(mine, theirs):
            if self.shape[a] != other.shape[b]:
                raise RuntimeError(f"tensordot: contracted dims must match, but dim {a} of "
                                   f"{tuple(self.shape)} has size {self.shape[a]} and dim {b} of "
                                   f"{tuple(other.shape)} has size {other.shape[b]}")
        free_mine = [d for d in range(self.ndim) if d not in mine]
        free_theirs = [d for d in range(other.ndim) if d not in theirs]
        size = math.prod(self.shape[d] for d in mine)
        left = self.permute(*free_mine, *mine).reshape(-1, size) if size else None
        right = other.permute(*theirs, *free_theirs).reshape(size, -1) if size else None
        shape = tuple(self.shape[d] for d in free_mine) + tuple(other.shape[d] for d in free_theirs)
        if left is None:  # contracting empty dims: a sum of nothing
            return (self.sum() * other.sum() * 0).to(self.dtype).expand(shape).clone()
        return _product(left, right).reshape(shape)

    def kron(self, other):
        """The Kronecker product: block (i, j) of the result is self[i, j] * other."""
        ndim = max(self.ndim, other.ndim)
        a = self.reshape((1,) * (ndim - self.ndim) + tuple(self.shape))
        b = other.reshape((1,) * (ndim - other.ndim) + tuple(other.shape))
        spread_a = a.reshape(tuple(v for n in a.shape for v in (n, 1)))
        spread_b = b.reshape(tuple(v for n in b.shape for v in (1, n)))
        return (spread_a * spread_b).reshape(tuple(m * n for m, n in zip(a.shape, b.shape)))

    def cross(self, other, dim=None):
        """The cross product of 3-vectors along dim (broadcast); dim=None: the first dim of
        size 3, as torch.cross."""
        _same_dtype("cross", self, other)
        if self.ndim != other.ndim:  # PyTorch broadcasts sizes here, but not ranks
            raise RuntimeError(f"cross: inputs must have the same number of dims, got shapes "
                               f"{tuple(self.shape)} and {tuple(other.shape)}")
        shape = broadcast_shape(tuple(self.shape), tuple(other.shape), "cross")
        x, y = self.expand(shape), other.expand(shape)
        if dim is None:
            dim = next((d for d, n in enumerate(shape) if n == 3), None)
            if dim is None:
                raise RuntimeError(f"cross: no dim of size 3 in shape {shape}")
        dim = x._dim(dim, "cross")
        if shape[dim] != 3:
            raise RuntimeError(f"cross: dim {dim} must have size 3, got shape {shape}")
        a1, a2, a3 = x.unbind(dim)
        b1, b2, b3 = y.unbind(dim)
        return stack([a2 * b3 - a3 * b2, a3 * b1 - a1 * b3, a1 * b2 - a2 * b1], dim)

    def inner(self, other):
        """Sum over the last dims of both: shape self.shape[:-1] + other.shape[:-1]."""
        if self.ndim == 0 or other.ndim == 0:
            return self * other
        if self.shape[-1] != other.shape[-1]:
            raise RuntimeError(f"inner: the last dims must match, got shapes {tuple(self.shape)} "
                               f"and {tuple(other.shape)}")
        return self.tensordot(other, ([self.ndim - 1], [other.ndim - 1]))

    def mv(self, vec):
        """(n, m) @ (m,), 2-D by 1-D only."""
        _check_dims("mv", (self, 2), (vec, 1))
        if self.shape[1] != vec.shape[0]:
            raise RuntimeError(f"mv: shapes {tuple(self.shape)} and {tuple(vec.shape)} cannot be "
                               f"multiplied ({self.shape[1]} != {vec.shape[0]})")
        return self.tensordot(vec, 1)  # integers too

    def vdot(self, other):
        return self.dot(other)  # the conjugate of a real vector is itself


# ---- the view a diagonal is ----------------------------------------------------------------------
class DiagonalStep(ViewStep):
    """A diagonal of dims (dim1, dim2): move them last, cut the square block the diagonal runs
    through, flatten it and keep every (L+1)-th element. Written back by the inverse: spread
    the values at those places (Unstrided), pad the block back and WHERE with the parent."""

    def __init__(self, dim1: int, dim2: int, offset: int) -> None:
        self.dim1, self.dim2, self.offset = dim1, dim2, offset

    def _plan(self, shape: tuple):
        """(order, rows start, cols start, L) for a parent of `shape`."""
        order = tuple(d for d in range(len(shape)) if d not in (self.dim1, self.dim2))
        order += (self.dim1, self.dim2)
        rows, cols = shape[self.dim1], shape[self.dim2]
        row0, col0 = (0, self.offset) if self.offset >= 0 else (-self.offset, 0)
        row0, col0 = min(row0, rows), min(col0, cols)  # an offset past the edge: empty
        length = max(0, min(rows - row0, cols - col0))
        return order, row0, col0, length

    def _read(self, x, movement):
        """The diagonal of x, with `movement` the permute/shrink/reshape/strided of TensorData or
        of the Functions (the same steps, differentiable or not)."""
        order, row0, col0, length = self._plan(x.shape)
        permute, shrink, reshape, strided = movement
        moved = permute(x, order)
        bounds = tuple((0, s) for s in moved.shape[:-2]) + ((row0, row0 + length),
                                                           (col0, col0 + length))
        block = shrink(moved, bounds)
        flat = reshape(block, moved.shape[:-2] + (length * length,))
        return strided(flat, len(flat.shape) - 1, length, length + 1)

    def apply(self, parent):
        return self._read(parent, (
            lambda x, order: Permute.apply(x, order=order),
            lambda x, bounds: Shrink.apply(x, bounds=bounds),
            lambda x, shape: Reshape.apply(x, shape=shape),
            lambda x, axis, count, step: Strided.apply(x, axis=axis, start=0, count=count,
                                                       step=step)))

    def apply_data(self, data):
        return self._read(data, (
            lambda x, order: x.permute(order), lambda x, bounds: x.shrink(bounds),
            lambda x, shape: x.reshape(shape),
            lambda x, axis, count, step: x.strided(axis, 0, count, step)))

    def write_back(self, parent, value):
        order, row0, col0, length = self._plan(parent.shape)
        moved_shape = tuple(parent.shape[d] for d in order)
        padding = tuple((0, 0) for _ in moved_shape[:-2]) + (
            (row0, moved_shape[-2] - row0 - length), (col0, moved_shape[-1] - col0 - length))
        inverse = [0] * len(order)
        for i, d in enumerate(order):
            inverse[d] = i
        inverse = tuple(inverse)

        def place(x, unstrided, reshape, pad, permute):
            spread = unstrided(x, len(x.shape) - 1, length + 1, length * length)
            return permute(pad(reshape(spread, moved_shape[:-2] + (length, length)), padding),
                           inverse)

        placed = place(value,
                       lambda x, axis, step, size: Unstrided.apply(x, axis=axis, start=0,
                                                                   step=step, size=size),
                       lambda x, shape: Reshape.apply(x, shape=shape),
                       lambda x, padding: Pad.apply(x, padding=padding),
                       lambda x, order: Permute.apply(x, order=order))
        inside = place(TensorData.full(value.shape, True, dtypes.bool_, value._data.backend),
                       lambda x, axis, step, size: x.unstrided(axis, 0, step, size),
                       lambda x, shape: x.reshape(shape),
                       lambda x, padding: x.pad(padding, False),
                       lambda x, order: x.permute(order))
        return Where.apply(parent._result_class._make(inside, None), placed, parent)

    def layout(self, shape, strides, offset):
        _, row0, col0, _ = self._plan(shape)
        kept = tuple(s for d, s in enumerate(strides) if d not in (self.dim1, self.dim2))
        first, second = strides[self.dim1], strides[self.dim2]
        return kept + (first + second,), offset + row0 * first + col0 * second


# ---- helpers -------------------------------------------------------------------------------------
def _check_dims(op: str, *pairs) -> None:
    for tensor, ndim in pairs:
        if not hasattr(tensor, "ndim") or tensor.ndim != ndim:
            shapes = " and ".join(str(tuple(getattr(t, "shape", ()))) for t, _ in pairs)
            raise RuntimeError(f"{op}: expected {ndim}-D tensors, got shapes {shapes}")


def _scaled_sum(input, product, beta, alpha, op: str):
    """beta * input + alpha * product; beta = 0 ignores input (its NaNs too), as PyTorch."""
    if not hasattr(input, "shape"):
        input = product._constant(input, product.dtype)
    if tuple(input.shape) != tuple(product.shape):
        try:
            input = input.expand(product.shape)
        except RuntimeError:
            raise RuntimeError(f"{op}: input of shape {tuple(input.shape)} cannot be broadcast "
                               f"to the product's shape {tuple(product.shape)}") from None
    scaled = product if alpha == 1 else product * alpha
    if beta == 0:
        return scaled
    return (input if beta == 1 else input * beta) + scaled


# ---- helpers of the products above, cdist, linalg.cross ---------------------------------
def _same_dtype(op: str, a, b) -> None:
    """PyTorch's products outside matmul do not promote: they refuse mixed dtypes."""
    if a.dtype is not b.dtype:
        raise RuntimeError(f"{op}: both inputs should have the same dtype, got {a.dtype.name} "
                           f"and {b.dtype.name}")


def _contracted_dims(a, b, dims):
    """tensordot's dims as two lists of non-negative dims."""
    if isinstance(dims, int):
        if dims < 0 or dims > min(a.ndim, b.ndim):
            raise RuntimeError(f"tensordot: dims must be between 0 and {min(a.ndim, b.ndim)} for "
                               f"shapes {tuple(a.shape)} and {tuple(b.shape)}, got {dims}")
        return list(range(a.ndim - dims, a.ndim)), list(range(dims))
    if hasattr(dims, "tolist"):
        dims = dims.tolist()
    mine, theirs = ([d] if isinstance(d, int) else list(d) for d in dims)
    if len(mine) != len(theirs):
        raise RuntimeError(f"tensordot: both dim lists must have the same length, got {mine} and "
                           f"{theirs}")
    return ([a._dim(d, "tensordot") for d in mine], [b._dim(d, "tensordot") for d in theirs])


def _product(left, right):
    """(n, k) @ (k, m) of one dtype; integers by a broadcast multiply and sum (MATMUL is for
    floats)."""
    if left.dtype.is_floating_point:
        return left.matmul(right)
    return (left.unsqueeze(-1) * right.unsqueeze(0)).sum(1).to(left.dtype)


def cdist(x1, x2, p: float = 2.0, compute_mode=None):
    """Distances between the rows of x1 (..., P, M) and of x2 (..., R, M): (..., P, R), as
    torch.cdist; the p-norm of every difference (the gradient at distance 0 is 0, as PyTorch's).
    Exact, with memory P * R * M: PyTorch's matmul shortcut for p = 2 loses the digits of
    near distances."""
    for name, x in (("x1", x1), ("x2", x2)):
        if x.ndim < 2:
            raise RuntimeError(f"cdist: only supports at least 2D tensors, {name} has shape "
                               f"{tuple(x.shape)}")
        if not x.dtype.is_floating_point:
            raise RuntimeError(f"cdist: only supports floating-point dtypes, {name} is "
                               f"{x.dtype.name}")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"cdist: x1 and x2 must have the same number of columns, got shapes "
                           f"{tuple(x1.shape)} and {tuple(x2.shape)}")
    if p < 0:
        raise RuntimeError(f"cdist: only supports non-negative p values, got {p}")
    difference = x1.unsqueeze(-2) - x2.unsqueeze(-3)  # (..., P, R, M)
    if p == 2:
        return _safe_sqrt((difference * difference).sum(-1))
    return vector_norm(difference, p, dim=-1)


def cross(input, other, *, dim: int = -1):
    """torch.linalg.cross: as Tensor.cross, but dim defaults to -1."""
    return input.cross(other, dim)


# ---- torch.linalg -------------------------------------------------------------------------------
def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None):
    """(sum |x|^ord)^(1/ord) over dim (every element when None); ord inf/-inf: the largest/
    smallest |x|; ord 0: the number of non-zero elements. The gradient at a zero norm is 0,
    as PyTorch's (the formula's would be 0/0)."""
    if dtype is not None:
        x = x.to(dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"linalg.vector_norm: expected a floating point tensor as input, got "
                           f"{x.dtype.name}")
    if isinstance(ord, str) or not isinstance(ord, (int, float)):
        raise RuntimeError(f"linalg.vector_norm: ord must be a number, got {ord!r}")
    magnitude = x.abs()
    if ord == math.inf:
        return magnitude.amax(dim, keepdim) if x.numel() else magnitude.sum(dim, keepdim)
    if ord == -math.inf:
        return magnitude.amin(dim, keepdim)
    if ord == 0:
        return (x != 0).to(x.dtype).sum(dim, keepdim)
    if ord == 1:
        return magnitude.sum(dim, keepdim)
    total = (x * x if ord == 2 else magnitude ** ord).sum(dim, keepdim)
    positive = total > 0
    root = total.where(positive, 1)
    root = root.sqrt() if ord == 2 else root ** (1 / ord)
    return root.where(positive, 0 if ord > 0 else math.inf)


def matrix_norm(x, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None):
    """'fro' and the norms of the column sums (ord 1, -1) and row sums (inf, -inf) of |x|;
    ord 2 / -2 the largest / smallest singular value and 'nuc' their sum (svdvals)."""
    if x.ndim < 2:
        raise RuntimeError(f"linalg.matrix_norm: expected a tensor of 2 or more dims, got shape "
                           f"{tuple(x.shape)}")
    rows, cols = (x._dim(d, "linalg.matrix_norm") for d in dim)
    if ord == "fro":
        return vector_norm(x, 2, (rows, cols), keepdim, dtype=dtype)
    if ord in (1, -1, math.inf, -math.inf):
        summed, reduced = (rows, cols) if ord in (1, -1) else (cols, rows)  # 1: column sums
        sums = vector_norm(x, 1, summed, keepdim=True, dtype=dtype)
        out = sums.amax(reduced, keepdim=True) if ord > 0 else sums.amin(reduced, keepdim=True)
        return out if keepdim else out.squeeze((rows, cols))
    if ord in (2, -2, "nuc"):
        if dtype is not None:
            x = x.to(dtype)
        rest = [d for d in range(x.ndim) if d not in (rows, cols)]
        values = svdvals(x.permute(*rest, rows, cols))
        out = values.sum(-1) if ord == "nuc" else values[..., 0 if ord == 2 else -1]
        return out.unsqueeze(min(rows, cols)).unsqueeze(max(rows, cols)) if keepdim else out
    raise RuntimeError(f"linalg.matrix_norm: order {ord!r} not supported (use 'fro', 'nuc', "
                       "1, -1, 2, -2, inf or -inf)")


def norm(x, ord=None, dim=None, keepdim: bool = False, *, dtype=None):
    """torch.linalg.norm: with ord None, the 2-norm of the elements (over dim); with ord given,
    a vector norm for one dim (or a 1-D input) and a matrix norm for two (or a 2-D input)."""
    if isinstance(dim, int):
        dim = (dim,)
    if ord is None:
        return vector_norm(x, 2, dim, keepdim, dtype=dtype)
    if dim is None:
        if x.ndim not in (1, 2):
            raise RuntimeError(f"linalg.norm: with ord={ord!r} and no dim, the input must be 1-D "
                               f"or 2-D, got shape {tuple(x.shape)}")
        dim = tuple(range(x.ndim))
    if len(dim) == 1:
        return vector_norm(x, ord, dim, keepdim, dtype=dtype)
    if len(dim) == 2:
        return matrix_norm(x, ord, dim, keepdim, dtype=dtype)
    raise RuntimeError(f"linalg.norm: dim must have 1 or 2 entries, got {dim}")


# ---- decompositions: SVD, eigh, pinv, matrix_rank, by one-sided Jacobi ---------------------------
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])  # torch.return_types.linalg_svd
SvdResult = namedtuple("SvdResult", ["U", "S", "V"])  # torch.return_types.svd
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])  # .linalg_eigh


def svd(A, full_matrices: bool = True, *, driver=None):
    """torch.linalg.svd: A = U diag(S) Vh for the matrices in A's last two dims (m, n), S
    largest first; U (m, m) and Vh (n, n) with full_matrices, else (m, k) and (k, n), k =
    min(m, n). Signs of the singular vectors are arbitrary (flip u_i and v_i together), as in
    every SVD. Differentiable for distinct (and, for U, Vh of a non-square A, nonzero) singular
    values, with PyTorch's formula (edugrad/function.py, SVD); the columns that complete U or
    Vh to squares get no gradient, as in PyTorch."""
    _check_float_matrices("linalg.svd", A)
    return SVDResult(*SVD.apply(A, full_matrices, _svd))


def svdvals(A, *, driver=None):
    """The singular values of the matrices in A's last two dims, largest first, as
    torch.linalg.svdvals. Their gradient is U diag(gS) Vh, right even where they repeat."""
    _check_float_matrices("linalg.svdvals", A)
    return SVD.apply(A, False, _svd)[1]


def _svd(A, full_matrices: bool):
    """U, S, Vh by one-sided Jacobi (Hestenes): rotate pairs of A's columns until they are
    orthogonal. Then A V = [columns], V the product of the rotations; the columns' lengths are
    the singular values, their directions U. It works on A itself, never A^T A, so a small
    singular value keeps its relative accuracy. A column of length ~0 has no direction: U gets
    one there that completes it (_complete), as it does for full_matrices."""
    m, n = A.shape[-2:]
    if m < n:  # the transpose's, A^T = U S Vh: fewer, longer columns
        U, S, Vh = _svd(A.mT, full_matrices)
        return Vh.mT, S, U.mT
    if n == 0 or A.numel() == 0:
        return _empty_svd(A, full_matrices)
    columns, rotations = _jacobi(A)
    S, order = _stack([_length(column) for column in columns]).sort(dim=-1, descending=True)
    U, V = _by_order(stack(columns, -1), order), _by_order(stack(rotations, -1), order)
    directed = S > S[..., :1] * _epsilon(A.dtype)  # a prefix: S is sorted
    U = U / S.where(directed, 1).unsqueeze(-2)
    if (full_matrices and m > n) or not bool(directed.all().item()):
        U = _complete(U, directed, m if full_matrices else n)
    return U, S, V.mT


def _jacobi(A, rotations: bool = True):
    """One-sided Jacobi on the columns of A (..., m, n): the rotated columns (a list of (..., m)),
    and the product V of the rotations as a list of its columns (..., n) (A V = the columns).
    Sweeps repeat until no pair's cosine exceeds the dtype's epsilon (one host read a sweep);
    convergence is quadratic, a handful of sweeps for the sizes this is meant for (n^2/2
    rotations a sweep, each ~20 ops on whole batches: fine for n up to a few dozen)."""
    n = A.shape[-1]
    columns = [A[..., i] for i in range(n)]
    identity = _identity(n, A)
    basis = [identity[..., i].expand(A.shape[:-2] + (n,)) for i in range(n)] if rotations else None
    tolerance = 8 * _epsilon(A.dtype)
    for _ in range(60):  # ~ 10 sweeps suffice; the cap only guards against NaN input
        worst = [_rotate(columns, p, q, basis) for p in range(n - 1) for q in range(p + 1, n)]
        if not worst or not float(_stack(worst).amax().item()) > tolerance:
            break  # converged (a NaN cosine would not improve either)
    return columns, basis


def _rotate(columns: list, p: int, q: int, basis: list | None = None):
    """One Jacobi rotation: make columns p and q orthogonal (in place in the list), and rotate
    basis's p and q alike. Returns their cosine before the rotation, to tell when to stop."""
    a, b = columns[p], columns[q]
    alpha, beta, gamma = (a * a).sum(-1), (b * b).sum(-1), (a * b).sum(-1)
    # the angle that diagonalises [[alpha, gamma], [gamma, beta]]: t = tan(theta), the smaller
    # root of t^2 + 2 zeta t - 1 = 0 with zeta = (beta - alpha) / (2 gamma), written without
    # dividing by gamma (0 when the pair is already orthogonal)
    spread = beta - alpha
    sign = spread.where(spread < 0, 1).sign()
    radius = _safe_sqrt(spread * spread + 4 * gamma * gamma)
    denominator = spread.abs() + radius
    t = 2 * gamma * sign / denominator.where(denominator > 0, 1)
    cos = (1 / (1 + t * t).sqrt()).unsqueeze(-1)
    sin = cos * t.unsqueeze(-1)
    for pair in (columns,) if basis is None else (columns, basis):
        a, b = pair[p], pair[q]
        pair[p], pair[q] = cos * a - sin * b, sin * a + cos * b
    scale = _safe_sqrt(alpha * beta)
    return gamma.abs() / scale.where(scale > 0, 1)


def _complete(U, directed, width: int):
    """U (..., m, n) with orthonormal columns where `directed` (..., n) holds (a prefix), made
    (..., m, width) with orthonormal columns throughout: the directed ones, then a basis of
    what they miss. That basis is Jacobi again, on the projector I - Q Q^T (Q: the directed
    columns): its columns span the rest, and rotated orthogonal the nonzero ones are a basis."""
    m, n = U.shape[-2:]
    kept = U * directed.unsqueeze(-2)
    columns, _ = _jacobi(_identity(m, U) - kept @ kept.mT, rotations=False)
    lengths, order = _stack([_length(column) for column in columns]).sort(dim=-1,
                                                                          descending=True)
    rest = _by_order(stack(columns, -1), order) / lengths.where(lengths > 0, 1).unsqueeze(-2)
    count = directed.long().sum(-1, keepdim=True)  # (..., 1)
    place = count.new_tensor(list(range(width)))
    # column j: U's j-th while j < count, else the rest's (j - count)-th
    filler = _by_order(rest, (place - count).clamp(min=0))
    if width > n:
        U = U.pad(tuple((0, 0) for _ in U.shape[:-1]) + ((0, width - n),))
    return U.where((place < count).unsqueeze(-2), filler)


def _empty_svd(A, full_matrices: bool):
    """The SVD of matrices with no elements: identities where full_matrices asks for them."""
    m, n = A.shape[-2:]
    k = min(m, n)
    U, Vh = _identity(m, A), _identity(n, A)
    U, Vh = (U, Vh) if full_matrices else (U[..., :k], Vh[..., :k, :])
    batch = tuple(A.shape[:-2])
    return (U.expand(batch + tuple(U.shape)), A.new_zeros(batch + (k,)),
            Vh.expand(batch + tuple(Vh.shape)))


def eigh(A, UPLO: str = "L"):
    """torch.linalg.eigh: the eigenvalues (ascending) and eigenvectors (columns) of symmetric
    matrices, read from A's lower (UPLO='L') or upper triangle. Differentiable, with PyTorch's
    formula (edugrad/function.py, Eigh): the eigenvectors' gradient needs distinct eigenvalues."""
    _check_symmetric_arguments("linalg.eigh", A, UPLO)
    return EighResult(*Eigh.apply(A, UPLO, _eigh))


def eigvalsh(A, UPLO: str = "L"):
    """torch.linalg.eigvalsh: eigh's eigenvalues; their gradient is V diag(gL) V^T."""
    _check_symmetric_arguments("linalg.eigvalsh", A, UPLO)
    return Eigh.apply(A, UPLO, _eigh)[0]


def _eigh(A, UPLO: str):
    """Jacobi again, on B = A + c I with c = ||A||_F >= every |eigenvalue|: B is positive
    semi-definite, so the rotations that make its columns orthogonal are its eigenvectors, and
    A's (the shift moves every eigenvalue alike; on A itself, eigenvalues l and -l would share
    a singular value and their vectors mix). The eigenvalues are the Rayleigh quotients
    v^T A v, which are accurate to the square of the vectors' error."""
    A = _symmetric(A, UPLO)
    n = A.shape[-1]
    identity = _identity(n, A)
    if A.numel() == 0:
        return A.new_zeros(A.shape[:-1]), identity.expand(A.shape)
    shift = vector_norm(A, 2, (-2, -1), keepdim=True)
    _, rotations = _jacobi(A + shift * identity)
    V = stack(rotations, -1)
    eigenvalues, order = ((V.mT @ A) * V.mT).sum(-1).sort(dim=-1)
    return eigenvalues, _by_order(V, order)


def _symmetric(A, UPLO: str):
    """The symmetric matrix A's lower (L) or upper (U) triangle describes."""
    return A.tril() + A.tril(-1).mT if UPLO == "L" else A.triu() + A.triu(1).mT


def pinv(A, *, atol=None, rtol=None, hermitian: bool = False):
    """torch.linalg.pinv: the pseudo-inverse V diag(1/s) U^T over the singular values above
    max(atol, rtol * s_max); rtol defaults to eps * max(m, n) (0 when atol > 0 is given).
    hermitian: A is symmetric, read from its lower triangle. Differentiable where small changes
    keep the rank, with PyTorch's formula (edugrad/function.py, PInv)."""
    _check_float_matrices("linalg.pinv", A)
    return PInv.apply(A, lambda X: _pinv(X, atol, rtol, hermitian))


def _pinv(A, atol, rtol, hermitian: bool):
    if hermitian:
        A = _symmetric(A, "L")
    U, S, Vh = _svd(A, False)
    above = S > _cutoff(A, S, atol, rtol)
    return (Vh.mT * (1 / S.where(above, 1)).where(above, 0).unsqueeze(-2)) @ U.mT


def matrix_rank(A, tol=None, hermitian: bool = False, *, atol=None, rtol=None):
    """torch.linalg.matrix_rank: how many singular values exceed max(atol, rtol * s_max)
    (pinv's rule; the old `tol` is an atol with rtol 0). int64, no gradient."""
    _check_float_matrices("linalg.matrix_rank", A)
    if tol is not None:
        atol, rtol = tol, 0
    A = A.detach()
    S = eigvalsh(A).abs() if hermitian else svdvals(A)
    return (S > _cutoff(A, S, atol, rtol)).long().sum(-1)


def _cutoff(A, S, atol, rtol):
    """max(atol, rtol * s_max) with PyTorch's defaults, (..., 1) against S (..., k); atol and
    rtol are numbers or tensors of A's batch shape."""
    if rtol is None:
        rtol = _epsilon(A.dtype) * max(A.shape[-2:])
        if atol is not None:  # a positive atol alone means rtol 0
            rtol = (atol <= 0).to(S.dtype) * rtol if hasattr(atol, "shape") else \
                (rtol if atol <= 0 else 0.0)
    largest = S.amax(-1, keepdim=True) if S.shape[-1] else S.new_zeros(S.shape[:-1] + (1,))
    cutoff = largest * (rtol.unsqueeze(-1) if hasattr(rtol, "shape") else rtol)
    if atol is None:
        return cutoff
    return cutoff.maximum(atol.unsqueeze(-1)) if hasattr(atol, "shape") else \
        cutoff.clamp(min=atol)


def _check_float_matrices(op: str, A) -> None:
    if A.ndim < 2 or not A.dtype.is_floating_point:
        raise RuntimeError(f"{op}: expected a float tensor of 2 or more dims, got shape "
                           f"{tuple(A.shape)} of {A.dtype.name}")


def _check_symmetric_arguments(op: str, A, UPLO: str) -> None:
    _check_float_matrices(op, A)
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{op}: A must be batches of square matrices, but they are "
                           f"{A.shape[-2]} by {A.shape[-1]} matrices")
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"{op}: expected UPLO to be 'L' or 'U', but got {UPLO!r}")


def _identity(n: int, like):
    return like.new_ones(n).diag_embed()


def _epsilon(dtype) -> float:
    return 2.0 ** -52 if dtype is dtypes.float64 else 2.0 ** -23


def _by_order(matrix, order):
    """matrix (..., r, n) with its columns in `order` (..., n)."""
    return matrix.gather(-1, order.unsqueeze(-2).expand(tuple(matrix.shape[:-1])
                                                        + tuple(order.shape[-1:])))


def _safe_sqrt(x):
    """sqrt with a zero gradient at 0 (not inf, which times 0 would be NaN)."""
    positive = x > 0
    return x.where(positive, 1).sqrt().where(positive, 0)


def _length(column):
    return _safe_sqrt((column * column).sum(-1))


def _stack(tensors: list):
    return stack(tensors, -1)


# ---- einsum ----------------------------------------------------------------------------------------
def einsum(equation: str, *operands):
    """torch.einsum / numpy.einsum on equation strings: implicit and explicit ('->') outputs,
    '...' for broadcast dims, a label repeated within an operand for its diagonal."""
    if not isinstance(equation, str):  # einsum(x, [0, 1], y, [1, 2], [0, 2]): sublists
        equation, operands = _from_sublists((equation,) + operands)
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise RuntimeError("einsum: expected at least one operand")
    inputs, output = _parse(equation.replace(" ", ""), operands)
    dtype = operands[0].dtype
    for t in operands[1:]:
        dtype = dtypes.result_type((dtype, 1), (t.dtype, 1))
    terms = []
    for tensor, labels in zip(operands, inputs):
        tensor = tensor.to(dtype)
        tensor, labels = _take_diagonals(tensor, labels)
        terms.append((tensor, labels))
    sizes = _label_sizes(terms, equation)
    for i, (tensor, labels) in enumerate(terms):  # sum what only this operand has
        elsewhere = set(output).union(*(set(l) for j, (_, l) in enumerate(terms) if j != i))
        terms[i] = _sum_out(tensor, labels, [l for l in labels if l not in elsewhere])
    tensor, labels = terms[0]
    for k in range(1, len(terms)):
        needed = set(output).union(*(set(l) for _, l in terms[k + 1:]))
        tensor, labels = _contract(tensor, labels, *terms[k], needed, sizes)
    tensor, labels = _sum_out(tensor, labels, [l for l in labels if l not in output])
    return tensor.permute(*[labels.index(l) for l in output]) if labels != output else tensor


def _from_sublists(args):
    """NumPy's other form: operand, sublist, operand, sublist, ..., [output sublist]; the ints
    0..51 name the dims (as letters a..zA..Z here) and Ellipsis stands for '...'."""
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

    def spelled(sublist):
        try:
            return "".join("..." if d is Ellipsis else letters[d] for d in sublist)
        except (IndexError, TypeError):
            raise RuntimeError(f"einsum: sublist {sublist!r} must hold ints in [0, 52) or "
                               "Ellipsis") from None

    operands, inputs = args[0::2], args[1::2]
    output = None
    if len(operands) > len(inputs):  # an odd count: the last one is the output sublist
        operands, output = operands[:-1], operands[-1]
    equation = ",".join(spelled(s) for s in inputs)
    if output is not None:
        equation += "->" + spelled(output)
    return equation, tuple(operands)


def _parse(equation: str, operands):
    """Each operand's labels and the output's, as lists; '...' dims get labels 0, 1, ..."""
    left, arrow, right = equation.partition("->")
    parts = left.split(",")
    if len(parts) != len(operands):
        raise RuntimeError(f"einsum: equation {equation!r} has {len(parts)} operands, got "
                           f"{len(operands)} tensors")
    ellipsis = 0
    for part, t in zip(parts, operands):
        letters = len(part.replace("...", ""))
        if "..." in part:
            ellipsis = max(ellipsis, t.ndim - letters)
        if (t.ndim != letters and "..." not in part) or t.ndim < letters:
            raise RuntimeError(f"einsum: operand {part!r} has {letters} labels but the tensor "
                               f"has shape {tuple(t.shape)}")
    inputs = []
    for part, t in zip(parts, operands):
        _check_letters(part, equation)
        before, dots, after = part.partition("...")
        count = t.ndim - len(before) - len(after)
        broadcast = list(range(ellipsis - count, ellipsis)) if dots else []
        inputs.append(list(before) + broadcast + list(after))
    if arrow:
        _check_letters(right, equation)
        before, dots, after = right.partition("...")
        output = list(before) + (list(range(ellipsis)) if dots else []) + list(after)
        seen = [l for ls in inputs for l in ls]
        for label in output:
            if output.count(label) > 1:
                raise RuntimeError(f"einsum: output label {label!r} appears more than once in "
                                   f"{equation!r}")
            if label not in seen:
                raise RuntimeError(f"einsum: output label {label!r} does not appear in any "
                                   f"operand of {equation!r}")
    else:  # implicit: broadcast dims, then the letters that occur once, in alphabetical order
        letters = [l for ls in inputs for l in ls if isinstance(l, str)]
        output = list(range(ellipsis)) + sorted(l for l in set(letters) if letters.count(l) == 1)
    return inputs, output


def _check_letters(part: str, equation: str) -> None:
    rest = part.replace("...", "", 1)
    if any(not c.isalpha() for c in rest):
        raise RuntimeError(f"einsum: invalid subscript {part!r} in {equation!r} (letters and one "
                           "'...' only)")


def _take_diagonals(tensor, labels):
    """'ii' -> the diagonal: a repeated label keeps one dim, the diagonal, at the end."""
    labels = list(labels)
    while len(set(labels)) != len(labels):
        label = next(l for l in labels if labels.count(l) > 1)
        first = labels.index(label)
        second = labels.index(label, first + 1)
        if tensor.shape[first] != tensor.shape[second]:
            raise RuntimeError(f"einsum: label {label!r} has sizes {tensor.shape[first]} and "
                               f"{tensor.shape[second]} in one operand")
        tensor = tensor.diagonal(0, first, second)
        labels = [l for i, l in enumerate(labels) if i not in (first, second)] + [label]
    return tensor, labels


def _label_sizes(terms, equation: str) -> dict:
    sizes = {}
    for tensor, labels in terms:
        for label, size in zip(labels, tensor.shape):
            known = sizes.get(label, 1)
            if size != 1 and known != 1 and size != known:
                raise RuntimeError(f"einsum: label {label!r} has sizes {known} and {size} in "
                                   f"{equation!r}")
            sizes[label] = size if known == 1 else known
    return sizes


def _sum_out(tensor, labels, gone):
    if not gone:
        return tensor, labels
    axes = tuple(labels.index(l) for l in gone)
    return tensor.sum(axes), [l for l in labels if l not in gone]


def _contract(a, a_labels, b, b_labels, needed: set, sizes: dict):
    """a and b as one tensor: shared labels still needed are batch dims, shared ones not
    needed are contracted by matmul, the rest are rows (a) and columns (b)."""
    shared = [l for l in a_labels if l in b_labels]
    batch = [l for l in shared if l in needed]
    summed = [l for l in shared if l not in needed]
    rows = [l for l in a_labels if l not in shared]
    cols = [l for l in b_labels if l not in shared]

    def arranged(t, labels, order):
        t = t.permute(*[labels.index(l) for l in order])
        return t.expand(*[sizes[l] for l in order])  # size-1 dims broadcast, as '...' allows

    def size(group):
        return math.prod(sizes[l] for l in group)

    left = arranged(a, a_labels, batch + rows + summed).reshape(size(batch), size(rows), size(summed))
    right = arranged(b, b_labels, batch + summed + cols).reshape(size(batch), size(summed), size(cols))
    if left.dtype.is_floating_point:
        product = left.matmul(right)
    else:  # MATMUL is for floats: integers multiply and sum, as matmul's composition does
        product = (left.unsqueeze(-1) * right.unsqueeze(1)).sum(2)
    out = product.reshape(*[sizes[l] for l in batch + rows + cols])
    return out, batch + rows + cols
