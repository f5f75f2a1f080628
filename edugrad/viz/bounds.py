"""estimate_bounds: how far can f's output move when its input moves by at most eps?

Layer: teaching tools. Imports edugrad.autograd (grad, no_grad) and edugrad.nn (to recognise
layers, and nn.functional.conv2d for Conv2d).

Two answers for the box B = [x - eps, x + eps] (elementwise):

first_order (any differentiable f; an ESTIMATE). Near x, f(x + d) ~ f(x) + J d, and over the
    box |J d|_i <= sum_j |J_ij| eps_j. So f_i lies in f_i(x) +- sum_j |J_ij| eps_j, up to the
    curvature the linearisation ignores: close for small eps, possibly wrong for large. One
    backward per output element gives the rows of J.

interval (networks of Linear, Conv2d, ReLU, Flatten inside Sequential; SOUND). Interval bound
    propagation carries the box itself through the network as a centre c and a radius r:
        Linear / Conv2d    c' = W c + b     r' = |W| r     (a box maps into a box around W c)
        ReLU               l, u = relu(c - r), relu(c + r);  c' = (u + l) / 2, r' = (u - l) / 2
        Flatten            reshape both
    Every point of the box maps inside the result, so the bounds are guaranteed (up to
    floating-point rounding), though often loose: ReLU's box can only grow.

    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> low, high = estimate_bounds(net, x, 0.1, method="interval")
"""

from __future__ import annotations

from collections import namedtuple

from edugrad import nn
from edugrad.autograd import grad, no_grad
from edugrad.nn import functional as F
from edugrad.shape import stack

__all__ = ["estimate_bounds", "Bounds"]

Bounds = namedtuple("Bounds", ["lower", "upper"])

_SUPPORTED = "Linear, Conv2d, ReLU and Flatten (inside Sequential)"


def estimate_bounds(f, x, eps, method: str = "first_order") -> Bounds:
    """Lower and upper bounds of f over the box [x - eps, x + eps], each of f(x)'s shape.

    eps is a number or a tensor broadcastable to x's shape (a radius per input element).
    method="first_order": f(x) +- |J| eps, for any f (an estimate, see the module docstring).
    method="interval": interval bound propagation through an nn.Sequential (sound).
    """
    if not x.dtype.is_floating_point:
        raise TypeError(f"estimate_bounds: x must be a floating point tensor, not {x.dtype.name}")
    if isinstance(eps, (int, float)):
        if eps < 0:
            raise ValueError(f"estimate_bounds: eps must be >= 0, got {eps}")
        radius = x.new_zeros(x.shape) + eps
    else:
        if bool((eps < 0).any()):
            raise ValueError("estimate_bounds: eps must be >= 0 everywhere")
        radius = (x.new_zeros(x.shape) + eps.detach()).to(x.dtype)
        if tuple(radius.shape) != tuple(x.shape):
            raise ValueError(f"estimate_bounds: eps of shape {tuple(eps.shape)} does not "
                             f"broadcast to x's shape {tuple(x.shape)}")
    if method == "first_order":
        return _first_order(f, x, radius)
    if method == "interval":
        return interval_bounds(f, x, radius)
    raise ValueError(f"estimate_bounds: method must be 'first_order' or 'interval', not {method!r}")


def _first_order(f, x, radius) -> Bounds:
    point = x.detach().requires_grad_(True)
    out = f(point)
    if not out.requires_grad:
        raise RuntimeError("estimate_bounds: f's output does not depend on x through operations "
                           "that record gradients (is f running under no_grad?)")
    flat_out = out.reshape(-1)
    spreads = []
    for i in range(flat_out.numel()):
        seed = flat_out.new_zeros(flat_out.shape)
        seed[i] = 1  # one row of the Jacobian: d out_i / d x
        (row,) = grad(flat_out, point, seed, retain_graph=True, allow_unused=True)
        spreads.append(0 * radius.sum() if row is None else (row.abs() * radius).sum())
    with no_grad():
        spread = stack([s.reshape(()) for s in spreads]).reshape(out.shape)
        centre = out.detach()
        return Bounds(centre - spread, centre + spread)


def interval_bounds(net, x, radius) -> Bounds:
    """Interval bound propagation: push (centre, radius) through each layer of `net`."""
    layers = list(_layers(net))
    centre, radius = x.detach(), radius.detach()
    with no_grad():
        for name, layer in layers:
            kind = _kind(layer)
            if kind == "Linear":
                weight = layer.weight.detach()
                centre = centre @ weight.T
                if layer.bias is not None:
                    centre = centre + layer.bias.detach()
                radius = radius @ weight.abs().T
            elif kind == "Conv2d":
                centre, radius = _conv_interval(layer, centre, radius)
            elif kind == "ReLU":
                low, high = (centre - radius).relu(), (centre + radius).relu()
                centre, radius = (high + low) / 2, (high - low) / 2
            elif kind == "Flatten":
                start, end = getattr(layer, "start_dim", 1), getattr(layer, "end_dim", -1)
                centre, radius = centre.flatten(start, end), radius.flatten(start, end)
            else:
                where = f"layer '{name}' ({type(layer).__name__})" if name else \
                    f"{type(layer).__name__}"
                raise TypeError(
                    f"estimate_bounds(method='interval'): {where} is not supported; interval "
                    f"bounds go through {_SUPPORTED}. Use method='first_order' for an "
                    "estimate for any f"
                )
        return Bounds(centre - radius, centre + radius)


def _conv_interval(layer, centre, radius):
    options = {"stride": layer.stride, "padding": layer.padding}
    for extra in ("dilation", "groups"):  # passed on only where the layer has them
        if hasattr(layer, extra):
            options[extra] = getattr(layer, extra)
    weight = layer.weight.detach()
    bias = None if layer.bias is None else layer.bias.detach()
    return (F.conv2d(centre, weight, bias, **options),
            F.conv2d(radius, weight.abs(), None, **options))


def _kind(layer) -> str | None:
    for cls in (nn.Linear, nn.Conv2d, nn.ReLU, nn.Flatten):
        if isinstance(layer, cls):
            return cls.__name__
    return None


def _layers(net, prefix: str = ""):
    """(name, layer) for each layer, nested Sequentials opened up, in the order they run."""
    if isinstance(net, nn.Sequential):
        for name, child in net.named_children():
            yield from _layers(child, f"{prefix}.{name}" if prefix else name)
    elif _kind(net) is not None:
        yield prefix, net
    elif hasattr(net, "named_parameters") or hasattr(net, "forward"):
        yield prefix, net  # a Module of another kind: interval_bounds names it in its error
    else:
        raise TypeError(
            f"estimate_bounds(method='interval'): f must be a network of {_SUPPORTED}, not "
            f"{type(net).__name__}; use method='first_order' for any function"
        )
