"""The stand-in itself: the documented answers other tests and the demo rely on.

Raw HTTP with requests, so these pin down what the stand-in says on the wire.
"""
import pytest
import requests

from devtools.standin import StandinServer

APP_ID, SECRET = "wx-standin-appid", "standin-secret"
CORP_ID, CORP_SECRET, AGENT_ID = "ww-standin", "standin-wecom-secret", 1000009


@pytest.fixture(scope="module")
def standin():
    server = StandinServer.start(
        app_id=APP_ID, secret=SECRET, corp_id=CORP_ID, corp_secret=CORP_SECRET, agent_id=AGENT_ID,
        robot_keys=("k1",),
    )
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean(standin):
    standin.reset()


def post(standin, path, body, **params):
    return requests.post(f"{standin.base_url}{path}", params=params, json=body, timeout=3).json()


def mp_token(standin):
    body = {"grant_type": "client_credential", "appid": APP_ID, "secret": SECRET, "force_refresh": False}
    return post(standin, "/cgi-bin/stable_token", body)["access_token"]


def wecom_token(standin):
    return requests.get(
        f"{standin.base_url}/cgi-bin/gettoken", params={"corpid": CORP_ID, "corpsecret": CORP_SECRET}, timeout=3
    ).json()["access_token"]


def subscribe(standin, data, token=None, **extra):
    body = {"touser": "o-1", "template_id": "t-1", "data": data, **extra}
    return post(standin, "/cgi-bin/message/subscribe/send", body, access_token=token or mp_token(standin))


def value(v):
    return {"value": v}


@pytest.mark.parametrize(
    "key, good, bad",
    [
        ("thing1", "二十个字" * 5, "二十个字" * 5 + "多"),
        ("phrase2", "已发货", "已经全部发货了"),
        ("number3", "12.5", "12a"),
        ("character_string4", "SO202611260001", "订单SO1"),
        ("amount5", "¥1280.00", "一千元"),
        ("letter6", "abc", "abc1"),
        ("phone_number7", "+86-020-12345678", "电话"),
        ("name8", "王业务", "王" * 11),
    ],
)
def test_subscribe_data_follows_wechats_per_type_rules(standin, key, good, bad):
    assert subscribe(standin, {key: value(good)})["errcode"] == 0
    answer = subscribe(standin, {key: value(bad)})
    assert answer["errcode"] == 47003
    assert answer["errmsg"].startswith(f"argument invalid! data.{key}.value")
    assert len(standin.delivered) == 1


def test_empty_data_value_is_47003_is_empty(standin):
    answer = subscribe(standin, {"thing1": value("")})
    assert answer == {"errcode": 47003, "errmsg": "argument invalid! data.thing1.value is empty"}


def test_subscribe_checks_token_touser_template_and_state(standin):
    data = {"thing1": value("好")}
    assert post(standin, "/cgi-bin/message/subscribe/send", {"touser": "o", "template_id": "t", "data": data})[
        "errcode"] == 41001
    assert subscribe(standin, data, token="forged")["errcode"] == 40001
    token = mp_token(standin)
    assert post(standin, "/cgi-bin/message/subscribe/send", {"template_id": "t", "data": data},
                access_token=token)["errcode"] == 40003
    assert post(standin, "/cgi-bin/message/subscribe/send", {"touser": "o", "template_id": "", "data": data},
                access_token=token)["errcode"] == 40037
    assert subscribe(standin, data, miniprogram_state="production")["errcode"] == 47003
    assert subscribe(standin, data, lang="fr_FR")["errcode"] == 47003
    assert standin.delivered == []


def test_tokens_survive_reset_and_end_with_expire_tokens(standin):
    token = mp_token(standin)
    standin.reset()
    assert subscribe(standin, {"thing1": value("好")}, token=token)["errcode"] == 0
    standin.expire_tokens()
    assert subscribe(standin, {"thing1": value("好")}, token=token)["errcode"] == 42001
    assert mp_token(standin) != token


def test_gettoken_errors(standin):
    def gettoken(**params):
        return requests.get(f"{standin.base_url}/cgi-bin/gettoken", params=params, timeout=3).json()

    assert gettoken()["errcode"] == 41002
    assert gettoken(corpid="ww-x", corpsecret=CORP_SECRET)["errcode"] == 40013
    assert gettoken(corpid=CORP_ID)["errcode"] == 41004
    assert gettoken(corpid=CORP_ID, corpsecret="x")["errcode"] == 40001
    ok = gettoken(corpid=CORP_ID, corpsecret=CORP_SECRET)
    assert ok["errcode"] == 0 and ok["expires_in"] > 7000
    assert gettoken(corpid=CORP_ID, corpsecret=CORP_SECRET)["access_token"] == ok["access_token"]


def app_message(standin, body, token=None):
    return post(standin, "/cgi-bin/message/send", body, access_token=token or wecom_token(standin))


def text(content, to="WangYeWu"):
    return {"touser": to, "agentid": AGENT_ID, "msgtype": "text", "text": {"content": content}}


def test_app_message_checks(standin):
    token = wecom_token(standin)
    assert app_message(standin, text("hi"), token="forged")["errcode"] == 40014
    assert app_message(standin, {**text("hi"), "agentid": 1}, token)["errcode"] == 40056
    assert app_message(standin, {**text("hi"), "msgtype": "sms"}, token)["errcode"] == 40008
    assert app_message(standin, text("  "), token)["errcode"] == 44004
    assert app_message(standin, text("hi", to=""), token)["errcode"] == 81013
    standin.mark_invalid("Gone")
    partly = app_message(standin, text("hi", to="Gone|WangYeWu"), token)
    assert partly["errcode"] == 0 and partly["invaliduser"] == "gone"
    assert [d["to"] for d in standin.delivered] == ["WangYeWu"]


def test_interactive_card_needs_a_unique_task_id(standin):
    card = {
        "touser": "WangYeWu", "agentid": AGENT_ID, "msgtype": "template_card",
        "template_card": {
            "card_type": "button_interaction", "task_id": "order-SO1", "main_title": {"title": "新订单待审批"},
            "button_list": [{"text": "通过", "key": "approve:SO1"}],
        },
    }
    token = wecom_token(standin)
    assert app_message(standin, card, token)["response_code"]
    assert app_message(standin, card, token)["errcode"] == 40058  # same task_id again
    bad = {**card, "template_card": {**card["template_card"], "task_id": "订单 1"}}
    assert app_message(standin, bad, token)["errcode"] == 40058


def test_more_than_30_messages_a_minute_to_one_member_are_silently_dropped(standin):
    token = wecom_token(standin)
    answers = [app_message(standin, text(f"第 {i} 条"), token) for i in range(31)]
    assert all(a["errcode"] == 0 for a in answers)
    assert len(standin.delivered_to("WangYeWu")) == 30
    assert [d["body"]["text"]["content"] for d in standin.dropped] == ["第 30 条"]


def test_duplicate_check_interval_is_honoured(standin, clock):
    body = {**text("重复"), "enable_duplicate_check": 1, "duplicate_check_interval": 1}
    token = wecom_token(standin)
    app_message(standin, body, token)
    clock.advance(seconds=0.9)
    app_message(standin, body, token)
    assert len(standin.delivered) == 1
    clock.advance(seconds=0.2)
    app_message(standin, body, token)
    assert len(standin.delivered) == 2


def test_fault_route_accepts_wecom_paths_and_index_lists_deliveries_in_chinese(standin):
    r = requests.post(f"{standin.base_url}/_standin/faults",
                      json={"path": "/cgi-bin/message/send", "errcode": 45009}, timeout=3)
    assert r.status_code == 201
    assert app_message(standin, text("限流"))["errcode"] == 45009
    assert app_message(standin, text("订单 SO202611260001 待审批"))["errcode"] == 0
    post(standin, "/cgi-bin/webhook/send", {"msgtype": "markdown", "markdown": {"content": "**今日日报**"}}, key="k1")
    subscribe(standin, {"thing1": value("订单已通过")})
    page = requests.get(f"{standin.base_url}/", timeout=3).text
    assert "最近送达的通知" in page and "生成登录码" in page
    for expected in ("企业微信应用消息", "订单 SO202611260001 待审批", "企业微信群机器人", "**今日日报**",
                     "小程序订阅消息", "订单已通过"):
        assert expected in page
    assert "限流" not in page
    listed = requests.get(f"{standin.base_url}/_standin/delivered", timeout=3).json()
    assert [d["channel"] for d in listed] == ["wecom_app", "wecom_robot", "mp_subscribe"]


def test_index_escapes_message_content(standin):
    app_message(standin, text("<script>alert(1)</script>"))
    assert "<script>alert(1)</script>" not in requests.get(f"{standin.base_url}/", timeout=3).text


def test_limits_can_be_turned_off_for_benchmarks():
    server = StandinServer.start(corp_id=CORP_ID, corp_secret=CORP_SECRET, agent_id=AGENT_ID, robot_keys=("k1",),
                                 member_limit=None, robot_limit=None)
    try:
        token = wecom_token(server)
        for i in range(35):
            assert app_message(server, text(f"第 {i} 条"), token)["errcode"] == 0
        for i in range(25):
            assert post(server, "/cgi-bin/webhook/send", {"msgtype": "text", "text": {"content": str(i)}},
                        key="k1")["errcode"] == 0
        assert len(server.delivered) == 60 and server.dropped == []
    finally:
        server.stop()


def test_enforced_subscriptions_allow_one_message_per_acceptance(standin):
    data = {"thing1": value("订单已通过")}
    assert subscribe(standin, data)["errcode"] == 0  # not enforced: anything goes
    standin.require_subscriptions()
    assert subscribe(standin, data)["errcode"] == 43101
    accepted = post(standin, "/_standin/wx/subscribe", {"openid": "o-1", "template_ids": ["t-1"]})
    assert accepted == {"t-1": "accept"}
    standin.grant_subscription("o-1", "t-1")
    assert subscribe(standin, data)["errcode"] == 0
    assert subscribe(standin, data)["errcode"] == 0
    assert subscribe(standin, data)["errcode"] == 43101
    assert len(standin.delivered) == 3
    standin.reset()  # back to not enforced
    assert subscribe(standin, data)["errcode"] == 0


# --- Kuaidi100 ---------------------------------------------------------------------------------

def poll(standin, param, schema="json"):
    import json

    form = {"schema": schema, "param": json.dumps(param, ensure_ascii=False)}
    return requests.post(f"{standin.base_url}/poll", data=form, timeout=3).json()


def kuaidi100_param(standin, **changes):
    param = {"company": "zhongtong", "number": "ZT7788990011", "key": standin.kuaidi100.key,
             "parameters": {"callbackurl": "http://127.0.0.1:9/cb", "salt": "s-1", "resultv2": "1"}}
    return {**param, **changes}


def test_kuaidi100_poll_checks_the_key_and_the_data_and_answers_as_documented(standin):
    assert poll(standin, kuaidi100_param(standin)) == {"result": True, "returnCode": "200", "message": "提交成功"}
    again = poll(standin, kuaidi100_param(standin))
    assert (again["result"], again["returnCode"]) == (False, "501")  # still polling: 重复订阅
    assert poll(standin, kuaidi100_param(standin, key="wrong"))["returnCode"] == "600"
    assert poll(standin, kuaidi100_param(standin, number="123"))["returnCode"] == "700"
    assert poll(standin, kuaidi100_param(standin, company="ShunFeng!"))["returnCode"] == "700"
    assert poll(standin, kuaidi100_param(standin, company="shunfeng", number="SF1000000001"))["returnCode"] == "700"
    standin.kuaidi100.fail_next("500")
    assert poll(standin, kuaidi100_param(standin, number="ZT0000000001"))["returnCode"] == "500"


def test_kuaidi100_pushes_are_signed_with_the_subscriptions_salt(standin):
    import hashlib
    import json

    poll(standin, kuaidi100_param(standin))
    form, url = standin.kuaidi100.push_form("zhongtong", "ZT7788990011", state=0, context="运输中",
                                            time="2026-12-01 10:00:00", area_name="上海市")
    assert url == "http://127.0.0.1:9/cb"
    assert form["sign"] == hashlib.md5((form["param"] + "s-1").encode()).hexdigest().upper()
    form, _ = standin.kuaidi100.push_form("zhongtong", "ZT7788990011", state=3, context="已签收",
                                          time="2026-12-01 18:00:00")
    param = json.loads(form["param"])
    assert (param["status"], param["lastResult"]["state"], param["lastResult"]["ischeck"]) == ("shutdown", "3", "1")
    assert [d["context"] for d in param["lastResult"]["data"]] == ["已签收", "运输中"]  # newest first
    assert param["lastResult"]["data"][1] == {"context": "运输中", "time": "2026-12-01 10:00:00",
                                              "ftime": "2026-12-01 10:00:00", "areaCode": None, "areaName": "上海市",
                                              "status": "在途"}
    # The callback at http://127.0.0.1:9 does not answer: the control route says so.
    r = requests.post(f"{standin.base_url}/_standin/kuaidi100/push", timeout=15,
                      json={"company": "zhongtong", "number": "ZT7788990011", "state": 3, "context": "已签收"})
    assert r.status_code == 502 and r.json()["ok"] is False
