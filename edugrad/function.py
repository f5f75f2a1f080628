"""Function: the differentiable ops. Each is a forward on TensorData and a backward on Tensors.

Layer: Function (middle). Imports edugrad.data (and dtypes); never NumPy.

    forward(self, *inputs: TensorData, **options) -> TensorData     runs the primitives
    backward(self, grad_output: Tensor) -> Tensor | tuple            one gradient per input

Backward is written with Tensor operations (`grad_output * y`), not with TensorData, so when
`create_graph=True` the backward pass itself builds a graph and grad-of-grad works for free.
This module never imports tensor.py: `apply` makes its output with the inputs' `_result_class`, and
backward only calls methods on the Tensors it is given.

A custom op subclasses Function the same way the library's own ops do:

    class Cube(Function):
        def forward(self, x):                       # x is TensorData
            return x.mul(x).mul(x)
        def backward(self, grad_output):            # grad_output is a Tensor
            (x,) = self.inputs
            return grad_output * 3 * x * x          # d/dx x^3 = 3x^2

    y = Cube.apply(x)

PyTorch's style, `@staticmethod forward(ctx, ...)` on Tensors, works too: a thin adapter at
the end of this file, onto the same mechanism.

Each backward carries its derivative as a one-line comment; `formula` holds the same line for
the teaching tools to show.
"""

from __future__ import annotations

import functools
import math
import re
import threading
import weakref

from edugrad import dtypes
from edugrad.data import TensorData
from edugrad.ops import ERF_FLOAT64


class _GradMode(threading.local):
    """Whether Function.apply records the graph, for the calling thread only (as in PyTorch):
    a `no_grad()` block in one thread, or a backward running there, leaves every other thread
    recording. __init__ runs once in each thread that reads it: every thread starts enabled
    (an instance attribute, read faster than a class default: apply reads it once per op)."""

    def __init__(self) -> None:
        self.enabled = True


GradMode = _GradMode()  # read as GradMode.enabled: one attribute of this thread's own state

# While edugrad.jit records a step (edugrad/capture.py), its Recording: Function.apply,
# Module.__call__ and Optimizer.step tell it which tensors, modules and optimizers the step
# used. None the rest of the time, so eager mode pays one test per op.
observer = None


def host_checks_allowed(tensor) -> bool:
    """Whether a check that reads a tensor's values on the host (are the indices in range?)
    may run. Not on a GPU, where it would wait for the device on every step (PyTorch checks
    there with a device-side assert), and not while edugrad.jit records a step, whose
    replays could not repeat it. The result is the same either way for valid input."""
    return observer is None and not tensor.device.startswith("cuda")


def _is_pytorch_style(cls) -> bool:
    """Whether a Function subclass is written in PyTorch's style (see the end of this file)."""
    for klass in cls.__mro__:
        if "forward" in klass.__dict__:
            return isinstance(klass.__dict__["forward"], staticmethod)
    return False


class Function:
    """Base of every differentiable op; `apply` runs forward and links the result into the graph.

    Attributes a backward uses:
        inputs            the input Tensors, checked to be unmodified since forward
        output            the output Tensor (for ops whose derivative is their result)
        needs_input_grad  one bool per input: compute that gradient or return None

    forward sees its TensorData and options, and sets on self what backward will need. It
    reads none of the above: with grad off, apply runs it on a bare object (cls.__new__, no
    __init__), as no graph is recorded.
    """

    formula = ""  # the local derivative, for the teaching tools
    op = ""  # the op's name in error messages, when the class name is not it (see op_name)
    output_version = 0  # a new output starts at version 0; Tensor._assign moves it on

    def __init_subclass__(cls, **kwargs) -> None:
        # PyTorch's style, told apart by its `@staticmethod forward(ctx, ...)`: see the end of
        # this file. Decided once per class, so the library's ops pay nothing for it.
        super().__init_subclass__(**kwargs)
        if _is_pytorch_style(cls):
            cls.apply = classmethod(_apply_pytorch_style)

    def __init__(self, *parents) -> None:
        # the graph's bookkeeping, in one pass (one loop costs less than two comprehensions):
        # which inputs need a gradient, and the version each had, for `inputs` to check
        self.parents = parents
        needs_input_grad, versions = [], []
        for parent in parents:
            needs_input_grad.append(parent.requires_grad)
            versions.append(parent._version)
        self.needs_input_grad = tuple(needs_input_grad)
        self.versions = tuple(versions)

    def __getattr__(self, name: str):
        # called only when the attribute is missing: a forward that read the graph's
        # bookkeeping while grad was off (apply then runs forward on a bare object)
        if name in ("parents", "needs_input_grad", "versions"):
            raise AttributeError(
                f"{type(self).__name__}.forward read self.{name}, which forward doesn't get: "
                "with grad off (no_grad, or inside a backward) no graph is recorded; read it "
                "in backward")
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def forward(self, *inputs, **options):
        raise NotImplementedError(f"{type(self).__name__}.forward is not written")

    def backward(self, grad_output):
        raise NotImplementedError(f"{type(self).__name__}.backward is not written")

    @classmethod
    def apply(cls, *inputs, **options):
        """Run forward on the inputs' TensorData; link the output to this op if grad is on.

        Every op passes here, so this is where mixed devices are caught, once for all ops."""
        if observer is not None:  # edugrad.jit is recording a step: it notes what ops read
            observer.tensors_read(inputs)
        backend = inputs[0]._data.backend
        data = []  # what forward runs on: one loop, not a comprehension then a loop (~0.08 us)
        for tensor in inputs:
            if tensor._data.backend is not backend:
                raise RuntimeError(f"{op_name(cls)}: expected all tensors on the same device, got "
                                   f"{backend.device} and {tensor._data.backend.device} (move one "
                                   "with .to(device))")
            data.append(tensor._data)
        result_class = inputs[0]._result_class  # Tensor, also for an nn.Parameter input
        if not GradMode.enabled:
            # no_grad, or a backward without create_graph (where most such calls come from):
            # no graph, so forward runs on an object without the graph's bookkeeping
            # (parents, needs_input_grad), which only backward reads; ~0.3 us less a call
            return result_class._make(cls.__new__(cls).forward(*data, **options), None)
        ctx = cls(*inputs)
        out_data = ctx.forward(*data, **options)
        if True not in ctx.needs_input_grad:
            return result_class._make(out_data, None)
        out = result_class._make(out_data, ctx)
        # a weak reference: a strong one makes a cycle out -> ctx -> out, and a graph nobody
        # calls backward on would wait for the cycle collector. Backward holds every tensor.
        ctx._output = weakref.ref(out)
        return out

    @property
    def inputs(self) -> tuple:
        parents = self.parents
        if parents is None:
            raise RuntimeError(
                f"{self.name}: its saved tensors were freed by an earlier backward; "
                "pass retain_graph=True to the first backward to keep them"
            )
        for tensor, version in zip(parents, self.versions):  # no enumerate: a backward's hot path
            if tensor._version != version:
                index = next(i for i, each in enumerate(parents) if each is tensor)
                raise RuntimeError(self._modified_message(f"input {index}", tensor))
        return parents

    @property
    def output(self):
        out = self._output()
        if out._version != self.output_version:
            raise RuntimeError(self._modified_message("its output", out))
        return out

    def _modified_message(self, what: str, tensor) -> str:
        return (
            f"{self.name}: {what} (shape {tuple(tensor.shape)}) was modified by an in-place "
            "operation after the forward pass, and backward needs its old value; "
            "clone it before changing it"
        )

    def release(self) -> None:
        """Drop the references to inputs (the graph behind this op) after backward used them."""
        self.parents = None

    @property
    def name(self) -> str:
        return type(self).__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name}>"


def op_name(function: type) -> str:
    """The name of a Function for messages: its `op` if it sets one, else the class name in
    PyTorch's style (LogSoftmax -> "log_softmax")."""
    return function.op or re.sub(r"(?<!^)(?=[A-Z])", "_", function.__name__.lstrip("_")).lower()


# ---- unary ------------------------------------------------------------------------------------
class Neg(Function):
    formula = "d(-x)/dx = -1"

    def forward(self, x):
        return x.neg()

    def backward(self, grad_output):
        return -grad_output


class Exp(Function):
    formula = "d(e^x)/dx = e^x"

    def forward(self, x):
        return x.exp()

    def backward(self, grad_output):
        return grad_output * self.output  # we save the output here, not the input


class Log(Function):
    formula = "d(log x)/dx = 1/x"

    def forward(self, x):
        return x.log()

    def backward(self, grad_output):
        (x,) = self.inputs
        return grad_output / x


class Sin(Function):
    formula = "d(sin x)/dx = cos x"

    def forward(self, x):
        return x.sin()

    def backward(self, grad_output):
        (x,) = self.inputs
        return grad_output * Cos.apply(x)


class Cos(Function):
    formula = "d(cos x)/dx = -sin x"

    def forward(self, x):
        return x.add(TensorData.constant(math.pi / 2, x.shape, x.dtype, x.backend)).sin()

    def backward(self, grad_output):
        (x,) = self.inputs
        return -grad_output * x.sin()


class Sqrt(Function):
    formula = "d(sqrt x)/dx = 1 / (2 sqrt x)"

    def forward(self, x):
        return x.sqrt()

    def backward(self, grad_output):
        return grad_output / (self.output * 2)


class Relu(Function):
    formula = "d(relu x)/dx = 1 if x > 0 else 0"

    def forward(self, x):
        return x.maximum(TensorData.constant(0, x.shape, x.dtype, x.backend))

    def backward(self, grad_output):
        # a multiply by the 0/1 mask, not WHERE: NumPy's where is ~10x slower on random masks
        mask = Cast.apply(self.output.detach() > 0, dtype=grad_output.dtype)
        return Mul.apply(grad_output, mask)


class Sigmoid(Function):
    formula = "d(sigmoid x)/dx = s (1 - s), s = sigmoid x"

    def forward(self, x):
        return x.sigmoid()  # a backend's own SIGMOID, else a stable composition (TensorData)

    def backward(self, grad_output):
        s = self.output
        return grad_output * s * (1 - s)


class Tanh(Function):
    formula = "d(tanh x)/dx = 1 - tanh(x)^2"

    def forward(self, x):
        return x.tanh()  # a backend's own TANH, else a composition that never overflows

    def backward(self, grad_output):
        t = self.output
        return grad_output * (1 - t * t)


class Cast(Function):
    formula = "d(cast x)/dx = 1, cast back to x's dtype"

    def forward(self, x, dtype):
        self.input_dtype = x.dtype
        return x.cast(dtype)

    def backward(self, grad_output):
        return grad_output.to(self.input_dtype)


# ---- binary: equal shapes and dtypes (Tensor broadcasts and promotes first) ---------------------
class Add(Function):
    formula = "d(x + y)/dx = 1, d(x + y)/dy = 1"

    def forward(self, x, y):
        return x.add(y)

    def backward(self, grad_output):
        return grad_output, grad_output


class Sub(Function):
    formula = "d(x - y)/dx = 1, d(x - y)/dy = -1"

    def forward(self, x, y):
        return x.sub(y)

    def backward(self, grad_output):
        return grad_output, (-grad_output if self.needs_input_grad[1] else None)


class Mul(Function):
    formula = "d(x y)/dx = y, d(x y)/dy = x"

    def forward(self, x, y):
        return x.mul(y)

    def backward(self, grad_output):
        x, y = self.inputs
        return (
            grad_output * y if self.needs_input_grad[0] else None,
            grad_output * x if self.needs_input_grad[1] else None,
        )


class Div(Function):
    formula = "d(x / y)/dx = 1/y, d(x / y)/dy = -x / y^2"

    def forward(self, x, y):
        return x.div(y)

    def backward(self, grad_output):
        x, y = self.inputs
        return (
            grad_output / y if self.needs_input_grad[0] else None,
            -grad_output * x / (y * y) if self.needs_input_grad[1] else None,
        )


class Maximum(Function):
    formula = "d max(x, y)/dx = 1 where x > y, 1/2 where x == y, else 0"

    def forward(self, x, y):
        return x.maximum(y)

    def backward(self, grad_output):
        x, y = self.inputs
        # ties split the gradient in half, as PyTorch does
        share = (x > y) + (x == y) * 0.5
        return (
            grad_output * share if self.needs_input_grad[0] else None,
            grad_output * (1 - share) if self.needs_input_grad[1] else None,
        )


class Where(Function):
    formula = "d where(c, x, y)/dx = c, /dy = not c"

    def forward(self, condition, x, y):
        return condition.where(x, y)

    def backward(self, grad_output):
        condition = self.parents[0]
        zero = grad_output.new_zeros(grad_output.shape)
        return (
            None,
            grad_output.where(condition, zero) if self.needs_input_grad[1] else None,
            zero.where(condition, grad_output) if self.needs_input_grad[2] else None,
        )


# ---- powers: exact for whole exponents, C's pow rules at the edges ------------------------------
class Pow(Function):
    """x ** p for a Python number p. A whole p multiplies (square and multiply), so the result is
    exact and signed wherever it is representable: (-3.) ** 3 is -27, 0 ** 0 is 1. Other p go
    through exp(p log|x|), which has no sign: a negative base there gives nan, as in PyTorch."""

    formula = "d(x^p)/dx = p x^(p-1) (0 for p = 0)"

    def forward(self, x, exponent):
        self.exponent = exponent
        if float(exponent).is_integer() and abs(exponent) < 2**64:
            return _integer_power(x, int(exponent))
        if exponent == 0.5:  # the correctly rounded primitive; sqrt(-0.0) is -0.0, as PyTorch's
            return x.sqrt()
        if exponent == -0.5:
            return _constant(x, 1).div(x.sqrt())
        magnitude = _abs(x).log().mul(_constant(x, exponent)).exp()
        if float(exponent).is_integer():  # beyond 2**64 every float is even: no sign to restore
            return magnitude
        return _negative_finite(x).where(_constant(x, math.nan), magnitude)

    def backward(self, grad_output):
        (x,) = self.inputs
        p = self.exponent
        if p == 0:  # x ** 0 is 1 everywhere, even where p x^(p-1) would be 0 * inf
            return grad_output.new_zeros(grad_output.shape)
        if p == 2:
            return grad_output * (x * 2)
        return grad_output * (x ** (p - 1) * p)


class PowTensor(Function):
    """x ** y for a tensor y (x is a tensor too: `2 ** y` makes a constant one). Equal shapes
    and dtypes. Where every y is a whole number, the same square and multiply as Pow, with the
    bits of each |y| read by CMPLT: exact, and (-2.) ** tensor([1, 2, 3]) is [-2, 4, -8]. That
    costs one read from the device (the largest |y|), to know how many bits to walk. Otherwise
    exp(y log|x|), with the sign of odd whole y put back and nan for a negative base to a
    fractional power: right to a few units in the last place, not exact."""

    formula = "d(x^y)/dx = y x^(y-1) (0 where y = 0), d(x^y)/dy = x^y log x (0 where x = 0, y >= 0)"
    op = "pow"

    def forward(self, x, y):
        bound = _whole_bound(y)
        if bound <= 2**64:  # False for nan: some y is not whole
            return _power_by_bits(x, y, int(bound).bit_length())
        return _power_by_logs(x, y)

    def backward(self, grad_output):
        x, y = self.inputs
        grad_x = grad_y = None
        if self.needs_input_grad[0]:
            grad_x = (grad_output * (y * x ** (y - 1))).where(y != 0, 0.0)
        if self.needs_input_grad[1]:
            # at x = 0 (and y >= 0) x^y is flat in y, where x^y log x would be 0 * -inf
            flat = (x == 0) & (y >= 0)
            grad_y = (grad_output * (self.output * x.log())).where(~flat, 0.0)
        return grad_x, grad_y


def _integer_power(x, n: int):
    """x ** n for a Python int n: square for each bit of |n| after the leading one, most
    significant first, and multiply by x where the bit is 1. x ** 3 is (x * x) * x, as PyTorch's."""
    if n == 0:
        return x.full_like(1)  # 0 ** 0 and nan ** 0 are 1
    result = x
    for bit in bin(abs(n))[3:]:
        result = result.mul(result)
        if bit == "1":
            result = result.mul(x)
    return result if n > 0 else _constant(x, 1).div(result)


def _whole_bound(y) -> float:
    """The largest |y| if every element of y is a whole number, else nan: one read from the
    device (MAX keeps a nan, so a single fractional y makes the answer nan)."""
    if y.numel() == 0:
        return 0.0
    magnitude = _abs(y)
    if y.dtype.is_floating_point:
        whole = y.cmpeq(_rounded(y, "trunc"))
        magnitude = whole.where(magnitude, _constant(y, math.nan))
    return magnitude.max(tuple(range(y.ndim)), keepdim=False).to_host().item()


def _power_by_bits(x, y, bits: int):
    """x ** y for whole-number y with |y| < 2**bits, element by element: square, then multiply
    by x where the current bit of |y| is 1, peeling the bits off |y| from the top."""
    rest = _abs(y)
    result = x.full_like(1)
    for k in reversed(range(bits)):
        result = result.mul(result)
        step = _constant(rest, 2**k)
        below = rest.cmplt(step)  # this bit is 0
        result = below.where(result, result.mul(x))
        rest = below.where(rest, rest.sub(step))
    negative = y.cmplt(_constant(y, 0))
    if x.dtype.is_floating_point:
        return negative.where(_constant(x, 1).div(result), result)
    # integers: 1 ** -n is 1 and (-1) ** -n is +-1; any other x ** -n truncates to 0 (as C does)
    unit = _or(x.cmpeq(_constant(x, 1)), x.cmpeq(_constant(x, -1)))
    return _and(negative, _not(unit)).where(_constant(x, 0), result)


def _power_by_logs(x, y):
    """x ** y = exp(y log|x|) for float x and y of one dtype, with C's pow at the edges: x ** 0
    and (+-1) ** +-inf are 1 (exp would say nan), an odd whole y keeps x's sign (-0.0 included),
    and a negative finite x to a fractional y is nan."""
    zero, one = _constant(x, 0), _constant(x, 1)
    one_anyway = _or(y.cmpeq(zero), _abs(x).cmpeq(one))
    # where the answer is 1 anyway, 0 * log|x| stands in for 0 * -inf and inf * 0
    exponent, log = one_anyway.where(zero, y), one_anyway.where(zero, _abs(x).log())
    magnitude = one_anyway.where(one, exponent.mul(log).exp())
    whole = y.cmpeq(_rounded(y, "trunc"))  # inf counts as whole (and even), as in C
    half = y.mul(_constant(y, 0.5))
    odd = _and(whole, _not(half.cmpeq(_rounded(half, "trunc"))))
    signed = _and(odd, _sign_bit(x)).where(magnitude.neg(), magnitude)
    fractional = _and(_not(whole), _negative_finite(x))
    return fractional.where(_constant(x, math.nan), signed)


# ---- rounding and division with remainder, from CAST (float -> int64 truncates) ---------------
class Floor(Function):
    """floor, ceil, trunc and round: steps, so the gradient is 0 (PyTorch's too)."""

    formula = "d floor(x)/dx = 0 (flat between the steps)"
    mode = "floor"

    def forward(self, x):
        return _rounded(x, self.mode)

    def backward(self, grad_output):
        return grad_output.new_zeros(grad_output.shape)


class Ceil(Floor):
    formula = "d ceil(x)/dx = 0 (flat between the steps)"
    mode = "ceil"


class Trunc(Floor):
    formula = "d trunc(x)/dx = 0 (flat between the steps)"
    mode = "trunc"


class Round(Floor):
    formula = "d round(x)/dx = 0 (flat between the steps)"
    mode = "round"


class FloorDivide(Function):
    """x // y, rounded toward -inf. Equal shapes and dtypes; integer y has no zeros (checked
    above). PyTorch has no derivative for floor_divide (its backward raises); this gives the
    zero that its div(x, y, rounding_mode="floor") gives."""

    formula = "d floor(x / y)/dx = d floor(x / y)/dy = 0 (flat between the steps)"

    def forward(self, x, y):
        return _floor_divide(x, y)

    def backward(self, grad_output):
        zero = grad_output.new_zeros(grad_output.shape)
        return (zero if self.needs_input_grad[0] else None,
                zero if self.needs_input_grad[1] else None)


class TruncDivide(FloorDivide):
    """trunc(x / y) of floats, PyTorch's div(rounding_mode="trunc"): the rounded quotient, then
    truncated. Its own Function for the zero gradient: Trunc of Div would send 0 * (1 / y) back,
    which is NaN where y = 0."""

    formula = "d trunc(x / y)/dx = d trunc(x / y)/dy = 0 (flat between the steps)"

    def forward(self, x, y):
        return _rounded(x.div(y), "trunc")


class Remainder(Function):
    """x % y with the sign of y (Python's and PyTorch's), = x - y * floor(x / y)."""

    formula = "d remainder(x, y)/dx = 1, /dy = -floor(x / y)"

    def forward(self, x, y):
        rest = _fmod(x, y)
        return _wrong_sign(rest, y).where(rest.add(y), rest)

    def backward(self, grad_output):
        x, y = self.inputs
        return (grad_output if self.needs_input_grad[0] else None,
                -grad_output * FloorDivide.apply(x, y) if self.needs_input_grad[1] else None)


class Fmod(Function):
    """C's fmod: the remainder with the sign of x, = x - y * trunc(x / y)."""

    formula = "d fmod(x, y)/dx = 1, /dy = -trunc(x / y)"

    def forward(self, x, y):
        return _fmod(x, y)

    def backward(self, grad_output):
        x, y = self.inputs
        return (grad_output if self.needs_input_grad[0] else None,
                -grad_output * Trunc.apply(x / y) if self.needs_input_grad[1] else None)


_WHOLE = 2.0**52  # every float of this magnitude or more is a whole number (float32: 2**23)


def _rounded(x, mode: str):
    """floor, ceil, trunc or round (half to even, as PyTorch) of float data, from CAST to int64,
    which truncates toward zero. Floats of magnitude 2**52 or more are whole already and may not
    fit in int64, so they skip the CAST and stay as they are, and so do inf and nan. A zero result
    keeps x's sign, as in C: trunc(-0.5), ceil(-0.5) and round(-0.4) are -0.0."""
    zero, one = _constant(x, 0), _constant(x, 1)
    small = _abs(x).cmplt(_constant(x, _WHOLE))  # False for inf and nan
    inside = small.where(x, zero)
    whole = inside.cast(dtypes.int64).cast(x.dtype)
    if mode == "ceil":
        whole = whole.cmplt(inside).where(whole.add(one), whole)
    elif mode != "trunc":
        whole = inside.cmplt(whole).where(whole.sub(one), whole)  # floor
    if mode == "round":
        above, half = inside.sub(whole), _constant(x, 0.5)  # x - floor(x), in [0, 1]
        even = whole.mul(half).cast(dtypes.int64).cast(x.dtype).mul(_constant(x, 2)).cmpeq(whole)
        up = _or(half.cmplt(above), _and(above.cmpeq(half), _not(even)))
        whole = up.where(whole.add(one), whole)
    whole = whole.cmpeq(zero).where(inside.mul(zero), whole)
    return small.where(whole, x)


def _fmod(x, y):
    """C's fmod, x - y * trunc(x / y), with the sign of x. Floats: fmod(x, +-inf) is x, and y = 0
    or x = +-inf or nan give nan. The product y * trunc(x / y) is rounded, so where the quotient
    is large the result can be off by that rounding (C's fmod is exact)."""
    if not x.dtype.is_floating_point:
        return x.sub(_int_quotient(x, y).mul(y))
    zero, inf = _constant(x, 0), _constant(x, math.inf)
    finite_x = _abs(x).cmplt(inf)
    regular = _and(_and(finite_x, _abs(y).cmplt(inf)), _not(y.cmpeq(zero)))
    xs, ys = regular.where(x, zero), regular.where(y, _constant(y, 1))  # no inf or 0 below
    rest = xs.sub(_rounded(xs.div(ys), "trunc").mul(ys))
    rest = rest.cmpeq(zero).where(xs.mul(zero), rest)  # a zero remainder keeps x's sign
    special = _and(finite_x, _abs(y).cmpeq(inf)).where(x, _constant(x, math.nan))
    return regular.where(rest, special)


def _int_quotient(x, y):
    """trunc(x / y) for integers (y has no zeros): divided in float64 and CAST back, which
    truncates; exact while |x| < 2**53, the integers float64 holds exactly."""
    return x.cast(dtypes.float64).div(y.cast(dtypes.float64)).cast(x.dtype)


def _wrong_sign(rest, y):
    """Where a nonzero remainder's sign differs from y's: floor's quotient is one lower there."""
    zero = _constant(rest, 0)
    differ = _not(rest.cmplt(zero).cmpeq(y.cmplt(zero)))
    return _and(_not(rest.cmpeq(zero)), differ)


def _floor_divide(x, y):
    """floor(x / y) as PyTorch computes it: the quotient rounded toward zero, one lower where the
    remainder has the wrong sign. For floats that quotient is (x - fmod(x, y)) / y, whole up to
    rounding (so 1. // 0.1 is 9, where floor(1. / 0.1) would be 10); division by zero gives
    x / y (+-inf or nan), and a zero quotient takes the sign of x / y."""
    one = _constant(x, 1)
    if not x.dtype.is_floating_point:
        quotient = _int_quotient(x, y)
        return _wrong_sign(x.sub(quotient.mul(y)), y).where(quotient.sub(one), quotient)
    rest = _fmod(x, y)
    quotient = x.sub(rest).div(y)
    result = _rounded(_wrong_sign(rest, y).where(quotient.sub(one), quotient), "round")
    zero, ratio = _constant(x, 0), x.div(y)
    is_zero = result.cmpeq(zero)  # there x / y is finite: copysign(0, x / y) is (x / y) * 0
    result = is_zero.where(is_zero.where(ratio, zero).mul(zero), result)
    return y.cmpeq(zero).where(ratio, result)


# ---- small helpers on TensorData: constants, abs, sign, logic ------------------------------------
def _constant(like, value):
    """A number broadcast to like's shape, dtype and device (cached: no memory per element)."""
    return like.constant_like(value)


def _abs(x):
    return x.maximum(x.neg())


def _sign_bit(x):
    """True where x is negative, -0.0 included (1 / -0.0 is -inf)."""
    zero = _constant(x, 0)
    return _or(x.cmplt(zero), _constant(x, 1).div(x).cmplt(zero))


def _negative_finite(x):
    return _and(x.cmplt(_constant(x, 0)), _constant(x, -math.inf).cmplt(x))


def _and(a, b):
    return a.where(b, _constant(a, False))


def _or(a, b):
    return a.maximum(b)  # MAXIMUM of bools is logical or


def _not(a):
    return a.cmpeq(_constant(a, False))


# ---- reduce ------------------------------------------------------------------------------------
class Sum(Function):
    formula = "d(sum x)/dx_i = 1"

    def forward(self, x, axes: tuple, keepdim: bool):
        self.input_shape = x.shape
        self.kept = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
        return x.sum(axes, keepdim)

    def backward(self, grad_output):
        # the movement Functions themselves, not Tensor.reshape/expand: a gradient is no view
        return Expand.apply(Reshape.apply(grad_output, shape=self.kept), shape=self.input_shape)


class Max(Function):
    formula = "d(max x)/dx_i = 1/k where x_i is one of the k maxima, else 0"

    def forward(self, x, axes: tuple, keepdim: bool):
        self.axes, self.kept = axes, tuple(1 if i in axes else s for i, s in enumerate(x.shape))
        return x.max(axes, keepdim)

    def backward(self, grad_output):
        (x,) = self.inputs
        hit = (x == Reshape.apply(self.output.detach(), shape=self.kept)).to(grad_output.dtype)
        count = hit.sum(dim=self.axes, keepdim=True)  # ties share the gradient evenly
        return hit * Reshape.apply(grad_output, shape=self.kept) / count


class LogSumExp(Function):
    """log(sum(exp(x))) over `axes`, computed as m + log(sum(exp(x - m))) with m the max (0 where
    the max is +-inf), so nothing overflows. The backward is PyTorch's, exp(x - result), from the
    rounded result: in float32 at 1e4 that differs from the exact softmax in the fourth digit
    (two near-tied maxima get 0.49989 each, not 0.5), and PyTorch's gradient is the reference."""

    formula = "d logsumexp(x)/dx_i = exp(x_i - logsumexp(x)) = softmax(x)_i"

    def forward(self, x, axes: tuple, keepdim: bool):
        self.kept = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
        peak = x.max(axes)
        peak = _abs(peak).cmpeq(_constant(peak, math.inf)).where(_constant(peak, 0), peak)
        total = x.sub(peak.expand(x.shape)).exp().sum(axes).log().add(peak)
        return total if keepdim else total.reshape(tuple(s for i, s in enumerate(x.shape)
                                                        if i not in axes))

    def backward(self, grad_output):
        (x,) = self.inputs
        result = Reshape.apply(self.output, shape=self.kept)
        return Reshape.apply(grad_output, shape=self.kept) * (x - result).exp()


class LogSoftmax(Function):
    """log_softmax as one op rather than x - logsumexp(x): the same numbers, a third of the
    Functions in the graph of every classifier's loss."""

    formula = "d log_softmax(x)_i/dx_j = [i == j] - softmax(x)_j"

    def forward(self, x, axis: int):
        self.axis = axis
        shifted = x.sub(x.max((axis,)).expand(x.shape))  # the largest becomes 0: exp can't overflow
        total = shifted.exp().sum((axis,)).log()
        return shifted.sub(total.expand(x.shape))

    def backward(self, grad_output):
        softmax = self.output.exp()
        return grad_output - softmax * grad_output.sum(self.axis, keepdim=True)


class Softmax(Function):
    formula = "d softmax(x)_i/dx_j = s_i ([i == j] - s_j)"

    def forward(self, x, axis: int):
        self.axis = axis
        return _softmax(x, axis)

    def backward(self, grad_output):
        s = self.output
        return s * (grad_output - (grad_output * s).sum(self.axis, keepdim=True))


def _softmax(x, axis: int):
    """softmax over one axis of TensorData (Softmax, ScaledDotProductAttention): the row's max
    is subtracted first, so that exp cannot overflow."""
    exp = x.sub(x.max((axis,)).expand(x.shape)).exp()
    return exp.div(exp.sum((axis,)).expand(x.shape))


# ---- movement ------------------------------------------------------------------------------------
class Reshape(Function):
    formula = "reshape the gradient back"

    def forward(self, x, shape: tuple):
        self.input_shape = x.shape
        return x.reshape(shape)

    def backward(self, grad_output):
        return Reshape.apply(grad_output, shape=self.input_shape)


class Permute(Function):
    formula = "permute the gradient by the inverse order"

    def forward(self, x, order: tuple):
        self.order = order
        return x.permute(order)

    def backward(self, grad_output):
        inverse = [0] * len(self.order)
        for i, dim in enumerate(self.order):
            inverse[dim] = i
        return Permute.apply(grad_output, order=tuple(inverse))


class Expand(Function):
    formula = "sum the gradient over the broadcast dims"

    def forward(self, x, shape: tuple):
        self.input_shape = x.shape
        return x.expand(shape)

    def backward(self, grad_output):
        return grad_output.sum_to_shape(self.input_shape)


class Pad(Function):
    formula = "shrink the gradient back to the unpadded region"

    def forward(self, x, padding: tuple, value=0):
        self.bounds = tuple((before, before + s) for (before, _), s in zip(padding, x.shape))
        return x.pad(padding, value)

    def backward(self, grad_output):
        return Shrink.apply(grad_output, bounds=self.bounds)


class Shrink(Function):
    formula = "pad the gradient with zeros where elements were cut"

    def forward(self, x, bounds: tuple):
        self.padding = tuple((start, s - end) for (start, end), s in zip(bounds, x.shape))
        return x.shrink(bounds)

    def backward(self, grad_output):
        return Pad.apply(grad_output, padding=self.padding)


class Flip(Function):
    formula = "flip the gradient back"

    def forward(self, x, axes: tuple):
        self.axes = axes
        return x.flip(axes)

    def backward(self, grad_output):
        return Flip.apply(grad_output, axes=self.axes)


class Strided(Function):
    formula = "place the gradient back at every step-th position, zeros between"

    def forward(self, x, axis: int, start: int, count: int, step: int):
        self.args = (axis, start, step, x.shape[axis])
        return x.strided(axis, start, count, step)

    def backward(self, grad_output):
        axis, start, step, size = self.args
        return Unstrided.apply(grad_output, axis=axis, start=start, step=step, size=size)


class Unstrided(Function):
    formula = "take every step-th element of the gradient"

    def forward(self, x, axis: int, start: int, step: int, size: int):
        self.args = (axis, start, x.shape[axis], step)
        return x.unstrided(axis, start, step, size)

    def backward(self, grad_output):
        axis, start, count, step = self.args
        return Strided.apply(grad_output, axis=axis, start=start, count=count, step=step)


# ---- accelerated ---------------------------------------------------------------------------------
class Matmul(Function):
    formula = "d(x @ y)/dx = grad @ y^T, d(x @ y)/dy = x^T @ grad"

    def forward(self, x, y):
        return x.matmul(y)

    def backward(self, grad_output):
        x, y = self.inputs
        return (
            Matmul.apply(grad_output, _swap_last_two(y)) if self.needs_input_grad[0] else None,
            Matmul.apply(_swap_last_two(x), grad_output) if self.needs_input_grad[1] else None,
        )


class Linear(Function):
    """x @ weight.T + bias as one op, like PyTorch's addmm. Composed from matmul, transpose
    and a broadcast add it gives the same values, but the weight's gradient would come out
    transposed (column-major), and every optimizer step on it would then run on strided
    memory, several times slower. Here it is grad^T @ x, in the weight's own layout."""

    formula = "d(x W^T + b)/dx = grad W, /dW = grad^T x, /db = sum of grad over rows"

    def forward(self, x, weight, bias):
        """x (rows, in), weight (out, in), bias (out,)."""
        out = x.matmul(weight.permute((1, 0)))
        return out.add(bias.reshape((1, bias.shape[0])).expand(out.shape))

    def backward(self, grad_output):
        x, weight, _ = self.inputs
        needs = self.needs_input_grad
        return (
            Matmul.apply(grad_output, weight) if needs[0] else None,
            Matmul.apply(_swap_last_two(grad_output), x) if needs[1] else None,
            grad_output.sum(0) if needs[2] else None,
        )


def _swap_last_two(tensor):
    """The matrix transpose of every matrix in a batch: a PERMUTE, free for NumPy (a view)."""
    return Permute.apply(tensor, order=_last_two_swapped(tensor.ndim))


def _last_two_swapped(ndim: int) -> tuple:
    return tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)


class Unfold(Function):
    formula = "fold the gradient: each input element gets the sum over the windows it is in"

    def forward(self, x, kernel: tuple, stride: tuple):
        self.shape, self.stride = x.shape, stride
        return x.unfold(kernel, stride)

    def backward(self, grad_output):
        return Fold.apply(grad_output, shape=self.shape, stride=self.stride)


class Fold(Function):
    formula = "unfold the gradient: each window element reads its input position"

    def forward(self, cols, shape: tuple, stride: tuple):
        self.kernel, self.stride = cols.shape[4:], stride
        return cols.fold(shape, stride)

    def backward(self, grad_output):
        return Unfold.apply(grad_output, kernel=self.kernel, stride=self.stride)


class Take(Function):
    formula = "d x[index]/dx: add the gradient at index (repeats accumulate)"

    def forward(self, x, index, axis: int):
        self.shape, self.axis = x.shape, axis
        return x.take(axis, index)

    def backward(self, grad_output):
        index = self.parents[1]
        return IndexAdd.apply(grad_output, index, shape=self.shape, axis=self.axis), None


class IndexAdd(Function):
    formula = "d index_add(src)/dsrc: take the gradient at index"

    def forward(self, src, index, shape: tuple, axis: int):
        self.axis = axis
        return src.index_add(shape, axis, index)

    def backward(self, grad_output):
        index = self.parents[1]
        return Take.apply(grad_output, index, axis=self.axis), None


# ---- device --------------------------------------------------------------------------------------
class ToDevice(Function):
    """x.to(device): the same values on another device; the gradient goes back the same way."""

    formula = "d(x.to(device))/dx = 1, moved back to x's device"

    def forward(self, x, device: str):
        self.source = x.device
        return x.to(device)

    def backward(self, grad_output):
        return grad_output.to(self.source)


# ---- for nn: the error function, convolution, pooling, module hooks ------------------------------
# Every Function lives in this file, so that each derivative is found in one place; these
# serve nn: F.erf, F.gelu, F.layer_norm, F.conv2d, F.max_pool2d, and Module's full backward hooks.


class Erf(Function):
    """The error function (behind F.gelu and F.erf): the accelerated primitive ERF where the
    backend has it, else TensorData composes it from required primitives (edugrad/ops.py)."""

    formula = "d erf(x)/dx = 2/sqrt(pi) exp(-x^2)"

    def forward(self, x):
        return x.erf()  # a backend's own ERF, else the rational functions of ops.py

    def backward(self, grad_output):
        (x,) = self.inputs
        return grad_output * (-(x * x)).exp() * (2 / math.sqrt(math.pi))


class Gelu(Function):
    """GELU(x) = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2 the standard normal CDF (F.gelu).

    Composed from Tensor ops (x * 0.5 * (1 + erf(x / sqrt 2))) it is right, but it is five
    full-size passes forward and about twelve back, on the widest activation of every
    transformer block. Here the forward is one primitive, GELU, and the backward one more,
    GELU_GRAD, which computes the derivative below times grad_output from x alone: nothing
    is saved but the input (TensorData composes both where a backend lacks them)."""

    formula = "d gelu(x)/dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)"

    def forward(self, x):
        return x.gelu()  # a backend's own GELU, else x * (erf(x / sqrt 2) * 0.5 + 0.5)

    def backward(self, grad_output):
        (x,) = self.inputs
        # create_graph: the derivative as Tensor ops of x, for grad of grad; and a gradient of
        # another dtype (a float64 seed for a float32 output) promotes, as every op's does
        if GradMode.enabled or grad_output.dtype is not x.dtype:
            cdf = Erf.apply(x * (1 / math.sqrt(2))) * 0.5 + 0.5
            pdf = (x * x * -0.5).exp() * (1 / math.sqrt(2 * math.pi))
            return grad_output * (cdf + x * pdf)
        # grad_output * (Phi(x) + x phi(x)) in one call
        return x._result_class._make(x._data.gelu_grad(grad_output._data), None)


class LayerNorm(Function):
    """F.layer_norm over the trailing `axes`: xhat = (x - mean) / sqrt(var + eps) (biased
    variance), then xhat * weight + bias when both are given (`affine`).

    Composed from Tensor ops it is right as well, but it is nine Functions forward and about
    twenty backward, each a pass over the whole input (1.5 ms forward+backward on a GPT block's
    (32, 64, 128) at one thread; 1.1 ms as one Function). The forward keeps xhat and
    1/sqrt(var + eps); the backward is the textbook formula, in Tensor ops."""

    formula = ("dx = rstd (g - mean(g) - xhat mean(g xhat)), g = grad weight; "
               "dweight = sum grad xhat, dbias = sum grad over the leading dims")

    def forward(self, x, *affine, axes: tuple, eps: float):
        self.axes, self.eps = axes, eps
        total = x.sum(axes)
        count = _constant(total, math.prod(x.shape[axis] for axis in axes))
        mean = total.div(count)
        centred = x.sub(mean.expand(x.shape))
        variance = centred.mul(centred).sum(axes).div(count)
        rstd = _constant(variance, 1).div(variance.add(_constant(variance, eps)).sqrt())
        xhat = centred.mul(rstd.expand(x.shape))
        self.saved = (xhat, rstd)
        if not affine:
            return xhat
        weight, bias = (p.reshape((1,) * (x.ndim - p.ndim) + p.shape).expand(x.shape)
                        for p in affine)
        return xhat.mul(weight).add(bias)

    def backward(self, grad_output):
        x, *affine = self.inputs
        axes = self.axes
        if GradMode.enabled:  # create_graph: xhat and rstd must be ops of x, for grad of grad
            centred = x - x.mean(axes, keepdim=True)
            rstd = ((centred * centred).mean(axes, keepdim=True) + self.eps).rsqrt()
            xhat = centred * rstd
        else:
            xhat, rstd = (x._result_class._make(saved, None) for saved in self.saved)
        grad_xhat = grad_output * xhat
        if not affine:
            return (grad_output - grad_output.mean(axes, keepdim=True)
                    - xhat * grad_xhat.mean(axes, keepdim=True)) * rstd
        # with g = grad weight, the row means of g and of g xhat = (grad xhat) weight are
        # matrix-vector products with the weight: neither product is formed for its mean (and
        # grad xhat is dweight's summand anyway)
        weight = affine[0]
        lead, count = x.shape[:x.ndim - len(axes)], weight.numel()
        weight_over_count = Reshape.apply(weight, shape=(count, 1)) / count

        def row_means(rows):  # (*lead, *normalized) -> (*lead, 1, ..., 1)
            matrix = Reshape.apply(rows, shape=(math.prod(lead), count))
            return Reshape.apply(Matmul.apply(matrix, weight_over_count),
                                 shape=lead + (1,) * len(axes))

        g = grad_output * weight
        dx = (g - row_means(grad_output) - xhat * row_means(grad_xhat)) * rstd
        rows = tuple(range(len(lead)))
        needs = self.needs_input_grad
        return (dx if needs[0] else None,
                grad_xhat.sum(rows) if needs[1] else None,
                grad_output.sum(rows) if needs[2] else None)

    def release(self) -> None:
        super().release()
        self.saved = None


class ScaledDotProductAttention(Function):
    """F.scaled_dot_product_attention without dropout: P = softmax(q k^T scale + bias), out =
    P v, over the last two dims of (..., L, E) q, (..., S, E) k and (..., S, Ev) v with equal
    leading dims; `bias` (a float mask, -inf where masked) broadcasts to the (..., L, S) scores.

    Composed from Tensor ops (matmul, * scale, + bias, softmax, matmul) it is right too, but
    the (L, S) scores of every head are attention's largest tensors, and the composition's
    backward makes five passes over them: the scale's, and softmax's four (s (g - sum(g s))).
    As one op the scale goes on q (L x E elements, not L x S, forward and backward), and the
    backward is the textbook one (FlashAttention's): softmax's row sums sum_j dP_ij P_ij are
    computed as sum_k dO_ik out_ik, the same numbers (out = P v, dP = dO v^T) from the
    smaller (L, Ev) tensors, which leaves two passes over (L, S): dP - D and P (dP - D).
    The forward keeps P and the scaled q.
    """

    formula = ("dv = P^T dO, dS = P (dO v^T - rowsum(dO out)), dq = scale dS k, "
               "dk = dS^T (scale q), dbias = dS")

    def forward(self, query, key, value, *bias, scale: float):
        self.scale = scale
        scaled = query.mul(_constant(query, scale))
        scores = scaled.matmul(key.permute(_last_two_swapped(key.ndim)))
        if bias:
            scores = scores.add(bias[0].expand(scores.shape))
        probs = _softmax(scores, scores.ndim - 1)
        self.saved = (scaled, probs)
        return probs.matmul(value)

    def backward(self, grad_output):
        query, key, value, *bias = self.inputs
        if GradMode.enabled:  # create_graph: P and the scaled q as ops of q, k, bias
            scaled = query * self.scale
            scores = scaled @ _swap_last_two(key)
            probs = (scores + bias[0] if bias else scores).softmax(-1)
        else:
            scaled, probs = (query._result_class._make(saved, None) for saved in self.saved)
        # D = rowsum(dP * P) = rowsum(dO * out): the row sums of softmax's derivative
        rows = (grad_output * self.output).sum(-1, keepdim=True)
        dscores = probs * (grad_output @ _swap_last_two(value) - rows)
        needs = self.needs_input_grad
        return (
            (dscores @ key) * self.scale if needs[0] else None,
            _swap_last_two(dscores) @ scaled if needs[1] else None,
            _swap_last_two(probs) @ grad_output if needs[2] else None,
            *(dscores.sum_to_shape(bias[0].shape) if needs[3] else None for _ in bias),
        )

    def release(self) -> None:
        super().release()
        self.saved = None


class ColumnsProduct(Function):
    """F.conv2d's product: the weight (OC, C*KH*KW) times the im2col columns, plus the bias
    (see edugrad/nn/functional_conv.py)."""

    formula = "Y = W C + b: dW = G C^T, dC = W^T G, db = G summed over its columns"

    # As with F.linear: composed from Tensor ops (matmul, then add the bias) this would keep the
    # bias-free product alive in the graph until backward, 4 MB per step in a small CNN; one
    # Function keeps only its inputs.
    def forward(self, columns, weight, bias=None):  # (K, N*L), (OC, K), (OC,)
        output = weight.matmul(columns)
        if bias is None:
            return output
        return output.add(bias.reshape((bias.shape[0], 1)).expand(output.shape))

    def backward(self, grad_output):  # (OC, N*L)
        columns, weight, *bias = self.inputs
        need_columns, need_weight = self.needs_input_grad[:2]
        grads = (weight.T @ grad_output if need_columns else None,  # (K, OC) @ (OC, N*L)
                 grad_output @ columns.T if need_weight else None)  # (OC, N*L) @ (N*L, K)
        if bias:
            grads += (grad_output.sum(1) if self.needs_input_grad[2] else None,)
        return grads


class WindowMax(Function):
    """F.max_pool2d's reduction: the maximum of each window, windows along dim 0 (K, M)."""

    formula = "d max_k(w_k)/dw_k = 1 for the first k holding the maximum, else 0"

    def forward(self, windows):
        return windows.max((0,), keepdim=False)  # (K, M) -> (M,)

    def backward(self, grad_output):
        # PyTorch sends the gradient to ONE element per window, the first maximum (amax would
        # split it between ties, such as the zeros of a ReLU). Row k of a hit scores K - k, so
        # the highest score is the first hit. (A window holding NaN has no hit and passes its
        # gradient to every element; its loss is NaN anyway.)
        windows, peak = self.inputs[0].detach(), self.output.detach()
        size = windows.shape[0]
        rank = windows.new_tensor(list(range(size, 0, -1))).reshape(size, 1)  # K, K-1, ..., 1
        score = (windows == peak).to(windows.dtype) * rank
        first = (score == score.amax(0)).to(grad_output.dtype)
        return first * grad_output


class GradTap(Function):
    """nn.Module's full backward hooks: the identity, whose backward shows the gradient to a
    callback (which may replace it) on its way to the input."""

    formula = "identity: the gradient passes through, shown to a callback on the way"

    def forward(self, x, callback):
        self.callback = callback
        return x

    def backward(self, grad_output):
        replaced = self.callback(grad_output)
        return grad_output if replaced is None else replaced


# ---- issue 10's elementwise functions: accurate forms no single primitive gives -------------------
# log1p and expm1 exist for x near 0, where log(1 + x) and exp(x) - 1 lose every digit of x;
# atan has no primitive at all. Each forward is a short composition on TensorData, each backward
# is written with Tensor ops, so grad-of-grad works.

class Log1p(Function):
    """log(1 + x), accurate for tiny x: with u = 1 + x rounded, log(u) * x / (u - 1) cancels the
    rounding of u (Goldberg, "What every computer scientist should know...", theorem 4)."""

    formula = "d log1p(x)/dx = 1 / (1 + x)"

    def forward(self, x):
        one = _constant(x, 1)
        u = x.add(one)
        shifted = u.sub(one)
        exact = u.cmpeq(one)  # 1 + x rounds to 1: log1p(x) is x to working precision
        safe = exact.where(one, shifted)
        corrected = u.log().mul(x.div(safe))  # x / (u - 1) first: near 1, no overflow
        # u infinite (x = inf): log(u) * x / (u - 1) is inf / inf; the answer is inf
        return _or(exact, u.cmpeq(_constant(x, math.inf))).where(
            exact.where(x, u.log()), corrected)

    def backward(self, grad_output):
        (x,) = self.inputs
        return grad_output / (x + 1)


class Expm1(Function):
    """exp(x) - 1, accurate for tiny x: with u = exp(x) rounded, (u - 1) * x / log(u) cancels
    the rounding of u (Kahan's trick)."""

    formula = "d expm1(x)/dx = exp(x) = expm1(x) + 1"

    def forward(self, x):
        one = _constant(x, 1)
        u = x.exp()
        shifted = u.sub(one)
        log_u = u.log()
        exact = u.cmpeq(one)
        # u - 1 = -1 (x very negative) or u = inf: u - 1 is already right; so is x = 0 or tiny
        plain = _or(shifted.cmpeq(_constant(x, -1)), u.cmpeq(_constant(x, math.inf)))
        corrected = shifted.mul(x).div(_or(exact, plain).where(one, log_u))
        return exact.where(x, plain.where(shifted, corrected))

    def backward(self, grad_output):
        return grad_output * (self.output + 1)  # we save the output here, not the input


# Cephes (S. L. Moshier, atan.c): atan(x) = x + x^3 P(x^2) / Q(x^2) on |x| <= 0.66, after range
# reduction: atan(x) = pi/2 + atan(-1/x) for x > tan(3 pi/8), pi/4 + atan((x - 1) / (x + 1)) for
# 0.66 < x <= tan(3 pi/8); odd, so negative x use -atan(-x). Relative error ~1e-16 in float64
# (checked against math.atan in tests/test_ops_extra.py); float32 computes the same expression
# in float32, within 2 ulp of torch.
_ATAN_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1, -7.500855792314704667340e1,
           -1.228866684490136173410e2, -6.485021904942025371773e1)
_ATAN_Q = (1.0, 2.485846490142306297962e1, 1.650270098316988542046e2, 4.328810604912902668951e2,
           4.853903996359136964868e2, 1.945506571482613964425e2)
_TAN_3PI_8 = 2.41421356237309504880


def _polynomial(x, coefficients):
    """c0 x^n + c1 x^(n-1) + ... + cn by Horner's rule, on TensorData."""
    result = TensorData.constant(coefficients[0], x.shape, x.dtype, x.backend)
    for c in coefficients[1:]:
        result = result.mul(x).add(TensorData.constant(c, x.shape, x.dtype, x.backend))
    return result
_MOREBITS = 6.123233995736765886130e-17  # pi/2 - float64(pi/2)


def _atan(x):
    """atan on TensorData, by the range reduction and rational function above."""
    magnitude = _abs(x)
    one = _constant(x, 1)
    far = _constant(x, _TAN_3PI_8).cmplt(magnitude)
    near = _not(_constant(x, 0.66).cmplt(magnitude))  # NaN falls in the middle branch: stays NaN
    safe = far.where(magnitude, one)  # no division by zero in a branch that is not taken
    reduced = far.where(one.div(safe).neg(),
                        near.where(magnitude, magnitude.sub(one).div(magnitude.add(one))))
    base = far.where(_constant(x, math.pi / 2 + _MOREBITS),
                     near.where(_constant(x, 0), _constant(x, math.pi / 4 + _MOREBITS / 2)))
    square = reduced.mul(reduced)
    tail = reduced.mul(square).mul(_polynomial(square, _ATAN_P)).div(_polynomial(square, _ATAN_Q))
    result = base.add(reduced.add(tail))
    signed = x.cmplt(_constant(x, 0)).where(result.neg(), result)
    return x.cmpeq(_constant(x, 0)).where(x, signed)  # atan(-0.0) is -0.0


class Atan(Function):
    formula = "d atan(x)/dx = 1 / (1 + x^2)"

    def forward(self, x):
        return _atan(x)

    def backward(self, grad_output):
        (x,) = self.inputs
        return grad_output / (x * x + 1)


class Atan2(Function):
    """The angle of the point (x, y), in (-pi, pi]: atan(y / x) in the half plane x > 0, turned
    by pi elsewhere; on an axis, C's rules for signed zeros and infinities."""

    formula = "d atan2(y, x)/dy = x / (x^2 + y^2), d/dx = -y / (x^2 + y^2)"

    def forward(self, y, x):
        zero, one = _constant(x, 0), _constant(x, 1)
        inf = _constant(x, math.inf)
        both_inf = _and(_abs(x).cmpeq(inf), _abs(y).cmpeq(inf))
        # two infinities: the angle of (+-1, +-1); two zeros: of (+-1, +-0), signs kept
        both_zero = _and(x.cmpeq(zero), y.cmpeq(zero))
        x = _or(both_inf, both_zero).where(_sign_bit(x).where(one.neg(), one), x)
        y = both_inf.where(_sign_bit(y).where(one.neg(), one), y)
        steep = _abs(x).cmplt(_abs(y))  # |y| > |x|: atan(x / y) is the accurate one
        flat_angle = _atan(y.div(steep.where(one, x)))
        half_pi = _sign_bit(y).where(_constant(x, -math.pi / 2), _constant(x, math.pi / 2))
        steep_angle = half_pi.sub(_atan(x.div(steep.where(y, one))))
        turn = _sign_bit(y).where(_constant(x, -math.pi), _constant(x, math.pi))
        flat = _sign_bit(x).where(flat_angle.add(turn), flat_angle)
        return steep.where(steep_angle, flat)

    def backward(self, grad_output):
        y, x = self.inputs
        # at the origin the angle has no derivative; PyTorch gives 0 there, not 0/0
        square = x * x + y * y
        origin = (square == 0).detach()
        scale = (grad_output / square.masked_fill(origin, 1)).masked_fill(origin, 0)
        return (scale * x if self.needs_input_grad[0] else None,
                -scale * y if self.needs_input_grad[1] else None)


class Xlogy(Function):
    """x log(y), and 0 where x = 0 unless y is NaN (so 0 log 0 = 0), as torch.xlogy."""

    formula = ("d/dx = log(y) (0 where x = 0 and y <= 0), d/dy = x / y")

    def forward(self, x, y):
        zero = _constant(x, 0)
        skip = _and(x.cmpeq(zero), y.cmpeq(y))  # x = 0 and y not NaN
        # y is replaced by 1 where x = 0, so that no 0 * -inf (a NaN) is ever made
        return x.mul(skip.where(_constant(y, 1), y).log())

    def backward(self, grad_output):
        x, y = self.inputs
        return ((grad_output * y.log()).masked_fill(((x == 0) & (y <= 0)).detach(), 0)
                if self.needs_input_grad[0] else None,
                grad_output * x / y if self.needs_input_grad[1] else None)


# ---- linear algebra: decompositions, with PyTorch's derivatives ---------------------------------
# No primitive decomposes a matrix: linalg.py computes the SVD, eigh and pinv by Jacobi rotations
# composed from Tensor ops and hands that routine in as `decompose` (this layer does not see
# Tensor). The gradient is not autograd through the rotations, which would hold every rotation of
# every sweep and be right only in the limit: it is PyTorch's formula, one per class below. They
# are written in PyTorch's style (forward on Tensors, several outputs, defined after the adapter
# at the end of this file) and their backwards in Tensor ops, so grad-of-grad works.
def _fresh(tensors) -> tuple:
    """Copies that are no view of anything: the adapter links these very objects into the
    graph, so the ones saved for backward carry it (grad-of-grad needs that)."""
    return tuple(t.clone() for t in tensors)


def _identity_like(values):
    """(..., k, k) identities for a (..., k) tensor."""
    return values.new_ones(values.shape).diag_embed()


def _svd_backward(grad_U, grad_S, grad_Vh, U, S, Vh):
    """PyTorch's svd_backward (real case) for thin factors U (m, k), S (k,), Vh (k, n); a
    gradient that is None was not asked for."""
    if grad_U is None and grad_Vh is None:  # singular values only: U diag(gS) Vh
        return U @ (grad_S.unsqueeze(-1) * Vh)
    squares = S * S
    gaps = squares.unsqueeze(-2) - squares.unsqueeze(-1) + _identity_like(S)  # s_j^2 - s_i^2
    inner = 0
    if grad_U is not None:
        UtgU = U.mT @ grad_U
        inner = (UtgU - UtgU.mT) * S.unsqueeze(-2) / gaps
    if grad_Vh is not None:
        VtgV = Vh @ grad_Vh.mT
        inner = inner + S.unsqueeze(-1) * (VtgV - VtgV.mT) / gaps
    if grad_S is not None:
        inner = inner + grad_S.diag_embed()
    m, n = U.shape[-2], Vh.shape[-1]
    if m > n and grad_U is not None:  # gU's part outside U's columns: (I - U U^T) gU S^-1
        scaled = grad_U / S.unsqueeze(-2)
        return (U @ inner + scaled - U @ (U.mT @ scaled)) @ Vh
    if m < n and grad_Vh is not None:  # and gVh's outside Vh's rows
        scaled = grad_Vh / S.unsqueeze(-1)
        return U @ (inner @ Vh + scaled - (scaled @ Vh.mT) @ Vh)
    return U @ inner @ Vh


# ---- PyTorch's style: @staticmethod forward(ctx, ...) on Tensors, a thin adapter ----------------
# A class whose forward is a staticmethod is written as in PyTorch:
#
#     class Exp(edugrad.autograd.Function):
#         @staticmethod
#         def forward(ctx, x):                  # x is a Tensor; runs under no_grad
#             y = x.exp()
#             ctx.save_for_backward(y)
#             return y
#         @staticmethod
#         def backward(ctx, grad_output):       # one gradient per forward argument
#             (y,) = ctx.saved_tensors
#             return grad_output * y
#
# Its `apply` runs forward on the Tensors with grad off, then links each differentiable output
# to one PyTorchStyleBackward node: a library Function whose backward calls the class's. So
# there is one mechanism; this is only the door PyTorch users know.
def _is_tensor(value) -> bool:
    return isinstance(getattr(value, "_data", None), TensorData)  # function.py never sees Tensor


class FunctionCtx:
    """The `ctx` a PyTorch-style forward fills and its backward reads (torch.autograd.function
    .FunctionCtx). Any other attribute (`ctx.dim = 1`) is kept as set."""

    def __init__(self, name: str, needs_input_grad: tuple) -> None:
        self.name = name
        self.needs_input_grad = needs_input_grad  # one bool per forward argument
        self.materialize_grads = True
        self.to_save = ()
        self.saved_versions = ()
        self.non_differentiable = set()
        self.live_nodes = 0

    def save_for_backward(self, *tensors) -> None:
        self.to_save = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        self.non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value: bool) -> None:
        """False: backward gets None, not zeros, for an output that received no gradient."""
        self.materialize_grads = bool(value)

    @property
    def saved_tensors(self) -> tuple:
        if self.to_save is None:
            raise RuntimeError(f"{self.name}: its saved tensors were freed by an earlier "
                               "backward; pass retain_graph=True to the first backward")
        for i, (tensor, version) in enumerate(zip(self.to_save, self.saved_versions)):
            if tensor is not None and tensor._version != version:
                raise RuntimeError(
                    f"{self.name}: saved tensor {i} (shape {tuple(tensor.shape)}) was modified "
                    f"by an in-place operation (now at version {tensor._version}, saved at "
                    f"{version}), and backward needs its old value; clone it before changing it")
        return self.to_save


def _apply_pytorch_style(cls, *args):
    """F.apply(*args) for a PyTorch-style F: forward under no_grad, then link the outputs."""
    ctx = FunctionCtx(cls.__name__ + "Backward",
                      tuple(_is_tensor(a) and a.requires_grad for a in args))
    recording = GradMode.enabled
    GradMode.enabled = False
    try:
        if hasattr(cls, "setup_context"):  # PyTorch 2's split: forward(*args), then setup_context
            outputs = cls.forward(*args)
            cls.setup_context(ctx, args, outputs)
        else:
            outputs = cls.forward(ctx, *args)
    finally:
        GradMode.enabled = recording
    ctx.saved_versions = tuple(t._version if t is not None else 0 for t in ctx.to_save)
    single = not isinstance(outputs, tuple)
    outputs = (outputs,) if single else outputs
    if recording and True in ctx.needs_input_grad:
        outputs = _link_outputs(cls, ctx, args, outputs)
    return outputs[0] if single else outputs


def _link_outputs(cls, ctx, args, outputs) -> tuple:
    inputs = tuple(a for a in args if _is_tensor(a))
    ctx.output_shapes = [(o.shape, o.dtype) if _is_tensor(o) else None for o in outputs]
    linked = []
    for index, out in enumerate(outputs):
        if (not _is_tensor(out) or id(out) in ctx.non_differentiable
                or not out.dtype.is_floating_point):  # integer outputs have no gradient
            linked.append(out)
            continue
        node = PyTorchStyleBackward(*inputs)
        node.function, node.ctx, node.index = cls, ctx, index
        node.args_are_tensors = tuple(_is_tensor(a) for a in args)
        ctx.live_nodes += 1
        if not out.requires_grad and out._view is None and not any(out is t for t in inputs):
            out._ctx, out.requires_grad = node, True  # the same object: a saved output is linked
        else:  # an input, a view or a leaf returned as is: a new Tensor on the same values
            out = out._result_class._make(out._data, node)
        node._output = weakref.ref(out)
        linked.append(out)
    return tuple(linked)


class PyTorchStyleBackward(Function):
    """The graph node of one output of a PyTorch-style Function: backward calls the class's
    backward with this output's gradient (zeros, or None, for the others). An op with two
    outputs has two nodes and its backward runs once for each; the sum is right because a
    backward is linear in its gradients."""

    def backward(self, grad_output):
        ctx = self.ctx
        grads = [None] * len(ctx.output_shapes)
        grads[self.index] = grad_output
        for i, like in enumerate(ctx.output_shapes):
            if i != self.index and like is not None and ctx.materialize_grads:
                grads[i] = grad_output.new_zeros(like[0], dtype=like[1])
        results = self.function.backward(ctx, *grads)
        results = results if isinstance(results, tuple) else (results,)
        expected = len(self.args_are_tensors)
        if len(results) < expected or any(g is not None for g in results[expected:]):
            raise RuntimeError(f"{self.name}: backward returned {len(results)} gradients, "
                               f"expected {expected} (one per forward argument)")
        for i, (grad, is_tensor) in enumerate(zip(results, self.args_are_tensors)):
            if not is_tensor and grad is not None:
                raise RuntimeError(f"{self.name}: backward returned a gradient for argument {i}, "
                                   "which is not a Tensor; return None there")
        return tuple(g for g, is_tensor in zip(results, self.args_are_tensors) if is_tensor)

    def release(self) -> None:
        super().release()
        self.ctx.live_nodes -= 1
        if self.ctx.live_nodes == 0:
            self.ctx.to_save = None  # as PyTorch frees the saved tensors after backward

    @property
    def name(self) -> str:
        return self.function.__name__ + "Backward"


# ---- the decompositions of linalg.py (see "linear algebra" above), in PyTorch's style -----------
class SVD(Function):
    """A = U diag(S) Vh (linalg.svd). The gradient assumes distinct singular values, and nonzero
    ones where U or Vh has a gradient and A is not square (as PyTorch's)."""

    formula = ("gA = U [(F o (U^T gU - gU^T U)) S + S (F o (V^T gV - gV^T V)) + diag(gS)] Vh, "
               "F_ij = 1 / (s_j^2 - s_i^2); plus (I - U U^T) gU S^-1 Vh when A is tall")

    @staticmethod
    def forward(ctx, A, full_matrices: bool, decompose):
        U, S, Vh = _fresh(decompose(A, full_matrices))
        ctx.save_for_backward(U, S, Vh)
        ctx.full_matrices = full_matrices
        ctx.set_materialize_grads(False)  # None for an unused output: svdvals pays U gS Vh only
        return U, S, Vh

    @staticmethod
    def backward(ctx, grad_U, grad_S, grad_Vh):
        U, S, Vh = ctx.saved_tensors
        if ctx.full_matrices:  # the columns that complete U and Vh to squares have no defined
            k = S.shape[-1]  # gradient: PyTorch leaves them out, and so do we
            U, Vh = U[..., :k], Vh[..., :k, :]
            grad_U = None if grad_U is None else grad_U[..., :k]
            grad_Vh = None if grad_Vh is None else grad_Vh[..., :k, :]
        return _svd_backward(grad_U, grad_S, grad_Vh, U, S, Vh), None, None


class Eigh(Function):
    """A = V diag(L) V^T for a symmetric A (linalg.eigh). The gradient assumes distinct
    eigenvalues where V has a gradient (as PyTorch's)."""

    formula = "gA = V [diag(gL) + (V^T gV - gV^T V) / (2 E)] V^T, E_ij = l_j - l_i"

    @staticmethod
    def forward(ctx, A, UPLO: str, decompose):
        eigenvalues, eigenvectors = _fresh(decompose(A, UPLO))
        ctx.save_for_backward(eigenvalues, eigenvectors)
        ctx.set_materialize_grads(False)
        return eigenvalues, eigenvectors

    @staticmethod
    def backward(ctx, grad_L, grad_V):
        L, V = ctx.saved_tensors
        inner = 0
        if grad_V is not None:
            VtgV = V.mT @ grad_V
            inner = (VtgV - VtgV.mT) / (2 * (L.unsqueeze(-2) - L.unsqueeze(-1) + _identity_like(L)))
        if grad_L is not None:
            inner = inner + grad_L.diag_embed()
        return V @ inner @ V.mT, None, None


class PInv(Function):
    """P = A^+, the pseudo-inverse (linalg.pinv). The gradient is PyTorch's pinv_backward (Golub
    and Pereyra's, for A of constant rank: small changes keep the singular values it drops)."""

    formula = ("dP = -P dA P + P P^T dA^T (I - A P) + (I - P A) dA^T P^T P, read backwards "
               "(transposed) for gA")

    @staticmethod
    def forward(ctx, A, decompose):
        (P,) = _fresh((decompose(A),))
        ctx.save_for_backward(A, P)
        return P

    @staticmethod
    def backward(ctx, grad):
        A, P = ctx.saved_tensors
        gradT, PT = grad.mT, P.mT
        if A.shape[-2] <= A.shape[-1]:  # the products of the smaller size
            K = gradT @ P
            KPT = K @ PT
            return -(P @ K).mT + KPT - (A @ P) @ KPT + (PT @ P) @ (gradT - K @ A), None
        K = P @ gradT
        PTK = PT @ K
        return -(K @ P).mT + (gradT - A @ K) @ P @ PT + PTK - PTK @ P @ A, None


def once_differentiable(backward):
    """Decorate a PyTorch-style backward that is not written in differentiable ops: it runs
    with grad off, and differentiating its result again raises instead of being silently 0."""

    @functools.wraps(backward)
    def wrapper(ctx, *grad_outputs):
        create_graph = GradMode.enabled
        GradMode.enabled = False
        try:
            results = backward(ctx, *grad_outputs)
        finally:
            GradMode.enabled = create_graph
        sources = [t for t in grad_outputs if _is_tensor(t) and t.requires_grad]  # as PyTorch
        if not (create_graph and sources):
            return results
        node = OnceDifferentiable(*sources)
        single = not isinstance(results, tuple)
        wrapped = tuple(g._result_class._make(g._data, node) if _is_tensor(g) else g
                        for g in ((results,) if single else results))
        return wrapped[0] if single else wrapped

    return wrapper


class OnceDifferentiable(Function):
    """Stands behind the gradients a @once_differentiable backward returns under
    create_graph=True, so that a second differentiation through them raises."""

    def backward(self, grad_output):
        raise RuntimeError("trying to differentiate twice a function that was marked with "
                           "@once_differentiable")


# ---- erfc and erfinv, to the dtype's precision where 1 - erf(x) and one formula are not ----
# Both compute in float64 and round once to the input's dtype: erfc(x) falls to 1e-38 by x = 9.2,
# where float32's own x*x would carry a relative error of 81 ulps into exp(-x*x).
_ERFC_ASYMPTOTIC = 12  # terms of erfc's series beyond x = 8: the 12th is below 1e-17 there


def _erfc(x):
    """erfc on float64 TensorData: 1 - erf(x) below |x| = 1 (erfc > 0.157 there, so at most
    three bits are lost), Cephes' exp(-x^2) P(x)/Q(x) on [1, 8], beyond it the asymptotic
    series exp(-x^2) / (x sqrt(pi)) sum_n (-1)^n (2n-1)!! / (2x^2)^n; erfc(-x) = 2 - erfc(x)."""
    one = _constant(x, 1.0)
    magnitude = _abs(x)
    middle = magnitude.maximum(one).neg().maximum(_constant(x, -8.0)).neg()  # clamped to [1, 8]
    tail = middle.mul(middle).neg().exp().mul(_polynomial(middle, ERF_FLOAT64["P"])).div(
        _polynomial(middle, ERF_FLOAT64["Q"]))
    far = magnitude.maximum(_constant(x, 8.0))  # inf stays inf: exp(-inf) = 0 below
    far_square = far.mul(far)
    inverse = one.div(far_square.mul(_constant(x, 2.0)))
    series, term = one, one
    for n in range(1, _ERFC_ASYMPTOTIC):
        term = term.mul(inverse).mul(_constant(x, -(2 * n - 1)))
        series = series.add(term)
    asymptotic = far_square.neg().exp().div(far.mul(_constant(x, math.sqrt(math.pi)))).mul(series)
    positive = _constant(x, 8.0).cmplt(magnitude).where(asymptotic, tail)
    signed = x.cmplt(_constant(x, 0.0)).where(_constant(x, 2.0).sub(positive), positive)
    return magnitude.cmplt(one).where(one.sub(x.erf()), signed)  # NaN: the first branch, NaN


class Erfc(Function):
    """The complementary error function 1 - erf(x), accurate also where it is tiny (x > 3)."""

    formula = "d erfc(x)/dx = -2/sqrt(pi) exp(-x^2)"

    def forward(self, x):
        return _erfc(x.cast(dtypes.float64)).cast(x.dtype)

    def backward(self, grad_output):
        (x,) = self.inputs
        return grad_output * (-(x * x)).exp() * (-2 / math.sqrt(math.pi))


# Giles (2010), "Approximating the erfinv function": a first guess good to ~1e-7 relative
_ERFINV_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                   0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_STEPS = 4  # Newton steps, each squaring the relative error: two suffice for float32;
# float64 inputs within 1e-12 of +-1, beyond the guess's range, need all four
_ERFINV_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def _erfinv(x):
    """erfinv on float64 TensorData: Giles' guess, then Newton steps on erf(y) = |x|. From
    |x| = 1/2 on they solve erfc(y) = 1 - |x| instead, whose right side is exact, so that y is
    right to the last bit as far as the input allows."""
    one, half = _constant(x, 1.0), _constant(x, 0.5)
    magnitude = _abs(x)
    inside = magnitude.cmplt(one)
    a = inside.where(magnitude, half)  # |x| >= 1 and NaN are settled at the end
    w = one.sub(a).mul(one.add(a)).log().neg()
    central = w.cmplt(_constant(x, 5.0))
    guess = central.where(_polynomial(w.sub(_constant(x, 2.5)), _ERFINV_CENTRAL),
                          _polynomial(w.sqrt().sub(_constant(x, 3.0)), _ERFINV_TAIL)).mul(a)
    slope = _constant(x, 2 / math.sqrt(math.pi))
    small = a.cmplt(half)
    for _ in range(_ERFINV_STEPS):
        density = slope.mul(guess.mul(guess).neg().exp())  # d erf(y)/dy
        complement = _erfc(guess)
        # Newton on erf(y) = a near 0; near 1 on log erfc(y) = log(1 - a), nearly a parabola in
        # y, where Newton on erfc itself would crawl down its steep convex tail
        step = small.where(guess.erf().sub(a).div(density),
                           one.sub(a).div(complement).log().mul(complement).div(density))
        guess = guess.sub(step)
    y = inside.where(guess, magnitude.cmpeq(one).where(_constant(x, math.inf),
                                                       _constant(x, math.nan)))
    signed = _sign_bit(x).where(y.neg(), y)
    return x.cmpeq(_constant(x, 0.0)).where(x, signed)  # erfinv(-0.0) = -0.0, as PyTorch


class Erfinv(Function):
    """The inverse of erf on (-1, 1); erfinv(+-1) = +-inf, NaN outside."""

    formula = "d erfinv(x)/dx = sqrt(pi)/2 exp(erfinv(x)^2)"

    def forward(self, x):
        return _erfinv(x.cast(dtypes.float64)).cast(x.dtype)

    def backward(self, grad_output):
        y = self.output  # we save the output here: the derivative is a function of it
        return grad_output * (y * y).exp() * (math.sqrt(math.pi) / 2)
