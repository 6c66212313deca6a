"""Rep alerts written to the outbox: the approval card, decisions, credit, shipments,
dealers gone quiet; the daily digest; and two approvals racing on PostgreSQL."""
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.database import write_transaction
from app.dealers.models import Dealer
from app.extensions import db
from app.funds.models import CreditAccount
from app.kernel.clock import utcnow
from bots import rep_alerts
from app.notify.models import Outbox
from app.orders import approval as orders
from app.orders.models import Order, OrderEvent
from app.kernel.clock import business_today
from app.staff.models import Staff
from bots import digest
from tests.factories import add, auth
from tests.helpers import MP
from tests.test_bot import place
from tests.test_wecom_callback_support import WeCom


def rows(**where):
    db.session.expire_all()
    query = select(Outbox).order_by(Outbox.id)
    for name, value in where.items():
        query = query.where(getattr(Outbox, name) == value)
    return db.session.execute(query).scalars().all()


def order_id(order_no):
    return db.session.execute(select(Order.id).where(Order.order_no == order_no)).scalar_one()


# --- the approval card ---------------------------------------------------------------

def test_new_order_sends_the_rep_a_button_interaction_card(client, world):
    order_no = place(client, world, qty=3)
    [row] = rows(channel="wecom_app", event="order_pending_approval")
    assert (row.recipient, row.queue, row.ref_type, row.ref_id) == ("WangYeWu", "high", "order", order_id(order_no))
    assert row.payload == {
        "msgtype": "template_card",
        "template_card": {
            "card_type": "button_interaction",
            "source": {"desc": "鼎禾食品订货", "desc_color": 0},
            "main_title": {"title": "新订单待审批", "desc": f"订单号 {order_no}"},
            "horizontal_content_list": [
                {"keyname": "经销商", "value": "广州鑫达商贸有限公司"},
                {"keyname": "金额", "value": "¥120.00"},
                {"keyname": "商品行数", "value": "1 行"},
                {"keyname": "下单人", "value": "buyer"},
            ],
            "task_id": f"order-{order_no}",
            "button_list": [
                {"text": "通过", "style": 1, "key": f"approve:{order_no}"},
                {"text": "驳回", "style": 2, "key": f"reject:{order_no}"},
            ],
        },
        "enable_duplicate_check": 1,
        "duplicate_check_interval": 1800,
    }
    task_id = row.payload["template_card"]["task_id"]
    assert len(task_id.encode()) <= 128 and all(c.isalnum() or c in "_-@" for c in task_id)
    for item in row.payload["template_card"]["horizontal_content_list"]:
        assert len(item["keyname"]) <= 5 and len(item["value"]) <= 30


def test_long_dealer_names_are_clipped_to_wecoms_field_lengths(client, world):
    world.dealer_a.name = "广州" + "超长名称" * 10 + "有限公司"
    db.session.commit()
    place(client, world)
    [row] = rows(event="order_pending_approval")
    value = row.payload["template_card"]["horizontal_content_list"][0]["value"]
    assert len(value) == 30 and value.endswith("…")


def test_no_rep_or_no_wecom_userid_means_no_row_and_a_log_line(client, world, caplog):
    caplog.set_level(logging.INFO, logger="bots.rep_alerts")
    world.dealer_a.rep_id = None
    db.session.commit()
    place(client, world)
    assert rows(event="order_pending_approval") == []
    assert "has no rep" in caplog.text
    world.dealer_a.rep_id = world.rep.id
    world.rep.wecom_userid = None
    db.session.commit()
    place(client, world)
    assert rows(event="order_pending_approval") == []
    assert "has no WeCom user id" in caplog.text


# --- decisions taken elsewhere -----------------------------------------------------------

def test_approval_by_someone_else_is_told_to_the_rep_as_text(client, world):
    order_no = place(client, world)
    admin = add(Staff(username="boss", name="张总", role="admin"))
    db.session.commit()
    orders.approve_order(staff=admin, order_no=order_no)
    [row] = rows(event="order_approved")
    assert row.channel == "wecom_app" and row.recipient == "WangYeWu"
    assert row.payload["msgtype"] == "text" and row.payload["enable_duplicate_check"] == 1
    assert row.payload["text"]["content"] == f"订单 {order_no}（广州鑫达商贸有限公司，¥80.00）已由 张总 审批通过。"


def test_the_reps_own_decision_outside_the_card_sends_no_extra_text(client, world):
    order_no = place(client, world)
    orders.reject_order(staff=world.rep, order_no=order_no, reason="价格有误")
    assert rows(event="order_rejected") == []


def test_dealer_cancel_is_told_to_the_rep(client, world):
    order_no = place(client, world)
    r = client.post(f"{MP}/orders/{order_no}/cancel", headers=auth(world.a_buyer), json={"reason": "下错了"})
    assert r.status_code == 200, r.json
    [row] = rows(event="order_cancelled")
    assert row.recipient == "WangYeWu"
    assert row.payload["text"]["content"] == f"经销商 广州鑫达商贸有限公司 已取消订单 {order_no}（¥80.00）。原因：下错了"


# --- credit ---------------------------------------------------------------------------------

def set_limit(dealer, fen):
    db.session.execute(update(CreditAccount).where(CreditAccount.dealer_id == dealer.id).values(credit_limit_fen=fen))
    db.session.commit()


def test_order_reaching_90_percent_of_the_credit_limit_alerts_the_rep(client, world):
    set_limit(world.dealer_a, 8800)
    order_no = place(client, world, qty=2)  # ¥80.00 of ¥88.00 = 90 %
    [row] = rows(event="credit_near_limit")
    assert row.recipient == "WangYeWu" and row.queue == "high"
    content = row.payload["text"]["content"]
    assert order_no in content and "已用额度 ¥80.00" in content and "90%" in content and "剩余可用 ¥8.00" in content


def test_order_below_90_percent_sends_no_credit_alert(client, world):
    set_limit(world.dealer_a, 9000)
    place(client, world, qty=2)  # 88 %
    assert rows(event="credit_near_limit") == []


# --- shipment ----------------------------------------------------------------------------------

def test_shipment_sent_writes_one_message_per_tracking_number(client, world):
    order_no = place(client, world)
    order = orders.approve_order(staff=world.rep, order_no=order_no)
    for tracking in ("SF1234567890", "SF1234567890", "YT9999"):
        with write_transaction() as session:
            rep_alerts.shipment_sent(session, session.get(Order, order.id), "顺丰速运", tracking)
    shipped = rows(event="order_shipped")
    assert [r.payload["text"]["content"] for r in shipped] == [
        f"订单 {order_no}（广州鑫达商贸有限公司）已发货：顺丰速运，运单号 SF1234567890。",
        f"订单 {order_no}（广州鑫达商贸有限公司）已发货：顺丰速运，运单号 YT9999。",
    ]


# --- dealers gone quiet ---------------------------------------------------------------------

def age_orders(days):
    db.session.execute(update(Order).values(created_at=utcnow() - timedelta(days=days)))
    db.session.commit()


def test_inactive_dealers_are_reminded_once_per_30_day_window(client, world):
    place(client, world)  # dealer A ordered...
    age_orders(31)  # ...31 days ago
    db.session.execute(update(Dealer).values(created_at=utcnow() - timedelta(days=100)))
    db.session.commit()
    today = business_today()
    assert rep_alerts.remind_inactive_dealers(today) == 2  # A (31 days) and B (never ordered, 100 days)
    assert rep_alerts.remind_inactive_dealers(today) == 0
    assert rep_alerts.remind_inactive_dealers(today + timedelta(days=5)) == 0  # same window
    texts = " | ".join(r.payload["text"]["content"] for r in rows(event="dealer_inactive"))
    # 31 days ago UTC may be 31 or 32 calendar days ago in China.
    assert "广州鑫达商贸有限公司（DA01）已 31 天没有下单" in texts or "广州鑫达商贸有限公司（DA01）已 32 天没有下单" in texts
    assert "上海沪联食品有限公司（DB01）开户 100 天以来还没有下过单" in texts or "开户 101 天" in texts
    assert {r.recipient for r in rows(event="dealer_inactive")} == {"WangYeWu"}
    # Thirty more days of silence: one more reminder each.
    assert rep_alerts.remind_inactive_dealers(today + timedelta(days=30)) == 2


def test_active_recent_and_suspended_dealers_are_not_reminded(client, world):
    place(client, world)
    db.session.execute(update(Dealer).where(Dealer.id == world.dealer_b.id).values(
        status="suspended", created_at=utcnow() - timedelta(days=100)))
    db.session.commit()
    assert rep_alerts.remind_inactive_dealers() == 0
    assert rows(event="dealer_inactive") == []


# --- the daily digest -----------------------------------------------------------------------------

def test_digest_summarises_yesterday_once(client, world):
    a1 = place(client, world, qty=2)
    place(client, world, user=world.b_owner, qty=1)
    cancelled = place(client, world, qty=5)
    client.post(f"{MP}/orders/{cancelled}/cancel", headers=auth(world.a_buyer), json={})
    orders.approve_order(staff=world.rep, order_no=a1)
    age_orders(1)
    outbox_id = digest.send_daily_digest()
    assert outbox_id is not None
    assert digest.send_daily_digest() is None  # same day: written once
    [row] = rows(channel="wecom_robot")
    assert (row.recipient, row.queue, row.event) == ("default", "low", "daily_digest")
    assert row.dedupe_key == f"digest:{business_today() - timedelta(days=1):%Y-%m-%d}:wecom_robot:default"
    assert row.payload["msgtype"] == "markdown"
    content = row.payload["markdown"]["content"]
    assert "有效订单：<font color=\"info\">2</font> 笔，金额 <font color=\"info\">¥125.00</font>" in content
    assert "已取消/驳回：1 笔" in content
    assert "当前待审批：<font color=\"warning\">1</font> 笔，¥45.00" in content
    assert content.index("1. 广州鑫达商贸有限公司：1 笔 ¥80.00") < content.index("2. 上海沪联食品有限公司：1 笔 ¥45.00")
    assert "- 王业务：2 笔 ¥125.00，待审批 1 笔" in content
    assert len(content.encode()) <= 4096


def test_digest_of_a_quiet_day(world):
    content = digest.compose_digest(business_today())
    assert "有效订单：<font color=\"info\">0</font> 笔" in content


def test_digest_stays_within_4096_bytes(client, world):
    reps = [add(Staff(username=f"r{i}", name=f"业务员{i:03d}号" + "很长的名字" * 3, role="sales", wecom_userid=f"R{i}"))
            for i in range(120)]
    now = utcnow() - timedelta(days=1)
    for i, rep in enumerate(reps):
        dealer = add(Dealer(code=f"DZ{i:03d}", name=f"第{i:03d}号经销商" + "商贸有限公司" * 3, tier_id=world.gold.id,
                            region_code="440100", rep_id=rep.id))
        add(Order(order_no=f"SO20990101{i:04d}", dealer_id=dealer.id, placed_by_id=world.a_buyer.id,
                  status="pending_approval", total_fen=10_000 + i, subtotal_fen=10_000 + i, ship_contact="x",
                  ship_phone="1", ship_region_code="440100", ship_address="x", created_at=now, updated_at=now))
    db.session.commit()
    content = digest.compose_digest(business_today() - timedelta(days=1))
    assert len(content.encode("utf-8")) <= 4096
    assert content.endswith("其余已省略")
    assert "有效订单：<font color=\"info\">120</font> 笔" in content  # the summary survives the cut


def test_fit_lines_cuts_at_line_and_character_boundaries():
    lines = ["标题"] + [f"第{i}行" + "字" * 50 for i in range(100)]
    text = digest.fit_lines(lines, 1000)
    assert len(text.encode()) <= 1000 and text.startswith("标题\n第0行") and text.endswith("其余已省略")
    text = digest.fit_lines(["字" * 2000], 1000)
    assert len(text.encode()) <= 1000
    text.encode().decode("utf-8")


# --- racing approvals on PostgreSQL ---------------------------------------------------------

@pytest.mark.postgres
def test_card_tap_and_bot_command_racing_approve_once(pg_app, pg_world):
    from tests.test_concurrency import run_concurrently

    w = pg_world
    client = pg_app.test_client()
    order_no = place(client, w)
    for attempt in range(5):
        if attempt:
            order_no = place(client, w)

        def tap(c, order_no=order_no, attempt=attempt):
            return WeCom(c, pg_app.config).tap(
                f"approve:{order_no}", response_code=f"RC-{attempt}", create_time=1764100000 + attempt
            ).status_code

        def command(c, order_no=order_no):
            return WeCom(c, pg_app.config).say(f"通过 {order_no}").status_code

        assert run_concurrently(pg_app, [tap, command]) == [200, 200]
        db.session.expire_all()
        oid = order_id(order_no)
        approvals = db.session.execute(
            select(OrderEvent).where(OrderEvent.order_id == oid, OrderEvent.to_status == "approved")
        ).scalars().all()
        assert len(approvals) == 1
        assert db.session.get(Order, oid).status == "approved"
    answers = [r.payload["text"]["content"] for r in rows(event="bot_reply")]
    bot_won = sum(a.startswith("已审批通过订单") for a in answers)
    card_won = len(rows(channel="wecom_card", event="order_approved"))
    assert bot_won + card_won == 5  # one winner per order...
    # ...and the loser is told: by the card's answer, or the command's "订单 … 已审批通过"
    assert sum("当前状态为「已审批」" in a or a.endswith(" 已审批通过") for a in answers) == 5


def test_cli_writes_the_digest_once(runner, world):
    r = runner.invoke(args=["notify", "digest", "--day", "2026-11-20"])
    assert r.exit_code == 0 and "已写入发送队列" in r.output
    r = runner.invoke(args=["notify", "digest", "--day", "2026-11-20"])
    assert r.exit_code == 0 and "不重复发送" in r.output
    [row] = rows(channel="wecom_robot")
    assert row.dedupe_key == "digest:2026-11-20:wecom_robot:default"
    assert "销售日报 2026-11-20" in row.payload["markdown"]["content"]
    r = runner.invoke(args=["notify", "digest", "--day", "20-11-2026"])
    assert r.exit_code != 0 and "日期格式应为 YYYY-MM-DD" in r.output


@pytest.mark.postgres
def test_commands_alerts_and_digest_on_postgresql(pg_app, pg_world):
    """The same SQL (scoping, fuzzy dealer search, aggregates, day bounds) on PostgreSQL."""
    w = pg_world
    client = pg_app.test_client()
    wecom = WeCom(client, pg_app.config)
    first = place(client, w, qty=2)
    second = place(client, w, user=w.b_owner, qty=1)
    assert [r.event for r in rows(channel="wecom_app")] == ["order_pending_approval"] * 2

    def ask(text):
        assert wecom.say(text).status_code == 200
        return rows(event="bot_reply")[-1].payload["text"]["content"]

    assert ask(f"订单 {first.lower()}").startswith(f"订单 {first}【待审批】")
    assert ask("待审批").startswith("待审批订单 2 笔，合计 ¥125.00")
    assert ask("客户 da01").startswith("广州鑫达商贸有限公司（DA01")
    assert ask("客户 有限公司").startswith("找到 2 个经销商")
    assert ask(f"驳回 {second} 缺货").startswith(f"已驳回订单 {second}")
    age_orders(1)
    content = digest.compose_digest(business_today() - timedelta(days=1))
    assert "有效订单：<font color=\"info\">1</font> 笔，金额 <font color=\"info\">¥80.00</font>" in content
    assert "1. 广州鑫达商贸有限公司：1 笔 ¥80.00" in content
    age_orders(40)
    assert rep_alerts.remind_inactive_dealers() == 2
    assert rep_alerts.remind_inactive_dealers() == 0


def test_dealer_cancel_without_a_reason_does_not_echo_the_default_as_a_reason(client, world):
    from app.orders import closing as orders_service
    from tests.factories import auth
    from tests.helpers import submit

    order_no = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}]).json["order_no"]
    orders_service.cancel_order(user=world.a_buyer, order_no=order_no)
    db.session.expire_all()
    [row] = db.session.execute(select(Outbox).where(Outbox.event == "order_cancelled")).scalars().all()
    assert row.payload["text"]["content"].endswith("）。")
    assert "原因" not in row.payload["text"]["content"]
