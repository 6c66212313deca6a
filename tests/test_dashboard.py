"""The console dashboard's figures: exact numbers for a known world of orders, role scoping,
China-time day and month edges, on SQLite and PostgreSQL; the page and its JSON endpoints."""
from datetime import date, datetime, timezone
from types import SimpleNamespace

import pytest

from app.dealers.models import Dealer
from app.extensions import db
from app.funds.models import CreditAccount
from app.orders.models import Order, OrderLine
from app.kernel.clock import BUSINESS_TZ
from app.reports import service as reports
from app.staff.service import create_staff, set_password
from tests import factories
from tests.factories import add, make_user
from tests.helpers import HTML, PASSWORD, console_login

TODAY = date(2026, 11, 30)  # the last day of a month
API = "/console/api/dashboard"


def cst(y, m, d, hh=12, mm=0):
    """A moment in China time, as the UTC datetime the database stores."""
    return datetime(y, m, d, hh, mm, tzinfo=BUSINESS_TZ).astimezone(timezone.utc)


def place(dealer, user, status, at, lines, *, no):
    """An order row as the order service leaves it; `lines` is [(sku, qty, unit_price_fen)]."""
    total = sum(qty * price for _, qty, price in lines)
    order = add(Order(
        order_no=f"SO{no:012d}", dealer_id=dealer.id, placed_by_id=user.id, status=status, payment_method="credit",
        subtotal_fen=total, total_fen=total, ship_contact="张三", ship_phone="13800000001",
        ship_region_code=dealer.region_code, ship_address="测试路1号", created_at=at, updated_at=at,
    ))
    for sku, qty, price in lines:
        add(OrderLine(order_id=order.id, sku_id=sku.id, sku_code=sku.code, name=sku.name, spec=sku.spec, unit=sku.unit,
                      qty=qty, list_price_fen=price, unit_price_fen=price, amount_fen=qty * price, price_source="list"))
    return order


def build_orders(w):
    """The world's dealers A (gold, 广州) and B (silver, 上海) belong to rep1; C (gold, 深圳) to rep2;
    D (no rep) never ordered; E (rep1) last ordered in mid-October; F is suspended."""
    s = SimpleNamespace(w=w)
    set_password(w.rep, PASSWORD)
    s.rep = w.rep
    s.admin = create_staff(username="dash-admin", name="管理员", role="admin", password=PASSWORD)
    s.finance = create_staff(username="dash-money", name="财务", role="finance", password=PASSWORD)
    s.rep2 = create_staff(username="dash-rep2", name="李业务", role="sales", password=PASSWORD)
    s.warehouse = create_staff(username="dash-cang", name="仓管", role="warehouse", password=PASSWORD)
    s.marketing = create_staff(username="dash-shi", name="市场", role="marketing", password=PASSWORD)
    old = cst(2026, 10, 1)
    s.c = add(Dealer(code="DC01", name="深圳粤海贸易", tier_id=w.gold.id, region_code="440300", rep_id=s.rep2.id, created_at=old))
    s.d = add(Dealer(code="DD01", name="上海新开户", tier_id=w.silver.id, region_code="310100", created_at=cst(2026, 10, 21)))
    s.e = add(Dealer(code="DE01", name="广州久未下单", tier_id=w.silver.id, region_code="440100", rep_id=w.rep.id, created_at=old))
    s.f = add(Dealer(code="DF01", name="已暂停经销商", tier_id=w.silver.id, region_code="440100", status="suspended", created_at=old))
    for dealer in (s.c, s.d, s.e, s.f):
        add(CreditAccount(dealer_id=dealer.id, credit_limit_fen=10_000_000))
    c_user, e_user = make_user(s.c), make_user(s.e)
    a, b = w.a_owner, w.b_owner
    place(w.dealer_a, a, "approved", cst(2026, 11, 30, 10), [(w.cola, 2, 4000), (w.soy, 1, 2000)], no=1)
    place(w.dealer_a, a, "pending_approval", cst(2026, 11, 30, 23, 30), [(w.tea, 5, 1000)], no=2)
    place(w.dealer_b, b, "shipped", cst(2026, 11, 29, 23, 30), [(w.cola, 5, 4000)], no=3)
    place(w.dealer_b, b, "cancelled", cst(2026, 11, 30, 9), [(w.gift, 1, 99900)], no=4)
    place(s.c, c_user, "rejected", cst(2026, 11, 15), [(w.gift, 2, 19900)], no=5)
    # 00:10 on the 1st in China is still October in UTC: it counts for November.
    place(s.c, c_user, "partially_shipped", cst(2026, 11, 1, 0, 10), [(w.soy, 10, 3000)], no=6)
    # 23:30 on the last day of October in China: October, not November.
    place(s.c, c_user, "completed", cst(2026, 10, 31, 23, 30), [(w.vinegar, 7, 1000)], no=7)
    # 00:30 on 1 December in China is still 30 November in UTC: December, not November.
    place(w.dealer_a, a, "approved", cst(2026, 12, 1, 0, 30), [(w.vinegar, 3, 1000)], no=8)
    place(s.e, e_user, "completed", cst(2026, 10, 15), [(w.cola, 1, 4000)], no=9)
    db.session.commit()
    return s


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def dash(request):
    """The world of orders on SQLite and on PostgreSQL: the same figures must come out of both."""
    if request.param == "sqlite":
        request.getfixturevalue("app")
        w = factories.build_world()
    else:
        request.getfixturevalue("pg_app")
        w = factories.build_world()
    return build_orders(w)


def figures(report, *fields):
    return [tuple(item[f] for f in ("label", *fields)) for item in report["items"]]


# --- the figures, exactly ---------------------------------------------------------------

def test_summary_counts_china_days_and_months_and_leaves_out_cancelled_and_rejected(dash):
    s = reports.get_summary(staff=dash.admin, today=TODAY)
    assert s["today"] == {"date": "2026-11-30", "order_count": 2, "amount_fen": 15000}
    assert s["month"] == {"from": "2026-11-01", "to": "2026-11-30", "order_count": 4, "amount_fen": 65000}
    assert (s["pending_approval"], s["awaiting_finance"], s["awaiting_shipment"], s["partially_shipped"]) == (1, 0, 3, 1)


def test_orders_a_rep_approved_over_credit_wait_for_finance(dash):
    order = db.session.execute(db.select(Order).where(Order.status == "pending_approval")).scalar_one()
    order.rep_approved_by_id, order.rep_approved_at = dash.rep.id, cst(2026, 11, 30, 23, 40)
    db.session.commit()
    s = reports.get_summary(staff=dash.finance, today=TODAY)
    assert (s["pending_approval"], s["awaiting_finance"], s["awaiting_shipment"]) == (1, 1, 3)


def test_an_order_at_half_past_midnight_on_the_first_counts_for_the_new_month(dash):
    s = reports.get_summary(staff=dash.admin, today=date(2026, 12, 1))
    assert s["today"] == {"date": "2026-12-01", "order_count": 1, "amount_fen": 3000}
    assert s["month"]["order_count"] == 1 and s["month"]["amount_fen"] == 3000
    october = reports.get_summary(staff=dash.admin, today=date(2026, 10, 31))
    assert october["today"]["order_count"] == 1 and october["today"]["amount_fen"] == 7000
    assert october["month"]["order_count"] == 2 and october["month"]["amount_fen"] == 11000


def test_sales_by_province_and_tier(dash):
    region = reports.sales_by_region(staff=dash.finance, period="month", today=TODAY)
    assert region["from"] == "2026-11-01" and region["to"] == "2026-11-30" and region["metric"] == "amount_fen"
    assert figures(region, "order_count", "amount_fen") == [("广东省", 3, 45000), ("上海市", 1, 20000)]
    assert [i["key"] for i in region["items"]] == ["440000", "310000"]
    today = reports.sales_by_region(staff=dash.finance, period="today", today=TODAY)
    assert figures(today, "order_count", "amount_fen") == [("广东省", 2, 15000)]
    tier = reports.sales_by_tier(staff=dash.admin, period="month", today=TODAY)
    assert figures(tier, "order_count", "amount_fen") == [("金牌", 3, 45000), ("银牌", 1, 20000)]


def test_top_dealers_and_skus_of_the_month(dash):
    top = reports.top_dealers(staff=dash.admin, period="month", today=TODAY)
    assert figures(top, "order_count", "amount_fen") == [
        ("深圳粤海贸易", 1, 30000), ("上海沪联食品有限公司", 1, 20000), ("广州鑫达商贸有限公司", 2, 15000)]
    skus = reports.top_skus(staff=dash.admin, period="month", today=TODAY)
    assert [(i["key"], i["order_count"], i["qty"], i["amount_fen"]) for i in skus["items"]] == [
        ("SKU-SOY", 2, 11, 32000), ("SKU-COLA", 2, 7, 28000), ("SKU-TEA", 1, 5, 5000)]


def test_top_lists_stop_at_ten(dash):
    w = dash.w
    for n in range(12):
        dealer = add(Dealer(code=f"DX{n:02d}", name=f"经销商{n:02d}", tier_id=w.gold.id, region_code="440100"))
        place(dealer, make_user(dealer), "approved", cst(2026, 11, 20), [(w.cola, 1, 100 + n)], no=100 + n)
    db.session.commit()
    top = reports.top_dealers(staff=dash.admin, period="month", today=TODAY)
    assert len(top["items"]) == 10 and top["items"][0]["label"] == "深圳粤海贸易"


def test_daily_sales_fills_empty_days_with_zero(dash):
    daily = reports.daily_sales(staff=dash.admin, days=3, today=TODAY)
    assert [(i["key"], i["order_count"], i["amount_fen"]) for i in daily["items"]] == [
        ("2026-11-28", 0, 0), ("2026-11-29", 1, 20000), ("2026-11-30", 2, 15000)]
    december = reports.daily_sales(staff=dash.admin, days=2, today=date(2026, 12, 1))
    assert [(i["key"], i["order_count"]) for i in december["items"]] == [("2026-11-30", 2), ("2026-12-01", 1)]


def test_dealers_with_no_order_in_30_days(dash):
    quiet = reports.inactive_dealers(staff=dash.admin, today=TODAY)
    # D opened 40 days ago and never ordered; E last ordered 46 days ago; F is suspended; C's last
    # order (rejected, 15 days ago) still counts as ordering, like the reps' reminder.
    assert quiet["total"] == 2
    assert [(i["code"], i["last_order_date"], i["days_silent"], i["rep_name"]) for i in quiet["items"]] == [
        ("DE01", "2026-10-15", 46, "王业务"), ("DD01", None, 40, None)]
    # The 30 China-time days before today: E's order on 15 October is inside them on 14 November,
    # outside on the 15th.
    assert reports.inactive_dealers(staff=dash.admin, today=date(2026, 11, 14))["total"] == 0
    quiet = reports.inactive_dealers(staff=dash.admin, today=date(2026, 11, 15))["items"]
    assert [(i["code"], i["days_silent"]) for i in quiet] == [("DE01", 31)]


# --- who sees what ------------------------------------------------------------------------

def test_a_rep_sees_only_their_own_dealers(dash):
    s = reports.get_summary(staff=dash.rep, today=TODAY)
    assert s["today"]["order_count"] == 2 and s["today"]["amount_fen"] == 15000
    assert s["month"]["order_count"] == 3 and s["month"]["amount_fen"] == 35000
    assert (s["pending_approval"], s["awaiting_shipment"]) == (1, 2)
    assert figures(reports.sales_by_region(staff=dash.rep, today=TODAY), "amount_fen") == [("上海市", 20000), ("广东省", 15000)]
    assert [i["code"] for i in reports.inactive_dealers(staff=dash.rep, today=TODAY)["items"]] == ["DE01"]
    other = reports.get_summary(staff=dash.rep2, today=TODAY)
    assert other["month"] == {"from": "2026-11-01", "to": "2026-11-30", "order_count": 1, "amount_fen": 30000}
    assert other["today"]["order_count"] == 0 and (other["pending_approval"], other["awaiting_shipment"]) == (0, 1)
    assert figures(reports.top_skus(staff=dash.rep2, today=TODAY), "qty") == [("商品SKU-SOY", 10)]


@pytest.mark.parametrize("role", ["warehouse", "marketing"])
def test_roles_without_amounts_get_counts_and_quantities_only(dash, role):
    staff = getattr(dash, role)
    s = reports.get_summary(staff=staff, today=TODAY)
    assert s["today"]["amount_fen"] is None and s["month"]["amount_fen"] is None
    assert s["month"]["order_count"] == 4
    for report in (reports.sales_by_region(staff=staff, today=TODAY), reports.top_skus(staff=staff, today=TODAY),
                   reports.daily_sales(staff=staff, days=3, today=TODAY)):
        assert report["metric"] == "order_count" and all(i["amount_fen"] is None for i in report["items"])
    # Without amounts the SKUs rank by quantity.
    assert figures(reports.top_skus(staff=staff, today=TODAY), "qty") == [
        ("商品SKU-SOY", 11), ("商品SKU-COLA", 7), ("商品SKU-TEA", 5)]
    with pytest.raises(reports.DomainError) as refused:
        reports.inactive_dealers(staff=staff, today=TODAY)
    assert refused.value.status == 403


def test_an_unknown_period_is_refused(dash):
    with pytest.raises(reports.DomainError) as refused:
        reports.sales_by_tier(staff=dash.admin, period="year", today=TODAY)
    assert refused.value.code == "invalid_period" and refused.value.status == 400


# --- the page and the JSON endpoints (SQLite) ---------------------------------------------

@pytest.fixture
def shop(app, monkeypatch):
    monkeypatch.setattr(reports, "business_today", lambda: TODAY)
    return build_orders(factories.build_world())


def test_the_dashboard_is_every_roles_home_page(client, shop):
    r = console_login(client, "dash-admin")
    assert r.headers["Location"].endswith("/console/")
    page = client.get("/console/", headers=HTML).get_data(as_text=True)
    assert "仪表盘" in page and "统计口径" in page and "已取消、已驳回的订单不计入" in page
    assert "¥650.00" in page and "¥150.00" in page and "广东省" in page and "¥450.00" in page
    assert 'href="/console/orders/pending"' in page and "30 天未下单的经销商（2）" in page
    assert 'href="/console/orders?status=approved">3 笔' in page and 'status=partially_shipped">1 笔' in page
    assert "vendor/chart.js/chart.umd.js" in page and "cdn" not in page.lower()
    assert client.get("/static/vendor/chart.js/chart.umd.js").status_code == 200
    today = client.get("/console/?period=today", headers=HTML).get_data(as_text=True)
    assert "period=today" in today and "上海市" not in today.split("sales-by-region")[2].split("</section>")[0]


def test_a_rep_dashboard_shows_only_their_figures(client, shop):
    console_login(client, "rep1")
    page = client.get("/console/", headers=HTML).get_data(as_text=True)
    assert "只包含分配给你的经销商" in page and "¥350.00" in page and "深圳粤海贸易" not in page
    assert "¥650.00" not in page and "DD01" not in page and "DE01" in page


def test_a_warehouse_clerk_sees_no_amounts(client, shop):
    console_login(client, "dash-cang")
    r = client.get("/console/", headers=HTML)
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "4 笔" in page and "不显示金额" in page
    assert "¥" not in page and "金额" not in page.replace("不显示金额", "").replace("按金额", "")
    assert "未下单的经销商" not in page and 'href="/console/orders/pending"' not in page


def test_a_bad_period_on_the_page_is_a_400_not_a_500(client, shop):
    console_login(client, "dash-admin")
    r = client.get("/console/?period=decade", headers=HTML)
    assert r.status_code == 400 and "today" in r.get_data(as_text=True)


def test_chart_endpoints_answer_the_same_figures_as_json(client, shop):
    console_login(client, "dash-money")
    body = client.get(f"{API}/sales-by-tier?period=month").json
    assert body["metric"] == "amount_fen" and body["from"] == "2026-11-01"
    assert [(i["key"], i["label"], i["order_count"], i["amount_fen"]) for i in body["items"]] == [
        ("gold", "金牌", 3, 45000), ("silver", "银牌", 1, 20000)]
    assert client.get(f"{API}/sales-by-region?period=today").json["items"][0]["amount_fen"] == 15000
    assert client.get(f"{API}/top-dealers").json["items"][0]["key"] == "DC01"
    assert client.get(f"{API}/top-skus").json["items"][0]["qty"] == 11
    assert client.get(f"{API}/summary").json["month"]["amount_fen"] == 65000
    assert len(client.get(f"{API}/daily-sales?days=7").json["items"]) == 7
    assert client.get(f"{API}/inactive-dealers").json["total"] == 2


@pytest.mark.parametrize("path,code", [
    ("sales-by-region?period=week", "invalid_period"),
    ("top-skus?period=", "invalid_period"),
    ("daily-sales?days=0", "invalid_days"),
    ("daily-sales?days=91", "invalid_days"),
    ("daily-sales?days=abc", "invalid_days"),
])
def test_chart_endpoints_refuse_bad_parameters_in_the_api_error_shape(client, shop, path, code):
    console_login(client, "dash-admin")
    r = client.get(f"{API}/{path}", headers=HTML)  # even a browser asking for HTML gets JSON
    assert r.status_code == 400 and r.json["error"]["code"] == code and r.json["error"]["message"]


def test_chart_endpoints_are_scoped_and_checked_by_role(client, shop):
    console_login(client, "rep1")
    assert [i["key"] for i in client.get(f"{API}/top-dealers").json["items"]] == ["DB01", "DA01"]
    client.post("/console/logout", data={"csrf_token": _token(client)})
    console_login(client, "dash-cang")
    body = client.get(f"{API}/top-dealers").json
    assert body["metric"] == "order_count" and all(i["amount_fen"] is None for i in body["items"])
    r = client.get(f"{API}/inactive-dealers")
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"


def test_chart_endpoints_answer_401_in_json_when_signed_out(client, shop):
    r = client.get(f"{API}/sales-by-region")
    assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"
    assert client.get("/console/", headers=HTML).headers["Location"].startswith("/console/login")


def _token(client):
    import re

    page = client.get("/console/", headers=HTML).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
