"""How hints name the program and the server: decided in one place."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cli.settings import Settings, program, set_program


@pytest.fixture(autouse=True)
def detected_program() -> Iterator[None]:
    set_program(None)
    yield
    set_program(None)


def test_program_is_read_from_how_the_cli_was_started() -> None:
    assert program("/venv/bin/backforge") == "backforge"
    assert program("C:\\venv\\Scripts\\backforge.exe".replace("\\", "/")) == "backforge"
    assert program("starter.py") == "python starter.py"
    assert program("/usr/lib/python3/site-packages/pytest/__main__.py") == "python starter.py"


def test_explicit_program_wins() -> None:
    set_program("backforge")
    assert program() == "backforge"
    assert Settings("localhost:7233", "default", "q").command_prefix() == "backforge"


def test_prefix_carries_only_the_options_that_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    set_program("python starter.py")
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    monkeypatch.delenv("TEMPORAL_NAMESPACE", raising=False)
    assert Settings("localhost:7233", "default", "q").command_prefix() == "python starter.py"
    assert (
        Settings("temporal:7233", "team", "q").command_prefix()
        == "python starter.py --address temporal:7233 --namespace team"
    )
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal:7233")
    assert Settings("temporal:7233", "default", "q").command_prefix() == "python starter.py"
