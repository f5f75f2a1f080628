"""Concrete backends, installed as `edugrad.backends` (see pyproject.toml's package-dir).

    numpy_backend.py   device "cpu"            NumPy
    cupy_backend.py    device "cuda", "cuda:N" CuPy: the NumPy backend with xp = cupy
    python_backend.py  device "python"         pure Python: flat storage, shape and strides
    template.py        the learner's exercise: every primitive a stub
"""

if __name__ == "backends":  # imported from the repository root as a top-level package
    raise ImportError("import edugrad.backends, not backends")
