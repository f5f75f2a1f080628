"""draw_graph: the graph autograd recorded, one box per Function and per leaf, arrows the way
data flows (leaf -> op -> ... -> output).

Layer: teaching tools, above nn. Imports edugrad.autograd and its sibling svg.py; a Module is
used duck-typed (named_parameters, named_modules, register_forward_hook), so this file never
imports edugrad.nn.

    a = edugrad.tensor([1.0, 2.0], requires_grad=True)
    b = edugrad.tensor([3.0, 4.0], requires_grad=True)
    graph = draw_graph((a * b + a).sum(), params={"a": a, "b": b})

        a ──► Mul ◄── b          3 Function nodes (Mul, Add, Sum), 2 leaves,
        │      │                 5 edges: a->Mul, b->Mul, Mul->Add, a->Add, Add->Sum
        └───► Add ──► Sum

    graph.dot        Graphviz source (always)       graph.render("g.png")  needs Graphviz's `dot`
    graph.mermaid    Mermaid flowchart text         graph.svg(), graph.html()  need nothing
    graph            in Jupyter the object draws itself (an inline SVG, no network)

The walk is the one backward takes: from the tensor's `_ctx` (its grad_fn) to that Function's
`parents` that require grad, down to the leaves. With show_saved=True the other parents
(constants, masks, indices: what a Function keeps for its backward but sends no gradient to)
are drawn too, dashed.

Big models stay readable by collapsing modules. Which Functions a Module made is not in the graph
itself, so record it while the forward runs:

    with trace_modules(model) as trace:
        loss = loss_fn(model(x), y)
    draw_graph(loss, params=model, collapse=["0", "2"], trace=trace)   # or collapse=True
    draw_graph(loss, trace, collapse=True)                             # the same, shorter
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from edugrad import autograd
from edugrad.views import inputs_as_used
from edugrad.viz import svg as _svg

__all__ = ["draw_graph", "trace_modules", "Graph", "Node", "Edge", "ModuleTrace"]


@dataclass
class Node:
    """One box of the picture. kind is "leaf", "op", "module" or "saved"."""

    id: str
    kind: str
    title: str
    details: list = field(default_factory=list)
    tooltip: str = ""
    is_output: bool = False

    @property
    def lines(self) -> list:
        return [self.title] + list(self.details)


@dataclass
class Edge:
    """An arrow from the node that made a tensor to the node that used it."""

    source: str
    target: str
    saved: bool = False  # a dashed arrow: an input that gets no gradient (show_saved=True)


# ---- recording which Module made which tensors ------------------------------------------------
@dataclass
class ModuleCall:
    name: str
    class_name: str
    inputs: list
    outputs: list


class ModuleTrace:
    """Forward hooks on every submodule that record each call's input and output tensors.

    Use it as a context manager around the forward pass; the hooks are removed on exit.
    """

    def __init__(self, model) -> None:
        if not hasattr(model, "named_modules"):
            raise TypeError(f"trace_modules: expected a Module, got {type(model).__name__}")
        self.model = model
        self.calls: list = []
        self._handles: list = []

    def __enter__(self) -> "ModuleTrace":
        for name, module in self.model.named_modules():
            self._handles.append(module.register_forward_hook(self._hook_for(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook_for(self, name: str):
        def hook(module, inputs, output):
            outputs = list(output) if isinstance(output, (tuple, list)) else [output]
            self.calls.append(ModuleCall(name, type(module).__name__, _tensors(inputs),
                                         _tensors(outputs)))

        return hook


def trace_modules(model) -> ModuleTrace:
    """`with trace_modules(model) as trace: model(x)` records what each submodule made."""
    return ModuleTrace(model)


def _tensors(values) -> list:
    return [v for v in values if hasattr(v, "_ctx")]


# ---- walking the graph --------------------------------------------------------------------------
def _key(tensor):
    """One node per Function (op outputs), one per tensor (leaves)."""
    return ("op", id(tensor._ctx)) if tensor._ctx is not None else ("leaf", id(tensor))


def graph_order(root, include_constants: bool = False, what: str = "draw_graph") -> list:
    """The tensors `root` depends on, inputs first: autograd's own traversal, one node per
    Function, optionally following the inputs that need no gradient too."""
    return autograd.topological_order([root], include_constants, key=_key, what=what)


def leaf_names(params) -> dict:
    """id(tensor) -> name, from a Module (its named_parameters), a dict or a list of tensors."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        items = params.named_parameters()
    elif isinstance(params, dict):
        items = params.items()
    elif isinstance(params, (list, tuple)):
        items = ((f"input{i}", t) for i, t in enumerate(params))
    else:
        raise TypeError(
            f"params: expected a Module, a dict name -> Tensor or a list of tensors, "
            f"got {type(params).__name__}"
        )
    return {id(tensor): name for name, tensor in items}


def describe(tensor) -> str:
    """'(2, 3) float32'"""
    return f"{tuple(tensor.shape)} {tensor.dtype.name}"


# ---- building the picture -----------------------------------------------------------------------
def draw_graph(tensor, params=None, collapse=None, show_saved: bool = False,
               trace: ModuleTrace | None = None) -> "Graph":
    """The backward graph of `tensor`, as a Graph (DOT, Mermaid, SVG, HTML, Jupyter display).

    params      a Module or a dict name -> Tensor: leaves are labelled with these names (or a
                ModuleTrace: its model's names, and the trace for `collapse`)
    collapse    Module names (as in named_modules) whose internals become one node, or True for
                every direct child of the traced model; needs `trace` (see trace_modules)
    show_saved  also draw the inputs that get no gradient (constants, masks), dashed
    """
    if not hasattr(tensor, "_ctx"):
        raise TypeError(f"draw_graph: expected a Tensor, got {type(tensor).__name__}")
    if isinstance(params, ModuleTrace):  # draw_graph(loss, trace, collapse=True) works too
        trace, params = params, params.model
    names = leaf_names(params if params is not None or trace is None else trace.model)
    order = graph_order(tensor, include_constants=show_saved)
    nodes, edges = {}, []
    for t in order:
        key = _key(t)
        nodes[key] = _node_for(t, names)
        if t._ctx is None:
            continue
        for parent in inputs_as_used(t._ctx):
            if parent.requires_grad or show_saved:
                edges.append((_key(parent), key, not parent.requires_grad))
    nodes[_key(tensor)].is_output = True
    if collapse:
        if trace is None:
            raise ValueError(
                "draw_graph: collapse= needs to know which Functions each Module made; record "
                "the forward pass with `with edugrad.viz.trace_modules(model) as trace:` and "
                "pass trace=trace"
            )
        nodes, edges = _collapse(nodes, edges, trace, collapse, order)
    return _number(nodes, edges)


def _node_for(tensor, names: dict) -> Node:
    ctx = tensor._ctx
    if ctx is not None:
        return Node("", "op", type(ctx).__name__, [describe(tensor)],
                    tooltip=f"grad_fn=<{ctx.name}>: {ctx.formula}".rstrip(": "))
    name = names.get(id(tensor))
    if not tensor.requires_grad:
        return Node("", "saved", name or "constant", [describe(tensor)],
                    tooltip="kept for backward, gets no gradient")
    grad = "grad: yes" if tensor.grad is not None else "grad: none"
    return Node("", "leaf", name or "leaf", [describe(tensor), grad],
                tooltip=f"leaf tensor {name or ''}".rstrip())


def _number(nodes: dict, edges: list) -> "Graph":
    """Give nodes the ids n0, n1, ... in the order they were found (inputs first)."""
    ids = {}
    for i, (key, node) in enumerate(nodes.items()):
        node.id = f"n{i}"
        ids[key] = node.id
    return Graph(list(nodes.values()), [Edge(ids[s], ids[t], saved) for s, t, saved in edges])


def _collapse(nodes: dict, edges: list, trace: ModuleTrace, collapse, order: list):
    """Replace the Functions (and parameters) each collapsed Module call made by one node."""
    group_of, module_nodes = _groups(nodes, edges, trace, _wanted(trace, collapse), order)
    new_nodes = {}
    for key, node in nodes.items():  # a module node takes the place of its first member
        group = group_of.get(key)
        if group is None:
            new_nodes[key] = node
        elif group not in new_nodes:
            new_nodes[group] = module_nodes[group]
    new_edges, seen = [], set()
    for source, target, saved in edges:
        source, target = group_of.get(source, source), group_of.get(target, target)
        if source == target:
            continue
        touches_module = source[0] == "module" or target[0] == "module"
        if touches_module and (source, target) in seen:
            continue  # one arrow per pair is enough around a collapsed box
        seen.add((source, target))
        new_edges.append((source, target, saved))
    return new_nodes, new_edges


def _wanted(trace: ModuleTrace, collapse) -> set:
    known = {name for name, _ in trace.model.named_modules()}
    if collapse is True:
        return {name for name in known if name and "." not in name}
    wanted = {collapse} if isinstance(collapse, str) else set(collapse)
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(f"draw_graph: collapse names {unknown} are not modules of the model; "
                         f"its modules are {sorted(known - {''})}")
    return wanted


def _groups(nodes: dict, edges: list, trace: ModuleTrace, wanted: set, order: list):
    """node key -> the module node that swallows it, and those module nodes."""
    consumers = {}
    for source, target, _ in edges:
        consumers.setdefault(source, set()).add(target)
    tensor_of = {_key(t): t for t in order}
    group_of, module_nodes = {}, {}
    calls = [c for c in trace.calls if c.name in wanted]
    calls.sort(key=lambda c: c.name.count("."))  # outer modules first; inner ones are inside them
    for index, call in enumerate(calls):
        inside = _inside(call, nodes, tensor_of, group_of)
        if not inside:
            continue
        inputs = {_key(t) for t in call.inputs}
        for key, node in nodes.items():  # leaves used only inside: the module's parameters
            if node.kind in ("leaf", "saved") and key not in group_of and key not in inputs \
                    and key in consumers and consumers[key] <= inside:
                inside.add(key)
        members = [key for key in nodes if key in inside]  # in drawing order
        params = [nodes[k].title.split(".")[-1] for k in members if nodes[k].kind == "leaf"]
        count = sum(nodes[k].kind == "op" for k in members)
        details = [describe(call.outputs[0]), f"{count} Function{'s' if count != 1 else ''}"]
        if params:
            details.append(", ".join(params))
        label = f"{call.name}: {call.class_name}" if call.name else call.class_name
        module_key = ("module", index)
        module_nodes[module_key] = Node(
            "", "module", label, details, tooltip=f"module {call.name or '(model)'}, collapsed",
            is_output=any(nodes[k].is_output for k in members))
        for key in members:
            group_of[key] = module_key
    return group_of, module_nodes


def _inside(call: ModuleCall, nodes: dict, tensor_of: dict, group_of: dict) -> set:
    """The op nodes between a module call's outputs and its inputs."""
    stop = {_key(t) for t in call.inputs}
    inside = set()
    stack = [t for t in call.outputs if t._ctx is not None and _key(t) in nodes]
    while stack:
        tensor = stack.pop()
        key = _key(tensor)
        if key in stop or key in inside or key not in nodes or tensor._ctx is None:
            continue
        if key in group_of:  # already inside an outer collapsed module
            return set()
        inside.add(key)
        stack.extend(p for p in inputs_as_used(tensor._ctx) if _key(p) in tensor_of)
    return inside


# ---- the Graph object ----------------------------------------------------------------------------
_COLORS = {  # fill, border
    "leaf": ("#dbeafe", "#2563eb"),
    "op": ("#f3f4f6", "#4b5563"),
    "module": ("#dcfce7", "#16a34a"),
    "saved": ("#ffffff", "#9ca3af"),
    "output": ("#fef3c7", "#d97706"),
}

_INSTALL_GRAPHVIZ = (
    "Graphviz's `dot` program was not found on PATH. Install it (Debian/Ubuntu: "
    "`apt-get install graphviz`; macOS: `brew install graphviz`; conda: `conda install "
    "graphviz`; Windows: `winget install graphviz`, then reopen the terminal), or use "
    "graph.svg() / graph.html(), which need nothing installed"
)


class Graph:
    """A drawn graph: nodes, edges, and every way to look at them."""

    palette = _COLORS

    def __init__(self, nodes: list, edges: list) -> None:
        self.nodes = nodes
        self.edges = edges

    def __repr__(self) -> str:
        counts = {kind: sum(n.kind == kind for n in self.nodes) for kind in _COLORS}
        parts = [f"{counts['op']} Functions", f"{counts['leaf']} leaves"]
        if counts["module"]:
            parts.append(f"{counts['module']} modules")
        if counts["saved"]:
            parts.append(f"{counts['saved']} saved")
        return f"<Graph: {', '.join(parts)}, {len(self.edges)} edges>"

    def colors(self, node: Node) -> tuple:
        return self.palette["output" if node.is_output else node.kind]

    # ---- text formats ----
    @property
    def dot(self) -> str:
        """Graphviz DOT source; `dot -Tpng` renders it."""
        lines = ["digraph edugrad {", "    rankdir=TB;",
                 '    node [fontname="Helvetica", fontsize=11, style="rounded,filled"];',
                 '    edge [color="#6b7280", arrowsize=0.7];']
        for node in self.nodes:
            fill, border = self.colors(node)
            shape = "ellipse" if node.kind in ("leaf", "saved") else "box"
            extra = ', style="dashed,filled"' if node.kind == "saved" else ""
            if node.kind == "module":
                extra = ', peripheries=2'
            label = "\\n".join(_dot_escape(line) for line in node.lines)
            lines.append(f'    {node.id} [label="{label}", shape={shape}, fillcolor="{fill}", '
                         f'color="{border}", tooltip="{_dot_escape(node.tooltip)}"{extra}];')
        for edge in self.edges:
            style = " [style=dashed]" if edge.saved else ""
            lines.append(f"    {edge.source} -> {edge.target}{style};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    @property
    def mermaid(self) -> str:
        """Mermaid flowchart text (paste into a ```mermaid block on GitHub, or mermaid.live)."""
        shapes = {"leaf": ('(["', '"])'), "saved": ('(["', '"])'), "op": ('["', '"]'),
                  "module": ('[["', '"]]')}
        lines = ["flowchart TB"]
        for node in self.nodes:
            start, end = shapes[node.kind]
            text = "<br/>".join(_mermaid_escape(line) for line in node.lines)
            lines.append(f"    {node.id}{start}{text}{end}")
        for edge in self.edges:
            arrow = "-.->" if edge.saved else "-->"
            lines.append(f"    {edge.source} {arrow} {edge.target}")
        for kind, (fill, border) in _COLORS.items():
            lines.append(f"    classDef {kind} fill:{fill},stroke:{border},color:#111827")
        for kind in _COLORS:
            members = [n.id for n in self.nodes if kind == ("output" if n.is_output else n.kind)]
            if members:
                lines.append(f"    class {','.join(members)} {kind}")
        return "\n".join(lines) + "\n"

    # ---- pictures, with no Graphviz ----
    def svg(self) -> str:
        """An SVG drawn by edugrad itself (layered layout in pure Python)."""
        return _svg.render_svg(self)

    def html(self, path=None) -> str:
        """A self-contained HTML page showing the picture (no network, no Graphviz); written to
        `path` too when given."""
        page = _svg.render_html(self)
        if path is not None:
            Path(path).write_text(page, encoding="utf-8")
        return page

    # ---- Jupyter ----
    def _repr_svg_(self) -> str:
        return self.svg()

    def _repr_html_(self) -> str:
        return f'<div style="overflow:auto">{self.svg()}</div>'

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/html": self._repr_html_(), "image/svg+xml": self.svg(),
                "text/plain": repr(self)}

    # ---- files ----
    def render(self, path, format: str | None = None) -> str:
        """Write the picture to `path` as png, svg or pdf (the suffix decides unless `format`).

        Uses Graphviz's `dot` when it is installed; without it an svg is still written, by
        edugrad's own layout, and other formats raise an error that says how to install it.
        """
        path = Path(path)
        format = (format or path.suffix.lstrip(".") or "svg").lower()
        if format not in ("png", "svg", "pdf"):
            raise ValueError(f"render: format must be 'png', 'svg' or 'pdf', not {format!r}")
        dot = shutil.which("dot")
        if dot is None:
            if format != "svg":
                raise RuntimeError(f"render({str(path)!r}, format={format!r}): {_INSTALL_GRAPHVIZ}")
            path.write_text(self.svg(), encoding="utf-8")
            return str(path)
        result = subprocess.run([dot, f"-T{format}", "-o", str(path)], input=self.dot,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"render: Graphviz's dot failed: {result.stderr.strip()}")
        return str(path)


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _mermaid_escape(text: str) -> str:
    return (text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;")
            .replace(">", "#gt;"))
