"""What every model-driven phase does around its own work.

A phase module declares a ``ModelPhase`` subclass: its prompt, the documents it
reads whole and those it gets as outlines, the tools it offers, the files it must
write, its ``Finish`` model (and ``Escalation`` model), and what it does with the
result. ``ModelPhase.execute`` runs the common part: check out the tree at the
phase's base commit, gather the environment facts, render the prompt, run the agent
with the run store in front of the model, write the prompt history record, and hand
the finished run to the phase's ``complete``, which commits.

What the model reads, in order (stable first, so providers cache it):

1. system: the phase's role and rules (``system.md``), then the environment block
   (``environment.md``: Python, packages, test command, tools, where files go);
2. context: the documents the phase reads whole, then outlines of those it reads in
   part (``view_file`` fetches any range); the same for every task of a feature;
3. the first message: the phase's prompt (``<phase>.md``) with what is particular to
   this invocation (a task line, evidence, answers), then the call marker.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import prompts
from activities.agent import AgentRun, Finish, Review, run_agent, transcript_digest
from activities.documents import contract_operations, outline
from activities.environment import gather_environment, render_environment
from activities.heartbeat import keep_alive
from activities.models import CallOrigin, ModelError, RecordingModel
from activities.services import Services
from activities.speckit import DocumentName, FeatureLayout
from activities.tools import Toolbox, project_toolbox
from activities.workspace import BranchMoved, Checkout
from contract import PhaseInput, PhaseName, PhaseOutcome

__all__ = ["ModelPhase", "PhaseActivity", "layout_of", "attempt", "cut", "SUMMARY_CHARS"]

F = TypeVar("F", bound=Finish)

#: Summaries in outcomes and commit bodies (history stays small; cut at a word).
SUMMARY_CHARS = 160
_BODY_CHARS = 2000


def layout_of(inp: PhaseInput) -> FeatureLayout:
    return FeatureLayout(feature_dir=inp.workspace.feature_dir, branch=inp.workspace.branch)


def cut(text: str, limit: int) -> str:
    """``text`` cut at a word boundary, marked with an ellipsis when cut."""
    text = " ".join(text.split()) if "\n" not in text else text.strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def attempt() -> int:
    """This activity attempt's number (1 outside an activity)."""
    return activity.info().attempt if activity.in_activity() else 1


def first_scheduled() -> datetime | None:
    """When the first attempt of this activity was scheduled: the same on every retry."""
    return activity.info().scheduled_time if activity.in_activity() else None


class PhaseActivity:
    """Base of every phase activity class: holds the worker's services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def checkout(self, inp: PhaseInput) -> AbstractAsyncContextManager[Checkout]:
        """A fresh worktree of the feature at ``inp.base_commit`` for this attempt."""
        return self.services.workspaces.checkout(inp, attempt=attempt())

    async def commit(
        self, ws: Checkout, inp: PhaseInput, subject: str, *, summary: str, **outcome: Any
    ) -> PhaseOutcome:
        """Commit and publish the attempt, and describe it in a small ``PhaseOutcome``."""
        return await self._published(
            inp,
            summary,
            self.services.workspaces.publish(
                ws,
                inp,
                subject,
                body=cut(summary, _BODY_CHARS),
                attempt=attempt(),
                date=first_scheduled(),
            ),
            **outcome,
        )

    async def commit_empty(
        self, inp: PhaseInput, subject: str, *, summary: str, **outcome: Any
    ) -> PhaseOutcome:
        """``commit`` for a step that changes no file: no checkout, the commit is made in
        the worker's cache on top of ``inp.base_commit``."""
        return await self._published(
            inp,
            summary,
            self.services.workspaces.publish_empty(
                inp,
                subject,
                body=cut(summary, _BODY_CHARS),
                attempt=attempt(),
                date=first_scheduled(),
            ),
            **outcome,
        )

    async def _published(
        self, inp: PhaseInput, summary: str, publishing: Awaitable[str], **outcome: Any
    ) -> PhaseOutcome:
        if activity.in_activity():
            activity.heartbeat(f"{inp.run_key}: publishing")
        try:
            commit = await publishing
        except BranchMoved as err:
            raise ApplicationError(str(err), type="BranchMoved", non_retryable=True) from err
        return PhaseOutcome(
            phase=inp.phase, commit=commit, summary=cut(summary, SUMMARY_CHARS), **outcome
        )


class ModelPhase(PhaseActivity, ABC, Generic[F]):
    """A phase the model does. Subclasses declare the class attributes and ``complete``."""

    #: The phase this class implements.
    phase: ClassVar[PhaseName]
    #: The prompt template under ``activities/prompts/``.
    prompt: ClassVar[str]
    #: Documents placed whole before the conversation (a stable, cacheable prefix).
    reads: ClassVar[tuple[DocumentName, ...]]
    #: Documents given as outlines with line numbers (the contract: its operations).
    outlines: ClassVar[tuple[DocumentName, ...]] = ()
    #: Documents named by path and size only (read through the tools).
    listed: ClassVar[tuple[DocumentName, ...]] = ()
    #: The model's ``finish`` arguments.
    finish: ClassVar[type[Finish]]
    #: The model's ``escalate`` arguments, for phases that may ask a person.
    escalation: ClassVar[type[BaseModel] | None] = None
    #: Sandboxed tools the phase offers besides the file tools.
    runs_tests: ClassVar[bool] = False
    runs_commands: ClassVar[bool] = False
    reads_api_docs: ClassVar[bool] = True

    def writes(self, layout: FeatureLayout) -> list[str]:
        """Files that must exist before ``finish`` is accepted."""
        return []

    def check(self, ws: Checkout, layout: FeatureLayout, finish: F) -> str | None:
        """The phase's own check of a finish; a message for the model, or None."""
        return None

    async def review(self, ws: Checkout, inp: PhaseInput, finish: F) -> Review:
        """The phase's verdict on a finish (by default ``check``); may run tests."""
        problem = self.check(ws, layout_of(inp), finish)
        return Review(problem=problem)

    def toolbox(self, ws: Checkout, inp: PhaseInput) -> Toolbox:
        return project_toolbox(
            ws, tests=self.runs_tests, commands=self.runs_commands, docs=self.reads_api_docs
        )

    def prompt_name(self, inp: PhaseInput) -> str:
        """The prompt template for this invocation."""
        return self.prompt

    async def prompt_values(self, ws: Checkout, inp: PhaseInput) -> dict[str, Any]:
        """Extra ``$placeholders`` of the phase's prompt."""
        return {}

    def documents(
        self, inp: PhaseInput
    ) -> tuple[tuple[DocumentName, ...], tuple[DocumentName, ...]]:
        """(read whole, read as outlines) for this invocation."""
        return self.reads, self.outlines

    @abstractmethod
    async def complete(self, ws: Checkout, inp: PhaseInput, run: AgentRun[F]) -> PhaseOutcome:
        """Record the result (files the phase itself writes) and commit."""

    async def execute(self, inp: PhaseInput) -> PhaseOutcome:
        """Run the phase for ``inp`` (the body of each phase's activity)."""
        layout = layout_of(inp)
        async with self.checkout(inp) as ws:
            toolbox = self.toolbox(ws, inp)
            async with keep_alive(f"{inp.run_key}: environment"):
                facts = await gather_environment(
                    ws.root, feature_dir=layout.feature_dir, tools=toolbox.names
                )
            task = prompts.render(
                self.prompt_name(inp),
                feature=await self.services.workspaces.feature_text(inp),
                feature_dir=layout.feature_dir,
                branch=layout.branch,
                guidance=prompts.render("guidance", guidance=inp.guidance) if inp.guidance else "",
                **await self.prompt_values(ws, inp),
            )
            required = self.writes(layout)

            async def check(finish: F) -> Review:
                missing = [p for p in required if not ws.exists(p)]
                if missing:
                    return Review(
                        problem=f"not finished: these files must exist first: {', '.join(missing)}"
                    )
                return await self.review(ws, inp, finish)

            model = await self._model(inp)
            try:
                run: AgentRun[F] = await run_agent(
                    model,
                    run_key=inp.run_key,
                    origin=CallOrigin(
                        phase=inp.phase,
                        invocation=inp.invocation,
                        task_id=inp.task_id,
                        feature_dir=layout.feature_dir,
                        branch=layout.branch,
                    ),
                    limits=inp.limits,
                    system=self.system_prompt(inp, render_environment(facts)),
                    context=self.context(ws, inp, layout),
                    task=task,
                    toolbox=toolbox,
                    finish=self.finish,  # type: ignore[arg-type]
                    check_finish=check,
                    escalation=self.escalation,
                )
            finally:
                await model.aclose()
            # Earlier attempts paid for calls but never reported them: they count here.
            run.usage = run.usage + model.store.paid_earlier
            ws.write(layout.prompt_history(inp.run_key), _history_record(inp, task, run))
            return await self.complete(ws, inp, run)

    async def _model(self, inp: PhaseInput) -> RecordingModel:
        try:
            inner = self.services.models(inp.model)
        except (ValueError, ModelError) as err:
            raise ApplicationError(str(err), type="ModelConfigError", non_retryable=True) from err
        store = await self.services.workspaces.run_store(inp, attempt=attempt())
        return RecordingModel(inner, store)

    def system_prompt(self, inp: PhaseInput, environment: str) -> str:
        """The phase's role and rules, then the environment block."""
        layout = layout_of(inp)
        role = prompts.render(
            f"role_{inp.phase}", feature_dir=layout.feature_dir, branch=layout.branch
        ).strip()
        rules = prompts.render(
            "system",
            phase=inp.phase,
            role=role,
            feature_dir=layout.feature_dir,
            branch=layout.branch,
        ).strip()
        return f"{rules}\n\n{environment}\n"

    def context(self, ws: Checkout, inp: PhaseInput, layout: FeatureLayout) -> str:
        """The documents before the conversation: whole ones, then outlines."""
        whole, parts = self.documents(inp)
        blocks = []
        for name in whole:
            rel = layout.path(name)
            if ws.exists(rel):
                blocks.append(prompts.render("document", path=rel, content=ws.read(rel)))
        digests = []
        for name in parts:
            rel = layout.path(name)
            if not ws.exists(rel):
                continue
            text = ws.read(rel)
            size = f"{len(text.splitlines())} lines"
            body = contract_operations(text) if name == "contract" else outline(text)
            digests.append(f"- `{rel}` ({size}):\n" + _indent(body))
        listed = [rel for rel in (layout.path(name) for name in self.listed) if ws.exists(rel)]
        if listed:
            digests.append("- Also: " + _listing(ws, listed, layout.feature_dir))
        if digests:
            blocks.append(prompts.render("outlines", outlines="\n".join(digests)).strip())
        return "\n\n".join(blocks)


def _listing(ws: Checkout, paths: list[str], feature_dir: str) -> str:
    """``path (N lines)`` for each; the feature's documents under one ``feature_dir/``."""
    size = {p: len(ws.read(p).splitlines()) for p in paths}
    prefix = f"{feature_dir}/"
    inside = [p for p in paths if p.startswith(prefix)]
    outside = [f"`{p}` ({size[p]} lines)" for p in paths if p not in inside]
    if inside:
        names = ", ".join(f"`{p.removeprefix(prefix)}` ({size[p]})" for p in inside)
        outside.append(f"in `{prefix}` (lines): {names}")
    return "; ".join(outside)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines()) if text else "  (empty)"


def _history_record(inp: PhaseInput, task: str, run: AgentRun[Any]) -> str:
    return (
        f"---\nphase: {inp.phase}\ninvocation: {inp.invocation}\ntask: {inp.task_id or ''}\n"
        f"model: {inp.model}\nturns: {run.turns}\n"
        f"files: {sorted(run.changed)}\n---\n\n## Prompt\n\n{task.strip()}\n\n"
        f"## Outcome\n\n{run.summary}\n\n"
        + (f"## Evidence\n\n{run.evidence}\n\n" if run.evidence else "")
        + f"## Conversation\n\n{transcript_digest(run.transcript)}\n"
    )
