"""Attention: nn.MultiheadAttention, as PyTorch's (F.scaled_dot_product_attention is in
functional.py).

Layer: nn (top). Imports the Tensor layer and the nn modules it builds on; never NumPy.

Attention lets every position of a sequence read from every other, weighted by how well its
query matches their keys:

    weights = softmax(Q K^T / sqrt(d) + mask)      (L, S): row i says how much i reads from each j
    output  = weights V                            (L, d)

Multi-head attention runs h of these side by side on d/h-dimensional slices of learned
projections of the inputs, and mixes the h results with one more projection. Everything here
is a composition of Tensor ops (matmul, softmax, where), so the gradients are right by
construction and the graph shows each step.

Masks, in PyTorch's two conventions:
- scaled_dot_product_attention: a bool `attn_mask` says where to attend (True = attend);
- MultiheadAttention: a bool `attn_mask` or `key_padding_mask` says where NOT to attend
  (True = masked out). A float mask is added to the scores in both.
"""

from __future__ import annotations

import math

from edugrad import dtypes
from edugrad.autograd import no_grad
from edugrad.factories import empty
from edugrad.math import where
from edugrad.nn import functional as F
from edugrad.nn import init
from edugrad.nn.layers import Linear
from edugrad.nn.module import Module
from edugrad.nn.parameter import Parameter


def _as_additive(mask, dtype, what: str):
    """A MultiheadAttention mask (bool: True = masked out; float: added) as a float mask."""
    if mask is None:
        return None
    if mask.dtype is dtypes.bool_:
        return where(mask, -math.inf, 0.0).to(dtype)
    if not mask.dtype.is_floating_point:
        raise TypeError(f"MultiheadAttention: {what} must be bool or float, got {mask.dtype.name}")
    return mask.to(dtype)


class MultiheadAttention(Module):
    """PyTorch's nn.MultiheadAttention: h heads of attention on learned projections.

    Parameters as in PyTorch, so state dicts move both ways: `in_proj_weight` (3E, E) holds the
    query, key and value projections stacked (or `q_proj_weight`, `k_proj_weight`,
    `v_proj_weight` when kdim or vdim differ from embed_dim), `in_proj_bias` (3E,), and
    `out_proj` (a Linear(E, E)).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be a positive "
                             f"multiple of num_heads ({num_heads})")
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv and add_zero_attn are "
                                      "not implemented")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim = embed_dim // num_heads
        self.batch_first = batch_first
        make = dict(device=device, dtype=dtype)
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, **make))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, **make))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, **make))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, **make))
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **make))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **make)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        with no_grad():
            if self._qkv_same_embed_dim:
                init.xavier_uniform_(self.in_proj_weight)
            else:
                for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                    init.xavier_uniform_(weight)
            if self.in_proj_bias is not None:
                init.zeros_(self.in_proj_bias)
                init.zeros_(self.out_proj.bias)

    def _projections(self, query, key, value):
        e = self.embed_dim
        bias = self.in_proj_bias
        biases = (None, None, None) if bias is None else (bias[:e], bias[e:2 * e], bias[2 * e:])
        if self._qkv_same_embed_dim:
            weight = self.in_proj_weight
            if query is key and key is value:  # self-attention: one matmul for all three
                q, k, v = F.linear(query, weight, bias).chunk(3, dim=-1)
                return q, k, v
            weights = (weight[:e], weight[e:2 * e], weight[2 * e:])
        else:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        return tuple(F.linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases))

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        """(L, N, E) inputs ((N, L, E) with batch_first; (L, E) unbatched) -> (output,
        weights): output like query, weights (N, L, S) averaged over heads, or (N, h, L, S),
        or None when need_weights=False."""
        if is_causal and attn_mask is None:
            raise RuntimeError("MultiheadAttention: is_causal is a hint that attn_mask is the "
                               "causal mask; give attn_mask too")
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise RuntimeError(f"MultiheadAttention: query, key and value must all be 2-D "
                               f"(unbatched) or 3-D, got {tuple(query.shape)}, "
                               f"{tuple(key.shape)}, {tuple(value.shape)}")
        if query.shape[-1] != self.embed_dim:
            raise RuntimeError(f"MultiheadAttention: expected query with last dim "
                               f"{self.embed_dim}, got {tuple(query.shape)}")
        same = query is key and key is value
        if not batched:  # one sequence: a batch of one, batch-first
            query, key, value = (t.unsqueeze(0) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:  # (L, N, E) -> (N, L, E)
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if same:
            key = value = query
        batch, length, _ = query.shape
        source = key.shape[1]
        q, k, v = self._projections(query, key, value)
        heads, size = self.num_heads, self.head_dim
        q, k, v = (t.reshape(batch, -1, heads, size).transpose(1, 2) for t in (q, k, v))

        mask = _as_additive(attn_mask, q.dtype, "attn_mask")
        if mask is not None and mask.ndim == 3:  # (N * h, L, S)
            mask = mask.reshape(batch, heads, length, source)
        padding = _as_additive(key_padding_mask, q.dtype, "key_padding_mask")
        if padding is not None:  # (N, S): the same keys hidden from every query and head
            padding = padding.reshape(batch, 1, 1, source)
            mask = padding if mask is None else mask + padding

        scores = (q @ k.transpose(-2, -1)) * (1 / math.sqrt(size))
        if mask is not None:
            scores = scores + mask
        weights = scores.softmax(-1)
        if self.training and self.dropout > 0:
            weights = F.dropout(weights, self.dropout, training=True)
        output = (weights @ v).transpose(1, 2).reshape(batch, length, self.embed_dim)
        output = self.out_proj(output)

        if not batched:
            output = output.squeeze(0)
        elif not self.batch_first:
            output = output.transpose(0, 1)
        if not need_weights:
            return output, None
        if average_attn_weights:
            weights = weights.mean(1)
        return output, (weights if batched else weights.squeeze(0))

    def extra_repr(self) -> str:
        return ""  # PyTorch prints only out_proj inside
