"""edugrad.amp: PyTorch's automatic mixed precision, as documented pass-throughs.

Layer: top. Imports edugrad.autograd's no_grad; never NumPy.

edugrad computes every op in its inputs' dtype, so `autocast` changes nothing: it is accepted
(as a context manager or a decorator) so that programs written for mixed precision run, in
full precision. `GradScaler` is real: it multiplies the loss by a scale, divides the gradients
back before the step, and skips the step (halving the scale) when they are not finite, as
PyTorch's does; with `enabled=False` every method is the identity.
"""

from __future__ import annotations

import functools
import math

from edugrad.autograd import no_grad


class autocast:  # noqa: N801  (PyTorch's name)
    """`with autocast(device_type="cuda", dtype=...):` runs the block unchanged."""

    def __init__(self, device_type: str = "cuda", dtype=None, enabled: bool = True,
                 cache_enabled=None) -> None:
        self.device_type, self.dtype, self.enabled = device_type, dtype, enabled

    def __enter__(self) -> "autocast":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def __call__(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with self:
                return function(*args, **kwargs)

        return wrapper


class GradScaler:
    """Loss scaling: scale(loss).backward(); scaler.step(optimizer); scaler.update()."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0**16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        self._enabled = enabled
        self._scale, self._growth, self._backoff = float(init_scale), growth_factor, backoff_factor
        self._interval, self._good_steps = growth_interval, 0
        self._unscaled, self._found_inf = set(), False

    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def scale(self, outputs):
        return outputs * self._scale if self._enabled else outputs

    def unscale_(self, optimizer) -> None:
        if not self._enabled or id(optimizer) in self._unscaled:
            return
        with no_grad():
            for group in optimizer.param_groups:
                for parameter in group["params"]:
                    if parameter.grad is not None:
                        parameter.grad = parameter.grad / self._scale
                        total = parameter.grad.abs().sum().item()
                        self._found_inf |= not math.isfinite(total)
        self._unscaled.add(id(optimizer))

    def step(self, optimizer, *args, **kwargs):
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        self.unscale_(optimizer)
        return None if self._found_inf else optimizer.step(*args, **kwargs)

    def update(self, new_scale=None) -> None:
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale)
        elif self._found_inf:
            self._scale *= self._backoff
            self._good_steps = 0
        else:
            self._good_steps += 1
            if self._good_steps == self._interval:
                self._scale *= self._growth
                self._good_steps = 0
        self._unscaled, self._found_inf = set(), False

    def state_dict(self) -> dict:
        return {"scale": self._scale, "growth_factor": self._growth,
                "backoff_factor": self._backoff, "growth_interval": self._interval,
                "_growth_tracker": self._good_steps} if self._enabled else {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self._scale, self._good_steps = float(state["scale"]), int(state["_growth_tracker"])
