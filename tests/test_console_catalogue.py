"""Console pages for the catalogue, prices and stock: who may open and change what, CSRF,
prices typed in yuan stored as fen, errors in Chinese with nothing changed, and the
"why this price" page agreeing with the mini-program."""
import re
import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.catalog.models import Sku, VisibilityRule
from app.extensions import db
from app.inventory.models import Stock, StockMovement
from app.pricing.models import PriceList, PriceListItem
from app.staff.service import create_staff
from tests.factories import auth, set_stock
from tests.helpers import HTML, MP, PASSWORD, csrf, new_key, submit
from tests.helpers import console_login as login


def page(client, path, **query):
    r = client.get(path, query_string=query, headers=HTML)
    return r.status_code, r.get_data(as_text=True)


def post(client, path, data, token_from=None):
    token = csrf(client, token_from or path)
    return client.post(path, data={"csrf_token": token, **data}, headers=HTML)


def actions():
    db.session.expire_all()
    return [e.action for e in db.session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]


def gold_list():
    return db.session.execute(select(PriceList).where(PriceList.name == "金牌价")).scalar_one()


def has_chinese(text):
    return re.search(r"[\u4e00-\u9fff]", text) is not None


# --- who may open what -----------------------------------------------------------------------

@pytest.mark.parametrize("path,allowed", [
    ("/console/products", {"boss", "rep1", "shi", "cang"}),
    ("/console/prices", {"boss", "rep1", "money"}),
    ("/console/prices/explain?dealer=DA01&sku=SKU-COLA", {"boss", "rep1", "money"}),
    ("/console/stock", {"boss", "rep1", "cang"}),
    ("/console/stock/movements", {"boss", "rep1", "cang"}),
    ("/console/products/new", {"boss"}),
])
def test_each_page_answers_403_to_roles_without_it(client, world, staff, path, allowed):
    for who in ("boss", "rep1", "money", "cang", "shi"):
        login(client, who)
        status = client.get(path, headers=HTML).status_code
        assert status == (200 if who in allowed else 403), (path, who, status)


def test_a_warehouse_clerk_gets_403_on_every_price_page_and_sees_no_prices(client, world, staff):
    login(client, "cang")
    gold = gold_list()
    for path in ("/console/prices", f"/console/prices/{gold.id}", "/console/prices/explain"):
        status, text = page(client, path)
        assert status == 403 and "无权" in text
    token = csrf(client, "/console/products")
    r = client.post(f"/console/prices/{gold.id}/items", data={"csrf_token": token, "sku_code": "SKU-VIN", "price": "1"},
                    headers=HTML)
    assert r.status_code == 403 and db.session.get(PriceListItem, (gold.id, world.vinegar.id)) is None
    _, products = page(client, "/console/products")
    assert "SKU-COLA" in products and "目录价" not in products and "¥48.00" not in products
    _, detail = page(client, f"/console/products/{world.cola.id}")
    assert "48.00" not in detail and "目录价" not in detail
    assert "价格" not in [label for label in re.findall(r'<a href="/console/[^"]*">([^<]+)</a>', products)]


def test_signed_out_visitors_are_sent_to_sign_in(client, world, staff):
    assert client.get("/console/prices", headers=HTML).status_code == 302


# --- products ------------------------------------------------------------------------------------

def test_product_list_search_and_filters(client, world, staff):
    login(client, "shi")
    status, text = page(client, "/console/products")
    assert status == 200 and "商品（7）" in text and "¥48.00" in text and "新建商品" not in text
    assert "商品（1）" in page(client, "/console/products", q="cola")[1]
    sauces = page(client, "/console/products", category_id=world.sauces.id)[1]
    assert "SKU-SOY" in sauces and "SKU-COLA" not in sauces
    off = page(client, "/console/products", status="inactive")[1]
    assert "商品（1）" in off and "SKU-OLD" in off and "下架" in off
    for bad in ({"status": "deleted"}, {"category_id": "x"}, {"page": "0"}):
        status, text = page(client, "/console/products", **bad)
        assert status == 400 and has_chinese(text)


def sku_form(world, **overrides):
    return {"code": "SKU-JUICE", "name": "橙汁", "spec": "1L×6瓶", "unit": "箱", "pack_size": "6", "moq": "2",
            "step": "2", "list_price": "56.8", "category_id": str(world.drinks.id), "status": "active",
            "image_url": "", "low_stock_qty": "10", **overrides}


def test_admin_creates_a_sku_with_a_price_in_yuan_stored_as_fen(client, world, staff):
    login(client, "boss")
    r = post(client, "/console/products/new", sku_form(world))
    assert r.status_code == 302
    sku = db.session.execute(select(Sku).where(Sku.code == "SKU-JUICE")).scalar_one()
    assert (sku.list_price_fen, sku.moq, sku.step, sku.pack_size) == (5680, 2, 2, 6)
    assert "已新建商品 SKU-JUICE" in client.get(r.headers["Location"], headers=HTML).get_data(as_text=True)
    assert actions() == ["sku.create"]


@pytest.mark.parametrize("overrides,message", [
    ({"list_price": "56.789"}, "目录价：金额最多精确到分"), ({"list_price": "-1"}, "目录价：金额不能为负数"), ({"moq": "0"}, "起订量"),
    ({"code": "SKU-COLA"}, "已存在"), ({"name": ""}, "商品名称不能为空"), ({"moq": "3"}, "整数倍"),
])
def test_a_bad_sku_form_is_shown_again_with_a_chinese_error_and_nothing_saved(client, world, staff, overrides, message):
    login(client, "boss")
    r = post(client, "/console/products/new", sku_form(world, **overrides))
    text = r.get_data(as_text=True)
    assert r.status_code in (409, 422) and message in text
    if "name" not in overrides:
        assert 'value="橙汁"' in text  # what was typed is kept
    assert db.session.execute(select(func.count()).select_from(Sku)).scalar_one() == 7 and actions() == []


def test_admin_edits_a_sku_and_the_code_stays(client, world, staff):
    login(client, "boss")
    path = f"/console/products/{world.tea.id}"
    r = post(client, path, {**sku_form(world, code="HACKED", name="乌龙茶", list_price="35.00", status="inactive",
                                       moq="10", step="5", image_url="https://img.example.com/tea.png")})
    assert r.status_code == 302
    db.session.expire_all()
    tea = db.session.get(Sku, world.tea.id)
    assert (tea.code, tea.name, tea.list_price_fen, tea.status, tea.moq, tea.image_url) == (
        "SKU-TEA", "乌龙茶", 3500, "inactive", 10, "https://img.example.com/tea.png")
    assert 'src="https://img.example.com/tea.png"' in page(client, path)[1]
    entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "sku.update")).scalar_one()
    assert entry.before["list_price_fen"] == 3600 and entry.after["list_price_fen"] == 3500


def test_only_admins_may_post_catalogue_changes(client, world, staff):
    for who in ("shi", "rep1", "cang"):
        login(client, who)
        token = csrf(client, "/console/products")
        for path, data in [(f"/console/products/{world.tea.id}", {"name": "x"}), ("/console/products/new", sku_form(world)),
                           ("/console/products/categories", {"name": "新分类"}),
                           (f"/console/products/{world.tea.id}/visibility", {"scope": "tier", "target": "gold", "effect": "deny"})]:
            assert client.post(path, data={"csrf_token": token, **data}, headers=HTML).status_code == 403
    assert actions() == [] and db.session.get(Sku, world.tea.id).name == "商品SKU-TEA"


def test_catalogue_posts_need_the_csrf_token(client, world, staff):
    login(client, "boss")
    r = client.post(f"/console/products/{world.tea.id}", data={**sku_form(world), "name": "改名"}, headers=HTML)
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    for path in (f"/console/prices/{gold_list().id}/items", f"/console/stock/{world.soy.id}/adjust",
                 f"/console/stock/{world.soy.id}/threshold", "/console/prices"):
        assert client.post(path, data={"csrf_token": "forged", "sku_code": "SKU-VIN", "price": "1", "delta": "5",
                                       "reason": "x", "warehouse_id": str(world.wh_south.id), "low_stock_qty": "1",
                                       "name": "x", "kind": "tier", "tier_code": "gold", "valid_from": "2026-01-01"},
                           headers=HTML).status_code == 400
    db.session.expire_all()
    assert db.session.get(Sku, world.tea.id).name == "商品SKU-TEA" and actions() == []


def test_categories_from_the_console(client, world, staff):
    login(client, "boss")
    r = post(client, "/console/products/categories", {"name": "粮油"}, token_from="/console/products")
    assert "已新建分类“粮油”" in client.get(r.headers["Location"], headers=HTML).get_data(as_text=True)
    r = post(client, f"/console/products/categories/{world.sauces.id}/rename", {"name": "饮料"}, token_from="/console/products")
    assert "已有名为“饮料”的分类" in client.get(r.headers["Location"], headers=HTML).get_data(as_text=True)
    post(client, f"/console/products/categories/{world.sauces.id}/rename", {"name": "调味酱料"}, token_from="/console/products")
    assert "调味酱料" in page(client, "/console/products")[1]
    assert actions() == ["category.create", "category.rename"]


def test_visibility_form_replaces_the_rules(client, world, staff):
    login(client, "boss")
    path = f"/console/products/{world.gift.id}/visibility"
    token = csrf(client, f"/console/products/{world.gift.id}")
    data = {"csrf_token": token, "effect": ["allow", "deny", "allow"], "scope": ["tier", "dealer", "tier"],
            "target": ["silver", "DB01", ""]}
    assert client.post(path, data=data, headers=HTML).status_code == 302
    rules = db.session.execute(select(VisibilityRule.effect, VisibilityRule.scope, VisibilityRule.target)
                               .where(VisibilityRule.sku_id == world.gift.id).order_by(VisibilityRule.id)).all()
    assert rules == [("allow", "tier", "silver"), ("deny", "dealer", "DB01")]
    assert client.get(f"{MP}/products/{world.gift.id}", headers=auth(world.a_buyer)).status_code == 404
    bad = {**data, "target": ["nowhere", "", ""], "scope": ["region", "tier", "tier"]}
    r = client.post(path, data=bad, headers=HTML, follow_redirects=True)
    assert "地区 nowhere 不存在" in r.get_data(as_text=True)
    assert actions() == ["visibility.save"]


# --- prices --------------------------------------------------------------------------------------

def test_reps_read_prices_but_cannot_change_them(client, world, staff):
    login(client, "rep1")
    gold = gold_list()
    status, text = page(client, f"/console/prices/{gold.id}")
    assert status == 200 and "¥42.00" in text and "改价" not in text
    token = csrf(client, f"/console/prices/{gold.id}")
    r = client.post(f"/console/prices/{gold.id}/items", data={"csrf_token": token, "sku_code": "SKU-COLA", "price": "1"},
                    headers=HTML)
    assert r.status_code == 403 and db.session.get(PriceListItem, (gold.id, world.cola.id)).price_fen == 4200
    login(client, "rep2")  # not DA01's rep: its own list is hidden, as if missing
    dealer_list = db.session.execute(select(PriceList).where(PriceList.kind == "dealer")).scalar_one()
    assert "鑫达专属价" not in page(client, "/console/prices")[1]
    assert page(client, f"/console/prices/{dealer_list.id}")[0] == 404


def test_finance_sets_changes_and_deletes_prices_in_yuan(client, world, staff):
    login(client, "money")
    gold = gold_list()
    path = f"/console/prices/{gold.id}/items"
    r = post(client, path, {"sku_code": "sku-vin", "price": "18.5"}, token_from=f"/console/prices/{gold.id}")
    assert r.status_code == 302 and db.session.get(PriceListItem, (gold.id, world.vinegar.id)).price_fen == 1850
    for bad, message in [({"sku_code": "SKU-VIN", "price": "18.555"}, "价格：金额最多精确到分"),
                         ({"sku_code": "NOPE", "price": "1"}, "商品 NOPE 不存在"), ({"sku_code": "SKU-VIN", "price": ""}, "价格")]:
        r = post(client, path, bad, token_from=f"/console/prices/{gold.id}")
        assert r.status_code == 422 and message in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(PriceListItem, (gold.id, world.vinegar.id)).price_fen == 1850
    post(client, f"/console/prices/{gold.id}/items/{world.vinegar.id}/delete", {}, token_from=f"/console/prices/{gold.id}")
    assert db.session.get(PriceListItem, (gold.id, world.vinegar.id)) is None
    assert actions() == ["price.set", "price.delete"]


def test_price_lists_are_created_and_their_dates_checked(clock, client, world, staff):
    """In November 2026, a list for 2027 is not yet in force."""
    login(client, "boss")
    r = post(client, "/console/prices", {"name": "2027年银牌价", "kind": "tier", "tier_code": "silver",
                                         "valid_from": "2027-01-01", "valid_to": "2027-12-31"})
    assert r.status_code == 302
    new = db.session.execute(select(PriceList).where(PriceList.name == "2027年银牌价")).scalar_one()
    assert (new.tier_id, str(new.valid_to)) == (world.silver.id, "2027-12-31")
    r = post(client, f"/console/prices/{new.id}", {"name": "2027年银牌价", "valid_from": "2027-01-01", "valid_to": "2026-12-31"})
    assert r.status_code == 422 and "失效日期不能早于生效日期" in r.get_data(as_text=True)
    r = post(client, "/console/prices", {"name": "x", "kind": "dealer", "dealer_code": "NOPE", "valid_from": "2027-01-01"})
    assert r.status_code == 422 and "经销商 NOPE 不存在" in r.get_data(as_text=True)
    assert actions() == ["price_list.save"]
    assert "未生效" in page(client, "/console/prices")[1]


def test_explain_page_shows_the_price_its_source_and_the_lists_that_did_not_apply(client, world, staff):
    login(client, "money")
    status, text = page(client, "/console/prices/explain", dealer="da01", sku="SKU-COLA")
    assert status == 200 and "¥40.00" in text and "经销商专属价：鑫达专属价" in text
    assert "经销商专属价优先" in text and "已过期" in text and "没有可见性规则" in text
    _, text = page(client, "/console/prices/explain", dealer="DB01", sku=str(world.gift.id))
    assert "不可以" in text and "允许等级 gold：不命中" in text
    assert page(client, "/console/prices/explain", dealer="ZZ99", sku="SKU-COLA")[0] == 404
    assert page(client, "/console/prices/explain", dealer="DA01", sku="NOPE")[0] == 404
    assert page(client, "/console/prices/explain", dealer="DA01", sku="SKU-COLA", date="2026-02-31")[0] == 400
    login(client, "rep2")  # a rep asks only about their own dealers
    assert page(client, "/console/prices/explain", dealer="DA01", sku="SKU-COLA")[0] == 404


def test_explain_page_agrees_with_the_mini_program_for_dealers_of_each_tier(client, world, staff):
    login(client, "boss")
    for user, code in ((world.a_buyer, "DA01"), (world.b_owner, "DB01")):
        for sku in (world.cola, world.tea, world.soy, world.gift, world.local):
            _, text = page(client, "/console/prices/explain", dealer=code, sku=sku.code)
            r = client.get(f"{MP}/products/{sku.id}", headers=auth(user))
            shown = re.search(r"<strong>(¥[\d,.]+)</strong>", text).group(1)
            if r.status_code == 200:
                from app.kernel.money import format_yuan

                assert shown == format_yuan(r.json["price_fen"]) and "可以：" in text, (code, sku.code)
            else:
                assert "不可以" in text, (code, sku.code)


# --- stock ---------------------------------------------------------------------------------------

def test_stock_page_search_low_filter_and_levels(client, world, staff):
    set_stock(world.soy, world.wh_south, 4)
    db.session.commit()
    login(client, "rep1")
    status, text = page(client, "/console/stock")
    assert status == 200 and "SKU-SOY" in text and ">调整</a>" not in text and ">明细</a>" in text
    low = page(client, "/console/stock", low="1")[1]
    assert "SKU-SOY" in low and "库存紧张" in low and "SKU-COLA" not in low
    east = page(client, "/console/stock", warehouse=str(world.wh_east.id))[1]
    assert "库存（1）" in east and "SKU-COLA" in east
    assert page(client, "/console/stock", warehouse="x")[0] == 400


def test_warehouse_adjusts_stock_with_a_reason_and_it_is_recorded(client, world, staff):
    login(client, "cang")
    path = f"/console/stock/{world.soy.id}"
    r = post(client, f"{path}/adjust", {"warehouse_id": str(world.wh_south.id), "delta": "-5", "reason": "破损"}, token_from=path)
    assert r.status_code == 302
    text = client.get(r.headers["Location"], headers=HTML).get_data(as_text=True)
    assert "在手数量 100 → 95" in text and "破损" in text and "仓管" in text
    assert db.session.get(Stock, (world.soy.id, world.wh_south.id)).on_hand == 95
    assert "破损" in page(client, "/console/stock/movements")[1]
    assert actions() == ["stock.adjust"]

    # "+20", as the field's hint suggests, adds 20.
    r = post(client, f"{path}/adjust", {"warehouse_id": str(world.wh_south.id), "delta": "+20", "reason": "补货"}, token_from=path)
    assert r.status_code == 302
    assert db.session.get(Stock, (world.soy.id, world.wh_south.id)).on_hand == 115


def test_adjusting_below_the_reserved_units_answers_409_in_chinese_and_changes_nothing(client, world, staff):
    set_stock(world.vinegar, world.wh_south, 10)
    db.session.commit()
    assert submit(client, auth(world.a_buyer), [{"sku_id": world.vinegar.id, "qty": 6}]).status_code == 201
    login(client, "cang")
    path = f"/console/stock/{world.vinegar.id}"
    r = post(client, f"{path}/adjust", {"warehouse_id": str(world.wh_south.id), "delta": "-5", "reason": "盘亏"},
             token_from=path)
    assert r.status_code == 409 and "低于已被订单预留的 6" in r.get_data(as_text=True)
    db.session.expire_all()
    row = db.session.get(Stock, (world.vinegar.id, world.wh_south.id))
    assert (row.on_hand, row.reserved) == (10, 6)
    assert db.session.execute(select(StockMovement)).first() is None and actions() == []


def test_thresholds_from_the_console_change_what_dealers_see(client, world, staff):
    login(client, "cang")
    path = f"/console/stock/{world.soy.id}"
    r = post(client, f"{path}/threshold", {"low_stock_qty": "abc"}, token_from=path)
    assert r.status_code == 422 and "低库存阈值应为整数" in r.get_data(as_text=True)
    post(client, f"{path}/threshold", {"low_stock_qty": "200"}, token_from=path)
    assert client.get(f"{MP}/products/{world.soy.id}", headers=auth(world.a_buyer)).json["stock"]["level"] == "low"
    assert actions() == ["stock.threshold"]


def test_sales_and_marketing_cannot_adjust_stock(client, world, staff):
    for who, form_page in (("rep1", "/console/stock"), ("shi", "/console/products"), ("money", "/console/prices")):
        login(client, who)
        token = csrf(client, form_page)
        r = client.post(f"/console/stock/{world.soy.id}/adjust", headers=HTML,
                        data={"csrf_token": token, "warehouse_id": str(world.wh_south.id), "delta": "5", "reason": "x"})
        assert r.status_code == 403
    assert db.session.get(Stock, (world.soy.id, world.wh_south.id)).on_hand == 100 and actions() == []


# --- PostgreSQL: adjustments and orders at the same time --------------------------------------------

@pytest.mark.postgres
def test_concurrent_adjustments_and_orders_never_take_stock_below_reserved(pg_app, pg_world):
    from tests.test_concurrency import make_dealers

    w = pg_world
    set_stock(w.vinegar, w.wh_south, 40)
    users = make_dealers(w, 8)
    create_staff(username="cang", name="仓管", role="warehouse", password=PASSWORD)
    clerks = []
    for _ in range(4):
        clerk = pg_app.test_client()
        assert login(clerk, "cang").status_code == 302
        clerks.append((clerk, csrf(clerk, "/console/stock")))
    buyers = [(pg_app.test_client(), {**auth(users[i % 8]), "Idempotency-Key": new_key()}) for i in range(30)]

    def adjust(i):
        clerk, token = clerks[i % len(clerks)]
        r = clerk.post(f"/console/stock/{w.vinegar.id}/adjust", headers=HTML, data={
            "csrf_token": token, "warehouse_id": str(w.wh_south.id), "delta": "-1", "reason": f"并发盘亏 {i}"})
        return "adjust", r.status_code

    def order(i):
        buyer, headers = buyers[i]
        r = buyer.post(f"{MP}/orders", headers=headers, json={"lines": [{"sku_id": w.vinegar.id, "qty": 1}]})
        return "order", r.status_code

    jobs = [(adjust, i) for i in range(30)] + [(order, i) for i in range(30)]
    barrier, results = threading.Barrier(len(jobs)), [None] * len(jobs)

    def run(k, job, i):
        barrier.wait()
        try:
            results[k] = job(i)
        except Exception as exc:  # recorded; asserted below
            results[k] = exc

    threads = [threading.Thread(target=run, args=(k, job, i)) for k, (job, i) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not [r for r in results if isinstance(r, Exception) or r is None], results
    counts = Counter(results)
    adjusted, ordered = counts[("adjust", 302)], counts[("order", 201)]
    # Every success used one available unit and nothing fails while one is left: exactly 40 succeed.
    assert adjusted + ordered == 40, counts
    assert counts[("adjust", 409)] + counts[("order", 409)] == 20, counts
    db.session.expire_all()
    row = db.session.get(Stock, (w.vinegar.id, w.wh_south.id))
    assert (row.on_hand, row.reserved) == (40 - adjusted, ordered) and row.on_hand >= row.reserved
    moves = db.session.execute(select(func.count(), func.sum(StockMovement.delta))).one()
    assert moves == (adjusted, -adjusted if adjusted else None)
    assert db.session.execute(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == "stock.adjust")).scalar_one() == adjusted
