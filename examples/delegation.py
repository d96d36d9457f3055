"""An orchestrator agent gets a grant, then hands a narrower part of it to a worker agent
(RFC 8693 sub-delegation); the worker pays at the shop, which sees the whole chain.

    python examples/delegation.py --orchestrator-token=<enrollment token> \
        --worker-token=<another enrollment token>
"""

from __future__ import annotations

import argparse
import asyncio
import json

import httpx
from agent import payment_capability  # examples/agent.py, next to this script

from app.sdk import AgentAuthError, AgentClient, AgentKey


async def run(args: argparse.Namespace) -> None:
    async with (
        AgentClient(args.issuer, AgentKey.generate()) as orchestrator,
        AgentClient(args.issuer, AgentKey.generate()) as worker,
    ):
        await orchestrator.register(args.orchestrator_token, client_name="orchestrator")
        await worker.register(args.worker_token, client_name="worker")
        request = await orchestrator.request_grant(
            [payment_capability(args.shop, "50.00")],
            binding_message="Orchestrator may delegate",
            max_delegation_depth=1,
        )
        print(f"approve at {request.approval_hint}", flush=True)
        await request.wait_for_approval()
        # The worker may spend at most 5.00 per payment: narrower than the grant.
        delegated = await orchestrator.delegate_to(
            worker, args.shop, authorization_details=[payment_capability(args.shop, "5.00")]
        )
        worker.use_token(delegated)
        async with httpx.AsyncClient() as http:
            paid = await http.post(f"{args.shop}/pay", json={"value": "4.00"}, auth=worker.auth())
            refused = await http.post(
                f"{args.shop}/pay", json={"value": "6.00"}, auth=worker.auth()
            )
        print(json.dumps({"paid": paid.json(), "over_limit_status": refused.status_code}))


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--issuer", default="http://localhost:8080")
    parser.add_argument("--shop", default="http://localhost:9000/api")
    parser.add_argument("--orchestrator-token", required=True)
    parser.add_argument("--worker-token", required=True)
    try:
        asyncio.run(run(parser.parse_args()))
    except AgentAuthError as error:
        raise SystemExit(f"{error.error}: {error.description}") from None
    except httpx.HTTPError as error:  # the registry or the shop is not running
        raise SystemExit(f"cannot reach the registry or the shop: {error}") from None


if __name__ == "__main__":
    main()
