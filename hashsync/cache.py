"""The Redis cache backend, and one round trip for a read and an add on the default cache.

Django's ``RedisCache`` builds a new ``redis.Redis`` (with its table of ~170 response
callbacks) for every cache call; the pooled connections are reused, the client object is not.
On the up-to-date poll that was ~9% of a web worker's CPU (P4, docs/benchmarks.md).
``RedisCache`` here keeps one client per connection pool instead: a client is only a view of
its pool, safe to share between the calls of a process (redis-py's pools reconnect after a
fork). Keys, values and timeouts are Django's own.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class _ReusedClientCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            new = self._client(connection_pool=pool)  # type: ignore[attr-defined]
            client = self._clients[id(pool)] = new
        return client


# GET KEYS[1], and SET KEYS[2] ARGV[1] NX EX ARGV[2]: {the value or "", 1 if set else 0}.
# (A Lua nil ends a returned table, hence "" for a missing value; the cache never stores "".)
_GET_AND_ADD = """
local got = redis.call("GET", KEYS[1])
local added = redis.call("SET", KEYS[2], ARGV[1], "NX", "EX", ARGV[2])
return {got or "", added and 1 or 0}
"""


class RedisCache(DjangoRedisCache):
    """``django.core.cache.backends.redis.RedisCache`` with one client per pool (above)."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _ReusedClientCacheClient
        self._scripts: dict[int, Any] = {}

    def get_and_add(self, get_key: str, add_key: str, value: Any, timeout: int) -> tuple[Any, bool]:
        """``(self.get(get_key), self.add(add_key, value, timeout))`` in one round trip and
        one command (a script: a pipeline of the two costs ~0.1 ms more of the client's CPU).
        ``timeout`` > 0."""
        cache = self._cache  # type: ignore[attr-defined]
        client = cache.get_client(write=True)
        script = self._scripts.get(id(client))
        if script is None:
            script = self._scripts[id(client)] = client.register_script(_GET_AND_ADD)
        got, added = script(
            keys=[self.make_and_validate_key(get_key), self.make_and_validate_key(add_key)],
            args=[cache._serializer.dumps(value), self.get_backend_timeout(timeout)],
        )
        return (None if got is False or got == b"" else cache._serializer.loads(got)), bool(added)


def get_and_add(get_key: str, add_key: str, value: Any, *, timeout: int) -> tuple[Any, bool]:
    """``cache.get(get_key)`` and ``cache.add(add_key, value, timeout)`` on the default cache:
    one round trip on Redis, two calls on any other backend (development, tests without
    Redis). Connection errors are the caller's to handle, as with the cache itself."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        return cache.get_and_add(get_key, add_key, value, timeout)
    return cache.get(get_key), cache.add(add_key, value, timeout=timeout)
