"""Column helpers shared by the domain models."""
from datetime import timezone

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.orm import mapped_column
from sqlalchemy.types import TypeDecorator

from app.kernel.clock import utcnow

# BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def pk():
    return mapped_column(BigIntPK, primary_key=True)


def fen(**kw):
    """A money column: integer fen, never NULL."""
    kw.setdefault("nullable", False)
    kw.setdefault("default", 0)
    return mapped_column(BigInteger, **kw)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite returns naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime; use app.kernel.clock.now()")
        # SQLite stores the text of the wall-clock time without its offset, so a China-time
        # bound (a day's start in a filter) must become UTC first or it compares 8 hours off.
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


def timestamp():
    return mapped_column(UTCDateTime, nullable=False, default=utcnow)
