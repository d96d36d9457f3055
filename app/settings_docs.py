"""What each setting means, for the generated table in docs/configuration.md.

``agentauth config docs`` prints the table; a test fails when the document differs.
"""

from __future__ import annotations

from app.settings import Settings

HELP: dict[str, str] = {
    "environment": "`development` or `production`",
    "issuer": (
        "registry base URL; exactly the `iss` of every token (no trailing slash, query or fragment)"
    ),
    "verifier_url": "verifier base URL (advertised as the introspection endpoint)",
    "database_url": "`postgresql+asyncpg://...` in production",
    "redis_url": "`redis://...`; `memory://` is the in-process development backend",
    "admin_token": (
        "operator bearer token, at least 32 characters; the admin API is closed without it"
    ),
    "metrics_token": (
        "bearer token for `/metrics` on both processes, at least 32 characters; unset, the"
        " endpoint is open (serve it on an internal port only)"
    ),
    "trusted_proxies": (
        "comma-separated addresses or networks of the reverse proxies in front (or `*`);"
        " only their `X-Forwarded-For`/`-Proto` is believed. Empty: none, the TCP peer is"
        " the client"
    ),
    "audit_checkpoints": (
        "where signed audit checkpoints go, on storage the database cannot write: a directory,"
        " or `s3://bucket/prefix` (`agentauth dev`: `<data-dir>/audit-checkpoints`); unset,"
        " no checkpoints"
    ),
    "audit_s3_endpoint": "S3 or S3-compatible endpoint for `s3://` checkpoints (path-style)",
    "audit_s3_region": "its region, for request signing",
    "audit_s3_access_key_id": "access key id for `s3://` checkpoints (put, get and list)",
    "audit_s3_secret_access_key": "its secret access key",
    "audit_checkpoint_interval": (
        "seconds between the worker's checkpoints of a growing audit chain (1 to 86400)"
    ),
    "audit_signing_key": (
        "the audit key: an Ed25519 seed, 32 bytes base64url, held by the worker only"
        " (`agentauth audit keygen`)"
    ),
    "audit_public_key": (
        "its public half (base64url), for `audit verify` where the signing key is not;"
        " unset, derived from the signing key"
    ),
    "key_encryption_key": (
        "32 bytes, base64 or base64url; encrypts signing keys at rest (AES-256-GCM);"
        " in development a local `.agentauth-kek` file is used when unset"
    ),
    "dpop_nonce_secret": "at least 32 characters; shared by all replicas for stateless DPoP nonces",
    "webauthn_rp_id": "WebAuthn relying-party id (unset: the issuer's host)",
    "webauthn_origin": "WebAuthn origin (unset: the issuer's origin)",
    "signing_alg": "`ES256` or `EdDSA` for new signing keys",
    "access_token_ttl": "access-token lifetime in seconds (30 to 3600)",
    "clock_skew": "leeway in seconds for `exp`/`iat`/`nbf` checks (0 to 60)",
    "dpop_max_age": "oldest accepted DPoP proof `iat`, in seconds (10 to 600)",
    "dpop_require_nonce": "require server nonces in DPoP proofs (needs `DPOP_NONCE_SECRET`)",
    "revocation_heartbeat_interval": (
        "seconds between the registry's and the worker's heartbeats announcing the"
        " revocation log's head (0.05 to 5)"
    ),
    "revocation_staleness_bound": (
        "a verifier whose revocation view was last confirmed current longer ago than this"
        " many seconds answers 503 (0.1 to 60; keep it above the heartbeat interval)"
    ),
    "cache_namespace": (
        "prefix of every Redis key and channel (several deployments can share one Redis)"
    ),
    "rate_limit_scale": (
        "multiplies every per-address and per-client rate limit (see api.md); raise it for"
        " load tests (behind a proxy, set `AGENTAUTH_TRUSTED_PROXIES` instead)"
    ),
    "key_reload_seconds": (
        "how often each registry worker reloads the key set"
        " (keep it well below the pre-publication period)"
    ),
    "key_prepublish_seconds": (
        "default period a rotated key is published before it signs (0 to 30 days)"
    ),
    "invite_ttl": "lifetime of a human's invite link in seconds (5 minutes to 30 days)",
    "database_pool_size": (
        "PostgreSQL connections per registry worker process (no overflow: requests wait for"
        " a free connection); size `max_connections` for registry workers x this,"
        " + 2 per verifier worker, + 2 per worker"
    ),
    "log_level": "`DEBUG`, `INFO`, `WARNING` or `ERROR`",
    "log_format": (
        "`json` (one object per line with `ts`, `level`, `logger`, `message`, `request_id`;"
        " tokens and credentials scrubbed) or `text` (plain lines, scrubbed the same way)"
    ),
    "otel_endpoint": (
        "OTLP/HTTP traces endpoint (e.g. `http://otel-collector:4318/v1/traces`); tracing is"
        " off without it and needs the `otel` extra (`pip install 'agentauth-server[otel]'`)"
    ),
}


def _default(name: str) -> str:
    value = Settings.model_fields[name].get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def settings_table() -> str:
    """The Markdown table of every ``AGENTAUTH_*`` setting, in declaration order."""
    missing = set(Settings.model_fields) - set(HELP)
    if missing:
        raise ValueError(f"settings without help text: {sorted(missing)}")
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name in Settings.model_fields:
        rows.append(f"| `AGENTAUTH_{name.upper()}` | {_default(name)} | {HELP[name]} |")
    return "\n".join(rows) + "\n"
