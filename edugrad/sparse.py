"""Sparse COO tensors: the piece graph programs use (torch.sparse_coo_tensor, x.to_sparse(),
sparse @ dense, torch.spmm, dense + sparse), and torch.sparse.mm.

Layer: Tensor. Imports edugrad.size and edugrad.shape (cat, stack), never tensor.py: every
tensor it makes comes from a tensor it holds (`values.new_zeros`, `indices.unique`, ...), so
tensor.py and math.py can import it (for Tensor.to_sparse and for handing `dense + sparse`
over) without a cycle. The factory
`edugrad.sparse_coo_tensor`, which turns user data into tensors, is in factories.py.

A sparse COO ("coordinate") tensor keeps only some entries; every other entry is zero:

    indices   int64, (ndim, nnz)   the coordinates of each stored entry, one column per entry
    values    (nnz,)               the entries

    sparse_coo_tensor([[0, 1, 1], [2, 0, 2]], [3., 4., 5.], (2, 3))  is  [[0, 0, 3],
                                                                          [4, 0, 5]]

Entries may repeat a coordinate ("uncoalesced"); repeats add up, as in PyTorch. coalesce()
sorts the coordinates (row-major) and sums the repeats.

sparse @ dense, the product graph networks are made of: out[i] = sum over stored (i, j, v) of
v * dense[j]. Row j of dense is gathered once per stored entry (index_select), scaled by the
entry's value, and each scaled row is added into output row i (index_add). Both are
differentiable already, so the gradient reaches dense and values with no Function of its own:
dense's rows get back what each entry read, times v; value v gets dense[j] . grad[i].

Not here (PyTorch has them): hybrid tensors (values with dims of their own), sparse gradients
(a sparse leaf with .grad), sparse @ sparse, the CSR/CSC layouts and elementwise ops on sparse
tensors. Each raises a clear error; to_dense() gives an ordinary tensor for the rest.
"""

from __future__ import annotations

import math

from edugrad.shape import cat, stack
from edugrad.size import Size

sparse_coo = "sparse_coo"  # the layout's name (torch.sparse_coo); an ordinary tensor's is strided
strided = "strided"


class SparseCOOTensor:
    """A sparse tensor of `size` holding `values` at the columns of `indices` (see the module
    docstring). Made by edugrad.sparse_coo_tensor or Tensor.to_sparse, which check their
    arguments; this constructor trusts them."""

    is_sparse = True
    layout = sparse_coo

    def __init__(self, indices, values, size: tuple, coalesced: bool = False) -> None:
        self._stored_indices, self._stored_values = indices, values
        self._size = Size(size)
        self._coalesced = coalesced

    # ---- what it is -------------------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return self._size

    def size(self, dim: int | None = None):
        return self._size if dim is None else self._size[dim]

    def dim(self) -> int:
        return len(self._size)

    ndim = property(dim)

    @property
    def dtype(self):
        return self._stored_values.dtype

    @property
    def device(self):
        return self._stored_values.device

    @property
    def requires_grad(self) -> bool:
        return self._stored_values.requires_grad

    def numel(self) -> int:
        return math.prod(self._size)

    def __len__(self) -> int:
        return self._size[0]

    def _nnz(self) -> int:
        return self._stored_values.shape[0]

    def _indices(self):
        return self._stored_indices

    def _values(self):
        return self._stored_values

    def is_coalesced(self) -> bool:
        return self._coalesced

    def indices(self):
        self._check_coalesced("indices")
        return self._stored_indices

    def values(self):
        self._check_coalesced("values")
        return self._stored_values

    def _check_coalesced(self, what: str) -> None:
        if not self._coalesced:
            raise RuntimeError(f"Cannot get {what} on an uncoalesced tensor, please call "
                               ".coalesce() first")

    def __repr__(self) -> str:
        pad = " " * len("tensor(indices=")
        indices = repr(self._stored_indices).replace("\n", "\n" + pad)
        values = repr(self._stored_values).replace("\n", "\n" + " " * len("       values="))
        return (f"tensor(indices={indices},\n       values={values},\n"
                f"       size={tuple(self._size)}, nnz={self._nnz()}, layout=edugrad.sparse_coo)")

    # ---- conversions ------------------------------------------------------------------------
    def _linear_indices(self):
        """Each entry's place in the row-major flattened tensor: sum of index * stride."""
        linear, stride = None, 1
        for dim in reversed(range(self.ndim)):
            term = self._stored_indices[dim] * stride
            linear = term if linear is None else linear + term
            stride *= self._size[dim]
        return linear

    def to_dense(self):
        """An ordinary tensor of the same values, the repeats added up (differentiable in
        values)."""
        flat = self._stored_values.new_zeros(self.numel())
        return flat.index_add(0, self._linear_indices(), self._stored_values).reshape(self._size)

    def coalesce(self) -> "SparseCOOTensor":
        """The same tensor with its coordinates sorted row-major and each one stored once."""
        if self._coalesced:
            return self
        linear, place = self._linear_indices().unique(return_inverse=True)
        values = self._stored_values.new_zeros(linear.shape[0]).index_add(
            0, place, self._stored_values)
        rows = []
        for size in reversed(self._size):  # unflatten: the last dim varies fastest
            rows.append(linear % size)
            linear = linear // size
        indices = stack(rows[::-1])
        return SparseCOOTensor(indices, values, self._size, coalesced=True)

    def to_sparse(self) -> "SparseCOOTensor":
        return self

    def to(self, *args, **kwargs) -> "SparseCOOTensor":
        """The values converted as values.to(...) would be (dtype, device); the indices follow
        to the new device."""
        values = self._stored_values.to(*args, **kwargs)
        indices = self._stored_indices.to(values.device)
        return SparseCOOTensor(indices, values, self._size, self._coalesced)

    def float(self) -> "SparseCOOTensor":
        return self.to(self._stored_values.float().dtype)

    def double(self) -> "SparseCOOTensor":
        return self.to(self._stored_values.double().dtype)

    def detach(self) -> "SparseCOOTensor":
        return SparseCOOTensor(self._stored_indices, self._stored_values.detach(), self._size,
                               self._coalesced)

    def t(self) -> "SparseCOOTensor":
        """The transpose of a 2-D sparse tensor: each entry's (row, column) swapped."""
        self._check_matrix("t")
        indices = self._stored_indices.flip(0)
        return SparseCOOTensor(indices, self._stored_values, self._size[::-1])

    # ---- arithmetic -------------------------------------------------------------------------
    def mm(self, mat2):
        """sparse (n, k) @ dense (k, m) -> dense (n, m) (see the module docstring)."""
        self._check_matrix("mm")
        if getattr(mat2, "is_sparse", False):
            raise NotImplementedError("mm: sparse @ sparse is not implemented (convert one with "
                                      ".to_dense())")
        if mat2.ndim != 2 or mat2.shape[0] != self._size[1]:
            raise RuntimeError(f"mm: sparse shape {tuple(self._size)} and dense shape "
                               f"{tuple(mat2.shape)} cannot be multiplied (a 2-D dense with "
                               f"{self._size[1]} rows is needed)")
        if mat2.dtype is not self.dtype:
            raise RuntimeError(f"mm: expected sparse and dense of one dtype, got "
                               f"{self.dtype.name} and {mat2.dtype.name}")
        rows, columns = self._stored_indices[0], self._stored_indices[1]
        read = mat2.index_select(0, columns) * self._stored_values.unsqueeze(1)
        return mat2.new_zeros(self._size[0], mat2.shape[1]).index_add(0, rows, read)

    def __matmul__(self, other):
        return self.mm(other)

    def __rmatmul__(self, other):
        """dense @ sparse = (sparse^T @ dense^T)^T, an ordinary tensor as in PyTorch."""
        self._check_matrix("mm")
        if other.ndim != 2:
            raise RuntimeError(f"mm: dense shape {tuple(other.shape)} and sparse shape "
                               f"{tuple(self._size)}: both must be 2-D")
        return self.t().mm(other.t()).t()

    def __radd__(self, other):
        """dense + sparse: an ordinary tensor, as in PyTorch (dtypes promote as for two dense)."""
        return other + self.to_dense()

    def __add__(self, other):
        if not getattr(other, "is_sparse", False):
            raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) "
                               "instead.")
        if tuple(other.shape) != tuple(self._size):
            raise RuntimeError(f"add: sparse shapes {tuple(self._size)} and "
                               f"{tuple(other.shape)} differ")
        # the two lists of entries, one after the other: repeats add up when read
        indices = cat([self._stored_indices, other._stored_indices], 1)
        values = cat([self._stored_values, other._stored_values.to(self.dtype)])
        return SparseCOOTensor(indices, values, self._size)

    def _check_matrix(self, op: str) -> None:
        if self.ndim != 2:
            raise RuntimeError(f"{op}: expected a 2-D sparse tensor, got shape "
                               f"{tuple(self._size)}")


def mm(mat1, mat2):
    """torch.sparse.mm: sparse @ dense -> dense (a dense first argument is an ordinary mm)."""
    return mat1.mm(mat2)


def dense_to_sparse(tensor) -> SparseCOOTensor:
    """Tensor.to_sparse: the non-zero entries of `tensor`, coalesced (row-major order). The
    values are read by indexing, so the gradient flows back to the dense tensor."""
    if tensor.ndim == 0:
        raise RuntimeError("to_sparse: a 0-d tensor has no coordinates to keep")
    positions = tensor.nonzero()  # (nnz, ndim), read on the host: nnz depends on the values
    indices = positions.t()
    values = tensor[tuple(indices.unbind(0))]
    return SparseCOOTensor(indices, values, tuple(tensor.shape), coalesced=True)
