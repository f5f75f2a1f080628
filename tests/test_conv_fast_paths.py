"""The fast paths of convolution and pooling against the fallback (no accelerated primitives)
and against PyTorch: the one 2-D product of conv2d and its channel-major output view. (FOLD's
copy where windows do not overlap is checked with the other unfold/fold cases in test_ops.)"""

import numpy as np
import pytest

import edugrad
import edugrad.nn.functional as F
from tests.helpers import NOACCEL

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("padding,stride,bias", [(0, 1, True), (1, 1, False), (1, 2, True)])
def test_conv2d_matches_torch_on_both_paths(padding, stride, bias):
    rng = np.random.default_rng(1)
    x_host = rng.standard_normal((3, 2, 7, 6))
    w_host = rng.standard_normal((4, 2, 3, 3))
    b_host = rng.standard_normal(4) if bias else None
    upstream = rng.standard_normal(
        torch.nn.functional.conv2d(torch.tensor(x_host), torch.tensor(w_host), None, stride,
                                   padding).shape)
    theirs = [torch.tensor(a, requires_grad=True) for a in (x_host, w_host, b_host)
              if a is not None]
    expected = torch.nn.functional.conv2d(theirs[0], theirs[1], theirs[2] if bias else None,
                                          stride, padding)
    (expected * torch.tensor(upstream)).sum().backward()
    for device in ("cpu", NOACCEL):
        ours = [edugrad.tensor(a, device=device, requires_grad=True) for a in
                (x_host, w_host, b_host) if a is not None]
        out = F.conv2d(ours[0], ours[1], ours[2] if bias else None, stride, padding)
        assert out.shape == tuple(expected.shape) and out.dtype is edugrad.float64
        (out * edugrad.tensor(upstream, device=device)).sum().backward()
        np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-10)
        for mine, reference in zip(ours, theirs):
            assert mine.grad.shape == tuple(reference.grad.shape)
            np.testing.assert_allclose(mine.grad.numpy(), reference.grad.numpy(), rtol=1e-10)


def test_conv2d_output_view_flattens_in_sample_order():
    """The output is a channel-major view; flattening it must still give each sample's row."""
    rng = np.random.default_rng(2)
    x_host, w_host = rng.standard_normal((2, 1, 5, 5)), rng.standard_normal((3, 1, 3, 3))
    ours = F.conv2d(edugrad.tensor(x_host), edugrad.tensor(w_host)).reshape(2, -1)
    theirs = torch.nn.functional.conv2d(torch.tensor(x_host), torch.tensor(w_host)).reshape(2, -1)
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def test_conv_relu_maxpool_chain_gradient_matches_torch():
    """The layout the conv hands on (channel-major) through ReLU, pooling with ties and a
    second conv, as in a small CNN."""
    rng = np.random.default_rng(3)
    x_host = rng.standard_normal((2, 1, 10, 10))
    w1, w2 = rng.standard_normal((4, 1, 3, 3)), rng.standard_normal((3, 4, 3, 3))

    def run(lib, nnf, tensor):
        params = [tensor(a) for a in (x_host, w1, w2)]
        h = nnf.max_pool2d(nnf.conv2d(params[0], params[1]).relu(), 2)
        nnf.max_pool2d(nnf.conv2d(h, params[2]).relu(), 2).sum().backward()
        return [p.grad.numpy() for p in params]

    theirs = run(torch, torch.nn.functional, lambda a: torch.tensor(a, requires_grad=True))
    ours = run(edugrad, F, lambda a: edugrad.tensor(a, requires_grad=True))
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine, reference, rtol=1e-10, atol=1e-12)
