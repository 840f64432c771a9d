"""Arguments to a FeatureRequest: the contract validates, the CLI explains in one line.

Validation tests point ``--address`` at a closed port: getting the validation
error (exit code 2) instead of "cannot reach Temporal" proves nothing was sent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from cli.arguments import (
    build_request,
    explain_validation_error,
    parse_answers,
    parse_gates,
    parse_phase_models,
)
from cli.errors import CliError
from contract import FeatureRequest
from tests.support.cli_driver import CLOSED, MODEL, error_line, invoke, make_git_repo


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    return make_git_repo(tmp_path / "repo")


def start(repo: Path | str, *extra: str, feature: str = "Build a todo API") -> list[str]:
    return ["--address", CLOSED, "start", feature, "--repo", str(repo), *extra]


@pytest.mark.parametrize(
    ("feature", "problem", "fix"),
    [
        ("", "empty", "describe the feature"),
        ("   \n ", "empty", "describe the feature"),
        ("x" * 5000, "5000 characters", "keep it under 4000"),
    ],
)
def test_start_rejects_bad_feature_text(
    git_repo: Path, feature: str, problem: str, fix: str
) -> None:
    result = invoke(*start(git_repo, feature=feature))
    assert result.exit_code == 2
    line = error_line(result).lower()
    assert line.startswith("error: invalid feature:")
    assert problem in line and fix in line
    assert "x" * 100 not in line  # the over-long text is not echoed back
    assert result.stdout == ""


def test_start_rejects_bad_agent_limits(git_repo: Path) -> None:
    result = invoke(*start(git_repo, "--agent-max-turns", "0"))
    assert result.exit_code == 2
    line = error_line(result)
    assert "invalid --agent-max-turns: 0: input should be greater than or equal to 1" in line


def test_start_rejects_unknown_model(git_repo: Path) -> None:
    result = invoke(*start(git_repo, "--model", "foo:bar"))
    assert result.exit_code == 2
    line = error_line(result)
    assert "invalid --model" in line
    assert "'foo:bar'" in line and "anthropic:" in line and "openai:" in line


def test_start_rejects_missing_transcript(git_repo: Path) -> None:
    # The contract accepts the syntax; the model registry knows the file is missing.
    result = invoke(*start(git_repo, "--model", "scripted:no/such/transcript.yaml"))
    assert result.exit_code == 2
    line = error_line(result)
    assert "invalid --model" in line and "no/such/transcript.yaml" in line


def test_start_rejects_unknown_phase_model(git_repo: Path) -> None:
    result = invoke(*start(git_repo, *MODEL, "--phase-model", "tasks=nope:x"))
    assert result.exit_code == 2
    line = error_line(result)
    assert "invalid --phase-model" in line and "'nope:x'" in line
    result = invoke(*start(git_repo, *MODEL, "--phase-model", "deploy=openai:gpt-5-mini"))
    assert result.exit_code == 2
    line = error_line(result)
    assert "invalid --phase-model: 'deploy'" in line
    assert "PHASE one of summarize, constitution, specify" in line
    result = invoke(*start(git_repo, *MODEL, "--phase-model", "tasks"))
    assert result.exit_code == 2
    assert "PHASE=MODEL_ID" in error_line(result)


def test_start_rejects_repo_that_is_a_file(tmp_path: Path) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("hello")
    result = invoke(*start(file, *MODEL))
    assert result.exit_code == 2
    line = error_line(result)
    assert "invalid --repo" in line
    assert str(file) in line and "file" in line and "directory" in line


def test_start_rejects_non_git_directory(tmp_path: Path) -> None:
    folder = tmp_path / "stuff"
    folder.mkdir()
    (folder / "data.csv").write_text("a,b\n")
    result = invoke(*start(folder, *MODEL))
    assert result.exit_code == 2
    line = error_line(result)
    assert "not a git repository" in line and "git init" in line


def test_start_rejects_empty_repo_argument() -> None:
    result = invoke(*start("  ", *MODEL))
    assert result.exit_code == 2
    assert "invalid --repo: the repository is empty" in error_line(result)


def test_start_rejects_unknown_gate(git_repo: Path) -> None:
    result = invoke(*start(git_repo, *MODEL, "--gates", "spec,deploy"))
    assert result.exit_code == 2
    line = error_line(result)
    assert "invalid --gates: 'deploy'" in line and "spec, plan, delivery" in line


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--budget-usd", "0", "invalid --budget-usd: 0.0: input should be greater than 0"),
        ("--max-fix-rounds", "11", "invalid --max-fix-rounds: 11: input should be less than"),
        ("--remind-every", "0", "invalid --remind-every: 0: input should be greater than 0"),
        ("--clarification-timeout", "-5", "invalid --clarification-timeout: -5"),
    ],
)
def test_start_rejects_out_of_range_numbers(
    git_repo: Path, option: str, value: str, expected: str
) -> None:
    result = invoke(*start(git_repo, *MODEL, option, value))
    assert result.exit_code == 2
    assert expected in error_line(result)


def test_valid_start_reaches_for_the_server_and_names_it(git_repo: Path) -> None:
    # Control for the tests above: with valid arguments the closed port is hit.
    result = invoke(*start(git_repo, *MODEL))
    assert result.exit_code == 1
    line = error_line(result)
    assert CLOSED in line and "python worker.py --dev" in line


def test_build_request_makes_the_repo_absolute_and_splits_options(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(git_repo.parent)
    request = build_request(
        feature="  Build a todo API ",
        repo="repo",
        model="openai:gpt-5",
        gates="Spec, delivery, spec",
        phase_model=["tasks=openai:gpt-5-mini"],
        agent_limits={"max_turns": 7, "max_tokens": 5000, "max_seconds": 60},
    )
    assert request.feature == "Build a todo API"
    assert request.repo_path == str(git_repo)
    assert request.gates == ["spec", "delivery"]
    assert request.phase_models == {"tasks": "openai:gpt-5-mini"}
    assert request.agent_limits.max_turns == 7


def test_explain_names_the_option_of_a_nested_field() -> None:
    with pytest.raises(ValidationError) as info:
        FeatureRequest(feature="x", repo_path="/r", agent_limits={"max_seconds": 1})  # type: ignore[arg-type]
    err = explain_validation_error(info.value)
    assert err.code == 2
    assert err.message.startswith("invalid --agent-max-seconds: 1: input should be greater")


def test_parse_gates_only_splits() -> None:
    assert parse_gates(None) == []
    assert parse_gates("none") == []
    assert parse_gates(" ") == []
    assert parse_gates("Spec, delivery,spec") == ["spec", "delivery"]
    assert parse_gates("deploy") == ["deploy"]  # the contract says it is not a gate


def test_parse_phase_models_only_splits() -> None:
    assert parse_phase_models(["Tasks = openai:gpt-5-mini"]) == {"tasks": "openai:gpt-5-mini"}
    assert parse_phase_models(["deploy=x:y"]) == {"deploy": "x:y"}
    for bad in ("tasks", "=openai:gpt-5", "tasks="):
        with pytest.raises(CliError, match="PHASE=MODEL_ID"):
            parse_phase_models([bad])


def test_parse_answers() -> None:
    assert parse_answers(["Q1=B", "Q2= per-user, private = default ", "q3=a"]) == {
        "Q1": "B",
        "Q2": "per-user, private = default",
        "q3": "a",
    }
    for bad, expected in [
        ("Q1B", "QUESTION_ID=ANSWER"),
        ("=B", "QUESTION_ID=ANSWER"),
        ("1=B", "QUESTION_ID=ANSWER"),
        ("Q1=", "is empty"),
        ("Q1=  ", "is empty"),
    ]:
        with pytest.raises(CliError, match=re.escape(expected)) as info:
            parse_answers([bad])
        assert info.value.code == 2
    with pytest.raises(CliError, match="answered twice"):
        parse_answers(["Q1=A", "Q1=B"])


def test_malformed_answer_and_missing_reject_comment_fail_before_contact() -> None:
    result = invoke("--address", CLOSED, "answer", "feature-x", "clarify-1", "Q1B")
    assert result.exit_code == 2
    assert "QUESTION_ID=ANSWER" in error_line(result)
    result = invoke("--address", CLOSED, "answer", "feature-x", "clarify-1")
    assert result.exit_code == 2
    assert "no answers given" in error_line(result)
    assert "'python starter.py --address 127.0.0.1:1 status feature-x'" in error_line(result)
    result = invoke("--address", CLOSED, "reject", "feature-x", "approve-spec-2")
    assert result.exit_code == 2
    assert "--comment" in error_line(result)
