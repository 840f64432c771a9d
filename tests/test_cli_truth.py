"""``status`` and ``list`` say what really happened to a feature, with exit codes to match.

Four real features on one worker whose plan phase fails once (an escalation
offering retry or abort): one aborted, one retried to completion, one
terminated by an operator, one still waiting for a person.
"""

from __future__ import annotations

import json

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from contract import FeatureStatus
from tests.support.cli_driver import address, invoke_async
from tests.support.fake_phases import Fakes, open_request, request, respond, start
from tests.support.temporal import eventually, unique
from worker import build_worker


def _list_states(stdout: str, ids: list[str]) -> dict[str, str]:
    """Each id's state from ``list``'s narrow layout (id line, then ``  state · phase ...``)."""
    lines = stdout.splitlines()
    states = {}
    for index, line in enumerate(lines[:-1]):
        if line.strip() in ids:
            states[line.strip()] = lines[index + 1].split("·")[0].strip()
    return states


async def test_status_and_list_tell_aborted_terminated_completed_and_waiting_apart(
    local_env: WorkflowEnvironment,
) -> None:
    addr = address(local_env)
    fakes = Fakes(clarify=False, fail_phase={"plan": 1})
    queue = unique("cli-truth")
    handles: dict[str, WorkflowHandle] = {}
    async with build_worker(
        local_env.client, task_queue=queue, activity_overrides=fakes.activities()
    ):
        for name in ("aborted", "completed", "terminated", "waiting"):
            handles[name] = await start(local_env, fakes, request(), queue)
            escalation = await open_request(handles[name], "escalation")
            if name == "aborted":
                await respond(handles[name], request_id=escalation.id, answers={"Q1": "abort"})
            elif name == "completed":
                await respond(handles[name], request_id=escalation.id, answers={"Q1": "retry"})
            elif name == "terminated":
                await handles[name].terminate(reason="operator stopped it")
        assert (await handles["aborted"].result()).state == "aborted"
        assert (await handles["completed"].result()).state == "completed"

        runs = {
            name: await invoke_async("--address", addr, "status", handle.id)
            for name, handle in handles.items()
        }
        assert {name: run.exit_code for name, run in runs.items()} == {
            "aborted": 1,
            "completed": 0,
            "terminated": 1,
            "waiting": 0,
        }, {name: run.output for name, run in runs.items()}
        assert "aborted" in runs["aborted"].stdout
        assert "Open requests" not in runs["aborted"].stdout
        assert "To answer" not in runs["aborted"].stdout
        terminated = " ".join(runs["terminated"].stdout.split())  # the table wraps at 80
        assert "Execution terminated: operator stopped it" in terminated
        assert "Open requests" not in terminated and "To answer" not in terminated
        assert "Open requests (1)" in runs["waiting"].stdout
        assert (
            f"http://localhost:{int(addr.rsplit(':', 1)[1]) + 1000}/namespaces/default/workflows/{handles['waiting'].id}"
            in runs["waiting"].stdout
        )

        as_json = await invoke_async(
            "--address", addr, "status", handles["terminated"].id, "--json"
        )
        assert as_json.exit_code == 1
        parsed = FeatureStatus.model_validate(json.loads(as_json.stdout))
        assert parsed.state == "failed" and parsed.open_requests == []

        ids = [handle.id for handle in handles.values()]

        async def listed() -> tuple[str, dict[str, str]] | None:
            run = await invoke_async("--address", addr, "list", "--limit", "500")
            states = _list_states(run.stdout, ids)
            return (run.stdout, states) if len(states) == len(ids) else None

        stdout, states = await eventually(listed)
        assert states == {
            handles["aborted"].id: "aborted",
            handles["completed"].id: "completed",
            handles["terminated"].id: "terminated",
            handles["waiting"].id: "waiting",
        }
        # Newest first: started last, listed first.
        order = sorted(ids, key=stdout.index)
        assert order == [handles[n].id for n in ("waiting", "terminated", "completed", "aborted")]
        awaiting = await invoke_async("--address", addr, "list", "--awaiting", "--limit", "500")
        assert handles["waiting"].id in awaiting.stdout
        for name in ("aborted", "terminated", "completed"):
            assert handles[name].id not in awaiting.stdout
        await handles["waiting"].terminate(reason="test over")

    # No worker left to replay the query: the server's record still tells the truth.
    run = await invoke_async("--address", addr, "status", handles["terminated"].id)
    assert run.exit_code == 1, run.output
    assert "built from the execution's result" in run.stdout
    assert "Execution terminated: operator stopped it" in " ".join(run.stdout.split())
    run = await invoke_async("--address", addr, "status", handles["aborted"].id)
    assert run.exit_code == 1 and "aborted" in run.stdout
