"""edugrad.Generator and generator= on every random function: seeds repeat, streams are
separate, the global stream is never touched, state round trips, every device agrees."""

from __future__ import annotations

import numpy as np
import pytest

import edugrad
from edugrad import Generator

DRAWS = {
    "rand": lambda g: edugrad.rand(4, 3, generator=g),
    "rand64": lambda g: edugrad.rand(5, generator=g, dtype=edugrad.float64),
    "randn": lambda g: edugrad.randn(2, 5, generator=g),
    "randint": lambda g: edugrad.randint(-3, 9, (20,), generator=g),
    "randperm": lambda g: edugrad.randperm(12, generator=g),
    "normal": lambda g: edugrad.normal(2.0, 0.5, (6,), generator=g),
    "normal-tensors": lambda g: edugrad.normal(edugrad.zeros(3, 1), edugrad.ones(4),
                                               generator=g),
    "bernoulli": lambda g: edugrad.bernoulli(edugrad.full((30,), 0.3), generator=g),
    "multinomial": lambda g: edugrad.tensor([0.1, 0.5, 0.4]).multinomial(
        8, replacement=True, generator=g),
    "multinomial-no-replacement": lambda g: edugrad.tensor([[0.1, 0.5, 0.4, 1.0]]).multinomial(
        3, generator=g),
}


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_a_seed_repeats_the_stream_and_another_seed_does_not(name):
    draw = DRAWS[name]
    first = draw(Generator().manual_seed(5)).tolist()
    again = draw(Generator().manual_seed(5)).tolist()
    other = [draw(Generator().manual_seed(seed)).tolist() for seed in (6, 7, 8)]
    assert first == again
    assert any(values != first for values in other)


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_a_generator_never_touches_the_global_stream(name):
    edugrad.manual_seed(11)
    expected = edugrad.rand(6).tolist()
    edugrad.manual_seed(11)
    DRAWS[name](Generator().manual_seed(1))
    assert edugrad.rand(6).tolist() == expected


def test_two_generators_are_independent_streams():
    a, b = Generator().manual_seed(3), Generator().manual_seed(3)
    first = edugrad.rand(5, generator=a).tolist()
    edugrad.rand(100, generator=b)  # b moves on; a does not notice
    assert edugrad.rand(5, generator=a).tolist() != first
    c = Generator().manual_seed(3)
    edugrad.rand(5, generator=c)
    copy = Generator().set_state(c.get_state())
    assert edugrad.rand(5, generator=c).tolist() == edugrad.rand(5, generator=copy).tolist()


def test_get_state_and_set_state_resume_the_stream_exactly():
    g = Generator().manual_seed(42)
    edugrad.randn(7, generator=g)
    state = g.get_state()
    assert state.dtype is edugrad.int64 and state.shape == (11,)
    ahead = [edugrad.rand(3, generator=g).tolist(), edugrad.randperm(9, generator=g).tolist()]
    g.set_state(state)
    assert [edugrad.rand(3, generator=g).tolist(), edugrad.randperm(9, generator=g).tolist()] \
        == ahead
    assert g.initial_seed() == 42


def test_manual_seed_returns_the_generator_and_seed_draws_a_new_one():
    g = Generator()
    assert g.manual_seed(9) is g and g.initial_seed() == 9
    assert Generator().initial_seed() == 67280421310721  # PyTorch's default
    seed = g.seed()
    assert isinstance(seed, int) and g.initial_seed() == seed
    assert edugrad.rand(3, generator=g).tolist() == \
        edugrad.rand(3, generator=Generator().manual_seed(seed)).tolist()


def test_the_same_seed_gives_the_same_values_on_every_device():
    """Drawn on the host and moved with FROM_HOST: the backend does not matter."""
    cpu = edugrad.randn(4, 4, generator=Generator().manual_seed(1), dtype=edugrad.float64)
    python = edugrad.randn(4, 4, generator=Generator().manual_seed(1), dtype=edugrad.float64,
                           device="python")
    assert python.device == "python" and python.tolist() == cpu.tolist()


def test_distributions_have_the_right_support_and_moments():
    g = Generator().manual_seed(0)
    u = edugrad.rand(20000, generator=g).numpy()
    assert u.dtype == np.float32 and u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    n = edugrad.normal(3.0, 2.0, (20000,), generator=g).numpy()
    assert abs(n.mean() - 3) < 0.05 and abs(n.std() - 2) < 0.05
    k = edugrad.randint(5, 8, (1000,), generator=g)
    assert k.dtype is edugrad.int64 and set(k.tolist()) == {5, 6, 7}
    assert sorted(edugrad.randperm(50, generator=g).tolist()) == list(range(50))
    b = edugrad.bernoulli(edugrad.full((20000,), 0.25, dtype=edugrad.float64), generator=g)
    assert b.dtype is edugrad.float64 and abs(b.numpy().mean() - 0.25) < 0.01
    m = edugrad.tensor([0.0, 1.0, 3.0]).multinomial(4000, replacement=True, generator=g).numpy()
    assert 0 not in m and abs((m == 2).mean() - 0.75) < 0.03


def test_float32_draws_stay_below_one():
    g = Generator().manual_seed(0)
    g._rng = type(g._rng)(type(g._rng.bit_generator)(0))  # any stream: check the clamp below
    values = edugrad.factories._host_cast(np.array([1 - 2 ** -60, 0.5]), edugrad.float32)
    assert values.dtype == np.float32 and values[0] < 1.0 and values[1] == 0.5


@pytest.mark.parametrize("call", [lambda: edugrad.rand(2, generator=0),
                                  lambda: edugrad.randperm(3, generator="seed"),
                                  lambda: edugrad.ones(3).multinomial(1, generator=1)])
def test_a_generator_that_is_not_one_is_a_clear_error(call):
    with pytest.raises(TypeError, match="edugrad.Generator"):
        call()


def test_set_state_rejects_what_get_state_did_not_make():
    with pytest.raises(ValueError, match="get_state"):
        Generator().set_state(edugrad.zeros(3, dtype=edugrad.int64))
