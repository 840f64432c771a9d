"""Phase 0: map an existing codebase into ``.specify/memory/codebase.md`` (brownfield).

Spec Kit's practice on an existing repository starts by understanding what is there.
On a repository that already holds a service, the model maps its layout, stack and
versions, conventions, how tests run and what the API already offers; the
constitution, the spec, the plan, the tasks and every implementation task then read
that map, so a feature extends the service instead of starting a second one beside
it.

Whether there is code to map is decided cheaply and without a model or a checkout:
the tree at the base commit (one ``git ls-tree`` in the worker's cache) holds a
Python file outside Backforge's own folders (``.specify/``, ``specs/``,
``history/``). On an empty or documentation-only repository the activity makes an
empty commit saying so (one commit per phase, as everywhere; made in the cache,
with no checkout) and calls no model.
"""

from __future__ import annotations

from temporalio import activity

from activities.agent import AgentRun, Finish
from activities.model_phase import ModelPhase, layout_of
from activities.speckit import CODEBASE, FeatureLayout
from activities.workspace import Checkout
from contract import PhaseInput, PhaseOutcome

__all__ = ["SummarizePhase", "existing_code"]

#: Folders of Backforge's own records: their files are not the codebase.
_OWN = (".specify/", "specs/", "history/")
_SOURCE_SUFFIXES = (".py",)


def existing_code(paths: list[str]) -> list[str]:
    """The source files among ``paths`` (a tree's files) outside Backforge's own folders."""
    return [path for path in paths if path.endswith(_SOURCE_SUFFIXES) and not path.startswith(_OWN)]


class SummarizePhase(ModelPhase[Finish]):
    phase = "summarize"
    prompt = "summarize"
    reads = ("codebase",)
    finish = Finish
    runs_tests = True
    runs_commands = True

    def writes(self, layout: FeatureLayout) -> list[str]:
        return [CODEBASE]

    async def complete(self, ws: Checkout, inp: PhaseInput, run: AgentRun[Finish]) -> PhaseOutcome:
        return await self.commit(
            ws,
            inp,
            "summarize: map of the existing codebase",
            summary=run.summary,
            artifacts=self.writes(layout_of(inp)),
            usage=run.usage,
        )

    @activity.defn(name="run_phase_summarize")
    async def run(self, inp: PhaseInput) -> PhaseOutcome:
        files = await self.services.workspaces.tracked_files(inp.workspace, inp.base_commit)
        if not existing_code(files):
            return await self.commit_empty(
                inp,
                "summarize: no existing code to map",
                summary="The repository holds no code yet; nothing to map.",
            )
        return await self.execute(inp)
