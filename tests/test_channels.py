"""Outbox channels are a registry: a new channel is one module that registers a sender, and
delivery treats it like the WeChat ones (sent, retried, failed, held back by its limit)."""
import pytest

from app.database import write_transaction
from app.extensions import db
from app.kernel.errors import DeliveryError
from app.notify import channels, delivery
from app.notify import service as outbox
from app.notify.models import Outbox

sent = []
answers = []  # what the next sends do: None (accept) or an exception to raise


def send_to_erp(config, row):
    """The whole 'module' of a webhook-like channel: post the payload, or raise DeliveryError."""
    answer = answers.pop(0) if answers else None
    if answer is not None:
        raise answer
    sent.append((row.recipient, row.payload))


class Busy(DeliveryError):
    permanent = False


class SlowDown(DeliveryError):
    permanent, rate_limited = False, True


@pytest.fixture
def erp_channel(app):
    sent.clear()
    answers.clear()
    channels.register(app, "erp_test", send_to_erp, rate_limit=(2, 60))
    yield
    channels.unregister(app, "erp_test")


def write_row(key, channel="erp_test", recipient="erp-1"):
    with write_transaction() as session:
        return outbox.add(session, channel=channel, event="order_placed", recipient=recipient,
                          payload={"order_no": key}, dedupe_key=key)


def row(outbox_id):
    db.session.rollback()  # end the read snapshot: delivery wrote on its own connection
    return db.session.get(Outbox, outbox_id)


def test_create_app_registers_the_wechat_and_wecom_channels(app):
    assert set(channels.names(app)) >= {"mp_subscribe", "wecom_app", "wecom_card", "wecom_robot"}
    assert channels.get("wecom_robot").rate_limit == (20, 60)


def test_a_registered_channel_is_delivered_by_the_generic_path(app, erp_channel):
    first = write_row("SO1")
    assert delivery.deliver(first) == "sent"
    assert sent == [("erp-1", {"order_no": "SO1"})] and row(first).status == "sent"
    assert delivery.deliver(first) == "skipped"  # a second job for the same row sends nothing


def test_its_errors_are_retried_or_failed_by_their_kind(app, erp_channel):
    transient, permanent = write_row("SO2"), write_row("SO3")
    answers.append(Busy(502, "bad gateway"))
    assert delivery.deliver(transient) == "retry"
    assert (row(transient).status, row(transient).attempts, row(transient).last_errcode) == ("pending", 1, 502)
    answers.append(DeliveryError(None, "对方拒绝：签名无效"))
    assert delivery.deliver(permanent) == "failed"
    assert (row(permanent).status, row(permanent).last_errmsg) == ("failed", "对方拒绝：签名无效")
    slow = write_row("SO4", recipient="erp-2")  # erp-1 has used its two sends a minute
    answers.append(SlowDown(429, "too many"))
    assert delivery.deliver(slow) == "retry" and row(slow).attempts == 0  # a wait, not a try


def test_its_rate_limit_holds_back_what_exceeds_it(app, erp_channel):
    ids = [write_row(f"SO-R{i}") for i in range(3)]
    assert [delivery.deliver(i) for i in ids] == ["sent", "sent", "held"]
    assert row(ids[2]).status == "pending" and len(sent) == 2


def test_a_row_whose_channel_is_gone_fails_in_chinese(app):
    channels.register(app, "nowhere", send_to_erp)
    try:
        lost = write_row("SO5", channel="nowhere")
    finally:
        channels.unregister(app, "nowhere")
    assert delivery.deliver(lost) == "failed"
    assert row(lost).last_errmsg == "未知的通知渠道 nowhere"


def test_writing_a_row_for_an_unregistered_channel_is_a_programming_error(app):
    with pytest.raises(ValueError):
        write_row("SO6", channel="nowhere")


def test_a_channel_name_is_registered_once(app):
    with pytest.raises(ValueError):
        channels.register(app, "wecom_app", send_to_erp)
