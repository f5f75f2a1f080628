"""Differential fuzzing: small random programs run by edugrad and by PyTorch must agree.

Hypothesis draws a program (Python source over `lib`, run once with lib = edugrad and once
with lib = torch, on the same input values) from a catalogue of ops both libraries have:
elementwise ops with awkward operands (0, -0.0, +-inf, nan, huge, tiny, negative integers),
dtype promotion between bool/int32/int64/float16/float32/float64 tensors and Python scalars,
reductions over size-0 and size-1 dims, ordering ops with ties, indexing, and chains of views
followed by in-place writes and reads of the base and of other views. The two runs must agree
on which raise, then on every output's shape, dtype and values (NaN-aware, +-inf and the sign
of zero included), and, for float programs, on the gradients of the inputs.

A failure message is the program itself, ready to paste into a Python prompt with
`import torch as lib` (or `import edugrad as lib`).

The examples are fixed (derandomize=True) so CI is deterministic. To hunt for new mismatches,
run with many more:

    EDUGRAD_DIFFERENTIAL_EXAMPLES=5000 EDUGRAD_DIFFERENTIAL_RANDOM=1 \\
        python -m pytest tests/test_differential.py -q -x

Exclusions (where PyTorch's own answer is not defined, or a documented edugrad difference)
are listed where the catalogue leaves the case out, each with its reason.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edugrad

torch = pytest.importorskip("torch", reason="PyTorch is the oracle of the differential tests "
                                            "(pip install torch==2.13.0)")

EXAMPLES = int(os.environ.get("EDUGRAD_DIFFERENTIAL_EXAMPLES", "0"))


def fuzz_settings(default_examples: int):
    return settings(max_examples=EXAMPLES or default_examples, deadline=None,
                    derandomize=not os.environ.get("EDUGRAD_DIFFERENTIAL_RANDOM"),
                    suppress_health_check=list(HealthCheck), database=None)


# ---- programs ------------------------------------------------------------------------------------
@dataclass
class Program:
    """Source over `lib` whose last statement binds `out`; inputs are named host arrays."""

    source: str
    inputs: dict = field(default_factory=dict)  # name -> (np.ndarray, requires_grad)
    signed_zeros: bool = False  # True where IEEE fixes the sign of a zero (SIGNED_ZEROS)
    atol: float | None = None  # a looser absolute tolerance for sums of cancelling terms
    grads: bool = True  # False where a gradient difference is known and listed (NO_GRADIENTS)

    def __str__(self) -> str:
        lines = [f"{name} = lib.tensor({_literal(array)}, dtype=lib.{array.dtype.name}"
                 f"{', requires_grad=True' if grad else ''})"
                 for name, (array, grad) in self.inputs.items()]
        return "\n".join(lines + [self.source])


def _literal(array: np.ndarray) -> str:
    text = repr(array.tolist())
    return text.replace("inf", "float('inf')").replace("nan", "float('nan')")


def run(lib, program: Program):
    """(namespace, out) or (exception, None)."""
    env = {"lib": lib, "F": lib.nn.functional, "math": math}
    for name, (array, grad) in program.inputs.items():
        env[name] = lib.tensor(array).requires_grad_(grad)
    try:
        exec(program.source, env)  # noqa: S102 - the program is our own generated source
    except Exception as error:  # noqa: BLE001 - any exception: torch's and ours must agree
        return error, None
    return env, env["out"]


# ---- comparing -----------------------------------------------------------------------------------
# float16: edugrad computes each primitive in float16 (documented in edugrad/dtypes.py), torch
# a whole op in float32 rounded once, so a composed op may differ by a few float16 ulps.
TOLERANCE = {"float16": (1e-2, 1e-3), "float32": (1e-5, 1e-6), "float64": (1e-10, 1e-12)}

# Where torch refuses and edugrad answers, there is no torch answer to be silently different
# from: edugrad is more permissive on purpose (Python scalars where torch wants a Tensor, mixed
# dtypes promoted where a torch kernel wants one dtype, kernels torch lacks for bool/int/half).
PERMISSIVE = ("not implemented for", "must be Tensor, not", "did not match",
              "expected dtype", "does not support bool", "Boolean inputs not supported",
              "Subtraction, the `-` operator, with", "received an invalid combination")
# Where edugrad refuses on purpose (it has no bitwise primitive), with a TypeError saying so.
REFUSED = ("bool operands only", "invert: ~ is defined for bool tensors")
# A known gradient difference, not fixed (see the report in the commit history):
#   logit: outside [0, 1] torch's gradient is NaN, edugrad's finite (the forward is NaN in both)
NO_GRADIENTS = ("logit",)


def _dtype(tensor) -> str:
    return str(tensor.dtype).replace("torch.", "").replace("edugrad.", "")


def _host(tensor) -> np.ndarray:
    return tensor.detach().numpy()  # the same call for an edugrad and a torch tensor


def compare(ours, theirs, what: str, program: Program) -> None:
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)), f"{what}: {type(ours).__name__}, torch gives a " \
                                                f"{type(theirs).__name__}"
        assert len(ours) == len(theirs), f"{what}: {len(ours)} items, torch gives {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            compare(a, b, f"{what}[{i}]", program)
        return
    if not isinstance(theirs, torch.Tensor):  # a Python number or bool
        assert not isinstance(ours, edugrad.Tensor) and type(ours) is type(theirs), (
            f"{what}: {ours!r}, torch gives {theirs!r}")
        _compare_values(np.asarray(ours), np.asarray(theirs), "float64", what, program)
        return
    assert isinstance(ours, edugrad.Tensor), f"{what}: {type(ours).__name__}, torch gives a Tensor"
    assert tuple(ours.shape) == tuple(theirs.shape), (
        f"{what}: shape {tuple(ours.shape)}, torch gives {tuple(theirs.shape)}")
    assert _dtype(ours) == _dtype(theirs), (
        f"{what}: dtype {_dtype(ours)}, torch gives {_dtype(theirs)}")
    _compare_values(_host(ours), _host(theirs), _dtype(theirs), what, program)


def _compare_values(a: np.ndarray, b: np.ndarray, dtype: str, what: str, program) -> None:
    message = f"{what}: edugrad gives\n{a!r}\ntorch gives\n{b!r}"
    if dtype not in TOLERANCE:
        assert np.array_equal(a, b), message
        return
    a, b = a.astype(np.float64), b.astype(np.float64)
    assert np.array_equal(np.isnan(a), np.isnan(b)), "NaN where the other has none: " + message
    finite = np.isfinite(b)
    assert np.array_equal(a[~finite & ~np.isnan(b)], b[~finite & ~np.isnan(b)]), \
        "infinities differ: " + message
    assert np.isfinite(a[finite]).all(), "infinite where torch is finite: " + message
    rtol, atol = TOLERANCE["float16" if _has_half(program) else dtype]
    atol = program.atol if program.atol is not None else atol
    assert np.allclose(a[finite], b[finite], rtol=rtol, atol=atol), message
    if program.signed_zeros:
        zeros = b == 0
        assert np.array_equal(np.signbit(a[zeros]), np.signbit(b[zeros])), (
            "sign of zero differs: " + message)


def _has_half(program: Program) -> bool:
    return any(a.dtype == np.float16 for a, _ in program.inputs.values()) or "half" in \
        program.source


def check(program: Program) -> None:
    """Run the program with both libraries; they must agree (values, then gradients)."""
    env_theirs, theirs = run(torch, program)
    env_ours, ours = run(edugrad, program)
    name = f"\n--- program ---\n{program}\n---"
    if theirs is None:
        if ours is not None and any(text in str(env_theirs) for text in PERMISSIVE):
            return
        assert ours is None, f"torch raises {env_theirs!r}, edugrad returns {ours!r}{name}"
        return
    if ours is None:
        if any(text in str(env_ours) for text in REFUSED):
            return
        raise AssertionError(f"edugrad raises {env_ours!r}, torch does not{name}") from env_ours
    compare(ours, theirs, "out" + name, program)
    _check_gradients(program, env_ours, ours, env_theirs, theirs, name)


def _differentiable(outputs) -> list:
    outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
    return [o for o in outputs if isinstance(o, torch.Tensor) and o.requires_grad]


def _check_gradients(program, env_ours, ours, env_theirs, theirs, name) -> None:
    """Gradients for finite inputs only: at +-inf and NaN the two libraries' derivative formulas
    give different undefined values (prod's grad at inf: torch result / x = inf / inf = NaN,
    edugrad the product of the others; maximum's at NaN), neither of them specified."""
    leaves = [n for n, (_, grad) in program.inputs.items() if grad]
    finite = all(np.isfinite(a).all() for a, _ in program.inputs.values() if a.dtype.kind == "f")
    outs_theirs = _differentiable(theirs)
    if not leaves or not outs_theirs or not finite or not program.grads:
        return
    flat_ours = list(ours) if isinstance(ours, (tuple, list)) else [ours]
    flat_theirs = list(theirs) if isinstance(theirs, (tuple, list)) else [theirs]
    pairs = [(a, b) for a, b in zip(flat_ours, flat_theirs)
             if isinstance(b, torch.Tensor) and b.requires_grad]
    rng = np.random.default_rng(0)
    upstream = [rng.standard_normal(tuple(b.shape)).astype(_dtype(b)) for _, b in pairs]
    try:
        torch.autograd.backward([b for _, b in pairs], [torch.tensor(g) for g in upstream])
    except Exception:  # noqa: BLE001 - torch refuses this backward (e.g. a modified saved tensor)
        return
    assert all(a.requires_grad for a, _ in pairs), f"out: requires_grad differs{name}"
    edugrad.autograd.backward([a for a, _ in pairs], [edugrad.tensor(g) for g in upstream])
    for leaf in leaves:
        grad_ours, grad_theirs = env_ours[leaf].grad, env_theirs[leaf].grad
        # None and zeros are told apart only loosely: after v.copy_(src) overwrites all of a
        # clone of x, torch's x.grad is zeros and edugrad's None (listed, not fixed)
        if grad_theirs is None or grad_ours is None:
            other = grad_ours if grad_theirs is None else grad_theirs
            assert other is None or not _host(other).any(), (
                f"{leaf}.grad: edugrad gives {grad_ours}, torch gives {grad_theirs}{name}")
            continue
        # the sign of a zero gradient is not specified (0 * -g or -0 * g)
        unsigned = Program(program.source, program.inputs, False, program.atol)
        compare(grad_ours, grad_theirs, f"{leaf}.grad{name}", unsigned)


# ---- values --------------------------------------------------------------------------------------
INF, NAN = float("inf"), float("nan")
SPECIAL_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0, 1.5, -2.5, 7.0,
                  INF, -INF, NAN, 1e30, -1e30, 1e-30, -1e-42, 1e300]
INTS = [-7, -3, -2, -1, 0, 1, 2, 3, 5, 7]
FLOAT_DTYPES = ["float16", "float32", "float64"]
INT_DTYPES = ["int32", "int64"]
ALL_DTYPES = ["bool"] + INT_DTYPES + FLOAT_DTYPES


def shapes(min_dims=0, max_dims=3, min_side=0, max_side=3):
    return st.lists(st.integers(min_side, max_side), min_size=min_dims,
                    max_size=max_dims).map(tuple)


@st.composite
def arrays(draw, shape, dtype: str, special: bool = True, huge: bool = True):
    """A host array of this shape and dtype; floats mostly from the awkward values (special),
    with or without magnitudes of 1e30 and more (huge)."""
    size = int(np.prod(shape, dtype=np.int64))
    if dtype == "bool":
        values = draw(st.lists(st.booleans(), min_size=size, max_size=size))
    elif dtype in INT_DTYPES:
        values = draw(st.lists(st.sampled_from(INTS), min_size=size, max_size=size))
    else:
        pool = [v for v in SPECIAL_FLOATS if (special or math.isfinite(v) and abs(v) < 1e3)
                and (huge or not abs(v) >= 1e30)]
        element = st.sampled_from(pool) | st.floats(-10, 10, width=16)
        values = draw(st.lists(element, min_size=size, max_size=size))
    with np.errstate(over="ignore"):  # 1e300 is inf in float32: wanted
        return np.array(values, dtype=np.float64 if dtype not in ("bool",) + tuple(INT_DTYPES)
                        else None).astype(dtype).reshape(shape)


def python_scalar(dtype_kind: str):
    if dtype_kind == "bool":
        return st.booleans()
    if dtype_kind == "int":
        return st.sampled_from(INTS)
    return st.sampled_from(SPECIAL_FLOATS[:16])


def _scalar_source(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return f"float('{value}')"
    return repr(value)


# ---- elementwise ---------------------------------------------------------------------------------
UNARY = ["-x", "x.abs()", "x.sign()", "x.exp()", "x.log()", "x.sqrt()", "x.rsqrt()",
         "x.reciprocal()", "x.sin()", "x.cos()", "x.tanh()", "x.sigmoid()", "x.relu()",
         "x.square()", "x.floor()", "x.ceil()", "x.trunc()", "x.round()", "x.round(decimals=1)",
         "x.log1p()", "x.expm1()", "x.log2()", "x.log10()", "x.exp2()", "x.erf()", "x.erfc()",
         "x.atan()", "x.sinh()", "x.cosh()", "x.tan()", "x.isnan()", "x.isinf()",
         "x.isfinite()", "x.isposinf()", "x.isneginf()", "x.nan_to_num()",
         "x.nan_to_num(nan=1.0, posinf=2.0)", "x.logit()", "x.logit(eps=0.25)", "x.erfinv()",
         "x.clamp(min={a})", "x.clamp(max={b})", "x.clamp({a}, {b})", "x.clamp(None, {b})",
         "x.float()", "x.double()", "x.long()", "x.int()", "x.bool()", "x.half()",
         "F.gelu(x)", "F.silu(x)", "F.softplus(x)", "F.leaky_relu(x, 0.1)", "F.elu(x)",
         "x ** 2", "x ** 0.5", "x ** -1", "x ** 0", "x ** 3", "2 ** x", "0.5 ** x", "0 ** x",
         "x.pow(-2)", "lib.where(x > 0, x, 0.0)", "x.positive()", "~x", "x.logical_not()",
         "x.sum()", "x.clone()"]


# IEEE 754 fixes the sign of these ops' zero results (abs(-0.0) = +0.0, -(0.0) = -0.0,
# floor(-0.5) = -0.0, 0 * -1 = -0.0, ...); elsewhere (max/min/where of tied zeros, relu, sums)
# which zero comes out is an implementation detail, and only its value is compared.
SIGNED_ZEROS = {"-x", "x.abs()", "x.floor()", "x.ceil()", "x.trunc()", "x.round()", "x.sqrt()",
                "x.clone()", "x.float()", "x.double()", "x.half()", "x.positive()",
                "x + y", "x - y", "x * y", "x / y", "x.mul(y)"}
# fmod/remainder/floor division are compositions of primitives in edugrad (x - trunc(x / y) * y),
# exact only while the quotient is: fmod(1e300, 4.9) is 0 there, 2.875 in torch. A known
# limitation, so these draw no operands of huge magnitude.
QUOTIENTS = ("//", "%", "fmod", "remainder", "floor_divide", "rounding_mode")


@st.composite
def unary_programs(draw):
    dtype = draw(st.sampled_from(ALL_DTYPES))
    shape = draw(shapes(max_dims=2))
    x = draw(arrays(shape, dtype))
    template = draw(st.sampled_from(UNARY))
    bounds = st.sampled_from([0.0, -1.0, 1.0, 2.5, -INF, INF, NAN, 0, 2, -1])
    source = "out = " + template.format(a=_scalar_source(draw(bounds)),
                                        b=_scalar_source(draw(bounds)))
    # sign's result does not require grad in edugrad (a comparison), torch's does (grad 0)
    grad = dtype in ("float32", "float64") and template != "x.sign()"
    return Program(source, {"x": (x, grad)}, signed_zeros=template in SIGNED_ZEROS,
                   grads=not any(name in template for name in NO_GRADIENTS))


BINARY = ["x + y", "x - y", "x * y", "x / y", "x // y", "x % y", "x ** y", "x.fmod(y)",
          "x.remainder(y)", "x.floor_divide(y)", "x.div(y, rounding_mode='trunc')",
          "x.div(y, rounding_mode='floor')", "x.maximum(y)", "x.minimum(y)", "x.atan2(y)",
          "x < y", "x <= y", "x == y", "x != y", "x > y", "x >= y", "x & y", "x | y",
          "lib.where(x > y, x, y)", "x.add(y, alpha=2)", "x.sub(y, alpha=-1)", "x.hypot(y)",
          "x.logaddexp(y)", "x.xlogy(y)", "x.isclose(y)", "x.lerp(y, 0.25)", "x.mul(y)"]


@st.composite
def binary_programs(draw):
    """x OP y: two tensors (broadcast, any two dtypes), or a tensor and a Python scalar on either
    side: the promotion rules of PyTorch decide the result dtype."""
    dtype = draw(st.sampled_from(ALL_DTYPES))
    template = draw(st.sampled_from(BINARY))
    kind = draw(st.sampled_from(["tensor", "0-d tensor", "scalar", "scalar on the left"]))
    shape = draw(shapes(max_dims=2))
    quotient = any(op in template for op in QUOTIENTS)
    if quotient and dtype == "float16":  # computed in float16 step by step: 3 // 0.3 differs
        dtype = "float32"
    grad = dtype in ("float32", "float64")
    huge = not quotient
    inputs = {"x": (draw(arrays(shape, dtype, huge=huge)), grad)}
    if kind in ("tensor", "0-d tensor"):
        other_dtype = draw(st.sampled_from([d for d in ALL_DTYPES
                                            if not (quotient and d == "float16")]))
        other_shape = () if kind == "0-d tensor" else draw(st.sampled_from(
            [shape, shape[-1:], (1,) * len(shape), (1,) + shape[1:]]))
        inputs["y"] = (draw(arrays(other_shape, other_dtype, huge=huge)),
                       other_dtype in ("float32", "float64"))
        return Program("out = " + template, inputs, signed_zeros=template in SIGNED_ZEROS,
                       grads=not any(name in template for name in NO_GRADIENTS))
    scalar = _scalar_source(draw(python_scalar(draw(st.sampled_from(["bool", "int", "float"])))))
    source = template.replace("y", scalar)
    # torch's x ** False has gradient 0 * x^-1 (NaN at 0): its "exponent == 0" test misses a
    # bool exponent. edugrad's 0 is the derivative of 1; torch's quirk is left out.
    grads = not any(name in template for name in NO_GRADIENTS) and not (
        scalar in ("True", "False") and "*" + "*" in template)
    if kind == "scalar on the left":
        if not template.startswith("x ") or template.startswith("x."):
            source = template.replace("x", scalar).replace("y", "x")
        else:
            source = f"{scalar} {template[2:].replace('y', 'x')}"
    return Program("out = " + source, inputs, signed_zeros=template in SIGNED_ZEROS, grads=grads)


# ---- reductions ----------------------------------------------------------------------------------
REDUCE_DIMS = ["x.sum({d})", "x.mean({d})", "x.prod({i})", "x.amax({d})", "x.amin({d})",
               "x.var({d})", "x.std({d})", "x.var({d}, correction=0)", "x.std({d}, correction=2)",
               "x.logsumexp({dl})", "x.all({d})", "x.any({d})", "x.nansum({d})",
               "x.nanmean({d})", "x.count_nonzero({dn})", "x.norm()", "x.aminmax({ik})"]
REDUCE_ONE = ["x.max({i})", "x.min({i})", "x.argmax({i})", "x.argmin({i})",
              "x.softmax({n})", "x.log_softmax({n})", "x.cumsum({n})", "x.cumprod({n})",
              "x.median({i})", "x.max()", "x.min()", "x.argmax()", "x.median()",
              "x.sort({n}, stable=True)", "x.sort({n}, descending=True, stable=True)",
              "x.argsort({n}, stable=True)", "x.sort({n}).values", "x.topk({k}, {n}).values",
              "x.topk({k}, {n}, largest=False).values", "x.flip({n})", "x.roll(1, {n})",
              "x.unique()", "x.unique(return_counts=True)", "x.unique(return_inverse=True)"]


@st.composite
def reduction_programs(draw):
    template = draw(st.sampled_from(REDUCE_DIMS + REDUCE_ONE))
    # torch has no softmax for ints, except of an empty tensor, which keeps its int dtype
    # torch has no median for bools, except of an empty tensor
    dtype = draw(st.sampled_from(FLOAT_DTYPES if "softmax" in template else
                                 ALL_DTYPES[1:] if "median" in template else ALL_DTYPES))
    shape = draw(shapes(max_dims=3))
    ndim = len(shape)
    x = draw(arrays(shape, dtype, special=draw(st.booleans())))
    axes = st.integers(-ndim, ndim - 1) if ndim else st.sampled_from([0, -1])
    keepdim = ", keepdim=True" if draw(st.booleans()) else ""
    one = draw(axes)
    several = sorted({draw(axes) % max(ndim, 1) for _ in range(draw(st.integers(1, 3)))})
    dims = draw(st.sampled_from(["", "dim=None", f"dim={one}", f"dim={tuple(several)}"]))
    keepdim = keepdim if dims else ""  # torch refuses keepdim without a dim; edugrad need not
    size = shape[one] if ndim else 1
    source = "out = " + template.format(
        d=(dims + keepdim).lstrip(", "), dl=(f"dim={tuple(several)}" + keepdim),
        dn=dims, i=f"dim={one}{keepdim}", ik=f"dim={one}{keepdim}", n=f"dim={one}",
        k=draw(st.integers(0, max(size, 0))))
    # A sum of cancelling float terms (var's, the mean's) is exact only up to the terms' size.
    finite = np.abs(x[np.isfinite(x)]).max(initial=0) if x.dtype.kind == "f" else 0
    atol = None if finite < 1 else float(finite) * 1e-6
    return Program(source, {"x": (x, dtype in ("float32", "float64"))},
                   signed_zeros=False, atol=atol)


# ---- indexing ------------------------------------------------------------------------------------
@st.composite
def index_source(draw, shape: tuple, for_write: bool = False):
    """An index expression for a tensor of this shape: ints, slices, None, Ellipsis, a bool mask
    or an int tensor. Int tensors for writes hold no duplicates: which of two writes to the same
    element wins is not specified by PyTorch (index_put_ without accumulate)."""
    parts, dim, used_tensor, used_ellipsis = [], 0, False, False
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["int", "slice", "None", "...", "mask", "ints"]))
        if kind == "None":
            parts.append("None")
        elif kind == "..." and not used_ellipsis:
            used_ellipsis = True
            parts.append("...")
            dim = len(shape)  # what follows indexes from the end: keep it simple, stop here
            break
        elif dim >= len(shape):
            break
        elif kind == "int" and shape[dim] > 0:
            parts.append(str(draw(st.integers(-shape[dim], shape[dim] - 1))))
            dim += 1
        elif kind == "mask" and not used_tensor:
            used_tensor = True
            mask = draw(st.lists(st.booleans(), min_size=shape[dim], max_size=shape[dim]))
            parts.append(f"lib.tensor({mask!r}, dtype=lib.bool)")
            dim += 1
        elif kind == "ints" and not used_tensor and shape[dim] > 0:
            used_tensor = True
            position = st.integers(-shape[dim], shape[dim] - 1)
            if for_write:
                chosen = draw(st.lists(st.integers(0, shape[dim] - 1), max_size=shape[dim],
                                       unique=True))
                values = [c - shape[dim] if draw(st.booleans()) else c for c in chosen]
            else:
                values = draw(st.lists(position, max_size=4))
            parts.append(f"lib.tensor({values!r}, dtype=lib.int64)")
            dim += 1
        else:
            start = draw(st.sampled_from(["", "0", "1", "-1", "-2", "5"]))
            stop = draw(st.sampled_from(["", "2", "-1", "0", "10"]))
            step = draw(st.sampled_from(["", ":2", ":3", ":1"]))
            parts.append(f"{start}:{stop}{step}")
            dim += 1
    return ", ".join(parts) if len(parts) != 1 else parts[0] + ("," if parts[0] == "None" else "")


@st.composite
def indexing_programs(draw):
    dtype = draw(st.sampled_from(["float32", "float64", "int64", "bool"]))
    shape = draw(shapes(min_dims=1, max_dims=3))
    x = draw(arrays(shape, dtype))
    grad = dtype in ("float32", "float64")
    if draw(st.booleans()):
        index = draw(index_source(shape))
        return Program(f"out = x[{index}]", {"x": (x, grad)}, signed_zeros=True)
    index = draw(index_source(shape, for_write=True))
    value = draw(st.sampled_from(["0", "-1.5", "float('nan')", "True", "y"]))
    source = f"base = x.clone()\nbase[{index}] = {value}\nout = base"
    inputs = {"x": (x, grad)}
    if value == "y":  # a 0-d tensor broadcasts into any selection
        inputs["y"] = (draw(arrays((), dtype)), grad)
    # not signed zeros: a written -0.0 reaches the base by an ADD in edugrad (see views)
    return Program(source, inputs)


# ---- views and in-place writes -------------------------------------------------------------------
@st.composite
def view_chain(draw, shape: tuple, name: str):
    """(source of a chain of 1-3 view ops applied to `name`, the view's shape, whether it may be
    written through: an expanded view or an overlapping unfold has elements that share memory,
    and PyTorch refuses (or leaves undefined) a write through them)."""
    source, writable = name, True
    for _ in range(draw(st.integers(1, 3))):
        ndim = len(shape)
        options = ["unsqueeze", "reshape"] + (["transpose", "permute", "narrow", "select", "t",
                                               "slice", "flatten", "expand", "unfold",
                                               "squeeze", "view", "movedim"] if ndim else [])
        options += ["diagonal"] if ndim >= 2 else []
        op = draw(st.sampled_from(options))
        dim = draw(st.integers(0, max(ndim - 1, 0)))
        if op == "unsqueeze":
            at = draw(st.integers(-ndim - 1, ndim))
            source += f".unsqueeze({at})"
            position = at % (ndim + 1)
            shape = shape[:position] + (1,) + shape[position:]
        elif op in ("reshape", "view", "flatten"):
            new = (-1,) if op != "reshape" or not shape or 0 in shape else \
                draw(st.sampled_from([(-1,), (1, -1), tuple(reversed(shape))]))
            if tuple(reversed(shape)) == new and math.prod(shape) != math.prod(new):
                new = (-1,)
            source += ".flatten()" if op == "flatten" else f".{op}{new}".replace(",)", ")")
            size = math.prod(shape)
            shape = tuple(size if n == -1 else n for n in new) if new != (1, -1) else (1, size)
        elif op == "transpose":
            other = draw(st.integers(-ndim, ndim - 1))
            source += f".transpose({dim}, {other})"
            order = list(range(ndim))
            order[dim], order[other % ndim] = order[other % ndim], order[dim]
            shape = tuple(shape[o] for o in order)
        elif op == "t" and ndim <= 2:
            source += ".t()"
            shape = tuple(reversed(shape))
        elif op == "permute":
            order = draw(st.permutations(list(range(ndim))))
            source += f".permute{tuple(order)}".replace(",)", ")")
            shape = tuple(shape[o] for o in order)
        elif op == "movedim":
            other = draw(st.integers(0, ndim - 1))
            source += f".movedim({dim}, {other})"
            order = list(range(ndim))
            order.insert(other, order.pop(dim))
            shape = tuple(shape[o] for o in order)
        elif op == "narrow":
            start = draw(st.integers(0, shape[dim]))
            length = draw(st.integers(0, shape[dim] - start))
            source += f".narrow({dim}, {start}, {length})"
            shape = shape[:dim] + (length,) + shape[dim + 1:]
        elif op == "select" and shape[dim] > 0:
            source += f".select({dim}, {draw(st.integers(-shape[dim], shape[dim] - 1))})"
            shape = shape[:dim] + shape[dim + 1:]
        elif op == "slice":
            start, step = draw(st.integers(0, 2)), draw(st.integers(1, 2))
            source += f"[{':, ' * dim}{start}::{step}]"
            shape = shape[:dim] + (len(range(shape[dim])[start::step]),) + shape[dim + 1:]
        elif op == "squeeze":
            source += f".squeeze({dim})"
            shape = shape[:dim] + shape[dim + 1:] if shape[dim] == 1 else shape
        elif op == "expand":
            if shape[dim] != 1:
                continue
            size = draw(st.integers(0, 3))
            new = shape[:dim] + (size,) + shape[dim + 1:]
            source += f".expand{new}".replace(",)", ")")
            # edugrad refuses a write through an expand to size 0 (torch writes nothing): a
            # clear error, not a silent difference, so such views are only read
            shape, writable = new, writable and size == 1
        elif op == "unfold":
            size = draw(st.integers(1, max(shape[dim], 1)))
            step = draw(st.integers(1, 2))
            if size > shape[dim]:
                continue
            source += f".unfold({dim}, {size}, {step})"
            count = (shape[dim] - size) // step + 1
            shape = shape[:dim] + (count,) + shape[dim + 1:] + (size,)
            writable = writable and (step >= size or count <= 1)
        elif op == "diagonal":
            offset = draw(st.integers(-2, 2))
            source += f".diagonal({offset})" if offset else ".diagonal()"
            rows, cols = shape[0], shape[1]
            length = max(0, min(rows + min(offset, 0), cols - max(offset, 0)))
            shape = shape[2:] + (length,)
    return source, shape, writable


INPLACE = ["v.add_(2.0)", "v.mul_(-1.5)", "v.sub_(1.0, alpha=2)", "v.div_(2.0)", "v.fill_(7.0)",
           "v.zero_()", "v.copy_(src)", "v[...] = 3.0", "v.masked_fill_(v > 0, -2.0)",
           "v.clamp_(min=0.0)", "v += 1.0", "v *= src", "v.copy_(src[..., :1])",
           "v.add_(src)", "v.data.fill_(4.0)", "v.detach().mul_(3.0)", "v.clamp_(max=1.0)"]


@st.composite
def view_programs(draw):
    """base (a copy of x) -> view v -> write through v; read base, v and a view w of base taken
    before the write (it must not be stale)."""
    dtype = draw(st.sampled_from(["float32", "float64"]))
    shape = draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    x = draw(arrays(shape, dtype, special=False))
    view, view_shape, writable = draw(view_chain(shape, "base"))
    other, _, _ = draw(view_chain(shape, "base"))
    if not writable:  # read only: the view must alias (see base's later write)
        source = f"base = x.clone()\nv = {view}\nbase.mul_(2.0)\nout = (base, v)"
        return Program(source, {"x": (x, True)}, signed_zeros=True)
    write = draw(st.sampled_from(INPLACE))
    inputs = {"x": (x, True)}
    if "src" in write:
        inputs["src"] = (draw(arrays(view_shape, dtype, special=False)), True)
    source = f"base = x.clone()\nw = {other}\nv = {view}\n{write}\nout = (base, v, w)"
    # Not signed zeros: a write through some views (unfold, ...) reaches the base by an ADD
    # in edugrad, and -0.0 + 0.0 is +0.0 there, where torch keeps -0.0 (listed, not fixed).
    return Program(source, inputs)


# ---- the tests -----------------------------------------------------------------------------------
@fuzz_settings(400)
@given(unary_programs())
def test_elementwise_unary_agrees_with_torch(program):
    check(program)


@fuzz_settings(400)
@given(binary_programs())
def test_elementwise_binary_and_promotion_agree_with_torch(program):
    check(program)


@fuzz_settings(400)
@given(reduction_programs())
def test_reductions_and_ordering_agree_with_torch(program):
    check(program)


@fuzz_settings(200)
@given(indexing_programs())
def test_indexing_reads_and_writes_agree_with_torch(program):
    check(program)


@fuzz_settings(200)
@given(view_programs())
def test_views_alias_through_in_place_writes_as_in_torch(program):
    check(program)
