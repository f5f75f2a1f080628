"""python -m edugrad.doctor: is this machine ready for edugrad, and if not, what to do.

    python -m edugrad.doctor                          every available device
    python -m edugrad.doctor my_backend.py:MyBackend  ... and a backend of your own

It reports the Python, NumPy and CuPy versions, the CUDA driver and runtime versions (from CuPy
when it imports, else from `nvidia-smi`), which CuPy wheel is installed and whether it fits the
driver's CUDA version (and which wheel would); then it runs every primitive once (the first
conformance case of each) on every device it can reach: cpu, python, cuda when there is a GPU,
and every registered backend. The last line says in one sentence what to do, or "all good".

A CuPy wheel that does not match the CUDA version is the most common GPU problem: CuPy ships
one wheel per CUDA major version (cupy-cuda11x, cupy-cuda12x, cupy-cuda13x) and the driver
must support that major version. A machine without a GPU is fine: cpu and python work there,
and the doctor says so and exits 0. It exits 1 only when something needs fixing: a device that
is there fails its primitives, or a GPU is there that CuPy cannot use.

Layer: tools (top). Imports edugrad's backend registry, the conformance checker
(edugrad.checking.check) and the standard library; CuPy only inside a guarded import, when the
doctor runs (importing it at the top would load CUDA's libraries for every run, and fail
outright where CuPy is broken, which is what the doctor is there to diagnose), and nvidia-smi
only as a subprocess.
"""

from __future__ import annotations

import importlib.metadata
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from edugrad import backend as backend_registry
from edugrad.backends.numpy_backend import NumpyBackend
from edugrad.checking.check import PASS, CannotLoad, check_case, load_backend
from edugrad.ops import ACCELERATED, REQUIRED

WHEELS = {11: "cupy-cuda11x", 12: "cupy-cuda12x", 13: "cupy-cuda13x"}  # CUDA major -> wheel
NEWEST_WHEEL = WHEELS[max(WHEELS)]


# ---- what is installed ------------------------------------------------------------------------

@dataclass
class Environment:
    """Everything the doctor found out about this machine; tests build fake ones."""

    python: str
    numpy: str | None = None
    wheels: list = field(default_factory=list)  # CuPy distributions: ["cupy-cuda12x"]
    cupy: str | None = None  # CuPy's version, when `import cupy` works
    cupy_error: str | None = None  # why `import cupy` (or asking it about the GPU) failed
    runtime: str | None = None  # the CUDA runtime CuPy uses, "12.8"
    driver_cuda: str | None = None  # the newest CUDA version the driver supports, "12.4"
    driver: str | None = None  # the driver's own version, "550.54.15" (from nvidia-smi)
    gpus: list = field(default_factory=list)  # GPU names

    @property
    def cuda_major(self) -> int | None:
        """The driver's CUDA major version: the wheel must be for this one (or older)."""
        return int(self.driver_cuda.split(".")[0]) if self.driver_cuda else None

    @property
    def installed_wheel(self) -> str | None:
        """The CuPy distribution in use; "cupy" also when CuPy imports without pip's metadata
        (built from source, or on PYTHONPATH)."""
        return self.wheels[0] if self.wheels else "cupy" if self.cupy else None

    @property
    def cuda_available(self) -> bool:
        return self.cupy is not None and bool(self.gpus) and self.cupy_error is None


def version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def installed_cupy_wheels() -> list[str]:
    """The CuPy distributions pip installed: "cupy" (built from source), "cupy-cuda12x", ..."""
    names = set()
    for distribution in importlib.metadata.distributions():
        name = (distribution.metadata["Name"] or "").lower().replace("_", "-")
        if name == "cupy" or name.startswith("cupy-"):
            names.add(name)
    return sorted(names)


def cuda_version(encoded: int) -> str | None:
    """CUDA's encoding of a version as one int: 12040 -> "12.4"; 0 (no driver) -> None."""
    return f"{encoded // 1000}.{encoded % 1000 // 10}" if encoded else None


def ask_cupy(env: Environment) -> None:
    """Fill in CuPy's version, the CUDA runtime and driver versions and the GPUs, from CuPy."""
    try:
        import cupy
    except Exception as error:  # ImportError, or a missing CUDA library raising OSError
        if env.wheels:
            env.cupy_error = f"import cupy failed: {type(error).__name__}: {error}"
        return
    env.cupy = cupy.__version__
    runtime = cupy.cuda.runtime
    try:
        env.runtime = cuda_version(runtime.runtimeGetVersion())
        env.driver_cuda = cuda_version(runtime.driverGetVersion()) or env.driver_cuda
        count = runtime.getDeviceCount()
        env.gpus = [_name(runtime.getDeviceProperties(i)["name"]) for i in range(count)]
    except Exception as error:  # cudaErrorInsufficientDriver, cudaErrorNoDevice, ...
        env.cupy_error = f"CuPy cannot use the GPU: {type(error).__name__}: {error}"


def _name(raw) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def parse_nvidia_smi(text: str) -> tuple[str | None, str | None]:
    """(driver version, CUDA version) from nvidia-smi's banner:
    "| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4 |"."""
    driver = re.search(r"Driver Version:\s*([\d.]+)", text)
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", text)
    return (driver.group(1) if driver else None), (cuda.group(1) if cuda else None)


def ask_nvidia_smi(env: Environment) -> None:
    """The driver's version, its CUDA version and the GPUs, when nvidia-smi is on PATH."""
    if shutil.which("nvidia-smi") is None:
        return
    try:
        banner = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=20)
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return
    env.driver, cuda = parse_nvidia_smi(banner.stdout)
    env.driver_cuda = env.driver_cuda or cuda
    if not env.gpus:  # "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)"
        env.gpus = re.findall(r"^GPU \d+: (.*?)(?: \(UUID.*)?$", listing.stdout, re.MULTILINE)


def gather_environment() -> Environment:
    env = Environment(python=platform.python_version(), numpy=version_of("numpy"),
                      wheels=installed_cupy_wheels())
    ask_cupy(env)
    ask_nvidia_smi(env)
    return env


# ---- is the CuPy wheel the right one? -----------------------------------------------------------

@dataclass(frozen=True)
class Advice:
    message: str
    problem: bool  # True: something to fix (exit 1); False: information


NO_GPU = ("no NVIDIA GPU here, so device cuda is unavailable (for one: an NVIDIA driver, then "
          "the CuPy wheel for its CUDA major version, e.g. pip install cupy-cuda12x for CUDA 12)")
CPU_ONLY = Advice(f"CPU only: {NO_GPU}", problem=False)


def wheel_for(cuda_major: int | None) -> str | None:
    """The CuPy wheel built for a CUDA major version: 12 -> "cupy-cuda12x"."""
    return WHEELS.get(cuda_major)


def wheel_cuda_major(wheel: str) -> int | None:
    """The CUDA major version a CuPy wheel is built for, from its name: "cupy-cuda12x" -> 12,
    the older "cupy-cuda117" -> 11; None for "cupy" (built from source) and ROCm builds."""
    match = re.fullmatch(r"cupy-cuda(\d\d)(\d|x)", wheel)
    return int(match.group(1)) if match else None


def wheel_advice(installed_wheel: str | None, cuda_major: int | None) -> Advice | None:
    """What to do about CuPy, or None when the installed wheel fits the driver.

    `installed_wheel` is the CuPy distribution pip installed (None: none); `cuda_major` is the
    CUDA major version the driver supports (None: no driver found).
    """
    if installed_wheel is None and cuda_major is None:
        return CPU_ONLY
    want = wheel_for(cuda_major)
    install = f"pip install {want}" if want or cuda_major is None else _no_wheel(cuda_major)
    if installed_wheel is None:
        return Advice(f"the NVIDIA driver supports CUDA {cuda_major} but CuPy is not installed: "
                      f"{install}", problem=True)
    if cuda_major is None:
        return Advice(f"{installed_wheel} is installed but no NVIDIA driver was found: install "
                      f"the driver (nvidia-smi should list your GPU), or `pip uninstall "
                      f"{installed_wheel}` to use the CPU only", problem=False)
    have = wheel_cuda_major(installed_wheel)
    if have is None or have == cuda_major:
        return None  # a source build or a ROCm build: CuPy's own import tells
    if have > cuda_major:
        return Advice(f"{installed_wheel} needs a driver for CUDA {have} but this driver "
                      f"supports CUDA {cuda_major}: upgrade the NVIDIA driver, or `pip uninstall "
                      f"{installed_wheel}` and `{install}`", problem=True)
    return Advice(f"{installed_wheel} is built for CUDA {have} but the driver is for CUDA "
                  f"{cuda_major}: `pip uninstall {installed_wheel}` and `{install}`", problem=True)


def _no_wheel(cuda_major: int) -> str:
    if cuda_major < min(WHEELS):
        return (f"no current CuPy wheel supports CUDA {cuda_major}; upgrade the NVIDIA driver, "
                f"then pip install {NEWEST_WHEEL}")
    return (f"pip install cupy-cuda{cuda_major}x if it exists (see "
            "https://docs.cupy.dev/en/stable/install.html)")


def conflicting_wheels(wheels: list, cuda_major: int | None) -> Advice | None:
    """Two CuPy distributions overwrite each other's files: keep exactly one."""
    if len(wheels) < 2:
        return None
    want = wheel_for(cuda_major)
    then = f"`pip install {want}`" if want else "install the one your driver needs"
    return Advice(f"{len(wheels)} CuPy packages are installed ({', '.join(wheels)}) and they "
                  f"overwrite each other: `pip uninstall {' '.join(wheels)}`, then {then}",
                  problem=True)


# ---- running the primitives on every device -----------------------------------------------------

@dataclass
class DeviceCheck:
    device: str
    results: list = field(default_factory=list)  # check.Result, one per primitive
    error: str | None = None  # the backend could not be made at all
    skipped: str | None = None  # why the device was not checked

    @property
    def failed(self) -> list:
        return [result for result in self.results if result.status != PASS]

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None and not self.failed


def registered_devices() -> list[str]:
    """Backends registered by a call in this process and through the entry-point group."""
    names = set(getattr(backend_registry, "_registered", {}))  # backend.py has no public list
    try:
        names |= {entry.name for entry in importlib.metadata.entry_points(group="edugrad.backends")}
    except Exception:  # a broken distribution's metadata must not stop the doctor
        pass
    builtin = {"cpu", "cuda", "python"}
    return sorted(name for name in names
                  if name not in builtin and not name.startswith("lockstep-"))


def check_device(device: str) -> DeviceCheck:
    """The first conformance case of every required primitive, and of every accelerated one the
    backend offers, on `device` (a device name or "module:Class" / "file.py:Class")."""
    try:
        backend = load_backend(device)
    except CannotLoad as error:  # the message names what is missing
        return DeviceCheck(device, error=str(error))
    except Exception as error:
        return DeviceCheck(device, error=f"{type(error).__name__}: {error}")
    reference = NumpyBackend("cpu")
    ops = list(REQUIRED) + [op for op in ACCELERATED if backend.has(op)]
    return DeviceCheck(device, [check_case(op, 1, backend, reference) for op in ops])


def check_devices(env: Environment, extra: list | None = None) -> list[DeviceCheck]:
    checks = [check_device("cpu"), check_device("python")]
    if env.cuda_available:
        checks.append(check_device("cuda"))
    else:
        why = env.cupy_error or ("CuPy is not installed" if env.cupy is None else "no GPU")
        checks.append(DeviceCheck("cuda", skipped=why))
    checks += [check_device(name) for name in registered_devices() + list(extra or [])]
    return checks


def describe_failures(check: DeviceCheck) -> str:
    failed = check.failed
    shown = ", ".join(f"{r.op.name} {r.status.lower()}" for r in failed[:4])
    return shown + (f" and {len(failed) - 4} more" if len(failed) > 4 else "")


# ---- the verdict -------------------------------------------------------------------------------

def advice(env: Environment, checks: list[DeviceCheck]) -> Advice:
    """The one thing to do, most urgent first; "all good" when there is nothing."""
    by_device = {check.device: check for check in checks}
    for device in ("cpu", "python"):
        broken = by_device.get(device)
        if broken is not None and not broken.ok:
            what = broken.error or describe_failures(broken)
            return Advice(f"device {device} fails ({what}): edugrad itself is broken here; "
                          f"reinstall it (pip install -e .) and run pytest", problem=True)
    clash = conflicting_wheels(env.wheels, env.cuda_major)
    if clash:
        return clash
    wheel = wheel_advice(env.installed_wheel, env.cuda_major)
    if wheel is not None and wheel.problem:
        return wheel
    if env.wheels and env.cupy_error and env.cuda_major is not None:
        want = wheel_for(env.cuda_major) or NEWEST_WHEEL
        return Advice(f"{env.cupy_error}; try `pip install --force-reinstall {want}`",
                      problem=True)
    cuda = by_device.get("cuda")
    if cuda is not None and cuda.skipped is None and not cuda.ok:
        return Advice(f"device cuda fails ({cuda.error or describe_failures(cuda)}): run "
                      "pytest tests/test_cuda.py and report it", problem=True)
    for check in checks:
        if check.device not in ("cpu", "python", "cuda") and not check.ok:
            what = check.error or describe_failures(check)
            return Advice(f"backend {check.device} fails ({what}): run python -m "
                          f"edugrad.checking.check {check.device} for the details", problem=True)
    working = ", ".join(check.device for check in checks if check.ok)
    if wheel is CPU_ONLY:
        return Advice(f"all good for the CPU: devices {working} work; {NO_GPU}", problem=False)
    if wheel is not None:  # information only: CuPy without a driver
        return wheel
    return Advice(f"all good: devices {working} work", problem=False)


def format_report(env: Environment, checks: list[DeviceCheck], verdict: Advice) -> str:
    wheel_line = ", ".join(env.wheels) if env.wheels else \
        "none installed by pip (CuPy imports from elsewhere)" if env.cupy else "none installed"
    want = wheel_for(env.cuda_major)
    if want and env.wheels and wheel_advice(env.installed_wheel, env.cuda_major) is None:
        wheel_line += f" (matches CUDA {env.cuda_major})"
    elif want:
        wheel_line += f" (for CUDA {env.cuda_major} the wheel is {want})"
    gpus = ", ".join(f"{i}: {name}" for i, name in enumerate(env.gpus)) or \
        "none found: no NVIDIA GPU is usable here, device cuda is unavailable"
    lines = [
        "edugrad doctor",
        f"  Python        {env.python} ({sys.executable})",
        f"  edugrad       {version_of('edugrad') or 'not installed (running from source)'}",
        f"  NumPy         {env.numpy or 'not installed'}",
        f"  CuPy          {env.cupy or ('does not import' if env.cupy_error else 'not installed')}",
        f"  CUDA driver   {_driver_line(env)}",
        f"  CUDA runtime  {env.runtime or 'unknown (CuPy reports it)'}",
        f"  CuPy wheel    {wheel_line}",
        f"  GPUs          {gpus}",
    ]
    if env.cupy_error:
        lines.append(f"  CuPy error    {env.cupy_error}")
    lines += ["", "primitives, the first conformance case of each, on every device:"]
    width = max([8] + [len(check.device) + 1 for check in checks])
    for check in checks:
        if check.skipped:
            status = f"not checked: {check.skipped}"
        elif check.error:
            status = f"FAIL  cannot make the backend: {check.error}"
        elif check.failed:
            status = f"FAIL  {len(check.results) - len(check.failed)} of {len(check.results)} " \
                     f"pass; {describe_failures(check)}"
        else:
            status = f"PASS  {len(check.results)} primitives"
        lines.append(f"  {check.device:<{width}} {status}")
    lines += ["", verdict.message]
    return "\n".join(lines)


def _driver_line(env: Environment) -> str:
    if env.driver_cuda is None and env.driver is None:
        found = "nvidia-smi is not on PATH" if shutil.which("nvidia-smi") is None else \
            "nvidia-smi found no driver"
        asked = "" if env.cupy else ", and CuPy could not tell" if env.wheels else \
            ", and CuPy is not there to ask"
        return f"none ({found}{asked})"
    parts = [f"CUDA {env.driver_cuda}" if env.driver_cuda else None,
             f"driver {env.driver}" if env.driver else None]
    return ", ".join(part for part in parts if part)


def main(argv: list[str] | None = None) -> int:
    extra = sys.argv[1:] if argv is None else argv
    env = gather_environment()
    checks = check_devices(env, extra)
    verdict = advice(env, checks)
    print(format_report(env, checks, verdict))
    return 1 if verdict.problem else 0


if __name__ == "__main__":
    sys.exit(main())
