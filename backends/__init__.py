"""Concrete backends, installed as `edugrad.backends` (see pyproject.toml's package-dir).

    numpy_backend.py   device "cpu"            NumPy
    cupy_backend.py    device "cuda", "cuda:N" CuPy: the NumPy backend with xp = cupy
    python_backend.py  device "python"         pure Python: flat storage, shape and strides
    template.py        the learner's exercise: every primitive a stub
"""

if __name__ == "backends":  # imported from the repository root as a top-level package
    raise ImportError("import edugrad.backends, not backends")


# PyTorch programs also read and set flags under torch.backends; edugrad keeps the same names
# here, honestly: no MPS backend, and the TF32/cuDNN switches are recorded but change nothing
# (CuPy's matmul runs in the tensors' own precision).
class _Flags:
    def __init__(self, **flags) -> None:
        self.__dict__.update(flags)

    def __repr__(self) -> str:
        return f"flags({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


mps = _Flags(is_available=lambda: False, is_built=lambda: False)
cuda = _Flags(matmul=_Flags(allow_tf32=False, allow_fp16_reduced_precision_reduction=True),
              is_built=lambda: True)
cudnn = _Flags(enabled=True, benchmark=False, deterministic=False, allow_tf32=True,
               is_available=lambda: False)
