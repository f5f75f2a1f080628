"""edugrad/sparse.py: sparse COO tensors, checked against PyTorch, finite differences and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edugrad
from edugrad.autograd import gradcheck


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="PyTorch is the oracle for sparse tensors")


def entries(seed: int, rows: int, cols: int, nnz: int):
    """Coordinates (repeats included) and float64 values of a random sparse matrix."""
    rng = np.random.default_rng(seed)
    indices = np.stack([rng.integers(0, rows, nnz), rng.integers(0, cols, nnz)])
    return indices, rng.standard_normal(nnz)


def test_hand_computed_sparse_tensor_and_products():
    s = edugrad.sparse_coo_tensor([[0, 1, 1], [2, 0, 2]], [3.0, 4.0, 5.0], (2, 3))
    assert s.shape == (2, 3) and s.dtype is edugrad.float32 and s.is_sparse and s._nnz() == 3
    assert s.to_dense().tolist() == [[0, 0, 3], [4, 0, 5]]
    dense = edugrad.tensor([[1.0], [10.0], [100.0]])
    assert (s @ dense).tolist() == [[300.0], [504.0]]  # rows of dense, weighted by the entries
    assert edugrad.spmm(s, dense).tolist() == [[300.0], [504.0]]
    assert (edugrad.tensor([[1.0, 2.0]]) @ s).tolist() == [[8.0, 0.0, 13.0]]
    assert (edugrad.ones(2, 3) + s).tolist() == [[1, 1, 4], [5, 1, 6]]
    repeated = edugrad.sparse_coo_tensor([[0, 0], [1, 1]], [1.0, 2.0])  # size inferred: (1, 2)
    assert repeated.shape == (1, 2) and repeated.to_dense().tolist() == [[0.0, 3.0]]
    merged = repeated.coalesce()
    assert merged.is_coalesced() and merged.indices().tolist() == [[0], [1]]
    assert merged.values().tolist() == [3.0]


def test_gradients_reach_the_dense_factor_and_the_values_by_hand():
    values = edugrad.tensor([2.0, 3.0], requires_grad=True)
    dense = edugrad.tensor([[1.0, 2.0], [4.0, 8.0]], requires_grad=True)
    s = edugrad.sparse_coo_tensor([[0, 1], [1, 1]], values, (2, 2))
    (s @ dense).sum().backward()
    # out[0] = 2 * dense[1], out[1] = 3 * dense[1]: row 1 of dense is read twice, row 0 never
    assert dense.grad.tolist() == [[0.0, 0.0], [5.0, 5.0]]
    assert values.grad.tolist() == [12.0, 12.0]  # each value gets dense[1] . (1, 1)


def test_sparse_products_pass_gradcheck():
    indices, values = entries(0, 4, 3, 7)
    dense = edugrad.tensor(np.random.default_rng(1).standard_normal((3, 2)), requires_grad=True)
    weights = edugrad.tensor(values, requires_grad=True)
    left = edugrad.tensor(np.random.default_rng(2).standard_normal((2, 4)), requires_grad=True)

    def products(weights, dense, left):
        s = edugrad.sparse_coo_tensor(indices, weights, (4, 3))
        return (s @ dense).sum() + (left @ s).square().sum() + s.coalesce().to_dense().sum()

    assert gradcheck(products, [weights, dense, left])


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 5), cols=st.integers(1, 5), nnz=st.integers(0, 9),
       width=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_products_and_sums_match_torch(rows, cols, nnz, width, seed):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for sparse tensors")
    indices, values = entries(seed, rows, cols, nnz)
    rng = np.random.default_rng(seed + 1)
    right, left, base = (rng.standard_normal(shape) for shape in
                         ((cols, width), (width, rows), (rows, cols)))
    ours_values = edugrad.tensor(values, requires_grad=True)
    theirs_values = torch.tensor(values, requires_grad=True)
    ours_right = edugrad.tensor(right, requires_grad=True)
    theirs_right = torch.tensor(right, requires_grad=True)
    ours = edugrad.sparse_coo_tensor(indices, ours_values, (rows, cols))
    theirs = torch.sparse_coo_tensor(torch.tensor(indices), theirs_values, (rows, cols))
    results = [(ours @ ours_right, torch.sparse.mm(theirs, theirs_right)),
               (edugrad.tensor(left) @ ours, torch.tensor(left) @ theirs),
               (edugrad.tensor(base) + ours, torch.tensor(base) + theirs),
               (ours.to_dense(), theirs.to_dense())]
    for mine, reference in results:
        assert tuple(mine.shape) == tuple(reference.shape) and mine.dtype is edugrad.float64
        np.testing.assert_allclose(mine.detach().numpy(), reference.detach().numpy(), atol=1e-12)
    sum(m.sum() for m, _ in results).backward()
    sum(r.sum() for _, r in results).backward()
    np.testing.assert_allclose(ours_values.grad.numpy(), theirs_values.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours_right.grad.numpy(), theirs_right.grad.numpy(), atol=1e-12)
    merged, reference = ours.coalesce(), theirs.coalesce()
    assert merged.indices().tolist() == reference.indices().tolist()
    np.testing.assert_allclose(merged.values().detach().numpy(), reference.values().detach().numpy())


def test_to_sparse_and_the_cora_recipe_match_torch(torch):
    """gcn/main.py's load_cora: diag(...).to_sparse() @ dense, eye + sparse int64, sparse @ dense
    @ sparse, then to_sparse() of the dense result."""
    rng = np.random.default_rng(3)
    features = (rng.random((5, 4)) < 0.4).astype(np.float32)
    edges = rng.integers(0, 5, (2, 7)).astype(np.int32)
    out = []
    for lib in (edugrad, torch):
        x = lib.tensor(features)
        scale = lib.diag(1 / (x.sum(1) + 1)).to_sparse()
        adj = lib.eye(5) + lib.sparse_coo_tensor(edges, lib.ones(7), (5, 5), dtype=lib.int64)
        degree = lib.diag(lib.sqrt(1 / lib.sum(adj, dim=1))).to_sparse()
        adj = (degree @ adj @ degree).to_sparse()
        out.append([(scale @ x).numpy(), adj.to_dense().numpy(), adj.indices().numpy(),
                    str(adj.dtype), adj.layout == lib.sparse_coo])
    for mine, theirs in zip(*out):
        if isinstance(mine, np.ndarray):
            assert mine.shape == theirs.shape and mine.dtype == theirs.dtype
            np.testing.assert_allclose(mine, theirs, rtol=1e-6)
        elif isinstance(mine, str):
            assert mine.split(".")[-1] == theirs.split(".")[-1]
        else:
            assert mine is theirs is True


def test_to_sparse_keeps_the_gradient_path_to_the_dense_tensor():
    x = edugrad.tensor([[0.0, 2.0], [3.0, 0.0]], requires_grad=True)
    s = x.to_sparse()
    assert s.is_coalesced() and s.indices().tolist() == [[0, 1], [1, 0]]
    (s @ edugrad.ones(2, 1)).sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0], [1.0, 0.0]]  # the zeros were not stored


def test_repr_and_conversions():
    s = edugrad.sparse_coo_tensor([[0], [1]], [2], (1, 2))
    assert s.dtype is edugrad.int64 and "nnz=1" in repr(s) and "layout=edugrad.sparse_coo" in repr(s)
    assert s.to(edugrad.float64).dtype is edugrad.float64 and s.float().dtype is edugrad.float32
    assert s.t().shape == (2, 1) and s.t().to_dense().tolist() == [[0], [2]]
    assert edugrad.zeros(2).is_sparse is False and edugrad.zeros(2).layout == edugrad.strided
    assert edugrad.sparse.mm(s.float(), edugrad.ones(2, 1)).tolist() == [[2.0]]


@pytest.mark.parametrize("call, error, words", [
    (lambda: edugrad.sparse_coo_tensor([[0, 3]], [1.0, 2.0], (3,)), RuntimeError,
     r"sparse_coo_tensor: index 3 is out of bounds for dim 0 of size \(3,\)"),
    (lambda: edugrad.sparse_coo_tensor([[0, 1]], [1.0], (3,)), RuntimeError,
     r"indices of shape \(1, 2\) and values of shape \(1,\) disagree .* \(2 != 1\)"),
    (lambda: edugrad.sparse_coo_tensor([[0.5]], [1.0]), RuntimeError, "must be an int64 tensor"),
    (lambda: edugrad.sparse_coo_tensor([[0]], [[1.0, 2.0]]), NotImplementedError, "hybrid"),
    (lambda: edugrad.sparse_coo_tensor([[0], [0]], [1.0], (2,)), RuntimeError,
     r"give 2 coordinates per entry, but size \(2,\) has 1 dims"),
    (lambda: edugrad.sparse_coo_tensor([[0], [0]], [1.0], (2, 2)) @ edugrad.ones(3, 1),
     RuntimeError, r"mm: sparse shape \(2, 2\) and dense shape \(3, 1\) cannot be multiplied"),
    (lambda: edugrad.sparse_coo_tensor([[0], [0]], [1.0], (2, 2)) @ edugrad.ones(2, 1).double(),
     RuntimeError, "mm: expected sparse and dense of one dtype, got float32 and float64"),
    (lambda: edugrad.sparse_coo_tensor([[0], [0]], [1.0], (2, 2)) + edugrad.ones(2, 2),
     RuntimeError, r"add\(sparse, dense\) is not supported. Use add\(dense, sparse\) instead"),
    (lambda: edugrad.sparse_coo_tensor([[0], [0]], [1.0], (2, 2)).values(), RuntimeError,
     "Cannot get values on an uncoalesced tensor"),
    (lambda: edugrad.tensor(1.0).to_sparse(), RuntimeError, "to_sparse: a 0-d tensor"),
])
def test_errors_name_the_op_and_shapes(call, error, words):
    with pytest.raises(error, match=words):
        call()
