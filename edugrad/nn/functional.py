"""edugrad.nn.functional ("F"): every layer, activation and loss as a plain function.

Layer: nn (top). Imports the Tensor layer (tensor, math, factories, autograd) and
edugrad.function; never NumPy.

The functions here are compositions of Tensor operations, so their gradients are right by
construction and need no code of their own. Where a Function with its own derivative is
used instead, it says why: `Erf` (behind GELU) here, because no primitive computes it, and
ColumnsProduct and WindowMax (convolution, max pooling) in functional_conv.py; `linear` is the
core's Linear Function. Losses are in functional_loss.py; all are importable from here:

    import edugrad.nn.functional as F
    loss = F.cross_entropy(F.linear(x, weight, bias), target)
"""

from __future__ import annotations

import math
import warnings

from edugrad import dtypes
from edugrad.autograd import no_grad
from edugrad.data import TensorData
from edugrad.factories import arange, rand
from edugrad.function import Function, Take
from edugrad.function import Linear as LinearFunction  # x @ W.T + b as one op
from edugrad.math import where
from edugrad.nn.functional_conv import _check_like_input, avg_pool2d, conv2d, max_pool2d
from edugrad.nn.functional_loss import (
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, l1_loss, mse_loss,
    nll_loss,
)
from edugrad.tensor import Tensor

__all__ = [
    "relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh", "softmax", "log_softmax",
    "erf", "linear", "dropout", "embedding", "one_hot", "pad", "batch_norm", "layer_norm",
    "conv2d", "max_pool2d", "avg_pool2d", "mse_loss", "l1_loss", "nll_loss", "cross_entropy",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "scaled_dot_product_attention",
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
        return input * 0.5 * (1 + erf(input * (1 / math.sqrt(2))))
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
# Rational approximations from Cephes (S. L. Moshier, ndtr.c): erf(x) = x T(x^2) / U(x^2) for
# |x| < 1 and erfc(x) = exp(-x^2) P(x) / Q(x) for 1 <= |x| <= 8; relative error ~1e-15 in float64.
# Coefficients from the highest power down.
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4)
_ERF_U = (1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_ERFC_Q = (1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)


# float32: one rational function for all x, clamped to |x| <= 4 (beyond, erf is +-1 in float32);
# odd numerator, even denominator, error under 4e-7 (Eigen's and TensorFlow's fast erf). A third
# of the operations of the two float64 branches, which GELU feels in every transformer step.
_ERF32_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
            -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
            -1.60960333262415e-02)
_ERF32_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
            -7.37332916720468e-03, -1.42647390514189e-02)


def _polynomial(x, coefficients):
    """c0 x^n + c1 x^(n-1) + ... + cn by Horner's rule, on TensorData."""
    def constant(value):
        return TensorData.constant(value, x.shape, x.dtype, x.backend)

    result = constant(coefficients[0])
    for c in coefficients[1:]:
        result = result.mul(x).add(constant(c))
    return result


class Erf(Function):
    formula = "d erf(x)/dx = 2/sqrt(pi) exp(-x^2)"

    def forward(self, x):
        if x.dtype is dtypes.float32:
            low = TensorData.constant(-4.0, x.shape, x.dtype, x.backend)
            clamped = x.maximum(low).neg().maximum(low).neg()  # -max(-max(x, -4), -4)
            square = clamped.mul(clamped)
            return clamped.mul(_polynomial(square, _ERF32_P)).div(_polynomial(square, _ERF32_Q))
        one, magnitude = x.full_like(1), x.maximum(x.neg())
        square = x.mul(x)
        near = x.mul(_polynomial(square, _ERF_T)).div(_polynomial(square, _ERF_U))
        # |x| capped at 8 (erfc(8) < 1e-28, so erf is +-1 in any float) keeps P and Q finite
        z = magnitude.neg().maximum(x.full_like(-8)).neg()
        erfc = z.mul(z).neg().exp().mul(_polynomial(z, _ERFC_P)).div(_polynomial(z, _ERFC_Q))
        far = one.sub(erfc)
        far = x.cmplt(x.full_like(0)).where(far.neg(), far)  # erf is odd
        return magnitude.cmplt(one).where(near, far)

    def backward(self, grad_output):
        (x,) = self.inputs
        return grad_output * (-(x * x)).exp() * (2 / math.sqrt(math.pi))


def erf(input: Tensor) -> Tensor:
    """The error function, 2/sqrt(pi) times the integral of exp(-t^2) from 0 to x."""
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
        return linear(flat, weight, bias).reshape(*input.shape[:-1], weight.shape[0])
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
    if index.numel():
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
    crop."""
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding length must be even and at most {2 * input.ndim} for "
                         f"an input of shape {tuple(input.shape)}, got {len(pad)}")
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not implemented, only 'constant'")
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
                batch_mean = mean.detach().reshape(channels)
                running_mean.copy_(running_mean * (1 - momentum) + batch_mean * momentum)
                unbiased = var.reshape(channels) * (count / (count - 1))
                running_var.copy_(running_var * (1 - momentum) + unbiased * momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are needed when "
                             "training=False")
        centred = input - running_mean.reshape(shape)
        var = running_var.reshape(shape)
    output = centred * (var + eps).rsqrt()
    if weight is not None:
        output = output * weight.reshape(shape)
    if bias is not None:
        output = output + bias.reshape(shape)
    return output


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
    axes = tuple(range(input.ndim - count, input.ndim))
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
    scores = (query @ key.transpose(-2, -1)) * scale
    if is_causal:
        attn_mask = causal_mask(length, source, device=query.device)
    if attn_mask is not None:
        if attn_mask.dtype is dtypes.bool_:
            scores = where(attn_mask, scores, -math.inf)
        else:
            scores = scores + attn_mask
    weights = scores.softmax(-1)
    if dropout_p > 0:
        weights = dropout(weights, dropout_p, training=True)
    return weights @ value
