"""The validate phase: the branch's service served in the sandbox, checked from outside.

A forced-green copy of the demo service (every route removed, a conftest hook that
rewrites failures to passes) must fail Backforge's own test verdict and be blocked by
validation: it can never be delivered as green.
"""

from __future__ import annotations

from pathlib import Path

from activities.phases.testing import TestPhase
from activities.phases.validate import ValidatePhase
from activities.services import Services
from activities.workspace import Workspaces
from contract import PhaseInput, WorkspaceInfo
from tests.support.git import git, show
from tests.support.repos import phase_input, request
from tests.support.validation_demo import DEMO_BRANCH, build_demo_service, force_green


async def feature_at(tmp_path: Path, *, forced: bool) -> tuple[Path, Services, WorkspaceInfo, str]:
    repo = tmp_path / "svc"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# svc\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-q", "-m", "init")
    services = Services(workspaces=Workspaces(tmp_path / "scratch"))
    info = await services.workspaces.prepare(
        request(repo, "Build a bookmarks API with tags and per-user collections"), "wf-1"
    )
    assert info.branch == DEMO_BRANCH
    inp = phase_input(info, info.base_commit, phase="implement", task_id="T001")
    async with services.workspaces.checkout(inp) as co:
        files = build_demo_service(co.root)
        if forced:
            force_green(files)
        head = await services.workspaces.publish(co, inp, "the demo service")
    return repo, services, info, head


def step(info: WorkspaceInfo, head: str, phase: str) -> PhaseInput:
    return phase_input(info, head, phase=phase)


async def test_the_demo_service_passes_validation(tmp_path: Path) -> None:
    repo, services, info, head = await feature_at(tmp_path, forced=False)
    outcome = await ValidatePhase(services).run(step(info, head, "validate"))
    v = outcome.validation
    assert v is not None and v.passed and v.blocking == 0, v
    assert v.operations_checked == v.operations_total >= 10
    text = show(repo, info.branch, f"{info.feature_dir}/validation.md")
    assert "## Confidence" in text and "## What was verified" in text


async def test_a_forced_green_service_fails_the_tests_and_is_blocked_by_validation(
    tmp_path: Path,
) -> None:
    repo, services, info, head = await feature_at(tmp_path, forced=True)
    tested = await TestPhase(services).run(step(info, head, "test"))
    report = tested.test_report
    assert report is not None and not report.ok  # the hook's "passes" are not believed
    assert report.problems, report
    validated = await ValidatePhase(services).run(step(info, tested.commit, "validate"))
    v = validated.validation
    assert v is not None and not v.passed and v.blocking >= 5, v
    text = show(repo, info.branch, f"{info.feature_dir}/validation.md")
    assert "curl" in text  # findings come with reproducible requests


async def test_a_contract_without_operations_has_nothing_to_validate(tmp_path: Path) -> None:
    repo, services, info, head = await feature_at(tmp_path, forced=False)
    inp = phase_input(info, head, phase="plan")
    async with services.workspaces.checkout(inp) as co:
        co.write(f"{info.feature_dir}/contracts/openapi.yaml", "openapi: 3.1.0\n")
        head = await services.workspaces.publish(co, inp, "no API")
    outcome = await ValidatePhase(services).run(step(info, head, "validate"))
    assert outcome.validation is not None and outcome.validation.passed
    assert outcome.validation.operations_total == 0
    assert "not applicable" in show(repo, info.branch, f"{info.feature_dir}/validation.md")
