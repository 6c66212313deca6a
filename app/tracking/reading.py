"""Reading shipments' trails: for the dealer (the mini-program) and for staff (the console).

A `Trail` is what a page shows of one shipment's tracking: the subscription's status (and
error), the carrier's last state in Chinese, and the trail lines newest first with their time
in China. A shipment that was never subscribed (Kuaidi100 not configured, or a carrier it has
no code for) has the empty trail (`tracked` False).
"""
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.kernel.clock import china_text
from app.kernel.errors import NotFound
from app.orders.models import Order, Shipment, ShipmentLine
from app.tracking.models import SUBSCRIPTION_LABELS, ShipmentTracking, TrackingEvent, state_label


@dataclass
class Trail:
    tracked: bool = False
    status: str | None = None  # pending / subscribed / failed
    status_label: str = "未跟踪"
    error: str | None = None
    state: int | None = None
    state_label: str = ""
    checked: bool = False
    last_pushed_at: object = None
    events: list = field(default_factory=list)  # dicts, newest first

    def as_dict(self):
        return {
            "tracked": self.tracked, "status": self.status, "status_label": self.status_label,
            "state": self.state, "state_label": self.state_label, "signed": self.checked,
            "events": self.events,
        }


def trails(shipment_ids):
    """{shipment id: Trail} for these shipments (two queries however many there are)."""
    ids = list(shipment_ids)
    result = {shipment_id: Trail() for shipment_id in ids}
    if not ids:
        return result
    for row in db.session.execute(select(ShipmentTracking).where(ShipmentTracking.shipment_id.in_(ids))).scalars():
        result[row.shipment_id] = Trail(
            tracked=True, status=row.status, status_label=SUBSCRIPTION_LABELS.get(row.status, row.status),
            error=row.error, state=row.state, state_label=state_label(row.state), checked=row.checked,
            last_pushed_at=row.last_pushed_at,
        )
    events = db.session.execute(
        select(TrackingEvent).where(TrackingEvent.shipment_id.in_(ids))
        .order_by(TrackingEvent.shipment_id, TrackingEvent.occurred_at.desc(), TrackingEvent.id.desc())
    ).scalars()
    for event in events:
        result[event.shipment_id].events.append(event_dict(event))
    return result


def event_dict(event):
    label = state_label(event.state) if event.state is not None else (event.status_text or "")
    return {
        "time": china_text(event.occurred_at, "%Y-%m-%d %H:%M:%S"), "at": event.occurred_at,
        "context": event.context, "area_name": event.area_name, "state": event.state, "state_label": label,
    }


def dealer_shipment(*, dealer_id, shipment_id):
    """(shipment with its lines and order, Trail) of the dealer's own shipment; another
    dealer's shipment id answers the same 404 as an unknown one."""
    shipment = db.session.execute(
        select(Shipment).join(Order, Order.id == Shipment.order_id)
        .where(Shipment.id == shipment_id, Order.dealer_id == dealer_id)
        .options(selectinload(Shipment.lines).selectinload(ShipmentLine.order_line))
    ).scalar_one_or_none()
    if shipment is None:
        raise NotFound("发货记录不存在", "shipment_not_found")
    return shipment, trails([shipment.id])[shipment.id]
