"""Module's API beyond forward, against torch.nn.Module: walking the tree (apply, named_modules,
children), hooks, requires_grad_, dtype moves, extra_repr and print(model) as PyTorch prints
it, and the containers ModuleDict, ParameterList and ParameterDict (their state_dict keys move
both ways between edugrad and torch)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import edugrad
import edugrad.nn as nn
from helpers import assert_same

# the model's Dropout2d sees (N, C, L) input; torch and edugrad both warn about it, alike
pytestmark = pytest.mark.filterwarnings("ignore:dropout2d. Received a 3D input:UserWarning")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="PyTorch is the oracle for the Module API")


def library(nn_module):
    """edugrad for edugrad.nn, torch for torch.nn: a model written once builds in both."""
    if nn_module is nn:
        return edugrad
    import torch
    return torch


def make_model(nn):
    """A nested model with every container, a shared module and a None slot."""
    lib = library(nn)

    class Block(nn.Module):
        def __init__(self, width: int):
            super().__init__()
            self.width = width
            self.layers = nn.ModuleDict({"conv": nn.Conv1d(width, width, 3, padding=1),
                                         "norm": nn.GroupNorm(1, width), "act": nn.PReLU()})
            self.scales = nn.ParameterList([nn.Parameter(lib.ones(width, 1)),
                                            nn.Parameter(lib.zeros(1))])
            self.gates = nn.ParameterDict({"alpha": nn.Parameter(lib.full((width, 1), 0.5))})

        def forward(self, x):
            y = self.layers["act"](self.layers["norm"](self.layers["conv"](x)))
            return x + y * self.scales[0] * self.gates["alpha"] + self.scales[1]

        def extra_repr(self) -> str:
            return f"width={self.width}"

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            shared = nn.Linear(8, 8)
            self.stem = nn.Conv1d(2, 4, 3, padding=1)
            self.blocks = nn.ModuleList([Block(4), Block(4), nn.ReLU(), nn.ReLU(), nn.ReLU()])
            self.pool = nn.AdaptiveAvgPool1d(8)
            self.head = nn.Sequential(OrderedDict([
                ("fc", shared), ("act", nn.Mish()), ("fc_again", shared),
                ("drop", nn.Dropout2d(0.0))]))
            self.spare = None  # an attribute, not a module

        def forward(self, x):
            x = self.stem(x)
            for block in self.blocks:
                x = block(x)
            return self.head(self.pool(x))

    return Net()


def test_print_model_as_torch_prints_it(torch):
    ours, theirs = make_model(nn), make_model(torch.nn)
    assert repr(ours) == repr(theirs).replace("torch.", "edugrad.")
    assert str(ours).startswith("Net(\n  (stem): Conv1d(2, 4, kernel_size=(3,), stride=(1,)")
    assert "(2-4): 3 x ReLU()" in repr(ours)  # runs of equal modules are one line, as in torch


def test_named_modules_children_and_apply_walk_like_torch(torch):
    ours, theirs = make_model(nn), make_model(torch.nn)
    names = lambda pairs: [name for name, _ in pairs]  # noqa: E731
    assert names(ours.named_modules()) == names(theirs.named_modules())
    assert names(ours.named_modules(remove_duplicate=False)) == \
        names(theirs.named_modules(remove_duplicate=False))  # the shared Linear twice
    assert names(ours.named_modules(prefix="model")) == names(theirs.named_modules(prefix="model"))
    assert names(ours.named_children()) == names(theirs.named_children())
    assert [type(m).__name__ for m in ours.children()] == \
        [type(m).__name__ for m in theirs.children()]
    visited_ours, visited_theirs = [], []
    ours.apply(lambda m: visited_ours.append(type(m).__name__))
    theirs.apply(lambda m: visited_theirs.append(type(m).__name__))
    assert visited_ours == visited_theirs  # children first, then the module itself
    assert ours.apply(lambda m: None) is ours


def test_state_dict_keys_and_values_move_both_ways(torch):
    ours, theirs = make_model(nn), make_model(torch.nn)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]
    ours.load_state_dict({k: edugrad.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 2, 6)).astype(np.float32)
    assert_same(ours(edugrad.tensor(x)), theirs(torch.tensor(x)), "model output", rtol=2e-4,
                atol=2e-5)
    fresh = make_model(torch.nn)  # and back: ours into a new torch model
    fresh.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    for key, value in fresh.state_dict().items():
        assert_same(ours.state_dict()[key], value, key)


def test_forward_hooks_and_pre_hooks(torch):
    for lib, nn_module in ((edugrad, nn), (torch, torch.nn)):
        layer, calls = nn_module.Linear(3, 2), []
        pre = layer.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
        post = layer.register_forward_hook(lambda m, args, out: calls.append("post") or out + 1)
        first = layer.register_forward_hook(lambda m, args, out: calls.append("first"),
                                            prepend=True)
        x = lib.ones(1, 3)
        with lib.no_grad():
            expected = layer.weight.sum(1) * 2 + layer.bias + 1
            assert np.allclose(layer(x).numpy(), expected.numpy())
        assert calls == ["first", "post"], lib.__name__
        pre.remove(), post.remove(), first.remove()
        with lib.no_grad():
            assert np.allclose(layer(x).numpy(), (layer.weight.sum(1) + layer.bias).numpy())
        seen = []
        kw = layer.register_forward_pre_hook(
            lambda m, args, kwargs: seen.append(sorted(kwargs)) or (args, kwargs),
            with_kwargs=True)
        out_kw = layer.register_forward_hook(
            lambda m, args, kwargs, out: seen.append("out"), with_kwargs=True)
        layer(x)
        assert seen == [[], "out"], lib.__name__
        kw.remove(), out_kw.remove()
        assert not layer._forward_hooks and not layer._forward_pre_hooks


def _failing(nn_module):
    class Failing(nn_module.Module):
        def forward(self, x, scale=1.0):
            raise ValueError("forward failed")
    return Failing()


def test_always_call_forward_hooks_run_when_forward_raises(torch):
    """always_call hooks run on an error (output None, args as the pre-hooks left them), once,
    in registration order; an error inside one is a warning; the first error goes on."""
    for lib, nn_module in ((edugrad, nn), (torch, torch.nn)):
        layer, calls = _failing(nn_module), []
        layer.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
        layer.register_forward_hook(lambda m, args, out: calls.append(("plain", out)))
        layer.register_forward_hook(
            lambda m, args, kwargs, out: calls.append(("kw", args[0].tolist(), kwargs, out)),
            with_kwargs=True, always_call=True)
        layer.register_forward_hook(lambda m, args, out: calls.append(("first", out)),
                                    always_call=True, prepend=True)
        broken = layer.register_forward_hook(lambda m, args, out: 1 / 0, always_call=True)
        with pytest.warns(UserWarning, match="always_call=True`` raised an exception"):
            with pytest.raises(ValueError, match="forward failed"):
                layer(lib.ones(1), scale=3.0)
        assert calls == [("first", None), ("kw", [2.0], {"scale": 3.0}, None)], lib.__name__
        broken.remove()
        # a hook that ran before the error is not run again
        good, calls = nn_module.Linear(1, 1), []
        good.register_forward_hook(lambda m, args, out: calls.append("ran"), always_call=True)
        good.register_forward_hook(lambda m, args, out: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            good(lib.ones(1, 1))
        assert calls == ["ran"], lib.__name__
    handle = nn.Linear(1, 1).register_forward_hook(lambda m, a, o: None, always_call=True)
    handle.remove()
    assert not handle.extra[1], "remove() forgets the always_call mark too"


def test_full_backward_pre_hooks_and_hooks_match_torch(torch):
    """The pre-hook sees grad_output first and may replace it; the full hooks then see the
    new one with grad_input; prepend puts a hook first. Calls and gradients as torch's."""
    values = np.random.default_rng(3).standard_normal((2, 3)).astype(np.float32)
    theirs_layer = torch.nn.Linear(3, 2)
    ours_layer = nn.Linear(3, 2)
    ours_layer.load_state_dict({k: edugrad.tensor(v.detach().numpy())
                                for k, v in theirs_layer.state_dict().items()})
    runs = []
    for lib, layer in ((edugrad, ours_layer), (torch, theirs_layer)):
        calls = []
        layer.register_full_backward_pre_hook(
            lambda m, go: calls.append(("pre", go[0].tolist())) or (go[0] * 2,))
        layer.register_full_backward_pre_hook(lambda m, go: calls.append(("pre first",)),
                                              prepend=True)
        layer.register_full_backward_hook(
            lambda m, gi, go: calls.append(("full", gi[0].tolist(), go[0].tolist())))
        layer.register_full_backward_hook(lambda m, gi, go: calls.append(("full first",)),
                                          prepend=True)
        x = lib.tensor(values, requires_grad=True)
        (layer(x) * lib.tensor([[1.0, -1.0]])).sum().backward()
        runs.append((calls, x.grad, layer.weight.grad))
    (ours, x_ours, w_ours), (theirs, x_theirs, w_theirs) = runs
    assert [c[0] for c in ours] == [c[0] for c in theirs] == ["pre first", "pre", "full first",
                                                               "full"]
    np.testing.assert_allclose(ours[1][1], theirs[1][1])         # grad_output as it came
    np.testing.assert_allclose(ours[3][1], theirs[3][1], rtol=1e-6)  # grad_input
    np.testing.assert_allclose(ours[3][2], theirs[3][2])         # the doubled grad_output
    assert_same(x_ours, x_theirs)
    assert_same(w_ours, w_theirs)


def test_full_backward_pre_hook_by_hand():
    layer = nn.Linear(2, 1, bias=False)
    with edugrad.no_grad():
        layer.weight.copy_(edugrad.tensor([[3.0, 5.0]]))
    layer.register_full_backward_pre_hook(lambda m, go: (go[0] * 10,))
    x = edugrad.tensor([[1.0, 2.0]], requires_grad=True)
    layer(x).sum().backward()
    assert x.grad.tolist() == [[30.0, 50.0]] and layer.weight.grad.tolist() == [[10.0, 20.0]]
    with pytest.raises(RuntimeError, match="pre-hook must return None or a grad_output of 1"):
        bad = nn.Linear(2, 1)
        bad.register_full_backward_pre_hook(lambda m, go: (go[0], go[0]))
        bad(x).sum().backward()


def test_requires_grad_and_dtype_moves(torch):
    model = nn.Sequential(nn.Conv1d(2, 3, 3), nn.BatchNorm1d(3), nn.PReLU())
    assert model.requires_grad_(False) is model
    assert not any(p.requires_grad for p in model.parameters())
    model.requires_grad_()
    assert all(p.requires_grad for p in model.parameters())
    weight = model[0].weight
    assert model.double() is model and weight.dtype is edugrad.float64
    assert model[0].weight is weight  # parameters keep their identity (optimizers hold them)
    assert model[1].running_mean.dtype is edugrad.float64
    assert model[1].num_batches_tracked.dtype is edugrad.int64  # only floats move
    model.float()
    assert {p.dtype for p in model.parameters()} == {edugrad.float32}
    model.to(edugrad.float64)
    assert {p.dtype for p in model.parameters()} == {edugrad.float64}
    model.to("cpu", edugrad.float32)
    assert {p.dtype for p in model.parameters()} == {edugrad.float32}
    with pytest.raises(TypeError, match="floating point"):
        model.to(edugrad.int64)
    assert model.half() is model  # to() carries float16
    assert model[0].weight.dtype is edugrad.float16
    model.float()
    # bfloat16: the cpu backend emulates it (float32 storage rounded per op)
    assert model.bfloat16() is model and model[0].weight.dtype is edugrad.bfloat16
    assert model[0].weight is weight
    model.float()
    assert model[0].weight.dtype is edugrad.float32


def test_extra_repr_of_a_custom_module():
    class Scale(nn.Module):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def extra_repr(self):
            return f"factor={self.factor}"

    assert repr(Scale(2)) == "Scale(factor=2)"
    nested = nn.Sequential(Scale(3))
    assert repr(nested) == "Sequential(\n  (0): Scale(factor=3)\n)"


# ---- the containers ------------------------------------------------------------------------------
def test_module_dict_behaves_like_torch(torch):
    for nn_module in (nn, torch.nn):
        d = nn_module.ModuleDict({"b": nn_module.ReLU(), "a": nn_module.Tanh()})
        d.update([("c", nn_module.Identity())])
        d["a"] = nn_module.Sigmoid()  # replacing keeps the key's place
        assert list(d) == ["b", "a", "c"] and list(d.keys()) == ["b", "a", "c"]
        assert [type(m).__name__ for m in d.values()] == ["ReLU", "Sigmoid", "Identity"]
        assert "c" in d and len(d) == 3
        assert type(d.pop("b")).__name__ == "ReLU" and list(d) == ["a", "c"]
        del d["a"]
        assert list(d.items())[0][0] == "c"
        d.clear()
        assert len(d) == 0
    with pytest.raises(ValueError, match="sequence element #0"):
        nn.ModuleDict(["ab"])
    with pytest.raises(TypeError, match="is not a Module subclass"):
        nn.ModuleDict({"x": 3})


def test_parameter_list_behaves_like_torch(torch):
    for lib, nn_module in ((edugrad, nn), (torch, torch.nn)):
        plist = nn_module.ParameterList([nn_module.Parameter(lib.ones(2))])
        plist.append(lib.zeros(3))  # a plain tensor becomes a Parameter
        plist.extend([nn_module.Parameter(lib.ones(1))])
        plist += [nn_module.Parameter(lib.ones(4))]
        assert len(plist) == 4 and isinstance(plist[1], nn_module.Parameter)
        assert plist[1].requires_grad
        assert [tuple(p.shape) for p in plist] == [(2,), (3,), (1,), (4,)]
        assert tuple(plist[-1].shape) == (4,) and len(plist[1:3]) == 2
        assert [k for k, _ in plist.named_parameters()] == ["0", "1", "2", "3"]
        plist[0] = nn_module.Parameter(lib.ones(5))
        assert tuple(plist[0].shape) == (5,)
    with pytest.raises(IndexError, match="out of range"):
        nn.ParameterList()[0]
    with pytest.raises(TypeError, match="iterable"):
        nn.ParameterList().extend(edugrad.ones(2))


def test_parameter_dict_behaves_like_torch(torch):
    for lib, nn_module in ((edugrad, nn), (torch, torch.nn)):
        pdict = nn_module.ParameterDict({"w": nn_module.Parameter(lib.ones(2))})
        pdict.update({"b": lib.zeros(3)})
        pdict["z"] = nn_module.Parameter(lib.ones(1))
        assert list(pdict) == ["w", "b", "z"] and len(pdict) == 3 and "b" in pdict
        assert isinstance(pdict["b"], nn_module.Parameter)
        assert [k for k, _ in pdict.named_parameters()] == ["w", "b", "z"]
        assert pdict.get("missing") is None
        assert tuple(pdict.pop("w").shape) == (2,) and list(pdict.keys()) == ["b", "z"]
        pdict.clear()
        assert len(pdict) == 0 and not list(pdict.parameters())
    with pytest.raises(KeyError):
        nn.ParameterDict()["nope"]


def test_parameters_to_vector_and_back(torch):
    ours, theirs = make_model(nn), make_model(torch.nn)
    ours.load_state_dict({k: edugrad.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    vec_ours = nn.utils.parameters_to_vector(ours.parameters())
    vec_theirs = torch.nn.utils.parameters_to_vector(theirs.parameters())
    assert_same(vec_ours, vec_theirs, "parameters_to_vector")
    vec_ours.sum().backward()  # differentiable: every parameter gets ones
    assert all(np.all(p.grad.numpy() == 1) for p in ours.parameters())
    new = np.arange(vec_theirs.numel(), dtype=np.float32)
    nn.utils.vector_to_parameters(edugrad.tensor(new), ours.parameters())
    torch.nn.utils.vector_to_parameters(torch.tensor(new), theirs.parameters())
    for (key, mine), (_, expected) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert_same(mine, expected, key)
    assert ours.stem.weight.requires_grad
    with pytest.raises(RuntimeError, match="at least"):
        nn.utils.vector_to_parameters(edugrad.zeros(3), ours.parameters())
    with pytest.raises(TypeError, match="expected edugrad.Tensor"):
        nn.utils.vector_to_parameters([1.0], ours.parameters())
