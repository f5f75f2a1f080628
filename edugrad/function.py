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

Each backward carries its derivative as a one-line comment; `formula` holds the same line for
the teaching tools to show.
"""

from __future__ import annotations

import math
import re
import threading
import weakref

from edugrad.data import TensorData


class _GradMode(threading.local):
    """Whether Function.apply records the graph, for the calling thread only (as in PyTorch):
    a `no_grad()` block in one thread, or a backward running there, leaves every other thread
    recording. The class attribute is the default each new thread starts from."""

    enabled = True


GradMode = _GradMode()  # read as GradMode.enabled: one attribute of this thread's own state


class Function:
    """Base of every differentiable op; `apply` runs forward and links the result into the graph.

    Attributes a backward uses:
        inputs            the input Tensors, checked to be unmodified since forward
        output            the output Tensor (for ops whose derivative is their result)
        needs_input_grad  one bool per input: compute that gradient or return None
    """

    formula = ""  # the local derivative, for the teaching tools
    op = ""  # the op's name in error messages, when the class name is not it (see op_name)
    output_version = 0  # a new output starts at version 0; Tensor._assign moves it on

    def __init__(self, *parents) -> None:
        self.parents = parents
        self.needs_input_grad = tuple([p.requires_grad for p in parents])
        self.requires_grad = True in self.needs_input_grad

    def forward(self, *inputs, **options):
        raise NotImplementedError(f"{type(self).__name__}.forward is not written")

    def backward(self, grad_output):
        raise NotImplementedError(f"{type(self).__name__}.backward is not written")

    @classmethod
    def apply(cls, *inputs, **options):
        """Run forward on the inputs' TensorData; link the output to this op if grad is on.

        Every op passes here, so this is where mixed devices are caught, once for all ops."""
        data = [t._data for t in inputs]
        backend = data[0].backend
        for each in data:
            if each.backend is not backend:
                raise RuntimeError(f"{op_name(cls)}: expected all tensors on the same device, got "
                                   f"{backend.device} and {each.backend.device} (move one with "
                                   ".to(device))")
        ctx = cls(*inputs)
        out_data = ctx.forward(*data, **options)
        result_class = inputs[0]._result_class  # Tensor, also for an nn.Parameter input
        if not (ctx.requires_grad and GradMode.enabled):
            return result_class._make(out_data, None)
        ctx.versions = tuple(t._version for t in inputs)
        out = result_class._make(out_data, ctx)
        # a weak reference: a strong one makes a cycle out -> ctx -> out, and a graph nobody
        # calls backward on would wait for the cycle collector. Backward holds every tensor.
        ctx._output = weakref.ref(out)
        return out

    @property
    def inputs(self) -> tuple:
        self._check_versions()
        return self.parents

    @property
    def output(self):
        out = self._output()
        if out._version != self.output_version:
            raise RuntimeError(self._modified_message("its output", out))
        return out

    def _check_versions(self) -> None:
        if self.parents is None:
            raise RuntimeError(
                f"{self.name}: its saved tensors were freed by an earlier backward; "
                "pass retain_graph=True to the first backward to keep them"
            )
        for i, (tensor, version) in enumerate(zip(self.parents, self.versions)):
            if tensor._version != version:
                raise RuntimeError(self._modified_message(f"input {i}", tensor))

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
        # stable for |x| of 1e4: e = exp(-|x|) never overflows
        e = x.maximum(x.neg()).neg().exp()
        one = x.full_like(1)
        return x.cmplt(x.full_like(0)).where(e.div(one.add(e)), one.div(one.add(e)))

    def backward(self, grad_output):
        s = self.output
        return grad_output * s * (1 - s)


class Tanh(Function):
    formula = "d(tanh x)/dx = 1 - tanh(x)^2"

    def forward(self, x):
        # tanh x = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|), which never overflows
        e = x.maximum(x.neg()).mul(x.full_like(-2)).exp()
        one = x.full_like(1)
        magnitude = one.sub(e).div(one.add(e))
        return x.cmplt(x.full_like(0)).where(magnitude.neg(), magnitude)

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


class Pow(Function):
    formula = "d(x^p)/dx = p x^(p-1)"

    def forward(self, x, exponent: float):
        self.exponent = exponent
        if exponent == 2:
            return x.mul(x)
        magnitude = x.maximum(x.neg()).log().mul(x.full_like(exponent)).exp()
        if float(exponent).is_integer() and int(exponent) % 2 == 1:  # odd powers keep the sign
            return x.cmplt(x.full_like(0)).where(magnitude.neg(), magnitude)
        if not float(exponent).is_integer():  # a negative base to a fractional power is nan
            return x.cmplt(x.full_like(0)).where(x.full_like(float("nan")), magnitude)
        return magnitude

    def backward(self, grad_output):
        (x,) = self.inputs
        p = self.exponent
        if p == 2:
            return grad_output * x * 2
        return grad_output * p * x ** (p - 1)


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


# ---- reduce ------------------------------------------------------------------------------------
class Sum(Function):
    formula = "d(sum x)/dx_i = 1"

    def forward(self, x, axes: tuple, keepdim: bool):
        self.input_shape = x.shape
        self.kept = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
        return x.sum(axes, keepdim)

    def backward(self, grad_output):
        return grad_output.reshape(self.kept).expand(self.input_shape)


class Max(Function):
    formula = "d(max x)/dx_i = 1/k where x_i is one of the k maxima, else 0"

    def forward(self, x, axes: tuple, keepdim: bool):
        self.axes, self.kept = axes, tuple(1 if i in axes else s for i, s in enumerate(x.shape))
        return x.max(axes, keepdim)

    def backward(self, grad_output):
        (x,) = self.inputs
        hit = (x == self.output.detach().reshape(self.kept)).to(grad_output.dtype)
        count = hit.sum(dim=self.axes, keepdim=True)  # ties share the gradient evenly
        return hit * grad_output.reshape(self.kept) / count


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
        exp = x.sub(x.max((axis,)).expand(x.shape)).exp()
        return exp.div(exp.sum((axis,)).expand(x.shape))

    def backward(self, grad_output):
        s = self.output
        return s * (grad_output - (grad_output * s).sum(self.axis, keepdim=True))


# ---- movement ------------------------------------------------------------------------------------
class Reshape(Function):
    formula = "reshape the gradient back"

    def forward(self, x, shape: tuple):
        self.input_shape = x.shape
        return x.reshape(shape)

    def backward(self, grad_output):
        return grad_output.reshape(self.input_shape)


class Permute(Function):
    formula = "permute the gradient by the inverse order"

    def forward(self, x, order: tuple):
        self.order = order
        return x.permute(order)

    def backward(self, grad_output):
        inverse = [0] * len(self.order)
        for i, dim in enumerate(self.order):
            inverse[dim] = i
        return grad_output.permute(tuple(inverse))


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
    order = tuple(range(tensor.ndim - 2)) + (tensor.ndim - 1, tensor.ndim - 2)
    return Permute.apply(tensor, order=order)


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

