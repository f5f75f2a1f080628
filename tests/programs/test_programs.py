"""Public PyTorch programs run unchanged but for their imports: each file here (not test_*,
not the helpers) runs with torch, then with `import torch` rewritten to `import edugrad as
torch` (rewrite.py), from the same initial weights (program_support.same_start); the losses it
records must agree to 1e-4 relative.

Each program's top says where it comes from, under which licence, and what was changed: the
data (small synthetic data of the same shapes, drawn with NumPy, the same in both runs), the
length of the run, and the two support lines. A program runs once for each of its `# argv:`
lines (makemore: once per model).
"""

from __future__ import annotations

import random
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

import program_support
from rewrite import to_edugrad

HERE = Path(__file__).resolve().parent
HELPERS = {"conftest.py", "program_support.py", "rewrite.py"}
PROGRAMS = sorted(p for p in HERE.glob("*.py") if p.name not in HELPERS
                  and not p.name.startswith("test_"))
RTOL = 1e-4


def argv_lines(source: str) -> list:
    """The program's command lines: one run per `# argv:` line (one run, no arguments, if none)."""
    found = [shlex.split(line[len("# argv:"):]) for line in source.splitlines()
             if line.startswith("# argv:")]
    return found or [[]]


def run_id(path: Path, argv: list) -> str:
    return path.stem + (f"[{argv[1]}]" if argv[:1] == ["--type"] else "")


RUNS = [pytest.param(path, argv, id=run_id(path, argv))
        for path in PROGRAMS for argv in argv_lines(path.read_text())]


def run_program(source: str, path: Path, argv: list, library: str, monkeypatch) -> list:
    """Run the program's text as __main__ and return the losses it recorded."""
    program_support.RUN.begin(library)
    np.random.seed(0)
    random.seed(0)  # a program that draws with Python's random draws the same in both runs
    monkeypatch.setattr(sys, "argv", [str(path), *argv])
    exec(compile(source, str(path), "exec"), {"__name__": "__main__", "__file__": str(path)})
    return list(program_support.RUN.losses)


@pytest.mark.parametrize("path, argv", RUNS)
def test_program_gives_torch_numbers(path, argv, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # programs that save a checkpoint save it here
    torch = pytest.importorskip("torch", reason="the programs are compared with PyTorch's run")
    torch.manual_seed(0)
    source = path.read_text()
    try:
        expected = run_program(source, path, argv, "torch", monkeypatch)
    finally:
        torch.set_default_device(None)  # a program may set it (the polynomial tutorial does)
    ours = run_program(to_edugrad(source), path, argv, "edugrad", monkeypatch)
    assert len(expected) > 0, "the program recorded no loss"
    assert len(ours) == len(expected)
    np.testing.assert_allclose(ours, expected, rtol=RTOL, atol=0,
                               err_msg=f"{path.name}: edugrad's losses differ from torch's")


def test_the_rewriter_changes_only_imports():
    source = ("import torch\nimport torch.nn as nn\nfrom torch import optim\n"
              "from torch.utils.data import DataLoader\nimport torch.nn.functional as F\n"
              "x = torch.zeros(2)  # import torch stays in a comment\n")
    assert to_edugrad(source) == (
        "import edugrad as torch\nimport edugrad.nn as nn\nfrom edugrad import optim\n"
        "from edugrad.utils.data import DataLoader\nimport edugrad.nn.functional as F\n"
        "x = torch.zeros(2)  # import torch stays in a comment\n")


@pytest.mark.parametrize("path", PROGRAMS + sorted((HERE / "pending").glob("*.py")),
                         ids=lambda p: p.stem)
def test_only_the_imports_are_rewritten(path):
    """The edugrad run is the program's own text but for its import lines, and none of those
    imports torch any more (pending programs included, so they are ready to move up)."""
    before = path.read_text().splitlines()
    after = to_edugrad(path.read_text()).splitlines()
    assert len(after) == len(before)
    changed = [old for old, new in zip(before, after) if old != new]
    assert changed, f"{path.name} imports no torch"
    assert all(line.lstrip().startswith(("import ", "from ")) for line in changed)
    assert not any(line.lstrip().startswith(("import torch", "from torch")) for line in after)
