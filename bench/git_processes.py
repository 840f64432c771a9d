"""Git processes per feature: how many git commands one demo feature runs, by command.

    python bench/git_processes.py

Runs the demo feature (scripted model, a test double) on an embedded dev server with
a ``git`` on PATH that runs the real git and notes each invocation with its duration,
and prints the count and time per git subcommand, per feature and per phase step. The
user's repository is a local path (the single-machine default), so pushes go to it
directly.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activities.services import Services  # noqa: E402
from activities.workspace import Workspaces, init_repo  # noqa: E402
from runtime import start_dev_server  # noqa: E402
from tests.support.pipeline import run_pipeline  # noqa: E402

SHIM = """#!/bin/sh
start=$(date +%s%N)
"{real}" "$@"
rc=$?
end=$(date +%s%N)
line="$((end - start)) $(printf '%s' "$*" | tr '\\n' ' ')"
printf '%s\\n' "$line" >> "{log}"  # one write: concurrent gits do not interleave
exit $rc
"""


async def main() -> None:
    real = shutil.which("git")
    assert real, "git is not installed"
    with tempfile.TemporaryDirectory() as tmp:
        shim_dir = Path(tmp) / "shim"
        shim_dir.mkdir()
        log = Path(tmp) / "git.log"
        (shim_dir / "git").write_text(SHIM.format(log=log, real=real))
        (shim_dir / "git").chmod(0o755)
        env = await start_dev_server(data_dir=Path(tmp) / "data", port=None, ui=False)
        try:
            repo = Path(tmp) / "svc"
            init_repo(repo)
            os.environ["PATH"] = f"{shim_dir}{os.pathsep}{os.environ['PATH']}"
            log.write_text("")
            run = await run_pipeline(
                env,
                repo,
                workflow_id="git-count",
                services=Services(workspaces=Workspaces(Path(tmp) / "scratch")),
            )
        finally:
            await env.shutdown()
        lines = log.read_text().splitlines()
    assert run.result.state == "completed", run.result.message
    by: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    for line in lines:
        elapsed_ns, _, args = line.partition(" ")
        by[_subcommand(args)] += 1
        seconds[_subcommand(args)] += int(elapsed_ns) / 1e9
    calls = run.status.usage.model_calls
    activities = len(run.status.completed) + 1  # + prepare
    total = sum(seconds.values())
    record_pushes = sum(1 for line in lines if " push " in line and "refs/backforge/runs/" in line)
    print(f"git processes for one demo feature: {len(lines)}, {total:.2f} s of git in all")
    print(f"  model calls {calls}, recorded in {record_pushes} pushes (blobs written without git)")
    print(
        f"  phase and task steps {activities}: {len(lines) / activities:.1f} git processes, "
        f"{1000 * total / activities:.0f} ms of git each"
    )
    for name, count in by.most_common():
        print(f"  {name:<14} {count:>4}  {seconds[name]:6.2f} s")


def _subcommand(line: str) -> str:
    words = line.split()
    i = 0
    while i < len(words) and words[i] == "-c":
        i += 2
    return words[i] if i < len(words) else "?"


if __name__ == "__main__":
    asyncio.run(main())
