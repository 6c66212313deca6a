"""Order states: the one table of what may happen to an order, and the one way it happens.

`ACTIONS` says, for every action on an order, the states it may start from, the state it
leads to, who may take it (a kernel permission for staff; the dealer's own users; the
system), what `transition()` releases on the way (stock reservations, the credit hold,
what the order was paid) and what the action's own service charges before it (for the
reader: those writes need the action's data, e.g. the shipped quantities). A new state or
action is a new row here; the services only say which action they take.

`transition()` is the one way an order's status changes: it checks the row, releases what
the row releases, writes the status, the order event (who, when, from, to, why) and, when
staff acted, the audit entry, then publishes the domain event (`order.placed`,
`order.transitioned`) in the caller's transaction. An action the order's state does not
allow raises 409 with the row's Chinese message — or, when the order is already where the
action leads or closed (a second tap, a repeated confirmation), with what happened instead
(`ALREADY`, for the states of the row's `already`): "订单 … 已完成", not what the action needs. `require()` is the same check for a
service that must refuse before it looks any further.
"""
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import insert, update

from app.audit import service as audit
from app.funds import service as funds
from app.inventory import service as inventory
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError
from app.kernel.events import publish
from app.kernel.permissions import PERMISSIONS, can
from app.orders.models import STATUS_LABELS, Order, OrderEvent
from app.orders.payments import give_back_payments

DEALER, STAFF, SYSTEM = "dealer_user", "staff", "system"  # who takes an action (the event's actor_type)

# What `transition()` gives back (in this order) when an action's row names it.
RELEASES = ("stock", "credit_hold", "payments")


@dataclass(frozen=True)
class Action:
    name: str
    from_states: tuple  # None: the order does not exist yet
    to_state: str
    by: str  # DEALER (the dealer's own users, `check_may_act`), STAFF or SYSTEM
    verb: str  # Chinese, as in "不能{verb}"
    refusal: tuple = ()  # (code, message with {no} and {label}, with details {"status"}); default below
    already: tuple = ()  # states in which the refusal says what happened (`ALREADY`), same code
    permissions: tuple = ()  # STAFF: any one of these kernel permissions
    audit_action: str | None = None  # STAFF: the audit entry's action
    releases: tuple = ()  # of RELEASES, done by `transition()`
    release_note: str = ""  # the ledger notes' reason ("订单取消")
    charges: tuple = ()  # written by the action's service before `transition()` (for the reader)


# What happened to an order, said instead of an action's refusal in the states of its `already`.
ALREADY = {
    "approved": "订单 {no} 已审批通过",
    "partially_shipped": "订单 {no} 已部分发货",
    "shipped": "订单 {no} 已全部发货",
    "completed": "订单 {no} 已完成",
    "cancelled": "订单 {no} 已取消",
    "rejected": "订单 {no} 已驳回",
}
CLOSED = ("completed", "cancelled", "rejected")
_DECIDED = ("approved", "partially_shipped", "shipped", *CLOSED)  # past approval, one way or another

_NOT_PENDING = "order_not_pending", "订单 {no} 当前状态为「{label}」，不能{verb}", True
_NOT_SHIPPABLE = "order_not_shippable", "订单 {no} 当前状态为「{label}」，不能发货（审批通过后才能发货）", True

ACTIONS = {a.name: a for a in (
    Action("place", (None,), "pending_approval", DEALER, "下单",
           charges=("stock reserved", "credit held (credit orders)", "rebate and prepaid taken (ledger)")),
    Action("auto_approve", ("pending_approval",), "approved", SYSTEM, "自动审批", refusal=_NOT_PENDING,
           already=_DECIDED),
    # The rep's approval within the credit limit, or an admin's (final in any case).
    Action("approve", ("pending_approval",), "approved", STAFF, "审批通过", refusal=_NOT_PENDING,
           already=_DECIDED, permissions=("orders.approve",), audit_action="order.approve"),
    # A rep approves an order over the dealer's credit limit: it waits for finance (`awaiting_finance`).
    Action("approve_rep", ("pending_approval",), "pending_approval", STAFF, "审批通过", refusal=_NOT_PENDING,
           already=_DECIDED, permissions=("orders.approve",), audit_action="order.approve_rep"),
    # Finance approves what a rep approved over the limit.
    Action("approve_credit", ("pending_approval",), "approved", STAFF, "审批通过", refusal=_NOT_PENDING,
           already=_DECIDED, permissions=("orders.review_credit",), audit_action="order.approve"),
    Action("reject", ("pending_approval",), "rejected", STAFF, "驳回", refusal=_NOT_PENDING,
           already=_DECIDED, permissions=("orders.approve", "orders.review_credit"), audit_action="order.reject",
           releases=RELEASES, release_note="订单驳回"),
    Action("cancel", ("pending_approval",), "cancelled", DEALER, "取消",
           refusal=("order_not_cancellable", "订单当前状态为「{label}」，不能取消；如需取消请联系业务员", False),
           already=CLOSED,
           releases=RELEASES, release_note="订单取消"),
    Action("ship_partial", ("approved", "partially_shipped"), "partially_shipped", STAFF, "发货",
           refusal=_NOT_SHIPPABLE, already=("shipped", *CLOSED), permissions=("orders.ship",),
           audit_action="order.ship",
           charges=("stock deducted", "credit hold turned into receivable (credit orders)")),
    Action("ship_full", ("approved", "partially_shipped"), "shipped", STAFF, "发货",
           refusal=_NOT_SHIPPABLE, already=("shipped", *CLOSED), permissions=("orders.ship",),
           audit_action="order.ship",
           charges=("stock deducted", "credit hold turned into receivable (credit orders)")),
    Action("confirm_receipt", ("shipped",), "completed", DEALER, "确认收货",
           refusal=("order_not_shipped", "订单当前状态为「{label}」，全部发货后才能确认收货", True),
           already=CLOSED),
    Action("auto_complete", ("shipped",), "completed", SYSTEM, "自动确认收货", already=CLOSED),
    # The carrier reported every tracked parcel signed for (`app.tracking.pushes`), when the
    # brand setting `delivery_completes_order` is on.
    Action("carrier_delivered", ("shipped",), "completed", SYSTEM, "签收完成", already=CLOSED),
)}
# Returns do not change an order's status (`app.returns`); payments change `paid_fen` only.

SYSTEM_ACTORS = {
    "auto_approve": SimpleNamespace(id=None, name="自动审批"),
    "auto_complete": SimpleNamespace(id=None, name="系统自动确认收货"),
    "carrier_delivered": SimpleNamespace(id=None, name="快递签收"),
}


def from_states(action):
    """The states `action` may start from (for queries: `Order.status.in_(...)`)."""
    return ACTIONS[action].from_states


def allows(action, status):
    return status in ACTIONS[action].from_states


def refusal(order, action, status=None):
    """The 409 `DomainError` for taking `action` on `order` in `status` (default: its own)."""
    spec = ACTIONS[action]
    status = order.status if status is None else status
    code, message, with_details = spec.refusal or (
        "order_state_conflict", "订单 {no} 当前状态为「{label}」，不能{verb}", True)
    if status in spec.already:
        message = ALREADY[status]
    label = STATUS_LABELS.get(status, "未下单")
    text = message.format(no=order.order_no, label=label, verb=spec.verb)
    return DomainError(code, text, 409, {"status": status} if with_details else None)


def require(order, action):
    """409 unless `order`'s state allows `action` (the check `transition()` makes)."""
    if not allows(action, order.status):
        raise refusal(order, action)


def event_values(order_id, from_status, to_status, *, actor, actor_type, reason=None, at=None):
    """An `order_events` row (who, when, from, to, why)."""
    return {
        "order_id": order_id, "from_status": from_status, "to_status": to_status,
        "actor_type": actor_type, "actor_id": actor.id, "actor_name": actor.name,
        "reason": reason, "created_at": at or utcnow(),
    }


def placed_event(*, actor, reason, at):
    """The first event of an order (without its id), which the submission writes with the order."""
    spec = ACTIONS["place"]
    return event_values(None, None, spec.to_state, actor=actor, actor_type=spec.by, reason=reason, at=at)


def transition(session, order, action, *, actor, reason=None, account=None, audit_after=None, card_tap=None,
               recorded=None):
    """Take `action` on `order` (an `Order` row locked by the caller, or a just-placed
    `PlacedOrder`) in the caller's transaction; returns the event (an `OrderEvent`).

    `account`: the dealer's credit account, locked by the caller before the order, when the
    action releases a credit hold. `audit_after` adds facts to the audit entry. `card_tap`:
    the WeCom card tap that asked for this (opaque here; it travels in `order.transitioned`
    to the rep's notifier, which greys that card out). `recorded`: the event the caller
    already wrote for this step (the submission's one-statement write); it is checked and
    published, not written again. The same state again records another step (a second
    partial shipment, a rep's approval that waits for finance).
    """
    spec = ACTIONS[action]
    if spec.by == STAFF and not any(can(actor, name) for name in spec.permissions):
        raise DomainError("forbidden", f"你的角色无权{PERMISSIONS[spec.permissions[0]][0]}", 403)
    previous = recorded["from_status"] if recorded is not None else order.status
    if previous not in spec.from_states:
        raise refusal(order, action, previous)
    _release(session, order, spec, account=account, actor=actor)
    now = utcnow()
    if recorded is None:
        _write_status(session, order, spec.to_state, now)
        if spec.by == STAFF:
            audit.record(
                session, actor=actor, action=spec.audit_action, entity_type="order", entity_id=order.order_no,
                label=order.order_no, before={"status": previous},
                after={"status": spec.to_state, **(audit_after or {})}, reason=reason,
            )
        values = event_values(order.id, previous, spec.to_state, actor=actor, actor_type=spec.by, reason=reason,
                              at=now)
        session.connection().execute(insert(OrderEvent.__table__), values)
    else:
        values = {**recorded, "order_id": order.id}
    event = OrderEvent(**values)
    if not isinstance(order, Order):
        order.events.append(event)  # a `PlacedOrder` carries its events for the presenters
    if action == "place":
        publish(session, "order.placed", order=order, actor=actor)
    else:
        publish(session, "order.transitioned", order=order, from_status=previous, to_status=spec.to_state,
                actor=actor, reason=reason, card_tap=card_tap)
    return event


def _write_status(session, order, status, now):
    if isinstance(order, Order):
        order.status = status
        order.updated_at = now
        session.flush()
        return
    # A `PlacedOrder` (written by the submission's statements, not the ORM) in its own transaction.
    orders = Order.__table__
    session.connection().execute(update(orders).where(orders.c.id == order.id).values(status=status, updated_at=now))
    order.status = status


def _release(session, order, spec, *, account, actor):
    if "stock" in spec.releases:
        inventory.release(session, order.id)
    if "credit_hold" in spec.releases and order.credit_held_fen:
        funds.release_credit(session, account, amount_fen=order.credit_held_fen, order_id=order.id,
                             note=spec.release_note)
        order.credit_held_fen = 0
    if "payments" in spec.releases:
        give_back_payments(session, order, actor=actor, actor_type=spec.by, why=spec.release_note)
