"""Process-wide switches PyTorch programs reach for: inference_mode, set_num_threads and
get_num_threads.

Layer: Tensor (top). Imports edugrad.autograd and edugrad.backend; no NumPy.

What the thread count controls, honestly: edugrad runs every op in the thread that calls it;
the only parallelism on "cpu" is inside NumPy, where the BLAS library (OpenBLAS in NumPy's
wheels) runs a matmul on several threads. So set_num_threads(n) asks each loaded backend to
set its library's thread count (the NumPy backend calls OpenBLAS's own
`openblas_set_num_threads` through ctypes) and get_num_threads() reports what the "cpu"
backend's library says. Where no backend can set threads (a NumPy built on another BLAS, the
pure-Python backend), set_num_threads warns and changes nothing; PyTorch's inter-op threads
have no counterpart here. The environment variables OMP_NUM_THREADS / OPENBLAS_NUM_THREADS,
set before Python starts, work everywhere.
"""

from __future__ import annotations

import warnings

from edugrad.autograd import GradMode
from edugrad.backend import get_backend, loaded_backends


class inference_mode:
    """torch.inference_mode: no graph is recorded inside it, as with no_grad.

    PyTorch also marks tensors made inside as "inference tensors" that can never join a graph
    later, which lets it skip version counters; edugrad has no such tensors, so this is
    no_grad by another name. `inference_mode(False)` changes nothing. Context and decorator:

    >>> with edugrad.inference_mode():
    ...     y = model(x)
    >>> @edugrad.inference_mode()
    ... def predict(x): ...
    """

    def __new__(cls, mode=True):
        if callable(mode):  # @inference_mode, without the call
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        self.mode = bool(mode)

    def __enter__(self) -> None:
        self.previous = GradMode.enabled
        if self.mode:
            GradMode.enabled = False

    def __exit__(self, *exc) -> None:
        GradMode.enabled = self.previous

    def __call__(self, function):
        mode = self.mode

        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return function(*args, **kwargs)

        wrapper.__name__, wrapper.__doc__ = function.__name__, function.__doc__
        return wrapper


def is_inference_mode_enabled() -> bool:
    """True inside inference_mode (or no_grad: edugrad does not tell them apart)."""
    return not GradMode.enabled


def set_num_threads(n: int) -> None:
    """Set the threads the backends' libraries use (see the module docstring for which)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    backends = loaded_backends() or [get_backend("cpu")]
    if not any(backend.set_num_threads(n) for backend in backends):
        warnings.warn("set_num_threads: no loaded backend can set its thread count (NumPy's "
                      "BLAS is not OpenBLAS?); set OMP_NUM_THREADS before starting Python",
                      RuntimeWarning, stacklevel=2)


def get_num_threads() -> int:
    """The threads the "cpu" backend's library uses for a matmul; 1 where it cannot say."""
    count = get_backend("cpu").get_num_threads()
    return 1 if count is None else count
