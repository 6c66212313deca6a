from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models_base import UTCDateTime, fen, pk, timestamp

CREDIT_ENTRY_KINDS = ("limit_set", "hold", "release")

# The ledger's accounts: what the dealer owes on credit, its deposits, its rebate balance.
LEDGER_ACCOUNTS = ("receivable", "prepaid", "rebate")
ACCOUNT_LABELS = {"receivable": "应收账款", "prepaid": "预付款", "rebate": "返利"}
# What caused a ledger movement (`ref_type`); `ref_id` is that row's id. order: charges and
# reversals at submit/cancel (prepaid or rebate spent on an order); shipment: receivable when
# goods ship; payment: WeChat/offline payments; refund: refunds of returned goods; rebate:
# rebate documents credited; adjustment: manual.
LEDGER_REF_TYPES = ("order", "shipment", "payment", "refund", "rebate", "adjustment")


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
        CheckConstraint("prepaid_fen >= 0", name="prepaid_nonnegative"),
        CheckConstraint("rebate_fen >= 0", name="rebate_nonnegative"),
    )

    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"), primary_key=True)
    credit_limit_fen: Mapped[int] = fen()
    # receivable_fen, prepaid_fen and rebate_fen are the ledger's balances: only
    # `app.funds.ledger` changes them, each time with a `LedgerEntry` (held_fen is the
    # credit hold of open orders, changed with a `CreditEntry`).
    receivable_fen: Mapped[int] = fen()
    held_fen: Mapped[int] = fen()
    prepaid_fen: Mapped[int] = fen(server_default="0")
    rebate_fen: Mapped[int] = fen(server_default="0")


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


class LedgerEntry(db.Model):
    """One movement of one of a dealer's ledger accounts: append-only, never updated.

    `amount_fen` is signed (+ raises the balance); `balance_after_fen` is the account's
    balance right after it, so a dealer's entries of one account, in id order, replay the
    balance: each balance_after = the previous one + amount.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_dealer_account", "dealer_id", "account", "id"),
        Index("ix_ledger_entries_ref", "ref_type", "ref_id"),
        # Monthly statements read the ledger by time (who moved money in a month).
        Index("ix_ledger_entries_created_at", "created_at"),
        CheckConstraint("amount_fen <> 0", name="amount_nonzero"),
    )

    id: Mapped[int] = pk()
    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"))
    account: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = fen()
    balance_after_fen: Mapped[int] = fen()
    ref_type: Mapped[str] = mapped_column(String(16))
    ref_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_name: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(200))
    created_at = timestamp()


class Payment(db.Model):
    """Money received from a dealer, recorded once: a WeChat Pay transaction id (and the
    out_trade_no it paid) can appear only once."""

    __tablename__ = "payments"
    __table_args__ = (
        Index("ix_payments_dealer", "dealer_id", "id"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
    )

    id: Mapped[int] = pk()
    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"))
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    method: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = fen()
    # What went to the order; the rest (order cancelled meanwhile, or paid twice) went to prepaid.
    applied_fen: Mapped[int] = fen()
    transaction_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    out_trade_no: Mapped[str | None] = mapped_column(String(32), unique=True)
    payer_openid: Mapped[str | None] = mapped_column(String(128))
    paid_at = mapped_column(UTCDateTime, nullable=True)
    created_at = timestamp()


class WechatPayOrder(db.Model):
    """A JSAPI prepay order made at WeChat Pay for (what was left to pay of) an order.

    `out_trade_no` is ours (order number + attempt), written before WeChat is called, so
    a notification can always be matched, even one that arrives before the prepay answer.
    status: open (payable) → paid | closed.
    """

    __tablename__ = "wechatpay_orders"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="amount_positive"),)

    id: Mapped[int] = pk()
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"))
    amount_fen: Mapped[int] = fen()
    payer_openid: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'open'"))
    prepay_id: Mapped[str | None] = mapped_column(String(64))
    prepaid_at = mapped_column(UTCDateTime, nullable=True)
    expires_at = mapped_column(UTCDateTime, nullable=False)
    created_at = timestamp()
    updated_at = timestamp()
