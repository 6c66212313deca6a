"""WeComGateway against the stand-in, over real HTTP on 127.0.0.1.

Imports only the integration modules: no Flask main app, no database.
"""
import socket
import time

import pytest

from app.integrations.wechat_errors import WeChatError, WeChatRateLimited, WeChatUnavailable
from app.integrations.wechat_gateways import WeComGateway, _raise_if_recipient_invalid
from devtools.standin import StandinServer

CORP_ID = "ww-test-corpid"
CORP_SECRET = "test-wecom-secret"
AGENT_ID = 1000005
ROBOT_KEY = "test-robot-key"
REP = "WangYeWu"
SEND = "/cgi-bin/message/send"
UPDATE = "/cgi-bin/message/update_template_card"
ROBOT = "/cgi-bin/webhook/send"
GETTOKEN = "/cgi-bin/gettoken"


@pytest.fixture(scope="module")
def standin():
    server = StandinServer.start(corp_id=CORP_ID, corp_secret=CORP_SECRET, agent_id=AGENT_ID, robot_keys=(ROBOT_KEY,))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean_standin(standin):
    standin.reset()


def make_gateway(standin, secret=CORP_SECRET, corp_id=CORP_ID, timeout=2, redis_url=None, agent_id=AGENT_ID):
    return WeComGateway(corp_id, agent_id, secret, standin.base_url, timeout, redis_url=redis_url)


def paths(standin):
    return [r["path"] for r in standin.requests]


TEXT = {
    "msgtype": "text",
    "text": {"content": "经销商 DA01 的订单 SO202611260001 已发货"},
    "enable_duplicate_check": 1,
    "duplicate_check_interval": 1800,
}


def approval_card(order_no="SO202611260001"):
    return {
        "msgtype": "template_card",
        "template_card": {
            "card_type": "button_interaction",
            "source": {"desc": "订货"},
            "main_title": {"title": "新订单待审批", "desc": f"{order_no}｜华南一号经销商"},
            "horizontal_content_list": [{"keyname": "金额", "value": "¥12,800.00"}],
            "task_id": f"order-{order_no}",
            "button_list": [
                {"text": "通过", "style": 1, "key": f"approve:{order_no}"},
                {"text": "驳回", "style": 2, "key": f"reject:{order_no}"},
            ],
        },
    }


# --- tokens ------------------------------------------------------------------------------

def test_token_comes_from_gettoken_on_the_configured_base_and_is_cached(standin):
    gateway = make_gateway(standin)
    token = gateway.access_token()
    (req,) = standin.requests
    assert req["method"] == "GET" and req["path"] == GETTOKEN
    assert req["query"] == {"corpid": CORP_ID, "corpsecret": CORP_SECRET}
    assert gateway.access_token() == token
    gateway.send_app_message(REP, TEXT)
    assert paths(standin) == [GETTOKEN, SEND]


def test_wrong_secret_is_40001_from_gettoken_and_not_retried(standin):
    with pytest.raises(WeChatError) as info:
        make_gateway(standin, secret="wrong").send_app_message(REP, TEXT)
    assert info.value.errcode == 40001 and info.value.permanent
    assert paths(standin) == [GETTOKEN]


def test_wrong_corp_id_is_40013(standin):
    with pytest.raises(WeChatError) as info:
        make_gateway(standin, corp_id="ww-other").access_token()
    assert info.value.errcode == 40013 and info.value.permanent


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
def test_token_rejected_once_is_refreshed_and_retried_once(standin, errcode):
    standin.fail_next(SEND, errcode=errcode)
    result = make_gateway(standin).send_app_message(REP, TEXT)
    assert result["errcode"] == 0 and result["msgid"]
    assert paths(standin) == [GETTOKEN, SEND, GETTOKEN, SEND]
    assert len(standin.delivered_to(REP)) == 1


def test_expired_wecom_token_is_replaced(standin):
    gateway = make_gateway(standin)
    old = gateway.access_token()
    standin.expire_tokens()
    gateway.send_app_message(REP, TEXT)
    assert gateway.access_token() != old
    assert len(standin.delivered_to(REP)) == 1


def test_second_token_error_goes_to_the_caller(standin):
    standin.fail_next(SEND, errcode=40014, times=2)
    with pytest.raises(WeChatError) as info:
        make_gateway(standin).send_app_message(REP, TEXT)
    assert info.value.errcode == 40014 and info.value.permanent
    assert paths(standin).count(SEND) == 2


# --- app messages ------------------------------------------------------------------------------

def test_app_message_adds_touser_and_integer_agentid(standin):
    result = make_gateway(standin, agent_id=str(AGENT_ID)).send_app_message(REP, TEXT)
    send = standin.requests[-1]
    assert send["json"] == {**TEXT, "touser": REP, "agentid": AGENT_ID}
    assert isinstance(send["json"]["agentid"], int)
    assert result["msgid"]
    (delivered,) = standin.delivered
    assert delivered["channel"] == "wecom_app" and delivered["to"] == REP


def test_markdown_message(standin):
    payload = {"msgtype": "markdown", "markdown": {"content": "**信用额度预警**\n> 经销商：华南一号"}}
    make_gateway(standin).send_app_message(REP, payload)
    assert standin.delivered[0]["body"]["markdown"] == payload["markdown"]


def test_template_card_returns_a_response_code_that_updates_the_card_once(standin):
    gateway = make_gateway(standin)
    sent = gateway.send_app_message(REP, approval_card())
    assert sent["response_code"]
    update = {"response_code": sent["response_code"], "button": {"replace_name": "已通过"}}
    result = gateway.update_template_card(REP, update)
    assert result["errcode"] == 0
    assert standin.requests[-1]["json"] == {**update, "userids": [REP], "agentid": AGENT_ID}
    assert [d["channel"] for d in standin.delivered] == ["wecom_app", "wecom_card"]
    # A response_code is good for one update only.
    with pytest.raises(WeChatError) as info:
        gateway.update_template_card(REP, update)
    assert info.value.permanent


def test_invalid_user_is_81013_permanent(standin):
    standin.mark_invalid("LeftTheCompany")
    with pytest.raises(WeChatError) as info:
        make_gateway(standin).send_app_message("LeftTheCompany", TEXT)
    assert info.value.errcode == 81013 and info.value.permanent
    assert standin.delivered == []


def test_recipient_reported_in_invaliduser_with_errcode_0_is_81013():
    ok = {"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": "1"}
    _raise_if_recipient_invalid(REP, ok)
    for invalid in ("wangyewu", "other|wangyewu", ["wangyewu"]):
        with pytest.raises(WeChatError) as info:
            _raise_if_recipient_invalid(REP, {**ok, "invaliduser": invalid})
        assert info.value.errcode == 81013 and info.value.permanent
    _raise_if_recipient_invalid(REP, {**ok, "invaliduser": "someoneelse"})


def test_duplicate_check_delivers_identical_content_once(standin):
    gateway = make_gateway(standin)
    first = gateway.send_app_message(REP, TEXT)
    second = gateway.send_app_message(REP, TEXT)
    assert second["errcode"] == 0 and second["msgid"] == first["msgid"]
    assert len(standin.delivered_to(REP)) == 1
    gateway.send_app_message(REP, {**TEXT, "text": {"content": "另一条内容"}})
    assert len(standin.delivered_to(REP)) == 2


def test_without_duplicate_check_identical_content_is_delivered_twice(standin):
    gateway = make_gateway(standin)
    payload = {"msgtype": "text", "text": {"content": "同样的内容"}}
    gateway.send_app_message(REP, payload)
    gateway.send_app_message(REP, payload)
    assert len(standin.delivered_to(REP)) == 2


def test_45009_is_rate_limited(standin):
    standin.fail_next(SEND, errcode=45009)
    with pytest.raises(WeChatRateLimited) as info:
        make_gateway(standin).send_app_message(REP, TEXT)
    assert info.value.errcode == 45009 and not info.value.permanent


@pytest.mark.parametrize("fault", [{"http_status": 500}, {"http_status": 503}, {"errcode": -1}])
def test_server_trouble_is_unavailable(standin, fault):
    standin.fail_next(SEND, **fault)
    with pytest.raises(WeChatUnavailable):
        make_gateway(standin).send_app_message(REP, TEXT)
    assert standin.delivered == []


def test_slow_reply_beyond_the_timeout_is_unavailable(standin):
    gateway = make_gateway(standin, timeout=0.3)
    gateway.access_token()
    standin.fail_next(SEND, delay_seconds=1.5)
    started = time.monotonic()
    with pytest.raises(WeChatUnavailable):
        gateway.send_app_message(REP, TEXT)
    assert time.monotonic() - started < 1.2


def test_connection_refused_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = WeComGateway(CORP_ID, AGENT_ID, CORP_SECRET, f"http://127.0.0.1:{port}", 1)
    for call in (lambda: gateway.send_app_message(REP, TEXT),
                 lambda: gateway.send_robot_message(ROBOT_KEY, {"msgtype": "text", "text": {"content": "x"}})):
        with pytest.raises(WeChatUnavailable):
            call()


# --- group robot --------------------------------------------------------------------------------

def markdown(content):
    return {"msgtype": "markdown", "markdown": {"content": content}}


def test_robot_message_posts_to_webhook_with_key_and_no_token(standin):
    payload = markdown("## 今日销售日报\n> 订单 **12** 笔，金额 ¥35,600.00")
    result = make_gateway(standin).send_robot_message(ROBOT_KEY, payload)
    assert result["errcode"] == 0
    (req,) = standin.requests
    assert req["path"] == ROBOT and req["query"] == {"key": ROBOT_KEY}
    assert req["json"] == payload
    assert standin.delivered_to(ROBOT_KEY, channel="wecom_robot")


def test_robot_markdown_of_4096_bytes_is_sent_and_4097_refused_before_sending(standin):
    gateway = make_gateway(standin)
    gateway.send_robot_message(ROBOT_KEY, markdown("订" * 1365 + "a"))  # 1365 × 3 + 1 = 4096 bytes
    with pytest.raises(WeChatError) as info:
        gateway.send_robot_message(ROBOT_KEY, markdown("订" * 1365 + "ab"))
    assert info.value.permanent and "4096" in info.value.errmsg
    assert len(standin.requests) == 1  # the long one never left


def test_robot_content_limit_is_enforced_by_the_standin_too(standin):
    # Bypass the gateway's own check to see WeCom's (the stand-in's) answer.
    client = make_gateway(standin)._client
    with pytest.raises(WeChatError) as info:
        client.request_json("post", ROBOT, params={"key": ROBOT_KEY, "access_token": None},
                            data=markdown("x" * 4097))
    assert info.value.errcode == 40058 and info.value.permanent


def test_unknown_robot_key_is_93000_permanent(standin):
    with pytest.raises(WeChatError) as info:
        make_gateway(standin).send_robot_message("no-such-key", markdown("hi"))
    assert info.value.errcode == 93000 and info.value.permanent


def test_robot_over_20_a_minute_is_rate_limited(standin):
    gateway = make_gateway(standin)
    for i in range(20):
        gateway.send_robot_message(ROBOT_KEY, markdown(f"第 {i + 1} 条"))
    with pytest.raises(WeChatRateLimited) as info:
        gateway.send_robot_message(ROBOT_KEY, markdown("第 21 条"))
    assert info.value.errcode == 45009
    assert len(standin.delivered_to(ROBOT_KEY)) == 20


def test_from_config(standin):
    gateway = WeComGateway.from_config({
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_AGENT_ID": AGENT_ID,
        "WECOM_SECRET": CORP_SECRET,
        "WECOM_API_BASE": standin.base_url,
        "WECHAT_HTTP_TIMEOUT": 3,
        "REDIS_URL": None,
    })
    assert gateway.send_app_message(REP, TEXT)["errcode"] == 0


@pytest.mark.redis
def test_wecom_token_is_shared_through_redis(standin, redis_url):
    import redis

    key = f"dinghuo:wechat:wecom:{CORP_ID}:{AGENT_ID}:access_token"
    redis.Redis.from_url(redis_url).delete(key)
    try:
        token = make_gateway(standin, redis_url=redis_url).access_token()
        assert make_gateway(standin, redis_url=redis_url).access_token() == token
        assert paths(standin) == [GETTOKEN]
        assert redis.Redis.from_url(redis_url).get(key).decode() == token
    finally:
        redis.Redis.from_url(redis_url).delete(key)


def test_app_gateways_are_built_once_per_app_and_keep_their_token(standin):
    from flask import Flask

    from app.integrations.wechat_gateways import MiniProgramGateway, mini_program_gateway, wecom_gateway

    app = Flask(__name__)
    app.config.update({
        "WECOM_CORP_ID": CORP_ID, "WECOM_AGENT_ID": AGENT_ID, "WECOM_SECRET": CORP_SECRET,
        "WECOM_API_BASE": standin.base_url, "WECHAT_HTTP_TIMEOUT": 2, "REDIS_URL": None,
        "WECHAT_APP_ID": "wx-demo-appid", "WECHAT_APP_SECRET": "demo-app-secret", "WECHAT_API_BASE": standin.base_url,
    })
    assert wecom_gateway(app) is wecom_gateway(app)
    assert isinstance(mini_program_gateway(app), MiniProgramGateway)
    wecom_gateway(app).send_app_message(REP, TEXT)
    wecom_gateway(app).send_app_message(REP, {**TEXT, "text": {"content": "第二条"}})
    assert paths(standin) == [GETTOKEN, SEND, SEND]
