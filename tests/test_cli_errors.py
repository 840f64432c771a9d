"""One-line errors and exit codes."""

from __future__ import annotations

import pytest

from cli.errors import EXIT_USAGE, CliError, one_line, print_error


def test_cli_error_is_always_one_line_and_defaults_to_usage() -> None:
    err = CliError("cannot read\n  answer 'Q1B'.\tWrite it as Q1=B")
    assert err.message == "cannot read answer 'Q1B'. Write it as Q1=B"
    assert err.code == EXIT_USAGE
    assert CliError("x", code=1).code == 1


def test_print_error_is_plain_and_unwrapped(capsys: pytest.CaptureFixture[str]) -> None:
    long = "word " * 40
    print_error(long.strip())
    assert capsys.readouterr().err == f"error: {long.strip()}\n"


def test_one_line_folds_and_cuts() -> None:
    assert one_line("a\n b  c", 10) == "a b c"
    assert one_line("abcdefghij", 5) == "abcd…"
