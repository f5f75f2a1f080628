"""edugrad.nn.functional ("F"): every layer, activation and loss as a plain function.

Layer: nn (top). Imports the Tensor layer (tensor, math, factories, autograd) and
edugrad.function; never NumPy.

The functions here are compositions of Tensor operations, so their gradients are right by
construction and need no code of their own. Where a Function with its own derivative is used
instead (each in edugrad/function.py), it says why: Erf, because no primitive computes it;
Gelu, LayerNorm and ScaledDotProductAttention, whose derivatives as one expression save
passes over a transformer's activations; ColumnsProduct and WindowMax for convolution and max
pooling (functional_conv.py); Linear for `linear`. Convolution and pooling are in
functional_conv.py, losses in functional_loss.py, the bounded activations, norms, distances
and group/instance norm in functional_extra.py, interpolate and pad's
reflect/replicate/circular modes (Take picks the rows) in functional_resample.py; all are
importable from here:

    import edugrad.nn.functional as F
    loss = F.cross_entropy(F.linear(x, weight, bias), target)
"""

from __future__ import annotations

import math
import warnings

from edugrad import dtypes
from edugrad.autograd import no_grad
from edugrad.factories import arange, rand
from edugrad.function import Erf, Gelu, Reshape, Take, host_checks_allowed
from edugrad.function import LayerNorm as LayerNormFunction  # normalize, scale, shift as one op
from edugrad.function import Linear as LinearFunction  # x @ W.T + b as one op
from edugrad.function import ScaledDotProductAttention as AttentionFunction  # q k^T, softmax, v
from edugrad.math import where
from edugrad.nn.functional_conv import (
    _check_like_input, adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d,
    adaptive_max_pool2d, avg_pool1d, avg_pool2d, conv1d, conv2d, conv_transpose1d,
    conv_transpose2d, lp_pool1d, lp_pool2d, max_pool1d, max_pool2d, max_unpool1d, max_unpool2d,
)
from edugrad.nn.functional_extra import (
    cosine_similarity, dropout1d, dropout2d, group_norm, hardtanh, instance_norm, mish, normalize,
    pairwise_distance, prelu, relu6, scale_and_shift, softplus, update_running_stats,
)
from edugrad.nn.functional_loss import (
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div,
    l1_loss, margin_ranking_loss, mse_loss, nll_loss, smooth_l1_loss, triplet_margin_loss,
)
from edugrad.nn.functional_resample import (
    interpolate, pad_by_mode, pixel_shuffle, pixel_unshuffle,
)
from edugrad.tensor import Tensor

__all__ = [
    "relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh", "softmax", "log_softmax",
    "erf", "linear", "dropout", "embedding", "one_hot", "pad", "batch_norm", "layer_norm",
    "conv2d", "max_pool2d", "avg_pool2d", "mse_loss", "l1_loss", "nll_loss", "cross_entropy",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "scaled_dot_product_attention",
    "conv1d", "conv_transpose2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "hardtanh", "relu6", "softplus", "mish",
    "prelu", "normalize", "cosine_similarity", "pairwise_distance", "group_norm",
    "instance_norm", "dropout2d", "interpolate", "upsample", "smooth_l1_loss", "huber_loss",
    "kl_div", "margin_ranking_loss", "triplet_margin_loss", "max_pool1d", "avg_pool1d",
    "conv_transpose1d", "dropout1d", "upsample_nearest", "upsample_bilinear",
    "pixel_shuffle", "pixel_unshuffle",
    "max_unpool1d", "max_unpool2d", "lp_pool1d", "lp_pool2d",
]

# `inplace=` is accepted everywhere PyTorch has it; edugrad always returns a new tensor.


# ---- activations -------------------------------------------------------------------------------
def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return input.relu()


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return where(input > 0, input, input * negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    # exp of the clamped input: where() sends a zero gradient into the branch it did not pick,
    # and zero times exp(large) = inf would be nan
    return where(input > 0, input, (input.clamp(max=0).exp() - 1) * alpha)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF; approximate='tanh' uses the tanh formula."""
    if approximate == "none":
        return Gelu.apply(input if input.dtype.is_floating_point else input.float())
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * math.sqrt(2 / math.pi)
        return input * 0.5 * (1 + inner.tanh())
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return input * input.sigmoid()


def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


def softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    input = input if dtype is None else input.to(dtype)
    return input.softmax(_softmax_dim(input, dim, "softmax"))


def log_softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    input = input if dtype is None else input.to(dtype)
    return input.log_softmax(_softmax_dim(input, dim, "log_softmax"))


def _softmax_dim(input: Tensor, dim: int | None, op: str) -> int:
    if dim is not None:
        return dim
    warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call "
                  "to include dim=X as an argument.", stacklevel=3)
    return 0 if input.ndim in (0, 1, 3) else 1  # PyTorch's legacy rule


# ---- the error function --------------------------------------------------------------------------
def erf(input: Tensor) -> Tensor:
    """The error function, 2/sqrt(pi) times the integral of exp(-t^2) from 0 to x (the Erf
    Function in edugrad/function.py: rational approximations, evaluated with primitives)."""
    return Erf.apply(input if input.dtype.is_floating_point else input.float())


# ---- linear, dropout, embedding ------------------------------------------------------------------
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias: (*, in_features) -> (*, out_features), one matmul."""
    if input.ndim == 0 or weight.ndim != 2 or input.shape[-1] != weight.shape[1]:
        raise RuntimeError(f"linear: input of shape {tuple(input.shape)} does not end in "
                           f"in_features={weight.shape[-1]} (weight {tuple(weight.shape)})")
    _check_like_input("linear", input, weight, bias)
    if input.ndim != 2:  # (in,) or (B, T, in): one 2-D product, then the leading dims back
        flat = input.reshape(-1, input.shape[-1])
        # a new tensor, not a view of the 2-D product (PyTorch's linear returns no view)
        return Reshape.apply(linear(flat, weight, bias), shape=(*input.shape[:-1], weight.shape[0]))
    if bias is None:  # a constant zero bias: it gets no gradient
        bias = input.new_zeros((weight.shape[0],))
    return LinearFunction.apply(input, weight, bias)  # one op; see edugrad/function.py, Linear


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only), so
    that the expected value is unchanged and evaluation needs no rescaling."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0
    keep = rand(*input.shape, dtype=input.dtype, device=input.device) >= p
    return input * (keep.to(input.dtype) * (1 / (1 - p)))


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm=None) -> Tensor:
    """Row `input[...]` of weight for every index: (*) int -> (*, embedding_dim), by Take."""
    if max_norm is not None:
        raise NotImplementedError("embedding: max_norm is not implemented")
    if input.dtype not in (dtypes.int64, dtypes.int32):
        raise TypeError(f"embedding: indices must be an int64 or int32 tensor, got "
                        f"{input.dtype.name}")
    index = input.long()
    count = weight.shape[0]
    if index.numel() and host_checks_allowed(index):  # not on a GPU, nor under edugrad.jit
        low, high = int(index.amin().item()), int(index.amax().item())
        if low < 0 or high >= count:
            raise IndexError(f"embedding: index {low if low < 0 else high} is out of range for "
                             f"{count} embeddings")
    output = Take.apply(weight, index, axis=0)
    if padding_idx is None:
        return output
    padding_idx = padding_idx % count  # -1 is the last row, as in PyTorch
    # the padding row's lookups read the weight without sending it a gradient
    is_padding = (index == padding_idx).unsqueeze(-1)
    return where(is_padding, output.detach(), output)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """(*) int64 class indices -> (*, num_classes) int64 rows of zeros with a one at the index."""
    if tensor.dtype is not dtypes.int64:
        raise RuntimeError(f"one_hot is only applicable to int64 index tensors, got "
                           f"{tensor.dtype.name}")
    if tensor.numel():
        low, high = int(tensor.amin().item()), int(tensor.amax().item())
        if low < 0:
            raise RuntimeError(f"one_hot: class values must be non-negative, got {low}")
        num_classes = high + 1 if num_classes == -1 else num_classes
        if high >= num_classes:
            raise RuntimeError(f"one_hot: class values must be smaller than num_classes="
                               f"{num_classes}, got {high}")
    elif num_classes == -1:
        raise RuntimeError("one_hot: can not infer the number of classes of an empty tensor")
    classes = arange(num_classes, device=tensor.device)
    return (tensor.unsqueeze(-1) == classes).long()


def pad(input: Tensor, pad: tuple, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad with `value`; `pad` lists (before, after) amounts starting from the LAST dim:
    (left, right) pads the last dim, (left, right, top, bottom) the last two. Negative amounts
    crop. mode 'reflect', 'replicate' and 'circular' fill from the input instead (mirrored,
    the edge repeated, wrapped around; see functional_resample.py)."""
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding length must be even and at most {2 * input.ndim} for "
                         f"an input of shape {tuple(input.shape)}, got {len(pad)}")
    if mode in ("reflect", "replicate", "circular"):
        if value:
            raise ValueError(f'pad: padding mode "{mode}" doesn\'t take in value argument')
        return pad_by_mode(input, tuple(pad), mode)
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not implemented (constant, reflect, "
                                  "replicate, circular are)")
    pairs = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        pairs[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    grow = tuple((max(before, 0), max(after, 0)) for before, after in pairs)
    output = input.pad(grow, value=0 if value is None else value) if any(map(any, grow)) else input
    for dim, (before, after) in enumerate(pairs):
        if before < 0 or after < 0:
            start = -min(before, 0)
            output = output.narrow(dim, start, output.shape[dim] - start + min(after, 0))
    return output


# ---- normalization -----------------------------------------------------------------------------
def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel (dim 1) over the batch and spatial dims.

    Training uses the batch's mean and biased variance, and moves the running estimates toward
    them: running = (1 - momentum) running + momentum batch, with the unbiased variance.
    Evaluation uses the running estimates.
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected at least 2D input (N, C, ...), got shape "
                         f"{tuple(input.shape)}")
    channels = input.shape[1]
    axes = (0,) + tuple(range(2, input.ndim))
    shape = (1, channels) + (1,) * (input.ndim - 2)  # broadcasts a per-channel vector
    if training:
        count = input.numel() // max(channels, 1)
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {tuple(input.shape)}")
        mean = input.mean(axes, keepdim=True)
        centred = input - mean
        var = (centred * centred).mean(axes, keepdim=True)
        if running_mean is not None and running_var is not None:
            with no_grad():
                unbiased = var.reshape(channels) * (count / (count - 1))
                update_running_stats(running_mean, running_var, mean.detach().reshape(channels),
                                     unbiased, momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are needed when "
                             "training=False")
        centred = input - running_mean.reshape(shape)
        var = running_var.reshape(shape)
    return scale_and_shift(centred, var, eps, weight, bias, shape)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the last len(normalized_shape) dims of each sample (biased variance)."""
    normalized_shape = ((normalized_shape,) if isinstance(normalized_shape, int)
                        else tuple(normalized_shape))
    count = len(normalized_shape)
    if tuple(input.shape[input.ndim - count:]) != normalized_shape or count > input.ndim:
        raise RuntimeError(f"layer_norm: expected input with shape [*, "
                           f"{', '.join(map(str, normalized_shape))}], but got input of size "
                           f"{tuple(input.shape)}")
    for name, parameter in (("weight", weight), ("bias", bias)):
        if parameter is not None and tuple(parameter.shape) != normalized_shape:
            raise RuntimeError(f"layer_norm: expected {name} of shape {normalized_shape} (the "
                               f"normalized_shape), got {tuple(parameter.shape)}")
    axes = tuple(range(input.ndim - count, input.ndim))
    affine = () if weight is None or bias is None else (weight, bias)
    if not input.dtype.is_floating_point or any(p.dtype is not input.dtype for p in affine):
        return _layer_norm_composed(input, axes, weight, bias, eps)  # promotes, or raises
    output = LayerNormFunction.apply(input, *affine, axes=axes, eps=eps)
    if not affine and weight is not None:
        output = output * weight
    if not affine and bias is not None:
        output = output + bias
    return output


def _layer_norm_composed(input: Tensor, axes: tuple, weight, bias, eps: float) -> Tensor:
    """What the LayerNorm Function computes, in Tensor ops: the reference it is tested against."""
    centred = input - input.mean(axes, keepdim=True)
    output = centred * ((centred * centred).mean(axes, keepdim=True) + eps).rsqrt()
    if weight is not None:
        output = output * weight
    if bias is not None:
        output = output + bias
    return output


# ---- attention -------------------------------------------------------------------------------------
def causal_mask(query_length: int, key_length: int, device=None):
    """(L, S) bool, True where position i may attend to j: j <= i (top-left aligned, as torch)."""
    rows = arange(query_length, device=device).reshape(query_length, 1)
    cols = arange(key_length, device=device).reshape(1, key_length)
    return cols <= rows


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False):
    """softmax(Q K^T * scale + mask) V over the last two dims; any leading (batch, head) dims.

    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev). `attn_mask` is bool
    (True = attend) or float (added to the scores), broadcast to (..., L, S); `is_causal` masks
    the future instead. `scale` defaults to 1/sqrt(E). `dropout_p` drops attention weights.
    """
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise RuntimeError(f"scaled_dot_product_attention: query, key and value need at least 2 "
                           f"dims, got {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(
            f"scaled_dot_product_attention: query {tuple(query.shape)} and key "
            f"{tuple(key.shape)} must share the last dim, key and value {tuple(value.shape)} "
            "the sequence dim")
    if is_causal and attn_mask is not None:
        raise RuntimeError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        repeats = query.shape[-3] // key.shape[-3]  # grouped-query: each key head serves a group
        key, value = (t.unsqueeze(-3).expand(*t.shape[:-2], repeats, *t.shape[-2:]).flatten(-4, -3)
                      for t in (key, value))
    length, source = query.shape[-2], key.shape[-2]
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    if is_causal:
        attn_mask = causal_mask(length, source, device=query.device)
    if attn_mask is not None and attn_mask.dtype is dtypes.bool_:
        # -inf added where masked, as PyTorch's reference implementation does: WHERE on the
        # mask (often just (L, S)) and an ADD cost less than WHERE on the scores, and the
        # ADD's backward is free
        scores_dtype = dtypes.result_type((query.dtype, query.ndim), (key.dtype, key.ndim))
        attn_mask = where(attn_mask, 0.0, -math.inf).to(scores_dtype)
    if dropout_p == 0 and _one_op_attention(query, key, value, attn_mask):
        bias = () if attn_mask is None else (attn_mask,)  # one op: see edugrad/function.py
        return AttentionFunction.apply(query, key, value, *bias, scale=scale)
    scores = (query @ key.transpose(-2, -1)) * scale
    if attn_mask is not None:
        scores = scores + attn_mask
    weights = scores.softmax(-1)
    if dropout_p > 0:
        weights = dropout(weights, dropout_p, training=True)
    return weights @ value


def _one_op_attention(query, key, value, bias) -> bool:
    """Whether the ScaledDotProductAttention Function takes these: one float dtype, equal
    leading dims (it does not broadcast them), and a bias that broadcasts to the scores."""
    dtype, lead = query.dtype, query.shape[:-2]
    if not dtype.is_floating_point or key.dtype is not dtype or value.dtype is not dtype:
        return False
    if key.shape[:-2] != lead or value.shape[:-2] != lead:
        return False
    if bias is None:
        return True
    scores = (*lead, query.shape[-2], key.shape[-2])
    return bias.dtype is dtype and bias.ndim <= len(scores) and all(
        size in (1, full) for size, full in zip(reversed(bias.shape), reversed(scores)))


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
             align_corners: bool | None = None) -> Tensor:
    """The old name of interpolate (PyTorch deprecates it the same way)."""
    warnings.warn("nn.functional.upsample is deprecated. Use nn.functional.interpolate instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    warnings.warn("nn.functional.upsample_nearest is deprecated. Use nn.functional.interpolate "
                  "instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """interpolate(mode='bilinear', align_corners=True), as PyTorch's deprecated name does."""
    warnings.warn("nn.functional.upsample_bilinear is deprecated. Use nn.functional.interpolate "
                  "instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
