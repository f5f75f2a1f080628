"""applications/learn_mnist.py end to end: a short seeded run on the bundled data reaches 90%
on the official 10,000-image test set, and its checkpoint loads back into the same model.
(The full default run and its timing live in the README and benchmarks, not here.)"""

import os
import subprocess
import sys

import pytest

import edugrad

APPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "applications")
sys.path.insert(0, APPS)

import learn_mnist  # noqa: E402


def test_a_short_mlp_run_reaches_90_percent_on_the_official_test_set(tmp_path):
    checkpoint = tmp_path / "mlp.safetensors"
    result = learn_mnist.main(["--model", "mlp", "--epochs", "3", "--quiet", "--no-plot",
                               "--save", str(checkpoint), "--seed", "0"])
    assert result["test_acc"] >= 0.90
    assert len(result["history"]["test_acc"]) == 3
    # the checkpoint holds the trained weights: loaded into a fresh model it scores the same
    model = learn_mnist.build_model("mlp")
    model.load_state_dict(edugrad.load(str(checkpoint)))
    _, _, test_x, test_y = learn_mnist.mnist.load_bundled()
    inputs, labels = learn_mnist.to_inputs(test_x), test_y.astype("int64")
    _, accuracy = learn_mnist.evaluate(model, inputs, labels, "cpu")
    assert accuracy == pytest.approx(result["test_acc"], abs=1e-9)


def test_a_short_cnn_run_learns(tmp_path):
    result = learn_mnist.main(["--model", "cnn", "--epochs", "1", "--limit", "1000", "--quiet",
                               "--no-plot", "--save", ""])
    assert result["test_acc"] >= 0.50  # 16 steps on 1,000 images: far above chance (10%)


def test_help_explains_the_flags():
    out = subprocess.run([sys.executable, os.path.join(APPS, "learn_mnist.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--model", "--epochs", "--batch-size", "--lr", "--optimizer", "--seed",
                 "--device", "--data", "--data-dir", "--save", "--no-plot", "--monitor"):
        assert flag in out


def test_the_plot_is_saved_or_the_reason_is_given(tmp_path):
    history = {"step": [1, 2], "train_loss": [2.0, 1.0], "epoch_step": [2],
               "test_loss": [1.5], "test_acc": [0.5]}
    message = learn_mnist.plot_curves(history, str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").exists() or "matplotlib is not installed" in message
