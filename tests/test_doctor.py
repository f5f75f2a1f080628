"""`python -m edugrad.doctor`: the advice it gives for the CuPy/CUDA combinations people meet
(checked with made-up version information), and a real run on this machine."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edugrad import doctor
from edugrad.doctor import CPU_ONLY, DeviceCheck, Environment, wheel_advice


def test_the_wheel_for_each_cuda_major_version():
    assert [doctor.wheel_for(major) for major in (11, 12, 13)] == [
        "cupy-cuda11x", "cupy-cuda12x", "cupy-cuda13x"]
    assert doctor.wheel_for(None) is None
    assert doctor.wheel_cuda_major("cupy-cuda12x") == 12
    assert doctor.wheel_cuda_major("cupy-cuda117") == 11  # the older per-minor wheels
    assert doctor.wheel_cuda_major("cupy") is None  # built from source: the name can't tell


def test_a_matching_wheel_needs_nothing():
    assert wheel_advice("cupy-cuda12x", 12) is None
    assert wheel_advice("cupy-cuda13x", 13) is None
    assert wheel_advice("cupy", 12) is None


def test_a_cuda11_wheel_with_a_cuda12_driver_is_told_to_switch():
    advice = wheel_advice("cupy-cuda11x", 12)
    assert advice.problem
    assert "pip uninstall cupy-cuda11x" in advice.message
    assert "pip install cupy-cuda12x" in advice.message


def test_a_wheel_newer_than_the_driver_is_told_to_upgrade_or_downgrade():
    advice = wheel_advice("cupy-cuda13x", 12)
    assert advice.problem
    assert "upgrade the NVIDIA driver" in advice.message
    assert "pip install cupy-cuda12x" in advice.message


def test_a_driver_without_cupy_is_told_which_wheel_to_install():
    for major in (11, 12, 13):
        advice = wheel_advice(None, major)
        assert advice.problem and f"pip install cupy-cuda{major}x" in advice.message


def test_a_driver_too_old_for_any_wheel_is_told_to_upgrade():
    advice = wheel_advice(None, 10)
    assert advice.problem and "upgrade the NVIDIA driver" in advice.message


def test_nothing_at_all_is_cpu_only_and_fine():
    advice = wheel_advice(None, None)
    assert advice is CPU_ONLY and not advice.problem
    assert "CPU only" in advice.message and "cuda" in advice.message


def test_cupy_without_a_driver_is_information_not_a_failure():
    advice = wheel_advice("cupy-cuda12x", None)
    assert not advice.problem and "no NVIDIA driver" in advice.message


def test_two_cupy_wheels_are_a_conflict():
    advice = doctor.conflicting_wheels(["cupy-cuda11x", "cupy-cuda12x"], 12)
    assert advice.problem
    assert "pip uninstall cupy-cuda11x cupy-cuda12x" in advice.message
    assert "pip install cupy-cuda12x" in advice.message
    assert doctor.conflicting_wheels(["cupy-cuda12x"], 12) is None


def test_nvidia_smi_banner_is_parsed():
    banner = ("+----------------------------------------------------------------------+\n"
              "| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4 |\n")
    assert doctor.parse_nvidia_smi(banner) == ("550.54.15", "12.4")
    assert doctor.parse_nvidia_smi("command not found") == (None, None)


def test_cuda_versions_are_decoded():
    assert doctor.cuda_version(12040) == "12.4"
    assert doctor.cuda_version(11080) == "11.8"
    assert doctor.cuda_version(0) is None  # cudaDriverGetVersion's "no driver"


# ---- the one line of advice, from a whole (made-up) environment ---------------------------------

@pytest.fixture(scope="module")
def working_cpu():
    return [doctor.check_device("cpu"), doctor.check_device("python")]


def fake(**fields) -> Environment:
    return Environment(python="3.11.7", numpy="2.0.0", **fields)


def test_advice_on_a_machine_without_a_gpu(working_cpu):
    checks = working_cpu + [DeviceCheck("cuda", skipped="CuPy is not installed")]
    verdict = doctor.advice(fake(), checks)
    assert not verdict.problem
    assert verdict.message.startswith("all good for the CPU: devices cpu, python work")
    assert "no NVIDIA GPU" in verdict.message


def test_advice_on_a_mismatched_gpu_machine(working_cpu):
    env = fake(wheels=["cupy-cuda11x"], cupy="13.3.0", runtime="11.8", driver_cuda="12.4",
               driver="550.54.15", gpus=["NVIDIA H100 80GB HBM3"],
               cupy_error="CuPy cannot use the GPU: CUDARuntimeError: cudaErrorInsufficientDriver")
    checks = working_cpu + [DeviceCheck("cuda", skipped=env.cupy_error)]
    verdict = doctor.advice(env, checks)
    assert verdict.problem and "pip install cupy-cuda12x" in verdict.message
    report = doctor.format_report(env, checks, verdict)
    assert "cupy-cuda11x (for CUDA 12 the wheel is cupy-cuda12x)" in report
    assert "CUDA 12.4, driver 550.54.15" in report
    assert report.splitlines()[-1] == verdict.message


def test_advice_when_everything_works(working_cpu):
    env = fake(wheels=["cupy-cuda12x"], cupy="13.3.0", runtime="12.8", driver_cuda="12.8",
               gpus=["NVIDIA H100 80GB HBM3"])
    cuda = DeviceCheck("cuda", results=working_cpu[0].results)  # as if cuda had passed
    verdict = doctor.advice(env, working_cpu + [cuda])
    assert verdict == doctor.Advice("all good: devices cpu, python, cuda work", problem=False)
    assert "cupy-cuda12x (matches CUDA 12)" in doctor.format_report(env, [cuda], verdict)


def test_advice_names_a_failing_registered_backend(working_cpu):
    from edugrad.backends.python_backend import PythonBackend

    class Broken(PythonBackend):
        def neg(self, x):
            return x

    import edugrad

    edugrad.register_backend("doctor-broken", Broken)
    broken = doctor.check_device("doctor-broken")
    assert [r.op.name for r in broken.failed] == ["NEG"]
    verdict = doctor.advice(fake(), working_cpu + [broken])
    assert verdict.problem
    assert "python -m edugrad.checking.check doctor-broken" in verdict.message
    assert "doctor-broken" in doctor.registered_devices()


def test_the_doctor_runs_here_and_says_what_it_found():
    run = subprocess.run([sys.executable, "-m", "edugrad.doctor"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode in (0, 1), run.stderr
    out = run.stdout
    for label in ("Python", "NumPy", "CuPy", "CUDA driver", "CUDA runtime", "CuPy wheel", "GPUs"):
        assert f"  {label} " in out, out
    assert "  cpu      PASS" in out and "  python   PASS" in out
    last = out.strip().splitlines()[-1]
    try:
        import cupy

        gpu = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        gpu = False
    if not gpu:  # no GPU is not a failure: say so, and exit 0
        assert run.returncode == 0, out
        assert "no NVIDIA GPU" in last or "no NVIDIA driver" in last, last
