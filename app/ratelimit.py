"""Rate limits on the requests that cost something: a mini-program login spends one
`code2Session` call of the brand's WeChat quota, a console sign-in is where passwords get
guessed.

The counters are `limits`' (the engine flask-limiter is built on): one storage and strategy
per app, in Redis when `REDIS_URL` is set (every web process shares them), in memory
otherwise (the embedded demo, the tests), with the moving-window strategy (no burst at a
window's edge). flask-limiter itself is not used: its per-request hook cost ~150 µs on
every request (a quarter of a catalogue page's Python time) to check limits that only the
two sign-in endpoints have, and they call `hit`/`check` here themselves. Each limit is a config setting in
flask-limiter's notation ("30/minute", "20 per 15 minutes"; empty turns it off), read on
every request, so an operator sets it in the environment and a test in `app.config`.

Shells call `hit` (count one attempt; refuse when over) or `check` (refuse when already
over, count nothing) with a scope and a key (a client address, an account, a WeChat user);
`TooManyAttempts` renders as 429 with `Retry-After` and a Chinese message in the error
shape. If the counter store cannot be reached the request goes through (logged): a Redis
outage must not lock every dealer out.
"""
import logging
import math
import time

from flask import current_app, request

from app.config import ConfigError
from app.kernel.clock import duration_words
from app.kernel.errors import DomainError

log = logging.getLogger(__name__)

LIMIT_SETTINGS = (
    "MP_LOGIN_LIMIT_PER_ADDRESS",
    "MP_LOGIN_LIMIT_PER_USER",
    "CONSOLE_LOGIN_LIMIT_PER_ADDRESS",
    "CONSOLE_LOGIN_LIMIT_PER_ACCOUNT",
)
_EXTENSION = "dinghuo_limiter"


class TooManyAttempts(DomainError):
    """429: over a rate limit; `retry_after` is the seconds until the next attempt counts."""

    def __init__(self, code, message, retry_after):
        self.retry_after = max(1, int(math.ceil(retry_after)))
        super().__init__(code, message.format(wait=duration_words(self.retry_after)), 429,
                         {"retry_after": self.retry_after})


class Counters:
    """The app's rate-limit counters: a `limits` strategy (`.limiter`) over its storage."""

    def __init__(self, storage_uri, strategy):
        from limits.storage import storage_from_string
        from limits.strategies import STRATEGIES

        self.storage = storage_from_string(storage_uri)
        self.limiter = STRATEGIES[strategy](self.storage)

    def reset(self):
        """Forget every count (tests)."""
        self.storage.reset()


def init_app(app):
    """Build this app's counters; refuse to start on a limit setting that does not parse."""
    from limits import parse_many

    for name in LIMIT_SETTINGS:
        value = app.config.get(name)
        if value:
            try:
                parse_many(value)
            except ValueError:
                raise ConfigError(f"{name} 的格式应如 30/minute 或 20 per 15 minutes，当前为 {value!r}") from None
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "dinghuo")
    app.extensions[_EXTENSION] = Counters(app.config["RATELIMIT_STORAGE_URI"], app.config["RATELIMIT_STRATEGY"])


def limiter(app=None):
    return (app or current_app).extensions[_EXTENSION]


def client_address():
    """The caller's address; behind a reverse proxy, the one the trusted proxies name
    (`TRUSTED_PROXIES`, applied by ProxyFix in `create_app`)."""
    return request.remote_addr or "unknown"


def _items(setting):
    from limits import parse_many

    value = current_app.config.get(setting)
    return parse_many(value) if value else []


def _identifiers(scope, key):
    return (current_app.config["RATELIMIT_KEY_PREFIX"], scope, str(key))


def hit(setting, *, scope, key, code, message):
    """Count one attempt by `key` against the limit `setting` names; raise TooManyAttempts
    (and count nothing) when it is already used up. `message` may say `{wait}`."""
    _apply(setting, scope, key, code, message, count=True)


def check(setting, *, scope, key, code, message):
    """Raise TooManyAttempts when `key` has used up the limit; count nothing (count failures
    afterwards with `hit`)."""
    _apply(setting, scope, key, code, message, count=False)


def count(setting, *, scope, key):
    """Count one attempt, whatever the count already is (a failure after `check`)."""
    strategy = limiter().limiter
    try:
        for item in _items(setting):
            strategy.hit(item, *_identifiers(scope, key))
    except Exception:  # noqa: BLE001  (the store is down: the request goes on, counted or not)
        log.warning("rate limit store unreachable; %s not counted", scope, exc_info=True)


def _apply(setting, scope, key, code, message, *, count):
    strategy = limiter().limiter
    identifiers = _identifiers(scope, key)
    try:
        for item in _items(setting):
            allowed = strategy.hit(item, *identifiers) if count else strategy.test(item, *identifiers)
            if not allowed:
                reset_time, _remaining = strategy.get_window_stats(item, *identifiers)
                log.info("rate limit %s (%s) reached by %s", setting, item, key)
                raise TooManyAttempts(code, message, reset_time - time.time())
    except TooManyAttempts:
        raise
    except Exception:  # noqa: BLE001  (the store is down: let the request through)
        log.warning("rate limit store unreachable; %s not checked", scope, exc_info=True)
