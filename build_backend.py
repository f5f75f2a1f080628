"""The build backend: setuptools' own, with one fix to editable installs (`pip install -e .`).

Not part of the library; pyproject.toml names it (`[build-system]`, `backend-path = ["."]`).
Everything but `build_editable` is setuptools.build_meta unchanged.

The fault it fixes: a clone's folder is usually named `edugrad`. Start Python in the folder that
holds the clone (your home folder, or Jupyter started there) and `import edugrad` finds the
clone's folder first, because the current folder comes first on sys.path. The folder has no
__init__.py, so Python makes it an empty namespace package ("module 'edugrad' has no attribute
'tensor'"), and setuptools' editable finder, which runs after the normal path search, is never
asked. setuptools' other modes do not help here: `editable_mode=compat` puts the repository root
on sys.path, which has no `edugrad/backends` (backends/ is mapped there by package-dir), and
`editable_mode=strict` links a copy of the tree whose `edugrad` loses to the source folder when
Python runs in the repository root, again without `edugrad.backends`.

So the editable wheel gets two more files: a finder that answers for the top-level name
`edugrad` only, from this checkout, placed first on sys.meta_path, and the .pth file that
installs it when Python starts. Submodules then come from edugrad's own __path__ and
`edugrad.backends` from setuptools' finder, as before.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (sdist, wheel and metadata: unchanged)

FINDER = "__editable___edugrad_first"  # a module name of setuptools' editable naming scheme

FINDER_SOURCE = '''\
"""Finds `import edugrad` in the editable checkout before the current folder is searched.

Written by build_backend.py in {root}, which says why.
"""
import sys
from importlib.machinery import PathFinder

CHECKOUT = {root!r}


class EdugradFirst:
    """A meta path finder for the one name `edugrad`; anything else goes to the usual search."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        return PathFinder.find_spec(name, [CHECKOUT]) if name == "edugrad" else None


if EdugradFirst not in sys.meta_path:
    sys.meta_path.insert(0, EdugradFirst)
'''


def build_editable(wheel_directory, config_settings=None, metadata_directory=None) -> str:
    name = _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
    root = os.path.dirname(os.path.abspath(__file__))  # a PEP 517 backend runs in the checkout
    _add_to_wheel(os.path.join(wheel_directory, name), {
        f"{FINDER}.py": FINDER_SOURCE.format(root=root),
        f"{FINDER}.pth": f"import {FINDER}\n",  # site runs a .pth line that starts with import
    })
    return name


def _add_to_wheel(path: str, files: dict) -> None:
    """Rewrite the wheel at `path` with `files` added at its top level and listed in RECORD."""
    with zipfile.ZipFile(path) as wheel:
        entries = [(info, wheel.read(info)) for info in wheel.infolist()]
    record = next(i for i, (info, _) in enumerate(entries)
                  if info.filename.endswith(".dist-info/RECORD"))
    record_info, listing = entries.pop(record)
    for name, text in files.items():
        data = text.encode("utf-8")
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        listing = f"{name},sha256={digest.decode()},{len(data)}\n".encode() + listing
        entries.append((zipfile.ZipInfo(name, date_time=record_info.date_time), data))
    entries.append((record_info, listing))  # RECORD stays the last entry
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for info, data in entries:
            wheel.writestr(info, data, zipfile.ZIP_DEFLATED)
