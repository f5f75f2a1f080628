"""Build the MNIST copy bundled in applications/data/mnist/ from the shared source files.

Layer: a maintenance script, outside the library; it uses applications/mnist.py (NumPy only)
and never imports edugrad.

    python scripts/convert_mnist.py [SOURCE_CSV_GZ] [--t10k-dir DIR] [--out DIR]

SOURCE_CSV_GZ (default ../shared/data/mnist/mnist_5k.csv.gz, relative to the repository root)
holds one image a row: 784 pixel values 0-255, then the label 0-9. It becomes
train-5k-images-idx3-ubyte.gz and train-5k-labels-idx1-ubyte.gz, rows in the order given,
gzipped without a name or timestamp so that running this again gives the same bytes. The
official t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (default: next to the CSV)
are copied unchanged, after checking them against the published SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "applications"))
import mnist  # noqa: E402  (applications/ is a folder of scripts, not a package)

DEFAULT_SOURCE = REPO_ROOT / ".." / "shared" / "data" / "mnist" / "mnist_5k.csv.gz"
DEFAULT_OUT = REPO_ROOT / "applications" / "data" / "mnist"
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 28, 28) and labels uint8 (N,) from a CSV of 784 pixels then a label."""
    table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape[1] != 28 * 28 + 1:
        raise ValueError(f"{path}: need 785 columns (784 pixels, a label), got {table.shape[1]}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"{path}: pixels must be 0-255, found {pixels.min()}..{pixels.max()}")
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path}: labels must be 0-9, found {labels.min()}..{labels.max()}")
    return pixels.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.uint8)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE,
                        help="the 5k CSV (gzipped); default: %(default)s")
    parser.add_argument("--t10k-dir", type=Path, default=None,
                        help="folder holding the official t10k files; default: the CSV's folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: %(default)s")
    args = parser.parse_args(argv)
    t10k_dir = args.t10k_dir if args.t10k_dir is not None else args.source.parent

    # Check every input before writing anything, so a bad input leaves the old copy intact.
    images, labels = read_csv(args.source)
    for name in TEST_FILES:
        digest = sha256_of(t10k_dir / name)
        if digest != mnist.SHA256[name]:
            raise SystemExit(
                f"{t10k_dir / name}: sha256 {digest} is not the published {mnist.SHA256[name]}"
            )

    args.out.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = (args.out / name for name in mnist.BUNDLED_FILES[:2])
    mnist.write_idx(train_images, images)
    mnist.write_idx(train_labels, labels)
    for name in TEST_FILES:
        shutil.copyfile(t10k_dir / name, args.out / name)

    counts = np.bincount(labels, minlength=10)
    print(f"{len(labels)} training images, per class: {counts.tolist()}")
    for name in mnist.BUNDLED_FILES:
        path = args.out / name
        print(f"{sha256_of(path)}  {path.stat().st_size:>9}  {path}")


if __name__ == "__main__":
    main()
