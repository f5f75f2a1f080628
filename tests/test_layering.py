"""Who may import whom (../shared/DESIGN.md), kept true by reading every module's imports (the
AST, not a grep), with no exemption list:

    ops, dtypes          the spec: import nothing of edugrad
    backend              the interface: the spec only
    backends/*           the spec, the interface, their array library: never TensorData, Function,
                         Tensor, nn or optim (the CuPy backend subclasses the NumPy one)
    data                 TensorData: never Function or Tensor, no autograd below the line
    function             never Tensor or nn
    tensor (and its      never nn, optim, utils or the tools
      layer)
    nn, optim, utils     never a concrete backend (the registry, edugrad.backend, finds them);
                         applications the public API only
    checking, doctor     the tools, on top: nothing else imports them

Beyond the layers: no module above the backend line imports NumPy except those that convert
host data (NUMPY_ALLOWED, each with its reason); no third-party library outside the modules
named for it; the module graph has no cycle; and imports sit at the top of a module, except
where a top-level one would close a cycle or where an optional dependency is loaded only when
used (OPTIONAL_LAZY, each with its reason). Packaging: every package is installed, importing
edugrad is silent and loads no CuPy and no checking tool, `backends` is not importable under its
folder name.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from edugrad.function import Function

ROOT = Path(__file__).resolve().parents[1]

# ---- the layers ----------------------------------------------------------------------------------
SPEC = {"edugrad.ops", "edugrad.dtypes", "edugrad.devices"}
INTERFACE = {"edugrad.backend"}
TENSORDATA = {"edugrad.data"}
FUNCTION = {"edugrad.function"}
TENSOR_LAYER = {"edugrad.tensor", "edugrad.math", "edugrad.shape", "edugrad.ordering",
                "edugrad.linalg", "edugrad.sparse",
                "edugrad.views", "edugrad.factories", "edugrad.autograd", "edugrad.anomaly",
                "edugrad.gradcheck", "edugrad.size", "edugrad.runtime"}
API_PACKAGES = ("edugrad.nn", "edugrad.optim", "edugrad.utils")
API_MODULES = {"edugrad", "edugrad.serialization",  # the package itself; save and load
               "edugrad.capture",  # edugrad.jit: records a step's primitive calls, replays them
               "edugrad.cuda", "edugrad.amp", "edugrad.accelerator"}  # PyTorch's device probes
API_MODULES |= {"edugrad.special"}  # torch.special's names
TOOL_PACKAGES = ("edugrad.checking", "edugrad.viz")  # viz: the teaching tools, on top too
TOOL_MODULES = {"edugrad.doctor"}
CHECKING = ("edugrad.checking", "edugrad.doctor")  # check backends; only each other use them

# what applications may import: the API a PyTorch user knows, no internals
PUBLIC_API = {"edugrad", "edugrad.nn", "edugrad.nn.functional", "edugrad.nn.init",
              "edugrad.nn.utils", "edugrad.optim", "edugrad.optim.lr_scheduler",
              "edugrad.utils", "edugrad.utils.data", "edugrad.autograd", "edugrad.viz"}

# NumPy above the backend line, only to convert host data
NUMPY_ALLOWED = {
    "edugrad.data": "from_host and to_host: TensorData's one door to and from the host",
    "edugrad.tensor": "user input (lists, NumPy arrays) in; numpy(), tolist() and printing out",
    "edugrad.shape": "a boolean mask becomes indices on the host (the result's shape depends "
                     "on the data, as in PyTorch)",
    "edugrad.factories": "arange, linspace and eye build host values, loaded with FROM_HOST",
    "edugrad.serialization": "save and load read and write tensors' host bytes",
    "edugrad.gradcheck": "finite differences on host copies of the inputs, compared on the host",
    "edugrad.checking.conformance": "the cases are host arrays, compared with the NumPy "
                                    "backend's results on the host",
    "edugrad.checking.lockstep": "every primitive call's output is read back and compared on "
                                 "the host",
}
# every third-party library the library imports, and where (a backend's own array library is
# part of the backend rule)
THIRD_PARTY = {
    "numpy": {*NUMPY_ALLOWED, "edugrad.backends.numpy_backend"},
    "cupy": {"edugrad.backends.cupy_backend", "edugrad.doctor", "edugrad.cuda"},
    "matplotlib": {"edugrad.viz.monitor"},
}

# imports inside a function that load an optional dependency when it is used, and why there
OPTIONAL_LAZY = {
    ("edugrad.doctor", "cupy"): "the doctor reports whether CuPy imports and what it says; at the "
                                "top, a broken CuPy (what it diagnoses) would stop it from "
                                "running, and every run would load CUDA's libraries",
    ("edugrad.cuda", "cupy"): "torch.cuda.is_available() and friends ask CuPy only when called: "
                              "importing edugrad imports no CuPy",
    ("edugrad.viz.monitor", "matplotlib"): "only GradientMonitor.plot draws, and matplotlib is "
                                           "an optional extra (edugrad[mnist])",
}


def module_name(path: Path) -> str:
    """edugrad/nn/functional.py -> edugrad.nn.functional; backends/x.py -> edugrad.backends.x."""
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[0] == "backends":
        parts = ["edugrad"] + parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def library_paths() -> list[Path]:
    paths = sorted((ROOT / "edugrad").rglob("*.py")) + sorted((ROOT / "backends").glob("*.py"))
    return [p for p in paths if "__pycache__" not in p.parts]


MODULES = {module_name(p): p for p in library_paths()}


def in_package(name: str, packages) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def layer(name: str) -> str | None:
    """The layer of a module of edugrad, or None if it has none yet."""
    if name in SPEC:
        return "spec"
    if name in INTERFACE:
        return "interface"
    if in_package(name, ("edugrad.backends",)):
        return "backends"
    if name in TENSORDATA:
        return "TensorData"
    if name in FUNCTION:
        return "Function"
    if name in TENSOR_LAYER:
        return "Tensor"
    if name in API_MODULES or in_package(name, API_PACKAGES):
        return "API"
    if name in TOOL_MODULES or in_package(name, TOOL_PACKAGES):
        return "tools"
    return None


# ---- reading the imports -------------------------------------------------------------------------
class Import:
    """One imported module: its name, the line, and whether the import is inside a function
    (`lazy_export`: inside a module's __getattr__, which hands out names of another module)."""

    def __init__(self, module: str, line: int, inner: bool, lazy_export: bool = False) -> None:
        self.module, self.line, self.inner, self.lazy_export = module, line, inner, lazy_export
        self.root = module.split(".")[0]

    def __repr__(self) -> str:
        return f"{self.module} (line {self.line}{', in a function' if self.inner else ''})"


def imports(path: Path, name: str) -> list[Import]:
    """Every module `path` imports, at the top or inside functions. `from edugrad import dtypes`
    imports edugrad.dtypes (not all of edugrad); relative imports are resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node, inner: bool, lazy_export: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(alias.name, child.lineno, inner, lazy_export)
                             for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: from .numpy_backend import ...
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - child.level + 1] + ([base] if base else []))
                submodules = [f"{base}.{alias.name}" for alias in child.names
                              if f"{base}.{alias.name}" in MODULES]
                found.extend(Import(module, child.lineno, inner, lazy_export)
                             for module in submodules or [base])
            function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            module_getattr = function and node is tree and child.name == "__getattr__"
            visit(child, inner or function, lazy_export or module_getattr)

    tree = ast.parse(path.read_text(), str(path))
    visit(tree, False, False)
    return found


IMPORTS = {name: imports(path, name) for name, path in MODULES.items()}


def edugrad_imports(name: str) -> list[Import]:
    return [i for i in IMPORTS[name] if i.root == "edugrad" and i.module != name]


# ---- the never-rules -----------------------------------------------------------------------------
def allowed(name: str):
    """(the rule for module `name`, in words; which edugrad modules it may import)."""
    mine = layer(name)
    below_function = SPEC | INTERFACE | TENSORDATA
    if mine == "spec":
        return "the spec (ops, dtypes) imports nothing of edugrad", lambda m: False
    if mine == "interface":
        return "the interface (backend.py) imports only the spec", lambda m: m in SPEC
    if mine == "backends":
        return ("a backend imports only the spec and the interface (and the NumPy backend, "
                "which the CuPy backend extends): never TensorData, Function, Tensor, nn or "
                "optim", lambda m: m in SPEC | INTERFACE or in_package(m, ("edugrad.backends",)))
    if mine == "TensorData":
        return ("TensorData (data.py) never imports Function or Tensor (no autograd below the "
                "line), nor a concrete backend (the registry finds it)",
                lambda m: m in SPEC | INTERFACE)
    if mine == "Function":
        return "Function (function.py) never imports Tensor or nn", lambda m: m in below_function
    if mine == "Tensor":
        return ("the Tensor layer (tensor.py and its mixins, factories, autograd) never imports "
                "nn, optim, utils, a concrete backend or the tools",
                lambda m: m in below_function | FUNCTION | TENSOR_LAYER)
    if mine == "API":
        # the package edugrad.backends itself holds no backend, only PyTorch's torch.backends
        # flags (edugrad.backends.cudnn, ...), so importing it loads no array library
        return ("nn, optim, utils and edugrad itself never import a concrete backend (the "
                "registry finds it) nor the checking tools",
                lambda m: m == "edugrad.backends"
                or not in_package(m, ("edugrad.backends",) + CHECKING))
    return "the tools sit on top: they may import anything", lambda m: True


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_follow_the_layers(name):
    assert layer(name), (f"{name} is in no layer: place it in tests/test_layering.py's table "
                         "(and say in its docstring what it may import)")
    rule, may_import = allowed(name)
    wrong = [i for i in edugrad_imports(name) if not may_import(i.module)]
    assert not wrong, f"{name} imports {wrong}: {rule}"


def test_only_the_checking_tools_import_the_checking_tools():
    users = {name for name in MODULES if not in_package(name, CHECKING)
             for i in edugrad_imports(name) if in_package(i.module, CHECKING)}
    assert not users, f"{sorted(users)} import the checking tools, which sit on top"


@pytest.mark.parametrize("path", sorted((ROOT / "applications").glob("*.py")),
                         ids=lambda p: p.name)
def test_applications_use_the_public_api_only(path):
    used = [i for i in imports(path, f"applications.{path.stem}") if i.root == "edugrad"]
    private = [i for i in used if i.module not in PUBLIC_API]
    assert not private, (f"applications/{path.name} imports {private}: applications use the "
                         f"public API only ({', '.join(sorted(PUBLIC_API))})")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_third_party_libraries_only_where_named(name):
    stdlib = sys.stdlib_module_names
    for i in IMPORTS[name]:
        if i.root in ("edugrad", "__future__") or i.root in stdlib:
            continue
        library = "cupy" if i.root == "cupyx" else i.root
        where = THIRD_PARTY.get(library)
        assert where is not None, f"{name} imports {i}: edugrad depends on NumPy only " \
                                  "(CuPy and matplotlib are optional)"
        assert name in where, (
            f"{name} imports {i}, which only {sorted(where)} may import"
            + (": no NumPy above the backend line except to convert host data (NUMPY_ALLOWED)"
               if library == "numpy" else ""))


def test_the_pure_python_backend_uses_no_array_library():
    roots = {i.root for i in IMPORTS["edugrad.backends.python_backend"]}
    assert roots <= set(sys.stdlib_module_names) | {"edugrad", "__future__"}, roots


def test_every_numpy_exception_is_used():
    unused = {name for name in NUMPY_ALLOWED
              if not any(i.root == "numpy" for i in IMPORTS.get(name, []))}
    assert not unused, f"NUMPY_ALLOWED names modules that do not import NumPy: {sorted(unused)}"


def test_every_function_lives_in_function_py():
    """One derivative, one place: every Function of the library is in edugrad/function.py."""
    for name in MODULES:
        if not in_package(name, ("edugrad.backends.cupy_backend",)):  # needs CuPy
            importlib.import_module(name)
    found, todo = [], list(Function.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    elsewhere = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in found
                       if in_package(cls.__module__, ("edugrad",))
                       and cls.__module__ != "edugrad.function")
    assert not elsewhere, f"Functions outside edugrad/function.py: {elsewhere}"


# ---- no cycles, and imports at the top --------------------------------------------------------
def module_graph() -> dict[str, set[str]]:
    """Module -> the edugrad modules it imports at its top level (what runs at import time)."""
    return {name: {i.module for i in edugrad_imports(name) if not i.inner and i.module in MODULES}
            for name in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle [a, b, ..., a] if the graph has one (depth-first, with an explicit stack)."""
    state = {}  # name -> "open" while on the current path, "done" after
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [], [(start, iter(sorted(graph[start])))]
        state[start] = "open"
        path.append(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = "done"
                stack.pop()
                path.pop()
            elif state.get(child) == "open":
                return path[path.index(child):] + [child]
            elif child not in state:
                state[child] = "open"
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return None


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


def test_the_module_graph_has_no_cycle():
    cycle = find_cycle(module_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_sit_at_the_top(name):
    """An import inside a function hides a dependency from the reader, and one that would make
    a cycle at the top is a cycle all the same. So it is allowed in two places only: a module's
    __getattr__ that hands out another module's names under this one's (PEP 562), where a
    top-level import would close a cycle (edugrad.autograd.gradcheck: PyTorch's name for a
    check that builds on autograd); and an optional dependency loaded when used
    (OPTIONAL_LAZY, each with its reason)."""
    graph = module_graph()
    for i in IMPORTS[name]:
        if not i.inner or (name, i.root) in OPTIONAL_LAZY:
            continue
        if i.root == "edugrad" and i.lazy_export:
            assert reaches(graph, i.module, name), (
                f"{name} imports {i} lazily though no cycle forces it: import it at the top")
            continue
        raise AssertionError(
            f"{name} imports {i}: move it to the top of the module; if that makes an import "
            "cycle, untangle the two modules (a function that both need goes to the lower one)")


def is_import(statement) -> bool:
    """An import, or a try block of imports (cupy_backend.py's, which explains a missing CuPy)."""
    if isinstance(statement, ast.Try):
        return all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in statement.body)
    return isinstance(statement, (ast.Import, ast.ImportFrom))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_level_imports_come_first(name):
    """No import below the code: the reader sees every dependency at the top."""
    body = ast.parse(MODULES[name].read_text()).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    code = next((s for s in body if not is_import(s)), None)
    late = [s for s in body if is_import(s) and code is not None and s.lineno > code.lineno]
    assert not late, (f"{name}: the import on line {late[0].lineno} comes after code (line "
                      f"{code.lineno}); move it to the top")


def test_the_checker_sees_imports_where_they_are():
    found = {i.module: i for i in IMPORTS["edugrad.tensor"]}
    assert {"edugrad.function", "numpy", "edugrad.dtypes"} <= set(found)
    assert not found["numpy"].inner
    lazy = {i.module: i for i in IMPORTS["edugrad.autograd"]}
    assert lazy["edugrad.gradcheck"].inner and lazy["edugrad.gradcheck"].lazy_export
    assert "numpy" in {i.module for i in IMPORTS["edugrad.gradcheck"]}


# ---- packaging and import-time behaviour -----------------------------------------------------
def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_import_is_silent_and_loads_no_cupy_nor_checking_tools(tmp_path):
    code = ("import sys, edugrad, edugrad.nn, edugrad.optim, edugrad.utils.data\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cupy', 'cupyx')\n"
            "             or m.startswith(('edugrad.checking', 'edugrad.doctor'))))")
    result = run_python(code, cwd=tmp_path)  # not the repository: the installed package
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n", f"importing edugrad printed or loaded {result.stdout}"
    assert result.stderr == "", f"importing edugrad wrote to stderr: {result.stderr}"


@pytest.mark.parametrize("switch, calls", [(None, "0"), ("0", "0"), ("1", "1")])
def test_the_numpy_backend_changes_malloc_only_when_asked(tmp_path, switch, calls):
    """keep_freed_memory_for_reuse changes glibc's malloc for the whole process: only with
    EDUGRAD_KEEP_FREED_MEMORY=1, read once, when the first "cpu" backend is made."""
    code = ("import edugrad.backends.numpy_backend as numpy_backend\n"
            "calls = []\n"
            "numpy_backend.keep_freed_memory_for_reuse = lambda: calls.append(1)\n"
            "import edugrad\n"
            "edugrad.ones(2) + 1\n"
            "numpy_backend.NumpyBackend('cpu')\n"
            "print(len(calls))")
    env = {key: value for key, value in os.environ.items() if key != "EDUGRAD_KEEP_FREED_MEMORY"}
    if switch is not None:
        env["EDUGRAD_KEEP_FREED_MEMORY"] = switch
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout == f"{calls}\n", result.stderr


def test_pytorchs_gradcheck_names_reach_the_gradcheck_module(tmp_path):
    code = ("import edugrad.autograd as autograd, edugrad.gradcheck as g\n"
            "from edugrad.autograd import gradgradcheck\n"
            "print(autograd.gradcheck is g.gradcheck, gradgradcheck is g.gradgradcheck)")
    result = run_python(code, cwd=tmp_path)
    assert result.stdout == "True True\n", result.stderr


def test_every_package_directory_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = config["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    assert setuptools["package-dir"]["edugrad.backends"] == "backends"
    found = {module_name(init) for init in list((ROOT / "edugrad").rglob("__init__.py"))
             + [ROOT / "backends" / "__init__.py"]}
    assert found == listed, (f"not in pyproject.toml's packages: {sorted(found - listed)}; "
                             f"listed but missing: {sorted(listed - found)}")


def test_backends_folder_holds_backends_and_the_template_only():
    names = {path.stem for path in (ROOT / "backends").glob("*.py")}
    assert names == {"__init__", "numpy_backend", "cupy_backend", "python_backend", "template"}


def test_backends_folder_cannot_be_imported_as_top_level_backends():
    result = run_python("import backends", cwd=ROOT)
    assert result.returncode != 0
    assert "ImportError: import edugrad.backends, not backends" in result.stderr
    ok = run_python("import edugrad.backends.numpy_backend as m; print(m.NumpyBackend.name)",
                    cwd=ROOT)
    assert ok.returncode == 0 and ok.stdout == "cpu\n", ok.stderr
