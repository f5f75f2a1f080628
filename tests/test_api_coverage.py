"""scripts/api_coverage.py: the table of PyTorch names that tests/programs use, and whether
edugrad has each. The README's copy must be the one the script makes from today's code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import edugrad

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    path = ROOT / "scripts" / "api_coverage.py"
    spec = importlib.util.spec_from_file_location("api_coverage", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return load_script()


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="the script asks PyTorch which names are "
                                               "torch.Tensor's")


def test_readme_table_is_current(script, torch):
    made = script.markdown(script.coverage(torch, edugrad))
    shown = script.readme_table((ROOT / "README.md").read_text())
    assert shown == made, ("README.md's API table is out of date: run "
                           "`python scripts/api_coverage.py --write-readme`")


def test_names_are_found_through_every_kind_of_import(script, torch, tmp_path):
    program = tmp_path / "program.py"
    program.write_text(
        "import torch\nimport torch.nn as nn\nfrom torch.nn import functional as F\n"
        "from torch.utils.data import DataLoader\nimport numpy as np\n"
        "x = torch.zeros(3).view(3, 1)\nlayer = nn.Linear(1, 2)\ny = F.relu(layer(x))\n"
        "y.sum().backward()\nprint(x.shape, np.zeros(2).shape)\n"
        "torch.nn.init.zeros_(layer.bias)\n"
        "seen = set()\nseen.add(1)\nrow = x.tolist()\nrow.index(0)\n")  # Python's, not torch's
    found = script.names_used(program, torch)
    assert found == {
        ("torch", "zeros"), ("torch.nn", "Linear"), ("torch.nn.functional", "relu"),
        ("torch.utils.data", "DataLoader"), ("torch.nn", "init.zeros_"),
        ("torch.nn", "functional"),  # the import `from torch.nn import functional` itself
        ("torch.Tensor", "view"), ("torch.Tensor", "sum"), ("torch.Tensor", "backward"),
        ("torch.Tensor", "shape"), ("torch.Tensor", "tolist"),
    }


def test_objects_of_the_programs_own_classes_are_not_taken_for_tensors(script, torch, tmp_path):
    """The seq2seq tutorial's `input_lang.name` is its Lang's, not torch.Tensor.name; a name
    also bound to something else (micrograd's test: a Value, then a tensor) still counts."""
    program = tmp_path / "program.py"
    program.write_text(
        "import torch\nclass Lang:\n    pass\nclass Value:\n    pass\n"
        "lang = Lang()\nprint(lang.name)\n"
        "x = Value()\nx = torch.ones(1)\nx.requires_grad = True\n")
    found = script.names_used(program, torch)
    assert found == {("torch", "ones"), ("torch.Tensor", "requires_grad")}


def test_edugrad_is_asked_with_hasattr(script, torch, monkeypatch):
    rows = {name: present for name, _, present in script.coverage(torch, edugrad)}
    assert rows["torch.no_grad"] is True
    monkeypatch.delattr(edugrad, "no_grad")  # the answer comes from the code, not a list
    rows = {name: present for name, _, present in script.coverage(torch, edugrad)}
    assert rows["torch.no_grad"] is False


def test_command_line_prints_the_table(script, torch, capsys):
    assert script.main([]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["name", "programs", "edugrad"]
    assert "names used by" in out.splitlines()[-1]
