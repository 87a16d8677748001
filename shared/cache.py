"""The working-set cache: in-process in embedded mode, Redis in distributed mode."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod


class Cache(ABC):
    @abstractmethod
    def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def ping(self) -> None:
        """Raise if the cache cannot be reached."""

    @abstractmethod
    def raise_to(self, key: str, value: float) -> float:
        """Atomically keep the larger of the stored number and ``value``; return it."""

    @abstractmethod
    def add_member(self, key: str, member: str) -> None:
        """Add ``member`` to the set stored at ``key`` (atomic, for several processes)."""

    @abstractmethod
    def remove_member(self, key: str, member: str) -> None: ...

    @abstractmethod
    def members(self, key: str) -> set[str]: ...


class MemoryCache(Cache):
    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._sets: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            value, expires = item
            if expires is not None and expires < time.monotonic():
                del self._data[key]
                return None
            return value

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        with self._lock:
            self._data[key] = (value, time.monotonic() + ttl if ttl else None)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def ping(self) -> None:
        return None

    def raise_to(self, key: str, value: float) -> float:
        with self._lock:
            current = self._data.get(key)
            number = max(float(current[0]) if current else value, value)
            self._data[key] = (repr(number).encode(), None)
            return number

    def add_member(self, key: str, member: str) -> None:
        with self._lock:
            self._sets.setdefault(key, set()).add(member)

    def remove_member(self, key: str, member: str) -> None:
        with self._lock:
            self._sets.get(key, set()).discard(member)

    def members(self, key: str) -> set[str]:
        with self._lock:
            return set(self._sets.get(key, ()))


RAISE_TO = """
local current = tonumber(redis.call('GET', KEYS[1]))
local wanted = tonumber(ARGV[1])
if current == nil or wanted > current then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return tostring(current)
"""


class RedisCache(Cache):
    def __init__(self, url: str, namespace: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._ns = namespace
        self._raise_to = self._redis.register_script(RAISE_TO)

    def _key(self, key: str) -> str:
        return f"{self._ns}:{key}"

    def get(self, key: str) -> bytes | None:
        return self._redis.get(self._key(key))

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._redis.set(self._key(key), value, px=int(ttl * 1000) if ttl else None)

    def delete(self, key: str) -> None:
        self._redis.delete(self._key(key))

    def ping(self) -> None:
        self._redis.ping()

    def raise_to(self, key: str, value: float) -> float:
        return float(self._raise_to(keys=[self._key(key)], args=[repr(float(value))]))

    def add_member(self, key: str, member: str) -> None:
        self._redis.sadd(self._key(key), member)

    def remove_member(self, key: str, member: str) -> None:
        self._redis.srem(self._key(key), member)

    def members(self, key: str) -> set[str]:
        return {m.decode() if isinstance(m, bytes) else str(m)
                for m in self._redis.smembers(self._key(key))}


def make_cache(redis_url: str | None, namespace: str) -> Cache:
    return RedisCache(redis_url, namespace) if redis_url else MemoryCache()
