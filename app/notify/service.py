"""Writing notifications: `add` puts one outbox row in the caller's transaction.

Delivery (`app.notify.delivery`) starts after the commit (the relay below); nothing here
talks to WeChat.
"""
import functools

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.kernel import correlation
from app.kernel.clock import utcnow
from app.notify import channels
from app.notify.models import QUEUES, Outbox


def add(session, *, channel, event, recipient, payload, dedupe_key, queue="high", ref_type=None, ref_id=None):
    """Queue one notification inside the caller's open write transaction.

    The row commits or rolls back with the change that caused it. A second row with the
    same `dedupe_key` is ignored, so replaying an event never notifies twice.
    """
    if not channels.registered(channel):  # registered in create_app (app.notify.channels)
        raise ValueError(f"unknown channel {channel!r}")
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    now = utcnow()
    conn = session.connection()
    outbox_id = conn.execute(_insert_statement(conn.dialect.name), {
        "dedupe_key": dedupe_key, "queue": queue, "channel": channel, "event": event, "recipient": recipient,
        "payload": payload, "ref_type": ref_type, "ref_id": ref_id, "status": "pending", "attempts": 0,
        "next_attempt_at": now, "created_at": now, "updated_at": now, "request_id": correlation.current(),
    }).scalar_one_or_none()
    if outbox_id is not None:
        session.info.setdefault("outbox_ids", []).append((queue, outbox_id))
    return outbox_id


@functools.cache
def _insert_statement(dialect_name):
    """INSERT ... ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, built once per database."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = Outbox.__table__
    return insert(table).on_conflict_do_nothing(index_elements=[table.c.dedupe_key]).returning(table.c.id)


# --- relay: after the transaction commits, hand its rows to delivery --------------------

@event.listens_for(Session, "after_commit")
def _relay_after_commit(session):
    items = session.info.pop("outbox_ids", None)
    if items:
        from app.notify.delivery import relay_committed

        relay_committed(items)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session):
    # The rows are gone with the transaction; nothing to deliver.
    session.info.pop("outbox_ids", None)
