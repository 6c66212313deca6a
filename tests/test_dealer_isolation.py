"""A dealer never sees another dealer's data; a foreign id answers 404.

dealer_b's owner probes everything dealer_a owns: A's order numbers, A's address ids,
the SKUs only A may see (world.gift is gold-tier only, world.local is denied in the
Shanghai region 310000 where B sits) and A's cart. A foreign id must be answered exactly
like an id that does not exist — same status, same error code, same message — so B
cannot even learn that it exists, and nothing of A's changes.

Also here: a WeChat user without a dealer account gets 403 `not_bound` on every route
but login/bind, and a read-only viewer can read but not order, edit the cart or add
addresses. The endpoint tables below are checked against the app's URL map, so a new
route that is missing from them fails `test_endpoint_table_covers_every_mini_program_route`.
"""
import re
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.dealers.models import Address, DealerUser
from app.dealers.identity import create_invite, issue_token
from app.extensions import db
from app.funds.models import CreditAccount, CreditEntry
from app.inventory.models import Reservation, Stock
from app.orders.models import CartItem, IdempotencyKey, Order, OrderEvent
from tests.factories import auth

MP = "/api/mp/v1"
MISSING_ORDER_NO = "SO209901019999"
MISSING_ID = 999_999
CJK = re.compile(r"[\u4e00-\u9fff]")


# --- backends -----------------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request):
    """`client` + `world` on SQLite and (with TEST_DATABASE_URL) on PostgreSQL."""
    if request.param == "sqlite":
        return SimpleNamespace(client=request.getfixturevalue("client"), world=request.getfixturevalue("world"))
    return SimpleNamespace(client=request.getfixturevalue("pg_client"), world=request.getfixturevalue("pg_world"))


# --- helpers --------------------------------------------------------------------------

def call(client, method, path, body=None, headers=None):
    """One mini-program request; POST /orders always carries a fresh Idempotency-Key."""
    headers = dict(headers or {})
    if method == "POST" and path == "/orders":
        headers.setdefault("Idempotency-Key", uuid.uuid4().hex)
    kwargs = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    return client.open(MP + path, method=method, **kwargs)


def error_of(resp):
    body = resp.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, resp.get_data(as_text=True)[:300]
    assert set(body["error"]) == {"code", "message", "details"}
    assert CJK.search(body["error"]["message"]), body
    return body["error"]


def snapshot():
    """Every row a mini-program request could write, as plain sorted values."""
    db.session.rollback()  # read what is committed now, not an older snapshot

    def rows(*columns):
        return sorted((tuple(r) for r in db.session.execute(select(*columns)).all()), key=repr)

    return {
        "orders": rows(Order.order_no, Order.dealer_id, Order.status, Order.credit_held_fen, Order.remark),
        "events": rows(OrderEvent.order_id, OrderEvent.from_status, OrderEvent.to_status),
        "stock": rows(Stock.sku_id, Stock.warehouse_id, Stock.on_hand, Stock.reserved),
        "reservations": rows(Reservation.order_id, Reservation.sku_id, Reservation.warehouse_id, Reservation.qty),
        "credit": rows(CreditAccount.dealer_id, CreditAccount.credit_limit_fen, CreditAccount.held_fen, CreditAccount.receivable_fen),
        "credit_entries": rows(CreditEntry.id),
        "cart": rows(CartItem.user_id, CartItem.sku_id, CartItem.qty),
        "addresses": rows(Address.id, Address.dealer_id, Address.is_default, Address.detail),
        "idempotency_keys": rows(IdempotencyKey.dealer_id, IdempotencyKey.key),
        "users": rows(DealerUser.id, DealerUser.dealer_id, DealerUser.openid, DealerUser.active),
    }


def seed_dealer_a(client, w):
    """Dealer A places an order (cola ×2) and keeps soy ×3 and vinegar ×1 in its cart."""
    a = auth(w.a_buyer)
    r = call(client, "POST", "/orders", {"lines": [{"sku_id": w.cola.id, "qty": 2}]}, a)
    assert r.status_code == 201, r.get_json()
    for sku, qty in ((w.soy, 3), (w.vinegar, 1)):
        assert call(client, "PUT", f"/cart/items/{sku.id}", {"qty": qty}, a).status_code == 200
    return SimpleNamespace(order_no=r.get_json()["order_no"], total_fen=r.get_json()["totals"]["total_fen"])


def reserved_units(sku_id):
    db.session.rollback()
    return sum(r for (r,) in db.session.execute(select(Stock.reserved).where(Stock.sku_id == sku_id)))


def held_fen(dealer_id):
    db.session.rollback()
    return db.session.execute(select(CreditAccount.held_fen).where(CreditAccount.dealer_id == dealer_id)).scalar_one()


# --- foreign ids answer 404 exactly like missing ids ------------------------------------------

# What B asks for, per kind of id: dealer A's own (foreign) and one that does not exist.
FOREIGN = {
    "A's order number": lambda w, seeded: seeded.order_no,
    "A's address": lambda w, seeded: w.addr_a.id,
    "gold-tier-only SKU": lambda w, seeded: w.gift.id,
    "SKU denied in Shanghai": lambda w, seeded: w.local.id,
    "SKU in A's cart": lambda w, seeded: w.soy.id,
}
MISSING = {"A's order number": MISSING_ORDER_NO}


def _line(w, sku_id=None, qty=1):
    return {"sku_id": sku_id or w.cola.id, "qty": qty}


# (route, method, path with {id}, body builder (w, id) or None, kind of id, expected error code)
FOREIGN_ID_CASES = [
    ("GET /orders/<no>", "GET", "/orders/{id}", None, "A's order number", "order_not_found"),
    ("POST /orders/<no>/cancel", "POST", "/orders/{id}/cancel", lambda w, i: {"reason": "不要了"}, "A's order number", "order_not_found"),
    ("POST /orders/<no>/confirm-receipt", "POST", "/orders/{id}/confirm-receipt", None, "A's order number",
     "order_not_found"),
    ("POST /checkout/preview address_id", "POST", "/checkout/preview",
     lambda w, i: {"lines": [_line(w)], "address_id": i}, "A's address", "address_not_found"),
    ("POST /orders address_id", "POST", "/orders",
     lambda w, i: {"lines": [_line(w)], "address_id": i}, "A's address", "address_not_found"),
    ("GET /products/<gift>", "GET", "/products/{id}", None, "gold-tier-only SKU", "sku_not_found"),
    ("GET /products/<local>", "GET", "/products/{id}", None, "SKU denied in Shanghai", "sku_not_found"),
    ("PUT /cart/items/<gift>", "PUT", "/cart/items/{id}", lambda w, i: {"qty": 1}, "gold-tier-only SKU", "sku_not_found"),
    ("PUT /cart/items/<local>", "PUT", "/cart/items/{id}", lambda w, i: {"qty": 1}, "SKU denied in Shanghai", "sku_not_found"),
    ("DELETE /cart/items/<A's item>", "DELETE", "/cart/items/{id}", None, "SKU in A's cart", "cart_item_not_found"),
]


def _probe(client, w, case, ident):
    _route, method, path, body, _kind, _code = case
    return call(client, method, path.format(id=ident), body(w, ident) if body else None, auth(w.b_owner))


@pytest.mark.parametrize("case", FOREIGN_ID_CASES, ids=[c[0] for c in FOREIGN_ID_CASES])
def test_foreign_id_answers_404_exactly_like_a_missing_id_and_changes_nothing(backend, case):
    client, w = backend.client, backend.world
    seeded = seed_dealer_a(client, w)
    kind, code = case[4], case[5]
    before = snapshot()

    foreign = _probe(client, w, case, FOREIGN[kind](w, seeded))
    missing = _probe(client, w, case, MISSING.get(kind, MISSING_ID))

    assert foreign.status_code == 404, foreign.get_json()
    assert missing.status_code == 404, missing.get_json()
    assert error_of(foreign)["code"] == error_of(missing)["code"] == code
    assert foreign.get_json() == missing.get_json()  # not a byte of difference to learn from
    assert snapshot() == before


@pytest.mark.parametrize("case", FOREIGN_ID_CASES, ids=[c[0] for c in FOREIGN_ID_CASES])
def test_the_owner_dealer_reaches_the_same_ids(client, world, case):
    """Control for the test above: the ids are real, A itself gets past the lookup."""
    seeded = seed_dealer_a(client, world)
    _route, method, path, body, kind, _code = case
    ident = FOREIGN[kind](world, seeded)
    r = call(client, method, path.format(id=ident), body(world, ident) if body else None, auth(world.a_buyer))
    if path.endswith("/confirm-receipt"):  # A's order is found, but not shipped yet
        assert (r.status_code, r.get_json()["error"]["code"]) == (409, "order_not_shipped")
        return
    assert r.status_code in (200, 201), r.get_json()


def test_b_cancelling_a_order_leaves_it_pending_with_stock_and_credit_held(backend):
    client, w = backend.client, backend.world
    seeded = seed_dealer_a(client, w)
    reserved_before, held_before = reserved_units(w.cola.id), held_fen(w.dealer_a.id)
    assert reserved_before == 2 and held_before == seeded.total_fen

    r = call(client, "POST", f"/orders/{seeded.order_no}/cancel", {"reason": "恶意取消"}, auth(w.b_owner))

    assert r.status_code == 404 and error_of(r)["code"] == "order_not_found"
    order = call(client, "GET", f"/orders/{seeded.order_no}", headers=auth(w.a_buyer)).get_json()
    assert order["status"] == "pending_approval"
    assert [e["to_status"] for e in order["events"]] == ["pending_approval"]
    assert reserved_units(w.cola.id) == reserved_before
    assert held_fen(w.dealer_a.id) == held_before
    assert held_fen(w.dealer_b.id) == 0


def test_b_cannot_use_a_address_to_place_an_order(backend):
    client, w = backend.client, backend.world
    before = snapshot()
    r = call(client, "POST", "/orders", {"lines": [_line(w)], "address_id": w.addr_a.id}, auth(w.b_owner))
    assert r.status_code == 404 and error_of(r)["code"] == "address_not_found"
    assert snapshot() == before


def test_b_cannot_place_an_order_on_a_account_by_naming_a_dealer(client, world):
    before = snapshot()
    r = call(client, "POST", "/orders", {"lines": [_line(world)], "dealer_id": world.dealer_a.id}, auth(world.b_owner))
    assert r.status_code == 422 and error_of(r)["code"] == "validation_error"
    assert "dealer_id" in r.get_json()["error"]["details"]["fields"]
    assert snapshot() == before


# --- SKUs hidden from B in checkout lines ---------------------------------------------------

HIDDEN_FROM_B = ["gift", "local"]  # gold-tier only; denied in region 310000


def _unavailable_problems(resp):
    return [p for p in resp.get_json()["problems"] if p["code"] == "sku_unavailable"]


@pytest.mark.parametrize("hidden", HIDDEN_FROM_B)
def test_preview_reports_a_hidden_sku_as_unavailable_exactly_like_an_unknown_id(backend, hidden):
    client, w = backend.client, backend.world
    sku_id = getattr(w, hidden).id
    b = auth(w.b_owner)
    before = snapshot()

    hidden_r = call(client, "POST", "/checkout/preview", {"lines": [_line(w, sku_id)]}, b)
    unknown_r = call(client, "POST", "/checkout/preview", {"lines": [_line(w, MISSING_ID)]}, b)

    assert hidden_r.status_code == unknown_r.status_code == 200
    assert hidden_r.get_json()["ok"] is False and hidden_r.get_json()["lines"] == []
    [hidden_p], [unknown_p] = _unavailable_problems(hidden_r), _unavailable_problems(unknown_r)
    assert hidden_p["sku_id"] == sku_id
    assert hidden_p["message"].replace(str(sku_id), "<id>") == unknown_p["message"].replace(str(MISSING_ID), "<id>")
    assert hidden_r.get_json()["totals"]["total_fen"] == 0  # not priced, so no price leaks
    # ...while dealer A (gold tier, Guangzhou) can order it.
    a_r = call(client, "POST", "/checkout/preview", {"lines": [_line(w, sku_id)]}, auth(w.a_buyer))
    assert a_r.get_json()["ok"] is True
    assert snapshot() == before


@pytest.mark.parametrize("hidden", HIDDEN_FROM_B)
def test_order_with_a_hidden_sku_answers_422_sku_unavailable_and_writes_nothing(backend, hidden):
    client, w = backend.client, backend.world
    sku_id = getattr(w, hidden).id
    before = snapshot()

    r = call(client, "POST", "/orders", {"lines": [_line(w, sku_id)]}, auth(w.b_owner))

    assert r.status_code == 422
    error = error_of(r)
    assert error["code"] == "order_invalid"
    assert [(p["code"], p["sku_id"]) for p in error["details"]["problems"]] == [("sku_unavailable", sku_id)]
    assert snapshot() == before


# --- lists only ever hold the caller's own rows ------------------------------------------------

def test_order_list_never_includes_another_dealers_orders(backend):
    client, w = backend.client, backend.world
    seeded = seed_dealer_a(client, w)
    b_order = call(client, "POST", "/orders", {"lines": [_line(w)]}, auth(w.b_owner)).get_json()["order_no"]

    for query in ("", "?status=pending_approval", "?page=1&page_size=100"):
        page = call(client, "GET", "/orders" + query, headers=auth(w.b_owner)).get_json()
        assert [o["order_no"] for o in page["items"]] == [b_order]
        assert page["total"] == 1
    a_page = call(client, "GET", "/orders", headers=auth(w.a_viewer)).get_json()
    assert [o["order_no"] for o in a_page["items"]] == [seeded.order_no]


def test_address_lists_show_only_the_callers_own_addresses(backend):
    client, w = backend.client, backend.world
    new = call(client, "POST", "/addresses", {
        "contact_name": "王五", "phone": "13900000003", "region_code": "310100", "detail": "淮海路3号",
    }, auth(w.b_owner))
    assert new.status_code == 201

    b_ids = [a["id"] for a in call(client, "GET", "/addresses", headers=auth(w.b_owner)).get_json()["items"]]
    a_ids = [a["id"] for a in call(client, "GET", "/addresses", headers=auth(w.a_buyer)).get_json()["items"]]
    assert sorted(b_ids) == sorted([w.addr_b.id, new.get_json()["id"]])
    assert a_ids == [w.addr_a.id]
    # and B's new address is as foreign to A as A's is to B
    r = call(client, "POST", "/checkout/preview", {"lines": [_line(w)], "address_id": new.get_json()["id"]}, auth(w.a_buyer))
    assert r.status_code == 404 and error_of(r)["code"] == "address_not_found"


def test_cart_shows_only_the_callers_own_items(backend):
    client, w = backend.client, backend.world
    seed_dealer_a(client, w)
    assert call(client, "PUT", f"/cart/items/{w.tea.id}", {"qty": 5}, auth(w.b_owner)).status_code == 200

    b_cart = call(client, "GET", "/cart", headers=auth(w.b_owner)).get_json()
    assert [i["sku_id"] for i in b_cart["items"]] == [w.tea.id]
    a_cart = call(client, "GET", "/cart", headers=auth(w.a_buyer)).get_json()
    assert sorted(i["sku_id"] for i in a_cart["items"]) == sorted([w.soy.id, w.vinegar.id])


def _all_product_ids(client, headers, query=""):
    ids, page = [], 1
    while True:
        body = call(client, "GET", f"/products?page={page}&page_size=2{query}", headers=headers).get_json()
        ids += [p["id"] for p in body["items"]]
        if page * 2 >= body["total"]:
            assert len(ids) == body["total"]
            return ids
        page += 1


def test_product_list_never_includes_skus_hidden_from_the_dealer(backend):
    client, w = backend.client, backend.world
    b_ids = set(_all_product_ids(client, auth(w.b_owner)))
    a_ids = set(_all_product_ids(client, auth(w.a_buyer)))

    assert b_ids == {w.cola.id, w.tea.id, w.soy.id, w.vinegar.id}
    assert a_ids == b_ids | {w.gift.id, w.local.id}
    # searching by the hidden SKU's code or browsing its category does not reveal it either
    for query in ("&q=SKU-GIFT", "&q=LOCAL", f"&category_id={w.drinks.id}", f"&category_id={w.sauces.id}"):
        assert not set(_all_product_ids(client, auth(w.b_owner), query)) & {w.gift.id, w.local.id, w.retired.id}


def test_every_price_b_sees_is_b_own_never_a_dealer_specific_price(backend):
    client, w = backend.client, backend.world
    b = auth(w.b_owner)
    # cola: A has a dealer price of 4000; B (silver tier) pays the silver price 4500
    listed = {p["id"]: p for p in call(client, "GET", "/products?page_size=100", headers=b).get_json()["items"]}
    detail = call(client, "GET", f"/products/{w.cola.id}", headers=b).get_json()
    preview = call(client, "POST", "/checkout/preview", {"lines": [_line(w, w.cola.id, 2)]}, b).get_json()
    call(client, "PUT", f"/cart/items/{w.cola.id}", {"qty": 2}, b)
    cart = call(client, "GET", "/cart", headers=b).get_json()
    order = call(client, "POST", "/orders", {"lines": [_line(w, w.cola.id, 2)]}, b).get_json()

    assert (listed[w.cola.id]["price_fen"], listed[w.cola.id]["price_source"]) == (4500, "tier")
    assert (detail["price_fen"], detail["price_source"]) == (4500, "tier")
    for priced in (preview["lines"][0], cart["items"][0], order["lines"][0]):
        assert (priced["unit_price_fen"], priced["price_source"]) == (4500, "tier")
    # soy: A's gold-tier price 2299 does not apply to B, who pays the list price
    assert (listed[w.soy.id]["price_fen"], listed[w.soy.id]["price_source"]) == (2599, "list")


def test_me_shows_the_callers_own_dealer_and_credit(backend):
    client, w = backend.client, backend.world
    seeded = seed_dealer_a(client, w)  # A now holds credit for its order

    me = call(client, "GET", "/me", headers=auth(w.b_owner)).get_json()
    assert me["user"]["id"] == w.b_owner.id
    assert me["dealer"]["code"] == "DB01" and me["dealer"]["name"] == w.dealer_b.name
    assert me["dealer"]["tier"]["code"] == "silver" and me["dealer"]["region"]["code"] == "310100"
    assert me["credit"] == {"limit_fen": 10_000_000, "used_fen": 0, "available_fen": 10_000_000}
    a_me = call(client, "GET", "/me", headers=auth(w.a_buyer)).get_json()
    assert a_me["dealer"]["code"] == "DA01" and a_me["credit"]["used_fen"] == seeded.total_fen


def test_same_idempotency_key_from_another_dealer_never_replays_a_order(backend):
    client, w = backend.client, backend.world
    lines = {"lines": [_line(w)]}
    a = call(client, "POST", "/orders", lines, {**auth(w.a_buyer), "Idempotency-Key": "shared-key-0001"})
    b = call(client, "POST", "/orders", lines, {**auth(w.b_owner), "Idempotency-Key": "shared-key-0001"})

    assert a.status_code == b.status_code == 201
    assert "Idempotent-Replayed" not in b.headers
    assert b.get_json()["order_no"] != a.get_json()["order_no"]
    assert b.get_json()["ship_to"]["address"].endswith("南京路2号")  # B's own address, B's own order
    assert call(client, "GET", f"/orders/{b.get_json()['order_no']}", headers=auth(w.a_buyer)).status_code == 404


# --- every authenticated route: unbound WeChat users and read-only viewers -----------------------

# (method, path, body). {sku} is a SKU every dealer sees, {order_no} dealer A's order.
ENDPOINTS = [
    ("POST", "/auth/bind", {"invite_code": "ZZZZZZZZ"}),
    ("GET", "/me", None),
    ("GET", "/categories", None),
    ("GET", "/products", None),
    ("GET", "/products/{sku}", None),
    ("GET", "/cart", None),
    ("PUT", "/cart/items/{sku}", {"qty": 1}),
    ("DELETE", "/cart/items/{sku}", None),
    ("POST", "/checkout/preview", {"lines": [{"sku_id": "{sku}", "qty": 1}]}),
    ("POST", "/orders", {"lines": [{"sku_id": "{sku}", "qty": 1}]}),
    ("GET", "/orders", None),
    ("GET", "/orders/{order_no}", None),
    ("POST", "/orders/{order_no}/cancel", {}),
    ("POST", "/orders/{order_no}/pay", {}),
    ("POST", "/orders/{order_no}/confirm-receipt", None),
    ("GET", "/addresses", None),
    ("POST", "/addresses", {"contact_name": "赵六", "phone": "13700000004", "region_code": "440100", "detail": "体育西路4号"}),
    ("GET", "/subscriptions/templates", None),
    ("POST", "/subscriptions", {"template_ids_accepted": ["demo-tmpl-order-approved"]}),
    ("GET", "/messages", None),
    ("GET", "/account", None),
    ("GET", "/account/ledger", None),
    ("POST", "/uploads", None),
    ("POST", "/orders/{order_no}/returns", {"lines": [{"sku_id": "{sku}", "qty": 1}], "reason": "外箱破损"}),
    ("GET", "/returns", None),
    ("POST", "/payments/offline", {"amount_fen": 100, "transfer_date": "{today}", "voucher_id": MISSING_ID}),
    ("GET", "/payments/offline", None),
    ("GET", "/rebates", None),
    ("GET", "/statements", None),
    ("GET", "/policies", None),
    ("GET", "/materials", None),
]
# Routes whose id needs more than a pending order to be real: tests/test_returns.py and
# tests/test_refunds.py (withdraw) probe them as a foreign dealer, an unbound WeChat user and a viewer.
# So do statements' (tests/test_statements.py) and offline payments' (a voucher upload first): tests/test_offline_payments.py.
COVERED_ELSEWHERE = [("GET", "/returns/{return_id}"), ("POST", "/returns/{return_id}/withdraw"),
                     ("GET", "/payments/offline/{offline_payment_id}"),
                     # a rebate document needs a closed period: tests/test_rebates.py probes it
                     ("GET", "/rebates/{rebate_id}"),
                     ("GET", "/statements/{statement_id}"), ("POST", "/statements/{statement_id}/confirm"),
                     ("POST", "/statements/{statement_id}/dispute"),
                     # tests/test_policies.py: unaddressed, draft, withdrawn and missing policies
                     ("GET", "/policies/{policy_id}"), ("POST", "/policies/{policy_id}/ack")]
# Materials are addressed by audience rather than owned: tests/test_materials.py probes their
# ids as an unaddressed dealer (404 like a missing id), an unbound WeChat user and a viewer.
COVERED_ELSEWHERE += [("GET", "/materials/{material_id}"), ("POST", "/materials/{material_id}/share")]
# A shipment needs an approved and shipped order: tests/test_tracking.py probes it as a foreign
# dealer (404 like a missing id), an unbound WeChat user and a viewer.
COVERED_ELSEWHERE += [("GET", "/shipments/{shipment_id}")]
PUBLIC_ENDPOINTS = [("POST", "/auth/login"), ("GET", "/openapi.json")]

VIEWER_MAY_NOT = {("PUT", "/cart/items/{sku}"), ("DELETE", "/cart/items/{sku}"), ("POST", "/orders"),
                  ("POST", "/orders/{order_no}/cancel"), ("POST", "/orders/{order_no}/pay"),
                  ("POST", "/orders/{order_no}/confirm-receipt"), ("POST", "/addresses"),
                  ("POST", "/uploads"), ("POST", "/orders/{order_no}/returns"), ("POST", "/payments/offline")}


def fill(value, ids):
    """Put real ids into a table entry: "{sku}" -> 1 (a number), "/orders/{order_no}" -> "/orders/SO…"."""
    if isinstance(value, str):
        text = value.format(**ids)
        return int(text) if value.startswith("{") and text.isdigit() else text
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


def _endpoint_request(client, endpoint, ids, headers):
    method, path, body = endpoint
    return call(client, method, fill(path, ids), fill(body, ids), headers)


def endpoint_ids(w, order_no=MISSING_ORDER_NO):
    """Values for the placeholders in ENDPOINTS."""
    from app.kernel.clock import business_today as china_today

    return {"sku": w.cola.id, "order_no": order_no, "return_id": MISSING_ID, "offline_payment_id": MISSING_ID, "rebate_id": MISSING_ID, "statement_id": MISSING_ID, "policy_id": MISSING_ID, "material_id": MISSING_ID,
            "shipment_id": MISSING_ID, "today": china_today().isoformat()}


def test_endpoint_table_covers_every_mini_program_route(app, world):
    adapter = app.url_map.bind("localhost")
    served = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules() if rule.rule.startswith(MP)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    tabled = {
        (adapter.match(MP + fill(path, endpoint_ids(world)), method=method)[0], method)
        for method, path, *_ in ENDPOINTS + COVERED_ELSEWHERE + PUBLIC_ENDPOINTS
    }
    assert tabled == served


def _deactivated_user(w):
    w.a_owner.active = False
    db.session.commit()
    return w.a_owner.openid


IDENTITIES = {
    "openid never bound": lambda w: "o-never-bound-0001",
    "deactivated dealer user": _deactivated_user,
}


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e[1] != "/auth/bind"], ids=lambda e: f"{e[0]} {e[1]}")
def test_unbound_wechat_user_gets_403_not_bound_everywhere_but_login_and_bind(client, world, endpoint, identity):
    headers = {"Authorization": f"Bearer {issue_token(IDENTITIES[identity](world))}"}
    before = snapshot()
    r = _endpoint_request(client, endpoint, endpoint_ids(world), headers)
    assert r.status_code == 403, r.get_json()
    assert error_of(r)["code"] == "not_bound"
    assert snapshot() == before


def test_unbound_wechat_user_can_log_in_and_bind(client, world, wechat):
    login = client.post(f"{MP}/auth/login", json={"code": wechat.mint_code("o-new-dealer-user")})
    assert login.status_code == 200 and login.get_json()["bound"] is False
    headers = {"Authorization": f"Bearer {login.get_json()['token']}"}

    wrong = client.post(f"{MP}/auth/bind", json={"invite_code": "ZZZZZZZZ"}, headers=headers)
    assert wrong.status_code == 404 and error_of(wrong)["code"] == "invite_not_found"  # not 403: binding is allowed
    invite = create_invite(dealer_code="DB01", role="buyer")
    bound = client.post(f"{MP}/auth/bind", json={"invite_code": invite.code}, headers=headers)
    assert bound.status_code == 200, bound.get_json()
    assert bound.get_json()["dealer"]["code"] == "DB01"
    assert client.get(f"{MP}/me", headers=headers).status_code == 200


@pytest.mark.postgres
def test_unbound_wechat_user_gets_403_not_bound_on_postgresql(pg_client, pg_world):
    headers = {"Authorization": f"Bearer {issue_token('o-never-bound-0001')}"}
    for endpoint in ENDPOINTS:
        if endpoint[1] == "/auth/bind":
            continue
        r = _endpoint_request(pg_client, endpoint, endpoint_ids(pg_world), headers)
        assert (r.status_code, error_of(r)["code"]) == (403, "not_bound"), endpoint


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if (e[0], e[1]) in VIEWER_MAY_NOT], ids=lambda e: f"{e[0]} {e[1]}")
def test_viewer_cannot_order_edit_the_cart_or_add_addresses(client, world, endpoint):
    seeded = seed_dealer_a(client, world)
    before = snapshot()
    r = _endpoint_request(client, endpoint, endpoint_ids(world, seeded.order_no), auth(world.a_viewer))
    assert r.status_code == 403, r.get_json()
    assert error_of(r)["code"] == "forbidden_role"
    assert snapshot() == before


@pytest.mark.parametrize(
    "endpoint",
    [e for e in ENDPOINTS if (e[0], e[1]) not in VIEWER_MAY_NOT and e[1] != "/auth/bind"],
    ids=lambda e: f"{e[0]} {e[1]}",
)
def test_viewer_can_read_everything_of_its_own_dealer(client, world, endpoint):
    seeded = seed_dealer_a(client, world)
    r = _endpoint_request(client, endpoint, endpoint_ids(world, seeded.order_no), auth(world.a_viewer))
    assert r.status_code == 200, r.get_json()
    if endpoint[1] == "/orders/{order_no}":
        assert r.get_json()["order_no"] == seeded.order_no  # placed by A's buyer, readable by A's viewer
