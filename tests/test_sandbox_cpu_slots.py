"""Sandboxed runs wait for one of the process's CPU slots (activities/sandbox/cpu_slots.py)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import activities.sandbox.host as host
from activities.sandbox import cpu_slots, run_sandboxed, set_cpu_slots
from activities.sandbox.cpu_slots import cpu_slot

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")


@pytest.fixture
def restore_size() -> Iterator[None]:
    before = cpu_slots()
    yield
    set_cpu_slots(before)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts runs started, and the most running at once."""
    seen = {"started": 0, "running": 0, "most": 0}
    real_start, real_close = host.start_run, host.Running.close

    async def start_run(*args: Any, **kwargs: Any) -> host.Running:
        seen["started"] += 1
        seen["running"] += 1
        seen["most"] = max(seen["most"], seen["running"])
        return await real_start(*args, **kwargs)

    async def close(self: host.Running) -> Any:
        if self.result is None:
            seen["running"] -= 1
        return await real_close(self)

    monkeypatch.setattr(host, "start_run", start_run)
    monkeypatch.setattr(host.Running, "close", close)
    return seen


async def test_a_run_starts_only_when_a_cpu_slot_is_free(
    tmp_path: Path, restore_size: None, started: dict[str, int]
) -> None:
    set_cpu_slots(1)
    async with cpu_slot():  # another run holds the only slot
        run = asyncio.create_task(run_sandboxed(["python", "-c", "pass"], source=tmp_path))
        for _ in range(10):  # let the task run as far as it can
            await asyncio.sleep(0)
        assert started["started"] == 0
        assert not run.done()
    result = await run
    assert started["started"] == 1
    assert result.exit_code == 0, result.output


async def test_concurrent_runs_never_exceed_the_slots(
    tmp_path: Path, restore_size: None, started: dict[str, int]
) -> None:
    set_cpu_slots(2)
    results = await asyncio.gather(
        *(run_sandboxed(["python", "-c", "print(1)"], source=tmp_path) for _ in range(5))
    )
    assert [r.exit_code for r in results] == [0] * 5
    assert started["started"] == 5
    assert started["most"] == 2


def test_slots_are_at_least_one(restore_size: None) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        set_cpu_slots(0)


async def test_the_worker_sizes_the_cpu_slots_from_its_sandbox_slots(
    ts_env: Any, tmp_path: Path, restore_size: None
) -> None:
    from activities.services import Services
    from activities.workspace import Workspaces
    from worker import build_worker, default_sandbox_slots

    def built(**slots: int) -> int:
        services = Services(workspaces=Workspaces(tmp_path / "scratch"))
        build_worker(
            ts_env.client,
            task_queue=f"cpu-slots-{uuid.uuid4().hex[:8]}",
            services=services,
            **slots,
        )
        services.workspaces.release()
        return cpu_slots()

    assert built(sandbox_slots=3) == 3
    assert built(sandbox_slots=0, activity_slots=4) == default_sandbox_slots()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--sandbox-slots", "-1"], {}, "--sandbox-slots must be 0 or more"),
        ([], {"BACKFORGE_SANDBOX_SLOTS": "two"}, "--sandbox-slots: invalid int value: 'two'"),
        ([], {"BACKFORGE_ACTIVITY_SLOTS": "-3"}, "--activity-slots must be 0 or more"),
    ],
)
def test_bad_slot_settings_are_one_line_errors(
    args: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import worker

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        worker.main(args)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
