"""Signed audit checkpoints: what a checkpoint must be to count (threat model, rule 4)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from app.core.checkpoints import (
    Checkpoint,
    CheckpointError,
    Coverage,
    audit_private_key,
    audit_public_key,
    public_half,
    read_checkpoint,
    sign_checkpoint,
)
from app.core.jwk import b64url_encode
from app.core.jws import sign_compact

ISSUER = "https://auth.example.com"
SEED = b64url_encode(secrets.token_bytes(32))
KEY = audit_private_key(SEED)
PUBLIC = audit_public_key(public_half(KEY))
GOOD = Checkpoint(seq=7, hash="a" * 64, at=1_800_000_000)


def test_a_checkpoint_round_trips() -> None:
    token = sign_checkpoint(GOOD, issuer=ISSUER, key=KEY)
    assert read_checkpoint(token, issuer=ISSUER, public=PUBLIC) == GOOD


def test_another_key_or_registry_is_refused() -> None:
    other = audit_private_key(b64url_encode(secrets.token_bytes(32)))
    forged = sign_checkpoint(GOOD, issuer=ISSUER, key=other)
    with pytest.raises(CheckpointError, match="not signed by the audit key"):
        read_checkpoint(forged, issuer=ISSUER, public=PUBLIC)
    elsewhere = sign_checkpoint(GOOD, issuer="https://other.example.com", key=KEY)
    with pytest.raises(CheckpointError, match="another registry"):
        read_checkpoint(elsewhere, issuer=ISSUER, public=PUBLIC)


@pytest.mark.parametrize(
    ("claims", "match"),
    [
        ({"seq": 0}, "seq must be a positive integer"),
        ({"seq": True}, "seq must be a positive integer"),
        ({"at": "now"}, "at must be a positive integer"),
        ({"hash": "A" * 64}, "hash must be 64 hexadecimal"),
        ({"hash": None}, "hash must be 64 hexadecimal"),
    ],
)
def test_a_checkpoint_of_the_wrong_shape_is_refused(claims: dict[str, Any], match: str) -> None:
    payload = {"iss": ISSUER, "seq": 7, "hash": "a" * 64, "at": 1, **claims}
    header = {"alg": "EdDSA", "typ": "audit-checkpoint+jwt", "kid": PUBLIC.jkt}
    with pytest.raises(CheckpointError, match=match):
        read_checkpoint(sign_compact(header, payload, KEY), issuer=ISSUER, public=PUBLIC)


@pytest.mark.parametrize(
    ("seed", "match"), [("!!!", "base64url"), (b64url_encode(b"short"), "32 bytes")]
)
def test_a_malformed_signing_key_is_refused(seed: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        audit_private_key(seed)


def test_a_malformed_public_key_is_refused() -> None:
    with pytest.raises(ValueError, match="not an Ed25519 key"):
        audit_public_key("AAAA")


def test_coverage_is_not_ok_when_rewritten_or_forged() -> None:
    assert Coverage(3, 9, uncovered=(10, 12)).ok
    assert not Coverage(3, 0, rewritten=(1, 4)).ok
    assert not Coverage(3, 0, invalid="000000000004.jws").ok
    assert Coverage(3, 0, rewritten=(1, 4)).to_dict()["rewritten"] == [1, 4]
