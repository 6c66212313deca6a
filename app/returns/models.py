"""Returns (after-sales): a dealer asks to send back goods of a shipped order.

`pending` → `approved` (staff agree) → `receiving` (some goods arrived) → `received` (all
approved units are back); `approved`/`receiving` → `closed` (staff end it: what arrived is
what counts); `pending` → `rejected` (staff, with a reason) or `withdrawn` (the dealer). Every
transition is a `ReturnEvent`; each arrival of goods is a `ReturnReceipt`.

Money: each line snapshots the order line's unit price; `refund_fen` is what the request
asks for (the lines' sum). What is refunded follows what was received: each receipt makes a
`app.funds.models.Refund` of its units (unit price × qty received per line), and
`refund_status` sums them up (None before anything arrived; pending → refunding →
refunded / failed), `refunded_fen` is the money already back.
"""
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models_base import UTCDateTime, fen, pk, timestamp

RETURN_STATUSES = ("pending", "approved", "receiving", "received", "closed", "rejected", "withdrawn")
# Requests whose asked-for quantity is held: it can't be asked for again. A received or
# closed request holds what was received; a rejected or withdrawn one holds nothing.
HOLDING_STATUSES = ("pending", "approved", "receiving")
SETTLED_STATUSES = ("received", "closed")
# Goods may arrive (and staff may close the request) in these.
RECEIVABLE_STATUSES = ("approved", "receiving")
STATUS_LABELS = {
    "pending": "待审核", "approved": "已同意，待退回", "receiving": "部分入库", "received": "已收货入库",
    "closed": "已结束（按实收退款）", "rejected": "已拒绝", "withdrawn": "已撤回",
}
# Orders whose goods (some or all) left the warehouse.
RETURNABLE_ORDER_STATUSES = ("partially_shipped", "shipped", "completed")
# None: nothing received yet, so nothing owed; then the refunds' state (see the docstring).
REFUND_STATUSES = ("pending", "refunding", "refunded", "failed")
REFUND_LABELS = {None: "—", "pending": "待退款", "refunding": "退款中", "refunded": "已退款", "failed": "退款失败"}


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
    # Money already back with the dealer (refunds `refunded`).
    refunded_fen: Mapped[int] = fen(server_default="0")
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
    receipts = relationship("ReturnReceipt", order_by="ReturnReceipt.id")
    refunds = relationship("Refund", order_by="Refund.id", viewonly=True)


class ReturnLine(db.Model):
    """Units of one order line to send back, priced at what the dealer paid for them."""

    __tablename__ = "return_lines"
    __table_args__ = (
        CheckConstraint("qty > 0", name="qty_positive"),
        CheckConstraint("received_qty >= 0 AND received_qty <= qty", name="received_within_qty"),
    )

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
    # Units the warehouse took back so far (never more than `qty`).
    received_qty: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    request = relationship("ReturnRequest", back_populates="lines")

    @property
    def outstanding_qty(self):
        return self.qty - self.received_qty


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


class ReturnReceipt(db.Model):
    """One arrival of returned goods: who took how many of which line into which warehouse,
    and what that is worth (`amount_fen`, refunded by the receipt's refund)."""

    __tablename__ = "return_receipts"

    id: Mapped[int] = pk()
    return_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("returns.id"), index=True)
    warehouse_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("warehouses.id"))
    received_by_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("staff.id"))
    amount_fen: Mapped[int] = fen()
    created_at = timestamp()

    lines = relationship("ReturnReceiptLine", order_by="ReturnReceiptLine.id")
    warehouse = relationship("Warehouse")


class ReturnReceiptLine(db.Model):
    __tablename__ = "return_receipt_lines"
    __table_args__ = (CheckConstraint("qty > 0", name="qty_positive"),)

    id: Mapped[int] = pk()
    receipt_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("return_receipts.id"), index=True)
    return_line_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("return_lines.id"), index=True)
    qty: Mapped[int] = mapped_column(Integer)
    # unit price × qty (ROUND_HALF_UP per line), capped so an order line is never refunded
    # more than it was charged.
    amount_fen: Mapped[int] = fen()
