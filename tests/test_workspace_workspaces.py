"""Phase attempts: a fresh checkout each, commits published with fencing, records kept."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from activities.models import CallOrigin, Message, ModelRequest, ModelResponse, RecordingModel
from activities.models.base import TextPart
from activities.workspace import BranchMoved, WorkspaceError, Workspaces
from contract import Usage, WorkspaceInfo
from tests.support.git import GitProcesses, git
from tests.support.repos import phase_input, request, snapshot, user_repo, workspaces


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return user_repo(tmp_path / "repo")


@pytest.fixture
async def feature(repo: Path, tmp_path: Path) -> WorkspaceInfo:
    return await workspaces(tmp_path, "prep").prepare(request(repo), "wf-1")


async def commit_file(
    ws: Workspaces, info: WorkspaceInfo, base: str, name: str, *, attempt: int = 1, **kw: object
) -> str:
    inp = phase_input(info, base, **kw)
    async with ws.checkout(inp, attempt=attempt) as co:
        co.write(name, f"{name} from attempt {attempt}\n")
        return await ws.publish(co, inp, f"add {name}", attempt=attempt)


async def test_an_attempt_commits_on_the_branch_and_leaves_the_checkout_alone(
    repo: Path, tmp_path: Path, feature: WorkspaceInfo
) -> None:
    (repo / "mine.txt").write_text("the user keeps working\n")
    before = snapshot(repo)
    ws = workspaces(tmp_path)
    sha = await commit_file(ws, feature, feature.base_commit, "plan.md")
    assert git(repo, "rev-parse", feature.branch) == sha
    assert git(repo, "show", f"{sha}:plan.md") == "plan.md from attempt 1"
    assert git(repo, "ls-tree", "--name-only", sha).splitlines() == [
        ".gitignore",
        "app.py",
        "plan.md",
    ]
    trailers = git(repo, "log", "-1", "--format=%(trailers)", sha).splitlines()
    assert trailers == [
        "Backforge-Workflow: wf-1",
        "Backforge-Phase: plan",
        "Backforge-Run: plan-1",
        "Backforge-Attempt: 1",
    ]
    after = snapshot(repo)
    assert {k: v for k, v in after.items() if k != "branches"} == {
        k: v for k, v in before.items() if k != "branches"
    }
    assert git(repo, "rev-parse", "main") == before["head_commit"]  # main did not move
    assert list((ws.scratch / "attempts").iterdir()) == []  # the worktree is gone


async def test_a_later_attempt_replaces_an_earlier_attempts_commit(
    repo: Path, tmp_path: Path, feature: WorkspaceInfo
) -> None:
    base = feature.base_commit
    first = await commit_file(workspaces(tmp_path, "a"), feature, base, "plan.md", attempt=1)
    second = await commit_file(workspaces(tmp_path, "b"), feature, base, "plan.md", attempt=2)
    assert git(repo, "rev-parse", feature.branch) == second != first


async def test_a_stale_attempt_cannot_move_the_branch_back(
    repo: Path, tmp_path: Path, feature: WorkspaceInfo
) -> None:
    base = feature.base_commit
    current = await commit_file(workspaces(tmp_path, "a"), feature, base, "plan.md", attempt=2)
    with pytest.raises(BranchMoved, match="someone else moved it"):
        await commit_file(workspaces(tmp_path, "b"), feature, base, "plan.md", attempt=1)
    assert git(repo, "rev-parse", feature.branch) == current
    # Nor can it once the next phase has moved on.
    nxt = await commit_file(
        workspaces(tmp_path, "a"), feature, current, "tasks.md", phase="tasks", attempt=1
    )
    with pytest.raises(BranchMoved):
        await commit_file(workspaces(tmp_path, "c"), feature, base, "plan.md", attempt=3)
    assert git(repo, "rev-parse", feature.branch) == nxt


async def test_someone_elses_commit_on_the_branch_is_refused(
    repo: Path, tmp_path: Path, feature: WorkspaceInfo
) -> None:
    git(repo, "checkout", "-q", feature.branch)
    (repo / "theirs.py").write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-q", "-m", "theirs")
    theirs = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    with pytest.raises(BranchMoved, match=r"Move it back to .* and retry, or abort"):
        await commit_file(workspaces(tmp_path), feature, feature.base_commit, "plan.md")
    assert git(repo, "rev-parse", feature.branch) == theirs


async def test_the_same_date_gives_the_same_commit_on_every_attempt(
    repo: Path, tmp_path: Path, feature: WorkspaceInfo
) -> None:
    date = datetime(2026, 11, 30, 12, tzinfo=UTC)
    shas = []
    for name in ("a", "b"):
        ws = workspaces(tmp_path, name)
        inp = phase_input(feature, feature.base_commit)
        async with ws.checkout(inp, attempt=1) as co:
            co.write("plan.md", "same\n")
            shas.append(await ws.publish(co, inp, "plan", attempt=1, date=date))
    assert shas[0] == shas[1] == git(repo, "rev-parse", feature.branch)


async def test_a_parallel_task_publishes_to_its_own_ref_not_the_branch(
    repo: Path, tmp_path: Path, feature: WorkspaceInfo
) -> None:
    ws = workspaces(tmp_path)
    sha = await commit_file(
        ws, feature, feature.base_commit, "a.py", phase="implement", task_id="T001", worktree=True
    )
    assert git(repo, "rev-parse", feature.branch) == feature.base_commit
    refs = git(repo, "for-each-ref", "--format=%(objectname) %(refname)", "refs/backforge/tasks/")
    assert refs.split()[0] == sha and refs.split()[1].endswith("/implement-T001-1/001")


async def test_reset_puts_the_branch_back_at_the_last_good_commit(
    repo: Path, tmp_path: Path, feature: WorkspaceInfo
) -> None:
    ws = workspaces(tmp_path)
    await commit_file(ws, feature, feature.base_commit, "plan.md")
    assert await ws.reset(str(repo), feature.branch, feature.base_commit) == feature.base_commit
    assert git(repo, "rev-parse", feature.branch) == feature.base_commit


class Counting:
    """A fake model (test double) answering ``n`` for its n-th call."""

    model_id = "fake:counting"

    def __init__(self) -> None:
        self.calls = 0

    async def request(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        return ModelResponse(
            parts=[TextPart(text=str(self.calls))],
            usage=Usage(input_tokens=10, output_tokens=1, model_calls=1, cost_usd=0.5),
        )


def ask(n: int) -> ModelRequest:
    return ModelRequest(
        system="s",
        messages=[Message.user(f"q{i}") for i in range(n)],
        origin=CallOrigin(phase="plan"),
    )


async def test_run_records_survive_a_lost_worker_and_are_paid_once(
    tmp_path: Path, feature: WorkspaceInfo
) -> None:
    inp = phase_input(feature, feature.base_commit)
    lost = Counting()
    first = RecordingModel(lost, await workspaces(tmp_path, "lost").run_store(inp, attempt=1))
    assert [(await first.request(ask(n))).text for n in (1, 2)] == ["1", "2"]
    await first.store.started(3, ask(3).fingerprint())  # the third call was in flight: lost

    other = Counting()  # another worker, its own scratch: everything comes from the remote
    store = await workspaces(tmp_path, "other").run_store(inp, attempt=2)
    assert store.paid_earlier.model_copy(update={"model_seconds": 0}) == Usage(
        input_tokens=20, output_tokens=2, model_calls=3, lost_calls=1, cost_usd=1.0
    )
    second = RecordingModel(other, store)
    replies = [(await second.request(ask(n))).text for n in (1, 2, 3)]
    assert replies == ["1", "2", "1"] and other.calls == 1  # two replayed, the lost one re-sent
    assert second.replayed_calls == 2 and second.live_calls == 1

    third = await workspaces(tmp_path, "third").run_store(inp, attempt=3)
    assert third.paid_earlier.model_calls == 4 and third.paid_earlier.lost_calls == 1


def test_a_scratch_directory_has_one_owner_until_it_is_released(tmp_path: Path) -> None:
    first, second = Workspaces(tmp_path / "scratch"), Workspaces(tmp_path / "scratch")
    first.claim()
    with pytest.raises(WorkspaceError, match="give each worker its own --scratch"):
        second.claim()
    first.release()  # a stopped worker gives it back
    second.claim()
    second.release()


async def test_a_step_with_nothing_to_change_commits_without_a_checkout(
    repo: Path, tmp_path: Path, feature: WorkspaceInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspaces(tmp_path)
    inp = phase_input(feature, feature.base_commit, phase="summarize")
    assert sorted(await ws.tracked_files(feature, feature.base_commit)) == [".gitignore", "app.py"]
    processes = GitProcesses(tmp_path, monkeypatch)
    date = datetime(2026, 11, 30, 12, tzinfo=UTC)
    sha = await ws.publish_empty(inp, "summarize: nothing to map", body="Nothing.", date=date)
    assert processes.commands() == ["commit-tree", "push"]
    assert git(repo, "rev-parse", feature.branch) == sha
    assert git(repo, "rev-parse", f"{sha}^") == feature.base_commit
    assert git(repo, "rev-parse", f"{sha}^{{tree}}") == git(
        repo, "rev-parse", f"{feature.base_commit}^{{tree}}"
    )
    assert git(repo, "log", "-1", "--format=%s%n%n%b", sha).splitlines() == [
        "summarize: nothing to map",
        "",
        "Nothing.",
        "",
        "Backforge-Workflow: wf-1",
        "Backforge-Phase: summarize",
        "Backforge-Run: summarize-1",
        "Backforge-Attempt: 1",
    ]
    # Another worker (its own cache, without the base yet) makes the same commit again...
    other = workspaces(tmp_path, "other")
    again = await other.publish_empty(inp, "summarize: nothing to map", body="Nothing.", date=date)
    assert again == sha and git(repo, "rev-parse", feature.branch) == sha
    # ... and a later attempt replaces it, on the same base.
    later = await other.publish_empty(inp, "summarize: nothing to map", attempt=2, date=date)
    assert git(repo, "rev-parse", feature.branch) == later != sha
    assert git(repo, "rev-parse", f"{later}^") == feature.base_commit
    assert not (ws.scratch / "attempts").exists()


async def test_record_blobs_are_git_objects_written_without_git(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = await workspaces(tmp_path).cache(str(repo)).ready()
    processes = GitProcesses(tmp_path, monkeypatch)
    data = b'{"seq": 1}\n' + bytes(range(256))
    sha = await cache.write_blob(data)
    assert await cache.write_blob(data) == sha  # the same content is the same object
    assert processes.commands() == []
    assert git(cache.path, "hash-object", "--stdin", "-t", "blob", input_bytes=data) == sha
    assert (await cache.read_blobs([sha]))[sha] == data
    assert git(cache.path, "fsck", "--no-dangling", "--strict") == ""


async def test_a_phase_step_is_one_checkout_one_commit_and_one_push(
    repo: Path, tmp_path: Path, feature: WorkspaceInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspaces(tmp_path)
    await ws.cache(str(repo)).ready()
    await commit_file(ws, feature, feature.base_commit, "spec.md")  # the cache has the base
    processes = GitProcesses(tmp_path, monkeypatch)
    head = git(repo, "rev-parse", feature.branch)
    processes.clear()
    sha = await commit_file(ws, feature, head, "plan.md", phase="plan")
    assert processes.commands() == ["worktree", "add", "commit", "push"]
    assert git(repo, "rev-parse", feature.branch) == sha
    cache = ws.cache(str(repo)).path
    # The worktree was removed without git, and git's record of it with it.
    assert git(cache, "worktree", "list", "--porcelain").splitlines()[0] == f"worktree {cache}"
    assert len(git(cache, "worktree", "list").splitlines()) == 1
    assert not (cache / "worktrees").exists() or not any((cache / "worktrees").iterdir())


async def test_run_records_are_one_push_per_call_and_all_there_for_the_next_attempt(
    tmp_path: Path, feature: WorkspaceInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    inp = phase_input(feature, feature.base_commit)
    store = await workspaces(tmp_path, "first").run_store(inp, attempt=1)
    model = RecordingModel(Counting(), store)
    processes = GitProcesses(tmp_path, monkeypatch)
    for n in (1, 2, 3):
        await model.request(ask(n), goes_on=(lambda r: True) if n < 3 else None)
    assert processes.commands() == ["push"] * 4  # the first start, then one per answer
    later = await workspaces(tmp_path, "later").run_store(inp, attempt=2)
    assert later.paid_earlier.model_calls == 3 and later.paid_earlier.lost_calls == 0
    replaying = Counting()
    second = RecordingModel(replaying, later)
    assert [(await second.request(ask(n))).text for n in (1, 2, 3)] == ["1", "2", "3"]
    assert replaying.calls == 0
