"""The NumPy backend: device "cpu". One short method per primitive of edugrad/ops.py.

Layer: backends. Imports edugrad.backend, edugrad.dtypes and NumPy (and ctypes, to tune
glibc's malloc when asked to: see keep_freed_memory_for_reuse).

NumPy reports floating-point edge cases (log(0), sqrt(-1), 0/0, exp(1000), nan cast to an int)
as RuntimeWarnings. The primitive specs say these give inf or nan "without raising", and
PyTorch prints nothing, so the methods that meet them in ordinary use (EXP, LOG, SQRT, DIV,
CAST, ERF, SIGMOID, GELU, GELU_GRAD) run under `np.errstate(all="ignore")`: the decorator
`@quiet`, which sets NumPy's error state for that call only (per thread and per context, never
process-wide). It costs about 0.7 us a call, so the hot ADD, SUB, MUL, SUM, MATMUL, SIN and
TANH stay unwrapped: they warn only when given an inf (inf - inf, inf * 0, sin(inf)) or on
overflow. The CuPy backend inherits the methods; GPU kernels raise no such warnings, and
NumPy's error state changes nothing there.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import as_strided

from edugrad import dtypes
from edugrad.backend import Backend
from edugrad.ops import ERF_FLOAT32, ERF_FLOAT64

quiet = np.errstate(all="ignore")  # a decorator: each call gets its own quiet error state

class _NativeTypes(dict):
    """edugrad dtype -> NumPy type; a dtype NumPy lacks (bfloat16) is a clear error."""

    def __missing__(self, dtype):
        raise TypeError(f"{dtype.name}: CuPy has no {dtype.name} type, so the cuda backend "
                        "cannot hold it (the cpu one emulates it); use float16 for half "
                        "precision, or float32 (see edugrad/dtypes.py)")


# ---- bfloat16, emulated: float32 storage, every result rounded to bfloat16 --------------------
class BFloat16Array(np.ndarray):
    """A bfloat16 buffer of the cpu backend. NumPy has no bfloat16, so the values are stored
    as float32 numbers that bfloat16 can hold (its 8 significant bits; float32's exponent).
    NumPy computes each ufunc on them in float32 (ADD, MUL, EXP, SUM, MATMUL, ...), and
    __array_ufunc__ rounds the float32 result to the nearest bfloat16: one rounding per
    primitive, as PyTorch's CPU kernels compute bfloat16 in float32 and round each op's
    result. Views (reshape, transpose, slices) keep the class; the backend methods that build
    new arrays (where, expand, pad, unfold, fold, index_add, cast) put it back on."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = tuple(np.asarray(x) if isinstance(x, BFloat16Array) else x for x in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(np.asarray(x) for x in kwargs["out"])
        result = getattr(ufunc, method)(*plain, **kwargs)
        if method == "at":  # in place (index_add), rounded by its caller
            return None
        return to_bfloat16(result) if np.asarray(result).dtype == np.float32 else result


def to_bfloat16(values) -> BFloat16Array:
    """float32 -> the nearest bfloat16 (ties to even), as a BFloat16Array: add half of the
    16 bits that go (less one, plus the last kept bit, for ties to even), then cut them. NaN
    stays NaN (the carry could turn a NaN with only low bits set into inf)."""
    values = np.asarray(values, dtype=np.float32)
    bits = values.view(np.uint32)
    kept = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & \
        np.uint32(0xFFFF0000)
    rounded = np.where(np.isnan(values), values, kept.view(np.float32))
    return np.asarray(rounded, dtype=np.float32).view(BFloat16Array)


NATIVE = _NativeTypes({
    dtypes.bool_: np.bool_,
    dtypes.int32: np.int32,
    dtypes.int64: np.int64,
    dtypes.float16: np.float16,
    dtypes.float32: np.float32,
    dtypes.float64: np.float64,
})


# the switch: "1" in the environment when the first "cpu" backend is made turns on
# keep_freed_memory_for_reuse(); read there, once. Off by default.
KEEP_FREED_MEMORY = "EDUGRAD_KEEP_FREED_MEMORY"


def keep_freed_memory_for_reuse() -> bool:
    """Ask glibc's malloc to keep freed memory for the next allocation instead of handing it
    back to the operating system. Returns whether it was done.

    Every training step allocates and frees the same large temporaries. By default glibc
    returns big freed blocks to the OS (munmap, or trimming the heap top), so the next step
    gets fresh pages that the OS must map and zero: page faults. On a small CNN that costs
    more than the arithmetic (30 ms a step instead of 17). PyTorch avoids most of these
    temporaries; keeping the memory gets us the same effect.

    It changes malloc for the whole process, everything else in it included, and the process
    may keep up to about 256 MB it no longer uses at the top of its heap. A library should
    not do that unasked, so edugrad never does it by itself: call this, or set
    EDUGRAD_KEEP_FREED_MEMORY=1 before the first "cpu" tensor is made (the benchmarks and
    applications/learn_mnist.py do). Skipped off Linux/glibc and when you set glibc's own
    MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ variables.
    """
    if not sys.platform.startswith("linux"):
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, ...)
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3  # from glibc's malloc.h
    done = libc.mallopt(m_mmap_threshold, 32 * 2**20)  # 32 MiB, glibc's maximum
    done &= libc.mallopt(m_trim_threshold, 256 * 2**20)
    done &= libc.mallopt(m_top_pad, 64 * 2**20)
    return bool(done)


@functools.cache  # once: the first time a NumPy backend is made
def _keep_freed_memory_if_asked() -> None:
    if os.environ.get(KEEP_FREED_MEMORY) == "1":
        keep_freed_memory_for_reuse()


@functools.cache  # found once: the OpenBLAS NumPy loaded
def _openblas():
    """The OpenBLAS inside NumPy's wheel, through ctypes; None if not found."""
    folder = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    for name in (n for n in names if "openblas" in n):
        try:
            return ctypes.CDLL(os.path.join(folder, name))  # already loaded: the same one
        except OSError:
            continue
    return None


@functools.cache
def _openblas_threads():
    """(get, set) of OpenBLAS's thread count; None if not found."""
    library = _openblas()
    for prefix, suffix in (("scipy_openblas_", "64_"), ("scipy_openblas_", ""),
                           ("openblas_", "64_"), ("openblas_", "")):
        get = getattr(library, f"{prefix}get_num_threads{suffix}", None)
        put = getattr(library, f"{prefix}set_num_threads{suffix}", None)
        if get is not None and put is not None:
            return get, put
    return None


# OpenBLAS's spinning threads. After a matmul, OpenBLAS's worker threads wait for the next one
# by spinning, for 2^OPENBLAS_THREAD_TIMEOUT cycles (default 2^28: a tenth of a second), on
# the cores Python's own thread needs for everything else. On a machine with as many cores as
# threads they compete with it (a GPT step on 2 cores measured 125 ms in one process and 160 in
# the next); with OPENBLAS_THREAD_TIMEOUT=12 (4096 cycles) they go to sleep at once. OpenBLAS
# reads the variable when NumPy loads it, so only the environment can set it: the benchmarks
# and applications/ do, before importing NumPy. The second-core split below is used only then.
QUIET_SPIN = 16  # the largest OPENBLAS_THREAD_TIMEOUT under which the worker threads sleep soon


@functools.cache
def _idle_threads_sleep() -> bool:
    """Whether OpenBLAS's idle threads sleep soon after a matmul (OPENBLAS_THREAD_TIMEOUT at
    most QUIET_SPIN when NumPy loaded it), leaving the other cores to _in_two_halves."""
    timeout = getattr(_openblas(), "openblas_thread_timeout", None)
    return timeout is not None and 0 < int(timeout()) <= QUIET_SPIN


class NumpyBackend(Backend):
    name = "cpu"
    xp = np  # the array module; the CuPy backend swaps in cupy and keeps every method
    broadcasts = True  # x + y, np.where, ...: the elementwise methods broadcast (edugrad.jit)

    def __init__(self, device: str | None = None) -> None:
        super().__init__(device)
        self.generator = self.xp.random.default_rng()
        if self.xp is np:
            _keep_freed_memory_if_asked()

    def seed(self, seed: int) -> None:
        self.generator = self.xp.random.default_rng(seed)

    def get_num_threads(self) -> int | None:
        """OpenBLAS's threads (a matmul's); every other primitive runs in the caller's."""
        functions = _openblas_threads() if self.xp is np else None
        return None if functions is None else int(functions[0]())

    def set_num_threads(self, count: int) -> bool:
        functions = _openblas_threads() if self.xp is np else None
        if functions is not None:
            functions[1](int(count))
        return functions is not None

    def _splits(self, *arrays) -> bool:
        """Whether a primitive on `arrays` runs in two halves at once (_in_two_halves): NumPy
        arrays (not bfloat16's), big enough to pay for the hand-off, two or more threads
        allowed (edugrad.set_num_threads(1) keeps everything on one core), and OpenBLAS's
        idle threads asleep rather than spinning on the other core (_idle_threads_sleep)."""
        if self.xp is not np or sum(a.size for a in arrays) < SPLIT_SIZE:
            return False
        if not all(type(a) is np.ndarray for a in arrays) or not _idle_threads_sleep():
            return False
        threads = self.get_num_threads()
        return threads is not None and threads >= 2

    def writer(self, op):
        """For edugrad.jit: op as fn(*args, out), NumPy's ufunc with out= (a dead buffer of
        the result's shape and dtype). EXP keeps its method, which splits big arrays over two
        threads. A bfloat16 result is rounded into a new buffer (BFloat16Array's ufunc hook)."""
        name = _UFUNCS.get(op.method)
        if name is None:
            return None
        ufunc = getattr(self.xp, name)

        def write(*args):
            return ufunc(*args[:-1], out=args[-1])

        return quiet(write) if op.method in ("log", "sqrt", "div") else write

    # ---- load ------------------------------------------------------------------------------
    def full(self, shape, value, dtype):
        if dtype is dtypes.bfloat16 and self.xp is np:
            return to_bfloat16(np.full(shape, value, dtype=np.float32))
        return self.xp.full(shape, value, dtype=NATIVE[dtype])

    def rand(self, shape, dtype):
        if dtype is dtypes.float16:  # drawn as float32 (NumPy draws no half), then cut to
            # k / 2**11, exact in float16 and below 1 (plain rounding could reach 1.0)
            draws = self.generator.random(shape, dtype=self.xp.float32)
            return (self.xp.floor(draws * 2**11) / 2**11).astype(self.xp.float16)
        if dtype is dtypes.bfloat16 and self.xp is np:  # k / 2**8, as PyTorch's bfloat16 rand
            return to_bfloat16(np.floor(self.generator.random(shape, dtype=np.float32) * 2**8)
                               / 2**8)
        return self.generator.random(shape, dtype=NATIVE[dtype])

    def from_host(self, array):
        return self.xp.array(array, copy=True)

    def to_host(self, x):
        return np.asarray(x)  # a bfloat16 buffer's float32 values (exact), as a plain array

    # ---- unary -----------------------------------------------------------------------------
    def neg(self, x):
        return -x

    @quiet
    def exp(self, x):
        if x.size >= SPLIT_SIZE and x.flags.c_contiguous and self._splits(x):
            flat, out = x.reshape(-1), self.xp.empty(x.shape, x.dtype)
            _in_two_halves(lambda start, stop: self.xp.exp(flat[start:stop],
                                                           out=out.reshape(-1)[start:stop]),
                           flat.size)
            return out
        return self.xp.exp(x)

    @quiet
    def log(self, x):
        return self.xp.log(x)

    def sin(self, x):  # warns only for +-inf, which no ordinary input holds: left unwrapped
        return self.xp.sin(x)

    @quiet
    def erf(self, x):
        """The reference rational functions of ops.py, in the same order of operations as
        TensorData's fallback (so the results are the same), but over cache-sized blocks: each
        block makes its ~25 passes while it sits in the CPU cache, not the whole array."""
        return self._blockwise(_erf_block, x)

    @quiet
    def gelu(self, x):
        """x * (erf(x * (1/sqrt 2)) * 0.5 + 0.5): TensorData's fallback, the same operations in
        the same order (so the same float32 and float64 results), blockwise as ERF and in
        place: the five passes of the composition each run on a block in the cache."""
        return self._blockwise(_gelu_block, x)

    @quiet
    def gelu_grad(self, x, g):
        """g * (Phi(x) + x phi(x)), blockwise, as TensorData's fallback computes it."""
        return self._blockwise(_gelu_grad_block, x, g)

    def _blockwise(self, block, x, *others):
        """block(x part, *others' parts, out part) over ERF_BLOCK elements at a time of flat
        contiguous copies (a view where the input is contiguous already), in two halves at
        once where _splits says so. An elementwise result: the blocks' are the whole one's. A
        bfloat16 buffer is computed in float32 (its values are float32's) and rounded once."""
        flats = [self.xp.ascontiguousarray(a).reshape(-1) for a in (x, *others)]
        out = self.xp.empty_like(flats[0])

        def blocks(start, stop):
            for begin in range(start, stop, ERF_BLOCK):
                end = min(begin + ERF_BLOCK, stop)
                block(*(flat[begin:end] for flat in flats), out[begin:end])

        if self._splits(flats[0]):
            _in_two_halves(blocks, out.size)
        else:
            blocks(0, out.size)
        out = out.reshape(x.shape)
        return to_bfloat16(out) if type(x) is BFloat16Array else out

    def tanh(self, x):  # saturates at +-1: nothing to warn about
        return self.xp.tanh(x)

    @quiet
    def sigmoid(self, x):
        # the plain formula is the stable one: e**-x overflows to inf only where the result
        # is 0 anyway (x < -88 in float32), and keeps ~2 ulp relative accuracy for x << 0,
        # where a where() over e**-|x| would cost four more passes
        return 1 / (1 + self.xp.exp(-x))

    @quiet
    def sqrt(self, x):
        return self.xp.sqrt(x)

    @quiet
    def cast(self, x, dtype):
        if dtype is dtypes.bfloat16 and self.xp is np:  # double -> float -> bfloat16: PyTorch's
            return to_bfloat16(np.asarray(x).astype(np.float32))  # double rounding too
        if type(x) is BFloat16Array:
            return np.asarray(x).astype(NATIVE[dtype])
        return x.astype(NATIVE[dtype])

    # ---- binary ----------------------------------------------------------------------------
    def add(self, x, y):
        return x + y

    def sub(self, x, y):
        return x - y

    def mul(self, x, y):
        return x * y

    @quiet
    def div(self, x, y):
        return x / y

    def maximum(self, x, y):
        return self.xp.maximum(x, y)

    def cmplt(self, x, y):
        return x < y

    def cmpeq(self, x, y):
        return x == y

    def where(self, cond, x, y):
        out = self.xp.where(cond, x, y)
        return out.view(BFloat16Array) if type(x) is BFloat16Array else out

    # ---- reduce ----------------------------------------------------------------------------
    def sum(self, x, axes):
        if self.xp is np and x.dtype in _BLAS_FLOATS and x.flags.c_contiguous and x.size:
            product = _sum_as_product(x, axes)
            if product is not None:
                return product
        return x.sum(axis=axes, keepdims=True, dtype=x.dtype)  # NumPy would widen ints

    def max(self, x, axes):
        if self.xp is np and type(x) is np.ndarray and _short_rows(x, axes):
            return _max_of_short_rows(x)
        return x.max(axis=axes, keepdims=True)

    # ---- movement --------------------------------------------------------------------------
    def reshape(self, x, shape):
        return x.reshape(shape)

    def permute(self, x, order):
        return x.transpose(order)

    def expand(self, x, shape):
        if type(x) is BFloat16Array:
            return np.broadcast_to(x, shape, subok=True)
        return self.xp.broadcast_to(x, shape)

    def pad(self, x, padding, value):
        # np.pad's result with less Python: copy x into the middle of an empty buffer, then
        # fill only the border of each padded dim (np.pad is general and slow on small arrays)
        shape = tuple(size + before + after for size, (before, after) in zip(x.shape, padding))
        out = self.xp.empty(shape, dtype=x.dtype)
        out[tuple(slice(before, before + size) for size, (before, _) in zip(x.shape, padding))] = x
        for dim, (before, after) in enumerate(padding):
            lead = (slice(None),) * dim
            if before:
                out[lead + (slice(0, before),)] = value
            if after:
                out[lead + (slice(shape[dim] - after, shape[dim]),)] = value
        return to_bfloat16(out) if type(x) is BFloat16Array else out  # (value rounded too)

    def shrink(self, x, bounds):
        return x[tuple(slice(start, end) for start, end in bounds)]

    def flip(self, x, axes):
        return self.xp.flip(x, axes)

    # ---- accelerated -----------------------------------------------------------------------
    def matmul(self, x, y):
        if x.ndim > 2 and x.shape[:-2] == y.shape[:-2] and type(x) is type(y) is np.ndarray \
                and x.shape[-2] * x.shape[-1] * y.shape[-1] <= SMALL_GEMM:
            return self._small_products(x, y)
        return self.xp.matmul(x, y)

    def _small_products(self, x, y):
        """A batch of small matrix products (attention's heads). OpenBLAS runs each product on
        one thread and NumPy loops over the batch on one core, so two halves of the batch run
        at once where _splits allows. A y laid out column by column (k^T: a transposed view)
        is copied row by row first, a half at a time, when x has COPY_ROWS rows or more:
        OpenBLAS's kernel for a transposed right operand is the slower one at these sizes, by
        more than the copy costs from about 32 rows on (q k^T on (32, 4, 64, 32) float32: 0.53
        ms, against 0.31 ms after a 0.09 ms copy; with 16 rows the copy loses)."""
        transposed = (y.strides[-2] == y.itemsize and y.strides[-1] != y.itemsize
                      and x.shape[-2] >= COPY_ROWS)

        def product(start, stop, out=None):
            right = np.ascontiguousarray(y[start:stop]) if transposed else y[start:stop]
            return np.matmul(x[start:stop], right, out=out)

        if x.shape[0] < 2 or not self._splits(x, y):
            return product(0, x.shape[0])
        out = np.empty(x.shape[:-1] + y.shape[-1:], np.result_type(x, y))
        _in_two_halves(lambda start, stop: product(start, stop, out[start:stop]), x.shape[0])
        return out

    def unfold(self, x, kernel, stride):
        n, c, h, w = x.shape
        (kh, kw), (sh, sw) = kernel, stride
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        s = x.strides
        # a read-only view: no copy until someone reshapes it into a matrix
        return self._strided(x, (n, c, oh, ow, kh, kw), (s[0], s[1], s[2] * sh, s[3] * sw, s[2], s[3]))

    def _strided(self, x, shape, strides):  # subok: a bfloat16 buffer's view stays one
        return as_strided(x, shape, strides, subok=True, writeable=False)

    def fold(self, cols, shape, stride):
        out = self.xp.zeros(shape, dtype=cols.dtype)
        _, _, oh, ow, kh, kw = cols.shape
        sh, sw = stride
        overlapping = sh < kh or sw < kw  # if not, each input element is in one window at most
        for a in range(kh):  # one strided add per kernel offset: KH*KW vectorised adds
            for b in range(kw):
                target = out[:, :, a:a + sh * (oh - 1) + 1:sh, b:b + sw * (ow - 1) + 1:sw]
                if overlapping and (a or b):
                    target += cols[..., a, b]
                else:  # nothing written there yet: a copy, twice as fast as an add
                    target[...] = cols[..., a, b]
        return to_bfloat16(out) if type(cols) is BFloat16Array else out  # sums in float32

    def take(self, x, axis, index):
        return self.xp.take(x, index, axis=axis)

    def index_add(self, shape, axis, index, src):
        """np.add.at into `out` seen as one flat vector, with one flat position per element of
        src: NumPy's add.at has a fast loop for flat targets and flat indices only (an
        embedding's gradient, (32, 64) indices into a (65, 128) table: 0.45 ms instead of 2.3
        ms for add.at over whole rows). The same additions in the same order, so the same sums.
        The positions trust the spec's index range: an index outside [0, shape[axis]) would
        land in a neighbouring slice instead of raising (Tensor methods check it first)."""
        out = self.xp.zeros(shape, dtype=src.dtype)
        before, size = math.prod(shape[:axis]), shape[axis]
        after = math.prod(shape[axis + 1:])  # src is (before, *index.shape, after), flattened:
        positions = (self.xp.arange(before).reshape(-1, 1, 1) * (size * after)
                     + index.reshape(1, -1, 1) * after + self.xp.arange(after))
        self.xp.add.at(out.reshape(-1), positions.reshape(-1), src.reshape(-1))
        return to_bfloat16(out) if type(src) is BFloat16Array else out  # sums in float32


# the primitives Backend.writer offers, by method name: the NumPy ufunc that writes into out=
_UFUNCS = {"neg": "negative", "log": "log", "sin": "sin", "sqrt": "sqrt", "add": "add",
           "sub": "subtract", "mul": "multiply", "div": "divide", "maximum": "maximum",
           "tanh": "tanh"}

_BLAS_FLOATS = (np.float32, np.float64)


def _sum_as_product(x, axes):
    """The sum over the trailing (or the leading) dims of a contiguous float array as a matrix
    times a vector of ones, or None for other axes. NumPy's reduction loop pays per row, so on
    short rows (a LayerNorm's 128 features, attention's 64 keys) it is 4-10x slower than BLAS
    doing the same additions (in another order: float sums may differ in the last bits)."""
    count = 1
    for axis in axes:
        count *= x.shape[axis]
    kept = tuple(1 if axis in axes else size for axis, size in enumerate(x.shape))
    if axes == tuple(range(x.ndim - len(axes), x.ndim)):  # trailing: one sum per row
        return (x.reshape(-1, count) @ np.ones(count, x.dtype)).reshape(kept)
    if axes == tuple(range(len(axes))):  # leading: one sum per column (a bias gradient)
        return (np.ones(count, x.dtype) @ x.reshape(count, -1)).reshape(kept)
    return None


CHUNK = np.dtype("V16")  # 16 raw bytes: 4 float32 or 2 float64, moved without arithmetic


def _short_rows(x, axes) -> bool:
    """Whether MAX over `axes` is over the last dim of many short contiguous float rows, where
    _max_of_short_rows wins (measured on 8192 rows: 6x on rows of 32 bytes, 2.5x on attention's
    (32, 4, 64, 64) float32, 1.5x on 512 bytes; on rows of 1 KB and more, or fewer than 256
    rows, NumPy's own reduction is as fast or faster)."""
    if axes != (x.ndim - 1,):
        return False
    row_bytes = x.shape[-1] * x.itemsize
    return 32 <= row_bytes <= 512 and row_bytes % CHUNK.itemsize == 0 and \
        x.size >= 256 * x.shape[-1] and x.dtype in _BLAS_FLOATS and x.flags.c_contiguous


MAX_BLOCK_ROWS = 1024  # rows per chunk transpose: 256 KB at most, so it stays in the cache
# (measured: 15-20% faster than one transpose of attention's whole 2 MB; 512 and 2048 slower)


def _max_of_short_rows(x):
    """The max over the last dim, one per row, without NumPy's per-row cost: NumPy reduces
    each short row in a call of its own (64 floats: ~60 ns a row, about half of it overhead).
    Instead, transpose the rows in 16-byte chunks (a copy of raw bytes, no arithmetic), so that
    chunk k of every row lies in one long contiguous block; the max over the blocks is then a
    few long vectorised passes, leaving each row's 4 (float64: 2) candidates in one column
    each, and one np.maximum per column finishes. Max is exact in any order (nan wins
    everywhere), so the values are NumPy's; only where a row's max is a zero, which of 0.0 and
    -0.0 comes out depends on the order, here as in NumPy's own loop."""
    rows = x.reshape(-1, x.shape[-1])
    per_chunk = CHUNK.itemsize // x.itemsize
    chunks = x.shape[-1] // per_chunk
    candidates = np.empty((rows.shape[0], per_chunk), x.dtype)
    moved = np.empty((chunks, min(MAX_BLOCK_ROWS, rows.shape[0])), CHUNK)
    for start in range(0, rows.shape[0], MAX_BLOCK_ROWS):
        block = rows[start:start + MAX_BLOCK_ROWS].view(CHUNK).T  # (chunks, rows) of 16 bytes
        into = moved[:, :block.shape[1]]
        np.copyto(into, block)
        into.view(x.dtype).reshape(chunks, -1, per_chunk).max(
            axis=0, out=candidates[start:start + MAX_BLOCK_ROWS])
    result = np.maximum(candidates[:, 0], candidates[:, 1])
    for column in range(2, per_chunk):
        np.maximum(result, candidates[:, column], out=result)
    return result.reshape(x.shape[:-1] + (1,))


# elements per block of ERF, GELU and GELU_GRAD (2 MB of float32): a block's ~25 passes then
# run in L2/L3 cache, and its temporaries stay bounded on huge inputs. Smaller blocks cost more
# than they save: every pass is a NumPy call, and each call takes the GIL, which the two halves
# of _in_two_halves share. Measured on (32, 64, 512) float32 at 2 threads, GELU forward and
# backward: 1.8 + 2.4 ms in 64K-element blocks, 1.2 + 1.7 ms in these (the GPT step: 110 -> 103
# ms); at one thread the block size makes no difference from 64K to 512K elements.
ERF_BLOCK = 1 << 19


# ---- a second core for the big ones ------------------------------------------------------------
# With two threads OpenBLAS runs a large matmul on both cores, but NumPy runs everything else on
# one: elementwise loops, and the loop over a batch of small matrices. Where a primitive splits
# into two independent halves, each big enough to pay for handing one to another thread (~20
# us), the backend runs the first half on a worker thread and the second itself: NumPy lets go
# of the GIL inside its loops, so the halves run at once, with the same results. Used for ERF
# (1.9 -> 1.0 ms on GELU's (32, 64, 512) float32), GELU and GELU_GRAD (ERF's blocks and more),
# EXP (1.5x) and batched products of small matrices (attention's, 1.3x); the GPT step at 2
# threads gains about 3%. Memory-bound ops (add, mul) gain little and stay on one core. Only
# while OpenBLAS's threads sleep between matmuls (see _idle_threads_sleep): spinning, they
# hold the core the worker would use.
SPLIT_SIZE = 1 << 18  # elements in all; below, the hand-off costs about what it saves
SMALL_GEMM = 1 << 20  # m * k * n of one matrix product below which OpenBLAS uses one thread
COPY_ROWS = 32  # rows of x from which a transposed y is copied first (_small_products)


@functools.cache  # the one worker thread, made on first use
def _worker() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix="edugrad-numpy")


def _in_two_halves(work, size: int) -> None:
    """work(start, stop) over [0, size) as two halves at the same time: [0, size // 2) on the
    worker thread (with the caller's quiet floating-point error state), the rest here."""
    half = size // 2
    other = _worker().submit(quiet(work), 0, half)
    try:
        work(half, size)
    finally:
        other.result()


def _erf_block(x, out):
    """erf of one block, written into out (which may be x itself: x is read before out is
    written, or in place). In float32 each polynomial is evaluated in one buffer updated in
    place (`p *= s; p += c`) and the quotient is built in `out`: the same operations in the
    same order as a fresh array per step, so the same results, in half the time (no allocation
    and first touch of a new buffer per step)."""
    if x.dtype == np.float32:
        np.clip(x, -4.0, 4.0, out=out)  # clamped
        square = out * out
        out *= _horner(square, ERF_FLOAT32["P"])
        out /= _horner(square, ERF_FLOAT32["Q"])
        return
    magnitude = np.abs(x)
    square = x * x
    near = x * _horner(square, ERF_FLOAT64["T"]) / _horner(square, ERF_FLOAT64["U"])
    z = np.minimum(magnitude, 8.0)
    erfc = np.exp(-(z * z)) * _horner(z, ERF_FLOAT64["P"]) / _horner(z, ERF_FLOAT64["Q"])
    far = 1.0 - erfc
    far = np.where(x < 0, -far, far)
    np.copyto(out, np.where(magnitude < 1.0, near, far))


def _normal_cdf_block(x, out):
    """Phi(x) = erf(x * (1/sqrt 2)) * 0.5 + 0.5 into out: TensorData._normal_cdf's operations
    in its order, its constants rounded to x's dtype as TensorData.constant rounds them."""
    np.multiply(x, x.dtype.type(1 / math.sqrt(2)), out=out)
    _erf_block(out, out)
    out *= x.dtype.type(0.5)
    out += x.dtype.type(0.5)


def _gelu_block(x, out):
    """x * Phi(x) into out, as TensorData.gelu_composed."""
    _normal_cdf_block(x, out)
    out *= x


def _gelu_grad_block(x, g, out):
    """g * (Phi(x) + x * phi(x)) into out, phi(x) = exp(x * x * -0.5) * (1/sqrt(2 pi)), as
    TensorData.gelu_grad_composed (multiplication commutes bit for bit in IEEE arithmetic,
    so `density *= x` is its x * density)."""
    _normal_cdf_block(x, out)
    density = np.multiply(x, x)
    density *= x.dtype.type(-0.5)
    np.exp(density, out=density)
    density *= x.dtype.type(1 / math.sqrt(2 * math.pi))
    density *= x
    out += density
    out *= g


def _horner(v, coefficients):
    """c0 v^n + ... + cn by Horner's rule, highest power first, in one buffer."""
    result = v * coefficients[0]
    result += coefficients[1]
    for c in coefficients[2:]:
        result *= v
        result += c
    return result
