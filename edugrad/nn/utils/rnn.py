"""edugrad.nn.utils.rnn: batches of sequences of different lengths, padded or packed.

Layer: nn (top). Imports edugrad.tensor, edugrad.factories and edugrad.shape; never NumPy.

Three sentences of lengths 3, 1 and 2 (one feature each) can be held two ways:

    padded (T=3, B=3)            packed: time step by time step, only the sequences still running
        a1  b1  c1               data         a1 b1 c1 | a2 c2 | a3      (N = 6 rows)
        a2  0   c2               batch_sizes  3          2       1
        a3  0   0

`pad_sequence` builds the padded tensor; `pack_padded_sequence` turns it into a PackedSequence,
which the recurrent layers (nn.RNN, nn.LSTM, nn.GRU) accept: at time step t they update only the
first batch_sizes[t] rows, so a short sequence's final state is its own last step, not the
state after reading padding. `pad_packed_sequence` goes back. Packing needs the sequences sorted
longest first; with enforce_sorted=False the batch is sorted here, and `sorted_indices` /
`unsorted_indices` remember the permutation so that results come back in the caller's order.

Every conversion is one gather (`flat[index]`, the Take Function, whose gradient scatters back),
with the index worked out in Python from the lengths: lengths are host data, as in PyTorch.
"""

from __future__ import annotations

from typing import NamedTuple

from edugrad import dtypes
from edugrad.factories import full, tensor
from edugrad.shape import cat
from edugrad.tensor import Tensor

__all__ = [
    "PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence",
    "pad_sequence", "unpad_sequence", "pack_sequence", "unpack_sequence",
]


class PackedSequence(NamedTuple):
    """data (N, *) of every sequence's steps, time step by time step; batch_sizes (T,) int64,
    how many sequences are still running at each step (non-increasing); sorted_indices and
    unsorted_indices, the permutation that sorted the batch longest first (or None)."""

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None

    def _with_data(self, data: Tensor) -> "PackedSequence":
        def move(index):
            return None if index is None else index.to(data.device)

        return PackedSequence(data, self.batch_sizes, move(self.sorted_indices),
                              move(self.unsorted_indices))

    def to(self, *args, **kwargs) -> "PackedSequence":
        """The data moved or converted; the indices follow the data's device."""
        return self._with_data(self.data.to(*args, **kwargs))

    def cpu(self) -> "PackedSequence":
        return self._with_data(self.data.cpu())

    def cuda(self, device: int | None = None) -> "PackedSequence":
        return self._with_data(self.data.cuda(device))

    def float(self) -> "PackedSequence":
        return self._with_data(self.data.float())

    def double(self) -> "PackedSequence":
        return self._with_data(self.data.double())

    def long(self) -> "PackedSequence":
        return self._with_data(self.data.long())

    @property
    def is_cuda(self) -> bool:
        return self.data.device.startswith("cuda")


def _packed(data: Tensor, batch_sizes: list, sorted_indices: Tensor | None) -> PackedSequence:
    return PackedSequence(data, tensor(batch_sizes, dtype=dtypes.int64), sorted_indices,
                          invert_permutation(sorted_indices))


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The permutation q with q[p[i]] = i: it undoes p."""
    if permutation is None:
        return None
    inverse = [0] * permutation.numel()
    for i, position in enumerate(permutation.tolist()):
        inverse[position] = i
    return tensor(inverse, dtype=dtypes.int64, device=permutation.device)


def _lengths_list(lengths, op: str) -> list:
    values = lengths.tolist() if isinstance(lengths, Tensor) else list(lengths)
    if any(isinstance(v, float) and v != int(v) for v in values):
        raise TypeError(f"{op}: lengths must be whole numbers, got {values}")
    return [int(v) for v in values]


def cat_pairwise(pieces: list) -> Tensor:
    """cat(pieces) along dim 0, joined in pairs. edugrad's cat pads every piece to the full
    length and adds them, so joining n pieces at once costs n full-length passes; in pairs,
    each of the log2(n) rounds passes over the total once (32 pieces: 5 passes, not 32)."""
    while len(pieces) > 1:
        pieces = [cat(pieces[i:i + 2]) if i + 1 < len(pieces) else pieces[i]
                  for i in range(0, len(pieces), 2)]
    return pieces[0]


def _gather_rows(rows: Tensor, index: list, padding_value=None) -> Tensor:
    """rows[index] for a nested list of row numbers; with padding_value, the row number
    len(rows) reads a row full of padding_value (one extra row is appended for it)."""
    if padding_value is not None:
        pad_row = full((1, *rows.shape[1:]), padding_value, dtype=rows.dtype, device=rows.device)
        rows = cat([rows, pad_row])
    return rows[tensor(index, dtype=dtypes.int64, device=rows.device)]


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack sequences of shapes (L_i, *) into (T, B, *) (or (B, T, *) with batch_first),
    T = max L_i, filling the rest of each column with padding_value, after each sequence
    (padding_side='right') or before it ('left')."""
    if isinstance(sequences, Tensor):
        sequences = sequences.unbind(0)
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"pad_sequence: expected padding_side to be one of left or right, "
                           f"but got {padding_side}.")
    first = sequences[0]
    for i, s in enumerate(sequences):
        if s.ndim == 0 or s.shape[1:] != first.shape[1:]:
            raise RuntimeError(f"pad_sequence: sequence {i} has shape {tuple(s.shape)}, sequence "
                               f"0 has shape {tuple(first.shape)}: all must agree after the "
                               "first dim")
    lengths = [s.shape[0] for s in sequences]
    total, longest = sum(lengths), max(lengths)
    starts = [sum(lengths[:b]) for b in range(len(lengths))]

    def row(b: int, t: int) -> int:  # the row of the joined sequences that padded[t][b] reads
        step = t if padding_side == "right" else t - (longest - lengths[b])
        return starts[b] + step if 0 <= step < lengths[b] else total  # total: the padding row

    if batch_first:
        index = [[row(b, t) for t in range(longest)] for b in range(len(lengths))]
    else:
        index = [[row(b, t) for b in range(len(lengths))] for t in range(longest)]
    return _gather_rows(cat_pairwise(sequences), index, padding_value)


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) (or (B, T, *)) whose column b holds lengths[b] real steps.

    With enforce_sorted=True the lengths must be non-increasing; otherwise the batch is sorted
    (stably, longest first) and the permutation is kept in the PackedSequence.
    """
    if input.ndim < 2:
        raise RuntimeError(f"pack_padded_sequence: input must have at least 2 dims (time and "
                           f"batch), got shape {tuple(input.shape)}")
    lengths = _lengths_list(lengths, "pack_padded_sequence")
    steps, batch = (input.shape[1], input.shape[0]) if batch_first else input.shape[:2]
    if len(lengths) != batch:
        raise RuntimeError(f"pack_padded_sequence: expected `len(lengths)` to be equal to "
                           f"batch_size, but got {len(lengths)} (batch_size={batch}, input of "
                           f"shape {tuple(input.shape)})")
    if any(n <= 0 for n in lengths):
        raise RuntimeError("pack_padded_sequence: length of all samples has to be greater than "
                           f"0, but found an element in 'lengths' that is <= 0 ({lengths})")
    if max(lengths) > steps:
        raise RuntimeError(f"pack_padded_sequence: a length of {max(lengths)} is longer than the "
                           f"{steps} time steps of the input (shape {tuple(input.shape)})")
    order = list(range(batch))
    sorted_indices = None
    if enforce_sorted:
        if any(a < b for a, b in zip(lengths, lengths[1:])):
            raise RuntimeError(
                "pack_padded_sequence: `lengths` array must be sorted in decreasing order when "
                "`enforce_sorted` is True. You can pass `enforce_sorted=False` to "
                "pack_padded_sequence and/or pack_sequence to sidestep this requirement if you "
                "do not need ONNX exportability.")
    else:
        order = sorted(range(batch), key=lambda b: -lengths[b])  # stable: ties keep their order
        sorted_indices = tensor(order, dtype=dtypes.int64, device=input.device)
    batch_sizes = [sum(1 for n in lengths if n > t) for t in range(max(lengths))]
    # row of input.reshape(T * B, *) (or (B * T, *)) for step t of the b-th longest sequence
    position = (lambda t, b: b * steps + t) if batch_first else (lambda t, b: t * batch + b)
    index = [position(t, order[i]) for t, size in enumerate(batch_sizes) for i in range(size)]
    flat = input.reshape(steps * batch, *input.shape[2:])
    return _packed(_gather_rows(flat, index), batch_sizes, sorted_indices)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None):
    """Undo pack_padded_sequence: (padded (T, B, *) or (B, T, *), lengths (B,) int64), in the
    batch's original order; T = total_length when given (at least the longest length)."""
    batch_sizes = sequence.batch_sizes.tolist()
    steps = len(batch_sizes)
    if total_length is not None:
        if total_length < steps:
            raise ValueError("pad_packed_sequence: expected total_length to be at least the "
                             "length of the longest sequence in input, but got total_length="
                             f"{total_length} and max sequence length being {steps}")
        steps = total_length
    batch = batch_sizes[0] if batch_sizes else 0
    sizes = batch_sizes + [0] * (steps - len(batch_sizes))
    starts = [sum(batch_sizes[:t]) for t in range(steps)]
    total = sum(batch_sizes)
    unsorted = (list(range(batch)) if sequence.unsorted_indices is None
                else sequence.unsorted_indices.tolist())

    def row(t: int, b: int) -> int:  # packed row of padded[t][b]; total: the padding row
        rank = unsorted[b]  # b's place in the sorted batch
        return starts[t] + rank if rank < sizes[t] else total

    if batch_first:
        index = [[row(t, b) for t in range(steps)] for b in range(batch)]
    else:
        index = [[row(t, b) for b in range(batch)] for t in range(steps)]
    padded = _gather_rows(sequence.data, index, padding_value)
    lengths = [sum(1 for size in batch_sizes if size > unsorted[b]) for b in range(batch)]
    return padded, tensor(lengths, dtype=dtypes.int64)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list:
    """The list of sequences in a padded batch: column b's first lengths[b] steps."""
    columns = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    return [column[:n] for column, n in zip(columns.unbind(0),
                                            _lengths_list(lengths, "unpad_sequence"))]


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences (L_i, *) directly: pad_sequence, then pack_padded_sequence."""
    sequences = list(sequences)
    return pack_padded_sequence(pad_sequence(sequences), [s.shape[0] for s in sequences],
                                enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The list of sequences in a PackedSequence, in the original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
