"""The CuPy backend on a real GPU: every primitive against the NumPy backend, every op of
tests/test_ops.py (values and gradients) on "cuda" against "cpu", training steps, moving
between devices, and the promise that a training step copies nothing from the device to the
host unless the user asks (`.item()`, `.numpy()`).

Skipped, with the reason, where CuPy is not installed or sees no GPU. The same op and
conformance tables also run on cuda with `pytest tests/test_ops.py tests/test_conformance.py
--backend cuda`.
"""

from __future__ import annotations

import numpy as np
import pytest

cupy = pytest.importorskip(
    "cupy", reason="CuPy is not installed (pip install 'edugrad[cuda]'; python -m edugrad.doctor "
                   "names the wheel for your CUDA version)")


def _gpu_count() -> tuple[int, str]:
    try:
        return cupy.cuda.runtime.getDeviceCount(), ""
    except Exception as error:  # no driver, or a wheel for another CUDA version
        return 0, f"{type(error).__name__}: {error}"


GPUS, WHY_NOT = _gpu_count()
if GPUS == 0:
    pytest.skip(f"CuPy is installed but sees no CUDA GPU ({WHY_NOT or 'device count 0'}); "
                "python -m edugrad.doctor says why", allow_module_level=True)

import edugrad  # noqa: E402
from edugrad import nn, optim  # noqa: E402
from edugrad.checking import check  # noqa: E402
from edugrad.backends.cupy_backend import CupyBackend  # noqa: E402
from edugrad.backends.numpy_backend import NumpyBackend  # noqa: E402
from edugrad.ops import Op  # noqa: E402

try:  # the op table of tests/test_ops.py (it needs PyTorch, the oracle, and skips without it)
    from test_ops import CASES, _assert_results_equal, _run
    from helpers import TOLERANCE, sample_inputs
except (ImportError, pytest.skip.Exception):
    CASES = []


# ---- primitives and ops -------------------------------------------------------------------------

@pytest.mark.parametrize("op", list(Op), ids=lambda op: op.name)
def test_every_primitive_conforms_on_the_gpu(op):
    backend = CupyBackend("cuda:0")
    assert op.required or backend.has(op), "CuPy should offer every accelerated primitive"
    result = check.check_primitive(op, backend, NumpyBackend("cpu"))
    assert result.status == check.PASS, f"{op.name}: {result.status}\n{result.detail}"


@pytest.mark.skipif(not CASES, reason="tests/test_ops.py could not be imported (PyTorch?)")
@pytest.mark.parametrize("case", CASES, ids=repr)
def test_ops_agree_with_cpu(case):
    """Forward values and the gradients of every op of tests/test_ops.py, cuda against cpu."""
    arrays = sample_inputs(4, case.example, case.domain)
    _assert_results_equal(case, _run(case, arrays, "cuda"), _run(case, arrays, "cpu"),
                          **TOLERANCE["float64"])


def test_tensors_live_on_the_gpu():
    x = edugrad.ones(2, 3, device="cuda")
    assert x.device == "cuda:0"
    assert isinstance(x._data.buffer, cupy.ndarray)
    assert x._data.buffer.device.id == 0
    assert edugrad.get_backend("cuda") is edugrad.get_backend("cuda:0")


def test_cuda_and_cpu_round_trip_with_gradients():
    x = edugrad.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x.cuda()
    assert y.device == "cuda:0"
    loss = (y * y).sum().cpu() + x.sum()
    loss.backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), [3.0, -3.0, 7.0])


def test_mixing_cuda_and_cpu_names_both_devices():
    with pytest.raises(RuntimeError, match="cpu.*cuda:0|cuda:0.*cpu"):
        edugrad.ones(2) + edugrad.ones(2, device="cuda")


@pytest.mark.skipif(GPUS < 2, reason="only one GPU")
def test_a_second_gpu():
    x = edugrad.arange(4.0, device="cuda:1")
    assert x.device == "cuda:1" and x._data.buffer.device.id == 1
    assert (x * 2).tolist() == [0.0, 2.0, 4.0, 6.0]
    with pytest.raises(RuntimeError, match="cuda:0.*cuda:1|cuda:1.*cuda:0"):
        edugrad.ones(4, device="cuda:0") + x


def test_manual_seed_repeats_random_numbers_on_the_gpu():
    edugrad.manual_seed(3)
    first = edugrad.rand(5, device="cuda").numpy()
    edugrad.manual_seed(3)
    np.testing.assert_array_equal(edugrad.rand(5, device="cuda").numpy(), first)


# ---- training steps -----------------------------------------------------------------------------

def mlp_and_batch(device: str, seed: int = 0):
    """The same MLP (weights made on cpu, then moved) and batch on `device`."""
    edugrad.manual_seed(seed)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 4)).to(device)
    rng = np.random.default_rng(seed)
    x = edugrad.tensor(rng.standard_normal((16, 20)).astype(np.float32), device=device)
    y = edugrad.tensor(rng.integers(0, 4, 16), device=device)
    return model, x, y


def cnn_and_batch(device: str, seed: int = 0):
    edugrad.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).to(device)
    rng = np.random.default_rng(seed)
    x = edugrad.tensor(rng.standard_normal((5, 1, 8, 8)).astype(np.float32), device=device)
    y = edugrad.tensor(rng.integers(0, 3, 5), device=device)
    return model, x, y


@pytest.mark.parametrize("make", [mlp_and_batch, cnn_and_batch], ids=["mlp", "cnn"])
def test_a_training_step_on_cuda_matches_cpu(make):
    results = {}
    for device in ("cpu", "cuda"):
        model, x, y = make(device)
        # SGD, not Adam: Adam divides by sqrt(v), which turns rounding noise in a gradient
        # near zero into a full-size step, and the comparison would test that, not the GPU
        optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        losses = []
        for _ in range(3):
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        results[device] = (losses, [p.detach().numpy() for p in model.parameters()])
    np.testing.assert_allclose(results["cuda"][0], results["cpu"][0], rtol=1e-4, atol=1e-5)
    for on_gpu, on_cpu in zip(results["cuda"][1], results["cpu"][1]):
        np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-3, atol=1e-5)
    assert results["cuda"][0][-1] < results["cuda"][0][0]


@pytest.fixture
def device_to_host_copies(monkeypatch):
    """Every device-to-host copy the CuPy backend makes: its TO_HOST, and cupy.asnumpy."""
    copies = []
    to_host = CupyBackend.to_host
    asnumpy = cupy.asnumpy

    def counted_to_host(self, x):
        copies.append(("CupyBackend.to_host", tuple(x.shape)))
        return to_host(self, x)

    def counted_asnumpy(x, *args, **kwargs):
        copies.append(("cupy.asnumpy", tuple(x.shape)))
        return asnumpy(x, *args, **kwargs)

    monkeypatch.setattr(CupyBackend, "to_host", counted_to_host)
    monkeypatch.setattr(cupy, "asnumpy", counted_asnumpy)
    return copies


def test_a_training_step_written_with_tensor_ops_copies_nothing_to_the_host(
        device_to_host_copies):
    rng = np.random.default_rng(0)
    x = edugrad.tensor(rng.standard_normal((16, 20)).astype(np.float32), device="cuda")
    y = edugrad.tensor(rng.integers(0, 4, (16, 1)), device="cuda")
    w = edugrad.tensor(rng.standard_normal((20, 4)).astype(np.float32), device="cuda",
                       requires_grad=True)
    b = edugrad.zeros(4, device="cuda", requires_grad=True)
    for _ in range(2):
        loss = -(x @ w + b).relu().log_softmax(dim=1).gather(1, y).mean()
        loss.backward()
        with edugrad.no_grad():
            w -= 0.1 * w.grad
            b -= 0.1 * b.grad
        w.grad = b.grad = None
    edugrad.get_backend("cuda").synchronize()
    assert device_to_host_copies == []
    loss.item()  # asked for: exactly one copy
    assert len(device_to_host_copies) >= 1


def test_an_nn_training_step_copies_nothing_to_the_host(device_to_host_copies):
    model, x, y = mlp_and_batch("cuda")
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    for _ in range(2):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    edugrad.get_backend("cuda").synchronize()
    assert device_to_host_copies == []


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_a_jitted_step_on_cuda_gives_the_eager_numbers_and_copies_nothing(
        device_to_host_copies, dropout):
    """edugrad.jit on CuPy: the replay is one CUDA graph launch (without dropout; with it,
    the recorded CuPy calls one by one, since a graph would repeat its random numbers), and
    10 steps match the eager ones bit for bit, with no host copy; a learning rate filled in
    place halfway reaches the graph."""
    results = {}
    for jit in (False, True):
        model, x, y = mlp_and_batch("cuda")
        model = nn.Sequential(model, nn.Dropout(dropout))
        optimizer = optim.Adam(model.parameters(), lr=edugrad.tensor(1e-2, device="cuda"),
                               capturable=True)

        def step(x, y):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            return loss

        runner = edugrad.jit(step) if jit else step
        edugrad.manual_seed(7)
        device_to_host_copies.clear()
        losses = [runner(x, y) for _ in range(5)]
        optimizer.param_groups[0]["lr"].fill_(3e-3)
        losses += [runner(x, y) for _ in range(5)]
        edugrad.get_backend("cuda").synchronize()
        assert device_to_host_copies == []
        if jit:
            assert runner.replays == 7
            assert ("as one device graph (CupyBackend.graph)" if dropout == 0 else
                    "call by call: it draws random numbers") in runner.trace
        results[jit] = ([loss.item() for loss in losses],
                        [p.detach().numpy() for p in model.parameters()])
    assert results[True][0] == results[False][0]
    for jitted, eager in zip(results[True][1], results[False][1]):
        np.testing.assert_array_equal(jitted, eager)


def test_module_cuda_moves_parameters_and_the_optimizer_keeps_working():
    model, x, y = mlp_and_batch("cpu")
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    model.cuda()
    assert {p.device for p in model.parameters()} == {"cuda:0"}
    before = [p.detach().numpy().copy() for p in model.parameters()]
    nn.functional.cross_entropy(model(x.cuda()), y.cuda()).backward()
    optimizer.step()
    after = [p.detach().numpy() for p in model.parameters()]
    assert any(not np.allclose(a, b) for a, b in zip(after, before))
