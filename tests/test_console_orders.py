"""Console order pages: the list with filters, one order's page, approving from it and
shipping from it — each action checked by role, CSRF and rep scoping."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.inventory.models import Stock
from app.kernel.clock import business_today
from app.kernel.money import format_yuan
from app.orders import approval as orders
from app.orders.models import Order, Shipment
from tests.factories import auth
from tests.helpers import HTML, csrf, submit
from tests.helpers import console_login as login


def place(client, world, user=None, qty=2, sku=None):
    r = submit(client, auth(user or world.a_buyer), [{"sku_id": (sku or world.cola).id, "qty": qty}])
    assert r.status_code == 201, r.get_json()
    return r.get_json()["order_no"]


def page(client, path, **query):
    return client.get(path, query_string=query, headers=HTML)


def text(response):
    return response.get_data(as_text=True)


def order_row(order_no):
    db.session.expire_all()
    return db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()


def line_ids(order_no):
    return {line.sku_id: line.id for line in order_row(order_no).lines}


# --- the list -------------------------------------------------------------------------------

@pytest.mark.parametrize("username", ["boss", "money", "cang", "rep1"])
def test_order_list_is_open_to_admin_finance_warehouse_and_reps(client, world, staff, username):
    order_no = place(client, world)
    login(client, username)
    r = page(client, "/console/orders")
    assert r.status_code == 200 and order_no in text(r) and "订单（1）" in text(r)
    assert format_yuan(order_row(order_no).total_fen) in text(r)


def test_marketing_may_not_open_orders(client, world, staff):
    order_no = place(client, world)
    login(client, "shi")
    assert page(client, "/console/orders").status_code == 403
    assert page(client, f"/console/orders/{order_no}").status_code == 403


def test_a_rep_sees_only_their_own_dealers_orders(client, world, staff):
    order_no = place(client, world)
    login(client, "rep2")
    assert "订单（0）" in text(page(client, "/console/orders"))
    r = page(client, f"/console/orders/{order_no}")
    assert r.status_code == 404 and order_no not in text(r)


def test_list_filters(client, world, staff):
    mine = place(client, world)
    theirs = place(client, world, user=world.b_owner)
    orders.approve_order(staff=world.rep, order_no=theirs)
    login(client, "boss")

    def shown(**query):
        body = text(page(client, "/console/orders", **query))
        return {no for no in (mine, theirs) if no in body}

    assert shown() == {mine, theirs}
    assert shown(status="approved") == {theirs}
    assert shown(status="pending_approval") == {mine}
    assert shown(q="鑫达") == {mine} and shown(q="db01") == {theirs}
    assert shown(order_no=theirs[-4:]) == {theirs}
    today = business_today()
    assert shown(**{"from": today.isoformat(), "to": today.isoformat()}) == {mine, theirs}
    assert shown(to=(today - timedelta(days=1)).isoformat()) == set()
    assert shown(q="%") == set()


def test_pages_follow_the_neighbouring_order_and_a_big_count_is_capped(client, world, staff, monkeypatch):
    from app.orders import staff_views

    placed = [place(client, world, qty=1) for _ in range(5)]  # oldest first
    monkeypatch.setattr(staff_views, "ORDER_LIST_PAGE_SIZE", 2)
    monkeypatch.setattr(staff_views, "ORDER_COUNT_CAP", 4)
    login(client, "boss")

    def visit(url):
        body = text(client.get(url, headers=HTML))
        links = dict(re.findall(r'<a href="([^"]+)">(上一页|下一页)</a>', body))
        return ([no for no in reversed(placed) if no in body], {label: href.replace("&amp;", "&") for href, label in links.items()},
                body)

    first, links, body = visit("/console/orders")
    assert first == placed[:-3:-1] and "订单（4+）" in body and "第 1 页" in body and "上一页" not in links
    assert "before=" in links["下一页"]
    second, links, _ = visit(links["下一页"])
    assert second == placed[-3:-5:-1]
    third, links, _ = visit(links["下一页"])
    assert third == placed[:1] and "下一页" not in links and "after=" in links["上一页"]
    back, links, _ = visit(links["上一页"])
    assert back == second and links["上一页"] == "/console/orders"
    assert visit(links["上一页"])[0] == first
    # An order placed while someone pages does not shift the pages already reached.
    newest = place(client, world, qty=1)
    again, _, _ = visit(f"/console/orders?page=2&before={order_row(first[-1]).id}")
    assert again == second and newest not in again
    r = page(client, "/console/orders", before="x")
    assert r.status_code == 400 and "翻页参数有误" in text(r)


@pytest.mark.parametrize("query", [{"page": "0"}, {"page": "x"}, {"status": "lost"}, {"from": "2026-13-01"}])
def test_bad_list_filters_answer_400_in_chinese(client, world, staff, query):
    login(client, "boss")
    r = page(client, "/console/orders", **query)
    assert r.status_code == 400 and re.search(r"[\u4e00-\u9fff]", text(r))


# --- one order --------------------------------------------------------------------------------

def test_order_page_shows_dealer_lines_totals_and_timeline_in_china_time(client, world, staff):
    order_no = place(client, world, qty=3)
    orders.approve_order(staff=world.rep, order_no=order_no)
    order = order_row(order_no)
    login(client, "cang")
    body = text(page(client, f"/console/orders/{order_no}"))
    assert "广州鑫达商贸有限公司（DA01）" in body and "张三 13800000001" in body
    assert format_yuan(order.total_fen) in body and "3 箱" in body
    assert "经销商提交订单" in body and "王业务" in body and "审批通过" in body
    cst = order.events[0].created_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    assert cst.strftime("%Y-%m-%d %H:%M:%S") in body
    assert "登记发货" in body and "华南仓 3" in body  # the clerk may ship; stock reserved there
    assert "审批通过</button>" not in body


def test_actions_shown_follow_the_role(client, world, staff):
    order_no = place(client, world)
    login(client, world.rep.username)
    body = text(page(client, f"/console/orders/{order_no}"))
    assert "审批通过</button>" in body and "驳回</button>" in body and "登记发货" not in body
    login(client, "money")
    body = text(page(client, f"/console/orders/{order_no}"))
    assert "审批通过</button>" not in body and "登记发货" not in body


def test_approve_from_the_order_page_returns_to_it(client, world, staff):
    order_no = place(client, world)
    login(client, world.rep.username)
    token = csrf(client, f"/console/orders/{order_no}")
    r = client.post(f"/console/orders/{order_no}/approve", data={"csrf_token": token, "back": "detail"}, headers=HTML)
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/console/orders/{order_no}")
    assert order_row(order_no).status == "approved"


# --- shipping from the page --------------------------------------------------------------------

def ship_form(client, order_no, quantities, **fields):
    data = {"csrf_token": csrf(client, f"/console/orders/{order_no}"), "carrier": "顺丰速运",
            "tracking_no": "SF1234567890", **{f"qty_{k}": str(v) for k, v in quantities.items()}, **fields}
    return client.post(f"/console/orders/{order_no}/ship", data=data, headers=HTML, follow_redirects=True)


def stock_figures():
    db.session.expire_all()
    return db.session.execute(select(Stock.sku_id, Stock.warehouse_id, Stock.on_hand, Stock.reserved)
                              .order_by(Stock.sku_id, Stock.warehouse_id)).all()


def test_warehouse_clerk_ships_partially_then_fully(client, world, staff):
    order_no = place(client, world, qty=5)
    orders.approve_order(staff=world.rep, order_no=order_no)
    line = line_ids(order_no)[world.cola.id]
    login(client, "cang")
    body = text(ship_form(client, order_no, {line: 2}))
    assert "第 1 次发货已登记" in body and "部分发货" in body and "SF1234567890" in body
    body = text(ship_form(client, order_no, {line: 3}, tracking_no="SF1234567891", carrier="京东物流"))
    assert order_row(order_no).status == "shipped" and "已发货" in body and "京东物流" in body
    assert "登记发货" not in body  # nothing left to ship


def test_over_shipping_from_the_page_is_refused_with_nothing_changed(client, world, staff):
    order_no = place(client, world, qty=5)
    orders.approve_order(staff=world.rep, order_no=order_no)
    before = stock_figures()
    login(client, "cang")
    r = ship_form(client, order_no, {line_ids(order_no)[world.cola.id]: 6})
    assert r.status_code in (409, 422) and "超过待发的 5" in text(r) and "登记发货" in text(r)
    assert order_row(order_no).status == "approved" and stock_figures() == before
    r = ship_form(client, order_no, {line_ids(order_no)[world.cola.id]: "两"})
    assert r.status_code == 400 and "非负整数" in text(r) and stock_figures() == before


@pytest.mark.parametrize("username", ["rep1", "money", "shi"])
def test_other_roles_get_403_when_posting_a_shipment(client, world, staff, username):
    order_no = place(client, world)
    orders.approve_order(staff=world.rep, order_no=order_no)
    login(client, username)
    token = csrf(client, "/console/" if username == "shi" else "/console/orders")
    r = client.post(f"/console/orders/{order_no}/ship", headers=HTML,
                    data={"csrf_token": token, f"qty_{line_ids(order_no)[world.cola.id]}": "2",
                          "carrier": "顺丰速运", "tracking_no": "SF1234567890"})
    assert r.status_code == 403
    assert order_row(order_no).status == "approved"


def test_a_shipment_without_the_csrf_token_is_refused(client, world, staff):
    order_no = place(client, world)
    orders.approve_order(staff=world.rep, order_no=order_no)
    before = stock_figures()
    login(client, "cang")
    r = client.post(f"/console/orders/{order_no}/ship", headers=HTML,
                    data={f"qty_{line_ids(order_no)[world.cola.id]}": "2", "carrier": "顺丰速运",
                          "tracking_no": "SF1234567890"})
    assert r.status_code == 400 and "CSRF" in text(r)
    assert order_row(order_no).status == "approved" and stock_figures() == before
    assert db.session.execute(select(func.count()).select_from(Shipment)).scalar_one() == 0


def test_shipping_an_unknown_order_is_404(client, world, staff):
    login(client, "cang")
    token = csrf(client, "/console/orders")
    r = client.post("/console/orders/SO209901010001/ship", headers=HTML,
                    data={"csrf_token": token, "qty_1": "1", "carrier": "顺丰速运", "tracking_no": "SF1234567890"})
    assert r.status_code == 404
