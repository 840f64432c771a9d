"""The agent's toolset: look at, search and edit the workspace; run tests and commands; docs.

Every tool returns text for the model. Anything the model got wrong (a missing
file, a non-unique replacement, a path outside the repo) comes back as a tool
error with a message saying what to do, never as an exception, and leaves the
disk unchanged.

The file tools work on the attempt's own checkout. Three more are offered where a
phase gives them (``project_toolbox``): ``run_tests`` (pytest in the sandbox, Backforge's
verdict first), ``run_command`` (a snippet or shell command in the same sandbox,
``activities.commands``) and ``api_docs`` (the installed packages' documentation,
``activities.api_docs``). The sandboxed ones run on a private copy of this checkout,
so parallel tasks, each in its own worktree, never see each other's files.
"""

from __future__ import annotations

import asyncio
import fnmatch
import re
from collections.abc import Awaitable, Callable
from typing import Any

from activities.api_docs import DocsError, docs_for
from activities.commands import CommandRequest, run_project_command
from activities.environment import installed_packages
from activities.heartbeat import keep_alive
from activities.models.base import ToolCallPart, ToolResultPart, ToolSpec
from activities.project_tests import format_for_model, run_project_tests
from activities.sandbox import ensure_project_env
from activities.workspace import PathRefused, Workspace, WorkspaceError

__all__ = [
    "Toolbox",
    "ToolError",
    "TestRunner",
    "CommandRunner",
    "DocsLookup",
    "project_toolbox",
    "MAX_TEST_OUTPUT",
]

_MAX_LIST = 400
_MAX_VIEW_LINES = 800
_MAX_MATCHES = 100
#: run_tests output: Backforge's verdict and counts, then the output's head and tail.
MAX_TEST_OUTPUT = 16_000
_MAX_LINE = 240
_SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".pytest_cache"}


class ToolError(Exception):
    """A tool call the model must correct; the message goes back to the model."""


def _schema(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """An arguments object. Unknown arguments are refused when a tool is called (its
    handler takes none), so the schema does not spell out ``additionalProperties``."""
    return {"type": "object", "properties": props, **({"required": required} if required else {})}


_STR = {"type": "string"}
_INT = {"type": "integer"}

_BASE_SPECS = [
    ToolSpec(
        name="list_files",
        description="List files under a directory (bounded depth).",
        parameters=_schema({"path": _STR, "depth": _INT}, []),
    ),
    ToolSpec(
        name="view_file",
        description="A file with line numbers (optionally lines start_line..end_line).",
        parameters=_schema({"path": _STR, "start_line": _INT, "end_line": _INT}, ["path"]),
    ),
    ToolSpec(
        name="search",
        description="Search file contents for a regular expression: path:line: text.",
        parameters=_schema({"pattern": _STR, "path": _STR, "glob": _STR}, ["pattern"]),
    ),
    ToolSpec(
        name="create_file",
        description="Create or overwrite a file with its whole content.",
        parameters=_schema({"path": _STR, "content": _STR}, ["path", "content"]),
    ),
    ToolSpec(
        name="replace_text",
        description="Replace old_text, which must occur exactly once, with new_text.",
        parameters=_schema(
            {"path": _STR, "old_text": _STR, "new_text": _STR}, ["path", "old_text", "new_text"]
        ),
    ),
    ToolSpec(
        name="insert_text",
        description="Insert text after line after_line (0: at the top).",
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

# What these three do, and where, is in the environment block (every phase that has them).
_RUN_TESTS = ToolSpec(
    name="run_tests",
    description="pytest on paths or node ids (all if none).",
    parameters=_schema({"tests": {"type": "array", "items": _STR}}, []),
)
_RUN_COMMAND = ToolSpec(
    name="run_command",
    description="A Python snippet or shell command (nothing is kept).",
    parameters=_schema({"python": _STR, "command": _STR}, []),
)
_API_DOCS = ToolSpec(
    name="api_docs",
    description="Installed packages' docs (nothing: the package list).",
    parameters=_schema({"target": _STR, "package": _STR, "query": _STR}, []),
)

TestRunner = Callable[[list[str]], Awaitable[str]]
CommandRunner = Callable[[CommandRequest], Awaitable[str]]
#: (target, package, query) -> text
DocsLookup = Callable[[str | None, str | None, str | None], Awaitable[str]]


class Toolbox:
    """Tools bound to one workspace. ``run_tests``, ``run_command`` and ``api_docs`` are
    offered only when their runner is given."""

    def __init__(
        self,
        ws: Workspace,
        *,
        run_tests: TestRunner | None = None,
        run_command: CommandRunner | None = None,
        api_docs: DocsLookup | None = None,
    ) -> None:
        self.ws = ws
        self._run_tests = run_tests
        self._run_command = run_command
        self._api_docs = api_docs
        self.changed: set[str] = set()
        #: Test selections run through ``run_tests``, in order (the evidence check reads it).
        self.test_runs: list[list[str]] = []

    def _optional(self) -> dict[str, tuple[ToolSpec, object]]:
        return {
            "run_tests": (_RUN_TESTS, self._run_tests),
            "run_command": (_RUN_COMMAND, self._run_command),
            "api_docs": (_API_DOCS, self._api_docs),
        }

    def specs(self) -> list[ToolSpec]:
        extra = [spec for spec, runner in self._optional().values() if runner is not None]
        return [*_BASE_SPECS, *extra]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs()]

    async def execute(self, call: ToolCallPart) -> ToolResultPart:
        handler = getattr(self, f"_tool_{call.name}", None)
        optional = self._optional().get(call.name)
        if handler is None or (optional is not None and optional[1] is None):
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
        width = len(str(end))  # numbers as wide as the last one shown, no wider
        body = "\n".join(f"{n:>{width}}  {lines[n - 1]}" for n in range(start, end + 1))
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
                    line = line.rstrip()  # indentation kept: it is Python's syntax
                    if len(line) > _MAX_LINE:
                        line = line[:_MAX_LINE] + f"…[+{len(line) - _MAX_LINE} chars]"
                    hits.append(f"{rel}:{n}: {line}")
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
        selection = list(tests or [])
        self.test_runs.append(selection)
        return await self._run_tests(selection)

    async def _tool_run_command(self, python: str | None = None, command: str | None = None) -> str:
        assert self._run_command is not None
        request = CommandRequest(python=python, command=command)
        request.argv()  # ValueError for a malformed call, before anything runs
        return await self._run_command(request)

    async def _tool_api_docs(
        self, target: str | None = None, package: str | None = None, query: str | None = None
    ) -> str:
        assert self._api_docs is not None
        if query and not package and not target:
            raise ToolError("a query needs `package` (the package to search in)")
        try:
            return await self._api_docs(target or None, package or None, query or None)
        except DocsError as err:
            raise ToolError(str(err)) from err


def project_toolbox(
    ws: Workspace, *, tests: bool = True, commands: bool = True, docs: bool = True
) -> Toolbox:
    """The file tools plus the sandboxed tools on this attempt's own tree.

    Args:
        ws: The attempt's checkout; sandboxed tools run on private copies of it.
        tests: Offer ``run_tests``.
        commands: Offer ``run_command``.
        docs: Offer ``api_docs`` (documentation of the project environment's packages).
    """

    async def run_tests(selection: list[str]) -> str:
        async with keep_alive("run_tests"):
            run = await run_project_tests(ws.root, selection)
        return format_for_model(run, limit=MAX_TEST_OUTPUT)

    async def run_command(request: CommandRequest) -> str:
        async with keep_alive("run_command"):
            return await run_project_command(ws.root, request)

    async def api_docs(target: str | None, package: str | None, query: str | None) -> str:
        async with keep_alive("api_docs"):
            return await _docs(target, package, query)

    async def _docs(target: str | None, package: str | None, query: str | None) -> str:
        env = await ensure_project_env(ws.root)
        if not env.ok or env.env is None:
            raise ToolError(f"the project environment could not be prepared: {env.message}")
        lookup = docs_for(env.env, installed_packages(env.env))
        if target:
            return await asyncio.to_thread(lookup.lookup, target)
        if package and query:
            return await asyncio.to_thread(lookup.search, package, query)
        if package:
            return await asyncio.to_thread(lookup.lookup, package)
        return lookup.packages()

    return Toolbox(
        ws,
        run_tests=run_tests if tests else None,
        run_command=run_command if commands else None,
        api_docs=api_docs if docs else None,
    )
