"""Concrete backends, installed as `edugrad.backends` (see pyproject.toml's package-dir).

    numpy_backend.py   device "cpu"            NumPy
    cupy_backend.py    device "cuda", "cuda:N" CuPy: the NumPy backend with xp = cupy
    python_backend.py  device "python"         pure Python: flat storage, shape and strides
    template.py        the learner's exercise: every primitive a stub
"""

import sys
import types

if __name__ == "backends":  # imported from the repository root as a top-level package
    raise ImportError("import edugrad.backends, not backends")


# PyTorch programs also read and set flags under torch.backends; edugrad keeps the same names
# here, honestly: no MPS backend, and the TF32/cuDNN switches are recorded but change nothing
# (CuPy's matmul runs in the tensors' own precision). Programs also write
# `import torch.backends.cudnn as cudnn`, which needs a module, so each flag set is a module
# object entered in sys.modules under its dotted name (as torch.backends.cudnn does itself).

class _Flags(types.ModuleType):
    def __init__(self, name: str, **flags) -> None:
        super().__init__(name)
        self.__dict__.update(flags)

    def __repr__(self) -> str:
        flags = {k: v for k, v in vars(self).items() if not k.startswith("__")}
        return f"flags({', '.join(f'{k}={v!r}' for k, v in flags.items())})"


mps = _Flags(f"{__name__}.mps", is_available=lambda: False, is_built=lambda: False)
cuda = _Flags(f"{__name__}.cuda", is_built=lambda: True,
              matmul=_Flags(f"{__name__}.cuda.matmul", allow_tf32=False,
                            allow_fp16_reduced_precision_reduction=True))
cudnn = _Flags(f"{__name__}.cudnn", enabled=True, benchmark=False, deterministic=False,
               allow_tf32=True, is_available=lambda: False)
for _module in (mps, cuda, cuda.matmul, cudnn):
    sys.modules[_module.__name__] = _module
