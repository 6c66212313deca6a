from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models_base import pk, timestamp

# Why on-hand stock moved: a staff correction by a difference, or a count that sets the figure.
MOVEMENT_KINDS = ("adjust", "count")
MOVEMENT_LABELS = {"adjust": "手工调整", "count": "盘点"}


class Warehouse(db.Model):
    """A warehouse stock is held in (`app.inventory.warehouses` creates, edits, deactivates).

    A deactivated warehouse holds no stock and no reservation (deactivation refuses until it
    is empty) and takes none: stock adjustments, imports and return receipts refuse it."""

    __tablename__ = "warehouses"

    id: Mapped[int] = pk()
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    # Lower ships first when an order's stock is reserved.
    priority: Mapped[int] = mapped_column(Integer, default=100)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class Stock(db.Model):
    """On-hand and reserved units of a SKU in a warehouse. available = on_hand - reserved ≥ 0."""

    __tablename__ = "stock"
    __table_args__ = (
        CheckConstraint("reserved >= 0", name="reserved_nonnegative"),
        CheckConstraint("on_hand >= reserved", name="available_nonnegative"),
    )

    sku_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skus.id"), primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("warehouses.id"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)


class Reservation(db.Model):
    """Units of a SKU held in one warehouse for one order (released on cancel, deducted on shipment)."""

    __tablename__ = "stock_reservations"
    __table_args__ = (CheckConstraint("qty > 0", name="qty_positive"),)

    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), primary_key=True)
    sku_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skus.id"), primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("warehouses.id"), primary_key=True)
    qty: Mapped[int] = mapped_column(BigInteger)


class StockMovement(db.Model):
    """One change of a stock row's on-hand units, with the figures before and after.

    Append-only, written in the same transaction as the change (see `adjust_stock`).
    """

    __tablename__ = "stock_movements"
    __table_args__ = (
        CheckConstraint("on_hand_after >= 0", name="on_hand_after_nonnegative"),
        Index("ix_stock_movements_sku_warehouse", "sku_id", "warehouse_id", "id"),
    )

    id: Mapped[int] = pk()
    sku_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skus.id"))
    warehouse_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("warehouses.id"))
    kind: Mapped[str] = mapped_column(String(16))
    delta: Mapped[int] = mapped_column(BigInteger)
    on_hand_before: Mapped[int] = mapped_column(BigInteger)
    on_hand_after: Mapped[int] = mapped_column(BigInteger)
    reserved: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(200))
    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    actor_name: Mapped[str] = mapped_column(String(64))
    created_at = timestamp()
