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

import numpy as np

from edugrad import dtypes, views
from edugrad.data import TensorData
from edugrad.function import Flip, IndexAdd, Pad, Permute, Reshape, Take, Where
from edugrad.math import broadcast_shape
from edugrad.views import ExpandStep, PermuteStep, ReshapeStep, ShrinkStep, StridedStep


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
        layout = step.layout(self.shape, *views.layout(self))
        if layout is None:
            return Reshape.apply(self, shape=step.shape)
        return views.make_view(self, step, layout)

    def view(self, *shape):
        """The same values in another shape, always a view (an error where none can be made)."""
        step = ReshapeStep(self._resolve_shape(shape, "view"))
        layout = step.layout(self.shape, *views.layout(self))
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
        return out.reshape(shape)

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
        if isinstance(item, (list, tuple)) or hasattr(item, "__array__") and not isinstance(item, ShapeMixin):
            item = self._result_class(np.asarray(item) if not isinstance(item, (list, tuple)) else item,
                              device=self.device)
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
            return [self._result_class(p.astype(np.int64), device=self.device) for p in positions]
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
