"""Datasets and the DataLoader that cuts them into (shuffled) batches. PyTorch's names.

Layer: nn/optim/utils (top). Imports edugrad.tensor, edugrad.shape and edugrad.factories;
never NumPy: shuffling is Python's `random` on the host, and batches are made with tensor ops.

    Dataset         anything with __getitem__(i) -> sample and __len__()
    TensorDataset   sample i is (t[i] for t in tensors)
    DataLoader      for batch in loader: ...  batches of batch_size samples, collated

How a batch is made: the loader takes the next batch_size indices of an order (0, 1, 2, ... or
a shuffle of it), fetches each sample and `collate`s them: tensors are stacked along a new first
dim, numbers become a tensor (its dtype promoted over the batch, as in PyTorch), tuples and
dicts are collated field by field. A TensorDataset skips the per-sample work: its batch is one
indexing of each whole tensor, `t[indices]` (or a slice `t[start:stop]` when not shuffled).

Shuffling repeats: `generator=` a seed or a `random.Random` gives the same orders on every run;
without one, each epoch's order is seeded from edugrad's random generator, so
`edugrad.manual_seed(0)` fixes it, as `torch.manual_seed` fixes PyTorch's.
"""

from __future__ import annotations

import random

from edugrad import dtypes
from edugrad.factories import randint, tensor
from edugrad.shape import stack
from edugrad.tensor import Tensor


class Dataset:
    """A map-style dataset: subclasses define __getitem__(index) and __len__()."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__}.__getitem__ is not written")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__}.__len__ is not written")


class TensorDataset(Dataset):
    """Samples are slices along the first dim: dataset[i] = (x[i], y[i]) for tensors x, y."""

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor) or t.ndim == 0:
                raise TypeError(f"TensorDataset: argument {i} must be a tensor with a first dim "
                                f"to index, got {type(t).__name__} {getattr(t, 'shape', '')}")
        if any(t.shape[0] != tensors[0].shape[0] for t in tensors):
            raise ValueError("TensorDataset: size mismatch between tensors: shapes "
                             f"{', '.join(str(tuple(t.shape)) for t in tensors)} must agree "
                             "in their first dim")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


def collate(samples: list):
    """A list of samples -> one batch, as PyTorch's default_collate makes it.

    Tensors are stacked (a new first dim); numbers, NumPy scalars and NumPy arrays become one
    tensor. The dtype promotes over the whole batch, never just the first sample's: `[1, 2.5]`
    is float32 and `[True, 2]` int64, as `torch.tensor([...])` gives, and tensors of mixed
    dtypes stack as torch.stack promotes them. One exception, PyTorch's too: a batch whose
    first sample is a Python float is float64. Tuples, lists and dicts are collated field by
    field; anything else (strings) stays a list.
    """
    first = samples[0]
    if isinstance(first, Tensor):
        _check_all(samples, Tensor, "a tensor")
        return stack(samples)  # promotes mixed dtypes
    if _is_numpy(first) and first.ndim > 0:
        return stack([tensor(sample) for sample in samples])  # as torch.as_tensor each, stack
    if isinstance(first, (bool, int, float)) or _is_numpy(first):
        each = [(_dtype_of(sample, i), 1) for i, sample in enumerate(samples)]  # as tensors
        # a float first: float64, default_collate's choice; else what torch.tensor would give
        dtype = dtypes.float64 if type(first) is float else dtypes.result_type(*each)
        return tensor(samples, dtype=dtype)
    if isinstance(first, dict):
        return {key: collate([sample[key] for sample in samples]) for key in first}
    if isinstance(first, (tuple, list)):
        if any(len(sample) != len(first) for sample in samples):
            raise RuntimeError("collate: each sample in a batch must have the same number of "
                               f"fields, got {sorted({len(sample) for sample in samples})}")
        fields = [collate(list(field)) for field in zip(*samples)]
        return fields if isinstance(first, list) else tuple(fields)
    return list(samples)


def _is_numpy(sample) -> bool:
    """A NumPy array or scalar, recognised without importing NumPy (this layer never does)."""
    return type(sample).__module__ == "numpy" and hasattr(sample, "dtype")


def _dtype_of(sample, index: int) -> dtypes.DType:
    """The dtype torch.tensor gives one number: its own for NumPy, bool/int64/float32 else."""
    if _is_numpy(sample) and sample.ndim == 0:
        return dtypes.from_name(sample.dtype.name)
    if isinstance(sample, (bool, int, float)):
        return dtypes.of_python_scalar(sample)
    raise TypeError(f"collate: sample {index} is a {type(sample).__name__}, but sample 0 is a "
                    "number: a batch must be numbers throughout")


def _check_all(samples: list, kind: type, name: str) -> None:
    for index, sample in enumerate(samples):
        if not isinstance(sample, kind):
            raise TypeError(f"collate: sample {index} is a {type(sample).__name__}, but sample "
                            f"0 is {name}: a batch must be {name} throughout")


class DataLoader:
    """Iterate a dataset in batches.

    >>> loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=0)
    >>> for xb, yb in loader:
    ...     loss = loss_fn(model(xb), yb)
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, generator=None, collate_fn=None) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if generator is not None and not isinstance(generator, (int, random.Random)):
            raise TypeError("DataLoader: generator must be a seed (int) or a random.Random, "
                            f"got {type(generator).__name__}")
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.generator = random.Random(generator) if isinstance(generator, int) else generator
        self.collate_fn = collate_fn or collate

    def __len__(self) -> int:
        """The number of batches in one epoch."""
        count = len(self.dataset)
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def __iter__(self):
        count, size = len(self.dataset), self.batch_size
        order = list(range(count))
        if self.shuffle:
            self._generator().shuffle(order)
        stop = count - count % size if self.drop_last else count
        fast = type(self.dataset) is TensorDataset and self.collate_fn is collate
        if fast and self.shuffle:  # the order goes to each device once per epoch
            orders = {t.device: tensor(order, dtype=dtypes.int64, device=t.device)
                      for t in self.dataset.tensors}
        for start in range(0, stop, size):
            end = min(start + size, count)
            if not fast:
                yield self.collate_fn([self.dataset[i] for i in order[start:end]])
            elif self.shuffle:  # one gather per tensor, not batch_size slices and a stack
                yield tuple(t[orders[t.device][start:end]] for t in self.dataset.tensors)
            else:
                yield tuple(t[start:end] for t in self.dataset.tensors)

    def _generator(self) -> random.Random:
        if self.generator is not None:
            return self.generator
        # a fresh seed per epoch, drawn from edugrad's generator: manual_seed repeats it
        return random.Random(int(randint(0, 2 ** 62, ()).item()))
