"""applications/learn_mnist.py end to end: a short seeded run on the bundled data reaches 90%
on the official 10,000-image test set, and its checkpoint loads back into the same model.
(The full default run and its timing live in the README and benchmarks, not here.)"""

import os
import subprocess
import sys

import numpy as np
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


def test_jit_reaches_the_same_accuracy_as_the_eager_run():
    """--jit replays the step; its Adam keeps t and lr in tensors (float32 bias corrections
    instead of Python doubles), so the runs agree closely, not to the bit."""
    argv = ["--model", "mlp", "--epochs", "3", "--limit", "2000", "--quiet", "--no-plot",
            "--save", "", "--seed", "1"]
    eager = learn_mnist.main(argv)
    jitted = learn_mnist.main(argv + ["--jit"])
    assert jitted["test_acc"] == pytest.approx(eager["test_acc"], abs=0.01)
    np.testing.assert_allclose(jitted["history"]["train_loss"][:50],
                               eager["history"]["train_loss"][:50], rtol=1e-3)


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


# ---- the command line: checked up front, documented once -----------------------------------------
BAD_ARGUMENTS = [
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--epochs", "-1"], "--epochs must be at least 1, got -1"),
    (["--limit", "0"], "--limit must be at least 1, got 0"),
    (["--limit", "-3"], "--limit must be at least 1, got -3"),
    (["--lr", "0"], "--lr must be a positive number, got 0.0"),
    (["--lr", "-0.1"], "--lr must be a positive number, got -0.1"),
    (["--lr", "inf"], "--lr must be a positive number, got inf"),
    (["--plot", "{missing}/curves.png"], "--plot {missing}/curves.png: no folder {missing}"),
    (["--save", "{missing}/model.safetensors"], "--save {missing}/model.safetensors: no folder"),
    (["--save", "{tmp}"], "--save {tmp}: a folder, not a file name"),
    (["--monitor", "--plot", "{missing}/c.png"], "--plot {missing}/c.png: no folder"),
    (["--device", "no-such-device"], "--device no-such-device: unknown device 'no-such-device'"),
    (["--data", "full", "--data-dir", "{tmp}/a-file"], "--data-dir {tmp}/a-file: not a folder"),
    (["--jit", "--monitor"], "--jit and --monitor don't go together"),
]


@pytest.mark.parametrize("argv, message", BAD_ARGUMENTS,
                         ids=[" ".join(argv) for argv, _ in BAD_ARGUMENTS])
def test_bad_arguments_end_the_run_before_anything_is_loaded(tmp_path, monkeypatch, capsys, argv,
                                                             message):
    (tmp_path / "a-file").write_text("")
    fill = dict(missing=tmp_path / "missing", tmp=tmp_path)
    argv = [arg.format(**fill) for arg in argv]

    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before the arguments were checked")

    monkeypatch.setattr(learn_mnist.mnist, "load_bundled", no_data)
    monkeypatch.setattr(learn_mnist.mnist, "load_full", no_data)
    with pytest.raises(SystemExit) as info:
        learn_mnist.main(argv + ["--quiet"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(f"learn_mnist.py: error: {message.format(**fill)}")
    assert "Traceback" not in err


def test_an_unknown_device_is_one_line_without_a_traceback():
    result = subprocess.run([sys.executable, os.path.join(APPS, "learn_mnist.py"), "--device",
                             "gpu0"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "learn_mnist.py: error: --device gpu0: unknown device 'gpu0'")


def test_help_documents_every_option_and_each_default_once():
    parser = learn_mnist.build_parser()
    for action in parser._actions:
        assert action.help, f"{action.option_strings} has no help"
    out = subprocess.run([sys.executable, os.path.join(APPS, "learn_mnist.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "(default: None)" not in out and "(default: False)" not in out
    for action in parser._actions:
        text = action.help % {"default": action.default} if "%(" in action.help else action.help
        assert text.count("default") <= 1, action.option_strings
        assert " ".join(text.split()) in " ".join(out.split()), action.option_strings


def test_monitor_says_where_its_plot_went(tmp_path, capsys):
    plot = tmp_path / "curves.png"
    learn_mnist.main(["--model", "mlp", "--epochs", "1", "--limit", "200", "--quiet",
                      "--monitor", "--save", "", "--plot", str(plot)])
    out = capsys.readouterr().out
    gradients = tmp_path / "curves_gradients.png"
    if "matplotlib" in out and not gradients.exists():
        assert "no gradient plot saved" in out
    else:
        assert f"gradient plot saved to {gradients}" in out and gradients.exists()


def test_the_files_it_writes_by_default_are_ignored_by_git():
    root = os.path.dirname(APPS)
    if not os.path.exists(os.path.join(root, ".git")):
        pytest.skip("not a git checkout")
    parser = learn_mnist.build_parser()
    defaults = [parser.get_default("save"), parser.get_default("plot"),
                learn_mnist.gradient_plot_path(parser.get_default("plot"))]
    for name in defaults:
        for where in ("", "applications/"):  # run from the root or beside the script
            result = subprocess.run(["git", "check-ignore", "--no-index", "-q", where + name],
                                    cwd=root)
            assert result.returncode == 0, f"{where + name} is not ignored by .gitignore"
