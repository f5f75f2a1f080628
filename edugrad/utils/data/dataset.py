"""Datasets: what a DataLoader reads samples from. PyTorch's names (torch.utils.data.dataset).

Layer: nn/optim/utils (top). Imports edugrad.tensor and edugrad.factories; never NumPy.

    Dataset          map-style: __getitem__(i) -> sample, __len__()
    IterableDataset  a stream: __iter__() yields samples (shard it with get_worker_info())
    TensorDataset    sample i is (t[i] for t in tensors)
    Subset           the samples of a dataset at some indices
    ConcatDataset    datasets one after the other
    random_split     a dataset cut into random non-overlapping Subsets of given lengths
"""

from __future__ import annotations

import bisect
import math

from edugrad.factories import randperm
from edugrad.tensor import Tensor


class Dataset:
    """A map-style dataset: subclasses define __getitem__(index) and __len__()."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__}.__getitem__ is not written")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__}.__len__ is not written")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset read as a stream: subclasses define __iter__().

    With num_workers > 0 every worker process iterates its own copy, so each sample would come
    num_workers times: split the stream in __iter__ with `get_worker_info()` (its `id` and
    `num_workers`), as in PyTorch."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__}.__iter__ is not written")

    def __getitem__(self, index):
        raise TypeError(f"{type(self).__name__} is an IterableDataset: it is iterated, not "
                        "indexed")


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


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order: subset[i] = dataset[indices[i]]."""

    def __init__(self, dataset, indices) -> None:
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, index):
        if isinstance(index, list):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """Datasets one after the other: index len(a) is b[0]."""

    def __init__(self, datasets) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for i, dataset in enumerate(self.datasets):
            if isinstance(dataset, IterableDataset):
                raise TypeError(f"ConcatDataset: dataset {i} is an IterableDataset, which has "
                                "no indices to concatenate")
        self.cumulative_sizes, total = [], 0
        for dataset in self.datasets:
            total += len(dataset)
            self.cumulative_sizes.append(total)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int):
        if index < 0:
            if -index > len(self):
                raise IndexError(f"ConcatDataset: index {index} is out of range for length "
                                 f"{len(self)}")
            index += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, index)
        if which == len(self.datasets):
            raise IndexError(f"ConcatDataset: index {index} is out of range for length "
                             f"{len(self)}")
        start = self.cumulative_sizes[which - 1] if which > 0 else 0
        return self.datasets[which][index - start]


def random_split(dataset, lengths, generator=None) -> list:
    """Cut `dataset` into random non-overlapping Subsets of these lengths (ints summing to its
    length, or fractions summing to 1, rounded down with the remainder handed out one by one
    from the first, as in PyTorch). `generator`: an edugrad.Generator; None: the global stream.

    >>> train, valid = random_split(data, [0.8, 0.2], generator=edugrad.Generator().manual_seed(0))
    """
    lengths = list(lengths)
    total = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for i, fraction in enumerate(lengths):
            if not 0 <= fraction <= 1:
                raise ValueError(f"random_split: fraction at index {i} is not in [0, 1]: "
                                 f"{fraction}")
        counts = [int(math.floor(total * fraction)) for fraction in lengths]
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != total:
        raise ValueError(f"random_split: the lengths {lengths} sum to {sum(lengths)}, but the "
                         f"dataset has {total} samples")
    order = randperm(total, generator=generator).tolist()
    subsets, offset = [], 0
    for length in lengths:
        subsets.append(Subset(dataset, order[offset:offset + length]))
        offset += length
    return subsets
