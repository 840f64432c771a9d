"""Host-side orchestration of one sandboxed run: start the launcher, watch it, end it.

The worker decides everything in ``plan.py`` (which mounts, which uid, which limits) and
hands the plan to ``launcher.py`` as JSON; this module runs it: output, report, side
channel, timeout, kill, result. What the worker does afterwards touches nothing the
command could have written: in contained mode the command's files live on a tmpfs that
exists only in the run's mount namespace, and nothing is copied back. The only host
state a run creates is its pids cgroup (removed here, or by ``reaper.sweep`` after a
worker was killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from activities.sandbox import reaper
from activities.sandbox.cpu_slots import cpu_slot
from activities.sandbox.env_store import base_env
from activities.sandbox.models import CommandResult, ProjectEnv, SandboxLimits
from activities.sandbox.output import Collector, HeadTail
from activities.sandbox.plan import (
    ENV_BUILDER,
    LAUNCHER,
    RECORDER,
    Plan,
    capabilities,
    check_env_names,
    plan_run,
)
from telemetry.spans import SandboxSpan

__all__ = [
    "run_sandboxed",
    "run_with_channel",
    "start_run",
    "ChannelStream",
    "Running",
    "capabilities",
    "RECORDER",
    "ENV_BUILDER",
    "LAUNCHER",
]

T = TypeVar("T")
_DRAIN_TIMEOUT_S = 5.0


@functools.cache
def _swept() -> bool:
    reaper.sweep()
    return True


# --- running -----------------------------------------------------------------------------


class ChannelStream(io.RawIOBase):
    """The read end of the side channel (fd 3 in the command), readable from a thread.

    Reads wait with ``select`` so that ``stop`` ends them even if some stray process
    (possible only in the degraded mode) still holds the write end.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.stopped = threading.Event()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.stopped.is_set():
            if select.select([self.fd], [], [], 0.2)[0]:
                data = os.read(self.fd, len(buffer))
                buffer[: len(data)] = data
                return len(data)
        return 0

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


class Running:
    """One started launcher: its output, its report, its side channel."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.transport: asyncio.SubprocessTransport | None = None
        self.collector: Collector | None = None
        self.report: dict[str, Any] = {}
        self.ready: asyncio.Future[None] | None = None
        self.reader: asyncio.Task[None] | None = None
        self.channel_task: asyncio.Future[Any] | None = None
        self.channel_stream: ChannelStream | None = None
        self.started = 0.0
        self.duration = 0.0
        self.timed_out = False
        self.closed = False
        self.result: CommandResult | None = None
        self.span: SandboxSpan | None = None

    @property
    def pid(self) -> int | None:
        return self.transport.get_pid() if self.transport else None

    async def start(self, channel: Callable[[ChannelStream], Any] | None = None) -> None:
        loop = asyncio.get_running_loop()
        collector = Collector(HeadTail(self.plan.limits.output_limit_bytes), loop)
        self.collector = collector
        self.ready = loop.create_future()
        report_r, report_w = os.pipe()
        chan_r, chan_w = os.pipe() if channel is not None else (-1, -1)
        fds = tuple(fd for fd in (report_w, chan_w) if fd >= 0)
        config = {
            **self.plan.config,
            "report_fd": report_w,
            "records_fd": chan_w if chan_w >= 0 else None,
            "parent": os.getpid(),
        }
        self.span = SandboxSpan(
            self.plan.argv, timeout_s=self.plan.limits.timeout_s, network=self.plan.limits.network
        )
        try:
            self.started = time.monotonic()
            self.transport, _ = await loop.subprocess_exec(
                lambda: collector,
                sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(config),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True, pass_fds=fds, cwd="/", env={},
            )  # fmt: skip
        except BaseException as err:
            self.span.end(error=err)
            for fd in (report_r, chan_r):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            for fd in fds:
                os.close(fd)
        self.reader = asyncio.ensure_future(self._read_report(report_r))
        if channel is not None:
            self.channel_stream = ChannelStream(chan_r)
            self.channel_task = asyncio.ensure_future(
                asyncio.to_thread(channel, self.channel_stream)
            )

    async def _read_report(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0)
        )
        try:
            while line := await reader.readline():
                with contextlib.suppress(ValueError):
                    message = json.loads(line)
                    self.report.update(message)
                    started = "ready" in message or "error" in message
                    if started and self.ready is not None and not self.ready.done():
                        self.ready.set_result(None)
        finally:
            transport.close()
            if self.ready is not None and not self.ready.done():
                self.ready.set_result(None)

    async def wait(self, timeout: float) -> None:
        """Wait for the command to end, at most ``timeout`` seconds (then it is timed out)."""
        assert self.collector is not None
        try:
            await asyncio.wait_for(asyncio.shield(self.collector.exited), timeout=timeout)
        except TimeoutError:
            self.timed_out = True

    async def close(self) -> CommandResult:
        """Kill what is left, remove host state, and return the result (cancel-safe)."""
        if self.result is not None:
            return self.result
        if not self.closed:
            self.closed = True
            self.duration = time.monotonic() - self.started
            await asyncio.shield(asyncio.to_thread(self.plan.close, self.pid))
        assert self.collector is not None and self.transport is not None
        try:
            await asyncio.wait_for(asyncio.shield(self.collector.exited), _DRAIN_TIMEOUT_S)
            await asyncio.wait_for(asyncio.shield(self.collector.drained), _DRAIN_TIMEOUT_S)
            if self.reader is not None:
                await asyncio.wait_for(asyncio.shield(self.reader), _DRAIN_TIMEOUT_S)
        except TimeoutError:
            self.plan.warn("output still held open by a process outside the sandbox's reach")
        if self.channel_task is not None and self.channel_stream is not None:
            with contextlib.suppress(Exception):  # its outcome is read by the caller
                await asyncio.wait_for(asyncio.shield(self.channel_task), _DRAIN_TIMEOUT_S)
            self.channel_stream.stopped.set()
        self.result = self._result()
        if self.span is not None:
            self.span.end(self.result)
        return self.result

    def _result(self) -> CommandResult:
        assert self.collector is not None and self.transport is not None
        report = self.report
        for message in report.get("warnings", []):
            self.plan.warn(message)
        if error := report.get("error"):
            self.plan.warn(f"sandbox setup failed, command not run: {error}")
        if "exit" in report:
            exit_code = int(report["exit"])
        elif error or self.plan.contained:
            exit_code = 125 if error else -int(signal.SIGKILL)
        else:
            code = self.transport.get_returncode()
            exit_code = code if code is not None else -int(signal.SIGKILL)
        if self.timed_out:
            exit_code = -int(signal.SIGKILL)
        self.transport.close()
        text, truncated = self.collector.output.render()
        for real, name in sorted(self.plan.renames.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(real, name)
        if not report:
            self.plan.warn("the sandbox launcher did not report (killed early?); isolation unknown")
        return CommandResult(
            argv=list(self.plan.argv),
            exit_code=exit_code,
            timed_out=self.timed_out,
            duration_s=round(self.duration, 3),
            output=text,
            output_bytes=self.collector.output.total,
            truncated=truncated,
            isolation=self.plan.isolation + list(report.get("applied", [])),
            warnings=list(self.plan.warnings),
        )


def _check_args(argv: list[str], source: Path, env: dict[str, str] | None) -> Path:
    if not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError(f"argv must be a non-empty list of strings, got {argv!r}")
    source = Path(source)
    if not source.is_dir():
        raise ValueError(f"source {source} does not exist or is not a directory")
    check_env_names(env or {})
    return source.resolve()


async def start_run(
    argv: list[str],
    *,
    source: Path,
    limits: SandboxLimits | None = None,
    env: dict[str, str] | None = None,
    project_env: ProjectEnv | None = None,
    channel: Callable[[ChannelStream], Any] | None = None,
    writable_env: Path | None = None,
    wheelhouses: Sequence[Path] = (),
) -> Running:
    """Plan and start a run; the caller must ``close()`` the returned ``Running``."""
    source = _check_args(argv, source, env)
    await asyncio.to_thread(_swept)
    if project_env is None:
        project_env = await asyncio.to_thread(base_env)
    plan = await asyncio.to_thread(
        functools.partial(
            plan_run,
            argv,
            source=source,
            limits=limits or SandboxLimits(),
            env=env or {},
            project_env=project_env,
            writable_env=writable_env,
            wheelhouses=wheelhouses,
        )
    )
    running = Running(plan)
    try:
        await running.start(channel)
    except BaseException:
        await asyncio.shield(asyncio.to_thread(plan.close, None))
        raise
    return running


async def run_with_channel(
    argv: list[str],
    *,
    source: Path,
    channel: Callable[[ChannelStream], T] | None,
    limits: SandboxLimits | None = None,
    env: dict[str, str] | None = None,
    project_env: ProjectEnv | None = None,
    writable_env: Path | None = None,
    wheelhouses: Sequence[Path] = (),
) -> tuple[CommandResult, T | None]:
    """``run_sandboxed`` with a side channel: the command writes to fd 3, the worker
    reads it with ``channel`` (called in a thread, outside the sandbox's reach).

    The run holds one of the process's CPU slots (``cpu_slots``) from start to result;
    it waits for one first.

    Returns:
        The result, and what ``channel`` returned (None if it did not finish).
    """
    async with cpu_slot():
        running = await start_run(
            argv,
            source=source,
            limits=limits,
            env=env,
            project_env=project_env,
            channel=channel,
            writable_env=writable_env,
            wheelhouses=wheelhouses,
        )
        try:
            await running.wait(running.plan.limits.timeout_s)
        finally:
            result = await asyncio.shield(running.close())
    value = None
    if running.channel_task is not None and running.channel_task.done():
        if running.channel_task.exception() is None:
            value = running.channel_task.result()
        else:
            result.warnings.append(f"side channel failed: {running.channel_task.exception()}")
    return result, value


async def run_sandboxed(
    argv: list[str],
    *,
    source: Path,
    limits: SandboxLimits | None = None,
    env: dict[str, str] | None = None,
    project_env: ProjectEnv | None = None,
) -> CommandResult:
    """Run ``argv`` in the sandbox on a private copy of ``source``.

    Args:
        argv: The command, as seen inside the sandbox: ``python`` is the project
            environment's interpreter (``/venv/bin/python``), relative paths are relative
            to ``/workspace``.
        source: A directory the worker owns (a checkout). It is copied, without
            ``.git``, to ``/workspace``; nothing is ever copied back.
        limits: Resource limits; defaults to ``SandboxLimits()``.
        env: Extra environment variables. Names that look like credentials are refused.
        project_env: The environment mounted read-only at ``/venv``; defaults to the
            base environment (the worker's own packages).

    Returns:
        The result, including what isolation was applied and any fallback warnings.

    Raises:
        ValueError: For bad arguments (empty argv, missing source, refused env name).
    """
    result, _ = await run_with_channel(
        argv,
        source=source,
        channel=None,
        limits=limits,
        env=env,
        project_env=project_env,
    )
    return result
