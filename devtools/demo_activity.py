"""What has happened in the demo brand, for `devtools.demo`: orders in every state, rebate
rules, the reps' WeCom customer groups and a campaign, marketing materials and policies. Each
goes through the same services as the mini-program and the console (validated, audited), in
transactions of its own after the brand's; each `_seed_*` returns lines for the summary."""
import contextlib
from datetime import timedelta

from sqlalchemy import select

from app.catalog.models import Category, Sku
from app.database import write_transaction
from app.dealers.models import Dealer, Tier
from app.extensions import db
from app.kernel.clock import business_today, utcnow
from app.staff.models import Staff
from devtools.demo_brand import CONSOLE_STAFF
from devtools.demo_summary import _table


# --- rebates: two rules, configured as finance would in the console ---------------------------------

def _seed_rebate_rules(valid_from):
    """A quarterly rule on shipped goods for every dealer (with a growth rebate) and a monthly rule
    on paid soy sauce and vinegar for gold dealers, through the rebate service (validated, audited).
    The mini-program's GET /rebates shows each dealer's progress against them."""
    from app.rebates.rules import create_rule, describe_rule

    finance = db.session.execute(select(Staff).where(Staff.role == "finance")).scalars().first()
    categories = {c.name: c.id for c in db.session.execute(select(Category)).scalars()}
    gold = db.session.execute(select(Tier).where(Tier.code == "gold")).scalar_one()
    start = valid_from
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
    from app.campaigns.authoring import create_campaign
    from app.campaigns.groups import map_group
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
            map_group(staff=staff["shichang"], group_id=groups[chat_id].id, dealer_code=dealer_code)
    campaign = create_campaign(
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
    from app.audience import service as audiences
    from app.materials.authoring import create_material, publish_material
    from app.materials.files import FileIn

    marketer = db.session.execute(select(Staff).where(Staff.role == "marketing")).scalars().first()
    made = []
    for kind, title, tags, audience, colours, extra in DEMO_MATERIALS:
        files = {}
        if kind in ("poster", "image"):
            size = (750, 1334) if kind == "poster" else (800, 800)
            files["file"] = FileIn(_demo_picture(size, colours), f"{title}.jpg")
        else:
            files["cover"] = FileIn(_demo_picture((500, 400), colours), "cover.jpg")
        material = create_material(staff=marketer, kind=kind, title=title, tags=list(tags),
                                   audience=audience, **files, **extra)
        publish_material(staff=marketer, material_id=material.id)
        made.append((material.kind_label, title, audiences.describe(audiences.load("material", material.id))))
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
    from app.dealers.identity import user_for_openid
    from app.orders import approval, closing, queries, submission
    from app.orders.shipments import ship_order

    with _outbox_dropped():
        staff = {s.username: s for s in db.session.execute(select(Staff)).scalars()}
        clerk = staff[CONSOLE_STAFF[2][0]]
        dealers = {d.code: d for d in db.session.execute(select(Dealer)).scalars()}
        skus = {s.code: s for s in db.session.execute(select(Sku)).scalars()}
        done = []
        for n, (code, lines, target) in enumerate(DEMO_ORDERS, start=1):
            user = _demo_buyer(dealers[code])
            order, _ = submission.submit_order(
                user=user_for_openid(user.openid), idempotency_key=f"demo-seed-order-{n}",
                lines=[{"sku_id": skus[sku].id, "qty": qty} for sku, qty in lines],
            )
            if target != "pending_approval":
                approval.approve_order(staff=dealers[code].rep, order_no=order.order_no)
            if target in ("partially_shipped", "shipped", "completed"):
                placed = queries.get_order(dealer_id=dealers[code].id, order_no=order.order_no)
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
                closing.confirm_receipt(user=user_for_openid(user.openid), order_no=order.order_no)
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
    from app.tracking.models import ShipmentTracking

    written = []

    def hold_back(session):
        written.extend(oid for _, oid in session.info.pop("outbox_ids", []))

    event.listen(Session, "before_commit", hold_back)
    try:
        yield
        with write_transaction() as session:
            outbox = Outbox.__table__
            # A Kuaidi100 subscription dropped with its outbox row: that shipment is simply not tracked.
            never_subscribed = select(outbox.c.ref_id).where(outbox.c.id.in_(written), outbox.c.channel == "kuaidi100")
            session.execute(ShipmentTracking.__table__.delete().where(
                ShipmentTracking.__table__.c.shipment_id.in_(never_subscribed)))
            session.execute(outbox.delete().where(outbox.c.id.in_(written)))
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
    from app.policies import authoring

    marketing = db.session.execute(select(Staff).where(Staff.role == "marketing")).scalars().first()
    rows = []
    with _outbox_dropped():
        for title, category, audience, ack, body in DEMO_POLICIES:
            fields = authoring.parse_fields({"title": title, "category": category, "body": body,
                                             "ack_required": ack, "effective_from": business_today().isoformat()})
            policy = authoring.create_policy(staff=marketing, fields=fields, audience=audiences.parse(audience))
            authoring.publish_policy(staff=marketing, policy_id=policy.id)
            rows.append((policy, audiences.parse(audience), fields))
        first, audience, fields = rows[0]
        revised = {**fields, "body_html": fields["body_html"].replace("2%", "2.5%")}
        authoring.update_policy(staff=marketing, policy_id=first.id, fields=revised, audience=audience)
        later = authoring.create_policy(staff=marketing, fields=authoring.parse_fields({
            "title": "春节备货政策", "category": "channel", "ack_required": False,
            "body": "<p>春节前最后发货日为 1 月 20 日，请提前备货。</p>"}), audience=audiences.EVERYONE)
        authoring.schedule_policy(staff=marketing, policy_id=later.id, publish_at=utcnow() + timedelta(days=3))
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
