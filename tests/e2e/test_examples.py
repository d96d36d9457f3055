"""The examples, end to end, against `agentauth dev`: the shop (examples/merchant.py), the
shopping agent (examples/agent.py) and the delegation example, each a real process; the human
approves with the software passkey through the approval API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.devstack import PYTHON, DevStack, dev_with_example, line, popen
from tests.support.processes import free_port
from tests.support.registry import Human

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    data = tmp_path_factory.mktemp("dev")
    shop = {"name": "Example shop"}
    with dev_with_example(data, "merchant.py", shop, path="/api") as running:
        yield running


async def human_from_invite(stack: DevStack, invite_url: str) -> Human:
    human = Human(
        id="", browser=httpx.AsyncClient(base_url=stack.local, timeout=10), origin=stack.registry
    )
    await human.enrol(invite_url.rsplit("/", 1)[1])
    return human


async def approve(human: Human, auth_req_id: str) -> None:
    approved = await human.approve(auth_req_id)
    assert approved.status_code == 200, approved.text


async def admin_post(stack: DevStack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.local) as http:
        created = await http.post(
            f"/admin{path}", json=body, headers={"Authorization": f"Bearer {stack.admin}"}
        )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def enrollment_token(stack: DevStack, owner: str) -> str:
    return str((await admin_post(stack, "/enrollment-tokens", {"owner": owner}))["token"])


def last_json(process: subprocess.Popen[str]) -> dict[str, object]:
    assert process.stdout is not None
    output = process.stdout.read()
    assert process.wait(timeout=60) == 0, output
    process.stdout.close()
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


async def test_agent_and_delegation_examples_pay_at_the_example_shop(
    stack: DevStack, tmp_path: Path
) -> None:
    human = await human_from_invite(stack, stack.invite)
    try:
        await _run_examples(stack, human, tmp_path)
    finally:
        await human.browser.aclose()


async def _run_examples(stack: DevStack, human: Human, tmp_path: Path) -> None:
    agent = popen(
        [PYTHON, "examples/agent.py", "--issuer", stack.registry, "--shop", stack.resource,
         f"--enrollment-token={await enrollment_token(stack, human.id)}",
         "--state", str(tmp_path / "state")],
        stack.env,
    )  # fmt: skip
    link = line(agent, r"approve at (\S+)").group(1)
    assert link.startswith(f"{stack.registry}/ui/requests/")
    await approve(human, link.rsplit("/", 1)[1])
    result = last_json(agent)
    assert result["status_code"] == 200
    body = result["body"]
    assert isinstance(body, dict)
    assert body["status"] == "paid"
    assert body["for_human"] == human.id

    delegation = popen(
        [PYTHON, "examples/delegation.py", "--issuer", stack.registry, "--shop", stack.resource,
         f"--orchestrator-token={await enrollment_token(stack, human.id)}",
         f"--worker-token={await enrollment_token(stack, human.id)}"],
        stack.env,
    )  # fmt: skip
    link = line(delegation, r"approve at (\S+)").group(1)
    await approve(human, link.rsplit("/", 1)[1])
    outcome = last_json(delegation)
    paid = outcome["paid"]
    assert isinstance(paid, dict)
    chain = paid["delegation_chain"]
    assert isinstance(chain, dict)
    assert set(chain) == {"sub", "act"}  # the worker acting for the orchestrator
    assert chain["sub"] == paid["by_agent"]
    assert outcome["over_limit_status"] == 403  # narrower than the grant: 5.00 at most


async def new_human(stack: DevStack, name: str) -> Human:
    invite = (await admin_post(stack, "/humans", {"display_name": name}))["invite_url"]
    return await human_from_invite(stack, str(invite))


async def test_the_synchronous_client(stack: DevStack) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from app.sdk import AgentKey, SyncAgentClient

    human = await new_human(stack, "Sync")
    token = await enrollment_token(stack, human.id)
    details = [{"type": "api", "locations": [stack.resource], "actions": ["pay"]}]
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(
        max_workers=1
    ) as thread:  # the sync client blocks: keep it off the loop

        def call(fn: Any, *args: Any) -> Any:
            return loop.run_in_executor(thread, fn, *args)

        agent = await call(lambda: SyncAgentClient(stack.registry, AgentKey.generate()))
        await call(agent.register, token, "sync agent")
        request = await call(agent.request_grant, details)
        await approve(human, request.auth_req_id)
        tokens = await call(request.wait_for_approval)
        assert tokens.refresh_token
        refreshed = await call(lambda: agent.refresh())
        assert refreshed.access_token != tokens.access_token
        sent: list[str] = []

        def shop(request: httpx.Request) -> httpx.Response:
            sent.append(request.headers["authorization"])
            return httpx.Response(200)

        def call_shop_with_an_expiring_token() -> str:
            agent.client.tokens.expires_at = time.time()
            with httpx.Client(transport=httpx.MockTransport(shop)) as http:
                http.post(f"{stack.resource}/orders", auth=agent.auth())
            return str(agent.client.tokens.access_token)

        current = await call(call_shop_with_an_expiring_token)
        assert current != refreshed.access_token  # refreshed before the call
        assert sent == [f"DPoP {current}"]
        await call(agent.close)
    await human.browser.aclose()


@pytest.mark.parametrize("example", ["agent.py", "delegation.py"])
def test_an_example_explains_itself_and_a_registry_that_is_down(
    example: str, tmp_path: Path
) -> None:
    script = str(ROOT / "examples" / example)
    helped = subprocess.run(  # noqa: S603 - our own example
        [PYTHON, script, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    described = " ".join(helped.stdout.split())
    assert "examples/merchant.py). options:" in described or "chain. options:" in described, (
        described  # the whole first paragraph, not its first line
    )
    tokens = ["--enrollment-token=x"] if example == "agent.py" else [
        "--orchestrator-token=x", "--worker-token=y"
    ]  # fmt: skip
    down = subprocess.run(  # noqa: S603 - our own example
        [PYTHON, script, "--issuer", f"http://127.0.0.1:{free_port()}", *tokens],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert down.returncode == 1
    assert "Traceback" not in down.stderr
    assert down.stderr.strip().startswith("cannot reach the registry or the shop"), down.stderr
