"""Approval of pending orders (WeCom card, bot, console) and auto-approval at submission.

A rep's approval (`orders.approve` without `orders.review_credit`) is final unless the dealer
is over its credit limit; then finance (`orders.review_credit` only) decides the orders a rep
approved (`Order.awaiting_finance`). An admin holds both, and decides alone. Which of these
steps is taken is decided here; the step itself is an action of `app.orders.states`.
"""
from sqlalchemy import select

from app.database import write_transaction
from app.dealers.access import scope_to_staff
from app.extensions import db
from app.funds import service as funds
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.money import format_yuan
from app.kernel.permissions import can
from app.orders import approval_rules, states
from app.orders.models import Order


def staff_order_query(staff, order_no):
    """Select the order if this staff member may decide on it.

    A sales rep acts only on dealers assigned to them (an order of another rep's dealer
    answers 404, as if it did not exist); admins act on every dealer.
    """
    from app.dealers.models import Dealer

    _require_approver(staff)
    query = select(Order).join(Dealer, Dealer.id == Order.dealer_id).where(Order.order_no == order_no)
    return scope_to_staff(query, staff)


def may_decide(staff):
    """True when `staff` takes part in approving orders (a rep's step, finance's or both)."""
    return can(staff, "orders.approve") or can(staff, "orders.review_credit")


def _require_approver(staff):
    if not may_decide(staff):
        raise DomainError("forbidden", "你没有审批订单的权限", 403)


def _lock_order_for_staff(session, staff, order_no, *, lock_account=False):
    """The order, locked, or 404. With `lock_account` the dealer's credit account is locked
    first (returned too), in the same order as submit and cancel take them: no deadlock."""
    query = staff_order_query(staff, order_no)
    account = None
    if lock_account:
        found = session.execute(query.with_only_columns(Order.dealer_id)).scalar_one_or_none()
        if found is not None:
            account = funds.lock_account(session, found)
    order = session.execute(query.with_for_update(of=Order)).scalar_one_or_none()
    if order is None:
        raise NotFound("订单不存在，或不是你负责的经销商的订单", "order_not_found")
    return (order, account) if lock_account else order


def over_credit_limit(account):
    """The finance co-approval rule: the dealer's exposure (receivable + every open order's
    credit hold, this order's included) is above its limit right now. An order could only be
    placed within the limit, so this happens when the limit was lowered or the receivable
    grew while the order waited."""
    return account.used_fen > account.credit_limit_fen


def _current_balances(session, dealer_id):
    row = session.connection().execute(
        select(*funds.ACCOUNT_COLUMNS).where(funds.ACCOUNTS.c.dealer_id == dealer_id)
    ).first()
    return funds.account_from_row(dealer_id, row) if row is not None else funds.Account(dealer_id, 0, 0, 0)


def approve_order(*, staff, order_no, reason=None, card_tap=None):
    """Staff approves a pending order: stock stays reserved, credit stays held.

    Finance co-approval: when the dealer is over its credit limit at this moment
    (`over_credit_limit`), a rep's approval is recorded (event, audit `order.approve_rep`)
    but the order stays `pending_approval`, `awaiting_finance`, until finance or an admin
    approves it too. Finance approves only such orders; an admin's approval is always final.

    Returns the order (check `status`: still `pending_approval` after a rep's approval that
    needs finance). 404 for an order the staff member may not see, 409 `order_not_pending`
    when it was already decided (e.g. a second tap on the card), 409 `awaiting_finance` for
    a rep approving again, 409 `not_awaiting_finance` for finance on an order that does not
    need them.

    `card_tap`: the WeCom card tap this approval answers (`bots.cards`), passed on in the
    `order.transitioned` event so the rep's notifier greys that card out.
    """
    with write_transaction() as session:
        order = _lock_order_for_staff(session, staff, order_no)
        states.require(order, "approve")
        # Read, not locked: approving changes no balance, so approvals of one dealer's
        # orders need not queue behind each other (a limit cut committed a moment later
        # simply comes after this approval).
        account = _current_balances(session, order.dealer_id)
        # Only an order on credit (it holds credit) can take the dealer over its limit.
        over = order.credit_held_fen > 0 and over_credit_limit(account)
        credit = {"credit_limit_fen": account.credit_limit_fen, "exposure_fen": account.used_fen}
        if not can(staff, "orders.approve"):  # finance: only the orders a rep approved over credit
            if not order.awaiting_finance:
                raise DomainError(
                    "not_awaiting_finance",
                    f"订单 {order.order_no} 不在等待财务复核（业务员尚未审批，或未超出信用额度），财务无需审批",
                    409, {"status": order.status},
                )
            states.transition(session, order, "approve_credit", actor=staff,
                              reason=reason or "财务复核通过（超出信用额度）", audit_after=credit, card_tap=card_tap)
        elif not can(staff, "orders.review_credit") and order.awaiting_finance:
            raise DomainError("awaiting_finance", f"你已审批订单 {order.order_no}，正在等待财务复核（超出信用额度）", 409,
                              {"status": order.status})
        elif not can(staff, "orders.review_credit") and over:
            order.rep_approved_by_id = staff.id
            order.rep_approved_at = utcnow()
            states.transition(
                session, order, "approve_rep", actor=staff, card_tap=card_tap,
                reason=(f"业务员审批通过；经销商已用额度 {format_yuan(account.used_fen)} 超出信用额度 "
                        f"{format_yuan(account.credit_limit_fen)}，等待财务复核"),
                audit_after={"awaiting": "finance", **credit},
            )
        else:
            if over:
                reason = reason or "审批通过（超出信用额度，管理员审批）"
            states.transition(session, order, "approve", actor=staff, reason=reason or "审批通过",
                              audit_after=credit if over else None, card_tap=card_tap)
    return order


def reject_order(*, staff, order_no, reason):
    """Staff rejects a pending order with a reason: stock and credit are released.

    Finance may reject only orders waiting for finance; reps and admins any pending order.
    """
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("reason_required", "驳回订单需要填写原因", 422)
    with write_transaction() as session:
        order, account = _lock_order_for_staff(session, staff, order_no, lock_account=True)
        states.require(order, "reject")
        if not can(staff, "orders.approve") and not order.awaiting_finance:
            raise DomainError("not_awaiting_finance", f"订单 {order.order_no} 不在等待财务复核，请由业务员处理", 409,
                              {"status": order.status})
        states.transition(session, order, "reject", actor=staff, reason=reason, account=account)
    return order


def auto_approve(session, order, *, dealer_status, account, setting=None):
    """Approve a just-placed order, in the transaction that placed it, when the brand's auto-approval
    rules allow it (`app.orders.approval_rules`); otherwise leave it for the rep. `setting`:
    the auto-approval setting as this transaction already read it (None: read it now)."""
    if setting is None:
        setting = approval_rules.read_setting(session)
    if approval_rules.refusal(setting, dealer_status=dealer_status, account=account, order=order):
        return
    states.transition(session, order, "auto_approve", actor=states.SYSTEM_ACTORS["auto_approve"],
                      reason="符合自动审批规则")


def list_pending_for_staff(*, staff, limit=200):
    """Orders waiting for approval that `staff` may decide on, oldest first:
    [(order, dealer_code, dealer_name)]. Reps see their own dealers' orders (those waiting
    for finance too, marked by `order.awaiting_finance`); finance only the orders waiting for
    finance; admins all."""
    from app.dealers.models import Dealer

    _require_approver(staff)
    query = scope_to_staff(
        select(Order, Dealer.code, Dealer.name).join(Dealer, Dealer.id == Order.dealer_id)
        .where(Order.status.in_(states.from_states("approve"))),
        staff,
    )
    if not can(staff, "orders.approve"):  # finance's queue: what reps approved over credit
        query = query.where(Order.rep_approved_by_id.is_not(None))
    return db.session.execute(query.order_by(Order.id).limit(limit)).all()