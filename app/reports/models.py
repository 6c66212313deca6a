"""Reports' own table: the monthly sales targets the dashboard measures attainment against.

A `SalesTarget` is one dealer's ordering target for one China business month, in fen. A rep's
target is not stored: it is the sum of the targets of the dealers currently assigned to them
(so reassigning a dealer moves its target with it). The dealer profile's 年度目标
(`Dealer.annual_target_fen`) stays the contract's yearly figure; it is not split into months
here, since a brand's months are not equal (season, holidays).
"""
from datetime import date

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models_base import pk, timestamp

MAX_TARGET_FEN = 10**14  # ¥1 万亿: a typo guard, far above any dealer's month


class SalesTarget(db.Model):
    __tablename__ = "sales_targets"
    __table_args__ = (
        UniqueConstraint("month", "dealer_id"),
        CheckConstraint("amount_fen > 0", name="target_positive"),
    )

    id: Mapped[int] = pk()
    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"), index=True)
    month: Mapped[date] = mapped_column(Date)  # the first day of the month
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    created_at = timestamp()
    updated_at = timestamp()
