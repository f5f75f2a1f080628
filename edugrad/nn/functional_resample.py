"""Resampling: F.interpolate (nearest, linear, bilinear, bicubic, area) and F.pad's non-constant
modes.

Layer: nn (top). Imports edugrad.tensor, edugrad.function and functional_conv (for 'area');
never NumPy.

Both pick, for every output position along a dim, which input positions it reads: a list of
indices (for linear modes two indices and a weight, for bicubic four of each), computed in
plain Python once per call from the sizes alone. Take (edugrad/function.py) then gathers those rows; its backward adds
the gradient back at the indices, so positions read twice (padding, upsampling) collect both.
Every dim is handled on its own, one after the other: bilinear is linear along H, then along W,
bicubic cubic along H, then along W.
"""

from __future__ import annotations

import math
import struct

from edugrad import dtypes
from edugrad.function import Take
from edugrad.nn.functional_conv import adaptive_avg_pool1d, adaptive_avg_pool2d
from edugrad.tensor import Tensor


def _take(input: Tensor, dim: int, indices: list) -> Tensor:
    index = Tensor(indices, dtype=dtypes.int64, device=input.device)
    return Take.apply(input, index, axis=dim)


# ---- padding -------------------------------------------------------------------------------------
def _pad_indices(size: int, before: int, after: int, mode: str) -> list:
    positions = range(-before, size + after)
    if mode == "reflect":  # mirror at the edge, the edge itself not repeated: 2 1 | 0 1 2 | 1 0
        period = 2 * (size - 1)
        return [period - p % period if p % period >= size else p % period for p in positions] \
            if size > 1 else [0] * len(positions)
    if mode == "replicate":  # the edge repeated: 0 0 | 0 1 2 | 2 2
        return [min(max(p, 0), size - 1) for p in positions]
    return [p % size for p in positions]  # circular: wrap around, 1 2 | 0 1 2 | 0 1


def pad_by_mode(input: Tensor, pad: tuple, mode: str) -> Tensor:
    """F.pad for mode 'reflect', 'replicate' or 'circular', with PyTorch's rules: padding
    the last 1, 2 or 3 dims of an input with one or two more dims than that; reflect needs
    each amount smaller than the size, circular at most the size."""
    dims = len(pad) // 2
    if dims not in (1, 2, 3) or input.ndim not in (dims + 1, dims + 2):
        raise NotImplementedError(
            f"pad: only 2D, 3D, 4D, 5D padding with non-constant padding are supported for now; "
            f"mode {mode!r} with pad of length {len(pad)} needs a {dims + 1}D or {dims + 2}D "
            f"input, got shape {tuple(input.shape)}")
    sizes = [input.shape[input.ndim - 1 - i] + pad[2 * i] + pad[2 * i + 1] for i in range(dims)]
    if mode in ("reflect", "replicate") and all(size < 1 for size in sizes):
        # PyTorch's check: some padded dim must keep at least one element
        raise RuntimeError(f"pad: input {tuple(input.shape)} is too small for {mode} padding "
                           f"{tuple(pad)}: the padded sizes (last dim first) would be "
                           f"{tuple(sizes)}")
    output = input
    for i in range(dims):
        dim, (before, after) = input.ndim - 1 - i, (pad[2 * i], pad[2 * i + 1])
        size = input.shape[dim]
        if mode == "reflect" and (before >= size or after >= size):
            raise RuntimeError(f"pad: padding size should be less than the corresponding input "
                               f"dimension, but got: padding ({before}, {after}) at dimension "
                               f"{dim} of input {tuple(input.shape)}")
        if mode == "circular" and (before > size or after > size):
            raise RuntimeError(f"pad: padding value causes wrapping around more than once: "
                               f"padding ({before}, {after}) at dimension {dim} of input "
                               f"{tuple(input.shape)}")
        if mode == "replicate" and size == 0:
            raise RuntimeError(f"pad: cannot replicate-pad an empty dim {dim} of input "
                               f"{tuple(input.shape)}")
        if size + before + after < 0:
            raise RuntimeError(f"pad: negative padding ({before}, {after}) at dimension {dim} "
                               f"leaves a negative size for input {tuple(input.shape)}")
        if mode == "circular" and (before < 0 or after < 0):
            # PyTorch crops first, then wraps around what is left
            start = max(-before, 0)
            output = output.narrow(dim, start, size - start - max(-after, 0))
            size, before, after = output.shape[dim], max(before, 0), max(after, 0)
            if size == 0 and (before or after):
                raise RuntimeError(f"pad: negative padding value is resulting in an empty "
                                   f"dimension {dim} of input {tuple(input.shape)}, with "
                                   "nothing left to wrap around")
        if before or after:  # reflect, replicate: negative amounts crop, positions start inside
            output = _take(output, dim, _pad_indices(size, before, after, mode))
    return output


# ---- interpolation -------------------------------------------------------------------------------
def _float32(value: float) -> float:
    """Round to the nearest float32: PyTorch computes nearest's source index in float."""
    return struct.unpack("f", struct.pack("f", value))[0]


def _nearest_indices(size: int, out: int, scale: float | None, exact_cases: bool) -> list:
    # PyTorch: src = min(floor(dst * s), size - 1) in float32, s = 1/scale_factor or size/out,
    # except (its 2-D and 3-D kernels) that the same size copies and twice the size repeats
    # each pixel, whatever s says
    if exact_cases and out == size:
        return list(range(out))
    if exact_cases and out == 2 * size:
        return [j // 2 for j in range(out)]
    step = _float32(1.0 / scale if scale else size / out)
    return [min(int(math.floor(_float32(j * step))), size - 1) for j in range(out)]


def _nearest_exact_indices(size: int, out: int, scale: float | None) -> list:
    # PyTorch's 'nearest-exact': the pixel whose centre is nearest, src = floor((dst + 0.5) * s)
    step = _float32(1.0 / scale if scale else size / out)
    return [min(int(math.floor(_float32(_float32(j + 0.5) * step))), size - 1)
            for j in range(out)]


def _linear_weights(size: int, out: int, scale: float | None, align_corners: bool):
    """Left index, right index and the right one's weight for every output position."""
    if align_corners:
        step = (size - 1) / (out - 1) if out > 1 else 0.0
    else:
        step = 1.0 / scale if scale else size / out
    lefts, rights, weights = [], [], []
    for j in range(out):
        # align_corners maps the corner pixels' centres onto each other; otherwise pixel
        # centres sit at half-integers, and positions left of the first centre clamp to it
        source = j * step if align_corners else max((j + 0.5) * step - 0.5, 0.0)
        left = min(int(source), size - 1)
        lefts.append(left)
        rights.append(min(left + 1, size - 1))
        weights.append(source - left)
    return lefts, rights, weights


CUBIC_A = -0.75  # PyTorch's (and OpenCV's) sharpness of the cubic convolution kernel


def _cubic_weights(size: int, out: int, scale: float | None, align_corners: bool):
    """Four input indices and four weights for every output position: Keys' cubic convolution,
    as PyTorch's bicubic. The source position is not clamped (unlike linear's); the four
    neighbours floor(src) - 1 .. floor(src) + 2 are, to the border pixels."""
    if align_corners:
        step = (size - 1) / (out - 1) if out > 1 else 0.0
    else:
        step = 1.0 / scale if scale else size / out
    near = lambda x: ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1  # noqa: E731, |x| <= 1
    far = lambda x: ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A  # noqa: E731
    indices, weights = [[], [], [], []], [[], [], [], []]
    for j in range(out):
        source = j * step if align_corners else (j + 0.5) * step - 0.5
        left = math.floor(source)
        t = source - left
        for k, weight in enumerate((far(t + 1), near(t), near(1 - t), far(2 - t))):
            indices[k].append(min(max(left - 1 + k, 0), size - 1))
            weights[k].append(weight)
    return indices, weights


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """Resize the spatial dims (all after N, C) to `size`, or by `scale_factor`.

    mode 'nearest' copies the pixel each output position falls in ('nearest-exact': the pixel
    whose centre is nearest); 'linear' (3D input) and 'bilinear' (4D) mix the two nearest
    pixels by distance, with align_corners as PyTorch defines it (False: pixels are squares,
    True: the corner pixels' centres align); 'bicubic' (4D) mixes four pixels per dim with
    PyTorch's cubic convolution weights (A = -0.75, edges clamped), so it may overshoot the
    input's range as PyTorch's does; 'area' averages (adaptive average pooling).
    """
    dims = input.ndim - 2
    expected = {"nearest": (1, 2, 3), "nearest-exact": (1, 2, 3), "linear": (1,),
                "bilinear": (2,), "bicubic": (2,), "area": (1, 2)}
    if mode not in expected:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not implemented ("
                                  f"{', '.join(expected)} are)")
    if dims not in expected[mode]:
        raise NotImplementedError(f"interpolate: got {input.ndim}D input, but {mode} mode needs "
                                  f"{' or '.join(str(d + 2) + 'D' for d in expected[mode])} "
                                  f"(input of shape {tuple(input.shape)})")
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if antialias:
        raise NotImplementedError("interpolate: antialias is not implemented")
    sizes, scales = _target_sizes(input, size, scale_factor, recompute_scale_factor)
    if mode == "area":  # the mean over each output pixel's share: adaptive average pooling
        return (adaptive_avg_pool1d if dims == 1 else adaptive_avg_pool2d)(input, sizes)
    if mode == "bicubic":
        return _bicubic(input, sizes, scales, bool(align_corners))
    output = input
    for i, (out, scale) in enumerate(zip(sizes, scales)):
        dim, length = 2 + i, input.shape[2 + i]
        if mode == "nearest":
            output = _take(output, dim, _nearest_indices(length, out, scale, dims > 1))
            continue
        if mode == "nearest-exact":
            output = _take(output, dim, _nearest_exact_indices(length, out, scale))
            continue
        if out == length:  # PyTorch leaves a dim that keeps its size alone, whatever the scale
            continue
        lefts, rights, weights = _linear_weights(length, out, scale, bool(align_corners))
        shape = [1] * input.ndim
        shape[dim] = out
        weight = output.new_tensor(weights).reshape(shape)
        left, right = _take(output, dim, lefts), _take(output, dim, rights)
        output = left + (right - left) * weight
    return output if output is not input else input.clone()


def _bicubic(input: Tensor, sizes: tuple, scales: tuple, align_corners: bool) -> Tensor:
    """Along H, then along W: four gathered rows (Take), weighted and added up. Unlike the
    linear modes, a dim that keeps its size is still resampled when a scale_factor says
    otherwise (as PyTorch's bicubic kernel does)."""
    if min(sizes) <= 0 or min(input.shape[2:]) <= 0:
        raise RuntimeError(f"interpolate: input and output sizes should be greater than 0, but "
                           f"got input {tuple(input.shape[2:])} and output {tuple(sizes)} "
                           f"(mode bicubic)")
    output = input
    for i, (out, scale) in enumerate(zip(sizes, scales)):
        dim = 2 + i
        indices, weights = _cubic_weights(input.shape[dim], out, scale, align_corners)
        shape = [1] * input.ndim
        shape[dim] = out
        terms = [_take(output, dim, index) * output.new_tensor(weight).reshape(shape)
                 for index, weight in zip(indices, weights)]
        output = terms[0] + terms[1] + terms[2] + terms[3]
    return output


def _target_sizes(input: Tensor, size, scale_factor, recompute_scale_factor) -> tuple:
    """The output size of each spatial dim, and the scale to index with (None: size/out)."""
    spatial = tuple(input.shape[2:])
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: either size or scale_factor should be defined, not both")
    if size is not None:
        sizes = (size,) * len(spatial) if isinstance(size, int) else tuple(size)
        if len(sizes) != len(spatial):
            raise ValueError(f"interpolate: input of shape {tuple(input.shape)} has "
                             f"{len(spatial)} spatial dims, but size {size!r} has {len(sizes)}")
        return sizes, (None,) * len(spatial)
    scales = ((scale_factor,) * len(spatial) if isinstance(scale_factor, (int, float))
              else tuple(scale_factor))
    if len(scales) != len(spatial):
        raise ValueError(f"interpolate: input of shape {tuple(input.shape)} has {len(spatial)} "
                         f"spatial dims, but scale_factor {scale_factor!r} has {len(scales)}")
    sizes = tuple(int(math.floor(length * float(s))) for length, s in zip(spatial, scales))
    return sizes, ((None,) * len(spatial) if recompute_scale_factor else scales)


# ---- pixel shuffle: channels <-> space ----------------------------------------------------------
def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r): each group of r^2 channels becomes an r x r block.

    A reshape, a permute and a reshape, so its gradient is theirs: output[c, h r + i, w r + j]
    is input[c r^2 + i r + j, h, w].
    """
    r = upscale_factor
    if input.ndim < 3:
        raise RuntimeError("pixel_shuffle expects input to have at least 3 dimensions, but got "
                           f"input with {input.ndim} dimension(s)")
    *batch, channels, height, width = input.shape
    if channels % (r * r):
        raise RuntimeError("pixel_shuffle expects its input's 'channel' dimension to be "
                           f"divisible by the square of upscale_factor, but input.size(-3)="
                           f"{channels} is not divisible by {r * r}")
    n = len(batch)
    blocks = input.reshape(*batch, channels // (r * r), r, r, height, width)
    # (*, C, i, j, H, W) -> (*, C, H, i, W, j): row i of each block after its pixel's row h
    blocks = blocks.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return blocks.reshape(*batch, channels // (r * r), height * r, width * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W): pixel_shuffle's inverse."""
    r = downscale_factor
    if input.ndim < 3:
        raise RuntimeError("pixel_unshuffle expects input to have at least 3 dimensions, but "
                           f"got input with {input.ndim} dimension(s)")
    *batch, channels, height, width = input.shape
    for name, dim, size in (("height", -2, height), ("width", -1, width)):
        if size % r:
            raise RuntimeError(f"pixel_unshuffle expects {name} to be divisible by "
                               f"downscale_factor, but input.size({dim})={size} is not "
                               f"divisible by {r}")
    n = len(batch)
    blocks = input.reshape(*batch, channels, height // r, r, width // r, r)
    blocks = blocks.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return blocks.reshape(*batch, channels * r * r, height // r, width // r)
