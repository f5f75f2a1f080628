"""edugrad.optim: optimizers that update parameters from their gradients, and lr schedules.

Layer: nn/optim (top). Imports edugrad.tensor and edugrad.autograd; never NumPy, so every
optimizer runs on any backend.

    Optimizer     optimizer.py     param_groups, state, step/zero_grad, state_dict
    SGD           sgd.py           momentum, dampening, Nesterov, weight decay
    Adam, AdamW   adam.py          running means of g and g², bias-corrected; AMSGrad
    RMSprop       rmsprop.py       g divided by a running RMS of g; centered, momentum
    Lion          lion.py          the sign of an interpolated momentum
    Adagrad, Adadelta, Adamax
                  adagrad.py       per-coordinate steps from the history of g (sum, mean, max)
    NAdam, RAdam  nadam.py         Adam with Nesterov momentum; Adam rectified in its first steps
    LBFGS         lbfgs.py         quasi-Newton from the last steps; a closure; strong Wolfe
    lr_scheduler  lr_scheduler.py  StepLR, ..., OneCycleLR, CyclicLR, ReduceLROnPlateau, ...

Each update rule is written out once, in its class's `_update`, with its formula beside it.
"""

from edugrad.optim import lr_scheduler
from edugrad.optim.adagrad import Adadelta, Adagrad, Adamax
from edugrad.optim.adam import Adam, AdamW
from edugrad.optim.lbfgs import LBFGS
from edugrad.optim.lion import Lion
from edugrad.optim.nadam import NAdam, RAdam
from edugrad.optim.optimizer import Optimizer
from edugrad.optim.rmsprop import RMSprop
from edugrad.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Lion", "Adagrad", "Adadelta",
           "Adamax", "NAdam", "RAdam", "LBFGS", "lr_scheduler"]
