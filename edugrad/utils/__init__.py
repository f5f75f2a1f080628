"""edugrad.utils: helpers around training.

    data    Dataset, TensorDataset, DataLoader (edugrad/utils/data.py)
"""

from edugrad.utils import data

__all__ = ["data"]
