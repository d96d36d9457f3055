"""SQLAlchemy 2 models. Portable types only: the same schema runs on PostgreSQL and SQLite.

Times are integer seconds since the epoch (``BigInteger``), which keeps both databases
consistent and maps directly onto token claims. Secrets are stored as SHA-256 hashes;
signing keys are sealed with AES-GCM.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Human(Base):
    __tablename__ = "humans"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    user_handle: Mapped[bytes] = mapped_column(LargeBinary(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[int] = mapped_column(BigInteger)


class Passkey(Base):
    __tablename__ = "passkeys"
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), primary_key=True)
    human_id: Mapped[str] = mapped_column(ForeignKey("humans.id"), index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[list[Any]] = mapped_column(JSON, default=list)
    user_verified: Mapped[bool] = mapped_column(Boolean)
    backup_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    backup_state: Mapped[bool] = mapped_column(Boolean, default=False)
    aaguid: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)


class Invite(Base):
    __tablename__ = "invites"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    human_id: Mapped[str] = mapped_column(ForeignKey("humans.id"), index=True)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class EnrollmentToken(Base):
    __tablename__ = "enrollment_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("humans.id"), index=True)
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)
    agent_id: Mapped[str | None] = mapped_column(String(40))


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # None for a public or metadata-document client: it belongs to no one human.
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("humans.id"), index=True)
    client_name: Mapped[str] = mapped_column(String(200))
    client_metadata: Mapped[dict[str, Any]] = mapped_column(JSON)
    jwks: Mapped[dict[str, Any]] = mapped_column(JSON)
    secret_hash: Mapped[str | None] = mapped_column(String(64))  # client_secret_basic/_post
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[int] = mapped_column(BigInteger)
    disabled_at: Mapped[int | None] = mapped_column(BigInteger)


class ResourceServer(Base):
    __tablename__ = "resource_servers"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    resource: Mapped[str] = mapped_column(String(512), unique=True)
    auth_method: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str | None] = mapped_column(String(200))
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    capability_types: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Whether Bearer (not sender-constrained) tokens are refused for this resource.
    dpop_required: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # scope → the authorization_details objects it stands for (without locations).
    scopes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    created_at: Mapped[int] = mapped_column(BigInteger)


class ApprovalRequester(Base):
    """A human (``human_id``) lets the agents of another human (``requester_id``) send them
    approval requests; without a row, only an agent's owner can be asked."""

    __tablename__ = "approval_requesters"
    human_id: Mapped[str] = mapped_column(ForeignKey("humans.id"), primary_key=True)
    requester_id: Mapped[str] = mapped_column(ForeignKey("humans.id"), primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class GrantRequest(Base):
    __tablename__ = "grant_requests"
    auth_req_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    human_id: Mapped[str] = mapped_column(ForeignKey("humans.id"), index=True)
    authorization_details: Mapped[list[Any]] = mapped_column(JSON)
    binding_message: Mapped[str | None] = mapped_column(String(200))
    max_delegation_depth: Mapped[int] = mapped_column(Integer, default=0)
    grant_lifetime: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    interval: Mapped[int] = mapped_column(Integer)
    last_polled_at: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[int | None] = mapped_column(BigInteger)
    grant_id: Mapped[str | None] = mapped_column(String(40))
    tokens_issued_at: Mapped[int | None] = mapped_column(BigInteger)
    # An authorization-code request's redirect, PKCE challenge, resources and scope; None
    # for a CIBA request.
    authorization_request: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A standing request: its grant is redeemed with client credentials while it lives.
    standing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Grant(Base):
    __tablename__ = "grants"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    auth_req_id: Mapped[str] = mapped_column(ForeignKey("grant_requests.auth_req_id"), unique=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    human_id: Mapped[str] = mapped_column(ForeignKey("humans.id"), index=True)
    authorization_details: Mapped[list[Any]] = mapped_column(JSON)
    max_delegation_depth: Mapped[int] = mapped_column(Integer)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="active")
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    scope: Mapped[str | None] = mapped_column(String(1000))  # the scopes it was approved as
    standing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Approval(Base):
    """The complete WebAuthn assertion behind a grant: re-verifiable from this row alone."""

    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    auth_req_id: Mapped[str] = mapped_column(ForeignKey("grant_requests.auth_req_id"), index=True)
    grant_id: Mapped[str | None] = mapped_column(String(40))
    human_id: Mapped[str] = mapped_column(ForeignKey("humans.id"))
    decision: Mapped[str] = mapped_column(String(16))
    credential_id: Mapped[bytes | None] = mapped_column(LargeBinary(1023))
    authenticator_data: Mapped[bytes | None] = mapped_column(LargeBinary)
    client_data_json: Mapped[bytes | None] = mapped_column(LargeBinary)
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    user_handle: Mapped[bytes | None] = mapped_column(LargeBinary)
    user_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    sign_count: Mapped[int | None] = mapped_column(BigInteger)
    challenge: Mapped[bytes | None] = mapped_column(LargeBinary(64))
    request_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    request_document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Challenge(Base):
    """A single-use WebAuthn challenge (registration, login or approval)."""

    __tablename__ = "webauthn_challenges"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    challenge: Mapped[bytes] = mapped_column(LargeBinary(64))
    human_id: Mapped[str | None] = mapped_column(String(40))
    subject: Mapped[str | None] = mapped_column(String(128))
    request_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class BrowserSession(Base):
    __tablename__ = "browser_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    human_id: Mapped[str] = mapped_column(ForeignKey("humans.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_seen_at: Mapped[int] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger)


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(40), index=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"), index=True)
    agent_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)
    jkt: Mapped[str | None] = mapped_column(String(64))  # the DPoP key the family is bound to


class AuthorizationCode(Base):
    """A single-use authorization code (stored hashed) for an approved request."""

    __tablename__ = "authorization_codes"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    auth_req_id: Mapped[str] = mapped_column(ForeignKey("grant_requests.auth_req_id"))
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class AccessToken(Base):
    __tablename__ = "access_tokens"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(40))
    audience: Mapped[str] = mapped_column(String(512))
    parent_jti: Mapped[str | None] = mapped_column(String(64), index=True)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class Revocation(Base):
    """Every revocation, in order; ``seq`` is the number published to the verifiers."""

    __tablename__ = "revocations"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    # Set once the event reached the cache; the worker republishes rows left unset.
    published_at: Mapped[int | None] = mapped_column(BigInteger, index=True)


class SpendLedger(Base):
    """Every spend a verifier accepted, drained from the cache's spend stream by the worker;
    budget counters are rebuilt from it when the cache lost them."""

    __tablename__ = "spend_ledger"
    entry_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(40))
    bucket: Mapped[str] = mapped_column(String(128))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    jti: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)


class SigningKeyRow(Base):
    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(128), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    sealed_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    activates_at: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)


class AuditHead(Base):
    """One row holding the chain's tip; updating it first serialises appends."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    # The hash before ``hash``: what the last append linked to (set by every append).
    prev_hash: Mapped[str | None] = mapped_column(String(64))


class AuditEvent(Base):
    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(128))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


Index(
    "ix_spend_ledger_grant_bucket", SpendLedger.grant_id, SpendLedger.bucket, SpendLedger.currency
)
Index("ix_grant_requests_human_status", GrantRequest.human_id, GrantRequest.status)
Index("ix_grants_agent_standing", Grant.agent_id, Grant.standing)
