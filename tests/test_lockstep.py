"""The lock-step diff (edugrad/checking/lockstep.py): one training step on the NumPy backend and on
another, compared primitive call by primitive call. A correct backend shows no difference; a
backend with one planted bug is stopped at that primitive, with the Function that called it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np

from edugrad.backend import get_backend
from edugrad.checking import check, lockstep
from edugrad.backends.numpy_backend import NumpyBackend
from edugrad.backends.python_backend import PythonBackend
from edugrad.ops import Op


class ExpOffByOneHundredth(PythonBackend):
    """EXP adds 1e-2 to every result: wrong, but by too little to crash anything."""

    def exp(self, x):
        out = super().exp(x)
        return self.add(out, self.full(out.shape, 1e-2, out.dtype))


class SumDropsALastRow(PythonBackend):
    """SUM over axis 0 of a 2-D input forgets the last row; every other SUM is right."""

    def sum(self, x, axes):
        if len(x.shape) == 2 and axes == (0,) and x.shape[0] > 1:
            x = self.shrink(x, ((0, x.shape[0] - 1), (0, x.shape[1])))
        return super().sum(x, axes)


class LogNotWritten(PythonBackend):
    def log(self, x):
        raise NotImplementedError("not implemented yet: LOG (unary, same shape)")


class LoadsSlightlyOff(PythonBackend):
    """FROM_HOST scales floats by 1 + 8e-5: within tolerance itself, but the error grows."""

    def from_host(self, array):
        if array.dtype == np.float32:
            array = array * np.float32(1 + 8e-5)
        return super().from_host(array)


class MatmulOnePercentHigh(NumpyBackend):
    """A NumPy backend whose accelerated MATMUL is 1% high: the reference then offers MATMUL
    too, so both runs make the same calls."""

    def matmul(self, x, y):
        return super().matmul(x, y) * x.dtype.type(1.01)


def test_a_correct_backend_shows_no_difference():
    report = lockstep.run_lockstep(PythonBackend)
    assert report.ok, report.format()
    assert len(report.calls) == len(report.reference_calls) > 50
    assert [c.op for c in report.calls] == [c.op for c in report.reference_calls]
    assert "no difference" in report.format()


def test_a_wrong_exp_is_caught_in_log_softmax_forward():
    report = lockstep.run_lockstep(ExpOffByOneHundredth)
    difference = report.difference
    assert difference is not None
    call = difference.call
    assert (call.op, call.caller, call.phase) == (Op.EXP, "LogSoftmax.forward", "forward")
    assert "your EXP is wrong" in difference.verdict
    text = report.format()
    assert f"first difference at primitive call {call.number} of" in text
    assert "expected" in text and "got" in text
    # every call before it agreed, and it is the first EXP of the step
    assert all(c.op is not Op.EXP for c in report.calls[:call.number - 1])


def test_a_sum_wrong_only_on_2d_inputs_is_caught_in_the_bias_gradient():
    report = lockstep.run_lockstep(SumDropsALastRow)
    call = report.difference.call
    assert call.op is Op.SUM and call.phase == "backward"
    # the last layer's bias gradient: Linear.backward sums the (batch, classes) gradient over
    # the batch; the forward's sums (softmax over classes, the mean) were right
    assert call.input_shapes == ((lockstep.BATCH, lockstep.CLASSES),)
    assert call.arguments == "axes=(0,)"
    assert call.caller == "Sum.forward, called from Linear.backward"
    assert "your SUM is wrong" in report.difference.verdict


def test_a_primitive_that_raises_is_reported_with_its_error():
    report = lockstep.run_lockstep(LogNotWritten)
    call = report.difference.call
    assert (call.op, call.caller) == (Op.LOG, "LogSoftmax.forward")
    assert "raised NotImplementedError" in report.difference.problem


def test_differences_that_grow_from_earlier_calls_are_not_blamed_on_the_primitive():
    report = lockstep.run_lockstep(LoadsSlightlyOff)
    difference = report.difference
    assert difference is not None and difference.call.op is not Op.FROM_HOST
    assert f"{difference.call.op.name} is right" in difference.verdict


def test_accelerated_primitives_are_compared_when_the_backend_offers_them():
    report = lockstep.run_lockstep(MatmulOnePercentHigh)
    call = report.difference.call
    assert (call.op, call.caller, call.phase) == (Op.MATMUL, "Linear.forward", "forward")


def test_the_template_stops_at_the_first_call():
    from edugrad.backends.template import MyBackend

    report = lockstep.run_lockstep(MyBackend)
    call = report.difference.call
    assert call.number == 1 and call.op is Op.FROM_HOST
    assert "not implemented yet: FROM_HOST" in report.difference.problem


def test_the_backends_get_their_own_methods_back():
    lockstep.run_lockstep(ExpOffByOneHundredth)
    for device in (lockstep.YOUR_DEVICE, lockstep.REFERENCE_DEVICE):
        backend = get_backend(device)
        assert not [name for name in vars(backend) if name in {op.method for op in Op}]


def test_calling_function_names_the_nearest_function():
    import edugrad

    seen = []

    class Spy(PythonBackend):
        def neg(self, x):
            seen.append(lockstep.calling_function(__import__("sys")._getframe(1)))
            return super().neg(x)

    edugrad.register_backend("spy", Spy)
    x = edugrad.tensor([1.0, 2.0], device="spy", requires_grad=True)
    (-x).sum().backward()  # Neg.forward, then Neg.backward negates the gradient
    assert seen == ["Neg.forward", "Neg.forward, called from Neg.backward"]


PERMUTE_WRONG_IN_3D = """
from edugrad.backends.python_backend import PythonBackend


class Permute3D(PythonBackend):
    def permute(self, x, order):
        if order == (2, 0, 1):  # one 3-D order is wrong: a 2-D MLP step never asks for it
            order = (1, 2, 0)
        return super().permute(x, order)
"""


def test_lockstep_names_the_failing_primitives_its_step_never_exercised(tmp_path):
    (tmp_path / "permute3d.py").write_text(PERMUTE_WRONG_IN_3D)
    run = subprocess.run([sys.executable, "-m", "edugrad.checking.check", "permute3d.py",
                          "--lockstep"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr  # the step agrees; the scoreboard fails
    out = run.stdout
    assert "no difference: all" in out
    assert "but the scoreboard fails" in out and "on cases this step never made:" in out
    permute = re.search(r"^  PERMUTE +WRONG +case \d+: float32 \(2, 3, 4\); order=\(2, 0, 1\)\n"
                        r" +the step called PERMUTE \d+ times?, on inputs (.*)$", out, re.M)
    assert permute, out
    assert "(2, 3, 4)" not in permute.group(1)  # the step's permutes were other ones
    assert re.search(r"^  SHRINK +WRONG .*\n +the step never called SHRINK$", out, re.M), out
    assert out.rstrip().endswith("python -m edugrad.checking.check permute3d.py")


def test_the_checker_runs_the_lockstep_diff(tmp_path, capsys):
    assert check.main(["python", "--lockstep"]) == 0
    assert "no difference" in capsys.readouterr().out
    path = tmp_path / "buggy_backend.py"
    path.write_text(textwrap.dedent('''
        from edugrad.backends.python_backend import PythonBackend

        class Buggy(PythonBackend):
            def exp(self, x):
                out = super().exp(x)
                return self.add(out, self.full(out.shape, 1e-2, out.dtype))
    '''))
    assert check.main([f"{path}:Buggy", "--lockstep"]) == 1
    out = capsys.readouterr().out
    assert "primitive  EXP" in out and "called by  LogSoftmax.forward" in out
