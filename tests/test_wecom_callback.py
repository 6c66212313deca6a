"""GET/POST /wecom/callback driven with payloads encrypted and signed as WeCom does."""
import time

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.notify.models import InboundEvent, Outbox
from tests.test_wecom_callback_support import WeCom, decrypt, encrypt, sign


@pytest.fixture
def wecom(client, app):
    return WeCom(client, app.config)


def outbox_rows():
    db.session.expire_all()
    return db.session.execute(select(Outbox).order_by(Outbox.id)).scalars().all()


def inbound_count():
    return db.session.execute(select(func.count()).select_from(InboundEvent)).scalar_one()


def test_support_helper_round_trips_and_matches_wechatpy(app):
    # Our test-side implementation of WeCom's scheme and wechatpy agree in both directions.
    from app.integrations.wechat import WeComCallbackCrypto

    crypto = WeComCallbackCrypto.from_config(app.config)
    encrypted = encrypt(app.config["WECOM_AES_KEY"], "<xml>你好</xml>", app.config["WECOM_CORP_ID"])
    assert decrypt(app.config["WECOM_AES_KEY"], encrypted) == ("<xml>你好</xml>", app.config["WECOM_CORP_ID"])
    outer = crypto.encrypt_message("<xml><A>1</A></xml>", "nonce1", 1700000000)
    import xmltodict

    fields = xmltodict.parse(outer)["xml"]
    assert decrypt(app.config["WECOM_AES_KEY"], fields["Encrypt"])[0] == "<xml><A>1</A></xml>"
    assert fields["MsgSignature"] == sign(app.config["WECOM_TOKEN"], "1700000000", "nonce1", fields["Encrypt"])


def test_url_verification_answers_the_decrypted_echostr(wecom):
    r = wecom.verify_url("echo-5566778899")
    assert r.status_code == 200
    assert r.get_data(as_text=True) == "echo-5566778899"


def test_url_verification_with_bad_signature_is_403(wecom):
    r = wecom.verify_url(token="not-our-token")
    assert r.status_code == 403
    assert "echo" not in r.get_data(as_text=True)


def test_url_verification_without_params_is_403(client):
    assert client.get("/wecom/callback").status_code == 403
    assert client.get("/wecom/callback?msg_signature=a&timestamp=1&nonce=2").status_code == 403


def test_text_message_is_answered_through_the_outbox(wecom, world):
    r = wecom.say("帮助")
    assert r.status_code == 200 and r.get_data() == b""
    rows = outbox_rows()
    assert len(rows) == 1
    row = rows[0]
    assert (row.channel, row.recipient, row.queue, row.event) == ("wecom_app", "WangYeWu", "high", "bot_reply")
    assert row.payload["msgtype"] == "text"
    assert "订单 SO202611260001" in row.payload["text"]["content"]
    assert row.payload["enable_duplicate_check"] == 1
    assert row.dedupe_key.startswith("bot:wecom:msg:")


def test_bad_signature_is_403_and_nothing_happens(wecom, world):
    r = wecom.post(wecom.text_xml("待审批"), token="forged-token")
    assert r.status_code == 403
    assert outbox_rows() == [] and inbound_count() == 0


def test_wrong_corp_id_is_403(wecom, world):
    # Correctly signed with our token, but encrypted for another corp.
    r = wecom.post(wecom.text_xml("待审批"), corp_id="ww-someone-else")
    assert r.status_code == 403
    assert outbox_rows() == [] and inbound_count() == 0


def test_stale_timestamp_is_403_even_with_a_valid_signature(wecom, world):
    r = wecom.post(wecom.text_xml("待审批"), timestamp=int(time.time()) - 301)
    assert r.status_code == 403
    assert wecom.verify_url(timestamp=int(time.time()) - 600).status_code == 403
    assert outbox_rows() == []
    # Within the window it is accepted.
    assert wecom.post(wecom.text_xml("待审批"), timestamp=int(time.time()) - 200).status_code == 200


@pytest.mark.parametrize("body", [b"", b"not xml", b"<xml><Foo>1</Foo></xml>", b"<xml><Encrypt>!!notbase64</Encrypt></xml>"])
def test_garbage_bodies_are_403(client, wecom, body):
    ts = str(int(time.time()))
    r = client.post(
        "/wecom/callback",
        query_string={"msg_signature": sign(wecom.token, ts, "n", "x"), "timestamp": ts, "nonce": "n"},
        data=body, content_type="text/xml",
    )
    assert r.status_code == 403


def test_correctly_signed_undecryptable_payload_is_403(client, wecom):
    ts = str(int(time.time()))
    encrypted = "QUJDREVGR0hJSktMTU5PUA=="  # 16 bytes: a valid block, garbage inside
    r = client.post(
        "/wecom/callback",
        query_string={"msg_signature": sign(wecom.token, ts, "n", encrypted), "timestamp": ts, "nonce": "n"},
        data=f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode(), content_type="text/xml",
    )
    assert r.status_code == 403


def test_duplicate_msgid_is_handled_once(wecom, world):
    xml = wecom.text_xml("待审批", msg_id=7330000000000099999)
    first, second = wecom.post(xml), wecom.post(xml, nonce="another-nonce")
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.get_data() == b""
    assert len(outbox_rows()) == 1
    assert inbound_count() == 1


def test_events_dedupe_by_sender_and_create_time(wecom, world):
    xml = wecom.card_event_xml("approve:SO202601010001", create_time=1764000000)
    wecom.post(xml)
    wecom.post(xml)
    rows = db.session.execute(select(InboundEvent.dedupe_key)).scalars().all()
    assert rows == ["wecom:evt:WangYeWu:1764000000:template_card_event:RC-1"]
    assert len(outbox_rows()) == 1  # one "not found" reply, not two


def test_two_taps_in_the_same_second_are_both_taken(wecom, world):
    # Two different cards tapped within one second: same sender and CreateTime, but each
    # tap has its own ResponseCode.
    wecom.post(wecom.card_event_xml("approve:SO202601010001", create_time=1764000000, response_code="RC-a"))
    wecom.post(wecom.card_event_xml("approve:SO202601010002", create_time=1764000000, response_code="RC-b"))
    assert inbound_count() == 2
    assert len(outbox_rows()) == 2


@pytest.mark.parametrize("timestamp", ["²", "¹²³", "１２３", "-5", "12a"])
def test_a_timestamp_that_is_not_ascii_digits_is_refused(wecom, timestamp):
    query = {"msg_signature": "x", "timestamp": timestamp, "nonce": "n"}
    assert wecom.client.post("/wecom/callback", query_string=query, data=b"<xml/>").status_code == 403
    assert wecom.client.get("/wecom/callback", query_string={**query, "echostr": "e"}).status_code == 403


def test_failed_handover_forgets_the_message_so_wecoms_retry_is_taken(wecom, world, monkeypatch):
    import app.jobs

    def broken(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr(app.jobs, "enqueue", broken)
    xml = wecom.text_xml("帮助")
    assert wecom.post(xml).status_code == 503
    assert inbound_count() == 0
    monkeypatch.undo()
    assert wecom.post(xml).status_code == 200
    assert len(outbox_rows()) == 1


@pytest.mark.redis
def test_with_redis_the_work_goes_to_the_high_queue(app, client, world, redis_url):
    import redis
    from rq import Queue

    conn = redis.Redis.from_url(redis_url)
    queue = Queue("high", connection=conn)
    queue.empty()
    app.config["REDIS_URL"] = redis_url
    wecom = WeCom(client, app.config)
    try:
        r = wecom.say("帮助", msg_id=7330000000000012345)
        assert r.status_code == 200 and r.get_data() == b""
        assert outbox_rows() == []  # answered before the work is done
        jobs = queue.get_jobs()
        assert len(jobs) == 1
        job = jobs[0]
        assert job.func_name == "bots.inbound.handle_inbound"
        assert job.timeout == 30
        # A failed run is retried (WeCom's own retry would be ignored as a duplicate).
        assert (job.retries_left, job.retry_intervals) == (3, [5, 30, 60])
        message = job.args[0]
        assert message["Content"] == "帮助" and message["dedupe_key"] == "wecom:msg:7330000000000012345"
        job.perform()  # what a worker does, in this app context
        job.perform()  # a retried job answers once
        rows = outbox_rows()
        assert len(rows) == 1 and rows[0].recipient == "WangYeWu"
    finally:
        queue.empty()
        app.config["REDIS_URL"] = None


def test_refusals_use_the_one_error_shape(wecom):
    r = wecom.post(wecom.text_xml("帮助"), token="forged-token")
    assert r.status_code == 403
    assert r.json["error"]["code"] == "forbidden" and r.json["error"]["details"] == {"reason": "bad_signature"}


@pytest.mark.parametrize("bad_key", ["short", "!" * 43])
def test_a_misconfigured_aes_key_is_a_503_not_a_crash(app, wecom, bad_key):
    app.config["WECOM_AES_KEY"] = bad_key
    r = wecom.client.get("/wecom/callback", query_string={
        "msg_signature": "x", "timestamp": str(int(time.time())), "nonce": "n", "echostr": "e"})
    assert r.status_code == 503 and r.json["error"]["code"] == "wecom_not_configured"
    r = wecom.client.post("/wecom/callback", query_string={
        "msg_signature": "x", "timestamp": str(int(time.time())), "nonce": "n"}, data=b"<xml/>")
    assert r.status_code == 503


def test_old_dedupe_records_are_forgotten(wecom, world):
    from datetime import timedelta

    from sqlalchemy import update

    from app.kernel.clock import utcnow
    from bots.callback import forget_old_inbound_events

    wecom.say("帮助")
    wecom.say("待审批")
    db.session.execute(update(InboundEvent).where(InboundEvent.id == 1).values(received_at=utcnow() - timedelta(days=4)))
    db.session.commit()
    assert forget_old_inbound_events() == 1
    assert inbound_count() == 1
