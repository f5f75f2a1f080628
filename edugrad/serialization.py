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

`save` writes atomically: a temporary file beside the target, flushed and fsync'ed, then renamed
over it, so a crash leaves the old file or the new one, never half of one. `load` refuses what
is not a regular file, checks the header strictly against the file's size before it reads any
tensor, and reads each tensor straight into its array: peak memory is the loaded tensors plus
one tensor in transit. A malformed file raises ValueError naming the file and the key.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import secrets
import signal
import stat
import threading

import numpy as np

from edugrad import dtypes
from edugrad.tensor import Tensor

DTYPES = {"F16": dtypes.float16, "F32": dtypes.float32, "F64": dtypes.float64,
          "I32": dtypes.int32, "I64": dtypes.int64, "BOOL": dtypes.bool_}
CODES = {dtype: code for code, dtype in DTYPES.items()}
STRUCTURE = "edugrad.structure"  # the __metadata__ key of the non-tensor structure
MAX_HEADER = 100_000_000  # bytes; the safetensors library's own limit
TAGS = ("__tensor__", "__tuple__", "__dict__")  # how the structure marks what JSON lacks
MAX_DIMS = 32  # NumPy 1's limit (NumPy 2 allows 64)
MAX_DEPTH = 64  # how deeply save nests dicts, lists and tuples in one another
# How deeply load lets JSON nest, checked before json.loads (which recurses once per level):
HEADER_DEPTH = 3  # {"name": {"shape": [2, 3]}}, the deepest a valid header goes
STRUCTURE_DEPTH = 3 * MAX_DEPTH + 1  # a dict with int keys is three levels: {"__dict__": [[k, v]]}


# ---- save ---------------------------------------------------------------------------------------
def save(obj: dict, path) -> None:
    """Write a state dict (or a dict of state dicts, numbers, strings...) to `path`.

    Nothing is lost if it fails: the data goes to a temporary file beside the target, named
    `.NAME.PID.RANDOM.tmp`, which is renamed over the target only when complete. It is removed
    when the save fails, and on SIGINT or SIGTERM (see `_removed_on_signals`); one left behind
    by a process that was killed outright (SIGKILL, a power cut) is removed by the next save to
    the same path, once no process of that PID is running.

    - A symbolic link stays a link: the file it points to is replaced.
    - An existing file keeps its permission bits (and its owner, where the OS allows).
    - A path that is a folder, FIFO, device or socket raises ValueError; one the user may not
      write raises PermissionError, as open() would; an empty path raises ValueError. In each
      case before anything is written.
    - An object save cannot store raises TypeError (a tensor dtype, a type) or ValueError (a
      dict that contains itself, nesting deeper than MAX_DEPTH, two tensors under one name),
      naming the key.
    """
    path = _path_argument(path, "save")
    if not isinstance(obj, dict):
        raise TypeError(f"save: expected a dict (a state dict), got {type(obj).__name__}; "
                        "wrap a tensor as {'name': tensor}")
    tensors: dict = {}
    structure = _flatten(obj, "", tensors, [], path)
    metadata = {"format": "pt"}
    if not _is_flat_table(obj):
        metadata[STRUCTURE] = json.dumps(structure, separators=(",", ":"))
    header: dict = {"__metadata__": metadata}
    arrays, offset = [], 0
    for name, tensor in tensors.items():
        array = tensor.detach().numpy()
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        header[name] = {"dtype": CODES[tensor.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        arrays.append(np.ascontiguousarray(array))  # row-major, as the format stores it
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # pad, so the buffer starts 8-byte aligned

    def write(file) -> None:
        file.write(len(text).to_bytes(8, "little"))
        file.write(text)
        for array in arrays:
            file.write(_bytes_of(array))

    _write_atomically(path, write)


def _path_argument(path, op: str) -> str:
    path = os.fsdecode(os.fspath(path))
    if not path:
        raise ValueError(f"{op}: the path is empty")
    return path


def _flatten(obj, name: str, tensors: dict, parents: list, path: str):
    """The JSON structure of obj; its tensors are put in `tensors` under dotted names.
    `parents` holds (container, name) for each container above obj, to catch a cycle."""
    where = f"save: {path}:"
    if isinstance(obj, Tensor):
        if name in tensors or name == "__metadata__":
            problem = ("is the format's own key" if name == "__metadata__"
                       else "would hold two tensors")
            raise ValueError(f"{where} the tensor name {name!r} {problem}")
        if obj.dtype not in CODES:
            raise TypeError(f"{where} tensor {name!r} has dtype {obj.dtype.name}, which the "
                            f"format cannot store")
        tensors[name] = obj
        return {"__tensor__": name}
    if not isinstance(obj, (dict, list, tuple)):
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        raise TypeError(f"{where} cannot store {type(obj).__name__} at {name!r}: a state dict "
                        "may hold tensors, numbers, strings, None, and lists, tuples and dicts "
                        "of them")
    for parent, parent_name in parents:
        if obj is parent:
            raise ValueError(f"{where} the {type(obj).__name__} at {_key(name)} is the one at "
                             f"{_key(parent_name)}: it contains itself, and a state dict must "
                             "be a tree")
    if len(parents) == MAX_DEPTH:
        raise ValueError(f"{where} {_key(name)} nests dicts, lists and tuples deeper than "
                         f"{MAX_DEPTH}")
    parents.append((obj, name))
    try:
        return _flatten_container(obj, name, tensors, parents, path)
    finally:
        parents.pop()


def _flatten_container(obj, name: str, tensors: dict, parents: list, path: str):
    if isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"save: {path}: dict keys must be str or int, got {key!r} "
                                f"({type(key).__name__}) in {name or 'the top-level dict'!r}")
        items = {key: _flatten(value, f"{name}.{key}" if name else str(key), tensors, parents,
                               path) for key, value in obj.items()}
        if all(isinstance(key, str) for key in items) and not any(tag in items for tag in TAGS):
            return items
        return {"__dict__": [[key, value] for key, value in items.items()]}
    items = [_flatten(value, f"{name}.{i}" if name else str(i), tensors, parents, path)
             for i, value in enumerate(obj)]
    return items if isinstance(obj, list) else {"__tuple__": items}


def _key(name: str) -> str:
    """A dotted name for an error message, shortened in the middle if long."""
    if not name:
        return "the top level"
    return repr(name if len(name) <= 60 else f"{name[:28]}...{name[-28:]}")


def _is_flat_table(obj: dict) -> bool:
    """True for a plain {str: Tensor} dict (a model's state dict): the file needs no structure."""
    return all(isinstance(key, str) and isinstance(value, Tensor) for key, value in obj.items())


def _bytes_of(array: np.ndarray) -> memoryview:
    """A C-contiguous array's bytes, without copying them (also for 0-d arrays)."""
    return memoryview(array.reshape(-1).view(np.uint8))


# ---- writing a file without losing the old one --------------------------------------------------
def _write_atomically(path: str, write) -> None:
    target = os.path.realpath(path)  # through symbolic links: the link stays, its file changes
    existing = _stat_or_none(target)
    if existing is not None:
        if not stat.S_ISREG(existing.st_mode):
            raise ValueError(f"save: {path} is {_kind(existing.st_mode)}, not a regular file; "
                             "save writes only to a file (give a file name)")
        if not os.access(target, os.W_OK):
            raise PermissionError(errno.EACCES, f"save: {path} is read-only (mode "
                                  f"{stat.filemode(existing.st_mode)}); nothing was written",
                                  path)
    directory, name = os.path.split(target)
    _remove_stale_temporaries(directory, name)
    temp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    with _removed_on_signals(temp):
        fd = _create(temp, path, directory)
        try:
            if existing is not None:
                _copy_owner_and_mode(fd, temp, existing)
            with os.fdopen(fd, "wb") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, target)
        except BaseException:
            _remove_quietly(temp)
            raise
    _sync_directory(directory)


def _create(temp: str, path: str, directory: str) -> int:
    try:
        # mode 0o666 lets the umask decide a new file's permissions, as open() does
        return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                       0o666)
    except OSError as error:  # say it of the user's path, not of the temporary file
        raise type(error)(error.errno, f"save: cannot write {path}: no file can be made in "
                                       f"{directory} ({error.strerror})", path) from None


def _stat_or_none(path: str):
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _kind(mode: int) -> str:
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket")]
    return next((kind for test, kind in kinds if test(mode)), "not a file")


def _copy_owner_and_mode(fd: int, temp: str, existing: os.stat_result) -> None:
    if hasattr(os, "fchown"):
        try:
            os.fchown(fd, existing.st_uid, existing.st_gid)  # before chmod: chown clears setuid
        except OSError:
            pass  # only root may give a file away; it then belongs to whoever saves it
    if hasattr(os, "fchmod"):
        os.fchmod(fd, stat.S_IMODE(existing.st_mode))
    else:
        os.chmod(temp, stat.S_IMODE(existing.st_mode))


def _remove_stale_temporaries(directory: str, name: str) -> None:
    """Remove temporary files of save's naming for `name` whose process no longer runs."""
    pattern = re.compile(re.escape(f".{name}.") + r"(\d+)\.[0-9a-f]{12}\.tmp")
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return  # an unreadable folder: the save itself will say what is wrong
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and not _process_runs(int(match[1])):
            _remove_quietly(entry.path)


def _process_runs(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be saving to the same path
    if os.name != "posix":
        return True  # no safe check: on Windows os.kill(pid, 0) would end the process
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # it exists, and belongs to another user
    return True


@contextlib.contextmanager
def _removed_on_signals(temp: str):
    """While the block runs, SIGINT and SIGTERM remove `temp` before they end the process.

    A library must not take the program's signals: the handler is installed only for the write,
    only in the main thread (Python runs handlers there and allows setting them nowhere else),
    and not for a signal the program ignores. It first calls the program's own handler: if that
    raises (KeyboardInterrupt, SystemExit), save's cleanup removes the file; if it returns, the
    save goes on. Only where the default action would end the process at once does the handler
    remove the file itself, then restore the default and send the signal again.
    """
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if handler is not None and handler is not signal.SIG_IGN:
                previous[signum] = handler

    def on_signal(signum, frame):
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)
            return
        _remove_quietly(temp)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    try:
        for signum in previous:
            signal.signal(signum, on_signal)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _sync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
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
def load(path, map_location=None, pickle_module=None, *, weights_only=True, mmap=None,
         **pickle_load_args) -> dict:
    """Read a file written by `save` (or any safetensors file of these dtypes).

    Tensors are made on `map_location` (a device name or edugrad.device; None: the default
    device). A path that is not a regular file (a folder, FIFO, device) raises ValueError
    without being read; so does any file that breaks the format, naming the file and the key,
    before any tensor is read.

    torch.load's other arguments are accepted so that PyTorch code runs: `weights_only` is
    always effectively True (the format holds tensors, numbers, strings, lists and dicts, and
    nothing in it can run code, so there is nothing to turn off); `mmap`, `pickle_module` and
    pickle's arguments have no meaning without pickle and are ignored."""
    if isinstance(map_location, dict):  # {"cuda:0": "cpu"}: edugrad files keep no device, so
        targets = set(map(str, map_location.values()))  # the one target is the answer
        if len(targets) != 1:
            raise ValueError(f"load: map_location as a dict must map to one device, got "
                             f"{map_location!r}")
        map_location = targets.pop()
    elif callable(map_location):
        raise TypeError("load: map_location as a function is not supported (edugrad files hold "
                        "no storages to remap); give a device name")
    path = _path_argument(path, "load")
    with _open_regular_file(path) as file:
        size = os.fstat(file.fileno()).st_size
        entries, metadata, start = _read_header(file, size, path)
        tensors = {name: _read_tensor(file, name, entry, start, path, map_location)
                   for name, entry in entries.items()}
    if STRUCTURE not in metadata:
        return tensors
    where = f"load: {path}: __metadata__[{STRUCTURE!r}]"
    structure = _parse_json(metadata[STRUCTURE].encode("utf-8"), where, STRUCTURE_DEPTH)
    used: set = set()
    obj = _rebuild(structure, tensors, used, path)
    if used != set(tensors):
        raise ValueError(f"load: {path}: tensor(s) {sorted(set(tensors) - used)} are not "
                         f"placed by __metadata__[{STRUCTURE!r}]")
    if not isinstance(obj, dict):
        raise ValueError(f"{where} is a {type(obj).__name__}, not a dict")
    return obj


def _open_regular_file(path: str):
    """Open `path` for reading if it is a regular file: a FIFO would block the open or the
    read for ever, a device such as /dev/zero never ends. Checked before opening, and again on
    what was opened (O_NONBLOCK: a FIFO put there in between cannot block the open)."""
    kind = os.stat(path).st_mode  # a missing file raises FileNotFoundError, as open() does
    if stat.S_ISREG(kind):
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        file = os.fdopen(os.open(path, flags), "rb", buffering=0)
        kind = os.fstat(file.fileno()).st_mode
        if stat.S_ISREG(kind):
            return file
        file.close()
    raise ValueError(f"load: {path} is {_kind(kind)}, not a regular file; load reads only "
                     "files")


def _read_exactly(file, count: int, where: str) -> bytearray:
    data = bytearray(count)
    _read_into(file, memoryview(data), where)
    return data


def _read_into(file, view: memoryview, where: str) -> None:
    done = 0
    while done < len(view):
        got = file.readinto(view[done:])
        if not got:
            raise ValueError(f"{where}: the file ended early: it changed while being read")
        done += got


def _read_header(file, size: int, path: str):
    """Check the header against the file's size; return ({name: (dtype, shape, offsets)},
    metadata, where the byte buffer starts). Every rule of the format is checked, before any
    tensor is read."""
    where = f"load: {path}"
    first = _read_exactly(file, min(size, 8), where)
    if size < 8:
        raise ValueError(f"{where} is not a safetensors file: {size} bytes, too short "
                         f"for the 8-byte header length{_guess(first)}")
    length = int.from_bytes(first, "little")
    if length > MAX_HEADER or 8 + length > size:
        raise ValueError(f"{where}: header length {length} does not fit: the file has "
                         f"{size} bytes (truncated, or not a safetensors file){_guess(first)}")
    header = _parse_json(_read_exactly(file, length, where), f"{where}: the header",
                         HEADER_DEPTH, _guess(first))
    if not isinstance(header, dict):
        raise ValueError(f"{where}: the header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()):
        raise ValueError(f"{where}: __metadata__ must map strings to strings")
    buffer = size - 8 - length
    entries = {name: _parse_entry(name, info, where) for name, info in header.items()}
    expected = 0  # the tensors must tile the buffer, in order of their offsets
    for name, (_, _, (begin, end)) in sorted(entries.items(), key=lambda item: item[1][2]):
        if begin != expected:
            problem = "overlaps the tensor before it" if begin < expected else "leaves a gap"
            raise ValueError(f"{where}: tensor {name!r} starts at byte {begin} of the buffer, "
                             f"expected {expected}: it {problem}")
        expected = end
    if expected != buffer:
        raise ValueError(f"{where}: the tensors cover {expected} bytes, but the buffer after "
                         f"the header has {buffer} (truncated, or extra bytes at the end)")
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


# a JSON token for the nesting check: a string (its end optional, so that an unterminated one
# is one token and the scan stays linear), or a bracket or colon outside strings
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.?)*"?|[][{}:]', re.DOTALL)


def _parse_json(text: bytes, where: str, max_depth: int, hint: str = ""):
    """json.loads, after checking that `text` nests at most max_depth deep: json.loads recurses
    once per level, and 5,000 levels would end in RecursionError."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{where} is not valid JSON ({error}){hint}") from None
    depth, last_string, key = 0, None, None
    for match in _JSON_TOKENS.finditer(decoded):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > max_depth:
                under = f" under the key {_key_text(key)!r}" if key else ""
                raise ValueError(f"{where} nests deeper than {max_depth} levels{under}")
        elif token in ("]", "}"):
            depth -= 1
        elif token == ":":
            key = last_string if depth == 1 else key  # remember the top-level key
        else:
            last_string = token
    try:
        return json.loads(decoded, object_pairs_hook=_no_duplicates)
    except ValueError as error:
        raise ValueError(f"{where} is not valid JSON ({error}){hint}") from None


def _key_text(token: str) -> str:
    """A top-level key as the scan found it: decoded, or as written when a corrupted file
    leaves it unterminated or with a broken escape."""
    try:
        return json.loads(token)
    except ValueError:
        return token


def _parse_entry(name: str, info, where: str):
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f"{where}: tensor {name!r} must have exactly the fields dtype, shape "
                         f"and data_offsets, got {info!r:.100}")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(code, str) or code not in DTYPES:
        raise ValueError(f"{where}: tensor {name!r} has dtype {code!r:.60}; edugrad reads "
                         f"{', '.join(DTYPES)}")
    if not isinstance(shape, list) or not all(_is_count(s) for s in shape):
        raise ValueError(f"{where}: tensor {name!r} has shape {shape!r:.100}: not a list of "
                         "sizes")
    if len(shape) > MAX_DIMS:
        raise ValueError(f"{where}: tensor {name!r} has {len(shape)} dims; edugrad reads at "
                         f"most {MAX_DIMS}")
    dtype = DTYPES[code]
    if math.prod(max(s, 1) for s in shape) * dtype.itemsize >= 2 ** 63:  # even with a 0 dim
        raise ValueError(f"{where}: tensor {name!r} has shape {shape}: too large for any "
                         "array (2**63 bytes or more)")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_is_count, offsets))
            or offsets[0] > offsets[1]):
        raise ValueError(f"{where}: tensor {name!r} has data_offsets {offsets!r:.100}: not "
                         "[begin, end] with 0 <= begin <= end")
    count = math.prod(shape)
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


def _read_tensor(file, name: str, entry, start: int, path: str, device) -> Tensor:
    """Read one tensor's bytes straight into a new array (no copy of the file in memory)."""
    dtype, shape, (begin, _) = entry
    array = np.empty(shape, dtype=np.dtype(dtype.name).newbyteorder("<"))
    file.seek(start + begin)
    _read_into(file, _bytes_of(array), f"load: {path}: tensor {name!r}")
    if dtype is dtypes.bool_ and array.size and array.view(np.uint8).max() > 1:
        raise ValueError(f"load: {path}: tensor {name!r} is BOOL but holds bytes other "
                         "than 0 and 1")
    return Tensor(array, dtype=dtype, device=device)


def _rebuild(node, tensors: dict, used: set, path: str):
    """The inverse of _flatten."""
    if isinstance(node, list):
        return [_rebuild(item, tensors, used, path) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1 and "__tensor__" in node:
        name = node["__tensor__"]
        if not isinstance(name, str) or name not in tensors or name in used:
            raise ValueError(f"load: {path}: the structure refers to tensor {name!r:.100}, "
                             "which the file does not hold (or which is placed twice)")
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
