"""More of nn.functional: bounded and smooth activations, PReLU, vector norms and distances,
group and instance normalization, channel dropout (1-D and 2-D).

Layer: nn (top). Imports the Tensor layer (tensor, math, factories, autograd); never NumPy.
All are compositions of Tensor operations, so their gradients need no code of their own;
nn.functional re-exports them.
"""

from __future__ import annotations

import warnings

from edugrad.autograd import no_grad
from edugrad.factories import rand
from edugrad.math import broadcast_shape, where
from edugrad.tensor import Tensor


# ---- activations -------------------------------------------------------------------------------
def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """x clamped to [min_val, max_val]; the gradient is 1 strictly inside, 0 outside."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val "
                         f"({max_val})")
    return input.clamp(min_val, max_val)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (where the two agree
    to float precision). The exp reads a clamped copy: where() sends a zero gradient into the
    branch it did not pick, and zero times exp(large) = inf would be nan."""
    scaled = input * beta
    smooth = (scaled.clamp(max=threshold).exp() + 1).log() / beta
    return where(scaled > threshold, input, smooth)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    return input * softplus(input).tanh()


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x for x > 0, weight * x otherwise; a weight of n > 1 entries is one slope per channel
    (dim 1)."""
    if weight.ndim != 1:
        raise RuntimeError(f"prelu: weight must be 1D, got shape {tuple(weight.shape)}")
    slopes = weight
    if weight.shape[0] != 1:
        channels = input.shape[1] if input.ndim >= 2 else 1  # PyTorch: no channel dim below 2D
        if channels != weight.shape[0]:
            raise RuntimeError(f"prelu: mismatch of parameter numbers and input channel size. "
                               f"Found parameter numbers = {weight.shape[0]} and channel size = "
                               f"{channels} (input of shape {tuple(input.shape)})")
        if input.ndim >= 2:
            slopes = weight.reshape((1, -1) + (1,) * (input.ndim - 2))
    return where(input > 0, input, slopes * input)


# ---- norms and distances -----------------------------------------------------------------------
def _vector_norm(input: Tensor, p: float, dim, keepdim: bool) -> Tensor:
    if p == 2:
        return (input * input).sum(dim, keepdim=keepdim).sqrt()
    if p == 1:
        return input.abs().sum(dim, keepdim=keepdim)
    if p == float("inf"):
        return input.abs().amax(dim, keepdim=keepdim)
    return (input.abs() ** p).sum(dim, keepdim=keepdim) ** (1 / p)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out=None) -> Tensor:
    """input / max(||input||_p, eps) along dim: unit vectors (zero vectors stay zero)."""
    if out is not None:
        raise NotImplementedError("normalize: out= is not supported")
    return input / _vector_norm(input, p, dim, True).clamp(min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1/||x1|| * x2/||x2||) along dim, each norm at least eps (PyTorch's formula, which
    divides before multiplying so that large vectors do not overflow)."""
    shape = broadcast_shape(tuple(x1.shape), tuple(x2.shape), "cosine_similarity")
    x1, x2 = x1.expand(*shape), x2.expand(*shape)  # first: a size-1 dim is a vector's length
    unit1 = x1 / _vector_norm(x1, 2, dim, True).clamp(min=eps)
    unit2 = x2 / _vector_norm(x2, 2, dim, True).clamp(min=eps)
    return (unit1 * unit2).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p over the last dim (eps keeps the gradient finite at x1 == x2)."""
    ndim = max(x1.ndim, x2.ndim)
    if ndim == 0:
        raise RuntimeError("pairwise_distance: inputs must have at least one dim")
    return _vector_norm(x1 - x2 + eps, p, -1, keepdim)


# ---- normalization -----------------------------------------------------------------------------
def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize each sample's channels in num_groups groups (mean and biased variance over
    the group's channels and all spatial positions), then scale and shift per channel."""
    if input.ndim < 2:
        raise RuntimeError(f"group_norm: expected at least 2D input (N, C, ...), got shape "
                           f"{tuple(input.shape)}")
    n, channels = input.shape[:2]
    if channels % num_groups:
        raise RuntimeError(f"group_norm: expected number of channels in input to be divisible "
                           f"by num_groups, but got input of shape {tuple(input.shape)} and "
                           f"num_groups={num_groups}")
    grouped = input.reshape(n, num_groups, -1)
    centred = grouped - grouped.mean(-1, keepdim=True)
    output = centred * ((centred * centred).mean(-1, keepdim=True) + eps).rsqrt()
    output = output.reshape(input.shape)
    shape = (1, channels) + (1,) * (input.ndim - 2)
    if weight is not None:
        output = output * weight.reshape(shape)
    if bias is not None:
        output = output + bias.reshape(shape)
    return output


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel of each sample over its spatial positions. With running stats,
    training moves them toward the batch average of the per-instance mean and unbiased
    variance; use_input_stats=False normalizes with the running stats instead."""
    if input.ndim < 3:
        raise ValueError(f"instance_norm: expected at least 3D input (N, C, ...), got shape "
                         f"{tuple(input.shape)}")
    channels = input.shape[1]
    shape = (1, channels) + (1,) * (input.ndim - 2)
    axes = tuple(range(2, input.ndim))
    if use_input_stats:
        count = 1
        for size in input.shape[2:]:
            count *= size
        if count <= 1:
            raise ValueError(f"Expected more than 1 spatial element when training, got input "
                             f"size {tuple(input.shape)}")
        mean = input.mean(axes, keepdim=True)
        centred = input - mean
        var = (centred * centred).mean(axes, keepdim=True)
        if running_mean is not None and running_var is not None:
            with no_grad():
                batch_mean = mean.detach().reshape(-1, channels).mean(0)
                unbiased = var.detach().reshape(-1, channels).mean(0) * (count / (count - 1))
                update_running_stats(running_mean, running_var, batch_mean, unbiased, momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: running_mean and running_var are needed when "
                             "use_input_stats=False")
        centred = input - running_mean.reshape(shape)
        var = running_var.reshape(shape)
    return scale_and_shift(centred, var, eps, weight, bias, shape)


def update_running_stats(running_mean, running_var, batch_mean, unbiased, momentum) -> None:
    """running = (1 - momentum) running + momentum batch, in place (call it under no_grad)."""
    running_mean.copy_(running_mean * (1 - momentum) + batch_mean * momentum)
    running_var.copy_(running_var * (1 - momentum) + unbiased * momentum)


def scale_and_shift(centred, var, eps, weight, bias, shape):
    """centred / sqrt(var + eps), then the per-channel weight and bias, each reshaped to
    `shape`: the last step of batch and instance norm."""
    output = centred * (var + eps).rsqrt()
    if weight is not None:
        output = output * weight.reshape(shape)
    if bias is not None:
        output = output + bias.reshape(shape)
    return output


# ---- channel dropout -----------------------------------------------------------------------------
def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels (every (n, c) feature map) with probability p, scale the rest by
    1/(1-p). A 3D input is taken as (N, C, L), as PyTorch does (with its warning)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is "
                      "deprecated and will result in an error in a future release. To retain "
                      "the behavior and silence this warning, please use dropout instead. Note "
                      "that dropout2d exists to provide channel-wise dropout on inputs with 2 "
                      "spatial dimensions, a channel dimension, and an optional batch dimension "
                      "(i.e. 3D or 4D inputs).", stacklevel=3)
    if input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
                      "1D dropout behavior is desired - input is interpreted as shape (N, C, L), "
                      "where C is the channel dim. This behavior will change in a future release "
                      "to interpret the input as one without a batch dimension, i.e. shape "
                      "(C, H, W). To maintain the 1D channel-wise dropout behavior, please "
                      "switch to using dropout1d instead.", stacklevel=3)
    return _channel_dropout(input, p, training)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of a (N, C, L) or (C, L) input with probability p."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.ndim not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D "
                           f"input of shape {tuple(input.shape)}. Note that dropout1d exists to "
                           "provide channel-wise dropout on inputs with 1 spatial dimension, a "
                           "channel dimension, and an optional batch dimension (i.e. 2D or 3D "
                           "inputs).")
    if input.ndim == 2:
        return dropout1d(input.unsqueeze(0), p, training).squeeze(0)
    return _channel_dropout(input, p, training)


def _channel_dropout(input: Tensor, p: float, training: bool) -> Tensor:
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0
    if input.ndim < 2:  # PyTorch's check, made where it makes it: only when something is drawn
        raise RuntimeError(f"Feature dropout requires at least 2 dimensions in the input, got "
                           f"shape {tuple(input.shape)}")
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    keep = rand(*shape, dtype=input.dtype, device=input.device) >= p
    return input * (keep.to(input.dtype) * (1 / (1 - p)))
