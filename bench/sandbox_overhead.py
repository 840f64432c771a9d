"""How much the sandbox costs a generated project's test run.

Builds a small generated-style FastAPI project (an app and 10 tests using
``fastapi.testclient``) in a temp dir, then times its pytest run N times bare
(``subprocess``, the same interpreter) and N times through ``run_sandboxed`` with the
project environment, as the test phase does. Also times an empty command (``true``) to
show the fixed per-run cost, and the project environment's creation and reuse.

Usage: ``python bench/sandbox_overhead.py [-n 7]`` (from the repo root).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from activities.sandbox import ensure_project_env, run_sandboxed  # noqa: E402

APP = """
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI(title="bookmarks")
_items: dict[int, dict] = {}


class BookmarkIn(BaseModel):
    url: str
    title: str
    tags: list[str] = []


@app.post("/bookmarks", status_code=201)
def create(b: BookmarkIn) -> dict:
    bid = len(_items) + 1
    _items[bid] = {"id": bid, **b.model_dump()}
    return _items[bid]


@app.get("/bookmarks/{bid}")
def read(bid: int) -> dict:
    if bid not in _items:
        raise HTTPException(404, "not found")
    return _items[bid]


@app.get("/bookmarks")
def search(tag: str | None = None) -> list[dict]:
    return [b for b in _items.values() if tag is None or tag in b["tags"]]


@app.delete("/bookmarks/{bid}", status_code=204)
def delete(bid: int) -> None:
    if _items.pop(bid, None) is None:
        raise HTTPException(404, "not found")
"""

TESTS = """
import pytest
from fastapi.testclient import TestClient

from app.main import _items, app

client = TestClient(app)


@pytest.fixture(autouse=True)
def clean():
    _items.clear()


def make(**kw):
    body = {"url": "https://example.test", "title": "t", **kw}
    return client.post("/bookmarks", json=body)


def test_create():
    assert make().status_code == 201


def test_create_returns_id():
    assert make().json()["id"] == 1


def test_read():
    bid = make().json()["id"]
    assert client.get(f"/bookmarks/{bid}").json()["title"] == "t"


def test_read_missing():
    assert client.get("/bookmarks/99").status_code == 404


def test_list_empty():
    assert client.get("/bookmarks").json() == []


def test_list():
    make(); make()
    assert len(client.get("/bookmarks").json()) == 2


def test_filter_by_tag():
    make(tags=["a"]); make(tags=["b"])
    assert [b["tags"] for b in client.get("/bookmarks", params={"tag": "a"}).json()] == [["a"]]


def test_delete():
    bid = make().json()["id"]
    assert client.delete(f"/bookmarks/{bid}").status_code == 204


def test_delete_missing():
    assert client.delete("/bookmarks/5").status_code == 404


def test_validation():
    assert client.post("/bookmarks", json={"title": "no url"}).status_code == 422
"""

PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]


def make_project(root: Path) -> Path:
    ws = root / "project"
    (ws / "app").mkdir(parents=True)
    (ws / "tests").mkdir()
    (ws / "app" / "__init__.py").write_text("")
    (ws / "app" / "main.py").write_text(textwrap.dedent(APP))
    (ws / "tests" / "test_bookmarks.py").write_text(textwrap.dedent(TESTS))
    (ws / "requirements.txt").write_text("fastapi\nhttpx\npytest\n")
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    return ws


async def bench(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="backforge-bench-") as tmp:
        ws = make_project(Path(tmp))
        t0 = time.perf_counter()
        env = await ensure_project_env(ws)
        created = time.perf_counter() - t0
        t0 = time.perf_counter()
        await ensure_project_env(ws)
        reused = time.perf_counter() - t0
        assert env.ok, env.log
        bare_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}

        def bare(argv: list[str]) -> float:
            t = time.perf_counter()
            proc = subprocess.run(argv, cwd=ws, env=bare_env, capture_output=True, text=True)
            elapsed = time.perf_counter() - t
            assert proc.returncode == 0, proc.stdout + proc.stderr
            return elapsed

        async def boxed(argv: list[str]) -> float:
            t = time.perf_counter()
            result = await run_sandboxed(argv, workspace=ws)
            elapsed = time.perf_counter() - t
            assert result.exit_code == 0, result.output
            boxed.last = result  # type: ignore[attr-defined]
            return elapsed

        rows = []
        for label, argv_bare, argv_boxed in (
            ("true (fixed cost)", ["true"], ["true"]),
            ("pytest, 10 tests", [sys.executable, *PYTEST], [str(env.python), *PYTEST]),
        ):
            bare_times = [bare(argv_bare) for _ in range(n)]
            boxed_times = [await boxed(argv_boxed) for _ in range(n)]
            rows.append((label, statistics.median(bare_times), statistics.median(boxed_times)))

        summary = boxed.last.output.strip().splitlines()[-1]  # type: ignore[attr-defined]
        print(f"python {sys.version.split()[0]}, N={n}, medians of wall-clock seconds")
        print(f"project env: created+installed {created:.3f}s, reused {reused * 1000:.1f}ms")
        print(f"isolation: {', '.join(boxed.last.isolation)}")  # type: ignore[attr-defined]
        print(f"sandboxed pytest summary: {summary}")
        print(f"{'command':<20} {'bare':>8} {'sandboxed':>10} {'ratio':>6} {'overhead':>9}")
        for label, b, s in rows:
            print(f"{label:<20} {b:8.3f} {s:10.3f} {s / b:6.2f} {(s - b) * 1000:7.0f}ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=7, help="runs per variant (default 7)")
    asyncio.run(bench(parser.parse_args().n))


if __name__ == "__main__":
    main()
