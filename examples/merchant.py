"""A small shop API protected by AgentAuth (runs against `agentauth dev`).

    export SHOP_CLIENT_ID=rs_... SHOP_CLIENT_SECRET=...   # from POST /admin/resource-servers
    python examples/merchant.py --port 9000

Register the shop first with the admin token `agentauth dev` printed:

    curl -s -X POST http://localhost:8080/admin/resource-servers \\
      -H "Authorization: Bearer $AGENTAUTH_ADMIN_TOKEN" -H 'Content-Type: application/json' \\
      -d '{"name": "Example shop", "resource": "http://localhost:9000/api"}'
"""

from __future__ import annotations

import argparse
import os
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Request

from app.sdk.merchant import AgentAuthMiddleware, VerifierClient, requires


async def amount(request: Request) -> dict[str, str]:
    body = await request.json()
    return {"value": str(body["value"]), "currency": str(body.get("currency", "EUR"))}


def create_shop(verifier: VerifierClient, public_url: str, issuer: str) -> FastAPI:
    shop = FastAPI(title="Example shop")
    # The middleware also serves the RFC 9728 metadata, at
    # /.well-known/oauth-protected-resource/api for the resource .../api, and names it in
    # its 401 challenges.
    shop.add_middleware(
        AgentAuthMiddleware,
        verifier=verifier,
        public_url=public_url,
        prefix="/api",
        resource=f"{public_url}/api",
        authorization_servers=[issuer],
    )

    @shop.post("/api/pay")
    async def pay(
        request: Request,
        grant: Annotated[dict[str, Any], Depends(requires("pay", amount=amount))],
    ) -> dict[str, Any]:
        body = await request.json()
        return {
            "status": "paid",
            "amount": body["value"],
            "for_human": grant["sub"],
            "by_agent": grant["client_id"],
            "delegation_chain": grant["act"],
        }

    return shop


def main() -> None:
    parser = argparse.ArgumentParser(description="Example shop protected by AgentAuth.")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument(
        "--issuer", default=os.environ.get("AGENTAUTH_ISSUER", "http://localhost:8080")
    )
    parser.add_argument(
        "--verifier", default=os.environ.get("AGENTAUTH_VERIFIER_URL", "http://localhost:8081")
    )
    args = parser.parse_args()
    verifier = VerifierClient(
        args.verifier, os.environ["SHOP_CLIENT_ID"], os.environ["SHOP_CLIENT_SECRET"]
    )
    public_url = f"http://localhost:{args.port}"
    uvicorn.run(create_shop(verifier, public_url, args.issuer), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
