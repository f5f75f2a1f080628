"""Adagrad, Adadelta and Adamax: per-coordinate step sizes from the history of g.

Layer: nn/optim (top). Imports edugrad.optim.optimizer; never NumPy.

    Adagrad    divides by the root of the *sum* of every g² so far: steps only shrink
    Adadelta   a running mean of g² instead of the sum, and the step's own running RMS as lr
    Adamax     Adam with the infinity norm: a decaying max of |g| in place of sqrt(v)
"""

from __future__ import annotations

from edugrad.optim.optimizer import Optimizer, check_option, update_state


class Adagrad(Optimizer):
    """torch.optim.Adagrad: the same options, the same numbers.

    >>> opt = Adagrad(model.parameters(), lr=0.01, lr_decay=1e-4)
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, foreach=None, *, maximize: bool = False) -> None:
        check_option("Adagrad", "learning rate", lr, 0.0)
        check_option("Adagrad", "lr_decay", lr_decay, 0.0)
        check_option("Adagrad", "weight_decay", weight_decay, 0.0)
        check_option("Adagrad", "initial_accumulator_value", initial_accumulator_value, 0.0)
        check_option("Adagrad", "epsilon", eps, 0.0)
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group) -> None:
        # g <- g + wd p                          (L2 weight decay)
        # s <- s + g²                            the sum of every squared gradient so far
        # p <- p - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)
        if not state:
            state["step"] = 0
            state["sum"] = param.new_zeros(param.shape) + group["initial_accumulator_value"]
        state["step"] = step = state["step"] + 1
        if group["weight_decay"] != 0:
            grad = grad + param * group["weight_decay"]
        total = update_state(state, "sum", state["sum"] + grad * grad)
        lr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        param.data = param - grad / (total.sqrt() + group["eps"]) * lr


class Adadelta(Optimizer):
    """torch.optim.Adadelta (Zeiler, 2012): the same options, the same numbers."""

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, foreach=None, *, maximize: bool = False) -> None:
        check_option("Adadelta", "learning rate", lr, 0.0)
        check_option("Adadelta", "rho", rho, 0.0, 1.0)
        check_option("Adadelta", "epsilon", eps, 0.0)
        check_option("Adadelta", "weight_decay", weight_decay, 0.0)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group) -> None:
        # v <- rho v + (1 - rho) g²                      running mean of g²
        # delta <- sqrt(u + eps) / sqrt(v + eps) * g     u: running mean of delta², the units
        # u <- rho u + (1 - rho) delta²                  of a step (Zeiler's "unit correction")
        # p <- p - lr delta
        rho, eps = group["rho"], group["eps"]
        if not state:
            state["step"] = 0
            state["square_avg"] = param.new_zeros(param.shape)
            state["acc_delta"] = param.new_zeros(param.shape)
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + param * group["weight_decay"]
        square_avg = update_state(state, "square_avg",
                                  state["square_avg"] * rho + grad * grad * (1 - rho))
        delta = (state["acc_delta"] + eps).sqrt() / (square_avg + eps).sqrt() * grad
        update_state(state, "acc_delta", state["acc_delta"] * rho + delta * delta * (1 - rho))
        param.data = param - delta * group["lr"]


class Adamax(Optimizer):
    """torch.optim.Adamax: Adam's infinity-norm variant (Kingma & Ba, 2015, section 7)."""

    def __init__(self, params, lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, foreach=None, *, maximize: bool = False) -> None:
        check_option("Adamax", "learning rate", lr, 0.0)
        check_option("Adamax", "epsilon", eps, 0.0)
        check_option("Adamax", "beta1", betas[0], 0.0, 1.0, high_open=True)
        check_option("Adamax", "beta2", betas[1], 0.0, 1.0, high_open=True)
        check_option("Adamax", "weight_decay", weight_decay, 0.0)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group) -> None:
        # m <- b1 m + (1 - b1) g                 Adam's first moment
        # u <- max(b2 u, |g| + eps)              a decaying maximum of |g|: no square root
        # p <- p - lr / (1 - b1^t) * m / u
        (beta1, beta2), eps = group["betas"], group["eps"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = param.new_zeros(param.shape)
            state["exp_inf"] = param.new_zeros(param.shape)
        state["step"] = step = state["step"] + 1
        if group["weight_decay"] != 0:
            grad = grad + param * group["weight_decay"]
        exp_avg = state["exp_avg"]
        exp_avg = update_state(state, "exp_avg", exp_avg + (grad - exp_avg) * (1 - beta1))
        exp_inf = update_state(state, "exp_inf",
                               (state["exp_inf"] * beta2).maximum(grad.abs() + eps))
        param.data = param - exp_avg / exp_inf * (group["lr"] / (1 - beta1 ** step))
