"""The whole pipeline through a real provider adapter, against the local wire server.

The real ``openai`` / ``anthropic`` SDKs, driven by the real provider adapters
inside a real worker on the dev server, talk HTTP to :mod:`tests.support.wire_server`
on 127.0.0.1, which plays the same transcript as the scripted model
(``examples/bookmarks.yaml``). This proves a provider path through every phase:
the call's origin reaches the server on every call, the key reaches the server (and
only the server: never history, run store, commits or logs), and the usage the
server reports is what the workflow adds up.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.models.base import CallOrigin, Model, ModelRequest, ModelResponse
from activities.models.scripted import ScriptedModel, load_transcript, script_key
from contract import PHASE_NAMES, Usage
from tests.support.git import git
from tests.support.pipeline import HISTORY_LIMIT_BYTES, Run, assert_delivered, run_pipeline
from tests.support.temporal import unique
from tests.support.wire_server import WireServer

TRANSCRIPT = "examples/bookmarks.yaml"
SECRET = "sk-test-SECRET-pipeline-123"
#: Phases that talk to a model (test and deliver run code and git only).
MODEL_PHASES = ("constitution", "specify", "plan", "tasks", "implement", "fix", "analyze")


@dataclass(frozen=True)
class Provider:
    name: str
    model: str
    key_env: str
    base_url_env: str
    path: str

    def base_url(self, wire: WireServer) -> str:
        return wire.openai_url if self.name == "openai" else wire.anthropic_url


PROVIDERS = {
    "openai": Provider(
        "openai",
        "openai:bookmarks-local",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "/v1/chat/completions",
    ),
    "anthropic": Provider(
        "anthropic",
        "anthropic:claude-sonnet-4-6",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "/v1/messages",
    ),
}


class Tally:
    """Wraps the model the wire server plays; notes the usage of every reply it sends."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.sent: list[tuple[str, Usage]] = []
        self._lock = threading.Lock()

    async def request(self, request: ModelRequest) -> ModelResponse:
        response = await self.inner.request(request)
        with self._lock:
            self.sent.append((script_key(request.origin), response.usage.model_copy()))
        return response


class LogSink(logging.Handler):
    """Every log record (DEBUG and up, any logger), formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception as err:  # a record that cannot be formatted still counts
            self.lines.append(f"{record.name} unformattable {record.msg!r} {record.args!r} {err}")


#: Loggers that a provider call goes through; set to DEBUG explicitly so a
#: library's own level cannot hide what it would log at DEBUG.
_LOGGERS = (
    "",
    "openai",
    "anthropic",
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
    "temporalio",
    "activities",
)


@contextmanager
def capture_logs() -> Iterator[LogSink]:
    sink = LogSink()
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [lg.level for lg in loggers]
    root = logging.getLogger()
    root.addHandler(sink)
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    try:
        yield sink
    finally:
        root.removeHandler(sink)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@dataclass
class ProviderRun:
    provider: Provider
    run: Run
    wire: WireServer
    tally: Tally
    logs: list[str] = field(default_factory=list)

    @property
    def repo(self) -> Path:
        return self.run.repo


@pytest.fixture(scope="module", params=sorted(PROVIDERS))
async def provider_run(
    request: pytest.FixtureRequest,
    local_env: WorkflowEnvironment,
    tmp_path_factory: pytest.TempPathFactory,
) -> ProviderRun:
    provider = PROVIDERS[request.param]
    repo = tmp_path_factory.mktemp(f"pipeline-{provider.name}") / "service"
    tally = Tally(ScriptedModel(TRANSCRIPT))
    with WireServer() as wire, pytest.MonkeyPatch.context() as mp, capture_logs() as sink:
        wire.play(tally)
        # The worker runs in this process: this is the environment its activities see.
        for other in PROVIDERS.values():
            mp.delenv(other.key_env, raising=False)
            mp.delenv(other.base_url_env, raising=False)
        mp.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
        mp.setenv(provider.key_env, SECRET)
        mp.setenv(provider.base_url_env, provider.base_url(wire))
        run = await run_pipeline(
            local_env, repo, workflow_id=unique(f"provider-{provider.name}"), model=provider.model
        )
    return ProviderRun(
        provider,
        run,
        wire,
        tally,
        sink.lines,
    )


def wire_keys(pr: ProviderRun) -> Counter[str]:
    """Script keys of the model requests the server received, from the tags header."""
    keys: Counter[str] = Counter()
    for recorded in pr.wire.requests:
        assert recorded.path == pr.provider.path, recorded.path
        keys[
            script_key(CallOrigin.model_validate_json(recorded.headers["x-backforge-origin"]))
        ] += 1
    return keys


async def test_pipeline_delivers_through_the_provider(
    provider_run: ProviderRun, tmp_path: Path
) -> None:
    run = provider_run.run
    assert run.result.state == "completed", run.result.message
    assert run.answered == ["clarify-1"]
    # Same checks as the scripted end-to-end run: every phase commit (one per
    # task for implement) on the branch, tasks checked, tests green, artifacts.
    assert_delivered(run, tmp_path)
    assert run.result.test_report is not None and run.result.test_report.ok
    assert {r.phase for r in run.status.completed} == set(PHASE_NAMES)
    assert run.history_bytes < HISTORY_LIMIT_BYTES, run.history_bytes


async def test_every_model_phase_went_over_the_wire(provider_run: ProviderRun) -> None:
    pr = provider_run
    keys = wire_keys(pr)
    # Every scripted turn was asked for exactly once, over HTTP, with its tags.
    expected = {k: len(turns) for k, turns in load_transcript(TRANSCRIPT)["calls"].items()}
    assert dict(keys) == expected
    phases = {re.split(r"[/#]", key)[0] for key in keys}
    assert phases == set(MODEL_PHASES)
    assert Counter(k for k, _ in pr.tally.sent) == keys
    # The key reached the server on every call, as the SDK authenticates
    # (``Authorization: Bearer``; older Anthropic SDKs use ``x-api-key``).
    for recorded in pr.wire.requests:
        sent = {recorded.headers.get("authorization"), recorded.headers.get("x-api-key")}
        assert f"Bearer {SECRET}" in sent or SECRET in sent, recorded.headers
        assert recorded.body["model"] == pr.provider.model.split(":", 1)[1]
        assert recorded.body["stream"] is True
    # No call was answered from the run store: nothing replayed, nothing paid twice.
    assert pr.run.status.usage.replayed_calls == 0


async def test_usage_is_what_the_server_reported(provider_run: ProviderRun) -> None:
    pr = provider_run
    usage = pr.run.result.usage
    sent = [u for _, u in pr.tally.sent]
    assert usage.model_calls == len(pr.wire.requests) == len(sent) > 0
    assert usage.input_tokens == sum(u.input_tokens for u in sent) > 0
    assert usage.output_tokens == sum(u.output_tokens for u in sent) > 0
    assert usage.cache_read_tokens == usage.cache_write_tokens == 0
    assert usage.model_seconds > 0
    assert pr.run.status.usage == usage
    by_phase = pr.run.result.usage_by_phase
    assert sum(u.model_calls for u in by_phase.values()) == usage.model_calls
    for phase in MODEL_PHASES:
        assert by_phase[phase].model_calls == sum(
            1 for k, _ in pr.tally.sent if re.split(r"[/#]", k)[0] == phase
        ), phase
    if pr.provider.name == "anthropic":  # a priced model: the cost is counted too
        assert usage.cost_usd > 0
    else:  # a local model missing from the price table costs 0
        assert usage.cost_usd == 0.0


def _leaks(text: str) -> list[str]:
    return [s for s in (SECRET, "Bearer") if s in text]


async def test_no_key_in_history_run_store_commits_or_logs(provider_run: ProviderRun) -> None:
    pr = provider_run
    history = await pr.run.handle.fetch_history()
    assert _leaks(history.to_json()) == []
    desc = await pr.run.handle.describe()
    assert _leaks(str(desc.raw_description)) == []
    # The run store (records under refs/backforge/runs/): one answered record per live
    # call, none carrying the key; nor anything else Backforge keeps under refs/backforge/.
    refs = git(pr.repo, "for-each-ref", "--format=%(refname)", "refs/backforge/").splitlines()
    answered = [
        r for r in refs if r.startswith("refs/backforge/runs/") and not r.endswith("-started")
    ]
    assert len(answered) == len(pr.wire.requests)
    for ref in refs:
        assert _leaks(git(pr.repo, "cat-file", "-p", ref)) == [], ref
    # What was committed, on every branch, and what is in the working tree.
    assert _leaks(git(pr.repo, "log", "-p", "--all")) == []
    for name in git(pr.repo, "ls-files", "--cached", "--others").splitlines():
        path = pr.repo / name
        if path.is_file():
            assert _leaks(path.read_text(encoding="utf-8", errors="replace")) == [], name
    # Logs at DEBUG from every logger while the pipeline ran.
    # (The SDK's own DEBUG records, e.g. "Request options", prove DEBUG was captured.)
    sdk = f"{pr.provider.name}._base_client DEBUG "
    assert any(line.startswith(sdk) for line in pr.logs), pr.logs[:20]
    leaked = [line for line in pr.logs if _leaks(line)]
    assert leaked == []
