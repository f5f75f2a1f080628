"""edugrad.optim against torch.optim (the oracle), and Lion against its paper, by hand.

Every optimizer runs side by side with PyTorch's from the same initial parameters; at each step
both get the same gradient function of their own current parameters (so any difference would
grow), and the parameters are compared after every step, in float64, to a tight tolerance.
"""

from __future__ import annotations

import math
import random
import warnings

import numpy as np
import pytest

import edugrad
from edugrad import optim
from edugrad.optim import lr_scheduler

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (5,), ()]
STEPS = 8


def initial_arrays(dtype="float64"):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


NOISE = np.random.default_rng(1)
NOISE = [[NOISE.standard_normal(shape) for shape in SHAPES] for _ in range(2 * STEPS)]


def gradient(values: np.ndarray, step: int, i: int) -> np.ndarray:
    """A fixed random function of the parameter's current values."""
    return (np.cos(values * (i + 1.5)) + NOISE[step][i]).astype(values.dtype)


def to_numpy(tensor) -> np.ndarray:
    return tensor.detach().numpy()


class Run:
    """One framework's side: its parameters and optimizer. `lib` is edugrad or torch."""

    def __init__(self, lib, name: str, options: dict, group_options=None, dtype="float64"):
        self.lib = lib
        self.params = [lib.tensor(a, requires_grad=True) for a in initial_arrays(dtype)]
        self.cls = getattr(optim if lib is edugrad else torch.optim, name)
        self.options, self.group_options = options, group_options
        self.opt = self.make_optimizer()

    def make_optimizer(self):
        if self.group_options is None:
            return self.cls(self.params, **self.options)
        groups = [{"params": self.params[:1], **self.group_options[0]},
                  {"params": self.params[1:], **self.group_options[1]}]
        return self.cls(groups, **self.options)

    def step(self, step: int) -> None:
        for i, param in enumerate(self.params):
            param.grad = self.lib.tensor(gradient(to_numpy(param), step, i))
        self.opt.step()

    def values(self) -> list:
        return [to_numpy(p) for p in self.params]


def assert_same(ours: list, theirs: list, rtol=1e-10, atol=1e-12, what="") -> None:
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == b.shape and a.dtype == b.dtype, f"{what} param {i}"
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{what} param {i}")


CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05)),
    ("SGD", dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, betas=(0.9, 0.6), amsgrad=True)),  # a small beta2: v_max matters
    ("Adam", dict(lr=0.05, betas=(0.9, 0.6), amsgrad=True, weight_decay=0.1, maximize=True)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, betas=(0.9, 0.6), weight_decay=0.3, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.1, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1, maximize=True)),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in options.items())}" for name, options in CASES]


@pytest.mark.parametrize("name, options", CASES, ids=IDS)
def test_matches_torch_every_step(name, options):
    ours, theirs = Run(edugrad, name, options), Run(torch, name, options)
    for step in range(STEPS):
        ours.step(step)
        theirs.step(step)
        assert_same(ours.values(), theirs.values(), what=f"{name} step {step}")


@pytest.mark.parametrize("name, options", CASES, ids=IDS)
def test_state_dict_round_trip_mid_training_matches_torch(name, options):
    ours, theirs = Run(edugrad, name, options), Run(torch, name, options)
    for step in range(STEPS // 2):
        ours.step(step)
        theirs.step(step)
    saved, expected = ours.opt.state_dict(), theirs.opt.state_dict()
    # PyTorch's layout: the same indices, the same state names, the same values
    assert saved["param_groups"][0]["params"] == expected["param_groups"][0]["params"]
    assert sorted(saved["state"]) == sorted(expected["state"])
    for index, state in saved["state"].items():
        assert set(state) == set(expected["state"][index])
        for key, value in state.items():
            if key != "step":
                np.testing.assert_allclose(to_numpy(value), to_numpy(expected["state"][index][key]),
                                           rtol=1e-10, atol=1e-12)
            else:
                assert value == int(expected["state"][index][key])
    ours.opt = ours.make_optimizer()  # a fresh optimizer, resumed from the saved state
    ours.opt.load_state_dict(saved)
    for step in range(STEPS // 2, STEPS):
        ours.step(step)
        theirs.step(step)
        assert_same(ours.values(), theirs.values(), what=f"{name} resumed, step {step}")


@pytest.mark.parametrize("name, options", [("SGD", dict(lr=0.1, momentum=0.9)),
                                           ("Adam", dict(lr=0.05, amsgrad=True)),
                                           ("RMSprop", dict(lr=0.01, centered=True))])
def test_resumes_from_a_torch_optimizer_state_dict(name, options):
    """PyTorch's layout, so a torch state dict (tensors converted) resumes here: its 0-d 'step'
    tensors become ints, its extra options (foreach, fused...) ride along unused."""
    ours, theirs = Run(edugrad, name, options), Run(torch, name, options)
    for step in range(STEPS // 2):
        theirs.step(step)
    saved = theirs.opt.state_dict()
    converted = {"param_groups": saved["param_groups"],
                 "state": {index: {key: edugrad.tensor(to_numpy(value)) for key, value in s.items()}
                           for index, s in saved["state"].items()}}
    for param, value in zip(ours.params, theirs.values()):
        param.data = edugrad.tensor(value)
    ours.opt.load_state_dict(converted)
    for step in range(STEPS // 2, STEPS):
        ours.step(step)
        theirs.step(step)
        assert_same(ours.values(), theirs.values(), what=f"{name} from torch, step {step}")


GROUPS = {
    "SGD": ([{"lr": 0.2, "momentum": 0.9}, {}], dict(lr=0.05)),
    "Adam": ([{"lr": 0.1, "amsgrad": True}, {"betas": (0.5, 0.9)}], dict(lr=0.01)),
    "AdamW": ([{"lr": 0.1}, {"weight_decay": 0.5}], dict(lr=0.01)),
    "RMSprop": ([{"lr": 0.03, "centered": True}, {"momentum": 0.7}], dict(lr=0.01)),
}


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_param_groups_with_their_own_options_match_torch(name):
    group_options, options = GROUPS[name]
    ours = Run(edugrad, name, options, group_options)
    theirs = Run(torch, name, options, group_options)
    for step in range(STEPS):
        if step == STEPS // 2:  # and through a state_dict round trip, groups and all
            saved = ours.opt.state_dict()
            ours.opt = ours.make_optimizer()
            ours.opt.load_state_dict(saved)
        ours.step(step)
        theirs.step(step)
        assert_same(ours.values(), theirs.values(), what=f"{name} step {step}")
    assert [g["lr"] for g in ours.opt.param_groups] == [g["lr"] for g in theirs.opt.param_groups]


@pytest.mark.parametrize("name, options", [("SGD", dict(lr=0.1, momentum=0.9)),
                                           ("Adam", dict(lr=0.01)), ("AdamW", dict(lr=0.01)),
                                           ("RMSprop", dict(lr=0.01, centered=True))])
def test_float32_matches_torch(name, options):
    ours = Run(edugrad, name, options, dtype="float32")
    theirs = Run(torch, name, options, dtype="float32")
    for step in range(STEPS):
        ours.step(step)
        theirs.step(step)
        assert all(p.dtype is edugrad.float32 for p in ours.params)
        assert_same(ours.values(), theirs.values(), rtol=1e-5, atol=1e-6, what=name)


# ---- Lion: the paper's rule, by hand in NumPy ---------------------------------------------------
@pytest.mark.parametrize("options", [dict(lr=0.01), dict(lr=0.02, betas=(0.8, 0.9),
                                                         weight_decay=0.5),
                                     dict(lr=0.01, weight_decay=0.1, maximize=True)])
def test_lion_follows_the_published_rule(options):
    lr, weight_decay = options["lr"], options.get("weight_decay", 0.0)
    beta1, beta2 = options.get("betas", (0.9, 0.99))
    sign = -1.0 if options.get("maximize") else 1.0
    ours = Run(edugrad, "Lion", options)
    params = initial_arrays()
    momenta = [np.zeros_like(p) for p in params]
    for step in range(STEPS):
        ours.step(step)
        for i, (p, m) in enumerate(zip(params, momenta)):
            g = sign * gradient(p, step, i)
            c = beta1 * m + (1 - beta1) * g
            params[i] = p - lr * (np.sign(c) + weight_decay * p)
            momenta[i] = beta2 * m + (1 - beta2) * g
        assert_same(ours.values(), params, what=f"Lion step {step}")
    saved = ours.opt.state_dict()
    assert set(saved["state"][0]) == {"exp_avg"}
    np.testing.assert_allclose(to_numpy(saved["state"][0]["exp_avg"]), momenta[0], rtol=1e-12)


def test_lion_defaults_are_the_papers():
    opt = optim.Lion([edugrad.zeros(2, requires_grad=True)])
    assert opt.defaults["betas"] == (0.9, 0.99) and opt.defaults["lr"] == 1e-4
    assert opt.defaults["weight_decay"] == 0.0


# ---- behaviour of the base class ----------------------------------------------------------------
def test_step_skips_parameters_without_gradients_and_runs_under_no_grad():
    a = edugrad.tensor([1.0, 2.0], requires_grad=True)
    b = edugrad.tensor([3.0], requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    (a * a).sum().backward()
    opt.step()
    assert b.tolist() == [3.0] and b not in opt.state
    assert a.is_leaf and a.grad_fn is None and a.requires_grad
    assert a._version == 1  # updated in place: the same Tensor object, a new buffer


def test_update_keeps_the_parameter_object_and_its_history_free():
    w = edugrad.tensor([[1.0, -1.0]], requires_grad=True)
    opt = optim.SGD([w], lr=0.5)
    before = id(w)
    loss = (w * 3.0).sum()
    loss.backward()
    opt.step()
    assert id(w) == before and w.tolist() == [[-0.5, -2.5]]
    loss2 = (w * w).sum()  # the updated parameter trains on
    loss2.backward()
    assert w.grad.tolist() == [[3.0 - 1.0, 3.0 - 5.0]]  # accumulated: 3 + 2w


def test_zero_grad():
    w = edugrad.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    grad = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad and w.grad.tolist() == [0.0, 0.0]  # zeroed in place
    opt.zero_grad()
    assert w.grad is None


def test_closure_is_evaluated_with_grad_and_its_loss_returned():
    w = edugrad.tensor([2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with edugrad.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 4.0 and w.tolist() == [1.0]


def test_add_param_group_and_defaults():
    a, b = edugrad.zeros(2, requires_grad=True), edugrad.zeros(3, requires_grad=True)
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert len(opt.param_groups) == 2
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.9
    assert len(opt.param_groups[1]["params"]) == 1 and opt.param_groups[1]["params"][0] is b


def test_param_groups_may_carry_their_own_keys():
    """As in PyTorch: a group may hold anything else a user wants to keep with it."""
    a = edugrad.zeros(2, requires_grad=True)
    opt = optim.Adam([{"params": [a], "name": "encoder"}], lr=0.1)
    assert opt.param_groups[0]["name"] == "encoder"
    fresh = optim.Adam([a], lr=0.1)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.param_groups[0]["name"] == "encoder"


@pytest.mark.parametrize("make, error, match", [
    (lambda a: optim.SGD(a, lr=0.1), TypeError, "single Tensor"),
    (lambda a: optim.SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda a: optim.SGD([a], lr=-1.0), ValueError, "learning rate -1.0"),
    (lambda a: optim.SGD([a], lr=0.1, nesterov=True), ValueError, "Nesterov"),
    (lambda a: optim.Adam([a], betas=(1.0, 0.9)), ValueError, "beta1 1.0"),
    (lambda a: optim.Adam([a], eps=-1e-8), ValueError, "epsilon"),
    (lambda a: optim.RMSprop([a], alpha=-0.5), ValueError, "alpha"),
    (lambda a: optim.Lion([a], weight_decay=-1), ValueError, "weight_decay"),
    (lambda a: optim.SGD([a * 2], lr=0.1), ValueError, "non-leaf"),
    (lambda a: optim.SGD([{"params": [a]}, {"params": [a]}], lr=0.1), ValueError,
     "more than one parameter group"),
    (lambda a: optim.SGD([{"lr": 0.1}]), KeyError, "needs a 'params' entry"),
    (lambda a: optim.SGD([a, 3.0], lr=0.1), TypeError, "parameter 1 of the group is a float"),
])
def test_bad_arguments_are_clear_errors(make, error, match):
    a = edugrad.zeros(2, requires_grad=True)
    with pytest.raises(error, match=match):
        make(a)


def test_a_gradient_of_the_wrong_shape_or_dtype_is_an_error_before_any_update():
    a = edugrad.zeros(2, requires_grad=True)
    b = edugrad.zeros(3, requires_grad=True)
    opt = optim.SGD([a, b], lr=0.1)
    a.grad = edugrad.ones(2)
    b.grad = edugrad.ones(3, dtype=edugrad.float64)
    with pytest.raises(RuntimeError, match=r"SGD.step: a gradient \(shape \(3,\), float64\)"):
        opt.step()
    assert a.tolist() == [0.0, 0.0]  # nothing was updated
    b.grad = edugrad.ones(4)
    with pytest.raises(RuntimeError, match=r"\(shape \(4,\), float32\).*\(shape \(3,\), float32\)"):
        opt.step()


def test_failed_load_state_dict_leaves_the_optimizer_as_it_was():
    ours = Run(edugrad, "Adam", dict(lr=0.05), [{"lr": 0.1}, {}])
    ours.step(0)
    before = ours.opt.state_dict()
    other = Run(edugrad, "Adam", dict(lr=0.05))
    other.step(0)
    with pytest.raises(ValueError, match="1 parameter groups, the optimizer has 2"):
        ours.opt.load_state_dict(other.opt.state_dict())
    broken = ours.opt.state_dict()
    broken["state"][1]["exp_avg"] = edugrad.zeros(7, dtype=edugrad.float64)
    broken["param_groups"][0]["lr"] = 123.0
    with pytest.raises(ValueError, match=r"state 1.exp_avg has shape \(7,\).*\(5,\)"):
        ours.opt.load_state_dict(broken)
    broken = ours.opt.state_dict()
    broken["param_groups"][1]["params"] = [1]
    with pytest.raises(ValueError, match="group 1 has 1 parameters"):
        ours.opt.load_state_dict(broken)
    after = ours.opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for index, state in before["state"].items():
        for key, value in state.items():
            same = value == after["state"][index][key]
            assert same if key == "step" else bool(same.all())


def test_state_dict_is_a_snapshot_that_later_steps_leave_alone():
    ours = Run(edugrad, "SGD", dict(lr=0.1, momentum=0.9))
    ours.step(0)
    saved = ours.opt.state_dict()
    buffer = to_numpy(saved["state"][0]["momentum_buffer"]).copy()
    ours.step(1)
    np.testing.assert_array_equal(to_numpy(saved["state"][0]["momentum_buffer"]), buffer)


def test_load_state_dict_casts_state_to_the_parameters_dtype():
    ours = Run(edugrad, "Adam", dict(lr=0.05))
    ours.step(0)
    saved = ours.opt.state_dict()
    fresh = Run(edugrad, "Adam", dict(lr=0.05), dtype="float32")
    fresh.opt.load_state_dict(saved)
    assert fresh.opt.state[fresh.params[0]]["exp_avg"].dtype is edugrad.float32
    fresh.step(1)  # and steps on in float32
    assert all(p.dtype is edugrad.float32 for p in fresh.params)


@pytest.mark.parametrize("name, options", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                           ("Adam", dict(lr=0.05, amsgrad=True)),
                                           ("RMSprop", dict(lr=0.01, centered=True)),
                                           ("Lion", dict(lr=0.01, weight_decay=0.1))])
def test_optimizers_run_on_the_pure_python_backend(name, options):
    """No NumPy in the update rules: a backend with only the required primitives runs them."""
    cpu = Run(edugrad, name, options)
    python = Run(edugrad, name, options)
    python.params = [p.detach().to("python").requires_grad_() for p in python.params]
    python.opt = python.make_optimizer()
    for step in range(3):
        cpu.step(step)
        for i, param in enumerate(python.params):
            param.grad = edugrad.tensor(gradient(to_numpy(param), step, i), device="python")
        python.opt.step()
    assert all(p.device == "python" for p in python.params)
    assert_same(python.values(), cpu.values(), rtol=1e-12, what=f"{name} on python")


# ---- learning-rate schedules against torch's, 20 epochs -----------------------------------------
SCHEDULES = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("StepLR", dict(step_size=1)),
    ("StepLR", dict(step_size=1.0, gamma=0.95)),  # the transformer tutorial's float
    ("StepLR", dict(step_size=2.5, gamma=0.5)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),  # 20 epochs: down, up, down again
    ("CosineAnnealingLR", dict(T_max=20)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.25, end_factor=0.75, total_iters=8)),
]
SCHEDULE_IDS = [f"{name}-{options}" for name, options in SCHEDULES]


def scheduled(lib, name, options):
    params = [lib.zeros(2, requires_grad=True), lib.zeros(3, requires_grad=True)]
    sgd = optim.SGD if lib is edugrad else torch.optim.SGD
    opt = sgd([{"params": params[:1], "lr": 0.1}, {"params": params[1:], "lr": 0.02}], lr=0.1)
    schedules = lr_scheduler if lib is edugrad else torch.optim.lr_scheduler
    return opt, getattr(schedules, name)(opt, **options)


@pytest.mark.parametrize("name, options", SCHEDULES, ids=SCHEDULE_IDS)
def test_schedules_match_torch_for_20_epochs(name, options):
    opt, ours = scheduled(edugrad, name, options)
    torch_opt, theirs = scheduled(torch, name, options)
    assert ours.get_last_lr() == theirs.get_last_lr()
    assert ours.base_lrs == theirs.base_lrs
    for epoch in range(20):
        opt.step()
        torch_opt.step()
        ours.step()
        theirs.step()
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-15, abs=0), epoch
        assert [g["lr"] for g in opt.param_groups] == ours.get_last_lr()
        assert ours.last_epoch == theirs.last_epoch == epoch + 1


@pytest.mark.parametrize("name, options", SCHEDULES, ids=SCHEDULE_IDS)
def test_schedule_state_dict_round_trip(name, options):
    opt, ours = scheduled(edugrad, name, options)
    expected = []
    for epoch in range(12):
        if epoch == 5:
            saved_opt, saved = opt.state_dict(), ours.state_dict()
        ours.step()
        expected.append(ours.get_last_lr())
    # resume as PyTorch says: scheduler first, then the optimizer's and the scheduler's state
    opt, resumed = scheduled(edugrad, name, options)
    opt.load_state_dict(saved_opt)
    resumed.load_state_dict(saved)
    for epoch in range(5, 12):
        resumed.step()
        assert resumed.get_last_lr() == expected[epoch]


def test_cosine_closed_form():
    opt, sched = scheduled(edugrad, "CosineAnnealingLR", dict(T_max=10, eta_min=0.0))
    for epoch in range(1, 10):
        sched.step()
        closed = 0.1 * (1 + math.cos(math.pi * epoch / 10)) / 2
        assert sched.get_last_lr()[0] == pytest.approx(closed, rel=1e-12)


def test_step_lr_with_a_float_step_size_by_hand():
    opt, sched = scheduled(edugrad, "StepLR", dict(step_size=1.0, gamma=0.5))
    for _ in range(3):
        sched.step()
    assert sched.get_last_lr() == [0.1 * 0.5 ** 3, 0.02 * 0.5 ** 3]


@pytest.mark.parametrize("step_size", [0, -1, 0.0, "1", True, None])
def test_step_lr_refuses_a_step_size_that_is_not_a_positive_number(step_size):
    opt, _ = scheduled(edugrad, "ExponentialLR", dict(gamma=0.9))
    with pytest.raises(ValueError, match=r"StepLR: step_size must be a positive number of "
                                         r"epochs, got " + repr(step_size)):
        lr_scheduler.StepLR(opt, step_size)


def test_scheduler_needs_an_edugrad_optimizer():
    with pytest.raises(TypeError, match="not an edugrad Optimizer"):
        lr_scheduler.StepLR(object(), step_size=2)


@pytest.fixture(autouse=True)
def _quiet_torch_scheduler_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def test_randomised_sgd_matches_torch():
    """A few random option sets beyond the table."""
    rng = random.Random(5)
    for _ in range(5):
        options = dict(lr=rng.uniform(0.01, 0.2), momentum=rng.choice([0.0, 0.5, 0.9]),
                       weight_decay=rng.choice([0.0, 0.01]))
        if options["momentum"]:
            options["dampening"] = rng.choice([0.0, 0.2])
        ours, theirs = Run(edugrad, "SGD", options), Run(torch, "SGD", options)
        for step in range(4):
            ours.step(step)
            theirs.step(step)
        assert_same(ours.values(), theirs.values(), what=str(options))
