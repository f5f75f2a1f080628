"""Reverse-mode automatic differentiation: the backward traversal, grad modes, gradcheck.

Layer: autograd (beside tensor). Imports edugrad.function; NumPy only inside gradcheck, to
perturb host copies of the inputs.

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

from edugrad.function import Function, GradMode

__all__ = [
    "backward", "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "gradcheck", "gradgradcheck", "detect_anomaly", "Function",
]


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
def topological_order(roots) -> list:
    """Every tensor that the roots depend on through ops that need grad, inputs first."""
    order, visited = [], set()
    stack = [(root, False) for root in roots]
    while stack:
        tensor, children_done = stack.pop()
        if children_done:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        ctx = tensor._ctx
        if ctx is None:
            continue
        if ctx.parents is None:
            raise RuntimeError(
                f"Trying to backward through the graph a second time ({ctx.name} was already "
                "used and freed); pass retain_graph=True to the first backward or grad call"
            )
        for parent, version in zip(ctx.parents, ctx.versions):
            if parent._before is not None:
                parent = _as_used(parent, version)
            if parent.requires_grad and id(parent) not in visited:
                stack.append((parent, False))
    return order


def _as_used(tensor, version: int):
    """The tensor as an op used it, at `version`. An in-place update made later with grad on
    moved the tensor onto a new node (Tensor._assign); the node it had before is kept in
    `_before`, so `z = y + 1; y.mul_(3)` still sends z's gradient to y's old node."""
    while tensor._before is not None and version < tensor._before[0]:
        tensor = tensor._before[1]
    return tensor


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
            for parent, version, parent_grad in zip(ctx.parents, ctx.versions, parent_grads):
                if parent._before is not None:
                    parent = _as_used(parent, version)
                if parent_grad is None or not parent.requires_grad:
                    continue
                if parent_grad._data.buffer.shape != parent._data.buffer.shape:
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
        if not create_graph:
            grad = grad.detach()
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
        results.append(g if g is None or create_graph else g.detach())
    return tuple(results)


# ---- checking gradients against finite differences -----------------------------------------------
def _numerical_jacobian_column(fn, inputs, i, index, eps):
    """d(all outputs)/d(inputs[i][index]) by central differences, as one flat host vector."""
    import numpy as np

    def evaluate(delta):
        perturbed = list(inputs)
        host = inputs[i].detach().numpy().copy()
        host[index] += delta
        perturbed[i] = inputs[i]._result_class(host, device=inputs[i].device,
                                       requires_grad=inputs[i].requires_grad)
        outs = fn(*perturbed)  # with grad on: gradgradcheck's fn differentiates inside
        outs = outs if isinstance(outs, (list, tuple)) else (outs,)
        return np.concatenate([o.detach().numpy().ravel() for o in outs])

    return (evaluate(eps) - evaluate(-eps)) / (2 * eps)


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True) -> bool:
    """Compare the gradients backward computes with central finite differences.

    `inputs` are float64 tensors (those with requires_grad=True are checked). Every output
    element is seeded in turn (vector-Jacobian products), so non-scalar outputs work.
    Returns True, or raises (or returns False) naming the input and the worst element.
    """
    import numpy as np

    inputs = tuple(inputs) if isinstance(inputs, (list, tuple)) else (inputs,)
    for i, t in enumerate(inputs):
        if t.requires_grad and t.dtype.name != "float64":
            raise ValueError(f"gradcheck: input {i} is {t.dtype.name}; use float64 inputs")
    outs = fn(*inputs)
    outs = outs if isinstance(outs, (list, tuple)) else (outs,)
    sizes = [o.numel() for o in outs]
    checked = [i for i, t in enumerate(inputs) if t.requires_grad]
    analytic = {i: np.zeros((inputs[i].numel(), sum(sizes))) for i in checked}
    column = 0
    for k, out in enumerate(outs):
        if not out.requires_grad:
            column += sizes[k]
            continue
        for j in range(sizes[k]):
            seed = np.zeros(sizes[k])
            seed[j] = 1.0
            seed_t = out._result_class(seed.reshape(tuple(out.shape)), device=out.device)
            got = grad(out, [inputs[i] for i in checked], seed_t, retain_graph=True,
                       allow_unused=True)
            for i, g in zip(checked, got):
                if g is not None:
                    analytic[i][:, column + j] = g.numpy().ravel()
        column += sizes[k]
    for i in checked:
        shape = tuple(inputs[i].shape)
        for flat in range(inputs[i].numel()):
            index = np.unravel_index(flat, shape) if shape else ()
            numeric = _numerical_jacobian_column(fn, inputs, i, index, eps)
            difference = np.abs(analytic[i][flat] - numeric)
            bound = atol + rtol * np.abs(numeric)
            if np.any(difference > bound) or np.any(np.isnan(analytic[i][flat]) != np.isnan(numeric)):
                worst = int(np.argmax(difference - bound))
                message = (
                    f"gradcheck: input {i} (shape {shape}), element {tuple(int(v) for v in index)}: "
                    f"backward gives {analytic[i][flat][worst]:.8g} for output element {worst}, "
                    f"finite differences give {numeric[worst]:.8g}"
                )
                if raise_exception:
                    raise AssertionError(message)
                return False
    return True


def gradgradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  raise_exception: bool = True) -> bool:
    """gradcheck of the gradient itself: checks second derivatives (create_graph backward).

    The function checked is inputs -> d(sum(fn(inputs) * v))/d(inputs) for a fixed random v,
    whose own backward runs the graph that the first backward recorded.
    """
    import numpy as np

    inputs = tuple(inputs) if isinstance(inputs, (list, tuple)) else (inputs,)
    outs = fn(*inputs)
    outs = outs if isinstance(outs, (list, tuple)) else (outs,)
    rng = np.random.default_rng(0)
    weights = [o._result_class(rng.standard_normal(tuple(o.shape)), device=o.device) for o in outs]
    checked = [i for i, t in enumerate(inputs) if t.requires_grad]

    def first_derivatives(*args):
        results = fn(*args)
        results = results if isinstance(results, (list, tuple)) else (results,)
        total = None
        for r, w in zip(results, weights):
            term = (r * w).sum()
            total = term if total is None else total + term
        got = grad(total, [args[i] for i in checked], create_graph=True, allow_unused=True)
        return tuple(g for g in got if g is not None)

    return gradcheck(first_derivatives, inputs, eps, atol, rtol, raise_exception)


from edugrad.anomaly import detect_anomaly  # noqa: E402  (anomaly.py imports only function.py)
