"""Debian's Chromium driven by Playwright, with a WebAuthn virtual authenticator (CTAP2,
internal transport, resident keys, user verification) enabled through the Chrome DevTools
Protocol: the human's browser in the end-to-end and interoperability tests."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium package is not installed"
)


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def passkey_page(browser: Any, viewport: dict[str, int] | None = None, **options: Any) -> Any:
    """A fresh browser profile with its own virtual authenticator (``options`` override the
    CTAP2 / internal / resident key / user verification defaults)."""
    context = await browser.new_context(**({"viewport": viewport} if viewport else {}))
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
                **options,
            }
        },
    )
    return page


async def enrol_in_browser(page: Any, base: str, invite_token: str) -> None:
    """Create the passkey from an invite; the browser is logged in afterwards."""
    await page.goto(f"{base}/ui/invite/{invite_token}")
    await page.get_by_role("button", name="Create a passkey").click()
    await page.wait_for_url(f"{base}/ui/")


async def consent_in_browser(page: Any, base: str, url: str) -> str:
    """What the human does when a client sends the browser to ``url`` (an /authorize
    request): log in with the passkey if asked, read the consent page, approve with the
    passkey. Returns the consent page's text; the browser then follows the redirect."""
    await page.goto(url)
    if "/ui/login" in page.url:
        await page.get_by_role("button", name="Log in with a passkey").click()
    await page.wait_for_url(f"{base}/ui/requests/*")
    text = str(await page.locator("main").inner_text())
    await page.get_by_role("button", name="Approve with passkey").click()
    return text
