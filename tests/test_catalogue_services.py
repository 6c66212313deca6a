"""Staff-side catalogue, price and stock services (what the console and the Excel importer call):
keyword arguments, role checks, validation with the field in details, audit in the same
transaction, and the "why this price" account agreeing with what the mini-program charges."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.catalog import service as catalog
from app.catalog.models import Sku, VisibilityRule
from app.extensions import db
from app.inventory import service as inventory
from app.inventory.models import Stock, StockMovement
from app.kernel.clock import business_today
from app.kernel.errors import DomainError
from app.kernel.money import fen_to_yuan_text, parse_yuan
from app.pricing import price_lists as pricing
from app.pricing.explain import explain_price
from app.pricing.models import PriceList, PriceListItem
from app.pricing.service import Buyer
from tests.factories import add, auth, set_stock
from tests.helpers import MP, submit


def audit_rows(action=None):
    db.session.expire_all()
    query = select(AuditEntry).order_by(AuditEntry.id)
    if action:
        query = query.where(AuditEntry.action == action)
    return db.session.execute(query).scalars().all()


def error_of(call):
    with pytest.raises(DomainError) as info:
        call()
    db.session.rollback()
    return info.value


# --- money typed in yuan ----------------------------------------------------------------------

@pytest.mark.parametrize("fen", [0, 1, 1250, 123456789])
def test_prices_go_back_into_forms_as_the_yuan_text_they_came_from(fen):
    assert parse_yuan(fen_to_yuan_text(fen)) == fen


# --- SKUs and categories ---------------------------------------------------------------------

def new_sku(staff, **overrides):
    fields = {"code": "SKU-NEW", "name": "新品果汁", "spec": "1L×6瓶", "unit": "箱", "pack_size": 6, "moq": 2, "step": 2,
              "list_price_fen": 5600, "category_id": staff["world"].drinks.id, **overrides}
    return catalog.create_sku(staff=staff["admin"], **fields)


@pytest.fixture
def team(world, staff):
    return {**staff, "world": world}


def test_create_sku_is_audited_and_shows_in_the_mini_program(client, team, world):
    sku = new_sku(team, image_url="https://img.example.com/juice.png", low_stock_qty=5)
    entry = audit_rows("sku.create")[-1]
    assert (entry.entity_id, entry.staff_id, entry.after["list_price_fen"], entry.after["code"]) == (
        str(sku.id), team["admin"].id, 5600, "SKU-NEW")
    set_stock(sku, world.wh_south, 3)
    db.session.commit()
    item = client.get(f"{MP}/products/{sku.id}", headers=auth(world.a_buyer)).json
    assert (item["price_fen"], item["moq"], item["step"], item["stock"]) == (5600, 2, 2, {"available": 3, "level": "low"})


@pytest.mark.parametrize("overrides,field", [
    ({"code": "bad code"}, "code"), ({"code": ""}, "code"), ({"name": " "}, "name"), ({"unit": "x" * 9}, "unit"),
    ({"moq": 0}, "moq"), ({"step": "1.5"}, "step"), ({"list_price_fen": -1}, "list_price_fen"),
    ({"list_price_fen": 12.5}, "list_price_fen"), ({"category_id": 999}, "category_id"), ({"status": "gone"}, "status"),
    ({"moq": 3, "step": 2}, "moq"), ({"image_url": "javascript:alert(1)"}, "image_url"), ({"pack_size": True}, "pack_size"),
    ({"colour": "red"}, "colour"),
])
def test_bad_sku_fields_are_refused_with_the_field_and_nothing_is_written(team, overrides, field):
    exc = error_of(lambda: new_sku(team, **overrides))
    assert exc.status == 422 and exc.details["field"] == field and any("\u4e00" <= c <= "\u9fff" for c in exc.message)
    assert db.session.execute(select(func.count()).select_from(Sku).where(Sku.code == "SKU-NEW")).scalar_one() == 0
    assert audit_rows() == []


def test_sku_codes_are_unique_in_any_case(team):
    exc = error_of(lambda: new_sku(team, code="sku-cola"))
    assert (exc.status, exc.code, exc.details["field"]) == (409, "sku_code_taken", "code")


def test_only_admins_edit_the_catalogue(team, world):
    for who in ("rep", "finance", "warehouse", "marketing"):
        assert error_of(lambda who=who: catalog.update_sku(staff=team[who], sku_id=world.cola.id, name="x")).status == 403
    db.session.expire_all()
    assert world.cola.name == "商品SKU-COLA" and audit_rows() == []


def test_update_sku_records_only_what_changed(team, world):
    catalog.update_sku(staff=team["admin"], sku_id=world.cola.id, name="可乐 330ml", list_price_fen="4900", status="active")
    entry = audit_rows("sku.update")[-1]
    assert (entry.before, entry.after) == (
        {"name": "商品SKU-COLA", "list_price_fen": 4800}, {"name": "可乐 330ml", "list_price_fen": 4900})
    catalog.update_sku(staff=team["admin"], sku_id=world.cola.id, name="可乐 330ml")  # no change, no entry
    assert len(audit_rows("sku.update")) == 1


def test_taking_a_sku_off_sale_hides_it_from_dealers(client, team, world):
    catalog.update_sku(staff=team["admin"], sku_id=world.soy.id, status="inactive")
    assert client.get(f"{MP}/products/{world.soy.id}", headers=auth(world.a_buyer)).status_code == 404


def test_categories_create_and_rename(team, world):
    snacks = catalog.create_category(staff=team["admin"], name="零食")
    catalog.rename_category(staff=team["admin"], category_id=snacks.id, name="休闲零食")
    assert error_of(lambda: catalog.create_category(staff=team["admin"], name="饮料")).status == 409
    assert error_of(lambda: catalog.rename_category(staff=team["admin"], category_id=snacks.id, name="")).status == 422
    assert [e.action for e in audit_rows()] == ["category.create", "category.rename"]
    assert error_of(lambda: catalog.create_category(staff=team["marketing"], name="x")).status == 403


# --- visibility --------------------------------------------------------------------------------

def test_visibility_rules_are_replaced_audited_and_mean_what_the_mini_program_means(client, team, world):
    def sees(user, sku):
        return client.get(f"{MP}/products/{sku.id}", headers=auth(user)).status_code == 200

    catalog.save_visibility_rules(staff=team["admin"], sku_id=world.vinegar.id,
                                  rules=[{"scope": "dealer", "target": "db01", "effect": "deny"}])
    assert sees(world.a_buyer, world.vinegar) and not sees(world.b_owner, world.vinegar)
    catalog.save_visibility_rules(staff=team["admin"], sku_id=world.vinegar.id,
                                  rules=[{"scope": "region", "target": "440000", "effect": "allow"}])
    assert sees(world.a_buyer, world.vinegar) and not sees(world.b_owner, world.vinegar)
    catalog.save_visibility_rules(staff=team["admin"], sku_id=world.vinegar.id, rules=[])
    assert sees(world.b_owner, world.vinegar)
    entries = audit_rows("visibility.save")
    assert [e.after["rules"] for e in entries] == [["禁止经销商 DB01"], ["允许地区 440000"], []]


@pytest.mark.parametrize("rule", [{"scope": "city", "target": "440100", "effect": "allow"},
                                  {"scope": "tier", "target": "platinum", "effect": "allow"},
                                  {"scope": "dealer", "target": "DA01", "effect": "maybe"},
                                  {"scope": "region", "target": "", "effect": "deny"}])
def test_bad_visibility_rules_change_nothing(team, world, rule):
    exc = error_of(lambda: catalog.save_visibility_rules(staff=team["admin"], sku_id=world.gift.id, rules=[rule]))
    assert exc.status == 422 and exc.details["field"] == "rules.0"
    rules = db.session.execute(select(VisibilityRule.scope, VisibilityRule.target).where(
        VisibilityRule.sku_id == world.gift.id)).all()
    assert rules == [("tier", "gold")] and audit_rows() == []


# --- prices --------------------------------------------------------------------------------------

def gold_list(world):
    return db.session.execute(select(PriceList).where(PriceList.name == "金牌价")).scalar_one()


def price_in(price_list, sku):
    db.session.expire_all()
    item = db.session.get(PriceListItem, (price_list.id, sku.id))
    return item and item.price_fen


def test_set_price_adds_or_changes_an_item_and_is_audited(client, team, world):
    gold = gold_list(world)
    pricing.set_price(staff=team["finance"], price_list_id=gold.id, sku_code="sku-vin", price_fen=1800)
    pricing.set_price(staff=team["admin"], price_list_id=gold.id, sku_id=world.soy.id, price_fen=2199)
    assert (price_in(gold, world.vinegar), price_in(gold, world.soy)) == (1800, 2199)
    entries = audit_rows("price.set")
    assert [(e.before, e.after) for e in entries] == [
        (None, {"sku": "SKU-VIN", "price_fen": 1800}),
        ({"sku": "SKU-SOY", "price_fen": 2299}, {"sku": "SKU-SOY", "price_fen": 2199}),
    ]
    item = client.get(f"{MP}/products/{world.vinegar.id}", headers=auth(world.a_buyer)).json
    assert (item["price_fen"], item["price_source"]) == (1800, "tier")


def test_a_batch_with_one_bad_row_changes_nothing_and_names_every_bad_row(team, world):
    gold = gold_list(world)
    items = [{"sku_code": "SKU-VIN", "price_fen": 1}, {"sku_code": "NOPE", "price_fen": 5},
             {"sku_code": "SKU-SOY", "price_fen": -3}, {"sku_code": "sku-vin", "price_fen": 2}]
    exc = error_of(lambda: pricing.set_prices(staff=team["admin"], price_list_id=gold.id, items=items))
    assert exc.status == 422 and exc.message.startswith("第 2 条")
    assert [(r["index"], r["field"]) for r in exc.details["rows"]] == [(1, "sku_code"), (2, "price_fen"), (3, "sku_code")]
    assert price_in(gold, world.vinegar) is None and price_in(gold, world.soy) == 2299 and audit_rows() == []


def test_a_caller_session_makes_many_calls_one_transaction(team, world):
    gold = gold_list(world)
    session = db.session()
    pricing.set_price(staff=team["admin"], price_list_id=gold.id, sku_id=world.vinegar.id, price_fen=1, session=session)
    with pytest.raises(DomainError):
        pricing.set_price(staff=team["admin"], price_list_id=gold.id, sku_code="NOPE", price_fen=1, session=session)
    session.rollback()  # the importer gives up: the first change goes too
    assert price_in(gold, world.vinegar) is None and audit_rows() == []


def test_delete_price_falls_back_to_the_next_price(client, team, world):
    gold = gold_list(world)
    pricing.delete_price(staff=team["admin"], price_list_id=gold.id, sku_id=world.soy.id)
    assert price_in(gold, world.soy) is None
    assert audit_rows("price.delete")[0].before == {"sku": "SKU-SOY", "price_fen": 2299}
    assert client.get(f"{MP}/products/{world.soy.id}", headers=auth(world.a_buyer)).json["price_fen"] == 2599
    assert error_of(lambda: pricing.delete_price(staff=team["admin"], price_list_id=gold.id, sku_id=world.soy.id)).status == 404


def test_price_lists_are_created_and_edited_with_checked_dates(team, world):
    today = business_today()
    new = pricing.save_price_list(staff=team["finance"], name="华南促销价", kind="dealer", dealer_code="da01",
                                  valid_from=today.isoformat(), valid_to=(today + timedelta(days=30)).isoformat(),
                                  items=[{"sku_code": "SKU-TEA", "price_fen": 3000}])
    assert (new.kind, new.dealer_id, price_in(new, world.tea)) == ("dealer", world.dealer_a.id, 3000)
    exc = error_of(lambda: pricing.save_price_list(staff=team["admin"], price_list_id=new.id, name="x",
                                                   valid_from=today, valid_to=today - timedelta(days=1)))
    assert exc.details["field"] == "valid_to"
    pricing.save_price_list(staff=team["admin"], price_list_id=new.id, name="华南促销价（延长）", valid_from=today)
    saves = audit_rows("price_list.save")
    assert saves[-1].after == {"name": "华南促销价（延长）", "valid_to": None}
    for bad, field in [({"kind": "vip"}, "kind"), ({"kind": "tier", "tier_code": "iron"}, "tier_code"),
                       ({"kind": "dealer", "dealer_code": "ZZ99"}, "dealer_code"), ({"valid_from": "2026-02-30"}, "valid_from")]:
        fields = {"name": "坏价目表", "valid_from": today, **bad}
        assert error_of(lambda f=fields: pricing.save_price_list(staff=team["admin"], **f)).details["field"] == field
    assert error_of(lambda: pricing.save_price_list(staff=team["rep"], name="x", kind="tier", tier_code="gold",
                                                    valid_from=today)).status == 403


def test_reps_see_tier_lists_and_only_their_own_dealers_lists(team, world):
    mine = {pl.name for pl, *_ in pricing.list_price_lists(staff=team["rep"])}
    others = {pl.name for pl, *_ in pricing.list_price_lists(staff=team["other_rep"])}
    assert "鑫达专属价" in mine and "鑫达专属价" not in others and "金牌价" in others
    dealer_list = db.session.execute(select(PriceList).where(PriceList.kind == "dealer")).scalar_one()
    assert error_of(lambda: pricing.get_price_list(staff=team["other_rep"], price_list_id=dealer_list.id)).status == 404
    assert error_of(lambda: pricing.list_price_lists(staff=team["warehouse"])).status == 403


# --- why this price --------------------------------------------------------------------------------

def explain(dealer, sku, today=None):
    return explain_price(db.session, Buyer.of(dealer), sku.id, today)


def test_explain_names_the_list_used_and_why_the_others_did_not_apply(world):
    why = explain(world.dealer_a, world.cola)
    assert (why.price_fen, why.source) == (4000, "dealer")
    assert [(pl.name, pl.status) for pl in why.lists] == [
        ("鑫达专属价", "applied"), ("金牌价", "outranked"), ("旧金牌价", "expired")]
    tea = explain(world.dealer_a, world.tea)
    assert (tea.price_fen, tea.source) == (3600, "list")
    assert {pl.name: pl.status for pl in tea.lists} == {"鑫达专属价": "no_item", "金牌价": "no_item", "旧金牌价": "expired"}
    future = add(PriceList(name="下月金牌价", kind="tier", tier_id=world.gold.id, valid_from=business_today() + timedelta(days=3)))
    add(PriceListItem(price_list_id=future.id, sku_id=world.soy.id, price_fen=1))
    newer = add(PriceList(name="新金牌价", kind="tier", tier_id=world.gold.id, valid_from=business_today() - timedelta(days=2)))
    add(PriceListItem(price_list_id=newer.id, sku_id=world.soy.id, price_fen=2222))
    db.session.commit()
    soy = explain(world.dealer_a, world.soy)
    assert (soy.price_fen, soy.source) == (2222, "tier")
    assert {pl.name: pl.status for pl in soy.lists} == {
        "下月金牌价": "not_yet_valid", "新金牌价": "applied", "金牌价": "superseded", "鑫达专属价": "no_item", "旧金牌价": "expired"}
    later = explain(world.dealer_a, world.soy, today=business_today() + timedelta(days=3))
    assert (later.price_fen, {pl.name: pl.status for pl in later.lists}["下月金牌价"]) == (1, "applied")


def test_explain_says_whether_and_why_the_sku_is_visible(world):
    gift_a, gift_b = explain(world.dealer_a, world.gift), explain(world.dealer_b, world.gift)
    assert gift_a.visible and "允许等级 gold" in gift_a.visibility_note
    assert not gift_b.visible and "本经销商都不符合" in gift_b.visibility_note
    local_b = explain(world.dealer_b, world.local)
    assert not local_b.visible and "禁止地区 310000" in local_b.visibility_note
    assert explain(world.dealer_a, world.cola).visibility_note.startswith("没有可见性规则")
    retired = explain(world.dealer_a, world.retired)
    assert not retired.visible and "下架" in retired.visibility_note


def test_explain_agrees_with_the_mini_program_for_every_dealer_and_sku(client, world):
    assert_explain_agrees(client, world)


@pytest.mark.postgres
def test_explain_agrees_with_the_mini_program_on_postgresql(pg_app, pg_world):
    newer = add(PriceList(name="新金牌价", kind="tier", tier_id=pg_world.gold.id, valid_from=business_today()))
    add(PriceListItem(price_list_id=newer.id, sku_id=pg_world.soy.id, price_fen=2222))
    db.session.commit()
    assert_explain_agrees(pg_app.test_client(), pg_world)
    assert explain(pg_world.dealer_a, pg_world.soy).price_fen == 2222


def assert_explain_agrees(client, world):
    for user, dealer in ((world.a_buyer, world.dealer_a), (world.b_owner, world.dealer_b)):  # gold and silver
        for sku in (world.cola, world.tea, world.soy, world.vinegar, world.gift, world.local, world.retired):
            why = explain(dealer, sku)
            r = client.get(f"{MP}/products/{sku.id}", headers=auth(user))
            assert (r.status_code == 200) == why.visible, (dealer.code, sku.code)
            if r.status_code == 200:
                assert (r.json["price_fen"], r.json["price_source"]) == (why.price_fen, why.source), (dealer.code, sku.code)
                applied = [pl.price_fen for pl in why.lists if pl.status == "applied"]
                assert applied == ([] if why.source == "list" else [why.price_fen])


# --- stock -------------------------------------------------------------------------------------------

def on_hand(sku, warehouse):
    db.session.expire_all()
    return db.session.get(Stock, (sku.id, warehouse.id)).on_hand


def test_adjustments_move_on_hand_and_leave_a_movement_and_an_audit_entry(team, world):
    inventory.adjust_stock(staff=team["warehouse"], sku_id=world.soy.id, warehouse_id=world.wh_south.id,
                           delta="-30", reason="破损报废")
    inventory.adjust_stock(staff=team["admin"], sku_id=world.soy.id, warehouse_id=world.wh_south.id,
                           on_hand=95, reason="月末盘点")
    assert on_hand(world.soy, world.wh_south) == 95
    moves = db.session.execute(select(StockMovement).order_by(StockMovement.id)).scalars().all()
    assert [(m.kind, m.delta, m.on_hand_before, m.on_hand_after, m.reason) for m in moves] == [
        ("adjust", -30, 100, 70, "破损报废"), ("count", 25, 70, 95, "月末盘点")]
    entries = audit_rows("stock.adjust")
    assert [(e.before, e.after, e.reason, e.entity_id) for e in entries] == [
        ({"on_hand": 100}, {"on_hand": 70}, "破损报废", "SKU-SOY@WH-S"),
        ({"on_hand": 70}, {"on_hand": 95}, "月末盘点", "SKU-SOY@WH-S")]


def test_an_adjustment_creates_a_missing_stock_row(team, world):
    inventory.adjust_stock(staff=team["warehouse"], sku_id=world.soy.id, warehouse_id=world.wh_east.id, delta=12,
                           reason="调拨入库")
    assert on_hand(world.soy, world.wh_east) == 12


def test_stock_never_goes_below_what_orders_reserved(client, team, world):
    set_stock(world.vinegar, world.wh_south, 10)
    db.session.commit()
    assert submit(client, auth(world.a_buyer), [{"sku_id": world.vinegar.id, "qty": 8}]).status_code == 201
    for kwargs in ({"delta": -3}, {"on_hand": 7}):
        exc = error_of(lambda kw=kwargs: inventory.adjust_stock(
            staff=team["warehouse"], sku_id=world.vinegar.id, warehouse_id=world.wh_south.id, reason="盘亏", **kw))
        assert (exc.status, exc.code) == (409, "below_reserved") and "预留" in exc.message
    assert on_hand(world.vinegar, world.wh_south) == 10
    assert db.session.execute(select(StockMovement)).first() is None and audit_rows() == []
    inventory.adjust_stock(staff=team["warehouse"], sku_id=world.vinegar.id, warehouse_id=world.wh_south.id,
                           delta=-2, reason="盘亏")
    assert on_hand(world.vinegar, world.wh_south) == 8


@pytest.mark.parametrize("kwargs,field", [({"delta": 0}, "delta"), ({"delta": "1.5"}, "delta"), ({}, "delta"),
                                          ({"delta": 1, "on_hand": 1}, "delta"), ({"on_hand": -1}, "on_hand"),
                                          ({"delta": 1, "reason": " "}, "reason")])
def test_bad_adjustments_are_refused(team, world, kwargs, field):
    kwargs = {"reason": "盘点", **kwargs}
    exc = error_of(lambda: inventory.adjust_stock(staff=team["warehouse"], sku_id=world.soy.id,
                                                  warehouse_id=world.wh_south.id, **kwargs))
    assert exc.status == 422 and exc.details["field"] == field
    assert on_hand(world.soy, world.wh_south) == 100


def test_only_warehouse_and_admin_adjust_stock(team, world):
    for who in ("rep", "finance", "marketing"):
        exc = error_of(lambda who=who: inventory.adjust_stock(staff=team[who], sku_id=world.soy.id,
                                                              warehouse_id=world.wh_south.id, delta=1, reason="x"))
        assert exc.status == 403
    assert on_hand(world.soy, world.wh_south) == 100


def test_thresholds_decide_the_mini_programs_stock_level(client, team, world):
    def level():
        return client.get(f"{MP}/products/{world.soy.id}", headers=auth(world.a_buyer)).json["stock"]["level"]

    assert level() == "in_stock"  # 100 available, threshold 10
    catalog.set_low_stock_threshold(staff=team["warehouse"], sku_id=world.soy.id, low_stock_qty="150")
    assert level() == "low"
    entry = audit_rows("stock.threshold")[0]
    assert (entry.before, entry.after) == ({"low_stock_qty": 10}, {"low_stock_qty": 150})
    rows, _ = inventory.list_stock(staff=team["warehouse"], low_only=True)
    assert {r.code for r in rows} == {"SKU-SOY"}


def test_a_threshold_change_is_not_hidden_by_this_processs_catalogue_cache(app, client, team, world):
    app.config.update(CATALOGUE_CACHE_SECONDS=60)
    app.extensions.pop("dinghuo_caches", None)

    def soy_level():
        page = client.get(f"{MP}/products", headers=auth(world.a_buyer)).json
        return next(i["stock"]["level"] for i in page["items"] if i["code"] == "SKU-SOY")

    assert soy_level() == "in_stock"
    catalog.set_low_stock_threshold(staff=team["admin"], sku_id=world.soy.id, low_stock_qty=500)
    assert soy_level() == "low"
    pricing.set_price(staff=team["admin"], price_list_id=gold_list(world).id, sku_id=world.soy.id, price_fen=1111)
    page = client.get(f"{MP}/products", headers=auth(world.a_buyer)).json
    assert next(i["price_fen"] for i in page["items"] if i["code"] == "SKU-SOY") == 1111
