"""The demo: its example repository, its checks, and a whole interactive run.

The whole run uses a one-task transcript whose task escalates, answered at the
(piped) terminal, so it covers asking, following and the demo's set-up in
about ten seconds.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cli.demo import DEMO_README, _prepare_repo, create_demo_repo, demo_repo_path
from cli.errors import CliError
from tests.support.cli_driver import error_line, invoke

TRANSCRIPT = Path(__file__).parent / "fixtures" / "escalation.yaml"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_demo_repo_has_readme_committed_on_main(tmp_path: Path) -> None:
    repo = tmp_path / "demo"
    assert create_demo_repo(repo) == "main"
    assert git(repo, "branch", "--show-current") == "main"
    assert git(repo, "log", "--format=%s") == "Initial commit: README"
    assert git(repo, "show", "HEAD:README.md") == DEMO_README.strip()
    assert git(repo, "status", "--porcelain") == ""


def test_demo_repo_that_cannot_be_created_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CliError) as info:
        create_demo_repo(blocker / "demo")
    assert info.value.code == 1
    assert "could not create the demo repository" in info.value.message
    assert "--repo" in info.value.message


def test_existing_repo_is_checked_and_its_branch_is_the_base(tmp_path: Path) -> None:
    repo = tmp_path / "svc"
    create_demo_repo(repo)
    git(repo, "checkout", "-q", "-b", "develop")
    assert _prepare_repo(repo) == "develop"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _prepare_repo(empty) == "main" and git(empty, "branch", "--show-current") == "main"
    stuff = tmp_path / "stuff"
    stuff.mkdir()
    (stuff / "notes.txt").write_text("x")
    with pytest.raises(CliError, match="invalid --repo.*not a git repository"):
        _prepare_repo(stuff)


def test_demo_repo_paths_do_not_collide(tmp_path: Path) -> None:
    first = demo_repo_path(None, tmp_path)
    assert first.parent == tmp_path / "demo-repos" and first.name.startswith("bookmarks-")
    first.mkdir(parents=True)
    assert demo_repo_path(None, tmp_path) != first
    assert demo_repo_path("~/svc", tmp_path) == Path("~/svc").expanduser().resolve()


def test_demo_checks_arguments_before_creating_anything(tmp_path: Path) -> None:
    result = invoke("demo", "--gates", "spec,deploy", "--data-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "invalid --gates: 'deploy'" in error_line(result)
    assert list(tmp_path.iterdir()) == []  # no repo, no server database


def test_interactive_demo_refuses_a_bad_option_at_once_and_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)  # in CI, a demo without a terminal would --yes
    result = invoke(
        "demo",
        "--model", f"scripted:{TRANSCRIPT}",
        "--feature", "Add a price rounding helper",
        "--gates", "none",
        "--data-dir", str(tmp_path),
        input="Z\nb\n\n",  # a wrong key, the right one in lower case, no guidance
    )  # fmt: skip
    out = result.stdout
    assert result.exit_code == 0, out + result.stderr
    assert "How should half cents be rounded?" in out
    assert out.count("unknown option 'Z'") == 1
    assert out.count("Q1 [A/B] (Enter = A): ") == 2  # asked again once, right away
    assert out.count("Guidance / comment (optional): ") == 1
    assert "✓ completed" in out
    assert "Commits (main.." in out
    repo = next((tmp_path / "demo-repos").iterdir())
    branch = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/0*")
    spec = next(
        p
        for p in git(repo, "ls-tree", "-r", "--name-only", branch).split()
        if p.endswith("/spec.md")
    )
    assert "How should half cents be rounded? → A: Half to even" in git(
        repo, "show", f"{branch}:{spec}"
    )
    assert (tmp_path / "demo.log").stat().st_size > 0  # worker logs went to the file
