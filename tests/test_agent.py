"""The agent loop: typed finish and escalate, errors back to the model, limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field
from temporalio.exceptions import ApplicationError

from activities.agent import ESCALATE, FINISH, Finish, Review, run_agent
from activities.models import (
    CallOrigin,
    ModelRequest,
    ModelResponse,
    RecordingModel,
    RunStore,
    TextPart,
    ToolCallPart,
)
from activities.tools import Toolbox
from activities.workspace import Workspace
from contract import AgentBudget, Usage


class CountFinish(Finish):
    """Finish with a count."""

    count: int = Field(ge=0)


class Stuck(BaseModel):
    """Ask a person."""

    problem: str


class Script:
    """A fake model (test double) that answers each turn from a list and keeps the requests."""

    model_id = "fake:script"

    def __init__(self, *turns: list[ToolCallPart] | str) -> None:
        self.turns = list(turns)
        self.requests: list[ModelRequest] = []

    async def request(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        turn = self.turns.pop(0)
        parts: list[TextPart | ToolCallPart] = (
            [TextPart(text=turn)] if isinstance(turn, str) else list(turn)
        )
        return ModelResponse(
            parts=parts, usage=Usage(input_tokens=10, output_tokens=5, model_calls=1)
        )


def call(name: str, **arguments: object) -> list[ToolCallPart]:
    return [ToolCallPart(id=f"c-{name}", name=name, arguments=arguments)]


async def run(tmp_path: Path, script: Script, **kw: object):  # type: ignore[no-untyped-def]
    ws_dir = tmp_path / "ws"
    ws_dir.mkdir(exist_ok=True)

    async def keep(records: dict[str, bytes]) -> None:
        return None

    model = RecordingModel(script, RunStore(attempt=1, earlier={}, write=keep))
    options = {
        "run_key": "plan-1",
        "origin": CallOrigin(phase="plan"),
        "limits": AgentBudget(),
        "system": "sys",
        "context": "",
        "task": "do it",
        "toolbox": Toolbox(Workspace(ws_dir)),
        "finish": CountFinish,
        **kw,
    }
    return await run_agent(model, **options)  # type: ignore[arg-type]


def last_result(script: Script) -> tuple[str, bool]:
    part = script.requests[-1].messages[-1].parts[-1]
    return part.content, part.is_error  # type: ignore[union-attr]


async def test_finish_arguments_are_validated_into_the_phase_model(tmp_path: Path) -> None:
    script = Script(
        call(FINISH, summary="done"),  # count missing
        call(FINISH, summary="done", count=-1),  # out of range
        call(FINISH, summary="done", count=3),
    )
    result = await run(tmp_path, script)
    assert isinstance(result.finish, CountFinish) and result.finish.count == 3
    assert result.turns == 3 and result.usage.model_calls == 3
    first_error = script.requests[1].messages[-1].parts[0]
    assert first_error.is_error and "- count: Field required" in first_error.content  # type: ignore[union-attr]
    second_error = script.requests[2].messages[-1].parts[0]
    assert "count: Input should be greater than or equal to 0" in second_error.content  # type: ignore[union-attr]


async def test_the_finish_tool_schema_comes_from_the_model(tmp_path: Path) -> None:
    script = Script(call(FINISH, summary="s", count=1))
    await run(tmp_path, script)
    [finish] = [t for t in script.requests[0].tools if t.name == FINISH]
    assert finish.parameters["required"] == ["summary", "count"]
    assert finish.parameters["properties"]["count"]["minimum"] == 0
    assert finish.description == "Finish with a count."
    assert ESCALATE not in {t.name for t in script.requests[0].tools}


async def test_the_tool_schemas_sent_are_lean_and_unknown_arguments_still_refused(
    tmp_path: Path,
) -> None:
    from activities.evidence import ImplementFinish
    from activities.phases.implement import Escalation

    script = Script(
        call(FINISH, summary="s", surprise=1), call(FINISH, summary="s", pending_tests=[])
    )
    result = await run(tmp_path, script, finish=ImplementFinish, escalation=Escalation)
    tools = {t.name: t for t in script.requests[0].tools}
    text = str(tools[FINISH].parameters) + str(tools[ESCALATE].parameters)
    assert "additionalProperties" not in text and "'title'" not in text
    assert "A question for a person" not in text  # a nested model's docstring
    assert "'default': ''" not in text  # the optional `implications`
    # What the model must know stays: required fields, bounds, field descriptions.
    questions = tools[ESCALATE].parameters["properties"]["questions"]
    assert questions["minItems"] == 1 and questions["items"]["required"] == [
        "id",
        "text",
        "options",
        "recommended",
    ]
    assert tools[FINISH].parameters["properties"]["pending_tests"]["description"]
    refused = script.requests[1].messages[-1].parts[0]
    assert refused.is_error and "surprise: Extra inputs are not permitted" in refused.content  # type: ignore[union-attr]
    assert result.finish is not None


async def test_a_failed_phase_check_goes_back_to_the_model(tmp_path: Path) -> None:
    script = Script(call(FINISH, summary="s", count=1), call(FINISH, summary="s", count=2))

    async def check(finish: CountFinish) -> Review:
        if finish.count == 2:
            return Review(evidence="count checked: 2")
        return Review(problem="count must be 2")

    result = await run(tmp_path, script, check_finish=check)
    assert result.finish is not None and result.finish.count == 2
    assert script.requests[1].messages[-1].parts[0].content == "count must be 2"  # type: ignore[union-attr]
    assert result.evidence == "count checked: 2"  # recorded with the accepted finish


async def test_escalation_is_validated_and_ends_the_conversation(tmp_path: Path) -> None:
    script = Script(call(ESCALATE, why="?"), call(ESCALATE, problem="the spec is silent"))
    result = await run(tmp_path, script, escalation=Stuck)
    assert result.finish is None and isinstance(result.escalation, Stuck)
    assert result.summary == "the spec is silent"
    assert "not escalated" in script.requests[1].messages[-1].parts[0].content  # type: ignore[union-attr]


async def test_escalate_is_unknown_where_the_phase_cannot_escalate(tmp_path: Path) -> None:
    script = Script(call(ESCALATE, problem="x"), call(FINISH, summary="s", count=0))
    result = await run(tmp_path, script)
    assert result.finish is not None
    content, is_error = last_result(script)
    assert is_error and "unknown tool 'escalate'" in content


async def test_text_only_turns_are_nudged_towards_the_tools(tmp_path: Path) -> None:
    script = Script("thinking...", call(FINISH, summary="s", count=0))
    await run(tmp_path, script)
    nudge = script.requests[1].messages[-1].parts[0]
    assert "Call `finish` when the work is complete" in nudge.text  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "limits,kind",
    [
        (AgentBudget(max_turns=2), "AgentTurnLimit"),
        (AgentBudget(max_tokens=1000), "AgentTokenLimit"),
    ],
)
async def test_limits_stop_the_conversation_without_retry(
    tmp_path: Path, limits: AgentBudget, kind: str
) -> None:
    script = Script(*(["no tools"] * 3 if kind == "AgentTurnLimit" else []))
    if kind == "AgentTokenLimit":
        script.turns = [call("list_files")] * 400
        script_request = script.request

        async def heavy(request: ModelRequest) -> ModelResponse:
            response = await script_request(request)
            response.usage = Usage(input_tokens=600, model_calls=1)
            return response

        script.request = heavy  # type: ignore[method-assign]
    with pytest.raises(ApplicationError) as err:
        await run(tmp_path, script, limits=limits)
    assert err.value.type == kind and err.value.non_retryable


async def test_a_turn_that_goes_on_records_the_next_start_with_its_answer(tmp_path: Path) -> None:
    script = Script(
        "thinking aloud",  # nudged: another call follows
        call("no_such_tool"),  # a tool error: another call follows
        call(FINISH, summary="s", count=1),  # rejected below: another call follows after all
        call(FINISH, summary="s", count=2),
    )
    writes: list[list[str]] = []

    async def keep(records: dict[str, bytes]) -> None:
        writes.append(sorted(records))

    async def check(finish: CountFinish) -> Review:
        return Review(problem=None if finish.count == 2 else "count must be 2")

    (tmp_path / "ws").mkdir()
    model = RecordingModel(script, RunStore(attempt=1, earlier={}, write=keep))
    await run_agent(
        model,
        run_key="plan-1",
        origin=CallOrigin(phase="plan"),
        limits=AgentBudget(),
        system="sys",
        context="",
        task="do it",
        toolbox=Toolbox(Workspace(tmp_path / "ws")),
        finish=CountFinish,
        check_finish=check,
    )
    # A finish may end the conversation: the call after it records its own start.
    assert writes == [
        ["001/0001-started"],
        ["001/0001", "001/0002-started"],
        ["001/0002", "001/0003-started"],
        ["001/0003"],
        ["001/0004-started"],
        ["001/0004"],
    ]
