"""What a Kuaidi100 push does: store the trail, remember the waybill's state, and — when the
brand says so — complete the order the carrier delivered.

`record_push(param)` takes a verified push (`app.integrations.kuaidi100.verify_push`, called
by `callbacks/kuaidi100.py`) in one transaction: every shipment tracked under the pushed
waybill number gets the trail lines it does not have yet (a line is its time and text: a
repeated or overlapping push stores nothing twice), its state, signed-for flag and the
monitoring status. An unknown waybill stores nothing (the callback logs it and still
acknowledges, so Kuaidi100 stops pushing it).

Delivered (state 3, 签收): with the brand setting `delivery_completes_order` on, an order
that is fully shipped (`shipped`) and whose every tracked shipment is signed for is
completed through the order state table (`carrier_delivered`, by the system, with the
waybill and time as the reason; `order.transitioned` is published as for any step). With
the setting off nothing changes in the order: the dealer confirms receipt, or
`auto_complete_orders` does some days later.
"""
import hashlib
import logging
from datetime import datetime

from sqlalchemy import func, or_, select

from app.audit import service as audit
from app.database import dialect_insert, write_transaction
from app.extensions import db
from app.kernel import settings
from app.kernel.clock import BUSINESS_TZ, china_text, utcnow
from app.orders import states
from app.orders.models import Order, Shipment
from app.tracking.models import DELIVERED, STATE_LABELS, ShipmentTracking, TrackingEvent

log = logging.getLogger(__name__)

PUSH_STATUSES = ("polling", "shutdown", "abort", "updateall")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_LABEL_CODES = {label: code for code, label in STATE_LABELS.items()}


def record_push(param):
    """Store one verified push (its param as a dict). Returns (outcome, shipment ids):
    outcome "unknown" (no shipment tracks that waybill) or "stored"."""
    last = param.get("lastResult") or {}
    number = str(last.get("nu") or "").strip().upper()
    company = str(last.get("com") or "").strip().lower()
    state = _int(last.get("state"))
    lines = _trail(last.get("data"))
    status = str(param.get("status") or "")[:16] or None
    with write_transaction() as session:
        rows = session.execute(
            select(ShipmentTracking).where(ShipmentTracking.number == number)
            .order_by(ShipmentTracking.id).with_for_update().execution_options(populate_existing=True)
        ).scalars().all() if number else []
        same_company = [row for row in rows if row.company == company]
        rows = same_company or rows
        if not rows:
            return "unknown", []
        completes = settings.read(session, settings.DELIVERY_COMPLETES_ORDER)
        now = utcnow()
        for row in rows:
            _store_lines(session, row.shipment_id, lines)
            if state is not None:
                row.state = state
            row.checked = str(last.get("ischeck", "")) == "1" or state == DELIVERED
            row.push_status = status
            row.push_message = str(param.get("message") or "")[:200] or None
            row.last_pushed_at = now
            if row.status != "subscribed":  # a push proves the subscription took
                row.status, row.error, row.subscribed_at = "subscribed", None, row.subscribed_at or now
            row.updated_at = now
        session.flush()
        if completes and state == DELIVERED:
            signed = lines[0]["occurred_at"] if lines else None
            for row in rows:
                _complete_if_delivered(session, row, signed)
        return "stored", [row.shipment_id for row in rows]


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _trail(items):
    """The push's trail lines we can read, as row values (newest first, as pushed)."""
    lines = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        context = str(item.get("context") or "").strip()
        at = _china_instant(item.get("time")) or _china_instant(item.get("ftime"))
        if not context or at is None:
            log.warning("Kuaidi100 trail line skipped (no text or time): %r", item)
            continue
        text = str(item.get("status") or "").strip()[:16] or None
        code = _int(item.get("statusCode"))
        if code is None and text in _LABEL_CODES:
            code = _LABEL_CODES[text]
        lines.append({
            "occurred_at": at, "context": context, "area_name": (str(item.get("areaName") or "").strip()[:64] or None),
            "state": code, "status_text": text,
            "digest": hashlib.sha1(f"{at.isoformat()}\n{context}".encode()).hexdigest(),
        })
    return lines


def _china_instant(text):
    try:
        return datetime.strptime(str(text).strip(), TIME_FORMAT).replace(tzinfo=BUSINESS_TZ)
    except (TypeError, ValueError):
        return None


def _store_lines(session, shipment_id, lines):
    table = TrackingEvent.__table__
    have = set(session.execute(select(table.c.digest).where(table.c.shipment_id == shipment_id)).scalars())
    new, seen = [], set()
    for line in reversed(lines):  # oldest first, so ids follow the trail
        if line["digest"] in have or line["digest"] in seen:
            continue
        seen.add(line["digest"])
        new.append({**line, "shipment_id": shipment_id, "created_at": utcnow()})
    if new:
        session.execute(dialect_insert(session, table).values(new)
                        .on_conflict_do_nothing(index_elements=["shipment_id", "digest"]))
    return len(new)


def _complete_if_delivered(session, row, signed_at):
    order_id = session.execute(select(Shipment.order_id).where(Shipment.id == row.shipment_id)).scalar_one()
    order = session.execute(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()
    if not states.allows("carrier_delivered", order.status):
        return False  # partly shipped, already completed by the dealer, or closed
    unsigned = session.execute(
        select(func.count()).select_from(ShipmentTracking).join(Shipment, Shipment.id == ShipmentTracking.shipment_id)
        .where(Shipment.order_id == order.id, or_(ShipmentTracking.state.is_(None), ShipmentTracking.state != DELIVERED))
    ).scalar_one()
    if unsigned:
        return False  # another parcel of the order is still on its way
    shipment = session.get(Shipment, row.shipment_id)
    when = f"（{china_text(signed_at)}）" if signed_at else ""
    states.transition(session, order, "carrier_delivered", actor=states.SYSTEM_ACTORS["carrier_delivered"],
                      reason=f"快递100 推送 {shipment.carrier} {shipment.tracking_no} 已签收{when}，订单自动完成")
    return True


# --- the brand setting ------------------------------------------------------------------------

def get_delivery_completes_order():
    value = settings.read(db.session, settings.DELIVERY_COMPLETES_ORDER)
    db.session.rollback()
    return value


def set_delivery_completes_order(*, enabled, actor=None):
    """Switch completing orders on a carrier's 签收 push on or off (admins; audited as
    `settings.delivery_completes_order`). 403 for other roles, 422 for a non-bool."""
    return audit.change_setting(settings.DELIVERY_COMPLETES_ORDER, enabled, actor=actor,
                                refused="只有管理员可以修改签收后自动完成订单的设置")
