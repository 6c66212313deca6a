"""Returns (after-sales): dealers ask to send back shipped goods with photos; staff approve or
reject (or the dealer withdraws), the warehouse receives the goods back into stock, all at once
or in parts, and what was received is refunded through the ledger (tests/test_refunds.py
covers the money in depth)."""
import io
import re

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.extensions import db
from app.funds.models import LedgerEntry
from app.inventory.models import Stock
from app.notify.models import DealerMessage, Outbox
from app.orders import approval as orders
from app.orders import closing
from app.orders.models import Order
from app.orders.shipments import ship_order
from app.returns import service as returns
from app.returns.models import ReturnEvent, ReturnLine, ReturnPhoto, ReturnRequest
from tests.factories import auth
from tests.helpers import HTML, MP, csrf, submit, subscribed
from tests.helpers import console_login as login

# --- helpers ---------------------------------------------------------------------------------


def png(color=(200, 30, 30)):
    out = io.BytesIO()
    Image.new("RGB", (24, 16), color).save(out, format="PNG")
    return out.getvalue()


def upload(client, user, color=(200, 30, 30)):
    r = client.post(f"{MP}/uploads", headers=auth(user), data={"file": (io.BytesIO(png(color)), "a.png", "image/png")},
                    content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    return r.json["id"]


def place_and_approve(client, world, lines, user=None):
    user = user or world.a_buyer
    r = submit(client, auth(user), [{"sku_id": sku.id, "qty": qty} for sku, qty in lines])
    assert r.status_code == 201, r.json
    order_no = r.json["order_no"]
    orders.approve_order(staff=world.rep, order_no=order_no)
    return order_no


def ship(staff, order_no, shipped, tracking_no="SF1000001"):
    """Ship {sku: qty} of the order through the shipment service."""
    order = db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()
    by_sku = {line.sku_id: line.id for line in order.lines}
    ship_order(staff=staff["warehouse"], order_no=order_no, quantities={by_sku[s.id]: q for s, q in shipped.items()},
               carrier="顺丰速运", tracking_no=tracking_no)


@pytest.fixture
def shipped(client, world, staff):
    """Dealer A's order of 10 cola and 5 soy, all shipped."""
    order_no = place_and_approve(client, world, [(world.cola, 10), (world.soy, 5)])
    ship(staff, order_no, {world.cola: 10, world.soy: 5})
    return order_no


def ask(client, user, order_no, lines, reason="外箱破损", photo_ids=()):
    return client.post(f"{MP}/orders/{order_no}/returns", headers=auth(user),
                       json={"lines": [{"sku_id": s.id, "qty": q} for s, q in lines], "reason": reason,
                             "photo_ids": list(photo_ids)})


def token(client):
    """The signed-in session's CSRF token, from whatever page the console opens with."""
    page = client.get("/console/", headers=HTML, follow_redirects=True).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def counts():
    db.session.expire_all()
    return tuple(
        db.session.execute(select(func.count()).select_from(model)).scalar_one()
        for model in (ReturnRequest, ReturnLine, ReturnPhoto, ReturnEvent, AuditEntry, DealerMessage, Outbox)
    )


def on_hand(sku, warehouse):
    db.session.expire_all()
    row = db.session.get(Stock, (sku.id, warehouse.id))
    return None if row is None else row.on_hand


def current(return_id):
    db.session.expire_all()
    return db.session.get(ReturnRequest, return_id)


# --- the dealer files a request ---------------------------------------------------------------

def test_a_dealer_returns_shipped_goods_with_photos(clock, client, world, staff, shipped):
    # The kernel clock stands still, so the two reads below sign their photo URLs alike.
    photos = [upload(client, world.a_buyer), upload(client, world.a_buyer, (0, 0, 255))]
    r = ask(client, world.a_buyer, shipped, [(world.cola, 3), (world.soy, 1)], photo_ids=photos)
    assert r.status_code == 201, r.json
    body = r.json
    assert body["return_no"] == f"RT{shipped[2:]}-1" and body["order_no"] == shipped
    assert body["status"] == "pending" and body["status_label"] == "待审核"
    by_sku = {line["sku_id"]: line for line in body["lines"]}
    # Priced at what the dealer paid: the dealer-specific 40.00 for cola, the gold tier's 22.99 for soy.
    assert by_sku[world.cola.id]["unit_price_fen"] == 4000 and by_sku[world.cola.id]["amount_fen"] == 12000
    assert by_sku[world.soy.id]["amount_fen"] == 2299
    assert body["refund_fen"] == 14299 and body["refund_status"] is None
    assert [p["id"] for p in body["photos"]] == photos
    assert all(p["url"].startswith("http://localhost/files/uploads/") for p in body["photos"])
    assert client.get(body["photos"][0]["url"].replace("http://localhost", "")).data == png()
    assert [(e["from_status"], e["to_status"], e["actor_type"]) for e in body["events"]] == [(None, "pending", "dealer_user")]
    # Listed and readable by the dealer's other users too.
    listed = client.get(f"{MP}/returns", headers=auth(world.a_owner)).json
    assert listed["total"] == 1 and listed["items"][0]["return_no"] == body["return_no"]
    assert client.get(f"{MP}/returns/{body['id']}", headers=auth(world.a_viewer)).json == body


def test_the_rep_is_told_on_wecom_that_a_return_waits(client, world, staff, shipped):
    r = ask(client, world.a_buyer, shipped, [(world.cola, 2)])
    row = db.session.execute(select(Outbox).where(Outbox.event == "return_requested")).scalar_one()
    assert row.channel == "wecom_app" and row.recipient == "WangYeWu" and row.ref_type == "return"
    content = row.payload["text"]["content"]
    assert r.json["return_no"] in content and "外箱破损" in content and "¥80.00" in content


@pytest.mark.parametrize("stage", ["pending_approval", "approved", "cancelled"])
def test_returns_need_a_shipment(client, world, staff, stage):
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 2}])
    order_no = r.json["order_no"]
    if stage == "approved":
        orders.approve_order(staff=world.rep, order_no=order_no)
    elif stage == "cancelled":
        closing.cancel_order(user=world.a_buyer, order_no=order_no)
    before = counts()
    r = ask(client, world.a_buyer, order_no, [(world.cola, 1)])
    assert r.status_code == 409 and r.json["error"]["code"] == "order_not_returnable"
    assert "发货后才能申请退货" in r.json["error"]["message"]
    assert counts() == before


def test_at_most_shipped_minus_already_asked_for_can_be_returned(client, world, staff):
    order_no = place_and_approve(client, world, [(world.cola, 10)])
    ship(staff, order_no, {world.cola: 6})  # partially shipped: 4 still in the warehouse
    assert ask(client, world.a_buyer, order_no, [(world.cola, 7)]).json["error"]["details"]["problems"][0][
        "returnable"] == 6
    first = ask(client, world.a_buyer, order_no, [(world.cola, 4)])
    assert first.status_code == 201
    before = counts()
    r = ask(client, world.a_buyer, order_no, [(world.cola, 3)])
    assert r.status_code == 422 and r.json["error"]["code"] == "return_invalid"
    problem = r.json["error"]["details"]["problems"][0]
    assert problem["code"] == "exceeds_returnable" and problem["returnable"] == 2 and problem["requested"] == 3
    assert counts() == before
    # A SKU listed twice counts once, its quantities added.
    r = ask(client, world.a_buyer, order_no, [(world.cola, 1), (world.cola, 2)])
    assert r.status_code == 422 and r.json["error"]["details"]["problems"][0]["requested"] == 3
    # Once the first request is rejected, its units may be asked for again.
    returns.reject_return(staff=world.rep, return_id=first.json["id"], reason="照片看不出破损")
    second = ask(client, world.a_buyer, order_no, [(world.cola, 6)])
    assert second.status_code == 201 and second.json["return_no"].endswith("-2")


def test_every_problem_is_reported_at_once(client, world, staff, shipped):
    before = counts()
    r = ask(client, world.a_buyer, shipped, [(world.tea, 5), (world.cola, 11), (world.soy, 5)])
    assert r.status_code == 422
    problems = {p["sku_id"]: p["code"] for p in r.json["error"]["details"]["problems"]}
    assert problems == {world.tea.id: "sku_not_in_order", world.cola.id: "exceeds_returnable"}
    assert counts() == before


@pytest.mark.parametrize("body,field", [
    ({"lines": [], "reason": "破损"}, "lines"),
    ({"lines": [{"sku_id": 1, "qty": 0}], "reason": "破损"}, "lines"),
    ({"lines": [{"sku_id": 1, "qty": 1}]}, "reason"),
    ({"lines": [{"sku_id": 1, "qty": 1}], "reason": ""}, "reason"),
    ({"lines": [{"sku_id": 1, "qty": 1}], "reason": "破损", "photo_ids": list(range(1, 11))}, "photo_ids"),
    ({"lines": [{"sku_id": 1, "qty": 1}], "reason": "破损", "photo_ids": ["1"]}, "photo_ids"),
])
def test_bad_requests_are_422_in_chinese(client, world, staff, shipped, body, field):
    before = counts()
    r = client.post(f"{MP}/orders/{shipped}/returns", headers=auth(world.a_buyer), json=body)
    assert r.status_code == 422 and field in r.json["error"]["details"]["fields"]
    assert counts() == before


def test_a_reason_of_only_spaces_is_refused(client, world, staff, shipped):
    r = ask(client, world.a_buyer, shipped, [(world.cola, 1)], reason="   ")
    assert r.status_code == 422 and r.json["error"]["code"] == "reason_required"


def test_photos_must_be_the_dealers_own_uploads(client, world, staff, shipped):
    mine = upload(client, world.a_buyer)
    theirs = upload(client, world.b_owner)
    before = counts()
    r = ask(client, world.a_buyer, shipped, [(world.cola, 1)], photo_ids=[mine, theirs, 999999])
    assert r.status_code == 422 and r.json["error"]["code"] == "photo_not_found"
    assert r.json["error"]["details"]["photo_ids"] == [theirs, 999999]
    assert counts() == before


def test_a_viewer_cannot_file_a_return(client, world, staff, shipped):
    before = counts()
    r = ask(client, world.a_viewer, shipped, [(world.cola, 1)])
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden_role"
    assert counts() == before


def test_a_dealer_never_sees_or_uses_another_dealers_returns(client, world, staff, shipped):
    mine = ask(client, world.a_buyer, shipped, [(world.cola, 1)]).json
    # Dealer B: A's return is as missing as a return that does not exist; A's order too.
    assert client.get(f"{MP}/returns/{mine['id']}", headers=auth(world.b_owner)).status_code == 404
    assert client.get(f"{MP}/returns/999999", headers=auth(world.b_owner)).json["error"]["code"] == "return_not_found"
    assert client.get(f"{MP}/returns", headers=auth(world.b_owner)).json["total"] == 0
    before = counts()
    r = ask(client, world.b_owner, shipped, [(world.cola, 1)])
    assert r.status_code == 404 and r.json["error"]["code"] == "order_not_found"
    assert counts() == before
    assert client.get(f"{MP}/returns", headers={}).status_code == 401


def test_the_list_filters_by_status_and_pages(client, world, staff, shipped):
    first = ask(client, world.a_buyer, shipped, [(world.cola, 1)]).json
    ask(client, world.a_buyer, shipped, [(world.soy, 1)])
    returns.approve_return(staff=world.rep, return_id=first["id"])
    got = client.get(f"{MP}/returns?status=approved", headers=auth(world.a_buyer)).json
    assert [i["id"] for i in got["items"]] == [first["id"]]
    got = client.get(f"{MP}/returns?page_size=1&page=2", headers=auth(world.a_buyer)).json
    assert got["total"] == 2 and [i["id"] for i in got["items"]] == [first["id"]]
    assert client.get(f"{MP}/returns?status=lost", headers=auth(world.a_buyer)).status_code == 422


# --- staff: approve, reject, receive -----------------------------------------------------------

def test_approve_then_receive_puts_the_goods_back_in_stock(client, world, staff, shipped):
    ret = ask(client, world.a_buyer, shipped, [(world.cola, 3), (world.soy, 2)]).json
    cola_before, soy_before = on_hand(world.cola, world.wh_east), on_hand(world.soy, world.wh_east)
    assert soy_before is None  # no soy row in the east warehouse yet

    login(client, "rep1")
    r = client.post(f"/console/returns/{ret['id']}/approve", headers=HTML,
                    data={"csrf_token": csrf(client, f"/console/returns/{ret['id']}"), "reason": "请走顺丰到付"})
    assert r.status_code == 302
    assert current(ret["id"]).status == "approved"
    client.post("/console/logout", data={"csrf_token": token(client)})

    login(client, "cang")
    page = client.get(f"/console/returns/{ret['id']}", headers=HTML).get_data(as_text=True)
    assert "确认收货入库" in page and "华东仓" in page and "同意退货" not in page
    # The warehouse the goods left from is offered first.
    assert f'value="{world.wh_south.id}" selected' in page
    r = client.post(f"/console/returns/{ret['id']}/receive", headers=HTML,
                    data={"csrf_token": csrf(client, f"/console/returns/{ret['id']}"), "warehouse_id": world.wh_east.id})
    assert r.status_code == 302
    page = client.get(r.headers["Location"], headers=HTML).get_data(as_text=True)
    assert "退货已入库" in page and "已收货入库" in page

    assert on_hand(world.cola, world.wh_east) == cola_before + 3
    assert on_hand(world.soy, world.wh_east) == 2
    done = current(ret["id"])
    assert done.status == "received" and done.warehouse_id == world.wh_east.id
    # A credit order: the refund is a credit note on the receivable, done at once.
    assert done.refund_status == "refunded" and done.refund_fen == done.refunded_fen == 3 * 4000 + 2 * 2299
    note = db.session.execute(select(LedgerEntry).where(LedgerEntry.ref_type == "refund")).scalar_one()
    assert (note.account, note.amount_fen, note.dealer_id) == ("receivable", -16598, world.dealer_a.id)
    assert [(e.from_status, e.to_status, e.actor_name) for e in done.events] == [
        (None, "pending", "buyer"), ("pending", "approved", "王业务"), ("approved", "received", "仓管")]
    audit = db.session.execute(select(AuditEntry).where(AuditEntry.entity_type == "return")
                               .order_by(AuditEntry.id)).scalars().all()
    assert [(a.action, a.actor_name) for a in audit] == [("return.approve", "王业务"), ("return.receive", "仓管")]
    assert audit[1].before["on_hand"] == {"SKU-COLA": cola_before, "SKU-SOY": 0}
    assert audit[1].after["on_hand"] == {"SKU-COLA": cola_before + 3, "SKU-SOY": 2}
    # The dealer reads both steps in the mini-program's message list.
    messages = client.get(f"{MP}/messages", headers=auth(world.a_buyer)).json["items"]
    events = [m["event"] for m in messages]
    assert events[:2] == ["return_received", "return_approved"]
    assert messages[0]["page"] == f"pages/return/detail?id={ret['id']}"
    assert "¥165.98" in messages[0]["body"]
    detail = client.get(f"{MP}/returns/{ret['id']}", headers=auth(world.a_buyer)).json
    assert detail["status"] == "received" and detail["decision_reason"] == "请走顺丰到付"


def test_reject_needs_a_reason_which_the_dealer_reads(client, world, staff, shipped):
    ret = ask(client, world.a_buyer, shipped, [(world.cola, 3)]).json
    login(client, "boss")
    form_token = csrf(client, f"/console/returns/{ret['id']}")
    before = counts()
    r = client.post(f"/console/returns/{ret['id']}/reject", headers=HTML, data={"csrf_token": form_token, "reason": " "})
    assert r.status_code == 302
    assert "拒绝退货需要填写原因" in client.get(r.headers["Location"], headers=HTML).get_data(as_text=True)
    assert counts() == before and current(ret["id"]).status == "pending"
    client.post(f"/console/returns/{ret['id']}/reject", headers=HTML, data={"csrf_token": form_token, "reason": "超过退货期限"})
    assert current(ret["id"]).status == "rejected"
    entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "return.reject")).scalar_one()
    assert entry.reason == "超过退货期限" and entry.entity_id == ret["return_no"]
    message = client.get(f"{MP}/messages", headers=auth(world.a_buyer)).json["items"][0]
    assert message["event"] == "return_rejected" and "超过退货期限" in message["body"]
    # Decided is decided: a second decision is a conflict and changes nothing.
    before = counts()
    r = client.post(f"/console/returns/{ret['id']}/approve", headers=HTML, data={"csrf_token": form_token})
    assert "不能同意" in client.get(r.headers["Location"], headers=HTML).get_data(as_text=True)
    assert counts() == before and current(ret["id"]).status == "rejected"


def test_goods_are_received_once_and_only_after_approval(client, world, staff, shipped):
    ret = ask(client, world.a_buyer, shipped, [(world.cola, 2)]).json
    cola = on_hand(world.cola, world.wh_south)
    with pytest.raises(Exception) as refused:
        returns.receive_return(staff=staff["warehouse"], return_id=ret["id"], warehouse_id=world.wh_south.id)
    assert refused.value.status == 409
    returns.approve_return(staff=staff["admin"], return_id=ret["id"])
    returns.receive_return(staff=staff["warehouse"], return_id=ret["id"], warehouse_id=world.wh_south.id)
    with pytest.raises(Exception) as again:
        returns.receive_return(staff=staff["admin"], return_id=ret["id"], warehouse_id=world.wh_south.id)
    assert again.value.status == 409
    assert on_hand(world.cola, world.wh_south) == cola + 2


def test_an_unknown_warehouse_changes_nothing(client, world, staff, shipped):
    ret = ask(client, world.a_buyer, shipped, [(world.cola, 2)]).json
    returns.approve_return(staff=staff["admin"], return_id=ret["id"])
    login(client, "cang")
    form_token = csrf(client, f"/console/returns/{ret['id']}")
    before, stock = counts(), on_hand(world.cola, world.wh_south)
    for bad in ("999999", "", "abc", "-1"):
        r = client.post(f"/console/returns/{ret['id']}/receive", headers=HTML, data={"csrf_token": form_token, "warehouse_id": bad})
        assert r.status_code == 302
    assert counts() == before and on_hand(world.cola, world.wh_south) == stock
    assert current(ret["id"]).status == "approved"


def test_a_failure_half_way_through_receiving_leaves_nothing_written(app, client, world, staff, shipped):
    ret = ask(client, world.a_buyer, shipped, [(world.cola, 2), (world.soy, 1)]).json
    returns.approve_return(staff=staff["admin"], return_id=ret["id"])
    before, cola, soy = counts(), on_hand(world.cola, world.wh_south), on_hand(world.soy, world.wh_south)

    def boom(*args, **kwargs):
        raise RuntimeError("notification table unavailable")

    with subscribed(app, "return.changed", boom), pytest.raises(RuntimeError):
        returns.receive_return(staff=staff["warehouse"], return_id=ret["id"], warehouse_id=world.wh_south.id)
    assert counts() == before
    assert (on_hand(world.cola, world.wh_south), on_hand(world.soy, world.wh_south)) == (cola, soy)
    assert current(ret["id"]).status == "approved" and current(ret["id"]).refund_status is None


def test_a_subscribe_message_is_queued_when_the_brand_configured_a_template(client, app, world, staff, shipped):
    app.config["WECHAT_SUBSCRIBE_TEMPLATES"] = {**app.config["WECHAT_SUBSCRIBE_TEMPLATES"],
                                                "return_approved": "tmpl-return-ok"}
    r = client.post(f"{MP}/subscriptions", headers=auth(world.a_buyer), json={"template_ids_accepted": ["tmpl-return-ok"]})
    assert r.status_code == 200, r.json
    ret = ask(client, world.a_buyer, shipped, [(world.cola, 1)]).json
    returns.approve_return(staff=world.rep, return_id=ret["id"])
    row = db.session.execute(select(Outbox).where(Outbox.event == "return_approved")).scalar_one()
    assert row.channel == "mp_subscribe" and row.recipient == world.a_buyer.openid
    assert row.ref_type == "return" and row.ref_id == ret["id"]
    assert row.dedupe_key == f"return:{ret['id']}:approved:mp:{world.a_buyer.id}"
    assert row.payload["page"] == f"pages/return/detail?id={ret['id']}"
    assert row.payload["data"]["character_string1"]["value"] == shipped
    assert row.payload["data"]["amount3"]["value"] == "40.00元"


# --- roles, scope, CSRF ------------------------------------------------------------------------

def test_the_console_list_shows_what_each_role_may_see(client, world, staff, shipped):
    ret = ask(client, world.a_buyer, shipped, [(world.cola, 1)]).json
    for username in ("boss", "rep1", "cang", "money"):
        login(client, username)
        page = client.get("/console/returns", headers=HTML)
        assert page.status_code == 200 and ret["return_no"] in page.get_data(as_text=True), username
        detail = client.get(f"/console/returns/{ret['id']}", headers=HTML)
        assert detail.status_code == 200 and "/files/uploads/" not in detail.get_data(as_text=True)
        client.post("/console/logout", data={"csrf_token": token(client)})
    # Another rep: the dealer is not theirs, so the request does not exist for them.
    login(client, "rep2")
    assert ret["return_no"] not in client.get("/console/returns", headers=HTML).get_data(as_text=True)
    assert client.get(f"/console/returns/{ret['id']}", headers=HTML).status_code == 404
    session_token = token(client)
    r = client.post(f"/console/returns/{ret['id']}/approve", headers=HTML, data={"csrf_token": session_token})
    assert r.status_code == 404
    assert current(ret["id"]).status == "pending"
    client.post("/console/logout", data={"csrf_token": session_token})
    login(client, "shi")
    assert client.get("/console/returns", headers=HTML).status_code == 403


def test_the_detail_page_shows_the_photos_at_signed_urls(client, world, staff, shipped):
    photo = upload(client, world.a_buyer)
    ret = ask(client, world.a_buyer, shipped, [(world.cola, 1)], photo_ids=[photo]).json
    login(client, "boss")
    page = client.get(f"/console/returns/{ret['id']}", headers=HTML).get_data(as_text=True)
    src = page.split('<img src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert "/files/uploads/" in src and "e=" in src and "s=" in src
    assert client.get(src.replace("http://localhost", "")).data == png()


@pytest.mark.parametrize("username,action", [
    ("cang", "approve"), ("cang", "reject"), ("money", "approve"), ("money", "receive"), ("rep1", "receive"),
    ("shi", "approve"), ("shi", "receive"),
])
def test_a_role_without_the_right_gets_403_and_nothing_changes(client, world, staff, shipped, username, action):
    ret = ask(client, world.a_buyer, shipped, [(world.cola, 1)]).json
    if action == "receive":
        returns.approve_return(staff=staff["admin"], return_id=ret["id"])
    status, before = current(ret["id"]).status, counts()
    login(client, username)
    r = client.post(f"/console/returns/{ret['id']}/{action}", headers=HTML,
                    data={"csrf_token": token(client), "reason": "x", "warehouse_id": world.wh_south.id})
    assert r.status_code == 403
    assert counts() == before and current(ret["id"]).status == status


@pytest.mark.parametrize("action", ["approve", "reject", "receive"])
def test_posts_without_the_csrf_token_are_refused(client, world, staff, shipped, action):
    ret = ask(client, world.a_buyer, shipped, [(world.cola, 1)]).json
    if action == "receive":
        returns.approve_return(staff=staff["admin"], return_id=ret["id"])
    status, before = current(ret["id"]).status, counts()
    login(client, "boss")
    r = client.post(f"/console/returns/{ret['id']}/{action}", headers=HTML,
                    data={"reason": "x", "warehouse_id": world.wh_south.id})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    assert counts() == before and current(ret["id"]).status == status


# --- concurrency (PostgreSQL row locks) ------------------------------------------------------

@pytest.mark.postgres
def test_concurrent_requests_never_ask_for_more_than_was_shipped(pg_app, pg_world):
    from app.staff.service import create_staff
    from tests.test_concurrency import run_concurrently

    w = pg_world
    clerk = create_staff(username="cang", name="仓管", role="warehouse", password="correct-horse-9")
    client = pg_app.test_client()
    order_no = place_and_approve(client, w, [(w.cola, 10)])
    ship({"warehouse": clerk}, order_no, {w.cola: 10})

    headers = auth(w.a_buyer)  # a token needs the app context, which the threads don't have

    def job(client):
        r = client.post(f"{MP}/orders/{order_no}/returns", headers=headers,
                        json={"lines": [{"sku_id": w.cola.id, "qty": 3}], "reason": "临期"})
        return r.status_code, r.get_json()

    results = run_concurrently(pg_app, [job] * 8)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(status for status, _ in results) == [201] * 3 + [422] * 5
    db.session.expire_all()
    held = db.session.execute(select(func.sum(ReturnLine.qty))).scalar_one()
    assert held == 9
    numbers = sorted(body["return_no"] for status, body in results if status == 201)
    assert numbers == [f"RT{order_no[2:]}-{i}" for i in (1, 2, 3)]


@pytest.mark.postgres
def test_concurrent_receipts_add_the_goods_to_stock_once(pg_app, pg_world):
    import threading

    from app.staff.service import create_staff

    w = pg_world
    clerk = create_staff(username="cang", name="仓管", role="warehouse", password="correct-horse-9")
    admin = create_staff(username="boss", name="管理员", role="admin", password="correct-horse-9")
    client = pg_app.test_client()
    order_no = place_and_approve(client, w, [(w.cola, 10)])
    ship({"warehouse": clerk}, order_no, {w.cola: 10})
    ret = ask(client, w.a_buyer, order_no, [(w.cola, 4)]).get_json()
    returns.approve_return(staff=admin, return_id=ret["id"])
    before = on_hand(w.cola, w.wh_south)
    barrier, outcomes = threading.Barrier(4), []

    def receive(staff_id):
        with pg_app.app_context():
            from app.staff.models import Staff

            actor = db.session.get(Staff, staff_id)
            barrier.wait()
            try:
                returns.receive_return(staff=actor, return_id=ret["id"], warehouse_id=w.wh_south.id)
                outcomes.append("ok")
            except Exception as exc:
                outcomes.append(getattr(exc, "status", repr(exc)))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=receive, args=(sid,)) for sid in (clerk.id, admin.id, clerk.id, admin.id)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes, key=str) == [409, 409, 409, "ok"]
    assert on_hand(w.cola, w.wh_south) == before + 4
    assert db.session.execute(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == "return.receive")).scalar_one() == 1


def test_an_unbound_wechat_user_gets_403_not_bound_on_every_return_route(client, world, staff, shipped):
    from app.dealers.identity import issue_token

    ret = ask(client, world.a_buyer, shipped, [(world.cola, 1)]).json
    headers = {"Authorization": f"Bearer {issue_token('o-never-bound-0002')}"}
    before = counts()
    for method, path, body in (
        ("GET", f"/returns/{ret['id']}", None), ("GET", "/returns", None),
        ("POST", f"/orders/{shipped}/returns", {"lines": [{"sku_id": world.cola.id, "qty": 1}], "reason": "破损"}),
    ):
        r = client.open(MP + path, method=method, headers=headers, json=body)
        assert (r.status_code, r.json["error"]["code"]) == (403, "not_bound"), path
    assert counts() == before
