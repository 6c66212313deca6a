"""Order events reach the dealer: always in the mini-program's message list, and as a
WeChat subscribe message (an mp_subscribe outbox row) to each user with a consent left."""
import re
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from app.database import write_transaction
from app.extensions import db
from app.kernel.clock import utcnow
from app.notify import dealer_alerts
from app.notify.dealer_alerts import Fen, field_value
from app.notify.models import DealerMessage, Outbox, SubscribeConsent
from app.orders import approval as orders
from app.orders.models import Order
from app.kernel.clock import BUSINESS_TZ
from tests.factories import add, auth, make_user
from tests.helpers import MP, submit

APPROVED = "demo-tmpl-order-approved"
REJECTED = "demo-tmpl-order-rejected"
SHIPPED = "demo-tmpl-order-shipped"
PAYMENT = "demo-tmpl-payment-due"
TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")


# --- helpers ------------------------------------------------------------------------------

def place(client, user, qty=2, sku=None, world=None):
    r = submit(client, auth(user), [{"sku_id": (sku or world.cola).id, "qty": qty}])
    assert r.status_code == 201, r.get_json()
    return r.get_json()["order_no"]


def consent(user, template_id, remaining):
    add(SubscribeConsent(user_id=user.id, template_id=template_id, remaining=remaining))
    db.session.commit()


def left(user, template_id):
    db.session.rollback()
    return db.session.execute(
        select(SubscribeConsent.remaining).where(
            SubscribeConsent.user_id == user.id, SubscribeConsent.template_id == template_id
        )
    ).scalar_one_or_none()


def messages(dealer):
    db.session.rollback()
    return db.session.execute(
        select(DealerMessage).where(DealerMessage.dealer_id == dealer.id).order_by(DealerMessage.id)
    ).scalars().all()


def subscribe_rows():
    db.session.rollback()
    return db.session.execute(
        select(Outbox).where(Outbox.channel == "mp_subscribe").order_by(Outbox.id)
    ).scalars().all()


def order_row(order_no):
    db.session.rollback()
    return db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()


def china_minutes_around(action):
    before = datetime.now(BUSINESS_TZ)
    result = action()
    after = datetime.now(BUSINESS_TZ)
    return result, {before.strftime("%Y-%m-%d %H:%M"), after.strftime("%Y-%m-%d %H:%M")}


# --- order approved -------------------------------------------------------------------------

@pytest.mark.delivers
def test_approval_messages_every_consenting_user_and_uses_one_consent_each(client, world, wechat):
    order_no = place(client, world.a_buyer, world=world)
    consent(world.a_buyer, APPROVED, 2)
    consent(world.a_viewer, APPROVED, 1)  # viewers receive messages too
    consent(world.a_owner, REJECTED, 3)  # consent for another template does not count
    _, minutes = china_minutes_around(lambda: orders.approve_order(staff=world.rep, order_no=order_no))
    order = order_row(order_no)

    [message] = messages(world.dealer_a)
    assert (message.event, message.title, message.ref_type, message.ref_id) == (
        "order_approved", "订单已审核通过", "order", order.id
    )
    assert message.body == f"您的订单 {order_no}（¥80.00）已审核通过，我们将尽快为您安排发货。"
    assert message.page == f"pages/order/detail?order_no={order_no}"

    rows = subscribe_rows()
    assert sorted(r.recipient for r in rows) == sorted([world.a_buyer.openid, world.a_viewer.openid])
    for row in rows:
        # Without REDIS_URL the rows are delivered in-process right after the commit.
        assert (row.queue, row.event, row.status, row.ref_type, row.ref_id) == ("high", "order_approved", "sent", "order", order.id)
        [delivered] = wechat.delivered_to(row.recipient, channel="mp_subscribe")
        assert delivered["body"]["template_id"] == APPROVED and delivered["body"]["touser"] == row.recipient
        user_id = world.a_buyer.id if row.recipient == world.a_buyer.openid else world.a_viewer.id
        assert row.dedupe_key == f"order:{order.id}:approved:mp:{user_id}"
        data = row.payload.pop("data")
        assert row.payload == {
            "template_id": APPROVED, "page": f"pages/order/detail?order_no={order_no}",
            "miniprogram_state": "formal", "lang": "zh_CN",
        }
        assert data.pop("time4")["value"] in minutes
        assert data == {
            "character_string1": {"value": order_no},
            "phrase2": {"value": "审核通过"},
            "amount3": {"value": "80.00元"},
            "thing5": {"value": "我们将尽快为您安排发货"},
        }
    assert (left(world.a_buyer, APPROVED), left(world.a_viewer, APPROVED), left(world.a_owner, REJECTED)) == (1, 0, 3)


def test_without_consent_the_event_is_still_in_the_message_list(client, world):
    order_no = place(client, world.a_buyer, world=world)
    orders.approve_order(staff=world.rep, order_no=order_no)
    assert [m.event for m in messages(world.dealer_a)] == ["order_approved"]
    assert subscribe_rows() == []


def test_a_used_up_consent_sends_nothing_more(client, world):
    consent(world.a_buyer, APPROVED, 1)
    first, second = place(client, world.a_buyer, world=world), place(client, world.a_buyer, world=world)
    orders.approve_order(staff=world.rep, order_no=first)
    orders.approve_order(staff=world.rep, order_no=second)
    assert [r.payload["data"]["character_string1"]["value"] for r in subscribe_rows()] == [first]
    assert left(world.a_buyer, APPROVED) == 0
    assert len(messages(world.dealer_a)) == 2


def test_inactive_users_and_users_without_openid_receive_nothing(client, world):
    no_openid = make_user(world.dealer_a, "buyer", openid="o-temp")
    no_openid.openid = None
    consent(no_openid, APPROVED, 1)
    consent(world.a_owner, APPROVED, 1)
    world.a_owner.active = False
    db.session.commit()
    order_no = place(client, world.a_buyer, world=world)
    orders.approve_order(staff=world.rep, order_no=order_no)
    assert subscribe_rows() == []
    assert left(world.a_owner, APPROVED) == 1 and left(no_openid, APPROVED) == 1


def test_submitting_and_the_dealers_own_cancel_notify_nobody(client, world):
    consent(world.a_buyer, APPROVED, 1)
    order_no = place(client, world.a_buyer, world=world)
    r = client.post(f"{MP}/orders/{order_no}/cancel", headers=auth(world.a_buyer), json={"reason": "买错了"})
    assert r.status_code == 200
    assert messages(world.dealer_a) == [] and subscribe_rows() == []


# --- rejected, cancelled by staff --------------------------------------------------------------

def test_rejection_carries_the_reason(client, world):
    consent(world.a_owner, REJECTED, 1)
    order_no = place(client, world.a_buyer, world=world)
    reason = "本月该商品限量供应，每家经销商最多订购一箱，请调整数量后重新提交"
    orders.reject_order(staff=world.rep, order_no=order_no, reason=reason)

    [message] = messages(world.dealer_a)
    assert (message.event, message.title) == ("order_rejected", "订单被驳回")
    assert reason in message.body and order_no in message.body
    [row] = subscribe_rows()
    assert row.recipient == world.a_owner.openid and row.payload["template_id"] == REJECTED
    data = row.payload["data"]
    assert data["phrase2"] == {"value": "审核驳回"}
    assert data["thing3"] == {"value": reason[:19] + "…"}
    assert len(data["thing3"]["value"]) == 20
    assert left(world.a_owner, REJECTED) == 0


def test_a_cancellation_by_staff_is_a_message_and_a_subscribe_message_if_configured(client, app, world):
    app.config["WECHAT_SUBSCRIBE_TEMPLATES"] = {**app.config["WECHAT_SUBSCRIBE_TEMPLATES"], "order_cancelled": "tmpl-cancel"}
    consent(world.a_buyer, "tmpl-cancel", 1)
    order_no = place(client, world.a_buyer, world=world)
    with write_transaction() as session:
        order = session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()
        dealer_alerts.order_changed(session, order, from_status="approved", to_status="cancelled",
                                    reason="客户要求取消", actor=world.rep)
    [message] = messages(world.dealer_a)
    assert message.event == "order_cancelled" and "客户要求取消" in message.body
    [row] = subscribe_rows()
    assert row.payload["template_id"] == "tmpl-cancel"
    assert row.payload["data"]["phrase2"] == {"value": "已取消"}
    assert row.payload["data"]["thing3"] == {"value": "客户要求取消"}


def test_pending_and_shipping_transitions_write_nothing_by_themselves(client, world):
    consent(world.a_buyer, SHIPPED, 1)
    order_no = place(client, world.a_buyer, world=world)
    with write_transaction() as session:
        order = session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()
        for to_status in ("pending_approval", "shipped", "partially_shipped", "completed"):
            dealer_alerts.order_changed(session, order, from_status="approved", to_status=to_status)
    assert messages(world.dealer_a) == [] and subscribe_rows() == []


# --- shipped, payment due (called by shipments and receivables) -----------------------------

def test_shipment_sent_names_the_carrier_and_tracking_number_once(client, world):
    consent(world.a_buyer, SHIPPED, 3)
    order_no = place(client, world.a_buyer, world=world)
    orders.approve_order(staff=world.rep, order_no=order_no)
    for _ in range(2):  # the same shipment announced twice (a retried job)
        with write_transaction() as session:
            order = session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()
            dealer_alerts.shipment_sent(session, order, "顺丰速运", "SF1234567890123")

    shipped = [m for m in messages(world.dealer_a) if m.event == "order_shipped"]
    assert shipped[0].title == "订单已发货"
    assert shipped[0].body == f"您的订单 {order_no} 已发货：顺丰速运，运单号 SF1234567890123。请留意查收。"
    [row] = subscribe_rows()
    assert row.payload["template_id"] == SHIPPED
    data = row.payload["data"]
    assert data["thing2"] == {"value": "顺丰速运"}
    assert data["character_string3"] == {"value": "SF1234567890123"}
    assert TIME.fullmatch(data["time4"]["value"])
    assert left(world.a_buyer, SHIPPED) == 2  # the replay gave its consent back

    with write_transaction() as session:  # a second shipment of the same order is news
        order = session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()
        dealer_alerts.shipment_sent(session, order, "中通快递", "ZT778899")
    assert len(subscribe_rows()) == 2 and left(world.a_buyer, SHIPPED) == 1


def test_payment_due_formats_the_amount_as_yuan_and_the_date(client, world):
    consent(world.a_owner, PAYMENT, 1)
    order_no = place(client, world.a_buyer, world=world)
    due = date(2026, 12, 31)
    with write_transaction() as session:
        order = session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()
        dealer_alerts.payment_due(session, order, due, 1234)
    [message] = messages(world.dealer_a)
    assert (message.event, message.title) == ("payment_due", "付款到期提醒")
    assert message.body == f"订单 {order_no} 应付 ¥12.34，请于 2026-12-31 前完成付款。"
    [row] = subscribe_rows()
    assert row.payload["data"] == {
        "character_string1": {"value": order_no},
        "amount2": {"value": "12.34元"},
        "date3": {"value": "2026-12-31"},
        "thing4": {"value": "请在到期日前完成付款"},
    }
    assert row.dedupe_key.endswith(":payment_due:20261231:mp:%d" % world.a_owner.id)


def test_field_mapping_and_miniprogram_state_come_from_configuration(client, app, world):
    app.config["WECHAT_SUBSCRIBE_FIELDS"] = {
        **app.config["WECHAT_SUBSCRIBE_FIELDS"],
        "order_approved": {"thing1": "dealer_name", "thing2": "goods", "name3": "dealer_name", "number4": "amount"},
    }
    app.config["WECHAT_MINIPROGRAM_STATE"] = "developer"
    consent(world.a_buyer, APPROVED, 1)
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}, {"sku_id": world.soy.id, "qty": 1}])
    orders.approve_order(staff=world.rep, order_no=r.get_json()["order_no"])
    [row] = subscribe_rows()
    assert row.payload["miniprogram_state"] == "developer"
    assert row.payload["data"] == {
        "thing1": {"value": "广州鑫达商贸有限公司"},
        "thing2": {"value": "商品SKU-COLA等2种商品"},
        "name3": {"value": "广州鑫达商贸有限公司"},
        "number4": {"value": "62.99"},
    }


# --- one transaction ---------------------------------------------------------------------------

def test_notifications_roll_back_with_the_change(client, world):
    consent(world.a_buyer, SHIPPED, 1)
    order_no = place(client, world.a_buyer, world=world)
    with pytest.raises(RuntimeError), write_transaction() as session:
        order = session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()
        dealer_alerts.shipment_sent(session, order, "顺丰速运", "SF1")
        raise RuntimeError("the shipment failed later in its transaction")
    assert messages(world.dealer_a) == [] and subscribe_rows() == []
    assert left(world.a_buyer, SHIPPED) == 1


# --- isolation and the message list ---------------------------------------------------------------

def test_a_dealer_never_sees_or_receives_another_dealers_messages(client, world):
    consent(world.b_owner, APPROVED, 1)
    a_order = place(client, world.a_buyer, world=world)
    orders.approve_order(staff=world.rep, order_no=a_order)
    assert subscribe_rows() == [] and left(world.b_owner, APPROVED) == 1

    r = client.get(f"{MP}/messages", headers=auth(world.b_owner))
    assert r.status_code == 200 and r.get_json() == {"items": [], "page": 1, "page_size": 20, "total": 0}

    b_order = place(client, world.b_owner, world=world)
    orders.reject_order(staff=world.rep, order_no=b_order, reason="地址有误")
    a_items = client.get(f"{MP}/messages", headers=auth(world.a_viewer)).get_json()["items"]
    b_items = client.get(f"{MP}/messages", headers=auth(world.b_owner)).get_json()["items"]
    assert [i["event"] for i in a_items] == ["order_approved"] and a_order in a_items[0]["body"]
    assert [i["event"] for i in b_items] == ["order_rejected"] and b_order in b_items[0]["body"]


def test_message_list_is_newest_first_and_paged(client, world):
    numbers = [place(client, world.a_buyer, qty=1, world=world) for _ in range(3)]
    orders.approve_order(staff=world.rep, order_no=numbers[0])
    orders.reject_order(staff=world.rep, order_no=numbers[1], reason="重复下单")
    orders.approve_order(staff=world.rep, order_no=numbers[2])

    r = client.get(f"{MP}/messages?page=1&page_size=2", headers=auth(world.a_buyer))
    assert r.status_code == 200
    body = r.get_json()
    assert (body["page"], body["page_size"], body["total"]) == (1, 2, 3)
    first = body["items"][0]
    assert set(first) == {"id", "event", "title", "body", "page", "created_at"}
    assert (first["event"], first["page"]) == ("order_approved", f"pages/order/detail?order_no={numbers[2]}")
    assert body["items"][1]["event"] == "order_rejected"
    created = datetime.fromisoformat(first["created_at"])
    assert abs(created - utcnow()) < timedelta(minutes=1)
    second_page = client.get(f"{MP}/messages?page=2&page_size=2", headers=auth(world.a_buyer)).get_json()
    assert [i["page"] for i in second_page["items"]] == [f"pages/order/detail?order_no={numbers[0]}"]
    assert second_page["items"][0]["id"] < body["items"][1]["id"] < first["id"]


@pytest.mark.parametrize("query", ["page=0", "page_size=101", "page=x", "page_size=-1", "colour=red"])
def test_message_list_refuses_bad_paging(client, world, query):
    r = client.get(f"{MP}/messages?{query}", headers=auth(world.a_buyer))
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "validation_error"


def test_message_list_needs_login(client, world):
    assert client.get(f"{MP}/messages").status_code == 401


# --- WeChat's field rules ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "kind, raw, expected",
    [
        ("thing", "订单已审核通过", "订单已审核通过"),
        ("thing", "一二三四五六七八九十一二三四五六七八九十", "一二三四五六七八九十一二三四五六七八九十"),
        ("thing", "一二三四五六七八九十一二三四五六七八九十超", "一二三四五六七八九十一二三四五六七八九…"),
        ("thing", "  多个\n\t空白  ", "多个 空白"),
        ("thing", "", "-"),
        ("character_string", "SO202611260001", "SO202611260001"),
        ("character_string", "顺丰SF-123 456", "SF-123456"),
        ("character_string", "A" * 40, "A" * 32),
        ("character_string", "中文", "-"),
        ("amount", Fen(1234), "12.34元"),
        ("amount", Fen(5), "0.05元"),
        ("amount", Fen(100_000_000), "1000000.00元"),
        ("number", Fen(1234), "12.34"),
        ("number", "共 12 件", "12"),
        ("number", "1" * 40, "1" * 32),
        ("number", "无", "0"),
        ("letter", "ab12cd", "abcd"),
        ("symbol", "a-b+c*d/e%f", "-+*/%"),
        ("phrase", "已审批", "已审批"),
        ("phrase", "审核通过啦啦啦", "审核通过啦"),
        ("phrase", "OK通过", "通过"),
        ("phrase", "OK", "无"),
        ("name", "欧阳娜娜欧阳娜娜欧阳娜娜", "欧阳娜娜欧阳娜娜欧阳"),
        ("name", "Alexander Hamilton Jr.", "Alexander Hamilton J"),
        ("phone_number", "+86 0766-66888866", "+860766-66888866"),
        ("phone_number", "1" * 20, "1" * 17),
        ("car_number", "粤A 8Z888挂", "粤A8Z888挂"),
        ("time", datetime(2026, 11, 26, 6, 30, 59, tzinfo=BUSINESS_TZ).astimezone(BUSINESS_TZ), "2026-11-26 06:30"),
        ("date", date(2026, 11, 26), "2026-11-26"),
    ],
)
def test_values_are_trimmed_to_wechats_rules(kind, raw, expected):
    assert field_value(kind, raw) == expected


def test_times_are_shown_in_china_time():
    from datetime import timezone

    assert field_value("time", datetime(2026, 11, 26, 6, 30, tzinfo=timezone.utc)) == "2026-11-26 14:30"
    assert field_value("time", datetime(2026, 11, 26, 20, 5, tzinfo=timezone.utc)) == "2026-11-27 04:05"


def test_field_kind_comes_from_the_template_key():
    from app.notify.dealer_alerts import field_kind

    assert [field_kind(k) for k in ("thing1", "character_string12", "amount3", "phrase10", "time4")] == [
        "thing", "character_string", "amount", "phrase", "time"
    ]


# --- concurrency (PostgreSQL) ----------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.parametrize("orders_racing, consents", [(2, 1), (6, 2)])
def test_concurrent_approvals_never_use_a_consent_twice(pg_app, pg_client, pg_world, monkeypatch, orders_racing, consents):
    """Transitions of different orders (no shared order lock) race for the user's last
    consents; each consent is used exactly once and every event is still in the list."""
    import threading

    from app.staff.models import Staff

    w = pg_world
    numbers = [place(pg_client, w.a_buyer, qty=1, world=w) for _ in range(orders_racing)]
    consent(w.a_buyer, APPROVED, consents)
    rep_id = w.rep.id
    # Hold every transition, inside its transaction, until all reached the notification.
    barrier = threading.Barrier(orders_racing, timeout=30)
    real_notify = dealer_alerts._notify

    def notify_together(*args, **kwargs):
        barrier.wait()
        return real_notify(*args, **kwargs)

    monkeypatch.setattr(dealer_alerts, "_notify", notify_together)
    errors = []

    def approve(order_no):
        try:
            with pg_app.app_context():
                orders.approve_order(staff=db.session.get(Staff, rep_id), order_no=order_no)
        except Exception as exc:  # the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=approve, args=(n,)) for n in numbers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(subscribe_rows()) == consents
    assert left(w.a_buyer, APPROVED) == 0
    assert len(messages(w.dealer_a)) == orders_racing
