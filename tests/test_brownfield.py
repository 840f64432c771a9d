"""Brownfield: summarize maps an existing service, later phases read the map, and the
feature extends the service; on the way, the environment block, the tools (run_tests
under ``addopts = "-q"``, api_docs, run_command), a long task line, a test-first task."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.models import ModelRequest, ToolResultPart
from activities.phases.summarize import SummarizePhase
from activities.services import Services
from activities.workspace import Workspaces
from contract import PhaseOutcome
from tests.support.brownfield import Recorder, run_brownfield
from tests.support.git import git
from tests.support.repos import phase_input, request


@pytest.fixture(scope="module")
async def brownfield(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, PhaseOutcome], Recorder]:
    return await run_brownfield(tmp_path_factory.mktemp("brownfield"))


def results(requests: list[ModelRequest], tool: str) -> list[ToolResultPart]:
    """Every result of ``tool`` the model was sent in a conversation (its last request
    carries the whole conversation)."""
    return [
        p
        for m in requests[-1].messages
        for p in m.parts
        if isinstance(p, ToolResultPart) and p.name == tool
    ]


async def test_summarize_maps_the_service_and_later_phases_read_the_map(brownfield) -> None:  # type: ignore[no-untyped-def]
    _, outcomes, rec = brownfield
    assert outcomes["summarize"].usage.model_calls == 4
    assert ".specify/memory/codebase.md" in outcomes["summarize"].artifacts
    for key in ("constitution#1", "specify#1", "plan#1", "tasks#1"):
        assert '<document path=".specify/memory/codebase.md">' in rec.requests[key][0].context, key
    # Implementation gets the map as an outline, and the environment block names it.
    first = rec.requests["implement/T002#1"][0]
    assert "`.specify/memory/codebase.md`" in first.context
    assert "the map of the existing code is `.specify/memory/codebase.md`" in first.system


async def test_every_phase_gets_the_environment_block(brownfield) -> None:  # type: ignore[no-untyped-def]
    _, _, rec = brownfield
    for key, requests in rec.requests.items():
        system = requests[0].system
        assert "## Environment" in system and "- Python 3." in system, key
        assert "Not installed:" in system and "email-validator" in system, key
        assert "- Declared by the project: fastapi>=0.100" in system, key  # as written
        assert "- Installed: fastapi " in system, key  # the declared package's version first
        assert "Project Structure says (default `app/`, `tests/`)" in system, key  # where files go
    implement = rec.requests["implement/T002#1"][0].system
    assert "`run_tests`: `python -m pytest -p no:cacheprovider" in implement
    assert "`run_command`:" in implement and "`api_docs`:" in implement
    # Phases without sandboxed tools do not advertise them.
    assert "`run_tests`" not in rec.requests["specify#1"][0].system


async def test_run_tests_counts_come_from_backforge_under_addopts_q(brownfield) -> None:  # type: ignore[no-untyped-def]
    _, _, rec = brownfield
    [run] = results(rec.requests["summarize#1"], "run_tests")
    # With addopts = "-q" pytest prints no summary line; the counts are Backforge's own.
    assert run.content.startswith("Backforge verdict: PASS (2 passed, 0 failed, 0 errors")


async def test_docs_and_command_tools_answer_from_the_environment(brownfield) -> None:  # type: ignore[no-untyped-def]
    _, _, rec = brownfield
    lookup, search = results(rec.requests["summarize#1"], "api_docs")
    assert not lookup.is_error and "class starlette.testclient.TestClient" in lookup.content
    assert "TestClient.__init__(app: ASGIApp" in lookup.content
    assert "fastapi.applications.FastAPI.dependency_overrides" in search.content
    [command] = results(rec.requests["summarize#1"], "run_command")
    assert command.content.startswith("exit code 0")
    assert "201 [{'name': 'pen', 'id': 1}]" in command.content


async def test_the_whole_task_line_and_the_test_first_convention(brownfield) -> None:  # type: ignore[no-untyped-def]
    _, outcomes, rec = brownfield
    line = next(t for t in outcomes["tasks"].tasks if t.id == "T002")
    assert line.title.endswith("…") and len(line.title) <= 160  # cut for display only
    message = rec.requests["implement/T002#1"][0].messages[0].parts[0].text  # type: ignore[union-attr]
    assert (
        "keeping every existing response field unchanged for clients that send no tags" in message
    )
    assert "- **FR-003** [INFERRED]: An item carries at most five tags." in message
    assert "GET /items" in message and "POST /items" in message  # contract operations
    first = rec.requests["implement/T001#1"][0].messages[0].parts[0].text  # type: ignore[union-attr]
    assert "This is a test-first task" in first and "T002 lands" in first


async def test_a_test_first_task_finishes_red_and_the_feature_extends_the_service(
    brownfield,
) -> None:  # type: ignore[no-untyped-def]
    repo, outcomes, rec = brownfield
    # T001's finish was accepted at the first call, with its tests red as expected.
    assert len(rec.requests["implement/T001#1"]) == 2
    assert outcomes["test"].test_report is not None and outcomes["test"].test_report.ok
    assert outcomes["test"].test_report.passed == 5
    head = outcomes["analyze"].commit
    files = git(repo, "ls-tree", "-r", "--name-only", head).split()
    assert sorted(f for f in files if f.startswith("app/")) == [
        "app/__init__.py",
        "app/items.py",
        "app/main.py",
    ]
    assert "tags: list[str]" in git(repo, "show", f"{head}:app/items.py")


async def test_summarize_calls_no_model_on_a_repository_without_code(tmp_path: Path) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# Nothing yet\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-q", "-m", "readme")

    def no_model(model_id: str):  # type: ignore[no-untyped-def]
        raise AssertionError("summarize must not call a model on a repository without code")

    services = Services(models=no_model, workspaces=Workspaces(tmp_path / "scratch"))  # type: ignore[arg-type]
    info = await services.workspaces.prepare(request(repo), "wf-empty")
    inp = phase_input(info, info.base_commit, phase="summarize", model="scripted:x")
    outcome = await SummarizePhase(services).run(inp)
    assert outcome.summary.startswith("The repository holds no code yet")
    assert (
        git(repo, "log", "-1", "--format=%s", info.branch) == "summarize: no existing code to map"
    )
    assert "Backforge-Phase: summarize" in git(repo, "log", "-1", "--format=%B", info.branch)
