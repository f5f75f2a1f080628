"""Grad mode and anomaly mode are per thread, as in PyTorch.

Each test runs real threads and forces the interleaving it is about with barriers (never with
sleeps): one thread is held inside a `no_grad()` block, a backward, or a `detect_anomaly()`
block while the other does its work, so the overlap happens on every run.
"""

from __future__ import annotations

import threading

import pytest

import edugrad
from edugrad.anomaly import detect_anomaly, is_anomaly_enabled

TIMEOUT = 30  # seconds: a broken interleaving fails the test instead of hanging it


def run_threads(*targets) -> None:
    """Run each target in its own thread, wait for all, and re-raise the first error."""
    errors = []

    def guarded(target):
        def run():
            try:
                target()
            except BaseException as error:  # noqa: BLE001  (re-raised in the main thread)
                errors.append(error)
        return run

    threads = [threading.Thread(target=guarded(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a thread did not finish: the barriers are out of step"
    if errors:
        raise errors[0]


def test_a_new_thread_starts_with_grad_enabled():
    seen = []
    with edugrad.no_grad():
        run_threads(lambda: seen.append(edugrad.is_grad_enabled()))
        assert not edugrad.is_grad_enabled()
    assert seen == [True]
    assert edugrad.is_grad_enabled()


def test_training_while_another_thread_evaluates_under_no_grad():
    """The issue's case: every training step runs while the evaluator is inside no_grad."""
    steps = 50
    inside = threading.Barrier(2, timeout=TIMEOUT)
    model = edugrad.nn.Linear(3, 1)
    x = edugrad.randn(8, 3)
    recorded = []

    def train():
        for _ in range(steps):
            inside.wait()  # the evaluator is in its no_grad block now
            loss = model(x).pow(2).mean()
            recorded.append(loss.requires_grad)
            model.zero_grad()
            loss.backward()  # raises "does not require grad" if no_grad leaked in
            inside.wait()

    def evaluate():
        for _ in range(steps):
            with edugrad.no_grad():
                inside.wait()
                out = model(x)
                assert not out.requires_grad
                inside.wait()

    run_threads(train, evaluate)
    assert recorded == [True] * steps


def test_overlapping_no_grad_blocks_in_two_threads_each_restore_their_own_state():
    """A enters, B enters, A leaves, B leaves: a shared switch would be left off for good."""
    step = threading.Barrier(2, timeout=TIMEOUT)
    after = {}

    def first():
        with edugrad.no_grad():
            step.wait()  # 1: A is in
            step.wait()  # 2: B is in
        step.wait()  # 3: A is out
        after["A"] = edugrad.is_grad_enabled()
        step.wait()  # 4: B is out

    def second():
        step.wait()  # 1
        with edugrad.no_grad():
            step.wait()  # 2
            step.wait()  # 3
            assert not edugrad.is_grad_enabled()  # A leaving does not turn B's recording on
        step.wait()  # 4
        after["B"] = edugrad.is_grad_enabled()

    run_threads(first, second)
    assert after == {"A": True, "B": True}
    assert edugrad.is_grad_enabled()


def test_a_backward_in_one_thread_leaves_recording_on_in_another():
    """Backward turns recording off in its own thread while it runs; a hook holds it there."""
    during = threading.Barrier(2, timeout=TIMEOUT)
    x = edugrad.tensor([1.0, 2.0], requires_grad=True)
    w = edugrad.tensor([3.0, 4.0], requires_grad=True)
    seen = {}

    def backward():
        y = x * 2
        y.register_hook(hold)
        y.sum().backward()

    def hold(grad):
        seen["inside backward"] = edugrad.is_grad_enabled()
        during.wait()  # the other thread runs its forward now
        during.wait()

    def forward():
        during.wait()
        out = w * w
        seen["other thread"] = (edugrad.is_grad_enabled(), out.requires_grad)
        during.wait()

    run_threads(backward, forward)
    assert seen == {"inside backward": False, "other thread": (True, True)}
    assert x.grad.tolist() == [2.0, 2.0]


def test_set_grad_enabled_as_a_plain_call_holds_for_its_thread_only():
    step = threading.Barrier(2, timeout=TIMEOUT)
    seen = {}

    def switch_off():
        edugrad.set_grad_enabled(False)  # not a context: it stays set
        step.wait()
        seen["off"] = (edugrad.is_grad_enabled(),
                       (edugrad.ones(2, requires_grad=True) * 2).requires_grad)
        step.wait()
        edugrad.set_grad_enabled(True)
        seen["on again"] = (edugrad.ones(2, requires_grad=True) * 2).requires_grad

    def other():
        step.wait()
        seen["other"] = (edugrad.ones(2, requires_grad=True) * 2).requires_grad
        step.wait()

    run_threads(switch_off, other)
    assert seen == {"off": (False, False), "on again": True, "other": True}


def test_set_grad_enabled_as_a_context_restores_the_previous_state():
    edugrad.set_grad_enabled(False)
    try:
        with edugrad.set_grad_enabled(True):
            assert edugrad.is_grad_enabled()
        assert not edugrad.is_grad_enabled()
    finally:
        edugrad.set_grad_enabled(True)
    assert edugrad.is_grad_enabled()


def test_anomaly_detection_checks_only_the_thread_that_asked_for_it():
    step = threading.Barrier(2, timeout=TIMEOUT)
    seen = {}

    def detecting():
        with detect_anomaly():
            step.wait()  # the other thread makes an inf now, unchecked
            step.wait()
            seen["enabled here"] = is_anomaly_enabled()
            with pytest.raises(RuntimeError, match="Log produced inf"):
                edugrad.zeros(2).log()

    def plain():
        step.wait()
        seen["enabled there"] = is_anomaly_enabled()
        seen["log(0) there"] = edugrad.zeros(2).log().tolist()
        step.wait()

    run_threads(detecting, plain)
    assert seen == {"enabled here": True, "enabled there": False,
                    "log(0) there": [float("-inf"), float("-inf")]}
    assert not is_anomaly_enabled()
    assert edugrad.Function.apply.__func__ is edugrad.anomaly._plain_apply.__func__


def test_anomaly_blocks_in_two_threads_overlap_and_unwind():
    """The checking apply stays installed until the last block of any thread ends."""
    step = threading.Barrier(2, timeout=TIMEOUT)

    def first():
        with detect_anomaly():
            step.wait()  # 1: both in
            step.wait()  # 2: second is out
            with pytest.raises(RuntimeError, match="detect_anomaly"):
                edugrad.zeros(1).log()
        step.wait()  # 3

    def second():
        with detect_anomaly():
            step.wait()  # 1
        step.wait()  # 2
        assert edugrad.zeros(1).log().tolist() == [float("-inf")]  # not checked any more
        step.wait()  # 3

    run_threads(first, second)
    assert edugrad.Function.apply.__func__ is edugrad.anomaly._plain_apply.__func__
