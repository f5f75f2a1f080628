"""Optimizer: the base class every optimizer shares. PyTorch's names and semantics.

Layer: nn/optim (top). Imports edugrad.tensor and edugrad.autograd; never NumPy.

An optimizer holds
    param_groups   a list of dicts: {"params": [Tensor, ...], "lr": 0.01, ...}; each group has
                   its own options, filled from the optimizer's `defaults` where not given
    state          per parameter (keyed by the Tensor itself), what the update rule remembers
                   between steps: momentum buffers, running averages, a step count

and `step()` applies the update rule to every parameter that has a gradient. A subclass writes
one method, `_update(param, grad, state, group)`, for one parameter; the loop, `maximize`, the
grad-mode switch and the checks live here, once.

In-place, the edugrad way: a parameter is updated with `param.data = new_values`, which points
the same Tensor object (the one the model holds) at a new buffer and bumps its version. The
state tensors (momentum, running averages) are updated the same way, through `update_state`,
so they too stay the same objects from step to step, as in PyTorch: whoever holds one sees
its new values, and edugrad.jit can replay a step into them. No buffer is ever written, so
`state_dict()` can still hand out a snapshot without copying anything.

    >>> opt = edugrad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> loss = loss_fn(model(x), y)
    >>> opt.zero_grad()
    >>> loss.backward()
    >>> opt.step()
"""

from __future__ import annotations

from collections import defaultdict

from edugrad import function
from edugrad.autograd import enable_grad, no_grad
from edugrad.tensor import Tensor


def update_state(state: dict, key: str, value: Tensor) -> Tensor:
    """state[key] takes `value`'s values: in place when it exists, so the state tensor stays
    the same object (PyTorch writes `exp_avg.lerp_(grad, 1 - beta1)`); else a copy of value,
    never value itself, which may be the gradient that zero_grad(set_to_none=False) zeroes."""
    current = state.get(key)
    if current is None:
        state[key] = current = value.detach().clone()
    else:
        current.data = value
    return current


class Optimizer:
    """Base of SGD, Adam, AdamW, RMSprop and Lion. Subclasses write `_update`."""

    def __init__(self, params, defaults: dict) -> None:
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(
                f"{name}: params must be an iterable of Tensors or of dicts (parameter groups), "
                f"got a single Tensor of shape {tuple(params.shape)}; pass [tensor]"
            )
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own options (the others come from `defaults`)."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, "
                            f"got {type(param_group).__name__}")
        if "params" not in param_group:
            raise KeyError(f"{name}: a parameter group needs a 'params' entry, got keys "
                           f"{sorted(param_group)}")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for i, param in enumerate(params):
            if not isinstance(param, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, but parameter {i} of the "
                                f"group is a {type(param).__name__}")
            if not param.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (parameter {i}, "
                                 f"shape {tuple(param.shape)}, made by {param.grad_fn})")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter group contains the same tensor twice")
        taken = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in taken for p in params):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        group = {**self.defaults, **param_group, "params": params}
        self.param_groups.append(group)

    # ---- the step -------------------------------------------------------------------------------
    def step(self, closure=None):
        """Update every parameter that has a gradient. `closure` (optional) re-evaluates the
        model and returns the loss; it runs with gradients on, before the update."""
        if function.observer is not None:  # edugrad.jit guards on the options (lr, betas, ...)
            function.observer.optimizer_stepped(self)
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        work = [(param, param.grad, group) for group in self.param_groups
                for param in group["params"] if param.grad is not None]
        for param, grad, _ in work:  # every check before the first update
            if grad.shape != param.shape or grad.dtype is not param.dtype:
                raise RuntimeError(
                    f"{type(self).__name__}.step: a gradient (shape {tuple(grad.shape)}, "
                    f"{grad.dtype.name}) does not match its parameter (shape "
                    f"{tuple(param.shape)}, {param.dtype.name})"
                )
        with no_grad():
            for param, grad, group in work:
                if group.get("maximize", False):
                    grad = -grad
                state = self.state[param]
                for key, value in state.items():  # Module.to may have moved param since
                    if isinstance(value, Tensor) and value.device != param.device:
                        state[key] = value.to(param.device)
                self._update(param, grad, state, group)
        return loss

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        """Update one parameter in place from its gradient (already negated for maximize)."""
        raise NotImplementedError(f"{type(self).__name__}._update is not written")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set them to None (the default), or to zeros."""
        with no_grad():
            for group in self.param_groups:
                for param in group["params"]:
                    grad = param.grad
                    if grad is None:
                        continue
                    if set_to_none:
                        param.grad = None
                    else:  # zeroed in place, as PyTorch does, cut from any graph first
                        if grad.grad_fn is not None:
                            param.grad = grad = grad.detach().clone()
                        grad.zero_()

    # ---- saving and restoring -------------------------------------------------------------------
    def state_dict(self) -> dict:
        """PyTorch's layout: parameters are named by their index over all groups, in order.

            {"state": {0: {"step": 3, "exp_avg": Tensor, ...}, 1: {...}},
             "param_groups": [{"lr": 0.001, ..., "params": [0, 1]}, ...]}

        The tensors are new Tensor objects sharing the current buffers: a snapshot that later
        steps do not change (they rebind, they never write), made without copying.
        """
        groups, state, index = [], {}, 0
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            packed["params"] = list(range(index, index + len(group["params"])))
            groups.append(packed)
            for i, param in enumerate(group["params"], start=index):
                if self.state.get(param):
                    state[i] = {key: value.detach().clone() if isinstance(value, Tensor) else value
                                for key, value in self.state[param].items()}
            index += len(group["params"])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore options and state saved by `state_dict()`. Everything is checked first: on
        an error the optimizer is left as it was."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict)
            raise ValueError(f"{name}.load_state_dict: expected a dict with keys 'state' and "
                             f"'param_groups', got {keys}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the loaded state dict has "
                             f"{len(saved_groups)} parameter groups, the optimizer has "
                             f"{len(self.param_groups)}")
        by_index = {}
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: parameter group {g} has "
                                 f"{len(saved['params'])} parameters in the loaded state dict, "
                                 f"{len(group['params'])} in the optimizer")
            by_index.update(zip(saved["params"], group["params"]))
        state = defaultdict(dict)
        for index, saved_state in state_dict["state"].items():
            if index not in by_index:
                raise ValueError(f"{name}.load_state_dict: state for parameter {index!r}, which "
                                 f"no parameter group lists")
            param = by_index[index]
            where = f"{name}.load_state_dict: state {index}"
            state[param] = {key: _to_parameter(key, value, param, f"{where}.{key}")
                            for key, value in saved_state.items()}
        groups = [{**group, **saved, "params": group["params"]}
                  for group, saved in zip(self.param_groups, saved_groups)]
        self.state, self.param_groups = state, groups

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines + [")"])


def _to_parameter(key: str, value, param: Tensor, where: str):
    """A saved state value, checked against its parameter and moved to its device and dtype."""
    if not isinstance(value, Tensor):
        return value
    if key == "step":  # a Python int here; PyTorch's state dicts hold a 0-d tensor
        return int(value.item())
    if value.ndim and value.shape != param.shape:
        raise ValueError(f"{where} has shape {tuple(value.shape)}, but its parameter has shape "
                         f"{tuple(param.shape)}")
    if value.dtype.is_floating_point and value.dtype is not param.dtype:
        value = value.to(param.dtype)
    return value.to(param.device).detach()


def check_option(optimizer: str, name: str, value, low: float, high: float | None = None,
                 high_open: bool = False) -> None:
    """Raise a ValueError unless low <= value <= high (or < high when high_open)."""
    above = high is None or (value < high if high_open else value <= high)
    if not (low <= value and above):
        if high is None:
            bound = f">= {low}"
        else:
            bound = f"in [{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{optimizer}: invalid {name} {value!r} (must be {bound})")
