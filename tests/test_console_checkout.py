"""The rebate-usage cap edited in the console (admins only, audited) and an order's page
showing how it is paid."""
import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.extensions import db
from app.funds import ledger
from app.funds.checkout import get_rebate_rate
from tests.factories import auth
from tests.helpers import HTML, csrf, submit
from tests.helpers import console_login as login

PAGE = "/console/settings/rebate-usage"


def save(client, percent):
    return client.post(PAGE, data={"csrf_token": csrf(client, PAGE), "max_rate_percent": percent}, headers=HTML,
                       follow_redirects=True)


def entries():
    db.session.expire_all()
    return db.session.execute(select(AuditEntry).where(AuditEntry.action == "settings.rebate_usage")
                              .order_by(AuditEntry.id)).scalars().all()


def test_admin_sets_the_rebate_cap_in_percent_and_it_is_audited(client, world, staff):
    login(client, "boss")
    page = client.get(PAGE, headers=HTML).get_data(as_text=True)
    assert "30%" in page and "3000 基点" in page and 'href="/console/settings/rebate-usage"' in page
    body = save(client, "12.5").get_data(as_text=True)
    assert "已保存" in body and "12.50%" in body
    assert get_rebate_rate() == 1250
    [entry] = entries()
    assert (entry.staff_id, entry.before, entry.after) == (staff["admin"].id, {"max_rate_bp": 3000}, {"max_rate_bp": 1250})
    # The next order is capped by it: 12.5 % of ¥40.00 is ¥5.00.
    ledger.record_movements(dealer_id=world.dealer_a.id, movements=[ledger.Movement("rebate", 10_000, "adjustment")],
                            actor=ledger.SYSTEM, actor_type="system")
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}], use_rebate_fen=501)
    assert r.status_code == 422 and "12.50%" in r.json["error"]["message"]
    assert save(client, "0").status_code == 200 and get_rebate_rate() == 0


@pytest.mark.parametrize("value", ["101", "abc", "-1", "1.234", ""])
def test_a_bad_rate_is_refused_in_chinese_and_nothing_changes(client, world, staff, value):
    login(client, "boss")
    r = save(client, value)
    assert r.status_code == 422 and "返利抵扣比例" in r.get_data(as_text=True)
    assert get_rebate_rate() == 3000 and entries() == []


@pytest.mark.parametrize("username", ["rep1", "money", "cang", "shi"])
def test_only_admins_may_open_or_change_the_cap(client, world, staff, username):
    login(client, username)
    assert client.get(PAGE, headers=HTML).status_code == 403
    token = csrf(client, "/console/orders" if username != "shi" else "/console/")
    r = client.post(PAGE, data={"csrf_token": token, "max_rate_percent": "50"}, headers=HTML)
    assert r.status_code == 403 and get_rebate_rate() == 3000 and entries() == []


def test_a_change_without_the_csrf_token_is_refused(client, world, staff):
    login(client, "boss")
    r = client.post(PAGE, data={"max_rate_percent": "50"}, headers=HTML)
    assert r.status_code == 400 and get_rebate_rate() == 3000 and entries() == []


def test_the_cli_shows_and_sets_the_cap(runner, world):
    assert "30%" in runner.invoke(args=["settings", "rebate-usage"]).output
    result = runner.invoke(args=["settings", "rebate-usage", "--max-rate-bp", "2500"])
    assert result.exit_code == 0 and "25%" in result.output and get_rebate_rate() == 2500
    assert runner.invoke(args=["settings", "rebate-usage", "--max-rate-bp", "10001"]).exit_code != 0


def test_the_order_page_shows_method_rebate_paid_and_due(client, world, staff):
    ledger.record_movements(dealer_id=world.dealer_a.id, movements=[ledger.Movement("rebate", 10_000, "adjustment")],
                            actor=ledger.SYSTEM, actor_type="system")
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 10}], payment_method="offline",
               use_rebate_fen=12_000)
    assert r.status_code == 409  # only ¥100.00 of rebate
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 10}], payment_method="offline",
               use_rebate_fen=10_000)
    login(client, "boss")
    page = client.get(f"/console/orders/{r.json['order_no']}", headers=HTML).get_data(as_text=True)
    assert "线下转账：应付 ¥400.00，返利抵扣 ¥100.00，已付 ¥0.00，<strong>待付 ¥300.00</strong>" in page
