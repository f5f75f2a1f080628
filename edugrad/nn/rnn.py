"""Recurrent layers: RNN, LSTM, GRU and their one-step cells RNNCell, LSTMCell, GRUCell.

Layer: nn (top). Imports the Tensor layer (tensor, factories, shape), nn.functional, nn.init,
nn.module, nn.parameter and nn.utils.rnn; never NumPy.

A recurrent layer reads a sequence x_1 .. x_T one step at a time and carries a state h (and an
LSTM's cell c) from each step to the next. Each step's gates come from two products, with the
gates stacked along the rows of one weight, in PyTorch's order (LSTM i, f, g, o; GRU r, z, n):

    gi_t = W_ih x_t + b_ih     (4H for an LSTM)   one matmul for ALL steps, before the loop
    gh_t = W_hh h_{t-1} + b_hh (4H)               one matmul per step, all gates at once

    LSTM   i, f, g, o = split(gi_t + gh_t)        c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g)
                                                  h_t = sigmoid(o) tanh(c_t)
    GRU    r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z)
           n = tanh(gi_n + r * gh_n)              h_t = (1 - z) n + z h_{t-1}
    RNN    h_t = tanh(gi_t + gh_t)  (or relu)

Only the product with h_{t-1} has to wait for the previous step, so the input's part is done
for the whole sequence as one large matrix product (T*B rows), as PyTorch and cuDNN do; the
loop then costs one (B, H) x (H, 4H) product and a few elementwise ops per step. The gradient
needs no code here: every step is made of Tensor ops, and backpropagation through time is
the ordinary backward pass over the unrolled graph.

Stacked layers feed each layer's outputs (both directions side by side) to the next, with
dropout between them while training. A bidirectional layer runs a second set of weights (the
`_reverse` ones) from x_T back to x_1. A PackedSequence (nn.utils.rnn) runs at step t only the
first batch_sizes[t] rows; a padded batch is the case where every step has all B rows, and the
same loop serves both (`_run_direction`).
"""

from __future__ import annotations

import math
import numbers
import warnings

from edugrad.factories import empty, zeros
from edugrad.nn import functional as F
from edugrad.nn import init
from edugrad.nn.module import Module
from edugrad.nn.parameter import Parameter
from edugrad.nn.utils.rnn import PackedSequence, cat_pairwise
from edugrad.shape import cat, stack
from edugrad.tensor import Tensor

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


# ---- one step: (input part gi, hidden part gh, state) -> new state ------------------------------
# The state is a tuple, (h,) or (h, c); h comes first and is the step's output.
def _tanh_step(gi: Tensor, gh: Tensor, state: tuple, w_hr) -> tuple:
    return ((gi + gh).tanh(),)


def _relu_step(gi: Tensor, gh: Tensor, state: tuple, w_hr) -> tuple:
    return ((gi + gh).relu(),)


def _lstm_step(gi: Tensor, gh: Tensor, state: tuple, w_hr: Tensor | None) -> tuple:
    """c = sigmoid(f) c + sigmoid(i) tanh(g), h = sigmoid(o) tanh(c); with proj_size, h is
    projected down by W_hr (no bias) before it is output and fed back."""
    i, f, g, o = (gi + gh).chunk(4, 1)
    c = f.sigmoid() * state[1] + i.sigmoid() * g.tanh()
    h = o.sigmoid() * c.tanh()
    return (h if w_hr is None else F.linear(h, w_hr)), c


def _gru_step(gi: Tensor, gh: Tensor, state: tuple, w_hr) -> tuple:
    """r and z from both parts; n's hidden part (bias included) is scaled by r before it is
    added, which is why GRU keeps gi and gh apart (PyTorch's and cuDNN's formulation)."""
    size = gh.shape[1] // 3
    gi_rz, gi_n = gi.split([2 * size, size], 1)
    gh_rz, gh_n = gh.split([2 * size, size], 1)
    r, z = (gi_rz + gh_rz).sigmoid().chunk(2, 1)
    n = (gi_n + r * gh_n).tanh()
    return (n + z * (state[0] - n),)  # (1 - z) n + z h with one op fewer


_STEPS = {"RNN_TANH": _tanh_step, "RNN_RELU": _relu_step, "LSTM": _lstm_step, "GRU": _gru_step}
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


def _run_direction(step, inputs: list, batch_sizes: list, initial: tuple, w_hh: Tensor,
                   b_hh: Tensor | None, w_hr: Tensor | None, reverse: bool):
    """Run one layer in one direction. inputs[t] is step t's input part gi (batch_sizes[t]
    rows); initial is the state (h0,) or (h0, c0), B rows each. Returns the outputs, one per
    step in time order, and the final state of every row.

    Rows are sorted longest sequence first, so going forward rows only drop out: a row whose
    sequence ended keeps its state as its final one. Going backward rows only join, starting
    from their initial state. With all sizes equal (a padded batch) neither happens.
    """
    order = range(len(inputs) - 1, -1, -1) if reverse else range(len(inputs))
    rows = batch_sizes[order[0]] if len(order) else 0
    state = tuple(s if rows == s.shape[0] else s[:rows] for s in initial)
    finished, outputs = [], [None] * len(inputs)
    for t in order:
        size = batch_sizes[t]
        if size < rows:  # sequences that ended: their state is final
            finished.append(tuple(s[size:] for s in state))
            state = tuple(s[:size] for s in state)
        elif size > rows:  # sequences that start here (reverse direction)
            state = tuple(cat([s, s0[rows:size]]) for s, s0 in zip(state, initial))
        rows = size
        state = step(inputs[t], F.linear(state[0], w_hh, b_hh), state, w_hr)
        outputs[t] = state[0]
    if finished:  # the rows still running come first, then those that ended last
        state = tuple(cat([part[k] for part in [state] + finished[::-1]])
                      for k in range(len(state)))
    return outputs, state


def _split_pairwise(rows: Tensor, sizes: list) -> list:
    """rows.split(sizes, 0), made as a tree of halves. A piece's gradient is padded to the
    length of what it was cut from, so one split into n pieces costs n full-length passes
    backward (32 steps: 32 pads and 31 adds of the whole); through the tree each of the
    log2(n) levels passes over the whole once (cat_pairwise, the other way round)."""
    if len(sizes) <= 1:
        return [rows]
    half = len(sizes) // 2
    head = sum(sizes[:half])
    first, second = rows.split([head, rows.shape[0] - head], 0)
    return _split_pairwise(first, sizes[:half]) + _split_pairwise(second, sizes[half:])


class RNNBase(Module):
    """What RNN, LSTM and GRU share: the parameters, their checks, and the layer loop."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        _check_sizes(type(self).__name__, input_size, hidden_size, num_layers, proj_size)
        if (isinstance(dropout, bool) or not isinstance(dropout, numbers.Number)
                or not 0 <= dropout <= 1):
            raise ValueError(f"{type(self).__name__}: dropout should be a number in range [0, 1] "
                             "representing the probability of an element being zeroed, got "
                             f"{dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        for name, flag in (("bias", bias), ("batch_first", batch_first)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} should be of type bool, got: {type(flag).__name__}")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, proj_size
        self._step = _STEPS[mode]
        self._register_weights(_GATES[mode] * hidden_size, device, dtype)
        self.reset_parameters()

    def _register_weights(self, gate_size: int, device, dtype) -> None:
        """weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, weight_hr_l{k} (+
        _reverse), in PyTorch's order, so state_dict keys and checkpoints match."""
        out_size = self.proj_size or self.hidden_size  # what h is: the projection if any
        self._flat_weights_names, self._all_weights, self._weight_names = [], [], []
        for layer in range(self.num_layers):
            for suffix in ("", "_reverse")[:self._directions]:
                in_size = self.input_size if layer == 0 else out_size * self._directions
                shapes = {"weight_ih": (gate_size, in_size), "weight_hh": (gate_size, out_size)}
                if self.bias:
                    shapes.update(bias_ih=(gate_size,), bias_hh=(gate_size,))
                if self.proj_size:
                    shapes["weight_hr"] = (self.proj_size, self.hidden_size)
                names = [f"{kind}_l{layer}{suffix}" for kind in shapes]
                for name, shape in zip(names, shapes.values()):
                    setattr(self, name, Parameter(empty(*shape, dtype=dtype, device=device)))
                self._flat_weights_names += names
                self._all_weights.append(names)
                # the same names by kind, None where absent: what _layers reads every call
                self._weight_names.append(tuple(f"{kind}_l{layer}{suffix}" if kind in shapes
                                                else None for kind in _KINDS))

    @property
    def _directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def all_weights(self) -> list:
        """The parameters of each layer and direction, as lists (PyTorch's all_weights)."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """PyTorch packs the weights into one buffer for cuDNN here; edugrad has nothing to do."""

    def reset_parameters(self) -> None:
        """Every weight and bias uniform in (-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            text += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.bias is not True:
            text += f", bias={self.bias}"
        if self.batch_first is not False:
            text += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            text += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            text += f", bidirectional={self.bidirectional}"
        return text

    # ---- forward --------------------------------------------------------------------------------
    def forward(self, input, hx=None):
        """input (T, B, input_size) ((B, T, ...) with batch_first), (T, input_size) unbatched,
        or a PackedSequence. Returns (output, h_n) for RNN and GRU, (output, (h_n, c_n)) for
        LSTM: output (T, B, D * H_out) holds the last layer's h at every step, h_n and c_n
        (num_layers * D, B, H_out) every layer's final state; D = 2 if bidirectional."""
        name = type(self).__name__
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.ndim}D tensor "
                             f"instead (input of shape {tuple(input.shape)})")
        batched = input.ndim == 3
        if not batched:  # one sequence: a batch of one, taken away again at the end
            input = input.unsqueeze(0 if self.batch_first else 1)
        if self.batch_first:
            input = input.transpose(0, 1)
        steps, batch = input.shape[:2]
        self._check_input(input.shape[-1], input)
        state = self._initial_state(hx, batched, batch, input)
        if steps == 0:
            raise RuntimeError(f"{name}: expected sequence length to be larger than 0, got input "
                               f"of shape {tuple(input.shape)}")
        data, state = self._layers(input.reshape(steps * batch, self.input_size), [batch] * steps,
                                   state)
        output = data.reshape(steps, batch, data.shape[-1])
        if self.batch_first:
            output = output.transpose(0, 1)
        if not batched:
            output = output.squeeze(0 if self.batch_first else 1)
            state = tuple(s.squeeze(1) for s in state)
        return output, self._pack_state(state)

    def _forward_packed(self, input: PackedSequence, hx):
        data, batch_sizes, sorted_indices, unsorted_indices = input
        if data.ndim != 2:
            raise RuntimeError(f"{type(self).__name__}: packed input data must have 2 "
                               f"dimensions, got shape {tuple(data.shape)}")
        batch_sizes = batch_sizes.tolist()
        self._check_input(data.shape[-1], data)
        state = self._initial_state(hx, True, batch_sizes[0], data)
        if sorted_indices is not None and hx is not None:  # h0 is given in the caller's order
            state = tuple(s[:, sorted_indices] for s in state)
        output, state = self._layers(data, batch_sizes, state)
        if unsorted_indices is not None:
            state = tuple(s[:, unsorted_indices] for s in state)
        return (PackedSequence(output, input.batch_sizes, sorted_indices, unsorted_indices),
                self._pack_state(state))

    def _layers(self, data: Tensor, batch_sizes: list, state: tuple):
        """The stack of layers on packed data (N, input_size), time step after time step.
        Returns the last layer's output (N, D * H_out) and the final states, each stacked to
        (num_layers * D, B, size)."""
        initial = [s.unbind(0) for s in state]
        finals = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self._directions):
                index = layer * self._directions + direction
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(index)
                # the input's part of every gate at every step: one matrix product
                inputs = _split_pairwise(F.linear(data, w_ih, b_ih), batch_sizes)
                start = tuple(s[index] for s in initial)
                steps, final = _run_direction(self._step, inputs, batch_sizes, start,
                                              w_hh, b_hh, w_hr, reverse=direction == 1)
                outputs.append(cat_pairwise(steps))
                finals.append(final)
            data = outputs[0] if len(outputs) == 1 else cat(outputs, 1)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                data = F.dropout(data, self.dropout, True)
        return data, tuple(stack([f[k] for f in finals]) for k in range(len(state)))

    def _weights(self, index: int) -> tuple:
        """(w_ih, w_hh, b_ih, b_hh, w_hr) of layer * D + direction, None where absent."""
        return tuple(None if name is None else getattr(self, name)
                     for name in self._weight_names[index])

    # ---- states and checks ----------------------------------------------------------------------
    def _state_sizes(self) -> tuple:
        """The last dim of each state tensor: (H_out,), or (H_out, H) for an LSTM."""
        return (self.proj_size or self.hidden_size,)

    def _pack_state(self, state: tuple):
        return state[0]

    def _unpack_state(self, hx) -> tuple:
        if not isinstance(hx, Tensor):
            raise TypeError(f"{type(self).__name__}: hx must be a Tensor, got "
                            f"{type(hx).__name__}")
        return (hx,)

    def _initial_state(self, hx, batched: bool, batch: int, input: Tensor) -> tuple:
        """hx as a tuple of (num_layers * D, B, size) tensors: zeros if not given, checked."""
        name, sizes = type(self).__name__, self._state_sizes()
        layers = self.num_layers * self._directions
        if hx is None:
            return tuple(zeros(layers, batch, size, dtype=input.dtype, device=input.device)
                         for size in sizes)
        state = self._unpack_state(hx)
        want = 3 if batched else 2
        if any(s.ndim != want for s in state):
            got = ", ".join(f"{s.ndim}-D" for s in state)
            raise RuntimeError(f"{name}: for {'batched 3-D' if batched else 'unbatched 2-D'} "
                               f"input, hx should also be {want}-D but got ({got}) tensor(s)")
        if not batched:
            state = tuple(s.unsqueeze(1) for s in state)
        for k, (s, size) in enumerate(zip(state, sizes)):
            expected = (layers, batch, size)
            if tuple(s.shape) != expected:
                which = f"hidden[{k}]" if len(sizes) > 1 else "hidden"
                raise RuntimeError(f"{name}: Expected {which} size {expected}, got "
                                   f"{list(s.shape)}")
            if s.dtype is not input.dtype or s.device != input.device:
                raise RuntimeError(f"{name}: hx is {s.dtype.name} on {s.device}, input is "
                                   f"{input.dtype.name} on {input.device}: they must agree")
        return state

    def _check_input(self, size: int, input: Tensor) -> None:
        name, weight = type(self).__name__, self.weight_ih_l0
        if input.dtype is not weight.dtype:
            raise ValueError(f"{name}: input dtype ({input.dtype.name}) does not match weight "
                             f"dtype ({weight.dtype.name}). Convert input: input.to("
                             f"{weight.dtype.name}), or convert model: model.to("
                             f"{input.dtype.name})")
        if input.device != weight.device:
            raise RuntimeError(f"{name}: input is on {input.device}, the weights on "
                               f"{weight.device} (move one with .to(device))")
        if size != self.input_size:
            raise RuntimeError(f"{name}: input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {size} (input of shape "
                               f"{tuple(input.shape)})")


def _check_sizes(name: str, input_size, hidden_size, num_layers, proj_size) -> None:
    for what, value in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers), ("proj_size", proj_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name}: {what} should be of type int, got: "
                            f"{type(value).__name__}")
    for what, value in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
        if value <= 0:
            raise ValueError(f"{name}: {what} must be greater than zero, got {value}")
    if proj_size < 0:
        raise ValueError(f"{name}: proj_size should be a positive integer or zero to disable "
                         f"projections, got {proj_size}")
    if proj_size >= hidden_size:
        raise ValueError(f"{name}: proj_size has to be smaller than hidden_size, got proj_size="
                         f"{proj_size} and hidden_size={hidden_size}")


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, **kwargs) -> None:
        _no_projection("RNN", kwargs)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' "
                             "or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)


class LSTM(RNNBase):
    """Long short-term memory: gates i, f, g, o; state (h, c). With proj_size > 0, h is
    projected to proj_size by weight_hr (Sak et al. 2014), and c keeps hidden_size."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device, dtype)

    def _state_sizes(self) -> tuple:
        return (self.proj_size or self.hidden_size, self.hidden_size)

    def _pack_state(self, state: tuple):
        return state

    def _unpack_state(self, hx) -> tuple:
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2
                and all(isinstance(s, Tensor) for s in hx)):
            raise TypeError("LSTM: hx must be a tuple (h_0, c_0) of two Tensors, got "
                            f"{type(hx).__name__}")
        return tuple(hx)


class GRU(RNNBase):
    """Gated recurrent unit: gates r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None, **kwargs) -> None:
        _no_projection("GRU", kwargs)
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device=device, dtype=dtype)


def _no_projection(name: str, kwargs: dict) -> None:
    if "proj_size" in kwargs:
        raise ValueError(f"{name}: proj_size argument is only supported for LSTM, not RNN or GRU")
    if kwargs:
        raise TypeError(f"{name}.__init__() got an unexpected keyword argument "
                        f"'{next(iter(kwargs))}'")


# ---- cells: one step, the caller runs the loop --------------------------------------------------
class RNNCellBase(Module):
    """weight_ih (G * H, input_size), weight_hh (G * H, H), bias_ih and bias_hh (G * H,), with
    G gates; input (B, input_size) or (input_size,), state (B, H) or (H,)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None) -> None:
        super().__init__()
        _check_sizes(type(self).__name__, input_size, hidden_size, 1, 0)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        gates = num_chunks * hidden_size
        self.weight_ih = Parameter(empty(gates, input_size, dtype=dtype, device=device))
        self.weight_hh = Parameter(empty(gates, hidden_size, dtype=dtype, device=device))
        if bias:
            self.bias_ih = Parameter(empty(gates, dtype=dtype, device=device))
            self.bias_hh = Parameter(empty(gates, dtype=dtype, device=device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    reset_parameters = RNNBase.reset_parameters

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            text += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.nonlinearity}"
        return text

    def _run(self, step, input: Tensor, hx, count: int) -> tuple:
        """Check, add the batch dim to unbatched input, run one step, take the dim away."""
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead "
                             f"(input of shape {tuple(input.shape)})")
        batched = input.ndim == 2
        if not batched:
            input = input.unsqueeze(0)
        if hx is None:
            zero = zeros(input.shape[0], self.hidden_size, dtype=input.dtype,
                         device=input.device)
            state = (zero,) * count
        else:
            state = tuple(s if batched or s.ndim != 1 else s.unsqueeze(0) for s in hx)
        self._check(input, state)
        gi = F.linear(input, self.weight_ih, self.bias_ih)
        gh = F.linear(state[0], self.weight_hh, self.bias_hh)
        state = step(gi, gh, state, None)
        return state if batched else tuple(s.squeeze(0) for s in state)

    def _check(self, input: Tensor, state: tuple) -> None:
        name = type(self).__name__
        if input.shape[1] != self.input_size:
            raise RuntimeError(f"{name}: input has inconsistent input_size: got "
                               f"{input.shape[1]} expected {self.input_size} (input of shape "
                               f"{tuple(input.shape)})")
        if input.dtype is not self.weight_ih.dtype:
            raise ValueError(f"{name}: input dtype ({input.dtype.name}) does not match weight "
                             f"dtype ({self.weight_ih.dtype.name})")
        for k, s in enumerate(state):
            if s.ndim not in (1, 2):
                raise ValueError(f"{name}: Expected hx[{k}] to be 1D or 2D, got {s.ndim}D "
                                 "instead")
            if s.ndim != 2 or s.shape[0] != input.shape[0]:
                raise RuntimeError(f"{name}: input batch size {input.shape[0]} doesn't match "
                                   f"hidden{k} batch size {s.shape[0]} (input of shape "
                                   f"{tuple(input.shape)}, hidden{k} of shape {tuple(s.shape)})")
            if s.shape[1] != self.hidden_size:
                raise RuntimeError(f"{name}: hidden{k} has inconsistent hidden_size: got "
                                   f"{s.shape[1]}, expected {self.hidden_size}")


class RNNCell(RNNCellBase):
    """h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: Unknown nonlinearity '{nonlinearity}'. Select from "
                             "'tanh' or 'relu'.")
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        step = _tanh_step if self.nonlinearity == "tanh" else _relu_step
        return self._run(step, input, None if hx is None else (hx,), 1)[0]


class LSTMCell(RNNCellBase):
    """One LSTM step: (h', c') from x and (h, c); gates i, f, g, o."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple:
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError("LSTMCell: hx must be a tuple (h, c) of two Tensors, got "
                            f"{type(hx).__name__}")
        return self._run(_lstm_step, input, hx, 2)


class GRUCell(RNNCellBase):
    """One GRU step: h' from x and h; gates r, z, n."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._run(_gru_step, input, None if hx is None else (hx,), 1)[0]
