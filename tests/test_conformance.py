"""Backend conformance: every required primitive on every backend against the NumPy backend;
the checker itself, on the untouched template and on a finished copy of it; the pure-Python
backend's memory model; and TensorData's fallbacks for the accelerated primitives.

The cases live in one table, edugrad/checking/conformance.py, shared with
`python -m edugrad.checking.check`. Add backends with `pytest --backend NAME` (see conftest.py).
"""

from __future__ import annotations

import ast
import inspect
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edugrad import dtypes, ops
from edugrad.backend import Backend
from edugrad.backends import python_backend
from edugrad.checking import check, conformance
from edugrad.backends.numpy_backend import NumpyBackend
from edugrad.backends.python_backend import PythonBackend
from edugrad.backends.template import MyBackend
from edugrad.data import TensorData
from edugrad.ops import ACCELERATED, REQUIRED, Kind, Op

LOAD_ORDER = [Kind.LOAD, Kind.UNARY, Kind.BINARY, Kind.TERNARY, Kind.REDUCE, Kind.MOVEMENT]


class NumpyWithoutAccelerated(NumpyBackend):
    """The NumPy backend with its accelerated primitives hidden, so TensorData composes them."""

    def __init__(self, device: str | None = None) -> None:
        super().__init__(device)
        self.accelerated = frozenset()


# ---- every required primitive on every backend ---------------------------------------------------

_backends: dict[str, Backend] = {}


def load(name: str) -> Backend:
    """A backend of its own for a name, not the shared instance: the RAND cases reseed it."""
    if name not in _backends:
        try:
            backend = check.load_backend(name)
        except ImportError as error:  # e.g. "cuda" without CuPy
            pytest.skip(f"backend {name!r} is not available: {error}")
        _backends[name] = type(backend)(backend.device)
    return _backends[name]


@pytest.mark.parametrize("op", REQUIRED, ids=lambda op: op.name)
def test_primitive_conforms(backend_name, op):
    backend = load(backend_name)
    result = check.check_primitive(op, backend, NumpyBackend("cpu"))
    assert result.status == check.PASS, f"{op.name}: {result.status}\n{result.detail}"


@pytest.mark.parametrize("op", ACCELERATED, ids=lambda op: op.name)
def test_offered_accelerated_primitives_conform(backend_name, op):
    backend = load(backend_name)
    if op not in backend.accelerated:
        pytest.skip(f"{backend_name} does not offer {op.name}")
    result = check.check_primitive(op, backend, NumpyBackend("cpu"))
    assert result.status == check.PASS, f"{op.name}: {result.status}\n{result.detail}"


def test_the_table_has_cases_for_every_primitive():
    table = conformance.cases()
    assert list(table) == list(Op)
    assert all(table[op] for op in Op)


def test_the_required_count_is_stated_once_and_right():
    assert len(REQUIRED) == ops.REQUIRED_COUNT
    assert len(REQUIRED) + len(ACCELERATED) == len(Op)


# ---- the fallbacks in TensorData agree with NumPy's accelerated primitives -----------------------

FALLBACK_CASES = [(op, number) for op in ACCELERATED
                  for number in range(1, len(conformance.cases()[op]) + 1)]


@pytest.mark.parametrize("make_backend", [PythonBackend, NumpyWithoutAccelerated],
                         ids=["python", "cpu-composed"])
@pytest.mark.parametrize("op, number", FALLBACK_CASES,
                         ids=[f"{op.name}-{number}" for op, number in FALLBACK_CASES])
def test_fallback_agrees_with_accelerated(make_backend, op, number):
    backend = make_backend("composed")
    assert op not in backend.accelerated  # so TensorData composes it from required primitives
    reference = NumpyBackend("cpu")
    assert op in reference.accelerated
    result = check.check_case(op, number, backend, reference)
    assert result.status == check.PASS, result.detail


# ---- the checker on the template, untouched and finished -----------------------------------------

def test_checker_reports_the_untouched_template_not_implemented(capsys):
    code = check.main(["edugrad.backends.template:MyBackend"])
    out = capsys.readouterr().out
    assert code != 0
    for op in REQUIRED:
        assert re.search(rf"^  {op.name} +NOT IMPLEMENTED$", out, re.MULTILINE), out
    assert "required primitives: 0 of 26 pass" in out


FINISHED = '''
from edugrad.backends.python_backend import PythonBackend
from edugrad.backends.template import MyBackend
from edugrad.ops import REQUIRED


class Finished(MyBackend):
    """The template with every stub filled in by handing the work to the pure-Python backend."""

    def __init__(self, device=None):
        super().__init__(device)
        self.inner = PythonBackend(device)

    def seed(self, seed):
        self.inner.seed(seed)


def _delegate(name):
    def method(self, *args):
        return getattr(self.inner, name)(*args)
    return method


for _op in REQUIRED:
    setattr(Finished, _op.method, _delegate(_op.method))
'''


def test_checker_passes_a_finished_template(tmp_path):
    path = tmp_path / "finished_backend.py"
    path.write_text(textwrap.dedent(FINISHED))
    run = subprocess.run([sys.executable, "-m", "edugrad.checking.check", f"{path}:Finished"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count(" PASS ") == len(REQUIRED)


def test_checker_loads_backends_by_name_and_by_class():
    assert isinstance(check.load_backend("python"), PythonBackend)
    named = check.load_backend("edugrad.backends.python_backend:PythonBackend")
    assert type(named) is PythonBackend
    with pytest.raises(check.CannotLoad, match="'Buffer' in edugrad.backends.python_backend is "
                                               "not a subclass of edugrad.backend.Backend"):
        check.load_backend("edugrad.backends.python_backend:Buffer")


# ---- the checker's command line: help, and one clear line for what is missing --------------------

TWO_BACKENDS = """
from edugrad.backends.python_backend import PythonBackend


class Fast(PythonBackend):
    pass


class Slow(PythonBackend):
    pass
"""


def checker(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edugrad.checking.check", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def one_line_error(run: subprocess.CompletedProcess) -> str:
    """The checker's refusal: exit code 2, nothing on stdout, one line on stderr."""
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stdout == "" and run.stderr.count("\n") == 1, run.stderr
    return run.stderr.strip()


@pytest.fixture
def learner(tmp_path):
    """A folder holding the untouched template as my_backend.py, and a file with two backends."""
    (tmp_path / "my_backend.py").write_text(Path(inspect.getfile(MyBackend)).read_text())
    (tmp_path / "two_backends.py").write_text(TWO_BACKENDS)
    (tmp_path / "no_backend.py").write_text("class Flat:\n    pass\n")
    return tmp_path


def test_checker_help_is_argparse_help(learner):
    for flag in ("-h", "--help"):
        run = checker(flag, cwd=learner)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("usage: python -m edugrad.checking.check [-h] [--lockstep] "
                                     "BACKEND"), run.stdout
        assert "--lockstep" in run.stdout and "my_backend.py:MyBackend" in run.stdout
    run = checker(cwd=learner)
    assert run.returncode == 2 and "the following arguments are required: BACKEND" in run.stderr


def test_a_file_without_class_uses_its_one_backend(learner):
    run = checker("my_backend.py", cwd=learner)
    assert run.returncode == 1, run.stderr  # the template: every primitive not implemented
    assert run.stdout.startswith("edugrad conformance: MyBackend (device 'mybackend')")


def test_a_file_without_class_and_two_backends_names_both(learner):
    assert one_line_error(checker("two_backends.py", cwd=learner)) == (
        "check: two_backends.py defines 2 Backend subclasses (Fast, Slow): name one, as "
        "two_backends.py:Fast")


def test_a_file_without_any_backend_says_so(learner):
    assert one_line_error(checker("no_backend.py", cwd=learner)) == (
        "check: no_backend.py defines no subclass of edugrad.backend.Backend; the classes "
        "there: Flat")


def test_a_misspelt_class_is_not_found_and_the_classes_there_are_listed(learner):
    assert one_line_error(checker("my_backend.py:MyBackendd", cwd=learner)) == (
        "check: class 'MyBackendd' not found in my_backend.py; the classes there: MyBackend "
        "(a Backend); did you mean my_backend.py:MyBackend?")
    assert one_line_error(checker("two_backends.py:Medium", cwd=learner)).startswith(
        "check: class 'Medium' not found in two_backends.py; the classes there: Fast (a "
        "Backend), Slow (a Backend)")


def test_a_missing_file_or_unknown_device_is_named(learner):
    assert one_line_error(checker("my_bakend.py", cwd=learner)) == (
        "check: no such file: my_bakend.py")
    assert one_line_error(checker("my_bakend.py:MyBackend", cwd=learner)) == (
        "check: no such file: my_bakend.py")
    assert one_line_error(checker("mybackend", cwd=learner)).startswith(
        "check: unknown device 'mybackend': known devices are cpu, cuda, python")


def test_checker_blames_the_primitive_that_failed():
    class NoPermute(PythonBackend):
        def permute(self, x, order):
            raise NotImplementedError("not implemented yet: PERMUTE")

        def neg(self, x):
            return x  # wrong: forgets the sign

    backend = NoPermute()
    assert check.check_primitive(Op.PERMUTE, backend).status == check.NOT_IMPLEMENTED
    neg = check.check_primitive(Op.NEG, backend)
    assert neg.status == check.WRONG and "expected" in neg.detail and "got" in neg.detail
    to_host = check.check_primitive(Op.TO_HOST, backend)  # its strided cases need PERMUTE
    assert to_host.status == check.BLOCKED and "PERMUTE" in to_host.detail


class OffersActivations(PythonBackend):
    """A learner's backend offering TANH (right, by math.tanh) and SIGMOID (the textbook
    1 / (1 + e**-x), whose math.exp raises OverflowError for x << 0, where the spec wants 0)."""

    def tanh(self, x):
        return python_backend.elementwise(math.tanh, (x,), x.dtype)

    def sigmoid(self, x):
        return python_backend.elementwise(lambda v: 1 / (1 + math.exp(-v)), (x,), x.dtype)


def test_checker_checks_the_offered_activations_and_blames_the_wrong_one():
    backend = OffersActivations()
    assert backend.accelerated == {Op.TANH, Op.SIGMOID}
    assert check.check_primitive(Op.TANH, backend).status == check.PASS
    sigmoid = check.check_primitive(Op.SIGMOID, backend)
    assert sigmoid.status == check.WRONG, sigmoid
    assert sigmoid.detail.startswith("case 8: float32 (16,)")  # the edge values, -1e4 among them
    assert sigmoid.detail.endswith("raised OverflowError: math range error")
    board = check.scoreboard(backend, check.check_backend(backend))
    assert re.search(r"^  TANH +PASS +9 cases$", board, re.MULTILINE), board
    assert re.search(r"^  SIGMOID +WRONG +case 8: float32 \(16,\)", board, re.MULTILINE), board
    assert "accelerated primitives offered: TANH, SIGMOID" in board
    assert ("(edugrad composes MATMUL, UNFOLD, FOLD, TAKE, INDEX_ADD, ERF, GELU, GELU_GRAD "
            "from the") in board


def test_a_tanh_that_forgets_the_sign_is_wrong_with_the_values_shown():
    class TanhOfMagnitude(PythonBackend):
        def tanh(self, x):
            return python_backend.elementwise(lambda v: math.tanh(abs(v)), (x,), x.dtype)

    result = check.check_primitive(Op.TANH, TanhOfMagnitude())
    assert result.status == check.WRONG and result.detail.startswith("case 1: float32 (2, 3)")
    assert "expected" in result.detail and "got" in result.detail


def _normal_cdf(v: float) -> float:
    return 0.5 * (1 + math.erf(v / math.sqrt(2)))


def _normal_pdf(v: float) -> float:
    return math.exp(-v * v / 2) / math.sqrt(2 * math.pi)


class OffersGelu(PythonBackend):
    """A learner's GELU and GELU_GRAD, one pass each with math.erf and math.exp: right."""

    def gelu(self, x):
        return python_backend.elementwise(lambda v: v * _normal_cdf(v), (x,), x.dtype)

    def gelu_grad(self, x, g):
        return python_backend.elementwise(
            lambda v, w: w * (_normal_cdf(v) + v * _normal_pdf(v)), (x, g), x.dtype)


def test_checker_passes_a_right_gelu_and_gelu_grad():
    backend = OffersGelu()
    assert backend.accelerated == {Op.GELU, Op.GELU_GRAD}
    for op in (Op.GELU, Op.GELU_GRAD):
        result = check.check_primitive(op, backend)
        assert result.status == check.PASS, f"{op.name}: {result.detail}"
    board = check.scoreboard(backend, check.check_backend(backend))
    assert re.search(r"^  GELU +PASS +11 cases$", board, re.MULTILINE), board
    assert re.search(r"^  GELU_GRAD +PASS +16 cases$", board, re.MULTILINE), board
    assert "accelerated primitives offered: GELU, GELU_GRAD" in board


def test_a_tanh_approximated_gelu_is_wrong_with_the_values_shown():
    """F.gelu(approximate="tanh")'s formula, a common mistake for GELU: within 1e-3, not the
    exact GELU to float32's precision."""
    class TanhGelu(PythonBackend):
        def gelu(self, x):
            c = math.sqrt(2 / math.pi)
            return python_backend.elementwise(
                lambda v: 0.5 * v * (1 + math.tanh(c * (v + 0.044715 * v ** 3))), (x,), x.dtype)

    result = check.check_primitive(Op.GELU, TanhGelu())
    assert result.status == check.WRONG and result.detail.startswith("case 1: float32 (2, 3)")
    assert "expected" in result.detail and "got" in result.detail


@pytest.mark.parametrize("mistake, first_wrong", [
    (lambda v, w: _normal_cdf(v) + v * _normal_pdf(v), "case 1: float32 (2, 3)"),  # forgets g
    (lambda v, w: w * _normal_cdf(v), "case 1: float32 (2, 3)"),  # forgets x phi(x)
    (lambda v, w: w * (_normal_cdf(v) + v * _normal_pdf(v)) if math.isfinite(v) else w,
     "case 11: float32 (21,)"),  # gives g at x = +-inf, where the spec (and PyTorch) gives nan
])
def test_a_wrong_gelu_grad_is_named_at_its_first_wrong_case(mistake, first_wrong):
    class WrongGeluGrad(PythonBackend):
        def gelu_grad(self, x, g):
            return python_backend.elementwise(mistake, (x, g), x.dtype)

    result = check.check_primitive(Op.GELU_GRAD, WrongGeluGrad())
    assert result.status == check.WRONG and result.detail.startswith(first_wrong), result.detail


def test_gelu_grad_refuses_mismatched_buffers_naming_the_op():
    """Checked above the line as a binary primitive's arguments, before any backend sees them."""
    cpu, python = NumpyBackend(), PythonBackend()
    x = TensorData.from_host(np.ones((2, 3), np.float32), cpu)
    problems = [
        (TensorData.from_host(np.ones((2, 3), np.float64), cpu), ValueError,
         "gelu_grad: expected equal dtypes, got float32 and float64"),
        (TensorData.from_host(np.ones((3, 2), np.float32), cpu), ValueError,
         r"gelu_grad: expected equal shapes, got \(2, 3\) and \(3, 2\)"),
        (TensorData.from_host(np.ones((2, 3), np.float32), python), RuntimeError,
         "gelu_grad: expected all tensors on the same device, got cpu and python"),
    ]
    for grad, error, message in problems:
        with pytest.raises(error, match=message):
            x.gelu_grad(grad)
    ints = TensorData.from_host(np.ones((2, 3), np.int64), cpu)
    with pytest.raises(ValueError, match=r"gelu_grad: expected a float dtype, got int64"):
        ints.gelu_grad(ints)
    with pytest.raises(ValueError, match=r"gelu: expected a float dtype, got int64"):
        ints.gelu()


def test_template_stubs_say_what_is_missing_and_where():
    template = MyBackend()
    for op in REQUIRED:
        assert op.method in vars(MyBackend), f"the template lacks {op.method}"
        method = getattr(template, op.method)
        with pytest.raises(NotImplementedError) as caught:
            method(*[None] * len(inspect.signature(method).parameters))
        pattern = (rf"not implemented yet: {op.name} \({op.kind.value}, [^)]+\) "
                   rf"- see edugrad/ops.py, Op\.{op.name}")
        assert re.fullmatch(pattern, str(caught.value)), str(caught.value)


def test_template_lists_primitives_in_the_order_to_implement_them():
    methods = [name for name in vars(MyBackend) if name in {op.method for op in REQUIRED}]
    kinds = [Op[name.upper()].kind for name in methods]
    assert kinds == sorted(kinds, key=LOAD_ORDER.index)
    assert methods[:2] == ["from_host", "to_host"]  # the checker needs these for everything


# ---- the pure-Python backend ---------------------------------------------------------------------

def test_python_backend_imports_no_numpy():
    tree = ast.parse(Path(python_backend.__file__).read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names]
    imported += [node.module for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module]
    assert not [name for name in imported if name.split(".")[0] in ("numpy", "cupy")]


def test_python_backend_implements_exactly_the_required_primitives():
    for op in REQUIRED:
        assert op.method in vars(PythonBackend), f"PythonBackend lacks {op.method}"
    for op in ACCELERATED:
        assert op.method not in vars(PythonBackend)
    assert PythonBackend().accelerated == frozenset()


def test_python_movement_ops_are_views_where_strides_allow():
    backend = PythonBackend()
    x = backend.from_host(np.arange(6).reshape(2, 3))
    permuted = backend.permute(x, (1, 0))
    flipped = backend.flip(x, (1,))
    shrunk = backend.shrink(x, ((0, 2), (1, 3)))
    expanded = backend.expand(backend.shrink(x, ((0, 1), (0, 3))), (4, 3))
    for view in (permuted, flipped, shrunk, expanded, backend.reshape(x, (3, 2))):
        assert view.storage is x.storage
    assert (permuted.strides, flipped.strides, flipped.offset) == ((1, 3), (3, -1), 2)
    assert (shrunk.offset, expanded.strides) == (1, (0, 1))
    assert backend.to_host(flipped) == [2, 1, 0, 5, 4, 3]
    copied = backend.reshape(permuted, (6,))  # not row-major in storage: must copy
    assert copied.storage is not x.storage and backend.to_host(copied) == [0, 3, 1, 4, 2, 5]


def test_python_float32_rounds_every_result_like_numpy():
    backend = PythonBackend()
    host = (np.array([1e8, 0.1, 3.0, 16777216.0], np.float32),
            np.array([1.0, 0.2, 7.0, 1.0], np.float32))
    x, y = (TensorData.from_host(a, backend) for a in host)
    got = x.add(y).sub(x).to_host()  # (1e8 + 1) - 1e8 is 0 in float32, 1 in float64
    expected = (host[0] + host[1]) - host[0]
    assert got.dtype == np.float32 and got.tolist() == expected.tolist()
    assert x.div(y).to_host().tolist() == (host[0] / host[1]).tolist()
    assert backend.to_host(backend.full((1,), 0.1, dtypes.float32)) == [float(np.float32(0.1))]


def test_python_rand_float32_stays_below_one():
    backend = PythonBackend()
    backend.seed(0)
    values = backend.to_host(backend.rand((20000,), dtypes.float32))
    assert max(values) < 1.0 and all(float(np.float32(v)) == v for v in values)
