"""Tensor: the user-facing array with autograd. PyTorch's names and semantics.

Layer: Tensor (top). Imports edugrad.function, edugrad.autograd, edugrad.data (for creation),
and NumPy only to convert user input and output (lists, arrays, `numpy()`, `tolist()`).

A Tensor is three things:
    _data          a TensorData: the values, on one backend (device)
    _ctx           the Function that made it (None for leaves): `grad_fn` in PyTorch's words
    requires_grad  whether gradients flow to it; `grad` holds them after backward

The operations live in two mixins, one file each: math.py (operators, elementwise math,
reductions, matmul, softmax) and shape.py (reshape and friends, cat/stack/split, indexing).
Everything differentiable goes through a Function; this file adds construction, conversion,
the autograd entry points, and in-place updates.
"""

from __future__ import annotations

import math

import numpy as np

from edugrad import autograd, dtypes, sparse, views
from edugrad.backend import canonical_device, get_backend
from edugrad.data import TensorData
from edugrad.dtypes import DType
from edugrad.function import Cast, Function, GradMode, Reshape, ToDevice
from edugrad.linalg import LinalgMixin
from edugrad.math import MathMixin, broadcast_shape
from edugrad.ordering import OrderingMixin
from edugrad.shape import ShapeMixin
from edugrad.size import Size


def _host_array(data, dtype: DType | None) -> np.ndarray:
    """User input (number, nested list, NumPy array) -> a NumPy array of an edugrad dtype."""
    if isinstance(data, np.ndarray) or isinstance(data, np.generic):
        array = np.asarray(data)
        if (dtype is None or array.dtype.kind == "c") and array.dtype.name not in dtypes.BY_NAME:
            raise TypeError(
                f"tensor: NumPy dtype {array.dtype} is not supported; edugrad has "
                f"{', '.join(d.name for d in dtypes.ALL)} (convert with .astype first)"
            )
    else:
        try:
            array = np.array(data)
        except ValueError as error:
            raise ValueError(f"tensor: cannot build a tensor from {type(data).__name__}: {error}")
        if array.dtype == object or array.dtype.kind in "USVc":  # c: complex, not supported
            raise TypeError(f"tensor: cannot build a tensor from {data!r:.60}")
        if dtype is None:  # Python's defaults: floats are float32 (the default dtype), ints
            kind = array.dtype.kind  # int64, as in PyTorch
            dtype = (dtypes.bool_ if kind == "b" else dtypes.int64 if kind in "iu"
                     else dtypes.DEFAULT_FLOAT)
    if dtype is not None:  # (NumPy has no bfloat16: its host values are float32, then cast)
        name = dtypes.from_name(dtype).name
        array = array.astype(dtypes.HOST_NAME.get(name, name), copy=False)
    return array


def _host_data(data, dtype: DType | None, device) -> TensorData:
    """User input (number, nested list, NumPy array) as TensorData on `device`: of `dtype`, or
    of the dtype torch.tensor infers when it is None (see _host_array)."""
    tensor_data = TensorData.from_host(_host_array(data, dtype), get_backend(device))
    if dtype is not None and tensor_data.dtype is not dtypes.from_name(dtype):
        tensor_data = tensor_data.cast(dtypes.from_name(dtype))  # bfloat16
    return tensor_data


def _is_size(value) -> bool:
    """An int as torch.Tensor(...) reads it: a size (a NumPy integer or 0-d integer array too,
    which PyTorch takes through __index__), never a bool."""
    if isinstance(value, np.ndarray):
        return value.ndim == 0 and value.dtype.kind in "iu"
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class Tensor(MathMixin, ShapeMixin, OrderingMixin, LinalgMixin):
    """An n-dimensional array that records the operations made on it, for backward()."""

    __slots__ = ("_data", "_ctx", "requires_grad", "grad", "_version", "_hooks",
                 "_retains_grad", "_before", "_view", "_views", "__weakref__")
    __array_priority__ = 1000  # numpy_array * tensor calls Tensor.__rmul__
    # what ops on this tensor return: a plain Tensor, also for subclasses (nn.Parameter),
    # so that weight.T or weight * 2 is not a new Parameter. Set below the class.
    _result_class: type

    def __init__(self, data, dtype=None, device=None, requires_grad: bool = False) -> None:
        if _is_size(data) and (dtype is None or _is_size(dtype)):
            # torch.Tensor(5), torch.Tensor(2, 3): PyTorch's legacy sizes form, float32 values
            # left unset there (zeros here); torch.tensor(5) is the way to a number
            sizes = [int(size) for size in (data, dtype, device) if _is_size(size)]
            device = None if _is_size(device) else device
            data, dtype = np.zeros(sizes, np.float32), None
        if isinstance(data, TensorData):
            tensor_data = data
        elif isinstance(data, Tensor):
            tensor_data = data._data if dtype is None else data._data.cast(dtypes.from_name(dtype))
            if device is not None and canonical_device(device) != tensor_data.device:
                tensor_data = tensor_data.to(canonical_device(device))
        else:  # torch.Tensor(data), PyTorch's legacy constructor: the default float dtype
            # whatever the data (Tensor([1, 2]) is float32); edugrad.tensor(data) infers it
            tensor_data = _host_data(data, dtype or dtypes.get_default_dtype(), device)
        self._data = tensor_data
        self._ctx: Function | None = None
        self.grad: Tensor | None = None
        self._version = 0
        self._hooks = None
        self._retains_grad = False
        self._before = None
        self._view = None  # a view's parent and step (views.py)
        self._views = None  # a root's live views (views.py)
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _from_data(data, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """A leaf tensor from host data with torch.tensor's dtype inference (ints int64, floats
        float32, NumPy arrays their own): what edugrad's own code uses, where Tensor(data)
        would make PyTorch's legacy float32."""
        tensor = Tensor._make(_host_data(data, dtype, device), None)
        return tensor.requires_grad_(True) if requires_grad else tensor

    @classmethod
    def _make(cls, data: TensorData, ctx: Function | None) -> "Tensor":
        """The fast constructor Function.apply uses: no conversion, no checks."""
        tensor = cls.__new__(cls)
        tensor._data = data
        tensor._ctx = ctx
        tensor.requires_grad = ctx is not None
        tensor.grad = None
        tensor._version = 0
        tensor._hooks = None
        tensor._retains_grad = False
        tensor._before = None
        tensor._view = None
        tensor._views = None
        return tensor

    # ---- attributes ----------------------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    @property
    def ndim(self) -> int:
        return len(self._data.shape)

    @property
    def dtype(self) -> DType:
        return self._data.dtype

    @property
    def device(self) -> str:
        return self._data.backend.device

    # PyTorch's device-kind questions (`if x.is_cuda and ngpu > 1:`), read off the device
    @property
    def is_cpu(self) -> bool:
        return self.device.type == "cpu"

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def is_xpu(self) -> bool:
        return self.device.type == "xpu"

    @property
    def is_mps(self) -> bool:
        return self.device.type == "mps"

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self) -> Function | None:
        return self._ctx

    @property
    def data(self) -> "Tensor":
        """The values without the history (PyTorch's `.data`): an alias, like detach()."""
        return self.detach()

    @data.setter
    def data(self, value: "Tensor") -> None:
        views.set_data(self, value)

    @property
    def _base(self) -> "Tensor | None":
        """The tensor this one is a view of (None if it is none), as PyTorch's `_base`."""
        return None if self._view is None else self._view.base

    def _is_view(self) -> bool:
        return self._base is not None

    def is_contiguous(self) -> bool:
        """Whether PyTorch would lay this tensor out row-major: False for x.t(), x[:, 0], ..."""
        return views.is_contiguous(self)

    def stride(self, dim: int | None = None):
        strides = views.layout(self)[0]
        return strides if dim is None else strides[self._dim(dim, "stride")]

    def storage_offset(self) -> int:
        return views.layout(self)[1]

    def size(self, dim: int | None = None):
        shape = self._data.shape
        return Size(shape) if dim is None else shape[self._dim(dim)]

    def numel(self) -> int:
        return self._data.numel()

    def dim(self) -> int:
        return self.ndim

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __hash__(self) -> int:
        return id(self)

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise RuntimeError(
                f"bool: the truth value of a tensor of shape {self.shape} is ambiguous"
            )
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    # ---- conversion -------------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        if self.requires_grad and GradMode.enabled:
            raise RuntimeError(
                "numpy: can't call numpy() on a tensor that requires grad; "
                "use tensor.detach().numpy()"
            )
        return self._data.to_host()

    def item(self):
        if self.numel() != 1:
            raise ValueError(
                f"item: only a tensor with one element can be converted to a Python number, "
                f"not shape {self.shape}"
            )
        return self._data.to_host().reshape(()).item()

    def tolist(self):
        return self._data.to_host().tolist()

    def to(self, *args, **kwargs) -> "Tensor":
        """to(device), to(dtype), to(device, dtype), to(other_tensor); differentiable."""
        device, dtype = parse_to_args(args, kwargs)
        out = self
        if dtype is not None and dtype is not self.dtype:
            out = Cast.apply(out, dtype=dtype)
        if device is not None and canonical_device(device) != out.device:
            out = ToDevice.apply(out, device=canonical_device(device))
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> "Tensor":
        return self.to("cuda" if device is None else f"cuda:{device}")

    def float(self) -> "Tensor":
        return self.to(dtypes.float32)

    def double(self) -> "Tensor":
        return self.to(dtypes.float64)

    def half(self) -> "Tensor":
        return self.to(dtypes.float16)

    def bfloat16(self) -> "Tensor":  # no built-in backend holds it: see edugrad/dtypes.py
        return self.to(dtypes.bfloat16)

    def long(self) -> "Tensor":
        return self.to(dtypes.int64)

    def int(self) -> "Tensor":
        return self.to(dtypes.int32)

    def bool(self) -> "Tensor":
        return self.to(dtypes.bool_)

    def type(self, dtype) -> "Tensor":
        return self.to(dtypes.from_name(dtype))

    def detach(self) -> "Tensor":
        """The same values, cut from the graph: an alias, so an in-place update of either is
        seen by the other (`p.data.add_(...)`, as in PyTorch). See views.py."""
        return views.make_view(self, views.AliasStep())

    is_sparse = False  # an ordinary (strided) tensor; sparse ones are edugrad/sparse.py's
    layout = sparse.strided

    def to_sparse(self) -> "sparse.SparseCOOTensor":
        """The non-zero entries as a sparse COO tensor (edugrad/sparse.py)."""
        return sparse.dense_to_sparse(self)

    def clone(self) -> "Tensor":
        # sharing the buffer is a copy here: edugrad never writes into a buffer (views.py)
        return Reshape.apply(self, shape=self.shape)

    def __deepcopy__(self, memo: dict) -> "Tensor":
        """copy.deepcopy (nn.TransformerEncoder copies its layer): a new leaf of the same type
        with the same values, gradient copied; the buffer is shared, which is a copy here."""
        if not self.is_leaf:
            raise RuntimeError("deepcopy: only tensors created by the user (graph leaves) can "
                               "be deep-copied; detach() it first")
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        Tensor.__init__(copied, self._data)
        copied.requires_grad = self.requires_grad
        copied.grad = None if self.grad is None else self.grad.__deepcopy__(memo)
        return copied

    def new_full(self, size, fill_value, dtype=None) -> "Tensor":
        """A constant tensor on self's device, of self's dtype unless given."""
        dtype = dtypes.from_name(dtype) if dtype is not None else self.dtype
        return Tensor._make(TensorData.full(tuple(size), fill_value, dtype, self._data.backend), None)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """new_zeros(2, 3) or new_zeros((2, 3)), as PyTorch takes both."""
        return self._new_constant(size, 0, dtype, device, requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return self._new_constant(size, 1, dtype, device, requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return self._new_constant(size, 0, dtype, device, requires_grad)

    def _new_constant(self, size, value, dtype, device, requires_grad) -> "Tensor":
        if len(size) == 1 and isinstance(size[0], (tuple, list)):
            size = size[0]
        out = self.new_full(tuple(size), value, dtype)
        if device is not None:
            out = out.to(device)
        return out.requires_grad_() if requires_grad else out

    def new_tensor(self, data, dtype=None) -> "Tensor":
        return Tensor(data, dtype=dtype or self.dtype, device=self.device)

    def contiguous(self) -> "Tensor":
        """self if it is laid out row-major, else a copy that is (and no longer a view)."""
        return self if views.is_contiguous(self) else self.clone()

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and not self.dtype.is_floating_point:
            raise RuntimeError(
                f"requires_grad_: only floating point tensors can require gradients, "
                f"not {self.dtype.name}"
            )
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad_: you can only change requires_grad of leaf tensors")
        self.requires_grad = requires_grad
        return self

    # ---- autograd -------------------------------------------------------------------------------
    def backward(self, gradient: "Tensor | None" = None, retain_graph: bool | None = None,
                 create_graph: bool = False) -> None:
        """Compute d(self)/d(leaf) for every leaf that requires grad, added into leaf.grad."""
        autograd.backward(self, gradient, retain_graph, create_graph)

    def register_hook(self, hook):
        """Call hook(grad) when this tensor's gradient is computed; a returned tensor replaces it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that "
                               "doesn't require gradient")
        self._hooks = (self._hooks or []) + [hook]
        return _HookHandle(self, hook)

    def retain_grad(self) -> None:
        """Keep .grad for this non-leaf tensor too."""
        self._retains_grad = True

    def zero_grad_(self) -> None:
        self.grad = None

    # ---- in-place updates ------------------------------------------------------------------------
    def _assign(self, compute) -> "Tensor":
        """Replace self's values by compute(old), where old is self before the update.

        No buffer is written: the new values get a new buffer and self points at it; a view
        writes them into its root and every view of the root re-reads (views.py). The version
        counter keeps autograd safe: every op that saved self for its backward notices the
        bump and refuses to use the new values.
        """
        views.assign(self, compute)
        return self

    def add_(self, other, alpha=1) -> "Tensor":
        return self._assign(lambda old: old.add(other, alpha=alpha))

    def sub_(self, other, alpha=1) -> "Tensor":
        return self._assign(lambda old: old.sub(other, alpha=alpha))

    def mul_(self, other) -> "Tensor":
        return self._assign(lambda old: old * other)

    def div_(self, other, *, rounding_mode=None) -> "Tensor":
        return self._assign(lambda old: old.div(other, rounding_mode=rounding_mode))

    def clamp_(self, min=None, max=None) -> "Tensor":
        return self._assign(lambda old: old.clamp(min, max))

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    def fill_(self, value) -> "Tensor":
        return self._assign(lambda old: _full_like(old, value))

    def copy_(self, source) -> "Tensor":
        source = source if isinstance(source, Tensor) else Tensor(source)
        if source.device != self.device:
            source = source.to(self.device)
        def copied(old):
            value = source.to(old.dtype)._broadcast_to(
                broadcast_shape(source.shape, old.shape, "copy_"))
            # self must become a new node of the graph: were it source itself (same dtype and
            # shape), self would take the leaf's place and the gradient would stop at self
            return value.clone() if value is source else value

        return self._assign(copied)

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> "Tensor":
        noise = Tensor._make(TensorData.rand(self.shape, self.dtype, self._data.backend), None)
        return self._assign(lambda old: noise * (b - a) + a)

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> "Tensor":
        noise = standard_normal(self.shape, self.dtype, self._data.backend)
        return self._assign(lambda old: noise * std + mean)

    def masked_fill_(self, mask, value) -> "Tensor":
        return self._assign(lambda old: old.masked_fill(mask, value))

    def index_fill_(self, dim: int, index, value) -> "Tensor":
        return self._assign(lambda old: old.index_fill(dim, index, value))

    def index_add_(self, dim: int, index, source, alpha=1) -> "Tensor":
        return self._assign(lambda old: old.index_add(dim, index, source, alpha=alpha))

    def scatter_(self, dim: int, index, src=None, value=None, reduce=None) -> "Tensor":
        return self._assign(lambda old: old.scatter(dim, index, src, value=value, reduce=reduce))

    def scatter_add_(self, dim: int, index, src) -> "Tensor":
        return self._assign(lambda old: old.scatter_add(dim, index, src))

    def scatter_reduce_(self, dim: int, index, src, reduce, *, include_self=True) -> "Tensor":
        return self._assign(lambda old: old.scatter_reduce(dim, index, src, reduce,
                                                           include_self=include_self))

    def tril_(self, diagonal: int = 0) -> "Tensor":
        return self._assign(lambda old: old.tril(diagonal))

    def triu_(self, diagonal: int = 0) -> "Tensor":
        return self._assign(lambda old: old.triu(diagonal))

    def nan_to_num_(self, nan: float = 0.0, posinf=None, neginf=None) -> "Tensor":
        return self._assign(lambda old: old.nan_to_num(nan, posinf, neginf))

    def lerp_(self, end, weight) -> "Tensor":
        return self._assign(lambda old: old.lerp(end, weight))

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def __setitem__(self, key, value) -> None:
        self._assign(lambda old: old._index_put(key, value))

    # ---- printing ---------------------------------------------------------------------------------
    def __repr__(self) -> str:
        array = self._data.to_host()
        if self.dtype.is_floating_point and _all_whole(array):  # tensor([1., 2.]) as PyTorch
            # NumPy writes whole floats as "2." padded as PyTorch does, but a 0-d one as "2.0"
            body = (np.array2string(array, separator=", ", prefix="tensor(") if array.ndim
                    else f"{array.item():.0f}.")
        elif self.dtype.is_floating_point:  # tensor([1.5000, 0.2500])
            body = np.array2string(array, separator=", ", prefix="tensor(", precision=4,
                                   floatmode="fixed")
        else:
            body = np.array2string(array, separator=", ", prefix="tensor(")
        if self.numel() == 0:
            body = "[]" if self.ndim == 1 else f"[], size={self.shape}"
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.dtype not in (dtypes.float32, dtypes.int64, dtypes.bool_):
            extras.append(f"dtype={self.dtype!r}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{self._ctx.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    def __str__(self) -> str:
        return self.__repr__()

    def __format__(self, spec: str) -> str:
        if self.numel() == 1 and spec:
            return format(self.item(), spec)
        return str(self)


Tensor._result_class = Tensor


def parse_to_args(args: tuple, kwargs: dict):
    """The (device, dtype) of a to(...) call (Tensor.to and Module.to), each None if not given."""
    device, dtype = kwargs.get("device"), kwargs.get("dtype")
    for arg in args:
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, DType) or str(arg).replace("torch.", "") in dtypes.BY_NAME:
            dtype = arg
        else:
            device = arg
    return device, (dtypes.from_name(dtype) if dtype is not None else None)


def _all_whole(array) -> bool:
    finite = array[np.isfinite(array)]
    return bool(finite.size) and bool(np.all(finite == np.round(finite)))


def _full_like(tensor: Tensor, value) -> Tensor:
    return Tensor._make(tensor._data.full_like(value), None)


def standard_normal(shape: tuple, dtype: DType, backend) -> Tensor:
    """Standard normal values (normal_ and edugrad.randn), by the Box-Muller transform of two
    uniforms from RAND: sqrt(-2 log u1) cos(2 pi u2), with u1 in (0, 1] so the log is finite."""
    u1 = Tensor._make(TensorData.rand(shape, dtypes.float64, backend), None)
    u2 = Tensor._make(TensorData.rand(shape, dtypes.float64, backend), None)
    normal = ((1 - u1).log() * -2).sqrt() * (u2 * (2 * math.pi)).cos()
    return normal.to(dtype)


class _HookHandle:
    def __init__(self, tensor: Tensor, hook) -> None:
        self.tensor, self.hook = tensor, hook

    def remove(self) -> None:
        hooks = [h for h in (self.tensor._hooks or []) if h is not self.hook]
        self.tensor._hooks = hooks or None
