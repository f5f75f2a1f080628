"""Every Python snippet in the README and the backend guide runs, so the docs cannot drift.

A snippet's `print(...)` lines that end in a comment like `# tensor([8., 11.])` are checked
too: the printed text must start with what the comment shows.
"""

import contextlib
import io
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", os.path.join("backends", "README.md")]


def snippets():
    for doc in DOCS:
        path = os.path.join(ROOT, doc)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            text = f.read()
        for number, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
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
