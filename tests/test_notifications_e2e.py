"""The whole notification path, end to end, over real HTTP to the stand-in.

A dealer consents to the approval template, places an order; the rep gets the approval card
in WeCom, taps 通过 (an encrypted template_card_event to /wecom/callback); the order is
approved, the card is greyed out with the tap's ResponseCode, the dealer's buyer gets the
subscribe message and the mini-program message list shows it. Without REDIS_URL every job
and delivery runs in-process, as in the demo.
"""
import pytest
from sqlalchemy import select

from app.extensions import db
from app.notify.models import Outbox
from tests.factories import auth
from tests.helpers import MP, submit
from tests.test_wecom_callback_support import WeCom


@pytest.fixture
def wecom(client, app):
    return WeCom(client, app.config)


@pytest.mark.delivers
def test_order_to_card_tap_to_subscribe_message(client, app, world, wechat, wecom):
    approved_template = app.config["WECHAT_SUBSCRIBE_TEMPLATES"]["order_approved"]
    wechat.require_subscriptions()  # the stand-in refuses subscribe messages nobody accepted
    wechat.grant_subscription(world.a_buyer.openid, approved_template)
    r = client.post(f"{MP}/subscriptions", json={"template_ids_accepted": [approved_template]},
                    headers=auth(world.a_buyer))
    assert r.status_code == 200, r.json

    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 2}])
    assert r.status_code == 201, r.json
    order_no = r.json["order_no"]

    [card] = wechat.delivered_to("WangYeWu", channel="wecom_app")
    body = card["body"]
    assert body["msgtype"] == "template_card" and body["agentid"] == app.config["WECOM_AGENT_ID"]
    keys = [b["key"] for b in body["template_card"]["button_list"]]
    assert keys == [f"approve:{order_no}", f"reject:{order_no}"]
    assert body["template_card"]["task_id"] == f"order-{order_no}"

    # WeCom hands the callback a fresh ResponseCode with the tap.
    response_code = wechat._state.issue_response_code()
    r = wecom.tap(f"approve:{order_no}", response_code=response_code)
    assert r.status_code == 200

    assert client.get(f"{MP}/orders/{order_no}", headers=auth(world.a_buyer)).json["status"] == "approved"
    [update] = wechat.delivered_to("WangYeWu", channel="wecom_card")
    assert update["body"]["response_code"] == response_code
    assert update["body"]["button"]["replace_name"].startswith("已通过")

    [message] = wechat.delivered_to(world.a_buyer.openid, channel="mp_subscribe")
    assert message["body"]["template_id"] == approved_template
    assert message["body"]["page"] == f"pages/order/detail?order_no={order_no}"
    assert wechat.delivered_to(world.a_owner.openid, channel="mp_subscribe") == []  # no consent, no message

    items = client.get(f"{MP}/messages", headers=auth(world.a_owner)).json["items"]
    assert [(i["event"], i["title"]) for i in items] == [("order_approved", "订单已审核通过")]

    db.session.expire_all()
    statuses = db.session.execute(select(Outbox.channel, Outbox.status).order_by(Outbox.id)).all()
    assert statuses == [("wecom_app", "sent"), ("mp_subscribe", "sent"), ("wecom_card", "sent")]


@pytest.mark.postgres
@pytest.mark.redis
def test_orders_committed_while_redis_is_down_notify_once_it_is_back(_pg_schema_url, standin, wechat, redis_url):
    """Real orders (and an approval) while Redis is unreachable: every request succeeds, the
    notifications wait in the outbox, and once Redis is back the sweep and a worker send
    each of them exactly once."""
    import redis

    from app import create_app
    from app.jobs import run_worker
    from app.notify import delivery
    from app.orders import approval as orders
    from tests import factories
    from tests.conftest import _base_config, free_port, truncate_all

    redis.Redis.from_url(redis_url).flushdb()
    config = {**_base_config(standin), "SQLALCHEMY_DATABASE_URI": _pg_schema_url}
    down = create_app({**config, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    with down.app_context():
        truncate_all()
        world = factories.build_world()
        template = down.config["WECHAT_SUBSCRIBE_TEMPLATES"]["order_approved"]
        client = down.test_client()
        r = client.post(f"{MP}/subscriptions", json={"template_ids_accepted": [template]}, headers=auth(world.a_buyer))
        assert r.status_code == 200
        placed = []
        for _ in range(3):
            r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}])
            assert r.status_code == 201, r.json
            placed.append(r.json["order_no"])
        orders.approve_order(staff=world.rep, order_no=placed[0])
        db.session.expire_all()
        rows = db.session.execute(select(Outbox.channel, Outbox.status)).all()
        assert sorted(c for c, _ in rows) == ["mp_subscribe"] + ["wecom_app"] * 3
        assert {s for _, s in rows} == {"pending"}
        buyer_openid = world.a_buyer.openid
        db.session.remove()
        db.engine.dispose()
    assert wechat.delivered == []

    back = create_app({**config, "REDIS_URL": redis_url})
    with back.app_context():
        assert delivery.sweep(grace_seconds=0)["enqueued"] == 4
        run_worker(["high"], burst=True, with_scheduler=False)
        db.session.expire_all()
        assert {s for s, in db.session.execute(select(Outbox.status)).all()} == {"sent"}
        assert delivery.sweep(grace_seconds=0)["enqueued"] == 0
        db.session.remove()
        db.engine.dispose()
    cards = wechat.delivered_to("WangYeWu", channel="wecom_app")
    assert sorted(c["body"]["template_card"]["task_id"] for c in cards) == sorted(f"order-{n}" for n in placed)
    assert len(wechat.delivered_to(buyer_openid, channel="mp_subscribe")) == 1
