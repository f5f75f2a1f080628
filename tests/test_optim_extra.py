"""The optimizers and schedules beyond the first five, against torch.optim step by step.

Each optimizer runs beside PyTorch's from the same float64 parameters; every step both get the
same gradient *function* of their own current parameters (so a difference would grow), for
many steps, with parameter groups of different options and a state_dict round trip midway.
Schedules are compared on get_last_lr() over many steps.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import edugrad
from edugrad import optim
from edugrad.optim import lr_scheduler

torch = pytest.importorskip("torch", reason="PyTorch is the oracle for optim")

SHAPES = [(3, 4), (5,), ()]
STEPS = 40
NOISE = np.random.default_rng(7)
NOISE = [[NOISE.standard_normal(shape) for shape in SHAPES] for _ in range(STEPS)]


def initial_arrays():
    rng = np.random.default_rng(3)
    return [rng.standard_normal(shape) for shape in SHAPES]


def gradient(values: np.ndarray, step: int, i: int) -> np.ndarray:
    return np.cos(values * (i + 1.5)) + NOISE[step][i] + 0.3 * values


class Run:
    """One framework's side: its parameters and optimizer (lib is edugrad or torch)."""

    def __init__(self, lib, name, options, group_options=None, dtype="float64"):
        self.lib, self.name, self.options = lib, name, options
        self.group_options = group_options
        self.params = [lib.tensor(a.astype(dtype), requires_grad=True) for a in initial_arrays()]
        self.opt = self.make()

    def make(self):
        cls = getattr(optim if self.lib is edugrad else torch.optim, self.name)
        if self.group_options is None:
            return cls(self.params, **self.options)
        return cls([{"params": self.params[:1], **self.group_options[0]},
                    {"params": self.params[1:], **self.group_options[1]}], **self.options)

    def step(self, step):
        for i, param in enumerate(self.params):
            values = param.detach().numpy()
            param.grad = self.lib.tensor(gradient(values, step, i).astype(values.dtype))
        self.opt.step()

    def values(self):
        return [p.detach().numpy() for p in self.params]


def assert_same(ours, theirs, rtol, what):
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == b.shape and a.dtype == b.dtype, f"{what} param {i}"
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2, err_msg=f"{what} param {i}")


CASES = [
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.1)),
    ("Adagrad", dict(lr=0.05, eps=1e-6, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1)),
    ("Adadelta", dict(lr=0.5, maximize=True)),
    ("Adamax", dict(lr=0.02)),
    ("Adamax", dict(lr=0.02, betas=(0.8, 0.9), eps=1e-5, weight_decay=0.1)),
    ("Adamax", dict(lr=0.02, maximize=True)),
    ("NAdam", dict(lr=0.02)),
    ("NAdam", dict(lr=0.02, betas=(0.8, 0.95), weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.02, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.02)),  # rho_t passes 5 at step 6: both branches are run
    ("RAdam", dict(lr=0.02, betas=(0.8, 0.9), weight_decay=0.1)),
    ("RAdam", dict(lr=0.02, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.9, 0.6), amsgrad=True, maximize=True)),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in options.items())}" for name, options in CASES]
# PyTorch keeps NAdam's product of momenta in a float32 0-d tensor; edugrad in a double
RTOL = {"NAdam": 1e-5}


@pytest.mark.parametrize("name, options", CASES, ids=IDS)
def test_matches_torch_for_many_steps_with_a_state_dict_round_trip(name, options):
    ours, theirs = Run(edugrad, name, options), Run(torch, name, options)
    rtol = RTOL.get(name, 1e-10)
    for step in range(STEPS):
        if step == STEPS // 2:  # a fresh optimizer resumes from the saved state
            saved, expected = ours.opt.state_dict(), theirs.opt.state_dict()
            assert sorted(saved["state"]) == sorted(expected["state"])
            for index, state in saved["state"].items():
                assert set(state) == set(expected["state"][index]), name
            ours.opt = ours.make()
            ours.opt.load_state_dict(saved)
        ours.step(step)
        theirs.step(step)
        assert_same(ours.values(), theirs.values(), rtol, f"{name} step {step}")


GROUPS = {
    "Adagrad": ([{"lr": 0.2, "lr_decay": 0.1}, {"weight_decay": 0.1}], dict(lr=0.05)),
    "Adadelta": ([{"rho": 0.5}, {"lr": 0.3}], dict(lr=1.0)),
    "Adamax": ([{"lr": 0.1}, {"betas": (0.5, 0.9)}], dict(lr=0.01)),
    "NAdam": ([{"momentum_decay": 0.02}, {"weight_decay": 0.2}], dict(lr=0.01)),
    "RAdam": ([{"betas": (0.9, 0.9)}, {"lr": 0.05}], dict(lr=0.01)),
}


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_param_groups_with_their_own_options_match_torch(name):
    group_options, options = GROUPS[name]
    ours = Run(edugrad, name, options, group_options)
    theirs = Run(torch, name, options, group_options)
    for step in range(STEPS):
        ours.step(step)
        theirs.step(step)
        assert_same(ours.values(), theirs.values(), RTOL.get(name, 1e-10), f"{name} {step}")


@pytest.mark.parametrize("name", ["Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam"])
def test_float32_parameters_stay_float32_and_match_torch(name):
    ours, theirs = Run(edugrad, name, {}, dtype="float32"), Run(torch, name, {}, dtype="float32")
    for step in range(20):
        ours.step(step)
        theirs.step(step)
        assert all(p.dtype is edugrad.float32 for p in ours.params)
        assert_same(ours.values(), theirs.values(), 1e-5, f"{name} float32 step {step}")


def test_adagrad_by_hand():
    """Two steps of g = 1 from p = 0, lr 1: p = -1 / (1 + 1e-10), then that - 1 / sqrt(2)."""
    p = edugrad.zeros(1, dtype=edugrad.float64, requires_grad=True)
    opt = optim.Adagrad([p], lr=1.0)
    for _ in range(2):
        p.grad = edugrad.ones(1, dtype=edugrad.float64)
        opt.step()
    assert p.item() == pytest.approx(-1 - 1 / math.sqrt(2), rel=1e-9)


@pytest.mark.parametrize("name", ["Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam"])
def test_new_optimizers_run_on_the_pure_python_backend(name):
    """No NumPy in the update rules: the required primitives are enough."""
    cpu, python = Run(edugrad, name, {}), Run(edugrad, name, {})
    python.params = [p.detach().to("python").requires_grad_() for p in python.params]
    python.opt = python.make()
    for step in range(3):
        cpu.step(step)
        for i, param in enumerate(python.params):
            param.grad = edugrad.tensor(gradient(param.detach().numpy(), step, i),
                                        device="python")
        python.opt.step()
    assert_same(python.values(), cpu.values(), 1e-12, f"{name} on python")


@pytest.mark.parametrize("make, match", [
    (lambda p: optim.Adagrad([p], lr_decay=-1), "lr_decay"),
    (lambda p: optim.Adadelta([p], rho=1.5), "rho"),
    (lambda p: optim.Adamax([p], betas=(0.9, 1.0)), "beta2"),
    (lambda p: optim.NAdam([p], momentum_decay=-0.1), "momentum_decay"),
    (lambda p: optim.RAdam([p], eps=-1.0), "epsilon"),
    (lambda p: optim.LBFGS([p], line_search_fn="armijo"), "line_search_fn"),
    (lambda p: optim.LBFGS([{"params": [p]}, {"params": [p * 1]}]), "non-leaf|groups"),
])
def test_bad_options_are_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make(edugrad.zeros(2, requires_grad=True))


# ---- LBFGS, iterate by iterate ------------------------------------------------------------------
def rosenbrock(lib, x):
    return ((1 - x[:-1]) ** 2).sum() + 100 * ((x[1:] - x[:-1] ** 2) ** 2).sum()


def smooth(lib, x):
    """Convex and well conditioned: round-off does not grow from iterate to iterate (on
    Rosenbrock's valley both frameworks drift apart after ~50 evaluations, from the order
    of the sums in their dot products alone)."""
    weights = lib.tensor([1.0, 2.0, 3.0, 1.5, 0.5, 2.5], dtype=lib.float64)
    return ((x - 1) ** 2 * weights).sum() + 0.1 * (x ** 4).sum() \
        + 0.5 * ((x[1:] - x[:-1]) ** 2).sum()


def lbfgs_run(lib, options, steps, function=None):
    function = function or smooth
    start = [-1.2, 1.0, -0.5, 0.8, 2.0, 0.0] if function is smooth else [-1.2, 1.0, -0.5, 0.8]
    x = lib.tensor(start, dtype=lib.float64, requires_grad=True)
    opt = (optim if lib is edugrad else torch.optim).LBFGS([x], **options)
    calls = []

    def closure():
        opt.zero_grad()
        loss = function(lib, x)
        loss.backward()
        calls.append(loss.item())
        return loss

    trace = []
    for _ in range(steps):
        loss = opt.step(closure)
        trace.append((float(loss), x.detach().numpy().copy()))
    return trace, calls, opt


@pytest.mark.parametrize("options", [dict(), dict(lr=0.5, history_size=3, max_iter=7),
                                     dict(line_search_fn="strong_wolfe"),
                                     dict(line_search_fn="strong_wolfe", history_size=2,
                                          max_iter=5, lr=0.8)],
                         ids=["plain", "short-history", "strong_wolfe", "wolfe-short"])
def test_lbfgs_matches_torch_iterate_by_iterate(options):
    ours, our_calls, opt = lbfgs_run(edugrad, options, 6)
    theirs, their_calls, torch_opt = lbfgs_run(torch, options, 6)
    assert len(our_calls) == len(their_calls)  # the same closure evaluations, in order
    np.testing.assert_allclose(our_calls, their_calls, rtol=1e-8, atol=1e-12)
    for (loss, x), (their_loss, their_x) in zip(ours, theirs):
        assert loss == pytest.approx(their_loss, rel=1e-8, abs=1e-12)
        np.testing.assert_allclose(x, their_x, rtol=1e-8, atol=1e-10)
    state = opt.state[opt.param_groups[0]["params"][0]]
    their_state = next(iter(torch_opt.state.values()))
    assert state["func_evals"] == their_state["func_evals"]
    assert state["n_iter"] == their_state["n_iter"]


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_state_dict_round_trip_continues_the_same_iterates(line_search_fn):
    options = dict(max_iter=4, history_size=3, line_search_fn=line_search_fn)
    straight, _, _ = lbfgs_run(edugrad, options, 4)
    x = edugrad.tensor([-1.2, 1.0, -0.5, 0.8, 2.0, 0.0], dtype=edugrad.float64,
                       requires_grad=True)

    def make():
        opt = optim.LBFGS([x], **options)

        def closure():
            opt.zero_grad()
            loss = smooth(edugrad, x)
            loss.backward()
            return loss
        return opt, closure

    opt, closure = make()
    for _ in range(2):
        opt.step(closure)
    saved = opt.state_dict()
    assert {"d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad",
            "func_evals", "n_iter"} <= set(saved["state"][0])
    opt, closure = make()
    opt.load_state_dict(saved)
    for _ in range(2):
        opt.step(closure)
    np.testing.assert_allclose(x.detach().numpy(), straight[-1][1], rtol=1e-12)


def test_lbfgs_with_strong_wolfe_finds_the_rosenbrock_minimum():
    trace, calls, _ = lbfgs_run(edugrad, dict(line_search_fn="strong_wolfe", max_iter=100), 3,
                                rosenbrock)
    _, their_calls, _ = lbfgs_run(torch, dict(line_search_fn="strong_wolfe", max_iter=100), 3,
                                  rosenbrock)
    np.testing.assert_allclose(calls[:20], their_calls[:20], rtol=1e-8)
    np.testing.assert_allclose(trace[-1][1], [1.0] * 4, atol=1e-5)


def test_lbfgs_needs_a_closure():
    x = edugrad.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="closure"):
        optim.LBFGS([x]).step(None)


# ---- schedules -----------------------------------------------------------------------------------
def scheduled(lib, name, options, optimizer="SGD"):
    params = [lib.zeros(2, requires_grad=True), lib.zeros(3, requires_grad=True)]
    cls = getattr(optim if lib is edugrad else torch.optim, optimizer)
    extra = dict(momentum=0.9) if optimizer == "SGD" else {}
    opt = cls([{"params": params[:1], "lr": 0.1}, {"params": params[1:], "lr": 0.02}], lr=0.1,
              **extra)
    schedules = lr_scheduler if lib is edugrad else torch.optim.lr_scheduler
    options = {key: (value(lib, opt) if key == "schedulers" else value)
               for key, value in options.items()}
    if name == "ChainedScheduler":
        return opt, schedules.ChainedScheduler(options["schedulers"])
    return opt, getattr(schedules, name)(opt, **options)


def parts(*specs):
    """schedulers= for SequentialLR / ChainedScheduler: made on each side's optimizer."""
    def make(lib, opt):
        schedules = lr_scheduler if lib is edugrad else torch.optim.lr_scheduler
        return [getattr(schedules, name)(opt, **options) for name, options in specs]
    return make


class Halving:  # a callable object: its attributes are saved by LambdaLR.state_dict
    def __init__(self):
        self.every = 4

    def __call__(self, epoch):
        return 0.5 ** (epoch // self.every)


SCHEDULES = [
    ("LambdaLR", dict(lr_lambda=lambda epoch: 0.95 ** epoch)),
    ("LambdaLR", dict(lr_lambda=[lambda e: 1 / (1 + e), Halving()])),
    ("MultiplicativeLR", dict(lr_lambda=lambda epoch: 0.9 if epoch % 3 else 1.0)),
    ("MultiStepLR", dict(milestones=[3, 7, 7, 12], gamma=0.5)),
    ("ConstantLR", dict()),
    ("ConstantLR", dict(factor=0.5, total_iters=8)),
    ("PolynomialLR", dict(total_iters=12, power=2.0)),
    ("PolynomialLR", dict()),
    ("CosineAnnealingWarmRestarts", dict(T_0=5)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2, eta_min=0.001)),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=4)),
    ("CyclicLR", dict(base_lr=[0.01, 0.001], max_lr=0.1, step_size_up=3, step_size_down=5,
                      mode="triangular2")),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=4, mode="exp_range",
                      gamma=0.95, cycle_momentum=False)),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=40)),
    ("OneCycleLR", dict(max_lr=[0.5, 0.1], epochs=4, steps_per_epoch=10, pct_start=0.25,
                        anneal_strategy="linear", three_phase=True)),
    ("SequentialLR", dict(schedulers=parts(("LinearLR", dict(start_factor=0.1, total_iters=5)),
                                           ("CosineAnnealingLR", dict(T_max=10)),
                                           ("ExponentialLR", dict(gamma=0.9))),
                          milestones=[5, 15])),
    ("SequentialLR", dict(schedulers=parts(("ConstantLR", dict(factor=0.2, total_iters=3)),
                                           ("StepLR", dict(step_size=4, gamma=0.5))),
                          milestones=[6])),
    ("ChainedScheduler", dict(schedulers=parts(("ConstantLR", dict(factor=0.5, total_iters=6)),
                                               ("ExponentialLR", dict(gamma=0.9))))),
    ("ChainedScheduler", dict(schedulers=parts(("LinearLR", dict(total_iters=4)),
                                               ("MultiStepLR", dict(milestones=[5, 9]))))),
]
SCHEDULE_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(SCHEDULES)]
EPOCHS = 39  # OneCycleLR's total_steps is 40: its last lr is step 39's


@pytest.fixture(autouse=True)
def _quiet_torch_scheduler_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def momenta(opt):
    return [g.get("momentum", g.get("betas", (None,))[0]) for g in opt.param_groups]


@pytest.mark.parametrize("name, options", SCHEDULES, ids=SCHEDULE_IDS)
@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_schedules_match_torch(name, options, optimizer):
    opt, ours = scheduled(edugrad, name, options, optimizer)
    torch_opt, theirs = scheduled(torch, name, options, optimizer)
    assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-14, abs=0)
    for epoch in range(EPOCHS):
        opt.step()
        torch_opt.step()
        ours.step()
        theirs.step()
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-13, abs=1e-17), \
            epoch
        assert [g["lr"] for g in opt.param_groups] == ours.get_last_lr()
        assert momenta(opt) == pytest.approx(momenta(torch_opt), rel=1e-13), epoch


@pytest.mark.parametrize("name, options", SCHEDULES, ids=SCHEDULE_IDS)
def test_schedule_state_dict_round_trip(name, options):
    opt, ours = scheduled(edugrad, name, options)
    expected = []
    for epoch in range(20):
        if epoch == 7:
            saved_opt, saved = opt.state_dict(), ours.state_dict()
        ours.step()
        expected.append(ours.get_last_lr())
    opt, resumed = scheduled(edugrad, name, options)
    opt.load_state_dict(saved_opt)
    resumed.load_state_dict(saved)
    for epoch in range(7, 20):
        resumed.step()
        assert resumed.get_last_lr() == pytest.approx(expected[epoch], rel=1e-15), epoch


PLATEAUS = [dict(), dict(mode="max", factor=0.5, patience=2, cooldown=2),
            dict(threshold_mode="abs", threshold=0.05, patience=1, min_lr=[0.01, 0.005]),
            dict(mode="max", threshold_mode="abs", patience=0, factor=0.3, eps=1e-3)]


@pytest.mark.parametrize("options", PLATEAUS)
def test_reduce_lr_on_plateau_matches_torch(options):
    opt, ours = scheduled(edugrad, "ReduceLROnPlateau", options)
    torch_opt, theirs = scheduled(torch, "ReduceLROnPlateau", options)
    metrics = np.random.default_rng(2).standard_normal(60).cumsum() * 0.1 + 3
    metrics[20:40] = metrics[20]  # a real plateau
    for epoch, metric in enumerate(metrics):
        ours.step(edugrad.tensor(float(metric)) if epoch % 2 else float(metric))
        theirs.step(float(metric))
        assert ours.get_last_lr() == theirs.get_last_lr(), epoch
        assert ours.num_bad_epochs == theirs.num_bad_epochs


def test_step_with_an_epoch_uses_the_closed_form():
    opt, ours = scheduled(edugrad, "MultiStepLR", dict(milestones=[2, 5], gamma=0.5))
    torch_opt, theirs = scheduled(torch, "MultiStepLR", dict(milestones=[2, 5], gamma=0.5))
    for epoch in (6, 3, 1):
        ours.step(epoch)
        theirs.step(epoch)
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-15)


@pytest.mark.parametrize("make, error, match", [
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1), ValueError, "total_steps"),
    (lambda o: lr_scheduler.OneCycleLR(o, 0.1, 10, pct_start=2.0), ValueError, "pct_start"),
    (lambda o: lr_scheduler.CyclicLR(o, 0.1, 1.0, mode="sawtooth"), ValueError, "mode"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "T_0"),
    (lambda o: lr_scheduler.LambdaLR(o, [lambda e: 1.0]), ValueError, "expected 2 values"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.5), ValueError, "factor"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.ConstantLR(o)], [3]), ValueError,
     "one milestone fewer"),
    (lambda o: lr_scheduler.ChainedScheduler([lr_scheduler.ReduceLROnPlateau(o)]), ValueError,
     "ReduceLROnPlateau"),
])
def test_bad_schedule_options_are_clear_errors(make, error, match):
    opt, _ = scheduled(edugrad, "ConstantLR", dict())
    with pytest.raises(error, match=match):
        make(opt)
