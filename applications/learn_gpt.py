"""Train a character-level GPT on Shakespeare with edugrad, then let it write.

    python applications/learn_gpt.py                       # 2,000 steps on tiny Shakespeare
    python applications/learn_gpt.py --steps 300            # a quick look
    python applications/learn_gpt.py --data my_text.txt     # any UTF-8 text file
    python applications/learn_gpt.py --sample gpt_checkpoint.safetensors   # only generate

With no arguments it trains nanoGPT's architecture (applications/gpt.py: 4 layers, 4 heads,
128-dimensional embeddings, a context of 64 characters) on the first 90% of tiny Shakespeare,
which ships with edugrad, so no network is needed. Every --eval-interval steps it estimates
the loss on training and validation text; at the end it saves a checkpoint (safetensors, with
the vocabulary and the model's configuration), a PNG of the loss curves, and prints text
the model writes.

The training step runs under edugrad.jit: the first calls run eagerly (and are recorded),
every later one replays the recorded primitive calls, with the same numbers as the eager step
and without its Python (a GPT step: about 10-20% faster). --no-jit runs it eagerly, as
--monitor does, which reads the gradients on the host every step.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import math
import os
import sys
import time

# set before NumPy loads OpenBLAS, whose idle threads then sleep (backends/numpy_backend.py)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "12")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gpt import GPT, GPTConfig  # noqa: E402  (the model, beside this script)

import edugrad  # noqa: E402
from edugrad import nn, optim  # noqa: E402
from edugrad.optim.lr_scheduler import set_lr  # noqa: E402

BUNDLED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tinyshakespeare",
                       "input.txt.gz")
BUNDLED_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


# ---- data ------------------------------------------------------------------------------------------
def load_text(path: str | None = None) -> str:
    """The bundled tiny Shakespeare (checked by sha256), or any UTF-8 text file."""
    if path is None:
        with gzip.open(BUNDLED, "rb") as file:
            raw = file.read()
        if hashlib.sha256(raw).hexdigest() != BUNDLED_SHA256:
            raise RuntimeError(f"{BUNDLED} is damaged (sha256 mismatch); restore it from git")
        return raw.decode("utf-8")
    with open(path, "rb") as file:
        raw = file.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SystemExit(f"learn_gpt.py: error: --data {path}: not UTF-8 text ({error})") \
            from None


def check_prompt(prompt: str, vocabulary: "Vocabulary") -> None:
    """Refuse, in one line, a --prompt with characters the model has no token for: before
    training, not after it."""
    try:
        vocabulary.encode(prompt)
    except ValueError as error:
        raise SystemExit(f"learn_gpt.py: error: --prompt {prompt!r}: {error}") from None


class Vocabulary:
    """Characters <-> token ids: every distinct character of the text, sorted."""

    def __init__(self, characters: str) -> None:
        self.characters = characters
        self.index = {c: i for i, c in enumerate(characters)}

    @classmethod
    def of(cls, text: str) -> "Vocabulary":
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.characters)

    def encode(self, text: str) -> np.ndarray:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"characters not in the text's vocabulary: {''.join(unknown)!r}")
        return np.array([self.index[c] for c in text], dtype=np.int64)

    def decode(self, ids) -> str:
        return "".join(self.characters[i] for i in ids)


def get_batch(data: np.ndarray, block_size: int, batch_size: int, rng: np.random.Generator,
              device: str):
    """batch_size random windows of block_size tokens; the targets are the same windows
    shifted by one (each position predicts the next character)."""
    starts = rng.integers(0, len(data) - block_size, batch_size)
    x = np.stack([data[s:s + block_size] for s in starts])
    y = np.stack([data[s + 1:s + 1 + block_size] for s in starts])
    return edugrad.tensor(x, device=device), edugrad.tensor(y, device=device)


# ---- training ---------------------------------------------------------------------------------------
def learning_rate(step: int, lr: float, warmup: int, steps: int, min_lr: float) -> float:
    """Linear warm-up for `warmup` steps, then cosine decay to min_lr at the last step."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return min_lr + 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))) * (lr - min_lr)


def estimate_loss(model: GPT, splits: dict, iters: int, batch_size: int, rng, device) -> dict:
    """The mean loss over `iters` random batches of each split, in eval mode."""
    model.eval()
    losses = {}
    with edugrad.no_grad():
        for name, data in splits.items():
            total = 0.0
            for _ in range(iters):
                x, y = get_batch(data, model.config.block_size, batch_size, rng, device)
                total += model(x, y)[1].item()
            losses[name] = total / iters
    model.train()
    return losses


def progress(total: int, enabled: bool):
    """A tqdm bar when tqdm is installed (the `mnist` extra), else nothing."""
    if enabled:
        try:
            from tqdm import tqdm

            return tqdm(total=total, unit="step", dynamic_ncols=True, leave=False)
        except ImportError:
            print("(pip install tqdm for a progress bar)")
    return None


def plot_curves(history: dict, path: str) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'edugrad[mnist]'): no plot saved"
    fig, axes = plt.subplots(figsize=(7, 4))
    axes.plot(history["step"], history["train_loss"], alpha=0.35, label="training batch")
    axes.plot(history["eval_step"], history["eval_train"], "o-", label="training text")
    axes.plot(history["eval_step"], history["eval_val"], "o-", label="validation text")
    axes.set_xlabel("step")
    axes.set_ylabel("cross-entropy (nats per character)")
    axes.set_title("edugrad: a character-level GPT on tiny Shakespeare")
    axes.grid(alpha=0.3)
    axes.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"curves saved to {path}"


def train(args, text: str, vocabulary: Vocabulary) -> dict:
    data = vocabulary.encode(text)
    split = int(0.9 * len(data))
    splits = {"train": data[:split], "val": data[split:]}
    if min(len(part) for part in splits.values()) <= args.block_size:
        raise SystemExit(f"learn_gpt.py: error: the text is too short for --block-size "
                         f"{args.block_size} ({len(data)} characters)")
    config = GPTConfig(vocab_size=len(vocabulary), block_size=args.block_size,
                       n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
                       dropout=args.dropout)
    model = GPT(config).to(args.device)
    # under --jit the lr is a tensor that the schedule fills in place, which a replay reads
    lr = edugrad.tensor(args.lr, device=args.device) if args.jit else args.lr
    optimizer = optim.AdamW(model.parameter_groups(args.weight_decay), lr=lr,
                            betas=(0.9, 0.99), capturable=args.jit)
    print(f"{len(data):,} characters, {len(vocabulary)} distinct; GPT of "
          f"{model.num_parameters():,} parameters on {args.device}; the step "
          + ("replayed by edugrad.jit (--no-jit: eager)" if args.jit else "eager"))
    rng = np.random.default_rng(args.seed)
    monitor = None
    if args.monitor:
        from edugrad.viz import GradientMonitor

        monitor = GradientMonitor(model)
    if args.graph:
        print(draw_step_graph(model, splits["train"], args, rng))

    def train_step(x, y):
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        if monitor is not None:
            monitor.record(step)
        optimizer.step()
        return loss.detach()

    if args.jit:
        train_step = edugrad.jit(train_step)
    history = {"step": [], "train_loss": [], "eval_step": [], "eval_train": [], "eval_val": []}
    bar = progress(args.steps, not args.quiet)
    started = time.perf_counter()
    for step in range(args.steps + 1):
        if step % args.eval_interval == 0 or step == args.steps:
            losses = estimate_loss(model, splits, args.eval_iters, args.batch_size, rng,
                                   args.device)
            history["eval_step"].append(step)
            history["eval_train"].append(losses["train"])
            history["eval_val"].append(losses["val"])
            message = (f"step {step:5d}: train loss {losses['train']:.4f}, "
                       f"val loss {losses['val']:.4f}")
            print(message) if bar is None else bar.write(message)
        if step == args.steps:
            break
        lr = learning_rate(step, args.lr, args.warmup, args.steps, args.lr / 10)
        for group in optimizer.param_groups:
            set_lr(group, lr)  # a tensor lr (--jit) is filled in place
        x, y = get_batch(splits["train"], args.block_size, args.batch_size, rng, args.device)
        loss_value = train_step(x, y).item()
        history["step"].append(step)
        history["train_loss"].append(loss_value)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.1e}")
    if bar is not None:
        bar.close()
    wall = time.perf_counter() - started
    print(f"trained {args.steps} steps in {wall:.1f} s ({1000 * wall / max(1, args.steps):.0f} ms "
          f"per step, evaluation included); validation loss {history['eval_val'][-1]:.4f}")
    if monitor is not None:
        print(monitor.report())
        if args.plot:
            gradients = os.path.splitext(args.plot)[0] + "_gradients.png"
            monitor.plot(gradients)
            print(f"gradient norms saved to {gradients}")
    return {"model": model, "vocabulary": vocabulary, "history": history, "wall": wall}


def draw_step_graph(model: GPT, data: np.ndarray, args, rng) -> str:
    """The graph autograd records for one batch's loss, with every block collapsed to one
    node (edugrad.viz): embeddings, n_layer blocks, the final norm and the head."""
    from edugrad.viz import draw_graph, trace_modules

    x, y = get_batch(data, args.block_size, 2, rng, args.device)
    with trace_modules(model) as trace:
        _, loss = model(x, y)
    blocks = [f"h.{i}" for i in range(len(model.h))]
    graph = draw_graph(loss, trace, collapse=blocks)
    kind = os.path.splitext(args.graph)[1].lower()
    if kind == ".svg":
        with open(args.graph, "w") as file:
            file.write(graph.svg())
    elif kind in (".dot", ".gv"):
        with open(args.graph, "w") as file:
            file.write(graph.dot())
    elif kind in (".mmd", ".mermaid"):
        with open(args.graph, "w") as file:
            file.write(graph.mermaid())
    else:
        graph.html(args.graph)
    return f"graph of one step ({len(blocks)} blocks collapsed) written to {args.graph}"


def save_checkpoint(path: str, model: GPT, vocabulary: Vocabulary) -> None:
    edugrad.save({"model": model.state_dict(), "config": dataclasses.asdict(model.config),
                  "vocabulary": vocabulary.characters}, path)


def load_checkpoint(path: str, device: str):
    try:
        checkpoint = edugrad.load(path)
        config = GPTConfig(**checkpoint["config"])
        vocabulary = Vocabulary(checkpoint["vocabulary"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"learn_gpt.py: error: --sample {path}: not a learn_gpt checkpoint "
                         f"({type(error).__name__}: {error})") from None
    model = GPT(config)
    model.load_state_dict(checkpoint["model"])
    return model.to(device), vocabulary


def generate(model: GPT, vocabulary: Vocabulary, prompt: str, length: int, temperature: float,
             top_k, device: str) -> str:
    model.eval()
    start = vocabulary.encode(prompt or "\n")[None, :]
    ids = model.generate(edugrad.tensor(start, device=device), length, temperature, top_k)
    return vocabulary.decode(ids[0].tolist())


# ---- the command line ------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train a character-level GPT on tiny Shakespeare (bundled; no network) "
                    "or any UTF-8 text, then generate text with it.")
    add = parser.add_argument
    add("--data", default=None, metavar="PATH",
        help="a UTF-8 text file to train on (default: the bundled tiny Shakespeare)")
    add("--steps", type=int, default=2000, help="optimizer steps (default: %(default)s)")
    add("--batch-size", type=int, default=32, help="sequences per step (default: %(default)s)")
    add("--block-size", type=int, default=64,
        help="context length in characters (default: %(default)s)")
    add("--n-layer", type=int, default=4, help="transformer blocks (default: %(default)s)")
    add("--n-head", type=int, default=4, help="attention heads (default: %(default)s)")
    add("--n-embd", type=int, default=128,
        help="embedding width, a multiple of --n-head (default: %(default)s)")
    add("--dropout", type=float, default=0.0, help="dropout probability (default: %(default)s)")
    add("--lr", type=float, default=1e-3,
        help="peak learning rate, after warm-up; decays to a tenth (default: %(default)s)")
    add("--warmup", type=int, default=100, help="warm-up steps (default: %(default)s)")
    add("--weight-decay", type=float, default=0.1,
        help="AdamW decay of the weight matrices (default: %(default)s)")
    add("--grad-clip", type=float, default=1.0,
        help="clip the gradients' joint norm to this (default: %(default)s)")
    add("--eval-interval", type=int, default=250,
        help="estimate train and validation loss every N steps (default: %(default)s)")
    add("--eval-iters", type=int, default=20,
        help="batches per loss estimate (default: %(default)s)")
    add("--seed", type=int, default=1337, help="seeds weights and batches (default: %(default)s)")
    add("--device", default="cpu",
        help="cpu (NumPy), cuda (CuPy), python, or a registered backend (default: %(default)s)")
    add("--save", default="gpt_checkpoint.safetensors",
        help="checkpoint path, '' to skip (default: %(default)s)")
    add("--plot", default="gpt_curves.png",
        help="loss-curve PNG path, '' to skip (default: %(default)s)")
    add("--sample", default=None, metavar="CHECKPOINT",
        help="skip training: load CHECKPOINT and only generate")
    add("--prompt", default="\n", help="text to start generating from (default: a newline)")
    add("--length", type=int, default=500,
        help="characters to generate at the end (default: %(default)s)")
    add("--temperature", type=float, default=0.8,
        help="below 1: safer, more repetitive text; above 1: wilder (default: %(default)s)")
    add("--top-k", type=int, default=None,
        help="sample only among the k likeliest characters (default: all)")
    add("--monitor", action="store_true",
        help="record gradient norms per layer and flag vanishing/exploding gradients")
    add("--graph", default=None, metavar="PATH",
        help="draw the backward graph of one step, each block collapsed to one node, to PATH "
             "(.html, .svg, .dot or .mmd) and continue")
    add("--jit", action=argparse.BooleanOptionalAction, default=None,
        help="run the training step under edugrad.jit: recorded once, then replayed "
             "primitive by primitive (AdamW keeps its step count and lr in tensors); on "
             "unless --monitor, which reads gradients every step. --no-jit: eager")
    add("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.jit and args.monitor:
        parser.error("--jit and --monitor don't go together: the monitor reads every layer's "
                     "gradient on the host each step, which a replayed step can't do")
    if args.jit is None:  # the default: replayed, unless the monitor needs the eager step
        args.jit = not args.monitor

    positive = ("steps", "batch_size", "block_size", "n_layer", "n_head", "n_embd",
                "eval_interval", "eval_iters", "length")
    for name in positive:
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.n_embd % args.n_head:
        parser.error(f"--n-embd ({args.n_embd}) must be a multiple of --n-head ({args.n_head})")
    if not 0 <= args.dropout < 1:
        parser.error(f"--dropout must be in [0, 1), got {args.dropout}")
    for name in ("lr", "temperature", "grad_clip"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.warmup < 0 or args.weight_decay < 0:
        parser.error("--warmup and --weight-decay must not be negative")
    if args.top_k is not None and args.top_k <= 0:
        parser.error(f"--top-k must be positive, got {args.top_k}")
    for name in ("data", "sample"):
        path = getattr(args, name)
        if path is not None and not os.path.isfile(path):
            parser.error(f"--{name} {path}: no such file")
    for name in ("save", "plot", "graph"):
        folder = os.path.dirname(os.path.abspath(getattr(args, name) or "."))
        if getattr(args, name) and not os.path.isdir(folder):
            parser.error(f"--{name} {getattr(args, name)}: the folder {folder} does not exist")
    try:
        edugrad.get_backend(args.device)
    except (ValueError, ImportError, RuntimeError) as error:
        parser.error(f"--device {args.device}: {error}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    edugrad.manual_seed(args.seed)
    if args.sample:
        model, vocabulary = load_checkpoint(args.sample, args.device)
        check_prompt(args.prompt, vocabulary)
        print(generate(model, vocabulary, args.prompt, args.length, args.temperature,
                       args.top_k, args.device))
        return {"model": model, "vocabulary": vocabulary}
    text = load_text(args.data)
    vocabulary = Vocabulary.of(text)
    check_prompt(args.prompt, vocabulary)
    result = train(args, text, vocabulary)
    model = result["model"]
    if args.save:
        save_checkpoint(args.save, model, vocabulary)
        print(f"checkpoint saved to {args.save} (generate more: python applications/"
              f"learn_gpt.py --sample {args.save})")
    if args.plot:
        print(plot_curves(result["history"], args.plot))
    text = generate(model, vocabulary, args.prompt, args.length, args.temperature, args.top_k,
                    args.device)
    print("-" * 72 + "\n" + text + "\n" + "-" * 72)
    result["text"] = text
    return result


if __name__ == "__main__":
    # keep the step's freed buffers for the next step (see the README's Speed section);
    # EDUGRAD_KEEP_FREED_MEMORY=0 turns it off
    os.environ.setdefault("EDUGRAD_KEEP_FREED_MEMORY", "1")
    main()
