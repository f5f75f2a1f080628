"""Views alias their base, as in PyTorch (edugrad/views.py): a table of view cases checked
against torch, random chains of view ops from hypothesis, autograd through in-place ops on
views, and the errors PyTorch raises.

Each case is `make(lib, x) -> view`, run with lib = edugrad and lib = torch on the same
values; then a write through the view must show in the base, a write to the base must show in
the view, and `_base`, `is_contiguous()`, `stride()` and `storage_offset()` must agree.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edugrad
from edugrad import nn

BACKENDS = ["cpu", "python"]


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is the oracle for view semantics "
                                               "(pip install torch==2.13.0)")


def _base_values():
    return np.arange(24, dtype=np.float64).reshape(2, 3, 4)


# name, make(lib, x) -> the view (or copy) of the (2, 3, 4) tensor x
CASES = [
    ("view", lambda lib, x: x.view(6, 4)),
    ("view -1", lambda lib, x: x.view(-1)),
    ("reshape", lambda lib, x: x.reshape(4, 6)),
    ("reshape same shape", lambda lib, x: x.reshape(2, 3, 4)),
    ("view_as", lambda lib, x: x.view_as(lib.zeros(3, 8))),
    ("int index", lambda lib, x: x[1]),
    ("two ints", lambda lib, x: x[1, 2]),
    ("slice", lambda lib, x: x[:, 1:3]),
    ("column", lambda lib, x: x[:, 1]),
    ("step", lambda lib, x: x[0, ::2]),
    ("step and start", lambda lib, x: x[:, 1::2, 1:]),
    ("ellipsis", lambda lib, x: x[..., 2]),
    ("all", lambda lib, x: x[...]),
    ("None", lambda lib, x: x[:, None, 1]),
    ("index of index", lambda lib, x: x[1][2]),
    ("select", lambda lib, x: x.select(1, 2)),
    ("narrow", lambda lib, x: x.narrow(2, 1, 2)),
    ("transpose", lambda lib, x: x.transpose(0, 2)),
    ("swapaxes", lambda lib, x: x.swapaxes(1, 2)),
    ("permute", lambda lib, x: x.permute(2, 0, 1)),
    ("t", lambda lib, x: x[0].t()),
    ("T", lambda lib, x: x[1].T),
    ("mT", lambda lib, x: x.mT),
    ("movedim", lambda lib, x: x.movedim(0, 2)),
    ("unsqueeze", lambda lib, x: x.unsqueeze(1)),
    ("squeeze", lambda lib, x: x[:, :1].squeeze(1)),
    ("squeeze all", lambda lib, x: x[:1, :, :1].squeeze()),
    ("unflatten", lambda lib, x: x.unflatten(2, (2, 2))),
    ("flatten", lambda lib, x: x.flatten(1)),
    ("split", lambda lib, x: x.split(1, dim=1)[1]),
    ("split sizes", lambda lib, x: x.split([1, 3], dim=2)[1]),
    ("chunk", lambda lib, x: x.chunk(2, dim=2)[1]),
    ("unbind", lambda lib, x: x.unbind(1)[2]),
    ("detach", lambda lib, x: x.detach()),
    ("data", lambda lib, x: x.data),
    ("detach then slice", lambda lib, x: x.detach()[:, 1]),
    ("transpose then slice", lambda lib, x: x.transpose(0, 1)[1:]),
    ("slice then view", lambda lib, x: x[1].view(12)),
    ("column then unsqueeze", lambda lib, x: x[:, :, 1].unsqueeze(0)),
    ("expand", lambda lib, x: x[:, :1].expand(2, 3, 4)),
    ("expand same shape", lambda lib, x: x.expand(2, 3, 4)),
    # copies, not views: a write must not reach x
    ("reshape of a transpose (a copy)", lambda lib, x: x.transpose(0, 1).reshape(-1)),
    ("flatten of a transpose (a copy)", lambda lib, x: x.transpose(1, 2).flatten()),
    ("contiguous of a transpose (a copy)", lambda lib, x: x.transpose(0, 1).contiguous()),
    ("contiguous (the same tensor)", lambda lib, x: x.contiguous()),
    ("clone", lambda lib, x: x.clone()),
    ("advanced index (a copy)", lambda lib, x: x[:, [0, 2]]),
    ("mask (a copy)", lambda lib, x: x[x > 10]),
    ("repeat (a copy)", lambda lib, x: x.repeat(1, 1, 1)),
]


def _layout(lib, view, x):
    return {
        "shape": tuple(view.shape),
        "is base": view._base is x,
        "has base": view._base is not None,
        "same object": view is x,
        "contiguous": view.is_contiguous(),
        "stride": tuple(view.stride()),
        "offset": view.storage_offset(),
    }


def _write(view):
    """A write through the view; None when PyTorch refuses it (we must refuse it too)."""
    try:
        view.add_(100)
        return None
    except RuntimeError as error:
        return error


@pytest.mark.parametrize("device", BACKENDS)
@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_view_case_against_torch(name, make, device):
    torch = _torch()
    tx = torch.tensor(_base_values())
    ex = edugrad.tensor(_base_values(), device=device)
    tv, ev = make(torch, tx), make(edugrad, ex)
    assert _layout(edugrad, ev, ex) == _layout(torch, tv, tx)
    np.testing.assert_array_equal(ev.numpy(), tv.numpy())

    torch_refused = _write(tv)
    ours_refused = _write(ev)
    assert (ours_refused is None) == (torch_refused is None), (torch_refused, ours_refused)
    if torch_refused is not None:
        assert "memory location" in str(ours_refused)
    np.testing.assert_array_equal(ex.numpy(), tx.numpy())  # the write reached x, or not
    np.testing.assert_array_equal(ev.numpy(), tv.numpy())

    tx.mul_(-1)
    ex.mul_(-1)
    np.testing.assert_array_equal(ev.numpy(), tv.numpy())  # x's write reached the view, or not
    assert (ev._version == ex._version) == (tv._version == tx._version)


# PyTorch refuses in-place ops on the outputs of split/chunk/unbind when grad is on; edugrad
# allows them, and its gradients must equal those of the same view made by narrow/select
SINGLE_VIEW = {
    "split": lambda lib, x: x.narrow(1, 1, 1),
    "split sizes": lambda lib, x: x.narrow(2, 1, 3),
    "chunk": lambda lib, x: x.narrow(2, 2, 2),
    "unbind": lambda lib, x: x.select(1, 2),
}


@pytest.mark.parametrize("name,make", [c for c in CASES if c[0] not in ("expand",)],
                         ids=[c[0] for c in CASES if c[0] not in ("expand",)])
def test_gradient_through_an_in_place_op_on_a_view_matches_torch(name, make):
    torch = _torch()
    rng = np.random.default_rng(0)
    start, weights = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    grads = []
    for lib in (torch, edugrad):
        a = lib.tensor(start, requires_grad=True)
        b = a * 1
        view = (SINGLE_VIEW.get(name, make) if lib is torch else make)(lib, b)
        if name == "mask (a copy)":
            view = make(lib, b.detach())  # the mask's shape depends on the data
        view.mul_(3)
        view.add_(b.sum())  # a write that reads the base after the first write
        ((b * lib.tensor(weights)).sum() + (view * view).sum()).backward()
        grads.append(a.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-12)


def test_hand_computed_gradient_of_a_row_doubled_in_place():
    a = edugrad.ones(2, 2, requires_grad=True)
    b = a * 1
    b[0].mul_(2)
    b.sum().backward()
    assert a.grad.tolist() == [[2.0, 2.0], [1.0, 1.0]]


def test_hand_computed_gradient_of_setitem_through_a_view():
    # b = [a0, a1, a2]; b[1:] *= b[0] (as a view) -> sum = a0 + a1 a0 + a2 a0
    a = edugrad.tensor([2.0, 3.0, 5.0], requires_grad=True)
    b = a * 1
    tail = b[1:]
    tail.mul_(b[0].detach() * 0 + a[0])
    b.sum().backward()
    assert a.grad.tolist() == [1.0 + 3.0 + 5.0, 2.0, 2.0]


def test_gradcheck_through_writes_on_views():
    def fn(a, c):
        b = a * 1
        b[:, 1] = c * 3                   # setitem of a column
        b.t()[0].mul_(b[1, 2].clone())    # a write through a transposed row
        rows = b.view(-1)[2:5]
        rows.add_(c.sin() * b[0, 0])      # a write through a view of a view
        return b * b

    a = edugrad.tensor(np.random.default_rng(1).standard_normal((3, 3)), requires_grad=True)
    c = edugrad.tensor(np.random.default_rng(2).standard_normal(3), requires_grad=True)
    assert edugrad.autograd.gradcheck(fn, [a, c])
    assert edugrad.autograd.gradgradcheck(fn, [a, c])


# ---- random chains of view ops ---------------------------------------------------------------
@st.composite
def view_chains(draw):
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    ops = []
    current = list(shape)
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["slice", "permute", "unsqueeze", "select", "flatten",
                                     "squeeze", "view"]))
        if kind == "slice" and current:
            dim = draw(st.integers(0, len(current) - 1))
            start = draw(st.integers(0, current[dim] - 1))
            step = draw(st.integers(1, 3))
            ops.append(("slice", dim, start, step))
            current[dim] = len(range(start, current[dim], step))
        elif kind == "permute" and current:
            order = draw(st.permutations(range(len(current))))
            ops.append(("permute", tuple(order)))
            current = [current[d] for d in order]
        elif kind == "unsqueeze" and len(current) < 5:
            dim = draw(st.integers(0, len(current)))
            ops.append(("unsqueeze", dim))
            current.insert(dim, 1)
        elif kind == "select" and len(current) > 1:
            dim = draw(st.integers(0, len(current) - 1))
            ops.append(("select", dim, draw(st.integers(0, current[dim] - 1))))
            current.pop(dim)
        elif kind == "squeeze":
            ops.append(("squeeze",))
            current = [s for s in current if s != 1]
        elif kind in ("flatten", "view"):
            ops.append((kind,))  # flatten: reshape, a copy if no view can do it; view: may fail
            current = [int(np.prod(current))]
    return shape, ops


def _apply_chain(lib, x, ops):
    for op in ops:
        if op[0] == "slice":
            _, dim, start, step = op
            x = x[(slice(None),) * dim + (slice(start, None, step),)]
        elif op[0] == "permute":
            x = x.permute(*op[1])
        elif op[0] == "unsqueeze":
            x = x.unsqueeze(op[1])
        elif op[0] == "select":
            x = x.select(op[1], op[2])
        elif op[0] == "squeeze":
            x = x.squeeze()
        elif op[0] == "flatten":
            x = x.reshape(-1)
        else:
            x = x.view(-1)
    return x


@settings(max_examples=150, deadline=None)
@given(view_chains())
def test_random_view_chains_alias_as_in_torch(chain):
    torch = _torch()
    shape, ops = chain
    values = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    tx, ex = torch.tensor(values), edugrad.tensor(values)
    try:
        tv = _apply_chain(torch, tx, ops)
    except RuntimeError:
        with pytest.raises(RuntimeError, match="view"):
            _apply_chain(edugrad, ex, ops)
        return
    ev = _apply_chain(edugrad, ex, ops)
    assert tuple(ev.shape) == tuple(tv.shape)
    assert ev.is_contiguous() == tv.is_contiguous()
    assert (ev._base is ex) == (tv._base is tx)
    tv.mul_(-2)
    ev.mul_(-2)
    np.testing.assert_array_equal(ex.numpy(), tx.numpy())
    tx.add_(7)
    ex.add_(7)
    np.testing.assert_array_equal(ev.numpy(), tv.numpy())


# ---- autograd rules and errors -------------------------------------------------------------------
def test_in_place_on_a_view_of_a_leaf_that_requires_grad_is_refused():
    a = edugrad.ones(2, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match="view of a leaf Variable that requires grad"):
        a[0].mul_(2)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        a.view(-1).zero_()
    assert a.tolist() == [[1.0, 1.0], [1.0, 1.0]]  # nothing changed
    with edugrad.no_grad():  # what nn.init does
        a[0].mul_(2)
    assert a.tolist() == [[2.0, 2.0], [1.0, 1.0]]


def test_writing_through_an_expanded_view_is_refused_before_anything_changes():
    x = edugrad.zeros(3, 1)
    wide = x.expand(3, 3)
    with pytest.raises(RuntimeError, match="single memory location"):
        wide.add_(1)
    with pytest.raises(RuntimeError, match="single memory location"):
        wide[0].add_(1)  # a row of an expanded view still repeats x's elements
    assert x.tolist() == [[0.0], [0.0], [0.0]]


def test_a_change_to_a_tensor_saved_for_backward_is_detected_through_a_view():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()            # Exp saves its output y
    y[0].add_(1)           # changes y through a view
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()
    z = x * 1
    w = z.view(2, 1)
    s = w.sin()            # Sin saves its input w
    z.add_(1)              # changes w through its base
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        s.sum().backward()


def test_version_counter_is_shared():
    x = edugrad.zeros(4)
    v = x.view(2, 2)
    before = x._version
    v[0].add_(1)
    assert x._version == v._version == before + 1
    x.add_(1)
    assert x._version == v._version == before + 2


def test_detach_and_data_alias_without_joining_the_graph():
    a = edugrad.tensor([1.0, 2.0], requires_grad=True)
    b = a * 2
    d = b.detach()
    d.zero_()                  # reaches b's values, not b's place in the graph
    assert b.tolist() == [0.0, 0.0]
    assert b.grad_fn is not None and d.grad_fn is None and not d.requires_grad
    b.sum().backward()
    assert a.grad.tolist() == [2.0, 2.0]
    p = nn.Parameter(edugrad.zeros(6))
    p.data[2:4].fill_(1.0)     # the LSTM forget-gate bias idiom
    assert p.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    assert p.is_leaf and p.requires_grad


def test_views_follow_an_optimizer_step_and_init():
    torch = _torch()
    results = []
    for lib in (torch, edugrad):
        lib.manual_seed(0)
        layer = lib.nn.Linear(3, 2)
        with lib.no_grad():
            layer.weight.copy_(lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        row = layer.weight[0]  # a view of the parameter, made with grad on
        lib.nn.init.zeros_(layer.weight[1])
        optimizer = lib.optim.SGD(layer.parameters(), lr=0.5)
        layer(lib.ones(1, 3)).sum().backward()
        optimizer.step()
        results.append((row.detach().numpy().copy(), layer.weight.detach().numpy().copy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-6)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-6)


def test_clone_and_contiguous_copies_do_not_alias():
    x = edugrad.zeros(2, 3)
    copy, column = x.clone(), x.t().contiguous()
    copy.add_(1)
    column.add_(1)
    assert x.tolist() == [[0.0] * 3] * 2
    x.add_(5)
    assert copy.tolist() == [[1.0] * 3] * 2


def test_two_leaves_never_share_a_gradient_tensor():
    a = edugrad.ones(2, requires_grad=True)
    b = edugrad.ones(2, requires_grad=True)
    (a + b).sum().backward()     # Add's backward hands one tensor to both
    a.grad.zero_()
    assert b.grad.tolist() == [1.0, 1.0]


def test_view_error_names_the_shapes_and_the_way_out():
    x = edugrad.zeros(2, 3).t()
    with pytest.raises(RuntimeError, match=r"view: view size \(6,\).*\(3, 2\).*reshape"):
        x.view(6)
    assert x.reshape(6)._base is None  # reshape copies instead


def test_dead_views_are_dropped():
    x = edugrad.zeros(4, 4)
    for _ in range(5000):
        x[1].sum()
    gc.collect()
    x.add_(1)  # a write prunes the list of views to the live ones
    assert len(x._views) == 0
    keep = [x[i] for i in range(4)]
    for _ in range(5000):
        x.view(16)
    assert len(x._views) < 200
    x.add_(1)
    assert [row.tolist() for row in keep] == [[2.0] * 4] * 4


def test_copy_into_a_whole_non_leaf_sends_the_gradient_to_the_source():
    """base.copy_(src) with src of base's shape and dtype: base took src's own place in the
    graph, so the gradient stopped at base and src.grad stayed None (torch: the upstream)."""
    torch = _torch()
    grads = []
    for lib in (edugrad, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        src = lib.tensor([3.0, 4.0], requires_grad=True)
        base = x.clone()
        base.copy_(src)
        (base * lib.tensor([5.0, 6.0])).sum().backward()
        grads.append(src.grad.tolist())
    assert grads[0] == grads[1] == [5.0, 6.0]
