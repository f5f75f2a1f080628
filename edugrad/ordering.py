"""Ops that depend on the order of elements along a dim: cumsum, cumprod, sort, argsort, topk,
unique, and multinomial sampling (which reads a cumulative sum).

Layer: Tensor (top). A mixin of Tensor; imports edugrad.function, edugrad.factories and
edugrad.dtypes, never NumPy.

No primitive sorts or scans, so each is a composition, and its gradient comes for free:

- cumsum is a scan by doubling (Hillis and Steele): add the tensor shifted by 1, then by 2,
  4, ... along the dim; log2(n) PAD + ADD steps, n log n additions.
- cumprod is the same scan with MUL (padding with 1), so its gradient is right with zeros too.
- unique sorts, marks where a sorted value differs from the one before, and keeps those (a
  boolean mask: its size is read on the host, as PyTorch reads it).
- sort computes each element's rank by comparing it with every other element of its row
  (how many are smaller, and how many equal ones come before it), then reads the elements
  in rank order with gather, which carries the gradient back to where each value came from.
  That is n^2 comparisons per row: fine for the sizes sampling needs (a vocabulary of a few
  thousand), slow for a million. A backend could offer a SORT primitive; none does yet.
"""

from __future__ import annotations

import math
from collections import namedtuple

from edugrad import dtypes
from edugrad.data import TensorData
from edugrad.function import Pad, Shrink
from edugrad.shape import cat

SortResult = namedtuple("SortResult", ["values", "indices"])  # torch.return_types.sort
TopKResult = namedtuple("TopKResult", ["values", "indices"])
MedianResult = namedtuple("MedianResult", ["values", "indices"])  # torch.return_types.median
_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")
_ROUNDINGS = {"lower": "floor", "higher": "ceil", "nearest": "round"}  # round: half to even


class OrderingMixin:
    __slots__ = ()

    def cumsum(self, dim: int, dtype=None):
        """out[i] = x[0] + ... + x[i] along `dim`, by log2(n) shifted additions."""
        x = self if dtype is None else self.to(dtype)
        if x.dtype is dtypes.bool_ or x.dtype is dtypes.int32:
            x = x.to(dtypes.int64)  # as PyTorch
        if x.ndim == 0:
            return x + 0
        dim = x._dim(dim, "cumsum")
        size, shift = x.shape[dim], 1
        while shift < size:
            kept = tuple((0, size - shift) if d == dim else (0, s) for d, s in enumerate(x.shape))
            padding = tuple((shift, 0) if d == dim else (0, 0) for d in range(x.ndim))
            x = x + Pad.apply(Shrink.apply(x, bounds=kept), padding=padding)  # x[i] += x[i-shift]
            shift *= 2
        return x

    def cumprod(self, dim: int, dtype=None):
        """out[i] = x[0] * ... * x[i] along `dim`, by log2(n) shifted multiplications."""
        x = self if dtype is None else self.to(dtype)
        if x.dtype is dtypes.bool_ or x.dtype is dtypes.int32:
            x = x.to(dtypes.int64)  # as PyTorch
        if x.ndim == 0:
            x._dim(dim, "cumprod")
            return x + 0
        dim = x._dim(dim, "cumprod")
        size, shift = x.shape[dim], 1
        while shift < size:
            kept = tuple((0, size - shift) if d == dim else (0, s) for d, s in enumerate(x.shape))
            padding = tuple((shift, 0) if d == dim else (0, 0) for d in range(x.ndim))
            x = x * Pad.apply(Shrink.apply(x, bounds=kept), padding=padding, value=1)
            shift *= 2
        return x

    def unique(self, sorted: bool = True, return_inverse: bool = False,
               return_counts: bool = False, dim=None):
        """The distinct elements, sorted (always, as PyTorch on the CPU); with return_inverse
        each element's place among them, with return_counts how often each occurs. NaNs are
        distinct from each other, as in PyTorch. Not differentiable.

        With dim: the distinct slices along dim (x[i] for dim 0, x[:, j] for dim 1, ...), in
        lexicographic order, as torch.unique(dim=...); inverse and counts are per slice."""
        if dim is not None:
            return self._unique_slices(dim, return_inverse, return_counts)
        flat = self.detach().reshape(-1)
        n = flat.shape[0]
        work = flat.long() if flat.dtype is dtypes.bool_ else flat  # no order on bools
        values, order = work.sort()
        if n:
            later = values.narrow(0, 1, n - 1)
            earlier = values.narrow(0, 0, n - 1)
            first = self._result_class._make(TensorData.full((1,), True, dtypes.bool_,
                                                             self._data.backend), None)
            new = cat([first, later != earlier])
        else:
            new = values != values
        distinct = values[new].to(self.dtype)
        if not (return_inverse or return_counts):
            return distinct
        group = new.long().cumsum(0) - 1  # the group of each sorted position
        result = (distinct,)
        if return_inverse:
            inverse = group.new_zeros((n,)).scatter(0, order, group)
            result += (inverse.reshape(self.shape),)
        if return_counts:
            counts = group.new_zeros((distinct.shape[0],)).scatter_add(0, group, group * 0 + 1)
            result += (counts,)
        return result

    def _unique_slices(self, dim: int, return_inverse: bool, return_counts: bool):
        """unique(dim=...): each slice a row of numbers; rows ranked lexicographically (the
        first place two rows differ decides), then unique's steps on the ranks."""
        if self.ndim == 0:
            raise IndexError("unique: dim given for a 0-d tensor (it has no dims)")
        dim = self._dim(dim, "unique")
        x = self.detach().movedim(dim, 0)
        n = x.shape[0]
        make = self._result_class._make
        if x.numel() == 0:
            if n:  # as PyTorch: slices of no elements cannot be told apart
                raise RuntimeError(f"unique: shape {tuple(self.shape)} has 0-sized dims other "
                                   f"than dim {dim}, so unique cannot be applied")
            empty = make(TensorData.full((0,), 0, dtypes.int64, self._data.backend), None)
            result = (self.detach().clone(),) + (empty,) * (return_inverse + return_counts)
            return result if len(result) > 1 else result[0]
        rows = x.reshape(n, -1)
        rows = rows.long() if rows.dtype is dtypes.bool_ else rows  # no order on bools
        rank = _lexicographic_ranks(rows)
        positions = self._arange_along(n, 0, 1)
        order = positions.new_zeros((n,)).scatter(0, rank, positions)  # order[rank[i]] = i
        ordered = rows.index_select(0, order)
        first = make(TensorData.full((1,), True, dtypes.bool_, self._data.backend), None)
        new = cat([first, (ordered[1:] != ordered[:-1]).any(1)]) if n > 1 else first
        distinct = self.detach().index_select(dim, order[new])
        if not (return_inverse or return_counts):
            return distinct
        group = new.long().cumsum(0) - 1  # the group of each sorted slice
        result = (distinct,)
        if return_inverse:
            result += (group.gather(0, rank),)
        if return_counts:
            result += (group.new_zeros((distinct.shape[dim],)).scatter_add(0, group, group * 0 + 1),)
        return result

    def _ranks(self, dim: int, descending: bool):
        """The position of each element in its sorted row (ties keep their order; NaN counts
        as the largest value, as in PyTorch)."""
        x = self.detach()
        n = x.shape[dim]
        mine = x.unsqueeze(dim + 1)   # element i along dim, compared with ...
        other = x.unsqueeze(dim)      # ... every element j along dim + 1
        nan_mine, nan_other = mine.isnan(), other.isnan()
        if descending:
            comes_first = (other > mine) | (nan_other & ~nan_mine)
        else:
            comes_first = (other < mine) | (nan_mine & ~nan_other)
        equal = (other == mine) | (nan_mine & nan_other)
        positions = self._arange_along(n, dim + 1, x.ndim + 1)
        earlier = positions < self._arange_along(n, dim, x.ndim + 1)  # j < i
        return (comes_first | (equal & earlier)).to(dtypes.int64).sum(dim + 1)

    def _arange_along(self, n: int, dim: int, ndim: int):
        values = self._result_class._make(TensorData.arange(n, dtypes.int64, self._data.backend),
                                          None)
        return values.reshape(*[n if d == dim else 1 for d in range(ndim)])

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        """(values, indices) sorted along `dim`; stable (ties keep their order) always."""
        if self.ndim == 0:
            return SortResult(self.clone(), self._result_class._make(
                TensorData.full((), 0, dtypes.int64, self._data.backend), None))
        dim = self._dim(dim, "sort")
        n = self.shape[dim]
        ranks = self._ranks(dim, descending)
        # indices[..., k, ...] = the i whose rank is k: a one-hot of rank against k, summed
        hot = ranks.unsqueeze(dim + 1) == self._arange_along(n, dim + 1, self.ndim + 1)
        indices = (hot.to(dtypes.int64) * self._arange_along(n, dim, self.ndim + 1)).sum(dim)
        return SortResult(self.gather(dim, indices), indices)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        return self.sort(dim, descending)[1]

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
        """The k largest (or smallest) elements along `dim` and their indices, largest first."""
        dim = self._dim(dim, "topk") if self.ndim else 0
        size = self.shape[dim] if self.ndim else 1
        if not 0 <= k <= size:
            raise RuntimeError(f"topk: k ({k}) is out of range for dim {dim} of size {size} "
                               f"(shape {tuple(self.shape)})")
        values, indices = self.sort(dim, descending=largest)
        if not self.ndim:
            return TopKResult(values, indices)
        return TopKResult(values.narrow(dim, 0, k), indices.narrow(dim, 0, k))

    def multinomial(self, num_samples: int, replacement: bool = False, generator=None):
        """Draw indices with probability proportional to the rows of self (1-D or 2-D)."""
        if self.ndim not in (1, 2) or not self.dtype.is_floating_point:
            raise RuntimeError(f"multinomial: probabilities must be a 1-D or 2-D float tensor, "
                               f"got shape {tuple(self.shape)} of {self.dtype.name}")
        weights = self.detach()
        if weights.numel() and bool(((weights < 0) | weights.isnan()).any()):
            raise RuntimeError("multinomial: probabilities must be non-negative and not NaN")
        rows = weights if weights.ndim == 2 else weights.unsqueeze(0)
        n = rows.shape[1]
        if not replacement and num_samples > n:
            raise RuntimeError(f"multinomial: cannot draw {num_samples} samples without "
                               f"replacement from {n} categories")
        noise_shape = (rows.shape[0], num_samples if replacement else n)
        if generator is None:  # the global stream: the backend's RAND
            noise = TensorData.rand(noise_shape, weights.dtype, weights._data.backend)
        else:  # an edugrad.Generator's own stream (factories.Generator), never the global one
            if not hasattr(generator, "_uniform"):
                raise TypeError(f"multinomial: generator must be an edugrad.Generator, got "
                                f"{type(generator).__name__}")
            noise = generator._uniform(noise_shape, weights.dtype, weights._data.backend)
        noise = self._result_class._make(noise, None)
        if replacement:
            # inverse CDF: the sample is the number of categories whose cumulative share is
            # below a uniform draw
            cdf = rows.cumsum(1) / rows.sum(1, keepdim=True)
            below = cdf.unsqueeze(1) < noise.unsqueeze(2)
            samples = below.sum(2).clamp(max=n - 1)
        else:
            # an exponential race: category i finishes at -log(u_i) / p_i; the first k to finish
            # are a sample without replacement (categories of weight 0 never finish)
            finish = -((1 - noise).log()) / rows
            samples = finish.topk(num_samples, dim=1, largest=False).indices
        return samples if self.ndim == 2 else samples.squeeze(0)

    # ---- order statistics, read off a sorted row ----------------------------------------
    def median(self, dim=None, keepdim: bool = False):
        """The lower of the two middle values (PyTorch's); NaN where the row has a NaN. With
        dim, (values, indices)."""
        return self._median(dim, keepdim, ignore_nan=False, op="median")

    def nanmedian(self, dim=None, keepdim: bool = False):
        """median of the elements that are not NaN."""
        return self._median(dim, keepdim, ignore_nan=True, op="nanmedian")

    def _median(self, dim, keepdim: bool, ignore_nan: bool, op: str):
        if dim is None:
            if self.numel() == 0:
                if not self.dtype.is_floating_point:
                    raise RuntimeError(f"{op}: cannot compute the median of an empty "
                                       f"{self.dtype.name} tensor")
                return self.reshape(-1).sum() * math.nan
            value = self.reshape(-1)._median(0, False, ignore_nan, op).values.detach()
            if not self.requires_grad:
                return value
            # PyTorch's median() shares the gradient among the elements equal to the result:
            # value + sum(where(hit, x - value, 0)) / hits is value, with that gradient
            hits = (self == value) | (self.isnan() & value.isnan())
            return value + (self - value).where(hits, 0.0).sum() / hits.sum()
        dim = self._dim(dim, op)
        if self.ndim == 0:
            return MedianResult(self.clone(), self._arange_along(1, 0, 1).reshape(()))
        n = self.shape[dim]
        if n == 0:
            raise IndexError(f"{op}: cannot compute the median over dim {dim} of size 0 "
                             f"(shape {tuple(self.shape)})")
        nans = self.isnan().long().sum(dim, keepdim=True)
        if ignore_nan:  # the lower middle of what is left; all NaN: the first NaN
            place = ((n - nans - 1) // 2).clamp(min=0)
        else:  # NaN sorts last: a row with one gives its first NaN
            place = (n - nans).where(nans > 0, (n - 1) // 2)
        index = self.argsort(dim).gather(dim, place)
        values = self.gather(dim, index)  # the gradient goes to that one element
        if not keepdim:
            values, index = values.squeeze(dim), index.squeeze(dim)
        return MedianResult(values, index)

    def quantile(self, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear"):
        """The q-th quantiles along dim (of all elements when None), PyTorch's way: the rank
        q (n - 1) in the sorted row, between two neighbours by `interpolation`; NaN where the
        row has a NaN. A 1-D q puts its dim first."""
        return self._quantile(q, dim, keepdim, interpolation, ignore_nan=False, op="quantile")

    def nanquantile(self, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear"):
        """quantile of the elements that are not NaN."""
        return self._quantile(q, dim, keepdim, interpolation, ignore_nan=True, op="nanquantile")

    def _quantile(self, q, dim, keepdim: bool, interpolation: str, ignore_nan: bool, op: str):
        qs = self._quantile_levels(q, op)
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"{op}: interpolation must be one of {', '.join(_INTERPOLATIONS)}, "
                             f"got {interpolation!r}")
        x = self.reshape(-1) if dim is None else self
        axis = 0 if dim is None else x._dim(dim, op)
        if x.ndim == 0:
            x, axis = x.reshape(1), 0
        n = x.shape[axis]
        if n == 0:
            raise RuntimeError(f"{op}: input tensor must be non-empty (shape {tuple(self.shape)})")
        rows = x.sort(axis).values.movedim(axis, -1)  # (..., n), NaN last
        nan = x.isnan().movedim(axis, -1)
        if ignore_nan:
            left = (~nan).long().sum(-1, keepdim=True).to(x.dtype)
            ranks = (qs * (left - 1)).clamp(min=0)
        else:
            ranks = (qs * (n - 1)).where(~nan.any(-1, keepdim=True), float(n - 1))
        if interpolation in _ROUNDINGS:
            ranks = getattr(ranks, _ROUNDINGS[interpolation])()
        below = ranks.floor().long()
        out = rows.gather(-1, below)
        if interpolation in ("linear", "midpoint"):
            weights = ranks - below.to(x.dtype) if interpolation == "linear" else ranks * 0 + 0.5
            out = out.lerp(rows.gather(-1, ranks.ceil().long()), weights)
        if keepdim:
            out = (out.reshape(out.shape[:-1] + (1,) * (self.ndim - out.ndim + 1) + out.shape[-1:])
                   if dim is None else out.unsqueeze(axis))
        out = out.movedim(-1, 0)
        return out.squeeze(0) if qs.ndim == 0 else out

    # ---- counting and searching -----------------------------------------------------------
    def bincount(self, weights=None, minlength: int = 0):
        """How often each of 0, 1, ..., max appears in a 1-D tensor of non-negative integers
        (with weights: their sums), at least minlength long; INDEX_ADD of ones. The length
        depends on the data, so the maximum is read on the host, as PyTorch reads it."""
        if self.ndim != 1 or self.dtype not in (dtypes.int32, dtypes.int64) or (
                self.numel() and bool((self < 0).any())):
            raise RuntimeError(f"bincount: only supports 1-d non-negative integral inputs, got "
                               f"shape {tuple(self.shape)} of {self.dtype.name}")
        if weights is not None and tuple(weights.shape) != tuple(self.shape):
            raise RuntimeError(f"bincount: weights should have the input's shape "
                               f"{tuple(self.shape)}, got {tuple(weights.shape)}")
        length = max(int(self.max().item()) + 1 if self.numel() else 0, minlength)
        if weights is None:
            counted = self.new_ones(tuple(self.shape), dtype=dtypes.int64)
        else:
            dtype = weights.dtype if weights.dtype.is_floating_point else dtypes.float64
            counted = weights.detach().to(dtype)
        return counted.new_zeros((length,)).index_add(0, self.long(), counted)

    def bucketize(self, boundaries, *, out_int32: bool = False, right: bool = False):
        """The bucket of each element between sorted 1-D boundaries: searchsorted(boundaries,
        self), as torch.bucketize (right=False: boundaries[i - 1] < x <= boundaries[i])."""
        if not isinstance(boundaries, OrderingMixin) or boundaries.ndim != 1:
            got = tuple(boundaries.shape) if isinstance(boundaries, OrderingMixin) else boundaries
            raise RuntimeError(f"bucketize: boundaries must be a 1-D tensor, got {got}")
        return searchsorted(boundaries, self, out_int32=out_int32, right=right)

    def _quantile_levels(self, q, op: str):
        """q as a tensor of self's dtype (0-d or 1-D), checked to lie in [0, 1]."""
        if not self.dtype.is_floating_point:
            raise RuntimeError(f"{op}: input tensor must be either float or double dtype, got "
                               f"{self.dtype.name}")
        if isinstance(q, OrderingMixin):
            if q.ndim > 1 or q.dtype is not self.dtype:
                raise RuntimeError(f"{op}: q must be a 0-d or 1-D tensor of the input's dtype "
                                   f"{self.dtype.name}, got shape {tuple(q.shape)} of "
                                   f"{q.dtype.name}")
            levels = q.detach()
        else:
            levels = self._from_data(q, dtype=self.dtype, device=self.device)
        if levels.numel() and bool(((levels < 0) | (levels > 1) | levels.isnan()).any()):
            raise RuntimeError(f"{op}: q values must be in the range [0, 1], got "
                               f"{levels.tolist()}")
        return levels


def _lexicographic_ranks(rows):
    """The place of each row of `rows` (n, K), K >= 1, in lexicographic order, ties kept in
    their order: row j comes before row i when, at the first place they differ, j's number is
    smaller. n^2 K comparisons, as sort's n^2."""
    n = rows.shape[0]
    mine, other = rows.unsqueeze(1), rows.unsqueeze(0)  # row i against every row j
    differ = mine != other                               # (n, n, K)
    first = differ.long().argmax(2, keepdim=True)        # where they first differ (0 if never)
    smaller = (other < mine).gather(2, first).squeeze(2)
    apart = differ.any(2)
    steps = rows._arange_along(n, 0, 1)
    earlier = steps.reshape(1, n) < steps.reshape(n, 1)  # j < i
    return ((apart & smaller) | (~apart & earlier)).long().sum(1)


# ---- torch.searchsorted ----------------------------------------------------------------
def searchsorted(sorted_sequence, values, *, out_int32: bool = False, right: bool = False,
                 side=None, sorter=None):
    """Where each value would go in the sorted last dim of sorted_sequence to keep it sorted:
    the number of elements below it (right=True: not above it). NaN counts as the largest. A
    comparison of every value with every element, summed: n * m, no primitive searches."""
    if side is not None:
        if side not in ("left", "right") or (right and side == "left"):
            raise RuntimeError(f"searchsorted: side must be 'left' or 'right' and agree with "
                               f"right={right}, got side={side!r}")
        right = side == "right"
    sequence = sorted_sequence
    if sorter is not None:
        sequence = sequence.take_along_dim(sorter, dim=-1)
    scalar = not isinstance(values, OrderingMixin)
    if scalar:
        values = sequence._from_data(values, device=sequence.device)
    if sequence.ndim > 1 and tuple(sequence.shape[:-1]) != tuple(values.shape[:-1]):
        raise RuntimeError(f"searchsorted: the leading dims of sorted_sequence "
                           f"{tuple(sequence.shape)} and values {tuple(values.shape)} must match")
    if sequence.ndim == 0:
        raise RuntimeError("searchsorted: sorted_sequence must have at least 1 dim")
    elements = sequence.detach().unsqueeze(-2) if sequence.ndim > 1 else sequence.detach()
    probe = values.detach().unsqueeze(-1)  # (..., m, 1) against (..., 1, n) or (n,)
    if right:
        before = (elements <= probe) | probe.isnan()
    else:
        before = (elements < probe) | (probe.isnan() & ~elements.isnan())
    index = before.long().sum(-1)
    return index.to(dtypes.int32) if out_int32 else index
