"""nn.utils.parameters_to_vector / vector_to_parameters: a model's parameters as one flat
vector and back (for methods that see the model as a point in R^n: line searches, evolution
strategies, second-order tricks).

Layer: nn (top). Imports edugrad.tensor and edugrad.shape; never NumPy.
"""

from __future__ import annotations

from edugrad.shape import cat
from edugrad.tensor import Tensor


def _same_device(parameters, op: str) -> list:
    parameters = list(parameters)
    devices = {str(param.device) for param in parameters}
    if len(devices) > 1:
        raise TypeError(f"{op}: found parameters on different devices "
                        f"({', '.join(sorted(devices))}), this is currently not supported.")
    return parameters


def parameters_to_vector(parameters) -> Tensor:
    """One 1-D tensor: every parameter flattened, in order (a differentiable copy)."""
    parameters = _same_device(parameters, "parameters_to_vector")
    if not parameters:
        raise RuntimeError("parameters_to_vector: expected a non-empty list of parameters")
    return cat([param.reshape(-1) for param in parameters])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Give each parameter, in order, the next numel() entries of vec as its values (the
    parameters then share vec's memory, as in PyTorch)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected edugrad.Tensor, but got: "
                        f"{type(vec).__name__}")
    parameters = _same_device(parameters, "vector_to_parameters")
    needed = sum(param.numel() for param in parameters)
    if vec.ndim != 1 or vec.numel() < needed:
        raise RuntimeError(f"vector_to_parameters: vec of shape {tuple(vec.shape)} must be 1-D "
                           f"with at least {needed} elements, one per parameter entry")
    pointer = 0
    for param in parameters:
        count = param.numel()
        param.data = vec.detach()[pointer:pointer + count].view_as(param)
        pointer += count
