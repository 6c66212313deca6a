"""Finance co-approval: an order that would leave the dealer over its credit limit at
approval time needs finance (or an admin) besides the rep — in the console, the bot and
the WeCom card alike, all through the order service."""
import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.extensions import db
from app.funds.models import CreditAccount
from app.kernel.errors import DomainError
from app.notify.models import DealerMessage, Outbox
from app.orders import approval as orders
from app.orders.models import Order, OrderEvent
from bots.commands import cmd_approve, parse
from tests.factories import auth
from tests.helpers import HTML, MP, available, credit, csrf, submit
from tests.helpers import console_login as login
from tests.test_wecom_callback_support import WeCom


def place(client, world, qty=2):
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": qty}])
    assert r.status_code == 201, r.get_json()
    return r.get_json()["order_no"]


def lower_limit(dealer, limit_fen):
    db.session.get(CreditAccount, dealer.id).credit_limit_fen = limit_fen
    db.session.commit()


def order_row(order_no):
    db.session.expire_all()
    return db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()


def events(order_no):
    order = order_row(order_no)
    return [(e.from_status, e.to_status, e.actor_name) for e in db.session.execute(
        select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)).scalars()]


def audit_actions(order_no):
    db.session.expire_all()
    return [(e.action, e.actor_name) for e in db.session.execute(
        select(AuditEntry).where(AuditEntry.entity_id == order_no).order_by(AuditEntry.id)).scalars()]


@pytest.fixture
def over_limit_order(client, world, staff):
    """A pending order of 8,000 fen; then the dealer's limit is cut to 5,000."""
    order_no = place(client, world)
    assert credit(world.dealer_a)["held"] == 8_000
    lower_limit(world.dealer_a, 5_000)
    return order_no


def test_within_the_limit_the_rep_alone_approves(client, world, staff):
    order_no = place(client, world)
    assert orders.approve_order(staff=world.rep, order_no=order_no).status == "approved"


def test_over_the_limit_the_reps_approval_waits_for_finance(world, staff, over_limit_order):
    order = orders.approve_order(staff=world.rep, order_no=over_limit_order)
    assert order.status == "pending_approval" and order.awaiting_finance
    assert order_row(over_limit_order).rep_approved_by_id == world.rep.id
    assert events(over_limit_order)[-1] == ("pending_approval", "pending_approval", "王业务")
    assert audit_actions(over_limit_order) == [("order.approve_rep", "王业务")]
    entry = db.session.execute(select(AuditEntry)).scalar_one()
    assert entry.after == {"status": "pending_approval", "awaiting": "finance", "credit_limit_fen": 5_000,
                           "exposure_fen": 8_000}
    # The dealer still sees 待审批; no approval message yet.
    assert db.session.execute(select(DealerMessage)).first() is None

    with pytest.raises(DomainError) as exc:
        orders.approve_order(staff=world.rep, order_no=over_limit_order)
    assert exc.value.status == 409 and exc.value.code == "awaiting_finance"

    assert [o.order_no for o, _, _ in orders.list_pending_for_staff(staff=staff["finance"])] == [over_limit_order]
    done = orders.approve_order(staff=staff["finance"], order_no=over_limit_order)
    assert done.status == "approved"
    assert events(over_limit_order)[-1] == ("pending_approval", "approved", "财务")
    assert audit_actions(over_limit_order) == [("order.approve_rep", "王业务"), ("order.approve", "财务")]
    assert orders.list_pending_for_staff(staff=staff["finance"]) == []
    message = db.session.execute(select(DealerMessage.body)).scalar_one()
    assert "已审核通过" in message


def test_finance_only_decides_orders_waiting_for_finance(client, world, staff):
    order_no = place(client, world)
    assert orders.list_pending_for_staff(staff=staff["finance"]) == []
    for action in (lambda: orders.approve_order(staff=staff["finance"], order_no=order_no),
                   lambda: orders.reject_order(staff=staff["finance"], order_no=order_no, reason="额度不足")):
        with pytest.raises(DomainError) as exc:
            action()
        assert exc.value.code == "not_awaiting_finance" and exc.value.status == 409
    assert order_row(order_no).status == "pending_approval" and audit_actions(order_no) == []


def test_finance_rejects_with_a_reason_the_dealer_sees(client, world, staff, over_limit_order):
    before = available(world.cola)
    orders.approve_order(staff=world.rep, order_no=over_limit_order)
    orders.reject_order(staff=staff["finance"], order_no=over_limit_order, reason="回款前暂不发货")
    assert order_row(over_limit_order).status == "rejected"
    assert available(world.cola) == before + 2 and credit(world.dealer_a)["held"] == 0
    body = client.get(f"{MP}/orders/{over_limit_order}", headers=auth(world.a_buyer)).get_json()
    assert body["status_label"] == "已驳回" and body["events"][-1]["reason"] == "回款前暂不发货"
    assert "回款前暂不发货" in db.session.execute(select(DealerMessage.body)).scalar_one()


def test_an_admins_approval_is_final_even_over_the_limit(world, staff, over_limit_order):
    assert orders.approve_order(staff=staff["admin"], order_no=over_limit_order).status == "approved"
    reason = db.session.execute(select(OrderEvent.reason).order_by(OrderEvent.id.desc()).limit(1)).scalar_one()
    assert reason == "审批通过（超出信用额度，管理员审批）"
    assert audit_actions(over_limit_order) == [("order.approve", "管理员")]


def test_while_waiting_for_finance_the_dealer_still_sees_pending(client, world, staff, over_limit_order):
    orders.approve_order(staff=world.rep, order_no=over_limit_order)
    body = client.get(f"{MP}/orders/{over_limit_order}", headers=auth(world.a_buyer)).get_json()
    assert (body["status"], body["status_label"]) == ("pending_approval", "待审批")


# --- console ----------------------------------------------------------------------------------

def test_console_rep_then_finance(client, world, staff, over_limit_order):
    login(client, world.rep.username)
    token = csrf(client, "/console/orders/pending")
    r = client.post(f"/console/orders/{over_limit_order}/approve", data={"csrf_token": token}, headers=HTML,
                    follow_redirects=True)
    assert "需财务复核后才生效" in r.get_data(as_text=True)
    assert "待财务复核" in client.get("/console/orders/pending", headers=HTML).get_data(as_text=True)

    login(client, "money")
    pending = client.get("/console/orders/pending", headers=HTML)
    assert pending.status_code == 200 and over_limit_order in pending.get_data(as_text=True)
    detail = client.get(f"/console/orders/{over_limit_order}", headers=HTML).get_data(as_text=True)
    assert "财务复核通过</button>" in detail and "王业务" in detail
    token = csrf(client, f"/console/orders/{over_limit_order}")
    client.post(f"/console/orders/{over_limit_order}/approve", data={"csrf_token": token, "back": "detail"},
                headers=HTML)
    assert order_row(over_limit_order).status == "approved"


def test_console_finance_post_without_csrf_changes_nothing(client, world, staff, over_limit_order):
    orders.approve_order(staff=world.rep, order_no=over_limit_order)
    login(client, "money")
    r = client.post(f"/console/orders/{over_limit_order}/approve", data={}, headers=HTML)
    assert r.status_code == 400 and order_row(over_limit_order).status == "pending_approval"


@pytest.mark.parametrize("username", ["cang", "shi"])
def test_warehouse_and_marketing_may_not_approve(client, world, staff, over_limit_order, username):
    login(client, username)
    token = csrf(client, "/console/orders" if username == "cang" else "/console/")
    r = client.post(f"/console/orders/{over_limit_order}/approve", data={"csrf_token": token}, headers=HTML)
    assert r.status_code == 403 and order_row(over_limit_order).status == "pending_approval"


# --- WeCom: the bot and the card follow the same rule ----------------------------------------------

def test_bot_approval_over_the_limit_waits_for_finance(world, staff, over_limit_order):
    answer = cmd_approve(world.rep, parse(f"通过 {over_limit_order}"))
    assert "需财务复核" in answer and order_row(over_limit_order).awaiting_finance


def test_card_tap_over_the_limit_greys_the_card_out_as_waiting_for_finance(client, app, world, staff,
                                                                          over_limit_order):
    wecom = WeCom(client, app.config)
    r = wecom.tap(f"approve:{over_limit_order}", response_code="RC-finance", create_time=1764000001)
    assert r.status_code == 200
    assert order_row(over_limit_order).status == "pending_approval" and order_row(over_limit_order).awaiting_finance
    db.session.expire_all()
    card = db.session.execute(select(Outbox).where(Outbox.channel == "wecom_card")).scalar_one()
    assert card.payload == {"response_code": "RC-finance", "button": {"replace_name": "待财务复核"}}
    # A second tap does not approve again.
    wecom.tap(f"approve:{over_limit_order}", response_code="RC-again", create_time=1764000002)
    assert len([e for e in events(over_limit_order) if e[2] == "王业务"]) == 1
    # When finance approves, the rep is told in text.
    orders.approve_order(staff=staff["finance"], order_no=over_limit_order)
    db.session.expire_all()
    text = db.session.execute(select(Outbox).where(Outbox.event == "order_approved",
                                                   Outbox.channel == "wecom_app")).scalar_one()
    assert "财务" in text.payload["text"]["content"]


def test_an_order_paid_by_wechat_never_waits_for_finance(client, world, staff):
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 2}], payment_method="wechat")
    assert r.status_code == 201, r.get_json()
    lower_limit(world.dealer_a, 0)
    db.session.get(CreditAccount, world.dealer_a.id).receivable_fen = 1_000
    db.session.commit()
    assert orders.approve_order(staff=world.rep, order_no=r.get_json()["order_no"]).status == "approved"


def test_finance_clerks_are_messaged_in_wecom_when_an_order_starts_waiting_for_them(world, staff, over_limit_order):
    from app.staff.service import create_staff

    staff["finance"].wecom_userid = "CaiWu"
    create_staff(username="money2", name="财务二", role="finance", password="x" * 12).wecom_userid = "CaiWu2"
    create_staff(username="money3", name="离职财务", role="finance", password="x" * 12).active = False
    db.session.commit()
    orders.approve_order(staff=world.rep, order_no=over_limit_order)
    # Approving again is refused and messages nobody twice.
    with pytest.raises(DomainError):
        orders.approve_order(staff=world.rep, order_no=over_limit_order)
    db.session.expire_all()
    rows = db.session.execute(select(Outbox).where(Outbox.event == "order_awaiting_finance")
                              .order_by(Outbox.id)).scalars().all()
    assert [(r.channel, r.recipient) for r in rows] == [("wecom_app", "CaiWu"), ("wecom_app", "CaiWu2")]
    content = rows[0].payload["text"]["content"]
    assert over_limit_order in content and "王业务" in content
    assert "已用 ¥80.00" in content and "额度 ¥50.00" in content


def test_within_the_limit_finance_hears_nothing(client, world, staff):
    staff["finance"].wecom_userid = "CaiWu"
    db.session.commit()
    orders.approve_order(staff=world.rep, order_no=place(client, world))
    db.session.expire_all()
    assert db.session.execute(select(Outbox).where(Outbox.event == "order_awaiting_finance")).first() is None
