"""edugrad.nn's recurrent layers and nn.utils.rnn against PyTorch, gradcheck, and by hand.

One table of layer cases drives the oracle, as in test_nn_layers.py: each case is `make(nn)`,
built with nn = torch.nn and nn = edugrad.nn, torch's (random) parameters copied into ours through
state_dict. Both run on the same input (and initial state, when the case gives one); we compare
the output and the final states, then the gradients that random upstream gradients send to the
input, the initial state and every parameter (shape, dtype, then values), in float32 and float64,
in training and evaluation mode. gradcheck (float64 finite differences) checks the derivatives
without PyTorch, and a one-unit RNN cell is worked out by hand.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edugrad
import edugrad.nn as nn
from edugrad.autograd import gradcheck
from edugrad.nn.utils import rnn as rnn_utils

# torch's LSTM with projections warns that oneDNN can't run it: not our concern
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")

TOLERANCE = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-9, atol=1e-11)}


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="PyTorch is the oracle for the recurrent layers")


def host(tensor) -> np.ndarray:
    return tensor.detach().numpy()


def assert_same(ours, theirs, what: str) -> None:
    """Shape, then dtype, then values (allclose alone broadcasts and hides shape bugs)."""
    ours, theirs = host(ours), host(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape}, torch {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype}, torch {theirs.dtype}"
    np.testing.assert_allclose(ours, theirs, err_msg=what, **TOLERANCE[str(theirs.dtype)])


def copy_state(source, target, lib) -> None:
    """target.load_state_dict(source.state_dict()), across the two libraries."""
    target.load_state_dict({k: lib.tensor(host(v)) for k, v in source.state_dict().items()})


def build_pair(torch, make, dtype: str):
    """The same layer in torch and edugrad, with torch's parameters in both."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dropout with one layer warns, in both libraries
        theirs, ours = make(torch.nn), make(nn)
    if dtype == "float64":
        theirs.double(), ours.double()
    copy_state(theirs, ours, edugrad)
    return ours, theirs


def flatten(result) -> list:
    """(output, h_n) or (output, (h_n, c_n)) or a cell's h / (h, c) -> a flat list."""
    if not isinstance(result, (tuple, list)):
        return [result]
    return [t for part in result for t in flatten(part)]


def compare_run(torch, ours, theirs, inputs: list, what: str, seed: int = 1) -> None:
    """Run both modules on the same inputs (arrays; None for an absent state), compare every
    output, then every gradient from random upstream gradients."""
    ours_in = [None if a is None else edugrad.tensor(a, requires_grad=True) for a in inputs]
    theirs_in = [None if a is None else torch.tensor(a, requires_grad=True) for a in inputs]
    out_ours = flatten(ours(*regroup(ours, ours_in)))
    out_theirs = flatten(theirs(*regroup(theirs, theirs_in)))
    assert len(out_ours) == len(out_theirs)
    for k, (a, b) in enumerate(zip(out_ours, out_theirs)):
        assert_same(a, b, f"{what} output {k}")
    rng = np.random.default_rng(seed)
    upstream = [rng.standard_normal(tuple(b.shape)).astype(host(b).dtype) for b in out_theirs]
    edugrad.autograd.backward(out_ours, [edugrad.tensor(u) for u in upstream])
    torch.autograd.backward(out_theirs, [torch.tensor(u) for u in upstream])
    for k, (a, b) in enumerate(zip(ours_in, theirs_in)):
        if a is not None:
            assert_same(a.grad, b.grad, f"{what} gradient of input {k}")
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        assert_same(param.grad, theirs_params[name].grad, f"{what} gradient of {name}")


def regroup(module, tensors: list) -> list:
    """[x, h0, c0] -> [x, (h0, c0)] for an LSTM or LSTMCell; [x, None] -> [x]."""
    if "LSTM" in type(module).__name__ and len(tensors) == 3:
        return [tensors[0], (tensors[1], tensors[2])]
    return [t for t in tensors if t is not None]


def state_shapes(module, input_shape: tuple) -> list:
    """The shapes of h0 (and c0) that go with an input of input_shape."""
    if isinstance(module, nn.RNNCellBase):
        batch = input_shape[:-1]
        count = 2 if "LSTM" in type(module).__name__ else 1
        return [(*batch, module.hidden_size)] * count
    layers = module.num_layers * (2 if module.bidirectional else 1)
    batched = len(input_shape) == 3
    batch = (input_shape[0 if module.batch_first else 1],) if batched else ()
    sizes = [module.proj_size or module.hidden_size]
    if "LSTM" in type(module).__name__:
        sizes.append(module.hidden_size)
    return [(layers, *batch, size) for size in sizes]


# ---- the table ----------------------------------------------------------------------------------
LAYERS = {
    "rnn": (lambda nn: nn.RNN(3, 4), (5, 2, 3)),
    "rnn_relu_2_layers": (lambda nn: nn.RNN(3, 4, 2, nonlinearity="relu"), (4, 3, 3)),
    "rnn_bidirectional_batch_first_no_bias": (
        lambda nn: nn.RNN(3, 4, bias=False, batch_first=True, bidirectional=True), (2, 5, 3)),
    "rnn_unbatched": (lambda nn: nn.RNN(3, 4, 2), (5, 3)),
    "lstm": (lambda nn: nn.LSTM(3, 4), (5, 2, 3)),
    "lstm_3_layers_bidirectional": (lambda nn: nn.LSTM(3, 4, 3, bidirectional=True), (4, 2, 3)),
    "lstm_batch_first_2_layers": (lambda nn: nn.LSTM(3, 5, 2, batch_first=True), (3, 4, 3)),
    "lstm_no_bias": (lambda nn: nn.LSTM(2, 3, bias=False), (4, 2, 2)),
    "lstm_proj_bidirectional": (lambda nn: nn.LSTM(3, 5, 2, bidirectional=True, proj_size=2),
                                (4, 2, 3)),
    "lstm_unbatched_batch_first": (lambda nn: nn.LSTM(3, 4, batch_first=True), (5, 3)),
    "gru": (lambda nn: nn.GRU(3, 4), (5, 2, 3)),
    "gru_2_layers_bidirectional_batch_first": (
        lambda nn: nn.GRU(3, 4, 2, batch_first=True, bidirectional=True), (2, 4, 3)),
    "gru_no_bias_3_layers": (lambda nn: nn.GRU(2, 3, 3, bias=False), (3, 2, 2)),
    "gru_unbatched": (lambda nn: nn.GRU(3, 4), (5, 3)),
    # dropout between layers: random in training, so compared in evaluation mode only (MODES)
    "lstm_dropout_eval": (lambda nn: nn.LSTM(3, 4, 2, dropout=0.5), (4, 2, 3)),
    "gru_dropout_eval": (lambda nn: nn.GRU(3, 4, 3, dropout=0.3, bidirectional=True), (3, 2, 3)),
}


# dropout draws different masks in the two libraries: those cases run in evaluation mode only
MODES = [(name, training) for name in LAYERS for training in (True, False)
         if not (training and "dropout" in name)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("initial", [False, True], ids=["no_h0", "h0"])
@pytest.mark.parametrize("name, training", MODES,
                         ids=[f"{n}-{'train' if t else 'eval'}" for n, t in MODES])
def test_layer_matches_torch(torch, name, training, initial, dtype):
    make, shape = LAYERS[name]
    ours, theirs = build_pair(torch, make, dtype)
    ours.train(training), theirs.train(training)
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal(shape).astype(dtype)]
    if initial:
        inputs += [rng.standard_normal(s).astype(dtype) for s in state_shapes(ours, shape)]
    compare_run(torch, ours, theirs, inputs, name)


CELLS = {
    "rnn_cell": lambda nn: nn.RNNCell(3, 4),
    "rnn_cell_relu_no_bias": lambda nn: nn.RNNCell(3, 4, bias=False, nonlinearity="relu"),
    "lstm_cell": lambda nn: nn.LSTMCell(3, 4),
    "lstm_cell_no_bias": lambda nn: nn.LSTMCell(3, 4, bias=False),
    "gru_cell": lambda nn: nn.GRUCell(3, 4),
    "gru_cell_no_bias": lambda nn: nn.GRUCell(3, 4, bias=False),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("initial", [False, True], ids=["no_h", "h"])
@pytest.mark.parametrize("shape", [(2, 3), (3,)], ids=["batched", "unbatched"])
@pytest.mark.parametrize("name", list(CELLS))
def test_cell_matches_torch(torch, name, shape, initial, dtype):
    ours, theirs = build_pair(torch, CELLS[name], dtype)
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal(shape).astype(dtype)]
    if initial:
        inputs += [rng.standard_normal(s).astype(dtype) for s in state_shapes(ours, shape)]
    compare_run(torch, ours, theirs, inputs, name)


def test_cell_loop_equals_layer(torch):
    """An LSTMCell run step by step gives nn.LSTM's outputs: the layer is the cell in a loop."""
    layer = nn.LSTM(3, 4).double()
    cell = nn.LSTMCell(3, 4).double()
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})  # drop "_l0"
    x = edugrad.tensor(np.random.default_rng(4).standard_normal((5, 2, 3)))
    output, (h_n, c_n) = layer(x)
    h = c = edugrad.zeros(2, 4, dtype=edugrad.float64)
    for t in range(5):
        h, c = cell(x[t], (h, c))
        np.testing.assert_allclose(host(h), host(output[t]), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(host(c), host(c_n[0]), rtol=1e-12, atol=1e-14)


# ---- random sizes -------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["RNN", "LSTM", "GRU"]), steps=st.integers(1, 4),
       batch=st.integers(1, 3), input_size=st.integers(1, 4), hidden=st.integers(1, 4),
       layers=st.integers(1, 3), bidirectional=st.booleans(), batch_first=st.booleans(),
       initial=st.booleans(), seed=st.integers(0, 2**16))
def test_random_sizes_match_torch(torch, kind, steps, batch, input_size, hidden, layers,
                                  bidirectional, batch_first, initial, seed):
    def make(nn):
        return getattr(nn, kind)(input_size, hidden, layers, batch_first=batch_first,
                                 bidirectional=bidirectional)

    ours, theirs = build_pair(torch, make, "float64")
    shape = (batch, steps, input_size) if batch_first else (steps, batch, input_size)
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal(shape)]
    if initial:
        inputs += [rng.standard_normal(s) for s in state_shapes(ours, shape)]
    compare_run(torch, ours, theirs, inputs, f"{kind} {shape}", seed)


# ---- gradcheck: the derivatives without PyTorch -------------------------------------------------
def checked_inputs(module, shape: tuple, seed: int = 5) -> list:
    """float64 leaves: the input, the initial state(s), then every parameter (copies)."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape)] + [rng.standard_normal(s)
                                             for s in state_shapes(module, shape)]
    tensors = [edugrad.tensor(a, requires_grad=True) for a in arrays]
    return tensors + [p.detach().requires_grad_() for p in module.parameters()]


def functional(module, state_count: int):
    """fn(x, *states, *parameters) -> the module's flat outputs, computed with the given
    parameters in place of the module's own (what gradcheck perturbs)."""
    names = [name for name, _ in module.named_parameters()]

    def fn(x, *rest):
        states, params = rest[:state_count], rest[state_count:]
        for name, value in zip(names, params):
            module._parameters[name] = value
        return tuple(flatten(module(*regroup(module, [x, *states]))))

    return fn


GRADCHECK = {
    "rnn_relu": (lambda: nn.RNN(2, 3, 2, nonlinearity="relu"), (3, 2, 2)),
    "lstm": (lambda: nn.LSTM(2, 2, 2, bidirectional=True), (3, 2, 2)),
    "lstm_proj": (lambda: nn.LSTM(2, 3, proj_size=2, batch_first=True), (2, 3, 2)),
    "gru": (lambda: nn.GRU(2, 2, 2, bidirectional=True), (3, 2, 2)),
    "rnn_cell": (lambda: nn.RNNCell(2, 3), (2, 2)),
    "lstm_cell": (lambda: nn.LSTMCell(2, 3), (2, 2)),
    "gru_cell": (lambda: nn.GRUCell(2, 3), (2, 2)),
}


@pytest.mark.parametrize("name", list(GRADCHECK))
def test_gradcheck(name):
    make, shape = GRADCHECK[name]
    edugrad.manual_seed(0)
    module = make().double()
    inputs = checked_inputs(module, shape)
    assert gradcheck(functional(module, len(state_shapes(module, shape))), inputs)


# ---- a case by hand -----------------------------------------------------------------------------
def test_rnn_cell_by_hand():
    """A 1-unit RNNCell, w_ih = 0.5, w_hh = -1, b_ih = 0.1, b_hh = 0.2, run on x1 = 1, x2 = 2
    from h0 = 0:

        h1 = tanh(0.5 * 1 + 0.3 + (-1) * 0)   = tanh(0.8)          = 0.664036770
        h2 = tanh(0.5 * 2 + 0.3 + (-1) * h1)  = tanh(1.3 - h1)     = tanh(0.635963230) = 0.562144695

    and, with a2 = 1 - h2^2 and a1 = 1 - h1^2 (tanh' = 1 - tanh^2),

        dh2/dx2   = a2 * 0.5
        dh2/dx1   = a2 * (-1) * a1 * 0.5                 (through h1)
        dh2/dw_hh = a2 * (h1 + (-1) * a1 * h0) = a2 * h1 (h0 = 0)
        dh2/dw_ih = a2 * (x2 + (-1) * a1 * x1)
        dh2/db_ih = dh2/db_hh = a2 * (1 + (-1) * a1)
    """
    cell = nn.RNNCell(1, 1).double()
    for name, value in (("weight_ih", [[0.5]]), ("weight_hh", [[-1.0]]), ("bias_ih", [0.1]),
                        ("bias_hh", [0.2])):
        getattr(cell, name).data = edugrad.tensor(value, dtype=edugrad.float64)
    x1 = edugrad.tensor([[1.0]], dtype=edugrad.float64, requires_grad=True)
    x2 = edugrad.tensor([[2.0]], dtype=edugrad.float64, requires_grad=True)
    h1 = cell(x1)
    h2 = cell(x2, h1)
    v1, v2 = math.tanh(0.8), math.tanh(1.3 - math.tanh(0.8))
    assert h1.item() == pytest.approx(v1, abs=1e-14) and v1 == pytest.approx(0.664036770, abs=1e-9)
    assert h2.item() == pytest.approx(v2, abs=1e-14) and v2 == pytest.approx(0.562144695, abs=1e-9)
    h2.backward()
    a1, a2 = 1 - v1 ** 2, 1 - v2 ** 2
    assert x2.grad.item() == pytest.approx(a2 * 0.5, abs=1e-14)
    assert x1.grad.item() == pytest.approx(a2 * -1 * a1 * 0.5, abs=1e-14)
    assert cell.weight_hh.grad.item() == pytest.approx(a2 * v1, abs=1e-14)
    assert cell.weight_ih.grad.item() == pytest.approx(a2 * (2 - a1 * 1), abs=1e-14)
    assert cell.bias_ih.grad.item() == pytest.approx(a2 * (1 - a1), abs=1e-14)
    assert cell.bias_hh.grad.item() == pytest.approx(a2 * (1 - a1), abs=1e-14)


# ---- parameters, state_dict, printing -----------------------------------------------------------
MODULES = [
    lambda nn: nn.RNN(3, 4, 2, nonlinearity="relu", bias=False, batch_first=True, dropout=0.1,
                      bidirectional=True),
    lambda nn: nn.LSTM(3, 4, 3, bidirectional=True, proj_size=2),
    lambda nn: nn.LSTM(3, 4, bias=False, proj_size=3),
    lambda nn: nn.GRU(3, 4, 2, dropout=0.2),
    lambda nn: nn.RNNCell(3, 4, bias=False, nonlinearity="relu"),
    lambda nn: nn.LSTMCell(3, 4),
    lambda nn: nn.GRUCell(3, 4, bias=False),
]


@pytest.mark.parametrize("make", MODULES)
def test_parameters_state_dict_and_repr_match_torch(torch, make):
    ours, theirs = build_pair(torch, make, "float32")
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert tuple(p.shape) == tuple(q.shape), name
    assert repr(ours) == repr(theirs)
    # and back: a checkpoint of ours loads into torch with every value intact
    edugrad.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fresh = make(nn)
    copy_state(fresh, theirs, torch)
    for key, value in fresh.state_dict().items():
        np.testing.assert_array_equal(host(theirs.state_dict()[key]), host(value), err_msg=key)


def test_checkpoint_from_edugrad_runs_the_same_in_torch(torch):
    ours = nn.GRU(3, 4, 2, bidirectional=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.nn.GRU(3, 4, 2, bidirectional=True)
    copy_state(ours, theirs, torch)
    x = np.random.default_rng(6).standard_normal((4, 2, 3)).astype("float32")
    assert_same(ours(edugrad.tensor(x))[0], theirs(torch.tensor(x))[0], "GRU output")


@pytest.mark.parametrize("make", [lambda: nn.LSTM(5, 16, 2, bidirectional=True),
                                  lambda: nn.GRUCell(5, 16)])
def test_default_init_is_uniform_in_one_over_sqrt_hidden(make):
    edugrad.manual_seed(0)
    bound = 1 / math.sqrt(16)
    values = np.concatenate([host(p).ravel() for p in make().parameters()])
    assert values.min() >= -bound and values.max() <= bound
    assert values.min() < -0.9 * bound and values.max() > 0.9 * bound  # fills the interval
    assert abs(values.mean()) < 0.02 and values.var() == pytest.approx(bound ** 2 / 3, rel=0.1)


def test_constructor_arguments_and_device_dtype():
    layer = nn.LSTM(3, 4, 2, dtype=edugrad.float64)
    assert all(p.dtype is edugrad.float64 for p in layer.parameters())
    assert [len(w) for w in layer.all_weights] == [4, 4]
    layer.flatten_parameters()  # a no-op, called by many PyTorch programs
    assert nn.RNN(3, 4, 1, "relu").nonlinearity == "relu"  # positional, as in PyTorch


# ---- dropout between layers ---------------------------------------------------------------------
def two_layer_probe(dropout: float):
    """A 2-layer tanh RNN whose second layer passes its input through: W_ih = I, W_hh = 0,
    no bias, so its output is tanh(dropout(first layer's output)); and the first layer alone."""
    edugrad.manual_seed(0)
    probe = nn.RNN(6, 50, 2, dropout=dropout).double()
    first = nn.RNN(6, 50).double()
    first.load_state_dict({k: v for k, v in probe.state_dict().items() if k.endswith("l0")})
    with edugrad.no_grad():
        probe.weight_ih_l1.copy_(edugrad.eye(50, dtype=edugrad.float64))
        for name in ("weight_hh_l1", "bias_ih_l1", "bias_hh_l1"):
            getattr(probe, name).zero_()
    return probe, first


def test_dropout_between_layers_statistics():
    probe, first = two_layer_probe(0.3)
    x = edugrad.tensor(np.random.default_rng(7).standard_normal((20, 10, 6)))
    below = first(x)[0].detach().numpy()  # never exactly 0
    out = probe(x)[0].detach().numpy()
    dropped = out == 0
    assert dropped.mean() == pytest.approx(0.3, abs=0.03)  # 10,000 draws: std 0.005
    np.testing.assert_allclose(out[~dropped], np.tanh(below[~dropped] / 0.7), rtol=1e-12)
    probe.eval()  # evaluation: no dropout, and no rescaling
    np.testing.assert_allclose(probe(x)[0].detach().numpy(), np.tanh(below), rtol=1e-12)


def test_dropout_zero_in_training_is_deterministic():
    probe, first = two_layer_probe(0.0)
    x = edugrad.tensor(np.random.default_rng(8).standard_normal((4, 3, 6)))
    np.testing.assert_allclose(probe(x)[0].detach().numpy(),
                               np.tanh(first(x)[0].detach().numpy()), rtol=1e-12)


def test_dropout_is_not_applied_after_the_last_layer():
    probe, first = two_layer_probe(1.0)  # p = 1: everything between the layers is dropped
    x = edugrad.tensor(np.random.default_rng(9).standard_normal((3, 2, 6)))
    output, h_n = probe(x)
    assert not output.detach().numpy().any()  # tanh(0): the second layer saw only zeros
    np.testing.assert_allclose(h_n[0].detach().numpy(), first(x)[1][0].detach().numpy())


def test_dropout_with_one_layer_warns_as_torch():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.LSTM(3, 4, dropout=0.5)


# ---- packed sequences ---------------------------------------------------------------------------
PACKED = {
    "lstm_sorted": (lambda nn: nn.LSTM(3, 4, 2, bidirectional=True), [5, 3, 3, 1], True),
    "lstm_unsorted_proj": (lambda nn: nn.LSTM(3, 5, proj_size=2, bidirectional=True),
                           [2, 5, 1, 4], False),
    "gru_unsorted": (lambda nn: nn.GRU(3, 4, 2, bidirectional=True), [1, 4, 4, 2], False),
    "rnn_sorted": (lambda nn: nn.RNN(3, 4, nonlinearity="relu"), [3, 2], True),
}


@pytest.mark.parametrize("batch_first", [False, True], ids=["time_first", "batch_first"])
@pytest.mark.parametrize("initial", [False, True], ids=["no_h0", "h0"])
@pytest.mark.parametrize("name", list(PACKED))
def test_packed_sequence_matches_torch(torch, name, initial, batch_first):
    """pack_padded_sequence -> layer -> pad_packed_sequence, both libraries: the packed data,
    the batch sizes, the final states (each row's own last step), and every gradient."""
    make, lengths, enforce_sorted = PACKED[name]
    ours, theirs = build_pair(torch, make, "float64")
    rng = np.random.default_rng(10)
    shape = (max(lengths), len(lengths), 3)
    padded = rng.standard_normal(shape)
    if batch_first:
        padded = padded.transpose(1, 0, 2).copy()
    arrays = [padded]
    if initial:
        arrays += [rng.standard_normal(s) for s in state_shapes(ours, shape)]
    results = []
    for lib, module, utils in ((edugrad, ours, rnn_utils), (torch, theirs, torch.nn.utils.rnn)):
        leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
        packed = utils.pack_padded_sequence(leaves[0], lengths, batch_first=batch_first,
                                            enforce_sorted=enforce_sorted)
        states = leaves[1:]
        hx = tuple(states) if len(states) == 2 else (states[0] if states else None)
        output, state = module(packed, hx)
        unpacked, out_lengths = utils.pad_packed_sequence(output, batch_first=batch_first)
        results.append((leaves, packed, output, flatten(state), unpacked, out_lengths))
    (ours_leaves, ours_packed, ours_out, ours_state, ours_padded, ours_lengths) = results[0]
    (theirs_leaves, theirs_packed, theirs_out, theirs_state, theirs_padded,
     theirs_lengths) = results[1]
    assert ours_packed.batch_sizes.tolist() == theirs_packed.batch_sizes.tolist()
    assert_same(ours_packed.data, theirs_packed.data, f"{name} packed input")
    assert_same(ours_out.data, theirs_out.data, f"{name} packed output")
    assert ours_lengths.tolist() == theirs_lengths.tolist() == lengths
    assert_same(ours_padded, theirs_padded, f"{name} padded output")
    for k, (a, b) in enumerate(zip(ours_state, theirs_state)):
        assert_same(a, b, f"{name} final state {k}")
    upstream = [rng.standard_normal(tuple(t.shape)) for t in [theirs_padded, *theirs_state]]
    edugrad.autograd.backward([ours_padded, *ours_state], [edugrad.tensor(u) for u in upstream])
    torch.autograd.backward([theirs_padded, *theirs_state], [torch.tensor(u) for u in upstream])
    for k, (a, b) in enumerate(zip(ours_leaves, theirs_leaves)):
        assert_same(a.grad, b.grad, f"{name} gradient of input {k}")
    theirs_params = dict(theirs.named_parameters())
    for pname, param in ours.named_parameters():
        assert_same(param.grad, theirs_params[pname].grad, f"{name} gradient of {pname}")


def test_packed_final_state_is_each_sequence_own_last_step():
    """The point of packing: h_n of a short sequence is its state after its own last step,
    the same as running it alone, not after reading the padding."""
    edugrad.manual_seed(0)
    layer = nn.GRU(2, 3).double()
    rng = np.random.default_rng(11)
    long, short = rng.standard_normal((4, 2)), rng.standard_normal((2, 2))
    padded = rnn_utils.pad_sequence([edugrad.tensor(long), edugrad.tensor(short)])
    _, h_n = layer(rnn_utils.pack_padded_sequence(padded, [4, 2]))
    _, alone = layer(edugrad.tensor(short))
    np.testing.assert_allclose(host(h_n[0, 1]), host(alone[0]), rtol=1e-12)


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("trailing", [(), (2,)], ids=["1d", "2d"])
def test_pad_sequence_matches_torch(torch, trailing, batch_first, padding_side):
    rng = np.random.default_rng(12)
    arrays = [rng.standard_normal((n, *trailing)) for n in (3, 1, 4)]
    ours = [edugrad.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    a = rnn_utils.pad_sequence(ours, batch_first, -1.5, padding_side)
    b = torch.nn.utils.rnn.pad_sequence(theirs, batch_first, -1.5, padding_side)
    assert_same(a, b, "pad_sequence")
    upstream = rng.standard_normal(tuple(b.shape))
    a.backward(edugrad.tensor(upstream)), b.backward(torch.tensor(upstream))
    for k, (x, y) in enumerate(zip(ours, theirs)):
        assert_same(x.grad, y.grad, f"pad_sequence gradient of sequence {k}")


def test_pad_sequence_of_token_ids(torch):
    """Integer sequences (token ids) keep their dtype, as in PyTorch."""
    ids = [[5, 2, 7], [1], [4, 4]]
    a = rnn_utils.pad_sequence([edugrad.tensor(s) for s in ids], batch_first=True)
    b = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in ids], batch_first=True)
    assert a.dtype is edugrad.int64 and a.tolist() == b.tolist()


def test_pack_sequence_and_unpack_round_trip(torch):
    rng = np.random.default_rng(13)
    arrays = [rng.standard_normal((n, 2)) for n in (2, 4, 1)]
    packed = rnn_utils.pack_sequence([edugrad.tensor(a) for a in arrays], enforce_sorted=False)
    theirs = torch.nn.utils.rnn.pack_sequence([torch.tensor(a) for a in arrays],
                                              enforce_sorted=False)
    assert_same(packed.data, theirs.data, "pack_sequence data")
    assert packed.sorted_indices.tolist() == theirs.sorted_indices.tolist()
    assert packed.unsorted_indices.tolist() == theirs.unsorted_indices.tolist()
    for a, back in zip(arrays, rnn_utils.unpack_sequence(packed)):
        np.testing.assert_array_equal(host(back), a)
    padded, lengths = rnn_utils.pad_packed_sequence(packed, total_length=6, padding_value=9.0)
    assert tuple(padded.shape) == (6, 3, 2) and lengths.tolist() == [2, 4, 1]
    assert (host(padded)[2:, 0] == 9).all()
    assert packed.double().data.dtype is edugrad.float64


# ---- bad input ----------------------------------------------------------------------------------
def lstm_call(x_shape, states=None, module=None):
    def call(lib):
        layer = (module or (lambda nn: nn.LSTM(3, 4, 2)))(lib.nn)
        x = lib.zeros(*x_shape)
        hx = None if states is None else tuple(lib.zeros(*s) for s in states)
        return layer(x, hx)
    return call


BAD = {
    "4-D input": (lstm_call((2, 3, 4, 3)), ValueError, ["LSTM", "4D", "(2, 3, 4, 3)"]),
    "wrong input size": (lstm_call((5, 2, 6)), RuntimeError, ["LSTM", "Expected 3, got 6",
                                                              "(5, 2, 6)"]),
    "h0 of the wrong shape": (lstm_call((5, 2, 3), [(2, 3, 4), (2, 2, 4)]), RuntimeError,
                              ["LSTM", "(2, 2, 4)", "[2, 3, 4]"]),
    "c0 of the wrong shape": (lstm_call((5, 2, 3), [(2, 2, 4), (2, 2, 5)]), RuntimeError,
                              ["LSTM", "hidden[1]", "[2, 2, 5]"]),
    "2-D h0 with batched input": (lstm_call((5, 2, 3), [(2, 4), (2, 4)]), RuntimeError,
                                  ["LSTM", "3-D", "2-D"]),
    "gru h0 of the wrong shape": (
        lambda lib: lib.nn.GRU(3, 4)(lib.zeros(5, 2, 3), lib.zeros(1, 3, 4)), RuntimeError,
        ["GRU", "(1, 2, 4)", "[1, 3, 4]"]),
    "float64 input to a float32 layer": (
        lambda lib: lib.nn.RNN(3, 4)(lib.zeros(5, 2, 3, dtype=lib.float64)), ValueError,
        ["RNN", "float64", "float32"]),
    "empty sequence": (lstm_call((0, 2, 3)), RuntimeError, ["LSTM", "length"]),
    "cell: 3-D input": (lambda lib: lib.nn.GRUCell(3, 4)(lib.zeros(2, 2, 3)), ValueError,
                        ["GRUCell", "3D"]),
    "cell: wrong input size": (lambda lib: lib.nn.RNNCell(3, 4)(lib.zeros(2, 5)), RuntimeError,
                               ["RNNCell", "got 5 expected 3"]),
    "cell: wrong hidden size": (
        lambda lib: lib.nn.LSTMCell(3, 4)(lib.zeros(2, 3), (lib.zeros(2, 4), lib.zeros(2, 5))),
        RuntimeError, ["LSTMCell", "hidden1", "got 5, expected 4"]),
    "cell: batch mismatch": (
        lambda lib: lib.nn.GRUCell(3, 4)(lib.zeros(2, 3), lib.zeros(3, 4)), RuntimeError,
        ["GRUCell", "batch size 2", "batch size 3"]),
    "proj_size on a GRU": (lambda lib: lib.nn.GRU(3, 4, proj_size=2), ValueError,
                           ["GRU", "proj_size"]),
    "proj_size >= hidden_size": (lambda lib: lib.nn.LSTM(3, 4, proj_size=4), ValueError,
                                 ["proj_size has to be smaller than hidden_size"]),
    "unknown nonlinearity": (lambda lib: lib.nn.RNN(3, 4, nonlinearity="sigmoid"), ValueError,
                             ["RNN", "sigmoid", "tanh", "relu"]),
    "dropout out of range": (lambda lib: lib.nn.LSTM(3, 4, 2, dropout=1.5), ValueError,
                             ["dropout", "[0, 1]"]),
    "pack: unsorted lengths": (
        lambda lib: lib.nn.utils.rnn.pack_padded_sequence(lib.zeros(3, 2, 1), [1, 3]),
        RuntimeError, ["enforce_sorted"]),
    "pack: zero length": (
        lambda lib: lib.nn.utils.rnn.pack_padded_sequence(lib.zeros(3, 2, 1), [3, 0]),
        RuntimeError, ["greater than 0"]),
    "pack: lengths for another batch": (
        lambda lib: lib.nn.utils.rnn.pack_padded_sequence(lib.zeros(3, 2, 1), [3, 2, 1]),
        RuntimeError, ["batch_size=2"]),
    "pad_sequence: empty": (lambda lib: lib.nn.utils.rnn.pad_sequence([]), RuntimeError,
                            ["empty"]),
    "pad_sequence: mismatched trailing dims": (
        lambda lib: lib.nn.utils.rnn.pad_sequence([lib.zeros(2, 3), lib.zeros(1, 4)]),
        RuntimeError, ["(2, 3)", "(1, 4)"]),
    "pad_sequence: bad padding_side": (
        lambda lib: lib.nn.utils.rnn.pad_sequence([lib.zeros(2)], padding_side="middle"),
        RuntimeError, ["padding_side", "middle"]),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_raises_as_torch_does(torch, name):
    """The same exception class as PyTorch, and a message that names the layer and shapes."""
    call, error, words = BAD[name]
    with pytest.raises(error):
        call(torch)
    with pytest.raises(error) as info:
        call(edugrad)
    for word in words:
        assert word in str(info.value), f"{name}: {word!r} not in {str(info.value)!r}"


def test_bad_input_changes_nothing():
    layer = nn.LSTM(3, 4)
    before = {k: host(v).copy() for k, v in layer.state_dict().items()}
    with pytest.raises(RuntimeError):
        layer(edugrad.zeros(5, 2, 6))
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(host(value), before[key])


def test_zero_batch_runs(torch):
    """An empty batch gives empty outputs of the right shapes, as in PyTorch."""
    output, (h_n, c_n) = nn.LSTM(3, 4, 2)(edugrad.zeros(5, 0, 3))
    assert tuple(output.shape) == (5, 0, 4) and tuple(h_n.shape) == (2, 0, 4)
    assert tuple(c_n.shape) == (2, 0, 4)
