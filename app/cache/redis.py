"""Redis backend: replay guard, counters, revocation pub/sub and log, spend stream."""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from app.cache.base import (
    EPOCH,
    HEARTBEAT_CHANNEL,
    KEYS_CHANNEL,
    REVOCATION_CHANNEL,
    REVOCATION_LOG,
    SPEND_STREAM,
    CacheUnavailable,
    Once,
    Outcome,
    Record,
    SpendEvent,
)
from app.cache.redis_urls import redis_client
from app.core.decision import RateCounter, SpendCounter

log = logging.getLogger("agentauth.cache")

# KEYS: the data epoch, the rate counter, then the single-use keys. ARGV: now, limit (0:
# none), window, the command's mark, then each key's ttl and the time its item was issued.
# With single-use keys, sets the epoch to ``now`` if the cache lost it. Counts one request
# in a fixed window and sets every key like SET NX EX (to the mark), except that an item
# issued before the epoch counts as seen (the cache may have lost its key); a key holding
# this command's own mark is a resent command's first use. Returns {retry_after, 1 or 0
# per key}.
_RATE_AND_REMEMBER = """
local epoch = 0
if #KEYS > 2 then
  epoch = redis.call('GET', KEYS[1])
  if not epoch then
    redis.call('SET', KEYS[1], ARGV[1])
    epoch = ARGV[1]
  end
  epoch = tonumber(epoch)
end
local retry_after = 0
if tonumber(ARGV[2]) > 0 then
  local count = redis.call('INCR', KEYS[2])
  if count == 1 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
  if count > tonumber(ARGV[2]) then
    retry_after = redis.call('TTL', KEYS[2])
    if retry_after < 1 then retry_after = 1 end
  end
end
local result = {retry_after}
for i = 3, #KEYS do
  local ttl, issued = ARGV[2 * i - 1], tonumber(ARGV[2 * i])
  if issued >= epoch and redis.call('SET', KEYS[i], ARGV[4], 'NX', 'EX', ttl) then
    result[i - 1] = 1
  elseif issued >= epoch and redis.call('GET', KEYS[i]) == ARGV[4] then
    result[i - 1] = 1
  else
    result[i - 1] = 0
  end
end
return result
"""

# KEYS: epoch, rate counter, spend counter, spend stream, then the single-use keys (at least
#       one: the first is the admission's own, marked with its outcome).
# ARGV: proof iat, rate limit (0: none), rate ttl, amount, budget (-1: none), budget ttl,
#       seed (-1: none), the admission's mark, n single-use keys, their n ttls, then the
#       stream event's fields.
# Everything is checked before anything is written, so a refusal changes no counter. The
# client sends a command again when its reply was lost (a timeout, a dropped connection),
# and the first attempt may have run: the retry finds the first key marked with its own mark
# and returns the first attempt's outcome, so a spend is never counted twice nor answered
# "replay" after it was recorded.
_ADMIT = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then return 'lost' end
if tonumber(ARGV[1]) < tonumber(epoch) then return 'replay' end
local budget = tonumber(ARGV[5])
local spent = nil
local seeded = false
if budget >= 0 then
  spent = redis.call('GET', KEYS[3])
  if spent then
    spent = tonumber(spent)
  elseif tonumber(ARGV[7]) >= 0 then
    spent = tonumber(ARGV[7])
    seeded = true
  else
    return 'seed'
  end
end
local mark = ARGV[8] .. ':'
local n = tonumber(ARGV[9])
local first = redis.call('GET', KEYS[5])
if first then
  if string.sub(first, 1, #mark) == mark then return string.sub(first, #mark + 1) end
  return 'replay'
end
for i = 2, n do
  if redis.call('EXISTS', KEYS[4 + i]) == 1 then return 'assertion_replay' end
end
local outcome = 'ok'
local limit = tonumber(ARGV[2])
local amount = tonumber(ARGV[4])
if limit > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') + 1 > limit then
  outcome = 'rate_limited'
elseif budget >= 0 and spent + amount > budget then
  if seeded then redis.call('SET', KEYS[3], string.format('%d', spent), 'EX', ARGV[6]) end
  outcome = 'budget_exhausted'
else
  if limit > 0 and redis.call('INCR', KEYS[2]) == 1 then
    redis.call('EXPIRE', KEYS[2], ARGV[3])
  end
  if budget >= 0 then
    if seeded then
      redis.call('SET', KEYS[3], string.format('%d', spent + amount), 'EX', ARGV[6])
    else
      redis.call('INCRBY', KEYS[3], ARGV[4])
    end
    if amount > 0 then
      local fields = {}
      for i = 10 + n, #ARGV do fields[#fields + 1] = ARGV[i] end
      redis.call('XADD', KEYS[4], '*', unpack(fields))
    end
  end
end
redis.call('SET', KEYS[5], mark .. outcome, 'EX', ARGV[10])
for i = 2, n do
  redis.call('SET', KEYS[4 + i], '1', 'EX', ARGV[9 + i])
end
return outcome
"""


# After the cache lost its data, a verifier appends again the spends it accepted within the
# journal's span that the ledger lacks (the ledger skips a mark it holds already), and counts
# them: into the counter when it exists, else into ``<spend counter>:restored`` (mark →
# amount), which the caller adds to a seed for what the ledger still lacks then.
# KEYS: spend stream, spend counter, its restored spends. ARGV: amount, counter ttl, mark,
# then the event's fields.
_RESTORE = """
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[1], '*', unpack(fields))
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('INCRBY', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[1])
  redis.call('EXPIRE', KEYS[3], ARGV[2])
end
return 1
"""

LEDGER_GROUP = "ledger"
JOURNAL_SECONDS = 30.0  # how long a verifier remembers the spends it accepted
RESTORE_BATCH = 500  # journaled spends restored per pipeline and per ledger query
# After the cache lost its data, budget counters are not seeded from the ledger for this many
# seconds: every verifier notices the new epoch within a heartbeat and restores its recent
# spends first, so a seed counts them.
SEED_GRACE = 2
ADMISSION_MARK_TTL = 60  # seconds; longer than any retry of one command
# A spend read but not acknowledged for this long belongs to a worker that is gone: a live
# one writes and acknowledges within milliseconds.
ORPHAN_IDLE_MS = 10_000


class RedisSubscription:
    def __init__(self, pubsub: PubSub, kinds: dict[bytes, str]) -> None:
        self._pubsub = pubsub
        self._kinds = kinds
        self._idle = 0
        self._reconnected = False
        if pubsub.connection is not None:
            # redis-py reconnects a pub/sub connection and re-subscribes on its own; events
            # published in between are lost, so the owner must hear of it and resynchronise.
            pubsub.connection.register_connect_callback(self._on_reconnect)

    def _on_reconnect(self, _: object) -> None:
        self._reconnected = True

    async def get(self, wait: float) -> tuple[str, dict[str, Any]] | None:
        if self._reconnected:
            raise CacheUnavailable("subscription reconnected: events may have been missed")
        try:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
            if message is None:
                self._idle += 1
                if self._idle >= 10:  # a silent connection is probed, so a dead one surfaces
                    self._idle = 0
                    await self._pubsub.ping()
                return None
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"subscription lost: {exc}") from exc
        self._idle = 0
        kind = self._kinds.get(message.get("channel", b""))
        if kind is None or message.get("type") != "message":
            return None
        try:
            event = orjson.loads(message["data"])
        except orjson.JSONDecodeError:
            return None
        return (kind, event) if isinstance(event, dict) else None

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()


class RedisCache:
    def __init__(
        self,
        url: str,
        *,
        namespace: str = "agentauth",
        spend_replicas: int = 0,
        spend_wait_ms: int = 100,
    ) -> None:
        # A pooled connection that died with a restarted server, or a reply that did not come
        # in time, and the command is sent once more. An admission that ran but lost its reply
        # finds its own mark and answers as the first time (_ADMIT); any other command run
        # twice can only make an answer stricter (a jti already seen, a counter one higher).
        self._redis = redis_client(
            url,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[RedisConnectionError],
        )
        self._admit = self._redis.register_script(_ADMIT)
        self._restore = self._redis.register_script(_RESTORE)
        self._rate_and_remember = self._redis.register_script(_RATE_AND_REMEMBER)
        self._ns = namespace
        self.spend_replicas, self.spend_wait_ms = spend_replicas, spend_wait_ms
        self.revocation_channel = f"{namespace}:{REVOCATION_CHANNEL}"
        self.revocation_log = f"{namespace}:{REVOCATION_LOG}"
        self.keys_channel = f"{namespace}:{KEYS_CHANNEL}"
        self.heartbeat_channel = f"{namespace}:{HEARTBEAT_CHANNEL}"
        self.epoch_key = f"{namespace}:{EPOCH}"
        self.spend_stream = f"{namespace}:{SPEND_STREAM}"
        self._none = f"{namespace}:none"  # placeholder for unused KEYS slots
        self.orphan_idle_ms = ORPHAN_IDLE_MS
        self._orphans_checked = float("-inf")
        # The spends this process accepted lately, and the data epoch they were accepted in:
        # (monotonic time, counter key, amount, counter ttl, stream fields).
        self._journal: collections.deque[tuple[float, str, int, int, list[str]]] = (
            collections.deque()
        )
        self._epoch: int | None = None
        self._lost_at: int | None = None  # the epoch that replaced one this process had seen
        # Which of some admissions' marks the ledger holds already (set by the verifier):
        # those are not restored after a loss.
        self.spends_recorded: Callable[[Sequence[str]], Awaitable[set[str]]] | None = None

    @property
    def client(self) -> Redis:
        return self._redis

    async def _rate_and_once(
        self, rate: RateCounter | None, once: Sequence[Once], now: int
    ) -> list[int]:
        keys = [
            self.epoch_key,
            f"{self._ns}:rate:{rate.key}" if rate else self._none,
            *(f"{self._ns}:seen:{seen.key}" for seen in once),
        ]
        args: list[int | str] = [now, rate.limit, rate.ttl] if rate else [now, 0, 1]
        args.append(secrets.token_urlsafe(9))  # the same in a resent command
        for seen in once:
            args += [seen.ttl, seen.issued_at]
        # One EVALSHA: a pipeline carrying a script would first ask SCRIPT EXISTS.
        return [int(r) for r in await self._rate_and_remember(keys=keys, args=args)]

    async def remember(self, once: Once, now: int) -> bool:
        try:
            _, first = await self._rate_and_once(None, [once], now)
        except RedisError as exc:
            raise CacheUnavailable(f"replay guard: {exc}") from exc
        return bool(first)

    async def admit(
        self, rate: RateCounter, once: Sequence[Once], now: int
    ) -> tuple[int, list[bool]]:
        try:
            retry_after, *firsts = await self._rate_and_once(rate, once, now)
        except RedisError as exc:
            raise CacheUnavailable(f"admission: {exc}") from exc
        return retry_after, [bool(first) for first in firsts]

    async def hit(self, key: str, limit: int, window: int) -> int:
        try:
            (retry_after,) = await self._rate_and_once(RateCounter(key, limit, window), [], 0)
        except RedisError as exc:
            raise CacheUnavailable(f"rate limit: {exc}") from exc
        return retry_after

    async def admit_request(self, record: Record) -> Outcome:
        if (
            record.seed is not None
            and record.at is not None
            and self._lost_at is not None
            and record.at - self._lost_at < SEED_GRACE
        ):
            return "seed"  # other verifiers may still be restoring their spends
        rate, spend = record.rate, record.spend
        mark = secrets.token_urlsafe(9)  # the same in a resent command: it is in its arguments
        # Without a proof the admission's first key is its own, kept as long as a retry lasts.
        once = record.once or [(f"admission:{mark}", ADMISSION_MARK_TTL)]
        keys = [
            self.epoch_key,
            f"{self._ns}:ctr:{rate.key}" if rate else self._none,
            f"{self._ns}:ctr:{spend.key}" if spend else self._none,
            self.spend_stream,
            *(f"{self._ns}:seen:{key}" for key, _ in once),
        ]
        args: list[str | int] = [
            record.proof_iat,
            *((rate.limit, rate.ttl) if rate else (0, 1)),
            *((spend.amount, spend.budget, spend.ttl) if spend else (0, -1, 1)),
            -1 if record.seed is None else record.seed,
            mark,
            len(once),
            *(ttl for _, ttl in once),
        ]
        fields = [*itertools.chain.from_iterable(record.event.items())]
        if fields:
            fields += ["mark", mark]  # the ledger's key for this spend, the same if restored
        args += fields
        durable = spend is not None and self.spend_replicas > 0
        try:
            if durable:
                # One connection: WAIT counts the replicas that have this connection's writes.
                async with self._redis.pipeline(transaction=False) as pipe:
                    await self._admit(keys=keys, args=args, client=pipe)
                    pipe.execute_command("WAIT", self.spend_replicas, self.spend_wait_ms)
                    result, acknowledged = await pipe.execute()
            else:
                result = await self._admit(keys=keys, args=args)
        except RedisError as exc:
            raise CacheUnavailable(f"admission: {exc}") from exc
        outcome = result.decode() if isinstance(result, bytes) else str(result)
        if outcome == "ok" and spend is not None and spend.amount > 0:
            self._remember_spend(keys[2], spend.amount, spend.ttl, fields)
        if durable and outcome == "ok" and int(acknowledged) < self.spend_replicas:
            return "undurable"
        return outcome  # type: ignore[return-value]  # the script returns only Outcome values

    async def restored_spends(self, spend: SpendCounter) -> dict[str, int]:
        try:
            found: Any = await self._redis.hgetall(f"{self._ns}:ctr:{spend.key}:restored")
        except RedisError as exc:
            raise CacheUnavailable(f"restored spends: {exc}") from exc
        return {mark.decode(): int(amount) for mark, amount in found.items()}

    def _remember_spend(self, counter: str, amount: int, ttl: int, fields: list[str]) -> None:
        now = time.monotonic()
        journal = self._journal
        while journal and journal[0][0] < now - JOURNAL_SECONDS:
            journal.popleft()
        journal.append((now, counter, amount, ttl, fields))

    async def _restore_spends(self) -> None:
        """The cache lost its data since this process last saw the epoch: append again, and
        count, every spend it accepted within the journal's span, :data:`RESTORE_BATCH` at a
        time (one pipeline and one ledger query per batch)."""
        horizon = time.monotonic() - JOURNAL_SECONDS
        entries = [entry for entry in self._journal if entry[0] >= horizon]
        restored = 0
        for start in range(0, len(entries), RESTORE_BATCH):
            batch = entries[start : start + RESTORE_BATCH]
            if self.spends_recorded is not None:
                recorded = await self.spends_recorded([entry[4][-1] for entry in batch])
                batch = [entry for entry in batch if entry[4][-1] not in recorded]
            if not batch:
                continue
            async with self._redis.pipeline(transaction=False) as pipe:
                for _, counter, amount, ttl, fields in batch:
                    keys = [self.spend_stream, counter, f"{counter}:restored"]
                    await self._restore(
                        keys=keys, args=[amount, ttl, fields[-1], *fields], client=pipe
                    )
                await pipe.execute()
            restored += len(batch)
        if restored:
            log.warning("the cache lost its data: %d recent spends restored", restored)

    async def ensure_epoch(self, now: int) -> int:
        """The data epoch, set to ``now`` if the cache lost it. Seeing a new epoch after an
        earlier one restores this process's recent spends first (:data:`_RESTORE`)."""
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self.epoch_key, now, nx=True)
                pipe.get(self.epoch_key)
                _, value = await pipe.execute()
            epoch = int(value)
            if self._epoch is not None and epoch != self._epoch:
                self._lost_at = epoch
                await self._restore_spends()
        except RedisError as exc:
            raise CacheUnavailable(f"epoch: {exc}") from exc
        self._epoch = epoch
        return epoch

    async def publish_revocation(self, seq: int, kind: str, subject: str, expires_at: int) -> None:
        event = orjson.dumps(
            {"seq": seq, "kind": kind, "subject": subject, "exp": expires_at, "at": time.time()}
        )
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(self.revocation_log, {event: seq})
                pipe.publish(self.revocation_channel, event)
                await pipe.execute()
        except RedisError as exc:
            raise CacheUnavailable(f"revocation publish: {exc}") from exc

    async def revocations(self, after: int = 0) -> list[dict[str, Any]]:
        try:
            members: Any = await self._redis.zrangebyscore(self.revocation_log, f"({after}", "+inf")
        except RedisError as exc:
            raise CacheUnavailable(f"revocation log: {exc}") from exc
        return [orjson.loads(member) for member in members]

    async def prune_revocations(self, now: int) -> int:
        try:
            members: Any = await self._redis.zrange(self.revocation_log, 0, -1)
            stale = [m for m in members if 0 < int(orjson.loads(m).get("exp") or 0) < now]
            if stale:
                await self._redis.zrem(self.revocation_log, *stale)
        except RedisError as exc:
            raise CacheUnavailable(f"revocation log: {exc}") from exc
        return len(stale)

    async def publish_key_change(self, kid: str) -> None:
        try:
            await self._redis.publish(self.keys_channel, orjson.dumps({"kid": kid}))
        except RedisError as exc:
            raise CacheUnavailable(f"key publish: {exc}") from exc

    async def publish_heartbeat(
        self, seq: int, pending: int | None, at: float, lsn: int | None = None
    ) -> None:
        try:
            await self._redis.publish(
                self.heartbeat_channel,
                orjson.dumps({"seq": seq, "pending": pending, "at": at, "lsn": lsn}),
            )
        except RedisError as exc:
            raise CacheUnavailable(f"heartbeat publish: {exc}") from exc

    async def subscribe(self) -> RedisSubscription:
        # Its own connection, never retried behind the caller's back: a reconnect that
        # re-subscribed silently would hide the events published in between.
        pubsub = self._redis.pubsub()
        channels = (self.revocation_channel, self.keys_channel, self.heartbeat_channel)
        try:
            await pubsub.subscribe(*channels)
            confirmed = 0
            while confirmed < len(channels):  # all are active before anything is read
                message = await pubsub.get_message(timeout=2)
                if message is None:
                    raise CacheUnavailable("subscription not confirmed")
                confirmed += message.get("type") == "subscribe"
        except (RedisError, OSError) as exc:
            await pubsub.aclose()
            raise CacheUnavailable(f"subscribe: {exc}") from exc
        kinds = {
            self.revocation_channel.encode(): "revocation",
            self.keys_channel.encode(): "keys",
            self.heartbeat_channel.encode(): "heartbeat",
        }
        return RedisSubscription(pubsub, kinds)

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self.spend_stream, LEDGER_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_spends(self, consumer: str, count: int, block_ms: int) -> list[SpendEvent]:
        """This consumer's pending entries first; then, at most once a second, entries another
        consumer read and left unacknowledged for ``orphan_idle_ms`` (a worker killed between
        reading and writing the ledger: its successor has another name); then new ones."""
        try:
            await self._ensure_group()
            pending: Any = await self._redis.xreadgroup(
                LEDGER_GROUP, consumer, {self.spend_stream: "0"}, count=count
            )
            entries: Any = pending[0][1] if pending else []
            if not entries and time.monotonic() - self._orphans_checked >= 1.0:
                self._orphans_checked = time.monotonic()
                claimed: Any = await self._redis.xautoclaim(
                    self.spend_stream, LEDGER_GROUP, consumer, self.orphan_idle_ms, count=count
                )
                entries = claimed[1]
            if not entries:
                fresh: Any = await self._redis.xreadgroup(
                    LEDGER_GROUP, consumer, {self.spend_stream: ">"}, count=count, block=block_ms
                )
                entries = fresh[0][1] if fresh else []
        except RedisError as exc:
            raise CacheUnavailable(f"spend stream: {exc}") from exc
        return [
            SpendEvent(
                entry_id.decode(), {k.decode(): v.decode() for k, v in (fields or {}).items()}
            )
            for entry_id, fields in entries
        ]

    async def ack_spends(self, entry_ids: Sequence[str]) -> None:
        if not entry_ids:
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xack(self.spend_stream, LEDGER_GROUP, *entry_ids)
                pipe.xdel(self.spend_stream, *entry_ids)
                await pipe.execute()
        except RedisError as exc:
            raise CacheUnavailable(f"spend stream: {exc}") from exc

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        await self._redis.aclose()
