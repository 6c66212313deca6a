from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models_base import UTCDateTime, fen, pk, timestamp

CREDIT_ENTRY_KINDS = ("limit_set", "hold", "release")

# The ledger's accounts: what the dealer owes on credit, its deposits, its rebate balance.
LEDGER_ACCOUNTS = ("receivable", "prepaid", "rebate")
ACCOUNT_LABELS = {"receivable": "应收账款", "prepaid": "预付款", "rebate": "返利"}
# What caused a ledger movement (`ref_type`); `ref_id` is that row's id.
# "order": an order's charges at submission (prepaid, rebate part-payment) and their
# reversals; "shipment": receivable for what a credit order's shipment sent; "refund":
# money given back for returned goods; "rebate": an approved rebate document.
LEDGER_REF_TYPES = ("order", "shipment", "payment", "refund", "rebate", "adjustment")


def exposure_fen(receivable_fen, held_fen):
    """A dealer's credit exposure ("已用额度"): what it owes plus what open credit orders hold.
    The one definition; it must stay ≤ the credit limit for credit orders."""
    return receivable_fen + held_fen


class CreditBalances:
    """Balances of a credit account, with its exposure (`used_fen`) and what is left."""

    @property
    def used_fen(self):
        return exposure_fen(self.receivable_fen, self.held_fen)

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
        # An approved rebate document is credited once: a second credit of it cannot be written.
        Index("ux_ledger_entries_rebate_credit", "ref_id", unique=True,
              postgresql_where=text("ref_type = 'rebate' AND amount_fen > 0"),
              sqlite_where=text("ref_type = 'rebate' AND amount_fen > 0")),
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


PAYMENT_METHODS = ("wechat", "offline")
PAYMENT_METHOD_LABELS = {"wechat": "微信支付", "offline": "线下转账"}


class Payment(db.Model):
    """Money received from a dealer, recorded once: a WeChat Pay transaction id (and the
    out_trade_no it paid) can appear only once, and so can a confirmed offline voucher."""

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
    # An offline transfer (method "offline") is recorded for the voucher finance confirmed;
    # unique, so one voucher can never become two payments.
    offline_payment_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("offline_payments.id"), unique=True)
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


OFFLINE_STATUSES = ("pending", "confirmed", "rejected")
OFFLINE_STATUS_LABELS = {"pending": "待确认", "confirmed": "已确认", "rejected": "已驳回"}


class OfflinePayment(db.Model):
    """A transfer (线下转账) a dealer says it made, with the voucher image, for finance to check.

    `pending` → `confirmed` (finance saw the money arrive: a `Payment` of method "offline"
    for `received_fen` and its ledger entries were written in the same transaction) or
    `pending` → `rejected` (with a reason the dealer sees; no money moved).
    `order_id` is the order it pays, or None for a deposit to the prepaid balance.
    """

    __tablename__ = "offline_payments"
    __table_args__ = (
        Index("ix_offline_payments_dealer", "dealer_id", "id"),
        Index("ix_offline_payments_status", "status", "id"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("received_fen IS NULL OR received_fen > 0", name="received_positive"),
    )

    id: Mapped[int] = pk()
    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"))
    submitted_by_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealer_users.id"))
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    # What the dealer says it transferred; `received_fen` is what finance confirmed arrived.
    amount_fen: Mapped[int] = fen()
    transfer_date: Mapped[date] = mapped_column(Date)
    payer_name: Mapped[str | None] = mapped_column(String(64))
    bank_reference: Mapped[str | None] = mapped_column(String(64))
    remark: Mapped[str | None] = mapped_column(String(200))
    voucher_upload_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("uploads.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    received_fen: Mapped[int | None] = mapped_column(BigInteger)
    decision_note: Mapped[str | None] = mapped_column(String(200))
    decided_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at = timestamp()
    updated_at = timestamp()

    dealer = relationship("Dealer")
    order = relationship("Order")
    voucher = relationship("Upload")
    submitted_by = relationship("DealerUser")
    decided_by = relationship("Staff")


# How a refund reaches the dealer: back through WeChat Pay, as a credit note on the
# receivable (credit orders), or onto the prepaid balance (prepaid / offline-paid orders).
# An order partly paid with rebate gets that share back on its rebate balance ("rebate").
REFUND_METHODS = ("wechat", "receivable", "prepaid", "rebate")
REFUND_METHOD_LABELS = {"wechat": "原路退回微信支付", "receivable": "冲减应收账款", "prepaid": "退回预付款",
                        "rebate": "退回返利账户"}
# pending: written, not yet accepted by WeChat Pay; refunding: WeChat Pay is paying it out;
# refunded: the money is back (ledger posted); failed: refused, closed or abnormal (finance retries).
REFUND_STATUSES = ("pending", "refunding", "refunded", "failed")
REFUND_STATUS_LABELS = {"pending": "待退款", "refunding": "退款中", "refunded": "已退款", "failed": "退款失败"}


class Refund(db.Model):
    """Money going back to a dealer for returned goods: one per receipt of a return (more
    when a WeChat Pay order was paid in several transactions).

    `out_refund_no` is ours, written before WeChat Pay is called (a retry after a failure
    gets a new one); WeChat Pay's `refund_id` can be recorded only once. The ledger entries
    (ref_type "refund", ref_id = this id) are posted exactly once, when `status` becomes
    `refunded`.
    """

    __tablename__ = "refunds"
    __table_args__ = (
        Index("ix_refunds_status", "status", "id"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
    )

    id: Mapped[int] = pk()
    dealer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dealers.id"))
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    return_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("returns.id"), index=True)
    receipt_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("return_receipts.id"))
    method: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = fen()
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    # WeChat Pay: the payment refunded, our refund number (attempt suffix), theirs.
    out_trade_no: Mapped[str | None] = mapped_column(String(32))
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    out_refund_no: Mapped[str | None] = mapped_column(String(64), unique=True)
    refund_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    user_received_account: Mapped[str | None] = mapped_column(String(64))
    failure: Mapped[str | None] = mapped_column(String(200))
    refunded_at = mapped_column(UTCDateTime, nullable=True)
    created_at = timestamp()
    updated_at = timestamp()
