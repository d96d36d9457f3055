"""Resource identifiers (RFC 8707) in one canonical form, compared exactly everywhere."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import urlsplit

MAX_RESOURCE_CHARS = 512


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def canonical_resource(url: object) -> str:
    """Canonicalise a resource URL (RFC 8707 §2; docs/protocol.md "Forms, resources,
    errors"); raise ``ValueError``.

    Absolute ``https`` URI (``http`` only for loopback hosts, for local development), no
    userinfo, query or fragment; scheme and host lower-cased, default port and trailing slash
    removed. ``HTTPS://Shop.Example/api/`` becomes ``https://shop.example/api``.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_RESOURCE_CHARS:
        raise ValueError("a resource must be an absolute URI")
    if any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in url):
        raise ValueError("a resource must be an ASCII URI without spaces")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("https", "http") or not host:
        raise ValueError("a resource must be an absolute https URI (http only on loopback)")
    if scheme == "http" and not _is_loopback(host):
        raise ValueError("a resource must use https (http only on loopback)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("a resource must not carry user information")
    if parts.query or parts.fragment or "#" in url or "?" in url:
        raise ValueError("a resource must not have a query or fragment")
    port = parts.port  # raises ValueError for a bad port
    if ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    netloc = host if port in (None, default) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    if "/./" in path + "/" or "/../" in path + "/":
        raise ValueError("a resource must not contain dot segments")
    return f"{scheme}://{netloc}{path}"


@lru_cache(maxsize=4096)  # merchants' URLs repeat; bounded against junk
def url_within_resource(url: str, resource: str) -> bool:
    """True when request ``url`` lies under ``resource``: same origin, path prefix on a
    segment boundary (``/api`` covers ``/api/orders`` but not ``/apix``)."""
    parts = urlsplit(url)
    try:
        base = canonical_resource(f"{parts.scheme}://{parts.netloc}{parts.path}")
    except ValueError:
        return False
    return base == resource or base.startswith(resource + "/")
