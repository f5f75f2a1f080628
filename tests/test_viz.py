"""Tests for edugrad.viz's graph drawing, chain-rule walkthrough and gradient paths.

Graphs of known expressions have known node and edge counts; every output format (DOT, Mermaid,
SVG, HTML) is checked for exactly those; Graphviz renders the DOT where it is installed. The
walkthrough and the paths are checked against the gradients a real backward() leaves in .grad.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
from xml.etree import ElementTree

import numpy as np
import pytest

import edugrad
import edugrad.nn as nn
from edugrad.viz import draw_graph, explain_backward, gradient_paths, trace_modules
from edugrad.viz import graph as graph_module

HAS_NN = all(hasattr(nn, name) for name in ("Module", "Linear", "ReLU", "Sequential"))
needs_nn = pytest.mark.skipif(not HAS_NN, reason="edugrad.nn (Linear, ReLU, Sequential) "
                              "is not built yet")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")


def leaves(values, names):
    tensors = [edugrad.tensor(v, dtype=edugrad.float64, requires_grad=True) for v in values]
    return tensors, dict(zip(names, tensors))


def kinds(graph) -> dict:
    counts = {}
    for node in graph.nodes:
        counts[node.kind] = counts.get(node.kind, 0) + 1
    return counts


def titled(graph) -> dict:
    return {node.id: node.title for node in graph.nodes}


def edge_titles(graph) -> list:
    names = titled(graph)
    return sorted((names[e.source], names[e.target]) for e in graph.edges)


# ---- known expressions -------------------------------------------------------------------------
def test_mul_add_sum_has_three_functions_two_leaves_five_edges():
    (a, b), names = leaves([[1.0, 2.0], [3.0, 4.0]], "ab")
    graph = draw_graph((a * b + a).sum(), params=names)
    assert kinds(graph) == {"op": 3, "leaf": 2}
    assert edge_titles(graph) == sorted(
        [("a", "Mul"), ("b", "Mul"), ("Mul", "Add"), ("a", "Add"), ("Add", "Sum")])
    (output,) = [n for n in graph.nodes if n.is_output]
    assert output.title == "Sum" and output.details == ["() float64"]
    assert repr(graph) == "<Graph: 3 Functions, 2 leaves, 5 edges>"


def test_a_tensor_used_twice_by_one_op_gives_two_edges():
    (x,), names = leaves([[0.5, 1.5]], "x")
    graph = draw_graph(x * x + x.sin() * x, params=names)
    assert kinds(graph) == {"op": 4, "leaf": 1}
    assert edge_titles(graph).count(("x", "Mul")) == 3  # twice into the first Mul, once the second
    assert len(graph.edges) == 7


def test_leaf_labels_show_shape_dtype_name_and_whether_grad_is_there():
    (a, b), names = leaves([[1.0, 2.0], [3.0, 4.0]], "ab")
    loss = (a * b).sum()
    before = {n.title: n.details for n in draw_graph(loss, params=names).nodes}
    assert before["a"] == ["(2,) float64", "grad: none"]
    assert before["Mul"] == ["(2,) float64"]
    loss.backward(retain_graph=True)
    after = {n.title: n.details for n in draw_graph(loss, params=names).nodes}
    assert after["a"] == ["(2,) float64", "grad: yes"]
    unnamed = {n.title for n in draw_graph(loss).nodes}
    assert unnamed == {"leaf", "Mul", "Sum"}


def test_show_saved_adds_the_inputs_that_get_no_gradient_as_dashed_edges():
    (x,), names = leaves([[1.0, -2.0, 3.0]], "x")
    scale = edugrad.tensor([2.0, 3.0, 4.0], dtype=edugrad.float64)
    y = (x * scale).sum()
    assert kinds(draw_graph(y, params=names)) == {"op": 2, "leaf": 1}
    graph = draw_graph(y, params={"x": x, "scale": scale}, show_saved=True)
    assert kinds(graph) == {"op": 2, "leaf": 1, "saved": 1}
    saved = [e for e in graph.edges if e.saved]
    assert len(saved) == 1 and titled(graph)[saved[0].source] == "scale"
    assert "style=dashed" in graph.dot and "-.->" in graph.mermaid


def test_a_leaf_alone_is_one_node_and_a_freed_graph_is_a_clear_error():
    (x,), _ = leaves([[1.0]], "x")
    assert kinds(draw_graph(x)) == {"leaf": 1}
    y = (x * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        draw_graph(y)


def test_a_deep_chain_is_walked_and_laid_out_without_recursion():
    (x,), _ = leaves([[1.0]], "x")
    y = x
    for _ in range(400):
        y = y * 1.0001
    graph = draw_graph(y)
    assert kinds(graph) == {"op": 400, "leaf": 1} and len(graph.edges) == 400
    assert graph.svg().count('<g class="node') == 401


# ---- formats -------------------------------------------------------------------------------------
def example_graph():
    (a, b), names = leaves([[1.0, 2.0], [3.0, 4.0]], "ab")
    return draw_graph((a * b + a).sum(), params=names)


def test_dot_declares_every_node_once_and_every_edge_between_declared_nodes():
    graph = example_graph()
    dot = graph.dot
    assert dot.startswith("digraph edugrad {") and dot.rstrip().endswith("}")
    declared = re.findall(r"^\s+(n\d+) \[label=", dot, flags=re.M)
    edges = re.findall(r"^\s+(n\d+) -> (n\d+)", dot, flags=re.M)
    assert sorted(declared) == sorted(n.id for n in graph.nodes)
    assert len(edges) == 5 and all(s in declared and t in declared for s, t in edges)
    assert dot.count("{") == dot.count("}") == 1


@needs_dot
def test_graphviz_parses_the_dot_and_renders_png_and_svg(tmp_path):
    graph = example_graph()
    result = subprocess.run(["dot", "-Tcanon"], input=graph.dot, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    png = graph.render(tmp_path / "graph.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    svg = graph.render(tmp_path / "graph.svg")
    assert "<svg" in open(svg).read() and "Mul" in open(svg).read()


def test_mermaid_has_one_line_per_node_and_per_edge():
    graph = example_graph()
    lines = graph.mermaid.splitlines()
    assert lines[0] == "flowchart TB"
    node_lines = [line for line in lines if re.match(r"^\s+n\d+(\[|\()", line)]
    edge_lines = [line for line in lines if re.match(r"^\s+n\d+ (-->|-\.->) n\d+$", line)]
    assert len(node_lines) == 3 + 2 and len(edge_lines) == 5
    assert any(line.strip().startswith('n0(["a<br/>(2,) float64') for line in node_lines)


def test_html_is_self_contained_with_one_svg_element_per_node_and_edge():
    graph = example_graph()
    page = graph.html()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 1
    assert page.count('<g class="node') == 5 and page.count('<path class="edge"') == 5
    assert "<script" not in page and "src=" not in page and "<link" not in page
    assert "MulBackward" in page  # the tooltip names the grad_fn and its formula


def test_html_written_to_a_file(tmp_path):
    graph = example_graph()
    graph.html(tmp_path / "graph.html")
    assert (tmp_path / "graph.html").read_text(encoding="utf-8").count('<g class="node') == 5


def test_own_svg_has_a_box_per_node_inside_the_canvas():
    graph = example_graph()
    svg = graph.svg()
    width, height = (float(v) for v in re.search(r'viewBox="0 0 (\S+) (\S+)"', svg).groups())
    for x, y, w, h in re.findall(r'<rect x="(\S+)" y="(\S+)" width="(\S+)" height="(\S+)"', svg):
        assert 0 <= float(x) and float(x) + float(w) <= width
        assert 0 <= float(y) and float(y) + float(h) <= height
    assert svg.count("<rect") == 5


def test_svg_is_well_formed_xml_even_with_awkward_names():
    (a, b), _ = leaves([[1.0], [2.0]], "ab")
    graph = draw_graph((a * b).sum(), params={'a<&"b': a, "b's": b})
    root = ElementTree.fromstring(graph.svg())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert 'a<&"b' in texts and "b's" in texts
    assert 'a<&\\"b' in graph.dot and "a#lt;#amp;#quot;b" in graph.mermaid


def test_arrows_point_down_the_page():
    from edugrad.viz.svg import layers_of

    graph = example_graph()
    layer = layers_of([n.id for n in graph.nodes], [(e.source, e.target) for e in graph.edges])
    assert all(layer[e.source] < layer[e.target] for e in graph.edges)


def test_jupyter_display_needs_no_graphviz():
    graph = example_graph()
    bundle = graph._repr_mimebundle_()
    assert bundle["image/svg+xml"].startswith("<svg") and "<svg" in bundle["text/html"]
    assert bundle["text/plain"] == repr(graph)
    assert graph._repr_svg_().startswith("<svg") and "<svg" in graph._repr_html_()


def test_render_without_graphviz_writes_own_svg_and_explains_png(tmp_path, monkeypatch):
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)
    graph = example_graph()
    path = graph.render(tmp_path / "graph.svg")
    assert open(path).read().count('<g class="node') == 5
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        graph.render(tmp_path / "graph.png")
    with pytest.raises(ValueError, match="format"):
        graph.render(tmp_path / "graph.gif")


# ---- modules: names and collapsing ---------------------------------------------------------------
def small_mlp():
    edugrad.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


@needs_nn
def test_parameter_names_come_from_the_module():
    model = small_mlp()
    graph = draw_graph(model(edugrad.randn(2, 4)).sum(), params=model)
    leaf_titles = sorted(n.title for n in graph.nodes if n.kind == "leaf")
    assert leaf_titles == ["0.bias", "0.weight", "2.bias", "2.weight"]


@needs_nn
def test_collapsing_every_layer_leaves_one_node_per_layer():
    model = small_mlp()
    with trace_modules(model) as trace:
        loss = model(edugrad.randn(2, 4)).sum()
    full = draw_graph(loss, params=model)
    graph = draw_graph(loss, params=model, collapse=True, trace=trace)
    assert kinds(graph) == {"module": 3, "op": 1}
    assert [n.title for n in graph.nodes] == ["0: Linear", "1: ReLU", "2: Linear", "Sum"]
    assert edge_titles(graph) == sorted([("0: Linear", "1: ReLU"), ("1: ReLU", "2: Linear"),
                                         ("2: Linear", "Sum")])
    assert len(full.nodes) > len(graph.nodes)
    assert graph.html().count('<g class="node') == 4
    shorter = draw_graph(loss, trace, collapse=True)
    assert [n.title for n in shorter.nodes] == [n.title for n in graph.nodes]
    # the hooks are gone after the with block
    with trace_modules(model) as again:
        pass
    model(edugrad.randn(1, 4))
    assert again.calls == []


@needs_nn
def test_collapsing_one_layer_keeps_the_others_open():
    model = small_mlp()
    with trace_modules(model) as trace:
        loss = model(edugrad.randn(2, 4)).sum()
    graph = draw_graph(loss, params=model, collapse=["0"], trace=trace)
    titles = [n.title for n in graph.nodes]
    assert titles.count("0: Linear") == 1 and "0.weight" not in titles
    assert "2.weight" in titles and "Relu" in titles
    module = next(n for n in graph.nodes if n.kind == "module")
    assert "bias, weight" in module.details or "weight, bias" in module.details


@needs_nn
def test_collapse_needs_a_trace_and_known_names():
    model = small_mlp()
    with trace_modules(model) as trace:
        loss = model(edugrad.randn(2, 4)).sum()
    with pytest.raises(ValueError, match="trace_modules"):
        draw_graph(loss, params=model, collapse=["0"])
    with pytest.raises(ValueError, match="not modules of the model"):
        draw_graph(loss, params=model, collapse=["encoder"], trace=trace)


# ---- the chain-rule walkthrough ------------------------------------------------------------------
def test_walkthrough_steps_follow_the_engine_and_show_each_formula():
    (a, b), names = leaves([[1.0, 2.0], [3.0, 4.0]], "ab")
    loss = (a * b + a).sum()
    printed = io.StringIO()
    walk = explain_backward(loss, inputs=names, file=printed)
    assert [s.function for s in walk.steps] == ["SumBackward", "AddBackward", "MulBackward"]
    assert [s.formula for s in walk.steps] == [edugrad.function.Sum.formula,
                                               edugrad.function.Add.formula,
                                               edugrad.function.Mul.formula]
    mul = walk.steps[2]
    assert [name for name, _ in mul.grad_inputs] == ["a", "b"]
    assert mul.grad_inputs[0][1].tolist() == [3.0, 4.0]
    assert mul.grad_inputs[1][1].tolist() == [1.0, 2.0]
    assert [(name, count) for name, count, _ in mul.accumulations] == [("a", 2)]
    text = printed.getvalue()
    assert "d(x y)/dx = y" in text and "a accumulates" in text
    assert "a: [4, 5] shape (2,)  (sum of 2 contributions)" in text


def test_walkthrough_steps_come_in_the_order_backward_runs_them():
    (a, b), names = leaves([[1.0, 2.0], [3.0, 4.0]], "ab")
    products = [a * b, a.exp() * b, (a - b) * a]
    total = products[0] + products[1] * products[2]
    loss = total.sum()
    walk = explain_backward(loss, inputs=names, file=False)
    watched = [*products, total, loss]
    engine_order = []
    for tensor in watched:
        tensor.register_hook(lambda g, tensor=tensor: engine_order.append(id(tensor)))
    loss.backward()  # hooks fire in the order the engine reaches each tensor
    walked = [id(step.tensor) for step in walk.steps if any(step.tensor is t for t in watched)]
    assert walked == engine_order and len(engine_order) == 5


def test_walkthrough_gradients_equal_grad_after_backward_and_nothing_is_disturbed():
    rng = np.random.default_rng(0)
    x = edugrad.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = edugrad.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    b = edugrad.tensor(rng.standard_normal(5), requires_grad=True)
    hidden = (x @ w + b).relu()
    loss = (hidden.exp() + 1).log().mean() + (hidden * w.sum(0)).sum()
    walk = explain_backward(loss, inputs={"x": x, "w": w, "b": b}, file=io.StringIO(),
                            max_elements=4)
    assert x.grad is None and w.grad is None and b.grad is None
    loss.backward()  # the graph was not freed by the walkthrough
    for tensor in (x, w, b):
        got = walk.grad_of(tensor)
        assert got.shape == tensor.grad.shape and got.dtype == tensor.grad.dtype
        np.testing.assert_allclose(got.numpy(), tensor.grad.numpy(), rtol=1e-12)


def test_printed_values_are_the_grad_values():
    (x,), names = leaves([[0.5, -1.0, 2.0]], "x")
    loss = (x * x.exp()).sum()
    printed = io.StringIO()
    explain_backward(loss, inputs=names, file=printed)
    loss.backward()
    values = ", ".join(f"{v:.6g}" for v in x.grad.tolist())
    assert f"x: [{values}] shape (3,)" in printed.getvalue()


def test_large_tensors_print_as_shape_and_norm():
    x = edugrad.tensor(np.arange(20.0).reshape(4, 5), requires_grad=True)
    printed = io.StringIO()
    explain_backward((x * x).sum(), inputs={"x": x}, file=printed, max_elements=8)
    norm = math.sqrt(sum((2 * v) ** 2 for v in range(20)))
    assert f"x: shape (4, 5), norm {norm:.6g}" in printed.getvalue()


def test_walkthrough_follows_in_place_updates_as_backward_does():
    (x,), names = leaves([[1.0, 2.0]], "x")
    y = x * 2
    z = y + 1
    y.mul_(3)  # z used y before the update; the engine sends z's gradient to y's old node
    loss = (z * y).sum()
    walk = explain_backward(loss, inputs=names, file=False)
    graph = draw_graph(loss, params=names)
    assert kinds(graph) == {"op": 5, "leaf": 1} and len(graph.edges) == 6
    paths = gradient_paths(loss, x)
    loss.backward()
    np.testing.assert_allclose(walk.grad_of(x).numpy(), x.grad.numpy())
    np.testing.assert_allclose(paths.total.numpy(), x.grad.numpy())


def test_walkthrough_runs_tensor_hooks_as_backward_does():
    (x,), names = leaves([[1.0, 2.0]], "x")
    middle = x * 3
    middle.register_hook(lambda g: g * 10)
    loss = (middle * middle).sum()
    walk = explain_backward(loss, inputs=names, file=False)
    loss.backward()
    np.testing.assert_allclose(walk.grad_of(x).numpy(), x.grad.numpy())


def test_walkthrough_of_a_non_scalar_needs_a_gradient():
    (x,), _ = leaves([[1.0, 2.0]], "x")
    with pytest.raises(RuntimeError, match="gradient="):
        explain_backward(x * 2, file=False)
    seed = edugrad.tensor([1.0, -1.0], dtype=edugrad.float64)
    walk = explain_backward(x * 2, gradient=seed, file=False)
    assert walk.grad_of(x).tolist() == [2.0, -2.0]


# ---- gradient paths ------------------------------------------------------------------------------
def test_paths_of_x_times_x_plus_sin_x_times_x_sum_to_the_gradient():
    values = np.array([0.5, -1.25, 2.0])
    (x,), names = leaves([values], "x")
    y = (x * x + x.sin() * x).sum()
    paths = gradient_paths(y, x, names=names)
    assert [p.names for p in paths] == [
        ["x", "Mul#1[0]", "Add#1[0]", "Sum#1"],
        ["x", "Mul#1[1]", "Add#1[0]", "Sum#1"],
        ["x", "Sin#1", "Mul#2[0]", "Add#1[1]", "Sum#1"],
        ["x", "Mul#2[1]", "Add#1[1]", "Sum#1"],
    ]
    expected = [values, values, np.cos(values) * values, np.sin(values)]
    for path, want in zip(paths, expected):
        np.testing.assert_allclose(path.contribution.numpy(), want, rtol=1e-12)
    y.backward()
    np.testing.assert_allclose(paths.total.numpy(), x.grad.numpy(), rtol=1e-12)
    assert "4 paths" in str(paths)


def test_paths_through_matmul_and_broadcasting_sum_to_the_gradient():
    rng = np.random.default_rng(1)
    w = edugrad.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    x = edugrad.tensor(rng.standard_normal((4, 3)))
    hidden = (x @ w).tanh()
    loss = (hidden * w.sum(0) + hidden).mean()
    paths = gradient_paths(loss, w)
    assert len(paths) == 3
    loss.backward()
    np.testing.assert_allclose(paths.total.numpy(), w.grad.numpy(), rtol=1e-12)


def test_too_many_paths_is_a_clear_error_before_any_work():
    (x,), _ = leaves([[1.0]], "x")
    y = x
    for _ in range(30):  # each y * y doubles the paths: 2**30 of them
        y = y * y * 0.5
    with pytest.raises(ValueError, match=r"1073741824 paths .* max_paths=256"):
        gradient_paths(y.sum(), x)


def test_paths_to_an_unused_input_is_an_error():
    (x, z), _ = leaves([[1.0], [2.0]], "xz")
    with pytest.raises(ValueError, match="does not depend"):
        gradient_paths((x * 2).sum(), z)
