"""explain_backward and gradient_paths: the chain rule, one step at a time.

Layer: teaching tools. Imports edugrad.autograd (the engine's topological order, grad modes) and
graph.py (walking and naming); it calls each Function's own `backward`, as run_backward does.

explain_backward runs its own copy of the engine's loop, printing as it goes:

    for tensor in reversed(topological order):       # every consumer before its producer
        grad = gradients waiting for this tensor       # summed if several consumers sent one
        if tensor is a leaf: that sum is what .grad receives
        else: ctx.backward(grad) -> one gradient per input, sent on to each input

It never frees the graph and never writes .grad, so `loss.backward()` afterwards still works and
gives the gradients it printed (the tests check that). For loss = (a * b + a).sum():

    step 3: MulBackward (of Mul#1)
        local derivative: d(x y)/dx = y, d(x y)/dy = x
        grad in:  [1, 1] shape (2,)
        grad out[0] -> a: [3, 4] shape (2,)
        grad out[1] -> b: [1, 2] shape (2,)
        a accumulates: contribution 2, sum so far [4, 5] shape (2,)

gradient_paths splits one input's gradient by the routes it took. In y = x*x + sin(x)*x there
are four: x enters the first Mul twice, Sin once and the second Mul once. Sending the seed
down one route only, taking at each Function the gradient for the one input on the route, gives
that route's contribution (the product of the local derivatives along it); the chain rule says
the contributions add up to dy/dx.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from edugrad.autograd import no_grad, topological_order
from edugrad.views import inputs_as_used
from edugrad.viz.graph import graph_order, leaf_names

__all__ = ["explain_backward", "gradient_paths", "BackwardStep", "GradientPath"]


@dataclass
class BackwardStep:
    """One Function's backward: what came in, what went out, and where gradients met.

    tensor and name: the Function's output and its readable name ('Mul#1');
    grad_output: the gradient that arrived for it;
    grad_inputs: (input name, gradient or None) per input of the Function;
    accumulations: (input name, contribution number, sum so far) for each input that received
    its second (third, ...) contribution in this step.
    """

    index: int
    function: str
    formula: str
    tensor: object
    name: str
    grad_output: object
    grad_inputs: list = field(default_factory=list)
    accumulations: list = field(default_factory=list)


@dataclass
class LeafGradient:
    """What backward() adds to a leaf's .grad (the sum of every contribution)."""

    name: str
    tensor: object
    grad: object
    contributions: int


@dataclass
class Walkthrough:
    """The result of explain_backward: the steps in engine order, then each leaf's gradient."""

    steps: list
    leaves: list

    def grad_of(self, tensor):
        """The gradient that backward() would add to `tensor`'s .grad (None if it gets none)."""
        for leaf in self.leaves:
            if leaf.tensor is tensor:
                return leaf.grad
        return None

    def __iter__(self):
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)


def tensor_names(order: list, params=None) -> dict:
    """id(tensor) -> a readable name: the given names for leaves, 'Mul#2' for op outputs."""
    given = leaf_names(params)
    names, counts, unnamed = {}, {}, 0
    for tensor in order:
        if id(tensor) in given:
            names[id(tensor)] = given[id(tensor)]
        elif tensor._ctx is None:
            names[id(tensor)] = f"leaf{unnamed}"
            unnamed += 1
        else:
            op = type(tensor._ctx).__name__
            counts[op] = counts.get(op, 0) + 1
            names[id(tensor)] = f"{op}#{counts[op]}"
    return names


def format_tensor(tensor, max_elements: int = 8) -> str:
    """The values of a small tensor; shape and norm of a large one."""
    if tensor is None:
        return "None"
    values = tensor.detach()
    if values.numel() <= max_elements:
        flat = [float(v) for v in values.reshape(-1).tolist()]
        text = ", ".join(f"{v:.6g}" for v in flat)
        return text if values.ndim == 0 else f"[{text}] shape {tuple(values.shape)}"
    norm = float((values.double() * values.double()).sum().sqrt().item())
    return f"shape {tuple(values.shape)}, norm {norm:.6g}"


def explain_backward(loss, inputs=None, file=None, max_elements: int = 8, gradient=None):
    """Print the backward pass of `loss` step by step, in the engine's order; return the steps.

    inputs        names for leaves: a Module, a dict name -> Tensor or a list of tensors
    file          where to print (default sys.stdout; pass False to print nothing)
    max_elements  tensors up to this size are printed in full, larger ones as shape and norm
    gradient      the seed for a non-scalar `loss` (as in loss.backward(gradient))

    Tensor hooks run, as they do in backward(). The graph is kept and no .grad is touched.
    """
    out = sys.stdout if file is None else file

    def say(lines: list) -> None:  # as it goes: a step that fails shows the ones before it
        if out is not False:
            print("\n".join(lines), file=out)

    names = tensor_names(graph_order(loss, what="explain_backward"), inputs)
    order = topological_order([loss])  # the engine's own order, so the steps come as it runs
    if gradient is None:
        if loss.numel() != 1:
            raise RuntimeError(f"explain_backward: the output has shape {tuple(loss.shape)}; "
                               "pass gradient= of that shape, or reduce it to a scalar")
        gradient = loss.new_ones(loss.shape)
    say([f"backward from {names[id(loss)]} {tuple(loss.shape)}, "
         f"seed gradient {format_tensor(gradient, max_elements)}"])
    grads, received = {id(loss): gradient}, {id(loss): 1}
    steps, leaves = [], []
    with no_grad():
        for tensor in reversed(order):
            grad = grads.pop(id(tensor), None)
            if grad is None:
                continue
            for hook in tensor._hooks or ():
                result = hook(grad)
                grad = grad if result is None else result
            ctx = tensor._ctx
            if ctx is None:
                leaves.append(LeafGradient(names[id(tensor)], tensor, grad, received[id(tensor)]))
                continue
            step = BackwardStep(len(steps) + 1, ctx.name, ctx.formula, tensor, names[id(tensor)],
                                grad)
            parent_grads = ctx.backward(grad)
            if not isinstance(parent_grads, tuple):
                parent_grads = (parent_grads,)
            for parent, parent_grad in zip(inputs_as_used(ctx), parent_grads):
                if not parent.requires_grad:
                    parent_grad = None
                step.grad_inputs.append((names.get(id(parent), "constant"), parent_grad))
                if parent_grad is None:
                    continue
                key = id(parent)
                if key in grads:
                    grads[key] = grads[key] + parent_grad
                    received[key] += 1
                    step.accumulations.append((names[key], received[key], grads[key]))
                else:
                    grads[key], received[key] = parent_grad, 1
            steps.append(step)
            say(_step_lines(step, max_elements))
    lines = ["leaf gradients (what .grad receives from backward()):"]
    for leaf in leaves:
        many = f"  (sum of {leaf.contributions} contributions)" if leaf.contributions > 1 else ""
        lines.append(f"  {leaf.name}: {format_tensor(leaf.grad, max_elements)}{many}")
    say(lines)
    return Walkthrough(steps, leaves)


def _step_lines(step: BackwardStep, max_elements: int) -> list:
    lines = [f"step {step.index}: {step.function} (of {step.name})",
             f"    local derivative: {step.formula or '(not documented)'}",
             f"    grad in:  {format_tensor(step.grad_output, max_elements)}"]
    for i, (name, grad) in enumerate(step.grad_inputs):
        shown = format_tensor(grad, max_elements) if grad is not None else "no gradient needed"
        lines.append(f"    grad out[{i}] -> {name}: {shown}")
    for name, count, total in step.accumulations:
        lines.append(f"    {name} accumulates: contribution {count}, "
                     f"sum so far {format_tensor(total, max_elements)}")
    return lines


# ---- gradient paths -----------------------------------------------------------------------------
@dataclass
class GradientPath:
    """One route from the input to the output and what it contributes to the input's gradient.

    names: the input, then each Function passed, as 'Mul#1[0]' (entered Mul#1 as its input 0).
    """

    names: list
    contribution: object

    def __str__(self) -> str:
        return f"{' -> '.join(self.names)}: {format_tensor(self.contribution)}"


class GradientPaths(list):
    """A list of GradientPath; `total` is their sum (the input's gradient)."""

    total = None

    def __str__(self) -> str:
        lines = [f"{len(self)} paths"] + [f"  {path}" for path in self]
        lines.append(f"  sum: {format_tensor(self.total)}")
        return "\n".join(lines)


def gradient_paths(output, input, max_paths: int = 256, names=None, gradient=None):
    """Every path from `input` to `output` through the graph, with its contribution.

    The contributions sum to d(output)/d(input) (what input.grad gets from output.backward()).
    Raises ValueError when there are more than max_paths paths (they grow exponentially).
    Hooks are not run: a path is the plain chain rule.
    """
    order = graph_order(output, what="gradient_paths")
    labels = tensor_names(order, names)
    if names is None:
        labels[id(input)] = "input"
    count = _count_paths(order, output, input)
    if count == 0:
        raise ValueError("gradient_paths: the output does not depend on the input through any "
                         "operation that records gradients")
    if count > max_paths:
        raise ValueError(f"gradient_paths: {count} paths lead from the input to the output, more "
                         f"than max_paths={max_paths}; pass a larger max_paths or pick an input "
                         "closer to the output")
    if gradient is None:
        if output.numel() != 1:
            raise RuntimeError(f"gradient_paths: the output has shape {tuple(output.shape)}; "
                               "pass gradient= of that shape, or reduce it to a scalar")
        gradient = output.new_ones(output.shape)
    reaches = _reaches(order, input)
    paths = GradientPaths()
    # depth first from the output; each entry carries the gradient along its route so far, and
    # the route as hops "Mul#1[0]" (entered Mul#1 as its input 0), output end first
    stack = [(output, gradient, [])]
    with no_grad():
        while stack:
            tensor, grad, hops = stack.pop()
            if tensor is input:
                paths.append(GradientPath([labels[id(input)]] + hops[::-1], grad))
                continue
            ctx = tensor._ctx
            parent_grads = ctx.backward(grad)
            if not isinstance(parent_grads, tuple):
                parent_grads = (parent_grads,)
            parents = inputs_as_used(ctx)
            several = len(parents) > 1
            branches = [
                (parent, parent_grad, hops + [labels[id(tensor)] + (f"[{i}]" if several else "")])
                for i, (parent, parent_grad) in enumerate(zip(parents, parent_grads))
                if parent_grad is not None and id(parent) in reaches
            ]
            stack.extend(reversed(branches))  # so paths come out in input order
    for path in paths:
        paths.total = path.contribution if paths.total is None else paths.total + path.contribution
    return paths


def _reaches(order: list, input) -> set:
    """ids of the tensors from which `input` can be reached going towards the leaves."""
    found = set()
    for tensor in order:  # inputs first, so parents are decided before their consumers
        if tensor is input or (tensor._ctx is not None and any(
                id(p) in found for p in inputs_as_used(tensor._ctx))):
            found.add(id(tensor))
    return found


def _count_paths(order: list, output, input) -> int:
    """The number of routes from output down to input: counted, not listed, so a huge number
    is caught before any work."""
    ways = {id(output): 1}
    for tensor in reversed(order):  # consumers before producers
        n = ways.get(id(tensor), 0)
        if not n or tensor is input or tensor._ctx is None:
            continue
        for parent in inputs_as_used(tensor._ctx):
            if parent.requires_grad:
                ways[id(parent)] = ways.get(id(parent), 0) + n
    return ways.get(id(input), 0)
