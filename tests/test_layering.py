"""The layering of STYLE.md, kept true by reading every module's imports (the AST, not a grep).

    ops, dtypes          import nothing from edugrad
    backend              ops, dtypes
    backends/*           edugrad.ops, edugrad.backend, edugrad.dtypes, their array library
    data (TensorData)    backend
    function             data
    autograd, tensor     function
    nn, optim, utils     tensor

No module above data.py imports NumPy, except the few that convert user input and output
(NUMPY_ALLOWED). Packaging: every package is installed, importing edugrad is silent and imports
no CuPy, and `backends` cannot be imported under its folder name.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# the layer each module belongs to: a module may import modules of its own layer and of the
# layers in its `may_import` set; a unit is the name after "edugrad." ("nn" for edugrad.nn.*)
BELOW_FUNCTION = {"function", "data", "backend", "dtypes", "ops"}
TENSOR_LAYER = {"autograd", "anomaly", "views", "tensor", "math", "shape", "factories"}
MAY_IMPORT = {
    "ops": set(),
    "dtypes": set(),
    "backend": {"ops", "dtypes"},
    "backends": {"ops", "backend", "dtypes", "backends"},
    "data": {"backend", "dtypes", "ops"},
    "function": {"data", "dtypes"},
    **{unit: TENSOR_LAYER | BELOW_FUNCTION for unit in TENSOR_LAYER},
}
TOP = {"nn", "optim", "utils", "viz", "serialization", "doctor", "checking", "gradcheck",
       "__init__"}  # above: anything

# tools that live in backends/ to check a backend, not backends themselves: they drive
# TensorData and whole training steps, so they sit on top like the tests do
BACKEND_TOOLS = {"check", "conformance", "lockstep"}

# which modules may import which array library (host conversion above data.py; the backends
# their own; the backend tools compare with NumPy)
NUMPY_ALLOWED = {
    "edugrad.data", "edugrad.tensor", "edugrad.shape", "edugrad.factories", "edugrad.gradcheck",
    "edugrad.serialization", "edugrad.backends.numpy_backend", "edugrad.backends.cupy_backend",
    *(f"edugrad.checking.{tool}" for tool in BACKEND_TOOLS),
}
CUPY_ALLOWED = {"edugrad.backends.cupy_backend", "edugrad.doctor"}  # the doctor reports versions


def module_name(path: Path) -> str:
    """edugrad/nn/functional.py -> edugrad.nn.functional; backends/x.py -> edugrad.backends.x."""
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[0] == "backends":
        parts = ["edugrad"] + parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def modules():
    paths = sorted((ROOT / "edugrad").rglob("*.py")) + sorted((ROOT / "backends").glob("*.py"))
    return [p for p in paths if "__pycache__" not in p.parts]


def imports(path: Path, name: str) -> list[tuple[str, int]]:
    """Every module `path` imports, anywhere in it (functions included), with its line."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .numpy_backend import ...
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            submodules = [f"{base}.{alias.name}" for alias in node.names
                          if _is_module(f"{base}.{alias.name}")]
            # `from edugrad import dtypes` depends on edugrad.dtypes, not on all of edugrad
            found += [(module, node.lineno) for module in submodules or [base]]
    return found


def _is_module(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "edugrad" or len(parts) < 2:
        return False
    folder = ROOT / ("backends" if parts[1] == "backends" else "edugrad")
    rest = parts[2:] if parts[1] == "backends" else parts[1:]
    target = folder.joinpath(*rest) if rest else folder
    return target.with_suffix(".py").exists() or (target / "__init__.py").exists()


def unit(name: str) -> str:
    """The layer-table name of a module: edugrad.nn.functional -> nn; edugrad -> __init__."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


MODULES = [(module_name(p), p) for p in modules()]


@pytest.mark.parametrize("name,path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_follow_the_layers(name, path):
    mine = unit(name)
    if mine == "backends" and name.rsplit(".", 1)[-1] in BACKEND_TOOLS | {"backends"}:
        mine = "__init__"  # the tools, and the package's own __init__, sit on top
    assert mine in MAY_IMPORT or mine in TOP, (
        f"{name} is in no layer: add it to MAY_IMPORT or TOP in tests/test_layering.py "
        f"(and say in its docstring what it may import)")
    for imported, line in imports(path, name):
        root = imported.split(".")[0]
        if root == "numpy":
            assert name in NUMPY_ALLOWED, f"{name}:{line} imports NumPy above the data layer"
        elif root in ("cupy", "cupyx"):
            assert name in CUPY_ALLOWED, f"{name}:{line} imports CuPy"
        elif root == "edugrad" and mine not in TOP:
            theirs = unit(imported)
            allowed = MAY_IMPORT[mine] | ({mine} if mine in TENSOR_LAYER | {"backends"} else set())
            assert theirs in allowed, (
                f"{name}:{line} imports {imported}: the {mine} layer may import only "
                f"{sorted(allowed) or 'nothing from edugrad'}")
        elif root == "backends":
            raise AssertionError(f"{name}:{line} imports `backends`; import edugrad.backends")


def test_the_table_covers_every_module_and_the_checker_sees_imports():
    units = {unit(name) for name, _ in MODULES}
    assert {"ops", "dtypes", "backend", "data", "function", "tensor", "autograd"} <= units
    found = dict(imports(ROOT / "edugrad" / "tensor.py", "edugrad.tensor"))
    assert "edugrad.function" in found and "numpy" in found and "edugrad.dtypes" in found
    assert "numpy" in dict(imports(ROOT / "edugrad" / "gradcheck.py", "edugrad.gradcheck"))


def test_python_backend_uses_no_numpy():
    path = ROOT / "backends" / "python_backend.py"
    if not path.exists():
        pytest.skip("no pure-Python backend yet")
    roots = {name.split(".")[0] for name, _ in imports(path, "edugrad.backends.python_backend")}
    assert "numpy" not in roots


# ---- packaging and import-time behaviour ---------------------------------------------------------
def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_import_is_silent_and_imports_no_cupy(tmp_path):
    code = ("import sys, edugrad, edugrad.nn, edugrad.optim, edugrad.utils.data\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cupy', 'cupyx')))")
    result = run_python(code, cwd=tmp_path)  # not the repository: the installed package
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n", "importing edugrad printed something or imported CuPy"
    assert result.stderr == "", f"importing edugrad wrote to stderr: {result.stderr}"


def test_every_package_directory_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = config["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    assert setuptools["package-dir"]["edugrad.backends"] == "backends"
    found = {module_name(init) for init in list((ROOT / "edugrad").rglob("__init__.py"))
             + [ROOT / "backends" / "__init__.py"]}
    assert found == listed, (f"not in pyproject.toml's packages: {sorted(found - listed)}; "
                             f"listed but missing: {sorted(listed - found)}")


def test_backends_folder_cannot_be_imported_as_top_level_backends():
    result = run_python("import backends", cwd=ROOT)
    assert result.returncode != 0
    assert "ImportError: import edugrad.backends, not backends" in result.stderr
    ok = run_python("import edugrad.backends.numpy_backend as m; print(m.NumpyBackend.name)",
                    cwd=ROOT)
    assert ok.returncode == 0 and ok.stdout == "cpu\n", ok.stderr
