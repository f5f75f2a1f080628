"""Every Python snippet in the README and the backend guide runs, so the docs cannot drift.

A snippet's `print(...)` lines that end in a comment like `# tensor([8., 11.])` are checked
too: the printed text must start with what the comment shows.

The backend guide's steps are blocks to paste into `my_backend.py`, a copy of
backends/template.py (their first line says so: `# my_backend.py, step N. ...`). They are not
run on their own: the last test pastes them in order into the untouched template, as the guide
tells a learner to, runs the checker's command line after each, and finds every line of the
guide's printed output (the ```text block after the step) in what the checker prints.
"""

import ast
import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", os.path.join("backends", "README.md")]
GUIDE = Path(ROOT) / "backends" / "README.md"
STEP = "# my_backend.py, step"  # the first line of a block to paste into the learner's file


def snippets():
    for doc in DOCS:
        path = os.path.join(ROOT, doc)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            text = f.read()
        for number, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
            if not block.startswith(STEP):
                yield pytest.param(doc, block, id=f"{doc}#{number}")


def expected_outputs(block: str) -> list:
    """`print(x.grad)   # tensor([8., 11.])  = y + 2x` -> 'tensor([8., 11.])'."""
    found = []
    for line in block.splitlines():
        match = re.match(r"\s*print\(.*\)\s*#\s*(\S.*?)(\s{2,}.*)?$", line)
        if match:
            found.append(match.group(1))
    return found


@pytest.mark.parametrize("doc, block", list(snippets()))
def test_snippet_runs(doc, block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # snippets that write files write them here
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, doc, "exec"), {"__name__": "__snippet__"})
    printed = [line for line in out.getvalue().splitlines() if line.strip()]
    for want in expected_outputs(block):
        assert any(line.startswith(want) for line in printed), (
            f"{doc}: expected a printed line starting with {want!r}, got {printed}"
        )


# ---- the backend guide, step by step ------------------------------------------------------------

def paste(source: str, block: str) -> str:
    """`block` pasted into `source` as the guide says: its imports (those not there yet) and
    helpers below source's imports; each method of its `class MyBackend` in place of the
    method of the same name in source's class MyBackend, or first in the class if new."""
    lines, pasted = source.splitlines(), block.splitlines()

    def text(node) -> list:
        return pasted[node.lineno - 1:node.end_lineno]

    top, methods = [], {}
    for node in ast.parse(block).body:
        if isinstance(node, ast.ClassDef) and node.name == "MyBackend":
            methods = {item.name: text(item) for item in node.body
                       if isinstance(item, ast.FunctionDef)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            top += [line for line in text(node) if line not in lines]
        else:
            top += ["", ""] + text(node)
    tree = ast.parse(source)
    target = next(node for node in tree.body
                  if isinstance(node, ast.ClassDef) and node.name == "MyBackend")
    stubs = {item.name: item for item in target.body if isinstance(item, ast.FunctionDef)}
    first = next(iter(stubs.values())).lineno - 1
    edits = [(stubs[name].lineno - 1, stubs[name].end_lineno, body) if name in stubs
             else (first, first, body + [""]) for name, body in methods.items()]
    below_imports = max(node.end_lineno for node in tree.body
                        if isinstance(node, (ast.Import, ast.ImportFrom)))
    edits.append((below_imports, below_imports, top))
    for start, end, body in sorted(edits, key=lambda edit: edit[:2], reverse=True):
        lines[start:end] = body  # from the bottom up, so earlier line numbers stay right
    return "\n".join(lines) + "\n"


def guide_steps() -> list:
    """(the block to paste, or None for the untouched template; the ```text block after it)."""
    blocks = re.findall(r"```(\w+)\n(.*?)```", GUIDE.read_text(), re.S)
    steps, step, waiting = [], None, False
    for kind, block in blocks:
        if kind == "bash" and "cp backends/template.py my_backend.py" in block:
            step, waiting = None, True
        elif kind == "python" and block.startswith(STEP):
            assert not waiting, f"a step shows no output before the next one: {block[:60]}"
            step, waiting = block, True
        elif kind == "text" and waiting:
            steps.append((step, block))
            waiting = False
    return steps


def run_checker(folder: Path, *args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "edugrad.checking.check", *args], cwd=folder,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode in (0, 1), run.stderr  # 1: something does not pass yet
    return run.stdout


def assert_prints(output: str, shown: str, where: str) -> None:
    """Every line the guide shows (but its `...` lines) is a line of the checker's output."""
    printed = {line.rstrip() for line in output.splitlines()}
    for line in shown.splitlines():
        if line.strip() and not line.strip().startswith("..."):
            assert line.rstrip() in printed, f"{where}: the guide shows\n{line}\nbut the " \
                                             f"checker printed\n{output}"


def test_the_guide_steps_paste_into_the_template_and_print_what_it_shows(tmp_path):
    steps = guide_steps()
    assert steps and steps[0][0] is None and len(steps) >= 3, "the guide lost its steps"
    source = (Path(ROOT) / "backends" / "template.py").read_text()
    for number, (block, shown) in enumerate(steps):
        if block is not None:
            source = paste(source, block)
        (tmp_path / "my_backend.py").write_text(source)
        assert_prints(run_checker(tmp_path, "my_backend.py:MyBackend"), shown,
                      f"backends/README.md, step {number}")


def test_the_guide_shows_the_finished_scoreboard_as_the_checker_prints_it(tmp_path):
    """Section 4's table: what a finished backend (here the pure-Python one, under the
    template's name) gets, case counts included."""
    finished = [block for kind, block in re.findall(r"```(\w+)\n(.*?)```", GUIDE.read_text(),
                                                    re.S)
                if kind == "text" and "required primitives: 26 of 26 pass" in block]
    assert len(finished) == 1
    (tmp_path / "my_backend.py").write_text(
        "from edugrad.backends.python_backend import PythonBackend\n\n\n"
        "class MyBackend(PythonBackend):\n    name = 'mybackend'\n")
    assert_prints(run_checker(tmp_path, "my_backend.py:MyBackend"), finished[0],
                  "backends/README.md, the finished scoreboard")


def test_the_guide_shows_the_lockstep_diff_as_the_checker_prints_it(tmp_path):
    """Section 6's output, for the EXP off by 0.01 it describes."""
    shown = [block for kind, block in re.findall(r"```(\w+)\n(.*?)```", GUIDE.read_text(), re.S)
             if kind == "text" and block.startswith("lock-step diff:")]
    assert len(shown) == 1
    (tmp_path / "my_backend.py").write_text(
        "from edugrad.backends.python_backend import PythonBackend\n\n\n"
        "class MyBackend(PythonBackend):\n"
        "    def exp(self, x):\n"
        "        out = super().exp(x)\n"
        "        return self.add(out, self.full(out.shape, 0.01, out.dtype))\n")
    assert_prints(run_checker(tmp_path, "my_backend.py:MyBackend", "--lockstep"), shown[0],
                  "backends/README.md, the lock-step diff")
