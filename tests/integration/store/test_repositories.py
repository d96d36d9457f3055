"""The store's repositories (every module of ``app.store`` the registry and the worker call)
on PostgreSQL and on SQLite: the same calls give the same answers on both. The module has a
database of its own, so listings see only its rows, and each test's writes are rolled back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.registry.services import audit
from app.store import (
    agents,
    audit_log,
    browser_sessions,
    challenges,
    grants,
    ledger,
    people,
    pruning,
    readonly,
    resource_servers,
    revocation_log,
    signing_keys,
    tokens,
)
from app.store.db import (
    add_unless_taken,
    create_engine,
    reachable,
    read_one_row,
    session_factory,
)
from app.store.models import (
    AccessToken,
    EnrollmentToken,
    Grant,
    Human,
    Invite,
    Passkey,
    RefreshToken,
    ResourceServer,
)
from tests.support.databases import own_database_fixtures

database_url, verifier_database_url = own_database_fixtures("repositories")

pytestmark = pytest.mark.asyncio
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def seeded(database_url: str) -> str:
    async def seed() -> None:
        engine = create_engine(database_url, pool_size=1)
        async with session_factory(engine)() as db, db.begin():
            await _seed(db)
        await engine.dispose()

    asyncio.run(seed())
    return database_url


@pytest.fixture
async def engine(seeded: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(seeded, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session whose writes are rolled back, so each test sees the seed alone."""
    async with session_factory(engine)() as session, session.begin():
        yield session
        await session.rollback()


def _human(human_id: str, at: int, status: str = "active") -> Human:
    return Human(
        id=human_id,
        display_name=human_id.title(),
        user_handle=human_id.encode(),
        status=status,
        created_at=at,
    )


def _grant(grant_id: str, agent_id: str, human_id: str, at: int, **extra: object) -> Grant:
    values: dict[str, object] = {
        "id": grant_id,
        "auth_req_id": f"req-{grant_id}",
        "agent_id": agent_id,
        "human_id": human_id,
        "authorization_details": [{"type": "api", "locations": ["https://shop.example/"]}],
        "max_delegation_depth": 1,
        "auth_time": at,
        "created_at": at,
        "expires_at": NOW + 3600,
        **extra,
    }
    return Grant(**values)


def _request(
    auth_req_id: str, agent_id: str, human_id: str, at: int, **extra: object
) -> dict[str, object]:
    return {
        "auth_req_id": auth_req_id,
        "agent_id": agent_id,
        "human_id": human_id,
        "authorization_details": [
            {"type": "api", "locations": ["https://shop.example/", "https://bank.example/"]}
        ],
        "binding_message": None,
        "max_delegation_depth": 0,
        "grant_lifetime": 3600,
        "created_at": at,
        "expires_at": NOW + 300,
        "interval": 5,
        **extra,
    }


def _token(jti: str, grant_id: str, parent: str | None = None) -> AccessToken:
    return AccessToken(
        jti=jti,
        grant_id=grant_id,
        client_id="agt_a",
        audience="https://shop.example/",
        parent_jti=parent,
        issued_at=NOW,
        expires_at=NOW + 300,
    )


async def _seed(db: AsyncSession) -> None:
    """Alice (active) owns agents a and b; Bob is suspended; grants g1 (active, a), g2
    (revoked, b), g3 (expired, a) are Alice's; g1 issued three tokens, two of them exchanged."""
    db.add_all([_human("alice", 2), _human("bob", 1, status="suspended")])
    await db.flush()
    for agent_id, owner, at in (
        ("agt_b", "alice", 20),
        ("agt_a", "alice", 10),
        ("agt_c", None, 30),
    ):
        metadata = {"client_name": f"Agent {agent_id[-1]}", "jwks": {"keys": []}}
        agents.add(
            db,
            agents.new(
                agent_id=agent_id, owner_id=owner, metadata=metadata, secret_hash=None, now=at
            ),
        )
    await db.flush()
    for row in (
        _request("req-g1", "agt_a", "alice", 100, status="approved"),
        _request("req-g2", "agt_b", "alice", 101, status="approved"),
        _request("req-g3", "agt_a", "alice", 102, status="approved"),
        _request("req-open-old", "agt_a", "alice", 103),
        _request("req-open-new", "agt_b", "alice", 104),
        _request("req-expired", "agt_a", "alice", 105, expires_at=NOW - 1),
        _request("req-denied", "agt_a", "alice", 106, status="denied"),
        _request("req-old-granted", "agt_a", "alice", 107, expires_at=NOW - 10, grant_id="g1"),
    ):
        grants.add_request(db, **row)
    await db.flush()
    db.add_all(
        [
            _grant("g1", "agt_a", "alice", 200),
            _grant("g2", "agt_b", "alice", 201, status="revoked", revoked_at=NOW - 5),
            _grant("g3", "agt_a", "alice", 202, expires_at=NOW - 1),
        ]
    )
    await db.flush()
    db.add_all([_token("t1", "g1"), _token("t2", "g1", "t1"), _token("t3", "g1", "t2")])
    db.add(
        RefreshToken(
            token_hash="rt-hash",
            family_id="f",
            grant_id="g1",
            agent_id="agt_a",
            created_at=NOW,
            expires_at=NOW + 3600,
        )
    )
    db.add_all(
        [
            Invite(token_hash="inv-alice", human_id="alice", expires_at=NOW + 60),
            Invite(token_hash="inv-used", human_id="alice", expires_at=NOW + 60, used_at=NOW),
            Invite(token_hash="inv-expired", human_id="alice", expires_at=NOW),
            Invite(token_hash="inv-bob", human_id="bob", expires_at=NOW + 60),
        ]
    )
    for token_hash, owner, expires in (
        ("enr-alice", "alice", NOW + 60),
        ("enr-expired", "alice", NOW),
        ("enr-bob", "bob", NOW + 60),
    ):
        db.add(
            EnrollmentToken(
                token_hash=token_hash,
                owner_id=owner,
                created_by="admin",
                created_at=NOW,
                expires_at=expires,
            )
        )
    db.add_all(
        [
            Passkey(
                credential_id=cid,
                human_id="alice",
                public_key=b"k",
                user_verified=True,
                created_at=NOW,
            )
            for cid in (b"cred-1", b"cred-2")
        ]
    )
    for server_id, resource, types, at in (
        ("rs_shop", "https://shop.example/", {"payment": {}, "api": {}}, 2),
        ("rs_bank", "https://bank.example/", {"transfer": {}}, 1),
        ("rs_none", "https://none.example/", {}, 3),
    ):
        db.add(
            ResourceServer(
                id=server_id,
                name=server_id,
                resource=resource,
                auth_method="client_secret_basic",
                capability_types=types,
                created_at=at,
            )
        )
    for event, actor, subject in (
        ("human.login", "alice", "alice"),
        ("grant.requested", "agt_a", "req-g1"),
        ("agent.disabled", "admin", "agt_b"),
        ("human.suspended", "admin", "bob"),
    ):
        await audit.append(db, event, actor=actor, subject=subject, now=NOW)


# people


async def test_a_human_is_found_by_id_and_only_an_active_one_counts_as_active(
    db: AsyncSession,
) -> None:
    alice, bob = await people.human(db, "alice"), await people.human(db, "bob", lock=True)
    assert alice is not None
    assert bob is not None
    assert bob.status == "suspended"
    assert await people.human(db, "nobody") is None
    assert await people.active_human(db, "alice") is alice
    assert await people.active_human(db, "bob") is None
    assert await people.active_human(db, None) is None


async def test_every_human_is_listed_oldest_first(db: AsyncSession) -> None:
    assert [h.id for h in await people.every_human(db)] == ["bob", "alice"]


@pytest.mark.parametrize(
    ("token_hash", "found"),
    [
        ("inv-alice", "alice"),
        ("inv-used", None),
        ("inv-expired", None),
        ("inv-bob", None),
        ("unknown", None),
    ],
)
async def test_an_invite_is_usable_only_unused_unexpired_and_for_an_active_human(
    db: AsyncSession, token_hash: str, found: str | None
) -> None:
    human = await people.usable_invite(db, token_hash, NOW)
    assert (human.id if human else None) == found


async def test_an_invite_is_claimed_once(db: AsyncSession) -> None:
    assert await people.claim_invite(db, "inv-alice", NOW) is True
    assert await people.claim_invite(db, "inv-alice", NOW) is False
    assert await people.claim_invite(db, "inv-used", NOW) is False
    assert await people.usable_invite(db, "inv-alice", NOW) is None


async def test_an_enrollment_token_is_claimed_once_and_names_its_active_owner(
    db: AsyncSession,
) -> None:
    owner = await people.claim_enrollment_token(db, "enr-alice", NOW)
    assert owner is not None
    assert owner.id == "alice"
    assert await people.claim_enrollment_token(db, "enr-alice", NOW) is None
    await people.note_enrolled_agent(db, "enr-alice", "agt_a")
    row = await db.get(EnrollmentToken, "enr-alice")
    assert row is not None
    assert (row.used_at, row.agent_id) == (NOW, "agt_a")


@pytest.mark.parametrize("token_hash", ["enr-expired", "enr-bob", "unknown"])
async def test_an_expired_or_suspended_owners_enrollment_token_claims_nobody(
    db: AsyncSession, token_hash: str
) -> None:
    assert await people.claim_enrollment_token(db, token_hash, NOW) is None


async def test_a_humans_passkey_ids_are_listed(db: AsyncSession) -> None:
    assert sorted(await people.passkey_ids(db, "alice")) == [b"cred-1", b"cred-2"]
    assert await people.passkey_ids(db, "bob") == []


async def test_a_requester_is_allowed_once_listed_and_withdrawn(db: AsyncSession) -> None:
    assert await people.allows(db, "alice", "bob") is False
    row, created = await people.allow_requester(db, "alice", "bob", NOW)
    assert row.created_at == NOW
    assert created is True
    again, created_again = await people.allow_requester(db, "alice", "bob", NOW + 5)
    assert created_again is False
    assert again.created_at == NOW
    assert await people.allows(db, "alice", "bob") is True
    assert [(r.requester_id, h.id) for r, h in await people.requesters_of(db, "alice")] == [
        ("bob", "bob")
    ]
    assert await people.withdraw_requester(db, "alice", "bob") is True
    assert await people.withdraw_requester(db, "alice", "bob") is False
    assert await people.requesters_of(db, "alice") == []


# agents


async def test_agents_are_listed_oldest_first_all_or_by_owner(db: AsyncSession) -> None:
    assert [a.id for a in await agents.every_agent(db)] == ["agt_a", "agt_b", "agt_c"]
    assert [a.id for a in await agents.owned_by(db, "alice")] == ["agt_a", "agt_b"]
    assert await agents.owned_by(db, "bob") == []


async def test_an_added_agent_keeps_its_metadata_and_keys(db: AsyncSession) -> None:
    metadata = {"client_name": "New", "token_endpoint_auth_method": "none"}
    new = agents.new(
        agent_id="agt_new", owner_id=None, metadata=metadata, secret_hash=None, now=NOW
    )
    agents.add(db, new)
    await db.flush()
    db.expunge_all()
    (stored,) = [a for a in await agents.every_agent(db) if a.id == "agt_new"]
    assert (stored.client_name, stored.client_metadata, stored.jwks) == (
        "New",
        metadata,
        {"keys": []},
    )
    assert stored.status == "active"


# grants


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["g1", "g2", "g3"]),
        ({"human": "alice", "agent": "agt_a"}, ["g1", "g3"]),
        ({"status": "revoked"}, ["g2"]),
        ({"human": "bob"}, []),
    ],
)
async def test_the_grant_listing_is_oldest_first_and_filtered(
    db: AsyncSession, filters: dict[str, str], expected: list[str]
) -> None:
    query = {"human": None, "agent": None, "status": None, **filters}
    assert [g.id for g in await grants.listing(db, **query)] == expected


async def test_a_humans_grants_are_newest_first_and_active_ones_exclude_revoked_and_expired(
    db: AsyncSession,
) -> None:
    assert [g.id for g in await grants.of_human(db, "alice")] == ["g3", "g2", "g1"]
    assert [g.id for g in await grants.active_of_human(db, "alice", NOW)] == ["g1"]
    named = await grants.of_human_with_agent_names(db, "alice")
    assert [(g.id, name) for g, name in named] == [
        ("g3", "Agent a"),
        ("g2", "Agent b"),
        ("g1", "Agent a"),
    ]


async def test_token_counts_are_per_grant_and_optionally_only_exchanged_ones(
    db: AsyncSession,
) -> None:
    assert await grants.token_counts(db, ["g1", "g2"]) == {"g1": 3}
    assert await grants.token_counts(db, ["g1"], delegated_only=True) == {"g1": 2}
    assert await grants.token_counts(db, []) == {}


async def test_pending_requests_are_open_unexpired_newest_first_with_their_agents(
    db: AsyncSession,
) -> None:
    pending = await grants.pending_requests(db, "alice", NOW)
    assert [(r.auth_req_id, a.id) for r, a in pending] == [
        ("req-open-new", "agt_b"),
        ("req-open-old", "agt_a"),
    ]
    assert await grants.pending_requests(db, "bob", NOW) == []


# audit log


async def test_audit_events_after_a_sequence_number_come_in_order_and_limited(
    db: AsyncSession,
) -> None:
    every = await audit_log.events_after(db, 0, 100)
    assert [e.event for e in every] == [
        "human.login",
        "grant.requested",
        "agent.disabled",
        "human.suspended",
    ]
    later = await audit_log.events_after(db, every[0].seq, 2)
    assert [e.seq for e in later] == [every[1].seq, every[2].seq]


async def test_the_latest_events_about_parties_match_actor_or_subject_newest_first(
    db: AsyncSession,
) -> None:
    about = await audit_log.latest_about(db, ["alice", "agt_a", "agt_b"], 10)
    assert [e.event for e in about] == ["agent.disabled", "grant.requested", "human.login"]
    assert len(await audit_log.latest_about(db, ["alice", "agt_a", "agt_b"], 1)) == 1


# resource servers


async def test_resource_servers_are_listed_oldest_first_or_by_location(db: AsyncSession) -> None:
    assert [s.id for s in await resource_servers.every_server(db)] == [
        "rs_bank",
        "rs_shop",
        "rs_none",
    ]
    found = await resource_servers.at_locations(db, ["https://shop.example/", "https://x.example/"])
    assert [s.id for s in found] == ["rs_shop"]


async def test_capability_types_are_read_per_resource_and_as_one_set(db: AsyncSession) -> None:
    schemas = await resource_servers.type_schemas(db)
    assert schemas == {
        "https://shop.example/": {"payment": {}, "api": {}},
        "https://bank.example/": {"transfer": {}},
        "https://none.example/": {},
    }
    assert await resource_servers.type_names(db) == {"payment", "api", "transfer"}


# tokens and the connection


async def test_issued_tokens_are_found_by_hash_and_jti(db: AsyncSession) -> None:
    refresh = await tokens.refresh_token(db, "rt-hash")
    assert refresh is not None
    assert (refresh.grant_id, refresh.agent_id) == ("g1", "agt_a")
    access = await tokens.access_token(db, "t2")
    assert access is not None
    assert access.parent_jti == "t1"
    assert await tokens.refresh_token(db, "t1") is None
    assert await tokens.access_token(db, "rt-hash") is None


async def test_a_reachable_database_answers_and_an_unreachable_one_does_not(
    engine: AsyncEngine, database_url: str, tmp_path: object
) -> None:
    assert await reachable(engine) is True
    if database_url.startswith("postgresql"):
        gone = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none", pool_size=1)
    else:
        gone = create_engine("sqlite+aiosqlite:////nonexistent/dir/agentauth.db", pool_size=1)
    try:
        assert await reachable(gone) is False
    finally:
        await gone.dispose()


async def test_a_key_a_concurrent_transaction_took_is_refused_and_the_session_survives(
    engine: AsyncEngine,
) -> None:
    """``add_unless_taken`` waits for the transaction holding the key (the unique index on
    PostgreSQL, the write lock on SQLite) and then answers False instead of raising."""

    def server(server_id: str) -> ResourceServer:
        return ResourceServer(
            id=server_id,
            name=server_id,
            resource="https://raced.example/",
            auth_method="client_secret_basic",
            capability_types={},
            created_at=NOW,
        )

    factory = session_factory(engine)

    async def second() -> tuple[bool, int]:
        async with factory() as db, db.begin():
            added = await add_unless_taken(db, server("rs_second"))
            return added, len(await resource_servers.every_server(db))

    try:
        async with factory() as first, first.begin():
            first.add(server("rs_first"))
            await first.flush()
            racing = asyncio.create_task(second())
            await asyncio.sleep(0.3)
            assert not racing.done()  # it waits for the first transaction
        added, servers = await asyncio.wait_for(racing, 30)
        assert added is False
        assert servers == 4  # the session answered after the refusal: the seed's three + one
    finally:
        async with factory() as db, db.begin():
            await db.execute(delete(ResourceServer).where(ResourceServer.id == "rs_first"))


# the revocation log, issued tokens, signing keys, the ledger, challenges, sessions


async def test_revocations_get_increasing_seqs_and_are_found_until_published(
    db: AsyncSession,
) -> None:
    before, _, _ = await revocation_log.head(db)
    first = await revocation_log.record(db, "grant", "g1", NOW - 10, NOW + 60)
    second = await revocation_log.record(db, "token", "t1", NOW, None)
    assert first.seq == before + 1
    assert second.seq == first.seq + 1
    assert (await revocation_log.head(db))[:2] == (second.seq, first.seq)
    old_enough = await revocation_log.unpublished(db, NOW - 5, 10)
    assert [r.seq for r in old_enough] == [first.seq]
    assert len(await revocation_log.unpublished(db, NOW, 1)) == 1
    await revocation_log.mark_published(db, [first.seq, second.seq], NOW)
    assert await revocation_log.unpublished(db, NOW, 10) == []
    seq, pending, position = await revocation_log.head(db)
    assert (seq, pending) == (second.seq, None)
    assert (position is None) == (db.get_bind().dialect.name == "sqlite")


async def test_a_grants_refresh_tokens_are_revoked_and_exchanged_children_found(
    db: AsyncSession,
) -> None:
    await tokens.revoke_refresh_tokens_of(db, "g1")
    refresh = await tokens.refresh_token(db, "rt-hash")
    assert refresh is not None
    await db.refresh(refresh)
    assert refresh.status == "revoked"
    assert [t.jti for t in await tokens.live_children(db, ["t1"])] == ["t2"]
    assert sorted(t.jti for t in await tokens.live_children(db, ["t1", "t2"])) == ["t2", "t3"]
    child = await tokens.access_token(db, "t3")
    assert child is not None
    child.revoked_at = NOW
    await db.flush()
    assert await tokens.live_children(db, ["t2"]) == []


async def test_still_active_grants_are_found_per_agent_or_per_human(db: AsyncSession) -> None:
    assert sorted(g.id for g in await grants.active_of(db, agent_id="agt_a")) == ["g1", "g3"]
    assert sorted(g.id for g in await grants.active_of(db, human_id="alice")) == ["g1", "g3"]
    assert await grants.active_of(db, agent_id="agt_c") == []
    with pytest.raises(ValueError, match="exactly one"):
        await grants.active_of(db)


async def test_a_grant_and_a_grant_request_are_found_by_id(db: AsyncSession) -> None:
    grant = await grants.grant(db, "g2", lock=True)
    request = await grants.request(db, "req-open-old", lock=True)
    assert (grant.status if grant else None, request.status if request else None) == (
        "revoked",
        "pending",
    )
    assert await grants.grant(db, "g9") is None
    assert await grants.request(db, "req-none") is None


async def test_a_challenge_is_used_once_for_its_purpose_before_it_expires(
    db: AsyncSession,
) -> None:
    for challenge, expires_at in ((b"c-live", NOW + 60), (b"c-expired", NOW)):
        challenges.add(
            db,
            challenge,
            purpose="login",
            expires_at=expires_at,
            human_id=None,
            subject="s",
            digest=None,
        )
    await db.flush()
    assert await challenges.use(db, b"c-live", purpose="approve", now=NOW) is None
    used = await challenges.use(db, b"c-live", purpose="login", now=NOW)
    assert used is not None
    assert (used.challenge, used.subject, used.used_at) == (b"c-live", "s", NOW)
    assert await challenges.use(db, b"c-live", purpose="login", now=NOW) is None
    assert await challenges.use(db, b"c-expired", purpose="login", now=NOW) is None
    assert await challenges.use(db, b"c-unknown", purpose="login", now=NOW) is None


async def test_a_browser_session_and_a_passkey_are_found_by_their_keys(db: AsyncSession) -> None:
    browser_sessions.add(db, id_hash="sess", human_id="alice", csrf_token="csrf", now=NOW)
    await db.flush()
    found = await browser_sessions.by_hash(db, "sess")
    assert found is not None
    assert (found.human_id, found.csrf_token, found.last_seen_at) == ("alice", "csrf", NOW)
    assert await browser_sessions.by_hash(db, "none") is None
    passkey = await people.passkey(db, b"cred-1", lock=True)
    assert passkey is not None
    assert passkey.human_id == "alice"
    assert await people.passkey(db, b"cred-9") is None


async def test_signing_keys_are_stored_and_listed(db: AsyncSession) -> None:
    signing_keys.add(
        db,
        kid="k1",
        alg="ES256",
        public_jwk={"kty": "EC"},
        sealed_private_key=b"sealed",
        activates_at=NOW,
        now=NOW,
    )
    await db.flush()
    (stored,) = [k for k in await signing_keys.every_key(db) if k.kid == "k1"]
    assert (stored.alg, stored.public_jwk, stored.sealed_private_key) == (
        "ES256",
        {"kty": "EC"},
        b"sealed",
    )


async def test_a_ledger_entry_recorded_twice_is_kept_once(db: AsyncSession) -> None:
    entry = {
        "entry_id": "e1",
        "grant_id": "g1",
        "bucket": "b",
        "currency": "EUR",
        "amount_minor": 250,
        "jti": "t1",
        "created_at": NOW,
    }
    await ledger.record(db, [entry, {**entry, "entry_id": "e2", "amount_minor": 100}])
    await ledger.record(db, [{**entry, "amount_minor": 999}])  # a replay of e1
    spent = await db.scalar(readonly.spent_query("g1", "b", "EUR"))
    assert spent == 350


async def test_expired_rows_are_pruned_in_batches_and_evidence_stays(db: AsyncSession) -> None:
    for challenge, expires_at in ((b"p-1", NOW - 100), (b"p-2", NOW - 100), (b"p-3", NOW + 60)):
        challenges.add(
            db,
            challenge,
            purpose="login",
            expires_at=expires_at,
            human_id=None,
            subject=None,
            digest=None,
        )
    await db.flush()
    cutoffs = {
        "challenges_expired_before": NOW,
        "sessions_seen_before": 0,
        "sessions_started_before": 0,
        "requests_expired_before": NOW,
    }
    first = await pruning.delete_expired(db, **cutoffs, batch=1)
    second = await pruning.delete_expired(db, **cutoffs, batch=10)
    assert first["webauthn_challenges"] == 1
    assert second["webauthn_challenges"] == 1
    assert first["grant_requests"] + second["grant_requests"] == 1  # req-expired, undecided
    assert await grants.request(db, "req-expired") is None
    assert await grants.request(db, "req-old-granted") is not None  # it became a grant
    assert await challenges.use(db, b"p-3", purpose="login", now=NOW) is not None


async def test_the_audit_head_and_an_events_hash_are_read(db: AsyncSession) -> None:
    seq, tip = await audit_log.head(db)
    (last,) = await audit_log.events_after(db, seq - 1, 1)
    assert (last.seq, last.hash) == (seq, tip)
    assert await audit_log.event_hash(db, seq) == tip
    assert await audit_log.event_hash(db, seq + 1) is None


async def test_a_process_reads_one_row_its_role_may_read(seeded: str) -> None:
    await read_one_row(seeded, read_only_role=True)
    await read_one_row(seeded, read_only_role=False)
    with pytest.raises((SQLAlchemyError, OSError)):
        await read_one_row("postgresql+asyncpg://nobody@127.0.0.1:1/none", read_only_role=True)
