"""edugrad.utils: helpers around training.

    data    datasets, samplers, DataLoader (edugrad/utils/data/, PyTorch's module paths)
"""

from edugrad.utils import data

__all__ = ["data"]
