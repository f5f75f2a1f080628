"""learn_gpt.py's training run in edugrad and in PyTorch side by side: losses and time per step.

    python benchmarks/bench_gpt_loss.py                  # 300 steps (about 2 minutes)
    python benchmarks/bench_gpt_loss.py --steps 2000     # the whole default run (issue 11)
    python benchmarks/bench_gpt_loss.py --threads 1      # both frameworks on one thread
    python benchmarks/bench_gpt_loss.py --no-jit         # edugrad's step eager

Both frameworks run the very same applications/gpt.py (PyTorch's copy has its imports pointed
at torch, as in bench_training.py) at learn_gpt.py's defaults: 4 layers, 4 heads, 128 wide,
context 64, batch 32, AdamW (lr 1e-3, betas 0.9/0.99, weight decay 0.1 on the matrices),
100 warm-up steps then cosine decay to lr/10, gradients clipped to norm 1. PyTorch's model
starts from edugrad's initial weights, and every step both train on the same batch of tiny
Shakespeare. They take turns, ten steps each, so a busy moment on the machine slows both.
edugrad's step runs under edugrad.jit, as learn_gpt.py runs it; --no-jit times it eager.

At the end (and every --eval-interval steps) both estimate the loss on the same --eval-iters
batches of training and of validation text. The issue's target: edugrad's validation loss
within 0.05 of PyTorch's, at no more than 1.3x PyTorch's time per step. Rounding differs
between the two from the first step, so the two runs drift apart slowly, as two PyTorch runs
on different hardware do; the losses should agree, the weights need not.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# set before NumPy loads OpenBLAS, whose idle threads then sleep (backends/numpy_backend.py)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "12")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "applications"))

import bench_training  # noqa: E402  (gpt_module: gpt.py for either framework)
import learn_gpt  # noqa: E402  (the data, the vocabulary and the learning-rate schedule)
from edugrad.optim.lr_scheduler import set_lr  # noqa: E402  (a float lr, or a tensor filled)


ROUND = 10  # steps each framework runs in a row


def make_run(lib, gpt, config, state, args, jit=False):
    """(model, optimizer, one training step, a loss estimate) in framework `lib`. With `jit`
    (edugrad only), the step runs as learn_gpt.py runs it by default: under edugrad.jit, with
    the lr in a tensor the schedule fills in place and AdamW's step count in tensors."""
    model = gpt.GPT(config)
    if state is not None:  # PyTorch: start from edugrad's weights
        model.load_state_dict({name: lib.tensor(value) for name, value in state.items()})
    optimizer = lib.optim.AdamW(model.parameter_groups(args.weight_decay),
                                lr=lib.tensor(args.lr) if jit else args.lr, betas=(0.9, 0.99),
                                capturable=jit)

    def train_step(x, y):
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lib.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        return loss.detach()

    if jit:
        train_step = lib.jit(train_step)

    def step(x, y, lr):
        for group in optimizer.param_groups:
            set_lr(group, lr)  # a tensor lr (jit) is filled in place
        return train_step(lib.tensor(x), lib.tensor(y)).item()

    def estimate(batches):
        model.eval()
        with lib.no_grad():
            losses = [model(lib.tensor(x), lib.tensor(y))[1].item() for x, y in batches]
        model.train()
        return float(np.mean(losses))

    return model, step, estimate


def batches(data, count: int, args, rng) -> list:
    """`count` batches of random windows (inputs, next-character targets), as NumPy arrays."""
    out = []
    for _ in range(count):
        starts = rng.integers(0, len(data) - args.block_size, args.batch_size)
        x = np.stack([data[s:s + args.block_size] for s in starts])
        y = np.stack([data[s + 1:s + 1 + args.block_size] for s in starts])
        out.append((x, y))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-interval", type=int, default=0,
                        help="estimate the losses about every N steps too, at the start of a "
                             "block of ten (default: at the end only)")
    parser.add_argument("--eval-iters", type=int, default=20, help="batches per estimate")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for both frameworks (default: each one's own default)")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--jit", action=argparse.BooleanOptionalAction, default=True,
                        help="edugrad's step under edugrad.jit, as learn_gpt.py runs it by "
                             "default (--no-jit: eager)")
    args = parser.parse_args(argv)
    if args.steps <= 0 or args.eval_iters <= 0 or args.eval_interval < 0 or args.threads < 0:
        parser.error("--steps and --eval-iters must be positive, --eval-interval and "
                     "--threads not negative")
    # learn_gpt.py's defaults for everything else
    for name, value in vars(learn_gpt.parse_args([])).items():
        if not hasattr(args, name):
            setattr(args, name, value)
    os.environ.setdefault("EDUGRAD_KEEP_FREED_MEMORY", "1")  # as learn_gpt.py does

    import torch

    import edugrad

    if args.threads:
        torch.set_num_threads(args.threads)
        edugrad.set_num_threads(args.threads)
    text = learn_gpt.load_text(None)
    vocabulary = learn_gpt.Vocabulary.of(text)
    data = vocabulary.encode(text)
    split = int(0.9 * len(data))
    splits = {"train": data[:split], "val": data[split:]}

    ours_gpt, theirs_gpt = bench_training.gpt_module("edugrad"), bench_training.gpt_module("torch")
    config = dict(vocab_size=len(vocabulary), block_size=args.block_size, n_layer=args.n_layer,
                  n_head=args.n_head, n_embd=args.n_embd, dropout=0.0)
    edugrad.manual_seed(args.seed)
    ours, our_step, our_estimate = make_run(edugrad, ours_gpt, ours_gpt.GPTConfig(**config),
                                            None, args, jit=args.jit)
    state = {name: value.detach().numpy() for name, value in ours.state_dict().items()}
    _, their_step, their_estimate = make_run(torch, theirs_gpt, theirs_gpt.GPTConfig(**config),
                                             state, args)

    evaluation = {name: batches(part, args.eval_iters, args, np.random.default_rng(args.seed + 1))
                  for name, part in splits.items()}
    rng = np.random.default_rng(args.seed)
    times, last = {"edugrad": [], "torch": []}, {}
    print(f"{args.steps} steps, batch {args.batch_size} x {args.block_size}, threads: "
          f"edugrad {edugrad.get_num_threads()}, torch {torch.get_num_threads()}; edugrad "
          f"{'under edugrad.jit' if args.jit else 'eager'}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'step':>6} {'edugrad train':>14} {'torch train':>12} {'edugrad val':>12} "
          f"{'torch val':>10}")

    def report(step: int) -> tuple:
        ours_now = {name: our_estimate(b) for name, b in evaluation.items()}
        theirs_now = {name: their_estimate(b) for name, b in evaluation.items()}
        print(f"{step:6d} {ours_now['train']:14.4f} {theirs_now['train']:12.4f} "
              f"{ours_now['val']:12.4f} {theirs_now['val']:10.4f}", flush=True)
        return ours_now, theirs_now

    # in blocks of ROUND steps, each framework in turn: alternating every step would put each
    # one's threads, still spinning after a step, on the cores the other one needs
    for first in range(0, args.steps, ROUND):
        if args.eval_interval and first % args.eval_interval < ROUND:
            report(first)
        block = range(first, min(first + ROUND, args.steps))
        rates = [learn_gpt.learning_rate(step, args.lr, args.warmup, args.steps, args.lr / 10)
                 for step in block]
        data_block = batches(splits["train"], len(block), args, rng)
        for name, run in (("edugrad", our_step), ("torch", their_step)):
            for (x, y), lr in zip(data_block, rates):
                start = time.perf_counter()
                last[name] = run(x, y, lr)
                times[name].append(time.perf_counter() - start)
    ours_final, theirs_final = report(args.steps)

    # the first steps pay for first-call work (allocation, caches): timed from step 10 on
    ms = {name: 1000 * float(np.median(t[min(10, len(t) - 1):])) for name, t in times.items()}
    gap = ours_final["val"] - theirs_final["val"]
    print(f"\nlast training batch: edugrad {last['edugrad']:.4f}, torch {last['torch']:.4f}")
    print(f"validation loss: edugrad {ours_final['val']:.6f}, torch {theirs_final['val']:.6f} "
          f"(difference {gap:+.6f}; target within 0.05)")
    print(f"median ms per step: edugrad {ms['edugrad']:.1f}, torch {ms['torch']:.1f}, ratio "
          f"{ms['edugrad'] / ms['torch']:.2f}x (target <= 1.3x); load average "
          f"{os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
