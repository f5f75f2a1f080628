"""Tensor shape ops: reshape and friends, cat/stack/split, gather, and indexing.

Layer: Tensor (top). A mixin of Tensor; imports edugrad.function and edugrad.dtypes, and NumPy
only to turn a boolean mask into indices on the host (as PyTorch does: the result's shape
depends on the data).

Indexing is built from three movement Functions and one gather:
    x[1:3]    Shrink            x[::2]   Strided       x[None]   Reshape
    x[idx]    Take on a flattened view (every integer-array or mask index becomes one flat index)

What PyTorch documents as a view is one here too (views.py): `view`, `reshape` when a view can
do it, basic indexing, `narrow`, `select`, `permute` and its kin, `unsqueeze`/`squeeze`,
`expand`, `split`/`chunk`/`unbind`. Advanced indexing, `repeat` and `flip` copy, as in PyTorch.
"""

from __future__ import annotations

import math

import numpy as np

from edugrad import dtypes, views
from edugrad.data import TensorData
from edugrad.function import Flip, IndexAdd, Pad, Permute, Reshape, Take, Where
from edugrad.math import broadcast_shape
from edugrad.views import ExpandStep, PermuteStep, ReshapeStep, ShrinkStep, StridedStep
from edugrad.views import ViewStep


def _sizes(args) -> tuple:
    """Accept f(2, 3) and f((2, 3)) alike."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def _prod(shape) -> int:
    n = 1
    for size in shape:
        n *= size
    return n


class ShapeMixin:
    __slots__ = ()

    # ---- reshaping --------------------------------------------------------------------------------
    def _resolve_shape(self, shape, op: str) -> tuple:
        shape = _sizes(shape)
        numel = self.numel()
        if shape.count(-1) > 1:
            raise RuntimeError(f"{op}: only one dim can be -1, got {shape}")
        if -1 in shape:
            known = _prod(s for s in shape if s != -1)
            if known == 0 or numel % known:
                raise RuntimeError(f"{op}: shape {shape} is invalid for input of size {numel}")
            shape = tuple(numel // known if s == -1 else s for s in shape)
        if _prod(shape) != numel or any(s < 0 for s in shape):
            raise RuntimeError(f"{op}: shape {shape} is invalid for input of size {numel}")
        return shape

    def reshape(self, *shape):
        """A view when one can be made (always, unless self is a non-contiguous view), else
        a copy, as PyTorch's reshape."""
        step = ReshapeStep(self._resolve_shape(shape, "reshape"))
        layout = step.layout(self._data.shape, *views.layout(self))
        if layout is None:
            return Reshape.apply(self, shape=step.shape)
        return views.make_view(self, step, layout)

    def view(self, *shape):
        """The same values in another shape, always a view (an error where none can be made)."""
        step = ReshapeStep(self._resolve_shape(shape, "view"))
        layout = step.layout(self._data.shape, *views.layout(self))
        if layout is None:
            raise RuntimeError(
                f"view: view size {step.shape} is not compatible with input tensor's size "
                f"{self.shape} and stride {self.stride()} (at least one dimension spans across "
                "two contiguous subspaces). Use .reshape(...) instead."
            )
        return views.make_view(self, step, layout)

    def view_as(self, other):
        return self.view(other.shape)

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        if self.ndim == 0:
            return self.reshape(1)
        start, end = self._dim(start_dim, "flatten"), self._dim(end_dim, "flatten")
        # the size is spelled out, not -1: -1 is ambiguous when a dim is 0
        return self.reshape(self.shape[:start] + (_prod(self.shape[start:end + 1]),)
                            + self.shape[end + 1:])

    def unflatten(self, dim: int, sizes):
        dim = self._dim(dim, "unflatten")
        return self.reshape(self.shape[:dim] + tuple(sizes) + self.shape[dim + 1:])

    def unsqueeze(self, dim: int):
        dim = self._dim(dim, "unsqueeze", extra=1)
        strides, offset = views.layout(self)  # PyTorch's stride for the new dim, for stride()
        stride = strides[dim] * self.shape[dim] if dim < self.ndim else 1
        step = ReshapeStep(self.shape[:dim] + (1,) + self.shape[dim:])
        return views.make_view(self, step, (strides[:dim] + (stride,) + strides[dim:], offset))

    def squeeze(self, dim=None):
        dims = self._axes(dim, "squeeze") if dim is not None and self.ndim else range(self.ndim)
        keep = [i for i in range(self.ndim) if not (i in dims and self.shape[i] == 1)]
        strides, offset = views.layout(self)
        step = ReshapeStep(tuple(self.shape[i] for i in keep))
        return views.make_view(self, step, (tuple(strides[i] for i in keep), offset))

    def permute(self, *dims):
        dims = tuple(self._dim(d, "permute") for d in _sizes(dims))
        if sorted(dims) != list(range(self.ndim)):
            raise RuntimeError(
                f"permute: {dims} is not a permutation of the {self.ndim} dims of shape {self.shape}"
            )
        return views.make_view(self, PermuteStep(dims))

    def transpose(self, dim0: int, dim1: int):
        order = list(range(self.ndim))
        a, b = self._dim(dim0, "transpose"), self._dim(dim1, "transpose")
        order[a], order[b] = order[b], order[a]
        return self.permute(*order)

    swapaxes = transpose

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):
        return self.transpose(-2, -1)

    def t(self):
        if self.ndim > 2:
            raise RuntimeError(f"t: expects a tensor with <= 2 dims, but self has shape {self.shape}")
        return self.transpose(0, 1) if self.ndim == 2 else self.permute(*range(self.ndim))

    def expand(self, *sizes):
        sizes = _sizes(sizes)
        if len(sizes) < self.ndim:
            raise RuntimeError(f"expand: the number of sizes {sizes} must be at least the "
                               f"number of dims of shape {self.shape}")
        lead = len(sizes) - self.ndim
        shape = tuple(self.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
        for i, size in enumerate(self.shape):
            if size != 1 and size != shape[lead + i]:
                raise RuntimeError(
                    f"expand: shape {self.shape} cannot be expanded to {sizes} (dim {lead + i}: "
                    f"{size} is not 1)"
                )
        return views.make_view(self, ExpandStep(shape))

    def expand_as(self, other):
        return self.expand(other.shape)

    def repeat(self, *repeats):
        repeats = _sizes(repeats)
        if len(repeats) < self.ndim:
            raise RuntimeError(f"repeat: {len(repeats)} repeats for {self.ndim} dims")
        shape = (1,) * (len(repeats) - self.ndim) + self.shape
        # (a, b) repeated (r, s): (1, a, 1, b), broadcast to (r, a, s, b), merge pairs; a copy
        spread = Reshape.apply(self, shape=tuple(v for s in shape for v in (1, s)))
        grown = spread._broadcast_to(tuple(v for r, s in zip(repeats, shape) for v in (r, s)))
        return Reshape.apply(grown, shape=tuple(r * s for r, s in zip(repeats, shape)))

    def flip(self, *dims):
        axes = self._axes(_sizes(dims), "flip")
        return Flip.apply(self, axes=axes) if axes else self

    def sum_to_shape(self, shape: tuple):
        """Sum over the dims that broadcasting added or grew: the adjoint of expand."""
        lead = self.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(shape) if s == 1 and self.shape[lead + i] != 1
        )
        out = self.sum(axes, keepdim=True) if axes else self
        return Reshape.apply(out, shape=shape) if out.shape != shape else out  # no view: a gradient

    def pad(self, padding, value=0):
        """Pad with (before, after) per dim, the first pair for the first dim (see F.pad)."""
        return Pad.apply(self, padding=tuple(tuple(p) for p in padding), value=value)

    # ---- joining and splitting ----------------------------------------------------------------------
    def split(self, split_size_or_sections, dim: int = 0):
        dim = self._dim(dim, "split")
        size = self.shape[dim]
        if isinstance(split_size_or_sections, int):
            step = split_size_or_sections
            if step <= 0:
                raise ValueError(f"split: split_size must be positive, got {step}")
            sections = [min(step, size - start) for start in range(0, size, step)] or [0]
        else:
            sections = list(split_size_or_sections)
            if sum(sections) != size:
                raise RuntimeError(f"split: sections {sections} don't add up to {size} "
                                   f"(dim {dim} of shape {self.shape})")
        pieces, start = [], 0
        for length in sections:
            pieces.append(self._narrow(dim, start, length))
            start += length
        return tuple(pieces)

    def chunk(self, chunks: int, dim: int = 0):
        if chunks <= 0:
            raise ValueError(f"chunk: chunks must be positive, got {chunks}")
        size = self.shape[self._dim(dim, "chunk")]
        return self.split(max(1, -(-size // chunks)), dim)

    def narrow(self, dim: int, start: int, length: int):
        dim = self._dim(dim, "narrow")
        size = self.shape[dim]
        start = start + size if start < 0 else start
        if not (0 <= start <= size and 0 <= length <= size - start):
            raise IndexError(f"narrow: start {start} and length {length} are out of range for "
                             f"dim {dim} of size {size} (shape {self.shape})")
        return self._narrow(dim, start, length)

    def _narrow(self, dim: int, start: int, length: int):
        bounds = tuple((start, start + length) if i == dim else (0, s)
                       for i, s in enumerate(self.shape))
        return views.make_view(self, ShrinkStep(bounds))

    def select(self, dim: int, index: int):
        """self[..., index, ...] at `dim`, that dim removed: a view."""
        dim = self._dim(dim, "select")
        size = self.shape[dim]
        if not -size <= index < size:
            raise IndexError(f"index {index} is out of bounds for dim {dim} with size {size}")
        return self._narrow(dim, index % size, 1).squeeze(dim)

    def unbind(self, dim: int = 0):
        dim = self._dim(dim, "unbind")
        return tuple(self.select(dim, i) for i in range(self.shape[dim]))

    def movedim(self, source, destination):
        source = [self._dim(d, "movedim") for d in ((source,) if isinstance(source, int) else source)]
        destination = [self._dim(d, "movedim")
                       for d in ((destination,) if isinstance(destination, int) else destination)]
        if len(source) != len(destination):
            raise RuntimeError(f"movedim: {len(source)} source dims but {len(destination)} "
                               "destination dims")
        rest = iter(d for d in range(self.ndim) if d not in source)
        placed = dict(zip(destination, source))
        return self.permute(*[placed[d] if d in placed else next(rest) for d in range(self.ndim)])

    moveaxis = movedim

    def gather(self, dim: int, index):
        """out[i][j][k] = self[i][index[i][j][k]][k] for dim=1, as torch.gather."""
        dim = self._dim(dim, "gather")
        if index.ndim != self.ndim:
            raise RuntimeError(f"gather: index has {index.ndim} dims, input has {self.ndim}")
        if index.device != self.device:
            raise RuntimeError(f"gather: expected the index on the input's device {self.device}, "
                               f"got {index.device}")
        self._check_index(index, self.shape[dim], "gather", dim)
        # one flat position per output element: the index on `dim`, the position elsewhere
        flat = None
        stride = 1
        for axis in reversed(range(self.ndim)):
            if axis == dim:
                coordinate = index.detach().long()
            else:
                coordinate = self._arange(index.shape[axis]).reshape(
                    *[index.shape[axis] if d == axis else 1 for d in range(self.ndim)])
            term = coordinate * stride if stride != 1 else coordinate
            flat = term if flat is None else flat + term
            stride *= self.shape[axis]
        flat = flat.expand(index.shape)
        return Take.apply(self.reshape(-1), flat, axis=0)

    def _arange(self, n: int):
        return self._result_class._make(TensorData.arange(n, dtypes.int64, self._data.backend), None)

    # ---- masks and triangles (issue 10) --------------------------------------------------------------
    def masked_fill(self, mask, value):
        """self where mask is False, value where it is True; mask broadcasts to self's shape."""
        if not isinstance(mask, ShapeMixin) or mask.dtype is not dtypes.bool_:
            got = mask.dtype.name if isinstance(mask, ShapeMixin) else type(mask).__name__
            raise RuntimeError(f"masked_fill: expected a bool mask, got {got}")
        if isinstance(value, ShapeMixin):
            if value.ndim:
                raise RuntimeError(f"masked_fill: only a 0-d value tensor is supported, got "
                                   f"shape {tuple(value.shape)}")
            value = value.to(self.dtype)
        if broadcast_shape(mask.shape, self.shape, "masked_fill") != self.shape:
            raise RuntimeError(f"masked_fill: mask of shape {tuple(mask.shape)} cannot be "
                               f"broadcast to the input's shape {tuple(self.shape)}")
        return self.where(~mask, value) if isinstance(value, ShapeMixin) else \
            self.where(~mask, self._constant(value, self.dtype))

    def tril(self, diagonal: int = 0):
        """Elements on and below the `diagonal`-th diagonal of the last two dims; zeros above."""
        return self._triangle(diagonal, lower=True)

    def triu(self, diagonal: int = 0):
        return self._triangle(diagonal, lower=False)

    def _triangle(self, diagonal: int, lower: bool):
        op = "tril" if lower else "triu"
        if self.ndim < 2:
            raise RuntimeError(f"{op}: input must have at least 2 dims, got shape {self.shape}")
        rows, columns = self.shape[-2:]
        # column - row against the diagonal's number: a (rows, columns) mask, broadcast
        offset = self._arange(columns).reshape(1, columns) - self._arange(rows).reshape(rows, 1)
        keep = offset <= diagonal if lower else offset >= diagonal
        return self.where(keep, self._constant(0, self.dtype))

    def roll(self, shifts, dims=None):
        """Shift elements along dims, wrapping around: two narrows joined in swapped order."""
        if dims is None:
            if not isinstance(shifts, int) and len(shifts) != 1:
                raise RuntimeError(f"roll: with dims=None, shifts must be one int, got {shifts}")
            shift = shifts if isinstance(shifts, int) else shifts[0]
            return self.flatten().roll(shift, 0).reshape(self.shape)
        shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        if len(shifts) != len(dims):
            raise RuntimeError(f"roll: shifts {shifts} and dims {dims} must have the same length")
        out = self
        for shift, dim in zip(shifts, dims):
            dim = self._dim(dim, "roll")
            size = self.shape[dim]
            if size == 0 or shift % size == 0:
                continue
            cut = size - shift % size  # the last shift elements move to the front
            out = cat([out._narrow(dim, cut, size - cut), out._narrow(dim, 0, cut)], dim)
        return out if out is not self else Reshape.apply(self, shape=self.shape)  # still a copy

    def tile(self, *dims):
        """repeat, with fewer dims than self allowed (ones are put in front), as torch.tile."""
        dims = _sizes(dims)
        return self.repeat((1,) * (self.ndim - len(dims)) + tuple(dims))

    def repeat_interleave(self, repeats, dim=None, output_size=None):
        """Each element repeated `repeats` times along dim (flattened first when dim is None);
        `repeats` an int, or a tensor with one count per element (a host read for the size)."""
        x = self.flatten() if dim is None else self
        dim = 0 if dim is None else x._dim(dim, "repeat_interleave")
        if isinstance(repeats, ShapeMixin) and repeats.numel() == 1 and repeats.ndim <= 1:
            repeats = int(repeats.item())
        if isinstance(repeats, int):
            if repeats < 0:
                raise RuntimeError(f"repeat_interleave: repeats must be non-negative, got {repeats}")
            spread = x.unsqueeze(dim + 1)
            sizes = list(spread.shape)
            sizes[dim + 1] = repeats
            return spread.expand(sizes).flatten(dim, dim + 1)
        index = _interleaved_positions(repeats, x.shape[dim], "repeat_interleave")
        return x.index_select(dim, index)

    # ---- scatter and index_* ------------------------------------------------------------------------
    def _flat_positions(self, dim: int, index, op: str):
        """For every element of `index`, its flat position in self: index[...] along `dim`,
        the element's own coordinate along the other dims (index may be smaller than self)."""
        if index.ndim != self.ndim:
            raise RuntimeError(f"{op}: index has {index.ndim} dims ({tuple(index.shape)}), "
                               f"self has {self.ndim} ({tuple(self.shape)})")
        if index.dtype is not dtypes.int64 and index.dtype is not dtypes.int32:
            raise RuntimeError(f"{op}: index must be an int64 tensor, got {index.dtype.name}")
        if index.device != self.device:
            raise RuntimeError(f"{op}: expected the index on self's device {self.device}, got "
                               f"{index.device}")
        for d in range(self.ndim):
            if d != dim and index.shape[d] > self.shape[d]:
                raise RuntimeError(f"{op}: index of shape {tuple(index.shape)} is larger than "
                                   f"self of shape {tuple(self.shape)} in dim {d}")
        self._check_index(index, self.shape[dim] if self.ndim else 1, op, dim)
        flat, stride = None, 1
        for axis in reversed(range(self.ndim)):
            if axis == dim:
                coordinate = index.detach().long()
                coordinate = coordinate.where(coordinate >= 0, coordinate + self.shape[dim])
            else:
                coordinate = self._arange(index.shape[axis]).reshape(
                    *[index.shape[axis] if d == axis else 1 for d in range(self.ndim)])
            term = coordinate * stride if stride != 1 else coordinate
            flat = term if flat is None else flat + term
            stride *= self.shape[axis]
        return (flat if flat is not None else index.detach().long()).expand(index.shape).reshape(-1)

    def _scatter_source(self, index, src, op: str):
        """src's part that index covers (src may be larger), as one flat vector of self's dtype."""
        if not isinstance(src, ShapeMixin):
            return self._constant(src, self.dtype, (index.numel(),))
        if src.ndim != index.ndim or any(i > s for i, s in zip(index.shape, src.shape)):
            raise RuntimeError(f"{op}: index of shape {tuple(index.shape)} must not be larger "
                               f"than src of shape {tuple(src.shape)}")
        if src.dtype is not self.dtype:
            raise RuntimeError(f"{op}: expected src of self's dtype {self.dtype.name}, got "
                               f"{src.dtype.name}")
        bounds = tuple((0, size) for size in index.shape)
        part = src if tuple(src.shape) == tuple(index.shape) else views.make_view(src, ShrinkStep(bounds))
        return part.reshape(-1)

    def scatter_add(self, dim: int, index, src):
        """self, with src[i][j] added at [index[i][j]][j] (dim 0), repeats adding up."""
        dim = self._dim(dim, "scatter_add")
        positions = self._flat_positions(dim, index, "scatter_add")
        values = self._scatter_source(index, src, "scatter_add")
        added = IndexAdd.apply(values, positions, shape=(self.numel(),), axis=0)
        return self + added.reshape(self.shape)

    def scatter(self, dim: int, index, src=None, value=None, reduce=None):
        """self, with src[i][j] (or the number `value`) written at [index[i][j]][j] (dim 0).

        Where index repeats a position, the last write along `dim` wins, as in PyTorch's CPU
        kernel, which walks each line along `dim` in order (PyTorch documents the winner as
        undefined, and on CUDA it is). The gradient goes to the src element that was written
        (PyTorch's backward sends every duplicate the output's gradient, grad.gather(dim,
        index), which is not the derivative of its forward; the two agree without repeats).
        reduce='add' / 'multiply' adds / multiplies every write in: scatter_reduce's 'sum' /
        'prod' with include_self."""
        if src is None:
            src = value
        if src is None:
            raise TypeError("scatter: expected src or value")
        if reduce is not None:
            if reduce not in ("add", "multiply"):
                raise RuntimeError(f"scatter: reduce argument must be either add or multiply, "
                                   f"got {reduce!r} (scatter_reduce has sum, prod, mean, amax, "
                                   "amin)")
            if not isinstance(src, ShapeMixin):
                src = self._constant(src, self.dtype, tuple(index.shape))
            if reduce == "add":
                return self.scatter_add(dim, index, src)
            return self.scatter_reduce(dim, index, src, "prod")
        dim = self._dim(dim, "scatter")
        positions = self._flat_positions(dim, index, "scatter")
        values = self._scatter_source(index, src, "scatter")
        flat_shape = (self.numel(),)
        hits = IndexAdd.apply(self._constant(1, dtypes.int64, values.shape), positions,
                              shape=flat_shape, axis=0)
        # repeats are only possible along dim; a host read tells whether there are any
        if index.ndim and index.shape[dim] > 1 and bool((hits > 1).any()):
            values = values.where(_last_writes(index, dim, self.shape[dim]), 0)
        placed = IndexAdd.apply(values, positions, shape=flat_shape, axis=0)
        return Where.apply(hits > 0, placed, self.reshape(-1)).reshape(self.shape)

    def scatter_reduce(self, dim: int, index, src, reduce: str, *, include_self: bool = True):
        """self, with each src[i][j] reduced into position [index[i][j]][j] (dim 0), as
        torch.scatter_reduce: reduce is 'sum', 'prod', 'mean', 'amax' or 'amin'; include_self
        counts self's value at a position among those reduced (else only the writes; a
        position nobody writes keeps self's value either way). Integer 'mean' rounds down.

        'sum' and 'mean' add with INDEX_ADD. 'prod', 'amax' and 'amin' have no scatter
        primitive, so they compare every index with every position along dim (a one-hot of
        index.numel() x self.shape[dim] elements) and reduce it with prod / amax / amin: the
        gradient is theirs, so ties in amax/amin share it evenly, as in PyTorch."""
        reductions = ("sum", "prod", "mean", "amax", "amin")
        if reduce not in reductions:
            raise RuntimeError(f"scatter_reduce: reduce argument must be one of "
                               f"{', '.join(reductions)}, got {reduce!r}")
        if not isinstance(src, ShapeMixin):
            raise TypeError(f"scatter_reduce: src must be a tensor, got {type(src).__name__}")
        dim = self._dim(dim, "scatter_reduce")
        if self.ndim == 0 and index.ndim == 0 and src.ndim == 0:  # one element: a 1-D line
            return self.reshape(1).scatter_reduce(0, index.reshape(1), src.reshape(1), reduce,
                                                  include_self=include_self).reshape(())
        positions = self._flat_positions(dim, index, "scatter_reduce")
        values = self._scatter_source(index, src, "scatter_reduce")
        if reduce in ("sum", "mean"):
            flat_shape, flat = (self.numel(),), self.reshape(-1)
            hits = IndexAdd.apply(self._constant(1, dtypes.int64, values.shape), positions,
                                  shape=flat_shape, axis=0)
            total = IndexAdd.apply(values, positions, shape=flat_shape, axis=0)
            if include_self:
                total = total + flat
            if reduce == "mean":
                count = (hits + 1 if include_self else hits.clamp(min=1)).to(self.dtype)
                total = total / count if self.dtype.is_floating_point else total // count
            return Where.apply(hits > 0, total.to(self.dtype), flat).reshape(self.shape)
        box = values.reshape(index.shape)
        return self._reduce_lines(dim, index, box, reduce, include_self)

    def _reduce_lines(self, dim: int, index, src, reduce: str, include_self: bool):
        """scatter_reduce's prod/amax/amin: hot[.., l, p, ..] says index[.., l, ..] == p along
        dim; the writes not going to p become the reduction's identity, self's value joins as
        one more row, and one prod/amax/amin over the l axis gives every position at once."""
        n = self.shape[dim]
        index = index.detach().long()
        index = index.where(index >= 0, index + n)
        targets = self._arange(n).reshape(*[n if d == dim + 1 else 1 for d in range(src.ndim + 1)])
        hot = index.unsqueeze(dim + 1) == targets   # (.., L, n, ..)
        identity = _identity(reduce, self.dtype)
        writes = src.unsqueeze(dim + 1).where(hot, identity)
        # self's part that index covers: index may be smaller than self in the other dims
        bounds = tuple((0, n if d == dim else size) for d, size in enumerate(index.shape))
        inside = tuple(size for size, _ in bounds) == tuple(self.shape)
        own = self if inside else views.make_view(self, ShrinkStep(bounds))
        if not include_self:
            own = own.where(~hot.any(dim), identity)  # written positions forget self's value
        rows = cat([own.unsqueeze(dim), writes], dim)  # (.., 1 + L, n, ..)
        if reduce == "prod":
            reduced = rows.prod(dim).to(self.dtype)
        else:
            reduced = rows.amax(dim) if reduce == "amax" else rows.amin(dim)
        if inside:
            return reduced
        padding = tuple((0, size - part) for size, part in zip(self.shape, reduced.shape))
        covered = Pad.apply(self._constant(True, dtypes.bool_, reduced.shape), padding=padding,
                            value=False)
        return Where.apply(covered, Pad.apply(reduced, padding=padding), self)

    def index_select(self, dim: int, index):
        """The entries at `index` (1-D, int64) along dim, in that order: a copy."""
        dim = self._dim(dim, "index_select")
        index = self._check_vector_index(index, "index_select")
        self._check_index(index, self.shape[dim] if self.ndim else 1, "index_select", dim)
        if not self.ndim:
            return Take.apply(self.reshape(1), index.reshape(-1), axis=0).reshape(())
        index = index.where(index >= 0, index + self.shape[dim])
        return Take.apply(self, index.reshape(-1), axis=dim)

    def index_add(self, dim: int, index, source, alpha=1):
        """self, with source's slices added at `index` along dim (repeats add up)."""
        dim = self._dim(dim, "index_add")
        index = self._check_vector_index(index, "index_add")
        self._check_index(index, self.shape[dim], "index_add", dim)
        expected = self.shape[:dim] + (index.numel(),) + self.shape[dim + 1:]
        if tuple(source.shape) != tuple(expected):
            raise RuntimeError(f"index_add: source of shape {tuple(source.shape)} does not match "
                               f"self {tuple(self.shape)} with {index.numel()} indices at dim "
                               f"{dim} (expected {expected})")
        index = index.reshape(-1)
        index = index.where(index >= 0, index + self.shape[dim])
        source = source if alpha == 1 else source * alpha
        return self + IndexAdd.apply(source.to(self.dtype), index, shape=self.shape, axis=dim)

    def index_fill(self, dim: int, index, value):
        """self, with the slices at `index` along dim set to value (a number or 0-d tensor)."""
        dim = self._dim(dim, "index_fill")
        index = self._check_vector_index(index, "index_fill")
        size = self.shape[dim] if self.ndim else 1
        self._check_index(index, size, "index_fill", dim)
        index = index.reshape(-1)
        index = index.where(index >= 0, index + size)
        hit = IndexAdd.apply(self._constant(1, dtypes.int64, index.shape), index, shape=(size,),
                             axis=0) > 0
        mask = hit.reshape(*[size if d == dim else 1 for d in range(self.ndim)])
        return self.masked_fill(mask, value)

    def _check_vector_index(self, index, op: str):
        if not isinstance(index, ShapeMixin):
            raise TypeError(f"{op}: index must be a tensor, got {type(index).__name__}")
        if index.ndim > 1 or index.dtype.is_floating_point or index.dtype is dtypes.bool_:
            raise RuntimeError(f"{op}: index must be a 1-D int64 tensor, got shape "
                               f"{tuple(index.shape)} of {index.dtype.name}")
        if index.device != self.device:
            raise RuntimeError(f"{op}: expected the index on self's device {self.device}, got "
                               f"{index.device}")
        return index.detach().long()

    # ---- data-dependent shapes: read on the host, as boolean masks are ----------------------------
    def nonzero(self, as_tuple: bool = False):
        """The indices of the non-zero elements: (count, ndim) int64, row-major order."""
        values = self._data.to_host()
        if self.ndim == 0:  # PyTorch: a 0-d tensor counts as one dim of size 1
            positions = np.nonzero(values.reshape(1))
            if as_tuple:
                return tuple(self._from_data(p.astype(np.int64), device=self.device)
                             for p in positions)
            return self._from_data(np.zeros((int(values != 0), 0), np.int64), device=self.device)
        positions = np.nonzero(values)
        if as_tuple:
            return tuple(self._from_data(p.astype(np.int64), device=self.device)
                         for p in positions)
        stacked = np.stack(positions, axis=1).astype(np.int64).reshape(-1, self.ndim)
        return self._from_data(stacked, device=self.device)

    def argwhere(self):
        return self.nonzero()

    # ---- indexing -----------------------------------------------------------------------------------
    def __getitem__(self, key):
        x, advanced = self._basic_index(key)
        return x._advanced_index(advanced) if advanced else x

    def _basic_index(self, key):
        """Apply ints, slices, None and Ellipsis; return the tensor and the advanced indices
        left over, as (dim in the result, index tensor) pairs."""
        items = list(key) if isinstance(key, tuple) else [key]
        used = sum(_dims_used(item) for item in items)
        if used > self.ndim:
            raise IndexError(f"index: too many indices for a tensor of {self.ndim} dims "
                             f"(shape {self.shape})")
        if sum(item is Ellipsis for item in items) > 1:
            raise IndexError("index: an index can only have a single ellipsis")
        if any(item is Ellipsis for item in items):
            at = next(i for i, item in enumerate(items) if item is Ellipsis)
            items[at:at + 1] = [slice(None)] * (self.ndim - used)
        else:
            items += [slice(None)] * (self.ndim - used)
        x, dim, advanced = self, 0, []  # dim: where the next item applies in x
        for item in items:
            if item is None:
                x = x.unsqueeze(dim)
                dim += 1
            elif isinstance(item, slice):
                x = x._slice(dim, item)
                dim += 1
            elif isinstance(item, ShapeMixin) and item.dtype is dtypes.bool_ and item.ndim == 0:
                # a 0-d mask adds a dim, of size 1 where it is True and 0 where False (as NumPy)
                x = x.unsqueeze(dim)
                advanced.append((dim, self._arange(int(item.item()))))
                dim += 1
            elif _is_int(item):
                x = x.select(dim, int(item))
            else:
                for index in self._index_tensors(item, x.shape[dim:], dim):
                    advanced.append((dim, index))
                    dim += 1
        if x is self and not advanced:  # x[()]: still a view, as in PyTorch
            x = views.make_view(self, ReshapeStep(self.shape))
        return x, advanced

    def _slice(self, dim: int, item: slice):
        size = self.shape[dim]
        for part in (item.start, item.stop, item.step):
            if part is not None and not _is_int(part):
                raise TypeError(f"index: slice indices must be integers or None, got {part!r}")
        start, stop, step = item.indices(size)
        if step < 0:  # x[::-1]: flip, then an ordinary slice of the flipped dim
            flipped = Flip.apply(self, axes=(dim,))
            return flipped._slice(dim, slice(size - 1 - start, size - 1 - stop, -step))
        count = max(0, -(-(stop - start) // step))
        if step == 1:
            return self._narrow(dim, start, count)
        return views.make_view(self, StridedStep(dim, start, count, step))

    def _index_tensors(self, item, sizes, dim: int) -> list:
        """An integer-array or mask index -> int64 index tensors, one per dim it covers."""
        if isinstance(item, range):
            item = list(item)  # x[range(3)] is x[[0, 1, 2]]
        if isinstance(item, (list, tuple)) or hasattr(item, "__array__") and not isinstance(item, ShapeMixin):
            values = item if isinstance(item, (list, tuple)) else np.asarray(item)
            item = self._from_data(values, device=self.device)
        if not isinstance(item, ShapeMixin):
            raise IndexError(
                f"index: only integers, slices, None, Ellipsis and integer or bool tensors are "
                f"valid indices, got {type(item).__name__} {item!r:.40}"
            )
        if item.dtype is dtypes.bool_:
            if tuple(item.shape) != tuple(sizes[:item.ndim]):
                raise IndexError(f"index: mask of shape {item.shape} does not match the indexed "
                                 f"shape {tuple(sizes[:item.ndim])} at dim {dim}")
            positions = np.nonzero(item.numpy())  # the result's size depends on the data
            return [self._from_data(p.astype(np.int64), device=self.device) for p in positions]
        if item.dtype.is_floating_point:
            raise IndexError(f"index: tensors used as indices must be integer or bool, "
                             f"got {item.dtype.name}")
        if item.device != self.device:
            raise RuntimeError(f"index: expected the index tensor on the indexed tensor's device "
                               f"{self.device}, got {item.device}")
        size = sizes[0]
        self._check_index(item, size, "index", dim)
        item = item.long()
        return [item.where(item >= 0, item + size)]

    def _check_index(self, index, size: int, op: str, dim: int) -> None:
        """Bounds are checked on the host. On a GPU that would cost a device-to-host copy in
        every step, so there (as with PyTorch's asynchronous device asserts) it is skipped."""
        if index.numel() == 0 or index.device.startswith("cuda"):
            return
        values = index._data.to_host()
        low, high = int(values.min()), int(values.max())
        if low < -size or high >= size:
            bad = high if high >= size else low
            raise IndexError(f"{op}: index {bad} is out of bounds for dim {dim} with size {size}")

    def _advanced_index(self, advanced):
        """x[..., i, j, ...] with index tensors: one flat index into the indexed dims merged."""
        dims = [d for d, _ in advanced]
        indices = [index for _, index in advanced]
        shape = indices[0].shape
        for index in indices[1:]:
            shape = broadcast_shape(shape, index.shape, "index")
        rest = [d for d in range(self.ndim) if d not in dims]
        moved = self.permute(*dims, *rest)
        flat, stride = None, 1
        for d, index in reversed(advanced):
            term = index.expand(shape) * stride if stride != 1 else index.expand(shape)
            flat = term if flat is None else flat + term
            stride *= self.shape[d]
        merged = moved.reshape((stride,) + tuple(self.shape[d] for d in rest))
        out = Take.apply(merged, flat, axis=0)
        # NumPy's rule: adjacent index dims stay where they were; separated ones go first
        adjacent = dims == list(range(dims[0], dims[0] + len(dims)))
        if adjacent and dims[0] > 0:
            n = len(shape)
            order = list(range(n, n + dims[0])) + list(range(n)) + list(range(n + dims[0], out.ndim))
            out = Permute.apply(out, order=tuple(order))  # a copy, laid out afresh
        return out

    def _index_put(self, key, value):
        """A copy of self with self[key] = value; differentiable in self and value."""
        selected = self._arange(self.numel()).reshape(self.shape)[key]  # flat positions
        positions = selected.reshape(-1)
        if not isinstance(value, ShapeMixin):
            value = self._constant(value, self.dtype)
        elif value.device != self.device:
            raise RuntimeError(f"setitem: expected the value on the tensor's device {self.device}, "
                               f"got {value.device}")
        try:
            value = value.to(self.dtype).expand(selected.shape).reshape(-1)
        except RuntimeError:
            raise RuntimeError(f"setitem: value of shape {value.shape} cannot be broadcast to the "
                               f"indexed shape {selected.shape}") from None
        flat_shape = (self.numel(),)
        hit = IndexAdd.apply(self._constant(1, self.dtype, value.shape), positions,
                             shape=flat_shape, axis=0).detach() > 0
        placed = IndexAdd.apply(value, positions, shape=flat_shape, axis=0)
        return Where.apply(hit, placed, self.reshape(-1)).reshape(self.shape)

    # ---- more of PyTorch's spellings -----------------------------------------------------
    swapdims = transpose

    def ravel(self):
        """The elements in row-major order, one dim (a view where reshape can make one)."""
        return self.reshape(-1)

    def broadcast_to(self, *size):
        """expand under NumPy's name: -1 keeps a size; a view."""
        try:
            return self.expand(*size)
        except RuntimeError:
            raise RuntimeError(f"broadcast_to: shape {self.shape} cannot be broadcast to "
                               f"{_sizes(size)}") from None

    # ---- splitting, turning, sliding windows, picking ------------------------------------
    def tensor_split(self, indices_or_sections, dim: int = 0):
        """Views: n nearly equal parts (the first size % n one longer), or the parts between
        the given indices (clamped to the size, as NumPy's array_split)."""
        dim = self._dim(dim, "tensor_split")
        size = self.shape[dim]
        if isinstance(indices_or_sections, ShapeMixin):
            indices_or_sections = indices_or_sections.tolist()
        if isinstance(indices_or_sections, int):
            n = indices_or_sections
            if n <= 0:
                raise RuntimeError(f"tensor_split: number of sections must be larger than 0, "
                                   f"got {n}")
            lengths = [size // n + (1 if i < size % n else 0) for i in range(n)]
            starts = [sum(lengths[:i]) for i in range(n)]
        else:
            cuts = [min(max(i + size if i < 0 else i, 0), size) for i in indices_or_sections]
            starts = [0] + cuts
            ends = cuts + [size]
            lengths = [max(end - start, 0) for start, end in zip(starts, ends)]
        return tuple(self._narrow(dim, start, length) for start, length in zip(starts, lengths))

    def _even_split(self, sections, dim: int, op: str):
        if isinstance(sections, int) and (sections == 0 or self.shape[dim] % sections):
            raise RuntimeError(f"{op}: cannot split dim {dim} of size {self.shape[dim]} into "
                               f"{sections} equal parts (shape {self.shape})")
        return self.tensor_split(sections, dim)

    def hsplit(self, sections):
        """Split along columns: dim 1, or dim 0 of a vector; an int must divide evenly."""
        if self.ndim == 0:
            raise RuntimeError("hsplit: requires a tensor with at least 1 dim, got a 0-d tensor")
        return self._even_split(sections, 1 if self.ndim > 1 else 0, "hsplit")

    def vsplit(self, sections):
        if self.ndim < 2:
            raise RuntimeError(f"vsplit: requires a tensor with at least 2 dims, got shape "
                               f"{self.shape}")
        return self._even_split(sections, 0, "vsplit")

    def dsplit(self, sections):
        if self.ndim < 3:
            raise RuntimeError(f"dsplit: requires a tensor with at least 3 dims, got shape "
                               f"{self.shape}")
        return self._even_split(sections, 2, "dsplit")

    def rot90(self, k: int = 1, dims=(0, 1)):
        """Turn by k quarter turns from dims[0] toward dims[1]: flips and a transpose."""
        if len(dims) != 2 or self.ndim < 2:
            raise RuntimeError(f"rot90: expected two dims of a tensor with at least 2 dims, got "
                               f"dims {tuple(dims)} for shape {self.shape}")
        first, second = self._dim(dims[0], "rot90"), self._dim(dims[1], "rot90")
        if first == second:
            raise RuntimeError(f"rot90: the two dims must differ, got {tuple(dims)}")
        k %= 4
        if k == 1:
            return self.flip(second).transpose(first, second)
        if k == 2:
            return self.flip(first, second)
        if k == 3:
            return self.flip(first).transpose(first, second)
        return self.clone()

    def fliplr(self):
        if self.ndim < 2:
            raise RuntimeError(f"fliplr: requires a tensor with at least 2 dims, got shape "
                               f"{self.shape}")
        return self.flip(1)

    def flipud(self):
        if self.ndim < 1:
            raise RuntimeError("flipud: requires a tensor with at least 1 dim, got a 0-d tensor")
        return self.flip(0)

    def unfold(self, dimension: int, size: int, step: int):
        """Every window of `size` elements along `dimension`, `step` apart, as a new last dim:
        a view, as in PyTorch (see UnfoldStep)."""
        if self.ndim == 0:
            return self.reshape(1).unfold(0, size, step).reshape(size)
        dim = self._dim(dimension, "unfold")
        length = self.shape[dim]
        if step <= 0:
            raise RuntimeError(f"unfold: step is {step} but must be > 0")
        if not 0 <= size <= length:
            raise RuntimeError(f"unfold: the size of a window ({size}) must be between 0 and "
                               f"the size of dim {dim} ({length}; shape {self.shape})")
        return views.make_view(self, UnfoldStep(dim, size, step, (length - size) // step + 1))

    def take_along_dim(self, indices, dim=None):
        """gather after broadcasting self and indices in every dim but `dim`; with dim=None,
        of the flattened tensors."""
        if not isinstance(indices, ShapeMixin) or indices.dtype is not dtypes.int64:
            got = indices.dtype.name if isinstance(indices, ShapeMixin) else type(indices).__name__
            raise RuntimeError(f"take_along_dim: expected int64 indices, got {got}")
        if dim is None:
            return self.reshape(-1).gather(0, indices.reshape(-1))
        dim = self._dim(dim, "take_along_dim")
        if indices.ndim != self.ndim:
            raise RuntimeError(f"take_along_dim: input and indices should have the same number "
                               f"of dims, got shapes {self.shape} and {indices.shape}")
        mine, theirs = list(self.shape), list(indices.shape)
        mine[dim] = theirs[dim] = 1
        batch = broadcast_shape(tuple(mine), tuple(theirs), "take_along_dim")
        source = self.expand(batch[:dim] + (self.shape[dim],) + batch[dim + 1:])
        return source.gather(dim, indices.expand(batch[:dim] + (indices.shape[dim],)
                                                 + batch[dim + 1:]))

    def masked_select(self, mask):
        """The elements where mask (broadcast with self) is True, in a 1-D tensor."""
        if not isinstance(mask, ShapeMixin) or mask.dtype is not dtypes.bool_:
            got = mask.dtype.name if isinstance(mask, ShapeMixin) else type(mask).__name__
            raise RuntimeError(f"masked_select: expected a bool mask, got {got}")
        shape = broadcast_shape(self.shape, mask.shape, "masked_select")
        return self.expand(shape)[mask.expand(shape)]

    def count_nonzero(self, dim=None):
        return (self != 0).sum(dim)

    def diff(self, n: int = 1, dim: int = -1, prepend=None, append=None):
        """out[i] = x[i + 1] - x[i] along dim, n times; bool tensors give x[i + 1] != x[i]."""
        if self.ndim == 0:
            raise RuntimeError("diff: expects input to be at least one-dimensional")
        dim = self._dim(dim, "diff")
        if n < 0:
            raise RuntimeError(f"diff: order n must be non-negative but got {n}")
        parts = [part for part in (prepend, self, append) if part is not None]
        for part in parts:
            if not isinstance(part, ShapeMixin) or part.ndim != self.ndim:
                got = part.shape if isinstance(part, ShapeMixin) else type(part).__name__
                raise RuntimeError(f"diff: prepend and append must have the dims of the input, "
                                   f"shape {self.shape}; got {got}")
        out = self if len(parts) == 1 else cat(parts, dim)
        for _ in range(n):
            length = out.shape[dim]
            if length == 0:
                break
            later, earlier = out.narrow(dim, 1, length - 1), out.narrow(dim, 0, length - 1)
            out = later != earlier if out.dtype is dtypes.bool_ else later - earlier
        return out


class UnfoldStep(ViewStep):
    """Tensor.unfold's windows: TAKE along the dim at positions start * step + offset (a
    (windows, size) index), then the offset's axis moved last. Written back by the inverse,
    INDEX_ADD at the same positions and WHERE with the parent, when no two windows overlap;
    where they do, one element would get several values, and PyTorch refuses such writes too."""

    def __init__(self, dim: int, size: int, step: int, count: int) -> None:
        self.dim, self.size, self.step, self.count = dim, size, step, count

    def _index(self, backend) -> TensorData:
        starts = TensorData.arange(self.count, dtypes.int64, backend)
        starts = starts.mul(starts.constant_like(self.step)).reshape((self.count, 1))
        offsets = TensorData.arange(self.size, dtypes.int64, backend).reshape((1, self.size))
        shape = (self.count, self.size)
        return starts.expand(shape).add(offsets.expand(shape))

    def _order(self, ndim: int) -> tuple:  # the window's axis (dim + 1 after TAKE) last
        return tuple(d for d in range(ndim + 1) if d != self.dim + 1) + (self.dim + 1,)

    def apply(self, parent):
        index = parent._result_class._make(self._index(parent._data.backend), None)
        return Permute.apply(Take.apply(parent, index, axis=self.dim),
                             order=self._order(parent.ndim))

    def apply_data(self, data):
        return data.take(self.dim, self._index(data.backend)).permute(self._order(data.ndim))

    def write_back(self, parent, value):
        if self.step < self.size and self.count > 1:
            raise RuntimeError(f"unfold: cannot write through windows that overlap (size "
                               f"{self.size}, step {self.step}): one element would get several "
                               f"values; clone() the view first")
        order = self._order(parent.ndim)
        inverse = tuple(order.index(d) for d in range(len(order)))
        flat_shape = (parent.shape[:self.dim] + (self.count * self.size,)
                      + parent.shape[self.dim + 1:])
        index = self._index(parent._data.backend).reshape((self.count * self.size,))
        positions = parent._result_class._make(index, None)
        windows = Reshape.apply(Permute.apply(value, order=inverse), shape=flat_shape)
        placed = IndexAdd.apply(windows, positions, shape=parent.shape, axis=self.dim)
        ones = TensorData.full(flat_shape, 1, dtypes.int64, parent._data.backend)
        counts = ones.index_add(parent.shape, self.dim, index)
        inside = counts.constant_like(0).cmplt(counts)  # the places some window covers
        return Where.apply(parent._result_class._make(inside, None), placed, parent)

    def layout(self, shape, strides, offset):
        stride = strides[self.dim]
        return (strides[:self.dim] + (stride * self.step,) + strides[self.dim + 1:] + (stride,),
                offset)


def broadcast_shapes(*shapes, op: str = "broadcast_shapes") -> tuple:
    """The shape that tensors of these shapes broadcast to (torch.broadcast_shapes)."""
    result = ()
    for shape in shapes:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        result = broadcast_shape(result, shape, op)
    return result


def broadcast_tensors(*tensors):
    """Every tensor expanded to their common shape: views, as PyTorch's."""
    shape = broadcast_shapes(*[t.shape for t in tensors], op="broadcast_tensors")
    return tuple(t.expand(shape) for t in tensors)


def _atleast(tensors, ndim: int, op: str):
    """torch.atleast_Nd: one tensor gives one, several (or a list) give a tuple."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    elif len(tensors) == 1:
        return _grown(tensors[0], ndim, op)
    return tuple(_grown(t, ndim, op) for t in tensors)


def _grown(tensor, ndim: int, op: str):
    """NumPy's rule: a scalar becomes (1, ...), a vector (1, n) or (1, n, 1), a matrix (m, n, 1)."""
    if not isinstance(tensor, ShapeMixin):
        raise TypeError(f"{op}: expected tensors, got {type(tensor).__name__}")
    shape = tuple(tensor.shape)
    if len(shape) >= ndim:
        return tensor
    if ndim == 3 and len(shape) == 2:
        return tensor.unsqueeze(-1)
    if ndim == 3 and len(shape) == 1:
        return tensor.reshape(1, shape[0], 1)
    return tensor.reshape((1,) * (ndim - len(shape)) + shape)


def atleast_1d(*tensors):
    return _atleast(tensors, 1, "atleast_1d")


def atleast_2d(*tensors):
    return _atleast(tensors, 2, "atleast_2d")


def atleast_3d(*tensors):
    return _atleast(tensors, 3, "atleast_3d")


def _last_writes(index, dim: int, size: int):
    """For each element of index (flattened), True unless a later element along `dim` writes
    the same position: the write that PyTorch's CPU scatter leaves standing."""
    index = index.detach().long()
    index = index.where(index >= 0, index + size)
    length, ndim = index.shape[dim], index.ndim + 1
    steps = index._arange(length)
    mine = steps.reshape(*[length if d == dim else 1 for d in range(ndim)])       # l
    other = steps.reshape(*[length if d == dim + 1 else 1 for d in range(ndim)])  # l'
    overwritten = ((index.unsqueeze(dim + 1) == index.unsqueeze(dim)) & (other > mine))
    return (~overwritten.any(dim + 1)).reshape(-1)


def _identity(reduce: str, dtype):
    """The value that changes nothing in a prod / amax / amin of `dtype`."""
    if dtype is dtypes.bool_:
        return reduce != "amax"
    if reduce == "prod":
        return 1
    if dtype.is_floating_point:
        return -math.inf if reduce == "amax" else math.inf
    bits = 8 * dtype.itemsize - 1
    return -2 ** bits if reduce == "amax" else 2 ** bits - 1


def _interleaved_positions(repeats, size: int, op: str):
    """[0, 0, 1, 2, 2, 2] for repeats [2, 1, 3]: position p takes the number of running totals
    of repeats that are <= p (the total is read on the host: it is the result's size)."""
    if repeats.ndim != 1 or repeats.shape[0] != size or repeats.dtype.is_floating_point:
        raise RuntimeError(f"{op}: repeats must be a 1-D integer tensor of {size} counts, got "
                           f"shape {tuple(repeats.shape)} of {repeats.dtype.name}")
    counts = repeats.detach().long()
    if size and bool((counts < 0).any()):
        raise RuntimeError(f"{op}: repeats must be non-negative")
    ends = counts.cumsum(0)
    total = int(ends[-1].item()) if size else 0
    positions = counts._arange(total).reshape(total, 1)
    return (ends.reshape(1, size) <= positions).long().sum(1)


def meshgrid(*tensors, indexing: str = "ij"):
    """Coordinate grids: out[i] varies along dim i ("ij") or, for the first two, swapped
    ("xy", as NumPy's default). Each output is an expanded view of its input."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    if not tensors:
        raise RuntimeError("meshgrid: expects a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if t.ndim > 1:
            raise RuntimeError(f"meshgrid: expects 0-d or 1-d tensors, got shape {tuple(t.shape)} "
                               f"at position {i}")
    flat = [t.reshape(-1) for t in tensors]
    swap = indexing == "xy" and len(flat) >= 2
    if swap:
        flat[0], flat[1] = flat[1], flat[0]
    shape = tuple(t.shape[0] for t in flat)
    grids = [t.reshape(*[-1 if d == i else 1 for d in range(len(flat))]).expand(shape)
             for i, t in enumerate(flat)]
    if swap:
        grids[0], grids[1] = grids[1], grids[0]  # shape (len(y), len(x), ...), as NumPy
    return tuple(grids)


def _is_int(item) -> bool:
    if isinstance(item, bool):
        return False
    if isinstance(item, int):
        return True
    return (isinstance(item, ShapeMixin) and item.ndim == 0 and not item.dtype.is_floating_point
            and item.dtype is not dtypes.bool_) or type(item).__name__ in ("int64", "int32")


def _dims_used(item) -> int:
    if item is None or item is Ellipsis:
        return 0
    if isinstance(item, ShapeMixin) and item.dtype is dtypes.bool_:
        return item.ndim
    if isinstance(item, (bool, float)):
        raise IndexError(
            f"index: only integers, slices, None, Ellipsis and integer or bool tensors are "
            f"valid indices, got {type(item).__name__} {item!r}"
        )
    return 1


def cat(tensors, dim: int = 0):
    """Join tensors along an existing dim: each is padded with zeros to the full length at its
    offset, and the padded tensors are added (PAD and ADD, so the gradient is a SHRINK)."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat: expected a non-empty list of tensors")
    first = tensors[0]
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise RuntimeError(f"cat: zero-dimensional tensor (at position {i}) cannot be "
                               "concatenated; stack them, or unsqueeze them first")
    dim = first._dim(dim, "cat")
    dtype = first.dtype
    for t in tensors[1:]:
        dtype = dtypes.result_type((dtype, 1), (t.dtype, 1))
    for i, t in enumerate(tensors):
        if t.ndim != first.ndim or any(
            a != b for d, (a, b) in enumerate(zip(t.shape, first.shape)) if d != dim
        ):
            raise RuntimeError(
                f"cat: sizes of tensors must match except in dim {dim}: tensor 0 has shape "
                f"{first.shape}, tensor {i} has shape {t.shape}"
            )
        if t.device != first.device:
            raise RuntimeError(f"cat: expected all tensors on the same device, got "
                               f"{first.device} and {t.device} (tensor {i})")
    pieces = [t.to(dtype) for t in tensors]
    while len(pieces) > 1:  # join neighbours in pairs: log2(n) rounds, each one pass over all
        pieces = [_join(*pieces[i:i + 2], dim) if i + 1 < len(pieces) else pieces[i]
                  for i in range(0, len(pieces), 2)]
    return pieces[0] if pieces[0] is not tensors[0] else pieces[0].clone()  # a new tensor


def _join(left, right, dim: int):
    """left and right side by side along dim: each padded to the joint length, then a WHERE
    picks left's region (not an ADD: -0.0 + 0.0 would lose the sign of a zero)."""
    a, b = left.shape[dim], right.shape[dim]

    def padding(before, after):
        return tuple((before, after) if d == dim else (0, 0) for d in range(left.ndim))

    inside = TensorData.full(left.shape, True, dtypes.bool_, left._data.backend)
    mask = left._result_class._make(inside.pad(padding(0, b), False), None)
    return Where.apply(mask, Pad.apply(left, padding=padding(0, b)),
                       Pad.apply(right, padding=padding(a, 0)))


def stack(tensors, dim: int = 0):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack: expected a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise RuntimeError(f"stack: expects each tensor to be equal size, but got "
                               f"{tensors[0].shape} at entry 0 and {t.shape} at entry {i}")
        if t.device != tensors[0].device:
            raise RuntimeError(f"stack: expected all tensors on the same device, got "
                               f"{tensors[0].device} and {t.device} (tensor {i})")
    dim = tensors[0]._dim(dim, "stack", extra=1)
    return cat([t.unsqueeze(dim) for t in tensors], dim)


# ---- NumPy's stacking functions, each a cat after atleast_Nd -------------------------------
def _tensor_list(tensors, op: str) -> list:
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"{op}: expected a non-empty list of tensors")
    return tensors


def hstack(tensors):
    """Side by side: along dim 1, or dim 0 when all are vectors (or scalars)."""
    tensors = [_grown(t, 1, "hstack") for t in _tensor_list(tensors, "hstack")]
    return cat(tensors, 0 if all(t.ndim == 1 for t in tensors) else 1)


def vstack(tensors):
    """On top of each other: vectors become rows, then cat along dim 0."""
    return cat([_grown(t, 2, "vstack") for t in _tensor_list(tensors, "vstack")], 0)


row_stack = vstack


def dstack(tensors):
    """In depth: each made at least 3-D (a matrix gets a last dim of 1), then cat along dim 2."""
    return cat([_grown(t, 3, "dstack") for t in _tensor_list(tensors, "dstack")], 2)


def column_stack(tensors):
    """Vectors (and scalars) as columns, matrices as they are, side by side along dim 1."""
    columns = []
    for t in _tensor_list(tensors, "column_stack"):
        if not isinstance(t, ShapeMixin):
            raise TypeError(f"column_stack: expected tensors, got {type(t).__name__}")
        columns.append(t.reshape(t.numel(), 1) if t.ndim <= 1 else t)
    return cat(columns, 1)


def cartesian_prod(*tensors):
    """Every combination of one element from each 1-D tensor, one per row (itertools.product's
    order); one tensor gives itself. Built from meshgrid, so gradients flow to every input."""
    for t in tensors:
        if not isinstance(t, ShapeMixin) or t.ndim != 1:
            got = tuple(t.shape) if isinstance(t, ShapeMixin) else type(t).__name__
            raise RuntimeError(f"cartesian_prod: expects 1-D tensors, got {got}")
    if len(tensors) == 1:
        return tensors[0]
    if any(t.dtype is not tensors[0].dtype for t in tensors):
        raise RuntimeError(f"cartesian_prod: expects all tensors to have the same dtype, got "
                           f"{', '.join(t.dtype.name for t in tensors)}")
    return stack([grid.reshape(-1) for grid in meshgrid(*tensors, indexing="ij")], 1)
