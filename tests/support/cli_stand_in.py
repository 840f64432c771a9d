"""A stand-in feature workflow: the real one's name and interface, none of its pipeline.

One clarification and two approvals are open from the start; it completes when
all are answered. Lets the CLI's query, update and list paths run against a
real server in a second.
"""

from __future__ import annotations

from temporalio import workflow

from contract import (
    SA_AWAITING_HUMAN,
    SA_PHASE,
    WORKFLOW_TYPE,
    FeatureRequest,
    FeatureResult,
    FeatureStatus,
    HumanRequest,
    HumanResponse,
    RespondResult,
)
from tests.support.cli_requests import approval, clarification

__all__ = ["StandInFeatureWorkflow"]


@workflow.defn(name=WORKFLOW_TYPE)
class StandInFeatureWorkflow:
    def __init__(self) -> None:
        self.open: dict[str, HumanRequest] = {}

    @workflow.run
    async def run(self, request: FeatureRequest) -> FeatureResult:
        self.open = {
            "clarify-1": clarification(),
            "approve-spec-2": approval("approve-spec-2", "spec"),
            "approve-plan-3": approval("approve-plan-3", "plan"),
        }
        workflow.upsert_search_attributes(
            [SA_PHASE.value_set("specify"), SA_AWAITING_HUMAN.value_set(True)]
        )
        await workflow.wait_condition(lambda: not self.open)
        workflow.upsert_search_attributes(
            [SA_PHASE.value_set("done"), SA_AWAITING_HUMAN.value_set(False)]
        )
        return FeatureResult(
            workflow_id=workflow.info().workflow_id,
            state="completed",
            branch="001-bookmarks",
            head_commit="1234567890",
            message="stand-in done",
        )

    @workflow.query
    def status(self) -> FeatureStatus:
        return FeatureStatus(
            workflow_id=workflow.info().workflow_id,
            feature="stand-in",
            state="waiting" if self.open else "completed",
            phase="specify",
            open_requests=list(self.open.values()),
        )

    @workflow.update(name="respond")
    def respond(self, response: HumanResponse) -> RespondResult:
        del self.open[response.request_id]
        return RespondResult(
            request_id=response.request_id, accepted=True, message=f"{response.request_id} answered"
        )

    @respond.validator
    def check(self, response: HumanResponse) -> None:
        request = self.open.get(response.request_id)
        if request is None:
            raise ValueError(f"no open request {response.request_id!r}")
        if request.kind == "approval":
            if response.approved is None:
                raise ValueError("answer with approved=true or approved=false")
            return
        for question in request.questions:
            keys = [o.key for o in question.options]
            answer = response.answers.get(question.id)
            if answer not in keys:
                raise ValueError(
                    f"{question.id}: unknown option {answer!r}; choose one of {', '.join(keys)}"
                )
