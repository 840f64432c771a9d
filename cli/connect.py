"""Reaching Temporal: connecting, finding a feature, reading its status, RPC errors.

Everything here turns a server-side problem into a ``CliError`` that says what
to do, so commands never show a traceback for an unreachable server, a wrong
namespace or an unknown id. ``temporalio.client`` is imported when a command
first connects, so ``--help`` stays fast.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cli.errors import EXIT_FAILED, CliError, one_line
from cli.settings import Settings, temporal_command, worker_command
from contract import SA_FEATURE, SA_PHASE, WORKFLOW_TYPE, FeatureResult, FeatureStatus, Stage

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle
    from temporalio.service import RPCError

    from cli.outcome import Outcome

__all__ = [
    "CONNECT_TIMEOUT_S",
    "POLLER_FRESH_S",
    "QUERY_TIMEOUT",
    "Session",
    "connect",
    "rpc_error",
    "unknown_workflow",
    "feature_handle",
    "query_status",
    "status_from_description",
    "has_worker",
    "execution_state",
]

CONNECT_TIMEOUT_S = 15.0
#: A poller seen longer ago than this is gone: an idle worker polls again at least
#: once a minute (the server ends a long poll after a minute).
POLLER_FRESH_S = 90.0
QUERY_TIMEOUT = timedelta(seconds=5)


async def connect(settings: Settings) -> Client:
    """A client for ``settings`` (``runtime.connect``: pydantic converter, TLS/API key from env).

    Raises:
        CliError: Code 1 when the server cannot be reached in time.
    """
    from runtime import connect as runtime_connect  # lazy: keeps --help fast

    try:
        return await asyncio.wait_for(
            runtime_connect(settings.address, settings.namespace), timeout=CONNECT_TIMEOUT_S
        )
    except (ConnectionError, RuntimeError, OSError, TimeoutError):
        raise CliError(
            f"cannot reach Temporal at {settings.address} (namespace {settings.namespace}). "
            f"Start a local server and worker with '{worker_command()} --dev', "
            "or point --address / TEMPORAL_ADDRESS at your cluster",
            code=EXIT_FAILED,
        ) from None
    except ValueError as err:  # TLS settings in the environment that do not fit together
        raise CliError(f"cannot connect to {settings.address}: {err}", code=EXIT_FAILED) from None


class Session:
    """One command's settings and, once asked for, its client (connected on first use).

    Commands validate their arguments before asking for the client, so an
    invalid argument never waits for a server.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Client | None = None

    async def client(self) -> Client:
        """The connected client (connects on the first call)."""
        if self._client is None:
            self._client = await connect(self.settings)
        return self._client


def rpc_error(err: RPCError, settings: Settings, *, workflow_id: str | None = None) -> CliError:
    """The ``CliError`` for an RPC failure, naming the likely cause and its fix."""
    from temporalio.service import RPCStatusCode

    text = str(err.message or err)
    lowered = text.lower()
    if err.status == RPCStatusCode.NOT_FOUND and "namespace" in lowered:
        return CliError(
            f"namespace {settings.namespace!r} does not exist at {settings.address}. "
            "Pass --namespace or set TEMPORAL_NAMESPACE",
            code=EXIT_FAILED,
        )
    if err.status == RPCStatusCode.NOT_FOUND and workflow_id is not None:
        return unknown_workflow(workflow_id, settings)
    if err.status == RPCStatusCode.INVALID_ARGUMENT and "search attribute" in lowered:
        return CliError(
            f"the server rejected a Backforge search attribute ({one_line(text, 160)}). "
            f"Register them with '{temporal_command()} operator search-attribute create "
            "--name BackforgePhase "
            "--type Keyword --name BackforgeAwaitingHuman --type Bool --name BackforgeFeature "
            f"--type Text', or use '{worker_command()} --dev' which registers them",
            code=EXIT_FAILED,
        )
    if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return CliError(
            f"Temporal at {settings.address} did not answer ({one_line(text, 120)}). "
            f"Check the server, or start one with '{worker_command()} --dev'",
            code=EXIT_FAILED,
        )
    return CliError(f"Temporal error {err.status.name}: {one_line(text, 200)}", code=EXIT_FAILED)


def unknown_workflow(workflow_id: str, settings: Settings, *, detail: str = "") -> CliError:
    """Exit 2: no Backforge feature has this id here (``detail`` says what it is instead)."""
    return CliError(
        f"no feature workflow with id {workflow_id!r} in namespace {settings.namespace} at "
        f"{settings.address}{detail}. Run '{settings.command_prefix()} list' to see feature ids"
    )


async def feature_handle(
    client: Client, settings: Settings, workflow_id: str
) -> tuple[WorkflowHandle[Any, FeatureResult], WorkflowExecutionDescription]:
    """The handle of a feature workflow, checked to exist and to be a Backforge feature.

    Raises:
        CliError: Exit 2 for an unknown id or another workflow type.
    """
    from temporalio.service import RPCError

    handle = client.get_workflow_handle(workflow_id, result_type=FeatureResult)
    try:
        description = await handle.describe()
    except RPCError as err:
        raise rpc_error(err, settings, workflow_id=workflow_id) from None
    if description.workflow_type != WORKFLOW_TYPE:
        raise unknown_workflow(
            workflow_id, settings, detail=f" (that id is a {description.workflow_type} workflow)"
        )
    return handle, description


async def query_status(handle: WorkflowHandle[Any, Any]) -> FeatureStatus | None:
    """The workflow's ``status`` query, or None when no worker answered in time.

    Raises:
        RPCError: ``NOT_FOUND``: the workflow does not exist.
    """
    from temporalio.service import RPCError, RPCStatusCode

    try:
        return await handle.query("status", result_type=FeatureStatus, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise
        return None
    except Exception:  # the query failed inside the workflow, or a decode problem
        return None


def status_from_description(
    description: WorkflowExecutionDescription, outcome: Outcome
) -> FeatureStatus:
    """A status for a closed feature when no worker can answer the query.

    Built from what the server keeps: the result of a completed execution, the
    search attributes (feature text, last phase), and why it ended.
    """
    from typing import get_args

    attrs = description.typed_search_attributes
    result = outcome.result
    phase = attrs.get(SA_PHASE) or "done"
    status = FeatureStatus(
        workflow_id=description.id,
        feature=attrs.get(SA_FEATURE) or "",
        state="completed",
        phase=phase if phase in get_args(Stage) else "done",  # type: ignore[arg-type]
    )
    if result is not None:
        status = status.model_copy(
            update={
                "phase": "done",
                "branch": result.branch,
                "head_commit": result.head_commit,
                "completed": result.commits,
                "usage": result.usage,
                "usage_by_phase": result.usage_by_phase,
                "test_report": result.test_report,
                "validation": result.validation,
                "message": result.message,
            }
        )
    return status


async def has_worker(client: Client, task_queue: str) -> bool | None:
    """Whether a worker polls ``task_queue`` now (None if it cannot be told).

    The server lists a poller for minutes after its worker stopped; one whose
    last poll began more than ``POLLER_FRESH_S`` ago is taken to be gone.
    """
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    try:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            ),
            timeout=timedelta(seconds=5),
        )
    except Exception:
        return None
    now = time.time()
    return any(
        now - poller.last_access_time.ToSeconds() < POLLER_FRESH_S for poller in response.pollers
    )


def execution_state(description: WorkflowExecutionDescription) -> str:
    """``running``, ``completed``, ``terminated``... (``unknown`` when the server did not say)."""
    return description.status.name.lower() if description.status else "unknown"
