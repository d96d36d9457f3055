"""An MCP client, the official Python SDK unmodified, that logs the human in through the
browser: it discovers AgentAuth from the MCP server's 401, registers itself (open
registration, or a Client ID Metadata Document with --client-metadata-url), sends the human
to the passkey consent page, and calls the tools.

    python examples/mcp_client.py --server http://localhost:9100/mcp --amount 4.50

The redirect comes back to a one-shot HTTP server on 127.0.0.1 (RFC 8252 §7.3).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import webbrowser
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

OpenURL = Callable[[str], Awaitable[None]]


class MemoryStorage(TokenStorage):
    """Tokens and the registration, for this run only."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Callback:
    """Receives the browser's redirect at http://127.0.0.1:<port>/callback."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.redirect_uri = f"http://127.0.0.1:{port}/callback"
        self._answers: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            target = request.split(b" ", 2)[1].decode()
            if urlsplit(target).path == "/callback":
                answer = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
                await self._answers.put(answer)
                text = b"You can close this window."
            else:
                text = b"Not found."
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
            writer.write(b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(text), text))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def result(self) -> AuthorizationCodeResult:
        answer = await self._answers.get()
        if "code" not in answer:
            raise RuntimeError(f"authorization refused: {answer.get('error', 'no code')}")
        return AuthorizationCodeResult(
            code=answer["code"], state=answer.get("state"), iss=answer.get("iss")
        )


async def _open_in_browser(url: str) -> None:
    print(f"Opening {url}", flush=True)
    webbrowser.open(url)


def provider(
    server: str,
    callback: Callback,
    *,
    open_url: OpenURL = _open_in_browser,
    client_metadata_url: str | None = None,
    storage: TokenStorage | None = None,
) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(
        client_name="Example MCP client",
        redirect_uris=[callback.redirect_uri],  # type: ignore[list-item]
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",  # noqa: S106 - a public client
    )
    return OAuthClientProvider(
        server_url=server,
        client_metadata=metadata,
        storage=storage or MemoryStorage(),
        redirect_handler=open_url,
        callback_handler=callback.result,
        client_metadata_url=client_metadata_url,
    )


async def call_tools(
    server: str, auth: OAuthClientProvider, calls: list[tuple[str, dict[str, Any]]]
) -> list[str]:
    """Connect, then call each ``(tool, arguments)``; returns the tools' text answers."""
    answers = []
    async with (
        httpx2.AsyncClient(auth=auth, timeout=60) as http,
        streamable_http_client(server, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for name, arguments in calls:
            result = await session.call_tool(name, arguments)
            texts = [getattr(block, "text", "") for block in result.content]
            answers.append(" ".join(texts) if not result.is_error else f"error: {texts}")
    return answers


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="http://localhost:9100/mcp")
    parser.add_argument("--callback-port", type=int, default=53682)
    parser.add_argument("--client-metadata-url", default=None)
    parser.add_argument("--amount", default="4.50")
    args = parser.parse_args()
    callback = Callback(args.callback_port)
    await callback.start()
    try:
        auth = provider(args.server, callback, client_metadata_url=args.client_metadata_url)
        calls = [("balance", {}), ("pay", {"amount": args.amount, "to": "bookshop"})]
        print(json.dumps(await call_tools(args.server, auth, calls)))
    finally:
        await callback.stop()


if __name__ == "__main__":
    asyncio.run(main())
