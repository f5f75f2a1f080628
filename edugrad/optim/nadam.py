"""NAdam and RAdam: two repairs of Adam's momentum and of its first steps.

Layer: nn/optim (top). Imports edugrad.optim.optimizer; never NumPy.

    NAdam   Nesterov momentum inside Adam (Dozat, 2016): the step looks one momentum ahead,
            with a momentum that warms up over the first few hundred steps
    RAdam   Rectified Adam (Liu et al., 2020): while too few g² have been seen for sqrt(v) to
            be trusted (rho_t <= 5), step with plain momentum SGD; after that, Adam with a
            factor r_t that corrects the variance of the adaptive step size
"""

from __future__ import annotations

import math

from edugrad.optim.optimizer import Optimizer, check_option, update_state


def _check_adam_options(name, lr, betas, eps, weight_decay) -> None:
    check_option(name, "learning rate", lr, 0.0)
    check_option(name, "epsilon", eps, 0.0)
    check_option(name, "beta1", betas[0], 0.0, 1.0, high_open=True)
    check_option(name, "beta2", betas[1], 0.0, 1.0, high_open=True)
    check_option(name, "weight_decay", weight_decay, 0.0)


def _moments(param, grad, state, group):
    """Weight decay (L2 or decoupled), then Adam's two running means; returns the new start."""
    (beta1, beta2), lr, weight_decay = group["betas"], group["lr"], group["weight_decay"]
    start = param
    if weight_decay != 0:
        if group["decoupled_weight_decay"]:
            start = param * (1 - lr * weight_decay)
        else:
            grad = grad + param * weight_decay
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    update_state(state, "exp_avg", exp_avg + (grad - exp_avg) * (1 - beta1))
    update_state(state, "exp_avg_sq", exp_avg_sq * beta2 + grad * grad * (1 - beta2))
    return start, grad


class NAdam(Optimizer):
    """torch.optim.NAdam: the same options, the same numbers.

    One difference you can see only at 1e-7: PyTorch keeps the product of the momenta
    (`mu_product`) in a float32 0-d tensor even for float64 parameters; edugrad keeps a Python
    float (a double). The state dict holds it as a number.
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach=None,
                 maximize: bool = False) -> None:
        _check_adam_options("NAdam", lr, betas, eps, weight_decay)
        check_option("NAdam", "momentum_decay", momentum_decay, 0.0)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group) -> None:
        # mu_t = b1 (1 - 0.96^(t psi) / 2)              the momentum warms up (psi: momentum_decay)
        # m, v as in Adam;   denom = sqrt(v / (1 - b2^t)) + eps
        # p <- p - lr (1 - mu_t) / (1 - prod_{i<=t} mu_i) g / denom
        #        - lr mu_{t+1} / (1 - prod_{i<=t+1} mu_i) m / denom      (Nesterov: one ahead)
        lr, (beta1, beta2), psi = group["lr"], group["betas"], group["momentum_decay"]
        if not state:
            state["step"] = 0
            state["mu_product"] = 1.0
            state["exp_avg"] = param.new_zeros(param.shape)
            state["exp_avg_sq"] = param.new_zeros(param.shape)
        state["step"] = step = state["step"] + 1
        start, grad = _moments(param, grad, state, group)
        mu = beta1 * (1 - 0.5 * 0.96 ** (step * psi))
        mu_next = beta1 * (1 - 0.5 * 0.96 ** ((step + 1) * psi))
        state["mu_product"] = mu_product = float(state["mu_product"]) * mu
        denom = (state["exp_avg_sq"] / (1 - beta2 ** step)).sqrt() + group["eps"]
        param.data = (start - grad / denom * (lr * (1 - mu) / (1 - mu_product))
                      - state["exp_avg"] / denom * (lr * mu_next / (1 - mu_product * mu_next)))


class RAdam(Optimizer):
    """torch.optim.RAdam: the same options, the same numbers."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False, *,
                 foreach=None, maximize: bool = False) -> None:
        _check_adam_options("RAdam", lr, betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group) -> None:
        # rho_inf = 2 / (1 - b2) - 1;   rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
        # rho_t <= 5:  p <- p - lr m / (1 - b1^t)                     (SGD with momentum)
        # rho_t > 5:   p <- p - lr m / (1 - b1^t) * r_t sqrt(1 - b2^t) / (sqrt(v) + eps)
        #              r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        lr, (beta1, beta2) = group["lr"], group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = param.new_zeros(param.shape)
            state["exp_avg_sq"] = param.new_zeros(param.shape)
        state["step"] = step = state["step"] + 1
        start, _ = _moments(param, grad, state, group)
        correction1, correction2 = 1 - beta1 ** step, 1 - beta2 ** step
        corrected = state["exp_avg"] / correction1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / correction2
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                             / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            adaptive = math.sqrt(correction2) / (state["exp_avg_sq"].sqrt() + group["eps"])
            param.data = start - corrected * lr * adaptive * rect
        else:
            param.data = start - corrected * lr
