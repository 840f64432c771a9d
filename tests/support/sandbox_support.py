"""Shared helpers for the sandbox tests: fixtures, hostile-run helpers, project builders.

Hostile scripts print PWNED only if their attack worked; the tests also check the host
side (files, processes, listeners) rather than trusting the script. Containment
assertions need the contained mode (root with namespaces, as in CI); elsewhere they are
skipped with the reason the sandbox gives.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from activities.sandbox import (
    SANDBOX_UIDS,
    CommandResult,
    SandboxLimits,
    capabilities,
    run_sandboxed,
)

REPO = Path(__file__).resolve().parent.parent.parent


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
        cwd=repo, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def contained() -> bool:
    return bool(capabilities()["contained"])


def require_contained() -> None:
    if not contained():
        pytest.skip(f"contained mode unavailable here: {capabilities()['reason']}")


def require(result: CommandResult, label: str) -> None:
    if not any(i == label or i.startswith(f"{label}:") for i in result.isolation):
        pytest.skip(f"{label} isolation unavailable here: {result.warnings}")


def run_uid(result: CommandResult) -> int | None:
    return next((int(i[4:]) for i in result.isolation if i.startswith("uid:")), None)


def live_processes(uid: int | None = None) -> list[int]:
    """Live (non-zombie) processes of ``uid``, or of any sandbox uid."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            state = Path(f"/proc/{entry.name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
            owner = entry.stat().st_uid
        except (OSError, IndexError):
            continue
        if state != b"Z" and (owner == uid if uid is not None else owner in SANDBOX_UIDS):
            pids.append(int(entry.name))
    return pids


def sandboxed_descendants(ancestor: int) -> dict[int, int]:
    """{pid: uid} of live sandbox-uid processes descending from ``ancestor``."""
    parents: dict[int, int] = {}
    owners: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry.name}/stat").read_bytes().rsplit(b")", 1)[1].split()
            owners[int(entry.name)] = entry.stat().st_uid
        except (OSError, IndexError):
            continue
        if fields[0] != b"Z":
            parents[int(entry.name)] = int(fields[1])
    found = {}
    for pid in parents:
        current = pid
        for _ in range(64):
            current = parents.get(current, 0)
            if current == ancestor:
                if owners.get(pid) in SANDBOX_UIDS:
                    found[pid] = owners[pid]
                break
            if current <= 1:
                break
    return found


async def run_py(source: Path, code: str, **limits: object) -> CommandResult:
    return await run_sandboxed(
        ["python", "-c", textwrap.dedent(code)],
        source=source,
        limits=SandboxLimits.model_validate(limits) if limits else None,
    )


def assert_contained(result: CommandResult) -> None:
    assert "PWNED" not in result.output, result.output
    assert result.exit_code != 0, result.output


def tree_digest(root: Path) -> str:
    """Names, modes, owners and contents of everything under ``root`` (including .git)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest.update(f"{path.relative_to(root)} {st.st_mode:o} {st.st_uid}\n".encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def sandbox_owned_files(*roots: Path) -> list[Path]:
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                try:
                    if path.lstat().st_uid in SANDBOX_UIDS:
                        found.append(path)
                except OSError:
                    continue
    return found


# --- generated projects ------------------------------------------------------------------

APP = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
"""

APP_TESTS = """
import pytest
from fastapi.testclient import TestClient

from app.main import app

client = TestClient(app)


def test_health() -> None:
    assert client.get("/health").json() == {"status": "ok"}


@pytest.mark.parametrize("n", range({n}))
def test_many(n: int) -> None:
    assert client.get("/health").status_code == 200
"""


def make_project(root: Path, *, tests: int = 3, requirements: str = "fastapi\nhttpx\n") -> Path:
    """A small generated-style FastAPI project with ``tests + 1`` passing tests."""
    (root / "app").mkdir(parents=True, exist_ok=True)
    (root / "tests").mkdir(exist_ok=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "main.py").write_text(APP)
    (root / "tests" / "test_app.py").write_text(APP_TESTS.replace("{n}", str(tests)))
    (root / "requirements.txt").write_text(requirements)
    return root


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    files: dict[str, str],
    *,
    entry_points: str = "",
) -> Path:
    """A pure-Python wheel written by hand (no build tools needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    contents = dict(files)
    contents[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    contents[f"{dist_info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: backforge-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    if entry_points:
        contents[f"{dist_info}/entry_points.txt"] = entry_points
    record = []
    for path, text in contents.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path, text in contents.items():
            zf.writestr(path, text)
    wheel.write_bytes(buffer.getvalue())
    return wheel


PY = sys.executable
