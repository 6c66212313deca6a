"""Statements (对账单): a dealer's monthly account statement, a document snapshotted at issue.

One `Statement` per dealer and China calendar month. It copies, at issue time, each ledger
account's opening and closing balance and every ledger movement of the month
(`StatementLine`, with the category it is shown under), so what the dealer confirmed or
disputed never changes afterwards. Every status change is a `StatementEvent`.

status: pending (待确认) → confirmed (已确认); pending → disputed (有异议) → pending again when
finance resolves the dispute (the dealer may then confirm or dispute again).
"""
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models_base import UTCDateTime, fen, pk, timestamp

STATEMENT_STATUSES = ("pending", "confirmed", "disputed")
STATUS_LABELS = {"pending": "待确认", "confirmed": "已确认", "disputed": "有异议"}
EVENT_ACTIONS = ("issued", "confirmed", "disputed", "resolved")
EVENT_LABELS = {"issued": "出具对账单", "confirmed": "经销商确认", "disputed": "经销商提出异议", "resolved": "财务处理异议"}


class Statement(db.Model):
    __tablename__ = "statements"
    __table_args__ = (
        UniqueConstraint("dealer_id", "month"),
        Index("ix_statements_month_status", "month", "status"),
        Index("ix_statements_status", "status", "id"),
    )

    id: Mapped[int] = pk()
    # DZ + month + dealer code: DZ202611-D001.
    statement_no: Mapped[str] = mapped_column(String(48), unique=True)
    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"))
    month: Mapped[str] = mapped_column(String(7))  # "2026-11", a China calendar month
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)  # UTC bounds: [start, end)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    dealer_code: Mapped[str] = mapped_column(String(32))
    dealer_name: Mapped[str] = mapped_column(String(128))
    opening_receivable_fen: Mapped[int] = fen()
    opening_prepaid_fen: Mapped[int] = fen()
    opening_rebate_fen: Mapped[int] = fen()
    closing_receivable_fen: Mapped[int] = fen()
    closing_prepaid_fen: Mapped[int] = fen()
    closing_rebate_fen: Mapped[int] = fen()
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("dealer_users.id"))
    disputed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispute_comment: Mapped[str | None] = mapped_column(String(500))
    disputed_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("dealer_users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_note: Mapped[str | None] = mapped_column(String(500))
    resolved_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    created_at = timestamp()
    updated_at = timestamp()

    lines = relationship("StatementLine", order_by="StatementLine.id", back_populates="statement")
    events = relationship("StatementEvent", order_by="StatementEvent.id")

    def opening_fen(self, account):
        return getattr(self, f"opening_{account}_fen")

    def closing_fen(self, account):
        return getattr(self, f"closing_{account}_fen")


class StatementLine(db.Model):
    """A copy of one ledger movement of the month, as the statement shows it."""

    __tablename__ = "statement_lines"
    __table_args__ = (Index("ix_statement_lines_statement", "statement_id", "id"),)

    id: Mapped[int] = pk()
    statement_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("statements.id"))
    ledger_entry_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("ledger_entries.id"))
    account: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(16))
    ref_type: Mapped[str] = mapped_column(String(16))
    ref_id: Mapped[int | None] = mapped_column(BigInteger)
    order_no: Mapped[str | None] = mapped_column(String(32))
    amount_fen: Mapped[int] = fen()
    balance_after_fen: Mapped[int] = fen()
    note: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)

    statement = relationship("Statement", back_populates="lines")


class StatementEvent(db.Model):
    """Every step of a statement: who, when, what, and the comment or note given."""

    __tablename__ = "statement_events"

    id: Mapped[int] = pk()
    statement_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("statements.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_type: Mapped[str] = mapped_column(String(16))  # system / dealer_user / staff
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_name: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(String(500))
    created_at = timestamp()
