"""Convolution and pooling layers: Conv1d, Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d,
LPPool2d and the adaptive pools.

Layer: nn (top). Imports edugrad.factories and the nn modules it builds on.
How the computation works (im2col: unfold + one matmul) is told in functional_conv.py.
"""

from __future__ import annotations


from edugrad.factories import empty
from edugrad.nn import functional as F
from edugrad.nn import init
from edugrad.nn.functional_conv import _pair
from edugrad.nn.module import Module
from edugrad.nn.parameter import Parameter


class _ConvNd(Module):
    """What Conv1d, Conv2d and ConvTranspose2d share: PyTorch's arguments, checks, parameters
    (weight and bias uniform in +-1/sqrt(fan_in), as in PyTorch) and repr."""

    dims = 2
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None, output_padding=0) -> None:
        super().__init__()
        name = type(self).__name__
        if groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"{name}: padding_mode must be one of 'zeros', 'reflect', "
                             f"'replicate' or 'circular', but got padding_mode='{padding_mode}'")
        if isinstance(padding, str) and (padding not in ("valid", "same") or self.transposed):
            raise ValueError(f"{name}: invalid padding string {padding!r}, should be one of "
                             "{'valid', 'same'}" + (" (and none for ConvTranspose)"
                                                    if self.transposed else ""))
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = self._tuple(kernel_size, "kernel_size")
        self.stride = self._tuple(stride, "stride")
        self.dilation = self._tuple(dilation, "dilation")
        self.output_padding = self._tuple(output_padding, "output_padding")
        if padding == "same" and any(s != 1 for s in self.stride):
            raise ValueError(f"{name}: padding='same' is not supported for strided convolutions")
        self.padding = padding if isinstance(padding, str) else self._tuple(padding, "padding")
        self.groups, self.padding_mode = groups, padding_mode
        shape = ((in_channels, out_channels // groups) if self.transposed
                 else (out_channels, in_channels // groups))
        self.weight = Parameter(empty(*shape, *self.kernel_size, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _tuple(self, value, name: str) -> tuple:
        values = (value,) * self.dims if isinstance(value, int) else tuple(value)
        if len(values) != self.dims:
            raise ValueError(f"{type(self).__name__}: {name} must be an int or a "
                             f"{self.dims}-tuple, got {value!r}")
        return values

    def reset_parameters(self) -> None:
        init.default_reset_(self.weight, self.bias)

    def _padded(self, input):
        """padding_mode other than zeros: pad the input by that mode first (PyTorch's way)."""
        if self.padding_mode == "zeros" or self.padding == "valid":
            return input, self.padding
        if self.padding == "same":  # the odd one goes after, as F.conv2d's 'same' does
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            pairs = [(total // 2, total - total // 2) for total in totals]
        else:
            pairs = [(size, size) for size in self.padding]
        amounts = tuple(p for pair in reversed(pairs) for p in pair)
        return F.pad(input, amounts, mode=self.padding_mode), 0

    def _output_padding(self, input, output_size) -> tuple:
        """A transposed conv's output size is ambiguous by up to stride - 1: forward's
        output_size picks one, as output_padding would."""
        if output_size is None:
            return self.output_padding
        output_size = tuple(output_size)[-self.dims:]
        if len(output_size) != self.dims:
            raise ValueError(f"{type(self).__name__}: output_size must have {self.dims} or "
                             f"{self.dims + 2} elements, got {output_size!r}")
        extra = []
        for i, wanted in enumerate(output_size):
            size = input.shape[input.ndim - self.dims + i]
            smallest = ((size - 1) * self.stride[i] - 2 * self.padding[i]
                        + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            if not smallest <= wanted < smallest + self.stride[i]:
                raise ValueError(f"{type(self).__name__}: requested an output size of "
                                 f"{output_size}, but valid sizes range from {smallest} to "
                                 f"{smallest + self.stride[i] - 1} (for an input of "
                                 f"{tuple(input.shape)})")
            extra.append(wanted - smallest)
        return tuple(extra)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if isinstance(self.padding, str) or any(self.padding):
            text += f", padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            text += f", dilation={self.dilation}"
        if any(self.output_padding):
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class Conv2d(_ConvNd):
    """Slide `out_channels` filters of shape (in_channels/groups, KH, KW) over an (N, C, H, W)
    input; weight (out_channels, in_channels/groups, KH, KW), bias (out_channels,)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)

    def forward(self, input):
        input, padding = self._padded(input)
        return F.conv2d(input, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)


class Conv1d(_ConvNd):
    """Conv2d's 1-D sibling over (N, C, L): weight (out_channels, in_channels/groups, K)."""

    dims = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)

    def forward(self, input):
        input, padding = self._padded(input)
        return F.conv1d(input, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)


class _ConvTransposeNd(_ConvNd):
    """What ConvTranspose1d and ConvTranspose2d share: PyTorch's argument order (with
    output_padding), zeros padding only, and forward through F.conv_transpose1d/2d."""

    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}, '
                             f"got {padding_mode!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype, output_padding)

    def forward(self, input, output_size=None):
        function = F.conv_transpose1d if self.dims == 1 else F.conv_transpose2d
        return function(input, self.weight, self.bias, self.stride, self.padding,
                        self._output_padding(input, output_size), self.groups, self.dilation)


class ConvTranspose2d(_ConvTransposeNd):
    """The adjoint of Conv2d, used to upsample (decoders, GANs): weight (in_channels,
    out_channels/groups, KH, KW); an (N, C, H, W) input gives OH = (H - 1)*stride - 2*padding
    + dilation*(KH - 1) + output_padding + 1. See F.conv_transpose2d for how."""


class MaxPool2d(Module):
    """The maximum of each window; stride defaults to kernel_size (windows that do not overlap).
    dilation spreads a window's taps apart; ceil_mode keeps a last, partial window."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode
        self.return_indices = return_indices

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """The mean of each window; stride defaults to kernel_size."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class ConvTranspose1d(_ConvTransposeNd):
    """ConvTranspose2d's 1-D sibling over (N, C, L): weight (in_channels, out_channels/groups,
    K)."""

    dims = 1


class MaxPool1d(MaxPool2d):
    """The maximum of each window along the last dim of (N, C, L)."""

    def forward(self, input):
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class MaxUnpool2d(Module):
    """The partial inverse of MaxPool2d(return_indices=True): unpool(values, indices) puts each
    value back where its maximum was, zeros elsewhere."""

    dims = 2

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        sizes = (lambda value, name: _pair(value, name)[-self.dims:])  # noqa: E731
        self.kernel_size = sizes(kernel_size, "kernel_size")
        self.stride = sizes(stride if stride is not None else kernel_size, "stride")
        self.padding = sizes(padding, "padding")

    def forward(self, input, indices, output_size=None):
        function = F.max_unpool2d if self.dims == 2 else F.max_unpool1d
        return function(input, indices, self.kernel_size, self.stride, self.padding,
                        output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(MaxUnpool2d):
    """MaxUnpool2d's 1-D sibling, for MaxPool1d's indices over (N, C, L)."""

    dims = 1


class AvgPool1d(Module):
    """The mean of each window along the last dim of (N, C, L)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__()
        single = lambda v: (v,) if isinstance(v, int) else tuple(v)  # noqa: E731
        self.kernel_size = single(kernel_size)
        self.stride = single(stride if stride is not None else kernel_size)
        self.padding, self.ceil_mode = single(padding), ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input):
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class LPPool2d(Module):
    """The p-norm of each window, (sum x^p)^(1/p): p = 1 sums, large p nears the maximum."""

    dims = 2

    def __init__(self, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type, self.kernel_size = norm_type, kernel_size
        self.stride, self.ceil_mode = stride, ceil_mode

    def forward(self, input):
        function = F.lp_pool1d if self.dims == 1 else F.lp_pool2d
        return function(input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


class LPPool1d(LPPool2d):
    """LPPool2d's 1-D sibling, along the last dim of (N, C, L)."""

    dims = 1


class _AdaptivePool(Module):
    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePool):
    """Mean over output_size windows that tile the last dim, whatever its length."""

    def forward(self, input):
        return F.adaptive_avg_pool1d(input, self.output_size)


class AdaptiveAvgPool2d(_AdaptivePool):
    """Mean over output_size windows that tile H and W (None keeps that dim's size);
    AdaptiveAvgPool2d(1) is global average pooling."""

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)


class AdaptiveMaxPool1d(_AdaptivePool):
    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input):
        return F.adaptive_max_pool1d(input, self.output_size, self.return_indices)


class AdaptiveMaxPool2d(AdaptiveMaxPool1d):
    """Maximum over output_size windows that tile H and W."""

    def forward(self, input):
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)
