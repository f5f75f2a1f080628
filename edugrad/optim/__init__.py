"""edugrad.optim: optimizers that update parameters from their gradients, and lr schedules.

Layer: nn/optim (top). Imports edugrad.tensor and edugrad.autograd; never NumPy, so every
optimizer runs on any backend.

    Optimizer     optimizer.py     param_groups, state, step/zero_grad, state_dict
    SGD           sgd.py           momentum, dampening, Nesterov, weight decay
    Adam, AdamW   adam.py          running means of g and g², bias-corrected; AMSGrad
    RMSprop       rmsprop.py       g divided by a running RMS of g; centered, momentum
    Lion          lion.py          the sign of an interpolated momentum
    lr_scheduler  lr_scheduler.py  StepLR, ExponentialLR, CosineAnnealingLR, LinearLR

Each update rule is written out once, in its class's `_update`, with its formula beside it.
"""

from edugrad.optim import lr_scheduler
from edugrad.optim.adam import Adam, AdamW
from edugrad.optim.lion import Lion
from edugrad.optim.optimizer import Optimizer
from edugrad.optim.rmsprop import RMSprop
from edugrad.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Lion", "lr_scheduler"]
