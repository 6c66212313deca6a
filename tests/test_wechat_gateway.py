"""MiniProgramGateway against the WeChat stand-in, over real HTTP on 127.0.0.1.

Imports only the integration modules: no Flask main app, no database.
"""
import socket
import time

import pytest

from app.integrations import wechat
from app.integrations.wechat_errors import WeChatError, WeChatRateLimited, WeChatUnavailable
from app.integrations.wechat_gateways import MiniProgramGateway
from devtools.standin import StandinServer

APP_ID = "wx-test-appid"
SECRET = "test-app-secret"


@pytest.fixture(scope="module")
def standin():
    server = StandinServer.start(app_id=APP_ID, secret=SECRET)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def connections(monkeypatch):
    """Record every outbound TCP connect and refuse any that is not 127.0.0.1."""
    seen = []
    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        seen.append(address)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] != "127.0.0.1":
            raise AssertionError(f"test tried to reach {address!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    return seen


@pytest.fixture(autouse=True)
def clean_standin(request):
    if "standin" in request.fixturenames:
        request.getfixturevalue("standin").reset()


def make_gateway(standin, secret=SECRET, app_id=APP_ID, timeout=2, redis_url=None):
    return MiniProgramGateway(app_id, secret, standin.base_url, timeout, redis_url=redis_url)


def test_code_to_session_returns_openid(standin):
    code = standin.mint_code("o-dealer-001")
    result = make_gateway(standin).code_to_session(code)
    assert result["openid"] == "o-dealer-001"
    assert result["session_key"]
    assert "unionid" in result


def test_code_to_session_makes_exactly_one_request_and_no_token_fetch(standin):
    code = standin.mint_code()
    make_gateway(standin).code_to_session(code)
    recorded = standin.requests
    assert len(recorded) == 1
    (req,) = recorded
    assert req["method"] == "GET"
    assert req["path"] == "/sns/jscode2session"
    assert req["query"] == {
        "appid": APP_ID,
        "secret": SECRET,
        "js_code": code,
        "grant_type": "authorization_code",
    }


def test_random_openid_when_none_given(standin):
    openid = make_gateway(standin).code_to_session(standin.mint_code())["openid"]
    assert openid.startswith("o") and len(openid) == 28


def test_reused_code_is_40163(standin):
    gateway = make_gateway(standin)
    code = standin.mint_code()
    gateway.code_to_session(code)
    with pytest.raises(WeChatError) as info:
        gateway.code_to_session(code)
    assert info.value.errcode == 40163
    assert not isinstance(info.value, WeChatUnavailable)


def test_unknown_code_is_40029(standin):
    with pytest.raises(WeChatError) as info:
        make_gateway(standin).code_to_session("no-such-code")
    assert info.value.errcode == 40029
    assert info.value.errmsg == "invalid code"


def test_wrong_secret_is_40125(standin):
    with pytest.raises(WeChatError) as info:
        make_gateway(standin, secret="wrong").code_to_session(standin.mint_code())
    assert info.value.errcode == 40125


def test_wrong_appid_is_40013(standin):
    with pytest.raises(WeChatError) as info:
        make_gateway(standin, app_id="wx-other").code_to_session(standin.mint_code())
    assert info.value.errcode == 40013


def test_system_busy_is_unavailable(standin):
    standin.fail_next("/sns/jscode2session", errcode=-1)
    gateway = make_gateway(standin)
    code = standin.mint_code()
    with pytest.raises(WeChatUnavailable) as info:
        gateway.code_to_session(code)
    assert info.value.errcode == -1
    # The fault was used up and the code was not consumed: a retry works.
    assert gateway.code_to_session(code)["openid"]


def test_rate_limit_is_rate_limited_not_unavailable(standin):
    standin.fail_next("/sns/jscode2session", errcode=45009)
    with pytest.raises(WeChatRateLimited) as info:
        make_gateway(standin).code_to_session(standin.mint_code())
    assert info.value.errcode == 45009
    assert not isinstance(info.value, WeChatUnavailable)
    assert info.value.permanent is False


def test_http_500_is_unavailable(standin):
    standin.fail_next("/sns/jscode2session", http_status=500)
    with pytest.raises(WeChatUnavailable) as info:
        make_gateway(standin).code_to_session(standin.mint_code())
    assert info.value.errcode is None


def test_slow_reply_beyond_timeout_is_unavailable(standin):
    standin.fail_next("/sns/jscode2session", delay_seconds=2)
    gateway = make_gateway(standin, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(WeChatUnavailable):
        gateway.code_to_session(standin.mint_code())
    assert time.monotonic() - started < 1.5


def test_connection_refused_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = MiniProgramGateway(APP_ID, SECRET, f"http://127.0.0.1:{port}", 1)
    with pytest.raises(WeChatUnavailable):
        gateway.code_to_session("any")


def test_access_token_uses_stable_token_on_standin_and_caches(standin, connections):
    gateway = make_gateway(standin)
    token = gateway.access_token()
    assert token
    recorded = standin.requests
    assert len(recorded) == 1
    assert recorded[0]["method"] == "POST"
    assert recorded[0]["path"] == "/cgi-bin/stable_token"
    assert recorded[0]["json"] == {
        "grant_type": "client_credential",
        "appid": APP_ID,
        "secret": SECRET,
        "force_refresh": False,
    }
    assert recorded[0]["query"] == {}

    assert gateway.access_token() == token
    assert len(standin.requests) == 1  # served from the cache
    assert connections and all(addr[0] == "127.0.0.1" for addr in connections)


def test_invalidated_token_is_fetched_again(standin):
    gateway = make_gateway(standin)
    gateway.access_token()
    gateway.invalidate_access_token()
    gateway.access_token()
    assert [r["path"] for r in standin.requests] == ["/cgi-bin/stable_token"] * 2


def test_access_token_errors_are_translated(standin):
    with pytest.raises(WeChatError) as info:
        make_gateway(standin, secret="wrong").access_token()
    assert info.value.errcode == 40125
    standin.fail_next("/cgi-bin/stable_token", http_status=503)
    with pytest.raises(WeChatUnavailable):
        make_gateway(standin).access_token()


@pytest.fixture
def shared_redis(redis_url):
    """Real Redis (TEST_REDIS_URL) with this app's token key cleared before and after."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = [TOKEN_KEY, TOKEN_KEY + ":lock"]
    client.delete(*keys)
    yield redis_url
    client.delete(*keys)


TOKEN_KEY = f"dinghuo:wechat:mp:{APP_ID}:access_token"


@pytest.mark.redis
def test_token_is_shared_through_redis(standin, shared_redis):
    import redis

    first = make_gateway(standin, redis_url=shared_redis)
    token = first.access_token()
    assert redis.Redis.from_url(shared_redis).get(TOKEN_KEY).decode() == token
    # Another process (another gateway) sees the same token without fetching.
    second = make_gateway(standin, redis_url=shared_redis)
    assert second.access_token() == token
    assert len(standin.requests) == 1


def test_from_config(standin):
    gateway = MiniProgramGateway.from_config({
        "WECHAT_APP_ID": APP_ID,
        "WECHAT_APP_SECRET": SECRET,
        "WECHAT_API_BASE": standin.base_url,
        "WECHAT_HTTP_TIMEOUT": 3,
        "REDIS_URL": None,
    })
    assert gateway.code_to_session(standin.mint_code("o-cfg"))["openid"] == "o-cfg"


def test_standin_http_control_routes(standin):
    import requests

    code = requests.post(f"{standin.base_url}/_standin/wx/login", json={"openid": "o-http"}, timeout=2).json()["code"]
    fault = requests.post(
        f"{standin.base_url}/_standin/faults",
        json={"path": "/sns/jscode2session", "errcode": 45009, "times": 1},
        timeout=2,
    )
    assert fault.status_code == 201
    gateway = make_gateway(standin)
    with pytest.raises(WeChatError):
        gateway.code_to_session(code)
    assert gateway.code_to_session(code)["openid"] == "o-http"
    recorded = requests.get(f"{standin.base_url}/_standin/requests", timeout=2).json()
    assert [r["path"] for r in recorded] == ["/sns/jscode2session"] * 2
    assert requests.post(f"{standin.base_url}/_standin/reset", timeout=2).ok
    assert standin.requests == []
    page = requests.get(f"{standin.base_url}/", timeout=2)
    assert "生成登录码" in page.text


def test_only_the_gateway_module_imports_wechatpy():
    import ast
    from pathlib import Path

    from tests.helpers import top_level_imports

    # The stand-ins in devtools/ play WeChat's side: they must not use the SDK either.
    root = Path(wechat.__file__).resolve().parent.parent.parent
    importers = set()
    for path in [*(root / "app").rglob("*.py"), *(root / "devtools").rglob("*.py")]:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except SyntaxError:  # a file being edited elsewhere; not ours to judge
            continue
        if any(package == "wechatpy" for package, _line, _in_function in top_level_imports(tree)):
            importers.add(path.relative_to(root).as_posix())
    assert importers == {"app/integrations/wechat.py"}


# --- subscribe messages ---------------------------------------------------------------

SUBSCRIBE_PATH = "/cgi-bin/message/subscribe/send"
OPENID = "o-dealer-a-buyer"


def approved_payload(**overrides):
    """The outbox mp_subscribe payload for an approved order (touser added by the gateway)."""
    payload = {
        "template_id": "tmpl-order-approved",
        "page": "pages/orders/detail?order_no=SO202611260001",
        "data": {
            "character_string1": {"value": "SO202611260001"},
            "thing2": {"value": "订单已审核通过"},
            "amount3": {"value": "¥1280.00"},
            "date4": {"value": "2026年11月26日 10:30"},
        },
        "miniprogram_state": "formal",
        "lang": "zh_CN",
    }
    payload.update(overrides)
    return payload


def sends(standin):
    return [r for r in standin.requests if r["path"] == SUBSCRIBE_PATH]


def test_subscribe_message_posts_the_documented_body(standin):
    gateway = make_gateway(standin)
    result = gateway.send_subscribe_message(OPENID, approved_payload())
    assert result["errcode"] == 0
    (send,) = sends(standin)
    assert send["method"] == "POST"
    assert send["query"] == {"access_token": gateway.access_token()}
    assert send["json"] == {"touser": OPENID, **approved_payload()}
    (delivered,) = standin.delivered
    assert delivered["channel"] == "mp_subscribe" and delivered["to"] == OPENID


def test_subscribe_message_leaves_out_optional_fields_it_was_not_given(standin):
    payload = approved_payload()
    del payload["miniprogram_state"], payload["lang"], payload["page"]
    make_gateway(standin).send_subscribe_message(OPENID, payload)
    assert set(sends(standin)[0]["json"]) == {"touser", "template_id", "data"}


def test_token_rejected_once_is_refreshed_and_the_call_retried_once(standin):
    standin.fail_next(SUBSCRIBE_PATH, errcode=40001)
    make_gateway(standin).send_subscribe_message(OPENID, approved_payload())
    assert [r["path"] for r in standin.requests] == [
        "/cgi-bin/stable_token", SUBSCRIBE_PATH, "/cgi-bin/stable_token", SUBSCRIBE_PATH,
    ]
    assert len(standin.delivered) == 1


def test_expired_token_is_replaced_by_a_new_one(standin):
    gateway = make_gateway(standin)
    old = gateway.access_token()
    standin.expire_tokens()  # the stand-in now answers 42001 for `old`
    gateway.send_subscribe_message(OPENID, approved_payload())
    first, second = sends(standin)
    assert first["query"]["access_token"] == old
    assert second["query"]["access_token"] != old
    assert gateway.access_token() == second["query"]["access_token"]
    assert len(standin.delivered) == 1


@pytest.mark.parametrize("errcode", [40001, 40014, 42001, 42007])
def test_a_second_token_error_goes_to_the_caller(standin, errcode):
    standin.fail_next(SUBSCRIBE_PATH, errcode=errcode, times=2)
    with pytest.raises(WeChatError) as info:
        make_gateway(standin).send_subscribe_message(OPENID, approved_payload())
    assert info.value.errcode == errcode
    assert info.value.permanent is True
    assert len(sends(standin)) == 2  # exactly one retry
    assert standin.delivered == []


def test_45009_is_rate_limited(standin):
    standin.fail_next(SUBSCRIBE_PATH, errcode=45009)
    with pytest.raises(WeChatRateLimited) as info:
        make_gateway(standin).send_subscribe_message(OPENID, approved_payload())
    assert info.value.errcode == 45009 and info.value.permanent is False
    assert len(sends(standin)) == 1 and standin.delivered == []


@pytest.mark.parametrize("errcode", [43101, 47003, 40037, 40003])
def test_scripted_permanent_errors_are_permanent_and_not_retried(standin, errcode):
    standin.fail_next(SUBSCRIBE_PATH, errcode=errcode)
    with pytest.raises(WeChatError) as info:
        make_gateway(standin).send_subscribe_message(OPENID, approved_payload())
    assert type(info.value) is WeChatError
    assert info.value.errcode == errcode and info.value.permanent is True
    assert len(sends(standin)) == 1 and standin.delivered == []


def test_thing_longer_than_20_characters_is_47003(standin):
    payload = approved_payload()
    payload["data"]["thing2"] = {"value": "这是一段超过二十个字符的事物说明文字，微信不会接受"}
    with pytest.raises(WeChatError) as info:
        make_gateway(standin).send_subscribe_message(OPENID, payload)
    assert info.value.errcode == 47003 and info.value.permanent
    assert "data.thing2.value" in info.value.errmsg


def test_unknown_template_is_40037_and_unknown_openid_is_40003(standin):
    standin.mark_invalid("tmpl-withdrawn")
    standin.mark_invalid("o-unknown")
    gateway = make_gateway(standin)
    with pytest.raises(WeChatError) as info:
        gateway.send_subscribe_message(OPENID, approved_payload(template_id="tmpl-withdrawn"))
    assert info.value.errcode == 40037 and info.value.permanent
    with pytest.raises(WeChatError) as info:
        gateway.send_subscribe_message("o-unknown", approved_payload())
    assert info.value.errcode == 40003 and info.value.permanent
    assert standin.delivered == []


@pytest.mark.parametrize("fault", [{"http_status": 500}, {"http_status": 502}, {"errcode": -1}])
def test_server_trouble_is_unavailable(standin, fault):
    standin.fail_next(SUBSCRIBE_PATH, **fault)
    with pytest.raises(WeChatUnavailable) as info:
        make_gateway(standin).send_subscribe_message(OPENID, approved_payload())
    assert info.value.permanent is False
    assert len(sends(standin)) == 1 and standin.delivered == []


def test_slow_send_beyond_the_timeout_is_unavailable(standin):
    gateway = make_gateway(standin, timeout=0.3)
    gateway.access_token()
    standin.fail_next(SUBSCRIBE_PATH, delay_seconds=1.5)
    started = time.monotonic()
    with pytest.raises(WeChatUnavailable):
        gateway.send_subscribe_message(OPENID, approved_payload())
    assert time.monotonic() - started < 1.2


def test_send_with_wechat_unreachable_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = MiniProgramGateway(APP_ID, SECRET, f"http://127.0.0.1:{port}", 1)
    with pytest.raises(WeChatUnavailable) as info:
        gateway.send_subscribe_message(OPENID, approved_payload())
    assert info.value.permanent is False


def test_error_classes():
    assert WeChatError(43101, "x").permanent is True
    assert WeChatUnavailable(-1, "x").permanent is False
    assert WeChatRateLimited(45009, "x").permanent is False
    assert issubclass(WeChatRateLimited, WeChatError) and not issubclass(WeChatRateLimited, WeChatUnavailable)


# --- one token fetch, however many threads and processes ask ----------------------------------

def test_threads_sharing_a_gateway_fetch_the_token_once(standin):
    from concurrent.futures import ThreadPoolExecutor

    standin.fail_next("/cgi-bin/stable_token", delay_seconds=0.3)  # keep the first fetch in flight
    gateway = make_gateway(standin)
    with ThreadPoolExecutor(8) as pool:
        tokens = set(pool.map(lambda _: gateway.access_token(), range(16)))
    assert len(tokens) == 1
    assert len(standin.requests) == 1


def _token_in_another_process(base_url, redis_url, barrier, results):
    """Runs in a spawned process: three threads ask for the token at the same moment."""
    from concurrent.futures import ThreadPoolExecutor

    gateway = MiniProgramGateway(APP_ID, SECRET, base_url, 5, redis_url=redis_url)
    barrier.wait(timeout=30)
    with ThreadPoolExecutor(3) as pool:
        for token in pool.map(lambda _: gateway.access_token(), range(3)):
            results.put(token)


@pytest.mark.redis
def test_processes_sharing_redis_fetch_the_token_once(standin, shared_redis):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    processes = 4
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    # The first fetch takes 0.5 s, so every other process arrives while it is in flight.
    standin.fail_next("/cgi-bin/stable_token", delay_seconds=0.5, times=processes * 3)
    workers = [
        ctx.Process(target=_token_in_another_process, args=(standin.base_url, shared_redis, barrier, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    tokens = [results.get(timeout=60) for _ in range(processes * 3)]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert len(set(tokens)) == 1
    assert [r["path"] for r in standin.requests] == ["/cgi-bin/stable_token"]


@pytest.mark.redis
def test_invalidating_a_stale_token_keeps_a_newer_one(standin, shared_redis):
    import redis

    gateway = make_gateway(standin, redis_url=shared_redis)
    gateway.access_token()
    redis.Redis.from_url(shared_redis).set(TOKEN_KEY, "newer-token-from-another-process", ex=600)
    gateway.invalidate_access_token("stale-token")
    assert gateway.access_token() == "newer-token-from-another-process"
    gateway.invalidate_access_token("newer-token-from-another-process")
    assert gateway.access_token() != "newer-token-from-another-process"


@pytest.mark.redis
def test_token_refresh_after_40001_is_shared_through_redis(standin, shared_redis):
    web = make_gateway(standin, redis_url=shared_redis)
    worker = make_gateway(standin, redis_url=shared_redis)
    old = web.access_token()
    standin.expire_tokens()
    worker.send_subscribe_message(OPENID, approved_payload())
    assert web.access_token() != old  # the worker's refresh reached the web process's cache
    assert [r["path"] for r in standin.requests].count("/cgi-bin/stable_token") == 2


def test_unreachable_redis_is_unavailable(standin):
    gateway = make_gateway(standin, redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(WeChatUnavailable):
        gateway.send_subscribe_message(OPENID, approved_payload())
    assert sends(standin) == []


def test_no_subscription_left_is_43101_permanent(standin):
    standin.require_subscriptions()
    standin.grant_subscription(OPENID, "tmpl-order-approved")
    gateway = make_gateway(standin)
    gateway.send_subscribe_message(OPENID, approved_payload())
    with pytest.raises(WeChatError) as info:
        gateway.send_subscribe_message(OPENID, approved_payload())
    assert info.value.errcode == 43101 and info.value.permanent
    assert len(standin.delivered) == 1
