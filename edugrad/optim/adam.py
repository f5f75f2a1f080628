"""Adam and AdamW: per-parameter step sizes from running averages of g and g².

Layer: nn/optim (top). Imports edugrad.optim.optimizer; never NumPy.

AdamW is Adam with the weight decay taken out of the gradient (Loshchilov & Hutter, 2019): the
parameter shrinks by a factor (1 - lr wd) each step, instead of wd p being added to g, where
Adam's normalisation would scale it down for parameters with large gradients.
"""

from __future__ import annotations

import math

from edugrad.optim.optimizer import Optimizer, check_option, update_state
from edugrad.tensor import Tensor


def _log(beta: float) -> float:
    return math.log(beta) if beta > 0 else -math.inf  # 0 ** t is 0 for every step t >= 1


class Adam(Optimizer):
    """torch.optim.Adam: the same options, the same numbers.

    >>> opt = Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), amsgrad=False)
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 capturable: bool = False, decoupled_weight_decay: bool = False) -> None:
        name = type(self).__name__
        check_option(name, "learning rate", lr, 0.0)
        check_option(name, "epsilon", eps, 0.0)
        check_option(name, "beta1", betas[0], 0.0, 1.0, high_open=True)
        check_option(name, "beta2", betas[1], 0.0, 1.0, high_open=True)
        check_option(name, "weight_decay", weight_decay, 0.0)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, capturable=capturable,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group) -> None:
        # Adam (Kingma & Ba, 2015), at step t:
        #   g <- g + wd p                  (Adam's L2 decay)   or   p <- p (1 - lr wd)   (AdamW)
        #   m <- b1 m + (1 - b1) g         first moment: a running mean of g
        #   v <- b2 v + (1 - b2) g²        second moment: a running mean of g²
        #   v_max <- max(v_max, v)         AMSGrad only; v_max then stands in for v below
        #   p <- p - lr (m / c1) / (sqrt(v / c2) + eps)      with c1 = 1 - b1^t, c2 = 1 - b2^t
        # The last line is computed as p - (lr sqrt(c2) / c1) m / (sqrt(v) + eps sqrt(c2)): both
        # bias corrections fold into two Python floats, two tensor ops fewer per parameter.
        # The running means are written m + (1 - b1)(g - m): one op by a scalar, not two.
        # capturable=True (PyTorch's name) keeps t in a 0-d tensor and computes c1 and c2 with
        # tensor ops: a few more ops per parameter, but no Python number that changes from
        # step to step, which edugrad.jit needs to replay the step (a CUDA graph too).
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        if not state:
            state["step"] = param.new_zeros(()) if group.get("capturable") else 0
            state["exp_avg"] = param.new_zeros(param.shape)
            state["exp_avg_sq"] = param.new_zeros(param.shape)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = param.new_zeros(param.shape)
        start = param
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                start = param * (1 - lr * weight_decay)
            else:
                grad = grad + param * weight_decay
        exp_avg = update_state(state, "exp_avg",
                               state["exp_avg"] + (grad - state["exp_avg"]) * (1 - beta1))
        exp_avg_sq = update_state(state, "exp_avg_sq", state["exp_avg_sq"]
                                  + (grad * grad - state["exp_avg_sq"]) * (1 - beta2))
        if group["amsgrad"]:
            exp_avg_sq = update_state(state, "max_exp_avg_sq",
                                      state["max_exp_avg_sq"].maximum(exp_avg_sq))
        if isinstance(state["step"], Tensor):  # capturable: the step count is a tensor
            step = update_state(state, "step", state["step"] + 1)
            # b^t as exp(t log b): tensor ** tensor would read the largest t on the host
            correction1 = 1 - (step * _log(beta1)).exp()
            correction2_sqrt = (1 - (step * _log(beta2)).exp()).sqrt()
        else:
            state["step"] = step = state["step"] + 1
            correction1, correction2_sqrt = 1 - beta1 ** step, math.sqrt(1 - beta2 ** step)
        step_size = lr * correction2_sqrt / correction1
        param.data = start - exp_avg / (exp_avg_sq.sqrt() + group["eps"] * correction2_sqrt) \
            * step_size


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay (default 0.01)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, capturable: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         capturable=capturable, decoupled_weight_decay=True)
