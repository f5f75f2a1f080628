"""Tests for the MNIST data layer, applications/mnist.py: IDX reading and writing, the bundled
copy, and the download path against a local HTTP server (127.0.0.1 only, no internet).

The module is loaded from its file: applications/ is a folder of scripts, not a package, and
the data layer must work without edugrad installed.
"""

from __future__ import annotations

import ast
import errno
import gzip
import hashlib
import http.server
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MNIST_PATH = REPO_ROOT / "applications" / "mnist.py"
_spec = importlib.util.spec_from_file_location("edugrad_applications_mnist", MNIST_PATH)
mnist = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mnist)


AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# read_idx / write_idx


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    mnist.write_idx(tmp_path / name, array)
    back = mnist.read_idx(tmp_path / name)
    assert back.shape == array.shape and back.dtype == array.dtype
    assert back.dtype.isnative and back.flags.writeable
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("shape", [(7,), (0,), (2, 0, 3), (1, 1, 1, 1, 2)])
def test_idx_round_trip_shapes(tmp_path, shape):
    array = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    mnist.write_idx(tmp_path / "a.idx", array)
    back = mnist.read_idx(tmp_path / "a.idx")
    assert back.shape == shape and back.dtype == np.int32
    np.testing.assert_array_equal(back, array)


def test_read_idx_matches_the_format_by_hand(tmp_path):
    # Written byte by byte from the format description, independently of write_idx.
    header = bytes([0, 0, 0x0C, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    values = b"".join(v.to_bytes(4, "big", signed=True) for v in [1, -2, 3, 70000, 5, -6])
    (tmp_path / "a.idx").write_bytes(header + values)
    back = mnist.read_idx(tmp_path / "a.idx")
    assert back.shape == (2, 3) and back.dtype == np.int32
    np.testing.assert_array_equal(back, [[1, -2, 3], [70000, 5, -6]])


def test_gzip_is_detected_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    mnist.write_idx(tmp_path / "real.gz", array)
    mnist.write_idx(tmp_path / "plain.idx", array)
    (tmp_path / "gzipped-but-named.idx").write_bytes((tmp_path / "real.gz").read_bytes())
    (tmp_path / "plain-but-named.gz").write_bytes((tmp_path / "plain.idx").read_bytes())
    for name in ["gzipped-but-named.idx", "plain-but-named.gz"]:
        np.testing.assert_array_equal(mnist.read_idx(tmp_path / name), array)


def test_write_idx_is_byte_reproducible(tmp_path):
    array = np.arange(784 * 3, dtype=np.int64).reshape(3, 28, 28) % 256
    mnist.write_idx(tmp_path / "one.gz", array.astype(np.uint8))
    mnist.write_idx(tmp_path / "other-name.gz", array.astype(np.uint8))
    assert (tmp_path / "one.gz").read_bytes() == (tmp_path / "other-name.gz").read_bytes()


@pytest.mark.parametrize("array", [np.zeros(3, bool), np.zeros(3, np.int64), np.float32(1)])
def test_write_idx_rejects_what_idx_cannot_hold(tmp_path, array):
    with pytest.raises(ValueError, match="write_idx"):
        mnist.write_idx(tmp_path / "a.idx", array)


def _valid_idx() -> bytes:
    return bytes([0, 0, 0x08, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(6)


MALFORMED = {
    "empty": (b"", "too short"),
    "three bytes": (b"\x00\x00\x08", "too short"),
    "wrong magic": (b"\x08\x03" + _valid_idx()[2:], "not an IDX file"),
    "unknown dtype": (bytes([0, 0, 0x0A, 1]) + (1).to_bytes(4, "big") + b"x", "dtype code 0x0a"),
    "zero dimensions": (bytes([0, 0, 0x08, 0]), "0 dimensions"),
    "truncated header": (_valid_idx()[:9], "truncated header"),
    "truncated data": (_valid_idx()[:-1], "size mismatch \\(truncated\\)"),
    "trailing bytes": (_valid_idx() + b"\x00", "size mismatch \\(trailing bytes\\)"),
    "gzipped, truncated data": (gzip.compress(_valid_idx()[:-2]), "size mismatch"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_idx_raises_naming_the_file(tmp_path, case):
    data, why = MALFORMED[case]
    path = tmp_path / f"{case.replace(' ', '_')}.idx"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=re.escape(str(path))) as info:
        mnist.read_idx(path)
    assert re.search(why, str(info.value)), str(info.value)


def test_corrupt_or_truncated_gzip_raises_naming_the_file(tmp_path):
    good = gzip.compress(_valid_idx() * 50)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good[: len(good) // 2])
    flipped = bytearray(good)
    flipped[12:20] = bytes(b ^ 0xFF for b in flipped[12:20])
    bad = tmp_path / "flipped.gz"
    bad.write_bytes(bytes(flipped))
    for path in [cut, bad]:
        with pytest.raises(ValueError, match=re.escape(str(path)) + ".*gzip"):
            mnist.read_idx(path)


def test_mnist_module_does_not_import_edugrad():
    tree = ast.parse(MNIST_PATH.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not [name for name in imported if name.split(".")[0] == "edugrad"]


# ---------------------------------------------------------------------------------------------
# The bundled copy


def test_bundled_shapes_dtypes_and_balance():
    train_images, train_labels, test_images, test_labels = mnist.load_bundled()
    assert train_images.shape == (5000, 28, 28) and train_images.dtype == np.uint8
    assert train_labels.shape == (5000,) and train_labels.dtype == np.uint8
    assert test_images.shape == (10000, 28, 28) and test_images.dtype == np.uint8
    assert test_labels.shape == (10000,) and test_labels.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(train_labels, minlength=10), [500] * 10)
    assert set(np.unique(test_labels).tolist()) == set(range(10))
    # The published class counts of the official test set.
    expected = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    np.testing.assert_array_equal(np.bincount(test_labels, minlength=10), expected)
    assert 0 < train_images.mean() < 255 and test_images.max() == 255


def test_bundled_test_set_is_the_official_bytes():
    for name in mnist.BUNDLED_FILES[2:]:
        assert sha256((mnist.BUNDLED_DIR / name).read_bytes()) == mnist.SHA256[name]


def test_bundled_readme_lists_each_file_with_its_sha256_and_size():
    readme = (mnist.BUNDLED_DIR / "README.md").read_text()
    for name in mnist.BUNDLED_FILES:
        data = (mnist.BUNDLED_DIR / name).read_bytes()
        row = f"| {name} |"
        line = next((line for line in readme.splitlines() if line.startswith(row)), None)
        assert line is not None, f"README.md has no table row for {name}"
        assert sha256(data) in line and f"| {len(data)} |" in line, line


def test_bundled_loads_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert mnist.load_bundled()[1].shape == (5000,)


# ---------------------------------------------------------------------------------------------
# Downloading, against a local server
#
# One server on 127.0.0.1 plays several mirrors: the first path segment says how it behaves.
#   good/NAME       the file
#   corrupt/NAME    the file with bytes flipped (right length, wrong sha256)
#   truncated/NAME  announces the full length, sends half, hangs up
#   missing/NAME    404
#   broken/NAME     500
#   slow/NAME       waits (until the test ends) before answering
#   trickle/NAME    sends the headers, then the body at 2 bytes a second
#   trickle-headers/NAME   sends everything, status line and headers too, at 2 bytes a second


class MirrorServer:
    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[str] = []
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                mode, _, name = self.path.lstrip("/").partition("/")
                data = server.files.get(name)
                if data is None or mode == "missing":
                    return self.send_error(404)
                if mode == "broken":
                    return self.send_error(500)
                if mode == "slow":
                    server.release.wait(timeout=5)
                if mode.startswith("trickle"):
                    return self.trickle(data, headers_too=mode == "trickle-headers")
                if mode == "corrupt":
                    data = data[:100] + bytes(b ^ 0xFF for b in data[100:110]) + data[110:]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if mode == "truncated" else data)

            def trickle(self, data: bytes, headers_too: bool):
                """Two bytes a second, of the body, or of everything from the status line on."""
                head = (f"HTTP/1.0 200 OK\r\nContent-Length: {len(data)}\r\n"
                        f"X-Padding: {'x' * 200}\r\n\r\n").encode()
                if headers_too:
                    data = head + data
                else:
                    self.wfile.write(head)
                for start in range(0, len(data), 2):
                    if server.release.wait(1.0):
                        return  # the test is over
                    try:
                        self.wfile.write(data[start:start + 2])
                    except OSError:
                        return  # the client gave up

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *args: None  # clients hanging up on "slow" is expected
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def mirror(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{mode}/"

    def count(self, mode: str) -> int:
        return sum(path.startswith(f"/{mode}/") for path in self.requests)

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def served():
    """The bundled files under the official names: the 5k subset plays the training set."""
    contents = [(mnist.BUNDLED_DIR / name).read_bytes() for name in mnist.BUNDLED_FILES]
    return dict(zip(mnist.OFFICIAL_FILES, contents))


@pytest.fixture
def server(served):
    server = MirrorServer(served)
    yield server
    server.close()


@pytest.fixture(scope="module")
def hashes(served):
    return {name: sha256(data) for name, data in served.items()}


@pytest.fixture
def dead_mirror():
    """A port on 127.0.0.1 that is bound but not listening, so connecting is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/mnist/"
    sock.close()


def fetch(cache, hashes, mirrors, retries=2, timeout=5.0, log=None):
    return mnist.load_full(cache, mirrors=mirrors, retries=retries, timeout=timeout, backoff=0.0,
                           hashes=hashes, log=log)


def cache_listing(cache: Path) -> list[str]:
    return sorted(path.name for path in cache.iterdir())


def assert_cache_is_exactly_the_files(cache, hashes):
    assert cache_listing(cache) == sorted(mnist.OFFICIAL_FILES)  # no .part leftovers
    for name in mnist.OFFICIAL_FILES:
        assert sha256((cache / name).read_bytes()) == hashes[name]


def test_download_fills_the_cache(tmp_path, server, hashes):
    cache = tmp_path / "new" / "cache"
    train_images, train_labels, test_images, test_labels = fetch(
        cache, hashes, [server.mirror("good")])
    assert train_images.shape == (5000, 28, 28) and train_images.dtype == np.uint8
    assert test_labels.shape == (10000,) and test_labels.dtype == np.uint8
    bundled = mnist.load_bundled()
    for got, want in zip((train_images, train_labels, test_images, test_labels), bundled):
        np.testing.assert_array_equal(got, want)
    assert server.count("good") == 4
    assert_cache_is_exactly_the_files(cache, hashes)


def test_corrupt_mirror_is_rejected_and_the_next_one_used(tmp_path, server, hashes):
    log = []
    fetch(tmp_path, hashes, [server.mirror("corrupt"), server.mirror("good")], log=log.append)
    assert_cache_is_exactly_the_files(tmp_path, hashes)
    assert any("sha256 mismatch" in line for line in log)
    # A hash mismatch is not retried on the same mirror, and the mirror that worked is tried
    # first for the remaining files.
    assert server.count("corrupt") == 1 and server.count("good") == 4


def test_truncated_download_leaves_no_partial_file(tmp_path, server, hashes):
    fetch(tmp_path, hashes, [server.mirror("truncated"), server.mirror("good")], retries=2)
    assert_cache_is_exactly_the_files(tmp_path, hashes)
    assert server.count("truncated") == 2  # a dropped connection may be transient: retried


def test_dead_mirror_falls_over_to_the_next(tmp_path, server, hashes, dead_mirror):
    log = []
    fetch(tmp_path, hashes, [dead_mirror, server.mirror("good")], log=log.append)
    assert_cache_is_exactly_the_files(tmp_path, hashes)
    assert sum(line.startswith(f"mnist: downloading {dead_mirror}") for line in log) == 2


def test_slow_mirror_times_out_and_falls_over(tmp_path, server, hashes):
    fetch(tmp_path, hashes, [server.mirror("slow"), server.mirror("good")], retries=1,
          timeout=0.3)
    assert_cache_is_exactly_the_files(tmp_path, hashes)


def test_server_errors_are_retried_client_errors_are_not(tmp_path, server, hashes):
    mirrors = [server.mirror("missing"), server.mirror("broken"), server.mirror("good")]
    fetch(tmp_path, hashes, mirrors, retries=3)
    assert server.count("missing") == 1 and server.count("broken") == 3


def test_cached_files_are_not_downloaded_again(tmp_path, server, hashes):
    fetch(tmp_path, hashes, [server.mirror("good")])
    assert server.count("good") == 4
    fetch(tmp_path, hashes, [server.mirror("good")])
    assert server.count("good") == 4


def test_cached_file_with_a_wrong_hash_is_fetched_again(tmp_path, server, hashes):
    name = mnist.OFFICIAL_FILES[1]
    (tmp_path / name).write_bytes(b"not the labels")
    log = []
    fetch(tmp_path, hashes, [server.mirror("good")], log=log.append)
    assert_cache_is_exactly_the_files(tmp_path, hashes)
    assert any("fetching it again" in line for line in log)
    assert server.count("good") == 4
    fetch(tmp_path, hashes, [server.mirror("good")])
    assert server.count("good") == 4


def test_all_mirrors_bad_names_each_mirror_and_why(tmp_path, server, hashes, dead_mirror):
    mirrors = [dead_mirror, server.mirror("corrupt"), server.mirror("missing"),
               server.mirror("broken")]
    with pytest.raises(mnist.DownloadError) as info:
        fetch(tmp_path, hashes, mirrors, retries=2)
    message = str(info.value)
    first = mnist.OFFICIAL_FILES[0]
    assert f"could not download {first}" in message
    for mirror in mirrors:
        assert mirror + first in message
    assert "refused" in message.lower()
    assert "sha256 mismatch" in message and "HTTP 404" in message
    assert "HTTP 500" in message and "after 2 attempts" in message
    assert [url for url, _ in info.value.failures] == [mirror + first for mirror in mirrors]
    assert cache_listing(tmp_path) == []


def test_bad_arguments_raise_before_any_request(tmp_path, server, hashes):
    good = [server.mirror("good")]
    cases = [
        dict(mirrors=good, retries=0),
        dict(mirrors=good, timeout=0),
        dict(mirrors=good, backoff=-1),
        dict(mirrors=[]),
        dict(mirrors=["ftp://127.0.0.1/mnist/"]),
        dict(mirrors=good, files=mnist.OFFICIAL_FILES[:3]),
        dict(mirrors=good, files=("../escape.gz",) + mnist.OFFICIAL_FILES[1:]),
        dict(mirrors=good, hashes={}),
        dict(mirrors=good, hashes={name: "abc" for name in mnist.OFFICIAL_FILES}),
    ]
    for case in cases:
        kwargs = dict(hashes=hashes, backoff=0.0) | case
        with pytest.raises(ValueError):
            mnist.load_full(tmp_path, **kwargs)
    with pytest.raises(TypeError, match="not the str"):
        mnist.load_full(tmp_path, mirrors=server.mirror("good"), hashes=hashes)
    assert server.requests == []


def test_default_cache_dir_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(mnist.CACHE_DIR_ENV, raising=False)
    assert mnist.default_cache_dir() == Path.home() / ".cache" / "edugrad" / "mnist"
    monkeypatch.setenv(mnist.CACHE_DIR_ENV, str(tmp_path / "data"))
    assert mnist.default_cache_dir() == tmp_path / "data"


def test_cache_dir_defaults_to_the_environment(monkeypatch, tmp_path, server, hashes):
    monkeypatch.setenv(mnist.CACHE_DIR_ENV, str(tmp_path / "env-cache"))
    mnist.load_full(mirrors=[server.mirror("good")], hashes=hashes, backoff=0.0)
    assert_cache_is_exactly_the_files(tmp_path / "env-cache", hashes)


# ---------------------------------------------------------------------------------------------
# A gzip bomb: a small file whose header, or whose data, would decompress to gigabytes


def idx_header(shape) -> bytes:
    return bytes([0, 0, 0x08, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)


def zeros_gzipped(megabytes: int) -> bytes:
    """`megabytes` MB of zeros as gzip members (a file may hold several, read one after the
    other): 1 GB costs 1 MB of file and a fraction of a second to build."""
    member = gzip.compress(bytes(16 * 2**20), compresslevel=9)
    return member * (megabytes // 16)


def peak_memory_of(action) -> int:
    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_header_declaring_gigabytes_is_refused_before_decompressing(tmp_path):
    path = tmp_path / "bomb-images-idx3-ubyte.gz"  # the issue's: 2,551,020 images from 1.9 MB
    path.write_bytes(gzip.compress(idx_header((2551020, 28, 28))) + zeros_gzipped(1024))
    for kwargs, why in [({}, "more than max_bytes=268435456"),
                        (dict(shape=(None, 28, 28), max_bytes=mnist.MNIST_MAX_BYTES),
                         f"more than max_bytes={mnist.MNIST_MAX_BYTES}")]:
        with pytest.raises(ValueError, match=re.escape(str(path)) + ".*(2551020, 28, 28)") as info:
            assert peak_memory_of(lambda: mnist.read_idx(path, **kwargs)) < 2**20
        assert why in str(info.value) and "the data was not read" in str(info.value)


def test_data_beyond_the_declared_size_is_not_decompressed(tmp_path):
    path = tmp_path / "small-header-huge-data.gz"
    path.write_bytes(gzip.compress(idx_header((10, 28, 28)) + bytes(7840)) + zeros_gzipped(1024))
    errors = []

    def read():
        try:
            mnist.read_idx(path, shape=(None, 28, 28))
        except ValueError as error:
            errors.append(str(error))

    assert peak_memory_of(read) < 2**20  # 1 GB of zeros behind it, never unpacked
    assert errors and "size mismatch (trailing bytes)" in errors[0] and str(path) in errors[0]


def test_a_header_of_the_wrong_shape_is_refused_before_reading(tmp_path):
    path = tmp_path / "wrong.idx.gz"
    mnist.write_idx(path, np.zeros((3, 27, 28), np.uint8))
    with pytest.raises(ValueError, match=r"declares shape \(3, 27, 28\), expected \(N, 28, 28\)"):
        mnist.read_idx(path, shape=(None, 28, 28))
    with pytest.raises(ValueError, match=r"declares shape \(3, 27, 28\), expected \(N,\)"):
        mnist.read_idx(path, shape=(None,))
    assert mnist.read_idx(path, shape=(3, None, 28)).shape == (3, 27, 28)


def test_the_loaders_cap_what_they_read(tmp_path, server, served):
    """load_full on a cache whose (hash-matching) image file is a bomb: refused by its header."""
    bomb = gzip.compress(idx_header((2551020, 28, 28))) + zeros_gzipped(256)
    files = dict(served, **{mnist.OFFICIAL_FILES[0]: bomb})
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    hashes = {name: sha256(data) for name, data in files.items()}
    with pytest.raises(ValueError, match="declares shape \\(2551020, 28, 28\\).*max_bytes"):
        mnist.load_full(tmp_path, mirrors=[server.mirror("good")], hashes=hashes)
    assert server.requests == []  # everything came from the cache


# ---------------------------------------------------------------------------------------------
# Downloads that would never end, local errors, killed downloads


def test_a_trickling_mirror_is_dropped_at_the_deadline(tmp_path, server, hashes):
    log = []
    started = time.monotonic()
    mnist.load_full(tmp_path, mirrors=[server.mirror("trickle"), server.mirror("good")],
                    hashes=hashes, retries=2, timeout=5.0, backoff=0.0, deadline=1.0,
                    min_rate=0.0, log=log.append)
    assert time.monotonic() - started < 8  # one second on the trickle, then the good mirror
    assert_cache_is_exactly_the_files(tmp_path, hashes)
    assert any("not done after the deadline of 1 s" in line for line in log), log
    assert server.count("trickle") == 1  # a slow mirror is not retried


def test_a_mirror_below_the_minimum_rate_is_dropped(tmp_path, server, hashes):
    started = time.monotonic()
    # timeout=1.5: each read gets the next two bytes (they come every second); the rate is
    # checked from then on
    with pytest.raises(mnist.DownloadError, match="too slow: .* below min_rate=1000"):
        mnist.load_full(tmp_path, mirrors=[server.mirror("trickle")], hashes=hashes, retries=1,
                        timeout=1.5, backoff=0.0, deadline=60.0, min_rate=1000.0)
    assert time.monotonic() - started < 6
    assert cache_listing(tmp_path) == []


def test_trickled_headers_meet_the_deadline_too(tmp_path, server, hashes):
    started = time.monotonic()
    with pytest.raises(mnist.DownloadError, match="not done after the deadline of 1 s"):
        mnist.load_full(tmp_path, mirrors=[server.mirror("trickle-headers")], hashes=hashes,
                        retries=1, timeout=5.0, backoff=0.0, deadline=1.0, min_rate=0.0)
    assert time.monotonic() - started < 5
    assert cache_listing(tmp_path) == []


def test_a_folder_where_a_file_goes_is_a_local_error_before_any_request(tmp_path, server,
                                                                        hashes):
    (tmp_path / mnist.OFFICIAL_FILES[0]).mkdir()
    with pytest.raises(mnist.CacheError, match=f"{tmp_path / mnist.OFFICIAL_FILES[0]} is not "
                                               "a file") as info:
        fetch(tmp_path, hashes, [server.mirror("good")])
    assert isinstance(info.value, OSError) and server.requests == []
    (tmp_path / "not-a-folder").write_text("")
    with pytest.raises(mnist.CacheError, match="cannot create the cache"):
        fetch(tmp_path / "not-a-folder" / "cache", hashes, [server.mirror("good")])


def test_a_full_disk_is_a_local_error_raised_at_once(tmp_path, server, hashes, monkeypatch):
    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(mnist.os, "fsync", disk_full)
    with pytest.raises(mnist.CacheError, match="cannot write .*No space left on device") as info:
        fetch(tmp_path, hashes, [server.mirror("good"), server.mirror("good2")], retries=3)
    assert info.value.errno == errno.ENOSPC
    assert server.requests == [f"/good/{mnist.OFFICIAL_FILES[0]}"]  # no retry, no other mirror
    assert cache_listing(tmp_path) == []


@pytest.mark.skipif(AS_ROOT, reason="root may write into a read-only folder")
def test_a_read_only_cache_is_a_local_error_before_any_request(tmp_path, server, hashes):
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(mnist.CacheError, match="Permission denied"):
            fetch(tmp_path, hashes, [server.mirror("good")])
    finally:
        tmp_path.chmod(0o755)
    assert server.requests == [] and cache_listing(tmp_path) == []


DOWNLOADER = r"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("mnist_under_test", sys.argv[1])
mnist = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mnist)
name, digest = sys.argv[4], sys.argv[5]
mnist.download(sys.argv[2], files=[name], hashes={name: digest}, mirrors=[sys.argv[3]],
               retries=1, timeout=30.0)
"""


def default_signals() -> None:
    """In the child before it starts: SIGINT as a terminal would deliver it. A test run started
    in the background (`cmd &`) inherits SIGINT ignored, and the downloader rightly leaves an
    ignored signal alone, which would make the SIGINT case pass or fail by how pytest ran."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.skipif(os.name != "posix", reason="signals are POSIX")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_in_the_middle_of_a_download_leaves_no_part_file(tmp_path, server, hashes,
                                                                  signum):
    name = mnist.OFFICIAL_FILES[1]
    child = subprocess.Popen([sys.executable, "-c", DOWNLOADER, str(MNIST_PATH), str(tmp_path),
                              server.mirror("slow"), name, hashes[name]],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=default_signals)
    try:
        give_up = time.monotonic() + 30
        while not (server.count("slow") and cache_listing(tmp_path)):  # waiting for the reply
            assert time.monotonic() < give_up and child.poll() is None, child.stderr.read()
            time.sleep(0.02)
        part, = cache_listing(tmp_path)
        assert part.startswith(f".{name}.{child.pid}.") and part.endswith(".part")
        child.send_signal(signum)
        _, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == -signum, err
    assert cache_listing(tmp_path) == []


def test_the_next_download_removes_stale_part_files_only(tmp_path, server, hashes):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    name = mnist.OFFICIAL_FILES[0]
    stale = f".{name}.{dead}.{'ab' * 6}.part"
    kept = [f".{name}.{alive.pid}.{'cd' * 6}.part",  # a live process's download
            f".{name}.abcdefgh.part", f"{name}.{dead}.{'ab' * 6}.part", "notes.txt"]
    try:
        for leftover in [stale] + kept:
            (tmp_path / leftover).write_bytes(b"partial")
        fetch(tmp_path, hashes, [server.mirror("good")])
    finally:
        alive.kill()
        alive.wait()
    assert cache_listing(tmp_path) == sorted(kept + list(mnist.OFFICIAL_FILES))


def test_deadline_and_min_rate_are_checked(tmp_path, server, hashes):
    for bad in [dict(deadline=0), dict(deadline=-1.0), dict(min_rate=-1.0)]:
        with pytest.raises(ValueError, match=next(iter(bad))):
            mnist.load_full(tmp_path, mirrors=[server.mirror("good")], hashes=hashes, **bad)
    assert server.requests == []
