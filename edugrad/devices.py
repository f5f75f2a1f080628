"""edugrad.device: a device name with PyTorch's `.type` and `.index`.

Layer: spec (bottom), beside dtypes.py. Imports nothing of edugrad.

A device is a string ("cpu", "cuda:0", "python", a learner's backend name) that also answers
PyTorch's questions about itself, so both styles of code work unchanged:

    >>> d = edugrad.device("cuda", 0)
    >>> d.type, d.index, str(d)
    ('cuda', 0, 'cuda:0')
    >>> edugrad.zeros(2, device=d).device == "cuda:0"    # (on a machine with a GPU)
    True
"""

from __future__ import annotations


class device(str):  # noqa: N801  (PyTorch's name)
    """device("cuda:1"), device("cuda", 1) or device("cpu"): a str with .type and .index."""

    __slots__ = ("type", "index")

    def __new__(cls, type_or_name, index: int | None = None):
        if isinstance(type_or_name, device) and index is None:
            return type_or_name
        name = str(type_or_name)
        kind, _, number = name.partition(":")
        if number:
            if index is not None:
                raise ValueError(f"device: type {name!r} already has an index; got {index} too")
            if not number.isdigit():
                raise RuntimeError(f"device: invalid device string {name!r}")
            index = int(number)
        if not kind or (index is not None and (not isinstance(index, int) or index < 0)):
            raise RuntimeError(f"device: invalid device {type_or_name!r} (index {index!r})")
        self = super().__new__(cls, kind if index is None else f"{kind}:{index}")
        self.type, self.index = kind, index
        return self

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type={self.type!r})"
        return f"device(type={self.type!r}, index={self.index})"

    def __reduce__(self):
        return device, (str(self),)
