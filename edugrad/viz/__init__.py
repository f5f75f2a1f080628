"""Teaching tools: look at a computation instead of reading about it.

Layer: teaching tools, on top of everything: they import autograd and nn (draw_graph uses a
Module duck-typed); matplotlib only to plot, and only when it is installed.

    draw_graph(loss, params=model)      the graph autograd recorded: DOT, Mermaid, SVG, HTML
    draw_trace(edugrad.jit(step))       the primitive calls edugrad.jit recorded, drawn alike
    explain_backward(loss)              the backward pass step by step, with each formula
    gradient_paths(loss, x)             every path from x to loss and what it contributes
    GradientMonitor(model)              gradient and weight norms per step; vanishing,
                                        exploding and dead-ReLU flags; a PNG plot
    estimate_bounds(f, x, eps)          output bounds over a box: first-order or interval
"""

from edugrad.viz.bounds import Bounds, estimate_bounds
from edugrad.viz.explain import explain_backward, gradient_paths
from edugrad.viz.graph import Graph, draw_graph, trace_modules
from edugrad.viz.monitor import GradientMonitor
from edugrad.viz.trace import draw_trace

__all__ = [
    "draw_graph", "draw_trace", "trace_modules", "Graph", "explain_backward", "gradient_paths",
    "GradientMonitor", "estimate_bounds", "Bounds",
]
