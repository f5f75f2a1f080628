"""Views and in-place updates: PyTorch's aliasing, with no buffer ever written.

Layer: Tensor. Imports edugrad.function (the movement Functions a view is made of) and
edugrad.data; never NumPy.

In PyTorch a view shares memory with its base: after `row = x[0]`, `row.zero_()` zeroes a row
of x, and `x.add_(1)` changes `row`. edugrad's buffers are never written (a backend needs no
in-place primitive, and one constant buffer can stand for every `* 2`), so edugrad gets the
same behaviour the way PyTorch does on backends without views (XLA, torch.compile): by
*functionalization*.

- A view remembers its parent and the one movement step that made it from the parent
  (`x[0]` of a (2, 3) x is a Shrink to rows 0..1, then a Reshape to (3,)). The tensor at the
  top of the chain, the *root*, owns the values and keeps a list of its live views.
- An in-place op on a view computes the view's new value, then writes it into the parent
  through the step's inverse (`write_back`): a Shrink becomes a Pad of the new value into
  the region and a WHERE that keeps the parent's old values outside it; a Permute becomes the
  inverse permutation; a Reshape the reshape back. Repeated up the chain, that gives the
  root's new value, which the root takes as an in-place update of its own.
- Then every live view of the root re-reads its value from its parent (`refresh`), in the
  order the views were made, and its version moves on with the root's.

    x = zeros(2, 3)          root
    row = x[0]               Shrink((0, 1), (0, 3)) then Reshape((3,)), parent x
    row.add_(1)              row's new value [1, 1, 1]
                             -> Reshape back to (1, 3), Pad to (2, 3), WHERE with old x
                             -> x takes it; row re-reads x[0]

Autograd comes for free, because the write-back is made of differentiable Functions: after
`b = a * 1; b[0].mul_(2)`, b's node is Where(mask, Pad(Reshape(Mul(b_old[0], 2))), b_old), and
`b.sum().backward()` gives a.grad 2 in row 0 and 1 elsewhere, as PyTorch does.

The other half of in-place bookkeeping lives here too. An in-place op moves a tensor onto a
new node of the graph, but ops that used it before still need the old node: `_before` keeps
(version, the tensor as it was), and `as_used` follows it back (autograd and the teaching tools
walk the graph through `inputs_as_used`).

What it costs: a tensor that is no view pays one attribute test per in-place op. A view pays a
small record when made, and an in-place write through it costs a pass over its root's values.
"""

from __future__ import annotations

import weakref

from edugrad import dtypes, function
from edugrad.data import TensorData
from edugrad.function import (
    Expand, GradMode, Pad, Permute, Reshape, Shrink, Strided, Unstrided, Where,
)


# ---- the steps a view is made of -----------------------------------------------------------------
class ViewStep:
    """One movement from parent to view: `apply` (differentiable), `apply_data` (values only),
    `write_back` (the parent's new value once the view's value changed) and `layout` (the
    strides PyTorch's view would have, for is_contiguous() and stride())."""

    differentiable = True

    def apply(self, parent):
        raise NotImplementedError

    def apply_data(self, data: TensorData) -> TensorData:
        raise NotImplementedError

    def write_back(self, parent, value):
        raise NotImplementedError

    def layout(self, shape: tuple, strides: tuple, offset: int):
        """(strides, offset) of the view, from the parent's; None when no view can have them."""
        return strides, offset


class ReshapeStep(ViewStep):
    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def apply(self, parent):
        return Reshape.apply(parent, shape=self.shape)

    def apply_data(self, data):
        return data.reshape(self.shape)

    def write_back(self, parent, value):
        return Reshape.apply(value, shape=parent.shape)

    def layout(self, shape, strides, offset):
        new = view_strides(shape, strides, self.shape)
        return None if new is None else (new, offset)


class PermuteStep(ViewStep):
    def __init__(self, order: tuple) -> None:
        self.order = order

    def apply(self, parent):
        return Permute.apply(parent, order=self.order)

    def apply_data(self, data):
        return data.permute(self.order)

    def write_back(self, parent, value):
        inverse = [0] * len(self.order)
        for i, dim in enumerate(self.order):
            inverse[dim] = i
        return Permute.apply(value, order=tuple(inverse))

    def layout(self, shape, strides, offset):
        return tuple(strides[d] for d in self.order), offset


class ExpandStep(ViewStep):
    """Broadcast to `shape`. A grown dim repeats one element, so nothing can be written through
    it (assign refuses first, as PyTorch does); with no dim grown the write is a reshape."""

    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def apply(self, parent):
        lead = len(self.shape) - parent.ndim
        if lead or parent.shape == self.shape:  # a new tensor, even for nothing to expand
            parent = Reshape.apply(parent, shape=(1,) * lead + parent.shape)
        return Expand.apply(parent, shape=self.shape) if parent.shape != self.shape else parent

    def apply_data(self, data):
        return data.expand(self.shape)

    def write_back(self, parent, value):
        return Reshape.apply(value, shape=parent.shape)

    def layout(self, shape, strides, offset):
        lead = len(self.shape) - len(shape)
        grown = tuple(0 if size == 1 and new != 1 else stride
                      for size, stride, new in zip(shape, strides, self.shape[lead:]))
        return (0,) * lead + grown, offset


class ShrinkStep(ViewStep):
    """Keep start..end of each dim; written back as Pad into the region, WHERE outside it."""

    def __init__(self, bounds: tuple) -> None:
        self.bounds = bounds

    def apply(self, parent):
        return Shrink.apply(parent, bounds=self.bounds)

    def apply_data(self, data):
        return data.shrink(self.bounds)

    def write_back(self, parent, value):
        padding = tuple((start, size - end)
                        for (start, end), size in zip(self.bounds, parent.shape))
        inside = TensorData.full(value.shape, True, dtypes.bool_, value._data.backend)
        inside = inside.pad(padding, False)
        placed = Pad.apply(value, padding=padding)
        return Where.apply(parent._result_class._make(inside, None), placed, parent)

    def layout(self, shape, strides, offset):
        shift = sum(start * stride for (start, _), stride in zip(self.bounds, strides))
        return strides, offset + shift


class StridedStep(ViewStep):
    """Every step-th element along one axis (`x[::2]`); written back like a Shrink."""

    def __init__(self, axis: int, start: int, count: int, step: int) -> None:
        self.axis, self.start, self.count, self.step = axis, start, count, step

    def apply(self, parent):
        return Strided.apply(parent, axis=self.axis, start=self.start, count=self.count,
                             step=self.step)

    def apply_data(self, data):
        return data.strided(self.axis, self.start, self.count, self.step)

    def write_back(self, parent, value):
        size = parent.shape[self.axis]
        inside = TensorData.full(value.shape, True, dtypes.bool_, value._data.backend).unstrided(
            self.axis, self.start, self.step, size)
        placed = Unstrided.apply(value, axis=self.axis, start=self.start, step=self.step, size=size)
        return Where.apply(parent._result_class._make(inside, None), placed, parent)

    def layout(self, shape, strides, offset):
        stride = strides[self.axis]
        strides = strides[:self.axis] + (stride * self.step,) + strides[self.axis + 1:]
        return strides, offset + self.start * stride


class AliasStep(ViewStep):
    """detach() and .data: the same values, cut from the graph. Writes reach the parent's
    values but not its place in the graph, as in PyTorch."""

    differentiable = False

    def apply(self, parent):
        return parent._result_class._make(parent._data, None)

    def apply_data(self, data):
        return data

    def write_back(self, parent, value):
        return value


# ---- the record a view carries -------------------------------------------------------------------
class ViewInfo:
    """What makes a tensor a view: its parent, the step from it, and PyTorch's layout of it."""

    __slots__ = ("parent", "step", "base", "strides", "offset")

    def __init__(self, parent, step: ViewStep, base, strides: tuple, offset: int) -> None:
        self.parent = parent
        self.step = step
        # PyTorch's `_base`: the nearest tensor that is not a view (None for aliases)
        self.base = base
        self.strides = strides
        self.offset = offset


def contiguous_strides(shape: tuple) -> tuple:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def layout(tensor) -> tuple:
    """(strides, storage offset) of a tensor as PyTorch would lay it out."""
    info = tensor._view
    if info is None:
        return contiguous_strides(tensor._data.shape), 0
    return info.strides, info.offset


def view_strides(shape: tuple, strides: tuple, new_shape: tuple):
    """The strides of `new_shape` viewing memory laid out as (shape, strides), or None when
    no view can do it (PyTorch's computeStride): dims that are contiguous with each other form
    chunks, and every new dim must fall inside one chunk."""
    if new_shape == shape:
        return strides
    numel = 1
    for size in shape:
        numel *= size
    if numel == 0 or not shape:
        return contiguous_strides(new_shape)
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_stride = strides[-1]
    tensor_numel = view_numel = 1
    for d in reversed(range(len(shape))):
        tensor_numel *= shape[d]
        if d == 0 or (shape[d - 1] != 1 and strides[d - 1] != tensor_numel * chunk_stride):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_stride
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                chunk_stride = strides[d - 1]
                tensor_numel = view_numel = 1
    return tuple(new_strides) if view_d == -1 else None


def is_contiguous(tensor) -> bool:
    if tensor._view is None:
        return True
    expected = 1
    for size, stride in zip(reversed(tensor.shape), reversed(tensor._view.strides)):
        if size == 0:
            return True
        if size != 1:
            if stride != expected:
                return False
            expected *= size
    return True


# ---- making views --------------------------------------------------------------------------------
def make_view(source, step: ViewStep, strides_offset=None):
    """The view of `source` that `step` makes: values from step.apply, linked for aliasing."""
    if strides_offset is None:
        strides_offset = step.layout(source._data.shape, *layout(source))
    view = step.apply(source)
    parent_info = source._view
    if not step.differentiable:
        base = None
    elif parent_info is None or parent_info.base is None:
        base = source
    else:
        base = parent_info.base
    view._view = ViewInfo(source, step, base, *strides_offset)
    view._version = source._version  # one version counter, as PyTorch shares one
    if view._ctx is not None:
        view._ctx.output_version = view._version
    root = root_of(source)
    if root._views is None:
        root._views = []
    elif len(root._views) >= 32 and len(root._views) & (len(root._views) - 1) == 0:
        # drop the dead now and then
        root._views = [ref for ref in root._views if ref() is not None]
    root._views.append(weakref.ref(view))
    return view


def root_of(tensor):
    while tensor._view is not None:
        tensor = tensor._view.parent
    return tensor


# ---- in-place updates ----------------------------------------------------------------------------
def snapshot(tensor, taken: dict):
    """The tensor as it is now, at its version and its node: what an in-place op reads, and
    what `_before` keeps. One per tensor and write (`taken`), so that a node is one tensor."""
    old = taken.get(id(tensor))
    if old is None:
        old = taken[id(tensor)] = tensor._make(tensor._data, tensor._ctx)
        old.requires_grad, old._version = tensor.requires_grad, tensor._version
        old._before = tensor._before
    return old


def assign(tensor, compute):
    """Replace the values of `tensor` by compute(old) in place, where old is `tensor` before
    the update; for a view, write them into its root and refresh the root's views."""
    if GradMode.enabled and tensor.requires_grad and tensor.is_leaf:
        raise RuntimeError(
            "a leaf Variable that requires grad is being used in an in-place operation; "
            "wrap it in `with edugrad.no_grad():` (as optimizers do)"
        )
    info = tensor._view
    if GradMode.enabled and info is not None and info.base is not None and \
            info.base.requires_grad and info.base.is_leaf:
        raise RuntimeError(
            "a view of a leaf Variable that requires grad is being used in an in-place "
            "operation; wrap it in `with edugrad.no_grad():`, or clone() the leaf first"
        )
    if info is not None:
        _check_writable(tensor)
    taken = {}
    old = snapshot(tensor, taken)
    result = _checked(compute(old), tensor)
    if GradMode.enabled and old.requires_grad and not result.requires_grad:
        # fill_ or copy_ of constants: still a node of the graph, passing no gradient to old
        everywhere = TensorData.full(result.shape, True, dtypes.bool_, result._data.backend)
        result = Where.apply(result._make(everywhere, None), result, old)
    _write(tensor, result, link=True, taken=taken)


def _write(tensor, result, link: bool, taken: dict) -> None:
    """`tensor` takes result's values (and, with `link` and grad on, its node); a view passes
    them up to its root through each step's write_back. Then the root's views re-read."""
    if function.observer is not None:
        _tell_observer(tensor)
    while tensor._view is not None:
        step, parent = tensor._view.step, tensor._view.parent
        if link and not step.differentiable:
            # the graph ends at an alias (detach, .data): the alias takes the new node, as in
            # PyTorch, and what it aliases only the values; its refresh will bump its version
            if GradMode.enabled:
                _move_node(tensor, result._ctx, result.requires_grad, snapshot(tensor, taken),
                           tensor._version + 1)
            link = False
        if link and GradMode.enabled:
            result = step.write_back(snapshot(parent, taken), result)
        else:  # values only, with the parent's place in the graph untouched
            result = step.write_back(copy_values(parent), copy_values(result))
        tensor = parent
    old = snapshot(tensor, taken)
    tensor._data = result._data
    tensor._version += 1
    if link and GradMode.enabled:
        _move_node(tensor, result._ctx, result.requires_grad, old, tensor._version)
    refresh_views(tensor, taken)


def _tell_observer(tensor) -> None:
    """While edugrad.jit records a step: a write reads the tensor it changes, and each parent
    of a view up to the root, so the recording knows these tensors and their buffers."""
    while tensor is not None:
        function.observer.tensors_read((tensor,))
        tensor = tensor._view.parent if tensor._view is not None else None


def copy_values(tensor):
    """`tensor.detach().clone()` at no cost: a new tensor with the same values and no history,
    not a view. Sharing the buffer is a copy, since no buffer is ever written."""
    return tensor._make(tensor._data, None)


def _checked(result, tensor):
    if result.dtype is not tensor.dtype:
        if result.dtype.category > tensor.dtype.category:
            raise RuntimeError(
                f"in-place: result type {result.dtype.name} can't be cast to the desired "
                f"output type {tensor.dtype.name}"
            )
        result = result.to(tensor.dtype)
    if tuple(result.shape) != tuple(tensor.shape):
        raise RuntimeError(
            f"in-place: output with shape {tuple(tensor.shape)} doesn't match the broadcast "
            f"shape {tuple(result.shape)}"
        )
    return result


def _check_writable(tensor) -> None:
    """Nothing is written through an expanded view: one value stands for a whole dim."""
    view = tensor
    while view._view is not None:
        step = view._view.step
        parent_shape = view._view.parent.shape
        if isinstance(step, ExpandStep) and any(
                new != old for new, old in zip(step.shape[len(step.shape) - len(parent_shape):],
                                               parent_shape)):
            raise RuntimeError(
                "unsupported operation: more than one element of the written-to tensor refers "
                f"to a single memory location (a view of an expand to {tuple(step.shape)}). "
                "Please clone() the tensor before performing the operation."
            )
        view = view._view.parent


def _move_node(tensor, ctx, requires_grad: bool, old, version: int) -> None:
    """`tensor` becomes the output of `ctx` from `version` on."""
    tensor._ctx, tensor.requires_grad = ctx, requires_grad
    if old.requires_grad or requires_grad:
        # ops that used the tensor before this update must still reach the old node: from this
        # version on the tensor is the new one, before it `old` (see as_used)
        tensor._before = (version, old)
    if ctx is not None:
        ctx._output = weakref.ref(tensor)
        ctx.output_version = version


def refresh_views(root, taken: dict) -> None:
    """Every live view of `root` re-reads its values (parents before children: creation order)."""
    if root._views is None:
        return
    live = []
    for ref in root._views:
        view = ref()
        if view is None:
            continue
        live.append(ref)
        info = view._view
        parent = info.parent
        old = snapshot(view, taken)
        if GradMode.enabled and info.step.differentiable and parent.requires_grad:
            fresh = info.step.apply(parent)
            view._data = fresh._data
            view._version += 1
            _move_node(view, fresh._ctx, True, old, view._version)
        else:
            view._data = info.step.apply_data(parent._data)
            view._version += 1
    root._views = live


def set_data(tensor, value) -> None:
    """`tensor.data = value`: new values, not a new place in the graph (optimizers use it).
    Of the same shape and dtype, it is an in-place write of values, which views see. Of
    another, the tensor stops being a view and its views keep the old values, as in PyTorch."""
    if value.shape == tensor.shape and value.dtype is tensor.dtype:
        _write(tensor, value, link=False, taken={})
        return
    if tensor._views:
        orphan = copy_values(tensor)
        orphan._views, tensor._views = tensor._views, None
        for ref in orphan._views:
            view = ref()
            if view is not None and view._view.parent is tensor:
                view._view.parent = orphan
    if function.observer is not None:
        _tell_observer(tensor)
    tensor._view = None
    tensor._data = value._data
    tensor._version += 1


# ---- the graph as backward walks it --------------------------------------------------------------
def as_used(tensor, version: int):
    """The tensor as an op used it, at `version`. An in-place update made later with grad on
    moved the tensor onto a new node; the node it had before is kept in `_before`, so
    `z = y + 1; y.mul_(3)` still sends z's gradient to y's old node."""
    while tensor._before is not None and version < tensor._before[0]:
        tensor = tensor._before[1]
    return tensor


def inputs_as_used(ctx) -> tuple:
    """The tensors a Function used, each at the node it had when the Function ran."""
    return tuple(as_used(parent, version) if parent._before is not None else parent
                 for parent, version in zip(ctx.parents, ctx.versions))
