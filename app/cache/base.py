"""The cache interface shared by the Redis and the in-process backends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from app.core.decision import RateCounter, SpendCounter

# Key suffixes under the configured namespace (``<namespace>:revocations`` ...).
REVOCATION_CHANNEL = "revocations"
REVOCATION_LOG = "revocation-log"
KEYS_CHANNEL = "keys"
HEARTBEAT_CHANNEL = "heartbeat"
EPOCH = "epoch"
SPEND_STREAM = "spend"

# What :meth:`Cache.admit_request` decided.
# "undurable": counted, but not on enough replicas in time (``AGENTAUTH_SPEND_REPLICAS``).
Outcome = Literal[
    "ok",
    "replay",
    "assertion_replay",
    "rate_limited",
    "budget_exhausted",
    "seed",
    "lost",
    "undurable",
]


class CacheUnavailable(RuntimeError):
    """The cache could not answer; callers fail closed (503)."""


@dataclass(frozen=True, slots=True)
class Once:
    """A single-use item (a client assertion's or actor token's ``jti``, a DPoP proof) to be
    remembered under ``key`` for ``ttl`` seconds. One ``issued_at`` before the cache's data
    epoch counts as seen: the cache may have lost its key (docs/architecture.md "Data
    epoch")."""

    key: str
    ttl: int
    issued_at: int


@dataclass(frozen=True, slots=True)
class Record:
    """Everything one ``/verify`` admission records, checked and applied atomically.

    ``once`` keys (a DPoP proof's replay key) may each be used a single time; a ``once``
    issued before the data epoch (``proof_iat``) counts as seen. ``rate`` and ``spend`` are
    the grant's counters the decision named (:mod:`app.core.decision`). When the spend
    counter is missing the outcome is ``"seed"``: the caller rebuilds it from the durable
    ledger and retries with ``seed`` set. ``event`` is appended to the spend stream when an
    amount is spent.
    """

    proof_iat: int
    once: Sequence[tuple[str, int]] = ()
    rate: RateCounter | None = None
    spend: SpendCounter | None = None
    seed: int | None = None
    event: Mapping[str, str] = field(default_factory=dict)
    at: int | None = None  # the request's time, when a decision makes it


@dataclass(frozen=True, slots=True)
class SpendEvent:
    entry_id: str
    fields: Mapping[str, str]


class Subscription(Protocol):
    async def get(self, wait: float) -> tuple[str, dict[str, Any]] | None:
        """The next (channel kind, event) — ``"revocation"``, ``"keys"`` or ``"heartbeat"`` —
        or ``None`` after ``wait`` seconds. Raises :class:`CacheUnavailable` when the
        connection is lost: events may have been missed."""
        ...

    async def close(self) -> None: ...


class SingleUse(Protocol):
    """Rate limits and single-use records (the registry's replay guard): assertion, proof
    and actor-token ``jti``s, per-client and per-address windows."""

    async def remember(self, once: Once, now: int) -> bool:
        """Record ``once``; ``False`` if it was already recorded or was issued before the data
        epoch (a replay, or an item whose record may be lost). A missing epoch becomes
        ``now``."""
        ...

    async def admit(
        self, rate: RateCounter, once: Sequence[Once], now: int
    ) -> tuple[int, list[bool]]:
        """One round trip: count one use of ``rate`` like :meth:`hit` and record
        each item like :meth:`remember`; returns (retry_after, first-use flags)."""
        ...

    async def hit(self, key: str, limit: int, window: int) -> int:
        """Count one request against ``limit`` per ``window`` seconds.

        Returns 0 when allowed, else the seconds until the window resets (``Retry-After``).
        """
        ...


class DataEpoch(Protocol):
    """When the cache's current data set started: anything single-use issued before it may
    have been forgotten, so it counts as used."""

    async def ensure_epoch(self, now: int) -> int:
        """The time the cache's current data set started; set to ``now`` when missing."""
        ...


class Admissions(DataEpoch, Protocol):
    """The verifier's atomic ``/verify`` admission (replay, rate and budget in one step) and
    the data epoch that tells a cache that lost its data."""

    async def admit_request(self, record: Record) -> Outcome:
        """Check and apply a :class:`Record` in one atomic round trip.

        ``"lost"`` means the cache lost its data since :meth:`ensure_epoch` (the replay
        and counter state cannot be trusted); ``"replay"`` is the first ``once`` key used
        before, and also covers proofs created before such a loss, whose use may have been
        forgotten; ``"assertion_replay"`` is any later ``once`` key used before.
        """
        ...


class RevocationChannel(Protocol):
    """Revocations and key changes, published by the registry and the worker, heard by the
    verifiers: the shared log, its heartbeat and the subscription."""

    async def publish_revocation(self, seq: int, kind: str, subject: str, expires_at: int) -> None:
        """Add a revocation to the shared set and announce it with its sequence number."""
        ...

    async def revocations(self, after: int = 0) -> list[dict[str, Any]]:
        """Published revocation events with a sequence number above ``after``."""
        ...

    async def prune_revocations(self, now: int) -> int:
        """Drop events of tokens and grants that expired; returns how many."""
        ...

    async def publish_key_change(self, kid: str) -> None:
        """Tell verifiers the key set changed."""
        ...

    async def publish_heartbeat(
        self, seq: int, pending: int | None, at: float, lsn: int | None = None
    ) -> None:
        """Announce the revocation log's head as read from the database at ``at``: its
        highest ``seq``, its lowest unpublished one (``None`` when all are published) and,
        on PostgreSQL, the primary's WAL position then (``lsn``), which a verifier reading a
        streaming replica waits for before it trusts the replica's rows."""
        ...

    async def subscribe(self) -> Subscription:
        """Listen to revocation and key events; returns once the subscription is active."""
        ...


class SpendStream(Protocol):
    """Accepted spends on their way to the durable ledger (the worker drains them)."""

    async def read_spends(self, consumer: str, count: int, block_ms: int) -> list[SpendEvent]:
        """Spend events not yet acknowledged (first this consumer's pending ones)."""
        ...

    async def ack_spends(self, entry_ids: Sequence[str]) -> None: ...

    async def restored_spends(self, spend: SpendCounter) -> dict[str, int]:
        """Spends (mark → amount) a process restored into the stream after the cache lost
        its data, while ``spend``'s counter was missing: a seed adds those the ledger lacks."""
        ...


class Connection(Protocol):
    """The connection itself."""

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class RevocationFeed(RevocationChannel, DataEpoch, Protocol):
    """What a verifier's revocation view reads: the channel, and the epoch that says whether
    the cache lost the shared log."""


class Cache(SingleUse, Admissions, RevocationChannel, SpendStream, Connection, Protocol):
    """Every port together: what the Redis and in-process backends implement. Code that needs
    only one part takes that port."""
