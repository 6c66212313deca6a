"""The brand console: staff sign-in with hashed passwords, CSRF on every form, expiring
sessions, role checks, and order approval through the order service."""
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.database import write_transaction
from app.extensions import db
from app.kernel.money import format_yuan
from app.orders.models import Order, OrderEvent
from app.staff.models import Staff
from app.staff.service import create_staff, set_password
from tests.factories import auth
from tests.helpers import HTML, PASSWORD, available, credit, csrf, submit
from tests.helpers import console_login as login


def place(client, world):
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 2}])
    assert r.status_code == 201, r.json
    return r.json["order_no"]


def status(order_no):
    db.session.expire_all()
    return db.session.execute(select(Order.status).where(Order.order_no == order_no)).scalar_one()


def test_passwords_are_hashed_and_sign_in_works(client, world, staff):
    stored = db.session.execute(select(Staff.password_hash).where(Staff.username == "boss")).scalar_one()
    assert PASSWORD not in stored and stored.startswith(("scrypt:", "pbkdf2:"))
    r = login(client, "boss")
    assert r.status_code == 302 and r.headers["Location"].endswith("/console/")
    assert "仪表盘" in client.get("/console/", headers=HTML).get_data(as_text=True)
    page = client.get("/console/orders/pending", headers=HTML).get_data(as_text=True)
    assert "待审批订单" in page and "管理员" in page


@pytest.mark.parametrize("username,password", [("boss", "wrong-password"), ("nobody", PASSWORD), ("", "")])
def test_wrong_credentials_are_refused_in_chinese(client, world, staff, username, password):
    r = login(client, username, password)
    assert r.status_code == 401 and "用户名或密码错误" in r.get_data(as_text=True)
    assert client.get("/console/orders/pending", headers=HTML).status_code == 302  # still signed out


def test_deactivated_staff_cannot_sign_in_and_open_sessions_end(client, world, staff):
    login(client, "boss")
    staff["admin"].active = False
    db.session.commit()
    assert client.get("/console/orders/pending", headers=HTML).status_code == 302
    assert login(client, "boss").status_code == 401


def test_a_password_change_ends_open_sessions(client, world, staff):
    login(client, "boss")
    set_password(staff["admin"], "another-password-1")
    assert client.get("/console/orders/pending", headers=HTML).status_code == 302


def test_every_post_needs_the_csrf_token(client, world, staff):
    order_no = place(client, world)
    login(client, "boss")
    r = client.post(f"/console/orders/{order_no}/approve", data={}, headers=HTML)
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    r = client.post(f"/console/orders/{order_no}/approve", data={"csrf_token": "forged"}, headers=HTML)
    assert r.status_code == 400
    assert client.post("/console/login", data={"username": "boss", "password": PASSWORD}).status_code == 400
    assert status(order_no) == "pending_approval"


def test_sessions_expire(client, app, world, staff):
    from email.utils import parsedate_to_datetime

    r = login(client, "boss")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    left = expires - datetime.now(timezone.utc)
    assert timedelta(hours=7, minutes=55) < left <= timedelta(hours=8)  # CONSOLE_SESSION_HOURS=8


def test_session_lifetime_comes_from_the_setting(standin, tmp_path):
    from app import create_app
    from tests.conftest import _base_config

    app = create_app({**_base_config(standin), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
                      "CONSOLE_SESSION_HOURS": 2})
    assert app.permanent_session_lifetime == timedelta(hours=2)


def test_sign_out(client, world, staff):
    login(client, "boss")
    token = csrf(client, "/console/orders/pending")
    assert client.post("/console/logout", data={"csrf_token": token}, headers=HTML).status_code == 302
    assert client.get("/console/orders/pending", headers=HTML).status_code == 302


def test_next_only_redirects_inside_the_console(client, world, staff):
    r = client.post("/console/login?next=https://evil.example/", headers=HTML,
                    data={"username": "boss", "password": PASSWORD, "csrf_token": csrf(client)})
    assert r.headers["Location"].endswith("/console/")


def test_roles_are_checked(client, world, staff):
    login(client, "shi")
    r = client.get("/console/orders/pending", headers=HTML)
    assert r.status_code == 403 and "无权访问" in r.get_data(as_text=True)
    assert "欢迎" in client.get("/console/", headers=HTML).get_data(as_text=True)


def test_rep_sees_and_decides_only_their_own_dealers_orders(client, world, staff):
    order_no = place(client, world)
    login(client, "rep2")
    assert order_no not in client.get("/console/orders/pending", headers=HTML).get_data(as_text=True)
    token = csrf(client, "/console/orders/pending")
    r = client.post(f"/console/orders/{order_no}/approve", data={"csrf_token": token}, headers=HTML)
    assert r.status_code == 404 and "不是你负责的经销商的订单" in r.get_data(as_text=True)
    assert status(order_no) == "pending_approval"


def test_approve_and_reject_from_the_console(client, world, staff):
    before = available(world.cola)
    first, second = place(client, world), place(client, world)
    login(client, world.rep.username)
    page = client.get("/console/orders/pending", headers=HTML).get_data(as_text=True)
    assert first in page and second in page
    token = csrf(client, "/console/orders/pending")
    r = client.post(f"/console/orders/{first}/approve", data={"csrf_token": token}, headers=HTML, follow_redirects=True)
    assert f"订单 {first} 已审批通过" in r.get_data(as_text=True)
    assert status(first) == "approved"

    r = client.post(f"/console/orders/{second}/reject", data={"csrf_token": token, "reason": " "}, headers=HTML,
                    follow_redirects=True)
    assert "驳回订单需要填写原因" in r.get_data(as_text=True) and status(second) == "pending_approval"
    client.post(f"/console/orders/{second}/reject", data={"csrf_token": token, "reason": "价格有误，请重新下单"},
                headers=HTML)
    assert status(second) == "rejected"
    assert available(world.cola) == before - 2  # the rejected order's stock is back
    event = db.session.execute(select(OrderEvent).order_by(OrderEvent.id.desc()).limit(1)).scalar_one()
    assert (event.to_status, event.actor_type, event.actor_name, event.reason) == (
        "rejected", "staff", world.rep.name, "价格有误，请重新下单")
    assert credit(world.dealer_a)["held"] > 0  # only the approved order holds credit


def test_cli_creates_the_first_admin(runner, world):
    out = runner.invoke(args=["staff", "create", "root", "--role", "admin", "--name", "总管"],
                        input="short\nshort\n")
    assert out.exit_code != 0 and "至少需要 8 个字符" in out.output
    out = runner.invoke(args=["staff", "create", "root", "--role", "admin", "--password", "long-enough-1"])
    assert out.exit_code == 0 and "已创建管理员账号 root" in out.output
    out = runner.invoke(args=["staff", "create", "root", "--role", "admin", "--password", "long-enough-1"])
    assert out.exit_code != 0 and "已被使用" in out.output


# --- dealers ------------------------------------------------------------------------------

def dealer_page(client, **query):
    return client.get("/console/dealers", query_string=query, headers=HTML)


def test_dealer_list_with_search_and_filters(client, world, staff):
    login(client, "boss")
    page = dealer_page(client).get_data(as_text=True)
    assert "经销商（2）" in page and "DA01" in page and "DB01" in page and "王业务" in page
    assert "DB01" not in dealer_page(client, q="鑫达").get_data(as_text=True)
    assert "DA01" in dealer_page(client, q="da0").get_data(as_text=True)  # code, any case
    assert "经销商（0）" in dealer_page(client, q="%").get_data(as_text=True)  # LIKE wildcards are literal
    only_gold = dealer_page(client, tier=world.gold.code).get_data(as_text=True)
    assert "DA01" in only_gold and "DB01" not in only_gold
    in_guangdong = dealer_page(client, region="440000").get_data(as_text=True)  # province includes its cities
    assert "DA01" in in_guangdong and "DB01" not in in_guangdong
    world.dealer_b.status = "suspended"
    db.session.commit()
    suspended = dealer_page(client, status="suspended").get_data(as_text=True)
    assert "DB01" in suspended and "DA01" not in suspended and "暂停" in suspended
    assert "经销商（0）" in dealer_page(client, rep=str(staff["other_rep"].id)).get_data(as_text=True)


def test_dealer_list_shows_credit_in_yuan(client, world, staff):
    place(client, world)
    login(client, "money")  # finance may look
    page = dealer_page(client, q="DA01").get_data(as_text=True)
    held = credit(world.dealer_a)["held"]
    assert held > 0 and format_yuan(held) in page


@pytest.mark.parametrize("query", [{"page": "0"}, {"page": "²"}, {"page": "x"}, {"status": "deleted"}, {"rep": "-1"}])
def test_dealer_list_bad_filters_answer_400_in_chinese(client, world, staff, query):
    login(client, "boss")
    r = dealer_page(client, **query)
    assert r.status_code == 400 and re.search(r"[\u4e00-\u9fff]", r.get_data(as_text=True))


def test_reps_see_only_their_dealers_and_others_may_not_look(client, world, staff):
    login(client, "rep2")
    assert "经销商（0）" in dealer_page(client).get_data(as_text=True)
    login(client, world.rep.username)
    assert "经销商（2）" in dealer_page(client).get_data(as_text=True)
    create_staff(username="wh", name="仓库", role="warehouse", password=PASSWORD)
    login(client, "wh")
    assert dealer_page(client).status_code == 403


# --- audit log -------------------------------------------------------------------------

def test_approvals_and_rejections_are_audited_and_shown_to_admins(client, world, staff):
    from app.audit.models import AuditEntry

    approved, rejected = place(client, world), place(client, world)
    rep_client = client.application.test_client()
    login(rep_client, world.rep.username)
    token = csrf(rep_client, "/console/orders/pending")
    rep_client.post(f"/console/orders/{approved}/approve", data={"csrf_token": token}, headers=HTML)
    rep_client.post(f"/console/orders/{rejected}/reject", data={"csrf_token": token, "reason": "价格有误"}, headers=HTML)
    entries = db.session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
    assert [(e.action, e.entity_id, e.staff_id, e.before, e.after) for e in entries] == [
        ("order.approve", approved, world.rep.id, {"status": "pending_approval"}, {"status": "approved"}),
        ("order.reject", rejected, world.rep.id, {"status": "pending_approval"}, {"status": "rejected"}),
    ]
    assert entries[1].reason == "价格有误"

    login(client, "boss")
    page = client.get("/console/audit", headers=HTML).get_data(as_text=True)
    assert "审计日志（2）" in page and "驳回订单" in page and "价格有误" in page and approved in page
    only = client.get(f"/console/audit?entity_type=order&entity_id={approved}", headers=HTML).get_data(as_text=True)
    assert "审计日志（1）" in only and rejected not in only


def test_dealer_cancel_is_not_a_staff_change_and_is_not_audited(client, world, staff):
    from app.audit.models import AuditEntry

    order_no = place(client, world)
    assert client.post(f"/api/mp/v1/orders/{order_no}/cancel", headers=auth(world.a_buyer)).status_code == 200
    assert db.session.execute(select(AuditEntry)).first() is None


@pytest.mark.parametrize("who,expected", [("rep2", 403), ("money", 200), ("boss", 200)])
def test_only_admin_and_finance_read_the_audit_log(client, world, staff, who, expected):
    login(client, who)
    assert client.get("/console/audit", headers=HTML).status_code == expected


@pytest.mark.parametrize("query", ["page=0", "page=x", "staff=abc", "entity_type=nope", "action=drop", "from=2026-13-01"])
def test_bad_audit_filters_answer_400_in_chinese(client, world, staff, query):
    login(client, "boss")
    r = client.get(f"/console/audit?{query}", headers=HTML)
    text = r.get_data(as_text=True)
    assert r.status_code == 400 and ("有误" in text or "格式" in text or "页码" in text)


def test_the_audit_page_shows_values_as_people_read_them(client, world, staff):
    from app.audit import service as audit

    with write_transaction() as session:
        audit.record(session, actor=staff["admin"], action="credit.limit", entity_type="credit", entity_id=world.dealer_a.code,
                     label=world.dealer_a.name, before={"credit_limit_fen": 1_000_000}, after={"credit_limit_fen": 12_345_67})
        audit.record(session, actor=staff["admin"], action="dealer.suspend", entity_type="dealer", entity_id=world.dealer_a.code,
                     label=world.dealer_a.name, before={"status": "active"}, after={"status": "suspended"}, reason="欠款")
    login(client, "boss")
    page = client.get("/console/audit", headers=HTML).get_data(as_text=True)
    assert "信用额度：¥10,000.00" in page and "信用额度：¥12,345.67" in page
    assert "状态：正常" in page and "状态：暂停" in page and "credit_limit_fen" not in page


def test_audit_day_filter_uses_china_days(client, world, staff):
    """An entry at 07:30 UTC on the 26th is 15:30 on the 26th in China; one at 17:00 UTC on the
    26th is already 01:00 on the 27th."""
    from app.audit import service as audit
    from app.audit.models import AuditEntry

    with write_transaction() as session:
        for hour, label in ((7, "早"), (17, "晚")):
            entry = audit.record(session, actor=staff["admin"], action="dealer.update", entity_type="dealer",
                                 entity_id=world.dealer_a.code, label=label, before={"name": "甲"}, after={"name": "乙"})
            entry.created_at = datetime(2026, 11, 26, hour, 30, tzinfo=timezone.utc)
    assert db.session.execute(select(AuditEntry)).scalars().all()
    login(client, "boss")
    on_26th = client.get("/console/audit?from=2026-11-26&to=2026-11-26", headers=HTML).get_data(as_text=True)
    on_27th = client.get("/console/audit?from=2026-11-27&to=2026-11-27", headers=HTML).get_data(as_text=True)
    assert "审计日志（1）" in on_26th and "经销商 早" in on_26th
    assert "审计日志（1）" in on_27th and "经销商 晚" in on_27th
