"""Headless Chromium from Debian's packages, driven by Playwright (never ``playwright install``)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Page

__all__ = ["CHROMIUM", "FLAGS", "chromium_or_skip", "browser_page"]

#: Debian's chromium package (``apt-get install -y chromium``; .ci/run installs it).
CHROMIUM = Path("/usr/bin/chromium")
#: Headless, no sandbox (root in CI), and nothing that reaches beyond 127.0.0.1.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_or_skip() -> None:
    """Skip the test, saying why, where Chromium or Playwright is missing."""
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("Chromium is not installed here (apt-get install -y chromium; .ci/run does)")
    pytest.importorskip("playwright.async_api", reason="playwright is a test dependency")


@asynccontextmanager
async def browser_page(
    profile: Path, *, width: int = 1400, height: int = 1000
) -> AsyncIterator[Page]:
    """A page of a fresh headless Chromium whose profile lives in ``profile``."""
    from playwright.async_api import async_playwright

    executable = CHROMIUM if CHROMIUM.exists() else Path(shutil.which("chromium") or CHROMIUM)
    profile.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(executable),
            headless=True,
            args=FLAGS,
            viewport={"width": width, "height": height},
        )
        try:
            yield context.pages[0] if context.pages else await context.new_page()
        finally:
            await context.close()
