from datetime import date

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models_base import UTCDateTime, fen, pk, timestamp

ORDER_STATUSES = (
    "pending_approval",
    "approved",
    "partially_shipped",
    "shipped",
    "completed",
    "cancelled",
    "rejected",
)
OPEN_STATUSES = ("pending_approval", "approved", "partially_shipped")
STATUS_LABELS = {
    "pending_approval": "待审批",
    "approved": "已审批",
    "partially_shipped": "部分发货",
    "shipped": "已发货",
    "completed": "已完成",
    "cancelled": "已取消",
    "rejected": "已驳回",
}
# How an order is paid: on credit (账期, held against the limit), from the prepaid balance,
# by WeChat Pay (payable right after submission, no credit held), or by an offline transfer.
PAYMENT_METHODS = ("credit", "prepaid", "wechat", "offline")
PAYMENT_METHOD_LABELS = {"credit": "信用额度（账期）", "prepaid": "预付款", "wechat": "微信支付", "offline": "线下转账"}


CLOSED_UNPAID_STATUSES = ("cancelled", "rejected")


class OrderAmounts:
    """What an order (or a just-placed `PlacedOrder`) still asks to be paid.

    total = rebate (taken from the rebate balance at submission) + what the payment method
    pays; `paid_fen` is what that method has paid so far (prepaid at submission, WeChat Pay
    or a confirmed offline transfer later), so due = total − rebate − paid. A cancelled or
    rejected order is due nothing (what it had been paid went back, see `cancel_order`).
    """

    @property
    def payable_fen(self):
        return self.total_fen - self.rebate_fen

    @property
    def due_fen(self):
        if self.status in CLOSED_UNPAID_STATUSES:
            return 0
        return max(self.payable_fen - self.paid_fen, 0)


class Order(OrderAmounts, db.Model):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_dealer_created", "dealer_id", "id"),
        Index("ix_orders_dealer_created_at", "dealer_id", "created_at"),  # a dealer's last order
        Index("ix_orders_status", "status"),
        # The dashboard's day, month and 30-day figures are ranges of created_at.
        Index("ix_orders_created_at", "created_at"),
        CheckConstraint("total_fen >= 0", name="total_nonnegative"),
    )

    id: Mapped[int] = pk()
    order_no: Mapped[str] = mapped_column(String(20), unique=True)
    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"))
    placed_by_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealer_users.id"))
    status: Mapped[str] = mapped_column(String(24))
    payment_method: Mapped[str] = mapped_column(String(16), default="credit")
    subtotal_fen: Mapped[int] = fen()
    discount_fen: Mapped[int] = fen()
    shipping_fen: Mapped[int] = fen()
    total_fen: Mapped[int] = fen()
    # Credit still held for the order (credit orders): what it pays by credit, less what
    # its shipments have already turned into receivable.
    credit_held_fen: Mapped[int] = fen()
    # Paid so far by the payment method (prepaid at submission, WeChat Pay, a confirmed
    # offline transfer); changed only with the payment's ledger entries.
    paid_fen: Mapped[int] = fen(server_default="0")
    # Taken from the dealer's rebate balance at submission (part-payment, capped by the
    # brand's rebate-usage rate); given back when the order is cancelled or rejected.
    rebate_fen: Mapped[int] = fen(server_default="0")
    # Shipping address as it was when the order was placed.
    ship_contact: Mapped[str] = mapped_column(String(64))
    ship_phone: Mapped[str] = mapped_column(String(20))
    ship_region_code: Mapped[str] = mapped_column(String(6))
    ship_address: Mapped[str] = mapped_column(String(300))
    remark: Mapped[str] = mapped_column(String(200), default="")
    # Finance co-approval: a rep approved an order that was over the dealer's credit limit
    # at that moment; it stays pending_approval until finance (or an admin) approves too.
    rep_approved_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    rep_approved_at = mapped_column(UTCDateTime, nullable=True)
    # When the last units left (status `shipped`); auto-completion counts from here.
    shipped_at = mapped_column(UTCDateTime, nullable=True)
    created_at = timestamp()
    updated_at = timestamp()

    lines = relationship("OrderLine", order_by="OrderLine.id", back_populates="order")
    events = relationship("OrderEvent", order_by="OrderEvent.id")
    shipments = relationship("Shipment", order_by="Shipment.id", back_populates="order")

    @property
    def awaiting_finance(self):
        return self.status == "pending_approval" and self.rep_approved_by_id is not None


class OrderLine(db.Model):
    """A line snapshots the SKU's name, spec, the unit price the dealer was charged and the
    price list (id, name, version) that gave it."""

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("qty > 0", name="qty_positive"),
        CheckConstraint("shipped_qty >= 0 AND shipped_qty <= qty", name="shipped_within_qty"),
    )

    id: Mapped[int] = pk()
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    sku_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skus.id"))
    sku_code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    spec: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(8))
    qty: Mapped[int] = mapped_column(Integer)
    list_price_fen: Mapped[int] = fen()
    unit_price_fen: Mapped[int] = fen()
    amount_fen: Mapped[int] = fen()
    price_source: Mapped[str] = mapped_column(String(16))
    # The price list that gave the price, as it was at the order: its id (no foreign key:
    # the line is a snapshot and keeps naming the list whatever becomes of it), name and
    # version. NULL for the list price, and on lines written before lines recorded it.
    price_list_id: Mapped[int | None] = mapped_column(BigInteger)
    price_list_name: Mapped[str | None] = mapped_column(String(64))
    price_list_version: Mapped[int | None] = mapped_column(Integer)
    # Units that have left the warehouse in shipments (never more than `qty`).
    shipped_qty: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    order = relationship("Order", back_populates="lines")

    @property
    def remaining_qty(self):
        return self.qty - self.shipped_qty


class OrderEvent(db.Model):
    """Every state change of an order: who, when, from, to, why."""

    __tablename__ = "order_events"

    id: Mapped[int] = pk()
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_name: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at = timestamp()


class Shipment(db.Model):
    """One parcel (or truck) of an order: a carrier and tracking number, one or more lines.

    `seq` numbers an order's shipments 1, 2, ...; an order's carrier + tracking number pair
    is unique, since the dealer is told about each one once.
    """

    __tablename__ = "shipments"
    __table_args__ = (
        UniqueConstraint("order_id", "seq"),
        UniqueConstraint("order_id", "carrier", "tracking_no"),
    )

    id: Mapped[int] = pk()
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    carrier: Mapped[str] = mapped_column(String(32))
    tracking_no: Mapped[str] = mapped_column(String(64))
    shipped_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    shipped_by_name: Mapped[str] = mapped_column(String(64))
    created_at = timestamp()

    order = relationship("Order", back_populates="shipments")
    lines = relationship("ShipmentLine", order_by="ShipmentLine.id", back_populates="shipment")


class ShipmentLine(db.Model):
    """Units of one order line that left one warehouse in a shipment (a line shipped from two
    warehouses has two rows)."""

    __tablename__ = "shipment_lines"
    __table_args__ = (CheckConstraint("qty > 0", name="qty_positive"),)

    id: Mapped[int] = pk()
    shipment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("shipments.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("order_lines.id"), index=True)
    sku_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skus.id"))
    warehouse_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("warehouses.id"))
    qty: Mapped[int] = mapped_column(Integer)

    shipment = relationship("Shipment", back_populates="lines")
    order_line = relationship("OrderLine")


class IdempotencyKey(db.Model):
    """One order per (dealer, Idempotency-Key); `request_hash` detects a reused key."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("dealer_id", "key"),)

    id: Mapped[int] = pk()
    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"))
    key: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"))
    created_at = timestamp()


class OrderNoCounter(db.Model):
    """Per-day sequence behind order numbers like SO202611260001."""

    __tablename__ = "order_no_counters"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class CartItem(db.Model):
    __tablename__ = "cart_items"
    __table_args__ = (CheckConstraint("qty > 0", name="qty_positive"),)

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealer_users.id"), primary_key=True)
    sku_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skus.id"), primary_key=True)
    qty: Mapped[int] = mapped_column(Integer)
    updated_at = timestamp()
