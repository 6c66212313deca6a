from datetime import date

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models_base import fen, pk, timestamp

PRICE_LIST_KINDS = ("tier", "dealer")


class PriceList(db.Model):
    """Prices for a tier or for one dealer, valid from `valid_from` to `valid_to` inclusive.

    `version` counts the list's changes: 1 when created, one more for each transaction that
    changes its name, validity or prices (an edit, an import, a price set or removed;
    `app.pricing.price_lists`). An order line keeps the id, name and version of the list
    that priced it, so an old order still says which list, as it then was, gave its price.
    """

    __tablename__ = "price_lists"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'tier' AND tier_id IS NOT NULL AND dealer_id IS NULL)"
            " OR (kind = 'dealer' AND dealer_id IS NOT NULL AND tier_id IS NULL)",
            name="target_matches_kind",
        ),
    )

    id: Mapped[int] = pk()
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id"), index=True)
    dealer_id: Mapped[int | None] = mapped_column(ForeignKey("dealers.id"), index=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at = timestamp()


class PriceListItem(db.Model):
    __tablename__ = "price_list_items"
    __table_args__ = (
        CheckConstraint("price_fen >= 0", name="price_nonnegative"),
        Index("ix_price_list_items_sku", "sku_id", "price_list_id"),
    )

    price_list_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("price_lists.id"), primary_key=True)
    sku_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skus.id"), primary_key=True)
    price_fen: Mapped[int] = fen()
