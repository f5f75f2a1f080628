"""What a program in tests/programs calls so that its two runs can be compared.

A program is run twice by test_programs.py: as written (with torch), then with its imports
rewritten to edugrad. Two lines are added to each program, the same in both runs:

    model = same_start(Net())          # torch's run keeps the initial values; edugrad's loads them
    record(loss)                       # the numbers the two runs must agree on

Everything else (data, model, loop) is the program's own text.
"""

from __future__ import annotations

import numpy as np


class _Run:
    """The run in progress: which library, the starts kept by the torch run, the losses."""

    def __init__(self) -> None:
        self.library = "torch"
        self.starts: list = []  # one entry per same_start call, filled by the torch run
        self.position = 0
        self.losses: list = []

    def begin(self, library: str) -> None:
        self.library, self.position, self.losses = library, 0, []
        if library == "torch":
            self.starts = []


RUN = _Run()


def _host(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()


def same_start(*things):
    """Give edugrad's run the initial values torch's run drew: a Module (its state_dict) or
    tensors (returned anew). Returns what it was given (or the new tensors)."""
    if RUN.library == "torch":
        RUN.starts.append([_keep(t) for t in things])
        return things[0] if len(things) == 1 else things
    kept = RUN.starts[RUN.position]
    RUN.position += 1
    loaded = [_load(t, k) for t, k in zip(things, kept)]
    return loaded[0] if len(loaded) == 1 else tuple(loaded)


def _keep(thing):
    if hasattr(thing, "state_dict"):
        return {name: _host(value) for name, value in thing.state_dict().items()}
    return _host(thing)


def _load(thing, kept):
    import edugrad

    if hasattr(thing, "state_dict"):
        thing.load_state_dict({name: edugrad.tensor(value) for name, value in kept.items()})
        return thing
    return edugrad.tensor(kept, requires_grad=thing.requires_grad)


def record(loss) -> None:
    """Keep one number of the run (a loss tensor or a float) for the comparison."""
    RUN.losses.append(loss.item() if hasattr(loss, "item") else float(loss))
