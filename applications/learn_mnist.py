"""Train a handwritten-digit classifier on MNIST with edugrad.

    python applications/learn_mnist.py                  # CNN, bundled 5k images, no network
    python applications/learn_mnist.py --model mlp      # a 784-256-10 perceptron instead
    python applications/learn_mnist.py --data full      # all 60,000 training images (downloads)

With no arguments it trains a small convolutional network on the 5,000 training images that
ship with edugrad, tests it on the official 10,000-image test set, and prints the accuracy
and the wall time. It saves a checkpoint (safetensors, loadable by edugrad.load and by
PyTorch) and a PNG of the loss and accuracy curves, in the current folder unless told where.
Every option is checked before any data is loaded: a bad one ends the run at once with one line
that names it, and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

# set before NumPy loads OpenBLAS, whose idle threads then sleep (backends/numpy_backend.py)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "12")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mnist  # noqa: E402  (the data module beside this script)

import edugrad  # noqa: E402
from edugrad import Tensor, nn, optim  # noqa: E402


def build_model(kind: str) -> nn.Module:
    if kind == "mlp":
        return nn.Sequential(
            nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, 10)
        )
    # two 3x3 conv blocks, then a dense layer: about 97-98% from 5,000 images in a minute
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),     # 16 x 14 x 14
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # 32 x 7 x 7
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25),
        nn.Linear(128, 10),
    )


OPTIMIZERS = {  # under --jit, lr is a tensor (the scheduler fills it) and Adam is capturable
    "adam": lambda params, lr: optim.Adam(params, lr=lr, capturable=isinstance(lr, Tensor)),
    "adamw": lambda params, lr: optim.AdamW(params, lr=lr, capturable=isinstance(lr, Tensor)),
    "sgd": lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
    "rmsprop": lambda params, lr: optim.RMSprop(params, lr=lr),
    "lion": lambda params, lr: optim.Lion(params, lr=lr),
}


def build_optimizer(name: str, params, lr):
    return OPTIMIZERS[name](params, lr)


def shift_augment(images: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """Move each image by up to max_shift pixels in x and y (zeros fill in): cheap and it
    teaches the network that a digit moved is the same digit."""
    n = len(images)
    padded = np.pad(images, ((0, 0), (0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    dy = rng.integers(0, 2 * max_shift + 1, n)
    dx = rng.integers(0, 2 * max_shift + 1, n)
    out = np.empty_like(images)
    for shift_y in range(2 * max_shift + 1):
        for shift_x in range(2 * max_shift + 1):
            chosen = (dy == shift_y) & (dx == shift_x)
            out[chosen] = padded[chosen, :, shift_y:shift_y + 28, shift_x:shift_x + 28]
    return out


def to_inputs(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28), normalised with MNIST's mean and std."""
    return ((images.astype(np.float32) / 255.0 - 0.1307) / 0.3081)[:, None]


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, device: str,
             batch_size: int = 1000) -> tuple[float, float]:
    model.eval()
    correct, total_loss = 0, 0.0
    with edugrad.no_grad():
        for start in range(0, len(images), batch_size):
            x = edugrad.tensor(images[start:start + batch_size], device=device)
            y = edugrad.tensor(labels[start:start + batch_size], device=device)
            logits = model(x)
            total_loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    model.train()
    return total_loss / len(images), correct / len(images)


def progress(iterable, total: int, description: str, enabled: bool):
    """A tqdm progress bar when tqdm is installed (the `mnist` extra), else plain lines."""
    if not enabled:
        return _Quiet(iterable)
    try:
        from tqdm import tqdm
    except ImportError:
        print(f"{description} (pip install tqdm for a progress bar)")
        return _Quiet(iterable)
    return tqdm(iterable, total=total, desc=description, unit="batch", leave=False,
                dynamic_ncols=True)


class _Quiet:
    def __init__(self, iterable):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def set_postfix(self, **kwargs):
        pass

    def close(self):
        pass


def plot_curves(history: dict, path: str) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'edugrad[mnist]'): no plot saved"
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(history["step"], history["train_loss"], label="train loss (per batch)", alpha=0.6)
    left.plot(history["epoch_step"], history["test_loss"], "o-", label="test loss")
    left.set_xlabel("step")
    left.set_ylabel("cross-entropy")
    left.legend()
    right.plot(range(1, len(history["test_acc"]) + 1), [100 * a for a in history["test_acc"]], "o-")
    right.set_xlabel("epoch")
    right.set_ylabel("test accuracy (%)")
    right.grid(alpha=0.3)
    fig.suptitle("edugrad on MNIST")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"curves saved to {path}"


def plot_gradients(monitor, path: str) -> str:
    try:
        monitor.plot(path)
    except ImportError as error:  # matplotlib is missing: say so, the run itself is done
        return f"{error}: no gradient plot saved"
    return f"gradient plot saved to {path}"


def parse_args(argv=None) -> argparse.Namespace:
    """The command line, checked before anything is loaded or trained: a bad value ends here
    with one line naming the option (argparse's way: usage, the error, exit status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = check_args(args)
    if problem:
        parser.error(problem)
    return args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="learn_mnist.py",
        description="Train a digit classifier on MNIST with edugrad. With no options: a small "
                    "CNN on the 5,000 bundled training images, tested on the official 10,000 "
                    "test images, no network needed.",
    )
    parser.add_argument("--model", choices=["mlp", "cnn"], default="cnn",
                        help="cnn: two conv blocks and a dense layer; mlp: one hidden layer "
                             "(default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=8,
                        help="passes over the training images (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="images per update (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate, > 0 (default: 2e-3 for adam, adamw and rmsprop, "
                             "0.05 for sgd, 3e-4 for lion)")
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default="adam",
                        help="adam, adamw, rmsprop, lion, or sgd with Nesterov momentum 0.9 "
                             "(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds weights, shuffling, dropout (default: %(default)s)")
    parser.add_argument("--device", default="cpu",
                        help="cpu (NumPy), cuda (CuPy), python, or a registered backend "
                             "(default: %(default)s)")
    parser.add_argument("--data", choices=["bundled", "full"], default="bundled",
                        help="bundled: 5k training images shipped with edugrad; full: the 60k "
                             "official set, downloaded once and checked by sha256 "
                             "(default: %(default)s)")
    parser.add_argument("--data-dir", default=None,
                        help="cache folder for --data full (default: $EDUGRAD_DATA_DIR or "
                             "~/.cache/edugrad/mnist)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only N training and N test images, N >= 1, for quick checks "
                             "(default: all)")
    parser.add_argument("--no-augment", action="store_true",
                        help="turn off random shifts of up to 2 pixels")
    parser.add_argument("--save", default="mnist_checkpoint.safetensors",
                        help="checkpoint path, '' to skip (default: %(default)s)")
    parser.add_argument("--no-plot", action="store_true",
                        help="save no PNG: neither the curves nor --monitor's gradient plot")
    parser.add_argument("--plot", default="mnist_curves.png",
                        help="where to save the curves; --monitor's gradient plot goes beside "
                             "it as NAME_gradients.png (default: %(default)s)")
    parser.add_argument("--jit", action="store_true",
                        help="run the training step under edugrad.jit: recorded once, then "
                             "replayed primitive by primitive (faster on small models)")
    parser.add_argument("--monitor", action="store_true",
                        help="record gradient norms per layer and flag vanishing/exploding "
                             "gradients and dead ReLUs (edugrad.viz.GradientMonitor)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def check_args(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, in one line; None if nothing."""
    if args.jit and args.monitor:
        return ("--jit and --monitor don't go together: the monitor reads every layer's "
                "gradient on the host each step, which a replayed step can't do")
    for option, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size),
                          ("--limit", args.limit)):
        if value is not None and value < 1:
            return f"{option} must be at least 1, got {value}"
    if args.lr is not None and not (args.lr > 0 and math.isfinite(args.lr)):
        return f"--lr must be a positive number, got {args.lr}"
    outputs = [("--save", args.save)] if args.save else []
    if not args.no_plot:
        outputs.append(("--plot", args.plot))
        if args.monitor:
            outputs.append(("--plot", gradient_plot_path(args.plot)))
    for option, path in outputs:
        problem = _unwritable(path)
        if problem:
            return f"{option} {path}: {problem}"
    if args.data == "full" and args.data_dir and os.path.exists(args.data_dir) and (
            not os.path.isdir(args.data_dir)):
        return f"--data-dir {args.data_dir}: not a folder"
    try:
        edugrad.zeros(1, device=args.device)
    except Exception as error:  # noqa: BLE001  (an unknown name, a missing CuPy, no GPU...)
        return f"--device {args.device}: {error}"
    return None


def _unwritable(path: str) -> str | None:
    """Why a file cannot be written at `path`, or None; checked before training, not after."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"no folder {folder} to write it into"
    if os.path.isdir(path):
        return "a folder, not a file name"
    if not os.access(folder, os.W_OK):
        return f"the folder {folder} is not writable"
    return None


def gradient_plot_path(plot: str) -> str:
    """Where --monitor's gradient plot goes: beside the curves, NAME_gradients.png."""
    return os.path.splitext(plot)[0] + "_gradients.png"


def main(argv=None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    edugrad.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    if args.data == "full":
        train_x, train_y, test_x, test_y = mnist.load_full(args.data_dir, log=print)
    else:
        train_x, train_y, test_x, test_y = mnist.load_bundled()
    if args.limit:
        step = max(1, len(train_x) // args.limit)  # the bundled set is sorted by class
        train_x, train_y = train_x[::step][:args.limit], train_y[::step][:args.limit]
        test_x, test_y = test_x[:args.limit], test_y[:args.limit]
    test_inputs, test_labels = to_inputs(test_x), test_y.astype(np.int64)
    print(f"MNIST: {len(train_x)} training images, {len(test_x)} test images; "
          f"model {args.model} on {args.device}")

    model = build_model(args.model).to(args.device)
    lr = args.lr if args.lr is not None else {"sgd": 0.05, "lion": 3e-4}.get(args.optimizer, 2e-3)
    if args.jit:  # a tensor the scheduler fills in place, which the replayed step reads
        lr = edugrad.tensor(lr, device=args.device)
    optimizer = build_optimizer(args.optimizer, model.parameters(), lr)
    steps_per_epoch = math.ceil(len(train_x) / args.batch_size)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * steps_per_epoch)
    monitor = None
    if args.monitor:
        from edugrad.viz import GradientMonitor

        monitor = GradientMonitor(model)


    def train_step(x, y):
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        if monitor is not None:
            monitor.record(step)
            with monitor.record_update():  # measures |update| / |weight| per layer
                optimizer.step()
        else:
            optimizer.step()
        return loss.detach(), logits.detach()

    if args.jit:
        train_step = edugrad.jit(train_step)

    history = {"step": [], "train_loss": [], "epoch_step": [], "test_loss": [], "test_acc": []}
    step = 0
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(train_x))
        images = train_x[order][:, None]
        if not args.no_augment:
            images = shift_augment(images, rng)
        inputs = to_inputs(images[:, 0])
        labels = train_y[order].astype(np.int64)
        bar = progress(range(steps_per_epoch), steps_per_epoch,
                       f"epoch {epoch}/{args.epochs}", not args.quiet)
        correct = seen = 0
        for batch in bar:
            x = edugrad.tensor(inputs[batch * args.batch_size:(batch + 1) * args.batch_size],
                               device=args.device)
            y = edugrad.tensor(labels[batch * args.batch_size:(batch + 1) * args.batch_size],
                               device=args.device)
            loss, logits = train_step(x, y)
            scheduler.step()
            step += 1
            loss_value = loss.item()
            history["step"].append(step)
            history["train_loss"].append(loss_value)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
            bar.set_postfix(loss=f"{loss_value:.3f}", acc=f"{100 * correct / seen:.1f}%")
        bar.close()
        test_loss, test_acc = evaluate(model, test_inputs, test_labels, args.device)
        history["epoch_step"].append(step)
        history["test_loss"].append(test_loss)
        history["test_acc"].append(test_acc)
        print(f"epoch {epoch:2d}: train acc {100 * correct / seen:5.2f}%  "
              f"test loss {test_loss:.4f}  test acc {100 * test_acc:5.2f}%")

    wall = time.perf_counter() - started
    print(f"final test accuracy: {100 * history['test_acc'][-1]:.2f}% on {len(test_x)} official "
          f"test images; wall time {wall:.1f} s")
    if args.save:
        edugrad.save(model.state_dict(), args.save)
        print(f"checkpoint saved to {args.save}")
    if not args.no_plot:
        print(plot_curves(history, args.plot))
    if monitor is not None:
        print(monitor.report())
        if not args.no_plot:
            print(plot_gradients(monitor, gradient_plot_path(args.plot)))
    return {"test_acc": history["test_acc"][-1], "wall": wall, "history": history}


if __name__ == "__main__":
    # keep each step's freed temporaries for reuse: a faster CNN step on Linux (README, Speed).
    # Off in the library by default; EDUGRAD_KEEP_FREED_MEMORY=0 turns it off here too.
    os.environ.setdefault("EDUGRAD_KEEP_FREED_MEMORY", "1")
    main()
