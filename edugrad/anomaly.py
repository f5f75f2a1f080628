"""detect_anomaly: find the Function that first made a NaN or an inf, forward or backward.

Layer: autograd (beside it). Imports edugrad.function and edugrad.dtypes; never NumPy (a value
is checked with primitives: |x| < inf is False exactly for NaN and inf, and a sum counts them).

    with edugrad.autograd.detect_anomaly():
        y = (x - 1).log()          # RuntimeError: Log produced nan in forward ...
        y.sum().backward()         #   created at train.py:12 in step

How it works, with no change to the engine: inside the `with` block, `Function.apply` is
replaced by a checking version (the original comes back on exit, even after an error). For
each op it
1. runs the original apply;
2. if the output holds a NaN or inf while every input was finite, raises, naming the Function
   and the line of user code that called it (the first stack frame outside edugrad);
3. remembers that line on the Function object (ctx), and wraps that object's `backward` so
   that when backward returns a NaN or inf gradient from a finite incoming one, it raises the
   same way: "SqrtBackward returned an inf gradient for input 0 ... created at file:line".
The wrapping is per Function object, so the graphs recorded inside the block are checked when
their backward runs, whether or not the block has ended by then.

Off by default, and when off it costs nothing: Function.apply is the plain method. On, it costs
a sum and a scalar read per op (on a GPU that is a synchronisation per op): a debugging tool.

Per thread, as in PyTorch: a block in one thread checks the ops of that thread only. The class
attribute has to be replaced for all threads at once, so it stays replaced while any thread is
inside a block, and the checking version hands the ops of every other thread straight to the
plain apply (one read of a thread-local counter).
"""

from __future__ import annotations

import os
import sys
import threading
import weakref

from edugrad.dtypes import float64 as _FLOAT
from edugrad.function import Function

__all__ = ["detect_anomaly", "is_anomaly_enabled"]

_EDUGRAD_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class _ThreadState(threading.local):
    depth = 0        # this thread's nested detect_anomaly blocks
    in_backward = 0  # > 0 while a checked backward runs here: its ops are not checked


_local = _ThreadState()
_plain_apply = Function.__dict__["apply"]  # the classmethod itself, put back after the last block
_switch = threading.Lock()  # guards _blocks and the swap of Function.apply
_blocks = 0  # detect_anomaly blocks open in all threads together


def is_anomaly_enabled() -> bool:
    """Whether the calling thread is inside a detect_anomaly block."""
    return _local.depth > 0


def has_nonfinite(data) -> bool:
    """True if the TensorData holds a NaN or an inf (always False for integer and bool data)."""
    if not data.dtype.is_floating_point or data.numel() == 0:
        return False
    return _count(_finite(data)) < data.numel()


def _finite(data):
    """|x| < inf, as bools: False for inf and NaN (comparisons with NaN are False). Compared,
    not subtracted: inf - inf would make NumPy warn."""
    return data.maximum(data.neg()).cmplt(data.full_like(float("inf")))


def _count(flags) -> int:
    """How many of the bools are True: one sum, one scalar read."""
    return int(flags.cast(_FLOAT).sum(tuple(range(flags.ndim)), False).to_host().item())


def user_frame() -> str:
    """'file:line in function' of the innermost caller outside edugrad's own files."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_EDUGRAD_DIR):
        frame = frame.f_back
    if frame is None:
        return "(no user code on the stack)"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


def _kind(data) -> str:
    """'nan', 'inf' or 'nan and inf': which non-finite values the data holds."""
    nans = data.numel() - _count(data.cmpeq(data))  # NaN is the one value not equal to itself
    nonfinite = data.numel() - _count(_finite(data))
    if nans and nonfinite > nans:
        return "nan and inf"
    return "nan" if nans else "inf"


@classmethod
def _checked_apply(cls, *inputs, **options):
    """Function.apply, then the checks (installed as Function.apply inside detect_anomaly)."""
    out = _plain_apply.__func__(cls, *inputs, **options)
    if not _local.depth or _local.in_backward:  # another thread's op, or one inside a checked
        return out                               # backward (whose result gets checked)
    if has_nonfinite(out._data) and not any(has_nonfinite(t._data) for t in inputs):
        raise RuntimeError(
            f"detect_anomaly: {cls.__name__} produced {_kind(out._data)} in the forward pass "
            f"from finite inputs of shapes {[tuple(t.shape) for t in inputs]}\n"
            f"    called at {user_frame()}"
        )
    ctx = out._ctx
    if ctx is not None and isinstance(ctx, cls):
        ctx.anomaly_site = user_frame()
        ctx.backward = _checked_backward(weakref.ref(ctx))
    return out


def _checked_backward(ctx_ref):
    """A backward for one Function object that checks what it returns.

    It holds the Function weakly: a strong reference would make a cycle ctx -> wrapper -> ctx.
    """

    def backward(grad_output):
        ctx = ctx_ref()
        _local.in_backward += 1
        try:
            grads = type(ctx).backward(ctx, grad_output)
        finally:
            _local.in_backward -= 1
        if has_nonfinite(grad_output._data):  # made upstream; that op was checked already
            return grads
        for i, grad in enumerate(grads if isinstance(grads, tuple) else (grads,)):
            if grad is not None and has_nonfinite(grad._data):
                raise RuntimeError(
                    f"detect_anomaly: {ctx.name} returned {_kind(grad._data)} in the gradient "
                    f"for its input {i} (shape {tuple(grad.shape)}) from a finite incoming "
                    f"gradient\n    local derivative: {ctx.formula or '(not documented)'}\n"
                    f"    the {type(ctx).__name__} was created at {ctx.anomaly_site}"
                )
        return grads

    return backward


class detect_anomaly:
    """Context manager: raise RuntimeError at the first Function that makes a NaN or inf.

    Forward: an op whose inputs are finite and whose output is not.
    Backward (of graphs recorded inside the block): a Function whose returned gradient is not
    finite while the gradient it received was. The error names the Function, its derivative
    formula and the file:line in user code where it was created.
    """

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def __enter__(self) -> "detect_anomaly":
        global _blocks
        if not self.check_nan:
            return self
        with _switch:
            if _blocks == 0:
                Function.apply = _checked_apply
            _blocks += 1
        _local.depth += 1
        return self

    def __exit__(self, *exc) -> None:
        global _blocks
        if not self.check_nan:
            return
        _local.depth -= 1
        with _switch:
            _blocks -= 1
            if _blocks == 0:
                Function.apply = _plain_apply

    def __call__(self, function):  # usable as a decorator too: @detect_anomaly()
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return function(*args, **kwargs)

        wrapper.__name__, wrapper.__doc__ = function.__name__, function.__doc__
        return wrapper
