"""POST /subscriptions counts the one-time consents wx.requestSubscribeMessage returned;
GET /subscriptions/templates tells the mini-program which template ids to ask for."""
import pytest
from sqlalchemy import select

from app import create_app
from app.config import ConfigError
from app.extensions import db
from app.notify.models import SubscribeConsent
from tests.factories import auth
from tests.helpers import MP

APPROVED = "demo-tmpl-order-approved"
REJECTED = "demo-tmpl-order-rejected"
SHIPPED = "demo-tmpl-order-shipped"
PAYMENT = "demo-tmpl-payment-due"
POLICY, POLICY_REMINDER = "demo-tmpl-policy-published", "demo-tmpl-policy-reminder"


def subscribe(client, user, ids):
    return client.post(f"{MP}/subscriptions", headers=auth(user), json={"template_ids_accepted": ids})


def remaining(user):
    db.session.rollback()
    return dict(db.session.execute(
        select(SubscribeConsent.template_id, SubscribeConsent.remaining).where(SubscribeConsent.user_id == user.id)
    ).all())


def counts_of(resp):
    return {c["template_id"]: c["remaining"] for c in resp.get_json()["consents"]}


def test_templates_lists_the_configured_ids_with_chinese_titles(client, world):
    r = client.get(f"{MP}/subscriptions/templates", headers=auth(world.a_buyer))
    assert r.status_code == 200
    assert r.get_json()["templates"] == [
        {"event": "order_approved", "template_id": APPROVED, "title": "订单审核通过通知"},
        {"event": "order_rejected", "template_id": REJECTED, "title": "订单审核驳回通知"},
        {"event": "order_shipped", "template_id": SHIPPED, "title": "订单发货通知"},
        {"event": "payment_due", "template_id": PAYMENT, "title": "付款到期提醒"},
        {"event": "policy_published", "template_id": POLICY, "title": "政策发布通知"},
        {"event": "policy_reminder", "template_id": POLICY_REMINDER, "title": "政策阅读提醒"},
    ]


def test_templates_need_a_bound_user(client, world):
    assert client.get(f"{MP}/subscriptions/templates").status_code == 401


def test_each_accepted_template_adds_one_consent(client, world):
    r = subscribe(client, world.a_buyer, [APPROVED, SHIPPED])
    assert r.status_code == 200, r.get_json()
    assert counts_of(r) == {APPROVED: 1, REJECTED: 0, SHIPPED: 1, PAYMENT: 0, POLICY: 0, POLICY_REMINDER: 0}
    r = subscribe(client, world.a_buyer, [APPROVED])
    assert counts_of(r) == {APPROVED: 2, REJECTED: 0, SHIPPED: 1, PAYMENT: 0, POLICY: 0, POLICY_REMINDER: 0}
    consent = r.get_json()["consents"][0]
    assert consent == {"event": "order_approved", "template_id": APPROVED, "title": "订单审核通过通知", "remaining": 2}
    assert remaining(world.a_buyer) == {APPROVED: 2, SHIPPED: 1}
    assert remaining(world.a_owner) == {}  # consents belong to the user who gave them


def test_an_id_listed_twice_in_one_request_counts_once(client, world):
    r = subscribe(client, world.a_buyer, [APPROVED, APPROVED])
    assert counts_of(r)[APPROVED] == 1


def test_an_empty_list_records_nothing_and_answers_the_counts(client, world):
    subscribe(client, world.a_buyer, [REJECTED])
    r = subscribe(client, world.a_buyer, [])
    assert r.status_code == 200
    assert counts_of(r) == {APPROVED: 0, REJECTED: 1, SHIPPED: 0, PAYMENT: 0, POLICY: 0, POLICY_REMINDER: 0}


def test_viewers_may_subscribe(client, world):
    r = subscribe(client, world.a_viewer, [APPROVED])
    assert r.status_code == 200 and counts_of(r)[APPROVED] == 1


def test_unknown_template_ids_are_refused_with_the_bad_ids_listed(client, world):
    subscribe(client, world.a_buyer, [APPROVED])
    r = subscribe(client, world.a_buyer, [SHIPPED, "tmpl-someone-else", APPROVED, "zzz"])
    assert r.status_code == 422
    error = r.get_json()["error"]
    assert error["code"] == "unknown_template"
    assert "tmpl-someone-else" in error["message"] and "zzz" in error["message"] and "未在本系统配置" in error["message"]
    assert error["details"] == {"template_ids": ["tmpl-someone-else", "zzz"]}
    assert remaining(world.a_buyer) == {APPROVED: 1}  # nothing of the request was recorded


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"template_ids_accepted": "demo-tmpl-order-approved"},
        {"template_ids_accepted": [1]},
        {"template_ids_accepted": [None]},
        {"template_ids_accepted": [""]},
        {"template_ids_accepted": ["a\x00b"]},
        {"template_ids_accepted": ["模板"]},
        {"template_ids_accepted": ["x" * 65]},
        {"template_ids_accepted": [APPROVED] * 21},
        {"template_ids_accepted": [APPROVED], "extra": 1},
    ],
    ids=["missing", "not-a-list", "number", "null", "empty", "control-char", "chinese", "too-long", "21-items",
         "unknown-field"],
)
def test_bad_bodies_are_422_in_chinese_and_record_nothing(client, world, body):
    r = client.post(f"{MP}/subscriptions", headers=auth(world.a_buyer), json=body)
    assert r.status_code == 422, r.get_json()
    error = r.get_json()["error"]
    assert error["code"] == "validation_error" and error["details"]["fields"]
    assert remaining(world.a_buyer) == {}


def test_twenty_ids_are_allowed(client, world):
    r = subscribe(client, world.a_buyer, [APPROVED] * 10 + [SHIPPED] * 10)
    assert r.status_code == 200


def test_a_deactivated_user_cannot_subscribe(client, world):
    world.a_buyer.active = False
    db.session.commit()
    r = subscribe(client, world.a_buyer, [APPROVED])
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "not_bound"


def test_templates_come_from_configuration(monkeypatch, standin):
    monkeypatch.setenv("WECHAT_SUBSCRIBE_TEMPLATES", '{"order_shipped": "Abc_123-xyz"}')
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["WECHAT_SUBSCRIBE_TEMPLATES"] == {"order_shipped": "Abc_123-xyz"}
    with app.app_context():
        from app.notify.dealer_alerts import subscribe_templates

        assert subscribe_templates() == [{"event": "order_shipped", "template_id": "Abc_123-xyz", "title": "订单发货通知"}]


@pytest.mark.parametrize(
    "name, value",
    [
        ("WECHAT_SUBSCRIBE_TEMPLATES", "not json"),
        ("WECHAT_SUBSCRIBE_TEMPLATES", '["a"]'),
        ("WECHAT_SUBSCRIBE_TEMPLATES", '{"order_lost": "abc"}'),
        ("WECHAT_SUBSCRIBE_TEMPLATES", '{"order_approved": "bad id!"}'),
        ("WECHAT_SUBSCRIBE_FIELDS", '{"order_approved": {"thing1": "price"}}'),
        ("WECHAT_SUBSCRIBE_FIELDS", '{"order_approved": {"colour1": "order_no"}}'),
        ("WECHAT_SUBSCRIBE_FIELDS", '{"order_approved": {}}'),
        ("WECHAT_MINIPROGRAM_STATE", "beta"),
    ],
)
def test_bad_subscribe_configuration_refuses_to_start_in_chinese(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
