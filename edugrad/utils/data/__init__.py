"""edugrad.utils.data: datasets, samplers and the DataLoader, at PyTorch's module paths.

Layer: nn/optim/utils (top).

    dataset.py      Dataset, IterableDataset, TensorDataset, Subset, ConcatDataset, random_split
    sampler.py      Sampler, SequentialSampler, RandomSampler, SubsetRandomSampler,
                    WeightedRandomSampler, BatchSampler
    dataloader.py   DataLoader (num_workers > 0: worker processes), collate / default_collate,
                    get_worker_info
"""

from edugrad.utils.data.dataloader import (
    DataLoader, collate, default_collate, get_worker_info,
)
from edugrad.utils.data.dataset import (
    ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split,
)
from edugrad.utils.data.sampler import (
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = ["DataLoader", "collate", "default_collate", "get_worker_info", "Dataset",
           "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "random_split",
           "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler"]
