"""Attention and transformers against torch.nn with copied weights (edugrad/nn/attention.py,
edugrad/nn/transformer.py, F.scaled_dot_product_attention): outputs, input and parameter
gradients, float32 and float64, train (dropout 0) and eval, masks of both conventions, state
dict keys; gradcheck in float64; a hand-computed case; the errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edugrad
from edugrad import nn
from edugrad.nn import functional as F


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is the oracle for attention layers "
                                               "(pip install torch==2.13.0)")


TOLERANCE = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-9, atol=1e-10)}


def _copy_weights(ours, theirs):
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: edugrad.tensor(v.detach().numpy())
                          for k, v in theirs.state_dict().items()})


def _close(ours, theirs, dtype):
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), **TOLERANCE[dtype])


# ---- scaled_dot_product_attention ----------------------------------------------------------------
@st.composite
def attention_shapes(draw):
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    length, source = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    e, ev = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    mask = draw(st.sampled_from(["none", "bool", "float", "causal"]))
    # the mask broadcasts: (L, S), or with the batch dims
    mask_shape = (length, source) if draw(st.booleans()) else batch + (length, source)
    return batch, length, source, e, ev, mask, mask_shape


@settings(max_examples=60, deadline=None)
@given(attention_shapes(), st.sampled_from(["float32", "float64"]), st.data())
def test_sdpa_matches_torch(shapes, dtype, data):
    torch = _torch()
    batch, length, source, e, ev, mask_kind, mask_shape = shapes
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    arrays = [rng.standard_normal(batch + shape).astype(dtype)
              for shape in ((length, e), (source, e), (source, ev))]
    options = {}
    if mask_kind == "bool":
        allowed = rng.random(mask_shape) < 0.7
        allowed[..., 0] = True  # every row attends somewhere (else both give nan)
        options["attn_mask"] = allowed
    elif mask_kind == "float":
        options["attn_mask"] = rng.standard_normal(mask_shape).astype(dtype)
    elif mask_kind == "causal":
        options["is_causal"] = True
    if data.draw(st.booleans()):
        options["scale"] = 0.37
    results = []
    for lib in (torch, edugrad):
        inputs = [lib.tensor(a, requires_grad=True) for a in arrays]
        kwargs = {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
        if lib is torch:
            out = torch.nn.functional.scaled_dot_product_attention(*inputs, **kwargs)
        else:
            out = F.scaled_dot_product_attention(*inputs, **kwargs)
        (out * lib.tensor(np.cos(np.arange(out.numel())).reshape(tuple(out.shape))
                          .astype(dtype))).sum().backward()
        results.append((out, [t.grad for t in inputs]))
    _close(results[1][0], results[0][0], dtype)
    for ours, theirs in zip(results[1][1], results[0][1]):
        _close(ours, theirs, dtype)


def test_sdpa_gradcheck():
    rng = np.random.default_rng(0)
    q, k, v = (edugrad.tensor(rng.standard_normal(s), requires_grad=True)
               for s in ((2, 3, 4), (2, 5, 4), (2, 5, 3)))
    mask = edugrad.tensor(rng.random((3, 5)) < 0.8)
    assert edugrad.autograd.gradcheck(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask), [q, k, v])
    assert edugrad.autograd.gradcheck(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [q, k, v])


def test_sdpa_gradcheck_float_mask_and_gradgradcheck():
    # the one-op path (ScaledDotProductAttention): a float mask that wants its gradient, and
    # grad of grad, whose backward recomputes the weights as ops of q, k and the mask
    rng = np.random.default_rng(1)
    q, k, v = (edugrad.tensor(rng.standard_normal(s), requires_grad=True)
               for s in ((2, 3, 4), (2, 5, 4), (2, 5, 3)))
    bias = edugrad.tensor(rng.standard_normal((3, 5)), requires_grad=True)
    sdpa = F.scaled_dot_product_attention
    assert edugrad.autograd.gradcheck(lambda q, k, v, b: sdpa(q, k, v, attn_mask=b),
                                      [q, k, v, bias])
    assert edugrad.autograd.gradgradcheck(lambda q, k, v, b: sdpa(q, k, v, attn_mask=b, scale=0.7),
                                          [q, k, v, bias])
    assert edugrad.autograd.gradgradcheck(lambda q, k, v: sdpa(q, k, v, is_causal=True),
                                          [q, k, v])


@pytest.mark.parametrize("mask", ["none", "causal", "float"])
def test_sdpa_one_op_matches_its_composition(mask):
    """The one Function against softmax(q k^T scale + mask) v in Tensor ops (float64): values
    and every gradient, the mask's included, with a (B, 1, L, S) mask broadcast over heads."""
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(s) for s in ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 2))]
    bias_array = rng.standard_normal((2, 1, 4, 6))
    results = []
    for composed in (False, True):
        q, k, v = (edugrad.tensor(a, requires_grad=True) for a in arrays)
        bias = edugrad.tensor(bias_array, requires_grad=True)
        options = {"none": {}, "causal": {"is_causal": True}, "float": {"attn_mask": bias}}[mask]
        if composed:
            scores = q @ k.transpose(-2, -1) * 0.3
            if mask == "causal":
                scores = scores + edugrad.where(F.causal_mask(4, 6), 0.0, -math.inf).double()
            elif mask == "float":
                scores = scores + bias
            out = scores.softmax(-1) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, scale=0.3, **options)
            assert out.grad_fn.name == "ScaledDotProductAttentionBackward"
        (out * edugrad.tensor(np.sin(np.arange(out.numel())).reshape(out.shape))).sum().backward()
        grads = [t.grad for t in (q, k, v)] + ([bias.grad] if mask == "float" else [])
        results.append([out] + grads)
    for ours, theirs in zip(*results):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12,
                                   atol=1e-13)


def test_sdpa_hand_computed():
    # one query [1, 0]; keys [1, 0] and [0, 1]; scale 1: scores [1, 0], weights e/(e+1), 1/(e+1)
    q = edugrad.tensor([[1.0, 0.0]])
    k = edugrad.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = edugrad.tensor([[10.0], [20.0]])
    out = F.scaled_dot_product_attention(q, k, v, scale=1.0)
    e = math.e
    assert out.shape == (1, 1)
    assert out.item() == pytest.approx(10 * e / (e + 1) + 20 / (e + 1), rel=1e-6)
    causal = F.scaled_dot_product_attention(k, k, v, is_causal=True, scale=1.0)
    assert causal[0].item() == pytest.approx(10.0)  # the first position sees only itself


def test_sdpa_errors():
    q = edugrad.zeros(2, 3)
    with pytest.raises(RuntimeError, match="not both"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=edugrad.ones(2, 2, dtype=edugrad.bool),
                                       is_causal=True)
    with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(2, 4\)"):
        F.scaled_dot_product_attention(q, edugrad.zeros(2, 4), edugrad.zeros(2, 4))


# ---- MultiheadAttention ------------------------------------------------------------------------
MHA_CASES = [
    dict(),
    dict(batch_first=True),
    dict(bias=False),
    dict(kdim=3, vdim=5),
    dict(batch_first=True, key_padding_mask=True),
    dict(attn_mask="bool"),
    dict(attn_mask="float", average_attn_weights=False),
    dict(attn_mask="3d"),
    dict(unbatched=True),
    dict(self_attention=True, attn_mask="causal"),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", MHA_CASES, ids=lambda c: ",".join(c) or "default")
def test_multihead_attention_matches_torch(case, dtype):
    torch = _torch()
    rng = np.random.default_rng(0)
    embed, heads, batch, length, source = 8, 2, 3, 4, 5
    options = {k: case[k] for k in ("batch_first", "bias", "kdim", "vdim") if k in case}
    tm = torch.nn.MultiheadAttention(embed, heads, **options).to(getattr(torch, dtype))
    em = nn.MultiheadAttention(embed, heads, dtype=getattr(edugrad, dtype), **options)
    _copy_weights(em, tm)
    if case.get("self_attention"):
        source = length

    def shaped(features, seq):
        if case.get("unbatched"):
            return rng.standard_normal((seq, features)).astype(dtype)
        shape = (batch, seq, features) if case.get("batch_first") else (seq, batch, features)
        return rng.standard_normal(shape).astype(dtype)

    q = shaped(embed, length)
    k, v = shaped(case.get("kdim", embed), source), shaped(case.get("vdim", embed), source)
    kwargs = {"average_attn_weights": case.get("average_attn_weights", True)}
    if case.get("key_padding_mask"):
        hidden = np.zeros((batch, source), bool)
        hidden[:, -1] = True
        kwargs["key_padding_mask"] = hidden
    mask = case.get("attn_mask")
    if mask == "bool":
        kwargs["attn_mask"] = np.triu(np.ones((length, source), bool), 2)
    elif mask == "float":
        kwargs["attn_mask"] = rng.standard_normal((length, source)).astype(dtype)
    elif mask == "3d":
        kwargs["attn_mask"] = rng.standard_normal((batch * heads, length, source)).astype(dtype)
    elif mask == "causal":
        kwargs["attn_mask"] = np.triu(np.ones((length, length), bool), 1)
        kwargs["is_causal"] = True
    results = []
    for lib, module in ((torch, tm), (edugrad, em)):
        qt = lib.tensor(q, requires_grad=True)
        kt, vt = (qt, qt) if case.get("self_attention") else (
            lib.tensor(k, requires_grad=True), lib.tensor(v, requires_grad=True))
        given = {key: lib.tensor(val) if isinstance(val, np.ndarray) else val
                 for key, val in kwargs.items()}
        out, weights = module(qt, kt, vt, **given)
        (out.sum() + (weights * weights).sum()).backward()
        grads = [qt.grad] + ([] if case.get("self_attention") else [kt.grad, vt.grad])
        grads += [p.grad for p in module.parameters()]
        results.append((out, weights, grads))
    for ours, theirs in zip(results[1][:2], results[0][:2]):
        _close(ours, theirs, dtype)
    for ours, theirs in zip(results[1][2], results[0][2]):
        _close(ours, theirs, dtype)


def test_multihead_attention_gradcheck_and_no_weights():
    edugrad.manual_seed(0)
    mha = nn.MultiheadAttention(4, 2, batch_first=True, dtype=edugrad.float64)
    x = edugrad.tensor(np.random.default_rng(0).standard_normal((2, 3, 4)), requires_grad=True)
    assert edugrad.autograd.gradcheck(lambda x: mha(x, x, x)[0], [x])
    out, weights = mha(x, x, x, need_weights=False)
    assert weights is None and out.shape == (2, 3, 4)


def test_multihead_attention_errors():
    with pytest.raises(ValueError, match="multiple of num_heads"):
        nn.MultiheadAttention(6, 4)
    mha = nn.MultiheadAttention(4, 2)
    with pytest.raises(RuntimeError, match="last dim 4"):
        mha(edugrad.zeros(3, 2, 5), edugrad.zeros(3, 2, 5), edugrad.zeros(3, 2, 5))
    with pytest.raises(RuntimeError, match="give attn_mask"):
        x = edugrad.zeros(3, 2, 4)
        mha(x, x, x, is_causal=True)


# ---- transformer layers ----------------------------------------------------------------------------
LAYER_CASES = [
    dict(),
    dict(norm_first=True),
    dict(activation="gelu"),
    dict(batch_first=True, norm_first=True, activation="gelu"),
    dict(bias=False),
]


def _layer_pair(torch, kind, options, dtype):
    tcls, ecls = getattr(torch.nn, kind), getattr(nn, kind)
    torch.manual_seed(0)
    theirs = tcls(8, 2, 16, dropout=0.0, **options).to(getattr(torch, dtype))
    ours = ecls(8, 2, 16, dropout=0.0, dtype=getattr(edugrad, dtype), **options)
    _copy_weights(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("options", LAYER_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
@pytest.mark.parametrize("kind", ["TransformerEncoderLayer", "TransformerDecoderLayer"])
def test_transformer_layers_match_torch(kind, options, dtype):
    torch = _torch()
    ours, theirs = _layer_pair(torch, kind, options, dtype)
    rng = np.random.default_rng(1)
    shape = (3, 5, 8) if options.get("batch_first") else (5, 3, 8)
    x, memory = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    results = []
    for lib, module in ((torch, theirs), (edugrad, ours)):
        for mode in ("train", "eval"):
            getattr(module, mode)()
            xt = lib.tensor(x, requires_grad=True)
            mask = (torch.nn.Transformer if lib is torch else nn.Transformer) \
                .generate_square_subsequent_mask(5, dtype=getattr(lib, dtype))
            if kind == "TransformerEncoderLayer":
                out = module(xt, src_mask=mask)
            else:
                out = module(xt, lib.tensor(memory), tgt_mask=mask)
            (out * out).sum().backward()
            results.append((out, xt.grad, [p.grad for p in module.parameters()]))
            module.zero_grad()
    for ours_run, theirs_run in zip(results[2:], results[:2]):
        _close(ours_run[0], theirs_run[0], dtype)
        _close(ours_run[1], theirs_run[1], dtype)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
def test_transformer_matches_torch_and_masks():
    torch = _torch()
    torch.manual_seed(0)
    theirs = torch.nn.Transformer(8, 2, 2, 2, 16, dropout=0.0).double()
    ours = nn.Transformer(8, 2, 2, 2, 16, dropout=0.0, dtype=edugrad.float64)
    _copy_weights(ours, theirs)
    rng = np.random.default_rng(2)
    src, tgt = rng.standard_normal((6, 3, 8)), rng.standard_normal((4, 3, 8))
    padding = np.zeros((3, 6), bool)
    padding[0, -2:] = True
    outs = []
    for lib, module in ((torch, theirs), (edugrad, ours)):
        mask = (torch.nn.Transformer if lib is torch else nn.Transformer) \
            .generate_square_subsequent_mask(4, dtype=lib.float64)
        outs.append(module(lib.tensor(src), lib.tensor(tgt), tgt_mask=mask,
                           src_key_padding_mask=lib.tensor(padding),
                           memory_key_padding_mask=lib.tensor(padding)))
    _close(outs[1], outs[0], "float64")
    expected = torch.nn.Transformer.generate_square_subsequent_mask(4).numpy()
    np.testing.assert_array_equal(nn.Transformer.generate_square_subsequent_mask(4).numpy(),
                                  expected)


def test_encoder_stack_copies_layers_and_gradchecks():
    layer = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, dtype=edugrad.float64)
    stack = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(4, dtype=edugrad.float64))
    first, second = stack.layers[0].linear1.weight, stack.layers[1].linear1.weight
    assert first is not second and first is not layer.linear1.weight
    assert (first == second).all()  # copies of one layer start equal, then learn apart
    x = edugrad.tensor(np.random.default_rng(3).standard_normal((3, 2, 4)), requires_grad=True)
    assert edugrad.autograd.gradcheck(lambda x: stack(x), [x])


def test_dropout_is_used_in_training_only():
    edugrad.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5)
    x = edugrad.randn(5, 3, 8)
    layer.eval()
    assert (layer(x) == layer(x)).all()
    layer.train()
    assert not (layer(x) == layer(x)).all()
