"""Hand-written NumPy training steps: the floor any NumPy-based framework is measured against.

Each model is written the way a careful person would write it without a framework: forward,
the chain rule by hand, and Adam, all in float32, reusing what the forward computed.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


class Adam:
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def _linear_init(rng, fan_in, fan_out):
    bound = 1 / np.sqrt(fan_in)
    return (rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32),
            rng.uniform(-bound, bound, fan_out).astype(np.float32))


def _softmax_cross_entropy(logits, y):
    shifted = logits - logits.max(1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(1, keepdims=True)
    n = len(y)
    loss = (np.log(total[:, 0]) - shifted[np.arange(n), y]).mean()
    grad = exp / total
    grad[np.arange(n), y] -= 1
    return loss, grad / n


class MLP:
    def __init__(self, sizes, seed=0):
        rng = np.random.default_rng(seed)
        self.params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            self.params += list(_linear_init(rng, fan_in, fan_out))
        self.opt = Adam(self.params)

    def step(self, x, y):
        acts, h = [], x
        layers = len(self.params) // 2
        for i in range(layers):
            w, b = self.params[2 * i], self.params[2 * i + 1]
            acts.append(h)
            h = h @ w.T + b
            if i < layers - 1:
                h = np.maximum(h, 0)
        loss, g = _softmax_cross_entropy(h, y)
        grads = [None] * len(self.params)
        for i in reversed(range(layers)):
            w = self.params[2 * i]
            if i < layers - 1:
                g = g * (acts[i + 1] > 0)
            grads[2 * i] = g.T @ acts[i]
            grads[2 * i + 1] = g.sum(0)
            if i:
                g = g @ w
        self.opt.step(grads)
        return loss


def _im2col(x, k):
    n, c, h, w = x.shape
    oh, ow = h - k + 1, w - k + 1
    s = x.strides
    cols = as_strided(x, (n, oh, ow, c, k, k), (s[0], s[2], s[3], s[1], s[2], s[3]))
    return cols.reshape(n * oh * ow, c * k * k), oh, ow


def _col2im(gcols, shape, k):
    n, c, h, w = shape
    oh, ow = h - k + 1, w - k + 1
    g = gcols.reshape(n, oh, ow, c, k, k)
    out = np.zeros(shape, np.float32)
    for a in range(k):
        for b in range(k):
            out[:, :, a:a + oh, b:b + ow] += g[:, :, :, :, a, b].transpose(0, 3, 1, 2)
    return out


def _maxpool2(x):
    n, c, h, w = x.shape
    h2, w2 = h // 2, w // 2
    xr = x[:, :, :h2 * 2, :w2 * 2].reshape(n, c, h2, 2, w2, 2)
    out = xr.max(axis=(3, 5))
    mask = xr == out[:, :, :, None, :, None]
    return out, mask


def _maxpool2_backward(g, mask, shape):
    n, c, h, w = shape
    h2, w2 = g.shape[2], g.shape[3]
    gx = np.zeros(shape, np.float32)
    gx[:, :, :h2 * 2, :w2 * 2] = (mask * g[:, :, :, None, :, None]).reshape(n, c, h2 * 2, w2 * 2)
    return gx


class CNN:
    """conv 1-8 3x3, ReLU, maxpool 2, conv 8-16 3x3, ReLU, maxpool 2, flatten, linear 400-10."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        w1, b1 = _linear_init(rng, 1 * 9, 8)
        w2, b2 = _linear_init(rng, 8 * 9, 16)
        w3, b3 = _linear_init(rng, 400, 10)
        self.params = [w1, b1, w2, b2, w3, b3]
        self.opt = Adam(self.params)

    def step(self, x, y):
        w1, b1, w2, b2, w3, b3 = self.params
        n = x.shape[0]
        c1, oh1, ow1 = _im2col(x, 3)
        z1 = (c1 @ w1.T + b1).reshape(n, oh1, ow1, 8).transpose(0, 3, 1, 2)
        a1 = np.maximum(z1, 0)
        p1, m1 = _maxpool2(a1)
        p1 = np.ascontiguousarray(p1)
        c2, oh2, ow2 = _im2col(p1, 3)
        z2 = (c2 @ w2.T + b2).reshape(n, oh2, ow2, 16).transpose(0, 3, 1, 2)
        a2 = np.maximum(z2, 0)
        p2, m2 = _maxpool2(a2)
        flat = p2.reshape(n, -1)
        logits = flat @ w3.T + b3
        loss, g = _softmax_cross_entropy(logits, y)
        g3w, g3b = g.T @ flat, g.sum(0)
        g = (g @ w3).reshape(p2.shape)
        g = _maxpool2_backward(g, m2, a2.shape) * (z2 > 0)
        g = g.transpose(0, 2, 3, 1).reshape(-1, 16)
        g2w, g2b = g.T @ c2, g.sum(0)
        g = _col2im(g @ w2, p1.shape, 3)
        g = _maxpool2_backward(g, m1, a1.shape) * (z1 > 0)
        g = g.transpose(0, 2, 3, 1).reshape(-1, 8)
        g1w, g1b = g.T @ c1, g.sum(0)
        self.opt.step([g1w, g1b, g2w, g2b, g3w, g3b])
        return loss
