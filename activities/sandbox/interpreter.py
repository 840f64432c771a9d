"""The worker's interpreter as generated code sees it: the base layer of every environment.

Inside the sandbox the project environment (``/venv``) is a venv of the worker's base
interpreter whose ``site-packages`` names the worker's own site directories in a
``.pth`` file: fastapi, httpx, pytest and uvicorn come from there, read-only. Paths in a
``.pth`` file are only appended to ``sys.path``; the ``.pth`` files inside those
directories are not run, so an editable install's finder (which would point at the
Backforge source tree) never loads. Backforge's own files in the site directories (a
non-editable install, the editable finder, the dist-info naming the source checkout)
are masked with empty read-only mounts.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import site
import sys
import venv
from pathlib import Path

from packaging.utils import canonicalize_name

__all__ = [
    "site_dirs",
    "base_prefix",
    "backforge_files",
    "fingerprint",
    "base_distributions",
    "make_skeleton",
    "site_packages",
    "default_cache_dir",
]

_BASE_PTH = "_backforge_base.pth"


@functools.cache
def site_dirs() -> tuple[Path, ...]:
    """The worker's site directories (real paths), in ``sys.path`` order."""
    found: list[Path] = []
    for p in site.getsitepackages():
        real = Path(os.path.realpath(p))
        if real.is_dir() and real not in found:
            found.append(real)
    return tuple(found)


def base_prefix() -> Path:
    """The base installation (its ``lib`` holds the standard library)."""
    return Path(os.path.realpath(sys.base_prefix))


@functools.cache
def backforge_files() -> tuple[Path, ...]:
    """Top-level entries of Backforge's own distribution inside the site directories."""
    dist = base_distributions().get("backforge")
    if dist is None:
        return ()
    tops: set[Path] = set()
    for f in dist.files or []:
        # A shared __pycache__ holds other modules too: mask only Backforge's files there.
        depth = 2 if f.parts[0] == "__pycache__" and len(f.parts) > 1 else 1
        top = Path(str(dist.locate_file(Path(*f.parts[:depth]))))
        real = Path(os.path.realpath(top))
        inside = real.parent if depth == 1 else real.parent.parent
        if any(inside == d for d in site_dirs()) and os.path.lexists(real):
            tops.add(real)
    return tuple(sorted(tops))


@functools.cache
def base_distributions() -> dict[str, importlib.metadata.Distribution]:
    """Distributions of the base layer by canonical name (the first on the path wins)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions(path=[str(d) for d in site_dirs()]):
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), dist)
    return found


@functools.cache
def fingerprint() -> str:
    """Identity of the interpreter and its base layer: any change means other envs."""
    dists = sorted(f"{n}=={d.version}" for n, d in base_distributions().items())
    identity = {
        "executable": os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
        "version": sys.version,
        "prefix": str(base_prefix()),
        "site": [str(d) for d in site_dirs()],
        "dists": dists,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def site_packages(env_root: Path) -> Path:
    return env_root / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


def make_skeleton(path: Path) -> None:
    """A venv of the base interpreter at ``path`` whose site-packages adds the base layer."""
    venv.EnvBuilder(symlinks=True, with_pip=False, clear=True).create(path)
    (site_packages(path) / _BASE_PTH).write_text("".join(f"{d}\n" for d in site_dirs()))
    for name in ("Activate.ps1", "activate", "activate.csh", "activate.fish"):
        with contextlib.suppress(FileNotFoundError):
            (path / "bin" / name).unlink()  # they name the worker-side path; not needed


def default_cache_dir() -> Path:
    """``$BACKFORGE_CACHE_DIR``, else ``~/.cache/backforge``."""
    configured = os.environ.get("BACKFORGE_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "backforge"
