"""The order state table (`app.orders.states`): every allowed transition works through its
service, every other (action, state) pair is refused with a 409 in Chinese, and one order
change reaches each subscriber of its domain event exactly once.

The cases are generated from `ACTIONS` and `ORDER_STATUSES`, so a new row or state cannot
go untested: an allowed pair without a scenario below fails. Runs on SQLite and, with
TEST_DATABASE_URL, on PostgreSQL; the kernel clock is frozen (`clock`).
"""
import re
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from app.database import write_transaction
from app.extensions import db
from app.funds.models import CreditAccount
from app.kernel import events
from app.kernel.errors import DomainError
from app.notify import dealer_alerts
from bots import rep_alerts
from app.notify.models import DealerMessage, Outbox
from app.orders import approval, closing, states, submission
from app.orders.approval_rules import set_auto_approval
from app.orders.models import ORDER_STATUSES, STATUS_LABELS, Order, OrderEvent, OrderLine, Shipment
from app.orders.shipments import ship_order
from app.staff.models import Staff
from app.tracking import pushes
from app.tracking import subscriptions as tracking_subscriptions
from tests.factories import add
from tests.helpers import new_key, subscribed

CJK = re.compile(r"[\u4e00-\u9fff]")
ORDER_EVENTS = ("order.placed", "order.transitioned")

ALLOWED = sorted(
    ((name, state) for name, action in states.ACTIONS.items() for state in action.from_states),
    key=lambda pair: (pair[0], pair[1] or ""),
)
REFUSED = [(name, state) for name in states.ACTIONS for state in ORDER_STATUSES
           if state not in states.ACTIONS[name].from_states]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ctx(request, clock):
    """The world on SQLite or PostgreSQL, plus an admin, a finance clerk and a warehouse clerk."""
    if request.param == "sqlite":
        app, world = request.getfixturevalue("app"), request.getfixturevalue("world")
    else:
        app, world = request.getfixturevalue("pg_app"), request.getfixturevalue("pg_world")
    return SimpleNamespace(
        app=app, world=world, clock=clock,
        admin=add(Staff(username="boss", name="管理员", role="admin")),
        finance=add(Staff(username="money", name="财务", role="finance")),
        warehouse=add(Staff(username="cang", name="仓管", role="warehouse")),
    )


@pytest.fixture
def published(ctx):
    """(event name, from_status, to_status) of every order event published during the test."""
    calls = []

    def placed(session, *, order, actor):
        calls.append(("order.placed", None, order.status))

    def transitioned(session, *, order, from_status, to_status, actor, reason, card_tap):
        calls.append(("order.transitioned", from_status, to_status))

    with subscribed(ctx.app, "order.placed", placed), subscribed(ctx.app, "order.transitioned", transitioned):
        yield calls


# --- getting an order into a state, through the services ---------------------------------

def place(ctx, qty=3):
    order, _ = submission.submit_order(
        user=ctx.world.a_buyer, lines=[{"sku_id": ctx.world.cola.id, "qty": qty}], idempotency_key=new_key()
    )
    return order.order_no


def row(order_no):
    db.session.expire_all()
    return db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()


def event_rows(order_no):
    db.session.expire_all()
    return db.session.execute(
        select(OrderEvent.from_status, OrderEvent.to_status, OrderEvent.actor_type)
        .join(Order, Order.id == OrderEvent.order_id).where(Order.order_no == order_no).order_by(OrderEvent.id)
    ).all()


def ship(ctx, order_no, qty, tracking):
    line_id = db.session.execute(
        select(OrderLine.id).join(Order, Order.id == OrderLine.order_id).where(Order.order_no == order_no)
    ).scalar_one()
    db.session.rollback()
    ship_order(staff=ctx.warehouse, order_no=order_no, quantities={line_id: qty}, carrier="顺丰速运",
               tracking_no=tracking)


def over_limit(ctx):
    db.session.get(CreditAccount, ctx.world.dealer_a.id).credit_limit_fen = 5_000
    db.session.commit()


def reach(ctx, state):
    """A new order of 3 units in `state`."""
    order_no = place(ctx)
    if state == "cancelled":
        closing.cancel_order(user=ctx.world.a_buyer, order_no=order_no)
    elif state == "rejected":
        approval.reject_order(staff=ctx.world.rep, order_no=order_no, reason="价格有误")
    elif state != "pending_approval":
        approval.approve_order(staff=ctx.world.rep, order_no=order_no)
        if state in ("partially_shipped", "shipped", "completed"):
            ship(ctx, order_no, 1, "SF0000000001")
        if state in ("shipped", "completed"):
            ship(ctx, order_no, 2, "SF0000000002")
        if state == "completed":
            closing.confirm_receipt(user=ctx.world.a_buyer, order_no=order_no)
    assert row(order_no).status == state
    return order_no


# --- each allowed (action, from-state): the service that takes it --------------------------

def _auto_approve(ctx):
    set_auto_approval(enabled=True)
    return place(ctx)


def _approve_rep(ctx):
    order_no = reach(ctx, "pending_approval")
    over_limit(ctx)
    approval.approve_order(staff=ctx.world.rep, order_no=order_no)
    assert row(order_no).awaiting_finance
    return order_no


def _approve_credit(ctx):
    order_no = _approve_rep(ctx)
    approval.approve_order(staff=ctx.finance, order_no=order_no)
    return order_no


def _ship(state, qty):
    def take(ctx):
        order_no = reach(ctx, state)
        ship(ctx, order_no, qty, "JD0000000009")
        return order_no
    return take


def _auto_complete(ctx):
    order_no = reach(ctx, "shipped")
    ctx.clock.advance(days=11)
    assert closing.auto_complete_orders(days=10) == [order_no]
    return order_no


def _carrier_delivered(ctx):
    """Kuaidi100 configured (no HTTP: the subscriptions stay in the outbox), the brand's
    setting on, and a 签收 push for each of the order's two parcels."""
    ctx.app.config.update(KUAIDI100_KEY="k", KUAIDI100_SALT="s", KUAIDI100_CALLBACK_URL="http://localhost/cb")
    pushes.set_delivery_completes_order(enabled=True, actor=ctx.admin)
    order_no = reach(ctx, "shipped")
    numbers = db.session.execute(select(Shipment.tracking_no).join(Order, Order.id == Shipment.order_id)
                                 .where(Order.order_no == order_no).order_by(Shipment.seq)).scalars().all()
    db.session.rollback()
    for number in numbers:
        param = {"status": "shutdown", "message": "", "lastResult": {
            "nu": number, "com": "shunfeng", "state": "3", "ischeck": "1",
            "data": [{"context": "已签收", "time": "2026-11-27 10:00:00", "ftime": "2026-11-27 10:00:00"}]}}
        assert pushes.record_push(param)[0] == "stored"
    return order_no


def _then(state, take):
    def run(ctx):
        order_no = reach(ctx, state)
        take(ctx, order_no)
        return order_no
    return run


SCENARIOS = {
    ("place", None): place,
    ("auto_approve", "pending_approval"): _auto_approve,
    ("approve", "pending_approval"): _then(
        "pending_approval", lambda ctx, no: approval.approve_order(staff=ctx.world.rep, order_no=no)),
    ("approve_rep", "pending_approval"): _approve_rep,
    ("approve_credit", "pending_approval"): _approve_credit,
    ("reject", "pending_approval"): _then(
        "pending_approval", lambda ctx, no: approval.reject_order(staff=ctx.world.rep, order_no=no, reason="缺货")),
    ("cancel", "pending_approval"): _then(
        "pending_approval", lambda ctx, no: closing.cancel_order(user=ctx.world.a_buyer, order_no=no)),
    ("ship_partial", "approved"): _ship("approved", 1),
    ("ship_partial", "partially_shipped"): _ship("partially_shipped", 1),
    ("ship_full", "approved"): _ship("approved", 3),
    ("ship_full", "partially_shipped"): _ship("partially_shipped", 2),
    ("confirm_receipt", "shipped"): _then(
        "shipped", lambda ctx, no: closing.confirm_receipt(user=ctx.world.a_buyer, order_no=no)),
    ("auto_complete", "shipped"): _auto_complete,
    ("carrier_delivered", "shipped"): _carrier_delivered,
}


def test_every_allowed_transition_has_a_scenario():
    assert set(SCENARIOS) == set(ALLOWED)


@pytest.mark.parametrize(("action", "from_state"), ALLOWED, ids=[f"{a}-from-{s}" for a, s in ALLOWED])
def test_an_allowed_transition_works(ctx, published, action, from_state):
    spec = states.ACTIONS[action]
    order_no = SCENARIOS[(action, from_state)](ctx)
    assert row(order_no).status == spec.to_state
    assert event_rows(order_no)[-1] == (from_state, spec.to_state, spec.by)
    name = "order.placed" if action == "place" else "order.transitioned"
    assert published[-1] == (name, from_state, spec.to_state)


def _actor(ctx, spec):
    if spec.by == states.DEALER:
        return ctx.world.a_buyer
    if spec.by == states.SYSTEM:
        return states.SYSTEM_ACTORS.get(spec.name, SimpleNamespace(id=None, name="系统"))
    return {"orders.approve": ctx.world.rep, "orders.review_credit": ctx.finance,
            "orders.ship": ctx.warehouse}[spec.permissions[0]]


@pytest.mark.parametrize(("action", "state"), REFUSED, ids=[f"{a}-from-{s}" for a, s in REFUSED])
def test_every_other_action_and_state_is_a_409_in_chinese(ctx, action, state):
    spec = states.ACTIONS[action]
    order_no = reach(ctx, state)
    before = event_rows(order_no)
    db.session.rollback()
    calls = []

    def record(session, **payload):
        calls.append(payload)

    with subscribed(ctx.app, "order.placed", record), subscribed(ctx.app, "order.transitioned", record):
        with pytest.raises(DomainError) as exc, write_transaction() as session:
            order = session.execute(
                select(Order).where(Order.order_no == order_no).with_for_update()
                .execution_options(populate_existing=True)
            ).scalar_one()
            states.transition(session, order, action, actor=_actor(ctx, spec), reason="测试")
    assert exc.value.status == 409
    assert CJK.search(exc.value.message), exc.value.message
    assert exc.value.code == (spec.refusal[0] if spec.refusal else "order_state_conflict")
    if state in spec.already:
        # Already where the action leads, or closed: the message says what happened.
        assert exc.value.message == states.ALREADY[state].format(no=order_no)
    else:
        assert STATUS_LABELS[state] in exc.value.message
    assert calls == []
    assert row(order_no).status == state and event_rows(order_no) == before


def test_a_refusal_keeps_the_services_messages(ctx):
    shipped = reach(ctx, "approved")  # approved, then shipped and received below
    with pytest.raises(DomainError) as exc:
        closing.cancel_order(user=ctx.world.a_buyer, order_no=shipped)
    assert (exc.value.code, exc.value.message, exc.value.details) == (
        "order_not_cancellable", "订单当前状态为「已审批」，不能取消；如需取消请联系业务员", {})
    with pytest.raises(DomainError) as exc:
        approval.approve_order(staff=ctx.world.rep, order_no=shipped)
    assert (exc.value.code, exc.value.message, exc.value.details) == (
        "order_not_pending", f"订单 {shipped} 已审批通过", {"status": "approved"})
    ship(ctx, shipped, 3, "SF0000000009")
    closing.confirm_receipt(user=ctx.world.a_buyer, order_no=shipped)
    with pytest.raises(DomainError) as exc:
        closing.confirm_receipt(user=ctx.world.a_buyer, order_no=shipped)  # a second tap
    assert (exc.value.code, exc.value.message, exc.value.details) == (
        "order_not_shipped", f"订单 {shipped} 已完成", {"status": "completed"})


@pytest.mark.parametrize(("state", "action", "message"), [
    ("completed", "confirm_receipt", "已完成"),
    ("cancelled", "cancel", "已取消"),
    ("rejected", "cancel", "已驳回"),
    ("shipped", "ship_full", "已全部发货"),
    ("rejected", "approve", "已驳回"),
    ("cancelled", "reject", "已取消"),
])
def test_a_repeated_or_late_action_says_what_already_happened(ctx, state, action, message):
    order_no = reach(ctx, state)
    with pytest.raises(DomainError) as exc:
        states.require(row(order_no), action)
    assert exc.value.status == 409 and exc.value.message == f"订单 {order_no} {message}"


# --- one change, each subscriber once ---------------------------------------------------------

def test_create_app_wires_the_order_notifiers_as_subscribers(ctx):
    assert events.subscribers("order.placed", ctx.app) == (rep_alerts.order_placed,)
    assert events.subscribers("order.transitioned", ctx.app) == (dealer_alerts.order_changed, rep_alerts.order_changed)
    assert events.subscribers("shipment.sent", ctx.app) == (dealer_alerts.shipment_sent, rep_alerts.shipment_sent,
                                                           tracking_subscriptions.shipment_sent)


@pytest.fixture
def spied(ctx):
    """The real subscribers of the order events, each wrapped to count its calls (in order)."""
    calls = []
    names = (*ORDER_EVENTS, "shipment.sent")
    real = {name: events.subscribers(name, ctx.app) for name in names}

    def spy_for(name, handler):
        def spy(session, **payload):
            calls.append((name, handler))
            handler(session, **payload)
        return spy

    spies = {name: [spy_for(name, handler) for handler in handlers] for name, handlers in real.items()}
    for name in names:
        for handler in real[name]:
            events.unsubscribe(ctx.app, name, handler)
        for spy in spies[name]:
            events.subscribe(ctx.app, name, spy)
    yield calls
    for name in names:
        for spy in spies[name]:
            events.unsubscribe(ctx.app, name, spy)
        for handler in real[name]:
            events.subscribe(ctx.app, name, handler)


def outbox_rows(event):
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(Outbox).where(Outbox.event == event)).scalar_one()


def test_one_order_change_reaches_each_subscriber_exactly_once(ctx, spied):
    order_no = place(ctx)
    assert spied == [("order.placed", rep_alerts.order_placed)]
    assert outbox_rows("order_pending_approval") == 1  # the rep's approval card

    spied.clear()
    approval.approve_order(staff=ctx.admin, order_no=order_no)  # not the rep: the rep is told too
    assert spied == [("order.transitioned", dealer_alerts.order_changed),
                     ("order.transitioned", rep_alerts.order_changed)]
    assert outbox_rows("order_approved") == 1  # the rep's text (the dealer has no consent left)
    messages = db.session.execute(
        select(func.count()).select_from(DealerMessage).where(DealerMessage.event == "order_approved")
    ).scalar_one()
    assert messages == 1

    spied.clear()
    ship(ctx, order_no, 3, "SF1234567890")
    assert spied == [("order.transitioned", dealer_alerts.order_changed),
                     ("order.transitioned", rep_alerts.order_changed),
                     ("shipment.sent", dealer_alerts.shipment_sent),
                     ("shipment.sent", rep_alerts.shipment_sent),
                     ("shipment.sent", tracking_subscriptions.shipment_sent)]
    assert outbox_rows("order_shipped") == 1  # the rep's text, once
