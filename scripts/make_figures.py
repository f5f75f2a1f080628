"""Make the README's figures, with edugrad's own tools, into img/.

    python scripts/make_figures.py              # all three, under a minute on two cores
    python scripts/make_figures.py layers graph # only some: layers, graph, curves

    img/layers.png              the three layers and the files that hold them (matplotlib)
    img/backward_graph.png      a small network's loss as draw_graph sees it (Graphviz `dot`)
    img/backward_graph.svg      the same graph drawn by edugrad's own SVG layout (no Graphviz)
    img/training_curves.png     loss and accuracy of learn_mnist's MLP on the bundled data

Needs matplotlib (pip install -e ".[mnist]"); the PNG of the graph needs Graphviz's `dot`
(apt install graphviz, brew install graphviz); without it that one file is skipped, saying so.
Runs from any working directory.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMG = os.path.join(ROOT, "img")
sys.path.insert(0, os.path.join(ROOT, "applications"))  # for learn_mnist and mnist

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

import edugrad  # noqa: E402
from edugrad import nn  # noqa: E402
from edugrad.ops import REQUIRED_COUNT  # noqa: E402
from edugrad.viz import Graph, draw_graph  # noqa: E402

# the colours draw_graph uses, so the pictures look like one family
BLUE, GREY, AMBER, GREEN = (Graph.palette[kind] for kind in ("leaf", "op", "output", "module"))


# ---- (a) the three layers -------------------------------------------------------------------
LAYERS = [  # title, what it is, where it lives, colours
    ("Tensor / nn / optim", "the user API; mirrors PyTorch",
     "edugrad/tensor.py, math.py, shape.py, nn/, optim/", BLUE),
    ("Function", "one differentiable op: forward on TensorData, backward on Tensors",
     "edugrad/function.py, autograd.py (the backward traversal)", AMBER),
    ("TensorData + Backend", f"{REQUIRED_COUNT} primitive ops on raw buffers, no autograd",
     "edugrad/data.py, ops.py (the primitives' specs), backend.py", GREEN),
]
BACKENDS = [  # name, device string, file
    ("NumPy", '"cpu"', "numpy_backend.py"),
    ("CuPy", '"cuda"', "cupy_backend.py"),
    ("pure Python", '"python"', "python_backend.py"),
    ("yours", "register_backend", "template.py"),
]
CALLS = [  # what crosses each boundary, top to bottom
    "Mul.apply(x, y): every Tensor op is a Function",
    "forward: x.mul(y), x.exp(), x.sum(axes) ... on TensorData",
    "backend.mul(a, b): one method per primitive",
]


def box(ax, x, y, width, height, colors, lines, sizes) -> None:
    fill, border = colors
    ax.add_patch(FancyBboxPatch((x, y), width, height, boxstyle="round,pad=0,rounding_size=0.12",
                                facecolor=fill, edgecolor=border, linewidth=1.5))
    step = height / (len(lines) + 1)
    for i, (line, (size, weight, family)) in enumerate(zip(lines, sizes)):
        ax.text(x + width / 2, y + height - step * (i + 1), line, ha="center", va="center",
                fontsize=size, fontweight=weight, family=family, color="#111827")


def arrow(ax, x, top, bottom, label) -> None:
    ax.annotate("", xy=(x, bottom), xytext=(x, top),
                arrowprops={"arrowstyle": "-|>", "color": "#6b7280", "lw": 1.5})
    ax.text(x + 0.15, (top + bottom) / 2, label, va="center", fontsize=9, color="#374151",
            style="italic")


def layers_figure(path: str) -> str:
    fig, ax = plt.subplots(figsize=(9, 6.2))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10.4)
    ax.axis("off")
    styles = [(14, "bold", "sans-serif"), (10, "normal", "sans-serif"), (9, "normal", "monospace")]
    top, height, gap = 10.2, 1.7, 0.85
    for i, (title, what, where, colors) in enumerate(LAYERS):
        y = top - height - i * (height + gap)
        box(ax, 0.3, y, 9.4, height, colors, [title, what, where], styles)
        arrow(ax, 1.2, y, y - gap, CALLS[i])
    width, y = 2.2, top - height - 3 * (height + gap)
    for i, (name, device, file) in enumerate(BACKENDS):
        x = 0.3 + i * (9.4 - width) / 3
        box(ax, x, y, width, height, GREY, [name, f"device={device}", f"backends/{file}"],
            [(12, "bold", "sans-serif"), (9, "normal", "monospace"), (8, "normal", "monospace")])
    fig.tight_layout(pad=0.3)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# ---- (b) a backward graph -------------------------------------------------------------------
def small_network_loss():
    """A 2-4-3 classifier on four points: small enough to read every box."""
    edugrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3))
    x = edugrad.randn(4, 2)
    y = edugrad.tensor([0, 2, 1, 2])
    return model, nn.functional.cross_entropy(model(x), y)


def graph_figures(png: str, svg: str) -> list:
    model, loss = small_network_loss()
    graph = draw_graph(loss, params=model)
    with open(svg, "w", encoding="utf-8") as f:
        f.write(graph.svg())
    made = [svg]
    if shutil.which("dot"):
        made.append(graph.render(png))
    else:
        print(f"  Graphviz's dot is not installed: {os.path.relpath(png, ROOT)} not made")
    return made


# ---- (c) training curves --------------------------------------------------------------------
# The default run: the CNN on the bundled 5,000 images, about half a minute on two cores.
CURVES_RUN = []


def curves_figure(path: str) -> str:
    import learn_mnist  # applications/learn_mnist.py: its own loop and its own plot

    learn_mnist.main(CURVES_RUN + ["--quiet", "--save", "", "--plot", path])
    return path


FIGURES = {
    "layers": lambda: [layers_figure(os.path.join(IMG, "layers.png"))],
    "graph": lambda: graph_figures(os.path.join(IMG, "backward_graph.png"),
                                   os.path.join(IMG, "backward_graph.svg")),
    "curves": lambda: [curves_figure(os.path.join(IMG, "training_curves.png"))],
}


def main(argv=None) -> None:
    wanted = (sys.argv[1:] if argv is None else argv) or list(FIGURES)
    unknown = [name for name in wanted if name not in FIGURES]
    if unknown:
        raise SystemExit(f"make_figures: unknown figure {unknown}; choose from {list(FIGURES)}")
    os.makedirs(IMG, exist_ok=True)
    for name in wanted:
        started = time.perf_counter()
        print(f"{name}:")
        for path in FIGURES[name]():
            size = os.path.getsize(path) / 1024
            print(f"  {os.path.relpath(path, ROOT)}  {size:.0f} KB")
        print(f"  {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
