"""Convolution and pooling: cut the input into windows, then one matmul or one reduction.

Layer: nn (top). Imports edugrad.tensor, edugrad.function and edugrad.factories; never NumPy.

Convolution is fast when it is a matrix product ("im2col"). The Unfold Function (an
accelerated primitive, composed from SHRINKs when a backend lacks it) views an (N, C, H, W)
input as the windows a KHxKW kernel visits, (N, C, OH, OW, KH, KW), without copying. Laying
each window out as a column of C*KH*KW numbers turns the whole batch's convolution into one
matmul:

    input (N, C, H, W) -pad-> -unfold-> windows (N, C, OH, OW, KH, KW)
      -permute-> (C, KH, KW, N, OH, OW) -reshape-> columns (C*KH*KW, N*OH*OW)
    weight (OC, C, KH, KW) -reshape-> (OC, C*KH*KW)
    weight @ columns + bias -> (OC, N*OH*OW) -reshape, permute-> output (N, OC, OH, OW)

One product for all N samples rather than one per sample: BLAS is fastest on one big matrix,
and the weight's gradient comes out of one product, not a sum of N. The last permute is a view,
so the output is stored channel-major; what comes after reads any layout. The gradient comes
from the parts: the product's (the ColumnsProduct Function, in edugrad/function.py) gives the
columns' gradient, the reshapes and permutes undo themselves, and Unfold's backward is Fold:
every input element adds up the gradients of the windows it was in.

Pooling reduces each window instead. The window dims go first, (KH*KW, N*C*OH*OW), so that the
reduction combines a few long contiguous rows rather than many tiny windows.
"""

from __future__ import annotations

from edugrad.factories import ones
from edugrad.function import ColumnsProduct, Unfold, WindowMax
from edugrad.tensor import Tensor


def _pair(value, name: str) -> tuple:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return pair


def _check_like_input(op: str, input: Tensor, *parameters) -> None:
    """Parameters must have the input's dtype and device (PyTorch raises too; no silent cast)."""
    for param in parameters:
        if param is not None and (param.dtype is not input.dtype or param.device != input.device):
            raise RuntimeError(f"{op}: input is {input.dtype.name} on {input.device} but a "
                               f"parameter is {param.dtype.name} on {param.device}; move one "
                               "with .to()")


def _batched(input: Tensor, op: str) -> tuple:
    """(N, C, H, W) stays; an unbatched (C, H, W) gets a batch dim of 1 (and loses it after)."""
    if input.ndim == 4:
        return input, False
    if input.ndim == 3:
        return input.unsqueeze(0), True
    raise RuntimeError(f"{op}: expected a 3D (C, H, W) or 4D (N, C, H, W) input, got shape "
                       f"{tuple(input.shape)}")


def _pad2d(input: Tensor, kernel: tuple, padding: tuple, value: float, op: str) -> Tensor:
    (kh, kw), (ph, pw), (h, w) = kernel, padding, input.shape[2:]
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise RuntimeError(f"{op}: kernel {kernel} is larger than the padded input "
                           f"({h + 2 * ph}, {w + 2 * pw}) (input shape {tuple(input.shape)})")
    return input.pad(((0, 0), (0, 0), (ph, ph), (pw, pw)), value=value) if ph or pw else input


def _windows(input: Tensor, kernel: tuple, stride: tuple, padding: tuple, value: float, op: str):
    """The KH*KW windows of a padded (N, C, H, W) input as a (KH*KW, N*C*OH*OW) tensor, and
    the output shape (N, C, OH, OW)."""
    n, c = input.shape[:2]
    windows = Unfold.apply(_pad2d(input, kernel, padding, value, op), kernel=kernel, stride=stride)
    oh, ow = windows.shape[2:4]
    return windows.permute(4, 5, 0, 1, 2, 3).reshape(-1, n * c * oh * ow), (n, c, oh, ow)


# ---- convolution --------------------------------------------------------------------------------
def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of (N, C, H, W) with (OC, C, KH, KW) weights -> (N, OC, OH, OW),
    OH = (H + 2*padding - KH) // stride + 1. padding may be 'valid' (0) or 'same' (stride 1)."""
    if _pair(dilation, "dilation") != (1, 1) or groups != 1:
        raise NotImplementedError("conv2d: dilation and groups other than 1 are not implemented")
    input, unbatched = _batched(input, "conv2d")
    if weight.ndim != 4:
        raise RuntimeError(f"conv2d: expected a 4D weight (OC, C, KH, KW), got shape "
                           f"{tuple(weight.shape)}")
    out_channels, channels, kh, kw = weight.shape
    if input.shape[1] != channels:
        raise RuntimeError(f"conv2d: weight of shape {tuple(weight.shape)} expects input "
                           f"{tuple(input.shape)} to have {channels} channels, but it has "
                           f"{input.shape[1]}")
    _check_like_input("conv2d", input, weight, bias)
    stride = _pair(stride, "stride")
    if isinstance(padding, str):
        input, padding = _string_padding(input, padding, (kh, kw), stride)
    n, padding = input.shape[0], _pair(padding, "padding")
    # im2col: windows -> columns (C*KH*KW, N*OH*OW); this reshape is the one copy
    padded = _pad2d(input, (kh, kw), padding, 0, "conv2d")
    windows = Unfold.apply(padded, kernel=(kh, kw), stride=stride)
    oh, ow = windows.shape[2:4]
    columns = windows.permute(1, 4, 5, 0, 2, 3).reshape(channels * kh * kw, n * oh * ow)
    weight = weight.reshape(out_channels, channels * kh * kw)
    products = (columns, weight) if bias is None else (columns, weight, bias)
    output = ColumnsProduct.apply(*products)  # W @ columns + b: (OC, N*OH*OW)
    # a view, not a copy: the output stays stored channel-major (see the module docstring)
    output = output.reshape(out_channels, n, oh, ow).permute(1, 0, 2, 3)
    return output.squeeze(0) if unbatched else output


def _string_padding(input: Tensor, padding: str, kernel: tuple, stride: tuple):
    """'valid' is no padding; 'same' pads so that OH = H (the odd pixel goes after, as PyTorch)."""
    if padding == "valid":
        return input, 0
    if padding != "same":
        raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got "
                         f"{padding!r}")
    if stride != (1, 1):
        raise ValueError("conv2d: padding='same' is not supported for strided convolutions")
    (kh, kw) = kernel
    before_h, before_w = (kh - 1) // 2, (kw - 1) // 2
    amounts = ((0, 0), (0, 0), (before_h, kh - 1 - before_h), (before_w, kw - 1 - before_w))
    return input.pad(amounts), 0


# ---- pooling ------------------------------------------------------------------------------------
def _pool_arguments(kernel_size, stride, padding, op: str):
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or stride == [] or stride == () else _pair(stride, "stride")
    padding = _pair(padding, "padding")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise RuntimeError(f"{op}: pad should be at most half of kernel size, but got "
                           f"pad={padding} and kernel_size={kernel}")
    return kernel, stride, padding


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor:
    """The maximum of each KHxKW window (stride defaults to the kernel size). Padding is -inf,
    so it is never the maximum."""
    if _pair(dilation, "dilation") != (1, 1) or ceil_mode or return_indices:
        raise NotImplementedError("max_pool2d: dilation, ceil_mode and return_indices are not "
                                  "implemented")
    input, unbatched = _batched(input, "max_pool2d")
    kernel, stride, padding = _pool_arguments(kernel_size, stride, padding, "max_pool2d")
    windows, shape = _windows(input, kernel, stride, padding, float("-inf"), "max_pool2d")
    output = WindowMax.apply(windows).reshape(shape)
    return output.squeeze(0) if unbatched else output


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """The mean of each KHxKW window; padded zeros count unless count_include_pad=False."""
    if ceil_mode:
        raise NotImplementedError("avg_pool2d: ceil_mode is not implemented")
    input, unbatched = _batched(input, "avg_pool2d")
    kernel, stride, padding = _pool_arguments(kernel_size, stride, padding, "avg_pool2d")
    windows, shape = _windows(input, kernel, stride, padding, 0, "avg_pool2d")
    if divisor_override:
        output = windows.sum(0) / divisor_override
    elif count_include_pad or padding == (0, 0):
        output = windows.mean(0)
    else:  # divide by the number of real (unpadded) elements in each window
        real = ones(1, 1, *input.shape[2:], dtype=input.dtype, device=input.device)
        counts, _ = _windows(real, kernel, stride, padding, 0, "avg_pool2d")
        n, c = input.shape[:2]
        output = (windows.sum(0).reshape(n * c, -1) / counts.sum(0)).reshape(-1)
    output = output.reshape(shape)
    return output.squeeze(0) if unbatched else output
