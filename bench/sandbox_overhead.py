"""How much the sandbox costs a generated project's test run, and environment builds.

Builds a small generated-style FastAPI project (an app and 10 tests using
``fastapi.testclient``) in a temp dir, then, interleaved (bare, sandboxed, bare, ...):

- bare: ``python -m pytest`` in the project with the worker's interpreter (``subprocess``),
  with the same pytest plugins blocked as in the sandbox (only declared packages' load);
- sandboxed: ``run_project_tests`` as the test phase calls it (environment lookup, copy of
  the checkout, namespaces, pivot_root, recorder, verdict), its cache of earlier runs
  cleared each time so every run is real;

and prints the medians and their ratio. Also the fixed cost of an empty sandboxed
command (``true``), and project environment builds: the base environment (cold, warm)
and an environment with a declared local wheel that pip installs inside the sandbox
(cold, warm), all in a fresh cache directory.

Usage: ``python bench/sandbox_overhead.py [-n 9]`` (from the repo root).
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


def make_wheel_project(root: Path) -> Path:
    from tests.support.sandbox_support import make_wheel

    ws = make_project(root / "with-wheel")
    make_wheel(ws / "wheels", "benchpkg", "1.0", {"benchpkg/__init__.py": "X = 1\n"})
    (ws / "requirements.txt").write_text("fastapi\n./wheels/benchpkg-1.0-py3-none-any.whl\n")
    return ws


async def timed(coro: object) -> tuple[float, object]:
    t = time.perf_counter()
    value = await coro  # type: ignore[misc]
    return time.perf_counter() - t, value


async def bench(n: int) -> None:
    from activities.project_tests import RUNS, run_project_tests
    from activities.sandbox import base_env, ensure_project_env, run_sandboxed
    from activities.sandbox.pytest_plugins import plugin_options

    with tempfile.TemporaryDirectory(prefix="backforge-bench-") as tmp:
        os.environ["BACKFORGE_CACHE_DIR"] = str(Path(tmp) / "cache")
        ws = make_project(Path(tmp))
        wheel_ws = make_wheel_project(Path(tmp))
        t0 = time.perf_counter()
        await asyncio.to_thread(base_env)
        base_cold = time.perf_counter() - t0
        base_warm, base_warm_env = await timed(ensure_project_env(ws))
        wheel_cold, built = await timed(ensure_project_env(wheel_ws))
        wheel_warm, _ = await timed(ensure_project_env(wheel_ws))
        assert built.ok, built.log  # type: ignore[attr-defined]

        bare_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        # The same pytest plugins as the sandboxed run (only those of declared packages).
        plugins = plugin_options(base_warm_env.env, base_warm_env.requirements)  # type: ignore[attr-defined]
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugins]

        def bare() -> float:
            t = time.perf_counter()
            proc = subprocess.run(argv, cwd=ws, env=bare_env, capture_output=True, text=True)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            return time.perf_counter() - t

        await run_project_tests(ws, [])  # warm-up (page cache, imports)
        bare()
        bare_times, boxed_times, true_times = [], [], []
        last = None
        for _ in range(n):
            bare_times.append(bare())
            RUNS.clear()  # a real run each time, never the kept result of the last one
            elapsed, last = await timed(run_project_tests(ws, []))
            assert last.verdict == "PASS", last.summary()  # type: ignore[attr-defined]
            boxed_times.append(elapsed)
            elapsed, result = await timed(run_sandboxed(["true"], source=ws))
            assert result.exit_code == 0  # type: ignore[attr-defined]
            true_times.append(elapsed)
        ratios = [s / b for s, b in zip(boxed_times, bare_times, strict=True)]
        b, s = statistics.median(bare_times), statistics.median(boxed_times)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, N={n} interleaved runs")
        print(f"isolation: {', '.join(last.isolation)}")  # type: ignore[attr-defined]
        print(f"verdict: {last.summary().splitlines()[0]}")  # type: ignore[attr-defined]
        print(f"{'':34} {'median s':>9}")
        print(f"{'bare pytest (10 tests)':34} {b:9.3f}")
        print(f"{'sandboxed run_project_tests':34} {s:9.3f}")
        print(f"{'sandboxed `true` (fixed cost)':34} {statistics.median(true_times):9.3f}")
        print(
            f"ratio sandboxed/bare: median {statistics.median(ratios):.2f} "
            f"(min {min(ratios):.2f}, max {max(ratios):.2f}); overhead {(s - b) * 1000:.0f} ms"
        )
        print("project environment builds (fresh cache):")
        print(f"  base environment: cold {base_cold * 1000:.0f} ms, warm {base_warm * 1000:.1f} ms")
        print(
            f"  with a local wheel (pip in the sandbox): cold {wheel_cold:.2f} s, "
            f"warm {wheel_warm * 1000:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", type=int, default=9, help="interleaved runs per variant (default 9)")
    asyncio.run(bench(parser.parse_args().n))


if __name__ == "__main__":
    main()
