"""Tensor factories: zeros, ones, full, arange, linspace, eye, rand, randn, randint, *_like.

Layer: Tensor (top). Imports edugrad.tensor and edugrad.data; NumPy only to build the host
values of arange/linspace/eye, which are then loaded with FROM_HOST like any user input.
"""

from __future__ import annotations

import numpy as np

from edugrad import dtypes
from edugrad.backend import get_backend
from edugrad.data import TensorData
from edugrad.shape import _sizes
from edugrad.tensor import Tensor, standard_normal


def _finish(data: TensorData, requires_grad: bool) -> Tensor:
    tensor = Tensor._make(data, None)
    return tensor.requires_grad_(True) if requires_grad else tensor


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor from a number, a (nested) list, a NumPy array or a tensor (copied)."""
    if isinstance(data, Tensor):
        data = data.detach()
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype = dtypes.from_name(dtype) if dtype is not None else dtypes.of_python_scalar(fill_value)
    shape = tuple(size) if isinstance(size, (tuple, list)) else (size,)
    return _finish(TensorData.full(shape, fill_value, dtype, get_backend(device)), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return full(_sizes(size), 0, dtype or dtypes.DEFAULT_FLOAT, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return full(_sizes(size), 1, dtype or dtypes.DEFAULT_FLOAT, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
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


def rand(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform on [0, 1): the RAND primitive."""
    dtype = dtypes.from_name(dtype or dtypes.DEFAULT_FLOAT)
    return _finish(TensorData.rand(_sizes(size), dtype, get_backend(device)), requires_grad)


def randn(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal, by the Box-Muller transform of two uniforms (tensor.standard_normal)."""
    dtype = dtypes.from_name(dtype or dtypes.DEFAULT_FLOAT)
    normal = standard_normal(_sizes(size), dtype, get_backend(device))
    return _finish(normal._data, requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None) -> Tensor:
    """Integers uniform on [low, high): floor(low + u (high - low)). randint(high, size) too."""
    if isinstance(high, (tuple, list)):  # randint(10, (3,)), as torch.randint
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    u = Tensor._make(TensorData.rand(tuple(size), dtypes.float64, get_backend(device)), None)
    # CAST truncates toward zero, which is floor only for u (high - low) >= 0: add low after
    values = (u * (high - low)).to(dtypes.from_name(dtype or dtypes.int64)) + low
    return values


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
