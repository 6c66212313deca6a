"""Notification tables: the outbox, the dealer's message list, subscribe-message consents
and the WeCom callback's dedupe record (brand settings are `app.kernel.settings`).

The outbox is written in the same transaction as the change that causes a notification
(`app.notify.service.add`); delivery reads it (`app.notify.delivery`).
"""
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models_base import UTCDateTime, pk, timestamp

QUEUES = ("high", "default", "low")
# What a row's payload is and which gateway call delivers it:
#   mp_subscribe   recipient=openid,        payload={template_id, page, data, miniprogram_state, lang}
#   wecom_app      recipient=WeCom userid,  payload=message/send body without touser/agentid
#   wecom_card     recipient=WeCom userid,  payload=update_template_card body without userids/agentid
#   wecom_robot    recipient=robot name,    payload=webhook/send body
# pending: waiting for (another) attempt; sent: delivered; failed: WeChat refused for good
# (errcode/errmsg recorded) or retries ran out.
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed")


class Outbox(db.Model):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_outbox_ref", "ref_type", "ref_id"),
    )

    id: Mapped[int] = pk()
    # Unique: writing the same notification twice (a replayed event) stores it once,
    # and a job run twice finds the row already sent.
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    queue: Mapped[str] = mapped_column(String(8), default="high")
    channel: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSON)
    ref_type: Mapped[str | None] = mapped_column(String(16))
    ref_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_errcode: Mapped[int | None] = mapped_column(Integer)
    last_errmsg: Mapped[str | None] = mapped_column(String(500))
    created_at = timestamp()
    updated_at = timestamp()
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The request (or job) that wrote the row: its deliveries log under the same id.
    request_id: Mapped[str | None] = mapped_column(String(64))


class DealerMessage(db.Model):
    """An entry in the mini-program's message list (GET /api/mp/v1/messages).

    Written for every dealer-facing event, whether or not a subscribe message could be
    sent, so nothing depends on the dealer having consent left.
    """

    __tablename__ = "dealer_messages"
    __table_args__ = (Index("ix_dealer_messages_dealer", "dealer_id", "id"),)

    id: Mapped[int] = pk()
    dealer_id: Mapped[int] = mapped_column(ForeignKey("dealers.id"))
    event: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    page: Mapped[str | None] = mapped_column(String(200))
    ref_type: Mapped[str | None] = mapped_column(String(16))
    ref_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at = timestamp()


class SubscribeConsent(db.Model):
    """How many one-time subscribe messages a dealer user has allowed per template.

    WeChat gives no API to ask how many remain: each accepted `wx.requestSubscribeMessage`
    adds one, each message sent uses one.
    """

    __tablename__ = "subscribe_consents"
    __table_args__ = (UniqueConstraint("user_id", "template_id"),)

    id: Mapped[int] = pk()
    user_id: Mapped[int] = mapped_column(ForeignKey("dealer_users.id"))
    template_id: Mapped[str] = mapped_column(String(64))
    remaining: Mapped[int] = mapped_column(Integer, default=0)
    updated_at = timestamp()


class InboundEvent(db.Model):
    """A WeCom callback message or event already taken (dedupe by MsgId or sender+CreateTime)."""

    __tablename__ = "inbound_events"

    id: Mapped[int] = pk()
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    received_at = timestamp()
