"""The catalogue a dealer sees: visibility, its own prices, validity dates, stock levels."""
from datetime import timedelta

import pytest

from app.extensions import db
from app.kernel.clock import business_today
from app.pricing.models import PriceList, PriceListItem
from tests.factories import add, auth, set_stock
from tests.helpers import MP


def products(client, user, **params):
    r = client.get(f"{MP}/products", headers=auth(user), query_string=params)
    assert r.status_code == 200, r.json
    return r.json


def by_code(page):
    return {item["code"]: item for item in page["items"]}


def test_each_dealer_sees_its_own_price(client, world):
    a = by_code(products(client, world.a_buyer))
    b = by_code(products(client, world.b_owner))
    assert (a["SKU-COLA"]["price_fen"], a["SKU-COLA"]["price_source"]) == (4000, "dealer")
    assert (b["SKU-COLA"]["price_fen"], b["SKU-COLA"]["price_source"]) == (4500, "tier")
    assert a["SKU-COLA"]["list_price_fen"] == b["SKU-COLA"]["list_price_fen"] == 4800
    assert (a["SKU-SOY"]["price_fen"], b["SKU-SOY"]["price_fen"]) == (2299, 2599)


def test_expired_and_future_price_lists_do_not_count(client, world):
    # the gold list that expired 31 days ago priced tea at 1 yuan
    assert by_code(products(client, world.a_buyer))["SKU-TEA"]["price_fen"] == 3600
    future = add(PriceList(name="下月价", kind="tier", tier_id=world.gold.id, valid_from=business_today() + timedelta(days=40)))
    add(PriceListItem(price_list_id=future.id, sku_id=world.vinegar.id, price_fen=1))
    db.session.commit()
    assert by_code(products(client, world.a_buyer))["SKU-VIN"]["price_fen"] == 1999


def test_visibility_rules_hide_skus(client, world):
    a = by_code(products(client, world.a_buyer))
    b = by_code(products(client, world.b_owner))
    assert "SKU-GIFT" in a and "SKU-GIFT" not in b        # allowed for gold only
    assert "SKU-LOCAL" in a and "SKU-LOCAL" not in b      # denied in Shanghai
    assert "SKU-OLD" not in a and "SKU-OLD" not in b      # inactive
    assert client.get(f"{MP}/products/{world.gift.id}", headers=auth(world.b_owner)).status_code == 404
    assert client.get(f"{MP}/products/{world.gift.id}", headers=auth(world.a_buyer)).status_code == 200


def test_stock_levels(client, world):
    set_stock(world.soy, world.wh_south, 5)       # below low_stock_qty 10
    set_stock(world.vinegar, world.wh_south, 0)
    db.session.commit()
    items = by_code(products(client, world.a_buyer))
    assert items["SKU-SOY"]["stock"] == {"available": 5, "level": "low"}
    assert items["SKU-VIN"]["stock"] == {"available": 0, "level": "out"}
    assert items["SKU-COLA"]["stock"] == {"available": 150, "level": "in_stock"}


def test_filter_search_and_pages(client, world):
    sauces = products(client, world.a_buyer, category_id=world.sauces.id)
    assert {i["code"] for i in sauces["items"]} == {"SKU-SOY", "SKU-VIN", "SKU-LOCAL"}
    assert {i["code"] for i in products(client, world.a_buyer, q="cola")["items"]} == {"SKU-COLA"}
    assert products(client, world.a_buyer, q="%")["total"] == 0   # LIKE wildcards are literal
    first = products(client, world.a_buyer, page=1, page_size=2)
    second = products(client, world.a_buyer, page=2, page_size=2)
    assert first["total"] == second["total"] == 6
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}
    assert (first["page"], first["page_size"]) == (1, 2)


def test_scrolling_with_after_walks_the_same_pages_as_page_numbers(on_both):
    """`next_after` opens the next page after the last SKU shown (keyset): the same pages,
    in the same order, as ?page=N, with or without a filter; null on the last page."""
    client, world = on_both
    for filters in ({}, {"category_id": world.sauces.id}):
        by_number = []
        for n in (1, 2, 3, 4):
            page = products(client, world.a_buyer, page=n, page_size=2, **filters)
            by_number.append([i["id"] for i in page["items"]])
        by_cursor, after, page_numbers = [], None, []
        while True:
            page = products(client, world.a_buyer, page_size=2, **filters, **({"after": after} if after else {}))
            by_cursor.append([i["id"] for i in page["items"]])
            page_numbers.append(page["page"])
            after = page["next_after"]
            if after is None:
                break
        assert by_cursor == [ids for ids in by_number if ids]
        assert page_numbers == list(range(1, len(by_cursor) + 1))
        assert page["total"] == sum(map(len, by_cursor))


def test_a_product_added_while_scrolling_does_not_shift_the_pages(client, world):
    from app.catalog.models import Sku
    from app.catalog.service import invalidate_catalogue

    first = products(client, world.a_buyer, page_size=4)  # the drinks, then the first sauce
    assert first["items"][-1]["category_id"] == world.sauces.id
    add(Sku(code="SKU-AAA", name="新品", spec="1L", unit="箱", pack_size=1, moq=1, step=1,
            list_price_fen=100, category_id=world.drinks.id, status="active"))
    db.session.commit()
    invalidate_catalogue()
    by_offset = products(client, world.a_buyer, page=2, page_size=4)
    by_cursor = products(client, world.a_buyer, page_size=4, after=first["next_after"])
    # the new drink sorts before page 1's last SKU: OFFSET shows that SKU again on page 2,
    # the cursor starts right after it
    assert first["items"][-1]["id"] in {i["id"] for i in by_offset["items"]}
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in by_cursor["items"]}
    assert by_cursor["page"] == 2 and by_cursor["next_after"] is None


@pytest.mark.parametrize("params, field", [
    ({"after": "abc"}, "after"),
    ({"after": "2.1"}, "after"),
    ({"after": "0.1.1"}, "after"),
    ({"after": "2.1.1", "page": "2"}, "page"),
])
def test_bad_after_is_422_in_chinese(client, world, params, field):
    r = client.get(f"{MP}/products", headers=auth(world.a_buyer), query_string=params)
    assert r.status_code == 422
    assert field in str(r.json["error"]["details"])
    assert any("\u4e00" <= ch <= "\u9fff" for ch in str(r.json["error"]["details"]))


def test_product_fields(client, world):
    item = client.get(f"{MP}/products/{world.tea.id}", headers=auth(world.a_buyer)).json
    assert {k: item[k] for k in ("id", "moq", "step", "unit", "pack_size")} == {
        "id": world.tea.id, "moq": 5, "step": 5, "unit": "箱", "pack_size": 1}


def test_categories(client, world):
    r = client.get(f"{MP}/categories", headers=auth(world.a_buyer))
    assert [c["name"] for c in r.json["items"]] == ["饮料", "调味品"]


def test_preview_lists_problems_without_writing(client, world):
    from tests.helpers import reserved

    r = client.post(f"{MP}/checkout/preview", headers=auth(world.a_buyer), json={
        "lines": [{"sku_id": world.cola.id, "qty": 2}, {"sku_id": world.tea.id, "qty": 4}],
    })
    assert r.status_code == 200
    body = r.json
    assert body["ok"] is False
    assert body["totals"]["total_fen"] == 2 * 4000 + 4 * 3600
    assert {p["code"] for p in body["problems"]} == {"below_moq", "not_step_multiple"}
    assert body["address"]["is_default"] is True
    assert reserved(world.cola) == 0


def test_preview_reports_credit(client, world):
    from app.funds.models import CreditAccount

    db.session.get(CreditAccount, world.dealer_a.id).credit_limit_fen = 100
    db.session.commit()
    body = client.post(f"{MP}/checkout/preview", headers=auth(world.a_buyer),
                       json={"lines": [{"sku_id": world.cola.id, "qty": 1}]}).json
    assert body["ok"] is False
    assert body["problems"][0]["code"] == "credit_limit_exceeded"
    assert body["credit"]["available_fen"] == 100


def test_cart_prices_and_updates(client, world):
    h = auth(world.a_buyer)
    assert client.put(f"{MP}/cart/items/{world.cola.id}", headers=h, json={"qty": 2}).status_code == 200
    r = client.put(f"{MP}/cart/items/{world.tea.id}", headers=h, json={"qty": 3})
    assert r.status_code == 200
    cart = r.json
    assert [(i["sku_id"], i["qty"], i["unit_price_fen"]) for i in cart["items"]] == [
        (world.cola.id, 2, 4000), (world.tea.id, 3, 3600)]
    assert cart["totals"]["total_fen"] == 8000 + 10800
    assert {p["code"] for p in cart["problems"]} == {"below_moq", "not_step_multiple"}
    cart = client.put(f"{MP}/cart/items/{world.tea.id}", headers=h, json={"qty": 5}).json
    assert cart["problems"] == []
    cart = client.delete(f"{MP}/cart/items/{world.cola.id}", headers=h).json
    assert [i["sku_id"] for i in cart["items"]] == [world.tea.id]
    assert client.delete(f"{MP}/cart/items/{world.cola.id}", headers=h).status_code == 404


def test_cart_is_per_user(client, world):
    client.put(f"{MP}/cart/items/{world.cola.id}", headers=auth(world.a_buyer), json={"qty": 2})
    assert client.get(f"{MP}/cart", headers=auth(world.a_owner)).json["items"] == []


def test_hidden_sku_cannot_go_in_cart(client, world):
    r = client.put(f"{MP}/cart/items/{world.gift.id}", headers=auth(world.b_owner), json={"qty": 1})
    assert r.status_code == 404


@pytest.mark.postgres
def test_catalogue_numbers_are_json_integers_on_postgresql(pg_client, pg_world):
    """PostgreSQL sums BIGINT as NUMERIC; stock and prices must still be JSON integers."""
    page = pg_client.get(f"{MP}/products", headers=auth(pg_world.a_buyer)).json
    for item in page["items"]:
        for key in ("price_fen", "list_price_fen", "id", "moq", "step"):
            assert type(item[key]) is int, (key, item[key])
        assert type(item["stock"]["available"]) is int
    one = pg_client.get(f"{MP}/products/{pg_world.cola.id}", headers=auth(pg_world.a_buyer)).json
    assert one["stock"] == {"available": 150, "level": "in_stock"}


def test_api_answers_never_touch_the_flask_session(client, world):
    r = client.get(f"{MP}/products", headers=auth(world.a_buyer))
    assert r.status_code == 200
    assert "Set-Cookie" not in r.headers and "Cookie" not in r.headers.get("Vary", "")
