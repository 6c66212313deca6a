"""Approve and reject are order-service transitions used by the WeCom card, the bot and the console."""
import pytest

from app.extensions import db
from app.kernel.errors import DomainError, NotFound
from app.orders import approval as orders
from app.orders.models import Order, OrderEvent
from app.staff.models import Staff
from tests.factories import add, auth
from tests.helpers import available, credit, submit


def place(client, world, qty=2):
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": qty}])
    assert r.status_code == 201, r.json
    return r.json["order_no"]


def events(order_no):
    order = db.session.query(Order).filter_by(order_no=order_no).one()
    return [(e.from_status, e.to_status, e.actor_type, e.actor_name, e.reason)
            for e in db.session.query(OrderEvent).filter_by(order_id=order.id).order_by(OrderEvent.id)]


def test_rep_approves_own_dealers_order_and_holds_stay(client, world):
    before_stock = available(world.cola)
    order_no = place(client, world)
    held = credit(world.dealer_a)["held"]
    order = orders.approve_order(staff=world.rep, order_no=order_no)
    assert order.status == "approved"
    assert available(world.cola) == before_stock - 2
    assert credit(world.dealer_a)["held"] == held
    assert events(order_no)[-1] == ("pending_approval", "approved", "staff", "王业务", "审批通过")


def test_second_decision_is_a_conflict(client, world):
    order_no = place(client, world)
    orders.approve_order(staff=world.rep, order_no=order_no)
    with pytest.raises(DomainError) as exc:
        orders.reject_order(staff=world.rep, order_no=order_no, reason="重复点击")
    assert exc.value.status == 409 and exc.value.code == "order_not_pending"
    assert "已审批" in exc.value.message


def test_reject_releases_stock_and_credit_and_needs_a_reason(client, world):
    before_stock = available(world.cola)
    order_no = place(client, world)
    with pytest.raises(DomainError) as exc:
        orders.reject_order(staff=world.rep, order_no=order_no, reason="  ")
    assert exc.value.code == "reason_required"
    order = orders.reject_order(staff=world.rep, order_no=order_no, reason="价格有误，请重新下单")
    assert order.status == "rejected" and order.credit_held_fen == 0
    assert available(world.cola) == before_stock
    assert credit(world.dealer_a)["held"] == 0
    assert events(order_no)[-1][1:] == ("rejected", "staff", "王业务", "价格有误，请重新下单")


def test_rep_cannot_decide_on_another_reps_dealer(client, world):
    order_no = place(client, world)
    other = add(Staff(username="rep2", name="李业务", role="sales", wecom_userid="LiYeWu"))
    with pytest.raises(NotFound):
        orders.approve_order(staff=other, order_no=order_no)
    admin = add(Staff(username="boss", name="管理员", role="admin"))
    assert orders.approve_order(staff=admin, order_no=order_no).status == "approved"


@pytest.mark.parametrize("role", ["warehouse", "marketing"])
def test_other_roles_cannot_approve(client, world, role):
    order_no = place(client, world)
    staff = add(Staff(username=f"u-{role}", name="职员", role=role))
    with pytest.raises(DomainError) as exc:
        orders.approve_order(staff=staff, order_no=order_no)
    assert exc.value.status == 403


def test_finance_cannot_approve_an_order_the_rep_has_not(client, world):
    # Finance only co-approves orders a rep approved over the credit limit (test_finance_approval.py).
    order_no = place(client, world)
    staff = add(Staff(username="u-finance", name="职员", role="finance"))
    with pytest.raises(DomainError) as exc:
        orders.approve_order(staff=staff, order_no=order_no)
    assert exc.value.status == 409 and exc.value.code == "not_awaiting_finance"
    assert db.session.get(Order, db.session.query(Order.id).filter_by(order_no=order_no).scalar()).status == "pending_approval"


def test_inactive_rep_cannot_approve(client, world):
    order_no = place(client, world)
    world.rep.active = False
    db.session.commit()
    with pytest.raises(DomainError) as exc:
        orders.approve_order(staff=world.rep, order_no=order_no)
    assert exc.value.status == 403
