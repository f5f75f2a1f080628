"""The CuPy backend: devices "cuda" and "cuda:N". The NumPy backend with `xp = cupy`.

Layer: backends. Imports edugrad.backend, edugrad.dtypes, the NumPy backend and CuPy (only when
a "cuda" device is first used: importing edugrad never imports CuPy).

TANH is cupy.tanh through `xp`; ERF and SIGMOID are cupyx.scipy.special's kernels; GELU and
GELU_GRAD are one ElementwiseKernel each, below (cupyx has no GELU).
Everything stays on the GPU: the only device-to-host copy is `to_host`, which TensorData calls
for `.numpy()`, `.item()`, `.tolist()` and printing, never inside an op.
"""

from __future__ import annotations

import functools

from edugrad.backends.numpy_backend import NumpyBackend

try:
    import cupy
    import cupyx.scipy.special
except ImportError as error:  # raised when a "cuda" device is asked for, not at edugrad import
    raise ImportError(
        "device 'cuda' needs CuPy: pip install 'edugrad[cuda]' (a CuPy wheel matching your "
        "CUDA version; `python -m edugrad.doctor` tells which)"
    ) from error


# GELU and its gradient, one kernel each: CUDA's erf and exp in float for float32 and in double
# for float64 (overloads picked by the kernel's type T). The formulas of Op.GELU and
# Op.GELU_GRAD; the GPU computes them in registers, so the order of operations is the spec's
# without a buffer per step.
_NORMAL = r"""
__device__ float edugrad_cdf(float x) { return erff(x * 0.7071067811865476f) * 0.5f + 0.5f; }
__device__ double edugrad_cdf(double x) { return erf(x * 0.7071067811865476) * 0.5 + 0.5; }
__device__ float edugrad_pdf(float x) { return expf(x * x * -0.5f) * 0.3989422804014327f; }
__device__ double edugrad_pdf(double x) { return exp(x * x * -0.5) * 0.3989422804014327; }
"""
_gelu = cupy.ElementwiseKernel("T x", "T y", "y = x * edugrad_cdf(x)", "edugrad_gelu",
                               preamble=_NORMAL)
_gelu_grad = cupy.ElementwiseKernel(
    "T x, T g", "T y", "y = g * (edugrad_cdf(x) + x * edugrad_pdf(x))", "edugrad_gelu_grad",
    preamble=_NORMAL)


class CupyBackend(NumpyBackend):
    name = "cuda"
    xp = cupy

    def __init__(self, device: str | None = None) -> None:
        device = device or "cuda:0"
        self.index = int(device.partition(":")[2] or 0)
        if not 0 <= self.index < cupy.cuda.runtime.getDeviceCount():
            raise RuntimeError(f"device {device!r}: there are "
                               f"{cupy.cuda.runtime.getDeviceCount()} CUDA devices")
        self.gpu = cupy.cuda.Device(self.index)
        with self.gpu:
            super().__init__(device)
        if self.index != 0:  # run every primitive with this GPU current
            for name in dir(NumpyBackend):
                method = getattr(self, name)
                if not name.startswith("_") and callable(method) and name != "has":
                    setattr(self, name, self._on_device(method))

    def _on_device(self, method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            with self.gpu:
                return method(*args, **kwargs)

        return wrapper

    def from_host(self, array):
        return cupy.asarray(array)

    def to_host(self, x):
        return cupy.asnumpy(x)

    def _strided(self, x, shape, strides):
        return cupy.lib.stride_tricks.as_strided(x, shape, strides)

    def index_add(self, shape, axis, index, src):
        out = cupy.zeros(shape, dtype=src.dtype)
        moved = cupy.moveaxis(out, axis, 0)
        src = cupy.moveaxis(src, tuple(range(axis, axis + index.ndim)), tuple(range(index.ndim)))
        cupy.add.at(moved, index, src)  # unbuffered: repeated indices add up
        return out

    # cupyx's special functions are one kernel each; they compute float16 in float32 and
    # return float32, so the result is cast back (a no-op for float32 and float64)
    def erf(self, x):
        return cupyx.scipy.special.erf(x).astype(x.dtype, copy=False)

    def sigmoid(self, x):  # 1 / (1 + exp(-x)) in one kernel; the GPU raises no overflow warning
        return cupyx.scipy.special.expit(x).astype(x.dtype, copy=False)

    def gelu(self, x):
        if x.dtype == cupy.float16:  # computed in float32, as cupyx computes ERF
            return _gelu(x.astype(cupy.float32)).astype(cupy.float16)
        return _gelu(x)

    def gelu_grad(self, x, g):
        if x.dtype == cupy.float16:
            return _gelu_grad(x.astype(cupy.float32), g.astype(cupy.float32)).astype(cupy.float16)
        return _gelu_grad(x, g)

    def synchronize(self) -> None:
        self.gpu.synchronize()

    def graph(self, run, inputs, feedback):
        """edugrad.jit's replay as one CUDA graph (CuPy's stream capture): the kernels that
        run(inputs) launches are recorded once, with the addresses of their buffers, and each
        launch replays them all in one call, with no Python per kernel.

        The graph reads its inputs from copies made here (`static`): a launch first copies
        what it is given into them where it is not already there (the batch; a parameter
        someone replaced). Output j in `feedback` (a parameter, an optimizer's average) is
        copied back into its input at the end of the graph, so it lives in one place from
        step to step; the other outputs come back as fresh copies, as eager results would.
        Every block of memory allocated during the capture (outputs, temporaries, CuPy's own
        scratch) is held for the graph's lifetime and never returned to the memory pool: the
        graph writes into those addresses on every launch, so no other array may get them.
        A primitive that syncs with the host inside the capture raises, and edugrad.jit falls
        back to replaying call by call."""
        static = [buffer.copy() for buffer in inputs]
        get_allocator = getattr(cupy.cuda, "get_allocator", None)  # CuPy 10 and later
        allocator = get_allocator() if get_allocator else cupy.get_default_memory_pool().malloc
        held = []

        def holding_malloc(size):
            memory = allocator(size)
            held.append(memory)
            return memory

        stream = cupy.cuda.Stream(non_blocking=True)  # the legacy default stream can't capture
        cupy.cuda.set_allocator(holding_malloc)
        try:
            with stream:
                stream.begin_capture()
                try:
                    outputs = run(static)
                    for j, i in feedback.items():
                        if outputs[j] is not static[i]:
                            static[i][...] = outputs[j]
                finally:
                    captured = stream.end_capture()
        finally:
            cupy.cuda.set_allocator(allocator)

        def launch(given):
            for buffer, value in zip(static, given):
                if value is not buffer:
                    buffer[...] = value
            captured.launch(stream=cupy.cuda.get_current_stream())
            return [static[feedback[j]] if j in feedback else out.copy()
                    for j, out in enumerate(outputs)]

        launch.held = (held, stream)  # the graph's memory and stream live as long as it does
        return launch
