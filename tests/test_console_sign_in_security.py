"""Console sign-in over HTTP: failed sign-ins are throttled per account and per client
address (429, Retry-After, Chinese); repeated wrong passwords lock the account for a while
(kernel clock), said in Chinese, audited, held in the database; an admin unlocks it from
the 员工账号 page. Security headers come with every console page."""
import re

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.extensions import db
from app.staff.models import Staff
from tests.helpers import HTML, PASSWORD, csrf

WRONG = "not-the-password"


def sign_in(client, username, password=PASSWORD, address="10.2.0.1"):
    env = {"REMOTE_ADDR": address}
    page = client.get("/console/login", headers=HTML, environ_base=env).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/console/login", data={"username": username, "password": password, "csrf_token": token},
                       headers=HTML, environ_base=env)


def text(response):
    return response.get_data(as_text=True)


@pytest.fixture
def lockout(app):
    """Lock after 3 wrong passwords for 15 minutes; throttles out of the way."""
    app.config.update(CONSOLE_LOCKOUT_FAILURES=3, CONSOLE_LOCKOUT_MINUTES=15,
                      CONSOLE_LOGIN_LIMIT_PER_ACCOUNT="1000/minute", CONSOLE_LOGIN_LIMIT_PER_ADDRESS="1000/minute")


def row(username):
    db.session.expire_all()
    return db.session.execute(select(Staff).where(Staff.username == username)).scalar_one()


def test_repeated_wrong_passwords_lock_the_account_and_say_so(clock, app, client, staff, lockout):
    for _ in range(3):
        r = sign_in(client, "rep2", WRONG)
        assert r.status_code == 401 and "用户名或密码错误" in text(r)
    # Locked: even the right password is refused, in Chinese, with how long to wait.
    r = sign_in(client, "rep2")
    assert r.status_code == 423
    assert "账号已被锁定" in text(r) and "15 分钟" in text(r) and "联系管理员解锁" in text(r)
    assert client.get("/console/", headers=HTML).status_code == 302  # not signed in
    # Held in the database (any web process sees it) until the kernel clock passes it.
    assert row("rep2").locked_until == clock() + __import__("datetime").timedelta(minutes=15)
    entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "staff.lock")).scalar_one()
    assert entry.entity_type == "staff" and entry.entity_id == str(staff["other_rep"].id)
    assert entry.actor_name == "系统" and entry.staff_id is None and "3 次密码错误" in entry.reason
    # Another account is not affected.
    assert sign_in(client, "money").status_code == 302
    # A while later the lock is over and the right password works again.
    clock.advance(minutes=14)
    assert sign_in(client.application.test_client(), "rep2").status_code == 423
    clock.advance(minutes=2)
    assert sign_in(client.application.test_client(), "rep2").status_code == 302
    assert row("rep2").failed_logins == 0 and row("rep2").locked_until is None


def test_wrong_passwords_far_apart_do_not_lock(clock, app, client, staff, lockout):
    for _ in range(2):
        assert sign_in(client, "rep2", WRONG).status_code == 401
    clock.advance(minutes=16)
    for _ in range(2):
        assert sign_in(client, "rep2", WRONG).status_code == 401
    assert sign_in(client, "rep2").status_code == 302


def test_a_successful_sign_in_clears_the_count(clock, app, client, staff, lockout):
    for _ in range(2):
        sign_in(client, "rep2", WRONG)
    assert sign_in(client, "rep2").status_code == 302
    for _ in range(2):
        sign_in(client.application.test_client(), "rep2", WRONG)
    assert sign_in(client.application.test_client(), "rep2").status_code == 302


def test_an_admin_unlocks_a_locked_account_from_the_staff_page(clock, app, client, staff, lockout):
    for _ in range(3):
        sign_in(client, "rep2", WRONG)
    admin = app.test_client()
    assert sign_in(admin, "boss").status_code == 302
    page = admin.get("/console/staff", headers=HTML)
    assert page.status_code == 200
    listed = text(page)
    assert "员工账号" in listed and "已锁定" in listed and f"/console/staff/{staff['other_rep'].id}/unlock" in listed
    r = admin.post(f"/console/staff/{staff['other_rep'].id}/unlock", headers=HTML,
                   data={"csrf_token": csrf(admin, "/console/staff")})
    assert r.status_code == 302
    assert "已解锁李业务（rep2）的账号" in text(admin.get("/console/staff", headers=HTML))
    entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "staff.unlock")).scalar_one()
    assert entry.staff_id == staff["admin"].id and entry.entity_id == str(staff["other_rep"].id)
    assert "解锁员工账号" in text(admin.get("/console/audit?entity_type=staff", headers=HTML))
    # Signed in at once, without waiting for the lock to end.
    assert sign_in(app.test_client(), "rep2").status_code == 302
    # Unlocking what is not locked says so.
    again = admin.post(f"/console/staff/{staff['other_rep'].id}/unlock", headers=HTML,
                       data={"csrf_token": csrf(admin, "/console/staff")})
    assert again.status_code == 409 and "没有被锁定" in text(again)


@pytest.mark.parametrize("username", ["money", "rep1", "cang", "shi"])
def test_only_admins_see_the_staff_page_or_unlock(clock, app, client, staff, lockout, username):
    for _ in range(3):
        sign_in(app.test_client(), "rep2", WRONG)
    assert sign_in(client, username).status_code == 302
    assert client.get("/console/staff", headers=HTML).status_code == 403
    r = client.post(f"/console/staff/{staff['other_rep'].id}/unlock", headers=HTML,
                    data={"csrf_token": csrf(client, "/console/")})
    assert r.status_code == 403
    assert row("rep2").locked_until is not None


def test_failed_sign_ins_are_throttled_per_account(clock, app, client, staff):
    app.config.update(CONSOLE_LOCKOUT_FAILURES=0, CONSOLE_LOGIN_LIMIT_PER_ACCOUNT="3/minute",
                      CONSOLE_LOGIN_LIMIT_PER_ADDRESS="1000/minute")
    for i in range(3):
        assert sign_in(client, "rep2", WRONG, address=f"10.3.0.{i}").status_code == 401
    r = sign_in(client, "rep2", address="10.3.0.9")  # the right password, from elsewhere: still held back
    assert r.status_code == 429
    assert "登录失败次数过多" in text(r) and "后再试" in text(r)
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert row("rep2").locked_until is None  # a throttle, not a lock
    # Another account is not held back, and right passwords never count.
    for _ in range(5):
        assert sign_in(app.test_client(), "money").status_code == 302


def test_failed_sign_ins_are_throttled_per_address(clock, app, client, staff):
    app.config.update(CONSOLE_LOCKOUT_FAILURES=0, CONSOLE_LOGIN_LIMIT_PER_ACCOUNT="1000/minute",
                      CONSOLE_LOGIN_LIMIT_PER_ADDRESS="5/minute")
    for name in ("a1", "a2", "a3", "boss", "rep2"):  # unknown names count too
        assert sign_in(client, name, WRONG, address="10.4.0.1").status_code == 401
    r = sign_in(client, "money", address="10.4.0.1")
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert sign_in(app.test_client(), "money", address="10.4.0.2").status_code == 302


def test_console_pages_carry_the_security_headers(app, client, staff):
    from tests.helpers import console_login

    console_login(client, "boss")
    for path in ("/console/login", "/console/", "/console/staff"):
        headers = client.get(path, headers=HTML).headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in headers  # plain HTTP
    secure = client.get("/console/login", headers=HTML, base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


def test_behind_a_trusted_proxy_the_forwarded_address_and_scheme_count(standin, tmp_path):
    from app import create_app
    from tests.conftest import _base_config, _migrate

    app = create_app({**_base_config(standin), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/p.db",
                      "TRUSTED_PROXIES": 1, "MP_LOGIN_LIMIT_PER_ADDRESS": "1/minute"})
    _migrate(app)
    client = app.test_client()
    r = client.get("/console/login", headers={**HTML, "X-Forwarded-Proto": "https"})
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    # Two clients behind the same proxy are two addresses, not one.
    body = {"code": "x"}
    first = client.post("/api/mp/v1/auth/login", json=body, headers={"X-Forwarded-For": "198.51.100.1"})
    second = client.post("/api/mp/v1/auth/login", json=body, headers={"X-Forwarded-For": "198.51.100.2"})
    again = client.post("/api/mp/v1/auth/login", json=body, headers={"X-Forwarded-For": "198.51.100.1"})
    assert first.status_code != 429 and second.status_code != 429 and again.status_code == 429


def test_the_session_cookie_is_secure_in_production_by_default(monkeypatch):
    from app.config import from_env

    monkeypatch.setenv("DINGHUO_ENV", "production")
    assert from_env()["SESSION_COOKIE_SECURE"] is True
    monkeypatch.setenv("DINGHUO_ENV", "development")
    assert from_env()["SESSION_COOKIE_SECURE"] is False
