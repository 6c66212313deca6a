"""A small per-process cache with a time-to-live, for read paths that tolerate seconds of staleness.

Each app keeps its own caches (`app_cache(name)`), so tests and several apps in one process
never share entries. A TTL of 0 disables caching.
"""
import threading
import time

from flask import current_app


class TTLCache:
    def __init__(self, ttl_seconds, max_entries=4096, clock=time.monotonic):
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries = {}
        self._lock = threading.Lock()

    def get(self, key):
        if self.ttl <= 0:
            return None
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1]

    def put(self, key, value):
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                # Oldest insertions go first; a full cache is a sign of a too-small bound.
                for stale in list(self._entries)[: self.max_entries // 4]:
                    del self._entries[stale]
            self._entries[key] = (self.clock() + self.ttl, value)

    def clear(self):
        with self._lock:
            self._entries.clear()


def app_cache(name, ttl_setting):
    """The app's cache called `name`, its TTL read from config key `ttl_setting`."""
    caches = current_app.extensions.setdefault("dinghuo_caches", {})
    cache = caches.get(name)
    if cache is None:
        cache = caches[name] = TTLCache(current_app.config[ttl_setting])
    return cache
