"""An MCP server with a `pay` tool protected by AgentAuth (runs against `agentauth dev`).

    export SHOP_CLIENT_ID=rs_... SHOP_CLIENT_SECRET=...   # from POST /admin/resource-servers
    python examples/mcp_server.py --port 9100

Register it first with the admin token `agentauth dev` printed. MCP clients send Bearer
tokens, so the resource server accepts them, and its scopes stand for capabilities:

    curl -s -X POST http://localhost:8080/admin/resource-servers \\
      -H "Authorization: Bearer $AGENTAUTH_ADMIN_TOKEN" -H 'Content-Type: application/json' \\
      -d '{"name": "Example MCP shop", "resource": "http://localhost:9100/mcp",
           "dpop_required": false,
           "scopes": {"read": [{"type": "api", "actions": ["read"]}],
                      "pay": [{"type": "api", "actions": ["pay"],
                               "limits": {"max_amount": {"value": "10.00", "currency": "EUR"}}}]}}'
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp

from app.sdk.mcp import AgentAuthMCP, IntrospectionTokenVerifier, Tool, auth_settings
from app.sdk.merchant import VerifierClient


def euros(arguments: Mapping[str, Any]) -> dict[str, str]:
    return {"value": str(arguments["amount"]), "currency": "EUR"}


# What each tool needs: the scope a client asks for, and the capability checked per call.
TOOLS = {
    "balance": Tool(scope="read", action="read"),
    "pay": Tool(scope="pay", action="pay", amount=euros),
}


def create_app(verifier: VerifierClient, resource: str, issuer: str) -> ASGIApp:
    server = MCPServer(
        "Example MCP shop",
        token_verifier=IntrospectionTokenVerifier(verifier, resource),
        auth=auth_settings(issuer, resource),
    )

    @server.tool()
    async def balance() -> str:
        """The shop account's balance."""
        return "100.00 EUR"

    @server.tool()
    async def pay(amount: str, to: str) -> str:
        """Pay ``amount`` euros to ``to`` (at most what the human approved)."""
        return f"paid {amount} EUR to {to}"

    # The first scope a new client is told to ask for is "read"; "pay" comes by step-up.
    return AgentAuthMCP(
        server.streamable_http_app(host="localhost"),
        verifier=verifier,
        resource=resource,
        issuer=issuer,
        tools=TOOLS,
        default_scopes=["read"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--issuer", default="http://localhost:8080")
    parser.add_argument("--verifier", default="http://localhost:8081")
    args = parser.parse_args()
    verifier = VerifierClient(
        args.verifier, os.environ["SHOP_CLIENT_ID"], os.environ["SHOP_CLIENT_SECRET"]
    )
    resource = f"http://localhost:{args.port}/mcp"
    app = create_app(verifier, resource, args.issuer)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
