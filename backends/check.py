"""The conformance checker: run every primitive's cases on a backend, compare with the NumPy
backend, and print a scoreboard.

    python -m edugrad.backends.check python                      a registered device name
    python -m edugrad.backends.check my_backend.py:MyBackend     a class in a file
    python -m edugrad.backends.check mypackage.module:MyBackend  a class in an importable module
    python -m edugrad.backends.check python --lockstep           the lock-step diff instead

One line per primitive: PASS; WRONG, with the first failing case (its inputs and arguments,
expected vs got, or the exception the primitive raised); NOT IMPLEMENTED; or BLOCKED when a
primitive the cases need (FROM_HOST to build inputs, TO_HOST to read results, a movement op to
make a strided input) does not work yet. The exit code is 0 only when every required
primitive, and every accelerated one the backend offers, passes.

With --lockstep it runs one training step of a small MLP on the NumPy backend and on this one
side by side and stops at the first primitive call whose output differs, naming the primitive
and the Function that called it (lockstep.py); the exit code is 0 when no call differs.

Layer: backends, test support. Imports edugrad.backend, edugrad.ops, the case table in
conformance.py (which uses edugrad.data and NumPy) and the NumPy backend, the reference.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

from edugrad.backend import Backend, get_backend
from edugrad.backends.conformance import (
    ARG_NAMES, Case, StageError, View, cases, host_values, problem_with, rand_problem, run, show,
)
from edugrad.backends.lockstep import run_lockstep
from edugrad.backends.numpy_backend import NumpyBackend
from edugrad.dtypes import DType
from edugrad.ops import ACCELERATED, REQUIRED, Op

PASS, WRONG, NOT_IMPLEMENTED, BLOCKED = "PASS", "WRONG", "NOT IMPLEMENTED", "BLOCKED"
ERROR = "ERROR"  # the reference failed on a case: a bug in the table or in edugrad, not yours

class ReferenceFailed(Exception):
    """The NumPy backend itself failed on a case: the case or edugrad is wrong, not the backend."""


@dataclass
class Result:
    op: Op
    status: str
    detail: str = ""  # for WRONG: the case and what went wrong; for BLOCKED: what is needed
    cases: int = 0  # how many cases ran (all of them for PASS)


# ---- checking one primitive ---------------------------------------------------------------------

def check_primitive(op: Op, backend: Backend, reference: Backend | None = None) -> Result:
    """Run op's cases on `backend` in order and stop at the first that fails."""
    reference = reference or NumpyBackend("cpu")
    table = cases()[op]
    for number, case in enumerate(table, 1):
        result = check_case(op, number, backend, reference)
        if result.status != PASS:
            return result
    return Result(op, PASS, cases=len(table))


def check_case(op: Op, number: int, backend: Backend, reference: Backend) -> Result:
    """Case `number` (counting from 1) of op's cases, on `backend`."""
    case = cases()[op][number - 1]
    try:
        wrong = _check_case(op, case, backend, reference)
    except StageError as failure:
        return _failed(op, number, case, failure, backend)
    except ReferenceFailed as failure:
        return Result(op, ERROR, f"case {number}: {describe(op, case)}\n{failure}", number)
    if wrong:
        return Result(op, WRONG, f"case {number}: {describe(op, case)}\n{wrong}", number)
    return Result(op, PASS, cases=1)


def _check_case(op: Op, case: Case, backend: Backend, reference: Backend) -> str | None:
    if op is Op.RAND:
        return rand_problem(case, backend)
    try:
        expected = host_values(*run(op, case, reference))
    except StageError as failure:
        raise ReferenceFailed(f"the NumPy reference failed: {failure}") from failure
    return problem_with(*run(op, case, backend), expected)


def _failed(op: Op, number: int, case: Case, failure: StageError, backend: Backend) -> Result:
    error = failure.error
    missing = isinstance(error, NotImplementedError)
    if failure.op is op and missing and number == 1:
        return Result(op, NOT_IMPLEMENTED, str(error), number)
    if failure.op is op or (failure.reading and not missing):  # TO_HOST choked on op's result
        who = "" if failure.op is op else "TO_HOST, reading the result, "
        return Result(op, WRONG, f"case {number}: {describe(op, case)}\n"
                                 f"{who}raised {type(error).__name__}: {error}", number)
    # another primitive failed while the case built its inputs or read its result
    if is_stub(backend, op):
        return Result(op, NOT_IMPLEMENTED, "", number)
    why = "is not implemented" if isinstance(error, NotImplementedError) else "does not work"
    return Result(op, BLOCKED, f"case {number} needs {failure.op.name}, which {why} yet", number)


def is_stub(backend: Backend, op: Op) -> bool:
    """True when op's method raises NotImplementedError whatever it is given: called with None
    for every argument, a stub raises it at once and anything else fails some other way."""
    method = getattr(backend, op.method)
    try:
        arity = sum(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                    for p in inspect.signature(method).parameters.values())
        method(*[None] * arity)
    except NotImplementedError:
        return True
    except Exception:
        return False
    return False


def describe(op: Op, case: Case) -> str:
    """The inputs (dtype, shape, values, and any movement ops applied) and the arguments."""
    parts = []
    for value in case.inputs:
        if isinstance(value, View):
            steps = ", then ".join(f"{name} {arg}" for name, arg in value.steps)
            parts.append(f"{show(value.array)} then {steps}")
        else:
            parts.append(show(value))
    for name, arg in zip(ARG_NAMES.get(op, ()), case.args):
        parts.append(f"{name}={arg.name}" if isinstance(arg, DType) else f"{name}={arg!r}")
    return "; ".join(parts) + (f" ({case.note})" if case.note else "")


# ---- the whole backend ---------------------------------------------------------------------------

def check_backend(backend: Backend, reference: Backend | None = None) -> list[Result]:
    """Every required primitive, then every accelerated one the backend offers."""
    reference = reference or NumpyBackend("cpu")
    ops = list(REQUIRED) + [op for op in ACCELERATED if op in backend.accelerated]
    return [check_primitive(op, backend, reference) for op in ops]


def scoreboard(backend: Backend, results: list[Result]) -> str:
    lines = [f"edugrad conformance: {type(backend).__name__} (device {str(backend.device)!r}) "
             "against the NumPy backend", ""]
    for result in results:
        detail = result.detail.splitlines() if result.status in (WRONG, BLOCKED, ERROR) else []
        first = f"{result.cases} cases" if result.status == PASS else (detail or [""])[0]
        lines.append(f"  {result.op.name:<10} {result.status:<16} {first}".rstrip())
        lines += [f"{'':30}{line}" for line in detail[1:]]
    required = [r for r in results if r.op.required]
    passed = sum(r.status == PASS for r in required)
    lines += ["", f"required primitives: {passed} of {len(required)} pass"]
    todo = [r.op for r in required if r.status in (WRONG, NOT_IMPLEMENTED)]
    if todo:  # in the template's order: host transfer first, then the order of ops.py
        first = next(op for op in (Op.FROM_HOST, Op.TO_HOST, *REQUIRED) if op in todo)
        lines.append(f"next: {first.name} - see edugrad/ops.py, Op.{first.name}")
    offered = [op.name for op in ACCELERATED if op in backend.accelerated]
    missing = [op.name for op in ACCELERATED if op not in backend.accelerated]
    lines.append(f"accelerated primitives offered: {', '.join(offered) or 'none'}")
    if missing:
        lines.append(f"  (edugrad composes {', '.join(missing)} from the required ones)")
    return "\n".join(lines)


def load_backend(spec: str) -> Backend:
    """A device name ("python", "cuda:0"), "package.module:Class" or "path/file.py:Class"."""
    where, _, name = spec.rpartition(":")
    if not where or not name.isidentifier():
        return get_backend(spec)
    if where.endswith(".py") or Path(where).exists():
        path = Path(where)
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None:
            raise ImportError(f"cannot load {where!r} as a Python file")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"{spec}: {name!r} is not a subclass of edugrad.backend.Backend")
    return cls()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    names = [arg for arg in argv if arg != "--lockstep"]
    if len(names) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        backend = load_backend(names[0])
    except Exception as error:
        print(f"check: cannot load backend {names[0]!r}: {type(error).__name__}: {error}",
              file=sys.stderr)
        return 2
    if "--lockstep" in argv:
        report = run_lockstep(type(backend))
        print(report.format())
        return 0 if report.ok else 1
    results = check_backend(backend)
    print(scoreboard(backend, results))
    return 0 if all(result.status == PASS for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
