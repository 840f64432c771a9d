"""Backforge's pytest runner and recorder, run inside the sandbox by path.

``python /opt/backforge/pytest_recorder.py [pytest args]`` imports pytest before the
project's directory is on ``sys.path`` (so a project file cannot stand in for pytest or
for this module), then runs ``pytest.main`` with this recorder as a plugin object and the
working directory on ``sys.path`` (what ``python -m pytest`` does).

The recorder writes JSON lines to fd 3 (``BACKFORGE_RECORDS_FD``), a pipe the worker reads
outside the sandbox; the worker computes the counts and the verdict itself. Per test id
it records the raw outcome of each phase (did the setup, the test function, the teardown
raise, and what) as seen by a hook wrapper registered last, just before the tests run,
so that it is the innermost wrapper (closest to the test function), and the final
outcome as reported. A project hook that rewrites a report therefore shows up as a
disagreement. It also lists hook implementations that come from the project's files or
declared packages, and records when its innermost position was taken.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Generator
from typing import Any

import pytest

_SENSITIVE_HOOKS = (
    "pytest_runtest_protocol", "pytest_runtest_call", "pytest_pyfunc_call",
    "pytest_runtest_makereport", "pytest_runtest_logreport", "pytest_report_teststatus",
    "pytest_runtest_setup", "pytest_runtest_teardown",
)  # fmt: skip
_MAX_IDS = 20_000


def _kind(exc: BaseException) -> str:
    if isinstance(exc, pytest.skip.Exception):
        return "skip"
    if isinstance(exc, pytest.xfail.Exception):
        return "xfail"
    import unittest

    if isinstance(exc, unittest.SkipTest):
        return "skip"
    return "fail"


class Recorder:
    """The plugin: session, collection and report events, plus the hook inventory."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.observer = _CallObserver(self)

    def emit(self, **event: Any) -> None:
        if self.fd < 0:
            return
        data = (json.dumps(event, default=str) + "\n").encode()
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError:
            self.fd = -1

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.emit(e="start", pytest=pytest.__version__)

    @pytest.hookimpl(trylast=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.emit(e="collect_error", id=report.nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        ids = [item.nodeid for item in session.items]
        self.emit(e="collected", n=len(ids), ids=ids[:_MAX_IDS])
        self.emit(e="hooks", items=self._foreign_hooks(session.config))

    def _foreign_hooks(self, config: pytest.Config) -> list[dict[str, Any]]:
        """Implementations of outcome-relevant hooks that are not pytest's or the base's."""
        found = []
        cwd = os.getcwd() + os.sep
        venv_site = [p for p in sys.path if p.startswith(sys.prefix + os.sep)]
        for name in _SENSITIVE_HOOKS:
            for impl in getattr(config.hook, name).get_hookimpls():
                path = getattr(impl.function, "__code__", None)
                file = path.co_filename if path is not None else ""
                where = "project" if file.startswith(cwd) else ""
                if not where and any(file.startswith(p + os.sep) for p in venv_site):
                    where = "package"
                if where:
                    wrapper = bool(impl.hookwrapper or impl.wrapper)
                    found.append({"hook": name, "file": file, "where": where, "wrapper": wrapper})
        return found

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        # Registered now, after every conftest: its trylast wrappers are the innermost.
        session.config.pluginmanager.register(self.observer, "backforge-call-observer")

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.emit(
            e="report",
            id=report.nodeid,
            when=report.when,
            outcome=report.outcome,
            xfail=hasattr(report, "wasxfail"),
        )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.emit(e="finish", status=int(exitstatus))


class _CallObserver:
    """Innermost wrappers around setup, call and teardown: the raw outcome of each."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def _observe(self, item: pytest.Item, when: str) -> Generator[None, Any, Any]:
        hook = getattr(item.config.hook, f"pytest_runtest_{when}")
        wrappers = [i for i in hook.get_hookimpls() if i.hookwrapper or i.wrapper]
        if wrappers and wrappers[0].plugin is not self:
            self.recorder.emit(e="tamper", id=item.nodeid, when=when, by=wrappers[0].plugin_name)
        try:
            result = yield
        except BaseException as exc:
            self.recorder.emit(
                e="raw", id=item.nodeid, when=when, kind=_kind(exc), exc=type(exc).__name__
            )
            raise
        self.recorder.emit(e="raw", id=item.nodeid, when=when, kind="ok")
        return result

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._observe(item, "setup"))

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._observe(item, "call"))

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._observe(item, "teardown"))


def main(argv: list[str]) -> int:
    fd = int(os.environ.pop("BACKFORGE_RECORDS_FD", "-1"))
    recorder = Recorder(fd)
    if sys.path and os.path.dirname(os.path.abspath(__file__)) == os.path.abspath(sys.path[0]):
        del sys.path[0]  # this script's directory: nothing for the project there
    sys.path.insert(0, os.getcwd())  # as `python -m pytest` does
    return int(pytest.main(argv, plugins=[recorder]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
