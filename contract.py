"""The wire contract: every pydantic model that crosses a Temporal boundary.

This module is the bottom of the dependency stack. It imports nothing from this
project, so the workflow sandbox, the activities and the CLI can all load it
freely. Payloads here carry references (paths, commit SHAs, ids) and short
summaries, never generated content.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from temporalio.common import SearchAttributeKey

__all__ = [
    "TASK_QUEUE",
    "SANDBOX_QUEUE_SUFFIX",
    "WORKFLOW_TYPE",
    "DEFAULT_MODEL",
    "MAX_FEATURE_CHARS",
    "PHASE_NAMES",
    "GATES",
    "SA_PHASE",
    "SA_AWAITING_HUMAN",
    "SA_FEATURE",
    "SEARCH_ATTRIBUTES",
    "REJECTED_ANSWER",
    "PhaseName",
    "Stage",
    "GateName",
    "FixReason",
    "RequestKind",
    "FeatureState",
    "Compact",
    "Usage",
    "AgentBudget",
    "GatePolicy",
    "FeatureRequest",
    "WorkspaceInfo",
    "TaskItem",
    "TestReport",
    "ValidationSummary",
    "PhaseInput",
    "PhaseOutcome",
    "HumanOption",
    "HumanQuestion",
    "HumanRequest",
    "HumanResponse",
    "RespondResult",
    "PhaseRecord",
    "FeatureStatus",
    "FeatureResult",
    "DeliveryFacts",
    "MergeInput",
    "MergeResult",
    "ResetInput",
]

TASK_QUEUE = "backforge"
#: Sandboxed runs (tests, validation) go to ``<task queue><SANDBOX_QUEUE_SUFFIX>``: CPU-bound
#: work with slots sized to the cores, apart from the model-bound work.
SANDBOX_QUEUE_SUFFIX = "-sandbox"
WORKFLOW_TYPE = "BackendFeatureWorkflow"
DEFAULT_MODEL = "scripted:examples/bookmarks.yaml"
MAX_FEATURE_CHARS = 4000

#: Every phase activity. ``fix`` is a step the workflow runs inside test/analyze/review.
PhaseName = Literal[
    "summarize",
    "constitution",
    "specify",
    "plan",
    "tasks",
    "implement",
    "test",
    "fix",
    "validate",
    "analyze",
    "deliver",
]
PHASE_NAMES: tuple[PhaseName, ...] = get_args(PhaseName)
#: Where a feature is: a phase, or one of the steps around the phases.
Stage = Literal[
    "starting",
    "prepare",
    "summarize",
    "constitution",
    "specify",
    "plan",
    "tasks",
    "implement",
    "merge",
    "test",
    "fix",
    "validate",
    "analyze",
    "deliver",
    "done",
]
GateName = Literal["spec", "plan", "delivery"]
GATES: tuple[GateName, ...] = get_args(GateName)
#: Why the fix step runs; each reason has its own prompt and evidence.
FixReason = Literal["tests", "validation", "analysis", "review"]
RequestKind = Literal["clarification", "escalation", "approval", "budget"]
FeatureState = Literal["running", "waiting", "completed", "failed", "cancelled", "aborted"]

#: The error type of an answer the ``respond`` update refuses (shown without a stack trace).
REJECTED_ANSWER = "RejectedAnswer"

SA_PHASE = SearchAttributeKey.for_keyword("BackforgePhase")
SA_AWAITING_HUMAN = SearchAttributeKey.for_bool("BackforgeAwaitingHuman")
SA_FEATURE = SearchAttributeKey.for_text("BackforgeFeature")
SEARCH_ATTRIBUTES = (SA_PHASE, SA_AWAITING_HUMAN, SA_FEATURE)

_MODEL_ID = re.compile(r"^(scripted|anthropic|openai):\S+$")


class Compact(BaseModel):
    """A model whose JSON leaves out fields that still hold their default value.

    Used for payloads that repeat in every history event (phase inputs and
    outcomes, usage), so history stays small; parsing fills the defaults back in.
    """

    @model_serializer(mode="wrap")
    def _drop_defaults(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if not isinstance(data, dict):
            return data
        for name, field in type(self).model_fields.items():
            if field.is_required() or name not in data:
                continue
            default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
            if isinstance(default, BaseModel):
                default = default.model_dump(mode="json")
            if data[name] == default:
                del data[name]
        return data


class Usage(Compact):
    """Token usage and cost, for one model call or summed over many."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    #: Calls paid for, including ``lost_calls``.
    model_calls: int = 0
    #: Calls answered from the run store instead of the model (retried attempts).
    replayed_calls: int = 0
    #: Calls sent by an attempt that died before their answer was recorded: paid for
    #: (counted in ``model_calls``), their tokens unknown.
    lost_calls: int = 0
    model_seconds: float = 0.0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            model_calls=self.model_calls + other.model_calls,
            replayed_calls=self.replayed_calls + other.replayed_calls,
            lost_calls=self.lost_calls + other.lost_calls,
            model_seconds=round(self.model_seconds + other.model_seconds, 6),
            cost_usd=round(self.cost_usd + other.cost_usd, 6),
        )


class AgentBudget(Compact):
    """Limits for one agent conversation (a phase, or one task); hitting one escalates."""

    max_turns: int = Field(default=40, ge=1, le=500)
    #: Input (including cached) plus output tokens.
    max_tokens: int = Field(default=2_000_000, ge=1000)
    max_seconds: int = Field(default=1800, ge=10)


class GatePolicy(Compact):
    """When a gate approves itself instead of asking a person (for unattended runs).

    Every condition set must hold; otherwise the gate asks a person as usual. Tests and
    findings only count at the delivery gate (the spec and plan gates come before them).
    """

    #: The money spent so far must be under this.
    max_cost_usd: float | None = Field(default=None, gt=0)
    #: The last test run is green (delivery gate).
    require_green_tests: bool = True
    #: No blocking validation or analysis finding is left (delivery gate).
    require_no_blocking_findings: bool = True


class FeatureRequest(BaseModel):
    """What a user asks for: the workflow's only input, and the one place it is validated."""

    feature: str
    #: The repository: a local path or any git URL (file://, ssh, https). It is used as a
    #: remote: Backforge never touches its working tree, index, HEAD or existing branches.
    repo_path: str
    #: Branch or tag the feature starts from (default: the remote's default branch).
    base_ref: str | None = None
    model: str = DEFAULT_MODEL
    #: Per-phase model overrides, e.g. ``{"tasks": "openai:gpt-5-mini"}``.
    phase_models: dict[PhaseName, str] = Field(default_factory=dict)
    gates: list[GateName] = Field(default_factory=list)
    #: Gates that approve themselves when their policy's conditions hold.
    auto_gates: dict[GateName, GatePolicy] = Field(default_factory=dict)
    max_fix_rounds: int = Field(default=2, ge=0, le=10)
    budget_usd: float | None = Field(default=None, gt=0)
    #: Seconds before an unanswered clarification takes the recommended answers
    #: (None: wait for a person however long it takes).
    clarification_timeout_s: int | None = Field(default=None, gt=0)
    #: Seconds between reminders on an open human request (None: no reminders).
    remind_every_s: int | None = Field(default=None, gt=0)
    agent_limits: AgentBudget = Field(default_factory=AgentBudget)
    #: Run consecutive ``[P]`` tasks whose files do not overlap as concurrent activities.
    parallel_tasks: bool = True
    #: Seconds without a heartbeat before a phase attempt is presumed lost with its
    #: worker and retried elsewhere (None: the policy's default).
    heartbeat_timeout_s: int | None = Field(default=None, ge=2, le=3600)

    @field_validator("feature")
    @classmethod
    def _feature_text(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("the feature request is empty; describe the feature in a sentence")
        if len(value) > MAX_FEATURE_CHARS:
            raise ValueError(
                f"the feature request is {len(value)} characters; keep it under "
                f"{MAX_FEATURE_CHARS} and put details in the clarification answers"
            )
        return value

    @field_validator("repo_path")
    @classmethod
    def _repo_path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the repository is empty; pass --repo PATH")
        return value.strip()

    @field_validator("model")
    @classmethod
    def _model_id(cls, value: str) -> str:
        if not _MODEL_ID.match(value):
            raise ValueError(
                f"unknown model id {value!r}; use scripted:<transcript>, "
                "anthropic:<model> or openai:<model>"
            )
        return value

    @field_validator("phase_models")
    @classmethod
    def _phase_models(cls, value: dict[PhaseName, str]) -> dict[PhaseName, str]:
        for model_id in value.values():
            cls._model_id(model_id)
        return value

    def model_for(self, phase: PhaseName) -> str:
        return self.phase_models.get(phase, self.model)


class WorkspaceInfo(Compact):
    """Where the feature lives: returned by the prepare step."""

    repo_path: str
    branch: str
    feature_dir: str  # e.g. specs/001-bookmarks-api (relative to repo)
    base_commit: str  # commit the branch was created from


class TaskItem(Compact):
    """One line of tasks.md, as the workflow needs it (no long text)."""

    id: str  # T001
    parallel: bool = False
    story: str | None = None  # US1
    files: list[str] = Field(default_factory=list)
    #: The task's description, cut for display (the phase reads the full line from tasks.md).
    title: str = ""
    done: bool = False


class TestReport(Compact):
    """Outcome of one run of the generated project's tests."""

    __test__ = False  # not a pytest test class

    passed: int = 0
    failed: int = 0
    errors: int = 0
    exit_code: int = 0
    timed_out: bool = False
    duration_s: float = 0.0
    #: Repo-relative path of the committed test output (full log stays in the repo).
    output_path: str = ""
    #: Last lines of the output, short enough for history.
    tail: str = ""
    #: Why Backforge does not trust the run beyond failing tests (exit code, counts and
    #: its own records of each test disagree, a hook rewrote a result...).
    problems: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.exit_code == 0
            and self.failed == 0
            and self.errors == 0
            and self.passed > 0
            and not self.problems
        )

    @property
    def counts(self) -> str:
        return f"{self.passed} passed, {self.failed} failed, {self.errors} errors"


class ValidationSummary(Compact):
    """What history carries about a validation: counts and a reference, never findings."""

    passed: bool
    blocking: int
    findings: int
    by_severity: dict[str, int] = Field(default_factory=dict)
    operations_checked: int = 0
    operations_total: int = 0
    #: Up to three blocking checks with their endpoint, 100 characters each.
    top: list[str] = Field(default_factory=list)
    #: INFERRED requirement ids for the delivery gate to put before a person.
    inferred: list[str] = Field(default_factory=list)
    report_path: str | None = None


class PhaseInput(Compact):
    """Input of every phase activity."""

    workflow_id: str
    phase: PhaseName
    #: 1-based count of how many times this phase (or this task) has run in the
    #: feature. With the phase name it keys the run store, so a retried
    #: attempt of the same invocation replays the calls already paid for.
    invocation: int = 1
    workspace: WorkspaceInfo
    base_commit: str
    model: str
    #: Extra instructions from a person: a rejection comment, escalation guidance.
    guidance: str | None = None
    task_id: str | None = None
    #: Answers to record (clarify): question text -> answer text.
    clarifications: list[tuple[str, str]] = Field(default_factory=list)
    #: Why a fix step runs (fix only).
    fix_reason: FixReason | None = None
    #: Repo-relative paths of the evidence a fix step starts from (failing test output...).
    evidence_paths: list[str] = Field(default_factory=list)
    #: The workflow's date (YYYY-MM-DD), for dated records such as clarification sessions.
    today: str = ""
    limits: AgentBudget = Field(default_factory=AgentBudget)
    #: Work in a separate worktree at ``base_commit`` (parallel tasks); the
    #: workflow merges the resulting commit onto the branch afterwards.
    worktree: bool = False

    @property
    def run_key(self) -> str:
        task = f"-{self.task_id}" if self.task_id else ""
        return f"{self.phase}{task}-{self.invocation}"


class PhaseOutcome(Compact):
    """Small result of a phase: a commit, paths and a summary."""

    phase: PhaseName
    commit: str
    artifacts: list[str] = Field(default_factory=list)
    summary: str = ""
    usage: Usage = Field(default_factory=Usage)
    human_requests: list[HumanRequest] = Field(default_factory=list)
    tasks: list[TaskItem] = Field(default_factory=list)
    test_report: TestReport | None = None
    #: Findings from analyze that must be fixed before delivery.
    blocking_findings: int = 0
    #: Delivery: the pull (merge) request opened for the branch, or how to open one.
    pull_request: str | None = None
    #: Validation: what the black-box checks found (counts; the findings are in the repo).
    validation: ValidationSummary | None = None


class HumanOption(BaseModel):
    key: str  # "A", "B", ...
    answer: str
    implications: str = ""


class HumanQuestion(BaseModel):
    id: str  # "Q1"
    text: str
    options: list[HumanOption] = Field(default_factory=list)
    recommended: str | None = None
    #: Whether an answer other than an option key is accepted.
    allow_free_text: bool = True

    def answer_text(self, answer: str) -> str:
        """What an answer means: the option's text for a key, the answer itself otherwise."""
        for option in self.options:
            if option.key == answer:
                return option.answer
        return answer

    @property
    def default_answer(self) -> str:
        """The answer taken when a person accepts the default: the recommended option,
        else the first option, else a note asking the agent to decide."""
        if self.recommended:
            return self.recommended
        if self.options:
            return self.options[0].key
        return "Use your best judgement and note the assumption."


class HumanRequest(BaseModel):
    """A question to a person; the workflow waits until it is answered."""

    id: str
    kind: RequestKind
    phase: PhaseName | GateName
    title: str
    body: str = ""
    questions: list[HumanQuestion] = Field(default_factory=list)
    created_at: datetime | None = None
    remind_every_s: int | None = None
    deadline: datetime | None = None
    #: What happens at the deadline: take the recommended answers, or abort.
    on_timeout: Literal["recommended", "abort", "wait"] = "wait"
    reminders_sent: int = 0


class HumanResponse(BaseModel):
    """A person's answer to a ``HumanRequest``."""

    request_id: str
    answers: dict[str, str] = Field(default_factory=dict)
    approved: bool | None = None
    comment: str | None = None
    responder: str | None = None

    @model_validator(mode="after")
    def _strip(self) -> HumanResponse:
        self.answers = {k.strip(): v.strip() for k, v in self.answers.items()}
        return self


class RespondResult(BaseModel):
    request_id: str
    accepted: bool
    message: str


class PhaseRecord(Compact):
    """One completed phase (or task) on the branch."""

    phase: PhaseName
    commit: str
    summary: str = ""
    task_id: str | None = None
    finished_at: datetime | None = None


class FeatureStatus(BaseModel):
    """What ``status`` returns: everything a person needs at a glance."""

    workflow_id: str
    feature: str
    state: FeatureState
    phase: Stage
    #: The task being implemented, when ``phase`` is ``implement``.
    task_id: str | None = None
    repo_path: str = ""
    branch: str | None = None
    feature_dir: str | None = None
    #: The branch's last good commit: where it stays if the feature stops now.
    head_commit: str | None = None
    completed: list[PhaseRecord] = Field(default_factory=list)
    tasks: list[TaskItem] = Field(default_factory=list)
    open_requests: list[HumanRequest] = Field(default_factory=list)
    answered_requests: list[str] = Field(default_factory=list)
    #: The last answer sent by signal that could not be applied, and why.
    last_ignored_answer: str | None = None
    usage: Usage = Field(default_factory=Usage)
    usage_by_phase: dict[PhaseName, Usage] = Field(default_factory=dict)
    models: dict[PhaseName, str] = Field(default_factory=dict)
    budget_usd: float | None = None
    test_report: TestReport | None = None
    validation: ValidationSummary | None = None
    fix_rounds: int = 0
    message: str = ""


class FeatureResult(Compact):
    workflow_id: str
    state: Literal["completed", "aborted"]
    branch: str
    head_commit: str
    report_path: str | None = None
    #: The pull (merge) request opened for the branch, or the command that opens one.
    pull_request: str | None = None
    commits: list[PhaseRecord] = Field(default_factory=list)
    test_report: TestReport | None = None
    validation: ValidationSummary | None = None
    usage: Usage = Field(default_factory=Usage)
    usage_by_phase: dict[PhaseName, Usage] = Field(default_factory=dict)
    message: str = ""


class DeliveryFacts(Compact):
    """What the report needs from the workflow; commits are read from git itself."""

    usage: Usage = Field(default_factory=Usage)
    usage_by_phase: dict[PhaseName, Usage] = Field(default_factory=dict)
    fix_rounds: int = 0
    answered_requests: list[str] = Field(default_factory=list)
    test_report: TestReport | None = None
    validation: ValidationSummary | None = None
    #: Gates a policy approved without a person, and why.
    gate_decisions: list[str] = Field(default_factory=list)
    notes: str = ""


class MergeInput(BaseModel):
    """Commits of parallel tasks to put on the branch, in task order."""

    workflow_id: str
    workspace: WorkspaceInfo
    base_commit: str
    commits: list[tuple[str, str]]  # (task id, commit made in the task's worktree)


class MergeResult(Compact):
    head: str
    merged: list[tuple[str, str]] = Field(default_factory=list)  # (task id, commit on the branch)
    #: Tasks not merged (a conflict, and every task after it): run them one by one.
    conflicts: list[str] = Field(default_factory=list)


class ResetInput(BaseModel):
    """Put the branch back at its last good commit (after a cancel or abort)."""

    repo_path: str
    branch: str
    commit: str


PhaseOutcome.model_rebuild()
