"""edugrad.nn's Module machinery: registration, traversal, state_dict, to(), hooks, repr, init,
gradient clipping. Layer numerics against PyTorch are in test_nn_layers.py.
"""

from __future__ import annotations

import ast
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import edugrad
import edugrad.nn as nn
import edugrad.nn.functional as F
from edugrad.nn import init
from edugrad.optim import SGD


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="PyTorch is the oracle for the nn tests")


def small_cnn(nn):
    """The architecture of the state_dict and repr tests, for nn = edugrad.nn or torch.nn."""
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 10))


def values(module) -> dict:
    return {key: tensor.numpy().copy() for key, tensor in module.state_dict().items()}


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.register_buffer("scale", edugrad.ones(2))
        self.register_buffer("cache", edugrad.zeros(2), persistent=False)

    def forward(self, x):
        return self.fc(x) * self.scale


# ---- registration and traversal -----------------------------------------------------------------
def test_attributes_register_parameters_buffers_and_modules():
    block = Block()
    assert list(block._parameters) == [] and list(block._modules) == ["fc"]
    assert [name for name, _ in block.named_parameters()] == ["fc.weight", "fc.bias"]
    assert [name for name, _ in block.named_buffers()] == ["scale", "cache"]
    assert list(block.state_dict()) == ["scale", "fc.weight", "fc.bias"]  # cache not persistent
    assert [name for name, _ in block.named_modules()] == ["", "fc"]
    assert list(block.children()) == [block.fc]
    block.extra = nn.Parameter(edugrad.zeros(1))
    assert "extra" in dict(block.named_parameters())
    del block.extra
    assert "extra" not in dict(block.named_parameters())
    with pytest.raises(TypeError, match="parameter 'extra'|Parameter or None"):
        block.register_parameter("extra", edugrad.zeros(1))
    with pytest.raises(KeyError, match="already exists"):
        block.register_buffer("fc", edugrad.zeros(1))
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'weight'"):
        block.fc.weight = edugrad.zeros(2, 3)


def test_assigning_before_init_is_an_error():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\) call"):
        Broken()


def test_shared_parameters_are_listed_once():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(model.parameters())) == 2
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_parameter_is_a_leaf_and_ops_on_it_give_tensors():
    weight = nn.Parameter(edugrad.ones(2, 3))
    assert weight.requires_grad and weight.is_leaf
    assert type(weight.T) is edugrad.Tensor and type(weight * 2) is edugrad.Tensor
    assert repr(nn.Parameter(edugrad.tensor([1.0, 2.0]))) == (
        "Parameter containing:\ntensor([1., 2.], requires_grad=True)")


def test_train_eval_zero_grad_apply_requires_grad():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(), nn.Sequential(nn.BatchNorm1d(3)))
    assert model.eval() is model and not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model(edugrad.randn(4, 3)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Dropout", "BatchNorm1d", "Sequential", "Sequential"]
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())


def test_sequential_and_module_list_behave_like_lists():
    layers = [nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)]
    model = nn.Sequential(*layers)
    assert len(model) == 3 and model[0] is layers[0] and model[-1] is layers[2]
    assert list(model) == layers
    assert isinstance(model[1:], nn.Sequential) and list(model[1:]) == layers[1:]
    model.append(nn.Tanh())
    assert len(model) == 4 and list(model._modules) == ["0", "1", "2", "3"]
    named = nn.Sequential(OrderedDict([("hidden", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["hidden.weight", "hidden.bias"]
    blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    blocks.append(nn.Linear(2, 1))
    assert len(blocks) == 4 and len(list(blocks.parameters())) == 8
    assert list(blocks.state_dict())[-1] == "3.bias"
    with pytest.raises(IndexError, match="out of range"):
        model[7]


def test_repr_matches_torch(torch):
    def everything(nn):
        return nn.Sequential(
            small_cnn(nn), nn.Conv2d(2, 3, (3, 2), stride=2, padding=1, bias=False),
            nn.Conv2d(2, 2, 3, padding="same"), nn.MaxPool2d(2), nn.MaxPool2d(3, 1, 1),
            nn.AvgPool2d(2), nn.BatchNorm1d(3, momentum=None, affine=False), nn.LayerNorm((2, 3)),
            nn.Dropout(0.2), nn.Embedding(10, 3, padding_idx=-1), nn.Identity(),
            nn.Unflatten(1, (2, 3)),
            nn.ReLU(), nn.LeakyReLU(0.2), nn.ELU(), nn.GELU(approximate="tanh"), nn.SiLU(),
            nn.Sigmoid(), nn.Tanh(), nn.Softmax(dim=1), nn.LogSoftmax(dim=-1),
            nn.ModuleList([nn.Linear(2, 2, bias=False)]), nn.CrossEntropyLoss(), nn.MSELoss())

    assert repr(everything(nn)) == repr(everything(torch.nn))
    assert repr(nn.Sequential(nn.Linear(784, 128), nn.ReLU())) == (
        "Sequential(\n  (0): Linear(in_features=784, out_features=128, bias=True)\n"
        "  (1): ReLU()\n)")


# ---- state_dict -------------------------------------------------------------------------------
def test_state_dict_keys_match_torch(torch):
    ours, theirs = small_cnn(nn).state_dict(), small_cnn(torch.nn).state_dict()
    assert list(ours) == list(theirs)
    for key in theirs:
        assert tuple(ours[key].shape) == tuple(theirs[key].shape), key
        assert ours[key].dtype.name == str(theirs[key].dtype).replace("torch.", ""), key
    assert not ours["0.weight"].requires_grad  # detached


def test_state_dict_round_trip_gives_the_same_model():
    source, target = small_cnn(nn).eval(), small_cnn(nn).eval()
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    x = edugrad.randn(2, 1, 8, 8)
    np.testing.assert_array_equal(target(x).detach().numpy(), source(x).detach().numpy())


@pytest.mark.parametrize("change, message", [
    (lambda sd: sd.pop("1.running_var"), 'Missing key\\(s\\) in state_dict: "1.running_var"'),
    (lambda sd: sd.update(extra=edugrad.zeros(1)), 'Unexpected key\\(s\\) in state_dict: "extra"'),
    (lambda sd: sd.update({"4.weight": edugrad.zeros(10, 5)}),
     "size mismatch for 4.weight: copying a param with shape \\(10, 5\\)"),
    (lambda sd: sd.update({"0.bias": edugrad.zeros(4, dtype=edugrad.float64)}),
     "dtype mismatch for 0.bias"),
    (lambda sd: sd.update({"1.num_batches_tracked": edugrad.tensor(3.0)}),
     "dtype mismatch for 1.num_batches_tracked"),
])
def test_failed_load_names_the_key_and_changes_nothing(change, message):
    model = small_cnn(nn)
    before = values(model)
    state = {key: value + 1 if value.dtype.is_floating_point else value
             for key, value in small_cnn(nn).state_dict().items()}  # every other key is fine
    change(state)
    with pytest.raises(RuntimeError, match=message):
        model.load_state_dict(state)
    after = values(model)
    assert list(after) == list(before)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


def test_non_strict_load_reports_keys_and_loads_the_rest():
    model = small_cnn(nn)
    state = small_cnn(nn).state_dict()
    del state["4.bias"]
    state["head.weight"] = edugrad.zeros(1)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["4.bias"] and result.unexpected_keys == ["head.weight"]
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), state["0.weight"].numpy())
    with pytest.raises(RuntimeError, match="size mismatch"):  # shapes are checked even so
        model.load_state_dict({"0.bias": edugrad.zeros(3)}, strict=False)


def test_load_keeps_parameter_identity_for_optimizers():
    model = nn.Linear(3, 2)
    weight = model.weight
    model.load_state_dict({"weight": edugrad.ones(2, 3), "bias": edugrad.zeros(2)})
    assert model.weight is weight and np.all(weight.detach().numpy() == 1)


def test_to_dtype_keeps_parameter_identity():
    model = small_cnn(nn)
    params = list(model.parameters())
    model(edugrad.randn(2, 1, 8, 8)).sum().backward()
    assert model.to(edugrad.float64) is model
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert all(p.dtype is edugrad.float64 and p.requires_grad for p in params)
    assert all(p.grad.dtype is edugrad.float64 for p in params)
    assert model[1].running_mean.dtype is edugrad.float64
    assert model[1].num_batches_tracked.dtype is edugrad.int64  # integers keep their dtype
    optimizer = SGD(params, lr=0.1)
    model.zero_grad()
    out = model(edugrad.randn(2, 1, 8, 8, dtype=edugrad.float64))
    assert out.dtype is edugrad.float64
    out.sum().backward()
    optimizer.step()  # the optimizer built before .to() still updates the model
    model.float()
    assert all(p.dtype is edugrad.float32 for p in model.parameters())
    with pytest.raises(TypeError, match="floating point"):
        model.to(edugrad.int64)


def test_to_device_moves_parameters_and_buffers():
    edugrad.register_backend("nn-test-device", "edugrad.backends.numpy_backend:NumpyBackend")
    model = small_cnn(nn)
    weight = model[0].weight
    model.to("nn-test-device")
    assert model[0].weight is weight and weight.device == "nn-test-device"
    assert all(b.device == "nn-test-device" for b in model.buffers())
    out = model(edugrad.randn(2, 1, 8, 8, device="nn-test-device"))
    assert out.device == "nn-test-device"


# ---- hooks --------------------------------------------------------------------------------------
def test_forward_hooks_can_replace_input_and_output():
    layer = nn.Linear(2, 2)
    calls = []
    pre = layer.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = layer.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    out = layer(edugrad.ones(3, 2))
    expected = layer.bias.detach().numpy() + 1  # the input was zeroed, the output shifted
    np.testing.assert_allclose(out.detach().numpy(), np.broadcast_to(expected, (3, 2)), rtol=1e-6)
    assert calls == [(3, 2)]
    pre.remove(), post.remove()
    assert not layer._forward_pre_hooks and not layer._forward_hooks


def test_full_backward_hook_sees_torch_gradients(torch):
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    make = lambda nn: nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))  # noqa: E731
    torch.manual_seed(0)
    theirs, ours = make(torch.nn), make(nn)
    ours.load_state_dict({k: edugrad.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    seen = {}
    for name, model, tensor in (("ours", ours, edugrad.tensor), ("theirs", theirs, torch.tensor)):
        model[1].register_full_backward_hook(
            lambda m, grad_input, grad_output, name=name: seen.update(
                {name: (grad_input[0], grad_output[0])}))
        out = model(tensor(x, requires_grad=True))
        (out * out).sum().backward()
    for i, what in enumerate(("grad_input", "grad_output")):
        mine, expected = seen["ours"][i], seen["theirs"][i]
        assert tuple(mine.shape) == tuple(expected.shape), what
        np.testing.assert_allclose(mine.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=what)


def test_full_backward_hook_can_replace_grad_input():
    layer = nn.Identity()
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0] * 3,))
    x = edugrad.ones(2, requires_grad=True)
    layer(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])
    first = nn.Linear(2, 1)  # no input requires grad: the hook still runs, grad_input is None
    seen = []
    first.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go[0].shape)))
    first(edugrad.ones(4, 2)).sum().backward()
    assert seen == [((None,), (4, 1))]


# ---- init ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Linear(400, 300), 400),
    (lambda: nn.Conv2d(8, 64, 3), 72),
])
def test_default_init_is_uniform_within_one_over_sqrt_fan_in(make, fan_in):
    edugrad.manual_seed(0)
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    for tensor in (layer.weight, layer.bias):
        array = tensor.detach().numpy().ravel()
        assert np.all(np.abs(array) <= bound)
    weight = layer.weight.detach().numpy().ravel()
    assert abs(weight.mean()) < 0.05 * bound
    assert abs(weight.var() - bound ** 2 / 3) < 0.05 * bound ** 2 / 3  # uniform's variance
    assert np.histogram(weight, bins=10, range=(-bound, bound))[0].min() > 0.8 * weight.size / 10


def test_other_defaults():
    edugrad.manual_seed(0)
    embedding = nn.Embedding(1000, 64, padding_idx=3)
    weight = embedding.weight.detach().numpy()
    assert np.all(weight[3] == 0)
    assert abs(weight.std() - 1) < 0.03 and abs(weight.mean()) < 0.03  # N(0, 1)
    norm = nn.BatchNorm2d(3)
    assert np.all(norm.weight.detach().numpy() == 1) and np.all(norm.bias.detach().numpy() == 0)
    assert np.all(norm.running_var.numpy() == 1) and norm.num_batches_tracked.item() == 0
    layer_norm = nn.LayerNorm(4)
    assert np.all(layer_norm.weight.detach().numpy() == 1)


def test_init_functions(torch):
    for name, param in (("linear", None), ("relu", None), ("tanh", None), ("leaky_relu", 0.2),
                        ("sigmoid", None), ("selu", None), ("conv2d", None)):
        assert init.calculate_gain(name, param) == pytest.approx(
            torch.nn.init.calculate_gain(name, param))
    weight = edugrad.empty(256, 128)
    assert init._calculate_fan_in_and_fan_out(edugrad.empty(16, 8, 3, 3)) == (72, 144)
    edugrad.manual_seed(0)
    init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
    assert abs(weight.numpy().std() - math.sqrt(2 / 256)) < 0.02 * math.sqrt(2 / 256)
    init.xavier_uniform_(weight, gain=2.0)
    bound = 2.0 * math.sqrt(6 / (256 + 128))
    assert np.abs(weight.numpy()).max() <= bound and np.abs(weight.numpy()).max() > 0.99 * bound
    init.xavier_normal_(weight)
    assert abs(weight.numpy().std() - math.sqrt(2 / 384)) < 0.02 * math.sqrt(2 / 384)
    assert init.constant_(weight, 0.5) is weight and np.all(weight.numpy() == 0.5)
    assert np.all(init.zeros_(weight).numpy() == 0) and np.all(init.ones_(weight).numpy() == 1)
    init.uniform_(weight, -2, -1)
    assert weight.numpy().min() >= -2 and weight.numpy().max() < -1
    param = nn.Parameter(edugrad.empty(3, 3))
    init.normal_(param, 5.0, 0.1)  # runs under no_grad: fine on a leaf that requires grad
    assert param.requires_grad and param.is_leaf and abs(param.detach().numpy().mean() - 5) < 0.2
    with pytest.raises(ValueError, match="fewer than 2"):
        init.xavier_uniform_(edugrad.empty(3))


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (8, 2, 3, 3), (5, 5), (1, 3)])
def test_orthogonal_init_gives_orthonormal_rows_or_columns(shape):
    weight = nn.Parameter(edugrad.empty(*shape))
    assert init.orthogonal_(weight, gain=2.0) is weight
    assert weight.shape == shape and weight.is_leaf and weight.requires_grad
    matrix = weight.detach().numpy().reshape(shape[0], -1).astype(np.float64) / 2.0
    gram = matrix @ matrix.T if matrix.shape[0] <= matrix.shape[1] else matrix.T @ matrix
    np.testing.assert_allclose(gram, np.eye(len(gram)), atol=1e-5)


def test_orthogonal_init_is_the_q_of_qr_with_a_positive_diagonal(torch):
    # the same draw through torch's recipe (QR, then Q times the signs of R's diagonal)
    edugrad.manual_seed(3)
    draw = edugrad.empty(5, 3).normal_()
    edugrad.manual_seed(3)
    ours = init.orthogonal_(edugrad.empty(5, 3)).numpy()
    q, r = torch.linalg.qr(torch.tensor(draw.numpy()))
    np.testing.assert_allclose(ours, (q * torch.diag(r).sign()).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match=r"orthogonal_: .*2 or more dimensions .*\(3,\)"):
        init.orthogonal_(edugrad.empty(3))


# ---- gradient clipping --------------------------------------------------------------------------
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_clip_grad_norm_matches_torch(torch, norm_type):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(shape).astype(np.float32) * 3 for shape in ((3, 4), (5,))]
    ours = [nn.Parameter(edugrad.zeros(*g.shape)) for g in grads]
    theirs = [torch.nn.Parameter(torch.zeros(*g.shape)) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = edugrad.tensor(g), torch.tensor(g)
    total = nn.utils.clip_grad_norm_(ours, max_norm=1.5, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm=1.5, norm_type=norm_type)
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_norm_edge_cases_and_clip_value():
    param = nn.Parameter(edugrad.zeros(3))
    param.grad = edugrad.tensor([0.3, -0.4, 0.0])
    assert nn.utils.clip_grad_norm_(param, 10.0).item() == pytest.approx(0.5)
    np.testing.assert_allclose(param.grad.numpy(), [0.3, -0.4, 0.0])  # small enough: unchanged
    param.grad = edugrad.tensor([float("inf"), 1.0, 0.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([param], 1.0, error_if_nonfinite=True)
    assert nn.utils.clip_grad_norm_([nn.Parameter(edugrad.zeros(1))], 1.0).item() == 0
    param.grad = edugrad.tensor([-3.0, 0.5, 2.0])
    nn.utils.clip_grad_value_([param], 1.0)
    np.testing.assert_array_equal(param.grad.numpy(), [-1.0, 0.5, 1.0])


# ---- a whole model learns -----------------------------------------------------------------------
def test_small_model_learns_a_separable_problem():
    edugrad.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(2, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 2))
    optimizer = SGD(model.parameters(), lr=0.5)
    inputs, targets = edugrad.tensor(x), edugrad.tensor(y)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]
    accuracy = (model(inputs).argmax(1).numpy() == y).mean()
    assert accuracy > 0.95


def test_nn_imports_no_numpy():
    """nn sits above the tensor layer: everything it computes goes through Tensor and Function."""
    for path in (Path(nn.__file__).parent).glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(name.split(".")[0] in ("numpy", "torch", "cupy") for name in names), (
                f"{path.name} imports {names}")


def test_clip_grad_norm_scales_on_the_device_without_reading_the_norm():
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for clip_grad_norm_")
    grads = [np.array([3.0, 4.0]), np.array([12.0])]
    ours = [edugrad.zeros(len(g), requires_grad=True) for g in grads]
    theirs = [torch.zeros(len(g), requires_grad=True) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = edugrad.tensor(g, dtype=edugrad.float32), torch.tensor(g).float()
    total = edugrad.nn.utils.clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert abs(total.item() - expected.item()) < 1e-5
    for p, q in zip(ours, theirs):
        assert np.allclose(p.grad.numpy(), q.grad.numpy(), atol=1e-6)
