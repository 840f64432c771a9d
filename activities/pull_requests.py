"""Opening a pull (merge) request for a delivered branch, on GitHub or GitLab.

When the feature's remote is a GitHub or GitLab repository and the worker has a
token (``GITHUB_TOKEN`` / ``GITLAB_TOKEN``), delivery opens a pull request whose
body is the report; asking again finds the one already open. Without a token, or
for another host, delivery says which command opens one. The token is read from the
worker's environment, sent only in the request header, and never logged.

Hosts: ``github.com`` and ``gitlab.com``, plus any listed in
``BACKFORGE_GITHUB_HOSTS`` / ``BACKFORGE_GITLAB_HOSTS`` (comma-separated, for
GitHub Enterprise or self-managed GitLab). API roots: ``GITHUB_API_URL`` (default
``https://api.github.com``) and ``GITLAB_API_URL`` (default ``https://<host>/api/v4``).
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

import httpx

__all__ = ["Forge", "PullRequestError", "forge_for", "open_pull_request", "how_to_open"]

_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_REMOTE = re.compile(
    r"^(?:(?:https?|ssh|git)://(?:[^@/]+@)?(?P<host>[^/:]+)(?::\d+)?/|[^@]+@(?P<scp>[^:]+):)"
    r"(?P<path>[^?#]+?)(?:\.git)?/?$"
)


class PullRequestError(Exception):
    """The forge refused the request (the message says why; the branch is pushed regardless)."""


@dataclass(frozen=True)
class Forge:
    """Where pull requests for one repository are opened."""

    kind: Literal["github", "gitlab"]
    host: str
    #: ``owner/repo`` (GitLab: ``group/subgroup/project``).
    project: str

    @property
    def token_env(self) -> str:
        return "GITHUB_TOKEN" if self.kind == "github" else "GITLAB_TOKEN"

    @property
    def api(self) -> str:
        if self.kind == "github":
            default = (
                "https://api.github.com"
                if self.host == "github.com"
                else f"https://{self.host}/api/v3"
            )
            return os.environ.get("GITHUB_API_URL", default).rstrip("/")
        return os.environ.get("GITLAB_API_URL", f"https://{self.host}/api/v4").rstrip("/")


def _hosts(env: str, default: str) -> set[str]:
    extra = {h.strip().lower() for h in os.environ.get(env, "").split(",") if h.strip()}
    return {default} | extra


def forge_for(remote_url: str) -> Forge | None:
    """The forge of a remote URL, or None for a local path or an unknown host."""
    m = _REMOTE.match(remote_url.strip())
    if not m:
        return None
    host = (m.group("host") or m.group("scp") or "").lower()
    path = m.group("path").strip("/")
    if host in _hosts("BACKFORGE_GITHUB_HOSTS", "github.com") and path.count("/") == 1:
        return Forge("github", host, path)
    if host in _hosts("BACKFORGE_GITLAB_HOSTS", "gitlab.com") and "/" in path:
        return Forge("gitlab", host, path)
    return None


def how_to_open(forge: Forge | None, *, head: str, base: str, title: str, body_file: str) -> str:
    """The command that opens the pull request by hand."""
    q = shlex.quote
    if forge is not None and forge.kind == "gitlab":
        return (
            f"glab mr create --source-branch {q(head)} --target-branch {q(base)} "
            f'--title {q(title)} --description "$(git show {q(head)}:{q(body_file)})"'
        )
    if forge is not None:
        return (
            f"gh pr create --repo {q(forge.project)} --head {q(head)} --base {q(base)} "
            f'--title {q(title)} --body "$(git show {q(head)}:{q(body_file)})"'
        )
    return f"git push <your forge remote> {q(head)}, then open a pull request from {q(head)} into {q(base)}"


async def open_pull_request(
    forge: Forge, *, head: str, base: str, title: str, body: str, token: str
) -> str:
    """Open (or find the open) pull request from ``head`` into ``base``; return its URL.

    Raises:
        PullRequestError: The forge refused (bad token, no access, unknown branch).
    """
    async with httpx.AsyncClient(timeout=_TIMEOUT) as client:
        if forge.kind == "github":
            return await _github(client, forge, head, base, title, body, token)
        return await _gitlab(client, forge, head, base, title, body, token)


async def _github(
    client: httpx.AsyncClient, forge: Forge, head: str, base: str, title: str, body: str, token: str
) -> str:
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    url = f"{forge.api}/repos/{forge.project}/pulls"
    created = await client.post(
        url, headers=headers, json={"title": title, "head": head, "base": base, "body": body}
    )
    if created.status_code == 201:
        return str(created.json()["html_url"])
    if created.status_code == 422 and "already exists" in created.text:
        owner = forge.project.split("/", 1)[0]
        found = await client.get(
            url, headers=headers, params={"head": f"{owner}:{head}", "base": base, "state": "open"}
        )
        if found.status_code == 200 and found.json():
            return str(found.json()[0]["html_url"])
    raise PullRequestError(_explain(forge, created))


async def _gitlab(
    client: httpx.AsyncClient, forge: Forge, head: str, base: str, title: str, body: str, token: str
) -> str:
    headers = {"PRIVATE-TOKEN": token}
    url = f"{forge.api}/projects/{quote(forge.project, safe='')}/merge_requests"
    created = await client.post(
        url,
        headers=headers,
        json={"source_branch": head, "target_branch": base, "title": title, "description": body},
    )
    if created.status_code == 201:
        return str(created.json()["web_url"])
    if created.status_code == 409:
        found = await client.get(
            url, headers=headers, params={"source_branch": head, "state": "opened"}
        )
        if found.status_code == 200 and found.json():
            return str(found.json()[0]["web_url"])
    raise PullRequestError(_explain(forge, created))


def _explain(forge: Forge, response: httpx.Response) -> str:
    what = "pull request" if forge.kind == "github" else "merge request"
    if response.status_code in (401, 403):
        fix = f"check {forge.token_env}: it must be valid and allowed to open a {what} on {forge.project}"
    elif response.status_code == 404:
        fix = f"check that {forge.project} exists on {forge.host} and the token can see it"
    else:
        fix = "see the forge's message"
    detail = response.text[:300].replace("\n", " ")
    return f"{forge.host} refused the {what} (HTTP {response.status_code}: {detail}); {fix}"
