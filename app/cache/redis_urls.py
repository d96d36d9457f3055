"""Where the Redis primary is: a plain URL (``redis://``, ``rediss://``, ``unix://``) or a set
of Sentinels that name it, as ``redis+sentinel://[[user]:password@]host:port[,host:port...]
/service[/db]`` (the password is the data nodes'; the Sentinels are asked without one unless
``?sentinel_password=`` is given). Redis Cluster is not supported: the admission scripts
touch several keys that would hash to different slots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel://"


@dataclass(frozen=True)
class SentinelAddress:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def parse_sentinel_url(url: str) -> SentinelAddress:
    """Raises ``ValueError`` naming what is wrong."""
    if not url.startswith(SENTINEL_SCHEME):
        raise ValueError(f"a Sentinel URL starts with {SENTINEL_SCHEME}")
    rest, _, query = url[len(SENTINEL_SCHEME) :].partition("?")
    authority, _, path = rest.partition("/")
    credentials, _, hosts = authority.rpartition("@")
    username = password = None
    if credentials:
        user, _, secret = credentials.partition(":")
        username, password = unquote(user) or None, unquote(secret) or None
    sentinels = []
    for host_port in hosts.split(","):
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"a Sentinel is host:port, not {host_port!r}")
        sentinels.append((host, int(port)))
    service, _, db = path.partition("/")
    if not service:
        raise ValueError("the Sentinel URL names no service (…/mymaster)")
    if db and not db.isdigit():
        raise ValueError(f"the database is a number, not {db!r}")
    options = parse_qs(query)
    unknown = set(options) - {"sentinel_password"}
    if unknown:
        raise ValueError(f"unknown Sentinel URL option {sorted(unknown)[0]!r}")
    sentinel_password = options.get("sentinel_password", [None])[0]
    return SentinelAddress(
        tuple(sentinels), service, int(db or 0), username, password, sentinel_password
    )


def redis_client(url: str, **options: Any) -> Redis:
    """A client for ``url``; through Sentinels it follows the primary across failovers (a
    connection to a demoted primary fails and the next one asks the Sentinels again)."""
    if not url.startswith(SENTINEL_SCHEME):
        return Redis.from_url(url, **options)
    address = parse_sentinel_url(url)
    timeouts: dict[str, Any] = {
        k: options[k] for k in ("socket_timeout", "socket_connect_timeout") if k in options
    }
    sentinel_options: dict[str, Any] = dict(timeouts)
    if address.sentinel_password is not None:
        sentinel_options["password"] = address.sentinel_password
    sentinel = Sentinel(address.sentinels, sentinel_kwargs=sentinel_options, **timeouts)
    client: Redis = sentinel.master_for(
        address.service,
        db=address.db,
        username=address.username,
        password=address.password,
        **options,
    )
    return client
