"""The conformance checker: run every primitive's cases on a backend, compare with the NumPy
backend, and print a scoreboard.

    python -m edugrad.checking.check python                      a registered device name
    python -m edugrad.checking.check my_backend.py:MyBackend     a class in a file
    python -m edugrad.checking.check my_backend.py               the one Backend subclass in it
    python -m edugrad.checking.check mypackage.module:MyBackend  a class in an importable module
    python -m edugrad.checking.check python --lockstep           the lock-step diff too

One line per primitive: PASS; WRONG, with the first failing case (its inputs and arguments,
expected vs got, or the exception the primitive raised); NOT IMPLEMENTED; or BLOCKED when a
primitive the cases need (FROM_HOST to build inputs, TO_HOST to read results, a movement op to
make a strided input) does not work yet. The exit code is 0 only when every required
primitive, and every accelerated one the backend offers, passes; 2 when no backend could be
loaded (the message says what is missing: the file, the class, which class).

With --lockstep it runs one training step of a small MLP on the NumPy backend and on this one
side by side and stops at the first primitive call whose output differs, naming the primitive
and the Function that called it (lockstep.py). One small step makes only some of the calls
the cases make (a 2-D MLP never permutes a 3-D buffer), so it then lists the primitives that
fail the scoreboard anyway, with what the step did with them; the exit code is 0 only when no
call differs and the scoreboard passes.

Layer: checking tools (on top). Imports edugrad.backend, edugrad.ops, the case table in
conformance.py (which uses edugrad.data and NumPy), lockstep.py and the NumPy backend, the
reference.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

from edugrad.backend import Backend, get_backend
from edugrad.backends.numpy_backend import NumpyBackend
from edugrad.checking.conformance import (
    ARG_NAMES, Case, StageError, View, cases, host_values, problem_with, rand_problem, run, show,
)
from edugrad.checking.lockstep import run_lockstep
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


def describe(op: Op, case: Case, values: bool = True) -> str:
    """The inputs (dtype, shape, values unless values=False, and any movement ops applied) and
    the arguments."""
    def picture(array):
        return show(array) if values else f"{array.dtype.name} {array.shape}"

    parts = []
    for value in case.inputs:
        if isinstance(value, View):
            steps = ", then ".join(f"{name} {arg}" for name, arg in value.steps)
            parts.append(f"{picture(value.array)} then {steps}")
        else:
            parts.append(picture(value))
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


# ---- finding the backend -------------------------------------------------------------------------

class CannotLoad(Exception):
    """The command line named no backend that can be made; the message says what is missing."""


def load_backend(spec: str) -> Backend:
    """A device name ("python", "cuda:0"), "package.module:Class", "path/file.py:Class", or
    "path/file.py" when the file defines exactly one Backend subclass."""
    where, colon, name = spec.rpartition(":")
    if not (colon and where and name.isidentifier()):
        where, name = spec, None
    is_file = where.endswith(".py") or Path(where).is_file()
    if not is_file and name is None:
        try:
            return get_backend(spec)
        except ValueError as error:  # an unknown device: perhaps a class was meant
            raise CannotLoad(f"{error}; or name a class: file.py:Class, package.module:Class, "
                             "or file.py alone when it defines one") from None
    module = _load_file(where) if is_file else importlib.import_module(where)
    return _find_class(module, where, name)()


def _load_file(where: str):
    path = Path(where)
    if not path.is_file():
        raise CannotLoad(f"no such file: {where}")
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    if module_spec is None:
        raise CannotLoad(f"cannot load {where} as a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[path.stem] = module  # so that the classes in it can be pickled, named, ...
    module_spec.loader.exec_module(module)
    return module


def _find_class(module, where: str, name: str | None) -> type:
    """The class `name` in module; with no name, the one Backend subclass defined there."""
    own = [value for value in vars(module).values()
           if isinstance(value, type) and value.__module__ == module.__name__]
    backends = [cls.__name__ for cls in own if issubclass(cls, Backend)]
    if name is None:
        if len(backends) == 1:
            return getattr(module, backends[0])
        if backends:
            raise CannotLoad(f"{where} defines {len(backends)} Backend subclasses "
                             f"({', '.join(backends)}): name one, as {where}:{backends[0]}")
        raise CannotLoad(f"{where} defines no subclass of edugrad.backend.Backend"
                         f"{_listing(own)}")
    cls = getattr(module, name, None)
    if cls is Backend:
        raise CannotLoad(f"Backend is the interface every backend subclasses; name your "
                         f"subclass{_listing(own)}")
    if cls is None:
        close = (difflib.get_close_matches(name, backends, n=1)
                 or difflib.get_close_matches(name, [c.__name__ for c in own], n=1))
        hint = f"; did you mean {where}:{close[0]}?" if close else ""
        raise CannotLoad(f"class {name!r} not found in {where}{_listing(own)}{hint}")
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise CannotLoad(f"{name!r} in {where} is not a subclass of edugrad.backend.Backend")
    return cls


def _listing(classes: list) -> str:
    """"; the classes there: MyBackend (a Backend), Flat", or that there are none."""
    if not classes:
        return " (it defines no classes)"
    names = [f"{c.__name__} (a Backend)" if issubclass(c, Backend) else c.__name__
             for c in sorted(classes, key=lambda c: not issubclass(c, Backend))]
    return f"; the classes there: {', '.join(names)}"


# ---- the lock-step diff, and what it cannot see -------------------------------------------------

def lockstep_with_scoreboard(backend: Backend, spec: str) -> tuple[str, bool]:
    """The lock-step report, then the primitives that fail the scoreboard, each with what the
    step did with it: one small MLP step makes only some of the calls the cases make (a 2-D
    MLP never permutes a 3-D buffer), so "no difference" alone would hide them. Returns (the
    text, whether the step agreed and the scoreboard passed)."""
    report = run_lockstep(type(backend))
    failing = [result for result in check_backend(backend) if result.status != PASS]
    lines = [report.format()]
    if failing:
        lines += ["", f"but the scoreboard fails {len(failing)} primitive(s), on cases this "
                      "step never made:" if report.ok else
                      f"the scoreboard fails {len(failing)} primitive(s) too; what the step "
                      "did with each before it stopped:"]
        lines += [line for result in failing for line in _what_the_step_did(result, report.calls)]
        lines += ["", f"the scoreboard shows each case: python -m edugrad.checking.check {spec}"]
    return "\n".join(lines), report.ok and not failing


def _what_the_step_did(result: Result, calls: list) -> list[str]:
    """Two lines: the primitive, its status and failing case; the calls the step made to it."""
    op = result.op
    case = ""
    if result.status in (WRONG, BLOCKED, ERROR):  # result.cases is the failing case's number
        case = f"case {result.cases}: {describe(op, cases()[op][result.cases - 1], values=False)}"
    shapes = sorted({call.input_shapes for call in calls if call.op is op})
    if not shapes:
        used = f"the step never called {op.name}"
    else:
        count = sum(call.op is op for call in calls)
        seen = ", ".join(" and ".join(map(str, inputs)) or "no buffers" for inputs in shapes[:4])
        used = (f"the step called {op.name} {count} time{'s' if count > 1 else ''}, on inputs "
                f"{seen}{', ...' if len(shapes) > 4 else ''}")
    return [f"  {op.name:<10} {result.status:<16} {case}".rstrip(), f"{'':30}{used}"]


# ---- the command line ---------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    """The command line: this module's docstring gives the description and the examples."""
    description, _, rest = __doc__.partition("\n\n")
    commands = argparse.ArgumentParser(
        prog="python -m edugrad.checking.check", description=description,
        epilog="examples:\n" + rest.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands.add_argument(
        "backend", metavar="BACKEND",
        help="a device name (python, cuda:0, one you registered), file.py:Class, "
             "package.module:Class, or file.py when the file defines one Backend subclass")
    commands.add_argument(
        "--lockstep", action="store_true",
        help="run one training step of a small MLP on the NumPy backend and on this one side "
             "by side, stop at the first primitive call that differs, then name the primitives "
             "that fail the scoreboard and what the step did with them")
    return commands


def main(argv: list[str] | None = None) -> int:
    """0: everything passes; 1: something fails; 2: bad arguments or no backend to check."""
    args = parser().parse_args(argv)
    try:
        backend = load_backend(args.backend)
    except CannotLoad as error:
        print(f"check: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the learner's file or class raised while loading
        print(f"check: cannot load backend {args.backend!r}: {type(error).__name__}: {error}",
              file=sys.stderr)
        return 2
    if args.lockstep:
        text, ok = lockstep_with_scoreboard(backend, args.backend)
        print(text)
        return 0 if ok else 1
    results = check_backend(backend)
    print(scoreboard(backend, results))
    return 0 if all(result.status == PASS for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
