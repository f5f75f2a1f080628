"""Tensor basics against PyTorch: construction, attributes, conversion, factories, type
promotion, printing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
torch = pytest.importorskip("torch", reason="PyTorch is the oracle here: pip install -e \".[dev]\"")

import edugrad
from helpers import NOACCEL, assert_same


# ---- construction --------------------------------------------------------------------------------
CONSTRUCTION = [
    1.5, 2, True, [1, 2.5], [[1, 2], [3, 4]], [True, False], [], [[]], -0.0,
    np.float32(1.5), np.int64(3), np.int32(3), np.bool_(True), np.float64(2.0),
    np.array([1, 2], dtype=np.int32), np.array([1.0, 2.0]), np.array([[1.5]], dtype=np.float32),
    np.ones((3, 2)).T, np.array(7), np.array([True]),
]


@pytest.mark.parametrize("data", CONSTRUCTION, ids=[repr(d)[:30] for d in CONSTRUCTION])
def test_construction_defaults_match_torch(data):
    """Python floats -> float32, ints -> int64, bools -> bool; NumPy arrays keep their dtype."""
    ours, theirs = edugrad.tensor(data), torch.tensor(data)
    assert_same(ours, theirs, f"tensor({data!r})")
    assert ours.is_leaf and not ours.requires_grad and ours.grad is None


@pytest.mark.parametrize("data", CONSTRUCTION, ids=[repr(d)[:30] for d in CONSTRUCTION])
def test_the_legacy_constructor_makes_floats_as_torch_does(data):
    """torch.Tensor(data) is float32 whatever the data (Tensor([1, 2]), Tensor(np.array of
    ints)), where torch.tensor(data) infers; Tensor(2) is the sizes form, two elements."""
    try:
        theirs = torch.Tensor(data)
    except TypeError:  # a Python or NumPy scalar: torch wants a sequence (edugrad takes it)
        assert edugrad.Tensor(data).dtype is edugrad.float32
        return
    ours = edugrad.Tensor(data)
    if np.ndim(data) == 0 and np.asarray(data).dtype.kind in "iu":  # a size, as torch reads it:
        assert tuple(ours.shape) == tuple(theirs.shape)  # torch's values unset, ours 0
        assert ours.tolist() == [0.0] * int(data)
    else:
        assert_same(ours, theirs, f"Tensor({data!r})")
    assert ours.dtype is edugrad.float32 and ours.is_leaf and not ours.requires_grad


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
def test_construction_with_dtype(dtype):
    ours = edugrad.tensor([0, 1.7, -2], dtype=getattr(edugrad, dtype))
    theirs = torch.tensor([0, 1.7, -2], dtype=getattr(torch, dtype))
    assert_same(ours, theirs)
    assert edugrad.tensor([1], dtype=dtype).dtype is getattr(edugrad, dtype)  # by name too


@pytest.mark.parametrize("bad", [np.array([1], dtype=np.uint16), np.array([1], dtype=np.uint8),
                                 np.array([1], dtype=np.complex64)], ids=["uint16", "uint8",
                                                                         "complex64"])
def test_unsupported_numpy_dtype_raises_naming_it(bad):
    with pytest.raises(TypeError, match=str(bad.dtype)):
        edugrad.tensor(bad)


def test_bad_data_raises():
    with pytest.raises(ValueError, match="tensor"):
        edugrad.tensor([[1, 2], [3]])
    with pytest.raises(TypeError, match="tensor"):
        edugrad.tensor("abc")
    with pytest.raises(TypeError, match="dtype"):
        edugrad.tensor([1], dtype="complex64")


def test_tensor_of_a_tensor_is_a_new_leaf():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    y = edugrad.tensor(x * 2)
    assert y.is_leaf and not y.requires_grad and y.tolist() == [2.0, 4.0]


# ---- attributes ----------------------------------------------------------------------------------
def test_attributes():
    x = edugrad.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert x.shape == (2, 3) and isinstance(x.shape, tuple)
    assert x.ndim == 2 and x.dim() == 2 and x.numel() == 6 and len(x) == 2
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size(-2) == 2
    assert x.dtype is edugrad.float32 and x.device == "cpu"
    assert x.grad is None and x.requires_grad and x.is_leaf and x.grad_fn is None
    assert x.T.shape == (3, 2) and x.T.tolist() == [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
    y = x * 2
    assert not y.is_leaf and y.requires_grad and y.grad_fn.name == "MulBackward"
    scalar = edugrad.tensor(3.0)
    assert scalar.shape == () and scalar.ndim == 0 and scalar.numel() == 1 and scalar.size() == ()
    assert edugrad.zeros(2, 0, 3).numel() == 0


def test_iteration_and_truth():
    x = edugrad.tensor([[1, 2], [3, 4]])
    assert [row.tolist() for row in x] == [[1, 2], [3, 4]]
    assert bool(edugrad.tensor([1.0])) and not bool(edugrad.tensor(0))
    with pytest.raises(RuntimeError, match=r"\(2, 2\)"):
        bool(x)
    with pytest.raises(TypeError, match="0-d"):
        len(edugrad.tensor(1.0))
    assert float(edugrad.tensor(2.5)) == 2.5 and int(edugrad.tensor([7])) == 7


# ---- conversion ----------------------------------------------------------------------------------
def test_numpy_item_tolist():
    x = edugrad.tensor([[1.5, 2.0]], dtype=edugrad.float64)
    array = x.numpy()
    assert isinstance(array, np.ndarray) and array.dtype == np.float64 and array.shape == (1, 2)
    assert x.tolist() == [[1.5, 2.0]] and edugrad.tensor(3).tolist() == 3
    assert edugrad.tensor([2.5]).item() == 2.5 and isinstance(edugrad.tensor(2).item(), int)
    assert isinstance(edugrad.tensor(True).item(), bool)
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        x.item()
    with pytest.raises(RuntimeError, match="detach"):
        edugrad.tensor([1.0], requires_grad=True).numpy()
    assert edugrad.tensor([1.0], requires_grad=True).detach().numpy().tolist() == [1.0]


@pytest.mark.parametrize("method,args", [("float", ()), ("double", ()), ("long", ()),
                                         ("int", ()), ("bool", ()), ("to", ("float64",)),
                                         ("to", ("int32",))])
@pytest.mark.parametrize("values", [[-1.5, 0.0, 2.7], [3, -2, 0], [True, False, True]],
                         ids=["float", "int", "bool"])
def test_dtype_conversions_match_torch(method, args, values):
    ours = getattr(edugrad.tensor(values), method)(*[getattr(edugrad, a) for a in args])
    theirs = getattr(torch.tensor(values), method)(*[getattr(torch, a) for a in args])
    assert_same(ours, theirs, method)


def test_to_dtype_is_differentiable_and_returns_self_when_unchanged():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    assert x.to(edugrad.float32) is x and x.to("cpu") is x
    y = x.double() * x.to(dtype=edugrad.float64)
    assert y.dtype is edugrad.float64
    y.sum().backward()
    assert x.grad.dtype is edugrad.float32 and x.grad.tolist() == [2.0, 4.0]


def test_to_device_moves_and_gradient_comes_back():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(NOACCEL)
    assert y.device == NOACCEL and y.requires_grad and x.device == "cpu"
    (y * y).sum().backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [2.0, 4.0]
    z = edugrad.tensor([1, 2], device=NOACCEL)
    assert z.device == NOACCEL and z.cpu().device == "cpu" and z.to("cpu", edugrad.float64).dtype \
        is edugrad.float64


def test_detach_and_clone():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert d.tolist() == [1.0, 2.0] and not d.requires_grad and d.is_leaf
    c = x.clone()
    assert c.tolist() == [1.0, 2.0] and c.requires_grad and not c.is_leaf
    c.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]
    plain = edugrad.tensor([1.0, 2.0])
    copy = plain.clone()
    copy += 1
    assert plain.tolist() == [1.0, 2.0] and copy.tolist() == [2.0, 3.0]


# ---- factories -----------------------------------------------------------------------------------
FACTORIES = [
    ("zeros", lambda lib: lib.zeros(2, 3)),
    ("zeros_tuple", lambda lib: lib.zeros((2, 3), dtype=lib.float64)),
    ("ones", lambda lib: lib.ones(4)),
    ("ones_int", lambda lib: lib.ones(2, 2, dtype=lib.int64)),
    ("full_int", lambda lib: lib.full((2,), 7)),
    ("full_float", lambda lib: lib.full((2, 1), 1.5)),
    ("full_bool", lambda lib: lib.full((3,), True)),
    ("full_dtype", lambda lib: lib.full((2,), 3, dtype=lib.float32)),
    ("empty_shape", lambda lib: lib.empty(2, 3).fill_(1)),  # empty's values are undefined
    ("arange", lambda lib: lib.arange(5)),
    ("arange_start", lambda lib: lib.arange(2, 7, 2)),
    ("arange_float", lambda lib: lib.arange(1, 2, 0.25)),
    ("arange_dtype", lambda lib: lib.arange(4, dtype=lib.float64)),
    ("linspace", lambda lib: lib.linspace(0, 1, 5)),
    ("linspace_one", lambda lib: lib.linspace(-1, 1, 1)),
    ("eye", lambda lib: lib.eye(3)),
    ("eye_rect", lambda lib: lib.eye(2, 3)),
    ("zeros_like", lambda lib: lib.zeros_like(lib.tensor([[1, 2]]))),
    ("ones_like", lambda lib: lib.ones_like(lib.tensor([1.5], dtype=lib.float64))),
    ("full_like", lambda lib: lib.full_like(lib.tensor([1, 2]), 4)),
    ("empty_like", lambda lib: lib.empty_like(lib.tensor([1.0, 2.0])).fill_(1)),
    ("zeros_empty", lambda lib: lib.zeros(0, 3)),
    ("where_numbers", lambda lib: lib.where(lib.tensor([True, False]), 1.0, 0)),
]


@pytest.mark.parametrize("name,fn", FACTORIES, ids=[f[0] for f in FACTORIES])
def test_factories_match_torch(name, fn):
    assert_same(fn(edugrad), fn(torch), name)


@pytest.mark.parametrize("factory", [edugrad.rand, edugrad.randn, edugrad.zeros, edugrad.ones,
                                     edugrad.empty])
def test_factory_options(factory):
    x = factory(2, 3, dtype=edugrad.float64, device=NOACCEL, requires_grad=True)
    assert x.shape == (2, 3) and x.dtype is edugrad.float64 and x.device == NOACCEL
    assert x.requires_grad and x.is_leaf
    assert factory((4,)).shape == (4,) and factory(4).dtype is edugrad.float32


@pytest.mark.parametrize("like", [edugrad.rand_like, edugrad.randn_like])
def test_random_like(like):
    x = like(edugrad.zeros(3, 2, dtype=edugrad.float64))
    assert x.shape == (3, 2) and x.dtype is edugrad.float64


def test_rand_is_uniform_on_zero_one():
    values = edugrad.rand(100_000).numpy()
    assert values.dtype == np.float32 and values.min() >= 0 and values.max() < 1
    assert abs(values.mean() - 0.5) < 0.01 and abs(values.std() - (1 / 12) ** 0.5) < 0.01


def test_randn_mean_and_std():
    values = edugrad.randn(200, 500).numpy()
    assert values.dtype == np.float32 and values.shape == (200, 500)
    assert abs(values.mean()) < 0.01 and abs(values.std() - 1) < 0.01
    assert abs(np.mean(values > 1.0) - 0.1587) < 0.01  # the tail of a normal, not a uniform


def test_randint_covers_the_range_evenly():
    values = edugrad.randint(-5, 5, (100_000,))
    assert values.dtype is edugrad.int64
    counts = np.bincount(values.numpy() + 5, minlength=10)
    assert len(counts) == 10 and counts.min() > 9_000 and counts.max() < 11_000
    assert edugrad.randint(10, (3,)).shape == (3,)  # torch.randint(high, size)
    assert edugrad.randint(0, 4, (2, 2), dtype=edugrad.int32).dtype is edugrad.int32


@pytest.fixture
def unseeded_afterwards():
    """manual_seed is global and also seeds every backend made later, so put it back: a later
    test's backend without seed() (the learner's template) would fail to load."""
    previous = edugrad.backend._seed[0]
    yield
    edugrad.backend._seed[0] = previous


def test_manual_seed_repeats(unseeded_afterwards):
    def draw():
        return (edugrad.rand(5).tolist(), edugrad.randn(5).tolist(),
                edugrad.randint(0, 100, (5,)).tolist())

    edugrad.manual_seed(0)
    first = draw()
    edugrad.manual_seed(0)
    assert draw() == first
    edugrad.manual_seed(1)
    assert draw() != first
    edugrad.manual_seed(0)
    assert edugrad.rand(5, device=NOACCEL).tolist() == first[0]  # every backend is seeded


# ---- type promotion ------------------------------------------------------------------------------
VALUES = {"bool": [True, False], "int32": [3, -2], "int64": [5, 7], "float32": [1.5, -0.5],
          "float64": [0.25, 2.0]}


def operand(lib, kind):
    """'float32' is a 1-d tensor, 'float32 0-d' a 0-d one, 'scalar 2.5' a Python number."""
    if kind.startswith("scalar"):
        return {"scalar True": True, "scalar 2": 2, "scalar 2.5": 2.5}[kind]
    name = kind.split()[0]
    values = VALUES[name] if not kind.endswith("0-d") else VALUES[name][0]
    return lib.tensor(values, dtype=getattr(lib, name))


KINDS = list(VALUES) + [f"{name} 0-d" for name in VALUES]
PAIRS = [(a, b) for a, b in itertools.product(KINDS, KINDS + ["scalar True", "scalar 2",
                                                                "scalar 2.5"])]


@pytest.mark.filterwarnings("ignore:divide by zero", "ignore:invalid value")  # x / False
@pytest.mark.parametrize("a,b", PAIRS, ids=[f"{a}|{b}" for a, b in PAIRS])
def test_type_promotion_matches_torch(a, b):
    for op in ("add", "mul", "truediv", "maximum", "lt"):
        theirs_fn = {"maximum": lambda x, y: torch.maximum(x, torch.as_tensor(y))}.get(
            op, lambda x, y: getattr(x, f"__{op}__")(y))
        ours_fn = {"maximum": lambda x, y: edugrad.maximum(x, y)}.get(
            op, lambda x, y: getattr(x, f"__{op}__")(y))
        if op == "maximum" and (b.startswith("scalar") or "bool" in a + b):
            continue  # torch.maximum takes tensors only, and no bools
        try:
            theirs = theirs_fn(operand(torch, a), operand(torch, b))
        except RuntimeError:
            continue  # a pair PyTorch refuses
        ours = ours_fn(operand(edugrad, a), operand(edugrad, b))
        assert_same(ours, theirs, f"{a} {op} {b}")


@pytest.mark.parametrize("a,b", [("float32", "float64 0-d"), ("float32 0-d", "float64"),
                                 ("float64", "float32"), ("float32", "int64"),
                                 ("int32 0-d", "float64")])
def test_gradients_keep_each_input_dtype(a, b):
    results = {}
    for lib in (edugrad, torch):
        x, y = operand(lib, a), operand(lib, b)
        for t in (x, y):
            if t.dtype.is_floating_point:
                t.requires_grad_()
        out = x * y + x
        out.sum().backward()
        results[lib] = [out] + [t.grad for t in (x, y) if t.requires_grad]
    for ours, theirs in zip(results[edugrad], results[torch]):
        assert_same(ours, theirs, f"{a} * {b}")


def test_integer_true_division_and_in_place_casting():
    assert_same(edugrad.tensor([3, 4]) / 2, torch.tensor([3, 4]) / 2)
    assert_same(7 / edugrad.tensor([2]), 7 / torch.tensor([2]))
    x = edugrad.tensor([1.5, 2.5])
    x += edugrad.tensor([1, 2])  # int into float: fine
    assert x.dtype is edugrad.float32 and x.tolist() == [2.5, 4.5]
    with pytest.raises(RuntimeError, match="float32.*int64|int64.*float32"):
        i = edugrad.tensor([1, 2])
        i += 1.5


# ---- printing ------------------------------------------------------------------------------------
REPRS = [
    [1.0, 2.0], [1.5, 0.25], 3.0, -2.0, [[1, 2], [3, 4]], [True, False], [], [1e-5, 1.0],
    [123456.0, 1.5], [[0.1, 0.2], [0.3, 0.4]], [1.0, 1000.0], [[1.0, -2.0], [30.0, 4.0]],
    [float("inf"), -2.5], float("nan"), [[-1.5]],
]


@pytest.mark.parametrize("values", REPRS, ids=[repr(v) for v in REPRS])
@pytest.mark.parametrize("dtype", [None, "float64", "int32"])
def test_repr_matches_torch(values, dtype):
    if dtype == "int32" and not all(float(v).is_integer() for v in np.ravel(values)):
        return
    ours = edugrad.tensor(values, dtype=dtype and getattr(edugrad, dtype))
    theirs = torch.tensor(values, dtype=dtype and getattr(torch, dtype))
    assert repr(ours).replace("edugrad.", "torch.") == repr(theirs)
    assert str(ours) == repr(ours)


def test_repr_shows_autograd_state_and_device():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert repr(x * 2) == "tensor([2., 4.], grad_fn=<MulBackward>)"
    assert repr((x * 2).sum()) == "tensor(6., grad_fn=<SumBackward>)"
    assert repr(x.double()) == "tensor([1., 2.], dtype=edugrad.float64, grad_fn=<CastBackward>)"
    assert repr(edugrad.tensor([1, 2], device=NOACCEL)) == f"tensor([1, 2], device='{NOACCEL}')"
    assert f"{edugrad.tensor(0.123456):.3f}" == "0.123"
    assert repr(edugrad.int64) == "edugrad.int64" and edugrad.float is edugrad.float32
