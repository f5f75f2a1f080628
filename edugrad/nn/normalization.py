"""Normalization layers: BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm, InstanceNorm1d/2d.

Layer: nn (top). Imports edugrad.factories, edugrad.autograd and the nn modules it builds on.

BatchNorm normalizes each channel with the statistics of the batch while training, and keeps
running estimates of them (buffers, saved in the state_dict) for evaluation, when a batch may
be a single sample. LayerNorm normalizes each sample over its last dims: no running state, the
same computation in training and evaluation. GroupNorm normalizes each sample over groups of
channels (the same in both modes too); InstanceNorm over each sample's channel separately.
"""

from __future__ import annotations

import warnings

from edugrad import dtypes
from edugrad.autograd import no_grad
from edugrad.factories import empty, ones, tensor, zeros
from edugrad.nn import functional as F
from edugrad.nn import init
from edugrad.nn.module import Module
from edugrad.nn.parameter import Parameter


def _affine_parameters(module: Module, shape: tuple, weight: bool, bias: bool, device,
                       dtype) -> None:
    """The per-element scale (`weight`) and shift (`bias`) every norm layer may learn,
    registered as None where not asked for; `_reset_affine` gives them 1 and 0."""
    if weight:
        module.weight = Parameter(empty(*shape, dtype=dtype, device=device))
    else:
        module.register_parameter("weight", None)
    if weight and bias:
        module.bias = Parameter(empty(*shape, dtype=dtype, device=device))
    else:
        module.register_parameter("bias", None)


def _reset_affine(module: Module) -> None:
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _BatchNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel (dim 1).

    momentum: running = (1 - momentum) * running + momentum * batch statistic; momentum=None
    makes the running statistics a plain average over every batch seen so far.
    """

    expected_dims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None,
                 *, bias: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        _affine_parameters(self, (num_features,), affine, bias, device, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked",
                                 tensor(0, dtype=dtypes.int64, device=device))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        _reset_affine(self)

    def forward(self, input):
        if input.ndim not in self.expected_dims:
            raise ValueError(f"{type(self).__name__}: expected "
                             f"{' or '.join(f'{d}D' for d in self.expected_dims)} input "
                             f"(got {input.ndim}D input of shape {tuple(input.shape)})")
        if input.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected {self.num_features} channels "
                             f"(dim 1), got input of shape {tuple(input.shape)}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative average: the k-th batch weighs 1/k
                momentum = 1.0 / self.num_batches_tracked.item()
        # batch statistics while training, and always when there are no running ones
        use_batch = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if track else None,
                            self.running_var if track else None, self.weight, self.bias,
                            use_batch, momentum, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """BatchNorm over (N, C) or (N, C, L) inputs: statistics over N (and L)."""

    expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """BatchNorm over (N, C, H, W) inputs: statistics over N, H and W."""

    expected_dims = (4,)


class LayerNorm(Module):
    """Normalize over the last dims given by normalized_shape, then scale and shift per element."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.normalized_shape = ((normalized_shape,) if isinstance(normalized_shape, int)
                                 else tuple(normalized_shape))
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _affine_parameters(self, self.normalized_shape, elementwise_affine, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalize each sample over num_groups groups of num_channels/num_groups channels (and
    every spatial position), then scale and shift per channel."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True) -> None:
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = (num_groups, num_channels,
                                                                     eps, affine)
        _affine_parameters(self, (num_channels,), affine, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class _InstanceNorm(_BatchNorm):
    """Normalize each channel of each sample over its spatial positions. PyTorch's defaults
    differ from BatchNorm's: affine=False, track_running_stats=False."""

    spatial_dims = 2

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)

    def forward(self, input):
        name, unbatched = type(self).__name__, self.spatial_dims + 1
        if input.ndim not in (unbatched, unbatched + 1):
            raise ValueError(f"{name}: expected {unbatched}D or {unbatched + 1}D input (got "
                             f"{input.ndim}D input of shape {tuple(input.shape)})")
        channel_dim = input.ndim - unbatched
        if input.shape[channel_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"{name}: expected input's size at dim={channel_dim} to match "
                                 f"num_features ({self.num_features}), but got: "
                                 f"{input.shape[channel_dim]} (input of shape "
                                 f"{tuple(input.shape)}).")
            warnings.warn(f"input's size at dim={channel_dim} does not match num_features. "
                          "You can silence this warning by not passing in num_features, which "
                          "is not used because affine=False", stacklevel=2)
        batched = input if input.ndim == unbatched + 1 else input.unsqueeze(0)
        output = F.instance_norm(batched, self.running_mean, self.running_var, self.weight,
                                 self.bias, self.training or not self.track_running_stats,
                                 0.0 if self.momentum is None else self.momentum, self.eps)
        return output if input.ndim == unbatched + 1 else output.squeeze(0)


class InstanceNorm1d(_InstanceNorm):
    """InstanceNorm over (N, C, L) inputs (or unbatched (C, L)): statistics over L."""

    spatial_dims = 1


class InstanceNorm2d(_InstanceNorm):
    """InstanceNorm over (N, C, H, W) inputs (or unbatched (C, H, W)): statistics over H, W."""
