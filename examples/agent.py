"""An agent that registers, asks its human for a grant, waits for the passkey approval and
pays at the example shop (runs against `agentauth dev` and examples/merchant.py).

    python examples/agent.py --enrollment-token=<token from the UI's Agents page>
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import httpx

from app.sdk import AgentAuthError, AgentClient, AgentKey


def payment_capability(shop: str, max_amount: str) -> dict[str, object]:
    return {
        "type": "api",
        "locations": [shop],
        "actions": ["pay"],
        "limits": {"max_amount": {"value": max_amount, "currency": "EUR"}},
    }


def load(name: str, state: Path, issuer: str) -> tuple[AgentClient, Path]:
    """The agent kept in ``state`` (its key file and, once registered, its client id)."""
    state.mkdir(parents=True, exist_ok=True)
    agent = AgentClient(issuer, AgentKey.load_or_create(state / f"{name}-key.json"))
    id_file = state / f"{name}-client-id"
    if id_file.exists():
        agent.client_id = id_file.read_text().strip()
    return agent, id_file


async def registered(args: argparse.Namespace, name: str, state: Path) -> AgentClient:
    """The agent from ``state``, registered with the enrollment token on first use."""
    agent, id_file = load(name, state, args.issuer)
    if agent.client_id is None:
        await agent.register(args.enrollment_token, client_name=name, software_id="examples")
        id_file.write_text(agent.client_id or "")
    return agent


async def run(args: argparse.Namespace) -> None:
    async with await registered(args, "shopping-agent", Path(args.state)) as agent:
        request = await agent.request_grant(
            [payment_capability(args.shop, "50.00")], binding_message="Buy one book"
        )
        print(f"approve at {request.approval_hint}", flush=True)
        await request.wait_for_approval()
        print("approved", flush=True)
        async with httpx.AsyncClient() as http:
            paid = await http.post(
                f"{args.shop}/pay", json={"value": args.amount}, auth=agent.auth()
            )
        print(json.dumps({"status_code": paid.status_code, "body": paid.json()}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--issuer", default="http://localhost:8080")
    parser.add_argument("--shop", default="http://localhost:9000/api")
    parser.add_argument("--enrollment-token", default=None)
    parser.add_argument("--amount", default="12.50")
    parser.add_argument("--state", default=".agent-state")
    try:
        asyncio.run(run(parser.parse_args()))
    except AgentAuthError as error:
        raise SystemExit(f"{error.error}: {error.description}") from None
    except httpx.HTTPError as error:  # the registry or the shop is not running
        raise SystemExit(f"cannot reach the registry or the shop: {error}") from None


if __name__ == "__main__":
    main()
