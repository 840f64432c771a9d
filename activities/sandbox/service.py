"""A long-running command in the sandbox (the generated service), and checks against it.

``serve_in_sandbox`` starts e.g. uvicorn on ``127.0.0.1:<port>`` inside the sandbox's own
network namespace, waits until the port accepts connections, and yields a ``Service``
whose ``run_in_netns`` runs a worker-side process (the worker's interpreter and
environment, not the sandbox's uid, no ``pivot_root``) joined only to that network
namespace: ``http://127.0.0.1:<port>`` reaches the service, and nothing else is
reachable from there. Without namespaces the service listens on a free port of the
host's loopback and the checker runs directly (both listed in ``warnings``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from activities.sandbox.host import LAUNCHER, Running, capabilities, start_run
from activities.sandbox.models import CommandResult, ProjectEnv, SandboxLimits
from activities.sandbox.output import Collector, HeadTail

__all__ = ["Service", "ServiceError", "serve_in_sandbox"]

_READY_PROBE = """
import socket, sys, time
port, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
"""


class ServiceError(Exception):
    """The service did not start listening; ``result`` holds its output."""

    def __init__(self, message: str, result: CommandResult | None) -> None:
        super().__init__(message)
        self.result = result


class Service:
    """A running sandboxed service and the way to reach it."""

    def __init__(self, running: Running, port: int, netns_fd: int | None) -> None:
        self._running = running
        self._netns_fd = netns_fd
        self.port = port
        self.result: CommandResult | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def warnings(self) -> list[str]:
        return self._running.plan.warnings

    @property
    def isolation(self) -> list[str]:
        return self._running.plan.isolation + list(self._running.report.get("applied", []))

    def output(self) -> str:
        """The service's output so far (head and tail)."""
        assert self._running.collector is not None
        return self._running.collector.output.render()[0]

    @property
    def exited(self) -> bool:
        assert self._running.collector is not None
        return self._running.collector.exited.done()

    async def run_in_netns(
        self,
        argv: list[str],
        env: dict[str, str] | None = None,
        *,
        timeout_s: float = 120.0,
        output_limit_bytes: int = 64_000,
        cwd: Path | None = None,
    ) -> CommandResult:
        """Run a worker-side command inside the service's network namespace only.

        Args:
            argv: The command (resolved on the worker's PATH).
            env: Added to the worker's own environment.
            timeout_s: Killed (SIGKILL to its process group) after this long.
            output_limit_bytes: Head and tail of stdout+stderr kept.
            cwd: Working directory (default: the worker's).
        """
        if not argv:
            raise ValueError("argv must be a non-empty list of strings")
        full_env = {**os.environ, **(env or {})}
        warnings: list[str] = []
        if self._netns_fd is None:
            warnings.append("no network namespace: the checker runs directly on the host")
            launcher: list[str] = list(argv)
            fds: tuple[int, ...] = ()
        else:
            config = {
                "mode": "join", "netns_fd": self._netns_fd, "report_fd": -1,
                "parent": os.getpid(), "argv": list(argv), "env": full_env,
                "cwd": str(cwd or Path.cwd()),
            }  # fmt: skip
            launcher = [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(config)]
            fds = (self._netns_fd,)
        loop = asyncio.get_running_loop()
        collector = Collector(HeadTail(output_limit_bytes), loop)
        started = time.monotonic()
        transport, _ = await loop.subprocess_exec(
            lambda: collector, *launcher,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, pass_fds=fds, env=full_env, cwd=str(cwd or Path.cwd()),
        )  # fmt: skip
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(collector.exited), timeout_s)
        except TimeoutError:
            timed_out = True
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(transport.get_pid(), signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(collector.exited), 5)
            await asyncio.wait_for(asyncio.shield(collector.drained), 5)
        code = transport.get_returncode()
        transport.close()
        text, truncated = collector.output.render()
        return CommandResult(
            argv=list(argv),
            exit_code=-int(signal.SIGKILL) if timed_out or code is None else code,
            timed_out=timed_out,
            duration_s=round(time.monotonic() - started, 3),
            output=text,
            output_bytes=collector.output.total,
            truncated=truncated,
            isolation=["joined-netns"] if self._netns_fd is not None else [],
            warnings=warnings,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_in_sandbox(
    source: Path,
    *,
    argv: list[str],
    project_env: ProjectEnv | None = None,
    port: int = 8000,
    limits: SandboxLimits | None = None,
    env: dict[str, str] | None = None,
    startup_timeout_s: float = 30.0,
) -> AsyncIterator[Service]:
    """Run ``argv`` (e.g. uvicorn) in the sandbox until the block ends.

    Args:
        source: The checkout to serve (copied to ``/workspace``, as for ``run_sandboxed``).
        argv: The command; ``{port}`` in any argument is replaced by the port.
        project_env: Mounted at ``/venv``; default the base environment.
        port: The port inside the sandbox's network namespace (without namespaces a free
            host port is used instead; read ``service.port``).
        limits: ``timeout_s`` bounds the service's whole lifetime.
        env: Extra environment variables for the service (credentials refused).
        startup_timeout_s: How long the port may take to accept connections.

    Raises:
        ServiceError: The service exited or did not listen in time.
        ValueError: For bad arguments.
    """
    limits = limits or SandboxLimits()
    contained = capabilities()["contained"] and not limits.network
    if not contained:
        port = await asyncio.to_thread(_free_port)
    command = [a.replace("{port}", str(port)) for a in argv]
    running = await start_run(
        command, source=source, limits=limits, env=env, project_env=project_env
    )
    netns_fd: int | None = None
    service: Service | None = None
    lifetime: asyncio.Task[None] | None = None
    try:
        assert running.ready is not None
        await asyncio.wait_for(asyncio.shield(running.ready), startup_timeout_s)
        if contained and "netns" in running.report.get("applied", []):
            netns_fd = os.open(f"/proc/{running.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        else:
            running.plan.warn("the service runs on the host's loopback (no network namespace)")
        service = Service(running, port, netns_fd)
        lifetime = asyncio.ensure_future(running.wait(limits.timeout_s))
        probe = asyncio.ensure_future(
            service.run_in_netns(
                [sys.executable, "-I", "-c", _READY_PROBE, str(port), str(startup_timeout_s)],
                timeout_s=startup_timeout_s + 5,
            )
        )
        assert running.collector is not None
        exited: asyncio.Future[Any] = running.collector.exited
        await asyncio.wait([probe, exited], return_when=asyncio.FIRST_COMPLETED)
        if not probe.done() or probe.result().exit_code != 0:
            probe.cancel()
            why = "exited" if running.collector.exited.done() else "did not accept connections"
            result = await asyncio.shield(running.close())
            raise ServiceError(
                f"the service {why} on port {port} within {startup_timeout_s:.0f}s", result
            )
        yield service
    finally:
        if lifetime is not None:
            lifetime.cancel()
        result = await asyncio.shield(running.close())
        if service is not None:
            service.result = result
        if netns_fd is not None:
            os.close(netns_fd)
