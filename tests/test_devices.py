"""Devices: `device=` on every factory, moving tensors (with gradients flowing back across the
move), the default device and $EDUGRAD_DEVICE, registering backends by a call and through the
`edugrad.backends` entry-point group, the error for mixing devices, and Module.to with an
optimizer made before the move.

"python" (the pure-Python backend) is the second device everywhere, so every test runs
without a GPU.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import edugrad
from edugrad import backend as backend_registry
from edugrad.backends.python_backend import PythonBackend

DEVICES = ["cpu", "python"]


@pytest.fixture
def restore_default_device():
    previous = edugrad.default_device()
    yield
    edugrad.set_default_device(previous)


# ---- device= on every factory -------------------------------------------------------------------

FACTORIES = {
    "tensor": lambda device: edugrad.tensor([[1.0, 2.0], [3.0, 4.0]], device=device),
    "Tensor": lambda device: edugrad.Tensor([1, 2, 3], device=device),
    "zeros": lambda device: edugrad.zeros(2, 3, device=device),
    "ones": lambda device: edugrad.ones((2, 3), device=device),
    "empty": lambda device: edugrad.empty(4, device=device),
    "full": lambda device: edugrad.full((2, 2), 7, device=device),
    "arange": lambda device: edugrad.arange(5, device=device),
    "linspace": lambda device: edugrad.linspace(0, 1, 5, device=device),
    "eye": lambda device: edugrad.eye(3, device=device),
    "rand": lambda device: edugrad.rand(3, 2, device=device),
    "randn": lambda device: edugrad.randn(3, 2, device=device),
    "randint": lambda device: edugrad.randint(0, 10, (4,), device=device),
}
LIKE_FACTORIES = {
    "zeros_like": lambda x, **kw: edugrad.zeros_like(x, **kw),
    "ones_like": lambda x, **kw: edugrad.ones_like(x, **kw),
    "empty_like": lambda x, **kw: edugrad.empty_like(x, **kw),
    "full_like": lambda x, **kw: edugrad.full_like(x, 2.5, **kw),
    "rand_like": lambda x, **kw: edugrad.rand_like(x, **kw),
    "randn_like": lambda x, **kw: edugrad.randn_like(x, **kw),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(FACTORIES))
def test_every_factory_takes_a_device(name, device):
    made = FACTORIES[name](device)
    reference = FACTORIES[name]("cpu")
    assert made.device == device
    assert (made.shape, made.dtype) == (reference.shape, reference.dtype)
    if name not in ("rand", "randn", "randint", "empty"):
        np.testing.assert_array_equal(made.numpy(), reference.numpy())


@pytest.mark.parametrize("name", list(LIKE_FACTORIES))
def test_like_factories_follow_their_input_or_take_a_device(name):
    like = LIKE_FACTORIES[name]
    on_python = edugrad.ones(2, 3, device="python")
    assert like(on_python).device == "python"
    made = like(edugrad.ones(2, 3), device="python")
    assert (made.device, made.shape, made.dtype) == ("python", (2, 3), edugrad.float32)


def test_random_factories_respect_their_ranges_on_every_device():
    for device in DEVICES:
        values = edugrad.randint(3, 7, (200,), device=device).numpy()
        assert values.min() >= 3 and values.max() < 7
        uniform = edugrad.rand(200, device=device).numpy()
        assert ((uniform >= 0) & (uniform < 1)).all()


# ---- moving tensors -----------------------------------------------------------------------------

def test_to_and_back_keeps_values_dtype_and_shape():
    x = edugrad.tensor(np.arange(12, dtype=np.float64).reshape(3, 4))
    there = x.to("python")
    back = there.to("cpu")
    assert (there.device, back.device) == ("python", "cpu")
    assert there.dtype is back.dtype is edugrad.float64
    np.testing.assert_array_equal(back.numpy(), x.numpy())
    assert x.to("cpu") is x  # already there: no copy, no graph node
    assert there.cpu().device == "cpu"


def test_to_with_a_device_and_a_dtype():
    x = edugrad.tensor([1.5, -2.5])
    moved = x.to("python", edugrad.float64)
    assert (moved.device, moved.dtype) == ("python", edugrad.float64)
    assert x.to(moved).device == "python"  # to(other_tensor): its device and dtype


@pytest.mark.parametrize("device", DEVICES)
def test_device_kind_questions_read_the_device(device):
    x = edugrad.ones(2, device=device)
    assert (x.is_cpu, x.is_cuda, x.is_xpu, x.is_mps) == (device == "cpu", False, False, False)


def test_device_kind_questions_answer_as_torch():
    torch = pytest.importorskip("torch", reason="compared with torch's answers")
    names = ("is_cpu", "is_cuda", "is_xpu", "is_mps")
    assert ([getattr(edugrad.ones(2), name) for name in names]
            == [getattr(torch.ones(2), name) for name in names])


def test_torch_backends_flags_import_as_modules():
    """`import torch.backends.cudnn as cudnn; cudnn.benchmark = True` (DCGAN) works rewritten."""
    import edugrad.backends.cuda.matmul as matmul
    import edugrad.backends.cudnn as cudnn
    from edugrad.backends.mps import is_available

    assert cudnn is edugrad.backends.cudnn and matmul is edugrad.backends.cuda.matmul
    assert not is_available() and not cudnn.is_available()
    before = cudnn.benchmark
    try:
        cudnn.benchmark = not before
        assert edugrad.backends.cudnn.benchmark is (not before)
    finally:
        cudnn.benchmark = before
    assert "benchmark=" in repr(cudnn) and "__name__" not in repr(cudnn)


@pytest.mark.parametrize("source, target", [("cpu", "python"), ("python", "cpu")])
def test_gradients_flow_back_across_a_device_move(source, target):
    x = edugrad.tensor([1.0, 2.0, 3.0], device=source, requires_grad=True)
    moved = x.to(target)
    assert moved.grad_fn is not None and moved.grad_fn.name == "ToDeviceBackward"
    # one path goes there and back (two moves), one stays
    loss = (moved * moved).sum().to(source) + (x * 3).sum()
    loss.backward()
    assert x.grad.device == source
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.array([1.0, 2.0, 3.0]) + 3)


def test_cuda_without_cupy_is_a_clear_error():
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed: tests/test_cuda.py covers cuda")
    with pytest.raises(ImportError, match="needs CuPy.*edugrad.doctor"):
        edugrad.ones(2).cuda()


# ---- the default device -------------------------------------------------------------------------

def test_set_default_device_changes_where_factories_put_tensors(restore_default_device):
    edugrad.set_default_device("python")
    assert edugrad.default_device() == "python"
    for made in (edugrad.zeros(2), edugrad.tensor([1, 2]), edugrad.arange(3), edugrad.rand(2)):
        assert made.device == "python"
    assert edugrad.zeros(2, device="cpu").device == "cpu"  # an explicit device still wins
    edugrad.set_default_device("cpu")
    assert edugrad.ones(1).device == "cpu"


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != backend_registry.ENV_DEFAULT_DEVICE}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=environment, timeout=120)


def test_the_environment_variable_sets_the_default_device():
    code = """
        import edugrad
        print(edugrad.default_device(), edugrad.zeros(2).device, edugrad.tensor([1.0]).device)
    """
    assert run_python(code, EDUGRAD_DEVICE="python").stdout.split() == ["python"] * 3
    assert run_python(code).stdout.split() == ["cpu"] * 3


def test_the_environment_variable_is_read_once():
    code = """
        import os, edugrad
        first = edugrad.default_device()
        os.environ["EDUGRAD_DEVICE"] = "cpu"
        print(first, edugrad.default_device(), edugrad.zeros(1).device)
    """
    assert run_python(code, EDUGRAD_DEVICE="python").stdout.split() == ["python"] * 3


def test_an_unknown_device_names_the_known_ones():
    known = r"unknown device 'nowhere'.*cpu.*python.*register_backend"
    with pytest.raises(ValueError, match=known):
        edugrad.zeros(1, device="nowhere")
    result = run_python("import edugrad; edugrad.zeros(1)", EDUGRAD_DEVICE="nowhere")
    assert "unknown device 'nowhere'" in result.stderr


# ---- registering backends -----------------------------------------------------------------------

class Counting(PythonBackend):
    """The pure-Python backend, counting its ADD calls: proof that it was the one used."""

    adds = 0

    def add(self, x, y):
        type(self).adds += 1
        return super().add(x, y)


def test_registration_by_a_call():
    edugrad.register_backend("counting", Counting)
    x = edugrad.ones(3, device="counting")
    y = (x + x).sum()
    assert (x.device, y.item()) == ("counting", 6.0)
    assert isinstance(edugrad.get_backend("counting"), Counting) and Counting.adds >= 1


def test_registration_by_a_module_and_class_string():
    edugrad.register_backend("by-path", "edugrad.backends.python_backend:PythonBackend")
    assert type(edugrad.get_backend("by-path")) is PythonBackend
    assert edugrad.full((2,), 1.5, device="by-path").tolist() == [1.5, 1.5]


def test_built_in_names_cannot_be_registered():
    for name in ("cpu", "cuda", "cuda:1"):
        with pytest.raises(ValueError, match="built-in device name"):
            edugrad.register_backend(name, PythonBackend)


def test_registration_through_the_entry_point_group(tmp_path, monkeypatch):
    """A tiny installed distribution: its package, and a .dist-info whose entry_points.txt
    puts a backend in the `edugrad.backends` group. Nothing in edugrad names it."""
    package = tmp_path / "edugrad_tiny_backend"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        from edugrad.backends.python_backend import PythonBackend

        class TinyBackend(PythonBackend):
            name = "tiny"
    """))
    info = tmp_path / "edugrad_tiny_backend-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: edugrad-tiny-backend\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[edugrad.backends]\ntiny = edugrad_tiny_backend:TinyBackend\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    backend = edugrad.get_backend("tiny")
    assert type(backend).__name__ == "TinyBackend"
    assert type(backend).__module__ == "edugrad_tiny_backend"  # loaded when first asked for
    x = edugrad.arange(4, device="tiny")
    assert (x.device, (x * 2).tolist()) == ("tiny", [0, 2, 4, 6])


# ---- mixing devices -----------------------------------------------------------------------------

MIXED = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "matmul": lambda a, b: a @ b,
    "cmplt": lambda a, b: a < b,  # comparisons have no Function: TensorData's check names the
    "cmpeq": lambda a, b: a == b,  # primitive
    "maximum": lambda a, b: edugrad.maximum(a, b),
    "where": lambda a, b: edugrad.where(a > 0, a, b),
    "cat": lambda a, b: edugrad.cat([a, b]),
    "stack": lambda a, b: edugrad.stack([a, b]),
    "add_": lambda a, b: b.add_(a),
    "gather": lambda a, b: b.gather(1, edugrad.zeros(2, 1, dtype=edugrad.int64)),
    "index": lambda a, b: b[edugrad.tensor([0])],
    "setitem": lambda a, b: b.__setitem__(0, a[0]),
}


@pytest.mark.parametrize("name", list(MIXED))
def test_mixing_devices_in_one_op_names_the_op_and_both_devices(name):
    a, b = edugrad.ones(2, 2), edugrad.ones(2, 2, device="python")
    with pytest.raises(RuntimeError) as caught:
        MIXED[name](a, b)
    message = str(caught.value)
    assert "cpu" in message and "python" in message, message
    assert message.startswith(name.rstrip("_")), message


def test_a_failed_mixed_op_changes_nothing():
    a, b = edugrad.ones(2), edugrad.full((2,), 3.0, device="python")
    with pytest.raises(RuntimeError):
        b.add_(a)
    assert (b.device, b.tolist(), b._version) == ("python", [3.0, 3.0], 0)


def test_copy_between_devices_is_explicit_and_allowed():
    a, b = edugrad.tensor([1.0, 2.0]), edugrad.zeros(2, device="python")
    b.copy_(a)  # as in PyTorch, copy_ is the one op that moves data for you
    assert (b.device, b.tolist()) == ("python", [1.0, 2.0])


# ---- Module.to and the optimizer ----------------------------------------------------------------

def make_model():
    nn = pytest.importorskip("edugrad.nn", reason="edugrad.nn is not there yet")
    if not hasattr(nn, "Linear"):
        pytest.skip("edugrad.nn has no Linear yet")

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden, self.out = nn.Linear(3, 4), nn.Linear(4, 2)
            self.norm = nn.BatchNorm1d(4)  # running_mean, running_var, num_batches_tracked

        def forward(self, x):
            return self.out(self.norm(self.hidden(x)).relu())

    edugrad.manual_seed(0)
    return Model()


def sgd(params):
    optim = pytest.importorskip("edugrad.optim", reason="edugrad.optim is not there yet")
    return optim.SGD(params, lr=0.1, momentum=0.9)


def test_module_to_moves_parameters_and_buffers_and_keeps_their_identity():
    model = make_model()
    params = list(model.parameters())
    model.to("python")
    assert list(model.parameters()) == params and all(a is b for a, b in
                                                      zip(model.parameters(), params))
    assert {p.device for p in model.parameters()} == {"python"}
    assert {b.device for b in model.buffers()} == {"python"}
    assert {b.dtype for _, b in model.named_buffers() if _.endswith("num_batches_tracked")} == {
        edugrad.int64}
    model.cpu()
    assert {t.device for t in [*model.parameters(), *model.buffers()]} == {"cpu"}


def test_an_optimizer_made_before_the_move_steps_the_moved_parameters():
    model = make_model()
    optimizer = sgd(model.parameters())
    model.to("python")
    before = [p.detach().numpy().copy() for p in model.parameters()]
    x = edugrad.randn(5, 3, device="python")
    (model(x) ** 2).sum().backward()
    grads = [p.grad.numpy() for p in model.parameters()]
    optimizer.step()
    assert all(p.device == "python" for p in model.parameters())
    for param, old, grad in zip(model.parameters(), before, grads):  # first step: p - lr * g
        np.testing.assert_allclose(param.detach().numpy(), old - 0.1 * grad, rtol=1e-5,
                                   atol=1e-7)
    assert any(np.abs(grad).max() > 1e-3 for grad in grads)


def test_optimizer_state_follows_module_to():
    model = make_model()
    optimizer = sgd(model.parameters())
    model(edugrad.randn(5, 3)).sum().backward()
    optimizer.step()  # momentum buffers are made on cpu
    optimizer.zero_grad()
    model.to("python")
    model(edugrad.randn(5, 3, device="python")).sum().backward()
    optimizer.step()  # must not mix cpu state with python gradients
    states = [value for state in optimizer.state.values() for value in state.values()
              if isinstance(value, edugrad.Tensor)]
    assert states and {value.device for value in states} == {"python"}
