"""Shipment tracking through Kuaidi100: a shipment subscribes its waybill (over real HTTP to
the stand-in's /poll, through the outbox, after the shipment's commit), pushes signed with the
salt store the trail once, a bad signature is refused, a 签收 completes the order only with
the brand setting on, and the dealer (only their own) and the console see the trail."""
import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app.dealers.identity import issue_token
from app.extensions import db
from app.integrations import kuaidi100
from app.kernel import settings
from app.notify.models import Outbox
from app.orders import approval
from app.orders.models import Order, OrderEvent
from app.orders.shipments import ship_order
from app.tracking import pushes, subscriptions
from app.tracking.models import ShipmentTracking, TrackingEvent
from tests.factories import auth
from tests.helpers import HTML, MP, console_login, csrf, submit, subscribed

SALT = "test-kuaidi100-salt"
NOTIFY = "/logistics/kuaidi100/notify"


@pytest.fixture
def kd(app, wechat):
    """Kuaidi100 configured against the stand-in; the stand-in's Kuaidi100 side."""
    app.config.update(KUAIDI100_KEY=wechat.kuaidi100.key, KUAIDI100_SALT=SALT,
                      KUAIDI100_URL=f"{wechat.base_url}/poll",
                      KUAIDI100_CALLBACK_URL=f"http://localhost{NOTIFY}")
    return wechat.kuaidi100


def order_with(client, world, qty=2):
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": qty}])
    assert r.status_code == 201, r.get_json()
    order_no = r.get_json()["order_no"]
    approval.approve_order(staff=world.rep, order_no=order_no)
    return order_no


def ship(staff, order_no, qty=None, carrier="顺丰速运", tracking_no="SF1000000001"):
    order = db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()
    line = order.lines[0]
    return ship_order(staff=staff["warehouse"], order_no=order_no, quantities={line.id: qty or line.remaining_qty},
                      carrier=carrier, tracking_no=tracking_no)


def tracking_of(shipment):
    db.session.expire_all()
    return db.session.execute(select(ShipmentTracking).where(ShipmentTracking.shipment_id == shipment.id)).scalar_one()


def trail(shipment):
    db.session.expire_all()
    return db.session.execute(select(TrackingEvent.context).where(TrackingEvent.shipment_id == shipment.id)
                              .order_by(TrackingEvent.occurred_at)).scalars().all()


def status(order_no):
    db.session.expire_all()
    return db.session.execute(select(Order.status).where(Order.order_no == order_no)).scalar_one()


def push(client, kd, number, state, context, *, company="shunfeng", time="2026-11-26 12:00:00", **extra):
    form, url = kd.push_form(company, number, state=state, context=context, time=time, **extra)
    assert url.endswith(NOTIFY)
    return client.post(NOTIFY, data=form), form


# --- subscribing --------------------------------------------------------------------------------

@pytest.mark.delivers
def test_a_shipment_subscribes_its_waybill_with_the_documented_request(client, world, staff, kd):
    shipment = ship(staff, order_with(client, world))
    (request,) = kd.requests
    assert request["schema"] == "json"
    param = json.loads(request["param"])
    assert param == {"company": "shunfeng", "number": "SF1000000001", "key": kd.key, "parameters": {
        "callbackurl": f"http://localhost{NOTIFY}", "salt": SALT, "resultv2": "1", "phone": "13800000001"}}
    row = tracking_of(shipment)
    assert (row.status, row.error, row.company, row.number) == ("subscribed", None, "shunfeng", "SF1000000001")
    assert row.subscribed_at is not None
    outbox = db.session.execute(select(Outbox).where(Outbox.channel == "kuaidi100")).scalar_one()
    assert (outbox.status, outbox.queue, outbox.ref_id) == ("sent", "default", shipment.id)


def test_without_kuaidi100_configured_nothing_is_subscribed(client, world, staff, wechat):
    shipment = ship(staff, order_with(client, world))
    assert db.session.execute(select(func.count()).select_from(ShipmentTracking)).scalar_one() == 0
    assert db.session.execute(select(func.count()).select_from(Outbox).where(Outbox.channel == "kuaidi100")).scalar_one() == 0
    assert wechat.kuaidi100.requests == []
    assert shipment.id


@pytest.mark.delivers
def test_a_carrier_without_a_kuaidi100_code_is_not_tracked(client, world, staff, kd):
    ship(staff, order_with(client, world), carrier="自有车辆配送", tracking_no="CAR-0001")
    assert db.session.execute(select(func.count()).select_from(ShipmentTracking)).scalar_one() == 0
    assert kd.requests == []


@pytest.mark.delivers
def test_a_duplicate_subscription_counts_as_subscribed(client, world, staff, kd):
    kd.fail_next("501")
    shipment = ship(staff, order_with(client, world), carrier="中通快递", tracking_no="ZT7788990011")
    row = tracking_of(shipment)
    assert row.status == "subscribed" and "501" in row.error


@pytest.mark.delivers
def test_a_refused_subscription_fails_with_the_error_and_the_job_retries_it(client, world, staff, kd, clock):
    kd.fail_next("600")
    shipment = ship(staff, order_with(client, world))
    row = tracking_of(shipment)
    assert row.status == "failed" and row.error.startswith("600 ") and "Key" in row.error
    assert subscriptions.retry_failed_subscriptions() == 0  # not before RETRY_AFTER
    clock.advance(minutes=31)
    assert subscriptions.retry_failed_subscriptions() == 1
    row = tracking_of(shipment)
    assert (row.status, row.rounds) == ("subscribed", 2)
    assert len(kd.requests) == 2
    clock.advance(minutes=31)
    assert subscriptions.retry_failed_subscriptions() == 0  # subscribed now


@pytest.mark.delivers
def test_kuaidi100_trouble_is_retried_by_the_outbox(client, world, staff, kd):
    kd.fail_next("500")
    shipment = ship(staff, order_with(client, world))
    row = tracking_of(shipment)
    assert row.status == "pending" and "将自动重试" in row.error
    outbox = db.session.execute(select(Outbox).where(Outbox.channel == "kuaidi100")).scalar_one()
    assert (outbox.status, outbox.attempts, outbox.last_errcode) == ("pending", 1, 500)


# --- pushes -----------------------------------------------------------------------------------------

@pytest.fixture
def live(app):
    """The app served over real HTTP, so the stand-in's pushes reach it as Kuaidi100's would."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.mark.delivers
def test_a_push_over_http_stores_the_trail_and_a_repeated_push_nothing_more(app, client, world, staff, kd, live):
    app.config["KUAIDI100_CALLBACK_URL"] = f"{live}{NOTIFY}"
    shipment = ship(staff, order_with(client, world))
    db.session.commit()
    code, answer = kd.push("shunfeng", "SF1000000001", state=1, context="顺丰速运 已收取快件", time="2026-11-26 11:00:00",
                           area_name="广东省广州市")
    assert (code, answer) == (200, {"result": True, "returnCode": "200", "message": "成功"})
    code, answer = kd.push("shunfeng", "SF1000000001", state=0, context="快件到达【上海转运中心】",
                           time="2026-11-27 08:30:00")
    assert code == 200 and answer == kuaidi100.PUSH_ACK
    assert trail(shipment) == ["顺丰速运 已收取快件", "快件到达【上海转运中心】"]
    row = tracking_of(shipment)
    assert (row.state, row.push_status, row.checked) == (0, "polling", False)

    # Kuaidi100 pushes the whole trail each time; the same push twice stores nothing twice.
    again, form = push(client, kd, "SF1000000001", 5, "快件派送中", time="2026-11-27 09:00:00")
    assert again.get_json() == kuaidi100.PUSH_ACK
    assert client.post(NOTIFY, data=form).get_json() == kuaidi100.PUSH_ACK
    assert trail(shipment) == ["顺丰速运 已收取快件", "快件到达【上海转运中心】", "快件派送中"]


@pytest.mark.delivers
def test_a_bad_signature_is_refused_and_stores_nothing(client, world, staff, kd):
    shipment = ship(staff, order_with(client, world))
    form, _ = kd.push_form("shunfeng", "SF1000000001", state=0, context="运输中", time="2026-11-26 12:00:00")
    forged = {"param": form["param"], "sign": kuaidi100.sign(form["param"], "another-salt")}
    r = client.post(NOTIFY, data=forged)
    assert r.status_code == 403
    assert r.get_json()["error"]["code"] == "bad_signature" and "签名" in r.get_json()["error"]["message"]
    tampered = {"param": form["param"].replace("运输中", "已签收"), "sign": form["sign"]}
    assert client.post(NOTIFY, data=tampered).status_code == 403
    assert client.post(NOTIFY, data={"param": form["param"]}).status_code == 403
    assert trail(shipment) == []


def test_a_push_without_kuaidi100_configured_answers_503(client, app):
    r = client.post(NOTIFY, data={"param": "{}", "sign": "x"})
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "kuaidi100_not_configured"


@pytest.mark.delivers
def test_a_push_for_an_unknown_waybill_is_acknowledged_and_ignored(client, world, kd, caplog):
    param = json.dumps({"status": "polling", "message": "", "lastResult": {
        "nu": "YT0000000000", "com": "yuantong", "state": "0", "ischeck": "0",
        "data": [{"context": "运输中", "time": "2026-11-26 12:00:00", "ftime": "2026-11-26 12:00:00"}]}},
        ensure_ascii=False)
    r = client.post(NOTIFY, data={"param": param, "sign": kuaidi100.sign(param, SALT)})
    assert r.status_code == 200 and r.get_json() == {"result": True, "returnCode": "200", "message": "成功"}
    assert db.session.execute(select(func.count()).select_from(TrackingEvent)).scalar_one() == 0
    assert "unknown waybill" in caplog.text


# --- a delivered push and the order ---------------------------------------------------------------

@pytest.mark.delivers
def test_a_delivered_push_leaves_the_order_alone_with_the_setting_off(client, world, staff, kd):
    order_no = order_with(client, world)
    shipment = ship(staff, order_no)
    push(client, kd, "SF1000000001", 3, "已签收，签收人：前台")
    assert status(order_no) == "shipped"
    assert tracking_of(shipment).checked is True


@pytest.mark.delivers
def test_a_delivered_push_completes_a_fully_shipped_order_with_the_setting_on(app, client, world, staff, kd):
    pushes.set_delivery_completes_order(enabled=True, actor=staff["admin"])
    order_no = order_with(client, world, qty=4)
    first = ship(staff, order_no, qty=2)
    published = []

    def record(session, **payload):
        published.append((payload["from_status"], payload["to_status"], payload["actor"].name))

    with subscribed(app, "order.transitioned", record):
        # Partly shipped: a signed parcel does not complete the order.
        push(client, kd, "SF1000000001", 3, "已签收", time="2026-11-26 15:00:00")
        assert status(order_no) == "partially_shipped"
        second = ship(staff, order_no, carrier="京东物流", tracking_no="JD0000000002")
        published.clear()
        assert status(order_no) == "shipped"  # the first parcel signed long ago, the second still on its way
        push(client, kd, "JD0000000002", 0, "运输中", company="jd", time="2026-11-26 16:00:00")
        assert status(order_no) == "shipped"
        push(client, kd, "JD0000000002", 3, "已签收，签收人：本人", company="jd", time="2026-11-27 10:05:00")
    assert status(order_no) == "completed"
    assert published == [("shipped", "completed", "快递签收")]
    event = db.session.execute(select(OrderEvent).join(Order, Order.id == OrderEvent.order_id)
                               .where(Order.order_no == order_no).order_by(OrderEvent.id.desc())).scalars().first()
    assert (event.actor_type, event.actor_name) == ("system", "快递签收")
    assert "JD0000000002" in event.reason and "2026-11-27 10:05" in event.reason
    # Another 签收 push (Kuaidi100 repeats) changes nothing more.
    push(client, kd, "JD0000000002", 3, "已签收，签收人：本人", company="jd", time="2026-11-27 10:05:00")
    assert status(order_no) == "completed"
    assert len(trail(second)) == 2 and len(trail(first)) == 1


def test_the_setting_is_admins_only_and_audited(client, world, staff):
    from app.audit.models import AuditEntry
    from app.kernel.errors import DomainError

    with pytest.raises(DomainError) as exc:
        pushes.set_delivery_completes_order(enabled=True, actor=staff["warehouse"])
    assert exc.value.status == 403
    assert pushes.get_delivery_completes_order() is False
    console_login(client, "boss")
    r = client.post("/console/settings/delivery-completion",
                    data={"enabled": "on", "csrf_token": csrf(client, "/console/settings/delivery-completion")},
                    headers=HTML)
    assert r.status_code == 302
    assert settings.read(db.session, settings.DELIVERY_COMPLETES_ORDER) is True
    entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "settings.delivery_completes_order")).scalar_one()
    assert (entry.before, entry.after) == ({"enabled": False}, {"enabled": True})


# --- what the dealer and staff see ------------------------------------------------------------------

@pytest.mark.delivers
def test_the_dealer_sees_the_trail_newest_first_in_china_time_and_only_their_own(client, world, staff, kd):
    order_no = order_with(client, world)
    shipment = ship(staff, order_no)
    push(client, kd, "SF1000000001", 1, "顺丰速运 已收取快件", time="2026-11-26 11:00:00", area_name="广东省广州市")
    push(client, kd, "SF1000000001", 5, "快件派送中，派件员：王师傅", time="2026-11-27 09:00:00")

    r = client.get(f"{MP}/shipments/{shipment.id}", headers=auth(world.a_buyer))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["order_no"], body["carrier"], body["tracking_no"]) == (order_no, "顺丰速运", "SF1000000001")
    tracking = body["tracking"]
    assert (tracking["tracked"], tracking["status"], tracking["state_label"], tracking["signed"]) == (
        True, "subscribed", "派件", False)
    assert [(e["time"], e["state_label"], e["context"]) for e in tracking["events"]] == [
        ("2026-11-27 09:00:00", "派件", "快件派送中，派件员：王师傅"),
        ("2026-11-26 11:00:00", "揽收", "顺丰速运 已收取快件")]
    assert tracking["events"][1]["at"].startswith("2026-11-26T03:00:00")  # 11:00 in China
    assert tracking["events"][1]["area_name"] == "广东省广州市"

    detail = client.get(f"{MP}/orders/{order_no}", headers=auth(world.a_buyer)).get_json()
    assert detail["shipments"][0]["id"] == shipment.id
    assert detail["shipments"][0]["tracking"]["events"] == tracking["events"]

    other = client.get(f"{MP}/shipments/{shipment.id}", headers=auth(world.b_owner))
    assert other.status_code == 404 and other.get_json()["error"]["code"] == "shipment_not_found"
    assert client.get(f"{MP}/shipments/999999", headers=auth(world.a_buyer)).status_code == 404
    assert client.get(f"{MP}/shipments/{shipment.id}").status_code == 401
    viewer = client.get(f"{MP}/shipments/{shipment.id}", headers=auth(world.a_viewer))
    assert viewer.status_code == 200 and viewer.get_json()["tracking"]["events"] == tracking["events"]
    unbound = client.get(f"{MP}/shipments/{shipment.id}",
                         headers={"Authorization": f"Bearer {issue_token('o-never-bound-0001')}"})
    assert unbound.status_code == 403 and unbound.get_json()["error"]["code"] == "not_bound"


def test_an_untracked_shipment_shows_an_empty_trail(client, world, staff):
    shipment = ship(staff, order_with(client, world))
    tracking = client.get(f"{MP}/shipments/{shipment.id}", headers=auth(world.a_buyer)).get_json()["tracking"]
    assert tracking == {"tracked": False, "status": None, "status_label": "未跟踪", "state": None, "state_label": "",
                        "signed": False, "events": []}


@pytest.mark.delivers
def test_the_console_order_page_shows_the_trail_and_retries_a_failed_subscription(client, world, staff, kd):
    order_no = order_with(client, world)
    kd.fail_next("700")
    shipment = ship(staff, order_no)
    console_login(client, "cang")
    page = client.get(f"/console/orders/{order_no}", headers=HTML).get_data(as_text=True)
    assert "订阅失败" in page and "重新订阅" in page

    r = client.post(f"/console/orders/{order_no}/shipments/{shipment.id}/resubscribe",
                    data={"csrf_token": csrf(client, f"/console/orders/{order_no}")}, headers=HTML)
    assert r.status_code == 302
    assert tracking_of(shipment).status == "subscribed"
    push(client, kd, "SF1000000001", 5, "快件派送中，派件员：王师傅", time="2026-11-27 09:00:00")
    page = client.get(f"/console/orders/{order_no}", headers=HTML).get_data(as_text=True)
    assert "快件派送中，派件员：王师傅" in page and "2026-11-27 09:00:00" in page and "派件" in page
    assert "重新订阅" not in page
