"""The stand-in plays a rep in WeCom for the demo: a tap on a delivered approval card and a
message to the bot reach our /wecom/callback encrypted and signed as WeCom sends them."""
import threading

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from app.extensions import db
from app.orders.models import Order
from tests.factories import auth
from tests.helpers import submit


@pytest.fixture
def served(app, wechat):
    """Our app on a real port, with the stand-in pushing rep actions to its callback."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    wechat.connect_callback(
        f"http://127.0.0.1:{server.server_port}/wecom/callback", app.config["WECOM_TOKEN"], app.config["WECOM_AES_KEY"]
    )
    yield wechat
    wechat._state.callback = None
    server.shutdown()
    thread.join(timeout=5)


@pytest.mark.delivers
def test_tapping_the_delivered_card_approves_the_order(client, world, served):
    order_no = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 2}]).json["order_no"]
    [card] = served.delivered_to("WangYeWu", channel="wecom_app")
    page = requests.get(f"{served.base_url}/").text
    assert f"approve:{order_no}" in page and "通过" in page  # the demo page shows the buttons

    key = card["body"]["template_card"]["button_list"][0]["key"]
    r = requests.post(f"{served.base_url}/_standin/wecom/tap", json={"user": "WangYeWu", "key": key}, timeout=10)
    assert r.status_code == 200 and "HTTP 200" in r.json()["message"]
    db.session.expire_all()
    assert db.session.execute(select(Order.status).where(Order.order_no == order_no)).scalar_one() == "approved"
    [update] = served.delivered_to("WangYeWu", channel="wecom_card")
    assert update["body"]["button"]["replace_name"].startswith("已通过")


@pytest.mark.delivers
def test_a_message_to_the_bot_gets_a_reply(client, world, served):
    order_no = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 2}]).json["order_no"]
    r = requests.post(f"{served.base_url}/_standin/wecom/say", json={"user": "WangYeWu", "content": "待审批"}, timeout=10)
    assert r.status_code == 200, r.json()
    replies = [d for d in served.delivered_to("WangYeWu", channel="wecom_app") if d["body"]["msgtype"] == "text"]
    assert len(replies) == 1 and order_no in replies[0]["body"]["text"]["content"]


def test_without_a_callback_the_stand_in_says_so(wechat):
    r = requests.post(f"{wechat.base_url}/_standin/wecom/say", json={"user": "WangYeWu", "content": "帮助"}, timeout=10)
    assert r.status_code == 502 and "回调地址" in r.json()["message"]
