"""Small, explicit test data. `build_world()` makes two dealers and a catalogue."""
from datetime import date, timedelta
from types import SimpleNamespace

from app.catalog.models import Category, Sku, VisibilityRule
from app.dealers.models import Address, Dealer, DealerUser, Region, Tier
from app.dealers.service import issue_token
from app.extensions import db
from app.funds.models import CreditAccount
from app.inventory.models import Stock, Warehouse
from app.pricing.models import PriceList, PriceListItem
from app.staff.models import Staff

REGIONS = [
    ("440000", "广东省", None),
    ("440100", "广州市", "440000"),
    ("440300", "深圳市", "440000"),
    ("310000", "上海市", None),
    ("310100", "市辖区", "310000"),
]


def add(obj):
    db.session.add(obj)
    db.session.flush()
    return obj


def make_user(dealer, role="owner", openid=None):
    user = add(DealerUser(dealer_id=dealer.id, role=role, openid=openid or f"o-{dealer.code}-{role}", name=role))
    return user


def auth(user):
    return {"Authorization": f"Bearer {issue_token(user.openid)}"}


def make_sku(category, code, *, list_price_fen=1000, moq=1, step=1, pack_size=1, name=None, status="active"):
    return add(
        Sku(
            code=code,
            name=name or f"商品{code}",
            spec="500ml×12瓶",
            unit="箱",
            pack_size=pack_size,
            moq=moq,
            step=step,
            list_price_fen=list_price_fen,
            category_id=category.id,
            status=status,
            low_stock_qty=10,
        )
    )


def set_stock(sku, warehouse, on_hand, reserved=0):
    row = db.session.get(Stock, (sku.id, warehouse.id))
    if row is None:
        row = add(Stock(sku_id=sku.id, warehouse_id=warehouse.id, on_hand=on_hand, reserved=reserved))
    else:
        row.on_hand, row.reserved = on_hand, reserved
    return row


def build_world(*, credit_limit_fen=10_000_000):
    w = SimpleNamespace()
    for code, name, parent in REGIONS:
        add(Region(code=code, name=name, parent_code=parent))
    w.gold = add(Tier(code="gold", name="金牌", rank=1))
    w.silver = add(Tier(code="silver", name="银牌", rank=2))
    w.rep = add(Staff(username="rep1", name="王业务", role="sales", wecom_userid="WangYeWu"))
    w.dealer_a = add(Dealer(code="DA01", name="广州鑫达商贸有限公司", tier_id=w.gold.id, region_code="440100", rep_id=w.rep.id))
    w.dealer_b = add(Dealer(code="DB01", name="上海沪联食品有限公司", tier_id=w.silver.id, region_code="310100", rep_id=w.rep.id))
    for dealer in (w.dealer_a, w.dealer_b):
        add(CreditAccount(dealer_id=dealer.id, credit_limit_fen=credit_limit_fen))
    w.addr_a = add(Address(dealer_id=w.dealer_a.id, contact_name="张三", phone="13800000001", region_code="440100", detail="天河路1号", is_default=True))
    w.addr_b = add(Address(dealer_id=w.dealer_b.id, contact_name="李四", phone="13800000002", region_code="310100", detail="南京路2号", is_default=True))
    w.a_owner = make_user(w.dealer_a, "owner")
    w.a_buyer = make_user(w.dealer_a, "buyer")
    w.a_viewer = make_user(w.dealer_a, "viewer")
    w.b_owner = make_user(w.dealer_b, "owner")

    w.drinks = add(Category(name="饮料", sort=1))
    w.sauces = add(Category(name="调味品", sort=2))
    w.wh_south = add(Warehouse(code="WH-S", name="华南仓", region_code="440100", priority=1))
    w.wh_east = add(Warehouse(code="WH-E", name="华东仓", region_code="310100", priority=2))

    w.cola = make_sku(w.drinks, "SKU-COLA", list_price_fen=4800)
    w.tea = make_sku(w.drinks, "SKU-TEA", list_price_fen=3600, moq=5, step=5)
    w.soy = make_sku(w.sauces, "SKU-SOY", list_price_fen=2599)
    w.vinegar = make_sku(w.sauces, "SKU-VIN", list_price_fen=1999)
    # Visible only to the gold tier.
    w.gift = make_sku(w.drinks, "SKU-GIFT", list_price_fen=19900)
    add(VisibilityRule(sku_id=w.gift.id, scope="tier", target="gold", effect="allow"))
    # Hidden from Shanghai.
    w.local = make_sku(w.sauces, "SKU-LOCAL", list_price_fen=1500)
    add(VisibilityRule(sku_id=w.local.id, scope="region", target="310000", effect="deny"))
    w.retired = make_sku(w.drinks, "SKU-OLD", list_price_fen=1000, status="inactive")

    for sku in (w.cola, w.tea, w.soy, w.vinegar, w.gift, w.local, w.retired):
        set_stock(sku, w.wh_south, 100)
    set_stock(w.cola, w.wh_east, 50)

    today = date.today()
    gold_list = add(PriceList(name="金牌价", kind="tier", tier_id=w.gold.id, valid_from=today - timedelta(days=30)))
    add(PriceListItem(price_list_id=gold_list.id, sku_id=w.cola.id, price_fen=4200))
    add(PriceListItem(price_list_id=gold_list.id, sku_id=w.soy.id, price_fen=2299))
    expired = add(PriceList(name="旧金牌价", kind="tier", tier_id=w.gold.id, valid_from=today - timedelta(days=90), valid_to=today - timedelta(days=31)))
    add(PriceListItem(price_list_id=expired.id, sku_id=w.tea.id, price_fen=100))
    dealer_list = add(PriceList(name="鑫达专属价", kind="dealer", dealer_id=w.dealer_a.id, valid_from=today))
    add(PriceListItem(price_list_id=dealer_list.id, sku_id=w.cola.id, price_fen=4000))
    silver_list = add(PriceList(name="银牌价", kind="tier", tier_id=w.silver.id, valid_from=today - timedelta(days=1)))
    add(PriceListItem(price_list_id=silver_list.id, sku_id=w.cola.id, price_fen=4500))
    db.session.commit()
    return w
