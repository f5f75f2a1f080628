"""edugrad.nn layers, activations and losses against PyTorch, gradcheck, and both backend paths.

One table of layer cases drives the oracle: each case is `make(nn)`, written once and built
twice (nn = edugrad.nn and nn = torch.nn). The torch layer's state_dict is loaded into the
edugrad one, both run on the same input, and we compare the output, then the gradients a random
upstream gradient sends to the input and to every parameter (shape, dtype, then values), in
training and evaluation mode, in float32 and float64. gradcheck (float64 finite differences)
checks the derivatives independently of PyTorch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edugrad
import edugrad.nn as nn
import edugrad.nn.functional as F
from edugrad.autograd import gradcheck, gradgradcheck
from edugrad.backends.numpy_backend import NumpyBackend

# torch warns that it copies the input for padding='same' with an even kernel: not our concern
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

TOLERANCE = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-9, atol=1e-11)}


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="PyTorch is the oracle for the nn tests")


def host(tensor) -> np.ndarray:
    """A NumPy copy of an edugrad or a torch tensor (both spell it the same way)."""
    return tensor.detach().numpy()


def assert_same(ours, theirs, what: str) -> None:
    """Shape, then dtype, then values (allclose alone broadcasts and hides shape bugs)."""
    ours, theirs = host(ours), host(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape}, torch {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype}, torch {theirs.dtype}"
    np.testing.assert_allclose(ours, theirs, err_msg=what,
                               **TOLERANCE.get(str(theirs.dtype), {}))


def build_pair(torch, make, dtype: str):
    """The same layer in torch and edugrad, with torch's (random) parameters in both."""
    torch.manual_seed(0)
    theirs, ours = make(torch.nn), make(nn)
    if dtype == "float64":
        theirs.double(), ours.double()
    ours.load_state_dict({k: edugrad.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    return ours, theirs


# ---- the table ----------------------------------------------------------------------------------
LAYERS = {
    "linear": (lambda nn: nn.Linear(5, 3), (4, 5)),
    "linear_3d_no_bias": (lambda nn: nn.Linear(5, 3, bias=False), (2, 4, 5)),
    "linear_1d": (lambda nn: nn.Linear(5, 3), (5,)),
    "conv": (lambda nn: nn.Conv2d(3, 4, 3), (2, 3, 7, 7)),
    "conv_stride_padding": (lambda nn: nn.Conv2d(3, 4, (3, 2), stride=2, padding=1), (2, 3, 8, 7)),
    "conv_same_no_bias": (lambda nn: nn.Conv2d(2, 3, 4, padding="same", bias=False), (1, 2, 6, 5)),
    "conv_unbatched": (lambda nn: nn.Conv2d(2, 3, 3, padding=(0, 1)), (2, 5, 5)),
    "maxpool": (lambda nn: nn.MaxPool2d(2), (2, 3, 7, 6)),
    "maxpool_overlap_padding": (lambda nn: nn.MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 7)),
    "avgpool": (lambda nn: nn.AvgPool2d(2), (2, 3, 6, 7)),
    "avgpool_exclude_padding": (lambda nn: nn.AvgPool2d(3, 2, 1, count_include_pad=False),
                                (2, 2, 7, 6)),
    "avgpool_include_padding": (lambda nn: nn.AvgPool2d((2, 3), 1, 1), (1, 2, 5, 6)),
    "batchnorm1d": (lambda nn: nn.BatchNorm1d(4), (6, 4)),
    "batchnorm1d_3d": (lambda nn: nn.BatchNorm1d(4, momentum=0.3), (3, 4, 5)),
    "batchnorm2d": (lambda nn: nn.BatchNorm2d(3), (4, 3, 5, 5)),
    "batchnorm2d_cumulative": (lambda nn: nn.BatchNorm2d(3, affine=False, momentum=None),
                               (2, 3, 4, 4)),
    "batchnorm2d_no_stats": (lambda nn: nn.BatchNorm2d(3, track_running_stats=False), (2, 3, 4, 4)),
    "layernorm": (lambda nn: nn.LayerNorm(5), (3, 4, 5)),
    "layernorm_2d_no_bias": (lambda nn: nn.LayerNorm((4, 5), bias=False), (3, 4, 5)),
    "flatten": (lambda nn: nn.Flatten(), (2, 3, 4)),
    "unflatten": (lambda nn: nn.Unflatten(1, (2, 6)), (3, 12)),
    "identity": (lambda nn: nn.Identity(), (3, 2)),
    "relu": (lambda nn: nn.ReLU(), (4, 5)),
    "leaky_relu": (lambda nn: nn.LeakyReLU(0.2), (4, 5)),
    "elu": (lambda nn: nn.ELU(alpha=0.7), (4, 5)),
    "gelu": (lambda nn: nn.GELU(), (4, 5)),
    "gelu_tanh": (lambda nn: nn.GELU(approximate="tanh"), (4, 5)),
    "silu": (lambda nn: nn.SiLU(), (4, 5)),
    "sigmoid": (lambda nn: nn.Sigmoid(), (4, 5)),
    "tanh": (lambda nn: nn.Tanh(), (4, 5)),
    "softmax": (lambda nn: nn.Softmax(dim=1), (3, 4, 2)),
    "log_softmax": (lambda nn: nn.LogSoftmax(dim=-1), (3, 4)),
    "small_cnn": (lambda nn: nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Dropout(0.0),
        nn.Linear(6, 3)), (3, 1, 8, 8)),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_matches_torch(torch, name, training, dtype):
    make, shape = LAYERS[name]
    ours, theirs = build_pair(torch, make, dtype)
    ours.train(training), theirs.train(training)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    x_ours, x_theirs = edugrad.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    assert_same(out_ours, out_theirs, f"{name} output")
    upstream = rng.standard_normal(tuple(out_theirs.shape)).astype(dtype)
    out_ours.backward(edugrad.tensor(upstream))
    out_theirs.backward(torch.tensor(upstream))
    assert_same(x_ours.grad, x_theirs.grad, f"{name} input gradient")
    params_theirs = dict(theirs.named_parameters())
    assert [k for k, _ in ours.named_parameters()] == list(params_theirs)
    for key, param in ours.named_parameters():
        assert_same(param.grad, params_theirs[key].grad, f"{name} gradient of {key}")
    buffers_theirs = dict(theirs.named_buffers())  # running statistics after one step
    assert [k for k, _ in ours.named_buffers()] == list(buffers_theirs)
    for key, buffer in ours.named_buffers():
        assert_same(buffer, buffers_theirs[key], f"{name} buffer {key}")


@st.composite
def window_problems(draw):
    """An input shape and a kernel, stride and padding that fit it (pooling's padding rule:
    at most half the kernel); size-1 kernels, strides past the kernel, odd leftovers."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    size = tuple(draw(st.integers(max(1, k - 2 * p), k + 4)) for k, p in zip(kernel, padding))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + size
    return shape, kernel, stride, padding


@settings(max_examples=25, deadline=None)
@given(problem=window_problems(), out_channels=st.integers(1, 3), seed=st.integers(0, 99))
def test_conv_and_pools_match_torch_on_drawn_shapes(torch, problem, out_channels, seed):
    shape, kernel, stride, padding = problem
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    weight = rng.standard_normal((out_channels, shape[1]) + kernel)
    cases = [
        (lambda F, x, w: F.conv2d(x, w, stride=stride, padding=padding), True),
        (lambda F, x, w: F.max_pool2d(x, kernel, stride, padding), False),
        (lambda F, x, w: F.avg_pool2d(x, kernel, stride, padding, count_include_pad=False), False),
    ]
    for fn, uses_weight in cases:
        ours = [edugrad.tensor(v, requires_grad=True) for v in (x, weight)]
        theirs = [torch.tensor(v, requires_grad=True) for v in (x, weight)]
        out_ours, out_theirs = fn(F, *ours), fn(torch.nn.functional, *theirs)
        assert_same(out_ours, out_theirs, f"output for {problem}")
        upstream = rng.standard_normal(tuple(out_theirs.shape))
        out_ours.backward(edugrad.tensor(upstream)), out_theirs.backward(torch.tensor(upstream))
        for mine, expected in list(zip(ours, theirs))[:2 if uses_weight else 1]:
            assert_same(mine.grad, expected.grad, f"gradient for {problem}")


def test_batchnorm_running_stats_over_steps(torch):
    """Three training steps then evaluation: running mean/var (unbiased) and the eval output."""
    for momentum in (0.1, None):
        ours, theirs = build_pair(torch, lambda nn: nn.BatchNorm2d(3, momentum=momentum),
                                  "float64")
        rng = np.random.default_rng(2)
        for _ in range(3):
            x = rng.standard_normal((4, 3, 2, 2)) * 3 + 1
            ours(edugrad.tensor(x)), theirs(torch.tensor(x))
        for key, buffer in theirs.named_buffers():
            assert_same(getattr(ours, key), buffer, f"{key} (momentum={momentum})")
        ours.eval(), theirs.eval()
        x = rng.standard_normal((2, 3, 2, 2))
        assert_same(ours(edugrad.tensor(x)), theirs(torch.tensor(x)), "eval output")
    assert ours.num_batches_tracked.dtype is edugrad.int64 and ours.num_batches_tracked.item() == 3


def test_maxpool_ties_route_gradient_to_first_maximum(torch):
    """A ReLU makes whole windows of zeros: PyTorch sends the gradient to the first of them."""
    x = np.array([[[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, -1.0],
                    [2.0, 5.0, 5.0, 0.0], [5.0, 5.0, 0.0, 5.0]]]], dtype=np.float32)
    ours, theirs = edugrad.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    F.max_pool2d(ours, 2).sum().backward()
    torch.nn.functional.max_pool2d(theirs, 2).sum().backward()
    assert_same(ours.grad, theirs.grad, "max_pool2d gradient with ties")
    assert ours.grad.numpy().sum() == 4  # one element per window


def test_dropout_train_and_eval():
    edugrad.manual_seed(0)
    layer = nn.Dropout(0.3)
    x = edugrad.ones(200, 100, requires_grad=True)
    y = layer(x)
    kept = y.detach().numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.02  # each element kept with probability 1 - p
    np.testing.assert_allclose(y.detach().numpy()[kept], 1 / 0.7, rtol=1e-6)  # scaled by 1/(1-p)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy() != 0, kept)  # gradient only where kept
    layer.eval()
    assert layer(x) is x
    assert F.dropout(x, 1.0).detach().numpy().sum() == 0
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_embedding_matches_torch_with_padding_idx(torch):
    ours, theirs = build_pair(torch, lambda nn: nn.Embedding(6, 3, padding_idx=2), "float32")
    index = np.array([[0, 2, 5], [2, 2, 1]])
    out_ours, out_theirs = ours(edugrad.tensor(index)), theirs(torch.tensor(index))
    assert_same(out_ours, out_theirs, "embedding output")
    upstream = np.random.default_rng(3).standard_normal((2, 3, 3)).astype(np.float32)
    out_ours.backward(edugrad.tensor(upstream)), out_theirs.backward(torch.tensor(upstream))
    assert_same(ours.weight.grad, theirs.weight.grad, "embedding gradient (row 2 gets none)")
    assert np.all(ours.weight.grad.numpy()[2] == 0) and np.all(ours.weight.detach().numpy()[2] == 0)
    with pytest.raises(IndexError, match="out of range for 6 embeddings"):
        ours(edugrad.tensor([6]))


# ---- losses -------------------------------------------------------------------------------------
def _classes(rng, shape, classes):
    return rng.integers(0, classes, size=shape)


# (name, fn(F, input, target, weight), input shape, target maker, weight shape)
LOSSES = {
    "mse": (lambda F, x, t, w, r: F.mse_loss(x, t, reduction=r), (4, 3), "real", None),
    "l1": (lambda F, x, t, w, r: F.l1_loss(x, t, reduction=r), (4, 3), "real", None),
    "cross_entropy": (lambda F, x, t, w, r: F.cross_entropy(x, t, reduction=r), (5, 4),
                      "class", None),
    "cross_entropy_weight_ignore": (
        lambda F, x, t, w, r: F.cross_entropy(x, t, weight=w, ignore_index=1, reduction=r),
        (6, 4), "class", (4,)),
    "cross_entropy_smoothing": (
        lambda F, x, t, w, r: F.cross_entropy(x, t, weight=w, ignore_index=0, reduction=r,
                                              label_smoothing=0.2), (6, 4), "class", (4,)),
    "cross_entropy_smoothing_no_weight": (
        lambda F, x, t, w, r: F.cross_entropy(x, t, reduction=r, label_smoothing=0.1,
                                              ignore_index=2), (6, 4), "class", None),
    "cross_entropy_spatial": (lambda F, x, t, w, r: F.cross_entropy(x, t, reduction=r),
                              (2, 3, 4, 2), "class_spatial", None),
    "cross_entropy_unbatched": (lambda F, x, t, w, r: F.cross_entropy(x, t, reduction=r), (5,),
                                "class_scalar", None),
    "cross_entropy_probabilities": (
        lambda F, x, t, w, r: F.cross_entropy(x, t, weight=w, reduction=r, label_smoothing=0.1),
        (4, 3), "probabilities", (3,)),
    "nll": (lambda F, x, t, w, r: F.nll_loss(x.log_softmax(1), t, weight=w, reduction=r),
            (5, 4), "class", (4,)),
    "bce": (lambda F, x, t, w, r: F.binary_cross_entropy(x.sigmoid(), t, weight=w, reduction=r),
            (4, 3), "binary", (3,)),
    "bce_with_logits": (lambda F, x, t, w, r: F.binary_cross_entropy_with_logits(
        x, t, weight=w, reduction=r), (4, 3), "binary", (4, 3)),
    "bce_with_logits_pos_weight": (lambda F, x, t, w, r: F.binary_cross_entropy_with_logits(
        x, t, reduction=r, pos_weight=w), (4, 3), "binary", (3,)),
}


def _target(rng, kind, shape):
    if kind == "real":
        return rng.standard_normal(shape)
    if kind == "class":
        return rng.integers(0, shape[1], size=shape[0])
    if kind == "class_spatial":
        return rng.integers(0, shape[1], size=(shape[0],) + shape[2:])
    if kind == "class_scalar":
        return np.array(rng.integers(0, shape[0]))
    if kind == "probabilities":
        p = rng.uniform(size=shape)
        return p / p.sum(1, keepdims=True)
    return rng.integers(0, 2, size=shape).astype(np.float64)  # binary


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_matches_torch(torch, name, dtype, reduction):
    fn, shape, target_kind, weight_shape = LOSSES[name]
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(dtype)
    target = _target(rng, target_kind, shape)
    if target.dtype.kind == "f":
        target = target.astype(dtype)
    weight = None if weight_shape is None else rng.uniform(0.5, 2, weight_shape).astype(dtype)
    lib_inputs = {}
    for lib, tensor in (("ours", edugrad.tensor), ("theirs", torch.tensor)):
        lib_inputs[lib] = (tensor(x, requires_grad=True), tensor(target),
                           None if weight is None else tensor(weight))
    loss_ours = fn(F, *lib_inputs["ours"], reduction)
    loss_theirs = fn(torch.nn.functional, *lib_inputs["theirs"], reduction)
    assert_same(loss_ours, loss_theirs, f"{name} ({reduction})")
    upstream = rng.standard_normal(tuple(loss_theirs.shape)).astype(dtype)
    loss_ours.backward(edugrad.tensor(upstream))
    loss_theirs.backward(torch.tensor(upstream))
    assert_same(lib_inputs["ours"][0].grad, lib_inputs["theirs"][0].grad, f"{name} gradient")


@pytest.mark.parametrize("name, make", [
    ("MSELoss", lambda nn: nn.MSELoss(reduction="sum")),
    ("CrossEntropyLoss", lambda nn: nn.CrossEntropyLoss(label_smoothing=0.1)),
    ("NLLLoss", lambda nn: nn.NLLLoss()),
    ("BCEWithLogitsLoss", lambda nn: nn.BCEWithLogitsLoss()),
])
def test_loss_modules_match_functional(torch, name, make):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    target = (rng.integers(0, 3, 4) if name in ("CrossEntropyLoss", "NLLLoss")
              else rng.integers(0, 2, (4, 3)).astype(np.float32))
    ours, theirs = make(nn), make(torch.nn)
    assert repr(ours) == repr(theirs)
    assert_same(ours(edugrad.tensor(x), edugrad.tensor(target)),
                theirs(torch.tensor(x), torch.tensor(target)), name)


def test_hand_computed_losses():
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    loss = F.mse_loss(x, edugrad.tensor([0.0, 4.0]))
    assert loss.item() == pytest.approx(2.5)  # (1^2 + 2^2) / 2
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, -2.0])  # 2 (x - t) / n
    assert F.l1_loss(x, edugrad.tensor([0.0, 4.0]), reduction="sum").item() == pytest.approx(3.0)
    logits = edugrad.tensor([[0.0, 0.0]])
    assert F.cross_entropy(logits, edugrad.tensor([0])).item() == pytest.approx(math.log(2))
    assert F.binary_cross_entropy_with_logits(edugrad.tensor([0.0]), edugrad.tensor([1.0])).item() \
        == pytest.approx(math.log(2))
    assert F.binary_cross_entropy(edugrad.tensor([0.5]), edugrad.tensor([0.0])).item() \
        == pytest.approx(math.log(2))


def test_losses_are_stable_for_huge_logits(torch):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]], dtype=np.float32)
    target = np.array([1, 1])
    ours = edugrad.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(ours, edugrad.tensor(target))
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(target))
    assert math.isfinite(loss.item())
    assert_same(loss, expected, "cross_entropy of 1e4 logits")
    loss.backward()
    assert np.all(np.isfinite(ours.grad.numpy()))
    bits = np.array([1e4, -1e4, 3.0], dtype=np.float32)
    labels = np.array([0.0, 1.0, 1.0], dtype=np.float32)
    ours = edugrad.tensor(bits, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(ours, edugrad.tensor(labels))
    assert_same(loss, torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(bits), torch.tensor(labels)), "BCE with logits of 1e4")
    loss.backward()
    assert np.all(np.isfinite(ours.grad.numpy()))


@pytest.mark.parametrize("call, message", [
    (lambda: F.cross_entropy(edugrad.randn(3, 4), edugrad.tensor([0, 4, 1])), "out of bounds"),
    (lambda: F.cross_entropy(edugrad.randn(3, 4), edugrad.tensor([0, 1])), "expected target"),
    (lambda: F.mse_loss(edugrad.randn(3), edugrad.randn(3), reduction="avg"),
     "not a valid value for reduction"),
    (lambda: F.binary_cross_entropy(edugrad.tensor([1.5]), edugrad.tensor([1.0])),
     "between 0 and 1"),
    (lambda: F.binary_cross_entropy_with_logits(edugrad.randn(3), edugrad.randn(3, 1)),
     "different to the input size"),
    (lambda: F.conv2d(edugrad.randn(1, 2, 5, 5), edugrad.randn(4, 3, 3, 3)), "3 channels"),
    (lambda: F.conv2d(edugrad.randn(1, 3, 2, 2), edugrad.randn(4, 3, 3, 3)), "larger than"),
    (lambda: F.layer_norm(edugrad.randn(2, 3), (4,)), "expected input with shape"),
    (lambda: F.max_pool2d(edugrad.randn(1, 1, 4, 4), 2, padding=2), "at most half"),
    (lambda: nn.BatchNorm2d(3)(edugrad.randn(2, 3, 4)), "expected 4D input"),
    (lambda: nn.BatchNorm1d(3)(edugrad.randn(1, 3)), "more than 1 value per channel"),
    (lambda: F.one_hot(edugrad.tensor([0, 3]), 3), "smaller than num_classes"),
    (lambda: F.linear(edugrad.randn(2, 3), edugrad.randn(4, 5)), "in_features=5"),
    (lambda: F.linear(edugrad.randn(2, 3), edugrad.randn(4, 3, dtype=edugrad.float64)),
     "float32 on cpu but a parameter is float64"),
    (lambda: nn.Conv2d(1, 1, 3, stride=2, padding="same"), "not supported for strided"),
    (lambda: F.embedding(edugrad.tensor([0.0]), edugrad.randn(3, 2)), "int64 or int32"),
])
def test_bad_input_names_the_problem(call, message):
    with pytest.raises((RuntimeError, ValueError, IndexError, TypeError), match=message):
        call()


# ---- functional extras --------------------------------------------------------------------------
@pytest.mark.parametrize("padding", [(1, 2), (1, 0, 2, 1), (0, 0, 0, 0, 1, 1), (-1, 2, 1, -2)])
def test_pad_matches_torch(torch, padding):
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 5)).astype(np.float32)
    ours, theirs = edugrad.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_ours, out_theirs = F.pad(ours, padding, value=0.5), torch.nn.functional.pad(
        theirs, padding, value=0.5)
    assert_same(out_ours, out_theirs, f"pad {padding}")
    (out_ours * out_ours).sum().backward(), (out_theirs * out_theirs).sum().backward()
    assert_same(ours.grad, theirs.grad, "pad gradient")


def test_one_hot_matches_torch(torch):
    index = np.array([[0, 2], [1, 4]])
    assert_same(F.one_hot(edugrad.tensor(index)), torch.nn.functional.one_hot(torch.tensor(index)),
                "one_hot")
    assert_same(F.one_hot(edugrad.tensor(index), 6),
                torch.nn.functional.one_hot(torch.tensor(index), 6), "one_hot(6)")


def test_erf_is_accurate_to_float64():
    points = np.concatenate([np.linspace(-7, 7, 2001), [0.0, 0.5, 0.9999, 1.0, 1e-8, 30.0, -1e30]])
    ours = F.erf(edugrad.tensor(points)).numpy()
    expected = np.array([math.erf(v) for v in points])
    np.testing.assert_allclose(ours, expected, rtol=1e-14, atol=1e-15)
    assert np.isnan(F.erf(edugrad.tensor([float("nan")])).numpy()).all()


# ---- gradcheck (float64 finite differences, independent of PyTorch) ---------------------------
def _random(shape, seed, requires_grad=True, low=None):
    values = np.random.default_rng(seed).standard_normal(shape)
    if low is not None:
        values = np.abs(values) + low
    return edugrad.tensor(values, requires_grad=requires_grad)


GRADCHECKS = {
    "conv2d_stride_padding": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
                              [(1, 2, 5, 4), (3, 2, 3, 2), (3,)]),
    "conv2d_same": (lambda x, w: F.conv2d(x, w, padding="same"), [(1, 1, 4, 4), (2, 1, 2, 3)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), [(1, 2, 4, 5)]),
    "max_pool2d_overlap": (lambda x: F.max_pool2d(x, 3, stride=2, padding=1), [(1, 1, 5, 5)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), [(1, 2, 5, 4)]),
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                         [(3, 2, 2, 2), (2,), (2,)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (3,), w, b), [(2, 4, 3), (3,), (3,)]),
    "layer_norm_plain_2d": (lambda x: F.layer_norm(x, (2, 3)), [(2, 2, 3)]),
    "layer_norm_weight_only": (lambda x, w: F.layer_norm(x, (3,), w), [(4, 3), (3,)]),
    "gelu": (lambda x: F.gelu(x), [(3, 4)]),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), [(3, 4)]),
    "elu_leaky_silu": (lambda x: F.elu(x) + F.leaky_relu(x, 0.1) + F.silu(x), [(3, 4)]),
    "mse": (lambda x, t: F.mse_loss(x, t), [(3, 2), (3, 2)]),
    "l1": (lambda x: F.l1_loss(x, edugrad.zeros(3, 2, dtype=edugrad.float64)), [(3, 2)]),
    "cross_entropy": (lambda x: F.cross_entropy(
        x, edugrad.tensor([2, 0, 1]), label_smoothing=0.1,
        weight=edugrad.tensor([1.0, 2.0, 0.5, 1.0], dtype=edugrad.float64)), [(3, 4)]),
    "nll": (lambda x: F.nll_loss(x, edugrad.tensor([1, 0, 3]), ignore_index=0), [(3, 4)]),
    "bce": (lambda x, t: F.binary_cross_entropy(x.sigmoid(), t.sigmoid()), [(4,), (4,)]),
    "bce_with_logits": (lambda x, t: F.binary_cross_entropy_with_logits(
        x, t.sigmoid(), pos_weight=edugrad.tensor([2.0, 0.5], dtype=edugrad.float64)),
        [(3, 2), (3, 2)]),
    "embedding": (lambda w: F.embedding(edugrad.tensor([[1, 0], [1, 3]]), w), [(4, 2)]),
}


@pytest.mark.parametrize("name", list(GRADCHECKS))
def test_gradcheck(name):
    fn, shapes = GRADCHECKS[name]
    inputs = [_random(shape, seed) for seed, shape in enumerate(shapes)]
    assert gradcheck(fn, inputs)


@pytest.mark.parametrize("name, fn, shapes", [
    ("linear", lambda x, w, b: F.linear(x, w, b), [(3, 4), (2, 4), (2,)]),
    ("conv2d", lambda x, w: F.conv2d(x, w, padding=1), [(1, 2, 3, 3), (2, 2, 2, 2)]),
    ("max_pool2d", lambda x: F.max_pool2d(x, 2), [(1, 1, 4, 4)]),
    ("gelu", lambda x: F.gelu(x), [(5,)]),
    ("layer_norm", lambda x, w, b: F.layer_norm(x, (3,), w, b), [(2, 3), (3,), (3,)]),
    ("layer_norm_plain", lambda x: F.layer_norm(x, (4,)), [(2, 4)]),
    ("cross_entropy", lambda x: F.cross_entropy(x, edugrad.tensor([1, 0])), [(2, 3)]),
    ("batch_norm", lambda x: F.batch_norm(x, None, None, training=True), [(4, 3)]),
])
def test_second_derivatives(name, fn, shapes):
    """The nn Functions write their backward with Tensor ops, so grad of grad works."""
    inputs = [_random(shape, seed) for seed, shape in enumerate(shapes)]
    assert gradgradcheck(fn, inputs)


# ---- the accelerated primitives against their compositions --------------------------------------
class SlowNumpy(NumpyBackend):
    """NumPy with every accelerated primitive switched off: matmul, unfold, fold, take and
    index_add run as compositions of the required primitives."""

    def __init__(self, device=None) -> None:
        super().__init__(device)
        self.accelerated = frozenset()


@pytest.fixture(scope="module")
def slow_device():
    edugrad.register_backend("slowcpu", SlowNumpy)
    return "slowcpu"


def _run_on(device, make_inputs, fn):
    inputs = [t.detach().to(device).requires_grad_(t.requires_grad) for t in make_inputs()]
    out = fn(*inputs)
    out.backward(edugrad.ones(*out.shape, dtype=out.dtype, device=device) * 0.5 + out.detach())
    return out, [t.grad for t in inputs if t.requires_grad]


@pytest.mark.parametrize("name, fn, shapes", [
    ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1),
     [(2, 3, 7, 6), (4, 3, 3, 3), (4,)]),
    ("max_pool2d", lambda x: F.max_pool2d(x, 3, stride=2, padding=1), [(2, 2, 7, 7)]),
    ("cross_entropy", lambda x: F.cross_entropy(x, edugrad.tensor([0, 2, 1], device=x.device)),
     [(3, 4)]),
    ("embedding", lambda w: F.embedding(edugrad.tensor([[0, 3], [3, 1]], device=w.device), w),
     [(4, 3)]),
    ("gelu", lambda x: F.gelu(x * 3), [(4, 5)]),
])
def test_fast_path_matches_composition(slow_device, name, fn, shapes):
    assert edugrad.get_backend(slow_device).accelerated == frozenset()
    make = lambda: [_random(shape, seed) for seed, shape in enumerate(shapes)]  # noqa: E731
    fast_out, fast_grads = _run_on("cpu", make, fn)
    slow_out, slow_grads = _run_on(slow_device, make, fn)
    assert slow_out.device == slow_device
    np.testing.assert_allclose(slow_out.detach().numpy(), fast_out.detach().numpy(), rtol=1e-12)
    for slow, fast in zip(slow_grads, fast_grads):
        assert slow.shape == fast.shape
        np.testing.assert_allclose(slow.numpy(), fast.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, normalized, affine", [
    ((3, 4, 5), (5,), "both"), ((3, 4, 5), (4, 5), "none"), ((2, 6), (6,), "weight"),
    ((2, 6), (6,), "bias"), ((1, 1, 7), (7,), "both"), ((0, 3), (3,), "both"),
    ((3, 4, 5), (4, 5), "both"), ((5,), (5,), "both"),
])
def test_layer_norm_function_matches_its_composition(shape, normalized, affine):
    """F.layer_norm's one Function against the same normalisation in Tensor ops (float64):
    values and gradients of input, weight and bias."""
    from edugrad.nn.functional import _layer_norm_composed

    def run(composed):
        x = _random(shape, 0)
        weight = _random(normalized, 1) if affine in ("both", "weight") else None
        bias = _random(normalized, 2) if affine in ("both", "bias") else None
        axes = tuple(range(len(shape) - len(normalized), len(shape)))
        out = (_layer_norm_composed(x, axes, weight, bias, 1e-5) if composed
               else F.layer_norm(x, normalized, weight, bias))
        (out * _random(shape, 3, requires_grad=False)).sum().backward()
        return [out] + [t.grad for t in (x, weight, bias) if t is not None]

    for fused, composed in zip(run(False), run(True)):
        assert fused.shape == composed.shape and fused.dtype == composed.dtype
        np.testing.assert_allclose(fused.detach().numpy(), composed.detach().numpy(),
                                   rtol=1e-10, atol=1e-12)


def test_layer_norm_names_a_weight_of_the_wrong_shape():
    with pytest.raises(RuntimeError, match=r"layer_norm: expected weight of shape \(3,\) "
                                           r"\(the normalized_shape\), got \(4,\)"):
        F.layer_norm(edugrad.randn(2, 3), (3,), edugrad.ones(4), edugrad.zeros(3))


def test_float32_erf_fast_path_is_the_composition_exactly(slow_device):
    """The NumPy backend's ERF (blocked, in place) and TensorData's composition make the same
    operations in the same order, so float32 results agree to the bit, clamp, nan and inf too."""
    values = np.concatenate([np.linspace(-6, 6, 70001), [0.0, -0.0, 4.0, -4.0, np.inf, -np.inf,
                                                         np.nan, 1e-30]]).astype(np.float32)
    fast = F.erf(edugrad.tensor(values)).numpy()
    slow = F.erf(edugrad.tensor(values, device=slow_device)).numpy()
    assert fast.dtype == slow.dtype == np.float32
    np.testing.assert_array_equal(fast, slow)


def test_small_model_runs_on_every_backend(backend_name):
    """nn uses only Tensor operations, so a model runs on any backend (--backend adds more)."""
    make = LAYERS["small_cnn"][0]
    model = make(nn)
    x = np.random.default_rng(7).standard_normal((2, 1, 8, 8)).astype(np.float32)
    results = {}
    for device in ("cpu", backend_name):
        model.zero_grad()
        model.to(device)
        loss = F.cross_entropy(model(edugrad.tensor(x, device=device)),
                               edugrad.tensor([0, 2], device=device), label_smoothing=0.1)
        loss.backward()
        assert loss.device == device
        results[device] = [loss.detach()] + [p.grad for p in model.parameters()]
    for ours, reference in zip(results[backend_name], results["cpu"]):
        assert tuple(ours.shape) == tuple(reference.shape)
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-4, atol=1e-5)
