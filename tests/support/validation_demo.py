"""The demo's generated bookmarks service, rebuilt from the scripted transcript.

The transcript (``examples/bookmarks.yaml``) is replayed without the pipeline:
every ``create_file`` and ``replace_text`` call of the conversations that shape
the final tree (constitution, the clarified spec, plan, tasks, each task, the
fix, the analysis) is applied in the order the pipeline runs them. The result is
the tree the demo delivers on its feature branch.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.support.validation_services import ServiceFiles

__all__ = ["DEMO_BRANCH", "build_demo_service", "force_green", "TRANSCRIPT"]

TRANSCRIPT = Path(__file__).resolve().parents[2] / "examples" / "bookmarks.yaml"
DEMO_BRANCH = "001-bookmarks-api-tags"


def _order(keys: list[str]) -> list[str]:
    def task_number(key: str) -> int:
        match = re.match(r"implement/T(\d+)#", key)
        return int(match.group(1)) if match else 0

    phases = ["constitution#1", "specify#2", "plan#1", "tasks#1"]
    tasks = sorted((k for k in keys if k.startswith("implement/")), key=task_number)
    return (
        [k for k in phases if k in keys] + tasks + [k for k in ("fix#1", "analyze#1") if k in keys]
    )


def _fill(value: str) -> str:
    return value.replace("{{feature_dir}}", f"specs/{DEMO_BRANCH}").replace(
        "{{branch}}", DEMO_BRANCH
    )


def build_demo_service(dest: Path) -> ServiceFiles:
    """Write the demo's delivered tree to ``dest`` by replaying the transcript's file edits."""
    calls = yaml.safe_load(TRANSCRIPT.read_text(encoding="utf-8"))["calls"]
    for key in _order(list(calls)):
        for turn in calls[key]:
            for call in turn.get("tool_calls") or []:
                args = call.get("arguments") or {}
                if call["name"] == "create_file":
                    path = dest / _fill(args["path"])
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(_fill(args["content"]), encoding="utf-8")
                elif call["name"] == "replace_text":
                    path = dest / _fill(args["path"])
                    text = path.read_text(encoding="utf-8")
                    old, new = _fill(args["old_text"]), _fill(args["new_text"])
                    if text.count(old) != 1:
                        raise AssertionError(
                            f"{key}: replace_text matches {text.count(old)} times in {args['path']}"
                        )
                    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    feature = dest / "specs" / DEMO_BRANCH
    return ServiceFiles(
        dest, feature / "contracts" / "openapi.yaml", feature / "spec.md", feature / "quickstart.md"
    )


#: A conftest hook that turns every failing test into a pass (the "forced green" trick).
FORCED_GREEN_CONFTEST = """
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        report.outcome = "passed"
        report.longrepr = None
"""


def force_green(files: ServiceFiles) -> None:
    """Remove every route of the demo app and make its tests report green whatever happens."""
    main = files.root / "app" / "main.py"
    text = main.read_text(encoding="utf-8")
    stripped = re.sub(r"^[ \t]*app\.include_router\(.*\)\n", "", text, flags=re.MULTILINE)
    stripped = re.sub(
        r'^[ \t]*@app\.get\("/health".*?\n\n', "", stripped, flags=re.DOTALL | re.MULTILINE
    )
    if stripped.count("include_router") or '"/health"' in stripped:
        raise AssertionError("app/main.py still registers routes")
    main.write_text(stripped, encoding="utf-8")
    conftest = files.root / "tests" / "conftest.py"
    conftest.write_text(
        conftest.read_text(encoding="utf-8") + FORCED_GREEN_CONFTEST, encoding="utf-8"
    )
