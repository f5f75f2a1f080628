"""Loss functions: how far a prediction is from its target, as one number (or one per element).

Layer: nn (top). Imports edugrad.tensor, edugrad.function and edugrad.factories; never NumPy.

Every loss computes one value per element and then applies `reduction`: 'mean' (the default),
'sum', or 'none' (keep them all). The classification losses are written to survive logits of
magnitude 1e4:

    cross_entropy     log_softmax (x - max - log sum exp(x - max): no exp overflows), then the
                      target's column picked out with a Take (a gather), not a one-hot product
    BCE with logits   max(x, 0) - x*y + log(1 + exp(-|x|)): the exp never sees a positive number
"""

from __future__ import annotations

import warnings

from edugrad.factories import arange
from edugrad.function import Take, host_checks_allowed
from edugrad.math import where
from edugrad.nn.functional_extra import pairwise_distance
from edugrad.tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction "
                     f"(use one of {', '.join(_REDUCTIONS)})")


def _check_reduction(reduction: str, op: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction "
                         f"(use one of {', '.join(_REDUCTIONS)})")


def _warn_if_broadcast(input: Tensor, target: Tensor, op: str) -> None:
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"{op}: using a target size {tuple(target.shape)} that is different to the "
                      f"input size {tuple(input.shape)}. This will likely lead to incorrect "
                      "results due to broadcasting. Please ensure they have the same size.",
                      stacklevel=3)


# ---- regression ---------------------------------------------------------------------------------
def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """(input - target)^2."""
    _warn_if_broadcast(input, target, "mse_loss")
    difference = input - target
    return _reduce(difference * difference, reduction, "mse_loss")


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """|input - target|."""
    _warn_if_broadcast(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction, "l1_loss")


# ---- classification with class indices ----------------------------------------------------------
def _target_log_probs(log_probs: Tensor, target: Tensor, weight: Tensor | None,
                      ignore_index: int, op: str):
    """log_probs (N, C, *) and class indices (N, *) -> the log-probability of each target (N, *)
    and each element's weight: weight[target], 0 where target == ignore_index (None when all
    weights are 1), and the 0/1 mask of targets that are not ignored (None when none is)."""
    if target.dtype.is_floating_point or target.dtype.name == "bool":
        raise TypeError(f"{op}: expected class indices of an integer dtype, got "
                        f"{target.dtype.name} (use .long(), or float probabilities with "
                        "cross_entropy)")
    classes = log_probs.shape[1]
    expected = (log_probs.shape[0],) + tuple(log_probs.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"{op}: expected target of shape {expected} for input of shape "
                         f"{tuple(log_probs.shape)}, got {tuple(target.shape)}")
    target = target.long()
    ignored = None
    if target.numel() and not host_checks_allowed(target):
        # on a GPU or under edugrad.jit, reading the targets would copy them to the host on
        # every step: mask unconditionally, and leave the range unchecked
        ignored = target == ignore_index
        target = target.where(~ignored, 0)
    elif target.numel():
        values = target.detach().numpy()  # the targets on the host, to check their range
        if (values == ignore_index).any():  # pick class 0 where the target is ignored
            ignored = target == ignore_index
            target = target.where(~ignored, 0)
            values = target.detach().numpy()
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= classes:
            raise IndexError(f"{op}: target {low if low < 0 else high} is out of bounds for "
                             f"{classes} classes")
    if log_probs.ndim > 2:  # (N, C, d1, ...) -> (N*d1*..., C): one row per prediction
        order = (0,) + tuple(range(2, log_probs.ndim)) + (1,)
        log_probs = log_probs.permute(*order).reshape(-1, classes)
    rows = log_probs.shape[0]  # row r's target sits at r * classes + target[r] of the flat view
    flat_index = arange(0, rows * classes, classes, device=target.device) + target.reshape(-1)
    picked = Take.apply(log_probs.reshape(-1), flat_index, axis=0).reshape(target.shape)
    weights = None if weight is None else Take.apply(weight, target, axis=0)
    kept = None if ignored is None else (~ignored).to(picked.dtype)
    if kept is not None:
        weights = kept if weights is None else weights * kept
    return picked, weights, kept


def _weighted_reduce(losses: Tensor, weights: Tensor | None, reduction: str, op: str) -> Tensor:
    """'mean' divides by the total weight (the count of non-ignored targets without weights)."""
    if reduction == "mean" and weights is not None:
        return losses.sum() / weights.sum()
    return _reduce(losses, reduction, op)


def _unbatched(input: Tensor, target: Tensor):
    """An unbatched input (C,) becomes a batch of one (and its target too)."""
    if input.ndim == 1:
        return input.unsqueeze(0), target.unsqueeze(0), True
    return input, target, False


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """-input[n, target[n]] (times weight[target[n]]): input holds log-probabilities (N, C, *)."""
    _check_reduction(reduction, "nll_loss")
    input, target, unbatched = _unbatched(input, target)
    picked, weights, _ = _target_log_probs(input, target, weight, ignore_index, "nll_loss")
    losses = -picked if weights is None else -picked * weights
    output = _weighted_reduce(losses, weights, reduction, "nll_loss")
    return output.squeeze(0) if unbatched and reduction == "none" else output


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """-log softmax(input)[target]: logits (N, C, *) and class indices (N, *), or class
    probabilities of input's shape. label_smoothing=e mixes the one-hot target with the
    uniform distribution: (1 - e) * nll + e * (mean over classes of -log p)."""
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    input, target, unbatched = _unbatched(input, target)
    log_probs = input.log_softmax(1)
    if target.dtype.is_floating_point:
        output = _soft_cross_entropy(log_probs, target, weight, reduction, label_smoothing)
    else:
        picked, weights, kept = _target_log_probs(log_probs, target, weight, ignore_index,
                                                  "cross_entropy")
        losses = -picked if weights is None else -picked * weights
        output = _weighted_reduce(losses, weights, reduction, "cross_entropy")
        if label_smoothing > 0:  # the uniform part: -sum_c weight_c log p_c, ignored targets 0
            weighted = log_probs if weight is None else log_probs * _per_class(weight, log_probs)
            uniform = -weighted.sum(1) if kept is None else -weighted.sum(1) * kept
            uniform = _weighted_reduce(uniform, weights, reduction, "cross_entropy")
            output = output * (1 - label_smoothing) + uniform * (label_smoothing / input.shape[1])
    return output.squeeze(0) if unbatched and reduction == "none" else output


def _per_class(weight: Tensor, like: Tensor) -> Tensor:
    """A (C,) weight shaped to broadcast along dim 1 of `like` (N, C, *)."""
    return weight.reshape(weight.shape[0], *([1] * (like.ndim - 2)))


def _soft_cross_entropy(log_probs: Tensor, target: Tensor, weight: Tensor | None,
                        reduction: str, label_smoothing: float) -> Tensor:
    if tuple(target.shape) != tuple(log_probs.shape):
        raise ValueError(f"cross_entropy: probability targets must have the input's shape "
                         f"{tuple(log_probs.shape)}, got {tuple(target.shape)}")
    classes = log_probs.shape[1]
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    products = log_probs * target
    if weight is not None:
        products = products * _per_class(weight, log_probs)
    return _reduce(-products.sum(1), reduction, "cross_entropy")


# ---- binary classification ---------------------------------------------------------------------
def _check_same_shape(input: Tensor, target: Tensor, op: str) -> None:
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: using a target size {tuple(target.shape)} that is different to "
                         f"the input size {tuple(input.shape)} is not supported; please ensure "
                         "they have the same size")


def _clamped_log(x: Tensor) -> Tensor:
    """log x clamped at -100 as in PyTorch. Clamping x first (at e^-100) keeps the gradient at
    x = 0 finite: log's backward there would be 0/0."""
    return x.clamp(min=3.720075976020836e-44).log().clamp(min=-100)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) for probabilities p; each log is clamped at -100, as in
    PyTorch, so p = 0 or 1 gives a finite loss (and a zero gradient through the clamp)."""
    _check_same_shape(input, target, "binary_cross_entropy")
    if input.numel() and (input.detach().amin().item() < 0 or input.detach().amax().item() > 1):
        raise RuntimeError("binary_cross_entropy: all elements of input should be between 0 "
                           "and 1 (use binary_cross_entropy_with_logits for logits)")
    losses = -(target * _clamped_log(input) + (1 - target) * _clamped_log(1 - input))
    if weight is not None:
        losses = losses * weight
    return _reduce(losses, reduction, "binary_cross_entropy")


def _softplus(x: Tensor) -> Tensor:
    """log(1 + e^x) without overflow: max(x, 0) + log(1 + e^-|x|)."""
    return x.maximum(0) + ((-x.abs()).exp() + 1).log()


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """BCE of sigmoid(input), computed from the logits: (1 - y) x + softplus(-x), which is
    -(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))). pos_weight p scales the positive term:
    (1 - y) x + (1 + (p - 1) y) softplus(-x)."""
    _check_same_shape(input, target, "binary_cross_entropy_with_logits")
    if pos_weight is None:
        losses = (1 - target) * input + _softplus(-input)
    else:
        losses = (1 - target) * input + (1 + (pos_weight - 1) * target) * _softplus(-input)
    if weight is not None:
        losses = losses * weight
    return _reduce(losses, reduction, "binary_cross_entropy_with_logits")


# ---- robust regression, distributions, ranking --------------------------------------------------
def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (d = input - target): L1 with
    its corner rounded off; beta = 0 is L1."""
    if beta < 0:
        raise RuntimeError(f"smooth_l1_loss does not support negative values for beta, got {beta}")
    _warn_if_broadcast(input, target, "smooth_l1_loss")
    distance = (input - target).abs()
    if beta == 0:
        return _reduce(distance, reduction, "smooth_l1_loss")
    losses = where(distance < beta, distance * distance * (0.5 / beta), distance - 0.5 * beta)
    return _reduce(losses, reduction, "smooth_l1_loss")


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean",
               delta: float = 1.0, weight: Tensor | None = None) -> Tensor:
    """0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere: smooth_l1 times delta."""
    if delta <= 0:
        raise RuntimeError(f"huber_loss does not support non-positive values for delta, got "
                           f"{delta}")
    _warn_if_broadcast(input, target, "huber_loss")
    distance = (input - target).abs()
    losses = where(distance < delta, distance * distance * 0.5, (distance - 0.5 * delta) * delta)
    if weight is not None:
        losses = losses * weight
    return _reduce(losses, reduction, "huber_loss")


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL(target || model) summed pointwise: target * (log target - input), input being
    log-probabilities (log_target: target is too). 0 log 0 counts as 0. 'batchmean' divides
    the sum by the batch size, which is the true KL divergence; 'mean' divides by every element
    (PyTorch warns about it)."""
    if log_target:
        losses = target.exp() * (target - input)
    else:  # xlogy: 0 where target is 0, and the log reads 1 there so its gradient stays finite
        positive = target > 0
        safe = where(positive, target, target.new_ones(()))
        losses = where(positive, target * safe.log(), target * 0) - target * input
    if reduction == "batchmean":
        total = losses.sum()
        return total / input.shape[0] if input.ndim else total
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.'mean' will be changed to behave the same as "
                      "'batchmean' in the next major release.", stacklevel=2)
    return _reduce(losses, reduction, "kl_div")


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                        reduction: str = "mean") -> Tensor:
    """max(0, -target * (input1 - input2) + margin), target +1 (input1 should rank higher)
    or -1."""
    if not (input1.ndim == input2.ndim == target.ndim):
        raise RuntimeError(f"margin_ranking_loss: All input tensors should have same dimension "
                           f"but got sizes: input1: {tuple(input1.shape)}, input2: "
                           f"{tuple(input2.shape)}, target: {tuple(target.shape)} ")
    losses = (-target * (input1 - input2) + margin).clamp(min=0)
    return _reduce(losses, reduction, "margin_ranking_loss")


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0,
                        p: float = 2, eps: float = 1e-6, swap: bool = False,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """max(d(a, p) - d(a, n) + margin, 0) with d the pairwise p-norm distance; swap uses
    d(p, n) instead of d(a, n) when it is smaller (the harder negative)."""
    if not (anchor.ndim == positive.ndim == negative.ndim) or anchor.ndim not in (1, 2):
        raise RuntimeError(f"triplet_margin_loss: The anchor, positive, and negative tensors "
                           f"are expected to have the same number of dimensions (1 or 2), but "
                           f"got: anchor {tuple(anchor.shape)}, positive {tuple(positive.shape)}"
                           f", and negative {tuple(negative.shape)}")
    if margin <= 0:
        raise ValueError(f"triplet_margin_loss: expected margin to be greater than 0, got "
                         f"{margin} instead")
    to_positive = pairwise_distance(anchor, positive, p, eps)
    to_negative = pairwise_distance(anchor, negative, p, eps)
    if swap:
        to_negative = to_negative.minimum(pairwise_distance(positive, negative, p, eps))
    losses = (to_positive - to_negative + margin).clamp(min=0)
    return _reduce(losses, reduction, "triplet_margin_loss")
