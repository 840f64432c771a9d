"""The environment block: facts about Python, packages, tests and tools."""

from __future__ import annotations

import platform
from pathlib import Path

from activities.environment import gather_environment, render_environment


async def test_the_block_states_python_packages_and_tools(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("fastapi>=0.100\nhttpx\n")
    facts = await gather_environment(
        tmp_path, feature_dir="specs/001-x", tools=["run_tests", "api_docs"]
    )
    text = render_environment(facts)
    assert f"- Python {platform.python_version()}; project environment ready; no network." in text
    assert "- Declared by the project: fastapi>=0.100, httpx." in text
    # Every installed version once, the declared packages' first, on one line.
    installed = next(ln for ln in text.splitlines() if ln.startswith("- Installed: "))
    assert installed.startswith(f"- Installed: fastapi {facts.packages['fastapi']}, httpx ")
    assert (
        f"pytest {facts.packages['pytest']}" in installed and "(`api_docs` lists all)" in installed
    )
    assert "Not installed: " in text and "email-validator" in text
    assert (
        "`run_tests`: `python -m pytest -p no:cacheprovider" in text and "`addopts` apply" in text
    )
    assert "plugins only of declared packages" in text  # activities/sandbox/pytest_plugins.py
    assert "`api_docs`" in text and "`run_command`" not in text  # only this phase's tools
    assert "`specs/001-x/`" in text and "Project Structure" in text  # where files go
    # The same checkout gives the same text (it is part of the cacheable, replayable prefix).
    again = render_environment(
        await gather_environment(
            tmp_path, feature_dir="specs/001-x", tools=["run_tests", "api_docs"]
        )
    )
    assert again == text


async def test_an_environment_that_cannot_be_built_says_why(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("surely-not-a-package-xyz==9.9\n")
    facts = await gather_environment(tmp_path, feature_dir="specs/001-x", tools=[])
    text = render_environment(facts)
    assert "project environment NOT ready" in text and "surely-not-a-package-xyz" in text
    assert "surely-not-a-package-xyz==9.9 (NOT installed)" in text
