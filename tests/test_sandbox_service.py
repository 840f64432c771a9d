"""Service mode: the generated app served in its own network namespace, checked from there."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from activities.sandbox import SandboxLimits, ServiceError, serve_in_sandbox
from tests.support.sandbox_support import make_project, require_contained

pytest_plugins = ["tests.support.sandbox_fixtures"]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")

UVICORN = ["python", "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", "{port}"]


async def test_checker_reaches_the_service_and_nothing_else(tmp_path: Path) -> None:
    require_contained()
    project = make_project(tmp_path / "p")
    with socket.socket() as host_listener:
        host_listener.bind(("127.0.0.1", 0))
        host_listener.listen()
        host_listener.setblocking(False)
        host_port = host_listener.getsockname()[1]
        async with serve_in_sandbox(project, argv=UVICORN, port=8000) as service:
            assert service.base_url == "http://127.0.0.1:8000"
            assert "netns" in service.isolation and service.warnings == []
            code = (
                "import httpx, socket\n"
                f"print(httpx.get('{service.base_url}/health').json())\n"
                "try:\n"
                f"    socket.create_connection(('127.0.0.1', {host_port}), timeout=2)\n"
                "    print('PWNED host reached')\n"
                "except OSError as err:\n"
                "    print('host unreachable:', err.strerror)\n"
            )
            result = await service.run_in_netns([sys.executable, "-c", code])
            assert result.exit_code == 0, result.output
            assert "{'status': 'ok'}" in result.output
            assert "host unreachable" in result.output and "PWNED" not in result.output
        with pytest.raises(BlockingIOError):
            host_listener.accept()
    assert service.result is not None and 'GET /health HTTP/1.1" 200' in service.result.output


async def test_a_service_that_never_listens_is_a_clear_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (project / "app" / "main.py").write_text("raise SystemExit('broken app')\n")
    with pytest.raises(ServiceError, match="exited") as caught:
        async with serve_in_sandbox(
            project, argv=UVICORN, startup_timeout_s=20, limits=SandboxLimits(timeout_s=60)
        ):
            pytest.fail("must not start")
    assert caught.value.result is not None and "broken app" in caught.value.result.output
