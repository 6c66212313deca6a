"""Brand settings: one JSON value per key in `brand_settings` (e.g. `auto_approval`).

Readers pass the session of their own transaction, so a setting is read consistently
with the change it governs (submit_order reads `auto_approval` on every order); writers
call inside a `write_transaction()`.
"""
import functools

from sqlalchemy import bindparam, select

from app.database import dialect_insert
from app.kernel.clock import utcnow
from app.notify.models import BrandSetting

TABLE = BrandSetting.__table__


@functools.cache
def _read_statement():
    return select(TABLE.c.value).where(TABLE.c.key == bindparam("key"))


def read(session, key, default=None):
    """The setting's stored value, or `default` when it was never written."""
    value = session.connection().execute(_read_statement(), {"key": key}).scalar_one_or_none()
    return default if value is None else value


def write(session, key, value):
    """Store `value` (JSON) under `key`, replacing what was there."""
    now = utcnow()
    stmt = dialect_insert(session, TABLE).values(key=key, value=value, updated_at=now)
    session.execute(stmt.on_conflict_do_update(index_elements=[TABLE.c.key], set_={"value": value, "updated_at": now}))
