"""Asking a person at the terminal: a cancellable stdin reader and reading one response.

Reading stdin goes through the event loop, so the worker and the embedded
server keep running while a person types, and a pending prompt can give way
when the request is answered elsewhere (another terminal, the Temporal UI).

Each answer is checked as soon as it is typed, by the same desk the workflow
validates with (``workflows.human.HumanDesk``): an unknown option is refused
for that question alone and asked again, keeping the answers already given.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading

from rich.text import Text

from cli.errors import EXIT_FAILED, CliError
from cli.render import console
from cli.responding import match_option
from contract import HumanQuestion, HumanRequest, HumanResponse

__all__ = ["StdinLines", "ainput", "check_answer", "ask_question", "ask_response"]


def _settle(future: asyncio.Future[str], value: str | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value or "")


class StdinLines:
    """Lines from stdin read through the event loop, so a pending prompt can be cancelled.

    Where the loop cannot watch stdin (Windows, a regular file, test runners),
    ``input()`` runs in a daemon thread instead.
    """

    def __init__(self) -> None:
        self.buffer = b""
        self.eof = False

    async def readline(self, prompt: str) -> str:
        """One line without its newline.

        Raises:
            EOFError: stdin is closed and nothing is left in the buffer.
        """
        loop = asyncio.get_running_loop()
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            return await self._thread_input(prompt)
        sys.stdout.write(prompt)
        sys.stdout.flush()
        while b"\n" not in self.buffer:
            if self.eof:
                if not self.buffer:
                    raise EOFError
                self.buffer += b"\n"  # last line without a newline
                break
            ready: asyncio.Future[str] = loop.create_future()
            try:
                loop.add_reader(fd, _settle, ready, "", None)
            except (NotImplementedError, PermissionError, OSError, ValueError):
                return await self._thread_input("")
            try:
                await ready
            finally:
                loop.remove_reader(fd)
            chunk = os.read(fd, 4096)
            self.eof = not chunk
            self.buffer += chunk
        raw, _, self.buffer = self.buffer.partition(b"\n")
        line = raw.decode(errors="replace").rstrip("\r")
        if not os.isatty(fd):  # piped answers: show them, as a terminal would
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        return line

    @staticmethod
    async def _thread_input(prompt: str) -> str:
        # A daemon thread (not asyncio.to_thread): Ctrl-C must not wait for it.
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()

        def read() -> None:
            try:
                value = input(prompt)
            except BaseException as err:  # EOFError, KeyboardInterrupt
                loop.call_soon_threadsafe(_settle, future, None, err)
                return
            loop.call_soon_threadsafe(_settle, future, value, None)

        threading.Thread(target=read, daemon=True, name="backforge-input").start()
        return await future


_stdin = StdinLines()


async def ainput(prompt: str) -> str:
    """One line from stdin without blocking the event loop.

    Raises:
        CliError: Exit 1 when stdin closes while a question waits for an answer.
    """
    try:
        return await _stdin.readline(prompt)
    except EOFError:
        raise CliError(
            "standard input closed while a question was waiting for an answer. "
            "Run interactively, or pass --yes to take the recommended answers",
            code=EXIT_FAILED,
        ) from None


def check_answer(request: HumanRequest, question: HumanQuestion, answer: str) -> str | None:
    """Why the workflow would refuse ``answer`` to ``question`` (None: it would take it).

    Asks the workflow's own desk about this one question, so the terminal and
    the ``respond`` update apply the same rules. Checks that need the
    workflow's state (a budget above what was spent) are left to the update.
    """
    if request.kind == "approval":
        return None  # approvals are decided by approved=yes/no, checked when sent
    from workflows.human import answer_problem  # lazy: imports the workflow SDK

    return answer_problem(request, question, answer)


async def ask_question(request: HumanRequest, question: HumanQuestion) -> str:
    """Ask one question until the answer is one the workflow accepts; Enter takes the default."""
    keys = "/".join(option.key for option in question.options)
    default = question.recommended or ""
    hint = f" [{keys}]" if keys else ""
    if default:
        hint += f" (Enter = {default})"
    while True:
        raw = (await ainput(f"{question.id}{hint}: ")).strip()
        if not raw and not default:
            console.print(Text("An answer is needed here.", style="red"))
            continue
        answer = (match_option(question, raw) or raw) if raw else default
        problem = check_answer(request, question, answer)
        if problem is None:
            return answer
        console.print(Text(f"{problem}. Answer {question.id} again.", style="red"))


async def ask_response(request: HumanRequest, responder: str) -> HumanResponse:
    """Read a whole response to ``request`` at the terminal."""
    if request.kind == "approval" and not request.questions:
        while True:
            raw = (await ainput("Approve? [Y/n]: ")).strip().lower()
            if raw in ("", "y", "yes"):
                comment = (await ainput("Comment (optional): ")).strip() or None
                return HumanResponse(
                    request_id=request.id, approved=True, comment=comment, responder=responder
                )
            if raw in ("n", "no"):
                comment = ""
                while not comment:
                    comment = (await ainput("What should change? (required): ")).strip()
                return HumanResponse(
                    request_id=request.id, approved=False, comment=comment, responder=responder
                )
            console.print(Text("Answer y or n.", style="red"))
    answers = {}
    for question in request.questions:
        answers[question.id] = await ask_question(request, question)
    approved = None
    comment = None
    if request.kind == "approval":
        approved = (await ainput("Approve? [Y/n]: ")).strip().lower() not in ("n", "no")
    if request.kind == "escalation" or approved is False:
        comment = (await ainput("Guidance / comment (optional): ")).strip() or None
    return HumanResponse(
        request_id=request.id,
        answers=answers,
        approved=approved,
        comment=comment,
        responder=responder,
    )
