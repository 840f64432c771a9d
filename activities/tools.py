"""The agent's toolset: look at, search and edit the workspace, run the tests.

Every tool returns text for the model. Anything the model got wrong (a missing
file, a non-unique replacement, a path outside the repo) comes back as a tool
error with a message saying what to do, never as an exception, and leaves the
disk unchanged.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Awaitable, Callable
from typing import Any

from activities.heartbeat import keep_alive
from activities.models.base import ToolCallPart, ToolResultPart, ToolSpec
from activities.project_tests import format_for_model, run_project_tests
from activities.workspace import PathRefused, Workspace, WorkspaceError

__all__ = ["Toolbox", "ToolError", "TestRunner", "test_runner_toolbox"]

_MAX_LIST = 400
_MAX_VIEW_LINES = 800
_MAX_MATCHES = 100
_MAX_TEST_OUTPUT = 12_000
_SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".pytest_cache"}


class ToolError(Exception):
    """A tool call the model must correct; the message goes back to the model."""


def _schema(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


_STR = {"type": "string"}
_INT = {"type": "integer"}

_BASE_SPECS = [
    ToolSpec(
        name="list_files",
        description="List files under a directory of the repository (bounded depth).",
        parameters=_schema({"path": _STR, "depth": _INT}, []),
    ),
    ToolSpec(
        name="view_file",
        description="Show a file with line numbers; optionally only lines start_line..end_line.",
        parameters=_schema({"path": _STR, "start_line": _INT, "end_line": _INT}, ["path"]),
    ),
    ToolSpec(
        name="search",
        description="Search file contents with a regular expression; returns path:line: text.",
        parameters=_schema({"pattern": _STR, "path": _STR, "glob": _STR}, ["pattern"]),
    ),
    ToolSpec(
        name="create_file",
        description="Create a file, or overwrite it, with the given full content.",
        parameters=_schema({"path": _STR, "content": _STR}, ["path", "content"]),
    ),
    ToolSpec(
        name="replace_text",
        description="Replace old_text with new_text in a file. old_text must occur exactly once.",
        parameters=_schema(
            {"path": _STR, "old_text": _STR, "new_text": _STR}, ["path", "old_text", "new_text"]
        ),
    ),
    ToolSpec(
        name="insert_text",
        description="Insert text after line after_line (0 inserts at the top).",
        parameters=_schema(
            {"path": _STR, "after_line": _INT, "text": _STR}, ["path", "after_line", "text"]
        ),
    ),
    ToolSpec(
        name="delete_file",
        description="Delete a file.",
        parameters=_schema({"path": _STR}, ["path"]),
    ),
]

_RUN_TESTS = ToolSpec(
    name="run_tests",
    description="Run the project's tests (all, or the given pytest node ids) and return the output.",
    parameters=_schema({"tests": {"type": "array", "items": _STR}}, []),
)

TestRunner = Callable[[list[str]], Awaitable[str]]


class Toolbox:
    """Tools bound to one workspace. ``run_tests`` is offered only when a runner is given."""

    def __init__(self, ws: Workspace, *, run_tests: TestRunner | None = None) -> None:
        self.ws = ws
        self._run_tests = run_tests
        self.changed: set[str] = set()

    def specs(self) -> list[ToolSpec]:
        return [*_BASE_SPECS, *([_RUN_TESTS] if self._run_tests else [])]

    async def execute(self, call: ToolCallPart) -> ToolResultPart:
        handler = getattr(self, f"_tool_{call.name}", None)
        if handler is None or (call.name == "run_tests" and self._run_tests is None):
            names = ", ".join(s.name for s in self.specs())
            return self._result(call, f"unknown tool {call.name!r}; available: {names}", True)
        try:
            text = await handler(**call.arguments)
        except (TypeError, ValueError) as err:
            if isinstance(err, UnicodeDecodeError):
                return self._result(
                    call, f"{call.arguments.get('path')}: not a UTF-8 text file", True
                )
            return self._result(call, f"bad arguments for {call.name}: {err}", True)
        except (ToolError, WorkspaceError) as err:
            return self._result(call, str(err), True)
        except OSError as err:
            return self._result(call, f"{call.name} failed: {err}", True)
        return self._result(call, text, False)

    @staticmethod
    def _result(call: ToolCallPart, text: str, is_error: bool) -> ToolResultPart:
        return ToolResultPart(tool_call_id=call.id, name=call.name, content=text, is_error=is_error)

    # ---- tools -----------------------------------------------------------
    async def _tool_list_files(self, path: str = ".", depth: int = 3) -> str:
        root = self.ws.root if path in (".", "") else self.ws.resolve(path)
        if not root.is_dir():
            raise ToolError(f"{path}: not a directory")
        depth = max(1, min(int(depth), 8))
        lines: list[str] = []
        for item in sorted(root.rglob("*")):
            rel = item.relative_to(self.ws.root)
            if any(part in _SKIP_DIRS for part in rel.parts):
                continue
            if len(item.relative_to(root).parts) > depth:
                continue
            lines.append(f"{rel}/" if item.is_dir() else str(rel))
            if len(lines) >= _MAX_LIST:
                lines.append(f"... (stopped at {_MAX_LIST} entries; list a subdirectory)")
                break
        return "\n".join(lines) or "(empty)"

    async def _tool_view_file(
        self, path: str, start_line: int | None = None, end_line: int | None = None
    ) -> str:
        lines = self.ws.read(path).splitlines()
        start = max(1, int(start_line or 1))
        if end_line is not None and int(end_line) < start:
            raise ToolError(f"end_line {end_line} is before start_line {start}")
        end = min(len(lines), int(end_line or len(lines)), start + _MAX_VIEW_LINES - 1)
        if lines and start > len(lines):
            raise ToolError(f"{path} has {len(lines)} lines; start_line {start} is past the end")
        body = "\n".join(f"{n:>5}  {lines[n - 1]}" for n in range(start, end + 1))
        more = (
            f"\n... ({len(lines) - end} more lines; pass start_line={end + 1})"
            if end < len(lines)
            else ""
        )
        return (body or "(empty file)") + more

    async def _tool_search(self, pattern: str, path: str = ".", glob: str | None = None) -> str:
        try:
            regex = re.compile(pattern)
        except re.error as err:
            raise ToolError(f"invalid regular expression {pattern!r}: {err}") from err
        root = self.ws.root if path in (".", "") else self.ws.resolve(path)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        hits: list[str] = []
        for file in files:
            rel = file.relative_to(self.ws.root)
            if any(part in _SKIP_DIRS for part in rel.parts):
                continue
            try:  # a symlink inside the repo may point outside it
                self.ws.resolve(str(rel))
            except PathRefused:
                continue
            if (
                glob
                and not fnmatch.fnmatch(file.name, glob)
                and not fnmatch.fnmatch(str(rel), glob)
            ):
                continue
            try:
                text = file.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            for n, line in enumerate(text.splitlines(), 1):
                if regex.search(line):
                    hits.append(f"{rel}:{n}: {line.strip()[:200]}")
                    if len(hits) >= _MAX_MATCHES:
                        return (
                            "\n".join(hits)
                            + f"\n... (stopped at {_MAX_MATCHES} matches; narrow the search)"
                        )
        return "\n".join(hits) or "no matches"

    async def _tool_create_file(self, path: str, content: str) -> str:
        existed = self.ws.exists(path)
        self.ws.write(path, content)
        self.changed.add(path)
        verb = "overwrote" if existed else "created"
        return f"{verb} {path} ({len(content.splitlines())} lines)"

    async def _tool_replace_text(self, path: str, old_text: str, new_text: str) -> str:
        text = self.ws.read(path)
        if not old_text:
            raise ToolError("old_text is empty; give the exact text to replace")
        count = text.count(old_text)
        if count == 0:
            hint = ""
            first = old_text.strip().splitlines()[0].strip() if old_text.strip() else ""
            if first:
                near = [n for n, line in enumerate(text.splitlines(), 1) if first in line]
                if near:
                    hint = f" Its first line appears at line(s) {near[:5]}; view the file and copy the text exactly."
            raise ToolError(f"old_text not found in {path}; nothing changed.{hint}")
        if count > 1:
            raise ToolError(
                f"old_text occurs {count} times in {path}; include more surrounding lines "
                "so it is unique. Nothing changed."
            )
        self.ws.write(path, text.replace(old_text, new_text, 1))
        self.changed.add(path)
        return f"replaced 1 occurrence in {path}"

    async def _tool_insert_text(self, path: str, after_line: int, text: str) -> str:
        lines = self.ws.read(path).splitlines(keepends=True)
        after_line = int(after_line)
        if not 0 <= after_line <= len(lines):
            raise ToolError(f"after_line must be between 0 and {len(lines)} for {path}")
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        insert = text if text.endswith("\n") else text + "\n"
        lines[after_line:after_line] = [insert]
        self.ws.write(path, "".join(lines))
        self.changed.add(path)
        return f"inserted {len(insert.splitlines())} lines after line {after_line} of {path}"

    async def _tool_delete_file(self, path: str) -> str:
        target = self.ws.resolve(path)
        link = self.ws.root / path.strip()
        if link.is_symlink():  # delete the link, never what it points to
            link.unlink()
            self.changed.add(path)
            return f"deleted symlink {path}"
        if not target.is_file():
            raise ToolError(f"{path}: no such file")
        target.unlink()
        self.changed.add(path)
        return f"deleted {path}"

    async def _tool_run_tests(self, tests: list[str] | None = None) -> str:
        assert self._run_tests is not None
        return await self._run_tests(list(tests or []))


def test_runner_toolbox(ws: Workspace) -> Toolbox:
    """The editing tools plus ``run_tests`` on a sandboxed copy of this attempt's own tree."""

    async def run_tests(selection: list[str]) -> str:
        async with keep_alive("run_tests"):
            run = await run_project_tests(ws.root, selection)
        return format_for_model(run, limit=_MAX_TEST_OUTPUT)

    return Toolbox(ws, run_tests=run_tests)
