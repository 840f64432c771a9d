"""Asking at the terminal: each answer checked as it is typed, a cancellable stdin reader."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator

import pytest

import cli.asking
from cli.asking import StdinLines, ainput, ask_response, check_answer
from cli.errors import CliError
from contract import HumanQuestion
from tests.support.cli_requests import approval, clarification, escalation, two_questions


@pytest.fixture
def typed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[str], list[str]]]:
    """(lines the person will type, prompts shown), with ``ainput`` reading from the first."""
    lines: list[str] = []
    prompts: list[str] = []

    async def fake_ainput(prompt: str) -> str:
        prompts.append(prompt)
        assert lines, f"asked {prompt!r} with nothing left to type"
        return lines.pop(0)

    monkeypatch.setattr(cli.asking, "ainput", fake_ainput)
    yield lines, prompts
    assert not lines, f"not all typed lines were read: {lines}"


async def test_unknown_option_is_refused_at_once_and_only_that_question_is_asked_again(
    typed: tuple[list[str], list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    lines, prompts = typed
    lines += ["A", "Z", "b"]
    response = await ask_response(two_questions(), "ann")
    assert response.answers == {"Q1": "A", "Q2": "B"}  # Q1's answer was kept
    assert [p.split(" ")[0] for p in prompts] == ["Q1", "Q2", "Q2"]
    out = capsys.readouterr().out
    assert "clarify-4 Q2: unknown option 'Z'; choose one of A, B" in out
    assert "Answer Q2 again." in out
    assert response.responder == "ann"


async def test_enter_takes_the_recommended_answer_and_free_text_is_kept(
    typed: tuple[list[str], list[str]],
) -> None:
    lines, prompts = typed
    lines += [""]
    assert (await ask_response(clarification(), "ann")).answers == {"Q1": "B"}
    assert prompts == ["Q1 [A/B] (Enter = B): "]
    lines += ["shareable, but only inside a team"]
    assert (await ask_response(clarification(), "ann")).answers == {
        "Q1": "shareable, but only inside a team"
    }


async def test_options_only_question_refuses_free_text(
    typed: tuple[list[str], list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    lines, _ = typed
    lines += ["try harder", "ABORT", "be careful with T003"]
    response = await ask_response(escalation(), "ann")
    assert response.answers == {"Q1": "abort"}
    assert response.comment == "be careful with T003"  # escalations ask for guidance
    assert "unknown option 'try harder'; choose one of retry, abort" in capsys.readouterr().out


async def test_question_without_default_needs_an_answer(
    typed: tuple[list[str], list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    request = clarification()
    request.questions[0].recommended = None
    lines, _ = typed
    lines += ["", "A"]
    assert (await ask_response(request, "ann")).answers == {"Q1": "A"}
    assert "An answer is needed here." in capsys.readouterr().out


async def test_approval_yes_and_no_with_required_comment(
    typed: tuple[list[str], list[str]],
) -> None:
    lines, prompts = typed
    lines += ["maybe", "y", ""]
    approved = await ask_response(approval(), "ann")
    assert approved.approved is True and approved.comment is None
    lines += ["n", "", "add paging"]
    rejected = await ask_response(approval(), "ann")
    assert rejected.approved is False and rejected.comment == "add paging"
    assert prompts.count("What should change? (required): ") == 2


def test_check_answer_uses_the_workflow_rules() -> None:
    request = clarification()
    question = request.questions[0]
    assert check_answer(request, question, "B") is None
    assert check_answer(request, question, "a longer free-text answer") is None
    assert "unknown option 'Z'" in (check_answer(request, question, "Z") or "")
    closed = HumanQuestion(id="Q9", text="?", options=question.options, allow_free_text=False)
    assert "choose one of A, B" in (check_answer(request, closed, "maybe") or "")
    assert check_answer(approval(), question, "anything") is None


@pytest.fixture
def piped_stdin(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Replace stdin by the read end of a pipe; yields the write end."""
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "r")
    monkeypatch.setattr(sys, "stdin", reader)
    yield write_fd
    reader.close()
    with contextlib.suppress(OSError):  # the test may have closed it (end of input)
        os.close(write_fd)


async def test_stdin_lines_read_through_the_loop_and_a_prompt_can_be_cancelled(
    piped_stdin: int, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = StdinLines()
    pending = asyncio.create_task(lines.readline("Q1: "))
    for _ in range(5):  # let it reach its wait on the pipe (no I/O needed to get there)
        await asyncio.sleep(0)
    assert not pending.done()
    pending.cancel()  # the request was answered elsewhere
    with pytest.raises(asyncio.CancelledError):
        await pending
    os.write(piped_stdin, b"first\nsecond\n")
    assert await lines.readline("Q1: ") == "first"
    assert await lines.readline("Q2: ") == "second"
    assert "Q1: first\nQ2: second\n" in capsys.readouterr().out  # piped answers are echoed


async def test_closed_stdin_is_a_clear_error(
    piped_stdin: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli.asking, "_stdin", StdinLines())
    os.write(piped_stdin, b"last line without newline")
    os.close(piped_stdin)
    assert await ainput("Q1: ") == "last line without newline"
    with pytest.raises(CliError, match="standard input closed") as info:
        await ainput("Q2: ")
    assert info.value.code == 1
