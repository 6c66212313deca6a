"""Mini-program login is rate limited per client address and per WeChat user: over HTTP, a
burst of logins gets some 429s with Retry-After and a Chinese message in the error shape,
and nothing else happens for them — no code2Session call beyond the limit, no token."""
import pytest
from sqlalchemy import func, select

from app import create_app
from app.config import ConfigError
from app.dealers.models import DealerUser
from app.extensions import db
from tests.conftest import _base_config
from tests.helpers import MP

CODE2SESSION = "/sns/jscode2session"


def code2session_calls(wechat):
    return sum(1 for r in wechat.requests if r["path"] == CODE2SESSION)


def login(client, code, address="10.0.0.1"):
    return client.post(f"{MP}/auth/login", json={"code": code}, environ_base={"REMOTE_ADDR": address})


def test_a_burst_of_logins_from_one_address_is_cut_at_the_limit(app, client, world, wechat):
    app.config["MP_LOGIN_LIMIT_PER_ADDRESS"] = "10/minute"
    users_before = db.session.scalar(select(func.count()).select_from(DealerUser))
    codes = [wechat.mint_code(f"o-burst-{i}") for i in range(40)]
    answers = [login(client, code) for code in codes]

    ok = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code == 429]
    assert len(ok) == 10 and len(refused) == 30
    assert all("token" in r.json for r in ok)
    # WeChat was asked only for the logins let through: the brand's quota is spared.
    assert code2session_calls(wechat) == 10
    for r in refused:
        assert set(r.json) == {"error"} and "token" not in r.get_data(as_text=True)
        assert r.json["error"]["code"] == "too_many_logins"
        assert r.json["error"]["message"].startswith("登录过于频繁，请") and "后再试" in r.json["error"]["message"]
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert r.json["error"]["details"]["retry_after"] == int(r.headers["Retry-After"])
    # Nothing else changed: no users, and the refused codes were never spent.
    assert db.session.scalar(select(func.count()).select_from(DealerUser)) == users_before
    assert login(client, codes[-1], address="10.0.0.2").status_code == 200  # another address, same code


def test_one_wechat_user_is_limited_from_every_address(app, client, world, wechat):
    app.config.update(MP_LOGIN_LIMIT_PER_ADDRESS="100/minute", MP_LOGIN_LIMIT_PER_USER="3/minute")
    answers = [login(client, wechat.mint_code("o-same-user"), address=f"10.1.0.{i}") for i in range(6)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429, 429]
    assert answers[-1].json["error"]["code"] == "too_many_logins" and "Retry-After" in answers[-1].headers
    # Another WeChat user is not held back by that one.
    assert login(client, wechat.mint_code("o-other-user"), address="10.1.0.1").status_code == 200


def test_the_default_limit_holds_in_the_test_app_too(app, client, world, wechat):
    """Tests run with the shipped defaults (counters reset between tests), not with limits off."""
    assert app.config["MP_LOGIN_LIMIT_PER_ADDRESS"] == "30/minute"
    statuses = [login(client, wechat.mint_code(f"o-default-{i}")).status_code for i in range(31)]
    assert statuses.count(200) == 30 and statuses[-1] == 429


def test_an_empty_setting_turns_a_limit_off(app, client, world, wechat):
    app.config.update(MP_LOGIN_LIMIT_PER_ADDRESS="", MP_LOGIN_LIMIT_PER_USER="")
    assert all(login(client, wechat.mint_code("o-unlimited")).status_code == 200 for _ in range(35))


def test_the_429_is_in_the_openapi_document(client):
    responses = client.get(f"{MP}/openapi.json").json["paths"][f"{MP}/auth/login"]["post"]["responses"]
    assert "429" in responses


def test_a_limit_that_does_not_parse_refuses_to_start(standin, tmp_path):
    with pytest.raises(ConfigError, match="MP_LOGIN_LIMIT_PER_USER"):
        create_app({**_base_config(standin), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
                    "MP_LOGIN_LIMIT_PER_USER": "lots"})


def test_with_redis_the_counters_are_shared_by_every_web_process(standin, tmp_path, redis_url):
    """Two apps on one Redis stand for two gunicorn workers: the limit holds across both."""
    import uuid

    from tests.conftest import _migrate

    config = {**_base_config(standin), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/r.db",
              "REDIS_URL": redis_url, "MP_LOGIN_LIMIT_PER_ADDRESS": "3/minute",
              "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}"}
    one, two = create_app(config), create_app(config)
    _migrate(one)
    assert one.config["RATELIMIT_STORAGE_URI"] == redis_url
    clients = [one.test_client(), two.test_client()]
    statuses = [login(clients[i % 2], standin.mint_code(f"o-redis-{i}")).status_code for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
