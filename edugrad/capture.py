"""edugrad.jit: run a training step eagerly while recording its primitive calls, then replay them.

Layer: API (top). Imports the Tensor layer, TensorData, the backend registry and the primitive
table; never NumPy.

In eager mode every op pays Python: a Tensor method, a Function object, a graph node, the
checks of TensorData. What reaches the backend in the end is a list of primitive calls
(matmul, add, exp, ...) that is the same on every step. `edugrad.jit` records that list once and
then calls the backend directly, with nothing above it (tinygrad's TinyJit; the graph capture
behind torch.compile and CUDA graphs):

    @edugrad.jit
    def train_step(x, y):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    for x, y in loader:
        loss = train_step(x, y)   # call 1 eager; calls 2 and 3 eager and recorded; then replays

1. Warm-up. The first call runs eagerly: optimizers make their state, modules their caches.
2. Capture. The next two calls run eagerly too, with every primitive method of the backend
   wrapped, so each call is written down: the primitive, its static arguments (shapes, axes,
   numbers) and where each buffer argument came from: an earlier call of the step, an
   argument of the step, a tensor that existed before the step (a parameter, an optimizer's
   running average), or a constant.
3. Compare. The two recordings must agree call by call, or the step depends on something a
   replay cannot repeat, and jit refuses with a JitError that names it:
   - Python control flow that depends on the data, or on state outside the step;
   - a Python number that changes from call to call (Adam's bias correction: use
     Adam(capturable=True), which keeps it in a tensor; a learning-rate schedule: pass the
     optimizer lr=edugrad.tensor(0.01) and the scheduler updates that tensor in place);
   - a tensor replaced by a new one rather than updated in place (`state["m"] = m * 0.9`
     instead of `m.mul_(0.9)`), or a global reassigned between calls;
   - values read on the host inside the step (`.item()`, `.tolist()`, `print(t)`, `if t > 0`),
     refused as soon as the recording sees them: return the tensor and read it outside.
4. Replay. Every later call loads the step's arguments and the current buffers of the tensors
   it reads, runs the recorded calls straight on the backend (no Tensor, Function or graph),
   and writes the results into the same tensor objects the eager step changed: parameters,
   optimizer state, every .grad. Calls whose inputs are all constants (a FULL of 0.9 and its
   EXPAND) ran at capture and are not repeated. Where the backend's elementwise methods
   broadcast (`backend.broadcasts`: NumPy, CuPy), an EXPAND read only by elementwise calls
   is left out and they get its small input (a bias, a scalar), as a compiler fuses a
   broadcast into its consumer. Where the backend can write a result into a buffer it is
   handed (`backend.writer`: NumPy's out=), a call whose input dies with it writes there,
   if that input is a fresh buffer of the result's shape and dtype (memory planning: Adam's
   update chain reuses one buffer instead of making ten). RAND calls are repeated, so
   dropout draws new numbers on every replay, from the same generator in the same order as
   eager: a replay gives bit-identical results to the eager step.
5. A device graph, where the backend has them (CUDA, through CuPy's stream capture): on a
   GPU each call still costs a kernel launch from Python, so the first replay hands the list
   to `backend.graph`, which records its kernels once as a CUDA graph, and every later
   replay is one launch of it. The graph reads its inputs from buffers of its own (the batch
   is copied in), and writes parameters and optimizer state back in place. A step that draws
   random numbers is not graphed (the graph would repeat them), nor one whose capture fails;
   `step.trace` says how the step is replayed, and `edugrad.jit(step, graph=False)` keeps
   the call-by-call replay.

Guards: a recording is replayed only while what it assumed still holds: the shapes, dtypes and
devices of the tensor arguments, the values of the other arguments, the grad mode, the
train/eval mode of every module the step called and the options (lr, betas, ...) of every
optimizer it stepped. When one changes, the step is captured again.

What a replay cannot see (keep it out of the step, or call `step.reset()` after changing it):
- Python state the step reads that is none of the above: a global flag, a counter;
- tensors the step creates and stores elsewhere than its results and .grad are kept current
  on replay only as long as nothing outside the step replaces them;
- results come back as new tensors without a grad_fn: call backward inside the step.

`step.trace` prints the recorded program, one primitive call per line; `step.source` the
Python function a replay runs (one line per call, generated from it).
"""

from __future__ import annotations

import functools
import math
import weakref
from dataclasses import dataclass

from edugrad import function
from edugrad.backend import loaded_backends
from edugrad.data import TensorData, clear_constant_cache
from edugrad.function import GradMode
from edugrad.ops import Op, buffer_positions
from edugrad.tensor import Tensor
from edugrad.views import refresh_views

WARMUP_CALLS = 1  # eager calls before the first recording


class JitError(RuntimeError):
    """edugrad.jit cannot replay this step; the message says why and what to change."""


@dataclass(frozen=True)
class Made:
    """A buffer argument returned by call `index` of the same step."""
    index: int


@dataclass(frozen=True)
class Read:
    """A buffer argument the step did not make: entry `index` of the recording's reads."""
    index: int


@dataclass(frozen=True)
class Result:
    """A tensor in the step's result: where its buffer comes from (a Made, a Read or, in a
    Program, a register number), and its dtype and backend."""
    source: object
    dtype: object
    backend: object


@dataclass(frozen=True)
class Host:
    """FROM_HOST's host array, kept as bytes so that two recordings can be compared."""
    shape: tuple
    dtype: str
    data: bytes


# ---- one recorded call of the step ------------------------------------------------------------

class Recording:
    """One eager call of the step, with every primitive call written down."""

    def __init__(self, argument_paths: dict) -> None:
        self.calls: list[tuple] = []  # (op, args): each buffer argument a Made or a Read
        self.methods: list = []  # the backend's own bound method each call ran
        self.outputs: list = []  # the buffer each call returned (kept: ids stay unique)
        self.made: dict[int, int] = {}  # id(buffer) -> index of the call that returned it
        self.reads: list = []  # buffers the step read but did not make
        self.read_index: dict[int, int] = {}  # id(buffer) -> index into reads
        self.holders: dict[int, list] = {}  # id(buffer) -> weak refs to tensors holding it
        self.tensors: dict[int, weakref.ref] = {}  # every tensor an op of the step read
        self.argument_paths = argument_paths  # id(buffer) -> where in the arguments it is
        self.host_reads: list[str] = []
        self.modules: dict[int, tuple] = {}  # id -> (module, its training flag)
        self.optimizers: dict[int, tuple] = {}  # id -> (optimizer, its options)
        self.inside = False  # a backend method running (one may call its own others)

    # -- told by the backend wrappers, Function.apply, Module.__call__ and Optimizer.step --
    def primitive(self, op: Op, method, args: tuple, out) -> None:
        if op is Op.TO_HOST:
            self.host_reads.append(f"call {len(self.calls)}: to_host of a tensor of shape "
                                   f"{tuple(args[0].shape)}")
            return
        positions = buffer_positions(op)
        entries = []
        for i, arg in enumerate(args):
            if op is Op.FROM_HOST:
                entries.append(Host(tuple(arg.shape), str(arg.dtype), arg.tobytes()))
            elif i in positions:
                entries.append(self._source(arg))
            else:
                entries.append(arg)
        self.made[id(out)] = len(self.calls)
        self.calls.append((op, tuple(entries)))
        self.methods.append(method)
        self.outputs.append(out)

    def _source(self, buffer):
        index = self.made.get(id(buffer))
        if index is not None:
            return Made(index)
        index = self.read_index.get(id(buffer))
        if index is None:
            index = self.read_index[id(buffer)] = len(self.reads)
            self.reads.append(buffer)
        return Read(index)

    def tensors_read(self, tensors) -> None:
        for tensor in tensors:
            ref = self.tensors.get(id(tensor))
            if ref is None or ref() is not tensor:
                self.tensors[id(tensor)] = weakref.ref(tensor)
            buffer = tensor._data.buffer
            if id(buffer) not in self.made:
                self._source(buffer)  # kept among the reads: its id must stay its own
                self.holders.setdefault(id(buffer), []).append(weakref.ref(tensor))

    def module_called(self, module) -> None:
        self.modules.setdefault(id(module), (module, module.training))

    def optimizer_stepped(self, optimizer) -> None:
        self.optimizers.setdefault(id(optimizer), (optimizer, optimizer_options(optimizer)))

    # -- after the call ------------------------------------------------------------------------
    def finish(self, result) -> None:
        """Which tensors the step changed (their final buffer is one it made), and the result."""
        self.writes, self.grads = [], []
        tensors = [t for t in (ref() for ref in self.tensors.values()) if t is not None]
        grads = {id(t.grad) for t in tensors if t.grad is not None}  # replaced, not written
        for tensor in tensors:
            made = self.made.get(id(tensor._data.buffer))
            # a view re-reads its root's values; a .grad gets a new tensor each replay
            if made is not None and tensor._view is None and id(tensor) not in grads:
                self.writes.append((tensor, made))
            grad = tensor.grad
            if grad is not None:
                made = self.made.get(id(grad._data.buffer))
                if made is not None:
                    self.grads.append((tensor, made, grad._data.dtype))
        self.result = flatten(result, self._source_of_result)

    def _source_of_result(self, tensor) -> Result:
        return Result(self._source(tensor._data.buffer), tensor._data.dtype,
                      tensor._data.backend)


def optimizer_options(optimizer) -> tuple:
    """What a recording of optimizer.step assumed: every group's options but its tensors."""
    return tuple(tuple((key, value) for key, value in group.items()
                       if key != "params" and not isinstance(value, Tensor))
                 for group in optimizer.param_groups)


def guard_values(recording: Recording) -> tuple:
    """The modes and options a recording ran with, keyed by object: two recordings made with
    different ones are not compared, the later one starts over."""
    return (tuple(sorted((key, flag) for key, (_, flag) in recording.modules.items())),
            tuple(sorted((key, options) for key, (_, options) in recording.optimizers.items())))


class recording_backends:
    """Context manager: every primitive method of every loaded backend tells `recording`."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.wrapped = []

    def __enter__(self):
        for backend in loaded_backends():
            for op in Op:
                if op.required or backend.has(op):
                    own = backend.__dict__.get(op.method)  # cuda:1 wraps its methods per instance
                    setattr(backend, op.method, self._wrap(op, getattr(backend, op.method)))
                    self.wrapped.append((backend, op.method, own))
        function.observer = self.recording
        return self.recording

    def __exit__(self, *exc) -> None:
        function.observer = None
        for backend, name, own in self.wrapped:
            if own is None:
                delattr(backend, name)
            else:
                setattr(backend, name, own)

    def _wrap(self, op: Op, method):
        recording = self.recording

        def record(*args):
            if recording.inside:  # a backend using its own primitives: one call, not two
                return method(*args)
            recording.inside = True
            try:
                out = method(*args)
            finally:
                recording.inside = False
            recording.primitive(op, method, args, out)
            return out

        return record


# ---- arguments and results --------------------------------------------------------------------

def flatten(value, on_leaf, leaf_type=Tensor) -> object:
    """Nested tuples, lists and dicts with each leaf of `leaf_type` replaced by on_leaf(leaf);
    anything else kept as it is."""
    if isinstance(value, leaf_type):
        return on_leaf(value)
    if isinstance(value, (tuple, list)):
        return type(value)(flatten(v, on_leaf, leaf_type) for v in value)
    if isinstance(value, dict):
        return {k: flatten(v, on_leaf, leaf_type) for k, v in value.items()}
    return value


def tensor_leaves(value, path=()):
    """(path, tensor) for every tensor in nested tuples, lists and dicts; (path, value) else."""
    if isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from tensor_leaves(item, path + (i,))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from tensor_leaves(item, path + (key,))
    else:
        yield path, value


def signature(leaves: dict) -> tuple:
    """The key a recording is kept under: each tensor argument's shape, dtype and device, each
    other argument's value, and the grad mode. `leaves`: tensor_leaves of the arguments."""
    key = []
    for path, leaf in leaves.items():
        if isinstance(leaf, Tensor):
            data = leaf._data
            key.append((path, data.shape, data.dtype, data.backend, leaf.requires_grad))
        else:
            try:
                hash(leaf)
            except TypeError:
                raise JitError(f"edugrad.jit: argument {path_name(path)} is a "
                               f"{type(leaf).__name__}, which can't be compared between calls; "
                               "pass tensors, numbers, strings or tuples of them") from None
            key.append((path, type(leaf), leaf))
    key.append(GradMode.enabled)
    return tuple(key)


def path_name(path: tuple) -> str:
    where, rest = ("args", path[1:]) if path[0] == 0 else ("kwargs", path[1:])
    return where + "".join(f"[{p!r}]" for p in rest)


# ---- comparing two recordings into a program --------------------------------------------------

def same(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):
        return False


def describe_call(index: int, op: Op, recording: Recording) -> str:
    out = recording.outputs[index]
    return f"call {index} ({op.method}, result of shape {tuple(out.shape)})"


class Program:
    """Two recordings that agree, as a list of backend calls that a replay runs as they are.

    Registers hold the buffers: those of the constants (filled once), of the arguments and of
    the tensors read (loaded at the start of each replay), and one per call's result.
    """

    def __init__(self, first: Recording, second: Recording, name: str) -> None:
        self.name = name
        if [op for op, _ in first.calls] != [op for op, _ in second.calls]:
            raise JitError(self._different_calls(first, second))
        self.sources = self._classify_reads(first, second)
        self._check_statics(first, second)
        self._check_results(first.result, second.result)
        self._build(second)
        self.guards = ([(m, flag) for m, flag in second.modules.values()],
                       [(o, options) for o, options in second.optimizers.values()])

    # -- comparing ---------------------------------------------------------------------------------
    def _different_calls(self, first: Recording, second: Recording) -> str:
        at = next((i for i, (a, b) in enumerate(zip(first.calls, second.calls)) if a[0] != b[0]),
                  min(len(first.calls), len(second.calls)))
        ops = [(r.calls[at][0].method if at < len(r.calls) else "nothing") for r in
               (first, second)]
        return (f"edugrad.jit: {self.name} made different primitive calls on two calls with the "
                f"same argument shapes ({len(first.calls)} then {len(second.calls)}; the first "
                f"difference is call {at}: {ops[0]} then {ops[1]}). Python control flow in the "
                "step depends on the data or on state outside it; make every call of the step "
                "do the same ops, or don't jit it")

    def _classify_reads(self, first: Recording, second: Recording) -> dict:
        """For each buffer the second recording read but did not make, where a replay gets it:
        ("argument", path), ("tensor", t) read afresh from t, or ("constant", buffer)."""
        pairs: dict[int, int] = {}
        for index, ((op, a_args), (_, b_args)) in enumerate(zip(first.calls, second.calls)):
            for a, b in zip(a_args, b_args):
                if isinstance(b, Read):
                    if not isinstance(a, Read) or pairs.setdefault(b.index, a.index) != a.index:
                        raise JitError(self._wiring(index, op, second))
                elif isinstance(b, Made) and a != b:
                    raise JitError(self._wiring(index, op, second))
        sources = {}
        for b_index, a_index in pairs.items():
            a_buffer, b_buffer = first.reads[a_index], second.reads[b_index]
            a_path = first.argument_paths.get(id(a_buffer))
            b_path = second.argument_paths.get(id(b_buffer))
            if a_path is not None or b_path is not None:
                if a_path != b_path:
                    raise JitError(self._unknown_read(b_buffer, second))
                sources[b_index] = ("argument", b_path)
                continue
            earlier = [t for t in alive(first.holders.get(id(a_buffer), ()))]
            stable = [t for t in alive(second.holders.get(id(b_buffer), ()))
                      if any(t is e for e in earlier)]
            if stable:
                sources[b_index] = ("tensor", stable[0])
            elif a_buffer is b_buffer:
                sources[b_index] = ("constant", b_buffer)
            else:
                raise JitError(self._unknown_read(b_buffer, second))
        return sources

    def _wiring(self, index: int, op: Op, recording: Recording) -> str:
        return (f"edugrad.jit: {self.name} passed different buffers to "
                f"{describe_call(index, op, recording)} on two calls: the step's ops are "
                "wired differently from call to call (control flow on data or outside state)")

    def _unknown_read(self, buffer, recording: Recording) -> str:
        return (f"edugrad.jit: {self.name} reads a tensor of shape {tuple(buffer.shape)} that "
                "changed between two calls, but it is neither an argument of the step nor a "
                "tensor the step updates in place. A tensor replaced by a new one (state['m'] = "
                "m * 0.9 rather than m.mul_(0.9), or a global reassigned) can't be replayed: "
                "update it in place, or pass it as an argument")

    def _check_statics(self, first: Recording, second: Recording) -> None:
        for index, ((op, a_args), (_, b_args)) in enumerate(zip(first.calls, second.calls)):
            for a, b in zip(a_args, b_args):
                if isinstance(b, (Made, Read)) or same(a, b):
                    continue
                where = describe_call(index, op, second)
                if isinstance(b, Host):
                    raise JitError(
                        f"edugrad.jit: {self.name} copies host data that changes between calls "
                        f"into a tensor ({where}): pass it to the step as a tensor argument")
                raise JitError(
                    f"edugrad.jit: {self.name} uses a Python number that changes between calls "
                    f"({where}: {a!r} then {b!r}). A replay would keep the first value. Keep it "
                    "in a tensor instead: Adam(..., capturable=True) for Adam's bias correction, "
                    "lr=edugrad.tensor(0.01) for a learning rate a scheduler changes")

    def _check_results(self, first, second) -> None:
        """The step must return the same structure, each tensor made by the same call, and
        the same Python values: a replay returns what the recording returned."""
        if isinstance(second, (tuple, list, dict)):
            if type(first) is type(second) and len(first) == len(second) and (
                    not isinstance(second, dict) or first.keys() == second.keys()):
                pairs = (zip(first.values(), second.values()) if isinstance(second, dict)
                         else zip(first, second))
                for a, b in pairs:
                    self._check_results(a, b)
                return
        elif isinstance(second, Result):
            if isinstance(first, Result) and (first.source == second.source
                                              or isinstance(second.source, Read)):
                return
        elif not isinstance(first, Result) and same(first, second):
            return
        raise JitError(f"edugrad.jit: {self.name} returns something that changes between calls "
                       f"({_short_value(first)} then {_short_value(second)}); a replay returns "
                       "tensors it computes, and Python values only when they never change")

    # -- building ----------------------------------------------------------------------------------
    def _build(self, recording: Recording) -> None:
        calls = recording.calls
        constant = [False] * len(calls)
        for index, (op, args) in enumerate(calls):
            if op is not Op.RAND:
                constant[index] = all(self._is_constant(arg, constant) for arg in args)
        self.registers: list = []  # initial values: the constants; None for the rest
        register_of: dict = {}

        def register(source, value=None):
            if source not in register_of:
                register_of[source] = len(self.registers)
                self.registers.append(value)
            return register_of[source]

        self.argument_loads, self.tensor_loads = [], []
        self.load_shapes = {}  # register -> shape of what it loads, for trace and draw_trace
        for index, (kind, where) in self.sources.items():
            self.load_shapes[register(Read(index))] = tuple(recording.reads[index].shape)
            if kind == "constant":
                register(Read(index), where)
            elif kind == "argument":
                self.argument_loads.append((register(Read(index)), where))
            else:
                self.tensor_loads.append((register(Read(index)), where))
        self.steps = []  # (method, args with None where a register goes, [(position, register)])
        self.listing = []  # for trace: (op, out register, args as registers or statics)
        outputs = output_sources(recording)  # what a replay hands back, in order
        substitutes, dropped = self._broadcast_instead(recording, constant, set(outputs))
        made = {}  # register of a call's result -> (op, shape, dtype)
        for index, (op, args) in enumerate(calls):
            if constant[index]:
                register(Made(index), recording.outputs[index])
                continue
            if index in dropped:
                continue
            args = tuple(substitutes.get((index, position), arg)
                         for position, arg in enumerate(args))
            template, slots = [], []
            for position, arg in enumerate(args):
                if isinstance(arg, (Made, Read)):
                    slots.append((position, register_of[arg]))
                    template.append(None)
                else:
                    template.append(arg)
            method = recording.methods[index]
            out = register(Made(index))
            made[out] = (op, tuple(recording.outputs[index].shape), recording.outputs[index].dtype)
            self.steps.append((method, template, slots, out))
            self.listing.append((op, out, [f"%{register_of[a]}" if isinstance(a, (Made, Read))
                                           else _short(a) for a in args],
                                 tuple(recording.outputs[index].shape)))
        self.constant_calls = sum(constant)
        self.dropped_calls = len(dropped)
        self.writes = [(t, register_of[Made(i)]) for t, i in recording.writes]
        self.grads = [(t, register_of[Made(i)], dtype) for t, i, dtype in recording.grads]
        self.result = flatten(recording.result,
                              lambda r: Result(register_of[r.source], r.dtype, r.backend), Result)
        self.load_registers = [reg for reg, _ in self.argument_loads + self.tensor_loads]
        self.output_registers = [register_of[source] for source in outputs]
        self.launch, self.graph_note = UNTRIED, "not replayed yet"
        self._free_after_last_use()
        self._write_into_dead_buffers(made)
        self._generate()

    def _broadcast_instead(self, recording: Recording, constant: list, kept: set) -> tuple:
        """Where the backend's elementwise methods broadcast (NumPy's, CuPy's), an EXPAND read
        only by elementwise calls is left out: they get its input (and the input of a RESHAPE
        before it that only added leading 1s) and broadcast it themselves, a call fewer and no
        strided view to walk. Bias adds, Adam's scalar factors and softmax's row sums do this.
        `kept`: the sources a replay hands back, which stay. Returns ({(call, argument
        position): the source it reads instead}, {calls dropped})."""
        calls = recording.calls
        backends = {getattr(method, "__self__", None) for method in recording.methods}
        if not all(getattr(backend, "broadcasts", False) for backend in backends):
            return {}, set()
        readers: dict = {}  # Made(i) -> [(call, position)]
        for index, (op, args) in enumerate(calls):
            if not constant[index]:
                for position, arg in enumerate(args):
                    if isinstance(arg, Made):
                        readers.setdefault(arg, []).append((index, position))

        def shape(source) -> tuple:
            return tuple((recording.outputs[source.index] if isinstance(source, Made)
                          else recording.reads[source.index]).shape)

        substitutes, dropped = {}, set()
        for index, (op, args) in enumerate(calls):
            made = Made(index)
            if op is not Op.EXPAND or constant[index] or made in kept or not all(
                    calls[j][0] in BROADCASTING for j, _ in readers.get(made, ())):
                continue
            source = args[0]
            if isinstance(source, Made) and calls[source.index][0] is Op.RESHAPE and \
                    not constant[source.index]:
                before = calls[source.index][1][0]  # (1, 1) from (): NumPy prepends the 1s
                if shape(source)[len(shape(source)) - len(shape(before)):] == shape(before):
                    source = before
            for j, position in readers[made]:
                shapes = [shape(substitutes.get((j, p), a)) for p, a in enumerate(calls[j][1])]
                shapes[position] = shape(source)
                if broadcast_shape(shapes) != tuple(recording.outputs[j].shape):
                    break
            else:
                for j, position in readers[made]:
                    substitutes[(j, position)] = source
                dropped.add(index)
        # a RESHAPE read only by dropped EXPANDs, and not instead of one, goes too
        read_instead = set(substitutes.values())
        for index in list(dropped):
            source = calls[index][1][0]
            if isinstance(source, Made) and source not in kept | read_instead and \
                    calls[source.index][0] is Op.RESHAPE and \
                    all(j in dropped for j, _ in readers.get(source, ())):
                dropped.add(source.index)
        return substitutes, dropped

    def _is_constant(self, arg, constant) -> bool:
        if isinstance(arg, Made):
            return constant[arg.index]
        if isinstance(arg, Read):
            return self.sources[arg.index][0] == "constant"
        return True

    def _free_after_last_use(self) -> None:
        """Drop each call's result after its last reader, so a replay holds no more memory
        than the eager step."""
        at_end = set(self.output_registers)
        last = {}
        for step_index, (_, _, slots, _) in enumerate(self.steps):
            for _, reg in slots:
                last[reg] = step_index
        for reg in range(len(self.registers)):  # a constant only earlier constants read
            if reg not in last and reg not in at_end:
                self.registers[reg] = None
        frees = [[] for _ in self.steps]
        for reg, step_index in last.items():
            if reg not in at_end:
                frees[step_index].append(reg)
        self.steps = [(m, t, s, o, tuple(f)) for (m, t, s, o), f in zip(self.steps, frees)]

    def _write_into_dead_buffers(self, made: dict) -> None:
        """Memory planning. Where the backend can write a primitive's result into a buffer it
        is handed (`backend.writer(op)`: NumPy's out=), a call one of whose inputs dies with it
        writes its result there, when that input has the result's shape and dtype and was made
        by a call of the step that makes a new buffer (FRESH: no view of it lives on, no tensor
        holds it). No new buffer, and values that were just computed stay in the cache: Adam's
        update is a chain of such calls, each reading the one before."""
        viewed = {reg for (method, _, slots, out, _) in self.steps
                  if made[out][0] in VIEWS for _, reg in slots}
        self.written_into = 0
        for index, (method, template, slots, out, frees) in enumerate(self.steps):
            op, shape, dtype = made[out]
            if not shape:  # a 0-d result: NumPy hands back a scalar, not a buffer to write to
                continue
            backend = getattr(method, "__self__", None)  # None: a wrapper (cuda:1's)
            writer = backend.writer(op) if backend is not None else None
            if writer is None:
                continue
            dead = next((reg for _, reg in slots if reg in frees and reg not in viewed
                         and reg in made and made[reg][0] in FRESH
                         and made[reg][1:] == (shape, dtype)), None)
            if dead is None:
                continue
            self.steps[index] = (writer, template + [None], slots + [(len(template), dead)],
                                 out, frees)
            listed_op, listed_out, args, listed_shape = self.listing[index]
            self.listing[index] = (listed_op, listed_out, args + [f"into %{dead}"],
                                   listed_shape)
            self.written_into += 1

    # -- replaying ---------------------------------------------------------------------------------
    def guards_hold(self) -> bool:
        modules, optimizers = self.guards
        return (all(m.training == flag for m, flag in modules)
                and all(optimizer_options(o) == options for o, options in optimizers))

    def replay(self, leaves: dict, graphs: bool = True):
        """Run the program on the arguments' `leaves` (path -> value, from tensor_leaves):
        through a device graph where the backend offers one (the first replay captures it),
        else call by call. Then the results go where the eager step put them."""
        inputs = [leaves[path]._data.buffer for _, path in self.argument_loads]
        inputs += [tensor._data.buffer for _, tensor in self.tensor_loads]
        if self.launch is UNTRIED:
            self.launch = self._capture_graph(inputs, leaves, graphs)
        outputs = iter(self.launch(inputs) if self.launch is not None else self.run(inputs))
        for tensor, _ in self.writes:
            data = tensor._data
            tensor._data = TensorData(next(outputs), data.dtype, data.backend)
            tensor._version += 1
            if tensor._views:
                refresh_views(tensor, {})
        for tensor, _, dtype in self.grads:
            tensor.grad = Tensor._make(TensorData(next(outputs), dtype, tensor._data.backend),
                                       None)
        return flatten(self.result, lambda r: Tensor._make(
            TensorData(next(outputs), r.dtype, r.backend), None), Result)

    def run(self, inputs: list) -> list:
        """The recorded calls, straight to the backend, on `inputs` (the buffers of
        argument_loads, then of tensor_loads). Returns the buffers of the writes, the grads and
        the results, in that order. Touches no tensor: a device graph records this. The calls
        run as the Python function _generate wrote (self.source)."""
        return self._run(inputs)

    def _generate(self) -> None:
        """The program as the source of a Python function, one line per call, compiled once
        (torch.fx generates code from its graphs the same way):

            def replay(inputs):
                r0, r5, r1, ... = inputs          # the step's arguments and the tensors read
                r18 = permute_0(r0, (1, 0))       # each call's result in a local variable
                r20 = matmul_2(r18, r19)
                del r19                           # dropped after its last reader
                ...
                return [r113, r142, ...]          # writes, grads, results

        A replay then pays one Python call per primitive, and no loop or argument list of
        its own. The methods, constants and static arguments that are not plain numbers are
        globals of the function."""
        names: dict = {}

        def global_name(value, prefix: str) -> str:
            name = f"{prefix}{len(names)}"
            names[name] = value
            return name

        constants = {reg for reg, value in enumerate(self.registers) if value is not None}
        for reg in constants:
            names[f"r{reg}"] = self.registers[reg]
        lines = ["def replay(inputs):"]
        if self.load_registers:
            lines.append("    " + "".join(f"r{reg}, " for reg in self.load_registers) + "= inputs")
        for (method, template, slots, out, frees), (op, *_) in zip(self.steps, self.listing):
            call = [_literal(arg) or global_name(arg, "k") for arg in template]
            for position, reg in slots:
                call[position] = f"r{reg}"
            function = global_name(method, f"{op.method}_")
            lines.append(f"    r{out} = {function}({', '.join(call)})")
            dropped = [f"r{reg}" for reg in frees if reg not in constants]
            if dropped:
                lines.append(f"    del {', '.join(dropped)}")
        lines.append(f"    return [{', '.join(f'r{reg}' for reg in self.output_registers)}]")
        self.source = "\n".join(lines)
        exec(compile(self.source, f"<edugrad.jit of {self.name}>", "exec"), names)
        self._run = names["replay"]

    def _capture_graph(self, inputs: list, leaves: dict, graphs: bool):
        """backend.graph(run, ...) when the program can be one device graph, else None, with
        the reason in graph_note (step.trace shows it)."""
        if not graphs:
            self.graph_note = "call by call (graphs turned off: edugrad.jit(graph=False))"
            return None
        backends = {id(t._data.backend): t._data.backend for t in
                    [leaf for leaf in leaves.values() if isinstance(leaf, Tensor)]
                    + [t for _, t in self.tensor_loads]}
        if len(backends) != 1:
            self.graph_note = "call by call: the step uses more than one device"
            return None
        backend = next(iter(backends.values()))
        if any(op is Op.RAND for op, *_ in self.listing):
            self.graph_note = ("call by call: it draws random numbers (RAND), which a device "
                               "graph would repeat on every replay")
            return None
        loaded = {id(t): i for i, (_, t) in enumerate(self.tensor_loads, len(self.argument_loads))}
        feedback = {j: loaded[id(t)] for j, (t, _) in enumerate(self.writes) if id(t) in loaded}
        try:
            launch = backend.graph(self.run, inputs, feedback)
        except Exception as error:  # the capture failed (a host sync in some primitive...)
            self.graph_note = f"call by call: the device graph capture failed ({error})"
            return None
        if launch is None:
            self.graph_note = "call by call (the backend has no device graphs)"
        else:
            self.graph_note = f"as one device graph ({type(backend).__name__}.graph)"
        return launch


UNTRIED = object()  # Program.launch before the first replay has tried to capture a graph

# the elementwise primitives whose operands may be left unexpanded on a backend that broadcasts
BROADCASTING = frozenset({Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MAXIMUM, Op.CMPLT, Op.CMPEQ,
                          Op.WHERE})


# the primitives a backend may write into a given buffer (Backend.writer), and those that make
# views of their input, whose buffer then can't be written over while the view lives
WRITABLE = frozenset({Op.NEG, Op.EXP, Op.LOG, Op.SIN, Op.SQRT, Op.ADD, Op.SUB, Op.MUL, Op.DIV,
                      Op.MAXIMUM, Op.TANH})
VIEWS = frozenset({Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.SHRINK, Op.FLIP})
# the primitives whose result is a new buffer on a backend with a writer (its promise): a
# result of one of them that nothing reads any more may be written over
FRESH = WRITABLE | {Op.MATMUL, Op.WHERE, Op.ERF, Op.SIGMOID, Op.GELU, Op.GELU_GRAD}


def broadcast_shape(shapes) -> tuple | None:
    """The shape NumPy's broadcasting gives `shapes` (aligned at the right; each dim equal or
    1), or None when they don't broadcast."""
    result = []
    for sizes in zip(*(((1,) * (max(map(len, shapes)) - len(s)) + tuple(s)) for s in shapes)):
        wide = {size for size in sizes if size != 1}
        if len(wide) > 1:
            return None
        result.append(wide.pop() if wide else 1)
    return tuple(result)


def output_sources(recording: Recording) -> list:
    """What a replay hands back, in order: the sources of the written tensors, of the grads
    and of the results (a Made, or a Read for a result the step did not compute)."""
    sources = [Made(i) for _, i in recording.writes] + [Made(i) for _, i, _ in recording.grads]
    flatten(recording.result, lambda r: sources.append(r.source), Result)
    return sources


def alive(refs) -> list:
    return [t for t in (ref() for ref in refs) if t is not None]


def _literal(value) -> str | None:
    """Python source for a plain static argument (a whole number, a finite float, a bool,
    None, or a tuple of them) that evaluates to an equal value; None for anything else."""
    if value is None or type(value) in (bool, int):
        return repr(value)
    if type(value) is float and math.isfinite(value):
        return repr(value)
    if type(value) is tuple:
        items = [_literal(item) for item in value]
        if all(item is not None for item in items):
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    return None


def _short_value(value) -> str:
    text = "a tensor" if isinstance(value, Result) else repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _short(value) -> str:
    if isinstance(value, Host):
        return f"<host {value.dtype} {value.shape}>"
    return getattr(value, "name", None) or repr(value)


# ---- the jitted step --------------------------------------------------------------------------

class Jit:
    """A step function that runs eagerly, is recorded twice, then replayed (module docstring).

    >>> step = edugrad.jit(train_step)      # or @edugrad.jit above the def
    >>> loss = step(x, y)
    >>> print(step.trace)
    """

    def __init__(self, step, graph: bool = True) -> None:
        if not callable(step):
            raise TypeError(f"edugrad.jit: expected a function, got {type(step).__name__}")
        functools.update_wrapper(self, step)
        self.step = step
        self.graph = graph  # replay through a device graph where the backend has them
        self.name = getattr(step, "__name__", "the step")
        self.reset()

    def reset(self) -> None:
        """Forget every recording: the next calls warm up and record again."""
        self.programs: dict = {}  # signature -> Program
        self.progress: dict = {}  # signature -> eager calls so far, or the first Recording
        self.replays = 0

    def __call__(self, *args, **kwargs):
        if function.observer is not None:  # inside another step's recording: plain calls
            return self.step(*args, **kwargs)
        leaves = dict(tensor_leaves((args, kwargs)))
        key = signature(leaves)
        program = self.programs.get(key)
        if program is not None:
            if program.guards_hold():
                self.replays += 1
                return program.replay(leaves, self.graph)
            del self.programs[key]  # a module's mode or an optimizer's option changed
            self.progress[key] = WARMUP_CALLS
        done = self.progress.get(key, 0)
        if isinstance(done, int) and done < WARMUP_CALLS:
            self.progress[key] = done + 1
            return self.step(*args, **kwargs)
        result, recording = self._record(args, kwargs, leaves)
        if isinstance(done, int) or guard_values(done) != guard_values(recording):
            self.progress[key] = recording  # the first recording, or a mode changed since it
        else:
            del self.progress[key]
            self.programs[key] = Program(done, recording, self.name)
        return result

    def _record(self, args: tuple, kwargs: dict, leaves: dict):
        paths = {id(leaf._data.buffer): path for path, leaf in leaves.items()
                 if isinstance(leaf, Tensor)}
        recording = Recording(paths)
        clear_constant_cache()  # both recordings make their constants afresh, in the same order
        with recording_backends(recording):
            result = self.step(*args, **kwargs)
        if recording.host_reads:
            raise JitError(
                f"edugrad.jit: {self.name} reads tensor values on the host "
                f"({recording.host_reads[0]}: .item(), .tolist(), .numpy(), print or an `if` on "
                "a tensor), which a replay can't repeat. Return the tensor from the step and "
                "read it after the call")
        recording.finish(result)
        for path, leaf in leaves.items():
            if isinstance(leaf, Tensor) and any(t is leaf for t, _ in recording.writes):
                raise JitError(f"edugrad.jit: {self.name} changes its argument "
                               f"{path_name(path)} in place; return the new value instead")
        return result, recording

    @property
    def trace(self) -> str:
        """The recorded programs, one primitive call per line (a tiny IR)."""
        return self._each_program(format_program, "")

    @property
    def source(self) -> str:
        """The Python function each recorded program replays as (Program._generate)."""
        return self._each_program(lambda program: program.source, "# ")

    def _each_program(self, show, comment: str) -> str:
        if not self.programs:
            return (f"{comment}edugrad.jit({self.name}): nothing recorded yet (it records "
                    "calls 2 and 3)")
        return "\n\n".join(show(program) for program in self.programs.values())

    def __repr__(self) -> str:
        return (f"<edugrad.jit of {self.name}: {len(self.programs)} recorded, "
                f"{self.replays} replays>")


def format_program(program: Program) -> str:
    """The program as a listing: what it loads, the constants, each call, what it writes."""
    constants = [(reg, value) for reg, value in enumerate(program.registers) if value is not None]
    lines = [f"edugrad.jit program of {program.name}: {len(program.steps)} primitive calls "
             f"replayed, {program.constant_calls} made once into constants, "
             f"{program.dropped_calls} left to the backend's broadcasting, "
             f"{program.written_into} written into a dead input's buffer; writes "
             f"{len(program.writes)} tensors and {len(program.grads)} grads; replayed "
             f"{program.graph_note}"]
    for reg, path in program.argument_loads:
        lines.append(f"  %{reg} = argument {path_name(path)} {program.load_shapes[reg]}")
    for reg, tensor in program.tensor_loads:
        lines.append(f"  %{reg} = tensor read {type(tensor).__name__} {tuple(tensor.shape)}")
    for reg, value in constants:
        lines.append(f"  %{reg} = constant {tuple(value.shape)}")
    for op, out, args, shape in program.listing:
        lines.append(f"  %{out} = {op.method}({', '.join(args)})  -> {shape}")
    for tensor, reg in program.writes:
        lines.append(f"  {type(tensor).__name__} {tuple(tensor.shape)} <- %{reg}")
    for tensor, reg, _ in program.grads:
        lines.append(f"  {type(tensor).__name__} {tuple(tensor.shape)}.grad <- %{reg}")
    return "\n".join(lines)


def jit(step=None, *, graph: bool = True):
    """Capture `step` once, replay its primitive calls afterwards (module docstring).
    Usable as `edugrad.jit(fn)`, `@edugrad.jit` and `@edugrad.jit()`. On a backend with
    device graphs (CUDA) the replay is one graph launch; graph=False replays call by call."""
    if step is None:
        return functools.partial(jit, graph=graph)
    return Jit(step, graph)
