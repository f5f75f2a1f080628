"""Tensor factories: zeros, ones, full, arange, linspace, eye, rand, randn, randint, randperm,
normal, bernoulli, *_like, from_numpy, as_tensor, sparse_coo_tensor; the legacy FloatTensor,
LongTensor, ...; and Generator, a random stream of one's own.

Layer: Tensor (top). Imports edugrad.tensor and edugrad.data; NumPy only to build host values
(arange/linspace/eye, and the draws of a Generator), which are then loaded with FROM_HOST like
any user input.

Two sources of randomness, as in PyTorch:
  * the global stream: each backend's RAND primitive, seeded by `edugrad.manual_seed`;
  * a `Generator`, passed as `generator=`: a NumPy generator (PCG64) on the host. Its values
    are drawn on the host and moved to the device with FROM_HOST, so the backend contract
    stays one RAND primitive and every backend (a learner's too) honours `generator=`. A call
    given a generator never touches the global stream, and the same seed gives the same
    values on every device. (The cost: one host-to-device copy per call, which matters only
    on a GPU and only for large draws; PyTorch's CUDA generators draw on the device.)
"""

from __future__ import annotations

import numpy as np

from edugrad import dtypes
from edugrad.backend import canonical_device, get_backend
from edugrad.data import TensorData
from edugrad.shape import _sizes
from edugrad.size import Size
from edugrad.sparse import SparseCOOTensor
from edugrad.tensor import Tensor, standard_normal


def _finish(data: TensorData, requires_grad: bool) -> Tensor:
    tensor = Tensor._make(data, None)
    return tensor.requires_grad_(True) if requires_grad else tensor


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor from a number, a (nested) list, a NumPy array or a tensor (copied)."""
    if isinstance(data, Tensor):
        return Tensor(data.detach(), dtype=dtype, device=device, requires_grad=requires_grad)
    # the dtype inferred from the data (ints int64, floats float32, bools bool), where
    # Tensor(data), PyTorch's legacy constructor, makes the default float dtype
    return Tensor._from_data(data, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype = dtypes.from_name(dtype) if dtype is not None else dtypes.of_python_scalar(fill_value)
    shape = tuple(size) if isinstance(size, (tuple, list)) else (size,)
    return _finish(TensorData.full(shape, fill_value, dtype, get_backend(device)), requires_grad)


def _size_argument(sizes: tuple, keywords: dict, op: str) -> tuple:
    """The sizes of zeros(2, 3), zeros((2, 3)) or zeros(size=(2, 3)), PyTorch's three spellings."""
    if set(keywords) - {"size"}:
        raise TypeError(f"{op}() got an unexpected keyword argument "
                        f"{sorted(set(keywords) - {'size'})[0]!r}")
    if "size" not in keywords:
        return sizes
    if sizes:
        raise TypeError(f"{op}() got the size twice: {sizes} and size={keywords['size']!r}")
    return (keywords["size"],)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False,
          **keywords) -> Tensor:
    size = _size_argument(size, keywords, "zeros")
    return full(_sizes(size), 0, dtype or dtypes.DEFAULT_FLOAT, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False,
         **keywords) -> Tensor:
    size = _size_argument(size, keywords, "ones")
    return full(_sizes(size), 1, dtype or dtypes.DEFAULT_FLOAT, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False,
          **keywords) -> Tensor:
    size = _size_argument(size, keywords, "empty")
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False):
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_float = any(isinstance(v, float) for v in (start, end, step))
        dtype = dtypes.DEFAULT_FLOAT if is_float else dtypes.int64
    host = np.arange(start, end, step, dtype=dtypes.from_name(dtype).name)
    return _finish(TensorData.from_host(host, get_backend(device)), requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False):
    dtype = dtypes.from_name(dtype or dtypes.DEFAULT_FLOAT)
    host = np.linspace(start, end, steps, dtype=dtype.name)
    return _finish(TensorData.from_host(host, get_backend(device)), requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False):
    dtype = dtypes.from_name(dtype or dtypes.DEFAULT_FLOAT)
    host = np.eye(n, m, dtype=dtype.name)
    return _finish(TensorData.from_host(host, get_backend(device)), requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False,
         **keywords) -> Tensor:
    """Uniform on [0, 1): the RAND primitive, or the generator's host stream."""
    size = _size_argument(size, keywords, "rand")
    dtype, shape = dtypes.from_name(dtype or dtypes.get_default_dtype()), _sizes(size)
    backend = get_backend(device)
    if generator is not None:
        return _finish(_check_generator(generator)._uniform(shape, dtype, backend), requires_grad)
    return _finish(TensorData.rand(shape, dtype, backend), requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False,
          **keywords) -> Tensor:
    """Standard normal, by the Box-Muller transform of two uniforms (tensor.standard_normal);
    with a generator, its host stream's normal draws."""
    size = _size_argument(size, keywords, "randn")
    dtype, shape = dtypes.from_name(dtype or dtypes.get_default_dtype()), _sizes(size)
    backend = get_backend(device)
    if generator is not None:
        return _finish(_check_generator(generator)._normal(shape, dtype, backend), requires_grad)
    return _finish(standard_normal(shape, dtype, backend)._data, requires_grad)


def randint(low, high=None, size=(), *, generator=None, dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """Integers uniform on [low, high): floor(low + u (high - low)). randint(high, size) too."""
    if isinstance(high, (tuple, list)):  # randint(10, (3,)), as torch.randint
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"randint: expects low < high, got low={low} and high={high}")
    dtype, backend = dtypes.from_name(dtype or dtypes.int64), get_backend(device)
    if generator is not None:
        host = _check_generator(generator)._rng.integers(low, high, tuple(size))
        return _finish(TensorData.from_host(host.astype(dtype.name), backend), requires_grad)
    u = Tensor._make(TensorData.rand(tuple(size), dtypes.float64, backend), None)
    # CAST truncates toward zero, which is floor only for u (high - low) >= 0: add low after
    return (u * (high - low)).to(dtype) + low


def randperm(n: int, *, generator=None, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of 0 .. n-1: the order that sorts n uniform draws (float64, so
    ties have probability ~n² 2^-53), or the generator's host permutation."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise RuntimeError(f"randperm: n must be a non-negative int, got {n!r}")
    dtype, backend = dtypes.from_name(dtype or dtypes.int64), get_backend(device)
    if generator is not None:
        host = _check_generator(generator)._rng.permutation(n).astype(dtype.name)
        return _finish(TensorData.from_host(host, backend), requires_grad)
    keys = Tensor._make(TensorData.rand((n,), dtypes.float64, backend), None)
    return keys.argsort().to(dtype)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """torch.normal, all four forms: mean and std tensors (broadcast), one of them a tensor
    and the other a number, or both numbers and a `size`."""
    if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
        if size is None:
            raise TypeError("normal: with a number for both mean and std, give a size")
        values = randn(*_sizes((size,)), generator=generator, dtype=dtype, device=device)
        return _finish((values * std + mean)._data, requires_grad)
    like = mean if isinstance(mean, Tensor) else std
    if isinstance(std, Tensor) and bool((std.detach() < 0).any()):
        raise RuntimeError("normal: std must be >= 0")
    shape = like.shape
    if isinstance(mean, Tensor) and isinstance(std, Tensor):
        shape = (mean.detach() + std.detach()).shape  # the broadcast shape, as in torch
    noise = randn(*shape, generator=generator, dtype=like.dtype, device=like.device)
    return (noise * std + mean).detach()


def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:
    """1 with probability input (or p, a number), else 0, in input's dtype."""
    probability = input.detach() if p is None else full_like(input, p)
    if bool(((probability < 0) | (probability > 1)).any()):
        raise RuntimeError("bernoulli: expects all probabilities in [0, 1]")
    draw = rand(*input.shape, generator=generator, dtype=dtypes.float64, device=input.device)
    return (draw < probability).to(input.dtype)


def from_numpy(array) -> Tensor:
    """A tensor with the array's values, shape and dtype.

    PyTorch's from_numpy *shares* the array's memory: writing one changes the other. edugrad
    cannot: a backend owns its buffers (they may live on a GPU, or be Python lists), and the
    only way in is FROM_HOST, which copies. So this is `tensor(array)`: later changes to the
    array are not seen by the tensor."""
    if type(array).__module__ != "numpy" or not hasattr(array, "dtype"):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return tensor(array)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """`data` itself when it is already a tensor of that dtype and device (as in PyTorch),
    else a new tensor (a copy: see from_numpy for why edugrad cannot share a NumPy array)."""
    if isinstance(data, Tensor):
        same_dtype = dtype is None or dtypes.from_name(dtype) is data.dtype
        same_device = device is None or canonical_device(device) == data.device
        if same_dtype and same_device:
            return data
        return data.to(dtypes.from_name(dtype) if dtype is not None else data.dtype).to(
            device if device is not None else data.device)
    return tensor(data, dtype=dtype, device=device)


def _like(factory, other: Tensor, dtype, device, requires_grad, *args):
    return factory(*args, dtype=dtype or other.dtype, device=device or other.device,
                   requires_grad=requires_grad)


def zeros_like(other, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(zeros, other, dtype, device, requires_grad, other.shape)


def ones_like(other, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(ones, other, dtype, device, requires_grad, other.shape)


def empty_like(other, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros_like(other, dtype, device, requires_grad)


def full_like(other, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return full(other.shape, fill_value, dtype or other.dtype, device or other.device,
                requires_grad)


def rand_like(other, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(rand, other, dtype, device, requires_grad, other.shape)


def randn_like(other, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(randn, other, dtype, device, requires_grad, other.shape)


# ---- sparse COO tensors (edugrad/sparse.py holds the type and its operations) ------------------
def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None,
                      requires_grad: bool = False, check_invariants=None,
                      is_coalesced=None) -> SparseCOOTensor:
    """A sparse tensor with values[k] at the coordinates indices[:, k], zero elsewhere.

    indices: integers, (ndim, nnz); values: (nnz,); size: the shape (each dim's largest index
    plus one when omitted). Repeated coordinates add up. Every index is checked against size.
    """
    op = "sparse_coo_tensor"
    indices = indices if isinstance(indices, Tensor) else tensor(indices, device=device)
    if indices.dtype.is_floating_point or indices.dtype is dtypes.bool_:
        raise RuntimeError(f"{op}: indices must be an int64 tensor, got {indices.dtype.name}")
    values = values if isinstance(values, Tensor) else tensor(values, dtype=dtype, device=device)
    values = values.to(dtype) if dtype is not None else values
    if device is not None:
        indices, values = indices.to(device), values.to(device)
    indices = indices.detach().long().to(values.device)
    if indices.ndim != 2:
        raise RuntimeError(f"{op}: indices must be 2-D (ndim, nnz), got shape "
                           f"{tuple(indices.shape)}")
    if values.ndim != 1:
        raise NotImplementedError(f"{op}: values of shape {tuple(values.shape)}: only 1-D values "
                                  "(one number per coordinate) are implemented, not hybrid "
                                  "sparse tensors")
    if indices.shape[1] != values.shape[0]:
        raise RuntimeError(f"{op}: indices of shape {tuple(indices.shape)} and values of shape "
                           f"{tuple(values.shape)} disagree on the number of entries "
                           f"({indices.shape[1]} != {values.shape[0]})")
    if requires_grad:
        raise NotImplementedError(f"{op}: requires_grad=True (a sparse leaf with a sparse .grad) "
                                  "is not implemented; pass values that require grad instead")
    largest = [int(row.max()) if row.numel() else -1 for row in indices.unbind(0)]
    size = tuple(size) if size is not None else tuple(i + 1 for i in largest)
    _check_sparse_bounds(indices, size, largest)
    return SparseCOOTensor(indices, values, size, coalesced=bool(is_coalesced))


def _check_sparse_bounds(indices, size: tuple, largest: list) -> None:
    if len(size) != indices.shape[0]:
        raise RuntimeError(f"sparse_coo_tensor: indices of shape {tuple(indices.shape)} give "
                           f"{indices.shape[0]} coordinates per entry, but size {size} has "
                           f"{len(size)} dims")
    for dim, (row, biggest) in enumerate(zip(indices.unbind(0), largest)):
        smallest = int(row.min()) if row.numel() else 0
        if smallest < 0 or biggest >= size[dim]:
            bad = smallest if smallest < 0 else biggest
            raise RuntimeError(f"sparse_coo_tensor: index {bad} is out of bounds for dim {dim} "
                               f"of size {size}")


# ---- the legacy typed constructors: torch.LongTensor(data) and its kin ------------------------
class _LegacyTensorType(type):
    """The type of FloatTensor and its kin: `isinstance(t, edugrad.LongTensor)` asks whether t is
    a CPU tensor of that dtype, as PyTorch's check does (a CUDA one is torch.cuda.LongTensor)."""

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj.dtype is cls.dtype and str(obj.device) == "cpu"


class _LegacyTensor(metaclass=_LegacyTensorType):
    """PyTorch's pre-`dtype=` constructors, still common in tutorials. Calling one returns a
    plain Tensor of its dtype (there is no subclass):

        LongTensor()              an empty tensor, size (0,)
        LongTensor(2, 3)          a (2, 3) tensor (PyTorch leaves it unset; here zeros, as empty)
        LongTensor(Size([2, 3]))  the same
        LongTensor([1.7, 2])      tensor(data, dtype=int64): lists and NumPy arrays of any
                                  dtype, converted (floats truncate: [1, 2])
        LongTensor(t)             t itself (detached, sharing its values) if t is int64; any
                                  other dtype is refused, as in PyTorch
    """

    dtype: dtypes.DType

    def __new__(cls, *data, device=None) -> Tensor:
        if not data or all(isinstance(n, int) and not isinstance(n, bool) for n in data):
            return zeros(*data if data else (0,), dtype=cls.dtype, device=device)
        if len(data) > 1:
            kinds = ", ".join(type(n).__name__ for n in data)
            raise TypeError(f"{cls.__name__}: expected sizes (ints) or one sequence of values, "
                            f"got ({kinds})")
        (values,) = data
        if isinstance(values, Size):
            return zeros(values, dtype=cls.dtype, device=device)
        if isinstance(values, Tensor):
            if values.dtype is not cls.dtype:
                raise TypeError(f"{cls.__name__}: expected a tensor of dtype {cls.dtype}, got "
                                f"{values.dtype} (convert it with .to({cls.dtype}))")
            return values.detach()
        return tensor(values, dtype=cls.dtype, device=device)


class FloatTensor(_LegacyTensor):
    dtype = dtypes.float32


class DoubleTensor(_LegacyTensor):
    dtype = dtypes.float64


class LongTensor(_LegacyTensor):
    dtype = dtypes.int64


class IntTensor(_LegacyTensor):
    dtype = dtypes.int32


class BoolTensor(_LegacyTensor):
    dtype = dtypes.bool_


# ---- Generator ---------------------------------------------------------------------------------
class Generator:
    """torch.Generator: a random stream of its own, for `generator=` of rand, randn, randint,
    randperm, normal, bernoulli, multinomial and the samplers of edugrad.utils.data.

    >>> g = edugrad.Generator().manual_seed(42)
    >>> edugrad.rand(3, generator=g)       # the same three numbers on every run and device

    It is a NumPy PCG64 generator on the host (see this module's docstring for why); PyTorch's
    numbers differ (its generator is a Mersenne Twister), the guarantees are the same: a seed
    repeats a stream, and the global stream is left alone.
    """

    DEFAULT_SEED = 67280421310721  # PyTorch's default seed of a fresh Generator

    def __init__(self, device="cpu") -> None:
        self.device = canonical_device(device)
        self.manual_seed(self.DEFAULT_SEED)

    def manual_seed(self, seed: int) -> "Generator":
        """Restart the stream from `seed`; returns the generator, as PyTorch's does."""
        if isinstance(seed, bool) or not isinstance(seed, int) and not hasattr(seed, "__index__"):
            raise TypeError(f"Generator.manual_seed: expected an int, got {type(seed).__name__}")
        self._initial_seed = int(seed)
        self._rng = np.random.default_rng(self._initial_seed % 2 ** 64)
        return self

    def seed(self) -> int:
        """Re-seed from the operating system's entropy; returns the new seed."""
        seed = int(np.random.SeedSequence().entropy % 2 ** 63)
        self.manual_seed(seed)
        return seed

    def initial_seed(self) -> int:
        return self._initial_seed

    def get_state(self) -> Tensor:
        """The stream's position as an int64 tensor (PyTorch's is a uint8 tensor; either is
        only for set_state). PCG64's 128-bit state and increment, in 32-bit pieces."""
        state = self._rng.bit_generator.state
        pieces = [(number >> (32 * i)) & 0xFFFFFFFF for number in
                  (state["state"]["state"], state["state"]["inc"]) for i in range(4)]
        pieces += [state["has_uint32"], state["uinteger"], self._initial_seed % 2 ** 63]
        return tensor(pieces, dtype=dtypes.int64)

    def set_state(self, new_state: Tensor) -> "Generator":
        """Put the stream back where get_state() found it."""
        pieces = new_state.tolist() if isinstance(new_state, Tensor) else None
        if not isinstance(pieces, list) or len(pieces) != 11:
            raise ValueError("Generator.set_state: expected a tensor from Generator.get_state() "
                             f"(11 int64 values), got {new_state!r:.80}")
        state, inc = (sum(piece << (32 * i) for i, piece in enumerate(pieces[start:start + 4]))
                      for start in (0, 4))
        rng = np.random.default_rng()
        rng.bit_generator.state = {"bit_generator": "PCG64",
                                   "state": {"state": state, "inc": inc},
                                   "has_uint32": pieces[8], "uinteger": pieces[9]}
        self._rng, self._initial_seed = rng, pieces[10]
        return self

    # ---- draws, as TensorData on a backend (multinomial in ordering.py uses _uniform) ---------
    def _uniform(self, shape: tuple, dtype, backend) -> TensorData:
        host = self._rng.random(tuple(shape), dtype=np.float64)
        return TensorData.from_host(_host_cast(host, dtype), backend)

    def _normal(self, shape: tuple, dtype, backend) -> TensorData:
        host = self._rng.standard_normal(tuple(shape), dtype=np.float64)
        return TensorData.from_host(host.astype(dtype.name), backend)

    def __repr__(self) -> str:
        return f"<edugrad.Generator device={str(self.device)!r} seed={self._initial_seed}>"


def _host_cast(host: np.ndarray, dtype) -> np.ndarray:
    """Uniform float64 draws in `dtype`; one that rounds up to 1.0 (in float32, float16) is
    pulled back below it: RAND's interval is [0, 1)."""
    values = host.astype(dtype.name)
    if dtype.is_floating_point:
        below_one = np.nextafter(np.array(1, dtype=values.dtype), 0)
        np.minimum(values, below_one, out=values)
    return values


def _check_generator(generator) -> Generator:
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be an edugrad.Generator, got "
                        f"{type(generator).__name__}")
    return generator


# ---- the indices of a triangle ----------------------------------------------------------
def _triangle_indices(row: int, col: int, offset: int, lower: bool, dtype, device, op: str):
    if row < 0 or col < 0:
        raise RuntimeError(f"{op}: row and col must be non-negative, got {row} and {col}")
    rows, cols = np.indices((row, col)).reshape(2, -1)  # row-major order, as PyTorch lists them
    keep = cols - rows <= offset if lower else cols - rows >= offset
    return tensor(np.stack([rows[keep], cols[keep]]), dtype=dtype or dtypes.int64, device=device)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None,
                 layout=None) -> Tensor:
    """A (2, N) tensor: the (row, col) of every element on or below diagonal `offset`."""
    return _triangle_indices(row, col, offset, True, dtype, device, "tril_indices")


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None,
                 layout=None) -> Tensor:
    """A (2, N) tensor: the (row, col) of every element on or above diagonal `offset`."""
    return _triangle_indices(row, col, offset, False, dtype, device, "triu_indices")
