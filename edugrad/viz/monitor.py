"""GradientMonitor: watch gradients flow through a model while it trains.

Layer: teaching tools. Imports edugrad.autograd (no_grad) and, for ReLU detection, edugrad.nn;
matplotlib only inside plot(), and only if it is installed (an optional dependency).

    monitor = GradientMonitor(model)
    for step, (x, y) in enumerate(loader):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        monitor.record(step)                  # gradient and weight norm of every parameter
        with monitor.record_update():         # ||w_after - w_before|| / ||w_before||
            optimizer.step()
    print(monitor.report())                   # the last step, and what looks wrong
    monitor.plot("gradients.png")

What it looks for, each a pattern that stops a network from learning:
- vanishing gradients: a parameter's gradient norm below `vanishing` for `patience` recorded
  steps in a row (deep sigmoid or tanh stacks: each layer multiplies the gradient by <= 1/4);
- exploding gradients: a gradient norm above `exploding`, or NaN or inf, at any step;
- dead ReLUs: a ReLU module where at least `dead_fraction` of the units output 0 for every
  example of the batch, for `patience` steps in a row (a unit that is never positive never
  gets a gradient, so it never comes back). Seen by forward hooks on the model's nn.ReLU
  modules (a model that calls F.relu directly has none to watch).

A useful rule of thumb for the update ratio: around 1e-3 per step is healthy for SGD; 1e-1
means the weights are being overwritten, 1e-6 that they barely move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edugrad import nn
from edugrad.autograd import no_grad

__all__ = ["GradientMonitor", "Flag"]


@dataclass
class Flag:
    """One problem found: kind is "vanishing", "exploding" or "dead_relu"."""

    kind: str
    name: str
    step: object
    message: str

    def __str__(self) -> str:
        return self.message


def norm(tensor) -> float:
    """The L2 norm of all elements as a Python float (computed in float64)."""
    with no_grad():
        values = tensor.detach().double()
        return float((values * values).sum().sqrt().item())




class GradientMonitor:
    """Per step and per parameter: gradient norm, weight norm, update ratio; dead ReLUs.

    history is plain data: {"step": [...], "grad_norm": {name: [...]}, "weight_norm": {...},
    "update_ratio": {...}, "dead_relu": {relu module name: [fraction of dead units, ...]}},
    one entry per record() call (None where there was nothing to measure).
    """

    def __init__(self, model, vanishing: float = 1e-6, exploding: float = 1e3,
                 patience: int = 3, dead_fraction: float = 0.5) -> None:
        if hasattr(model, "named_parameters"):
            self.parameters = list(model.named_parameters())
        elif isinstance(model, dict):
            self.parameters = list(model.items())
        else:
            raise TypeError(f"GradientMonitor: expected a Module or a dict name -> Tensor, "
                            f"got {type(model).__name__}")
        if not self.parameters:
            raise ValueError("GradientMonitor: the model has no parameters to watch")
        self.vanishing, self.exploding = vanishing, exploding
        self.patience, self.dead_fraction = patience, dead_fraction
        names = [name for name, _ in self.parameters]
        self.history = {"step": [], "grad_norm": {n: [] for n in names},
                        "weight_norm": {n: [] for n in names},
                        "update_ratio": {n: [] for n in names}, "dead_relu": {}}
        self._dead_now = {}       # ReLU name -> dead fraction in its latest forward
        self._pending_update = None
        self._update_slot_open = False
        self._handles = []
        if hasattr(model, "named_modules"):
            for name, module in model.named_modules():
                if isinstance(module, nn.ReLU):
                    self.history["dead_relu"][name] = []
                    self._handles.append(module.register_forward_hook(self._relu_hook(name)))

    # ---- recording -----------------------------------------------------------------------------
    def _relu_hook(self, name: str):
        def hook(module, inputs, output):
            with no_grad():
                alive = output.detach() > 0
                if alive.ndim > 1:  # a unit is alive if any example of the batch activates it
                    alive = alive.any(dim=0)
                self._dead_now[name] = 1.0 - float(alive.sum().item()) / max(alive.numel(), 1)

        return hook

    def record(self, step=None) -> None:
        """Call after backward(): stores each parameter's gradient and weight norm."""
        self.history["step"].append(len(self.history["step"]) if step is None else step)
        pending, self._pending_update = self._pending_update, None
        for name, param in self.parameters:
            self.history["grad_norm"][name].append(None if param.grad is None else norm(param.grad))
            self.history["weight_norm"][name].append(norm(param))
            self.history["update_ratio"][name].append(pending[name] if pending else None)
        self._update_slot_open = pending is None
        for name in self.history["dead_relu"]:
            self.history["dead_relu"][name].append(self._dead_now.pop(name, None))

    def record_update(self) -> "_UpdateRecorder":
        """`with monitor.record_update(): optimizer.step()` stores ||w_after - w_before|| /
        ||w_before|| per parameter, in the step just recorded (or the next one, if record()
        has not been called yet for this step)."""
        return _UpdateRecorder(self)

    def _store_update(self, ratios: dict) -> None:
        if self._update_slot_open:
            for name, ratio in ratios.items():
                self.history["update_ratio"][name][-1] = ratio
            self._update_slot_open = False
        else:
            self._pending_update = ratios

    def remove(self) -> None:
        """Remove the forward hooks from the model."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # ---- reading -------------------------------------------------------------------------------
    def flags(self) -> list:
        """What looks wrong so far, as Flag objects (one per parameter or ReLU and kind)."""
        found = []
        steps = self.history["step"]
        for name, values in self.history["grad_norm"].items():
            for step, value in zip(steps, values):
                if value is not None and (not math.isfinite(value) or value > self.exploding):
                    found.append(Flag("exploding", name, step,
                                      f"exploding gradient: {name} has gradient norm {value:.3g} "
                                      f"at step {step} (threshold {self.exploding:g})"))
                    break
            step = self._first_run(values, lambda v: v is not None and v < self.vanishing)
            if step is not None:
                found.append(Flag("vanishing", name, step,
                                  f"vanishing gradient: {name} has gradient norm below "
                                  f"{self.vanishing:g} for {self.patience} steps in a row "
                                  f"(since step {step})"))
        for name, values in self.history["dead_relu"].items():
            step = self._first_run(values, lambda v: v is not None and v >= self.dead_fraction)
            if step is not None:
                worst = max(v for v in values if v is not None)
                found.append(Flag("dead_relu", name, step,
                                  f"dead ReLU: in ReLU '{name}' up to {worst:.0%} of the units "
                                  f"output 0 for the whole batch, for {self.patience} steps in a "
                                  f"row (since step {step})"))
        return found

    def _first_run(self, values: list, bad) -> object:
        """The step where the first run of `patience` bad values in a row starts, or None."""
        run = 0
        for i, value in enumerate(values):
            run = run + 1 if bad(value) else 0
            if run >= self.patience:
                return self.history["step"][i - self.patience + 1]
        return None

    def report(self) -> str:
        """A table of the last recorded step, then the flags (or 'no problems found')."""
        if not self.history["step"]:
            return "GradientMonitor: nothing recorded yet (call record() after backward)"
        width = max([len("parameter")] + [len(name) for name, _ in self.parameters])
        lines = [f"step {self.history['step'][-1]}",
                 f"  {'parameter':<{width}}  {'grad norm':>10}  {'weight norm':>11}  "
                 f"{'update ratio':>12}"]
        for name, _ in self.parameters:
            grad, weight, ratio = (self.history[key][name][-1]
                                   for key in ("grad_norm", "weight_norm", "update_ratio"))
            lines.append(f"  {name:<{width}}  {_fmt(grad):>10}  {_fmt(weight):>11}  "
                         f"{_fmt(ratio):>12}")
        for name, values in self.history["dead_relu"].items():
            lines.append(f"  ReLU '{name}': {_fmt(values[-1], '.0%')} of units dead in the batch")
        flags = self.flags()
        lines.extend(["flags:"] + [f"  {flag}" for flag in flags] if flags
                     else ["no problems found"])
        return "\n".join(lines)

    def plot(self, path) -> str:
        """Save the norms over the steps as a PNG (needs matplotlib)."""
        try:
            import matplotlib
        except ImportError:
            raise ImportError("GradientMonitor.plot needs matplotlib: `pip install matplotlib` "
                              "(or `pip install edugrad[mnist]`)") from None
        matplotlib.use("Agg", force=False)  # draw to files; no window, no display needed
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        panels = [("grad_norm", "gradient norm", True), ("weight_norm", "weight norm", False)]
        if any(v is not None for values in self.history["update_ratio"].values() for v in values):
            panels.append(("update_ratio", "update ratio ||Δw|| / ||w||", True))
        if self.history["dead_relu"]:
            panels.append(("dead_relu", "dead ReLU units (fraction)", False))
        figure, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels)), sharex=True)
        steps = self.history["step"]
        lowest = math.inf
        for axis, (key, title, log) in zip(axes, panels):
            for name, values in self.history[key].items():
                points = [(s, v) for s, v in zip(steps, values)
                          if v is not None and math.isfinite(v) and (v > 0 or not log)]
                if points:
                    label = f"ReLU '{name}'" if key == "dead_relu" else name
                    axis.plot(*zip(*points), label=label, linewidth=1.2)
                    if key == "grad_norm":
                        lowest = min(lowest, min(v for _, v in points))
            if log and axis.lines:
                axis.set_yscale("log")
            axis.set_ylabel(title, fontsize=8)
            if axis.lines and key in ("grad_norm", "dead_relu"):  # parameters: one legend
                axis.legend(fontsize=7, loc="best", ncol=2)
        if lowest < 100 * self.vanishing:  # the vanishing threshold, when it is close
            axes[0].axhline(self.vanishing, color="grey", linestyle=":", linewidth=1,
                            label="vanishing threshold")
        axes[-1].set_xlabel("step")
        axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)
        return str(path)


class _UpdateRecorder:
    """The context manager record_update returns: weights before, weights after."""

    def __init__(self, monitor: GradientMonitor) -> None:
        self.monitor = monitor

    def __enter__(self) -> None:
        # a copy: detach() alone is a view, and would follow the update
        self.before = {name: p.detach().clone() for name, p in self.monitor.parameters}

    def __exit__(self, *exc) -> None:
        if exc[0] is not None:
            return
        ratios = {}
        with no_grad():
            for name, param in self.monitor.parameters:
                old = self.before[name]
                size = norm(old)
                ratios[name] = norm(param.detach() - old) / size if size > 0 else None
        self.monitor._store_update(ratios)


def _fmt(value, spec: str = ".3e") -> str:
    return "-" if value is None else format(value, spec)
