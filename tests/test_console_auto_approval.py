"""Auto-approval rules edited in the console (admins only), the same service as the CLI,
every change in the audit log."""
import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.extensions import db
from app.orders.approval_rules import AutoApproval, get_auto_approval
from tests.factories import auth
from tests.helpers import HTML, csrf, submit
from tests.helpers import console_login as login

PAGE = "/console/settings/auto-approval"


def save(client, **form):
    return client.post(PAGE, data={"csrf_token": csrf(client, PAGE), **form}, headers=HTML, follow_redirects=True)


def entries():
    db.session.expire_all()
    return db.session.execute(select(AuditEntry).where(AuditEntry.action == "settings.auto_approval")
                              .order_by(AuditEntry.id)).scalars().all()


def test_admin_switches_auto_approval_on_with_a_limit_in_yuan(client, world, staff):
    login(client, "boss")
    assert "已关闭" in client.get(PAGE, headers=HTML).get_data(as_text=True)
    body = save(client, enabled="on", max_total_yuan="5,000.5").get_data(as_text=True)
    assert "已保存" in body and "单笔不超过 ¥5,000.50" in body
    assert get_auto_approval() == AutoApproval(enabled=True, max_total_fen=500_050)
    [entry] = entries()
    assert (entry.actor_name, entry.staff_id, entry.entity_type) == ("管理员", staff["admin"].id, "settings")
    assert entry.before == {"enabled": False, "max_total_fen": None}
    assert entry.after == {"enabled": True, "max_total_fen": 500_050}
    # It takes effect for the next order.
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}])
    assert r.get_json()["status"] == "approved"

    save(client, max_total_yuan="")  # unchecked box: off
    assert get_auto_approval() == AutoApproval(enabled=False, max_total_fen=None)
    assert len(entries()) == 2


@pytest.mark.parametrize("value", ["-1", "abc", "1.234", "0"])
def test_a_bad_limit_is_refused_in_chinese_and_nothing_changes(client, world, staff, value):
    login(client, "boss")
    r = save(client, enabled="on", max_total_yuan=value)
    assert r.status_code in (400, 422) and "单笔上限" in r.get_data(as_text=True)
    assert get_auto_approval() == AutoApproval() and entries() == []


@pytest.mark.parametrize("username", ["rep1", "money", "cang", "shi"])
def test_only_admins_may_open_or_change_the_rules(client, world, staff, username):
    login(client, username)
    assert client.get(PAGE, headers=HTML).status_code == 403
    token = csrf(client, "/console/orders" if username != "shi" else "/console/")
    r = client.post(PAGE, data={"csrf_token": token, "enabled": "on"}, headers=HTML)
    assert r.status_code == 403 and get_auto_approval() == AutoApproval() and entries() == []


def test_a_change_without_the_csrf_token_is_refused(client, world, staff):
    login(client, "boss")
    r = client.post(PAGE, data={"enabled": "on"}, headers=HTML)
    assert r.status_code == 400 and get_auto_approval() == AutoApproval() and entries() == []


def test_the_cli_goes_through_the_same_audited_service(runner, world):
    out = runner.invoke(args=["settings", "auto-approval", "--on", "--max-total-fen", "100000"])
    assert out.exit_code == 0
    [entry] = entries()
    assert (entry.actor_name, entry.staff_id, entry.after) == ("命令行", None, {"enabled": True, "max_total_fen": 100000})
