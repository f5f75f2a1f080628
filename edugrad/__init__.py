"""edugrad: a deep-learning framework to read. Three layers, each in plain sight:

    Tensor / nn / optim    tensor.py, math.py, shape.py, nn/, optim/     the PyTorch-like API
    Function               function.py (autograd.py walks the graph)     forward + backward
    TensorData + Backend   data.py, ops.py, backend.py, backends/        the primitives

Importing edugrad prints nothing and imports no CuPy.
"""

from edugrad import accelerator, amp, autograd, backends, cuda, nn, optim, utils, viz
from edugrad.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from edugrad.backend import (
    Backend, default_device, get_backend, manual_seed, register_backend, set_default_device,
)
from edugrad.amp import autocast
from edugrad.devices import device
from edugrad.dtypes import DType, bool_ as bool, float32, float64, int32, int64
from edugrad.dtypes import bfloat16, float16, get_default_dtype, set_default_dtype
from edugrad.factories import (
    arange, empty, empty_like, eye, full, full_like, linspace, ones, ones_like, rand, rand_like,
    randint, randn, randn_like, tensor, tril_indices, triu_indices, zeros, zeros_like,
)
from edugrad.factories import Generator, as_tensor, bernoulli, from_numpy, normal, randperm
from edugrad.factories import BoolTensor, DoubleTensor, FloatTensor, IntTensor, LongTensor
from edugrad.factories import sparse_coo_tensor
from edugrad import sparse
from edugrad.sparse import sparse_coo, strided
from edugrad.runtime import (
    get_num_threads, inference_mode, is_inference_mode_enabled, set_num_threads,
)
from edugrad.size import Size
from edugrad.function import Function
from edugrad.capture import JitError, jit
from edugrad import linalg, special
from edugrad.linalg import cdist, einsum
from edugrad.math import number_first_operands as _operands
from edugrad.math import std_mean, var_mean, where
from edugrad.ordering import searchsorted
from edugrad.serialization import load, save
from edugrad.shape import (
    atleast_1d, atleast_2d, atleast_3d, broadcast_shapes, broadcast_tensors, cartesian_prod, cat,
    column_stack, dstack, hstack, meshgrid, row_stack, stack, vstack,
)
from edugrad.tensor import Tensor

float = float32  # noqa: A001  (torch.float, torch.double, torch.long, as in PyTorch)
double = float64
long = int64
half = float16

__version__ = "0.1.0"


def _unary(name):
    def function(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)

    function.__name__ = name
    function.__doc__ = f"edugrad.{name}(x, ...) is x.{name}(...)"
    return function


# the torch.exp(x) spellings of the Tensor methods: each is defined once, on Tensor
for _name in ("exp log sqrt sin cos tanh sigmoid relu abs clamp maximum minimum sum mean "
              "max min amax amin argmax argmin var std logsumexp softmax log_softmax reshape "
              "flatten permute transpose unsqueeze squeeze matmul flip gather split chunk "
              "isnan sign neg square floor ceil trunc round fmod cumsum sort argsort topk "
              "multinomial narrow select unbind movedim "
              # issue 10's tensor ops
              "masked_fill tril triu roll mm bmm addmm baddbmm scatter scatter_add scatter_reduce "
              "index_select "
              "index_add index_fill cumprod prod norm outer log1p expm1 log2 log10 tan atan "
              "arctan atan2 arctan2 sinh cosh isinf isposinf isneginf isfinite nan_to_num "
              "isclose allclose equal nonzero argwhere unique tile diag diag_embed diagonal "
              "trace lerp all any svd pinverse "
              # more Tensor methods under their function names (torch.clone(x), torch.t(x), ...)
              "clone rsqrt numel swapaxes swapdims moveaxis unflatten reciprocal dot t ravel "
              "broadcast_to positive negative erf erfc erfinv "
              "tensor_split hsplit vsplit dsplit rot90 fliplr flipud take_along_dim masked_select "
              "count_nonzero diff "
              "median nanmedian quantile nanquantile nansum nanmean aminmax logaddexp logaddexp2 "
              "hypot exp2 xlogy logit "
              "tensordot kron cross inner mv vdot "
              "bincount bucketize").split():
    globals()[_name] = _unary(_name)
del _name


# the operator spellings, so that the first argument may be a number too: edugrad.pow(2, x)
def pow(input, exponent):  # noqa: A001
    """edugrad.pow(x, p) is x ** p; x or p may be a Python number."""
    return input ** exponent


def floor_divide(input, other):
    """edugrad.floor_divide(x, y) is x // y, rounded toward -inf."""
    return input // other


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """edugrad.repeat_interleave(x, repeats, dim); with one tensor of counts,
    repeat_interleave(counts) is arange(len(counts)) repeated by them, as in PyTorch."""
    if repeats is None:
        return arange(input.shape[0], device=input.device).repeat_interleave(input)
    return input.repeat_interleave(repeats, dim, output_size=output_size)


def remainder(input, other):
    """edugrad.remainder(x, y) is x % y, with the sign of y."""
    return input % other


# ---- arithmetic as functions (torch.add(x, y, alpha=2), torch.div(x, y, rounding_mode=...)) ----
def add(input, other, *, alpha=1):
    """edugrad.add(x, y, alpha=a) is x + a * y; x may be a Python number."""
    input, other = _operands(input, other, "add")
    return input.add(other, alpha=alpha)


def sub(input, other, *, alpha=1):
    """edugrad.sub(x, y, alpha=a) is x - a * y; x may be a Python number."""
    input, other = _operands(input, other, "sub")
    return input.sub(other, alpha=alpha)


def mul(input, other):
    """edugrad.mul(x, y) is x * y; x may be a Python number."""
    input, other = _operands(input, other, "mul")
    return input * other


def div(input, other, *, rounding_mode=None):
    """edugrad.div(x, y) is x / y; rounding_mode "trunc" or "floor" rounds the quotient and
    keeps integer tensors integer (see Tensor.div)."""
    input, other = _operands(input, other, "div")
    return input.div(other, rounding_mode=rounding_mode)


def true_divide(input, other):
    """edugrad.true_divide(x, y) is x / y (integers give floats)."""
    return div(input, other)


multiply, subtract, divide = mul, sub, div
spmm = sparse.mm  # torch.spmm(sparse, dense): sparse @ dense (edugrad/sparse.py)


def is_tensor(obj) -> bool:
    """True for edugrad tensors (nn.Parameter included), as torch.is_tensor."""
    return isinstance(obj, Tensor)
