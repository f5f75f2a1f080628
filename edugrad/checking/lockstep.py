"""The lock-step diff: one training step on the NumPy backend and on yours, primitive call by
primitive call, stopped at the first call whose output differs.

    python -m edugrad.checking.check my_backend.py:MyBackend --lockstep

The scoreboard says *that* a primitive is wrong on its test cases. This says *where* a real
training step first goes wrong: which primitive call (counting from the first), which
Function asked for it (`Exp.forward`, `Sum.forward, called from Linear.backward`), in which
phase of the step, and the expected values next to yours.

How it works:

1. Both backends are registered under fresh device names ("lockstep-reference",
   "lockstep-yours"), so each run starts with a new backend instance and nothing cached.
2. Every primitive method of both instances is wrapped (an instance attribute shadows the
   class's method): each call is recorded with its inputs and its output, read back to the host
   with the backend's own TO_HOST.
3. The same step runs on the reference, then on yours: the same weights and batch, loaded from
   the same host arrays. The reference is the NumPy backend offering the same accelerated
   primitives as yours (a backend without MATMUL gets the composed matmul on both sides), so the
   two runs make the same calls in the same order. Each of your calls is compared with the
   reference's call at the same position as soon as it returns.
4. At the first difference it stops and runs that one primitive again on the NumPy backend with
   *your* inputs: if NumPy then agrees with you, the primitive is right and small differences
   from earlier calls grew here; if not, the primitive is wrong.

The step is the one every training loop makes, on a small MLP: nn.Sequential(Linear, ReLU,
Linear), nn.functional.cross_entropy, backward, optim.SGD's step, loss.item(). The weights come
from the same host arrays on both sides, and nothing draws random numbers (RAND differs between
backends by design).

Layer: checking tools (on top). Imports edugrad, edugrad.nn and edugrad.optim (it drives a
training step, as a test does), edugrad.checking.conformance (comparing, naming arguments), the
NumPy backend (the reference) and NumPy.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import edugrad
from edugrad import data, nn, optim
from edugrad.backend import Backend, get_backend, register_backend
from edugrad.backends.numpy_backend import NumpyBackend
from edugrad.checking.conformance import ARG_NAMES, F32, F64, first_difference
from edugrad.dtypes import DType
from edugrad.function import Function
from edugrad.ops import Kind, Op, buffer_positions

REFERENCE_DEVICE, YOUR_DEVICE = "lockstep-reference", "lockstep-yours"

# Looser than the conformance cases': each of your calls gets your own earlier outputs as
# inputs, so rounding differences (a sum added up in another order) carry forward a little.
LOCKSTEP_TOLERANCE = {F32: (1e-4, 1e-5), F64: (1e-9, 1e-12)}  # (rtol, atol)

# the model and its batch: 6 examples, 4 features, 5 hidden units, 3 classes
BATCH, FEATURES, HIDDEN, CLASSES = 6, 4, 5, 3
LEARNING_RATE = 0.1


# ---- what a call looks like ---------------------------------------------------------------------

@dataclass
class Call:
    """One primitive call: what went in, what came out (on the host), and who asked for it."""

    number: int  # counting from 1, in the order the step made the calls
    op: Op
    phase: str  # "load", "forward", "backward", "update", "read the loss"
    caller: str  # "LogSoftmax.forward", or what called it when no Function did
    input_shapes: tuple
    inputs: tuple  # the buffer inputs, on the host
    args: tuple  # the method's arguments, None where a buffer was (to re-run the call)
    output: np.ndarray  # for TO_HOST, the values it returned, flat

    @property
    def arguments(self) -> str:
        """The arguments other than buffers, named: "axes=(1,)"."""
        others = [arg for arg in self.args if arg is not None]
        return ", ".join(f"{name}={arg.name}" if isinstance(arg, DType) else f"{name}={arg!r}"
                         for name, arg in zip(ARG_NAMES.get(self.op, ()), others))

    def headline(self) -> str:
        shapes = ", ".join(str(s) for s in self.input_shapes)
        return f"{self.op.name}({shapes}{', ' if shapes and self.arguments else ''}" \
               f"{self.arguments}) in {self.caller}"


@dataclass
class Difference:
    """Where your run first parted from the reference's."""

    call: Call | None  # yours (None when the step broke outside any primitive)
    expected: Call | None  # the reference's call at the same position
    problem: str  # what differs, in words, with expected vs got
    verdict: str = ""  # whom to blame, from re-running the primitive on your inputs


@dataclass
class LockstepReport:
    backend: str
    reference_calls: list
    calls: list = field(default_factory=list)  # yours, up to and including the first difference
    difference: Difference | None = None
    loss: float | None = None  # the reference's loss, and yours when they agree
    tolerance: dict = field(default_factory=lambda: LOCKSTEP_TOLERANCE)

    @property
    def ok(self) -> bool:
        return self.difference is None

    def format(self) -> str:
        lines = [f"lock-step diff: one training step of a {FEATURES}-{HIDDEN}-{CLASSES} MLP "
                 f"(batch {BATCH}), {len(self.reference_calls)} primitive calls,",
                 f"on {self.backend} against the NumPy backend", ""]
        if self.ok:
            rtol, atol = self.tolerance[F32]
            lines += [f"no difference: all {len(self.calls)} primitive calls agree "
                      f"(float32 within rtol {rtol:g}, atol {atol:g});",
                      f"the loss is {self.loss:.6f} on both"]
            return "\n".join(lines)
        diff, call = self.difference, self.difference.call
        if call is None:
            lines.append(diff.problem)
            return "\n".join(lines)
        lines += [f"first difference at primitive call {call.number} of "
                  f"{len(self.reference_calls)}, in the {call.phase} phase:",
                  f"  primitive  {call.op.name}",
                  f"  called by  {call.caller}"]
        if call.input_shapes:
            lines.append(f"  inputs     {', '.join(str(s) for s in call.input_shapes)}")
        if call.arguments:
            lines.append(f"  arguments  {call.arguments}")
        lines += [f"  {line}" for line in diff.problem.splitlines()]
        if diff.verdict:
            lines += [""] + textwrap.wrap(diff.verdict, 96)
        before = self.calls[max(0, call.number - 4):call.number - 1]
        if before:
            lines += ["", "the calls just before it agree:"]
            lines += [f"  {c.number:>4}  {c.headline()}" for c in before]
        return "\n".join(lines)


class Diverged(Exception):
    """Raised from inside your backend's wrapped primitive to stop the step at a difference."""

    def __init__(self, difference: Difference) -> None:
        super().__init__(difference.problem)
        self.difference = difference


# ---- recording the calls of one backend ---------------------------------------------------------

def without_buffers(op: Op, args: tuple) -> tuple:
    positions = buffer_positions(op)
    return tuple(None if i in positions else arg for i, arg in enumerate(args))


class Recorder:
    """Wraps every primitive method of one backend instance and records each call.

    With `expected` (the reference's calls) it compares each call as it returns and raises
    Diverged at the first difference; `reference` is the reference's Recorder, whose unwrapped
    methods re-run a primitive on your inputs.
    """

    def __init__(self, backend: Backend, expected: list | None = None,
                 reference: "Recorder | None" = None, tolerance: dict = LOCKSTEP_TOLERANCE):
        self.backend = backend
        self.expected, self.reference, self.tolerance = expected, reference, tolerance
        self.calls: list[Call] = []
        self.phase = "load"
        self.inside = False  # True while one of the wrapped methods runs
        self.original: dict[Op, object] = {}  # the unwrapped bound methods
        self.shadowed: dict[Op, object] = {}  # instance attributes the wrappers replaced
        for op in Op:
            if op.required or backend.has(op):
                method_name = op.method
                if method_name in vars(backend):
                    self.shadowed[op] = vars(backend)[method_name]
                self.original[op] = getattr(backend, method_name)
                setattr(backend, method_name, self._wrap(op, self.original[op]))

    def remove(self) -> None:
        """Put the backend's own methods back."""
        for op in self.original:
            if op in self.shadowed:
                setattr(self.backend, op.method, self.shadowed[op])
            else:
                delattr(self.backend, op.method)

    def _wrap(self, op: Op, method):
        def recorded(*args, **kwargs):
            if self.inside:  # a backend using its own primitives (PythonBackend.sum permutes)
                return method(*args, **kwargs)
            self.inside = True
            try:
                return record(*args, **kwargs)
            finally:
                self.inside = False

        def record(*args, **kwargs):
            caller = calling_function(sys._getframe(2))
            positions = buffer_positions(op)
            try:
                inputs = tuple(np.array(args[i]) if op is Op.FROM_HOST else self.host(args[i])
                               for i in positions)
            except Exception as error:
                raise self._stop(op, caller, args, f"TO_HOST, reading an input of this call, "
                                                   f"raised {type(error).__name__}: {error}")
            try:
                out = method(*args, **kwargs)
            except Exception as error:
                if self.expected is None:
                    raise
                raise self._stop(op, caller, args, f"raised {type(error).__name__}: {error}")
            try:
                output = np.array(out).ravel() if op is Op.TO_HOST else self.host(out)
            except Exception as error:
                raise self._stop(op, caller, args, f"TO_HOST, reading the output of this call, "
                                                   f"raised {type(error).__name__}: {error}")
            call = Call(len(self.calls) + 1, op, self.phase, caller,
                        tuple(tuple(args[i].shape) for i in positions), inputs,
                        without_buffers(op, args), output)
            self.calls.append(call)
            if self.expected is not None:
                self._compare(call, out)
            return out

        recorded.__name__ = method.__name__
        return recorded

    def host(self, buffer) -> np.ndarray:
        """A buffer's values on the host, in its shape (dtype as NumPy guesses it, for now)."""
        values = np.array(self.original[Op.TO_HOST](buffer))
        return values.reshape(tuple(buffer.shape))

    def _stop(self, op: Op, caller: str, args: tuple, problem: str) -> Diverged:
        positions = buffer_positions(op)
        shapes = tuple(tuple(getattr(args[i], "shape", ())) for i in positions)
        call = Call(len(self.calls) + 1, op, self.phase, caller, shapes, (),
                    without_buffers(op, args), np.zeros(0))
        self.calls.append(call)
        expected = self.expected or []
        want = expected[call.number - 1] if call.number <= len(expected) else None
        return Diverged(Difference(call, want, problem))

    # ---- comparing with the reference --------------------------------------------------------
    def _compare(self, call: Call, out) -> None:
        if call.number > len(self.expected):
            raise Diverged(Difference(call, None, f"the reference's step made only "
                                                  f"{len(self.expected)} primitive calls; "
                                                  f"yours makes more"))
        want = self.expected[call.number - 1]
        if want.op is not call.op or want.input_shapes != call.input_shapes:
            raise Diverged(Difference(call, want, (
                f"the two runs part ways here: the reference called {want.headline()}\n"
                f"and yours called {call.headline()}\n"
                "(edugrad took another path: a value read back with TO_HOST, or a shape, "
                "differed earlier)")))
        problem, got = self._output_problem(want, call, out)
        if problem:
            raise Diverged(Difference(call, want, problem, self._verdict(want, call, got)))

    def _output_problem(self, want: Call, call: Call, out):
        """(what is wrong with call's output, or None; the output typed like the reference's)."""
        expected = want.output
        shape = expected.shape if call.op is Op.TO_HOST else tuple(out.shape)
        if shape != expected.shape:
            return f"shape: expected {expected.shape}, got {shape}", None
        if call.output.size != expected.size:
            return (f"TO_HOST gave {call.output.size} values for shape {expected.shape}, "
                    f"expected {expected.size}"), None
        dtype = getattr(getattr(out, "dtype", None), "name", None)
        if dtype is not None and call.op is not Op.TO_HOST and dtype != expected.dtype.name:
            return f"dtype: expected {expected.dtype.name}, got {dtype}", None
        with np.errstate(all="ignore"):
            got = call.output.astype(expected.dtype).reshape(expected.shape)
        index = first_difference(expected, got, self.tolerance)
        if index is None:
            return None, got
        return (f"expected   {brief(expected)}\ngot        {brief(got)}\n"
                f"first difference at {index}: expected {expected[index].item()!r}, "
                f"got {got[index].item()!r}"), got

    def _verdict(self, want: Call, call: Call, got: np.ndarray | None) -> str:
        """Run the primitive once more on the NumPy backend, with your inputs: whose fault?"""
        if got is None or call.op in (Op.RAND, Op.FROM_HOST) or self.reference is None:
            return ""
        reference = self.reference
        try:
            args = list(call.args)  # your inputs, typed like the reference's, where buffers were
            for i, mine, theirs in zip(buffer_positions(call.op), call.inputs, want.inputs):
                typed = np.ascontiguousarray(mine.astype(theirs.dtype).reshape(theirs.shape))
                args[i] = reference.original[Op.FROM_HOST](typed)
            out = reference.original[call.op](*args)
            replayed = (np.array(out).ravel() if call.op is Op.TO_HOST
                        else np.array(reference.original[Op.TO_HOST](out)))
        except Exception:  # no verdict then; the difference itself is still shown
            return ""
        replayed = replayed.astype(want.output.dtype).reshape(want.output.shape)
        if first_difference(replayed, got, self.tolerance) is None:
            drift = max((float(np.max(np.abs(mine.astype(np.float64) - theirs), initial=0))
                         for mine, theirs in zip(call.inputs, want.inputs)), default=0.0)
            return (f"Given your inputs, the NumPy backend computes what you did: {call.op.name} "
                    f"is right, and differences from earlier calls (your inputs differ from the "
                    f"reference's by up to {drift:.3g}) grew here. Look at the calls before it.")
        return (f"Given the same inputs as yours, the NumPy backend computes the expected "
                f"values: your {call.op.name} is wrong (spec: edugrad/ops.py, Op.{call.op.name}).")


def brief(values: np.ndarray) -> str:
    """dtype, shape and the first and last few values, flattened: one short line."""
    flat = np.array2string(values.ravel(), separator=", ", threshold=8, edgeitems=3,
                           precision=6, max_line_width=10**6)
    return f"{values.dtype.name} {values.shape} {' '.join(flat.split())}" + \
        (" (flattened)" if values.ndim > 1 else "")


def calling_function(frame) -> str:
    """The nearest Function.forward or .backward on the stack, e.g. "Exp.forward", and the
    backward it ran inside, if any ("Mul.forward, called from Exp.backward"); when no Function
    is on the stack, the nearest function outside TensorData and this file
    ("Tensor._check_index in shape.py (no Function)")."""
    found, fallback = [], None
    while frame is not None:
        name, owner = frame.f_code.co_name, frame.f_locals.get("self")
        if name in ("forward", "backward") and isinstance(owner, Function):
            if not found or name == "backward":
                found.append(f"{type(owner).__name__}.{name}")
            if name == "backward":
                break
        elif fallback is None and Path(frame.f_code.co_filename).name not in HIDDEN_FILES:
            where = f"{type(owner).__name__}.{name}" if owner is not None else name
            fallback = f"{where} in {Path(frame.f_code.co_filename).name}"
        frame = frame.f_back
    return ", called from ".join(found) if found else f"{fallback} (no Function)"


HIDDEN_FILES = ("data.py", "lockstep.py")  # TensorData and the recorder: never the caller


# ---- the step -----------------------------------------------------------------------------------

def host_batch_and_weights(seed: int = 0) -> dict:
    """The step's host arrays: a float32 batch x, int64 labels y, and the MLP's weights in
    nn.Linear's layout (out_features, in_features)."""
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    return {"x": normal(BATCH, FEATURES), "y": rng.integers(0, CLASSES, BATCH),
            "0.weight": normal(HIDDEN, FEATURES) * 0.5, "0.bias": normal(HIDDEN) * 0.1,
            "2.weight": normal(CLASSES, HIDDEN) * 0.5, "2.bias": normal(CLASSES) * 0.1}


def training_step(device: str, host: dict, recorder: Recorder) -> float:
    """One step of the MLP on `device`, telling `recorder` which phase each call belongs to."""
    recorder.phase = "load"
    model = nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CLASSES))
    model.load_state_dict({name: edugrad.tensor(host[name]) for name in model.state_dict()})
    model.to(device)
    optimizer = optim.SGD(model.parameters(), lr=LEARNING_RATE)
    x, y = edugrad.tensor(host["x"], device=device), edugrad.tensor(host["y"], device=device)

    recorder.phase = "forward"
    loss = nn.functional.cross_entropy(model(x), y)

    recorder.phase = "backward"
    optimizer.zero_grad()
    loss.backward()

    recorder.phase = "update"
    optimizer.step()

    recorder.phase = "read the loss"
    return loss.item()


# ---- running both -------------------------------------------------------------------------------

def reference_backend_class(offered: frozenset) -> type:
    """The NumPy backend offering only the accelerated primitives `offered`, so that edugrad
    composes the others from required primitives on the reference exactly as on yours."""

    class Reference(NumpyBackend):
        def __init__(self, device: str | None = None) -> None:
            super().__init__(device)
            self.accelerated = self.accelerated & offered

    return Reference


def fresh_backend(name: str, backend_class: type) -> Backend:
    """A new instance of backend_class as device `name`; nothing cached from earlier runs."""
    register_backend(name, backend_class)
    data.clear_constant_cache()  # TensorData's cached constants must fill up alike in both runs
    return get_backend(name)


def run_lockstep(backend_class: type, tolerance: dict = LOCKSTEP_TOLERANCE) -> LockstepReport:
    """One training step on the NumPy backend and on a new `backend_class` instance, compared
    call by call; the report holds the first difference, or none."""
    host = host_batch_and_weights()
    name = backend_class.__name__
    try:
        yours = fresh_backend(YOUR_DEVICE, backend_class)
    except Exception as error:
        report = LockstepReport(name, [])
        report.difference = Difference(None, None, f"could not make your backend: "
                                                   f"{type(error).__name__}: {error}")
        return report
    reference = fresh_backend(REFERENCE_DEVICE, reference_backend_class(yours.accelerated))
    expected = Recorder(reference)
    try:
        loss = training_step(REFERENCE_DEVICE, host, expected)
    finally:
        expected.remove()
    report = LockstepReport(name, expected.calls, loss=loss, tolerance=tolerance)
    recorder = Recorder(yours, expected.calls, expected, tolerance)
    try:
        yours_loss = training_step(YOUR_DEVICE, host, recorder)
    except Diverged as stop:
        report.difference = stop.difference
    except Exception as error:  # the step broke between primitives, e.g. on a wrong shape
        last = recorder.calls[-1].headline() if recorder.calls else "none"
        report.difference = Difference(None, None, (
            f"the step failed outside any primitive, after {len(recorder.calls)} calls that "
            f"agree (the last: {last}):\n  {type(error).__name__}: {error}"))
    else:
        if len(recorder.calls) < len(expected.calls):
            report.difference = Difference(None, None, (
                f"your step made {len(recorder.calls)} primitive calls, the reference's "
                f"{len(expected.calls)}; the first missing one is "
                f"{expected.calls[len(recorder.calls)].headline()}"))
        elif abs(yours_loss - loss) > 1e-4 * max(1.0, abs(loss)):
            report.difference = Difference(None, None, f"the losses differ: expected {loss}, "
                                                       f"got {yours_loss}")
    finally:
        recorder.remove()
    report.calls = recorder.calls
    return report
