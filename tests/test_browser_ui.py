"""A person answers a feature's question in the Temporal Web UI, as the README says.

The dev server serves the UI; a headless Chromium opens the workflow, sees
that it waits for a person (the timeline's "Waiting for you" timer and the
current details), sends the ``respond`` signal through "Send a Signal" with
the JSON the details show, and sees the workflow complete. Screenshots of each
step go to the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from cli.settings import Settings
from cli.starting import start_feature
from contract import SEARCH_ATTRIBUTES, FeatureStatus
from runtime import DATA_CONVERTER, free_port, temporal_binary
from tests.support.browser import browser_page, chromium_or_skip
from tests.support.cli_driver import address
from tests.support.fake_phases import Fakes, open_request, request
from tests.support.temporal import unique
from worker import build_worker

#: Playwright's waits, in milliseconds: the UI loads and refreshes in a few seconds.
UI_WAIT_MS = 30_000


@pytest.fixture
async def ui_env(tmp_path: Path) -> AsyncIterator[tuple[WorkflowEnvironment, int]]:
    """A dev server with its Web UI on a free port (a server of the test's own)."""
    chromium_or_skip()
    ui_port = free_port(8600)
    env = await WorkflowEnvironment.start_local(
        ui=True,
        ui_port=ui_port,
        data_converter=DATA_CONVERTER,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_existing_path=temporal_binary(),
        dev_server_database_filename=str(tmp_path / "temporal.db"),
        dev_server_log_level="error",
    )
    yield env, ui_port
    await env.shutdown()


async def test_answer_a_question_through_the_temporal_ui(
    ui_env: tuple[WorkflowEnvironment, int], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    env, ui_port = ui_env
    fakes = Fakes(clarify=True)
    queue = unique("ui")
    async with build_worker(env.client, task_queue=queue, activity_overrides=fakes.activities()):
        settings = Settings(address=address(env), namespace="default", task_queue=queue)
        handle = await start_feature(
            env.client, settings, request(), workflow_id=unique("feature-ui")
        )
        clarify = await open_request(handle, "clarification")
        async with browser_page(tmp_path / "profile") as page:
            page.set_default_timeout(UI_WAIT_MS)
            await page.goto(f"http://localhost:{ui_port}/namespaces/default/workflows/{handle.id}")

            # The default view: the timeline's timer says who is waited for, and for what.
            waiting = f"Waiting for you: {clarify.title} (answer {clarify.id})"
            await expect(page.get_by_text(waiting)).to_be_visible(timeout=UI_WAIT_MS)
            running = page.get_by_text("Running", exact=True).first
            await expect(running).to_be_visible(timeout=UI_WAIT_MS)
            await page.screenshot(path=tmp_path / "1-waiting-timeline.png")

            # User Metadata: the current details, with the JSON that answers.
            await page.get_by_role("tab", name="User Metadata").click()
            # The UI renders each markdown box in an iframe: summary, details, current details.
            summary = page.frame_locator("iframe").first.get_by_text(request().feature)
            await expect(summary).to_be_visible(timeout=UI_WAIT_MS)
            details = page.frame_locator("iframe").last
            heading = details.get_by_role("heading", name=f"Waiting for you: {clarify.title}")
            await expect(heading).to_be_visible(timeout=UI_WAIT_MS)
            signal_hint = details.get_by_text("or send the signal")
            await expect(signal_hint).to_be_visible(timeout=UI_WAIT_MS)
            await page.screenshot(path=tmp_path / "2-current-details.png", full_page=True)
            shown = await details.locator("body").inner_text()
            payload = re.search(r'\{"request_id": "[^"]+", "answers": \{[^}]*\}\}', shown)
            assert payload is not None, shown
            assert f'"request_id": "{clarify.id}"' in payload.group(0)

            # More Actions → Send a Signal → respond, with that JSON.
            await page.get_by_role("button", name="More Actions").click()
            await page.get_by_role("menuitem", name="Send a Signal").click()
            form = page.get_by_role("dialog").filter(visible=True)
            await form.get_by_test_id("signal-select-button").click()
            await form.get_by_role("option", name="respond").click()
            editor = form.get_by_role("textbox", name="Data")
            await editor.click()
            await page.keyboard.insert_text(payload.group(0))
            await expect(editor).to_have_text(payload.group(0), timeout=UI_WAIT_MS)
            # Leaving the editor pretty-prints the JSON and grows the form: let it settle
            # before pressing Submit, or the click lands where the button was.
            await form.get_by_text("Single JSON payload supported.").click()
            await expect(editor).to_contain_text('"request_id": "', timeout=UI_WAIT_MS)
            await expect(editor.locator(".cm-line")).not_to_have_count(1, timeout=UI_WAIT_MS)
            await page.screenshot(path=tmp_path / "3-send-a-signal.png")
            await form.get_by_role("button", name="Submit").click()
            await expect(form).to_be_hidden(timeout=UI_WAIT_MS)

            try:
                result = await asyncio.wait_for(handle.result(), timeout=UI_WAIT_MS / 1000)
            except TimeoutError:
                await page.screenshot(path=tmp_path / "after-submit.png")
                status = await handle.query("status", result_type=FeatureStatus)
                raise AssertionError(f"the signal did not move the feature on: {status}") from None
            await page.reload()
            completed = page.get_by_text("Completed", exact=True).first
            await expect(completed).to_be_visible(timeout=UI_WAIT_MS)
            await page.get_by_role("tab", name="User Metadata").click()
            state = page.frame_locator("iframe").last.get_by_text("State: completed")
            await expect(state).to_be_visible(timeout=UI_WAIT_MS)
            await page.screenshot(path=tmp_path / "4-completed.png", full_page=True)
    assert result.state == "completed"
    specify_again = [c for c in fakes.calls if c.phase == "specify"][1]
    assert specify_again.clarifications == [
        ("Duplicate URLs per user?", "Reject with 409"),
        ("Deleting a collection deletes its bookmarks?", "Keep bookmarks"),
    ]
    for shot in ("1-waiting-timeline", "2-current-details", "3-send-a-signal", "4-completed"):
        assert (tmp_path / f"{shot}.png").stat().st_size > 10_000
