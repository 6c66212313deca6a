"""Returns (after-sales): a dealer asks to send back goods of a shipped order.

`pending` → `approved` (staff agree) → `received` (the warehouse took the goods back into
stock); or `pending` → `rejected` (with a reason). Every transition is a `ReturnEvent`.

Money: each line snapshots the order line's unit price, and `refund_fen` is the sum of
the lines. No money moves yet: when the goods are received `refund_status` becomes
`pending_ledger`, the seam where the funds ledger (`app.funds.ledger`) is to post the credit note and
mark it `credited` (see `app.returns.service.refunds_awaiting_ledger`).
"""
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models_base import UTCDateTime, fen, pk, timestamp

RETURN_STATUSES = ("pending", "approved", "rejected", "received")
# Requests that hold quantity: what they ask for can't be asked for again.
HOLDING_STATUSES = ("pending", "approved", "received")
STATUS_LABELS = {"pending": "待审核", "approved": "已同意，待退回", "rejected": "已拒绝", "received": "已收货入库"}
# Orders whose goods (some or all) left the warehouse.
RETURNABLE_ORDER_STATUSES = ("partially_shipped", "shipped", "completed")
# None: nothing owed (yet); pending_ledger: goods are back, the refund waits for the ledger.
REFUND_STATUSES = ("pending_ledger", "credited")
REFUND_LABELS = {None: "—", "pending_ledger": "待退款（尚未接入资金台账）", "credited": "已入账"}


class ReturnRequest(db.Model):
    __tablename__ = "returns"
    __table_args__ = (
        Index("ix_returns_dealer", "dealer_id", "id"),
        Index("ix_returns_status", "status", "id"),
        CheckConstraint("refund_fen >= 0", name="refund_nonnegative"),
    )

    id: Mapped[int] = pk()
    # RT + the order number's digits + "-" + the order's return count: RT202611260001-1.
    return_no: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"))
    requested_by_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealer_users.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str] = mapped_column(String(500))
    decision_reason: Mapped[str | None] = mapped_column(String(200))
    refund_fen: Mapped[int] = fen()
    refund_status: Mapped[str | None] = mapped_column(String(16))
    warehouse_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("warehouses.id"))
    decided_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at = timestamp()
    updated_at = timestamp()

    order = relationship("Order")
    dealer = relationship("Dealer")
    lines = relationship("ReturnLine", order_by="ReturnLine.id", back_populates="request")
    photos = relationship("ReturnPhoto", order_by="ReturnPhoto.position")
    events = relationship("ReturnEvent", order_by="ReturnEvent.id")
    warehouse = relationship("Warehouse")


class ReturnLine(db.Model):
    """Units of one order line to send back, priced at what the dealer paid for them."""

    __tablename__ = "return_lines"
    __table_args__ = (CheckConstraint("qty > 0", name="qty_positive"),)

    id: Mapped[int] = pk()
    return_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("returns.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("order_lines.id"), index=True)
    sku_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skus.id"))
    sku_code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    spec: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(8))
    qty: Mapped[int] = mapped_column(Integer)
    unit_price_fen: Mapped[int] = fen()
    amount_fen: Mapped[int] = fen()

    request = relationship("ReturnRequest", back_populates="lines")


class ReturnPhoto(db.Model):
    __tablename__ = "return_photos"

    return_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("returns.id"), primary_key=True)
    upload_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("uploads.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    upload = relationship("Upload", lazy="joined")


class ReturnEvent(db.Model):
    """Every state change of a return: who, when, from, to, why."""

    __tablename__ = "return_events"

    id: Mapped[int] = pk()
    return_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("returns.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_name: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at = timestamp()
