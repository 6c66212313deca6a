"""Demo data: a believable food & beverage brand for `flask --app wsgi demo seed`.

Everything is written in one `write_transaction()`, so a failure leaves nothing behind.
Data lives in the module-level tables below; the functions only turn them into rows.
"""
import contextlib
import random
import secrets
import unicodedata
from datetime import date, timedelta
from typing import NamedTuple

from flask import current_app
from sqlalchemy import select

from app.catalog.models import Category, Sku, VisibilityRule
from app.database import write_transaction
from app.dealers.models import ROLE_LABELS, Address, Dealer, InviteCode, Region, Tier
from app.dealers.service import INVITE_ALPHABET, INVITE_LENGTH
from app.extensions import db
from app.funds.models import CreditAccount
from app.inventory.models import Stock, Warehouse
from app.kernel.clock import business_today, utcnow
from app.kernel.errors import DomainError
from app.money import apply_bp
from app.notify import settings
from app.orders import approval_rules
from app.orders.approval_rules import AutoApproval
from app.pricing.models import PriceList, PriceListItem
from app.staff.models import Staff
from app.staff.service import ROLE_LABELS as STAFF_ROLE_LABELS

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
LOGIN_HINT = "在本地微信模拟服务页面获取登录 code，然后 POST /api/mp/v1/auth/login"


# --- seeding ----------------------------------------------------------------------------------------

def seed_demo(*, reset=False) -> dict:
    """Write the demo brand in one transaction; returns `{"lines": [...]}` for the CLI."""
    brand = current_app.config.get("BRAND_NAME") or "鼎禾食品"
    ttl_days = current_app.config["INVITE_TTL_DAYS"]
    today = business_today()
    with write_transaction() as session:
        if reset:
            _delete_business_rows(session)
        elif session.execute(select(Dealer.id).limit(1)).first() is not None:
            raise DomainError("demo_exists", "数据库中已有数据；如需重建演示数据请加 --reset", 409)

        seeded = {"regions": _seed_regions(session), "tiers": _seed_tiers(session), "reps": _seed_reps(session)}
        seeded["dealers"] = _seed_dealers(session, seeded["tiers"], seeded["reps"], today)
        seeded["categories"], seeded["skus"] = _seed_catalogue(session)
        seeded["warehouses"] = _seed_stock(session, seeded["skus"])
        seeded["price_lists"] = _seed_price_lists(session, today, seeded["tiers"], seeded["dealers"], seeded["skus"])
        seeded["rules"] = _seed_visibility(session, seeded["categories"], seeded["skus"])
        seeded["invites"] = _seed_invites(session, seeded["dealers"], ttl_days)
        seeded["console"] = _seed_console_staff(session, seeded["reps"])
        _log_suspensions(session, seeded["dealers"])
        # Off, so every demo order shows the rep's approval step.
        settings.write(session, approval_rules.KEY, AutoApproval(enabled=False).as_value())
        lines = _summary_lines(brand, seeded)
    lines += _seed_orders()
    lines += _seed_rebate_rules(today)
    # No statements (对账单) here: every demo movement happens today, so last month has no
    # ledger movements to show; `flask --app wsgi statements issue` issues them once a month is over.
    lines += _seed_customer_groups()
    lines += _seed_policies()
    lines += _seed_materials()
    return {"lines": lines}


# --- rebates: two rules, configured as finance would in the console ---------------------------------

def _seed_rebate_rules(today):
    """A quarterly rule on shipped goods for every dealer (with a growth rebate) and a monthly rule
    on paid soy sauce and vinegar for gold dealers, through the rebate service (validated, audited).
    The mini-program's GET /rebates shows each dealer's progress against them."""
    from app.rebates.service import create_rule, describe_rule

    finance = db.session.execute(select(Staff).where(Staff.role == "finance")).scalars().first()
    categories = {c.name: c.id for c in db.session.execute(select(Category)).scalars()}
    gold = db.session.execute(select(Tier).where(Tier.code == "gold")).scalar_one()
    start = today.replace(month=1, day=1)
    rules = [
        create_rule(staff=finance, name="季度发货返利", period_kind="quarter", basis="shipped", valid_from=start,
                    tiers=[(100_000_00, 200), (300_000_00, 300)], growth=(2000, 100, 50_000_00)),
        create_rule(staff=finance, name="金牌经销商调味品月度回款返利", period_kind="month", basis="paid",
                    scope="categories", category_ids=[categories["酱油"], categories["醋"]], applies_to="tiers",
                    tier_ids=[gold.id], valid_from=start, tiers=[(20_000_00, 100), (50_000_00, 150)]),
    ]
    return ["", "返利规则（管理后台“返利”页面可修改；期间结束后每天 08:00 自动结算上一期）：",
            *(f"  {rule.name}：{describe_rule(rule)}" for rule in rules)]


# --- WeCom customer groups and a campaign ------------------------------------------------------

# The reps' customer groups as the demo's WeCom stand-in holds them (`demo serve` creates them
# there with these chat ids): chat_id, name, owner (WeCom userid), dealer it is mapped to (None:
# left for staff to map; the console suggests one from the name), external members.
DEMO_CUSTOMER_GROUPS = (
    ("wrDemoD001Group01", "鑫达商贸 · 鼎禾订货客户群", "ZhangWei", "D001", 38),
    ("wrDemoD001Group02", "天河鑫达门店老板群", "ZhangWei", "D001", 12),
    ("wrDemoD003Group01", "鹏程酒店用品采购群", "ZhangWei", None, 21),
    ("wrDemoD002Group01", "沪联食品客户福利群", "LiNa", "D002", 56),
    ("wrDemoD004Group01", "禾丰副食品会员群", "LiNa", "D004", 44),
    ("wrDemoLiNaChat01", "周末羽毛球群", "LiNa", None, 9),
)


def _seed_customer_groups():
    """The groups as a sync from WeCom stores them, mapped to dealers through the campaign
    service (audited), and one draft campaign for the gold dealers. Returns summary lines."""
    from app.audience.service import Audience
    from app.campaigns import service as campaigns
    from app.campaigns.models import CustomerGroup

    now = utcnow()
    with write_transaction() as session:
        session.add_all([
            CustomerGroup(chat_id=chat_id, name=name, owner_userid=owner, member_count=members + 1,
                          external_count=members, wecom_created_at=now - timedelta(days=90), synced_at=now,
                          created_at=now, updated_at=now)
            for chat_id, name, owner, _, members in DEMO_CUSTOMER_GROUPS
        ])
    staff = {s.username: s for s in db.session.execute(select(Staff)).scalars()}
    groups = {g.chat_id: g for g in db.session.execute(select(CustomerGroup)).scalars()}
    for chat_id, _, _, dealer_code, _ in DEMO_CUSTOMER_GROUPS:
        if dealer_code:
            campaigns.map_group(staff=staff["shichang"], group_id=groups[chat_id].id, dealer_code=dealer_code)
    campaign = campaigns.create_campaign(
        staff=staff["shichang"], title="双十二金牌经销商进货节",
        text="【鼎禾食品】双十二进货节：12 月 1 日至 12 日，金牌经销商订货满 5000 元返 3%，"
             "爆款酱油整箱立减 20 元。打开小程序「鼎禾订货」即可下单。",
        audience=Audience(tiers=("gold",)),
        attachments=[{"kind": "link", "title": "双十二进货节活动说明", "url": "https://example.com/dinghe/1212",
                      "description": "活动时间、返利规则与爆款清单"}],
    )
    mapped = sum(1 for g in DEMO_CUSTOMER_GROUPS if g[3])
    return ["", f"客户群 {len(DEMO_CUSTOMER_GROUPS)} 个（已对应经销商 {mapped} 个），客户群群发草稿「{campaign.title}」：",
            "  在管理后台「客户群群发」里查看发送计划并立即发送；在模拟服务页面以业务员身份确认发送。"]


# --- marketing materials, through the material service (files stored like any upload) ----------

DEMO_MATERIALS = (  # kind, title, tags, audience, picture colours, extra fields
    ("poster", "春节订货会海报", ("春节", "订货会"), {"all": True}, ((196, 30, 58), (250, 210, 80)), {}),
    ("image", "酱油新品主图", ("新品", "酱油"), {"tiers": ["gold"]}, ((120, 60, 20), (240, 230, 210)), {}),
    ("article", "春季促销政策解读", ("促销",), {"regions": ["440000"]}, ((40, 110, 70), (230, 245, 235)), {
        "summary": "广东区域春季满减与陈列奖励说明",
        "body_html": "<h2>活动时间</h2><p>3 月 1 日至 4 月 30 日。</p><h2>满减</h2>"
                     "<ul><li>单笔满 5,000 元减 200 元</li><li>单笔满 10,000 元减 500 元</li></ul>"
                     "<p>陈列照片请在小程序上传，业务员审核后计入奖励。</p>",
    }),
    ("miniprogram", "新品专区", ("新品",), {"all": True}, ((30, 80, 160), (220, 235, 250)), {
        "mp_path": "pages/product/list?tag=new", "summary": "转发到客户群，顾客点开即看新品",
    }),
    ("link", "品牌故事：三十年酿造", ("品牌",), {"tiers": ["silver", "standard"]}, ((90, 70, 50), (245, 240, 230)), {
        "link_url": "https://www.example.com/brand-story",
    }),
)


def _demo_picture(size, colours):
    """A small generated picture (no fonts needed): a background, a band and a circle."""
    import io

    from PIL import Image, ImageDraw

    back, front = colours
    image = Image.new("RGB", size, back)
    draw = ImageDraw.Draw(image)
    width, height = size
    draw.rectangle((0, height * 2 // 3, width, height), fill=front)
    draw.ellipse((width // 3, height // 6, width * 2 // 3, height // 6 + width // 3), fill=front)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _seed_materials():
    """A few published materials for different audiences, made by the marketing account."""
    from app.materials import service as materials

    marketer = db.session.execute(select(Staff).where(Staff.role == "marketing")).scalars().first()
    made = []
    for kind, title, tags, audience, colours, extra in DEMO_MATERIALS:
        files = {}
        if kind in ("poster", "image"):
            size = (750, 1334) if kind == "poster" else (800, 800)
            files["file"] = materials.FileIn(_demo_picture(size, colours), f"{title}.jpg")
        else:
            files["cover"] = materials.FileIn(_demo_picture((500, 400), colours), "cover.jpg")
        material = materials.create_material(staff=marketer, kind=kind, title=title, tags=list(tags),
                                             audience=audience, **files, **extra)
        materials.publish_material(staff=marketer, material_id=material.id)
        made.append((material.kind_label, title, materials.audience_service.describe(
            materials.audience_service.load("material", material.id))))
    return ["", "营销素材（已发布，经销商在小程序“素材”里按受众看到）：", *_table(("类型", "标题", "受众"), made)]


# --- orders: a few in every state, placed and moved through the order services ---------------

DEMO_BUYER_OPENID = "demo-seed-buyer-{code}"
DEMO_ORDERS = (  # dealer, [(SKU code, qty)], how far it goes
    ("D001", (("DH-JY-001", 20), ("DH-TW-003", 10)), "completed"),
    ("D002", (("DH-CU-001", 30), ("DH-YL-001", 10)), "shipped"),
    ("D004", (("DH-JY-002", 12), ("DH-LY-002", 8), ("DH-CU-003", 24)), "partially_shipped"),
    ("D009", (("DH-TW-005", 6), ("DH-LS-001", 10)), "approved"),
    ("D003", (("DH-JY-004", 15),), "pending_approval"),
    ("D001", (("DH-LY-001", 4), ("DH-YL-004", 20)), "pending_approval"),
)
DEMO_CARRIERS = (("顺丰速运", "SF14{:08d}"), ("京东物流", "JDVA0{:08d}"))


def _seed_orders():
    """Place DEMO_ORDERS as their dealers' buyers and take each as far as its state, through
    the same services as the mini-program, the console and the warehouse (each its own
    transaction, after the brand's). Returns summary lines.

    The notifications these steps write describe a past that never happened, so they are
    dropped instead of delivered (`demo seed` runs before the WeChat stand-in is up).
    """
    from app.dealers.service import user_for_openid
    from app.orders import service as orders
    from app.orders.shipments import ship_order

    with _outbox_dropped():
        staff = {s.username: s for s in db.session.execute(select(Staff)).scalars()}
        clerk = staff[CONSOLE_STAFF[2][0]]
        dealers = {d.code: d for d in db.session.execute(select(Dealer)).scalars()}
        skus = {s.code: s for s in db.session.execute(select(Sku)).scalars()}
        done = []
        for n, (code, lines, target) in enumerate(DEMO_ORDERS, start=1):
            user = _demo_buyer(dealers[code])
            order, _ = orders.submit_order(
                user=user_for_openid(user.openid), idempotency_key=f"demo-seed-order-{n}",
                lines=[{"sku_id": skus[sku].id, "qty": qty} for sku, qty in lines],
            )
            if target != "pending_approval":
                orders.approve_order(staff=dealers[code].rep, order_no=order.order_no)
            if target in ("partially_shipped", "shipped", "completed"):
                placed = orders.get_order(dealer_id=dealers[code].id, order_no=order.order_no)
                first = {line.id: (line.qty + 1) // 2 for line in placed.lines}
                carrier, number = DEMO_CARRIERS[0]
                ship_order(staff=clerk, order_no=order.order_no, quantities=first, carrier=carrier,
                           tracking_no=number.format(n * 10 + 1))
                if target != "partially_shipped":
                    rest = {line.id: line.qty - first[line.id] for line in placed.lines}
                    carrier, number = DEMO_CARRIERS[1]
                    ship_order(staff=clerk, order_no=order.order_no, quantities=rest, carrier=carrier,
                               tracking_no=number.format(n * 10 + 2))
            if target == "completed":
                orders.confirm_receipt(user=user_for_openid(user.openid), order_no=order.order_no)
            done.append((order.order_no, code, target))
    from app.orders.models import STATUS_LABELS

    return ["", "演示订单（已走完下单、审批、发货、确认收货流程）：",
            *_table(("订单号", "经销商", "状态"), [(no, code, STATUS_LABELS[st]) for no, code, st in done])]


@contextlib.contextmanager
def _outbox_dropped():
    """Drop (instead of delivering) the notifications the block's transactions write: they
    describe a past that never happened, and `demo seed` runs before the WeChat stand-in is up."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from app.notify.models import Outbox

    written = []

    def hold_back(session):
        written.extend(oid for _, oid in session.info.pop("outbox_ids", []))

    event.listen(Session, "before_commit", hold_back)
    try:
        yield
        with write_transaction() as session:
            session.execute(Outbox.__table__.delete().where(Outbox.__table__.c.id.in_(written)))
    finally:
        event.remove(Session, "before_commit", hold_back)


# --- policies: published through the policy service by the marketing account --------------

DEMO_POLICIES = (  # title, category, audience, ack required, body
    ("2026 年度经销商渠道政策", "channel", {"all": True}, True,
     "<h3>一、适用范围</h3><p>本政策适用于全部签约经销商。</p>"
     "<h3>二、年度返利</h3><p>年度进货额达到年度目标的，按进货额的 <strong>2%</strong> 返利，次年一季度结算。</p>"
     "<h3>三、区域保护</h3><p>严禁跨区域窜货，一经查实取消当年返利。</p>"),
    ("金牌经销商 12 月价格政策", "price", {"tiers": ["gold"]}, True,
     "<p>12 月 1 日起，金牌经销商酱油系列供货价下调 3%，以订货小程序显示价格为准。</p>"
     "<ul><li>单笔满 5 万元另享 1% 现金折扣</li><li>本政策不与其他价格政策叠加</li></ul>"),
    ("广东地区年货节促销通知", "promotion", {"regions": ["440000"]}, False,
     "<p>广东省内经销商 1 月 5 日至 1 月 25 日订购节日礼盒，每 10 箱赠 1 箱，赠品随单发出。</p>"),
)


def _seed_policies():
    """DEMO_POLICIES published by the marketing account; the channel policy then revised
    once (so it shows a second version and 「本次更新」); one more scheduled for later."""
    from app.audience import service as audiences
    from app.policies import service as policies

    marketing = db.session.execute(select(Staff).where(Staff.role == "marketing")).scalars().first()
    rows = []
    with _outbox_dropped():
        for title, category, audience, ack, body in DEMO_POLICIES:
            fields = policies.parse_fields({"title": title, "category": category, "body": body,
                                            "ack_required": ack, "effective_from": business_today().isoformat()})
            policy = policies.create_policy(staff=marketing, fields=fields, audience=audiences.parse(audience))
            policies.publish_policy(staff=marketing, policy_id=policy.id)
            rows.append((policy, audiences.parse(audience), fields))
        first, audience, fields = rows[0]
        revised = {**fields, "body_html": fields["body_html"].replace("2%", "2.5%")}
        policies.update_policy(staff=marketing, policy_id=first.id, fields=revised, audience=audience)
        later = policies.create_policy(staff=marketing, fields=policies.parse_fields({
            "title": "春节备货政策", "category": "channel", "ack_required": False,
            "body": "<p>春节前最后发货日为 1 月 20 日，请提前备货。</p>"}), audience=audiences.EVERYONE)
        policies.schedule_policy(staff=marketing, policy_id=later.id, publish_at=utcnow() + timedelta(days=3))
    from app.policies.models import CATEGORY_LABELS, Policy

    shown = db.session.execute(select(Policy).order_by(Policy.id)).scalars().all()
    return ["", "演示政策（管理后台“政策”，小程序 GET /api/mp/v1/policies）：",
            *_table(("标题", "分类", "受众", "版本"), [
                (p.title, CATEGORY_LABELS[p.category], audiences.describe(audiences.load("policy", p.id)),
                 f"第 {p.version} 版" if p.version else "定时发布") for p in shown])]


def _demo_buyer(dealer):
    """The dealer's stand-in buyer who placed the demo orders (no WeChat user behind it)."""
    from app.dealers.models import DealerUser

    openid = DEMO_BUYER_OPENID.format(code=dealer.code)
    with write_transaction() as session:
        user = session.execute(select(DealerUser).where(DealerUser.openid == openid)).scalar_one_or_none()
        if user is None:
            user = DealerUser(dealer_id=dealer.id, role="buyer", openid=openid, name="演示采购员")
            session.add(user)
    return user


def _delete_business_rows(session):
    for table in reversed(db.metadata.sorted_tables):
        if table.name != "alembic_version":
            session.execute(table.delete())
    # Deleted rows may still sit in the identity map, and SQLite reuses their ids.
    session.expunge_all()


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


def _seed_invites(session, dealers, ttl_days):
    expires_at = utcnow() + timedelta(days=ttl_days)
    taken = set()
    return _add_all(session, [
        InviteCode(code=_new_invite_code(taken), dealer_id=dealers[code].id, role=role, expires_at=expires_at)
        for code, role in INVITES
    ])


# --- output --------------------------------------------------------------------------------------------

def _width(text):
    """Columns `text` takes in a terminal (CJK characters are two wide)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _table(header, rows):
    widths = [max(_width(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return [
        "  " + "  ".join(cell + " " * (width - _width(cell)) for cell, width in zip(row, widths)).rstrip()
        for row in (header, *rows)
    ]


def _count_lines(brand, seeded):
    regions, dealers, skus = seeded["regions"], seeded["dealers"].values(), seeded["skus"].values()
    warehouses, lists = seeded["warehouses"], seeded["price_lists"]
    suspended = sum(dealer.status != "active" for dealer in dealers)
    inactive = sum(sku.status != "active" for sku in skus)
    expired = sum(price_list.valid_to is not None for price_list in lists)
    dealer_lists = sum(price_list.kind == "dealer" for price_list in lists)
    return [
        f"已写入「{brand}」演示数据：",
        f"  地区 {len(regions['provinces']) + len(regions['cities'])} 个"
        f"（省级 {len(regions['provinces'])}，市级 {len(regions['cities'])}）",
        f"  经销商等级 {len(seeded['tiers'])} 个，业务员 {len(seeded['reps'])} 名",
        f"  经销商 {len(dealers)} 家（暂停 {suspended} 家），每家含默认收货地址和信用账户",
        f"  商品分类 {len(seeded['categories'])} 个，商品 {len(skus)} 个（下架 {inactive} 个）",
        f"  仓库 {len(warehouses)} 个（{'、'.join(w.name for w in warehouses)}），"
        f"库存记录 {len(skus) * len(warehouses)} 条",
        f"  价格表 {len(lists)} 张（等级价 {len(lists) - dealer_lists - expired}，"
        f"经销商专属价 {dealer_lists}，已过期 {expired}）",
        f"  可见性规则 {len(seeded['rules'])} 条",
    ]


def _invite_lines(seeded):
    invites = seeded["invites"]
    dealers = {dealer.id: dealer for dealer in seeded["dealers"].values()}
    rows = [
        (dealers[invite.dealer_id].code, dealers[invite.dealer_id].name, ROLE_LABELS[invite.role], invite.code)
        for invite in invites
    ]
    return [
        f"邀请码（一次性，{invites[0].expires_at:%Y-%m-%d %H:%M} (UTC) 前有效）：",
        *_table(("经销商", "名称", "角色", "邀请码"), rows),
    ]


def _summary_lines(brand, seeded):
    return [
        *_count_lines(brand, seeded),
        "",
        *_invite_lines(seeded),
        "",
        f"登录测试：{LOGIN_HINT}，再用上面的邀请码绑定经销商。",
        "",
        "管理后台 http://127.0.0.1:5000/console/ 的员工账号（密码只显示这一次）：",
        *_table(("用户名", "角色", "密码"), [(u, STAFF_ROLE_LABELS[r], p) for u, r, p in seeded["console"]]),
        "",
        AutoApproval(enabled=False).describe() + "；开启：.venv/bin/flask --app wsgi settings auto-approval --on",
    ]
