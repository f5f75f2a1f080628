"""edugrad.nn.utils: gradient clipping here, and padding and packing of sequences in rnn.py
(`nn.utils.rnn.pad_sequence`, `pack_padded_sequence`, ...), and a model's parameters as one
vector in convert_parameters.py (`parameters_to_vector`, `vector_to_parameters`).

Layer: nn (top). Imports edugrad.tensor and edugrad.autograd; never NumPy.

Called between backward() and the optimizer step, to keep one bad batch from throwing the
parameters far away:

    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
"""

from __future__ import annotations

import math

from edugrad.autograd import no_grad
from edugrad.nn.utils import convert_parameters, rnn
from edugrad.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters
from edugrad.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "rnn", "convert_parameters",
           "parameters_to_vector", "vector_to_parameters"]


def _gradients(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale all gradients together so that their joint norm is at most max_norm.

    The total norm is the norm of the vector of every gradient element (for p = 2:
    sqrt of the sum of squares over all gradients). If it exceeds max_norm, every gradient is
    multiplied by max_norm / (total + 1e-6). Returns the total norm before clipping.
    """
    grads = _gradients(parameters)
    if not grads:
        return Tensor(0.0)
    norm_type = float(norm_type)
    device = grads[0].device
    with no_grad():
        if norm_type == math.inf:
            norms = [g.detach().abs().amax().to(device) for g in grads]
            total = norms[0]
            for norm in norms[1:]:
                total = total.maximum(norm)
        else:
            total = None
            for g in grads:
                g = g.detach()
                # the 2-norm's squares as g * g: the same numbers as |g| ** 2, two ops fewer
                part = (g * g if norm_type == 2 else g.abs() ** norm_type).sum().to(device)
                total = part if total is None else total + part
            total = total ** (1.0 / norm_type)
        if error_if_nonfinite and not math.isfinite(total.item()):  # the only host copy
            raise RuntimeError(
                f"The total norm of order {norm_type} for gradients from `parameters` is "
                "non-finite, so it cannot be clipped. To disable this error and scale the "
                "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")
        # max_norm / (total + 1e-6), at most 1, stays on the device (no sync per step on a
        # GPU); a NaN norm gives NaN gradients, as in PyTorch
        coefficient = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coefficient)
    return total


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element into [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    with no_grad():
        for g in _gradients(parameters):
            g.clamp_(-clip_value, clip_value)
