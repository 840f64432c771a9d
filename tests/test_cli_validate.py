"""``validate``: the black-box checks on an existing service at a commit, with no model.

The reference notes service (not the demo's) is committed to a repository; the
command serves the chosen ref in the sandbox, checks it, and exits 1 only when a
finding blocks. The repository's checkout is not touched.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.cli_driver import invoke_async
from tests.support.git import git
from tests.support.repos import snapshot
from tests.support.validation_services import build_reference, load_variants


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-q", "-m", message)


async def test_validate_passes_a_correct_service_and_blocks_a_defective_ref(tmp_path: Path) -> None:
    repo = tmp_path / "notes"
    build_reference(repo)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "the notes service")
    good = git(repo, "rev-parse", "HEAD")
    idor = next(v for v in load_variants() if v.name == "idor_on_read")
    build_reference(tmp_path / "variant", idor)
    for rel in ("app",):
        for src in (tmp_path / "variant" / rel).rglob("*.py"):
            (repo / src.relative_to(tmp_path / "variant")).write_bytes(src.read_bytes())
    commit_all(repo, "a regression")
    git(repo, "checkout", "-q", good)  # the user has the good commit checked out
    before = snapshot(repo)

    passed = await invoke_async("validate", "--repo", str(repo), "--ref", good)
    assert passed.exit_code == 0, passed.stdout + passed.stderr
    assert "0 blocking" in passed.stdout

    out = tmp_path / "findings.md"
    blocked = await invoke_async(
        "validate", "--repo", str(repo), "--ref", "main", "--markdown", str(out)
    )
    assert blocked.exit_code == 1, blocked.stdout + blocked.stderr
    assert "authorization.idor_read" in blocked.stdout
    assert "curl" in out.read_text()
    assert snapshot(repo) == before


async def test_validate_without_a_contract_says_how_to_give_one(tmp_path: Path) -> None:
    repo = tmp_path / "bare-app"
    (repo / "app").mkdir(parents=True)
    (repo / "app" / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "app")
    result = await invoke_async("validate", "--repo", str(repo))
    assert result.exit_code == 2
    assert "no contract found" in result.stderr and "--contract PATH" in result.stderr
