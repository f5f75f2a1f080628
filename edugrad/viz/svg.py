"""Lay out a graph and draw it as SVG, in pure Python: a picture without Graphviz.

Layer: teaching tools. Imports nothing from edugrad; graph.py hands it a Graph.

The layout is the classic layered one (Sugiyama's, in its simplest form), four steps:

1. Layers. A node sits one layer above the highest of the nodes that use it (its longest path
   down to the output decides), so every arrow points down, and a weight used late in a
   network sits just above where it is used, not at the top with an arrow across the picture.
2. Dummy points. An arrow that spans several layers gets an invisible point in each layer it
   crosses; it becomes a chain of one-layer steps and can bend around the boxes.
3. Order within a layer. A few sweeps down and up, each sorting a layer by the average
   position of its neighbours in the layer before (the barycentre heuristic): few crossings.
4. Coordinates. Each layer is a row of boxes, centred; arrows are curves through their points.
"""

from __future__ import annotations

import html
import itertools
from collections import deque

_CHAR_WIDTH = 7.0  # px per character of 12px sans-serif, near enough for box widths
_LINE_HEIGHT = 15
_PADDING = 8
_LAYER_GAP = 48
_NODE_GAP = 24
_DUMMY_WIDTH = 8
_ids = itertools.count()  # unique marker ids: several pictures can share one notebook page


def layers_of(node_ids: list, edges: list) -> dict:
    """Step 1: node id -> layer number (0 at the top)."""
    incoming = {n: [] for n in node_ids}
    outgoing = {n: [] for n in node_ids}
    for source, target in edges:
        incoming[target].append(source)
        outgoing[source].append(target)
    height = {}  # longest path down to the output, counted from the bottom
    for node in reversed(_topological(node_ids, incoming, outgoing)):
        height[node] = max((height[t] + 1 for t in outgoing[node]), default=0)
    top = max(height.values(), default=0)
    layer = {node: top - height[node] for node in node_ids}
    return layer


def _topological(node_ids: list, incoming: dict, outgoing: dict) -> list:
    waiting = {n: len(set(incoming[n])) for n in node_ids}
    ready = deque(n for n in node_ids if waiting[n] == 0)
    order = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for target in dict.fromkeys(outgoing[node]):
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
    if len(order) != len(node_ids):
        raise ValueError("layout: the graph has a cycle; autograd graphs never do")
    return order


def layout(graph) -> dict:
    """Steps 1-4. Returns {"boxes": id -> (x, y, width, height), "routes": [points per edge],
    "width": ..., "height": ...}."""
    ids = [n.id for n in graph.nodes]
    size = {n.id: _box_size(n.lines) for n in graph.nodes}
    layer = layers_of(ids, [(e.source, e.target) for e in graph.edges])
    # step 2: chains of dummy points for long edges
    rows = {}
    for node in ids:
        rows.setdefault(layer[node], []).append(node)
    chains, dummy = [], 0
    for edge in graph.edges:
        chain = [edge.source]
        for between in range(layer[edge.source] + 1, layer[edge.target]):
            name = f"dummy{dummy}"
            dummy += 1
            rows.setdefault(between, []).append(name)
            size[name] = (_DUMMY_WIDTH, 0)
            chain.append(name)
        chain.append(edge.target)
        chains.append(chain)
    above, below = {}, {}
    for chain in chains:
        for upper, lower in zip(chain, chain[1:]):
            below.setdefault(upper, []).append(lower)
            above.setdefault(lower, []).append(upper)
    levels = [rows[k] for k in sorted(rows)]
    _order_layers(levels, above, below)
    boxes = _coordinates(levels, size)
    _straighten(levels, boxes, above, below)
    routes = [_route(chain, boxes) for chain in chains]
    width = max((x + w for x, _, w, _ in boxes.values()), default=0) + _NODE_GAP
    height = max((y + h for _, y, _, h in boxes.values()), default=0) + _NODE_GAP
    return {"boxes": boxes, "routes": routes, "width": width, "height": height}


def _box_size(lines: list) -> tuple:
    width = max(len(line) for line in lines) * _CHAR_WIDTH + 2 * _PADDING
    return width, len(lines) * _LINE_HEIGHT + _PADDING


def _order_layers(levels: list, above: dict, below: dict, sweeps: int = 4) -> None:
    """Step 3, in place: sort each layer by the mean position of its neighbours."""
    for _ in range(sweeps):
        for i in range(1, len(levels)):
            _sort_by_barycentre(levels[i], levels[i - 1], above)
        for i in range(len(levels) - 2, -1, -1):
            _sort_by_barycentre(levels[i], levels[i + 1], below)


def _sort_by_barycentre(level: list, fixed: list, neighbours: dict) -> None:
    where = {node: i for i, node in enumerate(fixed)}

    def barycentre(item):
        index, node = item
        positions = [where[n] for n in neighbours.get(node, []) if n in where]
        return sum(positions) / len(positions) if positions else index

    level[:] = [node for _, node in sorted(enumerate(level), key=barycentre)]


def _coordinates(levels: list, size: dict) -> dict:
    """Step 4: rows top to bottom, each centred on the widest."""
    widths = [sum(size[n][0] for n in level) + _NODE_GAP * (len(level) - 1) for level in levels]
    widest = max(widths, default=0)
    boxes, y = {}, _NODE_GAP
    for level, row_width in zip(levels, widths):
        x = _NODE_GAP + (widest - row_width) / 2
        row_height = max(size[n][1] for n in level)
        for node in level:
            width, height = size[node]
            boxes[node] = (x, y + (row_height - height) / 2, width, height)
            x += width + _NODE_GAP
        y += row_height + _LAYER_GAP
    return boxes


def _straighten(levels: list, boxes: dict, above: dict, below: dict, passes: int = 3) -> None:
    """Step 4, refined: move each box towards the mean x of its neighbours, keeping the order
    and the gaps, so chains of ops run straight down."""
    for _ in range(passes):
        for i in range(1, len(levels)):
            _pull(levels[i], boxes, above)
        for i in range(len(levels) - 2, -1, -1):
            _pull(levels[i], boxes, below)
    left = min((x for x, _, _, _ in boxes.values()), default=_NODE_GAP)
    for node, (x, y, w, h) in boxes.items():
        boxes[node] = (x - left + _NODE_GAP, y, w, h)


def _pull(level: list, boxes: dict, neighbours: dict) -> None:
    def centre(node):
        x, _, w, _ = boxes[node]
        return x + w / 2

    wanted = []
    for node in level:
        around = [centre(n) for n in neighbours.get(node, [])]
        x, _, w, _ = boxes[node]
        wanted.append(sum(around) / len(around) - w / 2 if around else x)
    widths = [boxes[node][2] for node in level]
    # the closest placement that keeps order and gaps, packed from the left and from the right;
    # both keep every gap, so their average does too
    from_left, from_right = list(wanted), list(wanted)
    for i in range(1, len(level)):
        from_left[i] = max(wanted[i], from_left[i - 1] + widths[i - 1] + _NODE_GAP)
    for i in range(len(level) - 2, -1, -1):
        from_right[i] = min(wanted[i], from_right[i + 1] - widths[i] - _NODE_GAP)
    for node, a, b in zip(level, from_left, from_right):
        _, y, w, h = boxes[node]
        boxes[node] = ((a + b) / 2, y, w, h)


def _route(chain: list, boxes: dict) -> list:
    """The points an arrow passes: bottom of its source, each dummy, top of its target."""
    x, y, w, h = boxes[chain[0]]
    points = [(x + w / 2, y + h)]
    for dummy in chain[1:-1]:
        x, y, w, _ = boxes[dummy]
        points.append((x + w / 2, y))
    x, y, w, _ = boxes[chain[-1]]
    points.append((x + w / 2, y))
    return points


# ---- drawing ----------------------------------------------------------------------------------
def render_svg(graph) -> str:
    """The whole picture as one <svg> element: a <g class="node"> per node, a <path
    class="edge"> per edge."""
    placed = layout(graph)
    uid = next(_ids)
    marker = f"edugrad-arrow-{uid}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{placed["width"]:.0f}" '
        f'height="{placed["height"]:.0f}" viewBox="0 0 {placed["width"]:.0f} '
        f'{placed["height"]:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        f'fill="#6b7280"/></marker></defs>',
    ]
    parallel = {}
    for edge, points in zip(graph.edges, placed["routes"]):
        # the second arrow between the same two nodes (x * x) is drawn beside the first
        shift = 6 * parallel.get((edge.source, edge.target), 0)
        parallel[(edge.source, edge.target)] = parallel.get((edge.source, edge.target), 0) + 1
        points = [(x + shift, y) for x, y in points]
        dash = ' stroke-dasharray="4 3"' if edge.saved else ""
        parts.append(f'<path class="edge" d="{_curve(points)}" fill="none" stroke="#6b7280" '
                     f'stroke-width="1.2"{dash} marker-end="url(#{marker})"/>')
    for node in graph.nodes:
        parts.append(_node_svg(node, placed["boxes"][node.id], graph.colors(node)))
    parts.append("</svg>")
    return "\n".join(parts)


def _curve(points: list) -> str:
    """A smooth vertical S-curve through each pair of points."""
    (x0, y0), rest = points[0], points[1:]
    path = [f"M {x0:.1f} {y0:.1f}"]
    for x1, y1 in rest:
        middle = (y0 + y1) / 2
        path.append(f"C {x0:.1f} {middle:.1f} {x1:.1f} {middle:.1f} {x1:.1f} {y1:.1f}")
        x0, y0 = x1, y1
    return " ".join(path)


def _node_svg(node, box: tuple, colors: tuple) -> str:
    x, y, width, height = box
    fill, border = colors
    radius = height / 2 if node.kind in ("leaf", "saved") else 4
    dash = ' stroke-dasharray="4 3"' if node.kind == "saved" else ""
    stroke = 2.5 if node.kind == "module" or node.is_output else 1.2
    text = []
    for i, line in enumerate(node.lines):
        weight = ' font-weight="bold"' if i == 0 else ' fill="#374151"'
        baseline = y + _PADDING / 2 + (i + 0.8) * _LINE_HEIGHT
        text.append(f'<text x="{x + width / 2:.1f}" y="{baseline:.1f}" text-anchor="middle"'
                    f'{weight}>{html.escape(line)}</text>')
    return (
        f'<g class="node {node.kind}" data-id="{node.id}">'
        f'<title>{html.escape(node.tooltip)}</title>'
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
        f'rx="{radius:.1f}" fill="{fill}" stroke="{border}" stroke-width="{stroke}"{dash}/>'
        + "".join(text) + "</g>"
    )


def render_html(graph) -> str:
    """A page that shows the picture anywhere: inline SVG, inline CSS, no scripts, no network."""
    keys = [("leaf", "leaf"), ("Function", "op"), ("module (collapsed)", "module"),
            ("output", "output")]
    legend = " ".join(
        f'<span class="key" style="background:{graph.palette[kind][0]};'
        f'border-color:{graph.palette[kind][1]}">{label}</span>' for label, kind in keys
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>edugrad graph</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 2em; color: #111827; }}
.key {{ border: 1px solid; border-radius: 4px; padding: 2px 8px; margin-right: 6px; }}
.picture {{ overflow: auto; border: 1px solid #e5e7eb; padding: 1em; margin: 1em 0; }}
pre {{ background: #f9fafb; padding: 1em; overflow: auto; }}
</style>
</head>
<body>
<h1>Backward graph</h1>
<p>{html.escape(repr(graph))}. Arrows show how data flows in the forward pass; backward walks
them in reverse. Hover a box for its Function's derivative.</p>
<p>{legend}</p>
<div class="picture">
{render_svg(graph)}
</div>
<details><summary>Graphviz DOT source</summary><pre>{html.escape(graph.dot)}</pre></details>
<details><summary>Mermaid source</summary><pre>{html.escape(graph.mermaid)}</pre></details>
</body>
</html>
"""
