"""The backend interface, and the registry that maps a device name to a backend.

Layer: primitives (bottom). Imports edugrad.ops and edugrad.dtypes only.

A backend is one class with one method per primitive of `edugrad/ops.py` (the method name is
the primitive's name in lower case). A buffer is whatever the backend likes, as long as it has
a `.shape` tuple. Methods this base class leaves unimplemented raise a NotImplementedError that
names the primitive and where its spec is; accelerated primitives a backend does not override
are simply absent, and `TensorData` composes them from the required ones.

Devices: "cpu" is NumPy, "cuda" / "cuda:N" is CuPy, any other name is a backend registered with
`register_backend(name, cls)` or through the `edugrad.backends` entry-point group.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from edugrad.devices import device as Device
from edugrad.ops import ACCELERATED, Op


def _not_implemented(op: Op):
    def method(self, *args, **kwargs):
        raise NotImplementedError(
            f"not implemented yet: {op.name} ({op.kind.value}) in {type(self).__name__} "
            f"- see edugrad/ops.py, Op.{op.name}"
        )

    method.__name__ = op.method
    method.__doc__ = op.spec
    return method


class Backend:
    """Base class of every backend. Subclass it and override one method per primitive.

    >>> class MyBackend(Backend):
    ...     name = "mine"
    ...     def add(self, x, y): ...
    """

    name = "abstract"
    # True when the elementwise methods (ADD ... WHERE) also take operands of different shapes
    # and broadcast them as NumPy does. Only edugrad.jit uses it: a replay then hands them a
    # small operand as it is, without the EXPAND the layer above made (one call fewer).
    broadcasts = False

    def __init__(self, device: str | None = None) -> None:
        self.device = Device(device or self.name)  # a str with .type and .index
        cls = type(self)
        # an accelerated primitive is offered when the subclass overrides its method
        self.accelerated = frozenset(
            op for op in ACCELERATED if getattr(cls, op.method) is not getattr(Backend, op.method)
        )

    def has(self, op: Op) -> bool:
        """True when this backend implements the accelerated primitive `op` itself."""
        return op in self.accelerated

    def seed(self, seed: int) -> None:
        """Reset the generator behind RAND so that runs repeat."""
        raise NotImplementedError(f"not implemented yet: seed in {type(self).__name__}")

    def get_num_threads(self) -> int | None:
        """The threads this backend's library uses for one op; None: it runs in the caller's."""
        return None

    def set_num_threads(self, count: int) -> bool:
        """Set that thread count; returns whether this backend could (edugrad.set_num_threads)."""
        return False

    def synchronize(self) -> None:
        """Wait for queued work to finish (asynchronous devices); a no-op elsewhere."""

    def writer(self, op: Op):
        """Optional, for edugrad.jit's memory planning: the elementwise primitive `op` (NEG,
        EXP, LOG, SIN, SQRT, ADD, SUB, MUL, DIV, MAXIMUM or TANH) as a function (*args, out)
        that writes op(*args) into `out`, a buffer of the result's shape and dtype whose
        values are no longer needed, and returns it. A backend that offers it also promises
        that these ops' methods, and MATMUL's, WHERE's, ERF's, SIGMOID's, GELU's and
        GELU_GRAD's, return a new buffer every time (never an input or a view of one), so a
        result nothing else reads can be written over. None (the default): a replay calls op's
        method, which makes a new buffer."""
        return None

    def graph(self, run, inputs: list, feedback: dict):
        """Optional, for edugrad.jit: record the device work of `run(inputs) -> outputs` (a
        list of buffers in, a list out, calling only this backend's methods) once, as one graph
        the device replays without Python (a CUDA graph). Returns `launch(inputs) -> outputs`:
        it copies `inputs` into the buffers the graph reads where they differ, replays, and
        returns fresh copies of the outputs, except that output j for j in `feedback` has
        been copied into the graph's input feedback[j] and is returned as that buffer (a
        parameter the step updates stays in one place). None: no graphs here, edugrad.jit
        replays call by call, as on the CPU."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} device={str(self.device)!r}>"


for _op in Op:
    setattr(Backend, _op.method, _not_implemented(_op))


# ---- the registry ------------------------------------------------------------------------------

# name -> "module:Class", imported on first use so that importing edugrad imports no CuPy
_BUILTIN = {
    "cpu": "edugrad.backends.numpy_backend:NumpyBackend",
    "cuda": "edugrad.backends.cupy_backend:CupyBackend",
    "python": "edugrad.backends.python_backend:PythonBackend",
}
_registered: dict[str, object] = {}  # name -> Backend subclass (or "module:Class")
_instances: dict[str, Backend] = {}  # canonical device string -> the one backend for it
_default_device: list[str | None] = [None]  # None until first asked: see default_device()
ENV_DEFAULT_DEVICE = "EDUGRAD_DEVICE"


def register_backend(name: str, backend_class) -> None:
    """Make `device=name` use `backend_class` (a Backend subclass or "module:Class")."""
    if name in ("cpu", "cuda") or name.startswith("cuda:"):
        raise ValueError(f"register_backend: {name!r} is a built-in device name")
    _registered[name] = backend_class
    _instances.pop(name, None)


def canonical_device(device) -> str:
    """"cuda" -> "cuda:0", as an edugrad.device; anything with a str() works (a torch.device
    too)."""
    name = str(device) if device is not None else default_device()
    return Device("cuda:0" if name == "cuda" else name)


def _load(spec):
    if not isinstance(spec, str):
        return spec
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)


def _entry_point(name: str):
    for entry in entry_points(group="edugrad.backends"):
        if entry.name == name:
            return entry.load()
    return None


def get_backend(device=None) -> Backend:
    """The backend instance for a device name, created (and imported) on first use."""
    name = canonical_device(device)
    backend = _instances.get(name)
    if backend is not None:
        return backend
    base = "cuda" if name.startswith("cuda:") else name
    cls = _registered.get(base) or _BUILTIN.get(base)
    cls = _load(cls) if cls is not None else _entry_point(base)
    if cls is None:
        known = sorted(set(_BUILTIN) | set(_registered))
        raise ValueError(
            f"unknown device {str(name)!r}: known devices are {', '.join(known)} (and cuda:N); "
            "register another with edugrad.register_backend(name, BackendClass)"
        )
    backend = cls(name)
    if _seed[0] is not None:
        try:
            backend.seed(_seed[0])
        except NotImplementedError:  # a learner's backend before RAND is written
            pass
    _instances[name] = backend
    return backend


def loaded_backends() -> list[Backend]:
    return list(_instances.values())


_seed: list[int | None] = [None]


def manual_seed(seed: int) -> None:
    """Seed every backend's generator, those made later included."""
    _seed[0] = int(seed)
    for backend in _instances.values():
        backend.seed(int(seed))


def default_device() -> str:
    """The device factories use when given none: set_default_device(), else $EDUGRAD_DEVICE,
    else "cpu". The environment is read here, once."""
    if _default_device[0] is None:
        _default_device[0] = canonical_device(os.environ.get(ENV_DEFAULT_DEVICE) or "cpu")
    return _default_device[0]


def set_default_device(device) -> None:
    _default_device[0] = canonical_device(device)
