"""edugrad.nn.init: fill a parameter with starting values, in place, as PyTorch's nn.init does.

Layer: nn (top). Imports edugrad.tensor, edugrad.autograd and edugrad.shape; never NumPy.

Why the scales: a layer y = W x with fan_in inputs keeps the variance of its signal when
Var(W) = gain^2 / fan_in (He/Kaiming); Xavier/Glorot balances the forward and backward passes
with Var(W) = 2 gain^2 / (fan_in + fan_out). A uniform(-b, b) has variance b^2 / 3, hence the
sqrt(3) in the uniform bounds. Every function runs under no_grad and returns its tensor.
"""

from __future__ import annotations

import math

from edugrad.autograd import no_grad
from edugrad.shape import stack
from edugrad.tensor import Tensor

__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "xavier_uniform_",
    "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
]


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps the signal's scale through `nonlinearity` (relu halves it: sqrt 2)."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                        "conv_transpose2d", "conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {slope!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple:
    """fan_in = in_features (times the kernel's size for a conv weight), fan_out likewise."""
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 "
                         f"dimensions (shape {tuple(tensor.shape)})")
    receptive_field = 1
    for size in tensor.shape[2:]:
        receptive_field *= size
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    with no_grad():
        return tensor.uniform_(a, b)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    with no_grad():
        return tensor.normal_(mean, std)


def constant_(tensor: Tensor, val: float) -> Tensor:
    with no_grad():
        return tensor.fill_(val)


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """uniform(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """normal(0, std) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)))


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:
    """uniform(-b, b) with b = gain * sqrt(3 / fan); gain from `nonlinearity` (slope a)."""
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor  # a zero-element tensor: nothing to fill (PyTorch warns)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:
    """normal(0, std) with std = gain / sqrt(fan)."""
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan))


def orthogonal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """A (semi-)orthogonal matrix times `gain`, from a normal draw (Saxe et al. 2013).

    The tensor is seen as rows x cols (rows = shape[0], the other dims flattened). A normal
    draw, taken with its taller side first, is made orthonormal column by column (Gram-Schmidt:
    each column minus its projections on the ones before, then scaled to length 1). That is
    the Q of the draw's QR decomposition with R's diagonal positive, which is what PyTorch's
    `Q * sign(diag(R))` picks. Rows are orthonormal when rows <= cols, columns otherwise.
    """
    if tensor.ndim < 2:
        raise ValueError("orthogonal_: only tensors with 2 or more dimensions are supported "
                         f"(got shape {tuple(tensor.shape)})")
    if tensor.numel() == 0:
        return tensor  # nothing to fill (PyTorch returns it as it is)
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    with no_grad():
        draw = tensor.new_empty((rows, cols)).normal_(0.0, 1.0)
        tall = draw.T if rows < cols else draw  # more rows than columns: columns can be orthonormal
        columns = []
        for column in tall.unbind(1):
            for done in columns:  # modified Gram-Schmidt: project out the updated column
                column = column - (done * column).sum() * done
            columns.append(column / (column * column).sum().sqrt())
        q = stack(columns, dim=1)
        q = q.T if rows < cols else q
        tensor.view_as(q).copy_(q)  # a view: the caller's tensor is filled, not replaced
        tensor.mul_(gain)
    return tensor


def default_reset_(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's default for Linear and Conv2d: kaiming_uniform_ with a = sqrt(5), which is
    uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the bias uniform in the same bound."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound)
