"""Finance's view of the money (admin, finance): every payment, one dealer's accounts and
ledger, and manual adjustments.

`adjust_balance` is the one way staff move a balance by hand: a ledger movement with ref_type
"adjustment" (its `ref_id` is the audit entry that records who, why, before and after),
posted under the dealer's account lock in the same transaction as that audit entry.
"""
from datetime import timedelta

from sqlalchemy import func, select

from app.audit import service as audit
from app.database import write_transaction
from app.dealers.models import Dealer
from app.extensions import db
from app.funds import ledger
from app.funds import service as credit
from app.funds.models import ACCOUNT_LABELS, LEDGER_ACCOUNTS, PAYMENT_METHODS, Payment
from app.funds.offline import STAFF_PAGE_SIZE
from app.kernel.clock import business_day_start
from app.kernel.errors import DomainError, NotFound
from app.kernel.permissions import require
from app.orders.models import Order

LEDGER_PAGE_SIZE = 50


def list_payments_for_staff(*, staff, method=None, dealer_id=None, q=None, day_from=None, day_to=None, page=1):
    """One page of payments of any method, newest first: ([(Payment, Dealer, order_no)], total).
    `day_from`/`day_to` are China dates (inclusive) of when the payment was recorded; `q`
    matches the dealer's code or name, the order number or the WeChat Pay transaction id."""
    require(staff, "payments.manage", "你没有查看付款的权限")
    if method and method not in PAYMENT_METHODS:
        raise DomainError("invalid_filter", "付款方式参数有误", 400)
    query = (
        select(Payment, Dealer, Order.order_no)
        .join(Dealer, Dealer.id == Payment.dealer_id).outerjoin(Order, Order.id == Payment.order_id)
    )
    if method:
        query = query.where(Payment.method == method)
    if dealer_id:
        query = query.where(Payment.dealer_id == dealer_id)
    if q:
        like = f"%{q}%"
        query = query.where(Dealer.code.ilike(like) | Dealer.name.ilike(like) | Order.order_no.ilike(like)
                            | Payment.transaction_id.ilike(like))
    if day_from:
        query = query.where(Payment.created_at >= business_day_start(day_from))
    if day_to:
        query = query.where(Payment.created_at < business_day_start(day_to + timedelta(days=1)))
    total = db.session.execute(query.with_only_columns(func.count(), maintain_column_froms=True)).scalar_one()
    rows = db.session.execute(
        query.order_by(Payment.id.desc()).limit(STAFF_PAGE_SIZE).offset((page - 1) * STAFF_PAGE_SIZE)
    ).all()
    totals = dict(db.session.execute(
        query.with_only_columns(Payment.method, func.sum(Payment.amount_fen), maintain_column_froms=True)
        .group_by(Payment.method)
    ).all())
    return rows, total, {m: int(v or 0) for m, v in totals.items()}


def dealer_account(*, staff, dealer_id, account=None, page=1):
    """A dealer's three balances, its credit figures and one page of its ledger entries
    (newest first, optionally of one account): {dealer, balances, credit, entries, total}."""
    require(staff, "payments.manage", "你没有查看资金账户的权限")
    if account and account not in LEDGER_ACCOUNTS:
        raise DomainError("invalid_filter", "账户参数有误", 400)
    dealer = db.session.get(Dealer, dealer_id)
    if dealer is None:
        raise NotFound("经销商不存在", "dealer_not_found")
    entries, total = ledger.list_entries(dealer_id=dealer_id, account=account, page=page, page_size=LEDGER_PAGE_SIZE)
    return {
        "dealer": dealer, "balances": ledger.get_balances(dealer_id), "credit": credit.credit_summary(dealer_id),
        "entries": entries, "total": total,
    }


def adjust_balance(*, staff, dealer_id, account, amount_fen, reason):
    """Move one of a dealer's balances by hand (admin, finance): `amount_fen` signed, a reason
    required. Returns the ledger entry's values. Raises 403, 404 `dealer_not_found`, 422
    `invalid_field` (account, amount, reason), 409 `insufficient_balance` when prepaid or
    rebate would go below zero. Nothing is written when it raises."""
    require(staff, "payments.manage", "你没有调整资金账户的权限")
    if account not in LEDGER_ACCOUNTS:
        raise DomainError("invalid_field", "请选择要调整的账户", 422, {"field": "account"})
    if type(amount_fen) is not int or amount_fen == 0 or abs(amount_fen) > ledger.MAX_AMOUNT_FEN:
        raise DomainError("invalid_field", "调整金额不能为 0", 422, {"field": "amount"})
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("invalid_field", "请填写调整原因", 422, {"field": "reason"})
    if len(reason) > 200:
        raise DomainError("invalid_field", "调整原因不能超过 200 个字符", 422, {"field": "reason"})
    with write_transaction() as session:
        dealer = session.get(Dealer, dealer_id)
        if dealer is None:
            raise NotFound("经销商不存在", "dealer_not_found")
        balances = ledger.lock_balances(session, dealer_id)
        before = balances.of(account)
        entry = audit.record(
            session, actor=staff, action="ledger.adjust", entity_type="ledger", entity_id=dealer.code,
            label=f"{dealer.name}（{dealer.code}）{ACCOUNT_LABELS[account]}",
            before={"account": account, "balance_after_fen": before},
            after={"account": account, "amount_fen": amount_fen, "balance_after_fen": before + amount_fen},
            reason=reason,
        )
        session.flush()  # the audit entry's id is the movement's reference
        [posted] = ledger.post(session, balances, [ledger.Movement(
            account, amount_fen, "adjustment", entry.id, f"手工调整：{reason}"[:200],
        )], actor=staff, actor_type="staff")
    return posted
