"""edugrad.special: PyTorch's torch.special, the special functions by their SciPy names.

Layer: the API (on top of Tensor). Each function here is a Tensor method under another name or a
short composition of them; the derivatives live with the methods (math.py, function.py).

    erf, erfc, erfinv     the error function, its complement, its inverse
    expit                 the logistic sigmoid 1 / (1 + e^-x)
    ndtr                  the standard normal CDF, (1 + erf(x / sqrt 2)) / 2
    exp2, logit, xlogy    2^x, log(p / (1 - p)), x log(y) (0 where x = 0)
"""

from __future__ import annotations

import math

from edugrad.math import number_first_operands


def erf(input):
    return input.erf()


def erfc(input):
    return input.erfc()


def erfinv(input):
    return input.erfinv()


def expit(input):
    return input.sigmoid()


def ndtr(input):
    """Phi(x) = erfc(-x / sqrt 2) / 2: accurate also in the lower tail, where 1 + erf is not."""
    return (input * (-1 / math.sqrt(2))).erfc() * 0.5


def expm1(input):
    return input.expm1()


def log1p(input):
    return input.log1p()


def logsumexp(input, dim, keepdim: bool = False):
    return input.logsumexp(dim, keepdim)


def softmax(input, dim: int, *, dtype=None):
    return (input if dtype is None else input.to(dtype)).softmax(dim)


def log_softmax(input, dim: int, *, dtype=None):
    return (input if dtype is None else input.to(dtype)).log_softmax(dim)


def exp2(input):
    return input.exp2()


def logit(input, eps=None):
    return input.logit(eps)


def xlogy(input, other):
    input, other = number_first_operands(input, other, "xlogy")  # xlogy(2.0, y) too
    return input.xlogy(other)
