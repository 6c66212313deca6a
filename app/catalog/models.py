from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models_base import fen, pk, timestamp

SKU_STATUSES = ("active", "inactive")
SKU_STATUS_LABELS = {"active": "在售", "inactive": "下架"}
VISIBILITY_SCOPES = ("tier", "region", "dealer")
VISIBILITY_EFFECTS = ("allow", "deny")
VISIBILITY_SCOPE_LABELS = {"tier": "等级", "region": "地区", "dealer": "经销商"}
VISIBILITY_EFFECT_LABELS = {"allow": "允许", "deny": "禁止"}


class Category(db.Model):
    __tablename__ = "categories"

    id: Mapped[int] = pk()
    name: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    sort: Mapped[int] = mapped_column(Integer, default=0)


class Sku(db.Model):
    """A sellable item. `moq` and `step` are in units; `pack_size` units make one carton."""

    __tablename__ = "skus"
    __table_args__ = (
        CheckConstraint("moq >= 1", name="moq_positive"),
        CheckConstraint("step >= 1", name="step_positive"),
        CheckConstraint("list_price_fen >= 0", name="list_price_nonnegative"),
        Index("ix_skus_category_status", "category_id", "status"),
        Index("ix_skus_catalogue_order", "status", "category_id", "id"),  # the catalogue's page order
    )

    id: Mapped[int] = pk()
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    spec: Mapped[str] = mapped_column(String(64), default="")
    unit: Mapped[str] = mapped_column(String(8))
    pack_size: Mapped[int] = mapped_column(Integer, default=1)
    moq: Mapped[int] = mapped_column(Integer, default=1)
    step: Mapped[int] = mapped_column(Integer, default=1)
    list_price_fen: Mapped[int] = fen()
    low_stock_qty: Mapped[int] = mapped_column(Integer, default=20)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    status: Mapped[str] = mapped_column(String(16), default="active")
    # A picture of the product: an image uploaded in the console and kept in app.storage
    # (`image_key`), or else a link typed in (`image_url`: http(s) or a path on this site).
    image_url: Mapped[str | None] = mapped_column(String(512))
    image_key: Mapped[str | None] = mapped_column(String(80))
    created_at = timestamp()

    category = relationship("Category")


class VisibilityRule(db.Model):
    """Allow or deny a SKU for a tier, a region (and everything under it) or one dealer.

    A matching deny hides the SKU. If a SKU has any allow rule, only dealers matching
    one of them see it. A SKU without rules is visible to every dealer.
    """

    __tablename__ = "visibility_rules"
    __table_args__ = (Index("ix_visibility_scope_target", "scope", "target"),)

    id: Mapped[int] = pk()
    sku_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skus.id"), index=True)
    scope: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(32))
    effect: Mapped[str] = mapped_column(String(8))
