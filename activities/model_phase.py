"""What every model-driven phase does around its own work.

A phase module declares a ``ModelPhase`` subclass: its prompt, the documents it
reads, the files it must write, its ``Finish`` model (and ``Escalation`` model),
and what it does with the result. ``ModelPhase.execute`` runs the common part:
check out the tree at the phase's base commit, render the prompt, run the agent
with the run store in front of the model, write the prompt history record, and
hand the finished run to the phase's ``complete``, which commits.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import prompts
from activities.agent import AgentRun, Finish, run_agent, transcript_digest
from activities.models import CallOrigin, ModelError, RecordingModel
from activities.services import Services
from activities.speckit import DocumentName, FeatureLayout
from activities.tools import Toolbox
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
        if activity.in_activity():
            activity.heartbeat(f"{inp.run_key}: publishing")
        try:
            commit = await self.services.workspaces.publish(
                ws,
                inp,
                subject,
                body=cut(summary, _BODY_CHARS),
                attempt=attempt(),
                date=first_scheduled(),
            )
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
    #: Documents placed before the conversation (a stable, cacheable prefix).
    reads: ClassVar[tuple[DocumentName, ...]]
    #: The model's ``finish`` arguments.
    finish: ClassVar[type[Finish]]
    #: The model's ``escalate`` arguments, for phases that may ask a person.
    escalation: ClassVar[type[BaseModel] | None] = None

    def writes(self, layout: FeatureLayout) -> list[str]:
        """Files that must exist before ``finish`` is accepted."""
        return []

    def check(self, ws: Checkout, layout: FeatureLayout, finish: F) -> str | None:
        """The phase's own check of a finish; a message for the model, or None."""
        return None

    def toolbox(self, ws: Checkout, inp: PhaseInput) -> Toolbox:
        return Toolbox(ws)

    async def prompt_values(self, ws: Checkout, inp: PhaseInput) -> dict[str, Any]:
        """Extra ``$placeholders`` of the phase's prompt."""
        return {}

    @abstractmethod
    async def complete(self, ws: Checkout, inp: PhaseInput, run: AgentRun[F]) -> PhaseOutcome:
        """Record the result (files the phase itself writes) and commit."""

    async def execute(self, inp: PhaseInput) -> PhaseOutcome:
        """Run the phase for ``inp`` (the body of each phase's activity)."""
        layout = layout_of(inp)
        async with self.checkout(inp) as ws:
            task = prompts.render(
                self.prompt,
                feature=await self.services.workspaces.feature_text(inp),
                feature_dir=layout.feature_dir,
                branch=layout.branch,
                guidance=prompts.render("guidance", guidance=inp.guidance) if inp.guidance else "",
                **await self.prompt_values(ws, inp),
            )
            required = self.writes(layout)

            def check(finish: F) -> str | None:
                missing = [p for p in required if not ws.exists(p)]
                if missing:
                    return f"not finished: these files must exist first: {', '.join(missing)}"
                return self.check(ws, layout, finish)

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
                    system=prompts.render(
                        "system",
                        phase=inp.phase,
                        feature_dir=layout.feature_dir,
                        branch=layout.branch,
                    ),
                    context=self._context(ws, layout),
                    task=task,
                    toolbox=self.toolbox(ws, inp),
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

    def _context(self, ws: Checkout, layout: FeatureLayout) -> str:
        blocks = []
        for name in self.reads:
            rel = layout.path(name)
            if ws.exists(rel):
                blocks.append(prompts.render("document", path=rel, content=ws.read(rel)))
        return "\n\n".join(blocks)


def _history_record(inp: PhaseInput, task: str, run: AgentRun[Any]) -> str:
    return (
        f"---\nphase: {inp.phase}\ninvocation: {inp.invocation}\ntask: {inp.task_id or ''}\n"
        f"model: {inp.model}\nturns: {run.turns}\n"
        f"files: {sorted(run.changed)}\n---\n\n## Prompt\n\n{task.strip()}\n\n"
        f"## Outcome\n\n{run.summary}\n\n## Conversation\n\n{transcript_digest(run.transcript)}\n"
    )
