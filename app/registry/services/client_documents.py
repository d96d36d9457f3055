"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a
``client_id`` that is an https URL names the JSON document that describes the client.

The document is fetched by :func:`fetch_document`, which refuses what an attacker could use
to reach inside the network (server-side request forgery): only ``https`` (plain ``http``
only when ``AGENTAUTH_CLIENT_METADATA_ALLOW_PRIVATE`` is set, for development), the host
resolved once and every address checked (no loopback, private, link-local, multicast or
reserved address unless that setting allows it), the connection made to the checked address
(so a second DNS answer cannot change it), connect and total timeouts, a size cap, and no
redirects. The document's ``client_id`` must be the URL itself; its metadata is checked like
a registration's, and a shared secret is refused (the document is public).

A valid document becomes a client row (``agt_`` id derived from the URL, no owner) so grants,
tokens and the audit log refer to it like any client; it is fetched again once its
``Cache-Control`` lifetime, bounded by :data:`CACHE_BOUNDS`, is over.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import re
import socket
import ssl
import time
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.core.client_metadata import SECRET_METHODS, validate_client_metadata
from app.core.errors import InvalidClient, InvalidClientMetadata
from app.core.strict_json import JSONError, parse_json
from app.registry.grants import grant_types
from app.registry.ports import Database
from app.registry.services import audit
from app.settings.registry import RegistrySettings
from app.store import agents
from app.store.db import add_unless_taken
from app.store.sql import Db
from app.store.token_store import AgentRecord, active_agent

MAX_DOCUMENT_BYTES = 16 * 1024
CONNECT_TIMEOUT = 2.0
TOTAL_TIMEOUT = 5.0
CACHE_BOUNDS = (60, 86_400)  # seconds a document is kept: at least, at most
DEFAULT_CACHE = 300
MAX_CACHED = 10_000
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d{1,10})\s*(?:,|$)", re.IGNORECASE)


class DocumentRefused(InvalidClient):
    """The metadata document cannot be used; the description says why."""


def document_client_id(url: str) -> str:
    """The registry's id for the client a document URL describes (stable, 40 characters)."""
    digest = hashlib.sha256(url.encode("utf-8")).digest()
    return "agt_" + base64.b32encode(digest).decode("ascii").lower()[:36]


def check_document_url(url: str, *, allow_private: bool) -> None:
    """The draft's rules for the URL itself: https, a host, a path, no fragment, no user
    information, no dot segments."""
    if len(url) > 512 or any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in url):
        raise DocumentRefused("The client_id URL is not a valid URL.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here, before any connection
    except ValueError:
        raise DocumentRefused("The client_id URL is not a valid URL.") from None
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        raise DocumentRefused("A client_id URL must be an https URL.")
    if parts.username is not None or parts.password is not None or "#" in url:
        raise DocumentRefused("A client_id URL has no user information and no fragment.")
    if parts.path in ("", "/") or "/./" in parts.path + "/" or "/../" in parts.path + "/":
        raise DocumentRefused("A client_id URL needs a path without dot segments.")


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _resolve(host: str, port: int, *, allow_private: bool) -> str:
    """One checked address of ``host``: every address it resolves to must be public."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise DocumentRefused("The client_id URL's host does not resolve.") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise DocumentRefused("The client_id URL's host does not resolve.")
    if not allow_private and not all(_public(a) for a in addresses):
        raise DocumentRefused("The client_id URL's host is not on a public address.")
    return addresses[0]


def _max_age(headers: httpx.Headers) -> int:
    control = headers.get("cache-control", "")
    low, high = CACHE_BOUNDS
    if "no-store" in control.lower() or "no-cache" in control.lower():
        return low
    found = _MAX_AGE.search(control)
    seconds = int(found.group(1)) if found else DEFAULT_CACHE
    return max(low, min(high, seconds))


@lru_cache(maxsize=8)
def _tls(ca_file: str | None) -> ssl.SSLContext:
    """The system's trust store, plus the operator's CA file when one is configured."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context


async def fetch_document(
    url: str, *, allow_private: bool, ca_file: str | None = None
) -> tuple[dict[str, Any], int]:
    """The document at ``url`` and how long it may be kept; raises :class:`DocumentRefused`."""
    check_document_url(url, allow_private=allow_private)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        async with asyncio.timeout(TOTAL_TIMEOUT):
            address = await _resolve(host, port, allow_private=allow_private)
            literal = f"[{address}]" if ":" in address else address
            target = f"{parts.scheme}://{literal}:{port}{parts.path}"
            if parts.query:
                target += f"?{parts.query}"
            timeout = httpx.Timeout(TOTAL_TIMEOUT, connect=CONNECT_TIMEOUT)
            async with (
                httpx.AsyncClient(
                    timeout=timeout, follow_redirects=False, trust_env=False, verify=_tls(ca_file)
                ) as http,
                http.stream(
                    "GET",
                    target,
                    headers={"Host": parts.netloc, "Accept": "application/json"},
                    extensions={"sni_hostname": host},
                ) as response,
            ):
                if response.is_redirect:
                    raise DocumentRefused("The client metadata document redirects; refused.")
                if response.status_code != 200:
                    raise DocumentRefused(
                        f"The client metadata document answered {response.status_code}."
                    )
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise DocumentRefused(
                            f"The client metadata document is over {MAX_DOCUMENT_BYTES} bytes."
                        )
                headers = response.headers
    except TimeoutError:
        raise DocumentRefused("The client metadata document took too long.") from None
    except httpx.HTTPError:
        raise DocumentRefused("The client metadata document could not be fetched.") from None
    try:
        document = parse_json(bytes(body))
    except JSONError:
        raise DocumentRefused("The client metadata document is not JSON.") from None
    if not isinstance(document, dict):
        raise DocumentRefused("The client metadata document is not a JSON object.")
    return document, _max_age(headers)


def document_metadata(url: str, document: dict[str, Any]) -> dict[str, Any]:
    """The document's metadata, checked: its ``client_id`` is the URL and it holds no secret."""
    if document.get("client_id") != url:
        raise DocumentRefused("The document's client_id is not the URL it was fetched from.")
    method = document.get("token_endpoint_auth_method", "none")
    if method in SECRET_METHODS or "client_secret" in document:
        raise DocumentRefused("A client metadata document cannot use a shared secret.")
    try:
        metadata = validate_client_metadata(
            {**document, "token_endpoint_auth_method": method}, known_grants=grant_types()
        )
    except InvalidClientMetadata as exc:
        raise DocumentRefused(
            f"The client metadata document is invalid: {exc.description}"
        ) from None
    return {**metadata, "client_id_metadata_document": url}


class DocumentFreshness:
    """Document URL → when (monotonic) it must be fetched again; at most :data:`MAX_CACHED`."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def fresh(self, url: str) -> bool:
        return self._until.get(url, 0.0) > time.monotonic()

    def fetched(self, url: str, max_age: int) -> None:
        if len(self._until) >= MAX_CACHED:
            self._until.clear()
        self._until[url] = time.monotonic() + max_age


async def _store(database: Database, url: str, metadata: dict[str, Any], now: int) -> None:
    """Create or update the client row (its status, which the operator may have set to
    disabled, is kept)."""
    client_id = document_client_id(url)
    async with database.sessions() as session, session.begin():
        agent = await agents.agent(session, client_id, lock=True)
        if agent is None:
            created = agents.new(
                agent_id=client_id, owner_id=None, metadata=metadata, secret_hash=None, now=now
            )
            if await add_unless_taken(session, created):
                await audit.append(
                    session,
                    "agent.registered",
                    actor="client-metadata-document",
                    subject=client_id,
                    now=now,
                    data={"client_name": created.client_name, "client_id_metadata_document": url},
                )
                return
            # A concurrent request recorded the client first: update its row like any other.
            agent = await agents.agent(session, client_id, lock=True)
        if agent is not None and agent.client_metadata != metadata:
            agent.client_name = metadata["client_name"]
            agent.client_metadata = metadata
            agent.jwks = metadata.get("jwks", {"keys": []})


async def refresh_document(
    database: Database,
    settings: RegistrySettings,
    documents: DocumentFreshness,
    url: str,
    now: int,
) -> None:
    """Fetch the document at ``url`` and record the client it describes, unless the copy
    recorded is still within its cache lifetime; raises :class:`DocumentRefused` when the
    document cannot be used. Call it holding no database connection: the fetch may take
    seconds."""
    if documents.fresh(url):
        return
    document, max_age = await fetch_document(
        url,
        allow_private=settings.client_metadata_allow_private,
        ca_file=settings.client_metadata_ca_file,
    )
    await _store(database, url, document_metadata(url, document), now)
    documents.fetched(url, max_age)


async def document_client(db: Db, url: str) -> AgentRecord | None:
    """The active client recorded for the document at ``url`` (see :func:`refresh_document`)."""
    return await active_agent(db, document_client_id(url))
