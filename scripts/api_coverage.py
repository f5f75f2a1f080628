"""Which PyTorch names the programs in tests/programs use, and which of them edugrad has.

Layer: a maintenance script, outside the library. It reads the programs (tests/programs/*.py
and tests/programs/pending/*.py) as syntax trees, never runs them, and asks edugrad (hasattr)
and PyTorch (which names are torch.Tensor's) about the names it finds.

    python scripts/api_coverage.py                  a table: name, programs using it, edugrad has it
    python scripts/api_coverage.py --markdown       the same as the README's Markdown table
    python scripts/api_coverage.py --write-readme   put that table into README.md

How a name is found: the imports of torch give aliases (`import torch`, `import torch.nn as
nn`, `from torch.nn import functional as F`, `from torch.utils.data import DataLoader`); an
attribute chain on an alias, `F.relu` or `torch.nn.init.normal_`, is a name of the deepest of
torch, torch.nn, torch.nn.functional, torch.optim and torch.utils.data that it starts with
(kept if PyTorch has it). Any other attribute, `loss.backward()` or `x.shape`, counts as a
torch.Tensor name when torch.Tensor has it; that is a guess (the type of `x` is not known
without running): names assigned a plain Python value (`visited = set()`) are skipped, but
`d.values()` on a dict that came from elsewhere counts.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import re
import sys
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = REPO_ROOT / "tests" / "programs"
README = REPO_ROOT / "README.md"
HELPERS = {"conftest.py", "program_support.py", "rewrite.py"}
SCOPES = ["torch", "torch.nn", "torch.nn.functional", "torch.optim", "torch.utils.data"]
START, END = "<!-- api-coverage:start -->", "<!-- api-coverage:end -->"


def program_paths() -> list:
    found = [p for p in sorted(PROGRAMS.glob("*.py")) + sorted(PROGRAMS.glob("pending/*.py"))
             if p.name not in HELPERS and not p.name.startswith("test_")]
    return found


def torch_aliases(tree) -> tuple[dict, list]:
    """Local name -> the torch path it stands for; and the names imported from torch modules."""
    aliases, imported = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for item in node.names:
                if item.name.split(".")[0] == "torch":
                    if item.asname:
                        aliases[item.asname] = item.name
                    else:  # `import torch.nn` binds torch
                        aliases["torch"] = "torch"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch":
            for item in node.names:
                aliases[item.asname or item.name] = f"{node.module}.{item.name}"
                imported.append(f"{node.module}.{item.name}")
    return aliases, imported


def chain(node) -> list | None:
    """`a.b.c` -> ['a', 'b', 'c']; None when the chain does not start at a plain name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id] + parts[::-1]
    return None


def scoped(path: str) -> tuple[str, str] | None:
    """'torch.nn.functional.relu' -> ('torch.nn.functional', 'relu'): the deepest scope."""
    for scope in sorted(SCOPES, key=len, reverse=True):
        if path.startswith(scope + "."):
            return scope, path[len(scope) + 1:]
    return None


def resolve(root, dotted: str):
    for part in dotted.split("."):
        if not hasattr(root, part):
            return None
        root = getattr(root, part)
    return root


PYTHON_VALUES = (ast.List, ast.Set, ast.Dict, ast.Tuple, ast.ListComp, ast.SetComp, ast.DictComp,
                 ast.JoinedStr, ast.Constant)
PYTHON_MAKERS = {"list", "set", "dict", "tuple", "str", "sorted", "tolist"}


def python_containers(tree) -> set:
    """Names assigned a plain Python value (`visited = set()`, `row = x.tolist()`): their
    `.add` or `.index` is not torch.Tensor's, though the Tensor has names like those. So too a
    name only ever assigned an object of a class the program defines (`lang = Lang("fra")`,
    whose `.name` is its own); one also assigned something else (`x = Value(1.0)`, later
    `x = torch.tensor(1.0)`) may be a Tensor."""
    own_classes = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    found, own_objects, others = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            value = node.value
            maker = value.func if isinstance(value, ast.Call) else None
            name = getattr(maker, "id", None) or getattr(maker, "attr", None)
            if isinstance(value, PYTHON_VALUES) or name in PYTHON_MAKERS:
                found.add(node.targets[0].id)
            else:
                (own_objects if name in own_classes else others).add(node.targets[0].id)
    return found | (own_objects - others)


def names_used(path: Path, torch) -> set:
    """The (scope, name) pairs one program uses; scope 'torch.Tensor' for Tensor attributes."""
    tree = ast.parse(path.read_text())
    aliases, imported = torch_aliases(tree)
    modules = {item.asname or item.name.split(".")[0] for node in ast.walk(tree)
               if isinstance(node, (ast.Import, ast.ImportFrom)) for item in node.names}
    containers = python_containers(tree)
    found = set()
    for dotted in imported:
        if scoped(dotted):
            found.add(scoped(dotted))
    inner = set()  # attribute nodes inside a longer chain: only the longest chain counts
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            inner.add(id(node.value))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        parts = chain(node)
        if parts and parts[0] in aliases:
            if id(node) in inner:
                continue
            full = ".".join([aliases[parts[0]]] + parts[1:])
            while "." in full and resolve(torch, full.split(".", 1)[1]) is None:
                full = full.rsplit(".", 1)[0]  # `x.weight.shape` style tails are not torch's
            if scoped(full):
                found.add(scoped(full))
        elif parts and (parts[0] in modules or (parts[0] == "self" and len(parts) == 2)
                        or (parts[0] in containers and len(parts) == 2)):
            continue  # np.zeros, os.path.join, self.fc1, visited.add: not a Tensor's attribute
        elif not node.attr.startswith("_") and hasattr(torch.Tensor, node.attr):
            found.add(("torch.Tensor", node.attr))
    return found


def coverage(torch, edugrad) -> list:
    """Rows (qualified name, programs using it, edugrad has it), in SCOPES order then by name."""
    users = defaultdict(set)
    for path in program_paths():
        for scope, name in names_used(path, torch):
            users[(scope, name)].add(path.stem)
    ours = {"torch": edugrad, "torch.Tensor": edugrad.Tensor}
    for scope in SCOPES[1:]:
        ours[scope] = importlib.import_module("edugrad" + scope[len("torch"):])
    order = SCOPES[:1] + ["torch.Tensor"] + SCOPES[1:]
    rows = []
    for scope, name in sorted(users, key=lambda k: (order.index(k[0]), k[1].lower())):
        qualified = f"{scope}.{name}"
        rows.append((qualified, len(users[(scope, name)]),
                     resolve(ours[scope], name) is not None))
    return rows


def markdown(rows) -> str:
    has = sum(1 for row in rows if row[2])
    lines = [f"{has} of the {len(rows)} names are in edugrad.", "",
             "| name | programs | edugrad |", "|---|---:|---|"]
    lines += [f"| `{name}` | {count} | {'yes' if present else '**no**'} |"
              for name, count, present in rows]
    return "\n".join(lines)


def text(rows) -> str:
    width = max(len(row[0]) for row in rows)
    lines = [f"{'name':<{width}}  programs  edugrad"]
    lines += [f"{name:<{width}}  {count:>8}  {'yes' if present else 'no'}"
              for name, count, present in rows]
    has = sum(1 for row in rows if row[2])
    lines.append(f"{has} of {len(rows)} names used by {len(program_paths())} programs")
    return "\n".join(lines)


def readme_table(readme: str) -> str:
    """The table between the README's markers."""
    match = re.search(re.escape(START) + r"\n(.*?)\n?" + re.escape(END), readme, re.S)
    if match is None:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return match.group(1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print the README's table")
    parser.add_argument("--write-readme", action="store_true", help="update README.md's table")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("api_coverage: needs PyTorch to tell which names are torch.Tensor's "
              "(pip install torch)", file=sys.stderr)
        return 1
    import edugrad

    rows = coverage(torch, edugrad)
    if args.write_readme:
        readme = README.read_text()
        readme_table(readme)  # the markers must be there
        block = f"{START}\n{markdown(rows)}\n{END}"
        README.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block,
                                 readme, flags=re.S))
    else:
        print(markdown(rows) if args.markdown else text(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
