"""Tracking tables: a shipment's subscription at the logistics-tracking provider (Kuaidi100)
and the trail of events it pushed.

One `ShipmentTracking` row per shipment that was subscribed (written in the shipment's
transaction by the `shipment.sent` subscriber, only when Kuaidi100 is configured); its
`status` says where the subscription stands, `state` the carrier's last reported state.
`TrackingEvent` rows are the pushed trail; `digest` (the event's time and text) makes a
repeated push store nothing twice.
"""
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models_base import UTCDateTime, pk, timestamp

# pending: the outbox row is waiting to be sent (or retried); subscribed: Kuaidi100 took it
# (200, or 501: already tracked); failed: refused or retries ran out (`error` says why;
# the retry job tries again a few times, staff may retry from the order page).
SUBSCRIPTION_STATUSES = ("pending", "subscribed", "failed")
SUBSCRIPTION_LABELS = {"pending": "订阅中", "subscribed": "已订阅", "failed": "订阅失败"}
# Kuaidi100's state codes (`lastResult.state`, and a trail line's with resultv2) in Chinese.
STATE_LABELS = {
    0: "在途", 1: "揽收", 2: "疑难", 3: "签收", 4: "退签", 5: "派件", 6: "退回", 7: "转投",
    8: "清关", 10: "待清关", 11: "清关中", 12: "已清关", 13: "清关异常", 14: "拒签",
}
DELIVERED = 3


def state_label(code):
    """"签收" for 3; "" for None; "状态 99" for a code Kuaidi100 added since."""
    if code is None:
        return ""
    return STATE_LABELS.get(code, f"状态 {code}")


class ShipmentTracking(db.Model):
    __tablename__ = "shipment_tracking"
    __table_args__ = (Index("ix_shipment_tracking_waybill", "company", "number"),)

    id: Mapped[int] = pk()
    shipment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("shipments.id"), unique=True)
    company: Mapped[str] = mapped_column(String(32))  # Kuaidi100's company code, e.g. shunfeng
    number: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    error: Mapped[str | None] = mapped_column(String(500))
    # Subscription rounds so far (one outbox row each; the retry job adds one).
    rounds: Mapped[int] = mapped_column(Integer, default=1)
    subscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # From the last push: the carrier's state code (0 在途, 3 签收 …), signed for, the
    # monitoring status (polling/shutdown/abort/updateall) and its message.
    state: Mapped[int | None] = mapped_column(Integer)
    checked: Mapped[bool] = mapped_column(Boolean, default=False)
    push_status: Mapped[str | None] = mapped_column(String(16))
    push_message: Mapped[str | None] = mapped_column(String(200))
    last_pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at = timestamp()
    updated_at = timestamp()


class TrackingEvent(db.Model):
    """One line of a shipment's trail as the carrier reported it."""

    __tablename__ = "tracking_events"
    __table_args__ = (UniqueConstraint("shipment_id", "digest"),)

    id: Mapped[int] = pk()
    shipment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("shipments.id"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    context: Mapped[str] = mapped_column(Text)
    area_name: Mapped[str | None] = mapped_column(String(64))
    # The state this line reports, as a code when the push gives one, and Kuaidi100's words.
    state: Mapped[int | None] = mapped_column(Integer)
    status_text: Mapped[str | None] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(40))
    created_at = timestamp()
