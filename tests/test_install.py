"""The editable install (`pip install -e .`, built by build_backend.py) in the situation that broke
it: Python started in the folder that holds the clone, whose folder is named `edugrad`.

Python searches the current folder first and, without the fix, imports the clone's folder as an
empty namespace package (`module 'edugrad' has no attribute 'tensor'`). Each test runs Python in a
subprocess from a temporary folder that holds a link named `edugrad` to this checkout.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import urllib.parse
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMPORT = ("import edugrad, edugrad.backends.numpy_backend; "
          "print(edugrad.tensor([1.5, 2.5]).sum().item()); print(edugrad.__file__)")


@pytest.fixture
def beside_the_clone(tmp_path) -> Path:
    """A folder holding `edugrad`, a link to this checkout, as a clone's parent folder does."""
    try:
        (tmp_path / "edugrad").symlink_to(ROOT, target_is_directory=True)
    except OSError as error:  # Windows without the right to make links
        pytest.skip(f"cannot make a symbolic link here ({error})")
    return tmp_path


def run_python(code: str, cwd: Path, *options: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([sys.executable, *options, "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def editable_checkout() -> Path | None:
    """The folder this interpreter's edugrad is installed from in editable mode, else None."""
    # every copy of the metadata on sys.path: the checkout's own edugrad.egg-info has no
    # direct_url.json, the installed one (in site-packages) does
    for distribution in metadata.distributions(name="edugrad"):
        info = json.loads(distribution.read_text("direct_url.json") or "{}")
        if info.get("dir_info", {}).get("editable") and info["url"].startswith("file://"):
            return Path(urllib.parse.unquote(info["url"][len("file://"):])).resolve()
    return None


def test_the_installed_edugrad_imports_beside_the_clone(beside_the_clone):
    checkout = editable_checkout()
    if checkout != ROOT:
        pytest.skip(f"edugrad is not installed in editable mode from {ROOT} (from {checkout})")
    result = run_python(IMPORT, beside_the_clone)
    assert result.returncode == 0, (
        f"{result.stderr}\nPython started beside the clone does not import edugrad. If the "
        f"editable install predates build_backend.py, run `pip install -e .` again in {ROOT}")
    total, location = result.stdout.split()
    assert float(total) == 4.0 and Path(location).resolve() == ROOT / "edugrad" / "__init__.py"


@pytest.fixture(scope="module")
def editable_wheel(tmp_path_factory) -> Path:
    """The editable wheel build_backend.py makes, unpacked into a folder (a site-packages)."""
    setuptools = pytest.importorskip("setuptools", reason="building the wheel needs setuptools")
    version = tuple(int(part) for part in setuptools.__version__.split(".")[:2])
    if version < (70, 1) and importlib.util.find_spec("wheel") is None:
        pytest.skip(f"setuptools {setuptools.__version__} builds wheels only with the wheel "
                    "package (pip builds in an isolated environment with a newer setuptools)")
    out = tmp_path_factory.mktemp("wheel")
    code = f"import build_backend; print(build_backend.build_editable({str(out)!r}))"
    built = run_python(code, ROOT)
    assert built.returncode == 0, built.stderr
    site = out / "site"
    with zipfile.ZipFile(out / built.stdout.split()[-1]) as wheel:
        wheel.extractall(site)
    return site


def run_with_site(site: Path, cwd: Path, code: str = IMPORT) -> subprocess.CompletedProcess:
    """Python without its own site-packages' .pth files (-S), with NumPy on the path and the
    unpacked wheel as a site folder, whose .pth files run as at start-up."""
    numpy_home = Path(pytest.importorskip("numpy").__file__).parents[1]
    setup = (f"import site, sys; sys.path.append({str(numpy_home)!r}); "
             f"site.addsitedir({str(site)!r})")
    return run_python(f"{setup}; {code}", cwd, "-S")


def test_the_editable_wheel_imports_beside_the_clone(editable_wheel, beside_the_clone):
    result = run_with_site(editable_wheel, beside_the_clone)
    assert result.returncode == 0, result.stderr
    total, location = result.stdout.split()
    assert float(total) == 4.0 and Path(location).resolve() == ROOT / "edugrad" / "__init__.py"


def test_without_the_fix_the_clone_folder_shadows_the_package(editable_wheel, beside_the_clone):
    """The fault, reproduced: setuptools' editable finder alone loses to the current folder."""
    for name in ("__editable___edugrad_first.pth", "__editable___edugrad_first.py"):
        (editable_wheel / name).rename(editable_wheel.parent / name)
    try:
        result = run_with_site(editable_wheel, beside_the_clone, "import edugrad; edugrad.tensor")
        assert "module 'edugrad' has no attribute 'tensor'" in result.stderr, result.stderr
        elsewhere = run_with_site(editable_wheel, editable_wheel.parent)  # no clone beside
        assert elsewhere.returncode == 0, elsewhere.stderr
    finally:
        for name in ("__editable___edugrad_first.pth", "__editable___edugrad_first.py"):
            (editable_wheel.parent / name).rename(editable_wheel / name)


def test_the_wheel_lists_the_added_files_in_its_record(editable_wheel):
    record = next(editable_wheel.glob("*.dist-info")) / "RECORD"
    names = [line.split(",")[0] for line in record.read_text().splitlines()]
    assert "__editable___edugrad_first.py" in names and "__editable___edugrad_first.pth" in names
