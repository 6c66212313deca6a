"""Subscribing shipments at Kuaidi100: never inside the shipment's transaction.

`shipment_sent` is the `shipment.sent` subscriber (registered in `create_app`): in the
shipment's transaction it writes the shipment's `ShipmentTracking` row (pending) and one
`kuaidi100` outbox row, so the subscription commits or rolls back with the shipment. The
outbox delivers it after the commit (`app.notify.delivery`: retries on Kuaidi100's 500 and
network trouble, the sweep picks up what was left); `send` is the channel, which calls
`app.integrations.kuaidi100.subscribe` and records the outcome on the tracking row.
A refusal (bad key, bad data) or retries running out leave the row `failed` with the
error; `retry_failed_subscriptions` (a periodic job, `app/jobs.py`) gives each failed
subscription another round, up to MAX_ROUNDS, and staff may retry one from the order page.

Nothing is written when Kuaidi100 is not configured, or when the carrier has no Kuaidi100
code (自有车辆配送, a name typed freely): that shipment simply has no trail.
"""
import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import String, cast, literal, select, update

from app.audit import service as audit
from app.database import write_transaction
from app.extensions import db
from app.integrations import kuaidi100
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.permissions import can
from app.notify import channels
from app.notify import service as outbox
from app.notify.models import Outbox
from app.orders.models import Order, Shipment
from app.tracking.models import ShipmentTracking

log = logging.getLogger(__name__)

CHANNEL = "kuaidi100"
EVENT = "tracking_subscribe"
# Subscription rounds a shipment gets in all (each one outbox row, itself tried up to three times).
MAX_ROUNDS = 4
# A failed subscription is retried by the job no sooner than this after its last round.
RETRY_AFTER = timedelta(minutes=30)
tracking = ShipmentTracking.__table__


def register(app):
    """The outbox channel (called by `create_app`)."""
    channels.register(app, CHANNEL, send, after_permanent_failure=mark_failed)


def shipment_sent(session, order, carrier, tracking_no):
    """The `shipment.sent` subscriber: queue the waybill's subscription (see the module)."""
    config = current_app.config
    if not kuaidi100.configured(config):
        return
    company = kuaidi100.company_code(carrier)
    if company is None:
        log.info("shipment of %s by %s is not tracked: no Kuaidi100 company code", order.order_no, carrier)
        return
    shipment = session.execute(
        select(Shipment).where(Shipment.order_id == order.id, Shipment.carrier == carrier,
                               Shipment.tracking_no == tracking_no)
    ).scalar_one()
    now = utcnow()
    row = ShipmentTracking(shipment_id=shipment.id, company=company, number=tracking_no, status="pending",
                           rounds=1, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    _queue(session, row, order.ship_phone)


def _queue(session, row, phone):
    outbox.add(
        session, channel=CHANNEL, event=EVENT, recipient=f"{row.company}:{row.number}"[:64],
        payload={"tracking_id": row.id, "company": row.company, "number": row.number,
                 "phone": phone if row.company in kuaidi100.NEEDS_PHONE else None},
        dedupe_key=f"kuaidi100:{row.shipment_id}:{row.rounds}", queue="default",
        ref_type="shipment", ref_id=row.shipment_id,
    )


def send(config, row):
    """The `kuaidi100` channel: subscribe the row's waybill, record the outcome."""
    payload = row.payload or {}
    try:
        code = kuaidi100.subscribe(config, company=payload["company"], number=payload["number"],
                                   phone=payload.get("phone"))
    except kuaidi100.Kuaidi100Error as exc:
        if not exc.permanent:  # the outbox retries; the page shows why it waits
            _update(payload["tracking_id"], error=f"{exc.errmsg}（将自动重试）")
        raise
    now = utcnow()
    note = "快递100 已在跟踪该单号（501 重复订阅）" if code == kuaidi100.ALREADY_SUBSCRIBED else None
    _update(payload["tracking_id"], status="subscribed", error=note, subscribed_at=now)


def mark_failed(conn, row, errcode):
    """After a permanent refusal: the tracking row is `failed` with Kuaidi100's words."""
    message = conn.execute(select(Outbox.last_errmsg).where(Outbox.id == row.id)).scalar_one_or_none()
    conn.execute(update(tracking).where(tracking.c.id == (row.payload or {}).get("tracking_id"))
                 .values(status="failed", error=(message or "订阅失败")[:500], updated_at=utcnow()))


def _update(tracking_id, **values):
    # Delivery runs after the shipment's commit, outside any session transaction.
    with db.engine.begin() as conn:
        conn.execute(update(tracking).where(tracking.c.id == tracking_id).values(updated_at=utcnow(), **values))


def retry_failed_subscriptions(*, now=None):
    """The periodic job: another round for each subscription that failed (or whose outbox row
    ran out of tries while the row still says pending), up to MAX_ROUNDS. Returns how many."""
    now = now or utcnow()
    # The outbox row of the tracking row's current round (`_queue`'s dedupe key).
    current_round = (literal("kuaidi100:") + cast(ShipmentTracking.shipment_id, String) + literal(":")
                     + cast(ShipmentTracking.rounds, String))
    stuck = (
        select(ShipmentTracking.id)
        .join(Outbox, Outbox.dedupe_key == current_round)
        .where(ShipmentTracking.status.in_(("pending", "failed")), Outbox.status == "failed",
               ShipmentTracking.rounds < MAX_ROUNDS, ShipmentTracking.updated_at <= now - RETRY_AFTER)
    )
    ids = db.session.execute(stuck.order_by(ShipmentTracking.id)).scalars().all()
    db.session.rollback()
    retried = 0
    for tracking_id in ids:
        with write_transaction() as session:
            if _next_round(session, tracking_id, only_stuck=True):
                retried += 1
    return retried


def resubscribe(*, staff, order_no, shipment_id):
    """Staff retry one shipment's failed subscription now (another round, audited). 403
    without `orders.ship`, 404 for a shipment of another order or without tracking, 409
    unless it failed."""
    if not can(staff, "orders.ship"):
        raise DomainError("forbidden", "你没有重新订阅物流跟踪的权限（仅仓库与管理员）", 403)
    with write_transaction() as session:
        row = session.execute(
            select(ShipmentTracking).join(Shipment, Shipment.id == ShipmentTracking.shipment_id)
            .join(Order, Order.id == Shipment.order_id)
            .where(ShipmentTracking.shipment_id == shipment_id, Order.order_no == order_no)
            .with_for_update(of=ShipmentTracking)
        ).scalar_one_or_none()
        if row is None:
            raise NotFound("该发货记录没有物流跟踪", "tracking_not_found")
        if row.status != "failed":
            raise DomainError("tracking_not_failed", "只有订阅失败的运单可以重新订阅", 409)
        error = row.error
        _next_round(session, row.id, only_stuck=False)
        audit.record(session, actor=staff, action="tracking.resubscribe", entity_type="order", entity_id=order_no,
                     label=f"{order_no} {row.number}", before={"status": "failed", "error": error},
                     after={"status": "pending", "round": row.rounds})
    return row


def _next_round(session, tracking_id, *, only_stuck):
    row = session.execute(
        select(ShipmentTracking).where(ShipmentTracking.id == tracking_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    if row.status == "subscribed" or (only_stuck and row.rounds >= MAX_ROUNDS):
        return False
    shipment = session.get(Shipment, row.shipment_id)
    row.rounds += 1
    row.status, row.updated_at = "pending", utcnow()
    session.flush()
    _queue(session, row, shipment.order.ship_phone)
    return True
