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



@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="PyTorch's DataLoader is the oracle here: "
                                               "pip install -e \".[dev]\"")


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
def test_batch_counts_and_sizes_match_torch(count, batch_size, drop_last, shuffle, torch):
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


def test_collate_matches_torch_default_collate(torch):
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


# ---- collate promotes over the batch, as PyTorch does --------------------------------------------
def tensor_of(lib, values, dtype):
    return lib.tensor(values, dtype=getattr(lib, dtype))


BATCHES = {  # each a function of lib (edugrad or torch), so tensors can be made in both
    "int_then_float": lambda lib: [1, 2.5],
    "float_then_int": lambda lib: [2.5, 1],
    "bool_then_int": lambda lib: [True, 2],
    "int_then_bool": lambda lib: [2, True],
    "bool_then_float": lambda lib: [True, 2.5],
    "bools": lambda lib: [True, False],
    "ints": lambda lib: [1, 2, -3],
    "big_int": lambda lib: [1, 2 ** 62],
    "floats": lambda lib: [1.5, 2.25],
    "numpy_float32s": lambda lib: [np.float32(1.5), np.float32(2)],
    "numpy_float32_then_float": lambda lib: [np.float32(1.5), 2.5],
    "numpy_int32s": lambda lib: [np.int32(1), np.int32(2)],
    "numpy_int32_then_int": lambda lib: [np.int32(3), 2 ** 40],
    "numpy_int64_then_float64": lambda lib: [np.int64(1), np.float64(2.5)],
    "numpy_int32_then_float32": lambda lib: [np.int32(1), np.float32(2.5)],
    "numpy_bools": lambda lib: [np.bool_(True), np.bool_(False)],
    "numpy_float64_then_int": lambda lib: [np.float64(1.5), 2],
    "numpy_0d_arrays": lambda lib: [np.array(1.5, np.float32), np.array(2.5, np.float32)],
    "numpy_arrays_int32_float64": lambda lib: [np.array([1], np.int32), np.array([2.5])],
    "numpy_arrays_bool_int64": lambda lib: [np.array([True, False]), np.array([2, 3])],
    "tensors_int64_float32": lambda lib: [tensor_of(lib, [1], "int64"),
                                          tensor_of(lib, [2.5], "float32")],
    "tensors_float32_int64": lambda lib: [tensor_of(lib, [2.5], "float32"),
                                          tensor_of(lib, [1], "int64")],
    "tensors_bool_int64": lambda lib: [tensor_of(lib, [True], "bool"),
                                       tensor_of(lib, [2], "int64")],
    "tensors_float32_float64": lambda lib: [tensor_of(lib, [1.0], "float32"),
                                            tensor_of(lib, [2.0], "float64")],
    "tensors_int32_int64": lambda lib: [tensor_of(lib, [1], "int32"),
                                        tensor_of(lib, [2], "int64")],
    "tensors_0d_int64_float32": lambda lib: [tensor_of(lib, 1, "int64"),
                                             tensor_of(lib, 2.5, "float32")],
    "tuples": lambda lib: [(1, 2.5, True), (2.5, True, 3)],
    "dicts": lambda lib: [{"a": 1, "b": [True]}, {"a": 2.5, "b": [2]}],
    "tuples_of_tensors": lambda lib: [(tensor_of(lib, [1], "int32"), 1),
                                      (tensor_of(lib, [2.5], "float64"), 2.5)],
}


def flatten_batch(batch) -> list:
    if isinstance(batch, dict):
        return [leaf for key in sorted(batch) for leaf in flatten_batch(batch[key])]
    if isinstance(batch, (list, tuple)):
        return [leaf for item in batch for leaf in flatten_batch(item)]
    return [batch]


@pytest.mark.parametrize("name", list(BATCHES))
def test_collate_promotes_over_the_batch_as_torch_does(name, torch):
    ours = flatten_batch(collate(BATCHES[name](edugrad)))
    theirs = flatten_batch(torch.utils.data.default_collate(BATCHES[name](torch)))
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs):
        assert isinstance(mine, edugrad.Tensor), name
        assert mine.shape == tuple(reference.shape), name
        assert mine.dtype.name == str(reference.dtype).replace("torch.", ""), name
        assert mine.tolist() == reference.tolist(), name


@pytest.mark.parametrize("batch, dtype, values", [
    ([1, 2.5], edugrad.float32, [1.0, 2.5]),       # was int64 [1, 2]: the first sample's dtype
    ([True, 2], edugrad.int64, [1, 2]),            # was bool [True, True]
    ([2, True, 2.5], edugrad.float32, [2.0, 1.0, 2.5]),
    ([2.5, 1], edugrad.float64, [2.5, 1.0]),       # a float first: float64, as PyTorch
    ([np.int32(1), 7], edugrad.int64, [1, 7]),
])
def test_collate_of_mixed_numbers_by_hand(batch, dtype, values):
    result = collate(batch)
    assert result.shape == (len(batch),) and result.dtype is dtype and result.tolist() == values


def test_a_loader_of_mixed_numbers_keeps_every_value():
    class Mixed(Dataset):
        def __getitem__(self, i):
            return [1, 2.5, True, 4][i]

        def __len__(self):
            return 4

    (batch,) = list(DataLoader(Mixed(), batch_size=4))
    assert batch.dtype is edugrad.float32 and batch.tolist() == [1.0, 2.5, 1.0, 4.0]


@pytest.mark.parametrize("batch, match", [
    ([edugrad.ones(2), 1.5], "sample 1 is a float, but sample 0 is a tensor"),
    ([1, "a"], "sample 1 is a str, but sample 0 is a number"),
    ([1, None], "sample 1 is a NoneType, but sample 0 is a number"),
    ([1.5, edugrad.tensor(2)], "sample 1 is a Tensor, but sample 0 is a number"),
])
def test_a_batch_that_mixes_kinds_is_a_clear_type_error(batch, match):
    with pytest.raises(TypeError, match=match):
        collate(batch)
