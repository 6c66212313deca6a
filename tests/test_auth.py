"""Login through WeChat's code2Session (on the local stand-in) and binding by invite code."""
from datetime import timedelta

from sqlalchemy import select

from app.dealers.models import DealerUser, InviteCode
from app.dealers.identity import create_invite
from app.extensions import db
from app.kernel.clock import utcnow
from tests.helpers import MP


def login(client, wechat, openid):
    r = client.post(f"{MP}/auth/login", json={"code": wechat.mint_code(openid)})
    assert r.status_code == 200, r.json
    return r.json


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_login_exchanges_the_code_with_wechat(client, world, wechat):
    body = login(client, wechat, "o-fresh-user")
    assert set(body) == {"token", "expires_in", "bound"}
    assert body["bound"] is False and body["expires_in"] == 7200
    calls = [r for r in wechat.requests if r["path"] == "/sns/jscode2session"]
    assert len(calls) == 1
    assert calls[0]["query"]["appid"] == "wx-test-appid"
    assert calls[0]["query"]["grant_type"] == "authorization_code"


def test_login_of_a_bound_user_says_bound(client, world, wechat):
    assert login(client, wechat, world.a_buyer.openid)["bound"] is True


def test_reused_code_is_401(client, world, wechat):
    code = wechat.mint_code("o-someone")
    assert client.post(f"{MP}/auth/login", json={"code": code}).status_code == 200
    r = client.post(f"{MP}/auth/login", json={"code": code})
    assert r.status_code == 401
    assert r.json["error"]["code"] == "invalid_login_code"
    assert r.json["error"]["details"]["wechat_errcode"] == 40163


def test_unknown_code_is_401(client, world, wechat):
    r = client.post(f"{MP}/auth/login", json={"code": "not-a-code"})
    assert r.status_code == 401
    assert r.json["error"]["details"]["wechat_errcode"] == 40029
    assert "登录码无效" in r.json["error"]["message"]


def test_wechat_busy_is_503(client, world, wechat):
    wechat.fail_next("/sns/jscode2session", errcode=-1)
    r = client.post(f"{MP}/auth/login", json={"code": wechat.mint_code("o-x")})
    assert r.status_code == 503
    assert r.json["error"]["code"] == "wechat_unavailable"


def test_bind_with_invite_then_use_the_api(client, world, wechat):
    invite = create_invite(dealer_code="DA01", role="buyer")
    token = login(client, wechat, "o-new-buyer")["token"]
    assert client.get(f"{MP}/me", headers=bearer(token)).json["error"]["code"] == "not_bound"
    r = client.post(f"{MP}/auth/bind", headers=bearer(token), json={"invite_code": invite.code.lower(), "name": "小陈"})
    assert r.status_code == 200, r.json
    assert r.json["dealer"]["code"] == "DA01" and r.json["user"]["role"] == "buyer"
    me = client.get(f"{MP}/me", headers=bearer(token)).json
    assert me["user"]["name"] == "小陈"
    assert me["dealer"]["region"] == {"code": "440100", "name": "广东省广州市"}
    assert me["credit"] == {"limit_fen": 10_000_000, "used_fen": 0, "available_fen": 10_000_000}
    assert login(client, wechat, "o-new-buyer")["bound"] is True


def test_me_names_a_municipality_without_gbt_placeholders(client, world):
    from tests.factories import auth

    me = client.get(f"{MP}/me", headers=auth(world.b_owner)).json
    assert me["dealer"]["region"] == {"code": "310100", "name": "上海市"}


def test_invite_is_single_use(client, world, wechat):
    invite = create_invite(dealer_code="DA01", role="buyer")
    first = login(client, wechat, "o-first")["token"]
    second = login(client, wechat, "o-second")["token"]
    assert client.post(f"{MP}/auth/bind", headers=bearer(first), json={"invite_code": invite.code}).status_code == 200
    r = client.post(f"{MP}/auth/bind", headers=bearer(second), json={"invite_code": invite.code})
    assert r.status_code == 410
    assert r.json["error"]["code"] == "invite_used"
    assert db.session.execute(select(DealerUser).where(DealerUser.openid == "o-second")).first() is None


def test_expired_invite_is_refused(client, world, wechat):
    invite = create_invite(dealer_code="DA01", role="owner")
    db.session.get(InviteCode, invite.id).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    token = login(client, wechat, "o-late")["token"]
    r = client.post(f"{MP}/auth/bind", headers=bearer(token), json={"invite_code": invite.code})
    assert r.status_code == 410
    assert r.json["error"]["code"] == "invite_expired"


def test_unknown_invite_is_404(client, world, wechat):
    token = login(client, wechat, "o-guess")["token"]
    r = client.post(f"{MP}/auth/bind", headers=bearer(token), json={"invite_code": "ZZZZ9999"})
    assert r.status_code == 404
    assert r.json["error"]["code"] == "invite_not_found"


def test_already_bound_user_cannot_bind_again(client, world, wechat):
    invite = create_invite(dealer_code="DB01", role="owner")
    token = login(client, wechat, world.a_buyer.openid)["token"]
    r = client.post(f"{MP}/auth/bind", headers=bearer(token), json={"invite_code": invite.code})
    assert r.status_code == 409
    assert db.session.get(InviteCode, invite.id).used_at is None


def test_cli_invite_prints_the_code_last(runner, world):
    result = runner.invoke(args=["dealers", "invite", "DA01", "--role", "viewer"])
    assert result.exit_code == 0, result.output
    code = result.output.strip().splitlines()[-1]
    invite = db.session.execute(select(InviteCode).where(InviteCode.code == code)).scalar_one()
    assert invite.role == "viewer" and invite.used_at is None


def test_cli_invite_for_unknown_dealer_fails(runner, world):
    result = runner.invoke(args=["dealers", "invite", "NOPE"])
    assert result.exit_code != 0
    assert "不存在" in result.output


def test_cli_dealers_show_prints_json_with_rep(runner, world):
    import json

    result = runner.invoke(args=["dealers", "show", "DA01"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["rep"] == {"name": "王业务", "wecom_userid": "WangYeWu"}
    assert data["credit"]["limit_fen"] == 10_000_000


def test_a_deactivated_user_can_bind_again_with_a_new_invite(client, world, wechat):
    db.session.get(DealerUser, world.a_buyer.id).active = False
    db.session.commit()
    invite = create_invite(dealer_code="DB01", role="buyer")
    token = login(client, wechat, world.a_buyer.openid)["token"]
    r = client.post(f"{MP}/auth/bind", headers=bearer(token), json={"invite_code": invite.code})
    assert r.status_code == 200, r.json
    assert r.json["dealer"]["code"] == "DB01"
    old = db.session.get(DealerUser, world.a_buyer.id)
    db.session.refresh(old)
    assert old.openid is None and old.active is False   # history kept, WeChat user released


def test_write_transactions_do_not_nest(app):
    import pytest

    from app.database import write_transaction

    with pytest.raises(RuntimeError, match="nest"):
        with write_transaction():
            with write_transaction():
                pass


def test_a_token_whose_signature_was_already_checked_still_expires(app, client, world):
    from tests.factories import auth

    headers = auth(world.a_buyer)
    assert client.get(f"{MP}/products", headers=headers).status_code == 200  # checked, remembered
    app.config["TOKEN_TTL_SECONDS"] = -1  # from now on every token is too old
    r = client.get(f"{MP}/products", headers=headers)
    assert r.status_code == 401 and r.json["error"]["code"] == "token_expired"


def test_a_tampered_token_is_refused_even_after_the_real_one_was_accepted(client, world):
    from tests.factories import auth

    headers = auth(world.a_buyer)
    assert client.get(f"{MP}/products", headers=headers).status_code == 200
    token = headers["Authorization"]
    # A character inside the signature: the last one also carries base64 padding bits, so
    # changing only those would decode to the very same signature.
    tampered = token[:-3] + ("B" if token[-3] == "A" else "A") + token[-2:]
    r = client.get(f"{MP}/products", headers={"Authorization": tampered})
    assert r.status_code == 401 and r.json["error"]["code"] == "token_invalid"
