"""edugrad.utils.data as a package: samplers, Subset / ConcatDataset / random_split, and
DataLoader's worker processes, against torch.utils.data where the answer is deterministic."""

from __future__ import annotations

import math
import os
from collections import Counter

import numpy as np
import pytest

import edugrad
from edugrad.utils import data
from edugrad.utils.data import (
    BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler,
    SequentialSampler, Subset, SubsetRandomSampler, TensorDataset, WeightedRandomSampler,
    get_worker_info, random_split,
)

torch = pytest.importorskip("torch", reason="torch.utils.data is the oracle here")
# torch warns when a loader has more workers than this machine has cores: expected here
pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")


class Squares(Dataset):
    """Samples of mixed kinds: a NumPy array, an int, a float, a string."""

    def __init__(self, count=23):
        self.count = count

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        return {"x": np.full(3, i, dtype=np.float32), "i": i, "sq": float(i * i), "name": f"s{i}"}


def as_lists(batch):
    """A batch (edugrad or torch) as plain Python values, for comparing."""
    if hasattr(batch, "tolist"):
        return batch.tolist()
    if isinstance(batch, dict):
        return {key: as_lists(value) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return [as_lists(item) for item in batch]
    return batch


# ---- module paths, as makemore imports them -------------------------------------------------------
def test_pytorchs_module_paths_hold_the_names():
    from edugrad.utils.data.dataloader import DataLoader as FromDataloader
    from edugrad.utils.data.dataset import Dataset as FromDataset
    from edugrad.utils.data.sampler import RandomSampler as FromSampler
    assert FromDataloader is DataLoader and FromDataset is Dataset
    assert FromSampler is RandomSampler and data.default_collate is data.collate


# ---- samplers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("count, size, drop_last", [(10, 3, False), (10, 3, True), (9, 3, True),
                                                    (1, 4, False), (7, 1, False)])
def test_sequential_and_batch_samplers_are_torchs(count, size, drop_last):
    ours = list(BatchSampler(SequentialSampler(range(count)), size, drop_last))
    theirs = list(torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(count)),
                                                size, drop_last))
    assert ours == theirs
    assert len(BatchSampler(SequentialSampler(range(count)), size, drop_last)) == len(theirs)


@pytest.mark.parametrize("kwargs", [dict(), dict(num_samples=25), dict(num_samples=4),
                                    dict(replacement=True), dict(replacement=True,
                                                                 num_samples=40)])
def test_random_sampler_lengths_and_contents_as_torch(kwargs):
    source = range(10)
    ours = list(RandomSampler(source, generator=edugrad.Generator().manual_seed(0), **kwargs))
    theirs = list(torch.utils.data.RandomSampler(source, **kwargs))
    assert len(ours) == len(theirs) == len(RandomSampler(source, **kwargs))
    assert all(0 <= i < 10 for i in ours)
    if not kwargs.get("replacement"):  # whole permutations, then part of one
        for start in range(0, len(ours) - len(ours) % 10, 10):
            assert sorted(ours[start:start + 10]) == list(range(10))
        assert len(set(ours[len(ours) - len(ours) % 10:])) == len(ours) % 10


def test_samplers_repeat_with_their_generator():
    def orders(seed):
        g = edugrad.Generator().manual_seed(seed)
        return (list(RandomSampler(range(30), generator=g)),
                list(SubsetRandomSampler([3, 5, 7, 11, 13], generator=g)),
                list(WeightedRandomSampler([0.1, 0.2, 0.7], 20, generator=g)))
    assert orders(1) == orders(1) and orders(1) != orders(2)
    subset = orders(1)[1]
    assert sorted(subset) == [3, 5, 7, 11, 13]


def test_weighted_random_sampler_follows_the_weights():
    g = edugrad.Generator().manual_seed(0)
    drawn = Counter(WeightedRandomSampler([0.0, 1.0, 3.0], 8000, generator=g))
    assert drawn[0] == 0 and abs(drawn[2] / 8000 - 0.75) < 0.03
    unique = list(WeightedRandomSampler([1.0, 1.0, 1.0, 5.0], 4, replacement=False, generator=g))
    assert sorted(unique) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="num_samples"):
        WeightedRandomSampler([1.0], 0)


def test_a_sampler_and_a_batch_sampler_in_the_loader():
    dataset = Squares(10)
    by_sampler = DataLoader(dataset, batch_size=4, sampler=[9, 0, 8, 1, 7])
    assert [b["i"].tolist() for b in by_sampler] == [[9, 0, 8, 1], [7]]
    by_batches = DataLoader(dataset, batch_sampler=[[3, 2], [1], [0, 4, 5]])
    assert [b["i"].tolist() for b in by_batches] == [[3, 2], [1], [0, 4, 5]]
    assert len(by_batches) == 3 and len(by_sampler) == 2
    x = edugrad.arange(10)
    fast = DataLoader(TensorDataset(x), batch_size=3, sampler=[5, 4, 3, 2, 1])
    assert [b.tolist() for (b,) in fast] == [[5, 4, 3], [2, 1]]


@pytest.mark.parametrize("kwargs, match", [
    (dict(sampler=[0, 1], shuffle=True), "mutually exclusive with shuffle"),
    (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler"),
    (dict(batch_sampler=[[0]], drop_last=True), "batch_sampler"),
    (dict(batch_size=None, drop_last=True), "drop_last"),
    (dict(num_workers=-1), "num_workers"),
    (dict(prefetch_factor=2), "prefetch_factor"),
    (dict(persistent_workers=True), "persistent_workers"),
])
def test_conflicting_loader_options_are_torchs_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(Squares(4), **kwargs)
    with pytest.raises(ValueError):
        torch.utils.data.DataLoader(list(range(4)), **kwargs)


def test_batch_size_none_yields_samples_converted():
    samples = list(DataLoader(Squares(3), batch_size=None))
    assert len(samples) == 3 and isinstance(samples[1]["x"], edugrad.Tensor)
    assert samples[1]["i"] == 1 and samples[1]["x"].tolist() == [1.0, 1.0, 1.0]


# ---- Subset, ConcatDataset, random_split -----------------------------------------------------------
def test_subset_and_concat_index_as_torch():
    base = list(range(100, 110))
    ours, theirs = Subset(base, [4, 0, 7]), torch.utils.data.Subset(base, [4, 0, 7])
    assert [ours[i] for i in range(3)] == [theirs[i] for i in range(3)] and len(ours) == 3
    assert ours[[0, 2]] == theirs.__getitems__([0, 2])
    parts = [list(range(3)), list(range(10, 15)), [], list(range(20, 22))]
    ours, theirs = ConcatDataset(parts), torch.utils.data.ConcatDataset(parts)
    assert len(ours) == len(theirs) == 10 and ours.cumulative_sizes == theirs.cumulative_sizes
    assert [ours[i] for i in range(-10, 10)] == [theirs[i] for i in range(-10, 10)]
    with pytest.raises(IndexError):
        ours[10]
    assert len(Squares(2) + Squares(3)) == 5


@pytest.mark.parametrize("count, lengths", [(10, [3, 7]), (10, [0.3, 0.7]), (11, [0.5, 0.5]),
                                            (7, [0.2, 0.2, 0.6]), (5, [1.0]), (10, [0, 10])])
def test_random_split_lengths_as_torch_and_a_partition(count, lengths):
    g = edugrad.Generator().manual_seed(0)
    ours = random_split(list(range(count)), lengths, generator=g)
    theirs = torch.utils.data.random_split(list(range(count)), lengths)
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    assert sorted(i for s in ours for i in s.indices) == list(range(count))
    again = random_split(list(range(count)), lengths, generator=edugrad.Generator().manual_seed(0))
    assert [s.indices for s in again] == [s.indices for s in ours]


def test_random_split_rejects_lengths_that_do_not_add_up():
    with pytest.raises(ValueError, match="sum to 5"):
        random_split(list(range(6)), [2, 3])


# ---- workers --------------------------------------------------------------------------------------
LOADERS = [
    dict(batch_size=4),
    dict(batch_size=4, shuffle=True, drop_last=True),
    dict(batch_size=5, sampler=list(range(22, -1, -2))),
    dict(batch_sampler=[[1, 2], [3], [0, 5, 7], [22], [4, 4]]),
    dict(batch_size=None),
]


@pytest.mark.parametrize("kwargs", LOADERS)
@pytest.mark.parametrize("workers", [1, 3])
def test_workers_give_the_same_batches_in_the_same_order(kwargs, workers):
    def epoch(num_workers):
        extra = dict(generator=edugrad.Generator().manual_seed(3)) if kwargs.get("shuffle") \
            else {}
        loader = DataLoader(Squares(), num_workers=num_workers, **kwargs, **extra)
        return [as_lists(batch) for batch in loader]
    assert epoch(workers) == epoch(0)


def test_worker_batches_are_tensors_of_the_right_dtype_and_torch_agrees():
    ours = list(DataLoader(Squares(6), batch_size=3, num_workers=2))
    theirs = list(torch.utils.data.DataLoader(Squares(6), batch_size=3, num_workers=2))
    for a, b in zip(ours, theirs):
        assert a["x"].dtype.name == str(b["x"].dtype)[6:] and a["x"].shape == tuple(b["x"].shape)
        assert a["i"].dtype.name == str(b["i"].dtype)[6:] and as_lists(a) == as_lists(b)


def test_tensor_dataset_through_workers():
    x, y = edugrad.arange(20).reshape(10, 2).float(), edugrad.arange(10)
    loader = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, num_workers=2,
                        generator=edugrad.Generator().manual_seed(0))
    direct = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True,
                        generator=edugrad.Generator().manual_seed(0))
    assert [as_lists(b) for b in loader] == [as_lists(b) for b in direct]
    assert all(xb.dtype is edugrad.float32 and yb.dtype is edugrad.int64 for xb, yb in loader)


class WhoAmI(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return [i, os.getpid(), -1 if info is None else info.id, -1 if info is None else
                info.num_workers, int(edugrad.randint(0, 10 ** 9, ()).item()),
                os.environ.get("EDUGRAD_TEST_INIT", "")]


def mark_worker(worker_id):
    os.environ["EDUGRAD_TEST_INIT"] = f"init {worker_id}"


def test_workers_are_processes_with_their_info_seed_and_init():
    loader = DataLoader(WhoAmI(), batch_size=2, num_workers=2, worker_init_fn=mark_worker)
    rows = [row for batch in loader for row in zip(*[as_lists(f) for f in batch])]
    assert [row[0] for row in rows] == list(range(8))
    assert {row[1] for row in rows}.isdisjoint({os.getpid()}) and len({r[1] for r in rows}) == 2
    assert [row[2] for row in rows] == [0, 0, 1, 1, 0, 0, 1, 1]  # batch i on worker i % 2
    assert {row[3] for row in rows} == {2}
    assert {row[5] for row in rows} == {"init 0", "init 1"}
    assert len({row[4] for row in rows}) == 8  # seeded differently per worker
    assert get_worker_info() is None and "EDUGRAD_TEST_INIT" not in os.environ
    edugrad.manual_seed(5)
    first = [as_lists(b) for b in DataLoader(WhoAmI(), batch_size=2, num_workers=2)]
    edugrad.manual_seed(5)
    again = [as_lists(b) for b in DataLoader(WhoAmI(), batch_size=2, num_workers=2)]
    assert [[r[4] for r in zip(*b)] for b in first] == [[r[4] for r in zip(*b)] for b in again]


def test_persistent_workers_serve_several_epochs_in_the_same_processes():
    loader = DataLoader(WhoAmI(), batch_size=4, num_workers=2, persistent_workers=True)
    epochs = [[as_lists(b) for b in loader] for _ in range(3)]
    pids = [{row[1] for batch in e for row in zip(*batch)} for e in epochs]
    assert pids[0] == pids[1] == pids[2] and len(pids[0]) == 2
    assert [[r[0] for b in e for r in zip(*b)] for e in epochs] == [list(range(8))] * 3
    half = iter(loader)  # an epoch left half way does not confuse the next one
    next(half)
    assert [r[0] for b in loader for r in zip(*as_lists(b))] == list(range(8))
    loader._workers.stop()


class Broken(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 4:
            raise KeyError("sample 4 is missing")
        return i


def test_an_error_in_a_worker_is_raised_in_the_main_process_with_its_trace():
    with pytest.raises(RuntimeError, match="(?s)worker raised.*sample 4 is missing"):
        list(DataLoader(Broken(), batch_size=2, num_workers=2))


def shard(count, info):
    """0 .. count-1, split between workers the way PyTorch's documentation shows."""
    if info is None:
        return iter(range(count))
    per_worker = int(math.ceil(count / info.num_workers))
    start = info.id * per_worker
    return iter(range(start, min(start + per_worker, count)))


class Stream(IterableDataset):
    def __init__(self, count):
        self.count = count

    def __len__(self):
        return self.count

    def __iter__(self):
        return shard(self.count, get_worker_info())


class TorchStream(torch.utils.data.IterableDataset):
    def __init__(self, count):
        self.count = count

    def __len__(self):
        return self.count

    def __iter__(self):
        return shard(self.count, torch.utils.data.get_worker_info())


@pytest.mark.parametrize("kwargs", [dict(batch_size=3), dict(batch_size=3, drop_last=True),
                                    dict(batch_size=None)])
@pytest.mark.parametrize("workers", [0, 2, 3])
def test_an_iterable_dataset_batches_as_torch(kwargs, workers):
    ours = [as_lists(b) for b in DataLoader(Stream(14), num_workers=workers, **kwargs)]
    theirs = [as_lists(b) for b in torch.utils.data.DataLoader(TorchStream(14),
                                                               num_workers=workers, **kwargs)]
    assert ours == theirs
    if workers == 0:
        assert len(DataLoader(Stream(14), **kwargs)) == len(
            torch.utils.data.DataLoader(TorchStream(14), **kwargs))


def test_an_iterable_dataset_takes_no_shuffle_or_sampler():
    with pytest.raises(ValueError, match="IterableDataset"):
        DataLoader(Stream(3), shuffle=True)
    with pytest.raises(TypeError, match="iterated, not indexed"):
        Stream(3)[0]
