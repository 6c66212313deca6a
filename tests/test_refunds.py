"""Refunds of returned goods: what was received goes back the way it was paid — a credit note
on the receivable, prepaid, or a WeChat Pay v3 refund (over real HTTP to the stand-in),
recorded exactly once from its answer, its REFUND.* notification or the reconcile job's query."""
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select, update

from app.audit.models import AuditEntry
from app.dealers.identity import issue_token
from app.extensions import db
from app.funds import ledger
from app.funds import refunds as refunding
from app.funds.models import LedgerEntry, Refund
from app.kernel.clock import utcnow
from app.orders import approval as orders
from app.orders.models import Order
from app.returns import service as returns
from app.returns.models import ReturnLine, ReturnRequest
from tests.factories import auth
from tests.helpers import HTML, MP, csrf, submit
from tests.helpers import console_login as login
from tests.test_returns import ask, place_and_approve, ship
from tests.test_returns import token as session_token
from tests.test_wechatpay import NOTIFY, pay_and_notify, place_wechat_order, start_paying

# --- helpers ---------------------------------------------------------------------------------


def paid_wechat_order(client, world, staff, wechat, qty=4):
    """Dealer A's WeChat Pay order of `qty` cola (¥40.00 each), paid, approved and shipped."""
    order = place_wechat_order(client, world.a_buyer, world, qty=qty)
    no = start_paying(client, world.a_buyer, order["order_no"])["out_trade_no"]
    assert pay_and_notify(client, wechat, no).status_code == 204
    orders.approve_order(staff=world.rep, order_no=order["order_no"])
    ship(staff, order["order_no"], {world.cola: qty})
    return order["order_no"], no


def approved_return(client, world, staff, order_no, lines):
    ret = ask(client, world.a_buyer, order_no, lines).json
    returns.approve_return(staff=staff["admin"], return_id=ret["id"])
    return ret


def line_ids(return_id):
    db.session.expire_all()
    return {line.sku_id: line.id for line in db.session.execute(
        select(ReturnLine).where(ReturnLine.return_id == return_id)).scalars()}


def receive(staff, return_id, world, quantities=None):
    return returns.receive_return(staff=staff["warehouse"], return_id=return_id, warehouse_id=world.wh_south.id,
                                  quantities=quantities)


def refunds_of(return_id):
    db.session.expire_all()
    return db.session.execute(select(Refund).where(Refund.return_id == return_id).order_by(Refund.id)).scalars().all()


def refund_entries(dealer_id):
    db.session.expire_all()
    return db.session.execute(
        select(LedgerEntry.account, LedgerEntry.amount_fen, LedgerEntry.ref_type, LedgerEntry.ref_id)
        .where(LedgerEntry.dealer_id == dealer_id, LedgerEntry.ref_type == "refund").order_by(LedgerEntry.id)
    ).all()


def current(return_id):
    db.session.expire_all()
    return db.session.get(ReturnRequest, return_id)


def notify_refund(client, wechat, number, status="SUCCESS", **tamper):
    """WeChat Pay settles refund `number` and posts its REFUND.* notification to us."""
    wechat.pay.settle_refund(number, status)
    headers, body = wechat.pay.refund_notification(number, **tamper)
    return client.post(NOTIFY, data=body, headers=headers)


def assert_ledger_replays(dealer_id):
    """Every account's entries replay its balance: balance_after = previous + amount."""
    db.session.expire_all()
    rows = db.session.execute(
        select(LedgerEntry.account, LedgerEntry.amount_fen, LedgerEntry.balance_after_fen)
        .where(LedgerEntry.dealer_id == dealer_id).order_by(LedgerEntry.id)
    ).all()
    running = {}
    for account, amount, after in rows:
        running[account] = running.get(account, 0) + amount
        assert after == running[account], rows
    balances = ledger.get_balances(dealer_id)
    for account, total in running.items():
        assert balances[f"{account}_fen"] == total


# --- credit, prepaid -------------------------------------------------------------------------

def test_a_credit_order_gets_a_credit_note_for_what_was_received(client, world, staff):
    order_no = place_and_approve(client, world, [(world.cola, 10), (world.soy, 5)])
    ship(staff, order_no, {world.cola: 10, world.soy: 5})
    ret = approved_return(client, world, staff, order_no, [(world.cola, 4), (world.soy, 2)])
    ids = line_ids(ret["id"])

    request, receipt, made = receive(staff, ret["id"], world, {ids[world.cola.id]: 1})
    assert request.status == "receiving" and receipt.amount_fen == 4000
    [refund] = made
    assert (refund.method, refund.amount_fen, refund.status) == ("receivable", 4000, "refunded")
    assert refund_entries(world.dealer_a.id) == [("receivable", -4000, "refund", refund.id)]

    # The rest arrives later: the second receipt refunds only what it brought.
    request, receipt, made = receive(staff, ret["id"], world, {ids[world.cola.id]: 3, ids[world.soy.id]: 2})
    assert request.status == "received" and receipt.amount_fen == 3 * 4000 + 2 * 2299
    assert [e[1] for e in refund_entries(world.dealer_a.id)] == [-4000, -16598]
    done = current(ret["id"])
    assert done.refund_status == "refunded" and done.refunded_fen == done.refund_fen == 20598
    assert_ledger_replays(world.dealer_a.id)

    detail = client.get(f"{MP}/returns/{ret['id']}", headers=auth(world.a_buyer)).json
    assert detail["refund"]["status"] == "refunded" and detail["refund"]["status_label"] == "已退款"
    assert detail["refund"]["amount_fen"] == detail["refund"]["refunded_fen"] == 20598
    assert [(i["method"], i["amount_fen"], i["status"]) for i in detail["refund"]["items"]] == [
        ("receivable", 4000, "refunded"), ("receivable", 16598, "refunded")]
    assert {line["sku_id"]: line["received_qty"] for line in detail["lines"]} == {world.cola.id: 4, world.soy.id: 2}
    # The dealer's ledger names the order the refund belongs to.
    entries = client.get(f"{MP}/account/ledger?account=receivable", headers=auth(world.a_buyer)).json["items"]
    assert entries[0]["ref_type"] == "refund" and entries[0]["order_no"] == order_no


def test_the_rebate_an_order_spent_goes_back_to_the_rebate_balance_and_only_the_rest_to_its_method(
        client, world, staff):
    """10 cola at ¥40.00 = ¥400.00 on credit, ¥120.00 of it paid with rebate (the 30 % cap):
    the shipment bills ¥280.00 as receivable; each half returned gives back ¥60.00 of rebate and
    a ¥140.00 credit note, so after both the dealer owes nothing and has its rebate back."""
    ledger.record_movements(dealer_id=world.dealer_a.id, actor=staff["finance"], actor_type="staff",
                            movements=[ledger.Movement("rebate", 20_000, "adjustment", None, "测试返利")])
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 10}], use_rebate_fen=12_000)
    assert r.status_code == 201, r.json
    order_no = r.json["order_no"]
    orders.approve_order(staff=world.rep, order_no=order_no)
    ship(staff, order_no, {world.cola: 10})
    assert ledger.get_balances(world.dealer_a.id) == {"receivable_fen": 28_000, "prepaid_fen": 0, "rebate_fen": 8_000}

    for expected_receivable in (14_000, 0):
        ret = approved_return(client, world, staff, order_no, [(world.cola, 5)])
        _request, _receipt, made = receive(staff, ret["id"], world)
        assert [(m.method, m.amount_fen, m.status) for m in made] == [
            ("rebate", 6_000, "refunded"), ("receivable", 14_000, "refunded")]
        assert ledger.get_balances(world.dealer_a.id)["receivable_fen"] == expected_receivable
    assert ledger.get_balances(world.dealer_a.id) == {"receivable_fen": 0, "prepaid_fen": 0, "rebate_fen": 20_000}
    assert [e[:3] for e in refund_entries(world.dealer_a.id)] == [
        ("rebate", 6_000, "refund"), ("receivable", -14_000, "refund")] * 2
    assert_ledger_replays(world.dealer_a.id)
    detail = client.get(f"{MP}/returns/{ret['id']}", headers=auth(world.a_buyer)).json
    assert [i["method"] for i in detail["refund"]["items"]] == ["rebate", "receivable"]


@pytest.mark.parametrize("method", ["prepaid", "offline"])
def test_a_prepaid_or_offline_order_is_refunded_to_prepaid(client, world, staff, method):
    order_no = place_and_approve(client, world, [(world.cola, 5)])
    ship(staff, order_no, {world.cola: 5})
    # (Orders paid these ways come with checkout; the refund rule only reads the method.)
    db.session.execute(update(Order).where(Order.order_no == order_no).values(payment_method=method))
    db.session.commit()
    ret = approved_return(client, world, staff, order_no, [(world.cola, 2)])
    before = ledger.get_balances(world.dealer_a.id)
    _request, _receipt, [refund] = receive(staff, ret["id"], world)
    assert (refund.method, refund.amount_fen, refund.status) == ("prepaid", 8000, "refunded")
    after = ledger.get_balances(world.dealer_a.id)
    assert after["prepaid_fen"] == before["prepaid_fen"] + 8000
    assert after["receivable_fen"] == before["receivable_fen"]
    assert refund_entries(world.dealer_a.id) == [("prepaid", 8000, "refund", refund.id)]


def test_never_more_than_the_order_was_charged(client, world, staff):
    order_no = place_and_approve(client, world, [(world.cola, 3)])
    ship(staff, order_no, {world.cola: 3})
    # A discount the order was given (promotions, rebate part-payment) caps what comes back.
    db.session.execute(update(Order).where(Order.order_no == order_no).values(total_fen=10000, discount_fen=2000))
    db.session.commit()
    first = approved_return(client, world, staff, order_no, [(world.cola, 2)])
    second = approved_return(client, world, staff, order_no, [(world.cola, 1)])
    assert receive(staff, first["id"], world)[1].amount_fen == 8000
    assert receive(staff, second["id"], world)[1].amount_fen == 2000  # 4000 by price, 2000 left of the 10000 charged
    assert sum(r.amount_fen for r in refunds_of(first["id"]) + refunds_of(second["id"])) == 10000


# --- partial receipts, closing, withdrawing ----------------------------------------------------

def test_receipts_are_checked_and_a_bad_one_changes_nothing(client, world, staff):
    order_no = place_and_approve(client, world, [(world.cola, 10)])
    ship(staff, order_no, {world.cola: 10})
    ret = approved_return(client, world, staff, order_no, [(world.cola, 3)])
    ids = line_ids(ret["id"])
    for bad, code in (({ids[world.cola.id]: 4}, "exceeds_outstanding"), ({ids[world.cola.id]: 0}, "nothing_received"),
                      ({999999: 1}, "line_not_in_return"), ({ids[world.cola.id]: -1}, "qty_invalid")):
        with pytest.raises(Exception) as refused:
            receive(staff, ret["id"], world, bad)
        assert refused.value.status == 422 and refused.value.details["problems"][0]["code"] == code
    assert current(ret["id"]).status == "approved" and refunds_of(ret["id"]) == []
    assert refund_entries(world.dealer_a.id) == []


def test_closing_a_partly_received_return_refunds_what_came_and_frees_the_rest(client, world, staff):
    order_no = place_and_approve(client, world, [(world.cola, 10)])
    ship(staff, order_no, {world.cola: 10})
    ret = approved_return(client, world, staff, order_no, [(world.cola, 10)])
    receive(staff, ret["id"], world, {line_ids(ret["id"])[world.cola.id]: 4})
    # Nothing more may be asked for while the request holds all ten.
    assert ask(client, world.a_buyer, order_no, [(world.cola, 1)]).status_code == 422

    login(client, "cang")
    page = client.get(f"/console/returns/{ret['id']}", headers=HTML).get_data(as_text=True)
    assert "部分入库" in page and "结束退货" in page and "入库记录" in page
    token = csrf(client, f"/console/returns/{ret['id']}")
    r = client.post(f"/console/returns/{ret['id']}/close", headers=HTML, data={"csrf_token": token, "reason": " "})
    assert "结束退货需要填写原因" in client.get(r.headers["Location"], headers=HTML).get_data(as_text=True)
    client.post(f"/console/returns/{ret['id']}/close", headers=HTML,
                data={"csrf_token": token, "reason": "其余货物经销商自行处理"})
    done = current(ret["id"])
    assert done.status == "closed" and done.refunded_fen == 16000 and done.refund_status == "refunded"
    message = client.get(f"{MP}/messages", headers=auth(world.a_buyer)).json["items"][0]
    assert message["event"] == "return_closed" and "¥160.00" in message["body"]
    # The six never received may be asked for again; the four received may not.
    assert ask(client, world.a_buyer, order_no, [(world.cola, 7)]).status_code == 422
    assert ask(client, world.a_buyer, order_no, [(world.cola, 6)]).status_code == 201
    audit = db.session.execute(select(AuditEntry.action).where(AuditEntry.entity_type == "return")
                               .order_by(AuditEntry.id)).scalars().all()
    assert audit == ["return.approve", "return.receive", "return.close"]


def test_the_console_takes_partial_quantities_line_by_line(client, world, staff):
    order_no = place_and_approve(client, world, [(world.cola, 10), (world.soy, 5)])
    ship(staff, order_no, {world.cola: 10, world.soy: 5})
    ret = approved_return(client, world, staff, order_no, [(world.cola, 3), (world.soy, 2)])
    ids = line_ids(ret["id"])
    login(client, "cang")
    token = csrf(client, f"/console/returns/{ret['id']}")
    r = client.post(f"/console/returns/{ret['id']}/receive", headers=HTML, data={
        "csrf_token": token, "warehouse_id": world.wh_south.id, f"qty_{ids[world.cola.id]}": "9",
        f"qty_{ids[world.soy.id]}": "1"})
    page = client.get(r.headers["Location"], headers=HTML).get_data(as_text=True)
    assert "入库数量有误" in page and "还待退回 3" in page
    client.post(f"/console/returns/{ret['id']}/receive", headers=HTML, data={
        "csrf_token": token, "warehouse_id": world.wh_south.id, f"qty_{ids[world.cola.id]}": "2",
        f"qty_{ids[world.soy.id]}": ""})
    done = current(ret["id"])
    assert done.status == "receiving" and [line.received_qty for line in done.lines] == [2, 0]
    assert done.refunded_fen == 8000


def test_the_dealer_withdraws_a_pending_return(client, world, staff):
    order_no = place_and_approve(client, world, [(world.cola, 10)])
    ship(staff, order_no, {world.cola: 10})
    ret = ask(client, world.a_buyer, order_no, [(world.cola, 10)]).json

    viewer = client.post(f"{MP}/returns/{ret['id']}/withdraw", headers=auth(world.a_viewer))
    assert viewer.status_code == 403 and viewer.json["error"]["code"] == "forbidden_role"
    unbound = client.post(f"{MP}/returns/{ret['id']}/withdraw",
                          headers={"Authorization": f"Bearer {issue_token('o-never-bound-0001')}"})
    assert unbound.status_code == 403 and unbound.json["error"]["code"] == "not_bound"
    foreign = client.post(f"{MP}/returns/{ret['id']}/withdraw", headers=auth(world.b_owner))
    missing = client.post(f"{MP}/returns/99999999/withdraw", headers=auth(world.b_owner))
    assert foreign.status_code == missing.status_code == 404 and foreign.json == missing.json
    assert current(ret["id"]).status == "pending"

    r = client.post(f"{MP}/returns/{ret['id']}/withdraw", headers=auth(world.a_buyer), json={"reason": "协商换货"})
    assert r.status_code == 200 and r.json["status"] == "withdrawn" and r.json["status_label"] == "已撤回"
    assert r.json["events"][-1]["to_status"] == "withdrawn" and r.json["events"][-1]["reason"] == "协商换货"
    again = client.post(f"{MP}/returns/{ret['id']}/withdraw", headers=auth(world.a_buyer))
    assert again.status_code == 409 and again.json["error"]["code"] == "return_state_conflict"
    assert "只有待审核的申请才能撤回" in again.json["error"]["message"]
    # Its units are free again, and staff can no longer act on it.
    assert ask(client, world.a_buyer, order_no, [(world.cola, 10)]).status_code == 201
    with pytest.raises(Exception) as refused:
        returns.approve_return(staff=staff["admin"], return_id=ret["id"])
    assert refused.value.status == 409


def test_an_approved_return_cannot_be_withdrawn(client, world, staff):
    order_no = place_and_approve(client, world, [(world.cola, 2)])
    ship(staff, order_no, {world.cola: 2})
    ret = approved_return(client, world, staff, order_no, [(world.cola, 1)])
    r = client.post(f"{MP}/returns/{ret['id']}/withdraw", headers=auth(world.a_buyer))
    assert r.status_code == 409 and "已同意，待退回" in r.json["error"]["message"]
    assert current(ret["id"]).status == "approved"


# --- WeChat Pay ---------------------------------------------------------------------------------

def test_a_wechat_order_is_refunded_through_wechat_pay_once(client, world, staff, wechat):
    order_no, out_trade_no = paid_wechat_order(client, world, staff, wechat)
    ret = approved_return(client, world, staff, order_no, [(world.cola, 3)])
    _request, _receipt, [refund] = receive(staff, ret["id"], world, {line_ids(ret["id"])[world.cola.id]: 2})

    # Sent to WeChat Pay after the commit (in-process here), which is processing it.
    [at_wechat] = wechat.pay.refunds()
    assert at_wechat["out_trade_no"] == out_trade_no and at_wechat["refund"] == 8000 and at_wechat["total"] == 16000
    assert at_wechat["notify_url"] == "http://localhost/pay/wechat/notify"
    [refund] = refunds_of(ret["id"])
    assert refund.out_refund_no == at_wechat["out_refund_no"] and refund.status == "refunding"
    assert refund.refund_id == at_wechat["refund_id"]
    assert current(ret["id"]).refund_status == "refunding" and refund_entries(world.dealer_a.id) == []
    shown = client.get(f"{MP}/returns/{ret['id']}", headers=auth(world.a_buyer)).json["refund"]
    assert (shown["status"], shown["status_label"], shown["amount_fen"], shown["refunded_fen"]) == (
        "refunding", "退款中", 8000, 0)
    assert shown["items"][0]["method"] == "wechat" and shown["items"][0]["method_label"] == "原路退回微信支付"

    r = notify_refund(client, wechat, refund.out_refund_no)
    assert r.status_code == 204
    [refund] = refunds_of(ret["id"])
    assert refund.status == "refunded" and refund.user_received_account == "支付用户零钱"
    # The returned goods' charge comes off the receivable, the money paid back goes on: it nets to zero.
    assert refund_entries(world.dealer_a.id) == [("receivable", -8000, "refund", refund.id),
                                                 ("receivable", 8000, "refund", refund.id)]
    assert ledger.get_balances(world.dealer_a.id)["receivable_fen"] == 0
    done = current(ret["id"])
    assert done.refund_status == "refunded" and done.refunded_fen == 8000

    # WeChat Pay retries the notification; we also query it: nothing more is recorded.
    for _ in range(3):
        headers, body = wechat.pay.refund_notification(refund.out_refund_no)
        assert client.post(NOTIFY, data=body, headers=headers).status_code == 204
    assert refunding.record_wechat_refund(wechat.pay.refund_object(wechat.pay.get_refund(refund.out_refund_no))) \
        == "duplicate"
    assert len(refund_entries(world.dealer_a.id)) == 2 and current(ret["id"]).refunded_fen == 8000
    assert_ledger_replays(world.dealer_a.id)


@pytest.mark.parametrize("forgery", ["other_key", "wrong_apiv3_key", "stale"])
def test_forged_refund_notifications_record_nothing(client, world, staff, wechat, forgery):
    order_no, _no = paid_wechat_order(client, world, staff, wechat, qty=2)
    ret = approved_return(client, world, staff, order_no, [(world.cola, 1)])
    receive(staff, ret["id"], world)
    [refund] = refunds_of(ret["id"])
    wechat.pay.settle_refund(refund.out_refund_no)
    tamper = {"other_key": {"key": rsa.generate_private_key(public_exponent=65537, key_size=2048)},
              "wrong_apiv3_key": {"apiv3_key": "another-apiv3-key-32-bytes-long!"},
              "stale": {"timestamp_offset": -600}}[forgery]
    headers, body = wechat.pay.refund_notification(refund.out_refund_no, **tamper)
    assert client.post(NOTIFY, data=body, headers=headers).status_code == 401
    assert refunds_of(ret["id"])[0].status == "refunding" and refund_entries(world.dealer_a.id) == []


def test_a_refund_notification_that_disagrees_with_what_we_asked_is_refused(client, world, staff, wechat):
    order_no, _no = paid_wechat_order(client, world, staff, wechat, qty=2)
    ret = approved_return(client, world, staff, order_no, [(world.cola, 1)])
    receive(staff, ret["id"], world)
    [refund] = refunds_of(ret["id"])
    wrong_amount = notify_refund(client, wechat, refund.out_refund_no, refund=9999)
    assert wrong_amount.status_code == 400 and wrong_amount.json["code"] == "AMOUNT_MISMATCH"
    unknown = notify_refund(client, wechat, refund.out_refund_no, out_refund_no="RT-NOT-OURS-1")
    assert unknown.status_code == 404
    other_merchant = notify_refund(client, wechat, refund.out_refund_no, mchid="1900000999")
    assert other_merchant.status_code == 400
    assert refunds_of(ret["id"])[0].status == "refunding" and refund_entries(world.dealer_a.id) == []


def test_a_lost_notification_is_made_up_by_the_reconcile_query(client, world, staff, wechat):
    order_no, _no = paid_wechat_order(client, world, staff, wechat, qty=2)
    ret = approved_return(client, world, staff, order_no, [(world.cola, 2)])
    receive(staff, ret["id"], world)
    [refund] = refunds_of(ret["id"])
    wechat.pay.settle_refund(refund.out_refund_no)  # succeeded at WeChat Pay; its notification never came
    assert refunding.reconcile_wechat_refunds() == {refund.out_refund_no: "recorded"}
    assert refunds_of(ret["id"])[0].status == "refunded" and len(refund_entries(world.dealer_a.id)) == 2
    assert refunding.reconcile_wechat_refunds() == {}
    # The notification that arrives late changes nothing.
    headers, body = wechat.pay.refund_notification(refund.out_refund_no)
    assert client.post(NOTIFY, data=body, headers=headers).status_code == 204
    assert len(refund_entries(world.dealer_a.id)) == 2


def test_wechatpay_down_leaves_the_refund_pending_and_the_reconcile_job_sends_it(client, world, staff, wechat):
    order_no, _no = paid_wechat_order(client, world, staff, wechat, qty=2)
    ret = approved_return(client, world, staff, order_no, [(world.cola, 1)])
    wechat.fail_next("/v3/refund/domestic/refunds", http_status=502)
    receive(staff, ret["id"], world)
    [refund] = refunds_of(ret["id"])
    assert refund.status == "pending" and refund.out_refund_no and wechat.pay.refunds() == []
    assert current(ret["id"]).refund_status == "pending"
    # Not yet: a pending refund is given a minute before it is looked at again.
    assert refunding.reconcile_wechat_refunds() == {}
    later = utcnow() + timedelta(minutes=2)
    assert refunding.reconcile_wechat_refunds(now=later) == {refund.out_refund_no: "sent"}
    [at_wechat] = wechat.pay.refunds()
    assert at_wechat["out_refund_no"] == refund.out_refund_no  # the same number: never two refunds
    assert refunds_of(ret["id"])[0].status == "refunding"
    assert notify_refund(client, wechat, refund.out_refund_no).status_code == 204
    assert current(ret["id"]).refund_status == "refunded"


def test_a_failed_refund_shows_to_finance_who_retries_it(client, world, staff, wechat):
    order_no, _no = paid_wechat_order(client, world, staff, wechat, qty=2)
    ret = approved_return(client, world, staff, order_no, [(world.cola, 2)])
    receive(staff, ret["id"], world)
    [refund] = refunds_of(ret["id"])
    first_no = refund.out_refund_no
    assert notify_refund(client, wechat, first_no, status="ABNORMAL").status_code == 204
    failed = refunds_of(ret["id"])[0]
    assert failed.status == "failed" and "退款异常" in failed.failure
    assert current(ret["id"]).refund_status == "failed" and refund_entries(world.dealer_a.id) == []

    login(client, "money")
    listing = client.get("/console/returns", headers=HTML).get_data(as_text=True)
    assert "1 张退货单退款失败" in listing
    only_failed = client.get("/console/returns?refund_status=failed", headers=HTML).get_data(as_text=True)
    assert ret["return_no"] in only_failed
    page = client.get(f"/console/returns/{ret['id']}", headers=HTML).get_data(as_text=True)
    assert "退款失败" in page and "重试退款" in page
    retry = f"/console/returns/{ret['id']}/refunds/{failed.id}/retry"
    assert client.post(retry, headers=HTML, data={}).status_code == 400  # no CSRF token
    r = client.post(retry, headers=HTML, data={"csrf_token": csrf(client, f"/console/returns/{ret['id']}")})
    assert r.status_code == 302
    retried = refunds_of(ret["id"])[0]
    assert retried.status == "refunding" and retried.out_refund_no != first_no and retried.attempts == 2
    entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "refund.retry")).scalar_one()
    assert entry.actor_name == "财务" and entry.before["out_refund_no"] == first_no
    # A notification of the abandoned attempt changes nothing; the new one completes it.
    headers, body = wechat.pay.refund_notification(first_no)
    assert client.post(NOTIFY, data=body, headers=headers).status_code == 204
    assert refunds_of(ret["id"])[0].status == "refunding"
    assert notify_refund(client, wechat, retried.out_refund_no).status_code == 204
    assert current(ret["id"]).refund_status == "refunded" and current(ret["id"]).refunded_fen == 8000
    assert len(refund_entries(world.dealer_a.id)) == 2
    # Only failed refunds are retried.
    r = client.post(retry, headers=HTML, data={"csrf_token": csrf(client, f"/console/returns/{ret['id']}")})
    assert "只有退款失败的才能重试" in client.get(r.headers["Location"], headers=HTML).get_data(as_text=True)


@pytest.mark.parametrize("username", ["cang", "rep1", "shi"])
def test_only_finance_and_admin_retry_refunds(client, world, staff, username):
    order_no = place_and_approve(client, world, [(world.cola, 2)])
    ship(staff, order_no, {world.cola: 2})
    ret = approved_return(client, world, staff, order_no, [(world.cola, 1)])
    receive(staff, ret["id"], world)
    [refund] = refunds_of(ret["id"])
    db.session.execute(update(Refund).where(Refund.id == refund.id).values(status="failed"))
    db.session.commit()
    login(client, username)
    token = session_token(client)
    r = client.post(f"/console/returns/{ret['id']}/refunds/{refund.id}/retry", headers=HTML, data={"csrf_token": token})
    assert r.status_code == 403 and refunds_of(ret["id"])[0].status == "failed"


def test_a_wechat_order_refunds_at_most_what_was_paid(client, world, staff, wechat):
    order = place_wechat_order(client, world.a_buyer, world, qty=2)  # never paid
    orders.approve_order(staff=world.rep, order_no=order["order_no"])
    ship(staff, order["order_no"], {world.cola: 2})
    ret = approved_return(client, world, staff, order["order_no"], [(world.cola, 2)])
    _request, receipt, made = receive(staff, ret["id"], world)
    assert receipt.amount_fen == 8000 and made == [] and wechat.pay.refunds() == []
    assert current(ret["id"]).refund_status is None and refund_entries(world.dealer_a.id) == []


# --- concurrency (PostgreSQL row locks, real threads) ------------------------------------------

def _pg_setup(pg_app, pg_world, qty=4, wechat=None):
    from app.staff.service import create_staff

    w = pg_world
    people = {
        "warehouse": create_staff(username="cang", name="仓管", role="warehouse", password="correct-horse-9"),
        "admin": create_staff(username="boss", name="管理员", role="admin", password="correct-horse-9"),
    }
    client = pg_app.test_client()
    if wechat is None:
        order_no = place_and_approve(client, w, [(w.cola, 10)])
        ship(people, order_no, {w.cola: 10})
    else:
        order_no, _no = paid_wechat_order(client, w, people, wechat, qty=10)
    ret = approved_return(client, w, people, order_no, [(w.cola, qty)])
    return client, people, ret


def _threads(pg_app, jobs):
    import threading

    barrier, results = threading.Barrier(len(jobs)), [None] * len(jobs)

    def run(i, job):
        with pg_app.app_context():
            barrier.wait()
            try:
                results[i] = job()
            except Exception as exc:
                results[i] = getattr(exc, "status", repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


@pytest.mark.postgres
def test_concurrent_partial_receipts_never_take_in_or_refund_too_much(pg_app, pg_world):
    from app.staff.models import Staff

    w = pg_world
    _client, people, ret = _pg_setup(pg_app, w, qty=4)
    line_id = line_ids(ret["id"])[w.cola.id]
    clerk_id = people["warehouse"].id

    def take(n):
        def job():
            actor = db.session.get(Staff, clerk_id)
            returns.receive_return(staff=actor, return_id=ret["id"], warehouse_id=w.wh_south.id,
                                   quantities={line_id: n})
            return "ok"
        return job

    # 2 + 2 fit (both succeed, one after the other); then 3 + 3 of nothing left both fail.
    assert _threads(pg_app, [take(2), take(2)]) == ["ok", "ok"]
    done = current(ret["id"])
    assert done.status == "received" and done.lines[0].received_qty == 4
    assert sorted(r.amount_fen for r in refunds_of(ret["id"])) == [8000, 8000]
    assert done.refunded_fen == 16000
    assert_ledger_replays(w.dealer_a.id)

    _client, _people, ret2 = None, None, approved_return(pg_app.test_client(), w, people, done.order.order_no,
                                                         [(w.cola, 4)])
    line2 = line_ids(ret2["id"])[w.cola.id]

    def take2(n):
        def job():
            actor = db.session.get(Staff, clerk_id)
            returns.receive_return(staff=actor, return_id=ret2["id"], warehouse_id=w.wh_south.id,
                                   quantities={line2: n})
            return "ok"
        return job

    assert sorted(_threads(pg_app, [take2(3), take2(3)]), key=str) == [422, "ok"]
    assert current(ret2["id"]).lines[0].received_qty == 3
    assert [r.amount_fen for r in refunds_of(ret2["id"])] == [12000]
    assert_ledger_replays(w.dealer_a.id)


@pytest.mark.postgres
def test_a_refund_notification_racing_the_query_is_recorded_once(pg_app, pg_world, wechat):
    w = pg_world
    client, people, ret = _pg_setup(pg_app, w, qty=2, wechat=wechat)
    receive(people, ret["id"], w)
    [refund] = refunds_of(ret["id"])
    wechat.pay.settle_refund(refund.out_refund_no)
    notifications = [wechat.pay.refund_notification(refund.out_refund_no) for _ in range(3)]

    def deliver(headers, body):
        return lambda: pg_app.test_client().post(NOTIFY, data=body, headers=headers).status_code

    jobs = [deliver(h, b) for h, b in notifications] + [refunding.reconcile_wechat_refunds] * 2
    results = _threads(pg_app, jobs)
    assert results[:3] == [204, 204, 204], results
    outcomes = [o for r in results[3:] for o in r.values()] if all(isinstance(r, dict) for r in results[3:]) else results
    assert set(outcomes) <= {"recorded", "duplicate"}, results
    assert refunds_of(ret["id"])[0].status == "refunded"
    assert len(refund_entries(w.dealer_a.id)) == 2
    assert db.session.execute(select(func.count()).select_from(Refund)).scalar_one() == 1
    assert current(ret["id"]).refunded_fen == 8000
    assert_ledger_replays(w.dealer_a.id)


# --- upgrading a database with returns received before refunds existed ------------------------

def test_returns_received_before_the_upgrade_wait_for_finance_as_failed_refunds(app, client, world, staff):
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    order_no = place_and_approve(client, world, [(world.cola, 5)])
    ship(staff, order_no, {world.cola: 5})
    ret = approved_return(client, world, staff, order_no, [(world.cola, 2)])
    db.session.remove()
    downgrade(revision="0014")  # the schema before partial receipts and refunds (0015)
    db.session.execute(text("UPDATE returns SET status = 'received', refund_status = 'pending_ledger' WHERE id = :id"),
                       {"id": ret["id"]})
    db.session.commit()
    upgrade()
    db.session.remove()

    [refund] = refunds_of(ret["id"])
    assert (refund.method, refund.amount_fen, refund.status) == ("receivable", 8000, "failed")
    done = current(ret["id"])
    assert done.refund_status == "failed" and done.lines[0].received_qty == 2
    refunding.retry_refund(staff=staff["finance"], refund_id=refund.id, return_id=ret["id"])
    assert refunds_of(ret["id"])[0].status == "refunded" and current(ret["id"]).refunded_fen == 8000
    assert refund_entries(world.dealer_a.id) == [("receivable", -8000, "refund", refund.id)]


def test_an_upgraded_wechat_refund_finds_its_payment_when_retried(client, world, staff, wechat):
    order_no, out_trade_no = paid_wechat_order(client, world, staff, wechat, qty=2)
    ret = approved_return(client, world, staff, order_no, [(world.cola, 1)])
    order = db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()
    # What migration 0015 leaves for a WeChat order's return received before it: no payment, no number.
    legacy = Refund(dealer_id=world.dealer_a.id, order_id=order.id, return_id=ret["id"], method="wechat",
                    amount_fen=4000, status="failed", attempts=0, failure="升级前已入库的退货")
    db.session.add(legacy)
    db.session.commit()
    refunding.retry_refund(staff=staff["finance"], refund_id=legacy.id)
    [refund] = refunds_of(ret["id"])
    assert refund.out_trade_no == out_trade_no and refund.status == "refunding"
    [at_wechat] = wechat.pay.refunds()
    assert at_wechat["out_refund_no"] == refund.out_refund_no and at_wechat["refund"] == 4000
    assert notify_refund(client, wechat, refund.out_refund_no).status_code == 204
    assert current(ret["id"]).refund_status == "refunded" and len(refund_entries(world.dealer_a.id)) == 2
