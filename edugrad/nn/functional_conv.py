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

The transposed convolution runs these steps backwards (W^T @ x, then Fold); dilation is the
same convolution with zeros spread between the kernel's taps, groups one convolution per group
of channels, and the 1-D versions use the 2-D ones on a (N, C, 1, L) view. Adaptive pooling
averages with a matrix product (A_h @ x @ A_w^T) and takes maxima with WindowMax, one dim at a
time.

Pooling reduces each window instead. The window dims go first, (KH*KW, N*C*OH*OW), so that the
reduction combines a few long contiguous rows rather than many tiny windows.
"""

from __future__ import annotations

import math

from edugrad.factories import arange, ones
from edugrad.function import ColumnsProduct, Fold, Unfold, WindowMax
from edugrad.shape import cat
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


# ---- convolution --------------------------------------------------------------------------------
def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of (N, C, H, W) with (OC, C/groups, KH, KW) weights -> (N, OC, OH,
    OW), OH = (H + 2*padding - dilation*(KH-1) - 1) // stride + 1. padding may be 'valid' (0)
    or 'same' (stride 1).

    Dilation spreads the kernel out: it is the same convolution with a kernel that has
    dilation-1 zeros between its taps (built from the weight by pad and reshape, so the weight's
    gradient flows back through it). Groups split the channels: group g convolves input
    channels [g*C/groups, (g+1)*C/groups) with its own OC/groups filters.
    """
    input, unbatched = _batched(input, "conv2d")
    _check_conv("conv2d", input, weight, bias, groups, 4)
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if dilation != (1, 1):
        weight = _spread(weight, (2, 3), dilation)
    if isinstance(padding, str):
        input, padding = _string_padding(input, padding, tuple(weight.shape[2:]), stride)
    padding = _pair(padding, "padding")
    if groups == 1:
        output = _conv2d_columns(input, weight, bias, stride, padding)
    else:
        output = cat([_conv2d_columns(*_group(g, groups, input, weight, bias), stride, padding)
                      for g in range(groups)], 1)
    return output.squeeze(0) if unbatched else output


def _check_conv(op: str, input: Tensor, weight: Tensor, bias, groups: int, ndim: int) -> None:
    """PyTorch's checks and words: weight rank, groups dividing both channel counts."""
    if weight.ndim != ndim:
        raise RuntimeError(f"{op}: expected a {ndim}D weight, got shape {tuple(weight.shape)}")
    if not isinstance(groups, int) or groups < 1:
        raise RuntimeError(f"{op}: non-positive groups is not supported, got {groups!r}")
    transposed = op.startswith("conv_transpose")
    in_per_group = weight.shape[0] // groups if transposed else weight.shape[1]
    out_channels = weight.shape[1] * groups if transposed else weight.shape[0]
    if not transposed and out_channels % groups:
        raise RuntimeError(f"{op}: given groups={groups}, expected weight {tuple(weight.shape)} "
                           f"to be divisible by {groups} at dimension 0")
    if input.shape[1] != in_per_group * groups:
        raise RuntimeError(f"{op}: given groups={groups}, weight of size {tuple(weight.shape)}, "
                           f"expected input {tuple(input.shape)} to have "
                           f"{in_per_group * groups} channels, but got {input.shape[1]} "
                           "channels instead")
    _check_like_input(op, input, weight, bias)


def _group(g: int, groups: int, input: Tensor, weight: Tensor, bias):
    """Group g's share: its input channels, its filters (weight dim 0) and their biases."""
    channels, filters = input.shape[1] // groups, weight.shape[0] // groups
    bias = None if bias is None else bias.narrow(0, g * (bias.shape[0] // groups),
                                                  bias.shape[0] // groups)
    return input.narrow(1, g * channels, channels), weight.narrow(0, g * filters, filters), bias


def _spread(tensor: Tensor, dims: tuple, factors: tuple) -> Tensor:
    """Put factor-1 zeros between neighbours along each dim: [a, b, c] by 2 -> [a, 0, b, 0, c].
    (Unsqueeze a dim of 1 after it, pad that to `factor`, merge the two, drop the tail.)"""
    for dim, factor in zip(dims, factors):
        if factor == 1 or tensor.shape[dim] == 0:
            continue
        size = tensor.shape[dim]
        amounts = [(0, 0)] * (tensor.ndim + 1)
        amounts[dim + 1] = (0, factor - 1)
        spread = tensor.unsqueeze(dim + 1).pad(tuple(amounts)).flatten(dim, dim + 1)
        tensor = spread.narrow(dim, 0, (size - 1) * factor + 1)
    return tensor


def _conv2d_columns(input: Tensor, weight: Tensor, bias, stride: tuple, padding: tuple):
    """One group's convolution, stride and padding as pairs: im2col and one product."""
    out_channels, channels, kh, kw = weight.shape
    n = input.shape[0]
    # im2col: windows -> columns (C*KH*KW, N*OH*OW); this reshape is the one copy
    padded = _pad2d(input, (kh, kw), padding, 0, "conv2d")
    windows = Unfold.apply(padded, kernel=(kh, kw), stride=stride)
    oh, ow = windows.shape[2:4]
    columns = windows.permute(1, 4, 5, 0, 2, 3).reshape(channels * kh * kw, n * oh * ow)
    weight = weight.reshape(out_channels, channels * kh * kw)
    products = (columns, weight) if bias is None else (columns, weight, bias)
    output = ColumnsProduct.apply(*products)  # W @ columns + b: (OC, N*OH*OW)
    # a view, not a copy: the output stays stored channel-major (see the module docstring)
    return output.reshape(out_channels, n, oh, ow).permute(1, 0, 2, 3)


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
def _pool_arguments(kernel_size, stride, padding, op: str, dilation=1):
    """kernel, stride, padding and dilation as pairs, with PyTorch's checks."""
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or stride == [] or stride == () else _pair(stride, "stride")
    padding, dilation = _pair(padding, "padding"), _pair(dilation, "dilation")
    if min(kernel + stride + dilation) < 1 or min(padding) < 0:
        raise RuntimeError(f"{op}: kernel_size {kernel}, stride {stride} and dilation {dilation} "
                           f"must be positive and padding {padding} non-negative")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise RuntimeError(f"{op}: pad should be at most half of kernel size, but got "
                           f"pad={padding} and kernel_size={kernel}")
    return kernel, stride, padding, dilation


def _pooled_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
                 ceil_mode: bool) -> int:
    """How many windows fit along one dim (PyTorch's pooling_output_shape). A window spans
    dilation*(kernel-1) + 1 elements; ceil_mode also counts a last window that hangs over the
    padded end, unless it would start past the input, in the padding (PyTorch drops those)."""
    room = size + 2 * padding - dilation * (kernel - 1) - 1
    count = (-(-room // stride) if ceil_mode else room // stride) + 1
    if ceil_mode and (count - 1) * stride >= size + padding:
        count -= 1
    return count


def _pool_geometry(input: Tensor, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
                   ceil_mode: bool, op: str) -> tuple:
    """The output's (OH, OW), and how far past the padding ceil_mode's last windows reach."""
    out, beyond = [], []
    for size, k, s, p, d in zip(input.shape[2:], kernel, stride, padding, dilation):
        count = _pooled_size(size, k, s, p, d, ceil_mode)
        out.append(count)
        beyond.append(max(0, (count - 1) * s + d * (k - 1) + 1 - size - 2 * p))
    if min(out) < 1:
        raise RuntimeError(f"{op}: given input size {tuple(input.shape[1:])}, the calculated "
                           f"output size {(input.shape[1], *out)} is too small (kernel {kernel}, "
                           f"stride {stride}, padding {padding}, dilation {dilation})")
    return tuple(out), tuple(beyond)


def _windows(input: Tensor, geometry: tuple, kernel: tuple, stride: tuple, padding: tuple,
             dilation: tuple, value: float, beyond_value: float | None = None):
    """The KH*KW taps of every window of an (N, C, H, W) input as a (KH*KW, N*C*OH*OW) tensor,
    and the output shape (N, C, OH, OW). The input is padded with `value`, and past that as far
    as ceil_mode's last windows reach with `beyond_value` (default: `value`). A dilated window
    is the spread-out window of dilation*(K-1) + 1 elements with every dilation-th one kept."""
    (oh, ow), (eh, ew) = geometry
    (ph, pw), n, c = padding, *input.shape[:2]
    if beyond_value is None or not (eh or ew):
        amounts = ((0, 0), (0, 0), (ph, ph + eh), (pw, pw + ew))
        padded = input.pad(amounts, value=value) if any(map(any, amounts)) else input
    else:
        padded = input.pad(((0, 0), (0, 0), (ph, ph), (pw, pw)), value=value)
        padded = padded.pad(((0, 0), (0, 0), (0, eh), (0, ew)), value=beyond_value)
    spans = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    windows = Unfold.apply(padded, kernel=spans, stride=stride)  # exactly (OH, OW) of them
    if dilation != (1, 1):
        windows = windows[..., ::dilation[0], ::dilation[1]]
    return windows.permute(4, 5, 0, 1, 2, 3).reshape(-1, n * c * oh * ow), (n, c, oh, ow)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor:
    """The maximum of each KHxKW window (stride defaults to the kernel size). Padding is -inf,
    so it is never the maximum. dilation spreads the window's taps dilation apart; ceil_mode
    rounds the number of windows up (see _pooled_size). return_indices: also where each
    maximum is, as PyTorch gives it (int64, the flat index h * W + w into the input's plane, of
    the first maximum in row-major order), ready for max_unpool2d."""
    input, unbatched = _batched(input, "max_pool2d")
    kernel, stride, padding, dilation = _pool_arguments(kernel_size, stride, padding,
                                                        "max_pool2d", dilation)
    geometry = _pool_geometry(input, kernel, stride, padding, dilation, ceil_mode, "max_pool2d")
    windows, shape = _windows(input, geometry, kernel, stride, padding, dilation, float("-inf"))
    output = WindowMax.apply(windows).reshape(shape)
    if return_indices:
        indices = _window_argmax(windows, output, input.shape[3], kernel, stride, padding,
                                 dilation)
        return (output.squeeze(0), indices.squeeze(0)) if unbatched else (output, indices)
    return output.squeeze(0) if unbatched else output


def _window_argmax(windows: Tensor, output: Tensor, width: int, kernel: tuple, stride: tuple,
                   padding: tuple, dilation: tuple) -> Tensor:
    """Where in the input plane each window's maximum is, as PyTorch's loop finds it: it starts
    at the window's first tap inside the input (past the padding before it) and moves on only
    for a larger value or a NaN. So: the first tap, padding before the input left out, that
    holds the maximum; in a window holding NaN, the last NaN. Tap (a, b) of window (i, j) sits
    at row i*SH - PH + a*DH, column j*SW - PW + b*DW."""
    (kh, kw), (n, c, oh, ow) = kernel, output.shape
    device = windows.device
    rows = (arange(oh, device=device) * stride[0] - padding[0]).reshape(1, 1, 1, 1, oh, 1)
    rows = rows + (arange(kh, device=device) * dilation[0]).reshape(kh, 1, 1, 1, 1, 1)
    cols = (arange(ow, device=device) * stride[1] - padding[1]).reshape(1, 1, 1, 1, 1, ow)
    cols = cols + (arange(kw, device=device) * dilation[1]).reshape(1, kw, 1, 1, 1, 1)
    taps = windows.detach().reshape(kh, kw, n, c, oh, ow)
    rank = arange(kh * kw, 0, -1, device=device).reshape(kh, kw, 1, 1, 1, 1)  # K, ..., 1
    hit = (taps == output.detach()) & (rows >= 0) & (cols >= 0)
    first = kh * kw - (hit.long() * rank).amax((0, 1))  # the highest rank is the first hit
    last_nan = (taps.isnan().long() * (kh * kw + 1 - rank)).amax((0, 1)) - 1
    k = last_nan.where(last_nan >= 0, first)
    row = arange(oh, device=device).reshape(oh, 1) * stride[0] - padding[0]
    col = arange(ow, device=device).reshape(1, ow) * stride[1] - padding[1]
    return (row + k // kw * dilation[0]) * width + col + k % kw * dilation[1]


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """max_pool2d undone as far as it can be: each value back at its index (from max_pool2d's
    return_indices), zeros elsewhere. The output's H, W are (H_in - 1)*stride - 2*padding +
    kernel, or output_size. A scatter along each flattened plane; its gradient gathers back.
    Windows that overlap can report one index twice: the value lands once, and so its gradient
    reaches one copy (PyTorch's backward gathers the gradient into every copy, so through
    max_pool2d then max_unpool2d it counts that element's gradient twice)."""
    input, unbatched = _batched(input, "max_unpool2d")
    indices = indices.unsqueeze(0) if unbatched else indices
    kernel, stride, padding, _ = _pool_arguments(kernel_size, stride, padding, "max_unpool2d")
    return _unpool(input, indices, kernel, stride, padding, output_size, "max_unpool2d",
                   unbatched)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """max_unpool2d's 1-D sibling, for max_pool1d's indices over (N, C, L)."""
    if input.ndim not in (2, 3):
        raise RuntimeError(f"max_unpool1d: expected a 2D (C, L) or 3D (N, C, L) input, got "
                           f"shape {tuple(input.shape)}")
    stride = kernel_size if stride is None or stride == [] or stride == () else stride
    kernel, stride = (_single(kernel_size, "kernel_size"),), (_single(stride, "stride"),)
    unbatched = input.ndim == 2
    batched = (input.unsqueeze(0), indices.unsqueeze(0)) if unbatched else (input, indices)
    return _unpool(*batched, kernel, stride, (_single(padding, "padding"),), output_size,
                   "max_unpool1d", unbatched)


def _unpool(input: Tensor, indices: Tensor, kernel: tuple, stride: tuple, padding: tuple,
            output_size, op: str, unbatched: bool) -> Tensor:
    spatial = len(kernel)
    if tuple(indices.shape) != tuple(input.shape) or indices.dtype.is_floating_point:
        raise RuntimeError(f"{op}: expected integer indices of the input's shape "
                           f"{tuple(input.shape)}, got shape {tuple(indices.shape)} of "
                           f"{indices.dtype.name}")
    default = [(size - 1) * st - 2 * pad + k for size, k, st, pad
               in zip(input.shape[2:], kernel, stride, padding)]
    sizes = default
    if output_size is not None:
        sizes = list(output_size)[-spatial:] if len(output_size) == spatial + 2 else \
            list(output_size)
        if len(sizes) != spatial:
            raise ValueError(f"{op}: output_size should be a sequence containing {spatial} or "
                             f"{spatial + 2} elements, but it has a length of "
                             f"{len(output_size)}")
        for d, (size, base, st) in enumerate(zip(sizes, default, stride)):
            if not base - st < size < base + st:
                raise ValueError(f"{op}: invalid output_size {tuple(output_size)} (dim {d} must "
                                 f"be between {base - st} and {base + st})")
    n, c = input.shape[:2]
    plane = math.prod(sizes)
    flat = indices.reshape(n, c, -1).long()
    if plane and flat.numel():  # (an empty output takes no values, whatever the indices say)
        low, high = int(flat.min().item()), int(flat.max().item())
        if low < 0 or high >= plane:
            raise RuntimeError(f"{op}: found an invalid max index (indices run from {low} to "
                               f"{high}, output planes are {'x'.join(map(str, sizes))})")
    output = input.new_zeros((n, c, plane))
    if plane:
        output = output.scatter(2, flat, input.reshape(n, c, -1))
    output = output.reshape(n, c, *sizes)
    return output.squeeze(0) if unbatched else output


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """The mean of each KHxKW window, with PyTorch's divisor: the window's size, padded zeros
    included unless count_include_pad=False, but not the part of ceil_mode's last windows that
    hangs past the padding; divisor_override replaces it."""
    input, unbatched = _batched(input, "avg_pool2d")
    kernel, stride, padding, _ = _pool_arguments(kernel_size, stride, padding, "avg_pool2d")
    geometry = _pool_geometry(input, kernel, stride, padding, (1, 1), ceil_mode, "avg_pool2d")
    windows, shape = _windows(input, geometry, kernel, stride, padding, (1, 1), 0)
    if divisor_override:
        output = windows.sum(0) / divisor_override
    elif (count_include_pad or padding == (0, 0)) and geometry[1] == (0, 0):
        output = windows.mean(0)  # every window counts its whole kernel
    else:  # count what each window covers: ones over the counted region, windowed alike
        counted = ones(1, 1, *input.shape[2:], dtype=input.dtype, device=input.device)
        counts, _ = _windows(counted, geometry, kernel, stride, padding, (1, 1),
                             1 if count_include_pad else 0, beyond_value=0)
        n, c = input.shape[:2]
        output = (windows.sum(0).reshape(n * c, -1) / counts.sum(0)).reshape(-1)
    output = output.reshape(shape)
    return output.squeeze(0) if unbatched else output


def lp_pool2d(input: Tensor, norm_type: float, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    """The p-norm of each window, (sum x^p)^(1/p), composed as PyTorch composes it: avg_pool2d
    of x^p times the kernel's size (so ceil_mode's short windows are scaled as if whole)."""
    kh, kw = _pair(kernel_size, "kernel_size")
    out = avg_pool2d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu()).mul(kh * kw).pow(1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type: float, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    """lp_pool2d's 1-D sibling: the p-norm of each window along the last dim."""
    out = avg_pool1d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu()).mul(_single(kernel_size, "kernel_size")).pow(
        1.0 / norm_type)


# ---- 1-D convolution and the transposed convolution -------------------------------------------
def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """1-D cross-correlation of (N, C, L) with (OC, C/groups, K) -> (N, OC, OL): conv2d on the
    (N, C, 1, L) view with a (OC, C/groups, 1, K) kernel."""
    if input.ndim not in (2, 3):
        raise RuntimeError(f"conv1d: expected a 2D (C, L) or 3D (N, C, L) input, got shape "
                           f"{tuple(input.shape)}")
    batched = input if input.ndim == 3 else input.unsqueeze(0)
    _check_conv("conv1d", batched, weight, bias, groups, 3)
    padding = padding if isinstance(padding, str) else (0, _single(padding, "padding"))
    output = conv2d(batched.unsqueeze(2), weight.unsqueeze(2), bias,
                    (1, _single(stride, "stride")), padding, (1, _single(dilation, "dilation")),
                    groups).squeeze(2)
    return output if input.ndim == 3 else output.squeeze(0)


def _single(value, name: str) -> int:
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name} must be an int or a 1-tuple, got {value!r}")
        value = value[0]
    return int(value)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """The adjoint of conv2d ("deconvolution"): (N, C, H, W) with (C, OC/groups, KH, KW) weights
    -> (N, OC, OH, OW), OH = (H - 1)*stride - 2*padding + dilation*(KH - 1) + output_padding + 1.

    conv2d cuts windows out of its input (Unfold) and multiplies them by the weight; this runs
    the same two steps backwards: each input pixel times the weight gives a KHxKW patch of
    output (one product, W^T @ x), and Fold adds the patches up where they overlap, `stride`
    apart. Then `padding` is cut from both sides, and output_padding rows added at the end.
    """
    input, unbatched = _batched(input, "conv_transpose2d")
    _check_conv("conv_transpose2d", input, weight, bias, groups, 4)
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    output_padding, dilation = _pair(output_padding, "output_padding"), _pair(dilation, "dilation")
    if any(extra >= max(s, d) for extra, s, d in zip(output_padding, stride, dilation)):
        raise RuntimeError(f"conv_transpose2d: output_padding {output_padding} must be smaller "
                           f"than either stride {stride} or dilation {dilation}")
    if dilation != (1, 1):
        weight = _spread(weight, (2, 3), dilation)
    if groups == 1:
        output = _transposed_columns(input, weight, stride)
    else:  # the weight's dim 0 is the input channels here, so _group cuts the right parts
        output = cat([_transposed_columns(*_group(g, groups, input, weight, None)[:2], stride)
                      for g in range(groups)], 1)
    (ph, pw), (eh, ew) = padding, output_padding
    amounts = ((0, 0), (0, 0), (-ph, eh - ph), (-pw, ew - pw))
    if output.shape[2] + eh - 2 * ph <= 0 or output.shape[3] + ew - 2 * pw <= 0:
        raise RuntimeError(f"conv_transpose2d: padding {padding} leaves no output for input "
                           f"{tuple(input.shape)} and weight {tuple(weight.shape)}")
    output = _pad_or_crop(output, amounts)
    if bias is not None:  # after output_padding: its extra rows get the bias too
        output = output + bias.reshape(1, -1, 1, 1)
    return output.squeeze(0) if unbatched else output


def _transposed_columns(input: Tensor, weight: Tensor, stride: tuple) -> Tensor:
    """One group: patches = W^T @ x, (OC*KH*KW, N*H*W), folded into (N, OC, H', W')."""
    channels, out_channels, kh, kw = weight.shape
    n, _, h, w = input.shape
    pixels = input.permute(1, 0, 2, 3).reshape(channels, n * h * w)
    patches = weight.reshape(channels, out_channels * kh * kw).transpose(0, 1) @ pixels
    patches = patches.reshape(out_channels, kh, kw, n, h, w).permute(3, 0, 4, 5, 1, 2)
    shape = (n, out_channels, (h - 1) * stride[0] + kh, (w - 1) * stride[1] + kw)
    return Fold.apply(patches.contiguous(), shape=shape, stride=stride)


def _pad_or_crop(input: Tensor, amounts: tuple) -> Tensor:
    """Pad by the positive (before, after) amounts per dim, then crop by the negative ones."""
    grow = tuple((max(before, 0), max(after, 0)) for before, after in amounts)
    output = input.pad(grow) if any(map(any, grow)) else input
    for dim, (before, after) in enumerate(amounts):
        if before < 0 or after < 0:
            start = -min(before, 0)
            output = output.narrow(dim, start, output.shape[dim] - start + min(after, 0))
    return output


# ---- adaptive pooling ---------------------------------------------------------------------------
def _adaptive_windows(size: int, out: int) -> list:
    """PyTorch's windows: output i covers [floor(i*size/out), ceil((i+1)*size/out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _output_sizes(output_size, spatial: tuple, op: str) -> tuple:
    sizes = (output_size,) * len(spatial) if isinstance(output_size, int) else tuple(output_size)
    if len(sizes) != len(spatial):
        raise ValueError(f"{op}: output_size must be an int or a {len(spatial)}-tuple, got "
                         f"{output_size!r}")
    sizes = tuple(size if out is None else out for out, size in zip(sizes, spatial))
    if any(out <= 0 for out in sizes) or any(size == 0 for size in spatial):
        raise RuntimeError(f"{op}: expected output_size {sizes} > 0 and a non-empty input, got "
                           f"input of shape spatial {spatial}")
    return sizes


def _averaging_matrix(size: int, out: int, like: Tensor) -> Tensor:
    """(out, size): row i averages window i. x @ A.T pools the last dim, gradient included."""
    rows = [[0.0] * size for _ in range(out)]
    for i, (start, end) in enumerate(_adaptive_windows(size, out)):
        rows[i][start:end] = [1.0 / (end - start)] * (end - start)
    return like.new_tensor(rows)


def _check_rank(input: Tensor, dims: int, op: str) -> None:
    if input.ndim not in (dims + 1, dims + 2):
        raise RuntimeError(f"{op}: expected a {dims + 1}D or {dims + 2}D input, got shape "
                           f"{tuple(input.shape)}")


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Mean over PyTorch's adaptive windows of the last dim: (N, C, L) -> (N, C, output_size)."""
    _check_rank(input, 1, "adaptive_avg_pool1d")
    (out,) = _output_sizes(output_size, tuple(input.shape[-1:]), "adaptive_avg_pool1d")
    return input @ _averaging_matrix(input.shape[-1], out, input).transpose(0, 1)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Mean over adaptive windows of the last two dims: A_h @ x @ A_w^T, both averaging
    matrices (a window's mean is separable: the mean of the row means)."""
    _check_rank(input, 2, "adaptive_avg_pool2d")
    (h, w) = input.shape[-2:]
    oh, ow = _output_sizes(output_size, (h, w), "adaptive_avg_pool2d")
    if (oh, ow) == (1, 1):
        return input.mean((-2, -1), keepdim=True)
    rows, cols = _averaging_matrix(h, oh, input), _averaging_matrix(w, ow, input)
    return rows @ input @ cols.transpose(0, 1)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False) -> Tensor:
    """Maximum over adaptive windows: along W first, then along H, each by WindowMax, so the
    gradient reaches PyTorch's element: the first maximum in row-major order. return_indices:
    also that element's flat index h * W + w in its plane (int64), as PyTorch's."""
    _check_rank(input, 2, "adaptive_max_pool2d")
    h, w = input.shape[-2:]
    oh, ow = _output_sizes(output_size, (h, w), "adaptive_max_pool2d")
    along_w, columns = _adaptive_max(input, -1, ow)
    output, rows = _adaptive_max(along_w, -2, oh)
    if not return_indices:
        return output
    # the first row holding the window's maximum, and in it the first column holding it
    return output, rows * w + columns.gather(-2, rows)


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False) -> Tensor:
    _check_rank(input, 1, "adaptive_max_pool1d")
    (out,) = _output_sizes(output_size, tuple(input.shape[-1:]), "adaptive_max_pool1d")
    output, positions = _adaptive_max(input, -1, out)
    return (output, positions) if return_indices else output


def _adaptive_max(input: Tensor, dim: int, out: int) -> tuple:
    """The maximum of each adaptive window along one dim (moved to the front for WindowMax),
    and where along that dim it is (the first one)."""
    moved = input.movedim(dim, 0)
    rest = tuple(moved.shape[1:])
    pieces, positions = [], []
    for start, end in _adaptive_windows(moved.shape[0], out):
        windows = moved.narrow(0, start, end - start).reshape(end - start, -1)
        pieces.append(WindowMax.apply(windows).reshape((1,) + rest))
        positions.append((windows.detach().argmax(0) + start).reshape((1,) + rest))
    return cat(pieces, 0).movedim(0, dim), cat(positions, 0).movedim(0, dim)


# ---- 1-D pooling and transposed convolution: the 2-D ones on a (N, C, 1, L) view ---------------
def _as_2d(input: Tensor, op: str) -> Tensor:
    if input.ndim not in (2, 3):
        raise RuntimeError(f"{op}: expected a 2D (C, L) or 3D (N, C, L) input, got shape "
                           f"{tuple(input.shape)}")
    return input.unsqueeze(-2)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor:
    """The maximum of each window along the last dim (stride defaults to the kernel size)."""
    stride = kernel_size if stride is None or stride == [] or stride == () else stride
    output = max_pool2d(_as_2d(input, "max_pool1d"), (1, _single(kernel_size, "kernel_size")),
                        (1, _single(stride, "stride")), (0, _single(padding, "padding")),
                        (1, _single(dilation, "dilation")), ceil_mode, return_indices)
    if return_indices:  # on the (1, L) plane, h * L + w is w
        return output[0].squeeze(-2), output[1].squeeze(-2)
    return output.squeeze(-2)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """The mean of each window along the last dim."""
    stride = kernel_size if stride is None or stride == [] or stride == () else stride
    return avg_pool2d(_as_2d(input, "avg_pool1d"), (1, _single(kernel_size, "kernel_size")),
                      (1, _single(stride, "stride")), (0, _single(padding, "padding")),
                      ceil_mode, count_include_pad).squeeze(-2)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """conv_transpose2d on the (N, C, 1, L) view with a (C, OC/groups, 1, K) weight."""
    if weight.ndim != 3:
        raise RuntimeError(f"conv_transpose1d: expected a 3D weight, got shape "
                           f"{tuple(weight.shape)}")
    return conv_transpose2d(_as_2d(input, "conv_transpose1d"), weight.unsqueeze(2), bias,
                            (1, _single(stride, "stride")), (0, _single(padding, "padding")),
                            (0, _single(output_padding, "output_padding")), groups,
                            (1, _single(dilation, "dilation"))).squeeze(-2)
