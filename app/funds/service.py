"""Credit: holds for open credit orders, releases when they close.

The account row is locked (`FOR UPDATE`; `BEGIN IMMEDIATE` on SQLite) before its
balances are read, so concurrent orders can never both fit into the same headroom.
Every change writes a `CreditEntry` with the balances after it.
"""
from sqlalchemy import select

from app.errors import DomainError
from app.extensions import db
from app.funds.models import CreditAccount, CreditEntry
from app.money import format_yuan


def credit_summary(dealer_id):
    account = db.session.get(CreditAccount, dealer_id)
    if account is None:
        return {"limit_fen": 0, "used_fen": 0, "available_fen": 0}
    return {
        "limit_fen": account.credit_limit_fen,
        "used_fen": account.used_fen,
        "available_fen": account.available_fen,
    }


def lock_account(session, dealer_id):
    """The dealer's credit account, locked for this transaction (created empty if missing)."""
    account = session.execute(
        select(CreditAccount).where(CreditAccount.dealer_id == dealer_id).with_for_update()
    ).scalar_one_or_none()
    if account is None:
        account = CreditAccount(dealer_id=dealer_id, credit_limit_fen=0, receivable_fen=0, held_fen=0)
        session.add(account)
        session.flush()
    return account


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


def hold_credit(session, account, *, amount_fen, order_id):
    """Hold credit for an order; caller has locked `account` and checked `credit_problem`."""
    if account.used_fen + amount_fen > account.credit_limit_fen:
        raise DomainError("credit_limit_exceeded", "信用额度不足", 409)
    account.held_fen += amount_fen
    _entry(session, account, "hold", amount_fen, order_id)


def release_credit(session, account, *, amount_fen, order_id, note=None):
    account.held_fen -= amount_fen
    _entry(session, account, "release", -amount_fen, order_id, note)


def _entry(session, account, kind, amount_fen, order_id, note=None):
    session.add(
        CreditEntry(
            dealer_id=account.dealer_id,
            kind=kind,
            amount_fen=amount_fen,
            held_after_fen=account.held_fen,
            receivable_after_fen=account.receivable_fen,
            limit_after_fen=account.credit_limit_fen,
            order_id=order_id,
            note=note,
        )
    )
