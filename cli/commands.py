"""The commands: start, status, answer, approve, reject, list, watch, validate, demo.

Every command is an ``async`` function taking a ``Session`` first and its
arguments after, registered with ``cli.app.command`` (the frame they all share).
A command validates its arguments before ``await session.client()``, so a bad
argument never waits for a server.

Only typer, rich's console and ``contract`` are imported here; the Temporal
client, activities, the worker and rich's Markdown load when a command needs
them, so ``--help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from cli.app import command
from cli.arguments import build_request, parse_answers
from cli.connect import (
    Session,
    execution_state,
    feature_handle,
    has_worker,
    query_status,
    rpc_error,
    status_from_description,
)
from cli.errors import (
    EXIT_FAILED,
    EXIT_QUEUED,
    EXIT_USAGE,
    CliError,
)
from cli.render import console, print_command, print_list, print_result, print_status
from cli.responding import (
    answer_response,
    approval_response,
    check_kind,
    find_request,
    send_response,
)
from cli.settings import (
    program,
    worker_command,
)
from contract import DEFAULT_MODEL, GATES, AgentBudget, FeatureStatus, HumanResponse

__all__ = ["DEMO_FEATURE", "DEMO_GATES"]

_PROGRAM = program()
START_HELP = (
    "Start a feature workflow and print its id. Every argument is checked before the "
    "server is contacted.\n\n"
    "\b\nExample:\n"
    f'  {_PROGRAM} start "Build a bookmarks API with tags" '
    "--repo ../bookmarks --gates spec,delivery --wait"
)
STATUS_HELP = (
    "Show state, phase, commits, tasks, open requests (with how to answer), usage, tests "
    "and the Temporal UI link.\n\n"
    "Exit codes: 0 the feature is running, waiting for a person, or completed; 1 it failed, "
    "was aborted, cancelled, terminated or timed out, or its status cannot be read; "
    "2 unknown workflow id."
)
WATCH_HELP = (
    "Follow a feature live until it finishes; open requests are shown with the commands "
    "that answer them (from another terminal). Costs the server one pending long poll "
    "and the worker nothing while the feature waits.\n\n"
    "Exit codes: 0 the feature completed; 1 it failed, was aborted, cancelled, terminated "
    "or timed out; 2 unknown workflow id; 130 interrupted (the feature goes on)."
)
ANSWER_HELP = (
    "Answer a clarification, escalation or budget request.\n\n"
    "\b\nExample:\n"
    f'  {_PROGRAM} answer ID clarify-1 Q1=B Q2="private by default"'
)
DEMO_FEATURE = "Build a bookmarks API with tags and per-user collections"
DEMO_GATES = "spec,delivery"
DEMO_HELP = (
    "Run everything in one process: embedded Temporal server, worker, example repo.\n\n"
    "Offline with the default scripted model (a hand-written transcript standing in for a "
    "model). The demo brings its own server on 7233/8233 (free ports when those are taken) "
    "and ignores --address. Questions are asked at the terminal; Enter takes the recommended "
    "answer, --yes takes all of them."
)

WorkflowId = Annotated[str, typer.Argument(metavar="ID", help="Feature workflow id.")]
_AGENT = AgentBudget()


@command(help=START_HELP)
async def start(
    session: Session,
    feature: Annotated[
        str, typer.Argument(metavar="FEATURE", help="The feature request, in a sentence or a few.")
    ],
    *,
    repo: Annotated[
        str,
        typer.Option(
            help="The repository: a local path or a git URL. Used as a remote; your checkout "
            "is never changed."
        ),
    ],
    base: Annotated[
        str | None,
        typer.Option(
            help="Branch or tag to start from (default: the repository's default branch)."
        ),
    ] = None,
    model: Annotated[
        str, typer.Option(help="Model id: anthropic:<model>, openai:<model> or scripted:<file>.")
    ] = DEFAULT_MODEL,
    gates: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated approval gates: {', '.join(GATES)} (or 'none')."),
    ] = None,
    phase_model: Annotated[
        list[str] | None,
        typer.Option(help="Per-phase model, PHASE=MODEL_ID; repeat for several phases."),
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option(help="Ask a person before spending more than this (USD).")
    ] = None,
    max_fix_rounds: Annotated[int, typer.Option(help="Test/analyze fix rounds (0-10).")] = 2,
    clarification_timeout: Annotated[
        int | None,
        typer.Option(
            help="Seconds after which unanswered clarifications take the recommended answers."
        ),
    ] = None,
    remind_every: Annotated[
        int | None, typer.Option(help="Seconds between reminders on open requests.")
    ] = None,
    agent_max_turns: Annotated[
        int, typer.Option(help="Turns one agent conversation (a phase or a task) may take.")
    ] = _AGENT.max_turns,
    agent_max_tokens: Annotated[
        int, typer.Option(help="Tokens (in + out) one agent conversation may spend.")
    ] = _AGENT.max_tokens,
    agent_max_seconds: Annotated[
        int, typer.Option(help="Wall-clock seconds one agent conversation may run.")
    ] = _AGENT.max_seconds,
    parallel_tasks: Annotated[
        bool, typer.Option(help="Run disjoint [P] tasks side by side.")
    ] = True,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow progress until the feature is done.")
    ] = False,
) -> int:
    """Start a feature workflow; prints its id."""
    request = build_request(
        feature=feature,
        repo=repo,
        model=model,
        gates=gates,
        phase_model=phase_model or [],
        base_ref=base,
        budget_usd=budget_usd,
        max_fix_rounds=max_fix_rounds,
        clarification_timeout_s=clarification_timeout,
        remind_every_s=remind_every,
        agent_limits={
            "max_turns": agent_max_turns,
            "max_tokens": agent_max_tokens,
            "max_seconds": agent_max_seconds,
        },
        parallel_tasks=parallel_tasks,
    )
    from cli.starting import start_feature

    _warn_missing_keys([request.model, *request.phase_models.values()])
    settings = session.settings
    client = await session.client()
    handle = await start_feature(client, settings, request)
    console.print(Text.assemble(("Started ", "green"), (handle.id, "bold")))
    console.print(
        Text(
            f"  repo   {request.repo_path}\n  model  {request.model}"
            f"\n  gates  {', '.join(request.gates) or 'none'}",
            style="dim",
        )
    )
    if await has_worker(client, settings.task_queue) is False:
        console.print(
            Text(
                f"note: no worker is polling task queue {settings.task_queue!r} yet; "
                f"start one with '{worker_command()}'",
                style="yellow",
            ),
            soft_wrap=True,
        )
    link = settings.ui_link(handle.id)
    if link:
        print_command(console, link, label="Temporal UI ", style="")
    if not wait:
        prefix = settings.command_prefix()
        print_command(console, f"{prefix} watch {handle.id}", label="Follow it:  ", style="")
        print_command(console, f"{prefix} status {handle.id}", label="Status:     ", style="")
        return 0
    from cli.follow import follow

    result, last = await follow(client, handle, settings, answer=False)
    print_result(
        console, result, repo=request.repo_path, records=last.completed if last else None, ui=link
    )
    return 0 if result.state == "completed" else EXIT_FAILED


def _warn_missing_keys(model_ids: list[str]) -> None:
    """Say which model keys this terminal lacks; the worker's environment is what counts."""
    from activities.models.keys import missing_key

    for key in sorted({k for k in map(missing_key, model_ids) if k}):
        console.print(
            Text(
                f"note: {key} is not set in this terminal. The worker reads it from its own "
                f"environment: export {key} where worker.py runs (before starting it), or the "
                "feature's first model call becomes an escalation",
                style="yellow",
            ),
            soft_wrap=True,
        )


@command(help=STATUS_HELP)
async def status(
    session: Session,
    workflow_id: WorkflowId,
    *,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the FeatureStatus as JSON.")
    ] = False,
) -> int:
    """Show phase, commits, tasks, open requests (with how to answer), usage and tests."""
    from temporalio.service import RPCError

    from cli.outcome import corrected, read_outcome

    settings = session.settings
    client = await session.client()
    handle, description = await feature_handle(client, settings, workflow_id)
    outcome = await read_outcome(handle, description.status)
    current: FeatureStatus | None = None
    # A closed feature is queried only where a worker can replay it for the answer.
    if not outcome.closed or await has_worker(client, description.task_queue) is not False:
        try:
            current = await query_status(handle)
        except RPCError as err:
            raise rpc_error(err, settings, workflow_id=workflow_id) from None
    if current is None and outcome.closed:
        current = status_from_description(description, outcome)
        if not as_json:
            console.print(
                Text(
                    "(no worker answered the status query; built from the execution's result)",
                    style="dim",
                )
            )
    if current is None:
        polling = await has_worker(client, description.task_queue)
        why = (
            f"no worker is polling task queue {description.task_queue!r}. Start one with "
            f"'{worker_command()}'"
            if polling is False
            else "the workflow did not answer the status query in time. Try again shortly"
        )
        raise CliError(
            f"cannot read the status of {workflow_id} "
            f"(execution {execution_state(description)}): {why}",
            code=EXIT_FAILED,
        )
    current = corrected(current, outcome)
    if as_json:
        print(current.model_dump_json(indent=2))
        return outcome.exit_code
    print_status(console, current, settings)
    link = settings.ui_link(workflow_id)
    if link:
        print_command(console, link, label="Temporal UI  ", style="")
    return outcome.exit_code


async def _respond(
    session: Session, workflow_id: str, build: Callable[[FeatureStatus | None], HumanResponse]
) -> int:
    """Check the feature can take an answer now, build the response, send it.

    With no worker polling, the answer is sent as the ``respond`` signal (durable,
    checked when a worker applies it) and the command says so and exits 3 at once.
    """
    from temporalio.service import RPCError

    from cli.outcome import closed_state
    from cli.responding import queue_response

    settings = session.settings
    client = await session.client()
    handle, description = await feature_handle(client, settings, workflow_id)
    state = closed_state(description.status)
    if state != "running":
        raise CliError(
            f"feature workflow {workflow_id!r} is {state}; it takes no more answers. "
            f"See '{settings.command_prefix()} status {workflow_id}'",
            code=EXIT_FAILED,
        )
    if await has_worker(client, description.task_queue) is False:
        response = build(None)
        await queue_response(handle, response)
        raise CliError(
            f"{response.request_id}: no worker is polling task queue "
            f"{description.task_queue!r}, so nothing can check the answer now. It was sent "
            "as the 'respond' signal and is applied when a worker starts "
            f"('{worker_command()}'); if it cannot be applied, "
            f"'{settings.command_prefix()} status {workflow_id}' says why",
            code=EXIT_QUEUED,
            label="queued",
        )
    try:
        current = await query_status(handle)
    except RPCError:
        current = None
    response = build(current)
    result = await send_response(handle, response)
    console.print(
        Text.assemble(("✓ ", "green"), result.message or f"{response.request_id} accepted")
    )
    return 0


RequestId = Annotated[
    str, typer.Argument(metavar="REQUEST_ID", help="Request id, as shown by status.")
]
ApprovalId = Annotated[
    str, typer.Argument(metavar="REQUEST_ID", help="Approval request id, as shown by status.")
]


@command(help=ANSWER_HELP)
async def answer(
    session: Session,
    workflow_id: WorkflowId,
    request_id: RequestId,
    answers: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="QID=ANSWER...", help='Answers: an option key or free text, e.g. Q1=B Q2="..."'
        ),
    ] = None,
    *,
    comment: Annotated[str | None, typer.Option(help="Comment or guidance (escalations).")] = None,
) -> int:
    """Answer a clarification, escalation or budget request."""
    parsed = parse_answers(answers or [])
    if not parsed and not (comment and comment.strip()):
        raise CliError(
            "no answers given. Pass QUESTION_ID=ANSWER for each question, e.g. Q1=B; "
            f"'{session.settings.command_prefix()} status {workflow_id}' lists the questions"
        )

    def build(current: FeatureStatus | None) -> HumanResponse:
        request = find_request(current, request_id)
        check_kind(request, approval=False, workflow_id=workflow_id, settings=session.settings)
        return answer_response(request_id, parsed, comment=comment, request=request)

    return await _respond(session, workflow_id, build)


def _decide(
    session: Session, workflow_id: str, request_id: str, *, approved: bool, comment: str | None
) -> Callable[[FeatureStatus | None], HumanResponse]:
    def build(current: FeatureStatus | None) -> HumanResponse:
        request = find_request(current, request_id)
        check_kind(request, approval=True, workflow_id=workflow_id, settings=session.settings)
        return approval_response(request_id, approved=approved, comment=comment)

    return build


@command()
async def approve(
    session: Session,
    workflow_id: WorkflowId,
    request_id: ApprovalId,
    *,
    comment: Annotated[str | None, typer.Option(help="Optional comment.")] = None,
) -> int:
    """Approve a gate (spec, plan or delivery)."""
    build = _decide(session, workflow_id, request_id, approved=True, comment=comment)
    return await _respond(session, workflow_id, build)


@command()
async def reject(
    session: Session,
    workflow_id: WorkflowId,
    request_id: ApprovalId,
    *,
    comment: Annotated[
        str | None, typer.Option(help="What to change (required); the phase is redone with it.")
    ] = None,
) -> int:
    """Reject a gate with a comment; the phase is redone with the comment as guidance."""
    if not comment or not comment.strip():
        raise CliError(
            'reject needs --comment. Say what should change, e.g. --comment "add pagination"',
            code=EXIT_USAGE,
        )
    build = _decide(session, workflow_id, request_id, approved=False, comment=comment)
    return await _respond(session, workflow_id, build)


@command("list")
async def list_features(
    session: Session,
    *,
    awaiting: Annotated[
        bool, typer.Option("--awaiting", help="Only features waiting for a person.")
    ] = False,
    running: Annotated[bool, typer.Option("--running", help="Only running features.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
) -> int:
    """List feature workflows (newest first)."""
    from cli import listing

    settings = session.settings
    client = await session.client()
    rows = await listing.list_features(
        client, settings, awaiting=awaiting, running=running, limit=limit
    )
    if not rows:
        what = "waiting for a person" if awaiting else ("running" if running else "")
        console.print(
            Text(
                f"No {what + ' ' if what else ''}feature workflows in namespace "
                f"{settings.namespace}.",
                style="dim",
            )
        )
        return 0
    print_list(console, rows)
    return 0


@command(help=WATCH_HELP)
async def watch(session: Session, workflow_id: WorkflowId) -> int:
    """Follow a feature live until it finishes (answer from another terminal)."""
    from cli.follow import follow

    settings = session.settings
    client = await session.client()
    handle, description = await feature_handle(client, settings, workflow_id)
    link = settings.ui_link(workflow_id)
    if link:
        print_command(console, link, label="Temporal UI  ", style="dim")
    result, last = await follow(
        client, handle, settings, answer=False, task_queue=description.task_queue
    )
    print_result(
        console,
        result,
        repo=last.repo_path if last else None,
        records=last.completed if last else None,
        ui=link,
    )
    return 0 if result.state == "completed" else EXIT_FAILED


@command()
async def validate(
    session: Session,
    *,
    repo: Annotated[str, typer.Option(help="The repository: a local path or a git URL.")],
    ref: Annotated[
        str | None, typer.Option(help="Branch, tag or commit (default: the default branch).")
    ] = None,
    app: Annotated[
        str | None,
        typer.Option(
            help="The ASGI app as module:attr (default: the contract's, else app.main:app)."
        ),
    ] = None,
    contract: Annotated[
        str | None,
        typer.Option(
            help="The OpenAPI contract, relative to the repo (default: the newest feature's)."
        ),
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option(help="Write the findings, with reproducible requests, here.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the full report here.")
    ] = None,
    max_examples: Annotated[int, typer.Option(help="Generated requests per operation.")] = 25,
) -> int:
    """Validate a running FastAPI service from outside: contract, security, SLA. No model."""
    from cli.validate import run_validate  # lazy: brings in the sandbox and the checker

    return await run_validate(
        repo=repo,
        ref=ref,
        app=app,
        contract=contract,
        markdown=markdown,
        json_out=json_out,
        max_examples=max_examples,
    )


@command(help=DEMO_HELP, cleanup_on_interrupt=True)
async def demo(
    session: Session,
    *,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Take recommended answers and approve automatically."),
    ] = False,
    repo: Annotated[
        str | None, typer.Option(help="Repository to build in (default: a fresh example repo).")
    ] = None,
    gates: Annotated[str, typer.Option(help="Approval gates to stop at.")] = DEMO_GATES,
    model: Annotated[
        str, typer.Option(help="Model id (default: the bundled scripted model).")
    ] = DEFAULT_MODEL,
    data_dir: Annotated[
        Path, typer.Option(help="Where the embedded server's database and demo repos live.")
    ] = Path(".backforge"),
    feature: Annotated[str, typer.Option(help="The feature request.")] = DEMO_FEATURE,
) -> int:
    """Run everything in one process: embedded Temporal server, worker, example repo."""
    from cli.demo import run_demo  # lazy: brings in the worker and every activity

    return await run_demo(
        session, yes=yes, repo=repo, gates=gates, model=model, data_dir=data_dir, feature=feature
    )
