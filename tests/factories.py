"""Small, explicit test data. `build_world()` makes two dealers and a catalogue."""
from datetime import timedelta
from types import SimpleNamespace

from app.catalog.models import Category, Sku, VisibilityRule
from app.dealers.models import Address, Dealer, DealerUser, Region, Tier
from app.dealers.identity import issue_token
from app.extensions import db
from app.funds.models import CreditAccount
from app.inventory.models import Stock, Warehouse
from app.kernel.clock import business_today
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


def add_all(*objs):
    """Add several rows with one flush (ids assigned); returns them."""
    db.session.add_all(objs)
    db.session.flush()
    return objs


def build_world(*, credit_limit_fen=10_000_000):
    """Rows are flushed a level at a time (each level needs the ids of the one before)."""
    w = SimpleNamespace()
    today = business_today()
    db.session.add_all([Region(code=code, name=name, parent_code=parent) for code, name, parent in REGIONS])
    w.gold, w.silver, w.rep, w.drinks, w.sauces, w.wh_south, w.wh_east = add_all(
        Tier(code="gold", name="金牌", rank=1),
        Tier(code="silver", name="银牌", rank=2),
        Staff(username="rep1", name="王业务", role="sales", wecom_userid="WangYeWu"),
        Category(name="饮料", sort=1),
        Category(name="调味品", sort=2),
        Warehouse(code="WH-S", name="华南仓", region_code="440100", priority=1),
        Warehouse(code="WH-E", name="华东仓", region_code="310100", priority=2),
    )
    w.dealer_a, w.dealer_b = add_all(
        Dealer(code="DA01", name="广州鑫达商贸有限公司", tier_id=w.gold.id, region_code="440100", rep_id=w.rep.id),
        Dealer(code="DB01", name="上海沪联食品有限公司", tier_id=w.silver.id, region_code="310100", rep_id=w.rep.id),
    )

    def sku(category, code, *, list_price_fen, moq=1, step=1, status="active"):
        return Sku(code=code, name=f"商品{code}", spec="500ml×12瓶", unit="箱", pack_size=1, moq=moq, step=step,
                   list_price_fen=list_price_fen, category_id=category.id, status=status, low_stock_qty=10)

    (w.addr_a, w.addr_b, w.a_owner, w.a_buyer, w.a_viewer, w.b_owner,
     w.cola, w.tea, w.soy, w.vinegar, w.gift, w.local, w.retired,
     gold_list, expired, dealer_list, silver_list) = add_all(
        Address(dealer_id=w.dealer_a.id, contact_name="张三", phone="13800000001", region_code="440100", detail="天河路1号", is_default=True),
        Address(dealer_id=w.dealer_b.id, contact_name="李四", phone="13800000002", region_code="310100", detail="南京路2号", is_default=True),
        *(DealerUser(dealer_id=dealer.id, role=role, openid=f"o-{dealer.code}-{role}", name=role)
          for dealer, role in ((w.dealer_a, "owner"), (w.dealer_a, "buyer"), (w.dealer_a, "viewer"), (w.dealer_b, "owner"))),
        sku(w.drinks, "SKU-COLA", list_price_fen=4800),
        sku(w.drinks, "SKU-TEA", list_price_fen=3600, moq=5, step=5),
        sku(w.sauces, "SKU-SOY", list_price_fen=2599),
        sku(w.sauces, "SKU-VIN", list_price_fen=1999),
        sku(w.drinks, "SKU-GIFT", list_price_fen=19900),  # visible only to the gold tier
        sku(w.sauces, "SKU-LOCAL", list_price_fen=1500),  # hidden from Shanghai
        sku(w.drinks, "SKU-OLD", list_price_fen=1000, status="inactive"),
        PriceList(name="金牌价", kind="tier", tier_id=w.gold.id, valid_from=today - timedelta(days=30)),
        PriceList(name="旧金牌价", kind="tier", tier_id=w.gold.id, valid_from=today - timedelta(days=90), valid_to=today - timedelta(days=31)),
        PriceList(name="鑫达专属价", kind="dealer", dealer_id=w.dealer_a.id, valid_from=today),
        PriceList(name="银牌价", kind="tier", tier_id=w.silver.id, valid_from=today - timedelta(days=1)),
    )
    db.session.add_all([
        *(CreditAccount(dealer_id=dealer.id, credit_limit_fen=credit_limit_fen) for dealer in (w.dealer_a, w.dealer_b)),
        VisibilityRule(sku_id=w.gift.id, scope="tier", target="gold", effect="allow"),
        VisibilityRule(sku_id=w.local.id, scope="region", target="310000", effect="deny"),
        *(Stock(sku_id=s.id, warehouse_id=w.wh_south.id, on_hand=100, reserved=0)
          for s in (w.cola, w.tea, w.soy, w.vinegar, w.gift, w.local, w.retired)),
        Stock(sku_id=w.cola.id, warehouse_id=w.wh_east.id, on_hand=50, reserved=0),
        PriceListItem(price_list_id=gold_list.id, sku_id=w.cola.id, price_fen=4200),
        PriceListItem(price_list_id=gold_list.id, sku_id=w.soy.id, price_fen=2299),
        PriceListItem(price_list_id=expired.id, sku_id=w.tea.id, price_fen=100),
        PriceListItem(price_list_id=dealer_list.id, sku_id=w.cola.id, price_fen=4000),
        PriceListItem(price_list_id=silver_list.id, sku_id=w.cola.id, price_fen=4500),
    ])
    db.session.commit()
    return w
