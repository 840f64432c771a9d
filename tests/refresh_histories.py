"""Record the histories that tests/test_replay.py replays.

    python -m tests.refresh_histories

Runs the demo feature (scripted model, spec gate on, clarification answered
with the recommended options) on a throwaway embedded dev server and writes
its full history to ``tests/histories/bookmarks-demo.json``. Refresh it when a
deliberate, patched change to the workflow should become the new baseline;
keep the old file too (rename it) while workflows recorded with it may still
be running, so the replay test keeps proving they can finish.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from runtime import start_dev_server
from tests.support.pipeline import run_pipeline

OUT = Path(__file__).parent / "histories" / "bookmarks-demo.json"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = await start_dev_server(data_dir=Path(tmp) / "data", port=None, ui=False)
        try:
            run = await run_pipeline(
                env, Path(tmp) / "service", workflow_id="bookmarks-demo-history", gates=["spec"]
            )
            history = await run.handle.fetch_history()
        finally:
            await env.shutdown()
    assert run.result.state == "completed", run.result.message
    OUT.write_text(history.to_json())
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(history.events)} events)")


if __name__ == "__main__":
    asyncio.run(main())
