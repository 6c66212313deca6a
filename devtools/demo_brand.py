"""The demo brand itself, for `devtools.demo`: regions, tiers, reps, dealers (with addresses,
credit accounts and contract terms), the catalogue, warehouses and stock, price lists,
visibility rules, invites and the console accounts. The module-level tables are the data;
the `_seed_*` functions turn them into rows in the seed's one transaction."""
import random
import secrets
from datetime import date, timedelta
from typing import NamedTuple

from sqlalchemy import select

from app.catalog.models import Category, Sku, VisibilityRule
from app.dealers.models import Address, Dealer, InviteCode, Region, Tier
from app.dealers.identity import INVITE_ALPHABET, INVITE_LENGTH
from app.funds.models import CreditAccount
from app.inventory.models import Stock, Warehouse
from app.kernel.clock import utcnow
from app.kernel.money import apply_bp
from app.pricing.models import PriceList, PriceListItem
from app.staff.models import Staff

# --- regions (GB/T 2260): province, then the cities dealers and warehouses use ---------

REGIONS = (
    ("110000", "北京市", (("110100", "市辖区"),)),
    ("310000", "上海市", (("310100", "市辖区"),)),
    ("320000", "江苏省", (("320100", "南京市"), ("320500", "苏州市"))),
    ("330000", "浙江省", (("330100", "杭州市"), ("330200", "宁波市"))),
    ("350000", "福建省", (("350100", "福州市"), ("350200", "厦门市"))),
    ("370000", "山东省", (("370100", "济南市"), ("370200", "青岛市"))),
    ("410000", "河南省", (("410100", "郑州市"),)),
    ("420000", "湖北省", (("420100", "武汉市"),)),
    ("430000", "湖南省", (("430100", "长沙市"),)),
    ("440000", "广东省", (("440100", "广州市"), ("440300", "深圳市"), ("440600", "佛山市"))),
    ("510000", "四川省", (("510100", "成都市"),)),
)

# --- tiers, credit limits and tier discounts ---------------------------------------------

TIERS = (  # code, name, rank
    ("gold", "金牌", 1),
    ("silver", "银牌", 2),
    ("standard", "普通", 3),
)
CREDIT_LIMIT_FEN = {"gold": 500_000_00, "silver": 200_000_00, "standard": 50_000_00}
TIER_PRICE_BP = {"gold": 8500, "silver": 9200}  # 普通 pays list price
EXPIRED_TIER_PRICE = ("gold", 8800)  # last year's 金牌 list, to show validity dates matter

# --- sales reps ----------------------------------------------------------------------------

REPS = (  # username, name, phone, wecom_userid
    ("zhangwei", "张伟", "13926018832", "ZhangWei"),
    ("lina", "李娜", "13816257749", "LiNa"),
    ("wanglei", "王磊", "13601093368", "WangLei"),
    ("liuyang", "刘洋", "13880261957", "LiuYang"),
)

# --- dealers ---------------------------------------------------------------------------------


class DealerSpec(NamedTuple):
    code: str
    name: str
    tier: str
    city: str
    rep: str
    contact: str
    phone: str
    address: str
    status: str = "active"


DEALERS = (
    DealerSpec("D001", "广州市天河区鑫达商贸有限公司", "gold", "440100", "zhangwei", "陈志强", "13802461187",
               "天河区黄埔大道西638号富力科讯大厦1206室"),
    DealerSpec("D002", "上海沪联食品贸易有限公司", "gold", "310100", "lina", "周建华", "13917735520",
               "浦东新区张杨路1588号8楼"),
    DealerSpec("D003", "深圳市南山区鹏程酒店用品有限公司", "silver", "440300", "zhangwei", "黄晓敏", "13728859031",
               "南山区高新南七道12号2栋301"),
    DealerSpec("D004", "杭州禾丰副食品有限公司", "gold", "330100", "lina", "吴国平", "13588162347",
               "西湖区文三路478号华星时代广场B座603"),
    DealerSpec("D005", "北京京味源商贸有限公司", "silver", "110100", "wanglei", "赵立新", "13601128846",
               "朝阳区东三环北路27号1105室"),
    DealerSpec("D006", "佛山市南海区顺联粮油贸易有限公司", "standard", "440600", "zhangwei", "梁永康", "13690351742",
               "南海区桂城街道南海大道北76号"),
    DealerSpec("D007", "南京金陵百味食品有限公司", "silver", "320100", "lina", "孙海燕", "13851907264",
               "江宁区双龙大道1118号"),
    DealerSpec("D008", "苏州鲜达商贸有限公司", "standard", "320500", "lina", "钱文斌", "13962135508",
               "吴中区宝带东路399号"),
    DealerSpec("D009", "成都蜀香源食品有限公司", "gold", "510100", "liuyang", "杨春林", "13880547712",
               "武侯区二环路南四段51号"),
    DealerSpec("D010", "武汉江城汇丰商贸有限公司", "silver", "420100", "liuyang", "胡德明", "13871264490",
               "江汉区新华路218号"),
    DealerSpec("D011", "济南泉城润丰食品有限公司", "standard", "370100", "wanglei", "王建军", "13953118825",
               "历下区经十路9777号"),
    DealerSpec("D012", "青岛海润达商贸有限公司", "silver", "370200", "wanglei", "刘晓东", "13805329961",
               "李沧区九水东路320号"),
    DealerSpec("D013", "郑州中原百汇商贸有限公司", "standard", "410100", "wanglei", "张红梅", "13838270135",
               "金水区花园路139号"),
    DealerSpec("D014", "宁波甬江食品贸易有限公司", "standard", "330200", "lina", "徐海波", "13906613274",
               "鄞州区天童南路588号"),
    DealerSpec("D015", "长沙湘味坊食品有限公司", "silver", "430100", "liuyang", "谭志勇", "13907316628",
               "岳麓区麓谷大道627号"),
    DealerSpec("D016", "厦门鹭岛鑫源商贸有限公司", "standard", "350200", "zhangwei", "林美玲", "13959278803",
               "思明区莲前西路2号"),
    DealerSpec("D017", "深圳市万家福食品贸易有限公司", "standard", "440300", "zhangwei", "郑伟鹏", "13823650497",
               "宝安区新安街道宝民一路211号"),
    DealerSpec("D018", "北京顺和丰商贸有限公司", "standard", "110100", "wanglei", "马玉兰", "13910825543",
               "丰台区南四环西路188号十二区7号楼"),
    DealerSpec("D019", "成都天府优选商贸有限公司", "standard", "510100", "liuyang", "罗小军", "13981952206",
               "成华区建设路55号"),
    DealerSpec("D020", "福州闽都食品有限公司", "standard", "350100", "zhangwei", "陈丽华", "13705019978",
               "鼓楼区五四路158号", status="suspended"),
)

# Contract terms (合同): 账期 by tier (普通 pays before shipment), each dealer's annual purchase
# target in yuan, and the month a contract year starts — the calendar year unless listed.
PAYMENT_TERMS_DAYS = {"gold": 60, "silver": 30, "standard": 0}
ANNUAL_TARGET_YUAN = {
    "D001": 6_000_000, "D002": 5_500_000, "D003": 2_400_000, "D004": 4_800_000, "D005": 2_600_000,
    "D006": 800_000, "D007": 2_200_000, "D008": 900_000, "D009": 5_000_000, "D010": 2_000_000,
    "D011": 750_000, "D012": 2_300_000, "D013": 700_000, "D014": 850_000, "D015": 2_100_000,
    "D016": 600_000, "D017": 650_000, "D018": 500_000, "D019": 550_000, "D020": 600_000,
}
CONTRACT_START_MONTH = {"D008": 4, "D014": 7, "D017": 4, "D019": 10}


def contract_period(code, today):
    """(start, end) of the dealer's current contract year."""
    month = CONTRACT_START_MONTH.get(code, 1)
    start = date(today.year if month <= today.month else today.year - 1, month, 1)
    return start, date(start.year + 1, month, 1) - timedelta(days=1)


# --- catalogue -------------------------------------------------------------------------------


class SkuSpec(NamedTuple):
    name: str
    spec: str
    unit: str
    pack_size: int
    list_price_fen: int
    moq: int = 1
    step: int = 1
    low_stock_qty: int = 20
    status: str = "active"


# (category name, SKU code prefix, SKUs); codes are DH-<prefix>-001, -002, ... in order.
CATALOGUE = (
    ("酱油", "JY", (
        SkuSpec("特级生抽王", "500ml×12瓶", "箱", 12, 4800),
        SkuSpec("金标生抽", "1.9L×6桶", "箱", 6, 7200),
        SkuSpec("头道鲜酱油", "1L×12瓶", "箱", 12, 9600),
        SkuSpec("老抽王", "500ml×12瓶", "箱", 12, 4200),
        SkuSpec("草菇老抽", "1.9L×6桶", "箱", 6, 6900),
        SkuSpec("零添加原酿酱油", "500ml×12瓶", "箱", 12, 8400),
        SkuSpec("蒸鱼豉油", "450ml×12瓶", "箱", 12, 5400),
        SkuSpec("儿童有机酱油", "160ml×24瓶", "箱", 24, 11520),
        SkuSpec("餐饮装鲜味酱油", "20L×1桶", "桶", 1, 13800, low_stock_qty=10),
    )),
    ("醋", "CU", (
        SkuSpec("山西老陈醋", "500ml×12瓶", "箱", 12, 3600),
        SkuSpec("五年陈酿老陈醋", "420ml×12瓶", "箱", 12, 9800),
        SkuSpec("镇江香醋", "500ml×12瓶", "箱", 12, 3900),
        SkuSpec("酿造米醋", "500ml×12瓶", "箱", 12, 2880),
        SkuSpec("白米醋", "1.75L×6桶", "箱", 6, 4500),
        SkuSpec("饺子醋", "420ml×12瓶", "箱", 12, 3240),
        SkuSpec("餐饮装陈醋", "20L×1桶", "桶", 1, 9800, low_stock_qty=10),
        SkuSpec("零添加香醋", "500ml×12瓶", "箱", 12, 5400),
    )),
    ("料酒调味", "TW", (
        SkuSpec("特级料酒", "500ml×12瓶", "箱", 12, 3000),
        SkuSpec("黄酒料酒", "1.75L×6桶", "箱", 6, 4200),
        SkuSpec("蚝油", "700g×12瓶", "箱", 12, 6000),
        SkuSpec("餐饮装鲜蚝油", "2.27kg×6桶", "箱", 6, 10800),
        SkuSpec("鸡精", "1kg×10袋", "件", 10, 12000),
        SkuSpec("鲜味鸡粉", "200g×40袋", "件", 40, 8800),
        SkuSpec("香辣豆瓣酱", "800g×12瓶", "箱", 12, 7200),
        SkuSpec("广式叉烧酱", "240g×24瓶", "箱", 24, 7920),
        SkuSpec("牛油火锅底料", "500g×30袋", "件", 30, 10500),
    )),
    ("饮料", "YL", (
        SkuSpec("凉茶植物饮料", "310ml×24罐", "箱", 24, 6240, moq=5, step=5),
        SkuSpec("无糖乌龙茶", "500ml×15瓶", "箱", 15, 5250, moq=5, step=5),
        SkuSpec("柠檬茶", "500ml×15瓶", "箱", 15, 4500, moq=5, step=5),
        SkuSpec("生榨椰汁", "245ml×24罐", "箱", 24, 7680),
        SkuSpec("苹果醋饮料", "350ml×24瓶", "箱", 24, 8640),
        SkuSpec("饮用天然水", "550ml×24瓶", "箱", 24, 2400, moq=10, step=2),
        SkuSpec("苏打气泡水", "480ml×15瓶", "箱", 15, 5400),
        SkuSpec("酸梅汤", "1L×12瓶", "箱", 12, 6600),
        SkuSpec("酒店定制饮用水", "380ml×24瓶", "箱", 24, 3600, moq=10, step=2),
    )),
    ("休闲零食", "LS", (
        SkuSpec("香辣牛肉干", "100g×30袋", "件", 30, 9000),
        SkuSpec("手撕素肉", "200g×20袋", "件", 20, 5600, moq=10, step=2),
        SkuSpec("海苔脆片", "40g×40袋", "件", 40, 6400, moq=10, step=2),
        SkuSpec("卤味鹌鹑蛋", "20g×100袋", "件", 100, 5000, moq=10, step=2),
        SkuSpec("麻辣花生", "250g×24袋", "件", 24, 4320),
        SkuSpec("原味瓜子", "500g×20袋", "件", 20, 5000),
        SkuSpec("椰子脆片", "60g×40袋", "件", 40, 7200),
        SkuSpec("蛋黄酥", "6枚×12盒", "件", 12, 5760),
        SkuSpec("老式麻花", "300g×20袋", "件", 20, 4400, status="inactive"),
    )),
    ("粮油", "LY", (
        SkuSpec("压榨一级花生油", "5L×4桶", "箱", 4, 52000, low_stock_qty=10),
        SkuSpec("非转基因大豆油", "5L×4桶", "箱", 4, 28000, low_stock_qty=10),
        SkuSpec("玉米胚芽油", "5L×4桶", "箱", 4, 30000, low_stock_qty=10),
        SkuSpec("小磨芝麻香油", "400ml×12瓶", "箱", 12, 14400),
        SkuSpec("东北长粒香大米", "10kg×1袋", "袋", 1, 6900, moq=5, step=5),
        SkuSpec("五常稻花香大米", "5kg×4袋", "件", 4, 23600, low_stock_qty=10),
        SkuSpec("高筋小麦粉", "5kg×4袋", "件", 4, 9600),
        SkuSpec("鸡蛋挂面", "1kg×10袋", "件", 10, 6500),
        SkuSpec("食用植物调和油", "5L×4桶", "箱", 4, 19600, status="inactive"),
    )),
    ("节日礼盒", "LH", (
        SkuSpec("金典调味品礼盒", "6瓶装×4盒", "箱", 4, 47600, low_stock_qty=10),
        SkuSpec("粮油臻选礼盒", "花生油5L+大米5kg×2盒", "箱", 2, 39600, low_stock_qty=10),
        SkuSpec("新春年货零食礼盒", "1.5kg×4盒", "箱", 4, 35200, low_stock_qty=10),
        SkuSpec("端午粽子礼盒", "8只装×6盒", "箱", 6, 52800, low_stock_qty=10),
        SkuSpec("中秋月饼礼盒", "6枚装×6盒", "箱", 6, 71400, low_stock_qty=10),
        SkuSpec("匠心老陈醋礼盒", "2瓶装×6盒", "箱", 6, 35400, low_stock_qty=10),
        SkuSpec("企业团购定制礼盒", "8件套×4盒", "箱", 4, 79600, low_stock_qty=10),
    )),
)
SKU_CODE_FORMAT = "DH-{prefix}-{n:03d}"

# --- warehouses and stock -----------------------------------------------------------------------

WAREHOUSES = (  # code, name, region, priority
    ("WH-GZ", "华南仓", "440100", 1),
    ("WH-SH", "华东仓", "310100", 2),
)
# Units on hand per warehouse (华南仓, 华东仓) for the SKUs that are not plentiful.
SCARCE_STOCK = {
    "DH-JY-006": (5, 3),   # low
    "DH-LS-007": (4, 4),   # low
    "DH-LH-005": (6, 2),   # low
    "DH-CU-008": (0, 0),   # out of stock
    "DH-YL-008": (0, 0),   # out of stock
}
PLENTIFUL_STOCK_RANGE = (120, 900, 10)  # randrange(start, stop, step), seeded below
STOCK_SEED = 2260

# --- prices and visibility --------------------------------------------------------------------------

DEALER_PRICE_LISTS = (  # dealer, list name, {SKU code: price in fen}
    ("D001", "鑫达专属价", {"DH-JY-001": 3980, "DH-JY-004": 3400, "DH-TW-003": 4880, "DH-LY-001": 42800}),
    ("D002", "沪联专属价", {"DH-CU-001": 2880, "DH-CU-003": 3100, "DH-YL-001": 5100}),
)
GOLD_ONLY_CATEGORY = "节日礼盒"
VISIBILITY_RULES = (  # SKU code, scope, target, effect
    ("DH-TW-008", "region", "310000", "deny"),   # 广式叉烧酱: not sold in 上海
    ("DH-YL-009", "dealer", "D003", "allow"),    # 酒店定制饮用水: only for D003
)

# --- invites ---------------------------------------------------------------------------------------

INVITES = (  # dealer, role
    ("D001", "owner"), ("D001", "buyer"), ("D001", "viewer"),
    ("D002", "owner"), ("D003", "owner"), ("D004", "owner"), ("D005", "owner"),
)


def _add_all(session, rows):
    session.add_all(rows)
    session.flush()
    return rows


def _seed_regions(session):
    # Provinces are flushed first: cities reference them through parent_code.
    provinces = _add_all(session, [Region(code=code, name=name) for code, name, _ in REGIONS])
    cities = _add_all(session, [
        Region(code=city_code, name=city_name, parent_code=code)
        for code, _, cities in REGIONS
        for city_code, city_name in cities
    ])
    return {"provinces": provinces, "cities": cities}


def _seed_tiers(session):
    rows = _add_all(session, [Tier(code=code, name=name, rank=rank) for code, name, rank in TIERS])
    return {tier.code: tier for tier in rows}


def _seed_reps(session):
    rows = _add_all(session, [
        Staff(username=username, name=name, role="sales", phone=phone, wecom_userid=wecom_userid, password_hash=None)
        for username, name, phone, wecom_userid in REPS
    ])
    return {rep.username: rep for rep in rows}


CONSOLE_STAFF = (  # username, name, role (the first rep signs in as the sales role)
    ("admin", "系统管理员", "admin"),
    ("caiwu", "财务 周敏", "finance"),
    ("cangku", "仓库 郭强", "warehouse"),
    ("shichang", "市场 何静", "marketing"),
)


def _seed_console_staff(session, reps):
    """One console account per role, each with a fresh random password: [(username, role, password)]."""
    from app.staff.service import hash_password

    accounts = []
    rows = [Staff(username=username, name=name, role=role) for username, name, role in CONSOLE_STAFF]
    for staff in [*rows, reps[REPS[0][0]]]:
        password = secrets.token_urlsafe(9)
        staff.password_hash = hash_password(password)
        accounts.append((staff.username, staff.role, password))
    _add_all(session, rows)
    return accounts


def _seed_dealers(session, tiers, reps, today):
    dealers = _add_all(session, [
        Dealer(
            code=spec.code,
            name=spec.name,
            tier_id=tiers[spec.tier].id,
            region_code=spec.city,
            rep_id=reps[spec.rep].id,
            status=spec.status,
            contact_name=spec.contact,
            contact_phone=spec.phone,
            payment_terms_days=PAYMENT_TERMS_DAYS[spec.tier],
            contract_start=contract_period(spec.code, today)[0],
            contract_end=contract_period(spec.code, today)[1],
            annual_target_fen=ANNUAL_TARGET_YUAN[spec.code] * 100,
        )
        for spec in DEALERS
    ])
    for spec, dealer in zip(DEALERS, dealers):
        session.add(Address(
            dealer_id=dealer.id,
            contact_name=spec.contact,
            phone=spec.phone,
            region_code=spec.city,
            detail=spec.address,
            is_default=True,
        ))
        session.add(CreditAccount(
            dealer_id=dealer.id,
            credit_limit_fen=CREDIT_LIMIT_FEN[spec.tier],
            receivable_fen=0,
            held_fen=0,
        ))
    session.flush()
    return {dealer.code: dealer for dealer in dealers}


SUSPENSION_REASON = "货款逾期 60 天未结清，暂停发货"


def _log_suspensions(session, dealers):
    """The audit entry behind each suspended demo dealer, as if finance had suspended it."""
    from app.audit import service as audit

    finance = session.execute(select(Staff).where(Staff.username == "caiwu")).scalar_one()
    for spec in DEALERS:
        if spec.status == "suspended":
            audit.record(
                session, actor=finance, action="dealer.suspend", entity_type="dealer", entity_id=spec.code,
                label=spec.name, before={"status": "active"}, after={"status": "suspended"}, reason=SUSPENSION_REASON,
            )


def _seed_catalogue(session):
    categories = _add_all(session, [
        Category(name=name, sort=sort) for sort, (name, _, _) in enumerate(CATALOGUE, start=1)
    ])
    skus = _add_all(session, [
        Sku(code=SKU_CODE_FORMAT.format(prefix=prefix, n=n), category_id=category.id, **spec._asdict())
        for category, (_, prefix, specs) in zip(categories, CATALOGUE)
        for n, spec in enumerate(specs, start=1)
    ])
    return {category.name: category for category in categories}, {sku.code: sku for sku in skus}


def _seed_stock(session, skus):
    warehouses = _add_all(session, [
        Warehouse(code=code, name=name, region_code=region, priority=priority)
        for code, name, region, priority in WAREHOUSES
    ])
    rng = random.Random(STOCK_SEED)
    for sku in skus.values():
        on_hand = SCARCE_STOCK.get(sku.code) or [rng.randrange(*PLENTIFUL_STOCK_RANGE) for _ in warehouses]
        for warehouse, qty in zip(warehouses, on_hand):
            session.add(Stock(sku_id=sku.id, warehouse_id=warehouse.id, on_hand=qty, reserved=0))
    session.flush()
    return warehouses


def _add_price_list(session, prices, **fields):
    """A price list with `prices` ({sku_id: price_fen}) as its items."""
    price_list = _add_all(session, [PriceList(**fields)])[0]
    _add_all(session, [
        PriceListItem(price_list_id=price_list.id, sku_id=sku_id, price_fen=price)
        for sku_id, price in prices.items()
    ])
    return price_list


def _discounted(skus, rate_bp):
    return {sku.id: apply_bp(sku.list_price_fen, rate_bp) for sku in skus.values() if sku.status == "active"}


def _seed_price_lists(session, today, tiers, dealers, skus):
    this_year, last_year = today.year, today.year - 1
    lists = [
        _add_price_list(
            session, _discounted(skus, rate_bp),
            name=f"{this_year}年{tiers[tier].name}价", kind="tier", tier_id=tiers[tier].id,
            valid_from=date(this_year, 1, 1),
        )
        for tier, rate_bp in TIER_PRICE_BP.items()
    ]
    lists += [
        _add_price_list(
            session, {skus[code].id: price for code, price in prices.items()},
            name=name, kind="dealer", dealer_id=dealers[dealer_code].id, valid_from=date(this_year, 1, 1),
        )
        for dealer_code, name, prices in DEALER_PRICE_LISTS
    ]
    expired_tier, expired_bp = EXPIRED_TIER_PRICE
    lists.append(_add_price_list(
        session, _discounted(skus, expired_bp),
        name=f"{last_year}年{tiers[expired_tier].name}价", kind="tier", tier_id=tiers[expired_tier].id,
        valid_from=date(last_year, 1, 1), valid_to=date(last_year, 12, 31),
    ))
    return lists


def _seed_visibility(session, categories, skus):
    gold_only = categories[GOLD_ONLY_CATEGORY].id
    specs = [(sku.code, "tier", "gold", "allow") for sku in skus.values() if sku.category_id == gold_only]
    specs += VISIBILITY_RULES
    return _add_all(session, [
        VisibilityRule(sku_id=skus[code].id, scope=scope, target=target, effect=effect)
        for code, scope, target, effect in specs
    ])


def _new_invite_code(taken):
    while True:
        code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_LENGTH))
        if code not in taken:
            taken.add(code)
            return code


def _seed_invites(session, dealers, ttl_days, now=None):
    """Invites valid for `ttl_days` from `now` (the present: the brand's rows may be dated in the past)."""
    expires_at = (now or utcnow()) + timedelta(days=ttl_days)
    taken = set()
    return _add_all(session, [
        InviteCode(code=_new_invite_code(taken), dealer_id=dealers[code].id, role=role, expires_at=expires_at)
        for code, role in INVITES
    ])
