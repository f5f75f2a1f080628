"""Per-op overhead and large-tensor throughput: edugrad against PyTorch and hand-written NumPy.

    python benchmarks/bench_overhead.py [--repeat 30] [--threads 1]

Four workloads, each forward + backward, each timed for all three side by side in one run
(interleaved rounds, best of N), printed as times and ratios:

1. a chain of 100 ops (mul, add, sin, cycling) on 4x4 tensors: the cost per op is almost all
   framework overhead (Python, object creation, graph bookkeeping), not arithmetic;
2. the tanh chain of issue 13, `h = tanh(h * w + b) - b` on 4x4 tensors (100 ops: mul, add,
   tanh, sub), which shows what a composite activation costs per op;
3. the plainest chain, `h = h * w + b` on 4x4 tensors (100 ops: mul, add): nothing but the
   per-op cost of the two commonest binary ops;
4. a chain like the first, 12 ops, on 1M-element tensors: arithmetic dominates, so hidden
   copies or dtype round trips show up directly.

Targets: per op at most 2x PyTorch (issue 3), the tanh chain at most 2x PyTorch and the
`h * w + b` chain at most 1.3x (issue 13); large tensors within 1.3x of hand-written NumPy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# set before NumPy loads OpenBLAS, whose idle threads then sleep (backends/numpy_backend.py)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "12")


def _set_threads(threads: int | None) -> None:
    if threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)


def framework_chain(lib, x0, ys, zs, kinds, length):
    """The chain in edugrad or PyTorch: the same code, `lib` is the module. Op i is
    kinds[i % len(kinds)]: "mul" and "add"/"sub" take the next factor or offset, "sin" and
    "tanh" apply the function."""
    x = lib.tensor(x0, requires_grad=True)
    y = [lib.tensor(v) for v in ys]
    z = [lib.tensor(v) for v in zs]

    def run():
        x.grad = None
        h = x
        for i in range(length):
            kind = kinds[i % len(kinds)]
            if kind == "mul":
                h = h * y[i % len(y)]
            elif kind == "add":
                h = h + z[i % len(z)]
            elif kind == "sub":
                h = h - z[(i - 2) % len(z)]  # the offset the add two ops back put in
            elif kind == "tanh":
                h = h.tanh()
            else:
                h = h.sin()
        h.sum().backward()
        return x.grad

    return run


def numpy_chain(np, x0, ys, zs, kinds, length):
    """The same math with the chain rule written by hand: the floor for any framework."""

    def run():
        h = x0
        saved = []
        for i in range(length):
            kind = kinds[i % len(kinds)]
            if kind == "mul":
                factor = ys[i % len(ys)]
                saved.append(factor)
                h = h * factor
            elif kind == "add":
                saved.append(None)
                h = h + zs[i % len(zs)]
            elif kind == "sub":
                saved.append(None)
                h = h - zs[(i - 2) % len(zs)]
            elif kind == "tanh":
                h = np.tanh(h)
                saved.append(1 - h * h)  # d tanh = 1 - tanh^2, from the output
            else:
                saved.append(np.cos(h))
                h = np.sin(h)
        grad = np.ones_like(h)
        for i in reversed(range(length)):
            if saved[i] is not None:
                grad = grad * saved[i]
        return grad

    return run


# (label, the ops the chain cycles through, shape, length, calls per round, timed per op)
WORKLOADS = (
    ("100-op chain, 4x4 (per op)", ("mul", "add", "sin"), (4, 4), 100, 20, True),
    ("tanh(h*w+b)-b, 4x4 (per op)", ("mul", "add", "tanh", "sub"), (4, 4), 100, 20, True),
    ("h*w+b, 4x4 (per op)", ("mul", "add"), (4, 4), 100, 20, True),
    ("12-op chain, 1M elements", ("mul", "add", "sin"), (1000, 1000), 12, 1, False),
)


def best_of(functions: dict, repeat: int, inner: int) -> dict:
    """Interleave the candidates round by round so machine noise hits them all alike."""
    best = {name: float("inf") for name in functions}
    for _ in range(repeat):
        for name, function in functions.items():
            start = time.perf_counter()
            for _ in range(inner):
                function()
            best[name] = min(best[name], (time.perf_counter() - start) / inner)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (0: default)")
    args = parser.parse_args(argv)
    _set_threads(args.threads)
    # the NumPy backend keeps freed memory for reuse, as in bench_training.py (README, Speed);
    # EDUGRAD_KEEP_FREED_MEMORY=0 measures without
    os.environ.setdefault("EDUGRAD_KEEP_FREED_MEMORY", "1")

    import numpy as np

    import edugrad

    try:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
        print("PyTorch is not installed: showing edugrad against NumPy only")

    rng = np.random.default_rng(0)
    rows = []
    for label, kinds, shape, length, inner, per_op in WORKLOADS:
        x0 = rng.standard_normal(shape).astype(np.float32)
        ys = [rng.uniform(0.5, 1.5, shape).astype(np.float32) for _ in range(3)]
        zs = [rng.standard_normal(shape).astype(np.float32) for _ in range(3)]
        candidates = {
            "edugrad": framework_chain(edugrad, x0, ys, zs, kinds, length),
            "numpy": numpy_chain(np, x0, ys, zs, kinds, length),
        }
        if torch is not None:
            candidates["torch"] = framework_chain(torch, x0, ys, zs, kinds, length)
        # same answer first: a benchmark of wrong code measures nothing
        reference = candidates["numpy"]()
        got = candidates["edugrad"]().numpy()
        if not np.allclose(got, reference, rtol=1e-4, atol=1e-5):
            print(f"{label}: edugrad disagrees with NumPy", file=sys.stderr)
            return 1
        repeat = args.repeat if per_op else max(5, args.repeat // 3)
        best = best_of(candidates, repeat, inner)
        scale = length if per_op else 1
        rows.append((label, {k: v / scale for k, v in best.items()}, per_op))

    print(f"\nthreads={args.threads or 'default'}  (best of {args.repeat} interleaved rounds)")
    header = f"{'workload':<30} {'edugrad':>11} {'torch':>11} {'numpy':>11} {'vs torch':>9} {'vs numpy':>9}"
    print(header)
    print("-" * len(header))
    for label, times, per_op in rows:
        unit, factor = ("us", 1e6) if per_op else ("ms", 1e3)
        cells = [f"{times[k] * factor:8.2f} {unit}" if k in times else f"{'-':>11}"
                 for k in ("edugrad", "torch", "numpy")]
        vs_torch = f"{times['edugrad'] / times['torch']:8.2f}x" if "torch" in times else f"{'-':>9}"
        vs_numpy = f"{times['edugrad'] / times['numpy']:8.2f}x"
        print(f"{label:<30} {cells[0]:>11} {cells[1]:>11} {cells[2]:>11} {vs_torch:>9} {vs_numpy:>9}")
    print("\ntargets: per op <= 2x torch; tanh chain <= 2x torch; h * w + b chain <= 1.3x "
          "torch; 1M elements <= 1.3x numpy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
