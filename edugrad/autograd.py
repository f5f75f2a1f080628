"""Reverse-mode automatic differentiation: the backward traversal, grad and grad modes.

Layer: autograd (beside tensor). Imports edugrad.function and edugrad.anomaly; never NumPy.
gradcheck and gradgradcheck, which compare with finite differences on host copies, live in
gradcheck.py and are reachable here under PyTorch's names (see __getattr__ at the bottom).

How backward works, on `loss = (x * w).sum()`:

    x ─┐
       ├─ Mul ── t ── Sum ── loss
    w ─┘

1. Sort the graph topologically from `loss` back to the leaves, with an explicit stack (no
   recursion, so a chain of 100,000 ops is fine): [x, w, t, loss].
2. Walk that order backwards. `loss` gets the seed gradient 1. Sum's backward turns it into a
   gradient for t (ones of t's shape). Mul's backward turns t's gradient into one for x (times w)
   and one for w (times x).
3. A tensor used twice receives two gradients; they are added before its own op runs, which is
   why the topological order matters: every consumer is done before the producer starts.
4. Leaves that require grad get the sum in `.grad` (added to what is there, as PyTorch does).
5. Unless retain_graph=True, each op drops its inputs once used: the graph is freed, and a
   second backward through it raises an error that says so.
"""

from __future__ import annotations

from edugrad import function  # PyTorch's path too: edugrad.autograd.function.once_differentiable
from edugrad.anomaly import detect_anomaly
from edugrad.function import Function, FunctionCtx, GradMode, once_differentiable
from edugrad.views import as_used, copy_values

__all__ = [
    "backward", "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "gradcheck", "gradgradcheck", "detect_anomaly", "Function", "FunctionCtx",
    "once_differentiable",
]

# Function here is the library's own (edugrad/function.py), in both of its styles: edugrad's,
# `def forward(self, x)` on TensorData; and PyTorch's, `@staticmethod def forward(ctx, x)` on
# Tensors, which a subclass gets just by writing its forward that way (see function.py's end).


# ---- grad modes: per thread, as in PyTorch (GradMode is a threading.local) ----------------------
def is_grad_enabled() -> bool:
    """Whether ops in the calling thread record the graph; each new thread starts with True."""
    return GradMode.enabled


class set_grad_enabled:
    """Turn graph recording on or off for the calling thread. A plain call sets it and leaves it
    set, `edugrad.set_grad_enabled(False)`; as a context manager it restores the state it found."""

    def __init__(self, mode: bool) -> None:
        self.previous = GradMode.enabled
        GradMode.enabled = bool(mode)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        GradMode.enabled = self.previous


class _GradModeContext:
    mode = True

    def __new__(cls, function=None):
        # `@no_grad` works as a decorator without the call too, as in PyTorch
        context = super().__new__(cls)
        return context(function) if function is not None else context

    def __enter__(self) -> None:
        self.previous = GradMode.enabled
        GradMode.enabled = self.mode

    def __exit__(self, *exc) -> None:
        GradMode.enabled = self.previous

    def __call__(self, function):  # usable as a decorator too: @no_grad()
        def wrapper(*args, **kwargs):
            with type(self)():
                return function(*args, **kwargs)

        wrapper.__name__, wrapper.__doc__ = function.__name__, function.__doc__
        return wrapper


class no_grad(_GradModeContext):
    """Inside `with edugrad.no_grad():` no graph is recorded (evaluation, optimizer steps)."""

    mode = False


class enable_grad(_GradModeContext):
    mode = True


# ---- the traversal ----------------------------------------------------------------------------
def topological_order(roots, include_constants: bool = False, key=id, what: str = "") -> list:
    """Every tensor that the roots depend on through ops that need grad, inputs first.

    The teaching tools walk the same way: `include_constants` follows the inputs that need no
    gradient too, `key` says when two tensors are one node, `what` names the tool in the error
    for a freed graph.
    """
    order, visited = [], set()
    stack = [(root, False) for root in roots]
    while stack:
        tensor, children_done = stack.pop()
        if children_done:
            order.append(tensor)
            continue
        if key(tensor) in visited:
            continue
        visited.add(key(tensor))
        stack.append((tensor, True))
        ctx = tensor._ctx
        if ctx is None:
            continue
        if ctx.parents is None:
            raise RuntimeError(
                f"{what}: the graph behind {ctx.name} was freed by backward(); call {what} "
                "before backward, or run backward(retain_graph=True)" if what else
                f"Trying to backward through the graph a second time ({ctx.name} was already "
                "used and freed); pass retain_graph=True to the first backward or grad call"
            )
        for parent in ctx.parents[::-1]:  # reversed: the first input is visited first
            if parent._before is not None:  # updated in place since: the node it had then
                parent = _as_used_by(ctx, parent)
            if (parent.requires_grad or include_constants) and key(parent) not in visited:
                stack.append((parent, False))
    return order


def _as_used_by(ctx, parent):
    """`parent` (one of ctx.parents) as ctx used it: the node it had at the version ctx saw
    (views.as_used). Looked up only for a tensor updated in place since, so that the common
    case walks ctx.parents alone, with no zip against ctx.versions (~0.15 us a node). A tensor
    passed twice, as in x * x, was seen at one version both times."""
    for tensor, version in zip(ctx.parents, ctx.versions):
        if tensor is parent:
            return as_used(parent, version)


def run_backward(roots, grad_roots, retain_graph: bool, create_graph: bool, on_leaf, inputs=None):
    """Propagate gradients from `roots`; call on_leaf(tensor, grad) for each leaf reached
    (and for each tensor in `inputs`, when given). Returns nothing."""
    order = topological_order(roots)
    grads = {}
    for root, seed in zip(roots, grad_roots):
        grads[id(root)] = seed if id(root) not in grads else grads[id(root)] + seed
    wanted = None if inputs is None else {id(t) for t in inputs}
    previous_mode = GradMode.enabled
    GradMode.enabled = create_graph  # backward ops build a graph only for grad-of-grad
    try:
        for tensor in reversed(order):
            grad = grads.pop(id(tensor), None)
            if grad is None:
                continue
            if tensor._hooks:
                for hook in tensor._hooks:
                    result = hook(grad)
                    grad = grad if result is None else result
            ctx = tensor._ctx
            if ctx is None or (wanted is not None and id(tensor) in wanted):
                on_leaf(tensor, grad)
                if ctx is None:
                    continue
            elif tensor._retains_grad:
                on_leaf(tensor, grad)
            parent_grads = ctx.backward(grad)
            if not isinstance(parent_grads, tuple):
                parent_grads = (parent_grads,)
            if len(parent_grads) != len(ctx.parents):
                raise RuntimeError(
                    f"{ctx.name} returned {len(parent_grads)} gradients for "
                    f"{len(ctx.parents)} inputs"
                )
            for parent, parent_grad in zip(ctx.parents, parent_grads):
                if parent._before is not None:
                    parent = _as_used_by(ctx, parent)
                if parent_grad is None or not parent.requires_grad:
                    continue
                if parent_grad._data.shape != parent._data.shape:
                    raise RuntimeError(
                        f"{ctx.name} returned a gradient of shape {tuple(parent_grad.shape)} "
                        f"for an input of shape {tuple(parent.shape)}"
                    )
                key = id(parent)
                grads[key] = parent_grad if key not in grads else grads[key] + parent_grad
            if not retain_graph:
                ctx.release()
    finally:
        GradMode.enabled = previous_mode


def _seed_gradients(outputs, grad_outputs, what: str):
    seeds = []
    for i, output in enumerate(outputs):
        given = grad_outputs[i] if grad_outputs is not None else None
        if given is None:
            if output.numel() != 1:
                raise RuntimeError(
                    f"{what}: grad can be implicitly created only for scalar outputs, but "
                    f"output {i} has shape {tuple(output.shape)}; pass gradient= of that shape"
                )
            given = output.new_ones(output.shape)
        elif tuple(given.shape) != tuple(output.shape):
            raise RuntimeError(
                f"{what}: gradient of shape {tuple(given.shape)} does not match output "
                f"{i} of shape {tuple(output.shape)}"
            )
        seeds.append(given)
    return seeds


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False) -> None:
    """Accumulate d(tensors)/d(leaf) into every leaf's `.grad` (Tensor.backward calls this)."""
    tensors = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
    if grad_tensors is not None and not isinstance(grad_tensors, (list, tuple)):
        grad_tensors = [grad_tensors]
    for i, t in enumerate(tensors):
        if not t.requires_grad:
            raise RuntimeError(
                f"backward: element {i} of tensors does not require grad and has no grad_fn "
                "(did you forget requires_grad=True, or compute it under no_grad?)"
            )
    seeds = _seed_gradients(tensors, grad_tensors, "backward")
    retain_graph = create_graph if retain_graph is None else retain_graph

    def accumulate(leaf, grad):
        if not create_graph:  # a tensor of its own: two leaves may get one gradient tensor
            grad = copy_values(grad)
        leaf.grad = grad if leaf.grad is None else leaf.grad + grad

    run_backward(tensors, seeds, retain_graph, create_graph, accumulate)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """The gradients of `outputs` with respect to `inputs`, returned (no .grad is touched).
    With create_graph=True the results are part of a graph: differentiate them again."""
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    single = not isinstance(inputs, (list, tuple))
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is not None and not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    seeds = _seed_gradients(outputs, grad_outputs, "grad")
    retain_graph = create_graph if retain_graph is None else retain_graph
    found = {}

    def collect(tensor, g):
        key = id(tensor)
        found[key] = g if key not in found else found[key] + g

    run_backward(outputs, seeds, retain_graph, create_graph, collect, inputs=inputs)
    results = []
    for i, t in enumerate(inputs):
        g = found.get(id(t))
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} was not used to compute the outputs; pass allow_unused=True"
            )
        results.append(g if g is None or create_graph else copy_values(g))
    return tuple(results)


# ---- gradcheck, under PyTorch's names ----------------------------------------------------------
def __getattr__(name: str):
    """edugrad.autograd.gradcheck and .gradgradcheck, PyTorch's names for the finite-difference
    checks in edugrad/gradcheck.py. That module builds on grad() above and compares on host
    copies with NumPy; importing it at the top here would make a cycle (and bring NumPy into
    this layer), so it is imported when first asked for."""
    if name in ("gradcheck", "gradgradcheck"):
        from edugrad import gradcheck

        globals().update(gradcheck=gradcheck.gradcheck, gradgradcheck=gradcheck.gradgradcheck)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
