"""Opening a pull (merge) request at delivery, against a local server speaking the
GitHub and GitLab REST formats."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.phases.deliver import DeliverPhase
from activities.pull_requests import PullRequestError, forge_for, open_pull_request
from activities.services import Services
from activities.workspace import Workspaces
from contract import DeliveryFacts
from tests.support.forge_server import ForgeServer
from tests.support.git import git
from tests.support.repos import bare_remote, phase_input, request, user_repo


@pytest.fixture
def forge(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForgeServer]:
    with ForgeServer() as server:
        monkeypatch.setenv("GITHUB_API_URL", f"{server.url}/gh")
        monkeypatch.setenv("GITLAB_API_URL", f"{server.url}/gl")
        yield server


@pytest.mark.parametrize(
    "url,kind,project",
    [
        ("https://github.com/acme/svc.git", "github", "acme/svc"),
        ("git@github.com:acme/svc.git", "github", "acme/svc"),
        ("ssh://git@github.com/acme/svc", "github", "acme/svc"),
        ("https://gitlab.com/acme/team/svc.git", "gitlab", "acme/team/svc"),
        ("git@gitlab.com:acme/svc.git", "gitlab", "acme/svc"),
    ],
)
def test_the_forge_is_known_from_the_remote_url(url: str, kind: str, project: str) -> None:
    forge = forge_for(url)
    assert forge is not None and (forge.kind, forge.project) == (kind, project)


def test_local_paths_and_other_hosts_have_no_forge(monkeypatch: pytest.MonkeyPatch) -> None:
    assert forge_for("/srv/repos/svc") is None
    assert forge_for("https://git.example.org/acme/svc.git") is None
    monkeypatch.setenv("BACKFORGE_GITHUB_HOSTS", "git.example.org")
    found = forge_for("https://git.example.org/acme/svc.git")
    assert found is not None and found.kind == "github" and found.api.endswith("/api/v3")


@pytest.mark.parametrize(
    "url", ["https://github.com/acme/svc.git", "https://gitlab.com/acme/svc.git"]
)
async def test_a_request_is_opened_once_and_found_again(forge: ForgeServer, url: str) -> None:
    found = forge_for(url)
    assert found is not None
    first = await open_pull_request(
        found, head="001-x", base="main", title="t", body="# Report", token=forge.token
    )
    again = await open_pull_request(
        found, head="001-x", base="main", title="t", body="# Report", token=forge.token
    )
    assert first == again and len(forge.pulls) == 1
    assert forge.pulls[0]["body"] == "# Report" and forge.pulls[0]["base"] == "main"


async def test_a_bad_token_says_which_variable_to_fix(forge: ForgeServer) -> None:
    found = forge_for("https://github.com/acme/svc.git")
    assert found is not None
    with pytest.raises(PullRequestError, match="check GITHUB_TOKEN") as err:
        await open_pull_request(found, head="h", base="main", title="t", body="b", token="wrong")
    assert "wrong" not in str(err.value)


async def deliver(tmp_path: Path, url: str) -> tuple[str | None, Path]:
    """Prepare a feature on ``url`` (git maps it to a local bare repo) and deliver it."""
    source = user_repo(tmp_path / "source")
    remote = bare_remote(tmp_path / "svc.git", source)
    ws = Workspaces(tmp_path / "scratch")
    info = await ws.prepare(request(url), "wf-1")
    inp = phase_input(info, info.base_commit, phase="deliver")
    outcome = await DeliverPhase(Services(workspaces=ws)).run(inp, DeliveryFacts())
    assert git(remote, "rev-parse", info.branch) == outcome.commit
    return outcome.pull_request, remote


@pytest.fixture
def github_remote(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = "https://github.com/acme/svc.git"
    # git talks to the local bare repo for that URL; Backforge still sees a GitHub remote.
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", f"url.{tmp_path / 'svc.git'}.insteadOf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", url)
    return url


async def test_delivery_opens_a_pull_request_with_the_report(
    forge: ForgeServer, github_remote: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", forge.token)
    pull, _ = await deliver(tmp_path, github_remote)
    assert pull == "https://github.com/acme/svc/pull/1"
    [opened] = forge.pulls
    assert opened["head"] == "001-bookmarks-api-tags" and opened["base"] == "main"
    assert opened["body"].startswith("# Implementation report: 001-bookmarks-api-tags")


async def test_without_a_token_delivery_says_how_to_open_one(
    forge: ForgeServer, github_remote: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    pull, _ = await deliver(tmp_path, github_remote)
    assert pull is not None and pull.startswith("set GITHUB_TOKEN on the worker")
    assert "gh pr create --repo acme/svc --head 001-bookmarks-api-tags --base main" in pull
    assert forge.pulls == []
