"""Orders: the one place that creates orders and changes their state.

`submit_order` is one transaction: lock the dealer's credit account (which also
serialises a dealer's submissions, making the Idempotency-Key check race-free), lock the
SKUs' stock rows, re-price from the server's own prices, check MOQ/step/visibility/stock/
credit, then write the order, its lines, reservations, credit hold, first event and key.
Any problem raises before anything is written.
"""
import functools
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.database import dialect_insert, write_transaction
from app.dealers.service import SUSPENDED_MESSAGE, check_may_act, lock_dealer, ship_to
from app.errors import DomainError, NotFound
from app.extensions import db
from app.funds import service as funds
from app.inventory import service as inventory
from app.models_base import utcnow
from app.notify import events as notify_events
from app.orders import approval_rules
from app.orders.models import (
    STATUS_LABELS,
    CartItem,
    IdempotencyKey,
    Order,
    OrderEvent,
    OrderLine,
    OrderNoCounter,
)
from app.pricing.service import Buyer, business_today, merge_lines, priced_skus, quote_lines, shortage

CANCELLABLE = ("pending_approval",)
MAX_CART_ITEMS = 200


# --- reading ------------------------------------------------------------------

def get_order(*, dealer_id, order_no):
    """The dealer's own order; another dealer's order number answers 404."""
    order = db.session.execute(
        select(Order).where(Order.order_no == order_no, Order.dealer_id == dealer_id)
    ).scalar_one_or_none()
    if order is None:
        raise NotFound("订单不存在", "order_not_found")
    return order


def list_orders(*, dealer_id, status=None, page=1, page_size=20):
    """One page of the dealer's orders, newest first, lines loaded: (orders, total)."""
    where = [Order.dealer_id == dealer_id]
    if status:
        where.append(Order.status == status)
    total = db.session.execute(select(func.count()).select_from(Order).where(*where)).scalar_one()
    orders = db.session.execute(
        select(Order).options(selectinload(Order.lines)).where(*where).order_by(Order.id.desc()).limit(page_size).offset((page - 1) * page_size)
    ).scalars().all()
    return orders, total


# --- preview and submit ------------------------------------------------------

def preview_order(*, user, lines, address_id=None):
    """Price the lines and report every problem, writing nothing.

    Returns {quote, problems, credit, address}. Problems include `credit_limit_exceeded`.
    """
    dealer = user.dealer
    address = ship_to(db.session, dealer_id=dealer.id, address_id=address_id)
    quote = quote_lines(db.session, Buyer.of(dealer), lines)
    account = funds.get_balances(dealer.id)
    problems = list(quote.problems)
    if dealer.status != "active":
        problems.insert(0, {"code": "dealer_suspended", "message": SUSPENDED_MESSAGE})
    credit = funds.credit_problem(account, quote.total_fen) if quote.lines else None
    if credit:
        problems.append(credit)
    return {"quote": quote, "problems": problems, "credit": funds.credit_summary(dealer.id, account), "address": address}


def request_fingerprint(*, lines, address_id, remark, payment_method):
    """Hash of what was asked for; the same Idempotency-Key with another body is a conflict."""
    body = {
        "lines": [[line["sku_id"], line["qty"]] for line in lines],
        "address_id": address_id,
        "remark": remark or "",
        "payment_method": payment_method,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class PlacedOrder:
    """What `submit_order` wrote, shaped like `Order` (with `lines` and `events`) for presenters."""

    id: int
    order_no: str
    dealer_id: int
    placed_by_id: int
    status: str
    payment_method: str
    credit_held_fen: int
    subtotal_fen: int
    discount_fen: int
    shipping_fen: int
    total_fen: int
    ship_contact: str
    ship_phone: str
    ship_region_code: str
    ship_address: str
    remark: str
    created_at: datetime
    lines: list = field(default_factory=list)
    events: list = field(default_factory=list)


def submit_order(*, user, lines, idempotency_key, address_id=None, remark="", payment_method="credit"):
    """Create an order, or return the one this Idempotency-Key already created.

    Returns (order, replayed). Raises 409 `idempotency_conflict` for a reused key with
    another body, 409 `insufficient_stock` / `credit_limit_exceeded`, 422 `order_invalid`
    (unavailable SKU, MOQ, step) with every problem in `details.problems`.
    """
    dealer = user.dealer
    fingerprint = request_fingerprint(
        lines=lines, address_id=address_id, remark=remark, payment_method=payment_method
    )
    try:
        with write_transaction() as session:
            account = funds.lock_account(session, dealer.id)
            standing = check_may_act(session, user)
            replay = _find_replay(session, dealer.id, idempotency_key, fingerprint)
            if replay is not None:
                return replay, True
            standing.require_dealer_active()
            order = _create_order(
                session, user=user, buyer=standing.buyer, account=account, lines=lines,
                address_id=address_id, remark=remark, payment_method=payment_method,
            )
            session.connection().execute(
                _insert_statement(IdempotencyKey),
                {
                    "dealer_id": dealer.id, "key": idempotency_key, "request_hash": fingerprint,
                    "order_id": order.id, "created_at": order.created_at,
                },
            )
            # Auto-approval (a brand setting): a separate step after the order exists.
            _auto_approve(session, order, dealer_status=standing.dealer_status, account=account)
    except IntegrityError:
        # Only a concurrent twin with the same key can get here (the account lock
        # serialises a dealer's submissions on PostgreSQL); answer with its order.
        replay = _find_replay(db.session, dealer.id, idempotency_key, fingerprint)
        db.session.rollback()
        if replay is None:
            raise
        return replay, True
    return order, False


@functools.cache
def _replay_statement():
    keys = IdempotencyKey.__table__
    return select(keys.c.request_hash, keys.c.order_id).where(
        keys.c.dealer_id == bindparam("dealer_id"), keys.c.key == bindparam("key")
    )


def _find_replay(session, dealer_id, key, fingerprint):
    row = session.connection().execute(_replay_statement(), {"dealer_id": dealer_id, "key": key}).first()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise DomainError(
            "idempotency_conflict",
            "该 Idempotency-Key 已用于另一笔不同内容的下单请求，请为新订单生成新的 Key",
            409,
        )
    return session.get(Order, row.order_id)


@functools.cache
def _insert_statement(model, returning_id=False):
    stmt = insert(model.__table__)
    return stmt.returning(model.__table__.c.id) if returning_id else stmt


@functools.cache
def _clear_cart_statement():
    cart = CartItem.__table__
    return delete(cart).where(
        cart.c.user_id == bindparam("user_id"), cart.c.sku_id.in_(bindparam("sku_ids", expanding=True))
    )


def _create_order(session, *, user, buyer, account, lines, address_id, remark, payment_method):
    """`buyer` is the dealer as it is now (from `check_may_act`), not as a cached caller remembers it."""
    dealer = user.dealer
    address = ship_to(session, dealer_id=dealer.id, address_id=address_id)
    pairs = merge_lines(lines)
    locked = inventory.lock_stock(session, [sku_id for sku_id, _ in pairs])
    quote = quote_lines(session, buyer, lines, check_stock=False)
    priced = {line.sku_id: line for line in quote.lines}
    problems = list(quote.problems)
    for sku_id, qty in pairs:
        line = priced.get(sku_id)
        available = inventory.total_available(locked, sku_id)
        if line is not None and qty > available:
            problems.append(shortage(sku_id=sku_id, name=line.name, unit=line.unit, qty=qty, available=available))
    _raise_for_problems(problems, account, quote.total_fen)

    now = utcnow()
    values = {
        "order_no": _next_order_no(session), "dealer_id": dealer.id, "placed_by_id": user.id,
        "status": "pending_approval", "payment_method": payment_method,
        "credit_held_fen": quote.total_fen, **quote.totals(),
        "ship_contact": address["contact_name"], "ship_phone": address["phone"],
        "ship_region_code": address["region_code"], "ship_address": address["full_text"],
        "remark": remark or "", "created_at": now, "updated_at": now,
    }
    order_id = session.connection().execute(_insert_statement(Order, returning_id=True), values).scalar_one()
    values.pop("updated_at")
    order = PlacedOrder(id=order_id, **values, lines=quote.lines)
    session.connection().execute(
        _insert_statement(OrderLine),
        [
            {
                "order_id": order.id, "sku_id": l.sku_id, "sku_code": l.sku_code, "name": l.name,
                "spec": l.spec, "unit": l.unit, "qty": l.qty, "list_price_fen": l.list_price_fen,
                "unit_price_fen": l.unit_price_fen, "amount_fen": l.amount_fen,
                "price_source": l.price_source,
            }
            for l in quote.lines
        ],
    )
    inventory.reserve(session, order.id, inventory.allocate(locked, pairs))
    funds.hold_credit(session, account, amount_fen=quote.total_fen, order_id=order.id)
    order.events.append(
        _record_event(session, order.id, None, "pending_approval", actor=user, reason="经销商提交订单", at=now)
    )
    notify_events.order_changed(session, order, from_status=None, to_status="pending_approval", actor=user)
    session.connection().execute(_clear_cart_statement(), {"user_id": user.id, "sku_ids": [s for s, _ in pairs]})
    return order


def _raise_for_problems(problems, account, total_fen):
    other = [p for p in problems if p["code"] != "insufficient_stock"]
    if other:
        raise DomainError("order_invalid", "订单中有商品不符合下单要求，请按提示修改", 422, {"problems": problems})
    if problems:
        raise DomainError("insufficient_stock", "部分商品库存不足，请减少数量后重试", 409, {"problems": problems})
    credit = funds.credit_problem(account, total_fen)
    if credit:
        raise DomainError("credit_limit_exceeded", credit["message"], 409, {"problems": [credit]})


@functools.cache
def _bump_counter_statement():
    counters = OrderNoCounter.__table__
    return (
        update(counters).where(counters.c.day == bindparam("for_day"))
        .values(last=counters.c.last + 1).returning(counters.c.last)
    )


def _next_order_no(session):
    """`SO` + China date + 4-digit daily sequence (more digits past 9999)."""
    day = business_today()
    bumped = session.connection().execute(_bump_counter_statement(), {"for_day": day}).scalar_one_or_none()
    if bumped is None:
        try:
            with session.begin_nested():
                session.execute(insert(OrderNoCounter).values(day=day, last=1))
            bumped = 1
        except IntegrityError:
            bumped = session.connection().execute(_bump_counter_statement(), {"for_day": day}).scalar_one()
    return f"SO{day:%Y%m%d}{bumped:04d}"


def _record_event(session, order_id, from_status, to_status, *, actor, reason=None, at=None,
                  actor_type="dealer_user"):
    """Write one state change of an order (who, when, from, to, why); returns it."""
    values = {
        "order_id": order_id, "from_status": from_status, "to_status": to_status,
        "actor_type": actor_type, "actor_id": actor.id, "actor_name": actor.name,
        "reason": reason, "created_at": at or utcnow(),
    }
    session.connection().execute(_insert_statement(OrderEvent), values)
    return OrderEvent(**values)


# --- transitions ---------------------------------------------------------------

def cancel_order(*, user, order_no, reason=None):
    """Dealer cancels an order before approval: stock and credit are released.

    Raises 404 for another dealer's order, 409 `order_not_cancellable` after approval.
    """
    with write_transaction() as session:
        account = funds.lock_account(session, user.dealer_id)
        check_may_act(session, user)
        order = session.execute(
            select(Order).where(Order.order_no == order_no, Order.dealer_id == user.dealer_id).with_for_update()
        ).scalar_one_or_none()
        if order is None:
            raise NotFound("订单不存在", "order_not_found")
        if order.status not in CANCELLABLE:
            raise DomainError(
                "order_not_cancellable",
                f"订单当前状态为「{STATUS_LABELS[order.status]}」，不能取消；如需取消请联系业务员",
                409,
            )
        inventory.release(session, order.id)
        if order.credit_held_fen:
            funds.release_credit(session, account, amount_fen=order.credit_held_fen, order_id=order.id, note="订单取消")
            order.credit_held_fen = 0
        previous = order.status
        order.status = "cancelled"
        order.updated_at = utcnow()
        reason = reason or "经销商取消订单"
        _record_event(session, order.id, previous, "cancelled", actor=user, reason=reason)
        notify_events.order_changed(session, order, from_status=previous, to_status="cancelled", actor=user, reason=reason)
    return order


# --- cart ------------------------------------------------------------------------

def get_cart(*, user):
    """The user's cart priced for their dealer, with every problem (as at checkout)."""
    items = db.session.execute(
        select(CartItem.sku_id, CartItem.qty).where(CartItem.user_id == user.id).order_by(CartItem.updated_at)
    ).all()
    lines = [{"sku_id": i.sku_id, "qty": i.qty} for i in items]
    return quote_lines(db.session, Buyer.of(user.dealer), lines)


def set_cart_item(*, user, sku_id, qty):
    """Put `qty` of a SKU in the cart (replacing what was there). 404 if not orderable."""
    with write_transaction() as session:
        buyer = check_may_act(session, user).buyer
        lock_dealer(session, user.dealer_id)  # a double tap queues instead of racing
        if not priced_skus(session, buyer, [sku_id]):
            raise NotFound("商品不存在或不可订购", "sku_not_found")
        cart = CartItem.__table__
        others = session.execute(
            select(func.count()).select_from(cart).where(cart.c.user_id == user.id, cart.c.sku_id != sku_id)
        ).scalar_one()
        if others >= MAX_CART_ITEMS:
            raise DomainError("cart_full", f"购物车最多 {MAX_CART_ITEMS} 种商品", 422)
        now = utcnow()
        upsert = dialect_insert(session, cart).values(user_id=user.id, sku_id=sku_id, qty=qty, updated_at=now)
        session.execute(upsert.on_conflict_do_update(
            index_elements=[cart.c.user_id, cart.c.sku_id], set_={"qty": qty, "updated_at": now},
        ))


def remove_cart_item(*, user, sku_id):
    with write_transaction() as session:
        check_may_act(session, user)
        deleted = session.execute(
            delete(CartItem).where(CartItem.user_id == user.id, CartItem.sku_id == sku_id)
        ).rowcount
        if not deleted:
            raise NotFound("购物车中没有该商品", "cart_item_not_found")


# --- approval (WeCom card, bot, console) ------------------------------------------

APPROVABLE = ("pending_approval",)
APPROVER_ROLES = ("admin", "sales")


def _staff_order_query(staff, order_no):
    """Select the order if this staff member may decide on it.

    A sales rep acts only on dealers assigned to them (an order of another rep's dealer
    answers 404, as if it did not exist); admins act on every dealer.
    """
    from app.dealers.models import Dealer

    if not staff.active or staff.role not in APPROVER_ROLES:
        raise DomainError("forbidden", "你没有审批订单的权限", 403)
    query = select(Order).where(Order.order_no == order_no)
    if staff.role == "sales":
        query = query.join(Dealer, Dealer.id == Order.dealer_id).where(Dealer.rep_id == staff.id)
    return query


def _lock_order_for_staff(session, staff, order_no, *, lock_account=False):
    """The order, locked, or 404. With `lock_account` the dealer's credit account is locked
    first (returned too), in the same order as submit and cancel take them: no deadlock."""
    query = _staff_order_query(staff, order_no)
    account = None
    if lock_account:
        found = session.execute(query.with_only_columns(Order.dealer_id)).scalar_one_or_none()
        if found is not None:
            account = funds.lock_account(session, found)
    order = session.execute(query.with_for_update(of=Order)).scalar_one_or_none()
    if order is None:
        raise NotFound("订单不存在，或不是你负责的经销商的订单", "order_not_found")
    return (order, account) if lock_account else order


def _require_pending(order, action):
    if order.status not in APPROVABLE:
        raise DomainError(
            "order_not_pending",
            f"订单 {order.order_no} 当前状态为「{STATUS_LABELS[order.status]}」，不能{action}",
            409,
            {"status": order.status},
        )


def approve_order(*, staff, order_no, reason=None):
    """Staff approves a pending order: stock stays reserved, credit stays held.

    Returns the order. 404 for an order the staff member may not see, 409
    `order_not_pending` when it was already decided (e.g. a second tap on the card).
    """
    with write_transaction() as session:
        order = _lock_order_for_staff(session, staff, order_no)
        _require_pending(order, "审批通过")
        _transition(session, order, "approved", actor=staff, reason=reason or "审批通过")
    return order


def reject_order(*, staff, order_no, reason):
    """Staff rejects a pending order with a reason: stock and credit are released."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("reason_required", "驳回订单需要填写原因", 422)
    with write_transaction() as session:
        order, account = _lock_order_for_staff(session, staff, order_no, lock_account=True)
        _require_pending(order, "驳回")
        inventory.release(session, order.id)
        if order.credit_held_fen:
            funds.release_credit(session, account, amount_fen=order.credit_held_fen, order_id=order.id, note="订单驳回")
            order.credit_held_fen = 0
        _transition(session, order, "rejected", actor=staff, reason=reason)
    return order


SYSTEM_ACTOR = SimpleNamespace(id=None, name="自动审批")


def _auto_approve(session, order, *, dealer_status, account):
    """Approve a just-placed order, in the transaction that placed it, when the brand's auto-approval
    rules allow it (`app.orders.approval_rules`); otherwise leave it for the rep."""
    setting = approval_rules.read_setting(session)
    if approval_rules.refusal(setting, dealer_status=dealer_status, account=account, order=order):
        return
    now = utcnow()
    orders = Order.__table__
    session.connection().execute(
        update(orders).where(orders.c.id == order.id).values(status="approved", updated_at=now)
    )
    order.status = "approved"
    reason = "符合自动审批规则"
    order.events.append(_record_event(
        session, order.id, "pending_approval", "approved", actor=SYSTEM_ACTOR, reason=reason, at=now,
        actor_type="system",
    ))
    notify_events.order_changed(
        session, order, from_status="pending_approval", to_status="approved", actor=SYSTEM_ACTOR, reason=reason
    )


def _transition(session, order, to_status, *, actor, reason):
    previous = order.status
    order.status = to_status
    order.updated_at = utcnow()
    session.flush()
    actor_type = "staff" if actor.__class__.__name__ == "Staff" else "dealer_user"
    event = _record_event(session, order.id, previous, to_status, actor=actor, reason=reason, actor_type=actor_type)
    notify_events.order_changed(session, order, from_status=previous, to_status=to_status, actor=actor, reason=reason)
    return event
