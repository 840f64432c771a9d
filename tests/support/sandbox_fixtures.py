"""Fixtures of the sandbox tests (loaded with ``pytest_plugins``, never imported)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from activities.sandbox import CommandResult, run_sandboxed
from tests.support.sandbox_support import git


@pytest.fixture(scope="session", autouse=True)
def sandbox_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One environment cache for the whole session (environments are reused across tests)."""
    cache = tmp_path_factory.mktemp("backforge-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BACKFORGE_CACHE_DIR", str(cache))
        mp.delenv("BACKFORGE_WHEELHOUSE", raising=False)
        yield cache


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A checkout: a git repository with one commit, owned by the worker."""
    source = tmp_path / "checkout"
    source.mkdir()
    (source / "README.md").write_text("generated project\n")
    git(source, "init", "-q")
    git(source, "add", "-A")
    git(source, "commit", "-qm", "base")
    return source


@pytest.fixture(scope="session")
async def probe(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CommandResult]:
    """One harmless run: what isolation this machine gives."""
    yield await run_sandboxed(["true"], source=tmp_path_factory.mktemp("probe"))
