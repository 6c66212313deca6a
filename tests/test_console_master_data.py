"""The console's master data under 设置: staff accounts (create, profile, role, password reset,
deactivate/reactivate, the self and last-admin guards), dealer tiers, regions and warehouses —
every page and action over HTTP, who may, the Chinese messages and the audit entries."""
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.dealers.models import Region, Tier
from app.extensions import db
from app.inventory.models import Stock, Warehouse
from app.staff.models import Staff
from tests.factories import set_stock
from tests.helpers import HTML, PASSWORD, csrf
from tests.helpers import console_login as login

NEW_PASSWORD = "new-horse-battery-7"


def page(client, path):
    return client.get(path, headers=HTML)


def post(client, path, data=None):
    with client.session_transaction() as session:
        token = session.get("csrf")
    return client.post(path, data={**(data or {}), "csrf_token": token or csrf(client)}, headers=HTML)


def text(response):
    return response.get_data(as_text=True)


def audit_rows(action):
    db.session.expire_all()
    return db.session.execute(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).scalars().all()


def account(username):
    db.session.expire_all()
    return db.session.execute(select(Staff).where(Staff.username == username)).scalar_one_or_none()


def audit_count():
    db.session.expire_all()
    return db.session.execute(select(func.count(AuditEntry.id))).scalar_one()


PAGES = ("/console/staff", "/console/tiers", "/console/regions", "/console/warehouses")


@pytest.mark.parametrize("username, allowed", [
    ("boss", set(PAGES)), ("cang", {"/console/warehouses"}), ("rep1", set()), ("money", set()), ("shi", set()),
])
def test_each_page_opens_only_for_its_roles_and_shows_in_the_settings_menu(client, staff, username, allowed):
    login(client, username)
    menu = text(page(client, "/console/"))
    for path in PAGES:
        assert page(client, path).status_code == (200 if path in allowed else 403), (username, path)
        assert (f'href="{path}"' in menu) is (path in allowed)
    if allowed:
        settings = menu[menu.index("<h2>设置</h2>"):]
        assert all(f'href="{path}"' in settings for path in allowed)


def test_a_refused_role_cannot_post_either_and_nothing_changes(client, world, staff):
    login(client, "rep1")
    before = audit_count()
    for path, data in (("/console/staff", {"username": "x1", "name": "某", "role": "admin", "password": PASSWORD}),
                       (f"/console/staff/{staff['rep'].id}/role", {"role": "admin"}),
                       (f"/console/staff/{staff['admin'].id}/deactivate", {}),
                       ("/console/tiers", {"code": "vip", "name": "VIP", "rank": "1"}),
                       ("/console/regions", {"code": "440305", "name": "南山区"}),
                       ("/console/warehouses", {"code": "WH-N", "name": "华北仓", "region_code": "440100", "priority": "3"}),
                       (f"/console/warehouses/{world.wh_east.id}/deactivate", {})):
        r = post(client, path, data)
        assert r.status_code == 403 and "你的角色无权访问此页面" in text(r), path
    assert audit_count() == before and account("x1") is None and account("rep1").role == "sales"


# --- staff accounts ---------------------------------------------------------------------

def test_admin_creates_an_account_who_can_then_sign_in_and_the_roles_read_in_chinese(client, staff):
    login(client, "boss")
    listing = text(page(client, "/console/staff"))
    assert "业务员" in listing and "管理员" in listing and "仓库" in listing
    r = post(client, "/console/staff", {"username": "zhao", "name": "赵财务", "role": "finance",
                                        "wecom_userid": "ZhaoCW", "phone": "13900000000", "password": PASSWORD})
    created = account("zhao")
    assert r.status_code == 302 and r.location.endswith(f"/console/staff/{created.id}")
    assert (created.name, created.role, created.wecom_userid, created.active) == ("赵财务", "finance", "ZhaoCW", True)
    assert "已创建财务账号 zhao" in text(client.get(r.location, headers=HTML))
    entry = audit_rows("staff.create")[-1]
    assert entry.entity_type == "staff" and entry.after["role"] == "finance" and "password" not in str(entry.after)
    assert "新建员工账号" in text(page(client, "/console/audit?entity_type=staff"))
    assert "财务" in text(page(client, "/console/audit?entity_type=staff"))  # role shown by its label

    other = client.application.test_client()
    assert login(other, "zhao").status_code == 302


@pytest.mark.parametrize("form, status, message", [
    ({"username": "", "name": "某人", "role": "sales"}, 422, "用户名不能为空"),
    ({"username": "two words", "name": "某人", "role": "sales"}, 422, "不能含空格"),
    ({"username": "newbie", "name": "", "role": "sales"}, 422, "姓名不能为空"),
    ({"username": "newbie", "name": "某人", "role": "boss"}, 422, "角色只能是 管理员、业务员、财务、仓库、市场 之一"),
    ({"username": "newbie", "name": "某人", "role": "sales", "password": "short"}, 422, "密码至少需要 8 个字符"),
    ({"username": "boss", "name": "某人", "role": "sales"}, 409, "用户名 boss 已被使用"),
    ({"username": "newbie", "name": "某人", "role": "sales", "wecom_userid": "WangYeWu"}, 409,
     "企业微信 UserID WangYeWu 已被账号 rep1 使用"),
    ({"username": "newbie", "name": "某人", "role": "sales", "wecom_userid": "王 五"}, 422, "企业微信 UserID 只能包含"),
])
def test_creating_an_account_is_checked_with_chinese_messages(client, staff, form, status, message):
    login(client, "boss")
    before = audit_count()
    r = post(client, "/console/staff", {"password": PASSWORD, **form})
    assert r.status_code == status and message in text(r)
    assert 'id="staff-error"' in text(r) and audit_count() == before and account("newbie") is None


def test_the_cli_keeps_the_same_password_rule(runner, staff):
    result = runner.invoke(args=["staff", "create", "cliuser", "--role", "sales", "--password", "short"])
    assert result.exit_code != 0 and "密码至少需要 8 个字符" in result.output


def test_profile_and_role_changes_are_audited_with_what_changed(client, staff):
    login(client, "boss")
    rep2 = staff["other_rep"]
    assert "李业务" in text(page(client, f"/console/staff/{rep2.id}"))
    r = post(client, f"/console/staff/{rep2.id}/profile", {"name": "李四业务", "wecom_userid": "LiSi", "phone": ""})
    assert r.status_code == 302 and account("rep2").name == "李四业务" and account("rep2").wecom_userid == "LiSi"
    entry = audit_rows("staff.update")[-1]
    assert entry.before == {"name": "李业务", "wecom_userid": None} and entry.after == {"name": "李四业务", "wecom_userid": "LiSi"}

    r = post(client, f"/console/staff/{rep2.id}/role", {"role": "warehouse"})
    assert r.status_code == 302 and account("rep2").role == "warehouse"
    assert "角色已改为仓库" in text(client.get(r.location, headers=HTML))
    assert (audit_rows("staff.role")[-1].before, audit_rows("staff.role")[-1].after) == ({"role": "sales"}, {"role": "warehouse"})

    r = post(client, f"/console/staff/{rep2.id}/role", {"role": "warehouse"})
    assert r.status_code == 409 and "已经是仓库" in text(r)
    r = post(client, f"/console/staff/{rep2.id}/role", {"role": "root"})
    assert r.status_code == 422 and "角色只能是" in text(r)
    assert page(client, "/console/staff/999999").status_code == 404


def test_a_password_reset_ends_the_accounts_sessions_and_the_new_password_works(client, app, staff):
    rep = app.test_client()
    login(rep, "rep1")
    assert page(rep, "/console/orders").status_code == 200

    login(client, "boss")
    rep_id = staff["rep"].id
    r = post(client, f"/console/staff/{rep_id}/password", {"password": NEW_PASSWORD, "password_again": "different-1"})
    assert r.status_code == 422 and "两次输入的新密码不一致" in text(r)
    r = post(client, f"/console/staff/{rep_id}/password", {"password": "short", "password_again": "short"})
    assert r.status_code == 422 and "密码至少需要 8 个字符" in text(r)
    assert page(rep, "/console/orders").status_code == 200  # refused resets changed nothing

    r = post(client, f"/console/staff/{rep_id}/password", {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert r.status_code == 302 and "原有的登录已失效" in text(client.get(r.location, headers=HTML))
    old_session = page(rep, "/console/orders")
    assert old_session.status_code == 302 and "/console/login" in old_session.location
    assert login(app.test_client(), "rep1").status_code == 401
    assert login(app.test_client(), "rep1", NEW_PASSWORD).status_code == 302
    entry = audit_rows("staff.password_reset")[-1]
    assert entry.entity_id == str(rep_id) and entry.before is None and entry.after is None


def test_resetting_ones_own_password_keeps_this_session_but_ends_the_others(client, app, staff):
    elsewhere = app.test_client()
    login(elsewhere, "boss")
    login(client, "boss")
    boss = staff["admin"].id
    r = post(client, f"/console/staff/{boss}/password", {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert r.status_code == 302 and page(client, "/console/staff").status_code == 200
    assert page(elsewhere, "/console/staff").status_code == 302


def test_a_deactivated_account_is_signed_out_refused_at_login_and_can_be_reactivated(client, app, staff):
    rep = app.test_client()
    login(rep, "rep1")
    login(client, "boss")
    rep_id = staff["rep"].id
    r = post(client, f"/console/staff/{rep_id}/deactivate")
    assert r.status_code == 302 and account("rep1").active is False
    assert page(rep, "/console/orders").status_code == 302
    refused = login(app.test_client(), "rep1")
    assert refused.status_code == 401 and "用户名或密码错误，或账号已停用" in text(refused)
    assert "已停用" in text(page(client, "/console/staff"))
    assert post(client, f"/console/staff/{rep_id}/deactivate").status_code == 409

    assert post(client, f"/console/staff/{rep_id}/reactivate").status_code == 302
    assert login(app.test_client(), "rep1").status_code == 302
    assert [e.action for e in audit_rows("staff.deactivate") + audit_rows("staff.reactivate")] == \
        ["staff.deactivate", "staff.reactivate"]


def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated(client, staff):
    login(client, "boss")
    boss = staff["admin"].id
    before = audit_count()
    r = post(client, f"/console/staff/{boss}/role", {"role": "finance"})
    assert r.status_code == 409 and "管理员是最后一个启用的管理员，不能改为财务" in text(r)
    r = post(client, f"/console/staff/{boss}/deactivate")
    assert r.status_code == 409 and "最后一个启用的管理员，不能停用" in text(r)
    assert account("boss").role == "admin" and account("boss").active and audit_count() == before


def test_with_a_second_admin_one_still_cannot_demote_or_deactivate_oneself_but_may_the_other(client, app, staff):
    login(client, "boss")
    money = staff["finance"].id
    assert post(client, f"/console/staff/{money}/role", {"role": "admin"}).status_code == 302
    boss = staff["admin"].id
    r = post(client, f"/console/staff/{boss}/role", {"role": "sales"})
    assert r.status_code == 409 and "不能修改自己的角色；请让另一位管理员操作" in text(r)
    r = post(client, f"/console/staff/{boss}/deactivate")
    assert r.status_code == 409 and "不能停用自己的账号" in text(r)
    assert post(client, f"/console/staff/{money}/deactivate").status_code == 302
    # money is inactive now: boss is the last active admin again
    assert post(client, f"/console/staff/{money}/reactivate").status_code == 302
    other = app.test_client()
    login(other, "money")
    assert post(other, f"/console/staff/{boss}/role", {"role": "marketing"}).status_code == 302
    assert account("boss").role == "marketing"
    r = post(other, f"/console/staff/{money}/role", {"role": "sales"})
    assert r.status_code == 409 and "最后一个启用的管理员" in text(r)


# --- tiers ------------------------------------------------------------------------------

def test_tiers_list_create_edit_and_delete_with_checks(client, world, staff):
    login(client, "boss")
    listing = text(page(client, "/console/tiers"))
    assert "金牌" in listing and "银牌" in listing
    r = post(client, "/console/tiers", {"code": "bronze", "name": "铜牌", "rank": "5"})
    assert r.status_code == 302
    tier = db.session.execute(select(Tier).where(Tier.code == "bronze")).scalar_one()
    assert (tier.name, tier.rank) == ("铜牌", 5) and audit_rows("tier.create")[-1].after["name"] == "铜牌"

    for form, status, message in (
        ({"code": "gold", "name": "新金牌", "rank": "1"}, 409, "等级编码 gold 已存在"),
        ({"code": "vip", "name": "金牌", "rank": "1"}, 409, "已有名为“金牌”的等级"),
        ({"code": "vip", "name": "", "rank": "1"}, 422, "等级名称不能为空"),
        ({"code": "v i p", "name": "VIP", "rank": "1"}, 422, "等级编码只能包含字母、数字"),
        ({"code": "vip", "name": "VIP", "rank": "-1"}, 422, "排序不能小于 0"),
        ({"code": "vip", "name": "VIP", "rank": "abc"}, 422, "排序应为整数"),
    ):
        r = post(client, "/console/tiers", form)
        assert r.status_code == status and message in text(r), form

    r = post(client, f"/console/tiers/{tier.id}", {"name": "青铜", "rank": "4"})
    assert r.status_code == 302
    entry = audit_rows("tier.update")[-1]
    assert entry.before == {"name": "铜牌", "rank": 5} and entry.after == {"name": "青铜", "rank": 4}
    r = post(client, f"/console/tiers/{tier.id}", {"name": "", "rank": "4"})
    assert r.status_code == 422 and "等级名称不能为空" in text(r)

    r = post(client, f"/console/tiers/{world.gold.id}/delete")
    assert r.status_code == 409 and "仍被 1 家经销商、2 个价格表、1 条商品可见性规则 使用" in text(r)
    assert post(client, f"/console/tiers/{tier.id}/delete").status_code == 302
    assert db.session.get(Tier, tier.id) is None and audit_rows("tier.delete")[-1].before["code"] == "bronze"


# --- regions ----------------------------------------------------------------------------

def tree_of(response):
    body = text(response)
    return body[body.index('id="regions"'):body.index("<h2>添加地区")]


def test_regions_show_the_tree_with_dealer_counts_and_search(client, world, staff):
    login(client, "boss")
    tree = tree_of(page(client, "/console/regions"))
    assert "广东省" in tree and "广州市" in tree and "深圳市" in tree and "市辖区" in tree
    # 广东省 counts 广州市's dealer, 上海市 its 市辖区's: four nodes with one dealer, 深圳市 none
    assert tree.count("1 家经销商") == 4 and tree.count("0 家经销商") == 1
    assert 'href="/console/dealers?region=440000"' in tree
    found = tree_of(page(client, "/console/regions?q=深圳"))
    assert "深圳市" in found and "广东省" in found and "广州市" not in found and "上海市" not in found
    assert "440300" in tree_of(page(client, "/console/regions?q=4403"))
    assert "没有找到" in text(page(client, "/console/regions?q=火星"))


def test_a_province_counts_and_lists_the_dealers_of_its_districts(client, world, staff):
    login(client, "boss")
    assert post(client, "/console/regions", {"code": "440106", "name": "天河区"}).status_code == 302
    dealer = db.session.get(type(world.dealer_a), world.dealer_a.id)
    dealer.region_code = "440106"
    db.session.commit()
    tree = tree_of(page(client, "/console/regions?q=天河"))
    assert tree.count("1 家经销商") == 3  # 天河区, 广州市, 广东省
    listed = text(client.get("/console/dealers", query_string={"region": "440000"}, headers=HTML))
    assert "DA01" in listed and "DB01" not in listed


def test_regions_are_added_and_renamed_with_checks(client, world, staff):
    login(client, "boss")
    r = post(client, "/console/regions", {"code": "440305", "name": "南山区"})
    assert r.status_code == 302
    assert db.session.get(Region, "440305").parent_code == "440300"
    assert audit_rows("region.create")[-1].after == {"code": "440305", "name": "南山区", "parent_code": "440300"}
    for form, status, message in (
        ({"code": "440305", "name": "南山"}, 409, "地区编码 440305 已存在（南山区）"),
        ({"code": "4403", "name": "某地"}, 422, "地区编码应为 6 位数字"),
        ({"code": "450100", "name": "南宁市"}, 422, "请先添加上级地区 450000（省级）"),
        ({"code": "450000", "name": ""}, 422, "地区名称不能为空"),
    ):
        r = post(client, "/console/regions", form)
        assert r.status_code == status and message in text(r), form
    r = post(client, "/console/regions/rename", {"code": "440305", "name": "南山区（深圳）"})
    assert r.status_code == 302 and db.session.get(Region, "440305").name == "南山区（深圳）"
    assert audit_rows("region.rename")[-1].before == {"name": "南山区"}
    r = post(client, "/console/regions/rename", {"code": "999999", "name": "无"})
    assert r.status_code == 404 and "地区不存在" in text(r)


# --- warehouses -------------------------------------------------------------------------

def test_warehouses_are_listed_created_and_edited_with_checks(client, world, staff):
    login(client, "cang")
    listing = text(page(client, "/console/warehouses"))
    assert "华南仓" in listing and "广东省广州市" in listing and "上海市" in listing
    r = post(client, "/console/warehouses", {"code": "WH-N", "name": "华北仓", "region_code": "440300", "priority": "3"})
    assert r.status_code == 302
    house = db.session.execute(select(Warehouse).where(Warehouse.code == "WH-N")).scalar_one()
    assert house.active and house.priority == 3 and audit_rows("warehouse.create")[-1].after["code"] == "WH-N"
    for form, status, message in (
        ({"code": "WH-S", "name": "另一仓", "region_code": "440100", "priority": "1"}, 409, "仓库编码 WH-S 已被“华南仓”使用"),
        ({"code": "WH-X", "name": "", "region_code": "440100", "priority": "1"}, 422, "仓库名称不能为空"),
        ({"code": "WH-X", "name": "某仓", "region_code": "999999", "priority": "1"}, 422, "地区编码 999999 不存在"),
        ({"code": "WH-X", "name": "某仓", "region_code": "440100", "priority": "x"}, 422, "发货优先级应为整数"),
    ):
        r = post(client, "/console/warehouses", form)
        assert r.status_code == status and message in text(r), form

    assert "华北仓" in text(page(client, f"/console/warehouses/{house.id}"))
    r = post(client, f"/console/warehouses/{house.id}", {"code": "WH-NN", "name": "华北一仓", "region_code": "440300", "priority": "3"})
    assert r.status_code == 302
    entry = audit_rows("warehouse.update")[-1]
    assert entry.before == {"code": "WH-N", "name": "华北仓"} and entry.after == {"code": "WH-NN", "name": "华北一仓"}
    r = post(client, f"/console/warehouses/{house.id}", {"code": "WH-E", "name": "华北一仓", "region_code": "440300", "priority": "3"})
    assert r.status_code == 409 and "已被“华东仓”使用" in text(r)


def test_a_warehouse_with_stock_or_reservations_is_not_deactivated_an_empty_one_is_and_takes_no_stock(client, world, staff):
    login(client, "boss")
    east = world.wh_east
    r = post(client, f"/console/warehouses/{east.id}/deactivate")
    assert r.status_code == 409 and "仍有库存（在手库存 50）" in text(r)
    set_stock(world.cola, east, 5, reserved=5)
    db.session.commit()
    r = post(client, f"/console/warehouses/{east.id}/deactivate")
    assert r.status_code == 409 and "预留 5" in text(r)
    set_stock(world.cola, east, 0)
    db.session.commit()
    assert post(client, f"/console/warehouses/{east.id}/deactivate").status_code == 302
    assert db.session.get(Warehouse, east.id).active is False
    assert audit_rows("warehouse.deactivate")[-1].after == {"active": False}
    assert "已停用" in text(page(client, "/console/warehouses"))

    r = post(client, f"/console/stock/{world.cola.id}/adjust", {"warehouse_id": str(east.id), "delta": "10", "reason": "到货"})
    assert r.status_code == 409 and "已停用，不能入库或调整库存" in text(r)
    assert db.session.get(Stock, (world.cola.id, east.id)).on_hand == 0
    assert f'value="{east.id}"' not in text(page(client, f"/console/stock/{world.cola.id}")).split('name="warehouse_id"')[1][:400]

    assert post(client, f"/console/warehouses/{east.id}/reactivate").status_code == 302
    assert db.session.get(Warehouse, east.id).active is True


def test_a_deactivated_warehouse_is_refused_by_the_stock_import_and_offered_to_no_return(client, world, staff):
    import re

    from app.returns import service as returns
    from tests.test_imports import STOCK_HEADERS, upload, xlsx

    set_stock(world.cola, world.wh_east, 0)
    db.session.commit()
    login(client, "boss")
    assert post(client, f"/console/warehouses/{world.wh_east.id}/deactivate").status_code == 302
    r = upload(client, "stock", xlsx(STOCK_HEADERS, [["WH-E", None, "SKU-TEA", None, None, None, 7]]), reason="盘点")
    assert r.status_code == 422 and re.search(r"第 2 行</td><td>[^<]*仓库 WH-E 已停用，不能导入库存", text(r))
    assert db.session.get(Stock, (world.tea.id, world.wh_east.id)) is None
    assert [w.code for w in returns.list_warehouses()] == ["WH-S"]
