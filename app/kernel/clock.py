"""The business clock: every service reads the time here, and tests set it.

Timestamps are stored as aware UTC instants; the business day (price validity, order
numbers, statement months, "today" on the dashboard) is the calendar day in China.
Production reads the wall clock. A test installs a `FakeClock` with `use(...)`; every
thread then reads that clock until `reset()`, so a test can be run as if it were any
moment of any year.
"""
import contextlib
import threading
import time as _time
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")

_source = None  # None: the wall clock; otherwise a callable returning an aware UTC datetime


def now():
    """The current instant, aware, in UTC."""
    source = _source
    return datetime.now(timezone.utc) if source is None else source()


utcnow = now  # the name the models and services have always used


def timestamp():
    """The current instant as POSIX seconds (for signed-URL expiry and the like)."""
    return now().timestamp()


def china_now():
    """The current instant on the China wall clock."""
    return now().astimezone(BUSINESS_TZ)


def business_today():
    """Price validity and order numbers follow the calendar day in China."""
    return china_now().date()


def business_day_start(day):
    """The moment the China calendar day `day` begins, in UTC (how timestamps are stored): the
    bound of every "orders of these days" range."""
    return datetime.combine(day, time.min, tzinfo=BUSINESS_TZ).astimezone(timezone.utc)


def china_text(instant, fmt="%Y-%m-%d %H:%M"):
    """A stored instant as people in China read it ("2026-12-07 18:30"); "" for None. A
    naive value (SQLite drops the zone) is the UTC it was stored as."""
    if instant is None:
        return ""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    return instant.astimezone(BUSINESS_TZ).strftime(fmt)


def china_time(*args):
    """An aware UTC instant from China wall-clock fields: `china_time(2026, 11, 30, 23, 30)`."""
    return datetime(*args, tzinfo=BUSINESS_TZ).astimezone(timezone.utc)


def duration_words(seconds):
    """How long to wait, as people say it: 45 秒, 3 分钟, 2 小时 (rounded up)."""
    seconds = max(1, int(-(-seconds // 1)))
    if seconds < 60:
        return f"{seconds} 秒"
    if seconds < 3600:
        return f"{-(-seconds // 60)} 分钟"
    return f"{-(-seconds // 3600)} 小时"


def duration_text(seconds):
    """How long something took, as a report says it: "45 秒", "12 分", "3 小时 20 分", and from a
    day on days to one decimal, "2.5 天" (half up; "3 天", not "3.0 天"); "—" for None."""
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} 秒"
    if seconds < 3600:
        return f"{seconds // 60} 分"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} 小时 {minutes} 分" if minutes else f"{hours} 小时"
    tenths = (seconds * 10 + 43200) // 86400  # tenths of a day, half up
    whole, tenth = divmod(tenths, 10)
    return f"{whole}.{tenth} 天" if tenth else f"{whole} 天"


def use(source):
    """Read the time from `source` (a `FakeClock` or any callable returning an aware datetime)."""
    global _source
    _source = source


def reset():
    """Back to the wall clock."""
    use(None)


@contextlib.contextmanager
def using(source):
    """Read the time from `source` inside the block, then from whatever was read before (the
    wall clock, or a test's clock): the demo seed replays its past months this way."""
    before = _source
    use(source)
    try:
        yield source
    finally:
        use(before)


class FakeClock:
    """A clock a test sets. Frozen by default; with `tick=True` it runs at real speed from
    the instant it was set to (for code that waits for time to pass)."""

    def __init__(self, at, *, tick=False):
        self._lock = threading.Lock()
        self.tick = tick
        self.set(at)

    def set(self, at):
        """Jump to `at`: an aware datetime, or a date (00:00 that day in China)."""
        if isinstance(at, date) and not isinstance(at, datetime):
            at = business_day_start(at)
        if at.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        with self._lock:
            self._at = at.astimezone(timezone.utc)
            self._set_at = _time.monotonic()

    def advance(self, delta=None, **kwargs):
        """Move forward by a timedelta or by `timedelta(**kwargs)`."""
        delta = delta if delta is not None else timedelta(**kwargs)
        self.set(self() + delta)

    def __call__(self):
        with self._lock:
            if self.tick:
                return self._at + timedelta(seconds=_time.monotonic() - self._set_at)
            return self._at
