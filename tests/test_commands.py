"""The run_command tool: sandboxed, bounded, normalised, nothing kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.commands import CommandRequest, run_project_command
from activities.models import ToolCallPart
from activities.tools import project_toolbox
from activities.workspace import Workspace


async def test_a_snippet_runs_in_the_project_environment_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("VALUE = 41\n")
    code = "import app, fastapi\nopen('left.txt', 'w').write('x')\nprint(app.VALUE + 1, 'took 0.123s', 'in 15 ms')"
    text = await run_project_command(tmp_path, CommandRequest(python=code))
    assert text.startswith("exit code 0\n\n42 took <t>s in <t>\n")  # durations normalised
    assert not (tmp_path / "left.txt").exists()


async def test_a_shell_command_and_its_exit_code(tmp_path: Path) -> None:
    text = await run_project_command(tmp_path, CommandRequest(command="pwd; exit 3"))
    assert text.startswith("exit code 3\n\n/workspace")


def test_exactly_one_of_python_and_command() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        CommandRequest().argv()
    with pytest.raises(ValueError, match="exactly one"):
        CommandRequest(python="1", command="true").argv()


async def test_a_malformed_call_is_a_tool_error(tmp_path: Path) -> None:
    toolbox = project_toolbox(Workspace(tmp_path))
    result = await toolbox.execute(ToolCallPart(id="c", name="run_command", arguments={}))
    assert result.is_error and "exactly one of `python`" in result.content
