"""draw_trace: the program edugrad.jit recorded, drawn like draw_graph draws autograd's graph.

Layer: teaching tools, on top. Imports edugrad.capture (what it draws) and its sibling graph.py
(the Graph that renders DOT, Mermaid, SVG and HTML).

Autograd's graph has one box per Function; a jit program has one box per primitive call, the
level below, forward, backward and optimizer update in one picture:

    step = edugrad.jit(train_step)
    for x, y in batches: step(x, y)
    draw_trace(step).svg()      argument / tensor-read boxes at the top, then every call,
                                the calls that write a parameter or a .grad marked as outputs

Constants (the FULL and EXPAND that a replay skips) are drawn as "saved" boxes.
"""

from __future__ import annotations

from edugrad.capture import Jit, Program, path_name
from edugrad.viz.graph import Edge, Graph, Node

__all__ = ["draw_trace"]


def draw_trace(step, which: int = -1) -> Graph:
    """The recorded program of a jitted step (its last one by default, `which` for another:
    one program is kept per argument shape) as a Graph."""
    if not isinstance(step, Jit):
        raise TypeError(f"draw_trace: expected a step made by edugrad.jit, got "
                        f"{type(step).__name__}")
    programs = list(step.programs.values())
    if not programs:
        raise ValueError(f"draw_trace: {step.name} has no recorded program yet; call it three "
                         "times first (a warm-up call and two recordings)")
    return program_graph(programs[which])


def program_graph(program: Program) -> Graph:
    nodes, edges, made_by = [], [], {}  # made_by: register -> the node that holds it

    def add(node: Node, register: int) -> None:
        node.id = f"n{len(nodes)}"
        nodes.append(node)
        made_by[register] = node

    for reg, path in program.argument_loads:
        add(Node("", "leaf", f"argument {path_name(path)}", [str(program.load_shapes[reg])]), reg)
    for reg, tensor in program.tensor_loads:
        add(Node("", "leaf", f"{type(tensor).__name__} read", [str(tuple(tensor.shape))]), reg)
    for reg, value in enumerate(program.registers):
        if value is not None:
            add(Node("", "saved", "constant", [str(tuple(value.shape))],
                     tooltip="made once at capture; a replay does not repeat it"), reg)
    for (op, out, args, shape), (_, _, slots, _, _) in zip(program.listing, program.steps):
        statics = [a for a in args if not a.startswith("%")]
        node = Node("", "op", op.method, [str(shape)] + statics[:2], tooltip=op.spec.split("\n")[0])
        add(node, out)
        for _, reg in slots:
            edges.append(Edge(made_by[reg].id, node.id))
    for tensor, reg in program.writes:
        made_by[reg].is_output = True
        made_by[reg].details.append(f"-> {type(tensor).__name__} {tuple(tensor.shape)}")
    for tensor, reg, _ in program.grads:
        made_by[reg].is_output = True
        made_by[reg].details.append(f"-> .grad {tuple(tensor.shape)}")
    return Graph(nodes, edges)
