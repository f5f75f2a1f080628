"""float16 / bfloat16, the default dtype, Size, randperm / bernoulli / normal, from_numpy,
as_tensor, inference_mode, load's torch arguments and the thread count, against PyTorch where
it has an answer."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import edugrad

torch = pytest.importorskip("torch", reason="PyTorch is the oracle for dtypes and factories")

DTYPES = ["bool", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


# ---- half precision ------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b", list(itertools.product(DTYPES, repeat=2)))
def test_promotion_of_every_pair_is_torchs(a, b):
    ours = edugrad.dtypes.result_type((edugrad.dtypes.from_name(a), 1),
                                      (edugrad.dtypes.from_name(b), 1))
    assert ours.name == str(torch.promote_types(getattr(torch, a), getattr(torch, b)))[6:]


@pytest.mark.parametrize("scalar", [2, 1.5, True])
def test_a_python_scalar_keeps_a_half_tensor_half(scalar):
    x = edugrad.tensor([1.0, 2.0]).half()
    assert (x * scalar).dtype is edugrad.float16
    assert str((torch.tensor([1.0, 2.0]).half() * scalar).dtype) == "torch.float16"


VALUES = np.array([0.1, 1 / 3, 1000.7, 65504.0, 7e4, -2.5e-8, 3.14159, -0.0])


@pytest.mark.parametrize("device", ["cpu", "python"])
def test_half_rounds_as_torch(device):
    ours = edugrad.tensor(VALUES, dtype=edugrad.float64, device=device).half()
    theirs = torch.tensor(VALUES, dtype=torch.float64).half()
    assert ours.dtype is edugrad.float16 and ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert ours.numpy().dtype == np.float16


@pytest.mark.parametrize("device", ["cpu", "python"])
@pytest.mark.parametrize("op", [lambda x, y: x + y, lambda x, y: x * y, lambda x, y: x / y,
                                lambda x, y: x - y, lambda x, y: x.maximum(y)])
def test_half_elementwise_ops_match_torch(op, device):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 50)) * 10
    ours = op(edugrad.tensor(a, device=device).half(), edugrad.tensor(b, device=device).half())
    theirs = op(torch.tensor(a).half(), torch.tensor(b).half())
    assert ours.dtype is edugrad.float16
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_half_unary_ops_are_within_one_half_ulp_of_torch():
    """NumPy computes exp/log/sqrt in float32 and rounds to float16, as PyTorch's CPU does."""
    x = np.linspace(0.1, 5, 40)
    for name in ("exp", "log", "sqrt", "sin", "tanh", "sigmoid"):
        ours = getattr(edugrad.tensor(x).half(), name)().numpy().astype(np.float64)
        theirs = getattr(torch.tensor(x).half(), name)().numpy().astype(np.float64)
        np.testing.assert_allclose(ours, theirs, rtol=2 ** -10, err_msg=name)


def test_half_trains_with_gradients():
    w = edugrad.tensor([0.5, -1.0]).half().requires_grad_()
    (w * w).sum().backward()
    assert w.grad.dtype is edugrad.float16 and w.grad.tolist() == [1.0, -2.0]


def test_half_and_bfloat16_names():
    assert edugrad.half is edugrad.float16 and edugrad.float16.itemsize == 2
    assert edugrad.dtypes.from_name("torch.bfloat16") is edugrad.bfloat16
    assert edugrad.bfloat16.is_floating_point and repr(edugrad.bfloat16) == "edugrad.bfloat16"


# bfloat16, emulated on the cpu backend: every primitive rounds its float32 result to bfloat16
BF16_VALUES = np.array([0.1, 1 / 3, 1.001, 3.14159, 255.5, 257.0, 3.4e38, 1e-40, -2.5e-8, -0.0,
                        np.inf, -np.inf, np.nan, 1.00390625, 1.01171875])  # the last two: ties


def test_bfloat16_rounds_as_torch():
    """Casts from float64 and float32 (to nearest, ties to even; overflow to inf; NaN kept)."""
    for dtype in ("float64", "float32"):
        ours = edugrad.tensor(BF16_VALUES.astype(dtype)).bfloat16()
        theirs = torch.tensor(BF16_VALUES.astype(dtype)).bfloat16()
        assert ours.dtype is edugrad.bfloat16 and ours.shape == tuple(theirs.shape)
        np.testing.assert_array_equal(ours.numpy(), theirs.float().numpy())
        assert ours.numpy().dtype == np.float32  # the host holds the values as float32, exactly
    made = edugrad.tensor([1.001, 3.14159], dtype=edugrad.bfloat16)
    assert made.tolist() == torch.tensor([1.001, 3.14159], dtype=torch.bfloat16).tolist()
    assert made.float().dtype is edugrad.float32 and made.double().tolist() == [1.0, 3.140625]


BF16_PRIMITIVES = {  # one primitive each: bit for bit PyTorch's CPU bfloat16 results
    "add": lambda lib, x, y: x + y, "sub": lambda lib, x, y: x - y,
    "mul": lambda lib, x, y: x * y, "div": lambda lib, x, y: x / y,
    "neg": lambda lib, x, y: -x, "maximum": lambda lib, x, y: lib.maximum(x, y),
    "exp": lambda lib, x, y: x.exp(), "log": lambda lib, x, y: x.abs().log(),
    "sqrt": lambda lib, x, y: x.abs().sqrt(), "sin": lambda lib, x, y: x.sin(),
    "sum": lambda lib, x, y: x.sum(), "sum_dim": lambda lib, x, y: x.sum(1),
    "amax": lambda lib, x, y: x.amax(0), "matmul": lambda lib, x, y: x @ y.T,
    "broadcast": lambda lib, x, y: x + y[:1], "where": lambda lib, x, y: lib.where(x > 0, x, y),
    "index": lambda lib, x, y: x[[0, 2]] * y[1], "cat": lambda lib, x, y: lib.cat([x, y]),
    "pad": lambda lib, x, y: lib.nn.functional.pad(x, (1, 2), value=0.3),
    "conv2d": lambda lib, x, y: lib.nn.functional.conv2d(x.reshape(1, 1, 6, 5),
                                                          y[:2, :3].reshape(1, 1, 2, 3)),
    "max_pool2d": lambda lib, x, y: lib.nn.functional.max_pool2d(x.reshape(1, 1, 6, 5), 2),
    "relu": lambda lib, x, y: x.relu(), "square": lambda lib, x, y: x * x + y,
}
BF16_COMPOSED = {  # several primitives, each rounded: a few bfloat16 ulps from PyTorch's
    "mean": lambda lib, x, y: x.mean(-1), "softmax": lambda lib, x, y: x.softmax(-1),
    "tanh": lambda lib, x, y: x.tanh(), "sigmoid": lambda lib, x, y: x.sigmoid(),
    "gelu": lambda lib, x, y: lib.nn.functional.gelu(x), "cumsum": lambda lib, x, y: x.cumsum(1),
    "layer_norm": lambda lib, x, y: lib.nn.functional.layer_norm(x, (5,)),
    "cross_entropy": lambda lib, x, y: lib.nn.functional.cross_entropy(x, lib.tensor(
        [0, 1, 2, 3, 4, 0])),
}


@pytest.mark.parametrize("name", list(BF16_PRIMITIVES) + list(BF16_COMPOSED))
def test_bfloat16_ops_match_torch(name):
    rng = np.random.default_rng(1)
    x, y = (rng.standard_normal((6, 5)) * 3).astype(np.float32), rng.standard_normal((6, 5))
    fn = BF16_PRIMITIVES.get(name) or BF16_COMPOSED[name]
    ours = fn(edugrad, edugrad.tensor(x).bfloat16(), edugrad.tensor(y).bfloat16())
    theirs = fn(torch, torch.tensor(x).bfloat16(), torch.tensor(y).bfloat16())
    assert ours.dtype is edugrad.bfloat16 and ours.shape == tuple(theirs.shape), name
    got, expected = ours.numpy(), theirs.float().numpy()
    assert np.array_equal(got, got.astype(np.float32).view(np.uint32).__and__(0xFFFF0000)
                          .view(np.float32), equal_nan=True), f"{name}: not bfloat16 values"
    if name in BF16_PRIMITIVES:
        np.testing.assert_array_equal(got, expected, err_msg=name)
    else:
        np.testing.assert_allclose(got, expected, rtol=2 ** -5, atol=2 ** -7, err_msg=name)


def test_bfloat16_trains_a_layer_with_gradients():
    """Module.bfloat16(), a step of SGD: gradients and parameters stay bfloat16, values as
    torch's within a few ulps (its linear and loss compose differently)."""
    results = []
    for lib in (edugrad, torch):
        lib.manual_seed(0)
        layer = (edugrad.nn.Linear(3, 2) if lib is edugrad else torch.nn.Linear(3, 2))
        if lib is torch:
            layer.load_state_dict({k: torch.tensor(v.numpy()) for k, v in results[0][0].items()})
        results.append((layer.state_dict(),))
        layer.bfloat16()
        x = lib.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]).bfloat16()
        loss = (layer(x) ** 2).mean()
        loss.backward()
        assert layer.weight.grad.dtype == getattr(lib, "bfloat16")
        results[-1] += (layer.weight.grad.float().numpy(), loss.float().item())
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=2 ** -5, atol=2 ** -7)
    assert results[0][2] == pytest.approx(results[1][2], rel=2 ** -6)
    samples = edugrad.rand(1000, dtype=edugrad.bfloat16).numpy()
    assert samples.min() >= 0 and samples.max() < 1 and np.all(samples * 256 % 1 == 0)


@pytest.mark.parametrize("make", [lambda: edugrad.ones(2, device="python").bfloat16(),
                                  lambda: edugrad.zeros(3, dtype=edugrad.bfloat16,
                                                        device="python")])
def test_bfloat16_is_refused_where_a_backend_cannot_hold_it(make):
    with pytest.raises(TypeError, match="bfloat16.*cpu backend emulates it.*float16.*float32"):
        make()


# ---- the default dtype ---------------------------------------------------------------------------
@pytest.fixture
def restore_default_dtype():
    yield
    edugrad.set_default_dtype(edugrad.float32)
    torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("name", ["float64", "float16", "float32"])
def test_set_default_dtype_changes_floats_and_factories_as_torch(name, restore_default_dtype):
    edugrad.set_default_dtype(getattr(edugrad, name))
    torch.set_default_dtype(getattr(torch, name))
    assert edugrad.get_default_dtype() is getattr(edugrad, name)
    cases = {
        "tensor": lambda lib: lib.tensor([1.5, 2.0]),
        "scalar": lambda lib: lib.tensor(2.5),
        "zeros": lambda lib: lib.zeros(2),
        "rand": lambda lib: lib.rand(2),
        "randn": lambda lib: lib.randn(2),
        "int + float": lambda lib: lib.tensor([1, 2]) + 0.5,
        "int tensor": lambda lib: lib.tensor([1, 2]),
    }
    for case, make in cases.items():
        assert make(edugrad).dtype.name == str(make(torch).dtype)[6:], case


@pytest.mark.parametrize("bad", [edugrad.int64, edugrad.bfloat16, "bool"])
def test_set_default_dtype_refuses_what_cannot_be_the_default(bad, restore_default_dtype):
    with pytest.raises(TypeError, match="set_default_dtype"):
        edugrad.set_default_dtype(bad)
    assert edugrad.get_default_dtype() is edugrad.float32


# ---- Size ----------------------------------------------------------------------------------------
def test_shape_and_size_are_a_size_like_torchs():
    x, t = edugrad.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    for ours, theirs in ((x.shape, t.shape), (x.size(), t.size())):
        assert isinstance(ours, edugrad.Size) and isinstance(ours, tuple)
        assert ours == theirs == (2, 3, 4) and ours.numel() == theirs.numel() == 24
        assert repr(ours) == repr(theirs).replace("torch", "edugrad")
        assert str(ours) == str(theirs).replace("torch", "edugrad")
    assert x.size(1) == 3 and x.shape[-1] == 4 and list(x.shape[1:]) == [3, 4]
    assert f"{x.shape}" == "(2, 3, 4)"  # error messages keep reading as tuples
    assert edugrad.Size([]).numel() == 1 and edugrad.zeros(0, 5).shape.numel() == 0
    assert edugrad.Size((2,)) + (3,) == (2, 3) and type(edugrad.Size((2,)) + (3,)) is edugrad.Size
    assert hash(x.shape) == hash((2, 3, 4)) and edugrad.zeros(x.shape).shape == x.shape


# ---- randperm, bernoulli, normal -----------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 7, 100])
def test_randperm_is_a_permutation_with_torchs_dtype(n):
    ours, theirs = edugrad.randperm(n), torch.randperm(n)
    assert ours.dtype is edugrad.int64 and ours.shape == tuple(theirs.shape)
    assert sorted(ours.tolist()) == list(range(n))
    assert edugrad.randperm(n, dtype=edugrad.int32).dtype is edugrad.int32


def test_randperm_follows_manual_seed():
    edugrad.manual_seed(4)
    first = edugrad.randperm(20).tolist()
    edugrad.manual_seed(4)
    assert edugrad.randperm(20).tolist() == first and first != list(range(20))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_bernoulli_shapes_dtypes_and_extremes_as_torch(dtype):
    probabilities = [[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]]
    ours = edugrad.bernoulli(edugrad.tensor(probabilities, dtype=dtype))
    theirs = torch.bernoulli(torch.tensor(probabilities, dtype=getattr(torch, dtype)))
    assert ours.dtype.name == dtype and ours.shape == tuple(theirs.shape)
    assert ours.tolist() == theirs.tolist()  # 0 and 1 are certain
    half = edugrad.bernoulli(edugrad.zeros(4000), 0.5)  # bernoulli(input, p)
    assert set(half.tolist()) == {0.0, 1.0} and abs(half.mean().item() - 0.5) < 0.05
    with pytest.raises(RuntimeError, match="bernoulli"):
        edugrad.bernoulli(edugrad.tensor([1.5]))


NORMALS = [
    ("tensor, tensor", lambda lib: lib.normal(lib.zeros(3, 1), lib.ones(4))),
    ("tensor, float", lambda lib: lib.normal(lib.zeros(2, 5, dtype=lib.float64), 2.0)),
    ("float, tensor", lambda lib: lib.normal(1.0, lib.ones(3))),
    ("float, float, size", lambda lib: lib.normal(1.0, 2.0, (2, 3))),
    ("float, float, size, dtype", lambda lib: lib.normal(0.0, 1.0, size=(4,),
                                                         dtype=lib.float64)),
]


@pytest.mark.parametrize("name, make", NORMALS, ids=[n for n, _ in NORMALS])
def test_normal_has_every_torch_form(name, make):
    ours, theirs = make(edugrad), make(torch)
    assert ours.shape == tuple(theirs.shape) and ours.dtype.name == str(theirs.dtype)[6:]


def test_normal_moments_and_errors():
    edugrad.manual_seed(0)
    values = edugrad.normal(edugrad.full((20000,), 5.0), edugrad.full((20000,), 0.5)).numpy()
    assert abs(values.mean() - 5) < 0.02 and abs(values.std() - 0.5) < 0.02
    with pytest.raises(TypeError, match="size"):
        edugrad.normal(0.0, 1.0)
    with pytest.raises(RuntimeError, match="std"):
        edugrad.normal(edugrad.zeros(2), edugrad.tensor([1.0, -1.0]))


# ---- from_numpy and as_tensor --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32", "int64", "bool"])
def test_from_numpy_keeps_the_dtype_and_copies(dtype):
    array = np.arange(6).reshape(2, 3).astype(dtype)
    ours, theirs = edugrad.from_numpy(array), torch.from_numpy(array.copy())
    assert ours.dtype.name == str(theirs.dtype)[6:] and ours.shape == (2, 3)
    np.testing.assert_array_equal(ours.numpy(), array)
    array[0, 0] = 1  # torch would see this change (shared memory); edugrad copied
    assert ours.numpy()[0, 0] == 0
    with pytest.raises(TypeError, match="from_numpy"):
        edugrad.from_numpy([1, 2])


def test_as_tensor_returns_the_tensor_itself_when_nothing_changes():
    x = edugrad.tensor([1.0, 2.0])
    assert edugrad.as_tensor(x) is x and edugrad.as_tensor(x, dtype="float32") is x
    y = edugrad.as_tensor(x, dtype=edugrad.float64)
    assert y is not x and y.dtype is edugrad.float64 and y.tolist() == [1.0, 2.0]
    assert edugrad.as_tensor(x, device="python").device == "python"
    for data in ([1, 2], [1.5], np.array([1, 2], dtype=np.int32), 3):
        assert edugrad.as_tensor(data).dtype.name == str(torch.as_tensor(data).dtype)[6:]


# ---- inference_mode ------------------------------------------------------------------------------
def test_inference_mode_as_context_and_decorator():
    x = edugrad.ones(2, requires_grad=True)
    with edugrad.inference_mode():
        assert not (x * 2).requires_grad and edugrad.is_inference_mode_enabled()
    assert (x * 2).requires_grad

    @edugrad.inference_mode()
    def called(t):
        return t * 2

    @edugrad.inference_mode
    def bare(t):
        return t * 2

    assert not called(x).requires_grad and not bare(x).requires_grad
    with edugrad.inference_mode(False):
        assert (x * 2).requires_grad
    assert edugrad.is_grad_enabled()


# ---- load's torch arguments ----------------------------------------------------------------------
def test_load_accepts_torchs_arguments(tmp_path):
    path = tmp_path / "w.safetensors"
    edugrad.save({"w": edugrad.tensor([1.0, 2.0])}, path)
    for kwargs in (dict(weights_only=True), dict(map_location="cpu"),
                   dict(map_location=edugrad.device("cpu"), weights_only=True),
                   dict(map_location={"cuda:0": "cpu"}), dict(weights_only=False, mmap=True)):
        assert edugrad.load(path, **kwargs)["w"].tolist() == [1.0, 2.0], kwargs
    assert edugrad.load(path, map_location="python")["w"].device == "python"
    with pytest.raises(TypeError, match="map_location"):
        edugrad.load(path, map_location=lambda storage, location: storage)


# ---- threads -------------------------------------------------------------------------------------
def test_set_num_threads_sets_what_get_num_threads_reports():
    before = edugrad.get_num_threads()
    assert isinstance(before, int) and before >= 1
    if edugrad.get_backend("cpu").get_num_threads() is None:
        with warnings.catch_warnings(record=True):
            edugrad.set_num_threads(1)
        pytest.skip("this NumPy's BLAS is not OpenBLAS: nothing to set")
    try:
        edugrad.set_num_threads(1)
        assert edugrad.get_num_threads() == 1
    finally:
        edugrad.set_num_threads(before)
    assert edugrad.get_num_threads() == before
    with pytest.raises(ValueError, match="set_num_threads"):
        edugrad.set_num_threads(0)


def test_a_backend_without_threads_says_so():
    assert edugrad.get_backend("python").get_num_threads() is None
    assert edugrad.get_backend("python").set_num_threads(2) is False


@pytest.mark.parametrize("device", ["cpu", "python"])
def test_half_rand_is_uniform_on_zero_to_one(device):
    edugrad.manual_seed(0)
    values = edugrad.rand(20000, dtype=edugrad.float16, device=device)
    assert values.dtype is edugrad.float16
    host = values.numpy().astype(np.float64)
    assert host.min() >= 0 and host.max() < 1 and abs(host.mean() - 0.5) < 0.01


LEGACY_NAMES = ["FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "BoolTensor"]
LEGACY_ARGUMENTS = {
    "nothing": (), "sizes": (2, 3), "a Size": ("size",), "a list": ([1.7, -2.0, 0.0],),
    "nested lists": ([[1, 0], [3, 4]],), "an int32 array": (np.array([[5, 0, 7]], np.int32),),
    "a float64 array": (np.array([0.5, -1.25]),),
}


@pytest.mark.parametrize("name", LEGACY_NAMES)
@pytest.mark.parametrize("form", LEGACY_ARGUMENTS)
def test_legacy_typed_constructors_build_what_torchs_build(name, form):
    """torch.LongTensor(input_ids) in the seq2seq tutorial, and the other forms of the five."""
    def call(lib):
        args = [lib.Size([2, 3]) if isinstance(a, str) else a for a in LEGACY_ARGUMENTS[form]]
        return getattr(lib, name)(*args)

    ours, theirs = call(edugrad), call(torch)
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    if form not in ("sizes", "a Size"):  # torch leaves those unset; edugrad's are zeros
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_legacy_typed_constructors_by_hand():
    assert edugrad.LongTensor([1.7, -2.9]).tolist() == [1, -2]  # truncated toward zero
    assert edugrad.FloatTensor(2).tolist() == [0.0, 0.0]
    ids = edugrad.tensor([3, 4])
    same = edugrad.LongTensor(ids)
    same[0] = 9  # the same values, as torch.LongTensor(t) shares t's
    assert ids.tolist() == [9, 4]
    assert isinstance(ids, edugrad.LongTensor) and not isinstance(ids, edugrad.FloatTensor)
    assert isinstance(edugrad.zeros(2), edugrad.FloatTensor)
    assert isinstance(edugrad.zeros(2, dtype=edugrad.float64), edugrad.DoubleTensor)


def test_legacy_typed_constructors_isinstance_as_torch():
    for name in LEGACY_NAMES:
        for dtype in ("float32", "float64", "int64", "int32", "bool"):
            ours = isinstance(edugrad.zeros(2, dtype=getattr(edugrad, dtype)),
                              getattr(edugrad, name))
            assert ours == isinstance(torch.zeros(2, dtype=getattr(torch, dtype)),
                                      getattr(torch, name)), (name, dtype)


def test_legacy_typed_constructors_refuse_what_torch_refuses():
    with pytest.raises(TypeError, match=r"LongTensor: expected a tensor of dtype "
                                        r"edugrad.int64, got edugrad.float32"):
        edugrad.LongTensor(edugrad.zeros(2))
    with pytest.raises(TypeError, match=r"FloatTensor: expected sizes \(ints\) or one sequence "
                                        r"of values, got \(list, int\)"):
        edugrad.FloatTensor([1.0], 2)
    with pytest.raises(TypeError, match="cannot build a tensor from 'ab'"):
        edugrad.LongTensor("ab")
    for refused in (lambda lib: lib.LongTensor(lib.zeros(2)), lambda lib: lib.LongTensor("ab")):
        with pytest.raises(TypeError):
            refused(torch)


def test_tensor_of_sizes_and_size_keyword_build_what_torch_builds():
    """torch.Tensor(in, out) in older layer code (gcn/main.py) and torch.empty(size=(...))
    (gat/main.py): float32 tensors of those sizes."""
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for the factories")
    for sizes in [(5,), (2, 3), (2, 3, 4)]:
        ours, theirs = edugrad.Tensor(*sizes), torch.Tensor(*sizes)
        assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype is edugrad.float32
    for name in ("zeros", "ones", "empty", "rand", "randn"):
        made = getattr(edugrad, name)(size=(2, 3))
        assert made.shape == getattr(torch, name)(size=(2, 3)).shape and made.dtype is edugrad.float32
    assert edugrad.zeros(size=[4]).tolist() == [0.0] * 4
    with pytest.raises(TypeError, match=r"zeros\(\) got the size twice"):
        edugrad.zeros(2, size=(2,))
    with pytest.raises(TypeError, match=r"ones\(\) got an unexpected keyword argument 'shape'"):
        edugrad.ones(shape=(2,))
