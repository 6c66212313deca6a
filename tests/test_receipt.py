"""The dealer sees shipments in the mini-program and confirms receipt; orders shipped long
ago complete by themselves (a daily job and a CLI command)."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from app import jobs
from app.extensions import db
from app.kernel.clock import utcnow
from app.orders import approval as orders
from app.orders import closing
from app.orders.models import Order, OrderEvent
from app.orders.shipments import ship_order
from tests.factories import auth
from tests.helpers import MP, submit


def shipped_order(client, world, staff, user=None, qty=4, partial=False):
    r = submit(client, auth(user or world.a_buyer), [{"sku_id": world.cola.id, "qty": qty}])
    order_no = r.get_json()["order_no"]
    orders.approve_order(staff=world.rep, order_no=order_no)
    line_id = order_row(order_no).lines[0].id
    ship_order(staff=staff["warehouse"], order_no=order_no, quantities={line_id: 1}, carrier="顺丰速运",
               tracking_no="SF1000000001")
    if not partial:
        ship_order(staff=staff["warehouse"], order_no=order_no, quantities={line_id: qty - 1}, carrier="京东物流",
                   tracking_no="JD2000000002")
    return order_no


def order_row(order_no):
    db.session.expire_all()
    return db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()


def confirm(client, user, order_no):
    return client.post(f"{MP}/orders/{order_no}/confirm-receipt", headers=auth(user))


def test_order_detail_lists_shipments_with_carrier_tracking_lines_and_time(client, world, staff):
    order_no = shipped_order(client, world, staff)
    body = client.get(f"{MP}/orders/{order_no}", headers=auth(world.a_buyer)).get_json()
    assert body["status"] == "shipped" and body["lines"][0]["shipped_qty"] == 4
    assert [(s["seq"], s["carrier"], s["tracking_no"]) for s in body["shipments"]] == [
        (1, "顺丰速运", "SF1000000001"), (2, "京东物流", "JD2000000002")]
    assert body["shipments"][1]["lines"] == [
        {"sku_id": world.cola.id, "sku_code": "SKU-COLA", "name": "商品SKU-COLA", "unit": "箱", "qty": 3}]
    assert body["shipments"][0]["shipped_at"].endswith("+00:00")


def test_a_new_order_has_no_shipments(client, world):
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}])
    assert r.get_json()["shipments"] == [] and r.get_json()["lines"][0]["shipped_qty"] == 0


@pytest.mark.parametrize("who", ["a_owner", "a_buyer"])
def test_owner_or_buyer_confirms_receipt_once(client, world, staff, who):
    order_no = shipped_order(client, world, staff)
    r = confirm(client, getattr(world, who), order_no)
    assert r.status_code == 200 and r.get_json()["status"] == "completed"
    assert r.get_json()["events"][-1]["reason"] == "经销商确认收货"
    assert len(r.get_json()["shipments"]) == 2
    again = confirm(client, getattr(world, who), order_no)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "order_not_shipped"
    assert db.session.execute(select(OrderEvent).where(OrderEvent.to_status == "completed")).scalars().all().__len__() == 1


def test_a_viewer_may_not_confirm(client, world, staff):
    order_no = shipped_order(client, world, staff)
    assert confirm(client, world.a_viewer, order_no).status_code == 403
    assert order_row(order_no).status == "shipped"


def test_another_dealers_order_answers_404_and_stays_shipped(client, world, staff):
    theirs = shipped_order(client, world, staff, user=world.b_owner)
    r = confirm(client, world.a_buyer, theirs)
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "order_not_found"
    assert order_row(theirs).status == "shipped"
    assert client.get(f"{MP}/orders/{theirs}", headers=auth(world.a_buyer)).status_code == 404


def test_only_a_fully_shipped_order_can_be_confirmed(client, world, staff):
    partly = shipped_order(client, world, staff, partial=True)
    r = confirm(client, world.a_buyer, partly)
    assert r.status_code == 409 and "部分发货" in r.get_json()["error"]["message"]
    assert order_row(partly).status == "partially_shipped"


# --- auto-complete ---------------------------------------------------------------------------

def age(order_no, days):
    order = order_row(order_no)
    order.shipped_at = utcnow() - timedelta(days=days)
    db.session.commit()


def test_orders_shipped_more_than_n_days_ago_complete_once(client, world, staff, app):
    old, recent = shipped_order(client, world, staff), shipped_order(client, world, staff)
    partly = shipped_order(client, world, staff, partial=True)
    age(old, 11)
    age(recent, 9)
    assert app.config["ORDER_AUTO_COMPLETE_DAYS"] == 10
    assert closing.auto_complete_orders() == [old]
    assert closing.auto_complete_orders() == []  # idempotent
    assert (order_row(old).status, order_row(recent).status, order_row(partly).status) == (
        "completed", "shipped", "partially_shipped")
    event = db.session.execute(select(OrderEvent).order_by(OrderEvent.id.desc()).limit(1)).scalar_one()
    assert (event.actor_type, event.actor_name, event.reason) == ("system", "系统自动确认收货", "发货满 10 天，系统自动确认收货")


def test_auto_complete_is_a_daily_job_and_a_command(runner, client, world, staff):
    assert jobs.PERIODIC_JOBS["auto-complete-orders"][0] == "app.orders.closing.auto_complete_orders"
    order_no = shipped_order(client, world, staff)
    age(order_no, 3)
    out = runner.invoke(args=["orders", "auto-complete"])
    assert out.exit_code == 0 and "没有需要自动确认收货的订单" in out.output
    out = runner.invoke(args=["orders", "auto-complete", "--days", "2"])
    assert out.exit_code == 0 and f"已自动确认收货 1 笔：{order_no}" in out.output
    assert order_row(order_no).status == "completed"
