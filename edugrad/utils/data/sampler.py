"""Samplers: the order in which a DataLoader visits a map-style dataset. PyTorch's names
(torch.utils.data.sampler).

Layer: nn/optim/utils (top). Imports edugrad.factories; never NumPy.

A sampler is an iterable of indices; a batch sampler an iterable of lists of indices. The
DataLoader makes `BatchSampler(SequentialSampler or RandomSampler, batch_size, drop_last)`
unless given its own.

`generator=`: an edugrad.Generator (its own stream), None (a fresh seed drawn from edugrad's
global stream at every pass, so `edugrad.manual_seed` repeats the orders), and, for the
DataLoader's older interface, an int seed or a `random.Random`. The orders are edugrad's, not
PyTorch's: the two libraries' generators differ.
"""

from __future__ import annotations

import random

from edugrad import dtypes
from edugrad.factories import Generator, randint, randperm, tensor


def check_generator(name: str, generator):
    """An accepted generator (an int becomes a random.Random), or a TypeError."""
    if generator is None or isinstance(generator, (Generator, random.Random)):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        return random.Random(generator)
    raise TypeError(f"{name}: generator must be an edugrad.Generator, a seed (int) or a "
                    f"random.Random, got {type(generator).__name__}")


def permutation(count: int, generator) -> list:
    """A random order of range(count), from the generator (see the module docstring)."""
    if isinstance(generator, Generator):
        return randperm(count, generator=generator).tolist()
    if generator is None:  # a fresh seed per pass, drawn from edugrad's global stream
        generator = random.Random(int(randint(0, 2 ** 62, ()).item()))
    order = list(range(count))
    generator.shuffle(order)
    return order


def _integers(high: int, count: int, generator) -> list:
    if isinstance(generator, Generator):
        return randint(0, high, (count,), generator=generator).tolist()
    if generator is None:
        return randint(0, high, (count,)).tolist()
    return [generator.randrange(high) for _ in range(count)]


class Sampler:
    """Base class: subclasses define __iter__ (indices) and usually __len__."""

    def __init__(self, data_source=None) -> None:
        pass

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__}.__iter__ is not written")


class SequentialSampler(Sampler):
    """0, 1, 2, ..., len(data_source) - 1."""

    def __init__(self, data_source) -> None:
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random order of the indices; with replacement, num_samples independent draws;
    without, num_samples (default: all) taken from as many permutations as needed."""

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None,
                 generator=None) -> None:
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement must be a bool, got {replacement!r}")
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples must be a positive int, got "
                             f"{num_samples!r}")
        self.data_source, self.replacement = data_source, replacement
        self._num_samples = num_samples
        self.generator = check_generator("RandomSampler", generator)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        count, wanted = len(self.data_source), self.num_samples
        if self.replacement:
            yield from _integers(count, wanted, self.generator)
            return
        if count == 0:  # nothing to order (PyTorch refuses; an empty epoch is the kinder answer)
            return
        for _ in range(wanted // count):
            yield from permutation(count, self.generator)
        yield from permutation(count, self.generator)[:wanted % count]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices, in a random order."""

    def __init__(self, indices, generator=None) -> None:
        self.indices = list(indices)
        self.generator = check_generator("SubsetRandomSampler", generator)

    def __iter__(self):
        for i in permutation(len(self.indices), self.generator):
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """num_samples indices drawn with probability proportional to weights (multinomial)."""

    def __init__(self, weights, num_samples: int, replacement: bool = True,
                 generator=None) -> None:
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"WeightedRandomSampler: num_samples must be a positive int, got "
                             f"{num_samples!r}")
        self.weights = tensor(weights.tolist() if hasattr(weights, "tolist") else list(weights),
                              dtype=dtypes.float64)
        if self.weights.ndim != 1:
            raise ValueError(f"WeightedRandomSampler: weights must be 1-D, got shape "
                             f"{tuple(self.weights.shape)}")
        if not isinstance(generator, (Generator, type(None))):
            raise TypeError(f"WeightedRandomSampler: generator must be an edugrad.Generator, got "
                            f"{type(generator).__name__}")
        self.num_samples, self.replacement, self.generator = num_samples, replacement, generator

    def __iter__(self):
        drawn = self.weights.multinomial(self.num_samples, self.replacement,
                                         generator=self.generator)
        yield from drawn.tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of batch_size indices from a sampler; the last one shorter unless drop_last."""

    def __init__(self, sampler, batch_size: int, drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size must be a positive int, got "
                             f"{batch_size!r}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last must be a bool, got {drop_last!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        batch = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        count = len(self.sampler)
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)
