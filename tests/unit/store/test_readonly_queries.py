"""The read-only role is granted what the verifier's queries read, derived from them."""

from __future__ import annotations

from app.store.readonly import readable_columns
from app.store.roles import READABLE_COLUMNS


def test_the_grants_are_the_columns_the_queries_name() -> None:
    assert readable_columns() == READABLE_COLUMNS
    assert READABLE_COLUMNS["signing_keys"] == ("activates_at", "public_jwk")
    assert "published_at" in READABLE_COLUMNS["revocations"]  # the head query's filter
    assert "dpop_required" in READABLE_COLUMNS["resource_servers"]


def test_no_secret_is_ever_readable() -> None:
    assert "sealed_private_key" not in READABLE_COLUMNS["signing_keys"]
    assert not {"refresh_tokens", "passkeys", "browser_sessions", "audit_events"} & set(
        READABLE_COLUMNS
    )
