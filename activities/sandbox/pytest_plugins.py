"""Which pytest plugins a project's test run loads: only those of packages it depends on.

pytest loads every plugin installed where it runs (entry point group ``pytest11``). The
base layer of every project environment is the worker's own site-packages: besides what
a project uses (pytest, anyio through starlette) it holds the worker's tooling, with
plugins of its own: schemathesis, hypothesis, pytest-asyncio. A project that declares
none of them still ran with all of them loaded: hooks, fixtures and configuration
warnings it never asked for, behaviour its authors do not see on their machines, and
about 1.3 s of imports in every run (schemathesis pulls in hypothesis), more than half
the CPU of a small project's test run.

So the runner blocks (``-p no:<name>``) every plugin whose distribution the project
does not depend on. The project depends on the distributions of its own environment
layer (pip installed exactly what it declared) and on the dependency closure of its
declared requirements, and of pytest (the runner), within the base layer. A plugin the
project declares (``pytest-asyncio`` in its requirements) loads as on the developer's
machine; so does anyio's, for a FastAPI project (fastapi → starlette → anyio).
"""

from __future__ import annotations

import functools
import importlib.metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from activities.sandbox import interpreter
from activities.sandbox.models import ProjectEnv

__all__ = ["blocked_plugins", "plugin_options"]

_GROUP = "pytest11"
Dists = dict[str, importlib.metadata.Distribution]


def plugin_options(env: ProjectEnv, requirements: list[str]) -> list[str]:
    """pytest options that block the plugins the project does not depend on."""
    return [arg for name in blocked_plugins(env, requirements) for arg in ("-p", f"no:{name}")]


def blocked_plugins(env: ProjectEnv, requirements: list[str]) -> tuple[str, ...]:
    """Names of the ``pytest11`` plugins of distributions outside the project's closure.

    Args:
        env: The project environment (its own layer, and the base layer below it).
        requirements: The project's declared requirements (``EnvResult.requirements``).
    """
    return _blocked(env.path, tuple(requirements))


@functools.lru_cache(maxsize=256)  # environments are immutable: one answer per env and list
def _blocked(env_root: Path, requirements: tuple[str, ...]) -> tuple[str, ...]:
    own = _own_layer(env_root)
    dists: Dists = {**interpreter.base_distributions(), **own}
    needed = _closure(["pytest", *requirements], dists) | set(own)
    blocked = {
        ep.name
        for name, dist in dists.items()
        if name not in needed
        for ep in dist.entry_points
        if ep.group == _GROUP
    }
    return tuple(sorted(blocked))


def _own_layer(env_root: Path) -> Dists:
    site = interpreter.site_packages(env_root)
    if not site.is_dir():
        return {}
    found: Dists = {}
    for dist in importlib.metadata.distributions(path=[str(site)]):
        if name := dist.metadata["Name"]:
            found.setdefault(canonicalize_name(name), dist)
    return found


def _closure(requirements: list[str], dists: Dists) -> set[str]:
    """Canonical names reachable from ``requirements`` through the dists' own requirements."""
    seen: set[str] = set()
    todo: list[tuple[str, frozenset[str]]] = []
    for text in requirements:
        if (req := _parse(text)) is not None and _applies(req, ""):
            todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    done_extras: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in done_extras:
            continue
        done_extras.add((name, extras))
        seen.add(name)
        dist = dists.get(name)
        if dist is None:
            continue
        for line in dist.requires or []:
            dep = _parse(line)
            if dep is None:
                continue
            if any(_applies(dep, extra) for extra in ("", *extras)):
                todo.append((canonicalize_name(dep.name), frozenset(dep.extras)))
    return seen


def _parse(text: str) -> Requirement | None:
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None  # a local path or URL: its own layer covers what it installed


def _applies(req: Requirement, extra: str) -> bool:
    return req.marker is None or req.marker.evaluate({"extra": extra})
