"""The console's rebate pages: admin and finance only; rules created and edited through a form
(audited, refused with the field's reason), periods closed, documents approved or rejected."""
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.extensions import db
from app.funds.models import LedgerEntry
from app.rebates import closing, documents
from app.rebates.models import RebateDocument, RebateRule
from tests.helpers import HTML, csrf
from tests.helpers import console_login as login
from tests.test_rebates import AFTER_Q4, doc_of, make_rule, shipped

RULE_FORM = {
    "name": "季度发货返利", "period_kind": "quarter", "basis": "shipped", "scope": "categories",
    "applies_to": "tiers", "valid_from": "2026-01-01", "valid_to": "",
    "tier_threshold_1": "100,000", "tier_rate_1": "2", "tier_threshold_2": "30万", "tier_rate_2": "3%",
    "growth_threshold": "20", "growth_rate": "1", "growth_min_last_year": "50000", "active": "1",
}


def token(client):
    with client.session_transaction() as session:
        known = session.get("csrf")
    return known or csrf(client, "/console/")


def post(client, path, data=None, *, with_token=True):
    form = dict(data or {})
    if with_token:
        form["csrf_token"] = token(client)
    return client.post(path, data=form, headers=HTML)


def credits():
    db.session.expire_all()
    return db.session.execute(select(LedgerEntry.amount_fen).where(LedgerEntry.ref_type == "rebate")).scalars().all()


@pytest.fixture
def draft(world, staff):
    make_rule(staff)
    shipped(world, world.dealer_a, 12_000_000)
    closing.close_period(period="2026Q4", today=AFTER_Q4)
    return doc_of(world.dealer_a)


PAGES = ["/console/rebates", "/console/rebates/rules", "/console/rebates/rules/new"]


@pytest.mark.parametrize("role", ["rep", "warehouse", "marketing"])
def test_other_roles_get_403_and_no_menu_entry(client, world, staff, draft, role):
    login(client, staff[role].username)
    for path in PAGES + [f"/console/rebates/{draft.id}"]:
        assert client.get(path, headers=HTML).status_code == 403, path
    assert post(client, f"/console/rebates/{draft.id}/approve").status_code == 403
    assert post(client, "/console/rebates/close", {"period": "2026Q4"}).status_code == 403
    assert "/console/rebates" not in client.get("/console/", headers=HTML).get_data(as_text=True)
    assert credits() == []


@pytest.mark.parametrize("role", ["admin", "finance"])
def test_admin_and_finance_see_the_pages_and_the_menu(client, world, staff, draft, role):
    login(client, staff[role].username)
    for path in PAGES:
        assert client.get(path, headers=HTML).status_code == 200, path
    listing = client.get("/console/rebates", headers=HTML).get_data(as_text=True)
    assert f"/console/rebates/{draft.id}" in listing and "¥240,000.00" not in listing  # the rebate, not the basis
    assert "¥2,400.00" in listing
    detail = client.get(f"/console/rebates/{draft.id}", headers=HTML).get_data(as_text=True)
    assert "¥120,000.00" in detail and "审核通过并入账" in detail and "顺丰速运" in detail


def test_a_post_without_the_csrf_token_is_refused(client, world, staff, draft):
    login(client, staff["finance"].username)
    for path, data in ((f"/console/rebates/{draft.id}/approve", {}), ("/console/rebates/close", {"period": "2026Q4"}),
                       ("/console/rebates/rules/new", RULE_FORM)):
        assert post(client, path, data, with_token=False).status_code == 400, path
    assert credits() == [] and db.session.execute(select(func.count()).select_from(RebateRule)).scalar_one() == 1


def test_finance_creates_and_edits_a_rule_through_the_form(client, world, staff):
    login(client, staff["finance"].username)
    form = {**RULE_FORM}
    created = client.post("/console/rebates/rules/new", headers=HTML, data={
        **form, "category_ids": [str(world.drinks.id)], "tier_ids": [str(world.gold.id)], "csrf_token": token(client)})
    assert created.status_code == 302, created.get_data(as_text=True)[:500]
    rule = db.session.execute(select(RebateRule)).scalar_one()
    assert [(t.threshold_fen, t.rate_bp) for t in rule.tiers] == [(10_000_000, 200), (30_000_000, 300)]
    assert (rule.growth_threshold_bp, rule.growth_rate_bp, rule.growth_min_last_year_fen) == (2000, 100, 5_000_000)
    assert rule.target_ids("category") == [world.drinks.id] and rule.target_ids("tier") == [world.gold.id]
    edit = client.get(f"/console/rebates/rules/{rule.id}/edit", headers=HTML).get_data(as_text=True)
    assert 'value="300000"' in edit and 'value="3"' in edit

    changed = client.post(f"/console/rebates/rules/{rule.id}/edit", headers=HTML, data={
        **form, "scope": "skus", "sku_codes": "SKU-COLA, SKU-SOY", "applies_to": "all", "tier_rate_1": "2.5",
        "csrf_token": token(client)})
    assert changed.status_code == 302
    db.session.expire_all()
    rule = db.session.get(RebateRule, rule.id)
    assert rule.scope == "skus" and rule.target_ids("sku") == sorted([world.cola.id, world.soy.id])
    assert [t.rate_bp for t in rule.tiers] == [250, 300]
    assert [a.action for a in db.session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()] == [
        "rebate_rule.create", "rebate_rule.update"]
    assert "2.5%" in client.get("/console/rebates/rules", headers=HTML).get_data(as_text=True)
    log = client.get("/console/audit", headers=HTML)
    assert log.status_code == 200
    assert "新建返利规则" in log.get_data(as_text=True) and "修改返利规则" in log.get_data(as_text=True)


@pytest.mark.parametrize("change, words", [
    ({"tier_rate_1": "abc"}, "第 1 档返利比例应为百分比数字"),
    ({"tier_rate_1": "2.555"}, "最多两位小数"),
    ({"tier_threshold_2": ""}, "第 2 档请同时填写门槛金额和返利比例"),
    ({"tier_threshold_1": "12.345"}, "金额最多精确到分"),
    ({"growth_rate": ""}, "增长返利请同时填写"),
    ({"scope": "skus", "sku_codes": "NOPE"}, "以下商品编码不存在：NOPE"),
    ({"valid_from": "2026-13-01"}, "生效日期格式应为 YYYY-MM-DD"),
])
def test_a_refused_rule_form_answers_422_with_the_reason_and_saves_nothing(client, world, staff, change, words):
    login(client, staff["admin"].username)
    r = post(client, "/console/rebates/rules/new", {**RULE_FORM, "scope": "all", "applies_to": "all", **change})
    assert r.status_code == 422
    assert words in r.get_data(as_text=True)
    assert db.session.execute(select(func.count()).select_from(RebateRule)).scalar_one() == 0


def test_finance_closes_a_period_from_the_console(client, world, staff):
    make_rule(staff)
    shipped(world, world.dealer_a, 10_000_000, "2025-11-10")
    login(client, staff["finance"].username)

    done = post(client, "/console/rebates/close", {"period": "2025Q4"})
    assert done.status_code == 302
    page = client.get(done.headers["Location"], headers=HTML).get_data(as_text=True)
    assert "新生成 1 张" in page and "¥2,000.00" in page
    bad = post(client, "/console/rebates/close", {"period": "2025Q9"})
    assert bad.status_code == 302
    assert "期间格式应为" in client.get("/console/rebates", headers=HTML).get_data(as_text=True)
    assert db.session.execute(select(func.count()).select_from(RebateDocument)).scalar_one() == 1
    assert client.get("/console/rebates?period=2025Q9", headers=HTML).status_code == 400


def test_approving_from_the_console_credits_once(client, world, staff, draft):
    login(client, staff["finance"].username)

    first = post(client, f"/console/rebates/{draft.id}/approve", {"reason": "核对无误"})
    second = post(client, f"/console/rebates/{draft.id}/approve")

    assert first.status_code == second.status_code == 302
    assert credits() == [240_000]
    page = client.get(f"/console/rebates/{draft.id}", headers=HTML).get_data(as_text=True)
    assert "已入账" in page and "入账后余额 ¥2,400.00" in page and "不能审核通过" in page


def test_rejecting_needs_a_reason(client, world, staff, draft):
    login(client, staff["admin"].username)
    post(client, f"/console/rebates/{draft.id}/reject", {"reason": ""})
    assert doc_of(world.dealer_a).status == "draft"
    post(client, f"/console/rebates/{draft.id}/reject", {"reason": "数据待核实"})
    assert doc_of(world.dealer_a).status == "rejected" and credits() == []


def test_an_unknown_document_is_404(client, world, staff):
    login(client, staff["finance"].username)
    assert client.get("/console/rebates/999999", headers=HTML).status_code == 404
    assert client.get("/console/rebates/abc", headers=HTML).status_code == 404


def test_the_list_shows_drafts_by_default_and_every_status_on_request(client, world, staff, draft):
    documents.approve_document(staff=staff["finance"], document_id=draft.id)
    login(client, staff["finance"].username)

    default = client.get("/console/rebates", headers=HTML).get_data(as_text=True)
    every = client.get("/console/rebates?status=all", headers=HTML).get_data(as_text=True)

    assert f"/console/rebates/{draft.id}\"" not in default and "没有符合条件的返利单" in default
    assert f"/console/rebates/{draft.id}\"" in every and "已入账" in every
    assert client.get("/console/rebates?status=bogus", headers=HTML).status_code == 400
