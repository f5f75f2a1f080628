"""A GPT you can read: nanoGPT's model (Karpathy, MIT licence) written with edugrad.nn.

    model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128))
    logits, loss = model(idx, targets)          # idx, targets: (B, T) int64 token ids
    text_ids = model.generate(idx, 200, temperature=0.8, top_k=20)

The architecture, from the bottom:
- token embedding + position embedding: each of the T positions becomes an n_embd vector;
- n_layer blocks, each two residual branches with a LayerNorm in front (pre-norm):
      x = x + attn(ln_1(x))    causal self-attention: position t reads positions <= t only
      x = x + mlp(ln_2(x))     Linear(n_embd, 4 n_embd), GELU, Linear(4 n_embd, n_embd)
- a final LayerNorm and the language-model head, a Linear back to vocabulary logits whose
  weight IS the token embedding's (weight tying: one matrix both reads and writes tokens).

Every piece is an edugrad module, so `print(model)`, `edugrad.viz.draw_graph(loss,
params=model)` and the gradient monitor all see it; the graph collapses per block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import edugrad
from edugrad import nn
from edugrad.nn import functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64        # the longest context the model sees
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True           # biases in the Linears and LayerNorms, as GPT-2


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"GPT: n_embd ({config.n_embd}) must be a multiple of n_head "
                             f"({config.n_head})")
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout

    def forward(self, x):
        batch, time, channels = x.shape
        # nanoGPT's self.c_attn(x).split(n_embd, dim=2), with the split moved to the weight:
        # the same q, k and v, but backward pads three (3C, C) weight gradients back together
        # instead of three (B, T, 3C) activation gradients (4x fewer bytes at these sizes)
        weights = self.c_attn.weight.split(self.n_embd)
        biases = (self.c_attn.bias.split(self.n_embd) if self.c_attn.bias is not None
                  else (None,) * 3)
        q, k, v = (F.linear(x, w, b) for w, b in zip(weights, biases))
        # (B, T, C) -> (B, heads, T, head size): each head attends on its own slice
        q, k, v = (t.view(batch, time, self.n_head, channels // self.n_head).transpose(1, 2)
                   for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(batch, time, channels)  # heads side by side
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)   # token embedding
        self.wpe = nn.Embedding(config.block_size, config.n_embd)   # position embedding
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying
        self._init_weights()

    def _init_weights(self) -> None:
        """GPT-2's: N(0, 0.02) for every Linear and Embedding, zero biases, and the Linears
        that write into the residual stream scaled by 1/sqrt(2 n_layer), so that the sum of
        2 n_layer branches starts with about the variance of one."""
        with edugrad.no_grad():
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
            for name, parameter in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(parameter, mean=0.0,
                                    std=0.02 / math.sqrt(2 * self.config.n_layer))

    def forward(self, idx, targets=None):
        """idx (B, T) token ids -> (logits (B, T, vocab), mean cross-entropy or None)."""
        batch, time = idx.shape
        if time > self.config.block_size:
            raise ValueError(f"GPT: a sequence of {time} tokens is longer than block_size "
                             f"{self.config.block_size}")
        positions = edugrad.arange(time, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(positions))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
        return logits, loss

    def parameter_groups(self, weight_decay: float) -> list:
        """AdamW groups as nanoGPT's: matrices (Linear weights, embeddings) decay; biases and
        LayerNorm gains do not (shrinking them towards 0 has no regularising use)."""
        decay, no_decay = [], []
        for parameter in self.parameters():
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
        return [{"params": decay, "weight_decay": weight_decay},
                {"params": no_decay, "weight_decay": 0.0}]

    @edugrad.no_grad()
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k=None):
        """Extend idx (B, T) by max_new_tokens tokens, each sampled from the model's
        distribution for the next token (sharpened by temperature < 1, cut to the top_k)."""
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size:]
            logits, _ = self(context)
            logits = logits[:, -1, :] / temperature
            if top_k is not None:
                kth = logits.topk(min(top_k, logits.shape[-1])).values[:, -1:]
                logits = logits.where(logits >= kth, -math.inf)
            probs = F.softmax(logits, dim=-1)
            idx = edugrad.cat([idx, edugrad.multinomial(probs, num_samples=1)], dim=1)
        return idx

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
