"""The repository as a remote: addressing, pre-flight checks, fenced pushes."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.workspace import PushRejected, Remote, check_repo_path, preflight
from activities.workspace.remote import RefUpdate, default_branch, push
from tests.support.git import git
from tests.support.repos import bare_remote, user_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return user_repo(tmp_path / "repo")


def test_check_repo_path_accepts_new_empty_and_git_dirs(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    check_repo_path(str(tmp_path / "empty"))
    check_repo_path(str(repo))
    assert not (tmp_path / "brand-new").exists()  # checking creates nothing


def test_check_repo_path_refuses_a_file(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match="is a file; pass a git repository directory") as err:
        check_repo_path(str(f))
    assert str(f) in str(err.value)


def test_check_repo_path_refuses_non_git_non_empty_dir(tmp_path: Path) -> None:
    d = tmp_path / "project"
    d.mkdir()
    (d / "main.py").write_text("x")
    with pytest.raises(ValueError, match="is not a git repository") as err:
        check_repo_path(str(d))
    assert "git init" in str(err.value)
    assert str(d) in str(err.value)


def test_check_repo_path_refuses_missing_parent(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="neither does its parent"):
        check_repo_path(str(tmp_path / "no" / "such" / "repo"))


def test_check_repo_path_refuses_a_file_as_parent(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("x")
    with pytest.raises(ValueError):
        check_repo_path(str(f / "repo"))


def test_a_path_is_made_absolute_and_a_url_kept() -> None:
    local = Remote.parse("relative/repo")
    assert local.local_path is not None and local.url == str(local.local_path)
    assert Path(local.url).is_absolute()
    assert Remote.parse("file:///srv/r.git").url == "/srv/r.git"
    for url in (
        "https://example.org/a/b.git",
        "ssh://git@example.org/a.git",
        "git@example.org:a/b",
    ):
        remote = Remote.parse(url)
        assert remote.url == url and remote.local_path is None
    assert Remote.parse("/srv/a").cache_name != Remote.parse("/srv/b").cache_name


def test_preflight_accepts_a_repo_and_its_branches(repo: Path, tmp_path: Path) -> None:
    preflight(str(repo))
    preflight(str(repo), "main")
    preflight(str(tmp_path / "brand-new"))


def test_preflight_names_a_missing_base_ref_and_the_branches(repo: Path) -> None:
    with pytest.raises(ValueError, match=r"--base 'develop' is not a branch or tag .*main"):
        preflight(str(repo), "develop")


def test_preflight_of_an_unreachable_remote_says_what_to_check() -> None:
    with pytest.raises(ValueError, match="cannot read the repository .*credentials"):
        preflight("http://127.0.0.1:9/nothing-here.git")  # nothing listens on port 9


def test_default_branch_skips_a_checked_out_feature_branch() -> None:
    refs = {
        "symref:HEAD": "refs/heads/003-old-feature",
        "refs/heads/003-old-feature": "a" * 40,
        "refs/heads/main": "b" * 40,
        "refs/tags/v1": "c" * 40,
    }
    assert default_branch(refs, None) == "refs/heads/main"
    assert default_branch(refs, "v1") == "refs/tags/v1"
    assert default_branch({**refs, "symref:HEAD": "refs/heads/main"}, None) == "refs/heads/main"


async def test_a_lease_that_does_not_hold_rejects_the_whole_push(
    repo: Path, tmp_path: Path
) -> None:
    remote_dir = bare_remote(tmp_path / "remote.git", repo)
    remote = Remote.parse(str(remote_dir))
    main = git(repo, "rev-parse", "main")
    # Create a ref that must not exist yet, then try again with another value.
    await push(repo, remote, [RefUpdate("refs/heads/001-x", main, expected="")])
    git(
        repo,
        "-c",
        "user.name=u",
        "-c",
        "user.email=u@u",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "two",
    )
    two = git(repo, "rev-parse", "HEAD")
    with pytest.raises(PushRejected) as err:
        await push(
            repo,
            remote,
            [
                RefUpdate("refs/heads/002-y", two, expected=""),
                RefUpdate("refs/heads/001-x", two, expected=""),
            ],
        )
    assert err.value.ref == "refs/heads/001-x"
    assert (
        git(remote_dir, "for-each-ref", "--format=%(refname)", "refs/heads/002-y") == ""
    )  # atomic
    await push(repo, remote, [RefUpdate("refs/heads/001-x", two, expected=main)])  # lease holds
    assert git(remote_dir, "rev-parse", "refs/heads/001-x") == two
