"""L-BFGS: a quasi-Newton method that builds a curvature estimate from the last few steps.

Layer: nn/optim (top). Imports edugrad.optim.optimizer and edugrad.shape; never NumPy.

Each `step(closure)` runs up to `max_iter` iterations, each of which
  1. turns the gradient g into a direction d = -H g, where H approximates the inverse Hessian
     from the last `history_size` pairs (s = the step taken, y = the change of g it caused),
     by the two-loop recursion (Nocedal & Wright, "Numerical Optimization", algorithm 7.4);
  2. moves the parameters along d by a step t: lr (the first iteration of all: min(1, 1/|g|_1)
     lr), or, with `line_search_fn="strong_wolfe"`, a t that satisfies the strong Wolfe
     conditions (enough decrease, and a slope that has flattened), found by bracketing and
     cubic interpolation (algorithms 3.5 and 3.6 there);
  3. re-evaluates the closure (the loss and its gradient at the new point).
It stops early when the gradient, the step or the change of the loss gets below a tolerance.

The port follows torch/optim/lbfgs.py line by line, so the iterates are PyTorch's. Scalars
(dot products, t, the loss) are Python floats here, 0-d tensors there: the same doubles.
Like PyTorch's, it supports one parameter group only, and all parameters on one device.

    >>> opt = LBFGS(model.parameters(), lr=1, line_search_fn="strong_wolfe")
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = loss_fn(model(x), y)
    ...     loss.backward()
    ...     return loss
    >>> opt.step(closure)
"""

from __future__ import annotations

import math

from edugrad.autograd import enable_grad, no_grad
from edugrad.optim.optimizer import Optimizer, check_option
from edugrad.shape import cat


def _dot(a, b) -> float:
    return float((a * b).sum().item())


def _max_abs(a) -> float:
    return float(a.abs().max().item())


class LBFGS(Optimizer):
    """torch.optim.LBFGS: the same options, the same iterates."""

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn: str | None = None) -> None:
        check_option("LBFGS", "learning rate", lr, 0.0)
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got "
                             f"{line_search_fn!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def load_state_dict(self, state_dict: dict) -> None:
        """As Optimizer's, but the state is not per parameter: it is flat vectors over all of
        them (d, prev_flat_grad) and lists of such (the history), kept as saved."""
        saved = state_dict.get("state", {}) if isinstance(state_dict, dict) else {}
        super().load_state_dict({**state_dict, "state": {}})
        for index, state in saved.items():
            self.state[self._params[index]] = {key: _copy(value) for key, value in state.items()}

    # ---- the parameters as one flat vector ----------------------------------------------------
    def _gather_flat_grad(self):
        return cat([p.grad.reshape(-1) if p.grad is not None else p.new_zeros((p.numel(),))
                    for p in self._params], 0)

    def _add_grad(self, step_size: float, update) -> None:
        offset = 0
        for p in self._params:
            count = p.numel()
            p.data = p + update[offset:offset + count].reshape(p.shape) * step_size
            offset += count

    def _directional_evaluate(self, closure, x: list, t: float, d):
        """The loss and flat gradient at x + t d; the parameters are put back at x."""
        self._add_grad(t, d)
        loss = float(closure())
        flat_grad = self._gather_flat_grad()
        for p, saved in zip(self._params, x):
            p.data = saved
        return loss, flat_grad

    # ---- the step -----------------------------------------------------------------------------
    def step(self, closure):  # noqa: C901  (the algorithm reads best in one piece)
        """Run up to max_iter iterations; returns the loss of the first closure call."""
        if closure is None:
            raise RuntimeError("LBFGS.step: needs a closure that re-evaluates the model and "
                               "returns the loss")
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]

        def evaluate():
            with enable_grad():
                return closure()

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        orig_loss = evaluate()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        with no_grad():
            flat_grad = self._gather_flat_grad()
            if _max_abs(flat_grad) <= tolerance_grad:
                return orig_loss
            d, t = state.get("d"), state.get("t")
            old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
            h_diag, prev_flat_grad = state.get("H_diag"), state.get("prev_flat_grad")
            prev_loss = state.get("prev_loss")
            n_iter = 0
            while n_iter < max_iter:
                n_iter += 1
                state["n_iter"] += 1
                if state["n_iter"] == 1:
                    d, old_dirs, old_stps, ro, h_diag = -flat_grad, [], [], [], 1.0
                else:
                    y, s = flat_grad - prev_flat_grad, d * t
                    ys = _dot(y, s)
                    if ys > 1e-10:  # keep the pair only when the curvature is positive
                        if len(old_dirs) == history_size:
                            old_dirs.pop(0), old_stps.pop(0), ro.pop(0)
                        old_dirs.append(y), old_stps.append(s), ro.append(1.0 / ys)
                        h_diag = ys / _dot(y, y)
                    d = _two_loop(-flat_grad, old_dirs, old_stps, ro, h_diag)
                prev_flat_grad, prev_loss = flat_grad, loss
                t = min(1.0, 1.0 / float(flat_grad.abs().sum().item())) * lr \
                    if state["n_iter"] == 1 else lr
                gtd = _dot(flat_grad, d)
                if gtd > -tolerance_change:  # not a descent direction
                    break
                evals = 0
                if group["line_search_fn"] is not None:
                    x_init = [p.detach().clone() for p in self._params]

                    def obj_func(x, step, direction):
                        return self._directional_evaluate(evaluate, x, step, direction)

                    loss, flat_grad, t, evals = _strong_wolfe(
                        obj_func, x_init, t, d, loss, flat_grad, gtd,
                        max_ls=max_eval - current_evals)
                    self._add_grad(t, d)
                    opt_cond = _max_abs(flat_grad) <= tolerance_grad
                else:
                    self._add_grad(t, d)
                    opt_cond = False
                    if n_iter != max_iter:
                        loss = float(evaluate())
                        flat_grad = self._gather_flat_grad()
                        opt_cond = _max_abs(flat_grad) <= tolerance_grad
                        evals = 1
                current_evals += evals
                state["func_evals"] += evals
                if (n_iter == max_iter or current_evals >= max_eval or opt_cond
                        or _max_abs(d * t) <= tolerance_change
                        or abs(loss - prev_loss) < tolerance_change):
                    break
            state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag,
                         prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss


def _copy(value):
    """A saved state value, copied so that later steps leave the saved dict alone."""
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value.detach().clone() if hasattr(value, "detach") else value


def _two_loop(q, old_dirs: list, old_stps: list, ro: list, h_diag: float):
    """-H g by the two-loop recursion, from q = -g and the stored (y, s, 1 / y.s) pairs."""
    alphas = [0.0] * len(old_dirs)
    for i in range(len(old_dirs) - 1, -1, -1):
        alphas[i] = _dot(old_stps[i], q) * ro[i]
        q = q - old_dirs[i] * alphas[i]
    r = q * h_diag
    for i in range(len(old_dirs)):
        beta = _dot(old_dirs[i], r) * ro[i]
        r = r + old_stps[i] * (alphas[i] - beta)
    return r


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None) -> float:
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2, clamped
    to bounds (default: between x1 and x2); their midpoint when the cubic has none."""
    low, high = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square < 0:
        return (low + high) / 2.0
    d2 = math.sqrt(d2_square)
    if x1 <= x2:
        min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(min_pos, low), high)


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                  max_ls=25):  # noqa: C901
    """A step t along d with f(x + t d) <= f + c1 t gtd and |slope| <= c2 |gtd|.

    Phase 1 walks t up (cubic extrapolation) until a bracket holds a point that qualifies;
    phase 2 zooms into the bracket (cubic interpolation, kept away from its ends)."""
    d_norm = _max_abs(d)
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = _dot(g_new, d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        min_step, max_step = t + 0.01 * (t - t_prev), t * 10
        previous = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                               bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = previous, f_new, g_new, gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = _dot(g_new, d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                               bracket[1], bracket_f[1], bracket_gtd[1])
        # stay away from the bracket's ends: a point there would make little progress
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) \
                    else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = _dot(g_new, d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new, gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new, gtd_new
    t = bracket[low_pos]
    return bracket_f[low_pos], bracket_g[low_pos], t, ls_func_evals
