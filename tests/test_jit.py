"""edugrad.jit: a replayed step gives the eager step's numbers, and each refusal says why.

The reference for every replay is the same step run eagerly from the same weights and seed:
edugrad.jit replays the very backend calls the eager step makes, in the same order, so the
parameters must agree to the last bit, dropout included (RAND draws from the same generator).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import edugrad
from edugrad import JitError, nn, optim
from edugrad.backends.numpy_backend import NumpyBackend
from edugrad.capture import broadcast_shape
from edugrad.nn import functional as F

STEPS = 20


def make_model(seed: int = 0, dropout: float = 0.0):
    edugrad.manual_seed(seed)
    layers = [nn.Linear(12, 16), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Linear(16, 4)]
    return nn.Sequential(*layers)


OPTIMIZERS = {
    "sgd-momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "adam-capturable": lambda p: optim.Adam(p, lr=0.01, capturable=True),
    "adamw-capturable-amsgrad": lambda p: optim.AdamW(p, lr=0.01, amsgrad=True, capturable=True),
    "rmsprop": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda p: optim.Adagrad(p, lr=0.1),
    "lion": lambda p: optim.Lion(p, lr=1e-3),
}


def training_step(model, optimizer):
    """The step every test jits: forward, cross-entropy, backward, the optimizer's update."""

    def step(x, y):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def batches(count: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return [(edugrad.tensor(rng.standard_normal((8, 12)).astype(np.float32)),
             edugrad.tensor(rng.integers(0, 4, 8))) for _ in range(count)]


def train(make_optimizer, jit: bool, dropout: float = 0.0, steps: int = STEPS):
    model = make_model(dropout=dropout)
    optimizer = make_optimizer(model.parameters())
    step = training_step(model, optimizer)
    runner = edugrad.jit(step) if jit else step
    edugrad.manual_seed(123)  # the dropout masks
    losses = [runner(x, y).item() for x, y in batches(steps)]
    return model, optimizer, losses, runner


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_replay_is_bit_identical_to_eager(name):
    eager_model, eager_opt, eager_losses, _ = train(OPTIMIZERS[name], jit=False)
    jit_model, jit_opt, jit_losses, step = train(OPTIMIZERS[name], jit=True)
    assert step.replays == STEPS - 3  # warm-up, two recordings, then replays
    assert jit_losses == eager_losses
    for (name_e, p_e), (_, p_j) in zip(eager_model.named_parameters(),
                                       jit_model.named_parameters()):
        np.testing.assert_array_equal(p_j.detach().numpy(), p_e.detach().numpy(), err_msg=name_e)
        np.testing.assert_array_equal(p_j.grad.numpy(), p_e.grad.numpy(), err_msg=name_e)
    for p_e, p_j in zip(eager_model.parameters(), jit_model.parameters()):
        for key, value in eager_opt.state[p_e].items():  # the optimizer's state was written too
            other = jit_opt.state[p_j][key]
            if isinstance(value, edugrad.Tensor):
                np.testing.assert_array_equal(other.numpy(), value.numpy(), err_msg=key)


def test_dropout_draws_new_masks_on_every_replay_and_matches_eager():
    make = OPTIMIZERS["sgd-momentum"]
    _, _, eager_losses, _ = train(make, jit=False, dropout=0.5)
    _, _, jit_losses, step = train(make, jit=True, dropout=0.5)
    assert step.replays == STEPS - 3
    assert jit_losses == eager_losses  # the same generator, called in the same order
    # and the masks differ between replays: the same batch twice gives two losses
    model = make_model(dropout=0.5)

    @edugrad.jit
    def forward(x):
        return model(x).sum()

    x = batches(1)[0][0]
    values = [forward(x).item() for _ in range(6)]
    assert forward.replays == 3 and len(set(values[3:])) == 3


def test_the_same_loss_statistics_with_dropout_over_many_seeds():
    """Beyond bit-equality for one seed: a jitted step's loss over 20 steps averages like the
    eager step's over several seeds (dropout statistics are not frozen by the recording)."""
    make = OPTIMIZERS["adam-capturable"]
    finals = {True: [], False: []}
    for seed in range(4):
        for jit in (True, False):
            model = make_model(seed, dropout=0.3)
            step = training_step(model, make(model.parameters()))
            runner = edugrad.jit(step) if jit else step
            edugrad.manual_seed(1000 + seed)
            finals[jit].append(np.mean([runner(x, y).item() for x, y in batches(STEPS, seed)]))
    assert finals[True] == finals[False]


def test_results_are_new_tensors_with_the_replayed_values():
    model = make_model()

    @edugrad.jit
    def forward(x):
        out = model(x)
        return {"out": out, "pair": (out.sum(), 3)}

    x = batches(1)[0][0]
    results = [forward(x) for _ in range(5)]
    expected = model(x).detach().numpy()
    for result in results:
        np.testing.assert_array_equal(result["out"].detach().numpy(), expected)
        assert result["pair"][1] == 3
    assert results[3]["out"] is not results[4]["out"]
    assert results[4]["out"].grad_fn is None


def test_a_new_shape_records_again_and_each_shape_keeps_its_program():
    model = make_model()
    step = edugrad.jit(lambda x: model(x).sum())
    small, large = edugrad.randn(3, 12), edugrad.randn(5, 12)
    for _ in range(4):
        step(small)
    for _ in range(4):
        step(large)
    assert len(step.programs) == 2 and step.replays == 2
    np.testing.assert_allclose(step(small).item(), model(small).sum().item(), rtol=1e-6)
    assert step.replays == 3


def test_guards_record_again_when_the_mode_or_an_option_changes():
    model = make_model(dropout=0.5)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    x, y = batches(1)[0]

    step = edugrad.jit(training_step(model, optimizer))
    for _ in range(4):
        step(x, y)
    assert step.replays == 1
    model.eval()  # dropout off: the train-mode program must not run
    step(x, y)
    assert step.replays == 1 and not step.programs
    model.train()  # the eval recording is not compared with a train one: both start over
    for _ in range(4):
        step(x, y)
    assert step.replays == 3
    optimizer.param_groups[0]["lr"] = 0.05  # a float lr changed outside the step
    before = [p.detach().numpy().copy() for p in model.parameters()]
    step(x, y)
    assert step.replays == 3  # recorded again, not replayed with lr 0.1
    grads = [p.grad.numpy() for p in model.parameters()]
    for b, p, g in zip(before, model.parameters(), grads):
        np.testing.assert_allclose(p.detach().numpy(), b - 0.05 * g, rtol=1e-5, atol=1e-7)


def test_a_tensor_learning_rate_follows_its_scheduler_in_replays():
    model = make_model()
    optimizer = optim.Adam(model.parameters(), lr=edugrad.tensor(0.01), capturable=True)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    x, y = batches(1)[0]

    step = edugrad.jit(training_step(model, optimizer))
    reference = make_model()
    reference_opt = optim.Adam(reference.parameters(), lr=0.01, capturable=True)
    reference_sched = optim.lr_scheduler.StepLR(reference_opt, step_size=2, gamma=0.5)
    for _ in range(8):
        step(x, y)
        scheduler.step()
        reference_opt.zero_grad()
        F.cross_entropy(reference(x), y).backward()
        reference_opt.step()
        reference_sched.step()
    assert step.replays == 5
    assert optimizer.param_groups[0]["lr"].item() == pytest.approx(0.01 * 0.5 ** 4)
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6, atol=1e-7)


# ---- refusals ---------------------------------------------------------------------------------

def three_calls(step, *args):
    for _ in range(3):
        step(*args)


def test_reading_a_value_on_the_host_inside_the_step_is_refused():
    model = make_model()
    step = edugrad.jit(lambda x: model(x).sum().item())
    step(edugrad.randn(2, 12))  # the warm-up call is plain eager
    with pytest.raises(JitError, match=r"reads tensor values on the host.*item\(\)"):
        step(edugrad.randn(2, 12))


def test_control_flow_on_outside_state_is_refused():
    model = make_model()
    calls = [0]

    def step(x):
        calls[0] += 1
        out = model(x)
        return out.relu().sum() if calls[0] % 2 else out.sum()

    with pytest.raises(JitError, match="different primitive calls"):
        three_calls(edugrad.jit(step), edugrad.randn(2, 12))


def test_a_python_number_that_changes_is_refused_and_names_capturable():
    model = make_model()
    optimizer = optim.Adam(model.parameters(), lr=0.01)  # bias correction in Python floats
    x, y = batches(1)[0]

    with pytest.raises(JitError, match=r"Python number that changes.*capturable=True"):
        three_calls(edugrad.jit(training_step(model, optimizer)), x, y)


def test_a_tensor_replaced_instead_of_updated_in_place_is_refused():
    model = make_model()
    state = {"average": edugrad.zeros(4)}

    def step(x):
        out = model(x).detach().mean(0)
        state["average"] = state["average"] * 0.9 + out  # a new tensor every call
        return state["average"]

    with pytest.raises(JitError, match=r"neither an argument.*mul_\(0.9\)"):
        three_calls(edugrad.jit(step), edugrad.randn(2, 12))
    # updated in place, the same step replays, and gives the eager numbers
    state["average"] = edugrad.zeros(4)
    expected = edugrad.zeros(4)
    x = edugrad.randn(2, 12)

    @edugrad.jit
    def fixed(x):
        state["average"].mul_(0.9).add_(model(x).detach().mean(0))
        return state["average"]

    for _ in range(5):
        fixed(x)
        expected = expected * 0.9 + model(x).detach().mean(0)
    assert fixed.replays == 2
    np.testing.assert_array_equal(state["average"].numpy(), expected.numpy())


def test_host_data_that_changes_is_refused():
    model = make_model()
    counter = [0]

    def step(x):
        counter[0] += 1
        return (model(x) * edugrad.tensor([float(counter[0])] * 4)).sum()

    with pytest.raises(JitError, match="copies host data that changes"):
        three_calls(edugrad.jit(step), edugrad.randn(2, 12))


def test_writing_into_an_argument_is_refused():
    def step(x):
        x.mul_(2)
        return x

    with pytest.raises(JitError, match=r"changes its argument args\[0\] in place"):
        three_calls(edugrad.jit(step), edugrad.randn(3))


def test_an_argument_that_cannot_be_compared_is_refused():
    step = edugrad.jit(lambda x, options: x * 2)
    with pytest.raises(JitError, match=r"argument args\[1\] is a set"):
        step(edugrad.randn(3), {1, 2})


def test_the_trace_lists_the_primitive_calls():
    model = make_model()
    step = edugrad.jit(lambda x: model(x).sum())
    assert "nothing recorded yet" in step.trace
    three_calls(step, edugrad.randn(2, 12))
    trace = step.trace
    assert "matmul(" in trace and "argument args[0]" in trace and "tensor read Parameter" in trace
    assert trace.count("\n  %") >= 6
    step.reset()
    assert not step.programs and "nothing recorded yet" in step.trace


def trace_of_a_replay_like_eager(device: str) -> str:
    """Six steps on `device`, eager and jitted: the same losses and parameters to the bit.
    Returns the jitted step's trace."""
    eager_model, _, eager_losses, _ = train_on(device, jit=False, steps=6)
    model, _, losses, runner = train_on(device, jit=True, steps=6)
    assert losses == eager_losses
    for mine, theirs in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_array_equal(mine.detach().numpy(), theirs.detach().numpy())
    return runner.trace


class StrictNumpy(NumpyBackend):
    """The NumPy backend saying that its elementwise methods take equal shapes only, as
    ops.py's specs require and a learner's backend may do."""

    broadcasts = False


edugrad.register_backend("strict", StrictNumpy)


def test_expands_read_by_elementwise_calls_are_left_to_the_backends_broadcasting():
    """The bias's and Adam's scalar EXPANDs are not replayed where the backend broadcasts
    (cpu; the bit-identical tests above run with it), and are where it does not (strict)."""
    listings = {device: trace_of_a_replay_like_eager(device) for device in ("cpu", "strict")}

    def count(listing, words):
        return int(listing.split(words)[0].split()[-1])

    dropped = count(listings["cpu"], " left to the backend's broadcasting")
    assert dropped >= 10  # two biases, two scalar factors (and their reshapes) per parameter
    replayed = {device: count(listing, " primitive calls replayed")
                for device, listing in listings.items()}
    assert replayed["cpu"] == replayed["strict"] - dropped
    assert listings["cpu"].count("= expand(") < listings["strict"].count("= expand(")
    assert " 0 left to the backend's broadcasting" in listings["strict"]


def test_an_expand_is_kept_where_broadcasting_would_not_give_the_recorded_shape():
    """a.expand(4, 3) + b.expand(4, 3) from two (1, 3): one EXPAND may go (the other operand
    has the full shape), not both (1, 3) + (1, 3) would be (1, 3)."""
    a, b = edugrad.randn(1, 3), edugrad.randn(1, 3)
    step = edugrad.jit(lambda x: x * (a.expand(4, 3) + b.expand(4, 3)))
    x = edugrad.randn(4, 3)
    results = [step(x) for _ in range(4)]
    want = x.numpy() * (a.numpy() + b.numpy())
    for result in results:
        assert result.shape == (4, 3)
        np.testing.assert_allclose(result.numpy(), want, rtol=1e-6)
    assert step.replays == 1 and step.trace.count("= expand(") == 1
    assert " 1 left to the backend's broadcasting" in step.trace


def test_an_expand_after_a_reshape_that_moves_dims_reads_the_reshape():
    """A conv bias: (3,) reshaped to (3, 1), expanded to (3, 4). NumPy can't broadcast (3,)
    against (3, 4) the same way, so the add reads the (3, 1) reshape, which must stay."""
    b = edugrad.randn(3)
    step = edugrad.jit(lambda x: x + b.reshape(3, 1).expand(3, 4))
    x = edugrad.randn(3, 4)
    for _ in range(4):
        np.testing.assert_array_equal(step(x).numpy(), x.numpy() + b.numpy()[:, None])
    assert step.replays == 1 and "= reshape(" in step.trace and "= expand(" not in step.trace


class FreshNumpy(NumpyBackend):
    """The NumPy backend without Backend.writer: every result in a new buffer."""

    def writer(self, op):
        return None


edugrad.register_backend("fresh", FreshNumpy)


def test_a_call_whose_input_dies_with_it_writes_into_that_input():
    """Memory planning: Adam's update chain writes into the buffers it no longer needs where
    the backend can (cpu), not where it can't (fresh); the numbers are the eager step's."""
    traces = {device: trace_of_a_replay_like_eager(device) for device in ("cpu", "fresh")}
    assert traces["cpu"].count(", into %") >= 4 * 4  # at least four per parameter
    assert ", into %" not in traces["fresh"]
    # a Linear's bias add writes into the product's buffer (MATMUL makes a new one)
    products = set(re.findall(r"%(\d+) = matmul\(", traces["cpu"]))
    written = re.findall(r"= add\(%(\d+), %\d+, into %(\d+)\)", traces["cpu"])
    assert any(a == b and a in products for a, b in written)


def test_a_buffer_a_view_still_reads_is_not_written_into():
    """t's last reader is t + 1, but the reshape made before it is a view of t's buffer
    (NumPy's reshape of a contiguous array): writing t + 1 there would change v."""

    def step(x):
        t = x * 2
        v = t.reshape(12)
        u = t + 1
        return u.reshape(12) + v

    jitted = edugrad.jit(step)
    x = edugrad.randn(3, 4)
    for _ in range(4):
        np.testing.assert_array_equal(jitted(x).numpy(), step(x).numpy())
    assert jitted.replays == 1 and ", into %" not in jitted.trace


def test_broadcast_shape():
    assert broadcast_shape([(4, 1), (3,)]) == (4, 3)
    assert broadcast_shape([(), (2, 3)]) == (2, 3)
    assert broadcast_shape([(1, 3), (1, 3)]) == (1, 3)
    assert broadcast_shape([(2,), (3,)]) is None


def test_the_source_a_replay_runs_has_one_line_per_replayed_call():
    model = make_model()
    step = edugrad.jit(lambda x: model(x).sum())
    assert "nothing recorded yet" in step.source
    three_calls(step, edugrad.randn(2, 12))
    program = next(iter(step.programs.values()))
    source = step.source
    assert source.startswith("def replay(inputs):") and "= inputs" in source
    calls = [line for line in source.splitlines() if re.match(r"    r\d+ = \w+_\d+\(", line)]
    assert len(calls) == len(program.steps)
    assert "matmul_" in source and "permute_" in source and "(1, 0)" in source
    compile(source, "<test>", "exec")


def test_jit_as_decorator_with_and_without_parentheses():
    @edugrad.jit()
    def double(x):
        return x * 2

    x = edugrad.arange(3.0)
    for _ in range(4):
        np.testing.assert_array_equal(double(x).numpy(), [0.0, 2.0, 4.0])
    assert double.replays == 1
    with pytest.raises(TypeError, match="expected a function"):
        edugrad.jit(3)


def test_draw_trace_draws_every_replayed_call_and_marks_the_writes():
    from edugrad.viz import draw_trace

    model = make_model()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    x, y = batches(1)[0]

    step = edugrad.jit(training_step(model, optimizer))
    with pytest.raises(ValueError, match="no recorded program yet"):
        draw_trace(step)
    three_calls(step, x, y)
    graph = draw_trace(step)
    program = next(iter(step.programs.values()))
    ops = [n for n in graph.nodes if n.kind == "op"]
    assert len(ops) == len(program.steps)
    assert sum(n.title == "matmul" for n in ops) == 5  # 2 forward, 2 weight grads, 1 input grad
    outputs = [n for n in graph.nodes if n.is_output]
    assert len(program.writes) == len(program.grads) == 4  # 4 parameters and their grads
    assert len(outputs) == 8
    assert any("-> .grad (16, 12)" in n.details for n in outputs)
    assert "<svg" in graph.svg() and "digraph" in graph.dot
    with pytest.raises(TypeError, match="expected a step made by edugrad.jit"):
        draw_trace(lambda: None)


def test_a_python_value_the_step_returns_must_not_change():
    model = make_model()
    calls = [0]

    def step(x):
        calls[0] += 1
        return model(x).sum(), calls[0]

    with pytest.raises(JitError, match=r"returns something that changes between calls \(2 then 3\)"):
        three_calls(edugrad.jit(step), edugrad.randn(2, 12))


# ---- replaying through a device graph -----------------------------------------------------------
class GraphedNumpy(NumpyBackend):
    """A CPU stand-in for the CUDA backend's graphs, keeping Backend.graph's contract: the
    capture runs `run` once on copies of the inputs; a launch copies in what differs, runs
    again, copies the feedback outputs into their inputs and returns those buffers (the same
    objects every launch) and fresh copies of the rest. It lets the CPU suite check how
    edugrad.jit drives a graph; tests/test_cuda.py checks real CUDA graphs."""

    fail = False

    def __init__(self, device=None):
        super().__init__(device)
        self.captures = self.launches = 0

    def graph(self, run, inputs, feedback):
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        self.captures += 1
        static = [np.array(buffer, copy=True) for buffer in inputs]
        run(static)

        def launch(given):
            self.launches += 1
            for buffer, value in zip(static, given):
                if value is not buffer:
                    np.copyto(buffer, value)
            outputs = run(static)
            for j, i in feedback.items():
                np.copyto(static[i], outputs[j])
            return [static[feedback[j]] if j in feedback else np.array(out, copy=True)
                    for j, out in enumerate(outputs)]

        return launch


edugrad.register_backend("graphed", GraphedNumpy)


def train_on(device, jit, dropout=0.0, graph=True, steps=STEPS):
    model = make_model(dropout=dropout).to(device)
    optimizer = optim.Adam(model.parameters(), lr=0.01, capturable=True)
    step = training_step(model, optimizer)
    runner = edugrad.jit(step, graph=graph) if jit else step
    edugrad.manual_seed(123)
    losses = [runner(x.to(device), y.to(device)) for x, y in batches(steps)]
    return model, optimizer, [loss.item() for loss in losses], runner


def test_a_graphed_replay_is_bit_identical_to_eager_and_keeps_parameters_in_place():
    backend = edugrad.get_backend("graphed")
    backend.captures = backend.launches = 0
    eager_model, eager_opt, eager_losses, _ = train_on("graphed", jit=False)
    model, opt, losses, step = train_on("graphed", jit=True)
    assert (backend.captures, backend.launches) == (1, STEPS - 3)
    assert "as one device graph (GraphedNumpy.graph)" in step.trace
    # the losses were kept as tensors until the end: each launch returned a fresh one
    assert losses == eager_losses
    for (name, p_e), p_j in zip(eager_model.named_parameters(), model.parameters()):
        np.testing.assert_array_equal(p_j.detach().numpy(), p_e.detach().numpy(), err_msg=name)
        np.testing.assert_array_equal(p_j.grad.numpy(), p_e.grad.numpy(), err_msg=name)
        for key, value in eager_opt.state[p_e].items():
            np.testing.assert_array_equal(opt.state[p_j][key].numpy(), value.numpy(), err_msg=key)
    weight = next(model.parameters())
    before = weight._data.buffer
    x, y = batches(1)[0]
    step(x.to("graphed"), y.to("graphed"))
    assert weight._data.buffer is before  # a parameter stays where the graph writes it


def test_a_parameter_changed_between_graphed_replays_is_copied_in():
    eager_model, _, _, _ = train_on("graphed", jit=False, steps=6)
    model, opt, _, step = train_on("graphed", jit=True, steps=6)
    for p_e, p_j in zip(eager_model.parameters(), model.parameters()):
        with edugrad.no_grad():
            p_e.mul_(0.5)
        p_j.data = p_j.detach() * 0.5  # a new buffer: the next launch must read it
    x, y = batches(1, seed=9)[0]
    jit_loss = step(x.to("graphed"), y.to("graphed")).item()
    reference = F.cross_entropy(eager_model(x.to("graphed")), y.to("graphed")).item()
    assert jit_loss == reference  # the forward saw the halved weights


def test_steps_that_draw_random_numbers_or_ask_not_to_are_replayed_call_by_call():
    backend = edugrad.get_backend("graphed")
    backend.captures = 0
    _, _, eager_losses, _ = train_on("graphed", jit=False, dropout=0.5)
    _, _, losses, step = train_on("graphed", jit=True, dropout=0.5)
    assert losses == eager_losses and backend.captures == 0
    assert "call by call: it draws random numbers (RAND)" in step.trace
    _, _, losses, step = train_on("graphed", jit=True, graph=False)
    assert backend.captures == 0 and "graphs turned off" in step.trace
    _, _, _, step = train_on("cpu", jit=True)
    assert "call by call (the backend has no device graphs)" in step.trace


def test_a_failed_graph_capture_falls_back_to_replaying_call_by_call():
    _, _, eager_losses, _ = train_on("graphed", jit=False)
    GraphedNumpy.fail = True
    try:
        _, _, losses, step = train_on("graphed", jit=True)
    finally:
        GraphedNumpy.fail = False
    assert losses == eager_losses
    assert "the device graph capture failed (operation not permitted" in step.trace


def test_a_step_on_two_devices_is_replayed_call_by_call():
    cpu_model, graphed_model = make_model(), make_model().to("graphed")
    optimizers = [optim.Adam(m.parameters(), lr=0.01, capturable=True)
                  for m in (cpu_model, graphed_model)]
    steps = [training_step(m, o) for m, o in zip((cpu_model, graphed_model), optimizers)]

    @edugrad.jit
    def both(x, y, gx, gy):
        return steps[0](x, y), steps[1](gx, gy)

    for x, y in batches(5):
        losses = both(x, y, x.to("graphed"), y.to("graphed"))
    assert both.replays == 2 and "call by call: the step uses more than one device" in both.trace
    assert losses[0].item() == losses[1].item()  # the same model, data and arithmetic
