"""panva's oauth4webapi (pinned in package-lock.json), unmodified, as an agent and as a
resource server against ``agentauth serve`` processes: RFC 8414 discovery with its issuer
check, CIBA poll mode with RFC 9396 details and ``private_key_jwt``, DPoP-bound tokens, RFC
9068 validation of the access token and of the DPoP proof against the JWKS, introspection
with ``client_secret_basic``, refresh and revocation. The human approves with a passkey."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.interop.conftest import HERE, node_package
from tests.support.registry import Human, RegistryClient
from tests.support.stack import Site, site_fixtures

ADMIN_TOKEN = "admin-" + "c" * 40
RESOURCE = "https://shop.example.com/interop"
STEP_TIMEOUT = 60  # seconds for one step of the client; the whole run takes a few


site, operator = site_fixtures("interop", admin_token=ADMIN_TOKEN)


async def human_of(operator: RegistryClient, site: Site) -> Human:
    created = await operator.admin("POST", "/humans", {"display_name": "Alice"})
    assert created.status_code == 201, created.text
    human = Human(id=created.json()["id"], browser=operator.new_browser(), origin=site.base)
    await human.enrol(created.json()["invite_token"])
    return human


async def register(operator: RegistryClient, human: Human, jwk: dict[str, Any]) -> str:
    token = await human.api("POST", "/enrollment-tokens", {"expires_in": 600})
    assert token.status_code == 201, token.text
    body = {"client_name": "oauth4webapi agent", "jwks": {"keys": [jwk]}}
    registered = await operator.http.post(
        "/register", json=body, headers={"Authorization": f"Bearer {token.json()['token']}"}
    )
    assert registered.status_code == 201, registered.text
    return str(registered.json()["client_id"])


async def test_an_oauth4webapi_agent_and_resource_server(
    site: Site, operator: RegistryClient
) -> None:
    node_package("oauth4webapi")
    shop = await operator.resource_server(RESOURCE)
    human = await human_of(operator, site)
    client = await asyncio.create_subprocess_exec(
        "node", str(HERE / "oauth4webapi_agent.mjs"), site.base, RESOURCE,
        cwd=HERE, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert client.stdin is not None
    assert client.stdout is not None
    assert client.stderr is not None

    async def answer(message: dict[str, Any]) -> None:
        assert client.stdin is not None
        client.stdin.write(json.dumps(message).encode() + b"\n")
        await client.stdin.drain()

    checked: list[str] = []
    code: int | None = None
    try:
        while line := await asyncio.wait_for(client.stdout.readline(), STEP_TIMEOUT):
            asked = json.loads(line)
            if asked["step"] == "register":
                client_id = await register(operator, human, asked["jwk"])
                rs = {"rs_client_id": shop["client_id"], "rs_secret": shop["client_secret"]}
                await answer({"client_id": client_id, **rs})
            elif asked["step"] == "approve":
                approved = await human.approve(asked["auth_req_id"])
                assert approved.status_code == 200, approved.text
                await answer({})
            else:
                checked = asked["checked"]
        code = await asyncio.wait_for(client.wait(), STEP_TIMEOUT)
    except TimeoutError:
        pass  # the client's own account of where it stopped is on its stderr
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()
    problems = (await client.stderr.read()).decode()
    assert code == 0, problems
    assert checked == [
        "discovery",
        "backchannel authentication request",
        "CIBA token with DPoP",
        "RFC 9068 access token and DPoP proof",
        "introspection",
        "refresh",
        "revocation",
    ]
