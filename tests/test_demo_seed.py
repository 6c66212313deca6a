"""`flask demo seed`: a complete, consistent demo brand written in one go."""
from sqlalchemy import func, select

from app.catalog.models import Category, Sku, VisibilityRule
from app.dealers.models import Address, Dealer, InviteCode, Region, Tier
from app.extensions import db
from app.funds.models import CreditAccount, LedgerEntry
from app.inventory.models import Stock, Warehouse
from app.kernel.money import apply_bp
from app.orders.models import Order, Shipment
from app.pricing.models import PriceList, PriceListItem
from app.staff.models import Staff

COUNTED = (Region, Tier, Staff, Dealer, Address, CreditAccount, Category, Sku, Warehouse, Stock,
           PriceList, PriceListItem, VisibilityRule, InviteCode)


def seed(runner, *args):
    return runner.invoke(args=["demo", "seed", *args])


def count(model):
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def counts():
    return {model.__name__: count(model) for model in COUNTED}


def all_rows(model):
    return db.session.execute(select(model)).scalars().all()


def invite_codes():
    return set(db.session.execute(select(InviteCode.code)).scalars())


def dealer(code):
    return db.session.execute(select(Dealer).where(Dealer.code == code)).scalar_one()


def test_seed_creates_the_demo_brand(runner):
    result = seed(runner)
    assert result.exit_code == 0, result.output

    dealers = all_rows(Dealer)
    assert sorted(d.code for d in dealers) == [f"D{n:03d}" for n in range(1, 21)]
    assert {(t.code, t.name, t.rank) for t in all_rows(Tier)} == {
        ("gold", "金牌", 1), ("silver", "银牌", 2), ("standard", "普通", 3)
    }
    assert {d.tier.code for d in dealers} == {"gold", "silver", "standard"}
    assert dealer("D020").status == "suspended"
    assert all(d.status == "active" for d in dealers if d.code != "D020")
    assert all(d.rep is not None and d.rep.role == "sales" for d in dealers)
    assert count(Staff) == 8  # 4 reps + admin, finance, warehouse, marketing
    roles = {s.role for s in db.session.execute(select(Staff).where(Staff.password_hash.is_not(None))).scalars()}
    assert roles == {"admin", "sales", "finance", "warehouse", "marketing"}
    assert 55 <= count(Sku) <= 65
    assert count(Warehouse) == 2
    assert count(Stock) == count(Sku) * 2


def test_every_dealer_has_a_default_address_and_a_credit_account(runner):
    assert seed(runner).exit_code == 0
    limits = {"gold": 500_000_00, "silver": 200_000_00, "standard": 50_000_00}
    for d in all_rows(Dealer):
        defaults = db.session.execute(
            select(Address).where(Address.dealer_id == d.id, Address.is_default.is_(True))
        ).scalars().all()
        assert len(defaults) == 1, d.code
        assert len(defaults[0].phone) == 11 and defaults[0].phone.isdigit()
        account = db.session.get(CreditAccount, d.id)
        assert account is not None, d.code
        assert account.credit_limit_fen == limits[d.tier.code]
        # Only the demo orders hold credit (devtools.demo_activity.DEMO_ORDERS); the shipped ones turned
        # their hold into receivable, every fen of it in the ledger.
        held = db.session.execute(select(func.coalesce(func.sum(Order.credit_held_fen), 0))
                                  .where(Order.dealer_id == d.id)).scalar_one()
        receivable = db.session.execute(select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)).where(
            LedgerEntry.dealer_id == d.id, LedgerEntry.account == "receivable")).scalar_one()
        assert account.receivable_fen == receivable and account.held_fen == held


def test_seed_prints_invite_codes_and_the_login_hint(runner):
    result = seed(runner)
    assert result.exit_code == 0, result.output
    codes = invite_codes()
    assert len(codes) >= 5
    assert all(code in result.output for code in codes)
    assert "鑫达商贸" in result.output
    assert "在本地微信模拟服务页面获取登录 code，然后 POST /api/mp/v1/auth/login" in result.output
    d001_roles = {i.role for i in all_rows(InviteCode) if i.dealer_id == dealer("D001").id}
    assert d001_roles == {"owner", "buyer", "viewer"}


def test_seeding_twice_without_reset_fails_and_changes_nothing(runner):
    assert seed(runner).exit_code == 0
    before, codes = counts(), invite_codes()

    result = seed(runner)

    assert result.exit_code != 0
    assert "数据库中已有数据；如需重建演示数据请加 --reset" in result.output
    assert counts() == before
    assert invite_codes() == codes


def test_reset_rebuilds_the_demo(runner):
    assert seed(runner).exit_code == 0
    before, old_codes = counts(), invite_codes()

    result = seed(runner, "--reset")

    assert result.exit_code == 0, result.output
    assert counts() == before
    assert invite_codes().isdisjoint(old_codes)


def test_reset_on_an_empty_database_seeds(runner):
    result = seed(runner, "--reset")
    assert result.exit_code == 0, result.output
    assert count(Dealer) == 20


def test_every_region_code_used_exists(runner):
    assert seed(runner).exit_code == 0
    regions = {r.code: r for r in all_rows(Region)}
    used = [d.region_code for d in all_rows(Dealer)]
    used += [a.region_code for a in all_rows(Address)]
    used += [w.region_code for w in all_rows(Warehouse)]
    used += [r.target for r in all_rows(VisibilityRule) if r.scope == "region"]
    assert set(used) <= set(regions)
    for region in regions.values():
        if region.parent_code is not None:
            assert region.parent_code in regions
            assert region.code[:2] == region.parent_code[:2]
    # Shipping addresses point at cities, not provinces.
    assert all(regions[a.region_code].parent_code for a in all_rows(Address))


def test_price_lists_hold_positive_integer_prices(runner):
    assert seed(runner).exit_code == 0
    items = all_rows(PriceListItem)
    assert items
    assert all(isinstance(i.price_fen, int) and i.price_fen > 0 for i in items)

    lists = all_rows(PriceList)
    assert any(pl.valid_to is not None for pl in lists), "an expired list shows that dates matter"
    assert {pl.dealer_id for pl in lists if pl.kind == "dealer"} == {dealer("D001").id, dealer("D002").id}

    gold = next(pl for pl in lists if pl.kind == "tier" and pl.valid_to is None and pl.name.endswith("金牌价"))
    for item in items:
        if item.price_list_id == gold.id:
            sku = db.session.get(Sku, item.sku_id)
            assert item.price_fen == apply_bp(sku.list_price_fen, 8500)


def test_visibility_rules_and_stock_levels_show_every_case(runner):
    assert seed(runner).exit_code == 0
    rules = all_rows(VisibilityRule)
    assert {(r.scope, r.effect) for r in rules} == {("tier", "allow"), ("region", "deny"), ("dealer", "allow")}
    assert ("dealer", "D003") in {(r.scope, r.target) for r in rules}
    totals = db.session.execute(select(Stock.sku_id, func.sum(Stock.on_hand)).group_by(Stock.sku_id)).all()
    low = {sku.id: sku.low_stock_qty for sku in all_rows(Sku)}
    assert any(total == 0 for _, total in totals)
    assert any(0 < total <= low[sku_id] for sku_id, total in totals)
    assert any(total > low[sku_id] for sku_id, total in totals)


def test_invite_command_after_seed_prints_a_stored_code(runner):
    assert seed(runner).exit_code == 0

    result = runner.invoke(args=["dealers", "invite", "D001", "--role", "buyer"])

    assert result.exit_code == 0, result.output
    code = result.output.strip().splitlines()[-1]
    invite = db.session.execute(select(InviteCode).where(InviteCode.code == code)).scalar_one()
    assert invite.role == "buyer"
    assert invite.dealer_id == dealer("D001").id


def test_a_failure_part_way_leaves_nothing_behind(runner, monkeypatch):
    import devtools.demo

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(devtools.demo, "_seed_invites", broken)

    result = seed(runner)

    assert result.exit_code != 0
    assert all(n == 0 for n in counts().values()), counts()


def test_seed_leaves_orders_in_every_state_through_the_services(runner):
    from app.notify.models import Outbox
    from app.orders.models import OrderEvent

    from app.kernel.clock import business_day_start, business_today

    assert seed(runner).exit_code == 0
    todays = [o for o in all_rows(Order) if o.created_at >= business_day_start(business_today())]
    statuses = sorted(order.status for order in todays)
    assert statuses == sorted(["completed", "shipped", "partially_shipped", "approved", "pending_approval",
                               "pending_approval"])
    assert db.session.execute(select(func.count()).select_from(Shipment).where(
        Shipment.order_id.in_([o.id for o in todays]))).scalar_one() == 5
    for order in todays:
        shipped = sum(line.shipped_qty for line in order.lines)
        events = [e.to_status for e in db.session.execute(
            select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)).scalars()]
        assert events[0] == "pending_approval" and events[-1] == order.status
        if order.status in ("shipped", "completed"):
            assert all(line.shipped_qty == line.qty for line in order.lines)
        elif order.status == "partially_shipped":
            assert 0 < shipped < sum(line.qty for line in order.lines)
        else:
            assert shipped == 0
    assert count(Outbox) == 0  # the seeded past notifies nobody


def test_seed_publishes_a_few_materials_through_the_material_service(runner, client):
    from app.audit.models import AuditEntry
    from app.dealers.models import DealerUser
    from app.dealers.identity import issue_token
    from app.materials.models import Material
    from app.storage import get_storage

    result = seed(runner)
    assert result.exit_code == 0 and "营销素材" in result.output
    made = all_rows(Material)
    assert len(made) == 5 and {m.status for m in made} == {"published"}
    assert {m.kind for m in made} == {"poster", "image", "article", "miniprogram", "link"}
    assert all(get_storage().get(m.thumb_key)[:3] == b"\xff\xd8\xff" for m in made)
    assert count(AuditEntry) >= 10  # create + publish each, as staff would
    # A gold dealer in Guangdong sees everything addressed to all, gold and Guangdong, not silver/standard.
    gold_gd = next(d for d in all_rows(Dealer) if d.tier.code == "gold" and d.region_code.startswith("44"))
    user = DealerUser(dealer_id=gold_gd.id, role="viewer", openid="o-demo-material-check", name="看素材")
    db.session.add(user)
    db.session.commit()
    body = client.get("/api/mp/v1/materials", headers={"Authorization": f"Bearer {issue_token(user.openid)}"}).get_json()
    assert sorted(i["title"] for i in body["items"]) == sorted(["春节订货会海报", "酱油新品主图", "春季促销政策解读", "新品专区"])


def test_every_command_on_the_demo_database_talks_to_the_standin_not_to_wechat(runner, app, monkeypatch):
    # `flask notify digest` or `flask rq worker` is a new process: `create_app()` from the
    # environment alone, on the demo's database (DATABASE_URL unset -> the embedded SQLite file).
    from app import config as config_module
    from app import create_app

    assert seed(runner).exit_code == 0
    demo_database = app.config["SQLALCHEMY_DATABASE_URI"]
    for name in ("WECHAT_API_BASE", "WECOM_API_BASE", "WECHATPAY_API_BASE", "WECHAT_MINIPROGRAM_STATE", "DINGHUO_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", demo_database)

    worker = create_app()
    for name in ("WECHAT_API_BASE", "WECOM_API_BASE", "WECHATPAY_API_BASE"):
        assert worker.config[name] == "http://127.0.0.1:5001", name
    assert worker.config["WECHAT_MINIPROGRAM_STATE"] == "developer"

    # What the environment says still wins; another database or production never reads the file.
    monkeypatch.setenv("WECOM_API_BASE", "http://127.0.0.1:6001")
    assert config_module.from_env()["WECOM_API_BASE"] == "http://127.0.0.1:6001"
    assert config_module.from_env()["WECHAT_API_BASE"] == "http://127.0.0.1:5001"
    monkeypatch.delenv("WECOM_API_BASE")
    monkeypatch.setenv("DATABASE_URL", "postgresql://brand@db/dinghuo")
    assert config_module.from_env()["WECHAT_API_BASE"] == config_module.OFFICIAL_WECHAT_API_BASE
    monkeypatch.setenv("DATABASE_URL", demo_database)
    monkeypatch.setenv("DINGHUO_ENV", "production")
    assert config_module.from_env()["WECOM_API_BASE"] == config_module.OFFICIAL_WECOM_API_BASE


def test_a_seed_that_finds_the_database_taken_points_nothing_at_the_standin(runner, app, monkeypatch):
    from app import config as config_module

    assert seed(runner).exit_code == 0
    config_module.DEMO_SETTINGS_FILE.unlink()
    assert seed(runner).exit_code != 0  # refused: the file is not written for a database it did not seed
    assert not config_module.DEMO_SETTINGS_FILE.exists()
    assert seed(runner, "--if-empty").exit_code == 0  # the demo's own `make demo` rerun: written
    assert config_module.DEMO_SETTINGS_FILE.exists()
