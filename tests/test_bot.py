"""The bot reps chat with in WeCom, driven through the encrypted callback."""
import pytest
from sqlalchemy import select

from app.extensions import db
from app.notify.models import Outbox
from app.orders.models import Order, OrderEvent
from app.staff.models import Staff
from bots.commands import parse
from tests.factories import add, auth
from tests.helpers import credit, submit
from tests.test_wecom_callback_support import WeCom


@pytest.fixture
def wecom(client, app):
    return WeCom(client, app.config)


def place(client, world, user=None, qty=2, sku=None):
    r = submit(client, auth(user or world.a_buyer), [{"sku_id": (sku or world.cola).id, "qty": qty}])
    assert r.status_code == 201, r.json
    return r.json["order_no"]


def replies(user="WangYeWu"):
    db.session.expire_all()
    rows = db.session.execute(
        select(Outbox).where(Outbox.event == "bot_reply", Outbox.recipient == user).order_by(Outbox.id)
    ).scalars().all()
    return [row.payload["text"]["content"] for row in rows]


def last_reply(user="WangYeWu"):
    return replies(user)[-1]


def status(order_no):
    db.session.expire_all()
    return db.session.execute(select(Order.status).where(Order.order_no == order_no)).scalar_one()


def ask(wecom, text, user="WangYeWu"):
    assert wecom.say(text, user=user).status_code == 200
    return last_reply(user)


# --- parsing ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "text,command,order_no,rest",
    [
        ("订单 SO202611260001", "order", "SO202611260001", ""),
        ("订单　ＳＯ２０２６１１２６０００１", "order", "SO202611260001", ""),  # full-width
        ("查一下订单so202611260001的情况", "order", "SO202611260001", "查一下 的情况"),
        ("SO202611260001", "order", "SO202611260001", ""),
        ("待审批", "pending", None, ""),
        ("我的待审批订单", "pending", None, "我的 订单"),
        ("通过SO202611260001", "approve", "SO202611260001", ""),
        ("同意 so 202611260001 ！", "approve", "SO202611260001", ""),
        ("驳回 SO202611260001 资质未通过审核", "reject", "SO202611260001", "资质未通过审核"),
        ("驳回：SO202611260001，价格有误。", "reject", "SO202611260001", "价格有误"),
        ("驳回 SO202611260001 原因：价格不对，请重下", "reject", "SO202611260001", "原因：价格不对，请重下"),
        ("客户 鑫达", "customer", None, "鑫达"),
        ("客户：DA01", "customer", None, "DA01"),
        ("帮助", "help", None, ""),
        ("HELP", "help", None, ""),
        ("？", "help", None, ""),
        ("今天天气不错", "unknown", None, "今天天气不错"),
    ],
)
def test_parse_is_forgiving(text, command, order_no, rest):
    parsed = parse(text)
    assert (parsed.command, parsed.order_no, parsed.rest) == (command, order_no, rest)


# --- help and strangers ------------------------------------------------------------

def test_help_and_unrecognised_text_list_the_commands(wecom, world):
    assert "订单助手可用命令" in ask(wecom, "帮助")
    answer = ask(wecom, "今天天气不错")
    assert answer.startswith("没有看懂") and "待审批" in answer and "客户" in answer


def test_unknown_wecom_user_gets_a_polite_reply_and_nothing_changes(wecom, client, world):
    order_no = place(client, world)
    answer = ask(wecom, f"通过 {order_no}", user="Stranger")
    assert "没有关联可用的订货系统员工账号" in answer
    assert status(order_no) == "pending_approval"


def test_inactive_staff_is_treated_as_unknown(wecom, client, world):
    order_no = place(client, world)
    world.rep.active = False
    db.session.commit()
    assert "已停用" in ask(wecom, f"通过 {order_no}")
    assert status(order_no) == "pending_approval"


# --- 订单 ------------------------------------------------------------------------------

@pytest.mark.parametrize("template", ["订单 {no}", "订单{lower}", "查一下订单 {lower} 的状态", "  {no}  "])
def test_order_lookup_shows_status_lines_totals_and_events(wecom, client, world, template):
    order_no = place(client, world, qty=3)
    answer = ask(wecom, template.format(no=order_no, lower=order_no.lower()))
    assert f"订单 {order_no}【待审批】" in answer
    assert "广州鑫达商贸有限公司（DA01）" in answer
    assert "商品SKU-COLA 500ml×12瓶 × 3箱 = ¥120.00" in answer  # dealer price 40.00
    assert "应付 ¥120.00" in answer
    assert "→ 待审批（经销商提交订单）" in answer
    assert f"通过 {order_no}" in answer


def test_order_lookup_of_unknown_number(wecom, world):
    assert "没有找到订单 SO209901010001" in ask(wecom, "订单 SO209901010001")
    assert "请带上订单号" in ask(wecom, "订单")


# --- 待审批 -------------------------------------------------------------------------------

def test_pending_lists_my_orders_newest_first_with_totals(wecom, client, world):
    first = place(client, world, qty=1)
    second = place(client, world, user=world.b_owner, qty=2)
    third = place(client, world, qty=3)
    from app.orders import approval as orders

    orders.approve_order(staff=world.rep, order_no=first)
    answer = ask(wecom, "待审批")
    assert answer.startswith("待审批订单 2 笔，合计 ¥210.00")  # 2×45.00 (silver) + 3×40.00
    assert answer.index(third) < answer.index(second)
    assert first not in answer


def test_pending_when_nothing_waits(wecom, world):
    assert ask(wecom, "待审批") == "目前没有待审批的订单。"


def test_pending_shows_at_most_ten(wecom, client, world):
    numbers = [place(client, world, qty=1) for _ in range(12)]
    answer = ask(wecom, "待审批")
    assert "待审批订单 12 笔" in answer and "显示最新 10 笔" in answer
    assert numbers[-1] in answer and numbers[0] not in answer and numbers[1] not in answer


# --- 通过 / 驳回 ---------------------------------------------------------------------------

def test_approve_through_the_order_service(wecom, client, world):
    order_no = place(client, world)
    answer = ask(wecom, f"通过 {order_no.lower()}")
    assert answer.startswith(f"已审批通过订单 {order_no}")
    assert status(order_no) == "approved"
    event = db.session.execute(select(OrderEvent).order_by(OrderEvent.id.desc()).limit(1)).scalar_one()
    assert (event.to_status, event.actor_type, event.actor_name) == ("approved", "staff", "王业务")
    # Again: what already happened, nothing changes.
    assert f"订单 {order_no} 已审批通过" in ask(wecom, f"通过 {order_no}")
    assert len(db.session.execute(select(OrderEvent).where(OrderEvent.to_status == "approved")).all()) == 1


def test_reject_needs_a_reason_and_keeps_it(wecom, client, world):
    order_no = place(client, world)
    assert "驳回需要写明原因" in ask(wecom, f"驳回 {order_no}")
    assert status(order_no) == "pending_approval"
    answer = ask(wecom, f"驳回：{order_no}，资质未通过审核。")
    assert answer.startswith(f"已驳回订单 {order_no}，原因：资质未通过审核")
    assert status(order_no) == "rejected"
    assert credit(world.dealer_a)["held"] == 0
    event = db.session.execute(select(OrderEvent).order_by(OrderEvent.id.desc()).limit(1)).scalar_one()
    assert event.reason == "资质未通过审核"


@pytest.mark.parametrize("text", [
    "不通过 {no} 价格不对", "不同意 {no}", "没通过 {no}", "别通过{no}", "暂不批准 {no}",
    "{no} 通过了吗", "通过 {no} 吗？", "{no} 通过", "不要驳回 {no} 缺货",
])
def test_a_decision_that_is_not_plainly_meant_changes_nothing(wecom, client, world, text):
    order_no = place(client, world)
    answer = ask(wecom, text.format(no=order_no))
    assert answer.startswith("这条消息没有执行审批") and f"通过 {order_no}" in answer and f"驳回 {order_no} 原因" in answer
    assert status(order_no) == "pending_approval"


def test_approve_without_number_asks_for_it(wecom, world):
    assert "请带上订单号" in ask(wecom, "通过")


# --- 客户 ----------------------------------------------------------------------------------

def test_customer_by_name_code_and_fuzzy(wecom, client, world):
    order_no = place(client, world)
    for query in ("客户 鑫达", "客户 da01", "客户 鑫达公司", "客户 鑫达 的额度"):
        answer = ask(wecom, query)
        assert answer.startswith("广州鑫达商贸有限公司（DA01，金牌，正常）"), query
        assert "信用额度 ¥100,000.00，已用 ¥80.00，可用 ¥99,920.00" in answer
        assert order_no in answer


def test_customer_with_several_matches_lists_them(wecom, world):
    answer = ask(wecom, "客户 有限公司")
    assert answer.startswith("找到 2 个经销商")
    assert "DA01 广州鑫达商贸有限公司" in answer and "DB01 上海沪联食品有限公司" in answer


def test_customer_not_found(wecom, world):
    assert "没有找到「不存在的公司」" in ask(wecom, "客户 不存在的公司")
    assert "请带上经销商名称或编码" in ask(wecom, "客户")


# --- isolation ------------------------------------------------------------------------------

@pytest.fixture
def other_rep(world):
    rep = add(Staff(username="rep2", name="李业务", role="sales", wecom_userid="LiYeWu"))
    db.session.commit()
    return rep


def test_another_rep_sees_and_decides_nothing_of_my_dealers(wecom, client, world, other_rep):
    order_no = place(client, world)
    assert "没有找到订单" in ask(wecom, f"订单 {order_no}", user="LiYeWu")
    assert "没有找到订单" in ask(wecom, f"通过 {order_no}", user="LiYeWu")
    assert "没有找到订单" in ask(wecom, f"驳回 {order_no} 不要了", user="LiYeWu")
    assert ask(wecom, "待审批", user="LiYeWu") == "目前没有待审批的订单。"
    assert "没有找到「鑫达」" in ask(wecom, "客户 鑫达", user="LiYeWu")
    assert status(order_no) == "pending_approval"


def test_admin_sees_and_decides_on_every_dealer(wecom, client, world, other_rep):
    add(Staff(username="boss", name="张总", role="admin", wecom_userid="ZhangZong"))
    db.session.commit()
    order_no = place(client, world)
    assert "待审批订单 1 笔" in ask(wecom, "待审批", user="ZhangZong")
    assert "鑫达" in ask(wecom, "客户 DA01", user="ZhangZong")
    assert ask(wecom, f"通过 {order_no}", user="ZhangZong").startswith("已审批通过")
    assert status(order_no) == "approved"


def test_other_roles_are_refused(wecom, client, world):
    add(Staff(username="fin", name="财务", role="finance", wecom_userid="CaiWu"))
    db.session.commit()
    order_no = place(client, world)
    assert "只对业务员和管理员开放" in ask(wecom, "待审批", user="CaiWu")
    # Finance decides only orders waiting for finance (over the credit limit; test_finance_approval.py).
    assert "不在等待财务复核" in ask(wecom, f"通过 {order_no}", user="CaiWu")
    assert status(order_no) == "pending_approval"
    add(Staff(username="cang", name="仓管", role="warehouse", wecom_userid="CangGuan"))
    db.session.commit()
    assert "没有审批订单的权限" in ask(wecom, f"通过 {order_no}", user="CangGuan")
    assert status(order_no) == "pending_approval"


# --- replies are idempotent --------------------------------------------------------------

def test_a_replayed_job_replies_once(app, client, world):
    from bots.inbound import handle_inbound

    order_no = place(client, world)
    message = {
        "ToUserName": app.config["WECOM_CORP_ID"], "FromUserName": "WangYeWu", "CreateTime": "1764000000",
        "MsgType": "text", "Content": f"通过 {order_no}", "MsgId": "7330000000000000777", "AgentID": "1000002",
        "dedupe_key": "wecom:msg:7330000000000000777",
    }
    handle_inbound(message)
    handle_inbound(message)  # e.g. a worker died after the reply was committed
    answers = replies()
    assert len(answers) == 1 and answers[0].startswith("已审批通过")
    assert status(order_no) == "approved"


def test_non_text_messages_get_a_hint(wecom, world):
    xml = wecom.text_xml("x").replace("<MsgType><![CDATA[text]]></MsgType>", "<MsgType><![CDATA[image]]></MsgType>")
    wecom.post(xml)
    assert "只看得懂文字消息" in last_reply()
