"""Price lists count their versions, and an order line records the list (id, name, version)
that priced it: an old order still explains its price after the list is renamed or
repriced, in the API, on the console's order page and on the "why this price" page."""
import re

import pytest
from sqlalchemy import select, text

from app.extensions import db
from app.imports import prices as price_import
from app.orders.models import Order, OrderLine
from app.pricing import price_lists
from app.pricing.models import PriceList
from app.staff.service import create_staff
from tests.factories import auth
from tests.helpers import HTML, MP, PASSWORD, submit
from tests.helpers import console_login as login


def price_list(name):
    db.session.expire_all()
    return db.session.execute(select(PriceList).where(PriceList.name == name)).scalar_one()


def version(list_id):
    db.session.expire_all()
    return db.session.get(PriceList, list_id).version


def admin():
    return create_staff(username="pl-admin", name="价格管理员", role="admin", password=PASSWORD)


def lines_by_sku(order_json):
    return {line["sku_id"]: line for line in order_json["lines"]}


def stored_lines(order_no):
    db.session.expire_all()
    order = db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()
    return {line.sku_id: line for line in order.lines}


# --- the version ----------------------------------------------------------------------------

def test_a_list_gets_one_new_version_per_change_and_none_for_no_change(world, staff):
    boss = staff["admin"]
    dealer_list = price_list("鑫达专属价")
    assert dealer_list.version == 1
    price_lists.set_price(staff=boss, price_list_id=dealer_list.id, sku_id=world.cola.id, price_fen=3900)
    assert version(dealer_list.id) == 2
    price_lists.set_price(staff=boss, price_list_id=dealer_list.id, sku_id=world.cola.id, price_fen=3900)
    assert version(dealer_list.id) == 2  # the same price again changes nothing
    price_lists.save_price_list(staff=boss, price_list_id=dealer_list.id, name="鑫达专属价2027",
                                valid_from=dealer_list.valid_from)
    assert version(dealer_list.id) == 3  # renamed
    dealer_list = price_list("鑫达专属价2027")
    price_lists.save_price_list(staff=boss, price_list_id=dealer_list.id, name="鑫达专属价2027",
                                valid_from=dealer_list.valid_from)
    assert version(dealer_list.id) == 3  # saved unchanged
    price_lists.set_prices(staff=boss, price_list_id=dealer_list.id,
                           items=[{"sku_id": world.soy.id, "price_fen": 2000}, {"sku_id": world.tea.id, "price_fen": 3000}])
    assert version(dealer_list.id) == 4  # two prices in one call: one change
    price_lists.delete_price(staff=boss, price_list_id=dealer_list.id, sku_id=world.tea.id)
    assert version(dealer_list.id) == 5
    # An edit of the name and the prices in one call is one version too.
    price_lists.save_price_list(staff=boss, price_list_id=dealer_list.id, name="鑫达专属价2028",
                                valid_from=dealer_list.valid_from, items=[{"sku_id": world.soy.id, "price_fen": 1900}])
    assert version(dealer_list.id) == 6
    new = price_lists.save_price_list(staff=boss, name="新等级价", kind="tier", tier_code="gold",
                                      valid_from=dealer_list.valid_from, items=[{"sku_id": world.soy.id, "price_fen": 1}])
    assert version(new.id) == 1  # created with its prices: its first version


def test_a_failed_change_leaves_the_version_alone(world, staff):
    gold = price_list("金牌价")
    with pytest.raises(Exception):
        price_lists.set_prices(staff=staff["admin"], price_list_id=gold.id,
                               items=[{"sku_id": world.soy.id, "price_fen": 1}, {"sku_code": "NOPE", "price_fen": 1}])
    assert version(gold.id) == 1


def test_an_import_that_renames_a_list_and_changes_its_prices_is_one_version(world, staff):
    from tests.test_imports import PRICE_HEADERS, xlsx

    gold = price_list("金牌价")
    day = gold.valid_from.isoformat()
    data = xlsx(PRICE_HEADERS, [
        [gold.id, "金牌价（新）", "等级价", "gold", None, day, None, "SKU-COLA", None, None, None, "41.00"],
        [gold.id, "金牌价（新）", "等级价", "gold", None, day, None, "SKU-SOY", None, None, None, "22.00"],
    ])
    result = price_import.import_file(staff=staff["admin"], data=data, filename="gold.xlsx", apply=True)
    assert result.applied
    assert version(gold.id) == 2 and price_list("金牌价（新）").id == gold.id


# --- orders record the list -----------------------------------------------------------------

def test_each_line_records_the_list_that_priced_it(on_both):
    client, world = on_both
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}, {"sku_id": world.soy.id, "qty": 1},
                                             {"sku_id": world.vinegar.id, "qty": 1}])
    assert r.status_code == 201, r.json
    dealer_list, gold = price_list("鑫达专属价"), price_list("金牌价")
    recorded = {sku_id: (line["price_source"], line["price_list_id"], line["price_list_name"], line["price_list_version"])
                for sku_id, line in lines_by_sku(r.json).items()}
    assert recorded == {
        world.cola.id: ("dealer", dealer_list.id, "鑫达专属价", 1),
        world.soy.id: ("tier", gold.id, "金牌价", 1),
        world.vinegar.id: ("list", None, None, None),  # the SKU's own list price: no list
    }
    stored = stored_lines(r.json["order_no"])
    assert {sku_id: (line.price_source, line.price_list_id, line.price_list_name, line.price_list_version)
            for sku_id, line in stored.items()} == recorded


def test_an_old_order_keeps_the_list_it_was_priced_from_after_the_list_changes(on_both):
    client, world = on_both
    boss = admin()
    dealer_list = price_list("鑫达专属价")
    old = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 2}]).json
    price_lists.set_price(staff=boss, price_list_id=dealer_list.id, sku_id=world.cola.id, price_fen=3500)
    price_lists.save_price_list(staff=boss, price_list_id=dealer_list.id, name="鑫达2027专属价",
                                valid_from=dealer_list.valid_from)
    new = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 2}]).json

    then = lines_by_sku(client.get(f"{MP}/orders/{old['order_no']}", headers=auth(world.a_buyer)).json)[world.cola.id]
    assert (then["unit_price_fen"], then["price_list_id"], then["price_list_name"], then["price_list_version"]) == (
        4000, dealer_list.id, "鑫达专属价", 1)
    now = lines_by_sku(client.get(f"{MP}/orders/{new['order_no']}", headers=auth(world.a_buyer)).json)[world.cola.id]
    assert (now["unit_price_fen"], now["price_list_id"], now["price_list_name"], now["price_list_version"]) == (
        3500, dealer_list.id, "鑫达2027专属价", 3)


def test_preview_and_cart_lines_name_the_list_too(client, world):
    r = client.post(f"{MP}/checkout/preview", headers=auth(world.a_buyer), json={"lines": [{"sku_id": world.soy.id, "qty": 1}]})
    assert r.status_code == 200, r.json
    [line] = r.json["lines"]
    assert (line["price_source"], line["price_list_name"], line["price_list_version"]) == ("tier", "金牌价", 1)


def test_the_openapi_document_declares_the_recorded_list(client):
    spec = client.get(f"{MP}/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    for name in ("PricedLineOut", "OrderLineOut"):
        found = next(v for k, v in schemas.items() if k.startswith(name.removesuffix("Out")))
        for field in ("price_list_id", "price_list_name", "price_list_version"):
            assert field in found["properties"] and field in found["required"], (name, field)
            assert found["properties"][field].get("nullable") or "null" in str(found["properties"][field]), (name, field)


# --- the console: the order page and "why this price" --------------------------------------

def test_the_order_page_and_the_explanation_show_the_list_as_it_was_at_the_order(client, world, staff):
    dealer_list = price_list("鑫达专属价")
    order_no = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1},
                                                    {"sku_id": world.vinegar.id, "qty": 1}]).json["order_no"]
    price_lists.set_price(staff=staff["admin"], price_list_id=dealer_list.id, sku_id=world.cola.id, price_fen=3500)
    price_lists.save_price_list(staff=staff["admin"], price_list_id=dealer_list.id, name="鑫达2027专属价",
                                valid_from=dealer_list.valid_from)

    login(client, "money")
    body = client.get(f"/console/orders/{order_no}", headers=HTML).get_data(as_text=True)
    assert "价格依据（下单时）" in body and "鑫达专属价（第 1 版）" in body and "鑫达2027专属价" not in body
    assert "目录价" in body

    r = client.get("/console/prices/explain", query_string={"order": order_no, "sku": "SKU-COLA"}, headers=HTML)
    body = r.get_data(as_text=True)
    assert r.status_code == 200
    placed, today = body.split("按现在的价目表：")
    assert "¥40.00" in placed and "经销商专属价：" in placed and "鑫达专属价（第 1 版）" in placed
    assert "该价目表已修改，现为“鑫达2027专属价”（第 3 版）" in placed
    assert re.search(r"<strong>¥35.00</strong>", today) and "鑫达2027专属价（第 3 版）" in today

    r = client.get("/console/prices/explain", query_string={"order": order_no, "sku": "SKU-TEA"}, headers=HTML)
    assert r.status_code == 404  # not a line of that order


def test_the_order_page_shows_no_price_basis_to_roles_that_may_not_see_prices(client, world, staff):
    order_no = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}]).json["order_no"]
    login(client, "cang")
    body = client.get(f"/console/orders/{order_no}", headers=HTML).get_data(as_text=True)
    assert "价格依据" not in body and "鑫达专属价" not in body
    r = client.get("/console/prices/explain", query_string={"order": order_no, "sku": "SKU-COLA"}, headers=HTML)
    assert r.status_code == 403


def test_another_reps_order_is_unknown_to_the_explanation(client, world, staff):
    order_no = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}]).json["order_no"]
    login(client, "rep2")
    r = client.get("/console/prices/explain", query_string={"order": order_no, "sku": "SKU-COLA"}, headers=HTML)
    assert r.status_code == 404 and "鑫达专属价" not in r.get_data(as_text=True)
    login(client, "rep1")
    r = client.get("/console/prices/explain", query_string={"order": order_no, "sku": "SKU-COLA"}, headers=HTML)
    assert r.status_code == 200 and "鑫达专属价（第 1 版）" in r.get_data(as_text=True)


def test_lines_placed_before_the_upgrade_say_the_list_was_not_recorded(app, client, world, staff):
    from flask_migrate import downgrade, upgrade

    headers, cola_id = auth(world.a_buyer), world.cola.id
    order_no = submit(client, headers, [{"sku_id": world.cola.id, "qty": 1},
                                                    {"sku_id": world.vinegar.id, "qty": 1}]).json["order_no"]
    price_lists.set_price(staff=staff["admin"], price_list_id=price_list("金牌价").id, sku_id=world.cola.id,
                          price_fen=4100)
    db.session.remove()  # the world's rows are detached from here on: ids and headers taken above
    downgrade(revision="0024-1")  # the schema before lines recorded their list
    upgrade()
    db.session.remove()

    assert {pl.version for pl in db.session.execute(select(PriceList)).scalars()} == {1}  # counted from here on
    cola = stored_lines(order_no)[cola_id]
    assert (cola.price_source, cola.price_list_id, cola.price_list_name, cola.price_list_version) == (
        "dealer", None, None, None)
    line = lines_by_sku(client.get(f"{MP}/orders/{order_no}", headers=headers).json)[cola_id]
    assert line["price_list_id"] is None and line["price_list_version"] is None and line["unit_price_fen"] == 4000

    login(client, "boss")
    body = client.get(f"/console/orders/{order_no}", headers=HTML).get_data(as_text=True)
    assert "下单时未记录" in body and "鑫达专属价（" not in body
    body = client.get("/console/prices/explain", query_string={"order": order_no, "sku": "SKU-COLA"},
                      headers=HTML).get_data(as_text=True)
    placed = body.split("按现在的价目表：")[0]
    assert "下单时未记录" in placed and "无法确定当时来自哪张价目表" in placed and "¥40.00" in placed
    # A list-price line was never from a list, before the upgrade or after.
    vinegar = client.get("/console/prices/explain", query_string={"order": order_no, "sku": "SKU-VIN"},
                         headers=HTML).get_data(as_text=True).split("按现在的价目表：")[0]
    assert "未记录" not in vinegar and "按目录价" in vinegar
    assert db.session.execute(text("SELECT count(*) FROM order_lines WHERE price_list_id IS NOT NULL")).scalar() == 0
    assert OrderLine.__table__.c.price_list_id.nullable
