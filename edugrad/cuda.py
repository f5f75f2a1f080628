"""edugrad.cuda: PyTorch's torch.cuda probes, answered by the CuPy backend.

Layer: top. Imports edugrad.backend and edugrad.amp; CuPy only inside the probe, and only when
asked (importing edugrad never imports CuPy).

Half of the PyTorch programs learners bring start with
`device = "cuda" if torch.cuda.is_available() else "cpu"`; here "cuda" means the CuPy backend,
so is_available() is true only when CuPy imports and sees a GPU.
"""

from __future__ import annotations

from edugrad import amp  # noqa: F401  (torch.cuda.amp.GradScaler, the older spelling)
from edugrad.backend import get_backend, loaded_backends

_count: list[int | None] = [None]


def device_count() -> int:
    """How many GPUs CuPy sees (0 without CuPy or a driver); asked once, then remembered."""
    if _count[0] is None:
        try:
            import cupy  # noqa: PLC0415  (optional: only when someone asks about GPUs)

            _count[0] = int(cupy.cuda.runtime.getDeviceCount())
        except Exception:  # no CuPy, no driver, or a wheel for another CUDA version
            _count[0] = 0
    return _count[0]


def is_available() -> bool:
    return device_count() > 0


def current_device() -> int:
    return 0


def get_device_name(device=None) -> str:
    _require("get_device_name")
    import cupy  # noqa: PLC0415

    index = 0 if device is None else int(str(device).rpartition(":")[2] or 0)
    name = cupy.cuda.runtime.getDeviceProperties(index)["name"]
    return name.decode() if isinstance(name, bytes) else name


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """False: edugrad computes in float32 or float64 (see the README's dtypes)."""
    return False


def synchronize(device=None) -> None:
    """Wait until the GPU has finished the work queued on it (timing needs this)."""
    _require("synchronize")
    get_backend(device or "cuda").synchronize()


def manual_seed(seed: int) -> None:
    """Seed the generator of every cuda device in use (a no-op without a GPU, as PyTorch)."""
    for backend in loaded_backends():
        if str(backend.device).startswith("cuda"):
            backend.seed(int(seed))


manual_seed_all = manual_seed


def empty_cache() -> None:
    """Give CuPy's cached, unused GPU memory back to the driver."""
    if is_available():
        import cupy  # noqa: PLC0415

        cupy.get_default_memory_pool().free_all_blocks()


def _require(what: str) -> None:
    if not is_available():
        raise RuntimeError(f"cuda.{what}: no CUDA GPU is available to edugrad (CuPy missing or "
                           "no device); python -m edugrad.doctor says why")
