"""The feature's current details for the Temporal UI, as Markdown.

Rendered from the same ``FeatureStatus`` the ``status`` query returns, so the UI
and the CLI never disagree; "how to answer" comes from ``workflows.human``.
"""

from __future__ import annotations

from contract import FeatureStatus, HumanRequest
from workflows.human import how_to_answer

__all__ = ["current_details"]


def _short(sha: str | None) -> str:
    return sha[:10] if sha else "-"


def _request(request: HumanRequest, workflow_id: str) -> list[str]:
    lines = [
        "",
        f"### Waiting for you: {request.title}",
        "",
        f"Request `{request.id}` ({request.kind})",
        "",
        request.body,
    ]
    for q in request.questions:
        lines += ["", f"**{q.id}**: {q.text}", ""]
        for o in q.options:
            rec = " *(recommended)*" if o.key == q.recommended else ""
            note = f" — {o.implications}" if o.implications else ""
            lines.append(f"- **{o.key}**: {o.answer}{rec}{note}")
    help = how_to_answer(request, workflow_id)
    lines += ["", "Answer with:", "", f"    {help.command}"]
    if help.reject_command:
        lines += ["", "or reject with a comment:", "", f"    {help.reject_command}"]
    lines += ["", "or send the signal `respond` (Temporal UI: **Send a Signal**) with:", ""]
    lines.append(f"    {help.payload}")
    if request.kind == "approval":
        reject = f'{{"request_id": "{request.id}", "approved": false, "comment": "what to change"}}'
        lines += ["", "or, to reject:", "", f"    {reject}"]
    return lines


def current_details(status: FeatureStatus) -> str:
    """What the workflow's page shows under current details."""
    done = sum(t.done for t in status.tasks)
    stage = status.phase + (f" {status.task_id}" if status.task_id else "")
    u = status.usage
    lines = [
        f"**Phase**: {stage} · **State**: {status.state}",
        f"**Branch**: `{status.branch or '(not yet created)'}` at `{_short(status.head_commit)}`",
        f"**Tasks**: {done} of {len(status.tasks)} done · **Fix rounds**: {status.fix_rounds}",
        f"**Usage**: {u.model_calls} calls, {u.input_tokens}+{u.output_tokens} tokens, "
        f"${u.cost_usd:.4f}",
    ]
    if status.test_report is not None:
        t = status.test_report
        lines.append(f"**Tests**: {t.counts} ({'green' if t.ok else 'not green'})")
    if status.message:
        lines += ["", status.message]
    if status.last_ignored_answer:
        lines += ["", f"**Last answer not applied**: {status.last_ignored_answer}"]
    for request in status.open_requests:
        lines += _request(request, status.workflow_id)
    return "\n".join(lines)
