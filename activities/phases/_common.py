"""What every phase activity does around its own work.

Start from the recorded base commit (so any attempt starts clean), give the
model the stable project context, write a prompt history record, and commit
with trailers. Phases return a small ``PhaseOutcome``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from activities.agent import AgentRun, render_prompt, run_agent, transcript_digest
from activities.tools import Toolbox, escalate_spec, finish_spec
from activities.workspace import Workspace, feature_text, task_worktree
from workflows.types import PhaseInput, PhaseOutcome, TaskItem, Usage

__all__ = [
    "open_workspace",
    "system_prompt",
    "project_context",
    "record_prompt_history",
    "commit_phase",
    "parse_tasks",
    "check_off",
    "guidance_block",
    "model_phase",
    "TASK_LINE",
]

TASK_LINE = re.compile(
    r"^\s*- \[(?P<done>[ xX])\] (?P<id>T\d{3,})(?P<p> \[P\])?(?: \[(?P<story>US\d+)\])? (?P<title>.+)$"
)
_PATH = re.compile(r"(?<![\w/])((?:[\w.-]+/)*[\w.-]+\.(?:py|md|ya?ml|toml|txt|json|cfg|ini|sql))\b")


async def open_workspace(inp: PhaseInput) -> Workspace:
    """The workspace at this phase's base commit: the branch reset, or a fresh worktree."""
    if inp.worktree and inp.task_id:
        return await asyncio.to_thread(
            task_worktree,
            inp.workspace.repo_path,
            inp.workspace.branch,
            inp.task_id,
            inp.base_commit,
        )
    ws = Workspace(inp.workspace.repo_path)
    await asyncio.to_thread(ws.reset_to, inp.workspace.branch, inp.base_commit)
    return ws


def system_prompt(inp: PhaseInput) -> str:
    return render_prompt(
        "system",
        phase=inp.phase,
        feature_dir=inp.workspace.feature_dir,
        branch=inp.workspace.branch,
    )


def project_context(ws: Workspace, inp: PhaseInput, names: tuple[str, ...]) -> str:
    """Stable documents the model sees before the conversation (cacheable prefix)."""
    fd = inp.workspace.feature_dir
    paths = {
        "constitution": ".specify/memory/constitution.md",
        "spec": f"{fd}/spec.md",
        "plan": f"{fd}/plan.md",
        "data-model": f"{fd}/data-model.md",
        "tasks": f"{fd}/tasks.md",
    }
    blocks = []
    for name in names:
        rel = paths[name]
        if ws.exists(rel):
            blocks.append(f'<document path="{rel}">\n{ws.read(rel)}\n</document>')
    return "\n\n".join(blocks)


def guidance_block(inp: PhaseInput) -> str:
    return f"\n\nGuidance from a person (follow it):\n\n> {inp.guidance}\n" if inp.guidance else ""


def record_prompt_history(ws: Workspace, inp: PhaseInput, task: str, run: AgentRun) -> str:
    """Write ``history/prompts/<branch>/<run key>.prompt.md`` and return its path."""
    rel = f"history/prompts/{inp.workspace.branch}/{inp.run_key}.prompt.md"
    summary = (run.finish or run.escalation or {}).get("summary") or (run.escalation or {}).get(
        "problem", ""
    )
    body = (
        f"---\nphase: {inp.phase}\ninvocation: {inp.invocation}\ntask: {inp.task_id or ''}\n"
        f"model: {inp.model}\nworkflow: {inp.workflow_id}\nturns: {run.turns}\n"
        f"files: {sorted(run.changed)}\n---\n\n## Prompt\n\n{task.strip()}\n\n"
        f"## Outcome\n\n{summary}\n\n## Conversation\n\n{transcript_digest(run.transcript)}\n"
    )
    ws.write(rel, body)
    return rel


async def commit_phase(
    ws: Workspace,
    inp: PhaseInput,
    subject: str,
    *,
    artifacts: list[str],
    summary: str,
    run: AgentRun | None = None,
    **extra: object,
) -> PhaseOutcome:
    commit = await asyncio.to_thread(
        ws.commit,
        subject,
        workflow_id=inp.workflow_id,
        phase=inp.phase,
        task_id=inp.task_id,
        body=summary[:2000],
    )
    return PhaseOutcome(
        phase=inp.phase,
        commit=commit,
        artifacts=artifacts,
        summary=summary[:160],
        usage=run.usage if run else Usage(),
        **extra,  # type: ignore[arg-type]
    )


def parse_tasks(text: str) -> list[TaskItem]:
    """Parse Spec Kit task lines (``- [ ] T001 [P] [US1] ... in app/x.py``)."""
    tasks: list[TaskItem] = []
    for line in text.splitlines():
        m = TASK_LINE.match(line)
        if not m:
            continue
        title = m.group("title").strip()
        files = sorted({f.strip("`") for f in _PATH.findall(title)})
        tasks.append(
            TaskItem(
                id=m.group("id"),
                parallel=bool(m.group("p")),
                story=m.group("story"),
                files=files,
                title=title[:160],
                done=m.group("done") != " ",
            )
        )
    return tasks


def check_off(text: str, task_id: str) -> str:
    """Mark ``task_id`` done (``- [X]``) in tasks.md text."""
    return re.sub(rf"^(\s*- )\[ \]( {task_id}\b)", r"\1[X]\2", text, count=1, flags=re.M)


async def model_phase(
    inp: PhaseInput,
    *,
    prompt: str,
    context_docs: tuple[str, ...],
    required: list[str],
    finish_extra: dict | None = None,
    finish_required: list[str] | None = None,
    check: Callable[[Workspace, dict], str | None] | None = None,
    toolbox_factory: Callable[[Workspace], Toolbox] = Toolbox,
    escalate: bool = False,
    **prompt_values: object,
) -> tuple[Workspace, AgentRun]:
    """Reset, run the agent until it finishes with ``required`` files present, record history.

    Returns the workspace and the finished run; the caller commits. The prompt
    history record is written under ``history/prompts/`` (named by run key).
    """
    ws = await open_workspace(inp)
    fd = inp.workspace.feature_dir
    task = render_prompt(
        prompt,
        feature=feature_text(inp.workspace.repo_path, inp.workflow_id),
        feature_dir=fd,
        branch=inp.workspace.branch,
        guidance=guidance_block(inp),
        **prompt_values,
    )

    def _check(args: dict) -> str | None:
        missing = [p for p in required if not ws.exists(p)]
        if missing:
            return f"not finished: these files must exist first: {', '.join(missing)}"
        return check(ws, args) if check else None

    run = await run_agent(
        inp,
        ws,
        system=system_prompt(inp),
        context=project_context(ws, inp, context_docs),
        task=task,
        toolbox=toolbox_factory(ws),
        finish_tool=finish_spec(finish_extra, finish_required),
        check_finish=_check,
        escalate_tool=escalate_spec() if escalate else None,
    )
    await asyncio.to_thread(record_prompt_history, ws, inp, task, run)
    return ws, run
