"""edugrad.serialization: safetensors files, bit-exact round trips, PyTorch interchange, and
strict refusal of anything else (pickles above all: loading must never run code).

PyTorch (the `torch` fixture) is needed only by the interchange tests; the rest run without it.
Saving and loading under faults (symlinks, FIFOs, killed processes, crafted headers) are in
test_serialization_faults.py."""

from __future__ import annotations

import ast
import json
import math
import os
import pickle
from pathlib import Path

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import edugrad
from edugrad import nn, optim
from edugrad.serialization import load, save

TORCH_DTYPES = {"F32": "float32", "F64": "float64", "I32": "int32", "I64": "int64", "BOOL": "bool"}
CODES = {name: code for code, name in TORCH_DTYPES.items()}
SIZES = (4, 8, 3)


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="PyTorch is the oracle for the interchange tests: "
                                               "pip install -e \".[dev]\"")


def safetensors_torch():
    """The safetensors package's torch side, or None (the tests then use the format by hand)."""
    try:
        import safetensors.torch
    except ImportError:
        return None
    return safetensors.torch


# ---- torch's side of the format: the safetensors package, or by hand ----------------------------
def torch_read_by_hand(torch, path) -> dict:
    data = Path(path).read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = bytearray(data[8 + length + begin:8 + length + end])
        dtype = getattr(torch, TORCH_DTYPES[info["dtype"]])
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.zeros(0, dtype=dtype)
        out[name] = flat.reshape(info["shape"])
    return out


def torch_write_by_hand(torch, tensors: dict, path) -> None:
    header, chunks, offset = {}, [], 0
    for name, tensor in tensors.items():
        raw = tensor.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": CODES[str(tensor.dtype).replace("torch.", "")],
                        "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()  # unpadded: the format allows it
    Path(path).write_bytes(len(text).to_bytes(8, "little") + text + b"".join(chunks))


def reader(torch, kind: str):
    """Reads a file into {name: torch tensor}: the safetensors package, or by hand."""
    if kind == "by_hand":
        return lambda path: torch_read_by_hand(torch, path)
    return _safetensors_or_skip().load_file


def writer(torch, kind: str):
    if kind == "by_hand":
        return lambda tensors, path: torch_write_by_hand(torch, tensors, path)
    return _safetensors_or_skip().save_file


def _safetensors_or_skip():
    return pytest.importorskip("safetensors.torch", reason="the safetensors package is not "
                               "installed; the by_hand cases test the same format")


KINDS = ["by_hand", "safetensors"]


# ---- a small MLP, in edugrad and in torch ------------------------------------------------------
def make_model(seed: int = 0):
    """Sequential(Linear(4, 8), ReLU(), Linear(8, 3)), weights drawn from a NumPy generator (so
    torch can get the same ones)."""
    model = nn.Sequential(nn.Linear(SIZES[0], SIZES[1]), nn.ReLU(), nn.Linear(SIZES[1], SIZES[2]))
    model.load_state_dict({name: edugrad.tensor(array) for name, array in initial(seed).items()})
    return model


def initial(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {}
    for i, (fan_in, fan_out) in enumerate(zip(SIZES, SIZES[1:])):
        arrays[f"{2 * i}.weight"] = rng.uniform(-0.5, 0.5, (fan_out, fan_in)).astype(np.float32)
        arrays[f"{2 * i}.bias"] = rng.uniform(-0.5, 0.5, fan_out).astype(np.float32)
    return arrays


def torch_model(torch):
    return torch.nn.Sequential(torch.nn.Linear(SIZES[0], SIZES[1]), torch.nn.ReLU(),
                               torch.nn.Linear(SIZES[1], SIZES[2]))


X = np.random.default_rng(7).standard_normal((16, SIZES[0])).astype(np.float32)
Y = np.random.default_rng(8).standard_normal((16, SIZES[2])).astype(np.float32)


def train(model, opt, steps: int) -> None:
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model(edugrad.tensor(X)) - edugrad.tensor(Y)) ** 2).mean()
        loss.backward()
        opt.step()


def values(state_dict: dict) -> dict:
    return {name: tensor.detach().numpy().copy() for name, tensor in state_dict.items()}


def assert_bit_equal(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), name


# ---- round trips --------------------------------------------------------------------------------
def test_round_trip_every_dtype_and_shape_bit_exact(tmp_path):
    state = {
        "f32": edugrad.tensor(np.array([[0.1, -0.0, np.inf], [np.nan, -np.inf, 1e-45]],
                                       dtype=np.float32)),
        "f64": edugrad.tensor(np.linspace(-1, 1, 7)),
        "i32": edugrad.tensor(np.array([-(2 ** 31), 0, 2 ** 31 - 1], dtype=np.int32)),
        "i64": edugrad.tensor([-(2 ** 63), 2 ** 63 - 1]),
        "bool": edugrad.tensor([[True, False], [False, True]]),
        "scalar": edugrad.tensor(2.5),
        "empty": edugrad.zeros(0, 3),
        "transposed": edugrad.arange(6).reshape(2, 3).T,  # a view: written row-major
        "needs_grad": edugrad.ones(2, requires_grad=True),
    }
    path = tmp_path / "state.safetensors"
    save(state, path)
    loaded = load(path)
    assert list(loaded) == list(state)
    for name, tensor in state.items():
        assert loaded[name].shape == tensor.shape and loaded[name].dtype is tensor.dtype, name
        assert loaded[name].numpy().tobytes() == tensor.detach().numpy().tobytes(), name
        assert not loaded[name].requires_grad


def test_nested_structure_round_trip(tmp_path):
    t = edugrad.arange(3)
    obj = {
        "epoch": 3, "lr": 0.1, "name": "run-1", "nothing": None, "flag": True, "nan": math.nan,
        "betas": (0.9, 0.99), "mixed": [1, 2.5, "a", [t, (None,)]],
        "state": {0: {"step": 4, "buffer": t * 2}, 7: {}},
        "tricky": {"__tensor__": "not a tensor", "__tuple__": [1]},  # user data named like tags
        "a.b": edugrad.ones(1), "nested": {"deeper": {"x": edugrad.zeros(2, 2)}},
    }
    path = tmp_path / "checkpoint.safetensors"
    save(obj, path)
    loaded = load(path)
    assert loaded.keys() == obj.keys()
    assert loaded["epoch"] == 3 and loaded["lr"] == 0.1 and loaded["name"] == "run-1"
    assert loaded["nothing"] is None and loaded["flag"] is True and math.isnan(loaded["nan"])
    assert loaded["betas"] == (0.9, 0.99) and isinstance(loaded["betas"], tuple)
    assert loaded["mixed"][:3] == [1, 2.5, "a"] and loaded["mixed"][3][1] == (None,)
    assert loaded["mixed"][3][0].tolist() == [0, 1, 2]
    assert set(loaded["state"]) == {0, 7} and loaded["state"][7] == {}
    assert loaded["state"][0]["step"] == 4 and loaded["state"][0]["buffer"].tolist() == [0, 2, 4]
    assert loaded["tricky"] == {"__tensor__": "not a tensor", "__tuple__": [1]}
    assert loaded["a.b"].tolist() == [1.0] and loaded["nested"]["deeper"]["x"].shape == (2, 2)


NUMPY_DTYPES = ["float32", "float64", "int32", "int64", "bool"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrays=st.lists(st.sampled_from(NUMPY_DTYPES).flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0,
                                                     max_side=4))), min_size=1, max_size=5))
def test_any_tensors_round_trip_bit_exact(tmp_path, arrays):
    state = {f"t{i}.w": edugrad.tensor(array) for i, array in enumerate(arrays)}
    save(state, tmp_path / "any.safetensors")
    loaded = load(tmp_path / "any.safetensors")
    assert_bit_equal(values(loaded), {name: array for name, array in zip(state, arrays)})
    if safetensors_torch() is not None:  # and torch reads exactly those bytes
        theirs = safetensors_torch().load_file(str(tmp_path / "any.safetensors"))
        assert_bit_equal({name: theirs[name].numpy() for name in loaded}, values(loaded))


JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
STRUCTURES = st.recursive(
    JSON_LEAVES | st.builds(lambda n: edugrad.arange(n), st.integers(0, 3)),
    lambda children: (st.lists(children, max_size=3)
                      | st.lists(children, max_size=3).map(tuple)
                      | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=3)),
    max_leaves=12)


def same_structure(a, b) -> bool:
    if isinstance(a, edugrad.Tensor):
        return isinstance(b, edugrad.Tensor) and a.tolist() == b.tolist() and a.dtype is b.dtype
    if isinstance(a, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(same_structure(x, y) for x, y in zip(a, b)))
    if isinstance(a, dict):
        return (type(b) is dict and list(a) == list(b)
                and all(same_structure(a[k], b[k]) for k in a))
    return type(a) is type(b) and a == b


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(obj=st.dictionaries(st.text(max_size=5) | st.integers(), STRUCTURES, max_size=4))
def test_any_structure_round_trips(tmp_path, obj):
    try:
        save(obj, tmp_path / "any.safetensors")
    except ValueError as error:  # dotted names can collide: {"a.b": t, "a": {"b": t}}
        assert "would hold two tensors" in str(error)
        return
    assert same_structure(obj, load(tmp_path / "any.safetensors"))


def test_the_file_is_plain_safetensors(tmp_path):
    model = make_model()
    path = tmp_path / "model.safetensors"
    save(model.state_dict(), path)
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    assert length % 8 == 0 and data[8:9] == b"{"
    header = json.loads(data[8:8 + length])
    assert header.pop("__metadata__") == {"format": "pt"}  # a model needs no structure
    assert list(header) == list(model.state_dict())  # in the state dict's order
    end = 0
    for name, info in header.items():
        assert info["data_offsets"][0] == end
        end = info["data_offsets"][1]
        assert info["dtype"] == "F32" and tuple(info["shape"]) == model.state_dict()[name].shape
    assert 8 + length + end == len(data)


# ---- PyTorch interchange ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_torch_reads_a_trained_edugrad_model(tmp_path, kind, torch):
    model = make_model()
    train(model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9), steps=5)
    path = tmp_path / "edugrad.safetensors"
    save(model.state_dict(), path)
    twin = torch_model(torch)
    twin.load_state_dict(reader(torch, kind)(str(path)))  # strict: same keys, shapes, dtypes
    with edugrad.no_grad():
        ours = model(edugrad.tensor(X)).numpy()
    with torch.no_grad():
        theirs = twin(torch.from_numpy(X)).numpy()
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_edugrad_reads_a_trained_torch_model(tmp_path, kind, torch):
    twin = torch_model(torch)
    torch_opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    for _ in range(5):
        torch_opt.zero_grad()
        ((twin(torch.from_numpy(X)) - torch.from_numpy(Y)) ** 2).mean().backward()
        torch_opt.step()
    path = tmp_path / "torch.safetensors"
    writer(torch, kind)(twin.state_dict(), str(path))
    model = make_model(seed=1)
    model.load_state_dict(load(path))
    assert_bit_equal(values(model.state_dict()),
                     {k: v.numpy() for k, v in twin.state_dict().items()})
    with edugrad.no_grad():
        ours = model(edugrad.tensor(X)).numpy()
    with torch.no_grad():
        theirs = twin(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_torch_reads_every_dtype(tmp_path, kind, torch):
    state = {"f32": edugrad.randn(2, 3), "f64": edugrad.randn(4, dtype=edugrad.float64),
             "i32": edugrad.tensor([1, -2], dtype=edugrad.int32), "i64": edugrad.arange(5),
             "bool": edugrad.tensor([True, False, True]), "scalar": edugrad.tensor(1.5)}
    save(state, tmp_path / "all.safetensors")
    theirs = reader(torch, kind)(str(tmp_path / "all.safetensors"))
    for name, tensor in state.items():
        assert theirs[name].dtype == getattr(torch, tensor.dtype.name), name
        np.testing.assert_array_equal(theirs[name].numpy(), tensor.numpy())


# ---- checkpoints: model and optimizer, bit-exact ------------------------------------------------
OPTIMIZERS = [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)), ("Adam", dict(lr=0.01)),
              ("AdamW", dict(lr=0.01, amsgrad=True)), ("RMSprop", dict(lr=0.01, centered=True)),
              ("Lion", dict(lr=0.001, weight_decay=0.1))]


@pytest.mark.parametrize("name, options", OPTIMIZERS, ids=[name for name, _ in OPTIMIZERS])
def test_checkpoint_resumes_bit_exact(tmp_path, name, options):
    model = make_model()
    opt = getattr(optim, name)(model.parameters(), **options)
    schedule = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        train(model, opt, steps=1)
        schedule.step()
    path = tmp_path / "checkpoint.safetensors"
    save({"model": model.state_dict(), "optimizer": opt.state_dict(),
          "scheduler": schedule.state_dict(), "epoch": 3}, path)
    train(model, opt, steps=1)  # the run that never stopped

    checkpoint = load(path)
    resumed = make_model(seed=1)
    resumed_opt = getattr(optim, name)(resumed.parameters(), **options)
    resumed.load_state_dict(checkpoint["model"])
    resumed_opt.load_state_dict(checkpoint["optimizer"])
    assert checkpoint["epoch"] == 3 and checkpoint["scheduler"] == schedule.state_dict()
    assert resumed_opt.param_groups[0]["lr"] == opt.param_groups[0]["lr"] != options["lr"]
    train(resumed, resumed_opt, steps=1)
    assert_bit_equal(values(resumed.state_dict()), values(model.state_dict()))
    assert resumed_opt.param_groups[0].keys() == opt.param_groups[0].keys()


def test_optimizer_state_dict_file_holds_dotted_tensor_names(tmp_path):
    model = make_model()
    opt = optim.Adam(model.parameters(), lr=0.01)
    train(model, opt, steps=1)
    save(opt.state_dict(), tmp_path / "opt.safetensors")
    data = (tmp_path / "opt.safetensors").read_bytes()
    names = set(json.loads(data[8:8 + int.from_bytes(data[:8], "little")]))
    assert "state.0.exp_avg" in names and "state.3.exp_avg_sq" in names


# ---- refusing bad files, leaving the model alone ------------------------------------------------
def craft(path, header, buffer: bytes = b"", length: int | None = None) -> None:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    length = len(text) if length is None else length
    Path(path).write_bytes(length.to_bytes(8, "little") + text + buffer)


F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
BAD_FILES = [
    ("short", lambda p: Path(p).write_bytes(b"\x01\x00"), "too short"),
    ("length_past_end", lambda p: craft(p, {"w": F32}, b"\0" * 8, length=10_000),
     "header length 10000 does not fit"),
    ("not_json", lambda p: craft(p, b"{not json"), "not valid JSON"),
    ("not_utf8", lambda p: craft(p, b"{\xff}"), "not valid JSON"),
    ("json_array", lambda p: craft(p, []), "JSON list, not an object"),
    ("duplicate_key", lambda p: craft(p, b'{"w": 1, "w": 2}'), "duplicate key 'w'"),
    ("unknown_dtype", lambda p: craft(p, {"w": {**F32, "dtype": "BF16"}}, b"\0" * 8),
     "tensor 'w' has dtype 'BF16'"),
    ("missing_field", lambda p: craft(p, {"w": {"dtype": "F32", "shape": [2]}}, b"\0" * 8),
     "tensor 'w' must have exactly the fields"),
    ("bad_shape", lambda p: craft(p, {"w": {**F32, "shape": [-2]}}, b"\0" * 8),
     "tensor 'w' has shape"),
    ("bad_offsets", lambda p: craft(p, {"w": {**F32, "data_offsets": [8, 0]}}, b"\0" * 8),
     "tensor 'w' has data_offsets"),
    ("size_mismatch", lambda p: craft(p, {"w": {**F32, "shape": [3]}}, b"\0" * 8),
     "tensor 'w' of shape \\(3,\\) and dtype F32 needs 12 bytes"),
    ("gap", lambda p: craft(p, {"w": {**F32, "data_offsets": [4, 12]}}, b"\0" * 12),
     "tensor 'w' starts at byte 4 .* gap"),
    ("overlap", lambda p: craft(p, {"a": F32, "b": {**F32, "data_offsets": [4, 12]}},
                                b"\0" * 12), "tensor 'b' starts at byte 4 .* overlaps"),
    ("truncated_buffer", lambda p: craft(p, {"w": F32}, b"\0" * 5), "cover 8 bytes.*has 5"),
    ("trailing_bytes", lambda p: craft(p, {"w": F32}, b"\0" * 9), "cover 8 bytes.*has 9"),
    ("metadata_not_strings", lambda p: craft(p, {"__metadata__": {"a": 1}}),
     "__metadata__ must map strings to strings"),
    ("bool_not_0_or_1", lambda p: craft(p, {"m": {"dtype": "BOOL", "shape": [2],
                                                  "data_offsets": [0, 2]}}, b"\x01\x02"),
     "tensor 'm' is BOOL"),
    ("structure_names_a_missing_tensor",
     lambda p: craft(p, {"__metadata__": {"edugrad.structure": '{"x":{"__tensor__":"y"}}'}}),
     "refers to tensor 'y'"),
    ("structure_leaves_a_tensor_out",
     lambda p: craft(p, {"__metadata__": {"edugrad.structure": '{"x": 1}'}, "w": F32},
                     b"\0" * 8), r"\['w'\] are not placed"),
]


@pytest.mark.parametrize("name, write, match", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_are_refused_with_the_reason(tmp_path, name, write, match):
    path = tmp_path / f"{name}.safetensors"
    write(path)
    with pytest.raises(ValueError, match=match):
        load(path)


def test_truncated_or_corrupted_checkpoint_leaves_the_model_as_it_was(tmp_path):
    model = make_model()
    path = tmp_path / "model.safetensors"
    save(make_model(seed=3).state_dict(), path)
    data = path.read_bytes()
    before = values(model.state_dict())
    corruptions = {"truncated": data[:-10], "cut_in_header": data[:40],
                   "header_corrupted": data[:20] + b"\x00" + data[21:],
                   "length_corrupted": (10 ** 6).to_bytes(8, "little") + data[8:]}
    for name, corrupted in corruptions.items():
        bad = tmp_path / f"{name}.safetensors"
        bad.write_bytes(corrupted)
        with pytest.raises(ValueError):
            model.load_state_dict(load(bad))
        assert_bit_equal(values(model.state_dict()), before)


def test_state_dict_of_the_wrong_model_leaves_the_model_as_it_was(tmp_path):
    model = make_model()
    before = values(model.state_dict())
    wrong_shape = nn.Sequential(nn.Linear(SIZES[0], SIZES[1]), nn.ReLU(), nn.Linear(SIZES[1], 5))
    save(wrong_shape.state_dict(), tmp_path / "shape.safetensors")
    with pytest.raises(RuntimeError, match="size mismatch for 2.weight"):
        model.load_state_dict(load(tmp_path / "shape.safetensors"))
    assert_bit_equal(values(model.state_dict()), before)
    missing = dict(make_model(seed=2).state_dict())
    del missing["2.bias"]
    save(missing, tmp_path / "missing.safetensors")
    with pytest.raises(RuntimeError, match='Missing key.*"2.bias"'):
        model.load_state_dict(load(tmp_path / "missing.safetensors"))
    assert_bit_equal(values(model.state_dict()), before)


class Evil:
    """Unpickling this would create the file at `marker`."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_a_pickle_is_refused_without_running_it(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"weight": Evil(str(marker))}, protocol=protocol)
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match="not a safetensors file|does not fit|not valid JSON"):
        load(path)
    assert not marker.exists()
    pickle.loads(payload)["weight"].close()  # the payload is live: unpickling it runs open()
    assert marker.exists()


def test_a_torch_save_file_is_refused_without_running_it(tmp_path, torch):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    torch.save({"weight": torch.ones(2), "evil": Evil(str(marker))}, path)
    with pytest.raises(ValueError, match="zip archive, as torch.save writes"):
        load(path)
    assert not marker.exists()


def test_serialization_never_imports_pickle():
    source = Path(edugrad.serialization.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert not imported & {"pickle", "cPickle", "dill", "marshal", "shelve", "torch"}


# ---- saving: atomic, and clear about what it cannot store ---------------------------------------
def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    save({"w": edugrad.ones(3)}, path)
    original = path.read_bytes()
    with pytest.raises(TypeError, match="cannot store object at 'bad'"):
        save({"w": edugrad.zeros(3), "bad": object()}, path)

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        save({"w": edugrad.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    save({"w": edugrad.zeros(3)}, path)  # and a good save replaces it
    assert load(path)["w"].tolist() == [0.0, 0.0, 0.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


@pytest.mark.parametrize("obj, error, match", [
    (edugrad.ones(2), TypeError, "expected a dict"),
    ({(1, 2): edugrad.ones(2)}, TypeError, "keys must be str or int"),
    ({"x": {True: 1}}, TypeError, "keys must be str or int"),
    ({"x": {1.5: 1}}, TypeError, "keys must be str or int"),
    ({"x": np.ones(2)}, TypeError, "cannot store ndarray at 'x'"),
    ({"a.b": edugrad.ones(1), "a": {"b": edugrad.ones(1)}}, ValueError,
     "the tensor name 'a.b' would hold two tensors"),
    ({"__metadata__": edugrad.ones(1)}, ValueError, "'__metadata__' is the format's own key"),
])
def test_what_save_cannot_store(tmp_path, obj, error, match):
    with pytest.raises(error, match=match):
        save(obj, tmp_path / "x.safetensors")
    assert not list(tmp_path.iterdir())


def test_map_location(tmp_path):
    save({"w": edugrad.tensor([1.5, 2.5])}, tmp_path / "w.safetensors")
    loaded = load(tmp_path / "w.safetensors", map_location="python")
    assert loaded["w"].device == "python" and loaded["w"].tolist() == [1.5, 2.5]
    assert load(str(tmp_path / "w.safetensors"))["w"].device == "cpu"


def test_float16_round_trips(tmp_path):
    path = tmp_path / "half.safetensors"
    x = edugrad.tensor([1.5, -2.25, 65504.0]).half()
    edugrad.save({"x": x}, str(path))
    back = edugrad.load(str(path))["x"]
    assert back.dtype is edugrad.float16 and back.tolist() == [1.5, -2.25, 65504.0]
