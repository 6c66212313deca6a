"""The ledger: the one place that moves a dealer's receivable, prepaid and rebate balances.

Every movement is an append-only `LedgerEntry` (account, signed amount, balance after it,
what caused it, who) written in the same transaction as the balance change, with the
dealer's account row (`credit_accounts`, the row orders lock too) locked `FOR UPDATE`
first; on SQLite `write_transaction()` holds the database's write lock instead. So two
movements of one dealer never interleave, and each account's entries in id order replay
its balance exactly: every balance_after = the previous one + amount.

Lock order: the dealer's account row, then any order row (as submit, cancel, reject and a
credit order's shipment take them), so payments, shipments and orders never deadlock.

Rules: prepaid and rebate balances never go below zero (409 `insufficient_balance`, and a
CHECK constraint behind it); receivable may (the dealer paid ahead). Amounts are non-zero
integer fen.
"""
import functools
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import and_, bindparam, case, func, insert, select, update

from app.database import dialect_insert, write_transaction
from app.extensions import db
from app.funds.models import (
    ACCOUNT_LABELS,
    LEDGER_ACCOUNTS,
    LEDGER_REF_TYPES,
    CreditAccount,
    LedgerEntry,
)
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError
from app.kernel.money import format_yuan

ACCOUNTS = CreditAccount.__table__
ENTRIES = LedgerEntry.__table__
NONNEGATIVE = ("prepaid", "rebate")
MAX_AMOUNT_FEN = 10**13  # ¥100 billion: far beyond any real movement, well inside BIGINT

SYSTEM = SimpleNamespace(id=None, name="系统")
ACTOR_TYPES = ("staff", "dealer_user", "system", "wechatpay")


@dataclass
class Balances:
    """A dealer's ledger balances as the locking transaction sees and changes them."""

    dealer_id: int
    receivable: int
    prepaid: int
    rebate: int

    def of(self, account):
        return getattr(self, account)


@dataclass(frozen=True)
class Movement:
    """One movement to post: `amount_fen` (signed) of `account`, caused by (`ref_type`, `ref_id`)."""

    account: str
    amount_fen: int
    ref_type: str
    ref_id: int | None = None
    note: str | None = None


@functools.cache
def _lock_statement():
    return (
        select(ACCOUNTS.c.receivable_fen, ACCOUNTS.c.prepaid_fen, ACCOUNTS.c.rebate_fen)
        .where(ACCOUNTS.c.dealer_id == bindparam("dealer_id"))
        .with_for_update()
    )


def lock_balances(session, dealer_id):
    """The dealer's balances, its account row locked for this transaction (created empty if missing)."""
    row = session.connection().execute(_lock_statement(), {"dealer_id": dealer_id}).first()
    if row is None:
        empty = dialect_insert(session, ACCOUNTS).values(
            dealer_id=dealer_id, credit_limit_fen=0, receivable_fen=0, held_fen=0, prepaid_fen=0, rebate_fen=0
        )
        session.execute(empty.on_conflict_do_nothing(index_elements=[ACCOUNTS.c.dealer_id]))
        row = session.connection().execute(_lock_statement(), {"dealer_id": dealer_id}).first()
    return Balances(dealer_id, row.receivable_fen, row.prepaid_fen, row.rebate_fen)


def _check(movement):
    if movement.account not in LEDGER_ACCOUNTS:
        raise DomainError("invalid_account", f"账户应为 {'、'.join(LEDGER_ACCOUNTS)} 之一", 422)
    if movement.ref_type not in LEDGER_REF_TYPES:
        raise DomainError("invalid_reference", f"来源类型应为 {'、'.join(LEDGER_REF_TYPES)} 之一", 422)
    amount = movement.amount_fen
    if type(amount) is not int or amount == 0 or abs(amount) > MAX_AMOUNT_FEN:
        raise DomainError("invalid_amount", "金额应为非零整数（单位：分）", 422)


def _actor_columns(actor, actor_type):
    if actor_type not in ACTOR_TYPES:
        raise ValueError(f"unknown actor type {actor_type!r}")
    return {"actor_type": actor_type, "actor_id": getattr(actor, "id", None), "actor_name": getattr(actor, "name", None)}


@functools.cache
def _balance_statements():
    return {
        account: update(ACCOUNTS)
        .where(ACCOUNTS.c.dealer_id == bindparam("account_dealer_id"))
        .values({f"{account}_fen": getattr(ACCOUNTS.c, f"{account}_fen") + bindparam("delta")})
        for account in LEDGER_ACCOUNTS
    }


def post(session, balances, movements, *, actor, actor_type, at=None):
    """Post `movements` (in order) against `balances`, which this transaction locked with
    `lock_balances`: each changes its account's balance and appends its entry. Returns the
    entries' column values. Raises before writing anything if any movement is invalid or
    would take prepaid or rebate below zero."""
    movements = list(movements)
    for movement in movements:
        _check(movement)
    after = {account: balances.of(account) for account in LEDGER_ACCOUNTS}
    entries = []
    at = at or utcnow()
    who = _actor_columns(actor, actor_type)
    for movement in movements:
        after[movement.account] += movement.amount_fen
        if movement.account in NONNEGATIVE and after[movement.account] < 0:
            label = ACCOUNT_LABELS[movement.account]
            raise DomainError(
                "insufficient_balance",
                f"{label}余额不足：当前 {format_yuan(balances.of(movement.account))}，"
                f"本次 {format_yuan(movement.amount_fen)}",
                409, {"account": movement.account},
            )
        entries.append({
            "dealer_id": balances.dealer_id, "account": movement.account, "amount_fen": movement.amount_fen,
            "balance_after_fen": after[movement.account], "ref_type": movement.ref_type, "ref_id": movement.ref_id,
            "note": movement.note, "created_at": at, **who,
        })
    conn = session.connection()
    statements = _balance_statements()
    for account in LEDGER_ACCOUNTS:
        delta = after[account] - balances.of(account)
        if delta:
            conn.execute(statements[account], {"account_dealer_id": balances.dealer_id, "delta": delta})
            setattr(balances, account, after[account])
    if entries:
        conn.execute(insert(ENTRIES), entries)
    return entries


def record_movements(*, dealer_id, movements, actor, actor_type):
    """Post `movements` for a dealer in a transaction of their own; returns the entries.

    For adjustments (the tests now; the console's finance pages later): 422 for a bad movement, 409
    `insufficient_balance` when prepaid or rebate would go negative; nothing is written then.
    """
    with write_transaction() as session:
        balances = lock_balances(session, dealer_id)
        return post(session, balances, movements, actor=actor, actor_type=actor_type)


# --- reading -----------------------------------------------------------------------

def get_balances(dealer_id):
    """{receivable_fen, prepaid_fen, rebate_fen} as committed now (no lock; zeros if no account)."""
    row = db.session.execute(
        select(ACCOUNTS.c.receivable_fen, ACCOUNTS.c.prepaid_fen, ACCOUNTS.c.rebate_fen)
        .where(ACCOUNTS.c.dealer_id == dealer_id)
    ).first()
    if row is None:
        return {"receivable_fen": 0, "prepaid_fen": 0, "rebate_fen": 0}
    return dict(row._mapping)


def list_entries(*, dealer_id, account=None, page=1, page_size=20):
    """One page of the dealer's ledger entries, newest first, each a dict with the entry's
    columns, `account_label` and the related `order_no` (the order, the order a payment
    paid, a shipment sent or a refund refunded; None otherwise): (items, total)."""
    from app.funds.models import Payment, Refund
    from app.orders.models import Order, Shipment

    where = [ENTRIES.c.dealer_id == dealer_id]
    if account:
        where.append(ENTRIES.c.account == account)
    total = db.session.execute(select(func.count()).select_from(ENTRIES).where(*where)).scalar_one()
    payments, orders, shipments, refunds = Payment.__table__, Order.__table__, Shipment.__table__, Refund.__table__
    order_id = case((ENTRIES.c.ref_type == "order", ENTRIES.c.ref_id),
                    (ENTRIES.c.ref_type == "shipment", shipments.c.order_id),
                    (ENTRIES.c.ref_type == "refund", refunds.c.order_id), else_=payments.c.order_id)
    rows = db.session.execute(
        select(ENTRIES, orders.c.order_no)
        .select_from(
            ENTRIES.outerjoin(payments, and_(ENTRIES.c.ref_type == "payment", payments.c.id == ENTRIES.c.ref_id))
            .outerjoin(shipments, and_(ENTRIES.c.ref_type == "shipment", shipments.c.id == ENTRIES.c.ref_id))
            .outerjoin(refunds, and_(ENTRIES.c.ref_type == "refund", refunds.c.id == ENTRIES.c.ref_id))
            .outerjoin(orders, and_(orders.c.id == order_id, orders.c.dealer_id == ENTRIES.c.dealer_id))
        )
        .where(*where).order_by(ENTRIES.c.id.desc()).limit(page_size).offset((page - 1) * page_size)
    ).all()
    items = [{**row._mapping, "account_label": ACCOUNT_LABELS[row.account]} for row in rows]
    return items, total
