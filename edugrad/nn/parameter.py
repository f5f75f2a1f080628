"""Parameter: a Tensor that a Module learns.

Layer: nn (top). Imports edugrad.tensor only.

A Parameter is an ordinary leaf Tensor with requires_grad=True whose type tells a Module
"register me": assigning one to a module attribute (`self.weight = Parameter(...)`) puts it
in `module.parameters()`, where optimizers find it.

    >>> Parameter(edugrad.ones(2))
    Parameter containing:
    tensor([1., 1.], requires_grad=True)
"""

from __future__ import annotations

from edugrad.tensor import Tensor


class Parameter(Tensor):
    """A learnable Tensor. It shares `data`'s values (nothing is copied) and starts a new graph."""

    __slots__ = ()

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        if data is None:
            data = Tensor([])
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: data must be a Tensor, got {type(data).__name__}")
        super().__init__(data._data)
        self.requires_grad_(requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
