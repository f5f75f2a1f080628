"""Shared pytest configuration.

`--backend NAME` (repeatable) adds a backend to those the backend tests run on: a registered
device name ("cuda", a learner's "mine") or a class, as "package.module:Class" or
"path/to/file.py:Class". Every test with a `backend_name` argument runs once per backend.
"""

from __future__ import annotations

DEFAULT_BACKENDS = ("cpu", "python")


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--backend", action="append", default=[], metavar="NAME",
        help="also run the backend tests on this device name or MODULE:CLASS (repeatable)",
    )


def backend_names(config) -> list[str]:
    extra = [name for name in config.getoption("backend") if name not in DEFAULT_BACKENDS]
    return list(DEFAULT_BACKENDS) + extra


def pytest_generate_tests(metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        metafunc.parametrize("backend_name", backend_names(metafunc.config))
