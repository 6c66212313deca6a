"""Taps on the approval card: template_card_event through the encrypted callback."""
import pytest
from sqlalchemy import select

from app.extensions import db
from app.notify.models import Outbox
from app.orders import approval as orders
from app.orders.models import OrderEvent
from app.staff.models import Staff
from tests.factories import add
from tests.test_bot import last_reply, place, replies, status
from tests.test_wecom_callback_support import WeCom


@pytest.fixture
def wecom(client, app):
    return WeCom(client, app.config)


def card_updates():
    db.session.expire_all()
    rows = db.session.execute(select(Outbox).where(Outbox.channel == "wecom_card").order_by(Outbox.id)).scalars().all()
    return [(row.recipient, row.payload) for row in rows]


def test_approve_tap_approves_and_updates_the_card_with_the_taps_response_code(wecom, client, world):
    order_no = place(client, world)
    r = wecom.tap(f"approve:{order_no}", response_code="RESPCODE-abc", create_time=1764000001)
    assert r.status_code == 200 and r.get_data() == b""
    assert status(order_no) == "approved"
    assert card_updates() == [
        ("WangYeWu", {"response_code": "RESPCODE-abc", "button": {"replace_name": "已通过 · 王业务"}})
    ]
    assert replies() == []  # the greyed-out button is the answer
    # The card path updated the card: no extra "approved by" text to the rep.
    texts = db.session.execute(select(Outbox).where(Outbox.event == "order_approved", Outbox.channel == "wecom_app")).all()
    assert texts == []


def test_second_tap_answers_the_status_and_greys_out_that_card(wecom, client, world):
    order_no = place(client, world)
    wecom.tap(f"approve:{order_no}", response_code="RC-first", create_time=1764000001)
    wecom.tap(f"approve:{order_no}", response_code="RC-second", create_time=1764000002)
    assert "当前状态为「已审批」" in last_reply()
    assert card_updates()[-1] == ("WangYeWu", {"response_code": "RC-second", "button": {"replace_name": "已通过 · 王业务"}})
    events = db.session.execute(select(OrderEvent.id).where(OrderEvent.to_status == "approved")).all()
    assert len(events) == 1


def test_reject_tap_asks_for_a_reason_and_changes_nothing(wecom, client, world):
    order_no = place(client, world)
    wecom.tap(f"reject:{order_no}", response_code="RC-r", create_time=1764000003)
    answer = last_reply()
    assert "驳回需要写明原因" in answer and f"驳回 {order_no} 原因" in answer
    assert status(order_no) == "pending_approval"
    assert card_updates() == []  # the buttons stay usable
    # Then the rep types the reason.
    wecom.say(f"驳回 {order_no} 库存不足请改期")
    assert status(order_no) == "rejected"


def test_tap_on_an_order_decided_elsewhere_answers_and_refreshes_the_card(wecom, client, world):
    order_no = place(client, world)
    admin = add(Staff(username="boss", name="张总", role="admin"))
    db.session.commit()
    orders.reject_order(staff=admin, order_no=order_no, reason="价格有误")
    wecom.tap(f"approve:{order_no}", response_code="RC-late", create_time=1764000004)
    assert "当前状态为「已驳回」" in last_reply()
    assert card_updates() == [("WangYeWu", {"response_code": "RC-late", "button": {"replace_name": "已驳回 · 张总"}})]
    wecom.tap(f"reject:{order_no}", response_code="RC-late2", create_time=1764000005)
    assert "当前状态为「已驳回」" in last_reply()


def test_another_reps_tap_is_refused(wecom, client, world):
    add(Staff(username="rep2", name="李业务", role="sales", wecom_userid="LiYeWu"))
    db.session.commit()
    order_no = place(client, world)
    wecom.tap(f"approve:{order_no}", user="LiYeWu", create_time=1764000006)
    assert last_reply("LiYeWu") == "不是你负责的经销商的订单，不能在这里处理。"
    wecom.tap(f"reject:{order_no}", user="LiYeWu", create_time=1764000007)
    assert last_reply("LiYeWu") == "不是你负责的经销商的订单，不能在这里处理。"
    assert status(order_no) == "pending_approval"
    assert card_updates() == []


def test_unknown_user_tap_gets_a_polite_reply(wecom, client, world):
    order_no = place(client, world)
    wecom.tap(f"approve:{order_no}", user="Stranger", create_time=1764000008)
    assert "没有关联可用的订货系统员工账号" in last_reply("Stranger")
    assert status(order_no) == "pending_approval"


def test_unknown_button_keys_are_ignored(wecom, client, world):
    order_no = place(client, world)
    wecom.tap(f"delete:{order_no}", create_time=1764000009)
    wecom.tap("approve:SO2026;DROP", create_time=1764000010)
    assert replies() == []
    assert status(order_no) == "pending_approval"


def test_a_tap_without_response_code_approves_and_answers_in_text(wecom, client, world):
    order_no = place(client, world)
    wecom.tap(f"approve:{order_no}", response_code="", create_time=1764000011)
    assert status(order_no) == "approved"
    assert last_reply().startswith(f"已审批通过订单 {order_no}")
    assert card_updates() == []


def test_a_replayed_tap_job_never_spends_a_response_code_twice(app, client, world):
    from bots.inbound import handle_inbound

    order_no = place(client, world)
    message = {
        "ToUserName": app.config["WECOM_CORP_ID"], "FromUserName": "WangYeWu", "CreateTime": "1764000012",
        "MsgType": "event", "Event": "template_card_event", "EventKey": f"approve:{order_no}",
        "TaskId": f"order-{order_no}", "CardType": "button_interaction", "ResponseCode": "RC-once",
        "AgentID": "1000002", "dedupe_key": "wecom:evt:WangYeWu:1764000012:template_card_event",
    }
    handle_inbound(message)
    handle_inbound(message)  # the worker died after committing; RQ ran it again
    assert [code for _, payload in card_updates() for code in [payload["response_code"]]] == ["RC-once"]
    assert status(order_no) == "approved"
