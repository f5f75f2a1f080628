"""Training-step speed and memory: edugrad against PyTorch CPU and hand-written NumPy.

    python benchmarks/bench_training.py               # speed at 1 thread and the default count
    python benchmarks/bench_training.py --memory      # peak RSS of 500 CNN steps, and growth
    python benchmarks/bench_training.py --jit         # adds edugrad.jit's replayed step

A step is forward + backward + Adam on a batch of 128 MNIST-shaped inputs with cross-entropy:

    MLP-S   784-128-10
    MLP-L   784-512-512-10
    CNN-S   conv 1-8 3x3, ReLU, maxpool 2, conv 8-16 3x3, ReLU, maxpool 2, flatten, linear 400-10
    LSTM    1-layer LSTM 64-128 over 32 steps (batch 32), linear 128-10 on the last step
            (edugrad and PyTorch only: the NumPy reference has no LSTM)
    GPT     applications/gpt.py at learn_gpt.py's defaults (4 layers, 4 heads, 128 wide,
            context 64, batch 32), AdamW and gradient clipping as learn_gpt.py; PyTorch runs
            the very same source with its imports pointed at torch

For each thread setting one worker process builds every (model, framework) pair and times
them in interleaved rounds, so a noisy moment hits all of them alike; the best round counts.
Targets (issue 6): at most 1.5x PyTorch everywhere, at most 1.3x NumPy on MLP-L and CNN-S;
peak RSS of the CNN run at most 2x NumPy's, and no growth from step 100 to step 500.
With --jit a fourth column times the same step under edugrad.jit (Adam with capturable=True,
so that the replay has no Python number that changes); targets (issue 13): MLP-S within 1.1x
NumPy and at most 0.9x PyTorch, MLP-L and CNN-S within 1.05x NumPy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# set before NumPy loads OpenBLAS, whose idle threads then sleep (backends/numpy_backend.py)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "12")

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = ("MLP-S", "MLP-L", "CNN-S", "LSTM", "GPT")
BATCH = 128
LSTM_SHAPE = (32, 32, 64)  # batch, steps, features (batch_first)
GPT_SHAPE = (32, 64)  # batch, context
APPLICATIONS = os.path.join(os.path.dirname(HERE), "applications")


def gpt_module(library: str):
    """applications/gpt.py with its `import edugrad` lines pointed at `library`."""
    import types

    with open(os.path.join(APPLICATIONS, "gpt.py")) as file:
        source = file.read()
    if library == "torch":
        source = source.replace(
            "import edugrad\nfrom edugrad import nn\nfrom edugrad.nn import functional as F",
            "import torch as edugrad\nfrom torch import nn\nfrom torch.nn import functional as F")
    module = types.ModuleType(f"gpt_{library}")
    sys.modules[module.__name__] = module
    exec(compile(source, "gpt.py", "exec"), module.__dict__)
    return module


def make_gpt(lib, device, synchronize, jit=False):
    gpt = gpt_module(lib.__name__)
    lib.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig()).to(device)
    opt = lib.optim.AdamW(model.parameter_groups(0.1), lr=1e-3, betas=(0.9, 0.99),
                          capturable=jit)

    def step(x, y):
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        lib.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        synchronize()
        return loss

    return runner(lib, step, device, jit, synchronize)


def runner(lib, step, device, jit, synchronize):
    """What the worker times: the step (under lib.jit when asked) and how inputs are made.
    A replay runs no Python of the step, its synchronize() included: it is called after."""

    def convert(array):
        return lib.tensor(array, device=device)

    if not jit:
        return step, convert, convert
    jitted = lib.jit(step)

    def replayed(x, y):
        loss = jitted(x, y)
        synchronize()
        return loss

    return replayed, convert, convert


def lstm_classifier(nn):
    """An LSTM reading a sequence and a linear layer classifying its last hidden state."""

    class LastStep(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(LSTM_SHAPE[2], 128, batch_first=True)
            self.head = nn.Linear(128, 10)

        def forward(self, x):
            output, _ = self.lstm(x)
            return self.head(output[:, -1])

    return LastStep()


def make_framework(lib, name, device="cpu", synchronize=lambda: None, jit=False):
    """The model in edugrad or PyTorch: the same code, `lib` is the module. On a GPU each step
    ends with `synchronize`, so the time counted is the time the work took. With `jit`, the
    step is edugrad.jit's (and Adam keeps its step count in a tensor: capturable=True)."""
    nn, optim = lib.nn, lib.optim
    if name == "GPT":
        return make_gpt(lib, device, synchronize, jit)
    lib.manual_seed(0)
    if name == "MLP-S":
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    elif name == "MLP-L":
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512),
                              nn.ReLU(), nn.Linear(512, 10))
    elif name == "LSTM":
        model = lstm_classifier(nn)
    else:
        model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3),
                              nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 10))
    model = model.to(device)
    opt = optim.Adam(model.parameters(), lr=1e-3, capturable=jit)
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        synchronize()
        return loss

    return runner(lib, step, device, jit, synchronize)


def make_edugrad(name, device="cpu"):
    import edugrad

    return make_framework(edugrad, name, device, edugrad.get_backend(device).synchronize)


def make_edugrad_jit(name, device="cpu"):
    import edugrad

    return make_framework(edugrad, name, device, edugrad.get_backend(device).synchronize,
                          jit=True)


def make_torch(name, device="cpu"):
    import torch

    if device.startswith("cuda"):
        return make_framework(torch, name, "cuda", torch.cuda.synchronize)
    return make_framework(torch, name)


def make_numpy(name, device="cpu"):
    sys.path.insert(0, HERE)
    import numpy_reference as ref

    if name == "MLP-S":
        model = ref.MLP([784, 128, 10])
    elif name == "MLP-L":
        model = ref.MLP([784, 512, 512, 10])
    else:
        model = ref.CNN()
    flat = name != "CNN-S"

    def step(x, y):
        return model.step(x.reshape(len(x), -1) if flat else x, y)

    return step, lambda a: a, lambda a: a


FRAMEWORKS = {"edugrad": make_edugrad, "jit": make_edugrad_jit, "torch": make_torch,
              "numpy": make_numpy}


def worker(threads: int | None, rounds: int, steps: int, device: str = "cpu",
           models: tuple = MODELS, jit: bool = False) -> dict:
    import numpy as np

    available = dict(FRAMEWORKS)
    if not jit:
        available.pop("jit")
    try:
        import torch

        if threads:
            torch.set_num_threads(threads)
        if device.startswith("cuda") and not torch.cuda.is_available():
            available.pop("torch")  # a CPU build of torch: no fair comparison on the GPU
    except ImportError:
        available.pop("torch")
    if device != "cpu":
        available.pop("numpy")  # the hand-written NumPy steps run on the CPU only
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, BATCH).astype(np.int64)
    sequences = rng.standard_normal(LSTM_SHAPE, dtype=np.float32)
    sequence_labels = rng.integers(0, 10, LSTM_SHAPE[0]).astype(np.int64)
    tokens = rng.integers(0, 65, (GPT_SHAPE[0], GPT_SHAPE[1] + 1)).astype(np.int64)
    data = {"LSTM": (sequences, sequence_labels), "GPT": (tokens[:, :-1], tokens[:, 1:])}
    runs = {}
    for model in models:
        for framework, make in available.items():
            if model in ("LSTM", "GPT") and framework == "numpy":
                continue
            step, convert_x, convert_y = make(model, device)
            inputs, labels = data.get(model, (x, y))
            runs[(model, framework)] = (step, convert_x(inputs), convert_y(labels))
    best = {key: float("inf") for key in runs}
    for key, (step, bx, by) in runs.items():  # warm up: first-call costs are not the subject
        for _ in range(4):  # (edugrad.jit: a warm-up call, two recordings, one replay)
            step(bx, by)
    for _ in range(rounds):
        for key, (step, bx, by) in runs.items():
            start = time.perf_counter()
            for _ in range(steps):
                step(bx, by)
            best[key] = min(best[key], (time.perf_counter() - start) / steps)
    return {f"{m}|{f}": t for (m, f), t in best.items()}


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def memory_worker(framework: str, steps: int) -> dict:
    import resource

    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, BATCH).astype(np.int64)
    step, cx, cy = FRAMEWORKS[framework]("CNN-S", "cpu")
    bx, by = cx(x), cy(y)
    at = {}
    for i in range(1, steps + 1):
        step(bx, by)
        if i in (100, steps):
            at[i] = rss_kib()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_kib": peak, "rss_100": at[100], "rss_end": at[steps]}


def run_child(args: list, threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    out = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--memory", action="store_true", help="measure memory instead of speed")
    parser.add_argument("--memory-steps", type=int, default=500)
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, from {', '.join(MODELS)} (default: all)")
    parser.add_argument("--device", default="cpu",
                        help="cuda: edugrad on CuPy against PyTorch CUDA (when torch has CUDA)")
    parser.add_argument("--jit", action="store_true",
                        help="also time the step under edugrad.jit (capture and replay)")
    parser.add_argument("--worker", choices=["speed", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--framework", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.models.split(",")) - set(MODELS)
    if unknown:
        parser.error(f"--models: unknown {', '.join(sorted(unknown))}; choose from {', '.join(MODELS)}")
    # the NumPy backend keeps a step's freed temporaries for reuse (README, Speed): every
    # worker inherits the switch; EDUGRAD_KEEP_FREED_MEMORY=0 measures without
    os.environ.setdefault("EDUGRAD_KEEP_FREED_MEMORY", "1")

    if args.worker == "speed":
        print(json.dumps(worker(args.threads or None, args.rounds, args.steps, args.device,
                                tuple(args.models.split(",")), args.jit)))
        return 0
    if args.worker == "memory":
        print(json.dumps(memory_worker(args.framework, args.memory_steps)))
        return 0

    if args.memory:
        print(f"CNN-S, batch {BATCH}, {args.memory_steps} steps, 1 thread")
        results = {f: run_child(["--worker", "memory", "--framework", f,
                                 "--memory-steps", str(args.memory_steps)], 1)
                   for f in ("edugrad", "numpy", "torch")}
        for f, r in results.items():
            print(f"{f:<8} peak RSS {r['peak_kib'] / 1024:7.1f} MiB   RSS at step 100 "
                  f"{r['rss_100'] / 1024:7.1f} MiB, at step {args.memory_steps} "
                  f"{r['rss_end'] / 1024:7.1f} MiB")
        ratio = results["edugrad"]["peak_kib"] / results["numpy"]["peak_kib"]
        growth = results["edugrad"]["rss_end"] - results["edugrad"]["rss_100"]
        print(f"edugrad peak / numpy peak: {ratio:.2f}x (target <= 2x); growth 100->"
              f"{args.memory_steps}: {growth / 1024:.1f} MiB (target: none)")
        return 0

    for threads in (1, None):
        label = "1 thread" if threads else f"default threads ({os.cpu_count()} cores)"
        times = run_child(["--worker", "speed", "--rounds", str(args.rounds), "--steps",
                           str(args.steps), "--threads", str(threads or 0), "--device",
                           args.device, "--models", args.models] + ["--jit"] * args.jit,
                          threads)
        print(f"\n{label}, device {args.device}: ms per training step (batch {BATCH}; LSTM: "
              f"batch {LSTM_SHAPE[0]} x {LSTM_SHAPE[1]} steps; Adam, cross-entropy)")
        columns = [f for f in FRAMEWORKS if args.jit or f != "jit"]
        ours = ["edugrad", "jit"] if args.jit else ["edugrad"]
        print(f"{'model':<7} " + " ".join(f"{f:>9}" for f in columns) + "".join(
            f" {f + ' / torch':>15} {f + ' / numpy':>15}" for f in ours))
        for model in args.models.split(","):
            t = {f: times.get(f"{model}|{f}") for f in columns}
            cells = [f"{t[f] * 1e3:9.2f}" if t[f] else f"{'-':>9}" for f in columns]
            ratios = []
            for f in ours:
                for other in ("torch", "numpy"):
                    ratios.append(f"{t[f] / t[other]:14.2f}x" if t[f] and t[other]
                                  else f"{'-':>15}")
            print(f"{model:<7} {' '.join(cells)} {' '.join(ratios)}")
    print("\ntargets: <= 1.5x torch on every model (GPT: <= 1.3x); <= 1.3x numpy on MLP-L "
          "and CNN-S")
    if args.jit:
        print("jit targets: MLP-S <= 1.1x numpy and <= 0.9x torch; MLP-L and CNN-S <= 1.05x numpy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
