"""docs/dev/standin.md against the stand-in: the control routes it lists are the ones the
stand-in has (both ways), and the bodies and answers it gives hold over real HTTP."""

import re
from pathlib import Path

import pytest
import requests

from devtools.standin import StandinServer, create_standin_app

PAGE = Path(__file__).resolve().parents[1] / "docs" / "dev" / "standin.md"


def documented_routes():
    found = set()
    for line in PAGE.read_text().splitlines():
        if line.startswith("| `"):
            for method, path in re.findall(r"`(GET|POST) (/_standin/[^\s`?]*)", line.split(" | ")[0]):
                found.add((method, re.sub(r"<[^>]+>", "<>", path)))
    return found


def test_the_page_lists_every_control_route_and_only_those():
    app = create_standin_app()
    served = {
        (method, re.sub(r"<[^>]+>", "<>", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/_standin/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert sorted(documented_routes() - served) == []
    assert sorted(served - documented_routes()) == []


@pytest.fixture(scope="module")
def standin():
    server = StandinServer.start()
    yield server
    server.stop()


def post(standin, path, body=None):
    return requests.post(f"{standin.base_url}{path}", json=body, timeout=5)


def test_the_documented_bodies_and_answers(standin):
    answer = post(standin, "/_standin/wx/login", {})
    assert answer.status_code == 200 and answer.json()["code"]
    answer = post(standin, "/_standin/wx/subscribe", {"openid": "o-doc", "template_ids": ["t1"]})
    assert answer.json() == {"t1": "accept"}
    assert post(standin, "/_standin/wx/subscribe", {"openid": "o-doc"}).status_code == 400

    assert post(standin, "/_standin/wecom/tap", {"user": "ZhangWei"}).status_code == 400
    assert post(standin, "/_standin/wecom/say", {"user": "ZhangWei"}).status_code == 400
    created = post(standin, "/_standin/wecom/groups", {"name": "鑫达客户群", "owner": "ZhangWei"})
    assert created.status_code == 201 and created.json()["chat_id"]
    assert post(standin, "/_standin/wecom/groups", {"name": "没有群主"}).status_code == 400
    assert post(standin, f"/_standin/wecom/groups/{created.json()['chat_id']}/dismiss").status_code == 200
    assert post(standin, "/_standin/wecom/groups/no-such-chat/dismiss").status_code == 404
    assert requests.get(f"{standin.base_url}/_standin/wecom/groupmsg", timeout=5).json() == []
    assert post(standin, "/_standin/wecom/groupmsg/confirm", {"msgid": "x", "userid": "ZhangWei"}).status_code == 409

    assert post(standin, "/_standin/pay/SO202611260001P01/pay").status_code == 404
    assert post(standin, "/_standin/pay/refunds/RT1-R1-1/settle?status=SUCCESS").status_code == 404
    assert requests.get(f"{standin.base_url}/_standin/pay/orders", timeout=5).status_code == 200
    assert requests.get(f"{standin.base_url}/_standin/pay/refunds", timeout=5).json() == []

    assert post(standin, "/_standin/kuaidi100/push", {"company": "shunfeng", "number": "SF1000000001",
                                                      "state": 5, "context": "快件派送中"}).status_code == 404
    assert post(standin, "/_standin/kuaidi100/push", {"company": "shunfeng", "state": "5"}).status_code == 400
    assert post(standin, "/_standin/kuaidi100/fail", {"return_code": "600"}).status_code == 201
    assert post(standin, "/_standin/kuaidi100/fail", {"return_code": "200"}).status_code == 400
    assert requests.get(f"{standin.base_url}/_standin/kuaidi100/subscriptions", timeout=5).json() == []

    fault = post(standin, "/_standin/faults", {"path": "/cgi-bin/message/send", "errcode": 45009})
    assert fault.status_code == 201 and fault.json()["times"] == 1
    assert post(standin, "/_standin/faults", {"path": "/nowhere"}).status_code == 400
    assert isinstance(requests.get(f"{standin.base_url}/_standin/requests", timeout=5).json(), list)
    assert isinstance(requests.get(f"{standin.base_url}/_standin/delivered", timeout=5).json(), list)
    assert post(standin, "/_standin/reset").json() == {"ok": True}
