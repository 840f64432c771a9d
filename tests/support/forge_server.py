"""A local HTTP server speaking the GitHub and GitLab pull-request REST formats (a test double)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

__all__ = ["ForgeServer"]


@dataclass
class ForgeServer:
    """GitHub at ``/gh`` and GitLab at ``/gl``; pull requests kept in memory."""

    token: str = "test-token-123"
    pulls: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def __enter__(self) -> ForgeServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                given = self.headers.get("Authorization", "").removeprefix("Bearer ")
                given = given or self.headers.get("PRIVATE-TOKEN", "")
                return given == server.token

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                server.requests.append(("GET", url.path, dict(self.headers)))
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if not self._authorised():
                    return self._reply(401, {"message": "Bad credentials"})
                if url.path.startswith("/gh/"):
                    head = query.get("head", "").split(":")[-1]
                    found = [p for p in server.pulls if p["kind"] == "gh" and p["head"] == head]
                    return self._reply(200, [{"html_url": p["url"]} for p in found])
                head = query.get("source_branch", "")
                found = [p for p in server.pulls if p["kind"] == "gl" and p["head"] == head]
                return self._reply(200, [{"web_url": p["url"]} for p in found])

            def do_POST(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(("POST", url.path, dict(self.headers)))
                if not self._authorised():
                    return self._reply(401, {"message": "Bad credentials"})
                if url.path.startswith("/gh/repos/") and url.path.endswith("/pulls"):
                    project = url.path.removeprefix("/gh/repos/").removesuffix("/pulls")
                    head, base = body["head"], body["base"]
                    if any(p["kind"] == "gh" and p["head"] == head for p in server.pulls):
                        return self._reply(422, {"message": "A pull request already exists"})
                    n = len(server.pulls) + 1
                    pull = {"kind": "gh", "project": project, "head": head, "base": base,
                            "title": body["title"], "body": body["body"],
                            "url": f"https://github.com/{project}/pull/{n}"}  # fmt: skip
                    server.pulls.append(pull)
                    return self._reply(201, {"html_url": pull["url"], "number": n})
                if url.path.startswith("/gl/projects/") and url.path.endswith("/merge_requests"):
                    project = unquote(
                        url.path.removeprefix("/gl/projects/").removesuffix("/merge_requests")
                    )
                    head = body["source_branch"]
                    if any(p["kind"] == "gl" and p["head"] == head for p in server.pulls):
                        return self._reply(409, {"message": ["Another open merge request exists"]})
                    n = len(server.pulls) + 1
                    pull = {"kind": "gl", "project": project, "head": head,
                            "base": body["target_branch"], "title": body["title"],
                            "body": body["description"],
                            "url": f"https://gitlab.com/{project}/-/merge_requests/{n}"}  # fmt: skip
                    server.pulls.append(pull)
                    return self._reply(201, {"web_url": pull["url"], "iid": n})
                return self._reply(404, {"message": "Not Found"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
