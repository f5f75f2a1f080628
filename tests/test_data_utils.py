"""edugrad.utils.data: Dataset, TensorDataset, DataLoader (batching, drop_last, seeded
shuffling, collation), with PyTorch's DataLoader as the oracle for batch counts and collation."""

from __future__ import annotations

import random

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import edugrad
from edugrad.utils.data import DataLoader, Dataset, TensorDataset, collate

torch = pytest.importorskip("torch")


class Squares(Dataset):
    """A plain map-style dataset: sample i is (tensor [i, i*i], label i % 3)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __getitem__(self, i):
        return edugrad.tensor([float(i), float(i * i)]), i % 3

    def __len__(self) -> int:
        return self.count


def dataset(count: int = 10) -> TensorDataset:
    x = edugrad.arange(count * 2, dtype=edugrad.float32).reshape(count, 2)
    y = edugrad.tensor([i % 3 for i in range(count)], dtype=edugrad.int64)
    return TensorDataset(x, y)


def first_column(loader) -> list:
    """The sample indices, batch by batch (x[:, 0] = 2 i)."""
    return [[int(v) // 2 for v in xb[:, 0].tolist()] for xb, _ in loader]


@pytest.mark.parametrize("count, batch_size, drop_last", [
    (10, 3, False), (10, 3, True), (10, 5, False), (10, 5, True), (10, 1, False), (3, 10, False),
    (3, 10, True), (0, 4, False), (11, 4, True),
])
@pytest.mark.parametrize("shuffle", [False, True])
def test_batch_counts_and_sizes_match_torch(count, batch_size, drop_last, shuffle):
    loader = DataLoader(dataset(count) if count else Squares(0), batch_size=batch_size,
                        shuffle=shuffle, drop_last=drop_last, generator=0)
    # torch refuses to shuffle an empty dataset; the sizes don't depend on the order anyway
    reference = torch.utils.data.DataLoader(range(count), batch_size=batch_size,
                                            drop_last=drop_last)
    sizes = [len(batch[0]) for batch in loader]
    assert sizes == [len(batch) for batch in reference]
    assert len(loader) == len(reference) == len(sizes)


@settings(max_examples=60, deadline=None)
@given(count=st.integers(0, 40), batch_size=st.integers(1, 12), drop_last=st.booleans(),
       shuffle=st.booleans(), seed=st.integers(0, 2 ** 32))
def test_batches_partition_a_permutation(count, batch_size, drop_last, shuffle, seed):
    loader = DataLoader(dataset(count) if count else Squares(0), batch_size=batch_size,
                        shuffle=shuffle, drop_last=drop_last, generator=seed)
    batches = first_column(loader) if count else []
    seen = sum(batches, [])
    assert len(batches) == len(loader)
    assert all(len(b) == batch_size for b in batches[:-1] if b)
    assert len(seen) == (count - count % batch_size if drop_last else count)
    assert len(set(seen)) == len(seen) and set(seen) <= set(range(count))
    if not shuffle:
        assert seen == list(range(len(seen)))


def test_in_order_without_shuffle():
    loader = DataLoader(dataset(7), batch_size=3)
    assert first_column(loader) == [[0, 1, 2], [3, 4, 5], [6]]
    xb, yb = next(iter(loader))
    assert xb.shape == (3, 2) and xb.dtype is edugrad.float32
    assert yb.shape == (3,) and yb.dtype is edugrad.int64 and yb.tolist() == [0, 1, 2]


def test_shuffle_is_a_permutation_that_repeats_with_the_seed():
    def epochs(generator, count=2):
        loader = DataLoader(dataset(23), batch_size=4, shuffle=True, generator=generator)
        return [sum(first_column(loader), []) for _ in range(count)]

    first, second = epochs(5)
    assert sorted(first) == list(range(23)) and sorted(second) == list(range(23))
    assert first != list(range(23)) and first != second  # shuffled, and anew each epoch
    assert epochs(5) == [first, second]  # the same seed, the same orders
    assert epochs(6) != [first, second]
    assert epochs(random.Random(5)) == [first, second]  # a seed or a random.Random


def test_default_shuffle_follows_manual_seed():
    def epoch():
        return sum(first_column(DataLoader(dataset(30), batch_size=7, shuffle=True)), [])

    edugrad.manual_seed(3)
    a = epoch()
    edugrad.manual_seed(3)
    assert epoch() == a and sorted(a) == list(range(30))
    edugrad.manual_seed(4)
    assert epoch() != a


def test_tensor_dataset_fast_path_gives_the_batches_of_the_general_path():
    data = dataset(17)

    class Plain(Dataset):  # the same samples, through __getitem__ and collate
        def __getitem__(self, i):
            return data[i]

        def __len__(self):
            return len(data)

    for shuffle in (False, True):
        fast = DataLoader(data, batch_size=5, shuffle=shuffle, generator=1)
        slow = DataLoader(Plain(), batch_size=5, shuffle=shuffle, generator=1)
        for (fx, fy), (sx, sy) in zip(fast, slow, strict=True):
            assert fx.shape == sx.shape and fx.dtype is sx.dtype
            assert fy.shape == sy.shape and fy.dtype is sy.dtype
            assert fx.tolist() == sx.tolist() and fy.tolist() == sy.tolist()


def test_collate_matches_torch_default_collate():
    samples = [(np.float32(i) * np.ones(3, np.float32), i, 0.5 * i, True, {"id": i, "s": "x"})
               for i in range(4)]
    ours = collate([(edugrad.tensor(a), i, f, b, d) for a, i, f, b, d in samples])
    theirs = torch.utils.data.default_collate([(torch.from_numpy(a), i, f, b, d)
                                               for a, i, f, b, d in samples])
    for mine, reference in zip(ours[:4], theirs[:4]):
        assert mine.shape == tuple(reference.shape)
        assert mine.dtype.name == str(reference.dtype).replace("torch.", "")
        np.testing.assert_array_equal(mine.numpy(), reference.numpy())
    assert ours[4]["id"].tolist() == theirs[4]["id"].tolist() and ours[4]["s"] == ["x"] * 4


def test_general_dataset_batches():
    loader = DataLoader(Squares(5), batch_size=2)
    batches = list(loader)
    assert len(batches) == 3
    xb, yb = batches[0]
    assert xb.tolist() == [[0.0, 0.0], [1.0, 1.0]] and yb.tolist() == [0, 1]
    assert batches[2][0].shape == (1, 2)


def test_custom_collate_fn():
    loader = DataLoader(Squares(4), batch_size=2, collate_fn=lambda batch: len(batch))
    assert list(loader) == [2, 2]


def test_tensor_dataset():
    x, y = edugrad.randn(6, 3), edugrad.arange(6)
    data = TensorDataset(x, y)
    assert len(data) == 6
    xi, yi = data[2]
    assert xi.tolist() == x[2].tolist() and yi.item() == 2
    with pytest.raises(ValueError, match=r"size mismatch.*\(6, 3\), \(5,\)"):
        TensorDataset(x, edugrad.arange(5))
    with pytest.raises(TypeError, match="argument 0 must be a tensor"):
        TensorDataset([1, 2, 3])


@pytest.mark.parametrize("kwargs, error", [
    (dict(batch_size=0), ValueError), (dict(batch_size=2.5), ValueError),
    (dict(generator="seed"), TypeError),
])
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        DataLoader(dataset(4), **kwargs)


def test_batches_train_a_model_on_another_backend():
    """The loader only indexes tensors, so data on any device batches there."""
    x = edugrad.arange(12, dtype=edugrad.float32, device="python").reshape(6, 2)
    loader = DataLoader(TensorDataset(x), batch_size=4, shuffle=True, generator=0)
    batches = [xb for (xb,) in loader]
    assert [b.device for b in batches] == ["python", "python"]
    assert sorted(v for b in batches for v in b[:, 0].tolist()) == [0, 2, 4, 6, 8, 10]
