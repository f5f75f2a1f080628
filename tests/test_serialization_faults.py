"""edugrad.save and edugrad.load under faults and bad input: nothing is lost, every error is clear.

Each test reproduces one fault (a symbolic link, a FIFO, a device, a read-only file, a process
killed in the middle of a save, a crafted header) and checks that the old file is intact, that no
temporary file is left, and that the error is of the documented type and names the file and key.
No PyTorch needed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings

import edugrad
from edugrad import serialization
from edugrad.serialization import load, save

POSIX = pytest.mark.skipif(os.name != "posix", reason="FIFOs, devices and signals are POSIX")
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NOT_ROOT = pytest.mark.skipif(AS_ROOT, reason="root may write read-only files and folders")


def old_checkpoint(path: Path) -> bytes:
    save({"w": edugrad.arange(4)}, path)
    return path.read_bytes()


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---- save: what is at the path -------------------------------------------------------------------
def test_save_through_a_symlink_replaces_the_file_it_points_to(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    target, link = tmp_path / "real" / "model.safetensors", tmp_path / "link.safetensors"
    old_checkpoint(target)
    link.symlink_to(target)
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: renames.append((a, b)) or real_replace(a, b))
    save({"w": edugrad.ones(2)}, link)
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert load(target)["w"].tolist() == [1.0, 1.0]
    (temp, renamed_to), = renames  # the temporary file was written beside the target
    assert Path(temp).parent == target.parent and Path(renamed_to) == target.resolve()
    assert listing(tmp_path) == ["link.safetensors", "real"]
    assert listing(tmp_path / "real") == ["model.safetensors"]


def test_save_through_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.safetensors"
    link.symlink_to(tmp_path / "new.safetensors")
    save({"w": edugrad.ones(1)}, link)
    assert link.is_symlink() and load(tmp_path / "new.safetensors")["w"].tolist() == [1.0]


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    return server


@POSIX
@pytest.mark.parametrize("kind, make", [
    ("a folder", lambda p: p.mkdir()),
    ("a FIFO", _fifo),
    ("a socket", _socket),
    ("a character device", lambda p: p.symlink_to("/dev/full")),  # like a copy of /dev/full
])
def test_save_refuses_what_is_not_a_regular_file(tmp_path, kind, make):
    path = tmp_path / "thing"
    keep = make(path)
    before = os.stat(path).st_mode
    with pytest.raises(ValueError, match=f"save: {path} is {kind}.*not a regular file"):
        save({"w": edugrad.ones(2)}, path)
    assert os.stat(path).st_mode == before  # still there, still what it was
    assert listing(tmp_path) == ["thing"]  # and no temporary file
    if keep is not None:
        keep.close()


@POSIX
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o604])
def test_save_keeps_the_files_mode(tmp_path, mode):
    path = tmp_path / "model.safetensors"
    old_checkpoint(path)
    path.chmod(mode)
    save({"w": edugrad.ones(2)}, path)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert load(path)["w"].tolist() == [1.0, 1.0]


@POSIX
def test_a_new_file_gets_the_umasks_mode(tmp_path):
    umask = os.umask(0o027)
    try:
        save({"w": edugrad.ones(2)}, tmp_path / "new.safetensors")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.safetensors").stat().st_mode) == 0o640


@POSIX
@NOT_ROOT
def test_save_refuses_a_read_only_file(tmp_path):
    path = tmp_path / "model.safetensors"
    original = old_checkpoint(path)
    path.chmod(0o444)
    with pytest.raises(PermissionError, match=f"save: {path} is read-only"):
        save({"w": edugrad.ones(2)}, path)
    assert path.read_bytes() == original and listing(tmp_path) == ["model.safetensors"]


@POSIX
@NOT_ROOT
def test_save_into_a_read_only_folder_loses_nothing(tmp_path):
    path = tmp_path / "model.safetensors"
    original = old_checkpoint(path)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match=f"save: cannot write {path}: no file can be "
                                                  f"made in {tmp_path}"):
            save({"w": edugrad.ones(2)}, path)
    finally:
        tmp_path.chmod(0o755)
    assert path.read_bytes() == original and listing(tmp_path) == ["model.safetensors"]


def test_save_into_a_missing_folder_names_the_path(tmp_path):
    path = tmp_path / "missing" / "model.safetensors"
    with pytest.raises(FileNotFoundError, match=f"save: cannot write {path}"):
        save({"w": edugrad.ones(2)}, path)
    assert listing(tmp_path) == []


def test_save_to_an_empty_path_touches_nothing(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    with pytest.raises(ValueError, match="save: the path is empty"):
        save({"w": edugrad.ones(2)}, "")
    with pytest.raises(ValueError, match="load: the path is empty"):
        load("")
    assert listing(tmp_path) == ["work"] and listing(tmp_path / "work") == []


# ---- save: killed in the middle ------------------------------------------------------------------
# The child saves over an existing checkpoint; os.fsync, called once the temporary file is
# complete and before it is renamed, tells the parent so and then waits: the parent then
# signals the child in the middle of its save.
CHILD = r"""
import os, signal, sys, time
import edugrad

path, program_handler = sys.argv[1], sys.argv[2]
received = []
if program_handler == "raises":
    def on_term(signum, frame):
        print("the program's handler ran", flush=True)
        raise SystemExit(3)
    signal.signal(signal.SIGTERM, on_term)
elif program_handler == "returns":
    signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
real_fsync = os.fsync

def fsync_then_wait(fd):
    os.fsync = real_fsync
    print("writing", flush=True)
    give_up = time.monotonic() + 30
    while not received and time.monotonic() < give_up:
        time.sleep(0.02)
    real_fsync(fd)

os.fsync = fsync_then_wait
edugrad.save({"w": edugrad.full((1000,), 7.0)}, path)
print("saved", flush=True)
"""


def start_saving(path: Path, program_handler: str = "none") -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), program_handler],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             # SIGINT as a terminal delivers it, also when pytest itself runs in
                             # the background (`cmd &` starts it with SIGINT ignored)
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    line = child.stdout.readline()
    if line != "writing\n":
        child.kill()
        pytest.fail(f"the child did not start saving: {line!r} {child.communicate()[1]}")
    temporaries = [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert [p.name.split(".")[-3] for p in temporaries] == [str(child.pid)]  # mid-save
    return child


@POSIX
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_in_the_middle_of_a_save_leaves_the_old_file_and_no_temporary(tmp_path,
                                                                               signum):
    path = tmp_path / "model.safetensors"
    original = old_checkpoint(path)
    child = start_saving(path)
    child.send_signal(signum)
    _, err = child.communicate(timeout=60)
    assert child.returncode == -signum, err  # ended by the signal, as without edugrad
    assert path.read_bytes() == original
    assert listing(tmp_path) == ["model.safetensors"]


@POSIX
def test_the_programs_own_signal_handler_still_runs(tmp_path):
    path = tmp_path / "model.safetensors"
    original = old_checkpoint(path)
    child = start_saving(path, "raises")
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 3 and "the program's handler ran" in out, err
    assert path.read_bytes() == original and listing(tmp_path) == ["model.safetensors"]


@POSIX
def test_a_handler_that_returns_lets_the_save_finish(tmp_path):
    path = tmp_path / "model.safetensors"
    old_checkpoint(path)
    child = start_saving(path, "returns")
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0 and out.endswith("saved\n"), err
    assert load(path)["w"].tolist() == [7.0] * 1000 and listing(tmp_path) == ["model.safetensors"]


@POSIX
def test_a_stale_temporary_is_removed_by_the_next_save_a_live_ones_is_not(tmp_path):
    path = tmp_path / "model.safetensors"
    original = old_checkpoint(path)
    child = start_saving(path)
    child.kill()  # SIGKILL: no handler runs, the temporary stays
    child.communicate(timeout=60)
    assert path.read_bytes() == original
    stale = [name for name in listing(tmp_path) if name.endswith(".tmp")]
    assert stale == [name for name in stale if f".{child.pid}." in name] and len(stale) == 1
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        others = [f".model.safetensors.{alive.pid}.{'ab' * 6}.tmp",  # a live process's
                  f".other.safetensors.{child.pid}.{'cd' * 6}.tmp",  # another file's
                  ".model.safetensors.tmp", "model.safetensors.123.abababababab.tmp"]
        for name in others:
            (tmp_path / name).write_bytes(b"not ours to remove")
        save({"w": edugrad.ones(2)}, path)
        assert listing(tmp_path) == sorted(others + ["model.safetensors"])
    finally:
        alive.kill()
        alive.wait()


def test_handlers_are_installed_only_during_the_write_and_then_restored(tmp_path, monkeypatch):
    seen = []

    def program_handler(signum, frame):
        pass

    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: seen.append(signal.getsignal(signal.SIGTERM))
                        or real_fsync(fd))
    previous = signal.signal(signal.SIGTERM, program_handler)
    try:
        save({"w": edugrad.ones(2)}, tmp_path / "a.safetensors")
        assert signal.getsignal(signal.SIGTERM) is program_handler
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen and seen[0] is not program_handler  # edugrad's, for the write only


def test_save_from_a_thread_leaves_the_handlers_alone(tmp_path, monkeypatch):
    seen, errors = [], []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: seen.append(signal.getsignal(signal.SIGTERM))
                        or real_fsync(fd))
    before = signal.getsignal(signal.SIGTERM)

    def work():
        try:
            save({"w": edugrad.ones(2)}, tmp_path / "a.safetensors")
        except Exception as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == [] and seen and all(handler is before for handler in seen)
    assert load(tmp_path / "a.safetensors")["w"].tolist() == [1.0, 1.0]


# ---- save: objects it cannot store ---------------------------------------------------------------
def test_a_dict_that_contains_itself_is_a_value_error_naming_the_key(tmp_path):
    inner = {"step": 1}
    inner["again"] = {"loop": inner}
    path = tmp_path / "x.safetensors"
    with pytest.raises(ValueError, match=f"save: {path}: the dict at 'state.again.loop' is the "
                                         "one at 'state': it contains itself"):
        save({"state": inner}, path)
    cycle = [1]
    cycle.append(cycle)
    with pytest.raises(ValueError, match="the list at 'xs.1' is the one at 'xs'"):
        save({"xs": cycle}, path)
    assert listing(tmp_path) == []


def test_nesting_deeper_than_the_limit_is_a_value_error(tmp_path):
    deep = node = {}
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(ValueError, match=f"deeper than {serialization.MAX_DEPTH}"):
        save({"deep": deep}, tmp_path / "x.safetensors")
    assert listing(tmp_path) == []


def test_nesting_up_to_the_limit_round_trips(tmp_path):
    value = edugrad.ones(1)
    for i in range(serialization.MAX_DEPTH - 1):  # int keys: the structure's deepest encoding
        value = {i: value}
    path = tmp_path / "x.safetensors"
    save({"deep": value}, path)
    loaded = load(path)["deep"]
    for i in reversed(range(serialization.MAX_DEPTH - 1)):
        loaded = loaded[i]
    assert loaded.tolist() == [1.0]
    with pytest.raises(ValueError, match="nests dicts, lists and tuples deeper than"):
        save({"deep": [value]}, path)


# ---- load: what is at the path -------------------------------------------------------------------
def load_within(path, seconds: float = 10):
    """load(path) in a thread, so that a load that blocks fails the test instead of hanging."""
    outcome = {}

    def work():
        try:
            outcome["value"] = load(path)
        except BaseException as error:  # noqa: BLE001  (returned to the test)
            outcome["error"] = error

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        with open(path, "wb"):  # unblock a FIFO's reader, then fail
            pass
        pytest.fail(f"load({path}) was still blocked after {seconds} s")
    return outcome


@POSIX
@pytest.mark.parametrize("kind, make", [
    ("a FIFO", _fifo), ("a folder", lambda p: p.mkdir()),
    ("a character device", lambda p: p.symlink_to("/dev/zero")),
])
def test_load_refuses_what_is_not_a_regular_file(tmp_path, kind, make):
    path = tmp_path / "thing"
    make(path)
    error = load_within(path).get("error")
    assert isinstance(error, ValueError) and f"load: {path} is {kind}" in str(error), error


def test_load_checks_the_sizes_before_reading_any_tensor(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    save({"a": edugrad.ones(1000), "b": edugrad.ones(3)}, path)
    data = path.read_bytes()

    def read_tensor(*args):
        raise AssertionError("a tensor was read before the sizes were checked")

    monkeypatch.setattr(serialization, "_read_tensor", read_tensor)
    for cut in (data[:-1], data + b"\0"):
        path.write_bytes(cut)
        with pytest.raises(ValueError, match="the tensors cover 4012 bytes"):
            load(path)


# getrusage's ru_maxrss is no use here: a child started by fork and exec begins with the
# parent's peak. The kernel's own peak of the child, VmHWM, is reset after the imports.
LINUX = pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="reads /proc "
                           "(Linux)")
MEASURE = r"""
import sys
import edugrad

def status(field):  # in bytes; /proc/self/status gives kB
    line = next(line for line in open("/proc/self/status") if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024

with open("/proc/self/clear_refs", "w") as file:
    file.write("5")  # reset the peak (VmHWM) to the current size
before = status("VmRSS")
state = edugrad.load(sys.argv[1])
print(before, status("VmHWM"), sum(t.numel() * 4 for t in state.values()))
"""


@LINUX
def test_load_peaks_at_about_one_file_of_memory(tmp_path):
    """A 160 MB checkpoint: before, load read the file and then copied it (2x)."""
    count, size = 8, 5_000_000  # eight float32 tensors of 20 MB
    header = {f"layer{i}.weight": {"dtype": "F32", "shape": [size],
                                   "data_offsets": [4 * size * i, 4 * size * (i + 1)]}
              for i in range(count)}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path = tmp_path / "big.safetensors"
    with open(path, "wb") as file:  # the tensors are zeros: a sparse file, written at once
        file.write(len(text).to_bytes(8, "little") + text)
        file.truncate(8 + len(text) + 4 * size * count)
    try:
        result = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        before, peak, loaded = map(int, result.stdout.split())
        file_size = path.stat().st_size
        assert loaded == 4 * size * count
        assert peak - before < 1.4 * file_size, f"peak grew {(peak - before) / file_size:.2f}x"
    finally:
        path.unlink()


# ---- load: crafted headers -----------------------------------------------------------------------
def craft(path, header, buffer: bytes = b"") -> None:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    Path(path).write_bytes(len(text).to_bytes(8, "little") + text + buffer)


F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
DEEP = "[" * 5000 + "]" * 5000
CRAFTED = [
    ("dtype_list", {"w": {**F32, "dtype": ["F32"]}}, "tensor 'w' has dtype \\['F32'\\]"),
    ("dtype_dict", {"w": {**F32, "dtype": {"F32": 1}}}, "tensor 'w' has dtype"),
    ("dtype_number", {"w": {**F32, "dtype": 7}}, "tensor 'w' has dtype 7"),
    ("nested_5000_deep", b'{"w": ' + DEEP.encode() + b"}",
     "the header nests deeper than 3 levels under the key 'w'"),
    ("nested_in_an_entry", b'{"w": {"dtype": "F32", "shape": ' + DEEP.encode() + b"}}",
     "the header nests deeper than 3 levels under the key 'w'"),
    ("structure_5000_deep", {"__metadata__": {"edugrad.structure": '{"m":' + DEEP + "}"}},
     "__metadata__\\['edugrad.structure'\\] nests deeper than .* under the key 'm'"),
    ("shape_2_to_the_63", {"w": {"dtype": "F32", "shape": [0, 2 ** 63], "data_offsets": [0, 0]}},
     "tensor 'w' has shape \\[0, 9223372036854775808\\]: too large"),
    ("shape_huge_product", {"w": {"dtype": "F32", "shape": [0, 2 ** 40, 2 ** 40],
                                  "data_offsets": [0, 0]}}, "tensor 'w' has shape .* too large"),
    ("70_dims", {"w": {"dtype": "F32", "shape": [1] * 70, "data_offsets": [0, 4]}},
     "tensor 'w' has 70 dims; edugrad reads at most 32"),
    ("shape_of_floats", {"w": {**F32, "shape": [2.0]}}, "tensor 'w' has shape \\[2.0\\]"),
    ("shape_not_a_list", {"w": {**F32, "shape": "2"}}, "tensor 'w' has shape '2'"),
    ("offsets_of_strings", {"w": {**F32, "data_offsets": ["0", "8"]}},
     "tensor 'w' has data_offsets"),
    ("unterminated_string", b'{"w": "' + b'\\"' * 100_000 + b"\\", "not valid JSON"),
    ("structure_not_a_dict", {"__metadata__": {"edugrad.structure": "[1, 2]"}},
     "__metadata__\\['edugrad.structure'\\] is a list, not a dict"),
    ("structure_tensor_name_a_list",
     {"__metadata__": {"edugrad.structure": '{"x": {"__tensor__": [1]}}'}},
     "refers to tensor \\[1\\]"),
]


@pytest.mark.parametrize("name, header, match", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_headers_are_a_value_error_naming_the_file_and_the_key(tmp_path, name, header,
                                                                       match):
    path = tmp_path / f"{name}.safetensors"
    buffer = b"\0" * 8 if isinstance(header, dict) and header.get("w") is not None else b""
    craft(path, header, buffer)
    with pytest.raises(ValueError, match=match) as info:
        load(path)
    assert str(info.value).startswith(f"load: {path}")


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats()
                    | st.text(max_size=4),
                    lambda children: st.lists(children, max_size=3)
                    | st.dictionaries(st.text(max_size=4), children, max_size=3), max_leaves=8)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["dtype", "shape", "data_offsets", "__metadata__", "entry"]),
       value=JSON)
def test_any_header_value_is_read_or_refused_with_a_value_error(tmp_path, field, value):
    header = {"w": dict(F32)}
    if field == "__metadata__":
        header["__metadata__"] = value
    elif field == "entry":
        header["w"] = value
    else:
        header["w"][field] = value
    path = tmp_path / "fuzz.safetensors"
    craft(path, header, b"\0" * 8)
    try:
        load(path)
    except ValueError as error:
        assert str(error).startswith(f"load: {path}")


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(1, 255)), min_size=1,
                      max_size=4))
@example(flips=[(2113, 1), (58484, 64)])  # a key broken into a bad escape, then nested deep
def test_a_corrupted_file_is_read_or_refused_with_a_value_error(tmp_path, flips):
    path = tmp_path / "corrupt.safetensors"
    save({"epoch": 3, "model": {"w": edugrad.ones(2, 3), "b": edugrad.tensor([True, False])},
          "betas": (0.9, 0.99)}, path)
    data = bytearray(path.read_bytes())
    for position, mask in flips:
        data[position % len(data)] ^= mask
    path.write_bytes(bytes(data))
    try:
        load(path)
    except ValueError as error:
        assert str(error).startswith(f"load: {path}")
