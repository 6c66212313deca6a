"""Access tokens: one per app, cached in Redis (shared by web and worker processes) when
REDIS_URL is set, in the gateway object otherwise.

In Redis mode one process refreshes under a Redis lock while the others wait and then read
the new token; in memory mode a thread lock does the same for the threads sharing the object.
"""
import logging
import threading
import time

import redis

from app.integrations.wechat_errors import WeChatUnavailable, cache_unavailable

log = logging.getLogger(__name__)

REDIS_PREFIX = "dinghuo:wechat"

_COMPARE_AND_DELETE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def cache_seconds(expires_in):
    """Keep a token until a minute before WeChat says it expires."""
    expires_in = int(expires_in)
    if expires_in > 120:
        return expires_in - 60
    return max(1, expires_in // 2)


class TokenCache:
    """One access token, shared through Redis (all processes) or memory (this object).

    `fetch()` returns (token, expires_in) and raises WeChatError. In Redis mode,
    a refresh happens under a Redis lock: one process fetches, the others wait
    for the lock and then read what it stored. In memory mode a thread lock does
    the same for the threads sharing this object.
    """

    def __init__(self, name, fetch, redis_url=None, http_timeout=5):
        self.key = f"{REDIS_PREFIX}:{name}:access_token"
        self.lock_key = f"{self.key}:lock"
        self._fetch = fetch
        # The lock expires by itself if its holder dies mid-fetch; waiters give
        # up a little after that.
        self._lock_ttl = 2 * float(http_timeout) + 5
        self._lock_wait = self._lock_ttl + 5
        self._thread_lock = threading.Lock()
        self._memory = None  # (token, expires_at by time.monotonic())
        self._redis = None
        if redis_url:
            self._redis = redis.Redis.from_url(
                redis_url, socket_timeout=float(http_timeout) + 1, socket_connect_timeout=float(http_timeout)
            )
            self._compare_and_delete = self._redis.register_script(_COMPARE_AND_DELETE)

    def get(self):
        """The cached token, or a freshly fetched one (at most one fetch at a time)."""
        token = self._read()
        if token:
            return token
        with self._locked():
            token = self._read()  # someone else may have refreshed while we waited
            if token:
                return token
            token, expires_in = self._fetch()
            self._write(token, cache_seconds(expires_in))
            return token

    def invalidate(self, token=None):
        """Forget `token` (only if it is still the cached one), or whatever is cached."""
        if self._redis is None:
            with self._thread_lock:
                if token is None or (self._memory and self._memory[0] == token):
                    self._memory = None
            return
        try:
            if token is None:
                self._redis.delete(self.key)
            else:
                self._compare_and_delete(keys=[self.key], args=[token])
        except redis.RedisError as exc:
            raise cache_unavailable(exc) from exc

    def _read(self):
        if self._redis is None:
            memory = self._memory
            if memory and memory[1] > time.monotonic():
                return memory[0]
            return None
        try:
            value = self._redis.get(self.key)
        except redis.RedisError as exc:
            raise cache_unavailable(exc) from exc
        return value.decode() if value else None

    def _write(self, token, seconds):
        if self._redis is None:
            self._memory = (token, time.monotonic() + seconds)
            return
        try:
            self._redis.set(self.key, token, ex=seconds)
        except redis.RedisError as exc:
            raise cache_unavailable(exc) from exc

    def _locked(self):
        if self._redis is None:
            return self._thread_lock
        return _RedisLock(self._redis.lock(self.lock_key, timeout=self._lock_ttl, blocking_timeout=self._lock_wait))


class _RedisLock:
    """Context manager around a redis-py Lock that speaks WeChatError."""

    def __init__(self, lock):
        self._lock = lock

    def __enter__(self):
        try:
            acquired = self._lock.acquire()
        except redis.RedisError as exc:
            raise cache_unavailable(exc) from exc
        if not acquired:
            raise WeChatUnavailable(None, "等待其他进程刷新 access_token 超时")
        return self

    def __exit__(self, *exc_info):
        try:
            self._lock.release()
        except redis.RedisError:  # expired while we fetched (LockError), or Redis went away
            log.warning("access token lock %s expired before release", self._lock.name)
        return False
