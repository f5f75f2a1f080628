"""save and load: state dicts to and from files in the safetensors format, which cannot run code.

Layer: Tensor (top). Imports edugrad.tensor and edugrad.dtypes; NumPy to turn a tensor's host
copy into bytes and back (`tobytes`, `frombuffer`). Serialization is I/O: the math never sees
NumPy, and a tensor of any device goes through the host here, as in `Tensor.numpy()`.

Why not pickle (what torch.save writes): unpickling runs whatever code the file names, so
loading a checkpoint from someone else would be running their program. A safetensors file is
a table of numbers and a JSON header; reading one runs nothing.

The safetensors format, whole (the same bytes PyTorch's `safetensors.torch` reads and writes):

    bytes 0..8     N, the header's length: an unsigned 64-bit little-endian integer
    bytes 8..8+N   the header: a UTF-8 JSON object, padded with spaces (to a multiple of 8 here)
                     {"__metadata__": {"format": "pt"},          optional; string -> string
                      "0.weight": {"dtype": "F32", "shape": [4, 3], "data_offsets": [0, 48]},
                      "0.bias":   {"dtype": "F32", "shape": [4], "data_offsets": [48, 64]}}
    the rest       the byte buffer: each tensor's elements in row-major order, little-endian,
                   at data_offsets [begin, end) counted from the buffer's start. The tensors
                   tile the buffer: no gaps, no overlaps, nothing after the last one.

    dtypes: F32 F64 I32 I64 BOOL (one byte, 0 or 1) <-> edugrad's float32 float64 int32 int64 bool

A model's state dict ({"0.weight": tensor, ...}) is exactly such a table. Anything else, such as
an optimizer's state dict or a checkpoint {"model": ..., "optimizer": ..., "epoch": 3}, is
flattened: its tensors go in the table under dotted names ("optimizer.state.0.exp_avg"), and
the rest (numbers, strings, None, lists, tuples, dicts with str or int keys, each tensor's place
by name) goes in __metadata__["edugrad.structure"] as JSON, from which `load` rebuilds it.

`save` writes atomically: a temporary file in the same folder, flushed and fsync'ed, then
renamed over the target, so a crash leaves the old file or the new one, never half of one.
`load` checks the header strictly and refuses anything else with an error naming the key.
"""

from __future__ import annotations

import json
import os
import secrets

import numpy as np

from edugrad import dtypes
from edugrad.tensor import Tensor

DTYPES = {"F32": dtypes.float32, "F64": dtypes.float64, "I32": dtypes.int32,
          "I64": dtypes.int64, "BOOL": dtypes.bool_}
CODES = {dtype: code for code, dtype in DTYPES.items()}
STRUCTURE = "edugrad.structure"  # the __metadata__ key of the non-tensor structure
MAX_HEADER = 100_000_000  # bytes; the safetensors library's own limit
TAGS = ("__tensor__", "__tuple__", "__dict__")  # how the structure marks what JSON lacks


# ---- save ---------------------------------------------------------------------------------------
def save(obj: dict, path) -> None:
    """Write a state dict (or a dict of state dicts, numbers, strings...) to `path`."""
    if not isinstance(obj, dict):
        raise TypeError(f"save: expected a dict (a state dict), got {type(obj).__name__}; "
                        "wrap a tensor as {'name': tensor}")
    tensors: dict = {}
    structure = _flatten(obj, "", tensors)
    metadata = {"format": "pt"}
    if not _is_flat_table(obj):
        metadata[STRUCTURE] = json.dumps(structure, separators=(",", ":"))
    header: dict = {"__metadata__": metadata}
    arrays, offset = [], 0
    for name, tensor in tensors.items():
        array = tensor.detach().numpy()
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)  # tobytes: row-major
        header[name] = {"dtype": CODES[tensor.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        arrays.append(array)
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # pad, so the buffer starts 8-byte aligned

    def write(file) -> None:
        file.write(len(text).to_bytes(8, "little"))
        file.write(text)
        for array in arrays:
            file.write(array.tobytes())

    _write_atomically(os.fspath(path), write)


def _flatten(obj, name: str, tensors: dict):
    """The JSON structure of obj; its tensors are put in `tensors` under dotted names."""
    if isinstance(obj, Tensor):
        if name in tensors or name == "__metadata__":
            problem = ("is the format's own key" if name == "__metadata__"
                       else "would hold two tensors")
            raise ValueError(f"save: the tensor name {name!r} {problem}")
        if obj.dtype not in CODES:
            raise TypeError(f"save: tensor {name!r} has dtype {obj.dtype.name}, which the "
                            f"format cannot store")
        tensors[name] = obj
        return {"__tensor__": name}
    if isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"save: dict keys must be str or int, got {key!r} "
                                f"({type(key).__name__}) in {name or 'the top-level dict'!r}")
        items = {key: _flatten(value, f"{name}.{key}" if name else str(key), tensors)
                 for key, value in obj.items()}
        if all(isinstance(key, str) for key in items) and not any(tag in items for tag in TAGS):
            return items
        return {"__dict__": [[key, value] for key, value in items.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_flatten(value, f"{name}.{i}" if name else str(i), tensors)
                 for i, value in enumerate(obj)]
        return items if isinstance(obj, list) else {"__tuple__": items}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"save: cannot store {type(obj).__name__} at {name!r}: a state dict may hold "
                    "tensors, numbers, strings, None, and lists, tuples and dicts of them")


def _is_flat_table(obj: dict) -> bool:
    """True for a plain {str: Tensor} dict (a model's state dict): the file needs no structure."""
    return all(isinstance(key, str) and isinstance(value, Tensor) for key, value in obj.items())


def _write_atomically(path: str, write) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    # os.open with mode 0o666 lets the umask decide the permissions, as open() does
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass  # some file systems cannot fsync a folder; the file itself is safe
        finally:
            os.close(fd)


# ---- load ---------------------------------------------------------------------------------------
def load(path, map_location=None) -> dict:
    """Read a file written by `save` (or any safetensors file of these dtypes).

    Tensors are made on `map_location` (a device name; None: the default device)."""
    path = os.fspath(path)
    with open(path, "rb") as file:
        data = file.read()
    entries, metadata, start = _parse_header(data, path)
    tensors = {}
    for name, (dtype, shape, (begin, end)) in entries.items():
        array = np.frombuffer(data, dtype=np.dtype(dtype.name).newbyteorder("<"),
                              count=(end - begin) // dtype.itemsize, offset=start + begin)
        if dtype is dtypes.bool_ and array.size and array.view(np.uint8).max() > 1:
            raise ValueError(f"load: {path}: tensor {name!r} is BOOL but holds bytes other "
                             "than 0 and 1")
        tensors[name] = Tensor(array.reshape(shape), dtype=dtype, device=map_location)
    if STRUCTURE not in metadata:
        return tensors
    try:
        structure = json.loads(metadata[STRUCTURE])
    except ValueError as error:
        raise ValueError(f"load: {path}: __metadata__[{STRUCTURE!r}] is not valid JSON "
                         f"({error})") from None
    used: set = set()
    obj = _rebuild(structure, tensors, used, path)
    if used != set(tensors):
        raise ValueError(f"load: {path}: tensor(s) {sorted(set(tensors) - used)} are not "
                         f"placed by __metadata__[{STRUCTURE!r}]")
    if not isinstance(obj, dict):
        raise ValueError(f"load: {path}: the stored structure is a {type(obj).__name__}, "
                         "not a dict")
    return obj


def _parse_header(data: bytes, path: str):
    """Check the header against the file; return ({name: (dtype, shape, offsets)}, metadata,
    where the byte buffer starts). Every rule of the format is checked, before any tensor
    is made."""
    where = f"load: {path}"
    if len(data) < 8:
        raise ValueError(f"{where} is not a safetensors file: {len(data)} bytes, too short "
                         f"for the 8-byte header length{_guess(data)}")
    length = int.from_bytes(data[:8], "little")
    if length > MAX_HEADER or 8 + length > len(data):
        raise ValueError(f"{where}: header length {length} does not fit: the file has "
                         f"{len(data)} bytes (truncated, or not a safetensors file){_guess(data)}")
    try:
        header = json.loads(data[8:8 + length].decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as error:
        message = f"{where}: the header is not valid JSON ({error}){_guess(data)}"
        raise ValueError(message) from None
    if not isinstance(header, dict):
        raise ValueError(f"{where}: the header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()):
        raise ValueError(f"{where}: __metadata__ must map strings to strings")
    size = len(data) - 8 - length
    entries = {name: _parse_entry(name, info, where) for name, info in header.items()}
    expected = 0  # the tensors must tile the buffer, in order of their offsets
    for name, (_, _, (begin, end)) in sorted(entries.items(), key=lambda item: item[1][2]):
        if begin != expected:
            problem = "overlaps the tensor before it" if begin < expected else "leaves a gap"
            raise ValueError(f"{where}: tensor {name!r} starts at byte {begin} of the buffer, "
                             f"expected {expected}: it {problem}")
        expected = end
    if expected != size:
        raise ValueError(f"{where}: the tensors cover {expected} bytes, but the buffer after "
                         f"the header has {size} (truncated, or extra bytes at the end)")
    return entries, metadata, 8 + length


def _guess(data: bytes) -> str:
    """A hint for the files people most often mistake for a state dict."""
    if data[:4] == b"PK\x03\x04":
        kind = "a zip archive, as torch.save writes"
    elif data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        kind = "a pickle"
    else:
        return ""
    return (f". It looks like {kind}: edugrad.load reads only safetensors and never unpickles, "
            "since unpickling can run any code the file names")


def _parse_entry(name: str, info, where: str):
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f"{where}: tensor {name!r} must have exactly the fields dtype, shape "
                         f"and data_offsets, got {info!r:.100}")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if code not in DTYPES:
        raise ValueError(f"{where}: tensor {name!r} has dtype {code!r}; edugrad reads "
                         f"{', '.join(DTYPES)}")
    if not isinstance(shape, list) or not all(_is_count(s) for s in shape):
        raise ValueError(f"{where}: tensor {name!r} has shape {shape!r}: not a list of sizes")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_is_count, offsets))
            or offsets[0] > offsets[1]):
        raise ValueError(f"{where}: tensor {name!r} has data_offsets {offsets!r}: not "
                         "[begin, end] with 0 <= begin <= end")
    dtype = DTYPES[code]
    count = 1
    for s in shape:
        count *= s
    if offsets[1] - offsets[0] != count * dtype.itemsize:
        raise ValueError(f"{where}: tensor {name!r} of shape {tuple(shape)} and dtype {code} "
                         f"needs {count * dtype.itemsize} bytes, but its data_offsets "
                         f"{offsets} span {offsets[1] - offsets[0]}")
    return dtype, tuple(shape), tuple(offsets)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _no_duplicates(pairs: list) -> dict:
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _rebuild(node, tensors: dict, used: set, path: str):
    """The inverse of _flatten."""
    if isinstance(node, list):
        return [_rebuild(item, tensors, used, path) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1 and "__tensor__" in node:
        name = node["__tensor__"]
        if not isinstance(name, str) or name not in tensors or name in used:
            raise ValueError(f"load: {path}: the structure refers to tensor {name!r}, which the "
                             "file does not hold (or which is placed twice)")
        used.add(name)
        return tensors[name]
    if len(node) == 1 and "__tuple__" in node and isinstance(node["__tuple__"], list):
        return tuple(_rebuild(item, tensors, used, path) for item in node["__tuple__"])
    if len(node) == 1 and "__dict__" in node and isinstance(node["__dict__"], list):
        pairs = node["__dict__"]
        if not all(isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))
                   for pair in pairs):
            raise ValueError(f"load: {path}: a malformed __dict__ in the stored structure")
        return {key: _rebuild(value, tensors, used, path) for key, value in pairs}
    return {key: _rebuild(value, tensors, used, path) for key, value in node.items()}
