"""Credit: holds for open credit orders, releases when they close.

The account row is locked (`FOR UPDATE`; `BEGIN IMMEDIATE` on SQLite) before its
balances are read, so concurrent orders can never both fit into the same headroom.
Every change writes a `CreditEntry` with the balances after it.
"""
import functools
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select, update

from app.database import dialect_insert
from app.extensions import db
from app.funds.models import CreditAccount, CreditBalances, CreditEntry
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError
from app.kernel.money import format_yuan

ACCOUNTS = CreditAccount.__table__
ENTRIES = CreditEntry.__table__


@dataclass
class Account(CreditBalances):
    """A locked credit account's balances, as this transaction sees and changes them."""

    dealer_id: int
    credit_limit_fen: int
    receivable_fen: int
    held_fen: int


def get_balances(dealer_id):
    """The dealer's credit balances as they are now (no lock); an empty account if none."""
    return db.session.get(CreditAccount, dealer_id) or Account(dealer_id, 0, 0, 0)


def credit_summary(dealer_id, account=None):
    account = account or get_balances(dealer_id)
    return {
        "limit_fen": account.credit_limit_fen,
        "used_fen": account.used_fen,
        "available_fen": account.available_fen,
    }


ACCOUNT_COLUMNS = (ACCOUNTS.c.credit_limit_fen, ACCOUNTS.c.receivable_fen, ACCOUNTS.c.held_fen)


@functools.cache
def _lock_statement():
    return select(*ACCOUNT_COLUMNS).where(ACCOUNTS.c.dealer_id == bindparam("dealer_id")).with_for_update()


def lock_account(session, dealer_id):
    """The dealer's credit account, locked for this transaction (created empty if missing)."""
    row = session.connection().execute(_lock_statement(), {"dealer_id": dealer_id}).first()
    if row is None:
        # Two first-ever transactions may race to create it; let one win, then lock it.
        empty = dialect_insert(session, ACCOUNTS).values(
            dealer_id=dealer_id, credit_limit_fen=0, receivable_fen=0, held_fen=0
        )
        session.execute(empty.on_conflict_do_nothing(index_elements=[ACCOUNTS.c.dealer_id]))
        row = session.connection().execute(_lock_statement(), {"dealer_id": dealer_id}).first()
    return account_from_row(dealer_id, row)


def account_from_row(dealer_id, row):
    """An `Account` from a row with `ACCOUNT_COLUMNS` that a statement locked `FOR UPDATE`."""
    return Account(dealer_id, row.credit_limit_fen, row.receivable_fen, row.held_fen)


def credit_problem(account, amount_fen):
    """A problem dict if `amount_fen` more would exceed the limit, else None."""
    if account.used_fen + amount_fen <= account.credit_limit_fen:
        return None
    return {
        "code": "credit_limit_exceeded",
        "message": (
            f"信用额度不足：本单 {format_yuan(amount_fen)}，"
            f"可用额度 {format_yuan(account.available_fen)}"
        ),
        "amount_fen": amount_fen,
        "available_fen": account.available_fen,
    }


@functools.cache
def _held_statement():
    return (
        update(ACCOUNTS)
        .where(ACCOUNTS.c.dealer_id == bindparam("account_dealer_id"))
        .values(held_fen=ACCOUNTS.c.held_fen + bindparam("delta"))
    )


def hold_entry(account, amount_fen, *, order_id=None, at=None):
    """The ledger entry (column values) that holds `amount_fen` of `account` for an order.
    Raises 409 if it does not fit under the limit (the caller checked `credit_problem`)."""
    if account.used_fen + amount_fen > account.credit_limit_fen:
        raise DomainError("credit_limit_exceeded", "信用额度不足", 409)
    return _entry(account, amount_fen, "hold", order_id, None, at)


def release_credit(session, account, *, amount_fen, order_id, note=None):
    write_entry(session, account, _entry(account, -amount_fen, "release", order_id, note))


def _entry(account, delta, kind, order_id, note, at=None):
    return {
        "dealer_id": account.dealer_id, "kind": kind, "amount_fen": delta,
        "held_after_fen": account.held_fen + delta, "receivable_after_fen": account.receivable_fen,
        "limit_after_fen": account.credit_limit_fen, "order_id": order_id, "note": note,
        "created_at": at or utcnow(),
    }


def write_entry(session, account, entry):
    """Move the account's held credit by the entry's amount and append the entry."""
    session.connection().execute(_held_statement(), {"account_dealer_id": account.dealer_id, "delta": entry["amount_fen"]})
    account.held_fen = entry["held_after_fen"]
    session.connection().execute(insert(ENTRIES), entry)


# PostgreSQL: `write_entry` of a hold as CTEs of a statement that writes the order too (the
# order write of `app.orders.writing`). The text is the same with or without a hold (it is
# prepared once): `hold_parameters` switches it off with `:with_hold`.
_HOLD_CTES = """held AS (
    UPDATE credit_accounts SET held_fen = credit_accounts.held_fen + :entry_amount_fen
    WHERE credit_accounts.dealer_id = :entry_dealer_id AND CAST(:with_hold AS boolean)
    RETURNING 1
), entry AS (
    INSERT INTO credit_entries (dealer_id, kind, amount_fen, held_after_fen, receivable_after_fen,
                                limit_after_fen, order_id, note, created_at)
    SELECT :entry_dealer_id, :entry_kind, :entry_amount_fen, :entry_held_after_fen, :entry_receivable_after_fen,
           :entry_limit_after_fen, {order}.id, :entry_note, :entry_created_at
    FROM {order} WHERE CAST(:with_hold AS boolean)
)"""


@functools.cache
def hold_ctes(order_cte):
    """`write_entry` of a `hold_entry` as PostgreSQL CTEs (text to put after a `WITH ... ,`)
    for the order whose `id` the CTE `order_cte` returns; bind `hold_parameters(...)`. The
    account row must be locked already (`lock_account`). The CTE `held` has one row when
    the account was moved: the caller checks `SELECT count(*) FROM held` is 1 with a hold,
    0 without."""
    return _HOLD_CTES.format(order=order_cte)


# The entry parameters when there is no hold (the statement's text stays the same).
_NO_HOLD = {"kind": "hold", "amount_fen": 0, "held_after_fen": 0, "receivable_after_fen": 0, "limit_after_fen": 0,
            "note": None, "created_at": None}


def hold_parameters(account, entry):
    """The bind parameters of `hold_ctes` for `entry` (a `hold_entry` without its order id;
    None: no hold) of the locked `account`; moves `account.held_fen` as `write_entry` does."""
    values = entry if entry is not None else {**_NO_HOLD, "dealer_id": account.dealer_id}
    if entry is not None:
        account.held_fen = entry["held_after_fen"]
    return {
        "with_hold": entry is not None,
        **{f"entry_{name}": value for name, value in values.items() if name != "order_id"},
    }


# --- credit limit ------------------------------------------------------------------------

@functools.cache
def _limit_statement():
    return (
        update(ACCOUNTS)
        .where(ACCOUNTS.c.dealer_id == bindparam("account_dealer_id"))
        .values(credit_limit_fen=bindparam("limit_fen"))
    )


def set_limit(session, *, dealer_id, limit_fen, note=None):
    """Inside the caller's write transaction: give the dealer a new credit limit.

    Locks the account (creating it empty if missing), changes the limit and appends a
    `limit_set` entry whose amount is the change. Returns the previous limit (fen); an
    unchanged limit writes nothing. A limit below what is already used is allowed: open
    orders keep their holds, and new credit orders are refused until there is headroom.
    """
    if isinstance(limit_fen, bool) or not isinstance(limit_fen, int) or limit_fen < 0:
        raise DomainError("invalid_credit_limit", "信用额度必须是不小于 0 的整数（分）", 422)
    account = lock_account(session, dealer_id)
    previous = account.credit_limit_fen
    if limit_fen == previous:
        return previous
    session.connection().execute(_limit_statement(), {"account_dealer_id": dealer_id, "limit_fen": limit_fen})
    account.credit_limit_fen = limit_fen
    session.connection().execute(insert(ENTRIES), {
        "dealer_id": dealer_id, "kind": "limit_set", "amount_fen": limit_fen - previous,
        "held_after_fen": account.held_fen, "receivable_after_fen": account.receivable_fen,
        "limit_after_fen": limit_fen, "order_id": None, "note": note and note[:200], "created_at": utcnow(),
    })
    stale = session.identity_map.get(session.identity_key(CreditAccount, dealer_id))
    if stale is not None:
        session.expire(stale)
    return previous
