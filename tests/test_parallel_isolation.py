"""Parallel [P] tasks: each task's run_tests sees only its own worktree, never a sibling's
half-written files, and the model is told it works alongside the others."""

from __future__ import annotations

import asyncio
from pathlib import Path

from activities.models import ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolResultPart
from activities.phases.implement import ImplementPhase
from activities.services import Services
from activities.workspace import Workspaces
from contract import Usage
from tests.support.repos import phase_input, request, user_repo

TASKS_MD = (
    "# Tasks\n\n- [ ] T001 [P] Check a in tests/test_a.py\n"
    "- [ ] T002 [P] Check b in tests/test_b.py\n"
)
WAIT_S = 60


class Coordinated:
    """A fake model (test double) playing both tasks, synchronised by events: T001 leaves a
    half-written test file in its tree while T002 runs the whole suite in its own."""

    model_id = "fake:parallel"

    def __init__(self) -> None:
        self.a_written = asyncio.Event()
        self.b_ran = asyncio.Event()
        self.first_messages: dict[str, str] = {}
        self.b_tests = ""

    async def request(self, req: ModelRequest) -> ModelResponse:
        task = req.origin.task_id or ""
        turn = sum(1 for m in req.messages if m.role == "assistant")
        if turn == 0:
            first = req.messages[0].parts[0]
            assert isinstance(first, TextPart)
            self.first_messages[task] = first.text
        calls = await (self._a(turn) if task == "T001" else self._b(turn, req))
        return ModelResponse(
            parts=[
                ToolCallPart(id=f"{task}-{turn}-{i}", name=n, arguments=a)
                for i, (n, a) in enumerate(calls)
            ],
            usage=Usage(model_calls=1),
        )

    async def _a(self, turn: int) -> list[tuple[str, dict[str, object]]]:
        if turn == 0:
            return [("create_file", {"path": "tests/test_a.py", "content": "def test_a(:\n"})]
        if turn == 1:
            self.a_written.set()  # the broken file is on T001's disk now
            await asyncio.wait_for(self.b_ran.wait(), WAIT_S)
            good = "def test_a():\n    assert 1 + 1 == 2\n"
            return [("create_file", {"path": "tests/test_a.py", "content": good})]
        return [("finish", {"summary": "test_a"})]

    async def _b(self, turn: int, req: ModelRequest) -> list[tuple[str, dict[str, object]]]:
        if turn == 0:
            good = "def test_b():\n    assert 2 * 2 == 4\n"
            return [("create_file", {"path": "tests/test_b.py", "content": good})]
        if turn == 1:
            await asyncio.wait_for(self.a_written.wait(), WAIT_S)
            return [("run_tests", {})]
        [result] = [p for p in req.messages[-1].parts if isinstance(p, ToolResultPart)]
        self.b_tests = result.content
        self.b_ran.set()
        return [("finish", {"summary": "test_b"})]


async def test_parallel_tasks_run_tests_on_their_own_worktree(tmp_path: Path) -> None:
    repo = user_repo(tmp_path / "repo")
    model = Coordinated()
    services = Services(models=lambda _id: model, workspaces=Workspaces(tmp_path / "scratch"))  # type: ignore[arg-type]
    info = await services.workspaces.prepare(request(repo), "wf-1")
    tasks_inp = phase_input(info, info.base_commit, phase="tasks")
    async with services.workspaces.checkout(tasks_inp) as co:
        co.write(f"{info.feature_dir}/tasks.md", TASKS_MD)
        base = await services.workspaces.publish(co, tasks_inp, "tasks")

    def inp(task: str):  # type: ignore[no-untyped-def]
        return phase_input(
            info, base, phase="implement", task_id=task, worktree=True, model="scripted:x"
        )

    phase = ImplementPhase(services)
    a, b = await asyncio.gather(phase.run(inp("T001")), phase.run(inp("T002")))
    # T002 ran the whole suite while T001's tree held a file that does not even parse:
    # it saw its own test only.
    assert model.b_tests.startswith("Backforge verdict: PASS (1 passed, 0 failed, 0 errors")
    assert "test_a.py" not in model.b_tests and "collected 1 item" in model.b_tests
    assert a.commit != b.commit
    # Each was told who works alongside it, and on what.
    assert "T002 (tests/test_b.py)" in model.first_messages["T001"]
    assert "T001 (tests/test_a.py)" in model.first_messages["T002"]
    assert "each in its own copy of the branch" in model.first_messages["T001"]
