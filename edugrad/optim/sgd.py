"""SGD: stochastic gradient descent, with momentum, dampening, Nesterov and weight decay.

Layer: nn/optim (top). Imports edugrad.optim.optimizer; never NumPy.
"""

from __future__ import annotations

from edugrad.optim.optimizer import Optimizer, check_option, update_state


class SGD(Optimizer):
    """torch.optim.SGD: the same options, the same numbers.

    >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *,
                 maximize: bool = False) -> None:
        check_option("SGD", "learning rate", lr, 0.0)
        check_option("SGD", "momentum", momentum, 0.0)
        check_option("SGD", "weight_decay", weight_decay, 0.0)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening "
                             f"(got momentum={momentum}, dampening={dampening})")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group) -> None:
        # g <- g + wd p                                      (L2 weight decay)
        # b <- g on the first step, then b <- mu b + (1 - dampening) g
        # g <- g + mu b with Nesterov, else g <- b
        # p <- p - lr g
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        if weight_decay != 0:
            grad = grad + param * weight_decay
        if momentum != 0:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = grad
            elif group["dampening"] == 0:
                buffer = buffer * momentum + grad
            else:
                buffer = buffer * momentum + grad * (1 - group["dampening"])
            buffer = update_state(state, "momentum_buffer", buffer)
            grad = grad + buffer * momentum if group["nesterov"] else buffer
        param.data = param - grad * lr
