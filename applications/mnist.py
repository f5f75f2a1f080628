"""MNIST data for the applications: read IDX files, load the bundled copy, download the rest.

Layer: applications, outside the library. This module imports only the standard library and
NumPy, never edugrad, so the data layer can be read, tested and reused on its own; the training
script (`learn_mnist.py`) turns the arrays it returns into Tensors.

Three ways in:

- `read_idx(path)` parses one IDX file, the format MNIST is distributed in, gzipped or not.
- `load_bundled()` returns the copy committed with the repository: 5,000 training images
  (500 per class) and the official 10,000-image test set. No network needed.
- `load_full(cache_dir)` downloads the official 60,000 + 10,000 once into a cache, checking
  each file against a known SHA-256, and returns them.

The IDX format (http://yann.lecun.com/exdb/mnist/, "file formats"); integers are big-endian:

    offset   bytes  meaning
    0        2      zero
    2        1      dtype code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                    0x0D float32, 0x0E float64
    3        1      number of dimensions, d
    4        4*d    the size of each dimension, uint32
    4 + 4*d  ...    the values, row-major (last index fastest), big-endian

For example the test labels begin `00 00 08 01 00 00 27 10`: uint8, one dimension, 10000 long.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import http.client
import io
import math
import os
import re
import secrets
import signal
import socket
import stat
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np

IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"

# The official distribution, in the order load_full returns it.
OFFICIAL_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# SHA-256 of the gzipped files as published (the same bytes on every mirror below).
SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
# Tried in order. Plain http is acceptable for the last one because every byte is checked
# against SHA256 before it is used.
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# The bundled copy, found next to this file so that it loads from any working directory.
BUNDLED_DIR = Path(__file__).resolve().parent / "data" / "mnist"
BUNDLED_FILES = (
    "train-5k-images-idx3-ubyte.gz",
    "train-5k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# `~` is expanded when used, in default_cache_dir(), not at import.
DEFAULT_CACHE_DIR = Path("~/.cache/edugrad/mnist")
CACHE_DIR_ENV = "EDUGRAD_DATA_DIR"

# read_idx reads at most this many data bytes unless told otherwise: far more than MNIST's
# largest file decompressed, far less than what a small gzip bomb would unpack to.
MAX_IDX_BYTES = 2**28
MNIST_MAX_BYTES = 60_000 * 28 * 28  # the official training images, the largest file

# The largest MNIST file is 9.9 MB; a mirror sending more is not sending MNIST, and the cap
# keeps the download loop bounded.
MAX_DOWNLOAD_BYTES = 64 * 2**20
CHUNK_BYTES = 2**16
USER_AGENT = "edugrad-mnist/0.1 (python urllib)"


# ---------------------------------------------------------------------------------------------
# IDX files


def read_idx(path: str | os.PathLike, shape: tuple | None = None,
             max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read one IDX file into a new, writable NumPy array in native byte order.

    The file may be gzipped; that is detected from its first two bytes, not its name. `shape`,
    when given, is what the header must declare, None standing for any size: `(None, 28, 28)`
    for MNIST's images. The header is checked against it and against `max_bytes` before any
    data is read, and reading stops one byte after the size the header promises: a small gzip
    file that would decompress to gigabytes (a "gzip bomb") is refused after a few bytes.

    A wrong magic number, an unknown dtype code, zero dimensions, a truncated header, a shape
    other than `shape` or larger than `max_bytes`, or data shorter or longer than the header
    says raises ValueError naming the file, as does a corrupt or truncated gzip stream. A
    missing file raises FileNotFoundError as usual.

    >>> read_idx("t10k-labels-idx1-ubyte.gz", shape=(None,)).shape    # doctest: +SKIP
    (10000,)
    """
    with open(path, "rb") as file:
        gzipped = file.read(2) == GZIP_MAGIC
        file.seek(0)
        if not gzipped:
            return _read_idx_stream(file, path, shape, max_bytes)
        try:
            with gzip.GzipFile(fileobj=file, mode="rb") as stream:  # decompresses as it is read
                return _read_idx_stream(stream, path, shape, max_bytes)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise ValueError(f"read_idx: {path}: corrupt or truncated gzip data ({exc})") from exc


def _read_idx_stream(stream, path, shape: tuple | None, max_bytes: int) -> np.ndarray:
    head = _read_up_to(stream, 4)
    if len(head) < 4:
        raise ValueError(f"read_idx: {path}: {len(head)} bytes is too short for an IDX header")
    if head[0] != 0 or head[1] != 0:
        raise ValueError(
            f"read_idx: {path}: not an IDX file (magic number begins 0x{head[:2].hex()}, "
            f"expected 0x0000)"
        )
    code, ndim = head[2], head[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise ValueError(f"read_idx: {path}: unknown IDX dtype code 0x{code:02x} (known: {known})")
    if ndim == 0:
        raise ValueError(f"read_idx: {path}: IDX header declares 0 dimensions")
    sizes = _read_up_to(stream, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise ValueError(
            f"read_idx: {path}: truncated header: {ndim} dimensions need {4 + 4 * ndim} bytes, "
            f"the file has {4 + len(sizes)}"
        )
    dims = tuple(int.from_bytes(sizes[4 * i : 4 * i + 4], "big") for i in range(ndim))
    dtype = IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    _check_declared_shape(path, dims, dtype, expected, shape, max_bytes)
    data = _read_up_to(stream, expected + 1)  # one byte more shows trailing data
    if len(data) != expected:
        short = len(data) < expected
        kind, found = ("truncated", len(data)) if short else ("trailing bytes", "more")
        raise ValueError(
            f"read_idx: {path}: size mismatch ({kind}): shape {dims} of {dtype.name} needs "
            f"{expected} data bytes, the file has {found}"
        )
    # frombuffer is a big-endian view of the bytes; astype copies it into an array the caller
    # owns, in the machine's byte order.
    view = np.frombuffer(data, dtype=dtype, count=math.prod(dims))
    return view.reshape(dims).astype(dtype.newbyteorder("="))


def _check_declared_shape(path, dims: tuple, dtype, nbytes: int, shape, max_bytes: int) -> None:
    if shape is not None and (len(dims) != len(shape) or any(
            want is not None and want != got for want, got in zip(shape, dims))):
        sizes = ["N" if size is None else str(size) for size in shape]
        pattern = f"({', '.join(sizes)}{',' if len(sizes) == 1 else ''})"  # as a tuple prints
        raise ValueError(f"read_idx: {path}: the header declares shape {dims}, expected "
                         f"{pattern}; the data was not read")
    if nbytes > max_bytes:
        raise ValueError(f"read_idx: {path}: the header declares shape {dims} of {dtype.name}, "
                         f"{nbytes} bytes, more than max_bytes={max_bytes}; the data was not "
                         "read")


def _read_up_to(stream, count: int) -> bytearray:
    """`count` bytes from `stream`, or fewer if it ends first; never more."""
    data = bytearray(count)
    view, done = memoryview(data), 0
    while done < count:
        got = stream.readinto(view[done:])
        if not got:
            return data[:done]
        done += got
    return data


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write `array` as an IDX file; gzipped when `path` ends in `.gz`.

    The gzip header carries no file name and a zero timestamp, so the same array always gives
    the same bytes (with the same zlib). Raises ValueError for a dtype IDX cannot hold
    (see IDX_DTYPES), a 0-d array, or more than 255 dimensions.
    """
    array = np.asarray(array)
    codes = {(dtype.kind, dtype.itemsize): code for code, dtype in IDX_DTYPES.items()}
    code = codes.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise ValueError(f"write_idx: {path}: IDX cannot store dtype {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: {path}: IDX needs 1 to 255 dimensions, got {array.ndim}")
    if any(size >= 2**32 for size in array.shape):
        raise ValueError(f"write_idx: {path}: shape {array.shape} has a dimension >= 2**32")
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        size.to_bytes(4, "big") for size in array.shape
    )
    data = header + array.astype(IDX_DTYPES[code], copy=False).tobytes(order="C")
    if str(path).endswith(".gz"):
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
            gz.write(data)
        data = buffer.getvalue()
    Path(path).write_bytes(data)


# ---------------------------------------------------------------------------------------------
# Loading


def load_bundled() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The copy committed with the repository: (train_images, train_labels, test_images,
    test_labels).

    Images are uint8 of shape (N, 28, 28), labels uint8 of shape (N,) with values 0-9. The
    training part is 5,000 images of the official training set, 500 per class; the test part
    is the official test set, 10,000 images. See `data/mnist/README.md` for provenance.
    """
    paths = [BUNDLED_DIR / name for name in BUNDLED_FILES]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"load_bundled: missing {', '.join(missing)}; regenerate them with "
            f"`python scripts/convert_mnist.py` (see {BUNDLED_DIR / 'README.md'})"
        )
    return _load_four(paths)


def load_full(
    cache_dir: str | os.PathLike | None = None,
    mirrors: Sequence[str] = DEFAULT_MIRRORS,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
    files: Sequence[str] = OFFICIAL_FILES,
    hashes: Mapping[str, str] = SHA256,
    log: Callable[[str], None] | None = None,
    deadline: float = 600.0,
    min_rate: float = 4096.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The official MNIST, 60,000 training and 10,000 test images, downloaded once and cached.

    Returns (train_images, train_labels, test_images, test_labels) as load_bundled does.
    `cache_dir` defaults to default_cache_dir(). `files` names the four files in that order and
    `hashes` maps each name to its SHA-256; the defaults are the official ones, and tests pass
    their own. Downloading, retrying and checking are download()'s; its errors pass through.
    """
    if isinstance(files, str) or len(files) != 4:
        raise ValueError(
            f"load_full: files must name four files (train images, train labels, test images, "
            f"test labels), got {files!r}"
        )
    paths = download(cache_dir, files, hashes, mirrors, retries, timeout, backoff, log,
                     deadline=deadline, min_rate=min_rate)
    return _load_four(paths)


def _load_four(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    shapes = [(None, 28, 28), (None,), (None, 28, 28), (None,)]
    train_images, train_labels, test_images, test_labels = (
        read_idx(path, shape, MNIST_MAX_BYTES) for path, shape in zip(paths, shapes))
    _check_split(train_images, train_labels, paths[0], paths[1])
    _check_split(test_images, test_labels, paths[2], paths[3])
    return train_images, train_labels, test_images, test_labels


def _check_split(images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path):
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path}: expected uint8 images of shape (N, 28, 28), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(
            f"{labels_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels must be 0-9, found {labels.max()}")


# ---------------------------------------------------------------------------------------------
# Downloading


def default_cache_dir() -> Path:
    """Where load_full caches the download: $EDUGRAD_DATA_DIR when set and not empty, else
    DEFAULT_CACHE_DIR (~/.cache/edugrad/mnist), with `~` expanded.

    The files go directly in this directory. This is the one place the module reads the
    environment, and it does so when called, never at import.
    """
    return Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR).expanduser()


class DownloadError(RuntimeError):
    """Every mirror failed for one file. `failures` holds one (url, reason) per mirror."""

    def __init__(self, message: str, failures: list[tuple[str, str]]):
        super().__init__(message)
        self.failures = failures


class CacheError(OSError):
    """The cache could not be written or read: the disk is full, permission is denied, a folder
    stands where a file goes. A problem of this machine, not of a mirror: raised at once, with
    no other mirror tried. `errno` is the original error's."""


class _MirrorFailure(Exception):
    """One failed attempt at one URL; `transient` says whether trying it again may help."""

    def __init__(self, reason: str, transient: bool):
        super().__init__(reason)
        self.transient = transient


class _Limits(NamedTuple):
    """How long one attempt at one file may take: seconds per read (`timeout`), seconds in all
    (`deadline`), and the average bytes per second it must keep up once `timeout` seconds old."""

    timeout: float
    deadline: float
    min_rate: float


def download(
    cache_dir: str | os.PathLike | None = None,
    files: Sequence[str] = OFFICIAL_FILES,
    hashes: Mapping[str, str] = SHA256,
    mirrors: Sequence[str] = DEFAULT_MIRRORS,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
    log: Callable[[str], None] | None = None,
    deadline: float = 600.0,
    min_rate: float = 4096.0,
) -> list[Path]:
    """Make sure each of `files` is in `cache_dir` with the SHA-256 `hashes` gives it; return
    their paths, in order.

    A cached file whose hash matches is used as it is (no request); one whose hash does not is
    deleted and fetched again. A file is fetched from `mirror + name`, trying the mirrors in
    order (the one that served the previous file first). Network errors, timeouts and HTTP 5xx
    are retried on the same mirror up to `retries` attempts in all, sleeping `backoff`,
    2 * `backoff`, ... seconds between them; a hash mismatch or another HTTP error moves to the
    next mirror at once, and so does an attempt that outlives `deadline` seconds or, once
    `timeout` seconds old, averages fewer than `min_rate` bytes a second (`timeout` alone bounds
    each read, not the download: a server sending a byte a second would never end). When every
    mirror fails for a file, raises DownloadError listing each mirror with the reason it failed.

    Each download goes to a temporary file `.NAME.PID.RANDOM.part` in `cache_dir` that replaces
    the target (`os.replace`, atomic) only after its hash checks out, so a partial or corrupt
    download is never left under the real name. It is removed when the attempt fails and on
    SIGINT or SIGTERM; one left by a process killed outright is removed by the next download
    into the cache, once no process of that PID runs.

    Bad arguments raise ValueError or TypeError before anything is downloaded. A problem of the
    cache itself (disk full, no permission, a folder where a file goes) raises CacheError at
    once. `log`, when given, receives one line per download, failure and discarded cache file.
    """
    _check_download_args(files, hashes, mirrors, retries, timeout, backoff, deadline, min_rate)
    limits = _Limits(timeout, deadline, min_rate)
    cache_dir = default_cache_dir() if cache_dir is None else Path(cache_dir)
    _local(cache_dir.mkdir, parents=True, exist_ok=True, what=f"create the cache {cache_dir}")
    log = log or (lambda message: None)
    order = list(mirrors)
    paths = []
    for name in files:
        target = cache_dir / name
        expected = hashes[name].lower()
        paths.append(target)
        _remove_stale_parts(target)
        if _is_cached(target, expected, log):
            continue
        served_by = _fetch_from_mirrors(name, target, expected, order, retries, backoff, limits,
                                        log)
        # A mirror that just worked is the best bet for the next file; this also spares the
        # remaining files the retries and timeouts of a dead mirror listed before it.
        order.remove(served_by)
        order.insert(0, served_by)
    return paths


def _is_cached(target: Path, expected: str, log) -> bool:
    """Whether `target` holds the file already; a wrong copy is deleted."""
    try:
        kind = target.stat().st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(kind):
        raise CacheError(errno.EISDIR if stat.S_ISDIR(kind) else errno.EINVAL,
                         f"mnist: {target} is not a file, and the download would go there: "
                         "move it away or choose another cache folder")
    actual = _local(_sha256_of, target, what=f"read {target}")
    if actual == expected:
        return True
    log(f"mnist: {target} has sha256 {actual}, expected {expected}; fetching it again")
    _local(target.unlink, what=f"remove the wrong copy {target}")
    return False


def _check_download_args(files, hashes, mirrors, retries, timeout, backoff, deadline,
                         min_rate) -> None:
    if isinstance(files, str):
        raise TypeError(f"download: files must be a sequence of file names, not the str {files!r}")
    for name in files:
        if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
            raise ValueError(f"download: {name!r} is not a plain file name")
    missing = [name for name in files if name not in hashes]
    if missing:
        raise ValueError(f"download: no sha256 given for {', '.join(missing)}")
    for name in files:
        digest = hashes[name]
        if not isinstance(digest, str) or len(digest) != 64 or not _is_hex(digest):
            raise ValueError(f"download: sha256 for {name} must be 64 hex digits, got {digest!r}")
    if isinstance(mirrors, str):
        raise TypeError(f"download: mirrors must be a sequence of URLs, not the str {mirrors!r}")
    if not mirrors:
        raise ValueError("download: no mirrors given")
    for mirror in mirrors:
        parts = urllib.parse.urlsplit(mirror)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"download: mirror {mirror!r} is not an http(s) URL")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        raise ValueError(f"download: retries must be an int >= 1, got {retries!r}")
    if not timeout > 0:
        raise ValueError(f"download: timeout must be > 0 seconds, got {timeout!r}")
    if not backoff >= 0:
        raise ValueError(f"download: backoff must be >= 0 seconds, got {backoff!r}")
    if not deadline > 0:
        raise ValueError(f"download: deadline must be > 0 seconds, got {deadline!r}")
    if not min_rate >= 0:
        raise ValueError(f"download: min_rate must be >= 0 bytes a second, got {min_rate!r}")


def _fetch_from_mirrors(name, target, expected, mirrors, retries, backoff, limits, log) -> str:
    """Fetch `name` into `target` from the first mirror that serves the right bytes; return it."""
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        for attempt in range(1, retries + 1):
            log(f"mnist: downloading {url}")
            try:
                _fetch_verified(url, target, expected, limits)
                return mirror
            except _MirrorFailure as exc:
                reason, transient = str(exc), exc.transient
            log(f"mnist: {url} failed: {reason}")
            if not transient or attempt == retries:
                break
            time.sleep(backoff * 2 ** (attempt - 1))
        tries = f" (after {attempt} attempts)" if attempt > 1 else ""
        failures.append((url, reason + tries))
    lines = "\n".join(f"  {url}: {reason}" for url, reason in failures)
    raise DownloadError(
        f"could not download {name} into {target.parent}; every mirror failed:\n{lines}\n"
        f"(a copy of {name} with sha256 {expected} placed there by hand is used as it is)",
        failures,
    )


def _fetch_verified(url: str, target: Path, expected: str, limits: _Limits) -> None:
    """Download `url` next to `target`, check its SHA-256, then move it into place.

    Whatever goes wrong, the temporary file is removed; a failure of the mirror comes out as
    _MirrorFailure, one of the cache as CacheError, anything else (KeyboardInterrupt) as it is.
    """
    part = str(target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(6)}.part")
    try:
        with _removed_on_signals(part):
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            fd = _local(os.open, part, flags, 0o666, what=f"create a file in {target.parent}")
            with os.fdopen(fd, "wb") as out:
                digest, size = _receive(url, out, part, limits)
                _local(out.flush, what=f"write {part}")
                # the bytes are on disk before the name points at them
                _local(os.fsync, out.fileno(), what=f"write {part}")
            if digest != expected:
                raise _MirrorFailure(
                    f"sha256 mismatch: got {digest} ({size} bytes), expected {expected}", False)
            _local(os.replace, part, target, what=f"move the download to {target}")
    except BaseException as exc:
        _remove_quietly(part)
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()  # it holds the error response's open connection
        failure = _as_mirror_failure(exc)
        if failure is None:
            raise
        raise failure from exc


def _receive(url: str, out, part: str, limits: _Limits) -> tuple[str, int]:
    """Write the body of `url` to `out`; return its SHA-256 and size."""
    digest, size = hashlib.sha256(), 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    watchdog = _Watchdog(limits)
    try:
        with watchdog, watchdog.opener.open(request, timeout=limits.timeout) as reply:
            while chunk := reply.read1(CHUNK_BYTES):  # read1: whatever has arrived, at once
                size += len(chunk)
                watchdog.received = size
                if size > MAX_DOWNLOAD_BYTES:
                    raise _MirrorFailure(f"sent more than {MAX_DOWNLOAD_BYTES} bytes", False)
                digest.update(chunk)
                _local(out.write, chunk, what=f"write {part}")
            # urllib returns a short body without complaint when the connection drops early;
            # say so, rather than leave it to look like a hash mismatch, and allow a retry.
            declared = reply.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) != size:
                raise _MirrorFailure(f"connection closed after {size} of {declared} bytes", True)
    except Exception as exc:  # the watchdog's reason comes first: it caused what followed
        if watchdog.stopped_because is None or isinstance(exc, CacheError):
            raise
        raise _MirrorFailure(watchdog.stopped_because, False) from exc
    if watchdog.stopped_because is not None:
        raise _MirrorFailure(watchdog.stopped_because, False)
    return digest.hexdigest(), size


class _Watchdog:
    """Ends one download that goes on too long or too slowly.

    urllib's timeout bounds each read from the socket, not the transfer: a server that sends
    a byte every few seconds, headers or body, would hold the download for ever. A thread
    checks ten times a second that the attempt is younger than `deadline` and, once older than
    `timeout`, has averaged at least `min_rate` bytes a second. If not, it notes why and shuts
    the attempt's sockets, which ends whatever read is waiting on them.
    """

    def __init__(self, limits: _Limits):
        self.limits = limits
        self.received = 0  # updated by the reader
        self.stopped_because: str | None = None
        self.opener = urllib.request.build_opener(*_tracking_handlers(self._track))
        self._sockets: list[socket.socket] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> "_Watchdog":
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._thread.join()

    def _track(self, sock: socket.socket) -> None:
        self._sockets.append(sock)
        if self.stopped_because is not None:
            _shut(sock)

    def _watch(self) -> None:
        while not self._done.wait(0.1):
            elapsed = time.monotonic() - self._started
            if elapsed > self.limits.deadline:
                self._stop(f"not done after the deadline of {self.limits.deadline:g} s "
                           f"({self.received} bytes received)")
            elif elapsed > self.limits.timeout and self.received < self.limits.min_rate * elapsed:
                self._stop(f"too slow: {self.received} bytes in {elapsed:.1f} s, below "
                           f"min_rate={self.limits.min_rate:g} bytes a second")
            else:
                continue
            return

    def _stop(self, reason: str) -> None:
        self.stopped_because = reason
        for sock in list(self._sockets):
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


def _tracking_handlers(track: Callable[[socket.socket], None]) -> list:
    """urllib handlers whose connections pass each new socket to `track`."""

    def tracked(connection_class):
        class Tracked(connection_class):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                # http.client makes its socket through this attribute, for tests to replace
                self._create_connection = self._create_tracked

            @staticmethod
            def _create_tracked(*args, **kwargs):
                sock = socket.create_connection(*args, **kwargs)
                track(sock)
                return sock

        return Tracked

    class Http(urllib.request.HTTPHandler):
        def http_open(self, request):
            return self.do_open(tracked(http.client.HTTPConnection), request)

    handlers = [Http]
    if hasattr(urllib.request, "HTTPSHandler"):  # Python built with ssl
        import ssl

        class Https(urllib.request.HTTPSHandler):
            def https_open(self, request):
                return self.do_open(tracked(http.client.HTTPSConnection), request,
                                    context=ssl.create_default_context())

        handlers.append(Https)
    return handlers


def _as_mirror_failure(exc: BaseException) -> _MirrorFailure | None:
    """Describe a failed attempt and say whether it is worth repeating; None if it is not the
    mirror's doing."""
    if isinstance(exc, _MirrorFailure):
        return exc
    if isinstance(exc, CacheError):  # before OSError: this machine's problem, not the mirror's
        return None
    if isinstance(exc, urllib.error.HTTPError):  # before URLError: HTTPError is a subclass
        transient = exc.code in (408, 429) or exc.code >= 500  # timeout, rate limit, server
        return _MirrorFailure(f"HTTP {exc.code} {exc.reason}", transient)
    if isinstance(exc, urllib.error.URLError):  # refused, unknown host, TLS: exc.reason says
        return _MirrorFailure(str(exc.reason), True)
    if isinstance(exc, (OSError, http.client.HTTPException)):  # timeouts, resets, short reads
        return _MirrorFailure(f"{type(exc).__name__}: {exc}", True)
    return None


def _local(action, *args, what: str, **kwargs):
    """Run a file operation on the cache; its OSError becomes a CacheError saying `what`."""
    try:
        return action(*args, **kwargs)
    except OSError as exc:
        raise CacheError(exc.errno, f"mnist: cannot {what}: {exc.strerror or exc} (a problem "
                                    "on this machine, not the mirror's)") from exc


def _remove_stale_parts(target: Path) -> None:
    """Remove temporary files of `target`'s downloads whose process no longer runs."""
    pattern = re.compile(re.escape(f".{target.name}.") + r"(\d+)\.[0-9a-f]{12}\.part")
    try:
        names = os.listdir(target.parent)
    except OSError:
        return  # the download itself will say what is wrong with the folder
    for name in names:
        match = pattern.fullmatch(name)
        if match and not _process_runs(int(match[1])):
            _remove_quietly(str(target.parent / name))


def _process_runs(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be downloading the same file
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
def _removed_on_signals(path: str):
    """While the block runs, SIGINT and SIGTERM remove `path` before they end the process.

    The same as edugrad.serialization's (this module does not import edugrad): installed only
    for the block, only in the main thread, never over an ignored signal; the program's own
    handler runs first, and if it returns, the download goes on. Only where the default action
    would end the process at once is the file removed here, then the signal sent again.
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
        _remove_quietly(path)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    try:
        for signum in previous:
            signal.signal(signum, on_signal)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def _is_hex(text: str) -> bool:
    return all(char in "0123456789abcdefABCDEF" for char in text)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
