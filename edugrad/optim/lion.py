"""Lion: the sign of an interpolated momentum as the step (Chen et al., 2023, "Symbolic
Discovery of Optimization Algorithms").

Layer: nn/optim (top). Imports edugrad.optim.optimizer; never NumPy.

Every coordinate moves by exactly lr (plus the decay), so Lion usually wants a learning rate
3-10x smaller than AdamW's and a weight decay 3-10x larger. It keeps one buffer, not two.
"""

from __future__ import annotations

from edugrad.optim.optimizer import Optimizer, check_option, update_state


class Lion(Optimizer):
    """EvoLved Sign Momentum. PyTorch has no Lion; the numbers follow the paper's Program 1.

    >>> opt = Lion(model.parameters(), lr=1e-4, betas=(0.9, 0.99), weight_decay=0.1)
    """

    def __init__(self, params, lr: float = 1e-4, betas: tuple = (0.9, 0.99),
                 weight_decay: float = 0.0, *, maximize: bool = False) -> None:
        check_option("Lion", "learning rate", lr, 0.0)
        check_option("Lion", "beta1", betas[0], 0.0, 1.0)
        check_option("Lion", "beta2", betas[1], 0.0, 1.0)
        check_option("Lion", "weight_decay", weight_decay, 0.0)
        defaults = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group) -> None:
        # c <- b1 m + (1 - b1) g                  interpolate momentum and gradient
        # p <- p - lr (sign(c) + wd p)            a step of exactly lr in every coordinate
        # m <- b2 m + (1 - b2) g                  the momentum, with its own (slower) beta
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        if not state:
            state["exp_avg"] = param.new_zeros(param.shape)
        exp_avg = state["exp_avg"]
        difference = grad - exp_avg  # b m + (1 - b) g = m + (1 - b)(g - m), for both betas
        update = (exp_avg + difference * (1 - beta1)).sign()
        if weight_decay != 0:
            update = update + param * weight_decay
        param.data = param - update * lr
        update_state(state, "exp_avg", exp_avg + difference * (1 - beta2))
