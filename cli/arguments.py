"""From command-line arguments to contract models.

``FeatureRequest`` (in ``contract``) is the one validator of a request: this
module only splits the CLI's own syntax (``PHASE=MODEL``, ``spec,delivery``,
``Q1=B``), builds the request, and turns a pydantic ``ValidationError`` into one
line naming the option, what was wrong and what to do. What the contract cannot
know is checked here, after it: that the repository path is usable and that a
scripted transcript exists (both import activities, so lazily).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from cli.errors import CliError
from contract import GATES, PHASE_NAMES, FeatureRequest

__all__ = [
    "parse_answers",
    "parse_gates",
    "parse_phase_models",
    "build_request",
    "explain_validation_error",
    "check_repo",
]

#: Contract field path -> the option (or argument) a person typed.
OPTION_OF_FIELD = {
    "feature": "FEATURE",
    "repo_path": "--repo",
    "base_ref": "--base",
    "model": "--model",
    "phase_models": "--phase-model",
    "gates": "--gates",
    "max_fix_rounds": "--max-fix-rounds",
    "budget_usd": "--budget-usd",
    "clarification_timeout_s": "--clarification-timeout",
    "remind_every_s": "--remind-every",
    "agent_limits.max_turns": "--agent-max-turns",
    "agent_limits.max_tokens": "--agent-max-tokens",
    "agent_limits.max_seconds": "--agent-max-seconds",
    "parallel_tasks": "--parallel-tasks",
}
#: What to do, for options whose error message does not already say it.
_WHAT_TO_DO = {
    "--gates": f"Pass a comma-separated list of {', '.join(GATES)} (or 'none')",
    "--phase-model": (
        f"Write it as PHASE=MODEL_ID with PHASE one of {', '.join(PHASE_NAMES)}, "
        "e.g. --phase-model tasks=openai:gpt-5-mini"
    ),
    "--max-fix-rounds": "Pass e.g. --max-fix-rounds 2",
    "--budget-usd": "Pass e.g. --budget-usd 5",
    "--clarification-timeout": "Pass a number of seconds, e.g. --clarification-timeout 3600",
    "--remind-every": "Pass a number of seconds, e.g. --remind-every 600",
}
_QUESTION_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


def parse_gates(spec: str | None) -> list[str]:
    """``"spec, delivery"`` -> ``["spec", "delivery"]``; ``None``, ``""`` or ``"none"`` -> ``[]``.

    Only splits; ``FeatureRequest`` says whether the names are gates.
    """
    if spec is None:
        return []
    names = [name.strip().lower() for name in spec.split(",") if name.strip()]
    return [] if names == ["none"] else list(dict.fromkeys(names))


def parse_phase_models(values: Sequence[str]) -> dict[str, str]:
    """``["tasks=openai:gpt-5-mini"]`` -> ``{"tasks": "openai:gpt-5-mini"}``.

    Only splits; ``FeatureRequest`` says whether the phases and model ids are valid.

    Raises:
        CliError: A value is not ``PHASE=MODEL_ID``.
    """
    result: dict[str, str] = {}
    for value in values:
        phase, sep, model_id = value.partition("=")
        if not sep or not phase.strip() or not model_id.strip():
            raise CliError(
                f"cannot read --phase-model {value!r}. Write it as PHASE=MODEL_ID, "
                "e.g. --phase-model tasks=openai:gpt-5-mini"
            )
        result[phase.strip().lower()] = model_id.strip()
    return result


def parse_answers(values: Sequence[str]) -> dict[str, str]:
    """``["Q1=B", "Q2=free text"]`` -> ``{"Q1": "B", "Q2": "free text"}``.

    Raises:
        CliError: An argument is not ``QUESTION_ID=ANSWER``, has an empty answer,
            or names a question twice.
    """
    answers: dict[str, str] = {}
    for value in values:
        qid, sep, answer = value.partition("=")
        qid, answer = qid.strip(), answer.strip()
        if not sep or not _QUESTION_ID.match(qid):
            raise CliError(
                f"cannot read answer {value!r}. Write each answer as QUESTION_ID=ANSWER, "
                'e.g. Q1=B or Q2="free text"'
            )
        if not answer:
            raise CliError(
                f"answer {value!r} is empty. Give an option key or text after '=', e.g. {qid}=A"
            )
        if qid in answers:
            raise CliError(f"question {qid} is answered twice. Give one answer per question")
        answers[qid] = answer
    return answers


def explain_validation_error(err: ValidationError) -> CliError:
    """One line for the first problem pydantic found: option, what was wrong, what to do."""
    first = err.errors()[0]
    loc = [str(part) for part in first.get("loc", ()) if part != "[key]"]
    option = next(
        (
            OPTION_OF_FIELD[".".join(loc[:n])]
            for n in range(len(loc), 0, -1)
            if ".".join(loc[:n]) in OPTION_OF_FIELD
        ),
        ".".join(loc) or "request",
    )
    message = str(first.get("msg", "invalid value"))
    if message.startswith("Value error, "):  # our own validators say what and what to do
        what = message.removeprefix("Value error, ")
    else:
        value: Any = first.get("input")
        shown = f"{value!r}: " if isinstance(value, str | int | float) else ""
        what = f"{shown}{message[:1].lower()}{message[1:]}"
    todo = _WHAT_TO_DO.get(option, "")
    return CliError(f"invalid {option}: {what}" + (f". {todo}" if todo else ""))


def check_repo(repo: str, base_ref: str | None = None) -> None:
    """Check that ``repo`` is reachable and can hold a feature, and that ``base_ref`` exists.

    Raises:
        CliError: What is wrong with it and what to do.
    """
    from activities.workspace import preflight  # lazy: activities are heavy

    try:
        preflight(repo, base_ref)
    except ValueError as err:
        option = "--base" if str(err).startswith("--base") else "--repo"
        raise CliError(f"invalid {option}: {str(err).removeprefix('--base ')}") from None


def _check_models(request: FeatureRequest) -> None:
    """Check that each model id resolves offline (a scripted transcript exists)."""
    from activities.models.registry import validate_model_id  # lazy: activities are heavy

    uses = {request.model: "--model"}
    for phase, model_id in request.phase_models.items():
        uses.setdefault(model_id, f"--phase-model {phase}")
    for model_id, option in uses.items():
        try:
            validate_model_id(model_id)
        except ValueError as err:
            raise CliError(f"invalid {option}: {err}") from None


def build_request(
    *,
    feature: str,
    repo: str,
    model: str,
    gates: str | None = None,
    phase_model: Sequence[str] = (),
    check_repo_path: bool = True,
    **options: Any,
) -> FeatureRequest:
    """The workflow input from the command's arguments, validated before any server contact.

    Args:
        feature: The feature text.
        repo: The repository path as typed; it is made absolute.
        model: The model id.
        gates: ``--gates`` as typed.
        phase_model: The ``--phase-model`` values as typed.
        check_repo_path: Check that the repository is usable (the demo creates
            its repository after validating, and checks it then).
        **options: Further ``FeatureRequest`` fields (``max_fix_rounds``,
            ``agent_limits`` as a dict, ...), given as typed.

    Raises:
        CliError: One line naming the argument, what was wrong and what to do.
    """
    repo_path = repo.strip()
    if repo_path:
        from activities.workspace import Remote  # lazy: activities are heavy

        repo_path = Remote.parse(repo_path).url  # a local path made absolute; URLs as given
    try:
        request = FeatureRequest(
            feature=feature,
            repo_path=repo_path,
            model=model.strip(),
            gates=parse_gates(gates),  # type: ignore[arg-type]
            phase_models=parse_phase_models(phase_model),  # type: ignore[arg-type]
            **options,
        )
    except ValidationError as err:
        raise explain_validation_error(err) from None
    _check_models(request)
    if check_repo_path:
        check_repo(request.repo_path, request.base_ref)
    return request
