"""edugrad.Size: the type of `tensor.shape` and `tensor.size()`, as torch.Size.

Layer: Tensor (top), but it imports nothing of edugrad: a tuple of ints with numel().

It is a tuple: it compares equal to one, unpacks, indexes, slices and hashes like one. (A
slice is a plain tuple, where PyTorch's is a Size: overriding __getitem__ would slow every
`x.shape[0]`, which the library reads on its hot paths.) `print(x.shape)` and `repr` show `edugrad.Size([2, 3])` as PyTorch shows
`torch.Size([2, 3])`; inside f-strings and format() it reads as the plain tuple `(2, 3)`, which
keeps edugrad's error messages ("matmul: shapes (3, 4) and (5, 2) ...") as they were.
"""

from __future__ import annotations


class Size(tuple):
    """A shape: a tuple of ints, with numel()."""

    __slots__ = ()

    def numel(self) -> int:
        """The number of elements of a tensor of this shape: the product of the sizes."""
        count = 1
        for size in self:
            count *= size
        return count

    def __add__(self, other) -> "Size":
        return Size(tuple.__add__(self, tuple(other)))

    def __repr__(self) -> str:
        return f"edugrad.Size({list(self)})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(tuple.__repr__(self), spec)

    def __reduce__(self):  # pickles (DataLoader workers) as a Size
        return (Size, (tuple(self),))
