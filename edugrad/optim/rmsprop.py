"""RMSprop: divide the gradient by a running root-mean-square of recent gradients.

Layer: nn/optim (top). Imports edugrad.optim.optimizer; never NumPy.
"""

from __future__ import annotations

from edugrad.optim.optimizer import Optimizer, check_option, update_state


class RMSprop(Optimizer):
    """torch.optim.RMSprop: the same options, the same numbers.

    >>> opt = RMSprop(model.parameters(), lr=0.01, alpha=0.99, centered=True)
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False) -> None:
        check_option("RMSprop", "learning rate", lr, 0.0)
        check_option("RMSprop", "epsilon", eps, 0.0)
        check_option("RMSprop", "alpha", alpha, 0.0)
        check_option("RMSprop", "momentum", momentum, 0.0)
        check_option("RMSprop", "weight_decay", weight_decay, 0.0)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group) -> None:
        # g <- g + wd p                                  (L2 weight decay)
        # v <- alpha v + (1 - alpha) g²                  running mean of g²
        # a <- alpha a + (1 - alpha) g                   running mean of g (centered only)
        # r <- sqrt(v - a²) + eps if centered, else sqrt(v) + eps
        # b <- mu b + g / r;  p <- p - lr b              with momentum mu > 0
        # p <- p - lr g / r                              without
        lr, alpha, weight_decay = group["lr"], group["alpha"], group["weight_decay"]
        momentum = group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = param.new_zeros(param.shape)
            if momentum > 0:
                state["momentum_buffer"] = param.new_zeros(param.shape)
            if group["centered"]:
                state["grad_avg"] = param.new_zeros(param.shape)
        state["step"] += 1
        if weight_decay != 0:
            grad = grad + param * weight_decay
        square_avg = state["square_avg"]
        square_avg = update_state(state, "square_avg",
                                  square_avg + (grad * grad - square_avg) * (1 - alpha))
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg = update_state(state, "grad_avg", grad_avg + (grad - grad_avg) * (1 - alpha))
            root = (square_avg - grad_avg * grad_avg).sqrt() + group["eps"]
        else:
            root = square_avg.sqrt() + group["eps"]
        if momentum > 0:
            buffer = update_state(state, "momentum_buffer",
                                  state["momentum_buffer"] * momentum + grad / root)
            param.data = param - buffer * lr
        else:
            param.data = param - grad / root * lr
