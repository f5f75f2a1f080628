"""The primitive operations: the whole contract between edugrad and an array library.

Layer: primitives (bottom). Imports nothing from edugrad.

Every differentiable op in edugrad is built from the REQUIRED primitives below, so a backend
that implements only those runs everything. A backend may also offer ACCELERATED primitives
(matmul, windowed views for convolution, gather/scatter for indexing, the activations erf,
tanh, sigmoid and gelu, and gelu's derivative, in one call each); the layer above uses them
when present and composes the required ones when not.

    name       kind      arity  shape rule                               dtype rule
    ---------  --------  -----  ---------------------------------------  ------------------------
    FULL       load      0      given shape                              given dtype
    RAND       load      0      given shape                              given float dtype
    FROM_HOST  load      0      shape of the host array                  dtype of the host array
    TO_HOST    load      1      flat, numel values, row-major            unchanged
    NEG        unary     1      unchanged                                unchanged
    EXP        unary     1      unchanged                                float only
    LOG        unary     1      unchanged                                float only
    SIN        unary     1      unchanged                                float only
    SQRT       unary     1      unchanged                                float only
    CAST       unary     1      unchanged                                the given dtype
    ADD        binary    2      equal shapes, no broadcasting            equal dtypes, unchanged
    SUB        binary    2      equal shapes                             equal dtypes, unchanged
    MUL        binary    2      equal shapes                             equal dtypes, unchanged
    DIV        binary    2      equal shapes                             equal float dtypes
    MAXIMUM    binary    2      equal shapes                             equal dtypes, unchanged
    CMPLT      binary    2      equal shapes                             equal dtypes -> bool
    CMPEQ      binary    2      equal shapes                             equal dtypes -> bool
    WHERE      ternary   3      equal shapes                             cond bool; x, y equal
    SUM        reduce    1      axes kept as size 1                      unchanged
    MAX        reduce    1      axes kept as size 1                      unchanged
    RESHAPE    movement  1      given shape, same numel                  unchanged
    PERMUTE    movement  1      dims reordered                           unchanged
    EXPAND     movement  1      size-1 dims grown, same ndim             unchanged
    PAD        movement  1      dim i grows by before_i + after_i        unchanged
    SHRINK     movement  1      dim i becomes end_i - start_i            unchanged
    FLIP       movement  1      unchanged                                unchanged

    MATMUL     accel.    2      (*b, n, k) @ (*b, k, m) -> (*b, n, m)     equal float dtypes
    UNFOLD     accel.    1      (N, C, H, W) -> (N, C, OH, OW, KH, KW)    unchanged
    FOLD       accel.    1      (N, C, OH, OW, KH, KW) -> (N, C, H, W)    unchanged
    TAKE       accel.    2      x.shape[:a] + index.shape + x.shape[a+1:] x's; index int64
    INDEX_ADD  accel.    2      the given shape                          src's; index int64
    ERF        accel.    1      unchanged                                float only
    TANH       accel.    1      unchanged                                float only
    SIGMOID    accel.    1      unchanged                                float only
    GELU       accel.    1      unchanged                                float only
    GELU_GRAD  accel.    2      equal shapes                             equal float dtypes

There are 26 required primitives (REQUIRED_COUNT, checked by a test) and 10 accelerated ones.
A backend's method for a primitive is the primitive's name in lower case (`Op.ADD` ->
`backend.add`). Above the backend line, `TensorData` canonicalises and checks every argument
(negative dims resolved, axes sorted and distinct; shapes, dtypes and devices equal, else a
ValueError naming the primitive), so no backend method ever has to guess or check.
"""

from __future__ import annotations

from enum import Enum


class Kind(Enum):
    LOAD = "load"
    UNARY = "unary"
    BINARY = "binary"
    TERNARY = "ternary"
    REDUCE = "reduce"
    MOVEMENT = "movement"
    ACCELERATED = "accelerated"


class Op(Enum):
    """One member per primitive; its value is (kind, specification)."""

    # ---- load: getting data in and out of a backend ---------------------------------------
    FULL = (Kind.LOAD, """full(shape, value, dtype) -> buffer
        A new buffer of `shape` (a tuple of non-negative ints; () is a scalar) with every
        element equal to the Python number `value` converted to `dtype` (an edugrad DType;
        a float into an int dtype truncates toward zero, as CAST).""")
    RAND = (Kind.LOAD, """rand(shape, dtype) -> buffer
        Independent samples from the uniform distribution on [0, 1), of the float `dtype`.
        The backend keeps its own generator; `seed(n)` resets it so runs repeat.""")
    FROM_HOST = (Kind.LOAD, """from_host(array) -> buffer
        Copy a host array (a C-contiguous NumPy ndarray of a supported dtype; read it with
        `array.shape`, `array.dtype` and `array.ravel().tolist()` if you use no NumPy) into a
        new buffer of the same shape and dtype.""")
    TO_HOST = (Kind.LOAD, """to_host(x) -> values
        The elements of `x` in row-major (C) order: a flat list of Python numbers, or any array
        that numpy.asarray reads. TensorData reshapes and types the result itself.""")

    # ---- unary: elementwise, one input --------------------------------------------------------
    NEG = (Kind.UNARY, """neg(x) -> -x, elementwise. Any dtype but bool.""")
    EXP = (Kind.UNARY, """exp(x) -> e**x, elementwise; float dtypes. exp(-inf) = 0,
        exp(large) = inf without raising.""")
    LOG = (Kind.UNARY, """log(x) -> natural logarithm, elementwise; float dtypes.
        log(0) = -inf, log(negative) = nan, without raising.""")
    SIN = (Kind.UNARY, """sin(x) -> sine of x in radians, elementwise; float dtypes.""")
    SQRT = (Kind.UNARY, """sqrt(x) -> square root, elementwise; float dtypes.
        sqrt(negative) = nan without raising.""")
    CAST = (Kind.UNARY, """cast(x, dtype) -> x converted to `dtype`, elementwise.
        float -> int truncates toward zero (nan and inf give an unspecified int); anything ->
        bool is `x != 0`; bool -> number is 0 or 1.""")

    # ---- binary: elementwise, two inputs of EQUAL shape and EQUAL dtype --------------------------
    ADD = (Kind.BINARY, """add(x, y) -> x + y. Shapes and dtypes are equal: the layer above
        broadcasts with EXPAND and promotes with CAST before calling. Never bool.""")
    SUB = (Kind.BINARY, """sub(x, y) -> x - y. Equal shapes and dtypes, never bool.""")
    MUL = (Kind.BINARY, """mul(x, y) -> x * y. Equal shapes and dtypes, never bool.""")
    DIV = (Kind.BINARY, """div(x, y) -> x / y, true division; float dtypes. x/0 is +-inf
        (nan for 0/0) without raising.""")
    MAXIMUM = (Kind.BINARY, """maximum(x, y) -> the larger of x and y, elementwise; nan if
        either is nan. Equal shapes and dtypes; on bool it is logical or.""")
    CMPLT = (Kind.BINARY, """cmplt(x, y) -> x < y as a bool buffer. Equal shapes and dtypes.""")
    CMPEQ = (Kind.BINARY, """cmpeq(x, y) -> x == y as a bool buffer. Equal shapes and dtypes.""")

    # ---- ternary -----------------------------------------------------------------------------
    WHERE = (Kind.TERNARY, """where(cond, x, y) -> x where cond is true, else y, elementwise.
        `cond` is bool; all three have equal shapes; x and y have equal dtypes.""")

    # ---- reduce: `axes` is a non-empty sorted tuple of distinct non-negative dims --------------
    SUM = (Kind.REDUCE, """sum(x, axes) -> the sum over `axes`, which stay in the result with
        size 1 (shape (2, 3, 4) summed over (0, 2) gives (1, 3, 1)). Result dtype = x's,
        never bool (the layer above sums bools as int64). The sum over an empty dim is 0.""")
    MAX = (Kind.REDUCE, """max(x, axes) -> the maximum over `axes`, kept with size 1 as in SUM.
        nan if any reduced element is nan. The layer above never reduces an empty dim.""")

    # ---- movement: change the shape or the order of elements, never the values -------------------
    RESHAPE = (Kind.MOVEMENT, """reshape(x, shape) -> the same elements in row-major order in a
        new `shape` with the same number of elements (no -1: it is resolved above).""")
    PERMUTE = (Kind.MOVEMENT, """permute(x, order) -> dims reordered: result dim i is x's dim
        order[i]; `order` is a permutation of range(ndim).""")
    EXPAND = (Kind.MOVEMENT, """expand(x, shape) -> broadcast: every dim where x has size 1 and
        `shape` has size n repeats its element n times. Same ndim as x (leading 1s are added
        above with RESHAPE); other dims equal.""")
    PAD = (Kind.MOVEMENT, """pad(x, padding, value) -> `padding` is one (before, after) pair of
        non-negative ints per dim; the result has `before` elements equal to `value` in front
        of dim i and `after` behind it.""")
    SHRINK = (Kind.MOVEMENT, """shrink(x, bounds) -> `bounds` is one (start, end) pair per dim
        with 0 <= start <= end <= size: keep elements start..end-1 of each dim (a slice with
        step 1; steps are built above from RESHAPE and SHRINK).""")
    FLIP = (Kind.MOVEMENT, """flip(x, axes) -> reverse the order of elements along each dim in
        `axes` (a sorted tuple of non-negative dims).""")

    # ---- accelerated: optional; the layer above composes the required ones when absent --------
    MATMUL = (Kind.ACCELERATED, """matmul(x, y) -> batched matrix product: x (*b, n, k) and
        y (*b, k, m) with equal batch dims *b (possibly none) give (*b, n, m). Float dtypes.
        Fallback: EXPAND both to (*b, n, k, m), MUL, SUM over k.""")
    UNFOLD = (Kind.ACCELERATED, """unfold(x, kernel, stride) -> x (N, C, H, W) already padded,
        kernel (KH, KW), stride (SH, SW); result (N, C, OH, OW, KH, KW) with
        OH = (H - KH) // SH + 1 and result[n, c, i, j, a, b] = x[n, c, i*SH + a, j*SW + b].
        Fallback: one strided SHRINK per (a, b), stacked.""")
    FOLD = (Kind.ACCELERATED, """fold(cols, shape, stride) -> the adjoint of UNFOLD: a zero
        buffer of `shape` (N, C, H, W) to which every cols[n, c, i, j, a, b] is added at
        [n, c, i*SH + a, j*SW + b] (overlapping windows add up). Fallback: PAD and ADD.""")
    TAKE = (Kind.ACCELERATED, """take(x, axis, index) -> pick along one dim: result shape is
        x.shape[:axis] + index.shape + x.shape[axis+1:], result[..., i.., ...] =
        x[..., index[i..], ...]. `index` is int64 with values in [0, x.shape[axis]).
        Fallback: a one-hot CMPEQ mask, MUL and SUM.""")
    INDEX_ADD = (Kind.ACCELERATED, """index_add(shape, axis, index, src) -> the adjoint of
        TAKE: zeros of `shape`, then src[..., i.., ...] is added at [..., index[i..], ...];
        repeated indices accumulate. Fallback: one-hot mask, MUL and SUM.""")
    ERF = (Kind.ACCELERATED, """erf(x) -> the error function 2/sqrt(pi) * integral of exp(-t^2)
        from 0 to x, elementwise; float dtypes; erf(+-inf) = +-1, erf(nan) = nan. To the
        dtype's precision: float32 within 5e-7 of the true value (the most seen on a dense
        grid: 4.5e-7, near |x| = 3.2), float64 within 1e-15 relative. Fallback: the rational
        functions ERF_FLOAT32 and ERF_FLOAT64 below, with MUL, ADD, DIV, MAXIMUM, EXP and
        WHERE (GELU runs it on every transformer block's widest activations, so a backend
        that has erf gains a lot here).""")
    TANH = (Kind.ACCELERATED, """tanh(x) -> the hyperbolic tangent, elementwise; float dtypes.
        Never overflows: tanh(x) is +-1 for large |x| (tanh(1e4) = 1, tanh(+-inf) = +-1),
        tanh(nan) = nan, without raising. As accurate as EXP, relative to the result also near
        0 (tanh(1e-8) = 1e-8). Fallback: sign(x) (1 - e) / (1 + e) with e = exp(-2|x|), which
        never overflows, from FULL, MAXIMUM, NEG, MUL, EXP, SUB, ADD, DIV, CMPLT and WHERE:
        thirteen backend calls for one activation (and its 1 - e loses the digits of a tiny
        x, leaving an error near the dtype's epsilon).""")
    SIGMOID = (Kind.ACCELERATED, """sigmoid(x) -> the logistic function 1 / (1 + e**-x),
        elementwise; float dtypes. Never overflows and never raises: sigmoid(+inf) = 1,
        sigmoid(-inf) = 0, sigmoid(nan) = nan, and where e**-x is inf the result is 0 (a result
        below the dtype's smallest normal number may be 0). As accurate as EXP relative to the
        result, also for x << 0, so that log(sigmoid(x)) stays finite: 1 - sigmoid(-x) and
        0.5 + 0.5 tanh(x / 2) are not (they lose the digits of every result below the dtype's
        epsilon). Fallback: with e = exp(-|x|), e / (1 + e) where x < 0 and 1 / (1 + e)
        elsewhere, from FULL, MAXIMUM, NEG, EXP, ADD, DIV, CMPLT and WHERE (twelve calls).""")
    GELU = (Kind.ACCELERATED, """gelu(x) -> x Phi(x), elementwise, with Phi(x) = (1 + erf(x /
        sqrt 2)) / 2 the standard normal CDF (the exact GELU, F.gelu's default); float
        dtypes. gelu(+inf) = inf, gelu(-inf) = nan (-inf * 0, as PyTorch's), gelu(nan) = nan,
        without raising. To the dtype's precision, as ERF (with a few roundings more).
        Fallback, in this order: Phi = erf(x * (1/sqrt 2)) * 0.5 + 0.5, then x * Phi, from
        MUL, ERF (itself composed where the backend lacks it) and ADD: five calls. A GPT block
        runs it on its widest activation, so one call here saves four full-size passes.""")
    GELU_GRAD = (Kind.ACCELERATED, """gelu_grad(x, g) -> g (Phi(x) + x phi(x)): the gradient
        of GELU at x times the incoming gradient g, elementwise, with Phi as in GELU and
        phi(x) = exp(-x^2 / 2) / sqrt(2 pi) the standard normal density. x and g are buffers
        of equal shapes and equal float dtypes (nothing is broadcast). Where phi underflows
        to 0 (|x| past ~14 in float32, ~39 in float64) the result is g Phi(x); at x = +-inf
        it is nan (inf * 0, as PyTorch's), without raising. Fallback, in this order: Phi as
        in GELU, phi = exp(x * x * -0.5) * (1/sqrt(2 pi)), then g * (Phi + x * phi), from
        MUL, ERF, ADD and EXP: eleven calls.""")

    def __init__(self, kind: Kind, spec: str) -> None:
        self.kind = kind
        self.spec = spec

    @property
    def method(self) -> str:
        """The backend method that implements this primitive: `Op.ADD.method == "add"`."""
        return self.name.lower()

    @property
    def required(self) -> bool:
        return self.kind is not Kind.ACCELERATED


# The reference approximations of ERF, which the fallback composes and a backend may reuse.
# float32: one rational function for all x, clamped to |x| <= 4 (beyond, erf is +-1 in float32):
# erf(x) = x P(x^2) / Q(x^2), error under 5e-7 (Eigen's and TensorFlow's fast erf).
# float64, from Cephes (S. L. Moshier, ndtr.c): erf(x) = x T(x^2) / U(x^2) for |x| < 1 and
# erfc(x) = exp(-x^2) P(x) / Q(x) for 1 <= |x| <= 8; relative error ~1e-15.
# Coefficients from the highest power down.
ERF_FLOAT32 = {
    "P": (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
          -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
          -1.60960333262415e-02),
    "Q": (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
          -7.37332916720468e-03, -1.42647390514189e-02),
}
ERF_FLOAT64 = {
    "T": (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4),
    "U": (1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4),
    "P": (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
          4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
          9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2),
    "Q": (1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
          9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
          1.65666309194161350182e3, 5.57535340817727675546e2),
}

def buffer_positions(op: Op) -> tuple:
    """Which arguments of op's backend method are buffers: take(x, axis, index) has them at 0
    and 2, index_add(shape, axis, index, src) at 2 and 3, matmul(x, y) and gelu_grad(x, g) at
    0 and 1; FROM_HOST's one is a host array."""
    if op in (Op.FULL, Op.RAND):
        return ()
    if op is Op.TAKE:
        return (0, 2)
    if op is Op.INDEX_ADD:
        return (2, 3)
    if op is Op.WHERE:
        return (0, 1, 2)
    if op.kind is Kind.BINARY or op in (Op.MATMUL, Op.GELU_GRAD):
        return (0, 1)
    return (0,)


REQUIRED = tuple(op for op in Op if op.required)
ACCELERATED = tuple(op for op in Op if not op.required)
REQUIRED_COUNT = 26
