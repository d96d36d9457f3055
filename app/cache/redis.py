"""Redis backend: ``SET NX EX`` replay guard, fixed-window rate limits, revocation pub/sub."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.cache.base import KEYS_CHANNEL, REVOCATION_CHANNEL, REVOCATION_LOG, CacheUnavailable

_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if count > tonumber(ARGV[1]) then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 1 then ttl = 1 end
  return ttl
end
return 0
"""


class RedisCache:
    def __init__(self, url: str, *, namespace: str = "agentauth") -> None:
        self._redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._hit = self._redis.register_script(_HIT)
        self._ns = namespace
        self.revocation_channel = f"{namespace}:{REVOCATION_CHANNEL}"
        self.revocation_log = f"{namespace}:{REVOCATION_LOG}"
        self.keys_channel = f"{namespace}:{KEYS_CHANNEL}"

    @property
    def client(self) -> Redis:
        return self._redis

    async def remember(self, key: str, ttl: int) -> bool:
        try:
            return bool(await self._redis.set(f"{self._ns}:seen:{key}", b"1", nx=True, ex=ttl))
        except RedisError as exc:
            raise CacheUnavailable(f"replay guard: {exc}") from exc

    async def admit(
        self, rate: tuple[str, int, int], remember: Sequence[tuple[str, int]]
    ) -> tuple[int, list[bool]]:
        key, limit, window = rate
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                await self._hit(keys=[f"{self._ns}:rate:{key}"], args=[limit, window], client=pipe)
                for seen, ttl in remember:
                    pipe.set(f"{self._ns}:seen:{seen}", b"1", nx=True, ex=ttl)
                results = await pipe.execute()
        except RedisError as exc:
            raise CacheUnavailable(f"admission: {exc}") from exc
        return int(results[0]), [bool(r) for r in results[1:]]

    async def hit(self, key: str, limit: int, window: int) -> int:
        try:
            return int(await self._hit(keys=[f"{self._ns}:rate:{key}"], args=[limit, window]))
        except RedisError as exc:
            raise CacheUnavailable(f"rate limit: {exc}") from exc

    async def publish_revocation(self, seq: int, kind: str, subject: str, expires_at: int) -> None:
        event = orjson.dumps({"seq": seq, "kind": kind, "subject": subject, "exp": expires_at})
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(self.revocation_log, {event: seq})
                pipe.publish(self.revocation_channel, event)
                await pipe.execute()
        except RedisError as exc:
            raise CacheUnavailable(f"revocation publish: {exc}") from exc

    async def publish_key_change(self, kid: str) -> None:
        try:
            await self._redis.publish(self.keys_channel, orjson.dumps({"kid": kid}))
        except RedisError as exc:
            raise CacheUnavailable(f"key publish: {exc}") from exc

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        await self._redis.aclose()
