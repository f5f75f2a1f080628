"""edugrad.accelerator: PyTorch's device-agnostic probe (torch.accelerator).

Layer: top. Imports edugrad.cuda and edugrad.devices.
"""

from __future__ import annotations

from edugrad import cuda
from edugrad.devices import device


def is_available() -> bool:
    return cuda.is_available()


def current_accelerator():
    """device(type='cuda') when a GPU is available to edugrad, else None."""
    return device("cuda") if cuda.is_available() else None


def device_count() -> int:
    return cuda.device_count()
