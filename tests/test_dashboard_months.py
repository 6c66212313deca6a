"""The dashboard's month figures: growth month on month and year on year (zero bases, the same
days while a month runs, China-time month edges), dealer coverage, order cycle times from the
order events, sales targets and attainment; who sees what; each table and its Excel export."""
import html
import io
import re
from datetime import date, timedelta

import openpyxl
import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.dealers.models import Dealer
from app.extensions import db
from app.kernel.errors import DomainError
from app.kernel.clock import china_time, duration_text
from app.orders.models import Order, OrderEvent, OrderLine
from app.orders import approval, closing
from app.orders.shipments import ship_order
from app.reports import cycle, months, targets
from app.reports.models import SalesTarget
from tests import factories
from tests.factories import add, auth
from tests.helpers import HTML, console_login, csrf, submit
from tests.test_dashboard import build_orders, cst, place

NOV = date(2026, 11, 1)
TODAY = date(2026, 11, 30)
API = "/console/api/dashboard"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def dash(request):
    """test_dashboard's world of orders, on SQLite and on PostgreSQL."""
    request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")
    return build_orders(factories.build_world())


# --- growth -----------------------------------------------------------------------------

def test_growth_of_a_whole_month_against_the_month_before_and_a_zero_last_year(dash):
    g = months.growth(staff=dash.admin, month=NOV, today=TODAY)
    assert not g["to_date"] and g["through_day"] == 30
    assert [(i["key"], i["from"], i["to"], i["order_count"], i["amount_fen"]) for i in g["items"]] == [
        ("current", "2026-11-01", "2026-11-30", 4, 65000),
        ("previous", "2026-10-01", "2026-10-31", 2, 11000),
        ("last_year", "2025-11-01", "2025-11-30", 0, 0)]
    # (65000 − 11000) ÷ 11000 = 490.909…% → 49091 bp; orders 4 against 2.
    assert (g["mom"]["amount_bp"], g["mom"]["amount_text"]) == (49091, "+490.91%")
    assert (g["mom"]["count_bp"], g["mom"]["count_text"]) == (10000, "+100%")
    # Nothing a year earlier: no percentage, "新增".
    assert g["yoy"] == {"base": "last_year", "count_bp": None, "count_text": "新增",
                        "amount_bp": None, "amount_text": "新增"}


def test_growth_year_on_year_and_the_china_time_month_edges(dash):
    w = dash.w
    # 23:30 on 30 November 2025 in China is November; 00:10 on 1 December is not.
    place(w.dealer_a, w.a_owner, "completed", cst(2025, 11, 30, 23, 30), [(w.cola, 1, 13000)], no=201)
    place(w.dealer_a, w.a_owner, "completed", cst(2025, 12, 1, 0, 10), [(w.cola, 1, 99000)], no=202)
    db.session.commit()
    g = months.growth(staff=dash.admin, month=NOV, today=TODAY)
    assert (g["items"][2]["order_count"], g["items"][2]["amount_fen"]) == (1, 13000)
    assert (g["yoy"]["amount_bp"], g["yoy"]["amount_text"], g["yoy"]["count_text"]) == (40000, "+400%", "+300%")
    # October 2026: the order at 23:30 China time on the 31st belongs to it; the one at 00:10 on
    # 1 November (still 31 October in UTC) does not.
    october = months.growth(staff=dash.admin, month=date(2026, 10, 1), today=TODAY)
    assert (october["items"][0]["order_count"], october["items"][0]["amount_fen"]) == (2, 11000)


def test_a_running_month_is_compared_over_the_same_days(dash):
    # On 15 November: 1–15 November (order 6; order 5 was rejected) against 1–15 October (order 9).
    g = months.growth(staff=dash.admin, month=NOV, today=date(2026, 11, 15))
    assert g["to_date"] and g["through_day"] == 15
    assert [(i["to"], i["order_count"], i["amount_fen"]) for i in g["items"]] == [
        ("2026-11-15", 1, 30000), ("2026-10-15", 1, 4000), ("2025-11-15", 0, 0)]
    assert (g["mom"]["amount_text"], g["mom"]["count_bp"], g["mom"]["count_text"]) == ("+650%", 0, "0%")
    # On 1 December: 1 December (order 8, ¥30) against 1 November (order 6, ¥300).
    december = months.growth(staff=dash.admin, month=date(2026, 12, 1), today=date(2026, 12, 1))
    assert (december["mom"]["amount_bp"], december["mom"]["amount_text"]) == (-9000, "-90%")


def test_growth_against_a_zero_base_is_a_dash_when_nothing_was_ordered(dash):
    g = months.growth(staff=dash.admin, month=date(2026, 9, 1), today=TODAY)
    assert [i["order_count"] for i in g["items"]] == [0, 0, 0]
    assert (g["mom"]["amount_text"], g["mom"]["count_text"], g["yoy"]["amount_text"]) == ("—", "—", "—")
    assert months.growth_of(0, 500) == (-10000, "-100%") and months.growth_of(1, 3) == (-6667, "-66.67%")


def test_growth_for_a_rep_and_for_a_role_without_amounts(dash):
    mine = months.growth(staff=dash.rep, month=NOV, today=TODAY)
    assert [(i["order_count"], i["amount_fen"]) for i in mine["items"]] == [(3, 35000), (1, 4000), (0, 0)]
    counts = months.growth(staff=dash.warehouse, month=NOV, today=TODAY)
    assert counts["metric"] == "order_count" and all(i["amount_fen"] is None for i in counts["items"])
    assert counts["mom"]["amount_text"] is None and counts["mom"]["count_text"] == "+100%"


# --- coverage ---------------------------------------------------------------------------

def test_coverage_overall_by_province_and_by_tier(dash):
    c = months.coverage(staff=dash.admin, month=NOV)
    # Active: A, B, C, D, E (F is suspended); ordered in November: A, B, C.
    assert c["total"] == {"active": 5, "ordered": 3, "coverage_bp": 6000, "coverage_text": "60%"}
    assert [(i["label"], i["active"], i["ordered"], i["coverage_text"]) for i in c["items"]] == [
        ("广东省", 3, 2, "66.67%"), ("上海市", 2, 1, "50%")]
    assert [(i["label"], i["active"], i["ordered"], i["coverage_text"]) for i in c["by_tier"]] == [
        ("金牌", 2, 2, "100%"), ("银牌", 3, 1, "33.33%")]
    october = months.coverage(staff=dash.admin, month=date(2026, 10, 1))
    assert (october["total"]["ordered"], october["total"]["coverage_text"]) == (2, "40%")  # C (31st, 23:30) and E


def test_a_rep_sees_the_coverage_of_their_own_dealers(dash):
    c = months.coverage(staff=dash.rep, month=NOV)
    assert c["total"] == {"active": 3, "ordered": 2, "coverage_bp": 6667, "coverage_text": "66.67%"}
    assert months.coverage(staff=dash.rep2, month=NOV)["total"]["active"] == 1


# --- cycle times ------------------------------------------------------------------------

def _event(order, to_status, at, from_status="approved"):
    add(OrderEvent(order_id=order.id, from_status=from_status, to_status=to_status, actor_type="staff", created_at=at))


def test_cycle_time_median_and_p90_from_the_order_events(dash):
    """Four orders of November with events an hour, two, three and ten hours after submission:
    an even count's median is the mean of the middle two, P90 the ⌈0.9·n⌉-th value."""
    w = dash.w
    for n, hours in enumerate((1, 2, 3, 10)):
        at = cst(2026, 11, 10 + n, 9)
        order = place(w.dealer_a, w.a_owner, "shipped", at, [(w.cola, 1, 1000)], no=300 + n)
        _event(order, "pending_approval", at, from_status=None)
        _event(order, "approved", at + timedelta(hours=hours), from_status="pending_approval")
        _event(order, "shipped", at + timedelta(hours=hours, days=1))
    # An order of October approved in November does not count for November.
    old = place(w.dealer_a, w.a_owner, "approved", cst(2026, 10, 31, 23, 0), [(w.cola, 1, 1000)], no=310)
    _event(old, "pending_approval", cst(2026, 10, 31, 23, 0), from_status=None)
    _event(old, "approved", cst(2026, 11, 2, 9), from_status="pending_approval")
    db.session.commit()
    report = cycle.cycle_times(staff=dash.admin, month=NOV)
    steps = {i["key"]: i for i in report["items"]}
    assert (steps["approve"]["order_count"], steps["approve"]["median_seconds"], steps["approve"]["p90_seconds"]) == (
        4, 9000, 36000)
    assert (steps["approve"]["median_text"], steps["approve"]["p90_text"]) == ("2 小时 30 分", "10 小时")
    assert (steps["ship"]["order_count"], steps["ship"]["median_text"]) == (4, "1 天")
    assert steps["receive"]["order_count"] == 0 and steps["receive"]["median_text"] == "—"
    # Dealer A is rep1's: rep2 sees none of it.
    assert all(i["order_count"] == 0 for i in cycle.cycle_times(staff=dash.rep2, month=NOV)["items"])


def test_cycle_times_of_orders_taken_through_the_services(client, world, staff, clock):
    """Submit, approve, ship and confirm as the product does, the clock moved between the steps."""
    warehouse = staff["warehouse"]

    def new_order(at):
        clock.set(at)
        r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 2}])
        assert r.status_code == 201, r.json
        return r.json["order_no"]

    def ship(order_no, qty):
        line_id = db.session.execute(select(OrderLine.id).join(Order, Order.id == OrderLine.order_id)
                                     .where(Order.order_no == order_no)).scalar_one()
        db.session.rollback()
        ship_order(staff=warehouse, order_no=order_no, quantities={line_id: qty}, carrier="顺丰速运",
                   tracking_no=f"SF{order_no[-6:]}{qty}")

    start = china_time(2026, 11, 10, 9, 0)
    first = new_order(start)
    clock.advance(hours=3, minutes=20)
    approval.approve_order(staff=world.rep, order_no=first)
    clock.advance(days=1)
    ship(first, 2)
    clock.advance(days=2, hours=12)
    closing.confirm_receipt(user=world.a_buyer, order_no=first)

    second = new_order(start + timedelta(days=1))
    clock.advance(hours=1)
    approval.approve_order(staff=world.rep, order_no=second)
    clock.advance(hours=2)
    ship(second, 1)  # partly: the first parcel counts for 发货

    third = new_order(start + timedelta(days=2))
    clock.advance(hours=5)
    approval.approve_order(staff=world.rep, order_no=third)

    steps = {i["key"]: i for i in cycle.cycle_times(staff=staff["admin"], month=NOV)["items"]}
    # Approve: 1 h, 3 h 20 min, 5 h → median 3 h 20 min, P90 the 3rd.
    assert (steps["approve"]["order_count"], steps["approve"]["median_text"], steps["approve"]["p90_text"]) == (
        3, "3 小时 20 分", "5 小时")
    # Ship: 2 h and 1 day → median their mean, 13 h; P90 the 2nd.
    assert (steps["ship"]["order_count"], steps["ship"]["median_seconds"], steps["ship"]["p90_text"]) == (
        2, 46800, "1 天")
    assert (steps["receive"]["order_count"], steps["receive"]["median_text"]) == (1, "2.5 天")
    assert steps["total"]["median_text"] == duration_text(12000 + 86400 + 216000) == "3.6 天"


# --- targets and attainment -------------------------------------------------------------

def test_attainment_per_dealer_and_per_rep(dash):
    targets.set_sales_target(staff=dash.admin, dealer_code="DA01", month=NOV, amount_fen=30000)
    targets.set_sales_target(staff=dash.finance, dealer_code="DC01", month="2026-11", amount_fen=20000)
    targets.set_sales_target(staff=dash.admin, dealer_code="DE01", month=NOV, amount_fen=8000)
    dealers = targets.dealer_attainment(staff=dash.admin, month=NOV)
    # Furthest behind first: E ordered nothing in November, A ¥150 of ¥300, C ¥300 of ¥200.
    assert dealers["total"] == 3
    assert [(i["key"], i["target_fen"], i["ordered_fen"], i["attainment_text"], i["rep_name"]) for i in dealers["items"]] == [
        ("DE01", 8000, 0, "0%", "王业务"), ("DA01", 30000, 15000, "50%", "王业务"), ("DC01", 20000, 30000, "150%", "李业务")]
    reps = targets.rep_attainment(staff=dash.admin, month=NOV)
    # rep1: targets A + E = ¥380; ordered by all of A, B, E = ¥350 (B has no target but counts for its rep).
    assert [(i["label"], i["target_fen"], i["ordered_fen"], i["attainment_bp"]) for i in reps["items"]] == [
        ("李业务", 20000, 30000, 15000), ("王业务", 38000, 35000, 9211)]
    # A rep sees their own dealers only.
    assert [i["key"] for i in targets.dealer_attainment(staff=dash.rep, month=NOV)["items"]] == ["DE01", "DA01"]
    assert [i["label"] for i in targets.rep_attainment(staff=dash.rep, month=NOV)["items"]] == ["王业务"]
    assert targets.dealer_attainment(staff=dash.admin, month=NOV, limit=1)["total"] == 3


def test_setting_a_target_replaces_it_is_audited_and_checked(dash):
    targets.set_sales_target(staff=dash.admin, dealer_code="DA01", month=NOV, amount_fen=30000)
    targets.set_sales_target(staff=dash.admin, dealer_code="DA01", month=NOV, amount_fen=45000)
    rows = db.session.execute(select(SalesTarget)).scalars().all()
    assert [(r.month, r.amount_fen) for r in rows] == [(NOV, 45000)]
    entries = db.session.execute(select(AuditEntry).where(AuditEntry.action == "sales_target.set")
                                 .order_by(AuditEntry.id)).scalars().all()
    assert [(e.before, e.after) for e in entries] == [
        ({"amount_fen": None}, {"amount_fen": 30000}), ({"amount_fen": 30000}, {"amount_fen": 45000})]
    for kwargs, status, message in [
        ({"staff": dash.rep}, 403, "你的角色无权维护销售目标"),
        ({"amount_fen": 0}, 422, "目标金额必须大于 0 元"),
        ({"dealer_code": "NOPE"}, 404, "经销商编码“NOPE”不存在"),
        ({"month": "2026-13"}, 422, "月份格式应为年-月，如 2026-11"),
    ]:
        args = {"staff": dash.admin, "dealer_code": "DB01", "month": NOV, "amount_fen": 1000, **kwargs}
        with pytest.raises(DomainError) as refused:
            targets.set_sales_target(**args)
        assert (refused.value.status, refused.value.message) == (status, message)
    assert db.session.execute(select(SalesTarget.amount_fen)).scalars().all() == [45000]  # nothing else written
    targets.remove_sales_target(staff=dash.admin, dealer_code="DA01", month=NOV)
    assert db.session.execute(select(SalesTarget)).first() is None


def test_attainment_is_for_roles_that_see_amounts(dash):
    for reader in (targets.dealer_attainment, targets.rep_attainment):
        with pytest.raises(DomainError) as refused:
            reader(staff=dash.warehouse, month=NOV)
        assert refused.value.status == 403


# --- the page, the JSON endpoints and the exports (SQLite) ---------------------------------

@pytest.fixture
def shop(app, clock):
    clock.set(china_time(2026, 11, 30, 12, 0))
    s = build_orders(factories.build_world())
    targets.set_sales_target(staff=s.admin, dealer_code="DA01", month=NOV, amount_fen=30000)
    targets.set_sales_target(staff=s.admin, dealer_code="DC01", month=NOV, amount_fen=20000)
    return s


def page_table(page, name):
    """A dashboard table as the rows of cell texts, header included."""
    body = re.search(rf'<table class="figures" id="table-{name}">(.*?)</table>', page, re.S).group(1)
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def sheet_rows(data):
    sheet = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def as_page_text(header, value):
    """An Excel cell as the page writes it: yuan columns as ¥1,234.50, empty as ""."""
    if value is None:
        return ""
    if "（元）" in header:
        return f"¥{value:,.2f}"
    return str(value)


@pytest.mark.parametrize("name", ["growth", "coverage-region", "coverage-tier", "attainment-reps",
                                  "attainment-dealers", "sales-by-region", "top-skus", "daily-sales"])
def test_every_export_opens_and_has_the_numbers_of_its_table(client, shop, name):
    console_login(client, "dash-admin")
    page = client.get("/console/?month=2026-11", headers=HTML).get_data(as_text=True)
    shown = page_table(page, name)
    r = client.get(f"/console/dashboard/export/{name}.xlsx?month=2026-11")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    rows = sheet_rows(r.data)
    header = rows[0]
    assert header == shown[0]
    assert len(rows) == len(shown) > 1
    for excel_row, page_row in zip(rows[1:], shown[1:]):
        for column, value, text in zip(header, excel_row, page_row):
            if value is None:
                assert text in ("", "—")
            else:
                assert as_page_text(column, value) == text


def test_the_month_figures_on_the_page(client, shop):
    console_login(client, "dash-admin")
    page = client.get("/console/?month=2026-11", headers=HTML).get_data(as_text=True)
    assert "月度分析（2026-11）" in page and "+490.91%" in page and "新增" in page
    assert page_table(page, "coverage-region")[-1] == ["合计", "5", "3", "60%"]
    assert page_table(page, "attainment-dealers")[1:] == [
        ["DA01", "广州鑫达商贸有限公司", "王业务", "¥300.00", "¥150.00", "50%"],
        ["DC01", "深圳粤海贸易", "李业务", "¥200.00", "¥300.00", "150%"]]
    assert "订货金额按下单时间计入" in page  # the page says which basis attainment uses
    assert len(re.findall(r"<canvas data-chart", page)) == 9
    body = client.get(f"{API}/growth?month=2026-10").json
    assert body["items"][0]["amount_fen"] == 11000 and body["mom"]["amount_text"] == "新增"  # nothing in September
    assert client.get(f"{API}/coverage?month=2026-11").json["total"]["coverage_bp"] == 6000
    assert client.get(f"{API}/cycle-times").json["series"][0]["key"] == "median_seconds"
    assert [i["label"] for i in client.get(f"{API}/rep-attainment").json["items"]] == ["李业务", "王业务"]


@pytest.mark.parametrize("query", ["month=2026-13", "month=11", "month=2026-12"])
def test_a_bad_or_future_month_is_a_400(client, shop, query):
    console_login(client, "dash-admin")
    assert client.get(f"/console/?{query}", headers=HTML).status_code == 400
    r = client.get(f"{API}/growth?{query}")
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_month" and r.json["error"]["message"]


def test_a_rep_sees_only_their_dealers_in_the_month_figures_and_exports(client, shop):
    console_login(client, "rep1")
    page = client.get("/console/", headers=HTML).get_data(as_text=True)
    assert "深圳粤海贸易" not in page and "李业务" not in page
    assert page_table(page, "attainment-dealers")[1:] == [["DA01", "广州鑫达商贸有限公司", "王业务", "¥300.00", "¥150.00", "50%"]]
    rows = sheet_rows(client.get("/console/dashboard/export/attainment-dealers.xlsx").data)
    assert [row[0] for row in rows[1:]] == ["DA01"]
    assert client.get(f"{API}/coverage").json["total"] == {"active": 3, "ordered": 2, "coverage_bp": 6667,
                                                          "coverage_text": "66.67%"}
    assert client.get("/console/targets", headers=HTML).status_code == 403


def test_a_warehouse_clerk_gets_counts_and_no_attainment(client, shop):
    console_login(client, "dash-cang")
    page = client.get("/console/", headers=HTML).get_data(as_text=True)
    assert "月度分析（2026-11）" in page and "+100%" in page
    assert "¥" not in page and "金额" not in page.replace("不显示金额", "").replace("按金额", "")
    assert 'id="attainment"' not in page
    assert page_table(page, "growth")[0] == ["期间", "日期", "订单数（单）", "本月较该期·订单数"]
    rows = sheet_rows(client.get("/console/dashboard/export/growth.xlsx").data)
    assert rows[0] == ["期间", "日期", "订单数（单）", "本月较该期·订单数"]
    assert client.get(f"{API}/rep-attainment").status_code == 403
    assert client.get("/console/dashboard/export/attainment-dealers.xlsx").status_code == 403
    assert client.get("/console/dashboard/export/no-such.xlsx").status_code == 404


def test_targets_are_set_in_the_console_form_with_chinese_errors(client, shop):
    console_login(client, "dash-money")
    token = csrf(client, "/console/targets")
    r = client.post("/console/targets", data={"csrf_token": token, "dealer_code": "DB01", "month": "2026-12",
                                              "amount": "1,234.50"})
    assert r.status_code == 302
    page = client.get("/console/targets?month=2026-12", headers=HTML).get_data(as_text=True)
    assert "DB01" in page and "¥1,234.50" in page
    assert db.session.execute(select(SalesTarget.amount_fen).join(
        Dealer, Dealer.id == SalesTarget.dealer_id).where(Dealer.code == "DB01")
    ).scalar_one() == 123450
    for data, message in [({"amount": "0"}, "目标金额必须大于 0 元"), ({"amount": "12.345"}, "目标金额"),
                          ({"month": "明年"}, "月份格式应为年-月"), ({"dealer_code": "XX99"}, "经销商编码“XX99”不存在")]:
        form = {"csrf_token": token, "dealer_code": "DB01", "month": "2026-12", "amount": "100", **data}
        r = client.post("/console/targets", data=form, headers=HTML)
        assert r.status_code in (404, 422) and message in r.get_data(as_text=True)
    assert db.session.execute(select(SalesTarget.amount_fen).where(SalesTarget.month == date(2026, 12, 1))
                              ).scalars().all() == [123450]
    assert client.post("/console/targets", data={"dealer_code": "DB01", "month": "2026-12", "amount": "1"}).status_code == 400


def test_targets_round_trip_through_the_excel_import(client, shop):
    console_login(client, "dash-admin")
    r = client.get("/console/imports/targets/export.xlsx?month=2026-11")
    assert r.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(r.data))
    sheet = book.worksheets[0]
    rows = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    assert rows["DA01"][3].value == 300 and rows["DB01"][3].value is None and "DF01" not in rows
    rows["DB01"][3].value = 512.5
    rows["DA01"][3].value = 300
    buffer = io.BytesIO()
    book.save(buffer)
    token = csrf(client, "/console/imports")
    r = client.post("/console/imports/targets", headers=HTML, data={
        "csrf_token": token, "action": "import", "file": (io.BytesIO(buffer.getvalue()), "targets.xlsx")})
    assert r.status_code == 200, r.get_data(as_text=True)
    got = dict(db.session.execute(select(Dealer.code, SalesTarget.amount_fen).join(
        SalesTarget, SalesTarget.dealer_id == Dealer.id).where(SalesTarget.month == NOV)).all())
    assert got == {"DA01": 30000, "DB01": 51250, "DC01": 20000}
    # A bad row: nothing is imported, every error has its row.
    rows["DB01"][3].value = -5
    rows["DE01"][2].value = "十一月"
    rows["DE01"][3].value = 100
    buffer = io.BytesIO()
    book.save(buffer)
    r = client.post("/console/imports/targets", headers=HTML, data={
        "csrf_token": token, "action": "import", "file": (io.BytesIO(buffer.getvalue()), "targets.xlsx")})
    text = r.get_data(as_text=True)
    assert r.status_code == 422 and "月份“十一月”格式应为年-月" in text
    assert db.session.execute(select(SalesTarget.amount_fen).where(SalesTarget.dealer_id == shop.w.dealer_b.id)
                              ).scalar_one() == 51250
