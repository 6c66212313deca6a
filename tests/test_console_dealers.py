"""Dealer management in the console: one dealer's page, create/edit, credit limit,
suspend/reactivate and invite codes — roles, a rep's scope, validation and the audit log."""
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.dealers.models import Dealer, InviteCode
from app.extensions import db
from app.funds.models import CreditAccount, CreditEntry
from app.kernel.clock import business_today
from tests.factories import auth
from tests.helpers import HTML, MP, PASSWORD, credit, csrf, submit
from tests.helpers import console_login as login

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def page(client, path):
    return client.get(path, headers=HTML)


def session_token(client):
    """The signed-in session's CSRF token, as every console form carries it."""
    with client.session_transaction() as session:
        token = session.get("csrf")
    return token or csrf(client)


def post(client, path, data=None, *, token=True):
    form = dict(data or {})
    if token:
        form["csrf_token"] = session_token(client)
    return client.post(path, data=form, headers=HTML)


def audit_rows(action=None):
    db.session.expire_all()
    query = select(AuditEntry).order_by(AuditEntry.id)
    if action:
        query = query.where(AuditEntry.action == action)
    return db.session.execute(query).scalars().all()


def dealer_row(code):
    db.session.expire_all()
    return db.session.execute(select(Dealer).where(Dealer.code == code)).scalar_one_or_none()


def snapshot():
    """Every row the dealer pages can write, to prove a refused request changed nothing."""
    db.session.expire_all()
    dealers = db.session.execute(select(Dealer).order_by(Dealer.id)).scalars().all()
    return {
        "dealers": [(d.code, d.name, d.status, d.contact_name, d.contact_phone, d.payment_terms_days,
                     d.annual_target_fen, d.rep_id, d.tier_id) for d in dealers],
        "limits": db.session.execute(select(CreditAccount.dealer_id, CreditAccount.credit_limit_fen)
                                     .order_by(CreditAccount.dealer_id)).all(),
        "credit_entries": db.session.execute(select(func.count(CreditEntry.id))).scalar_one(),
        "invites": db.session.execute(select(func.count(InviteCode.id))).scalar_one(),
        "audit": db.session.execute(select(func.count(AuditEntry.id))).scalar_one(),
    }


NEW_DEALER = {
    "code": "d021", "name": "东莞市东城区恒通食品贸易有限公司", "tier": "silver", "region_code": "440300",
    "rep": "rep1", "contact_name": "何伟明", "contact_phone": "13925501234", "payment_terms_days": "30",
    "contract_start": "2026-01-01", "contract_end": "2026-12-31", "annual_target": "1,200,000",
    "credit_limit": "12,345.67",
}


# --- the detail page ---------------------------------------------------------------------------

def test_detail_page_shows_profile_terms_credit_users_invites_addresses_and_orders(client, world, staff):
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 2}])
    order_no = r.json["order_no"]
    dealer = world.dealer_a
    dealer.payment_terms_days, dealer.annual_target_fen = 45, 100_000_00
    dealer.contract_start, dealer.contract_end = date(2026, 1, 1), date(2099, 12, 31)
    dealer.contact_name, dealer.contact_phone = "陈志强", "13802461187"
    db.session.commit()
    login(client, "boss")
    html = page(client, "/console/dealers/DA01").get_data(as_text=True)
    for text in ("广州鑫达商贸有限公司", "DA01", "金牌", "广东省广州市", "王业务", "正常", "陈志强", "13802461187",
                 "45 天", "2026-01-01", "2099-12-31", "¥100,000.00", "¥100,000.00",
                 "负责人", "采购员", "只读", "已绑定", "天河路1号", "张三", "默认"):
        assert text in html, text
    assert f'href="/console/orders/{order_no}"' in html and "待审批" in html
    held = credit(dealer)["held"]
    assert f"未结订单占用 ¥{held // 100:,}.{held % 100:02d}" in html
    assert "本年已订货" in html and f"完成年度目标的 {held * 100 // 100_000_00}%" in html


def test_detail_page_lists_unused_invites_and_issues_a_new_one_that_binds(client, world, staff, wechat):
    login(client, world.rep.username)
    r = post(client, "/console/dealers/DA01/invites", {"role": "buyer"})
    assert r.status_code == 302
    invite = db.session.execute(select(InviteCode).order_by(InviteCode.id.desc())).scalars().first()
    assert invite.role == "buyer" and invite.used_at is None
    html = page(client, "/console/dealers/DA01").get_data(as_text=True)
    assert invite.code in html and "生成邀请码" in html
    assert f"已生成采购员邀请码 {invite.code}" in html  # the flash message
    entry = audit_rows("dealer.invite")[-1]
    assert entry.entity_id == "DA01" and entry.after["invite_role"] == "buyer" and invite.code not in str(entry.after)
    # The code works in the mini-program.
    js_code = wechat.mint_code("o-new-buyer")
    token = client.post(f"{MP}/auth/login", json={"code": js_code}).json["token"]
    bound = client.post(f"{MP}/auth/bind", json={"invite_code": invite.code},
                        headers={"Authorization": f"Bearer {token}"})
    assert bound.status_code == 200, bound.json
    assert invite.code not in page(client, "/console/dealers/DA01").get_data(as_text=True)  # used: gone


def test_invite_with_an_unknown_role_is_refused_in_chinese(client, world, staff):
    login(client, "boss")
    before = snapshot()
    r = post(client, "/console/dealers/DA01/invites", {"role": "god"})
    assert r.status_code == 422 and "角色必须是" in r.get_data(as_text=True)
    assert snapshot() == before


def test_finance_sees_the_page_but_not_invite_codes(client, world, staff):
    from app.dealers.identity import create_invite

    invite = create_invite(dealer_code="DA01", role="owner")
    login(client, "money")
    html = page(client, "/console/dealers/DA01").get_data(as_text=True)
    assert "广州鑫达商贸有限公司" in html and invite.code not in html and "调整信用额度" in html
    assert "暂停订货" in html and "编辑资料" in html


# --- who may do what -------------------------------------------------------------------------------

PAGES = ["/console/dealers/DA01", "/console/dealers/DA01/edit", "/console/dealers/new"]
ACTIONS = [
    ("/console/dealers/new", NEW_DEALER),
    ("/console/dealers/DA01/edit", {"contact_name": "改名"}),
    ("/console/dealers/DA01/credit", {"credit_limit": "1"}),
    ("/console/dealers/DA01/suspend", {"reason": "测试"}),
    ("/console/dealers/DA01/reactivate", {"reason": "测试"}),
    ("/console/dealers/DA01/invites", {"role": "owner"}),
]


@pytest.mark.parametrize("username", ["cang", "shi"])
def test_warehouse_and_marketing_get_403_on_every_dealer_page_and_action(client, world, staff, username):
    login(client, username)
    before = snapshot()
    for path in PAGES:
        r = page(client, path)
        assert r.status_code == 403 and CHINESE.search(r.get_data(as_text=True)), path
    for path, data in ACTIONS:
        assert post(client, path, data).status_code == 403, path
    assert snapshot() == before


@pytest.mark.parametrize("username,allowed", [
    ("rep1", {"/console/dealers/DA01/edit", "/console/dealers/DA01/invites"}),
    ("money", {"/console/dealers/DA01/edit", "/console/dealers/DA01/credit", "/console/dealers/DA01/suspend"}),
])
def test_each_role_gets_403_for_the_actions_it_does_not_have(client, world, staff, username, allowed):
    login(client, username)
    before = snapshot()
    for path, data in ACTIONS:
        if path in allowed or path.endswith("/reactivate"):
            continue
        r = post(client, path, data)
        assert r.status_code == 403 and CHINESE.search(r.get_data(as_text=True)), path
    assert page(client, "/console/dealers/new").status_code == 403
    assert snapshot() == before


def test_a_rep_gets_404_for_another_reps_dealer_everywhere(client, world, staff):
    login(client, "rep2")
    before = snapshot()
    for path in ("/console/dealers/DA01", "/console/dealers/DA01/edit"):
        assert page(client, path).status_code == 404
    r = post(client, "/console/dealers/DA01/edit", {"contact_name": "改名"})
    assert r.status_code == 404
    assert post(client, "/console/dealers/DA01/invites", {"role": "owner"}).status_code == 404
    assert page(client, "/console/dealers/NOPE").status_code == 404
    assert snapshot() == before


def test_the_own_rep_opens_the_page(client, world, staff):
    login(client, world.rep.username)
    html = page(client, "/console/dealers/DA01").get_data(as_text=True)
    assert "广州鑫达商贸有限公司" in html and "调整信用额度" not in html and "暂停订货" not in html


def test_posts_without_the_csrf_token_are_refused_and_change_nothing(client, world, staff):
    login(client, "boss")
    before = snapshot()
    for path, data in ACTIONS:
        r = post(client, path, data, token=False)
        assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True), path
        r = client.post(path, data={**data, "csrf_token": "forged"}, headers=HTML)
        assert r.status_code == 400, path
    assert snapshot() == before


def test_signed_out_visitors_are_sent_to_sign_in(client, world, staff):
    r = page(client, "/console/dealers/DA01")
    assert r.status_code == 302 and "/console/login" in r.headers["Location"]


# --- create -----------------------------------------------------------------------------------------

def test_admin_creates_a_dealer_with_terms_and_a_credit_limit(client, world, staff):
    login(client, "boss")
    assert "新建经销商" in page(client, "/console/dealers/new").get_data(as_text=True)
    r = post(client, "/console/dealers/new", NEW_DEALER)
    assert r.status_code == 302 and r.headers["Location"].endswith("/console/dealers/D021")
    dealer = dealer_row("D021")  # the code is stored upper-case
    assert (dealer.name, dealer.tier_id, dealer.region_code, dealer.rep_id, dealer.status) == (
        NEW_DEALER["name"], world.silver.id, "440300", world.rep.id, "active")
    assert (dealer.payment_terms_days, dealer.contract_start, dealer.contract_end) == (
        30, date(2026, 1, 1), date(2026, 12, 31))
    assert dealer.annual_target_fen == 1_200_000_00 and credit(dealer)["limit"] == 1_234_567
    entry = db.session.execute(select(CreditEntry).where(CreditEntry.dealer_id == dealer.id)).scalar_one()
    assert (entry.kind, entry.amount_fen, entry.limit_after_fen) == ("limit_set", 1_234_567, 1_234_567)
    created, limit = audit_rows("dealer.create")[-1], audit_rows("credit.limit")[-1]
    assert created.entity_id == "D021" and created.staff_id == staff["admin"].id and created.before is None
    assert created.after["annual_target_fen"] == 1_200_000_00 and created.after["rep"] == "rep1"
    assert (limit.before, limit.after) == ({"credit_limit_fen": 0}, {"credit_limit_fen": 1_234_567})
    html = page(client, "/console/dealers/D021").get_data(as_text=True)
    assert "已新建经销商 D021" in html and "¥12,345.67" in html and "¥1,200,000.00" in html
    assert "D021" in page(client, "/console/dealers?q=D021").get_data(as_text=True)


@pytest.mark.parametrize("change,field,message", [
    ({"code": "DA01"}, "code", "DA01 已被经销商“广州鑫达商贸有限公司”使用"),
    ({"code": "D 21"}, "code", "只能由字母、数字"),
    ({"code": ""}, "code", "不能为空"),
    ({"name": "上海沪联食品有限公司"}, "name", "与经销商 DB01 重名"),
    ({"name": "  "}, "name", "不能为空"),
    ({"tier": "diamond"}, "tier", "等级“diamond”不存在"),
    ({"region_code": "999999"}, "region_code", "地区编码 999999 不存在"),
    ({"region_code": "4403"}, "region_code", "6 位数字"),
    ({"rep": "boss"}, "rep", "业务员“boss”不存在或已停用"),
    ({"contact_phone": "12345"}, "contact_phone", "11 位手机号"),
    ({"payment_terms_days": "400"}, "payment_terms_days", "0 到 365 天"),
    ({"payment_terms_days": "三十"}, "payment_terms_days", "请输入整数"),
    ({"payment_terms_days": "-3"}, "payment_terms_days", "不能小于 0"),
    ({"contract_end": "2025-12-31"}, "contract_end", "不能早于合同开始日期"),
    ({"contract_start": "2026-02-30"}, "contract_start", "不是有效的日期"),
    ({"annual_target": "12.345"}, "annual_target_fen", "最多精确到分"),
    ({"annual_target": "-5"}, "annual_target_fen", "不能为负数"),
    ({"credit_limit": "1,23"}, "credit_limit_fen", "金额格式无效"),
])
def test_create_refuses_each_bad_field_in_chinese_and_writes_nothing(client, world, staff, change, field, message):
    login(client, "boss")
    before = snapshot()
    r = post(client, "/console/dealers/new", {**NEW_DEALER, **change})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and message in html, html[:3000]
    assert 'class="invalid"' in html and NEW_DEALER["contact_name"] in html  # the form keeps what was typed
    assert snapshot() == before


def test_the_form_reports_unreadable_and_invalid_fields_together(client, world, staff):
    login(client, "boss")
    before = snapshot()
    r = post(client, "/console/dealers/new", {**NEW_DEALER, "code": "DA01", "annual_target": "很多",
                                              "contract_start": "明年"})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "DA01 已被经销商" in html and "金额格式无效" in html and "日期格式应为" in html
    r = post(client, "/console/dealers/DA01/edit", {"contact_phone": "123", "contract_end": "31/12/2026"})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "11 位手机号" in html and "日期格式应为" in html
    assert snapshot() == before
    login(client, world.rep.username)
    assert post(client, "/console/dealers/DA01/edit", {"payment_terms_days": "很多"}).status_code == 403
    assert snapshot() == before


def test_create_reports_every_bad_field_at_once(client, world, staff):
    from app.dealers.admin import create_dealer
    from app.kernel.errors import DomainError

    with pytest.raises(DomainError) as refused:
        create_dealer(staff=staff["admin"], code="DA01", name="", tier="x", region_code="1", contact_phone="1")
    assert refused.value.status == 422 and refused.value.code == "validation_error"
    assert set(refused.value.details["fields"]) == {"code", "name", "tier", "region_code", "contact_phone"}
    assert refused.value.message.startswith("经销商编码：DA01 已被经销商")


# --- edit -------------------------------------------------------------------------------------------

def test_admin_edit_audits_only_the_changed_fields(client, world, staff):
    login(client, "boss")
    form = page(client, "/console/dealers/DA01/edit").get_data(as_text=True)
    assert 'value="广州鑫达商贸有限公司"' in form and 'name="credit_limit" value="100000"' in form
    values = {"name": "广州鑫达商贸有限公司", "tier": "silver", "region_code": "440100", "rep": "rep1",
              "contact_name": "", "contact_phone": "", "payment_terms_days": "60", "contract_start": "",
              "contract_end": "", "annual_target": "", "credit_limit": "100000", "reason": "年度评级调整"}
    r = post(client, "/console/dealers/DA01/edit", values)
    assert r.status_code == 302
    dealer = dealer_row("DA01")
    assert dealer.tier_id == world.silver.id and dealer.payment_terms_days == 60
    entry = audit_rows("dealer.update")[-1]
    assert entry.before == {"tier": "gold", "payment_terms_days": 0}
    assert entry.after == {"tier": "silver", "payment_terms_days": 60} and entry.reason == "年度评级调整"
    assert audit_rows("credit.limit") == []  # the limit was sent unchanged
    count = len(audit_rows())
    assert post(client, "/console/dealers/DA01/edit", {**values, "tier": "silver"}).status_code == 302
    assert len(audit_rows()) == count  # nothing changed, nothing logged


def test_admin_changes_the_credit_limit_on_the_edit_form(client, world, staff):
    login(client, "boss")
    r = post(client, "/console/dealers/DA01/edit", {"credit_limit": "50万", "reason": "授信下调"})
    assert r.status_code == 302 and credit(world.dealer_a)["limit"] == 500_000_00
    entry = audit_rows("credit.limit")[-1]
    assert entry.after == {"credit_limit_fen": 500_000_00} and entry.reason == "授信下调"


def test_edit_validation_keeps_the_form_and_changes_nothing(client, world, staff):
    login(client, "boss")
    before = snapshot()
    r = post(client, "/console/dealers/DA01/edit", {"name": "新名字", "contact_phone": "abc", "credit_limit": ""})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "11 位手机号" in html and "没有额度请填 0" in html and 'value="新名字"' in html
    assert snapshot() == before


def test_a_rep_edits_the_contact_of_their_own_dealer(client, world, staff):
    login(client, world.rep.username)
    form = page(client, "/console/dealers/DA01/edit").get_data(as_text=True)
    assert 'name="contact_name"' in form and 'name="name"' not in form and 'name="credit_limit"' not in form
    r = post(client, "/console/dealers/DA01/edit", {"contact_name": "陈志强", "contact_phone": "020-38881234"})
    assert r.status_code == 302
    dealer = dealer_row("DA01")
    assert (dealer.contact_name, dealer.contact_phone) == ("陈志强", "020-38881234")
    entry = audit_rows("dealer.update")[-1]
    assert entry.staff_id == world.rep.id and entry.after == {"contact_name": "陈志强", "contact_phone": "020-38881234"}


@pytest.mark.parametrize("data", [{"name": "换个名字"}, {"credit_limit": "999999"}, {"tier": "silver"},
                                  {"payment_terms_days": "90"}, {"rep": "rep2"}])
def test_a_rep_may_not_change_anything_but_the_contact(client, world, staff, data):
    login(client, world.rep.username)
    before = snapshot()
    r = post(client, "/console/dealers/DA01/edit", {"contact_name": "陈志强", **data})
    assert r.status_code == 403 and "可以修改：联系人、联系电话" in r.get_data(as_text=True)
    assert snapshot() == before


def test_finance_edits_payment_terms_but_not_the_profile(client, world, staff):
    login(client, "money")
    assert post(client, "/console/dealers/DA01/edit", {"payment_terms_days": "90"}).status_code == 302
    assert dealer_row("DA01").payment_terms_days == 90
    before = snapshot()
    assert post(client, "/console/dealers/DA01/edit", {"name": "换个名字"}).status_code == 403
    assert snapshot() == before


# --- credit limit -----------------------------------------------------------------------------------

def test_finance_sets_the_credit_limit_with_an_entry_and_an_audit_row(client, world, staff):
    submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 2}])
    held = credit(world.dealer_a)["held"]
    login(client, "money")
    r = post(client, "/console/dealers/DA01/credit", {"credit_limit": "¥1.00", "reason": "逾期，压缩额度"})
    assert r.status_code == 302
    # Below what is already used: allowed; the open order keeps its hold.
    assert credit(world.dealer_a) == {"limit": 100, "held": held, "receivable": 0}
    entry = db.session.execute(select(CreditEntry).order_by(CreditEntry.id.desc())).scalars().first()
    assert (entry.kind, entry.amount_fen, entry.limit_after_fen, entry.held_after_fen, entry.note) == (
        "limit_set", 100 - 10_000_000, 100, held, "逾期，压缩额度")
    row = audit_rows("credit.limit")[-1]
    assert (row.entity_type, row.entity_id, row.staff_id) == ("credit", "DA01", staff["finance"].id)
    assert (row.before, row.after, row.reason) == (
        {"credit_limit_fen": 10_000_000}, {"credit_limit_fen": 100}, "逾期，压缩额度")
    html = page(client, "/console/dealers/DA01").get_data(as_text=True)
    assert "信用额度已调整为 ¥1.00" in html and "调整信用额度" in html
    # New credit orders are now refused.
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}])
    assert r.status_code == 409 and r.json["error"]["code"] == "credit_limit_exceeded"


@pytest.mark.parametrize("amount", ["", "abc", "-100", "1.001"])
def test_a_bad_credit_limit_is_refused_in_chinese(client, world, staff, amount):
    login(client, "money")
    before = snapshot()
    r = post(client, "/console/dealers/DA01/credit", {"credit_limit": amount})
    assert r.status_code == 422 and "信用额度：" in r.get_data(as_text=True)
    assert snapshot() == before


# --- suspend and reactivate ----------------------------------------------------------------------

@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_suspend_in_the_console_stops_orders_and_reactivate_lets_them_through(request, database):
    from app.staff.service import create_staff

    client, world = (request.getfixturevalue(name) for name in
                     {"sqlite": ("client", "world"), "postgres": ("pg_client", "pg_world")}[database])
    create_staff(username="money", name="财务", role="finance", password=PASSWORD)
    line = [{"sku_id": world.cola.id, "qty": 1}]
    login(client, "money")
    r = post(client, "/console/dealers/DA01/suspend", {"reason": "货款逾期 60 天"})
    assert r.status_code == 302 and dealer_row("DA01").status == "suspended"
    entry = audit_rows("dealer.suspend")[-1]
    assert (entry.before, entry.after, entry.reason) == ({"status": "active"}, {"status": "suspended"}, "货款逾期 60 天")
    # The dealer's users still sign in and read, but cannot order.
    headers = auth(world.a_buyer)
    assert client.get(f"{MP}/me", headers=headers).status_code == 200
    before = credit(world.dealer_a)
    r = submit(client, headers, line)
    assert r.status_code == 403 and r.json["error"]["code"] == "dealer_suspended"
    assert r.json["error"]["message"] == "贵司账号已被暂停订货，请联系业务员"
    assert credit(world.dealer_a) == before
    assert submit(client, auth(world.b_owner), line).status_code == 201  # other dealers carry on
    html = page(client, "/console/dealers/DA01").get_data(as_text=True)
    assert "已暂停订货" in html and "恢复订货" in html and "货款逾期 60 天" in html
    r = post(client, "/console/dealers/DA01/reactivate", {"reason": "欠款已结清"})
    assert r.status_code == 302 and dealer_row("DA01").status == "active"
    assert audit_rows("dealer.reactivate")[-1].reason == "欠款已结清"
    assert submit(client, headers, line).status_code == 201


def test_suspending_needs_a_reason_and_twice_is_409(client, world, staff):
    login(client, "boss")
    before = snapshot()
    r = post(client, "/console/dealers/DA01/suspend", {"reason": "  "})
    assert r.status_code == 422 and "请填写原因" in r.get_data(as_text=True)
    assert snapshot() == before
    assert post(client, "/console/dealers/DA01/suspend", {"reason": "停货整顿"}).status_code == 302
    before = snapshot()
    r = post(client, "/console/dealers/DA01/suspend", {"reason": "再停一次"})
    assert r.status_code == 409 and "已是“暂停”状态" in r.get_data(as_text=True)
    r = post(client, "/console/dealers/DB01/reactivate", {"reason": "本来就正常"})
    assert r.status_code == 409
    assert snapshot() == before


# --- the services, as the Excel importer calls them ----------------------------------------------

@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_services_run_inside_a_callers_transaction_and_roll_back_together(request, database):
    from app.database import write_transaction
    from app.dealers.admin import create_dealer, set_credit_limit, suspend_dealer, update_dealer
    from app.kernel.errors import DomainError
    from app.staff.service import create_staff

    world = request.getfixturevalue({"sqlite": "world", "postgres": "pg_world"}[database])
    admin = create_staff(username="boss", name="管理员", role="admin", password=PASSWORD)
    before = snapshot()
    with pytest.raises(DomainError), write_transaction() as session:
        create_dealer(staff=admin, code="D100", name="第一行", tier="金牌", region_code="440100", rep="王业务",
                      credit_limit_fen=5_000_00, session=session)
        update_dealer(staff=admin, code="DA01", contact_name="新联系人", session=session)
        set_credit_limit(staff=admin, code="DB01", limit_fen=1, session=session)
        suspend_dealer(staff=admin, code="DB01", reason="导入", session=session)
        create_dealer(staff=admin, code="D100", name="第二行重复编码", tier="gold", region_code="440100",
                      session=session)
    assert snapshot() == before and dealer_row("D100") is None

    created = create_dealer(staff=admin, code="D100", name="第一行", tier="金牌", region_code="440100", rep="王业务")
    assert created.tier_id == world.gold.id and created.rep_id == world.rep.id  # tier and rep by name
    update_dealer(staff=admin, code="D100", tier="silver", credit_limit_fen=300_00, reason="导入")
    suspend_dealer(staff=admin, code="D100", reason="导入")
    dealer = dealer_row("D100")
    assert (dealer.tier_id, dealer.status, credit(dealer)["limit"]) == (world.silver.id, "suspended", 300_00)
    assert [e.action for e in audit_rows()] == ["dealer.create", "dealer.update", "credit.limit", "dealer.suspend"]


def test_dealer_fields_from_text_reads_spreadsheet_cells(app, world, staff):
    from datetime import datetime

    from app.dealers.typed import dealer_fields_from_text
    from app.kernel.errors import DomainError

    fields = dealer_fields_from_text({
        "code": "D030", "contact_phone": 13800000000, "payment_terms_days": 30.0,
        "contract_start": datetime(2026, 3, 1), "contract_end": "2027/2/28", "annual_target": 1500000,
        "credit_limit": 12345.67,
    })
    assert fields == {
        "code": "D030", "contact_phone": "13800000000", "payment_terms_days": 30,
        "contract_start": date(2026, 3, 1), "contract_end": date(2027, 2, 28), "annual_target_fen": 150_000_000,
        "credit_limit_fen": 1_234_567,
    }
    with pytest.raises(DomainError) as refused:
        dealer_fields_from_text({"contract_start": "明天", "annual_target": "很多"})
    assert set(refused.value.details["fields"]) == {"contract_start", "annual_target_fen"}
    with pytest.raises(TypeError):
        dealer_fields_from_text({"colour": "red"})


def test_update_dealer_refuses_unknown_fields_and_the_code(app, world, staff):
    from app.dealers.admin import update_dealer

    with pytest.raises(TypeError):
        update_dealer(staff=staff["admin"], code="DA01", code_new="X")
    with pytest.raises(TypeError):
        update_dealer(staff=staff["admin"], code="DA01", **{"status": "suspended"})


# --- the demo -------------------------------------------------------------------------------------

def test_demo_dealers_have_contract_terms_and_the_suspension_says_why(app, client):
    from app.staff.service import set_password
    from devtools.demo import seed_demo
    from devtools.demo_brand import SUSPENSION_REASON

    seed_demo()
    dealers = db.session.execute(select(Dealer)).scalars().all()
    assert len(dealers) == 20
    for dealer in dealers:
        assert dealer.contract_start <= business_today() <= dealer.contract_end
        assert dealer.annual_target_fen > 0 and dealer.payment_terms_days in (0, 30, 60)
    from app.staff.models import Staff

    set_password(db.session.execute(select(Staff).where(Staff.username == "admin")).scalar_one(), PASSWORD)
    login(client, "admin")
    html = page(client, "/console/dealers/D020").get_data(as_text=True)
    assert "已暂停订货" in html and SUSPENSION_REASON in html and "财务 周敏" in html


# --- under concurrency ------------------------------------------------------------------------------

@pytest.mark.postgres
def test_staff_changes_while_the_dealer_orders_neither_deadlock_nor_break_the_credit_ledger(pg_app, pg_world):
    from app.dealers.admin import reactivate_dealer, suspend_dealer, update_dealer
    from app.kernel.errors import DomainError
    from app.orders.models import Order
    from app.staff.service import create_staff
    from tests.test_concurrency import post_order, run_concurrently

    w = pg_world
    admin = create_staff(username="boss", name="管理员", role="admin", password=PASSWORD)

    def staff_job(action):
        def job(_client):
            with pg_app.app_context():
                try:
                    action()
                    return "done"
                except DomainError as exc:
                    return exc.code
                finally:
                    db.session.remove()
        return job

    limits = [staff_job(lambda n=n: update_dealer(staff=admin, code="DA01", credit_limit_fen=5_000_000 + n,
                                                  payment_terms_days=n, reason="并发调整")) for n in range(1, 11)]
    statuses = [staff_job(lambda: suspend_dealer(staff=admin, code="DA01", reason="并发暂停")),
                staff_job(lambda: reactivate_dealer(staff=admin, code="DA01", reason="并发恢复"))] * 3
    orders = [post_order(auth(w.a_buyer), [{"sku_id": w.cola.id, "qty": 1}]) for _ in range(24)]
    results = run_concurrently(pg_app, orders + limits + statuses)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert {status for status, _ in results[:24]} <= {201, 403}
    assert set(results[24:34]) == {"done"} and set(results[34:]) <= {"done", "dealer_status_unchanged"}
    db.session.expire_all()
    account = db.session.get(CreditAccount, w.dealer_a.id)
    open_holds = db.session.execute(
        select(func.coalesce(func.sum(Order.credit_held_fen), 0)).where(Order.dealer_id == w.dealer_a.id)
    ).scalar_one()
    assert account.held_fen == open_holds
    entries = db.session.execute(
        select(CreditEntry).where(CreditEntry.dealer_id == w.dealer_a.id, CreditEntry.kind == "limit_set")
        .order_by(CreditEntry.id)
    ).scalars().all()
    assert len(entries) == 10 == len(audit_rows("credit.limit"))
    assert entries[-1].limit_after_fen == account.credit_limit_fen
    previous = 10_000_000
    for entry in entries:  # each change starts from the limit the one before left
        assert entry.amount_fen == entry.limit_after_fen - previous
        previous = entry.limit_after_fen


def test_a_shanghai_dealer_reads_as_shanghai_everywhere_not_as_gbt_placeholder(client, world, staff):
    # DB01 sits at 310100, which GB/T 2260 names "市辖区" (Shanghai's city level).
    import io

    import openpyxl

    from app.audience.service import Audience, describe

    login(client, "boss")
    listing = page(client, "/console/dealers").get_data(as_text=True)
    row = re.search(r"<tr>(?:(?!</tr>).)*DB01(?:(?!</tr>).)*</tr>", listing, re.S).group(0)
    assert "上海市" in row and "市辖区" not in row
    assert "广东省广州市" in listing  # the others as written too: province and city
    detail = page(client, "/console/dealers/DB01").get_data(as_text=True)
    assert "上海市（310100）" in detail and "市辖区" not in detail
    form = page(client, "/console/dealers/new").get_data(as_text=True)
    assert ">上海市</option>" in form and ">广东省 广州市</option>" in form and "市辖区" not in form
    sheet = openpyxl.load_workbook(io.BytesIO(client.get("/console/imports/dealers/export.xlsx", headers=HTML).data)).active
    shanghai = next(r for r in sheet.iter_rows(values_only=True) if r[0] == "DB01")
    assert "上海市" in shanghai and "市辖区" not in shanghai
    assert describe(Audience(regions=("310100",))) == "地区：上海市"
    # ...as the mini-program has always said it.
    me = client.get(f"{MP}/me", headers=auth(world.b_owner)).get_json()
    assert me["dealer"]["region"] == {"code": "310100", "name": "上海市"}
