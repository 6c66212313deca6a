from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models_base import fen, pk, timestamp

CREDIT_ENTRY_KINDS = ("limit_set", "hold", "release")


class CreditBalances:
    """exposure (used) = receivable + held; it must stay ≤ limit for credit orders."""

    @property
    def used_fen(self):
        return self.receivable_fen + self.held_fen

    @property
    def available_fen(self):
        return max(self.credit_limit_fen - self.used_fen, 0)


class CreditAccount(CreditBalances, db.Model):
    """A dealer's credit account."""

    __tablename__ = "credit_accounts"
    __table_args__ = (
        CheckConstraint("credit_limit_fen >= 0", name="limit_nonnegative"),
        CheckConstraint("held_fen >= 0", name="held_nonnegative"),
    )

    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"), primary_key=True)
    credit_limit_fen: Mapped[int] = fen()
    receivable_fen: Mapped[int] = fen()
    held_fen: Mapped[int] = fen()


class CreditEntry(db.Model):
    """Append-only record of every change to a credit account, with the balances after it."""

    __tablename__ = "credit_entries"

    id: Mapped[int] = pk()
    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = fen()
    held_after_fen: Mapped[int] = fen()
    receivable_after_fen: Mapped[int] = fen()
    limit_after_fen: Mapped[int] = fen()
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id"))
    note: Mapped[str | None] = mapped_column(String(200))
    created_at = timestamp()
