"""applications/learn_gpt.py and applications/gpt.py: the same model source run by torch and
by edugrad gives the same numbers; a short seeded run learns; the checkpoint generates; bad
arguments get a one-line error. (The default run's timing is in the README and benchmarks.)"""

from __future__ import annotations

import os
import subprocess
import sys
import types

import numpy as np
import pytest

import edugrad

APPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "applications")
sys.path.insert(0, APPS)

import gpt  # noqa: E402
import learn_gpt  # noqa: E402


def gpt_module_for(library: str):
    """applications/gpt.py with its edugrad imports pointed at `library` (torch or edugrad):
    the yardstick of the README, a program that runs with only its imports changed."""
    with open(os.path.join(APPS, "gpt.py")) as file:
        source = file.read()
    imports = "import edugrad\nfrom edugrad import nn\nfrom edugrad.nn import functional as F"
    assert imports in source
    if library == "torch":
        source = source.replace(imports, "import torch as edugrad\nfrom torch import nn\n"
                                         "from torch.nn import functional as F")
    module = types.ModuleType(f"gpt_{library}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, os.path.join(APPS, "gpt.py"), "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_same_gpt_source_gives_torch_numbers(dtype):
    torch = pytest.importorskip("torch", reason="PyTorch runs the same model source as the oracle")
    config = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
    theirs_module, ours_module = gpt_module_for("torch"), gpt_module_for("edugrad")
    torch.manual_seed(0)
    theirs = theirs_module.GPT(theirs_module.GPTConfig(**config)).to(getattr(torch, dtype))
    ours = ours_module.GPT(ours_module.GPTConfig(**config)).to(getattr(edugrad, dtype))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: edugrad.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    assert ours.lm_head.weight is ours.wte.weight  # still tied after loading
    rng = np.random.default_rng(0)
    idx, targets = rng.integers(0, 11, (3, 8)), rng.integers(0, 11, (3, 8))
    results = []
    for lib, model in ((torch, theirs), (edugrad, ours)):
        logits, loss = model(lib.tensor(idx), lib.tensor(targets))
        loss.backward()
        results.append((logits.detach().numpy(), loss.item(),
                        {name: p.grad.numpy() for name, p in model.named_parameters()}))
    tolerance = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(results[1][0], results[0][0], **tolerance)
    assert results[1][1] == pytest.approx(results[0][1], rel=1e-5)
    assert results[1][2].keys() == results[0][2].keys()
    for name in results[0][2]:
        np.testing.assert_allclose(results[1][2][name], results[0][2][name], **tolerance,
                                   err_msg=name)


def test_a_short_seeded_run_learns_and_its_checkpoint_generates(tmp_path, capsys):
    checkpoint = tmp_path / "gpt.safetensors"
    result = learn_gpt.main([
        "--steps", "300", "--n-layer", "2", "--n-head", "2", "--n-embd", "48",
        "--block-size", "32", "--batch-size", "16", "--lr", "3e-3", "--warmup", "30",
        "--eval-interval", "150", "--eval-iters", "8", "--quiet", "--length", "80",
        "--save", str(checkpoint), "--plot", "", "--seed", "0",
    ])
    history = result["history"]
    # ln(65) = 4.17 nats is a uniform guess and about 3.3 knows only which letters are common;
    # under 2.6 the model has learned which characters follow which (a bigram table gets ~2.5)
    assert history["eval_val"][0] > 4.0
    assert history["eval_val"][-1] < 2.6
    assert len(result["text"]) == 81  # the prompt, a newline, and 80 new characters
    capsys.readouterr()
    sampled = learn_gpt.main(["--sample", str(checkpoint), "--length", "40", "--seed", "0"])
    text = capsys.readouterr().out
    assert len(text.rstrip("\n")) >= 40
    model, vocabulary = sampled["model"], sampled["vocabulary"]
    assert model.config.n_embd == 48 and len(vocabulary) == 65
    assert set(text) <= set(vocabulary.characters) | {"\n"}


def test_data_from_a_file_and_the_learning_rate_schedule(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("abcab cabca\n" * 200, encoding="utf-8")
    result = learn_gpt.main(["--data", str(path), "--steps", "40", "--n-layer", "1",
                             "--n-embd", "16", "--n-head", "2", "--block-size", "8",
                             "--eval-interval", "20", "--eval-iters", "2", "--quiet",
                             "--save", "", "--plot", "", "--length", "10"])
    assert result["vocabulary"].characters == "\n abc"
    assert result["history"]["eval_val"][-1] < result["history"]["eval_val"][0]
    rates = [learn_gpt.learning_rate(s, 1e-3, 10, 100, 1e-4) for s in range(101)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert rates[100] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))  # cosine: never rises


def test_jit_trains_like_the_eager_run(tmp_path):
    """The default replays the step under edugrad.jit (with dropout, so RAND is replayed too);
    AdamW keeps its step count and lr in tensors there, so the losses agree with --no-jit's
    closely, not to the bit."""
    path = tmp_path / "tiny.txt"
    path.write_text("abcab cabca\n" * 200, encoding="utf-8")
    argv = ["--data", str(path), "--steps", "30", "--n-layer", "1", "--n-embd", "16",
            "--n-head", "2", "--block-size", "8", "--dropout", "0.1", "--eval-interval", "10",
            "--eval-iters", "2", "--quiet", "--save", "", "--plot", "", "--length", "10"]
    eager = learn_gpt.main(argv + ["--no-jit"])["history"]
    jitted = learn_gpt.main(argv)["history"]
    assert learn_gpt.parse_args(argv).jit and not learn_gpt.parse_args(argv + ["--monitor"]).jit
    np.testing.assert_allclose(jitted["train_loss"], eager["train_loss"], rtol=1e-4)
    np.testing.assert_allclose(jitted["eval_val"], eager["eval_val"], rtol=1e-4)


@pytest.mark.parametrize("flags,words", [
    (["--steps", "0"], "--steps must be positive"),
    (["--n-embd", "100", "--n-head", "3"], "multiple of --n-head"),
    (["--dropout", "1.5"], "--dropout"),
    (["--lr", "-1"], "--lr must be positive"),
    (["--top-k", "0"], "--top-k"),
    (["--data", "/no/such/file.txt"], "no such file"),
    (["--save", "/no/such/folder/x.safetensors"], "does not exist"),
    (["--device", "nosuchdevice"], "--device nosuchdevice"),
    (["--jit", "--monitor"], "--jit and --monitor don't go together"),
])
def test_bad_arguments_get_one_line_and_exit_2(flags, words):
    run = subprocess.run([sys.executable, os.path.join(APPS, "learn_gpt.py"), *flags],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert words in run.stderr
    assert "Traceback" not in run.stderr


def test_a_prompt_outside_the_vocabulary_is_refused_before_training(tmp_path, monkeypatch):
    text = tmp_path / "abc.txt"
    text.write_text("abc " * 100)
    monkeypatch.setattr(learn_gpt, "train", lambda *args: pytest.fail("trained first"))
    with pytest.raises(SystemExit, match=r"--prompt 'xyz': characters not in the text's "
                                         r"vocabulary: 'xyz'"):
        learn_gpt.main(["--data", str(text), "--prompt", "xyz"])


def test_text_that_is_not_utf8_is_refused_in_one_line(tmp_path):
    binary = tmp_path / "bytes.txt"
    binary.write_bytes(bytes([0xa5, 0xff, 0x00]) * 50)
    run = subprocess.run([sys.executable, os.path.join(APPS, "learn_gpt.py"), "--data",
                          str(binary)], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        f"learn_gpt.py: error: --data {binary}: not UTF-8 text ('utf-8' codec can't decode "
        "byte 0xa5 in position 0: invalid start byte)"]


def test_a_checkpoint_of_something_else_is_refused(tmp_path):
    other = tmp_path / "other.safetensors"
    edugrad.save({"weight": edugrad.zeros(2)}, str(other))
    with pytest.raises(SystemExit, match="not a learn_gpt checkpoint"):
        learn_gpt.main(["--sample", str(other)])


def test_generation_respects_top_k_and_the_context_window():
    edugrad.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=7, block_size=4, n_layer=1, n_head=1, n_embd=8))
    with edugrad.no_grad():
        model.lm_head.weight.zero_()  # all logits equal ...
    model.eval()
    out = model.generate(edugrad.zeros(2, 1, dtype=edugrad.int64), 12, top_k=7)
    assert out.shape == (2, 13)  # longer than block_size: the context is cropped
    assert 0 <= int(out.amin().item()) and int(out.amax().item()) < 7


def test_monitor_and_the_graph_with_blocks_collapsed(tmp_path, capsys):
    graph, plot = tmp_path / "step.svg", tmp_path / "curves.png"
    learn_gpt.main(["--steps", "6", "--n-layer", "2", "--n-head", "2", "--n-embd", "16",
                    "--block-size", "8", "--batch-size", "4", "--eval-interval", "6",
                    "--eval-iters", "1", "--quiet", "--length", "5", "--save", "",
                    "--plot", str(plot), "--monitor", "--graph", str(graph)])
    out = capsys.readouterr().out
    assert "2 blocks collapsed" in out
    svg = graph.read_text()
    assert "h.0" in svg and "h.1" in svg  # one node per block, named after the module
    assert "c_attn" not in svg            # the blocks' insides are folded away
    assert "gradient norms saved to" in out and "h.0.attn.c_attn.weight" in out
