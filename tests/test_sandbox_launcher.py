"""The scripts that run by path (launcher as root, recorder and builder inside): stdlib only."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from activities import sandbox
from activities.sandbox import host

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")

HERE = Path(sandbox.__file__).parent


@pytest.mark.parametrize(
    ("script", "allowed"),
    [("launcher.py", set()), ("env_builder.py", set()), ("pytest_recorder.py", {"pytest"})],
)
def test_scripts_import_only_the_standard_library(script: str, allowed: set[str]) -> None:
    tree = ast.parse((HERE / script).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    assert names - set(sys.stdlib_module_names) - {"__future__"} <= allowed


def test_launcher_runs_by_path_isolated_and_probes() -> None:
    r, w = os.pipe()
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(HERE / "launcher.py"),
         json.dumps({"mode": "probe", "report_fd": w})],
        pass_fds=(w,), capture_output=True, timeout=30, env={},
    )  # fmt: skip
    os.close(w)
    with os.fdopen(r, "rb") as f:
        report = json.loads(f.read())
    assert proc.returncode == 0, proc.stderr
    assert set(report) == {"root", "contained", "reason"}
    assert report["root"] == (os.geteuid() == 0)
    assert host.capabilities()["contained"] == (report["contained"] and report["root"])


def test_launcher_refuses_to_start_without_its_parent() -> None:
    r, w = os.pipe()
    config = {"mode": "run", "report_fd": w, "parent": 1, "contained": False}
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(HERE / "launcher.py"), json.dumps(config)],
        pass_fds=(w,), capture_output=True, timeout=30, env={},
    )  # fmt: skip
    os.close(w)
    os.close(r)
    assert proc.returncode == 125
