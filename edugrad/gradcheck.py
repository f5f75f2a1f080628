"""gradcheck and gradgradcheck: are the gradients backward computes right? Compared with
central finite differences, (f(x + eps) - f(x - eps)) / 2 eps, one input element at a time.

Layer: tools above autograd. Imports edugrad.autograd (grad, for the vector-Jacobian products)
and NumPy: it perturbs host copies of the inputs and compares on the host, which the layers
below never do. Reachable as edugrad.autograd.gradcheck and edugrad.autograd.gradgradcheck,
PyTorch's names.

    x = edugrad.tensor([1.0, 2.0], dtype=edugrad.float64, requires_grad=True)
    edugrad.autograd.gradcheck(lambda x: (x * x).sum(), [x])       # True

Why float64: with eps = 1e-6, float32's rounding (about 1e-7 relative) would swamp the
difference being measured.
"""

from __future__ import annotations

import numpy as np

from edugrad.autograd import grad

__all__ = ["gradcheck", "gradgradcheck"]


def _numerical_jacobian_column(fn, inputs, i, index, eps):
    """d(all outputs)/d(inputs[i][index]) by central differences, as one flat host vector."""
    def evaluate(delta):
        perturbed = list(inputs)
        host = inputs[i].detach().numpy().copy()
        host[index] += delta
        perturbed[i] = inputs[i]._from_data(host, device=inputs[i].device,
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
            seed_t = out._from_data(seed.reshape(tuple(out.shape)), device=out.device)
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
    inputs = tuple(inputs) if isinstance(inputs, (list, tuple)) else (inputs,)
    outs = fn(*inputs)
    outs = outs if isinstance(outs, (list, tuple)) else (outs,)
    rng = np.random.default_rng(0)
    weights = [o._from_data(rng.standard_normal(tuple(o.shape)), device=o.device) for o in outs]
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
