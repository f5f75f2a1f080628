"""Module: the base class of every layer and model, and how it keeps its state.

Layer: nn (top). Imports edugrad.tensor, edugrad.factories, edugrad.function, edugrad.autograd,
edugrad.dtypes.

A Module keeps three ordered tables, filled by plain attribute assignment:

    _parameters  name -> Parameter   self.weight = Parameter(edugrad.empty(out, in))
    _buffers     name -> Tensor      self.register_buffer("running_mean", edugrad.zeros(n))
    _modules     name -> Module      self.fc1 = Linear(784, 128)

Everything else is a walk over that tree. `parameters()` yields the Parameters of the module
and of every submodule; `state_dict()` names each tensor by its path from the root
("0.weight", "1.running_mean"); `to()`, `train()` and `zero_grad()` visit every module.
Calling a module runs its `forward`, with the hooks registered on it around the call.
"""

from __future__ import annotations

import itertools
import warnings
from collections import namedtuple
from collections.abc import Mapping

from edugrad import dtypes, factories, function
from edugrad.autograd import is_grad_enabled, no_grad
from edugrad.function import GradTap
from edugrad.nn.parameter import Parameter
from edugrad.tensor import Tensor, parse_to_args


class Module:
    """Base class of layers and models: subclass it, create parameters and submodules in
    `__init__` (after `super().__init__()`), and compute the output in `forward`.

    >>> class TwoLayer(Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden, self.out = Linear(784, 128), Linear(128, 10)
    ...     def forward(self, x):
    ...         return self.out(self.hidden(x).relu())
    """

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ consults these tables, so they come first
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_forward_pre_hooks", {})
        object.__setattr__(self, "_forward_hooks", {})
        object.__setattr__(self, "_backward_hooks", {})
        object.__setattr__(self, "_backward_pre_hooks", {})
        object.__setattr__(self, "_hooks_with_kwargs", set())  # ids of hooks that see kwargs
        object.__setattr__(self, "_hooks_always_called", set())  # ids of always_call hooks

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  '"forward" function')

    def __call__(self, *args, **kwargs):
        if function.observer is not None:  # edugrad.jit guards on the train/eval mode
            function.observer.module_called(self)
        if (self._forward_pre_hooks or self._forward_hooks or self._backward_hooks
                or self._backward_pre_hooks):
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)  # the common case: nothing between call and forward

    # ---- attributes: parameters, buffers and submodules live in the tables -----------------------
    def __getattr__(self, name: str):
        # only called when ordinary lookup fails, i.e. for entries of the three tables
        state = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in state and name in state[table]:
                return state[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name: str, value) -> None:
        state = self.__dict__
        if "_parameters" not in state and isinstance(value, (Parameter, Module)):
            raise AttributeError(f"cannot assign {type(value).__name__} '{name}' before "
                                 "Module.__init__() call")
        if isinstance(value, Parameter):
            self._forget(name)
            self.register_parameter(name, value)
        elif name in state.get("_parameters", ()):
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(edugrad.nn.Parameter or None expected)")
            self._parameters[name] = None
        elif isinstance(value, Module):
            self._forget(name)
            self._modules[name] = value
        elif name in state.get("_modules", ()):
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (edugrad.nn.Module or None expected)")
            self._modules[name] = None
        elif name in state.get("_buffers", ()):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(edugrad.Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def _forget(self, name: str) -> None:
        """Remove `name` from wherever it is, before it is registered anew."""
        self.__dict__.pop(name, None)
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def _check_new_name(self, name, what: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{what} name should be a string, got {type(name).__name__}")
        if name == "" or "." in name:
            raise KeyError(f'{what} name can\'t be empty or contain ".", got {name!r}')

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder, e.g. a layer without bias)."""
        self._check_new_name(name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter "
                            f"'{name}' (edugrad.nn.Parameter or None required)")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add state that is not learned (BatchNorm's running mean); persistent buffers are
        saved in the state_dict, the others only follow the module in `to()`."""
        self._check_new_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer "
                            f"'{name}' (edugrad.Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        self._check_new_name(name, "module")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> "Module":
        """The submodule at a dotted path: model.get_submodule("encoder.0")."""
        module = self
        for name in target.split(".") if target else []:
            child = module._modules.get(name)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no submodule `{name}` "
                                     f"(looking for `{target}`)")
            module = child
        return module

    # ---- walking the tree ---------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True):
        """(path, module) for this module and every module below it, depth first."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        if remove_duplicate:
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, _join(prefix, name), remove_duplicate)

    def modules(self):
        return (module for _, module in self.named_modules())

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        return (module for _, module in self.named_children())

    def _named_members(self, table: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()  # by id: Tensor's == is elementwise
        modules = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
                   if recurse else [(prefix, self)])
        for module_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield _join(module_prefix, name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True):
        """(path, parameter) pairs; a parameter shared by two modules appears once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        return (param for _, param in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        return (buffer for _, buffer in self.named_buffers(recurse=recurse))

    def apply(self, fn) -> "Module":
        """Call fn(module) on every submodule, children first, then on self (e.g. custom init)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ----------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Training mode (the default): Dropout drops, BatchNorm uses and updates batch stats."""
        if not isinstance(mode, bool):
            raise ValueError(f"train: mode is expected to be a bool, got {mode!r}")
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of every parameter (set to None, or to zeros)."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                with no_grad():
                    param.grad.zero_()

    # ---- devices and dtypes -----------------------------------------------------------------
    def to(self, *args, **kwargs) -> "Module":
        """to(device), to(dtype), to(device, dtype): moves every parameter and buffer.

        A dtype applies to floating-point tensors only (num_batches_tracked stays int64).
        Parameters keep their identity: their values are replaced, so an optimizer built
        before the move still holds the right objects.
        """
        device, dtype = parse_to_args(args, kwargs)
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"Module.to only accepts floating point dtypes, got {dtype!r}")

        def convert(tensor: Tensor) -> Tensor:
            if dtype is not None and tensor.dtype.is_floating_point:
                tensor = tensor.to(dtype)
            return tensor.to(device) if device is not None else tensor

        return self._apply(convert)

    def _apply(self, convert) -> "Module":
        with no_grad():
            for module in self.modules():
                for param in module._parameters.values():
                    if param is not None:
                        param.data = convert(param.detach())
                        if param.grad is not None:
                            param.grad = convert(param.grad)
                for name, buffer in module._buffers.items():
                    if buffer is not None:
                        module._buffers[name] = convert(buffer)
        return self

    def float(self) -> "Module":
        return self.to(dtypes.float32)

    def double(self) -> "Module":
        return self.to(dtypes.float64)

    def half(self) -> "Module":
        return self.to(_floating_dtype("float16", "half"))

    def bfloat16(self) -> "Module":
        return self.to(_floating_dtype("bfloat16", "bfloat16"))

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> "Module":
        return self.to("cuda" if device is None else f"cuda:{device}")

    # ---- saving and loading -----------------------------------------------------------------
    def state_dict(self, destination: dict | None = None, prefix: str = "",
                   keep_vars: bool = False) -> dict:
        """Every parameter and persistent buffer by its dotted path, in registration order:
        a module's own tensors first, then each child's. Values are detached (share memory)."""
        destination = {} if destination is None else destination
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param.detach()
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = buffer if keep_vars else buffer.detach()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def _state_slots(self) -> dict:
        """The tensors a state_dict holds, by key: {path: (module, table, name)}."""
        slots = {}
        for path, module in self.named_modules(remove_duplicate=False):
            for name, param in module._parameters.items():
                if param is not None:
                    slots[_join(path, name)] = (module, "_parameters", name)
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent_buffers:
                    slots[_join(path, name)] = (module, "_buffers", name)
        return slots

    def load_state_dict(self, state_dict: Mapping, strict: bool = True):
        """Copy values from `state_dict` into this module's parameters and buffers.

        Every key is checked first (missing and unexpected keys when `strict`, and the shape
        and dtype of every matching key); any problem raises a RuntimeError that names the keys,
        and the module is left exactly as it was. Returns (missing_keys, unexpected_keys).
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict: expected a dict-like state_dict, got "
                            f"{type(state_dict).__name__}")
        slots = self._state_slots()
        missing = [key for key in slots if key not in state_dict]
        unexpected = [key for key in state_dict if key not in slots]
        errors, updates = [], []
        for key, (module, table, name) in slots.items():
            if key not in state_dict:
                continue
            current, value = getattr(module, table)[name], state_dict[key]
            if not isinstance(value, Tensor):
                try:
                    value = factories.tensor(value)  # a 0-d tensor (Tensor(5): 5 elements)
                except (TypeError, ValueError):
                    errors.append(f'While copying "{key}": expected a tensor, got '
                                  f"{type(value).__name__}.")
                    continue
            if tuple(value.shape) != tuple(current.shape):
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{tuple(value.shape)} from checkpoint, the shape in current model "
                              f"is {tuple(current.shape)}.")
            elif value.dtype is not current.dtype:
                errors.append(f"dtype mismatch for {key}: copying a tensor of dtype "
                              f"{value.dtype.name} from checkpoint, the dtype in current model is "
                              f"{current.dtype.name} (convert one of them with .to(dtype)).")
            else:
                updates.append((current, value))
        if strict and unexpected:
            errors.insert(0, "Unexpected key(s) in state_dict: "
                          + ", ".join(f'"{key}"' for key in unexpected) + ". ")
        if strict and missing:
            errors.insert(0, "Missing key(s) in state_dict: "
                          + ", ".join(f'"{key}"' for key in missing) + ". ")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        with no_grad():  # nothing failed: only now is anything changed
            for current, value in updates:
                current.copy_(value)  # in place: parameters keep their identity
        return IncompatibleKeys(missing, unexpected)

    # ---- hooks --------------------------------------------------------------------------------
    def register_forward_pre_hook(self, hook, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> "RemovableHandle":
        """hook(module, args) runs before forward; a returned value replaces args.
        with_kwargs: hook(module, args, kwargs), returning None or (args, kwargs).
        prepend: run it before the hooks already registered."""
        return self._add_hook(self._forward_pre_hooks, hook, prepend, with_kwargs)

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False) -> "RemovableHandle":
        """hook(module, args, output) runs after forward; a returned value replaces output.
        with_kwargs: hook(module, args, kwargs, output). prepend: run it first. always_call:
        run it even when a pre-hook, forward or another hook raises (with output None, before
        the error goes on; an error inside it then is only a warning), as PyTorch does."""
        handle = self._add_hook(self._forward_hooks, hook, prepend, with_kwargs)
        if always_call:
            self._hooks_always_called.add(handle.id)
        return handle

    def _add_hook(self, hooks: dict, hook, prepend: bool, with_kwargs: bool = False
                  ) -> "RemovableHandle":
        handle = RemovableHandle(hooks, hook,
                                 extra=(self._hooks_with_kwargs, self._hooks_always_called))
        if prepend:  # the same dict object (handles hold it): refill it, the new hook first
            others = [(key, value) for key, value in hooks.items() if key != handle.id]
            hooks.clear()
            hooks[handle.id] = hook
            hooks.update(others)
        if with_kwargs:
            self._hooks_with_kwargs.add(handle.id)
        return handle

    def register_full_backward_pre_hook(self, hook, prepend: bool = False) -> "RemovableHandle":
        """hook(module, grad_output) runs during backward when the gradient of the module's
        output is known, before the gradients of its inputs are computed; it may return a new
        grad_output tuple (one entry) to use instead. Pre-hooks run before the full backward
        hooks, which then see the new grad_output. prepend: run it first."""
        return self._add_hook(self._backward_pre_hooks, hook, prepend)

    def register_full_backward_hook(self, hook, prepend: bool = False) -> "RemovableHandle":
        """hook(module, grad_input, grad_output) runs during backward. prepend: run it first.

        grad_output is a 1-tuple: the gradient of the loss with respect to the module's output
        (a single Tensor). grad_input has one entry per positional argument of forward: the
        gradient with respect to that input, or None for an argument that is not a Tensor
        requiring grad. The hook runs once all those input gradients are computed (at once, on
        the output's gradient, when no input requires grad). It may return a new grad_input
        tuple to use instead, for a module with one input that requires grad.
        """
        return self._add_hook(self._backward_hooks, hook, prepend)

    def _call_with_hooks(self, args: tuple, kwargs: dict):
        """Pre-hooks, forward, hooks; on an error, the always_call hooks that have not run yet
        (PyTorch's _call_impl: `called` holds the ids of those that ran)."""
        called, state = set(), {"args": args, "kwargs": kwargs}
        try:
            return self._run_hooks_and_forward(state, called)
        except Exception:
            for key, hook in list(self._forward_hooks.items()):
                if key not in self._hooks_always_called or key in called:
                    continue
                try:
                    if key in self._hooks_with_kwargs:
                        hook(self, state["args"], state["kwargs"], None)
                    else:
                        hook(self, state["args"], None)
                except Exception as error:  # the first error is the one to see
                    warnings.warn(f"module forward hook with ``always_call=True`` raised an "
                                  f"exception that was silenced as another error was raised "
                                  f"in forward: {error}", stacklevel=2)
            raise

    def _run_hooks_and_forward(self, state: dict, called: set):
        args, kwargs = state["args"], state["kwargs"]
        for key, hook in list(self._forward_pre_hooks.items()):
            if key in self._hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError("forward pre-hook must return None or a tuple of "
                                           f"(new_args, new_kwargs), but got {result}.")
                    args, kwargs = result
                continue
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
            state["args"], state["kwargs"] = args, kwargs
        backward = None
        if (self._backward_hooks or self._backward_pre_hooks) and is_grad_enabled():
            backward = _BackwardHooks(self, args)
            args = backward.tap_inputs(args)
        output = self.forward(*args, **kwargs)
        for key, hook in list(self._forward_hooks.items()):
            if key in self._hooks_always_called:
                called.add(key)
            if key in self._hooks_with_kwargs:
                result = hook(self, args, kwargs, output)
            else:
                result = hook(self, args, output)
            if result is not None:
                output = result
        if backward is not None:
            backward.tap_output(output)
        return output

    # ---- printing ----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The layer's settings inside its repr's parentheses; layers override it."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _indent(repr(module), 2)
                       for name, module in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{type(self).__name__}({body})"


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns."""

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


class RemovableHandle:
    """Returned by the register_*_hook methods: `handle.remove()` unregisters the hook."""

    _ids = itertools.count()

    def __init__(self, hooks: dict, hook, extra: tuple = ()) -> None:
        self.hooks, self.id, self.extra = hooks, next(RemovableHandle._ids), extra
        hooks[self.id] = hook

    def remove(self) -> None:
        self.hooks.pop(self.id, None)
        for ids in self.extra:  # the sets that mark the hook (with_kwargs, always_call)
            ids.discard(self.id)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class _BackwardHooks:
    """One forward call's worth of full backward hooks: the output's gradient is caught by a
    tensor hook, each input's by a GradTap placed between the caller and forward."""

    def __init__(self, module: Module, args: tuple) -> None:
        self.module = module
        self.watched = [i for i, arg in enumerate(args)
                        if isinstance(arg, Tensor) and arg.requires_grad]
        self._reset(len(args))

    def _reset(self, count: int) -> None:
        self.grad_input, self.grad_output, self.waiting = [None] * count, None, set(self.watched)

    def tap_inputs(self, args: tuple) -> tuple:
        args = list(args)
        for i in self.watched:
            args[i] = GradTap.apply(args[i], callback=lambda grad, i=i: self._on_input(i, grad))
        return tuple(args)

    def tap_output(self, output) -> None:
        if not isinstance(output, Tensor):
            raise TypeError(f"register_full_backward_hook: {type(self.module).__name__}.forward "
                            f"must return a single Tensor, got {type(output).__name__}")
        if output.requires_grad:
            output.register_hook(self._on_output)

    def _on_output(self, grad):
        replaced = None
        for hook in list(self.module._backward_pre_hooks.values()):
            result = hook(self.module, (grad,))
            if result is not None:
                if not isinstance(result, (tuple, list)) or len(result) != 1:
                    raise RuntimeError(f"full backward pre-hook must return None or a "
                                       f"grad_output of 1 entry, got {result!r}")
                grad = replaced = result[0]
        self.grad_output = grad
        if not self.watched:
            self._run()
        return replaced  # a tensor hook's return value replaces the gradient

    def _on_input(self, i: int, grad):
        self.grad_input[i] = grad
        self.waiting.discard(i)
        if self.waiting:
            return None
        return self._run()[i]

    def _run(self) -> list:
        grad_input = list(self.grad_input)
        for hook in list(self.module._backward_hooks.values()):
            result = hook(self.module, tuple(grad_input), (self.grad_output,))
            if result is not None:
                if len(self.watched) > 1:
                    raise RuntimeError("full backward hook: replacing grad_input is supported "
                                       "for modules with one input that requires grad")
                grad_input = list(result)
        self._reset(len(grad_input))
        return grad_input


def _floating_dtype(name: str, method: str):
    """The dtype named `name`, found when it is called: half() and bfloat16() work as soon as
    edugrad.dtypes defines the dtype, with no change here."""
    dtype = getattr(dtypes, name, None)
    if dtype is None:
        raise TypeError(f"Module.{method}: edugrad has no {name} dtype in this version")
    return dtype


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _indent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    return "\n".join(lines[:1] + [" " * spaces + line for line in lines[1:]])
