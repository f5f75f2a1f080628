"""detect_anomaly: find the Function that first made a NaN or an inf, forward or backward.

Layer: autograd (beside it). Imports edugrad.function only; never NumPy (a value is checked with
two primitives, `x - x` and a sum: finite x gives 0, NaN or inf gives NaN).

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
"""

from __future__ import annotations

import os
import sys
import weakref

from edugrad.function import Function

__all__ = ["detect_anomaly", "is_anomaly_enabled"]

_EDUGRAD_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class _State:
    def __init__(self) -> None:
        self.depth = 0               # nested detect_anomaly blocks
        self.original_apply = None   # the classmethod Function.apply was before the first block
        self.in_backward = 0         # > 0 while a checked backward runs: its ops are not checked


_state = _State()  # an instance: a classmethod stored on it stays a plain object


def is_anomaly_enabled() -> bool:
    return _state.depth > 0


def has_nonfinite(data) -> bool:
    """True if the TensorData holds a NaN or an inf (always False for integer and bool data)."""
    if not data.dtype.is_floating_point or data.numel() == 0:
        return False
    spread = data.sub(data)  # 0 where finite; inf - inf and nan - nan are nan
    total = spread.sum(tuple(range(data.ndim)), keepdim=False).to_host().item()
    return total != total


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
    axes = tuple(range(data.ndim))

    def count_nan(x):  # NaN is the one value not equal to itself
        return data.numel() - x.cmpeq(x).cast(data.dtype).sum(axes, False).to_host().item()

    nans, nonfinite = count_nan(data), count_nan(data.sub(data))
    if nans and nonfinite > nans:
        return "nan and inf"
    return "nan" if nans else "inf"


@classmethod
def _checked_apply(cls, *inputs, **options):
    """Function.apply, then the checks (installed as Function.apply inside detect_anomaly)."""
    out = _state.original_apply.__func__(cls, *inputs, **options)
    if _state.in_backward:  # an op inside some backward: that backward's result gets checked
        return out
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
        _state.in_backward += 1
        try:
            grads = type(ctx).backward(ctx, grad_output)
        finally:
            _state.in_backward -= 1
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
        if not self.check_nan:
            return self
        if _state.depth == 0:
            _state.original_apply = Function.__dict__["apply"]
            Function.apply = _checked_apply
        _state.depth += 1
        return self

    def __exit__(self, *exc) -> None:
        if not self.check_nan:
            return
        _state.depth -= 1
        if _state.depth == 0:
            Function.apply = _state.original_apply
            _state.original_apply = None

    def __call__(self, function):  # usable as a decorator too: @detect_anomaly()
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return function(*args, **kwargs)

        wrapper.__name__, wrapper.__doc__ = function.__name__, function.__doc__
        return wrapper
